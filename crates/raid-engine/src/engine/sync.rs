//! Background synchronisation: resync after an unclean shutdown, rebuild (full or
//! bitmap-only) of one member, scrub check/repair. Runs unit by unit through the same
//! unit queues as foreground I/O, paced by `Pacer`.

use std::collections::{BTreeSet, VecDeque};

use super::job::*;
use super::status::SyncKind;
use super::{Engine, JobId};
use crate::gf;
use crate::layout::Level;
use crate::meta::MetaKey;
use crate::pacing::Pacer;
use crate::types::*;

/// The unit a sync step works on (`step_sync` is only called for sync jobs).
fn sync_unit(work: &mut Work) -> &mut SyncUnit {
    match work {
        Work::Sync(su) => su,
        _ => unreachable!("a sync step on another job"),
    }
}

/// One sync run, from start to finish or abort.
#[derive(Debug)]
pub(crate) struct SyncRun {
    pub(crate) kind: SyncOp,
    /// Next unit to start.
    pub(crate) next: u64,
    /// Units started and not finished.
    pub(crate) inflight: BTreeSet<u64>,
    pub(crate) done_units: u64,
    pub(crate) started_ns: u64,
    pub(crate) bytes: u64,
    pub(crate) pct_reported: u8,
    pub(crate) mismatches: u64,
    /// Stop starting units; finish when those in flight are done.
    pub(crate) aborted: bool,
    pub(crate) persisted_pct: u64,
    pub(crate) start_unit: u64,
}

impl SyncRun {
    /// Every unit below this is done.
    pub(crate) fn checkpoint(&self) -> u64 {
        self.inflight.first().copied().unwrap_or(self.next)
    }
}

/// Background sync: the run, what waits to run, and its pacing.
#[derive(Debug, Default)]
pub(crate) struct SyncState {
    pub(crate) run: Option<SyncRun>,
    /// Runs to start, in order, once none is running.
    pub(crate) pending: VecDeque<SyncOp>,
    /// Copies or parity may disagree (unclean shutdown, creation): a resync must pass.
    pub(crate) resync_needed: bool,
    /// After an aborted rebuild, nothing starts before this.
    pub(crate) retry_at: Option<u64>,
    pub(crate) pacer: Pacer,
    /// When the last foreground request started: sync runs at its minimum rate
    /// while foreground I/O is recent.
    pub(crate) last_foreground_ns: u64,
}

impl SyncState {
    /// Nothing running and nothing waiting to run.
    pub(crate) fn idle(&self) -> bool {
        self.run.is_none() && self.pending.is_empty()
    }

    /// Is unit `u` of member `m` being rebuilt right now?
    pub(crate) fn recovering(&self, m: MemberIndex, u: u64) -> bool {
        matches!(&self.run, Some(s) if matches!(s.kind, SyncOp::Recover { member, .. } if member == m) && s.inflight.contains(&u))
    }

    /// Does foreground I/O hold sync to its minimum rate?
    pub(crate) fn foreground_busy(&self, now: u64, idle_ns: u64, requests_waiting: bool) -> bool {
        requests_waiting
            || now.saturating_sub(self.last_foreground_ns) < idle_ns && self.last_foreground_ns > 0
    }
}

impl Engine {
    fn sync_wanted(&self, kind: SyncOp) -> bool {
        match kind {
            SyncOp::Resync => self.sync.resync_needed,
            SyncOp::Recover { member, .. } => self
                .members
                .get(member)
                .is_some_and(|m| m.state == MemberState::Rebuilding && m.recovery.is_some()),
            SyncOp::Check | SyncOp::Repair => !self.is_degraded(),
            SyncOp::Seal => self.seal_wanted(),
        }
    }

