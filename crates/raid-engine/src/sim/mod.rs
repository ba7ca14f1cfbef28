//! Deterministic fault simulator: the real engine (through `Concat`) against virtual
//! members with latencies, media errors, loss and return, slow members, silent bit flips,
//! torn writes and whole-appliance crashes (restart = assemble from member bytes only).
//! A reference model checks every read. Same seed → same run.

pub mod cli;
mod member;
mod model;
mod rng;
mod taint;

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::fastmap::FastMap as HashMap;

use crate::assembly::{assemble, AssemblyInput};
use crate::concat::Concat;
use crate::config::{ArrayConfig, MemberSpec};
use crate::engine::{Engine, Tunables};
use crate::layout::Level;
use crate::superblock::{SB_OFFSET, SB_SECTORS};
use crate::types::*;
pub use member::VMember;
// The deterministic RNG and sector hash, shared with the whole-appliance simulator.
use model::{Model, PendingWrite};
pub use rng::{hash_sector, Rng};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimLayout {
    Raid0,
    Raid1,
    Raid10,
    Raid5,
    Raid6,
    /// A RAID 1 and a RAID 5 concatenated.
    Concat,
}

impl std::str::FromStr for SimLayout {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "raid0" => SimLayout::Raid0,
            "raid1" => SimLayout::Raid1,
            "raid10" => SimLayout::Raid10,
            "raid5" => SimLayout::Raid5,
            "raid6" => SimLayout::Raid6,
            "concat" => SimLayout::Concat,
            _ => {
                return Err(format!(
                    "unknown layout {s}: raid0|raid1|raid10|raid5|raid6|concat"
                ))
            }
        })
    }
}

impl std::fmt::Display for SimLayout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SimLayout::Raid0 => "raid0",
            SimLayout::Raid1 => "raid1",
            SimLayout::Raid10 => "raid10",
            SimLayout::Raid5 => "raid5",
            SimLayout::Raid6 => "raid6",
            SimLayout::Concat => "concat",
        })
    }
}

/// One run, of this simulator or of the whole-appliance one (which takes the same
/// configuration and command line, [`cli`]).
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub layout: SimLayout,
    pub seed: u64,
    /// Operations before the final check.
    pub ops: u64,
    /// Arrays keep CRC32C checksums (and then take silent bit flips).
    pub integrity: bool,
    pub faults: bool,
    /// The appliance simulator picks an appliance crash for half of its faults (the
    /// write-hole campaign: crash, then a member lost before the restart).
    pub crash_focus: bool,
}

impl SimConfig {
    /// Odd seeds run with integrity checksums on.
    pub fn new(layout: SimLayout, seed: u64, ops: u64) -> SimConfig {
        SimConfig {
            layout,
            seed,
            ops,
            integrity: seed % 2 == 1,
            faults: true,
            crash_focus: false,
        }
    }

    /// The command-line arguments ([`cli::Options`]) that select this run again.
    pub fn args(&self) -> String {
        format!(
            "--layout {} --seed {} --ops {} {}{}{}",
            self.layout,
            self.seed,
            self.ops,
            if self.integrity {
                "--integrity"
            } else {
                "--no-integrity"
            },
            if self.faults { "" } else { " --no-faults" },
            if self.crash_focus { " --crashes" } else { "" }
        )
    }
}

/// Requests the virtual client keeps in flight.
const QUEUE_DEPTH: usize = 8;

/// What the virtual clients did, counted alike by this simulator and the
/// whole-appliance one.
#[derive(Clone, Debug, Default)]
pub struct ClientOps {
    /// Operations answered (reads, writes, flushes).
    pub ops: u64,
    pub reads: u64,
    pub writes: u64,
    pub flushes: u64,
    /// Errors answered where the model allowed them (beyond redundancy).
    pub allowed_errors: u64,
}

#[derive(Clone, Debug, Default)]
pub struct SimStats {
    pub client: ClientOps,
    pub crashes: u64,
    pub clean_restarts: u64,
    pub member_losses: u64,
    pub transient_losses: u64,
    /// RAID 6: a second member lost while the first was still out.
    pub double_losses: u64,
    /// A member lost while the appliance was down after a crash (the write hole's case).
    pub crash_losses: u64,
    /// Sectors of interrupted writes the log replay could not pin to old or new.
    pub indeterminate_sectors: u64,
    pub re_adds: u64,
    pub spare_takeovers: u64,
    pub rebuilds_finished: u64,
    pub resyncs_finished: u64,
    pub scrubs: u64,
    pub bad_ranges: u64,
    pub bit_flips: u64,
    /// Flips with integrity off (nothing checks them; see `taint.rs`).
    pub silent_flips: u64,
    /// Reads that returned a silent flip (the model allowed it: it says so).
    pub flips_returned: u64,
    /// Silent flips a repair scrub undid (any on parity; on RAID 6 data too, the
    /// column located from P and Q).
    pub flips_corrected: u64,
    /// Silent flips on data a repair scrub could not undo (RAID 5 and mirrors cannot
    /// tell which copy is wrong; on RAID 6 a write moved the flip into parity): the
    /// sector is unknown until rewritten.
    pub flips_left: u64,
    pub corrected_read_errors: u64,
    pub checksum_repairs: u64,
    pub virtual_ns: u64,
}

