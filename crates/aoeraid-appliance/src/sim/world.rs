//! One simulated run: clients, the real appliance core, blades, two segments and
//! virtual time, stepped from event to event. Faults are drawn from the seed and
//! logged as they happen (the schedule a failure report prints). With the HA
//! pair on (`pair.rs`) two appliances share the blades and take over from each other.

mod pair;

use super::blades::Blade;
use super::boot::{
    self, appliance_of, SimHost, BLADE_SECTORS, EXPORT, GROW_ARRAY, SPARE_GROUP, VOLUME,
};
use super::client::{reply_id, request_id, Answer, Client, ClientOp, Kind};
use super::model::{Outcome, VolumeModel};
use super::wire::{Impair, Port, Wire};
use super::{SimConfig, SimStats};
use crate::config::{Config, MemberAddr};
use crate::core::{ClaimMode, Command, Core, Notice};
use crate::events::EventKind;
use aoe_wire::{Header, Mac, SECTOR_SIZE};
use raid_engine::sim::Rng;
use raid_engine::superblock::{Superblock, SB_BYTES, SB_OFFSET, SB_SECTORS};
use raid_engine::{ArrayState, Engine, Level, MemberState, SECTOR};
use std::collections::HashSet;
use std::time::{Duration, Instant};

const CLIENTS: usize = 3;
const QD: usize = 4;
/// A client command unanswered this long is a liveness failure.
const STUCK_NS: u64 = 120_000_000_000;
const BACKGROUND: Impair = Impair {
    loss: 0.002,
    dup: 0.002,
    reorder: 0.005,
    corrupt: 0.001,
};

/// What an appliance's frames travel through: the segments, the blades' and
/// clients' addresses, a send buffer.
struct Net<'a> {
    now: u64,
    wire: &'a mut Wire,
    rng: &'a mut Rng,
    blades: &'a [Blade],
    clients: &'a mut [Client],
    buf: &'a mut [u8],
    /// ATA replies sent to clients.
    replies: u64,
}

/// A [`Net`] over the world's fields (a macro, so that the core being pumped
/// stays borrowed apart from them).
macro_rules! net {
    ($w:ident) => {
        Net {
            now: $w.now,
            wire: &mut $w.wire,
            rng: &mut $w.rng,
            blades: &$w.blades,
            clients: &mut $w.clients,
            buf: &mut $w.buf,
            replies: 0,
        }
    };
}

/// Something the schedule will do later.
#[derive(Clone, Debug)]
enum Later {
    /// A blade that died comes back, as it was or changed by `Comeback`.
    Revive(usize, Comeback),
    /// A blade the appliance refused is checked unwritten since `writes` and
    /// unplugged; array `String` gets a new blade.
    Unplug(usize, u64, String),
    /// The operator re-adds a member it failed.
    ReAdd(String, MemberAddr),
    /// A blade is plugged in to replace a dead one.
    Plug(String),
    /// The plugged blade is added to the array (or its spare group).
    Add(String, MemberAddr, bool),
    /// A slow blade or a frame-fault burst ends.
    Calm,
    /// The appliance restarts (after a crash or a stop), a member's blade perhaps
    /// missing; the other appliance of the pair starts instead when a claim mode
    /// is given.
    Restart(Option<Away>, Option<ClaimMode>),
    /// The appliance of the pair that lost the blades starts again plainly: it
    /// must refuse.
    PlainStart(usize),
}

/// A member's blade missing when the appliance starts again.
#[derive(Clone, Debug)]
struct Away {
    blade: usize,
    array: String,
    /// Dead for good (a new blade is plugged in later), else back in a few seconds.
    for_good: bool,
    /// A RAID 5/6 member after a crash: the write hole the log closes.
    write_hole: bool,
}

/// What a blade that comes back holds.
#[derive(Clone, Debug)]
enum Comeback {
    /// What it held when it fell silent.
    Same,
    /// What it held, switched on again: it announces itself as a starting vblade does
    /// (a blade the appliance never saw since its start is found no other way).
    PoweredOn,
    /// Another array's superblock (a disk swapped in by mistake): refused.
    Foreign,
    /// An old copy of itself, taken at a clean stop (a restored image): re-added if
    /// the bitmap still marks what it missed, refused as stale otherwise.
    Stale(Vec<u8>),
}

pub(crate) struct World {
    cfg: SimConfig,
    rng: Rng,
    /// Virtual nanoseconds since the start.
    now: u64,
    base: Instant,
    wire: Wire,
    blades: Vec<Blade>,
    /// The active appliance (None while down) and which of the pair it is.
    core: Option<Core>,
    who: usize,
    /// The HA pair: appliances hold their blades by reservation and take over.
    pair: bool,
    /// The old active after a takeover that left it running, until it stops.
    zombie: Option<pair::Zombie>,
    /// The back-end MAC the blades' reserve lists should name (HA pair).
    owner: Option<Mac>,
    config: Config,
    host: SimHost,
    clients: Vec<Client>,
    model: VolumeModel,
    next_id: u64,
    later: Vec<(u64, Later)>,
    /// Faults and commands as they happened.
    pub(crate) log: Vec<String>,
    pub(crate) stats: SimStats,
    next_fault_op: u64,
    grown: bool,
    /// (ops, time) when the op count last moved; when liveness is checked next.
    progress: (u64, u64, u64),
    /// No new faults (the final check).
    healing: bool,
    /// Arrays an operator action or fault is still working on.
    busy_arrays: Vec<String>,
    /// A copy of one blade taken at a clean stop, for stale returns.
    snapshot: Option<(usize, Vec<u8>)>,
    /// Blades that came back with a foreign superblock: never to be re-added.
    foreign: Vec<usize>,
    /// Client writes in flux at the last crash: the only ones whose sectors the
    /// partial-parity log's replay may report lost (`InterruptedWriteLost`).
    interrupted: HashSet<u64>,
    /// Answers to commands answered later (`Notice::Reply`), by ticket.
    replies: Vec<(u64, Result<String, String>)>,
    /// What went wrong while an operator waited for an answer (reported by `step`).
    failed: Option<String>,
    buf: Vec<u8>,
}

impl World {
    pub(crate) fn new(cfg: SimConfig, pair: bool) -> Result<World, String> {
        let mut rng = Rng::new(cfg.seed);
        let integrity = cfg.integrity;
        let config = boot::config(cfg.layout, &mut rng, integrity);
        let mut blades: Vec<Blade> = config
            .members()
            .into_iter()
            .map(|a| Blade::new(a, BLADE_SECTORS))
            .collect();
        let base = Instant::now();
        let (mut pool, now) = boot::discover(&config, &mut blades, 0, base, 0);
        let mut owners = None;
        let mut now = now;
        if pair {
            let all: Vec<MemberAddr> = blades.iter().map(|b| b.addr.clone()).collect();
            let (o, t) = boot::claim(&all, &mut pool, &mut blades, ClaimMode::Plain, base, now)
                .map_err(|held| format!("first start: {held:?}"))?;
            (owners, now) = (Some(o), t);
        }
        let mut host = SimHost(Rng::new(cfg.seed ^ 0x5EED));
        let assume_clean = rng.chance(0.5);
        let mut core = boot::create(&config, 0, pool, &mut host, assume_clean, base + ns(now))?;
        if let Some(o) = owners {
            core.hold_blades(o);
        }
        let mut w = World {
            rng,
            now,
            base,
            wire: Wire::new(),
            blades,
            core: Some(core),
            who: 0,
            pair,
            zombie: None,
            owner: pair.then(|| boot::back_mac(0)),
            host,
            clients: (0..CLIENTS)
                .map(|i| Client::new(i, EXPORT.0, EXPORT.1))
                .collect(),
            model: VolumeModel::zeroed(0),
            next_id: 1,
            later: Vec::new(),
            log: Vec::new(),
            stats: SimStats::default(),
            next_fault_op: 300,
            grown: false,
            progress: (0, 0, 0),
            healing: false,
            busy_arrays: Vec::new(),
            snapshot: None,
            foreign: Vec::new(),
            interrupted: HashSet::new(),
            replies: Vec::new(),
            failed: None,
            buf: vec![0; 9216],
            config,
            cfg,
        };
        if w.cfg.faults {
            w.wire.front = BACKGROUND;
            w.wire.back = BACKGROUND;
        }
        let sectors = w.volume_sectors();
        w.model.grow(sectors);
        w.note(format!(
            "start: {} {}, {} sectors, integrity {}, {}",
            w.cfg.layout,
            w.config.arrays[0].chunk(),
            sectors,
            integrity,
            if assume_clean {
                "assumed clean"
            } else {
                "initial resync"
            }
        ));
        Ok(w)
    }

