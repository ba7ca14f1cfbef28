//! `aoeraid discover`: find AoE blades on back-end interfaces (like
//! aoe-discover + aoe-stat): broadcast Query Config, IDENTIFY whatever
//! answers, print what was learned.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use aoe_initiator::{BladeInfo, BladeState, PoolConfig};
use aoe_uring::Ring;
use serde::Serialize;

use crate::backend::{describe, Backend};
use crate::config;

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Back-end interface to search (repeat for several); without it, every Ethernet
    /// interface that is up, as aoe-discover does.
    #[arg(long = "iface")]
    pub ifaces: Vec<String>,
    /// How long to wait for answers, e.g. 1s or 1500ms.
    #[arg(long, default_value = "1s")]
    pub timeout: config::Duration,
    /// Print a JSON list instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Log pool events (paths, notices) on stderr.
    #[arg(long, short)]
    pub verbose: bool,
}

#[derive(Serialize)]
struct Row {
    shelf: u16,
    slot: u8,
    state: &'static str,
    sectors: u64,
    bytes: u64,
    macs: Vec<String>,
    interfaces: Vec<String>,
    buffer_count: u16,
    sectors_per_frame: u8,
    firmware: String,
    config: String,
    model: String,
    serial: String,
}

fn state_name(s: BladeState) -> &'static str {
    match s {
        BladeState::Up => "up",
        BladeState::Identifying => "identifying",
        BladeState::Down => "down",
    }
}

fn row(b: &BladeInfo, iface_names: &[String]) -> Row {
    let mut macs: Vec<String> = b.paths.iter().map(|p| p.mac.to_string()).collect();
    macs.dedup();
    let mut interfaces: Vec<String> = b
        .paths
        .iter()
        .filter_map(|p| iface_names.get(p.iface).cloned())
        .collect();
    interfaces.sort();
    interfaces.dedup();
    Row {
        shelf: b.shelf,
        slot: b.slot,
        state: state_name(b.state),
        sectors: b.sectors,
        bytes: b.sectors.saturating_mul(512),
        macs,
        interfaces,
        buffer_count: b.buffer_count,
        sectors_per_frame: b.sectors_per_frame,
        firmware: format!("{:#06x}", b.firmware),
        config: String::from_utf8_lossy(&b.config).into_owned(),
        model: b.model.clone(),
        serial: b.serial.clone(),
    }
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    if args.timeout.get().is_zero() || args.timeout.get() > Duration::from_secs(3600) {
        anyhow::bail!("--timeout must be in (0s, 1h]");
    }
    let ifaces = if args.ifaces.is_empty() {
        aoe_uring::ethernet_interfaces()
    } else {
        args.ifaces.clone()
    };
    if ifaces.is_empty() {
        anyhow::bail!("no Ethernet interface is up here; name one with --iface");
    }
    let mut ring = Ring::new()?;
    let mut backend = Backend::open(&mut ring, &ifaces, PoolConfig::default())?;
    backend.pool_mut().discover();
    let start = Instant::now();
    let end = start + args.timeout.get();
    let mut events = Vec::with_capacity(256);
    // Re-ask halfway: a lost broadcast or reply should not hide a blade.
    let mut asked_again = false;
    loop {
        let now = backend.turn(&mut ring, &mut events, Some(end))?;
        while let Some(ev) = backend.pool_mut().poll_event() {
            if args.verbose {
                eprintln!("aoeraid discover: {}", describe(backend.pool(), &ev));
            }
        }
        if !asked_again && now >= start + (end - start) / 2 {
            asked_again = true;
            backend.pool_mut().discover();
        }
        if now >= end {
            break;
        }
    }
    let pool = backend.pool();
    let names: Vec<String> = pool.interfaces().iter().map(|i| i.name.clone()).collect();
    let mut rows: Vec<Row> = pool
        .blade_ids()
        .filter_map(|id| pool.blade_info(id))
        .map(|b| row(&b, &names))
        .collect();
    rows.sort_by_key(|r| (r.shelf, r.slot));
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else if rows.is_empty() {
        println!("no AoE blades found on {}", ifaces.join(", "));
    } else {
        for r in &rows {
            println!(
                "e{}.{:<4} {:>14} sectors {:>10}  {:<11} bufcnt {:<4} spf {:<3} fw {}  {}  via {}  config {:?}",
                r.shelf,
                r.slot,
                r.sectors,
                human_bytes(r.bytes),
                r.state,
                r.buffer_count,
                r.sectors_per_frame,
                r.firmware,
                r.macs.join(","),
                r.interfaces.join(","),
                r.config,
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// 1 GiB → "1.0GiB".
pub(crate) fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b}B")
    } else {
        format!("{v:.1}{}", UNITS[u])
    }
}
