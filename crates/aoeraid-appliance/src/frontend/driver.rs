//! The one driver around [`aoe_target::Target`], ring-free: target actions
//! become store requests, store completions become replies, and every frame
//! to send waits in one queue until the host has a send buffer for it.
//!
//! The driver is generic over two seams:
//! - [`Port`]: received frames and send buffers (the ring's receive buffers
//!   and send slots in the daemons; byte slices in the appliance core;
//!   vectors in tests);
//! - [`Store`]: where an export's bytes live (a file or block device through
//!   io_uring, [`super::RingFiles`]; a RAID volume, [`super::Volumes`]).
//!
//! ## A host's turn
//!
//! Feed inputs ([`Driver::on_frame`], [`Driver::on_done`]); save every
//! export [`Driver::poll_persist`] names (no frame goes out before the state
//! it announces is durable); then take frames with [`Driver::poll_transmit`]
//! into send buffers — or let [`Driver::transmit`] do that with the port's
//! slots.
//!
//! ## When send slots run out
//!
//! Nothing is dropped: replies, control frames and read data wait in order
//! until a buffer is free, and so do reads of stores that read straight into
//! a send buffer ([`ReadStart::NoSlot`]); each time frames are left waiting
//! is counted ([`DriverCounters::slot_waits`]). Waiting requests are bounded
//! by the target's request slab; waiting control frames have a bound of
//! their own, past which they are dropped and counted
//! ([`DriverCounters::ctl_dropped`]): clients repeat their queries.

use super::merge::{Merge, Run, RunBounds};
use aoe_target::{Action, CtlFrame, ExportId, IfaceId, ReqId, Target};
use aoe_wire::ATA_DATA_OFFSET;
use std::collections::VecDeque;
use std::time::Instant;

/// Received frames and send buffers: the last step, the only one that
/// touches the ring. A host that builds frames in buffers of its own
/// ([`Driver::poll_transmit`]) has no slots here: see [`SlicePort`].
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
    /// it. False if the store could not take it. `durable`: the write has
    /// none to share a sync with, so the store makes it durable by itself
    /// (one `O_DSYNC`-like write) and its [`Done::Write`] is answered with
    /// no sync.
    fn write(
        &mut self,
        port: &mut P,
        io: StoreIo,
        frame: &mut Option<P::Frame>,
        durable: bool,
    ) -> bool;
    /// Makes the export's completed writes durable; `flush`: a client's
    /// FLUSH CACHE is among the requests answered, so caches below the
    /// store are flushed too.
    fn sync(&mut self, port: &mut P, export: ExportId, flush: bool) -> SyncStart;
    /// The store's side that takes a run of consecutive requests as one
    /// operation ([`super::merge`]); `None` (the default): every request
    /// goes to [`Store::read`] or [`Store::write`] alone, as it comes.
    fn merge(&mut self) -> Option<&mut dyn Merge<P>> {
        None
    }
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
    /// Times frames (or reads into send buffers) were left waiting because
    /// no send buffer was free.
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
    /// Bytes of completed reads and of writes handed to the store.
    pub(crate) read_bytes: u64,
    pub(crate) write_bytes: u64,
    /// Client FLUSH CACHE (EXT) commands passed to the store.
    pub(crate) flushes: u64,
    /// Store operations that carried several requests ([`super::merge`]),
    /// and the requests they carried.
    pub(crate) merged_ops: u64,
    pub(crate) merged_requests: u64,
}

/// A frame to send, built when a send buffer is free.
#[derive(Debug)]
enum Outgoing {
    /// A control frame (copied: the target reuses its control buffers).
    Ctl { iface: IfaceId, frame: Vec<u8> },
    /// The answer to a write or flush.
    Reply { req: ReqId, iface: IfaceId },
    /// Read data of a store that reads into memory of its own (`None`: the
    /// read failed), copied after the reply header.
    ReadData { req: ReqId, data: Option<Vec<u8>> },
}

/// Per front-end interface tallies.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct IfaceTally {
    pub(crate) sent: u64,
    pub(crate) malformed: u64,
}

/// A port for hosts that hand the driver received bytes and take frames with
/// [`Driver::poll_transmit`] (the appliance core, simulators): frames are
/// byte slices, and the port has no send buffers of its own.
#[derive(Debug, Default)]
pub(crate) struct SlicePort<'f>(std::marker::PhantomData<&'f [u8]>);

/// The send buffer of a [`SlicePort`]: there is none.
#[derive(Debug)]
pub(crate) enum NoSlot {}

impl<'f> Port for SlicePort<'f> {
    type Frame = &'f [u8];
    type Slot = NoSlot;