    fn note(&mut self, what: String) {
        if std::env::var_os("APPLIANCE_SIM_TRACE").is_some() {
            eprintln!(
                "t={:.6}s op {}: {what}",
                self.now as f64 / 1e9,
                self.stats.client.ops
            );
        }
        self.log.push(format!(
            "t={:.6}s op {}: {what}",
            self.now as f64 / 1e9,
            self.stats.client.ops
        ));
    }

    fn at(&self) -> Instant {
        self.base + ns(self.now)
    }

    fn volume_sectors(&self) -> u64 {
        self.core
            .as_ref()
            .and_then(|c| c.volumes().iter().find(|v| v.name == VOLUME))
            .map_or(0, |v| v.concat.volume_sectors())
    }

    // ---- arrays as the core sees them ----

    fn engine(&self, name: &str) -> Option<&Engine> {
        let core = self.core.as_ref()?;
        for v in core.volumes() {
            if let Some(a) = v.arrays.iter().position(|a| a.name == name) {
                return Some(&v.concat.arrays()[a]);
            }
        }
        None
    }

    /// Blades of array `name` in engine order, with their member states.
    fn members(&self, name: &str) -> Vec<(usize, MemberState, bool)> {
        let Some(core) = self.core.as_ref() else {
            return Vec::new();
        };
        for v in core.volumes() {
            if let Some(a) = v.arrays.iter().position(|a| a.name == name) {
                let st = v.concat.arrays()[a].status();
                return st
                    .members
                    .iter()
                    .filter_map(|m| {
                        let addr = &v.arrays[a].member(m.index)?.0;
                        let b = self.blades.iter().position(|b| &b.addr == addr)?;
                        Some((b, m.state, m.role.is_some()))
                    })
                    .collect();
            }
        }
        Vec::new()
    }

    fn level(&self, name: &str) -> Level {
        self.engine(name)
            .map_or(Level::Raid1, |e| e.geometry().level)
    }

    /// Array names of the exported volume.
    fn exported(&self) -> Vec<String> {
        self.core
            .as_ref()
            .and_then(|c| c.volumes().iter().find(|v| v.name == VOLUME))
            .map_or_else(Vec::new, |v| {
                v.arrays.iter().map(|a| a.name.clone()).collect()
            })
    }

    fn all_arrays(&self) -> Vec<String> {
        self.config.arrays.iter().map(|a| a.name.clone()).collect()
    }

    /// Nothing being healed: every slot active and in sync, on the superblocks too,
    /// every blade of it healthy, no fault of it pending.
    fn calm(&self, name: &str) -> bool {
        let Some(e) = self.engine(name) else {
            return false;
        };
        let st = e.status();
        let members = self.members(name);
        st.state == ArrayState::Clean
            && e.superblock_durable()
            && st.sync.is_none()
            && members.iter().filter(|m| m.2).count() == st.raid_disks
            && members
                .iter()
                .filter(|m| m.2)
                .all(|m| m.1 == MemberState::Active && self.blades[m.0].healthy())
            && !self.busy_arrays.iter().any(|a| a == name)
    }

    /// Errors are acceptable: an array of the volume has no redundancy and a
    /// damaged or missing blade.
    fn beyond_redundancy(&self) -> bool {
        self.exported().iter().any(|a| {
            self.level(a) == Level::Raid0
                && self.members(a).iter().any(|m| !self.blades[m.0].healthy())
        })
    }

    // ---- the loop ----

    /// Moves the simulation to the next event and handles everything due.
    fn step(&mut self) -> Result<(), String> {
        self.advance(true)?;
        self.failed.take().map_or(Ok(()), Err)
    }

    /// One step; `run_later`: with the operator's and the faults' due actions
    /// (not while an operator waits for an answer).
    fn advance(&mut self, run_later: bool) -> Result<(), String> {
        self.pump()?;
        let mut next = self.now + 50_000_000;
        if let Some(t) = self.wire.next_at() {
            next = next.min(t);
        }
        if let Some(c) = &self.core {
            // A deadline already past was handled at `now` (an engine may keep one
            // while the work it waits for cannot start): the next event is later.
            let t = c
                .poll_timeout()
                .saturating_duration_since(self.base)
                .as_nanos() as u64;
            if t > self.now {
                next = next.min(t);
            } else {
                next = next.min(self.now + 10_000_000);
            }
        }
        if let Some(z) = &self.zombie {
            let t = z
                .core
                .poll_timeout()
                .saturating_duration_since(self.base)
                .as_nanos() as u64;
            next = next.min(t.max(self.now + 1_000));
        }
        for c in &self.clients {
            if let Some(t) = c.next_deadline() {
                next = next.min(t);
            }
        }
        if let Some(t) = self.later.iter().map(|l| l.0).min() {
            next = next.min(t);
        }
        self.now = next.max(self.now);
        while let Some(f) = self.wire.pop_due(self.now) {
            self.deliver(f.to, f.bytes, f.intact)?;
        }
        let at = self.at();
        for c in self
            .core
            .iter_mut()
            .chain(self.zombie.iter_mut().map(|z| &mut z.core))
        {
            if c.poll_timeout() <= at {
                c.handle_timeout(at);
            }
        }
        if run_later {
            self.run_later()?;
        }
        self.pump()?;
        self.watch_zombie()?;
        self.check_invariants()
    }

    /// Every engine's own invariants (`raid_engine::Concat::check_invariants`).
    fn check_invariants(&self) -> Result<(), String> {
        if let Some(c) = &self.core {
            for v in c.volumes() {
                v.concat
                    .check_invariants()
                    .map_err(|e| format!("volume {}: engine invariant: {e}", v.name))?;
            }
        }
        Ok(())
    }

