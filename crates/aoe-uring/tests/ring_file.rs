//! File I/O, durability barriers and timers through the ring (no network needed).

use aoe_uring::{Completion, FileId, FileOp, IoBuffer, Ring, RingConfig, Segment};
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A file under /var/tmp (a real disk: tmpfs refuses O_DIRECT), removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(tag: &str) -> TempFile {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        TempFile(PathBuf::from(format!(
            "/var/tmp/aoe-uring-{}-{tag}-{n}",
            std::process::id()
        )))
    }

    fn open(&self, direct: bool) -> File {
        let mut o = OpenOptions::new();
        o.read(true).write(true).create(true);
        if direct {
            o.custom_flags(libc::O_DIRECT);
        }
        o.open(&self.0).unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn pattern(seed: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (seed.wrapping_mul(0x9e37_79b9).wrapping_add(i as u64 * 7) >> 3) as u8)
        .collect()
}

fn io_ring(io_buffers: u32) -> Ring {
    Ring::with_config(&RingConfig {
        io_buffers,
        io_buffer_size: 64 << 10,
        recv_buffers: 16,
        send_slots: 16,
        align_payload_at: Some(36),
        ..RingConfig::default()
    })
    .unwrap()
}

/// A fresh temporary file (`tag`, opened O_DIRECT if `direct`) registered with a new
/// ring of `io_buffers` I/O buffers.
fn file_ring(tag: &str, direct: bool, io_buffers: u32) -> (TempFile, Ring, FileId) {
    let tf = TempFile::new(tag);
    let ring = io_ring(io_buffers);
    let fid = ring.register_file(&tf.open(direct)).unwrap();
    (tf, ring, fid)
}

/// Wait until `n` completions arrived (5 s limit).
fn wait_for(ring: &mut Ring, n: usize) -> Vec<Completion> {
    let mut all = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while all.len() < n && Instant::now() < deadline {
        ring.wait(Some(Duration::from_millis(200)), &mut all)
            .unwrap();
    }
    assert_eq!(all.len(), n, "completions: {all:?}");
    all
}

/// The file's bytes, read without the ring.
fn on_disk(tf: &TempFile) -> Vec<u8> {
    let mut bytes = Vec::new();
    File::open(&tf.0).unwrap().read_to_end(&mut bytes).unwrap();
    bytes
}

/// Queues a write of `data` at `offset` from a fresh I/O buffer.
fn write_from_io_buf(ring: &Ring, fid: FileId, data: &[u8], offset: u64, user: u64) {
    let mut buf = ring.io_buf().unwrap();
    ring.io_bytes_mut(&mut buf)[..data.len()].copy_from_slice(data);
    ring.file_io(FileOp::Write, fid, buf, 0..data.len(), offset, user)
        .unwrap();
}

fn io_done(c: Completion) -> (u64, Result<usize, aoe_uring::Errno>, Option<IoBuffer>) {
    match c {
        Completion::IoDone { user, result, buf } => (user, result, buf),
        other => panic!("expected IoDone, got {other:?}"),
    }
}

#[test]
fn durable_write_needs_no_sync() {
    // RWF_DSYNC: accepted by the kernel for buffered and O_DIRECT files, and
    // the data is there without an fsync of ours.
    for direct in [false, true] {
        let (tf, mut ring, fid) = file_ring("dsync", direct, 1);
        let data = pattern(5, 8192);
        let mut buf = ring.io_buf().unwrap();
        ring.io_bytes_mut(&mut buf)[..data.len()].copy_from_slice(&data);
        ring.file_io(FileOp::DurableWrite, fid, buf, 0..data.len(), 4096, 7)
            .unwrap();
        let (user, result, buf) = io_done(wait_for(&mut ring, 1).pop().unwrap());
        assert_eq!((user, result), (7, Ok(data.len())));
        ring.release(buf.unwrap());
        assert_eq!(&on_disk(&tf)[4096..], &data[..]);
    }
}

/// A send slot holding `data` after a 36-byte header, as a segment for `user`.
fn slot_segment(ring: &Ring, data: &[u8], user: u64) -> Segment {
    let mut slot = ring.send_slot().unwrap();
    ring.slot_mut(&mut slot)[36..36 + data.len()].copy_from_slice(data);
    Segment {
        buf: slot.into(),
        range: 36..36 + data.len(),
        user,
    }
}

