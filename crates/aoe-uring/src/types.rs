//! Handles, tokens and completion events that cross the runtime's API.

use std::fmt;
use std::io;
use std::ops::Range;

/// A socket registered with one [`crate::Ring`] (index in that ring).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SockId(pub(crate) u32);

impl SockId {
    /// Index of the socket in its ring, in registration order (0, 1, …).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A file or block device registered with one [`crate::Ring`] (its fixed-file slot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub(crate) u32);

/// Which way [`Ring::file_io`](crate::Ring::file_io) moves the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileOp {
    /// From the file into the buffer.
    Read,
    /// From the buffer into the file.
    Write,
    /// From the buffer into the file, durable when it completes (`RWF_DSYNC`:
    /// the write and its data sync in one request, as an `O_DSYNC` `pwrite`)
    /// — for a write with no others to share a sync with.
    DurableWrite,
}

/// A received frame, lent to the caller. Read it with [`crate::Ring::frame`]; give it back
/// with [`crate::Ring::recycle`] so the kernel can reuse the buffer. Holding many of these
/// starves the receive path (the ring then reports `recv_no_buffers`).
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a RecvBuf must be given back with Ring::recycle"]
pub struct RecvBuf {
    pub(crate) ring: u32,
    pub(crate) bid: u16,
    pub(crate) len: u32,
    /// Set for a frame in a socket's mapped receive ring (then `bid` is unused).
    pub(crate) mapped: Option<MappedFrame>,
}

/// Where a frame from a mapped receive ring lies: socket index, slot, byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MappedFrame {
    pub(crate) sock: u32,
    pub(crate) slot: u32,
    pub(crate) offset: usize,
}

impl RecvBuf {
    /// Length of the frame in bytes.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// True for a zero-length frame (never produced by AF_PACKET, kept for clippy's sake).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Buffer id inside the provided-buffer ring, or the slot (mod 2^16) in a socket's
    /// mapped receive ring (for diagnostics).
    pub fn id(&self) -> u16 {
        match self.mapped {
            Some(m) => m.slot as u16,
            None => self.bid,
        }
    }
}

/// A preallocated send buffer, owned by the caller until passed to
/// [`crate::Ring::submit_send`] (or returned with [`crate::Ring::release_slot`]).
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a SendSlot must be sent or released"]
pub struct SendSlot {
    pub(crate) ring: u32,
    pub(crate) idx: u32,
}

impl SendSlot {
    /// Index of the slot (for diagnostics).
    pub fn index(&self) -> usize {
        self.idx as usize
    }
}

/// A registered, 4096-byte-aligned I/O buffer (usable with O_DIRECT), owned by the caller
/// except while a read or write using it is in flight; the completion hands it back.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "an IoBuf must be used in an I/O or released"]
pub struct IoBuf {
    pub(crate) ring: u32,
    pub(crate) idx: u32,
}

impl IoBuf {
    /// Index of the buffer (for diagnostics).
    pub fn index(&self) -> usize {
        self.idx as usize
    }
}

/// A buffer handed to a file read or write: a registered I/O buffer, a send slot (read a
/// reply's payload straight into it, then send it), or a received frame (write a
/// request's payload straight from it, then recycle it). The completion hands it back.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a buffer must be used, released or recycled"]
pub enum IoBuffer {
    /// A registered I/O buffer from [`crate::Ring::io_buf`].
    Io(IoBuf),
    /// A send slot from [`crate::Ring::send_slot`].
    Slot(SendSlot),
    /// A received frame (writes only).
    Frame(RecvBuf),
}

impl IoBuffer {
    /// The I/O buffer, if this is one.
    pub fn into_io_buf(self) -> Option<IoBuf> {
        match self {
            IoBuffer::Io(b) => Some(b),
            _ => None,
        }
    }

    /// The send slot, if this is one.
    pub fn into_slot(self) -> Option<SendSlot> {
        match self {
            IoBuffer::Slot(s) => Some(s),
            _ => None,
        }
    }

    /// The received frame, if this is one.
    pub fn into_frame(self) -> Option<RecvBuf> {
        match self {
            IoBuffer::Frame(f) => Some(f),
            _ => None,
        }
    }
}

impl From<IoBuf> for IoBuffer {
    fn from(b: IoBuf) -> Self {
        IoBuffer::Io(b)
    }
}

impl From<SendSlot> for IoBuffer {
    fn from(s: SendSlot) -> Self {
        IoBuffer::Slot(s)
    }
}

impl From<RecvBuf> for IoBuffer {
    fn from(f: RecvBuf) -> Self {
        IoBuffer::Frame(f)
    }
}

