//! RAID 0/1/10 reads and writes: one copy read (spread over all copies so sequential
//! reads scale), every copy written.

use super::job::*;
use super::{Engine, JobId};
use crate::layout::Level;
use crate::types::*;

impl Engine {
    pub(crate) fn new_mirror_read(&mut self, piece: Piece) -> Work {
        let (lo, hi) = self.align(piece.off, piece.off + piece.sectors);
        Work::MirrorRead(MirrorRead {
            piece,
            lo,
            hi,
            phase: MirrorReadPhase::Pick,
            tried: Vec::new(),
            bad: Vec::new(),
            good: None,
            raw: None,
            error: false,
        })
    }

    pub(crate) fn new_mirror_write(&mut self, piece: Piece, data: Vec<u8>) -> Work {
        let (lo, hi) = self.align(piece.off, piece.off + piece.sectors);
        Work::MirrorWrite(MirrorWrite {
            piece,
            data,
            lo,
            hi,
            phase: MirrorWritePhase::Intent,
            tried: Vec::new(),
            merged: Vec::new(),
            error: false,
        })
    }

    /// Copies of unit `u` to read from, best first. Sequential units rotate over the
    /// copies (both halves of a RAID 10 pair, every RAID 1 member); a copy far busier
    /// than the least busy one is passed over. Unsynced regions read the primary first
    /// so every read of them returns the same bytes.
    pub(crate) fn read_order(&self, u: u64, exclude: &[MemberIndex]) -> Vec<(MemberIndex, u64)> {
        let copies = self.member_copies(u);
        let mut c: Vec<(MemberIndex, u64)> = copies
            .iter()
            .copied()
            .filter(|&(m, _)| self.in_sync(m, u) && !exclude.contains(&m))
            .collect();
        if c.len() <= 1 || self.unsynced(u) {
            return c;
        }
        let n = copies.len() as u64;
        let pref = match self.geo.level {
            Level::Raid10 => (u * 2 / self.geo.members as u64) % 2,
            _ => u % n,
        } as usize;
        let pref_m = copies[pref % copies.len()].0;
        c.sort_by_key(|&(m, _)| (m != pref_m, self.members[m].outstanding));
        let min_out = c
            .iter()
            .map(|&(m, _)| self.members[m].outstanding)
            .min()
            .unwrap_or(0);
        if self.members[c[0].0].outstanding > min_out + 8 {
            c.sort_by_key(|&(m, _)| self.members[m].outstanding);
        }
        c
    }

    pub(crate) fn step_mirror_read(&mut self, id: JobId, job: &mut Job) -> bool {
        let chunk = self.geo.chunk_u64();
        let Work::MirrorRead(r) = &mut job.work else {
            unreachable!()
        };
        match r.phase {
            MirrorReadPhase::Pick => {
                let order = self.read_order(job.unit, &r.tried);
                match order.first() {
                    Some(&(m, row)) => {
                        r.tried.push(m);
                        job.slots = vec![Slot::read(m, row * chunk + r.lo, r.hi - r.lo, 0)];
                        r.phase = MirrorReadPhase::Reading;
                        self.issue(id, job);
                    }
                    None => {
                        // Every copy failed. In a region torn by a crash the checksums
                        // may lag the data: serve the primary's bytes and re-seal them.
                        if let (Some(raw), true) = (r.raw.take(), self.unsynced(job.unit)) {
                            r.good = Some(raw);
                            r.bad.clear();
                        } else {
                            r.error = true;
                        }
                        r.phase = MirrorReadPhase::Done;
                    }
                }
                false
            }
            MirrorReadPhase::Reading => {
                let s = &mut job.slots[0];
                match s.res {
                    Some(Ok(())) => {
                        r.good = Some(std::mem::take(&mut s.data));
                        // Readers run side by side: a copy another reader is already
                        // rewriting is left to it (the same bytes, written once).
                        let (unit, lo, hi) = (job.unit, r.lo, r.hi);
                        let heal: Vec<(MemberIndex, Fail)> = r
                            .bad
                            .iter()
                            .copied()
                            .filter(|&(m, f)| {
                                f != Fail::Gone
                                    && self.writable(m)
                                    && self.row_of(unit, m).is_some_and(|row| {
                                        !self.writing(m, row * chunk + lo, hi - lo)
                                    })
                            })
                            .collect();
                        if heal.is_empty() {
                            r.phase = MirrorReadPhase::Done;
                        } else {
                            let good = r.good.clone().unwrap();
                            job.slots = heal
                                .iter()
                                .filter_map(|&(m, _)| {
                                    self.row_of(job.unit, m).map(|row| {
                                        Slot::write(m, row * chunk + r.lo, good.clone(), 0)
                                    })
                                })
                                .collect();
                            r.phase = MirrorReadPhase::Rewrite;
                            self.issue(id, job);
                        }
                    }
                    Some(Err(f)) => {
                        if f == Fail::Checksum && r.raw.is_none() {
                            r.raw = Some(std::mem::take(&mut s.data));
                        }
                        r.bad.push((s.member, f));
                        r.phase = MirrorReadPhase::Pick;
                    }
                    None => unreachable!("read slot without result"),
                }
                false
            }
            MirrorReadPhase::Rewrite => {
                let mut healed = Vec::new();
                for s in &job.slots {
                    let f = r
                        .bad
                        .iter()
                        .find(|(m, _)| *m == s.member)
                        .map(|x| x.1)
                        .unwrap_or(Fail::Io);
                    if s.ok() {
                        healed.push((s.member, s.off, s.sectors, f));
                    } else {
                        self.fail_member_internal(s.member);
                    }
                }
                for (m, off, n, f) in healed {
                    self.note_healed(m, off, n, f);
                }
                r.phase = MirrorReadPhase::Done;
                false
            }
            MirrorReadPhase::Done => {
                let piece = r.piece;
                if r.error || r.good.is_none() {
                    self.piece_done(
                        &piece,
                        None,
                        Some(if self.failed {
                            VolumeError::ArrayFailed
                        } else {
                            VolumeError::Io
                        }),
                    );
                } else {
                    let good = r.good.take().unwrap();
                    let skip = (piece.off - r.lo) as usize * SECTOR;
                    self.piece_done(&piece, Some(&good[skip..]), None);
                }
                true
            }
        }
    }