/// The bytes of a buffer a completion handed back.
fn bytes(ring: &Ring, buf: &mut IoBuffer) -> Vec<u8> {
    match buf {
        IoBuffer::Slot(s) => ring.slot_mut(s).to_vec(),
        IoBuffer::Io(b) => ring.io_bytes(b).to_vec(),
        IoBuffer::Frame(f) => ring.frame(f).to_vec(),
    }
}

#[test]
fn vectored_write_and_read_complete_once_per_segment() {
    // Payloads of three frames (1 KiB, 8 KiB, 512 B) to consecutive sectors in one
    // durable write, then read back in one read: into send slots alone (one registered
    // buffer: READV_FIXED where the kernel has it), then into an I/O buffer and slots
    // (two registered buffers: plain READV), reaching past the end of the file.
    for direct in [false, true] {
        let (tf, mut ring, fid) = file_ring("vectored", direct, 1);
        let data: Vec<Vec<u8>> = [1024, 8192, 512]
            .iter()
            .enumerate()
            .map(|(i, &n)| pattern(i as u64 + 20, n))
            .collect();
        let segments = data
            .iter()
            .enumerate()
            .map(|(i, d)| slot_segment(&ring, d, 10 + i as u64));
        ring.file_io_vectored(FileOp::DurableWrite, fid, segments, 4096)
            .unwrap();
        let done: Vec<_> = wait_for(&mut ring, 3).into_iter().map(io_done).collect();
        for (i, (user, result, buf)) in done.into_iter().enumerate() {
            assert_eq!((user, result), (10 + i as u64, Ok(data[i].len())));
            ring.release(buf.expect("each segment's buffer comes back"));
        }
        assert_eq!(ring.stats().io_ops, 1, "one operation");
        let all = data.concat();
        assert_eq!(&on_disk(&tf)[4096..], &all[..], "durable without a sync");

        for mixed in [false, true] {
            // The file ends 9728 bytes after 4096: the third segment gets 512 of
            // its 1024 bytes, the fourth none.
            let mut segments: Vec<Segment> = [1024, 8192, 1024, 512]
                .iter()
                .enumerate()
                .map(|(i, &n)| slot_segment(&ring, &vec![0xEE; n], 20 + i as u64))
                .collect();
            if mixed {
                let io = ring.io_buf().unwrap();
                ring.release(std::mem::replace(&mut segments[1].buf, io.into()));
                segments[1].range = 0..8192;
            }
            let ranges: Vec<_> = segments.iter().map(|s| s.range.clone()).collect();
            ring.file_io_vectored(FileOp::Read, fid, segments, 4096)
                .unwrap();
            let done: Vec<_> = wait_for(&mut ring, 4).into_iter().map(io_done).collect();
            let mut read = Vec::new();
            for (i, (user, result, buf)) in done.into_iter().enumerate() {
                let mut buf = buf.unwrap();
                let got = result.unwrap();
                assert_eq!(user, 20 + i as u64);
                assert_eq!(got, [1024, 8192, 512, 0][i], "segment {i}, direct {direct}");
                read.extend_from_slice(&bytes(&ring, &mut buf)[ranges[i].start..][..got]);
                ring.release(buf);
            }
            assert_eq!(read, all, "direct {direct}, mixed {mixed}");
        }
        assert_eq!(ring.free_io_bufs(), 1);
    }
}

#[test]
fn a_failed_vectored_write_fails_every_segment() {
    let tf = TempFile::new("vro");
    drop(tf.open(false));
    let mut ring = io_ring(0);
    let fid = ring.register_file(&File::open(&tf.0).unwrap()).unwrap();
    let segments = (0..3).map(|i| slot_segment(&ring, &[7; 512], i));
    ring.file_io_vectored(FileOp::Write, fid, segments, 0)
        .unwrap();
    let done: Vec<_> = wait_for(&mut ring, 3).into_iter().map(io_done).collect();
    for (i, (user, result, buf)) in done.into_iter().enumerate() {
        assert_eq!(user, i as u64);
        assert_eq!(result.unwrap_err().0, libc::EBADF);
        ring.release(buf.unwrap());
    }
    // Refused at submission: every buffer is given back.
    let free = ring.free_send_slots();
    let segments = [
        slot_segment(&ring, &[1; 512], 1),
        slot_segment(&ring, &[2; 512], 2),
    ];
    ring.unregister_file(fid).unwrap();
    assert!(ring
        .file_io_vectored(FileOp::Write, fid, segments, 0)
        .is_err());
    assert!(ring
        .file_io_vectored(FileOp::Read, fid, std::iter::empty(), 0)
        .is_err());
    assert_eq!(ring.free_send_slots(), free);
}

