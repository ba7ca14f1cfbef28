//! `aoeraid bench`: load generator and verifier for any AoE device (a blade,
//! or an `aoeraid serve` export), built on the back-end driver.
//!
//! * `read` / `write`: timed (`--seconds`) or sized (`--bytes`) load,
//!   sequential or random blocks of `--bs` within `--span`, `--qd` I/Os in
//!   flight. Writes carry the verification pattern, so a later `check` can
//!   verify them.
//! * `verify`: writes the pattern over the whole span, reads it back and
//!   compares every byte. `check`: only the read-and-compare half.
//!
//! The pattern of a sector depends on `--seed` and its LBA only, so a sector
//! written to the wrong place, stale or torn, never compares equal.
//! Buffers are allocated once (one per queue slot); no allocation per I/O.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::bail;
use aoe_initiator::{BladeId, BladeState, IoRequest, Op, PoolConfig};
use aoe_uring::{Ring, RingConfig};
use aoe_wire::AoeAddr;
use serde::Serialize;

use crate::backend::{describe, interface_names, Backend};
use crate::config::{self, ByteSize};

const SECTOR: u64 = 512;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rw {
    Read,
    Write,
    /// Write the pattern over the span, then read it back and compare.
    Verify,
    /// Read the span and compare with the pattern an earlier write left.
    Check,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pattern {
    Seq,
    Rand,
}

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Back-end interface (repeat for several paths).
    #[arg(long = "iface", required = true)]
    pub ifaces: Vec<String>,
    /// Device as eSHELF.SLOT, e.g. e0.3 (the "e" may be left out).
    #[arg(long)]
    pub device: AoeAddr,
    #[arg(long, value_enum)]
    pub rw: Rw,
    #[arg(long, value_enum, default_value = "seq")]
    pub pattern: Pattern,
    /// Block size, a multiple of 512 bytes: 4096, 64K, 64KiB, 1MiB, ...
    #[arg(long, default_value = "4096")]
    pub bs: ByteSize,
    /// I/Os in flight.
    #[arg(long, default_value_t = 16)]
    pub qd: u32,
    /// Run time (read/write); default 5 s unless --bytes is given.
    #[arg(long, conflicts_with = "bytes")]
    pub seconds: Option<f64>,
    /// Bytes to transfer (read/write), e.g. 4G.
    #[arg(long)]
    pub bytes: Option<ByteSize>,
    /// Bytes of the device to use from LBA 0 (default: all of it), e.g. 128M.
    #[arg(long)]
    pub span: Option<ByteSize>,
    /// Seed of the data pattern and of random offsets.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// How long to wait for the device to answer Query Config + IDENTIFY, e.g. 5s.
    #[arg(long, default_value = "5s")]
    pub find_timeout: config::Duration,
    /// Seconds without an answer before the device is declared down.
    #[arg(long, default_value = "10s")]
    pub dead_time: config::Duration,
    /// Wake once per reply instead of lingering to read several per wake-up
    /// (see `Backend::linger`): lower latency at depth, more CPU per request.
    #[arg(long)]
    pub no_linger: bool,
}

/// Fills `out` (whole sectors) with the pattern of the sectors starting at `lba`.
///
/// Every word of a sector is the sector's key (a bijection of seed and LBA)
/// XORed with a fixed mask for the word's position, so a sector from another
/// LBA, another seed, a shifted or a torn sector never compares equal. Plain
/// XORs against a table let the compiler vectorise the fill: a write bench at
/// MTU 9000 spent about 2 µs per request generating a hash per word.
pub(crate) fn fill_pattern(seed: u64, lba: u64, out: &mut [u8]) {
    for (k, sector) in out.chunks_exact_mut(SECTOR as usize).enumerate() {
        let key = splitmix(seed ^ splitmix(lba + k as u64));
        for (w, mask) in sector.chunks_exact_mut(8).zip(WORD_MASKS.iter()) {
            w.copy_from_slice(&(key ^ mask).to_le_bytes());
        }
    }
}

const WORD_MASKS: [u64; SECTOR as usize / 8] = {
    let mut m = [0u64; SECTOR as usize / 8];
    let mut i = 0;
    while i < m.len() {
        m[i] = mix(0x9E37_79B9_7F4A_7C15u64.wrapping_mul(i as u64 + 1));
        i += 1;
    }
    m
};

