//! Blades that come back by themselves. A configured blade that was not found at
//! start is asked for again every probe interval; a member's blade that answers
//! again after being declared dead is seen by the pool. Either way its superblock
//! is read before anything is written to it, and [`judge`] decides:
//!
//! * re-added (the engine resyncs the bitmap's dirty regions) when the superblock
//!   is of a running array, names a member that still holds its slot and is out
//!   (faulty or missing), says that slot, and its event count lies between the
//!   bitmap's last clear and the array's own count: every write it missed is then
//!   still marked in the bitmap (the bitmap never clears while a slot is out);
//! * refused, never written, and reported by name (event `MemberRefused`, the
//!   blade's `refused` in status, `aoeraid_blade_refused`) otherwise: no or a
//!   corrupt superblock, another array's, a member a spare replaced, a copy of a
//!   member that is present, a blade smaller than the data area, an event count
//!   older than the bitmap's last clear (it missed writes the bitmap no longer
//!   marks: `aoeraid re-add` rebuilds it whole) or newer than the array's (it was
//!   written elsewhere since it left).
//!
//! A refused blade is judged again when it next comes back (after it went down),
//! and forgotten when an operator command names it. The devices assembly left
//! out at start are kept here the same way (`Core::new`).

use super::members::{
    submit_to_blade, superblock_read, token, untoken, Location, MemberResult, PROBE_VOLUME,
};
use super::volumes::Volume;
use super::{Core, Notice};
use crate::config::MemberAddr;
use crate::events::{Event, EventKind};
use aoe_initiator::BladeId;
use raid_engine::superblock::{Superblock, ROLE_SPARE};
use raid_engine::MemberError;
use raid_engine::MemberState;
use std::time::Instant;

/// What the core remembers about returning blades.
#[derive(Default)]
pub(super) struct Rejoin {
    /// Superblock reads in flight: (token, blade, address).
    probes: Vec<(u64, BladeId, MemberAddr)>,
    next_token: u64,
    /// Blades refused since they last came back, with the reason.
    refused: Vec<(MemberAddr, String)>,
    /// When configured blades the pool has never heard of are asked for next.
    next_query: Option<Instant>,
}

impl Rejoin {
    /// A fresh token for a superblock read (a probe or a re-assembly's).
    pub(super) fn next_probe_token(&mut self) -> u64 {
        self.next_token = self.next_token.wrapping_add(1);
        token(PROBE_VOLUME, 0, self.next_token)
    }

    pub(super) fn is_probe(token: u64) -> bool {
        untoken(token).0 == PROBE_VOLUME
    }

    /// Why `addr` was refused, if it was.
    pub(super) fn refusal(&self, addr: &MemberAddr) -> Option<&str> {
        self.refused
            .iter()
            .find(|r| &r.0 == addr)
            .map(|r| r.1.as_str())
    }

    /// `addr` is refused, left untouched, for `why` (its last refusal).
    pub(super) fn refuse(&mut self, addr: MemberAddr, why: String) {
        self.forget(&addr);
        self.refused.push((addr, why));
    }

    /// Forgets the refusal of `addr` (it went down, or an operator named it).
    pub(super) fn forget(&mut self, addr: &MemberAddr) {
        self.refused.retain(|r| &r.0 != addr);
    }
}

/// What to do with a blade whose superblock was read.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Member `m` of array `a` of volume `v`: re-add it.
    ReAdd { v: usize, a: usize, m: usize },
    /// Leave it alone. `array`: the (volume, array) it claims, when that is a
    /// running one; `member`: the engine member it is, when it is one.
    Refuse {
        array: Option<(usize, usize)>,
        member: Option<usize>,
        reason: String,
    },
}

fn refuse(array: Option<(usize, usize)>, member: Option<usize>, reason: String) -> Verdict {
    Verdict::Refuse {
        array,
        member,
        reason,
    }
}

