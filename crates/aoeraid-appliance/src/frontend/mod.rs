//! The front end: AoE target exports served through io_uring.
//!
//! One driver ([`Driver`], ring-free) around the sans-IO
//! [`aoe_target::Target`], generic over its store: files and block devices
//! through io_uring ([`RingFiles`](file::RingFiles), `aoeraid serve`) or RAID volumes
//! ([`Volumes`], `aoeraid run`). Only the last step — send slots, frames,
//! file I/O submission — touches the ring ([`RingFront`](ring::RingFront)).
//!
//! [`Catalog`] holds the exports `aoeraid serve` serves (opened stores,
//! loaded durable state), replaced as a whole on a reload; [`run`] is the
//! standalone loop (`serve.rs`): each worker puts the driver on its own
//! [`aoe_uring::Ring`] and follows the catalog — exports added and removed
//! between frames, interfaces opened when they come up.
//!
//! ## Data path
//!
//! `aoeraid serve`: requests arrive in each socket's mapped receive ring,
//! and a worker that found a burst lingers in its next wait ([`intake`]);
//! a READ's data is read by io_uring straight into the send
//! slot at `ATA_DATA_OFFSET` (page-aligned, so O_DIRECT works in place) and
//! the slot is sent — in the same turn when the read completes at submission
//! (a page-cache hit); a WRITE's payload goes to the store from a send slot
//! it is copied into (ring memory is no registered buffer). Requests of one
//! export that arrive in one wake-up at consecutive sectors go to the file
//! as one vectored read or write of those same buffers ([`merge`]). When send slots run out,
//! replies, control frames and reads wait in the driver's queue (see
//! [`driver`]), never dropped. Completed writes are made
//! durable by one fdatasync per batch (group commit in the core) and only
//! then acknowledged; a write with nothing to group with (the last frame of
//! a wake-up, no other write of its export in the store) is one `RWF_DSYNC`
//! write instead, acknowledged when it completes. Everything queued in one pass reaches the kernel in one
//! `io_uring_enter`. No allocation and no lock per frame: requests live in
//! the core's fixed slab, the durable state is read through one atomic
//! generation load.
//!
//! ## More than one core (`--threads N`)
//!
//! One core runs out at a few hundred thousand frames per second, mostly
//! spent in the kernel's packet receive/send paths, so the frames
//! themselves have to be spread. Each of N worker threads owns a `Ring`
//! and opens its own AF_PACKET socket on every interface; the sockets of
//! one interface join a fanout group whose classic BPF program hashes the
//! source MAC ([`aoe_uring::FanoutMode::BySourceMac`]), so each client's frames reach
//! one worker, in arrival order, and different clients spread. A client's
//! requests must not be split: when Linux retransmits a write under a new
//! tag, round robin (`PACKET_FANOUT_LB`) could hand the two copies to two
//! workers, acknowledge the newer copy first and let the older one land
//! after the client's next write to that sector — a lost acknowledged write.
//! (`PACKET_FANOUT_HASH` would not spread AoE at all: the flow hash covers
//! IP addresses/ports, which 0x88A2 frames lack.)
//!
//! Not given across workers: per-sector atomicity between two *clients*.
//! A read by one client of a sector another client is writing at that
//! moment, served by two workers, can return part of each on a page-cache
//! store (a buffered read and write in two threads are two unlocked
//! copies). Clients that share sectors (a cluster file system) and rely on
//! it run one worker (the default): it issues every request from one thread
//! in arrival order, and the two-client stress test in `tests/target_lab.rs`
//! finds no torn read there.
//! AoE replies are matched by tag, so workers answer in any order.
//!
//! What must be common — config string,
//! mask list, reservations, size — lives in one
//! [`aoe_target::SharedExport`] per export: read-mostly, a generation number
//! checked per frame, a mutex only for the rare control-plane change. Each
//! worker does its own group commit on its own descriptor; fdatasync covers
//! the whole file, so a sync by one worker never makes another's ack unsafe.

mod catalog;
mod driver;
mod file;
mod intake;
mod merge;
mod persist;
mod record;
mod ring;
mod serve;
mod store;
mod volume;

pub(crate) use catalog::{Catalog, FrontendConfig};
pub(crate) use driver::{Done, Driver, SlicePort};
pub(crate) use persist::StateFile;
pub(crate) use record::{ExportRecord, RECORD_AREA_SECTORS, RECORD_OFFSET};
pub(crate) use serve::{run, Control};
pub(crate) use store::IoMode;
pub(crate) use volume::Volumes;
