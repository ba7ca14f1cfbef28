//! Which devices an array is assembled from, the same for `aoeraid run` and the
//! simulator: what the configuration lists for it (members, dedicated spares, the
//! blades of its spare group) and every blade found on the back end that carries
//! a superblock of the same array (its UUID): a blade `add`ed, or a spare moved
//! in, at run time, which the YAML does not list yet. Like mdadm, the appliance
//! assembles by the superblocks it finds, not by a list: `raid_engine::assemble`
//! lets the newest superblock's slot table say who holds each slot, so of two
//! claimants of a slot the newer wins and the replaced one is refused by name and
//! never written. A found blade of any other array (another appliance's
//! included) is not offered at all, so nothing is ever written to it.

use super::members::{Location, MemberResult};
use crate::config::{ArraySpec, Config, MemberAddr};
use aoe_initiator::{BladeState, Pool};
use raid_engine::superblock::Superblock;
use raid_engine::{assemble, AssemblyInput, AssemblyPlan, MemberError};

/// A device offered to an array's assembly, and what reading its superblock gave.
pub(crate) struct Candidate {
    pub(crate) addr: MemberAddr,
    /// None: the device could not be opened (a blade that did not answer).
    pub(crate) loc: Option<Location>,
    pub(crate) superblock: MemberResult,
    pub(crate) sectors: u64,
}

impl Candidate {
    /// A listed device that could not be opened.
    pub(crate) fn absent(addr: MemberAddr) -> Candidate {
        Candidate {
            addr,
            loc: None,
            superblock: Err(MemberError::Gone),
            sectors: 0,
        }
    }

    fn decoded(&self) -> Option<Superblock> {
        Superblock::decode(self.superblock.as_ref().ok()?).ok()
    }
}

/// An array's assembly, decided.
pub(crate) struct Planned {
    pub(crate) plan: AssemblyPlan,
    /// Engine member i is `members[i]`.
    pub(crate) members: Vec<(MemberAddr, Location)>,
    /// Operator-facing lines: refused members, missing slots.
    pub(crate) notes: Vec<String>,
    /// What became of the devices beyond the slot map; the array keeps it.
    pub(crate) verdicts: Verdicts,
}

/// What an array's assembly decided about devices beyond its slot map.
#[derive(Default)]
pub(crate) struct Verdicts {
    /// The members taken from found blades: the configuration does not list them.
    pub(crate) found: Vec<MemberAddr>,
    /// The devices that answered and were left out, untouched, with the reason
    /// (a stale slot claimant, another array's or no superblock): the core shows
    /// them as refused in status until they come back or a command names them.
    pub(crate) refused: Vec<(MemberAddr, String)>,
}

/// Has start-up's discovery heard what assembly needs? Every blade of `wanted`
/// (the configuration's) up, and every other blade that answered the broadcast
/// meanwhile identified too, or down. A blade no configuration names may carry
/// a member added at run time: one that answered but was still being identified
/// when the last listed blade came up used to be left to the spare scan, so its
/// array started without it (degraded, the member then rejoining by its bitmap;
/// with every member replaced at run time, on the stale listed ones, and the
/// current ones refused as newer). A blade that has not answered at all by then
/// is still reached only by the spare scan (`spare_scan.rs`): start-up cannot
/// wait for blades it does not know of.
pub(crate) fn discovery_settled(pool: &Pool, wanted: &[(u16, u8)]) -> bool {
    let up = |id| pool.blade_state(id) == Some(BladeState::Up);
    wanted
        .iter()
        .all(|&(shelf, slot)| pool.find(shelf, slot).is_some_and(up))
        && pool
            .blade_ids()
            .all(|id| pool.blade_state(id) != Some(BladeState::Identifying))
}

/// What the configuration lists for `spec`: its members and dedicated spares
/// (how many: the second value), then its spare group's blades (one of them may
/// have replaced a member before a restart).
pub(crate) fn listed(cfg: &Config, spec: &ArraySpec) -> (Vec<MemberAddr>, usize) {
    let mut addrs: Vec<MemberAddr> = spec.members.iter().chain(&spec.spares).cloned().collect();
    let declared = addrs.len();
    let group = spec
        .spare_group
        .as_ref()
        .and_then(|g| cfg.spare_groups.get(g));
    for m in group.map_or(&[][..], |g| &g.members[..]) {
        if !addrs.contains(m) {
            addrs.push(m.clone());
        }
    }
    (addrs, declared)
}

