//! `aoeraid serve`'s workers: each a driver over the catalog's files on its
//! own ring, following the catalog between frames.
//!
//! A worker compares the catalog's generation every turn. On a change it
//! removes exports no longer listed (the core stops addressing them; what
//! they have in flight completes and is answered, then their file is
//! unregistered) and adds the new ones; the others never notice. Interfaces
//! are looked up by name on a timer (`interface_poll`): one that did not
//! exist is opened when it appears, one replaced by a new device of the same
//! name gets a new socket, and the exports naming it are served there from
//! then on. (Polling rather than netlink: one ioctl per name per second is
//! nothing, and it needs no second socket type.)

use super::catalog::{Catalog, Served};
use super::driver::DriverCounters;
use super::file::RingFiles;
use super::intake::{self, frame_count};
use super::ring::RingFront;
use super::Driver;
use anyhow::Context;
use aoe_target::{Counters, ExportConfig, ExportId, IfaceId, Target, TargetConfig};
use aoe_uring::{
    Completion, FanoutMode, FileId, InterfaceInfo, PacketSocket, Ring, RingConfig, RingWaker,
};
use aoe_wire::Mac;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Flags the standalone loop watches (set from signal handlers).
#[derive(Debug, Default)]
pub(crate) struct Control {
    pub(crate) stop: AtomicBool,
    pub(crate) recheck_size: AtomicBool,
}

/// Totals over all workers, printed at exit.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Summary {
    pub(crate) core: Counters,
    pub(crate) driver: DriverCounters,
    pub(crate) kernel_dropped: u64,
}

/// Ring sizes for a front-end worker: send slots enough for every request the
/// core can hold, payload page-aligned.
fn ring_config(target_requests: usize) -> RingConfig {
    RingConfig {
        sq_entries: 2048,
        // Frames arrive in the sockets' mapped rings: no provided buffers used.
        recv_buffers: 1,
        send_slots: (target_requests + 256) as u32,
        align_payload_at: Some(aoe_wire::ATA_DATA_OFFSET),
        max_ops: (target_requests + 64) as u32,
        // One per export and per interface socket, reloads included.
        max_files: 4096,
        // Completions are processed only inside the worker's wait, and a
        // frame landing in a mapped ring while the worker lingers does not
        // wake it: without this each request's poll completion woke the
        // worker (task work), costing the client's CPU the wake-up.
        single_issuer: true,
        ..RingConfig::default()
    }
}

/// Every worker's waker, by worker number. A Reserve reply held on one
/// worker may wait for a write in flight on another; the worker whose write
/// leaves the export's write gate wakes the holder
/// (`Target::take_fence_wakes`), so no worker polls for it.
struct FenceWakers(Box<[OnceLock<RingWaker>]>);

impl FenceWakers {
    /// Wakes the workers whose bits are set in `workers`.
    fn wake(&self, workers: u64) {
        for (k, w) in self.0.iter().enumerate() {
            if workers & (1 << k) != 0 {
                if let Some(w) = w.get() {
                    // Fails only if the eventfd is gone, i.e. the worker exited.
                    let _ = w.wake();
                }
            }
        }
    }
}

/// An interface a worker has a socket on (index = its `IfaceId`).
struct Iface {
    name: String,
    ifindex: u32,
}

/// One worker: its ring, the driver over its files, and what of the
/// catalog it serves.
struct Worker {
    ring: Ring,
    front: RingFront<RingFiles>,
    ifaces: Vec<Iface>,
    /// Exports served, with their id in the core.
    live: Vec<(Arc<Served>, ExportId)>,
    /// Removed exports whose file stays registered until they are idle.
    retiring: Vec<(ExportId, FileId)>,
    generation: u64,
    fanout: Option<u16>,
    primary: bool,
    /// With several workers: every worker's waker.
    wakers: Option<Arc<FenceWakers>>,
}

