//! The volumes behind the exports: arrays (RAID engines) concatenated, and what the
//! appliance knows of each array that its engine does not (member addresses, spare
//! group, sync ledger).

use super::members::Location;
use crate::config::MemberAddr;
use raid_engine::{Concat, MemberState};

/// A RAID array inside a volume.
pub(crate) struct Array {
    pub(crate) name: String,
    /// Engine member index i is `members[i]`.
    pub(crate) members: Vec<(MemberAddr, Location)>,
    pub(crate) spare_group: Option<String>,
}

impl Array {
    pub(crate) fn new(
        name: String,
        members: Vec<(MemberAddr, Location)>,
        spare_group: Option<String>,
    ) -> Array {
        Array {
            name,
            members,
            spare_group,
        }
    }

    /// Records that engine member index `idx` is `addr` at `loc`.
    pub(crate) fn set_member(&mut self, idx: usize, addr: &MemberAddr, loc: Location) {
        if self.members.len() <= idx {
            self.members.resize(idx + 1, (addr.clone(), loc));
        }
        self.members[idx] = (addr.clone(), loc);
    }

    /// The engine index of `addr`. The newest entry wins: a re-added address may
    /// appear twice.
    pub(crate) fn index_of(&self, addr: &MemberAddr) -> Option<usize> {
        self.members.iter().rposition(|m| &m.0 == addr)
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
