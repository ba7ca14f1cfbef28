//! ATA IDENTIFY DEVICE data: 256 little-endian words with byte-swapped strings.

use crate::{ata_msg::LBA48_MAX, ensure_frame, WireError};

/// Bytes in an IDENTIFY DEVICE block.
pub const IDENTIFY_LEN: usize = 512;

/// LBA28 capacity ceiling (words 60–61).
const LBA28_MAX_SECTORS: u64 = 0x0FFF_FFFF;

/// Word numbers and bits used here.
mod word {
    pub(super) const GENERAL: usize = 0;
    pub(super) const CYLINDERS: usize = 1;
    pub(super) const HEADS: usize = 3;
    pub(super) const SECTORS_PER_TRACK: usize = 6;
    pub(super) const SERIAL: usize = 10;
    pub(super) const FIRMWARE: usize = 23;
    pub(super) const MODEL: usize = 27;
    pub(super) const MULTIPLE: usize = 47;
    pub(super) const CAPS: usize = 49;
    pub(super) const CAPS2: usize = 50;
    pub(super) const VALIDITY: usize = 53;
    pub(super) const CUR_CYLINDERS: usize = 54;
    pub(super) const CUR_HEADS: usize = 55;
    pub(super) const CUR_SECTORS: usize = 56;
    pub(super) const CUR_CAPACITY: usize = 57;
    pub(super) const LBA28_CAPACITY: usize = 60;
    pub(super) const MAJOR_VERSION: usize = 80;
    pub(super) const CMDSET1: usize = 82;
    pub(super) const CMDSET2: usize = 83;
    pub(super) const CMDSET_EXT: usize = 84;
    pub(super) const ENABLED1: usize = 85;
    pub(super) const ENABLED2: usize = 86;
    pub(super) const DEFAULTS: usize = 87;
    pub(super) const RESET_RESULT: usize = 93;
    pub(super) const LBA48_CAPACITY: usize = 100;
    pub(super) const INTEGRITY: usize = 255;

    /// "Word contents valid" pattern (bit 14 set, bit 15 clear).
    pub(super) const VALID: u16 = 0x4000;
    pub(super) const BIT_SMART: u16 = 1 << 0;
    pub(super) const BIT_LBA48: u16 = 1 << 10;
    pub(super) const BIT_FLUSH: u16 = 1 << 12;
    pub(super) const BIT_FLUSH_EXT: u16 = 1 << 13;
    pub(super) const BIT_LBA: u16 = 1 << 9;
}

/// Legacy geometry reported in words 1/3/6 and 54–58 (Linux reads it only
/// without LBA48).
const GEOMETRY_HEADS: u64 = 16;
const GEOMETRY_SECTORS: u64 = 63;
const GEOMETRY_MAX_CYLINDERS: u64 = 16383;

/// The fields of IDENTIFY DEVICE data that matter over AoE.
///
/// Strings are kept as the raw, space-padded ASCII bytes in reading order;
/// build them with [`ata_string`] and read them with the `*_str` accessors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Identify {
    /// Serial number, words 10–19.
    pub serial: [u8; 20],
    /// Firmware revision, words 23–26.
    pub firmware: [u8; 8],
    /// Model number, words 27–46.
    pub model: [u8; 40],
    /// Capacity in 512-byte sectors.
    pub sectors: u64,
    /// LBA48 supported (bit 10 of words 83 and 86).
    pub lba48: bool,
    /// FLUSH CACHE supported (bit 12 of words 83/86).
    pub flush: bool,
    /// FLUSH CACHE EXT supported (bit 13 of words 83/86).
    pub flush_ext: bool,
    /// SMART supported and enabled (bit 0 of words 82/85).
    pub smart: bool,
}

