//! The back-end driver: the initiator pool (`aoe_initiator::Pool`) on an
//! io_uring [`Ring`]. One `PacketSocket` per back-end interface is
//! registered in a caller-supplied ring, so the daemon can run the back end
//! next to the front end and the RAID engine in one loop:
//!
//! ```text
//! loop {
//!     now = ring.wait_until(min(backend.next_deadline(), other deadlines), &mut events)
//!     for ev in events: if let Some(ev) = backend.on_completion(&ring, now, ev) { other parts }
//!     submit I/O to backend.pool_mut(); drain backend.pool_mut().poll_completion()
//!     backend.poll(&ring, now)   // timeouts + frames into send slots
//! }
//! ```
//!
//! [`Backend::turn`] is that loop body for a back end that runs alone (the
//! CLI tools).
//!
//! Frames are built in place: the pool writes each request, write payload
//! included, straight into a ring send slot. Replies arrive in a mapped
//! receive ring (`PACKET_RX_RING`): the kernel copies each one there while it
//! delivers it, so the back end's thread makes no receive call and frees no
//! buffer per frame; read payloads are copied once, from the ring slot into
//! the caller's I/O buffer.

mod log;

pub(crate) use log::{describe, interface_names};

use std::io;
use std::time::{Duration, Instant};

use aoe_initiator::{BladeStats, Pool, PoolConfig};
use aoe_uring::{Completion, PacketSocket, Ring, SockId, SocketOptions};
use aoe_wire::Mac;

use crate::control::status::{InterfaceStatus, Side};

/// Slots of each back-end socket's receive ring. Replies in flight are bounded by
/// the blades' windows (at most 64 frames each with the Linux-like defaults), and
/// the back end hands every frame back as soon as the pool has read it, so this
/// covers 16 saturated blades on one interface before a burst overflows the ring
/// (the kernel then counts a drop and the frame is retransmitted). About 1.6 MiB
/// at MTU 1500 and 12 MiB at MTU 9000 per interface.
const RX_RING_FRAMES: u32 = 1024;

/// Lingering (see [`Backend::linger`]) starts with this many frames in flight:
/// below it, replies are too sparse for a wait to find more than one.
const LINGER_MIN_FRAMES: usize = 8;
/// Longest linger: bounds the latency it adds.
const LINGER_MAX: Duration = Duration::from_micros(50);

/// Counters of the driver itself (the pool counts the protocol).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct BackendStats {
    /// Sends the kernel refused (e.g. link down); the pool retransmits.
    pub send_errors: u64,
    /// Times the pool had frames to send but every send slot was busy.
    pub slot_waits: u64,
    pub frames_in: u64,
    pub frames_out: u64,
}

/// The back end's sockets in a ring, apart from the pool that drives them: the
/// daemon's pool lives in the appliance core, the CLI tools' in [`Backend`].
pub(crate) struct BackSockets {
    /// `iface_of[sock.index()]` = pool interface index of a socket we own.
    iface_of: Vec<Option<usize>>,
    socks: Vec<SockId>,
    stats: BackendStats,
    /// Per pool interface: frames sent, and frames the pool found malformed.
    sent: Vec<u64>,
    malformed: Vec<u64>,
}

/// The initiator pool bound to sockets in a ring.
pub(crate) struct Backend {
    pool: Pool,
    socks: BackSockets,
    lingering: bool,
}

