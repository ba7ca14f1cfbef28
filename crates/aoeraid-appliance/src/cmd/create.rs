//! `aoeraid create [--config FILE] [--force]`: write superblocks for every declared array.

use super::config_file::ConfigFile;
use crate::daemon::create::{create, CreateOptions};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    #[command(flatten)]
    pub config: ConfigFile,
    /// Overwrite members that look in use (another array's superblock, a filesystem,
    /// data in the metadata area), and accept mirror halves on one shelf.
    #[arg(long)]
    pub force: bool,
    /// Skip the initial resync: only for members known to be zeroed or identical.
    #[arg(long)]
    pub assume_clean: bool,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let checked = args.config.load(args.force)?;
    let file = args.config.path.display().to_string();
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
