//! `aoeraid run --config FILE`: the appliance daemon.

use crate::daemon::service::{run as run_daemon, RunOptions};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The appliance.yaml to run.
    #[arg(long, default_value = super::connect::DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// Assemble an unclean RAID 5 that is missing a member (accepts that stripes
    /// written at the crash may have wrong parity).
    #[arg(long)]
    pub force: bool,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    run_daemon(&args.config, RunOptions { force: args.force })?;
    Ok(ExitCode::SUCCESS)
}
