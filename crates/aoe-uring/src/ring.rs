//! `Ring`: one io_uring instance per thread, moving frames and file blocks between the
//! kernel and the caller's sans-IO state machines.

use std::cell::{Cell, RefCell};
use std::io;
use std::ops::Range;
use std::os::fd::{AsFd, AsRawFd};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use io_uring::{cqueue, opcode, squeue, types, IoUring};

use crate::barrier::Barriers;
use crate::packet::PacketSocket;
use crate::pools::{BufferPool, ProvidedBuffers, Slab};
use crate::region::PAGE;
use crate::types::{
    Completion, Errno, FileId, IoBuf, IoBuffer, MappedFrame, RecvBuf, RingStats, SendSlot, SockId,
};
use crate::JUMBO_FRAME;

/// Every ring gets a distinct id so tokens from one ring are refused by another.
static NEXT_RING_ID: AtomicU32 = AtomicU32::new(1);

/// The provided-buffer group id used by each ring (each ring has its own group table).
const RECV_GROUP: u16 = 0;
// Registered-buffer table: receive buffers, send slots, then I/O buffers (if any).
const RECV_BUF_INDEX: u16 = 0;
const SEND_BUF_INDEX: u16 = 1;
const IO_BUF_INDEX: u16 = 2;

// user_data = kind << 56 | index.
const KIND_RECV: u64 = 1;
const KIND_SEND: u64 = 2;
const KIND_OP: u64 = 3;
const KIND_CANCEL: u64 = 4;
const KIND_WAKE: u64 = 5;
const KIND_POLL: u64 = 6;

fn encode(kind: u64, idx: u32) -> u64 {
    (kind << 56) | u64::from(idx)
}

fn decode(user_data: u64) -> (u64, u32) {
    (user_data >> 56, user_data as u32)
}

/// Sizes of everything a [`Ring`] preallocates. All memory is allocated in [`Ring::new`];
/// nothing is allocated per frame afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingConfig {
    /// Submission queue entries (the completion queue gets 4×). Default 1024.
    pub sq_entries: u32,
    /// Provided receive buffers shared by all sockets of the ring; power of two,
    /// ≤ 32768. Default 1024.
    pub recv_buffers: u16,
    /// Bytes per receive buffer; frames longer than this are truncated. Default 9216.
    pub recv_buffer_size: u32,
    /// Send slots. Default 512.
    pub send_slots: u32,
    /// Bytes per send slot. Default 9216.
    pub send_slot_size: u32,
    /// Registered 4096-aligned I/O buffers for file/block I/O. Default 0 (none).
    pub io_buffers: u32,
    /// Bytes per I/O buffer, rounded up to a multiple of 4096. Default 128 KiB.
    pub io_buffer_size: usize,
    /// If set, every receive buffer and send slot is placed so that its byte at this
    /// offset is 4096-aligned, so a frame's payload (after the protocol headers) can go
    /// to or from an O_DIRECT file in place. For AoE ATA frames: 36 (Ethernet 14, AoE 10,
    /// ATA 12). Costs memory: each buffer then takes a whole number of pages.
    /// Default `None` (64-byte alignment).
    pub align_payload_at: Option<usize>,
    /// Opt in to IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN: completions are processed
    /// only inside `wait`, in batches (cheaper per frame). The ring is created disabled
    /// and enabled by the first `wait`/`submit`; from then on **every** call that enters
    /// the kernel or registers something (`wait`, `submit`, `add_socket`,
    /// `register_file`, dropping the Ring) must happen on that thread, or fails with
    /// EEXIST (a Ring dropped on another thread leaks its buffers rather than free them
    /// under the kernel). Default `false`.
    pub single_issuer: bool,
    /// Fixed-file table size (sockets + files). Default 64.
    pub max_files: u32,
    /// File operations and timers in flight at once. Default 1024.
    pub max_ops: u32,
}

impl Default for RingConfig {
    fn default() -> Self {
        RingConfig {
            sq_entries: 1024,
            recv_buffers: 1024,
            recv_buffer_size: JUMBO_FRAME as u32,
            send_slots: 512,
            send_slot_size: JUMBO_FRAME as u32,
            io_buffers: 0,
            io_buffer_size: 128 << 10,
            align_payload_at: None,
            single_issuer: false,
            max_files: 64,
            max_ops: 1024,
        }
    }
}

