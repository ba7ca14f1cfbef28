//! The one driver around [`aoe_target::Target`], ring-free: target actions
//! become store requests, store completions become replies, and everything
//! that needs a send buffer when none is free waits in one queue.
//!
//! The driver is generic over two seams:
//! - [`Port`]: received frames and send buffers (the ring's receive buffers
//!   and send slots in the daemons; plain vectors in tests and simulators);
//! - [`Store`]: where an export's bytes live (a file or block device through
//!   io_uring, [`super::RingFiles`]; a RAID volume, [`super::Volumes`]).
//!
//! ## When send slots run out
//!
//! Nothing is dropped: a reply, control frame or store read that needs a
//! send buffer and finds none joins the wait queue (counted in
//! [`DriverCounters::slot_waits`]) and is served, in order, as soon as
//! [`Driver::retry`] finds buffers again. While the queue is not empty, new
//! work of that kind queues behind it. Requests in the queue are bounded by
//! the target's request slab; control frames are bounded separately and
//! past that bound dropped and counted ([`DriverCounters::ctl_dropped`]):
//! clients retry their queries.

use super::persist::StateFile;
use aoe_target::{Action, CtlFrame, ExportId, IfaceId, ReqId, Target};
use aoe_wire::ATA_DATA_OFFSET;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

/// Received frames and send buffers: the last step, the only one that
/// touches the ring.
pub(crate) trait Port {
    /// A received frame, lent until recycled (or handed to a store write).
    type Frame;
    /// A send buffer.
    type Slot;
    /// The bytes of a received frame.
    fn frame<'a>(&'a self, frame: &'a Self::Frame) -> &'a [u8];
    /// Gives a received frame's buffer back.
    fn recycle(&mut self, frame: Self::Frame);
    /// A free send buffer, or `None` if all are in use.
    fn slot(&mut self) -> Option<Self::Slot>;
    /// The writable bytes of a send buffer.
    fn slot_bytes<'a>(&'a mut self, slot: &'a mut Self::Slot) -> &'a mut [u8];
    /// Gives an unused send buffer back.
    fn release(&mut self, slot: Self::Slot);
    /// Sends the first `len` bytes of `slot` on `iface`; false if the send
    /// could not be queued (the buffer is given back either way).
    fn send(&mut self, iface: IfaceId, slot: Self::Slot, len: usize) -> bool;
}

/// A store read or write the target asked for: `len` bytes at byte `offset`
/// of `export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StoreIo {
    pub(crate) req: ReqId,
    pub(crate) export: ExportId,
    pub(crate) offset: u64,
    pub(crate) len: usize,
}

/// How a store took a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadStart {
    Started,
    /// The store reads into a send buffer and none is free: ask again later.
    NoSlot,
    /// The store could not take it (counted; the client retransmits).
    Failed,
}

/// How a store took a sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SyncStart {
    Started,
    /// Already durable (or failed) without any I/O: `Done(ok)`.
    Done(bool),
}

/// Where an export's bytes live.
pub(crate) trait Store<P: Port> {
    /// Starts a read; its data comes back in [`Done::Read`].
    fn read(&mut self, port: &mut P, io: StoreIo) -> ReadStart;
    /// Starts a write of the payload of `frame` (bytes
    /// `ATA_DATA_OFFSET..ATA_DATA_OFFSET + len`). A store that writes in
    /// place takes the frame out of `frame`; otherwise the driver recycles
    /// it. False if the store could not take it.
    fn write(&mut self, port: &mut P, io: StoreIo, frame: &mut Option<P::Frame>) -> bool;
    /// Makes the export's completed writes durable; `flush`: a client's
    /// FLUSH CACHE is among the requests answered, so caches below the
    /// store are flushed too.
    fn sync(&mut self, port: &mut P, export: ExportId, flush: bool) -> SyncStart;
}

/// A store request finished.
#[derive(Debug)]
pub(crate) enum Done<Slot> {
    Read { req: ReqId, data: ReadData<Slot> },
    Write { req: ReqId, ok: bool },
    Sync { export: ExportId, ok: bool },
}

/// A finished read's data.
#[derive(Debug)]
pub(crate) enum ReadData<Slot> {
    /// Read straight into a send buffer at `ATA_DATA_OFFSET`.
    InSlot { slot: Slot, ok: bool },
    /// Read into memory of its own (`None`: the read failed); copied into a
    /// send buffer when one is free.
    Bytes(Option<Vec<u8>>),
}