/// Space-pads `s` to an `N`-byte ATA string. Errors if `s` is longer than
/// `N` or has a byte outside printable ASCII.
pub fn ata_string<const N: usize>(s: &str) -> Result<[u8; N], WireError> {
    if s.len() > N {
        return Err(WireError::LengthExceedsLimit {
            field: "ATA string",
            declared: s.len(),
            limit: N,
        });
    }
    let mut out = [b' '; N];
    for (o, &c) in out.iter_mut().zip(s.as_bytes()) {
        if !(0x20..=0x7E).contains(&c) {
            return Err(WireError::ValueOutOfRange {
                field: "ATA string byte",
                value: c.into(),
                max: 0x7E,
            });
        }
        *o = c;
    }
    Ok(out)
}

/// The text of an ATA string without surrounding spaces/NULs; stops at the
/// first byte that is not valid UTF-8.
fn trimmed(bytes: &[u8]) -> &str {
    let valid = match core::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => core::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default(),
    };
    valid.trim_matches(|c: char| c == ' ' || c == '\0')
}

#[inline]
fn get_word(block: &[u8], w: usize) -> u16 {
    u16::from_le_bytes([block[2 * w], block[2 * w + 1]])
}

#[inline]
fn put_word(block: &mut [u8; IDENTIFY_LEN], w: usize, v: u16) {
    block[2 * w..2 * w + 2].copy_from_slice(&v.to_le_bytes());
}

/// Writes `text` starting at word `w`: first character of each pair in the high byte.
fn put_string(block: &mut [u8; IDENTIFY_LEN], w: usize, text: &[u8]) {
    for (i, pair) in text.chunks_exact(2).enumerate() {
        put_word(block, w + i, u16::from_be_bytes([pair[0], pair[1]]));
    }
}

fn get_string<const N: usize>(block: &[u8], w: usize) -> [u8; N] {
    let mut out = [0u8; N];
    for (i, pair) in out.chunks_exact_mut(2).enumerate() {
        pair.copy_from_slice(&get_word(block, w + i).to_be_bytes());
    }
    out
}

impl Identify {
    /// An LBA48 device with the given strings and capacity, no FLUSH, no SMART.
    pub fn new(
        serial: &str,
        firmware: &str,
        model: &str,
        sectors: u64,
    ) -> Result<Identify, WireError> {
        Ok(Identify {
            serial: ata_string(serial)?,
            firmware: ata_string(firmware)?,
            model: ata_string(model)?,
            sectors,
            lba48: true,
            flush: false,
            flush_ext: false,
            smart: false,
        })
    }

    pub fn serial_str(&self) -> &str {
        trimmed(&self.serial)
    }

    pub fn firmware_str(&self) -> &str {
        trimmed(&self.firmware)
    }

    pub fn model_str(&self) -> &str {
        trimmed(&self.model)
    }

