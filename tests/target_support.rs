//! Helpers shared by the `target_*` lab tests: a raw AF_PACKET AoE client
//! living in a lab namespace, and `aoeraid serve` process handling.
//! (Also compiled as its own empty test crate; hence the allow.)
#![allow(dead_code)]

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

pub const ETH_P_AOE: u16 = 0x88A2;

/// A raw AoE socket bound to one interface of a network namespace.
pub struct RawClient {
    fd: OwnedFd,
    ifindex: i32,
    pub mac: [u8; 6],
}

impl RawClient {
    /// Opens the socket inside namespace `ns` (a short-lived thread enters
    /// it; the socket keeps belonging to it afterwards). `mac_text` is the
    /// interface's MAC (sysfs here shows the test's own namespace).
    pub fn open(ns: &str, iface: &str, mac_text: &str) -> io::Result<RawClient> {
        let mut mac = [0u8; 6];
        for (m, h) in mac.iter_mut().zip(mac_text.trim().split(':')) {
            *m = u8::from_str_radix(h, 16).map_err(io::Error::other)?;
        }
        let ns_path = format!("/var/run/netns/{ns}");
        let iface = iface.to_string();
        std::thread::spawn(move || -> io::Result<RawClient> {
            let nsf = File::open(&ns_path)?;
            // SAFETY: setns on this (dedicated, short-lived) thread only; fd is valid.
            if unsafe { libc::setns(nsf.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: plain socket(2); result checked.
            let raw = unsafe {
                libc::socket(
                    libc::AF_PACKET,
                    libc::SOCK_RAW,
                    i32::from(ETH_P_AOE.to_be()),
                )
            };
            if raw < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `raw` is a fresh descriptor we own.
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };
            let cname = std::ffi::CString::new(iface.clone()).map_err(io::Error::other)?;
            // SAFETY: valid NUL-terminated name.
            let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) } as i32;
            if ifindex == 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: zeroed sockaddr_ll is a valid bit pattern; fields set below.
            let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = ETH_P_AOE.to_be();
            sll.sll_ifindex = ifindex;
            // SAFETY: pointer/length describe `sll`.
            let r = unsafe {
                libc::bind(
                    fd.as_raw_fd(),
                    (&sll as *const libc::sockaddr_ll).cast(),
                    std::mem::size_of::<libc::sockaddr_ll>() as u32,
                )
            };
            if r != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(RawClient { fd, ifindex, mac })
        })
        .join()
        .map_err(|_| io::Error::other("setns thread panicked"))?
    }

    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: buffer pointer/length from a valid slice.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Next frame within `timeout` (None on timeout).
    pub fn recv(&self, timeout: Duration) -> io::Result<Option<Vec<u8>>> {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 9216];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let r = unsafe { libc::poll(&mut pfd, 1, left.as_millis().max(1) as i32) };
            if r < 0 {
                return Err(io::Error::last_os_error());
            }
            if r == 0 {
                continue;
            }
            // SAFETY: buffer pointer/length from a valid Vec.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::WouldBlock {
                    continue;
                }
                return Err(e);
            }
            buf.truncate(n as usize);
            return Ok(Some(buf));
        }
    }

    /// Waits for a response (R set) matching `tag`, skipping our own
    /// requests and other frames.
    pub fn recv_reply(&self, tag: u32, timeout: Duration) -> io::Result<Option<Vec<u8>>> {
        let deadline = Instant::now() + timeout;
        while let Some(f) = self.recv(deadline.saturating_duration_since(Instant::now()))? {
            if f.len() >= 24 && f[14] & 0x08 != 0 && f[20..24] == tag.to_be_bytes() {
                return Ok(Some(f));
            }
        }
        Ok(None)
    }

    /// Sends `frame` (whose tag is `tag`) and waits for its reply, retrying.
    pub fn call(&self, frame: &[u8], tag: u32) -> io::Result<Option<Vec<u8>>> {
        for _ in 0..3 {
            self.send(frame)?;
            if let Some(r) = self.recv_reply(tag, Duration::from_millis(700))? {
                return Ok(Some(r));
            }
        }
        Ok(None)
    }
}

