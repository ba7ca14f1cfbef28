//! Run the deterministic fault simulator from the command line.
//!
//! cargo run -p raid-engine --release --example sim -- --layout raid5 --seed 123 --ops 100000
//! Options: --layout raid0|raid1|raid10|raid5|raid6|concat|all (default raid5)  --seed N
//!          --seeds K (run N..N+K)  --ops N (default 100000)
//!          --integrity / --no-integrity (default: odd seeds on)  --no-faults

use raid_engine::sim::{cli::Options, run, SimLayout};

fn main() {
    let opts = Options::parse("sim", std::env::args().skip(1), 100_000);
    opts.campaign(
        |_| vec![SimLayout::Raid5],
        |cfg| run(cfg).map(|st| vec![format!("{st:?}")]),
    );
}