    fn deliver(&mut self, to: Port, f: Vec<u8>, intact: bool) -> Result<(), String> {
        let at = self.at();
        match to {
            Port::Front(k) => {
                let live = self.serving(k);
                if let Some((mac, tag)) = request_id(&f).filter(|_| intact) {
                    if let Some(c) = self.clients.iter_mut().find(|c| c.mac == mac) {
                        if live {
                            c.arrived(tag, k);
                        } else {
                            c.lost(tag);
                        }
                    }
                }
                let Some(core) = self.core_of(k) else {
                    return Ok(());
                };
                let dropped = |c: &Core| {
                    c.exports().map_or(0, |x| {
                        let n = x.driver().target().counters();
                        n.client_queue_full + n.target_queue_full + n.driver_dropped
                    })
                };
                let before = dropped(core);
                core.handle_front_frame(at, 0, &f);
                if intact && live && dropped(core) != before {
                    // The target refused the copy (its queues were full): it
                    // will never be carried out.
                    self.stats.target_drops += 1;
                    if let Some((mac, tag)) = request_id(&f) {
                        if let Some(c) = self.clients.iter_mut().find(|c| c.mac == mac) {
                            c.answered_copy(tag, k);
                        }
                    }
                }
            }
            Port::Back(k) => {
                if let Some(core) = self.core_of(k) {
                    core.handle_back_frame(at, 0, &f);
                }
            }
            Port::Blade(i) => {
                let trusted = self.core.is_some();
                let writes = self.blades[i].disk.writes;
                let b = &mut self.blades[i];
                if let Some(r) = b.deliver(self.now, &f, trusted) {
                    let delay = (50_000 + self.rng.below(150_000)) * b.slow;
                    let k = Header::parse(&r).ok().and_then(|h| appliance_of(h.dst));
                    let to = Port::Back(k.unwrap_or(self.who));
                    self.wire.send(&mut self.rng, self.now + delay, to, r);
                }
                self.check_holder(i, &f, writes)?;
            }
            Port::Client(i) => {
                if let Some(a) = self.clients[i].receive(&f) {
                    self.answered(i, a)?;
                }
            }
        }
        Ok(())
    }

    /// Moves frames out of the core and the clients until nothing moves.
    fn pump(&mut self) -> Result<(), String> {
        loop {
            let mut moved = false;
            let mut refused = Vec::new();
            let mut lost = Vec::new();
            if let Some(core) = self.core.as_mut() {
                let at = self.base + ns(self.now);
                while let Some(n) = core.poll_notice() {
                    if let Notice::Reply(t, r) = &n {
                        self.replies.push((*t, r.clone()));
                    }
                    if let Notice::Log(_, line) = &n {
                        if std::env::var_os("APPLIANCE_SIM_TRACE").is_some() {
                            eprintln!("t={:.6}s core: {line}", self.now as f64 / 1e9);
                        }
                    }
                    if let Notice::Event(e) = n {
                        self.stats.event(e.kind);
                        let blade = e.member.as_ref().and_then(|m| {
                            self.blades.iter().position(|b| b.addr.to_string() == *m)
                        });
                        if let Some(b) = blade {
                            match e.kind {
                                EventKind::ReAdded if self.foreign.contains(&b) => {
                                    return Err(format!(
                                        "blade {} with a foreign superblock was re-added",
                                        self.blades[b].addr
                                    ));
                                }
                                EventKind::MemberRefused if !self.blades[b].gone => {
                                    refused.push((b, e.array.clone(), e.detail.clone()));
                                }
                                _ => {}
                            }
                        }
                        if e.kind == EventKind::InterruptedWriteLost {
                            lost.push((e.array.clone(), e.detail.clone().unwrap_or_default()));
                        }
                        if e.kind == EventKind::ReservationLost {
                            // Only a takeover takes blades, and the old active is
                            // the zombie: the active never loses one.
                            return Err(format!(
                                "the active appliance lost a blade's reservation: {}",
                                e.detail.unwrap_or_default()
                            ));
                        }
                        if e.kind == EventKind::ArrayFailed {
                            let name = e.array.clone();
                            if self
                                .config
                                .array(&name)
                                .is_none_or(|s| s.level.redundancy() != 0)
                            {
                                return Err(format!("array {name} failed within redundancy"));
                            }
                        }
                    }
                }
                moved |= transmit(core, self.who, at, &mut net!(self));
            }
            let mut notes = Vec::new();
            if let Some(z) = self.zombie.as_mut() {
                let at = self.base + ns(self.now);
                let mut net = net!(self);
                moved |= transmit(&mut z.core, z.who, at, &mut net);
                z.replies += net.replies;
                while let Some(n) = z.core.poll_notice() {
                    match n {
                        Notice::Event(e) if e.kind == EventKind::ReservationLost => {
                            notes.push(format!("old active: {}", e.detail.unwrap_or_default()));
                        }
                        _ => {}
                    }
                }
            }
            for n in notes {
                self.note(n);
            }
            for (array, detail) in lost {
                self.interrupted_lost(&array, &detail)?;
            }
            for (b, array, why) in refused {
                let addr = &self.blades[b].addr;
                self.note(format!("blade {addr} refused: {}", why.unwrap_or_default()));
                // Nothing may be written to it from now on; no operator command of
                // the simulation takes it back (heal and add skip gone blades).
                self.blades[b].gone = true;
                let w = self.blades[b].disk.writes;
                self.later
                    .push((self.now + 1_000_000_000, Later::Unplug(b, w, array)));
            }
            for i in 0..self.clients.len() {
                for (tag, f) in self.clients[i].due(self.now) {
                    moved = true;
                    let dst = Header::parse(&f).map(|h| h.dst).unwrap_or(Mac::BROADCAST);
                    let mut to = vec![appliance_of(dst).unwrap_or(self.who)];
                    if dst == Mac::BROADCAST {
                        to.extend(self.zombie.as_ref().map(|z| z.who));
                    }
                    for k in to {
                        let fate =
                            self.wire
                                .send(&mut self.rng, self.now, Port::Front(k), f.clone());
                        if let Some(tag) = tag {
                            self.clients[i].sent(tag, fate.intact);
                        }
                    }
                }
            }
            self.resolve();
            if !moved {
                return Ok(());
            }
        }
    }

    /// Writes no copy of which can land any more leave the model's flux.
    fn resolve(&mut self) {
        for c in &mut self.clients {
            if !std::mem::take(&mut c.changed) {
                continue;
            }
            let gone: Vec<u32> = c
                .ops
                .iter()
                .filter(|(_, o)| o.gone())
                .map(|(t, _)| *t)
                .collect();
            for t in gone {
                let o = c.ops.remove(&t).expect("listed");
                if o.kind == Kind::Write {
                    let outcome = if o.failed {
                        Outcome::Failed
                    } else {
                        Outcome::Acked
                    };
                    self.model.write_resolved(o.id, o.lba, o.sectors, outcome);
                }
            }
        }
    }

    /// Client `i` got the answer `a`.
    fn answered(&mut self, i: usize, a: Answer) -> Result<(), String> {
        let errors_ok = self.beyond_redundancy();
        let Some(op) = self.clients[i].ops.get_mut(&a.tag) else {
            return Ok(());
        };
        if op.kind == Kind::Identify {
            let sectors = self.clients[i].sectors;
            if sectors != self.model.sectors() {
                return Err(format!(
                    "client {i}: IDENTIFY says {sectors} sectors, the volume has {}",
                    self.model.sectors()
                ));
            }
            return Ok(());
        }
        self.stats.client.ops += 1;
        if !a.ok {
            if !(op.errors_ok || errors_ok) {
                let (kind, lba, n) = (op.kind, op.lba, op.sectors);
                return Err(format!(
                    "client {i}: {kind:?} {lba}+{n} failed within redundancy; {}",
                    self.describe()
                ));
            }
            self.stats.client.allowed_errors += 1;
            op.failed = true;
            if op.kind == Kind::Read {
                self.model.read_abandoned(op.id);
            }
            return Ok(());
        }
        if op.kind == Kind::Read {
            let (id, lba, n) = (op.id, op.lba, op.sectors);
            self.model
                .read_done(id, &a.data)
                .map_err(|e| format!("client {i}: read {lba}+{n}: {e}"))?;
        }
        Ok(())
    }

