//! Ring send/receive through a veth pair in a private network namespace (root needed).

mod veth;

use aoe_uring::{
    Completion, FileOp, PacketSocket, Ring, RingConfig, SockId, SocketOptions, ETH_P_AOE,
};
use aoeraid_lab::frames::{frame, seq_of};
use aoeraid_lab::Lab;
use std::time::{Duration, Instant};
use veth::{
    both_ends, both_ends_with, gather, in_veth_pair, pump, receiver, recycle_frames, send_seqs,
    Receiver, Sender,
};

fn defaults() -> (RingConfig, SocketOptions) {
    (RingConfig::default(), SocketOptions::default())
}

/// Wait on `ring` until `want` frames arrived (or 5 s passed), checking each with `check`
/// and recycling it. Returns the frames seen.
fn collect(ring: &mut Ring, want: usize, mut check: impl FnMut(SockId, &[u8])) -> usize {
    gather(ring, want, |ring, sock, buf| {
        check(sock, ring.frame(&buf));
        Some(buf)
    })
}

#[test]
fn frames_both_ways_multishot_and_batched() {
    in_veth_pair("ring-net", 1500, move || {
        let (cfg, opts) = defaults();
        let (mut ring, a, b, mac_a, mac_b) = both_ends(&cfg, &opts);
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

#[test]
fn jumbo_frames_at_mtu_9000() {
    in_veth_pair("ring-net", 9000, move || {
        let (cfg, opts) = defaults();
        let (mut ring, a, b, mac_a, mac_b) = both_ends(&cfg, &opts);
        let sa = ring.socket(a).unwrap();
        assert_eq!(sa.mtu(), 9000);
        assert_eq!(sa.interface().max_frame_len(), 9014);
        for seq in 0..50 {
            ring.send_copy(a, &frame(mac_b, mac_a, ETH_P_AOE, seq, 9000), 0)
                .unwrap();
            ring.send_copy(b, &frame(mac_a, mac_b, ETH_P_AOE, seq, 9000), 0)
                .unwrap();
        }
        let seen = collect(&mut ring, 100, |sock, f| {
            assert_eq!(f.len(), 9014);
            let (dst, src) = if sock == a {
                (mac_a, mac_b)
            } else {
                (mac_b, mac_a)
            };
            assert_eq!(f, &frame(dst, src, ETH_P_AOE, seq_of(f), 9000)[..]);
        });
        assert_eq!(seen, 100);
        assert_eq!(ring.stats().bytes_received, 100 * 9014);
    });
}

#[test]
fn other_ethertypes_are_not_received() {
    in_veth_pair("ring-net", 1500, move || {
        let (cfg, opts) = defaults();
        let Receiver {
            sender: Sender { tx, to: mac_b },
            mut ring,
            b,
        } = receiver(&cfg, &opts);
        // The socket is bound to 0x88A2 for receiving only; the frame bytes decide what
        // goes on the wire, so the same socket can emit other ethertypes.
        for (seq, ethertype) in [0x0800u16, 0x86DD, 0x88A3, 0x88A4, 0x8100]
            .into_iter()
            .enumerate()
        {
            tx.send_blocking(&frame(mac_b, tx.mac(), ethertype, seq as u32, 100))
                .unwrap();
        }
        tx.send_blocking(&frame(mac_b, tx.mac(), ETH_P_AOE, 99, 100))
            .unwrap();
        let mut got = Vec::new();
        let seen = collect(&mut ring, 1, |_, f| got.push(seq_of(f)));
        assert_eq!(seen, 1);
        // Give stray frames time to show up, then check none did.
        let mut events = Vec::new();
        ring.wait(Some(Duration::from_millis(100)), &mut events)
            .unwrap();
        assert!(events.is_empty(), "{events:?}");
        assert_eq!(got, vec![99]);
        assert_eq!(ring.socket(b).unwrap().stats().unwrap().received, 1);
    });
}

#[test]
fn blocking_helpers_and_socket_facts() {
    in_veth_pair("ring-net", 1500, move || {
        let a = PacketSocket::open(Lab::VETH_A).unwrap();
        let b = PacketSocket::open(Lab::VETH_B).unwrap();
        assert!(a.recv_buffer().forced, "root may force buffer sizes");
        assert!(a.recv_buffer().actual >= aoe_uring::DEFAULT_SOCKET_BUFFER);
        assert!(a.send_buffer().actual >= aoe_uring::DEFAULT_SOCKET_BUFFER);
        assert_eq!(a.name(), Lab::VETH_A);
        assert_ne!(a.ifindex(), b.ifindex());
        assert_ne!(a.mac(), b.mac());
        let mut buf = [0u8; 2000];
        assert_eq!(
            b.recv_timeout(&mut buf, Some(Duration::from_millis(20)))
                .unwrap(),
            None
        );
        let err = b.recv(&mut buf).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
        let f = frame(b.mac(), a.mac(), ETH_P_AOE, 5, 60);
        assert_eq!(a.send(&f).unwrap(), f.len());
        let n = b
            .recv_timeout(&mut buf, Some(Duration::from_secs(2)))
            .unwrap()
            .unwrap();
        assert_eq!(&buf[..n], &f[..]);
        // Truncation to the caller's buffer.
        a.send_blocking(&f).unwrap();
        let mut small = [0u8; 20];
        assert_eq!(
            b.recv_timeout(&mut small, Some(Duration::from_secs(2)))
                .unwrap(),
            Some(20)
        );
        assert_eq!(&small[..], &f[..20]);
    });
}

#[test]
fn kernel_drop_counters_when_flooded() {
    in_veth_pair("ring-net", 1500, move || {
        let tx = PacketSocket::open(Lab::VETH_A).unwrap();
        let opts = aoe_uring::SocketOptions {
            recv_buffer: 64 << 10,
            ..Default::default()
        };
        let rx = PacketSocket::open_with(Lab::VETH_B, &opts).unwrap();
        const SENT: u64 = 3000;
        for seq in 0..SENT {
            tx.send_blocking(&frame(rx.mac(), tx.mac(), ETH_P_AOE, seq as u32, 1400))
                .unwrap();
            if seq % 500 == 499 {
                // Let the softirq backlog drain into the socket so it, not the backlog,
                // is what overflows.
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        std::thread::sleep(Duration::from_millis(50));
        let st = rx.stats().unwrap();
        assert!(st.dropped > 0, "{st:?}");
        assert!(
            st.received > 0 && st.received + st.dropped <= SENT,
            "{st:?}"
        );
        // Reading resets the kernel's counters; the socket keeps the totals.
        assert_eq!(rx.stats().unwrap(), st);
        let mut buf = [0u8; 2000];
        let mut drained = 0;
        while rx.recv(&mut buf).is_ok() {
            drained += 1;
        }
        assert_eq!(drained, st.received);
    });
}

#[test]
fn receive_resumes_after_buffers_run_out() {
    in_veth_pair("ring-net", 1500, move || {
        let cfg = RingConfig {
            recv_buffers: 8,
            ..Default::default()
        };
        let rx = receiver(&cfg, &SocketOptions::default());
        const N: u32 = 40;
        rx.sender.send_each(0..N, 200);
        let mut ring = rx.ring;
        let mut events = Vec::new();
        // Hold every buffer we get: the multishot receive must stop with ENOBUFS.
        let mut held = Vec::new();
        pump(&mut ring, |_, ev| {
            if let Completion::Frame { buf, .. } = ev {
                held.push(buf);
            }
            held.len() >= 8
        });
        assert_eq!(held.len(), 8);
        ring.wait(Some(Duration::from_millis(50)), &mut events)
            .unwrap();
        assert!(events.is_empty());
        assert!(ring.stats().recv_no_buffers >= 1, "{:?}", ring.stats());
        assert_eq!(ring.recv_buffers_lent(), 8);
        let mut seqs: Vec<u32> = held.iter().map(|b| seq_of(ring.frame(b))).collect();
        for buf in held {
            ring.recycle(buf);
        }
        // The rest waited in the socket queue and now arrives.
        collect(&mut ring, (N - 8) as usize, |_, f| seqs.push(seq_of(f)));
        seqs.sort_unstable();
        assert_eq!(seqs, (0..N).collect::<Vec<_>>());
        assert!(ring.stats().recv_rearms >= 1);
    });
}

/// Frames spread by a PACKET_FANOUT group over two sockets, each on its own
/// ring: 200 frames whose source MACs cycle through `srcs`; the source MACs
/// each socket received, in order.
fn fanout_split(mode: aoe_uring::FanoutMode, srcs: &[[u8; 6]]) -> [Vec<[u8; 6]>; 2] {
    let srcs = srcs.to_vec();
    in_veth_pair("ring-net", 1500, move || {
        let tx = PacketSocket::open(Lab::VETH_A).unwrap();
        let mut rings: Vec<Ring> = (0..2).map(|_| Ring::new().unwrap()).collect();
        let group = (std::process::id() as u16) ^ 0x5a5a;
        let mut mac_b = [0; 6];
        for ring in rings.iter_mut() {
            let s = PacketSocket::open(Lab::VETH_B).unwrap();
            s.join_fanout(group, mode).unwrap();
            mac_b = s.mac();
            ring.add_socket(s).unwrap();
            ring.submit().unwrap();
        }
        const N: usize = 200;
        for seq in 0..N {
            let src = srcs[seq % srcs.len()];
            tx.send_blocking(&frame(mac_b, src, ETH_P_AOE, seq as u32, 100))
                .unwrap();
        }
        let mut got: [Vec<[u8; 6]>; 2] = Default::default();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut events = Vec::new();
        while got.iter().map(Vec::len).sum::<usize>() < N && Instant::now() < deadline {
            for (i, ring) in rings.iter_mut().enumerate() {
                ring.wait(Some(Duration::from_millis(10)), &mut events)
                    .unwrap();
                for ev in events.drain(..) {
                    if let Completion::Frame { buf, .. } = ev {
                        got[i].push(ring.frame(&buf)[6..12].try_into().unwrap());
                        ring.recycle(buf);
                    }
                }
            }
        }
        assert_eq!(got.iter().map(Vec::len).sum::<usize>(), N);
        got
    })
}

#[test]
fn fanout_lb_spreads_aoe_and_hash_does_not() {
    let one = [[0x02, 0, 0, 0, 0, 1]];
    let [x, y] = fanout_split(aoe_uring::FanoutMode::LoadBalance, &one);
    assert_eq!(
        (x.len(), y.len()),
        (100, 100),
        "round robin over two sockets"
    );
    let [x, y] = fanout_split(aoe_uring::FanoutMode::Hash, &one);
    assert!(
        x.is_empty() || y.is_empty(),
        "hash puts every AoE frame on one socket: {}/{}",
        x.len(),
        y.len()
    );
}

/// Each sender stays on one socket, and two senders whose MACs differ in one
/// bit (their byte XOR differs in bit 0) spread over both.
#[test]
fn fanout_by_source_mac_keeps_each_sender_on_one_socket() {
    let two = [[0x02, 0, 0, 0, 0, 1], [0x02, 0, 0, 0, 0, 2]];
    let got = fanout_split(aoe_uring::FanoutMode::BySourceMac, &two);
    for (i, macs) in got.iter().enumerate() {
        assert_eq!(macs.len(), 100, "socket {i}: {macs:02x?}");
        assert!(
            macs.iter().all(|m| *m == macs[0]),
            "socket {i} got frames of two senders: {macs:02x?}"
        );
    }
    assert_ne!(got[0][0], got[1][0]);
}

#[test]
fn frame_payload_written_to_o_direct_file_in_place() {
    let lab = Lab::veth_pair("ring-net", 9000).expect("veth lab");
    struct Remove(String);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let path = format!("/var/tmp/aoe-uring-{}-inplace", std::process::id());
    let _cleanup = Remove(path.clone());
    let path2 = path.clone();
    let result = lab.in_ns(move || {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .custom_flags(libc::O_DIRECT)
            .open(&path2)
            .unwrap();
        let cfg = RingConfig {
            align_payload_at: Some(36),
            ..Default::default()
        };
        let (mut ring, a, _, mac_a, mac_b) = both_ends(&cfg, &SocketOptions::default());
        let fid = ring.register_file(&file).unwrap();
        // 36 header bytes + 8192 payload bytes (the seq number sits in the header part).
        let f = frame(mac_b, mac_a, ETH_P_AOE, 3, 22 + 8192);
        ring.send_copy(a, &f, 0).unwrap();
        let mut wrote = None;
        pump(&mut ring, |ring, ev| {
            match ev {
                Completion::Frame { buf, .. } => {
                    assert_eq!(ring.frame(&buf), &f[..]);
                    ring.file_io(FileOp::Write, fid, buf, 36..36 + 8192, 0, 1)
                        .unwrap();
                    ring.sync_after_writes(fid, true, 2).unwrap();
                }
                Completion::IoDone {
                    user: 1,
                    result,
                    buf,
                } => {
                    assert_eq!(result, Ok(8192));
                    ring.release(buf.unwrap());
                }
                Completion::IoDone {
                    user: 2, result, ..
                } => wrote = Some(result),
                _ => {}
            }
            wrote.is_some()
        });
        assert_eq!(ring.recv_buffers_lent(), 0);
        (wrote, f)
    });
    let on_disk = std::fs::read(&path).unwrap();
    let (wrote, f) = result;
    assert_eq!(wrote, Some(Ok(0)));
    assert_eq!(&on_disk[..], &f[36..]);
}

#[test]
fn single_issuer_ring_moved_to_its_loop_thread() {
    in_veth_pair("ring-net", 1500, move || {
        let cfg = RingConfig {
            single_issuer: true,
            ..Default::default()
        };
        // Built here, run on another thread: the first wait there enables it.
        let (mut ring, a, b, mac_a, mac_b) = both_ends(&cfg, &SocketOptions::default());
        let t = std::thread::spawn(move || {
            send_seqs(&mut ring, a, (mac_b, mac_a), 0..100, 500);
            let seen = collect(&mut ring, 100, |sock, f| {
                assert_eq!(sock, b);
                assert_eq!(f, &frame(mac_b, mac_a, ETH_P_AOE, seq_of(f), 500)[..]);
            });
            assert_eq!(seen, 100);
            // Polling with a zero timeout still runs deferred completions.
            ring.send_copy(a, &frame(mac_b, mac_a, ETH_P_AOE, 7, 500), 0)
                .unwrap();
            let mut events = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(5);
            while !events.iter().any(|e| matches!(e, Completion::Frame { .. }))
                && Instant::now() < deadline
            {
                ring.wait(Some(Duration::ZERO), &mut events).unwrap();
            }
            for e in events {
                if let Completion::Frame { buf, .. } = e {
                    ring.recycle(buf);
                }
            }
            // Dropped on the thread that ran it.
        });
        t.join().unwrap();
    });
}

#[test]
fn oversize_frames_are_counted_and_dropped() {
    in_veth_pair("ring-net", 9000, move || {
        let cfg = RingConfig {
            recv_buffer_size: 2048,
            ..Default::default()
        };
        let mut rx = receiver(&cfg, &SocketOptions::default());
        rx.sender.send(1, 4000);
        rx.sender.send(2, 2048 - 14);
        let ring = &mut rx.ring;
        let mut got = Vec::new();
        assert_eq!(collect(ring, 1, |_, f| got.push((seq_of(f), f.len()))), 1);
        assert_eq!(got, vec![(2, 2048)]);
        assert_eq!(ring.stats().frames_truncated, 1);
        assert_eq!(ring.recv_buffers_lent(), 0);
    });
}

#[test]
fn oversize_send_is_reported_as_send_error() {
    in_veth_pair("ring-net", 1500, move || {
        let mut ring = Ring::new().unwrap();
        let a = ring
            .add_socket(PacketSocket::open(Lab::VETH_A).unwrap())
            .unwrap();
        let mac_a = ring.socket(a).unwrap().mac();
        ring.send_copy(a, &frame([0xff; 6], mac_a, ETH_P_AOE, 1, 3000), 77)
            .unwrap();
        let mut events = Vec::new();
        pump(&mut ring, |_, ev| {
            events.push(ev);
            true
        });
        match &events[..] {
            [Completion::SendDone {
                sock,
                user: 77,
                result: Err(e),
            }] => {
                assert_eq!(*sock, a);
                assert_eq!(e.0, libc::EMSGSIZE);
            }
            other => panic!("expected one failed SendDone, got {other:?}"),
        }
        assert_eq!(ring.stats().send_errors, 1);
        assert_eq!(
            ring.free_send_slots(),
            512,
            "the failed send freed its slot"
        );
    });
}

#[test]
fn link_down_is_reported_and_receive_recovers() {
    let lab = Lab::veth_pair("ring-net", 1500).expect("veth lab");
    let ns = lab.ns().to_string();
    lab.in_ns(move || {
        let (cfg, opts) = defaults();
        let Receiver {
            sender: Sender { tx, to: mac_b },
            mut ring,
            b,
        } = receiver(&cfg, &opts);
        let mut events = Vec::new();
        let ip = |state: &str| {
            let ok = std::process::Command::new("ip")
                .args(["-n", &ns, "link", "set", Lab::VETH_B, state])
                .status()
                .unwrap()
                .success();
            assert!(ok, "ip link set {state}");
        };
        ip("down");
        let mut errors = Vec::new();
        pump(&mut ring, |_, ev| match ev {
            Completion::RecvError { sock, error } => {
                errors.push((sock, error.0));
                true
            }
            other => panic!("unexpected {other:?}"),
        });
        assert_eq!(errors, vec![(b, libc::ENETDOWN)]);
        ip("up");
        // veth needs both ends up and a moment for carrier.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut got = 0;
        let mut seq = 0;
        while got == 0 && Instant::now() < deadline {
            let _ = tx.send(&frame(mac_b, tx.mac(), ETH_P_AOE, seq, 100));
            seq += 1;
            got += recycle_frames(&mut ring, Duration::from_millis(50), &mut events);
        }
        assert!(got > 0, "no frame after the link came back");
        assert!(ring.stats().recv_rearms >= 1);
    });
}

#[test]
fn completion_queue_overflow_loses_nothing() {
    in_veth_pair("ring-net", 1500, move || {
        // 8 SQ entries -> 32 CQ entries, far fewer than the frames that arrive at once.
        let cfg = RingConfig {
            sq_entries: 8,
            recv_buffers: 512,
            send_slots: 64,
            ..Default::default()
        };
        let rx = receiver(&cfg, &SocketOptions::default());
        const N: u32 = 300;
        rx.sender.send_each(0..N, 100);
        let Receiver {
            mut ring,
            b,
            sender: Sender { to: mac_b, .. },
        } = rx;
        // And many sends queued at once through the tiny submission queue.
        for seq in 0..60 {
            ring.send_copy(
                b,
                &frame([0xff; 6], mac_b, ETH_P_AOE, seq, 100),
                u64::from(seq),
            )
            .unwrap();
        }
        let mut seqs = Vec::new();
        let mut send_done = 0;
        pump(&mut ring, |ring, ev| {
            match ev {
                Completion::Frame { buf, .. } => {
                    seqs.push(seq_of(ring.frame(&buf)));
                    ring.recycle(buf);
                }
                Completion::SendDone { result, .. } => {
                    result.unwrap();
                    send_done += 1;
                }
                other => panic!("unexpected {other:?}"),
            }
            seqs.len() >= N as usize && send_done >= 60
        });
        seqs.sort_unstable();
        assert_eq!(seqs, (0..N).collect::<Vec<_>>());
        assert_eq!(send_done, 60);
    });
}

#[test]
fn sockets_do_not_receive_frames_sent_on_their_interface() {
    in_veth_pair("ring-net", 1500, move || {
        let ignoring = SocketOptions {
            ignore_outgoing: true,
            ..Default::default()
        };
        let (mut ring, a, b, mac_a, mac_b) =
            both_ends_with(&RingConfig::default(), &ignoring, &SocketOptions::default());
        let plain_a = ring
            .add_socket(PacketSocket::open(Lab::VETH_A).unwrap())
            .unwrap();
        send_seqs(&mut ring, a, (mac_b, mac_a), 0..20, 100);
        let mut seen = [0usize; 3];
        gather(&mut ring, 20, |_, sock, buf| {
            seen[sock.index()] += 1;
            Some(buf)
        });
        // Frames looped back to A's sockets would have come with B's or just after.
        let mut events = Vec::new();
        ring.wait(Some(Duration::from_millis(100)), &mut events)
            .unwrap();
        for ev in events {
            if let Completion::Frame { sock, buf } = ev {
                seen[sock.index()] += 1;
                ring.recycle(buf);
            }
        }
        assert_eq!(seen[b.index()], 20);
        // Neither with the option nor without: the kernel loops outgoing frames back only
        // to sockets bound to every ethertype.
        assert_eq!(seen[a.index()], 0, "{seen:?}");
        assert_eq!(seen[plain_a.index()], 0, "{seen:?}");
    });
}