    fn start_sync(&mut self, kind: SyncOp) {
        debug_assert!(
            self.sync.run.is_none(),
            "sync {kind:?} started over a running one"
        );
        debug_assert!(self.sync_wanted(kind), "sync {kind:?} started without need");
        let next = match kind {
            SyncOp::Recover { member, .. } => self.members[member]
                .recovery
                .as_ref()
                .map_or(0, |r| r.checkpoint),
            _ => 0,
        };
        let units = self.geo.units();
        self.sync.run = Some(SyncRun {
            kind,
            next,
            inflight: Default::default(),
            done_units: 0,
            started_ns: self.now,
            bytes: 0,
            pct_reported: (next * 100 / units.max(1)) as u8 / 20 * 20,
            mismatches: 0,
            aborted: false,
            persisted_pct: 0,
            start_unit: next,
        });
        self.io.events.push_back(match kind {
            SyncOp::Resync => Event::ResyncStarted,
            SyncOp::Recover {
                member,
                bitmap_only,
            } => Event::RebuildStarted {
                member,
                bitmap_only,
            },
            SyncOp::Check => Event::ScrubStarted { repair: false },
            SyncOp::Repair => Event::ScrubStarted { repair: true },
            SyncOp::Seal => Event::SealStarted,
        });
    }

    /// Does unit `u` need work in this run?
    fn sync_needs(&self, kind: SyncOp, u: u64) -> bool {
        match kind {
            SyncOp::Resync => self.meta.bitmap.unit_dirty(u),
            SyncOp::Recover {
                member,
                bitmap_only,
            } => {
                (!bitmap_only || self.meta.bitmap.unit_dirty(u)) && self.row_of(u, member).is_some()
            }
            SyncOp::Check | SyncOp::Repair => true,
            SyncOp::Seal => !self.seal_targets(u).is_empty(),
        }
    }

    pub(crate) fn sync_pump(&mut self) {
        if self.failed {
            return;
        }
        if self.sync.run.is_none() {
            if let Some(at) = self.sync.retry_at {
                if self.now < at {
                    return;
                }
                self.sync.retry_at = None;
            }
            // A rejoining member's stale log entries are zeroed before it is rebuilt.
            if let Some(SyncOp::Recover { member, .. }) = self.sync.pending.front() {
                if !self.ppl_forgotten(*member) {
                    return;
                }
            }
            while let Some(kind) = self.sync.pending.pop_front() {
                if self.sync_wanted(kind) {
                    self.start_sync(kind);
                    break;
                }
            }
        }
        self.seal_gives_way();
        let units = self.geo.units();
        let unit_bytes = self.geo.chunk_u64() * SECTOR as u64;
        let busy = self
            .sync
            .foreground_busy(self.now, self.tun.idle_ns, self.has_requests());
        loop {
            let Some(run) = self.sync.run.as_ref() else {
                return;
            };
            if run.aborted {
                break;
            }
            let kind = run.kind;
            let mut next = run.next;
            // Skip what needs no work, a bitmap region at a time.
            let r = self.meta.bitmap.region_units();
            while next < units && !self.sync_needs(kind, next) {
                let region_skip = matches!(
                    kind,
                    SyncOp::Resync
                        | SyncOp::Recover {
                            bitmap_only: true,
                            ..
                        }
                ) && !self.meta.bitmap.unit_dirty(next);
                next = if region_skip {
                    (next / r + 1) * r
                } else {
                    next + 1
                }
                .min(units);
            }
            self.sync.run.as_mut().unwrap().next = next;
            // Skipped units need no copy: a rebuild's checkpoint passes them too (one
            // with nothing to copy ends at the end, having done no unit).
            if let SyncOp::Recover { member, .. } = kind {
                let ck = self.sync.run.as_ref().unwrap().checkpoint();
                if let Some(r) = self.members[member].recovery.as_mut() {
                    r.checkpoint = r.checkpoint.max(ck);
                }
            }
            let run = self.sync.run.as_mut().unwrap();
            if run.next >= units
                || run.inflight.len() >= self.tun.sync_window
                || !self.sync.pacer.allow(self.now, busy)
            {
                break;
            }
            let u = run.next;
            run.next += 1;
            run.inflight.insert(u);
            let kind = run.kind;
            self.sync.pacer.consume(unit_bytes);
            self.add_job(Job::new(
                u,
                true,
                Work::Sync(SyncUnit {
                    kind,
                    phase: SyncPhase::Read,
                    abort: false,
                    mismatches: 0,
                }),
            ));
        }
        self.maybe_finish_sync();
    }

