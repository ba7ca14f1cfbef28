//! The few kernel calls of aoeraid that are not I/O on the ring: random bytes, process
//! signals, a process group's kill, a Unix socket peer's uid and the process's CPU time.
//! Kept here so that no other crate needs `libc` or `unsafe` to reach the kernel.

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// Fills `buf` with random bytes from the kernel (getrandom(2), blocking only until the
/// kernel's pool is first initialised, early at boot).
pub fn fill_random(buf: &mut [u8]) -> io::Result<()> {
    let mut got = 0;
    while got < buf.len() {
        let rest = &mut buf[got..];
        // SAFETY: getrandom writes at most `rest.len()` bytes to `rest`, a live, writable
        // slice for the duration of the call.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(io::Error::new(e.kind(), format!("getrandom: {e}")));
        }
        got += n as usize;
    }
    Ok(())
}

/// A process signal aoeraid handles or sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGHUP: reload or re-check, by convention.
    Hup,
    /// SIGINT: stop (Ctrl-C).
    Int,
    /// SIGTERM: stop.
    Term,
    /// SIGKILL: cannot be caught; only sent.
    Kill,
}

impl Signal {
    fn raw(self) -> libc::c_int {
        match self {
            Signal::Hup => libc::SIGHUP,
            Signal::Int => libc::SIGINT,
            Signal::Term => libc::SIGTERM,
            Signal::Kill => libc::SIGKILL,
        }
    }

    fn from_raw(sig: libc::c_int) -> Option<Signal> {
        [Signal::Hup, Signal::Int, Signal::Term, Signal::Kill]
            .into_iter()
            .find(|s| s.raw() == sig)
    }
}

/// Signals taken synchronously: blocked in every thread, so that they stay pending until
/// one thread reads them with [`Signals::wait`] — no handler runs, nothing is
/// async-signal-unsafe.
#[derive(Clone, Copy)]
pub struct Signals {
    set: libc::sigset_t,
}

impl std::fmt::Debug for Signals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signals")
    }
}

impl Signals {
    /// Blocks `signals` in the calling thread and in every thread it spawns afterwards:
    /// call it before spawning any. (Child processes started with `std::process` get an
    /// empty mask back.)
    pub fn block(signals: &[Signal]) -> io::Result<Signals> {
        // SAFETY: sigset_t is plain data; sigemptyset initialises it before any use.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a live local; sigemptyset/sigaddset only write to it, and the
        // signal numbers are valid (they come from `Signal::raw`).
        unsafe {
            libc::sigemptyset(&mut set);
            for s in signals {
                libc::sigaddset(&mut set, s.raw());
            }
        }
        // SAFETY: `set` is initialised; the old mask is not asked for (null). Only this
        // thread's mask changes.
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(Signals { set })
    }

    /// Waits for one of the blocked signals, for at most `timeout` (`None`: no limit).
    /// `Ok(None)` when the time ran out.
    pub fn wait(&self, timeout: Option<Duration>) -> io::Result<Option<Signal>> {
        loop {
            let sig = match timeout {
                None => {
                    let mut sig: libc::c_int = 0;
                    // SAFETY: `self.set` is an initialised sigset_t and `sig` a live
                    // local; sigwait reads the one and writes the other.
                    let rc = unsafe { libc::sigwait(&self.set, &mut sig) };
                    if rc != 0 {
                        return Err(io::Error::from_raw_os_error(rc));
                    }
                    sig
                }
                Some(t) => {
                    let ts = libc::timespec {
                        tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
                        tv_nsec: libc::c_long::from(t.subsec_nanos() as i32),
                    };
                    // SAFETY: `self.set` and `ts` are initialised and live for the call;
                    // no siginfo is asked for (null).
                    let sig = unsafe { libc::sigtimedwait(&self.set, std::ptr::null_mut(), &ts) };
                    if sig < 0 {
                        let e = io::Error::last_os_error();
                        match e.kind() {
                            io::ErrorKind::WouldBlock => return Ok(None),
                            io::ErrorKind::Interrupted => continue,
                            _ => return Err(e),
                        }
                    }
                    sig
                }
            };
            if let Some(s) = Signal::from_raw(sig) {
                return Ok(Some(s));
            }
        }
    }
}