impl Worker {
    fn new(cat: &Catalog, fanout: Option<u16>, primary: bool) -> anyhow::Result<Worker> {
        let tcfg = TargetConfig {
            buffer_count: cat.cfg.max_buffers,
            max_clients: 32,
            ..TargetConfig::default()
        };
        let ring = Ring::with_config(&ring_config(usize::from(tcfg.buffer_count) * 16))
            .context("create io_uring")?;
        let target = Target::new(tcfg).map_err(anyhow::Error::msg)?;
        let store = RingFiles::new(target.request_capacity());
        Ok(Worker {
            ring,
            front: RingFront::new(Vec::new(), Vec::new(), Driver::new(target, store)),
            ifaces: Vec::new(),
            live: Vec::new(),
            retiring: Vec::new(),
            generation: 0,
            fanout,
            primary,
            wakers: None,
        })
    }

    /// Joins the workers that wake each other for held Reserve replies, as
    /// worker `k`.
    fn join_wakers(&mut self, wakers: Arc<FenceWakers>, k: usize) -> anyhow::Result<()> {
        let waker = self.ring.waker().context("eventfd for fence wake-ups")?;
        let _ = wakers.0[k].set(waker);
        self.front
            .driver_mut()
            .target_mut()
            .watch_fences_as(k as u8);
        self.wakers = Some(wakers);
        Ok(())
    }

    /// Opens a socket on every named interface that exists and has none
    /// yet (or whose device was replaced); errors only with `strict`.
    /// Returns whether any interface came up.
    fn poll_ifaces(&mut self, cat: &Catalog, strict: bool) -> anyhow::Result<bool> {
        let mut names: Vec<String> = Vec::new();
        for s in &self.live_or_listed(cat) {
            for n in &s.spec.interfaces {
                if !names.contains(n) {
                    names.push(n.clone());
                }
            }
        }
        let mut changed = false;
        for name in names {
            let info = match InterfaceInfo::lookup(&name) {
                Ok(i) => i,
                Err(e) if strict => return Err(e).with_context(|| format!("interface {name}")),
                Err(_) => continue,
            };
            let known = self.ifaces.iter().position(|i| i.name == name);
            if known.is_some_and(|k| self.ifaces[k].ifindex == info.index) {
                continue;
            }
            let sock = match self.open_socket(cat, &name, info.mtu) {
                Ok(s) => s,
                Err(e) if strict => return Err(e),
                Err(e) => {
                    eprintln!("aoeraid serve: {name}: {e:#}");
                    continue;
                }
            };
            let (mac, mtu) = (Mac(sock.mac()), sock.mtu());
            let sock = self.ring.add_socket(sock)?;
            let target = self.front.driver_mut().target_mut();
            let id = match known {
                Some(k) => {
                    target.set_interface(IfaceId(k as u16), mac, mtu);
                    self.ifaces[k].ifindex = info.index;
                    IfaceId(k as u16)
                }
                None => {
                    let id = target.add_interface(mac, mtu).map_err(anyhow::Error::msg)?;
                    self.ifaces.push(Iface {
                        name: name.clone(),
                        ifindex: info.index,
                    });
                    id
                }
            };
            self.front.set_socket(id, sock);
            if self.primary {
                eprintln!("aoeraid serve: serving on {name} ({mac}, MTU {mtu})");
            }
            changed = true;
        }
        if changed {
            for k in 0..self.live.len() {
                let (s, id) = (self.live[k].0.clone(), self.live[k].1);
                let ids = self.iface_ids(&s);
                let t = self.front.driver_mut().target_mut();
                t.set_export_interfaces(id, &ids)
                    .map_err(anyhow::Error::msg)?;
                if self.primary {
                    self.front.announce(&self.ring, id);
                }
            }
        }
        Ok(changed)
    }

    /// The exports being served, or (before the first sync) those listed.
    fn live_or_listed(&self, cat: &Catalog) -> Vec<Arc<Served>> {
        if self.generation == 0 {
            cat.snapshot().1.iter().cloned().collect()
        } else {
            self.live.iter().map(|(s, _)| s.clone()).collect()
        }
    }

    fn open_socket(&self, cat: &Catalog, name: &str, mtu: u32) -> anyhow::Result<PacketSocket> {
        let sock = PacketSocket::open_with(name, &intake::socket_options(mtu))
            .with_context(|| format!("open AF_PACKET socket on {name}"))?;
        if let Some(base) = self.fanout {
            sock.join_fanout(
                base.wrapping_add(cat.name_index(name)),
                FanoutMode::BySourceMac,
            )
            .with_context(|| format!("PACKET_FANOUT on {name}"))?;
        }
        Ok(sock)
    }