    /// A seal stops for a resync or rebuild that wants to run (redundancy first) and
    /// is queued again behind it: what it sealed stays sealed.
    fn seal_gives_way(&mut self) {
        let urgent = self
            .sync
            .pending
            .iter()
            .any(|k| matches!(k, SyncOp::Resync | SyncOp::Recover { .. }));
        if let Some(run) = self.sync.run.as_mut() {
            if urgent && run.kind == SyncOp::Seal && !run.aborted {
                run.aborted = true;
                self.sync.pending.push_back(SyncOp::Seal);
            }
        }
    }

    fn maybe_finish_sync(&mut self) {
        let Some(run) = self.sync.run.as_ref() else {
            return;
        };
        let units = self.geo.units();
        if !(run.inflight.is_empty() && (run.next >= units || run.aborted)) {
            return;
        }
        let run = self.sync.run.take().unwrap();
        debug_assert!(
            run.aborted || run.next >= units,
            "sync {:?} finished at unit {} of {units}",
            run.kind,
            run.next
        );
        match run.kind {
            SyncOp::Resync => {
                self.sync.resync_needed = false;
                if self.meta.initial_sync {
                    self.meta.initial_sync = false;
                    self.meta.writer.touch(MetaKey::Superblock);
                }
                self.io.events.push_back(Event::ResyncFinished);
            }
            SyncOp::Recover { member, .. } if run.aborted => {
                self.io.events.push_back(Event::RebuildAborted { member });
                if self.members[member].state == MemberState::Rebuilding {
                    // A source range was unreadable: keep the checkpoint, retry later.
                    if let Some(r) = self.members[member].recovery.as_mut() {
                        r.checkpoint = run.checkpoint();
                    }
                    self.meta.writer.touch(MetaKey::Superblock);
                    self.sync.pending.push_back(run.kind);
                    self.sync.retry_at = Some(self.now + self.tun.rebuild_retry_ns);
                }
            }
            SyncOp::Recover { member, .. } => {
                debug_assert_eq!(
                    self.members[member].recovery.as_ref().map(|r| r.checkpoint),
                    Some(units),
                    "member {member} rebuilt without its checkpoint at the end"
                );
                self.members[member].recovery = None;
                self.set_state(member, MemberState::Active);
                self.io.events.push_back(Event::RebuildFinished { member });
                self.meta.writer.touch(MetaKey::Superblock);
                self.update_degraded();
            }
            // Stopped for a resync or rebuild: it runs again after them.
            SyncOp::Seal if run.aborted => {}
            SyncOp::Seal => self.io.events.push_back(Event::SealFinished),
            SyncOp::Check | SyncOp::Repair => {
                let repair = run.kind == SyncOp::Repair;
                self.counters.last_scrub_mismatch_sectors = run.mismatches;
                self.io.events.push_back(Event::ScrubFinished {
                    repair,
                    mismatch_sectors: run.mismatches,
                });
            }
        }
    }

    pub(crate) fn sync_unit_done(&mut self, unit: u64, abort: bool, mismatches: u64) {
        let units = self.geo.units();
        let Some(run) = self.sync.run.as_mut() else {
            return;
        };
        let was_running = run.inflight.remove(&unit);
        debug_assert!(
            was_running,
            "sync unit {unit} finished but was not in flight"
        );
        if !was_running {
            return;
        }
        run.done_units += 1;
        run.bytes += self.geo.chunk_u64() * SECTOR as u64;
        run.mismatches += mismatches;
        self.counters.mismatch_sectors += mismatches;
        if abort {
            run.aborted = true;
        }
        let ckpt = run.checkpoint();
        let kind = run.kind;
        let pct = (ckpt * 100 / units.max(1)) as u8;
        let mut report = None;
        if pct / 20 > run.pct_reported / 20 && pct < 100 {
            run.pct_reported = pct / 20 * 20;
            report = Some(run.pct_reported);
        }
        let persist = pct as u64 > run.persisted_pct;
        if persist {
            run.persisted_pct = pct as u64;
        }
        if let SyncOp::Recover { member, .. } = kind {
            if !abort {
                if let Some(r) = self.members[member].recovery.as_mut() {
                    r.checkpoint = ckpt;
                }
            }
            if let Some(p) = report {
                self.io
                    .events
                    .push_back(Event::RebuildProgress { member, percent: p });
            }
            if persist {
                self.meta.writer.touch(MetaKey::Superblock);
            }
        }
        self.maybe_finish_sync();
    }

