//! The volumes behind the exports: arrays (RAID engines) concatenated, and what the
//! appliance knows of each array that its engine does not (member addresses, spare
//! group, sync ledger).

use super::assembly::Verdicts;
use super::members::Location;
use crate::config::{Config, MemberAddr};
use raid_engine::{Concat, Engine, MemberState};

/// A RAID array inside a volume.
pub(crate) struct Array {
    pub(crate) name: String,
    /// Engine member index i is `members[i]`; None for a slot the engine holds for
    /// a member whose device was not found at assembly (its address is known only
    /// once its superblock is read, see `core/rejoin.rs`).
    members: Vec<Option<(MemberAddr, Location)>>,
    pub(crate) spare_group: Option<String>,
    /// Engine members in a slot when the array failed: the one whose failure
    /// failed it and every one failed after. They carry its last event count, so
    /// all of them must answer again before it is re-assembled (`regather.rs`).
    /// None while the array runs.
    pub(crate) failed_with: Option<Vec<usize>>,
    /// The member failed last while the array ran.
    pub(crate) last_failed: Option<usize>,
    /// A member of the failed array answered again: re-assemble when possible.
    pub(crate) regather_wanted: bool,
    /// Members assembly took from blades found by their superblock, which the
    /// configuration does not list (`core/assembly.rs`).
    pub(crate) found: Vec<MemberAddr>,
    /// Devices assembly left out, with the reason, until the core takes them
    /// over as its refusals when it starts (`Core::new`).
    pub(crate) refused_at_start: Vec<(MemberAddr, String)>,
}

impl Array {
    pub(crate) fn new(
        name: String,
        members: Vec<(MemberAddr, Location)>,
        spare_group: Option<String>,
    ) -> Array {
        Array {
            name,
            members: members.into_iter().map(Some).collect(),
            spare_group,
            failed_with: None,
            last_failed: None,
            regather_wanted: false,
            found: Vec::new(),
            refused_at_start: Vec::new(),
        }
    }

    /// The array as its assembly left it: members taken by their superblock,
    /// devices refused.
    pub(crate) fn assembled(self, v: Verdicts) -> Array {
        Array {
            found: v.found,
            refused_at_start: v.refused,
            ..self
        }
    }

    /// Records that engine member index `idx` is `addr` at `loc`.
    pub(crate) fn set_member(&mut self, idx: usize, addr: &MemberAddr, loc: Location) {
        if self.members.len() <= idx {
            self.members.resize(idx + 1, None);
        }
        self.members[idx] = Some((addr.clone(), loc));
    }

    /// The device of engine member `idx`, if known.
    pub(crate) fn member(&self, idx: usize) -> Option<&(MemberAddr, Location)> {
        self.members.get(idx)?.as_ref()
    }

    /// Every member whose device is known: (engine index, address, location).
    pub(crate) fn known(&self) -> impl Iterator<Item = (usize, &MemberAddr, Location)> {
        self.members
            .iter()
            .enumerate()
            .filter_map(|(i, m)| m.as_ref().map(|(a, l)| (i, a, *l)))
    }

    /// The operator-facing name of engine member `idx`: its address, or
    /// `member<idx>` while its device is unknown.
    pub(crate) fn member_name(&self, idx: usize) -> String {
        self.member(idx)
            .map_or_else(|| format!("member{idx}"), |m| m.0.to_string())
    }

    /// Names of engine members 0..n.
    pub(crate) fn member_names(&self, n: usize) -> Vec<String> {
        (0..n.max(self.members.len()))
            .map(|i| self.member_name(i))
            .collect()
    }

    /// The engine index of `addr`. The newest entry wins: a re-added address may
    /// appear twice.
    pub(crate) fn index_of(&self, addr: &MemberAddr) -> Option<usize> {
        self.known().filter(|m| m.1 == addr).map(|m| m.0).last()
    }
}

/// A volume: arrays concatenated, maybe exported.
pub(crate) struct Volume {
    pub(crate) name: String,
    pub(crate) concat: Concat,
    pub(crate) arrays: Vec<Array>,
    pub(crate) export: Option<(u16, u8)>,
    pub(crate) read_only: bool,
    pub(crate) allow: Vec<String>,
    pub(crate) read_bytes: u64,
    pub(crate) write_bytes: u64,
    /// Not a configured volume: an array no volume names yet (waiting for `grow`).
    pub(crate) standalone: bool,
    /// Another appliance took a blade of this volume (its reservation was lost):
    /// no member I/O is sent and the export is silent from then on.
    pub(crate) reservation_lost: bool,
}

