//! A raw AF_PACKET AoE client living in a lab namespace: the tests' own
//! initiator when they want to see single frames (the request builders are in
//! [`crate::frames`]).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::frames::{self, ETH_P_AOE};
use crate::{netns, Lab};

/// A raw AoE socket bound to one interface of a network namespace.
pub struct RawClient {
    fd: OwnedFd,
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
        let iface = std::ffi::CString::new(iface).map_err(io::Error::other)?;
        netns::run_in(ns, move || {
            // SAFETY: `iface` is a valid NUL-terminated name.
            let ifindex = unsafe { libc::if_nametoindex(iface.as_ptr()) } as i32;
            if ifindex == 0 {
                return Err(io::Error::last_os_error());
            }
            let fd = netns::packet_socket(ETH_P_AOE, ifindex, false, &[])?;
            Ok(RawClient { fd, mac })
        })?
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

    /// Polls `shelf`.`slot` with Query Config until it answers; false if it
    /// did not within `limit`.
    pub fn wait_up(&self, shelf: u16, slot: u8, limit: Duration) -> io::Result<bool> {
        let t = Instant::now();
        let mut tag = 0x100;
        while t.elapsed() < limit {
            tag += 1;
            if self
                .call(&frames::config_read(self.mac, shelf, slot, tag), tag)?
                .is_some()
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// `shelf`.`slot`'s reserve list (Reserve/Release, RCmd 0, tag `tag`); `None` if
    /// the target did not answer, an error if it answered with an AoE error.
    pub fn reserve_list(&self, shelf: u16, slot: u8, tag: u32) -> io::Result<Option<Vec<[u8; 6]>>> {
        let frame = frames::reserve(self.mac, shelf, slot, tag, 0, &[]);
        let Some(r) = self.call(&frame, tag)? else {
            return Ok(None);
        };
        if r[14] & 0x04 != 0 || r.len() < 26 {
            return Err(io::Error::other(format!(
                "reserve read answered error {}",
                r[15]
            )));
        }
        let macs = &r[26..(26 + 6 * usize::from(r[25])).min(r.len())];
        Ok(Some(
            macs.chunks_exact(6)
                .map(|m| m.try_into().expect("6 bytes"))
                .collect(),
        ))
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

impl Lab {
    /// A raw AoE socket on the lab port `iface`.
    pub fn raw_client(&self, iface: &str) -> io::Result<RawClient> {
        RawClient::open(self.ns(), iface, &self.mac(iface)?)
    }
}