#[inline]
const fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    mix(x)
}

#[inline]
const fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Sectors of `got` (starting at `lba`) that differ from the pattern.
fn count_mismatches(seed: u64, lba: u64, got: &[u8], scratch: &mut [u8]) -> u64 {
    let n = got.len().min(scratch.len());
    fill_pattern(seed, lba, &mut scratch[..n]);
    got[..n]
        .chunks_exact(SECTOR as usize)
        .zip(scratch[..n].chunks_exact(SECTOR as usize))
        .filter(|(a, b)| a != b)
        .count() as u64
}

#[derive(Serialize, Default)]
struct Latency {
    p50: u64,
    p99: u64,
    p999: u64,
    max: u64,
}

#[derive(Serialize)]
struct Report {
    device: String,
    rw: &'static str,
    pattern: &'static str,
    bs: u64,
    qd: u32,
    span: u64,
    ios: u64,
    bytes: u64,
    seconds: f64,
    mb_per_s: f64,
    iops: f64,
    retransmits: u64,
    timeouts: u64,
    stale_drops: u64,
    forged_drops: u64,
    errors: u64,
    mismatches: u64,
    first_error: Option<String>,
    lat_us: Latency,
    cpu_us_per_req: f64,
    frames_sent: u64,
    frames_received: u64,
    srtt_us: u64,
    window: u32,
}

/// The blocks one phase visits, in order.
struct Walk {
    pattern: Pattern,
    blocks: u64,
    next: u64,
    rng: u64,
    /// Random permutation over [0, blocks): an LCG with full period over
    /// the next power of two, skipping values ≥ blocks.
    perm_mask: u64,
    perm_a: u64,
    perm_c: u64,
    perm_x: u64,
}

impl Walk {
    fn new(pattern: Pattern, blocks: u64, seed: u64) -> Walk {
        let mask = blocks.next_power_of_two() - 1;
        Walk {
            pattern,
            blocks,
            next: 0,
            rng: splitmix(seed ^ 0x5EED),
            perm_mask: mask,
            // a ≡ 1 (mod 4) and odd c give full period modulo a power of two.
            perm_a: (splitmix(seed) & !3) | 1 | 4,
            perm_c: splitmix(seed ^ 1) | 1,
            perm_x: splitmix(seed ^ 2) & mask,
        }
    }

    /// Next block for a timed run (wraps; random blocks may repeat).
    fn any(&mut self) -> u64 {
        match self.pattern {
            Pattern::Seq => {
                let b = self.next % self.blocks;
                self.next += 1;
                b
            }
            Pattern::Rand => {
                self.rng = splitmix(self.rng);
                self.rng % self.blocks
            }
        }
    }

    /// Next block of a pass that visits each block exactly once.
    fn once(&mut self) -> Option<u64> {
        if self.next >= self.blocks {
            return None;
        }
        self.next += 1;
        match self.pattern {
            Pattern::Seq => Some(self.next - 1),
            Pattern::Rand => loop {
                self.perm_x = (self
                    .perm_x
                    .wrapping_mul(self.perm_a)
                    .wrapping_add(self.perm_c))
                    & self.perm_mask;
                if self.perm_x < self.blocks {
                    return Some(self.perm_x);
                }
            },
        }
    }
}

struct Totals {
    ios: u64,
    bytes: u64,
    errors: u64,
    mismatches: u64,
    first_error: Option<String>,
    lat: Vec<u32>,
}

