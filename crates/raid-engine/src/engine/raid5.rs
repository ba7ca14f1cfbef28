//! RAID 5: reads (direct, or reconstructed from the other members) and stripe writes
//! (full stripe from the gather buffer; else read-modify-write or reconstruct-write,
//! whichever reads less; degraded stripes rebuild the missing column first).

use super::job::*;
use super::{Engine, JobId};
use crate::layout::{parity_member, raid5_data_member};
use crate::stripe_cache::StripeBuffer;
use crate::types::*;
use crate::xor::xor_into;

const PARITY: usize = usize::MAX;

impl Engine {
    fn cols(&self) -> usize {
        self.geo.members - 1
    }

    pub(crate) fn new_r5_read(&mut self, _unit: u64, piece: Piece) -> Work {
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
        Work::R5Read(R5Read {
            piece,
            phase: R5ReadPhase::Read,
            cols,
            col_data: vec![None; n],
            failed: None,
            raw: Vec::new(),
            verify: false,
            error: false,
        })
    }

    pub(crate) fn new_stripe_write(&mut self, piece: Piece, data: Vec<u8>) -> Work {
        let mut buf = StripeBuffer::new(self.geo.unit_sectors());
        buf.merge(piece.off, &data);
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
        })
    }

    pub(crate) fn step_r5_read(&mut self, id: JobId, job: &mut Job) -> bool {
        let (n, chunk, u) = (self.geo.members, self.geo.chunk_u64(), job.unit);
        let Work::R5Read(r) = &mut job.work else {
            unreachable!()
        };
        match r.phase {
            R5ReadPhase::Read => {
                job.slots.clear();
                for (i, &(c, a, b)) in r.cols.iter().enumerate() {
                    let m = self.sm(raid5_data_member(n, u, c));
                    if self.in_sync(m, u) {
                        job.slots.push(Slot::read(m, u * chunk + a, b - a, i));
                    } else if r.failed.is_none() {
                        r.failed = Some((i, Fail::Gone));
                    } else {
                        r.error = true;
                    }
                }
                r.phase = R5ReadPhase::Collect;
                self.issue(id, job);
                false
            }
            R5ReadPhase::Collect => {
                // Columns not in sync were noted by the Read phase (Gone).
                let mut fails: Vec<(usize, Fail)> = r.failed.take().into_iter().collect();
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
                r.phase = R5ReadPhase::Done;
                if r.error || fails.is_empty() {
                    return false;
                }
                let unsynced = self.unsynced(u);
                if fails.len() >= 2 {
                    // Beyond parity. After a crash, though, every one of them may be a
                    // torn block (checksum behind its data, several columns of one
                    // interrupted stripe write): those are served as they lie, like a
                    // lone torn block, and the resync re-seals them.
                    if unsynced && fails.iter().all(|&(_, f)| f == Fail::Checksum) {
                        Self::r5_serve_raw(r);
                    } else {
                        r.error = true;
                    }
                    return false;
                }
                let (i, f) = fails[0];
                r.failed = Some((i, f));
                if unsynced {
                    // The parity of an interrupted stripe is not trusted. With integrity
                    // on, a rebuilt column that matches the stored checksums is proven
                    // right anyway (the member's table is current while it is in sync);
                    // otherwise a torn block is served as it lies.
                    if !self.integrity || f == Fail::Gone {
                        Self::r5_serve_raw(r);
                        return false;
                    }
                    r.verify = true;
                }
                let (c, a, b) = r.cols[i];
                let bad = self.sm(raid5_data_member(n, u, c));
                job.slots.clear();
                for m in (0..n).map(|s| self.sm(s)).filter(|&m| m != bad) {
                    if !self.in_sync(m, u) {
                        Self::r5_rebuild_failed(r);
                        return false;
                    }
                    job.slots.push(Slot::read(m, u * chunk + a, b - a, 0));
                }
                r.phase = R5ReadPhase::Rebuilt;
                self.issue(id, job);
                false
            }
            R5ReadPhase::Rebuilt => {
                let (i, f) = r.failed.unwrap();
                let (c, a, b) = r.cols[i];
                r.phase = R5ReadPhase::Done;
                let mut out = vec![0u8; (b - a) as usize * SECTOR];
                for s in &job.slots {
                    if !s.ok() {
                        Self::r5_rebuild_failed(r);
                        return false;
                    }
                    xor_into(&mut out, &s.data);
                }
                let bad = self.sm(raid5_data_member(n, u, c));
                if r.verify && !self.csum_proves(bad, u * chunk + a, (b - a) as u32, &out) {
                    Self::r5_rebuild_failed(r);
                    return false;
                }
                r.col_data[i] = Some(out.clone());
                // Write it back: the member holds what was served (a later read, or
                // the resync, must not find the torn bytes again).
                // Another reader of this unit may be rewriting the same column.
                if f != Fail::Gone && self.writable(bad) && !self.writing(bad, u * chunk + a, b - a)
                {
                    job.slots = vec![Slot::write(bad, u * chunk + a, out, 0)];
                    r.phase = R5ReadPhase::Healed;
                    self.issue(id, job);
                }
                false
            }
            R5ReadPhase::Healed => {
                let (_, f) = r.failed.unwrap();
                let s = &job.slots[0];
                if s.ok() {
                    let (m, off, secs) = (s.member, s.off, s.sectors);
                    self.note_healed(m, off, secs, f);
                } else {
                    self.fail_member_internal(s.member);
                }
                r.phase = R5ReadPhase::Done;
                false
            }
            R5ReadPhase::Done => {
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
                let mut out = Vec::with_capacity(piece.sectors as usize * SECTOR);
                let (s, e) = (piece.off, piece.off + piece.sectors);
                for (i, &(c, a, _)) in r.cols.iter().enumerate() {
                    let c = c as u64;
                    let want_a = s.max(c * chunk) - c * chunk;
                    let want_b = e.min((c + 1) * chunk) - c * chunk;
                    let d = r.col_data[i].as_ref().expect("column data");
                    out.extend_from_slice(
                        &d[(want_a - a) as usize * SECTOR..(want_b - a) as usize * SECTOR],
                    );
                }
                self.piece_done(&piece, Some(&out), None);
                true
            }
        }
    }

    /// Serve every checksum-failed column as it lies (torn blocks in a not-yet-resynced
    /// region); any failed column without bytes (media error, member gone) is an error.
    fn r5_serve_raw(r: &mut R5Read) {
        for (i, d) in r.raw.drain(..) {
            r.col_data[i] = Some(d);
        }
        if r.col_data.iter().any(|d| d.is_none()) {
            r.error = true;
        }
    }

    /// The failed column could not be rebuilt (another read failed, or, in a
    /// not-yet-resynced region, the result was not proven by its checksums).
    fn r5_rebuild_failed(r: &mut R5Read) {
        if r.verify {
            Self::r5_serve_raw(r);
        } else {
            r.error = true;
        }
    }

    pub(crate) fn step_stripe(&mut self, id: JobId, job: &mut Job) -> bool {
        let (n, chunk, u) = (self.geo.members, self.geo.chunk_u64(), job.unit);
        let cols = self.cols();
        let p = self.sm(parity_member(n, u));
        let slot_of: Vec<MemberIndex> = self
            .slots
            .iter()
            .map(|s| s.expect("every slot has a member"))
            .collect();
        let colm = |c: usize| slot_of[raid5_data_member(n, u, c)];
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
                for c in 0..cols as u64 {
                    if let Some((a, b)) = w.buf.span_within(c * chunk, (c + 1) * chunk) {
                        lo = lo.min(a - c * chunk);
                        hi = hi.max(b - c * chunk);
                    }
                }
                let (lo, hi) = self.align(lo, hi);
                w.lo = lo;
                w.hi = hi;
                let mut unreadable: Vec<MemberIndex> = (0..n)
                    .map(|s| self.sm(s))
                    .filter(|&m| !self.in_sync(m, u))
                    .collect();
                let in_stripe: Vec<MemberIndex> = (0..n).map(|s| self.sm(s)).collect();
                for &m in &w.unreadable {
                    if in_stripe.contains(&m) && !unreadable.contains(&m) {
                        unreadable.push(m);
                    }
                }
                if unreadable.len() >= 2 {
                    w.error = true;
                    w.phase = StripePhase::Done;
                    return false;
                }
                let touched: Vec<bool> = (0..cols as u64)
                    .map(|c| w.buf.touches(c * chunk + lo, c * chunk + hi))
                    .collect();
                let full: Vec<bool> = (0..cols as u64)
                    .map(|c| w.buf.covers(c * chunk + lo, c * chunk + hi))
                    .collect();
                let not_full = full.iter().filter(|f| !**f).count();
                let n_touched = touched.iter().filter(|t| **t).count();
                w.mode = match unreadable.first() {
                    None if not_full == 0 => StripeMode::Full,
                    None if n_touched + 1 < not_full => StripeMode::Rmw,
                    None => StripeMode::Rcw,
                    Some(&b) if b == p => StripeMode::Rcw,
                    Some(&b) => {
                        let bc = (0..cols)
                            .find(|&c| colm(c) == b)
                            .expect("unreadable member is in the stripe");
                        if full[bc] {
                            StripeMode::Rcw
                        } else if !touched[bc] && !self.writable(b) {
                            StripeMode::Rmw
                        } else {
                            StripeMode::Reconstruct
                        }
                    }
                };
                job.slots.clear();
                let len = hi - lo;
                for c in 0..cols {
                    let m = colm(c);
                    let read = match w.mode {
                        StripeMode::Full => false,
                        StripeMode::Rcw => !full[c],
                        StripeMode::Rmw => touched[c],
                        StripeMode::Reconstruct => !unreadable.contains(&m),
                    };
                    if read {
                        job.slots.push(Slot::read(m, u * chunk + lo, len, c));
                    }
                }
                if matches!(w.mode, StripeMode::Rmw | StripeMode::Reconstruct) {
                    job.slots.push(Slot::read(p, u * chunk + lo, len, PARITY));
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
                let mut old: Vec<Option<Vec<u8>>> = vec![None; cols];
                let mut old_p: Option<Vec<u8>> = None;
                for s in job.slots.iter_mut() {
                    let d = std::mem::take(&mut s.data);
                    if s.tag == PARITY {
                        old_p = Some(d);
                    } else {
                        old[s.tag] = Some(d);
                    }
                }
                if w.mode == StripeMode::Reconstruct {
                    let b = w.unreadable[0];
                    let Some(bc) = (0..cols).find(|&c| colm(c) == b) else {
                        // A spare took the slot while we read: plan again.
                        w.phase = StripePhase::Plan;
                        return false;
                    };
                    let mut rec = old_p.clone().unwrap_or_else(|| vec![0; bytes]);
                    for (c, o) in old.iter().enumerate() {
                        if c != bc {
                            xor_into(&mut rec, o.as_ref().unwrap());
                        }
                    }
                    old[bc] = Some(rec);
                }
                let mut merged: Vec<Vec<u8>> = Vec::with_capacity(cols);
                for (c, o) in old.iter().enumerate() {
                    let mut m = o.clone().unwrap_or_else(|| vec![0; bytes]);
                    let base = c as u64 * chunk;
                    w.buf.overlay(base + w.lo, base + w.hi, &mut m);
                    merged.push(m);
                }
                let parity = if w.mode == StripeMode::Rmw {
                    let mut pp = old_p.unwrap();
                    for c in 0..cols {
                        if let Some(o) = &old[c] {
                            xor_into(&mut pp, o);
                            xor_into(&mut pp, &merged[c]);
                        }
                    }
                    pp
                } else {
                    let mut pp = vec![0u8; bytes];
                    for m in &merged {
                        xor_into(&mut pp, m);
                    }
                    pp
                };
                job.slots.clear();
                let off = u * chunk + w.lo;
                for (c, m) in merged.into_iter().enumerate() {
                    let member = colm(c);
                    let write = w
                        .buf
                        .touches(c as u64 * chunk + w.lo, c as u64 * chunk + w.hi)
                        || (w.mode == StripeMode::Reconstruct && w.unreadable.contains(&member))
                        || w.heal.iter().any(|h| h.0 == member);
                    if write && self.writable(member) {
                        job.slots.push(Slot::write(member, off, m, c));
                    }
                }
                if self.writable(p) {
                    job.slots.push(Slot::write(p, off, parity, PARITY));
                }
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
                if lost.len() >= 2 {
                    w.error = true;
                }
                if failed {
                    job.wait.push(self.sb_barrier());
                }
                w.phase = StripePhase::Done;
                false
            }
            StripePhase::Done => {
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
