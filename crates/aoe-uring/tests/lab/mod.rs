//! Test support: a private network namespace holding one veth pair, removed on drop.

#![allow(dead_code)]

use aoe_uring::{Completion, RecvBuf, Ring, SockId};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A network namespace with a veth pair `va` <-> `vb`, both up. Deleting the namespace
/// (on drop, also after a panic) deletes the veths with it.
pub struct VethLab {
    pub ns: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("running ip: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

impl VethLab {
    pub const A: &'static str = "va";
    pub const B: &'static str = "vb";

    /// Create the namespace and veth pair with the given MTU on both ends.
    pub fn new(mtu: u32) -> VethLab {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let ns = format!("aoeu-{}-{n}", std::process::id());
        ip(&["netns", "add", &ns]).expect("ip netns add (root needed)");
        let lab = VethLab { ns };
        let mtu = mtu.to_string();
        lab.ip(&[
            "link",
            "add",
            Self::A,
            "mtu",
            &mtu,
            "type",
            "veth",
            "peer",
            "name",
            Self::B,
            "mtu",
            &mtu,
        ]);
        lab.ip(&["link", "set", Self::A, "up"]);
        lab.ip(&["link", "set", Self::B, "up"]);
        lab.ip(&["link", "set", "lo", "up"]);
        lab
    }

    /// Run `ip -n <ns> args…`, panicking with the error text on failure.
    pub fn ip(&self, args: &[&str]) {
        let mut full = vec!["-n", self.ns.as_str()];
        full.extend_from_slice(args);
        ip(&full).unwrap();
    }

    /// Run `f` on a fresh thread that has entered the namespace.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/var/run/netns/{}", self.ns);
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).expect("open netns handle");
            use std::os::fd::AsRawFd;
            // SAFETY: setns on a valid namespace fd; only this thread changes namespace.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
    }
}

impl Drop for VethLab {
    fn drop(&mut self) {
        let _ = ip(&["netns", "delete", &self.ns]);
    }
}

/// An Ethernet frame: dst, src, ethertype, then `payload_len` bytes derived from `seq`.
pub fn frame(dst: [u8; 6], src: [u8; 6], ethertype: u16, seq: u32, payload_len: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload_len);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    for i in 4..payload_len {
        f.push((seq as usize).wrapping_mul(31).wrapping_add(i) as u8);
    }
    f
}

/// The sequence number stored by `frame`.
pub fn seq_of(f: &[u8]) -> u32 {
    u32::from_be_bytes([f[14], f[15], f[16], f[17]])
}

/// Waits until `want` frames arrived on `ring` (or 5 s passed), handing each to `keep`;
/// frames `keep` returns are recycled. Returns how many arrived.
pub fn gather(
    ring: &mut Ring,
    want: usize,
    mut keep: impl FnMut(&Ring, SockId, RecvBuf) -> Option<RecvBuf>,
) -> usize {
    let mut events = Vec::new();
    let mut seen = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen < want && Instant::now() < deadline {
        ring.wait(Some(Duration::from_millis(100)), &mut events)
            .unwrap();
        for ev in events.drain(..) {
            match ev {
                Completion::Frame { sock, buf } => {
                    seen += 1;
                    if let Some(buf) = keep(ring, sock, buf) {
                        ring.recycle(buf);
                    }
                }
                Completion::SendDone { result, .. } => {
                    result.expect("send failed");
                }
                other => panic!("unexpected event {other:?}"),
            }
        }
    }
    seen
}