/// The rule of the module documentation, for a blade of `sectors` whose
/// superblock read gave `sb`, against the running arrays `vols`.
pub(super) fn judge(sb: &MemberResult, sectors: u64, vols: &[Volume]) -> Verdict {
    let sb = match sb {
        Err(e) => return refuse(None, None, format!("superblock unreadable ({e:?})")),
        Ok(bytes) => match Superblock::decode(bytes) {
            Ok(sb) => sb,
            Err(e) => return refuse(None, None, e.to_string()),
        },
    };
    let found = vols.iter().enumerate().find_map(|(v, vol)| {
        (0..vol.arrays.len())
            .find(|&a| vol.concat.arrays()[a].status().array_uuid == sb.array_uuid)
            .map(|a| (v, a))
    });
    let Some((v, a)) = found else {
        return refuse(
            None,
            None,
            format!(
                "superblock of another array `{}` ({})",
                sb.name,
                crate::control::engine::uuid_string(&sb.array_uuid)
            ),
        );
    };
    let at = Some((v, a));
    let engine = &vols[v].concat.arrays()[a];
    let st = engine.status();
    let Some(me) = st.members.iter().find(|m| m.uuid == sb.member_uuid) else {
        return refuse(
            at,
            None,
            "no longer a member of the array: a spare replaced it".into(),
        );
    };
    let m = me.index;
    if st.state == raid_engine::ArrayState::Failed {
        return refuse(at, Some(m), "the array has failed".into());
    }
    if !matches!(me.state, MemberState::Faulty | MemberState::Missing) {
        return refuse(
            at,
            None,
            format!(
                "a copy of member {} which is {:?} in the array",
                vols[v].arrays[a].member_name(m),
                me.state
            ),
        );
    }
    let Some(role) = me.role.filter(|_| vols[v].still_owns_slot(a, m)) else {
        return refuse(at, Some(m), "a spare replaced it".into());
    };
    if sb.role == ROLE_SPARE || sb.role as usize != role {
        return refuse(
            at,
            Some(m),
            format!(
                "its superblock says role {}, the array has it in slot {role}",
                if sb.role == ROLE_SPARE {
                    "spare".to_string()
                } else {
                    sb.role.to_string()
                }
            ),
        );
    }
    if sectors < sb.areas.data_offset + engine.geometry().member_used_sectors() {
        return refuse(
            at,
            Some(m),
            format!("{sectors} sectors, smaller than the array's data area"),
        );
    }
    let cleared = engine.bitmap_events_cleared();
    if sb.events < cleared {
        return refuse(
            at,
            Some(m),
            format!(
                "stale: its event count {} is older than the bitmap's last clear ({cleared}), \
                 so the bitmap no longer marks every write it missed (`aoeraid re-add` \
                 rebuilds it whole)",
                sb.events
            ),
        );
    }
    if sb.events > st.events {
        return refuse(
            at,
            Some(m),
            format!(
                "its event count {} is newer than the array's ({}): written elsewhere since \
                 it left",
                sb.events, st.events
            ),
        );
    }
    Verdict::ReAdd { v, a, m }
}

impl Core {
    /// Configured blades no array knows a device for: the ones worth asking for.
    fn absent_blades(&self) -> Vec<(u16, u8)> {
        self.config
            .members()
            .into_iter()
            .filter_map(|m| match m {
                MemberAddr::Blade { shelf, slot } => Some((m, shelf, slot)),
                MemberAddr::File(_) => None,
            })
            .filter(|(m, _, _)| {
                !self
                    .vols
                    .iter()
                    .any(|v| v.arrays.iter().any(|a| a.index_of(m).is_some()))
                    && !self.spares.holds(m)
            })
            .map(|(_, s, l)| (s, l))
            .collect()
    }

    /// Asks again, every probe interval, for configured blades the pool has never
    /// heard of (missing at start); the pool itself probes blades it declared dead.
    pub(super) fn query_absent(&mut self, now: Instant) {
        if self.rejoin.next_query.is_some_and(|t| now < t) {
            return;
        }
        let absent = self.absent_blades();
        let Some(pool) = self.pool.as_mut() else {
            return;
        };
        self.rejoin.next_query = Some(now + pool.config().probe_interval);
        for (shelf, slot) in absent {
            if pool.find(shelf, slot).is_none() {
                pool.query(shelf, slot);
            }
        }
    }

    /// A blade that holds no known member answers IDENTIFY: if the configuration
    /// names it, its superblock decides what it is.
    pub(super) fn blade_arrived(&mut self, blade: BladeId) {
        let Some(addr @ MemberAddr::Blade { shelf, slot }) = self.blade_addr(blade) else {
            return;
        };
        if self.absent_blades().contains(&(shelf, slot)) {
            self.probe(blade, addr);
        } else {
            // Perhaps a spare that carries our label or superblock (`spare_scan.rs`).
            self.scan(blade);
        }
    }

