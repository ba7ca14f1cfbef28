//! The appliance core: everything `aoeraid run` does except the ring. It owns the
//! initiator pool (`aoe_initiator::Pool`), the volumes behind the exports
//! (`raid_engine::Concat` of engines), the front-end target over them, the
//! member-to-device map and the operating policy: blade down → member failed, blade
//! back (or found after the start) → its superblock judged, re-added from the
//! bitmap or refused untouched (`rejoin.rs`), spares taken from spare groups,
//! operator commands, grow, SIGHUP reload through [`crate::config::reload::plan`].
//!
//! It never touches a socket, a file or a clock: time comes in with every call, and
//! the host (the daemon's ring loop, or a simulator) moves frames and `file:` member
//! I/O. Opening a device or drawing a UUID goes through the [`Host`] trait, which
//! commands and reloads are given.
//!
//! ```text
//! inputs                                   outputs (poll until None)
//!   handle_back_frame(now, iface, bytes)     poll_notice()            events, logs, state saves
//!   handle_front_frame(now, iface, bytes)    poll_front_transmit(buf) (iface, len) for the front
//!   file_io_done(now, token, result)         poll_back_transmit(now, buf)  aoe_initiator::Transmit
//!   handle_timeout(now)                      poll_file_io()           FileIo { token, file, io }
//!   command(now, host, Command) -> Reply     poll_timeout()           when to call handle_timeout
//!   reload(now, host, Config) -> Reloaded    status(now)              the status snapshot
//!   stop_exports(), start_mark_clean()       drained(), all_clean(), member_io_in_flight()
//! ```
//!
//! Order in one turn of the host: feed the inputs, then drain `poll_notice` (an
//! export's state named by `Notice::SaveExport` is saved before any further front-end
//! frame: `poll_front_transmit` holds them back until then), then the transmits and
//! file I/O. Work moves between the parts (front end → volumes → members → volumes →
//! front end) inside the first poll after an input, so a batch of frames costs one
//! pass. No output is ever dropped for want of a buffer: it waits in the core.

mod add_check;
pub(crate) mod assembly;
mod commands;
mod exports;
mod listing;
mod members;
mod ownership;
mod policy;
mod regather;
mod rejoin;
mod reload;
mod reservations;
mod spare_label;
mod spare_scan;
mod spares;
mod state_saves;
mod status;
mod volumes;

#[cfg(all(test, feature = "sim"))]
mod tests;

pub(crate) use assembly::Candidate;
pub(crate) use commands::{Answer, Command};
pub(crate) use exports::{ExportDef, Exports};
pub(crate) use members::{
    poll_blade_done, submit_to_blade, superblock_read, Host, Location, MemberMap, MemberResult,
};
pub(crate) use ownership::{
    held_by, holder, plan_claim, send_reserves, ClaimMode, Holder, Ownership,
};
pub(crate) use spare_label::SpareLabel;
pub(crate) use spares::{Spare, SpareGroups, SpareOrigin};
pub(crate) use volumes::{start_volumes, unused_spares, Array, Assembled, Volume};

use crate::config::{Config, MemberAddr};
use crate::events::Event;
use aoe_initiator::{Pool, Transmit};
use members::{token, untoken, PROBE_VOLUME, RECORD_VOLUME};
use raid_engine::{MemberError, MemberIo, MemberOp, Tunables, VolumeCompletion, VolumeOp, SECTOR};
use rejoin::Rejoin;
use state_saves::{export_of, write_id, RoundDone, StateSaves};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// What a control command did, for the operator.
pub(crate) type Reply = Result<String, String>;

/// Engines are ticked at least this often (idle detection, lazy bitmap clearing,
/// sync pacing).
const TICK: Duration = Duration::from_millis(10);

/// The exports are announced at start and again every 30 s. A client that had the volume open on the other appliance of an
/// HA pair learns of this one only from such an unsolicited config reply (the
/// Linux driver does not query again while the device is open; it adds the
/// new MAC as another target of the device and moves its frames there), and a
/// broadcast frame can be lost. See docs/ha.md, "Takeover and clients".
const ANNOUNCE_FIRST: Duration = Duration::from_secs(30);
const ANNOUNCE_MAX: Duration = Duration::from_secs(30);

