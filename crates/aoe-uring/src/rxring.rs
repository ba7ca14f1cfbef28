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

use std::sync::atomic::Ordering;

use crate::ringmap::RingView;

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

/// One socket's receive ring, inside the socket's [`crate::ringmap::RingMap`].
#[derive(Debug)]
pub(crate) struct RxRing(RingView);

impl RxRing {
    /// Room a slot needs besides the frame: the offset of the frame (its MAC header)
    /// inside a slot for a SOCK_RAW socket without `PACKET_RESERVE` is
    /// TPACKET_ALIGN(TPACKET2_HDRLEN + 16) − 14 = 66; reserved with room to spare, the
    /// exact offset is read from each slot's `tp_mac`.
    pub(crate) const SLOT_OVERHEAD: usize = 96;

    pub(crate) fn new(view: RingView) -> RxRing {
        RxRing(view)
    }

    /// Number of slots.
    pub(crate) fn frames(&self) -> u32 {
        self.0.frames()
    }

    /// Largest frame a slot holds whole.
    pub(crate) fn max_frame(&self) -> usize {
        self.0.frame_size() - Self::SLOT_OVERHEAD
    }

    /// The frame in `slot` if the kernel has handed it over (status USER), else None.
    pub(crate) fn ready(&self, slot: u32) -> Option<Ready> {
        if slot >= self.frames() {
            return None;
        }
        // Acquire: the frame's bytes and header fields, written by the kernel before it
        // set the status, are visible after this load.
        if self.0.status(slot).load(Ordering::Acquire) & TP_STATUS_USER == 0 {
            return None;
        }
        // SAFETY: the slot is ours (status USER), so the kernel does not write it.
        let (mac, snaplen, wire_len) = unsafe { self.0.received(slot) };
        // Never trust offsets blindly: clamp the frame to its slot.
        let frame_size = self.0.frame_size();
        let start = usize::from(mac).min(frame_size);
        let len = (snaplen as usize).min(frame_size - start);
        Some(Ready {
            slot,
            offset: self.0.slot_offset(slot) + start,
            len: len as u32,
            wire_len,
        })
    }

    /// The bytes of a frame found by [`RxRing::ready`].
    ///
    /// # Safety
    /// `offset..offset + len` must come from `ready` for a slot not yet released: then
    /// the kernel does not write these bytes until [`RxRing::release`].
    pub(crate) unsafe fn bytes(&self, offset: usize, len: u32) -> &[u8] {
        // SAFETY: per the caller's contract the range is inside the ring and stable.
        unsafe { std::slice::from_raw_parts(self.0.at(offset), len as usize) }
    }

    /// Hand `slot` back to the kernel.
    ///
    /// # Safety
    /// No slice from [`RxRing::bytes`] of this slot may be alive: the kernel may
    /// overwrite the slot right after this store.
    pub(crate) unsafe fn release(&self, slot: u32) {
        if slot < self.frames() {
            // Release: our reads of the frame happen before the kernel may reuse it.
            self.0
                .status(slot)
                .store(TP_STATUS_KERNEL, Ordering::Release);
        }
    }
}
