//! The partial-parity log in the engine: one entry per RAID 5/6 stripe write on the
//! stripe's P member before its data and parity go out, slots per member, and the replay
//! of the crashed run's entries at an unclean start (crate::ppl holds the format and
//! the row arithmetic; DESIGN.md argues the choice).

use super::job::*;
use super::{Engine, JobId};
use crate::fastmap::FastMap as HashMap;
use crate::gf;
use crate::meta::MetaKey;
use crate::ppl::{fill_row, partial_parity, Entry};
use crate::stripe_cache::StripeBuffer;
use crate::types::*;

#[derive(Debug, Default)]
pub(crate) struct PplState {
    /// This run's generation, written into every entry it logs: the superblock's events
    /// when the run started plus one, so above every earlier run's.
    pub(crate) generation: u64,
    /// The generation the superblocks name: entries of that run are replayed after a
    /// crash. It moves to `generation` only once the replay of the previous run is done.
    pub(crate) sb_generation: u64,
    /// Superblock version that names `generation`: no entry is written before it is
    /// durable (else a crash would replay the older run's entries, not these).
    pub(crate) gen_version: u64,
    seq: u64,
    /// Busy slots per member (bit i = slot i).
    busy: HashMap<MemberIndex, u64>,
    /// Which unit's entry each slot written this run holds, and back: a unit's next
    /// entry goes to the slot of its previous one when that is free, so a member never
    /// holds two entries of one unit from this run — an older one would be replayed
    /// over writes whose own entry was overwritten since.
    unit_in_slot: HashMap<(MemberIndex, u32), u64>,
    slot_of_unit: HashMap<u64, (MemberIndex, u32)>,
    /// Stripe writes waiting for a free slot on their P member.
    waiters: Vec<JobId>,
    /// Log slots read at an unclean start, until the replay starts.
    pub(crate) loaded: Vec<(MemberIndex, Vec<u8>)>,
    /// Replays not finished: requests and sync wait for them.
    pub(crate) replaying: usize,
    /// The slots are being read: the replay starts once they are all in.
    pub(crate) replay_pending: bool,
}

/// A stripe write's log entry: where it went and the entry itself until then.
#[derive(Debug, Default)]
pub(crate) struct StripeLog {
    pub(crate) entry: Option<Entry>,
    pub(crate) slot: Option<(MemberIndex, u32)>,
    /// Data and parity writes prepared while the entry is written.
    pub(crate) deferred: Vec<Slot>,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReplayPhase {
    Read,
    Fix,
    Done,
}

#[derive(Debug)]
pub(crate) struct Replay {
    pub(crate) entry: Entry,
    pub(crate) phase: ReplayPhase,
    /// Data column rebuilt from the log over a failed checksum (healed when written).
    pub(crate) healed: Option<usize>,
}

impl Engine {
    /// RAID 5/6 with `consistency_policy: ppl`.
    pub(crate) fn ppl_on(&self) -> bool {
        self.ml.ppl_slots > 0
    }

    /// Parity may be trusted where a resync has not passed yet: the log made every
    /// interrupted stripe consistent at start (only parity never computed, during the
    /// initial resync, is not covered).
    pub(crate) fn ppl_trusted(&self) -> bool {
        self.ppl_on() && !self.meta.initial_sync
    }

    /// The entry for a stripe write about to issue `writes` (new data columns over rows
    /// lo..hi, P first among the parity writes).
    pub(crate) fn ppl_entry(
        &mut self,
        u: u64,
        buf: &StripeBuffer,
        lo: u64,
        full: bool,
        new_data: &[Vec<u8>],
        new_p: &[u8],
    ) -> Entry {
        self.ppl.seq += 1;
        let chunk = self.geo.chunk_u64();
        let covered = buf.intervals().to_vec();
        let partial = if full {
            Vec::new()
        } else {
            partial_parity(new_p, new_data, chunk, lo, &covered)
        };
        Entry {
            array_uuid: self.array_uuid,
            generation: self.ppl.generation,
            seq: self.ppl.seq,
            unit: u,
            lo,
            hi: lo + (new_p.len() / SECTOR) as u64,
            covered,
            partial,
            col_crcs: new_data.iter().map(|d| crc32c::crc32c(d)).collect(),
        }
    }

    /// A free log slot on member `m` for unit `u`'s entry, taken; None: the job waits
    /// (`ppl_park`). The slot of `u`'s previous entry when free, else the first free.
    pub(crate) fn ppl_take_slot(&mut self, m: MemberIndex, u: u64) -> Option<u32> {
        let busy = self.ppl.busy.entry(m).or_default();
        let own = match self.ppl.slot_of_unit.get(&u) {
            Some(&(pm, s)) if pm == m && *busy & (1 << s) == 0 => Some(s),
            _ => None,
        };
        let slot = own.unwrap_or((!*busy).trailing_zeros());
        if slot >= self.ml.ppl_slots {
            return None;
        }
        *busy |= 1 << slot;
        if let Some(v) = self.ppl.unit_in_slot.insert((m, slot), u) {
            if self.ppl.slot_of_unit.get(&v) == Some(&(m, slot)) {
                self.ppl.slot_of_unit.remove(&v);
            }
        }
        self.ppl.slot_of_unit.insert(u, (m, slot));
        Some(slot)
    }