/// Assembles `spec` from `listed` (the first `declared` of them its own lines,
/// see [`listed`]) and the blades no configuration names, `found`, of which only
/// those carrying this array's superblock (the UUID the listed devices carry; or,
/// when none does, the one UUID the found blades of its name share) take part. `force` accepts an unclean
/// degraded RAID 5.
pub(crate) fn plan_array(
    spec: &ArraySpec,
    mut listed: Vec<Candidate>,
    declared: usize,
    found: Vec<Candidate>,
    force: bool,
) -> Result<Planned, String> {
    // With no listed device left carrying it (all replaced at run time), the
    // array is known by its name alone, and only if the found blades of that name
    // agree on one UUID: two arrays of one name (another appliance's) are not told
    // apart by guessing.
    let uuid = identity(&spec.name, &listed).or_else(|| {
        let mut uuids = found
            .iter()
            .filter_map(Candidate::decoded)
            .filter(|sb| sb.name == spec.name)
            .map(|sb| sb.array_uuid);
        let first = uuids.next()?;
        uuids.all(|u| u == first).then_some(first)
    });
    let first_found = listed.len();
    if let Some(u) = uuid {
        listed.extend(
            found
                .into_iter()
                .filter(|c| c.decoded().is_some_and(|sb| sb.array_uuid == u)),
        );
    }
    let inputs: Vec<AssemblyInput> = listed
        .iter()
        .map(|c| AssemblyInput {
            name: c.addr.to_string(),
            superblock: c.superblock.clone(),
            size_sectors: c.sectors,
        })
        .collect();
    let plan = assemble(&inputs, uuid, force).map_err(|e| format!("array {}: {e}", spec.name))?;
    if plan.reference.name != spec.name {
        return Err(format!(
            "array {}: its members carry array `{}` — run `aoeraid create` for this config \
             or fix the member list",
            spec.name, plan.reference.name
        ));
    }
    // The spare group's blades that are not this array's are no news.
    let named = |name: &str| {
        listed
            .iter()
            .enumerate()
            .find(|(i, c)| (*i < declared || *i >= first_found) && c.addr.to_string() == name)
            .map(|(_, c)| c)
    };
    let mut notes = Vec::new();
    let mut refused = Vec::new();
    for (r, c) in plan
        .refused
        .iter()
        .filter_map(|r| Some((r, named(&r.name)?)))
    {
        notes.push(format!(
            "array {}: {} left out: {}",
            spec.name, r.name, r.reason
        ));
        // One that did not answer is missing, not refused.
        if c.loc.is_some() {
            refused.push((c.addr.clone(), r.reason.clone()));
        }
    }
    for s in &plan.missing_slots {
        notes.push(format!(
            "array {}: slot {s} has no member (degraded)",
            spec.name
        ));
    }
    let mut members = Vec::new();
    let mut taken = Vec::new();
    for pm in &plan.members {
        let c = &listed[pm.input];
        let loc = c.loc.expect("planned members were read");
        members.push((c.addr.clone(), loc));
        if pm.input >= first_found {
            taken.push(c.addr.clone());
        }
    }
    Ok(Planned {
        plan,
        members,
        notes,
        verdicts: Verdicts {
            found: taken,
            refused,
        },
    })
}

/// The array `name`'s UUID as the listed devices carry it: the one most of
/// their superblocks of that name agree on, the newest breaking a tie. None when
/// no listed device carries one (assembly then says what they carry).
fn identity(name: &str, listed: &[Candidate]) -> Option<[u8; 16]> {
    let sbs: Vec<Superblock> = listed
        .iter()
        .filter_map(Candidate::decoded)
        .filter(|sb| sb.name == name)
        .collect();
    sbs.iter()
        .max_by_key(|sb| {
            let n = sbs.iter().filter(|o| o.array_uuid == sb.array_uuid).count();
            (n, sb.events)
        })
        .map(|sb| sb.array_uuid)
}
