//! `aoeraid serve`: export a file or block device as an AoE target — vblade's
//! job, through io_uring, with durable writes and persistent control state.

use crate::config::serve::{self as serve_config, ServeExport};
use crate::config::ByteSize;
use crate::frontend::{self, Catalog, Control, FrontendConfig, IoMode};
use anyhow::Context;
use aoe_uring::sys::{Signal, Signals};
use aoe_wire::{AoeAddr, Mac};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Serve the exports of this YAML file (any number, each on its own interfaces;
    /// see appliance.yaml(5) for the format's conventions). SIGHUP re-reads it: new
    /// exports are added, removed ones stop once their requests in flight are
    /// answered, unchanged ones are not touched. Interfaces that do not exist yet are
    /// served once they come up (looked up every `interface_poll`, 1 s).
    #[arg(long, conflicts_with_all = ["ifaces", "shelf", "slot", "file"])]
    pub config: Option<PathBuf>,
    /// Front interface to serve on (repeat for several).
    #[arg(long = "iface", required_unless_present = "config")]
    pub ifaces: Vec<String>,
    /// Shelf (AoE major), 0..=65534 except 4095.
    #[arg(long, required_unless_present = "config")]
    pub shelf: Option<u16>,
    /// Slot (AoE minor), 0..=254.
    #[arg(long, required_unless_present = "config")]
    pub slot: Option<u8>,
    /// File or block device to export.
    #[arg(required_unless_present = "config")]
    pub file: Option<PathBuf>,
    /// Sectors of the file to skip: the export starts there (vblade -o).
    #[arg(long, default_value_t = 0)]
    pub offset: u64,
    /// Sectors to export from the offset on (vblade -l); default: the rest of the file.
    #[arg(long)]
    pub length: Option<u64>,
    /// Answer writes with ATA abort.
    #[arg(long)]
    pub read_only: bool,
    /// Read and write through the page cache even for a block device. The default
    /// already does so for regular files: a read of cached data is copied into the
    /// reply inline by io_uring (no worker thread, no disk), a miss is read by an
    /// io_uring worker. Writes are acknowledged after the fdatasync their batch
    /// waits for (a write with none to share it with: one O_DSYNC-like write).
    #[arg(long, conflicts_with = "direct")]
    pub buffered: bool,
    /// O_DIRECT even for a regular file (the default for block devices, where the
    /// device's users keep their own cache): reads and writes go to the device
    /// straight from the frames, no page-cache copy; writes are acknowledged after
    /// the fdatasync (a cache flush) their batch waits for. Falls back to buffered
    /// where 512-byte direct reads fail.
    #[arg(long)]
    pub direct: bool,
    /// Initial MAC mask list (replaces the saved one); repeat for several.
    #[arg(long = "allow")]
    pub allow: Vec<Mac>,
    /// Buffer Count: requests queued per client (advertised to clients).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(16..=4096))]
    pub buffers: u16,
    /// Config string to set at start (replaces the saved one).
    #[arg(long)]
    pub config_string: Option<String>,
    /// Where config string, mask list, reservations and serial are kept.
    #[arg(long, default_value = "/var/lib/aoeraid/serve")]
    pub state_dir: PathBuf,
    /// Worker threads, each with its own io_uring. Frames are spread by a hash of the
    /// client's MAC, so each client is served by one worker in arrival order. Two
    /// clients on different workers get no per-sector atomicity between them: a read of
    /// a sector another client is writing at that moment may return part of each.
    /// Clients sharing sectors (e.g. GFS2) should keep the default of 1.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Time between store size checks (growth → announcement), e.g. 2s, at least 100ms;
    /// SIGHUP checks at once.
    #[arg(long, default_value = "2s")]
    pub stat_interval: crate::config::Duration,
    /// Busy polling, in µs (also with --config): after a turn that received a lone
    /// request and answered it at once (a page-cache read, a control command), a
    /// worker watches its receive rings this long for the next request instead of
    /// sleeping. A client that keeps one request in flight (QD 1) is then served
    /// without a sleep and wake-up per request, for the CPU spun; a spin that finds
    /// nothing stops spinning until a request comes back within this time again, so
    /// idle or seldom-used exports cost no CPU. Never while file I/O is in flight
    /// (O_DIRECT reads, writes), nor after bursts of several requests (those linger
    /// 20 µs in the kernel's wait instead). 0: never spin.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(0..=1000))]
    pub spin_us: u64,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    // Before any thread starts, so that every thread inherits the mask and only the
    // watcher below sees these.
    let signals = Signals::block(&[Signal::Term, Signal::Int, Signal::Hup])?;
    let (cfg, specs) = match &args.config {
        Some(path) => from_file(path, args)?,
        None => (settings(args, args.buffers), vec![from_args(args)?]),
    };
    let catalog = Arc::new(Catalog::open(cfg, specs)?);
    for s in catalog.snapshot().1.iter() {
        eprintln!("aoeraid serve: {}", s.describe());
        eprintln!("aoeraid serve: {}", s.reservation_line());
    }
    eprintln!(
        "aoeraid serve: {} export(s) with {} thread(s)",
        catalog.snapshot().1.len(),
        catalog.cfg.threads
    );
    let ctl = Arc::new(Control::default());
    let (ctl2, cat2, file) = (ctl.clone(), catalog.clone(), args.config.clone());
    // SIGHUP re-reads the config file (if any) and re-checks the store sizes,
    // SIGTERM/SIGINT stop; the watcher also ends when the loop stopped for another
    // reason.
    let watcher = std::thread::spawn(move || {
        while !ctl2.stop.load(Ordering::Acquire) {
            match signals.wait(Some(Duration::from_millis(200))) {
                Ok(Some(Signal::Hup)) => {
                    if let Some(path) = &file {
                        reload(&cat2, path);
                    }
                    ctl2.recheck_size.store(true, Ordering::Release)
                }
                Ok(Some(_)) => ctl2.stop.store(true, Ordering::Release),
                Ok(None) | Err(_) => {}
            }
        }
    });
    let summary = frontend::run(catalog.clone(), ctl.clone(), args.config.is_none());
    ctl.stop.store(true, Ordering::Release);
    let _ = watcher.join();
    let s = summary?;
    for e in catalog.snapshot().1.iter() {
        eprintln!("aoeraid serve: {}", e.reservation_line());
    }
    let d = s.driver;
    let core: Vec<String> = s
        .core
        .named()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    eprintln!(
        "aoeraid serve: stopped; {} slot_waits={} ctl_dropped={} submit_errors={} send_errors={} \
         persist_errors={} kernel_dropped={} merged_ops={} merged_requests={}",
        core.join(" "),
        d.slot_waits,
        d.ctl_dropped,
        d.submit_errors,
        d.send_errors,
        d.persist_errors,
        s.kernel_dropped,
        d.merged_ops,
        d.merged_requests,
    );
    Ok(ExitCode::SUCCESS)
}