    /// The core's ids of the interfaces of `s` that are up.
    fn iface_ids(&self, s: &Served) -> Vec<IfaceId> {
        s.spec
            .interfaces
            .iter()
            .filter_map(|n| self.ifaces.iter().position(|i| &i.name == n))
            .map(|k| IfaceId(k as u16))
            .collect()
    }

    /// Unregisters the files of removed exports that have nothing in flight.
    fn sweep(&mut self) {
        let mut k = 0;
        while k < self.retiring.len() {
            let (id, file) = self.retiring[k];
            if self.front.driver().target().export_idle(id) {
                let _ = self.ring.unregister_file(file);
                self.front.driver_mut().store_mut().set(id, None, false);
                self.retiring.swap_remove(k);
            } else {
                k += 1;
            }
        }
    }

    /// Follows the catalog: removes what it no longer lists, adds what is new.
    fn sync_exports(&mut self, cat: &Catalog) {
        let (generation, list) = cat.snapshot();
        if generation == self.generation {
            return;
        }
        self.generation = generation;
        let mut k = 0;
        while k < self.live.len() {
            if list.iter().any(|s| Arc::ptr_eq(s, &self.live[k].0)) {
                k += 1;
                continue;
            }
            let (_, id) = self.live.swap_remove(k);
            self.front.driver_mut().target_mut().remove_export(id);
            if let Some((file, _)) = self.front.driver().store().file(id) {
                self.retiring.push((id, file));
            }
        }
        // Slots of idle removed exports may be reused below: free them first.
        self.sweep();
        for s in list.iter() {
            if self.live.iter().any(|(l, _)| Arc::ptr_eq(l, s)) {
                continue;
            }
            // One export that cannot be added must not stop the others.
            match self.add_export(s) {
                Ok(id) => {
                    self.live.push((s.clone(), id));
                    if self.primary {
                        self.front.announce(&self.ring, id);
                    }
                }
                Err(e) => eprintln!(
                    "aoeraid serve: e{}.{} not served: {e:#}",
                    s.spec.shelf, s.spec.slot
                ),
            }
        }
    }

    /// Puts `s` in the core with its file registered on the ring.
    fn add_export(&mut self, s: &Served) -> anyhow::Result<ExportId> {
        let cfg = ExportConfig {
            shelf: s.spec.shelf,
            slot: s.spec.slot,
            read_only: s.spec.read_only,
            ifaces: self.iface_ids(s),
        };
        let file = self.ring.register_file(&s.store.file)?;
        let t = self.front.driver_mut().target_mut();
        let id = match t.add_export(cfg, s.shared.clone()) {
            Ok(id) => id,
            Err(e) => {
                let _ = self.ring.unregister_file(file);
                anyhow::bail!("{e}");
            }
        };
        if let Err(e) = t.set_buffer_count(id, s.spec.buffers) {
            t.remove_export(id);
            let _ = self.ring.unregister_file(file);
            anyhow::bail!("{e}");
        }
        self.front.driver_mut().store_mut().set(
            id,
            Some((file, s.spec.offset_bytes())),
            s.store.direct,
        );
        self.front.set_state(id, s.state.clone());
        Ok(id)
    }

    /// Re-reads every store's size and records/announces changes.
    fn check_sizes(&mut self) {
        for (s, id) in &self.live {
            match s.store.sectors() {
                Ok(n) => {
                    if self.front.resize(&self.ring, *id, n) {
                        eprintln!(
                            "aoeraid serve: e{}.{} now {n} sectors, announced",
                            s.spec.shelf, s.spec.slot
                        );
                    }
                }
                Err(err) => eprintln!("aoeraid serve: {err:#}"),
            }
        }
    }

    /// Feeds one ring completion: socket completions to the driver, file
    /// completions through the store.
    fn on_completion(&mut self, now: Instant, c: Completion) {
        let ring = &self.ring;
        let (user, result, buf) = match self.front.on_socket(ring, now, c) {
            Some(Completion::IoDone { user, result, buf }) => (user, result, buf),
            // A socket replaced when its interface came back as a new device:
            // give its frames back.
            Some(Completion::Frame { buf, .. }) => return ring.recycle(buf),
            _ => return,
        };
        let (d, mut port) = self.front.parts(ring);
        if let Some(done) = d.store().done(ring, user, result, buf) {
            d.on_done(&mut port, done);
        }
    }

