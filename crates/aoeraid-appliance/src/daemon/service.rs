//! `aoeraid run`: start-up in the seed's order (members, mirrors/stripes,
//! volumes, exports), the control plane threads around the data path, and the
//! signal handling (SIGTERM clean stop, SIGHUP reload).

use super::assemble::{assemble_array, read_found, spare_is_blank};
use super::claim::{claim, claim_found, take_over_found};
use super::create::random_uuid;
use super::datapath::{Cmd, DataPath, FrontSockets, IoMetrics};
use super::members::Devices;
use super::records::newest_record;
use crate::config::{self, MemberAddr, Rate};
use crate::control::sdnotify::{watchdog_interval, Notifier};
use crate::control::status::Status;
use crate::control::{ControlHandler, ControlServer, MemberCommand};
use crate::core::{
    start_volumes, unused_spares, Array, Assembled, ClaimMode, Command, Core, CoreParts, ExportDef,
    Exports, Location, MemberMap, Reply, Spare, SpareGroups, SpareOrigin,
};
use crate::events::{self, Dispatcher, DispatcherOptions, Event, EventKind};
use crate::frontend::StateFile;
use crate::metrics::http::MetricsServer;
use crate::metrics::Metrics;
use anyhow::Context;
use aoe_target::{ExportState, SharedExport};
use aoe_uring::sys::{Signal, Signals};
use aoe_uring::{PacketSocket, RingWaker};
use aoe_wire::Mac;
use crossbeam_channel::{bounded, Sender};
use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Commands waiting for the data path at most; more are refused (busy).
const CMD_QUEUE: usize = 64;
/// How long a control command waits for the data path's answer.
const CMD_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Default)]
pub(crate) struct RunOptions {
    /// Assemble an unclean degraded RAID 5 anyway (accepts the write hole).
    pub(crate) force: bool,
    /// Take the blades from whoever holds them (Force Set of their reserve lists),
    /// fencing the previous active appliance at the blades. Without it, blades
    /// another appliance holds make the start fail.
    pub(crate) takeover: bool,
}

/// The control socket's handler: each command goes to the data path through the
/// bounded channel, then the ring is woken.
struct Handler {
    tx: Sender<Cmd>,
    waker: RingWaker,
    status: Arc<Mutex<Status>>,
    config_path: PathBuf,
}

impl Handler {
    fn call(&self, cmd: Command) -> Reply {
        self.send(|t| Cmd::Core(cmd, t))
    }

    fn send(&self, make: impl FnOnce(Sender<Reply>) -> Cmd) -> Reply {
        let (rtx, rrx) = bounded(1);
        self.tx
            .try_send(make(rtx))
            .map_err(|_| "the data path is busy; try again".to_string())?;
        let _ = self.waker.wake();
        rrx.recv_timeout(CMD_TIMEOUT)
            .map_err(|_| "the data path did not answer in time".to_string())?
    }
}

impl ControlHandler for Handler {
    fn status(&self) -> Result<Status, String> {
        Ok(self.status.lock().clone())
    }
    fn member(&self, cmd: MemberCommand, target: &str, member: &MemberAddr) -> Reply {
        let (t, member) = (target.to_string(), member.clone());
        self.call(match cmd {
            MemberCommand::Fail => Command::Fail { array: t, member },
            MemberCommand::Remove => Command::Remove { array: t, member },
            MemberCommand::Add { force } => Command::Add {
                array: t,
                member,
                force,
            },
            MemberCommand::ReAdd => Command::ReAdd { array: t, member },
            MemberCommand::SpareAdd { force } => Command::SpareAdd {
                group: t,
                member,
                force,
            },
            MemberCommand::SpareRemove => Command::SpareRemove { group: t, member },
        })
    }
    fn scrub(&self, array: &str, repair: bool) -> Reply {
        self.call(Command::Scrub {
            array: array.into(),
            repair,
        })
    }
    fn grow(&self, volume: &str, add_array: &str) -> Reply {
        self.call(Command::Grow {
            volume: volume.into(),
            array: add_array.into(),
        })
    }
    fn rebuild_rate(&self, array: &str, min: Option<Rate>, max: Option<Rate>) -> Reply {
        self.call(Command::RebuildRate {
            array: array.into(),
            min: min.map(Rate::kib_per_sec),
            max: max.map(Rate::kib_per_sec),
        })
    }
    fn reload(&self) -> Reply {
        let cfg = config::load(&self.config_path, false).map_err(|e| e.to_string())?;
        self.send(|t| Cmd::Reload(Box::new(cfg.config), t))
    }
}