    /// One step of a sync unit: it reads, then writes what the reads call
    /// for, then accounts the writes. The level's step does the I/O of
    /// `phase` (and may end the unit early by setting Done).
    pub(crate) fn step_sync(&mut self, id: JobId, job: &mut Job) -> bool {
        let su = sync_unit(&mut job.work);
        let phase = su.phase;
        match phase {
            SyncPhase::Read => su.phase = SyncPhase::Write,
            SyncPhase::Write => su.phase = SyncPhase::Done,
            SyncPhase::Done => {
                let kind = su.kind.kind();
                self.sync_writes_done(kind, job);
                return true;
            }
        }
        if su.kind == SyncOp::Seal {
            return self.step_seal(id, job, phase);
        }
        match self.geo.level {
            Level::Raid5 | Level::Raid6 => self.step_sync_parity(id, job, phase),
            _ => self.step_sync_mirror(id, job, phase),
        }
    }

    fn step_sync_mirror(&mut self, id: JobId, job: &mut Job, phase: SyncPhase) -> bool {
        let (u, chunk) = (job.unit, self.geo.chunk_u64());
        let copies = self.member_copies(u);
        let su = sync_unit(&mut job.work);
        match phase {
            SyncPhase::Read => {
                let target = su.kind.target();
                if target.is_some_and(|t| !copies.iter().any(|c| c.0 == t)) {
                    su.phase = SyncPhase::Done;
                    return false;
                }
                job.slots = copies
                    .iter()
                    .enumerate()
                    .filter(|&(_, &(m, _))| Some(m) != target && self.in_sync(m, u))
                    .map(|(i, &(m, row))| Slot::read(m, row * chunk, chunk, i))
                    .collect();
                self.issue(id, job);
                false
            }
            SyncPhase::Write => {
                let good = job.slots.iter().find(|s| s.ok()).map(|s| s.data.clone());
                let (good, reseal) = match good {
                    Some(g) => (g, false),
                    None => match job.slots.iter().find(|s| s.fail() == Some(Fail::Checksum)) {
                        Some(s) if su.kind == SyncOp::Resync => (s.data.clone(), true),
                        _ => {
                            if matches!(su.kind, SyncOp::Recover { .. }) {
                                su.abort = true;
                            }
                            return false;
                        }
                    },
                };
                let mut writes: Vec<(MemberIndex, u64, Option<Fail>)> = Vec::new();
                let mut mismatches = 0u64;
                match su.kind {
                    SyncOp::Recover { member, .. } => {
                        if let Some(&(m, row)) = copies.iter().find(|c| c.0 == member) {
                            writes.push((m, row, None));
                        }
                    }
                    _ => {
                        for s in &job.slots {
                            let row = copies[s.tag].1;
                            match s.fail() {
                                Some(Fail::Gone) => {}
                                Some(f) => writes.push((s.member, row, Some(f))),
                                None => {
                                    let differs = s.data != good;
                                    if differs {
                                        mismatches += s
                                            .data
                                            .chunks(SECTOR)
                                            .zip(good.chunks(SECTOR))
                                            .filter(|(a, b)| a != b)
                                            .count()
                                            as u64;
                                    }
                                    let write = reseal || differs && su.kind != SyncOp::Check;
                                    if write {
                                        writes.push((s.member, row, None));
                                    }
                                }
                            }
                        }
                    }
                }
                if su.kind != SyncOp::Resync {
                    su.mismatches = mismatches;
                }
                job.slots = writes
                    .iter()
                    .filter(|w| self.writable(w.0))
                    .map(|&(m, row, f)| {
                        let mut s = Slot::write(m, row * chunk, good.clone(), 0);
                        s.tag = match f {
                            None => 0,
                            Some(Fail::Io) => 1,
                            Some(_) => 2,
                        };
                        s
                    })
                    .collect();
                self.issue(id, job);
                false
            }
            SyncPhase::Done => unreachable!("step_sync finishes done units"),
        }
    }

