//! The data path: one thread, one io_uring ring, running the back end (initiator
//! pool), every RAID engine (grouped into volumes by `raid_engine::Concat`), the
//! `file:` members and the front end (AoE target). The control plane talks to it
//! only through a bounded command channel plus the ring's waker; it publishes a
//! status snapshot every second and raises events the moment engines report them.

use super::create::random_uuid;
use super::front::Front;
use super::members::{release_stray, Devices, Location, MemberResult};
use crate::config::MemberAddr;
use crate::control::engine::{array_status, blade_statuses, ArrayContext};
use crate::control::status::{SpareGroupStatus, Status, VolumeStatus};
use crate::events::{self, Event, EventKind, EventSink};
use crate::metrics::{IoHandles, IoOp, Metrics};
use aoe_initiator::Event as PoolEvent;
use aoe_uring::Completion;
use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use raid_engine::MemberSpec;
use raid_engine::{Concat, MemberState, Tunables, VolumeCompletion, VolumeOp, SECTOR};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a control command did, for the operator.
pub type Reply = Result<String, String>;

/// Commands from the control plane (and the signal thread).
pub enum Cmd {
    Fail(String, MemberAddr, Sender<Reply>),
    Remove(String, MemberAddr, Sender<Reply>),
    Add(String, MemberAddr, Sender<Reply>),
    ReAdd(String, MemberAddr, Sender<Reply>),
    SpareAdd(String, MemberAddr, Sender<Reply>),
    SpareRemove(String, MemberAddr, Sender<Reply>),
    Scrub(String, bool, Sender<Reply>),
    Grow(String, String, Sender<Reply>),
    /// KiB/s per member.
    RebuildRate(String, Option<u64>, Option<u64>, Sender<Reply>),
    /// Live-changeable settings from a re-read config.
    Reload(Box<crate::config::Config>, Sender<Reply>),
    /// SIGTERM: stop exports, drain, mark clean, return.
    Stop,
}

/// A RAID array inside a volume.
pub struct ArrayRt {
    pub name: String,
    /// Engine member index i is `members[i]`.
    pub members: Vec<(MemberAddr, Location)>,
    pub spare_group: Option<String>,
}

/// A volume: arrays concatenated, maybe exported.
pub struct VolumeRt {
    pub name: String,
    pub concat: Concat,
    pub arrays: Vec<ArrayRt>,
    pub export: Option<(u16, u8)>,
    pub read_only: bool,
    pub allow: Vec<String>,
    pub io: Option<IoHandles>,
    pub read_bytes: u64,
    pub write_bytes: u64,
    /// Not a configured volume: an array no volume names yet (waiting for `grow`).
    pub standalone: bool,
}

/// Everything the data path owns.
pub struct DataPath {
    pub dev: Devices,
    pub(crate) front: Option<Front>,
    pub vols: Vec<VolumeRt>,
    /// Spare groups: name → unused spares (address, location).
    pub spares: Vec<(String, Vec<(MemberAddr, Location)>)>,
    pub cmds: Receiver<Cmd>,
    pub events: EventSink,
    pub metrics: Arc<Metrics>,
    pub status: Arc<Mutex<Status>>,
    pub appliance: String,
    pub started: Instant,
    /// Volume request start times, for latency.
    pending: HashMap<(usize, u64), (Instant, VolumeOp, u64)>,
    /// Member I/O start times by token, for the per-member metrics.
    member_started: HashMap<u64, (Instant, raid_engine::MemberOp, u64, String)>,
    member_io: HashMap<String, IoHandles>,
    last_tick_ns: u64,
}

// Member I/O tokens: volume in bits 56.., array in 48..56, engine id below.
fn token(vol: usize, arr: usize, id: u64) -> u64 {
    ((vol as u64) << 56) | ((arr as u64) << 48) | (id & ((1 << 48) - 1))
}
fn untoken(t: u64) -> (usize, usize, u64) {
    (
        (t >> 56) as usize,
        ((t >> 48) & 0xff) as usize,
        t & ((1 << 48) - 1),
    )
}

