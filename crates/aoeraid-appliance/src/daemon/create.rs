//! `aoeraid create`: write fresh superblocks (and a cleared bitmap) on every member
//! of every declared array, after checking that none of them is in use.
//!
//! The superblocks are written by the RAID engine itself (`Engine::create` formats
//! its members through ordinary member I/O), executed by the same io_uring member
//! path the daemon uses, so what `create` writes is byte for byte what the daemon
//! would.

use super::claim::claim;
use super::inuse::{in_use_reason, PROBE_SECTORS};
use super::members::Devices;
use crate::config::{self, ArraySpec, Config, ConsistencyPolicy, Integrity, MemberAddr};
use crate::core::ClaimMode;
use crate::core::Location;
use anyhow::{anyhow, bail};
use raid_engine::{ArrayConfig, MemberSpec};
use raid_engine::{Engine, MemberIo, MemberOp, SECTOR};
use std::time::{Duration, Instant};

const IO_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CreateOptions {
    /// Overwrite members that look in use.
    pub(crate) force: bool,
    /// Skip the initial resync (members known to be zeroed or identical).
    pub(crate) assume_clean: bool,
}

/// Maps the config's level to the engine's.
pub(crate) fn engine_level(spec: &ArraySpec) -> anyhow::Result<raid_engine::Level> {
    Ok(match spec.level {
        config::Level::Raid(level) => level,
        config::Level::Linear => bail!(
            "array {}: level linear is not an engine level; concatenate arrays in a volume \
             (volumes.arrays) instead",
            spec.name
        ),
    })
}

/// A random 16-byte id (member and array UUIDs).
pub(crate) fn random_uuid() -> anyhow::Result<[u8; 16]> {
    let mut u = [0u8; 16];
    aoe_uring::sys::fill_random(&mut u)?;
    // RFC 4122 version 4 / variant bits, so the ids read as ordinary UUIDs.
    u[6] = (u[6] & 0x0f) | 0x40;
    u[8] = (u[8] & 0x3f) | 0x80;
    Ok(u)
}

/// Runs `create` for every array of `cfg`; returns the lines to print. The blades
/// are reserved for this host's back-end MACs while they are probed and written
/// (refused, naming them, if another appliance holds any); those that were free
/// are released again at the end, written or not.
pub(crate) fn create(cfg: &Config, opts: CreateOptions) -> anyhow::Result<Vec<String>> {
    let mut dev = Devices::new()?;
    let blades = dev.discover_config(cfg)?;
    let mut out = Vec::new();
    let claimed = claim(&mut dev, &blades, ClaimMode::Plain, &mut |l| out.push(l))?;
    let created = create_claimed(&mut dev, cfg, opts);
    let released = claimed.release_free(&mut dev);
    out.extend(created?);
    released?;
    Ok(out)
}

fn create_claimed(
    dev: &mut Devices,
    cfg: &Config,
    opts: CreateOptions,
) -> anyhow::Result<Vec<String>> {
    let members = cfg.members();
    let mut located = Vec::new();
    for m in &members {
        if let Some(l) = dev.open(m) {
            located.push((m.clone(), l));
        }
    }
    let mut refusals: Vec<String> = dev
        .problems
        .iter()
        .map(|(m, why)| format!("{m}: {why}"))
        .collect();
    if !refusals.is_empty() {
        bail!("cannot reach every member:\n  {}", refusals.join("\n  "));
    }
    // Probe every head in one batch.
    let probes: Vec<(Location, MemberIo)> = located
        .iter()
        .map(|(_, l)| {
            let sectors = (PROBE_SECTORS as u64).min(dev.sectors(*l)) as u32;
            (
                *l,
                MemberIo {
                    id: 0,
                    member: 0,
                    op: MemberOp::Read,
                    offset: 0,
                    sectors,
                    data: Vec::new(),
                },
            )
        })
        .collect();
    let heads = dev.run_blocking(probes, IO_TIMEOUT)?;
    for ((m, _), head) in located.iter().zip(&heads) {
        match head {
            Err(e) => refusals.push(format!("{m}: cannot read its first sectors ({e:?})")),
            Ok(bytes) => {
                if let Some(why) = in_use_reason(bytes) {
                    refusals.push(format!("{m}: {why}"));
                }
            }
        }
    }
    let mut out = Vec::new();
    if !refusals.is_empty() {
        if !opts.force {
            bail!(
                "refusing to create: {} member{} in use (re-run with --force to overwrite):\n  {}",
                refusals.len(),
                if refusals.len() == 1 {
                    " looks"
                } else {
                    "s look"
                },
                refusals.join("\n  ")
            );
        }
        for r in &refusals {
            out.push(format!("overwriting (--force) {r}"));
        }
    }
    // Group spares are left blank (the daemon formats one when it takes it); with
    // --force, clear what made them look used.
    let group_spares: Vec<&MemberAddr> = cfg
        .spare_groups
        .0
        .iter()
        .flat_map(|g| g.members.iter())
        .collect();
    if opts.force {
        let mut wipes = Vec::new();
        for ((m, l), head) in located.iter().zip(&heads) {
            if group_spares.contains(&m) && matches!(head, Ok(b) if in_use_reason(b).is_some()) {
                let sectors = (PROBE_SECTORS as u64).min(dev.sectors(*l)) as u32;
                wipes.push((
                    *l,
                    MemberIo {
                        id: 0,
                        member: 0,
                        op: MemberOp::Write,
                        offset: 0,
                        sectors,
                        data: vec![0; sectors as usize * SECTOR],
                    },
                ));
            }
        }
        for r in dev.run_blocking(wipes, IO_TIMEOUT)? {
            r.map_err(|e| anyhow!("clearing a group spare failed: {e:?}"))?;
        }
    }
    for spec in &cfg.arrays {
        out.push(create_array(dev, spec, opts)?);
    }
    // Durable before we say so.
    let flushes: Vec<(Location, MemberIo)> = located
        .iter()
        .map(|(_, l)| {
            (
                *l,
                MemberIo {
                    id: 0,
                    member: 0,
                    op: MemberOp::Flush,
                    offset: 0,
                    sectors: 0,
                    data: Vec::new(),
                },
            )
        })
        .collect();
    for (r, (m, _)) in dev
        .run_blocking(flushes, IO_TIMEOUT)?
        .into_iter()
        .zip(&located)
    {
        r.map_err(|e| anyhow!("{m}: flush failed: {e:?}"))?;
    }
    Ok(out)
}

