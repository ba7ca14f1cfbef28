//! Fencing by reservation: the write gate that lets a Reserve reply wait
//! until no write checked against an older reserve list can still land.
//!
//! A write is checked against the worker's cached reserve list, then goes to
//! the store; a reservation change made meanwhile (by this worker or another
//! one) must not be answered while such a write is still on its way. Every
//! write therefore *enters* the gate before its reservation check and
//! *leaves* it when the store has it (or it is refused or dropped). The gate
//! counts writes per epoch; a reply that shows a non-empty list takes a
//! *ticket* (the epoch current after the list it shows was made) and is held
//! until that epoch and all before it are empty.
//!
//! Why it is enough (every access below is `SeqCst`, one total order):
//! a writer increments its epoch's count, confirms the epoch did not move,
//! then loads the reservation generation; a changer bumps the generation,
//! then loads the epoch as its ticket. If the writer's generation load came
//! before the bump, its increment came before the ticket load, so it counts
//! in the ticket's epoch or an earlier one, and the reply waits for it. If
//! it came after, the writer sees the new list and is refused.
//!
//! Two parities suffice: the epoch only moves on (from `t` to `t + 1`) once
//! epoch `t - 1`, which shares a counter with `t + 1`, is empty; so at most
//! two epochs are ever live and an empty epoch `t` at `t + 1` means every
//! write up to `t` has left. New writes go to the newest epoch, so a held
//! reply waits only for writes that were in flight when it was made, never
//! for a steady stream of later ones.
//!
//! A worker holding a reply need not poll for writes on other workers: it
//! *watches* the gate (a bit of its own in `watchers`) and then looks at the
//! counts again; a worker whose write leaves takes the watchers' bits
//! after its decrement and wakes them ([`Target::take_fence_wakes`]). Same
//! total order: either the watcher's second look comes after the
//! decrement and sees it, or the leaver's swap comes after the watch and
//! wakes the watcher.

use crate::target::{ctl_buf, Action, CtlFrame, ExportId, IfaceId, Target, CTL_FRAME_LEN};
use aoe_wire::Mac;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

/// In-flight writes of one export, counted by epoch (shared by all workers).
#[derive(Debug, Default)]
pub(crate) struct WriteGate {
    epoch: AtomicU64,
    writes: [AtomicU64; 2],
    /// Workers (one bit each) holding a reply on this gate that want a
    /// wake-up when a write leaves.
    watchers: AtomicU64,
}

impl WriteGate {
    /// Registers a write about to be checked; returns its epoch (pass it to
    /// [`WriteGate::leave`]). The caller checks the reservation after this.
    pub(crate) fn enter(&self) -> u64 {
        loop {
            let e = self.epoch.load(SeqCst);
            let count = &self.writes[parity(e)];
            count.fetch_add(1, SeqCst);
            if self.epoch.load(SeqCst) == e {
                return e;
            }
            // The epoch moved between the load and the increment: the count
            // may already be another epoch's; take the new one instead.
            count.fetch_sub(1, SeqCst);
        }
    }

    /// A write of epoch `e` reached the store, or will never go there.
    /// Returns the workers that watched the gate (each to be woken once:
    /// their bits are cleared; one still waiting watches again).
    pub(crate) fn leave(&self, e: u64) -> u64 {
        self.writes[parity(e)].fetch_sub(1, SeqCst);
        if self.watchers.load(SeqCst) == 0 {
            0
        } else {
            self.watchers.swap(0, SeqCst)
        }
    }

    /// Whether every write of epoch `ticket` and before has left; if not,
    /// registers `worker` (a bit, 0 for none) to be woken by the next write
    /// to leave, and looks once more (a write may have left in between).
    pub(crate) fn drained_or_watch(&self, ticket: u64, worker: u64) -> bool {
        if self.drained(ticket) {
            return true;
        }
        if worker == 0 {
            return false;
        }
        self.watchers.fetch_or(worker, SeqCst);
        self.drained(ticket)
    }

    /// The epoch every write checked against an older reserve list belongs
    /// to (or precedes). Take it after the list changed, or after reading a
    /// list to show.
    pub(crate) fn ticket(&self) -> u64 {
        self.epoch.load(SeqCst)
    }

