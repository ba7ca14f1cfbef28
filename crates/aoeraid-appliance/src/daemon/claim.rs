//! Taking the configured blades at start, before anything reads or writes them
//! (vblade refuses reads too from a MAC off a non-empty reserve list, so the claim
//! comes before assembly). The decisions are the core's
//! ([`crate::core::plan_claim`]); this runs them on the blocking back end.

use super::members::Devices;
use crate::core::{holder, plan_claim, send_reserves, ClaimMode, Holder, Ownership};
use anyhow::{anyhow, bail};
use aoe_initiator::{BladeId, ReserveCmd, ReserveError};
use aoe_wire::Mac;
use std::time::{Duration, Instant};

/// How long one round of Reserve/Release requests may take.
const RESERVE_TIMEOUT: Duration = Duration::from_secs(10);

/// The blades a start holds, and how they were found.
pub(crate) struct Claimed {
    /// Our back-end MACs: what every list was set to.
    pub(crate) macs: Vec<Mac>,
    /// (blade, `eS.L`, list before the claim).
    pub(crate) blades: Vec<(BladeId, String, Vec<Mac>)>,
    pub(crate) mode: ClaimMode,
}

impl Claimed {
    /// The running core's claim on these blades.
    pub(crate) fn ownership(&self, now: Instant) -> Ownership {
        let o = Ownership::new(self.macs.clone(), self.blades.iter().map(|b| b.0), now);
        match self.mode {
            ClaimMode::Takeover => {
                o.fencing(&self.blades.iter().map(|b| b.2.clone()).collect::<Vec<_>>())
            }
            ClaimMode::Plain => o,
        }
    }

    /// Gives back the blades that were free before the claim (a `create` that is
    /// done writing): their lists are emptied; blades we held already stay held.
    pub(crate) fn release_free(&self, dev: &mut Devices) -> anyhow::Result<()> {
        let free: Vec<BladeId> = self
            .blades
            .iter()
            .filter(|b| b.2.is_empty())
            .map(|b| b.0)
            .collect();
        let results = reserve_blocking(dev, &free, ReserveCmd::Set, &[])?;
        for (b, r) in self.blades.iter().filter(|b| b.2.is_empty()).zip(results) {
            r.map_err(|e| anyhow!("{}: cannot release the reservation: {e}", b.1))?;
        }
        Ok(())
    }
}

/// Claims the blades `wanted` (those of them that answered discovery) for this
/// appliance's back-end MACs. A plain claim refuses, naming every blade another
/// appliance holds and its holders, and takes nothing then; a takeover force-sets
/// every list. Lines worth logging go to `log`.
pub(crate) fn claim(
    dev: &mut Devices,
    wanted: &[(u16, u8)],
    mode: ClaimMode,
    log: &mut dyn FnMut(String),
) -> anyhow::Result<Claimed> {
    let Some(b) = dev.backend.as_ref() else {
        return Ok(Claimed {
            macs: Vec::new(),
            blades: Vec::new(),
            mode,
        });
    };
    let macs: Vec<Mac> = b.pool().interfaces().iter().map(|i| i.mac).collect();
    let found: Vec<(BladeId, String)> = wanted
        .iter()
        .filter_map(|&(s, l)| b.pool().find(s, l).map(|id| (id, format!("e{s}.{l}"))))
        .collect();
    let ids: Vec<BladeId> = found.iter().map(|f| f.0).collect();
    let names: Vec<String> = found.iter().map(|f| f.1.clone()).collect();
    // A takeover reads the lists too: the MACs it forces off are the old active's,
    // which a blade away now may still name when it comes back (`Ownership::fencing`).
    let read = reserve_blocking(dev, &ids, ReserveCmd::Read, &[])?;
    let lists: Vec<Vec<Mac>> = match mode {
        ClaimMode::Takeover => read.into_iter().map(Result::unwrap_or_default).collect(),
        ClaimMode::Plain => read
            .into_iter()
            .zip(&names)
            .map(|(r, n)| r.map_err(|e| anyhow!("{n}: cannot read its reserve list: {e}")))
            .collect::<anyhow::Result<_>>()?,
    };
    let cmds = plan_claim(mode, &names, &lists, &macs).map_err(|held| {
        anyhow!(
            "refusing to take blades another appliance holds:\n  {}\n\
             (`aoeraid run --takeover` takes them by force: only when that appliance is \
             down or being replaced, e.g. by the cluster's resource agent)",
            held.join("\n  ")
        )
    })?;
    let cmd = cmds.first().copied().unwrap_or(ReserveCmd::Set);
    let results = reserve_blocking(dev, &ids, cmd, &macs)?;
    let mut refused = Vec::new();
    let mut taken = Vec::new();
    for (i, r) in results.into_iter().enumerate() {
        match r {
            Ok(_) => taken.push(i),
            Err(ReserveError::Held(h)) => refused.push(crate::core::held_by(&names[i], &h)),
            Err(e) => refused.push(format!("{}: {e}", names[i])),
        }
    }
    if !refused.is_empty() {
        // Claimed meanwhile by someone else (a race with another start): give back
        // what this start took of the free blades, and refuse.
        let back: Vec<BladeId> = taken
            .iter()
            .filter(|&&i| lists.get(i).is_some_and(Vec::is_empty))
            .map(|&i| ids[i])
            .collect();
        let _ = reserve_blocking(dev, &back, ReserveCmd::Set, &[]);
        bail!("cannot reserve every blade:\n  {}", refused.join("\n  "));
    }
    for (i, n) in names.iter().enumerate() {
        let before = lists.get(i).map(|l| holder(l, &macs));
        let line = match (mode, before) {
            (ClaimMode::Takeover, _) => format!("{n}: taken over (reserve list force-set)"),
            (ClaimMode::Plain, Some(Holder::Us)) => format!("{n}: already held, kept"),
            (ClaimMode::Plain, _) => format!("{n}: reserved"),
        };
        log(line);
    }
    let blades = ids
        .into_iter()
        .zip(names)
        .enumerate()
        .map(|(i, (id, n))| (id, n, lists.get(i).cloned().unwrap_or_default()))
        .collect();
    Ok(Claimed { macs, blades, mode })
}

