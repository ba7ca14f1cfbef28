//! A failed array comes back by itself when its members do. A stall that silences
//! every blade at once (a link outage, a switch reboot, a power dip of the shelf)
//! fails each member as its blade passes `dead_after`, and the array fails with
//! them. No write completed after that: a write is acknowledged only once every
//! in-sync copy took it, and no member is skipped before its failure is on the
//! survivors' superblocks. So when the members answer again, their superblocks say
//! which of them are current, as after a crash — and the array is assembled again
//! from them, by the same rule `aoeraid run` starts with
//! (`raid_engine::assemble`): the highest event count is the truth, older members
//! resync from the bitmap or are rebuilt, an unclean RAID 5/6 missing a member is
//! refused (the write hole), other arrays' disks are left out.
//!
//! What makes that safe while running is *which* members must be back: the ones in
//! a slot when the array failed — the member whose failure failed it and every one
//! failed after (`Array::failed_with`). The last superblock round that landed
//! anywhere landed on them, so with all of them read the highest event count is
//! the array's last; a member that failed earlier, while the array still ran
//! without it, may be stale and is never needed. Until every one of them answers
//! (and is held again, for an appliance holding reservations) the array stays
//! failed; if one of them comes back as something else (refused by assembly) it
//! stays failed for the operator.

use super::members::{superblock_read, Location, MemberResult};
use super::volumes::Array;
use super::{Core, Notice};
use crate::config::MemberAddr;
use crate::events::{Event, EventKind};
use aoe_initiator::BladeState;
use raid_engine::{assemble, ArrayState, AssemblyInput, Engine, MemberError};

/// Superblock reads of one failed array's members, in flight.
pub(super) struct Regather {
    v: usize,
    a: usize,
    /// Every member read: address, device, read token, result once in.
    reads: Vec<(MemberAddr, Location, u64, Option<MemberResult>)>,
}

impl Core {
    /// Follows an array's member failures (engine events in order) to know, once
    /// it fails, which members carry its last state.
    pub(super) fn track_failure(&mut self, v: usize, a: usize, ev: &raid_engine::Event) {
        let in_slot = |core: &Core, m: usize| {
            core.vols[v].concat.arrays()[a]
                .status()
                .members
                .iter()
                .any(|x| x.index == m && x.role.is_some())
        };
        match *ev {
            raid_engine::Event::Fail { member } => {
                let slot = in_slot(self, member);
                let arr = &mut self.vols[v].arrays[a];
                match arr.failed_with.as_mut() {
                    Some(with) if slot && !with.contains(&member) => with.push(member),
                    Some(_) => {}
                    None if slot => arr.last_failed = Some(member),
                    None => {}
                }
            }
            raid_engine::Event::ArrayFailed => {
                let arr = &mut self.vols[v].arrays[a];
                arr.failed_with = Some(arr.last_failed.into_iter().collect());
            }
            _ => {}
        }
    }

    /// Can member I/O go to `loc` now: a file, or a blade that answers and that
    /// the appliance holds (if it holds reservations at all).
    fn reachable(&self, loc: Location) -> bool {
        match loc {
            Location::File(_) => true,
            Location::Blade(b) => {
                self.pool
                    .as_ref()
                    .is_some_and(|p| p.blade_state(b) == Some(BladeState::Up))
                    && self.owners.writable(b)
            }
        }
    }

    /// Does the engine of array `a` of volume `v` have member I/O out (at a blade
    /// or a file)? A new engine's I/O ids start afresh: a late answer to the old
    /// one's would be taken for the new one's.
    fn array_io_out(&self, v: usize, a: usize) -> bool {
        self.member_started.keys().any(|&t| {
            let (tv, ta, _) = super::members::untoken(t);
            (tv, ta) == (v, a)
        })
    }

    /// A member of failed array `a` of volume `v` answered again: the array is
    /// re-assembled as soon as it can be ([`Core::regathers_due`]).
    pub(super) fn want_regather(&mut self, v: usize, a: usize) {
        self.vols[v].arrays[a].regather_wanted = true;
        self.try_regather(v, a, true);
    }

    /// Failed arrays a member of which answered again, tried again (their old
    /// I/O may have been in flight still).
    pub(super) fn regathers_due(&mut self) {
        for v in 0..self.vols.len() {
            for a in 0..self.vols[v].arrays.len() {
                if self.vols[v].arrays[a].regather_wanted {
                    self.try_regather(v, a, false);
                }
            }
        }
    }