/// AoE request header: dst, src, version 1, shelf, slot, command, tag.
pub fn header(dst: [u8; 6], src: [u8; 6], shelf: u16, slot: u8, cmd: u8, tag: u32) -> Vec<u8> {
    let mut f = Vec::with_capacity(1100);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ETH_P_AOE.to_be_bytes());
    f.push(0x10);
    f.push(0);
    f.extend_from_slice(&shelf.to_be_bytes());
    f.push(slot);
    f.push(cmd);
    f.extend_from_slice(&tag.to_be_bytes());
    f
}

pub fn pad(mut f: Vec<u8>) -> Vec<u8> {
    if f.len() < 60 {
        f.resize(60, 0);
    }
    f
}

/// ATA READ EXT / WRITE EXT (LBA48) request.
#[allow(clippy::too_many_arguments)]
pub fn ata_rw(
    src: [u8; 6],
    shelf: u16,
    slot: u8,
    tag: u32,
    write: bool,
    lba: u64,
    n: u8,
    data: &[u8],
) -> Vec<u8> {
    let mut f = header([0xff; 6], src, shelf, slot, 0, tag);
    f.push(if write { 0x41 } else { 0x40 });
    f.push(0);
    f.push(n);
    f.push(if write { 0x34 } else { 0x24 });
    f.extend_from_slice(&lba.to_le_bytes()[..6]);
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(data);
    pad(f)
}

/// IDENTIFY request.
pub fn identify(src: [u8; 6], shelf: u16, slot: u8, tag: u32) -> Vec<u8> {
    let mut f = header([0xff; 6], src, shelf, slot, 0, tag);
    f.extend_from_slice(&[0, 0, 1, 0xEC, 0, 0, 0, 0xA0, 0, 0, 0, 0]);
    pad(f)
}

/// Capacity (words 100–103) from an IDENTIFY reply frame.
pub fn identify_sectors(reply: &[u8]) -> u64 {
    let d = &reply[36..];
    (0..4)
        .map(|i| u64::from(u16::from_le_bytes([d[200 + 2 * i], d[201 + 2 * i]])) << (16 * i))
        .sum()
}

/// MAC Mask edit with (dcmd, mac) directives.
pub fn mask_edit(src: [u8; 6], shelf: u16, slot: u8, tag: u32, dirs: &[(u8, [u8; 6])]) -> Vec<u8> {
    let mut f = header([0xff; 6], src, shelf, slot, 2, tag);
    f.extend_from_slice(&[0, 1, 0, dirs.len() as u8]);
    for (d, m) in dirs {
        f.push(0);
        f.push(*d);
        f.extend_from_slice(m);
    }
    pad(f)
}

/// Reserve/Release with rcmd and MAC list.
pub fn reserve(
    src: [u8; 6],
    shelf: u16,
    slot: u8,
    tag: u32,
    rcmd: u8,
    macs: &[[u8; 6]],
) -> Vec<u8> {
    let mut f = header([0xff; 6], src, shelf, slot, 3, tag);
    f.push(rcmd);
    f.push(macs.len() as u8);
    for m in macs {
        f.extend_from_slice(m);
    }
    pad(f)
}

/// Query Config read.
pub fn config_read(src: [u8; 6], shelf: u16, slot: u8, tag: u32) -> Vec<u8> {
    let mut f = header([0xff; 6], src, shelf, slot, 1, tag);
    f.extend_from_slice(&[0; 8]);
    pad(f)
}

/// Parses one `key=value` counter from `aoeraid serve`'s exit line.
pub fn counter(log: &str, key: &str) -> Option<u64> {
    let line = log.lines().rev().find(|l| l.contains("stopped;"))?;
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
}
