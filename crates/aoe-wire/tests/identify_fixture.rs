//! IDENTIFY DEVICE fixtures.

use aoe_wire::{ata_string, Identify, WireError, IDENTIFY_LEN};

fn word(block: &[u8], w: usize) -> u16 {
    u16::from_le_bytes([block[2 * w], block[2 * w + 1]])
}

/// The block the target should send for a 2^32 + 5 sector LBA48 export,
/// written word by word from the protocol note.
fn expected_block() -> [u8; 512] {
    let mut b = [0u8; 512];
    let mut put = |w: usize, v: u16| b[2 * w..2 * w + 2].copy_from_slice(&v.to_le_bytes());
    put(0, 0x0040);
    // Legacy geometry: 16383 cylinders (capped), 16 heads, 63 sectors.
    put(1, 16383);
    put(3, 16);
    put(6, 63);
    put(53, 0x0001);
    put(54, 16383);
    put(55, 16);
    put(56, 63);
    let chs: u32 = 16383 * 16 * 63;
    put(57, chs as u16);
    put(58, (chs >> 16) as u16);
    put(47, 0x8000);
    put(49, 0x0200);
    put(50, 0x4000);
    put(60, 0xFFFF); // min(size, 0x0FFFFFFF)
    put(61, 0x0FFF);
    put(80, 0x01F0);
    put(82, 0x0001); // SMART
    put(85, 0x0001);
    put(83, 0x4000 | 0x0400 | 0x1000 | 0x2000);
    put(86, 0x4000 | 0x0400 | 0x1000 | 0x2000);
    put(84, 0x4000);
    put(87, 0x4000);
    put(93, 0x400B);
    put(100, 0x0005);
    put(101, 0x0000);
    put(102, 0x0001);
    put(103, 0x0000);
    // Strings: first character of each pair in the high byte of the LE word.
    let serial = b"7.3:host            ";
    let firmware = b"V1      ";
    let model = b"aoeraid volume                          ";
    for (start, s) in [
        (10usize, &serial[..]),
        (23, &firmware[..]),
        (27, &model[..]),
    ] {
        for (i, pair) in s.chunks(2).enumerate() {
            b[2 * (start + i)] = pair[1];
            b[2 * (start + i) + 1] = pair[0];
        }
    }
    b[510] = 0xA5;
    let sum = b[..511].iter().fold(0u8, |a, &x| a.wrapping_add(x));
    b[511] = sum.wrapping_neg();
    b
}

fn sample() -> Identify {
    Identify {
        flush: true,
        flush_ext: true,
        smart: true,
        ..Identify::new("7.3:host", "V1", "aoeraid volume", (1 << 32) + 5).unwrap()
    }
}

#[test]
fn emit_matches_hand_written_block() {
    let mut out = [0xEEu8; IDENTIFY_LEN];
    sample().emit(&mut out).unwrap();
    let expect = expected_block();
    for w in 0..256 {
        assert_eq!(word(&out, w), word(&expect, w), "word {w}");
    }
    assert_eq!(out.iter().fold(0u8, |a, &x| a.wrapping_add(x)), 0);
    // "7." stored swapped: '.' then '7'.
    assert_eq!(&out[20..22], b".7");
}

#[test]
fn parse_hand_written_block() {
    let id = Identify::parse(&expected_block()).unwrap();
    assert_eq!(id, sample());
    assert_eq!(id.serial_str(), "7.3:host");
    assert_eq!(id.firmware_str(), "V1");
    assert_eq!(id.model_str(), "aoeraid volume");
    assert_eq!(id.sectors, (1 << 32) + 5);
}

#[test]
fn lba48_from_word86_alone_and_lba28_fallback() {
    let mut b = expected_block();
    // vblade: word 83 without bit10 would still be LBA48 via 86.
    b[2 * 83..2 * 83 + 2].copy_from_slice(&0x4000u16.to_le_bytes());
    let id = Identify::parse(&b).unwrap();
    assert!(id.lba48);
    assert_eq!(id.sectors, (1 << 32) + 5);
    // Neither: LBA28 capacity from words 60-61.
    b[2 * 86..2 * 86 + 2].copy_from_slice(&0x4000u16.to_le_bytes());
    let id = Identify::parse(&b).unwrap();
    assert!(!id.lba48);
    assert_eq!(id.sectors, 0x0FFF_FFFF);
}

#[test]
fn lba28_device_roundtrip_and_limits() {
    let small = Identify {
        lba48: false,
        ..Identify::new("s", "f", "m", 1_000_000).unwrap()
    };
    let mut out = [0u8; 512];
    small.emit(&mut out).unwrap();
    assert_eq!(word(&out, 83) & 0x0400, 0);
    assert_eq!(word(&out, 86) & 0x0400, 0);
    assert_eq!(Identify::parse(&out).unwrap(), small);

    let too_big = Identify {
        sectors: 0x1000_0000,
        ..small
    };
    assert_eq!(
        too_big.emit(&mut out),
        Err(WireError::ValueOutOfRange {
            field: "IDENTIFY sectors (LBA28)",
            value: 0x1000_0000,
            max: 0x0FFF_FFFF
        })
    );
    let too_big = Identify {
        sectors: 1 << 48,
        ..sample()
    };
    assert!(matches!(
        too_big.emit(&mut out),
        Err(WireError::ValueOutOfRange {
            max: 0xFFFF_FFFF_FFFF,
            ..
        })
    ));
}

#[test]
fn short_block_and_bad_strings() {
    assert_eq!(
        Identify::parse(&[0u8; 511]),
        Err(WireError::Truncated {
            part: "IDENTIFY data",
            need: 512,
            have: 511
        })
    );
    // Extra bytes (frame padding) are ignored.
    let mut long = expected_block().to_vec();
    long.extend_from_slice(&[0xFF; 100]);
    assert_eq!(Identify::parse(&long).unwrap(), sample());

    assert_eq!(
        ata_string::<8>("123456789"),
        Err(WireError::LengthExceedsLimit {
            field: "ATA string",
            declared: 9,
            limit: 8
        })
    );
    assert!(matches!(
        ata_string::<8>("é"),
        Err(WireError::ValueOutOfRange { .. })
    ));
    assert_eq!(&ata_string::<4>("ab").unwrap(), b"ab  ");
}

#[test]
fn garbage_strings_do_not_panic() {
    let mut b = [0u8; 512];
    for (i, x) in b.iter_mut().enumerate() {
        *x = (i * 37 % 251) as u8 | 0x80;
    }
    let id = Identify::parse(&b).unwrap();
    assert!(id.serial_str().len() <= 20);
    // Whatever parsed and is emittable comes back unchanged.
    let mut out = [0u8; 512];
    if id.emit(&mut out).is_ok() {
        assert_eq!(Identify::parse(&out).unwrap(), id);
    }
}
