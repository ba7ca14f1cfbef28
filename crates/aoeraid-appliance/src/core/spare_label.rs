//! The label a spare added at run time (`aoeraid spare-add`) carries, so that it is
//! still a spare of its group after a restart or on the other appliance of an HA
//! pair (md writes a superblock with a spare role for the same reason). It lies
//! where the superblock goes (`SB_OFFSET`, one superblock's size): an array that
//! takes the spare writes its superblock over it, so a blade never carries both.
//! `spare-remove` writes zeros there, so the blade is not claimed again.
//!
//! A spare an array was given with `aoeraid add` needs no label: the array wrote
//! its superblock (role spare, its array UUID) when it took it.
//!
//! Layout (little-endian): magic (16 bytes), version u32, member UUID (16 bytes,
//! the one the spare gets when an array takes it), group name length u16, group
//! name (UTF-8, at most [`MAX_GROUP`] bytes), zeros, CRC32C of everything before
//! it in the last 4 bytes.

use raid_engine::superblock::SB_BYTES;

const MAGIC: &[u8; 16] = b"AOERAID-SPARE-1\0";
const VERSION: u32 = 1;
/// Longest group name a label holds (the config refuses nothing longer in
/// practice; a longer one is cut at a character boundary and never matches).
const MAX_GROUP: usize = 256;
const CRC_AT: usize = SB_BYTES - 4;

/// What a spare's label says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SpareLabel {
    /// The spare group it serves.
    pub(crate) group: String,
    /// The member UUID an array that takes it gives it.
    pub(crate) uuid: [u8; 16],
}

impl SpareLabel {
    /// The label as written at `SB_OFFSET` (`SB_BYTES` long).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; SB_BYTES];
        b[..16].copy_from_slice(MAGIC);
        b[16..20].copy_from_slice(&VERSION.to_le_bytes());
        b[20..36].copy_from_slice(&self.uuid);
        let mut n = self.group.len().min(MAX_GROUP);
        while !self.group.is_char_boundary(n) {
            n -= 1;
        }
        b[36..38].copy_from_slice(&(n as u16).to_le_bytes());
        b[38..38 + n].copy_from_slice(&self.group.as_bytes()[..n]);
        let crc = crc32c::crc32c(&b[..CRC_AT]);
        b[CRC_AT..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// The label in `b` (what a superblock read returned), if it is a whole one.
    pub(crate) fn decode(b: &[u8]) -> Option<SpareLabel> {
        if b.len() < SB_BYTES || &b[..16] != MAGIC {
            return None;
        }
        let crc = u32::from_le_bytes(b[CRC_AT..SB_BYTES].try_into().ok()?);
        if crc32c::crc32c(&b[..CRC_AT]) != crc
            || u32::from_le_bytes(b[16..20].try_into().ok()?) != VERSION
        {
            return None;
        }
        let n = u16::from_le_bytes(b[36..38].try_into().ok()?) as usize;
        if n > MAX_GROUP {
            return None;
        }
        Some(SpareLabel {
            group: std::str::from_utf8(&b[38..38 + n]).ok()?.to_string(),
            uuid: b[20..36].try_into().ok()?,
        })
    }

    /// Does `b` start like a label (whole or torn)?
    pub(crate) fn looks_like(b: &[u8]) -> bool {
        b.len() >= 16 && &b[..16] == MAGIC
    }
}

/// What wipes a label: zeros over the whole superblock area.
pub(crate) fn wiped() -> Vec<u8> {
    vec![0u8; SB_BYTES]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_round_trips_and_a_torn_one_is_refused() {
        let l = SpareLabel {
            group: "pool-a".into(),
            uuid: [7; 16],
        };
        let mut b = l.encode();
        assert_eq!(b.len(), SB_BYTES);
        assert_eq!(SpareLabel::decode(&b), Some(l));
        b[40] ^= 1;
        assert_eq!(SpareLabel::decode(&b), None);
        assert!(SpareLabel::looks_like(&b));
        assert_eq!(SpareLabel::decode(&wiped()), None);
    }

    #[test]
    fn a_superblock_is_no_label_and_a_label_no_superblock() {
        let l = SpareLabel {
            group: "g".into(),
            uuid: [1; 16],
        }
        .encode();
        assert!(raid_engine::superblock::Superblock::decode(&l).is_err());
        assert_eq!(SpareLabel::decode(&[0u8; 100]), None);
    }
}
