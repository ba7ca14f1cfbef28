//! Starting the appliance in the simulator: the configuration a seed draws, the
//! first start (arrays created on blank blades, as `aoeraid create` does) and every
//! restart after a crash (arrays assembled from the superblocks on the members,
//! as `aoeraid run` does), each ending in a real `core::Core`. Two appliances can
//! run on the same blades (the HA pair: A is 0, B is 1, each with its own MACs);
//! a start claims its blades by reservation as `daemon/claim.rs` does.

use super::blades::Blade;
use crate::config::{check_str, Config, ConsistencyPolicy, Integrity, MemberAddr};
use crate::core::{
    assembly, plan_claim, send_reserves, start_volumes, unused_spares, Array, Assembled, Candidate,
    ClaimMode, Core, CoreParts, ExportDef, Exports, Host, MemberMap, NoObserver, Ownership, Spare,
    SpareGroups, SpareOrigin,
};
use crate::daemon::create::engine_level;
use aoe_initiator::{BladeId, BladeState, Pool, PoolConfig, ReserveCmd, ReserveError};
use aoe_target::{ExportState, SharedExport};
use aoe_wire::Mac;
use raid_engine::sim::Rng;
use raid_engine::sim::SimLayout;
use raid_engine::{ArrayConfig, MemberSpec};
use raid_engine::{Engine, MemberError, SECTOR};
use std::path::Path;
use std::time::{Duration, Instant};

/// Sectors of every blade: the engine's metadata area and 4 MiB of data.
pub(crate) const BLADE_SECTORS: u64 = 2048 + 8192;
/// Front-end MAC of appliance `who` of the pair.
pub(crate) fn front_mac(who: usize) -> Mac {
    Mac([0x02, 0xFE, 0, 0, 0, 1 + who as u8])
}

/// Back-end MAC of appliance `who` of the pair: what its reservations list.
pub(crate) fn back_mac(who: usize) -> Mac {
    Mac([0x02, 0xBE, 0, 0, 0, 1 + who as u8])
}

/// Which appliance of the pair `mac` (front or back) belongs to.
pub(crate) fn appliance_of(mac: Mac) -> Option<usize> {
    (0..2).find(|&w| mac == front_mac(w) || mac == back_mac(w))
}
pub(crate) const MTU: u32 = 9000;
pub(crate) const EXPORT: (u16, u8) = (7, 0);
pub(crate) const VOLUME: &str = "vol";
/// The array `grow` appends to the volume.
pub(crate) const GROW_ARRAY: &str = "more";
pub(crate) const SPARE_GROUP: &str = "pool";

/// The host of the simulated appliance: no files, UUIDs from the seed.
pub(crate) struct SimHost(pub(crate) Rng);

impl Host for SimHost {
    fn open_file(&mut self, path: &Path) -> Result<(usize, u64), String> {
        Err(format!("{}: the simulator has blades only", path.display()))
    }
    fn random_uuid(&mut self) -> Result<[u8; 16], String> {
        let mut u = [0u8; 16];
        self.0.fill(&mut u);
        Ok(u)
    }
}

