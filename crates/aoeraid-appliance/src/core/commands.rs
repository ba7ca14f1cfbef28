//! Operator commands (control socket and CLI): fail, remove, add, re-add, spare
//! group changes, scrub, rebuild rate, and growing a volume by an array.

use super::members::{Host, Location};
use super::ownership::held_by;
use super::spare_label::SpareLabel;
use super::spares::{Spare, SpareOrigin};
use super::volumes::find_array;
use super::{Core, Notice, Reply};
use crate::config::MemberAddr;
use aoe_initiator::{BladeId, ReserveCmd, ReserveCompletion, ReserveError, ReserveRequest};
use raid_engine::ControlError;
use raid_engine::MemberSpec;
use raid_engine::{Concat, Engine, MemberState, SECTOR};
use std::time::Instant;

/// A control command, as the control plane hands it to the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    Fail {
        array: String,
        member: MemberAddr,
    },
    Remove {
        array: String,
        member: MemberAddr,
    },
    Add {
        array: String,
        member: MemberAddr,
    },
    ReAdd {
        array: String,
        member: MemberAddr,
    },
    SpareAdd {
        group: String,
        member: MemberAddr,
    },
    SpareRemove {
        group: String,
        member: MemberAddr,
    },
    Scrub {
        array: String,
        repair: bool,
    },
    Grow {
        volume: String,
        array: String,
    },
    /// KiB/s per member; None keeps the current bound.
    RebuildRate {
        array: String,
        min: Option<u64>,
        max: Option<u64>,
    },
}

/// What [`Core::command`] answers: at once, or later — as
/// [`Notice::Reply`] with this ticket — when the command must first claim a blade
/// the appliance does not hold yet (`add`, `spare-add` of a blade new to it).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    Now(Reply),
    Later(u64),
}

/// Commands waiting for the Set of the blade they are about to write: only once
/// it is answered is the blade used. Refused (another appliance holds it), the
/// command is refused naming the holder, and nothing of ours changed — unlike a
/// blade lost while in use, which stops its volume (`reservations.rs`).
#[derive(Default)]
pub(super) struct Claiming {
    /// The next ticket (0 is the Sets of held blades, `reservations.rs`).
    next: u64,
    waiting: Vec<(u64, BladeId, Command, [u8; 16])>,
}

/// The host of a command run once its blade's Set is answered: the member UUID
/// it was given was drawn when the command came in.
struct Drawn([u8; 16]);

impl Host for Drawn {
    fn open_file(&mut self, path: &std::path::Path) -> Result<(usize, u64), String> {
        Err(format!("{}: not a blade", path.display()))
    }
    fn random_uuid(&mut self) -> Result<[u8; 16], String> {
        Ok(self.0)
    }
}

impl Core {
    /// Carries out one command: the reply says what it did or why not, now or
    /// (a blade to claim first) later.
    pub(crate) fn command(&mut self, now: Instant, host: &mut dyn Host, cmd: Command) -> Answer {
        self.now = now;
        self.dirty = true;
        if let Some(ticket) = self.claim_first(&cmd, host) {
            return Answer::Later(ticket);
        }
        Answer::Now(self.run_command(host, cmd))
    }

    /// An `add` or `spare-add` that would write a blade the appliance holds no
    /// reservation on: its Set goes out and the command waits for the answer
    /// ([`Core::claim_answered`]); the ticket. None: run it now (nothing to claim,
    /// or it is refused anyway and says why).
    fn claim_first(&mut self, cmd: &Command, host: &mut dyn Host) -> Option<u64> {
        let (member, valid) = match cmd {
            Command::Add { array, member } => (
                member,
                find_array(&self.vols, array).is_some() && self.serving(member).is_none(),
            ),
            Command::SpareAdd { group, member } => (
                member,
                self.spares.exists(group) && !self.spares.contains(group, member),
            ),
            _ => return None,
        };
        if !valid || self.owners.macs().is_empty() {
            return None;
        }
        let Ok(Location::Blade(blade)) = self.members.open(member, self.pool.as_ref(), host) else {
            return None;
        };
        if self.owners.claim(blade).is_some() {
            return None;
        }
        let uuid = host.random_uuid().ok()?;
        self.claiming.next += 1;
        let ticket = self.claiming.next;
        let req = ReserveRequest {
            blade,
            cmd: ReserveCmd::Set,
            macs: self.owners.macs().to_vec(),
            user: ticket,
        };
        self.pool.as_mut()?.reserve(self.now, req).ok()?;
        self.claiming
            .waiting
            .push((ticket, blade, cmd.clone(), uuid));
        Some(ticket)
    }