/// Counters of the driver itself (the protocol counters are the target's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct DriverCounters {
    /// Replies, control frames and reads that found no free send buffer
    /// and waited in the queue for one.
    pub(crate) slot_waits: u64,
    /// Control frames dropped because the queue held its bound of them.
    pub(crate) ctl_dropped: u64,
    /// Store requests the store could not take (the client retransmits).
    pub(crate) submit_errors: u64,
    /// Frames that could not be queued for sending, or whose send failed.
    pub(crate) send_errors: u64,
    /// State file writes that failed (the reply is still sent; state is in RAM).
    pub(crate) persist_errors: u64,
    /// Frames received while stopping (not handled).
    pub(crate) ignored_while_stopping: u64,
    /// Bytes of completed reads and writes.
    pub(crate) read_bytes: u64,
    pub(crate) write_bytes: u64,
    /// Client FLUSH CACHE (EXT) commands passed to the store.
    pub(crate) flushes: u64,
}

/// Work that waits for a send buffer.
#[derive(Debug)]
enum Waiting {
    /// A frame to build in a send buffer and send.
    Send(Outgoing),
    /// A read the store places straight into a send buffer it takes itself.
    Read(StoreIo),
}

/// A frame to send, built when a send buffer is free.
#[derive(Debug)]
enum Outgoing {
    /// A control frame (copied: the target reuses its control buffers).
    Ctl { iface: IfaceId, frame: Vec<u8> },
    /// The answer to a write or flush.
    Reply { req: ReqId, iface: IfaceId },
    /// A read done into memory, to be copied into a send buffer.
    ReadBytes { req: ReqId, data: Option<Vec<u8>> },
}

/// Per front-end interface tallies.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct IfaceTally {
    pub(crate) sent: u64,
    pub(crate) malformed: u64,
}

/// The target, its store and the wait queue.
#[derive(Debug)]
pub(crate) struct Driver<S> {
    target: Target,
    store: S,
    /// Export → its state file.
    states: Vec<Arc<StateFile>>,
    actions: Vec<Action>,
    waiting: VecDeque<Waiting>,
    /// Control frames in `waiting`, and their bound.
    ctl_waiting: usize,
    ctl_bound: usize,
    ifaces: Vec<IfaceTally>,
    stopping: bool,
    counters: DriverCounters,
}

impl<S> Driver<S> {
    /// `states[e]` is the state file of the target's export `e`.
    pub(crate) fn new(target: Target, store: S, states: Vec<Arc<StateFile>>) -> Driver<S> {
        let cap = target.request_capacity();
        Driver {
            actions: Vec::with_capacity(cap.max(256)),
            waiting: VecDeque::with_capacity(cap),
            ctl_waiting: 0,
            ctl_bound: cap.max(64),
            ifaces: Vec::new(),
            target,
            store,
            states,
            stopping: false,
            counters: DriverCounters::default(),
        }
    }

    pub(crate) fn target(&self) -> &Target {
        &self.target
    }

    pub(crate) fn store(&self) -> &S {
        &self.store
    }

    pub(crate) fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    pub(crate) fn counters(&self) -> &DriverCounters {
        &self.counters
    }

    /// Frames sent and malformed frames received on `iface`.
    pub(crate) fn iface_tally(&self, iface: IfaceId) -> IfaceTally {
        self.ifaces
            .get(usize::from(iface.0))
            .copied()
            .unwrap_or_default()
    }

    fn tally_mut(&mut self, iface: IfaceId) -> &mut IfaceTally {
        let i = usize::from(iface.0);
        if self.ifaces.len() <= i {
            self.ifaces.resize(i + 1, IfaceTally::default());
        }
        &mut self.ifaces[i]
    }

    /// Work waiting for send buffers.
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Stop handling new frames; requests in flight still finish.
    pub(crate) fn stop(&mut self) {
        self.stopping = true;
    }

    /// No request in the target and nothing waiting: safe to exit after a stop.
    pub(crate) fn drained(&self) -> bool {
        self.target.requests_in_flight() == 0 && self.waiting.is_empty()
    }

    /// Handles one received frame from `iface`.
    pub(crate) fn on_frame<P: Port>(
        &mut self,
        port: &mut P,
        iface: IfaceId,
        frame: P::Frame,
        now: Instant,
    ) where
        S: Store<P>,
    {
        if self.stopping {
            self.counters.ignored_while_stopping += 1;
            port.recycle(frame);
            return;
        }
        let malformed = self.target.counters().malformed;
        self.target
            .handle_frame(iface, port.frame(&frame), now, &mut self.actions);
        let malformed = self.target.counters().malformed - malformed;
        self.tally_mut(iface).malformed += malformed;
        self.run_actions(port, Some(frame));
    }

