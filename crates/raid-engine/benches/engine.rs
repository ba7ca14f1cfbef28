//! Engine CPU per 8 KiB request per layout (instant in-memory members), RAID 5 small
//! sequential writes at QD 16 (member reads per written byte), the partial-parity log's
//! cost on RAID 5/6 (log on against off: CPU and member bytes per client byte; reads
//! after writes), and the chunk-size sweep.
//! cargo bench -p raid-engine --bench engine [-- log | reads]   (that section only)

use raid_engine::*;

const MEMBER_SECTORS: u64 = 2048 + 1_048_576; // 512 MiB data per member (never stored)

struct Bench {
    e: Engine,
    member_read_bytes: u64,
    member_write_bytes: u64,
    member_writes: u64,
    member_ios: u64,
    /// Virtual time, ns.
    now: u64,
}

impl Bench {
    fn new(level: Level, n: usize, chunk: u32, integrity: bool) -> Bench {
        Bench::with_log(level, n, chunk, integrity, level.parity() > 0)
    }

    fn with_log(level: Level, n: usize, chunk: u32, integrity: bool, ppl: bool) -> Bench {
        let specs = (0..n as u8)
            .map(|i| MemberSpec {
                uuid: [i; 16],
                size_sectors: MEMBER_SECTORS,
                shelf: Some(i as u32),
            })
            .collect();
        let mut cfg = ArrayConfig::new("b", [9; 16], level, specs);
        cfg.chunk_sectors = chunk;
        cfg.assume_clean = true;
        cfg.integrity = integrity;
        cfg.ppl = ppl;
        let e = Engine::create(&cfg).expect("create");
        // Members keep no bytes: reads return zeros, writes are dropped. Storing them
        // would measure cache misses in large member arrays, not the engine.
        let _ = n;
        let mut b = Bench {
            e,
            member_read_bytes: 0,
            member_write_bytes: 0,
            member_writes: 0,
            member_ios: 0,
            now: 0,
        };
        b.drain();
        b
    }
    fn drain(&mut self) -> usize {
        let mut done = 0;
        loop {
            let mut any = false;
            while let Some(io) = self.e.poll_member_io() {
                any = true;
                self.member_ios += 1;
                let len = io.sectors as usize * 512;
                let r = match io.op {
                    MemberOp::Read => {
                        self.member_read_bytes += len as u64;
                        Ok(vec![0u8; len])
                    }
                    MemberOp::Write => {
                        self.member_write_bytes += len as u64;
                        self.member_writes += 1;
                        Ok(Vec::new())
                    }
                    MemberOp::Flush => Ok(Vec::new()),
                };
                self.e.complete_member_io(io.id, r);
            }
            while self.e.poll_completion().is_some() {
                done += 1;
            }
            while self.e.poll_event().is_some() {}
            if !any {
                return done;
            }
        }
    }

    /// `total` writes of `sectors` each at `offset(i)`, 16 in flight; virtual time
    /// passes only when nothing completes (a stripe held for gathering). CPU seconds.
    fn writes_qd16(&mut self, total: u64, sectors: u32, offset: impl FnMut(u64) -> u64) -> f64 {
        self.qd16(VolumeOp::Write, total, sectors, offset).0
    }

    /// `total` requests as `writes_qd16` describes: CPU seconds, and how many times
    /// nothing completed until virtual time passed (requests held by the engine).
    fn qd16(
        &mut self,
        op: VolumeOp,
        total: u64,
        sectors: u32,
        mut offset: impl FnMut(u64) -> u64,
    ) -> (f64, u64) {
        let t = cpu_secs();
        let (mut id, mut inflight, mut completed, mut waits) = (0u64, 0u64, 0u64, 0u64);
        while completed < total {
            while inflight < 16 && id < total {
                id += 1;
                let off = offset(id - 1);
                self.e.submit(if op == VolumeOp::Write {
                    VolumeRequest::write(id, off, vec![id as u8; sectors as usize * 512])
                } else {
                    VolumeRequest::read(id, off, sectors)
                });
                inflight += 1;
            }
            let d = self.drain() as u64;
            completed += d;
            inflight -= d;
            if d == 0 {
                waits += 1;
                self.now += 250_000;
                self.e.tick(self.now);
            }
        }
        (cpu_secs() - t, waits)
    }
}

