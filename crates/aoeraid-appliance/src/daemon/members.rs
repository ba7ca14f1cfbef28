//! Where each configured member lives, and a small blocking executor that runs
//! member I/O through the same io_uring path as the data path (used before the data
//! path starts: `create`'s probes and superblock writes, assembly's superblock reads).

use super::file_member::FileMembers;
use crate::backend::{interface_names, Backend};
use crate::config::{Config, MemberAddr};
use crate::core::{assembly, poll_blade_done, submit_to_blade, Location, MemberResult};
use anyhow::{anyhow, bail, Context};
use aoe_initiator::{BladeId, BladeState, PoolConfig};
use aoe_uring::{Completion, Ring, RingConfig};
use raid_engine::{MemberError, MemberIo, MemberOp};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// I/O buffers of the data path's ring: enough for a few full-chunk writes to every
/// member at once.
pub(crate) const IO_BUFFERS: u32 = 256;
pub(crate) const IO_BUFFER_SIZE: usize = 256 << 10;
/// How long `create` and the daemon wait for every configured blade to answer discovery.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// The ring configuration every aoeraid data path uses.
pub(crate) fn ring_config() -> RingConfig {
    RingConfig {
        io_buffers: IO_BUFFERS,
        io_buffer_size: IO_BUFFER_SIZE,
        max_ops: 4096,
        max_files: 256,
        ..RingConfig::default()
    }
}

/// Every member device the appliance knows, by address.
pub(crate) struct Devices {
    pub(crate) ring: Ring,
    pub(crate) files: FileMembers<u64>,
    pub(crate) backend: Option<Backend>,
    /// Blade I/Os refused at submission, reported at the next wait.
    refused: VecDeque<(u64, MemberResult)>,
    pub(crate) by_addr: HashMap<MemberAddr, Location>,
    pub(crate) problems: Vec<(MemberAddr, String)>,
}

impl Devices {
    pub(crate) fn new() -> anyhow::Result<Devices> {
        let ring = Ring::with_config(&ring_config()).context("cannot set up io_uring")?;
        Ok(Devices {
            ring,
            files: FileMembers::default(),
            backend: None,
            refused: VecDeque::new(),
            by_addr: HashMap::new(),
            problems: Vec::new(),
        })
    }

    /// The answering blades `listed` does not name: members and spares added at run
    /// time, which assembly and a takeover look at by what they carry.
    pub(crate) fn unlisted_blades(&self, listed: &[MemberAddr]) -> Vec<(BladeId, MemberAddr)> {
        let Some(b) = self.backend.as_ref() else {
            return Vec::new();
        };
        let pool = b.pool();
        pool.blade_ids()
            .filter(|&id| pool.blade_state(id) == Some(BladeState::Up))
            .filter_map(|id| {
                let i = pool.blade_info(id)?;
                let a = MemberAddr::Blade {
                    shelf: i.shelf,
                    slot: i.slot,
                };
                (!listed.contains(&a)).then_some((id, a))
            })
            .collect()
    }

