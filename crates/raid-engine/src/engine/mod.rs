//! The engine: one array as a sans-IO state machine.
//!
//! Inputs: `submit`, `complete_member_io`, `tick(now)`, control calls. Outputs:
//! `poll_member_io`, `poll_completion`, `poll_event`, `status`. Nothing here blocks,
//! reads a clock or touches a device.
//!
//! Ordering: a volume request is cut into per-unit pieces; each unit has a FIFO of jobs.
//! Readers at the head run together, a writer runs alone, so overlapping requests apply
//! in submission order and a read never sees half of a write.

mod control;
mod invariants;
mod io;
pub(crate) mod job;
mod metadata;
mod mirror;
mod outbox;
mod parity;
mod ppl;
mod queue;
mod rejoin;
mod seal;
mod status;
mod sync;

use std::collections::{BTreeSet, VecDeque};

use crate::fastmap::FastMap as HashMap;

use crate::bitmap::Bitmap;
use crate::config::{Format, MetaLayout};
use crate::layout::Geometry;
use crate::stripe_cache::StripeBuffer;
use crate::types::*;
use job::{Job, Piece, SyncOp, Work};
use metadata::MetaState;
use outbox::{Inflight, Issued, Outbox};
use ppl::PplState;
use queue::JobQueues;
use rejoin::CsumLoads;
use sync::SyncState;

pub use status::{Counters, MemberStatus, Status, SyncBytes, SyncKind, SyncProgress};

pub(crate) type JobId = u64;

/// Tunables settable at run time.
#[derive(Clone, Copy, Debug)]
pub struct Tunables {
    /// Gather RAID 5 partial-stripe writes that look sequential for this long.
    pub gather_ns: u64,
    /// Most stripes held back for gathering at once (the bounded stripe cache).
    pub gather_max_stripes: usize,
    /// A bitmap bit is cleared after its region saw no write for this long.
    pub bitmap_clear_ns: u64,
    /// Foreground I/O within this window throttles sync to its minimum rate.
    pub idle_ns: u64,
    /// Units a sync keeps in flight.
    pub sync_window: usize,
    /// After an aborted rebuild, retry after this long.
    pub rebuild_retry_ns: u64,
}

