//! Operator commands (control socket and CLI): fail, remove, add, re-add, spare
//! group changes, scrub, rebuild rate, and growing a volume by an array.

use super::add_check::overwrote;
use super::members::{Host, Location};
use super::ownership::held_by;
use super::spare_label::SpareLabel;
use super::spares::{Spare, SpareOrigin};
use super::volumes::find_array;
use super::{Core, Notice, Reply};
use crate::config::MemberAddr;
use aoe_initiator::{BladeId, ReserveCmd, ReserveCompletion, ReserveError, ReserveRequest};
use raid_engine::ControlError;
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
    /// `force`: write over what the blade carries (`add_check.rs`).
    Add {
        array: String,
        member: MemberAddr,
        force: bool,
    },
    ReAdd {
        array: String,
        member: MemberAddr,
    },
    SpareAdd {
        group: String,
        member: MemberAddr,
        force: bool,
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
/// the appliance does not hold yet, or read what a blade carries before writing
/// it (`add`, `spare-add` of a blade: `add_check.rs`).
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
    waiting: Vec<Waiting>,
}

/// A command waiting for its blade's Set: its ticket, blade, member UUID drawn
/// when it came in, and what a forced command overwrites.
struct Waiting {
    ticket: u64,
    blade: BladeId,
    cmd: Command,
    uuid: [u8; 16],
    overwrites: Option<String>,
}

impl Claiming {
    /// A fresh ticket for a command answered later.
    pub(super) fn ticket(&mut self) -> u64 {
        self.next += 1;
        self.next
    }
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
        if let Some(a) = self.check_first(&cmd, host) {
            return a;
        }
        Answer::Now(self.run_command(host, cmd))
    }

    /// A command about to write `blade`, which the appliance holds no
    /// reservation on: its Set goes out and the command waits for the answer
    /// ([`Core::claim_answered`]). False: nothing to claim, run it now.
    pub(super) fn claim_sent(
        &mut self,
        ticket: u64,
        blade: BladeId,
        cmd: &Command,
        uuid: [u8; 16],
        overwrites: Option<String>,
    ) -> bool {
        if self.owners.macs().is_empty() || self.owners.claim(blade).is_some() {
            return false;
        }
        let req = ReserveRequest {
            blade,
            cmd: ReserveCmd::Set,
            macs: self.owners.macs().to_vec(),
            user: ticket,
        };
        let Some(Ok(())) = self.pool.as_mut().map(|p| p.reserve(self.now, req)) else {
            return false;
        };
        self.claiming.waiting.push(Waiting {
            ticket,
            blade,
            cmd: cmd.clone(),
            uuid,
            overwrites,
        });
        true
    }

    /// Runs a command answered later, with the member UUID drawn when it came in.
    pub(super) fn run_drawn(
        &mut self,
        ticket: u64,
        cmd: Command,
        uuid: [u8; 16],
        overwrites: Option<String>,
    ) {
        let r = self.run_command(&mut Drawn(uuid), cmd);
        let reply = overwrote(r, overwrites.as_deref());
        self.notice(Notice::Reply(ticket, reply));
    }

    /// The Set of a command's blade was answered: the command runs, or is refused.
    /// False if `c` was no command's.
    pub(super) fn claim_answered(&mut self, c: &ReserveCompletion) -> bool {
        let Some(i) = self
            .claiming
            .waiting
            .iter()
            .position(|w| w.ticket == c.user)
        else {
            return false;
        };
        let w = self.claiming.waiting.remove(i);
        let member = match &w.cmd {
            Command::Add { member, .. } | Command::SpareAdd { member, .. } => member.to_string(),
            _ => String::new(),
        };
        let refusal = match &c.result {
            Ok(_) => {
                self.owners.hold(w.blade);
                self.run_drawn(w.ticket, w.cmd, w.uuid, w.overwrites);
                return true;
            }
            Err(ReserveError::Held(holders)) => format!(
                "{member} not added: {}; nothing was written to it",
                held_by(&self.blade_name(w.blade), holders)
            ),
            Err(e) => format!("{member} not added: its reservation could not be set ({e})"),
        };
        self.notice(Notice::Reply(w.ticket, Err(refusal)));
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
            Command::Add { array, member, .. } => self.add(&array, &member, host),
            Command::SpareAdd { group, member, .. } => self.spare_add(&group, &member, host),
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
    pub(super) fn serving(&self, addr: &MemberAddr) -> Option<(String, MemberState)> {
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
        let uuid = host.random_uuid()?;
        self.give_spare(v, a, m, loc, uuid)
            .map_err(|e| format!("{array}: {m}: {e}"))?;
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
