//! The HA pair (docs/ha.md): two appliances, A (0) and B (1), on the same blades
//! and segments, each with its own MACs, holding the blades by reservation. Faults
//! of the pair:
//!
//! * **takeover after a crash**: the active dies; after a detection delay the
//!   other starts with Force Set (`aoeraid run --takeover`), assembles from the
//!   members, exports the same shelf.slot from its own MAC and announces it;
//! * **split brain**: the other takes over while the active still runs (a cluster
//!   partition, a monitor that misjudged it). The old active, left running, must
//!   find itself fenced at the blades (its next Set or I/O refused), stop its
//!   volume and fall silent; it is checked until it has nothing in flight;
//! * **plain start of the loser**: `aoeraid run` of the appliance that lost the
//!   blades must refuse to start;
//! * a clean stop may be followed by the other appliance starting plainly (a
//!   planned switchover: the stop released the blades).
//!
//! Every later takeover goes back the other way (failback). Checked: no blade
//! accepts a write from an appliance other than the one that holds it; the old
//! active answers no client once its volume stopped and stops within 30 s; every
//! read still matches the model (acknowledged writes survive the takeover); the
//! clients move to the new MAC as the Linux driver does (`client.rs`).

use super::{boot, Later, World};
use crate::config::MemberAddr;
use crate::control::status::Reservation;
use crate::core::{ClaimMode, Core};
use aoe_wire::Header;

/// The longest an old active fenced at the blades may go on serving.
const FENCED_WITHIN_NS: u64 = 30_000_000_000;

/// The old active after a split-brain takeover, still running.
pub(in crate::sim) struct Zombie {
    pub(in crate::sim) core: Core,
    pub(in crate::sim) who: usize,
    /// Its exported volume stopped (reservation lost): it must answer nothing.
    silent: bool,
    /// When it was taken over.
    since: u64,
    /// ATA replies it sent to clients, and how many of them before it stopped.
    pub(in crate::sim) replies: u64,
    replies_when_silent: u64,
}

/// `A` or `B`.
pub(super) fn name(who: usize) -> char {
    if who == 0 {
        'A'
    } else {
        'B'
    }
}

impl World {
    /// The core of appliance `k` of the pair, if it runs.
    pub(super) fn core_of(&mut self, k: usize) -> Option<&mut Core> {
        if self.who == k {
            self.core.as_mut()
        } else {
            self.zombie
                .as_mut()
                .filter(|z| z.who == k)
                .map(|z| &mut z.core)
        }
    }

    /// Appliance `k` runs and serves its export: a request reaching it may be
    /// carried out.
    pub(super) fn serving(&self, k: usize) -> bool {
        if self.who == k {
            self.core.is_some()
        } else {
            self.zombie
                .as_ref()
                .is_some_and(|z| z.who == k && !z.silent)
        }
    }

    /// Blade `i` took frame `f`: a write that landed (its write count moved from
    /// `before`) must come from the appliance holding the blade.
    pub(super) fn check_holder(&mut self, i: usize, f: &[u8], before: u64) -> Result<(), String> {
        let Some(owner) = self.owner else {
            return Ok(());
        };
        if self.blades[i].disk.writes == before {
            return Ok(());
        }
        let src = Header::parse(f).map(|h| h.src).ok();
        if src != Some(owner) {
            self.stats.non_holder_writes += 1;
            return Err(format!(
                "blade {} accepted a write from {src:?}; appliance {} ({owner}) holds it",
                self.blades[i].addr,
                name(self.who)
            ));
        }
        Ok(())
    }

