//! Receiving through a socket's mapped receive ring (PACKET_RX_RING), and sends with
//! PACKET_QDISC_BYPASS, through a veth pair in a private network namespace (root needed).

mod veth;

use aoe_uring::{Completion, FileOp, PacketSocket, Ring, RingConfig, SocketOptions, ETH_P_AOE};
use aoeraid_lab::frames::{frame, seq_of};
use aoeraid_lab::Lab;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use veth::{both_ends_with, gather, in_veth_pair, receiver, send_seqs, Receiver, Sender};

fn mapped(slots: u32) -> SocketOptions {
    SocketOptions {
        rx_ring_frames: slots,
        ..SocketOptions::default()
    }
}

/// Many more frames than ring slots, at both MTUs, each compared byte for byte; the
/// sender is a plain socket, so the frames are the only traffic.
fn frames_through_the_ring(mtu: u32, payload: usize) {
    in_veth_pair("ring-mapped", mtu, move || {
        let tx = PacketSocket::open(Lab::VETH_A).unwrap();
        let rx = PacketSocket::open_with(Lab::VETH_B, &mapped(64)).unwrap();
        assert!(rx.has_rx_ring());
        assert!(rx.rx_ring_frames() >= 64);
        let mut ring = Ring::new().unwrap();
        let b = ring.add_socket(rx).unwrap();
        let mac_b = ring.socket(b).unwrap().mac();
        const N: u32 = 1000;
        const BURST: u32 = 32;
        let read = Arc::new(AtomicU32::new(0));
        let sender = std::thread::spawn({
            let src = tx.mac();
            let read = Arc::clone(&read);
            move || {
                for seq in 0..N {
                    // Stay within the ring (a full ring drops, unlike a queue) but
                    // go round it many times.
                    let deadline = Instant::now() + Duration::from_secs(5);
                    while seq >= read.load(Ordering::Acquire) + BURST && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                    tx.send_blocking(&frame(mac_b, src, ETH_P_AOE, seq, payload))
                        .unwrap();
                }
                tx
            }
        });
        let mut seqs = Vec::new();
        let seen = gather(&mut ring, N as usize, |ring, sock, buf| {
            read.fetch_add(1, Ordering::Release);
            assert_eq!(sock, b);
            let f = ring.frame(&buf);
            let seq = seq_of(f);
            assert_eq!(
                f,
                &frame(mac_b, f[6..12].try_into().unwrap(), ETH_P_AOE, seq, payload)[..]
            );
            assert_eq!(buf.len(), f.len());
            seqs.push(seq);
            Some(buf)
        });
        let tx = sender.join().unwrap();
        assert_eq!(
            seen,
            N as usize,
            "stats {:?}",
            ring.socket(b).unwrap().stats()
        );
        // The kernel fills slots in order and we read them in order.
        assert_eq!(seqs, (0..N).collect::<Vec<_>>());
        assert_eq!(ring.stats().frames_received, u64::from(N));
        assert_eq!(ring.recv_buffers_lent(), 0);
        drop(tx);
    });
}

#[test]
fn mapped_ring_delivers_every_frame_in_order() {
    frames_through_the_ring(1500, 1500);
}

#[test]
fn mapped_ring_holds_jumbo_frames() {
    frames_through_the_ring(9000, 9000);
}

#[test]
fn full_ring_drops_then_resumes_once_frames_are_recycled() {
    in_veth_pair("ring-mapped", 1500, move || {
        let mut rx = receiver(&RingConfig::default(), &mapped(8));
        let b = rx.b;
        let slots = rx.ring.socket(b).unwrap().rx_ring_frames() as usize;
        rx.sender.send_each(0..(slots as u32 + 10), 100);
        let ring = &mut rx.ring;
        // Hold every frame: exactly one ring's worth arrives, the rest is dropped.
        let mut held = Vec::new();
        gather(ring, slots, |_, _, buf| {
            held.push(buf);
            None
        });
        assert_eq!(held.len(), slots);
        let mut events = Vec::new();
        ring.wait(Some(Duration::from_millis(50)), &mut events)
            .unwrap();
        assert!(events.is_empty(), "{events:?}");
        let st = ring.socket(b).unwrap().stats().unwrap();
        assert_eq!(st.dropped, 10, "{st:?}");
        let seqs: Vec<u32> = held.iter().map(|f| seq_of(ring.frame(f))).collect();
        assert_eq!(seqs, (0..slots as u32).collect::<Vec<_>>());
        for f in held {
            ring.recycle(f);
        }
        // Slots are back with the kernel: new frames arrive again, twice round the ring.
        let mut later = Vec::new();
        for round in 0..2 {
            let first = 1000 + (round * slots) as u32;
            rx.sender.send_each(first..first + slots as u32, 100);
            let seen = gather(&mut rx.ring, slots, |ring, _, buf| {
                later.push(seq_of(ring.frame(&buf)));
                Some(buf)
            });
            assert_eq!(seen, slots);
        }
        assert_eq!(later, (1000..1000 + 2 * slots as u32).collect::<Vec<_>>());
    });
}