    /// The arrays' states and their blades' damage, for failure reports.
    fn describe(&self) -> String {
        let mut out = Vec::new();
        for a in self.all_arrays() {
            let st = self.engine(&a).map(|e| e.status().state);
            let ms: Vec<String> = self
                .members(&a)
                .iter()
                .map(|m| {
                    let b = &self.blades[m.0];
                    format!(
                        "{} {:?}{}{}{}",
                        b.addr,
                        m.1,
                        if b.disk.dead { " dead" } else { "" },
                        if b.damaged() { " damaged" } else { "" },
                        if m.2 { "" } else { " no-role" }
                    )
                })
                .collect();
            out.push(format!("{a} {st:?} [{}]", ms.join(", ")));
        }
        out.join("; ")
    }

    /// Clients with room issue new commands.
    fn issue(&mut self) {
        let errors_ok = self.beyond_redundancy();
        for i in 0..self.clients.len() {
            while self.clients[i].ready() && self.clients[i].busy() < QD {
                let c = &self.clients[i];
                let sectors = c.sectors.min(self.model.sectors());
                let max = u64::from(c.max_sectors.clamp(1, 16));
                let r = self.rng.below(100);
                let id = self.next_id;
                self.next_id += 1;
                let mut op = if r < 2 {
                    self.stats.client.flushes += 1;
                    ClientOp::new(Kind::Flush, 0, 0, Vec::new(), id, self.now)
                } else {
                    let n = 1 + self.rng.below(max);
                    // A third of the traffic on a small hot range: overlapping
                    // writes and reads from several clients at once.
                    let span = if self.rng.chance(0.3) {
                        64.min(sectors)
                    } else {
                        sectors
                    };
                    let lba = self.rng.below(span.saturating_sub(n) + 1);
                    let n = n.min(sectors - lba);
                    if r < 50 {
                        self.stats.client.writes += 1;
                        let mut d = vec![0u8; n as usize * SECTOR_SIZE];
                        self.rng.fill(&mut d);
                        self.model.write_issued(id, lba, &d);
                        ClientOp::new(Kind::Write, lba, n, d, id, self.now)
                    } else {
                        self.stats.client.reads += 1;
                        self.model.read_issued(id, lba, n);
                        ClientOp::new(Kind::Read, lba, n, Vec::new(), id, self.now)
                    }
                };
                op.errors_ok = errors_ok;
                self.clients[i].add(op);
            }
        }
    }

    /// A command in flight too long means the appliance lost it; no answer at all
    /// for that long means the clients cannot reach the export.
    fn check_liveness(&mut self) -> Result<(), String> {
        self.check_active_holds()?;
        if self.stats.client.ops != self.progress.0 {
            self.progress = (self.stats.client.ops, self.now, self.progress.2);
        } else if self.now > self.progress.1 + STUCK_NS {
            let cs: Vec<String> = self
                .clients
                .iter()
                .map(|c| {
                    format!(
                        "{}: export {:?}, {} sectors, {} commands",
                        c.mac,
                        c.targets,
                        c.sectors,
                        c.ops.len()
                    )
                })
                .collect();
            return Err(format!("no client command answered for 120s: {cs:?}"));
        }
        for (i, c) in self.clients.iter().enumerate() {
            for o in c.ops.values() {
                if !o.answered && self.now > o.issued_at + STUCK_NS {
                    return Err(format!(
                        "client {i}: {:?} {}+{} unanswered for {}s ({} sends)",
                        o.kind,
                        o.lba,
                        o.sectors,
                        (self.now - o.issued_at) / 1_000_000_000,
                        o.sends
                    ));
                }
            }
        }
        Ok(())
    }

    // ---- faults and operator commands ----

    fn run_later(&mut self) -> Result<(), String> {
        let due: Vec<Later> = {
            let now = self.now;
            let mut d = Vec::new();
            self.later.retain(|(t, l)| {
                if *t <= now {
                    d.push(l.clone());
                    false
                } else {
                    true
                }
            });
            d
        };
        for l in due {
            match l {
                Later::Revive(b, how) => self.revive(b, how),
                Later::Unplug(b, writes, array) => self.unplug(b, writes, &array)?,
                Later::ReAdd(array, member) => {
                    let r = self.command(Command::ReAdd {
                        array: array.clone(),
                        member,
                    });
                    if r.is_err() {
                        // Not taken back (e.g. a crash in between): the final heal adds it.
                    }
                    self.busy_arrays.retain(|a| a != &array);
                }
                Later::Plug(array) => {
                    let n = self.blades.len();
                    let addr = MemberAddr::Blade {
                        shelf: 40 + n as u16,
                        slot: 0,
                    };
                    let b = Blade::new(addr.clone(), BLADE_SECTORS);
                    let ann = b.disk.announce();
                    self.blades.push(b);
                    self.announce(ann);
                    self.note(format!("blade {addr} plugged in"));
                    let to_group = self.rng.chance(0.5)
                        && self
                            .config
                            .array(&array)
                            .is_some_and(|s| s.spare_group.is_some());
                    self.later
                        .push((self.now + 500_000_000, Later::Add(array, addr, to_group)));
                }
                Later::Add(array, member, to_group) => {
                    let cmd = if to_group {
                        Command::SpareAdd {
                            group: SPARE_GROUP.into(),
                            member: member.clone(),
                            force: false,
                        }
                    } else {
                        Command::Add {
                            array: array.clone(),
                            member: member.clone(),
                            force: false,
                        }
                    };
                    if self.operator_add(cmd).is_err() && self.core.is_some() {
                        // Not found (its one announcement lost on the wire): the
                        // operator restarts its vblade, which announces again.
                        if let Some(b) = self.blades.iter().find(|b| b.addr == member) {
                            let ann = b.disk.announce();
                            self.announce(ann);
                        }
                        self.later.push((
                            self.now + 1_000_000_000,
                            Later::Add(array.clone(), member, to_group),
                        ));
                    } else {
                        self.busy_arrays.retain(|a| a != &array);
                    }
                }
                Later::Calm => {
                    for b in &mut self.blades {
                        b.slow = 1;
                    }
                    if self.cfg.faults && !self.healing {
                        self.wire.front = BACKGROUND;
                        self.wire.back = BACKGROUND;
                    }
                }
                Later::Restart(away, other) => self.restart(away, other)?,
                Later::PlainStart(k) => self.plain_start(k)?,
            }
        }
        Ok(())
    }

    fn command(&mut self, cmd: Command) -> Result<String, String> {
        let Some(core) = self.core.as_mut() else {
            return Err("appliance down".into());
        };
        let at = self.base + ns(self.now);
        let text = format!("{cmd:?}");
        // The simulated appliance holds no reservations: `add` and `spare-add`
        // wait only for the read of what their blade carries.
        let r = match core.command(at, &mut self.host, cmd) {
            crate::core::Answer::Now(r) => r,
            crate::core::Answer::Later(t) => self.await_reply(t),
        };
        self.stats.commands += 1;
        self.note(format!("command {text}: {r:?}"));
        r
    }

