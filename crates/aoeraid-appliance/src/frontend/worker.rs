//! One worker of the front end: a [`Target`] core driven by a caller's
//! [`Ring`]. Composable: the daemon may run it on the same ring as the
//! initiator pool and the RAID engine, routing completions by
//! [`FrontendWorker::owns`].

use super::persist::StateFile;
use aoe_target::{Action, ExportId, IfaceId, ReqId, Target};
use aoe_uring::{Completion, FileId, IoBuffer, RecvBuf, Ring, SockId};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

/// High byte of every `user` value this driver puts on the ring.
pub const USER_TAG: u64 = 0xA7;
const KIND_READ: u64 = 1;
const KIND_WRITE: u64 = 2;
const KIND_SYNC: u64 = 3;
const KIND_SEND: u64 = 4;

fn user(kind: u64, id: u32) -> u64 {
    (USER_TAG << 56) | (kind << 48) | u64::from(id)
}

/// Counters of the driver itself (the protocol counters are in the core).
#[derive(Debug, Clone, Copy, Default)]
pub struct DriverCounters {
    /// Replies that found no send slot at once and waited for one.
    pub replies_deferred: u64,
    /// Control frames dropped for lack of a send slot.
    pub ctl_dropped: u64,
    /// Store submissions that failed.
    pub submit_errors: u64,
    /// State file writes that failed (the reply is still sent; state is in RAM).
    pub persist_errors: u64,
    /// Frames received while stopping (not handled).
    pub ignored_while_stopping: u64,
}

/// A target core plus the sockets and files it drives on one ring.
pub struct FrontendWorker {
    target: Target,
    /// IfaceId → socket.
    socks: Vec<SockId>,
    /// Export → registered store file.
    files: Vec<FileId>,
    states: Vec<Arc<StateFile>>,
    actions: Vec<Action>,
    /// Expected byte count per request (to catch short reads/writes).
    expected: Vec<u32>,
    /// Replies waiting for a free send slot.
    deferred: VecDeque<(ReqId, IfaceId)>,
    stopping: bool,
    pub counters: DriverCounters,
}