    fn frame<'a>(&'a self, frame: &'a &'f [u8]) -> &'a [u8] {
        frame
    }

    fn recycle(&mut self, _frame: &'f [u8]) {}

    fn slot(&mut self) -> Option<NoSlot> {
        None
    }

    fn slot_bytes<'a>(&'a mut self, slot: &'a mut NoSlot) -> &'a mut [u8] {
        match *slot {}
    }

    fn release(&mut self, slot: NoSlot) {
        match slot {}
    }

    fn send(&mut self, _iface: IfaceId, slot: NoSlot, _len: usize) -> bool {
        match slot {}
    }
}

/// The target, its store and the frames waiting to go out.
#[derive(Debug)]
pub(crate) struct Driver<S> {
    target: Target,
    store: S,
    actions: Vec<Action>,
    outgoing: VecDeque<Outgoing>,
    /// Reads waiting for a send buffer to read into.
    reads: VecDeque<StoreIo>,
    /// Requests of this wake-up waiting to go to a merging store as one
    /// operation, and an empty vector for the next run.
    run: Run,
    run_spare: Vec<StoreIo>,
    /// Exports whose state must be saved before the next frame goes out.
    persist: Vec<ExportId>,
    /// Frames of the host's current batch not fed yet
    /// ([`Driver::frames_coming`]).
    frames_coming: usize,
    /// Requests (by index) whose write the store makes durable by itself.
    durable: Vec<bool>,
    /// Control frames in `outgoing`, their bound, and emptied copies to reuse.
    ctl_queued: usize,
    ctl_bound: usize,
    spare: Vec<Vec<u8>>,
    ifaces: Vec<IfaceTally>,
    stopping: bool,
    counters: DriverCounters,
}

impl<S> Driver<S> {
    pub(crate) fn new(target: Target, store: S) -> Driver<S> {
        let cap = target.request_capacity();
        Driver {
            actions: Vec::with_capacity(cap.max(256)),
            outgoing: VecDeque::with_capacity(cap),
            reads: VecDeque::new(),
            run: Run::default(),
            run_spare: Vec::new(),
            persist: Vec::new(),
            frames_coming: 0,
            durable: vec![false; cap],
            ctl_queued: 0,
            ctl_bound: cap.max(64),
            spare: Vec::new(),
            ifaces: Vec::new(),
            target,
            store,
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

    /// Stop handling new frames; requests in flight still finish.
    pub(crate) fn stop(&mut self) {
        self.stopping = true;
    }

    /// No request in the target and nothing waiting: safe to exit after a stop.
    pub(crate) fn drained(&self) -> bool {
        self.target.requests_in_flight() == 0
            && self.outgoing.is_empty()
            && self.reads.is_empty()
            && self.run.is_empty()
            && !self.target.fences_held()
    }

    /// Reserve replies wait for writes in flight: call
    /// [`Driver::poll_fences`] again soon.
    pub(crate) fn fences_held(&self) -> bool {
        self.target.fences_held()
    }

    /// Queues the Reserve replies the target held until the writes in flight
    /// when their list was made had reached the store. The target looks
    /// itself at each of its frames and write completions; a host with
    /// several workers calls this from its loop, since those writes may
    /// complete on another worker.
    pub(crate) fn poll_fences<P: Port>(&mut self, port: &mut P)
    where
        S: Store<P>,
    {
        if self.target.fences_held() {
            self.target.poll_fences(&mut self.actions);
            self.run_actions(port, None);
        }
    }

    /// Frames wait to be sent and may go out (no state save is owed).
    pub(crate) fn has_transmit(&self) -> bool {
        !self.outgoing.is_empty() && self.persist.is_empty()
    }

    /// The next export whose durable state must be saved
    /// ([`Target::shared`]`(export).snapshot()`) before any further frame goes
    /// out.
    pub(crate) fn poll_persist(&mut self) -> Option<ExportId> {
        self.persist.pop()
    }

    /// A state save the host made for [`Driver::poll_persist`] failed.
    pub(crate) fn persist_failed(&mut self) {
        self.counters.persist_errors += 1;
    }

    /// A send the host queued failed.
    pub(crate) fn send_failed(&mut self) {
        self.counters.send_errors += 1;
    }

    /// The host is about to feed `frames` received frames in a row (one
    /// wake-up's). A write is made durable by itself only if it is the last
    /// of them and no other write of its export is in the store: with
    /// nothing to group it with, one durable write (one trip through the
    /// kernel) answers sooner than a write and then a sync. A run of a
    /// merging store ([`super::merge`]) starts at the last of them; it is
    /// durable by itself if its writes are all its export has in the store.
    /// Hosts that never say count every frame as the last (nothing merges).
    pub(crate) fn frames_coming(&mut self, frames: usize) {
        self.frames_coming = frames;
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
        self.frames_coming = self.frames_coming.saturating_sub(1);
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
        if self.frames_coming == 0 {
            self.start_run(port);
        }
        // A write the store could not take left the write gate just now.
        self.poll_fences(port);
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
            } => self.outgoing.push_back(Outgoing::ReadData { req, data }),
            Done::Write { req, ok } => {
                let durable = self
                    .durable
                    .get_mut(req.0 as usize)
                    .is_some_and(std::mem::take);
                if durable {
                    self.target.durable_write_done(req, ok, &mut self.actions);
                } else {
                    self.target.write_done(req, ok, &mut self.actions);
                }
                self.run_actions(port, None);
            }
            Done::Sync { export, ok } => {
                self.target.sync_done(export, ok, &mut self.actions);
                self.run_actions(port, None);
            }
        }
    }