    /// Once every member array `a` of volume `v` failed with answers again, and
    /// its old engine's I/O is over, every reachable member's superblock is read
    /// ([`Core::regather_read`] assembles). `report`: say what it still waits for.
    fn try_regather(&mut self, v: usize, a: usize, report: bool) {
        if self.regathers.iter().any(|g| (g.v, g.a) == (v, a)) || self.vols[v].reservation_lost {
            return;
        }
        let st = self.vols[v].concat.arrays()[a].status();
        let arr = &self.vols[v].arrays[a];
        let needed = match arr.failed_with.as_ref() {
            Some(w) if !w.is_empty() && st.state == ArrayState::Failed => w,
            _ => {
                self.vols[v].arrays[a].regather_wanted = false;
                return;
            }
        };
        if self.array_io_out(v, a) {
            return;
        }
        let waiting: Vec<String> = needed
            .iter()
            .filter(|&&m| arr.member(m).is_none_or(|x| !self.reachable(x.1)))
            .map(|&m| arr.member_name(m))
            .collect();
        if !waiting.is_empty() {
            if !report {
                return;
            }
            let line = format!(
                "array {} failed; re-assembled once {} answer again (in sync when it failed)",
                arr.name,
                waiting.join(", ")
            );
            self.log(5, line);
            return;
        }
        let mut reads = Vec::new();
        for (addr, loc) in distinct_members(arr) {
            if self.reachable(loc) {
                let t = self.rejoin.next_probe_token();
                reads.push((addr, loc, t, None));
            }
        }
        let name = arr.name.clone();
        self.vols[v].arrays[a].regather_wanted = false;
        self.log(
            5,
            format!(
                "array {name}: the members it failed with answer again; reading {} superblocks \
                 to re-assemble it",
                reads.len()
            ),
        );
        let ios: Vec<(u64, Location)> = reads.iter().map(|r| (r.2, r.1)).collect();
        self.regathers.push(Regather { v, a, reads });
        for (t, loc) in ios {
            self.route(v, t, loc, superblock_read());
        }
    }

    /// A superblock read of a re-assembly finished; with the last one, the array
    /// is assembled from what they say.
    pub(super) fn regather_read(&mut self, token: u64, r: MemberResult) {
        let Some(g) = self
            .regathers
            .iter()
            .position(|g| g.reads.iter().any(|x| x.2 == token))
        else {
            return;
        };
        let read = self.regathers[g]
            .reads
            .iter_mut()
            .find(|x| x.2 == token)
            .expect("found");
        read.3 = Some(r);
        if self.regathers[g].reads.iter().all(|x| x.3.is_some()) {
            let done = self.regathers.remove(g);
            self.regather_done(done);
        }
    }

    fn regather_done(&mut self, g: Regather) {
        let (v, a) = (g.v, g.a);
        let old = &self.vols[v].concat.arrays()[a];
        let (st, tunables) = (old.status(), old.tunables());
        let name = self.vols[v].arrays[a].name.clone();
        if st.state != ArrayState::Failed || self.array_io_out(v, a) {
            // Old I/O went out meanwhile (none should): try again.
            self.vols[v].arrays[a].regather_wanted = st.state == ArrayState::Failed;
            return;
        }
        let inputs: Vec<AssemblyInput> = g
            .reads
            .iter()
            .map(|(addr, loc, _, r)| AssemblyInput {
                name: addr.to_string(),
                superblock: r.clone().unwrap_or(Err(MemberError::Gone)),
                size_sectors: self.members.sectors(*loc, self.pool.as_ref()),
            })
            .collect();
        let refuse = |core: &mut Core, why: String| {
            core.log(
                4,
                format!("array {name} failed and stays failed: {why} (left to the operator)"),
            );
        };
        let plan = match assemble(&inputs, Some(st.array_uuid), false) {
            Ok(p) => p,
            Err(e) => return refuse(self, format!("its members do not assemble: {e}")),
        };
        // Every member it failed with must be in the plan, in its slot: the newest
        // superblock is then the array's last one, and nothing stale is taken.
        let arr = &self.vols[v].arrays[a];
        let missing: Vec<String> = arr
            .failed_with
            .iter()
            .flatten()
            .filter_map(|&m| arr.member(m).map(|x| &x.0))
            .filter(|addr| {
                !plan
                    .members
                    .iter()
                    .any(|pm| pm.role.is_some() && &g.reads[pm.input].0 == *addr)
            })
            .map(|addr| addr.to_string())
            .collect();
        if !missing.is_empty() {
            let why = format!(
                "{} no longer in its slot (refused: {})",
                missing.join(", "),
                plan.refused
                    .iter()
                    .map(|r| format!("{}: {}", r.name, r.reason))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
            return refuse(self, why);
        }
        let mut engine = match Engine::assemble(&plan) {
            Ok(e) => e,
            Err(e) => return refuse(self, e.to_string()),
        };
        engine.set_sync_rates(st.sync_min_kib_s, st.sync_max_kib_s);
        engine.set_tunables(tunables);
        let members: Vec<(MemberAddr, Location)> = plan
            .members
            .iter()
            .map(|pm| (g.reads[pm.input].0.clone(), g.reads[pm.input].1))
            .collect();
        for (addr, _) in &members {
            self.rejoin.forget(addr);
        }
        let group = self.vols[v].arrays[a].spare_group.clone();
        self.vols[v].arrays[a] = Array::new(name.clone(), members, group);
        let n = plan.members.len();
        let _ = self.vols[v].concat.replace_array(a, engine);
        self.log(
            5,
            format!(
                "array {name}: re-assembled from {n} members after they answered again \
                 (events {}); resyncing what was in flight when it failed",
                plan.reference.events
            ),
        );
        self.notice(Notice::Event(Event::new(EventKind::NewArray, name).detail(
            format!("re-assembled from {n} members after they answered again"),
        )));
        self.notice(Notice::StatusChanged);
        self.dirty = true;
    }
}

/// Each member device of `arr` once (an address re-added appears twice: its
/// newest entry).
fn distinct_members(arr: &Array) -> Vec<(MemberAddr, Location)> {
    let mut out: Vec<(MemberAddr, Location)> = Vec::new();
    for (_, addr, loc) in arr.known() {
        match out.iter_mut().find(|m| &m.0 == addr) {
            Some(m) => m.1 = loc,
            None => out.push((addr.clone(), loc)),
        }
    }
    out
}
