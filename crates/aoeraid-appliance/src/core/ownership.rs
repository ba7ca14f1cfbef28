//! Ownership of blades by AoE reservation (`docs/ha.md`, "Blade ownership").
//!
//! Two appliances may see the same blades; only the one whose back-end MACs are on
//! a blade's reserve list may read or write it (vblade refuses every other ATA
//! command but IDENTIFY with AoE error 6). This module decides:
//!
//! * at start ([`plan_claim`]): a plain start reads every list and refuses, naming
//!   the blades and their holders, if any is held by another MAC; otherwise it sets
//!   the list to its own MACs (Set). A takeover force-sets every list (Force Set),
//!   which fences the previous holder at the blades.
//! * while running ([`Ownership`]): the lists are re-asserted with Set every
//!   [`REASSERT_EVERY`] and whenever a blade answers again (vblade keeps its list in
//!   memory only, so a restarted blade comes back with an empty one), before any
//!   member on it is written again. A Set refused, or any I/O refused for a
//!   reservation, means another appliance owns the blade now: the blade is lost,
//!   never forced back, and every volume with a member on it stops (the core's side
//!   of that is in `mod.rs`).
//! * after a takeover, for a blade first seen later (away while the claim ran,
//!   found by the whole-appliance simulator: its list still named the old active,
//!   our Set was refused and the blade stayed out of its array for good): its list
//!   is Read first, and it is force-set only when every MAC on it is one the
//!   takeover fenced ([`Ownership::fencing`]) and no blade was lost since (nobody
//!   took over from us); otherwise it is Set, and a refusal loses it as above.
//!   What remains open: an old active that has not yet noticed it was taken over
//!   could force back a blade whose list names only the new active, if that
//!   blade came back to it in the second before its periodic Set was refused.
//!
//! Sans-IO like the rest of the core: requests go out through the pool, their
//! completions come back through [`super::Core`].

use aoe_initiator::{
    write_macs, BladeId, Pool, ReserveCmd, ReserveCompletion, ReserveError, ReserveRequest,
};
use aoe_wire::Mac;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// How often a held blade's list is set again: the longest a blade that restarted
/// within the dead time (and so never looked down) stays unreserved.
pub(crate) const REASSERT_EVERY: Duration = Duration::from_secs(1);

/// How the appliance takes its blades at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClaimMode {
    /// `aoeraid run`/`create`: free blades are claimed, held ones refused.
    Plain,
    /// `aoeraid run --takeover`: every blade is force-set to our MACs.
    Takeover,
}

/// Who holds a blade, from our side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Holder {
    Free,
    /// Only our MACs are listed.
    Us,
    /// Some other MAC is listed (all of them, ours included if any).
    Other(Vec<Mac>),
}

pub(crate) fn holder(list: &[Mac], ours: &[Mac]) -> Holder {
    if list.is_empty() {
        Holder::Free
    } else if list.iter().all(|m| ours.contains(m)) {
        Holder::Us
    } else {
        Holder::Other(list.to_vec())
    }
}

/// `e0.1 (reserved by 02:…)`-style naming of a blade and its holders.
pub(crate) fn held_by(name: &str, holders: &[Mac]) -> String {
    let mut s = format!("{name} reserved by ");
    let _ = write_macs(&mut s, holders);
    s
}

/// What a start does to one blade, decided from the lists a Read returned
/// (`lists[i]` for blade `names[i]`; a takeover needs no Read and passes none).
/// `Err` lists every blade another appliance holds, for a plain start to refuse.
pub(crate) fn plan_claim(
    mode: ClaimMode,
    names: &[String],
    lists: &[Vec<Mac>],
    ours: &[Mac],
) -> Result<Vec<ReserveCmd>, Vec<String>> {
    if mode == ClaimMode::Takeover {
        return Ok(vec![ReserveCmd::ForceSet; names.len()]);
    }
    let held: Vec<String> = names
        .iter()
        .zip(lists)
        .filter_map(|(n, l)| match holder(l, ours) {
            Holder::Other(h) => Some(held_by(n, &h)),
            Holder::Free | Holder::Us => None,
        })
        .collect();
    if held.is_empty() {
        Ok(vec![ReserveCmd::Set; names.len()])
    } else {
        Err(held)
    }
}

/// The answers of a round of reserve requests, one slot per blade (in order).
pub(crate) type ReserveResults = Vec<Option<Result<Vec<Mac>, ReserveError>>>;