    /// The operator waits for the answer of a command answered later; the world
    /// moves on meanwhile (without new operator actions).
    fn await_reply(&mut self, ticket: u64) -> Result<String, String> {
        for _ in 0..100_000 {
            if let Some(i) = self.replies.iter().position(|r| r.0 == ticket) {
                return self.replies.remove(i).1;
            }
            if self.core.is_none() || self.failed.is_some() {
                break;
            }
            if let Err(e) = self.advance(false) {
                self.failed = Some(e);
            }
        }
        Err(format!("command (ticket {ticket}) not answered"))
    }

    /// `add` or `spare-add` as an operator types it: refused because the blade
    /// carries a superblock or label (the reply says which, and how to override),
    /// the operator — who picked this blade on purpose — repeats it with `--force`.
    fn operator_add(&mut self, cmd: Command) -> Result<String, String> {
        let r = self.command(cmd.clone());
        let forced = match (&r, cmd) {
            (Err(e), Command::Add { array, member, .. }) if e.contains("--force") => Command::Add {
                array,
                member,
                force: true,
            },
            (Err(e), Command::SpareAdd { group, member, .. }) if e.contains("--force") => {
                Command::SpareAdd {
                    group,
                    member,
                    force: true,
                }
            }
            _ => return r,
        };
        self.stats.forced_adds += 1;
        self.command(forced)
    }

    fn maybe_fault(&mut self) -> Result<(), String> {
        if !self.cfg.faults || self.healing || self.core.is_none() {
            return Ok(());
        }
        if self.stats.client.ops < self.next_fault_op {
            return Ok(());
        }
        // Long-standing damage of arrays without redundancy is repaired by hand.
        for a in self.all_arrays() {
            if self.level(&a) == Level::Raid0 {
                for m in self.members(&a) {
                    self.blades[m.0].repair();
                }
            }
        }
        let arrays: Vec<String> = self
            .all_arrays()
            .into_iter()
            .filter(|a| self.exported().contains(a) || a == GROW_ARRAY)
            .collect();
        let a = arrays[self.rng.below(arrays.len() as u64) as usize].clone();
        if !self.calm(&a) && self.level(&a) != Level::Raid0 {
            // Heal one thing at a time; long damage is scrubbed away.
            if self.stats.client.ops > self.next_fault_op + 20_000 {
                self.next_fault_op = self.stats.client.ops + 500;
                let _ = self.command(Command::Scrub {
                    array: a,
                    repair: true,
                });
            }
            return Ok(());
        }
        self.next_fault_op = self.stats.client.ops + 300 + self.rng.below(1500);
        let redundant = self.level(&a) != Level::Raid0;
        let members: Vec<usize> = self
            .members(&a)
            .iter()
            .filter(|m| m.2 && m.1 == MemberState::Active)
            .map(|m| m.0)
            .collect();
        if members.is_empty() {
            return Ok(());
        }
        if self.pair && self.rng.chance(0.25) {
            return self.takeover();
        }
        let b = members[self.rng.below(members.len() as u64) as usize];
        let baddr = self.blades[b].addr.to_string();
        // The write-hole campaign draws one more number, so other seeds keep their
        // schedules.
        let pick = if self.cfg.crash_focus && self.rng.chance(0.5) {
            8
        } else {
            self.rng.below(12)
        };
        match pick {
            0 if redundant => {
                let back = 200_000_000 + self.rng.below(4_000_000_000);
                self.blades[b].disk.dead = true;
                let how = match &self.snapshot {
                    Some((s, copy)) if *s == b && self.rng.chance(0.5) => {
                        Comeback::Stale(copy.clone())
                    }
                    _ if self.rng.chance(0.1) => Comeback::Foreign,
                    _ => Comeback::Same,
                };
                self.later.push((self.now + back, Later::Revive(b, how)));
                self.note(format!(
                    "blade {baddr} of {a} silent for {}ms",
                    back / 1_000_000
                ));
            }
            1 if redundant => {
                self.kill_for_good(&a, b);
                if self.level(&a).parity() == 2 && self.rng.chance(0.75) {
                    // RAID 6: a second blade of the array goes with it.
                    let others: Vec<usize> = members.into_iter().filter(|&m| m != b).collect();
                    let b2 = others[self.rng.below(others.len() as u64) as usize];
                    self.stats.double_failures += 1;
                    self.kill_for_good(&a, b2);
                }
            }
            2 | 3 => {
                if let Some((off, size)) = self.data_area(b) {
                    let start = off + self.rng.below(size - 16);
                    let len = 1 + self.rng.below(16);
                    self.blades[b].disk.bad.push((start, start + len));
                    self.stats.media_errors += 1;
                    self.note(format!("blade {baddr} of {a}: media error {start}+{len}"));
                }
            }
            4 | 5 if self.cfg.integrity => {
                if let Some((off, size)) = self.data_area(b) {
                    let mut n = 0;
                    for _ in 0..1 + self.rng.below(4) {
                        if self.blades[b].flip(&mut self.rng, off, off + size) {
                            n += 1;
                        }
                    }
                    self.stats.bit_flips += n;
                    self.note(format!("blade {baddr} of {a}: {n} silent bit flips"));
                }
            }
            6 => {
                self.blades[b].slow = 20;
                self.later.push((self.now + 2_000_000_000, Later::Calm));
                self.note(format!("blade {baddr} of {a} slow"));
            }
            7 => {
                let imp = Impair {
                    loss: 0.05,
                    dup: 0.03,
                    reorder: 0.1,
                    corrupt: 0.02,
                };
                let front = self.rng.chance(0.5);
                if front {
                    self.wire.front = imp;
                } else {
                    self.wire.back = imp;
                }
                self.later.push((self.now + 1_000_000_000, Later::Calm));
                self.note(format!(
                    "frame-fault burst on the {} segment",
                    if front { "front" } else { "back" }
                ));
            }
            8 if self.rng.chance(0.5) => self.crash(None)?,
            8 => self.service_restart()?,
            9 if redundant => {
                let member: MemberAddr = self.blades[b].addr.clone();
                if self
                    .command(Command::Fail {
                        array: a.clone(),
                        member: member.clone(),
                    })
                    .is_ok()
                {
                    self.busy_arrays.push(a.clone());
                    let back = 100_000_000 + self.rng.below(2_000_000_000);
                    self.later.push((self.now + back, Later::ReAdd(a, member)));
                }
            }
            10 if !self.grown && a == GROW_ARRAY => self.grow(),
            _ if redundant => {
                let repair = self.rng.chance(0.5);
                let _ = self.command(Command::Scrub { array: a, repair });
            }
            _ => {}
        }
        Ok(())
    }

    /// The operator grows the volume by the standalone array (refused while it is busy).
    fn grow(&mut self) {
        let r = self.command(Command::Grow {
            volume: VOLUME.into(),
            array: GROW_ARRAY.into(),
        });
        if r.is_ok() {
            self.grown = true;
            let s = self.volume_sectors();
            self.model.grow(s);
            self.stats.grows += 1;
        }
    }

    /// The data area of blade `b` from its superblock: (offset, sectors).
    fn data_area(&self, b: usize) -> Option<(u64, u64)> {
        let s = SB_OFFSET as usize * SECTOR;
        let sb = Superblock::decode(&self.blades[b].disk.disk[s..s + SB_SECTORS as usize * SECTOR])
            .ok()?;
        (sb.data_size > 32).then_some((sb.areas.data_offset, sb.data_size))
    }

