//! The one mapping that holds a packet socket's mapped rings (TPACKET_V2): the receive
//! ring ([`RxRing`]) and the transmit ring ([`TxRing`]).
//!
//! The kernel maps a socket's rings as one area: the receive ring first, the transmit
//! ring right after it, and `mmap` must ask for exactly the sum of their sizes at
//! offset 0 (`packet_mmap`). So both rings are requested with `setsockopt` first, then
//! mapped once here, and each ring gets a view of its part; the mapping is unmapped
//! when the socket drops it, after both views.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;

use crate::packet::setsockopt;
use crate::region::{map, unmap, PAGE};
use crate::rxring::RxRing;
use crate::txring::TxRing;

// <linux/if_packet.h>
const PACKET_RX_RING: libc::c_int = 5;
const PACKET_VERSION: libc::c_int = 10;
const PACKET_TX_RING: libc::c_int = 13;
const PACKET_LOSS: libc::c_int = 14;
const TPACKET_V2: u32 = 1;

/// `struct tpacket2_hdr` (32 bytes), the head of every slot of either ring.
#[repr(C)]
struct Tpacket2Hdr {
    tp_status: u32,
    tp_len: u32,
    tp_snaplen: u32,
    tp_mac: u16,
    tp_net: u16,
    tp_sec: u32,
    tp_nsec: u32,
    tp_vlan_tci: u16,
    tp_vlan_tpid: u16,
    tp_padding: [u8; 4],
}

/// `struct tpacket_req`.
#[repr(C)]
struct TpacketReq {
    tp_block_size: u32,
    tp_block_nr: u32,
    tp_frame_size: u32,
    tp_frame_nr: u32,
}

/// Where the slots of one ring lie inside its part of the mapping.
#[derive(Debug, Clone, Copy)]
struct Layout {
    block_size: usize,
    blocks: usize,
    frame_size: usize,
    frames_per_block: usize,
}

impl Layout {
    /// At least `frames` slots of at least `slot_bytes` each. Slots never span blocks;
    /// a block is whole pages, as few as hold one slot.
    fn new(frames: u32, slot_bytes: usize) -> io::Result<Layout> {
        if frames == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a mapped ring needs at least one frame",
            ));
        }
        let frame_size = slot_bytes.next_multiple_of(16);
        let block_size = frame_size.next_multiple_of(PAGE);
        let frames_per_block = block_size / frame_size;
        let blocks = (frames as usize).div_ceil(frames_per_block);
        let layout = Layout {
            block_size,
            blocks,
            frame_size,
            frames_per_block,
        };
        // The kernel takes these as u32.
        u32::try_from(layout.blocks * layout.frames_per_block).map_err(|_| too_big())?;
        u32::try_from(layout.block_size * layout.blocks).map_err(|_| too_big())?;
        Ok(layout)
    }

    fn frames(&self) -> u32 {
        (self.blocks * self.frames_per_block) as u32
    }

    fn frame_size(&self) -> usize {
        self.frame_size
    }

    /// Bytes of the ring in the mapping.
    fn bytes(&self) -> usize {
        self.block_size * self.blocks
    }

    /// Offset of `slot` (< frames) from the ring's start: 16-aligned.
    fn slot_offset(&self, slot: u32) -> usize {
        let slot = slot as usize;
        (slot / self.frames_per_block) * self.block_size
            + (slot % self.frames_per_block) * self.frame_size
    }

    fn request(&self) -> TpacketReq {
        TpacketReq {
            tp_block_size: self.block_size as u32,
            tp_block_nr: self.blocks as u32,
            tp_frame_size: self.frame_size as u32,
            tp_frame_nr: self.frames(),
        }
    }
}

/// One ring inside a socket's mapping: where it starts and how its slots lie. The
/// receive and transmit rings are this with their own protocol on top.
#[derive(Debug)]
pub(crate) struct RingView {
    base: NonNull<u8>,
    layout: Layout,
}

// SAFETY: a view is owned by its socket's RingMap, which owns the mapping and moves with
// it; no other handle to these slots exists.
unsafe impl Send for RingView {}
// SAFETY: `&self` methods only load and store slot status words atomically or read the
// header of a slot the caller owns; writing a slot's frame goes through `unsafe`
// methods whose caller (the Ring, which is !Sync) is the only writer.
unsafe impl Sync for RingView {}

