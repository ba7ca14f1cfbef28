//! `aoeraid serve --config FILE`: the exports of one blade box, in YAML parsed
//! and checked like `appliance.yaml` (line and field in every error).
//!
//! ```yaml
//! state_dir: /var/lib/aoeraid/serve   # config string, mask list, reservations, serial
//! threads: 1
//! stat_interval: 2s                    # store size checks (growth is announced)
//! interface_poll: 1s                   # interfaces that come up later are served then
//! exports:
//!   - file: /srv/disk0.img
//!     shelf: 1
//!     slot: 0
//!     interfaces: [eth1, eth2]
//!     read_only: false
//!     allow: [52:54:00:12:34:56]       # initial MAC mask list (replaces the saved one)
//!     buffers: 64                      # Buffer Count advertised and queued per client
//!     offset: 1MiB                     # vblade -o: skip this much of the file
//!     length: 1GiB                     # vblade -l: export only this much
//!     io: auto                         # auto | direct | buffered (see `aoeraid serve --help`)
//! ```

use super::diag::{ConfigErrors, Diagnostic, Severity};
use super::locate::FieldPath;
use super::units::{ByteSize, Duration};
use crate::frontend::IoMode;
use aoe_wire::{AoeAddr, Mac};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The whole file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServeConfig {
    #[serde(default = "default_state_dir")]
    pub(crate) state_dir: PathBuf,
    #[serde(default = "default_threads")]
    pub(crate) threads: usize,
    #[serde(default = "default_stat_interval")]
    pub(crate) stat_interval: Duration,
    #[serde(default = "default_interface_poll")]
    pub(crate) interface_poll: Duration,
    #[serde(default)]
    pub(crate) exports: Vec<ServeExport>,
}

/// One export: an item of the file's `exports`, or the one export of the
/// command line; what the catalog opens and compares on a reload
/// (`frontend/catalog.rs`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServeExport {
    pub(crate) file: PathBuf,
    pub(crate) shelf: u16,
    pub(crate) slot: u8,
    /// Interfaces it is served on (those that exist; others once they come up).
    pub(crate) interfaces: Vec<String>,
    #[serde(default)]
    pub(crate) read_only: bool,
    /// If non-empty, replaces the saved MAC mask list at start (like vblade -m).
    #[serde(default)]
    pub(crate) allow: Vec<Mac>,
    /// Buffer Count advertised and queued per client.
    #[serde(default = "default_buffers")]
    pub(crate) buffers: u16,
    /// Bytes skipped at the start of the file, and exported (vblade -o/-l).
    #[serde(default)]
    pub(crate) offset: Option<ByteSize>,
    #[serde(default)]
    pub(crate) length: Option<ByteSize>,
    /// Page cache or O_DIRECT (see [`IoMode`]).
    #[serde(default)]
    pub(crate) io: IoMode,
    /// If set, replaces the saved config string at start.
    #[serde(default)]
    pub(crate) config_string: Option<String>,
}

impl ServeExport {
    /// Bytes of the file before the export's first sector.
    pub(crate) fn offset_bytes(&self) -> u64 {
        self.offset.map_or(0, ByteSize::bytes)
    }

    /// Bytes exported from the offset on; None: the rest of the file.
    pub(crate) fn length_bytes(&self) -> Option<u64> {
        self.length.map(ByteSize::bytes)
    }
}

pub(crate) const DEFAULT_STATE_DIR: &str = "/var/lib/aoeraid/serve";
pub(crate) const DEFAULT_BUFFERS: u16 = 64;

fn default_state_dir() -> PathBuf {
    PathBuf::from(DEFAULT_STATE_DIR)
}
fn default_threads() -> usize {
    1
}
fn default_stat_interval() -> Duration {
    Duration::from_millis(2_000)
}
fn default_interface_poll() -> Duration {
    Duration::from_millis(1_000)
}
fn default_buffers() -> u16 {
    DEFAULT_BUFFERS
}

/// Parses and checks `text` (named `file` in messages).
pub(crate) fn check_str(text: &str, file: &str) -> Result<ServeConfig, ConfigErrors> {
    let (config, diags) = super::parse_checked(text, file, validate)?;
    if diags.iter().any(|d| d.severity == Severity::Error) {
        return Err(ConfigErrors {
            file: file.to_string(),
            diagnostics: diags,
        });
    }
    Ok(config)
}

/// Reads and checks a serve config file.
pub(crate) fn load(path: &Path) -> Result<ServeConfig, ConfigErrors> {
    check_str(&super::read_text(path)?, &path.display().to_string())
}

