//! netem in user space. The host kernel here is built without sch_netem
//! (CONFIG_NET_SCH_NETEM is not set; `tc qdisc add ... netem` answers
//! "Specified qdisc kind is unknown") and without sch_fq or act_gact, so
//! delay, loss, reordering, duplication and corruption are done by a relay:
//! the port's bridge-side veth end is taken off the bridge and a thread
//! forwards frames between it and a second veth pair whose other end takes
//! its place on the bridge:
//!
//! ```text
//!   X ══ pX ─[relay thread: netem "to X" / "from X"]─ rX ══ rpX ── bridge
//! ```
//!
//! The thread enters the lab namespace with setns(CLONE_NEWNET) (which only
//! affects the calling thread), opens one AF_PACKET socket per side and
//! applies netem's semantics: loss, duplicate and corrupt per frame; every
//! frame delayed by delay ± jitter, except that `reorder` percent of them go
//! out at once (overtaking the delayed ones). Rate limits stay in the kernel
//! (tbf), on X's egress ("from") and pX's egress ("to").

use std::collections::{BinaryHeap, HashMap};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::impair::Netem;
use super::netns;
use super::sh::{err, ip};

const ETH_P_ALL: u16 = 0x0003;
/// linux/if_packet.h; not in every libc release.
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
const QUEUE_LIMIT: usize = 10_000;

/// Frame counts of one relay direction since the relay started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayStats {
    pub frames: u64,
    pub dropped: u64,
    pub duplicated: u64,
    pub corrupted: u64,
    pub reordered: u64,
}

#[derive(Default)]
struct Counters {
    frames: AtomicU64,
    dropped: AtomicU64,
    duplicated: AtomicU64,
    corrupted: AtomicU64,
    reordered: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> RelayStats {
        RelayStats {
            frames: self.frames.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            duplicated: self.duplicated.load(Ordering::Relaxed),
            corrupted: self.corrupted.load(Ordering::Relaxed),
            reordered: self.reordered.load(Ordering::Relaxed),
        }
    }
}

/// [to port, from port]
type Params = Arc<Mutex<[Option<Netem>; 2]>>;

struct Relay {
    params: Params,
    counters: Arc<[Counters; 2]>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    bridge: String,
}

/// Every relay of one lab, keyed by port interface (X).
pub(crate) struct Relays {
    ns: String,
    mtu: u32,
    map: Mutex<HashMap<String, Relay>>,
}

/// A non-blocking socket for every frame on `ifindex` that leaves out the
/// frames it sends itself, with buffers large enough for a burst.
fn packet_socket(ifindex: i32) -> io::Result<OwnedFd> {
    let buf: libc::c_int = 8 << 20;
    netns::packet_socket(
        ETH_P_ALL,
        ifindex,
        true,
        &[
            (libc::SOL_PACKET, PACKET_IGNORE_OUTGOING, 1),
            (libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, buf),
            (libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, buf),
        ],
    )
}

fn ifindex(ns: &str, iface: &str) -> io::Result<i32> {
    let out =
        super::sh::run(super::sh::in_ns(ns, "cat").arg(format!("/sys/class/net/{iface}/ifindex")))?;
    out.trim()
        .parse()
        .map_err(|_| err(format!("bad ifindex for {iface}: {out}")))
}

/// xorshift64*: netem-like coin flips; quality is beside the point.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// true with probability pct/100
    fn chance(&mut self, pct: f64) -> bool {
        pct > 0.0 && (self.next() % 1_000_000) as f64 / 10_000.0 < pct
    }
    fn unit(&mut self) -> f64 {
        (self.next() % 1_000_001) as f64 / 1_000_000.0
    }
}

struct Pending {
    due: Instant,
    seq: u64,
    out: usize,
    frame: Vec<u8>,
}
impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.due, self.seq) == (o.due, o.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    // BinaryHeap is a max-heap: the earliest (due, seq) must compare greatest.
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (o.due, o.seq).cmp(&(self.due, self.seq))
    }
}

fn send(sock: &OwnedFd, frame: &[u8]) {
    // SAFETY: frame is a live slice; send(2) only reads frame.len() bytes.
    // A full send buffer drops the frame, as a full NIC queue would.
    unsafe {
        libc::send(
            sock.as_raw_fd(),
            frame.as_ptr().cast(),
            frame.len(),
            libc::MSG_DONTWAIT,
        )
    };
}

/// An AoE ATA request (not a reply) whose ATA command is WRITE SECTORS (0x30)
/// or WRITE SECTORS EXT (0x34): ethertype at 12, AoE flags at 14 (0x08 =
/// response), AoE command at 19 (0 = ATA), ATA command at 27.
fn is_ata_write(f: &[u8]) -> bool {
    f.len() > 27
        && f[12..14] == super::frames::ETH_P_AOE.to_be_bytes()
        && f[14] & 0x08 == 0
        && f[19] == 0
        && matches!(f[27], 0x30 | 0x34)
}

