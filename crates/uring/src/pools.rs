//! The ring's three kinds of preallocated memory: the provided-buffer ring that multishot
//! receives fill, send slots, and registered I/O buffers.

use std::cell::{Cell, RefCell};
use std::io;
use std::sync::atomic::{AtomicU16, Ordering};

use crate::region::{Region, PAGE};

/// Size of one `struct io_uring_buf` entry in a provided-buffer ring.
const BUF_RING_ENTRY: usize = 16;
/// Offset of the ring tail (the `resv` field of entry 0) in the ring memory.
const BUF_RING_TAIL_OFFSET: usize = 14;

/// A provided-buffer ring (io_uring "pbuf ring"): the kernel takes buffers from it for
/// each received frame; the caller returns them with `give_back`.
pub(crate) struct ProvidedBuffers {
    ring_mem: Region,
    data: Region,
    entries: u16,
    buf_size: u32,
    tail: Cell<u16>,
    // Which buffers are lent to the caller (true) vs. in the ring / kernel (false).
    lent: Box<[Cell<bool>]>,
    lent_count: Cell<u32>,
}

impl ProvidedBuffers {
    pub(crate) fn new(entries: u16, buf_size: u32) -> io::Result<Self> {
        if !entries.is_power_of_two() || entries > 32768 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("recv_buffers must be a power of two up to 32768, got {entries}"),
            ));
        }
        let ring_mem = Region::new(usize::from(entries) * BUF_RING_ENTRY)?;
        let data = Region::new(usize::from(entries) * buf_size as usize)?;
        let pb = ProvidedBuffers {
            ring_mem,
            data,
            entries,
            buf_size,
            tail: Cell::new(0),
            lent: (0..entries).map(|_| Cell::new(false)).collect(),
            lent_count: Cell::new(0),
        };
        for bid in 0..entries {
            pb.push(bid);
        }
        pb.publish();
        Ok(pb)
    }

    pub(crate) fn ring_addr(&self) -> u64 {
        self.ring_mem.as_ptr() as u64
    }

    pub(crate) fn entries(&self) -> u16 {
        self.entries
    }

    pub(crate) fn buf_size(&self) -> u32 {
        self.buf_size
    }

    /// At least one buffer is (or will be, once the CQ is drained) available to the kernel.
    pub(crate) fn any_available(&self) -> bool {
        self.lent_count.get() < u32::from(self.entries)
    }

    pub(crate) fn lent_count(&self) -> u32 {
        self.lent_count.get()
    }

    /// Mark `bid` as lent to the caller (the kernel just filled it). Returns false for an
    /// id the kernel cannot have given us (out of range or already lent).
    pub(crate) fn lend(&self, bid: u16) -> bool {
        match self.lent.get(usize::from(bid)) {
            Some(flag) if !flag.get() => {
                flag.set(true);
                self.lent_count.set(self.lent_count.get() + 1);
                true
            }
            _ => false,
        }
    }

    /// The bytes of lent buffer `bid`, `len` long (clamped to the buffer size).
    pub(crate) fn bytes(&self, bid: u16, len: u32) -> &[u8] {
        assert!(
            self.lent.get(usize::from(bid)).is_some_and(Cell::get),
            "RecvBuf {bid} is not lent out by this ring"
        );
        let len = len.min(self.buf_size) as usize;
        // SAFETY: `bid < entries`, so the range lies inside `data`. The buffer is lent to
        // the caller: it is not in the provided ring, so the kernel will not write it until
        // `give_back`, which takes the RecvBuf by value and so ends every borrow of it
        // (the returned slice borrows the token). Only shared references are ever made.
        unsafe {
            std::slice::from_raw_parts(
                self.data
                    .as_ptr()
                    .add(usize::from(bid) * self.buf_size as usize),
                len,
            )
        }
    }

    /// Return lent buffer `bid` to the kernel.
    pub(crate) fn give_back(&self, bid: u16) {
        let Some(flag) = self.lent.get(usize::from(bid)) else {
            return;
        };
        if !flag.get() {
            return;
        }
        flag.set(false);
        self.lent_count.set(self.lent_count.get() - 1);
        self.push(bid);
        self.publish();
    }

    fn push(&self, bid: u16) {
        let tail = self.tail.get();
        let slot = usize::from(tail & (self.entries - 1));
        // SAFETY: `slot < entries`, so the 16-byte entry is inside `ring_mem`. We write only
        // addr (offset 0), len (8) and bid (12) — never the tail at offset 14 of entry 0,
        // which is updated atomically in `publish`. The kernel only reads entries between
        // its head and our published tail, and this slot is past the published tail.
        unsafe {
            let entry = self.ring_mem.as_ptr().add(slot * BUF_RING_ENTRY);
            let addr = self
                .data
                .as_ptr()
                .add(usize::from(bid) * self.buf_size as usize) as u64;
            entry.cast::<u64>().write(addr);
            entry.add(8).cast::<u32>().write(self.buf_size);
            entry.add(12).cast::<u16>().write(bid);
        }
        self.tail.set(tail.wrapping_add(1));
    }

    fn publish(&self) {
        // SAFETY: the tail is a 2-byte-aligned u16 inside `ring_mem` (page-aligned base +
        // 14) that lives as long as `self`; the kernel reads it concurrently, hence atomic.
        let tail =
            unsafe { AtomicU16::from_ptr(self.ring_mem.as_ptr().add(BUF_RING_TAIL_OFFSET).cast()) };
        // Release: entry writes in `push` become visible before the new tail.
        tail.store(self.tail.get(), Ordering::Release);
    }

    pub(crate) fn leak(&self) {
        self.ring_mem.leak();
        self.data.leak();
    }
}