    /// Account sync writes: failures fail the member, heals are reported.
    fn sync_writes_done(&mut self, kind: SyncKind, job: &mut Job) {
        let mut healed = Vec::new();
        for s in &job.slots {
            if s.op != MemberOp::Write {
                continue;
            }
            if s.ok() {
                self.counters
                    .sync_bytes
                    .add(kind, s.sectors as u64 * SECTOR as u64);
                match s.tag {
                    1 => healed.push((s.member, s.off, s.sectors, Fail::Io)),
                    2 => healed.push((s.member, s.off, s.sectors, Fail::Checksum)),
                    _ => {}
                }
            } else {
                self.fail_member_internal(s.member);
            }
        }
        for (m, off, n, f) in healed {
            self.note_healed(m, off, n, f);
        }
    }

    fn step_sync_parity(&mut self, id: JobId, job: &mut Job, phase: SyncPhase) -> bool {
        let u = job.unit;
        let (n, np, k, chunk, colm) = self.stripe_shape(u);
        let su = sync_unit(&mut job.work);
        match phase {
            SyncPhase::Read => {
                let target = su.kind.target();
                let sources: Vec<usize> = (0..n).filter(|&c| Some(colm[c]) != target).collect();
                let missing = sources
                    .iter()
                    .filter(|&&c| !self.in_sync(colm[c], u))
                    .count();
                let data_missing = sources.iter().any(|&c| c < k && !self.in_sync(colm[c], u));
                // A rebuild needs the other columns within parity; scrub needs them
                // all (degraded: nothing to compare against); resync needs every data
                // column and recomputes the parity columns still there (a RAID 6 that
                // lost P still gets a Q that matches its data).
                let allowed = match su.kind {
                    _ if target.is_some() => np - 1,
                    SyncOp::Resync if !data_missing => np,
                    _ => 0,
                };
                if missing > allowed {
                    if target.is_some() {
                        su.abort = true;
                    }
                    su.phase = SyncPhase::Done;
                    return false;
                }
                job.slots = sources
                    .iter()
                    .filter(|&&c| self.in_sync(colm[c], u))
                    .map(|&c| Slot::read(colm[c], u * chunk, chunk, c))
                    .collect();
                self.issue(id, job);
                false
            }
            SyncPhase::Write => {
                let bytes = chunk as usize * SECTOR;
                let failed: Vec<(usize, Fail)> = job
                    .slots
                    .iter()
                    .filter_map(|s| s.fail().map(|f| (s.tag, f)))
                    .collect();
                let mut stripe: Vec<Option<Vec<u8>>> = vec![None; n];
                for s in job.slots.iter_mut().filter(|s| s.ok()) {
                    stripe[s.tag] = Some(std::mem::take(&mut s.data));
                }
                // (column, bytes, heal tag: 0 plain, 1 read error, 2 checksum)
                let mut writes: Vec<(usize, Vec<u8>, usize)> = Vec::new();
                match su.kind {
                    SyncOp::Recover { member, .. } => {
                        // Unreadable sources are erasures like the target: RAID 6
                        // rebuilds through one more.
                        if !gf::solve(&mut stripe, np) {
                            su.abort = true;
                            return false;
                        }
                        if let Some(c) = (0..n).find(|&c| colm[c] == member) {
                            writes.push((c, stripe[c].take().expect("solved"), 0));
                        }
                    }
                    SyncOp::Resync => {
                        // Torn blocks (checksum behind data) are taken as they lie and
                        // re-sealed; a data member that cannot be read at all leaves the
                        // stripe's parity unknown: fail it (md does the same).
                        for s in &job.slots {
                            match s.fail() {
                                Some(Fail::Io) | Some(Fail::Gone) if s.tag < k => {
                                    self.fail_member_internal(s.member);
                                    return false;
                                }
                                Some(Fail::Checksum) if s.tag < k => {
                                    stripe[s.tag] = Some(s.data.clone());
                                    writes.push((s.tag, s.data.clone(), 0));
                                }
                                _ => {}
                            }
                        }
                        let (p, q) = Self::syndromes_of(&stripe[..k], np, bytes);
                        for (c, d) in (k..n).zip([Some(p), q]) {
                            let d = d.expect("parity");
                            if stripe[c].as_ref() != Some(&d) {
                                writes.push((c, d, 0));
                            }
                        }
                    }
                    SyncOp::Check | SyncOp::Repair => {
                        if failed.is_empty() {
                            let (bad, fix) = Self::scrub_stripe(&stripe, k, np, bytes);
                            su.mismatches = bad;
                            if su.kind == SyncOp::Repair {
                                writes = fix;
                            }
                        } else if failed.len() <= np
                            && failed.iter().all(|&(_, f)| f != Fail::Gone)
                            && gf::solve(&mut stripe, np)
                        {
                            for &(c, f) in &failed {
                                let d = stripe[c].take().expect("solved");
                                writes.push((c, d, if f == Fail::Io { 1 } else { 2 }));
                            }
                        }
                    }
                    SyncOp::Seal => unreachable!("seal units step in seal.rs"),
                }
                job.slots = writes
                    .into_iter()
                    .filter(|w| self.writable(colm[w.0]))
                    .map(|(c, d, tag)| {
                        let mut s = Slot::write(colm[c], u * chunk, d, c);
                        s.tag = tag;
                        s
                    })
                    .collect();
                self.issue(id, job);
                false
            }
            SyncPhase::Done => unreachable!("step_sync finishes done units"),
        }
    }