#[test]
fn buffered_write_fdatasync_read() {
    let (tf, mut ring, fid) = file_ring("buffered", false, 4);
    let data = pattern(1, 20_000);
    write_from_io_buf(&ring, fid, &data, 1000, 1);
    let (user, result, buf) = io_done(wait_for(&mut ring, 1).pop().unwrap());
    assert_eq!((user, result), (1, Ok(data.len())));
    ring.release(buf.unwrap());
    ring.fsync(fid, true, 2).unwrap();
    let (user, result, buf) = io_done(wait_for(&mut ring, 1).pop().unwrap());
    assert_eq!((user, result, buf), (2, Ok(0), None));

    assert_eq!(&on_disk(&tf)[1000..], &data[..]);

    let rbuf = ring.io_buf().unwrap();
    ring.file_io(FileOp::Read, fid, rbuf, 100..100 + data.len(), 1000, 3)
        .unwrap();
    let (user, result, buf) = io_done(wait_for(&mut ring, 1).pop().unwrap());
    assert_eq!((user, result), (3, Ok(data.len())));
    let buf = buf.unwrap().into_io_buf().unwrap();
    assert_eq!(&ring.io_bytes(&buf)[100..100 + data.len()], &data[..]);
    ring.release_io_buf(buf);
    assert_eq!(ring.free_io_bufs(), 4);
    assert_eq!(ring.stats().io_ops, 3);
}

#[test]
fn o_direct_into_send_slot_payload() {
    let (_tf, mut ring, fid) = file_ring("direct", true, 2);
    let data = pattern(2, 8192);
    write_from_io_buf(&ring, fid, &data, 4096, 10);
    ring.sync_after_writes(fid, true, 11).unwrap();
    let mut done: Vec<_> = wait_for(&mut ring, 2).into_iter().map(io_done).collect();
    assert_eq!(done[0].0, 10, "write completes before its barrier");
    assert_eq!(done[0].1, Ok(8192));
    assert_eq!((done[1].0, done[1].1), (11, Ok(0)));
    ring.release(done[0].2.take().unwrap());

    // Read the same sectors with O_DIRECT straight into a send slot after a 36-byte header.
    let mut slot = ring.send_slot().unwrap();
    ring.slot_mut(&mut slot)[..36].fill(0xAB);
    ring.file_io(FileOp::Read, fid, slot, 36..36 + 8192, 4096, 12)
        .unwrap();
    let (user, result, buf) = io_done(wait_for(&mut ring, 1).pop().unwrap());
    assert_eq!((user, result), (12, Ok(8192)));
    let mut slot = buf.unwrap().into_slot().expect("slot comes back");
    let bytes = ring.slot_mut(&mut slot);
    assert!(bytes[..36].iter().all(|&b| b == 0xAB), "header untouched");
    assert_eq!(&bytes[36..36 + 8192], &data[..]);
    ring.release_slot(slot);
    assert_eq!(ring.free_io_bufs(), 2);
}

#[test]
fn many_writes_one_barrier() {
    let (tf, mut ring, fid) = file_ring("barrier", false, 8);
    for i in 0..8u64 {
        write_from_io_buf(&ring, fid, &pattern(i, 4096), i * 4096, i);
    }
    ring.sync_after_writes(fid, true, 100).unwrap();
    let done: Vec<_> = wait_for(&mut ring, 9).into_iter().map(io_done).collect();
    let barrier_pos = done.iter().position(|d| d.0 == 100).unwrap();
    assert_eq!(barrier_pos, 8, "the barrier completes after all 8 writes");
    for (user, result, buf) in done {
        assert!(result.is_ok(), "op {user}: {result:?}");
        if let Some(b) = buf {
            ring.release(b);
        }
    }
    let mut on_disk = Vec::new();
    File::open(&tf.0)
        .unwrap()
        .read_to_end(&mut on_disk)
        .unwrap();
    for i in 0..8usize {
        assert_eq!(
            &on_disk[i * 4096..(i + 1) * 4096],
            &pattern(i as u64, 4096)[..]
        );
    }
}