/// Why `aoeraid serve` copies a write's payload out of the ring (benches/README.md,
/// "zero-copy writes from the mapped ring"): the kernel fills a TPACKET_V2 ring strictly
/// in order, and a frame finding the slot at its position still held is dropped — the
/// kernel does not skip to a free slot — until that one slot is recycled.
#[test]
fn one_held_slot_at_the_kernels_position_drops_frames_though_others_are_free() {
    in_veth_pair("ring-mapped", 1500, move || {
        let mut rx = receiver(&RingConfig::default(), &mapped(2));
        let b = rx.b;
        let slots = rx.ring.socket(b).unwrap().rx_ring_frames();
        assert!(slots >= 2);
        let mut held = None;
        rx.sender.send(0, 100);
        gather(&mut rx.ring, 1, |_, _, buf| {
            held = Some(buf);
            None
        });
        // The other slots fill and go back at once; the kernel is then at the held one.
        rx.sender.send_each(1..slots, 100);
        assert_eq!(
            gather(&mut rx.ring, slots as usize - 1, |_, _, buf| Some(buf)),
            slots as usize - 1
        );
        rx.sender.send_each(100..103, 100);
        let mut events = Vec::new();
        rx.ring
            .wait(Some(Duration::from_millis(50)), &mut events)
            .unwrap();
        assert!(events.is_empty(), "{events:?}");
        let st = rx.ring.socket(b).unwrap().stats().unwrap();
        assert_eq!(st.dropped, 3, "{st:?}");
        rx.ring.recycle(held.expect("frame 0"));
        rx.sender.send(200, 100);
        let mut seqs = Vec::new();
        gather(&mut rx.ring, 1, |ring, _, buf| {
            seqs.push(seq_of(ring.frame(&buf)));
            Some(buf)
        });
        assert_eq!(seqs, [200]);
    });
}

#[test]
fn wait_sleeps_until_a_frame_reaches_the_ring() {
    in_veth_pair("ring-mapped", 1500, move || {
        let Receiver {
            sender: Sender { tx, to: mac_b },
            mut ring,
            ..
        } = receiver(&RingConfig::default(), &mapped(16));
        let mut events = Vec::new();
        // Nothing to read: the wait sleeps out its timeout.
        let t0 = Instant::now();
        ring.wait(Some(Duration::from_millis(100)), &mut events)
            .unwrap();
        assert!(events.is_empty());
        assert!(t0.elapsed() >= Duration::from_millis(90));
        for round in 0..3u32 {
            let sender = std::thread::spawn({
                let src = tx.mac();
                let f = frame(mac_b, src, ETH_P_AOE, round, 64);
                let tx = PacketSocket::open(Lab::VETH_A).unwrap();
                move || {
                    std::thread::sleep(Duration::from_millis(50));
                    tx.send_blocking(&f).unwrap();
                }
            });
            // The readiness poll ends a long wait as soon as the frame is in.
            let t0 = Instant::now();
            while events.is_empty() && t0.elapsed() < Duration::from_secs(5) {
                ring.wait(Some(Duration::from_secs(10)), &mut events)
                    .unwrap();
            }
            assert!(t0.elapsed() < Duration::from_secs(5));
            sender.join().unwrap();
            let Some(Completion::Frame { buf, .. }) = events.pop() else {
                panic!("expected a frame, got {events:?}");
            };
            assert_eq!(seq_of(ring.frame(&buf)), round);
            ring.recycle(buf);
            assert!(events.is_empty());
        }
    });
}

