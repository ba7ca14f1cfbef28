//! How `aoeraid serve`'s sockets take requests: a mapped receive ring per
//! socket, and waits that linger while a client keeps several requests in
//! flight. (`aoeraid run`'s front end has neither: neither showed a gain
//! there in `benches/appliance_raid.sh`, see benches/README.md.)

use aoe_uring::{Completion, SocketOptions};
use std::time::Duration;

/// Slots of each front socket's mapped receive ring (`PACKET_RX_RING`): the
/// kernel copies a request into shared memory while delivering it (on veth,
/// in the client's send), so the worker reads frames with no receive
/// request or copy of its own. Frames are handed back as soon as the core
/// has read them (a write's payload is copied out first), so this only has
/// to hold one burst: 512 frames of the clients' windows. A full ring drops
/// (counted, the client retransmits). Slots are sized for the MTU at open,
/// the MTU the target advertises (and clients size requests by).
const RX_RING_FRAMES: u32 = 512;

/// Slots of the mapped transmit ring (`PACKET_TX_RING`) of a front socket on
/// an interface whose MTU is above [`TX_RING_MIN_MTU`]: a reply is copied
/// there once it is complete (a read's data already in its send slot), the
/// send slot is free again at once, and one send per turn sends the turn's
/// replies. A slot is taken only for a finished reply, so no reply waits
/// behind one still being read. Slots are taken in ring order, every one in
/// turn: a small ring keeps them in the cache. A turn that brings more
/// replies sends the rest the plain way (counted by the ring).
const TX_RING_FRAMES: u32 = 64;

/// Front sockets send through a transmit ring only on interfaces with a
/// larger MTU than this (jumbo frames). On veth the kernel copies every
/// frame of a transmit ring into new pages once more on its way to the peer
/// (`skb_copy_ubufs`: its pages belong to the ring), which 8 KiB replies
/// repay and 1 KiB ones do not: `aoeraid serve`'s CPU per QD 16 read fell
/// 13–32 % at MTU 9000 and rose 3–25 % at MTU 1500 (benches/README.md,
/// 2026-12-07).
const TX_RING_MIN_MTU: u32 = 4096;

/// A wake-up that brought at least this many frames means a client keeps
/// several in flight: the next wait lingers ([`LINGER`]) so that one
/// wake-up serves a burst instead of one frame. Fewer (QD 1) never linger,
/// so a lone request is answered as soon as it lands.
const LINGER_MIN_FRAMES: usize = 4;

/// How long a busy worker's wait lasts at least (its replies are
/// submitted before it sleeps). `STORE=ext4 benches/target_vs_vblade.sh`-style
/// runs of `aoeraid serve` at MTU 1500 QD 16 reads, load 16-18, interleaved:
/// 0 µs 6.9k/7.8k req/s, 10 µs 9.6k/7.9k, 20 µs 13.2k/13.1k/12.6k/11.3k,
/// 30 µs 12.1k/9.7k, 50 µs 10.0k/8.9k; CPU per request 7.0 → 5.0 µs.
const LINGER: Duration = Duration::from_micros(20);

/// When a worker busy-polls its mapped rings instead of sleeping, after a turn
/// that served a lone request (fewer frames than a burst, which lingers
/// instead). A client that keeps one request in flight sends the next one
/// a few tens of µs after our reply; the sleep and wake-up in between (a
/// poll's task work, a switch, the idle exit) cost that request several µs
/// and a loaded box several more before the worker runs. Spinning for at
/// most `budget` saves them for the price of the CPU spun. A spin that
/// finds nothing turns it off; a frame that wakes the worker within
/// `budget` of its last reply turns it back on, so a client that sends
/// seldom costs one budget, not one per request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spin {
    budget: Duration,
    on: bool,
    last_frames: usize,
}

impl Spin {
    /// `budget` zero: never spin.
    pub(crate) fn new(budget: Duration) -> Spin {
        Spin {
            budget,
            on: true,
            last_frames: 0,
        }
    }

    /// How long to spin before the next wait, if at all (the caller also
    /// checks that no file I/O is in flight: its completions are only run
    /// by a wait).
    pub(crate) fn before_wait(&self) -> Option<Duration> {
        (self.on && !self.budget.is_zero() && (1..LINGER_MIN_FRAMES).contains(&self.last_frames))
            .then_some(self.budget)
    }

    /// A spin ended, with or without frames.
    pub(crate) fn spun(&mut self, found: bool) {
        self.on = found;
    }

    /// A turn brought `frames`, `since_reply` after the previous turn's
    /// replies went out.
    pub(crate) fn turn(&mut self, frames: usize, since_reply: Duration) {
        if frames > 0 && since_reply <= self.budget {
            self.on = true;
        }
        self.last_frames = frames;
    }
}

/// Options of a front-end socket on an interface of `mtu`.
pub(crate) fn socket_options(mtu: u32) -> SocketOptions {
    SocketOptions {
        rx_ring_frames: RX_RING_FRAMES,
        tx_ring_frames: if mtu > TX_RING_MIN_MTU {
            TX_RING_FRAMES
        } else {
            0
        },
        ..SocketOptions::default()
    }
}

/// Frames among a wait's completions.
pub(crate) fn frame_count(events: &[Completion]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Completion::Frame { .. }))
        .count()
}

/// How long the next wait lingers after a wake-up that brought `frames`.
pub(crate) fn linger_after(frames: usize) -> Duration {
    if frames >= LINGER_MIN_FRAMES {
        LINGER
    } else {
        Duration::ZERO
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_burst_lingers() {
        assert_eq!(linger_after(0), Duration::ZERO);
        assert_eq!(linger_after(LINGER_MIN_FRAMES - 1), Duration::ZERO);
        assert_eq!(linger_after(LINGER_MIN_FRAMES), LINGER);
        assert!(socket_options(1500).rx_ring_frames > 0);
        assert_eq!(socket_options(1500).tx_ring_frames, 0);
        assert!(socket_options(9000).tx_ring_frames > 0);
    }

    #[test]
    fn spin_follows_lone_requests_that_come_back_soon() {
        let budget = Duration::from_micros(50);
        let mut s = Spin::new(budget);
        // Nothing served yet: sleep.
        assert_eq!(s.before_wait(), None);
        s.turn(1, Duration::from_millis(3));
        assert_eq!(s.before_wait(), Some(budget));
        // A burst lingers instead.
        s.turn(LINGER_MIN_FRAMES, Duration::from_micros(10));
        assert_eq!(s.before_wait(), None);
        s.turn(1, Duration::from_micros(10));
        assert_eq!(s.before_wait(), Some(budget));
        // A spin that found nothing turns it off, also after a slow request...
        s.spun(false);
        s.turn(1, Duration::from_millis(5));
        assert_eq!(s.before_wait(), None);
        // ...until one comes back within the budget.
        s.turn(1, Duration::from_micros(30));
        assert_eq!(s.before_wait(), Some(budget));
        s.spun(true);
        assert_eq!(s.before_wait(), Some(budget));
        // A turn without frames (a timeout) does not spin.
        s.turn(0, Duration::from_micros(1));
        assert_eq!(s.before_wait(), None);
        assert_eq!(Spin::new(Duration::ZERO).before_wait(), None);
    }
}
