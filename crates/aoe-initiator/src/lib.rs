//! # aoe-initiator — the AoE initiator pool, sans-IO
//!
//! One [`Pool`] talks to every AoE blade reachable through a set of local
//! interfaces. It holds no sockets and reads no clock: the caller passes in
//! received frames and the current time and takes out frames to send, I/O
//! completions, events and the next deadline (see [`Pool`]). The io_uring
//! driver lives in the appliance crate (`backend`).
//!
//! What the pool does:
//!
//! * **Discovery**: broadcast Query Config ([`Pool::discover`]); every config
//!   reply, solicited or not, creates or refreshes a blade session (one per
//!   shelf.slot) and adds its (local interface, blade MAC) path.
//! * **IDENTIFY** for capacity and LBA48 support; [`Pool::reidentify`]
//!   refreshes it, a changed capacity is an [`Event::CapacityChanged`].
//! * **Window** from the Buffer Count (AIMD, see `window`), **sectors per
//!   frame** = min over paths of min(local MTU limit, advertised Sector
//!   Count), 0 → 2.
//! * **Tags** unique per send (see `frames`); a reply is accepted only if its
//!   tag is live **and** its source MAC, receiving interface, shelf.slot and
//!   command match the send; anything else is dropped and counted.
//! * **Retransmission** on an adaptive timeout (Jacobson/Karels, see `rtt`)
//!   with exponential backoff, each time with a new tag and on the next path.
//! * **Dead blades**: a frame unanswered for [`PoolConfig::dead_time`] marks
//!   the blade down and fails every outstanding I/O with [`IoError::BladeDown`];
//!   down blades are probed and come back by themselves ([`Event::BladeUp`]).
//! * **Block I/O**: [`Pool::submit`] splits reads/writes into frames spread
//!   over paths; the completion carries the first error of any frame. A
//!   write overlapping a write in flight waits for it.
//! * **Reserve/Release** ([`Pool::reserve`]): read, set or force-set a
//!   blade's reserve list on every path; completions from
//!   [`Pool::poll_reserve`]. The pool only carries the commands out: when
//!   to claim a blade is its owner's policy.

mod blade;
mod config;
mod frames;
mod io;
mod pool;
mod reserve;
mod rtt;
#[cfg(feature = "sim")]
pub mod sim;
mod window;

pub use blade::{BladeId, BladeInfo, BladeState, BladeStats, Path};
pub use config::PoolConfig;
pub use frames::MAX_FRAMES;
pub use io::{IoCompletion, IoError, IoRequest, Op, Rejected, SubmitError};
pub use pool::{Event, Interface, Pool, PoolStats, Transmit};
pub use reserve::{write_macs, ReserveCmd, ReserveCompletion, ReserveError, ReserveRequest};
