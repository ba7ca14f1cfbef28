//! `appliance.yaml`: what the operator wants the appliance to be.
//!
//! Parsing happens in two steps. serde_norway turns the text into the typed
//! [`Config`] (unknown keys, wrong types and malformed sizes, rates, MACs and
//! member addresses stop there, with line and field). Then [`validate`] checks
//! what only the whole file can tell (a member in two arrays, a spare that is
//! also a member, mirror halves on one shelf, ...) and reports every problem,
//! each pointed at its line through [`locate`].

pub mod diag;
pub mod locate;
pub mod member;
pub mod reload;
pub(crate) mod serve;
pub mod units;
pub mod validate;

use aoe_wire::Mac;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use diag::{ConfigErrors, Diagnostic, Severity};
pub use locate::FieldPath;
pub use member::MemberAddr;
pub use raid_engine::Level as RaidLevel;
pub use units::{ByteSize, Duration, Rate};

/// The whole file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub appliance: ApplianceSection,
    #[serde(default)]
    pub backend: BackendSection,
    #[serde(default)]
    pub frontend: FrontendSection,
    #[serde(default)]
    pub spare_groups: SpareGroups,
    #[serde(default)]
    pub arrays: Vec<ArraySpec>,
    #[serde(default)]
    pub volumes: Vec<VolumeSpec>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApplianceSection {
    pub name: String,
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    #[serde(default = "default_control_socket")]
    pub control_socket: PathBuf,
    #[serde(default = "default_metrics_listen")]
    pub metrics_listen: SocketAddr,
    #[serde(default)]
    pub event_program: Option<PathBuf>,
    /// How long `event_program` may run before it is killed.
    #[serde(default = "default_event_timeout")]
    pub event_timeout: Duration,
}

pub const DEFAULT_STATE_DIR: &str = "/var/lib/aoeraid";
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/aoeraid/control.sock";
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9720";

