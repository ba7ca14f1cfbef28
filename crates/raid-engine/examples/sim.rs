//! Run the deterministic fault simulator from the command line.
//!
//! cargo run -p raid-engine --release --example sim -- --layout raid5 --seed 123 --ops 100000
//! Options: --layout raid0|raid1|raid10|raid5|raid6|concat|all  --seed N  --seeds K (run N..N+K)
//!          --ops N  --integrity / --no-integrity (default: odd seeds on)  --no-faults

use raid_engine::sim::{run, SimConfig, SimLayout};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut layouts = vec![SimLayout::Raid5];
    let (mut seed, mut seeds, mut ops) = (1u64, 1u64, 100_000u64);
    let mut integrity: Option<bool> = None;
    let mut faults = true;
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
                layouts = if v == "all" {
                    SimLayout::ALL.to_vec()
                } else {
                    vec![v.parse().unwrap_or_else(|e: String| die(&e))]
                };
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
            other => die(&format!("unknown argument {other}")),
        }
        i += 1;
    }
    let mut failed = 0;
    for layout in layouts {
        for s in seed..seed + seeds {
            let mut cfg = SimConfig::new(layout, s, ops);
            if let Some(v) = integrity {
                cfg.integrity = v;
            }
            cfg.faults = faults;
            let t = std::time::Instant::now();
            match run(&cfg) {
                Ok(st) => println!(
                    "ok {layout} seed={s} {:.1}s {st:?}",
                    t.elapsed().as_secs_f64()
                ),
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
    eprintln!("sim: {msg}");
    std::process::exit(2)
}