    /// Feeds a wait's completions, then sends what they produced.
    fn handle(&mut self, now: Instant, events: &mut Vec<Completion>) {
        self.front.driver_mut().frames_coming(frame_count(events));
        for ev in events.drain(..) {
            self.on_completion(now, ev);
        }
        self.front.poll_fences(&self.ring);
        self.front.flush(&self.ring);
        if let Some(wakers) = &self.wakers {
            let woken = self.front.driver_mut().target_mut().take_fence_wakes();
            if woken != 0 {
                wakers.wake(woken);
            }
        }
    }

    /// Requests always in the kernel while idle: each socket's, and the
    /// fence waker's read.
    fn standing_requests(&self) -> u64 {
        self.ring.socket_count() as u64 + u64::from(self.wakers.is_some())
    }

    fn summary(&self) -> Summary {
        Summary {
            core: *self.front.driver().target().counters(),
            driver: *self.front.driver().counters(),
            kernel_dropped: self.front.kernel_dropped(&self.ring),
        }
    }
}

/// The standalone loop: `threads` workers (the calling thread is worker 0,
/// which also announces and watches the store sizes) until `ctl.stop`, then
/// drains in-flight requests (up to 5 s) and returns the counters. With
/// `strict`, an interface missing at start is an error (the command line);
/// otherwise it is served once it comes up (a config file).
///
/// Each worker builds its ring on its own thread: the ring is single-issuer
/// (see [`ring_config`]), so every enter and registration must come from the
/// thread that first submits. A worker that cannot be built stops the others
/// and fails the start.
pub(crate) fn run(cat: Arc<Catalog>, ctl: Arc<Control>, strict: bool) -> anyhow::Result<Summary> {
    let threads = cat.cfg.threads;
    let fanout = (threads > 1).then(|| (std::process::id() as u16) & 0x7fff);
    let wakers = (threads > 1)
        .then(|| Arc::new(FenceWakers((0..threads).map(|_| OnceLock::new()).collect())));
    let build = move |cat: &Catalog, k: usize| -> anyhow::Result<Worker> {
        let mut w = Worker::new(cat, fanout, k == 0)?;
        if let Some(wakers) = &wakers {
            w.join_wakers(wakers.clone(), k)?;
        }
        w.poll_ifaces(cat, strict)?;
        w.sync_exports(cat);
        Ok(w)
    };
    let first = build(&cat, 0)?;
    let (ready, built) = std::sync::mpsc::channel();
    let mut handles = Vec::new();
    for i in 1..threads {
        let (cat, ctl, ready, build) = (cat.clone(), ctl.clone(), ready.clone(), build.clone());
        handles.push(
            std::thread::Builder::new()
                .name(format!("aoe-target-{i}"))
                .spawn(move || match build(&cat, i) {
                    Ok(w) => {
                        let _ = ready.send(None);
                        serve_loop(&cat, &ctl, w).map(Some)
                    }
                    Err(e) => {
                        let _ = ready.send(Some(e));
                        Ok(None)
                    }
                })?,
        );
    }
    drop(ready);
    // One message per spawned worker (its sender lives as long as it does).
    let failed = (1..threads)
        .filter_map(|_| built.recv().ok().flatten())
        .next();
    if let Some(e) = failed {
        ctl.stop.store(true, Ordering::Release);
        for h in handles {
            let _ = h.join();
        }
        return Err(e);
    }
    let mut total = serve_loop(&cat, &ctl, first)?;
    for h in handles {
        let s = h
            .join()
            .map_err(|_| anyhow::anyhow!("worker thread panicked"))??;
        if let Some(s) = s {
            add_counters(&mut total, &s);
        }
    }
    Ok(total)
}