struct SocketEntry {
    sock: PacketSocket,
    fixed: u32,
    /// Multishot receive armed (sockets without a mapped ring), or readiness poll armed
    /// (sockets with one).
    armed: Cell<bool>,
    /// Next slot of the mapped receive ring to look at (sockets with one).
    rx_pos: Cell<u32>,
    /// Slots of the mapped ring lent to the caller. Their status is still USER, so
    /// without this a reader that came all the way round would hand them out again.
    rx_lent: Box<[Cell<bool>]>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum OpKind {
    Free,
    Read,
    Write,
    Sync,
    Barrier,
    Timer,
}

struct Op {
    kind: OpKind,
    user: u64,
    buf: Option<IoBuffer>,
    file: u32,
    epoch: u64,
    ts: types::Timespec,
}

struct Ops {
    // Never grows past its initial capacity, so `ts` addresses stay put while in flight.
    slots: Vec<Op>,
    free: Vec<u32>,
}

/// One io_uring instance with its sockets, receive buffers, send slots, I/O buffers and
/// files. Use one per thread (it is `Send`, not `Sync`).
///
/// Methods used per frame take `&self`, so the caller can hold a received frame
/// ([`Ring::frame`]) while filling a send slot ([`Ring::slot_mut`]) for the reply.
/// Queued work reaches the kernel in one `io_uring_enter` at the next [`Ring::wait`] or
/// [`Ring::submit`] (or earlier, if the submission queue fills).
pub struct Ring {
    // Declared first so the ring fd closes before the memory below is unmapped.
    uring: IoUring,
    id: u32,
    sockets: Vec<SocketEntry>,
    files_used: RefCell<Vec<bool>>,
    barriers: RefCell<Vec<Barriers>>,
    recv: ProvidedBuffers,
    send: BufferPool,
    send_meta: Box<[Cell<(u32, u32, u64)>]>, // (socket index, length, user) per slot
    io: BufferPool,
    ops: RefCell<Ops>,
    // Barrier syncs whose writes are done but that could not be queued yet.
    deferred_syncs: RefCell<Vec<(u32, u64, bool)>>,
    wake: Option<WakeState>,
    // Single-issuer rings start disabled; the first submitting thread enables them.
    disabled: Cell<bool>,
    in_flight: Cell<u64>,
    // Sends queued since the last io_uring_enter: each posts its completion during
    // that enter, so a wait that should sleep until something else happens asks for
    // this many more.
    queued_sends: Cell<u32>,
    stats: Cell<RingStats>,
    cqes: Vec<cqueue::Entry>,
    // The kernel honours a minimum wait (IORING_FEAT_MIN_TIMEOUT, Linux ≥ 6.12).
    min_wait: bool,
}

/// The ring's side of a [`RingWaker`]: an eventfd with a read always in flight.
struct WakeState {
    fd: Arc<OwnedFd>,
    buf: WakeBuf,
    armed: Cell<bool>,
}

/// The 8-byte counter the eventfd read lands in; freed in Drop only once no read is in
/// flight (leaked otherwise).
struct WakeBuf(*mut u64);

// SAFETY: the pointer is an owned heap allocation used only by the thread that owns the
// Ring (and the kernel); moving the Ring to another thread moves sole ownership with it.
unsafe impl Send for WakeBuf {}

/// Wakes a [`Ring`] blocked in [`Ring::wait`] from another thread: the ring then reports
/// [`Completion::Woken`]. Cheap to clone; wakes coalesce. Use it after sending a message
/// on a channel the ring's thread reads.
#[derive(Debug, Clone)]
pub struct RingWaker {
    fd: Arc<OwnedFd>,
}

impl RingWaker {
    /// Wake the ring (one eventfd write; never blocks).
    pub fn wake(&self) -> io::Result<()> {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to an eventfd we own a reference to.
        let n = unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
        if n < 0 {
            let err = io::Error::last_os_error();
            // EAGAIN: the counter is saturated, so a wake is already pending.
            if err.kind() != io::ErrorKind::WouldBlock {
                return Err(err);
            }
        }
        Ok(())
    }
}

impl Ring {
    /// Create a ring with [`RingConfig::default`].
    pub fn new() -> io::Result<Self> {
        Self::with_config(&RingConfig::default())
    }

