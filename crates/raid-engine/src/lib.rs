//! RAID engine for aoeraid: RAID 0/1/10/5/6 and linear concatenation as a sans-IO state
//! machine. Volume requests and member completions go in; member I/O, volume
//! completions and events come out. See DESIGN.md next to this crate.
//!
//! Wiring, in short: `Engine::create(&ArrayConfig)` or `Engine::assemble(&assemble(..)?)`;
//! then loop: `submit` volume requests, hand `poll_member_io` to the member (blade or
//! file) and feed results back with `complete_member_io`, deliver `poll_completion`,
//! publish `poll_event`, call `tick(now_ns)` by `poll_timeout`. `Concat` does the same
//! over several arrays with `(array, MemberIo)` pairs.

mod assembly;
mod bitmap;
mod bytes;
mod concat;
mod config;
mod engine;
mod fastmap;
// Entry points for the cargo-fuzz targets in fuzz/; built only with `--cfg fuzzing`.
#[cfg(fuzzing)]
pub mod fuzzing;
mod gf;
mod layout;
mod le;
mod meta;
mod pacing;
mod placement;
mod ppl;
pub mod sim;
mod stripe_cache;
/// The on-member format: superblock layout and offsets (the appliance reads them to
/// refuse members in use).
pub mod superblock;
mod types;
mod xor;

pub use assembly::{
    assemble, AssemblyError, AssemblyInput, AssemblyPlan, PlannedMember, PlannedState,
};
pub use concat::Concat;
pub use config::{ArrayConfig, CreateError, MemberSpec, MetaLayout, DEFAULT_CHUNK_SECTORS};
pub use engine::{
    ControlError, Counters, Engine, MemberStatus, Status, SyncBytes, SyncKind, SyncProgress,
    Tunables,
};
pub use gf::{q_bytewise, q_syndrome};
pub use layout::{Geometry, Level};
pub use types::*;
pub use xor::{parity_into, xor_into};