fn serve_loop(cat: &Catalog, ctl: &Control, mut w: Worker) -> anyhow::Result<Summary> {
    let mut events: Vec<Completion> = Vec::with_capacity(4096);
    let mut next_stat = Instant::now() + cat.cfg.stat_interval;
    let mut next_poll = Instant::now() + cat.cfg.iface_poll;
    let mut drain_deadline: Option<Instant> = None;
    let mut linger = Duration::ZERO;
    let mut spin = intake::Spin::new(cat.cfg.spin);
    // When the last turn's replies were submitted.
    let mut replied = Instant::now();
    loop {
        // A Reserve reply held for a write on another worker is woken by
        // that worker (`FenceWakers`): no need to look again soon.
        let timeout = if drain_deadline.is_some() {
            Duration::from_millis(10)
        } else {
            Duration::from_millis(200)
        };
        let mut spun = false;
        if let Some(budget) = spin.before_wait() {
            if w.ring.ops_in_flight() == 0 && drain_deadline.is_none() {
                spun = w.ring.spin_for_frames(budget, &mut events)? > 0;
                spin.spun(spun);
            }
        }
        let now = if spun {
            Instant::now()
        } else {
            w.ring.wait_lingering(Some(timeout), linger, &mut events)?
        };
        let frames = frame_count(&events);
        spin.turn(frames, now.saturating_duration_since(replied));
        linger = intake::linger_after(frames);
        w.handle(now, &mut events);
        if w.front.driver_mut().store_mut().take_reads_queued() > 0 {
            // A buffered read that hits the page cache completes inside the
            // enter that submits it: submit the reads now and queue their
            // replies in this turn, instead of one (lingering) wait later.
            // (O_DIRECT reads never complete there: not worth the enter.)
            let now = w.ring.wait(Some(Duration::ZERO), &mut events)?;
            w.handle(now, &mut events);
        }
        replied = Instant::now();
        if drain_deadline.is_none() {
            if cat.generation() != w.generation {
                w.sync_exports(cat);
                w.poll_ifaces(cat, false)?;
            }
            if now >= next_poll {
                w.poll_ifaces(cat, false)?;
                next_poll = now + cat.cfg.iface_poll;
            }
            if !w.retiring.is_empty() {
                w.sweep();
            }
        }
        if w.primary && (now >= next_stat || ctl.recheck_size.swap(false, Ordering::AcqRel)) {
            w.check_sizes();
            next_stat = now + cat.cfg.stat_interval;
        }
        if drain_deadline.is_none() && ctl.stop.load(Ordering::Acquire) {
            w.front.stop();
            drain_deadline = Some(now + Duration::from_secs(5));
        }
        if let Some(d) = drain_deadline {
            if (w.front.driver().drained() && w.ring.in_flight() <= w.standing_requests())
                || now >= d
            {
                break;
            }
        }
    }
    Ok(w.summary())
}

fn add_counters(t: &mut Summary, s: &Summary) {
    t.core.add(&s.core);
    let (a, b) = (&mut t.driver, &s.driver);
    macro_rules! sum {
        ($($f:ident),*) => { $( a.$f += b.$f; )* };
    }
    sum!(
        slot_waits,
        ctl_dropped,
        submit_errors,
        send_errors,
        persist_errors,
        ignored_while_stopping,
        read_bytes,
        write_bytes,
        flushes,
        merged_ops,
        merged_requests
    );
    t.kernel_dropped += s.kernel_dropped;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bits a write's worker takes from the target (`take_fence_wakes`)
    /// wake exactly those workers' rings, at once, and no other.
    #[test]
    fn fence_wake_ups_reach_the_named_workers_rings_only() {
        let wakers = FenceWakers((0..3).map(|_| OnceLock::new()).collect());
        let mut rings: Vec<Ring> = (0..3).map(|_| Ring::new().unwrap()).collect();
        for (k, r) in rings.iter_mut().enumerate() {
            assert!(wakers.0[k].set(r.waker().unwrap()).is_ok());
        }
        wakers.wake(0b101);
        let woken = |r: &mut Ring, timeout: Duration| {
            let mut ev = Vec::new();
            r.wait(Some(timeout), &mut ev).unwrap();
            ev.iter().any(|c| matches!(c, Completion::Woken))
        };
        // Far longer than any wait that was woken, and than the poll it replaces.
        let long = Duration::from_secs(30);
        let t = Instant::now();
        assert!(woken(&mut rings[0], long) && woken(&mut rings[2], long));
        assert!(t.elapsed() < long, "woken, not timed out");
        assert!(!woken(&mut rings[1], Duration::from_millis(20)));
    }
}