/// Sends `cmd` with `macs` to every blade of `blades` through `pool` (each
/// request's `user` is its index); the slots of those that could not be sent
/// are filled with `BladeDown`, the others wait for [`Pool::poll_reserve`].
pub(crate) fn send_reserves(
    pool: &mut Pool,
    now: Instant,
    blades: &[BladeId],
    cmd: ReserveCmd,
    macs: &[Mac],
) -> ReserveResults {
    let mut results: ReserveResults = vec![None; blades.len()];
    for (i, &blade) in blades.iter().enumerate() {
        let req = ReserveRequest {
            blade,
            cmd,
            macs: macs.to_vec(),
            user: i as u64,
        };
        if pool.reserve(now, req).is_err() {
            results[i] = Some(Err(ReserveError::BladeDown));
        }
    }
    results
}

/// A blade the appliance must hold, as far as it knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Claim {
    /// Our MACs are on its list (last Set answered).
    Held,
    /// A Set (Force Set when `force`) is out; `rejoin`: the blade came back, and
    /// its members wait for the answer before they are taken back into their arrays.
    Asserting { rejoin: bool, force: bool },
    /// It answers again, but Set was not sent yet (down, or a Set was out).
    Pending,
    /// First seen after a takeover start: its list is to be read (then it is
    /// forced or Set, see the module's doc).
    Unread,
    /// That Read is out.
    Reading,
    /// Its list names only MACs the takeover fenced: Force Set when due.
    Force,
    /// Another appliance holds it: never written again by this process.
    Lost { holders: Vec<Mac> },
}

/// What a finished reserve request means for the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Nothing to do.
    None,
    /// A list was read: the blade's Set or Force Set is due now.
    Read,
    /// The blade is held again after coming back: its members may rejoin.
    Rejoin(BladeId),
    /// The blade was just lost to `holders` (empty: not known yet).
    Lost(BladeId, Vec<Mac>),
}

/// The appliance's claim on its blades while it runs.
#[derive(Debug, Default)]
pub(crate) struct Ownership {
    macs: Vec<Mac>,
    /// The MACs a takeover forced off the blades (empty: a plain start).
    fenced: Vec<Mac>,
    blades: BTreeMap<BladeId, Claim>,
    /// Blades no configuration names, adopted after a takeover only to learn
    /// whether the old active held them (its run-time spares, `spare_scan.rs`):
    /// forgotten, untouched, if their list names anyone else.
    found: BTreeSet<BladeId>,
    next_reassert: Option<Instant>,
    /// I/Os and Sets refused because another appliance holds a blade.
    refused: u64,
}

impl Ownership {
    /// Holds `blades` (claimed at start) with `macs` from `now` on.
    pub(crate) fn new(
        macs: Vec<Mac>,
        blades: impl IntoIterator<Item = BladeId>,
        now: Instant,
    ) -> Self {
        Ownership {
            macs,
            fenced: Vec::new(),
            blades: blades.into_iter().map(|b| (b, Claim::Held)).collect(),
            found: BTreeSet::new(),
            next_reassert: Some(now + REASSERT_EVERY),
            refused: 0,
        }
    }

    /// The claim was a takeover that forced `lists` (read just before) to our
    /// MACs: the other MACs on them are the fenced old active's, which a blade
    /// first seen later may still name.
    pub(crate) fn fencing(mut self, lists: &[Vec<Mac>]) -> Self {
        for m in lists.iter().flatten() {
            if !self.macs.contains(m) && !self.fenced.contains(m) {
                self.fenced.push(*m);
            }
        }
        self
    }

    pub(crate) fn macs(&self) -> &[Mac] {
        &self.macs
    }

    pub(crate) fn claim(&self, blade: BladeId) -> Option<&Claim> {
        self.blades.get(&blade)
    }

    /// Every blade held (or once held) and the claim on it.
    pub(crate) fn claims(&self) -> impl Iterator<Item = (BladeId, &Claim)> {
        self.blades.iter().map(|(b, c)| (*b, c))
    }

    /// May the appliance write `blade` now: it holds no reservations at all, or
    /// its last Set on the blade was answered.
    pub(crate) fn writable(&self, blade: BladeId) -> bool {
        self.macs.is_empty() || matches!(self.blades.get(&blade), Some(Claim::Held))
    }

    pub(crate) fn is_lost(&self, blade: BladeId) -> bool {
        matches!(self.blades.get(&blade), Some(Claim::Lost { .. }))
    }

    /// I/Os and Sets refused for a reservation so far.
    pub(crate) fn refused(&self) -> u64 {
        self.refused
    }

