//! The appliance daemon (`aoeraid run`) and array creation (`aoeraid create`):
//! members resolved to devices, arrays assembled from their superblocks, one
//! data-path thread running every RAID engine over io_uring, and the control plane
//! (control socket, metrics, events, systemd) around it.

pub(crate) mod assemble;
pub(crate) mod claim;
pub(crate) mod create;
pub(crate) mod datapath;
pub(crate) mod file_member;
pub(crate) mod inuse;
pub(crate) mod members;
pub(crate) mod records;
pub(crate) mod service;