impl Backend {
    /// Opens one packet socket per interface, registers them in `ring` and
    /// builds the pool.
    pub(crate) fn open(ring: &mut Ring, ifaces: &[String], cfg: PoolConfig) -> io::Result<Backend> {
        if ifaces.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no back-end interface given",
            ));
        }
        let mut pool = Pool::new(cfg);
        let mut iface_of = Vec::new();
        let mut socks = Vec::new();
        for name in ifaces {
            let opts = SocketOptions {
                rx_ring_frames: RX_RING_FRAMES,
                // Never receive our own requests (see the option for when the
                // kernel would loop them back).
                ignore_outgoing: true,
                ..SocketOptions::default()
            };
            let sock = PacketSocket::open_with(name, &opts)
                .map_err(|e| io::Error::new(e.kind(), format!("open AoE socket on {name}: {e}")))?;
            let (mac, mtu) = (Mac(sock.mac()), sock.mtu());
            let id = ring.add_socket(sock)?;
            let iface = pool.add_interface(name, mac, mtu);
            if iface_of.len() <= id.index() {
                iface_of.resize(id.index() + 1, None);
            }
            iface_of[id.index()] = Some(iface);
            socks.push(id);
        }
        let n = socks.len();
        Ok(Backend {
            pool,
            socks: BackSockets {
                iface_of,
                socks,
                stats: BackendStats::default(),
                sent: vec![0; n],
                malformed: vec![0; n],
            },
            lingering: true,
        })
    }

    /// The pool and the sockets, for a host that keeps the pool elsewhere.
    pub(crate) fn into_parts(self) -> (Pool, BackSockets) {
        (self.pool, self.socks)
    }

    /// Whether [`Backend::turn`] may linger to batch replies (default on).
    pub(crate) fn set_lingering(&mut self, on: bool) {
        self.lingering = on;
    }

    /// How long a wait may linger after it starts so that one wake-up reads several
    /// replies ([`Ring::wait_lingering`]): a quarter of the shortest smoothed round
    /// trip among blades with frames out, at most [`LINGER_MAX`], and only with at
    /// least [`LINGER_MIN_FRAMES`] frames in flight. With replies spread over a round
    /// trip, a quarter of the window comes back per wake-up while three quarters
    /// stay queued at the blades, so they never run dry; without it the back end
    /// woke once per reply, and waking cost it more CPU per request than a vblade
    /// spends serving one.
    pub(crate) fn linger(&self) -> Duration {
        if !self.lingering {
            return Duration::ZERO;
        }
        linger_for(
            self.pool.frames_in_flight(),
            self.pool
                .blade_ids()
                .filter_map(|id| self.pool.blade_stats(id)),
        )
    }

    pub(crate) fn pool(&self) -> &Pool {
        &self.pool
    }

    pub(crate) fn pool_mut(&mut self) -> &mut Pool {
        &mut self.pool
    }

    /// Handles a ring completion if it belongs to the back end (frames and
    /// send results of its sockets); otherwise hands it back.
    pub(crate) fn on_completion(
        &mut self,
        ring: &Ring,
        now: Instant,
        ev: Completion,
    ) -> Option<Completion> {
        let pool = &mut self.pool;
        self.socks.on_completion(ring, ev, |iface, frame| {
            let before = pool.stats().malformed;
            pool.handle_frame(now, iface, frame);
            pool.stats().malformed - before
        })
    }

    /// Runs due timeouts and queues every frame the pool wants to send, each
    /// built directly in a send slot. Sends go to the kernel at the ring's
    /// next wait/submit.
    pub(crate) fn poll(&mut self, ring: &Ring, now: Instant) {
        if self.pool.poll_timeout().is_some_and(|t| t <= now) {
            self.pool.handle_timeout(now);
        }
        let pool = &mut self.pool;
        let out_of_slots = self
            .socks
            .transmit(ring, |buf| pool.poll_transmit(now, buf));
        if out_of_slots && self.pool.has_transmit() {
            self.socks.stats.slot_waits += 1;
        }
    }

    /// Per back-end interface: kernel receive and drop counts, frames sent,
    /// frames dropped as malformed.
    /// When [`Backend::poll`] must run next at the latest.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.pool.poll_timeout()
    }

    /// One pass of a back end that owns its ring alone: send what is queued,
    /// wait for frames until the pool's deadline or `until`, handle them.
    /// Returns the time after waking. Completions not belonging to the back
    /// end are dropped (there are none in a ring it owns).
    pub(crate) fn turn(
        &mut self,
        ring: &mut Ring,
        events: &mut Vec<Completion>,
        until: Option<Instant>,
    ) -> io::Result<Instant> {
        let now = Instant::now();
        self.poll(ring, now);
        let deadline = match (self.next_deadline(), until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let now = ring.wait_lingering(timeout, self.linger(), events)?;
        for ev in events.drain(..) {
            let _ = self.on_completion(ring, now, ev);
        }
        self.poll(ring, now);
        Ok(now)
    }
}

