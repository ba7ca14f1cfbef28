//! Query Config fixtures.

mod common;

use aoe_wire::{
    parse, CCmd, Command, ErrorCode, Header, Message, Packet, QueryConfig, WireError,
    BROADCAST_SHELF, BROADCAST_SLOT,
};
use common::{assert_emits, frame, message, padded, INITIATOR, TAG, TARGET};

#[test]
fn linux_broadcast_discovery_request() {
    // dst broadcast, major 0xFFFF, minor 0xFF, tag 0, argument all zero, padded.
    let mut f = vec![0xFF; 6];
    f.extend_from_slice(&INITIATOR.0);
    f.extend_from_slice(&[0x88, 0xA2, 0x10, 0x00, 0xFF, 0xFF, 0xFF, 0x01, 0, 0, 0, 0]);
    f.extend_from_slice(&[0; 8]);
    let f = padded(f);
    let p = parse(&f).unwrap();
    assert_eq!(p.header.shelf, BROADCAST_SHELF);
    assert_eq!(p.header.slot, BROADCAST_SLOT);
    assert!(p.header.dst.is_broadcast());
    assert!(p.header.addresses(7, 3));
    let q = message!(p, QueryConfig);
    assert_eq!(q.ccmd, CCmd::Read);
    assert_eq!(q.version, 0);
    assert!(q.config.is_empty());

    let header = Header::request(
        aoe_wire::BROADCAST_MAC,
        INITIATOR,
        BROADCAST_SHELF,
        BROADCAST_SLOT,
        Command::QueryConfig,
        0,
    );
    let mut req = QueryConfig::request(CCmd::Read, &[]);
    req.version = 0; // Linux sends the whole byte 29 as 0.
    assert_emits(&f, |buf| req.emit(&header, buf));
}

#[test]
fn response_with_string_parses_and_rebuilds() {
    let arg = [
        0x00, 0x10, // buffer count 16
        0x40, 0x19, // firmware 0x4019
        0x02, // sector count
        0x10, // version 1, read
        0x00, 0x05, // length 5
        b'h', b'e', b'l', b'l', b'o',
    ];
    let f = padded(frame(0x18, 0, 1, &arg));
    let p = parse(&f).unwrap();
    assert!(p.header.response);
    let q = message!(p, QueryConfig);
    assert_eq!(q.buffer_count, 16);
    assert_eq!(q.firmware, 0x4019);
    assert_eq!(q.sector_count, 2);
    assert_eq!(q.version, 1);
    assert_eq!(q.ccmd, CCmd::Read);
    assert_eq!(q.config, b"hello");

    let request = Header::request(TARGET, INITIATOR, 7, 3, Command::QueryConfig, TAG);
    let reply = QueryConfig {
        buffer_count: 16,
        firmware: 0x4019,
        sector_count: 2,
        version: 1,
        ccmd: CCmd::Read,
        config: b"hello",
    };
    let pkt = Packet {
        header: request.response_to(TARGET, 7, 3),
        message: Message::QueryConfig(reply),
    };
    assert_emits(&f, |buf| pkt.emit(buf));
}

#[test]
fn set_refused_with_error_four() {
    let arg = [0x00, 0x10, 0x40, 0x19, 0x02, 0x13, 0x00, 0x02, b'h', b'i'];
    let f = padded(frame(0x1C, 0x04, 1, &arg));
    let p = parse(&f).unwrap();
    assert_eq!(p.header.error, Some(ErrorCode::ConfigStringPresent));
    let q = message!(p, QueryConfig);
    assert_eq!(q.ccmd, CCmd::Set);
    assert_eq!(q.config, b"hi");
    assert_emits(&f, |buf| p.emit(buf));
}

#[test]
fn every_ccmd_nibble() {
    for (nibble, ccmd) in [
        (0, CCmd::Read),
        (1, CCmd::Test),
        (2, CCmd::TestPrefix),
        (3, CCmd::Set),
        (4, CCmd::ForceSet),
        (5, CCmd::Unknown(5)),
        (15, CCmd::Unknown(15)),
    ] {
        let arg = [0, 0, 0, 0, 0, 0x10 | nibble, 0x00, 0x01, b'x'];
        let f = padded(frame(0x10, 0, 1, &arg));
        assert_eq!(message!(parse(&f).unwrap(), QueryConfig).ccmd, ccmd);
        assert_eq!(ccmd.nibble(), nibble);
    }
}

#[test]
fn max_length_accepted_and_limit_enforced() {
    let mut arg = vec![0, 0, 0, 0, 0, 0x14, 0x04, 0x00];
    arg.extend(std::iter::repeat_n(b'a', 1024));
    let f = frame(0x10, 0, 1, &arg);
    assert_eq!(message!(parse(&f).unwrap(), QueryConfig).config.len(), 1024);

    let mut arg = vec![0, 0, 0, 0, 0, 0x14, 0x04, 0x01];
    arg.extend(std::iter::repeat_n(b'a', 1025));
    let f = frame(0x10, 0, 1, &arg);
    assert_eq!(
        parse(&f),
        Err(WireError::LengthExceedsLimit {
            field: "config string length",
            declared: 1025,
            limit: 1024
        })
    );

    let long = [b'a'; 1025];
    let q = QueryConfig::request(CCmd::ForceSet, &long);
    let header = Header::request(TARGET, INITIATOR, 7, 3, Command::QueryConfig, 1);
    let mut buf = vec![0u8; 2048];
    assert_eq!(
        q.emit(&header, &mut buf),
        Err(WireError::LengthExceedsLimit {
            field: "config string length",
            declared: 1025,
            limit: 1024
        })
    );
}

#[test]
fn length_beyond_frame_rejected_except_for_read_requests() {
    // test-exact claiming 40 bytes in a 60-byte frame (28 available).
    let arg = [0, 0, 0, 0, 0, 0x11, 0x00, 40];
    let f = padded(frame(0x10, 0, 1, &arg));
    assert_eq!(
        parse(&f),
        Err(WireError::CountExceedsFrame {
            field: "config string length",
            count: 40,
            need: 40,
            available: 28
        })
    );
    // The same length on a read *response* is an error too.
    let arg = [0, 0x10, 0, 0, 2, 0x10, 0x00, 40];
    let f = padded(frame(0x18, 0, 1, &arg));
    assert!(matches!(
        parse(&f),
        Err(WireError::CountExceedsFrame { .. })
    ));
    // A read request: aoecfg-style stale length (beyond frame) → empty string.
    let arg = [0, 0, 0, 0, 0, 0x10, 0x07, 0xD0];
    let f = padded(frame(0x10, 0, 1, &arg));
    assert!(message!(parse(&f).unwrap(), QueryConfig).config.is_empty());
}

#[test]
fn aoeping_read_with_filler() {
    // aoeping: length 1024 and 1024 bytes of 0xED filler, read request.
    let mut arg = vec![0, 0, 0, 0, 0, 0x10, 0x04, 0x00];
    arg.extend(std::iter::repeat_n(0xED, 1024));
    let f = frame(0x10, 0, 1, &arg);
    let q = message!(parse(&f).unwrap(), QueryConfig);
    assert_eq!(q.ccmd, CCmd::Read);
    assert_eq!(q.config.len(), 1024);
}

#[test]
fn truncated_config_argument() {
    let f = frame(0x10, 0, 1, &[0, 0, 0, 0]);
    assert_eq!(
        parse(&f),
        Err(WireError::Truncated {
            part: "Query Config argument",
            need: 32,
            have: 28
        })
    );
}
