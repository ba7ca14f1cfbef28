//! `add` and `spare-add` read a blade before they write it. A member whose
//! superblock does not match is refused by name, never overwritten: an operator
//! who types the wrong blade address must not destroy another array's member
//! (ours, or another appliance's that holds no reservation). As md's `--add`
//! refuses a device carrying an array's superblock, the blade's superblock area
//! is read first and:
//!
//! * blank (zeros, or neither a whole superblock nor a whole label): the
//!   command goes on;
//! * what the command itself would write — our label for the same group
//!   (`spare-add`), a spare superblock of the same array (`add`): it goes on;
//! * anything else that decodes — any array's superblock (the same array's
//!   member included: `re-add` returns that one), another group's label: refused,
//!   naming what it carries, and nothing is written. `--force` writes anyway and
//!   the reply says what was overwritten.
//!
//! A blade another station holds refuses the read: the command then asks for
//! the blade's reservation as before, and is refused naming the holder.
//! Configured spares a reload adds are not read first: the configuration names them.

use super::commands::{Answer, Command};
use super::members::{Host, Location, MemberResult};
use super::spare_label::SpareLabel;
use super::volumes::find_array;
use super::{Core, Notice, Reply};
use crate::config::MemberAddr;
use crate::control::engine::uuid_string;
use aoe_initiator::BladeId;
use raid_engine::superblock::{Superblock, ROLE_SPARE};

/// Commands waiting for the read of their blade's superblock area.
#[derive(Default)]
pub(super) struct AddChecks {
    reading: Vec<Reading>,
}

struct Reading {
    token: u64,
    ticket: u64,
    blade: BladeId,
    cmd: Command,
    /// The member UUID, drawn when the command came in.
    uuid: [u8; 16],
}

impl AddChecks {
    pub(super) fn owns(&self, token: u64) -> bool {
        self.reading.iter().any(|r| r.token == token)
    }
}

/// What a blade's superblock area carries, for the command about to write it.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Carries {
    /// Nothing, or just what the command writes.
    Nothing,
    /// Something else, in words; `member_of`: a superblock of the array an
    /// `add` names (a member that dropped out, which `re-add` returns).
    Other { what: String, member_of: bool },
}

/// Judges `bytes` (a superblock-area read) for `cmd`; `array_uuid`: the UUID of
/// the array an `add` names.
pub(super) fn carries(bytes: &[u8], cmd: &Command, array_uuid: Option<[u8; 16]>) -> Carries {
    if let Some(l) = SpareLabel::decode(bytes) {
        return match cmd {
            Command::SpareAdd { group, .. } if *group == l.group => Carries::Nothing,
            _ => Carries::Other {
                what: format!("the spare label of group {}", l.group),
                member_of: false,
            },
        };
    }
    let Ok(sb) = Superblock::decode(bytes) else {
        return Carries::Nothing;
    };
    let same = matches!(cmd, Command::Add { .. }) && Some(sb.array_uuid) == array_uuid;
    if same && sb.role == ROLE_SPARE {
        return Carries::Nothing;
    }
    let role = if sb.role == ROLE_SPARE {
        "spare".to_string()
    } else {
        sb.role.to_string()
    };
    Carries::Other {
        what: format!(
            "a superblock of array `{}` ({}), role {role}, event count {}",
            sb.name,
            uuid_string(&sb.array_uuid),
            sb.events
        ),
        member_of: same,
    }
}

fn unreadable(member: &MemberAddr, e: raid_engine::MemberError) -> String {
    format!("{member} not added: its superblock area could not be read ({e:?}); nothing was written to it")
}

/// The command's member and whether it writes over a refusal.
fn target(cmd: &Command) -> Option<(&MemberAddr, bool)> {
    match cmd {
        Command::Add { member, force, .. } | Command::SpareAdd { member, force, .. } => {
            Some((member, *force))
        }
        _ => None,
    }
}

