//! `aoeraid test-event [--config FILE]`: runs the configured event program once per
//! array with a TestMessage, as `mdadm --monitor --test --oneshot` does, and says
//! whether each run succeeded, so an operator knows the alerting path works before
//! a real failure needs it. The daemon need not run.

use super::config_file::ConfigFile;
use crate::events::dispatch::program_command;
use crate::events::{Event, EventKind};
use aoe_uring::sys::{self, Signal};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    #[command(flatten)]
    pub config: ConfigFile,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let checked = args.config.load(true)?;
    let file = args.config.path.display().to_string();
    let cfg = &checked.config;
    let Some(program) = &cfg.appliance.event_program else {
        anyhow::bail!("{file}: no appliance.event_program to test");
    };
    // An appliance without arrays still tests its alerting, as mdadm does for
    // each array it monitors; the array argument is then the appliance's name.
    let mut arrays: Vec<&str> = cfg.arrays.iter().map(|a| a.name.as_str()).collect();
    if arrays.is_empty() {
        arrays.push(&cfg.appliance.name);
    }
    let mut failed = 0;
    for array in arrays {
        let e = Event::new(EventKind::TestMessage, array)
            .detail("aoeraid test-event: the event program is reachable");
        match run_once(
            program,
            &e,
            &cfg.appliance.name,
            cfg.appliance.event_timeout.get(),
        ) {
            Ok(()) => println!("{}: TestMessage {array}: ok", program.display()),
            Err(why) => {
                failed += 1;
                eprintln!("{}: TestMessage {array}: {why}", program.display());
            }
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn run_once(
    program: &std::path::Path,
    e: &Event,
    appliance: &str,
    timeout: Duration,
) -> Result<(), String> {
    let mut child = program_command(program, e, appliance)
        .spawn()
        .map_err(|err| format!("cannot run: {err}"))?;
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("failed: {status}")),
            Ok(None) if started.elapsed() >= timeout => {
                // The child leads its own process group and is not reaped yet.
                let _ = sys::kill_process_group(child.id(), Signal::Kill);
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("killed after event_timeout {timeout:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(err) => return Err(format!("waiting for it: {err}")),
        }
    }
}
