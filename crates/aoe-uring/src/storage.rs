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

impl Backing {
    /// Open `path` for reading (and writing unless `read_only`). With `want_direct`,
    /// O_DIRECT is tried first and dropped if the filesystem refuses it (tmpfs) —
    /// see [`Backing::direct`] for which one you got.
    pub fn open(path: &Path, read_only: bool, want_direct: bool) -> io::Result<Backing> {
        Self::open_probed(path, read_only, want_direct, |_| true)
    }

    /// Like [`Backing::open`], but O_DIRECT is also dropped unless a direct read of
    /// one 512-byte sector at offset 0 succeeds: for callers that do sector-sized
    /// direct I/O (devices with 4 KiB logical blocks, and some filesystems, accept
    /// O_DIRECT at open but refuse such reads).
    pub fn open_sector_direct(
        path: &Path,
        read_only: bool,
        want_direct: bool,
    ) -> io::Result<Backing> {
        Self::open_probed(path, read_only, want_direct, sector_direct_read_works)
    }

    /// Opens with O_DIRECT if wanted, the filesystem accepts it and `direct_ok`
    /// approves the direct file; buffered otherwise.
    fn open_probed(
        path: &Path,
        read_only: bool,
        want_direct: bool,
        direct_ok: fn(&File) -> bool,
    ) -> io::Result<Backing> {
        let open = |direct: bool| {
            let mut o = OpenOptions::new();
            o.read(true).write(!read_only);
            if direct {
                o.custom_flags(libc::O_DIRECT);
            }
            o.open(path)
        };
        let buffered = || open(false).map_err(|e| with_path(e, path));
        let (file, direct) = if want_direct {
            match open(true) {
                Ok(f) if direct_ok(&f) => (f, true),
                Ok(_) => (buffered()?, false),
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => (buffered()?, false),
                Err(e) => return Err(with_path(e, path)),
            }
        } else {
            (buffered()?, false)
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
            read_only,
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
pub fn direct_io_alignment(file: &File) -> io::Result<u32> {
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

    #[test]
    fn regular_file_direct_and_buffered() {
        let tmp = Tmp(format!("/var/tmp/aoe-uring-storage-{}", std::process::id()).into());
        std::fs::write(&tmp.0, vec![0u8; 12288]).unwrap();
        let b = Backing::open(&tmp.0, false, true).unwrap();
        assert_eq!(b.size, 12288);
        assert!(!b.block_device);
        if b.direct {
            assert!(
                b.align >= 512 && b.align.is_power_of_two(),
                "align {}",
                b.align
            );
        }
        let b = Backing::open(&tmp.0, true, false).unwrap();
        assert!(!b.direct && b.read_only);
        assert_eq!(b.align, 1);
        let b = Backing::open_sector_direct(&tmp.0, false, true).unwrap();
        assert_eq!(b.size, 12288);
        assert_eq!(b.direct, b.direct && sector_direct_read_works(&b.file));
        let b = Backing::open_sector_direct(&tmp.0, false, false).unwrap();
        assert!(!b.direct);
        assert_eq!(b.align, 1);
    }

    #[test]
    fn missing_file_error_names_the_path() {
        let err = Backing::open(Path::new("/nonexistent/aoe-uring"), true, true).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/aoe-uring"), "{err}");
        let err = Backing::open_sector_direct(Path::new("/nonexistent/aoe-uring"), true, true)
            .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/aoe-uring"), "{err}");
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
