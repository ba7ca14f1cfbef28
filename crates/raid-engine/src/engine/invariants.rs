//! What holds between any two calls into the engine. `check_invariants` walks the whole
//! state and names the first broken rule; the simulators call it after every step. The
//! `debug_assert!`s at the transitions themselves (member and array state, sync start
//! and finish, write intent, metadata rounds) catch a wrong move where it is made.

use std::collections::BTreeSet;

use super::job::{SyncOp, Work};
use super::{Engine, Inflight, Issued, JobId};
use crate::fastmap::FastMap;
use crate::meta::MetaKey;
use crate::types::*;

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

impl MemberState {
    /// The moves a member may make. Anything else is a bug in the engine.
    pub(crate) fn may_become(self, to: MemberState) -> bool {
        use MemberState::*;
        matches!(
            (self, to),
            (Active, Faulty)
                | (Rebuilding, Active | Faulty)
                | (Spare, Rebuilding | Faulty | Missing)
                | (Faulty, Rebuilding | Spare | Missing)
                | (Missing, Rebuilding | Spare)
        )
    }
}

/// The in-flight member I/O counted once per check, by what it is for.
#[derive(Default)]
struct Tally {
    per_member: Vec<usize>,
    per_job: FastMap<JobId, usize>,
    per_flush: FastMap<RequestId, usize>,
    per_meta: FastMap<MetaKey, usize>,
    inits: usize,
}

impl Engine {
    fn tally(&self) -> Tally {
        let mut t = Tally {
            per_member: vec![0; self.members.len()],
            ..Tally::default()
        };
        for io in self.io.inflight.values() {
            if let Some(n) = t.per_member.get_mut(io.member) {
                *n += 1;
            }
            match io.what {
                Inflight::Job(j, _) => *t.per_job.entry(j).or_default() += 1,
                Inflight::Flush(f) => *t.per_flush.entry(f).or_default() += 1,
                Inflight::Meta(k) => *t.per_meta.entry(k).or_default() += 1,
                Inflight::Init(_) => t.inits += 1,
                Inflight::Probe(_) | Inflight::CsumLoad { .. } => {}
            }
        }
        t
    }

    /// Check every structural invariant of the engine; `Err` names the first one broken
    /// (and the array). Costs a walk over members, jobs and in-flight I/O: meant for
    /// simulators and tests after each step, not for the data path.
    pub fn check_invariants(&self) -> Result<(), String> {
        let t = self.tally();
        self.check_members(&t)
            .and_then(|()| self.check_array(&t))
            .and_then(|()| self.check_sync())
            .and_then(|()| self.check_jobs(&t))
            .and_then(|()| self.check_requests(&t))
            .and_then(|()| self.check_member_io())
            .and_then(|()| self.check_metadata(&t))
            .map_err(|e| format!("array {}: invariant broken: {e}", self.name))
    }

    /// Slots and roles agree both ways (so roles are unique), states match roles and
    /// recovery records, and each member's outstanding count is its in-flight I/O.
    fn check_members(&self, t: &Tally) -> Result<(), String> {
        let units = self.geo.units();
        ensure!(
            self.slots.len() == self.geo.members,
            "{} slots for {} raid disks",
            self.slots.len(),
            self.geo.members
        );
        for (s, slot) in self.slots.iter().enumerate() {
            let Some(m) = *slot else {
                return Err(format!("slot {s} has no member"));
            };
            ensure!(
                m < self.members.len(),
                "slot {s} names member {m} of {}",
                self.members.len()
            );
            ensure!(
                self.members[m].role == Some(s),
                "slot {s} holds member {m} whose role is {:?}",
                self.members[m].role
            );
        }
        for (i, m) in self.members.iter().enumerate() {
            if let Some(r) = m.role {
                ensure!(
                    self.slots.get(r) == Some(&Some(i)),
                    "member {i} has role {r} but slot {r} holds {:?}",
                    self.slots.get(r)
                );
            }
            match m.state {
                MemberState::Spare => ensure!(m.role.is_none(), "spare {i} has role {:?}", m.role),
                MemberState::Active | MemberState::Rebuilding => {
                    ensure!(
                        m.role.is_some(),
                        "member {i} is {:?} without a role",
                        m.state
                    )
                }
                MemberState::Faulty | MemberState::Missing => {}
            }
            ensure!(
                (m.state == MemberState::Rebuilding) == m.recovery.is_some(),
                "member {i} is {:?} with recovery {:?}",
                m.state,
                m.recovery
            );
            if let Some(r) = &m.recovery {
                ensure!(
                    r.checkpoint <= units,
                    "member {i} recovery checkpoint {} beyond {units} units",
                    r.checkpoint
                );
            }
            let issued = t.per_member[i];
            ensure!(
                m.outstanding as usize == issued,
                "member {i} counts {} outstanding, {issued} in flight",
                m.outstanding
            );
        }
        ensure!(
            self.csums.len() == self.members.len(),
            "{} checksum tables for {} members",
            self.csums.len(),
            self.members.len()
        );
        Ok(())
    }

