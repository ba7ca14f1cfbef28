//! `aoeraid grow VOLUME --add ARRAY`: append an array to a volume online.

use super::connect::ConnectArgs;
use crate::control::Request;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    pub volume: String,
    /// The array to append (declared in the config, not yet in a volume).
    #[arg(long = "add", value_name = "ARRAY")]
    pub add: String,
    #[command(flatten)]
    pub conn: ConnectArgs,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    args.conn.run_command(&Request::Grow {
        volume: args.volume.clone(),
        add_array: args.add.clone(),
    })
}