    /// The Set of a command's blade was answered: the command runs, or is refused.
    /// False if `c` was no command's.
    pub(super) fn claim_answered(&mut self, c: &ReserveCompletion) -> bool {
        let Some(i) = self.claiming.waiting.iter().position(|w| w.0 == c.user) else {
            return false;
        };
        let (ticket, blade, cmd, uuid) = self.claiming.waiting.remove(i);
        let member = match &cmd {
            Command::Add { member, .. } | Command::SpareAdd { member, .. } => member.to_string(),
            _ => String::new(),
        };
        let reply = match &c.result {
            Ok(_) => {
                self.owners.hold(blade);
                self.run_command(&mut Drawn(uuid), cmd)
            }
            Err(ReserveError::Held(holders)) => Err(format!(
                "{member} not added: {}; nothing was written to it",
                held_by(&self.blade_name(blade), holders)
            )),
            Err(e) => Err(format!(
                "{member} not added: its reservation could not be set ({e})"
            )),
        };
        self.notice(Notice::Reply(ticket, reply));
        true
    }

    /// Carries out `cmd` now (a reload's spares: claimed as they are written,
    /// see [`Core::claim_opened`]).
    pub(super) fn run_command(&mut self, host: &mut dyn Host, cmd: Command) -> Reply {
        let named = match &cmd {
            Command::Fail { member, .. }
            | Command::Remove { member, .. }
            | Command::Add { member, .. }
            | Command::ReAdd { member, .. }
            | Command::SpareAdd { member, .. }
            | Command::SpareRemove { member, .. } => Some(member.clone()),
            _ => None,
        };
        let r = match cmd {
            Command::Fail { array, member } => self.with_member(&array, &member, |e, i| {
                e.fail_member(i)
                    .map(|_| format!("{member} marked faulty in {array}"))
            }),
            Command::Remove { array, member } => {
                let spare = self.spare_of(&array, &member);
                let r = self.with_member(&array, &member, |e, i| {
                    e.remove_member(i)
                        .map(|_| format!("{member} removed from {array}"))
                });
                if let (Ok(_), Some(loc)) = (&r, spare) {
                    // Its superblock says "spare of this array": a restart would
                    // find it and take it back (`spare_scan.rs`).
                    self.write_label(&member, loc, None);
                }
                r
            }
            Command::ReAdd { array, member } => self.with_member(&array, &member, |e, i| {
                e.member_returned(i).map(|_| {
                    format!(
                        "{member}: superblock being read; re-added with a bitmap resync \
                         if it still belongs to {array}"
                    )
                })
            }),
            Command::Add { array, member } => self.add(&array, &member, host),
            Command::SpareAdd { group, member } => self.spare_add(&group, &member, host),
            Command::SpareRemove { group, member } => {
                if !self.spares.exists(&group) {
                    Err(format!("no spare group named {group}"))
                } else if let Some(spare) = self.spares.remove(&group, &member) {
                    if spare.origin != SpareOrigin::Config {
                        self.write_label(&member, spare.loc, None);
                    }
                    Ok(format!("{member} removed from spare group {group}"))
                } else {
                    Err(format!("{member} is not an unused spare of {group}"))
                }
            }
            Command::Scrub { array, repair } => {
                let what = if repair { "repair" } else { "check" };
                self.with_array(&array, |e| e.start_scrub(repair))
                    .map(|_| format!("{what} started on {array}"))
            }
            Command::Grow { volume, array } => self.grow(&volume, &array),
            Command::RebuildRate { array, min, max } => self.rebuild_rate(&array, min, max),
        };
        if let Some(m) = named.filter(|_| r.is_ok()) {
            // The operator decided about it: a refusal no longer stands.
            self.rejoin.forget(&m);
        }
        self.notice(Notice::StatusChanged);
        r
    }

