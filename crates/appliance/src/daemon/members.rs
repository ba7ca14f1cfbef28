//! Where each configured member lives, and a small blocking executor that runs
//! member I/O through the same io_uring path as the data path (used before the data
//! path starts: `create`'s probes and superblock writes, assembly's superblock reads).

use super::file_member::FileMembers;
use crate::config::MemberAddr;
use anyhow::{anyhow, bail, Context};
use aoe_uring::{Completion, Ring, RingConfig};
use raid_engine::{MemberError, MemberIo, MemberOp};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// I/O buffers of the data path's ring: enough for a few full-chunk writes to every
/// member at once.
pub const IO_BUFFERS: u32 = 256;
pub const IO_BUFFER_SIZE: usize = 256 << 10;

/// The ring configuration every aoeraid data path uses.
pub fn ring_config() -> RingConfig {
    RingConfig {
        io_buffers: IO_BUFFERS,
        io_buffer_size: IO_BUFFER_SIZE,
        max_ops: 4096,
        max_files: 256,
        ..RingConfig::default()
    }
}

/// What a member I/O produced: read data (empty for writes/flushes) or the error.
pub type MemberResult = Result<Vec<u8>, MemberError>;

/// A member resolved to something the data path can do I/O on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Location {
    /// Index into the data path's [`FileMembers`].
    File(usize),
}

/// Every member device the appliance knows, by address.
pub struct Devices {
    pub ring: Ring,
    pub files: FileMembers<u64>,
    pub by_addr: HashMap<MemberAddr, Location>,
    pub problems: Vec<(MemberAddr, String)>,
}

impl Devices {
    pub fn new() -> anyhow::Result<Devices> {
        let ring = Ring::with_config(&ring_config()).context("cannot set up io_uring")?;
        Ok(Devices {
            ring,
            files: FileMembers::default(),
            by_addr: HashMap::new(),
            problems: Vec::new(),
        })
    }

    /// Opens `addr`; a failure is recorded in `problems` (named) and returns None.
    pub fn open(&mut self, addr: &MemberAddr) -> Option<Location> {
        if let Some(l) = self.by_addr.get(addr) {
            return Some(*l);
        }
        let r = match addr {
            MemberAddr::File(path) => self
                .files
                .open(&self.ring, path)
                .map(Location::File)
                .map_err(|e| format!("cannot open {}: {e}", path.display())),
            MemberAddr::Blade { .. } => Err(
                "AoE blade members need the back-end initiator pool, which this build does not \
                 have yet (use file: members)"
                    .to_string(),
            ),
        };
        match r {
            Ok(l) => {
                self.by_addr.insert(addr.clone(), l);
                Some(l)
            }
            Err(e) => {
                self.problems.push((addr.clone(), e));
                None
            }
        }
    }

    pub fn sectors(&self, loc: Location) -> u64 {
        match loc {
            Location::File(i) => self.files.sectors(i),
        }
    }

    /// Starts one member I/O; its result comes back from [`Devices::wait`] with `token`.
    pub fn submit(&mut self, loc: Location, io: MemberIo, token: u64) {
        match loc {
            Location::File(i) => self.files.submit(&self.ring, i, io, token),
        }
    }

    /// Member I/Os in flight.
    pub fn in_flight(&self) -> usize {
        self.files.in_flight()
    }

    /// Waits up to `timeout` for completions; returns those that finished.
    pub fn wait(
        &mut self,
        timeout: Duration,
    ) -> anyhow::Result<Vec<(u64, MemberResult)>> {
        let mut out = Vec::new();
        let mut events = Vec::new();
        self.ring.wait(Some(timeout), &mut events)?;
        for ev in events {
            let mut c = Some(ev);
            if !self.files.on_completion(&self.ring, &mut c) {
                if let Some(other) = c {
                    release_stray(&self.ring, other);
                }
            }
        }
        while let Some(d) = self.files.poll_done() {
            out.push(d);
        }
        Ok(out)
    }

    /// Reads `sectors` at `offset` of one member, blocking up to `timeout`.
    pub fn read_blocking(
        &mut self,
        loc: Location,
        offset: u64,
        sectors: u32,
        timeout: Duration,
    ) -> anyhow::Result<Result<Vec<u8>, MemberError>> {
        let io = MemberIo {
            id: 0,
            member: 0,
            op: MemberOp::Read,
            offset,
            sectors,
            data: Vec::new(),
        };
        self.run_blocking(vec![(loc, io)], timeout)
            .map(|mut v| v.pop().expect("one result"))
    }

    /// Runs a batch of member I/Os to completion; results in batch order.
    pub fn run_blocking(
        &mut self,
        ios: Vec<(Location, MemberIo)>,
        timeout: Duration,
    ) -> anyhow::Result<Vec<Result<Vec<u8>, MemberError>>> {
        let n = ios.len();
        let mut results: Vec<Option<Result<Vec<u8>, MemberError>>> = vec![None; n];
        // Tokens above this batch's range are not ours (none are outstanding).
        for (i, (loc, io)) in ios.into_iter().enumerate() {
            self.submit(loc, io, i as u64);
        }
        let deadline = Instant::now() + timeout;
        let mut left = n;
        while left > 0 {
            let now = Instant::now();
            if now >= deadline {
                bail!("member I/O did not finish within {timeout:?}");
            }
            for (tok, r) in self.wait(deadline - now)? {
                if let Some(slot) = results.get_mut(tok as usize) {
                    if slot.is_none() {
                        left -= 1;
                    }
                    *slot = Some(r);
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.ok_or_else(|| anyhow!("member I/O lost")))
            .collect()
    }
}

/// Gives back the buffer of a completion nobody claimed.
pub fn release_stray(ring: &Ring, c: Completion) {
    match c {
        Completion::Frame { buf, .. } => ring.recycle(buf),
        Completion::IoDone { buf: Some(b), .. } => ring.release(b),
        _ => {}
    }
}
