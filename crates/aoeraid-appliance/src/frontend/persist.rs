//! State files: one per export, `<state-dir>/e<shelf>.<slot>.state`, written
//! atomically (temp file, fsync, rename, fsync of the directory) so a crash
//! leaves either the old or the new state, never a torn one.

use anyhow::Context;
use aoe_target::ExportState;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Where one export's state lives; writes from several workers are serialized.
#[derive(Debug)]
pub(crate) struct StateFile {
    path: PathBuf,
    lock: Mutex<()>,
}

impl StateFile {
    pub(crate) fn new(dir: &Path, shelf: u16, slot: u8) -> StateFile {
        StateFile {
            path: dir.join(format!("e{shelf}.{slot}.state")),
            lock: Mutex::new(()),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The saved state, or a fresh one with a random serial if there is none.
    pub(crate) fn load_or_new(&self) -> anyhow::Result<ExportState> {
        match fs::read_to_string(&self.path) {
            Ok(text) => ExportState::decode(&text)
                .with_context(|| format!("{}: corrupt state file", self.path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(ExportState::with_random_serial(random_u64()?))
            }
            Err(e) => Err(e).with_context(|| format!("read {}", self.path.display())),
        }
    }

    pub(crate) fn save(&self, state: &ExportState) -> anyhow::Result<()> {
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let tmp = self.path.with_extension("state.tmp");
        let mut f = fs::File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
        f.write_all(state.encode().as_bytes())?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, &self.path)
            .with_context(|| format!("rename to {}", self.path.display()))?;
        fs::File::open(dir)?.sync_all()?;
        Ok(())
    }
}

fn random_u64() -> anyhow::Result<u64> {
    let mut b = [0u8; 8];
    aoe_uring::sys::fill_random(&mut b)?;
    Ok(u64::from_le_bytes(b))
}
