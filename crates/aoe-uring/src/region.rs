//! Page-aligned anonymous memory that the kernel reads and writes behind our back.
//!
//! Memory handed to io_uring (provided buffers, registered buffers, send slots) must not
//! move and must not be freed while a request may touch it. A `Region` is one `mmap`
//! that never moves; `leak` lets `Ring::drop` give up on freeing it if in-flight requests
//! could not be confirmed finished, which is safe (a leak) where freeing would not be.

use std::cell::Cell;
use std::io;
use std::os::fd::RawFd;
use std::ptr::NonNull;

pub(crate) const PAGE: usize = 4096;
const HUGE_PAGE: usize = 2 << 20;

pub(crate) struct Region {
    ptr: NonNull<u8>,
    len: usize,
    leaked: Cell<bool>,
}

impl Region {
    /// Map `len` bytes (rounded up to a page) of zeroed, private, anonymous memory,
    /// faulted in up front. Regions of 2 MiB or more ask for transparent huge pages:
    /// frames land all over a large buffer pool, and fewer TLB misses make that cheaper.
    pub(crate) fn new(len: usize) -> io::Result<Self> {
        let len = len.max(1).div_ceil(PAGE) * PAGE;
        let ptr = map(len, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, None)?;
        if len >= HUGE_PAGE {
            // SAFETY: advice on the mapping just created; failure only loses the hint.
            unsafe { libc::madvise(ptr.as_ptr().cast(), len, libc::MADV_HUGEPAGE) };
        }
        // SAFETY: populate (write-fault) the mapping just created, so the data path never
        // takes a first-touch page fault. On kernels without MADV_POPULATE_WRITE the pages
        // simply fault in on first use.
        unsafe { libc::madvise(ptr.as_ptr().cast(), len, libc::MADV_POPULATE_WRITE) };
        Ok(Region {
            ptr,
            len,
            leaked: Cell::new(false),
        })
    }

    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Never unmap: used when the kernel may still own part of the memory.
    pub(crate) fn leak(&self) {
        self.leaked.set(true);
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        if self.leaked.get() {
            return;
        }
        // SAFETY: `ptr`/`len` describe exactly the mapping created in `new`, unmapped once.
        // Callers (Ring::drop) only let a Region drop when no request can touch it.
        unsafe { unmap(self.ptr, self.len) };
    }
}

// SAFETY: a Region is just owned memory; which thread unmaps it does not matter.
unsafe impl Send for Region {}

/// Maps `len` bytes readable and writable with `flags`: anonymous memory (`fd` None) or
/// the memory the kernel offers for `fd` at offset 0.
pub(crate) fn map(len: usize, flags: libc::c_int, fd: Option<RawFd>) -> io::Result<NonNull<u8>> {
    // SAFETY: a new mapping with no address hint, so it cannot clobber memory we use;
    // the result is checked.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            flags,
            fd.unwrap_or(-1),
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned NULL"))
}

/// Unmaps a mapping made by [`map`].
///
/// # Safety
/// `ptr` and `len` must be exactly one mapping from [`map`], not unmapped before, and no
/// reference into it may be used afterwards.
pub(crate) unsafe fn unmap(ptr: NonNull<u8>, len: usize) {
    // SAFETY: per the caller's contract.
    unsafe { libc::munmap(ptr.as_ptr().cast(), len) };
}
