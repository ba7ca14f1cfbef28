//! `aoeraid create [--config FILE] [--force]`: write superblocks for every declared array.

use crate::config;
use crate::daemon::create::{create, CreateOptions};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The appliance.yaml declaring the arrays (the one `run` reads unless told otherwise).
    #[arg(long, default_value = super::connect::DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// Overwrite members that look in use (another array's superblock, a filesystem,
    /// data in the metadata area), and accept mirror halves on one shelf.
    #[arg(long)]
    pub force: bool,
    /// Skip the initial resync: only for members known to be zeroed or identical.
    #[arg(long)]
    pub assume_clean: bool,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let file = args.config.display().to_string();
    let checked = match config::load(&args.config, args.force) {
        Ok(c) => c,
        Err(errors) => {
            for line in errors.lines() {
                eprintln!("{line}");
            }
            anyhow::bail!("{file}: configuration refused");
        }
    };
    for w in &checked.warnings {
        eprintln!("{}", w.render(&file));
    }
    let opts = CreateOptions {
        force: args.force,
        assume_clean: args.assume_clean,
    };
    for line in create(&checked.config, opts)? {
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}
