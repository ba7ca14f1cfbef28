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

/// Where `count` equal buffers sit in one region.
///
/// With `align_at = Some(k)`, each buffer is placed so that its byte `k` is 4096-aligned:
/// a frame's payload at offset `k` can then be read from or written to an O_DIRECT file
/// in place. Otherwise buffers start 64-byte aligned (or `min_align`).
pub(crate) struct Slab {
    region: Region,
    count: u32,
    size: usize,
    pad: usize,
    stride: usize,
}

impl Slab {
    pub(crate) fn new(
        count: u32,
        size: usize,
        min_align: usize,
        align_at: Option<usize>,
    ) -> io::Result<Self> {
        if size == 0 && count > 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "buffer size must be > 0",
            ));
        }
        let (pad, stride) = match align_at {
            Some(k) => {
                let pad = (PAGE - k % PAGE) % PAGE;
                // Buffers may straddle stride boundaries; only `size <= stride` matters.
                (pad, size.div_ceil(PAGE) * PAGE)
            }
            None => {
                let a = min_align.max(1);
                (0, size.div_ceil(a) * a)
            }
        };
        let total = (count as usize).checked_mul(stride).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "buffer pool size overflows")
        })?;
        Ok(Slab {
            region: Region::new(total)?,
            count,
            size,
            pad,
            stride,
        })
    }

    pub(crate) fn count(&self) -> u32 {
        self.count
    }

    /// Usable bytes per buffer.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    pub(crate) fn ptr(&self, idx: u32) -> *mut u8 {
        debug_assert!(idx < self.count);
        // SAFETY: `idx < count` and `size <= stride`, so the buffer ends by
        // `count * stride + pad`, the region's length.
        unsafe {
            self.region
                .as_ptr()
                .add(idx as usize * self.stride + self.pad)
        }
    }

    /// The whole region as one iovec, for `register_buffers`.
    pub(crate) fn iovec(&self) -> libc::iovec {
        libc::iovec {
            iov_base: self.region.as_ptr().cast(),
            iov_len: self.region.len(),
        }
    }

    pub(crate) fn leak(&self) {
        self.region.leak();
    }
}

/// Buffers posted to the kernel at start; more are posted each time the kernel runs out.
const INITIAL_POSTED: u16 = 64;

/// A provided-buffer ring (io_uring "pbuf ring"): the kernel takes buffers from it for
/// each received frame; the caller returns them with `give_back`.
///
/// The kernel consumes posted buffers in FIFO order, so every posted buffer is cycled
/// through; posting all of them spreads the receive copies over the whole pool (1024
/// jumbo buffers = 9 MiB). Instead only a few are posted and the rest wait in a reserve,
/// posted in steps whenever the kernel reports it ran out (ENOBUFS), so the buffers in
/// use track the actual load. The frame then waits in the socket queue until the
/// receive is re-armed; nothing is lost. (The veth benchmark could not show a
/// difference either way on this shared, noisy machine.)
pub(crate) struct ProvidedBuffers {
    ring_mem: Region,
    data: Slab,
    entries: u16,
    tail: Cell<u16>,
    reserve: RefCell<Vec<u16>>,
    // Which buffers are lent to the caller (true) vs. in the ring / kernel (false).
    lent: Box<[Cell<bool>]>,
    lent_count: Cell<u32>,
}

