//! Files and block devices: registered files, fixed-buffer reads and writes (into I/O
//! buffers, send slots or from received frames), fsyncs and durability barriers.

use std::io;
use std::ops::Range;
use std::os::fd::{AsFd, AsRawFd};

use io_uring::{opcode, squeue, types};

use super::ops::OpKind;
use super::owner::Owner;
use super::{Ring, IO_BUF_INDEX, RECV_BUF_INDEX, SEND_BUF_INDEX};
use crate::types::{FileId, FileOp, IoBuf, IoBuffer};

impl Ring {
    /// Register a file or block device (the kernel keeps its own reference: the caller
    /// may close its descriptor afterwards). Open it with `O_DIRECT` for direct I/O.
    pub fn register_file(&self, file: &impl AsFd) -> io::Result<FileId> {
        Ok(FileId(self.alloc_fixed(file.as_fd().as_raw_fd())?))
    }

    /// Remove a registered file; requests already in flight still finish.
    pub fn unregister_file(&self, file: FileId) -> io::Result<()> {
        let mut used = self.files_used.borrow_mut();
        let is_socket = self.sockets.iter().any(|s| s.fixed == file.0);
        match used.get_mut(file.0 as usize) {
            Some(u) if *u && !is_socket => {
                self.uring
                    .submitter()
                    .register_files_update(file.0, &[-1])?;
                *u = false;
                Ok(())
            }
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{file:?} is not a registered file"),
            )),
        }
    }

    /// Take a free registered I/O buffer, or `None` if all are in use.
    pub fn io_buf(&self) -> Option<IoBuf> {
        self.io.take().map(|idx| IoBuf { ring: self.id, idx })
    }

    /// Size of every I/O buffer in bytes (a multiple of 4096).
    pub fn io_buf_size(&self) -> usize {
        self.io.buf_size()
    }

    /// Free I/O buffers.
    pub fn free_io_bufs(&self) -> usize {
        self.io.free_count()
    }

    /// Read access to an I/O buffer the caller holds.
    ///
    /// # Panics
    /// If `buf` comes from another ring.
    pub fn io_bytes<'a>(&'a self, buf: &'a IoBuf) -> &'a [u8] {
        self.assert_mine(buf.ring, "IoBuf");
        // SAFETY: the caller holds the token, so no request using this buffer is in flight
        // (submission consumes the token; completion returns it). Shared borrow of the token
        // prevents a concurrent `io_bytes_mut` on the same buffer.
        unsafe { std::slice::from_raw_parts(self.io.ptr(buf.idx), self.io.buf_size()) }
    }

    /// Write access to an I/O buffer the caller holds.
    ///
    /// # Panics
    /// If `buf` comes from another ring.
    pub fn io_bytes_mut<'a>(&'a self, buf: &'a mut IoBuf) -> &'a mut [u8] {
        self.assert_mine(buf.ring, "IoBuf");
        // SAFETY: as for `io_bytes`; the exclusive borrow of the unique token makes this
        // the only reference to the buffer.
        unsafe { std::slice::from_raw_parts_mut(self.io.ptr(buf.idx), self.io.buf_size()) }
    }

    /// Return an unused I/O buffer to the pool.
    pub fn release_io_buf(&self, buf: IoBuf) {
        if buf.ring == self.id {
            self.io.put(buf.idx);
        }
    }

    /// Queue a read of `range.len()` bytes at file `offset` into `buf[range]`
    /// (IORING_OP_READ_FIXED), or a write of `buf[range]` there (IORING_OP_WRITE_FIXED;
    /// with `RWF_DSYNC` for [`FileOp::DurableWrite`]).
    ///
    /// A read goes into an [`IoBuf`](crate::IoBuf) or a [`SendSlot`](crate::SendSlot)
    /// (reading a reply's payload straight into the frame to send). A write may also take a
    /// received frame ([`RecvBuf`](crate::RecvBuf)): write a request's payload in place, then
    /// recycle it (a frame from a mapped receive ring is first copied into a free send
    /// slot, which then comes back instead); writes are counted for
    /// [`Ring::sync_after_writes`](crate::Ring::sync_after_writes). For O_DIRECT, `offset`,
    /// the length and the buffer address must be multiples of the device's logical block
    /// size (I/O buffers are page-aligned; for slots see
    /// [`RingConfig::align_payload_at`](crate::RingConfig::align_payload_at)). The buffer
    /// comes back in [`Completion::IoDone`](crate::Completion::IoDone); on a submission
    /// error it is released/recycled.
    pub fn file_io(
        &self,
        op: FileOp,
        file: FileId,
        buf: impl Into<IoBuffer>,
        range: Range<usize>,
        offset: u64,
        user: u64,
    ) -> io::Result<()> {
        let (kind, rw_flags) = op.kind_and_flags();
        self.rw_fixed(kind, file, buf.into(), range, (offset, rw_flags), user)
    }

    /// Give back any buffer to its pool (I/O buffer, send slot or received frame).
    pub fn release(&self, buf: IoBuffer) {
        match buf {
            IoBuffer::Io(b) => self.release_io_buf(b),
            IoBuffer::Slot(s) => self.release_slot(s),
            IoBuffer::Frame(f) => self.recycle(f),
        }
    }

    /// Queue an fsync (or fdatasync if `datasync`) now, unordered with writes in flight.
    pub fn fsync(&self, file: FileId, datasync: bool, user: u64) -> io::Result<()> {
        self.check_file(file)?;
        let op = self.alloc_op(OpKind::Sync, user, None, file.0)?;
        self.push_sync(op, file.0, datasync)
    }

    /// Durability barrier: once every write to `file` submitted before this call has finished, run
    /// one fsync/fdatasync and report [`Completion::IoDone`](crate::Completion::IoDone) with
    /// `user`. Writes submitted later do not delay it. Acknowledge the batch's writes when this
    /// completes `Ok` — many writes, one sync.
    pub fn sync_after_writes(&self, file: FileId, datasync: bool, user: u64) -> io::Result<()> {
        self.check_file(file)?;
        self.barriers.borrow_mut()[file.0 as usize].add_barrier(user, datasync);
        self.issue_ready_barriers(file.0);
        Ok(())
    }

    pub(super) fn check_file(&self, file: FileId) -> io::Result<()> {
        if self.files_used.borrow().get(file.0 as usize).copied() == Some(true) {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{file:?} is not registered"),
            ))
        }
    }

    /// Where a buffer token's memory is: (pointer, usable length, registered index), if
    /// the token is live and belongs to this ring.
    fn locate(&self, buf: &IoBuffer) -> Option<(*mut u8, usize, u16)> {
        match buf {
            IoBuffer::Io(b) if b.ring == self.id && self.io.is_taken(b.idx) => {
                Some((self.io.ptr(b.idx), self.io.buf_size(), IO_BUF_INDEX))
            }
            IoBuffer::Slot(s) if s.ring == self.id && self.send.is_taken(s.idx) => {
                Some((self.send.ptr(s.idx), self.send.buf_size(), SEND_BUF_INDEX))
            }
            IoBuffer::Frame(f)
                if f.ring == self.id && f.mapped.is_none() && self.recv.is_lent(f.bid) =>
            {
                Some((
                    self.recv.slab().ptr(u32::from(f.bid)),
                    self.recv.slab().size(),
                    RECV_BUF_INDEX,
                ))
            }
            _ => None,
        }
    }

    /// Where `buf[range]` lies for a read or write of `kind`: the buffer (a mapped ring
    /// frame copied into a send slot first), a pointer to `range`'s first byte and the
    /// registered buffer it is in. Releases the buffer if it cannot be used.
    pub(super) fn place(
        &self,
        kind: OpKind,
        buf: IoBuffer,
        range: &Range<usize>,
    ) -> io::Result<(IoBuffer, *mut u8, u16)> {
        let buf = match buf {
            IoBuffer::Frame(f) if f.ring == self.id && f.mapped.is_some() => {
                self.mapped_to_slot(kind, f, range)?
            }
            other => other,
        };
        let Some((base, cap, buf_index)) = self.locate(&buf) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "buffer token belongs to another ring",
            ));
        };
        let reads_into_frame = kind == OpKind::Read && matches!(buf, IoBuffer::Frame(_));
        let bad_range =
            range.start > range.end || range.end > cap || range.len() > u32::MAX as usize;
        if bad_range || reads_into_frame {
            self.release(buf);
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("range {range:?} (buffer size {cap}) or read into a received frame"),
            ));
        }
        // SAFETY: `range` lies inside the buffer (checked above).
        Ok((buf, unsafe { base.add(range.start) }, buf_index))
    }

    fn rw_fixed(
        &self,
        kind: OpKind,
        file: FileId,
        buf: IoBuffer,
        range: Range<usize>,
        (offset, rw_flags): (u64, i32),
        user: u64,
    ) -> io::Result<()> {
        if let Err(e) = self.check_file(file) {
            self.release(buf);
            return Err(e);
        }
        let (buf, ptr, buf_index) = self.place(kind, buf, &range)?;
        let len = range.len() as u32;
        let op = self.alloc_op(kind, user, Some(buf), file.0)?;
        let fd = types::Fixed(file.0);
        let sqe = match kind {
            OpKind::Read => opcode::ReadFixed::new(fd, ptr, len, buf_index)
                .offset(offset)
                .build(),
            _ => opcode::WriteFixed::new(fd, ptr, len, buf_index)
                .offset(offset)
                .rw_flags(rw_flags)
                .build(),
        }
        .user_data(Owner::Op(op).user_data());
        // SAFETY: the buffer token is parked in the op slot until the CQE, so the caller
        // cannot touch the memory meanwhile; the registered regions outlive all requests.
        unsafe { self.push_rw(op, kind, file, &sqe) }.map_err(|(e, buf)| {
            if let Some(b) = buf {
                self.release(b);
            }
            e
        })
    }

    /// Submits `sqe`, the read or write of op slot `op` on `file`, a write counted for
    /// the file's barriers. On failure the slot is freed, the count undone, and the
    /// slot's buffer (of a plain read or write) handed back.
    ///
    /// # Safety
    /// As for `push`: every buffer the SQE names stays valid until its completion.
    pub(super) unsafe fn push_rw(
        &self,
        op: u32,
        kind: OpKind,
        file: FileId,
        sqe: &squeue::Entry,
    ) -> Result<(), (io::Error, Option<IoBuffer>)> {
        if kind == OpKind::Write {
            let epoch = self.barriers.borrow_mut()[file.0 as usize].write_started();
            self.ops.borrow_mut().slots[op as usize].epoch = epoch;
        }
        // SAFETY: per the caller's contract.
        let r = unsafe { self.push(sqe) };
        r.map_err(|e| {
            let dead = self.free_op(op);
            if kind == OpKind::Write {
                self.barriers.borrow_mut()[file.0 as usize].write_done(dead.epoch);
            }
            (e, dead.buf)
        })
    }

    /// A mapped receive ring's slot is no registered buffer: a write from one
    /// copies `range` of the frame into a free send slot (same offsets, so a
    /// payload at `RingConfig::align_payload_at` stays aligned for O_DIRECT)
    /// and gives the ring slot back at once. The copy is the one the kernel
    /// would otherwise have made into a provided buffer on this thread.
    fn mapped_to_slot(
        &self,
        kind: OpKind,
        frame: crate::types::RecvBuf,
        range: &Range<usize>,
    ) -> io::Result<IoBuffer> {
        let fits = range.start <= range.end && range.end <= frame.len as usize;
        if kind != OpKind::Write || !fits {
            self.recycle(frame);
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a frame from a mapped receive ring is only written from, within its length",
            ));
        }
        let Some(mut slot) = self.send_slot() else {
            self.recycle(frame);
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "no free send slot to copy a mapped frame into",
            ));
        };
        self.slot_mut(&mut slot)[range.clone()].copy_from_slice(&self.frame(&frame)[range.clone()]);
        self.recycle(frame);
        Ok(IoBuffer::Slot(slot))
    }

    fn push_sync(&self, op: u32, file: u32, datasync: bool) -> io::Result<()> {
        let flags = if datasync {
            types::FsyncFlags::DATASYNC
        } else {
            types::FsyncFlags::empty()
        };
        let sqe = opcode::Fsync::new(types::Fixed(file))
            .flags(flags)
            .build()
            .user_data(Owner::Op(op).user_data());
        // SAFETY: fsync names no memory.
        let r = unsafe { self.push(&sqe) };
        if r.is_err() {
            self.free_op(op);
        }
        r
    }

    /// Queue the syncs of every barrier on `file` whose writes have all finished. A sync
    /// that cannot be queued now (no op slot, full queue) is retried at the next `wait`.
    pub(super) fn issue_ready_barriers(&self, file: u32) {
        loop {
            let ready = self.barriers.borrow_mut()[file as usize].pop_ready();
            let Some((user, datasync)) = ready else {
                return;
            };
            if self.queue_barrier_sync(file, user, datasync).is_err() {
                self.deferred_syncs
                    .borrow_mut()
                    .push((file, user, datasync));
            }
        }
    }

    fn queue_barrier_sync(&self, file: u32, user: u64, datasync: bool) -> io::Result<()> {
        let op = self.alloc_op(OpKind::Barrier, user, None, file)?;
        self.push_sync(op, file, datasync)
    }

    pub(super) fn retry_deferred_syncs(&self) {
        loop {
            let next = self.deferred_syncs.borrow_mut().pop();
            let Some((file, user, datasync)) = next else {
                return;
            };
            if self.queue_barrier_sync(file, user, datasync).is_err() {
                self.deferred_syncs
                    .borrow_mut()
                    .push((file, user, datasync));
                return;
            }
        }
    }
}

impl FileOp {
    /// The op kind and `rw_flags` of a read or write.
    pub(super) fn kind_and_flags(self) -> (OpKind, i32) {
        match self {
            FileOp::Read => (OpKind::Read, 0),
            FileOp::Write => (OpKind::Write, 0),
            FileOp::DurableWrite => (OpKind::Write, libc::RWF_DSYNC),
        }
    }
}
