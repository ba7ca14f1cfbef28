//! Common header, framing, MAC address and helper tests.

mod common;

use aoe_wire::{
    effective_sector_count, finish_frame, parse, respond_in_place, sectors_per_frame, Command,
    ErrorCode, Header, Mac, MacParseError, Message, Packet, WireError, MIN_FRAME,
};
use common::{assert_emits, frame, message, padded, INITIATOR, TAG, TARGET};

#[test]
fn header_fields_and_rebuild() {
    let f = padded(frame(0x10, 0, 0xF3, &[1, 2, 3]));
    let p = parse(&f).unwrap();
    let h = p.header;
    assert_eq!(h.dst, TARGET);
    assert_eq!(h.src, INITIATOR);
    assert_eq!((h.version, h.response, h.error), (1, false, None));
    assert_eq!((h.shelf, h.slot), (7, 3));
    assert_eq!(h.command, Command::Vendor(0xF3));
    assert_eq!(h.tag, TAG);
    let rest = message!(p, Other);
    assert_eq!(rest.len(), 36);
    assert_eq!(&rest[..3], &[1, 2, 3]);
    assert_emits(&f, |buf| p.emit(buf));
    let mut hdr = [0u8; 24];
    assert_eq!(h.emit(&mut hdr).unwrap(), 24);
    assert_eq!(&hdr[..], &f[..24]);
}

#[test]
fn command_codes() {
    for (v, c) in [
        (0, Command::Ata),
        (1, Command::QueryConfig),
        (2, Command::MacMask),
        (3, Command::ReserveRelease),
        (4, Command::Unknown(4)),
        (0xEF, Command::Unknown(0xEF)),
        (0xF0, Command::Vendor(0xF0)),
        (0xFF, Command::Vendor(0xFF)),
    ] {
        assert_eq!(Command::from(v), c);
        assert_eq!(u8::from(c), v);
    }
}

#[test]
fn error_codes_only_with_e_flag() {
    for (v, e) in [
        (1, ErrorCode::UnrecognizedCommand),
        (2, ErrorCode::BadArgument),
        (3, ErrorCode::DeviceUnavailable),
        (4, ErrorCode::ConfigStringPresent),
        (5, ErrorCode::UnsupportedVersion),
        (6, ErrorCode::TargetReserved),
        (0, ErrorCode::Unknown(0)),
        (7, ErrorCode::Unknown(7)),
    ] {
        assert_eq!(ErrorCode::from(v), e);
        assert_eq!(u8::from(e), v);
        let f = padded(frame(0x1C, v, 0x10, &[]));
        assert_eq!(parse(&f).unwrap().header.error, Some(e));
        let f = padded(frame(0x18, v, 0x10, &[]));
        assert_eq!(parse(&f).unwrap().header.error, None);
    }
}

#[test]
fn unknown_command_error_reply() {
    // vblade's answer to command 0x10: E + error 1, 60 bytes.
    let request = Header::request(TARGET, INITIATOR, 7, 3, Command::Unknown(0x10), TAG);
    let pkt = Packet {
        header: request
            .response_to(TARGET, 7, 3)
            .with_error(ErrorCode::UnrecognizedCommand),
        message: Message::Other(&[]),
    };
    let mut buf = [0xAAu8; 80];
    assert_eq!(pkt.emit(&mut buf).unwrap(), 60);
    assert_eq!(&buf[..60], &padded(frame(0x1C, 1, 0x10, &[]))[..]);
}

