//! Spare groups (mdadm's `spare-group`): devices no array uses yet, lent to the
//! first array of their group that needs one. Each spare carries the member UUID
//! it will get, drawn when it joined the group, so taking one needs no I/O.
//! A blade spare added at run time carries a label naming its group
//! (`spare_label.rs`), so a restart or the other appliance of a pair finds it.

use super::members::Location;
use crate::config::MemberAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Spare {
    pub(crate) addr: MemberAddr,
    pub(crate) loc: Location,
    pub(crate) uuid: [u8; 16],
    pub(crate) origin: SpareOrigin,
}

/// Where a spare came from, for `aoeraid status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SpareOrigin {
    /// The configuration's spare group lists it.
    Config,
    /// `aoeraid spare-add` (or a reload) added it while running.
    Added,
    /// Found at start (or when its blade appeared) by its spare label.
    Label,
}

impl SpareOrigin {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SpareOrigin::Config => "config",
            SpareOrigin::Added => "spare-add",
            SpareOrigin::Label => "label",
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct SpareGroups {
    groups: Vec<(String, Vec<Spare>)>,
}

impl SpareGroups {
    pub(crate) fn new(groups: Vec<(String, Vec<Spare>)>) -> SpareGroups {
        SpareGroups { groups }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &[Spare])> {
        self.groups.iter().map(|(n, s)| (n.as_str(), &s[..]))
    }

    pub(crate) fn exists(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g.0 == group)
    }

    /// Unused spares of `group` (0 for an unknown group).
    pub(crate) fn available(&self, group: &str) -> usize {
        self.get(group).map_or(0, Vec::len)
    }

    pub(crate) fn contains(&self, group: &str, addr: &MemberAddr) -> bool {
        self.get(group)
            .is_some_and(|s| s.iter().any(|x| &x.addr == addr))
    }

    /// Is `addr` an unused spare of any group?
    pub(crate) fn holds(&self, addr: &MemberAddr) -> bool {
        self.groups
            .iter()
            .any(|g| g.1.iter().any(|x| &x.addr == addr))
    }

    /// Creates `group` if it does not exist.
    pub(crate) fn ensure(&mut self, group: &str) {
        if !self.exists(group) {
            self.groups.push((group.to_string(), Vec::new()));
        }
    }

    /// Adds a spare to an existing group; false if the group is unknown.
    pub(crate) fn add(&mut self, group: &str, spare: Spare) -> bool {
        match self.groups.iter_mut().find(|g| g.0 == group) {
            Some(g) => {
                g.1.push(spare);
                true
            }
            None => false,
        }
    }

    /// Removes `addr` from `group`: the spare, None if it was not an unused one there.
    pub(crate) fn remove(&mut self, group: &str, addr: &MemberAddr) -> Option<Spare> {
        let g = self.groups.iter_mut().find(|g| g.0 == group)?;
        let i = g.1.iter().position(|x| &x.addr == addr)?;
        Some(g.1.remove(i))
    }

    /// Forgets every unused spare at `loc` (its blade is no longer ours to write).
    pub(crate) fn drop_location(&mut self, loc: Location) {
        for g in &mut self.groups {
            g.1.retain(|x| x.loc != loc);
        }
    }

    /// The spare an array of `group` gets next: the one that waited longest
    /// among those `usable` accepts.
    pub(crate) fn take(&mut self, group: &str, usable: impl Fn(&Spare) -> bool) -> Option<Spare> {
        let g = self.groups.iter_mut().find(|g| g.0 == group)?;
        let i = g.1.iter().position(usable)?;
        Some(g.1.remove(i))
    }

    fn get(&self, group: &str) -> Option<&Vec<Spare>> {
        self.groups.iter().find(|g| g.0 == group).map(|g| &g.1)
    }
}