    pub(crate) fn note_healed(&mut self, m: MemberIndex, off: u64, sectors: u32, f: Fail) {
        let offset = self.ml.data_offset + off;
        if f == Fail::Checksum {
            self.counters.checksum_repairs += 1;
            self.io.events.push_back(Event::ChecksumRepaired {
                member: m,
                offset,
                sectors,
            });
        } else {
            self.counters.corrected_read_errors += 1;
            self.io.events.push_back(Event::CorrectedReadError {
                member: m,
                offset,
                sectors,
            });
        }
    }

    pub(crate) fn step_mirror_write(&mut self, id: JobId, job: &mut Job) -> bool {
        let chunk = self.geo.chunk_u64();
        let Work::MirrorWrite(w) = &mut job.work else {
            unreachable!()
        };
        match w.phase {
            MirrorWritePhase::Intent => {
                let aligned = w.lo == w.piece.off && w.hi == w.piece.off + w.piece.sectors;
                if aligned {
                    w.merged = std::mem::take(&mut w.data);
                    w.phase = MirrorWritePhase::Write;
                } else {
                    w.phase = MirrorWritePhase::EdgeRead;
                }
                self.write_intent(job);
                false
            }
            MirrorWritePhase::EdgeRead => {
                let torn_ok = self.unsynced(job.unit);
                if let Some(s) = job.slots.first() {
                    if s.ok() || (torn_ok && s.fail() == Some(Fail::Checksum)) {
                        let mut merged = std::mem::take(&mut job.slots[0].data);
                        let skip = (w.piece.off - w.lo) as usize * SECTOR;
                        merged[skip..skip + w.data.len()].copy_from_slice(&w.data);
                        w.merged = merged;
                        w.phase = MirrorWritePhase::Write;
                        return false;
                    }
                }
                let order = self.read_order(job.unit, &w.tried);
                match order.first() {
                    Some(&(m, row)) => {
                        w.tried.push(m);
                        job.slots = vec![Slot::read(m, row * chunk + w.lo, w.hi - w.lo, 0)];
                        self.issue(id, job);
                    }
                    None => {
                        w.error = true;
                        w.phase = MirrorWritePhase::Done;
                    }
                }
                false
            }
            MirrorWritePhase::Write => {
                let targets: Vec<(MemberIndex, u64)> = self
                    .member_copies(job.unit)
                    .into_iter()
                    .filter(|&(m, _)| self.writable(m))
                    .collect();
                let last = targets.len().saturating_sub(1);
                job.slots = targets
                    .iter()
                    .enumerate()
                    .map(|(i, &(m, row))| {
                        let data = if i == last {
                            std::mem::take(&mut w.merged)
                        } else {
                            crate::bytes::to_vec(&w.merged)
                        };
                        Slot::write(m, row * chunk + w.lo, data, 0)
                    })
                    .collect();
                w.phase = MirrorWritePhase::Written;
                self.issue(id, job);
                false
            }
            MirrorWritePhase::Written => {
                let mut ok = 0;
                let mut failed = false;
                for s in &job.slots {
                    if s.ok() {
                        ok += 1;
                    } else {
                        failed = true;
                        self.fail_member_internal(s.member);
                    }
                }
                if ok == 0 {
                    w.error = true;
                }
                if failed {
                    // The failure must be on the survivors' superblocks before the ack,
                    // or a crash could bring the stale copy back as current.
                    job.wait.push(self.sb_barrier());
                }
                w.phase = MirrorWritePhase::Done;
                false
            }
            MirrorWritePhase::Done => {
                let piece = w.piece;
                let err = if w.error || self.failed {
                    Some(if self.failed {
                        VolumeError::ArrayFailed
                    } else {
                        VolumeError::Io
                    })
                } else {
                    None
                };
                self.piece_done(&piece, None, err);
                true
            }
        }
    }
}