#[test]
fn bare_error_reply_keeps_error() {
    // ggaoed: error replies cut to the 24-byte header.
    let f = frame(0x1C, 2, 1, &[]);
    assert_eq!(f.len(), 24);
    let p = parse(&f).unwrap();
    assert_eq!(p.header.error, Some(ErrorCode::BadArgument));
    assert_eq!(p.message, Message::Bare(&[]));
    // A partial argument is not re-sent: the emitted frame is header + zeros,
    // which parses as a valid (empty) argument.
    let f = frame(0x1C, 2, 1, &[0xE4, 0xE4, 0xE4, 0xE4, 0xE4, 0x77, 0xE4]);
    let p = parse(&f).unwrap();
    assert_eq!(p.message, Message::Bare(&f[24..]));
    let mut buf = [0u8; 60];
    assert_eq!(p.emit(&mut buf).unwrap(), 60);
    assert_eq!(&buf[..24], &f[..24]);
    assert!(buf[24..].iter().all(|&b| b == 0));
    assert_eq!(parse(&buf).unwrap().header, p.header);
    // Same bytes without E: the argument is required.
    let f = frame(0x18, 2, 1, &[]);
    assert!(matches!(parse(&f), Err(WireError::Truncated { .. })));
    // Bare needs E to be emitted.
    let pkt = Packet {
        header: Header::request(TARGET, INITIATOR, 7, 3, Command::QueryConfig, 1),
        message: Message::Bare(&[]),
    };
    assert!(matches!(
        pkt.emit(&mut [0u8; 60]),
        Err(WireError::Inconsistent { .. })
    ));
}

#[test]
fn rejects_other_ethertypes_and_short_frames() {
    let mut f = padded(frame(0x10, 0, 0, &[0; 12]));
    f[12] = 0x08;
    f[13] = 0x00;
    assert_eq!(parse(&f), Err(WireError::EtherType { found: 0x0800 }));
    for len in 0..24 {
        assert_eq!(
            parse(&padded(frame(0x10, 0, 0, &[]))[..len]),
            Err(WireError::Truncated {
                part: "AoE header",
                need: 24,
                have: len
            })
        );
    }
}

#[test]
fn emit_checks() {
    let mut h = Header::request(TARGET, INITIATOR, 7, 3, Command::Ata, 1);
    h.version = 16;
    assert_eq!(
        h.emit(&mut [0u8; 24]),
        Err(WireError::ValueOutOfRange {
            field: "header version",
            value: 16,
            max: 15
        })
    );
    h.version = 1;
    assert_eq!(
        h.emit(&mut [0u8; 23]),
        Err(WireError::BufferTooSmall { need: 24, have: 23 })
    );
    // Command/message mismatch.
    let pkt = Packet {
        header: h,
        message: Message::Other(&[]),
    };
    assert!(matches!(
        pkt.emit(&mut [0u8; 60]),
        Err(WireError::Inconsistent { .. })
    ));
    // A frame that needs padding must fit 60 bytes.
    let pkt = Packet {
        header: Header::request(TARGET, INITIATOR, 7, 3, Command::Vendor(0xF0), 1),
        message: Message::Other(&[]),
    };
    assert_eq!(
        pkt.emit(&mut [0u8; 59]),
        Err(WireError::BufferTooSmall { need: 60, have: 59 })
    );
}

#[test]
fn finish_frame_pads_with_zeros() {
    let mut buf = [0xFFu8; 100];
    assert_eq!(finish_frame(&mut buf, 36).unwrap(), MIN_FRAME);
    assert!(buf[36..60].iter().all(|&b| b == 0));
    assert_eq!(buf[60], 0xFF);
    assert_eq!(finish_frame(&mut buf, 80).unwrap(), 80);
    assert_eq!(
        finish_frame(&mut [0u8; 40], 36),
        Err(WireError::BufferTooSmall { need: 60, have: 40 })
    );
}

#[test]
fn respond_in_place_uses_own_address_not_broadcast() {
    let mut f = padded(frame(0x11, 0x33, 1, &[0; 8]));
    f[16] = 0xFF;
    f[17] = 0xFF;
    f[18] = 0xFF;
    respond_in_place(&mut f, TARGET, 7, 3).unwrap();
    assert_eq!(&f[..6], &INITIATOR.0);
    assert_eq!(&f[6..12], &TARGET.0);
    assert_eq!(&f[14..20], &[0x18, 0x00, 0x00, 0x07, 0x03, 0x01]);
    assert_eq!(&f[20..24], &[0x80, 0, 0, 1]);
    assert_eq!(
        respond_in_place(&mut [0u8; 10], TARGET, 7, 3),
        Err(WireError::Truncated {
            part: "AoE header",
            need: 24,
            have: 10
        })
    );
}

