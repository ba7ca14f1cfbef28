//! Files and block devices as the driver's store, through io_uring: a read
//! lands straight in the send slot of its reply, a write goes to the store
//! straight from the receive buffer it arrived in, a sync is one fdatasync,
//! and a write the driver calls durable is one `RWF_DSYNC` write. A run of
//! consecutive requests ([`super::merge`]) is one vectored read or write
//! whose segments are those same buffers.

use super::driver::{Done, ReadData, ReadStart, Store, StoreIo, SyncStart};
use super::merge::{Merge, RunBounds};
use super::ring::{user, RingPort, USER_TAG};
use aoe_target::{ExportId, ReqId};
use aoe_uring::{Errno, FileId, FileOp, IoBuffer, RecvBuf, Ring, Segment};
use aoe_wire::ATA_DATA_OFFSET;

const KIND_READ: u64 = 1;
const KIND_WRITE: u64 = 2;
const KIND_SYNC: u64 = 3;
// (4 is the front end's sends.) A request's part of a vectored operation: on
// a short or failed one it is retried alone (as KIND_READ / KIND_WRITE).
const KIND_READ_RUN: u64 = 5;
const KIND_WRITE_RUN: u64 = 6;
const KIND_DURABLE_WRITE_RUN: u64 = 7;

/// How far runs go. 32 requests are two QD 16 windows of the Linux driver
/// or `aoeraid bench`, more than one wake-up brings; 256 KiB keeps one
/// operation within what a disk takes in one command (so an O_DIRECT run
/// is not split in the block layer) and the first reply's wait for the
/// last byte of its run short (a page-cache copy of 256 KiB is ~20 µs).
/// Every segment meets O_DIRECT's alignment by construction: stores are
/// opened O_DIRECT only where 512-byte direct I/O works
/// ([`aoe_uring::DirectIo::IfSectorReadsWork`]), requests are whole
/// sectors, and payloads sit page-aligned in their buffers
/// (`RingConfig::align_payload_at`).
const RUN_BOUNDS: RunBounds = RunBounds {
    max_requests: 32,
    max_bytes: 256 << 10,
};

/// What a request in the store must complete with and where it goes (to
/// check a short transfer and to retry a run's part alone).
#[derive(Debug, Clone, Copy, Default)]
struct Expected {
    len: u32,
    file: Option<FileId>,
    at: u64,
}

/// The registered files of one worker's exports.
#[derive(Debug)]
pub(crate) struct RingFiles {
    /// Export → registered file and the byte offset of its sector 0.
    files: Vec<Option<(FileId, u64)>>,
    /// Per request: its length, file and byte offset.
    expected: Vec<Expected>,
    /// Exports opened with O_DIRECT: their reads never complete at submission.
    direct: Vec<bool>,
    /// Page-cache reads queued on the ring since [`RingFiles::take_reads_queued`].
    reads_queued: usize,
    /// Frames of the writes of the run being collected, in order.
    kept: Vec<RecvBuf>,
    /// The segments of the next vectored operation (capacity kept).
    segments: Vec<Segment>,
}

impl RingFiles {
    /// No exports yet ([`RingFiles::set`] adds them); `requests` is the
    /// target's request capacity.
    pub(crate) fn new(requests: usize) -> RingFiles {
        RingFiles {
            files: Vec::new(),
            expected: vec![Expected::default(); requests],
            direct: Vec::new(),
            reads_queued: 0,
            kept: Vec::new(),
            segments: Vec::new(),
        }
    }

    /// Export `export` is `file` from byte `base` on (None: no store any
    /// more), opened with O_DIRECT or not; returns the file it replaces.
    pub(crate) fn set(
        &mut self,
        export: ExportId,
        file: Option<(FileId, u64)>,
        direct: bool,
    ) -> Option<(FileId, u64)> {
        let e = usize::from(export.0);
        if self.files.len() <= e {
            self.files.resize(e + 1, None);
            self.direct.resize(e + 1, false);
        }
        self.direct[e] = direct;
        std::mem::replace(&mut self.files[e], file)
    }