impl Totals {
    /// Counts a failed I/O; the report names the first one.
    fn error(&mut self, what: impl FnOnce() -> String) {
        self.errors += 1;
        self.first_error.get_or_insert_with(what);
    }
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let bs = args.bs.bytes();
    if bs == 0 || !bs.is_multiple_of(SECTOR) {
        bail!("--bs must be a positive multiple of 512 (got {bs})");
    }
    if bs > 64 << 20 {
        bail!("--bs above 64 MiB is not supported");
    }
    if args.qd == 0 || args.qd > 4096 {
        bail!("--qd must be in 1..=4096");
    }
    let secs_ok = |v: f64| v.is_finite() && v > 0.0 && v <= 86400.0;
    if let Some(s) = args.seconds {
        if !secs_ok(s) {
            bail!("--seconds must be in (0, 86400]");
        }
    }
    let day = Duration::from_secs(86400);
    if [args.find_timeout, args.dead_time]
        .iter()
        .any(|d| d.get().is_zero() || d.get() > day)
    {
        bail!("--find-timeout and --dead-time must be in (0s, 24h]");
    }
    let cfg = PoolConfig {
        dead_time: args.dead_time.get(),
        ..PoolConfig::default()
    };
    // One thread submits and waits: completions are then run when it waits instead of
    // being signalled to it as task work (DEFER_TASKRUN), which costs less per reply.
    let mut ring = Ring::with_config(&RingConfig {
        single_issuer: true,
        ..RingConfig::default()
    })?;
    let mut backend = Backend::open(&mut ring, &args.ifaces, cfg)?;
    backend.set_lingering(!args.no_linger);
    let mut events = Vec::with_capacity(1024);
    let blade = find_blade(
        &mut ring,
        &mut backend,
        &mut events,
        args.device,
        args.find_timeout,
    )?;
    let capacity = backend.pool().capacity(blade).unwrap_or(0) * SECTOR;
    let span = args.span.map_or(capacity, ByteSize::bytes).min(capacity);
    let blocks = span / bs;
    if blocks == 0 {
        bail!("span of {span} bytes holds no block of {bs} bytes (device has {capacity} bytes)");
    }
    let before = backend.pool().blade_stats(blade).unwrap_or_default();
    let progress = std::io::stderr().is_terminal();
    let cpu0 = aoe_uring::sys::process_cpu_time();
    let t0 = Instant::now();
    let mut totals = Totals {
        ios: 0,
        bytes: 0,
        errors: 0,
        mismatches: 0,
        first_error: None,
        lat: Vec::with_capacity(1 << 20),
    };
    let mut runner = Runner {
        args,
        blade,
        blocks,
        ring: &mut ring,
        backend: &mut backend,
        events: &mut events,
        progress,
        start: t0,
    };
    match args.rw {
        Rw::Read | Rw::Write => {
            let limit = match (args.seconds, args.bytes) {
                (_, Some(b)) => Limit::Bytes(b.bytes()),
                (Some(s), None) => Limit::Time(t0 + Duration::from_secs_f64(s)),
                (None, None) => Limit::Time(t0 + Duration::from_secs(5)),
            };
            let op = if args.rw == Rw::Read {
                Op::Read
            } else {
                Op::Write
            };
            runner.phase(op, false, limit, &mut totals)?;
        }
        Rw::Verify => {
            runner.phase(Op::Write, false, Limit::Once, &mut totals)?;
            if totals.errors == 0 {
                runner.phase(Op::Read, true, Limit::Once, &mut totals)?;
            }
        }
        Rw::Check => runner.phase(Op::Read, true, Limit::Once, &mut totals)?,
    }
    let elapsed = t0.elapsed();
    let cpu = aoe_uring::sys::process_cpu_time().saturating_sub(cpu0);
    if progress {
        eprint!("\r\x1b[K");
    }
    let after = backend.pool().blade_stats(blade).unwrap_or_default();
    totals.lat.sort_unstable();
    let pct = |p: f64| -> u64 {
        if totals.lat.is_empty() {
            return 0;
        }
        let i = ((totals.lat.len() as f64 - 1.0) * p).round() as usize;
        u64::from(totals.lat[i.min(totals.lat.len() - 1)])
    };
    let secs = elapsed.as_secs_f64().max(1e-9);
    let report = Report {
        device: args.device.to_string(),
        rw: match args.rw {
            Rw::Read => "read",
            Rw::Write => "write",
            Rw::Verify => "verify",
            Rw::Check => "check",
        },
        pattern: match args.pattern {
            Pattern::Seq => "seq",
            Pattern::Rand => "rand",
        },
        bs,
        qd: args.qd,
        span: blocks * bs,
        ios: totals.ios,
        bytes: totals.bytes,
        seconds: secs,
        mb_per_s: totals.bytes as f64 / secs / 1e6,
        iops: totals.ios as f64 / secs,
        retransmits: after.retransmits - before.retransmits,
        timeouts: after.timeouts - before.timeouts,
        stale_drops: after.stale_drops - before.stale_drops,
        forged_drops: after.forged_drops - before.forged_drops,
        errors: totals.errors,
        mismatches: totals.mismatches,
        first_error: totals.first_error.clone(),
        lat_us: Latency {
            p50: pct(0.50),
            p99: pct(0.99),
            p999: pct(0.999),
            max: totals.lat.last().copied().map_or(0, u64::from),
        },
        cpu_us_per_req: if totals.ios == 0 {
            0.0
        } else {
            cpu.as_secs_f64() * 1e6 / totals.ios as f64
        },
        frames_sent: after.frames_sent - before.frames_sent,
        frames_received: after.frames_received - before.frames_received,
        srtt_us: after.srtt_us,
        window: after.window,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} {} {} bs={} qd={}: {} I/Os, {:.1} MB/s, {:.0} IOPS, lat p50 {} µs p99 {} µs, \
             retransmits {}, errors {}, mismatches {}, cpu {:.2} µs/req",
            report.device,
            report.rw,
            report.pattern,
            report.bs,
            report.qd,
            report.ios,
            report.mb_per_s,
            report.iops,
            report.lat_us.p50,
            report.lat_us.p99,
            report.retransmits,
            report.errors,
            report.mismatches,
            report.cpu_us_per_req
        );
        if let Some(e) = &report.first_error {
            println!("first error: {e}");
        }
    }
    if report.errors > 0 || report.mismatches > 0 {
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

fn find_blade(
    ring: &mut Ring,
    backend: &mut Backend,
    events: &mut Vec<aoe_uring::Completion>,
    device: AoeAddr,
    timeout: config::Duration,
) -> anyhow::Result<BladeId> {
    let (shelf, slot) = (device.shelf(), device.slot());
    let start = Instant::now();
    let end = start + timeout.get();
    let mut next_ask = start;
    loop {
        let now = Instant::now();
        if now >= next_ask {
            backend.pool_mut().query(shelf, slot);
            next_ask = now + Duration::from_millis(500);
        }
        let now = backend.turn(ring, events, Some(next_ask.min(end)))?;
        while let Some(ev) = backend.pool_mut().poll_event() {
            if matches!(ev, aoe_initiator::Event::Notice { .. }) {
                eprintln!("aoeraid bench: {}", describe(backend.pool(), &ev));
            }
        }
        if let Some(id) = backend.pool().find(shelf, slot) {
            if backend.pool().blade_state(id) == Some(BladeState::Up) {
                return Ok(id);
            }
        }
        if now >= end {
            bail!(
                "{device} did not answer on {} within {timeout}",
                interface_names(backend.pool())
            );
        }
    }
}

enum Limit {
    Time(Instant),
    Bytes(u64),
    /// Every block of the span exactly once.
    Once,
}

struct Runner<'a> {
    args: &'a Args,
    blade: BladeId,
    blocks: u64,
    ring: &'a mut Ring,
    backend: &'a mut Backend,
    events: &'a mut Vec<aoe_uring::Completion>,
    progress: bool,
    start: Instant,
}

