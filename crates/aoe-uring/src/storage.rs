//! Opening files and block devices as backing stores, and the facts direct I/O needs:
//! size, and the alignment O_DIRECT requires.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

// <linux/fs.h>: _IOR(0x12, 114, size_t).
const BLKGETSIZE64: libc::c_ulong = 0x8008_1272;
// <linux/fs.h>: _IO(0x12, 104).
const BLKSSZGET: libc::c_ulong = 0x1268;

/// A file or block device opened for I/O through a [`crate::Ring`].
#[derive(Debug)]
pub struct Backing {
    /// The open file (register it with [`crate::Ring::register_file`]).
    pub file: File,
    /// True if opened with O_DIRECT (bypassing the page cache).
    pub direct: bool,
    /// True for a block device, false for a regular file.
    pub block_device: bool,
    /// Size in bytes (file length, or device capacity).
    pub size: u64,
    /// Offsets, lengths and buffer addresses of direct I/O must be multiples of this
    /// (1 when not direct).
    pub align: u32,
    /// Opened read-only.
    pub read_only: bool,
}

/// When [`Backing::open`] uses O_DIRECT.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DirectIo {
    /// Never: buffered through the page cache.
    #[default]
    Never,
    /// If the filesystem accepts O_DIRECT at open (tmpfs, for one, may not).
    IfAccepted,
    /// If the filesystem accepts it and a direct read of one 512-byte sector at offset 0
    /// succeeds: for callers that do sector-sized direct I/O (devices with 4 KiB logical
    /// blocks, and some filesystems, accept O_DIRECT at open but refuse such reads).
    IfSectorReadsWork,
}

/// How [`Backing::open`] opens a file or block device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackingOptions {
    /// Read only (no writes through this backing).
    pub read_only: bool,
    /// Whether to use O_DIRECT; [`Backing::direct`] says what was used.
    pub direct: DirectIo,
    /// O_DSYNC: a write completes only once it is durable (the kernel adds FUA or a cache
    /// flush per write), for callers that acknowledge a write when it completes and are
    /// never asked to flush.
    pub dsync: bool,
}

impl Backing {
    /// Open `path` as `opts` say. O_DIRECT is dropped (buffered I/O instead) when the
    /// filesystem refuses it or, with [`DirectIo::IfSectorReadsWork`], a sector read
    /// fails.
    pub fn open(path: &Path, opts: &BackingOptions) -> io::Result<Backing> {
        let open = |direct: bool| {
            let mut flags = 0;
            if direct {
                flags |= libc::O_DIRECT;
            }
            if opts.dsync {
                flags |= libc::O_DSYNC;
            }
            OpenOptions::new()
                .read(true)
                .write(!opts.read_only)
                .custom_flags(flags)
                .open(path)
        };
        let buffered = || open(false).map_err(|e| with_path(e, path));
        let (file, direct) = match opts.direct {
            DirectIo::Never => (buffered()?, false),
            want => match open(true) {
                Ok(f) if want != DirectIo::IfSectorReadsWork || sector_direct_read_works(&f) => {
                    (f, true)
                }
                Ok(_) => (buffered()?, false),
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => (buffered()?, false),
                Err(e) => return Err(with_path(e, path)),
            },
        };
        let block_device = file.metadata()?.file_type().is_block_device();
        let size = device_size(&file).map_err(|e| with_path(e, path))?;
        let align = if direct {
            direct_io_alignment(&file)?
        } else {
            1
        };
        Ok(Backing {
            file,
            direct,
            block_device,
            size,
            align,
            read_only: opts.read_only,
        })
    }
}

/// One 512-byte direct read at offset 0 into a 4096-aligned buffer.
fn sector_direct_read_works(file: &File) -> bool {
    use std::os::unix::fs::FileExt;
    #[repr(C, align(4096))]
    struct Page([u8; 4096]);
    let mut page = Box::new(Page([0; 4096]));
    file.read_at(&mut page.0[..512], 0).is_ok()
}