/// The shortest store-size and interface poll period, for the command line and a config
/// file alike: a floor, so that a slip such as `1ms` does not turn the checks into a busy
/// loop.
const SHORTEST_POLL: Duration = Duration::from_millis(100);

/// The process-wide settings of the command line.
fn settings(args: &Args, max_buffers: u16) -> FrontendConfig {
    FrontendConfig {
        threads: args.threads,
        state_dir: args.state_dir.clone(),
        stat_interval: args.stat_interval.get().max(SHORTEST_POLL),
        iface_poll: Duration::from_secs(1),
        max_buffers,
        spin: Duration::from_micros(args.spin_us),
    }
}

/// The one export of the command line.
fn from_args(args: &Args) -> anyhow::Result<ServeExport> {
    let (Some(shelf), Some(slot), Some(file)) = (args.shelf, args.slot, &args.file) else {
        anyhow::bail!("--shelf, --slot and a file are needed without --config");
    };
    AoeAddr::new(shelf, slot).context("--shelf/--slot")?;
    if args
        .config_string
        .as_ref()
        .is_some_and(|c| c.len() > aoe_wire::MAX_CONFIG_LEN)
    {
        anyhow::bail!("--config-string longer than 1024 bytes");
    }
    Ok(ServeExport {
        file: file.clone(),
        shelf,
        slot,
        interfaces: args.ifaces.clone(),
        read_only: args.read_only,
        allow: args.allow.clone(),
        buffers: args.buffers,
        offset: Some(ByteSize(args.offset * 512)),
        length: args.length.map(|l| ByteSize(l * 512)),
        io: if args.direct {
            IoMode::Direct
        } else if args.buffered {
            IoMode::Buffered
        } else {
            IoMode::Auto
        },
        config_string: args.config_string.clone(),
    })
}

fn from_file(path: &Path, args: &Args) -> anyhow::Result<(FrontendConfig, Vec<ServeExport>)> {
    let c = serve_config::load(path)?;
    // Room for the largest Buffer Count an export may be given on a reload.
    let max = c
        .exports
        .iter()
        .map(|e| e.buffers)
        .max()
        .unwrap_or(0)
        .max(serve_config::DEFAULT_BUFFERS);
    let cfg = FrontendConfig {
        threads: c.threads,
        state_dir: c.state_dir.clone(),
        stat_interval: c.stat_interval.get().max(SHORTEST_POLL),
        iface_poll: c.interface_poll.get().max(SHORTEST_POLL),
        max_buffers: max,
        spin: Duration::from_micros(args.spin_us),
    };
    Ok((cfg, c.exports))
}

/// SIGHUP: re-reads `path`; a bad file changes nothing.
fn reload(cat: &Catalog, path: &Path) {
    match serve_config::load(path) {
        Ok(c) => {
            for line in cat.reload(c.exports) {
                eprintln!("aoeraid serve: reload: {line}");
            }
        }
        Err(e) => {
            eprintln!("aoeraid serve: reload refused, nothing changed:");
            for line in e.lines() {
                eprintln!("  {line}");
            }
        }
    }
}
