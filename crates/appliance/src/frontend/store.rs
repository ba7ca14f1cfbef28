//! The file or block device behind an export: opened with O_DIRECT when the
//! file system and device accept 512-byte aligned direct I/O, else buffered
//! (durability then comes from the fdatasync every write batch waits for).

use anyhow::{bail, Context};
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// An opened store.
#[derive(Debug)]
pub struct Store {
    pub path: PathBuf,
    pub file: File,
    /// Opened with O_DIRECT (payloads go to/from frames in place, no page cache).
    pub direct: bool,
    pub read_only: bool,
}

impl Store {
    /// Opens `path`; with `try_direct`, O_DIRECT is used if it works.
    pub fn open(path: &Path, read_only: bool, try_direct: bool) -> anyhow::Result<Store> {
        let open = |direct: bool| {
            let mut o = OpenOptions::new();
            o.read(true).write(!read_only);
            if direct {
                o.custom_flags(libc::O_DIRECT);
            }
            o.open(path)
        };
        let (file, direct) = match open(try_direct) {
            Ok(f) if try_direct && direct_io_works(&f) => (f, true),
            // tmpfs refuses O_DIRECT at open (EINVAL); some devices only at I/O.
            Ok(_) | Err(_) => (
                open(false).with_context(|| format!("open {}", path.display()))?,
                false,
            ),
        };
        let s = Store {
            path: path.to_path_buf(),
            file,
            direct,
            read_only,
        };
        if s.sectors()? == 0 {
            bail!("{}: smaller than one 512-byte sector", path.display());
        }
        Ok(s)
    }

    /// Size in whole 512-byte sectors (a partial last sector is not exported,
    /// as vblade does). Works for regular files and block devices.
    pub fn sectors(&self) -> anyhow::Result<u64> {
        let mut f = &self.file;
        let bytes = f
            .seek(SeekFrom::End(0))
            .with_context(|| format!("size of {}", self.path.display()))?;
        Ok(bytes / 512)
    }
}

/// Tries one 512-byte direct read at offset 0 into a 4096-aligned buffer:
/// devices with 4 KiB logical blocks (and some file systems) refuse it, and
/// then the store runs buffered.
fn direct_io_works(f: &File) -> bool {
    #[repr(C, align(4096))]
    struct Page([u8; 4096]);
    let mut page = Box::new(Page([0; 4096]));
    f.read_at(&mut page.0[..512], 0).is_ok()
}
