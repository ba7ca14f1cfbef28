//! What the cargo-fuzz targets in `fuzz/` need of parsers the appliance keeps
//! crate-private: the export state record read from members' sectors 0–7 and the
//! `aoeraid serve --config` file. Compiled only with `--cfg fuzzing` (cargo-fuzz
//! and `scripts/fuzz-ci.sh` set it), so the crate's real API stays what the
//! binary needs and nothing here can be used by mistake.

use crate::config::ConfigErrors;
use crate::frontend::{ExportRecord, RECORD_AREA_SECTORS};

/// Bytes of the record area (both slots) that start-up reads from a member.
pub const RECORD_AREA_BYTES: usize = RECORD_AREA_SECTORS as usize * 512;

/// One export state record (`frontend/record.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record(ExportRecord);

impl Record {
    /// A whole record from one slot's bytes, as `ExportRecord::decode`.
    pub fn decode(slot: &[u8]) -> Option<Record> {
        ExportRecord::decode(slot).map(Record)
    }

    /// The newest whole record of a member's record area, as start-up picks it.
    pub fn newest_in(
        area: &[u8],
        array_uuid: &[u8; 16],
        export: Option<(u16, u8)>,
    ) -> Option<Record> {
        ExportRecord::newest_in(area, array_uuid, export).map(Record)
    }

    /// The slot's bytes as a save writes them.
    pub fn encode(&self) -> Vec<u8> {
        self.0.encode()
    }

    /// The member sector the record's slot starts at.
    pub fn offset(&self) -> u64 {
        self.0.offset()
    }

    pub fn seq(&self) -> u64 {
        self.0.seq
    }

    pub fn array_uuid(&self) -> [u8; 16] {
        self.0.array_uuid
    }

    /// `(shelf, slot)` of the export.
    pub fn export(&self) -> (u16, u8) {
        (self.0.shelf, self.0.slot)
    }
}

/// `aoeraid serve --config` text checked as the command checks it; a config that
/// passes comes back serialized (YAML), for the round trip.
pub fn check_serve_config(text: &str, file: &str) -> Result<String, ConfigErrors> {
    let c = crate::config::serve::check_str(text, file)?;
    Ok(serde_norway::to_string(&c).expect("a checked serve config serializes"))
}
