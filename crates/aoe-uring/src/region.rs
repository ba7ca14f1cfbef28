//! Page-aligned anonymous memory that the kernel reads and writes behind our back.
//!
//! Memory handed to io_uring (provided buffers, registered buffers, send slots) must not
//! move and must not be freed while a request may touch it. A `Region` is one `mmap`
//! that never moves; `leak` lets `Ring::drop` give up on freeing it if in-flight requests
//! could not be confirmed finished, which is safe (a leak) where freeing would not be.

use std::cell::Cell;
use std::io;
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
        // SAFETY: anonymous private mapping with no address hint; the result is checked.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        if len >= HUGE_PAGE {
            // SAFETY: advice on the mapping just created; failure only loses the hint.
            unsafe { libc::madvise(ptr, len, libc::MADV_HUGEPAGE) };
        }
        // SAFETY: populate (write-fault) the mapping just created, so the data path never
        // takes a first-touch page fault. On kernels without MADV_POPULATE_WRITE the pages
        // simply fault in on first use.
        unsafe { libc::madvise(ptr, len, libc::MADV_POPULATE_WRITE) };
        let ptr =
            NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned NULL"))?;
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
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

// SAFETY: a Region is just owned memory; which thread unmaps it does not matter.
unsafe impl Send for Region {}