impl ProvidedBuffers {
    pub(crate) fn new(entries: u16, buf_size: u32, align_at: Option<usize>) -> io::Result<Self> {
        if !entries.is_power_of_two() || entries > 32768 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("recv_buffers must be a power of two up to 32768, got {entries}"),
            ));
        }
        let ring_mem = Region::new(usize::from(entries) * BUF_RING_ENTRY)?;
        let data = Slab::new(u32::from(entries), buf_size as usize, 64, align_at)?;
        let pb = ProvidedBuffers {
            ring_mem,
            data,
            entries,
            tail: Cell::new(0),
            reserve: RefCell::new((INITIAL_POSTED.min(entries)..entries).rev().collect()),
            lent: (0..entries).map(|_| Cell::new(false)).collect(),
            lent_count: Cell::new(0),
        };
        for bid in 0..INITIAL_POSTED.min(entries) {
            pb.push(bid);
        }
        pb.publish();
        Ok(pb)
    }

    /// Buffers posted to the kernel (in the ring, or filled but not yet reaped).
    pub(crate) fn posted(&self) -> u32 {
        u32::from(self.entries) - self.lent_count.get() - self.reserve.borrow().len() as u32
    }

    /// The kernel ran out: post more buffers from the reserve (as many again as are
    /// posted now, at least 16). Returns how many were added.
    pub(crate) fn grow(&self) -> u32 {
        let mut reserve = self.reserve.borrow_mut();
        let want = self.posted_locked(reserve.len()).max(16) as usize;
        let n = want.min(reserve.len());
        for _ in 0..n {
            if let Some(bid) = reserve.pop() {
                self.push(bid);
            }
        }
        drop(reserve);
        self.publish();
        n as u32
    }

    fn posted_locked(&self, reserve_len: usize) -> u32 {
        u32::from(self.entries) - self.lent_count.get() - reserve_len as u32
    }

    pub(crate) fn ring_addr(&self) -> u64 {
        self.ring_mem.as_ptr() as u64
    }

    pub(crate) fn entries(&self) -> u16 {
        self.entries
    }

    pub(crate) fn buf_size(&self) -> u32 {
        self.data.size() as u32
    }

    pub(crate) fn slab(&self) -> &Slab {
        &self.data
    }

    pub(crate) fn lent_count(&self) -> u32 {
        self.lent_count.get()
    }

    /// At least one buffer is (or will be, once the CQ is drained) available to the
    /// kernel, or can be posted from the reserve.
    pub(crate) fn any_available(&self) -> bool {
        self.lent_count.get() < u32::from(self.entries)
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

    pub(crate) fn is_lent(&self, bid: u16) -> bool {
        self.lent.get(usize::from(bid)).is_some_and(Cell::get)
    }

    /// The bytes of lent buffer `bid`, `len` long (clamped to the buffer size).
    pub(crate) fn bytes(&self, bid: u16, len: u32) -> &[u8] {
        assert!(
            self.is_lent(bid),
            "RecvBuf {bid} is not lent out by this ring"
        );
        let len = (len as usize).min(self.data.size());
        // SAFETY: `bid < entries` (it is lent), so the range lies inside the slab. The
        // buffer is lent to the caller: it is not in the provided ring, so the kernel will
        // not write it until `give_back`, which takes the RecvBuf by value and so ends every
        // borrow of it (the returned slice borrows the token). Only shared references are
        // ever made.
        unsafe { std::slice::from_raw_parts(self.data.ptr(u32::from(bid)), len) }
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
            entry
                .cast::<u64>()
                .write(self.data.ptr(u32::from(bid)) as u64);
            entry.add(8).cast::<u32>().write(self.data.size() as u32);
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

/// Fixed-size buffers in one slab, handed out by index from a free list.
pub(crate) struct BufferPool {
    data: Slab,
    free: RefCell<Vec<u32>>,
    // True while the buffer is with the caller or in flight.
    taken: Box<[Cell<bool>]>,
}

impl BufferPool {
    pub(crate) fn new(data: Slab) -> Self {
        let count = data.count();
        BufferPool {
            data,
            free: RefCell::new((0..count).rev().collect()),
            taken: (0..count).map(|_| Cell::new(false)).collect(),
        }
    }

    pub(crate) fn slab(&self) -> &Slab {
        &self.data
    }

    pub(crate) fn buf_size(&self) -> usize {
        self.data.size()
    }

    pub(crate) fn count(&self) -> u32 {
        self.data.count()
    }

    pub(crate) fn free_count(&self) -> usize {
        self.free.borrow().len()
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
        self.data.ptr(idx)
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
        let pb = ProvidedBuffers::new(8, 256, None).unwrap();
        assert!(pb.any_available());
        for bid in 0..8 {
            assert!(pb.lend(bid));
        }
        assert!(!pb.any_available());
        assert!(!pb.lend(3), "double lend must be refused");
        assert_eq!(pb.posted(), 0);
        assert!(!pb.lend(8), "out of range id must be refused");
        assert_eq!(
            pb.bytes(3, 1000).len(),
            256,
            "length clamps to the buffer size"
        );
        pb.give_back(3);
        pb.give_back(3);
        assert!(pb.any_available());
        assert_eq!(pb.lent_count(), 7);
        // 8 initial pushes + 1 give-back; the tail wraps modulo 2^16 independent of entries.
        assert_eq!(pb.tail.get(), 9);
    }

    #[test]
    fn provided_buffers_post_from_reserve_on_demand() {
        let pb = ProvidedBuffers::new(1024, 128, None).unwrap();
        assert_eq!(pb.posted(), 64);
        assert_eq!(pb.grow(), 64);
        assert_eq!(pb.posted(), 128);
        assert_eq!(pb.grow(), 128);
        assert_eq!(pb.posted(), 256);
        while pb.grow() > 0 {}
        assert_eq!(pb.posted(), 1024);
        assert_eq!(pb.tail.get(), 1024);
    }

    #[test]
    fn provided_buffers_reject_bad_sizes() {
        assert!(ProvidedBuffers::new(0, 256, None).is_err());
        assert!(ProvidedBuffers::new(100, 256, None).is_err());
    }

    #[test]
    fn slab_aligns_payload_offset() {
        let slab = Slab::new(4, 9216, 64, Some(36)).unwrap();
        for i in 0..4 {
            assert_eq!((slab.ptr(i) as usize + 36) % PAGE, 0, "buffer {i}");
        }
        assert_eq!(slab.stride, 3 * PAGE);
        let plain = Slab::new(3, 5000, PAGE, None).unwrap();
        assert_eq!(plain.stride, 8192);
        assert_eq!(plain.ptr(1) as usize % PAGE, 0);
    }

    #[test]
    fn buffer_pool_recycles() {
        let pool = BufferPool::new(Slab::new(4, 4096, PAGE, None).unwrap());
        let a = pool.take().unwrap();
        let b = pool.take().unwrap();
        assert_ne!(a, b);
        assert_eq!(pool.free_count(), 2);
        pool.put(a);
        pool.put(a);
        assert_eq!(pool.free_count(), 3, "double put is ignored");
        while pool.take().is_some() {}
        assert_eq!(pool.free_count(), 0);
    }
}