    /// Blade `b` of array `a` dies for good; a new blade is plugged in 3 s later.
    fn kill_for_good(&mut self, a: &str, b: usize) {
        self.blades[b].disk.dead = true;
        self.blades[b].gone = true;
        self.busy_arrays.push(a.to_string());
        self.later
            .push((self.now + 3_000_000_000, Later::Plug(a.to_string())));
        let baddr = self.blades[b].addr.to_string();
        self.note(format!("blade {baddr} of {a} dies for good"));
    }

    /// Crash: the appliance vanishes with everything in its memory. Member writes
    /// on the wire still land; the restart assembles from what the members hold.
    /// `other`: the other appliance of the pair takes over (with that claim).
    fn crash(&mut self, other: Option<ClaimMode>) -> Result<(), String> {
        if self.write_hole_risk() {
            return Ok(());
        }
        self.note(format!("appliance {} crash", pair::name(self.who)));
        self.stats.crashes += 1;
        for b in &mut self.blades {
            b.crashed(self.now);
        }
        self.interrupted = self.model.writes_in_flux();
        self.go_down(false, other);
        Ok(())
    }

    /// RAID 5/6 whose partial-parity log covers a crash followed by a member loss:
    /// the log is on and the parity was computed once (no initial resync pending).
    fn logged(&self, name: &str) -> bool {
        self.engine(name).is_some_and(|e| {
            let st = e.status();
            st.ppl && !st.initial_sync
        })
    }

    /// The log replay after a crash and a member loss could not tell old from new in
    /// a range of `array` (`detail` of the `InterruptedWriteLost` event): allowed
    /// only under client writes in flux at the crash, never acknowledged; those
    /// sectors may read as anything until the client's retransmission lands.
    fn interrupted_lost(&mut self, array: &str, detail: &str) -> Result<(), String> {
        let (offset, sectors) = lost_range(detail)
            .ok_or_else(|| format!("{array}: InterruptedWriteLost without a range: {detail}"))?;
        let base = self
            .core
            .as_ref()
            .and_then(|c| c.volumes().iter().find(|v| v.name == VOLUME))
            .and_then(|v| {
                let i = v.arrays.iter().position(|a| a.name == array)?;
                Some(
                    v.concat.arrays()[..i]
                        .iter()
                        .map(|e| e.volume_sectors())
                        .sum::<u64>(),
                )
            })
            .ok_or_else(|| format!("{array}: lost sectors of an array outside the volume"))?;
        self.note(format!(
            "{array}: log replay lost {sectors} sectors at {offset} (volume {})",
            base + offset
        ));
        self.stats.interrupted_lost_sectors += sectors;
        self.model
            .interrupted_lost(base + offset, sectors, &self.interrupted)
    }

    /// A crash now could hit the write hole: RAID 5/6 degraded (raid-engine
    /// DESIGN.md), and a restart from the members then refuses to start.
    fn write_hole_risk(&self) -> bool {
        self.all_arrays()
            .iter()
            .any(|a| self.level(a).parity() > 0 && !self.calm(a))
    }

    /// The operator restarts the appliance: exports stop, requests in flight
    /// finish, the arrays mark themselves clean, then it goes down. Clients
    /// retransmit until it is back.
    fn service_restart(&mut self) -> Result<(), String> {
        if !self.all_arrays().iter().all(|a| self.calm(a)) {
            return Ok(());
        }
        self.note("appliance stops for a restart".into());
        if let Some(c) = self.core.as_mut() {
            c.stop_exports();
        }
        let end = self.now + 60_000_000_000;
        while !self.core.as_ref().is_none_or(|c| c.drained()) {
            self.step()?;
            if self.now > end {
                return Err("a stopping appliance never drained".into());
            }
        }
        if let Some(c) = self.core.as_mut() {
            c.start_mark_clean();
        }
        while !self.core.as_ref().is_none_or(|c| c.all_clean()) {
            self.step()?;
            if self.now > end {
                return Err("a stopping appliance never marked its arrays clean".into());
            }
        }
        let mut other = None;
        if self.pair {
            // The end of a clean stop: the blades are released, so the other
            // appliance may start plainly (a planned switchover).
            if let Some(c) = self.core.as_mut() {
                c.release_blades();
            }
            while self
                .core
                .as_ref()
                .is_some_and(|c| c.reserves_in_flight() > 0)
            {
                self.step()?;
                if self.now > end {
                    return Err("a stopping appliance never released its blades".into());
                }
            }
            if self.rng.chance(0.5) {
                other = Some(ClaimMode::Plain);
                self.stats.switchovers += 1;
            }
        }
        if self.core.is_none() {
            return Ok(());
        }
        self.stats.clean_restarts += 1;
        // A copy of one member as it is now, clean: a later stale return.
        let members: Vec<usize> = self
            .all_arrays()
            .iter()
            .flat_map(|a| self.members(a))
            .filter(|m| m.2)
            .map(|m| m.0)
            .collect();
        if !members.is_empty() {
            let b = members[self.rng.below(members.len() as u64) as usize];
            self.snapshot = Some((b, self.blades[b].disk.disk.clone()));
        }
        self.go_down(true, other);
        Ok(())
    }

    /// The appliance is gone (crash or stop): frames to it are lost, clients
    /// wait, a restart is scheduled. One blade of a calm redundant array may be
    /// missing when it starts, back later or dead for good (`clean`: any level;
    /// after a crash: a mirror's, or a RAID 5/6's whose partial-parity log covers
    /// the write hole; without the log that is refused).
    fn go_down(&mut self, clean: bool, other: Option<ClaimMode>) {
        let absent: Vec<(usize, String)> = self
            .all_arrays()
            .iter()
            .filter(|a| {
                let l = self.level(a);
                l != Level::Raid0 && (clean || l.parity() == 0 || self.logged(a)) && self.calm(a)
            })
            .flat_map(|a| self.members(a).into_iter().map(move |m| (m, a.clone())))
            .filter(|(m, _)| m.2)
            .map(|(m, a)| (m.0, a))
            .collect();
        let away = (!absent.is_empty() && self.rng.chance(0.5)).then(|| {
            let (blade, array) = absent[self.rng.below(absent.len() as u64) as usize].clone();
            Away {
                blade,
                write_hole: !clean && self.level(&array).parity() > 0,
                array,
                for_good: !clean && self.rng.chance(0.5),
            }
        });
        self.core = None;
        for (to, f) in self.wire.drop_to_appliance(self.who) {
            if matches!(to, Port::Front(_)) {
                if let Some((mac, tag)) = request_id(&f) {
                    if let Some(c) = self.clients.iter_mut().find(|c| c.mac == mac) {
                        c.lost(tag);
                    }
                }
            }
        }
        for c in &mut self.clients {
            c.appliance_lost(self.who);
        }
        let down = 50_000_000 + self.rng.below(500_000_000);
        self.later
            .push((self.now + down, Later::Restart(away, other)));
    }

    /// Refused blade `b` is checked unwritten since `writes`, then taken out; its
    /// array gets a new blade.
    fn unplug(&mut self, b: usize, writes: u64, array: &str) -> Result<(), String> {
        if self.blades[b].disk.writes != writes {
            return Err(format!(
                "blade {} was written after the appliance refused it",
                self.blades[b].addr
            ));
        }
        self.kill_for_good(array, b);
        Ok(())
    }

    /// A blade's announcement reaches the back end of every running appliance.
    fn announce(&mut self, ann: Vec<u8>) {
        for k in std::iter::once(self.who).chain(self.zombie.as_ref().map(|z| z.who)) {
            self.wire
                .send(&mut self.rng, self.now, Port::Back(k), ann.clone());
        }
    }

