//! `aoeraid scrub ARRAY [--repair]`: read everything, count (or fix) mismatches.

use super::connect::ConnectArgs;
use crate::control::Request;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    pub array: String,
    /// Rewrite inconsistent blocks instead of only counting them.
    #[arg(long)]
    pub repair: bool,
    #[command(flatten)]
    pub conn: ConnectArgs,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    args.conn.run_command(&Request::Scrub {
        array: args.array.clone(),
        repair: args.repair,
    })
}