/// The configuration of a run: one exported volume over the layout's arrays, a
/// spare group, an unexported RAID 1 for `grow`.
pub(crate) fn config(layout: SimLayout, rng: &mut Rng, integrity: bool) -> Config {
    let chunk = ["4KiB", "8KiB", "32KiB"][rng.below(3) as usize];
    let region = ["64KiB", "256KiB", "1MiB"][rng.below(3) as usize];
    let mut shelf = 0u16;
    let mut blades = |n: usize| -> String {
        let v: Vec<String> = (0..n)
            .map(|_| {
                shelf += 1;
                format!("e{shelf}.0")
            })
            .collect();
        v.join(", ")
    };
    let integ = if integrity { "crc32c" } else { "none" };
    let array = |name: &str, level: &str, members: String, group: bool| {
        format!(
            "  - {{name: {name}, level: {level}, chunk: {chunk}, members: [{members}], \
             integrity: {integ}, bitmap: {{region: {region}}}, \
             rebuild: {{min: 200MB/s, max: 1GB/s}}{}}}\n",
            if group {
                format!(", spare_group: {SPARE_GROUP}")
            } else {
                String::new()
            }
        )
    };
    // The volume's arrays: (level, members, in the spare group).
    let volume_arrays: &[(&str, usize, bool)] = match layout {
        SimLayout::Raid0 => &[("raid0", 3, false)],
        SimLayout::Raid1 => &[("raid1", 2 + rng.below(2) as usize, true)],
        SimLayout::Raid10 => &[("raid10", 4, true)],
        SimLayout::Raid5 => &[("raid5", 4, true)],
        SimLayout::Raid6 => &[("raid6", 4 + rng.below(2) as usize, true)],
        SimLayout::Concat => &[("raid1", 2, true), ("raid5", 3, true)],
    };
    let mut arrays = String::new();
    let mut names = Vec::new();
    for (i, &(level, n, group)) in volume_arrays.iter().enumerate() {
        let name = format!("a{i}");
        arrays += &array(&name, level, blades(n), group);
        names.push(name);
    }
    arrays += &array(GROW_ARRAY, "raid1", blades(2), true);
    let spares = blades(1);
    let yaml = format!(
        "appliance: {{name: sim}}\n\
         backend: {{interfaces: [back0], dead_after: 1s}}\n\
         frontend: {{interfaces: [front0]}}\n\
         spare_groups: {{{SPARE_GROUP}: [{spares}]}}\n\
         arrays:\n{arrays}\
         volumes:\n  - {{name: {VOLUME}, arrays: [{}], export: {{shelf: {}, slot: {}}}}}\n",
        names.join(", "),
        EXPORT.0,
        EXPORT.1
    );
    match check_str(&yaml, "sim.yaml", false) {
        Ok(c) => c.config,
        Err(e) => panic!("the simulator's configuration is refused: {e}\n{yaml}"),
    }
}

/// Appliance `who`'s back-end pool that found every live blade, exchanging frames
/// with them directly (a start is not where the wire's faults are exercised).
/// Returns the pool and the virtual time it took.
pub(crate) fn discover(
    cfg: &Config,
    blades: &mut [Blade],
    who: usize,
    base: Instant,
    now: u64,
) -> (Pool, u64) {
    let mut pool = Pool::new(PoolConfig {
        dead_time: cfg.backend.dead_after.0,
        ..PoolConfig::default()
    });
    pool.add_interface("back0", back_mac(who), MTU);
    pool.discover();
    let want = blades.iter().filter(|b| !b.disk.dead).count();
    let now = exchange(&mut pool, blades, base, now, |pool| {
        pool.blade_ids()
            .filter(|&b| pool.blade_state(b) == Some(BladeState::Up))
            .count()
            >= want
    });
    (pool, now)
}

/// Claims the blades of `wanted` that `pool` found, as `aoeraid run` does before
/// its first read (`daemon/claim.rs`, the decisions `core::plan_claim`'s): a plain
/// start reads every reserve list and refuses when another appliance holds a
/// blade (`Err`: each such blade and its holders); a takeover force-sets them.
/// Returns the claim the core keeps and the virtual time it took.
pub(crate) fn claim(
    wanted: &[MemberAddr],
    pool: &mut Pool,
    blades: &mut [Blade],
    mode: ClaimMode,
    base: Instant,
    now: u64,
) -> Result<(Ownership, u64), Vec<String>> {
    let macs: Vec<Mac> = pool.interfaces().iter().map(|i| i.mac).collect();
    let found: Vec<(BladeId, String)> = wanted
        .iter()
        .filter_map(|m| match *m {
            MemberAddr::Blade { shelf, slot } => {
                pool.find(shelf, slot).map(|id| (id, m.to_string()))
            }
            MemberAddr::File(_) => None,
        })
        .collect();
    let ids: Vec<BladeId> = found.iter().map(|f| f.0).collect();
    let names: Vec<String> = found.into_iter().map(|f| f.1).collect();
    let (lists, now) = reserve_all(pool, blades, &ids, ReserveCmd::Read, &[], base, now);
    let lists: Vec<Vec<Mac>> = lists.into_iter().map(Result::unwrap_or_default).collect();
    let cmds = plan_claim(mode, &names, &lists, &macs)?;
    let cmd = cmds.first().copied().unwrap_or(ReserveCmd::Set);
    let (results, now) = reserve_all(pool, blades, &ids, cmd, &macs, base, now);
    let refused: Vec<String> = results
        .iter()
        .zip(&names)
        .filter_map(|(r, n)| r.as_ref().err().map(|e| format!("{n}: {e}")))
        .collect();
    if !refused.is_empty() {
        return Err(refused);
    }
    let at = base + Duration::from_nanos(now);
    let owners = Ownership::new(macs, ids, at);
    let owners = match mode {
        ClaimMode::Takeover => owners.fencing(&lists),
        ClaimMode::Plain => owners,
    };
    Ok((owners, now))
}

