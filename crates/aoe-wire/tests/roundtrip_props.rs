//! Property tests: `parse(emit(x)) == x` for every repr.

use aoe_wire::{
    parse, AFlags, Ata, AtaArg, CCmd, Command, DCmd, Directive, Directives, ErrorCode, Header,
    Identify, MCmd, MError, Mac, MacList, MacMask, Message, Packet, QueryConfig, RCmd, Reserve,
    IDENTIFY_LEN, MIN_FRAME,
};
use proptest::prelude::*;

fn mac() -> impl Strategy<Value = Mac> {
    any::<[u8; 6]>().prop_map(Mac)
}

fn header(command: Command) -> impl Strategy<Value = Header> {
    (
        mac(),
        mac(),
        0u8..16,
        any::<bool>(),
        proptest::option::of(any::<u8>().prop_map(ErrorCode::from)),
        any::<u16>(),
        any::<u8>(),
        any::<u32>(),
    )
        .prop_map(
            move |(dst, src, version, response, error, shelf, slot, tag)| Header {
                dst,
                src,
                version,
                response,
                error,
                shelf,
                slot,
                command,
                tag,
            },
        )
}

fn ata_arg() -> impl Strategy<Value = AtaArg> {
    (
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        0u64..(1 << 48),
    )
        .prop_map(|(f, err_feature, sector_count, cmd_status, lba)| AtaArg {
            aflags: AFlags::from_bits_truncate(f),
            err_feature,
            sector_count,
            cmd_status,
            lba,
        })
}

/// An owned message the strategies can produce; borrowed into a repr per case.
#[derive(Debug, Clone)]
enum Owned {
    Ata(AtaArg, Vec<u8>),
    Config(u16, u16, u8, u8, CCmd, Vec<u8>),
    Mask(MCmd, MError, u8, Vec<Directive>),
    Reserve(RCmd, Vec<Mac>),
    Other(Vec<u8>),
}

impl Owned {
    fn message(&self) -> Message<'_> {
        match self {
            Owned::Ata(arg, data) => Message::Ata(Ata { arg: *arg, data }),
            Owned::Config(bc, fw, sc, v, ccmd, s) => Message::QueryConfig(QueryConfig {
                buffer_count: *bc,
                firmware: *fw,
                sector_count: *sc,
                version: *v,
                ccmd: *ccmd,
                config: s,
            }),
            Owned::Mask(mcmd, merror, failed_index, dirs) => Message::MacMask(MacMask {
                mcmd: *mcmd,
                merror: *merror,
                failed_index: *failed_index,
                directives: Directives::from_slice(dirs),
            }),
            Owned::Reserve(rcmd, macs) => Message::Reserve(Reserve {
                rcmd: *rcmd,
                macs: MacList::from_slice(macs),
            }),
            Owned::Other(b) => Message::Other(b),
        }
    }
}

/// Data long enough (≥ 24 bytes) that the frame needs no padding, so the
/// implicit-length payloads come back exactly.
fn ata_msg() -> impl Strategy<Value = Owned> {
    (ata_arg(), proptest::collection::vec(any::<u8>(), 24..1200))
        .prop_map(|(a, d)| Owned::Ata(a, d))
}

fn config_msg() -> impl Strategy<Value = Owned> {
    (
        any::<u16>(),
        any::<u16>(),
        any::<u8>(),
        0u8..16,
        (0u8..16).prop_map(CCmd::from_nibble),
        proptest::collection::vec(any::<u8>(), 0..=1024),
    )
        .prop_map(|(bc, fw, sc, v, ccmd, s)| Owned::Config(bc, fw, sc, v, ccmd, s))
}

fn directive() -> impl Strategy<Value = Directive> {
    (any::<u8>(), mac()).prop_map(|(d, mac)| Directive {
        dcmd: DCmd::from(d),
        mac,
    })
}

fn mask_msg(response: bool) -> BoxedStrategy<Owned> {
    let ok = (any::<u8>(), proptest::collection::vec(directive(), 0..=255))
        .prop_map(|(m, dirs)| Owned::Mask(MCmd::from(m), MError::Ok, 0, dirs));
    if response {
        let failed = (any::<u8>(), 1u8..=255, any::<u8>())
            .prop_map(|(m, e, idx)| Owned::Mask(MCmd::from(m), MError::from(e), idx, Vec::new()));
        prop_oneof![ok, failed].boxed()
    } else {
        ok.boxed()
    }
}

fn reserve_msg() -> impl Strategy<Value = Owned> {
    (any::<u8>(), proptest::collection::vec(mac(), 0..=255))
        .prop_map(|(r, macs)| Owned::Reserve(RCmd::from(r), macs))
}

