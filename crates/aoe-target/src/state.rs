//! The durable per-export state (config string, MAC mask list, reservation
//! list, serial number) and its text encoding for the state file.
//!
//! The encoding lives here so the target and any tool agree on it; writing
//! the file (atomically: temp file, fsync, rename) is the driver's job.

use aoe_wire::{Mac, MAX_CONFIG_LEN};
use std::fmt::Write as _;

/// Most MACs a mask list holds. A read reply with every entry
/// (28 + 8 × 128 = 1052 bytes) still fits a 1500-byte MTU.
pub const MASK_CAPACITY: usize = 128;
/// Most MACs a reservation holds (same frame-size reasoning: 26 + 6 × 128).
pub const RESERVE_CAPACITY: usize = 128;
/// First line of a state file; bump the number when the format changes.
const MAGIC: &str = "aoeraid-target-state 1";

/// What survives a restart of one export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportState {
    /// ATA serial number (≤ 20 printable ASCII bytes), unique per export.
    pub serial: String,
    /// Query Config string (≤ 1024 bytes).
    pub config: Vec<u8>,
    /// MAC Mask List: empty = everybody allowed.
    pub mask: Vec<Mac>,
    /// Reserve/Release list: empty = not reserved.
    pub reserve: Vec<Mac>,
}

/// Why a state file could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateError {
    pub line: usize,
    pub reason: String,
}

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "state file line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for StateError {}

impl ExportState {
    /// A fresh state whose serial is derived from `random` (pass 64 bits from
    /// the OS random source; the serial then differs between exports and
    /// stays the same across restarts once persisted).
    pub fn with_random_serial(random: u64) -> ExportState {
        ExportState {
            serial: serial_from_random(random),
            ..ExportState::default()
        }
    }

    /// The text written to the state file.
    pub fn encode(&self) -> String {
        let mut s = String::with_capacity(128 + 2 * self.config.len());
        s.push_str(MAGIC);
        s.push('\n');
        let _ = writeln!(s, "serial {}", self.serial);
        s.push_str("config ");
        for b in &self.config {
            let _ = write!(s, "{b:02x}");
        }
        s.push('\n');
        push_macs(&mut s, "mask", &self.mask);
        push_macs(&mut s, "reserve", &self.reserve);
        s
    }

    /// Parses a state file; unknown keys are an error so a typo is not
    /// silently dropped.
    pub fn decode(text: &str) -> Result<ExportState, StateError> {
        let err = |line: usize, reason: String| StateError { line, reason };
        let mut lines = text.lines().enumerate();
        match lines.next() {
            Some((_, l)) if l.trim() == MAGIC => {}
            _ => return Err(err(1, format!("expected `{MAGIC}`"))),
        }
        let mut st = ExportState::default();
        for (i, line) in lines {
            let n = i + 1;
            let line = line.trim_end();
            if line.is_empty() {
                continue;
            }
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            match key {
                "serial" => {
                    if value.len() > 20 || !value.bytes().all(|c| (0x21..=0x7E).contains(&c)) {
                        return Err(err(n, "serial must be 1-20 printable ASCII bytes".into()));
                    }
                    st.serial = value.to_string();
                }
                "config" => {
                    st.config = decode_hex(value).ok_or_else(|| err(n, "bad hex".into()))?;
                    if st.config.len() > MAX_CONFIG_LEN {
                        return Err(err(n, "config string over 1024 bytes".into()));
                    }
                }
                "mask" => st.mask = parse_macs(value, MASK_CAPACITY).map_err(|e| err(n, e))?,
                "reserve" => {
                    st.reserve = parse_macs(value, RESERVE_CAPACITY).map_err(|e| err(n, e))?
                }
                other => return Err(err(n, format!("unknown key `{other}`"))),
            }
        }
        Ok(st)
    }
}

/// `AOERAID-` plus 12 hex digits: 20 characters, the ATA serial field size.
pub fn serial_from_random(random: u64) -> String {
    format!("AOERAID-{:012X}", random & 0xFFFF_FFFF_FFFF)
}

fn push_macs(s: &mut String, key: &str, macs: &[Mac]) {
    s.push_str(key);
    for m in macs {
        let _ = write!(s, " {m}");
    }
    s.push('\n');
}

fn parse_macs(value: &str, cap: usize) -> Result<Vec<Mac>, String> {
    let mut out = Vec::new();
    for w in value.split_whitespace() {
        let mac: Mac = w.parse().map_err(|e| format!("bad MAC `{w}`: {e}"))?;
        if !out.contains(&mac) {
            out.push(mac);
        }
    }
    if out.len() > cap {
        return Err(format!("{} MACs, at most {cap}", out.len()));
    }
    Ok(out)
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let st = ExportState {
            serial: serial_from_random(0x1234_5678_9abc),
            config: b"hello \x00\xff".to_vec(),
            mask: vec![Mac([2, 0, 0, 0, 0, 1]), Mac([2, 0, 0, 0, 0, 2])],
            reserve: vec![Mac([2, 0, 0, 0, 0, 3])],
        };
        assert_eq!(st.serial, "AOERAID-123456789ABC");
        assert_eq!(st.serial.len(), 20);
        assert_eq!(ExportState::decode(&st.encode()).unwrap(), st);
        let empty = ExportState::default();
        assert_eq!(ExportState::decode(&empty.encode()).unwrap(), empty);
    }

    #[test]
    fn rejects_garbage() {
        assert!(ExportState::decode("nope").is_err());
        let bad = format!("{MAGIC}\nconfig 0g\n");
        assert_eq!(ExportState::decode(&bad).unwrap_err().line, 2);
        let bad = format!("{MAGIC}\nfoo bar\n");
        assert!(ExportState::decode(&bad).is_err());
        let bad = format!("{MAGIC}\nmask 02:00:00\n");
        assert!(ExportState::decode(&bad).is_err());
    }
}