/// Fixed-size buffers in one region, handed out by index from a free list.
pub(crate) struct BufferPool {
    data: Region,
    buf_size: usize,
    count: u32,
    free: RefCell<Vec<u32>>,
    // True while the buffer is with the caller or in flight.
    taken: Box<[Cell<bool>]>,
}

impl BufferPool {
    /// `count` buffers of `buf_size` bytes each; every buffer starts `align`-aligned.
    pub(crate) fn new(count: u32, buf_size: usize, align: usize) -> io::Result<Self> {
        if buf_size == 0 && count > 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "buffer size must be > 0",
            ));
        }
        let stride = buf_size.div_ceil(align.max(1)) * align.max(1);
        let total = (count as usize).checked_mul(stride).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "buffer pool size overflows")
        })?;
        debug_assert!(PAGE.is_multiple_of(align.max(1)));
        Ok(BufferPool {
            data: Region::new(total)?,
            buf_size: stride,
            count,
            free: RefCell::new((0..count).rev().collect()),
            taken: (0..count).map(|_| Cell::new(false)).collect(),
        })
    }

    pub(crate) fn buf_size(&self) -> usize {
        self.buf_size
    }

    pub(crate) fn count(&self) -> u32 {
        self.count
    }

    pub(crate) fn free_count(&self) -> usize {
        self.free.borrow().len()
    }

    pub(crate) fn base(&self) -> *mut u8 {
        self.data.as_ptr()
    }

    pub(crate) fn region_len(&self) -> usize {
        self.data.len()
    }

    pub(crate) fn take(&self) -> Option<u32> {
        let idx = self.free.borrow_mut().pop()?;
        self.taken[idx as usize].set(true);
        Some(idx)
    }

    pub(crate) fn put(&self, idx: u32) {
        if let Some(flag) = self.taken.get(idx as usize) {
            if flag.replace(false) {
                self.free.borrow_mut().push(idx);
            }
        }
    }

    pub(crate) fn ptr(&self, idx: u32) -> *mut u8 {
        debug_assert!(idx < self.count);
        // SAFETY: `idx < count`, so the offset stays inside the region.
        unsafe { self.data.as_ptr().add(idx as usize * self.buf_size) }
    }

    pub(crate) fn is_taken(&self, idx: u32) -> bool {
        self.taken.get(idx as usize).is_some_and(Cell::get)
    }

    pub(crate) fn leak(&self) {
        self.data.leak();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provided_buffers_lend_and_give_back() {
        let pb = ProvidedBuffers::new(8, 256).unwrap();
        assert!(pb.any_available());
        for bid in 0..8 {
            assert!(pb.lend(bid));
        }
        assert!(!pb.any_available());
        assert!(!pb.lend(3), "double lend must be refused");
        assert!(!pb.lend(8), "out of range id must be refused");
        assert_eq!(
            pb.bytes(3, 1000).len(),
            256,
            "length clamps to the buffer size"
        );
        pb.give_back(3);
        pb.give_back(3);
        assert!(pb.any_available());
        assert_eq!(pb.lent_count.get(), 7);
        // 8 initial pushes + 1 give-back; the tail wraps modulo 2^16 independent of entries.
        assert_eq!(pb.tail.get(), 9);
    }

    #[test]
    fn provided_buffers_reject_bad_sizes() {
        assert!(ProvidedBuffers::new(0, 256).is_err());
        assert!(ProvidedBuffers::new(100, 256).is_err());
    }

    #[test]
    fn buffer_pool_aligns_and_recycles() {
        let pool = BufferPool::new(4, 5000, 4096).unwrap();
        assert_eq!(pool.buf_size(), 8192);
        let a = pool.take().unwrap();
        let b = pool.take().unwrap();
        assert_ne!(a, b);
        assert_eq!(pool.ptr(a) as usize % 4096, 0);
        assert_eq!(pool.ptr(b) as usize % 4096, 0);
        assert_eq!(pool.free_count(), 2);
        pool.put(a);
        pool.put(a);
        assert_eq!(pool.free_count(), 3, "double put is ignored");
        while pool.take().is_some() {}
        assert_eq!(pool.free_count(), 0);
    }
}
