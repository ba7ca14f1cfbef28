//! # aoe-target — the AoE target as a sans-IO state machine
//!
//! [`Target`] takes received frames ([`Target::handle_frame`]) and store
//! completions ([`Target::read_done`], [`Target::write_done`],
//! [`Target::sync_done`]) and hands out [`Action`]s: control frames to send,
//! store reads/writes/syncs to issue, replies to build. It never touches a
//! socket, file or clock; the io_uring driver (appliance `frontend`) does,
//! and a RAID volume can stand in for the file store later because the
//! store seam is just "read/write bytes at an offset, then sync".
//!
//! ## Behaviour (aoe-protocol.md §13)
//!
//! * Every AoE command: ATA READ/WRITE (LBA28 with the LBA masked to 28 bits,
//!   LBA48), IDENTIFY, CHECK POWER MODE, FLUSH CACHE (EXT) (synced before the
//!   0x40 reply), anything else → ATA ERR/ABRT; out of range → ERR/IDNF; short
//!   write data or read-only → ABRT; store errors → ERR/UNC. AoE-level error
//!   replies are used only where the spec demands them (unknown command E/1,
//!   bad argument E/2, config present E/4, reserved E/6): the Linux driver
//!   drops E replies and retransmits until it fails the device.
//! * Query Config (all five CCmds), MAC Mask List (enforced on every command),
//!   Reserve/Release, all persistent through [`ExportState`] and
//!   [`Action::Persist`].
//! * **Fencing by reservation** (module `fence`): while the reserve list is
//!   non-empty, ATA commands (IDENTIFY excepted) from a MAC not on it get ATA
//!   ERR/ABRT (status 0x41, error 0x04), which the Linux driver fails at once
//!   with EIO — an E + error 6 it would drop and retransmit until
//!   `aoe_deadsecs`. A Reserve reply that shows a non-empty list is held until
//!   every write checked against an older list has reached the store (across
//!   workers: the export's write gate), so once a client has the reply that
//!   excludes a MAC, no write from that MAC can still land. With an allow
//!   (mask) list, Set/Force Set from outside it get E + error 6.
//! * Replies padded to 60 bytes, from the receiving interface's MAC, with the
//!   own shelf.slot; frames with R set are ignored; broadcast queries get
//!   one reply per export, bounded per interface by a token bucket.
//! * Sectors per frame from the receiving interface's MTU.
//! * **Writes are acknowledged only once durable**: a completed write waits
//!   for a [`Action::Sync`]; one sync covers every write completed before it
//!   (group commit) — the Linux driver never sends FLUSH. A write the store
//!   made durable by itself ([`Target::durable_write_done`]) is answered at
//!   once.
//! * Buffer Count = requests really queued per client MAC; more are dropped
//!   and counted ([`Counters::client_queue_full`]).
//! * A driver with several workers numbers them ([`Target::watch_fences_as`]),
//!   wakes the workers another one's [`Target::take_fence_wakes`] names, and
//!   then calls [`Target::poll_fences`]: a held reply may wait for another
//!   worker's write.
//!
//! ## Several workers
//!
//! Each worker thread owns a `Target`; the durable state of an export lives
//! in one [`SharedExport`] that all workers read without locking per frame
//! (a generation counter) and mutate under a mutex.

mod control;
mod counters;
mod fence;
mod limiter;
mod shared;
mod state;
mod target;

#[cfg(test)]
mod tests;

pub use counters::Counters;
pub use shared::SharedExport;
pub use state::{serial_from_random, ExportState, StateError, MASK_CAPACITY, RESERVE_CAPACITY};
pub use target::{
    Action, CtlFrame, ExportConfig, ExportId, IfaceId, ReqId, SetupError, Target, TargetConfig,
};
