//! The `aoeraid` appliance: command line, configuration, wiring of the
//! initiator pool, RAID engine and target onto the io_uring runtime, control
//! socket, metrics and events.
//!
//! Each subcommand lives in `cmd/<name>.rs`; `cli.rs` only parses and
//! dispatches, so that subcommands can grow independently.

mod accept_loop;
mod backend;
mod cli;
mod cmd;
pub mod config;
pub mod control;
mod core;
mod daemon;
pub mod events;
mod frontend;
// Entry points for the cargo-fuzz targets in fuzz/; built only with `--cfg fuzzing`.
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;
pub mod metrics;
#[cfg(feature = "sim")]
pub mod sim;

/// Entry point of the `aoeraid` binary.
pub fn main() -> std::process::ExitCode {
    cli::main()
}