    /// Blade `b` answers again, holding what `how` says.
    fn revive(&mut self, b: usize, how: Comeback) {
        let a = self.blades[b].addr.to_string();
        let what = match how {
            Comeback::Same => "",
            Comeback::PoweredOn => {
                let ann = self.blades[b].disk.announce();
                self.announce(ann);
                " (switched on)"
            }
            Comeback::Foreign => {
                let s = SB_OFFSET as usize * SECTOR;
                let disk = &mut self.blades[b].disk.disk;
                if let Ok(mut sb) = Superblock::decode(&disk[s..s + SB_BYTES]) {
                    self.rng.fill(&mut sb.array_uuid);
                    sb.name = "foreign".into();
                    disk[s..s + SB_BYTES].copy_from_slice(&sb.encode());
                    self.foreign.push(b);
                    self.stats.foreign_returns += 1;
                }
                " with another array's superblock"
            }
            Comeback::Stale(copy) => {
                self.blades[b].disk.disk = copy;
                self.stats.stale_returns += 1;
                " holding its copy from the last clean stop"
            }
        };
        self.blades[b].disk.dead = false;
        self.note(format!("blade {a} answers again{what}"));
    }

    /// The appliance starts again from its members — or, with `other`, the other
    /// appliance of the pair starts, claiming the blades that way; blade `away`
    /// (if any) is not there: it shows up a few seconds later or is dead for good.
    fn restart(&mut self, away: Option<Away>, other: Option<ClaimMode>) -> Result<(), String> {
        // Blades that were only silent are back by the time the appliance is;
        // refused ones are checked and taken out before assembly could use them.
        let mut back = Vec::new();
        let mut out = Vec::new();
        self.later.retain(|l| match &l.1 {
            Later::Revive(b, how) => {
                back.push((*b, how.clone()));
                false
            }
            Later::Unplug(b, w, a) => {
                out.push((*b, *w, a.clone()));
                false
            }
            _ => true,
        });
        for (b, w, a) in out {
            self.unplug(b, w, &a)?;
        }
        for (b, how) in back {
            self.revive(b, how);
        }
        for b in &mut self.blades {
            if !b.gone {
                b.disk.dead = false;
            }
        }
        let away = away.filter(|a| !self.blades[a.blade].gone);
        if let Some(a) = &away {
            let b = a.blade;
            self.stats.crash_losses += u64::from(a.write_hole);
            self.blades[b].disk.dead = true;
            if !a.for_good {
                let later = 1_000_000_000 + self.rng.below(8_000_000_000);
                self.later
                    .push((self.now + later, Later::Revive(b, Comeback::PoweredOn)));
                self.stats.absent_at_start += 1;
                self.note(format!(
                    "blade {} away while the appliance starts, back in {}ms",
                    self.blades[b].addr,
                    later / 1_000_000
                ));
            }
        }
        if other.is_some() {
            self.who = 1 - self.who;
        }
        let (mut pool, now) = boot::discover(
            &self.config,
            &mut self.blades,
            self.who,
            self.base,
            self.now,
        );
        self.now = now;
        let mut owners = None;
        if self.pair {
            let mode = other.unwrap_or(ClaimMode::Plain);
            let all: Vec<MemberAddr> = self.blades.iter().map(|b| b.addr.clone()).collect();
            let (o, now) = boot::claim(&all, &mut pool, &mut self.blades, mode, self.base, now)
                .map_err(|held| {
                    format!(
                        "{} could not claim the blades ({mode:?}): {}",
                        pair::name(self.who),
                        held.join("; ")
                    )
                })?;
            self.now = now;
            self.owner = Some(boot::back_mac(self.who));
            owners = Some(o);
        }
        let at = self.at();
        let blades = &self.blades;
        let superblock = |a: &MemberAddr| {
            let b = blades.iter().find(|b| &b.addr == a && !b.disk.dead)?;
            let s = SB_OFFSET as usize * SECTOR;
            Some(b.disk.disk[s..s + SB_BYTES].to_vec())
        };
        let extra: Vec<MemberAddr> = blades.iter().map(|b| b.addr.clone()).collect();
        let mut core = boot::assemble_all(
            &self.config,
            self.who,
            pool,
            &superblock,
            &extra,
            &mut self.host,
            at,
        )
        .map_err(|e| format!("restart after crash: {e}"))?;
        if let Some(o) = owners {
            core.hold_blades(o);
        }
        self.core = Some(core);
        // A grow is on the superblocks only through the config; re-apply it.
        if self.grown {
            let r = self.command(Command::Grow {
                volume: VOLUME.into(),
                array: GROW_ARRAY.into(),
            });
            r.map_err(|e| format!("grow after restart: {e}"))?;
        }
        let s = self.volume_sectors();
        if s != self.model.sectors() {
            return Err(format!(
                "restart: the volume has {s} sectors, {} before",
                self.model.sectors()
            ));
        }
        self.busy_arrays.clear();
        if let Some(a) = away.filter(|a| a.for_good) {
            self.kill_for_good(&a.array, a.blade);
        }
        match other {
            Some(mode) => {
                self.note(format!(
                    "{} started ({mode:?}) from the members, exports from its own MAC",
                    pair::name(self.who)
                ));
                if mode == ClaimMode::Takeover {
                    self.maybe_plain_start();
                }
            }
            None => self.note("appliance restarted from its members".into()),
        }
        Ok(())
    }

    // ---- the run ----

    pub(crate) fn run(&mut self) -> Result<(), String> {
        while self.stats.client.ops < self.cfg.ops {
            self.maybe_fault()?;
            self.issue();
            self.step()?;
            if self.now >= self.progress.2 {
                self.progress.2 = self.now + 1_000_000_000;
                self.check_liveness()?;
            }
        }
        self.final_check()
    }

    /// Heal everything, let the arrays settle, prove the copies agree (a scrub finds
    /// no mismatch) and read the whole volume back.
    fn final_check(&mut self) -> Result<(), String> {
        self.healing = true;
        self.note("final check: healing".into());
        self.wire.front = Impair::default();
        self.wire.back = Impair::default();
        // Let every client command finish.
        let end = self.now + 300_000_000_000;
        while self.clients.iter().any(|c| !c.ops.is_empty()) || self.core.is_none() {
            self.step()?;
            self.check_liveness()?;
            if self.now > end {
                let left: Vec<String> = self
                    .clients
                    .iter()
                    .flat_map(|c| c.ops.values().map(|o| format!("{o:?}")))
                    .take(4)
                    .collect();
                let inside = self.core.as_ref().map(|c| {
                    (
                        c.exports()
                            .map_or(0, |x| x.driver().target().requests_in_flight()),
                        c.drained(),
                        c.member_io_in_flight(),
                    )
                });
                return Err(format!(
                    "client commands never finished: {left:?}; appliance (target requests, drained, member I/O): {inside:?}"
                ));
            }
        }
        for b in &mut self.blades {
            b.slow = 1;
            if !b.gone {
                b.disk.dead = false;
            }
        }
        for a in self.all_arrays() {
            if self.level(&a) == Level::Raid0 {
                for m in self.members(&a) {
                    self.blades[m.0].repair();
                }
            }
        }
        let deadline = self.now + 600_000_000_000;
        loop {
            let unsettled: Vec<String> = self
                .all_arrays()
                .into_iter()
                .filter(|a| !self.settled(a))
                .collect();
            if unsettled.is_empty() {
                break;
            }
            if self.now > deadline {
                let st: Vec<String> = unsettled
                    .iter()
                    .map(|a| {
                        let e = self.engine(a).map(|e| {
                            let s = e.status();
                            (s.state, s.sync.map(|x| x.kind), s.raid_disks)
                        });
                        format!("{a}: {e:?} members {:?}", self.members(a))
                    })
                    .collect();
                return Err(format!("arrays never settled: {st:?}"));
            }
            for a in &unsettled {
                self.heal(a)?;
            }
            for _ in 0..100 {
                self.step()?;
            }
        }
        for a in self.all_arrays() {
            if self.level(&a) == Level::Raid0 {
                continue;
            }
            for repair in [true, false] {
                self.command(Command::Scrub {
                    array: a.clone(),
                    repair,
                })?;
                let end = self.now + 600_000_000_000;
                while self.engine(&a).is_some_and(|e| {
                    e.status().sync.is_some()
                        || e.status().counters.last_scrub_mismatch_sectors == u64::MAX
                }) {
                    self.step()?;
                    if self.now > end {
                        return Err(format!("array {a}: scrub never finished"));
                    }
                }
            }
            let m = self
                .engine(&a)
                .map_or(0, |e| e.status().counters.last_scrub_mismatch_sectors);
            if m != 0 {
                return Err(format!(
                    "array {a}: copies or parity disagree after settling: {m} sectors"
                ));
            }
        }
        self.read_back()
    }

