//! Argument parsing and dispatch. Argument structs live next to the command
//! that consumes them (`cmd::<name>::Args`).

use clap::{Parser, Subcommand};
use std::process::ExitCode;

use crate::cmd;

#[derive(Parser, Debug)]
#[command(name = "aoeraid", version, about = "AoE software RAID appliance")]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Find AoE blades on a back-end interface (like aoe-discover + aoe-stat).
    Discover(cmd::discover::Args),
    /// Load generator and verifier for any AoE device.
    Bench(cmd::bench::Args),
    /// Export one file or block device as an AoE target (vblade's job).
    Serve(cmd::serve::Args),
    /// Validate an appliance.yaml; every problem is reported as FILE:LINE: field: message.
    CheckConfig(cmd::check_config::Args),
    /// Write superblocks for the arrays a config declares (refuses members in use).
    Create(cmd::create::Args),
    /// Run the appliance daemon: assemble arrays, export volumes, serve control.
    Run(cmd::run::Args),
    /// Show arrays, members, rebuild progress, volumes and blades of the running daemon.
    Status(cmd::status::Args),
    /// Mark an active member faulty.
    Fail(cmd::member::Args),
    /// Take a faulty or spare member out of an array.
    Remove(cmd::member::Args),
    /// Add a device to an array (as a spare, or a replacement if degraded).
    Add(cmd::member::AddArgs),
    /// Return a member that dropped out; only what changed is resynced.
    ReAdd(cmd::member::Args),
    /// Manage spare groups.
    Spare(cmd::spare::Args),
    /// Check an array's redundancy (and with --repair, fix it).
    Scrub(cmd::scrub::Args),
    /// Append an array to a volume while it is in use.
    Grow(cmd::grow::Args),
    /// Set an array's rebuild rate limits.
    RebuildRate(cmd::rebuild_rate::Args),
    /// Print a member's superblock and bitmap, read off the blade or file (like mdadm --examine).
    Examine(cmd::examine::Args),
    /// Fence agent (fence_aoeraid): fence or unfence a cluster node through the target's AoE reserve list.
    Fence(cmd::fence::Args),
    /// Run the event program once per array with a TestMessage (like mdadm --monitor --test).
    TestEvent(cmd::test_event::Args),
    /// Write a shell completion script to standard output.
    Completions(cmd::manual::CompletionArgs),
    /// Write the manual page (roff) to standard output: aoeraid(8) or appliance.yaml(5).
    #[command(hide = true)]
    Manpage(cmd::manual::ManArgs),
}

pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Discover(a) => cmd::discover::run(a),
        Command::Bench(a) => cmd::bench::run(a),
        Command::Serve(a) => cmd::serve::run(a),
        Command::CheckConfig(a) => cmd::check_config::run(a),
        Command::Create(a) => cmd::create::run(a),
        Command::Run(a) => cmd::run::run(a),
        Command::Status(a) => cmd::status::run(a),
        Command::Fail(a) => cmd::member::run(cmd::member::Op::Fail, a),
        Command::Remove(a) => cmd::member::run(cmd::member::Op::Remove, a),
        Command::Add(a) => cmd::member::run(cmd::member::Op::Add { force: a.force }, &a.member),
        Command::ReAdd(a) => cmd::member::run(cmd::member::Op::ReAdd, a),
        Command::Spare(a) => cmd::spare::run(a),
        Command::Scrub(a) => cmd::scrub::run(a),
        Command::Grow(a) => cmd::grow::run(a),
        Command::RebuildRate(a) => cmd::rebuild_rate::run(a),
        Command::Examine(a) => cmd::examine::run(a),
        Command::TestEvent(a) => cmd::test_event::run(a),
        Command::Fence(a) => cmd::fence::run(a),
        Command::Completions(a) => cmd::manual::completions(a),
        Command::Manpage(a) => cmd::manual::man(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("aoeraid: {e:#}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, String> {
        Cli::try_parse_from(std::iter::once("aoeraid").chain(args.iter().copied()))
            .map_err(|e| e.to_string())
    }

    const BENCH: [&str; 7] = [
        "bench", "--iface", "cli0", "--device", "e7.0", "--rw", "read",
    ];

    #[test]
    fn sizes_durations_and_addresses_read_as_in_the_yaml() {
        let args = [
            &BENCH[..],
            &["--bs", "64KiB", "--span", "128M", "--dead-time", "3s"],
        ]
        .concat();
        let Command::Bench(b) = parse(&args).unwrap().command else {
            panic!("not bench");
        };
        assert_eq!(b.device.to_string(), "e7.0");
        assert_eq!(b.bs.bytes(), 64 << 10);
        assert_eq!(b.span.map(|s| s.bytes()), Some(128 << 20));
        assert_eq!(b.dead_time.get().as_secs(), 3);
        assert_eq!(b.find_timeout.get().as_secs(), 5);
        let args = [&BENCH[..], &["--bs", "64K"]].concat();
        let Command::Bench(b) = parse(&args).unwrap().command else {
            panic!("not bench");
        };
        assert_eq!(b.bs.bytes(), 64 << 10);
    }

    #[test]
    fn refused_values_say_why() {
        for (flag, value, why) in [
            ("--bs", "64Kb", "unknown unit `Kb`"),
            ("--dead-time", "3", "a unit is required"),
            ("--device", "e4095.0", "ignored by the Linux aoe driver"),
            ("--device", "e1.255", "broadcast"),
        ] {
            let mut args = BENCH.to_vec();
            if flag == "--device" {
                args[4] = value;
            } else {
                args.extend([flag, value]);
            }
            let e = parse(&args).unwrap_err();
            assert!(e.contains(why), "{flag} {value}: {e}");
        }
        let e = parse(&[
            "serve",
            "--iface",
            "t0",
            "--shelf",
            "1",
            "--slot",
            "1",
            "--stat-interval",
            "2",
            "f",
        ])
        .unwrap_err();
        assert!(e.contains("a unit is required"), "{e}");
    }
}