#[test]
fn bad_requests_are_errors_and_release_buffers() {
    let (_tf, ring, fid) = file_ring("bad", false, 2);
    let buf = ring.io_buf().unwrap();
    let size = ring.io_buf_size();
    let err = ring
        .file_io(FileOp::Read, fid, buf, 0..size + 1, 0, 1)
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert_eq!(ring.free_io_bufs(), 2, "buffer released on error");
    ring.unregister_file(fid).unwrap();
    let buf = ring.io_buf().unwrap();
    assert!(
        ring.file_io(FileOp::Write, fid, buf, 0..10, 0, 1).is_err(),
        "unregistered file refused"
    );
    assert!(ring.fsync(fid, true, 1).is_err());
    assert_eq!(ring.free_io_bufs(), 2);
    assert!(ring.unregister_file(fid).is_err());
}

#[test]
fn io_error_comes_back_as_errno() {
    let tf = TempFile::new("ro");
    drop(tf.open(false));
    let read_only = File::open(&tf.0).unwrap();
    let mut ring = io_ring(1);
    let fid = ring.register_file(&read_only).unwrap();
    let buf = ring.io_buf().unwrap();
    ring.file_io(FileOp::Write, fid, buf, 0..512, 0, 9).unwrap();
    let (user, result, buf) = io_done(wait_for(&mut ring, 1).pop().unwrap());
    assert_eq!(user, 9);
    assert_eq!(result.unwrap_err().0, libc::EBADF);
    ring.release(buf.unwrap());
}

#[test]
fn timers_and_wait_timeout() {
    let mut ring = io_ring(0);
    let mut events = Vec::new();
    let start = Instant::now();
    let now = ring
        .wait(Some(Duration::from_millis(30)), &mut events)
        .unwrap();
    assert!(events.is_empty());
    assert!(
        now.duration_since(start) >= Duration::from_millis(25),
        "wait returned early"
    );

    let start = Instant::now();
    ring.add_timer(Duration::from_millis(40), 7).unwrap();
    ring.add_timer(Duration::from_millis(10), 8).unwrap();
    let fired = wait_for(&mut ring, 2);
    assert_eq!(
        fired,
        vec![Completion::Timer { user: 8 }, Completion::Timer { user: 7 }]
    );
    assert!(start.elapsed() >= Duration::from_millis(35));
    assert_eq!(ring.stats().timers, 2);

    let deadline = Instant::now() + Duration::from_millis(20);
    let now = ring.wait_until(Some(deadline), &mut events).unwrap();
    assert!(events.is_empty());
    assert!(now + Duration::from_millis(2) >= deadline);
}

#[test]
fn a_lingering_wait_sleeps_past_the_first_completion() {
    let mut ring = io_ring(0);
    let waker = ring.waker().unwrap();
    let mut events = Vec::new();
    // Arms the waker's read before the clock starts.
    ring.wait(Some(Duration::ZERO), &mut events).unwrap();
    let start = Instant::now();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(5));
        waker.wake().unwrap();
    });
    ring.wait_lingering(
        Some(Duration::from_secs(5)),
        Duration::from_millis(40),
        &mut events,
    )
    .unwrap();
    t.join().unwrap();
    assert_eq!(events, vec![Completion::Woken]);
    if ring.can_linger() {
        assert!(
            start.elapsed() >= Duration::from_millis(35),
            "the wake-up at 5 ms ended a 40 ms linger"
        );
    }
    // A timeout shorter than the linger still ends the wait.
    events.clear();
    let start = Instant::now();
    ring.wait_lingering(
        Some(Duration::from_millis(10)),
        Duration::from_secs(5),
        &mut events,
    )
    .unwrap();
    assert!(events.is_empty());
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "linger outlived the timeout"
    );
}

#[test]
fn drop_with_requests_in_flight() {
    let mut ring = io_ring(0);
    ring.add_timer(Duration::from_secs(3600), 1).unwrap();
    let mut events = Vec::new();
    ring.wait(Some(Duration::ZERO), &mut events).unwrap();
    assert_eq!(ring.in_flight(), 1);
    let start = Instant::now();
    drop(ring);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "drop cancels instead of waiting an hour"
    );
}

#[test]
fn ring_is_send_and_waker_is_send_sync() {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}
    send::<Ring>();
    send::<aoe_uring::PacketSocket>();
    send_sync::<aoe_uring::RingWaker>();
    send_sync::<aoe_uring::PacketSocket>();
}

