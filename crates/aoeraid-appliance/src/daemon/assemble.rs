//! Startup assembly: read the superblock of every device the configuration lists
//! for an array, and of every blade found that it does not list, through the
//! member path, and let `core::assembly` (`raid_engine::assemble`) decide.
//! Nothing is written here: refused members are reported by name and left alone.

use super::inuse::in_use_reason;
use super::members::Devices;
use crate::config::{ArraySpec, Config, MemberAddr};
use crate::core::{assembly, superblock_read, Candidate, Location, MemberResult, SpareLabel};
use anyhow::anyhow;
use raid_engine::{Engine, MemberError};
use std::time::Duration;

const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Assembles `spec` from what its listed devices carry ([`assembly::listed`]:
/// members, spares, its spare group's blades) and the blades of `found` (read
/// by [`read_found`]) that carry its superblock. `force` accepts an unclean
/// degraded RAID 5. The engine, and the plan it was built from (its members
/// in engine order, the notes for the operator, the verdicts).
pub(crate) fn assemble_array(
    dev: &mut Devices,
    cfg: &Config,
    spec: &ArraySpec,
    found: &[(MemberAddr, Location, MemberResult)],
    force: bool,
) -> anyhow::Result<(Engine, assembly::Planned)> {
    let (addrs, declared) = assembly::listed(cfg, spec);
    let locs: Vec<Option<Location>> = addrs.iter().map(|a| dev.open(a)).collect();
    let ios = locs
        .iter()
        .flatten()
        .map(|&l| (l, superblock_read()))
        .collect();
    let mut results = dev.run_blocking(ios, READ_TIMEOUT)?.into_iter();
    let mut listed = Vec::new();
    for (a, l) in addrs.into_iter().zip(locs) {
        listed.push(match l {
            None => Candidate::absent(a),
            Some(l) => Candidate {
                addr: a,
                loc: Some(l),
                superblock: results.next().unwrap_or(Err(MemberError::Gone)),
                sectors: dev.sectors(l),
            },
        });
    }
    let found = found
        .iter()
        .map(|(a, l, sb)| Candidate {
            addr: a.clone(),
            loc: Some(*l),
            superblock: sb.clone(),
            sectors: dev.sectors(*l),
        })
        .collect();
    let p = assembly::plan_array(spec, listed, declared, found, force).map_err(|e| anyhow!(e))?;
    let engine = Engine::assemble(&p.plan).map_err(|e| anyhow!("array {}: {e}", spec.name))?;
    Ok((engine, p))
}

/// Reads the superblock area of every answering blade no configuration names. A
/// read, never a write (one another appliance holds refuses it): only those that
/// assembly takes are claimed, afterwards (`claim::claim_found`).
pub(crate) fn read_found(
    dev: &mut Devices,
    cfg: &Config,
) -> anyhow::Result<Vec<(MemberAddr, Location, MemberResult)>> {
    let blades: Vec<(MemberAddr, Location)> = dev
        .unlisted_blades(&cfg.members())
        .into_iter()
        .map(|(id, a)| (a, Location::Blade(id)))
        .collect();
    let ios = blades.iter().map(|b| (b.1, superblock_read())).collect();
    let results = dev.run_blocking(ios, READ_TIMEOUT)?;
    Ok(blades
        .into_iter()
        .zip(results)
        .map(|((a, l), r)| (a, l, r))
        .collect())
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