struct ArraySim {
    members: Vec<VMember>,
    uuid: [u8; 16],
    data_offset: u64,
    next_uuid: u8,
    /// A fault of this array is being healed; no new fault until calm.
    spares_wanted: usize,
}

struct Outstanding {
    op: VolumeOp,
    offset: u64,
    sectors: u64,
    expected: Vec<Vec<u64>>,
    pw: Option<PendingWrite>,
    errors_ok: bool,
}

struct World {
    cfg: SimConfig,
    rng: Rng,
    now: u64,
    vol: Concat,
    arrays: Vec<ArraySim>,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    pending: HashMap<u64, (usize, MemberIo)>,
    seq: u64,
    model: Model,
    outstanding: HashMap<RequestId, Outstanding>,
    next_req: RequestId,
    stats: SimStats,
    transient: Vec<(usize, MemberIndex, u64)>,
    last_write_end: u64,
    next_fault_op: u64,
    fault_since_op: u64,
    taints: taint::Taints,
    /// Volume sectors an interrupted write covered at the last crash: the only ones the
    /// log replay may report as lost.
    interrupted: std::collections::HashSet<u64>,
}

const MEMBER_DATA_SECTORS: u64 = 8192;

fn tunables() -> Tunables {
    Tunables {
        gather_ns: 500_000,
        gather_max_stripes: 16,
        bitmap_clear_ns: 20_000_000,
        idle_ns: 2_000_000,
        sync_window: 4,
        rebuild_retry_ns: 5_000_000,
    }
}

fn uuid(array: usize, n: u8, seed: u64) -> [u8; 16] {
    let mut u = [0u8; 16];
    u[..8].copy_from_slice(&seed.to_le_bytes());
    u[8] = array as u8;
    u[9] = n;
    u[15] = 0xA5;
    u
}

impl World {
    fn new(cfg: SimConfig) -> Result<World, String> {
        let mut rng = Rng::new(cfg.seed);
        let levels: Vec<(Level, usize)> = match cfg.layout {
            SimLayout::Raid0 => vec![(Level::Raid0, 3)],
            SimLayout::Raid1 => vec![(Level::Raid1, 2 + rng.below(2) as usize)],
            SimLayout::Raid10 => vec![(Level::Raid10, 4)],
            SimLayout::Raid5 => vec![(Level::Raid5, 4)],
            SimLayout::Raid6 => vec![(Level::Raid6, 4 + rng.below(3) as usize)],
            SimLayout::Concat => vec![(Level::Raid1, 2), (Level::Raid5, 3)],
        };
        let chunk = [8u32, 16, 64][rng.below(3) as usize];
        let mut engines = Vec::new();
        let mut arrays = Vec::new();
        for (ai, &(level, n)) in levels.iter().enumerate() {
            // One seed in four keeps md's resync policy (no log): its crashes stay
            // away from degraded parity arrays, the write hole it leaves open.
            let ppl = level.parity() > 0 && cfg.seed % 4 != 2;
            // The log takes up to 32 × (4 KiB + chunk) ahead of the data: 1 MiB more.
            let size = MEMBER_DATA_SECTORS + 2048 * (1 + ppl as u64) + rng.below(2) * 64;
            let specs: Vec<MemberSpec> = (0..n)
                .map(|i| MemberSpec {
                    uuid: uuid(ai, i as u8, cfg.seed),
                    size_sectors: size,
                    shelf: Some(i as u32),
                })
                .collect();
            let mut ac =
                ArrayConfig::new(&format!("sim{ai}"), uuid(ai, 200, cfg.seed), level, specs);
            ac.chunk_sectors = chunk;
            ac.integrity = cfg.integrity;
            ac.assume_clean = rng.chance(0.5);
            ac.ppl = ppl;
            let unit = chunk as u64 * n.saturating_sub(level.parity()).max(1) as u64;
            ac.bitmap_region_sectors = unit * (1 + rng.below(16));
            // Half the arrays start without a spare so a returning member gets its own
            // slot back (re-add) instead of finding a spare in it.
            let spares = if level == Level::Raid0 {
                0
            } else {
                rng.below(2) as usize
            };
            for s in 0..spares {
                ac.spares.push(MemberSpec {
                    uuid: uuid(ai, 100 + s as u8, cfg.seed),
                    size_sectors: size,
                    shelf: Some(99),
                });
            }
            let mut e = Engine::create(&ac).map_err(|e| format!("create: {e}"))?;
            e.set_tunables(tunables());
            e.set_sync_rates(20_000, 2_000_000);
            let data_offset = crate::config::MetaLayout::compute(
                level,
                n,
                chunk,
                size,
                ac.bitmap_region_sectors,
                cfg.integrity,
                ac.ppl,
            )
            .data_offset;
            let members = (0..n + spares)
                .map(|_| VMember::new(size, 50_000, 150_000))
                .collect();
            arrays.push(ArraySim {
                members,
                uuid: ac.array_uuid,
                data_offset,
                next_uuid: 110,
                spares_wanted: 0,
            });
            engines.push(e);
        }
        let vol = Concat::new(engines);
        let model = Model::zeroed(vol.volume_sectors());
        let next_fault_op = 500 + rng.below(2000);
        Ok(World {
            cfg,
            rng,
            now: 0,
            vol,
            arrays,
            queue: BinaryHeap::new(),
            pending: HashMap::default(),
            seq: 0,
            model,
            outstanding: HashMap::default(),
            next_req: 1,
            stats: SimStats::default(),
            transient: Vec::new(),
            last_write_end: 0,
            next_fault_op,
            fault_since_op: 0,
            taints: taint::Taints::default(),
            interrupted: Default::default(),
        })
    }