/// Sends `cmd` with `macs` to every blade of `ids` and waits for the answers (in
/// the same order; one that never came is `BladeDown`).
fn reserve_all(
    pool: &mut Pool,
    blades: &mut [Blade],
    ids: &[BladeId],
    cmd: ReserveCmd,
    macs: &[Mac],
    base: Instant,
    now: u64,
) -> (Vec<Result<Vec<Mac>, ReserveError>>, u64) {
    let at = base + Duration::from_nanos(now);
    let mut results = send_reserves(pool, at, ids, cmd, macs);
    let now = exchange(pool, blades, base, now, |pool| {
        while let Some(c) = pool.poll_reserve() {
            if let Some(r) = results.get_mut(c.user as usize) {
                *r = Some(c.result);
            }
        }
        results.iter().all(Option::is_some)
    });
    let results = results
        .into_iter()
        .map(|r| r.unwrap_or(Err(ReserveError::BladeDown)))
        .collect();
    (results, now)
}

/// Runs `pool` against the blades directly (no wire) until `done` says so and
/// nothing is left to send, or 2 s passed. Returns the virtual time then.
fn exchange(
    pool: &mut Pool,
    blades: &mut [Blade],
    base: Instant,
    mut now: u64,
    mut done: impl FnMut(&mut Pool) -> bool,
) -> u64 {
    let end = now + 2_000_000_000;
    let mut buf = vec![0u8; 9216];
    loop {
        let at = base + Duration::from_nanos(now);
        let mut frames = Vec::new();
        while let Some(t) = pool.poll_transmit(at, &mut buf) {
            frames.push(buf[..t.len].to_vec());
        }
        for f in &frames {
            for b in blades.iter_mut() {
                if let Some(r) = b.deliver(now, f, true) {
                    pool.handle_frame(at, 0, &r);
                }
            }
        }
        if (done(pool) && frames.is_empty()) || now >= end {
            while pool.poll_event().is_some() {}
            return now;
        }
        if frames.is_empty() {
            let next = pool.poll_timeout().map_or(now + 1_000_000, |t| {
                t.saturating_duration_since(base).as_nanos() as u64
            });
            now = next.max(now + 1_000);
            pool.handle_timeout(base + Duration::from_nanos(now));
        }
    }
}

/// The first start: every array created on blank blades.
pub(crate) fn create(
    cfg: &Config,
    who: usize,
    pool: Pool,
    host: &mut SimHost,
    assume_clean: bool,
    now: Instant,
) -> Result<Core, String> {
    let mut members = MemberMap::default();
    let mut ready = Vec::new();
    for spec in &cfg.arrays {
        let mut list = Vec::new();
        let mut specs = |ms: &[MemberAddr], list: &mut Vec<_>| -> Result<Vec<MemberSpec>, String> {
            ms.iter()
                .map(|m| {
                    let loc = members.open(m, Some(&pool), host)?;
                    list.push((m.clone(), loc));
                    Ok(MemberSpec {
                        uuid: host.random_uuid()?,
                        size_sectors: members.sectors(loc, Some(&pool)),
                        shelf: m.shelf().map(u32::from),
                    })
                })
                .collect()
        };
        let ms = specs(&spec.members, &mut list)?;
        let spares = specs(&spec.spares, &mut list)?;
        let level = engine_level(spec).map_err(|e| e.to_string())?;
        let mut ac = ArrayConfig::new(&spec.name, host.random_uuid()?, level, ms);
        ac.spares = spares;
        ac.chunk_sectors = (spec.chunk().0 / SECTOR as u64) as u32;
        ac.bitmap_region_sectors = (spec.bitmap.region.0 / SECTOR as u64).max(1);
        ac.integrity = spec.integrity == Integrity::Crc32c;
        ac.ppl = spec.consistency_policy == ConsistencyPolicy::Ppl && level.parity() > 0;
        ac.assume_clean = assume_clean;
        let e = Engine::create(&ac).map_err(|e| format!("array {}: {e}", spec.name))?;
        ready.push(Assembled {
            engine: e,
            array: Array::new(spec.name.clone(), list, spec.spare_group.clone()),
        });
    }
    build(cfg, who, pool, members, ready, host, now)
}

