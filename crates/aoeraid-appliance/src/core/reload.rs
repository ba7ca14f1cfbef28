//! SIGHUP: the running config compared with the file through
//! [`crate::config::reload::plan`], then each live change applied. What needs a
//! restart is named in the reply and left as it is.

use super::members::Host;
use super::spares::SpareOrigin;
use super::volumes::find_array;
use super::{Command, Core, Notice, Reply};
use crate::config::reload::{plan, LiveChange};
use crate::config::{Config, MemberAddr};
use aoe_wire::Mac;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What a reload did, and what of it the host carries out.
#[derive(Debug)]
pub(crate) struct Reloaded {
    pub(crate) reply: Reply,
    /// The event dispatcher's new program and timeout, if they changed.
    pub(crate) event_program: Option<(Option<PathBuf>, Duration)>,
}

impl Core {
    /// Applies every live change between the running config and `new`. The core
    /// then runs on `new`: a change refused here takes effect at the next restart,
    /// and is reported once.
    pub(crate) fn reload(&mut self, now: Instant, host: &mut dyn Host, new: Config) -> Reloaded {
        self.now = now;
        self.dirty = true;
        let p = plan(&self.config, &new);
        let mut applied = Vec::new();
        let mut refused = p.refused;
        let mut event_program = None;
        for change in p.live {
            match change {
                LiveChange::MaskList { volume, allow } => {
                    self.reload_mask(&volume, &allow, &mut applied, &mut refused)
                }
                LiveChange::ConfigString { volume, value } => {
                    self.reload_config_string(&volume, value, &mut applied, &mut refused)
                }
                LiveChange::RebuildRates { array, rates } => {
                    let (lo, hi) = (rates.min.kib_per_sec(), rates.max.kib_per_sec());
                    match find_array(&self.vols, &array) {
                        Some((v, a)) => {
                            self.vols[v].concat.array_mut(a).set_sync_rates(lo, hi);
                            applied.push(format!(
                                "array {array}: rebuild {}..{}",
                                rates.min, rates.max
                            ));
                        }
                        None => refused.push(format!("array {array}: not running")),
                    }
                }
                LiveChange::ArraySpares {
                    array,
                    added,
                    removed,
                } => {
                    for member in added {
                        let cmd = Command::Add {
                            array: array.clone(),
                            member,
                            force: false,
                        };
                        match self.run_command(host, cmd) {
                            Ok(m) => applied.push(m),
                            Err(e) => refused.push(e),
                        }
                    }
                    for member in removed {
                        self.reload_remove_spare(&array, &member, &mut applied, &mut refused);
                    }
                }
                LiveChange::ArraySpareGroup { array, group } => {
                    match find_array(&self.vols, &array) {
                        Some((v, a)) => {
                            applied.push(format!("array {array}: spare group {group:?}"));
                            self.vols[v].arrays[a].spare_group = group;
                        }
                        None => refused.push(format!("array {array}: not running")),
                    }
                }
                LiveChange::SpareGroup {
                    group,
                    added,
                    removed,
                } => {
                    self.spares.ensure(&group);
                    for m in added {
                        if self.in_use(&m) || self.spares.holds(&m) {
                            refused.push(format!("spare {m}: already in use"));
                            continue;
                        }
                        match self.new_spare(&m, host, SpareOrigin::Config) {
                            Ok(s) => {
                                self.spares.add(&group, s);
                                applied.push(format!("spare {m} added to {group}"));
                            }
                            Err(e) => refused.push(format!("spare {m}: {e}")),
                        }
                    }
                    for m in removed {
                        if self.spares.remove(&group, &m).is_some() {
                            applied.push(format!("spare {m} removed from {group}"));
                        }
                    }
                }
                LiveChange::EventProgram { program, timeout } => {
                    applied.push(format!(
                        "event program {} (timeout {timeout})",
                        program
                            .as_ref()
                            .map_or_else(|| "none".into(), |p| p.display().to_string())
                    ));
                    event_program = Some((program, timeout.0));
                }
                LiveChange::DeadAfter(d) => match self.pool.as_mut() {
                    Some(pool) => {
                        pool.set_dead_time(now, d.0);
                        applied.push(format!("backend: dead_after {d}"));
                    }
                    None => applied.push(format!("backend: dead_after {d} (no back end)")),
                },
            }
        }
        for line in &applied {
            self.log(5, format!("reload: {line}"));
        }
        self.config = new;
        self.notice(Notice::StatusChanged);
        let mut msg = format!(
            "reloaded: {}",
            if applied.is_empty() {
                "nothing changed".into()
            } else {
                applied.join("; ")
            }
        );
        if !refused.is_empty() {
            msg.push_str(&format!("; not applied: {}", refused.join("; ")));
        }
        Reloaded {
            reply: Ok(msg),
            event_program,
        }
    }

