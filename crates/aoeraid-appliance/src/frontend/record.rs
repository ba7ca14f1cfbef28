//! An export's state on its volume's members: the record a standby appliance
//! reads when it takes the volume over, so it exports the same serial, config
//! string and — what fencing depends on — the same reserve list. The state
//! file in `state_dir` is only a cache of it.
//!
//! Where: the 4 KiB before the RAID superblock (sectors 0–7, which the engine
//! leaves untouched), as two 2 KiB slots. Record `seq` goes to slot
//! `seq % 2`, so a write torn by a crash can only damage the slot being
//! written; the previous record, in the other slot, stays whole. Every
//! member of the volume gets each record; at start the newest whole record
//! (highest `seq`, CRC32C good, for this export and this member's array)
//! wins.
//!
//! The allow list (MAC mask) is not in the record: `aoeraid run` takes it
//! from the shared YAML at every start and reload.

use aoe_target::{ExportState, RESERVE_CAPACITY};
use aoe_wire::{Mac, MAX_CONFIG_LEN};

/// First sector of the two record slots.
pub(crate) const RECORD_OFFSET: u64 = 0;
/// Sectors of one slot.
pub(crate) const SLOT_SECTORS: u32 = 4;
/// Sectors read to find the newest record (both slots).
pub(crate) const RECORD_AREA_SECTORS: u32 = 2 * SLOT_SECTORS;
const SLOT_BYTES: usize = SLOT_SECTORS as usize * 512;
const MAGIC: [u8; 8] = *b"AOERAIDX";
const VERSION: u32 = 1;
const CRC_AT: usize = SLOT_BYTES - 4;
const SERIAL_MAX: usize = 20;
/// Offsets inside a slot.
const SHELF_AT: usize = 12;
const SLOT_AT: usize = 14;
const SEQ_AT: usize = 16;
const UUID_AT: usize = 24;
const SERIAL_LEN_AT: usize = 40;
const SERIAL_AT: usize = 41;
const CONFIG_LEN_AT: usize = 64;
const RESERVE_LEN_AT: usize = 66;
const BODY_AT: usize = 68;

// The largest record (1024-byte config string, 128 reserved MACs) fits a slot.
const _: () = assert!(BODY_AT + MAX_CONFIG_LEN + 6 * RESERVE_CAPACITY <= CRC_AT);

/// One export's state as stored on a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExportRecord {
    /// Grows by one with every save; the highest whole one is current.
    pub(crate) seq: u64,
    pub(crate) shelf: u16,
    pub(crate) slot: u8,
    /// UUID of the array the member carrying the record belongs to: a record
    /// left on a device from an earlier life is not taken for this one.
    pub(crate) array_uuid: [u8; 16],
    pub(crate) serial: String,
    pub(crate) config: Vec<u8>,
    pub(crate) reserve: Vec<Mac>,
}

impl ExportRecord {
    /// The record of `state` (its mask is left out: it comes from the YAML).
    pub(crate) fn of(
        seq: u64,
        shelf: u16,
        slot: u8,
        array_uuid: [u8; 16],
        state: &ExportState,
    ) -> ExportRecord {
        ExportRecord {
            seq,
            shelf,
            slot,
            array_uuid,
            serial: state.serial.clone(),
            config: state.config.clone(),
            reserve: state.reserve.clone(),
        }
    }

    /// The sector this record is written at (its slot).
    pub(crate) fn offset(&self) -> u64 {
        RECORD_OFFSET + (self.seq % 2) * u64::from(SLOT_SECTORS)
    }

