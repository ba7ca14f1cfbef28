//! Sending through a socket's mapped transmit ring (PACKET_TX_RING): frames intact and
//! in order, a full ring and a frame too long for a slot sent the plain way and counted,
//! a send that fails reported, through a veth pair in a private network namespace
//! (root needed).

mod veth;

use aoe_uring::{Completion, PacketSocket, Ring, RingConfig, SockId, SocketOptions, ETH_P_AOE};
use aoeraid_lab::frames::{frame, seq_of};
use aoeraid_lab::Lab;
use std::time::Duration;
use veth::{both_ends_with, gather, in_veth_pair, pump, send_seqs};

/// End A sends through a transmit ring of `tx` slots (and receives through a mapped
/// ring too, so both share one mapping); end B receives through a mapped ring of
/// `b_rx` slots (0: its socket queue).
fn tx_ends(tx: u32, b_rx: u32) -> (Ring, SockId, SockId, [u8; 6], [u8; 6]) {
    let a = SocketOptions {
        rx_ring_frames: 64,
        tx_ring_frames: tx,
        ..SocketOptions::default()
    };
    let b = SocketOptions {
        rx_ring_frames: b_rx,
        ..SocketOptions::default()
    };
    both_ends_with(&RingConfig::default(), &a, &b)
}

/// Gathers `n` frames on `b`, checking each byte for byte against the frame of its
/// sequence number; returns the sequence numbers in arrival order.
fn arrivals(
    ring: &mut Ring,
    b: SockId,
    (to, from): ([u8; 6], [u8; 6]),
    n: usize,
    payload: usize,
) -> Vec<u32> {
    let mut seqs = Vec::new();
    let seen = gather(ring, n, |ring, sock, buf| {
        assert_eq!(sock, b);
        let f = ring.frame(&buf);
        assert_eq!(f, &frame(to, from, ETH_P_AOE, seq_of(f), payload)[..]);
        seqs.push(seq_of(f));
        Some(buf)
    });
    assert_eq!(seen, n);
    seqs
}

/// Many turns of frames through a small ring (it goes round many times), each turn one
/// kick; every frame arrives intact and in order and no send slot stays taken.
fn frames_through_the_tx_ring(mtu: u32, payload: usize) {
    in_veth_pair("ring-tx", mtu, move || {
        let (mut ring, a, b, mac_a, mac_b) = tx_ends(16, 512);
        let slots = ring.socket(a).unwrap().tx_ring_frames();
        assert!(slots >= 16);
        assert_eq!(ring.socket(b).unwrap().tx_ring_frames(), 0);
        let free = ring.free_send_slots();
        const TURNS: u32 = 50;
        const PER_TURN: u32 = 12;
        let mut seqs = Vec::new();
        for t in 0..TURNS {
            let first = t * PER_TURN;
            send_seqs(
                &mut ring,
                a,
                (mac_b, mac_a),
                first..first + PER_TURN,
                payload,
            );
            // Copied into the ring: the send slots are free again before any enter.
            assert_eq!(ring.free_send_slots(), free);
            seqs.extend(arrivals(
                &mut ring,
                b,
                (mac_b, mac_a),
                PER_TURN as usize,
                payload,
            ));
        }
        assert_eq!(seqs, (0..TURNS * PER_TURN).collect::<Vec<_>>());
        let st = ring.stats();
        assert_eq!(st.tx_ring_frames, u64::from(TURNS * PER_TURN), "{st:?}");
        assert_eq!(st.sends, u64::from(TURNS * PER_TURN));
        assert_eq!(
            (st.tx_ring_full, st.tx_ring_oversize, st.send_errors),
            (0, 0, 0)
        );
        // One kick per turn carries the turn's frames (another only if a kick stopped
        // short, which a quiet veth never does).
        assert!(
            st.tx_ring_kicks >= u64::from(TURNS) && st.tx_ring_kicks < u64::from(2 * TURNS),
            "{st:?}"
        );
    });
}

#[test]
fn tx_ring_sends_every_frame_intact_and_in_order() {
    frames_through_the_tx_ring(1500, 1500);
}

#[test]
fn tx_ring_slots_hold_jumbo_frames() {
    frames_through_the_tx_ring(9000, 9000);
}

#[test]
fn a_full_tx_ring_sends_the_rest_plainly_after_its_frames() {
    in_veth_pair("ring-tx", 1500, || {
        let (mut ring, a, b, mac_a, mac_b) = tx_ends(4, 512);
        let slots = ring.socket(a).unwrap().tx_ring_frames();
        let n = slots + 10;
        // One turn: the ring fills (nothing is kicked before the enter), the rest go
        // through plain sends queued after the kick of the ring's frames.
        send_seqs(&mut ring, a, (mac_b, mac_a), 0..n, 800);
        let seqs = arrivals(&mut ring, b, (mac_b, mac_a), n as usize, 800);
        assert_eq!(seqs, (0..n).collect::<Vec<_>>());
        let st = ring.stats();
        assert_eq!(st.tx_ring_frames, u64::from(slots), "{st:?}");
        assert_eq!(st.tx_ring_full, 10, "{st:?}");
        assert_eq!(st.tx_ring_kicks, 1, "{st:?}");
        // The slots came back with the kick: the next turn goes through the ring again.
        send_seqs(&mut ring, a, (mac_b, mac_a), n..n + slots, 800);
        assert_eq!(
            arrivals(&mut ring, b, (mac_b, mac_a), slots as usize, 800),
            (n..n + slots).collect::<Vec<_>>()
        );
        assert_eq!(ring.stats().tx_ring_frames, u64::from(2 * slots));
        assert_eq!(ring.stats().tx_ring_full, 10);
    });
}

