//! Rings on the ends of the lab's veth pair (`aoeraid_lab::Lab::veth_pair`): the
//! set-ups and waiting loops the ring tests share. Run these inside `Lab::in_ns`.

#![allow(dead_code)] // each test file uses its own subset

use aoe_uring::{
    Completion, PacketSocket, RecvBuf, Ring, RingConfig, SockId, SocketOptions, ETH_P_AOE,
};
use aoeraid_lab::frames::frame;
use aoeraid_lab::Lab;
use std::time::{Duration, Instant};

/// Runs `f` inside a fresh namespace holding the lab's veth pair with `mtu` on both ends
/// (removed afterwards); `test` names the namespace.
pub(crate) fn in_veth_pair<T: Send + 'static>(
    test: &str,
    mtu: u32,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    Lab::veth_pair(test, mtu).expect("veth lab").in_ns(f)
}

/// A ring holding a socket on each end of the pair: (ring, end A, end B, A's MAC, B's
/// MAC). The ring is made with `cfg`, end B's socket opened with `b_opts`.
pub(crate) fn both_ends(
    cfg: &RingConfig,
    b_opts: &SocketOptions,
) -> (Ring, SockId, SockId, [u8; 6], [u8; 6]) {
    both_ends_with(cfg, &SocketOptions::default(), b_opts)
}

/// [`both_ends`] with the options of both sockets given.
pub(crate) fn both_ends_with(
    cfg: &RingConfig,
    a_opts: &SocketOptions,
    b_opts: &SocketOptions,
) -> (Ring, SockId, SockId, [u8; 6], [u8; 6]) {
    let mut ring = Ring::with_config(cfg).unwrap();
    let a = ring
        .add_socket(PacketSocket::open_with(Lab::VETH_A, a_opts).unwrap())
        .unwrap();
    let b = ring
        .add_socket(PacketSocket::open_with(Lab::VETH_B, b_opts).unwrap())
        .unwrap();
    let mac_a = ring.socket(a).unwrap().mac();
    let mac_b = ring.socket(b).unwrap().mac();
    (ring, a, b, mac_a, mac_b)
}

/// A plain socket on end A that sends AoE frames to end B's address `to`.
pub(crate) struct Sender {
    pub(crate) tx: PacketSocket,
    pub(crate) to: [u8; 6],
}

impl Sender {
    /// Sends an AoE frame with sequence number `seq` and `payload` bytes.
    pub(crate) fn send(&self, seq: u32, payload: usize) {
        self.tx
            .send_blocking(&frame(self.to, self.tx.mac(), ETH_P_AOE, seq, payload))
            .unwrap();
    }

    /// [`Sender::send`] for each sequence number in `seqs`, in order.
    pub(crate) fn send_each(&self, seqs: std::ops::Range<u32>, payload: usize) {
        for seq in seqs {
            self.send(seq, payload);
        }
    }
}

/// A ring receiving on end B, and a [`Sender`] on end A.
pub(crate) struct Receiver {
    pub(crate) sender: Sender,
    pub(crate) ring: Ring,
    pub(crate) b: SockId,
}

/// A [`Receiver`] on a ring made with `cfg`, end B opened with `b_opts`. Its receive is
/// armed (one wait without sleeping), so frames sent from now on reach it.
pub(crate) fn receiver(cfg: &RingConfig, b_opts: &SocketOptions) -> Receiver {
    let tx = PacketSocket::open(Lab::VETH_A).unwrap();
    let mut ring = Ring::with_config(cfg).unwrap();
    let b = ring
        .add_socket(PacketSocket::open_with(Lab::VETH_B, b_opts).unwrap())
        .unwrap();
    let to = ring.socket(b).unwrap().mac();
    ring.wait(Some(Duration::ZERO), &mut Vec::new()).unwrap();
    Receiver {
        sender: Sender { tx, to },
        ring,
        b,
    }
}

/// Waits on `ring` in steps of 50 ms, handing every completion to `each`, until `each`
/// returns true or 5 s have passed. Returns whether `each` finished.
pub(crate) fn pump(ring: &mut Ring, mut each: impl FnMut(&Ring, Completion) -> bool) -> bool {
    let mut events = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        ring.wait(Some(Duration::from_millis(50)), &mut events)
            .unwrap();
        let mut done = false;
        for ev in events.drain(..) {
            done |= each(ring, ev);
        }
        if done {
            return true;
        }
    }
    false
}

/// Queues one AoE frame of `payload_len` bytes per sequence number in `seqs` on
/// socket `from`, addressed `dst` from `src`.
pub(crate) fn send_seqs(
    ring: &mut Ring,
    from: SockId,
    (dst, src): ([u8; 6], [u8; 6]),
    seqs: std::ops::Range<u32>,
    payload_len: usize,
) {
    for seq in seqs {
        ring.send_copy(from, &frame(dst, src, ETH_P_AOE, seq, payload_len), 0)
            .unwrap();
    }
}

/// One wait of at most `timeout` on `ring`: recycles every frame that arrived and
/// returns how many; other completions are dropped.
pub(crate) fn recycle_frames(
    ring: &mut Ring,
    timeout: Duration,
    events: &mut Vec<Completion>,
) -> u64 {
    ring.wait(Some(timeout), events).unwrap();
    let mut frames = 0;
    for ev in events.drain(..) {
        if let Completion::Frame { buf, .. } = ev {
            frames += 1;
            ring.recycle(buf);
        }
    }
    frames
}

/// Waits until `want` frames arrived on `ring` (or 5 s passed), handing each to `keep`;
/// frames `keep` returns are recycled. Returns how many arrived.
pub(crate) fn gather(
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
