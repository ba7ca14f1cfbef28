//! RAID engine for aoeraid: RAID 0/1/10/5 and linear concatenation as a sans-IO state
//! machine. Volume requests and member completions go in; member I/O, volume
//! completions and events come out. See DESIGN.md next to this crate.

pub mod layout;
pub mod placement;
pub mod types;
pub mod xor;

pub use layout::{Geometry, Level};
pub use types::*;
pub mod assembly;
pub mod bitmap;
pub mod config;
pub mod engine;
pub mod fastmap;
pub mod meta;
pub mod pacing;
pub mod stripe_cache;
pub mod superblock;

pub use assembly::{assemble, AssemblyError, AssemblyInput, AssemblyPlan};
pub use config::{ArrayConfig, CreateError, MemberSpec};
pub use engine::{Counters, Engine, MemberStatus, Status, SyncProgress, Tunables};
pub mod concat;
pub use concat::Concat;
pub mod sim;
pub mod spare_group;