/// Sends `sig` to every process of the process group `pgid` (as led by a child started
/// with `process_group(0)`, whose pid is the group id).
///
/// The caller must make sure the group still exists under that id: for a child's group,
/// call this before reaping the child (a reaped leader's pid may be reused).
pub fn kill_process_group(pgid: u32, sig: Signal) -> io::Result<()> {
    let pgid = libc::pid_t::try_from(pgid)
        .ok()
        .filter(|&p| p > 1)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a process group id"))?;
    // SAFETY: kill(2) takes plain integers and touches no memory of ours; the negative
    // pid (> 1 checked above) names exactly one group, never "every process".
    if unsafe { libc::kill(-pgid, sig.raw()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The uid of the process at the other end of a Unix stream socket (SO_PEERCRED, as the
/// kernel recorded it at connect).
pub fn peer_uid(stream: &UnixStream) -> io::Result<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: the fd is a live socket borrowed from `stream` for the call; `cred` and
    // `len` are live and writable, and `len` is the exact size of `cred`, which is what
    // SO_PEERCRED fills in.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(cred.uid)
}

/// The effective uid of this process.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// CPU time this process has used so far, user plus system (getrusage).
pub fn process_cpu_time() -> Duration {
    cpu_time(libc::RUSAGE_SELF)
}

/// CPU time the calling thread has used so far, user plus system (getrusage).
pub fn thread_cpu_time() -> Duration {
    cpu_time(libc::RUSAGE_THREAD)
}

fn cpu_time(who: libc::c_int) -> Duration {
    // SAFETY: rusage is plain data; all-zero is a valid value for getrusage to overwrite.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `who` is RUSAGE_SELF or RUSAGE_THREAD and `ru` is a live, writable rusage;
    // the call cannot fail with these arguments.
    unsafe { libc::getrusage(who, &mut ru) };
    let tv =
        |t: libc::timeval| Duration::new(t.tv_sec.max(0) as u64, (t.tv_usec.max(0) as u32) * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_bytes_fill_the_buffer_and_differ() {
        let (mut a, mut b) = ([0u8; 64], [0u8; 64]);
        fill_random(&mut a).unwrap();
        fill_random(&mut b).unwrap();
        assert_ne!(a, b);
        assert!(a.iter().any(|&x| x != 0));
        fill_random(&mut []).unwrap();
    }

    #[test]
    fn blocked_signal_is_read_synchronously() {
        // In a thread of its own, so the harness's threads keep their masks; the signal
        // is sent to this thread only (a process-wide SIGHUP could reach a thread that
        // does not block it and end the test run).
        std::thread::spawn(|| {
            let sigs = Signals::block(&[Signal::Hup]).unwrap();
            assert_eq!(sigs.wait(Some(Duration::from_millis(10))).unwrap(), None);
            // SAFETY: signals the calling thread, which blocks SIGHUP: it stays pending.
            let rc = unsafe { libc::pthread_kill(libc::pthread_self(), libc::SIGHUP) };
            assert_eq!(rc, 0);
            assert_eq!(
                sigs.wait(Some(Duration::from_secs(5))).unwrap(),
                Some(Signal::Hup)
            );
            // SAFETY: as above.
            unsafe { libc::pthread_kill(libc::pthread_self(), libc::SIGHUP) };
            assert_eq!(sigs.wait(None).unwrap(), Some(Signal::Hup));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn process_group_kill_refuses_special_ids() {
        for pgid in [0, 1, u32::MAX] {
            let e = kill_process_group(pgid, Signal::Kill).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        }
    }

    #[test]
    fn kill_reaches_a_child_group() {
        use std::os::unix::process::{CommandExt, ExitStatusExt};
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        kill_process_group(child.id(), Signal::Kill).unwrap();
        assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
    }

    #[test]
    fn peer_of_a_socket_pair_is_this_process() {
        let (a, _b) = UnixStream::pair().unwrap();
        assert_eq!(peer_uid(&a).unwrap(), effective_uid());
    }

    #[test]
    fn cpu_time_advances() {
        let (proc0, thread0) = (process_cpu_time(), thread_cpu_time());
        let start = std::time::Instant::now();
        let mut x = 0u64;
        // Spin until this thread has used 5 ms of CPU (wall time depends on the load).
        while thread_cpu_time() - thread0 < Duration::from_millis(5) {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "thread CPU time stuck"
            );
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(1));
        }
        assert!(process_cpu_time() - proc0 >= Duration::from_millis(5));
        assert!(thread_cpu_time() <= process_cpu_time());
    }
}