#[test]
fn spin_sends_what_is_queued_then_finds_a_frame_without_sleeping() {
    in_veth_pair("ring-mapped", 1500, move || {
        let rx = receiver(&RingConfig::default(), &mapped(16));
        let (Sender { tx, to: mac_b }, mut ring, b) = (rx.sender, rx.ring, rx.b);
        let mut events = Vec::new();
        // A reply queued before the spin goes out at its start; nothing comes back, so
        // the spin ends after its budget with the send's completion.
        ring.send_copy(b, &frame(tx.mac(), mac_b, ETH_P_AOE, 1, 64), 5)
            .unwrap();
        let t0 = Instant::now();
        let found = ring
            .spin_for_frames(Duration::from_millis(3), &mut events)
            .unwrap();
        assert_eq!(found, 0);
        assert!(t0.elapsed() >= Duration::from_millis(3));
        assert!(
            matches!(
                events[..],
                [Completion::SendDone {
                    user: 5,
                    result: Ok(_),
                    ..
                }]
            ),
            "{events:?}"
        );
        let mut got = [0u8; 2048];
        let n = tx
            .recv_timeout(&mut got, Some(Duration::from_secs(5)))
            .unwrap()
            .expect("the reply sent by the spin");
        assert_eq!(seq_of(&got[..n]), 1);
        assert_eq!(ring.ops_in_flight(), 0);
        // A frame sent while the ring spins ends the spin long before its budget.
        events.clear();
        let sender = std::thread::spawn({
            let f = frame(mac_b, tx.mac(), ETH_P_AOE, 2, 64);
            move || {
                std::thread::sleep(Duration::from_millis(20));
                tx.send_blocking(&f).unwrap();
            }
        });
        let t0 = Instant::now();
        let found = ring
            .spin_for_frames(Duration::from_secs(10), &mut events)
            .unwrap();
        assert!(t0.elapsed() < Duration::from_secs(5));
        sender.join().unwrap();
        assert_eq!(found, 1);
        let Some(Completion::Frame { buf, .. }) = events.pop() else {
            panic!("expected a frame, got {events:?}");
        };
        assert_eq!(seq_of(ring.frame(&buf)), 2);
        ring.recycle(buf);
    });
}

#[test]
fn mapped_frames_are_written_to_files_through_a_send_slot() {
    in_veth_pair("ring-mapped", 1500, move || {
        // The smallest ring (one block): a slot kept by the write would stall it
        // within a round.
        let mut rx = receiver(&RingConfig::default(), &mapped(1));
        let slots = rx.ring.socket(rx.b).unwrap().rx_ring_frames();
        let file = tempfile_in_shm();
        let ring = &mut rx.ring;
        let fid = ring.register_file(&file).unwrap();
        let free = ring.free_send_slots();
        rx.sender.send(7, 512);
        let mut got = None;
        gather(ring, 1, |_, _, buf| {
            got = Some(buf);
            None
        });
        let buf = got.expect("frame");
        let sent = ring.frame(&buf)[..512].to_vec();
        ring.file_io(FileOp::Write, fid, buf, 0..512, 4096, 9)
            .unwrap();
        assert_eq!(
            ring.free_send_slots(),
            free - 1,
            "the copy holds a send slot"
        );
        let mut events = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        let done = loop {
            ring.wait(Some(Duration::from_millis(100)), &mut events)
                .unwrap();
            if let Some(i) = events
                .iter()
                .position(|e| matches!(e, Completion::IoDone { user: 9, .. }))
            {
                break events.swap_remove(i);
            }
            assert!(Instant::now() < deadline, "no write completion");
        };
        let Completion::IoDone { result, buf, .. } = done else {
            unreachable!()
        };
        assert_eq!(result, Ok(512));
        ring.release(buf.expect("the send slot comes back"));
        assert_eq!(ring.free_send_slots(), free);
        let mut on_disk = vec![0u8; 512];
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut on_disk, 4096).unwrap();
        assert_eq!(on_disk, sent);
        // Reading into a ring slot is refused, and the slot goes back.
        rx.sender.send(8, 512);
        let mut got = None;
        gather(&mut rx.ring, 1, |_, _, buf| {
            got = Some(buf);
            None
        });
        let err = rx
            .ring
            .file_io(FileOp::Read, fid, got.expect("frame"), 0..512, 0, 1)
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        let mut seqs = Vec::new();
        for seq in 9..9 + 2 * slots + 1 {
            rx.sender.send(seq, 512);
            gather(&mut rx.ring, 1, |ring, _, buf| {
                seqs.push(seq_of(ring.frame(&buf)));
                Some(buf)
            });
        }
        assert_eq!(seqs, (9..9 + 2 * slots + 1).collect::<Vec<_>>());
    });
}

fn tempfile_in_shm() -> std::fs::File {
    let path = std::env::temp_dir().join(format!("aoe-uring-mapped-{}", std::process::id()));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    f
}

#[test]
fn qdisc_bypass_sends_reach_the_peer() {
    in_veth_pair("ring-mapped", 1500, move || {
        let opts = SocketOptions {
            qdisc_bypass: true,
            ..SocketOptions::default()
        };
        let (mut ring, a, b, mac_a, mac_b) =
            both_ends_with(&RingConfig::default(), &opts, &mapped(64));
        assert!(ring.socket(a).unwrap().qdisc_bypass());
        assert!(!PacketSocket::open(Lab::VETH_A).unwrap().qdisc_bypass());
        send_seqs(&mut ring, a, (mac_b, mac_a), 0..20, 300);
        let mut seqs = Vec::new();
        let seen = gather(&mut ring, 20, |ring, sock, buf| {
            assert_eq!(sock, b);
            seqs.push(seq_of(ring.frame(&buf)));
            Some(buf)
        });
        assert_eq!(seen, 20);
        assert_eq!(seqs, (0..20).collect::<Vec<_>>());
    });
}