/// The relay thread. socks[0] = pX (towards X), socks[1] = rX (towards the
/// bridge). Frames read on socks[1] travel "to X" (params[0]) and leave on
/// socks[0]; frames read on socks[0] travel "from X" (params[1]).
fn run(
    socks: [OwnedFd; 2],
    params: Params,
    counters: Arc<[Counters; 2]>,
    stop: Arc<AtomicBool>,
    mtu: u32,
) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15
        ^ (Instant::now().elapsed().as_nanos() as u64 | 1)
        ^ u64::from(std::process::id()));
    let mut heap: BinaryHeap<Pending> = BinaryHeap::new();
    let mut seq = 0u64;
    // Room for any frame, even if an MTU is raised after the relay started.
    let mut buf = vec![0u8; (mtu as usize + 64).max(65_536)];
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        while heap.peek().is_some_and(|p| p.due <= now) {
            let p = heap.pop().expect("peeked");
            send(&socks[p.out], &p.frame);
        }
        let wait_ms = heap
            .peek()
            .map(|p| {
                p.due
                    .saturating_duration_since(now)
                    .as_millis()
                    .clamp(0, 10) as i32
            })
            .unwrap_or(10);
        let mut fds = [
            libc::pollfd {
                fd: socks[0].as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: socks[1].as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: fds is a live array of two pollfd and the count says 2.
        unsafe { libc::poll(fds.as_mut_ptr(), 2, wait_ms) };
        let cfg = params.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for (src, pfd) in fds.iter().enumerate() {
            if pfd.revents & libc::POLLIN == 0 {
                continue;
            }
            // read on socks[1] (bridge side) = "to X" = direction 0, out on socks[0]
            let (dir, out) = if src == 1 { (0, 0) } else { (1, 1) };
            loop {
                // SAFETY: buf is a live, writable buffer of buf.len() bytes.
                let n = unsafe {
                    libc::recv(
                        pfd.fd,
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        libc::MSG_DONTWAIT,
                    )
                };
                if n <= 0 {
                    break;
                }
                let frame = &buf[..n as usize];
                let c = &counters[dir];
                c.frames.fetch_add(1, Ordering::Relaxed);
                let Some(n) = &cfg[dir] else {
                    send(&socks[out], frame);
                    continue;
                };
                if rng.chance(n.loss_pct) || (n.drop_ata_writes && is_ata_write(frame)) {
                    c.dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let copies = if rng.chance(n.duplicate_pct) {
                    c.duplicated.fetch_add(1, Ordering::Relaxed);
                    2
                } else {
                    1
                };
                for _ in 0..copies {
                    let mut f = frame.to_vec();
                    if f.len() > 14 && rng.chance(n.corrupt_pct) {
                        let bit = (rng.next() % ((f.len() as u64 - 14) * 8)) as usize;
                        f[14 + bit / 8] ^= 1 << (bit % 8);
                        c.corrupted.fetch_add(1, Ordering::Relaxed);
                    }
                    let delay = if n.delay_ms == 0.0 && n.reorder_pct > 0.0 {
                        1.0
                    } else {
                        n.delay_ms
                    };
                    let immediate = delay == 0.0 || rng.chance(n.reorder_pct);
                    if immediate {
                        if delay > 0.0 {
                            c.reordered.fetch_add(1, Ordering::Relaxed);
                        }
                        send(&socks[out], &f);
                    } else if heap.len() < QUEUE_LIMIT {
                        let jitter = n.jitter_ms * (2.0 * rng.unit() - 1.0);
                        let ms = (delay + jitter).max(0.0);
                        seq += 1;
                        heap.push(Pending {
                            due: Instant::now() + Duration::from_secs_f64(ms / 1000.0),
                            seq,
                            out,
                            frame: f,
                        });
                    } else {
                        c.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }
}

impl Relays {
    pub(crate) fn new(ns: &str, mtu: u32) -> Relays {
        Relays {
            ns: ns.to_string(),
            mtu,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Sets the netem of one direction of port `iface` (whose bridge-side
    /// peer is `peer` on `bridge`); `to_port` = frames travelling towards
    /// `iface`. Plumbs the relay in on first use, out when both are None.
    pub(crate) fn set(
        &self,
        iface: &str,
        peer: &str,
        bridge: &str,
        to_port: bool,
        netem: Option<Netem>,
    ) -> io::Result<()> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let dir = if to_port { 0 } else { 1 };
        if let Some(r) = map.get(iface) {
            let mut p = r.params.lock().unwrap_or_else(|e| e.into_inner());
            p[dir] = netem;
            if p.iter().any(Option::is_some) {
                return Ok(());
            }
            drop(p);
            let r = map.remove(iface).expect("present");
            return self.unplumb(iface, peer, r);
        }
        if netem.is_none() {
            return Ok(());
        }
        let mut params: [Option<Netem>; 2] = [None, None];
        params[dir] = netem;
        let relay = self.plumb(iface, peer, bridge, params)?;
        map.insert(iface.to_string(), relay);
        Ok(())
    }

    pub(crate) fn stats(&self, iface: &str) -> Option<(RelayStats, RelayStats)> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(iface)
            .map(|r| (r.counters[0].snapshot(), r.counters[1].snapshot()))
    }

    fn plumb(
        &self,
        iface: &str,
        peer: &str,
        bridge: &str,
        params: [Option<Netem>; 2],
    ) -> io::Result<Relay> {
        let (rx, rpx) = (format!("r{iface}"), format!("rp{iface}"));
        let mtu = self.mtu.to_string();
        ip(
            &self.ns,
            &[
                "link", "add", &rx, "mtu", &mtu, "type", "veth", "peer", "name", &rpx, "mtu", &mtu,
            ],
        )?;
        ip(&self.ns, &["link", "set", &rx, "up"])?;
        let peer_idx = ifindex(&self.ns, peer)?;
        let rx_idx = ifindex(&self.ns, &rx)?;
        let ns_file = netns::open(&self.ns)?;
        let params: Params = Arc::new(Mutex::new(params));
        let counters: Arc<[Counters; 2]> = Arc::new([Counters::default(), Counters::default()]);
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx_ready) = std::sync::mpsc::channel::<io::Result<()>>();
        let (p2, c2, s2, mtu_n) = (params.clone(), counters.clone(), stop.clone(), self.mtu);
        let thread = std::thread::Builder::new()
            .name(format!("netem-{iface}"))
            .spawn(move || {
                if let Err(e) = netns::enter(&ns_file) {
                    let _ = tx.send(Err(e));
                    return;
                }
                let socks = match (packet_socket(peer_idx), packet_socket(rx_idx)) {
                    (Ok(a), Ok(b)) => [a, b],
                    (Err(e), _) | (_, Err(e)) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                let _ = tx.send(Ok(()));
                run(socks, p2, c2, s2, mtu_n);
            })?;
        let ready = rx_ready
            .recv()
            .map_err(|_| err("netem relay thread died"))?;
        let relay = Relay {
            params,
            counters,
            stop,
            thread: Some(thread),
            bridge: bridge.to_string(),
        };
        if let Err(e) = ready {
            let _ = ip(&self.ns, &["link", "del", &rx]);
            return Err(err(format!("netem relay for {iface}: {e}")));
        }
        // Sockets are open: now swap pX for rpX on the bridge.
        ip(&self.ns, &["link", "set", peer, "nomaster"])?;
        ip(&self.ns, &["link", "set", &rpx, "master", bridge])?;
        ip(&self.ns, &["link", "set", &rpx, "up"])?;
        super::wait_forwarding(&self.ns, &rx, &rpx)?;
        Ok(relay)
    }

    fn unplumb(&self, iface: &str, peer: &str, mut r: Relay) -> io::Result<()> {
        r.stop.store(true, Ordering::Relaxed);
        if let Some(t) = r.thread.take() {
            let _ = t.join();
        }
        ip(&self.ns, &["link", "del", &format!("r{iface}")])?;
        ip(&self.ns, &["link", "set", peer, "master", &r.bridge])?;
        super::wait_forwarding(&self.ns, iface, peer)
    }

    pub(crate) fn stop_all(&self) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        for (_, mut r) in map.drain() {
            r.stop.store(true, Ordering::Relaxed);
            if let Some(t) = r.thread.take() {
                let _ = t.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_ata_write;
    use crate::frames;

    #[test]
    fn only_ata_write_requests_count_as_writes() {
        let src = [2, 0, 0, 0, 0, 1];
        let write = frames::ata_rw(src, 0, 3, 7, true, 8, 1, &[0; 512]);
        assert!(is_ata_write(&write));
        let mut old_write = write.clone();
        old_write[27] = 0x30;
        assert!(is_ata_write(&old_write));
        let mut reply = write.clone();
        reply[14] |= 0x08;
        assert!(!is_ata_write(&reply), "a reply to a write");
        assert!(!is_ata_write(&frames::ata_rw(
            src,
            0,
            3,
            7,
            false,
            8,
            1,
            &[]
        )));
        assert!(!is_ata_write(&frames::identify(src, 0, 3, 7)));
        let mut other = write;
        other[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        assert!(!is_ata_write(&other), "not AoE");
    }
}
