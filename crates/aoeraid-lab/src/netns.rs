//! Entering a lab's network namespace from a thread of the test process, and
//! the AF_PACKET sockets the relays and the raw client open there. setns(2)
//! with CLONE_NEWNET switches only the calling thread, so every caller runs
//! on a thread of its own that exists for that purpose.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// The namespace's handle, opened from the test's own namespace.
pub(crate) fn open(ns: &str) -> io::Result<File> {
    File::open(format!("/run/netns/{ns}"))
}

/// Moves the calling thread into the namespace `handle` refers to.
pub(crate) fn enter(handle: &File) -> io::Result<()> {
    // SAFETY: setns(2) on a namespace descriptor that `handle` keeps open; it
    // switches only the calling thread, which callers dedicate to the lab.
    if unsafe { libc::setns(handle.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Runs `f` on a new thread inside namespace `ns` and returns its result;
/// a panic in `f` goes on in the caller.
pub(crate) fn run_in<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> io::Result<T> {
    let handle = open(ns)?;
    let thread = std::thread::spawn(move || enter(&handle).map(|()| f()));
    thread
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// A raw AF_PACKET socket for `protocol` (host order), with the given
/// `SOL_*` integer options set, bound to interface `ifindex` of the calling
/// thread's namespace.
pub(crate) fn packet_socket(
    protocol: u16,
    ifindex: i32,
    nonblocking: bool,
    options: &[(libc::c_int, libc::c_int, libc::c_int)],
) -> io::Result<OwnedFd> {
    let flags =
        libc::SOCK_RAW | libc::SOCK_CLOEXEC | if nonblocking { libc::SOCK_NONBLOCK } else { 0 };
    // SAFETY: socket(2) with integer arguments; the result is checked and then
    // owned by exactly one OwnedFd.
    let fd = unsafe { libc::socket(libc::AF_PACKET, flags, i32::from(protocol.to_be())) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh, valid descriptor nobody else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    for (level, opt, val) in options {
        // SAFETY: val points to a live c_int and the length passed says so.
        let r = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                *level,
                *opt,
                (val as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = protocol.to_be();
    sll.sll_ifindex = ifindex;
    // SAFETY: sll is a valid sockaddr_ll and the length is its size.
    let r = unsafe {
        libc::bind(
            sock.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(sock)
}
