//! The core's side of blade ownership ([`super::ownership`]): Sets sent through
//! the pool, their answers, and what losing a blade does — every volume with a
//! member on it stops at once: no member I/O is sent any more (reads included:
//! the blade refuses them too), its export falls silent so clients move to the
//! appliance that took over, its spares are not handed out, and the operator gets
//! a `ReservationLost` event. Nothing is retried and nothing is forced back.

use super::members::Location;
use super::ownership::{held_by, Claim, Outcome};
use super::{Core, Notice};
use crate::config::MemberAddr;
use crate::events::{Event, EventKind};
use aoe_initiator::{BladeId, ReserveCmd, ReserveCompletion, ReserveRequest};
use aoe_wire::Mac;
use std::time::Instant;

impl Core {
    /// Sends the requests that are due (period up, a blade came back, a blade
    /// first seen after a takeover).
    pub(super) fn reassert(&mut self, now: Instant) {
        let Some(pool) = self.pool.as_mut() else {
            return;
        };
        for (blade, cmd) in self.owners.due(now) {
            let macs = match cmd {
                ReserveCmd::Read => Vec::new(),
                _ => self.owners.macs().to_vec(),
            };
            let req = ReserveRequest {
                blade,
                cmd,
                macs,
                user: 0,
            };
            if pool.reserve(now, req).is_err() {
                self.owners.not_sent(blade);
            }
        }
    }

    /// A member I/O to `blade` came back refused for a reservation.
    pub(super) fn io_refused(&mut self, blade: BladeId) {
        if !self.owners.io_refused(blade) {
            return;
        }
        // Ask who holds it, for the status; the blade is lost whatever the answer.
        if let Some(pool) = self.pool.as_mut() {
            let read = ReserveRequest {
                blade,
                cmd: ReserveCmd::Read,
                macs: Vec::new(),
                user: 0,
            };
            let _ = pool.reserve(self.now, read);
        }
        self.lose_blade(
            blade,
            &[],
            "a member I/O was refused (AoE error 6, target reserved)",
        );
    }

    pub(super) fn reserve_done(&mut self, c: ReserveCompletion) {
        if self.claim_answered(&c) {
            return;
        }
        match self.owners.completed(&c) {
            Outcome::None => {}
            Outcome::Read => {
                let now = self.now;
                self.reassert(now);
            }
            Outcome::Rejoin(blade) => self.blade_returned(blade),
            Outcome::Lost(blade, holders) => {
                self.lose_blade(blade, &holders, "our Set was refused")
            }
        }
    }

    /// Another appliance holds `blade`: stop every volume with a member on it.
    fn lose_blade(&mut self, blade: BladeId, holders: &[Mac], how: &str) {
        let name = self.blade_name(blade);
        let who = if holders.is_empty() {
            format!("{name} is reserved by another station")
        } else {
            held_by(&name, holders)
        };
        let loc = Location::Blade(blade);
        self.spares.drop_location(loc);
        let hit: Vec<usize> = (0..self.vols.len())
            .filter(|&v| {
                self.vols[v]
                    .arrays
                    .iter()
                    .any(|a| a.known().any(|m| m.2 == loc))
            })
            .collect();
        for &v in &hit {
            if self.vols[v].reservation_lost {
                continue;
            }
            self.vols[v].reservation_lost = true;
            if let Some(x) = self.exports.as_mut() {
                x.silence(v);
            }
            let vol = &self.vols[v];
            let ev = Event::new(EventKind::ReservationLost, vol.name.clone())
                .member(name.clone())
                .detail(format!(
                    "{who} ({how}): another appliance owns the blades now; volume {} \
                     stopped here (no member I/O, export silent) and is never taken back \
                     by this process",
                    vol.name
                ));
            self.notice(Notice::Event(ev));
        }
        if hit.is_empty() {
            self.log(3, format!("{who} ({how}); no volume uses it"));
        }
        self.notice(Notice::StatusChanged);
    }

    /// Does the appliance hold `blade` by reservation? A configured blade first
    /// seen after the start (absent then) is adopted: it gets its Set like a
    /// returning one. False when the appliance holds no reservations (no
    /// [`Core::hold_blades`]).
    pub(super) fn claims(&mut self, blade: BladeId) -> bool {
        if self.owners.macs().is_empty() {
            return false;
        }
        if self.owners.claim(blade).is_some() {
            return true;
        }
        let Some(b) = self.pool.as_ref().and_then(|p| p.blade_info(blade)) else {
            return false;
        };
        let configured = self.config.members().iter().any(
            |m| matches!(m, MemberAddr::Blade { shelf, slot } if (*shelf, *slot) == (b.shelf, b.slot)),
        );
        if configured {
            self.owners.adopt(blade);
        }
        configured
    }

    /// A blade an operator command (`add`, `spare-add`, a reload's new spare) is
    /// about to write is claimed first: its Set goes out ahead of the writes on
    /// each path (the pool sends a blade's control frames before its data), so if
    /// another appliance holds it, they are refused as well and the blade counts
    /// as lost. A blade already lost is refused here.
    pub(super) fn claim_opened(&mut self, loc: Location) -> Result<(), String> {
        let Location::Blade(blade) = loc else {
            return Ok(());
        };
        if self.owners.macs().is_empty() {
            return Ok(());
        }
        match self.owners.claim(blade) {
            Some(Claim::Lost { .. }) => {
                Err("another appliance holds this blade's reservation".into())
            }
            Some(_) => Ok(()),
            None => {
                self.owners.adopt(blade);
                let now = self.now;
                self.reassert(now);
                Ok(())
            }
        }
    }

    /// The end of a clean stop: every blade still held is released (its list
    /// emptied), so that the other appliance of a pair — or a tool on another host
    /// — may start plainly. Lost blades are not touched. Returns how many Sets went
    /// out; [`Core::reserves_in_flight`] says when they are answered.
    pub(crate) fn release_blades(&mut self) -> usize {
        let Some(pool) = self.pool.as_mut() else {
            return 0;
        };
        let mut sent = 0;
        for blade in self.owners.release_all() {
            let req = ReserveRequest {
                blade,
                cmd: ReserveCmd::Set,
                macs: Vec::new(),
                user: 0,
            };
            if pool.reserve(self.now, req).is_ok() {
                sent += 1;
            }
        }
        sent
    }

    /// Reserve/Release requests not answered yet.
    pub(crate) fn reserves_in_flight(&self) -> usize {
        self.pool.as_ref().map_or(0, |p| p.reserves_outstanding())
    }

    /// `eS.L` of a blade.
    pub(super) fn blade_name(&self, blade: BladeId) -> String {
        self.pool
            .as_ref()
            .and_then(|p| p.blade_info(blade))
            .map_or_else(
                || format!("blade {}", blade.0),
                |b| format!("e{}.{}", b.shelf, b.slot),
            )
    }
}
