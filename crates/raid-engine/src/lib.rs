//! RAID engine for aoeraid: RAID 0/1/10/5 and linear concatenation as a sans-IO state
//! machine. Volume requests and member completions go in; member I/O, volume
//! completions and events come out. See DESIGN.md next to this crate.
//!
//! Wiring, in short: `Engine::create(&ArrayConfig)` or `Engine::assemble(&assemble(..)?)`;
//! then loop: `submit` volume requests, hand `poll_member_io` to the member (blade or
//! file) and feed results back with `complete_member_io`, deliver `poll_completion`,
//! publish `poll_event`, call `tick(now_ns)` by `poll_timeout`. `Concat` does the same
//! over several arrays with `(array, MemberIo)` pairs.

pub mod assembly;
pub mod bitmap;
pub mod concat;
pub mod config;
pub mod engine;
pub mod fastmap;
pub mod layout;
pub mod meta;
pub mod pacing;
pub mod placement;
pub mod sim;
pub mod spare_group;
pub mod stripe_cache;
pub mod superblock;
pub mod types;
pub mod xor;

pub use assembly::{
    assemble, AssemblyError, AssemblyInput, AssemblyPlan, PlannedMember, PlannedState,
};
pub use concat::Concat;
pub use config::{ArrayConfig, CreateError, MemberSpec};
pub use engine::{
    ControlError, Counters, Engine, MemberStatus, Status, SyncBytes, SyncKind, SyncProgress,
    Tunables,
};
pub use layout::{Geometry, Level};
pub use spare_group::{balance_spares, SpareMove};
pub use types::*;