/// A restart: every array assembled from the superblocks its members carry
/// (`superblock` reads one, None for a blade that does not answer). `extra`:
/// blades on the network, some maybe carrying an array's superblock that the
/// configuration does not list (added by operator commands); offered to
/// assembly as `aoeraid run` offers the blades it finds (`core::assembly`).
pub(crate) fn assemble_all(
    cfg: &Config,
    who: usize,
    pool: Pool,
    superblock: &dyn Fn(&MemberAddr) -> Option<Vec<u8>>,
    extra: &[MemberAddr],
    host: &mut dyn Host,
    now: Instant,
) -> Result<Core, String> {
    let mut members = MemberMap::default();
    let mut read = |a: &MemberAddr, host: &mut dyn Host| {
        let Ok(loc) = members.open(a, Some(&pool), host) else {
            return Candidate::absent(a.clone());
        };
        Candidate {
            addr: a.clone(),
            loc: Some(loc),
            superblock: superblock(a).ok_or(MemberError::Gone),
            sectors: members.sectors(loc, Some(&pool)),
        }
    };
    let listed_anywhere = cfg.members();
    let mut ready = Vec::new();
    for spec in &cfg.arrays {
        let (addrs, declared) = assembly::listed(cfg, spec);
        let listed = addrs.iter().map(|a| read(a, host)).collect();
        let found = extra
            .iter()
            .filter(|b| !listed_anywhere.contains(b))
            .map(|a| read(a, host))
            .filter(|c| c.loc.is_some())
            .collect();
        let p = assembly::plan_array(spec, listed, declared, found, false)?;
        let e = Engine::assemble(&p.plan).map_err(|e| format!("array {}: {e}", spec.name))?;
        ready.push(Assembled {
            engine: e,
            array: Array::new(spec.name.clone(), p.members, spec.spare_group.clone())
                .assembled(p.verdicts),
        });
    }
    build(cfg, who, pool, members, ready, host, now)
}

/// Volumes, spare groups and the export around the arrays, then the core.
fn build(
    cfg: &Config,
    who: usize,
    pool: Pool,
    mut members: MemberMap,
    mut ready: Vec<Assembled>,
    host: &mut dyn Host,
    now: Instant,
) -> Result<Core, String> {
    for a in &mut ready {
        if let Some(s) = cfg.array(&a.array.name) {
            a.engine
                .set_sync_rates(s.rebuild.min.kib_per_sec(), s.rebuild.max.kib_per_sec());
        }
    }
    let mut spares = Vec::new();
    for g in &cfg.spare_groups.0 {
        let mut avail = Vec::new();
        for m in unused_spares(&g.members, &ready) {
            if let Ok(loc) = members.open(m, Some(&pool), host) {
                avail.push(Spare {
                    addr: m.clone(),
                    loc,
                    uuid: host.random_uuid()?,
                    origin: SpareOrigin::Config,
                });
            }
        }
        spares.push((g.name.clone(), avail));
    }
    let vols = start_volumes(cfg, ready)?;
    let mut exports = Vec::new();
    for (i, v) in vols.iter().enumerate() {
        if let Some((shelf, slot)) = v.export {
            let sectors = v.concat.volume_sectors();
            exports.push(ExportDef {
                shelf,
                slot,
                read_only: v.read_only,
                shared: SharedExport::new(
                    ExportState::with_random_serial(u64::from(shelf)),
                    sectors,
                ),
                volume: i,
                next_record: 1,
            });
        }
    }
    let exports = Exports::new(&[(front_mac(who), MTU)], exports)?;
    Ok(Core::new(
        CoreParts {
            pool: Some(pool),
            volumes: vols,
            spares: SpareGroups::new(spares),
            members,
            exports: Some(exports),
            config: cfg.clone(),
            observer: Box::new(NoObserver),
        },
        now,
    ))
}
