//! The chaos soak that `benches/soak.sh` runs (root; a lab of vblade blades in a
//! network namespace): one `aoeraid run` appliance exports a RAID 10, a RAID 5 and a
//! RAID 6 volume (CRC32C integrity on, spares behind each); three clients verify
//! continuously, one per volume, while a fault driver pauses, kills and restarts
//! blades, flaps their links, drops, reorders and duplicates their frames, flips bits
//! in their backing files, and SIGKILLs the appliance every `--crash-every` seconds.
//!
//!   soak --aoeraid PATH [--seconds 300] [--seed 1] [--crash-every 120]
//!        [--rss-growth-mib 32] [--span-mib 24] [--no-integrity]
//!
//! Exit 0 only with no client error, no mismatch, every array clean and consistent
//! at the end (a scrub check finds nothing), and no daemon lifetime whose RSS grew
//! more than `--rss-growth-mib` after settling. The clients retransmit for 90 s
//! before they call a silent appliance dead: a restart after SIGKILL takes seconds,
//! so the window in which the appliance is silent shows as retransmits, never errors.
//!
//! `--no-integrity` runs the same soak with checksums off: a flipped bit is then
//! silent, a read served by the flipped mirror half or data chunk returns it, and
//! the clients' mismatches are reported (the run fails, as it should).

mod clients;
mod faults;
mod rss;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use aoeraid_lab::{Appliance, Array, Config, Lab, Level, Segment, Volume};

use clients::{ClientSpec, Clients};
use faults::{ArrayDef, Driver, Rng};

const MIB: u64 = 1 << 20;
/// Seconds the clients retransmit to a silent appliance before an error.
const CLIENT_DEAD_TIME_S: u64 = 90;
/// Seconds of silence before the appliance fails a member blade; pauses and link
/// flaps of the fault driver stay well below it.
const BLADE_DEAD_AFTER_S: u64 = 6;

/// Shelves 0–3, slot 0 RAID 10, slot 1 RAID 5, slot 2 RAID 6, slot 3 the spares.
const ARRAYS: [ArrayDef; 3] = [
    ArrayDef {
        name: "r10",
        level: Level::Raid10,
        members: &["e0.0", "e1.0", "e2.0", "e3.0"],
        spares: &["e0.3"],
        chunk: "64KiB",
        data_columns: 2,
        slot: 0,
    },
    ArrayDef {
        name: "r5",
        level: Level::Raid5,
        members: &["e0.1", "e1.1", "e2.1", "e3.1"],
        spares: &["e1.3"],
        chunk: "16KiB",
        data_columns: 3,
        slot: 1,
    },
    ArrayDef {
        name: "r6",
        level: Level::Raid6,
        members: &["e0.2", "e1.2", "e2.2", "e3.2"],
        spares: &["e2.3", "e3.3"],
        chunk: "16KiB",
        data_columns: 2,
        slot: 2,
    },
];

struct Opts {
    aoeraid: String,
    seconds: u64,
    seed: u64,
    crash_every: u64,
    rss_growth_mib: u64,
    span_mib: u64,
    integrity: bool,
}

fn opts() -> Result<Opts, String> {
    let mut o = Opts {
        aoeraid: String::new(),
        seconds: 300,
        seed: 1,
        crash_every: 120,
        rss_growth_mib: 32,
        span_mib: 24,
        integrity: true,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--no-integrity" {
            o.integrity = false;
            continue;
        }
        let v = args.next().ok_or(format!("{a} needs a value"))?;
        let num = || v.parse::<u64>().map_err(|e| format!("{a} {v}: {e}"));
        match a.as_str() {
            "--aoeraid" => o.aoeraid = v.clone(),
            "--seconds" => o.seconds = num()?,
            "--seed" => o.seed = num()?,
            "--crash-every" => o.crash_every = num()?.max(10),
            "--rss-growth-mib" => o.rss_growth_mib = num()?,
            "--span-mib" => o.span_mib = num()?.max(1),
            _ => return Err(format!("unknown option {a}")),
        }
    }
    if o.aoeraid.is_empty() {
        return Err("--aoeraid PATH is required".into());
    }
    Ok(o)
}