    fn settled(&self, a: &str) -> bool {
        let Some(e) = self.engine(a) else {
            return false;
        };
        let st = e.status();
        let members = self.members(a);
        st.sync.is_none()
            && st.state != ArrayState::Resyncing
            && members.iter().filter(|m| m.2).count() == st.raid_disks
            && members
                .iter()
                .filter(|m| m.2)
                .all(|m| m.1 == MemberState::Active && !self.blades[m.0].disk.dead)
    }

    /// A degraded array with nothing to rebuild onto gets a blade: its own member
    /// failed by an operator if alive, else a new one.
    fn heal(&mut self, a: &str) -> Result<(), String> {
        // A blade that died under an idle array goes unnoticed until I/O reaches
        // it: the operator fails its member by hand.
        for m in self.members(a) {
            if m.2 && m.1 == MemberState::Active && self.blades[m.0].gone {
                let member = self.blades[m.0].addr.clone();
                let _ = self.command(Command::Fail {
                    array: a.to_string(),
                    member,
                });
            }
        }
        let Some(e) = self.engine(a) else {
            return Ok(());
        };
        if !e.needs_spare() || self.busy_arrays.iter().any(|x| x == a) {
            return Ok(());
        }
        let in_use: Vec<MemberAddr> = self
            .all_arrays()
            .iter()
            .flat_map(|x| self.members(x))
            .filter(|m| {
                matches!(
                    m.1,
                    MemberState::Active | MemberState::Rebuilding | MemberState::Spare
                )
            })
            .map(|m| self.blades[m.0].addr.clone())
            .collect();
        let spare = self
            .blades
            .iter()
            .find(|b| !b.gone && !in_use.contains(&b.addr) && !self.is_group_spare(&b.addr))
            .map(|b| b.addr.clone());
        match spare {
            Some(member) => {
                let _ = self.operator_add(Command::Add {
                    array: a.to_string(),
                    member,
                    force: false,
                });
            }
            None => {
                self.busy_arrays.push(a.to_string());
                self.later.push((self.now, Later::Plug(a.to_string())));
            }
        }
        Ok(())
    }

    fn is_group_spare(&self, addr: &MemberAddr) -> bool {
        self.config
            .spare_groups
            .0
            .iter()
            .any(|g| g.members.contains(addr))
            && !self.all_arrays().iter().any(|a| {
                self.members(a)
                    .iter()
                    .any(|m| &self.blades[m.0].addr == addr)
            })
    }

    /// Reads the whole volume through client 0 and checks it against the model.
    fn read_back(&mut self) -> Result<(), String> {
        let vs = self.model.sectors();
        let mut off = 0;
        let end = self.now + 600_000_000_000;
        while off < vs || !self.clients[0].ops.is_empty() {
            while off < vs && self.clients[0].busy() < 8 && self.clients[0].ready() {
                let n = 16.min(vs - off);
                let id = self.next_id;
                self.next_id += 1;
                self.model.read_issued(id, off, n);
                self.clients[0].add(ClientOp::new(Kind::Read, off, n, Vec::new(), id, self.now));
                off += n;
            }
            self.step()?;
            if self.now > end {
                return Err("final read-back never finished".into());
            }
        }
        if self.model.in_flux() != 0 {
            return Err(format!(
                "{} sectors still have a write in flux after every command was answered",
                self.model.in_flux()
            ));
        }
        self.stats.virtual_ns = self.now;
        Ok(())
    }
}

fn ns(n: u64) -> Duration {
    Duration::from_nanos(n)
}

/// Moves frames out of appliance `who`'s core onto the segments: back-end frames
/// to the blades they name (broadcasts to all), front-end frames to the clients.
/// True if any moved.
fn transmit(core: &mut Core, who: usize, at: Instant, net: &mut Net<'_>) -> bool {
    let mut moved = false;
    while let Some(t) = core.poll_back_transmit(at, net.buf) {
        moved = true;
        let f = net.buf[..t.len].to_vec();
        let dst = Header::parse(&f).map(|h| h.dst).unwrap_or(Mac::BROADCAST);
        if dst == Mac::BROADCAST {
            for i in 0..net.blades.len() {
                net.wire.send(net.rng, net.now, Port::Blade(i), f.clone());
            }
        } else if let Some(i) = net.blades.iter().position(|b| b.disk.mac == dst) {
            net.wire.send(net.rng, net.now, Port::Blade(i), f);
        }
    }
    while let Some((_, len)) = core.poll_front_transmit(net.buf) {
        moved = true;
        let f = net.buf[..len].to_vec();
        if let Some((mac, tag)) = reply_id(&f) {
            net.replies += 1;
            if let Some(c) = net.clients.iter_mut().find(|c| c.mac == mac) {
                c.answered_copy(tag, who);
            }
        }
        let dst = Header::parse(&f).map(|h| h.dst).unwrap_or(Mac::BROADCAST);
        if dst == Mac::BROADCAST {
            for i in 0..net.clients.len() {
                net.wire.send(net.rng, net.now, Port::Client(i), f.clone());
            }
        } else if let Some(i) = net.clients.iter().position(|c| c.mac == dst) {
            net.wire.send(net.rng, net.now, Port::Client(i), f);
        }
    }
    moved
}

impl World {
    /// Counters kept outside the stats while running.
    pub(crate) fn finish_stats(&self, st: &mut SimStats) {
        let w = &self.wire.stats;
        st.frames = w.frames;
        st.frames_lost = w.lost;
        st.frames_duplicated = w.duplicated;
        st.frames_reordered = w.reordered;
        st.frames_corrupted = w.corrupted;
        st.client_retransmits = self.clients.iter().map(|c| c.retransmits).sum();
        st.reservation_refusals = self.blades.iter().map(|b| b.disk.reserved_refusals).sum();
    }
}

/// (offset, sectors) of an `InterruptedWriteLost` event's detail
/// (`events::engine::from_engine`: "N sectors at volume sector O of …").
fn lost_range(detail: &str) -> Option<(u64, u64)> {
    let (n, rest) = detail.split_once(" sectors at volume sector ")?;
    let o = rest.split(' ').next()?;
    Some((o.parse().ok()?, n.parse().ok()?))
}
