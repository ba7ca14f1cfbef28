//! The volumes behind the exports: arrays (RAID engines) concatenated, and what the
//! appliance knows of each array that its engine does not (member addresses, spare
//! group, sync ledger).

use super::assembly::Verdicts;
use super::members::Location;
use crate::config::MemberAddr;
use raid_engine::{Concat, MemberState};

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

/// (volume, array) of the array named `name`.
pub(crate) fn find_array(vols: &[Volume], name: &str) -> Option<(usize, usize)> {
    vols.iter().enumerate().find_map(|(v, vol)| {
        vol.arrays
            .iter()
            .position(|a| a.name == name)
            .map(|a| (v, a))
    })
}