/// Something for the host to pass on.
#[derive(Debug)]
pub(crate) enum Notice {
    /// An operator event, for the event dispatcher.
    Event(Event),
    /// A log line with its syslog priority.
    Log(u8, String),
    /// Export `i`'s durable state changed (by a client or a reload): the
    /// core saves it on the volume's members (and holds front-end frames
    /// until then); the host keeps `exports()[i].shared.snapshot()` in its
    /// state-file cache.
    SaveExport(usize),
    /// Array or member state changed: publish a fresh status now.
    StatusChanged,
    /// The answer to the command that got [`Answer::Later`] with this ticket.
    Reply(u64, Reply),
}

/// One `file:` member I/O for the host to carry out; its result comes back
/// through [`Core::file_io_done`] with `token`.
#[derive(Debug)]
pub(crate) struct FileIo {
    pub(crate) token: u64,
    /// The index the host gave the file ([`Location::File`]).
    pub(crate) file: usize,
    pub(crate) io: MemberIo,
}

/// Latency and size of every finished volume and member I/O, for metrics.
pub(crate) trait IoObserver {
    fn volume_io(&mut self, volume: usize, op: VolumeOp, bytes: u64, secs: f64, ok: bool);
    fn member_io(&mut self, member: &MemberAddr, op: MemberOp, bytes: u64, secs: f64, ok: bool);
}

/// An observer that keeps nothing (tests, the simulator).
#[cfg(any(test, feature = "sim"))]
pub(crate) struct NoObserver;

#[cfg(any(test, feature = "sim"))]
impl IoObserver for NoObserver {
    fn volume_io(&mut self, _: usize, _: VolumeOp, _: u64, _: f64, _: bool) {}
    fn member_io(&mut self, _: &MemberAddr, _: MemberOp, _: u64, _: f64, _: bool) {}
}

/// What the core starts from: devices opened and arrays assembled by the host.
pub(crate) struct CoreParts {
    /// The back end, None when no back-end interface is configured.
    pub(crate) pool: Option<Pool>,
    pub(crate) volumes: Vec<Volume>,
    pub(crate) spares: SpareGroups,
    pub(crate) members: MemberMap,
    /// The front end, None when nothing is exported.
    pub(crate) exports: Option<Exports>,
    /// The running configuration (reloads are planned against it).
    pub(crate) config: Config,
    pub(crate) observer: Box<dyn IoObserver>,
}

pub(crate) struct Core {
    pool: Option<Pool>,
    vols: Vec<Volume>,
    spares: SpareGroups,
    members: MemberMap,
    exports: Option<Exports>,
    /// Export state records on the members, and the rounds writing them.
    saves: StateSaves,
    /// The next announcement of the exports and the gap after it (None once
    /// the exports stopped).
    announce: Option<(Instant, Duration)>,
    config: Config,
    observer: Box<dyn IoObserver>,
    started: Instant,
    now: Instant,
    /// Inputs arrived since work last moved between the parts.
    dirty: bool,
    last_tick_ns: u64,
    /// Volume request start times, for latency.
    pending: HashMap<(usize, u64), (Instant, VolumeOp, u64)>,
    /// Member I/O start times by token: (start, op, bytes, member index).
    member_started: HashMap<u64, (Instant, MemberOp, u64, usize)>,
    file_ios: VecDeque<FileIo>,
    files_in_flight: usize,
    /// Blade I/Os refused at submission, completed at the next pass.
    refused: VecDeque<(u64, MemberResult)>,
    /// Returning blades: superblock reads, refusals, asking for absent ones.
    rejoin: Rejoin,
    /// Commands waiting for their blade's Set.
    claiming: commands::Claiming,
    checks: add_check::AddChecks,
    /// Failed arrays whose members answer again, being re-assembled.
    regathers: Vec<regather::Regather>,
    /// Spare labels being written, blades no configuration names being read.
    labels: spare_scan::SpareLabels,
    notices: VecDeque<Notice>,
    /// The blades this appliance holds by reservation (none until
    /// [`Core::hold_blades`]).
    owners: Ownership,
}