    /// Create a ring, allocate and register all its memory.
    pub fn with_config(cfg: &RingConfig) -> io::Result<Self> {
        if cfg.sq_entries == 0 || cfg.max_files == 0 || cfg.max_ops == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "sq_entries, max_files and max_ops must be > 0",
            ));
        }
        if cfg.send_slot_size == 0 || cfg.recv_buffer_size == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "buffer sizes must be > 0",
            ));
        }
        // io_uring registers each pool as one buffer, and one buffer may be at most 1 GiB.
        // Checked before anything is allocated (pools are populated eagerly).
        let worst = |count: u64, size: u64| count * (size.div_ceil(PAGE as u64) + 1) * PAGE as u64;
        if worst(u64::from(cfg.recv_buffers), u64::from(cfg.recv_buffer_size)) > 1 << 30
            || worst(u64::from(cfg.send_slots), u64::from(cfg.send_slot_size)) > 1 << 30
            || worst(u64::from(cfg.io_buffers), cfg.io_buffer_size as u64) > 1 << 30
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "each buffer pool (receive, send, I/O) must stay within 1 GiB (io_uring limit)",
            ));
        }
        let mut builder = IoUring::builder();
        builder
            .setup_cqsize(cfg.sq_entries.saturating_mul(4))
            .setup_submit_all();
        if cfg.single_issuer {
            builder
                .setup_single_issuer()
                .setup_defer_taskrun()
                .setup_r_disabled();
        } else {
            builder.setup_coop_taskrun();
        }
        let uring = builder
            .build(cfg.sq_entries)
            .map_err(|e| io::Error::new(e.kind(), format!("io_uring_setup: {e}")))?;
        let min_wait = uring.params().is_feature_min_timeout();
        let recv =
            ProvidedBuffers::new(cfg.recv_buffers, cfg.recv_buffer_size, cfg.align_payload_at)?;
        // SAFETY: the ring memory is a page-aligned Region of `entries` 16-byte entries,
        // owned by `recv`, which lives in the Ring and is unmapped only after every request
        // has completed (see Drop), or leaked.
        unsafe {
            uring
                .submitter()
                .register_buf_ring_with_flags(recv.ring_addr(), recv.entries(), RECV_GROUP, 0)
                .map_err(|e| {
                    io::Error::new(e.kind(), format!("register provided-buffer ring: {e}"))
                })?;
        }
        let send = BufferPool::new(Slab::new(
            cfg.send_slots,
            cfg.send_slot_size as usize,
            64,
            cfg.align_payload_at,
        )?);
        let io = BufferPool::new(Slab::new(
            cfg.io_buffers,
            cfg.io_buffer_size.max(1).div_ceil(PAGE) * PAGE,
            PAGE,
            None,
        )?);
        let mut iovs = vec![recv.slab().iovec(), send.slab().iovec()];
        if iovs
            .iter()
            .chain([&io.slab().iovec()])
            .any(|v| v.iov_len > 1 << 30)
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "each buffer pool (receive, send, I/O) must stay within 1 GiB (io_uring limit)",
            ));
        }
        if io.count() > 0 {
            iovs.push(io.slab().iovec());
        }
        // SAFETY: each iovec covers exactly one Region owned by the Ring, which stays
        // mapped until every request has completed (see Drop), or is leaked.
        unsafe {
            uring
                .submitter()
                .register_buffers(&iovs)
                .map_err(|e| io::Error::new(e.kind(), format!("register buffers: {e}")))?;
        }
        uring
            .submitter()
            .register_files_sparse(cfg.max_files)
            .map_err(|e| io::Error::new(e.kind(), format!("register file table: {e}")))?;
        let mut slots = Vec::with_capacity(cfg.max_ops as usize);
        slots.extend((0..cfg.max_ops).map(|_| Op {
            kind: OpKind::Free,
            user: 0,
            buf: None,
            file: 0,
            epoch: 0,
            ts: types::Timespec::new(),
        }));
        Ok(Ring {
            uring,
            id: NEXT_RING_ID.fetch_add(1, Ordering::Relaxed),
            sockets: Vec::new(),
            files_used: RefCell::new(vec![false; cfg.max_files as usize]),
            barriers: RefCell::new((0..cfg.max_files).map(|_| Barriers::default()).collect()),
            recv,
            send_meta: (0..send.count()).map(|_| Cell::new((0, 0, 0))).collect(),
            send,
            io,
            ops: RefCell::new(Ops {
                slots,
                free: (0..cfg.max_ops).rev().collect(),
            }),
            deferred_syncs: RefCell::new(Vec::with_capacity(64)),
            wake: None,
            disabled: Cell::new(cfg.single_issuer),
            in_flight: Cell::new(0),
            queued_sends: Cell::new(0),
            stats: Cell::new(RingStats::default()),
            cqes: Vec::with_capacity(256),
            min_wait,
        })
    }

    // ---- sockets and frames -------------------------------------------------------

    /// Hand a socket to the ring: it is registered as a fixed file and a multishot
    /// receive is armed on it (submitted at the next `wait`/`submit`).
    ///
    /// A socket with a mapped receive ring ([`crate::SocketOptions::rx_ring_frames`])
    /// needs no receive request: `wait` reads its frames straight from the ring, and
    /// only when none are ready does it arm a one-shot readiness poll and sleep. Its
    /// frames come as [`Completion::Frame`] like any other; recycle them promptly,
    /// since a held frame is a ring slot the kernel cannot fill (and one held at the
    /// kernel's position keeps the socket readable, so `wait` does not sleep).
    pub fn add_socket(&mut self, sock: PacketSocket) -> io::Result<SockId> {
        let fixed = self.alloc_fixed(sock.as_raw_fd())?;
        let id = SockId(self.sockets.len() as u32);
        let mapped = sock.has_rx_ring();
        let rx_lent = (0..sock.rx_ring_frames())
            .map(|_| Cell::new(false))
            .collect();
        self.sockets.push(SocketEntry {
            sock,
            fixed,
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
        assert_eq!(
            buf.ring, self.id,
            "RecvBuf used with a ring that did not produce it"
        );
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

    /// Receive buffers posted to the kernel. Starts at 64 and grows each time the kernel
    /// runs out, up to [`RingConfig::recv_buffers`], so the buffers in use track the load.
    pub fn recv_buffers_posted(&self) -> usize {
        self.recv.posted() as usize
    }

    /// Receive buffers currently lent to the caller (not yet recycled).
    pub fn recv_buffers_lent(&self) -> usize {
        self.recv.lent_count() as usize
    }

    // ---- sends --------------------------------------------------------------------

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
        assert_eq!(
            slot.ring, self.id,
            "SendSlot used with a ring that did not produce it"
        );
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

    /// Queue the first `len` bytes of `slot` for sending on `sock`. The slot returns to
    /// the pool when [`Completion::SendDone`] (carrying `user`) is reported. On error the
    /// slot is released and nothing is sent.
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
        .user_data(encode(KIND_SEND, slot.idx));
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
    /// builds frames in place with [`Ring::slot_mut`]).
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

    // ---- files --------------------------------------------------------------------

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
        assert_eq!(
            buf.ring, self.id,
            "IoBuf used with a ring that did not produce it"
        );
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
        assert_eq!(
            buf.ring, self.id,
            "IoBuf used with a ring that did not produce it"
        );
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
    /// (IORING_OP_READ_FIXED). `buf` is an [`IoBuf`] or a [`SendSlot`] (reading a reply's
    /// payload straight into the frame to send). For O_DIRECT, `offset`, the length and
    /// the buffer address must be multiples of the device's logical block size (I/O
    /// buffers are page-aligned; for slots see [`RingConfig::align_payload_at`]). The
    /// buffer comes back in [`Completion::IoDone`]; on a submission error it is released.
    pub fn read_fixed(
        &self,
        file: FileId,
        buf: impl Into<IoBuffer>,
        range: Range<usize>,
        offset: u64,
        user: u64,
    ) -> io::Result<()> {
        self.rw_fixed(OpKind::Read, file, buf.into(), range, offset, user)
    }

    /// Queue a write of `buf[range]` at file `offset` (IORING_OP_WRITE_FIXED). `buf` may
    /// also be a received frame ([`RecvBuf`]): write a request's payload in place, then
    /// recycle it. Writes are counted for [`Ring::sync_after_writes`]. The buffer comes
    /// back in [`Completion::IoDone`]; on a submission error it is released/recycled.
    pub fn write_fixed(
        &self,
        file: FileId,
        buf: impl Into<IoBuffer>,
        range: Range<usize>,
        offset: u64,
        user: u64,
    ) -> io::Result<()> {
        self.rw_fixed(OpKind::Write, file, buf.into(), range, offset, user)
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

    /// Durability barrier: once every write to `file` submitted before this call has
    /// finished, run one fsync/fdatasync and report [`Completion::IoDone`] with `user`.
    /// Writes submitted later do not delay it. Acknowledge the batch's writes when this
    /// completes `Ok` — many writes, one sync.
    pub fn sync_after_writes(&self, file: FileId, datasync: bool, user: u64) -> io::Result<()> {
        self.check_file(file)?;
        self.barriers.borrow_mut()[file.0 as usize].add_barrier(user, datasync);
        self.issue_ready_barriers(file.0);
        Ok(())
    }

    // ---- timers -------------------------------------------------------------------

    /// Report [`Completion::Timer`] with `user` after `after` (IORING_OP_TIMEOUT).
    /// Most loops only need the `timeout` of [`Ring::wait`]; this is for extra deadlines.
    pub fn add_timer(&self, after: Duration, user: u64) -> io::Result<()> {
        let op = self.alloc_op(OpKind::Timer, user, None, 0)?;
        let ts_ptr = {
            let mut ops = self.ops.borrow_mut();
            let slot = &mut ops.slots[op as usize];
            slot.ts = types::Timespec::from(after);
            &slot.ts as *const types::Timespec
        };
        let sqe = opcode::Timeout::new(ts_ptr)
            .build()
            .user_data(encode(KIND_OP, op));
        // SAFETY: `ts_ptr` points into `ops.slots`, which never reallocates (fixed capacity)
        // and whose entry stays reserved until the CQE; the kernel copies the timespec
        // when it prepares the request.
        let r = unsafe { self.push(&sqe) };
        if r.is_err() {
            self.free_op(op);
        }
        r
    }

    // ---- cross-thread wake-up ------------------------------------------------------

    /// A handle other threads use to wake this ring (created on first call; every call
    /// returns a handle to the same eventfd).
    pub fn waker(&mut self) -> io::Result<RingWaker> {
        if let Some(w) = &self.wake {
            return Ok(RingWaker {
                fd: Arc::clone(&w.fd),
            });
        }
        // SAFETY: plain eventfd(2) call; the result is checked before use.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor owned by nobody else.
        let fd = Arc::new(unsafe { OwnedFd::from_raw_fd(raw) });
        self.wake = Some(WakeState {
            fd: Arc::clone(&fd),
            buf: WakeBuf(Box::into_raw(Box::new(0u64))),
            armed: Cell::new(false),
        });
        self.arm_wake()?;
        Ok(RingWaker { fd })
    }

    // ---- the loop -----------------------------------------------------------------

    /// Submit everything queued, wait until at least one completion is ready or
    /// `timeout` passes (`None`: no limit; `Some(ZERO)`: don't wait), and append all
    /// ready completions to `out`. Returns the time after waking — the data path's clock.
    /// The completions of the sends this call submits do not end the wait unless every
    /// send slot is taken: they come back with whatever does.
    pub fn wait(
        &mut self,
        timeout: Option<Duration>,
        out: &mut Vec<Completion>,
    ) -> io::Result<Instant> {
        self.wait_lingering(timeout, Duration::ZERO, out)
    }

    /// Like [`Ring::wait`], but a wait that has to sleep ends no sooner than `linger`
    /// after it began (unless `timeout` is shorter or the completion queue fills), so one
    /// wake-up harvests every reply that came meanwhile — interrupt coalescing for a
    /// caller that expects a stream of replies. The kernel's minimum wait does it (Linux
    /// ≥ 6.12, [`Ring::can_linger`]); older kernels wait as [`Ring::wait`] does. Frames
    /// already waiting end the call at once, as does a timer ([`Ring::add_timer`]) that
    /// fires; after `linger`, any completion does, this call's own sends included.
    pub fn wait_lingering(
        &mut self,
        timeout: Option<Duration>,
        linger: Duration,
        out: &mut Vec<Completion>,
    ) -> io::Result<Instant> {
        self.rearm_receives();
        self.retry_deferred_syncs();
        if self.wake.as_ref().is_some_and(|w| !w.armed.get()) {
            // Best effort: if the queue is full now, the next wait re-arms.
            let _ = self.arm_wake();
        }
        // Frames already in mapped rings: hand them over now and do not sleep; the
        // enter below only submits and reaps. Otherwise make sure a frame arriving
        // while we sleep wakes us.
        let mapped_ready = self.take_mapped(out) > 0;
        if !mapped_ready {
            self.arm_polls();
        }
        self.enable()?;
        let linger_us = if self.min_wait && timeout.is_none_or(|t| t > linger) {
            u32::try_from(linger.as_micros()).unwrap_or(u32::MAX)
        } else {
            0
        };
        let want = self.want(linger_us > 0);
        let res = match timeout {
            _ if mapped_ready => self.uring.submit(),
            Some(t) => {
                let ts = types::Timespec::from(t);
                let args = types::SubmitArgs::new()
                    .timespec(&ts)
                    .min_wait_usec(linger_us);
                self.uring.submitter().submit_with_args(want, &args)
            }
            None if linger_us > 0 => {
                let args = types::SubmitArgs::new().min_wait_usec(linger_us);
                self.uring.submitter().submit_with_args(want, &args)
            }
            None => self.uring.submit_and_wait(want),
        };
        self.entered();
        match res {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY | libc::EAGAIN)
                ) => {}
            Err(e) => return Err(e),
        }
        self.drain(out);
        self.take_mapped(out);
        Ok(Instant::now())
    }

    /// Completions a wait asks for. A lingering wait asks for a full queue's worth, so
    /// that the minimum wait, not the first completion, ends the sleep. A plain one
    /// must not count the sends it submits: a send completes within the enter that
    /// submits it, which would end the wait at once and cost a second enter per reply.
    /// Unless every send slot is taken (and a caller may be waiting for one to free),
    /// it asks for one completion beyond this enter's sends.
    fn want(&self, lingering: bool) -> usize {
        if lingering {
            self.uring.params().cq_entries() as usize
        } else if self.send.free_count() > 0 {
            1 + self.queued_sends.get() as usize
        } else {
            1
        }
    }

    /// Book-keeping for every io_uring_enter: the sends queued so far have been handed
    /// to the kernel.
    fn entered(&self) {
        self.queued_sends.set(0);
        self.bump(|s| s.enters += 1);
    }

    /// True if [`Ring::wait_lingering`] can linger on this kernel.
    pub fn can_linger(&self) -> bool {
        self.min_wait
    }

    /// Like [`Ring::wait`] with a deadline instead of a duration.
    pub fn wait_until(
        &mut self,
        deadline: Option<Instant>,
        out: &mut Vec<Completion>,
    ) -> io::Result<Instant> {
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        self.wait(timeout, out)
    }

    /// Submit everything queued without waiting.
    pub fn submit(&self) -> io::Result<()> {
        self.enable()?;
        self.entered();
        self.uring.submit().map(drop)
    }

    /// Counters for this ring.
    pub fn stats(&self) -> RingStats {
        self.stats.get()
    }

    /// Requests the kernel still owns (multishot receives count once).
    pub fn in_flight(&self) -> u64 {
        self.in_flight.get()
    }

    // ---- internals ----------------------------------------------------------------

    /// Enable a ring created disabled (single issuer): the calling thread becomes its
    /// only submitter.
    fn enable(&self) -> io::Result<()> {
        if self.disabled.get() {
            self.uring
                .submitter()
                .register_enable_rings()
                .map_err(|e| io::Error::new(e.kind(), format!("enable io_uring: {e}")))?;
            self.disabled.set(false);
        }
        Ok(())
    }

    fn bump(&self, f: impl FnOnce(&mut RingStats)) {
        let mut s = self.stats.get();
        f(&mut s);
        self.stats.set(s);
    }

    /// Push one SQE, submitting first if the queue is full.
    ///
    /// # Safety
    /// Every buffer and pointer the SQE names must stay valid until its completion.
    unsafe fn push(&self, sqe: &squeue::Entry) -> io::Result<()> {
        for _ in 0..2 {
            // SAFETY: the Ring is !Sync and no SubmissionQueue handle outlives a method
            // call, so this is the only live submission-queue handle.
            let mut sq = unsafe { self.uring.submission_shared() };
            // SAFETY: the caller guarantees the SQE's buffers outlive the request.
            if unsafe { sq.push(sqe) }.is_ok() {
                sq.sync();
                self.in_flight.set(self.in_flight.get() + 1);
                return Ok(());
            }
            drop(sq);
            self.enable()?;
            self.entered();
            match self.uring.submit() {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EBUSY | libc::EAGAIN | libc::EINTR)
                    ) => {}
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            "io_uring submission queue full; call Ring::wait",
        ))
    }

    fn alloc_fixed(&self, fd: i32) -> io::Result<u32> {
        let mut used = self.files_used.borrow_mut();
        let slot = used.iter().position(|u| !u).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::OutOfMemory,
                "fixed-file table full (raise max_files)",
            )
        })?;
        self.uring
            .submitter()
            .register_files_update(slot as u32, &[fd])?;
        used[slot] = true;
        self.barriers.borrow_mut()[slot] = Barriers::default();
        Ok(slot as u32)
    }

    fn check_file(&self, file: FileId) -> io::Result<()> {
        if self.files_used.borrow().get(file.0 as usize).copied() == Some(true) {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{file:?} is not registered"),
            ))
        }
    }

    /// Append the frames waiting in the mapped receive rings; returns how many.
    fn take_mapped(&self, out: &mut Vec<Completion>) -> usize {
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
    fn arm_polls(&self) {
        for (idx, entry) in self.sockets.iter().enumerate() {
            if entry.sock.has_rx_ring() && !entry.armed.get() {
                let sqe = opcode::PollAdd::new(types::Fixed(entry.fixed), libc::POLLIN as u32)
                    .build()
                    .user_data(encode(KIND_POLL, idx as u32));
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
            .user_data(encode(KIND_RECV, idx));
        // SAFETY: the receive writes only into provided buffers, which live as long as
        // the ring (see `with_config`).
        unsafe { self.push(&sqe)? };
        entry.armed.set(true);
        Ok(())
    }

    /// Re-arm receives the kernel ended. Best effort: a full submission queue leaves
    /// them for the next `wait`.
    fn rearm_receives(&self) {
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

    fn arm_wake(&self) -> io::Result<()> {
        let Some(w) = &self.wake else { return Ok(()) };
        let sqe = opcode::Read::new(types::Fd(w.fd.as_raw_fd()), w.buf.0.cast::<u8>(), 8)
            .build()
            .user_data(encode(KIND_WAKE, 0));
        // SAFETY: `w.buf` is a live 8-byte heap allocation freed only when no read is in
        // flight (Drop); the eventfd is kept open by `w.fd` for the ring's life.
        unsafe { self.push(&sqe)? };
        w.armed.set(true);
        Ok(())
    }

    fn alloc_op(
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

    fn free_op(&self, op: u32) -> Op {
        let mut ops = self.ops.borrow_mut();
        let slot = &mut ops.slots[op as usize];
        let taken = Op {
            kind: slot.kind,
            user: slot.user,
            buf: slot.buf.take(),
            file: slot.file,
            epoch: slot.epoch,
            ts: types::Timespec::new(),
        };
        slot.kind = OpKind::Free;
        ops.free.push(op);
        taken
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

    fn rw_fixed(
        &self,
        kind: OpKind,
        file: FileId,
        buf: IoBuffer,
        range: Range<usize>,
        offset: u64,
        user: u64,
    ) -> io::Result<()> {
        let Some((base, cap, buf_index)) = self.locate(&buf) else {
            if matches!(&buf, IoBuffer::Frame(f) if f.ring == self.id && f.mapped.is_some()) {
                // Ours, but a mapped ring slot is no registered buffer: give it back.
                self.release(buf);
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "frames from a mapped receive ring cannot be used for file I/O",
                ));
            }
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "buffer token belongs to another ring",
            ));
        };
        let reads_into_frame = kind == OpKind::Read && matches!(buf, IoBuffer::Frame(_));
        let bad_range =
            range.start > range.end || range.end > cap || range.len() > u32::MAX as usize;
        if bad_range || reads_into_frame || self.check_file(file).is_err() {
            self.release(buf);
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad file {file:?}, range {range:?} (buffer size {cap}) or read into a received frame"),
            ));
        }
        // SAFETY: `range` lies inside the buffer (checked above).
        let ptr = unsafe { base.add(range.start) };
        let len = range.len() as u32;
        let op = self.alloc_op(kind, user, Some(buf), file.0)?;
        let fd = types::Fixed(file.0);
        let sqe = match kind {
            OpKind::Read => opcode::ReadFixed::new(fd, ptr, len, buf_index)
                .offset(offset)
                .build(),
            _ => opcode::WriteFixed::new(fd, ptr, len, buf_index)
                .offset(offset)
                .build(),
        }
        .user_data(encode(KIND_OP, op));
        if kind == OpKind::Write {
            let epoch = self.barriers.borrow_mut()[file.0 as usize].write_started();
            self.ops.borrow_mut().slots[op as usize].epoch = epoch;
        }
        // SAFETY: the buffer token is parked in the op slot until the CQE, so the caller
        // cannot touch the memory meanwhile; the registered regions outlive all requests.
        let r = unsafe { self.push(&sqe) };
        if r.is_err() {
            let dead = self.free_op(op);
            if kind == OpKind::Write {
                self.barriers.borrow_mut()[file.0 as usize].write_done(dead.epoch);
            }
            if let Some(b) = dead.buf {
                self.release(b);
            }
        }
        r
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
            .user_data(encode(KIND_OP, op));
        // SAFETY: fsync names no memory.
        let r = unsafe { self.push(&sqe) };
        if r.is_err() {
            self.free_op(op);
        }
        r
    }

    /// Queue the syncs of every barrier on `file` whose writes have all finished. A sync
    /// that cannot be queued now (no op slot, full queue) is retried at the next `wait`.
    fn issue_ready_barriers(&self, file: u32) {
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

    fn retry_deferred_syncs(&self) {
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

    fn drain(&mut self, out: &mut Vec<Completion>) {
        loop {
            self.cqes.clear();
            {
                let mut cq = self.uring.completion();
                let room = self.cqes.capacity();
                self.cqes.extend(cq.by_ref().take(room));
            }
            if self.cqes.is_empty() {
                return;
            }
            let batch = std::mem::take(&mut self.cqes);
            for cqe in &batch {
                self.handle(cqe, out);
            }
            self.cqes = batch;
        }
    }

    fn handle(&self, cqe: &cqueue::Entry, out: &mut Vec<Completion>) {
        let (kind, idx) = decode(cqe.user_data());
        let res = cqe.result();
        let more = cqueue::more(cqe.flags());
        if !more || kind != KIND_RECV {
            self.in_flight.set(self.in_flight.get().saturating_sub(1));
        }
        match kind {
            KIND_RECV => self.handle_recv(idx, res, cqe.flags(), more, out),
            KIND_SEND => {
                let (sock, len, user) = self.send_meta[idx as usize].get();
                self.send.put(idx);
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
            KIND_OP => self.handle_op(idx, res, out),
            // Readiness only: `wait` reads the ring itself after draining.
            KIND_POLL => {
                if let Some(s) = self.sockets.get(idx as usize) {
                    s.armed.set(false);
                }
            }
            KIND_WAKE => {
                if let Some(w) = &self.wake {
                    w.armed.set(false);
                }
                if res != -libc::ECANCELED {
                    self.bump(|s| s.wakeups += 1);
                    out.push(Completion::Woken);
                }
            }
            _ => {}
        }
    }

    fn handle_recv(&self, idx: u32, res: i32, flags: u32, more: bool, out: &mut Vec<Completion>) {
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

    fn handle_op(&self, idx: u32, res: i32, out: &mut Vec<Completion>) {
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
                out.push(Completion::IoDone {
                    user: op.user,
                    result,
                    buf: op.buf,
                });
                if op.kind == OpKind::Write {
                    self.barriers.borrow_mut()[op.file as usize].write_done(op.epoch);
                    self.issue_ready_barriers(op.file);
                }
            }
        }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        if self.disabled.get() {
            // Never enabled: nothing reached the kernel, so it owns none of our memory.
            self.free_wake_buf();
            return;
        }
        // Cancel everything, then reap until the kernel owns nothing of ours. Only then
        // may the buffer memory be unmapped; if that cannot be confirmed, leak it.
        let _ = self.uring.submitter().register_sync_cancel(
            Some(types::Timespec::new().sec(1)),
            types::CancelBuilder::any(),
        );
        let cancel = opcode::AsyncCancel2::new(types::CancelBuilder::any())
            .build()
            .user_data(encode(KIND_CANCEL, 0));
        // SAFETY: a cancel request names no memory.
        let _ = unsafe { self.push(&cancel) };
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut sink = Vec::new();
        while self.in_flight.get() > 0 && Instant::now() < deadline {
            let ts = types::Timespec::new().nsec(100_000_000);
            let args = types::SubmitArgs::new().timespec(&ts);
            match self.uring.submitter().submit_with_args(1, &args) {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                    ) => {}
                // E.g. EEXIST: a single-issuer ring dropped on a foreign thread.
                Err(_) => break,
            }
            self.drain(&mut sink);
            sink.clear();
        }
        if self.in_flight.get() > 0 {
            self.recv.leak();
            self.send.leak();
            self.io.leak();
        } else {
            self.free_wake_buf();
        }
    }
}

impl Ring {
    fn free_wake_buf(&mut self) {
        if let Some(w) = self.wake.take() {
            // SAFETY: allocated by Box::into_raw in `waker`; the caller has established
            // that no read into it is in flight.
            drop(unsafe { Box::from_raw(w.buf.0) });
        }
    }
}
