//! Frames per second through a veth pair: the io_uring ring (batched sends, multishot
//! receive) against one blocking send(2) + recv(2) per frame, in the same run.
//!
//! Root needed (creates a private network namespace). Run:
//! `cargo bench -p aoe-uring --bench veth_frames` (env `FRAMES` = frames per run,
//! default 100000; `RUNS` = runs per case, default 5; `LENS`, `BATCHES` = comma lists;
//! `ONLY=ring|sys` for profiling one side; `SINGLE_ISSUER=1` for
//! `RingConfig::single_issuer`; `TX_RING=n` sends through a mapped transmit ring of n
//! slots, `RX_RING=n` receives through a mapped receive ring of n slots). Prints the
//! median of the runs.

mod support;
#[path = "../tests/veth/mod.rs"]
mod veth;

use aoe_uring::sys::thread_cpu_time;
use aoe_uring::{PacketSocket, Ring, RingConfig, SocketOptions, ETH_P_AOE};
use aoeraid_lab::frames::frame;
use aoeraid_lab::Lab;
use std::ops::Range;
use std::time::{Duration, Instant};
use support::{compare, env_list, env_or, with_single_issuer_from_env, Run};
use veth::recycle_frames;

/// One run through the ring: queue `batch` sends on A, then wait until B has them all.
fn ring_run(frames: u64, batch: u64, len: usize) -> Run {
    let cfg = with_single_issuer_from_env(RingConfig {
        sq_entries: 512,
        recv_buffers: env_or("RECV_BUFS", 1024) as u16,
        send_slots: 512,
        ..RingConfig::default()
    });
    let mut ring = Ring::with_config(&cfg).expect("ring");
    let opts = |ring_env: &str, tx: bool| SocketOptions {
        tx_ring_frames: if tx { env_or(ring_env, 0) as u32 } else { 0 },
        rx_ring_frames: if tx { 0 } else { env_or(ring_env, 0) as u32 },
        ..SocketOptions::default()
    };
    let a = ring
        .add_socket(PacketSocket::open_with(Lab::VETH_A, &opts("TX_RING", true)).unwrap())
        .unwrap();
    let b = ring
        .add_socket(PacketSocket::open_with(Lab::VETH_B, &opts("RX_RING", false)).unwrap())
        .unwrap();
    let (mac_a, mac_b) = (ring.socket(a).unwrap().mac(), ring.socket(b).unwrap().mac());
    let template = frame(mac_b, mac_a, ETH_P_AOE, 0, len - 14);
    // Fill every slot with the frame once; per frame only the sequence number is written,
    // as a protocol engine writes its headers into a slot.
    let mut slots = Vec::new();
    while let Some(mut slot) = ring.send_slot() {
        ring.slot_mut(&mut slot)[..len].copy_from_slice(&template);
        slots.push(slot);
    }
    for slot in slots {
        ring.release_slot(slot);
    }
    let mut events = Vec::with_capacity(4096);
    ring.wait(Some(Duration::ZERO), &mut events).unwrap();
    let mut received = 0;
    timed(frames, batch, |seqs| {
        let sent = seqs.end;
        for seq in seqs {
            let mut slot = ring.send_slot().expect("slot");
            ring.slot_mut(&mut slot)[14..18].copy_from_slice(&(seq as u32).to_be_bytes());
            ring.submit_send(a, slot, len, 0).unwrap();
        }
        // Collect this batch (bounded wait so a lost frame cannot hang the bench).
        let deadline = Instant::now() + Duration::from_millis(200);
        while received < sent && Instant::now() < deadline {
            received += recycle_frames(&mut ring, Duration::from_millis(50), &mut events);
        }
        received
    })
}

/// One run with one blocking syscall per frame and per receive, same batching.
fn syscall_run(frames: u64, batch: u64, len: usize) -> Run {
    let opts = aoe_uring::SocketOptions {
        nonblocking: false,
        ..Default::default()
    };
    let tx = PacketSocket::open_with(Lab::VETH_A, &opts).unwrap();
    let rx = PacketSocket::open_with(Lab::VETH_B, &opts).unwrap();
    let mut template = frame(rx.mac(), tx.mac(), ETH_P_AOE, 0, len - 14);
    let mut buf = vec![0u8; aoe_uring::JUMBO_FRAME];
    let mut received = 0;
    timed(frames, batch, |seqs| {
        let sent = seqs.end;
        for seq in seqs {
            template[14..18].copy_from_slice(&(seq as u32).to_be_bytes());
            tx.send(&template).unwrap();
        }
        while received < sent {
            match rx
                .recv_timeout(&mut buf, Some(Duration::from_millis(200)))
                .unwrap()
            {
                Some(_) => received += 1,
                None => break,
            }
        }
        received
    })
}

/// Sends `frames` frames in batches of `batch`: `batch_done(seqs)` sends the frames
/// numbered `seqs` and returns how many have arrived in all once it stops waiting for
/// them. Measures the rate and this thread's CPU time per frame.
fn timed(frames: u64, batch: u64, mut batch_done: impl FnMut(Range<u64>) -> u64) -> Run {
    let start = Instant::now();
    let cpu0 = thread_cpu_time();
    let (mut sent, mut received) = (0, 0);
    while sent < frames {
        let n = batch.min(frames - sent);
        received = batch_done(sent..sent + n);
        sent += n;
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = (thread_cpu_time() - cpu0).as_nanos() as f64;
    Run {
        per_s: received as f64 / secs,
        cpu_ns: cpu / received.max(1) as f64,
        lost: sent - received,
    }
}

fn main() {
    let frames = env_or("FRAMES", 100_000);
    let runs = env_or("RUNS", 5) as usize;
    let lab = Lab::veth_pair("veth-frames", 9000).expect("veth lab");
    lab.in_ns(move || {
        println!("veth pair, MTU 9000, {frames} frames per run, median of {runs} runs, one thread");
        println!(
            "fr/s = frames per second (wall clock); cpu = CPU ns per frame (user+sys, this thread)"
        );
        compare(
            runs,
            "bytes",
            ("batch", env_list("BATCHES", &[1, 16, 64])),
            "fr/s",
            |ring_side, len, batch| {
                if ring_side {
                    ring_run(frames, batch, len)
                } else {
                    syscall_run(frames, batch, len)
                }
            },
        );
    });
}
