//! Operating policy: what a blade going down or coming back does to the members
//! it holds, which degraded array gets which spare, and how engine events reach
//! the operator.

use super::members::Location;
use super::spares::Spare;
use super::{Core, Notice};
use crate::config::MemberAddr;
use crate::events::{self, Event, EventKind};
use aoe_initiator::{BladeId, BladeState, Event as PoolEvent};
use raid_engine::MemberState;
use raid_engine::{ControlError, MemberSpec};

impl Core {
    /// Every (volume, array, member) that lives on `blade`.
    fn on_blade(&self, blade: BladeId) -> Vec<(usize, usize, usize)> {
        let mut hit = Vec::new();
        for (v, vol) in self.vols.iter().enumerate() {
            for (a, arr) in vol.arrays.iter().enumerate() {
                for (m, _, loc) in arr.known() {
                    if loc == Location::Blade(blade) {
                        hit.push((v, a, m));
                    }
                }
            }
        }
        hit
    }

    pub(super) fn pool_event(&mut self, e: PoolEvent) {
        match e {
            PoolEvent::BladeDown { blade, failed_ios } => {
                if let Some(addr) = self.blade_addr(blade) {
                    self.rejoin.forget(&addr);
                }
                for (v, a, m) in self.on_blade(blade) {
                    self.blade_down(v, a, m, failed_ios);
                }
            }
            PoolEvent::BladeUp { blade, .. } => {
                if self.claims(blade) && self.owners.returned(blade) {
                    // A restarted vblade forgot its reserve list: the members on it
                    // wait for our Set to be answered (`reservations.rs`).
                    let now = self.now;
                    self.reassert(now);
                } else if !self.owners.is_lost(blade) {
                    self.blade_returned(blade);
                }
            }
            PoolEvent::Notice { message, .. } => self.log(5, format!("back end: {message}")),
            _ => {}
        }
    }

    /// `blade` answers again (and is held again if the appliance holds its
    /// blades): the members on it that are out have their superblock judged
    /// (`rejoin.rs`); a configured blade no array knows yet (absent at the start)
    /// too.
    pub(super) fn blade_returned(&mut self, blade: BladeId) {
        let hit = self.on_blade(blade);
        // An operator `add` put the blade back under a new member already.
        let in_use = hit.iter().any(|&(v, a, m)| {
            matches!(
                self.vols[v].member_state(a, m),
                Some(MemberState::Active | MemberState::Rebuilding | MemberState::Spare)
            )
        });
        if hit.is_empty() {
            self.blade_arrived(blade);
        } else if !in_use {
            for (v, a, m) in hit {
                self.blade_up(v, a, m, blade);
            }
        }
    }

    /// A blade fell silent past `dead_after`: its member is failed (a spare or a
    /// member already out stays as it is).
    fn blade_down(&mut self, v: usize, a: usize, m: usize, failed_ios: usize) {
        let arr = &self.vols[v].arrays[a];
        let ev = Event::new(EventKind::DeviceDisappeared, arr.name.clone())
            .member(arr.member_name(m))
            .detail(format!(
                "blade silent past dead_after; {failed_ios} I/Os failed"
            ));
        self.notice(Notice::Event(ev));
        if matches!(
            self.vols[v].member_state(a, m),
            Some(MemberState::Active | MemberState::Rebuilding | MemberState::Spare)
        ) {
            let _ = self.vols[v].concat.array_mut(a).fail_member(m);
        }
    }

    /// A blade answers again: if its member is out, its superblock is read and
    /// judged before anything is written (`rejoin.rs`).
    fn blade_up(&mut self, v: usize, a: usize, m: usize, blade: BladeId) {
        if !matches!(
            self.vols[v].member_state(a, m),
            Some(MemberState::Faulty | MemberState::Missing)
        ) {
            return;
        }
        let arr = &self.vols[v].arrays[a];
        let (name, addr) = (arr.name.clone(), arr.member_name(m));
        self.notice(Notice::Event(
            Event::new(EventKind::DeviceReappeared, name).member(addr),
        ));
        if self.vols[v].concat.arrays()[a].status().state == raid_engine::ArrayState::Failed {
            // Not one member back into a running array: the array itself, once
            // the members it failed with are all back (`regather.rs`).
            self.want_regather(v, a);
            return;
        }
        if let Some((addr, _)) = self.vols[v].arrays[a].member(m).cloned() {
            self.probe(blade, addr);
        }
    }