#[test]
fn a_frame_longer_than_a_slot_goes_out_plainly_and_is_counted() {
    let lab = Lab::veth_pair("ring-tx", 1500).expect("veth lab");
    // B's socket queue takes frames of any size (a mapped ring's slots are sized at open).
    let (mut ring, a, b, mac_a, mac_b) = lab.in_ns(|| tx_ends(8, 0));
    // The slots were sized for MTU 1500; the interfaces now carry jumbo frames.
    for dev in [Lab::VETH_A, Lab::VETH_B] {
        lab.run("ip", &["link", "set", dev, "mtu", "9000"]).unwrap();
    }
    let big = frame(mac_b, mac_a, ETH_P_AOE, 7, 8000);
    ring.send_copy(a, &big, 0).unwrap();
    ring.send_copy(a, &frame(mac_b, mac_a, ETH_P_AOE, 8, 8000), 0)
        .unwrap();
    let mut got = Vec::new();
    let seen = gather(&mut ring, 2, |ring, sock, buf| {
        assert_eq!(sock, b);
        got.push(ring.frame(&buf).to_vec());
        Some(buf)
    });
    assert_eq!(seen, 2);
    assert_eq!(got[0], big);
    assert_eq!(seq_of(&got[1]), 8);
    let st = ring.stats();
    assert_eq!(
        (st.tx_ring_oversize, st.tx_ring_frames, st.send_errors),
        (2, 0, 0),
        "{st:?}"
    );
    // The blocking helper sends what it is given on such a socket too.
    let sent = lab.in_ns(move || {
        let tx = PacketSocket::open_with(
            Lab::VETH_A,
            &SocketOptions {
                tx_ring_frames: 8,
                ..SocketOptions::default()
            },
        )
        .unwrap();
        tx.send_blocking(&frame(mac_b, mac_a, ETH_P_AOE, 9, 100))
            .unwrap()
    });
    assert_eq!(sent, 114);
    assert_eq!(arrivals(&mut ring, b, (mac_b, mac_a), 1, 100), vec![9]);
}

#[test]
fn a_failed_send_of_the_ring_is_reported_and_its_frames_go_out_later() {
    let lab = Lab::veth_pair("ring-tx", 1500).expect("veth lab");
    let (mut ring, a, b, mac_a, mac_b) = lab.in_ns(|| tx_ends(8, 512));
    lab.run("ip", &["link", "set", Lab::VETH_A, "down"])
        .unwrap();
    send_seqs(&mut ring, a, (mac_b, mac_a), 0..3, 200);
    let netdown = |c: &Completion| match c {
        Completion::SendDone {
            sock,
            result: Err(e),
            ..
        } => *sock == a && e.to_io_error().kind() == std::io::ErrorKind::NetworkDown,
        _ => false,
    };
    // Reported, retried once, then left alone: a link that is down costs no kick per wait.
    let mut events = Vec::new();
    let mut errors = 0;
    for _ in 0..5 {
        ring.wait(Some(Duration::from_millis(20)), &mut events)
            .unwrap();
        for ev in events.drain(..) {
            assert!(netdown(&ev), "{ev:?}");
            errors += 1;
        }
    }
    assert_eq!(errors, 2);
    assert_eq!(ring.stats().send_errors, 2);
    assert_eq!(ring.stats().tx_ring_kicks, 2);
    lab.run("ip", &["link", "set", Lab::VETH_A, "up"]).unwrap();
    // Until the link watcher has put the device's queue back, sends vanish there.
    for _ in 0..50 {
        let link = lab.run("ip", &["-o", "link", "show", Lab::VETH_A]).unwrap();
        if link.contains("state UP") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // The frames still in the ring go out with the next one put (the kernel reports
    // the link's going down to the first send after it, and the retry sends them).
    send_seqs(&mut ring, a, (mac_b, mac_a), 3..4, 200);
    let mut seqs = Vec::new();
    let done = pump(&mut ring, |ring, ev| {
        match ev {
            Completion::Frame { sock, buf } => {
                assert_eq!(sock, b);
                seqs.push(seq_of(ring.frame(&buf)));
                ring.recycle(buf);
            }
            other => assert!(netdown(&other), "{other:?}"),
        }
        seqs.len() == 4
    });
    assert!(done, "{seqs:?} {:?}", ring.stats());
    assert_eq!(seqs, vec![0, 1, 2, 3]);
}