    /// Opens `addr`; a failure is recorded in `problems` (named) and returns None.
    pub(crate) fn open(&mut self, addr: &MemberAddr) -> Option<Location> {
        if let Some(l) = self.by_addr.get(addr) {
            return Some(*l);
        }
        let r = match addr {
            MemberAddr::File(path) => self
                .files
                .open(&self.ring, path)
                .map(Location::File)
                .map_err(|e| format!("cannot open {}: {e}", path.display())),
            MemberAddr::Blade { shelf, slot } => match &self.backend {
                None => Err("no back-end interface is configured (backend.interfaces)".to_string()),
                Some(b) => match b.pool().find(*shelf, *slot) {
                    Some(id) if b.pool().blade_state(id) == Some(BladeState::Up) => {
                        Ok(Location::Blade(id))
                    }
                    Some(_) => Err("blade found but not answering IDENTIFY".to_string()),
                    None => Err(format!(
                        "blade not found on the back-end interfaces ({})",
                        interface_names(b.pool())
                    )),
                },
            },
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

    /// Discovers the blades among the members `cfg` names (none: no back end is opened)
    /// on its back-end interfaces; returns them.
    pub(crate) fn discover_config(&mut self, cfg: &Config) -> anyhow::Result<Vec<(u16, u8)>> {
        let blades: Vec<(u16, u8)> = cfg
            .members()
            .iter()
            .filter_map(|m| match m {
                MemberAddr::Blade { shelf, slot } => Some((*shelf, *slot)),
                MemberAddr::File(_) => None,
            })
            .collect();
        if !blades.is_empty() {
            self.discover(
                &cfg.backend.interfaces,
                cfg.backend.dead_after.0,
                &blades,
                DISCOVERY_TIMEOUT,
            )?;
        }
        Ok(blades)
    }

    /// Opens the back end on `ifaces`, broadcasts a discovery and waits up to
    /// `timeout` for every blade in `wanted` to answer (fewer only if some are
    /// missing; their absence is reported by [`Devices::open`]), and for every
    /// other blade that answered meanwhile to be identified
    /// ([`assembly::discovery_settled`]): assembly reads those too.
    pub(crate) fn discover(
        &mut self,
        ifaces: &[String],
        dead_after: Duration,
        wanted: &[(u16, u8)],
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let cfg = PoolConfig {
            dead_time: dead_after,
            ..PoolConfig::default()
        };
        let mut b = Backend::open(&mut self.ring, ifaces, cfg).context("back end")?;
        b.pool_mut().discover();
        let deadline = Instant::now() + timeout;
        let mut events = Vec::new();
        let mut next_query = Instant::now() + Duration::from_millis(500);
        loop {
            let now = Instant::now();
            if assembly::discovery_settled(b.pool(), wanted) || now >= deadline {
                break;
            }
            if now >= next_query {
                // Broadcasts get lost; ask the missing ones again.
                for &(s, l) in wanted {
                    if b.pool().find(s, l).is_none() {
                        b.pool_mut().query(s, l);
                    }
                }
                next_query = now + Duration::from_millis(500);
            }
            b.turn(&mut self.ring, &mut events, Some(deadline.min(next_query)))?;
            while b.pool_mut().poll_event().is_some() {}
        }
        self.backend = Some(b);
        Ok(())
    }

    pub(crate) fn sectors(&self, loc: Location) -> u64 {
        match loc {
            Location::File(i) => self.files.sectors(i),
            Location::Blade(id) => self
                .backend
                .as_ref()
                .and_then(|b| b.pool().capacity(id))
                .unwrap_or(0),
        }
    }

    /// Starts one member I/O; its result comes back from [`Devices::wait`] (or the
    /// data path's own completion handling) with `token`.
    pub(crate) fn submit(&mut self, loc: Location, io: MemberIo, token: u64, now: Instant) {
        match loc {
            Location::File(i) => self.files.submit(&self.ring, i, io, token),
            Location::Blade(blade) => {
                let r = match self.backend.as_mut() {
                    Some(b) => submit_to_blade(b.pool_mut(), now, blade, io, token),
                    None => Err(MemberError::Gone),
                };
                if let Err(e) = r {
                    self.refused.push_back((token, Err(e)));
                }
            }
        }
    }

    /// Finished member I/Os from every device kind (after ring completions were fed).
    pub(crate) fn poll_done(&mut self) -> Option<(u64, MemberResult)> {
        if let Some(d) = self.refused.pop_front() {
            return Some(d);
        }
        if let Some(d) = self.files.poll_done() {
            return Some(d);
        }
        let d = poll_blade_done(self.backend.as_mut()?.pool_mut())?;
        Some((d.token, d.result))
    }

    /// Hands a ring completion to the back end or the file members; returns it if
    /// neither owns it.
    pub(crate) fn on_completion(&mut self, now: Instant, ev: Completion) -> Option<Completion> {
        let ev = match self.backend.as_mut() {
            Some(b) => b.on_completion(&self.ring, now, ev)?,
            None => ev,
        };
        let mut c = Some(ev);
        if self.files.on_completion(&self.ring, &mut c) {
            return None;
        }
        c
    }

    /// Waits up to `timeout` for completions; returns those that finished.
    pub(crate) fn wait(&mut self, timeout: Duration) -> anyhow::Result<Vec<(u64, MemberResult)>> {
        let mut out = Vec::new();
        let mut events = Vec::new();
        if let Some(b) = self.backend.as_mut() {
            b.poll(&self.ring, Instant::now());
        }
        let deadline = Instant::now() + timeout;
        let wake = self
            .backend
            .as_ref()
            .and_then(|b| b.next_deadline())
            .map_or(deadline, |d| d.min(deadline));
        let now = self.ring.wait_until(Some(wake), &mut events)?;
        for ev in events {
            if let Some(other) = self.on_completion(now, ev) {
                release_stray(&self.ring, other);
            }
        }
        if let Some(b) = self.backend.as_mut() {
            b.poll(&self.ring, now);
            while b.pool_mut().poll_event().is_some() {}
        }
        while let Some(d) = self.poll_done() {
            out.push(d);
        }
        Ok(out)
    }

    /// Reads `sectors` at `offset` of one member, blocking up to `timeout`.
    pub(crate) fn read_blocking(
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
    pub(crate) fn run_blocking(
        &mut self,
        ios: Vec<(Location, MemberIo)>,
        timeout: Duration,
    ) -> anyhow::Result<Vec<Result<Vec<u8>, MemberError>>> {
        let n = ios.len();
        let mut results: Vec<Option<Result<Vec<u8>, MemberError>>> = vec![None; n];
        // Tokens above this batch's range are not ours (none are outstanding).
        for (i, (loc, io)) in ios.into_iter().enumerate() {
            self.submit(loc, io, i as u64, Instant::now());
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
pub(crate) fn release_stray(ring: &Ring, c: Completion) {
    match c {
        Completion::Frame { buf, .. } => ring.recycle(buf),
        Completion::IoDone { buf: Some(b), .. } => ring.release(b),
        _ => {}
    }
}