fn config(integrity: bool) -> Config {
    let mut c = Config::default();
    for d in &ARRAYS {
        let group = format!("{}spares", d.name);
        c = c
            .spare_group(&group, d.spares)
            .array(
                Array::new(d.name, d.level, d.members)
                    .chunk(d.chunk)
                    .spare_group(&group)
                    .bitmap_region("1MiB")
                    .same_shelf_mirrors()
                    .integrity(if integrity { "crc32c" } else { "none" })
                    .rebuild_min("20MB/s"),
            )
            .volume(Volume::new(&format!("v{}", d.name), &[d.name], 7, d.slot));
    }
    // The lab's usual 2 s makes a box starved of CPU for 2 s (a loaded 2-core CI
    // machine) declare every blade dead at once; a killed blade is still noticed.
    c.backend.dead_after = Some(format!("{BLADE_DEAD_AFTER_S}s"));
    c
}

fn main() -> ExitCode {
    let o = match opts() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("soak: {e}");
            return ExitCode::from(2);
        }
    };
    if !aoeraid_lab::require_root("soak") || !aoeraid_lab::require_tools("soak", &["vblade"]) {
        return ExitCode::from(2);
    }
    let failures = soak(&o);
    if failures.is_empty() {
        println!("soak: PASS");
        ExitCode::SUCCESS
    } else {
        for f in &failures {
            println!("soak: FAIL: {f}");
        }
        ExitCode::FAILURE
    }
}

/// The whole run; returns what failed.
fn soak(o: &Opts) -> Vec<String> {
    let t0 = Instant::now();
    let blades = Lab::grid(&[0, 1, 2, 3], 0..4, 32 * MIB);
    let mut app = Appliance::new(&o.aoeraid, "soak", 9000, &blades, config(o.integrity));
    let mut ports = vec![app.client.clone()];
    for _ in 1..ARRAYS.len() {
        ports.push(
            app.lab
                .add_port(&Segment::FRONT, "cli")
                .expect("client port"),
        );
    }
    app.create_and_start();
    fill(&app);
    let sampler = rss::Sampler::start(t0);
    sampler.follow(app.daemon().proc().pid());
    println!(
        "soak: {} s, seed {}, appliance SIGKILL every {} s, integrity {}, lab {}",
        o.seconds,
        o.seed,
        o.crash_every,
        if o.integrity { "crc32c" } else { "none" },
        app.lab.ns()
    );
    let specs = ARRAYS
        .iter()
        .zip(&ports)
        .map(|(d, port)| ClientSpec {
            ns: app.lab.ns().to_string(),
            bin: o.aoeraid.clone(),
            iface: port.clone(),
            device: format!("e7.{}", d.slot),
            span_mib: o.span_mib,
            dead_time_s: CLIENT_DEAD_TIME_S,
            seed: o.seed * 10 + u64::from(d.slot),
        })
        .collect();
    let clients = Clients::start(specs);
    let mut failures = Vec::new();
    let mut driver = Driver {
        app: &mut app,
        arrays: &ARRAYS,
        rng: Rng::new(o.seed),
        sampler: &sampler,
        span_mib: o.span_mib,
        t0,
        integrity: o.integrity,
        flips: 0,
        counts: BTreeMap::new(),
        restarts: Vec::new(),
    };
    let end = t0 + Duration::from_secs(o.seconds);
    let mut next_crash = Instant::now() + Duration::from_secs(o.crash_every);
    let mut last_report = Instant::now();
    while Instant::now() < end {
        let step = if Instant::now() >= next_crash {
            next_crash += Duration::from_secs(o.crash_every);
            driver.crash()
        } else {
            driver.random_fault()
        };
        if let Err(e) = step {
            failures.push(e);
            break;
        }
        let dirty = clients
            .snapshot()
            .iter()
            .any(|(_, t)| t.errors + t.mismatches > 0);
        if dirty {
            failures.push("a client saw an error or a mismatch: stopping the faults".into());
            break;
        }
        if last_report.elapsed() > Duration::from_secs(60) {
            last_report = Instant::now();
            print_progress(t0, &driver, &clients);
        }
        let rest = driver.rng.below(4000);
        std::thread::sleep(Duration::from_millis(1000 + rest));
    }
    if let Err(e) = driver.wait_quiet("the last fault") {
        failures.push(e);
    }
    let tallies = clients.finish();
    failures.extend(final_scrub(&driver));
    let counts = std::mem::take(&mut driver.counts);
    let restarts = std::mem::take(&mut driver.restarts);
    let events = app.events();
    let samples = sampler.finish();
    let log = app.stop();
    let (rss_lines, rss_bad) = rss::judge(&samples, 30.0, o.rss_growth_mib * 1024);
    report(
        t0, &counts, &restarts, &tallies, &events, &rss_lines, &samples,
    );
    for (d, t) in &tallies {
        failures.extend(t.failures.iter().cloned());
        if t.mismatches > 0 {
            failures.push(format!("{d}: {} mismatched sectors", t.mismatches));
        }
        if t.errors > 0 {
            failures.push(format!("{d}: {} client errors", t.errors));
        }
        if t.passes == 0 {
            failures.push(format!("{d}: no verify pass finished"));
        }
    }
    failures.extend(rss_bad);
    if !failures.is_empty() {
        println!("soak: daemon log tail:");
        for l in log
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
        {
            println!("  {l}");
        }
    }
    failures
}