    /// Redundancy: a live array has lost no more members than its layout tolerates; a
    /// failed one keeps nothing waiting. Clean on disk only with no write in flight and
    /// nothing to resync.
    fn check_array(&self, t: &Tally) -> Result<(), String> {
        if self.failed {
            ensure!(
                self.reqs.is_empty() && self.queues.jobs.is_empty() && self.held.is_empty(),
                "failed array still holds {} requests, {} jobs, {} held",
                self.reqs.len(),
                self.queues.jobs.len(),
                self.held.len()
            );
            ensure!(
                self.sync.run.is_none() && self.sync.pending.is_empty(),
                "failed array still syncs"
            );
        } else {
            ensure!(
                !self.data_lost(),
                "{:?} has lost more members than it tolerates but is not marked failed",
                self.geo.level
            );
            ensure!(
                self.held.is_empty() || !self.accepting(),
                "{} requests held although the initial load and the log replay are done",
                self.held.len()
            );
        }
        if self.meta.clean_on_disk {
            ensure!(
                self.meta.bitmap.writes() == 0 && !self.sync.resync_needed,
                "clean on disk with {} writes in flight, resync needed {}",
                self.meta.bitmap.writes(),
                self.sync.resync_needed
            );
        }
        let inits = t.inits;
        ensure!(
            self.meta.init_pending == inits,
            "init_pending {} with {inits} initial I/Os in flight",
            self.meta.init_pending
        );
        Ok(())
    }

    /// The running sync: cursor within the array, its in-flight units exactly its jobs,
    /// and its reason still true unless it is winding down after an abort.
    fn check_sync(&self) -> Result<(), String> {
        let units = self.geo.units();
        let sync_jobs: BTreeSet<u64> = self
            .queues
            .jobs
            .values()
            .filter_map(|j| match &j.work {
                Work::Sync(su) => Some((j.unit, su.kind)),
                _ => None,
            })
            .map(|(u, kind)| match &self.sync.run {
                Some(run) if run.kind == kind => Ok(u),
                _ => Err(format!(
                    "sync job for unit {u} of {kind:?}, run {:?}",
                    self.sync.run.as_ref().map(|r| r.kind)
                )),
            })
            .collect::<Result<_, _>>()?;
        let Some(run) = &self.sync.run else {
            return Ok(());
        };
        ensure!(
            run.next <= units,
            "sync cursor {} beyond {units} units",
            run.next
        );
        ensure!(
            run.inflight.last().is_none_or(|&u| u < run.next),
            "sync unit {:?} in flight at or past the cursor {}",
            run.inflight.last(),
            run.next
        );
        ensure!(
            run.inflight == sync_jobs,
            "sync counts units {:?} in flight, jobs exist for {:?}",
            run.inflight,
            sync_jobs
        );
        ensure!(
            run.start_unit <= run.checkpoint(),
            "sync checkpoint {} before its start {}",
            run.checkpoint(),
            run.start_unit
        );
        match run.kind {
            SyncOp::Resync => ensure!(self.sync.resync_needed, "resync running, none needed"),
            SyncOp::Recover { member, .. } if !run.aborted => {
                let m = &self.members[member];
                ensure!(
                    m.state == MemberState::Rebuilding,
                    "rebuild of member {member} which is {:?}",
                    m.state
                );
                let ck = m.recovery.as_ref().map_or(0, |r| r.checkpoint);
                ensure!(
                    ck <= run.checkpoint(),
                    "member {member} recorded as rebuilt to unit {ck}, the rebuild is at {}",
                    run.checkpoint()
                );
            }
            SyncOp::Check | SyncOp::Repair if !run.aborted => {
                ensure!(!self.is_degraded(), "scrub running on a degraded array")
            }
            _ => {}
        }
        Ok(())
    }