    pub(crate) fn ppl_slot_offset(&self, slot: u32) -> u64 {
        self.ml.ppl_offset + slot as u64 * self.ml.ppl_slot_sectors as u64
    }

    /// Member `m` starts taking writes again (re-add, spare takeover): entries it holds
    /// from before are stale — writes went on without it — so every slot header is
    /// zeroed; its rebuild waits for that (`ppl_forgotten`), since from the rebuild on
    /// the replay would trust its entries.
    pub(crate) fn ppl_forget(&mut self, m: MemberIndex) {
        if !self.ppl_on() {
            return;
        }
        self.ppl.unit_in_slot.retain(|&(pm, _), _| pm != m);
        self.ppl.slot_of_unit.retain(|_, &mut (pm, _)| pm != m);
        for s in 0..self.ml.ppl_slots {
            self.meta.writer.touch(MetaKey::PplSlot(m, s));
        }
    }

    /// Every log slot header of `m` zeroed since it last (re)joined.
    pub(crate) fn ppl_forgotten(&self, m: MemberIndex) -> bool {
        (0..self.ml.ppl_slots).all(|s| {
            let k = MetaKey::PplSlot(m, s);
            self.meta.writer.is_durable(k, self.meta.writer.version(k))
        })
    }

    pub(crate) fn ppl_park(&mut self, id: JobId) {
        self.ppl.waiters.push(id);
    }

    /// The stripe write holding `slot` finished: its entry may be overwritten.
    pub(crate) fn ppl_release(&mut self, (m, slot): (MemberIndex, u32)) {
        if let Some(b) = self.ppl.busy.get_mut(&m) {
            *b &= !(1u64 << slot);
        }
        self.queues.meta_waiters.append(&mut self.ppl.waiters);
    }

    /// The array failed: the jobs holding or waiting for slots are gone.
    pub(crate) fn ppl_clear(&mut self) {
        self.ppl.busy.clear();
        self.ppl.waiters.clear();
    }

    /// The entry's write to its slot (absolute member offset: the log is metadata).
    pub(crate) fn ppl_write(&mut self, m: MemberIndex, slot: u32, entry: &Entry) -> Slot {
        let off = self.ppl_slot_offset(slot);
        self.counters.ppl_entries += 1;
        self.counters.ppl_sectors += entry.sectors();
        let mut s = Slot::write(m, off, entry.encode(), 0);
        s.raw = true;
        s
    }

    /// Start one replay per unit from the newest entry of the crashed run, found on
    /// that unit's P member. Requests wait until they are done.
    pub(crate) fn ppl_start_replay(&mut self) {
        let k = self.geo.members - self.parity();
        let units = self.geo.units();
        let chunk = self.geo.chunk_u64();
        let mut newest: HashMap<u64, Entry> = HashMap::default();
        for (m, bytes) in std::mem::take(&mut self.ppl.loaded) {
            if !Entry::present(&bytes) {
                continue;
            }
            let Some(e) = Entry::decode(&bytes, &self.array_uuid) else {
                self.counters.ppl_refused += 1;
                continue;
            };
            if e.generation > self.ppl.sb_generation
                || e.unit >= units
                || e.hi > chunk
                || e.col_crcs.len() != k
                || e.covered
                    .iter()
                    .any(|&(a, b)| a >= b || b > k as u64 * chunk)
                || self.col_member(e.unit, k) != m
            {
                self.counters.ppl_refused += 1;
                continue;
            }
            // A rebuilding member's entries count where it is in sync (its old ones
            // were zeroed before its rebuild started).
            if e.generation < self.ppl.sb_generation || !self.in_sync(m, e.unit) {
                self.counters.ppl_stale += 1;
                continue;
            }
            match newest.get(&e.unit) {
                Some(o) if o.seq >= e.seq => self.counters.ppl_stale += 1,
                Some(_) => {
                    self.counters.ppl_stale += 1;
                    newest.insert(e.unit, e);
                }
                None => {
                    newest.insert(e.unit, e);
                }
            }
        }
        let mut entries: Vec<Entry> = newest.into_values().collect();
        entries.sort_by_key(|e| e.unit);
        self.ppl.replaying = entries.len();
        for entry in entries {
            let unit = entry.unit;
            self.add_job(Job::new(
                unit,
                true,
                Work::Replay(Replay {
                    entry,
                    phase: ReplayPhase::Read,
                    healed: None,
                }),
            ));
        }
        if self.ppl.replaying == 0 {
            self.ppl_replay_done();
        }
    }

    /// Every interrupted stripe is consistent again: from now on this run's entries
    /// are the ones a crash would replay.
    fn ppl_replay_done(&mut self) {
        self.ppl.sb_generation = self.ppl.generation;
        self.ppl.gen_version = self.meta.writer.touch(MetaKey::Superblock);
    }