    fn with_array(
        &mut self,
        array: &str,
        f: impl FnOnce(&mut Engine) -> Result<(), ControlError>,
    ) -> Result<(), String> {
        let (v, a) =
            find_array(&self.vols, array).ok_or_else(|| format!("no array named {array}"))?;
        f(self.vols[v].concat.array_mut(a)).map_err(|e| format!("{array}: {e}"))
    }

    fn with_member(
        &mut self,
        array: &str,
        m: &MemberAddr,
        f: impl FnOnce(&mut Engine, usize) -> Result<String, ControlError>,
    ) -> Reply {
        let (v, a) =
            find_array(&self.vols, array).ok_or_else(|| format!("no array named {array}"))?;
        let i = self.vols[v].arrays[a]
            .index_of(m)
            .ok_or_else(|| format!("{m} is not a member of {array}"))?;
        f(self.vols[v].concat.array_mut(a), i).map_err(|e| format!("{array}: {m}: {e}"))
    }

    /// The array `addr` serves in now (active, rebuilding or spare), if any.
    fn serving(&self, addr: &MemberAddr) -> Option<(String, MemberState)> {
        for vol in &self.vols {
            for (ai, arr) in vol.arrays.iter().enumerate() {
                for (mi, x, _) in arr.known() {
                    if x != addr {
                        continue;
                    }
                    let st = vol.member_state(ai, mi);
                    if let Some(
                        s @ (MemberState::Active | MemberState::Rebuilding | MemberState::Spare),
                    ) = st
                    {
                        return Some((arr.name.clone(), s));
                    }
                }
            }
        }
        None
    }

    fn add(&mut self, array: &str, m: &MemberAddr, host: &mut dyn Host) -> Reply {
        let (v, a) =
            find_array(&self.vols, array).ok_or_else(|| format!("no array named {array}"))?;
        if let Some((other, st)) = self.serving(m) {
            return Err(format!("{m} is in use by array {other} ({st:?})"));
        }
        self.label_idle(m)?;
        let loc = self
            .members
            .open(m, self.pool.as_ref(), host)
            .map_err(|e| format!("{m}: {e}"))?;
        self.claim_opened(loc).map_err(|e| format!("{m}: {e}"))?;
        let spec = MemberSpec {
            uuid: host.random_uuid()?,
            size_sectors: self.members.sectors(loc, self.pool.as_ref()),
            shelf: m.shelf().map(u32::from),
        };
        let idx = self.vols[v]
            .concat
            .array_mut(a)
            .add_spare(spec)
            .map_err(|e| format!("{array}: {m}: {e}"))?;
        self.vols[v].arrays[a].set_member(idx, m, loc);
        Ok(if self.vols[v].concat.arrays()[a].is_degraded() {
            format!("{m} added to {array}; rebuilding onto it")
        } else {
            format!("{m} added to {array} as a spare")
        })
    }

    fn spare_add(&mut self, group: &str, m: &MemberAddr, host: &mut dyn Host) -> Reply {
        if !self.spares.exists(group) {
            return Err(format!("no spare group named {group}"));
        }
        if self.spares.contains(group, m) {
            return Err(format!("{m} is already a spare of {group}"));
        }
        if let Some((other, st)) = self.serving(m) {
            return Err(format!("{m} is in use by array {other} ({st:?})"));
        }
        self.label_idle(m)?;
        let spare = self.new_spare(m, host, SpareOrigin::Added)?;
        let label = SpareLabel {
            group: group.to_string(),
            uuid: spare.uuid,
        };
        self.write_label(m, spare.loc, Some(&label));
        self.spares.add(group, spare);
        Ok(format!(
            "{m} added to spare group {group}{}",
            if m.shelf().is_some() {
                " (labelled: it stays a spare across restarts and takeovers)"
            } else {
                " (a file spare: list it in the configuration to keep it across restarts)"
            }
        ))
    }