    /// Fills `out` with the IDENTIFY block. Capacity goes to words 60–61
    /// (capped at 0x0FFFFFFF) and 100–103; LBA48 support is bit 10 of both
    /// words 83 and 86; words 83/84/86/87 carry the "valid" pattern; word 255
    /// carries the ATA integrity checksum. Errors if the capacity does not
    /// fit (28 bits without LBA48, 48 bits with).
    pub fn emit(&self, out: &mut [u8; IDENTIFY_LEN]) -> Result<(), WireError> {
        let max = if self.lba48 {
            LBA48_MAX
        } else {
            LBA28_MAX_SECTORS
        };
        if self.sectors > max {
            return Err(WireError::ValueOutOfRange {
                field: if self.lba48 {
                    "IDENTIFY sectors (LBA48)"
                } else {
                    "IDENTIFY sectors (LBA28)"
                },
                value: self.sectors,
                max,
            });
        }
        out.fill(0);
        put_word(out, word::GENERAL, 0x0040);

        let cylinders =
            (self.sectors / (GEOMETRY_HEADS * GEOMETRY_SECTORS)).min(GEOMETRY_MAX_CYLINDERS);
        let chs = cylinders * GEOMETRY_HEADS * GEOMETRY_SECTORS;
        for (w, v) in [
            (word::CYLINDERS, cylinders),
            (word::HEADS, GEOMETRY_HEADS),
            (word::SECTORS_PER_TRACK, GEOMETRY_SECTORS),
            (word::CUR_CYLINDERS, cylinders),
            (word::CUR_HEADS, GEOMETRY_HEADS),
            (word::CUR_SECTORS, GEOMETRY_SECTORS),
            (word::CUR_CAPACITY, chs & 0xFFFF),
            (word::CUR_CAPACITY + 1, chs >> 16),
        ] {
            put_word(out, w, v as u16);
        }
        put_word(out, word::VALIDITY, 0x0001);

        put_string(out, word::SERIAL, &self.serial);
        put_string(out, word::FIRMWARE, &self.firmware);
        put_string(out, word::MODEL, &self.model);

        put_word(out, word::MULTIPLE, 0x8000);
        put_word(out, word::CAPS, word::BIT_LBA);
        put_word(out, word::CAPS2, word::VALID);

        let lba28 = self.sectors.min(LBA28_MAX_SECTORS) as u32;
        put_word(out, word::LBA28_CAPACITY, lba28 as u16);
        put_word(out, word::LBA28_CAPACITY + 1, (lba28 >> 16) as u16);

        // ATA/ATAPI-4 through ATA8-ACS.
        put_word(out, word::MAJOR_VERSION, 0x01F0);

        let smart = if self.smart { word::BIT_SMART } else { 0 };
        put_word(out, word::CMDSET1, smart);
        put_word(out, word::ENABLED1, smart);
        let mut sets = word::VALID;
        if self.lba48 {
            sets |= word::BIT_LBA48;
        }
        if self.flush {
            sets |= word::BIT_FLUSH;
        }
        if self.flush_ext {
            sets |= word::BIT_FLUSH_EXT;
        }
        put_word(out, word::CMDSET2, sets);
        put_word(out, word::ENABLED2, sets);
        put_word(out, word::CMDSET_EXT, word::VALID);
        put_word(out, word::DEFAULTS, word::VALID);
        put_word(out, word::RESET_RESULT, 0x400B);

        for i in 0..4 {
            put_word(
                out,
                word::LBA48_CAPACITY + i,
                (self.sectors >> (16 * i)) as u16,
            );
        }

        // Integrity word: signature 0xA5, then the byte that makes all 512 bytes sum to 0.
        out[2 * word::INTEGRITY] = 0xA5;
        let sum = out[..IDENTIFY_LEN - 1]
            .iter()
            .fold(0u8, |a, &b| a.wrapping_add(b));
        out[IDENTIFY_LEN - 1] = sum.wrapping_neg();
        Ok(())
    }

    /// Reads an IDENTIFY block (at least 512 bytes; more is ignored) the way
    /// Linux does: if bit 10 of word 83 or 86 is set, the capacity is the
    /// u64 in words 100–103, else the u32 in words 60–61.
    pub fn parse(data: &[u8]) -> Result<Identify, WireError> {
        ensure_frame(data, "IDENTIFY data", IDENTIFY_LEN)?;
        let sets = get_word(data, word::CMDSET2) | get_word(data, word::ENABLED2);
        let lba48 = sets & word::BIT_LBA48 != 0;
        let sectors = if lba48 {
            (0..4).fold(0u64, |acc, i| {
                acc | u64::from(get_word(data, word::LBA48_CAPACITY + i)) << (16 * i)
            })
        } else {
            u64::from(get_word(data, word::LBA28_CAPACITY))
                | u64::from(get_word(data, word::LBA28_CAPACITY + 1)) << 16
        };
        Ok(Identify {
            serial: get_string(data, word::SERIAL),
            firmware: get_string(data, word::FIRMWARE),
            model: get_string(data, word::MODEL),
            sectors,
            lba48,
            flush: sets & word::BIT_FLUSH != 0,
            flush_ext: sets & word::BIT_FLUSH_EXT != 0,
            smart: get_word(data, word::CMDSET1) & word::BIT_SMART != 0,
        })
    }
}
