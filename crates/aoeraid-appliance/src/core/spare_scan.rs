//! Spares that outlive the process that added them. `aoeraid spare-add` writes a
//! label on the blade (`spare_label.rs`); `aoeraid add` of a spare has the array
//! write its superblock (role spare). Neither blade need be in the configuration,
//! so at start, and whenever a blade no configuration names answers, the core reads
//! its superblock area (a read, never a write, and never a Set first):
//!
//! * our spare label naming one of our spare groups: the blade is claimed (Set;
//!   after a takeover, forced only off the fenced old active, `ownership.rs`)
//!   and then joins the group (status: origin `label`);
//! * the superblock of one of our running arrays, role spare, of a member the
//!   array does not know: claimed, then given back to that array as its spare;
//! * the superblock of one of our arrays' members that is out: claimed, then
//!   judged and re-added like any returning blade (`rejoin.rs`);
//! * anything else (blank, foreign, another appliance's): left alone, unwritten.
//!   A blade another station holds refuses the read; that is no loss of ours.
//!
//! The labels themselves: written after `spare-add`, zeroed after
//! `spare-remove` and after `remove` of an array's spare, so a removed spare is
//! not claimed next start. While such a write is in flight the blade is not
//! handed to an array (its superblock write could land first and be overwritten)
//! and commands naming it are refused.

use super::members::{submit_to_blade, Location, MemberResult};
use super::spare_label::{wiped, SpareLabel};
use super::spares::{Spare, SpareOrigin};
use super::{Core, Notice};
use crate::config::MemberAddr;
use aoe_initiator::{BladeId, BladeState};
use raid_engine::superblock::{Superblock, ROLE_SPARE, SB_OFFSET, SB_SECTORS};
use raid_engine::{MemberIo, MemberOp};

/// What the core has in flight about spare labels.
#[derive(Default)]
pub(super) struct SpareLabels {
    /// Label writes and wipes: (token, address, what it was).
    writes: Vec<(u64, MemberAddr, &'static str)>,
    /// Superblock-area reads of blades no configuration names.
    scans: Vec<(u64, BladeId, MemberAddr)>,
    /// Blades found ours, waiting for their claim (then scanned again).
    claiming: Vec<BladeId>,
    /// The blades that answered before the core started were scanned.
    started: bool,
}

impl SpareLabels {
    pub(super) fn owns(&self, token: u64) -> bool {
        self.writes.iter().any(|w| w.0 == token) || self.scans.iter().any(|s| s.0 == token)
    }

    /// Blades are being read, or found ours and being claimed: spares wait, so a
    /// member found this way gets its slot back rather than a spare taking it.
    pub(super) fn settling(&mut self, up: impl Fn(BladeId) -> bool) -> bool {
        self.claiming.retain(|&b| up(b));
        !self.scans.is_empty() || !self.claiming.is_empty()
    }

    /// A label write or wipe to `addr` is in flight.
    pub(super) fn busy(&self, addr: &MemberAddr) -> bool {
        self.writes.iter().any(|w| &w.1 == addr)
    }
}

/// What a scanned blade's superblock area holds, from our side.
enum Found {
    /// Our label, for spare group `group`.
    Label(SpareLabel),
    /// A spare superblock of array (volume, array), member UUID unknown to it.
    ArraySpare(usize, usize, [u8; 16]),
    /// A member superblock of one of our arrays: judged as a returning blade.
    Member,
    Nothing,
}

impl Core {
    /// Scans, once, every blade that answered before the core started.
    pub(super) fn scan_at_start(&mut self) {
        if std::mem::replace(&mut self.labels.started, true) {
            return;
        }
        self.warn_unlisted();
        let up: Vec<BladeId> = self.pool.as_ref().map_or_else(Vec::new, |p| {
            p.blade_ids()
                .filter(|&b| p.blade_state(b) == Some(BladeState::Up))
                .collect()
        });
        for b in up {
            self.scan(b);
        }
    }

    /// Reads the superblock area of `blade` if nothing we know uses it.
    pub(super) fn scan(&mut self, blade: BladeId) {
        let Some(addr) = self.blade_addr(blade) else {
            return;
        };
        let loc = Location::Blade(blade);
        let known = self.config.members().contains(&addr)
            || self.spares.holds(&addr)
            || self.owners.is_lost(blade)
            || self.labels.scans.iter().any(|s| s.1 == blade)
            || self
                .vols
                .iter()
                .any(|v| v.arrays.iter().any(|a| a.known().any(|m| m.2 == loc)));
        if known {
            return;
        }
        if let Ok(token) = self.read_superblock_area(blade) {
            self.labels.scans.push((token, blade, addr));
            self.labels.claiming.retain(|&b| b != blade);
        }
    }