    /// Refuses a command on `m` while its spare label is being written or wiped.
    fn label_idle(&self, m: &MemberAddr) -> Result<(), String> {
        if self.labels.busy(m) {
            return Err(format!(
                "{m}: its spare label is being written; try again in a moment"
            ));
        }
        Ok(())
    }

    /// Where `m` is, if it is a spare (not yet in a slot) of `array`.
    fn spare_of(&self, array: &str, m: &MemberAddr) -> Option<Location> {
        let (v, a) = find_array(&self.vols, array)?;
        let i = self.vols[v].arrays[a].index_of(m)?;
        (self.vols[v].member_state(a, i) == Some(MemberState::Spare))
            .then(|| self.vols[v].arrays[a].member(i).map(|x| x.1))
            .flatten()
    }

    /// Opens `m` and draws the UUID it will carry as a member.
    pub(super) fn new_spare(
        &mut self,
        m: &MemberAddr,
        host: &mut dyn Host,
        origin: SpareOrigin,
    ) -> Result<Spare, String> {
        let loc = self.members.open(m, self.pool.as_ref(), host)?;
        self.claim_opened(loc)?;
        Ok(Spare {
            addr: m.clone(),
            loc,
            uuid: host.random_uuid()?,
            origin,
        })
    }

    fn rebuild_rate(&mut self, array: &str, min: Option<u64>, max: Option<u64>) -> Reply {
        let (v, a) =
            find_array(&self.vols, array).ok_or_else(|| format!("no array named {array}"))?;
        let e = self.vols[v].concat.array_mut(a);
        let st = e.status();
        let (lo, hi) = (
            min.unwrap_or(st.sync_min_kib_s),
            max.unwrap_or(st.sync_max_kib_s),
        );
        if lo > hi {
            return Err(format!("min {lo} KiB/s above max {hi} KiB/s"));
        }
        e.set_sync_rates(lo, hi);
        Ok(format!("{array}: rebuild rate {lo}..{hi} KiB/s per member"))
    }

    /// Appends the standalone array `array` to volume `volume` and announces the
    /// new size. Refused while the array has requests or unclean writes in flight.
    fn grow(&mut self, volume: &str, array: &str) -> Reply {
        let v = self
            .vols
            .iter()
            .position(|x| x.name == volume && !x.standalone)
            .ok_or_else(|| format!("no volume named {volume}"))?;
        let (sv, _) =
            find_array(&self.vols, array).ok_or_else(|| format!("no array named {array}"))?;
        if !self.vols[sv].standalone {
            return Err(format!(
                "array {array} already belongs to volume {}",
                self.vols[sv].name
            ));
        }
        let busy = self.pending.keys().any(|(pv, _)| *pv == sv)
            || self.member_io_in_flight() > 0
                && self.vols[sv]
                    .concat
                    .arrays()
                    .iter()
                    .any(|e| !e.status().clean_on_disk);
        if busy {
            return Err(format!("array {array} is busy; try again in a moment"));
        }
        let old = std::mem::replace(&mut self.vols[sv].concat, Concat::new(Vec::new()));
        let arrays = std::mem::take(&mut self.vols[sv].arrays);
        for (e, r) in old.into_arrays().into_iter().zip(arrays) {
            self.vols[v].concat.grow(e);
            self.vols[v].arrays.push(r);
        }
        let sectors = self.vols[v].concat.volume_sectors();
        if let Some(x) = self.exports.as_mut() {
            x.resize(v, sectors);
        }
        Ok(format!(
            "volume {volume} grown by array {array}: now {} MiB, announced",
            (sectors * SECTOR as u64) >> 20
        ))
    }
}
