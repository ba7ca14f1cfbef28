//! Argument parsing and dispatch. Argument structs live next to the command
//! that consumes them (`cmd::<name>::Args`).

use clap::{Parser, Subcommand};
use std::process::ExitCode;

use crate::cmd;

#[derive(Parser, Debug)]
#[command(name = "aoeraid", version, about = "AoE software RAID appliance")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Find AoE blades on a back-end interface (like aoe-discover + aoe-stat).
    Discover(cmd::discover::Args),
    /// Load generator and verifier for any AoE device.
    Bench(cmd::bench::Args),
    /// Export one file or block device as an AoE target (vblade's job).
    Serve(cmd::serve::Args),
    /// Validate an appliance.yaml; every problem is reported as FILE:LINE: field: message.
    CheckConfig(cmd::check_config::Args),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Discover(a) => cmd::discover::run(a),
        Command::Bench(a) => cmd::bench::run(a),
        Command::Serve(a) => cmd::serve::run(a),
        Command::CheckConfig(a) => cmd::check_config::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("aoeraid: {e:#}");
            ExitCode::from(1)
        }
    }
}