fn packet() -> impl Strategy<Value = (Header, Owned)> {
    let ata = header(Command::Ata).prop_flat_map(|h| (Just(h), ata_msg()));
    let config = header(Command::QueryConfig).prop_flat_map(|h| (Just(h), config_msg()));
    let mask = header(Command::MacMask).prop_flat_map(|h| (Just(h), mask_msg(h.response)));
    let reserve = header(Command::ReserveRelease).prop_flat_map(|h| (Just(h), reserve_msg()));
    let other = (4u8..=255)
        .prop_flat_map(|c| header(Command::from(c)))
        .prop_flat_map(|h| {
            (
                Just(h),
                proptest::collection::vec(any::<u8>(), 36..300).prop_map(Owned::Other),
            )
        });
    prop_oneof![ata, config, mask, reserve, other]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn packet_roundtrip((header, owned) in packet()) {
        let pkt = Packet { header, message: owned.message() };
        let mut buf = vec![0u8; pkt.buffer_len()];
        let n = pkt.emit(&mut buf).unwrap();
        prop_assert_eq!(n, buf.len());
        prop_assert!(n >= MIN_FRAME);
        let back = parse(&buf[..n]).unwrap();
        prop_assert_eq!(back, pkt);
        // And the bytes are a fixpoint.
        let mut again = vec![0u8; n];
        prop_assert_eq!(back.emit(&mut again).unwrap(), n);
        prop_assert_eq!(again, buf);
    }

    #[test]
    fn short_ata_data_comes_back_zero_padded(
        header in header(Command::Ata),
        arg in ata_arg(),
        data in proptest::collection::vec(any::<u8>(), 0..24),
    ) {
        let ata = Ata { arg, data: &data };
        let mut buf = [0xA5u8; 128];
        let n = ata.emit(&header, &mut buf).unwrap();
        prop_assert_eq!(n, MIN_FRAME);
        let back = parse(&buf[..n]).unwrap();
        prop_assert_eq!(back.header, header);
        let Message::Ata(b) = back.message else { panic!("not ATA") };
        prop_assert_eq!(b.arg, arg);
        prop_assert_eq!(&b.data[..data.len()], &data[..]);
        prop_assert!(b.data[data.len()..].iter().all(|&x| x == 0));
    }

    #[test]
    fn bare_error_reply_emits_a_parsable_frame(
        (header, rest) in (0u8..4).prop_flat_map(|c| {
            // Shorter than the command's fixed argument (ATA 12, config 8, mask 4, reserve 2).
            let fixed = [12usize, 8, 4, 2][usize::from(c)];
            (header(Command::from(c)), proptest::collection::vec(any::<u8>(), 0..fixed))
        }),
        code in any::<u8>(),
    ) {
        let header = header.with_error(ErrorCode::from(code));
        let mut frame = [0u8; 36];
        let n = 24 + rest.len();
        header.emit(&mut frame).unwrap();
        frame[24..n].copy_from_slice(&rest);
        let p = parse(&frame[..n]).unwrap();
        prop_assert_eq!(p.message, Message::Bare(&rest[..]));
        let mut buf = [0xFFu8; 60];
        prop_assert_eq!(p.emit(&mut buf).unwrap(), 60);
        let back = parse(&buf).unwrap();
        prop_assert_eq!(back.header, header);
        prop_assert!(!matches!(back.message, Message::Bare(_)));
    }

    #[test]
    fn mask_listing_equals_explicit_directives(macs in proptest::collection::vec(mac(), 0..=255)) {
        let explicit: Vec<Directive> =
            macs.iter().map(|&mac| Directive { dcmd: DCmd::None, mac }).collect();
        prop_assert_eq!(Directives::listing(&macs), Directives::from_slice(&explicit));
        let header = Header::request(Mac::ZERO, Mac::ZERO, 1, 1, Command::MacMask, 1)
            .response_to(Mac::BROADCAST, 1, 1);
        let a = MacMask::request(MCmd::Read, Directives::listing(&macs));
        let b = MacMask::request(MCmd::Read, Directives::from_slice(&explicit));
        let mut fa = vec![0u8; a.buffer_len()];
        let mut fb = vec![0u8; b.buffer_len()];
        a.emit(&header, &mut fa).unwrap();
        b.emit(&header, &mut fb).unwrap();
        prop_assert_eq!(fa, fb);
    }

    #[test]
    fn header_roundtrip(h in (0u8..=255).prop_flat_map(|c| header(Command::from(c)))) {
        let mut buf = [0u8; 24];
        prop_assert_eq!(h.emit(&mut buf).unwrap(), 24);
        prop_assert_eq!(Header::parse(&buf).unwrap(), h);
    }

    #[test]
    fn identify_roundtrip(
        serial in any::<[u8; 20]>(),
        firmware in any::<[u8; 8]>(),
        model_a in any::<[u8; 20]>(),
        model_b in any::<[u8; 20]>(),
        lba48 in any::<bool>(),
        flush in any::<bool>(),
        flush_ext in any::<bool>(),
        smart in any::<bool>(),
        big in 0u64..(1 << 48),
        small in 0u64..=0x0FFF_FFFF,
    ) {
        let mut model = [0u8; 40];
        model[..20].copy_from_slice(&model_a);
        model[20..].copy_from_slice(&model_b);
        let id = Identify {
            serial, firmware, model,
            sectors: if lba48 { big } else { small },
            lba48, flush, flush_ext, smart,
        };
        let mut out = [0u8; IDENTIFY_LEN];
        id.emit(&mut out).unwrap();
        prop_assert_eq!(Identify::parse(&out).unwrap(), id);
        prop_assert_eq!(out.iter().fold(0u8, |a, &x| a.wrapping_add(x)), 0);
    }

    #[test]
    fn mac_text_roundtrip(m in mac()) {
        prop_assert_eq!(m.to_string().parse::<Mac>().unwrap(), m);
    }

    #[test]
    fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200), et in any::<bool>()) {
        let mut bytes = bytes;
        if et && bytes.len() >= 14 {
            bytes[12] = 0x88;
            bytes[13] = 0xA2;
        }
        let _ = parse(&bytes);
    }
}