    /// Writes `label` (None: zeros) over the superblock area of blade spare `addr`.
    pub(super) fn write_label(
        &mut self,
        addr: &MemberAddr,
        loc: Location,
        label: Option<&SpareLabel>,
    ) {
        let Location::Blade(blade) = loc else {
            return; // a file spare is found through the configuration only
        };
        let (data, what) = match label {
            Some(l) => (l.encode(), "spare label"),
            None => (wiped(), "wipe of the spare label"),
        };
        let token = self.rejoin.next_probe_token();
        let io = MemberIo {
            id: 0,
            member: 0,
            op: MemberOp::Write,
            offset: SB_OFFSET,
            sectors: SB_SECTORS,
            data,
        };
        self.labels.writes.push((token, addr.clone(), what));
        let r = match self.pool.as_mut() {
            Some(pool) if !self.owners.is_lost(blade) => {
                submit_to_blade(pool, self.now, blade, io, token)
            }
            _ => Err(raid_engine::MemberError::Gone),
        };
        if let Err(e) = r {
            self.refused.push_back((token, Err(e)));
        }
    }

    /// A label write, wipe or scan finished (`reserved`: refused because another
    /// station holds the blade).
    pub(super) fn label_io_done(&mut self, token: u64, r: MemberResult, reserved: bool) {
        if let Some(i) = self.labels.writes.iter().position(|w| w.0 == token) {
            let (_, addr, what) = self.labels.writes.remove(i);
            if let Err(e) = r {
                self.log(
                    4,
                    format!(
                        "{addr}: {what} not written ({e:?}): a restart may not find it as \
                         it is now"
                    ),
                );
            }
            self.dirty = true;
            return;
        }
        let Some(i) = self.labels.scans.iter().position(|s| s.0 == token) else {
            return;
        };
        let (_, blade, addr) = self.labels.scans.remove(i);
        if reserved {
            // After a takeover, the old active's run-time spares are held by it:
            // their lists are read, and forced only if they name just the fenced MACs.
            if self.owners.takes_over() && self.owners.claim(blade).is_none() {
                self.owners.adopt_found(blade);
                let now = self.now;
                self.reassert(now);
            }
            return;
        }
        let Ok(bytes) = r else { return };
        let found = self.found(&bytes);
        if matches!(found, Found::Nothing) {
            return;
        }
        let loc = Location::Blade(blade);
        if !self.owners.writable(blade) {
            // Claimed first; once its Set is answered it is scanned again
            // (`blade_returned` → `blade_arrived`).
            if self.owners.claim(blade).is_none() && self.claim_opened(loc).is_ok() {
                self.labels.claiming.push(blade);
            }
            return;
        }
        self.members.learn(&addr, loc);
        match found {
            Found::Label(l) => {
                let group = l.group.clone();
                self.spares.add(
                    &group,
                    Spare {
                        addr: addr.clone(),
                        loc,
                        uuid: l.uuid,
                        origin: SpareOrigin::Label,
                    },
                );
                self.log(
                    5,
                    format!("{addr}: found by its spare label; a spare of group {group}"),
                );
            }
            Found::ArraySpare(v, a, uuid) => {
                let name = self.vols[v].arrays[a].name.clone();
                match self.give_spare(v, a, &addr, loc, uuid) {
                    Ok(()) => {
                        self.log(
                            5,
                            format!(
                                "array {name}: {addr} found by its superblock; its spare again"
                            ),
                        );
                    }
                    Err(e) => self.log(
                        4,
                        format!("array {name}: spare {addr} found, not taken: {e}"),
                    ),
                }
            }
            Found::Member => self.probe(blade, addr),
            Found::Nothing => {}
        }
        self.notice(Notice::StatusChanged);
        self.dirty = true;
    }

    fn found(&self, bytes: &[u8]) -> Found {
        if let Some(l) = SpareLabel::decode(bytes) {
            return if self.spares.exists(&l.group) {
                Found::Label(l)
            } else {
                Found::Nothing
            };
        }
        let Ok(sb) = Superblock::decode(bytes) else {
            return Found::Nothing;
        };
        for (v, vol) in self.vols.iter().enumerate() {
            for a in 0..vol.arrays.len() {
                let st = vol.concat.arrays()[a].status();
                if st.array_uuid != sb.array_uuid {
                    continue;
                }
                let known = st.members.iter().any(|m| m.uuid == sb.member_uuid);
                return match (sb.role == ROLE_SPARE, known) {
                    (true, false) => Found::ArraySpare(v, a, sb.member_uuid),
                    (false, true) => Found::Member,
                    _ => Found::Nothing,
                };
            }
        }
        Found::Nothing
    }
}