/// After a takeover, forces the lists of the answering blades no configuration
/// names that name only MACs this takeover forced off the configured blades (the
/// old active's): one may be a member or spare it added at run time, which must be
/// read before assembly. Blades free or held by anyone else are left alone.
pub(crate) fn take_over_found(
    dev: &mut Devices,
    claimed: &mut Claimed,
    listed: &[crate::config::MemberAddr],
    log: &mut dyn FnMut(String),
) -> anyhow::Result<()> {
    if claimed.mode != ClaimMode::Takeover {
        return Ok(());
    }
    let old: Vec<Mac> = claimed
        .blades
        .iter()
        .flat_map(|c| c.2.iter().copied())
        .filter(|m| !claimed.macs.contains(m))
        .collect();
    let found: Vec<(BladeId, String)> = dev
        .unlisted_blades(listed)
        .into_iter()
        .map(|(id, a)| (id, a.to_string()))
        .collect();
    if found.is_empty() {
        return Ok(());
    }
    let ids: Vec<BladeId> = found.iter().map(|f| f.0).collect();
    let lists = reserve_blocking(dev, &ids, ReserveCmd::Read, &[])?;
    let mut force = Vec::new();
    for ((id, name), list) in found.into_iter().zip(lists) {
        let Ok(list) = list else { continue };
        if !list.is_empty() && list.iter().all(|m| old.contains(m)) {
            force.push((id, name, list));
        }
    }
    let ids: Vec<BladeId> = force.iter().map(|f| f.0).collect();
    let results = reserve_blocking(dev, &ids, ReserveCmd::ForceSet, &claimed.macs)?;
    for (f, r) in force.into_iter().zip(results) {
        match r {
            Ok(_) => {
                log(format!(
                    "{}: taken over (the old active held it; not in the configuration)",
                    f.1
                ));
                claimed.blades.push(f);
            }
            Err(e) => log(format!("{}: not taken over: {e}", f.1)),
        }
    }
    Ok(())
}

/// Reserves the blades assembly took by their superblock (`found`, not in the
/// configuration) before anything writes them; those a takeover forced already
/// are held. Fails, naming the blade, if another appliance took one meanwhile.
pub(crate) fn claim_found(
    dev: &mut Devices,
    claimed: &mut Claimed,
    found: &[(BladeId, String)],
    log: &mut dyn FnMut(String),
) -> anyhow::Result<()> {
    let new: Vec<&(BladeId, String)> = found
        .iter()
        .filter(|f| !claimed.blades.iter().any(|c| c.0 == f.0))
        .collect();
    let ids: Vec<BladeId> = new.iter().map(|f| f.0).collect();
    let results = reserve_blocking(dev, &ids, ReserveCmd::Set, &claimed.macs)?;
    let mut refused = Vec::new();
    for (f, r) in new.into_iter().zip(results) {
        match r {
            Ok(_) => {
                log(format!("{}: reserved (found by its superblock)", f.1));
                // Its read succeeded, so its list was empty or ours.
                claimed.blades.push((f.0, f.1.clone(), Vec::new()));
            }
            Err(ReserveError::Held(h)) => refused.push(crate::core::held_by(&f.1, &h)),
            Err(e) => refused.push(format!("{}: {e}", f.1)),
        }
    }
    if !refused.is_empty() {
        bail!("cannot reserve every blade:\n  {}", refused.join("\n  "));
    }
    Ok(())
}

/// Sends `cmd` with `macs` to every blade of `blades` and waits for all answers
/// (results in the same order).
fn reserve_blocking(
    dev: &mut Devices,
    blades: &[BladeId],
    cmd: ReserveCmd,
    macs: &[Mac],
) -> anyhow::Result<Vec<Result<Vec<Mac>, ReserveError>>> {
    let Some(b) = dev.backend.as_mut() else {
        return Ok(Vec::new());
    };
    let mut results = send_reserves(b.pool_mut(), Instant::now(), blades, cmd, macs);
    let deadline = Instant::now() + RESERVE_TIMEOUT;
    let mut events = Vec::new();
    while results.iter().any(Option::is_none) {
        if Instant::now() >= deadline {
            bail!("reserve requests did not finish within {RESERVE_TIMEOUT:?}");
        }
        b.turn(&mut dev.ring, &mut events, Some(deadline))?;
        while b.pool_mut().poll_event().is_some() {}
        while let Some(c) = b.pool_mut().poll_reserve() {
            if let Some(slot) = results.get_mut(c.user as usize) {
                *slot = Some(c.result);
            }
        }
    }
    Ok(results.into_iter().flatten().collect())
}
