//! The front end: AoE target exports served through io_uring.
//!
//! One driver ([`Driver`], ring-free) around the sans-IO
//! [`aoe_target::Target`], generic over its store: files and block devices
//! through io_uring ([`RingFiles`], `aoeraid serve`) or RAID volumes
//! ([`Volumes`], `aoeraid run`). Only the last step — send slots, frames,
//! file I/O submission — touches the ring ([`RingFront`]).
//!
//! [`prepare`] opens the stores and loads the durable per-export state;
//! [`Prepared::build_worker`] puts one worker on a [`Ring`]; [`run`] is the
//! standalone loop `aoeraid serve` uses.
//!
//! ## Data path
//!
//! Multishot receive into the ring's provided buffers; a READ's data is read
//! by io_uring straight into the send slot at `ATA_DATA_OFFSET` (page-aligned,
//! so O_DIRECT works in place) and the slot is sent; a WRITE's payload goes to
//! the store straight from the receive buffer. When send slots run out,
//! replies, control frames and reads wait in the driver's queue (see
//! [`driver`]), never dropped. Completed writes are made
//! durable by one fdatasync per batch (group commit in the core) and only
//! then acknowledged. Everything queued in one pass reaches the kernel in one
//! `io_uring_enter`. No allocation and no lock per frame: requests live in
//! the core's fixed slab, the durable state is read through one atomic
//! generation load.
//!
//! ## More than one core (`--threads N`)
//!
//! One core runs out at a few hundred thousand frames per second, mostly
//! spent in the kernel's packet receive/send paths, so the frames
//! themselves have to be spread. Each of N worker threads owns a `Ring`
//! and opens its own AF_PACKET socket on every interface; the sockets of
//! one interface join a fanout group whose classic BPF program hashes the
//! source MAC ([`FanoutMode::BySourceMac`]), so each client's frames reach
//! one worker, in arrival order, and different clients spread. A client's
//! requests must not be split: when Linux retransmits a write under a new
//! tag, round robin (`PACKET_FANOUT_LB`) could hand the two copies to two
//! workers, acknowledge the newer copy first and let the older one land
//! after the client's next write to that sector — a lost acknowledged write.
//! (`PACKET_FANOUT_HASH` would not spread AoE at all: the flow hash covers
//! IP addresses/ports, which 0x88A2 frames lack.)
//!
//! Not given across workers: per-sector atomicity between two *clients*.
//! A read by one client of a sector another client is writing at that
//! moment, served by two workers, can return part of each on a page-cache
//! store (a buffered read and write in two threads are two unlocked
//! copies). Clients that share sectors (a cluster file system) and rely on
//! it run one worker (the default): it issues every request from one thread
//! in arrival order, and the two-client stress test in `tests/target_lab.rs`
//! finds no torn read there.
//! AoE replies are matched by tag, so workers answer in any order.
//!
//! What must be common — config string,
//! mask list, reservations, size — lives in one
//! [`aoe_target::SharedExport`] per export: read-mostly, a generation number
//! checked per frame, a mutex only for the rare control-plane change. Each
//! worker does its own group commit on its own descriptor; fdatasync covers
//! the whole file, so a sync by one worker never makes another's ack unsafe.

mod driver;
mod file;
mod persist;
mod ring;
mod store;
mod volume;

pub(crate) use driver::{Driver, DriverCounters, SlicePort};
pub(crate) use file::RingFiles;
pub(crate) use persist::StateFile;
pub(crate) use ring::RingFront;
pub(crate) use store::ExportFile;
pub(crate) use volume::Volumes;

use anyhow::{bail, Context};
use aoe_target::{Counters, ExportConfig, ExportId, SharedExport, Target, TargetConfig};
use aoe_uring::{Completion, FanoutMode, PacketSocket, Ring, RingConfig};
use aoe_wire::Mac;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One export to serve.
#[derive(Debug, Clone)]
pub(crate) struct ExportSpec {
    pub(crate) shelf: u16,
    pub(crate) slot: u8,
    pub(crate) path: PathBuf,
    pub(crate) read_only: bool,
    /// If non-empty, replaces the saved MAC mask list at start (like vblade -m).
    pub(crate) allow: Vec<Mac>,
    /// If set, replaces the saved config string at start.
    pub(crate) config_string: Option<Vec<u8>>,
    /// Use the page cache even if O_DIRECT works (RAM-backed loop devices:
    /// direct I/O there goes through the loop worker, buffered reads are a
    /// page-cache copy done inline by io_uring).
    pub(crate) buffered: bool,
}

/// Everything the front end needs.
#[derive(Debug, Clone)]
pub(crate) struct FrontendConfig {
    /// Front interfaces; every export is served on all of them.
    pub(crate) ifaces: Vec<String>,
    pub(crate) exports: Vec<ExportSpec>,
    /// Buffer Count advertised and queued per client.
    pub(crate) buffers: u16,
    pub(crate) threads: usize,
    pub(crate) state_dir: PathBuf,
    /// How often the store sizes are checked for growth.
    pub(crate) stat_interval: Duration,
}