impl Runner<'_> {
    fn phase(&mut self, op: Op, compare: bool, limit: Limit, t: &mut Totals) -> anyhow::Result<()> {
        let bs = self.args.bs.bytes();
        let sectors = (bs / SECTOR) as u32;
        let qd = self.args.qd as usize;
        let seed = self.args.seed;
        let mut walk = Walk::new(self.args.pattern, self.blocks, seed);
        let mut free: Vec<Vec<u8>> = (0..qd).map(|_| vec![0u8; bs as usize]).collect();
        let mut scratch = vec![0u8; bs as usize];
        let mut started = vec![self.start; qd];
        let mut free_slots: Vec<usize> = (0..qd).rev().collect();
        let mut in_flight = 0usize;
        let mut submitted_bytes = 0u64;
        let mut stop = false;
        // Only a progress line needs periodic wake-ups. A deadline kept without one
        // would stay in the past after the first second and turn every wait into
        // a zero-timeout poll: a busy loop that burned a whole core.
        let mut next_progress = self
            .progress
            .then(|| Instant::now() + Duration::from_millis(1000));
        let mut last_now = Instant::now();
        loop {
            // Keep the queue full.
            while !stop && in_flight < qd {
                let more = match limit {
                    Limit::Time(end) => last_now < end,
                    Limit::Bytes(b) => submitted_bytes < b,
                    Limit::Once => true,
                };
                if !more {
                    stop = true;
                    break;
                }
                let block = match limit {
                    Limit::Once => walk.once(),
                    _ => Some(walk.any()),
                };
                let Some(block) = block else {
                    stop = true;
                    break;
                };
                let (Some(slot), Some(mut buf)) = (free_slots.pop(), free.pop()) else {
                    break;
                };
                let lba = block * (bs / SECTOR);
                if op == Op::Write {
                    fill_pattern(seed, lba, &mut buf);
                }
                started[slot] = last_now;
                let req = IoRequest {
                    blade: self.blade,
                    op,
                    lba,
                    sectors,
                    buf,
                    user: slot as u64,
                };
                match self.backend.pool_mut().submit(last_now, req) {
                    Ok(()) => {
                        in_flight += 1;
                        submitted_bytes += bs;
                    }
                    Err(r) => {
                        t.error(|| format!("submit at LBA {lba}: {}", r.error));
                        free.push(r.buf);
                        free_slots.push(slot);
                        stop = true;
                    }
                }
            }
            if in_flight == 0 && stop {
                return Ok(());
            }
            let until = match (&limit, next_progress) {
                (&Limit::Time(end), Some(p)) if !stop => Some(end.min(p)),
                (&Limit::Time(end), None) if !stop => Some(end),
                (_, p) => p,
            };
            let now = self.backend.turn(self.ring, self.events, until)?;
            last_now = now;
            while let Some(c) = self.backend.pool_mut().poll_completion() {
                in_flight -= 1;
                let slot = c.user as usize;
                let lat = now.saturating_duration_since(started[slot]);
                t.lat
                    .push(u32::try_from(lat.as_micros()).unwrap_or(u32::MAX));
                match &c.result {
                    Ok(()) => {
                        t.ios += 1;
                        t.bytes += bs;
                        if compare {
                            let bad = count_mismatches(seed, c.lba, &c.buf, &mut scratch);
                            if bad > 0 {
                                t.mismatches += bad;
                                t.first_error.get_or_insert_with(|| {
                                    format!("{bad} sector(s) differ in the block at LBA {}", c.lba)
                                });
                            }
                        }
                    }
                    Err(e) => {
                        t.error(|| format!("I/O at LBA {}: {e}", c.lba));
                    }
                }
                free.push(c.buf);
                free_slots.push(slot);
            }
            while let Some(ev) = self.backend.pool_mut().poll_event() {
                let line = describe(self.backend.pool(), &ev);
                if self.progress {
                    eprint!("\r\x1b[K");
                }
                eprintln!("aoeraid bench: {line}");
                if matches!(ev, aoe_initiator::Event::BladeDown { .. }) {
                    stop = true;
                }
            }
            if next_progress.is_some_and(|p| now >= p) {
                next_progress = Some(now + Duration::from_millis(500));
                let secs = now.duration_since(self.start).as_secs_f64();
                let st = self
                    .backend
                    .pool()
                    .blade_stats(self.blade)
                    .unwrap_or_default();
                eprint!(
                    "\r\x1b[K{:>6.1} s  {:>8.1} MB/s  {:>8.0} IOPS  retransmits {}  errors {}  mismatches {}",
                    secs,
                    t.bytes as f64 / secs / 1e6,
                    t.ios as f64 / secs,
                    st.retransmits,
                    t.errors,
                    t.mismatches
                );
                let _ = std::io::stderr().flush();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_is_unique_per_sector_and_seed() {
        let mut a = vec![0u8; 2048];
        let mut b = vec![0u8; 2048];
        fill_pattern(1, 100, &mut a);
        fill_pattern(1, 101, &mut b);
        assert_eq!(
            a[512..],
            b[..1536],
            "sector 101 has the same content from either start"
        );
        assert_ne!(a[..512], b[..512]);
        fill_pattern(2, 100, &mut b);
        assert_ne!(a, b);
        let mut scratch = vec![0u8; 2048];
        assert_eq!(count_mismatches(1, 100, &a, &mut scratch), 0);
        a[700] ^= 1;
        assert_eq!(count_mismatches(1, 100, &a, &mut scratch), 1);
    }

    #[test]
    fn random_pass_visits_every_block_once() {
        for blocks in [1u64, 2, 7, 1000, 1024] {
            let mut w = Walk::new(Pattern::Rand, blocks, 9);
            let mut seen = vec![false; blocks as usize];
            while let Some(b) = w.once() {
                assert!(!seen[b as usize]);
                seen[b as usize] = true;
            }
            assert!(seen.iter().all(|&s| s));
        }
    }
}
