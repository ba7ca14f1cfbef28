//! The file or block device behind an export: opened with O_DIRECT when the
//! file system and device accept 512-byte aligned direct I/O, else buffered
//! (durability then comes from the fdatasync every write batch waits for).

use anyhow::{bail, Context};
use aoe_uring::{device_size, Backing, BackingOptions, DirectIo};
use std::fs::File;
use std::path::{Path, PathBuf};

/// An opened store.
#[derive(Debug)]
pub(crate) struct ExportFile {
    pub(crate) path: PathBuf,
    pub(crate) file: File,
    /// Opened with O_DIRECT (payloads go to/from frames in place, no page cache).
    pub(crate) direct: bool,
    pub(crate) read_only: bool,
}

impl ExportFile {
    /// Opens `path`; with `try_direct`, O_DIRECT is used if 512-byte direct
    /// reads work (see [`DirectIo::IfSectorReadsWork`]).
    pub(crate) fn open(
        path: &Path,
        read_only: bool,
        try_direct: bool,
    ) -> anyhow::Result<ExportFile> {
        let opts = BackingOptions {
            read_only,
            direct: if try_direct {
                DirectIo::IfSectorReadsWork
            } else {
                DirectIo::Never
            },
            dsync: false,
        };
        let backing =
            Backing::open(path, &opts).with_context(|| format!("open {}", path.display()))?;
        let s = ExportFile {
            path: path.to_path_buf(),
            file: backing.file,
            direct: backing.direct,
            read_only,
        };
        if s.sectors()? == 0 {
            bail!("{}: smaller than one 512-byte sector", path.display());
        }
        Ok(s)
    }

    /// Size in whole 512-byte sectors (a partial last sector is not exported,
    /// as vblade does). Works for regular files and block devices.
    pub(crate) fn sectors(&self) -> anyhow::Result<u64> {
        let bytes =
            device_size(&self.file).with_context(|| format!("size of {}", self.path.display()))?;
        Ok(bytes / 512)
    }
}