/// Opened stores and loaded state, shared by every worker.
pub(crate) struct Prepared {
    cfg: FrontendConfig,
    stores: Vec<ExportFile>,
    shared: Vec<Arc<SharedExport>>,
    states: Vec<Arc<StateFile>>,
}

/// Opens the stores, loads (or creates) each export's state file and applies
/// the command-line overrides.
pub(crate) fn prepare(cfg: FrontendConfig) -> anyhow::Result<Prepared> {
    if cfg.ifaces.is_empty() {
        bail!("at least one --iface is needed");
    }
    if cfg.exports.is_empty() {
        bail!("nothing to export");
    }
    if cfg.threads == 0 || cfg.threads > 64 {
        bail!("--threads must be 1..=64");
    }
    let mut stores = Vec::new();
    let mut shared = Vec::new();
    let mut states = Vec::new();
    for e in &cfg.exports {
        let store = ExportFile::open(&e.path, e.read_only, !e.buffered)?;
        let sf = Arc::new(StateFile::new(&cfg.state_dir, e.shelf, e.slot));
        let mut st = sf.load_or_new()?;
        if !e.allow.is_empty() {
            st.mask = e.allow.clone();
        }
        if let Some(c) = &e.config_string {
            if c.len() > aoe_wire::MAX_CONFIG_LEN {
                bail!("--config-string longer than 1024 bytes");
            }
            st.config = c.clone();
        }
        sf.save(&st)?;
        shared.push(SharedExport::new(st, store.sectors()?));
        stores.push(store);
        states.push(sf);
    }
    Ok(Prepared {
        cfg,
        stores,
        shared,
        states,
    })
}

/// Ring sizes for a front-end worker: receive buffers and send slots enough
/// for every request the core can hold, payload page-aligned.
fn ring_config(target_requests: usize) -> RingConfig {
    let recv = (target_requests + 512)
        .next_power_of_two()
        .clamp(1024, 8192) as u16;
    RingConfig {
        sq_entries: 2048,
        recv_buffers: recv,
        send_slots: (target_requests + 256) as u32,
        align_payload_at: Some(aoe_wire::ATA_DATA_OFFSET),
        max_ops: (target_requests + 64) as u32,
        ..RingConfig::default()
    }
}

/// One worker of `aoeraid serve`: the driver over the files on its ring.
type Worker = RingFront<RingFiles>;

impl Prepared {
    /// The opened store of export `e`.
    pub(crate) fn store(&self, e: usize) -> &ExportFile {
        &self.stores[e]
    }

    /// One line on export `e`'s reservation: its reserve list and what was
    /// refused because of it (for the start and exit logs).
    pub(crate) fn reservation_line(&self, e: usize) -> String {
        let sh = &self.shared[e];
        let list: Vec<String> = sh
            .snapshot()
            .reserve
            .iter()
            .map(|m| m.to_string())
            .collect();
        format!(
            "e{}.{} reserved=[{}] fenced_commands={} reserve_refused={}",
            self.cfg.exports[e].shelf,
            self.cfg.exports[e].slot,
            list.join(","),
            sh.fenced_commands(),
            sh.reserve_refused()
        )
    }

    /// The core's settings (identical for every worker).
    fn target_config(&self) -> TargetConfig {
        TargetConfig {
            buffer_count: self.cfg.buffers,
            max_clients: 16,
            ..TargetConfig::default()
        }
    }

    /// Builds one worker on `ring`: opens a socket per interface (joined to
    /// `fanout` group `base + iface index` if given), registers the stores.
    fn build_worker(&self, ring: &mut Ring, fanout: Option<u16>) -> anyhow::Result<Worker> {
        let mut target = Target::new(self.target_config()).map_err(anyhow::Error::msg)?;
        let mut socks = Vec::new();
        let mut ifaces = Vec::new();
        for (i, name) in self.cfg.ifaces.iter().enumerate() {
            let sock = PacketSocket::open(name)
                .with_context(|| format!("open AF_PACKET socket on {name}"))?;
            if let Some(base) = fanout {
                sock.join_fanout(base.wrapping_add(i as u16), FanoutMode::BySourceMac)
                    .with_context(|| format!("PACKET_FANOUT on {name}"))?;
            }
            let id = target
                .add_interface(Mac(sock.mac()), sock.mtu())
                .map_err(anyhow::Error::msg)?;
            ifaces.push(id);
            socks.push(ring.add_socket(sock)?);
        }
        let mut files = Vec::new();
        for (e, spec) in self.cfg.exports.iter().enumerate() {
            target
                .add_export(
                    ExportConfig {
                        shelf: spec.shelf,
                        slot: spec.slot,
                        read_only: spec.read_only,
                        ifaces: ifaces.clone(),
                    },
                    self.shared[e].clone(),
                )
                .map_err(anyhow::Error::msg)?;
            files.push(ring.register_file(&self.stores[e].file)?);
        }
        let store = RingFiles::new(files, target.request_capacity());
        Ok(RingFront::new(
            socks,
            self.states.clone(),
            Driver::new(target, store),
        ))
    }

