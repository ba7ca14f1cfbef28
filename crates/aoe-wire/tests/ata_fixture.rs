//! ATA request/response fixtures written byte by byte from the protocol note.

mod common;

use aoe_wire::{
    ata, parse, respond_in_place, write_ata_request, AFlags, Ata, AtaArg, Command, Header, Message,
    Packet, ATA_DATA_OFFSET, MIN_FRAME,
};
use common::{assert_emits, frame, message, padded, INITIATOR, TAG, TARGET};

/// READ SECTORS EXT of 2 sectors at LBA 0x0000_1234_5678_9ABC, tag 0x0102_0304,
/// to e7.3, as Linux would send it (no data, padded to 60).
fn read_ext_request() -> Vec<u8> {
    let mut f = vec![
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // dst
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // src
        0x88, 0xA2, // EtherType
        0x10, // version 1, no flags
        0x00, // error
        0x00, 0x07, // major 7
        0x03, // minor 3
        0x00, // command ATA
        0x01, 0x02, 0x03, 0x04, // tag
        0x40, // AFlags E
        0x00, // feature
        0x02, // sector count
        0x24, // READ SECTORS EXT
        0xBC, 0x9A, 0x78, 0x56, 0x34, 0x12, // LBA, least significant first
        0x00, 0x00, // reserved
    ];
    f.resize(MIN_FRAME, 0);
    f
}

#[test]
fn read_ext_request_parses_field_by_field() {
    let frame = read_ext_request();
    let p = parse(&frame).unwrap();
    let h = p.header;
    assert_eq!(h.dst, TARGET);
    assert_eq!(h.src, INITIATOR);
    assert_eq!(h.version, 1);
    assert!(!h.response);
    assert_eq!(h.error, None);
    assert_eq!(h.shelf, 7);
    assert_eq!(h.slot, 3);
    assert_eq!(h.command, Command::Ata);
    assert_eq!(h.tag, 0x0102_0304);
    let a = message!(p, Ata);
    assert!(a.arg.aflags.extended());
    assert!(!a.arg.aflags.write());
    assert_eq!(a.arg.sector_count, 2);
    assert_eq!(a.arg.cmd_status, ata::READ_EXT);
    assert_eq!(a.arg.lba48(), 0x1234_5678_9ABC);
    assert_eq!(a.arg.effective_lba(), 0x1234_5678_9ABC);
    assert_eq!(a.data, &[0u8; 24][..]);
}

#[test]
fn read_ext_request_rebuilds_byte_identical() {
    let frame = read_ext_request();
    let header = Header::request(TARGET, INITIATOR, 7, 3, Command::Ata, 0x0102_0304);
    let arg = AtaArg::read_write(false, 0x1234_5678_9ABC, 2, true).unwrap();
    let mut buf = [0xEEu8; 128];
    let off = write_ata_request(&mut buf, &header, &arg).unwrap();
    assert_eq!(off, ATA_DATA_OFFSET);
    let n = aoe_wire::finish_frame(&mut buf, off).unwrap();
    assert_eq!(&buf[..n], &frame[..]);

    let p = parse(&frame).unwrap();
    assert_emits(&frame, |buf| p.emit(buf));
}

#[test]
fn response_in_place_swaps_addresses_and_keeps_tag() {
    let mut frame = read_ext_request();
    respond_in_place(&mut frame, TARGET, 7, 3).unwrap();
    let h = Header::parse(&frame).unwrap();
    assert_eq!(h.dst, INITIATOR);
    assert_eq!(h.src, TARGET);
    assert!(h.response);
    assert_eq!(h.tag, 0x0102_0304);
    assert_eq!(frame[14], 0x18);
    let ata = Ata {
        arg: AtaArg {
            aflags: AFlags::EXTENDED,
            cmd_status: ata::STATUS_OK,
            ..AtaArg::default()
        },
        data: &[],
    };
    assert_eq!(ata.buffer_len(), MIN_FRAME);
    let pkt = Packet {
        header: h,
        message: Message::Ata(ata),
    };
    assert_eq!(pkt.buffer_len(), MIN_FRAME);
}

#[test]
fn lba28_write_with_device_register() {
    // WRITE SECTORS (0x30), 1 sector at LBA 0x0ABCDEF1: lba3 = 0xE0 | 0x0A.
    let mut arg = vec![
        0x01, 0x00, 0x01, 0x30, 0xF1, 0xDE, 0xBC, 0xEA, 0x00, 0x00, 0x00, 0x00,
    ];
    arg.extend((0..512).map(|i| i as u8));
    let f = frame(0x10, 0, 0, &arg);
    let p = parse(&f).unwrap();
    let a = message!(p, Ata);
    assert!(a.arg.aflags.write());
    assert!(!a.arg.aflags.extended());
    assert_eq!(a.arg.cmd_status, ata::WRITE);
    assert_eq!(a.arg.device(), 0xEA);
    assert_eq!(a.arg.lba28(), 0x0ABC_DEF1);
    assert_eq!(a.arg.effective_lba(), 0x0ABC_DEF1);
    assert_eq!(a.arg.lba48(), 0xEABC_DEF1);
    assert_eq!(a.data.len(), 512);
    assert_eq!(a.data[511], 0xFF);

    let built = AtaArg::read_write(true, 0x0ABC_DEF1, 1, false).unwrap();
    assert_eq!(built, a.arg);
    let header = Header::request(TARGET, INITIATOR, 7, 3, Command::Ata, TAG);
    let ata = Ata {
        arg: built,
        data: a.data,
    };
    assert_emits(&f, |buf| ata.emit(&header, buf));
}