impl Volume {
    /// A configured volume of `arrays` (engines in the same order as `arrays`).
    pub(crate) fn new(name: String, concat: Concat, arrays: Vec<Array>) -> Volume {
        Volume {
            name,
            concat,
            arrays,
            export: None,
            read_only: false,
            allow: Vec::new(),
            read_bytes: 0,
            write_bytes: 0,
            standalone: false,
            reservation_lost: false,
        }
    }

    /// An assembled array no volume names yet.
    pub(crate) fn standalone(engine: raid_engine::Engine, array: Array) -> Volume {
        Volume {
            standalone: true,
            ..Volume::new(array.name.clone(), Concat::new(vec![engine]), vec![array])
        }
    }

    pub(crate) fn member_state(&self, a: usize, m: usize) -> Option<MemberState> {
        self.concat.arrays()[a]
            .status()
            .members
            .iter()
            .find(|x| x.index == m)
            .map(|x| x.state)
    }

    /// Does member `m` of array `a` still hold its slot (no other member active or
    /// rebuilding in it)?
    pub(crate) fn still_owns_slot(&self, a: usize, m: usize) -> bool {
        let st = self.concat.arrays()[a].status();
        let Some(role) = st
            .members
            .iter()
            .find(|x| x.index == m)
            .and_then(|x| x.role)
        else {
            return false;
        };
        !st.members.iter().any(|x| {
            x.index != m
                && x.role == Some(role)
                && matches!(x.state, MemberState::Active | MemberState::Rebuilding)
        })
    }
}

/// An array assembled (or created) at start, before it joins its volume.
pub(crate) struct Assembled {
    pub(crate) engine: Engine,
    pub(crate) array: Array,
}

/// The volumes at start, from the arrays assembled in configuration order: every
/// configured volume concatenates its arrays in the order it lists them and carries
/// its export, read-only flag and mask list; then every array no volume names, each
/// a standalone volume (waiting for `grow`), in assembly order. Shared by
/// `aoeraid run` and the simulator, so both start the same volumes.
pub(crate) fn start_volumes(
    cfg: &Config,
    mut assembled: Vec<Assembled>,
) -> Result<Vec<Volume>, String> {
    let mut vols = Vec::new();
    for vs in &cfg.volumes {
        let mut engines = Vec::new();
        let mut arrays = Vec::new();
        for an in &vs.arrays {
            let i = assembled
                .iter()
                .position(|a| &a.array.name == an)
                .ok_or_else(|| format!("volume {}: array {an} is not assembled", vs.name))?;
            let a = assembled.remove(i);
            engines.push(a.engine);
            arrays.push(a.array);
        }
        let mut v = Volume::new(vs.name.clone(), Concat::new(engines), arrays);
        v.export = Some((vs.export.shelf, vs.export.slot));
        v.read_only = vs.read_only;
        v.allow = vs.allow.iter().map(|m| m.to_string()).collect();
        vols.push(v);
    }
    vols.extend(
        assembled
            .into_iter()
            .map(|a| Volume::standalone(a.engine, a.array)),
    );
    Ok(vols)
}

/// The members of a spare group no assembled array uses (listed in both, the
/// array's claim wins), in the group's order.
pub(crate) fn unused_spares<'a>(
    group: &'a [MemberAddr],
    assembled: &'a [Assembled],
) -> impl Iterator<Item = &'a MemberAddr> {
    group.iter().filter(|m| {
        !assembled
            .iter()
            .any(|a| a.array.known().any(|(_, addr, _)| addr == *m))
    })
}