    /// The next re-assertion, for the core's timer.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.next_reassert
    }

    /// The requests to send now: Set of every held blade when the period is up,
    /// of those waiting to be re-asserted, Read or Force Set of blades first seen
    /// after a takeover. Marks them in flight.
    pub(crate) fn due(&mut self, now: Instant) -> Vec<(BladeId, ReserveCmd)> {
        let periodic = self.next_reassert.is_some_and(|t| t <= now);
        if periodic {
            self.next_reassert = Some(now + REASSERT_EVERY);
        }
        let mut out = Vec::new();
        for (&b, c) in &mut self.blades {
            let (next, cmd) = match c {
                Claim::Pending => (
                    Claim::Asserting {
                        rejoin: true,
                        force: false,
                    },
                    ReserveCmd::Set,
                ),
                Claim::Force => (
                    Claim::Asserting {
                        rejoin: true,
                        force: true,
                    },
                    ReserveCmd::ForceSet,
                ),
                Claim::Unread => (Claim::Reading, ReserveCmd::Read),
                Claim::Held if periodic => (
                    Claim::Asserting {
                        rejoin: false,
                        force: false,
                    },
                    ReserveCmd::Set,
                ),
                _ => continue,
            };
            *c = next;
            out.push((b, cmd));
        }
        out
    }

    /// A request could not be sent or failed (blade down or gone): it is sent
    /// again when the blade returns (or at the next period).
    pub(crate) fn not_sent(&mut self, blade: BladeId) {
        if let Some(c) = self.blades.get_mut(&blade) {
            *c = match c {
                Claim::Asserting {
                    rejoin: true,
                    force: true,
                }
                | Claim::Reading => Claim::Unread,
                Claim::Asserting { rejoin: true, .. } => Claim::Pending,
                Claim::Asserting { .. } => Claim::Held,
                _ => return,
            };
        }
    }

    /// A blade we hold answers again after being down: Set before anything is
    /// written to it. False for a blade we do not hold (or lost).
    pub(crate) fn returned(&mut self, blade: BladeId) -> bool {
        match self.blades.get_mut(&blade) {
            Some(Claim::Lost { .. }) | None => false,
            Some(c) => {
                *c = match c {
                    // Never held yet: its list is read again.
                    Claim::Unread
                    | Claim::Reading
                    | Claim::Force
                    | Claim::Asserting { force: true, .. } => Claim::Unread,
                    _ => Claim::Pending,
                };
                true
            }
        }
    }

    /// Holds `blade` from now on: its Set was just answered (a blade an operator
    /// command brought in).
    pub(crate) fn hold(&mut self, blade: BladeId) {
        self.blades.insert(blade, Claim::Held);
    }

    /// Holds `blade` from now on (a configured blade first seen after the
    /// start); it is claimed before anything is written to it (after a
    /// takeover, its list is read first).
    pub(crate) fn adopt(&mut self, blade: BladeId) {
        let first = if self.fenced.is_empty() {
            Claim::Pending
        } else {
            Claim::Unread
        };
        self.blades.entry(blade).or_insert(first);
    }

    /// Was the start a takeover (some MACs were fenced)?
    pub(crate) fn takes_over(&self) -> bool {
        !self.fenced.is_empty()
    }

    /// A blade no configuration names refused our read after a takeover: its
    /// list is read, and it is forced only if it names just the fenced old
    /// active (then it is ours as the old active's spare); otherwise forgotten.
    pub(crate) fn adopt_found(&mut self, blade: BladeId) {
        if !self.fenced.is_empty() && !self.blades.contains_key(&blade) {
            self.blades.insert(blade, Claim::Unread);
            self.found.insert(blade);
        }
    }

    /// Stops holding every blade: the ones not lost are returned (to be
    /// released); no more Sets go out.
    pub(crate) fn release_all(&mut self) -> Vec<BladeId> {
        self.next_reassert = None;
        let blades = std::mem::take(&mut self.blades);
        blades
            .into_iter()
            .filter(|(_, c)| !matches!(c, Claim::Lost { .. }))
            .map(|(b, _)| b)
            .collect()
    }

    /// A member I/O to `blade` was refused for a reservation: lost (true the first
    /// time).
    pub(crate) fn io_refused(&mut self, blade: BladeId) -> bool {
        self.refused += 1;
        self.lose(blade, Vec::new())
    }

    fn lose(&mut self, blade: BladeId, holders: Vec<Mac>) -> bool {
        match self.blades.get_mut(&blade) {
            Some(Claim::Lost { holders: h }) => {
                if h.is_empty() {
                    *h = holders;
                }
                false
            }
            Some(c) => {
                *c = Claim::Lost { holders };
                true
            }
            None => false,
        }
    }

    /// A reserve request of the core finished.
    pub(crate) fn completed(&mut self, c: &ReserveCompletion) -> Outcome {
        let Some(claim) = self.blades.get(&c.blade).cloned() else {
            return Outcome::None;
        };
        match (&c.result, c.cmd) {
            // A blade first seen after our takeover: forced if only the fenced
            // old active is on its list and nobody took over from us since.
            (Ok(list), ReserveCmd::Read) if claim == Claim::Reading => {
                let stale = list
                    .iter()
                    .all(|m| self.fenced.contains(m) || self.macs.contains(m));
                let ours = !self
                    .blades
                    .values()
                    .any(|c| matches!(c, Claim::Lost { .. }));
                let found = self.found.remove(&c.blade);
                let next = if stale && ours {
                    Claim::Force
                } else if found {
                    self.blades.remove(&c.blade);
                    return Outcome::None;
                } else {
                    Claim::Pending
                };
                self.blades.insert(c.blade, next);
                Outcome::Read
            }
            // A Read after a refused I/O: who took the blade.
            (Ok(list), ReserveCmd::Read) => {
                if matches!(claim, Claim::Lost { .. }) {
                    self.lose(c.blade, list.clone());
                }
                Outcome::None
            }
            (Ok(_), _) => match claim {
                Claim::Asserting { rejoin, .. } => {
                    self.blades.insert(c.blade, Claim::Held);
                    if rejoin {
                        Outcome::Rejoin(c.blade)
                    } else {
                        Outcome::None
                    }
                }
                _ => Outcome::None,
            },
            (Err(ReserveError::Held(holders)), _) => {
                self.refused += 1;
                if self.lose(c.blade, holders.clone()) {
                    Outcome::Lost(c.blade, holders.clone())
                } else {
                    Outcome::None
                }
            }
            // Down (the blade-down path handles its members; `returned` re-asserts)
            // or an odd error: try again at the next period.
            (Err(_), _) => {
                self.not_sent(c.blade);
                Outcome::None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Mac = Mac([2, 0, 0, 0, 0, 0xa]);
    const A2: Mac = Mac([2, 0, 0, 0, 0, 0xa2]);
    const B: Mac = Mac([2, 0, 0, 0, 0, 0xb]);

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("e0.{i}")).collect()
    }

    #[test]
    fn holders_are_told_apart_from_us() {
        assert_eq!(holder(&[], &[A]), Holder::Free);
        assert_eq!(holder(&[A], &[A, A2]), Holder::Us);
        assert_eq!(holder(&[A, B], &[A]), Holder::Other(vec![A, B]));
    }

    #[test]
    fn a_plain_start_sets_free_and_own_blades_and_refuses_held_ones() {
        let ours = [A, A2];
        assert_eq!(
            plan_claim(ClaimMode::Plain, &names(2), &[vec![], vec![A]], &ours),
            Ok(vec![ReserveCmd::Set, ReserveCmd::Set])
        );
        let held = plan_claim(
            ClaimMode::Plain,
            &names(3),
            &[vec![], vec![B], vec![A, B]],
            &ours,
        );
        assert_eq!(
            held,
            Err(vec![
                format!("e0.1 reserved by {B}"),
                format!("e0.2 reserved by {A}, {B}")
            ])
        );
    }

    #[test]
    fn a_takeover_force_sets_everything() {
        assert_eq!(
            plan_claim(ClaimMode::Takeover, &names(2), &[], &[A]),
            Ok(vec![ReserveCmd::ForceSet; 2])
        );
    }

    fn done(
        blade: u32,
        cmd: ReserveCmd,
        result: Result<Vec<Mac>, ReserveError>,
    ) -> ReserveCompletion {
        ReserveCompletion {
            user: 0,
            blade: BladeId(blade),
            cmd,
            result,
        }
    }

    fn set(blade: u32) -> (BladeId, ReserveCmd) {
        (BladeId(blade), ReserveCmd::Set)
    }

    #[test]
    fn held_blades_are_set_again_every_period_and_a_refusal_loses_them_for_good() {
        let t0 = Instant::now();
        let mut o = Ownership::new(vec![A], [BladeId(0), BladeId(1)], t0);
        assert!(o.due(t0).is_empty(), "not before the period");
        let t1 = t0 + REASSERT_EVERY;
        assert_eq!(o.due(t1), vec![set(0), set(1)]);
        assert!(o.due(t1).is_empty(), "once per period");
        assert_eq!(
            o.completed(&done(0, ReserveCmd::Set, Ok(vec![A]))),
            Outcome::None
        );
        assert_eq!(o.claim(BladeId(0)), Some(&Claim::Held));
        let lost = o.completed(&done(1, ReserveCmd::Set, Err(ReserveError::Held(vec![B]))));
        assert_eq!(lost, Outcome::Lost(BladeId(1), vec![B]));
        assert_eq!(o.refused(), 1);
        // Lost is final: no more Sets, a return does not re-assert.
        assert!(!o.returned(BladeId(1)));
        assert_eq!(o.due(t1 + REASSERT_EVERY), vec![set(0)]);
        assert!(o.is_lost(BladeId(1)));
    }

    #[test]
    fn a_returning_blade_rejoins_only_after_its_set_answers() {
        let t0 = Instant::now();
        let mut o = Ownership::new(vec![A], [BladeId(0)], t0);
        assert!(o.returned(BladeId(0)));
        assert!(!o.returned(BladeId(7)), "not ours");
        assert_eq!(o.due(t0), vec![set(0)]);
        assert_eq!(
            o.claim(BladeId(0)),
            Some(&Claim::Asserting {
                rejoin: true,
                force: false
            })
        );
        // The blade went down again before answering: it waits for the next return.
        o.completed(&done(0, ReserveCmd::Set, Err(ReserveError::BladeDown)));
        assert_eq!(o.claim(BladeId(0)), Some(&Claim::Pending));
        assert_eq!(o.due(t0), vec![set(0)]);
        let r = o.completed(&done(0, ReserveCmd::Set, Ok(vec![A])));
        assert_eq!(r, Outcome::Rejoin(BladeId(0)));
        assert_eq!(o.claim(BladeId(0)), Some(&Claim::Held));
    }

    #[test]
    fn a_refused_io_loses_the_blade_and_a_read_names_the_holder() {
        let mut o = Ownership::new(vec![A], [BladeId(0)], Instant::now());
        assert!(o.io_refused(BladeId(0)));
        assert!(!o.io_refused(BladeId(0)), "reported once");
        assert_eq!(o.refused(), 2);
        o.completed(&done(0, ReserveCmd::Read, Ok(vec![B])));
        assert_eq!(o.claim(BladeId(0)), Some(&Claim::Lost { holders: vec![B] }));
    }

    /// The simulator's seed `--layout concat --seed 11 --ops 20000 --takeover`: a
    /// blade away while B took over still named A when it came back; B's Set was
    /// refused and the blade stayed out of its array for good.
    #[test]
    fn after_a_takeover_a_blade_seen_later_is_forced_only_off_the_fenced_active() {
        const C: Mac = Mac([2, 0, 0, 0, 0, 0xc]);
        let t0 = Instant::now();
        let read = |b| (BladeId(b), ReserveCmd::Read);
        let mut o = Ownership::new(vec![B], [BladeId(0)], t0).fencing(&[vec![A]]);
        o.adopt(BladeId(1));
        assert_eq!(o.due(t0), vec![read(1)]);
        assert_eq!(
            o.completed(&done(1, ReserveCmd::Read, Ok(vec![A]))),
            Outcome::Read
        );
        assert_eq!(o.due(t0), vec![(BladeId(1), ReserveCmd::ForceSet)]);
        let r = o.completed(&done(1, ReserveCmd::ForceSet, Ok(vec![B])));
        assert_eq!(r, Outcome::Rejoin(BladeId(1)));
        // Down before its list was read: read again when it returns.
        o.adopt(BladeId(2));
        assert_eq!(o.due(t0), vec![read(2)]);
        o.completed(&done(2, ReserveCmd::Read, Err(ReserveError::BladeDown)));
        assert_eq!(o.claim(BladeId(2)), Some(&Claim::Unread));
        // A third station's list is not forced: Set, refused, lost.
        assert_eq!(o.due(t0), vec![read(2)]);
        o.completed(&done(2, ReserveCmd::Read, Ok(vec![C])));
        assert_eq!(o.due(t0), vec![set(2)]);
        let r = o.completed(&done(2, ReserveCmd::Set, Err(ReserveError::Held(vec![C]))));
        assert_eq!(r, Outcome::Lost(BladeId(2), vec![C]));
        // Once a blade was lost (someone took over from us) nothing is forced.
        o.adopt(BladeId(3));
        assert_eq!(o.due(t0), vec![read(3)]);
        o.completed(&done(3, ReserveCmd::Read, Ok(vec![A])));
        assert_eq!(o.due(t0), vec![set(3)]);
    }

    #[test]
    fn a_plain_start_sets_a_blade_seen_later_without_reading_it() {
        let t0 = Instant::now();
        let mut o = Ownership::new(vec![A], [BladeId(0)], t0).fencing(&[]);
        o.adopt(BladeId(1));
        assert_eq!(o.due(t0), vec![set(1)]);
    }
}
