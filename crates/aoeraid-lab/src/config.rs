//! `appliance.yaml` for the tests, built from types and serialized by serde
//! into the YAML `aoeraid` reads. The lab cannot use the appliance's own
//! config types: aoe-uring's tests depend on the lab, and the appliance on
//! aoe-uring. So this is the subset the tests write, spelled the way the
//! daemon parses it (sizes and durations in its own syntax, e.g. `128KiB`,
//! `2s`); `aoeraid check-config` stays the judge of what is valid.

pub use raid_engine::Level;
use serde::{Serialize, Serializer};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The whole file. [`crate::Appliance`] fills `appliance`, `backend` and
/// `frontend` from its lab; a test describes the rest:
/// `Config::default().array(Array::raid1("data", &["e0.0", "e1.0"])).volume(Volume::new("gfs", &["data"], 7, 0))`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Config {
    pub appliance: ApplianceSection,
    pub backend: Backend,
    pub frontend: Frontend,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub spare_groups: BTreeMap<String, Vec<String>>,
    pub arrays: Vec<Array>,
    pub volumes: Vec<Volume>,
}

impl Config {
    pub fn array(mut self, a: Array) -> Config {
        self.arrays.push(a);
        self
    }
    pub fn volume(mut self, v: Volume) -> Config {
        self.volumes.push(v);
        self
    }
    /// A spare group shared by the arrays that name it.
    pub fn spare_group(mut self, name: &str, members: &[&str]) -> Config {
        self.spare_groups.insert(name.to_string(), strings(members));
        self
    }
    /// The volume called `name`; panics if there is none (a test bug).
    pub fn volume_mut(&mut self, name: &str) -> &mut Volume {
        self.volumes
            .iter_mut()
            .find(|v| v.name == name)
            .unwrap_or_else(|| panic!("config has no volume {name}"))
    }
    /// The YAML text.
    pub fn to_yaml(&self) -> String {
        serde_norway::to_string(self).expect("a test config serializes")
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ApplianceSection {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control_socket: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_program: Option<PathBuf>,
    /// How long `event_program` may run, in the daemon's syntax (`5s`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_timeout: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Backend {
    pub interfaces: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_after: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Frontend {
    pub interfaces: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Array {
    pub name: String,
    #[serde(serialize_with = "level_name")]
    pub level: Level,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunk: Option<String>,
    pub members: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spare_group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bitmap: Option<Bitmap>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub allow_same_shelf_mirrors: bool,
    /// `crc32c` keeps a checksum per 4 KiB member block (default: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub integrity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rebuild: Option<RebuildRates>,
    /// RAID 5/6: `ppl` (the daemon's default) or `resync`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consistency_policy: Option<String>,
}

/// Rebuild, resync and scrub rates in the daemon's syntax (`10MB/s`): the
/// sync keeps at least `min` under foreground load.
#[derive(Clone, Debug, Serialize)]
pub struct RebuildRates {
    pub min: String,
}

/// Write-intent bitmap: the data one bit covers.
#[derive(Clone, Debug, Serialize)]
pub struct Bitmap {
    pub region: String,
}

/// An array's level as the daemon spells it (`raid5`); concatenation is
/// written as a volume over arrays, so the tests need no `linear` array.
fn level_name<S: Serializer>(level: &Level, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(level.name())
}

impl Array {
    pub fn new(name: &str, level: Level, members: &[&str]) -> Array {
        Array {
            name: name.to_string(),
            level,
            chunk: None,
            members: strings(members),
            spare_group: None,
            bitmap: None,
            allow_same_shelf_mirrors: false,
            integrity: None,
            rebuild: None,
            consistency_policy: None,
        }
    }
    pub fn raid1(name: &str, members: &[&str]) -> Array {
        Array::new(name, Level::Raid1, members)
    }
    /// Stripe unit in the daemon's size syntax (`128KiB`).
    pub fn chunk(mut self, size: &str) -> Array {
        self.chunk = Some(size.to_string());
        self
    }
    pub fn spare_group(mut self, group: &str) -> Array {
        self.spare_group = Some(group.to_string());
        self
    }
    /// Write-intent bitmap region in the daemon's size syntax (`1MiB`).
    pub fn bitmap_region(mut self, size: &str) -> Array {
        self.bitmap = Some(Bitmap {
            region: size.to_string(),
        });
        self
    }
    /// Checksums on member blocks: `crc32c` or `none`.
    pub fn integrity(mut self, kind: &str) -> Array {
        self.integrity = Some(kind.to_string());
        self
    }
    /// The rate background sync keeps under foreground load (`10MB/s`).
    pub fn rebuild_min(mut self, rate: &str) -> Array {
        self.rebuild = Some(RebuildRates {
            min: rate.to_string(),
        });
        self
    }
    /// How a RAID 5/6 survives a crash: `ppl` or `resync`.
    pub fn consistency_policy(mut self, policy: &str) -> Array {
        self.consistency_policy = Some(policy.to_string());
        self
    }
    /// Mirror halves (RAID 5 members) may share a shelf.
    pub fn same_shelf_mirrors(mut self) -> Array {
        self.allow_same_shelf_mirrors = true;
        self
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Volume {
    pub name: String,
    pub arrays: Vec<String>,
    pub export: Export,
    /// The MAC mask list; empty lets every initiator in.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_string: Option<String>,
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct Export {
    pub shelf: u16,
    pub slot: u8,
}

impl Volume {
    /// Volume `name` over `arrays` (concatenated), exported as `shelf`.`slot`.
    pub fn new(name: &str, arrays: &[&str], shelf: u16, slot: u8) -> Volume {
        Volume {
            name: name.to_string(),
            arrays: strings(arrays),
            export: Export { shelf, slot },
            allow: Vec::new(),
            config_string: None,
        }
    }
    pub fn allow(mut self, macs: &[&str]) -> Volume {
        self.allow = strings(macs);
        self
    }
    pub fn config_string(mut self, s: &str) -> Volume {
        self.config_string = Some(s.to_string());
        self
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_to_the_yaml_the_daemon_reads() {
        let mut c = Config::default()
            .spare_group("shelfspares", &["e0.4", "e1.4"])
            .array(
                Array::new("data", Level::Raid10, &["e0.0", "e1.0"])
                    .chunk("128KiB")
                    .spare_group("shelfspares")
                    .bitmap_region("1MiB")
                    .integrity("crc32c")
                    .rebuild_min("10MB/s"),
            )
            .volume(Volume::new("gfs", &["data"], 7, 0).config_string("before"));
        c.appliance.name = "lab".into();
        c.backend.interfaces = vec!["ini0".into()];
        c.backend.dead_after = Some("2s".into());
        c.volume_mut("gfs").allow = vec!["02:00:00:00:00:99".into()];
        let yaml = c.to_yaml();
        for line in [
            "name: lab",
            "dead_after: 2s",
            "shelfspares:",
            "level: raid10",
            "chunk: 128KiB",
            "spare_group: shelfspares",
            "region: 1MiB",
            "integrity: crc32c",
            "min: 10MB/s",
            "shelf: 7",
            "config_string: before",
            "02:00:00:00:00:99",
        ] {
            assert!(yaml.contains(line), "{line} missing from:\n{yaml}");
        }
        assert!(!yaml.contains("allow_same_shelf_mirrors"), "{yaml}");
        assert!(!yaml.contains("metrics_listen"), "{yaml}");
    }
}