impl FrontendWorker {
    /// `socks[i]` must be the ring socket for the target's interface `i`,
    /// `files[e]` the registered store of export `e`, `states[e]` its state file.
    pub fn new(
        target: Target,
        socks: Vec<SockId>,
        files: Vec<FileId>,
        states: Vec<Arc<StateFile>>,
    ) -> Self {
        let cap = target.request_capacity();
        FrontendWorker {
            expected: vec![0; cap],
            deferred: VecDeque::with_capacity(cap),
            actions: Vec::with_capacity(cap.max(256)),
            target,
            socks,
            files,
            states,
            stopping: false,
            counters: DriverCounters::default(),
        }
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Frames the kernel dropped on this worker's sockets (receive queue full).
    pub fn kernel_dropped(&self, ring: &Ring) -> u64 {
        self.socks
            .iter()
            .filter_map(|s| ring.socket(*s))
            .map(|s| s.stats().map(|st| st.dropped).unwrap_or(0))
            .sum()
    }

    /// True if `c` belongs to this worker (its sockets or its user tags).
    pub fn owns(&self, c: &Completion) -> bool {
        match c {
            Completion::Frame { sock, .. } | Completion::RecvError { sock, .. } => {
                self.socks.contains(sock)
            }
            Completion::SendDone { user, .. } | Completion::IoDone { user, .. } => {
                user >> 56 == USER_TAG
            }
            _ => false,
        }
    }

    /// Stop handling new frames; in-flight requests still finish.
    pub fn stop(&mut self) {
        self.stopping = true;
    }

    /// Nothing left in flight: safe to exit after a stop.
    pub fn drained(&self) -> bool {
        self.target.requests_in_flight() == 0 && self.deferred.is_empty()
    }

    /// Handles one completion; returns it back if it is not ours.
    pub fn on_completion(
        &mut self,
        ring: &Ring,
        c: Completion,
        now: Instant,
    ) -> Option<Completion> {
        if !self.owns(&c) {
            return Some(c);
        }
        match c {
            Completion::Frame { sock, buf } => self.on_frame(ring, sock, buf, now),
            Completion::SendDone { .. } => self.flush_deferred(ring),
            Completion::IoDone { user, result, buf } => self.on_io(ring, user, result, buf),
            _ => {}
        }
        None
    }

    /// Sends an unsolicited config reply for every export.
    pub fn announce_all(&mut self, ring: &Ring) {
        for e in 0..self.target.export_count() {
            self.target.announce(ExportId(e as u16), &mut self.actions);
            self.run_actions(ring, None);
        }
    }

    /// Checks the store sizes (`sectors[e]`) and announces the exports that changed.
    pub fn resize(&mut self, ring: &Ring, export: ExportId, sectors: u64) -> bool {
        let changed = self.target.resize(export, sectors, &mut self.actions);
        self.run_actions(ring, None);
        changed
    }

    fn on_frame(&mut self, ring: &Ring, sock: SockId, buf: RecvBuf, now: Instant) {
        if self.stopping {
            self.counters.ignored_while_stopping += 1;
            ring.recycle(buf);
            return;
        }
        let Some(i) = self.socks.iter().position(|s| *s == sock) else {
            ring.recycle(buf);
            return;
        };
        self.target
            .handle_frame(IfaceId(i as u16), ring.frame(&buf), now, &mut self.actions);
        self.run_actions(ring, Some(buf));
    }

    fn on_io(
        &mut self,
        ring: &Ring,
        user: u64,
        result: Result<usize, aoe_uring::Errno>,
        buf: Option<IoBuffer>,
    ) {
        let kind = (user >> 48) & 0xFF;
        let id = user as u32;
        match kind {
            KIND_READ => {
                let ok = matches!(result, Ok(n) if n == self.expected[id as usize] as usize);
                let Some(mut slot) = buf.and_then(IoBuffer::into_slot) else {
                    self.target.drop_request(ReqId(id));
                    return;
                };
                let iface = self.target.request_iface(ReqId(id));
                let len = self
                    .target
                    .read_done(ReqId(id), ok, ring.slot_mut(&mut slot));
                match iface {
                    Some(i) if len > 0 => self.send(ring, i, slot, len),
                    _ => ring.release_slot(slot),
                }
            }
            KIND_WRITE => {
                let ok = matches!(result, Ok(n) if n == self.expected[id as usize] as usize);
                if let Some(b) = buf {
                    ring.release(b);
                }
                self.target.write_done(ReqId(id), ok, &mut self.actions);
                self.run_actions(ring, None);
            }
            KIND_SYNC => {
                self.target
                    .sync_done(ExportId(id as u16), result.is_ok(), &mut self.actions);
                self.run_actions(ring, None);
            }
            _ => {
                if let Some(b) = buf {
                    ring.release(b);
                }
            }
        }
    }

    fn send(&mut self, ring: &Ring, iface: IfaceId, slot: aoe_uring::SendSlot, len: usize) {
        let sock = self.socks[usize::from(iface.0)];
        if ring
            .submit_send(sock, slot, len, user(KIND_SEND, 0))
            .is_err()
        {
            self.counters.submit_errors += 1;
        }
    }

    /// Carries out the core's actions. `frame` is the received buffer the
    /// actions came from: a Write takes it (payload to disk in place),
    /// otherwise it is recycled here.
    fn run_actions(&mut self, ring: &Ring, mut frame: Option<RecvBuf>) {
        let mut i = 0;
        while i < self.actions.len() {
            let a = self.actions[i];
            i += 1;
            match a {
                Action::Send {
                    iface,
                    frame: f,
                    len,
                } => {
                    let sock = self.socks[usize::from(iface.0)];
                    if ring
                        .send_copy(sock, self.target.ctl_frame(f, len), user(KIND_SEND, 0))
                        .is_err()
                    {
                        self.counters.ctl_dropped += 1;
                    }
                }
                Action::Read {
                    req,
                    export,
                    offset,
                    len,
                } => {
                    let Some(slot) = ring.send_slot() else {
                        self.target.drop_request(req);
                        continue;
                    };
                    self.expected[req.0 as usize] = len as u32;
                    let file = self.files[usize::from(export.0)];
                    let r =
                        ring.read_fixed(file, slot, 36..36 + len, offset, user(KIND_READ, req.0));
                    if r.is_err() {
                        self.counters.submit_errors += 1;
                        self.target.drop_request(req);
                    }
                }
                Action::Write {
                    req,
                    export,
                    offset,
                    len,
                } => {
                    let Some(buf) = frame.take() else {
                        self.target.drop_request(req);
                        continue;
                    };
                    self.expected[req.0 as usize] = len as u32;
                    let file = self.files[usize::from(export.0)];
                    let r =
                        ring.write_fixed(file, buf, 36..36 + len, offset, user(KIND_WRITE, req.0));
                    if r.is_err() {
                        self.counters.submit_errors += 1;
                        self.target.drop_request(req);
                    }
                }
                Action::Sync { export, .. } => {
                    let file = self.files[usize::from(export.0)];
                    if ring
                        .fsync(file, true, user(KIND_SYNC, u32::from(export.0)))
                        .is_err()
                    {
                        // Could not even queue it: fail the batch (ATA UNC) rather than hang.
                        self.counters.submit_errors += 1;
                        self.target.sync_done(export, false, &mut self.actions);
                    }
                }
                Action::Reply { req, iface } => match ring.send_slot() {
                    Some(mut slot) => {
                        let len = self.target.finish_reply(req, ring.slot_mut(&mut slot));
                        if len > 0 {
                            self.send(ring, iface, slot, len);
                        } else {
                            ring.release_slot(slot);
                        }
                    }
                    None => {
                        self.counters.replies_deferred += 1;
                        self.deferred.push_back((req, iface));
                    }
                },
                Action::Persist { export } => {
                    let e = usize::from(export.0);
                    let snap = self.target.shared(export).snapshot();
                    if let Err(err) = self.states[e].save(&snap) {
                        self.counters.persist_errors += 1;
                        eprintln!(
                            "aoeraid serve: saving {}: {err:#}",
                            self.states[e].path().display()
                        );
                    }
                }
            }
        }
        self.actions.clear();
        if let Some(buf) = frame {
            ring.recycle(buf);
        }
    }

    fn flush_deferred(&mut self, ring: &Ring) {
        while let Some(&(req, iface)) = self.deferred.front() {
            let Some(mut slot) = ring.send_slot() else {
                return;
            };
            self.deferred.pop_front();
            let len = self.target.finish_reply(req, ring.slot_mut(&mut slot));
            if len > 0 {
                self.send(ring, iface, slot, len);
            } else {
                ring.release_slot(slot);
            }
        }
    }
}