impl Core {
    pub(crate) fn new(parts: CoreParts, now: Instant) -> Core {
        let next_records = parts.exports.as_ref().map_or_else(Vec::new, |x| {
            x.exports().iter().map(|d| d.next_record).collect()
        });
        // Member I/O tokens hold a volume number in 8 bits; the last two are
        // the superblock probes' and the state records'.
        assert!(
            parts.volumes.len() < PROBE_VOLUME,
            "at most {} volumes and arrays",
            PROBE_VOLUME
        );
        let mut core = Core {
            saves: StateSaves::new(next_records),
            announce: Some((now + ANNOUNCE_FIRST, ANNOUNCE_FIRST)),
            pool: parts.pool,
            vols: parts.volumes,
            spares: parts.spares,
            members: parts.members,
            exports: parts.exports,
            config: parts.config,
            observer: parts.observer,
            started: now,
            now,
            dirty: true,
            last_tick_ns: 0,
            pending: HashMap::new(),
            member_started: HashMap::new(),
            file_ios: VecDeque::new(),
            files_in_flight: 0,
            refused: VecDeque::new(),
            rejoin: Rejoin::default(),
            regathers: Vec::new(),
            labels: spare_scan::SpareLabels::default(),
            claiming: commands::Claiming::default(),
            checks: add_check::AddChecks::default(),
            notices: VecDeque::new(),
            owners: Ownership::default(),
        };
        if let Some(x) = core.exports.as_mut() {
            x.announce_all();
        }
        for v in &mut core.vols {
            for a in &mut v.arrays {
                for (addr, why) in std::mem::take(&mut a.refused_at_start) {
                    core.rejoin.refuse(addr, why);
                }
            }
        }
        core
    }

    /// From now on the core keeps `owners`' blades reserved (they were claimed
    /// before it started): re-asserted every period and on return, lost for good
    /// when another appliance takes them.
    pub(crate) fn hold_blades(&mut self, owners: Ownership) {
        self.owners = owners;
        self.dirty = true;
    }

    // ---- inputs -----------------------------------------------------------------

    /// A frame received on back-end interface `iface` (the pool's interface index).
    pub(crate) fn handle_back_frame(&mut self, now: Instant, iface: usize, frame: &[u8]) {
        self.now = now;
        if let Some(p) = self.pool.as_mut() {
            p.handle_frame(now, iface, frame);
            self.dirty = true;
        }
    }

    /// A frame received on front-end interface `iface` (index in the order the
    /// exports were built with).
    pub(crate) fn handle_front_frame(&mut self, now: Instant, iface: usize, frame: &[u8]) {
        self.now = now;
        if let Some(x) = self.exports.as_mut() {
            x.handle_frame(iface, frame, now);
            self.dirty = true;
        }
    }

    /// A `file:` member I/O from [`Core::poll_file_io`] finished.
    pub(crate) fn file_io_done(&mut self, now: Instant, token: u64, result: MemberResult) {
        self.now = now;
        self.files_in_flight = self.files_in_flight.saturating_sub(1);
        self.member_done(token, result);
        self.dirty = true;
    }