    /// A store request finished.
    pub(crate) fn on_done<P: Port>(&mut self, port: &mut P, done: Done<P::Slot>)
    where
        S: Store<P>,
    {
        match done {
            Done::Read {
                req,
                data: ReadData::InSlot { mut slot, ok },
            } => {
                let Some(iface) = self.target.request_iface(req) else {
                    port.release(slot);
                    return;
                };
                let len = self.target.read_done(req, ok, port.slot_bytes(&mut slot));
                if ok && len > 0 {
                    self.counters.read_bytes += (len - ATA_DATA_OFFSET) as u64;
                }
                self.send(port, iface, slot, len);
            }
            Done::Read {
                req,
                data: ReadData::Bytes(data),
            } => {
                self.queue_or_send(port, Outgoing::ReadBytes { req, data });
                if !self.waiting.is_empty() {
                    self.retry(port);
                }
            }
            Done::Write { req, ok } => {
                self.target.write_done(req, ok, &mut self.actions);
                self.run_actions(port, None);
            }
            Done::Sync { export, ok } => {
                self.target.sync_done(export, ok, &mut self.actions);
                self.run_actions(port, None);
            }
        }
    }

    /// Serves the wait queue while send buffers are free (call when sends
    /// complete and buffers come back).
    pub(crate) fn retry<P: Port>(&mut self, port: &mut P)
    where
        S: Store<P>,
    {
        while let Some(w) = self.waiting.pop_front() {
            match w {
                Waiting::Read(io) => match self.store.read(port, io) {
                    ReadStart::Started => {}
                    ReadStart::Failed => self.store_failed(io.req),
                    ReadStart::NoSlot => {
                        self.waiting.push_front(w);
                        return;
                    }
                },
                Waiting::Send(out) => {
                    let Some(slot) = port.slot() else {
                        self.waiting.push_front(Waiting::Send(out));
                        return;
                    };
                    if matches!(out, Outgoing::Ctl { .. }) {
                        self.ctl_waiting -= 1;
                    }
                    self.fill_and_send(port, out, slot);
                }
            }
        }
    }

    /// Sends an unsolicited config reply for every export.
    pub(crate) fn announce_all<P: Port>(&mut self, port: &mut P)
    where
        S: Store<P>,
    {
        for e in 0..self.target.export_count() {
            self.target.announce(ExportId(e as u16), &mut self.actions);
            self.run_actions(port, None);
        }
    }

    /// Records `export`'s size; if it changed, announces it. True if changed.
    pub(crate) fn resize<P: Port>(&mut self, port: &mut P, export: ExportId, sectors: u64) -> bool
    where
        S: Store<P>,
    {
        let changed = self.target.resize(export, sectors, &mut self.actions);
        self.run_actions(port, None);
        changed
    }

    /// Carries out the target's actions. `frame` is the received frame they
    /// came from: a store that writes in place takes it, else it is
    /// recycled here.
    fn run_actions<P: Port>(&mut self, port: &mut P, mut frame: Option<P::Frame>)
    where
        S: Store<P>,
    {
        // Calls made below (sync_done) append actions; they run in this pass.
        let mut i = 0;
        while i < self.actions.len() {
            let a = self.actions[i];
            i += 1;
            match a {
                Action::Send {
                    iface,
                    frame: f,
                    len,
                } => self.send_ctl(port, iface, f, len),
                Action::Read {
                    req,
                    export,
                    offset,
                    len,
                }
                | Action::Write {
                    req,
                    export,
                    offset,
                    len,
                } => {
                    let io = StoreIo {
                        req,
                        export,
                        offset,
                        len,
                    };
                    if matches!(a, Action::Read { .. }) {
                        self.start_read(port, io);
                    } else if self.store.write(port, io, &mut frame) {
                        self.counters.write_bytes += len as u64;
                    } else {
                        self.store_failed(req);
                    }
                }
                Action::Sync { export, flush } => {
                    if flush {
                        self.counters.flushes += 1;
                    }
                    if let SyncStart::Done(ok) = self.store.sync(port, export, flush) {
                        self.target.sync_done(export, ok, &mut self.actions);
                    }
                }
                Action::Reply { req, iface } => {
                    self.queue_or_send(port, Outgoing::Reply { req, iface });
                }
                Action::Persist { export } => self.persist(export),
            }
        }
        self.actions.clear();
        if let Some(f) = frame {
            port.recycle(f);
        }
        // Buffers may have come back without a send of ours completing (a
        // ring shared with the back end): serve what waits before returning.
        if !self.waiting.is_empty() {
            self.retry(port);
        }
    }