    pub(crate) fn step_replay(&mut self, id: JobId, job: &mut Job) -> bool {
        let u = job.unit;
        let (n, np, k, chunk, colm) = self.stripe_shape(u);
        let Work::Replay(r) = &mut job.work else {
            unreachable!()
        };
        let (lo, hi) = (r.entry.lo, r.entry.hi);
        match r.phase {
            ReplayPhase::Read => {
                r.phase = ReplayPhase::Fix;
                job.slots = (0..n)
                    .filter(|&c| self.in_sync(colm[c], u))
                    .map(|c| Slot::read(colm[c], u * chunk + lo, hi - lo, c))
                    .collect();
                self.issue(id, job);
                false
            }
            ReplayPhase::Fix => {
                r.phase = ReplayPhase::Done;
                let bytes = (hi - lo) as usize * SECTOR;
                let mut cols: Vec<Option<Vec<u8>>> = vec![None; n];
                let mut reseal = Vec::new();
                for s in job.slots.iter_mut() {
                    // A block whose checksum lags its data (torn by the crash) is taken
                    // as it lies — old or new per sector, like the rest of the stripe —
                    // and written back so its checksum matches again (the resync that
                    // would re-seal it skips a stripe with a data column lost).
                    if s.res == Some(Err(Fail::Checksum)) && s.tag < k {
                        reseal.push(s.tag);
                    }
                    if matches!(s.res, Some(Ok(())) | Some(Err(Fail::Checksum))) {
                        cols[s.tag] = Some(std::mem::take(&mut s.data));
                    }
                }
                job.slots.clear();
                let lost: Vec<usize> = (0..k).filter(|&c| cols[c].is_none()).collect();
                let p = cols[k].take();
                let mut data: Vec<Vec<u8>> = cols[..k]
                    .iter_mut()
                    .map(|c| c.take().unwrap_or_else(|| vec![0; bytes]))
                    .collect();
                match (lost.as_slice(), &p) {
                    ([], Some(p)) if reseal.len() == 1 => {
                        // One block failed its checksum: torn by the crash, or a silent
                        // flip. Rebuilt from the log it may prove itself against the
                        // stored checksums (then it is healed); else it is taken as it
                        // lies.
                        let c = reseal[0];
                        let mut alt = data.clone();
                        for row in lo..hi {
                            fill_row(&r.entry, chunk, row, &mut alt, c, p);
                        }
                        let m = colm[c];
                        if self.csum_proves(m, u * chunk + lo, (hi - lo) as u32, &alt[c]) {
                            data = alt;
                            r.healed = Some(c);
                        }
                    }
                    ([], _) => {}
                    (&[j], Some(p)) => {
                        let mut bad: Option<(u64, u64)> = None;
                        let mut report = Vec::new();
                        for row in lo..hi {
                            if fill_row(&r.entry, chunk, row, &mut data, j, p) {
                                continue;
                            }
                            match bad.as_mut() {
                                Some(b) if b.1 == row => b.1 += 1,
                                _ => {
                                    report.extend(bad);
                                    bad = Some((row, row + 1));
                                }
                            }
                        }
                        report.extend(bad);
                        // Rebuilt as the write's own data: it completed before the
                        // crash (its slot not yet reused), nothing was lost.
                        if r.entry.col_crcs.get(j) == Some(&crc32c::crc32c(&data[j])) {
                            report.clear();
                        }
                        let base = (u * k as u64 + j as u64) * chunk;
                        for (a, b) in report {
                            self.counters.ppl_indeterminate_sectors += b - a;
                            self.io.events.push_back(Event::InterruptedWriteLost {
                                offset: base + a,
                                sectors: b - a,
                            });
                        }
                    }
                    // Beyond what the log covers (two data columns lost, or P unread):
                    // the stripe stays as it lies.
                    _ => return false,
                }
                self.counters.ppl_replayed += 1;
                for c in reseal {
                    if self.writable(colm[c]) {
                        job.slots
                            .push(Slot::write(colm[c], u * chunk + lo, data[c].clone(), c));
                    }
                }
                let refs: Vec<&[u8]> = data.iter().map(|d| &d[..]).collect();
                let (np_, nq) = gf::syndromes(&refs, np, bytes);
                for (c, d) in (k..n).zip([Some(np_), nq]) {
                    let m = colm[c];
                    if self.writable(m) && self.in_sync(m, u) {
                        job.slots
                            .push(Slot::write(m, u * chunk + lo, d.expect("parity"), c));
                    }
                }
                self.issue(id, job);
                false
            }
            ReplayPhase::Done => {
                let healed = r.healed;
                for s in &job.slots {
                    if s.op != MemberOp::Write {
                        continue;
                    }
                    if !s.ok() {
                        self.fail_member_internal(s.member);
                    } else if healed == Some(s.tag) {
                        self.note_healed(s.member, s.off, s.sectors, Fail::Checksum);
                    }
                }
                self.ppl.replaying -= 1;
                if self.ppl.replaying == 0 {
                    self.ppl_replay_done();
                }
                true
            }
        }
    }
}
