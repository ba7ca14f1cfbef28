//! Sends: preallocated send slots the caller fills in place, queued for the next enter.

use std::io;

use io_uring::{opcode, types};

use super::owner::Owner;
use super::Ring;
use crate::types::{Completion, Errno, SendSlot, SockId};

impl Ring {
    /// Take a free send slot, or `None` if all are in flight or held.
    pub fn send_slot(&self) -> Option<SendSlot> {
        self.send.take().map(|idx| SendSlot { ring: self.id, idx })
    }

    /// Free send slots.
    pub fn free_send_slots(&self) -> usize {
        self.send.free_count()
    }

    /// Size of every send slot in bytes.
    pub fn send_slot_size(&self) -> usize {
        self.send.buf_size()
    }

    /// The writable bytes of a send slot (its full size; send only the prefix you fill).
    ///
    /// # Panics
    /// If `slot` comes from another ring.
    pub fn slot_mut<'a>(&'a self, slot: &'a mut SendSlot) -> &'a mut [u8] {
        self.assert_mine(slot.ring, "SendSlot");
        // SAFETY: the slot index is taken (SendSlot is only created by `send_slot` and is
        // neither Clone nor Copy), so this `&mut SendSlot` is the only way to reach the
        // memory; the kernel does not touch it until `submit_send` consumes the token. The
        // slice borrows the token, so it ends before the token can be submitted.
        unsafe { std::slice::from_raw_parts_mut(self.send.ptr(slot.idx), self.send.buf_size()) }
    }

    /// Return an unused slot to the pool.
    pub fn release_slot(&self, slot: SendSlot) {
        if slot.ring == self.id {
            self.send.put(slot.idx);
        }
    }

    /// Queue the first `len` bytes of `slot` for sending on `sock`. The slot returns to the pool
    /// when [`Completion::SendDone`](crate::Completion::SendDone) (carrying `user`) is reported. On
    /// error the slot is released and nothing is sent.
    pub fn submit_send(
        &self,
        sock: SockId,
        slot: SendSlot,
        len: usize,
        user: u64,
    ) -> io::Result<()> {
        if slot.ring != self.id {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "SendSlot belongs to another ring",
            ));
        }
        let Some(entry) = self.sockets.get(sock.index()) else {
            self.send.put(slot.idx);
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unknown socket {sock:?}"),
            ));
        };
        if len == 0 || len > self.send.buf_size() {
            self.send.put(slot.idx);
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("send length {len} not in 1..={}", self.send.buf_size()),
            ));
        }
        self.send_meta[slot.idx as usize].set((sock.0, len as u32, user));
        let sqe = opcode::Send::new(
            types::Fixed(entry.fixed),
            self.send.ptr(slot.idx),
            len as u32,
        )
        .build()
        .user_data(Owner::Send(slot.idx).user_data());
        // SAFETY: the slot's memory stays allocated and untouched by the caller (the token
        // was consumed; the index stays taken) until its CQE, where it is freed.
        let pushed = unsafe { self.push(&sqe) };
        if pushed.is_err() {
            self.send.put(slot.idx);
        } else {
            self.queued_sends.set(self.queued_sends.get() + 1);
            self.bump(|s| s.sends += 1);
        }
        pushed
    }

    /// Copy `frame` into a free slot and queue it (for tools and tests; the data path
    /// builds frames in place with [`Ring::slot_mut`](crate::Ring::slot_mut)).
    pub fn send_copy(&self, sock: SockId, frame: &[u8], user: u64) -> io::Result<()> {
        if frame.len() > self.send.buf_size() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "frame of {} bytes exceeds the send slot size {}",
                    frame.len(),
                    self.send.buf_size()
                ),
            ));
        }
        let mut slot = self
            .send_slot()
            .ok_or_else(|| io::Error::new(io::ErrorKind::WouldBlock, "no free send slot"))?;
        self.slot_mut(&mut slot)[..frame.len()].copy_from_slice(frame);
        self.submit_send(sock, slot, frame.len(), user)
    }

    /// A send finished: its slot goes back to the pool.
    pub(super) fn on_send(&self, slot: u32, res: i32, out: &mut Vec<Completion>) {
        let (sock, len, user) = self.send_meta[slot as usize].get();
        self.send.put(slot);
        let result = Errno::result(res);
        match result {
            Err(_) => self.bump(|s| s.send_errors += 1),
            Ok(n) if n < len as usize => self.bump(|s| s.short_sends += 1),
            Ok(_) => {}
        }
        out.push(Completion::SendDone {
            sock: SockId(sock),
            user,
            result,
        });
    }
}