/// CPU time this thread has run, in seconds (the scheduler's count in
/// /proc/thread-self/schedstat): on a shared box, wall-clock time per request measures
/// the other sessions' load, CPU time the engine's own work.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").expect("schedstat");
    let ns: u64 = stat
        .split_whitespace()
        .next()
        .and_then(|f| f.parse().ok())
        .expect("schedstat run time");
    ns as f64 / 1e9
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// ns of engine CPU per request (includes the in-memory member copies), thread CPU time.
fn per_request(
    level: Level,
    n: usize,
    chunk: u32,
    integrity: bool,
    op: VolumeOp,
    sectors: u32,
) -> f64 {
    let mut b = Bench::new(level, n, chunk, integrity);
    let vs = b.e.volume_sectors();
    let mut id = 0u64;
    let mut x = 12345u64;
    let data = vec![0xA5u8; sectors as usize * 512];
    let mut samples = Vec::new();
    for _ in 0..7 {
        let t = cpu_secs();
        let reqs = 4000;
        for _ in 0..reqs / 16 {
            for _ in 0..16 {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let off = (x >> 20) % (vs - sectors as u64) / 16 * 16;
                id += 1;
                b.e.submit(if op == VolumeOp::Write {
                    VolumeRequest::write(id, off, data.clone())
                } else {
                    VolumeRequest::read(id, off, sectors)
                });
            }
            b.drain();
        }
        samples.push((cpu_secs() - t) * 1e9 / reqs as f64);
    }
    median(samples)
}

/// What one workload costs with the log off or on: engine CPU per request, and the
/// member bytes written and read per client byte (bitmap, log, data and parity).
struct LogCost {
    ns_per_req: f64,
    write_per_byte: f64,
    writes_per_req: f64,
    read_per_byte: f64,
}

impl LogCost {
    /// Client throughput the members allow, in units of B, when each of the `n`
    /// members moves B each way (parity rotates, so the load spreads evenly).
    fn ceiling(&self, n: usize) -> f64 {
        n as f64 / self.write_per_byte.max(self.read_per_byte)
    }
}

/// `sectors`-sized writes at random multiples of their size within the first 64 MiB
/// of the volume, 16 in flight, chunk 16 KiB (the appliance bench's RAID 5/6 chunk).
/// One warm-up pass (its bitmap bits), then medians of 7 passes of 2000.
fn log_cost(level: Level, n: usize, ppl: bool, sectors: u32) -> LogCost {
    let mut b = Bench::with_log(level, n, 32, false, ppl);
    let slots = (64 << 11) / sectors as u64;
    let mut x = 12345u64;
    let mut offset = move |_| {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 20) % slots * sectors as u64
    };
    let reqs = 2000u64;
    b.writes_qd16(reqs, sectors, &mut offset);
    let (mut ns, mut wb, mut w, mut rb) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..7 {
        let (w0, n0, r0) = (b.member_write_bytes, b.member_writes, b.member_read_bytes);
        let secs = b.writes_qd16(reqs, sectors, &mut offset);
        let client = (reqs * sectors as u64 * 512) as f64;
        ns.push(secs * 1e9 / reqs as f64);
        wb.push((b.member_write_bytes - w0) as f64 / client);
        w.push((b.member_writes - n0) as f64 / reqs as f64);
        rb.push((b.member_read_bytes - r0) as f64 / client);
    }
    LogCost {
        ns_per_req: median(ns),
        write_per_byte: median(wb),
        writes_per_req: median(w),
        read_per_byte: median(rb),
    }
}

fn log_section() {
    println!("== partial-parity log off / on (instant members, QD 16, chunk 16 KiB, random within 64 MiB) ==");
    for (name, level, n) in [("raid5 x5", Level::Raid5, 5), ("raid6 x6", Level::Raid6, 6)] {
        let p = level.parity();
        // Full stripes against the seed model (data columns × B); small writes against
        // read-modify-write (each byte moves 1 + parity times each way: N·B/(1+p)).
        for (what, sectors, model) in [
            ("full stripe 64 KiB", 128u32, (n - p) as f64),
            ("random 8 KiB", 16, n as f64 / (1 + p) as f64),
        ] {
            let off = log_cost(level, n, false, sectors);
            let on = log_cost(level, n, true, sectors);
            for (pol, c) in [("off", &off), ("on ", &on)] {
                println!(
                    "{name} {what:18} log {pol}: {:6.0} ns/req, member writes {:.3} B per client B ({:.2} I/Os per req), reads {:.3} B/B; members allow {:.2}·B = {:.2}x model {:.2}·B",
                    c.ns_per_req,
                    c.write_per_byte,
                    c.writes_per_req,
                    c.read_per_byte,
                    c.ceiling(n),
                    c.ceiling(n) / model,
                    model
                );
            }
            println!(
                "{name} {what:18} on/off: CPU {:.2}x, member bytes written {:.3}x, member-bound throughput {:.3}x",
                on.ns_per_req / off.ns_per_req,
                on.write_per_byte / off.write_per_byte,
                on.ceiling(n) / off.ceiling(n)
            );
        }
    }
}