impl Default for Tunables {
    fn default() -> Self {
        Tunables {
            gather_ns: 2_000_000,
            gather_max_stripes: 64,
            bitmap_clear_ns: 5_000_000_000,
            idle_ns: 100_000_000,
            sync_window: 8,
            rebuild_retry_ns: 10_000_000_000,
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Recovery {
    pub checkpoint: u64,
    pub bitmap_only: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct Member {
    pub uuid: [u8; 16],
    pub state: MemberState,
    pub role: Option<usize>,
    pub outstanding: u32,
    pub recovery: Option<Recovery>,
}

#[derive(Debug)]
pub(crate) struct Req {
    pub op: VolumeOp,
    pub buf: Vec<u8>,
    pub remaining: usize,
    pub error: Option<VolumeError>,
    /// Flush: requests it waits for / member flushes outstanding.
    pub waits_for: BTreeSet<RequestId>,
    pub flush_acks: usize,
}

impl Req {
    /// The bytes of `piece` in this request's buffer.
    fn piece_data(&self, piece: &Piece) -> &[u8] {
        &self.buf[piece.buf_off..piece.buf_off + piece.sectors as usize * SECTOR]
    }
}

pub struct Engine {
    pub(crate) name: String,
    pub(crate) array_uuid: [u8; 16],
    pub(crate) geo: Geometry,
    pub(crate) ml: MetaLayout,
    pub(crate) integrity: bool,
    /// Members by index; `slots[s]` is the member in raid slot s (control.rs changes
    /// them).
    pub(crate) members: Vec<Member>,
    pub(crate) slots: Vec<Option<MemberIndex>>,
    /// Too many members lost: nothing is served any more.
    pub(crate) failed: bool,
    /// Degraded reported since last full redundancy.
    pub(crate) degraded_reported: bool,
    pub(crate) csums: Vec<Vec<u32>>,
    pub(crate) tun: Tunables,
    pub(crate) counters: Counters,
    pub(crate) now: u64,
    /// Superblock, bitmap and checksum-area state (metadata.rs).
    pub(crate) meta: MetaState,
    /// Resync, rebuild and scrub (sync.rs).
    pub(crate) sync: SyncState,
    /// Member I/O in flight and everything waiting to be polled (outbox.rs).
    pub(crate) io: Outbox,
    reqs: HashMap<RequestId, Req>,
    /// Requests submitted before the initial load finished.
    held: VecDeque<VolumeRequest>,
    /// Per-unit job FIFOs (queue.rs).
    pub(crate) queues: JobQueues,
    /// Checksum tables being read back from returning members (rejoin.rs).
    pub(crate) rejoin: CsumLoads,
    /// Partial-parity log slots and the replay at start (ppl.rs).
    pub(crate) ppl: PplState,
}

impl Engine {
    pub(crate) fn blank(name: String, array_uuid: [u8; 16], integrity: bool, f: Format) -> Engine {
        let Format {
            geo,
            ml,
            region_units,
        } = f;
        Engine {
            name,
            array_uuid,
            geo,
            ml,
            integrity,
            members: Vec::new(),
            slots: vec![None; geo.members],
            failed: false,
            degraded_reported: false,
            csums: Vec::new(),
            tun: Tunables::default(),
            counters: Counters::default(),
            now: 0,
            meta: MetaState::new(Bitmap::new(geo.units(), region_units)),
            sync: SyncState::default(),
            io: Outbox::default(),
            reqs: HashMap::default(),
            held: VecDeque::new(),
            queues: JobQueues::default(),
            rejoin: CsumLoads::default(),
            ppl: PplState::default(),
        }
    }

    pub fn geometry(&self) -> &Geometry {
        &self.geo
    }
    pub fn volume_sectors(&self) -> u64 {
        self.geo.volume_sectors()
    }
    pub fn tunables(&self) -> Tunables {
        self.tun
    }
    pub fn set_tunables(&mut self, t: Tunables) {
        // A shorter clearing delay (a clean stop's 0) takes effect now, not after a
        // scan the old delay spaced out.
        self.meta.next_clear_scan = self
            .meta
            .next_clear_scan
            .min(self.now + t.bitmap_clear_ns / 8);
        self.tun = t;
    }
    /// Volume requests started and not completed?
    pub(crate) fn has_requests(&self) -> bool {
        !self.reqs.is_empty()
    }

    /// Has the initial metadata load/format finished? Requests submitted before are held.
    pub fn is_ready(&self) -> bool {
        self.meta.init_pending == 0
    }

    /// Ready, and the log's replay (after an unclean start) is done: requests run.
    pub(crate) fn accepting(&self) -> bool {
        self.is_ready() && self.ppl.replaying == 0
    }

    // ---- volume side ----

    pub fn submit(&mut self, req: VolumeRequest) {
        let bad = match req.op {
            VolumeOp::Flush => false,
            _ => {
                req.sectors == 0
                    || req
                        .offset
                        .checked_add(req.sectors as u64)
                        .is_none_or(|e| e > self.geo.volume_sectors())
                    || (req.op == VolumeOp::Write
                        && req.data.len() != req.sectors as usize * SECTOR)
            }
        };
        if bad {
            self.io.done.push_back(VolumeCompletion {
                id: req.id,
                result: Err(VolumeError::InvalidRequest),
            });
            return;
        }
        if self.failed {
            self.io.done.push_back(VolumeCompletion {
                id: req.id,
                result: Err(VolumeError::ArrayFailed),
            });
            return;
        }
        if !self.accepting() {
            self.held.push_back(req);
            return;
        }
        self.start_request(req.id, req.op, req.offset, req.sectors, req.data);
        self.pump();
    }

    fn start_request(
        &mut self,
        id: RequestId,
        op: VolumeOp,
        offset: u64,
        sectors: u32,
        data: Vec<u8>,
    ) {
        self.sync.last_foreground_ns = self.now;
        match op {
            VolumeOp::Flush => {
                let waits_for: BTreeSet<RequestId> = self
                    .reqs
                    .iter()
                    .filter(|(_, r)| r.op != VolumeOp::Flush)
                    .map(|(k, _)| *k)
                    .collect();
                self.reqs.insert(
                    id,
                    Req {
                        op,
                        buf: Vec::new(),
                        remaining: 0,
                        error: None,
                        waits_for,
                        flush_acks: 0,
                    },
                );
                // Nothing may sit in the gather buffer past a flush.
                let held: Vec<JobId> = self.queues.gathering.iter().copied().collect();
                for j in held {
                    self.release_gather(j);
                }
                self.check_flushes();
            }
            VolumeOp::Read | VolumeOp::Write => {
                let pieces = self.geo.split(offset, sectors as u64);
                let buf = if op == VolumeOp::Read {
                    vec![0u8; sectors as usize * SECTOR]
                } else {
                    data
                };
                self.reqs.insert(
                    id,
                    Req {
                        op,
                        buf,
                        remaining: pieces.len(),
                        error: None,
                        waits_for: BTreeSet::new(),
                        flush_acks: 0,
                    },
                );
                let mut buf_off = 0usize;
                for (unit, off, n) in pieces {
                    let piece = Piece {
                        req: id,
                        off,
                        sectors: n,
                        buf_off,
                    };
                    buf_off += n as usize * SECTOR;
                    self.enqueue_piece(unit, op, piece);
                }
            }
        }
    }

    fn enqueue_piece(&mut self, unit: u64, op: VolumeOp, piece: Piece) {
        let write = op == VolumeOp::Write;
        if write && self.geo.level.parity() > 0 {
            // Merge into the stripe still gathering at the tail of this unit's queue.
            if let Some(tail) = self.queues.tail(unit) {
                if let Some(Job {
                    work: Work::Stripe(sw),
                    ..
                }) = self.queues.jobs.get_mut(&tail)
                {
                    if sw.phase == job::StripePhase::Gather
                        && crate::ppl::Entry::fits(sw.buf.intervals().len() + 1)
                    {
                        sw.buf
                            .merge(piece.off, self.reqs[&piece.req].piece_data(&piece));
                        sw.pieces.push(piece);
                        self.try_start_unit(unit);
                        return;
                    }
                }
            }
        }
        let work = if write {
            let data = self.reqs[&piece.req].piece_data(&piece);
            if self.geo.level.parity() > 0 {
                // Straight from the request into the gather buffer: no copy between.
                let mut buf = StripeBuffer::new(self.geo.unit_sectors());
                buf.merge(piece.off, data);
                self.new_stripe_write(piece, buf)
            } else {
                let data = crate::bytes::to_vec(data);
                self.new_mirror_write(piece, data)
            }
        } else if self.geo.level.parity() > 0 {
            self.new_parity_read(piece)
        } else {
            self.new_mirror_read(piece)
        };
        self.add_job(Job::new(unit, write, work));
    }

    pub(crate) fn add_job(&mut self, job: Job) -> JobId {
        let unit = job.unit;
        let id = self.queues.push(job);
        // A job queued behind a gathering stripe releases it: no point holding data
        // someone waits for.
        for j in self.queues.ahead_of_tail(unit) {
            if self.queues.gathering.contains(&j) {
                self.release_gather(j);
            }
        }
        self.try_start_unit(unit);
        id
    }

    /// Start every job at the head of `unit`'s queue that may run.
    pub(crate) fn try_start_unit(&mut self, unit: u64) {
        for id in self.queues.startable(unit) {
            let gathering = matches!(self.queues.jobs.get(&id), Some(Job { work: Work::Stripe(sw), .. }) if sw.phase == job::StripePhase::Gather);
            if gathering && !self.gather_should_start(id) {
                continue;
            }
            if self.queues.start(id) {
                if let Some(Job {
                    work: Work::Stripe(sw),
                    ..
                }) = self.queues.jobs.get_mut(&id)
                {
                    if sw.phase == job::StripePhase::Gather {
                        sw.phase = job::StripePhase::Intent;
                    }
                }
                self.step(id);
            }
        }
    }

    fn gather_should_start(&self, id: JobId) -> bool {
        let Some(Job {
            work: Work::Stripe(sw),
            unit,
            ..
        }) = self.queues.jobs.get(&id)
        else {
            return true;
        };
        let q_len = self.queues.queue_len(*unit);
        sw.force
            || sw.buf.is_full()
            || !sw.buf.looks_sequential()
            || q_len > 1
            || self.tun.gather_ns == 0
            || self.now >= sw.first_ns + self.tun.gather_ns
            || self.queues.gathering.len() > self.tun.gather_max_stripes
    }

    /// Stop gathering stripe job `id`: it starts as soon as it reaches its queue's head.
    pub(crate) fn release_gather(&mut self, id: JobId) {
        if let Some(Job {
            work: Work::Stripe(sw),
            unit,
            ..
        }) = self.queues.jobs.get_mut(&id)
        {
            if sw.phase == job::StripePhase::Gather {
                sw.force = true;
                let u = *unit;
                self.try_start_unit(u);
            }
        }
    }
}

impl Engine {
    pub fn poll_member_io(&mut self) -> Option<MemberIo> {
        self.io.out.pop_front()
    }
    pub fn poll_completion(&mut self) -> Option<VolumeCompletion> {
        self.io.done.pop_front()
    }
    pub fn poll_event(&mut self) -> Option<Event> {
        self.io.events.pop_front()
    }
    /// Earliest time the engine wants a `tick` (gathering deadline, pacing, lazy bitmap
    /// clearing); None if it has nothing timed pending.
    pub fn poll_timeout(&self) -> Option<u64> {
        let mut t: Option<u64> = None;
        let mut at = |x: u64| t = Some(t.map_or(x, |y: u64| y.min(x)));
        for id in &self.queues.gathering {
            if let Some(Job {
                work: Work::Stripe(sw),
                unit,
                ..
            }) = self.queues.jobs.get(id)
            {
                // A stripe queued behind another job starts when that job finishes,
                // whatever its gather deadline: that deadline may be long past, and a
                // caller sleeping until it would spin.
                if self.queues.head(*unit) == Some(*id) {
                    at(sw.first_ns + self.tun.gather_ns);
                }
            }
        }
        if !self.sync.idle() {
            at(self.now + 1_000_000);
        }
        if let Some(due) = self.lazy_clear_due() {
            at(due);
        }
        t
    }

    /// Advance virtual time: gathering deadlines, sync pacing, lazy bitmap clearing.
    pub fn tick(&mut self, now_ns: u64) {
        self.now = self.now.max(now_ns);
        let g: Vec<JobId> = self.queues.gathering.iter().copied().collect();
        for id in g {
            if let Some(u) = self.queues.jobs.get(&id).map(|j| j.unit) {
                self.try_start_unit(u);
            }
        }
        self.lazy_clear_bitmap();
        self.pump();
    }

    pub(crate) fn emit(
        &mut self,
        member: MemberIndex,
        op: MemberOp,
        offset: u64,
        sectors: u32,
        data: Vec<u8>,
        what: Inflight,
    ) {
        self.members[member].outstanding += 1;
        self.io.issue(
            Issued {
                member,
                op,
                offset,
                sectors,
                what,
            },
            data,
        );
    }

    /// A member I/O finished. Unknown ids (already failed by the engine) are ignored.
    pub fn complete_member_io(&mut self, id: MemberIoId, result: Result<Vec<u8>, MemberError>) {
        let Some(io) = self.io.inflight.remove(&id) else {
            return;
        };
        self.retire(&io);
        self.handle_completion(io.member, io.what, result);
        self.pump();
    }

    fn handle_completion(
        &mut self,
        member: MemberIndex,
        what: Inflight,
        result: Result<Vec<u8>, MemberError>,
    ) {
        match what {
            Inflight::Job(jid, slot) => self.job_io_done(jid, slot, result),
            Inflight::Meta(key) => self.meta_done(member, key, result),
            Inflight::Init(kind) => self.init_done(member, kind, result),
            Inflight::Flush(rid) => {
                if result.is_err() {
                    self.fail_member_internal(member);
                }
                if let Some(r) = self.reqs.get_mut(&rid) {
                    r.flush_acks = r.flush_acks.saturating_sub(1);
                }
                self.check_flushes();
            }
            Inflight::Probe(m) => self.probe_done(m, result),
            Inflight::CsumLoad { serial, sector } => self.csum_load_done(serial, sector, result),
        }
    }

    /// Run a job until it waits for member I/O or metadata, or finishes.
    pub(crate) fn step(&mut self, id: JobId) {
        let Some(mut job) = self.queues.jobs.remove(&id) else {
            return;
        };
        loop {
            if !job.wait.is_empty() {
                if job
                    .wait
                    .iter()
                    .all(|&(k, v)| self.meta.writer.is_durable(k, v))
                {
                    job.wait.clear();
                } else {
                    self.queues.meta_waiters.push(id);
                    break;
                }
            }
            if job.pending > 0 {
                break;
            }
            let done = match job.work {
                Work::MirrorRead(_) => self.step_mirror_read(id, &mut job),
                Work::MirrorWrite(_) => self.step_mirror_write(id, &mut job),
                Work::ParityRead(_) => self.step_parity_read(id, &mut job),
                Work::Stripe(_) => self.step_stripe(id, &mut job),
                Work::Sync(_) => self.step_sync(id, &mut job),
                Work::Replay(_) => self.step_replay(id, &mut job),
            };
            if done {
                self.finish_job(id, job);
                return;
            }
            if job.parked {
                job.parked = false;
                break;
            }
        }
        self.queues.jobs.insert(id, job);
    }

    fn job_io_done(&mut self, jid: JobId, slot: usize, result: Result<Vec<u8>, MemberError>) {
        let Some(job) = self.queues.jobs.get_mut(&jid) else {
            return;
        };
        job.pending = job.pending.saturating_sub(1);
        let s = &mut job.slots[slot];
        let res = match result {
            Ok(data) => {
                if s.op == MemberOp::Read {
                    s.data = data;
                    if s.data.len() != s.sectors as usize * SECTOR {
                        s.data.resize(s.sectors as usize * SECTOR, 0);
                        Err(job::Fail::Io)
                    } else {
                        Ok(())
                    }
                } else {
                    Ok(())
                }
            }
            Err(MemberError::Io) => Err(job::Fail::Io),
            Err(MemberError::Gone) => Err(job::Fail::Gone),
        };
        let (member, op, off, sectors) = (s.member, s.op, s.off, s.sectors);
        let res = match res {
            Ok(()) if op == MemberOp::Read && self.integrity => {
                let data =
                    std::mem::take(&mut self.queues.jobs.get_mut(&jid).unwrap().slots[slot].data);
                let r = self.verify(member, off, sectors, &data);
                self.queues.jobs.get_mut(&jid).unwrap().slots[slot].data = data;
                r
            }
            r => r,
        };
        if let Err(job::Fail::Gone) = res {
            self.fail_member_internal(member);
        }
        let job = self.queues.jobs.get_mut(&jid).unwrap();
        job.slots[slot].res = Some(res);
        if job.pending == 0 && job.wait.is_empty() {
            self.step(jid);
        }
    }

    /// Issue every not-yet-issued slot; members that cannot take I/O fail it at once.
    pub(crate) fn issue(&mut self, id: JobId, job: &mut Job) {
        for i in 0..job.slots.len() {
            if job.slots[i].issued {
                continue;
            }
            job.slots[i].issued = true;
            let (member, op) = (job.slots[i].member, job.slots[i].op);
            let usable = matches!(
                self.members[member].state,
                MemberState::Active | MemberState::Rebuilding
            );
            if !usable {
                job.slots[i].res = Some(Err(job::Fail::Gone));
                continue;
            }
            let raw = job.slots[i].raw;
            let off = job.slots[i].off;
            let sectors = job.slots[i].sectors;
            let data = if op == MemberOp::Write {
                if self.integrity && !raw {
                    let waits = self.update_csums(member, off, &job.slots[i].data);
                    job.wait.extend(waits);
                }
                // The slot keeps no copy: nothing reads a write's payload back.
                std::mem::take(&mut job.slots[i].data)
            } else {
                Vec::new()
            };
            job.pending += 1;
            self.emit(
                member,
                op,
                if raw { off } else { self.ml.data_offset + off },
                sectors,
                data,
                Inflight::Job(id, i),
            );
        }
    }

    fn finish_job(&mut self, id: JobId, job: Job) {
        if let Some(r) = job.region {
            self.end_write_intent(r);
        }
        let unit = job.unit;
        self.queues.remove(id, unit);
        if let Work::Sync(su) = &job.work {
            self.sync_unit_done(unit, su.abort, su.mismatches);
        }
        self.try_start_unit(unit);
    }

    /// Copies `data` into `piece`'s part of its request's buffer, `at` bytes
    /// into the piece (a piece gathered from several columns).
    pub(crate) fn piece_fill(&mut self, piece: &Piece, at: usize, data: &[u8]) {
        if let Some(r) = self.reqs.get_mut(&piece.req) {
            let start = piece.buf_off + at;
            crate::bytes::copy(&mut r.buf[start..start + data.len()], data);
        }
    }

    /// Deliver a piece's result to its request; complete the request when all are in.
    pub(crate) fn piece_done(
        &mut self,
        piece: &Piece,
        data: Option<&[u8]>,
        err: Option<VolumeError>,
    ) {
        let Some(r) = self.reqs.get_mut(&piece.req) else {
            return;
        };
        if let Some(e) = err {
            r.error.get_or_insert(e);
        } else if let Some(d) = data {
            let n = piece.sectors as usize * SECTOR;
            crate::bytes::copy(&mut r.buf[piece.buf_off..piece.buf_off + n], &d[..n]);
        }
        debug_assert!(
            r.remaining > 0,
            "request {} got more pieces than it had",
            piece.req
        );
        r.remaining -= 1;
        if r.remaining == 0 {
            let r = self.reqs.remove(&piece.req).unwrap();
            let result = match r.error {
                Some(e) => Err(e),
                None if r.op == VolumeOp::Read => Ok(r.buf),
                None => Ok(Vec::new()),
            };
            match &result {
                Err(_) => self.counters.failed_requests += 1,
                Ok(_) if r.op == VolumeOp::Read => self.counters.reads += 1,
                Ok(_) => self.counters.writes += 1,
            }
            self.io.done.push_back(VolumeCompletion {
                id: piece.req,
                result,
            });
            self.check_flushes();
        }
    }

    fn check_flushes(&mut self) {
        let flushes: Vec<RequestId> = self
            .reqs
            .iter()
            .filter(|(_, r)| r.op == VolumeOp::Flush)
            .map(|(k, _)| *k)
            .collect();
        for fid in flushes {
            let live: Vec<RequestId> = self.reqs[&fid]
                .waits_for
                .iter()
                .copied()
                .filter(|k| self.reqs.contains_key(k))
                .collect();
            let r = self.reqs.get_mut(&fid).unwrap();
            r.waits_for = live.into_iter().collect();
            if !r.waits_for.is_empty() {
                continue;
            }
            if r.remaining == 0 {
                // Start the member flushes.
                r.remaining = 1;
                let targets: Vec<MemberIndex> = (0..self.members.len())
                    .filter(|&m| {
                        matches!(
                            self.members[m].state,
                            MemberState::Active | MemberState::Rebuilding
                        )
                    })
                    .collect();
                self.reqs.get_mut(&fid).unwrap().flush_acks = targets.len();
                for m in targets {
                    self.emit(m, MemberOp::Flush, 0, 0, Vec::new(), Inflight::Flush(fid));
                }
            }
            if self.reqs[&fid].flush_acks == 0 {
                self.reqs.remove(&fid);
                let result = if self.failed {
                    Err(VolumeError::ArrayFailed)
                } else {
                    Ok(Vec::new())
                };
                self.io.done.push_back(VolumeCompletion { id: fid, result });
            }
        }
    }

    /// Metadata rounds, waiting jobs, sync pacing, held requests.
    pub(crate) fn pump(&mut self) {
        while let Some(m) = self.io.to_cancel.pop() {
            // Fail fast: everything still in flight to a failed member errors now.
            for io in self.io.take(|io| io.member == m) {
                self.retire(&io);
                self.handle_completion(io.member, io.what, Err(MemberError::Gone));
            }
        }
        if self.accepting() && !self.held.is_empty() {
            while let Some(r) = self.held.pop_front() {
                if self.failed {
                    self.io.done.push_back(VolumeCompletion {
                        id: r.id,
                        result: Err(VolumeError::ArrayFailed),
                    });
                } else {
                    self.start_request(r.id, r.op, r.offset, r.sectors, r.data);
                }
            }
        }
        self.issue_meta();
        if !self.queues.meta_waiters.is_empty() {
            let waiters = std::mem::take(&mut self.queues.meta_waiters);
            for id in waiters {
                self.step(id);
            }
        }
        if self.accepting() {
            self.sync_pump();
        }
        if self.failed {
            self.fail_everything();
        }
        // The log replay's last stripe may have finished in a step above (a job that
        // waited for metadata): the requests it held start now, not at the next event.
        if self.accepting() && !self.held.is_empty() {
            self.pump();
        }
    }

    /// The array has failed: every request gets an error, nothing waits.
    fn fail_everything(&mut self) {
        let ids: Vec<RequestId> = self.reqs.keys().copied().collect();
        for id in ids {
            self.reqs.remove(&id);
            self.io.done.push_back(VolumeCompletion {
                id,
                result: Err(VolumeError::ArrayFailed),
            });
        }
        // Requests held for the initial load would otherwise wait for ever: nothing
        // starts them once the array has failed.
        while let Some(r) = self.held.pop_front() {
            self.io.done.push_back(VolumeCompletion {
                id: r.id,
                result: Err(VolumeError::ArrayFailed),
            });
        }
        // Dropped writes give their write intent back (their regions stay dirty
        // on the members: whoever assembles the array next resyncs them).
        let regions: Vec<u64> = self.queues.jobs.values().filter_map(|j| j.region).collect();
        self.queues.clear();
        self.ppl_clear();
        for r in regions {
            self.end_write_intent(r);
        }
        // Metadata rounds and initial loads still count their acks: keep them. Late
        // completions of the dropped I/Os find no entry and are ignored.
        for io in self
            .io
            .take(|io| !matches!(io.what, Inflight::Meta(_) | Inflight::Init(_)))
        {
            self.retire(&io);
        }
        self.sync.run = None;
        self.sync.pending.clear();
    }

    /// Is a write in flight to member `m` over any of data sectors [off, off+sectors)?
    pub(crate) fn writing(&self, m: MemberIndex, off: u64, sectors: u64) -> bool {
        self.io.writing(m, self.ml.data_offset + off, sectors)
    }

    /// An I/O left the in-flight table (completed, cancelled or dropped).
    fn retire(&mut self, io: &Issued) {
        let m = &mut self.members[io.member];
        debug_assert!(
            m.outstanding > 0,
            "member {} outstanding underflow",
            io.member
        );
        m.outstanding -= 1;
    }

    /// Member is readable and holds current data for unit `u`.
    pub(crate) fn in_sync(&self, m: MemberIndex, u: u64) -> bool {
        let mem = &self.members[m];
        match mem.state {
            MemberState::Active => true,
            MemberState::Rebuilding => match &mem.recovery {
                Some(r) => {
                    u < r.checkpoint
                        || (r.bitmap_only
                            && !self.meta.bitmap.unit_dirty(u)
                            && !self.sync.recovering(m, u))
                }
                None => false,
            },
            _ => false,
        }
    }

    /// The member in `slot`. Every slot always has one (a placeholder in state Missing
    /// when assembly found nobody).
    pub(crate) fn sm(&self, slot: usize) -> MemberIndex {
        self.slots[slot].expect("every slot has a member")
    }

    /// Copies of unit `u` as (member, row). The layout speaks in slots.
    pub(crate) fn member_copies(&self, u: u64) -> Vec<(MemberIndex, u64)> {
        self.geo
            .copies(u)
            .into_iter()
            .map(|(s, row)| (self.sm(s), row))
            .collect()
    }

    /// Row of unit `u` on member `m`, if its slot holds part of that unit.
    pub(crate) fn row_of(&self, u: u64, m: MemberIndex) -> Option<u64> {
        self.members[m]
            .role
            .and_then(|s| self.geo.unit_row_on(u, s))
    }

    pub(crate) fn writable(&self, m: MemberIndex) -> bool {
        matches!(
            self.members[m].state,
            MemberState::Active | MemberState::Rebuilding
        )
    }

    /// Dirty region not yet passed by the running resync: copies/parity may disagree.
    pub(crate) fn unsynced(&self, u: u64) -> bool {
        if !self.sync.resync_needed || !self.meta.bitmap.unit_dirty(u) {
            return false;
        }
        match &self.sync.run {
            Some(s) if s.kind == SyncOp::Resync => u >= s.checkpoint(),
            _ => true,
        }
    }
}
pub use control::ControlError;
