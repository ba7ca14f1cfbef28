//! Saving an export's state on its volume's members
//! ([`crate::frontend::ExportRecord`]): when a client (or a reload) changes the
//! reserve list or config string, one record with the next sequence number
//! is written to every member of every array of the volume that is in use
//! (active or rebuilding). Until that round has finished, no front-end frame
//! goes out — the Reserve reply that shows a fence is sent only once the fence
//! is on the blades a standby would read it from.
//!
//! A round succeeds when at least one member took the record; members that
//! failed or are gone are left to the next round (assembly picks the newest
//! whole record among the members it finds).

use crate::frontend::ExportRecord;
use aoe_target::ExportState;
use raid_engine::{MemberError, MemberState};

/// One member write of a round: (array index, member index, sector, bytes).
pub(crate) type RecordWrite = (usize, usize, u64, Vec<u8>);

#[derive(Debug, Default)]
struct Round {
    seq: u64,
    reserve: Vec<aoe_wire::Mac>,
    left: usize,
    ok: usize,
    failed: usize,
}

/// Per export: the sequence to write next, a save owed, the round in flight.
#[derive(Debug, Default)]
pub(crate) struct StateSaves {
    next_seq: Vec<u64>,
    owed: Vec<bool>,
    rounds: Vec<Option<Round>>,
}

/// What a finished round says, for the log.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct RoundDone {
    pub(crate) export: usize,
    pub(crate) seq: u64,
    /// The reserve list the record holds.
    pub(crate) reserve: Vec<aoe_wire::Mac>,
    pub(crate) ok: usize,
    pub(crate) failed: usize,
}

impl StateSaves {
    /// `next_seq[e]`: one above the newest record found on export `e`'s
    /// members at start (1 when there was none). Every export owes a first
    /// save: its members then carry the state it starts with.
    pub(crate) fn new(next_seq: Vec<u64>) -> StateSaves {
        let n = next_seq.len();
        StateSaves {
            next_seq,
            owed: vec![true; n],
            rounds: (0..n).map(|_| None).collect(),
        }
    }

    /// Export `e`'s state changed: it must be saved again.
    pub(crate) fn owe(&mut self, e: usize) {
        if let Some(o) = self.owed.get_mut(e) {
            *o = true;
        }
    }

    /// A save owed or in flight: front-end frames wait.
    pub(crate) fn busy(&self) -> bool {
        self.owed.iter().any(|o| *o) || self.rounds.iter().any(Option::is_some)
    }

    /// Exports owing a save with no round in flight (a change during a round
    /// is saved by the next one, with the newest state).
    pub(crate) fn startable(&self) -> Vec<usize> {
        (0..self.owed.len())
            .filter(|&e| self.owed[e] && self.rounds[e].is_none())
            .collect()
    }

    /// Starts export `e`'s next round: the record of `state` for each array
    /// (its UUID and member states, in array order) — the writes to issue,
    /// each to come back through [`StateSaves::done`]. Zero writes (no member
    /// in use) finishes the round at once, failed.
    pub(crate) fn start(
        &mut self,
        e: usize,
        (shelf, slot): (u16, u8),
        state: &ExportState,
        arrays: &[([u8; 16], Vec<MemberState>)],
    ) -> (Vec<RecordWrite>, Option<RoundDone>) {
        let seq = self.next_seq[e];
        self.next_seq[e] += 1;
        self.owed[e] = false;
        let mut writes = Vec::new();
        for (a, (uuid, members)) in arrays.iter().enumerate() {
            let rec = ExportRecord::of(seq, shelf, slot, *uuid, state);
            let bytes = rec.encode();
            for (m, st) in members.iter().enumerate() {
                if matches!(st, MemberState::Active | MemberState::Rebuilding) {
                    writes.push((a, m, rec.offset(), bytes.clone()));
                }
            }
        }
        if writes.is_empty() {
            return (
                writes,
                Some(RoundDone {
                    export: e,
                    seq,
                    reserve: state.reserve.clone(),
                    ok: 0,
                    failed: 0,
                }),
            );
        }
        self.rounds[e] = Some(Round {
            seq,
            reserve: state.reserve.clone(),
            left: writes.len(),
            ..Round::default()
        });
        (writes, None)
    }

