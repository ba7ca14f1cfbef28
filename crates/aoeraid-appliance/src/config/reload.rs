//! SIGHUP: what changed between the running config and the file on disk,
//! split into changes the daemon can apply live and changes it must refuse
//! (those need a restart, `aoeraid create` or `aoeraid grow`).

use super::{ArraySpec, Config, Duration, MemberAddr, RebuildRates, VolumeSpec};
use aoe_wire::Mac;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq)]
pub enum LiveChange {
    MaskList {
        volume: String,
        allow: Vec<Mac>,
    },
    ConfigString {
        volume: String,
        value: Option<String>,
    },
    RebuildRates {
        array: String,
        rates: RebuildRates,
    },
    ArraySpares {
        array: String,
        added: Vec<MemberAddr>,
        removed: Vec<MemberAddr>,
    },
    ArraySpareGroup {
        array: String,
        group: Option<String>,
    },
    SpareGroup {
        group: String,
        added: Vec<MemberAddr>,
        removed: Vec<MemberAddr>,
    },
    EventProgram {
        program: Option<PathBuf>,
        timeout: Duration,
    },
    DeadAfter(Duration),
}

/// The outcome of comparing two configs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReloadPlan {
    pub live: Vec<LiveChange>,
    /// One message per change that cannot be applied without a restart.
    pub refused: Vec<String>,
}

fn added_removed(old: &[MemberAddr], new: &[MemberAddr]) -> (Vec<MemberAddr>, Vec<MemberAddr>) {
    let added = new.iter().filter(|m| !old.contains(m)).cloned().collect();
    let removed = old.iter().filter(|m| !new.contains(m)).cloned().collect();
    (added, removed)
}

/// Compares the running config with a newly loaded (already checked) one.
pub fn plan(old: &Config, new: &Config) -> ReloadPlan {
    let mut p = ReloadPlan::default();
    let restart = |what: String| format!("{what}: needs a restart to change");
    let (oa, na) = (&old.appliance, &new.appliance);
    if oa.name != na.name {
        p.refused.push(restart("appliance.name".into()));
    }
    if oa.state_dir != na.state_dir {
        p.refused.push(restart("appliance.state_dir".into()));
    }
    if oa.control_socket != na.control_socket {
        p.refused.push(restart("appliance.control_socket".into()));
    }
    if oa.metrics_listen != na.metrics_listen {
        p.refused.push(restart("appliance.metrics_listen".into()));
    }
    if oa.event_program != na.event_program || oa.event_timeout != na.event_timeout {
        p.live.push(LiveChange::EventProgram {
            program: na.event_program.clone(),
            timeout: na.event_timeout,
        });
    }
    if old.backend.interfaces != new.backend.interfaces {
        p.refused.push(restart("backend.interfaces".into()));
    }
    if old.frontend.interfaces != new.frontend.interfaces {
        p.refused.push(restart("frontend.interfaces".into()));
    }
    if old.backend.dead_after != new.backend.dead_after {
        p.live.push(LiveChange::DeadAfter(new.backend.dead_after));
    }

    for g in &new.spare_groups.0 {
        let before = old
            .spare_groups
            .get(&g.name)
            .map_or(&[][..], |o| &o.members[..]);
        let (added, removed) = added_removed(before, &g.members);
        if !added.is_empty() || !removed.is_empty() {
            p.live.push(LiveChange::SpareGroup {
                group: g.name.clone(),
                added,
                removed,
            });
        }
    }
    for g in &old.spare_groups.0 {
        if new.spare_groups.get(&g.name).is_none() && !g.members.is_empty() {
            p.live.push(LiveChange::SpareGroup {
                group: g.name.clone(),
                added: Vec::new(),
                removed: g.members.clone(),
            });
        }
    }

    for a in &old.arrays {
        match new.array(&a.name) {
            None => p.refused.push(format!(
                "array {}: removed from the config; stop the daemon to retire an array",
                a.name
            )),
            Some(n) => array(a, n, &mut p),
        }
    }
    for n in &new.arrays {
        if old.array(&n.name).is_none() {
            p.refused.push(format!(
                "array {}: new arrays need `aoeraid create` and a restart",
                n.name
            ));
        }
    }

    for v in &old.volumes {
        match new.volume(&v.name) {
            None => p
                .refused
                .push(format!("volume {}: removed; needs a restart", v.name)),
            Some(n) => volume(v, n, &mut p),
        }
    }
    for n in &new.volumes {
        if old.volume(&n.name).is_none() {
            p.refused
                .push(format!("volume {}: new volumes need a restart", n.name));
        }
    }
    p
}

fn array(o: &ArraySpec, n: &ArraySpec, p: &mut ReloadPlan) {
    let fixed = [
        ("level", o.level != n.level),
        ("chunk", o.chunk() != n.chunk()),
        ("members", o.members != n.members),
        ("integrity", o.integrity != n.integrity),
        (
            "consistency_policy",
            o.consistency_policy != n.consistency_policy,
        ),
        ("bitmap", o.bitmap != n.bitmap),
    ];
    for (field, changed) in fixed {
        if changed {
            p.refused.push(format!(
                "array {}: {field} is written in the superblocks and cannot change on reload \
                 (use fail/add/remove for members)",
                o.name
            ));
        }
    }
    if o.rebuild != n.rebuild {
        p.live.push(LiveChange::RebuildRates {
            array: n.name.clone(),
            rates: n.rebuild,
        });
    }
    let (added, removed) = added_removed(&o.spares, &n.spares);
    if !added.is_empty() || !removed.is_empty() {
        p.live.push(LiveChange::ArraySpares {
            array: n.name.clone(),
            added,
            removed,
        });
    }
    if o.spare_group != n.spare_group {
        p.live.push(LiveChange::ArraySpareGroup {
            array: n.name.clone(),
            group: n.spare_group.clone(),
        });
    }
}

