//! `aoeraid serve`: export a file or block device as an AoE target — vblade's
//! job, through io_uring, with durable writes and persistent control state.

use crate::frontend::{self, Control, ExportSpec, FrontendConfig};
use anyhow::Context;
use aoe_uring::sys::{Signal, Signals};
use aoe_wire::{AoeAddr, Mac};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Front interface to serve on (repeat for several).
    #[arg(long = "iface", required = true)]
    pub ifaces: Vec<String>,
    /// Shelf (AoE major), 0..=65534 except 4095.
    #[arg(long)]
    pub shelf: u16,
    /// Slot (AoE minor), 0..=254.
    #[arg(long)]
    pub slot: u8,
    /// File or block device to export.
    pub file: PathBuf,
    /// Answer writes with ATA abort.
    #[arg(long)]
    pub read_only: bool,
    /// Do not use O_DIRECT even where it works (page cache + fdatasync).
    #[arg(long)]
    pub buffered: bool,
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
    /// Time between store size checks (growth → announcement), e.g. 2s; SIGHUP checks at once.
    #[arg(long, default_value = "2s")]
    pub stat_interval: crate::config::Duration,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    AoeAddr::new(args.shelf, args.slot).context("--shelf/--slot")?;
    // Before any thread starts, so that every thread inherits the mask and only the
    // watcher below sees these.
    let signals = Signals::block(&[Signal::Term, Signal::Int, Signal::Hup])?;
    let cfg = FrontendConfig {
        ifaces: args.ifaces.clone(),
        exports: vec![ExportSpec {
            shelf: args.shelf,
            slot: args.slot,
            path: args.file.clone(),
            read_only: args.read_only,
            allow: args.allow.clone(),
            config_string: args.config_string.as_ref().map(|s| s.as_bytes().to_vec()),
            buffered: args.buffered,
        }],
        buffers: args.buffers,
        threads: args.threads,
        state_dir: args.state_dir.clone(),
        stat_interval: args.stat_interval.get().max(Duration::from_secs(1)),
    };
    let prepared = Arc::new(frontend::prepare(cfg)?);
    let store = prepared.store(0);
    eprintln!(
        "aoeraid serve: e{}.{} {} ({} sectors, {}{}) on {} with {} thread(s), buffer count {}",
        args.shelf,
        args.slot,
        args.file.display(),
        store.sectors()?,
        if store.direct { "O_DIRECT" } else { "buffered" },
        if store.read_only { ", read-only" } else { "" },
        args.ifaces.join(","),
        args.threads,
        args.buffers,
    );
    eprintln!("aoeraid serve: {}", prepared.reservation_line(0));
    let ctl = Arc::new(Control::default());
    let ctl2 = ctl.clone();
    // SIGHUP re-checks the store size, SIGTERM/SIGINT stop; the watcher also ends
    // when the loop stopped for another reason.
    let watcher = std::thread::spawn(move || {
        while !ctl2.stop.load(Ordering::Acquire) {
            match signals.wait(Some(Duration::from_millis(200))) {
                Ok(Some(Signal::Hup)) => ctl2.recheck_size.store(true, Ordering::Release),
                Ok(Some(_)) => ctl2.stop.store(true, Ordering::Release),
                Ok(None) | Err(_) => {}
            }
        }
    });
    let summary = frontend::run(prepared.clone(), ctl.clone());
    ctl.stop.store(true, Ordering::Release);
    let _ = watcher.join();
    let s = summary?;
    eprintln!("aoeraid serve: {}", prepared.reservation_line(0));
    let (c, d) = (s.core, s.driver);
    eprintln!(
        "aoeraid serve: stopped; frames={} reads={} writes={} syncs={} synced_acks={} malformed={} \
         responses_ignored={} not_addressed={} masked={} unknown_command={} vendor_ignored={} \
         client_queue_full={} target_queue_full={} driver_dropped={} broadcast_limited={} \
         reservation_conflicts={} ata_errors={} io_errors={} control_replies={} announcements={} \
         slot_waits={} ctl_dropped={} submit_errors={} send_errors={} persist_errors={} \
         kernel_dropped={}",
        c.frames, c.reads, c.writes, c.syncs, c.synced_acks, c.malformed, c.responses_ignored,
        c.not_addressed, c.masked, c.unknown_command, c.vendor_ignored, c.client_queue_full,
        c.target_queue_full, c.driver_dropped, c.broadcast_limited, c.reservation_conflicts,
        c.ata_errors, c.io_errors, c.control_replies, c.announcements, d.slot_waits,
        d.ctl_dropped, d.submit_errors, d.send_errors, d.persist_errors, s.kernel_dropped,
    );
    Ok(ExitCode::SUCCESS)
}
