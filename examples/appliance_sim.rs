//! Run the whole-appliance simulator from the command line.
//!
//! cargo run --profile ci --example appliance_sim -- --seed 123
//! Options: --layout raid0|raid1|raid10|raid5|raid6|concat|all (default: the seed's, seed % 6)
//!          --seed N  --seeds K (run N..N+K)  --ops N (default 20000)
//!          --integrity / --no-integrity (default: odd seeds on)  --no-faults
//!          --schedule (print the fault schedule of passing runs too)
//! A failing run prints the seed, the command that reproduces it and the schedule of
//! faults and commands before the failure; APPLIANCE_SIM_TRACE=1 prints the schedule
//! as it happens.

use aoeraid_appliance::sim::{run, SimConfig, SimLayout};

const ALL: [SimLayout; 6] = SimLayout::ALL;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut layouts: Option<Vec<SimLayout>> = None;
    let (mut seed, mut seeds, mut ops) = (1u64, 1u64, 20_000u64);
    let mut integrity: Option<bool> = None;
    let mut faults = true;
    let mut schedule = false;
    let mut i = 0;
    let val = |i: usize| -> &str {
        args.get(i + 1)
            .map(|s| s.as_str())
            .unwrap_or_else(|| die("missing value"))
    };
    while i < args.len() {
        match args[i].as_str() {
            "--layout" => {
                let v = val(i);
                layouts = Some(if v == "all" {
                    ALL.to_vec()
                } else {
                    vec![v.parse().unwrap_or_else(|e: String| die(&e))]
                });
                i += 1;
            }
            "--seed" => {
                seed = val(i).parse().unwrap_or_else(|_| die("bad seed"));
                i += 1;
            }
            "--seeds" => {
                seeds = val(i).parse().unwrap_or_else(|_| die("bad seeds"));
                i += 1;
            }
            "--ops" => {
                ops = val(i).parse().unwrap_or_else(|_| die("bad ops"));
                i += 1;
            }
            "--integrity" => integrity = Some(true),
            "--no-integrity" => integrity = Some(false),
            "--no-faults" => faults = false,
            "--schedule" => schedule = true,
            other => die(&format!("unknown argument {other}")),
        }
        i += 1;
    }
    let mut failed = 0;
    for s in seed..seed + seeds {
        let ls = layouts
            .clone()
            .unwrap_or_else(|| vec![ALL[(s % ALL.len() as u64) as usize]]);
        for layout in ls {
            let mut cfg = SimConfig::new(layout, s, ops);
            if let Some(v) = integrity {
                cfg.integrity = v;
            }
            cfg.faults = faults;
            let t = std::time::Instant::now();
            match run(&cfg) {
                Ok((st, log)) => {
                    println!(
                        "ok {layout} seed={s} {:.1}s {st:?}",
                        t.elapsed().as_secs_f64()
                    );
                    if schedule {
                        for l in log {
                            println!("  {l}");
                        }
                    }
                }
                Err(e) => {
                    failed += 1;
                    eprintln!("{e}");
                }
            }
        }
    }
    if failed > 0 {
        eprintln!("{failed} run(s) failed");
        std::process::exit(1);
    }
}

fn die(msg: &str) -> ! {
    eprintln!("appliance_sim: {msg}");
    std::process::exit(2)
}
