//! # aoe-uring: the one thin I/O runtime of aoeraid
//!
//! This crate moves bytes between the kernel and the sans-IO state machines (initiator,
//! target, RAID). It holds **no protocol logic**: it knows Ethernet frames, file offsets
//! and deadlines, nothing about AoE fields.
//!
//! * [`PacketSocket`] — AF_PACKET raw socket bound to ethertype 0x88A2 on one interface
//!   (no ETH_P_ALL, no promiscuous mode), with the interface's MAC/MTU/index, large
//!   forced socket buffers, cumulative kernel drop counters ([`PacketStats`]),
//!   PACKET_FANOUT, optional mapped receive and transmit rings and qdisc bypass
//!   ([`SocketOptions`]), and plain `send`/`recv` helpers for tools and tests.
//! * [`Ring`] — one io_uring per thread: multishot receive into a provided-buffer ring
//!   for every registered socket, batched sends from preallocated slots, file and block
//!   device I/O through registered (4096-aligned, O_DIRECT-capable) buffers, fsync and
//!   durability barriers, timers, and [`Ring::wait`] that turns completions into
//!   [`Completion`] events.
//! * [`Backing`] — open a file or block device for it ([`BackingOptions`]: O_DIRECT
//!   where it works, O_DSYNC for writes durable on completion), with its size and the
//!   alignment direct I/O needs.
//! * [`sys`] — the kernel calls that are not I/O: random bytes, signals read
//!   synchronously, a process group's kill, a Unix socket peer's uid, CPU time. With
//!   this crate, no other crate of aoeraid needs `libc` or `unsafe`.
//!
//! ## A loop
//!
//! ```no_run
//! use aoe_uring::{Completion, PacketSocket, Ring};
//! use std::time::Duration;
//!
//! # fn main() -> std::io::Result<()> {
//! let mut ring = Ring::new()?;
//! let sock = ring.add_socket(PacketSocket::open("eth1")?)?;
//! let mut events = Vec::with_capacity(1024); // reused: no allocation per frame
//! let mut next_deadline: Option<std::time::Instant> = None; // from the state machine
//! loop {
//!     let now = ring.wait_until(next_deadline, &mut events)?;
//!     for ev in events.drain(..) {
//!         match ev {
//!             Completion::Frame { sock, buf } => {
//!                 let frame = ring.frame(&buf);
//!                 // Hand `frame` to the state machine; build any reply in place:
//!                 if let Some(mut slot) = ring.send_slot() {
//!                     let out = ring.slot_mut(&mut slot);
//!                     let n = frame.len().min(out.len());
//!                     out[..n].copy_from_slice(&frame[..n]);
//!                     ring.submit_send(sock, slot, n, 0)?; // queued, sent at next wait
//!                 }
//!                 ring.recycle(buf);
//!             }
//!             Completion::SendDone { .. } => {}
//!             Completion::IoDone { .. } | Completion::Timer { .. } => {}
//!             _ => {} // RecvError, and variants added later
//!         }
//!     }
//!     next_deadline = Some(now + Duration::from_millis(10)); // state machine's poll_timeout
//! }
//! # }
//! ```
//!
//! Everything queued during one pass (sends, reads, writes, syncs) goes to the kernel in
//! a single `io_uring_enter` at the next `wait`. The `Instant` that `wait` returns is the
//! clock for the data path: state machines get time passed in and never read it.
//!
//! ## Payload in place (zero copy to and from storage)
//!
//! With [`RingConfig::align_payload_at`] set to the protocol's header length (36 for AoE
//! ATA), byte 36 of every receive buffer and send slot is page-aligned, so O_DIRECT I/O
//! can use frame payloads in place: a read reply is built by
//! [`Ring::file_io`]`(FileOp::Read, file, slot, 36..36 + n, …)` into a [`SendSlot`], whose
//! [`Completion::IoDone`] returns the slot ([`IoBuffer::Slot`]) ready for
//! [`Ring::submit_send`]; a write request's payload goes to disk straight from its
//! [`RecvBuf`] with [`Ring::file_io`], which returns the frame for [`Ring::recycle`].
//!
//! ## Durable writes, batched
//!
//! Queue the writes with [`Ring::file_io`], then call [`Ring::sync_after_writes`]:
//! once every write submitted before it has completed, one fdatasync runs and its
//! [`Completion::IoDone`] arrives — acknowledge the whole batch then.
//!
//! ## Spreading work over cores
//!
//! A `Ring` is `Send` but not `Sync`: create one per thread and never share it. Work
//! spreads by giving each thread its own ring and sockets:
//!
//! * Back end and front end run on separate threads (initiator pool on one ring, target
//!   on another), talking through channels. A thread blocked in [`Ring::wait`] is woken
//!   by the sender through a [`RingWaker`] ([`Ring::waker`]), which shows up as
//!   [`Completion::Woken`]; then drain the channel.
//! * A target that needs more than one core opens one [`PacketSocket`] per thread on
//!   the same interface and joins them to one fanout group with
//!   [`FanoutMode::BySourceMac`]: a classic BPF program hashes the source MAC, so each
//!   client's frames reach one thread in arrival order (a retransmitted write cannot
//!   overtake its older copy) while different clients spread. [`FanoutMode::LoadBalance`]
//!   (round robin) and [`FanoutMode::Cpu`] (follows RSS/RPS steering) split one client
//!   over threads; [`FanoutMode::Hash`] does **not** spread AoE: the hash is over IP
//!   addresses/ports, which ethertype 0x88A2 frames lack, so all land on one socket.
//!
//! ## Receive buffers
//!
//! All sockets of a ring share one provided-buffer ring of [`RingConfig::recv_buffers`]
//! buffers. The kernel uses posted buffers in FIFO order, so only 64 are posted at first
//! and more each time the kernel runs out (reported as `recv_no_buffers` in
//! [`RingStats`]; the frame waits in the socket queue meanwhile, nothing is lost). A
//! frame is lent until [`Ring::recycle`]: a [`RecvBuf`] dropped without recycling is a
//! buffer lost for the ring's lifetime. Frames longer than a buffer are dropped and
//! counted (`frames_truncated`). Kernel-side drops (socket queue full) are in
//! [`PacketSocket::stats`].
//!
//! A socket opened with [`SocketOptions::rx_ring_frames`] receives through a mapped
//! `PACKET_RX_RING` (TPACKET_V2) instead: the kernel copies each frame into shared
//! memory while delivering it, and [`Ring::wait`] reads the ring before and after
//! entering the kernel, arming a one-shot readiness poll only when it is empty. No
//! receive request, copy or skb free per frame on the ring's thread; the frames come
//! as the same [`Completion::Frame`]. A file write from one copies it into a send slot
//! first (ring memory is no registered buffer), reads into one are refused, and a full
//! ring drops frames (counted in [`PacketSocket::stats`]) rather than queueing them.
//!
//! ## Transmit ring
//!
//! A socket opened with [`SocketOptions::tx_ring_frames`] sends through a mapped
//! `PACKET_TX_RING` (TPACKET_V2, sharing one mapping with its receive ring):
//! [`Ring::submit_send`] copies the finished frame into the ring's next free slot, marks
//! it and frees the send slot at once; before each enter, one `send` per socket (a
//! "kick") hands the kernel every marked slot, which it turns into skbs around the
//! ring's pages. The kernel sends slots in ring order and stops at the first unmarked
//! one, so a slot is only ever taken for a complete frame: none waits behind one still
//! being filled. A full ring or a frame longer than a slot goes out through a plain
//! send (after the ring's frames), counted in [`RingStats`]; nothing is dropped for
//! lack of a slot. Ring frames report no `SendDone` of their own; a failed kick
//! reports one.
//!
//! A wait ends at the first completion, not counting the completions of the sends it
//! submits (unless every send slot is taken). A caller expecting a stream of replies
//! can use [`Ring::wait_lingering`], which keeps sleeping for a given time after it
//! began so one wake-up reads several replies (the kernel's minimum wait, Linux ≥ 6.12;
//! a plain wait elsewhere).
//!
//! ## Tests and benchmark
//!
//! `cargo test -p aoe-uring` (root: the network tests build a private namespace with a
//! veth pair, the block-device test a loop device; everything is removed on drop).
//! `cargo bench -p aoe-uring --bench veth_frames` compares frames/s and CPU per frame
//! of the ring against one blocking syscall per frame.
//!
//! ## Memory safety
//!
//! Memory the kernel may write (receive buffers, send slots while in flight, I/O buffers
//! while in flight) lives in fixed `mmap` regions that never move. Access goes through
//! non-cloneable tokens ([`RecvBuf`], [`SendSlot`], [`IoBuf`]) that are consumed when a
//! request is submitted and returned by its completion. Dropping a [`Ring`] cancels all
//! requests and waits for them; if the kernel does not confirm within 10 s the memory is
//! leaked rather than freed.

#![warn(missing_docs)]

mod barrier;
mod fanout;
mod iface;
mod packet;
mod pools;
mod region;
mod ring;
mod ringmap;
mod rxring;
mod storage;
pub mod sys;
mod txring;
mod types;

pub use fanout::FanoutMode;
pub use iface::{ethernet_interfaces, InterfaceInfo, MacAddr};
pub use packet::{BufferSize, PacketSocket, PacketStats, SocketOptions, DEFAULT_SOCKET_BUFFER};
pub use ring::{Ring, RingConfig, RingWaker, MAX_SEGMENTS};
pub use storage::{device_size, Backing, BackingOptions, DirectIo};
pub use types::{
    Completion, Errno, FileId, FileOp, IoBuf, IoBuffer, RecvBuf, RingStats, Segment, SendSlot,
    SockId,
};

/// Ethertype of ATA over Ethernet.
pub const ETH_P_AOE: u16 = 0x88A2;
/// Length of an Ethernet header (destination, source, ethertype).
pub const ETH_HEADER_LEN: usize = 14;
/// Buffer size that holds any jumbo frame (MTU 9000 + header, with room to spare).
pub const JUMBO_FRAME: usize = 9216;