fn default_state_dir() -> PathBuf {
    PathBuf::from(DEFAULT_STATE_DIR)
}
fn default_control_socket() -> PathBuf {
    PathBuf::from(DEFAULT_CONTROL_SOCKET)
}
fn default_metrics_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9720))
}
fn default_event_timeout() -> Duration {
    Duration::from_millis(30_000)
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BackendSection {
    #[serde(default)]
    pub interfaces: Vec<String>,
    /// A blade silent for this long is declared dead and its members failed.
    #[serde(default = "default_dead_after")]
    pub dead_after: Duration,
}

fn default_dead_after() -> Duration {
    Duration::from_millis(10_000)
}

impl Default for BackendSection {
    fn default() -> Self {
        BackendSection {
            interfaces: Vec::new(),
            dead_after: default_dead_after(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FrontendSection {
    #[serde(default)]
    pub interfaces: Vec<String>,
}

/// RAID level of one array: one of the engine's, or members end to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    Raid(RaidLevel),
    /// Concatenation: members end to end (`linear`, or `concat`).
    Linear,
}

impl Level {
    /// Every spelling the YAML accepts, for the error that names an unknown one.
    const NAMES: [&'static str; 7] = [
        "raid0", "raid1", "raid10", "raid5", "raid6", "linear", "concat",
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Raid(l) => l.name(),
            Level::Linear => "linear",
        }
    }

    /// Members lost before data is lost, in the worst case (the fewest members).
    pub fn redundancy(self) -> usize {
        match self {
            Level::Raid(l) => l.redundancy(l.min_members()),
            Level::Linear => 0,
        }
    }
}

impl std::str::FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Level, String> {
        match s {
            "linear" | "concat" => Ok(Level::Linear),
            _ => RaidLevel::from_name(s).map(Level::Raid).ok_or_else(|| {
                format!(
                    "unknown variant `{s}`, expected one of {}",
                    Level::NAMES.map(|n| format!("`{n}`")).join(", ")
                )
            }),
        }
    }
}

units::text_serde!(Level, "a RAID level like raid1 or raid5");

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Integrity {
    #[default]
    None,
    Crc32c,
}

/// How a RAID 5/6 keeps parity consistent across a crash (md's `consistency_policy`).
/// `ppl`: a partial-parity log on the members closes the write hole — a crash plus
/// the loss of a member leaves every stripe consistent — for one more member write per
/// stripe write (benches/README.md). `resync`: no log; an unclean start resyncs the
/// dirty regions and refuses to start with a member missing unless forced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsistencyPolicy {
    #[default]
    Ppl,
    Resync,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RebuildRates {
    #[serde(default = "default_rebuild_min")]
    pub min: Rate,
    #[serde(default = "default_rebuild_max")]
    pub max: Rate,
}

// md's speed_limit_min / speed_limit_max defaults (1,000 and 200,000 KiB/s).
fn default_rebuild_min() -> Rate {
    Rate(1_000 * 1024)
}
fn default_rebuild_max() -> Rate {
    Rate(200_000 * 1024)
}

impl Default for RebuildRates {
    fn default() -> Self {
        RebuildRates {
            min: default_rebuild_min(),
            max: default_rebuild_max(),
        }
    }
}

impl RebuildRates {
    /// Whether bounds `min`..`max` can pace a rebuild, for the config file and
    /// for `rebuild-rate` (where a bound left out stays as it is).
    pub fn check(min: Option<Rate>, max: Option<Rate>) -> Result<(), String> {
        match (min, max) {
            (Some(Rate(0)), _) => Err("a rebuild rate of 0 would never finish".to_string()),
            (Some(lo), Some(hi)) if lo > hi => Err(format!("min {lo} is above max {hi}")),
            _ => Ok(()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BitmapSpec {
    /// Data covered by one write-intent bit.
    #[serde(default = "default_bitmap_region")]
    pub region: ByteSize,
}

fn default_bitmap_region() -> ByteSize {
    ByteSize(64 << 20)
}

impl Default for BitmapSpec {
    fn default() -> Self {
        BitmapSpec {
            region: default_bitmap_region(),
        }
    }
}

/// Chunk when the YAML names none. Striped mirrors and RAID 0 take the engine's
/// benchmarked default (`raid_engine::DEFAULT_CHUNK_SECTORS`, 128 KiB). RAID 5 and
/// RAID 6 take 16 KiB: its stripe cache only turns small client writes into full-stripe
/// writes when a whole stripe (chunk × data members) fits in what clients keep in
/// flight — a Linux aoe client at MTU 1500 has at most 64 one-KiB frames out, and the
/// `raid-engine` engine bench measured 0 member reads per written byte with 16 KiB
/// chunks against 2 with 128 KiB.
pub fn default_chunk(level: Level) -> ByteSize {
    match level {
        Level::Raid(RaidLevel::Raid5 | RaidLevel::Raid6) => ByteSize(16 << 10),
        _ => ByteSize(u64::from(raid_engine::DEFAULT_CHUNK_SECTORS) * 512),
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ArraySpec {
    pub name: String,
    pub level: Level,
    /// Stripe unit; `None` takes [`default_chunk`] for the level (see [`ArraySpec::chunk`]).
    #[serde(default)]
    pub chunk: Option<ByteSize>,
    pub members: Vec<MemberAddr>,
    /// Spares shared with other arrays naming the same group.
    #[serde(default)]
    pub spare_group: Option<String>,
    /// Spares dedicated to this array.
    #[serde(default)]
    pub spares: Vec<MemberAddr>,
    #[serde(default)]
    pub integrity: Integrity,
    /// RAID 5/6 only; fixed at creation (the log's area is reserved then).
    #[serde(default)]
    pub consistency_policy: ConsistencyPolicy,
    #[serde(default)]
    pub rebuild: RebuildRates,
    #[serde(default)]
    pub bitmap: BitmapSpec,
    /// Accept mirror halves on one shelf (a shelf failure then loses data).
    #[serde(default)]
    pub allow_same_shelf_mirrors: bool,
}

impl ArraySpec {
    /// The chunk in force: the YAML's, or the level's default.
    pub fn chunk(&self) -> ByteSize {
        self.chunk.unwrap_or_else(|| default_chunk(self.level))
    }
}

impl ArraySpec {
    /// Pairs of member indices that mirror each other and so should sit on
    /// different shelves: RAID 10 adjacent pairs (near-2 layout), and for
    /// RAID 1 the whole member set, reported as (first, each other).
    pub fn mirror_sets(&self) -> Vec<Vec<usize>> {
        match self.level {
            Level::Raid(RaidLevel::Raid10) => (0..self.members.len() / 2)
                .map(|p| vec![2 * p, 2 * p + 1])
                .collect(),
            Level::Raid(RaidLevel::Raid1) => vec![(0..self.members.len()).collect()],
            _ => Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExportSpec {
    pub shelf: u16,
    pub slot: u8,
}

impl fmt::Display for ExportSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "e{}.{}", self.shelf, self.slot)
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeSpec {
    pub name: String,
    /// Arrays concatenated in this order; `grow` appends.
    pub arrays: Vec<String>,
    pub export: ExportSpec,
    /// MAC mask list: empty means every initiator may use the volume.
    #[serde(default)]
    pub allow: Vec<Mac>,
    #[serde(default)]
    pub read_only: bool,
    #[serde(default)]
    pub config_string: Option<String>,
}

/// Named spare groups, in file order; duplicate group names are refused at
/// parse time (a plain map would silently keep the last one). Written back as
/// the same map of name to members, so a serialized config parses again.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpareGroups(pub Vec<SpareGroup>);

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpareGroup {
    pub name: String,
    pub members: Vec<MemberAddr>,
}

impl SpareGroups {
    pub fn get(&self, name: &str) -> Option<&SpareGroup> {
        self.0.iter().find(|g| g.name == name)
    }
}

impl Serialize for SpareGroups {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|g| (&g.name, &g.members)))
    }
}

impl<'de> Deserialize<'de> for SpareGroups {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SpareGroups;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of spare group name to a list of members")
            }
            fn visit_unit<E: de::Error>(self) -> Result<SpareGroups, E> {
                Ok(SpareGroups::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SpareGroups, A::Error> {
                let mut groups: Vec<SpareGroup> = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    if groups.iter().any(|g| g.name == name) {
                        return Err(de::Error::custom(format!(
                            "spare group `{name}` is defined twice"
                        )));
                    }
                    let members = map.next_value::<Vec<MemberAddr>>()?;
                    groups.push(SpareGroup { name, members });
                }
                Ok(SpareGroups(groups))
            }
        }
        d.deserialize_map(V)
    }
}

/// A config that passed every check, with the warnings that were allowed.
#[derive(Debug, Clone)]
pub struct Checked {
    pub config: Config,
    pub warnings: Vec<Diagnostic>,
}

/// Parses `text` (named `file` in messages) as `T`, then runs `validate` on
/// the typed value; every problem comes back tied to its line, sorted by line.
/// A parse error stops at once (serde_norway names line and field).
pub(crate) fn parse_checked<T: serde::de::DeserializeOwned>(
    text: &str,
    file: &str,
    validate: impl FnOnce(&T) -> Vec<Diagnostic>,
) -> Result<(T, Vec<Diagnostic>), ConfigErrors> {
    let value: T = serde_norway::from_str(text).map_err(|e| ConfigErrors {
        file: file.to_string(),
        diagnostics: vec![Diagnostic::from_parse_error(&e)],
    })?;
    let mut diags = validate(&value);
    for d in &mut diags {
        d.attach_lines(text);
    }
    // Stable: problems on one line keep the order the rules found them.
    diags.sort_by_key(|d| d.line.unwrap_or(0));
    Ok((value, diags))
}

/// The text of a config file, or the error naming it.
pub(crate) fn read_text(path: &Path) -> Result<String, ConfigErrors> {
    std::fs::read_to_string(path).map_err(|e| ConfigErrors {
        file: path.display().to_string(),
        diagnostics: vec![Diagnostic::error(
            FieldPath::root(),
            format!("cannot read file: {e}"),
        )],
    })
}

/// Parses and validates `text` (named `file` in messages). Warnings (mirror
/// halves on one shelf) reject the file unless `force` is set.
pub fn check_str(text: &str, file: &str, force: bool) -> Result<Checked, ConfigErrors> {
    let (config, mut diags) = parse_checked(text, file, validate::validate)?;
    let rejected = diags
        .iter()
        .any(|d| d.severity == Severity::Error || !force);
    if rejected {
        if !force {
            for d in &mut diags {
                if d.severity == Severity::Warning {
                    d.message
                        .push_str(" (refused without --force or allow_same_shelf_mirrors: true)");
                }
            }
        }
        return Err(ConfigErrors {
            file: file.to_string(),
            diagnostics: diags,
        });
    }
    Ok(Checked {
        config,
        warnings: diags,
    })
}

/// Reads and checks a config file.
pub fn load(path: &Path, force: bool) -> Result<Checked, ConfigErrors> {
    check_str(&read_text(path)?, &path.display().to_string(), force)
}

impl Config {
    /// Every member the configuration names (array members, dedicated spares, then
    /// spare groups), each once, in order of appearance.
    pub fn members(&self) -> Vec<MemberAddr> {
        let mut out: Vec<MemberAddr> = Vec::new();
        let all = self
            .arrays
            .iter()
            .flat_map(|a| a.members.iter().chain(&a.spares))
            .chain(self.spare_groups.0.iter().flat_map(|g| g.members.iter()));
        for m in all {
            if !out.contains(m) {
                out.push(m.clone());
            }
        }
        out
    }

    pub fn array(&self, name: &str) -> Option<&ArraySpec> {
        self.arrays.iter().find(|a| a.name == name)
    }
    pub fn volume(&self, name: &str) -> Option<&VolumeSpec> {
        self.volumes.iter().find(|v| v.name == name)
    }

    /// A short human summary for `check-config`.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "appliance {}: backend [{}], frontend [{}], control socket {}, metrics on {}\n",
            self.appliance.name,
            self.backend.interfaces.join(", "),
            self.frontend.interfaces.join(", "),
            self.appliance.control_socket.display(),
            self.appliance.metrics_listen,
        );
        for a in &self.arrays {
            let members: Vec<String> = a.members.iter().map(|m| m.to_string()).collect();
            s.push_str(&format!(
                "  array {} {} chunk {} members [{}]",
                a.name,
                a.level,
                a.chunk(),
                members.join(" ")
            ));
            if let Some(g) = &a.spare_group {
                let n = self.spare_groups.get(g).map_or(0, |g| g.members.len());
                s.push_str(&format!(" spare group {g} ({n} spares)"));
            }
            if !a.spares.is_empty() {
                s.push_str(&format!(" + {} dedicated spares", a.spares.len()));
            }
            s.push_str(&format!(" rebuild {}..{}\n", a.rebuild.min, a.rebuild.max));
        }
        for v in &self.volumes {
            s.push_str(&format!(
                "  volume {} = {} exported as {}{}{}\n",
                v.name,
                v.arrays.join(" + "),
                v.export,
                if v.read_only { " read-only" } else { "" },
                if v.allow.is_empty() {
                    String::new()
                } else {
                    format!(" to {} MACs", v.allow.len())
                }
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebuild_bounds_refuse_zero_and_min_above_max_even_when_one_is_left_out() {
        let (mb, zero) = (Rate(1_000_000), Rate(0));
        assert_eq!(RebuildRates::check(Some(mb), Some(mb)), Ok(()));
        assert_eq!(RebuildRates::check(None, Some(zero)), Ok(()));
        assert_eq!(RebuildRates::check(Some(mb), None), Ok(()));
        for (min, max) in [(Some(zero), None), (Some(zero), Some(mb))] {
            assert_eq!(
                RebuildRates::check(min, max),
                Err("a rebuild rate of 0 would never finish".to_string())
            );
        }
        assert_eq!(
            RebuildRates::check(Some(Rate(2_000_000)), Some(mb)),
            Err("min 2MB/s is above max 1MB/s".to_string())
        );
    }

    #[test]
    fn example_config_parses_to_the_seed_setup() {
        let text = include_str!("../../../../appliance.yaml.example");
        let c = check_str(text, "appliance.yaml.example", false).unwrap();
        assert!(c.warnings.is_empty());
        let c = c.config;
        assert_eq!(c.appliance.name, "rb1");
        assert_eq!(c.appliance.metrics_listen.to_string(), "127.0.0.1:9720");
        assert_eq!(
            c.backend.dead_after.get(),
            std::time::Duration::from_secs(10)
        );
        let a = c.array("data").unwrap();
        assert_eq!(a.level, Level::Raid(RaidLevel::Raid10));
        assert_eq!(a.chunk().bytes(), 256 << 10);
        assert_eq!(a.integrity, Integrity::Crc32c);
        assert_eq!(a.rebuild.min.bytes_per_sec(), 10_000_000);
        assert_eq!(a.members.len(), 8);
        // Every mirror pair spans both shelves.
        for pair in a.mirror_sets() {
            assert_ne!(a.members[pair[0]].shelf(), a.members[pair[1]].shelf());
        }
        let g = c.spare_groups.get("shelfspares").unwrap();
        assert_eq!(
            g.members,
            ["e0.4".parse().unwrap(), "e1.4".parse().unwrap()]
        );
        let v = c.volume("gfs").unwrap();
        assert_eq!((v.export.shelf, v.export.slot), (7, 0));
    }

    /// Found by the `config_check` fuzz target: `{!aI,xp}d` is a mapping with one
    /// tagged key that is the empty string; the diagnostic named no field.
    #[test]
    fn an_empty_unknown_key_is_reported_against_its_mapping() {
        for (text, field) in [("{!aI,xp}d", "."), ("\"\": 1\n", ".")] {
            let e = check_str(text, "a.yaml", true).unwrap_err();
            let d = &e.diagnostics[0];
            assert_eq!(d.field, field, "{text:?}: {:?}", e.lines());
            assert!(d.message.starts_with("unknown key ``"), "{:?}", e.lines());
            assert!(
                e.lines()[0].starts_with("a.yaml:1: (document): "),
                "{:?}",
                e.lines()
            );
        }
    }

    #[test]
    fn defaults_fill_a_minimal_file() {
        let c = check_str("appliance: {name: x}\n", "m.yaml", false)
            .unwrap()
            .config;
        assert_eq!(
            c.appliance.control_socket,
            Path::new(DEFAULT_CONTROL_SOCKET)
        );
        assert_eq!(c.appliance.state_dir, Path::new(DEFAULT_STATE_DIR));
        assert!(c.arrays.is_empty() && c.volumes.is_empty());
    }

    /// Found by fuzz/config_check: spare groups serialized as a list of
    /// `{name, members}`, which the loader (a map of name to members) refused.
    #[test]
    fn a_serialized_config_parses_back_equal() {
        let c = check_str(
            include_str!("../../../../appliance.yaml.example"),
            "e",
            false,
        )
        .unwrap()
        .config;
        assert!(!c.spare_groups.0.is_empty());
        let yaml = serde_norway::to_string(&c).unwrap();
        assert_eq!(check_str(&yaml, "back", false).unwrap().config, c);
    }

    #[test]
    fn level_aliases_and_linear() {
        let t = "appliance: {name: x}\nbackend: {interfaces: [eth1]}\narrays:\n  - {name: c, level: concat, members: [e0.0, e0.1]}\n";
        let c = check_str(t, "c.yaml", false).unwrap().config;
        assert_eq!(c.arrays[0].level, Level::Linear);
    }
}