    /// Degraded arrays without a spare of their own take one from their group, in
    /// array order; a group's spares go out in the order they joined. Returns
    /// whether a spare moved.
    pub(super) fn give_spares(&mut self) -> bool {
        let mut moved = false;
        let pool = self.pool.as_ref();
        let lost = &self.owners;
        let up =
            |b| !lost.is_lost(b) && pool.and_then(|p| p.blade_state(b)) == Some(BladeState::Up);
        if self.labels.settling(up) {
            return false;
        }
        for v in 0..self.vols.len() {
            for a in 0..self.vols[v].arrays.len() {
                let Some(group) = self.vols[v].arrays[a].spare_group.as_deref() else {
                    continue;
                };
                // A stopped volume (its blades taken) writes nowhere, spares included.
                if self.vols[v].reservation_lost || !self.vols[v].concat.arrays()[a].needs_spare() {
                    continue;
                }
                // Not a spare whose label is being written (the array's superblock
                // could land first and be overwritten), nor one whose blade does
                // not answer now (it would fail at once and the array would wait
                // for it instead of the next spare).
                let (labels, pool) = (&self.labels, self.pool.as_ref());
                let usable = |s: &Spare| {
                    !labels.busy(&s.addr)
                        && match s.loc {
                            Location::Blade(b) => {
                                pool.and_then(|p| p.blade_state(b)) == Some(BladeState::Up)
                            }
                            Location::File(_) => true,
                        }
                };
                let Some(spare) = self.spares.take(group, usable) else {
                    continue;
                };
                let group = group.to_string();
                let name = self.vols[v].arrays[a].name.clone();
                match self.give_spare(v, a, &spare.addr, spare.loc, spare.uuid) {
                    Ok(()) => {
                        moved = true;
                        self.notice(Notice::Event(
                            Event::new(EventKind::MoveSpare, name)
                                .member(spare.addr.to_string())
                                .detail(format!("taken from spare group {group}")),
                        ));
                    }
                    Err(e) => self.log(
                        3,
                        format!("array {name}: spare {} refused: {e}", spare.addr),
                    ),
                }
            }
        }
        moved
    }

    /// Gives `addr` (at `loc`) to array (v, a) as a spare carrying member UUID
    /// `uuid`: the engine takes it (rebuilding onto it if degraded) and the array
    /// maps its new slot to the blade.
    pub(super) fn give_spare(
        &mut self,
        v: usize,
        a: usize,
        addr: &MemberAddr,
        loc: Location,
        uuid: [u8; 16],
    ) -> Result<(), ControlError> {
        let spec = MemberSpec {
            uuid,
            size_sectors: self.members.sectors(loc, self.pool.as_ref()),
            shelf: addr.shelf().map(u32::from),
        };
        let idx = self.vols[v].concat.array_mut(a).add_spare(spec)?;
        self.vols[v].arrays[a].set_member(idx, addr, loc);
        Ok(())
    }

    pub(super) fn engine_event(&mut self, v: usize, a: usize, ev: raid_engine::Event) {
        self.track_failure(v, a, &ev);
        let arr = &self.vols[v].arrays[a];
        let member = |i: usize| arr.member_name(i);
        let mapped = events::engine::from_engine(&arr.name, &ev, &member);
        let refused = match &ev {
            raid_engine::Event::MemberRefused { member: m, reason } => Some(format!(
                "array {}: {} not taken back: {reason}",
                arr.name,
                member(*m)
            )),
            _ => None,
        };
        if let Some(line) = refused {
            self.log(4, line);
        }
        match mapped {
            // Failures that follow a lost reservation are this appliance giving the
            // volume up (its I/O refused on purpose), not the members failing: the
            // ReservationLost event said what happened.
            Some(e) if self.vols[v].reservation_lost => {
                self.log(6, format!("after the reservation was lost: {e:?}"));
            }
            Some(e) => self.notice(Notice::Event(e)),
            None => {}
        }
        // Every state change shows at once in `status`, not a second later.
        self.notice(Notice::StatusChanged);
    }
}