impl DataPath {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        dev: Devices,
        front: Option<Front>,
        vols: Vec<VolumeRt>,
        spares: Vec<(String, Vec<(MemberAddr, Location)>)>,
        cmds: Receiver<Cmd>,
        events: EventSink,
        metrics: Arc<Metrics>,
        status: Arc<Mutex<Status>>,
        appliance: String,
    ) -> DataPath {
        DataPath {
            dev,
            front,
            vols,
            spares,
            cmds,
            events,
            metrics,
            status,
            appliance,
            started: Instant::now(),
            pending: HashMap::new(),
            member_started: HashMap::new(),
            member_io: HashMap::new(),
            last_tick_ns: 0,
        }
    }

    fn now_ns(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.started).as_nanos() as u64
    }

    fn find_array(&self, name: &str) -> Option<(usize, usize)> {
        for (v, vol) in self.vols.iter().enumerate() {
            if let Some(a) = vol.arrays.iter().position(|a| a.name == name) {
                return Some((v, a));
            }
        }
        None
    }

    /// Runs until a `Stop` command; then drains and marks arrays clean.
    pub fn run(&mut self, watchdog: &dyn Fn(), on_stop: &dyn Fn()) -> anyhow::Result<()> {
        let mut events = Vec::with_capacity(4096);
        if let Some(f) = self.front.as_mut() {
            f.announce_all(&self.dev.ring);
        }
        let mut next_status = Instant::now();
        let mut stopping: Option<Instant> = None;
        loop {
            let now = Instant::now();
            self.pump(now);
            if now >= next_status {
                self.publish_status();
                watchdog();
                next_status = now + Duration::from_secs(1);
            }
            if let Some(deadline) = stopping {
                if self.drained() || now >= deadline {
                    break;
                }
            }
            let mut wake = next_status;
            if let Some(d) = self.dev.backend.as_ref().and_then(|b| b.next_deadline()) {
                wake = wake.min(d);
            }
            for v in &self.vols {
                if let Some(t) = v.concat.poll_timeout() {
                    let at = self.started + Duration::from_nanos(t);
                    wake = wake.min(at);
                }
            }
            if stopping.is_some() {
                wake = wake.min(now + Duration::from_millis(10));
            }
            let now = self.dev.ring.wait_until(Some(wake), &mut events)?;
            for ev in events.drain(..) {
                let ev = match self.dev.on_completion(now, ev) {
                    Some(e) => e,
                    None => continue,
                };
                let ev = match self.front.as_mut() {
                    Some(f) => match f.on_completion(&self.dev.ring, now, ev) {
                        Some(e) => e,
                        None => continue,
                    },
                    None => ev,
                };
                if !matches!(ev, Completion::Woken) {
                    release_stray(&self.dev.ring, ev);
                }
            }
            while let Ok(cmd) = self.cmds.try_recv() {
                if let Cmd::Stop = cmd {
                    if stopping.is_none() {
                        on_stop();
                        events::log_line(5, "stopping: exports closed, draining in-flight I/O");
                        if let Some(f) = self.front.as_mut() {
                            f.stop();
                        }
                        stopping = Some(now + Duration::from_secs(15));
                    }
                } else {
                    self.command(cmd, now);
                }
            }
            // Engines read time only through tick: keep it current (idle detection,
            // lazy bitmap clearing) and run their deadlines.
            let ns = self.now_ns(now);
            let periodic = ns >= self.last_tick_ns + 10_000_000;
            for v in &mut self.vols {
                if periodic || v.concat.poll_timeout().is_some_and(|t| t <= ns) {
                    v.concat.tick(ns);
                }
            }
            if periodic {
                self.last_tick_ns = ns;
            }
        }
        self.mark_clean()?;
        self.publish_status();
        Ok(())
    }

    fn drained(&self) -> bool {
        self.front.as_ref().is_none_or(|f| f.drained()) && self.pending.is_empty()
    }

    /// Moves work between the parts until nothing moves.
    fn pump(&mut self, now: Instant) {
        loop {
            let mut moved = false;
            // Front end → volumes.
            if let Some(f) = self.front.as_mut() {
                for (v, req) in f.take_requests(&self.dev.ring) {
                    moved = true;
                    if let Some(vol) = self.vols.get_mut(v) {
                        self.pending.insert(
                            (v, req.id),
                            (now, req.op, req.sectors as u64 * SECTOR as u64),
                        );
                        vol.concat.submit(req);
                    }
                }
            }
            // Engines → members.
            for v in 0..self.vols.len() {
                while let Some((a, io)) = self.vols[v].concat.poll_member_io() {
                    moved = true;
                    let member = self.vols[v].arrays[a].members.get(io.member);
                    let loc = member.map(|m| m.1);
                    let t = token(v, a, io.id);
                    if let Some(m) = member {
                        let bytes = io.sectors as u64 * SECTOR as u64;
                        self.member_started
                            .insert(t, (now, io.op, bytes, m.0.to_string()));
                    }
                    match loc {
                        Some(loc) => self.dev.submit(loc, io, t, now),
                        None => self.vols[v].concat.complete_member_io(
                            a,
                            io.id,
                            Err(raid_engine::MemberError::Gone),
                        ),
                    }
                }
            }
            // Members → engines.
            while let Some((t, r)) = self.dev.poll_done() {
                moved = true;
                self.member_done(t, r);
            }
            // Volumes → front end.
            for v in 0..self.vols.len() {
                while let Some(c) = self.vols[v].concat.poll_completion() {
                    moved = true;
                    self.volume_done(v, c, now);
                }
            }
            // Engine events → operator events, spare groups.
            for v in 0..self.vols.len() {
                while let Some((a, ev)) = self.vols[v].concat.poll_event() {
                    moved = true;
                    self.engine_event(v, a, ev);
                }
            }
            // Pool events: blades down/up.
            let mut pool_events = Vec::new();
            if let Some(b) = self.dev.backend.as_mut() {
                while let Some(e) = b.pool_mut().poll_event() {
                    pool_events.push(e);
                }
            }
            for e in pool_events {
                moved = true;
                self.pool_event(e);
            }
            self.give_spares();
            if let Some(b) = self.dev.backend.as_mut() {
                b.poll(&self.dev.ring, now);
            }
            if !moved {
                break;
            }
        }
    }

    fn member_done(&mut self, t: u64, r: MemberResult) {
        if let Some((t0, op, bytes, name)) = self.member_started.remove(&t) {
            let secs = t0.elapsed().as_secs_f64();
            match op {
                raid_engine::MemberOp::Flush => {
                    self.flush_metrics(&name).record(0, secs, r.is_ok())
                }
                raid_engine::MemberOp::Read | raid_engine::MemberOp::Write => {
                    let h = self
                        .member_io
                        .entry(name)
                        .or_insert_with_key(|n| self.metrics.member_io(n));
                    let io = if op == raid_engine::MemberOp::Read {
                        &h.read
                    } else {
                        &h.write
                    };
                    io.record(bytes, secs, r.is_ok());
                }
            }
        }
        let (v, a, id) = untoken(t);
        if let Some(vol) = self.vols.get_mut(v) {
            if a < vol.arrays.len() {
                vol.concat.complete_member_io(a, id, r);
            }
        }
    }

    /// The member I/O series with `op="flush"`. Flushes are rare (a client's FLUSH
    /// CACHE), so the series are looked up per flush rather than kept.
    fn flush_metrics(&self, member: &str) -> IoOp {
        let m = &self.metrics;
        let labels = [member, "flush"];
        IoOp {
            bytes: m.member_io_bytes.with_label_values(&labels),
            ops: m.member_io_ops.with_label_values(&labels),
            errors: m.member_io_errors.with_label_values(&labels),
            latency: m.member_io_latency.with_label_values(&labels),
        }
    }

    fn volume_done(&mut self, v: usize, c: VolumeCompletion, now: Instant) {
        if let Some((t0, op, bytes)) = self.pending.remove(&(v, c.id)) {
            let vol = &mut self.vols[v];
            let ok = c.result.is_ok();
            let secs = now.saturating_duration_since(t0).as_secs_f64();
            match op {
                VolumeOp::Read => {
                    vol.read_bytes += if ok { bytes } else { 0 };
                    if let Some(io) = &vol.io {
                        io.read.record(bytes, secs, ok);
                    }
                }
                VolumeOp::Write => {
                    vol.write_bytes += if ok { bytes } else { 0 };
                    if let Some(io) = &vol.io {
                        io.write.record(bytes, secs, ok);
                    }
                }
                VolumeOp::Flush => {}
            }
        }
        if Front::owns_request(c.id) {
            if let Some(f) = self.front.as_mut() {
                f.volume_done(&self.dev.ring, c);
            }
        }
    }

    fn member_name(&self, v: usize, a: usize, m: usize) -> String {
        self.vols[v].arrays[a]
            .members
            .get(m)
            .map_or_else(|| format!("member{m}"), |x| x.0.to_string())
    }

    fn engine_event(&mut self, v: usize, a: usize, ev: raid_engine::Event) {
        let arr = &self.vols[v].arrays[a];
        let names: Vec<String> = arr.members.iter().map(|m| m.0.to_string()).collect();
        let name = arr.name.clone();
        let mapped = events::engine::from_engine(&name, &ev, &|i| {
            names
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("member{i}"))
        });
        if let raid_engine::Event::MemberRefused { member, reason } = &ev {
            events::log_line(
                4,
                &format!(
                    "array {name}: {} not taken back: {reason}",
                    self.member_name(v, a, *member)
                ),
            );
        }
        if let Some(e) = mapped {
            self.events.emit(e);
        }
        // Every state change shows at once in `status`, not a second later.
        self.publish_status();
    }

    fn pool_event(&mut self, e: PoolEvent) {
        match e {
            PoolEvent::BladeDown { blade, failed_ios } => {
                let mut hit = Vec::new();
                for (v, vol) in self.vols.iter().enumerate() {
                    for (a, arr) in vol.arrays.iter().enumerate() {
                        for (m, (addr, loc)) in arr.members.iter().enumerate() {
                            if *loc == Location::Blade(blade) {
                                hit.push((v, a, m, addr.clone()));
                            }
                        }
                    }
                }
                for (v, a, m, addr) in hit {
                    let arr = self.vols[v].arrays[a].name.clone();
                    self.events.emit(
                        Event::new(EventKind::DeviceDisappeared, arr.clone())
                            .member(addr.to_string())
                            .detail(format!(
                                "blade silent past dead_after; {failed_ios} I/Os failed"
                            )),
                    );
                    let state = self.member_state(v, a, m);
                    if matches!(
                        state,
                        Some(MemberState::Active | MemberState::Rebuilding | MemberState::Spare)
                    ) {
                        let _ = self.vols[v].concat.array_mut(a).fail_member(m);
                    }
                }
            }
            PoolEvent::BladeUp { blade, .. } => {
                let mut back = Vec::new();
                for (v, vol) in self.vols.iter().enumerate() {
                    for (a, arr) in vol.arrays.iter().enumerate() {
                        for (m, (addr, loc)) in arr.members.iter().enumerate() {
                            if *loc == Location::Blade(blade) {
                                back.push((v, a, m, addr.clone()));
                            }
                        }
                    }
                }
                for (v, a, m, addr) in back {
                    let arr = self.vols[v].arrays[a].name.clone();
                    if !matches!(
                        self.member_state(v, a, m),
                        Some(MemberState::Faulty | MemberState::Missing)
                    ) {
                        continue;
                    }
                    self.events.emit(
                        Event::new(EventKind::DeviceReappeared, arr.clone())
                            .member(addr.to_string()),
                    );
                    if self.still_owns_slot(v, a, m) {
                        let _ = self.vols[v].concat.array_mut(a).member_returned(m);
                    } else {
                        events::log_line(
                            4,
                            &format!(
                                "array {arr}: {addr} is back but a spare replaced it; not reused \
                                 (`aoeraid add {arr} {addr}` makes it a spare)"
                            ),
                        );
                    }
                }
            }
            PoolEvent::Notice { message, .. } => {
                events::log_line(5, &format!("back end: {message}"))
            }
            _ => {}
        }
    }

    fn member_state(&self, v: usize, a: usize, m: usize) -> Option<MemberState> {
        self.vols[v].concat.arrays()[a]
            .status()
            .members
            .iter()
            .find(|x| x.index == m)
            .map(|x| x.state)
    }

    /// Does member `m` still hold its slot (no other member active/rebuilding in it)?
    fn still_owns_slot(&self, v: usize, a: usize, m: usize) -> bool {
        let st = self.vols[v].concat.arrays()[a].status();
        let Some(role) = st
            .members
            .iter()
            .find(|x| x.index == m)
            .and_then(|x| x.role)
        else {
            return false;
        };
        !st.members.iter().any(|x| {
            x.index != m
                && x.role == Some(role)
                && matches!(x.state, MemberState::Active | MemberState::Rebuilding)
        })
    }

    /// Degraded arrays without a spare of their own take one from their group.
    fn give_spares(&mut self) {
        for v in 0..self.vols.len() {
            for a in 0..self.vols[v].arrays.len() {
                let Some(group) = self.vols[v].arrays[a].spare_group.clone() else {
                    continue;
                };
                if !self.vols[v].concat.arrays()[a].needs_spare() {
                    continue;
                }
                let Some(g) = self.spares.iter_mut().find(|g| g.0 == group) else {
                    continue;
                };
                if g.1.is_empty() {
                    continue;
                }
                let (addr, loc) = g.1.remove(0);
                let arr = self.vols[v].arrays[a].name.clone();
                let spec = MemberSpec {
                    uuid: random_uuid().unwrap_or([0x5a; 16]),
                    size_sectors: self.dev.sectors(loc),
                    shelf: addr.shelf().map(u32::from),
                };
                match self.vols[v].concat.array_mut(a).add_spare(spec) {
                    Ok(idx) => {
                        let members = &mut self.vols[v].arrays[a].members;
                        if members.len() <= idx {
                            members.resize(idx + 1, (addr.clone(), loc));
                        }
                        members[idx] = (addr.clone(), loc);
                        self.events.emit(
                            Event::new(EventKind::MoveSpare, arr)
                                .member(addr.to_string())
                                .detail(format!("taken from spare group {group}")),
                        );
                    }
                    Err(e) => {
                        events::log_line(3, &format!("array {arr}: spare {addr} refused: {e}"));
                    }
                }
            }
        }
    }

    /// Builds the status snapshot and feeds it to the metrics.
    pub fn publish_status(&mut self) {
        let mut s = Status {
            appliance: self.appliance.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            uptime_seconds: self.started.elapsed().as_secs_f64(),
            ..Status::default()
        };
        for vol in &mut self.vols {
            for (a, arr) in vol.arrays.iter_mut().enumerate() {
                let names: Vec<String> = arr.members.iter().map(|m| m.0.to_string()).collect();
                let avail = arr
                    .spare_group
                    .as_ref()
                    .and_then(|g| self.spares.iter().find(|x| &x.0 == g))
                    .map_or(0, |g| g.1.len() as u32);
                let es = vol.concat.arrays()[a].status();
                let ctx = ArrayContext {
                    member_names: &names,
                    spare_group: arr.spare_group.clone(),
                    spares_available: avail,
                };
                s.arrays.push(array_status(&es, &ctx));
            }
            if vol.standalone {
                continue;
            }
            let (shelf, slot) = vol.export.unwrap_or((0, 0));
            s.volumes.push(VolumeStatus {
                name: vol.name.clone(),
                shelf,
                slot,
                sectors: vol.concat.volume_sectors(),
                arrays: vol.arrays.iter().map(|a| a.name.clone()).collect(),
                read_only: vol.read_only,
                allow: vol.allow.clone(),
                exported: vol.export.is_some() && self.front.is_some(),
                read_bytes: vol.read_bytes,
                write_bytes: vol.write_bytes,
            });
        }
        if let Some(b) = &self.dev.backend {
            s.blades = blade_statuses(b.pool());
            s.interfaces = b.interface_status(&self.dev.ring);
        }
        if let Some(f) = &self.front {
            let (ifaces, counters) = f.status(&self.dev.ring);
            s.interfaces.extend(ifaces);
            s.frontend = counters;
        }
        for (g, avail) in &self.spares {
            s.spare_groups.push(SpareGroupStatus {
                name: g.clone(),
                available: avail.iter().map(|m| m.0.to_string()).collect(),
                missing: Vec::new(),
            });
        }
        self.metrics.apply_status(&s);
        *self.status.lock() = s;
    }

    /// SIGTERM's last step: every array idle and its superblocks marked clean.
    fn mark_clean(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut events = Vec::new();
        for v in &mut self.vols {
            for a in 0..v.arrays.len() {
                let e = v.concat.array_mut(a);
                let t = Tunables {
                    bitmap_clear_ns: 0,
                    ..e.tunables()
                };
                e.set_tunables(t);
            }
        }
        loop {
            let now = Instant::now();
            let ns = self.now_ns(now);
            for v in &mut self.vols {
                v.concat.tick(ns);
            }
            self.pump(now);
            let all_clean = self.vols.iter().all(|v| {
                v.concat.arrays().iter().all(|e| {
                    e.status().clean_on_disk || e.status().state == raid_engine::ArrayState::Failed
                })
            });
            if all_clean && self.dev.in_flight() == 0 {
                return Ok(());
            }
            if now >= deadline {
                events::log_line(4, "stopping: arrays not all marked clean within 10 s");
                return Ok(());
            }
            let now = self
                .dev
                .ring
                .wait_until(Some(now + Duration::from_millis(5)), &mut events)?;
            for ev in events.drain(..) {
                if let Some(other) = self.dev.on_completion(now, ev) {
                    release_stray(&self.dev.ring, other);
                }
            }
        }
    }

    fn member_index(&self, v: usize, a: usize, addr: &MemberAddr) -> Option<usize> {
        // The newest entry wins: a re-added address may appear twice.
        self.vols[v].arrays[a]
            .members
            .iter()
            .rposition(|m| &m.0 == addr)
    }

    fn command(&mut self, cmd: Cmd, now: Instant) {
        match cmd {
            Cmd::Fail(arr, m, tx) => {
                let r = self.with_member(&arr, &m, |e, i| {
                    e.fail_member(i)
                        .map(|_| format!("{m} marked faulty in {arr}"))
                });
                let _ = tx.send(r);
            }
            Cmd::Remove(arr, m, tx) => {
                let r = self.with_member(&arr, &m, |e, i| {
                    e.remove_member(i)
                        .map(|_| format!("{m} removed from {arr}"))
                });
                let _ = tx.send(r);
            }
            Cmd::ReAdd(arr, m, tx) => {
                let r = self.with_member(&arr, &m, |e, i| {
                    e.member_returned(i)
                        .map(|_| format!("{m}: superblock being read; re-added with a bitmap resync if it still belongs to {arr}"))
                });
                let _ = tx.send(r);
            }
            Cmd::Add(arr, m, tx) => {
                let _ = tx.send(self.add(&arr, &m, now));
            }
            Cmd::SpareAdd(g, m, tx) => {
                let r = match self.dev.open(&m) {
                    None => Err(self
                        .dev
                        .problems
                        .pop()
                        .map_or("cannot open".into(), |p| p.1)),
                    Some(loc) => match self.spares.iter_mut().find(|x| x.0 == g) {
                        None => Err(format!("no spare group named {g}")),
                        Some(grp) if grp.1.iter().any(|x| x.0 == m) => {
                            Err(format!("{m} is already a spare of {g}"))
                        }
                        Some(grp) => {
                            grp.1.push((m.clone(), loc));
                            Ok(format!("{m} added to spare group {g}"))
                        }
                    },
                };
                let _ = tx.send(r);
            }
            Cmd::SpareRemove(g, m, tx) => {
                let r = match self.spares.iter_mut().find(|x| x.0 == g) {
                    None => Err(format!("no spare group named {g}")),
                    Some(grp) => match grp.1.iter().position(|x| x.0 == m) {
                        Some(i) => {
                            grp.1.remove(i);
                            Ok(format!("{m} removed from spare group {g}"))
                        }
                        None => Err(format!("{m} is not an unused spare of {g}")),
                    },
                };
                let _ = tx.send(r);
            }
            Cmd::Scrub(arr, repair, tx) => {
                let r = match self.find_array(&arr) {
                    None => Err(format!("no array named {arr}")),
                    Some((v, a)) => self.vols[v]
                        .concat
                        .array_mut(a)
                        .start_scrub(repair)
                        .map(|_| {
                            format!(
                                "{} started on {arr}",
                                if repair { "repair" } else { "check" }
                            )
                        })
                        .map_err(|e| format!("{arr}: {e}")),
                };
                let _ = tx.send(r);
            }
            Cmd::Grow(vol, arr, tx) => {
                let _ = tx.send(self.grow(&vol, &arr));
            }
            Cmd::RebuildRate(arr, min, max, tx) => {
                let r = match self.find_array(&arr) {
                    None => Err(format!("no array named {arr}")),
                    Some((v, a)) => {
                        let e = self.vols[v].concat.array_mut(a);
                        let st = e.status();
                        let (lo, hi) = (
                            min.unwrap_or(st.sync_min_kib_s),
                            max.unwrap_or(st.sync_max_kib_s),
                        );
                        if lo > hi {
                            Err(format!("min {lo} KiB/s above max {hi} KiB/s"))
                        } else {
                            e.set_sync_rates(lo, hi);
                            Ok(format!("{arr}: rebuild rate {lo}..{hi} KiB/s per member"))
                        }
                    }
                };
                let _ = tx.send(r);
            }
            Cmd::Reload(cfg, tx) => {
                let _ = tx.send(self.reload(&cfg));
            }
            Cmd::Stop => {}
        }
        self.publish_status();
    }

    fn with_member(
        &mut self,
        arr: &str,
        m: &MemberAddr,
        f: impl FnOnce(&mut raid_engine::Engine, usize) -> Result<String, raid_engine::ControlError>,
    ) -> Reply {
        let (v, a) = self
            .find_array(arr)
            .ok_or_else(|| format!("no array named {arr}"))?;
        let i = self
            .member_index(v, a, m)
            .ok_or_else(|| format!("{m} is not a member of {arr}"))?;
        f(self.vols[v].concat.array_mut(a), i).map_err(|e| format!("{arr}: {m}: {e}"))
    }

    fn add(&mut self, arr: &str, m: &MemberAddr, _now: Instant) -> Reply {
        let (v, a) = self
            .find_array(arr)
            .ok_or_else(|| format!("no array named {arr}"))?;
        // A member currently serving any array cannot be added again.
        for vol in &self.vols {
            for (ai, other) in vol.arrays.iter().enumerate() {
                for (mi, (addr, _)) in other.members.iter().enumerate() {
                    if addr == m {
                        let st = vol.concat.arrays()[ai]
                            .status()
                            .members
                            .iter()
                            .find(|x| x.index == mi)
                            .map(|x| x.state);
                        if matches!(
                            st,
                            Some(
                                MemberState::Active | MemberState::Rebuilding | MemberState::Spare
                            )
                        ) {
                            return Err(format!(
                                "{m} is in use by array {} ({:?})",
                                other.name,
                                st.unwrap()
                            ));
                        }
                    }
                }
            }
        }
        let loc = match self.dev.open(m) {
            Some(l) => l,
            None => {
                return Err(self
                    .dev
                    .problems
                    .pop()
                    .map_or("cannot open".into(), |p| format!("{m}: {}", p.1)))
            }
        };
        let spec = MemberSpec {
            uuid: random_uuid().map_err(|e| e.to_string())?,
            size_sectors: self.dev.sectors(loc),
            shelf: m.shelf().map(u32::from),
        };
        let idx = self.vols[v]
            .concat
            .array_mut(a)
            .add_spare(spec)
            .map_err(|e| format!("{arr}: {m}: {e}"))?;
        let members = &mut self.vols[v].arrays[a].members;
        if members.len() <= idx {
            members.resize(idx + 1, (m.clone(), loc));
        }
        members[idx] = (m.clone(), loc);
        let degraded = self.vols[v].concat.arrays()[a].is_degraded();
        Ok(if degraded {
            format!("{m} added to {arr}; rebuilding onto it")
        } else {
            format!("{m} added to {arr} as a spare")
        })
    }

    fn grow(&mut self, vol: &str, arr: &str) -> Reply {
        let v = self
            .vols
            .iter()
            .position(|x| x.name == vol && !x.standalone)
            .ok_or_else(|| format!("no volume named {vol}"))?;
        let (sv, _) = self
            .find_array(arr)
            .ok_or_else(|| format!("no array named {arr}"))?;
        if !self.vols[sv].standalone {
            return Err(format!(
                "array {arr} already belongs to volume {}",
                self.vols[sv].name
            ));
        }
        let busy = self.pending.keys().any(|(pv, _)| *pv == sv)
            || self.dev.in_flight() > 0
                && self.vols[sv]
                    .concat
                    .arrays()
                    .iter()
                    .any(|e| !e.status().clean_on_disk);
        if busy {
            return Err(format!("array {arr} is busy; try again in a moment"));
        }
        let old = std::mem::replace(&mut self.vols[sv].concat, Concat::new(Vec::new()));
        let rt = std::mem::take(&mut self.vols[sv].arrays);
        for (e, r) in old.into_arrays().into_iter().zip(rt) {
            self.vols[v].concat.grow(e);
            self.vols[v].arrays.push(r);
        }
        let sectors = self.vols[v].concat.volume_sectors();
        if let Some(f) = self.front.as_mut() {
            f.resize(&self.dev.ring, v, sectors);
        }
        Ok(format!(
            "volume {vol} grown by array {arr}: now {} MiB, announced",
            (sectors * SECTOR as u64) >> 20
        ))
    }

    /// Applies a reloaded volume's allow list and config string to its export:
    /// through the shared export state (the target's workers pick it up on the
    /// next frame), then saved to the state file like a protocol-made change.
    fn reload_export(
        &mut self,
        v: usize,
        vs: &crate::config::VolumeSpec,
        applied: &mut Vec<String>,
        refused: &mut Vec<String>,
    ) {
        let Some(ex) = self
            .front
            .as_ref()
            .and_then(|f| f.exports().iter().find(|e| e.volume == v))
        else {
            return;
        };
        let mut changed = Vec::new();
        let allow: Vec<String> = vs.allow.iter().map(|m| m.to_string()).collect();
        if allow != self.vols[v].allow {
            let macs: Vec<aoe_wire::Mac> = vs.allow.iter().map(|m| aoe_wire::Mac(m.0)).collect();
            match ex.shared.set_mask(&macs) {
                Ok(_) => {
                    changed.push(format!(
                        "volume {}: allow list [{}]",
                        vs.name,
                        allow.join(", ")
                    ));
                    self.vols[v].allow = allow;
                }
                Err(e) => refused.push(format!("volume {}: allow list: {e}", vs.name)),
            }
        }
        if let Some(c) = &vs.config_string {
            match ex.shared.set_config_string(c.as_bytes()) {
                Ok(true) => changed.push(format!("volume {}: config string {c:?}", vs.name)),
                Ok(false) => {}
                Err(e) => refused.push(format!("volume {}: config string: {e}", vs.name)),
            }
        }
        if changed.is_empty() {
            return;
        }
        if let Err(e) = ex.state.save(&ex.shared.snapshot()) {
            events::log_line(
                3,
                &format!("e{}.{}: cannot save export state: {e:#}", ex.shelf, ex.slot),
            );
        }
        for line in &changed {
            events::log_line(5, &format!("reload: {line}"));
        }
        applied.extend(changed);
    }

    fn reload(&mut self, cfg: &crate::config::Config) -> Reply {
        let mut applied = Vec::new();
        let mut refused = Vec::new();
        for spec in &cfg.arrays {
            let Some((v, a)) = self.find_array(&spec.name) else {
                refused.push(format!("new array {} (restart to assemble it)", spec.name));
                continue;
            };
            let e = self.vols[v].concat.array_mut(a);
            e.set_sync_rates(spec.rebuild.min.0 / 1024, spec.rebuild.max.0 / 1024);
            applied.push(format!(
                "{}: rebuild {}..{}",
                spec.name, spec.rebuild.min, spec.rebuild.max
            ));
            let names: Vec<&MemberAddr> = self.vols[v].arrays[a]
                .members
                .iter()
                .map(|m| &m.0)
                .collect();
            if spec.members.iter().any(|m| !names.contains(&m)) {
                refused.push(format!(
                    "{}: member list changes (use add/remove/re-add)",
                    spec.name
                ));
            }
            if self.vols[v].arrays[a].spare_group != spec.spare_group {
                self.vols[v].arrays[a].spare_group = spec.spare_group.clone();
                applied.push(format!("{}: spare group {:?}", spec.name, spec.spare_group));
            }
        }
        for g in &cfg.spare_groups.0 {
            let entry = match self.spares.iter().position(|x| x.0 == g.name) {
                Some(i) => i,
                None => {
                    self.spares.push((g.name.clone(), Vec::new()));
                    self.spares.len() - 1
                }
            };
            for m in &g.members {
                let in_use = self.vols.iter().any(|vol| {
                    vol.arrays
                        .iter()
                        .any(|a| a.members.iter().any(|x| &x.0 == m))
                });
                if in_use || self.spares[entry].1.iter().any(|x| &x.0 == m) {
                    continue;
                }
                match self.dev.open(m) {
                    Some(loc) => {
                        self.spares[entry].1.push((m.clone(), loc));
                        applied.push(format!("spare {m} added to {}", g.name));
                    }
                    None => refused.push(format!("spare {m}: cannot open")),
                }
            }
            let keep: Vec<MemberAddr> = g.members.clone();
            self.spares[entry].1.retain(|x| keep.contains(&x.0));
        }
        for vs in &cfg.volumes {
            match self
                .vols
                .iter()
                .position(|x| x.name == vs.name && !x.standalone)
            {
                None => refused.push(format!("new volume {} (restart to export it)", vs.name)),
                Some(v) => {
                    let x = &self.vols[v];
                    if x.export != Some((vs.export.shelf, vs.export.slot)) {
                        refused.push(format!(
                            "volume {}: export address change (restart)",
                            vs.name
                        ));
                    }
                    if x.read_only != vs.read_only {
                        refused.push(format!("volume {}: read_only change (restart)", vs.name));
                    }
                    self.reload_export(v, vs, &mut applied, &mut refused);
                }
            }
        }
        let mut msg = format!(
            "reloaded: {}",
            if applied.is_empty() {
                "nothing changed".into()
            } else {
                applied.join("; ")
            }
        );
        if !refused.is_empty() {
            msg.push_str(&format!("; not applied: {}", refused.join("; ")));
        }
        Ok(msg)
    }
}
