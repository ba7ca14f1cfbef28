//! Waiting: submitting what is queued and sleeping until completions, a timeout, a
//! timer or a cross-thread wake-up.

use std::cell::Cell;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use io_uring::{opcode, types};

use super::ops::OpKind;
use super::owner::Owner;
use super::Ring;
use crate::types::Completion;

/// The ring's side of a [`RingWaker`](crate::RingWaker): an eventfd with a read always in flight.
pub(super) struct WakeState {
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

/// Wakes a [`Ring`](crate::Ring) blocked in [`Ring::wait`](crate::Ring::wait) from another thread:
/// the ring then reports [`Completion::Woken`](crate::Completion::Woken). Cheap to clone; wakes
/// coalesce. Use it after sending a message on a channel the ring's thread reads.
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
    /// Report [`Completion::Timer`](crate::Completion::Timer) with `user` after `after`
    /// (IORING_OP_TIMEOUT). Most loops only need the `timeout` of
    /// [`Ring::wait`](crate::Ring::wait); this is for extra deadlines.
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
            .user_data(Owner::Op(op).user_data());
        // SAFETY: `ts_ptr` points into `ops.slots`, which never reallocates (fixed capacity)
        // and whose entry stays reserved until the CQE; the kernel copies the timespec
        // when it prepares the request.
        let r = unsafe { self.push(&sqe) };
        if r.is_err() {
            self.free_op(op);
        }
        r
    }

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

    /// Like [`Ring::wait`](crate::Ring::wait), but a wait that has to sleep ends no sooner than
    /// `linger` after it began (unless `timeout` is shorter or the completion queue fills), so one
    /// wake-up harvests every reply that came meanwhile — interrupt coalescing for a caller that
    /// expects a stream of replies. The kernel's minimum wait does it (Linux ≥ 6.12,
    /// [`Ring::can_linger`](crate::Ring::can_linger)); older kernels wait as
    /// [`Ring::wait`](crate::Ring::wait) does. Frames already waiting end the call at once, as does
    /// a timer ([`Ring::add_timer`](crate::Ring::add_timer)) that fires; after `linger`, any
    /// completion does, this call's own sends included.
    pub fn wait_lingering(
        &mut self,
        timeout: Option<Duration>,
        linger: Duration,
        out: &mut Vec<Completion>,
    ) -> io::Result<Instant> {
        self.rearm_receives();
        self.retry_deferred_syncs();
        self.kick_tx_rings();
        if self.wake.as_ref().is_some_and(|w| !w.armed.get()) {
            // Best effort: if the queue is full now, the next wait re-arms.
            let _ = self.arm_wake();
        }
        // Frames already in mapped rings: hand them over now and do not sleep; the
        // enter below only submits and reaps. Otherwise make sure a frame arriving
        // while we sleep wakes us. A zero timeout never sleeps: it arms nothing and
        // passes no timeout (it only submits, runs deferred completions and reaps),
        // which keeps it cheap on the path of a request (`aoeraid serve` submits a
        // turn's page-cache reads that way), and leaves the polls to the next wait
        // that sleeps, after that wait's replies are out.
        let no_sleep = timeout == Some(Duration::ZERO);
        let mapped_ready = self.take_mapped(out) > 0;
        if !mapped_ready && !no_sleep {
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
            // GETEVENTS with nothing to wait for: deferred completions run, none awaited.
            _ if no_sleep => self.submit_getevents(),
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
        super::enter_result(res)?;
        self.drain(out);
        self.take_mapped(out);
        Ok(Instant::now())
    }

    /// Submit everything queued, then watch the mapped receive rings for up to `budget`
    /// without entering the kernel again, and append the frames found and the completions
    /// already posted (a send completes inside the enter that submits it). Returns the
    /// number of frames; with none, call [`Ring::wait`](crate::Ring::wait) next.
    ///
    /// This is busy polling: it burns the CPU for up to `budget` to save the sleep and the
    /// wake-up (a poll's task work, a scheduler switch, the idle exit) when the next frame
    /// is about to come, as for a client that keeps one request in flight. Deferred
    /// completions (a single-issuer ring's, e.g. of I/O a kernel worker finished) are not
    /// run: spin only when no file I/O or timer is in flight
    /// ([`Ring::ops_in_flight`](crate::Ring::ops_in_flight)).
    pub fn spin_for_frames(
        &mut self,
        budget: Duration,
        out: &mut Vec<Completion>,
    ) -> io::Result<usize> {
        self.enable()?;
        self.kick_tx_rings();
        self.entered();
        super::enter_result(self.uring.submit())?;
        let start = Instant::now();
        let found = loop {
            let n = self.take_mapped(out);
            if n > 0 || start.elapsed() >= budget {
                break n;
            }
            std::hint::spin_loop();
        };
        self.drain(out);
        Ok(found)
    }

    /// File operations and timers in flight (sockets' receives and polls, sends and the
    /// waker's read not counted).
    pub fn ops_in_flight(&self) -> usize {
        self.ops.borrow().busy()
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

    /// One enter that submits what is queued and runs deferred completions (a
    /// single-issuer ring runs them only for an enter carrying GETEVENTS) without
    /// waiting for any.
    fn submit_getevents(&self) -> io::Result<usize> {
        // IORING_ENTER_GETEVENTS (the crate keeps its flag type private).
        const GETEVENTS: u32 = 1;
        // The kernel submits at most the entries queued, so the queue's size asks
        // for all of them.
        let all = self.uring.params().sq_entries();
        // SAFETY: no argument pointer is passed; every queued SQE's memory is kept
        // valid by the method that queued it until its completion.
        unsafe {
            self.uring
                .submitter()
                .enter::<libc::sigset_t>(all, 0, GETEVENTS, None)
        }
    }

    /// Book-keeping for every io_uring_enter: the sends queued so far have been handed
    /// to the kernel.
    pub(super) fn entered(&self) {
        self.queued_sends.set(0);
        self.bump(|s| s.enters += 1);
    }

    /// True if [`Ring::wait_lingering`](crate::Ring::wait_lingering) can linger on this kernel.
    pub fn can_linger(&self) -> bool {
        self.min_wait
    }

    /// Like [`Ring::wait`](crate::Ring::wait) with a deadline instead of a duration.
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
        self.kick_tx_rings();
        self.entered();
        self.uring.submit().map(drop)
    }

    fn arm_wake(&self) -> io::Result<()> {
        let Some(w) = &self.wake else { return Ok(()) };
        let sqe = opcode::Read::new(types::Fd(w.fd.as_raw_fd()), w.buf.0.cast::<u8>(), 8)
            .build()
            .user_data(Owner::Wake.user_data());
        // SAFETY: `w.buf` is a live 8-byte heap allocation freed only when no read is in
        // flight (Drop); the eventfd is kept open by `w.fd` for the ring's life.
        unsafe { self.push(&sqe)? };
        w.armed.set(true);
        Ok(())
    }

    pub(super) fn free_wake_buf(&mut self) {
        if let Some(w) = self.wake.take() {
            // SAFETY: allocated by Box::into_raw in `waker`; the caller has established
            // that no read into it is in flight.
            drop(unsafe { Box::from_raw(w.buf.0) });
        }
    }

    /// The waker's eventfd read completed: re-armed at the next wait.
    pub(super) fn on_wake(&self, res: i32, out: &mut Vec<Completion>) {
        if let Some(w) = &self.wake {
            w.armed.set(false);
        }
        if res != -libc::ECANCELED {
            self.bump(|s| s.wakeups += 1);
            out.push(Completion::Woken);
        }
    }
}