#[test]
fn waker_wakes_a_blocked_wait_from_another_thread() {
    let mut ring = io_ring(0);
    let waker = ring.waker().unwrap();
    let again = ring.waker().unwrap();
    let start = Instant::now();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        waker.wake().unwrap();
        waker.wake().unwrap();
    });
    let mut events = Vec::new();
    while events.is_empty() && start.elapsed() < Duration::from_secs(5) {
        ring.wait(None, &mut events).unwrap();
    }
    t.join().unwrap();
    assert_eq!(
        events,
        vec![Completion::Woken],
        "two wakes coalesce into one"
    );
    assert!(start.elapsed() >= Duration::from_millis(25));
    // The read is re-armed: the next wake is seen as well.
    events.clear();
    again.wake().unwrap();
    ring.wait(Some(Duration::from_secs(5)), &mut events)
        .unwrap();
    assert_eq!(events, vec![Completion::Woken]);
    assert_eq!(ring.stats().wakeups, 2);
}

/// A loop device over a sparse file, detached (and the file removed) on drop.
struct LoopDev {
    dev: String,
    _file: TempFile,
}

impl LoopDev {
    fn new(bytes: u64) -> LoopDev {
        let file = TempFile::new("loopback");
        File::create(&file.0).unwrap().set_len(bytes).unwrap();
        let dev = aoeraid_lab::run_command(
            std::process::Command::new("losetup")
                .args(["--find", "--show", "--direct-io=on"])
                .arg(&file.0),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        LoopDev {
            dev: dev.trim().to_owned(),
            _file: file,
        }
    }
}

impl Drop for LoopDev {
    fn drop(&mut self) {
        let _ = std::process::Command::new("losetup")
            .args(["-d", &self.dev])
            .status();
    }
}

#[test]
fn block_device_o_direct_through_the_ring() {
    let lo = LoopDev::new(4 << 20);
    let opts = aoe_uring::BackingOptions {
        direct: aoe_uring::DirectIo::IfAccepted,
        ..Default::default()
    };
    let backing = aoe_uring::Backing::open(std::path::Path::new(&lo.dev), &opts).unwrap();
    assert!(backing.block_device && backing.direct);
    assert_eq!(backing.size, 4 << 20);
    assert!(backing.align >= 512);
    let mut ring = io_ring(2);
    let fid = ring.register_file(&backing.file).unwrap();
    let data = pattern(9, 65536);
    write_from_io_buf(&ring, fid, &data, 1 << 20, 1);
    ring.sync_after_writes(fid, false, 2).unwrap();
    let done: Vec<_> = wait_for(&mut ring, 2).into_iter().map(io_done).collect();
    assert_eq!((done[0].0, done[0].1), (1, Ok(data.len())));
    assert_eq!((done[1].0, done[1].1), (2, Ok(0)));
    for (_, _, b) in done {
        if let Some(b) = b {
            ring.release(b);
        }
    }
    let buf = ring.io_buf().unwrap();
    ring.file_io(FileOp::Read, fid, buf, 0..data.len(), 1 << 20, 3)
        .unwrap();
    let (user, result, buf) = io_done(wait_for(&mut ring, 1).pop().unwrap());
    assert_eq!((user, result), (3, Ok(data.len())));
    let buf = buf.unwrap().into_io_buf().unwrap();
    assert_eq!(&ring.io_bytes(&buf)[..data.len()], &data[..]);
    ring.release_io_buf(buf);
    // Reading past the end of the device returns 0 bytes, not an error.
    let buf = ring.io_buf().unwrap();
    ring.file_io(FileOp::Read, fid, buf, 0..4096, 4 << 20, 4)
        .unwrap();
    let (_, result, buf) = io_done(wait_for(&mut ring, 1).pop().unwrap());
    assert_eq!(result, Ok(0));
    ring.release(buf.unwrap());
}

#[test]
fn bad_configs_are_clear_errors() {
    let with = |change: fn(&mut RingConfig)| {
        let mut cfg = RingConfig::default();
        change(&mut cfg);
        cfg
    };
    let bad = [
        with(|c| c.recv_buffers = 100),
        with(|c| c.recv_buffers = 0),
        with(|c| c.sq_entries = 0),
        with(|c| c.send_slot_size = 0),
        with(|c| (c.io_buffers, c.io_buffer_size) = (4096, 1 << 20)),
    ];
    for cfg in bad {
        let err = Ring::with_config(&cfg)
            .err()
            .unwrap_or_else(|| panic!("accepted {cfg:?}"));
        assert_eq!(
            err.kind(),
            std::io::ErrorKind::InvalidInput,
            "{cfg:?}: {err}"
        );
    }
}
