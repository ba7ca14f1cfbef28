//! A memory-mapped transmit ring (`PACKET_TX_RING`, `TPACKET_V2`) for a
//! [`PacketSocket`](crate::PacketSocket).
//!
//! Frames are written into slots of memory shared with the kernel, each marked
//! `TP_STATUS_SEND_REQUEST`; one `send` on the socket (a "kick", with no data) then sends
//! every marked slot from the kernel's position on, in ring order, building each skb
//! around the slot's pages instead of copying the frame and allocating a data buffer. A
//! slot comes back (`TP_STATUS_AVAILABLE`) once its skb is freed: on veth, within the
//! kick, since the peer's receive runs inside it.
//!
//! Because the kernel stops at the first slot not marked, a slot taken but not yet filled
//! would hold back every frame behind it. So a slot is taken only with its frame
//! complete, and filled and marked in the same call ([`TxRing::put`]): the slots between
//! the kernel's position and ours are always marked, never holes.

use std::sync::atomic::Ordering;

use crate::ringmap::RingView;

const TP_STATUS_AVAILABLE: u32 = 0;
const TP_STATUS_SEND_REQUEST: u32 = 1;

/// One socket's transmit ring, inside the socket's [`crate::ringmap::RingMap`].
#[derive(Debug)]
pub(crate) struct TxRing(RingView);

impl TxRing {
    /// Where a frame starts in a slot: TPACKET2_HDRLEN − sizeof(sockaddr_ll) = 52 − 20
    /// (the kernel reads it there unless `PACKET_TX_HAS_OFF` is set).
    pub(crate) const DATA_OFFSET: usize = 32;

    pub(crate) fn new(view: RingView) -> TxRing {
        TxRing(view)
    }

    /// Number of slots.
    pub(crate) fn frames(&self) -> u32 {
        self.0.frames()
    }

    /// Largest frame a slot holds.
    pub(crate) fn max_frame(&self) -> usize {
        self.0.frame_size() - Self::DATA_OFFSET
    }

    /// True if `slot` is free: the kernel sent its last frame and freed the skb.
    pub(crate) fn is_free(&self, slot: u32) -> bool {
        // Acquire: the kernel is done reading the slot before we write it.
        slot < self.frames() && self.0.status(slot).load(Ordering::Acquire) == TP_STATUS_AVAILABLE
    }

    /// True if `slot` still waits for a kick to send it.
    pub(crate) fn is_marked(&self, slot: u32) -> bool {
        slot < self.frames()
            && self.0.status(slot).load(Ordering::Relaxed) == TP_STATUS_SEND_REQUEST
    }

    /// Copies `frame` into `slot` and marks it for the next kick.
    ///
    /// # Safety
    /// `slot` must be free ([`TxRing::is_free`]) and the next slot in ring order after
    /// the last one put, and nobody else may write the ring: the kernel does not read a
    /// free slot, so this is then the only access to it until the status store.
    pub(crate) unsafe fn put(&self, slot: u32, frame: &[u8]) {
        debug_assert!(self.is_free(slot) && frame.len() <= self.max_frame());
        // SAFETY: the slot is free (the kernel does not read it) and ours alone, per the
        // contract; the frame fits after DATA_OFFSET (checked by the caller, asserted
        // above).
        unsafe { self.0.write_frame(slot, Self::DATA_OFFSET, frame) };
        // Release: the frame and its length are visible before the kernel sees the mark.
        self.0
            .status(slot)
            .store(TP_STATUS_SEND_REQUEST, Ordering::Release);
    }
}
