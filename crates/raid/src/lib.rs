//! RAID engine for aoeraid: RAID 0/1/10/5 and linear concatenation as a sans-IO state
//! machine. Volume requests and member completions go in; member I/O, volume
//! completions and events come out. See DESIGN.md next to this crate.

pub mod layout;
pub mod placement;
pub mod types;
pub mod xor;

pub use layout::{Geometry, Level};
pub use types::*;
