//! Files and block devices as the driver's store, through io_uring: a read
//! lands straight in the send slot of its reply, a write goes to the store
//! straight from the receive buffer it arrived in, a sync is one fdatasync,
//! and a write the driver calls durable is one `RWF_DSYNC` write.

use super::driver::{Done, ReadData, ReadStart, Store, StoreIo, SyncStart};
use super::ring::{user, RingPort, USER_TAG};
use aoe_target::{ExportId, ReqId};
use aoe_uring::{Errno, FileId, FileOp, IoBuffer, Ring};
use aoe_wire::ATA_DATA_OFFSET;

const KIND_READ: u64 = 1;
const KIND_WRITE: u64 = 2;
const KIND_SYNC: u64 = 3;

/// The registered files of one worker's exports.
#[derive(Debug)]
pub(crate) struct RingFiles {
    /// Export → registered file and the byte offset of its sector 0.
    files: Vec<Option<(FileId, u64)>>,
    /// Bytes expected per request (to catch short reads and writes).
    expected: Vec<u32>,
    /// Exports opened with O_DIRECT: their reads never complete at submission.
    direct: Vec<bool>,
    /// Page-cache reads queued on the ring since [`RingFiles::take_reads_queued`].
    reads_queued: usize,
}

impl RingFiles {
    /// No exports yet ([`RingFiles::set`] adds them); `requests` is the
    /// target's request capacity.
    pub(crate) fn new(requests: usize) -> RingFiles {
        RingFiles {
            files: Vec::new(),
            expected: vec![0; requests],
            direct: Vec::new(),
            reads_queued: 0,
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
    pub(crate) fn done(
        &self,
        ring: &Ring,
        user: u64,
        result: Result<usize, Errno>,
        buf: Option<IoBuffer>,
    ) -> Option<Done<aoe_uring::SendSlot>> {
        if user >> 56 != USER_TAG {
            return None;
        }
        let id = user as u32;
        let full = |r: Result<usize, Errno>| matches!(r, Ok(n) if Some(&(n as u32)) == self.expected.get(id as usize));
        match (user >> 48) & 0xFF {
            KIND_READ => {
                let slot = buf.and_then(IoBuffer::into_slot)?;
                Some(Done::Read {
                    req: ReqId(id),
                    data: ReadData::InSlot {
                        slot,
                        ok: full(result),
                    },
                })
            }
            KIND_WRITE => {
                if let Some(b) = buf {
                    ring.release(b);
                }
                Some(Done::Write {
                    req: ReqId(id),
                    ok: full(result),
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

    /// Records the length `io` must complete with; the file and the byte
    /// offset `io` goes to.
    fn expect(&mut self, io: StoreIo) -> Option<(FileId, u64)> {
        *self.expected.get_mut(io.req.0 as usize)? = io.len as u32;
        let (file, base) = (*self.files.get(usize::from(io.export.0))?)?;
        Some((file, base + io.offset))
    }
}

impl Store<RingPort<'_>> for RingFiles {
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
                if !self
                    .direct
                    .get(usize::from(io.export.0))
                    .copied()
                    .unwrap_or(true)
                {
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