#[test]
fn lba28_read_with_e0_masks_to_28_bits() {
    // The note's observation: LBA28 read with lba3 = 0xE0 reads LBA 5.
    let arg = [
        0x00, 0x00, 0x01, 0x20, 0x05, 0x00, 0x00, 0xE0, 0x00, 0x00, 0x00, 0x00,
    ];
    let f = frame(0x10, 0, 0, &arg);
    let a = message!(parse(&f).unwrap(), Ata);
    assert_eq!(a.arg.effective_lba(), 5);
    assert_eq!(a.arg.lba, 0xE000_0005);
    assert!(a.data.is_empty(), "unpadded 36-byte frame has no data");
}

#[test]
fn lba_limits_on_build() {
    assert!(AtaArg::read_write(false, 0x0FFF_FFFF, 1, false).is_ok());
    assert_eq!(
        AtaArg::read_write(false, 0x1000_0000, 1, false),
        Err(aoe_wire::WireError::ValueOutOfRange {
            field: "LBA28",
            value: 0x1000_0000,
            max: 0x0FFF_FFFF
        })
    );
    assert!(AtaArg::read_write(false, (1 << 48) - 1, 1, true).is_ok());
    assert!(matches!(
        AtaArg::read_write(true, 1 << 48, 1, true),
        Err(aoe_wire::WireError::ValueOutOfRange { field: "LBA48", .. })
    ));
    let bad = AtaArg {
        lba: 1 << 48,
        ..AtaArg::default()
    };
    let mut buf = [0u8; 64];
    assert!(matches!(
        bad.emit(&mut buf),
        Err(aoe_wire::WireError::ValueOutOfRange {
            field: "ATA LBA",
            ..
        })
    ));
}

#[test]
fn identify_request_as_linux_sends_it() {
    let arg = [
        0x00, 0x00, 0x01, 0xEC, 0x00, 0x00, 0x00, 0xA0, 0x00, 0x00, 0x00, 0x00,
    ];
    let f = padded(frame(0x10, 0, 0, &arg));
    let header = Header::request(TARGET, INITIATOR, 7, 3, Command::Ata, TAG);
    assert_emits(&f, |buf| {
        let off = write_ata_request(buf, &header, &AtaArg::identify())?;
        aoe_wire::finish_frame(buf, off)
    });
}

#[test]
fn read_reply_and_error_reply() {
    // Successful read reply: status 0x40, 2 sectors of data, E flag echoed.
    let mut arg = vec![
        0x40, 0x00, 0x00, 0x40, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];
    arg.extend(std::iter::repeat_n(0x5A, 1024));
    let f = frame(0x18, 0, 0, &arg);
    let p = parse(&f).unwrap();
    assert!(p.header.response);
    let a = message!(p, Ata);
    assert!(!a.arg.is_failed());
    assert_eq!(a.data.len(), 1024);

    let request = Header::request(TARGET, INITIATOR, 7, 3, Command::Ata, TAG);
    let req_arg = AtaArg::read_write(false, 0x10, 2, true).unwrap();
    let mut buf = vec![0u8; 36 + 1024];
    let off = aoe_wire::write_ata_response(
        &mut buf,
        &request,
        TARGET,
        7,
        3,
        &req_arg.reply(ata::STATUS_OK, 0),
    )
    .unwrap();
    buf[off..].fill(0x5A);
    assert_eq!(buf, f);

    // Out-of-range read, vblade style: status 0x41, error IDNF, 36 bytes, no data.
    let arg = [
        0x40, 0x10, 0x00, 0x41, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];
    let f = frame(0x18, 0, 0, &arg);
    let a = message!(parse(&f).unwrap(), Ata);
    assert!(a.arg.is_failed());
    assert_eq!(a.arg.err_feature, ata::ERROR_IDNF);
    assert_eq!(a.arg, req_arg.reply(ata::STATUS_FAILED, ata::ERROR_IDNF));
}

#[test]
fn reserved_bits_ignored_on_receive() {
    // byte 14 with a stray bit 0 (aoeping SMART), AFlags with every reserved bit,
    // reserved bytes 34-35 nonzero.
    let arg = [
        0xFF, 0x00, 0x01, 0xEC, 0x00, 0x00, 0x00, 0xA0, 0x00, 0x00, 0x12, 0x34,
    ];
    let f = frame(0x11, 0x77, 0, &arg);
    let p = parse(&f).unwrap();
    assert_eq!(p.header.version, 1);
    assert!(!p.header.response);
    assert_eq!(p.header.error, None, "error byte only counts with E set");
    let a = message!(p, Ata);
    assert_eq!(a.arg.aflags.bits(), 0x53);
    // Emitting writes only defined bits and zero reserved bytes.
    let mut buf = [0u8; 60];
    p.emit(&mut buf).unwrap();
    assert_eq!(buf[14], 0x10);
    assert_eq!(buf[15], 0);
    assert_eq!(buf[24], 0x53);
    assert_eq!(&buf[34..36], &[0, 0]);
}

#[test]
fn truncated_ata_argument() {
    let f = frame(0x10, 0, 0, &[0x40, 0x00, 0x01]);
    assert_eq!(
        parse(&f),
        Err(aoe_wire::WireError::Truncated {
            part: "ATA argument",
            need: 36,
            have: 27
        })
    );
}