/// Writes every volume whole once: `create --assume-clean` leaves member blocks
/// without a checksum until they are written, and a flip must land where the
/// appliance can tell (the sims call such blocks sealed).
fn fill(app: &Appliance) {
    let s = app.status_json().expect("status");
    for (d, v) in ARRAYS.iter().zip(s["volumes"].as_array().expect("volumes")) {
        let bytes = (v["sectors"].as_u64().expect("volume sectors") * 512).to_string();
        let device = format!("e7.{}", d.slot);
        let (ok, out) = app.aoeraid(&[
            "bench",
            "--iface",
            &app.client,
            "--device",
            &device,
            "--rw",
            "write",
            "--bs",
            "64K",
            "--qd",
            "16",
            "--span",
            &bytes,
            "--bytes",
            &bytes,
        ]);
        assert!(ok, "fill {device}: {out}");
    }
}

/// A scrub check of every array once the clients stopped: parity and mirrors agree.
fn final_scrub(d: &Driver<'_>) -> Vec<String> {
    let mut bad = Vec::new();
    for a in &ARRAYS {
        match d.scrub(a.name, false) {
            Ok((0, _)) => println!("soak: final scrub check of {}: consistent", a.name),
            Ok((m, _)) => bad.push(format!(
                "final scrub check of {}: {m} mismatched bytes",
                a.name
            )),
            Err(e) => bad.push(format!("final scrub check: {e}")),
        }
    }
    bad
}

fn print_progress(t0: Instant, d: &Driver<'_>, c: &Clients) {
    let faults: u64 = d.counts.values().sum();
    let passes: u64 = c.snapshot().iter().map(|(_, t)| t.passes).sum();
    println!(
        "soak: t={:.0}s faults {faults}, verify passes {passes}",
        t0.elapsed().as_secs_f64()
    );
}

/// Occurrences of an event kind in the event program's log (one event a line).
fn events_of(events: &str, kind: &str) -> usize {
    events
        .lines()
        .filter(|l| l.split_whitespace().next() == Some(kind))
        .count()
}

fn report(
    t0: Instant,
    counts: &BTreeMap<&'static str, u64>,
    restarts: &[f64],
    tallies: &[(String, clients::Tally)],
    events: &str,
    rss_lines: &[String],
    samples: &[rss::Sample],
) {
    println!("soak: ran {:.0} s", t0.elapsed().as_secs_f64());
    let faults: Vec<String> = counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!(
        "soak: faults {} ({})",
        counts.values().sum::<u64>(),
        faults.join(", ")
    );
    if !restarts.is_empty() {
        let max = restarts.iter().cloned().fold(0.0, f64::max);
        println!(
            "soak: appliance restarts {}, silent at most {max:.1} s (clients retransmit for {CLIENT_DEAD_TIME_S} s)",
            restarts.len()
        );
    }
    for (d, t) in tallies {
        println!(
            "soak: client {d}: verify passes {}, errors {}, mismatches {}, retransmits {}",
            t.passes, t.errors, t.mismatches, t.retransmits
        );
    }
    let kinds = [
        "Fail",
        "RebuildFinished",
        "ResyncFinished",
        "ReAdded",
        "ChecksumRepaired",
        "CorrectedReadError",
        "ScrubFinished",
        "ArrayFailed",
    ];
    let ev: Vec<String> = kinds
        .iter()
        .map(|k| format!("{k} {}", events_of(events, k)))
        .collect();
    println!("soak: events {}", ev.join(", "));
    for l in rss_lines {
        println!("soak: rss {l}");
    }
    if let (Some(min), Some(max)) = (
        samples.iter().map(|s| s.kib).min(),
        samples.iter().map(|s| s.kib).max(),
    ) {
        println!(
            "soak: rss over the run: min {:.1} MiB, max {:.1} MiB, {} samples",
            min as f64 / 1024.0,
            max as f64 / 1024.0,
            samples.len()
        );
    }
}