impl RingView {
    /// Number of slots.
    pub(crate) fn frames(&self) -> u32 {
        self.layout.frames()
    }

    /// Bytes of a slot, its header included.
    pub(crate) fn frame_size(&self) -> usize {
        self.layout.frame_size()
    }

    /// Offset of `slot` (< frames) from the ring's start.
    pub(crate) fn slot_offset(&self, slot: u32) -> usize {
        self.layout.slot_offset(slot)
    }

    /// The status word of `slot` (< frames, checked by every caller).
    pub(crate) fn status(&self, slot: u32) -> &AtomicU32 {
        debug_assert!(slot < self.frames());
        // SAFETY: a slot's offset lies inside the mapping, which outlives `self`, and is
        // 16-aligned (blocks are page-aligned, slots multiples of 16), so this is an
        // aligned u32. The kernel accesses it concurrently, hence an atomic.
        unsafe {
            &*self
                .base
                .as_ptr()
                .add(self.layout.slot_offset(slot))
                .cast::<AtomicU32>()
        }
    }

    /// (`tp_mac`, `tp_snaplen`, `tp_len`) of `slot` (< frames): where a received frame
    /// starts, how much of it is in the slot and how long it was.
    ///
    /// # Safety
    /// The slot must be the caller's (status USER): the kernel does not write it then.
    pub(crate) unsafe fn received(&self, slot: u32) -> (u16, u32, u32) {
        // SAFETY: the header lies inside the mapping at a 16-aligned offset and, per
        // the caller's contract, is not written meanwhile.
        let hdr = unsafe { &*self.slot_ptr(slot).cast::<Tpacket2Hdr>() };
        (hdr.tp_mac, hdr.tp_snaplen, hdr.tp_len)
    }

    /// Writes `frame` at `data_offset` of `slot` (< frames) and its length in the header.
    ///
    /// # Safety
    /// The slot must be the caller's alone (the kernel does not read it: status
    /// AVAILABLE) and `data_offset + frame.len()` at most the slot size.
    pub(crate) unsafe fn write_frame(&self, slot: u32, data_offset: usize, frame: &[u8]) {
        debug_assert!(data_offset + frame.len() <= self.frame_size());
        let at = self.slot_ptr(slot);
        // SAFETY: per the contract the bytes lie inside the slot and nobody else
        // accesses them; the header is 16-aligned.
        unsafe {
            std::ptr::copy_nonoverlapping(frame.as_ptr(), at.add(data_offset), frame.len());
            (*at.cast::<Tpacket2Hdr>()).tp_len = frame.len() as u32;
        }
    }

    /// The start of `slot` (< frames).
    fn slot_ptr(&self, slot: u32) -> *mut u8 {
        self.at(self.layout.slot_offset(slot))
    }

    /// The byte at `offset` from the ring's start (inside the ring).
    pub(crate) fn at(&self, offset: usize) -> *mut u8 {
        debug_assert!(offset < self.layout.bytes());
        // SAFETY: the offset lies inside this ring's part of the mapping.
        unsafe { self.base.as_ptr().add(offset) }
    }
}

/// One socket's mapped rings. Dropping it unmaps them.
#[derive(Debug)]
pub(crate) struct RingMap {
    // The views point into the mapping: declared first, so they go before it.
    rx: Option<RxRing>,
    tx: Option<TxRing>,
    base: NonNull<u8>,
    map_len: usize,
}

// SAFETY: the mapping is owned by this value alone (the views inside it are the only
// other handles, and they move with it), so moving it to another thread moves sole
// ownership.
unsafe impl Send for RingMap {}
// SAFETY: shared access only reaches the views, which are Sync themselves (see them).
unsafe impl Sync for RingMap {}