/// The signal thread: SIGTERM/SIGINT stop the data path, SIGHUP reloads.
fn spawn_signal_thread(signals: Signals, handler: Arc<Handler>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || loop {
            match signals.wait(None) {
                Ok(Some(Signal::Hup)) => {
                    let msg = match handler.reload() {
                        Ok(m) => m,
                        Err(e) => format!("reload refused: {e}"),
                    };
                    events::log_line(5, &format!("SIGHUP: {msg}"));
                }
                Ok(Some(_)) => {
                    let _ = handler.tx.send(Cmd::Stop);
                    let _ = handler.waker.wake();
                    return;
                }
                Ok(None) | Err(_) => {}
            }
        })
        .map(drop)
}

/// Runs the daemon on `cfg`, read from `config_path` (which SIGHUP and `reload`
/// read again), until SIGTERM. Returns after a clean stop.
pub(crate) fn run(config_path: &Path, cfg: config::Config, opts: RunOptions) -> anyhow::Result<()> {
    // Before any thread starts, so that every thread inherits the mask and only the
    // signal thread sees these.
    let signals = Signals::block(&[Signal::Term, Signal::Int, Signal::Hup])?;
    let mut phases = StartPhases::new();
    let notifier = Notifier::from_env()
        .unwrap_or_else(|_| Notifier::from_socket_var(None).expect("disabled notifier"));
    let metrics = Arc::new(Metrics::new());
    let dispatcher = Dispatcher::start(
        DispatcherOptions {
            program: cfg.appliance.event_program.clone(),
            timeout: cfg.appliance.event_timeout.0,
            queue: 1024,
            appliance: cfg.appliance.name.clone(),
        },
        Some(metrics.clone()),
    )
    .context("event dispatcher")?;
    let sink = dispatcher.sink();

    // Members: discover the blades, then assemble every array (mirrors and stripes
    // are one step here: the engine knows the RAID 10 layout).
    let mut dev = Devices::new()?;
    let blades = dev.discover_config(&cfg)?;
    phases.done("discovery");
    for &(s, l) in &blades {
        let up = dev
            .backend
            .as_ref()
            .is_some_and(|b| b.pool().find(s, l).is_some());
        if !up {
            events::log_line(
                4,
                &format!(
                    "blade e{s}.{l} did not answer discovery; asked for again every \
                     second, it rejoins its array by itself when its superblock says it belongs"
                ),
            );
        }
    }
    // Ownership before the first read: another appliance's blades refuse us anyway.
    let mode = if opts.takeover {
        ClaimMode::Takeover
    } else {
        ClaimMode::Plain
    };
    let mut claimed = claim(&mut dev, &blades, mode, &mut |l| events::log_line(5, &l))?;
    take_over_found(&mut dev, &mut claimed, &cfg.members(), &mut |l| {
        events::log_line(5, &l)
    })?;
    phases.done("blade claim");
    // Blades the YAML does not list may carry a member an operator added at run
    // time: each array is assembled from the superblocks found, not from the list.
    let found = read_found(&mut dev, &cfg)?;
    let mut assembled = Vec::new();
    let mut taken = Vec::new();
    for spec in &cfg.arrays {
        let (mut engine, a) = assemble_array(&mut dev, &cfg, spec, &found, opts.force)?;
        for n in &a.notes {
            events::log_line(4, n);
        }
        for m in &a.verdicts.found {
            if let Some(&(_, Location::Blade(id), _)) = found.iter().find(|f| &f.0 == m) {
                taken.push((id, m.to_string()));
            }
        }
        engine.set_sync_rates(
            spec.rebuild.min.kib_per_sec(),
            spec.rebuild.max.kib_per_sec(),
        );
        sink.emit(
            Event::new(EventKind::NewArray, spec.name.clone())
                .detail(format!("{} members", a.members.len())),
        );
        assembled.push(Assembled {
            engine,
            array: Array::new(spec.name.clone(), a.members, spec.spare_group.clone())
                .assembled(a.verdicts),
        });
    }
    claim_found(&mut dev, &mut claimed, &taken, &mut |l| {
        events::log_line(5, &l)
    })?;
    // Spare groups: blank, reachable devices no array uses.
    let mut spares = Vec::new();
    for g in &cfg.spare_groups.0 {
        let mut avail = Vec::new();
        for m in unused_spares(&g.members, &assembled) {
            match dev.open(m) {
                None => events::log_line(4, &format!("spare group {}: {m} unavailable", g.name)),
                Some(loc) => match spare_is_blank(&mut dev, loc, &g.name) {
                    Ok(()) => avail.push(Spare {
                        addr: m.clone(),
                        loc,
                        uuid: random_uuid()?,
                        origin: SpareOrigin::Config,
                    }),
                    Err(why) => events::log_line(
                        4,
                        &format!("spare group {}: {m} not used as a spare: {why}", g.name),
                    ),
                },
            }
        }
        spares.push((g.name.clone(), avail));
    }
    for (m, why) in dev.problems.drain(..) {
        events::log_line(4, &format!("{m}: {why}"));
    }

    let vols = start_volumes(&cfg, assembled).map_err(anyhow::Error::msg)?;
    let volume_io = vols
        .iter()
        .map(|v| (!v.standalone).then(|| metrics.volume_io(&v.name)))
        .collect();
    phases.done("assembly");
    // Exports last, once every array is up.
    std::fs::create_dir_all(&cfg.appliance.state_dir)
        .with_context(|| format!("state_dir {}", cfg.appliance.state_dir.display()))?;
    let mut exports = Vec::new();
    let mut state_files = Vec::new();
    for (i, v) in vols.iter().enumerate() {
        let Some((shelf, slot)) = v.export else {
            continue;
        };
        let vs = cfg.volume(&v.name).expect("configured volume");
        let sf = Arc::new(StateFile::new(&cfg.appliance.state_dir, shelf, slot));
        // The members are the truth (the other appliance of a pair may have
        // saved there last); the state file is this box's cache of it.
        let found = newest_record(&mut dev, v, shelf, slot)?;
        let mask: Vec<Mac> = vs.allow.iter().map(|m| Mac(m.0)).collect();
        let mut st: ExportState = match &found {
            Some(r) => {
                events::log_line(
                    6,
                    &format!(
                        "e{shelf}.{slot}: export state from record {} on the members; reserve list [{}]",
                        r.seq,
                        r.reserve.iter().map(|m| m.to_string()).collect::<Vec<_>>().join(",")
                    ),
                );
                r.state(mask)
            }
            None => ExportState {
                mask,
                ..sf.load_or_new()?
            },
        };
        if let Some(c) = &vs.config_string {
            st.config = c.as_bytes().to_vec();
        }
        sf.save(&st)?;
        let sectors = v.concat.volume_sectors();
        exports.push(ExportDef {
            shelf,
            slot,
            read_only: v.read_only,
            shared: SharedExport::new(st, sectors),
            volume: i,
            next_record: found.map_or(1, |r| r.seq + 1),
        });
        state_files.push(sf);
    }
    let Devices {
        mut ring,
        files,
        backend,
        by_addr,
        ..
    } = dev;
    let (front, exports) = if exports.is_empty() {
        (None, None)
    } else {
        let mut macs = Vec::new();
        let mut socks = Vec::new();
        for name in &cfg.frontend.interfaces {
            let sock = PacketSocket::open(name)
                .with_context(|| format!("open AoE socket on front-end interface {name}"))?;
            macs.push((Mac(sock.mac()), sock.mtu()));
            socks.push(ring.add_socket(sock)?);
        }
        let x = Exports::new(&macs, exports).map_err(|e| anyhow::anyhow!("front end: {e}"))?;
        (
            Some(FrontSockets::new(cfg.frontend.interfaces.clone(), socks)),
            Some(x),
        )
    };
    let (pool, back) = match backend {
        Some(b) => {
            let (p, s) = b.into_parts();
            (Some(p), Some(s))
        }
        None => (None, None),
    };
    let mut file_sectors = Vec::new();
    for loc in by_addr.values() {
        if let Location::File(i) = *loc {
            if file_sectors.len() <= i {
                file_sectors.resize(i + 1, 0);
            }
            file_sectors[i] = files.sectors(i);
        }
    }
    let mut core = Core::new(
        CoreParts {
            pool,
            volumes: vols,
            spares: SpareGroups::new(spares),
            members: MemberMap::new(by_addr, file_sectors),
            exports,
            config: cfg.clone(),
            observer: Box::new(IoMetrics::new(metrics.clone(), volume_io)),
        },
        Instant::now(),
    );
    core.hold_blades(claimed.ownership(Instant::now()));

    let (tx, rx) = bounded(CMD_QUEUE);
    let waker = ring.waker()?;
    let status = Arc::new(Mutex::new(Status {
        appliance: cfg.appliance.name.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        ..Status::default()
    }));
    let handler = Arc::new(Handler {
        tx: tx.clone(),
        waker: waker.clone(),
        status: status.clone(),
        config_path: config_path.to_path_buf(),
    });
    let control = ControlServer::start(&cfg.appliance.control_socket, handler.clone())
        .with_context(|| format!("control socket {}", cfg.appliance.control_socket.display()))?;
    let m2 = metrics.clone();
    let metrics_server =
        MetricsServer::start(cfg.appliance.metrics_listen, Arc::new(move || m2.render()))
            .with_context(|| format!("metrics on {}", cfg.appliance.metrics_listen))?;
    spawn_signal_thread(signals, handler.clone())?;

    let mut dp = DataPath {
        ring,
        files,
        back,
        front,
        core,
        state_files,
        cmds: rx,
        events: sink,
        metrics,
        status: status.clone(),
        replies: Default::default(),
    };
    dp.publish_status(Instant::now());
    phases.done("exports");
    // How long a takeover spends where (benches/ha_takeover.sh reads it).
    events::log_line(6, &phases.line());
    let _ = notifier.ready();
    events::log_line(
        5,
        &format!(
            "running: control socket {}, metrics http://{}/metrics",
            cfg.appliance.control_socket.display(),
            metrics_server.local_addr()
        ),
    );
    let wd = watchdog_interval();
    let last = std::cell::Cell::new(std::time::Instant::now());
    // `systemctl status` shows the one-line summary; sent when it changes (the data
    // path publishes a status snapshot every second and on every state change).
    let shown = std::cell::RefCell::new(String::new());
    let ping = || {
        let line = status.lock().summary();
        if *shown.borrow() != line {
            let _ = notifier.status(&line);
            *shown.borrow_mut() = line;
        }
        if let Some(iv) = wd {
            if last.get().elapsed() >= iv / 2 {
                let _ = notifier.watchdog();
                last.set(std::time::Instant::now());
            }
        }
    };
    let stop = || {
        let _ = notifier.stopping();
    };
    let result = dp.run(&ping, &stop);
    control.shutdown();
    metrics_server.shutdown();
    drop(dp);
    dispatcher.shutdown();
    result?;
    events::log_line(5, "stopped: arrays marked clean");
    Ok(())
}

/// Time spent in each start-up phase, for one log line.
struct StartPhases {
    start: Instant,
    last: Instant,
    phases: Vec<(&'static str, Duration)>,
}

impl StartPhases {
    fn new() -> StartPhases {
        let now = Instant::now();
        StartPhases {
            start: now,
            last: now,
            phases: Vec::new(),
        }
    }

    /// Phase `name` ended now.
    fn done(&mut self, name: &'static str) {
        let now = Instant::now();
        self.phases.push((name, now - self.last));
        self.last = now;
    }

    /// `start-up took 0.84 s: discovery 310 ms, blade claim 20 ms, …`
    fn line(&self) -> String {
        let parts: Vec<String> = self
            .phases
            .iter()
            .map(|(n, d)| format!("{n} {} ms", d.as_millis()))
            .collect();
        format!(
            "start-up took {:.2} s: {}",
            self.start.elapsed().as_secs_f64(),
            parts.join(", ")
        )
    }
}
