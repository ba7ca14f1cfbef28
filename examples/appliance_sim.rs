//! Run the whole-appliance simulator from the command line.
//!
//! cargo run --profile ci --example appliance_sim -- --seed 123
//! Options: --layout raid0|raid1|raid10|raid5|raid6|concat|all (default: the seed's, seed % 6)
//!          --seed N  --seeds K (run N..N+K)  --ops N (default 20000)
//!          --integrity / --no-integrity (default: odd seeds on)  --no-faults
//!          --schedule (print the fault schedule of passing runs too)
//!          --takeover (the HA pair: two appliances on the same blades holding them by
//!          reservation; a quarter of the faults are takeovers, after a crash or in
//!          split brain, see src/sim/world/pair.rs)
//! A failing run prints the seed, the command that reproduces it and the schedule of
//! faults and commands before the failure; APPLIANCE_SIM_TRACE=1 prints the schedule
//! as it happens.

use aoeraid_appliance::sim::{run, run_pair, Options, ALL_LAYOUTS};

fn main() {
    // `--takeover` is this simulator's own; the rest is the options both simulators take.
    let (pair, args): (Vec<String>, Vec<String>) =
        std::env::args().skip(1).partition(|a| a == "--takeover");
    let opts = Options::parse("appliance_sim", args, 20_000);
    let run = if pair.is_empty() { run } else { run_pair };
    opts.campaign(
        |seed| vec![ALL_LAYOUTS[(seed % ALL_LAYOUTS.len() as u64) as usize]],
        |cfg| {
            let (st, log) = run(cfg).map_err(|e| e.to_string())?;
            let schedule = if opts.schedule { log } else { Vec::new() };
            Ok(std::iter::once(format!("{st:?}")).chain(schedule).collect())
        },
    );
}
