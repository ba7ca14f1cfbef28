//! A request/reply server on one end of a veth pair, as a target would run: the ring
//! (multishot receive, replies built in send slots, all sent in one submit per pass)
//! against a vblade-style loop (one blocking recv(2) and one send(2) per request).
//!
//! A client thread with its own ring keeps `QD` requests of 60 bytes outstanding; the
//! server answers each with a reply of `bytes`. Reported: requests/s (client wall clock)
//! and the server thread's CPU time per request. Root needed. Run:
//! `cargo bench -p aoe-uring --bench veth_reflector` (env `REQUESTS`, default 50000;
//! `RUNS`, default 5; `LENS`, `QDS` comma lists; `SINGLE_ISSUER=1` for the server ring's
//! `RingConfig::single_issuer`; `ONLY=ring|sys` to run one server kind, for profiling).

mod support;
#[path = "../tests/veth/mod.rs"]
mod veth;

use aoe_uring::sys::thread_cpu_time;
use aoe_uring::{Completion, PacketSocket, Ring, RingConfig, SocketOptions, ETH_P_AOE};
use aoeraid_lab::frames::{frame, seq_of};
use aoeraid_lab::Lab;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{compare, env_list, env_or, with_single_issuer_from_env, Run};
use veth::recycle_frames;

const STOP: u32 = u32::MAX;

/// Turn a request into the first bytes of a reply: swap the MAC addresses.
fn reply_header(req: &[u8], out: &mut [u8]) {
    out[..6].copy_from_slice(&req[6..12]);
    out[6..12].copy_from_slice(&req[..6]);
    out[12..18].copy_from_slice(&req[12..18]);
}

/// Ring server: returns (requests served, CPU time).
fn ring_server(reply_len: usize, ready: Arc<AtomicBool>) -> (u64, Duration) {
    let mut ring = Ring::with_config(&with_single_issuer_from_env(RingConfig {
        send_slots: 256,
        ..RingConfig::default()
    }))
    .unwrap();
    let s = ring
        .add_socket(PacketSocket::open(Lab::VETH_B).unwrap())
        .unwrap();
    let mut events = Vec::with_capacity(1024);
    ring.wait(Some(Duration::ZERO), &mut events).unwrap();
    ready.store(true, Ordering::Release);
    let cpu0 = thread_cpu_time();
    let mut served = 0u64;
    'outer: loop {
        ring.wait(Some(Duration::from_millis(100)), &mut events)
            .unwrap();
        for ev in events.drain(..) {
            if let Completion::Frame { buf, .. } = ev {
                let req = ring.frame(&buf);
                if seq_of(req) == STOP {
                    ring.recycle(buf);
                    break 'outer;
                }
                if let Some(mut slot) = ring.send_slot() {
                    reply_header(req, ring.slot_mut(&mut slot));
                    let _ = ring.submit_send(s, slot, reply_len, 0);
                    served += 1;
                }
                ring.recycle(buf);
            }
        }
    }
    (served, thread_cpu_time() - cpu0)
}

/// vblade-style server: blocking recv + send per request.
fn syscall_server(reply_len: usize, ready: Arc<AtomicBool>) -> (u64, Duration) {
    let opts = SocketOptions {
        nonblocking: false,
        ..Default::default()
    };
    let sock = PacketSocket::open_with(Lab::VETH_B, &opts).unwrap();
    let mut req = vec![0u8; aoe_uring::JUMBO_FRAME];
    let mut reply = vec![0u8; reply_len];
    ready.store(true, Ordering::Release);
    let cpu0 = thread_cpu_time();
    let mut served = 0u64;
    loop {
        let n = sock.recv(&mut req).unwrap();
        if n >= 18 && seq_of(&req[..n]) == STOP {
            break;
        }
        reply_header(&req[..n], &mut reply);
        sock.send_blocking(&reply).unwrap();
        served += 1;
    }
    (served, thread_cpu_time() - cpu0)
}

/// Client: keeps `qd` requests outstanding until `total` replies came back.
fn client(total: u64, qd: u64) -> (f64, u64) {
    let mut ring = Ring::new().unwrap();
    let c = ring
        .add_socket(PacketSocket::open(Lab::VETH_A).unwrap())
        .unwrap();
    let mac = ring.socket(c).unwrap().mac();
    let peer = aoe_uring::InterfaceInfo::lookup(Lab::VETH_B).unwrap().mac;
    let mut events = Vec::with_capacity(1024);
    ring.wait(Some(Duration::ZERO), &mut events).unwrap();
    let start = Instant::now();
    let (mut sent, mut got, mut lost) = (0u64, 0u64, 0u64);
    let mut last_progress = Instant::now();
    while got + lost < total {
        while sent - got - lost < qd && sent < total {
            ring.send_copy(c, &frame(peer, mac, ETH_P_AOE, sent as u32, 46), 0)
                .unwrap();
            sent += 1;
        }
        let arrived = recycle_frames(&mut ring, Duration::from_millis(100), &mut events);
        if arrived > 0 {
            got += arrived;
            last_progress = Instant::now();
        }
        if last_progress.elapsed() > Duration::from_secs(1) {
            // Replies that did not come within a second count as lost (none expected).
            lost = sent - got;
            last_progress = Instant::now();
        }
    }
    let rate = got as f64 / start.elapsed().as_secs_f64();
    ring.send_copy(c, &frame(peer, mac, ETH_P_AOE, STOP, 46), 0)
        .unwrap();
    ring.wait(Some(Duration::from_millis(10)), &mut events)
        .unwrap();
    (rate, lost)
}

fn run(ring_side: bool, total: u64, qd: u64, reply_len: usize) -> Run {
    let ready = Arc::new(AtomicBool::new(false));
    let r2 = Arc::clone(&ready);
    // A new thread starts in its creator's network namespace: the lab's.
    let server = std::thread::spawn(move || {
        if ring_side {
            ring_server(reply_len, r2)
        } else {
            syscall_server(reply_len, r2)
        }
    });
    while !ready.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let (rate, lost) = client(total, qd);
    let (served, cpu) = server.join().unwrap();
    Run {
        per_s: rate,
        cpu_ns: cpu.as_nanos() as f64 / served.max(1) as f64,
        lost,
    }
}

fn main() {
    let total = env_or("REQUESTS", 50_000);
    let runs = env_or("RUNS", 5) as usize;
    let lab = Lab::veth_pair("veth-reflector", 9000).expect("veth lab");
    lab.in_ns(move || {
        println!(
            "request/reply over veth (MTU 9000), {total} requests per run, median of {runs} runs"
        );
        println!("req/s = client wall clock; cpu = server thread CPU ns per request");
        compare(
            runs,
            "reply",
            ("qd", env_list("QDS", &[1, 16])),
            "r/s",
            |ring_side, len, qd| run(ring_side, total, qd, len),
        );
    });
}