impl RingMap {
    /// Switches `fd` (an AF_PACKET socket, not yet bound) to TPACKET_V2 and maps a
    /// receive ring of at least `rx_frames` slots and a transmit ring of at least
    /// `tx_frames` (none where 0), each slot sized for a frame of `mtu` bytes of payload
    /// plus its Ethernet header and a VLAN tag. `None` if both are 0.
    pub(crate) fn new(
        fd: &OwnedFd,
        rx_frames: u32,
        tx_frames: u32,
        mtu: u32,
    ) -> io::Result<Option<RingMap>> {
        if rx_frames == 0 && tx_frames == 0 {
            return Ok(None);
        }
        let frame = crate::ETH_HEADER_LEN + 4 + mtu as usize;
        let rx = (rx_frames > 0)
            .then(|| Layout::new(rx_frames, RxRing::SLOT_OVERHEAD + frame))
            .transpose()?;
        let tx = (tx_frames > 0)
            .then(|| Layout::new(tx_frames, TxRing::DATA_OFFSET + frame))
            .transpose()?;
        setsockopt(fd, libc::SOL_PACKET, PACKET_VERSION, &TPACKET_V2)
            .map_err(|e| io::Error::new(e.kind(), format!("PACKET_VERSION TPACKET_V2: {e}")))?;
        if tx.is_some() {
            // A frame the kernel finds malformed is skipped and its slot made free
            // again; without this it stays marked and every later frame waits behind
            // it for good. (Refused once any ring exists: set first.)
            setsockopt(fd, libc::SOL_PACKET, PACKET_LOSS, &1u32)
                .map_err(|e| io::Error::new(e.kind(), format!("PACKET_LOSS: {e}")))?;
        }
        if let Some(l) = &rx {
            setsockopt(fd, libc::SOL_PACKET, PACKET_RX_RING, &l.request())
                .map_err(|e| io::Error::new(e.kind(), format!("PACKET_RX_RING: {e}")))?;
        }
        if let Some(l) = &tx {
            setsockopt(fd, libc::SOL_PACKET, PACKET_TX_RING, &l.request())
                .map_err(|e| io::Error::new(e.kind(), format!("PACKET_TX_RING: {e}")))?;
        }
        let rx_bytes = rx.as_ref().map_or(0, Layout::bytes);
        let map_len = rx_bytes + tx.as_ref().map_or(0, Layout::bytes);
        // Maps the rings the kernel just allocated for this socket (offset 0, exactly
        // their size, shared so we see the kernel's writes).
        let base = map(
            map_len,
            libc::MAP_SHARED | libc::MAP_POPULATE,
            Some(fd.as_raw_fd()),
        )
        .map_err(|e| io::Error::new(e.kind(), format!("mmap of the packet rings: {e}")))?;
        // SAFETY: `rx_bytes <= map_len`, so the transmit ring's start lies inside (or
        // at the end of, if there is none) the mapping just made.
        let tx_base = unsafe { NonNull::new_unchecked(base.as_ptr().add(rx_bytes)) };
        Ok(Some(RingMap {
            // Each view covers exactly its ring's part of the mapping, which `RingMap`
            // unmaps only after dropping them.
            rx: rx.map(|layout| RxRing::new(RingView { base, layout })),
            tx: tx.map(|layout| {
                TxRing::new(RingView {
                    base: tx_base,
                    layout,
                })
            }),
            base,
            map_len,
        }))
    }

    pub(crate) fn rx(&self) -> Option<&RxRing> {
        self.rx.as_ref()
    }

    pub(crate) fn tx(&self) -> Option<&TxRing> {
        self.tx.as_ref()
    }
}

impl Drop for RingMap {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping created in `new`; the views into it are
        // this value's fields and no borrow of them outlives it. The kernel's own
        // reference to the ring pages keeps them valid for it until the socket closes.
        unsafe { unmap(self.base, self.map_len) };
    }
}

fn too_big() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "mapped ring too large")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout_matches_the_kernel() {
        assert_eq!(std::mem::size_of::<Tpacket2Hdr>(), 32);
        assert_eq!(std::mem::size_of::<TpacketReq>(), 16);
    }

    #[test]
    fn slots_never_span_blocks() {
        let l = Layout::new(10, 1500 + 32 + 18).unwrap();
        assert_eq!(l.frame_size(), 1552);
        assert_eq!(l.frames_per_block, 2);
        assert_eq!(l.frames(), 10);
        assert_eq!(l.slot_offset(3), PAGE + 1552);
        let jumbo = Layout::new(3, 9000 + 32 + 18).unwrap();
        assert_eq!(jumbo.frames(), 3);
        assert_eq!(jumbo.slot_offset(2), 2 * 3 * PAGE);
        assert!(Layout::new(0, 100).is_err());
    }
}