    /// Turns a ring completion of this store into [`Done`]; hands back
    /// anything that is not the store's. Buffers of writes are given back.
    /// A request whose part of a vectored operation came back short or
    /// failed is retried alone (`None` then): it gets the answer it would
    /// have got without merging — a bad sector fails the requests that
    /// cover it, not its neighbours in the run.
    pub(crate) fn done(
        &self,
        ring: &Ring,
        user_data: u64,
        result: Result<usize, Errno>,
        buf: Option<IoBuffer>,
    ) -> Option<Done<aoe_uring::SendSlot>> {
        if user_data >> 56 != USER_TAG {
            return None;
        }
        let id = user_data as u32;
        let full = matches!((result, self.expected.get(id as usize)), (Ok(n), Some(e)) if n == e.len as usize);
        let (kind, buf) = match (user_data >> 48) & 0xFF {
            KIND_READ_RUN if !full => (KIND_READ, self.retry(ring, FileOp::Read, id, buf)?),
            KIND_WRITE_RUN if !full => (KIND_WRITE, self.retry(ring, FileOp::Write, id, buf)?),
            KIND_DURABLE_WRITE_RUN if !full => {
                (KIND_WRITE, self.retry(ring, FileOp::DurableWrite, id, buf)?)
            }
            KIND_READ_RUN => (KIND_READ, buf),
            KIND_WRITE_RUN | KIND_DURABLE_WRITE_RUN => (KIND_WRITE, buf),
            kind => (kind, buf),
        };
        match kind {
            KIND_READ => Some(Done::Read {
                req: ReqId(id),
                data: match buf.and_then(IoBuffer::into_slot) {
                    Some(slot) => ReadData::InSlot { slot, ok: full },
                    // A run's part whose retry could not be queued.
                    None => ReadData::Bytes(None),
                },
            }),
            KIND_WRITE => {
                if let Some(b) = buf {
                    ring.release(b);
                }
                Some(Done::Write {
                    req: ReqId(id),
                    ok: full,
                })
            }
            KIND_SYNC => Some(Done::Sync {
                export: ExportId(id as u16),
                ok: result.is_ok(),
            }),
            _ => {
                if let Some(b) = buf {
                    ring.release(b);
                }
                None
            }
        }
    }

    /// How many page-cache (not O_DIRECT) reads were queued on the ring
    /// since the last call.
    pub(crate) fn take_reads_queued(&mut self) -> usize {
        std::mem::take(&mut self.reads_queued)
    }

    /// The registered file of `export`, if it has one.
    pub(crate) fn file(&self, export: ExportId) -> Option<(FileId, u64)> {
        *self.files.get(usize::from(export.0))?
    }

    /// Queues request `id`'s part of a vectored operation again, alone:
    /// `None` once queued, else `Some` of the buffer if it is still held
    /// (it goes back with a failed submission).
    fn retry(
        &self,
        ring: &Ring,
        op: FileOp,
        id: u32,
        buf: Option<IoBuffer>,
    ) -> Option<Option<IoBuffer>> {
        let kind = if op == FileOp::Read {
            KIND_READ
        } else {
            KIND_WRITE
        };
        let e = self.expected.get(id as usize).copied();
        match (buf, e.and_then(|e| Some((e.file?, e)))) {
            (Some(b), Some((file, e))) => {
                let range = ATA_DATA_OFFSET..ATA_DATA_OFFSET + e.len as usize;
                match ring.file_io(op, file, b, range, e.at, user(kind, id)) {
                    Ok(()) => None,
                    Err(_) => Some(None),
                }
            }
            (b, _) => Some(b),
        }
    }

    /// Records what `io` must complete with and where it goes; the file and
    /// the byte offset.
    fn expect(&mut self, io: StoreIo) -> Option<(FileId, u64)> {
        let e = self.expected.get_mut(io.req.0 as usize)?;
        e.len = io.len as u32;
        e.file = None;
        let (file, base) = (*self.files.get(usize::from(io.export.0))?)?;
        e.file = Some(file);
        e.at = base + io.offset;
        Some((file, e.at))
    }

    fn is_direct(&self, export: ExportId) -> bool {
        self.direct
            .get(usize::from(export.0))
            .copied()
            .unwrap_or(true)
    }

    /// Submits `self.segments` as one operation at the first request's
    /// place; false (every buffer given back) if it could not be queued.
    fn submit_run(&mut self, ring: &Ring, op: FileOp, first: Option<(FileId, u64)>) -> bool {
        match first {
            Some((file, at)) => ring
                .file_io_vectored(op, file, self.segments.drain(..), at)
                .is_ok(),
            None => {
                for s in self.segments.drain(..) {
                    ring.release(s.buf);
                }
                false
            }
        }
    }
}

