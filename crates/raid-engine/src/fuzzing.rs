//! What the cargo-fuzz targets in `fuzz/` need of the partial-parity log's entry
//! format, which the crate keeps private (`ppl.rs`). Compiled only with `--cfg fuzzing`
//! (cargo-fuzz and `scripts/fuzz-ci.sh` set it), so the crate's real API stays what the
//! appliance needs.

use crate::ppl::{self, Entry};

/// Bytes of an entry's header (the partial parity follows it).
pub const PPL_HEADER_BYTES: usize = ppl::HEADER_SECTORS as usize * crate::types::SECTOR;

/// One decoded log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PplEntry(Entry);

impl PplEntry {
    /// A whole entry of the array from one slot's bytes, as the replay decodes it.
    pub fn decode(slot: &[u8], array_uuid: &[u8; 16]) -> Option<PplEntry> {
        Entry::decode(slot, array_uuid).map(PplEntry)
    }

    /// The bytes the engine writes for this entry.
    pub fn encode(&self) -> Vec<u8> {
        self.0.encode()
    }

    pub fn generation(&self) -> u64 {
        self.0.generation
    }

    pub fn unit(&self) -> u64 {
        self.0.unit
    }
}

/// Does the slot hold an entry header (the magic)? Replay counts those it skips.
pub fn ppl_present(slot: &[u8]) -> bool {
    Entry::present(slot)
}

/// `slot` made to pass the CRCs as the array's entry of `generation` (`Entry::seal`).
pub fn ppl_seal(slot: &mut [u8], array_uuid: &[u8; 16], generation: u64) {
    Entry::seal(slot, array_uuid, generation);
}

/// The unit a slot's whole header of the array's run `generation` names, else None
/// (`Entry::vouched_unit`).
pub fn ppl_vouched_unit(slot: &[u8], array_uuid: &[u8; 16], generation: u64) -> Option<u64> {
    Entry::vouched_unit(slot, array_uuid, generation)
}