    /// Whether every write of epoch `ticket` and before has left; moves the
    /// epoch on when it may, so later writes are not waited for.
    pub(crate) fn drained(&self, ticket: u64) -> bool {
        loop {
            let e = self.epoch.load(SeqCst);
            if e >= ticket + 2 {
                return true;
            }
            if e == ticket + 1 {
                return self.writes[parity(ticket)].load(SeqCst) == 0;
            }
            // e == ticket: close it, if the epoch before (same counter as the
            // next one) is empty. Another worker may close it first: reload.
            if self.writes[parity(ticket + 1)].load(SeqCst) != 0 {
                return false;
            }
            let _ = self
                .epoch
                .compare_exchange(ticket, ticket + 1, SeqCst, SeqCst);
        }
    }
}

fn parity(e: u64) -> usize {
    (e & 1) as usize
}

/// Whether `mac` may not send ATA commands (other than IDENTIFY) under
/// `reserve`: the list is non-empty and does not hold it.
pub(crate) fn excluded(reserve: &[Mac], mac: &Mac) -> bool {
    !reserve.is_empty() && !reserve.contains(mac)
}

/// A Reserve reply held until the writes its list must outlast have left.
#[derive(Debug)]
pub(crate) struct HeldReply {
    export: ExportId,
    iface: IfaceId,
    ticket: u64,
    frame: Vec<u8>,
}

impl Target {
    /// Sends a Reserve reply built in control frame `f` now, or holds it
    /// while writes checked against an older list may still land: a reply
    /// never shows a list that excludes a MAC before the excluded MAC's
    /// writes are in the store (or refused). An empty list excludes nobody.
    pub(crate) fn send_or_hold_reserve_reply(
        &mut self,
        iface: IfaceId,
        export: ExportId,
        f: CtlFrame,
        len: usize,
        out: &mut Vec<Action>,
    ) {
        let ex = &self.exports[usize::from(export.0)];
        if ex.cache.reserve.is_empty() {
            return self.push_ctl(iface, f, len, out);
        }
        let ticket = ex.shared.gate.ticket();
        if ex.shared.gate.drained_or_watch(ticket, self.fence_worker) {
            return self.push_ctl(iface, f, len, out);
        }
        if self.held.len() >= HELD_MAX {
            // The client repeats its request; nothing was promised yet.
            self.counters.target_queue_full += 1;
            return;
        }
        self.counters.reserve_replies_held += 1;
        let frame = ctl_buf(&mut self.ctl, f)[..len].to_vec();
        self.held.push(HeldReply {
            export,
            iface,
            ticket,
            frame,
        });
    }

    /// Sends the held Reserve replies whose writes have left. The target
    /// looks itself at each frame and write completion; a driver with
    /// several workers calls this too when another worker's
    /// [`Target::take_fence_wakes`] names this one, since the writes a reply
    /// waits for may complete on another worker.
    pub fn poll_fences(&mut self, out: &mut Vec<Action>) {
        self.ctl_used = 0;
        self.release_held(out);
    }

    /// [`Target::poll_fences`] inside a call that may have used control
    /// frames already.
    pub(crate) fn release_held(&mut self, out: &mut Vec<Action>) {
        let mut i = 0;
        while i < self.held.len() {
            let h = &self.held[i];
            let gate = &self.exports[usize::from(h.export.0)].shared.gate;
            if !gate.drained_or_watch(h.ticket, self.fence_worker) {
                i += 1;
                continue;
            }
            let Some(f) = self.ctl_slot() else { return };
            let h = self.held.remove(i);
            let len = h.frame.len().min(CTL_FRAME_LEN);
            ctl_buf(&mut self.ctl, f)[..len].copy_from_slice(&h.frame[..len]);
            self.push_ctl(h.iface, f, len, out);
        }
    }

    /// Whether Reserve replies wait for writes.
    pub fn fences_held(&self) -> bool {
        !self.held.is_empty()
    }

    /// Makes this target one of several workers sharing exports, as bit
    /// `worker` (< 64): a reply it holds watches the export's write gate,
    /// and a write leaving the gate on another worker names it in that
    /// worker's [`Target::take_fence_wakes`], so the host wakes it instead of
    /// it polling.
    pub fn watch_fences_as(&mut self, worker: u8) {
        self.fence_worker = 1u64.checked_shl(u32::from(worker)).unwrap_or(0);
    }