    /// Builds the next frame to send in `buf`: (interface, length). `None`
    /// when nothing waits or a state save is owed ([`Driver::poll_persist`]).
    pub(crate) fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<(IfaceId, usize)> {
        if !self.persist.is_empty() {
            return None;
        }
        while let Some(out) = self.outgoing.pop_front() {
            if let (Some(iface), len @ 1..) = self.build(out, buf) {
                self.tally_mut(iface).sent += 1;
                return Some((iface, len));
            }
        }
        None
    }

    /// Starts a run still collected (a host whose frame count was off), sends
    /// what waits in the port's free slots, then starts the reads that wait
    /// for one. Save what [`Driver::poll_persist`] names first.
    pub(crate) fn transmit<P: Port>(&mut self, port: &mut P)
    where
        S: Store<P>,
    {
        self.start_run(port);
        while self.has_transmit() {
            let Some(mut slot) = port.slot() else {
                self.counters.slot_waits += 1;
                break;
            };
            match self.poll_transmit(port.slot_bytes(&mut slot)) {
                Some((iface, len)) => {
                    if !port.send(iface, slot, len) {
                        self.counters.send_errors += 1;
                    }
                }
                None => {
                    port.release(slot);
                    break;
                }
            }
        }
        while let Some(&io) = self.reads.front() {
            match self.store.read(port, io) {
                ReadStart::Started => {}
                ReadStart::Failed => self.store_failed(io.req),
                ReadStart::NoSlot => {
                    self.counters.slot_waits += 1;
                    return;
                }
            }
            self.reads.pop_front();
        }
    }

    /// Sends an unsolicited config reply for every export.
    pub(crate) fn announce_all<P: Port>(&mut self, port: &mut P)
    where
        S: Store<P>,
    {
        for e in 0..self.target.export_count() {
            self.announce(port, ExportId(e as u16));
        }
    }

    /// Sends an unsolicited config reply for `export` on its interfaces.
    pub(crate) fn announce<P: Port>(&mut self, port: &mut P, export: ExportId)
    where
        S: Store<P>,
    {
        self.target.announce(export, &mut self.actions);
        self.run_actions(port, None);
    }