fn volume(o: &VolumeSpec, n: &VolumeSpec, p: &mut ReloadPlan) {
    if o.export != n.export {
        p.refused.push(format!(
            "volume {}: export address {} -> {} needs a restart (clients would lose the device)",
            o.name, o.export, n.export
        ));
    }
    if o.arrays != n.arrays {
        p.refused.push(format!(
            "volume {}: arrays change only through `aoeraid grow {} --add ARRAY`",
            o.name, o.name
        ));
    }
    // The allow list and config string live in the export's shared state,
    // which the daemon rewrites (and persists) on reload.
    if o.allow != n.allow {
        p.live.push(LiveChange::MaskList {
            volume: n.name.clone(),
            allow: n.allow.clone(),
        });
    }
    if o.config_string != n.config_string {
        p.live.push(LiveChange::ConfigString {
            volume: n.name.clone(),
            value: n.config_string.clone(),
        });
    }
    if o.read_only != n.read_only {
        p.refused.push(format!(
            "volume {}: read_only is fixed in the export; needs a restart",
            o.name
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::check_str;

    const BASE: &str = "\
appliance: {name: rb1}
backend: {interfaces: [eth1]}
frontend: {interfaces: [eth2]}
spare_groups: {sg: [e0.4, e1.4]}
arrays:
  - {name: data, level: raid10, members: [e0.0, e1.0, e0.1, e1.1], spare_group: sg}
volumes:
  - {name: gfs, arrays: [data], export: {shelf: 7, slot: 0}}
";

    fn cfg(text: &str) -> Config {
        check_str(text, "test.yaml", false).unwrap().config
    }

    #[test]
    fn identical_configs_change_nothing() {
        assert_eq!(plan(&cfg(BASE), &cfg(BASE)), ReloadPlan::default());
    }

    #[test]
    fn live_changes_are_listed() {
        let new = BASE
            .replace("sg: [e0.4, e1.4]", "sg: [e0.4, e2.4]")
            .replace(
                "spare_group: sg}",
                "spare_group: sg, rebuild: {min: 20MB/s, max: 300MB/s}}",
            )
            .replace(
                "slot: 0}}",
                "slot: 0}, allow: [\"52:54:00:00:00:01\"], config_string: hello}",
            );
        let p = plan(&cfg(BASE), &cfg(&new));
        assert!(p.refused.is_empty(), "{:?}", p.refused);
        let e24: MemberAddr = "e2.4".parse().unwrap();
        let e14: MemberAddr = "e1.4".parse().unwrap();
        assert!(p.live.contains(&LiveChange::SpareGroup {
            group: "sg".into(),
            added: vec![e24],
            removed: vec![e14],
        }));
        assert!(p
            .live
            .iter()
            .any(|c| matches!(c, LiveChange::RebuildRates { array, rates }
            if array == "data" && rates.min.bytes_per_sec() == 20_000_000)));
        assert!(p
            .live
            .iter()
            .any(|c| matches!(c, LiveChange::MaskList { allow, .. } if allow.len() == 1)));
        assert!(p.live.contains(&LiveChange::ConfigString {
            volume: "gfs".into(),
            value: Some("hello".into()),
        }));
        assert!(p.live.contains(&LiveChange::MaskList {
            volume: "gfs".into(),
            allow: vec!["52:54:00:00:00:01".parse().unwrap()],
        }));
        // Back to an empty list (everyone allowed) and the string dropped.
        let back = plan(&cfg(&new), &cfg(BASE));
        assert!(back.refused.is_empty(), "{:?}", back.refused);
        assert!(back.live.contains(&LiveChange::MaskList {
            volume: "gfs".into(),
            allow: Vec::new(),
        }));
        assert!(back.live.contains(&LiveChange::ConfigString {
            volume: "gfs".into(),
            value: None,
        }));
    }

    #[test]
    fn structural_changes_are_refused_with_reasons() {
        let new = BASE
            .replace("level: raid10", "level: raid10, chunk: 1MiB")
            .replace("shelf: 7", "shelf: 8")
            .replace("slot: 0}}", "slot: 0}, read_only: true}")
            .replace("interfaces: [eth1]", "interfaces: [eth3]");
        let p = plan(&cfg(BASE), &cfg(&new));
        assert_eq!(p.refused.len(), 4, "{:?}", p.refused);
        assert!(p.live.is_empty(), "{:?}", p.live);
        assert!(p
            .refused
            .iter()
            .any(|r| r.contains("volume gfs: read_only")));
        assert!(p.refused.iter().any(|r| r.contains("array data: chunk")));
        assert!(p
            .refused
            .iter()
            .any(|r| r.contains("export address e7.0 -> e8.0")));
        assert!(p
            .refused
            .iter()
            .any(|r| r.starts_with("backend.interfaces")));
    }
}