    /// Unit queues hold every job once, under its unit; started jobs are a runnable
    /// prefix (readers together, a writer alone); stripes gather until started; a job
    /// waiting for metadata is on the waiters list; write intent is counted per region
    /// on a dirty bit; every job's pending count is its member I/O in flight.
    fn check_jobs(&self, t: &Tally) -> Result<(), String> {
        let mut queued = 0;
        for (&u, q) in &self.queues.units {
            ensure!(!q.is_empty(), "empty queue left for unit {u}");
            for (i, id) in q.iter().enumerate() {
                let Some(j) = self.queues.jobs.get(id) else {
                    return Err(format!("unit {u} queues job {id} which does not exist"));
                };
                ensure!(
                    j.unit == u,
                    "job {id} of unit {} queued under unit {u}",
                    j.unit
                );
                if j.started && i > 0 {
                    let solo =
                        j.exclusive || q.iter().take(i).any(|p| self.queues.jobs[p].exclusive);
                    ensure!(
                        !solo,
                        "job {id} started at position {i} of unit {u} beside a writer"
                    );
                }
                queued += 1;
            }
        }
        ensure!(
            queued == self.queues.jobs.len(),
            "{} jobs, {queued} queued",
            self.queues.jobs.len()
        );
        let waiting_stripes: BTreeSet<JobId> = self
            .queues
            .jobs
            .iter()
            .filter(|(_, j)| matches!(j.work, Work::Stripe(_)) && !j.started)
            .map(|(id, _)| *id)
            .collect();
        ensure!(
            waiting_stripes == self.queues.gathering,
            "gathering {:?} but unstarted stripes {:?}",
            self.queues.gathering,
            waiting_stripes
        );
        let mut region_writes = FastMap::<u64, u32>::default();
        for (&id, j) in &self.queues.jobs {
            if let Work::Stripe(sw) = &j.work {
                ensure!(
                    j.started == (sw.phase != super::job::StripePhase::Gather),
                    "stripe job {id} started {} in phase {:?}",
                    j.started,
                    sw.phase
                );
            }
            ensure!(
                j.wait.is_empty() || self.queues.meta_waiters.contains(&id),
                "job {id} waits for {:?} but is not on the waiters list",
                j.wait
            );
            if let Some(r) = j.region {
                ensure!(
                    r == self.meta.bitmap.region_of(j.unit),
                    "job {id} of unit {} holds region {r}",
                    j.unit
                );
                *region_writes.entry(r).or_default() += 1;
            }
            let mine = t.per_job.get(&id).copied().unwrap_or(0);
            ensure!(
                j.pending == mine,
                "job {id} pending {} with {mine} member I/Os in flight",
                j.pending
            );
        }
        for io in self.io.inflight.values() {
            if let Inflight::Job(id, slot) = io.what {
                self.check_job_io(id, slot, io)?;
            }
        }
        let holders: u32 = region_writes.values().sum();
        ensure!(
            self.meta.bitmap.writes() == holders as u64,
            "bitmap counts {} writes in flight, {holders} jobs hold write intent",
            self.meta.bitmap.writes()
        );
        for (&r, &n) in &region_writes {
            ensure!(
                self.meta.bitmap.writes_in(r) == n,
                "bitmap counts {} writes in region {r}, {n} jobs hold it",
                self.meta.bitmap.writes_in(r)
            );
            ensure!(
                self.meta.bitmap.is_dirty(r),
                "{n} writes in flight to region {r} whose bit is clear"
            );
        }
        Ok(())
    }

    fn check_job_io(&self, id: JobId, slot: usize, io: &Issued) -> Result<(), String> {
        let Some(j) = self.queues.jobs.get(&id) else {
            return Err(format!(
                "member I/O in flight for job {id} which does not exist"
            ));
        };
        let Some(s) = j.slots.get(slot) else {
            return Err(format!(
                "I/O in flight for job {id} slot {slot} of {}",
                j.slots.len()
            ));
        };
        ensure!(
            s.issued && s.res.is_none() && s.member == io.member && s.op == io.op,
            "job {id} slot {slot} ({:?} member {} issued {} result {:?}) vs in-flight {:?} member {}",
            s.op,
            s.member,
            s.issued,
            s.res,
            io.op,
            io.member
        );
        Ok(())
    }

