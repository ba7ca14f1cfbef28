//! The table of file operations and timers in flight: what each is, whose it is, and
//! the buffer it holds until its completion hands it back.

use std::io;

use io_uring::types;

use super::vectored::{IoVecs, Parts};
use super::Ring;
use crate::types::{Completion, Errno, IoBuffer};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum OpKind {
    Free,
    Read,
    Write,
    Sync,
    Barrier,
    Timer,
}

pub(super) struct Op {
    kind: OpKind,
    user: u64,
    /// The buffer of a read or write.
    pub(super) buf: Option<IoBuffer>,
    /// The buffers of a vectored read or write (then `buf` is `None`), and the
    /// iovec array the kernel reads; both keep their capacity from op to op.
    pub(super) parts: Parts,
    pub(super) iovecs: IoVecs,
    file: u32,
    /// Barrier epoch of a write.
    pub(super) epoch: u64,
    /// A timer's duration; the kernel reads it when it prepares the request.
    pub(super) ts: types::Timespec,
}

pub(super) struct Ops {
    // Never grows past its initial capacity, so `ts` addresses stay put while in flight.
    pub(super) slots: Vec<Op>,
    free: Vec<u32>,
}

impl Ops {
    pub(super) fn new(max_ops: u32) -> Ops {
        let mut slots = Vec::with_capacity(max_ops as usize);
        slots.extend((0..max_ops).map(|_| Op {
            kind: OpKind::Free,
            user: 0,
            buf: None,
            parts: Parts::default(),
            iovecs: IoVecs::default(),
            file: 0,
            epoch: 0,
            ts: types::Timespec::new(),
        }));
        Ops {
            slots,
            free: (0..max_ops).rev().collect(),
        }
    }

    /// Operations in flight (file I/O, syncs, timers).
    pub(super) fn busy(&self) -> usize {
        self.slots.len() - self.free.len()
    }
}

impl Ring {
    pub(super) fn alloc_op(
        &self,
        kind: OpKind,
        user: u64,
        buf: Option<IoBuffer>,
        file: u32,
    ) -> io::Result<u32> {
        let mut ops = self.ops.borrow_mut();
        let Some(op) = ops.free.pop() else {
            drop(ops);
            if let Some(b) = buf {
                self.release(b);
            }
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "too many operations in flight (max_ops)",
            ));
        };
        let slot = &mut ops.slots[op as usize];
        slot.kind = kind;
        slot.user = user;
        slot.buf = buf;
        slot.file = file;
        slot.epoch = 0;
        Ok(op)
    }

    pub(super) fn free_op(&self, op: u32) -> Op {
        let mut ops = self.ops.borrow_mut();
        let slot = &mut ops.slots[op as usize];
        let taken = Op {
            kind: slot.kind,
            user: slot.user,
            buf: slot.buf.take(),
            // A vectored operation's buffers stay in the slot for `on_op` to hand
            // back, with the vectors' capacity for the slot's next use.
            parts: Parts::default(),
            iovecs: IoVecs::default(),
            file: slot.file,
            epoch: slot.epoch,
            ts: types::Timespec::new(),
        };
        slot.kind = OpKind::Free;
        ops.free.push(op);
        taken
    }

    pub(super) fn on_op(&self, idx: u32, res: i32, out: &mut Vec<Completion>) {
        if idx as usize >= self.ops.borrow().slots.len() {
            return;
        }
        let op = self.free_op(idx);
        match op.kind {
            OpKind::Free => {}
            OpKind::Timer => {
                // -ETIME is the normal expiry; -ECANCELED only happens on drop.
                if res == -libc::ETIME || res >= 0 {
                    self.bump(|s| s.timers += 1);
                    out.push(Completion::Timer { user: op.user });
                }
            }
            OpKind::Read | OpKind::Write | OpKind::Sync | OpKind::Barrier => {
                let result = Errno::result(res);
                self.bump(|s| {
                    s.io_ops += 1;
                    if result.is_err() {
                        s.io_errors += 1;
                    }
                });
                {
                    let parts = &mut self.ops.borrow_mut().slots[idx as usize].parts;
                    if parts.is_empty() {
                        out.push(Completion::IoDone {
                            user: op.user,
                            result,
                            buf: op.buf,
                        });
                    } else {
                        parts.complete(result, out);
                    }
                }
                if op.kind == OpKind::Write {
                    self.barriers.borrow_mut()[op.file as usize].write_done(op.epoch);
                    self.issue_ready_barriers(op.file);
                }
            }
        }
    }
}
