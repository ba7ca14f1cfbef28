//! `--config FILE` of the commands that read the appliance's configuration themselves
//! (`run`, `create`, `test-event`), and loading it the way each of them reports it.

use super::connect::DEFAULT_CONFIG;
use crate::config::{self, Checked};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub(crate) struct ConfigFile {
    /// The appliance.yaml.
    #[arg(long = "config", value_name = "FILE", default_value = DEFAULT_CONFIG)]
    pub(crate) path: PathBuf,
}

impl ConfigFile {
    /// Loads and validates the file (`force`: as `check-config --force`); on refusal
    /// prints every diagnostic to stderr and fails with "FILE: configuration refused".
    pub(crate) fn load(&self, force: bool) -> anyhow::Result<Checked> {
        config::load(&self.path, force).map_err(|errors| {
            for line in errors.lines() {
                eprintln!("{line}");
            }
            anyhow::anyhow!("{}: configuration refused", self.path.display())
        })
    }
}