    /// The core, to add, remove or re-address exports and interfaces
    /// between frames (`aoeraid serve --config` reloads).
    pub(crate) fn target_mut(&mut self) -> &mut Target {
        &mut self.target
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
                } => self.queue_ctl(iface, f, len),
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
                    let write = matches!(a, Action::Write { .. });
                    let bounds = self.store.merge().and_then(|m| m.bounds(export));
                    if let Some(bounds) = bounds {
                        self.collect(port, io, write, bounds, &mut frame);
                    } else if write {
                        self.start_write(port, io, &mut frame);
                    } else {
                        self.start_read(port, io);
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
                    self.outgoing.push_back(Outgoing::Reply { req, iface });
                }
                Action::Persist { export } => {
                    if !self.persist.contains(&export) {
                        self.persist.push(export);
                    }
                }
            }
        }
        self.actions.clear();
        if let Some(f) = frame {
            port.recycle(f);
        }
    }

    /// Starts a read unless reads already wait for send buffers (this one
    /// would overtake them).
    fn start_read<P: Port>(&mut self, port: &mut P, io: StoreIo)
    where
        S: Store<P>,
    {
        let start = if self.reads.is_empty() {
            self.store.read(port, io)
        } else {
            ReadStart::NoSlot
        };
        match start {
            ReadStart::Started => {}
            ReadStart::NoSlot => self.reads.push_back(io),
            ReadStart::Failed => self.store_failed(io.req),
        }
    }

    /// Hands a write to the store, durable by itself when it has nothing to
    /// group with (see [`Driver::frames_coming`]).
    fn start_write<P: Port>(&mut self, port: &mut P, io: StoreIo, frame: &mut Option<P::Frame>)
    where
        S: Store<P>,
    {
        let durable = self.frames_coming == 0 && self.target.writes_in_store(io.export) == 1;
        if let Some(d) = self.durable.get_mut(io.req.0 as usize) {
            *d = durable;
        }
        if self.store.write(port, io, frame, durable) {
            self.counters.write_bytes += io.len as u64;
        } else {
            self.store_failed(io.req);
        }
    }

    /// Adds a request for a merging store to the run, after starting the
    /// run it does not extend. A read joins the reads waiting for send
    /// buffers instead if there are any (it must not overtake them).
    fn collect<P: Port>(
        &mut self,
        port: &mut P,
        io: StoreIo,
        write: bool,
        bounds: RunBounds,
        frame: &mut Option<P::Frame>,
    ) where
        S: Store<P>,
    {
        if !self.run.extends(&io, write, bounds) {
            self.start_run(port);
        }
        if write {
            match (frame.take(), self.store.merge()) {
                (Some(f), Some(m)) => m.keep(port, f),
                // A frame addressed to two exports (a broadcast shelf)
                // carries one write's payload only, as with `start_write`.
                (f, _) => {
                    if let Some(f) = f {
                        port.recycle(f);
                    }
                    self.store_failed(io.req);
                    return;
                }
            }
        } else if !self.reads.is_empty() {
            self.reads.push_back(io);
            return;
        }
        self.run.push(io, write);
    }

    /// Hands the run collected to the store as one operation.
    fn start_run<P: Port>(&mut self, port: &mut P)
    where
        S: Store<P>,
    {
        if self.run.is_empty() {
            return;
        }
        let (mut ios, write) = self.run.take(std::mem::take(&mut self.run_spare));
        let n = ios.len();
        // Writes: durable by themselves if they are the last of the wake-up
        // and all their export has in the store (see `frames_coming`).
        let durable = write
            && self.frames_coming == 0
            && self.target.writes_in_store(ios[0].export) as usize == n;
        let start = match self.store.merge() {
            Some(m) if write => {
                for io in &ios {
                    if let Some(d) = self.durable.get_mut(io.req.0 as usize) {
                        *d = durable;
                    }
                }
                if m.write_run(port, &ios, durable) {
                    ReadStart::Started
                } else {
                    ReadStart::Failed
                }
            }
            Some(m) => m.read_run(port, &ios),
            None => ReadStart::Failed,
        };
        match start {
            ReadStart::Started => {
                if write {
                    self.counters.write_bytes += ios.iter().map(|io| io.len as u64).sum::<u64>();
                }
                if n > 1 {
                    self.counters.merged_ops += 1;
                    self.counters.merged_requests += n as u64;
                }
            }
            ReadStart::NoSlot => {
                self.counters.slot_waits += 1;
                self.reads.extend(ios.iter().copied());
            }
            ReadStart::Failed => {
                for io in &ios {
                    self.store_failed(io.req);
                }
            }
        }
        ios.clear();
        self.run_spare = ios;
    }

    fn queue_ctl(&mut self, iface: IfaceId, f: CtlFrame, len: usize) {
        if self.ctl_queued >= self.ctl_bound {
            self.counters.ctl_dropped += 1;
            return;
        }
        self.ctl_queued += 1;
        let mut frame = self.spare.pop().unwrap_or_default();
        frame.clear();
        frame.extend_from_slice(self.target.ctl_frame(f, len));
        self.outgoing.push_back(Outgoing::Ctl { iface, frame });
    }

    /// Builds `out` in `buf`: (interface, length); length 0 if its request
    /// is gone.
    fn build(&mut self, out: Outgoing, buf: &mut [u8]) -> (Option<IfaceId>, usize) {
        match out {
            Outgoing::Ctl { iface, frame } => {
                self.ctl_queued -= 1;
                let n = frame.len().min(buf.len());
                buf[..n].copy_from_slice(&frame[..n]);
                self.spare.push(frame);
                (Some(iface), n)
            }
            Outgoing::Reply { req, iface } => (Some(iface), self.target.finish_reply(req, buf)),
            Outgoing::ReadData { req, data } => {
                let iface = self.target.request_iface(req);
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

    fn store_failed(&mut self, req: ReqId) {
        if let Some(d) = self.durable.get_mut(req.0 as usize) {
            *d = false;
        }
        self.counters.submit_errors += 1;
        self.target.drop_request(req);
    }
}

#[cfg(test)]
mod tests;