impl Merge<RingPort<'_>> for RingFiles {
    fn bounds(&self, export: ExportId) -> Option<RunBounds> {
        self.file(export).map(|_| RUN_BOUNDS)
    }

    fn keep(&mut self, _port: &mut RingPort<'_>, frame: RecvBuf) {
        self.kept.push(frame);
    }

    fn read_run(&mut self, port: &mut RingPort<'_>, run: &[StoreIo]) -> ReadStart {
        if let [io] = run {
            return self.read(port, *io);
        }
        let ring = port.ring();
        if ring.free_send_slots() < run.len() {
            return ReadStart::NoSlot;
        }
        let mut first = None;
        let mut whole = true;
        for io in run {
            let at = self.expect(*io);
            whole &= at.is_some();
            first = first.or(at);
            let Some(slot) = ring.send_slot() else {
                whole = false;
                break;
            };
            self.segments.push(Segment {
                buf: slot.into(),
                range: ATA_DATA_OFFSET..ATA_DATA_OFFSET + io.len,
                user: user(KIND_READ_RUN, io.req.0),
            });
        }
        if !self.submit_run(ring, FileOp::Read, first.filter(|_| whole)) {
            return ReadStart::Failed;
        }
        if !self.is_direct(run[0].export) {
            self.reads_queued += 1;
        }
        ReadStart::Started
    }

    fn write_run(&mut self, port: &mut RingPort<'_>, run: &[StoreIo], durable: bool) -> bool {
        if let [io] = run {
            let mut frame = self.kept.pop();
            let started = self.write(port, *io, &mut frame, durable);
            if let Some(f) = frame {
                port.ring().recycle(f);
            }
            return started;
        }
        let ring = port.ring();
        let (op, kind) = if durable {
            (FileOp::DurableWrite, KIND_DURABLE_WRITE_RUN)
        } else {
            (FileOp::Write, KIND_WRITE_RUN)
        };
        let mut first = None;
        let mut frames = std::mem::take(&mut self.kept);
        let mut whole = frames.len() == run.len();
        for (io, frame) in run.iter().zip(frames.drain(..)) {
            let at = self.expect(*io);
            whole &= at.is_some();
            first = first.or(at);
            self.segments.push(Segment {
                buf: frame.into(),
                range: ATA_DATA_OFFSET..ATA_DATA_OFFSET + io.len,
                user: user(kind, io.req.0),
            });
        }
        for f in frames.drain(..) {
            ring.recycle(f);
        }
        self.kept = frames;
        self.submit_run(ring, op, first.filter(|_| whole))
    }
}

impl<'r> Store<RingPort<'r>> for RingFiles {
    fn merge(&mut self) -> Option<&mut dyn Merge<RingPort<'r>>> {
        Some(self)
    }

    fn read(&mut self, port: &mut RingPort<'_>, io: StoreIo) -> ReadStart {
        let ring = port.ring();
        let Some(slot) = ring.send_slot() else {
            return ReadStart::NoSlot;
        };
        let Some((file, at)) = self.expect(io) else {
            ring.release_slot(slot);
            return ReadStart::Failed;
        };
        let range = ATA_DATA_OFFSET..ATA_DATA_OFFSET + io.len;
        match ring.file_io(
            FileOp::Read,
            file,
            slot,
            range,
            at,
            user(KIND_READ, io.req.0),
        ) {
            Ok(()) => {
                if !self.is_direct(io.export) {
                    self.reads_queued += 1;
                }
                ReadStart::Started
            }
            Err(_) => ReadStart::Failed,
        }
    }

    fn write(
        &mut self,
        port: &mut RingPort<'_>,
        io: StoreIo,
        frame: &mut Option<aoe_uring::RecvBuf>,
        durable: bool,
    ) -> bool {
        let Some((file, at)) = self.expect(io) else {
            return false;
        };
        let Some(buf) = frame.take() else {
            return false;
        };
        let range = ATA_DATA_OFFSET..ATA_DATA_OFFSET + io.len;
        let op = if durable {
            FileOp::DurableWrite
        } else {
            FileOp::Write
        };
        port.ring()
            .file_io(op, file, buf, range, at, user(KIND_WRITE, io.req.0))
            .is_ok()
    }

    fn sync(&mut self, port: &mut RingPort<'_>, export: ExportId, _flush: bool) -> SyncStart {
        // fdatasync flushes the device cache below the file too, so a client
        // FLUSH needs nothing more than the group commit.
        let Some(&Some((file, _))) = self.files.get(usize::from(export.0)) else {
            return SyncStart::Done(false);
        };
        match port
            .ring()
            .fsync(file, true, user(KIND_SYNC, u32::from(export.0)))
        {
            Ok(()) => SyncStart::Started,
            // Could not even queue it: fail the batch (ATA UNC) rather than hang.
            Err(_) => SyncStart::Done(false),
        }
    }
}