fn with_path(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// Size in bytes of a regular file or a block device.
pub fn device_size(file: &File) -> io::Result<u64> {
    let meta = file.metadata()?;
    if !meta.file_type().is_block_device() {
        return Ok(meta.len());
    }
    let mut size: u64 = 0;
    // SAFETY: BLKGETSIZE64 writes one u64 to the pointer, which is a live local.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), BLKGETSIZE64 as _, &mut size as *mut u64) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(size)
}

/// Alignment O_DIRECT needs for offsets and lengths on `file`: the logical block size of
/// a block device (BLKSSZGET); for a regular file the filesystem's answer (statx
/// STATX_DIOALIGN), or 4096 if it gives none.
fn direct_io_alignment(file: &File) -> io::Result<u32> {
    if file.metadata()?.file_type().is_block_device() {
        let mut size: libc::c_int = 0;
        // SAFETY: BLKSSZGET writes one int to the pointer, which is a live local.
        let rc = unsafe {
            libc::ioctl(
                file.as_raw_fd(),
                BLKSSZGET as _,
                &mut size as *mut libc::c_int,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        return Ok(u32::try_from(size).unwrap_or(4096).max(1));
    }
    // SAFETY: statx is plain old data; all-zero is a valid value to be overwritten.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: empty path + AT_EMPTY_PATH makes statx describe the fd; `stx` is writable.
    let rc = unsafe {
        libc::statx(
            file.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_DIOALIGN,
            &mut stx,
        )
    };
    if rc == 0 && stx.stx_mask & libc::STATX_DIOALIGN != 0 && stx.stx_dio_offset_align > 0 {
        Ok(stx.stx_dio_offset_align.max(stx.stx_dio_mem_align))
    } else {
        Ok(4096)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Tmp(std::path::PathBuf);
    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn opts(read_only: bool, direct: DirectIo, dsync: bool) -> BackingOptions {
        BackingOptions {
            read_only,
            direct,
            dsync,
        }
    }

    fn open_flags(b: &Backing) -> libc::c_int {
        // SAFETY: F_GETFL on a descriptor `b.file` keeps open; no memory is named.
        unsafe { libc::fcntl(b.file.as_raw_fd(), libc::F_GETFL) }
    }

    #[test]
    fn regular_file_direct_and_buffered() {
        let tmp = Tmp(format!("/var/tmp/aoe-uring-storage-{}", std::process::id()).into());
        std::fs::write(&tmp.0, vec![0u8; 12288]).unwrap();
        let b = Backing::open(&tmp.0, &opts(false, DirectIo::IfAccepted, false)).unwrap();
        assert_eq!(b.size, 12288);
        assert!(!b.block_device);
        assert_eq!(open_flags(&b) & libc::O_DIRECT != 0, b.direct);
        assert_eq!(open_flags(&b) & libc::O_DSYNC, 0);
        if b.direct {
            assert!(
                b.align >= 512 && b.align.is_power_of_two(),
                "align {}",
                b.align
            );
        }
        let b = Backing::open(&tmp.0, &opts(true, DirectIo::Never, false)).unwrap();
        assert!(!b.direct && b.read_only);
        assert_eq!(open_flags(&b) & libc::O_ACCMODE, libc::O_RDONLY);
        assert_eq!(b.align, 1);
        let b = Backing::open(&tmp.0, &opts(false, DirectIo::IfSectorReadsWork, true)).unwrap();
        assert_eq!(b.size, 12288);
        assert_eq!(b.direct, b.direct && sector_direct_read_works(&b.file));
        assert_eq!(open_flags(&b) & libc::O_DSYNC, libc::O_DSYNC);
        assert_eq!(open_flags(&b) & libc::O_ACCMODE, libc::O_RDWR);
        let b = Backing::open(&tmp.0, &opts(false, DirectIo::Never, true)).unwrap();
        assert!(!b.direct);
        assert_eq!(open_flags(&b) & libc::O_DSYNC, libc::O_DSYNC);
        assert_eq!(b.align, 1);
    }

    #[test]
    fn missing_file_error_names_the_path() {
        for direct in [
            DirectIo::Never,
            DirectIo::IfAccepted,
            DirectIo::IfSectorReadsWork,
        ] {
            let path = Path::new("/nonexistent/aoe-uring");
            let err = Backing::open(path, &opts(true, direct, false)).unwrap_err();
            assert!(err.to_string().contains("/nonexistent/aoe-uring"), "{err}");
        }
    }

    #[test]
    fn loop_or_block_device_size() {
        // Any block device present in /sys/block that we can open read-only.
        let Some(dev) = std::fs::read_dir("/sys/block").ok().and_then(|mut d| {
            d.find_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                let f = File::open(format!("/dev/{name}")).ok()?;
                let sectors: u64 = std::fs::read_to_string(format!("/sys/block/{name}/size"))
                    .ok()?
                    .trim()
                    .parse()
                    .ok()?;
                Some((f, sectors))
            })
        }) else {
            return; // no block device visible in this environment
        };
        let (f, sectors) = dev;
        assert_eq!(device_size(&f).unwrap(), sectors * 512);
        let align = direct_io_alignment(&f).unwrap();
        assert!(align >= 512 && align.is_power_of_two());
    }
}