/// One buffer of a vectored file read or write
/// ([`Ring::file_io_vectored`](crate::Ring::file_io_vectored)): `buf[range]` moves
/// to or from the file bytes that follow the previous segment's, and `user` names
/// this segment's own [`Completion::IoDone`].
#[derive(Debug, PartialEq, Eq)]
pub struct Segment {
    /// The buffer (given back in this segment's completion).
    pub buf: IoBuffer,
    /// The bytes of `buf` read into or written from.
    pub range: Range<usize>,
    /// The caller's token for this segment's completion.
    pub user: u64,
}

/// A positive Linux errno value from a failed operation.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

impl Errno {
    /// The equivalent `std::io::Error`.
    pub fn to_io_error(self) -> io::Error {
        io::Error::from_raw_os_error(self.0)
    }

    /// ENODEV or ENXIO: the device behind the file is gone (unplugged, detached).
    pub fn is_device_gone(self) -> bool {
        self.0 == libc::ENODEV || self.0 == libc::ENXIO
    }

    pub(crate) fn result(res: i32) -> Result<usize, Errno> {
        if res < 0 {
            Err(Errno(-res))
        } else {
            Ok(res as usize)
        }
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Errno({}: {})", self.0, self.to_io_error())
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.to_io_error(), f)
    }
}

impl std::error::Error for Errno {}

impl From<Errno> for io::Error {
    fn from(e: Errno) -> io::Error {
        e.to_io_error()
    }
}

/// One event out of [`crate::Ring::wait`]. Non-exhaustive: keep a `_ => {}` arm.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Completion {
    /// A frame arrived on `sock`. Read it with [`crate::Ring::frame`], then
    /// [`crate::Ring::recycle`] the buffer.
    Frame {
        /// Socket it arrived on.
        sock: SockId,
        /// The frame's buffer, lent until recycled.
        buf: RecvBuf,
    },
    /// The multishot receive on `sock` failed with something other than "no buffers";
    /// the runtime re-arms it on the next `wait`.
    RecvError {
        /// Socket that failed.
        sock: SockId,
        /// The error.
        error: Errno,
    },
    /// A send finished; its slot is back in the pool. `Ok(n)` with `n` smaller than the
    /// length submitted is a short send (counted in [`RingStats::short_sends`]).
    SendDone {
        /// Socket it was sent on.
        sock: SockId,
        /// The caller's token from `submit_send`.
        user: u64,
        /// Bytes sent, or the error.
        result: Result<usize, Errno>,
    },
    /// A file operation (read, write, fsync, barrier) finished. Reads and writes hand
    /// their buffer back in `buf`; a vectored read or write completes as one of these
    /// per segment, in order (see
    /// [`Ring::file_io_vectored`](crate::Ring::file_io_vectored)).
    IoDone {
        /// The caller's token.
        user: u64,
        /// Bytes transferred (0 for syncs), or the error.
        result: Result<usize, Errno>,
        /// The buffer used by a read or write (`None` for syncs).
        buf: Option<IoBuffer>,
    },
    /// A [`crate::RingWaker`] woke the ring (wakes since the last report coalesce).
    Woken,
    /// A timer from [`crate::Ring::add_timer`] expired.
    Timer {
        /// The caller's token.
        user: u64,
    },
}

/// Counters kept by one ring (cumulative).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RingStats {
    /// Frames delivered as [`Completion::Frame`].
    pub frames_received: u64,
    /// Bytes in those frames.
    pub bytes_received: u64,
    /// Frames longer than a receive buffer, dropped (raise `recv_buffer_size`).
    pub frames_truncated: u64,
    /// Times a multishot receive stopped because every provided buffer was lent out
    /// (ENOBUFS). The frame then waits in the socket queue; if that fills, the kernel
    /// drops and [`crate::PacketStats::dropped`] counts it.
    pub recv_no_buffers: u64,
    /// Times a multishot receive was armed again after the kernel ended it.
    pub recv_rearms: u64,
    /// Receive errors other than ENOBUFS.
    pub recv_errors: u64,
    /// Sends submitted.
    pub sends: u64,
    /// Sends that failed.
    pub send_errors: u64,
    /// Sends that wrote fewer bytes than asked.
    pub short_sends: u64,
    /// Frames queued into a socket's mapped transmit ring (counted in `sends` too).
    pub tx_ring_frames: u64,
    /// Sends of mapped transmit rings' frames (one per socket per enter that had any).
    pub tx_ring_kicks: u64,
    /// Frames that found their socket's transmit ring full and went out through a
    /// plain send instead.
    pub tx_ring_full: u64,
    /// Frames too long for a slot of their socket's transmit ring (its interface's MTU
    /// grew after it was opened), sent through a plain send instead.
    pub tx_ring_oversize: u64,
    /// File operations completed (reads, writes, syncs).
    pub io_ops: u64,
    /// File operations that failed.
    pub io_errors: u64,
    /// Timers that fired.
    pub timers: u64,
    /// Wake-ups from a [`crate::RingWaker`].
    pub wakeups: u64,
    /// io_uring_enter calls made by `wait`/`submit` (and by a full submission queue).
    pub enters: u64,
}