fn create_array(
    dev: &mut Devices,
    spec: &ArraySpec,
    opts: CreateOptions,
) -> anyhow::Result<String> {
    let level = engine_level(spec)?;
    let spec_of = |dev: &Devices, m: &MemberAddr| -> anyhow::Result<(MemberSpec, Location)> {
        let loc = *dev
            .by_addr
            .get(m)
            .ok_or_else(|| anyhow!("{m}: not opened"))?;
        Ok((
            MemberSpec {
                uuid: random_uuid()?,
                size_sectors: dev.sectors(loc),
                shelf: m.shelf().map(u32::from),
            },
            loc,
        ))
    };
    let mut locs = Vec::new();
    let mut members = Vec::new();
    for m in &spec.members {
        let (s, l) = spec_of(dev, m)?;
        members.push(s);
        locs.push(l);
    }
    let mut spares = Vec::new();
    for m in &spec.spares {
        let (s, l) = spec_of(dev, m)?;
        spares.push(s);
        locs.push(l);
    }
    let mut ac = ArrayConfig::new(&spec.name, random_uuid()?, level, members);
    ac.spares = spares;
    ac.chunk_sectors = u32::try_from(spec.chunk().0 / SECTOR as u64)
        .map_err(|_| anyhow!("array {}: chunk {} too large", spec.name, spec.chunk()))?;
    ac.bitmap_region_sectors = (spec.bitmap.region.0 / SECTOR as u64).max(1);
    ac.integrity = spec.integrity == Integrity::Crc32c;
    ac.ppl = spec.consistency_policy == ConsistencyPolicy::Ppl && level.parity() > 0;
    ac.assume_clean = opts.assume_clean;
    ac.force_placement = spec.allow_same_shelf_mirrors || opts.force;
    let mut engine = Engine::create(&ac).map_err(|e| anyhow!("array {}: {e}", spec.name))?;
    let sectors = engine.volume_sectors();
    // Run the engine's formatting writes; stop as soon as it reports ready (what
    // follows — the initial resync — is the daemon's job).
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut outstanding = 0usize;
    loop {
        while let Some(io) = engine.poll_member_io() {
            if engine.is_ready() && outstanding == 0 {
                break;
            }
            let loc = locs[io.member];
            let id = io.id;
            dev.submit(loc, io, id, Instant::now());
            outstanding += 1;
        }
        if engine.is_ready() && outstanding == 0 {
            break;
        }
        if Instant::now() >= deadline {
            bail!("array {}: writing superblocks timed out", spec.name);
        }
        for (id, r) in dev.wait(Duration::from_millis(100))? {
            outstanding -= 1;
            if let Err(e) = &r {
                bail!("array {}: writing metadata failed ({e:?})", spec.name);
            }
            engine.complete_member_io(id, r);
        }
    }
    let names: Vec<String> = spec.members.iter().map(|m| m.to_string()).collect();
    Ok(format!(
        "created array {} ({}, chunk {}, {} members: {}{}) — {} MiB usable{}",
        spec.name,
        spec.level,
        spec.chunk(),
        spec.members.len(),
        names.join(" "),
        if spec.spares.is_empty() {
            String::new()
        } else {
            format!(", {} spares", spec.spares.len())
        },
        (sectors * SECTOR as u64) >> 20,
        if opts.assume_clean {
            ""
        } else {
            "; the daemon resyncs it on first start"
        }
    ))
}
