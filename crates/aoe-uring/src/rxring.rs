//! A memory-mapped receive ring (`PACKET_RX_RING`, `TPACKET_V2`) for a [`PacketSocket`].
//!
//! With a ring, the kernel copies each frame into a slot of memory shared with us while it
//! delivers the frame (in the softirq of whichever CPU received it — for a veth pair,
//! the sender's) and frees the skb there. Reading a frame is then a load from memory: no
//! receive request, no `recvmsg`, no copy and no skb free on the receiving thread.
//! The ring is how a [`crate::Ring`] receives on such a socket (see
//! [`crate::SocketOptions::rx_ring_frames`]).
//!
//! Protocol (linux/if_packet.h, Documentation/networking/packet_mmap.rst): every slot
//! starts with a `tpacket2_hdr` whose `tp_status` is `TP_STATUS_KERNEL` (0) while the
//! slot belongs to the kernel. The kernel fills slots strictly in ring order and sets
//! `TP_STATUS_USER` when a frame is in; if the slot at its position is still ours, it
//! drops the frame (counted in `PACKET_STATISTICS`) instead of skipping ahead. Writing
//! `TP_STATUS_KERNEL` back hands the slot to the kernel again. So the reader keeps its own
//! position, which trails the kernel's by exactly the frames ready and not yet read.
//!
//! [`PacketSocket`]: crate::PacketSocket

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::ringmap::{status, Layout, Tpacket2Hdr};

const TP_STATUS_KERNEL: u32 = 0;
const TP_STATUS_USER: u32 = 1;

/// A frame the kernel handed over: slot index, where its bytes are, their length, and
/// the length the frame really had (larger if the slot was too small).
pub(crate) struct Ready {
    pub(crate) slot: u32,
    pub(crate) offset: usize,
    pub(crate) len: u32,
    pub(crate) wire_len: u32,
}

/// A view of one socket's receive ring, inside the socket's [`crate::ringmap::RingMap`].
#[derive(Debug)]
pub(crate) struct RxRing {
    base: NonNull<u8>,
    layout: Layout,
}

// SAFETY: the view is owned by the socket's RingMap, which owns the mapping and moves
// with it; no other handle to these slots exists.
unsafe impl Send for RxRing {}
// SAFETY: `&self` methods only do atomic loads/stores of slot status words and hand out
// shared slices of slots the kernel has passed to user space (status USER), which the
// kernel does not write until `release` stores KERNEL. `release` is `unsafe` and its
// caller (the Ring, which is !Sync) guarantees no slice of that slot is alive.
unsafe impl Sync for RxRing {}

impl RxRing {
    /// Room a slot needs besides the frame: the offset of the frame (its MAC header)
    /// inside a slot for a SOCK_RAW socket without `PACKET_RESERVE` is
    /// TPACKET_ALIGN(TPACKET2_HDRLEN + 16) − 14 = 66; reserved with room to spare, the
    /// exact offset is read from each slot's `tp_mac`.
    pub(crate) const SLOT_OVERHEAD: usize = 96;

    /// The view of the ring at `base` laid out as `layout`.
    ///
    /// # Safety
    /// `base` must be the start of a receive ring the kernel mapped with `layout`, and
    /// the mapping must outlive the view.
    pub(crate) unsafe fn new(base: NonNull<u8>, layout: Layout) -> RxRing {
        RxRing { base, layout }
    }

    /// Number of slots.
    pub(crate) fn frames(&self) -> u32 {
        self.layout.frames()
    }

    /// Largest frame a slot holds whole.
    pub(crate) fn max_frame(&self) -> usize {
        self.layout.frame_size() - Self::SLOT_OVERHEAD
    }

    fn status(&self, slot: u32) -> &AtomicU32 {
        // SAFETY: a slot < frames (checked by every caller) of this ring, whose mapping
        // outlives `self`.
        unsafe { status(self.base, self.layout.slot_offset(slot)) }
    }

    /// The frame in `slot` if the kernel has handed it over (status USER), else None.
    pub(crate) fn ready(&self, slot: u32) -> Option<Ready> {
        if slot >= self.frames() {
            return None;
        }
        // Acquire: the frame's bytes and header fields, written by the kernel before it
        // set the status, are visible after this load.
        if self.status(slot).load(Ordering::Acquire) & TP_STATUS_USER == 0 {
            return None;
        }
        let off = self.layout.slot_offset(slot);
        // SAFETY: the slot is ours (status USER) so the kernel does not write its header;
        // the header lies inside the mapping at a 16-aligned offset.
        let hdr = unsafe { &*self.base.as_ptr().add(off).cast::<Tpacket2Hdr>() };
        let mac = usize::from(hdr.tp_mac);
        // Never trust offsets blindly: clamp the frame to its slot.
        let frame_size = self.layout.frame_size();
        let start = mac.min(frame_size);
        let len = (hdr.tp_snaplen as usize).min(frame_size - start);
        Some(Ready {
            slot,
            offset: off + start,
            len: len as u32,
            wire_len: hdr.tp_len,
        })
    }

    /// The bytes of a frame found by [`RxRing::ready`].
    ///
    /// # Safety
    /// `offset..offset + len` must come from `ready` for a slot not yet released: then
    /// the kernel does not write these bytes until [`RxRing::release`].
    pub(crate) unsafe fn bytes(&self, offset: usize, len: u32) -> &[u8] {
        debug_assert!(offset + len as usize <= self.layout.slot_offset(self.frames()));
        // SAFETY: per the caller's contract the range is inside the mapping and stable.
        unsafe { std::slice::from_raw_parts(self.base.as_ptr().add(offset), len as usize) }
    }

    /// Hand `slot` back to the kernel.
    ///
    /// # Safety
    /// No slice from [`RxRing::bytes`] of this slot may be alive: the kernel may
    /// overwrite the slot right after this store.
    pub(crate) unsafe fn release(&self, slot: u32) {
        if slot < self.frames() {
            // Release: our reads of the frame happen before the kernel may reuse it.
            self.status(slot).store(TP_STATUS_KERNEL, Ordering::Release);
        }
    }
}