#[test]
fn address_matching() {
    let h = Header::request(TARGET, INITIATOR, 7, 3, Command::Ata, 0);
    assert!(h.addresses(7, 3));
    assert!(!h.addresses(7, 4));
    assert!(!h.addresses(8, 3));
    let b = Header::request(TARGET, INITIATOR, 0xFFFF, 3, Command::Ata, 0);
    assert!(b.addresses(9, 3) && !b.addresses(9, 4));
    let b = Header::request(TARGET, INITIATOR, 7, 0xFF, Command::Ata, 0);
    assert!(b.addresses(7, 200) && !b.addresses(6, 200));
}

#[test]
fn sectors_per_frame_table() {
    assert_eq!(sectors_per_frame(1500), 2);
    assert_eq!(sectors_per_frame(4000), 7);
    assert_eq!(sectors_per_frame(9000), 17);
    assert_eq!(sectors_per_frame(547), 0);
    assert_eq!(sectors_per_frame(548), 1);
    assert_eq!(sectors_per_frame(0), 0);
    assert_eq!(sectors_per_frame(u32::MAX), 255);
    assert_eq!(sectors_per_frame(36 + 255 * 512), 255);
    assert_eq!(effective_sector_count(0), 2);
    assert_eq!(effective_sector_count(17), 17);
}

#[test]
fn mac_text_forms() {
    let m: Mac = "02:aa:BB:cc:dd:0e".parse().unwrap();
    assert_eq!(m, Mac([0x02, 0xAA, 0xBB, 0xCC, 0xDD, 0x0E]));
    assert_eq!(m.to_string(), "02:aa:bb:cc:dd:0e");
    assert_eq!(format!("{m:?}"), "02:aa:bb:cc:dd:0e");
    assert_eq!("2-aa-bb-cc-dd-e".parse::<Mac>().unwrap().0[5], 0x0E);
    assert_eq!(
        "02:aa:bb:cc:dd".parse::<Mac>(),
        Err(MacParseError::OctetCount { found: 5 })
    );
    assert_eq!(
        "02:aa:bb:cc:dd:ee:ff".parse::<Mac>(),
        Err(MacParseError::OctetCount { found: 7 })
    );
    assert_eq!(
        "02:aa:bx:cc:dd:ee".parse::<Mac>(),
        Err(MacParseError::BadOctet { index: 2 })
    );
    assert_eq!(
        "02:aa:bb-cc:dd:ee".parse::<Mac>(),
        Err(MacParseError::BadSeparator)
    );
    assert_eq!("".parse::<Mac>(), Err(MacParseError::BadOctet { index: 0 }));
    let msg = "zz".parse::<Mac>().unwrap_err().to_string();
    assert!(msg.contains("aa:bb:cc:dd:ee:ff"), "{msg}");
    assert!(Mac::BROADCAST.is_broadcast() && Mac::BROADCAST.is_multicast());
    assert!(Mac([0x01, 0, 0x5E, 0, 0, 1]).is_multicast());
    assert!(!TARGET.is_multicast() && TARGET.is_unicast());
    assert!(!Mac::ZERO.is_unicast());
}

#[test]
fn error_messages_name_the_field() {
    let e = WireError::CountExceedsFrame {
        field: "MAC Mask Dir Count",
        count: 5,
        need: 40,
        available: 32,
    };
    assert_eq!(
        e.to_string(),
        "MAC Mask Dir Count = 5 needs 40 bytes but only 32 follow in the frame"
    );
    assert_eq!(
        WireError::EtherType { found: 0x800 }.to_string(),
        "not an AoE frame: EtherType 0x0800, expected 0x88a2"
    );
}