/// What only the typed file can tell: addresses, ranges, alignment, repeats.
fn validate(c: &ServeConfig) -> Vec<Diagnostic> {
    let mut d = Vec::new();
    if !(1..=64).contains(&c.threads) {
        d.push(Diagnostic::error(
            FieldPath::of(&["threads"]),
            format!("{} threads: must be 1..=64", c.threads),
        ));
    }
    for (i, e) in c.exports.iter().enumerate() {
        let at = FieldPath::of(&["exports"]).index(i);
        if let Err(err) = AoeAddr::new(e.shelf, e.slot) {
            d.push(Diagnostic::error(
                at.key("shelf"),
                format!("e{}.{}: {err}", e.shelf, e.slot),
            ));
        }
        if let Some(first) = c.exports[..i]
            .iter()
            .position(|o| (o.shelf, o.slot) == (e.shelf, e.slot))
        {
            d.push(
                Diagnostic::error(
                    at.key("shelf"),
                    format!("e{}.{} is exported twice", e.shelf, e.slot),
                )
                .related_to(FieldPath::of(&["exports"]).index(first)),
            );
        }
        if e.interfaces.is_empty() {
            d.push(Diagnostic::error(
                at.key("interfaces"),
                "no interface to serve on",
            ));
        }
        for (k, name) in e.interfaces.iter().enumerate() {
            // IFNAMSIZ is 16 with the NUL.
            if name.is_empty() || name.len() > 15 || name.contains(['/', ' ']) {
                d.push(Diagnostic::error(
                    at.key("interfaces").index(k),
                    format!("`{name}` is not an interface name"),
                ));
            }
        }
        if !(2..=4096).contains(&e.buffers) {
            d.push(Diagnostic::error(
                at.key("buffers"),
                format!("buffer count {} must be 2..=4096", e.buffers),
            ));
        }
        for (key, size) in [("offset", e.offset), ("length", e.length)] {
            if let Some(s) = size {
                if s.bytes() % 512 != 0 {
                    d.push(Diagnostic::error(
                        at.key(key),
                        format!(
                            "{} bytes is not a whole number of 512-byte sectors",
                            s.bytes()
                        ),
                    ));
                }
            }
        }
        if e.length.is_some_and(|l| l.bytes() < 512) {
            d.push(Diagnostic::error(
                at.key("length"),
                "an export holds at least one 512-byte sector",
            ));
        }
        if e.config_string
            .as_ref()
            .is_some_and(|s| s.len() > aoe_wire::MAX_CONFIG_LEN)
        {
            d.push(Diagnostic::error(
                at.key("config_string"),
                "longer than 1024 bytes",
            ));
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
state_dir: /tmp/s
exports:
  - file: /srv/a.img
    shelf: 1
    slot: 0
    interfaces: [eth1, eth2]
    allow: [02:00:00:00:00:0a]
    buffers: 16
    offset: 1MiB
    length: 4096
    io: direct
  - {file: /srv/b.img, shelf: 1, slot: 1, interfaces: [eth1], read_only: true}
";

    #[test]
    fn a_full_file_parses_with_defaults() {
        let c = check_str(GOOD, "s.yaml").unwrap();
        assert_eq!(c.state_dir, Path::new("/tmp/s"));
        assert_eq!(c.threads, 1);
        assert_eq!(c.interface_poll.get(), std::time::Duration::from_secs(1));
        let [a, b] = &c.exports[..] else {
            panic!("two exports")
        };
        assert_eq!(
            (a.shelf, a.slot, a.buffers, a.io),
            (1, 0, 16, IoMode::Direct)
        );
        assert_eq!(a.offset.map(ByteSize::bytes), Some(1 << 20));
        assert_eq!(a.length.map(ByteSize::bytes), Some(4096));
        assert_eq!(a.allow, [Mac([2, 0, 0, 0, 0, 0xa])]);
        assert_eq!(a.interfaces, ["eth1", "eth2"]);
        assert!(b.read_only && b.allow.is_empty() && b.offset.is_none());
        assert_eq!((b.buffers, b.io), (DEFAULT_BUFFERS, IoMode::Auto));
    }

    fn errors(text: &str) -> Vec<String> {
        check_str(text, "s.yaml").unwrap_err().lines()
    }

    #[test]
    fn bad_files_name_line_and_field() {
        let bad = GOOD
            .replace("buffers: 16", "buffers: 1")
            .replace("length: 4096", "length: 1000");
        assert_eq!(
            errors(&bad),
            [
                "s.yaml:8: exports[0].buffers: buffer count 1 must be 2..=4096",
                "s.yaml:10: exports[0].length: 1000 bytes is not a whole number of 512-byte sectors",
            ]
        );
        let twice = GOOD.replace("slot: 1,", "slot: 0,");
        assert_eq!(
            errors(&twice),
            ["s.yaml:12: exports[1].shelf: e1.0 is exported twice (see exports[0], line 3)"]
        );
        let typo = GOOD.replace("read_only", "readonly");
        let e = errors(&typo);
        assert!(
            e[0].starts_with("s.yaml:12: exports[1].readonly: unknown key"),
            "{e:?}"
        );
        let mode = GOOD.replace("io: direct", "io: fast");
        let e = errors(&mode);
        assert!(
            e[0].starts_with("s.yaml:11: exports[0].io: unknown variant `fast`"),
            "{e:?}"
        );
        let addr = GOOD.replace("slot: 1,", "slot: 255,");
        assert_eq!(
            errors(&addr),
            ["s.yaml:12: exports[1].shelf: e1.255: slot 255 (0xFF) is the AoE broadcast address"]
        );
        let none = GOOD.replace("interfaces: [eth1],", "interfaces: [],");
        assert_eq!(
            errors(&none),
            ["s.yaml:12: exports[1].interfaces: no interface to serve on"]
        );
    }
}
