//! RAID 5 and RAID 6: reads (direct, or rebuilt from the other columns — from P, from
//! Q, or from both for two lost data columns) and stripe writes (full stripe from the
//! gather buffer; else read-modify-write of P (and Q) or reconstruct-write, whichever
//! reads less; degraded stripes rebuild their missing data columns first). The
//! arithmetic is `gf::solve`, the same for one parity column or two.

use super::job::*;
use super::{Engine, JobId};
use crate::bytes;
use crate::gf;
use crate::stripe_cache::StripeBuffer;
use crate::types::*;
use crate::xor::xor_into;

impl Engine {
    /// Parity columns per stripe: 1 (RAID 5) or 2 (RAID 6).
    pub(crate) fn parity(&self) -> usize {
        self.geo.level.parity()
    }

    /// Member holding logical column `col` of stripe `u` (data `0..k`, P, then Q).
    pub(crate) fn col_member(&self, u: u64, col: usize) -> MemberIndex {
        self.sm(self.geo.column_slot(u, col))
    }

    /// The member holding each column of stripe `u`, in column order.
    pub(crate) fn col_members(&self, u: u64) -> Vec<MemberIndex> {
        (0..self.geo.members)
            .map(|c| self.col_member(u, c))
            .collect()
    }

    /// Stripe `u` as each step of a job on it works from it: members, parity columns,
    /// data columns, chunk sectors, and the member holding each column.
    pub(crate) fn stripe_shape(&self, u: u64) -> (usize, usize, usize, u64, Vec<MemberIndex>) {
        let (n, np) = (self.geo.members, self.parity());
        (n, np, n - np, self.geo.chunk_u64(), self.col_members(u))
    }

    pub(crate) fn new_parity_read(&mut self, piece: Piece) -> Work {
        let chunk = self.geo.chunk_u64();
        let (s, e) = (piece.off, piece.off + piece.sectors);
        let mut cols = Vec::new();
        for c in (s / chunk)..e.div_ceil(chunk) {
            let a = s.max(c * chunk) - c * chunk;
            let b = e.min((c + 1) * chunk) - c * chunk;
            let (a, b) = self.align(a, b);
            cols.push((c as usize, a, b));
        }
        let n = cols.len();
        Work::ParityRead(ParityRead {
            piece,
            phase: ParityReadPhase::Read,
            cols,
            col_data: vec![None; n],
            failed: Vec::new(),
            span: (0, 0),
            raw: Vec::new(),
            verify: false,
            raw_ok: false,
            error: false,
        })
    }

    /// A stripe write gathering from `buf`, which holds `piece`'s data.
    pub(crate) fn new_stripe_write(&mut self, piece: Piece, buf: StripeBuffer) -> Work {
        self.counters.stripe_writes_gathered += 1;
        Work::Stripe(StripeWrite {
            buf,
            pieces: vec![piece],
            first_ns: self.now,
            force: false,
            phase: StripePhase::Gather,
            unreadable: Vec::new(),
            heal: Vec::new(),
            lo: 0,
            hi: 0,
            mode: StripeMode::Full,
            error: false,
            log: Default::default(),
        })
    }

