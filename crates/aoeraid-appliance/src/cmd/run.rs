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
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    run_daemon(&args.config.path, RunOptions { force: args.force })?;
    Ok(ExitCode::SUCCESS)
}
