//! Durability barriers: "sync this file once every write submitted so far has finished".
//!
//! A durable target acknowledges many concurrent writes with one fdatasync. io_uring's own
//! ordering tools do not fit: IOSQE_IO_LINK serialises the writes, and IOSQE_IO_DRAIN
//! waits for *every* earlier request, including multishot receives that never end. So
//! writes are grouped into epochs per file: a barrier closes the current epoch, and its
//! sync is issued once that epoch and all older ones have no write in flight.

use std::collections::VecDeque;

#[derive(Debug)]
struct Epoch {
    id: u64,
    writes_in_flight: u32,
    // (user token, datasync) of the barrier that closed this epoch; None while open.
    barrier: Option<(u64, bool)>,
}

/// Per-file epoch bookkeeping. Pure logic, no I/O.
#[derive(Debug)]
pub(crate) struct Barriers {
    epochs: VecDeque<Epoch>,
}

impl Default for Barriers {
    fn default() -> Self {
        let mut epochs = VecDeque::with_capacity(8);
        epochs.push_back(Epoch {
            id: 0,
            writes_in_flight: 0,
            barrier: None,
        });
        Barriers { epochs }
    }
}

impl Barriers {
    /// A write was submitted; returns its epoch id (pass it to `write_done`).
    pub(crate) fn write_started(&mut self) -> u64 {
        let open = self.open_epoch();
        open.writes_in_flight += 1;
        open.id
    }

    /// A write of epoch `id` finished (successfully or not).
    pub(crate) fn write_done(&mut self, id: u64) {
        if let Some(e) = self.epochs.iter_mut().find(|e| e.id == id) {
            e.writes_in_flight = e.writes_in_flight.saturating_sub(1);
        }
    }

    /// Close the open epoch with a barrier; the barrier becomes ready (see `pop_ready`)
    /// once no write of it or an older epoch is in flight.
    pub(crate) fn add_barrier(&mut self, user: u64, datasync: bool) {
        let open = self.open_epoch();
        open.barrier = Some((user, datasync));
        let next = open.id + 1;
        self.epochs.push_back(Epoch {
            id: next,
            writes_in_flight: 0,
            barrier: None,
        });
    }

    /// The next barrier whose writes have all finished, oldest first.
    pub(crate) fn pop_ready(&mut self) -> Option<(u64, bool)> {
        let front = self.epochs.front()?;
        if front.writes_in_flight != 0 || front.barrier.is_none() {
            return None;
        }
        let e = self.epochs.pop_front()?;
        e.barrier
    }

    fn open_epoch(&mut self) -> &mut Epoch {
        // The back epoch is always the open one (constructor and add_barrier keep one).
        if self.epochs.is_empty() {
            self.epochs.push_back(Epoch {
                id: 0,
                writes_in_flight: 0,
                barrier: None,
            });
        }
        let last = self.epochs.len() - 1;
        &mut self.epochs[last]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn barrier_waits_for_its_writes_only() {
        let mut b = Barriers::default();
        let w1 = b.write_started();
        let w2 = b.write_started();
        b.add_barrier(100, true);
        let w3 = b.write_started();
        assert_eq!(b.pop_ready(), None);
        b.write_done(w1);
        assert_eq!(b.pop_ready(), None);
        b.write_done(w2);
        assert_eq!(b.pop_ready(), Some((100, true)));
        assert_eq!(b.pop_ready(), None, "the later write has no barrier yet");
        b.add_barrier(101, false);
        assert_eq!(b.pop_ready(), None);
        b.write_done(w3);
        assert_eq!(b.pop_ready(), Some((101, false)));
    }

    #[test]
    fn barrier_without_writes_is_ready_at_once() {
        let mut b = Barriers::default();
        b.add_barrier(7, true);
        assert_eq!(b.pop_ready(), Some((7, true)));
    }

    #[test]
    fn later_barrier_waits_for_earlier_epochs() {
        let mut b = Barriers::default();
        let w1 = b.write_started();
        b.add_barrier(1, true);
        b.add_barrier(2, true);
        assert_eq!(b.pop_ready(), None);
        b.write_done(w1);
        assert_eq!(b.pop_ready(), Some((1, true)));
        assert_eq!(b.pop_ready(), Some((2, true)));
    }

    #[test]
    fn writes_finishing_out_of_order() {
        let mut b = Barriers::default();
        let a = b.write_started();
        b.add_barrier(1, true);
        let c = b.write_started();
        b.add_barrier(2, true);
        b.write_done(c);
        assert_eq!(b.pop_ready(), None, "epoch 0 still has a write in flight");
        b.write_done(a);
        assert_eq!(b.pop_ready(), Some((1, true)));
        assert_eq!(b.pop_ready(), Some((2, true)));
    }
}