    pub(crate) fn step_parity_read(&mut self, id: JobId, job: &mut Job) -> bool {
        let u = job.unit;
        let (n, np, _, chunk, colm) = self.stripe_shape(u);
        let Work::ParityRead(r) = &mut job.work else {
            unreachable!()
        };
        match r.phase {
            ParityReadPhase::Read => {
                job.slots.clear();
                for (i, &(c, a, b)) in r.cols.iter().enumerate() {
                    let m = colm[c];
                    if self.in_sync(m, u) {
                        job.slots.push(Slot::read(m, u * chunk + a, b - a, i));
                    } else {
                        r.failed.push((i, Fail::Gone));
                    }
                }
                r.phase = ParityReadPhase::Collect;
                self.issue(id, job);
                false
            }
            ParityReadPhase::Collect => {
                // Columns not in sync were noted by the Read phase (Gone).
                let mut fails: Vec<(usize, Fail)> = std::mem::take(&mut r.failed);
                for s in job.slots.iter_mut() {
                    match s.res {
                        Some(Ok(())) => r.col_data[s.tag] = Some(std::mem::take(&mut s.data)),
                        Some(Err(f)) => {
                            fails.push((s.tag, f));
                            if f == Fail::Checksum {
                                r.raw.push((s.tag, std::mem::take(&mut s.data)));
                            }
                        }
                        None => unreachable!(),
                    }
                }
                r.phase = ParityReadPhase::Done;
                if r.error || fails.is_empty() {
                    return false;
                }

                let unsynced = self.unsynced(u);
                if fails.len() > np {
                    // Beyond parity. After a crash, though, every one of them may be a
                    // torn block (checksum behind its data, several columns of one
                    // interrupted stripe write): those are served as they lie, like a
                    // lone torn block, and the resync re-seals them.
                    if unsynced && fails.iter().all(|&(_, f)| f == Fail::Checksum) {
                        Self::serve_raw(r);
                    } else {
                        r.error = true;
                    }
                    return false;
                }
                if unsynced && self.ppl_trusted() {
                    // The log's replay made every interrupted stripe consistent: rebuild
                    // from parity; a torn block is served as it lies only if that fails.
                    r.raw_ok = true;
                } else if unsynced {
                    // The parity of an interrupted stripe is not trusted. With integrity
                    // on, a rebuilt column that matches the stored checksums is proven
                    // right anyway (the member's table is current while it is in sync);
                    // otherwise a torn block is served as it lies.
                    if !self.integrity || fails.iter().any(|&(_, f)| f == Fail::Gone) {
                        Self::serve_raw(r);
                        return false;
                    }
                    r.verify = true;
                }
                // Read every other column over the span of the failed ones.
                let lost: Vec<usize> = fails.iter().map(|&(i, _)| r.cols[i].0).collect();
                let a = fails.iter().map(|&(i, _)| r.cols[i].1).min().unwrap();
                let b = fails.iter().map(|&(i, _)| r.cols[i].2).max().unwrap();
                r.span = (a, b);
                r.failed = fails;
                job.slots.clear();
                let mut erased = lost.len();
                for c in (0..n).filter(|c| !lost.contains(c)) {
                    if self.in_sync(colm[c], u) {
                        job.slots.push(Slot::read(colm[c], u * chunk + a, b - a, c));
                    } else {
                        erased += 1;
                    }
                }
                if erased > np {
                    Self::rebuild_failed(r);
                    return false;
                }
                r.phase = ParityReadPhase::Rebuilt;
                self.issue(id, job);
                false
            }
            ParityReadPhase::Rebuilt => {
                r.phase = ParityReadPhase::Done;
                let mut stripe: Vec<Option<Vec<u8>>> = vec![None; n];
                for s in job.slots.iter_mut().filter(|s| s.ok()) {
                    stripe[s.tag] = Some(std::mem::take(&mut s.data));
                }
                // A read that failed here is one more erasure: RAID 6 may still cover it.
                if !gf::solve(&mut stripe, np) {
                    Self::rebuild_failed(r);
                    return false;
                }
                let base = r.span.0;
                job.slots.clear();
                for &(i, f) in &r.failed {
                    let (c, a, b) = r.cols[i];
                    let bytes = (a - base) as usize * SECTOR..(b - base) as usize * SECTOR;
                    let out = stripe[c].as_ref().expect("solved")[bytes].to_vec();
                    let bad = colm[c];
                    if r.verify && !self.csum_proves(bad, u * chunk + a, (b - a) as u32, &out) {
                        Self::rebuild_failed(r);
                        return false;
                    }
                    // Write it back: the member holds what was served (a later read, or
                    // the resync, must not find the torn bytes again). Another reader
                    // of this unit may be rewriting the same column.
                    if f != Fail::Gone
                        && self.writable(bad)
                        && !self.writing(bad, u * chunk + a, b - a)
                    {
                        job.slots
                            .push(Slot::write(bad, u * chunk + a, out.clone(), i));
                    }
                    r.col_data[i] = Some(out);
                }
                if !job.slots.is_empty() {
                    r.phase = ParityReadPhase::Healed;
                    self.issue(id, job);
                }
                false
            }
            ParityReadPhase::Healed => {
                for s in &job.slots {
                    let f = r
                        .failed
                        .iter()
                        .find(|x| x.0 == s.tag)
                        .expect("healed column")
                        .1;
                    if s.ok() {
                        self.note_healed(s.member, s.off, s.sectors, f);
                    } else {
                        self.fail_member_internal(s.member);
                    }
                }
                r.phase = ParityReadPhase::Done;
                false
            }
            ParityReadPhase::Done => {
                let piece = r.piece;
                if r.error {
                    let e = if self.failed {
                        VolumeError::ArrayFailed
                    } else {
                        VolumeError::Io
                    };
                    self.piece_done(&piece, None, Some(e));
                    return true;
                }
                // Each column's bytes go straight to their place in the request's
                // buffer: gathering them into one piece first cost a second copy
                // of every byte read and an allocation per stripe.
                let (s, e) = (piece.off, piece.off + piece.sectors);
                let mut at = 0;
                for (i, &(c, a, _)) in r.cols.iter().enumerate() {
                    let c = c as u64;
                    let want_a = s.max(c * chunk) - c * chunk;
                    let want_b = e.min((c + 1) * chunk) - c * chunk;
                    let d = r.col_data[i].as_ref().expect("column data");
                    let part = &d[(want_a - a) as usize * SECTOR..(want_b - a) as usize * SECTOR];
                    self.piece_fill(&piece, at, part);
                    at += part.len();
                }
                self.piece_done(&piece, None, None);
                true
            }
        }
    }