    /// A record write of export `e` finished; the round's summary once it
    /// was the last.
    pub(crate) fn done(&mut self, e: usize, r: Result<(), MemberError>) -> Option<RoundDone> {
        let round = self.rounds.get_mut(e)?.as_mut()?;
        match r {
            Ok(()) => round.ok += 1,
            Err(_) => round.failed += 1,
        }
        round.left -= 1;
        if round.left > 0 {
            return None;
        }
        let round = self.rounds[e].take().expect("checked");
        Some(RoundDone {
            export: e,
            seq: round.seq,
            reserve: round.reserve,
            ok: round.ok,
            failed: round.failed,
        })
    }

    /// Record writes in flight.
    pub(crate) fn in_flight(&self) -> usize {
        self.rounds.iter().flatten().map(|r| r.left).sum()
    }
}

/// Member I/O id of export `e`'s record write number `n` of a round.
pub(crate) fn write_id(e: usize, n: usize) -> u64 {
    ((e as u64) << 24) | (n as u64 & 0xFF_FFFF)
}

/// The export of a record write's id.
pub(crate) fn export_of(id: u64) -> usize {
    (id >> 24) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(reserve: u8) -> ExportState {
        ExportState {
            serial: "S".into(),
            reserve: vec![aoe_wire::Mac([2, 0, 0, 0, 0, reserve])],
            ..ExportState::default()
        }
    }

    #[test]
    fn rounds_write_in_use_members_and_hold_frames_until_done() {
        use MemberState::*;
        let mut s = StateSaves::new(vec![4]);
        assert!(s.busy(), "the first save is owed at start");
        let arrays = [
            ([1; 16], vec![Active, Faulty, Rebuilding]),
            ([2; 16], vec![Missing, Active]),
        ];
        let (w, done) = s.start(0, (7, 0), &state(1), &arrays);
        assert!(done.is_none());
        let targets: Vec<(usize, usize, u64)> = w.iter().map(|w| (w.0, w.1, w.2)).collect();
        // seq 4 is even: slot 0.
        assert_eq!(targets, vec![(0, 0, 0), (0, 2, 0), (1, 1, 0)]);
        let rec = ExportRecord::decode(&w[2].3).expect("record");
        assert_eq!((rec.seq, rec.array_uuid), (4, [2; 16]));
        assert!(s.busy());
        s.owe(0);
        assert!(s.startable().is_empty(), "one round at a time");
        assert_eq!(s.done(0, Ok(())), None);
        assert_eq!(s.done(0, Err(MemberError::Gone)), None);
        assert_eq!(
            s.done(0, Ok(())),
            Some(RoundDone {
                export: 0,
                seq: 4,
                reserve: state(1).reserve,
                ok: 2,
                failed: 1
            })
        );
        assert_eq!(s.startable(), vec![0], "the change made during the round");
        let (w, _) = s.start(0, (7, 0), &state(2), &arrays);
        assert_eq!(w[0].2, 4, "seq 5 goes to the other slot");
        for _ in 0..w.len() {
            s.done(0, Ok(()));
        }
        assert!(!s.busy());
        assert_eq!(s.in_flight(), 0);
    }

    #[test]
    fn no_member_in_use_fails_the_round_at_once() {
        let mut s = StateSaves::new(vec![1]);
        let arrays = [([1; 16], vec![MemberState::Faulty])];
        let (w, done) = s.start(0, (7, 0), &state(1), &arrays);
        assert!(w.is_empty());
        assert_eq!(done.map(|d| d.ok), Some(0));
        assert!(!s.busy());
    }

    #[test]
    fn write_ids_name_their_export() {
        assert_eq!(export_of(write_id(3, 17)), 3);
    }

    /// A record write's completion taken for a superblock probe's (a blade
    /// missing at start is probed) left its round unfinished and the front end
    /// silent.
    #[test]
    fn record_tokens_are_not_probe_tokens() {
        let t = crate::core::members::token(crate::core::members::RECORD_VOLUME, 0, write_id(0, 0));
        assert!(!crate::core::rejoin::Rejoin::is_probe(t));
    }
}