impl Core {
    /// An `add` or `spare-add` of a blade: its superblock area is read first
    /// ([`Core::check_read`]). None: run the command now (no blade, or it is
    /// refused anyway and says why).
    pub(super) fn check_first(&mut self, cmd: &Command, host: &mut dyn Host) -> Option<Answer> {
        let (member, _) = target(cmd)?;
        let valid = match cmd {
            Command::Add { array, .. } => find_array(&self.vols, array).is_some(),
            Command::SpareAdd { group, .. } => {
                self.spares.exists(group) && !self.spares.contains(group, member)
            }
            _ => false,
        };
        if !valid || self.serving(member).is_some() || self.labels.busy(member) {
            return None;
        }
        let Ok(Location::Blade(blade)) = self.members.open(member, self.pool.as_ref(), host) else {
            return None;
        };
        let uuid = match host.random_uuid() {
            Ok(u) => u,
            Err(e) => return Some(Answer::Now(Err(e))),
        };
        let token = match self.read_superblock_area(blade) {
            Ok(t) => t,
            Err(e) => return Some(Answer::Now(Err(unreadable(member, e)))),
        };
        let ticket = self.claiming.ticket();
        self.checks.reading.push(Reading {
            token,
            ticket,
            blade,
            cmd: cmd.clone(),
            uuid,
        });
        Some(Answer::Later(ticket))
    }

    /// The read of a command's blade finished (`reserved`: refused, another
    /// station holds it): the command goes on or is refused.
    pub(super) fn check_read(&mut self, token: u64, r: MemberResult, reserved: bool) {
        let Some(i) = self.checks.reading.iter().position(|x| x.token == token) else {
            return;
        };
        let Reading {
            ticket,
            blade,
            cmd,
            uuid,
            ..
        } = self.checks.reading.remove(i);
        let Some((member, force)) = target(&cmd).map(|(m, f)| (m.clone(), f)) else {
            return;
        };
        let found = match r {
            _ if reserved => {
                // Its reservation is asked for: refused, the reply names the holder.
                if !self.claim_sent(ticket, blade, &cmd, uuid, None) {
                    let reply = Err(format!(
                        "{member} not added: another station holds its reservation; nothing \
                         was written to it"
                    ));
                    self.notice(Notice::Reply(ticket, reply));
                }
                return;
            }
            Err(e) => Err(unreadable(&member, e)),
            Ok(bytes) => {
                let array_uuid = match &cmd {
                    Command::Add { array, .. } => find_array(&self.vols, array)
                        .map(|(v, a)| self.vols[v].concat.arrays()[a].status().array_uuid),
                    _ => None,
                };
                Ok(carries(&bytes, &cmd, array_uuid))
            }
        };
        let refusal = |what: &str, member_of: bool| -> Reply {
            let (verb, hint) = match &cmd {
                Command::Add { array, .. } => (
                    format!("add {array} {member}"),
                    if member_of {
                        format!(" (a member of {array} that dropped out returns with `re-add`)")
                    } else {
                        String::new()
                    },
                ),
                Command::SpareAdd { group, .. } => {
                    (format!("spare add {group} {member}"), String::new())
                }
                _ => (String::new(), String::new()),
            };
            Err(format!(
                "{member} not added: it carries {what}; nothing was written to it{hint}. \
                 If it is to be overwritten: `aoeraid {verb} --force`"
            ))
        };
        let note = match found {
            Err(e) => Some(Err(e)),
            Ok(Carries::Nothing) => None,
            Ok(Carries::Other { what, .. }) if force => Some(Ok(what)),
            Ok(Carries::Other { what, member_of }) => Some(refusal(&what, member_of)),
        };
        let what = match note {
            Some(Err(e)) => return self.notice(Notice::Reply(ticket, Err(e))),
            Some(Ok(what)) => {
                self.log(4, format!("{member}: forced: overwriting {what}"));
                Some(what)
            }
            None => None,
        };
        if !self.claim_sent(ticket, blade, &cmd, uuid, what.clone()) {
            self.run_drawn(ticket, cmd, uuid, what);
        }
    }
}

/// The reply of a forced command: what it overwrote.
pub(super) fn overwrote(r: Reply, what: Option<&str>) -> Reply {
    match what {
        Some(w) => r.map(|m| format!("{m}; overwrote {w}")),
        None => r,
    }
}