    fn level(&self, a: usize) -> Level {
        self.vol.arrays()[a].geometry().level
    }

    fn beyond_redundancy_possible(&self) -> bool {
        (0..self.arrays.len()).any(|a| {
            self.level(a) == Level::Raid0 && self.arrays[a].members.iter().any(|m| !m.healthy())
        })
    }

    // ---- the I/O loop ----

    fn schedule_outputs(&mut self) {
        while let Some((a, io)) = self.vol.poll_member_io() {
            let m = &self.arrays[a].members[io.member];
            let t = self.now + m.latency(&mut self.rng);
            self.seq += 1;
            self.queue.push(Reverse((t, self.seq)));
            self.pending.insert(self.seq, (a, io));
        }
    }

    fn deliver(&mut self, seq: u64) {
        let Some((a, io)) = self.pending.remove(&seq) else {
            return;
        };
        let result = self.arrays[a].members[io.member].serve(&io);
        self.vol.complete_member_io(a, io.id, result);
    }

    /// One step of virtual time: the next member completion, or a timer. Every
    /// engine invariant is checked after it.
    fn advance(&mut self) -> Result<(), String> {
        self.schedule_outputs();
        if let Some(Reverse((t, seq))) = self.queue.pop() {
            self.now = self.now.max(t);
            self.deliver(seq);
        } else {
            let t = self
                .vol
                .poll_timeout()
                .unwrap_or(self.now + 1_000_000)
                .max(self.now + 10_000);
            self.now = t.min(self.now + 5_000_000);
        }
        self.vol.tick(self.now);
        self.schedule_outputs();
        self.vol.check_invariants()
    }

    fn submit(&mut self, op: VolumeOp, offset: u64, sectors: u64) {
        let id = self.next_req;
        self.next_req += 1;
        let errors_ok = self.beyond_redundancy_possible();
        let (data, pw, expected) = match op {
            VolumeOp::Write => {
                let mut d = vec![0u8; sectors as usize * SECTOR];
                self.rng.fill(&mut d);
                let pw = self.model.write(offset, &d);
                self.taints.written(offset, sectors);
                (d, Some(pw), Vec::new())
            }
            VolumeOp::Read => (Vec::new(), None, self.model.snapshot(offset, sectors)),
            VolumeOp::Flush => (Vec::new(), None, Vec::new()),
        };
        self.outstanding.insert(
            id,
            Outstanding {
                op,
                offset,
                sectors,
                expected,
                pw,
                errors_ok,
            },
        );
        self.vol.submit(VolumeRequest {
            id,
            op,
            offset,
            sectors: sectors as u32,
            data,
        });
    }

    fn random_request(&mut self) {
        let vs = self.vol.volume_sectors();
        let r = self.rng.below(100);
        if r < 2 {
            self.stats.client.flushes += 1;
            self.submit(VolumeOp::Flush, 0, 0);
            return;
        }
        let len = match self.rng.below(10) {
            0 => 1 + self.rng.below(256),
            1..=3 => 8,
            4 => 16,
            _ => 1 + self.rng.below(32),
        }
        .min(vs);
        let write = r < 50;
        let offset = if write && self.rng.chance(0.35) && self.last_write_end + len <= vs {
            self.last_write_end
        } else {
            self.rng.below(vs - len + 1)
        };
        if write {
            self.last_write_end = offset + len;
            self.stats.client.writes += 1;
            self.submit(VolumeOp::Write, offset, len);
        } else {
            self.stats.client.reads += 1;
            self.submit(VolumeOp::Read, offset, len);
        }
    }

