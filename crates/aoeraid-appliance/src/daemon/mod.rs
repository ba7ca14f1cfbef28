//! The appliance daemon (`aoeraid run`) and array creation (`aoeraid create`):
//! members resolved to devices, arrays assembled from their superblocks, one
//! data-path thread running every RAID engine over io_uring, and the control plane
//! (control socket, metrics, events, systemd) around it.

pub mod assemble;
pub mod create;
pub mod datapath;
pub mod file_member;
pub mod inuse;
pub mod members;
pub mod service;
