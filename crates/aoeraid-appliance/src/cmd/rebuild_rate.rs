//! `aoeraid rebuild-rate ARRAY --min R --max R`: pace rebuilds and resyncs.

use super::connect::ConnectArgs;
use crate::config::{Rate, RebuildRates};
use crate::control::Request;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
#[command(group = clap::ArgGroup::new("bound").required(true).multiple(true).args(["min", "max"]))]
pub(crate) struct Args {
    pub array: String,
    /// Rate kept even under client load, e.g. 10MB/s.
    #[arg(long)]
    pub min: Option<Rate>,
    /// Ceiling when the array is idle, e.g. 200MB/s.
    #[arg(long)]
    pub max: Option<Rate>,
    #[command(flatten)]
    pub conn: ConnectArgs,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    RebuildRates::check(args.min, args.max).map_err(anyhow::Error::msg)?;
    args.conn.run_command(&Request::RebuildRate {
        array: args.array.clone(),
        min_bytes_per_second: args.min.map(Rate::bytes_per_sec),
        max_bytes_per_second: args.max.map(Rate::bytes_per_sec),
    })
}