    /// The `eS.L` address of `blade`, if the pool knows it.
    pub(super) fn blade_addr(&self, blade: BladeId) -> Option<MemberAddr> {
        let i = self.pool.as_ref()?.blade_info(blade)?;
        Some(MemberAddr::Blade {
            shelf: i.shelf,
            slot: i.slot,
        })
    }

    /// Reads the superblock of `blade` (`addr`); [`Core::probe_done`] judges it.
    pub(super) fn probe(&mut self, blade: BladeId, addr: MemberAddr) {
        if self.rejoin.probes.iter().any(|p| p.1 == blade) {
            return;
        }
        // Refused at once only when the blade went down again: its next return
        // probes anew.
        if let Ok(token) = self.read_superblock_area(blade) {
            self.rejoin.probes.push((token, blade, addr));
        }
    }

    /// Sends a read of `blade`'s superblock area under a fresh probe token, which
    /// the caller keeps to know the completion (probes, spare scans, add checks).
    pub(super) fn read_superblock_area(&mut self, blade: BladeId) -> Result<u64, MemberError> {
        let token = self.rejoin.next_probe_token();
        let pool = self.pool.as_mut().ok_or(MemberError::Gone)?;
        submit_to_blade(pool, self.now, blade, superblock_read(), token)?;
        Ok(token)
    }

    /// The superblock read of a returning blade finished: re-add or refuse it.
    pub(super) fn probe_done(&mut self, token: u64, r: MemberResult) {
        let Some(i) = self.rejoin.probes.iter().position(|p| p.0 == token) else {
            self.regather_read(token, r);
            return;
        };
        let (_, blade, addr) = self.rejoin.probes.remove(i);
        if matches!(r, Err(raid_engine::MemberError::Gone)) {
            return; // down again before it answered: judged when it is back
        }
        let sectors = self
            .pool
            .as_ref()
            .and_then(|p| p.capacity(blade))
            .unwrap_or(0);
        let loc = Location::Blade(blade);
        match judge(&r, sectors, &self.vols) {
            Verdict::ReAdd { v, a, m } => {
                self.rejoin.forget(&addr);
                let arr = &mut self.vols[v].arrays[a];
                let known = arr.member(m).is_some();
                arr.set_member(m, &addr, loc);
                let name = arr.name.clone();
                self.members.learn(&addr, loc);
                if !known {
                    self.notice(Notice::Event(
                        Event::new(EventKind::DeviceReappeared, name.clone())
                            .member(addr.to_string())
                            .detail("found after the start"),
                    ));
                }
                self.log(
                    5,
                    format!(
                        "array {name}: {addr} is back and still its member; re-added, \
                         resyncing what changed while it was away"
                    ),
                );
                let _ = self.vols[v].concat.array_mut(a).member_returned(m);
            }
            Verdict::Refuse {
                array,
                member,
                reason,
            } => {
                let name = match array {
                    Some((v, a)) => {
                        if let Some(m) = member {
                            // It is that member: operator commands may name it.
                            if self.vols[v].arrays[a].member(m).is_none() {
                                self.vols[v].arrays[a].set_member(m, &addr, loc);
                                self.members.learn(&addr, loc);
                            }
                        }
                        self.vols[v].arrays[a].name.clone()
                    }
                    None => self.configured_array_of(&addr),
                };
                let line = if reason == "a spare replaced it" {
                    format!(
                        "array {name}: {addr} is back but a spare replaced it; not reused \
                         (`aoeraid add {name} {addr}` makes it a spare)"
                    )
                } else {
                    format!("array {name}: {addr} refused, left untouched: {reason}")
                };
                self.log(4, line);
                self.notice(Notice::Event(
                    Event::new(EventKind::MemberRefused, name)
                        .member(addr.to_string())
                        .detail(reason.clone()),
                ));
                self.rejoin.refuse(addr, reason);
            }
        }
        self.notice(Notice::StatusChanged);
    }

    /// The array (or spare group) the configuration puts `addr` in, for reports.
    fn configured_array_of(&self, addr: &MemberAddr) -> String {
        self.config
            .arrays
            .iter()
            .find(|a| a.members.contains(addr) || a.spares.contains(addr))
            .map(|a| a.name.clone())
            .or_else(|| {
                self.config
                    .spare_groups
                    .0
                    .iter()
                    .find(|g| g.members.contains(addr))
                    .map(|g| g.name.clone())
            })
            .unwrap_or_default()
    }
}
