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

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::packet::setsockopt;
use crate::region::{map, unmap, PAGE};

// <linux/if_packet.h>
const PACKET_RX_RING: libc::c_int = 5;
const PACKET_VERSION: libc::c_int = 10;
const TPACKET_V2: u32 = 1;
const TP_STATUS_KERNEL: u32 = 0;
const TP_STATUS_USER: u32 = 1;
/// Offset of the frame (its MAC header) inside a slot for a SOCK_RAW socket without
/// `PACKET_RESERVE`: TPACKET_ALIGN(TPACKET2_HDRLEN + 16) − 14 = 66. Reserved with room
/// to spare when sizing slots; the exact offset is read from each slot's `tp_mac`.
const SLOT_OVERHEAD: usize = 96;

/// `struct tpacket2_hdr` (32 bytes), the head of every slot.
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

/// A frame the kernel handed over: slot index, where its bytes are, their length, and
/// the length the frame really had (larger if the slot was too small).
pub(crate) struct Ready {
    pub(crate) slot: u32,
    pub(crate) offset: usize,
    pub(crate) len: u32,
    pub(crate) wire_len: u32,
}

/// The mapping of one socket's receive ring. Owned by the socket; unmapped on drop.
#[derive(Debug)]
pub(crate) struct RxRing {
    base: NonNull<u8>,
    map_len: usize,
    block_size: usize,
    frame_size: usize,
    frames_per_block: usize,
    frames: u32,
}

// SAFETY: the mapping is owned by this value alone (no aliasing handle is given out
// beyond borrows of `&self`), so moving it to another thread moves sole ownership.
unsafe impl Send for RxRing {}
// SAFETY: `&self` methods only do atomic loads/stores of slot status words and hand out
// shared slices of slots the kernel has passed to user space (status USER), which the
// kernel does not write until `release` stores KERNEL. `release` is `unsafe` and its
// caller (the Ring, which is !Sync) guarantees no slice of that slot is alive.
unsafe impl Sync for RxRing {}

impl RxRing {
    /// Switch `fd` (an AF_PACKET socket, not yet bound) to TPACKET_V2 and map a receive
    /// ring of at least `frames` slots, each large enough for a frame of `mtu` bytes of
    /// payload plus its Ethernet header.
    pub(crate) fn new(fd: &OwnedFd, frames: u32, mtu: u32) -> io::Result<RxRing> {
        if frames == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a receive ring needs at least one frame",
            ));
        }
        let frame_size =
            (SLOT_OVERHEAD + crate::ETH_HEADER_LEN + 4 + mtu as usize).next_multiple_of(16);
        // Slots never span blocks; a block is whole pages, as few as hold one slot.
        let block_size = frame_size.next_multiple_of(PAGE);
        let frames_per_block = block_size / frame_size;
        let blocks = (frames as usize).div_ceil(frames_per_block);
        let total = blocks * frames_per_block;
        let req = TpacketReq {
            tp_block_size: u32::try_from(block_size).map_err(|_| too_big())?,
            tp_block_nr: u32::try_from(blocks).map_err(|_| too_big())?,
            tp_frame_size: frame_size as u32,
            tp_frame_nr: u32::try_from(total).map_err(|_| too_big())?,
        };
        setsockopt(fd, libc::SOL_PACKET, PACKET_VERSION, &TPACKET_V2)
            .map_err(|e| io::Error::new(e.kind(), format!("PACKET_VERSION TPACKET_V2: {e}")))?;
        setsockopt(fd, libc::SOL_PACKET, PACKET_RX_RING, &req)
            .map_err(|e| io::Error::new(e.kind(), format!("PACKET_RX_RING: {e}")))?;
        let map_len = block_size * blocks;
        // Maps the ring the kernel just allocated for this socket (offset 0, exactly its
        // size, shared so we see the kernel's writes).
        let base = map(
            map_len,
            libc::MAP_SHARED | libc::MAP_POPULATE,
            Some(fd.as_raw_fd()),
        )
        .map_err(|e| io::Error::new(e.kind(), format!("mmap of the receive ring: {e}")))?;
        Ok(RxRing {
            base,
            map_len,
            block_size,
            frame_size,
            frames_per_block,
            frames: total as u32,
        })
    }

    /// Number of slots.
    pub(crate) fn frames(&self) -> u32 {
        self.frames
    }

    /// Largest frame a slot holds whole.
    pub(crate) fn max_frame(&self) -> usize {
        self.frame_size - SLOT_OVERHEAD
    }

    fn slot_offset(&self, slot: u32) -> usize {
        let slot = slot as usize;
        (slot / self.frames_per_block) * self.block_size
            + (slot % self.frames_per_block) * self.frame_size
    }

    fn status(&self, slot: u32) -> &AtomicU32 {
        // SAFETY: `slot_offset` of a slot < frames lies inside the mapping and is
        // 16-aligned (blocks are page-aligned, slots multiples of 16), so this is an
        // aligned u32 that lives as long as `self`. The kernel accesses it concurrently,
        // hence an atomic.
        unsafe {
            &*self
                .base
                .as_ptr()
                .add(self.slot_offset(slot))
                .cast::<AtomicU32>()
        }
    }

    /// The frame in `slot` if the kernel has handed it over (status USER), else None.
    pub(crate) fn ready(&self, slot: u32) -> Option<Ready> {
        if slot >= self.frames {
            return None;
        }
        // Acquire: the frame's bytes and header fields, written by the kernel before it
        // set the status, are visible after this load.
        if self.status(slot).load(Ordering::Acquire) & TP_STATUS_USER == 0 {
            return None;
        }
        let off = self.slot_offset(slot);
        // SAFETY: the slot is ours (status USER) so the kernel does not write its header;
        // the header lies inside the mapping at a 16-aligned offset.
        let hdr = unsafe { &*self.base.as_ptr().add(off).cast::<Tpacket2Hdr>() };
        let mac = usize::from(hdr.tp_mac);
        // Never trust offsets blindly: clamp the frame to its slot.
        let start = mac.min(self.frame_size);
        let len = (hdr.tp_snaplen as usize).min(self.frame_size - start);
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
        debug_assert!(offset + len as usize <= self.map_len);
        // SAFETY: per the caller's contract the range is inside the mapping and stable.
        unsafe { std::slice::from_raw_parts(self.base.as_ptr().add(offset), len as usize) }
    }

    /// Hand `slot` back to the kernel.
    ///
    /// # Safety
    /// No slice from [`RxRing::bytes`] of this slot may be alive: the kernel may
    /// overwrite the slot right after this store.
    pub(crate) unsafe fn release(&self, slot: u32) {
        if slot < self.frames {
            // Release: our reads of the frame happen before the kernel may reuse it.
            self.status(slot).store(TP_STATUS_KERNEL, Ordering::Release);
        }
    }
}

impl Drop for RxRing {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping created in `new`; no borrow of it can
        // outlive `self`. The kernel's own reference to the ring pages keeps them valid
        // for it until the socket closes.
        unsafe { unmap(self.base, self.map_len) };
    }
}

fn too_big() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "receive ring too large")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout_matches_the_kernel() {
        assert_eq!(std::mem::size_of::<Tpacket2Hdr>(), 32);
        assert_eq!(std::mem::size_of::<TpacketReq>(), 16);
    }
}
