//! Files and block devices as the driver's store, through io_uring: a read
//! lands straight in the send slot of its reply, a write goes to the store
//! straight from the receive buffer it arrived in, a sync is one fdatasync.

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
    /// Export → registered file.
    files: Vec<FileId>,
    /// Bytes expected per request (to catch short reads and writes).
    expected: Vec<u32>,
}

impl RingFiles {
    /// `files[e]` is the registered store of export `e`; `requests` the
    /// target's request capacity.
    pub(crate) fn new(files: Vec<FileId>, requests: usize) -> RingFiles {
        RingFiles {
            files,
            expected: vec![0; requests],
        }
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

    fn expect(&mut self, io: StoreIo) -> Option<FileId> {
        *self.expected.get_mut(io.req.0 as usize)? = io.len as u32;
        self.files.get(usize::from(io.export.0)).copied()
    }
}

impl Store<RingPort<'_>> for RingFiles {
    fn read(&mut self, port: &mut RingPort<'_>, io: StoreIo) -> ReadStart {
        let ring = port.ring();
        let Some(slot) = ring.send_slot() else {
            return ReadStart::NoSlot;
        };
        let Some(file) = self.expect(io) else {
            ring.release_slot(slot);
            return ReadStart::Failed;
        };
        let range = ATA_DATA_OFFSET..ATA_DATA_OFFSET + io.len;
        match ring.file_io(
            FileOp::Read,
            file,
            slot,
            range,
            io.offset,
            user(KIND_READ, io.req.0),
        ) {
            Ok(()) => ReadStart::Started,
            Err(_) => ReadStart::Failed,
        }
    }

    fn write(
        &mut self,
        port: &mut RingPort<'_>,
        io: StoreIo,
        frame: &mut Option<aoe_uring::RecvBuf>,
    ) -> bool {
        let Some(file) = self.expect(io) else {
            return false;
        };
        let Some(buf) = frame.take() else {
            return false;
        };
        let range = ATA_DATA_OFFSET..ATA_DATA_OFFSET + io.len;
        port.ring()
            .file_io(
                FileOp::Write,
                file,
                buf,
                range,
                io.offset,
                user(KIND_WRITE, io.req.0),
            )
            .is_ok()
    }

    fn sync(&mut self, port: &mut RingPort<'_>, export: ExportId, _flush: bool) -> SyncStart {
        // fdatasync flushes the device cache below the file too, so a client
        // FLUSH needs nothing more than the group commit.
        let Some(&file) = self.files.get(usize::from(export.0)) else {
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