impl BackSockets {
    /// True if `sock` is one of the back end's sockets.
    pub(crate) fn owns(&self, sock: SockId) -> bool {
        self.iface_of.get(sock.index()).copied().flatten().is_some()
    }

    /// Handles a ring completion if it belongs to these sockets: a frame goes to
    /// `handle(iface, bytes)`, which returns how many frames it found malformed.
    /// Anything else is handed back.
    pub(crate) fn on_completion(
        &mut self,
        ring: &Ring,
        ev: Completion,
        handle: impl FnOnce(usize, &[u8]) -> u64,
    ) -> Option<Completion> {
        match ev {
            Completion::Frame { sock, buf } => {
                match self.iface_of.get(sock.index()).copied().flatten() {
                    Some(iface) => {
                        self.stats.frames_in += 1;
                        self.malformed[iface] += handle(iface, ring.frame(&buf));
                        ring.recycle(buf);
                        None
                    }
                    None => Some(Completion::Frame { sock, buf }),
                }
            }
            Completion::SendDone { sock, result, .. } if self.owns(sock) => {
                if result.is_err() {
                    self.stats.send_errors += 1;
                }
                None
            }
            Completion::RecvError { sock, .. } if self.owns(sock) => None,
            other => Some(other),
        }
    }

    /// Sends every frame `next` builds, each straight in a send slot, until it
    /// has none left (false) or the slots run out (true).
    pub(crate) fn transmit(
        &mut self,
        ring: &Ring,
        mut next: impl FnMut(&mut [u8]) -> Option<aoe_initiator::Transmit>,
    ) -> bool {
        loop {
            let Some(mut slot) = ring.send_slot() else {
                return true;
            };
            let Some(t) = next(ring.slot_mut(&mut slot)) else {
                ring.release_slot(slot);
                return false;
            };
            // A failed submit drops the frame; the pool's timeout resends it.
            if ring
                .submit_send(self.socks[t.iface], slot, t.len, 0)
                .is_err()
            {
                self.stats.send_errors += 1;
            } else {
                self.stats.frames_out += 1;
                self.sent[t.iface] += 1;
            }
        }
    }

    /// Per back-end interface of `pool`: kernel receive and drop counts, frames
    /// sent, frames dropped as malformed.
    pub(crate) fn interface_status(&self, ring: &Ring, pool: &Pool) -> Vec<InterfaceStatus> {
        pool.interfaces()
            .iter()
            .enumerate()
            .map(|(i, iface)| {
                InterfaceStatus::of_socket(
                    &iface.name,
                    Side::Backend,
                    ring.socket(self.socks[i]),
                    self.sent[i],
                    self.malformed[i],
                )
            })
            .collect()
    }
}

/// [`Backend::linger`] for `frames` in flight to blades in the state `blades`.
fn linger_for(frames: usize, blades: impl Iterator<Item = BladeStats>) -> Duration {
    if frames < LINGER_MIN_FRAMES {
        return Duration::ZERO;
    }
    blades
        .filter(|s| s.in_flight > 0 && s.srtt_us > 0)
        .map(|s| Duration::from_micros(s.srtt_us / 4))
        .min()
        .map_or(Duration::ZERO, |d| d.min(LINGER_MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blade(in_flight: u32, srtt_us: u64) -> BladeStats {
        BladeStats {
            in_flight,
            srtt_us,
            ..BladeStats::default()
        }
    }

    #[test]
    fn lingers_a_quarter_of_the_fastest_busy_round_trip() {
        let busy = [blade(16, 400), blade(8, 100), blade(0, 20), blade(4, 0)];
        // The idle blade (20 µs) and the one without an estimate do not count.
        assert_eq!(
            linger_for(28, busy.iter().copied()),
            Duration::from_micros(25)
        );
    }

    #[test]
    fn no_linger_for_sparse_replies_or_without_an_estimate() {
        assert_eq!(linger_for(7, [blade(7, 400)].into_iter()), Duration::ZERO);
        assert_eq!(linger_for(16, [blade(16, 0)].into_iter()), Duration::ZERO);
        assert_eq!(linger_for(16, std::iter::empty()), Duration::ZERO);
    }

    #[test]
    fn linger_is_capped() {
        assert_eq!(linger_for(64, [blade(64, 10_000)].into_iter()), LINGER_MAX);
    }
}