/// Sequential 256 KiB reads right after sequential 256 KiB writes over the same
/// 64 MiB, log off and on (the appliance bench's order): CPU per read, member I/Os per
/// read, member writes issued while reading (10 s of virtual time pass), and reads
/// held until time passed.
fn read_after_write_section() {
    println!("== sequential 256 KiB reads after writes, log off / on (instant members, QD 16, chunk 16 KiB) ==");
    for (name, level, n) in [("raid5 x5", Level::Raid5, 5), ("raid6 x6", Level::Raid6, 6)] {
        for ppl in [false, true] {
            let mut b = Bench::with_log(level, n, 32, false, ppl);
            let total = 256u64; // 64 MiB
            b.qd16(VolumeOp::Write, total, 512, |i| i * 512);
            let (ios, writes) = (b.member_ios, b.member_writes);
            let mut ns = Vec::new();
            let mut held = 0;
            for _ in 0..5 {
                // Real time passes while an appliance reads: whatever the engine
                // defers after writes (bitmap clears, the clean mark) happens now.
                b.now += 2_000_000_000;
                b.e.tick(b.now);
                let (secs, waits) = b.qd16(VolumeOp::Read, total, 512, |i| i * 512);
                ns.push(secs * 1e9 / total as f64);
                held += waits;
            }
            println!(
                "{name} log {}: {:6.0} ns per read, {:.2} member I/Os per read, {} member writes while reading, {} times held",
                if ppl { "on " } else { "off" },
                median(ns),
                (b.member_ios - ios) as f64 / (5 * total) as f64,
                b.member_writes - writes,
                held
            );
        }
    }
}

fn main() {
    if std::env::args().any(|a| a == "reads") {
        read_after_write_section();
        return;
    }
    if std::env::args().any(|a| a == "log") {
        log_section();
        return;
    }
    println!("== engine CPU per 8 KiB request (instant members, QD 16, random offsets, chunk 128 KiB) ==");
    for (name, level, n) in [
        ("raid0 x4", Level::Raid0, 4),
        ("raid1 x2", Level::Raid1, 2),
        ("raid10 x4", Level::Raid10, 4),
        ("raid5 x4", Level::Raid5, 4),
        ("raid6 x5", Level::Raid6, 5),
    ] {
        let r = per_request(level, n, 256, false, VolumeOp::Read, 16);
        let w = per_request(level, n, 256, false, VolumeOp::Write, 16);
        let ri = per_request(level, n, 256, true, VolumeOp::Read, 16);
        let wi = per_request(level, n, 256, true, VolumeOp::Write, 16);
        println!("{name:10} read {r:7.0} ns  write {w:7.0} ns | integrity on: read {ri:7.0} ns  write {wi:7.0} ns");
    }

    println!("== RAID 5 sequential 8 KiB writes, QD 16 ==");
    for (n, chunk) in [(5usize, 32u32), (3, 128), (4, 32), (4, 256)] {
        let mut b = Bench::new(Level::Raid5, n, chunk, false);
        b.e.set_tunables(Tunables {
            gather_ns: 1_000_000,
            ..Tunables::default()
        });
        let total_reqs = 8192u64;
        b.writes_qd16(total_reqs, 16, |i| i * 16);
        let c = b.e.counters();
        let written = total_reqs * 8192;
        println!(
            "{n} members, chunk {:3} KiB (stripe {:3} KiB): member reads per written byte {:.4}; full-stripe {} rmw {} rcw {}",
            chunk / 2,
            chunk as u64 / 2 * (n as u64 - 1),
            b.member_read_bytes as f64 / written as f64,
            c.full_stripe_writes,
            c.rmw_writes,
            c.rcw_writes
        );
    }

    log_section();
    read_after_write_section();

    println!("== chunk sweep, RAID 0 x4 ==");
    println!("chunk KiB | CPU/8KiB read | CPU/64KiB read | member I/Os per 64 KiB req | members busy per 512 KiB seq window");
    for chunk in [32u32, 64, 128, 256, 512, 1024, 2048] {
        let r8 = per_request(Level::Raid0, 4, chunk, false, VolumeOp::Read, 16);
        let r64 = per_request(Level::Raid0, 4, chunk, false, VolumeOp::Read, 128);
        let mut b = Bench::new(Level::Raid0, 4, chunk, false);
        let before = b.member_ios;
        let reqs = 2000u64;
        for i in 0..reqs {
            let off = (i * 7919 * 128) % (b.e.volume_sectors() - 128);
            b.e.submit(VolumeRequest::read(i + 1, off, 128));
            b.drain();
        }
        let ios_per = (b.member_ios - before) as f64 / reqs as f64;
        // A client streaming with 512 KiB outstanding: how many members work at once.
        let g = *b.e.geometry();
        let mut busy = std::collections::BTreeSet::new();
        for s in (0..1024u64).step_by(16) {
            busy.insert(g.map(s).0);
        }
        println!(
            "{:9} | {:10.0} ns | {:11.0} ns | {:26.2} | {}",
            chunk / 2,
            r8,
            r64,
            ios_per,
            busy.len()
        );
    }
}