    /// Holds a whole, readable stripe's parity against its data, sector by sector:
    /// the sectors that disagree, and the columns a repair rewrites (heal tag 0).
    /// RAID 5 cannot tell which column is wrong and trusts the data (P is
    /// rewritten, as md does). RAID 6 locates the one wrong column of a sector from
    /// P and Q (`gf::locate`, md's raid6check) and corrects it, a data column
    /// included; where no single column explains a sector, P and Q are rewritten
    /// from the data.
    fn scrub_stripe(
        stripe: &[Option<Vec<u8>>],
        k: usize,
        np: usize,
        bytes: usize,
    ) -> (u64, Vec<(usize, Vec<u8>, usize)>) {
        let (p, q) = Self::syndromes_of(&stripe[..k], np, bytes);
        let mut cols: Vec<Vec<u8>> = stripe
            .iter()
            .map(|c| c.clone().expect("scrub reads every column"))
            .collect();
        let mut bad = 0u64;
        for r in (0..bytes).step_by(SECTOR).map(|o| o..o + SECTOR) {
            let delta = |calc: &[u8], stored: &[u8]| -> Vec<u8> {
                calc.iter().zip(stored).map(|(a, b)| a ^ b).collect()
            };
            let pd = delta(&p[r.clone()], &cols[k][r.clone()]);
            let culprit = match &q {
                None if pd.iter().all(|&b| b == 0) => gf::Culprit::Consistent,
                None => gf::Culprit::Column(k),
                Some(q) => gf::locate(&pd, &delta(&q[r.clone()], &cols[k + 1][r.clone()]), k),
            };
            match culprit {
                gf::Culprit::Consistent => continue,
                gf::Culprit::Column(c) if c < k => {
                    for (d, x) in cols[c][r.clone()].iter_mut().zip(&pd) {
                        *d ^= x;
                    }
                }
                gf::Culprit::Column(_) | gf::Culprit::Unknown => {
                    cols[k][r.clone()].copy_from_slice(&p[r.clone()]);
                    if let Some(q) = &q {
                        cols[k + 1][r.clone()].copy_from_slice(&q[r.clone()]);
                    }
                }
            }
            bad += 1;
        }
        let writes = cols
            .into_iter()
            .enumerate()
            .filter(|(c, d)| stripe[*c].as_ref() != Some(d))
            .map(|(c, d)| (c, d, 0))
            .collect();
        (bad, writes)
    }

    /// P (and Q) of a stripe's data columns, all present.
    fn syndromes_of(
        data: &[Option<Vec<u8>>],
        np: usize,
        bytes: usize,
    ) -> (Vec<u8>, Option<Vec<u8>>) {
        let refs: Vec<&[u8]> = data
            .iter()
            .map(|d| d.as_deref().expect("data column"))
            .collect();
        gf::syndromes(&refs, np, bytes)
    }
}
