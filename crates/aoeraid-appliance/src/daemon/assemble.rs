//! Startup assembly: read every declared member's superblock through the member
//! path and let `raid_engine::assemble` decide. Nothing is written here: refused
//! members are reported by name and left alone.

use super::inuse::in_use_reason;
use super::members::Devices;
use crate::config::{ArraySpec, MemberAddr};
use crate::core::{superblock_read, Location, SpareLabel};
use anyhow::{anyhow, bail};
use raid_engine::{assemble, AssemblyInput};
use raid_engine::{Engine, MemberError};
use std::time::Duration;

const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// One assembled array: its engine and, for engine member index i, `members[i]`.
pub(crate) struct Assembled {
    pub(crate) engine: Engine,
    pub(crate) members: Vec<(MemberAddr, Location)>,
    /// Operator-facing lines: refused members, missing slots.
    pub(crate) notes: Vec<String>,
}

/// Assembles `spec` from what its members carry. `force` accepts an unclean
/// degraded RAID 5 (the write hole).
/// `group` holds the array's spare-group members: one of them may have replaced a
/// member before a restart, so each is offered to assembly too; those that are
/// not this array's (blank, or another array's) are left out silently.
pub(crate) fn assemble_array(
    dev: &mut Devices,
    spec: &ArraySpec,
    group: &[MemberAddr],
    force: bool,
) -> anyhow::Result<Assembled> {
    let mut addrs: Vec<&MemberAddr> = spec.members.iter().chain(&spec.spares).collect();
    let declared = addrs.len();
    for g in group {
        if !addrs.contains(&g) {
            addrs.push(g);
        }
    }
    let mut locs: Vec<Option<Location>> = Vec::new();
    let mut ios = Vec::new();
    for a in &addrs {
        let l = dev.open(a);
        if let Some(l) = l {
            ios.push((l, superblock_read()));
        }
        locs.push(l);
    }
    let mut results = dev.run_blocking(ios, READ_TIMEOUT)?.into_iter();
    let mut inputs = Vec::new();
    for (a, l) in addrs.iter().zip(&locs) {
        let superblock = match l {
            Some(_) => results.next().unwrap_or(Err(MemberError::Gone)),
            None => Err(MemberError::Gone),
        };
        inputs.push(AssemblyInput {
            name: a.to_string(),
            superblock,
            size_sectors: l.map_or(0, |l| dev.sectors(l)),
        });
    }
    let plan = assemble(&inputs, None, force).map_err(|e| anyhow!("array {}: {e}", spec.name))?;
    if plan.reference.name != spec.name {
        bail!(
            "array {}: its members carry array `{}` — run `aoeraid create` for this config \
             or fix the member list",
            spec.name,
            plan.reference.name
        );
    }
    let mut notes: Vec<String> = plan
        .refused
        .iter()
        .filter(|r| addrs[..declared].iter().any(|a| a.to_string() == r.name))
        .map(|r| format!("array {}: {} left out: {}", spec.name, r.name, r.reason))
        .collect();
    for s in &plan.missing_slots {
        notes.push(format!(
            "array {}: slot {s} has no member (degraded)",
            spec.name
        ));
    }
    let engine = Engine::assemble(&plan).map_err(|e| anyhow!("array {}: {e}", spec.name))?;
    let members = plan
        .members
        .iter()
        .map(|pm| {
            let addr = addrs[pm.input].clone();
            let loc = locs[pm.input].expect("planned members were read");
            (addr, loc)
        })
        .collect();
    Ok(Assembled {
        engine,
        members,
        notes,
    })
}

/// Is `addr` blank enough to become a spare of `group` (nothing on it we would
/// destroy, or only the spare label of that group)?
pub(crate) fn spare_is_blank(dev: &mut Devices, loc: Location, group: &str) -> Result<(), String> {
    let sectors = (super::inuse::PROBE_SECTORS as u64).min(dev.sectors(loc)) as u32;
    match dev.read_blocking(loc, 0, sectors, READ_TIMEOUT) {
        Ok(Ok(head)) => match in_use_reason(&head) {
            None => Ok(()),
            Some(_) if labelled_for(&head, group) => Ok(()),
            Some(why) => Err(why),
        },
        Ok(Err(e)) => Err(format!("unreadable ({e:?})")),
        Err(e) => Err(format!("{e:#}")),
    }
}

/// Does the head of a device carry our spare label for `group` (a spare added at
/// run time that the configuration now lists too)?
pub(crate) fn labelled_for(head: &[u8], group: &str) -> bool {
    let at = raid_engine::superblock::SB_OFFSET as usize * raid_engine::SECTOR;
    head.get(at..)
        .and_then(SpareLabel::decode)
        .is_some_and(|l| l.group == group)
}