    /// The slot's bytes (`SLOT_SECTORS` sectors).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; SLOT_BYTES];
        b[..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&VERSION.to_le_bytes());
        b[SHELF_AT..SHELF_AT + 2].copy_from_slice(&self.shelf.to_le_bytes());
        b[SLOT_AT] = self.slot;
        b[SEQ_AT..SEQ_AT + 8].copy_from_slice(&self.seq.to_le_bytes());
        b[UUID_AT..UUID_AT + 16].copy_from_slice(&self.array_uuid);
        let serial = &self.serial.as_bytes()[..self.serial.len().min(SERIAL_MAX)];
        b[SERIAL_LEN_AT] = serial.len() as u8;
        b[SERIAL_AT..SERIAL_AT + serial.len()].copy_from_slice(serial);
        let config = &self.config[..self.config.len().min(MAX_CONFIG_LEN)];
        let reserve = &self.reserve[..self.reserve.len().min(RESERVE_CAPACITY)];
        b[CONFIG_LEN_AT..CONFIG_LEN_AT + 2].copy_from_slice(&(config.len() as u16).to_le_bytes());
        b[RESERVE_LEN_AT..RESERVE_LEN_AT + 2]
            .copy_from_slice(&(reserve.len() as u16).to_le_bytes());
        let mut at = BODY_AT;
        b[at..at + config.len()].copy_from_slice(config);
        at += config.len();
        for m in reserve {
            b[at..at + 6].copy_from_slice(&m.0);
            at += 6;
        }
        let crc = crc32c::crc32c(&b[..CRC_AT]);
        b[CRC_AT..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// A whole record from one slot's bytes, or None (blank, torn, foreign).
    pub(crate) fn decode(b: &[u8]) -> Option<ExportRecord> {
        let b = b.get(..SLOT_BYTES)?;
        let u16_at = |at: usize| u16::from_le_bytes([b[at], b[at + 1]]);
        if b[..8] != MAGIC
            || u32::from_le_bytes(b[8..12].try_into().ok()?) != VERSION
            || crc32c::crc32c(&b[..CRC_AT]) != u32::from_le_bytes(b[CRC_AT..].try_into().ok()?)
        {
            return None;
        }
        let serial_len = usize::from(b[SERIAL_LEN_AT]);
        let config_len = usize::from(u16_at(CONFIG_LEN_AT));
        let reserve_len = usize::from(u16_at(RESERVE_LEN_AT));
        if serial_len > SERIAL_MAX || config_len > MAX_CONFIG_LEN || reserve_len > RESERVE_CAPACITY
        {
            return None;
        }
        let serial = std::str::from_utf8(&b[SERIAL_AT..SERIAL_AT + serial_len]).ok()?;
        let config = b[BODY_AT..BODY_AT + config_len].to_vec();
        let macs = &b[BODY_AT + config_len..BODY_AT + config_len + 6 * reserve_len];
        Some(ExportRecord {
            seq: u64::from_le_bytes(b[SEQ_AT..SEQ_AT + 8].try_into().ok()?),
            shelf: u16_at(SHELF_AT),
            slot: b[SLOT_AT],
            array_uuid: b[UUID_AT..UUID_AT + 16].try_into().ok()?,
            serial: serial.to_string(),
            config,
            reserve: macs
                .chunks_exact(6)
                .map(|c| Mac(c.try_into().expect("6 bytes")))
                .collect(),
        })
    }

    /// The newer whole record of a member's record area (both slots) for
    /// a member of `array_uuid` and, if given, export `(shelf, slot)`.
    pub(crate) fn newest_in(
        area: &[u8],
        array_uuid: &[u8; 16],
        export: Option<(u16, u8)>,
    ) -> Option<ExportRecord> {
        area.chunks(SLOT_BYTES)
            .take(2)
            .filter_map(ExportRecord::decode)
            .filter(|r| &r.array_uuid == array_uuid)
            .filter(|r| export.is_none_or(|e| e == (r.shelf, r.slot)))
            .max_by_key(|r| r.seq)
    }

    /// The export state it holds; `mask` is the YAML's allow list.
    pub(crate) fn state(&self, mask: Vec<Mac>) -> ExportState {
        ExportState {
            serial: self.serial.clone(),
            config: self.config.clone(),
            mask,
            reserve: self.reserve.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64) -> ExportRecord {
        ExportRecord {
            seq,
            shelf: 7,
            slot: 0,
            array_uuid: [9; 16],
            serial: "AOERAID-0123456789AB".into(),
            config: b"gfs".to_vec(),
            reserve: vec![Mac([2, 0, 0, 0, 0, 1]), Mac([2, 0, 0, 0, 0, 2])],
        }
    }

    #[test]
    fn round_trips_and_the_largest_fits() {
        let r = record(5);
        assert_eq!(ExportRecord::decode(&r.encode()), Some(r));
        let big = ExportRecord {
            config: vec![0xAB; MAX_CONFIG_LEN],
            reserve: (0..RESERVE_CAPACITY as u8)
                .map(|i| Mac([2, 0, 0, 0, 1, i]))
                .collect(),
            ..record(u64::MAX)
        };
        assert_eq!(ExportRecord::decode(&big.encode()), Some(big));
    }

    #[test]
    fn blank_torn_and_foreign_slots_are_not_records() {
        assert_eq!(ExportRecord::decode(&[0u8; SLOT_BYTES]), None);
        let mut torn = record(3).encode();
        torn[BODY_AT] ^= 1;
        assert_eq!(ExportRecord::decode(&torn), None);
        let mut other_version = record(3).encode();
        other_version[8] = 2;
        assert_eq!(ExportRecord::decode(&other_version), None);
    }

    /// Records alternate slots, so tearing the one being written leaves the
    /// previous one readable.
    #[test]
    fn a_torn_write_leaves_the_previous_record() {
        let mut area = vec![0u8; RECORD_AREA_SECTORS as usize * 512];
        for seq in [1, 2] {
            let r = record(seq);
            let at = (r.offset() - RECORD_OFFSET) as usize * 512;
            area[at..at + SLOT_BYTES].copy_from_slice(&r.encode());
        }
        assert_eq!(
            ExportRecord::newest_in(&area, &[9; 16], Some((7, 0))).map(|r| r.seq),
            Some(2)
        );
        // Record 3 goes where record 1 was; half of it lands.
        let r3 = record(3).encode();
        let at = (record(3).offset() - RECORD_OFFSET) as usize * 512;
        assert_eq!(at, SLOT_BYTES);
        area[at..at + 1024].copy_from_slice(&r3[..1024]);
        area[at + 1024] ^= 0xFF;
        assert_eq!(
            ExportRecord::newest_in(&area, &[9; 16], Some((7, 0))).map(|r| r.seq),
            Some(2)
        );
        area[at..at + SLOT_BYTES].copy_from_slice(&r3);
        assert_eq!(
            ExportRecord::newest_in(&area, &[9; 16], Some((7, 0))).map(|r| r.seq),
            Some(3)
        );
        // Another export's, or another array's, records are not this one's.
        assert_eq!(ExportRecord::newest_in(&area, &[9; 16], Some((7, 1))), None);
        let older = ExportRecord::newest_in(&area, &[9; 16], Some((7, 0)));
        let mut foreign = record(8);
        foreign.array_uuid = [8; 16];
        area[..SLOT_BYTES].copy_from_slice(&foreign.encode());
        assert_eq!(
            ExportRecord::newest_in(&area, &[9; 16], Some((7, 0))),
            older
        );
    }
}