    /// Starts a read unless work waits for send buffers (a store that reads
    /// into one would take it first).
    fn start_read<P: Port>(&mut self, port: &mut P, io: StoreIo)
    where
        S: Store<P>,
    {
        let start = if self.waiting.is_empty() {
            self.store.read(port, io)
        } else {
            ReadStart::NoSlot
        };
        match start {
            ReadStart::Started => {}
            ReadStart::NoSlot => self.wait(Waiting::Read(io)),
            ReadStart::Failed => self.store_failed(io.req),
        }
    }

    fn send_ctl<P: Port>(&mut self, port: &mut P, iface: IfaceId, f: CtlFrame, len: usize) {
        if self.waiting.is_empty() {
            if let Some(mut slot) = port.slot() {
                let bytes = self.target.ctl_frame(f, len);
                let n = bytes.len();
                port.slot_bytes(&mut slot)[..n].copy_from_slice(bytes);
                self.send(port, iface, slot, n);
                return;
            }
        }
        if self.ctl_waiting >= self.ctl_bound {
            self.counters.ctl_dropped += 1;
            return;
        }
        self.ctl_waiting += 1;
        let frame = self.target.ctl_frame(f, len).to_vec();
        self.wait(Waiting::Send(Outgoing::Ctl { iface, frame }));
    }

    /// Sends `w` at once if a buffer is free and nothing waits before it;
    /// else queues it.
    fn queue_or_send<P: Port>(&mut self, port: &mut P, out: Outgoing) {
        if self.waiting.is_empty() {
            if let Some(slot) = port.slot() {
                self.fill_and_send(port, out, slot);
                return;
            }
        }
        self.wait(Waiting::Send(out));
    }

    fn wait(&mut self, w: Waiting) {
        self.counters.slot_waits += 1;
        self.waiting.push_back(w);
    }

    /// Builds `out` in `slot` and sends it.
    fn fill_and_send<P: Port>(&mut self, port: &mut P, out: Outgoing, mut slot: P::Slot) {
        let (iface, len) = match out {
            Outgoing::Ctl { iface, frame } => {
                port.slot_bytes(&mut slot)[..frame.len()].copy_from_slice(&frame);
                (Some(iface), frame.len())
            }
            Outgoing::Reply { req, iface } => {
                let len = self.target.finish_reply(req, port.slot_bytes(&mut slot));
                (Some(iface), len)
            }
            Outgoing::ReadBytes { req, data } => {
                let iface = self.target.request_iface(req);
                let buf = port.slot_bytes(&mut slot);
                let ok = match &data {
                    Some(d) if ATA_DATA_OFFSET + d.len() <= buf.len() => {
                        buf[ATA_DATA_OFFSET..ATA_DATA_OFFSET + d.len()].copy_from_slice(d);
                        true
                    }
                    _ => false,
                };
                let len = self.target.read_done(req, ok, buf);
                if ok && len > 0 {
                    self.counters.read_bytes += data.map_or(0, |d| d.len() as u64);
                }
                (iface, len)
            }
        };
        match iface {
            Some(i) => self.send(port, i, slot, len),
            None => port.release(slot),
        }
    }

    /// Sends `len` bytes of `slot` (nothing if `len` is 0: the request was
    /// gone).
    fn send<P: Port>(&mut self, port: &mut P, iface: IfaceId, slot: P::Slot, len: usize) {
        if len == 0 {
            port.release(slot);
        } else if port.send(iface, slot, len) {
            self.tally_mut(iface).sent += 1;
        } else {
            self.counters.send_errors += 1;
        }
    }

    /// A send queued earlier failed.
    pub(crate) fn send_failed(&mut self) {
        self.counters.send_errors += 1;
    }

    fn store_failed(&mut self, req: ReqId) {
        self.counters.submit_errors += 1;
        self.target.drop_request(req);
    }

    fn persist(&mut self, export: ExportId) {
        let Some(state) = self.states.get(usize::from(export.0)) else {
            return;
        };
        if let Err(e) = state.save(&self.target.shared(export).snapshot()) {
            self.counters.persist_errors += 1;
            crate::events::log_line(
                3,
                &format!(
                    "{}: cannot save export state: {e:#}",
                    state.path().display()
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests;
