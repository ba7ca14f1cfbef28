//! Sockets and the frames they receive: multishot receives into the provided buffers,
//! or the socket's mapped receive ring read directly.

use std::cell::Cell;
use std::io;
use std::os::fd::AsRawFd;

use io_uring::{cqueue, opcode, types};

use super::owner::Owner;
use super::{Ring, RECV_GROUP};
use crate::packet::PacketSocket;
use crate::types::{Completion, Errno, MappedFrame, RecvBuf, SockId};

/// A socket of the ring and the state of its receive side.
pub(super) struct SocketEntry {
    pub(super) sock: PacketSocket,
    /// Its slot in the fixed-file table.
    pub(super) fixed: u32,
    /// The slot of the socket that sends frames the ordinary way, if that is not the
    /// socket itself (one with a mapped transmit ring).
    pub(super) plain_fixed: Option<u32>,
    /// Next slot of the mapped transmit ring to fill.
    pub(super) tx_pos: Cell<u32>,
    /// The transmit ring holds frames no kick has been queued for.
    pub(super) tx_unkicked: Cell<bool>,
    /// The `user` of the last frame put in the transmit ring (reported if a kick fails).
    pub(super) tx_user: Cell<u64>,
    /// The last kick failed (the next failure is not retried).
    pub(super) tx_failed: Cell<bool>,
    /// Multishot receive armed (sockets without a mapped ring), or readiness poll armed
    /// (sockets with one).
    armed: Cell<bool>,
    /// Next slot of the mapped receive ring to look at (sockets with one).
    rx_pos: Cell<u32>,
    /// Slots of the mapped ring lent to the caller. Their status is still USER, so
    /// without this a reader that came all the way round would hand them out again.
    rx_lent: Box<[Cell<bool>]>,
}

impl Ring {
    /// Hand a socket to the ring: it is registered as a fixed file and a multishot
    /// receive is armed on it (submitted at the next `wait`/`submit`).
    ///
    /// A socket with a mapped receive ring ([`crate::SocketOptions::rx_ring_frames`]) needs no
    /// receive request: `wait` reads its frames straight from the ring, and only when none are
    /// ready does it arm a one-shot readiness poll and sleep. Its frames come as
    /// [`Completion::Frame`](crate::Completion::Frame) like any other; recycle them promptly, since
    /// a held frame is a ring slot the kernel cannot fill (and one held at the kernel's position
    /// keeps the socket readable, so `wait` does not sleep).
    pub fn add_socket(&mut self, sock: PacketSocket) -> io::Result<SockId> {
        let fixed = self.alloc_fixed(sock.as_raw_fd())?;
        let plain_fixed = match sock.tx_ring() {
            None => None,
            Some(_) => match self.alloc_fixed(sock.plain_tx_fd()) {
                Ok(f) => Some(f),
                Err(e) => {
                    let _ = self.unregister_file(crate::FileId(fixed));
                    return Err(e);
                }
            },
        };
        let id = SockId(self.sockets.len() as u32);
        let mapped = sock.has_rx_ring();
        let rx_lent = (0..sock.rx_ring_frames())
            .map(|_| Cell::new(false))
            .collect();
        self.sockets.push(SocketEntry {
            sock,
            fixed,
            plain_fixed,
            tx_pos: Cell::new(0),
            tx_unkicked: Cell::new(false),
            tx_user: Cell::new(0),
            tx_failed: Cell::new(false),
            armed: Cell::new(false),
            rx_pos: Cell::new(0),
            rx_lent,
        });
        if !mapped {
            // If the submission queue is full right now, the next `wait` arms it.
            let _ = self.arm_recv(id.0);
        }
        Ok(id)
    }

    /// The socket behind `id` (for its MAC, MTU, kernel stats).
    pub fn socket(&self, id: SockId) -> Option<&PacketSocket> {
        self.sockets.get(id.index()).map(|s| &s.sock)
    }

    /// Number of sockets registered.
    pub fn socket_count(&self) -> usize {
        self.sockets.len()
    }

    /// The bytes of a received frame.
    ///
    /// # Panics
    /// If `buf` comes from another ring (a programming error, like an out-of-range index).
    pub fn frame<'a>(&'a self, buf: &'a RecvBuf) -> &'a [u8] {
        self.assert_mine(buf.ring, "RecvBuf");
        if let Some(m) = buf.mapped {
            let rx = self.sockets[m.sock as usize]
                .sock
                .rx_ring()
                .expect("mapped frame from a socket without a receive ring");
            // SAFETY: `m` and `len` come from `RxRing::ready` for a slot that is released
            // only by `recycle`, which consumes `buf`; the slice borrows `buf`, so it ends
            // before the slot can go back to the kernel.
            return unsafe { rx.bytes(m.offset, buf.len) };
        }
        self.recv.bytes(buf.bid, buf.len)
    }

    /// Give a received frame's buffer back to the kernel.
    pub fn recycle(&self, buf: RecvBuf) {
        if buf.ring != self.id {
            return;
        }
        match buf.mapped {
            Some(m) => self.release_mapped(m),
            None => self.recv.give_back(buf.bid),
        }
    }

    fn release_mapped(&self, m: MappedFrame) {
        let Some(entry) = self.sockets.get(m.sock as usize) else {
            return;
        };
        let Some(rx) = entry.sock.rx_ring() else {
            return;
        };
        if let Some(lent) = entry.rx_lent.get(m.slot as usize) {
            lent.set(false);
        }
        // SAFETY: every slice of this slot borrowed the RecvBuf this came from, which
        // has been consumed, so none is alive.
        unsafe { rx.release(m.slot) };
    }

