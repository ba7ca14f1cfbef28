//! `Ring`: one io_uring instance per thread, moving frames and file blocks between the
//! kernel and the caller's sans-IO state machines.

use std::cell::{Cell, RefCell};
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use io_uring::{cqueue, opcode, squeue, types, IoUring};

use crate::barrier::Barriers;
use crate::pools::{BufferPool, ProvidedBuffers, Slab};
use crate::region::PAGE;
use crate::types::{Completion, RingStats};
use crate::JUMBO_FRAME;

mod files;
mod ops;
mod owner;
mod sends;
mod sockets;
mod vectored;
mod waits;

use ops::Ops;
use owner::Owner;
use sockets::SocketEntry;
pub use vectored::MAX_SEGMENTS;
pub use waits::RingWaker;
use waits::WakeState;

/// Every ring gets a distinct id so tokens from one ring are refused by another.
static NEXT_RING_ID: AtomicU32 = AtomicU32::new(1);

/// The provided-buffer group id used by each ring (each ring has its own group table).
const RECV_GROUP: u16 = 0;
// Registered-buffer table: receive buffers, send slots, then I/O buffers (if any).
const RECV_BUF_INDEX: u16 = 0;
const SEND_BUF_INDEX: u16 = 1;
const IO_BUF_INDEX: u16 = 2;

/// Sizes of everything a [`Ring`](crate::Ring) preallocates. All memory is allocated in
/// [`Ring::new`](crate::Ring::new); nothing is allocated per frame afterwards.
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

/// One io_uring instance with its sockets, receive buffers, send slots, I/O buffers and
/// files. Use one per thread (it is `Send`, not `Sync`).
///
/// Methods used per frame take `&self`, so the caller can hold a received frame
/// ([`Ring::frame`](crate::Ring::frame)) while filling a send slot
/// ([`Ring::slot_mut`](crate::Ring::slot_mut)) for the reply. Queued work reaches the kernel in one
/// `io_uring_enter` at the next [`Ring::wait`](crate::Ring::wait) or
/// [`Ring::submit`](crate::Ring::submit) (or earlier, if the submission queue fills).
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
    // The kernel has READV_FIXED/WRITEV_FIXED (Linux ≥ 6.15).
    vectored_fixed: bool,
}

impl Ring {
    /// Create a ring with [`RingConfig::default`](crate::RingConfig::default).
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
        let mut probe = io_uring::Probe::new();
        let vectored_fixed = uring.submitter().register_probe(&mut probe).is_ok()
            && probe.is_supported(opcode::ReadvFixed::CODE)
            && probe.is_supported(opcode::WritevFixed::CODE);
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
            ops: RefCell::new(Ops::new(cfg.max_ops)),
            deferred_syncs: RefCell::new(Vec::with_capacity(64)),
            wake: None,
            disabled: Cell::new(cfg.single_issuer),
            in_flight: Cell::new(0),
            queued_sends: Cell::new(0),
            stats: Cell::new(RingStats::default()),
            cqes: Vec::with_capacity(256),
            min_wait,
            vectored_fixed,
        })
    }

    /// Counters for this ring.
    pub fn stats(&self) -> RingStats {
        self.stats.get()
    }

    /// Requests the kernel still owns (multishot receives count once).
    pub fn in_flight(&self) -> u64 {
        self.in_flight.get()
    }

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

    /// Panics unless the token comes from this ring (tokens are never valid elsewhere:
    /// their index names another ring's memory).
    #[track_caller]
    fn assert_mine(&self, token_ring: u32, token: &str) {
        assert!(
            token_ring == self.id,
            "{token} used with a ring that did not produce it"
        );
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
            enter_result(self.uring.submit())?;
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

    /// Routes one completion to the part of the ring that owns its request.
    fn handle(&self, cqe: &cqueue::Entry, out: &mut Vec<Completion>) {
        let owner = Owner::of(cqe.user_data());
        let (res, flags) = (cqe.result(), cqe.flags());
        let more = cqueue::more(flags);
        // A multishot receive stays in flight while the kernel says more will come.
        if !(more && matches!(owner, Some(Owner::Recv(_)))) {
            self.in_flight.set(self.in_flight.get().saturating_sub(1));
        }
        match owner {
            Some(Owner::Recv(sock)) => self.on_recv(sock, res, flags, more, out),
            Some(Owner::Poll(sock)) => self.on_poll(sock),
            Some(Owner::Send(slot)) => self.on_send(slot, res, out),
            Some(Owner::Kick(sock)) => self.on_kick(sock, res, out),
            Some(Owner::Op(op)) => self.on_op(op, res, out),
            Some(Owner::Wake) => self.on_wake(res, out),
            Some(Owner::Cancel) | None => {}
        }
    }
}

/// The result of an io_uring_enter, with what only means "enter again later" as `Ok`:
/// the wait timed out (ETIME), a signal came (EINTR), or the completion queue or the
/// kernel's request memory is full (EBUSY, EAGAIN; reaping frees them).
fn enter_result(res: io::Result<usize>) -> io::Result<()> {
    match res {
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ETIME | libc::EINTR | libc::EBUSY | libc::EAGAIN)
            ) =>
        {
            Ok(())
        }
        r => r.map(drop),
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
            .user_data(Owner::Cancel.user_data());
        // SAFETY: a cancel request names no memory.
        let _ = unsafe { self.push(&cancel) };
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut sink = Vec::new();
        while self.in_flight.get() > 0 && Instant::now() < deadline {
            let ts = types::Timespec::new().nsec(100_000_000);
            let args = types::SubmitArgs::new().timespec(&ts);
            // An error here is e.g. EEXIST: a single-issuer ring dropped on a foreign
            // thread.
            if enter_result(self.uring.submitter().submit_with_args(1, &args)).is_err() {
                break;
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
