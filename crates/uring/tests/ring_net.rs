//! Ring send/receive through a veth pair in a private network namespace (root needed).

mod lab;

use aoe_uring::{Completion, PacketSocket, Ring, SockId, ETH_P_AOE};
use lab::{frame, seq_of, VethLab};
use std::time::{Duration, Instant};

/// Wait on `ring` until `want` frames arrived (or 5 s passed), checking each with `check`
/// and recycling it. Returns the frames seen.
fn collect(ring: &mut Ring, want: usize, mut check: impl FnMut(SockId, &[u8])) -> usize {
    let mut events = Vec::new();
    let mut seen = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen < want && Instant::now() < deadline {
        ring.wait(Some(Duration::from_millis(100)), &mut events)
            .unwrap();
        for ev in events.drain(..) {
            match ev {
                Completion::Frame { sock, buf } => {
                    check(sock, ring.frame(&buf));
                    ring.recycle(buf);
                    seen += 1;
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

#[test]
fn frames_both_ways_multishot_and_batched() {
    let lab = VethLab::new(1500);
    lab.run(|| {
        let mut ring = Ring::new().unwrap();
        let a = ring
            .add_socket(PacketSocket::open(VethLab::A).unwrap())
            .unwrap();
        let b = ring
            .add_socket(PacketSocket::open(VethLab::B).unwrap())
            .unwrap();
        let mac_a = ring.socket(a).unwrap().mac();
        let mac_b = ring.socket(b).unwrap().mac();
        assert_eq!(ring.socket(a).unwrap().mtu(), 1500);
        const N: u32 = 200;
        for seq in 0..N {
            ring.send_copy(
                a,
                &frame(mac_b, mac_a, ETH_P_AOE, seq, 1000),
                u64::from(seq),
            )
            .unwrap();
            ring.send_copy(
                b,
                &frame(mac_a, mac_b, ETH_P_AOE, seq + 10_000, 60),
                u64::from(seq),
            )
            .unwrap();
        }
        let mut at_a = Vec::new();
        let mut at_b = Vec::new();
        let seen = collect(&mut ring, 2 * N as usize, |sock, f| {
            let seq = seq_of(f);
            if sock == a {
                assert_eq!(f, &frame(mac_a, mac_b, ETH_P_AOE, seq, 60)[..]);
                at_a.push(seq);
            } else {
                assert_eq!(sock, b);
                assert_eq!(f, &frame(mac_b, mac_a, ETH_P_AOE, seq, 1000)[..]);
                at_b.push(seq);
            }
        });
        assert_eq!(seen, 2 * N as usize);
        at_a.sort_unstable();
        at_b.sort_unstable();
        assert_eq!(at_a, (10_000..10_000 + N).collect::<Vec<_>>());
        assert_eq!(at_b, (0..N).collect::<Vec<_>>());
        let stats = ring.stats();
        assert_eq!(stats.frames_received, u64::from(2 * N));
        assert_eq!(stats.sends, u64::from(2 * N));
        assert_eq!(stats.send_errors, 0);
        assert_eq!(ring.recv_buffers_lent(), 0);
    });
}