    /// Receive buffers posted to the kernel. Starts at 64 and grows each time the kernel runs out,
    /// up to [`RingConfig::recv_buffers`](crate::RingConfig::recv_buffers), so the buffers in use
    /// track the load.
    pub fn recv_buffers_posted(&self) -> usize {
        self.recv.posted() as usize
    }

    /// Receive buffers currently lent to the caller (not yet recycled).
    pub fn recv_buffers_lent(&self) -> usize {
        self.recv.lent_count() as usize
    }

    /// Append the frames waiting in the mapped receive rings; returns how many.
    pub(super) fn take_mapped(&self, out: &mut Vec<Completion>) -> usize {
        let mut n = 0;
        for (idx, entry) in self.sockets.iter().enumerate() {
            let Some(rx) = entry.sock.rx_ring() else {
                continue;
            };
            let mut pos = entry.rx_pos.get();
            while let Some(r) = rx.ready(pos) {
                let lent = &entry.rx_lent[pos as usize];
                if lent.get() {
                    // Came round to a frame the caller still holds: the ring is full.
                    break;
                }
                lent.set(true);
                pos = if pos + 1 == rx.frames() { 0 } else { pos + 1 };
                let m = MappedFrame {
                    sock: idx as u32,
                    slot: r.slot,
                    offset: r.offset,
                };
                if r.wire_len as usize > r.len as usize || r.len as usize > rx.max_frame() {
                    // Cut to the slot size: useless to a protocol, so count and drop.
                    self.bump(|s| s.frames_truncated += 1);
                    self.release_mapped(m);
                    continue;
                }
                self.bump(|s| {
                    s.frames_received += 1;
                    s.bytes_received += u64::from(r.len);
                });
                out.push(Completion::Frame {
                    sock: SockId(idx as u32),
                    buf: RecvBuf {
                        ring: self.id,
                        bid: 0,
                        len: r.len,
                        mapped: Some(m),
                    },
                });
                n += 1;
            }
            entry.rx_pos.set(pos);
        }
        n
    }

    /// Arm a one-shot readiness poll on every mapped socket that has none, so a frame
    /// arriving after `take_mapped` looked ends the wait. (The poll checks readiness when
    /// armed, so a frame that slipped in between completes it at once.) Best effort: a
    /// full submission queue leaves it for the next `wait`, which then does not sleep
    /// past its timeout anyway.
    pub(super) fn arm_polls(&self) {
        for (idx, entry) in self.sockets.iter().enumerate() {
            if entry.sock.has_rx_ring() && !entry.armed.get() {
                let sqe = opcode::PollAdd::new(types::Fixed(entry.fixed), libc::POLLIN as u32)
                    .build()
                    .user_data(Owner::Poll(idx as u32).user_data());
                // SAFETY: a poll names no memory.
                if unsafe { self.push(&sqe) }.is_err() {
                    return;
                }
                entry.armed.set(true);
            }
        }
    }

    fn arm_recv(&self, idx: u32) -> io::Result<()> {
        let entry = &self.sockets[idx as usize];
        // MSG_TRUNC: the result is the frame's real length, so oversize frames are seen.
        let sqe = opcode::RecvMulti::new(types::Fixed(entry.fixed), RECV_GROUP)
            .flags(libc::MSG_TRUNC)
            .build()
            .user_data(Owner::Recv(idx).user_data());
        // SAFETY: the receive writes only into provided buffers, which live as long as
        // the ring (see `with_config`).
        unsafe { self.push(&sqe)? };
        entry.armed.set(true);
        Ok(())
    }

    /// Re-arm receives the kernel ended. Best effort: a full submission queue leaves
    /// them for the next `wait`.
    pub(super) fn rearm_receives(&self) {
        if !self.recv.any_available() {
            return;
        }
        if self.recv.posted() == 0 {
            self.recv.grow();
        }
        for idx in 0..self.sockets.len() as u32 {
            let entry = &self.sockets[idx as usize];
            if !entry.armed.get() && !entry.sock.has_rx_ring() {
                if self.arm_recv(idx).is_err() {
                    return;
                }
                self.bump(|s| s.recv_rearms += 1);
            }
        }
    }

    pub(super) fn on_recv(
        &self,
        idx: u32,
        res: i32,
        flags: u32,
        more: bool,
        out: &mut Vec<Completion>,
    ) {
        if !more {
            if let Some(s) = self.sockets.get(idx as usize) {
                s.armed.set(false);
            }
        }
        if let Some(bid) = cqueue::buffer_select(flags) {
            if res >= 0 && self.recv.lend(bid) {
                if res as u32 > self.recv.buf_size() {
                    // Cut to the buffer size: useless to a protocol, so count and drop.
                    self.bump(|s| s.frames_truncated += 1);
                    self.recv.give_back(bid);
                    return;
                }
                let len = res as u32;
                self.bump(|s| {
                    s.frames_received += 1;
                    s.bytes_received += u64::from(len);
                });
                out.push(Completion::Frame {
                    sock: SockId(idx),
                    buf: RecvBuf {
                        ring: self.id,
                        bid,
                        len,
                        mapped: None,
                    },
                });
                return;
            }
        }
        if res == -libc::ENOBUFS {
            self.bump(|s| s.recv_no_buffers += 1);
            self.recv.grow();
        } else if res < 0 && res != -libc::ECANCELED {
            self.bump(|s| s.recv_errors += 1);
            out.push(Completion::RecvError {
                sock: SockId(idx),
                error: Errno(-res),
            });
        }
    }

    /// A readiness poll of a mapped socket fired; `wait` reads the ring itself after
    /// draining.
    pub(super) fn on_poll(&self, idx: u32) {
        if let Some(s) = self.sockets.get(idx as usize) {
            s.armed.set(false);
        }
    }
}
