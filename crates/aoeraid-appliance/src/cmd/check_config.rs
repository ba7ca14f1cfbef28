//! `aoeraid check-config [FILE]`: validate a config without touching anything.

use crate::config;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The appliance.yaml to check (the one `run` reads unless told otherwise).
    #[arg(default_value = super::connect::DEFAULT_CONFIG)]
    pub file: PathBuf,
    /// Accept risky but legal setups (mirror halves on one shelf) with a warning.
    #[arg(long)]
    pub force: bool,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let file = args.file.display().to_string();
    match config::load(&args.file, args.force) {
        Ok(checked) => {
            for w in &checked.warnings {
                eprintln!("{}", w.render(&file));
            }
            println!("{file}: OK");
            print!("{}", checked.config.summary());
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            for line in errors.lines() {
                eprintln!("{line}");
            }
            let n = errors.diagnostics.len();
            eprintln!("{file}: {n} problem{} found", if n == 1 { "" } else { "s" });
            Ok(ExitCode::from(1))
        }
    }
}