    /// The old active: stops once fenced, answers nothing after, goes away when
    /// it has nothing in flight (its cluster stops it).
    pub(super) fn watch_zombie(&mut self) -> Result<(), String> {
        let Some(z) = self.zombie.as_mut() else {
            return Ok(());
        };
        let who = name(z.who);
        if z.silent {
            if z.replies > z.replies_when_silent {
                return Err(format!(
                    "old active {who} answered a client after its volume stopped"
                ));
            }
            if z.core.member_io_in_flight() == 0 {
                self.zombie = None;
                self.note(format!("old active {who} stopped by its cluster"));
            }
            return Ok(());
        }
        let stopped = z
            .core
            .volumes()
            .iter()
            .find(|v| v.name == boot::VOLUME)
            .is_some_and(|v| v.reservation_lost);
        if stopped {
            z.silent = true;
            z.replies_when_silent = z.replies;
            let (k, after) = (z.who, self.now - z.since);
            for c in &mut self.clients {
                c.appliance_lost(k);
            }
            self.stats.fenced_stops += 1;
            self.note(format!(
                "old active {who} fenced at the blades: volume stopped {}ms after the takeover",
                after / 1_000_000
            ));
        } else if self.now > z.since + FENCED_WITHIN_NS {
            return Err(format!(
                "old active {who} still serves {}s after the other took its blades",
                FENCED_WITHIN_NS / 1_000_000_000
            ));
        }
        Ok(())
    }

    /// The active appliance holds every blade it knows: only a takeover takes
    /// blades, and it makes the loser the old active, never the active. A blade
    /// the active lost would stay out of its array for good.
    pub(super) fn check_active_holds(&self) -> Result<(), String> {
        let Some(core) = self.core.as_ref().filter(|_| self.pair) else {
            return Ok(());
        };
        let lost: Vec<String> = core
            .status(self.at())
            .blades
            .into_iter()
            .filter(|b| b.reservation == Some(Reservation::Lost))
            .map(|b| format!("{} (held by {:?})", b.blade, b.reserved_by))
            .collect();
        if lost.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "active appliance {} lost blades nobody took from it: {}",
                name(self.who),
                lost.join(", ")
            ))
        }
    }

    /// The fault: the standby takes the blades over, after the active crashed or
    /// while it still runs (split brain).
    pub(super) fn takeover(&mut self) -> Result<(), String> {
        if self.zombie.is_some() || self.write_hole_risk() {
            return Ok(());
        }
        self.stats.takeovers += 1;
        if self.rng.chance(0.5) {
            return self.crash(Some(ClaimMode::Takeover));
        }
        self.stats.split_brains += 1;
        let old = self.who;
        self.note(format!(
            "split brain: {} takes over while {} still runs",
            name(1 - old),
            name(old)
        ));
        let core = self.core.take().expect("a fault needs the appliance up");
        self.zombie = Some(Zombie {
            core,
            who: old,
            silent: false,
            since: self.now,
            replies: 0,
            replies_when_silent: 0,
        });
        self.restart(None, Some(ClaimMode::Takeover))
    }

    /// After a takeover: now and then the appliance that lost the blades is
    /// started plainly a little later; it must refuse.
    pub(super) fn maybe_plain_start(&mut self) {
        if self.rng.chance(0.5) {
            let at = self.now + 500_000_000 + self.rng.below(2_000_000_000);
            self.later.push((at, Later::PlainStart(1 - self.who)));
        }
    }

    /// `aoeraid run` (no `--takeover`) of appliance `k`, which lost the blades:
    /// it reads the reserve lists and must refuse, taking nothing. It runs beside
    /// the world (its frames go to the blades directly, in no time).
    pub(super) fn plain_start(&mut self, k: usize) -> Result<(), String> {
        if k == self.who {
            return Ok(());
        }
        let (mut pool, now) =
            boot::discover(&self.config, &mut self.blades, k, self.base, self.now);
        let all: Vec<MemberAddr> = self.blades.iter().map(|b| b.addr.clone()).collect();
        let r = boot::claim(
            &all,
            &mut pool,
            &mut self.blades,
            ClaimMode::Plain,
            self.base,
            now,
        );
        match r {
            Ok(_) => Err(format!(
                "a plain start of {} took the blades {} holds",
                name(k),
                name(self.who)
            )),
            Err(held) => {
                self.stats.plain_starts_refused += 1;
                self.note(format!(
                    "plain start of {} refused: {}",
                    name(k),
                    held.join("; ")
                ));
                Ok(())
            }
        }
    }
}
