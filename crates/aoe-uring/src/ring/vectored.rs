//! Vectored file I/O: one read or write of several buffers at consecutive file bytes
//! (`IORING_OP_READV_FIXED`/`WRITEV_FIXED` where the kernel has them, Linux ≥ 6.15,
//! plain `READV`/`WRITEV` elsewhere), completed as one `IoDone` per buffer.

use std::io;

use io_uring::{opcode, types};

use super::ops::OpKind;
use super::owner::Owner;
use super::Ring;
use crate::types::{Completion, Errno, FileId, FileOp, IoBuffer, Segment};

/// Most segments in one vectored operation (the kernel's `UIO_MAXIOV`).
pub const MAX_SEGMENTS: usize = 1024;

/// The buffers of a vectored operation in flight: (user, buffer, length) per segment.
#[derive(Default)]
pub(super) struct Parts(Vec<(u64, IoBuffer, usize)>);

impl Parts {
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// One completion per segment, in order: a segment the operation moved whole gets
    /// its length, the one where a short transfer stopped what it got, those after it
    /// 0; all of them the error of a failed operation.
    pub(super) fn complete(&mut self, result: Result<usize, Errno>, out: &mut Vec<Completion>) {
        let mut left = result.unwrap_or(0);
        for (user, buf, len) in self.0.drain(..) {
            let got = len.min(left);
            left -= got;
            out.push(Completion::IoDone {
                user,
                result: result.map(|_| got),
                buf: Some(buf),
            });
        }
    }
}

/// The iovec array of a vectored operation, read by the kernel until it completes.
#[derive(Default)]
pub(super) struct IoVecs(Vec<libc::iovec>);

// SAFETY: the iovecs point into this ring's own registered regions (or a socket's mapped
// receive ring), which move with the Ring; they are only read by the kernel and written
// by the thread that owns the Ring.
unsafe impl Send for IoVecs {}

impl Ring {
    /// Queue one read of consecutive file bytes from `offset` into several buffers, or
    /// one write of several buffers there ([`FileOp::DurableWrite`]: with `RWF_DSYNC`,
    /// durable as a whole when it completes): segment *i* covers the file bytes right
    /// after segment *i − 1*'s. Each buffer goes straight to or from the file, as with
    /// [`Ring::file_io`] (same buffers, same O_DIRECT rules for every segment).
    ///
    /// Completes as one [`Completion::IoDone`] per segment, in order, each with its own
    /// `user` and buffer: `Ok(len)` for a segment moved whole, fewer bytes for the one
    /// where a short transfer stopped and `Ok(0)` for those after it, the operation's
    /// error for all of them if it failed. A write counts as one write for
    /// [`Ring::sync_after_writes`]. On a submission error every buffer is
    /// released/recycled. At most [`MAX_SEGMENTS`] segments.
    pub fn file_io_vectored(
        &self,
        op: FileOp,
        file: FileId,
        segments: impl IntoIterator<Item = Segment>,
        offset: u64,
    ) -> io::Result<()> {
        let (kind, rw_flags) = op.kind_and_flags();
        let segments = segments.into_iter();
        let op = match self.alloc_op(kind, 0, None, file.0) {
            Ok(op) => op,
            Err(e) => {
                segments.for_each(|s| self.release(s.buf));
                return Err(e);
            }
        };
        let (mut parts, mut iovecs) = self.take_vectors(op);
        // Every segment in one registered buffer: the fixed opcodes (no page pinning per
        // request); otherwise, or on kernels without them, the plain ones.
        let mut index = None;
        let mut fixed = self.vectored_fixed;
        let mut bad = self.check_file(file).err();
        for seg in segments {
            if bad.is_some() {
                self.release(seg.buf);
                continue;
            }
            match self.place(kind, seg.buf, &seg.range) {
                Ok((buf, ptr, buf_index)) => {
                    fixed &= *index.get_or_insert(buf_index) == buf_index;
                    iovecs.0.push(libc::iovec {
                        iov_base: ptr.cast(),
                        iov_len: seg.range.len(),
                    });
                    parts.0.push((seg.user, buf, seg.range.len()));
                }
                Err(e) => bad = Some(e),
            }
        }
        let count = parts.0.len();
        if bad.is_none() && !(1..=MAX_SEGMENTS).contains(&count) {
            bad = Some(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{count} segments (1 to {MAX_SEGMENTS})"),
            ));
        }
        self.put_vectors(op, parts, iovecs);
        if let Some(e) = bad {
            self.free_op(op);
            self.give_back(op);
            return Err(e);
        }
        let (ptr, n) = (
            self.ops.borrow().slots[op as usize].iovecs.0.as_ptr(),
            count as u32,
        );
        let fd = types::Fixed(file.0);
        let sqe = match (kind, index.filter(|_| fixed)) {
            (OpKind::Read, Some(i)) => opcode::ReadvFixed::new(fd, ptr, n, i)
                .offset(offset)
                .build(),
            (OpKind::Read, None) => opcode::Readv::new(fd, ptr, n).offset(offset).build(),
            (_, Some(i)) => opcode::WritevFixed::new(fd, ptr, n, i)
                .offset(offset)
                .rw_flags(rw_flags)
                .build(),
            (_, None) => opcode::Writev::new(fd, ptr, n)
                .offset(offset)
                .rw_flags(rw_flags)
                .build(),
        }
        .user_data(Owner::Op(op).user_data());
        // SAFETY: the buffer tokens and the iovec array stay parked in the op slot until
        // the CQE (the slot table never grows; the array's heap memory stays put until
        // the slot is filled again, after the CQE), so nothing else touches that memory
        // meanwhile; the registered regions outlive all requests.
        unsafe { self.push_rw(op, kind, file, &sqe) }.map_err(|(e, _)| {
            self.give_back(op);
            e
        })
    }

    /// The segment and iovec vectors of op slot `op`, empty, to fill.
    fn take_vectors(&self, op: u32) -> (Parts, IoVecs) {
        let mut ops = self.ops.borrow_mut();
        let slot = &mut ops.slots[op as usize];
        let mut iovecs = std::mem::take(&mut slot.iovecs);
        iovecs.0.clear();
        (std::mem::take(&mut slot.parts), iovecs)
    }

    fn put_vectors(&self, op: u32, parts: Parts, iovecs: IoVecs) {
        let mut ops = self.ops.borrow_mut();
        let slot = &mut ops.slots[op as usize];
        slot.parts = parts;
        slot.iovecs = iovecs;
    }

    /// Releases the buffers of a vectored operation that was not submitted (its op slot
    /// freed already); the emptied vectors stay in the slot with their capacity.
    fn give_back(&self, op: u32) {
        let (mut parts, iovecs) = self.take_vectors(op);
        for (_, buf, _) in parts.0.drain(..) {
            self.release(buf);
        }
        self.put_vectors(op, parts, iovecs);
    }
}
