//! How the running arrays differ from what appliance.yaml lists. Assembly takes
//! members by their superblocks (`assembly.rs`), and `add` or a spare puts a blade
//! the array's line does not name into a slot; the YAML is then out of date. The
//! operator is told which blade holds which slot and what the line should say (as
//! mdadm suggests updating mdadm.conf): in the status, and logged at start.

use super::volumes::Array;
use super::Core;
use crate::config::{ArraySpec, MemberAddr};
use raid_engine::MemberState;

impl Core {
    /// Where member `addr` of array `arr` came from: `config` (the array's line),
    /// `spare-group` (its spare group's line), `superblock` (found by it at
    /// start, listed nowhere) or `added` (put in at run time, listed nowhere).
    pub(super) fn member_origin(&self, arr: &Array, addr: &MemberAddr) -> &'static str {
        let spec = self.config.array(&arr.name);
        let group = spec
            .and_then(|s| s.spare_group.as_ref())
            .and_then(|g| self.config.spare_groups.get(g));
        if spec.is_some_and(|s| s.members.contains(addr) || s.spares.contains(addr)) {
            "config"
        } else if group.is_some_and(|g| g.members.contains(addr)) {
            "spare-group"
        } else if arr.found.contains(addr) {
            "superblock"
        } else {
            "added"
        }
    }

    /// One line per array whose slots are held by blades its `members:` line
    /// does not name, with the line that would describe it.
    pub(super) fn unlisted(&self) -> Vec<String> {
        let mut out = Vec::new();
        for vol in &self.vols {
            for (a, arr) in vol.arrays.iter().enumerate() {
                let Some(spec) = self.config.array(&arr.name) else {
                    continue;
                };
                let st = vol.concat.arrays()[a].status();
                let mut holders: Vec<Option<MemberAddr>> = vec![None; st.raid_disks];
                for m in &st.members {
                    let holds = matches!(m.state, MemberState::Active | MemberState::Rebuilding);
                    if let (true, Some(r), Some((addr, _))) = (holds, m.role, arr.member(m.index)) {
                        if let Some(h) = holders.get_mut(r) {
                            *h = Some(addr.clone());
                        }
                    }
                }
                let strangers: Vec<String> = holders
                    .iter()
                    .enumerate()
                    .filter_map(|(s, h)| {
                        let h = h.as_ref()?;
                        (!spec.members.contains(h))
                            .then(|| format!("{h} (slot {s}, {})", self.member_origin(arr, h)))
                    })
                    .collect();
                if strangers.is_empty() {
                    continue;
                }
                out.push(format!(
                    "array {}: {} not in appliance.yaml's member list; update its line to \
                     `members: [{}]`",
                    arr.name,
                    strangers.join(", "),
                    suggested(spec, &holders).join(", ")
                ));
            }
        }
        out
    }

    /// Logs [`Core::unlisted`] (once, at start).
    pub(super) fn warn_unlisted(&mut self) {
        for w in self.unlisted() {
            self.log(4, w);
        }
    }
}

/// The member list in slot order: each slot's holder, and for a slot nobody
/// holds, the next listed member that holds none.
fn suggested(spec: &ArraySpec, holders: &[Option<MemberAddr>]) -> Vec<String> {
    let mut idle = spec
        .members
        .iter()
        .filter(|m| !holders.iter().flatten().any(|h| h == *m));
    holders
        .iter()
        .filter_map(|h| h.as_ref().or_else(|| idle.next()))
        .map(ToString::to_string)
        .collect()
}