    /// The workers (bits as given to [`Target::watch_fences_as`]) to wake
    /// because a write left a gate they hold a reply on; clears them.
    pub fn take_fence_wakes(&mut self) -> u64 {
        std::mem::take(&mut self.fence_wakes) & !self.fence_worker
    }
}

/// Reserve replies held at once; more are dropped (counted in
/// `target_queue_full`) and the client asks again.
const HELD_MAX: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_waits_for_writes_entered_before_it_only() {
        let g = WriteGate::default();
        let w1 = g.enter();
        let t = g.ticket();
        assert!(!g.drained(t), "w1 is still in flight");
        // The epoch moved on at that first look: later writes do not count.
        let w2 = g.enter();
        assert_ne!(w1, w2);
        assert!(!g.drained(t));
        g.leave(w1);
        assert!(g.drained(t), "w2 came after the ticket");
        // A second ticket waits for w2; the epoch cannot move on past it
        // while w2 (sharing the counter of the epoch after next) is in flight.
        let t2 = g.ticket();
        assert!(!g.drained(t2));
        let w3 = g.enter();
        let t3 = g.ticket();
        assert_eq!(t3, t2 + 1);
        assert!(
            !g.drained(t3),
            "cannot close t3 while w2 shares its successor's counter"
        );
        g.leave(w3);
        assert!(!g.drained(t2));
        g.leave(w2);
        assert!(g.drained(t2));
        assert!(g.drained(t3));
        assert!(g.drained(t));
    }

    #[test]
    fn a_watcher_is_named_once_by_the_next_write_to_leave() {
        let g = WriteGate::default();
        let (w1, w2) = (g.enter(), g.enter());
        let t = g.ticket();
        assert!(!g.drained_or_watch(t, 0), "no bit: nothing registered");
        assert_eq!(g.leave(w1), 0);
        assert!(!g.drained_or_watch(t, 0b100));
        assert_eq!(g.leave(w2), 0b100, "the watcher is woken");
        assert!(g.drained_or_watch(t, 0b100), "and finds the gate drained");
        let w3 = g.enter();
        assert_eq!(g.leave(w3), 0, "a drained look registers nothing");
    }

    #[test]
    fn an_idle_gate_is_drained_at_once() {
        let g = WriteGate::default();
        for _ in 0..5 {
            let t = g.ticket();
            assert!(g.drained(t));
        }
        let w = g.enter();
        g.leave(w);
        assert!(g.drained(g.ticket()));
    }

    #[test]
    fn threads_never_see_a_drained_ticket_with_an_older_write_in_flight() {
        use std::sync::atomic::{AtomicBool, AtomicU64 as Gen};
        use std::sync::Arc;
        // Writers enter, read the "generation", and if it is even stay in
        // flight a moment; a changer bumps it to odd (the change) and checks
        // that once drained, no writer that saw the even value is in flight.
        let g = Arc::new(WriteGate::default());
        let gen = Arc::new(Gen::new(0));
        let old_in_flight = Arc::new(Gen::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..3)
            .map(|_| {
                let (g, gen, old, stop) =
                    (g.clone(), gen.clone(), old_in_flight.clone(), stop.clone());
                std::thread::spawn(move || {
                    while !stop.load(SeqCst) {
                        let e = g.enter();
                        let seen = gen.load(SeqCst);
                        if seen.is_multiple_of(2) {
                            old.fetch_add(1, SeqCst);
                            std::hint::spin_loop();
                            old.fetch_sub(1, SeqCst);
                        }
                        g.leave(e);
                    }
                })
            })
            .collect();
        for _ in 0..500 {
            gen.fetch_add(1, SeqCst); // now odd: the change
            let t = g.ticket();
            while !g.drained(t) {
                std::hint::spin_loop();
            }
            assert_eq!(old_in_flight.load(SeqCst), 0);
            gen.fetch_add(1, SeqCst); // back to even for the next round
        }
        stop.store(true, SeqCst);
        for w in writers {
            w.join().unwrap();
        }
    }
}