    /// Is `addr` a member (in any state) of a running array?
    fn in_use(&self, addr: &MemberAddr) -> bool {
        self.vols
            .iter()
            .any(|v| v.arrays.iter().any(|a| a.known().any(|x| x.1 == addr)))
    }

    /// The export of volume `volume`, if it is exported.
    fn export_of(&self, volume: &str) -> Option<usize> {
        let v = self
            .vols
            .iter()
            .position(|x| x.name == volume && !x.standalone)?;
        self.exports
            .as_ref()?
            .exports()
            .iter()
            .position(|e| e.volume == v)
    }

    fn reload_mask(
        &mut self,
        volume: &str,
        allow: &[Mac],
        applied: &mut Vec<String>,
        refused: &mut Vec<String>,
    ) {
        let Some(e) = self.export_of(volume) else {
            return;
        };

        let shared = &self.exports.as_ref().expect("export found").exports()[e].shared;
        match shared.set_mask(allow) {
            Ok(_) => {
                let list: Vec<String> = allow.iter().map(|m| m.to_string()).collect();
                applied.push(format!("volume {volume}: allow list [{}]", list.join(", ")));
                if let Some(v) = self.vols.iter_mut().find(|x| x.name == volume) {
                    v.allow = list;
                }
                self.notice(Notice::SaveExport(e));
            }
            Err(err) => refused.push(format!("volume {volume}: allow list: {err}")),
        }
    }

    fn reload_config_string(
        &mut self,
        volume: &str,
        value: Option<String>,
        applied: &mut Vec<String>,
        refused: &mut Vec<String>,
    ) {
        let Some(e) = self.export_of(volume) else {
            return;
        };
        let shared = &self.exports.as_ref().expect("export found").exports()[e].shared;
        let s = value.unwrap_or_default();
        match shared.set_config_string(s.as_bytes()) {
            Ok(true) => {
                applied.push(format!("volume {volume}: config string {s:?}"));
                self.notice(Notice::SaveExport(e));
            }
            Ok(false) => {}
            Err(err) => refused.push(format!("volume {volume}: config string: {err}")),
        }
    }

    /// A dedicated spare dropped from the config leaves its array if it is still
    /// an unused spare; one already rebuilding or active stays.
    fn reload_remove_spare(
        &mut self,
        array: &str,
        m: &MemberAddr,
        applied: &mut Vec<String>,
        refused: &mut Vec<String>,
    ) {
        let Some((v, a)) = find_array(&self.vols, array) else {
            return;
        };
        let Some(i) = self.vols[v].arrays[a].index_of(m) else {
            return;
        };
        if self.vols[v].member_state(a, i) != Some(raid_engine::MemberState::Spare) {
            refused.push(format!(
                "array {array}: {m} is no longer a spare (use `aoeraid remove`)"
            ));
            return;
        }
        match self.vols[v].concat.array_mut(a).remove_member(i) {
            Ok(()) => applied.push(format!("array {array}: spare {m} removed")),
            Err(e) => refused.push(format!("array {array}: {m}: {e}")),
        }
    }
}