/// (volume, array) of the array named `name`.
pub(crate) fn find_array(vols: &[Volume], name: &str) -> Option<(usize, usize)> {
    vols.iter().enumerate().find_map(|(v, vol)| {
        vol.arrays
            .iter()
            .position(|a| a.name == name)
            .map(|a| (v, a))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::check_str;
    use aoe_initiator::BladeId;
    use raid_engine::{ArrayConfig, Level, MemberSpec};

    /// Arrays a, b, c (volume `big` concatenates c then a, `small` is b) and d,
    /// which no volume names.
    const YAML: &str = "appliance: {name: t}\n\
        backend: {interfaces: [eth1]}\n\
        frontend: {interfaces: [eth2]}\n\
        arrays:\n\
        \x20 - {name: a, level: raid1, members: [e1.0, e2.0], spare_group: g}\n\
        \x20 - {name: b, level: raid1, members: [e3.0, e4.0]}\n\
        \x20 - {name: c, level: raid1, members: [e5.0, e6.0]}\n\
        \x20 - {name: d, level: raid1, members: [e7.0, e8.0]}\n\
        spare_groups: {g: [e9.0]}\n\
        volumes:\n\
        \x20 - {name: big, arrays: [c, a], export: {shelf: 7, slot: 0}, read_only: true, \
        allow: [\"52:54:00:00:00:01\", \"52:54:00:00:00:02\"]}\n\
        \x20 - {name: small, arrays: [b], export: {shelf: 7, slot: 1}}\n";

    fn cfg() -> Config {
        check_str(YAML, "t.yaml", false)
            .unwrap_or_else(|e| panic!("{e}"))
            .config
    }

    /// Array `name` of `cfg` as assembly hands it over: a fresh engine, its
    /// members on blades, `found` taken by their superblock.
    fn assembled(cfg: &Config, name: &str, found: &[&str]) -> Assembled {
        let spec = cfg.array(name).unwrap();
        let ms = spec
            .members
            .iter()
            .map(|m| MemberSpec {
                uuid: [m.shelf().unwrap() as u8; 16],
                size_sectors: 2048 + 4096,
                shelf: None,
            })
            .collect();
        let engine = Engine::create(&ArrayConfig::new(name, [0xA0; 16], Level::Raid1, ms))
            .unwrap_or_else(|e| panic!("{e}"));
        let members = spec
            .members
            .iter()
            .map(|m| {
                (
                    m.clone(),
                    Location::Blade(BladeId(u32::from(m.shelf().unwrap()))),
                )
            })
            .collect();
        let found = found.iter().map(|f| f.parse().unwrap()).collect();
        Assembled {
            engine,
            array: Array::new(name.into(), members, spec.spare_group.clone()).assembled(Verdicts {
                found,
                refused: Vec::new(),
            }),
        }
    }

    #[test]
    fn configured_volumes_come_first_with_their_arrays_in_order_then_unnamed_arrays() {
        let cfg = cfg();
        let ready = ["a", "b", "c", "d"]
            .map(|n| assembled(&cfg, n, if n == "a" { &["e10.0"] } else { &[] }));
        let vols = start_volumes(&cfg, ready.into()).unwrap();
        let shape: Vec<(&str, Vec<&str>, Vec<String>, bool)> = vols
            .iter()
            .map(|v| {
                (
                    v.name.as_str(),
                    v.arrays.iter().map(|a| a.name.as_str()).collect(),
                    v.concat.arrays().iter().map(|e| e.status().name).collect(),
                    v.standalone,
                )
            })
            .collect();
        assert_eq!(
            shape,
            [
                ("big", vec!["c", "a"], vec!["c".into(), "a".into()], false),
                ("small", vec!["b"], vec!["b".into()], false),
                ("d", vec!["d"], vec!["d".into()], true),
            ]
        );
        let big = &vols[0];
        assert_eq!(big.export, Some((7, 0)));
        assert!(big.read_only);
        assert_eq!(big.allow, ["52:54:00:00:00:01", "52:54:00:00:00:02"]);
        let a = &big.arrays[1];
        assert_eq!(a.found, ["e10.0".parse::<MemberAddr>().unwrap()]);
        assert_eq!(a.spare_group.as_deref(), Some("g"));
        assert_eq!(a.member_names(2), ["e1.0", "e2.0"]);
        let small = &vols[1];
        assert_eq!(small.export, Some((7, 1)));
        assert!(!small.read_only);
        assert!(small.allow.is_empty());
        assert!(small.arrays[0].found.is_empty());
        assert_eq!(vols[2].export, None);
    }

    #[test]
    fn a_volume_whose_array_was_not_assembled_is_refused_by_name() {
        let cfg = cfg();
        let ready = ["a", "b", "d"].map(|n| assembled(&cfg, n, &[]));
        let err = start_volumes(&cfg, ready.into()).err().unwrap();
        assert_eq!(err, "volume big: array c is not assembled");
    }

    #[test]
    fn spares_are_the_group_members_no_assembled_array_uses() {
        let cfg = cfg();
        let ready = ["a", "b"].map(|n| assembled(&cfg, n, &[]));
        let group: Vec<MemberAddr> = ["e9.0", "e2.0", "e5.0", "e3.0"]
            .iter()
            .map(|m| m.parse().unwrap())
            .collect();
        let free: Vec<String> = unused_spares(&group, &ready)
            .map(|m| m.to_string())
            .collect();
        assert_eq!(free, ["e9.0", "e5.0"]);
    }
}