    /// Each read/write request waits for exactly the pieces still held by jobs; a flush
    /// waits for exactly its member flushes in flight.
    fn check_requests(&self, t: &Tally) -> Result<(), String> {
        let mut pieces = FastMap::<RequestId, usize>::default();
        for j in self.queues.jobs.values() {
            let reqs: Vec<RequestId> = match &j.work {
                Work::MirrorRead(r) => vec![r.piece.req],
                Work::MirrorWrite(w) => vec![w.piece.req],
                Work::ParityRead(r) => vec![r.piece.req],
                Work::Stripe(sw) => sw.pieces.iter().map(|p| p.req).collect(),
                Work::Sync(_) | Work::Replay(_) => Vec::new(),
            };
            for r in reqs {
                ensure!(
                    self.reqs.contains_key(&r),
                    "job holds a piece of finished request {r}"
                );
                *pieces.entry(r).or_default() += 1;
            }
        }
        for (&id, r) in &self.reqs {
            if r.op == VolumeOp::Flush {
                let acks = t.per_flush.get(&id).copied().unwrap_or(0);
                ensure!(
                    r.flush_acks == acks,
                    "flush {id} waits for {} acks, {acks} member flushes in flight",
                    r.flush_acks
                );
                ensure!(
                    r.remaining <= 1 && (r.remaining == 1 || acks == 0),
                    "flush {id} remaining {} with {acks} member flushes",
                    r.remaining
                );
            } else {
                let n = pieces.get(&id).copied().unwrap_or(0);
                ensure!(
                    r.remaining == n && n > 0,
                    "request {id} waits for {} pieces, jobs hold {n}",
                    r.remaining
                );
            }
        }
        Ok(())
    }

    /// No two writes in flight to overlapping sectors of one member: their order on the
    /// member would be up to the transport.
    fn check_member_io(&self) -> Result<(), String> {
        let mut writes: Vec<(MemberIndex, u64, u64, &Inflight)> = Vec::new();
        for io in self.io.inflight.values() {
            ensure!(
                io.member < self.members.len(),
                "I/O to member {} of {}",
                io.member,
                self.members.len()
            );
            if let Inflight::Probe(m) = io.what {
                ensure!(
                    m == io.member,
                    "probe of member {m} sent to member {}",
                    io.member
                );
            }
            if io.op == MemberOp::Write {
                writes.push((
                    io.member,
                    io.offset,
                    io.offset + io.sectors as u64,
                    &io.what,
                ));
            }
        }
        writes.sort_by_key(|w| (w.0, w.1));
        for w in writes.windows(2) {
            let (a, b) = (&w[0], &w[1]);
            ensure!(
                a.0 != b.0 || a.2 <= b.1,
                "overlapping writes in flight to member {}: [{}, {}) for {:?} and [{}, {}) for {:?}",
                a.0,
                a.1,
                a.2,
                a.3,
                b.1,
                b.2,
                b.3
            );
        }
        Ok(())
    }

    /// The metadata writer's own bookkeeping, and each round's acks due are its member
    /// writes in flight.
    fn check_metadata(&self, t: &Tally) -> Result<(), String> {
        self.meta.writer.check()?;
        let issued = &t.per_meta;
        let mut rounds = 0;
        for (k, left) in self.meta.writer.rounds() {
            rounds += 1;
            let n = issued.get(&k).copied().unwrap_or(0);
            ensure!(
                n == left,
                "{k:?} round waits for {left} acks, {n} writes in flight"
            );
        }
        ensure!(
            rounds == issued.len(),
            "metadata writes in flight for keys without a round: {:?}",
            issued.keys().collect::<Vec<_>>()
        );
        Ok(())
    }

    /// The member in slot `s` is active.
    pub(crate) fn slot_active(&self, s: usize) -> bool {
        self.slots[s].is_some_and(|m| self.members[m].state == MemberState::Active)
    }
}