    /// Runs what is due: the pool's retransmits and dead-blade detection, the
    /// engines' clocks.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        if let Some(p) = self.pool.as_mut() {
            if p.poll_timeout().is_some_and(|t| t <= now) {
                p.handle_timeout(now);
            }
        }
        self.query_absent(now);
        self.reassert(now);
        self.regathers_due();
        let ns = self.ns(now);
        let periodic = ns >= self.last_tick_ns + TICK.as_nanos() as u64;
        for v in &mut self.vols {
            if periodic || v.concat.poll_timeout().is_some_and(|t| t <= ns) {
                v.concat.tick(ns);
            }
        }
        if periodic {
            self.last_tick_ns = ns;
        }
        if let Some((at, gap)) = self.announce {
            if now >= at {
                if let Some(x) = self.exports.as_mut() {
                    x.announce_all();
                }
                let gap = (gap * 2).min(ANNOUNCE_MAX);
                self.announce = Some((now + gap, gap));
            }
        }
        self.dirty = true;
    }

    // ---- outputs ----------------------------------------------------------------

    pub(crate) fn poll_notice(&mut self) -> Option<Notice> {
        self.settle();
        self.notices.pop_front()
    }

    /// The next back-end frame, built in `buf` (a send buffer of the interface MTU).
    pub(crate) fn poll_back_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        self.now = now;
        self.settle();
        self.pool.as_mut()?.poll_transmit(now, buf)
    }

    /// The next front-end frame, written into `buf`: (interface, length).
    /// None while an export's state is being saved on its members.
    pub(crate) fn poll_front_transmit(&mut self, buf: &mut [u8]) -> Option<(usize, usize)> {
        self.settle();
        if self.saves.busy() {
            return None;
        }
        self.exports.as_mut()?.poll_transmit(buf)
    }

    /// Whether front-end frames wait for a send buffer.
    pub(crate) fn has_front_transmit(&self) -> bool {
        !self.saves.busy() && self.exports.as_ref().is_some_and(|x| x.has_transmit())
    }

    pub(crate) fn poll_file_io(&mut self) -> Option<FileIo> {
        self.settle();
        let io = self.file_ios.pop_front()?;
        self.files_in_flight += 1;
        Some(io)
    }

    /// When [`Core::handle_timeout`] must run next at the latest.
    pub(crate) fn poll_timeout(&self) -> Instant {
        let mut t = self.started + Duration::from_nanos(self.last_tick_ns) + TICK;
        if let Some(p) = self.pool.as_ref().and_then(|p| p.poll_timeout()) {
            t = t.min(p);
        }
        if let Some((at, _)) = self.announce {
            t = t.min(at);
        }
        if let Some(o) = self.owners.poll_timeout() {
            t = t.min(o);
        }
        for v in &self.vols {
            if let Some(ns) = v.concat.poll_timeout() {
                t = t.min(self.started + Duration::from_nanos(ns));
            }
        }
        t
    }

    // ---- the parts, read-only ---------------------------------------------------

    pub(crate) fn pool(&self) -> Option<&Pool> {
        self.pool.as_ref()
    }

    /// The volumes, read-only: the simulator checks their state and invariants.
    #[cfg(feature = "sim")]
    pub(crate) fn volumes(&self) -> &[Volume] {
        &self.vols
    }

    pub(crate) fn exports(&self) -> Option<&Exports> {
        self.exports.as_ref()
    }

    // ---- stopping ---------------------------------------------------------------

    /// Stop taking requests from clients; those in flight finish.
    pub(crate) fn stop_exports(&mut self) {
        self.announce = None;
        if let Some(x) = self.exports.as_mut() {
            x.stop();
        }
    }

    /// No client request in flight.
    pub(crate) fn drained(&self) -> bool {
        self.exports.as_ref().is_none_or(|x| x.drained())
            && self.pending.is_empty()
            && self.saves.in_flight() == 0
    }

    /// Member I/Os in flight (blades and files).
    pub(crate) fn member_io_in_flight(&self) -> usize {
        self.files_in_flight
            + self.file_ios.len()
            + self.refused.len()
            + self.pool.as_ref().map_or(0, |p| p.ios_outstanding())
    }

    /// The last step of a stop: the engines clear their bitmaps and mark
    /// themselves clean as soon as they are idle.
    pub(crate) fn start_mark_clean(&mut self) {
        // A volume whose blades another appliance took writes nothing, clean marks
        // included (they would be refused, and its engines would try again at once).
        for v in self.vols.iter_mut().filter(|v| !v.reservation_lost) {
            for a in 0..v.arrays.len() {
                let e = v.concat.array_mut(a);
                let t = Tunables {
                    bitmap_clear_ns: 0,
                    ..e.tunables()
                };
                e.set_tunables(t);
            }
        }
        self.dirty = true;
    }

    /// Every array marked clean on its members (or failed) and no member I/O left.
    pub(crate) fn all_clean(&self) -> bool {
        // A volume whose blades another appliance took cannot be marked clean here.
        let clean = self.vols.iter().filter(|v| !v.reservation_lost).all(|v| {
            v.concat.arrays().iter().all(|e| {
                let s = e.status();
                s.clean_on_disk || s.state == raid_engine::ArrayState::Failed
            })
        });
        clean && self.member_io_in_flight() == 0
    }

    // ---- inside -----------------------------------------------------------------

    fn ns(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.started).as_nanos() as u64
    }

    fn settle(&mut self) {
        if self.dirty {
            self.dirty = false;
            self.pump();
        }
    }

    /// Moves work between the parts until nothing moves.
    fn pump(&mut self) {
        let now = self.now;
        self.scan_at_start();
        loop {
            let mut moved = false;
            // Front end → volumes.
            if let Some(x) = self.exports.as_mut() {
                for (v, req) in x.take_requests() {
                    moved = true;
                    if let Some(vol) = self.vols.get_mut(v) {
                        let bytes = req.sectors as u64 * SECTOR as u64;
                        self.pending.insert((v, req.id), (now, req.op, bytes));
                        vol.concat.submit(req);
                    }
                }
            }
            // Export state → the volume's members.
            moved |= self.save_states();
            // Engines → members.
            for v in 0..self.vols.len() {
                while let Some((a, io)) = self.vols[v].concat.poll_member_io() {
                    moved = true;
                    self.submit_member_io(v, a, io);
                }
            }
            // Members → engines.
            while let Some((t, r)) = self.refused.pop_front() {
                moved = true;
                self.member_done(t, r);
            }
            while let Some(d) = self.pool.as_mut().and_then(poll_blade_done) {
                moved = true;
                if self.checks.owns(d.token) {
                    self.check_read(d.token, d.result, d.reserved);
                    continue;
                }
                if self.labels.owns(d.token) {
                    // A blade refusing a scan's read is not one we lost.
                    self.label_io_done(d.token, d.result, d.reserved);
                    continue;
                }
                if d.reserved {
                    self.io_refused(d.blade);
                }
                self.member_done(d.token, d.result);
            }
            while let Some(c) = self.pool.as_mut().and_then(Pool::poll_reserve) {
                moved = true;
                self.reserve_done(c);
            }
            // Volumes → front end.
            for v in 0..self.vols.len() {
                while let Some(c) = self.vols[v].concat.poll_completion() {
                    moved = true;
                    self.volume_done(v, c);
                }
            }
            // Engine events → operator events.
            for v in 0..self.vols.len() {
                while let Some((a, ev)) = self.vols[v].concat.poll_event() {
                    moved = true;
                    self.engine_event(v, a, ev);
                }
            }
            // Pool events: blades down/up.
            while let Some(e) = self.pool.as_mut().and_then(|p| p.poll_event()) {
                moved = true;
                self.pool_event(e);
            }
            moved |= self.give_spares();
            if !moved {
                break;
            }
        }
    }

    fn submit_member_io(&mut self, v: usize, a: usize, io: MemberIo) {
        let t = token(v, a, io.id);
        let Some(&(_, loc)) = self.vols[v].arrays[a].member(io.member) else {
            self.vols[v]
                .concat
                .complete_member_io(a, io.id, Err(MemberError::Gone));
            return;
        };
        let bytes = io.sectors as u64 * SECTOR as u64;
        self.member_started
            .insert(t, (self.now, io.op, bytes, io.member));
        self.route(v, t, loc, io);
    }

    /// Hands member I/O `io` (token `t`) of volume `v` to its file or blade.
    fn route(&mut self, v: usize, t: u64, loc: Location, io: MemberIo) {
        let lost = matches!(loc, Location::Blade(b) if self.owners.is_lost(b));
        if self.vols[v].reservation_lost || lost {
            // Another appliance owns these blades: nothing more goes to them.
            self.refused.push_back((t, Err(MemberError::Gone)));
            return;
        }
        match loc {
            Location::File(file) => self.file_ios.push_back(FileIo { token: t, file, io }),
            Location::Blade(blade) => {
                let r = match self.pool.as_mut() {
                    Some(pool) => submit_to_blade(pool, self.now, blade, io, t),
                    None => Err(MemberError::Gone),
                };
                if let Err(e) = r {
                    self.refused.push_back((t, Err(e)));
                }
            }
        }
    }

    fn member_done(&mut self, t: u64, r: MemberResult) {
        if self.checks.owns(t) {
            self.check_read(t, r, false);
            return;
        }
        if self.labels.owns(t) {
            self.label_io_done(t, r, false);
            return;
        }
        if Rejoin::is_probe(t) {
            self.probe_done(t, r);
            return;
        }
        let (v, a, id) = untoken(t);
        if v == RECORD_VOLUME {
            let done = self.saves.done(export_of(id), r.map(|_| ()));
            if let Some(d) = done {
                self.state_saved(d);
            }
            return;
        }
        if let Some((t0, op, bytes, m)) = self.member_started.remove(&t) {
            let secs = self.now.saturating_duration_since(t0).as_secs_f64();
            let bytes = if op == MemberOp::Flush { 0 } else { bytes };
            if let Some((addr, _)) = self
                .vols
                .get(v)
                .and_then(|vol| vol.arrays.get(a))
                .and_then(|arr| arr.member(m))
            {
                self.observer.member_io(addr, op, bytes, secs, r.is_ok());
            }
        }
        if let Some(vol) = self.vols.get_mut(v) {
            if a < vol.arrays.len() {
                vol.concat.complete_member_io(a, id, r);
            }
        }
    }

    fn volume_done(&mut self, v: usize, c: VolumeCompletion) {
        if let Some((t0, op, bytes)) = self.pending.remove(&(v, c.id)) {
            let vol = &mut self.vols[v];
            let ok = c.result.is_ok();
            let done = if ok { bytes } else { 0 };
            match op {
                VolumeOp::Read => vol.read_bytes += done,
                VolumeOp::Write => vol.write_bytes += done,
                VolumeOp::Flush => {}
            }
            if op != VolumeOp::Flush {
                let secs = self.now.saturating_duration_since(t0).as_secs_f64();
                self.observer.volume_io(v, op, bytes, secs, ok);
            }
        }
        if Exports::owns_request(c.id) {
            if let Some(x) = self.exports.as_mut() {
                if self.vols[v].reservation_lost {
                    x.forget(c);
                } else {
                    x.volume_done(c);
                }
            }
        }
    }

    /// Starts a round of state record writes for every export that owes
    /// one (its state changed, or the core just started); true if any did.
    fn save_states(&mut self) -> bool {
        let Some(x) = self.exports.as_mut() else {
            return false;
        };
        while let Some(e) = x.poll_persist() {
            self.saves.owe(e);
            self.notices.push_back(Notice::SaveExport(e));
        }
        let startable = self.saves.startable();
        for &e in &startable {
            let Some(x) = self.exports.as_ref() else {
                break;
            };
            let def = &x.exports()[e];
            let (v, at, state) = (def.volume, (def.shelf, def.slot), def.shared.snapshot());
            let arrays: Vec<([u8; 16], Vec<raid_engine::MemberState>)> = self.vols[v]
                .concat
                .arrays()
                .iter()
                .map(|eng| {
                    let s = eng.status();
                    (s.array_uuid, s.members.iter().map(|m| m.state).collect())
                })
                .collect();
            let (writes, done) = self.saves.start(e, at, &state, &arrays);
            for (n, (a, m, offset, data)) in writes.into_iter().enumerate() {
                let t = token(RECORD_VOLUME, 0, write_id(e, n));
                let io = MemberIo {
                    id: 0,
                    member: m,
                    op: MemberOp::Write,
                    offset,
                    sectors: (data.len() / SECTOR) as u32,
                    data,
                };
                match self.vols[v].arrays.get(a).and_then(|arr| arr.member(m)) {
                    Some(&(_, loc)) => self.route(v, t, loc, io),
                    None => self.refused.push_back((t, Err(MemberError::Gone))),
                }
            }
            if let Some(d) = done {
                self.state_saved(d);
            }
        }
        !startable.is_empty()
    }

    /// A round of state record writes finished: logged, and counted when no
    /// member took it.
    fn state_saved(&mut self, d: RoundDone) {
        let Some(x) = self.exports.as_mut() else {
            return;
        };
        let def = &x.exports()[d.export];
        let name = format!("e{}.{}", def.shelf, def.slot);
        let list: Vec<String> = d.reserve.iter().map(|m| m.to_string()).collect();
        if d.ok == 0 {
            x.persist_failed();
            self.log(
                3,
                format!(
                    "{name}: cannot save export state (record {}) on any member ({} failed): \
                     an appliance taking over would start from an older state",
                    d.seq, d.failed
                ),
            );
        } else {
            self.log(
                6,
                format!(
                    "{name}: export state saved; reserve list [{}] (record {} on {} members{})",
                    list.join(","),
                    d.seq,
                    d.ok,
                    if d.failed > 0 {
                        format!(", {} failed", d.failed)
                    } else {
                        String::new()
                    }
                ),
            );
        }
        self.dirty = true;
    }

    fn notice(&mut self, n: Notice) {
        self.notices.push_back(n);
    }

    fn log(&mut self, priority: u8, line: String) {
        self.notices.push_back(Notice::Log(priority, line));
    }
}