    /// Re-reads every store's size and records/announces changes through `w`.
    fn check_sizes(&self, ring: &Ring, w: &mut Worker) {
        for (e, s) in self.stores.iter().enumerate() {
            match s.sectors() {
                Ok(n) => {
                    if w.resize(ring, ExportId(e as u16), n) {
                        eprintln!(
                            "aoeraid serve: e{}.{} now {n} sectors, announced",
                            self.cfg.exports[e].shelf, self.cfg.exports[e].slot
                        );
                    }
                }
                Err(err) => eprintln!("aoeraid serve: {err:#}"),
            }
        }
    }
}

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

/// The standalone loop: `threads` workers (the calling thread is worker 0,
/// which also announces and watches the store sizes) until `ctl.stop`, then
/// drains in-flight requests (up to 5 s) and returns the counters.
pub(crate) fn run(p: Arc<Prepared>, ctl: Arc<Control>) -> anyhow::Result<Summary> {
    let threads = p.cfg.threads;
    let fanout = (threads > 1).then(|| (std::process::id() as u16) & 0x7fff);
    // Build every worker before serving so setup errors surface at once.
    let mut built = Vec::new();
    for _ in 0..threads {
        let cfg = ring_config(p.target_config().buffer_count as usize * 16);
        let mut ring = Ring::with_config(&cfg).context("create io_uring")?;
        let w = p.build_worker(&mut ring, fanout)?;
        built.push((ring, w));
    }
    let mut handles = Vec::new();
    let mut first = None;
    for (i, (ring, w)) in built.into_iter().enumerate() {
        if i == 0 {
            first = Some((ring, w));
            continue;
        }
        let (p, ctl) = (p.clone(), ctl.clone());
        handles.push(
            std::thread::Builder::new()
                .name(format!("aoe-target-{i}"))
                .spawn(move || serve_loop(&p, &ctl, ring, w, false))?,
        );
    }
    let (ring, w) = first.context("no worker")?;
    let mut total = serve_loop(&p, &ctl, ring, w, true)?;
    for h in handles {
        let s = h
            .join()
            .map_err(|_| anyhow::anyhow!("worker thread panicked"))??;
        add_counters(&mut total, &s);
    }
    Ok(total)
}

/// Feeds one ring completion to a worker: socket completions to the
/// driver, file completions through the store.
fn on_completion(ring: &Ring, w: &mut Worker, now: Instant, c: Completion) {
    let Some(Completion::IoDone { user, result, buf }) = w.on_socket(ring, now, c) else {
        return;
    };
    let (d, mut port) = w.parts(ring);
    if let Some(done) = d.store().done(ring, user, result, buf) {
        d.on_done(&mut port, done);
    }
}

fn serve_loop(
    p: &Prepared,
    ctl: &Control,
    mut ring: Ring,
    mut w: Worker,
    primary: bool,
) -> anyhow::Result<Summary> {
    let mut events: Vec<Completion> = Vec::with_capacity(4096);
    if primary {
        w.announce_all(&ring);
    }
    let mut next_stat = Instant::now() + p.cfg.stat_interval;
    let mut drain_deadline: Option<Instant> = None;
    loop {
        let timeout = if w.driver().fences_held() {
            // A Reserve reply waits for writes that may complete on another
            // worker, which cannot wake this ring: look again soon.
            Duration::from_millis(1)
        } else if drain_deadline.is_some() {
            Duration::from_millis(10)
        } else {
            Duration::from_millis(200)
        };
        let now = ring.wait(Some(timeout), &mut events)?;
        for ev in events.drain(..) {
            on_completion(&ring, &mut w, now, ev);
        }
        w.poll_fences(&ring);
        w.flush(&ring);
        if primary && (now >= next_stat || ctl.recheck_size.swap(false, Ordering::AcqRel)) {
            p.check_sizes(&ring, &mut w);
            next_stat = now + p.cfg.stat_interval;
        }
        if drain_deadline.is_none() && ctl.stop.load(Ordering::Acquire) {
            w.stop();
            drain_deadline = Some(now + Duration::from_secs(5));
        }
        if let Some(d) = drain_deadline {
            if (w.driver().drained() && ring.in_flight() <= ring.socket_count() as u64) || now >= d
            {
                break;
            }
        }
    }
    Ok(Summary {
        core: *w.driver().target().counters(),
        driver: *w.driver().counters(),
        kernel_dropped: w.kernel_dropped(&ring),
    })
}

fn add_counters(t: &mut Summary, s: &Summary) {
    macro_rules! sum {
        ($a:expr, $b:expr; $($f:ident),*) => { $( $a.$f += $b.$f; )* };
    }
    sum!(t.core, s.core; frames, malformed, responses_ignored, not_addressed, masked, vendor_ignored,
        unknown_command, client_queue_full, target_queue_full, driver_dropped, broadcast_limited,
        reservation_conflicts, reserve_refused, reserve_replies_held, reads, writes, syncs, synced_acks, ata_errors, io_errors,
        control_replies, announcements);
    sum!(t.driver, s.driver; slot_waits, ctl_dropped, submit_errors, send_errors, persist_errors,
        ignored_while_stopping, read_bytes, write_bytes, flushes);
    t.kernel_dropped += s.kernel_dropped;
}
