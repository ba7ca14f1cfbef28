//! `aoeraid run --config FILE`: the appliance daemon.

use super::config_file::ConfigFile;
use crate::daemon::service::{run as run_daemon, RunOptions};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    #[command(flatten)]
    pub config: ConfigFile,
    /// Assemble an unclean RAID 5 that is missing a member (accepts that stripes
    /// written at the crash may have wrong parity).
    #[arg(long)]
    pub force: bool,
    /// Take the blades over from the appliance that holds them: force-set every
    /// configured blade's AoE reserve list to this host's back-end MACs, which
    /// fences the previous holder at the blades. For a cluster's resource agent
    /// (which starts the resource only where it runs nowhere else) or an operator
    /// replacing a dead appliance. Without it, blades another appliance holds
    /// make `run` refuse to start, naming them.
    #[arg(long)]
    pub takeover: bool,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    // `--force` here is about assembly, not check-config's: a risky setup is
    // refused unless its array allows it, so no warnings come back.
    let checked = args.config.load(false)?;
    run_daemon(
        &args.config.path,
        checked.config,
        RunOptions {
            force: args.force,
            takeover: args.takeover,
        },
    )?;
    Ok(ExitCode::SUCCESS)
}