    fn collect(&mut self) -> Result<(), String> {
        while let Some(c) = self.vol.poll_completion() {
            let Some(o) = self.outstanding.remove(&c.id) else {
                return Err(format!("completion for unknown request {}", c.id));
            };
            self.stats.client.ops += 1;
            let errors_ok = o.errors_ok || self.beyond_redundancy_possible();
            match (o.op, c.result) {
                (VolumeOp::Read, Ok(d)) => {
                    if d.len() != o.sectors as usize * SECTOR {
                        return Err(format!(
                            "read of {} sectors returned {} bytes",
                            o.sectors,
                            d.len()
                        ));
                    }
                    let taints = &self.taints;
                    let checked = self
                        .model
                        .check_read(o.offset, &o.expected, &d, |v| taints.covers(v));
                    match checked {
                        Ok(returned) => self.stats.flips_returned += returned,
                        Err(e) => {
                            return Err(format!(
                                "read {}+{}: {e}\n  {}",
                                o.offset,
                                o.sectors,
                                self.explain(o.offset)
                            ));
                        }
                    }
                }
                (_, Ok(_)) => {}
                (op, Err(e)) => {
                    if !errors_ok {
                        return Err(format!(
                            "{op:?} {}+{} failed within redundancy: {e}\n  {}",
                            o.offset,
                            o.sectors,
                            self.explain(o.offset)
                        ));
                    }
                    self.stats.client.allowed_errors += 1;
                    if op == VolumeOp::Write {
                        self.model.failed(o.offset, o.sectors);
                    }
                }
            }
        }
        while let Some((a, ev)) = self.vol.poll_event() {
            match ev {
                Event::SpareActive { .. } => self.stats.spare_takeovers += 1,
                Event::ReAdded { .. } => self.stats.re_adds += 1,
                Event::RebuildFinished { .. } => self.stats.rebuilds_finished += 1,
                Event::ResyncFinished => self.stats.resyncs_finished += 1,
                Event::ScrubStarted { repair: true } => self.taints.repair_started(a),
                Event::ScrubFinished { repair, .. } => {
                    self.stats.scrubs += 1;
                    if repair {
                        let level = self.level(a);
                        let r = self.taints.repair_finished(a, level, &mut self.model);
                        self.stats.flips_corrected += r.corrected;
                        self.stats.flips_left += r.left;
                    }
                }
                Event::CorrectedReadError { .. } => self.stats.corrected_read_errors += 1,
                Event::ChecksumRepaired { .. } => self.stats.checksum_repairs += 1,
                Event::InterruptedWriteLost { offset, sectors } => {
                    self.interrupted_lost(a, offset, sectors)?
                }
                Event::ArrayFailed if self.level(a) != Level::Raid0 => {
                    return Err(format!("array {a} failed within redundancy"));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The log replay could not tell old from new on a lost member: allowed only for
    /// sectors an interrupted (never acknowledged) write covered; they may now read as
    /// anything, reads already waiting included.
    fn interrupted_lost(&mut self, a: usize, offset: u64, sectors: u64) -> Result<(), String> {
        let base: u64 = self.vol.arrays()[..a]
            .iter()
            .map(|e| e.volume_sectors())
            .sum();
        let (s, e) = (base + offset, base + offset + sectors);
        if let Some(bad) = (s..e).find(|x| !self.interrupted.contains(x)) {
            return Err(format!(
                "log replay gave up sector {bad}, which no interrupted write covered\n  {}",
                self.explain(bad)
            ));
        }
        self.stats.indeterminate_sectors += sectors;
        self.model.failed(s, sectors);
        for o in self.outstanding.values_mut() {
            for x in s.max(o.offset)..e.min(o.offset + o.sectors) {
                o.expected[(x - o.offset) as usize].clear();
            }
        }
        Ok(())
    }

    /// Every member still there is whole (no latent damage, not away for a while): a
    /// crash plus one member loss is then the only fault.
    fn whole(&self, a: usize) -> bool {
        self.arrays[a]
            .members
            .iter()
            .filter(|m| m.alive)
            .all(|m| m.healthy())
            && !self.transient.iter().any(|t| t.0 == a)
            && self.vol.arrays()[a].status().state != ArrayState::Failed
    }

    /// Role slots of array `a` not in sync (members out or rebuilding, slots empty).
    fn out_of_sync(&self, a: usize) -> usize {
        let st = self.vol.arrays()[a].status();
        st.members
            .iter()
            .filter(|m| m.role.is_some() && m.state != MemberState::Active)
            .count()
            + (st.raid_disks - st.members.iter().filter(|m| m.role.is_some()).count())
    }

    /// Where a volume sector lives and what the members hold there (failure reports).
    fn explain(&self, vol_sector: u64) -> String {
        let mut base = 0;
        for (a, e) in self.vol.arrays().iter().enumerate() {
            let vs = e.volume_sectors();
            if vol_sector < base + vs {
                let g = e.geometry();
                let v = vol_sector - base;
                let (m, ms) = g.map(v);
                let off = self.arrays[a].data_offset;
                let (u, _) = g.unit_of(v);
                let mut out = format!("array {a} unit {u} -> member {m} sector {} ; ", off + ms);
                let row_off = ms % g.chunk_u64();
                let row = ms / g.chunk_u64();
                for (i, mem) in self.arrays[a]
                    .members
                    .iter()
                    .enumerate()
                    .take(g.members + 2)
                {
                    let s = off + row * g.chunk_u64() + row_off;
                    if let Some(d) = mem.read(s, 1) {
                        out += &format!("m{i}:{:016x} ", rng::hash_sector(&d));
                    }
                }
                out += &format!(
                    "status {:?}",
                    e.status()
                        .members
                        .iter()
                        .map(|m| (m.index, m.role, m.state))
                        .collect::<Vec<_>>()
                );
                return out;
            }
            base += vs;
        }
        String::new()
    }

    // ---- faults ----

    /// No fault being healed, every slot in sync — and that state on the superblocks,
    /// since a crash assembles from them (a rebuild that just finished is still a
    /// rebuild on disk until its superblock round lands).
    fn calm(&self, a: usize) -> bool {
        let st = self.vol.arrays()[a].status();
        st.state == ArrayState::Clean
            && self.vol.arrays()[a].superblock_durable()
            && st.sync.is_none()
            && self.arrays[a].members.iter().all(|m| m.healthy())
            && !self.transient.iter().any(|t| t.0 == a)
            && !self.taints.on(a)
            && st
                .members
                .iter()
                .filter(|m| m.role.is_some())
                .all(|m| m.state == MemberState::Active)
    }

    fn active_members(&self, a: usize) -> Vec<MemberIndex> {
        self.vol.arrays()[a]
            .status()
            .members
            .iter()
            .filter(|m| m.state == MemberState::Active && m.role.is_some())
            .map(|m| m.index)
            .collect()
    }

    fn maybe_fault(&mut self) -> Result<(), String> {
        // Returns of transiently lost members.
        let due: Vec<(usize, MemberIndex)> = self
            .transient
            .iter()
            .filter(|t| t.2 <= self.now)
            .map(|t| (t.0, t.1))
            .collect();
        self.transient.retain(|t| t.2 > self.now);
        for (a, m) in due {
            self.arrays[a].members[m].alive = true;
            let _ = self.vol.array_mut(a).member_returned(m);
        }
        // Silent flips wait for a repair scrub started after them.
        for a in self.taints.unscrubbed() {
            let _ = self.vol.array_mut(a).start_scrub(true);
        }
        // Replenish spares consumed by takeovers.
        for a in 0..self.arrays.len() {
            if self.rng.below(64) != 0 {
                continue;
            }
            let st = self.vol.arrays()[a].status();
            let has_spare = st.members.iter().any(|m| m.state == MemberState::Spare);
            if self.level(a) != Level::Raid0 && !has_spare && self.arrays[a].spares_wanted > 0 {
                self.arrays[a].spares_wanted -= 1;
                self.add_spare(a)?;
            }
        }
        // Long-standing latent damage: scrub it away (or, without redundancy, repair it).
        if self.stats.client.ops > self.fault_since_op + 3000 {
            for a in 0..self.arrays.len() {
                let damaged = self.arrays[a]
                    .members
                    .iter()
                    .any(|m| m.alive && (!m.bad.is_empty() || !m.flipped.is_empty()));
                if !damaged {
                    continue;
                }
                if self.level(a) == Level::Raid0 {
                    for m in &mut self.arrays[a].members {
                        m.bad.clear();
                        m.unflip();
                    }
                } else {
                    let _ = self.vol.array_mut(a).start_scrub(true);
                }
            }
            for a in &mut self.arrays {
                for m in &mut a.members {
                    m.slow = 1;
                }
            }
            self.fault_since_op = self.stats.client.ops;
        }
        // A crash while a mirror member is away: it comes back stale at assembly.
        if self.cfg.faults
            && !self.transient.is_empty()
            && (0..self.arrays.len()).all(|a| self.level(a).parity() == 0)
            && self.rng.chance(0.0003)
        {
            return self.crash(false);
        }
        if !self.cfg.faults || self.stats.client.ops < self.next_fault_op {
            return Ok(());
        }
        let a = self.rng.below(self.arrays.len() as u64) as usize;
        if !self.calm(a) {
            return self.second_loss(a);
        }
        self.next_fault_op = self.stats.client.ops + 200 + self.rng.below(1500);
        self.fault_since_op = self.stats.client.ops;
        let level = self.level(a);
        let act = self.active_members(a);
        if act.is_empty() {
            return Ok(());
        }
        let m = act[self.rng.below(act.len() as u64) as usize];
        let redundant = level != Level::Raid0;
        let pick = self.rng.below(10);
        if std::env::var_os("RAID_SIM_TRACE").is_some() {
            eprintln!(
                "op {} t={} fault {pick} array {a} member {m}",
                self.stats.client.ops, self.now
            );
        }
        match pick {
            0 if redundant => {
                // Transient loss: the blade vanishes and comes back.
                self.stats.transient_losses += 1;
                self.arrays[a].members[m].alive = false;
                let back = self.now + 1_000_000 + self.rng.below(30_000_000);
                self.transient.push((a, m, back));
            }
            1 if redundant => {
                self.stats.member_losses += 1;
                self.arrays[a].members[m].alive = false;
                self.arrays[a].spares_wanted += 1;
                if level.parity() == 2 && self.rng.chance(0.5) {
                    // RAID 6: a second member at the same moment, for good or for a while.
                    let others: Vec<MemberIndex> = act.into_iter().filter(|&o| o != m).collect();
                    let o = others[self.rng.below(others.len() as u64) as usize];
                    let permanent = self.rng.chance(0.5);
                    self.lose(a, o, permanent);
                }
            }
            2 | 3 => {
                let start = self.arrays[a].data_offset + self.rng.below(MEMBER_DATA_SECTORS - 16);
                let len = 1 + self.rng.below(16);
                self.arrays[a].members[m].bad.push((start, start + len));
                self.stats.bad_ranges += 1;
            }
            4 | 5 if self.cfg.integrity => {
                let flips = 1 + self.rng.below(4);
                let off = self.arrays[a].data_offset;
                for _ in 0..flips {
                    let s = off + self.rng.below(MEMBER_DATA_SECTORS);
                    if self.arrays[a].members[m].sealed[s as usize / 8] {
                        self.arrays[a].members[m].flip_bit(s, &mut self.rng);
                    }
                }
                self.stats.bit_flips += flips;
            }
            4 | 5 if redundant => self.silent_flip(a, m),
            6 => self.arrays[a].members[m].slow = 20,
            7 => self.crash(false)?,
            8 => self.crash(true)?,
            _ => {
                if self
                    .vol
                    .array_mut(a)
                    .start_scrub(self.rng.chance(0.5))
                    .is_ok()
                {
                    self.fault_since_op = 0;
                }
            }
        }
        Ok(())
    }

    /// Integrity off: one bit of member `m` flips where the array keeps data, and a
    /// repair scrub is asked for. The volume sectors it can reach are tainted until
    /// that scrub has run (`taint.rs`).
    fn silent_flip(&mut self, a: usize, m: MemberIndex) {
        let g = *self.vol.arrays()[a].geometry();
        let Some(slot) = self.vol.arrays()[a].status().members[m].role else {
            return;
        };
        let ms = self.rng.below(g.member_used_sectors());
        let base: u64 = self.vol.arrays()[..a]
            .iter()
            .map(|e| e.volume_sectors())
            .sum();
        let reach: Vec<u64> = match g.level {
            Level::Raid5 | Level::Raid6 => {
                let (row, within, c) = (ms / g.chunk_u64(), ms % g.chunk_u64(), g.chunk_u64());
                (0..g.data_columns() as u64)
                    .map(|col| row * g.unit_sectors() + col * c + within)
                    .collect()
            }
            _ => g.unmap(slot, ms).into_iter().collect(),
        };
        let reach: Vec<u64> = reach
            .into_iter()
            .filter(|&v| v < g.volume_sectors())
            .map(|v| base + v)
            .collect();
        if reach.is_empty() {
            return;
        }
        let data = g.unmap(slot, ms).map(|v| base + v);
        let off = self.arrays[a].data_offset;
        self.arrays[a].members[m].rot(off + ms, &mut self.rng);
        self.taints.add(a, reach, data);
        self.stats.silent_flips += 1;
        let _ = self.vol.array_mut(a).start_scrub(true);
    }

    /// Member `m` of array `a` vanishes: for good (a spare is wanted) or for a while.
    fn lose(&mut self, a: usize, m: MemberIndex, permanent: bool) {
        self.stats.double_losses += 1;
        self.arrays[a].members[m].alive = false;
        if permanent {
            self.stats.member_losses += 1;
            self.arrays[a].spares_wanted += 1;
        } else {
            self.stats.transient_losses += 1;
            let back = self.now + 1_000_000 + self.rng.below(30_000_000);
            self.transient.push((a, m, back));
        }
    }

    /// RAID 6 that lost one member (rebuilding or waiting for a spare) and nothing
    /// else: now and then a second member dies before the first is back.
    fn second_loss(&mut self, a: usize) -> Result<(), String> {
        if self.level(a).parity() < 2 || !self.rng.chance(0.02) {
            return Ok(());
        }
        // After a crash, until the resync has passed, a RAID 6 that lost P's member
        // has Q of the interrupted stripes still to recompute: a second loss then is a
        // crash plus two losses, beyond what the log covers (DESIGN.md).
        if self.vol.arrays()[a].status().state == ArrayState::Resyncing {
            return Ok(());
        }
        let out = self.out_of_sync(a);
        let act = self.active_members(a);
        // Everyone still active must be whole: a third fault is beyond RAID 6.
        let whole = act.iter().all(|&m| self.arrays[a].members[m].healthy());
        if out != 1 || !whole || self.transient.iter().any(|t| t.0 == a) {
            return Ok(());
        }
        self.next_fault_op = self.stats.client.ops + 200 + self.rng.below(1500);
        let m = act[self.rng.below(act.len() as u64) as usize];
        let permanent = self.rng.chance(0.5);
        self.lose(a, m, permanent);
        Ok(())
    }

    fn add_spare(&mut self, a: usize) -> Result<(), String> {
        let size = self.arrays[a].members[0].sectors();
        let n = self.arrays[a].next_uuid;
        self.arrays[a].next_uuid += 1;
        self.arrays[a]
            .members
            .push(VMember::new(size, 50_000, 150_000));
        let idx = self
            .vol
            .array_mut(a)
            .add_spare(MemberSpec {
                uuid: uuid(a, n, self.cfg.seed),
                size_sectors: size,
                shelf: Some(50),
            })
            .map_err(|e| format!("add_spare: {e}"))?;
        if idx != self.arrays[a].members.len() - 1 {
            return Err(format!(
                "spare got index {idx}, expected {}",
                self.arrays[a].members.len() - 1
            ));
        }
        Ok(())
    }

    /// Whole-appliance crash: in-flight member writes land, tear or vanish; the engine is
    /// rebuilt from member bytes alone. `clean`: quiesce first (orderly restart).
    fn crash(&mut self, clean: bool) -> Result<(), String> {
        // Crash + degraded RAID 5/6 is the write hole (DESIGN.md): closed by the log
        // for one member out of sync; without the log (or during the initial resync,
        // whose parity the log cannot vouch for) it is not simulated.
        let parity_unsafe = (0..self.arrays.len()).any(|a| {
            let st = self.vol.arrays()[a].status();
            self.level(a).parity() > 0
                && !self.calm(a)
                && (!st.ppl || st.initial_sync || self.out_of_sync(a) > 1 || !self.whole(a))
        });
        if clean {
            self.quiesce(false)?;
        } else if parity_unsafe {
            return Ok(());
        }
        // The write hole itself: crash, then a member is gone when the appliance
        // starts again.
        let mut lost_at_restart = Vec::new();
        for a in 0..self.arrays.len() {
            let st = self.vol.arrays()[a].status();
            if !clean
                && st.ppl
                && !st.initial_sync
                && self.out_of_sync(a) == 0
                && self.whole(a)
                && self.rng.chance(0.5)
            {
                let act = self.active_members(a);
                if !act.is_empty() {
                    lost_at_restart.push((a, act[self.rng.below(act.len() as u64) as usize]));
                }
            }
        }
        self.interrupted.clear();
        if clean {
            self.stats.clean_restarts += 1;
        } else {
            self.stats.crashes += 1;
        }
        // Member writes in flight.
        let pending: Vec<(usize, MemberIo)> = {
            let mut v: Vec<(u64, u64)> = self.queue.drain().map(|Reverse(x)| x).collect();
            v.sort();
            v.into_iter()
                .filter_map(|(_, s)| self.pending.remove(&s))
                .collect()
        };
        for (a, io) in pending {
            let data_off = self.arrays[a].data_offset;
            let m = &mut self.arrays[a].members[io.member];
            if io.op != MemberOp::Write || !m.alive {
                continue;
            }
            let r = self.rng.below(10);
            let n = io.sectors as u64;
            let keep = if io.offset < data_off {
                if r < 6 {
                    n
                } else {
                    0
                }
            } else if r < 6 {
                n
            } else if r < 8 {
                0
            } else {
                self.rng.below(n + 1)
            };
            m.write(io.offset, &io.data, keep);
            // Whether its checksum landed too is unknown: no flips there.
            for b in io.offset / 8..(io.offset + n).div_ceil(8) {
                m.sealed[b as usize] = false;
            }
        }
        self.pending.clear();
        let out: Vec<Outstanding> = self.outstanding.drain().map(|(_, o)| o).collect();
        for o in out {
            if let Some(pw) = &o.pw {
                self.model.interrupted(pw);
                self.interrupted.extend(o.offset..o.offset + o.sectors);
            }
        }
        // Transiently lost members are back by the time the appliance restarts.
        for (a, m, _) in std::mem::take(&mut self.transient) {
            self.arrays[a].members[m].alive = true;
        }
        for (a, m) in lost_at_restart {
            self.stats.crash_losses += 1;
            self.arrays[a].members[m].alive = false;
            self.arrays[a].spares_wanted += 1;
        }
        let old = std::mem::replace(&mut self.vol, Concat::new(Vec::new()));
        drop(old);
        let mut engines = Vec::new();
        for a in 0..self.arrays.len() {
            let inputs: Vec<AssemblyInput> = self.arrays[a]
                .members
                .iter()
                .enumerate()
                .map(|(i, m)| AssemblyInput {
                    name: format!("a{a}.m{i}"),
                    superblock: if m.alive {
                        m.read(SB_OFFSET, SB_SECTORS).ok_or(MemberError::Io)
                    } else {
                        Err(MemberError::Gone)
                    },
                    size_sectors: m.sectors(),
                })
                .collect();
            let plan = assemble(&inputs, Some(self.arrays[a].uuid), false)
                .map_err(|e| format!("assembly of array {a} after crash: {e}"))?;
            let old_members = std::mem::take(&mut self.arrays[a].members);
            self.arrays[a].members = plan
                .members
                .iter()
                .map(|pm| old_members[pm.input].clone())
                .collect();
            let mut e = Engine::assemble(&plan).map_err(|e| format!("engine assemble: {e}"))?;
            // A slot nobody filled (a member lost while the appliance was down) gets a
            // placeholder member in the engine: mirror it with a dead one.
            let size = self.arrays[a].members[0].sectors();
            while self.arrays[a].members.len() < e.status().members.len() {
                let mut dead = VMember::new(size, 50_000, 150_000);
                dead.alive = false;
                self.arrays[a].members.push(dead);
            }
            e.set_tunables(tunables());
            e.set_sync_rates(20_000, 2_000_000);
            engines.push(e);
        }
        self.vol = Concat::new(engines);
        self.last_write_end = 0;
        Ok(())
    }

    /// Stop submitting and run until nothing is in flight (and, if `settle`, until every
    /// array is calm: synced, clean, no damage).
    fn quiesce(&mut self, settle: bool) -> Result<(), String> {
        let deadline = self.now + 600_000_000_000;
        loop {
            self.collect()?;
            let idle = self.outstanding.is_empty();
            // An orderly shutdown: clean, and every metadata write landed.
            let clean = self
                .vol
                .arrays()
                .iter()
                .all(|e| e.status().clean_on_disk && e.metadata_settled());
            if idle
                && (!settle || (0..self.arrays.len()).all(|a| self.settled(a)))
                && (settle || clean)
            {
                return Ok(());
            }
            if self.now > deadline {
                let st: Vec<_> = self.vol.arrays().iter().map(|e| e.status()).collect();
                return Err(format!(
                    "did not settle: outstanding={} status={st:#?}",
                    self.outstanding.len()
                ));
            }
            if settle {
                self.maybe_fault()?;
            }
            self.advance()?;
        }
    }

    fn settled(&self, a: usize) -> bool {
        let st = self.vol.arrays()[a].status();
        st.sync.is_none()
            && st.state != ArrayState::Resyncing
            && st
                .members
                .iter()
                .filter(|m| m.role.is_some())
                .all(|m| m.state == MemberState::Active)
            && !self.transient.iter().any(|t| t.0 == a)
            && st.members.iter().filter(|m| m.role.is_some()).count() == st.raid_disks
    }

    fn run(&mut self) -> Result<(), String> {
        // Let creation/format finish.
        while !self.vol.arrays().iter().all(|e| e.is_ready()) {
            self.advance()?;
        }
        while self.stats.client.ops < self.cfg.ops {
            self.maybe_fault()?;
            while self.outstanding.len() < QUEUE_DEPTH {
                self.random_request();
            }
            self.advance()?;
            self.collect()?;
        }
        self.final_check()
    }

    /// Heal everything, let the arrays settle, then prove: scrub finds no mismatch
    /// (mirrors equal, parity consistent) and the whole volume reads back as the model.
    fn final_check(&mut self) -> Result<(), String> {
        self.cfg.faults = false;
        for (a, m, _) in std::mem::take(&mut self.transient) {
            self.arrays[a].members[m].alive = true;
            let _ = self.vol.array_mut(a).member_returned(m);
        }
        for a in 0..self.arrays.len() {
            for m in &mut self.arrays[a].members {
                m.slow = 1;
                if self.vol.arrays()[a].geometry().level == Level::Raid0 {
                    m.bad.clear();
                    m.unflip();
                }
            }
            if self.vol.arrays()[a].needs_spare() {
                self.add_spare(a)?;
            }
        }
        self.fault_since_op = 0;
        self.quiesce(true)?;
        for a in 0..self.arrays.len() {
            if self.level(a) == Level::Raid0 {
                continue;
            }
            let before = self.vol.arrays()[a].counters().mismatch_sectors;
            // Repair heals any leftover latent damage; the following check must be clean.
            for repair in [true, false] {
                self.vol
                    .array_mut(a)
                    .start_scrub(repair)
                    .map_err(|e| format!("final scrub: {e}"))?;
                while self.vol.arrays()[a].status().sync.is_some()
                    || self.vol.arrays()[a]
                        .status()
                        .counters
                        .last_scrub_mismatch_sectors
                        == u64::MAX
                {
                    self.advance()?;
                    self.collect()?;
                }
            }
            let st = self.vol.arrays()[a].status();
            let check = st.counters.last_scrub_mismatch_sectors;
            if check != 0 {
                return Err(format!("array {a}: copies/parity inconsistent after settling: {check} mismatched sectors (repair saw {})", st.counters.mismatch_sectors - before));
            }
        }
        let vs = self.vol.volume_sectors();
        let mut off = 0;
        while off < vs {
            let n = 256.min(vs - off);
            self.submit(VolumeOp::Read, off, n);
            off += n;
            while self.outstanding.len() >= QUEUE_DEPTH {
                self.advance()?;
                self.collect()?;
            }
        }
        while !self.outstanding.is_empty() {
            self.advance()?;
            self.collect()?;
        }
        self.stats.virtual_ns = self.now;
        Ok(())
    }
}

/// Run one simulation. On failure the error names the seed and the command that
/// reproduces it.
pub fn run(cfg: &SimConfig) -> Result<SimStats, String> {
    let mut w = World::new(cfg.clone())?;
    match w.run() {
        Ok(()) => Ok(w.stats),
        Err(e) => Err(format!(
            "sim failed: layout={} seed={} after {} ops at t={} ns: {e}\n  reproduce: \
             cargo run -p raid-engine --release --example sim -- {}",
            cfg.layout,
            cfg.seed,
            w.stats.client.ops,
            w.now,
            cfg.args()
        )),
    }
}
