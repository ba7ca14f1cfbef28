//! The two virtual Ethernet segments: clients ↔ appliance front end, appliance back
//! end ↔ blades. Frames take a latency and may be lost, duplicated, delayed past
//! later frames (reordered) or corrupted. A corrupted frame is one the Ethernet FCS
//! would have caught, delivered anyway in a form the AoE parser must reject
//! (cut short or with a foreign EtherType): corruption that passes the FCS is
//! beyond what AoE can detect, so it is not simulated.
//!
//! A duplicate arrives within the jitter of its original (after it, whether or not
//! the original was reordered): Ethernet duplicates come from a switch flooding or
//! a link-layer resend and never sit in a queue for long. A network that replays
//! a frame long after it was answered is not simulated: no AoE initiator can defend
//! against it (the Linux `aoe` driver does not either), since the replayed write
//! may land over any later write to its block. Copies the initiator itself sends
//! (retransmissions) may be delayed like any frame; the pool holds overlapping
//! writes back until they are answered or gone (`PoolConfig::copy_lifetime`).

use raid_engine::sim::Rng;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// Where a frame goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Port {
    /// An appliance's front-end interface; the number says which of the pair
    /// (0: A, 1: B).
    Front(usize),
    /// An appliance's back-end interface.
    Back(usize),
    Blade(usize),
    Client(usize),
}

impl Port {
    fn front_segment(self) -> bool {
        matches!(self, Port::Front(_) | Port::Client(_))
    }
}

/// Fault rates of one segment (probabilities per frame).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Impair {
    pub(crate) loss: f64,
    pub(crate) dup: f64,
    pub(crate) reorder: f64,
    pub(crate) corrupt: f64,
}

/// What became of a frame handed to the wire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Fate {
    /// Copies that will arrive intact (0, 1 or 2).
    pub(crate) intact: u8,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct WireStats {
    pub(crate) frames: u64,
    pub(crate) lost: u64,
    pub(crate) duplicated: u64,
    pub(crate) reordered: u64,
    pub(crate) corrupted: u64,
}

/// A frame on the wire.
pub(crate) struct Frame {
    pub(crate) to: Port,
    pub(crate) bytes: Vec<u8>,
    /// False when corrupted on the way.
    pub(crate) intact: bool,
}

const LATENCY_NS: u64 = 20_000;
const JITTER_NS: u64 = 30_000;
const REORDER_NS: u64 = 700_000;

pub(crate) struct Wire {
    pub(crate) front: Impair,
    pub(crate) back: Impair,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    frames: HashMap<u64, Frame>,
    seq: u64,
    pub(crate) stats: WireStats,
}

impl Wire {
    pub(crate) fn new() -> Wire {
        Wire {
            front: Impair::default(),
            back: Impair::default(),
            queue: BinaryHeap::new(),
            frames: HashMap::new(),
            seq: 0,
            stats: WireStats::default(),
        }
    }

    /// Puts `frame` on the segment of `to`, to arrive there after a latency.
    pub(crate) fn send(&mut self, rng: &mut Rng, now: u64, to: Port, frame: Vec<u8>) -> Fate {
        self.stats.frames += 1;
        let imp = if to.front_segment() {
            self.front
        } else {
            self.back
        };
        if rng.chance(imp.loss) {
            self.stats.lost += 1;
            return Fate::default();
        }
        let copies = if rng.chance(imp.dup) {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        let mut fate = Fate::default();
        let mut frame = Some(frame);
        let mut first_at = None;
        for k in 0..copies {
            let mut f = if k + 1 == copies {
                frame.take().unwrap_or_default()
            } else {
                frame.clone().unwrap_or_default()
            };
            let intact = !rng.chance(imp.corrupt);
            if intact {
                fate.intact += 1;
            } else {
                self.stats.corrupted += 1;
                corrupt(rng, &mut f);
            }
            let at = match first_at {
                Some(original) => original + rng.below(JITTER_NS),
                None => {
                    let mut at = now + LATENCY_NS + rng.below(JITTER_NS);
                    if rng.chance(imp.reorder) {
                        self.stats.reordered += 1;
                        at += REORDER_NS;
                    }
                    at
                }
            };
            first_at.get_or_insert(at);
            self.seq += 1;
            self.queue.push(Reverse((at, self.seq)));
            self.frames.insert(
                self.seq,
                Frame {
                    to,
                    bytes: f,
                    intact,
                },
            );
        }
        fate
    }

    /// When the next frame arrives.
    pub(crate) fn next_at(&self) -> Option<u64> {
        self.queue.peek().map(|Reverse((t, _))| *t)
    }

    /// The next frame due by `now`.
    pub(crate) fn pop_due(&mut self, now: u64) -> Option<Frame> {
        let Reverse((t, s)) = *self.queue.peek()?;
        if t > now {
            return None;
        }
        self.queue.pop();
        self.frames.remove(&s)
    }

    /// Appliance `who` is down: frames on their way to it are lost. Returns the
    /// intact ones.
    pub(crate) fn drop_to_appliance(&mut self, who: usize) -> Vec<(Port, Vec<u8>)> {
        let mut lost = Vec::new();
        self.frames.retain(|_, f| {
            let keep = !matches!(f.to, Port::Front(w) | Port::Back(w) if w == who);
            if !keep && f.intact {
                lost.push((f.to, std::mem::take(&mut f.bytes)));
            }
            keep
        });
        let live = &self.frames;
        self.queue.retain(|Reverse((_, s))| live.contains_key(s));
        lost
    }
}

/// Mangles `f` so that it no longer parses as AoE.
fn corrupt(rng: &mut Rng, f: &mut Vec<u8>) {
    match rng.below(3) {
        0 => f.truncate(rng.below(aoe_wire::ATA_DATA_OFFSET as u64) as usize),
        1 => {
            if f.len() > 13 {
                f[12] ^= 1 << rng.below(8);
            }
        }
        _ => {
            // Cut inside the AoE header.
            f.truncate(14 + rng.below(10) as usize);
        }
    }
    debug_assert!(aoe_wire::parse(f).is_err() || f.len() < aoe_wire::ATA_DATA_OFFSET);
}
