//! The file or block device behind an export, and how it is read and written
//! ([`IoMode`]): through the page cache for regular files (a read of cached
//! data completes inline in io_uring's submission, no worker thread, no disk),
//! O_DIRECT for block devices (their own page cache would only hold a second
//! copy of what the device's user caches). Either way a write is acknowledged
//! only after the fdatasync its batch waits for.

use anyhow::{bail, Context};
use aoe_uring::{device_size, Backing, BackingOptions, DirectIo};
use std::fs::File;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

/// How an export's store is opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum IoMode {
    /// Regular files buffered, block devices O_DIRECT (where 512-byte direct
    /// reads work).
    #[default]
    Auto,
    /// O_DIRECT where 512-byte direct reads work, buffered otherwise.
    Direct,
    /// Always through the page cache.
    Buffered,
}

/// An opened store.
#[derive(Debug)]
pub(crate) struct ExportFile {
    pub(crate) path: PathBuf,
    pub(crate) file: File,
    /// Opened with O_DIRECT (payloads go to/from frames in place, no page cache).
    pub(crate) direct: bool,
    /// Bytes of the file before the export's first sector (vblade -o).
    pub(crate) offset: u64,
    /// Bytes exported from `offset` on (vblade -l); the rest of the file if unset.
    pub(crate) length: Option<u64>,
}

impl ExportFile {
    /// Opens `path` as `mode` says; O_DIRECT only where a 512-byte direct
    /// read works (see [`DirectIo::IfSectorReadsWork`]).
    /// `offset` and `length` (bytes, multiples of 512) cut the exported
    /// range out of the file.
    pub(crate) fn open(
        path: &Path,
        read_only: bool,
        mode: IoMode,
        offset: u64,
        length: Option<u64>,
    ) -> anyhow::Result<ExportFile> {
        let try_direct = match mode {
            IoMode::Direct => true,
            IoMode::Buffered => false,
            IoMode::Auto => std::fs::metadata(path)
                .with_context(|| format!("open {}", path.display()))?
                .file_type()
                .is_block_device(),
        };
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
            offset,
            length,
        };
        if s.sectors()? == 0 {
            bail!(
                "{}: less than one 512-byte sector after offset {offset}",
                path.display()
            );
        }
        Ok(s)
    }

    /// Size in whole 512-byte sectors (a partial last sector is not exported,
    /// as vblade does): the file past `offset`, at most `length`. Works for
    /// regular files and block devices.
    pub(crate) fn sectors(&self) -> anyhow::Result<u64> {
        let bytes =
            device_size(&self.file).with_context(|| format!("size of {}", self.path.display()))?;
        let rest = bytes.saturating_sub(self.offset);
        Ok(self.length.map_or(rest, |l| l.min(rest)) / 512)
    }
}