    /// Serve every checksum-failed column as it lies (torn blocks in a not-yet-resynced
    /// region); any failed column without bytes (media error, member gone) is an error.
    fn serve_raw(r: &mut ParityRead) {
        for (i, d) in r.raw.drain(..) {
            r.col_data[i] = Some(d);
        }
        if r.col_data.iter().any(|d| d.is_none()) {
            r.error = true;
        }
    }

    /// The failed column could not be rebuilt (another read failed, or, in a
    /// not-yet-resynced region, the result was not proven by its checksums).
    fn rebuild_failed(r: &mut ParityRead) {
        if r.verify || r.raw_ok {
            Self::serve_raw(r);
        } else {
            r.error = true;
        }
    }

    pub(crate) fn step_stripe(&mut self, id: JobId, job: &mut Job) -> bool {
        let u = job.unit;
        let (n, np, k, chunk, colm) = self.stripe_shape(u);
        let Work::Stripe(w) = &mut job.work else {
            unreachable!()
        };
        match w.phase {
            StripePhase::Gather | StripePhase::Intent => {
                w.phase = StripePhase::Plan;
                self.write_intent(job);
                false
            }
            StripePhase::Plan => {
                let (mut lo, mut hi) = (chunk, 0);
                for c in 0..k as u64 {
                    if let Some((a, b)) = w.buf.span_within(c * chunk, (c + 1) * chunk) {
                        lo = lo.min(a - c * chunk);
                        hi = hi.max(b - c * chunk);
                    }
                }
                let (lo, hi) = self.align(lo, hi);
                w.lo = lo;
                w.hi = hi;
                let mut unreadable: Vec<MemberIndex> = colm
                    .iter()
                    .copied()
                    .filter(|&m| !self.in_sync(m, u))
                    .collect();
                for &m in &w.unreadable {
                    if colm.contains(&m) && !unreadable.contains(&m) {
                        unreadable.push(m);
                    }
                }
                if unreadable.len() > np {
                    w.error = true;
                    w.phase = StripePhase::Done;
                    return false;
                }
                let bad = |c: usize| unreadable.contains(&colm[c]);
                let touched: Vec<bool> = (0..k as u64)
                    .map(|c| w.buf.touches(c * chunk + lo, c * chunk + hi))
                    .collect();
                let full: Vec<bool> = (0..k as u64)
                    .map(|c| w.buf.covers(c * chunk + lo, c * chunk + hi))
                    .collect();
                let not_full = full.iter().filter(|f| !**f).count();
                let n_touched = touched.iter().filter(|t| **t).count();
                let bad_data: Vec<usize> = (0..k).filter(|&c| bad(c)).collect();
                let parity_ok = (k..n).all(|c| !bad(c));
                w.mode = if bad_data.is_empty() {
                    if not_full == 0 {
                        StripeMode::Full
                    } else if parity_ok && n_touched + np < not_full {
                        StripeMode::Rmw
                    } else {
                        StripeMode::Rcw
                    }
                } else if bad_data.iter().all(|&c| full[c]) {
                    StripeMode::Rcw
                } else if parity_ok
                    && bad_data
                        .iter()
                        .all(|&c| !touched[c] && !self.writable(colm[c]))
                {
                    StripeMode::Rmw
                } else {
                    StripeMode::Reconstruct
                };
                job.slots.clear();
                let len = hi - lo;
                for c in 0..n {
                    let read = match w.mode {
                        StripeMode::Full => false,
                        StripeMode::Rcw => c < k && !full[c],
                        StripeMode::Rmw => c >= k || touched[c],
                        StripeMode::Reconstruct => !bad(c),
                    };
                    if read {
                        job.slots.push(Slot::read(colm[c], u * chunk + lo, len, c));
                    }
                }
                w.unreadable = unreadable;
                let reads: u64 = job.slots.iter().map(|s| s.sectors as u64).sum();
                self.counters.stripe_read_sectors += reads;
                match w.mode {
                    StripeMode::Full => self.counters.full_stripe_writes += 1,
                    StripeMode::Rmw => self.counters.rmw_writes += 1,
                    _ => self.counters.rcw_writes += 1,
                }
                w.phase = StripePhase::Reading;
                self.issue(id, job);
                false
            }
            StripePhase::Reading => {
                // A failed read: that member becomes unreadable for this stripe; plan again.
                let mut replan = false;
                let torn_ok = self.unsynced(u);
                for s in &job.slots {
                    if let Some(f) = s.fail() {
                        if f == Fail::Checksum && torn_ok {
                            // Not yet resynced after a crash: a block whose checksum
                            // lags its data is taken as it lies (resync re-seals it).
                            continue;
                        }
                        w.unreadable.push(s.member);
                        if f != Fail::Gone {
                            w.heal.push((s.member, f));
                        }
                        replan = true;
                    }
                }
                if replan {
                    w.phase = StripePhase::Plan;
                    return false;
                }
                let bytes = (w.hi - w.lo) as usize * SECTOR;
                let mut old: Vec<Option<Vec<u8>>> = vec![None; n];
                for s in job.slots.iter_mut() {
                    old[s.tag] = Some(std::mem::take(&mut s.data));
                }
                if w.mode == StripeMode::Reconstruct {
                    // Every column but the unreadable ones was read. A spare that took
                    // an unreadable column's slot while we read: plan again.
                    if (0..n).any(|c| old[c].is_none() && !w.unreadable.contains(&colm[c])) {
                        w.phase = StripePhase::Plan;
                        return false;
                    }
                    let solved = gf::solve(&mut old, np);
                    debug_assert!(solved, "stripe {u}: more unreadable columns than parity");
                }
                // A column written whole is gathered from the buffer; the others take
                // their old bytes (a copy only where read-modify-write needs them
                // again) with the new sectors laid over.
                let rmw = w.mode == StripeMode::Rmw;
                let merged: Vec<Vec<u8>> = (0..k)
                    .map(|c| {
                        let (s, e) = (c as u64 * chunk + w.lo, c as u64 * chunk + w.hi);
                        if w.buf.covers(s, e) {
                            return w.buf.gather(s, e);
                        }
                        let mut m = if rmw {
                            old[c].as_deref().map(bytes::to_vec)
                        } else {
                            old[c].take()
                        }
                        .unwrap_or_else(|| vec![0; bytes]);
                        w.buf.overlay(s, e, &mut m);
                        m
                    })
                    .collect();
                let (p, q) = if rmw {
                    // P ^= Σ Δc, Q ^= Σ g^c·Δc over the columns read (the touched ones).
                    let mut p = old[k].take().expect("old P read");
                    let mut q = (np == 2).then(|| old[k + 1].take().expect("old Q read"));
                    for c in 0..k {
                        if let Some(o) = &old[c] {
                            let mut delta = bytes::to_vec(o);
                            xor_into(&mut delta, &merged[c]);
                            xor_into(&mut p, &delta);
                            if let Some(q) = q.as_mut() {
                                gf::mul_acc(q, &delta, gf::pow2(c));
                            }
                        }
                    }
                    (p, q)
                } else {
                    let refs: Vec<&[u8]> = merged.iter().map(|m| &m[..]).collect();
                    gf::syndromes(&refs, np, bytes)
                };
                // The log entry goes to P's member; with P gone there is no parity to
                // keep consistent (RAID 6 then relies on the resync after a crash).
                let entry = (self.ppl_on() && self.writable(colm[k])).then(|| {
                    let full = w.mode == StripeMode::Full;
                    self.ppl_entry(u, &w.buf, w.lo, full, &merged, &p)
                });
                job.slots.clear();
                let off = u * chunk + w.lo;
                for (c, m) in merged.into_iter().enumerate() {
                    let member = colm[c];
                    let write = w
                        .buf
                        .touches(c as u64 * chunk + w.lo, c as u64 * chunk + w.hi)
                        || (w.mode == StripeMode::Reconstruct && w.unreadable.contains(&member))
                        || w.heal.iter().any(|h| h.0 == member);
                    if write && self.writable(member) {
                        job.slots.push(Slot::write(member, off, m, c));
                    }
                }
                for (c, d) in (k..n).zip([Some(p), q]) {
                    if self.writable(colm[c]) {
                        job.slots
                            .push(Slot::write(colm[c], off, d.expect("parity"), c));
                    }
                }
                if let Some(e) = entry {
                    w.log.entry = Some(e);
                    w.log.deferred = std::mem::take(&mut job.slots);
                    w.phase = StripePhase::Log;
                    return false;
                }
                w.phase = StripePhase::Writing;
                self.issue(id, job);
                false
            }
            StripePhase::Log => {
                let pm = colm[k];
                if !self.writable(pm) {
                    w.log.entry = None;
                    w.phase = StripePhase::Write;
                    return false;
                }
                // The slot's header must be zeroed first if its member just rejoined.
                if !self.ppl_forgotten(pm) {
                    for s in 0..self.ml.ppl_slots {
                        let key = crate::meta::MetaKey::PplSlot(pm, s);
                        job.wait.push((key, self.meta.writer.version(key)));
                    }
                    return false;
                }
                let Some(slot) = self.ppl_take_slot(pm, u) else {
                    self.ppl_park(id);
                    job.parked = true;
                    return false;
                };
                w.log.slot = Some((pm, slot));
                let e = w.log.entry.take().expect("entry to log");
                job.slots = vec![self.ppl_write(pm, slot, &e)];
                w.phase = StripePhase::Logged;
                self.issue(id, job);
                false
            }
            StripePhase::Logged => {
                // A failed log write failed P's member: the stripe goes on without P,
                // once the failure is on the survivors' superblocks.
                if let Some(s) = job.slots.iter().find(|s| !s.ok()) {
                    let m = s.member;
                    self.fail_member_internal(m);
                    job.wait.push(self.sb_barrier());
                }
                w.phase = StripePhase::Write;
                false
            }
            StripePhase::Write => {
                job.slots = std::mem::take(&mut w.log.deferred);
                w.phase = StripePhase::Writing;
                self.issue(id, job);
                false
            }
            StripePhase::Writing => {
                let mut lost: Vec<MemberIndex> = w.unreadable.clone();
                let mut failed = false;
                let mut healed = Vec::new();
                for s in &job.slots {
                    if s.ok() {
                        lost.retain(|&m| m != s.member);
                        if let Some(&(_, f)) = w.heal.iter().find(|h| h.0 == s.member) {
                            healed.push((s.member, s.off, s.sectors, f));
                        }
                    } else {
                        failed = true;
                        if !lost.contains(&s.member) {
                            lost.push(s.member);
                        }
                        self.fail_member_internal(s.member);
                    }
                }
                for (m, off, secs, f) in healed {
                    self.note_healed(m, off, secs, f);
                }
                if lost.len() > np {
                    w.error = true;
                }
                if failed {
                    job.wait.push(self.sb_barrier());
                }
                w.phase = StripePhase::Done;
                false
            }
            StripePhase::Done => {
                if let Some(s) = w.log.slot.take() {
                    self.ppl_release(s);
                }
                let err = if self.failed {
                    Some(VolumeError::ArrayFailed)
                } else if w.error {
                    Some(VolumeError::Io)
                } else {
                    None
                };
                let pieces = std::mem::take(&mut w.pieces);
                for piece in pieces {
                    self.piece_done(&piece, None, err);
                }
                true
            }
        }
    }
}
