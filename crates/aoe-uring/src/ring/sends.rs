//! Sends: preallocated send slots the caller fills in place, queued for the next enter.

use std::io;

use io_uring::{opcode, types};

use super::owner::Owner;
use super::sockets::SocketEntry;
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
    ///
    /// On a socket with a mapped transmit ring
    /// ([`SocketOptions::tx_ring_frames`](crate::SocketOptions::tx_ring_frames)) the frame is
    /// copied into the ring's next slot and `slot` returns to the pool at once, with no
    /// `SendDone` of its own: the ring's frames go out together at the next enter, and only
    /// a failed send of them reports one `SendDone`, with the error and the `user` of the
    /// last frame put in the ring. A frame that finds the ring full or does not fit a ring
    /// slot is sent as on any socket (counted in [`RingStats`](crate::RingStats)), after the
    /// frames already in the ring.
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
        if self.put_in_tx_ring(sock, entry, slot.idx, len, user) {
            self.send.put(slot.idx);
            self.bump(|s| {
                s.sends += 1;
                s.tx_ring_frames += 1;
            });
            return Ok(());
        }
        self.send_meta[slot.idx as usize].set((sock.0, len as u32, user));
        let sqe = opcode::Send::new(
            types::Fixed(entry.plain_fixed.unwrap_or(entry.fixed)),
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

    /// Copies the first `len` bytes of send slot `idx` into the next slot of `sock`'s
    /// transmit ring and marks it; false if the socket has no transmit ring, the frame
    /// does not fit a ring slot or the next one is not free yet (counted). Frames are
    /// complete when they get here, so the ring never holds a slot taken and not yet
    /// filled, which would hold back the frames behind it.
    fn put_in_tx_ring(
        &self,
        sock: SockId,
        entry: &SocketEntry,
        idx: u32,
        len: usize,
        user: u64,
    ) -> bool {
        let Some(tx) = entry.sock.tx_ring() else {
            return false;
        };
        if len > tx.max_frame() {
            self.bump(|s| s.tx_ring_oversize += 1);
            return false;
        }
        let pos = entry.tx_pos.get();
        if !tx.is_free(pos) {
            self.bump(|s| s.tx_ring_full += 1);
            // The plain send that follows goes after the ring's frames.
            self.kick(sock.0, entry);
            return false;
        }
        // SAFETY: the send slot is taken and holds `len <= buf_size` bytes the caller
        // wrote (submit_send consumed its token, so nothing else reaches it).
        let frame = unsafe { std::slice::from_raw_parts(self.send.ptr(idx), len) };
        // SAFETY: `pos` is free and the next slot in ring order after the last one put
        // (tx_pos only advances here); this Ring, !Sync, is the ring's only writer.
        unsafe { tx.put(pos, frame) };
        entry
            .tx_pos
            .set(if pos + 1 == tx.frames() { 0 } else { pos + 1 });
        entry.tx_unkicked.set(true);
        entry.tx_user.set(user);
        // A new frame earns its kick a retry (see `on_kick`).
        entry.tx_failed.set(false);
        true
    }

    /// Queues a kick (one `send` with no data) of `entry`'s transmit ring if it holds
    /// frames no kick was queued for: it sends every marked slot. Best effort: with the
    /// submission queue full, the next enter's [`Ring::kick_tx_rings`] queues it.
    fn kick(&self, idx: u32, entry: &SocketEntry) {
        if !entry.tx_unkicked.get() {
            return;
        }
        // No data: the kernel ignores the buffer of a send on a socket with a transmit
        // ring. MSG_DONTWAIT: never wait for the frames' skbs to be freed.
        let sqe = opcode::Send::new(
            types::Fixed(entry.fixed),
            std::ptr::NonNull::<u8>::dangling().as_ptr(),
            0,
        )
        .flags(libc::MSG_DONTWAIT)
        .build()
        .user_data(Owner::Kick(idx).user_data());
        // SAFETY: a send of zero bytes names no memory the kernel reads.
        if unsafe { self.push(&sqe) }.is_ok() {
            entry.tx_unkicked.set(false);
            self.queued_sends.set(self.queued_sends.get() + 1);
            self.bump(|s| s.tx_ring_kicks += 1);
        }
    }

    /// Queues a kick of every transmit ring holding frames not kicked yet; called right
    /// before each enter, so one send per socket and turn carries the turn's frames.
    pub(super) fn kick_tx_rings(&self) {
        for (idx, entry) in self.sockets.iter().enumerate() {
            self.kick(idx as u32, entry);
        }
    }

    /// A kick finished. A failure is reported as one failed send and the kick repeated
    /// once at the next enter (the kernel reports an error that happened meanwhile, a
    /// link that went down and up, to the first send after it, which then sends nothing);
    /// after a second failure in a row the frames stay in the ring and go out with the
    /// next kick, when a frame is put (which earns a retry again), so a link that stays down costs no kick per wait.
    /// A kick that sent some frames but stopped before the last one put (the send buffer
    /// was full) is repeated at the next enter too.
    pub(super) fn on_kick(&self, idx: u32, res: i32, out: &mut Vec<Completion>) {
        let Some(entry) = self.sockets.get(idx as usize) else {
            return;
        };
        if res < 0 {
            self.bump(|s| s.send_errors += 1);
            out.push(Completion::SendDone {
                sock: SockId(idx),
                user: entry.tx_user.get(),
                result: Err(Errno(-res)),
            });
            if !entry.tx_failed.replace(true) {
                entry.tx_unkicked.set(true);
            }
            return;
        }
        entry.tx_failed.set(false);
        if let Some(tx) = entry.sock.tx_ring() {
            let last = entry.tx_pos.get().checked_sub(1).unwrap_or(tx.frames() - 1);
            if res > 0 && tx.is_marked(last) {
                entry.tx_unkicked.set(true);
            }
        }
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
