//! ATA request/response fixtures written byte by byte from the protocol note.

use aoe_wire::{
    ata, parse, respond_in_place, write_ata_request, AFlags, Ata, AtaArg, Command, Header, Mac,
    Message, Packet, ATA_DATA_OFFSET, MIN_FRAME,
};

const INITIATOR: Mac = Mac([0x02, 0x00, 0x00, 0x00, 0x00, 0x01]);
const TARGET: Mac = Mac([0x02, 0x00, 0x00, 0x00, 0x00, 0x02]);

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
    let Message::Ata(a) = p.message else {
        panic!("not ATA: {:?}", p.message)
    };
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
    let mut again = [0u8; 128];
    let n = p.emit(&mut again).unwrap();
    assert_eq!(&again[..n], &frame[..]);
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
