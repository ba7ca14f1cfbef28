//! The core's policies, driven without root: simulated blades (the initiator's
//! `SimBlade`) answer the core's back-end frames at once, time is virtual.

use super::*;
use crate::config::check_str;
use crate::core::ownership;
use crate::daemon::create::engine_level;
use aoe_initiator::sim::{Sim, SimBlade};
use aoe_initiator::{BladeState, PoolConfig};
use aoeraid_lab as lab;
use raid_engine::superblock::{Superblock, SB_BYTES, SB_OFFSET};
use raid_engine::{ArrayConfig, MemberSpec};
use raid_engine::{Engine, MemberState, VolumeRequest};
use std::path::Path;

/// Member size: the engine's metadata area plus a little data.
const SECTORS: u64 = 2048 + 4096;
const DEAD: Duration = Duration::from_secs(1);

/// Host of a rig: no file members, UUIDs from a counter.
struct TestHost(u8);

impl Host for TestHost {
    fn open_file(&mut self, path: &Path) -> Result<(usize, u64), String> {
        Err(format!("{}: no files in this rig", path.display()))
    }
    fn random_uuid(&mut self) -> Result<[u8; 16], String> {
        self.0 += 1;
        Ok([self.0; 16])
    }
}

struct Rig {
    core: Core,
    blades: Vec<SimBlade>,
    now: Instant,
    host: TestHost,
    notices: Vec<Notice>,
    buf: Vec<u8>,
}

fn addr(s: &str) -> MemberAddr {
    s.parse().unwrap()
}

/// The appliance's config from a test's arrays, volumes and spare groups (the rig
/// names the appliance and its interfaces), as the daemon reads it from a file.
fn checked(mut c: lab::Config) -> Config {
    c.appliance.name = "t".into();
    c.backend.interfaces = vec!["eth1".into()];
    c.frontend.interfaces = vec!["eth2".into()];
    check_str(&c.to_yaml(), "test.yaml", false)
        .unwrap_or_else(|e| panic!("{e}"))
        .config
}

/// `array` exported alone as volume `vol` (e7.0).
fn exported(array: lab::Array) -> lab::Config {
    let volume = lab::Volume::new("vol", &[&array.name], 7, 0);
    lab::Config::default().array(array).volume(volume)
}

/// A core over the arrays, volumes and spare groups of `c`, every `eS.L` it
/// names a simulated blade that is up. Arrays are created clean.
fn rig(c: lab::Config) -> Rig {
    rig_with(c, &[])
}

/// [`rig`] with blades `extra` on the network too, which the configuration does
/// not name.
fn rig_with(c: lab::Config, extra: &[&str]) -> Rig {
    let cfg = checked(c);
    let mut sim = Sim::new(
        PoolConfig {
            dead_time: DEAD,
            ..PoolConfig::default()
        },
        1,
        9000,
        7,
    );
    let names = cfg.members();
    for m in names
        .iter()
        .chain(&extra.iter().map(|e| addr(e)).collect::<Vec<_>>())
    {
        let MemberAddr::Blade { shelf, slot } = m else {
            panic!("{m}: blades only");
        };
        let mut b = SimBlade::new(*shelf, *slot, SECTORS);
        b.sector_count = 16;
        sim.attach(b, &[0]);
    }
    sim.discover_all();
    let pool = std::mem::replace(&mut sim.pool, Pool::new(PoolConfig::default()));
    let blades: Vec<SimBlade> = sim.blades.drain(..).map(|a| a.blade).collect();
    let mut members = MemberMap::default();
    let mut host = TestHost(0);
    let mut open = |m: &MemberAddr, host: &mut TestHost| {
        let loc = members.open(m, Some(&pool), host).unwrap();
        (loc, host.random_uuid().unwrap())
    };
    let mut engines = Vec::new();
    for spec in &cfg.arrays {
        let mut list = Vec::new();
        let mut specs = |ms: &[MemberAddr], host: &mut TestHost, list: &mut Vec<_>| {
            ms.iter()
                .map(|m| {
                    let (loc, uuid) = open(m, host);
                    list.push((m.clone(), loc));
                    MemberSpec {
                        uuid,
                        size_sectors: SECTORS,
                        shelf: m.shelf().map(u32::from),
                    }
                })
                .collect::<Vec<_>>()
        };
        let ms = specs(&spec.members, &mut host, &mut list);
        let spares = specs(&spec.spares, &mut host, &mut list);
        let mut ac = ArrayConfig::new(&spec.name, [0xA0; 16], engine_level(spec).unwrap(), ms);
        ac.spares = spares;
        ac.chunk_sectors = (spec.chunk().0 / SECTOR as u64) as u32;
        ac.bitmap_region_sectors = (spec.bitmap.region.0 / SECTOR as u64).max(1);
        ac.assume_clean = true;
        ac.force_placement = true;
        let e = Engine::create(&ac).unwrap();
        engines.push(Assembled {
            engine: e,
            array: Array::new(spec.name.clone(), list, spec.spare_group.clone()),
        });
    }
    let vols = start_volumes(&cfg, engines).unwrap();
    let mut groups = Vec::new();
    for g in &cfg.spare_groups.0 {
        let spares = g
            .members
            .iter()
            .map(|m| {
                let (loc, uuid) = open(m, &mut host);
                Spare {
                    addr: m.clone(),
                    loc,
                    uuid,
                    origin: crate::core::SpareOrigin::Config,
                }
            })
            .collect();
        groups.push((g.name.clone(), spares));
    }
    let now = sim.now;
    let core = Core::new(
        CoreParts {
            pool: Some(pool),
            volumes: vols,
            spares: SpareGroups::new(groups),
            members,
            exports: None,
            config: cfg,
            observer: Box::new(NoObserver),
        },
        now,
    );
    let mut r = Rig {
        core,
        blades,
        now,
        host,
        notices: Vec::new(),
        buf: vec![0; 9216],
    };
    r.settle();
    r
}

impl Rig {
    /// Moves frames between the core and the blades until nothing moves.
    fn settle(&mut self) {
        loop {
            while let Some(n) = self.core.poll_notice() {
                self.notices.push(n);
            }
            let mut frames = Vec::new();
            while let Some(t) = self.core.poll_back_transmit(self.now, &mut self.buf) {
                frames.push(self.buf[..t.len].to_vec());
            }
            if frames.is_empty() {
                return;
            }
            for f in frames {
                for b in &mut self.blades {
                    if let Some(reply) = b.respond(&f) {
                        self.core.handle_back_frame(self.now, 0, &reply);
                    }
                }
            }
        }
    }

    /// Lets `d` of virtual time pass, running every timeout on the way.
    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            self.settle();
            let t = self.core.poll_timeout().max(self.now);
            self.now = t.min(end);
            self.core.handle_timeout(self.now);
            if t >= end {
                self.settle();
                return;
            }
        }
    }

    fn blade(&mut self, name: &str) -> &mut SimBlade {
        let MemberAddr::Blade { shelf, slot } = addr(name) else {
            unreachable!()
        };
        self.blades
            .iter_mut()
            .find(|b| b.shelf == shelf && b.slot == slot)
            .unwrap()
    }

    /// State of `member` in `array` (its newest entry).
    fn state(&self, array: &str, member: &str) -> Option<MemberState> {
        let (v, a) = volumes::find_array(&self.core.vols, array)?;
        let m = self.core.vols[v].arrays[a].index_of(&addr(member))?;
        self.core.vols[v].member_state(a, m)
    }

    /// Writes to volume `v` so that every member has I/O in flight.
    fn write(&mut self, v: usize, id: u64) {
        self.fill_at(v, id, 0, 0x5a);
    }

    /// Writes `fill` to sectors `[offset, offset + 8)` of volume `v` and lets the I/O run.
    fn fill_at(&mut self, v: usize, id: u64, offset: u64, fill: u8) {
        self.core.vols[v]
            .concat
            .submit(VolumeRequest::write(id, offset, vec![fill; 8 * SECTOR]));
        self.core.dirty = true;
        self.settle();
    }

    /// `aoeraid add data MEMBER`.
    fn add(&mut self, member: &str) -> Reply {
        self.cmd(Command::Add {
            array: "data".into(),
            member: addr(member),
            force: false,
        })
    }

    fn cmd(&mut self, c: Command) -> Reply {
        match self.core.command(self.now, &mut self.host, c) {
            Answer::Now(r) => {
                self.settle();
                r
            }
            Answer::Later(t) => {
                self.advance(Duration::from_millis(100));
                self.notices
                    .iter()
                    .find_map(|n| match n {
                        Notice::Reply(x, r) if *x == t => Some(r.clone()),
                        _ => None,
                    })
                    .expect("the command was answered")
            }
        }
    }

    /// The operator fails `member` of `array`.
    fn fail(&mut self, array: &str, member: &str) {
        let fail = Command::Fail {
            array: array.into(),
            member: addr(member),
        };
        self.cmd(fail).unwrap();
    }

    fn events(&self, kind: crate::events::EventKind) -> Vec<&Event> {
        self.notices
            .iter()
            .filter_map(|n| match n {
                Notice::Event(e) if e.kind == kind => Some(e),
                _ => None,
            })
            .collect()
    }

    fn logged(&self, needle: &str) -> bool {
        self.notices
            .iter()
            .any(|n| matches!(n, Notice::Log(_, l) if l.contains(needle)))
    }
}

/// Blades of the test mirrors.
const PAIR: [&str; 2] = ["e0.0", "e1.0"];

fn mirror() -> lab::Config {
    exported(lab::Array::raid1("data", &PAIR))
}

#[test]
fn a_silent_blade_fails_its_member_and_its_return_re_adds_it() {
    use crate::events::EventKind as K;
    let mut r = rig(mirror());
    assert_eq!(r.state("data", "e1.0"), Some(MemberState::Active));
    r.blade("e1.0").dead = true;
    r.write(0, 1);
    r.advance(DEAD * 3);
    assert_eq!(r.state("data", "e1.0"), Some(MemberState::Faulty));
    assert_eq!(r.state("data", "e0.0"), Some(MemberState::Active));
    let gone = r.events(K::DeviceDisappeared);
    assert_eq!(gone.len(), 1, "{:?}", r.notices);
    assert_eq!(gone[0].member.as_deref(), Some("e1.0"));

    r.blade("e1.0").dead = false;
    r.advance(Duration::from_secs(30));
    assert_eq!(r.events(K::DeviceReappeared).len(), 1, "{:?}", r.notices);
    assert_eq!(r.state("data", "e1.0"), Some(MemberState::Active));
    let pool = r.core.pool().unwrap();
    let id = pool.find(1, 0).unwrap();
    assert_eq!(pool.blade_state(id), Some(BladeState::Up));
}

/// A station that is not this appliance (another appliance's back-end MAC).
const OTHER: aoe_wire::Mac = aoe_wire::Mac([0x02, 0xBB, 0, 0, 0, 1]);

impl Rig {
    /// Every blade reserved for the rig's back-end MAC, as `aoeraid run` leaves them
    /// after its claim, and the core holding them.
    fn hold(&mut self) -> aoe_wire::Mac {
        let pool = self.core.pool().unwrap();
        let ours = pool.interfaces()[0].mac;
        let ids: Vec<_> = pool.blade_ids().collect();
        for b in &mut self.blades {
            b.reserve = vec![ours];
        }
        self.core
            .hold_blades(Ownership::new(vec![ours], ids, self.now));
        ours
    }

    fn reservation_lost(&self) -> bool {
        self.core.vols[0].reservation_lost
    }
}

#[test]
fn a_refused_write_stops_the_volume_for_good() {
    use crate::events::EventKind as K;
    let mut r = rig(mirror());
    r.hold();
    r.write(0, 1);
    assert!(!r.reservation_lost());
    // Another appliance took e1.0 over (Force Set).
    r.blade("e1.0").reserve = vec![OTHER];
    let before = r.blade("e0.0").writes;
    r.write(0, 2);
    assert!(r.reservation_lost());
    let lost = r.events(K::ReservationLost);
    assert_eq!(lost.len(), 1, "{:?}", r.notices);
    assert_eq!(lost[0].member.as_deref(), Some("e1.0"));
    // Nothing more reaches any member of the volume, the untaken blade included;
    // the member failures that follow are not reported as failures.
    let stopped = r.blade("e0.0").writes;
    r.write(0, 3);
    r.advance(Duration::from_secs(5));
    assert_eq!(r.blade("e0.0").writes, stopped, "no write after the loss");
    assert!(stopped <= before + 2, "at most the write in flight landed");
    assert!(r.events(K::Fail).is_empty(), "{:?}", r.notices);
    // Never forced back; the status names the holder (read after the refusal).
    assert_eq!(r.blade("e1.0").reserve, vec![OTHER]);
    let st = r.core.status(r.now);
    let e1 = st.blades.iter().find(|b| b.blade == "e1.0").unwrap();
    assert_eq!(
        e1.reservation,
        Some(crate::control::status::Reservation::Lost)
    );
    assert_eq!(e1.reserved_by, vec![OTHER.to_string()]);
    assert!(st.volumes[0].reservation_lost);
    assert!(st.reservation_refused >= 1);
    r.core.start_mark_clean();
    r.advance(Duration::from_secs(1));
    assert!(
        r.core.all_clean(),
        "a stopped volume does not hold up a stop"
    );
}

#[test]
fn the_periodic_set_finds_a_blade_taken_while_idle() {
    let mut r = rig(mirror());
    let ours = r.hold();
    // A quick vblade restart (never looked dead) empties the list: set again.
    r.blade("e0.0").restart();
    r.advance(ownership::REASSERT_EVERY * 2);
    assert_eq!(r.blade("e0.0").reserve, vec![ours]);
    assert!(!r.reservation_lost());
    // Taken while idle: the next Set is refused and the volume stops.
    r.blade("e0.0").reserve = vec![OTHER];
    r.advance(ownership::REASSERT_EVERY * 2);
    assert!(r.reservation_lost());
    let lost = r.events(crate::events::EventKind::ReservationLost);
    assert!(
        lost[0]
            .detail
            .as_deref()
            .is_some_and(|d| d.contains(&OTHER.to_string())),
        "{lost:?}"
    );
    assert_eq!(r.blade("e0.0").reserve, vec![OTHER]);
}

#[test]
fn a_returning_blade_is_set_before_its_member_rejoins() {
    let mut r = rig(mirror());
    let ours = r.hold();
    r.blade("e1.0").dead = true;
    r.write(0, 1);
    r.advance(DEAD * 3);
    assert_eq!(r.state("data", "e1.0"), Some(MemberState::Faulty));
    // It comes back restarted (empty list): Set again, then re-added.
    r.blade("e1.0").restart();
    r.blade("e1.0").dead = false;
    r.advance(Duration::from_secs(30));
    assert_eq!(r.blade("e1.0").reserve, vec![ours]);
    assert_eq!(r.state("data", "e1.0"), Some(MemberState::Active));
    assert!(!r.reservation_lost());

    // Away again, and another appliance claims it meanwhile: our Set (never a
    // Force Set) is refused and the member is not taken back; nothing is written.
    r.blade("e1.0").dead = true;
    r.write(0, 2);
    r.advance(DEAD * 3);
    let writes = r.blade("e1.0").writes;
    r.blade("e1.0").reserve = vec![OTHER];
    r.blade("e1.0").dead = false;
    r.advance(Duration::from_secs(30));
    assert_eq!(r.blade("e1.0").reserve, vec![OTHER]);
    assert_eq!(r.blade("e1.0").writes, writes);
    assert_eq!(
        r.blade("e1.0").reserved_refusals,
        0,
        "no I/O was even tried"
    );
    assert_eq!(r.state("data", "e1.0"), Some(MemberState::Faulty));
    assert!(r.reservation_lost());
}

/// Three mirrors in one volume: `a` with spare group `ga`, `b` with `gb`, `c` with none.
fn groups() -> lab::Config {
    lab::Config::default()
        .spare_group("ga", &["e9.0"])
        .spare_group("gb", &["e9.1"])
        .array(lab::Array::raid1("a", &PAIR).spare_group("ga"))
        .array(lab::Array::raid1("b", &["e0.1", "e1.1"]).spare_group("gb"))
        .array(lab::Array::raid1("c", &["e0.2", "e1.2"]))
        .volume(lab::Volume::new("vol", &["a", "b", "c"], 7, 0))
}

#[test]
fn a_degraded_array_takes_a_spare_of_its_own_group_only() {
    let mut r = rig(groups());
    // c has no group: it stays degraded, and nobody's spare moves.
    r.fail("c", "e1.2");
    assert_eq!(r.core.spares.available("ga"), 1);
    assert_eq!(r.core.spares.available("gb"), 1);
    // b is in gb: it gets e9.1, and ga keeps e9.0.
    r.fail("b", "e1.1");
    assert_eq!(r.core.spares.available("ga"), 1);
    assert_eq!(r.core.spares.available("gb"), 0);
    assert!(matches!(
        r.state("b", "e9.1"),
        Some(MemberState::Rebuilding | MemberState::Active)
    ));
    assert_eq!(r.state("a", "e9.0"), None);
    let moved = r.events(crate::events::EventKind::MoveSpare);
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0].array, "b");
    // A second failure in b finds its group empty: no spare from ga.
    r.advance(Duration::from_secs(30));
    assert_eq!(r.state("b", "e9.1"), Some(MemberState::Active));
    r.fail("b", "e0.1");
    assert_eq!(r.core.spares.available("ga"), 1);
    let status = r.core.status(r.now);
    let ga = status.spare_groups.iter().find(|g| g.name == "ga").unwrap();
    assert_eq!(ga.available, vec!["e9.0".to_string()]);
}

#[test]
fn a_returning_blade_whose_slot_a_spare_took_is_left_alone() {
    let mut r = rig(
        exported(lab::Array::raid1("data", &PAIR).spare_group("g")).spare_group("g", &["e2.0"])
    );
    r.blade("e1.0").dead = true;
    r.write(0, 1);
    r.advance(DEAD * 3);
    assert_eq!(r.state("data", "e1.0"), Some(MemberState::Faulty));
    r.advance(Duration::from_secs(30));
    assert_eq!(r.state("data", "e2.0"), Some(MemberState::Active));

    r.blade("e1.0").dead = false;
    r.advance(Duration::from_secs(5));
    assert_eq!(
        r.events(crate::events::EventKind::DeviceReappeared).len(),
        1
    );
    assert_eq!(r.state("data", "e1.0"), Some(MemberState::Faulty));
    assert!(
        r.logged("e1.0 is back but a spare replaced it"),
        "{:?}",
        r.notices
    );
    r.assert_refused("e1.0", "a spare replaced it");
    // The operator may take it back as a spare, saying it is to be overwritten.
    assert!(r.add("e1.0").unwrap_err().contains("--force"));
    let msg = r.forced(add_data("e1.0")).unwrap();
    assert!(msg.contains("as a spare"), "{msg}");
}

#[test]
fn grow_appends_a_standalone_array_once() {
    // `b` is in no volume: grow appends it to `vol`.
    let b = lab::Array::raid1("b", &["e0.1", "e1.1"]);
    let mut r = rig(exported(lab::Array::raid1("a", &PAIR)).array(b));
    let one = r.core.vols[0].concat.volume_sectors();
    assert!(one > 0);
    let grow_by_b = |r: &mut Rig, volume: &str| {
        r.cmd(Command::Grow {
            volume: volume.into(),
            array: "b".into(),
        })
    };
    let err = grow_by_b(&mut r, "nope").unwrap_err();
    assert!(err.contains("no volume named nope"), "{err}");
    let msg = grow_by_b(&mut r, "vol").unwrap();
    assert!(msg.contains("grown by array b"), "{msg}");
    assert_eq!(r.core.vols[0].concat.volume_sectors(), 2 * one);
    assert_eq!(r.core.vols[0].arrays.len(), 2);
    let err = grow_by_b(&mut r, "vol").unwrap_err();
    assert!(err.contains("already belongs to volume vol"), "{err}");
    // The grown volume still serves writes on both arrays, member I/O routed by
    // the arrays' new places.
    r.fill_at(0, 9, one, 0x5a);
    assert_eq!(r.state("b", "e0.1"), Some(MemberState::Active));
    assert!(r.blade("e0.1").writes > 0);
    assert!(r.blade("e1.1").writes > 0);
}

#[test]
fn reload_applies_live_changes_and_names_the_rest() {
    let mut r = rig(groups());
    let mut new = groups().spare_group("ga", &["e9.0", "e9.2"]);
    new.backend.dead_after = Some("3s".into());
    new.appliance.event_program = Some("/bin/true".into());
    new.appliance.event_timeout = Some("5s".into());
    new.arrays[2] = lab::Array::raid1("c", &["e0.2", "e1.2"])
        .chunk("1MiB")
        .spare_group("ga");
    // e9.2 must exist as a blade for the group to take it.
    r.blades.push({
        let mut b = SimBlade::new(9, 2, SECTORS);
        b.sector_count = 16;
        b
    });
    let pool = r.core.pool.as_mut().unwrap();
    pool.query(9, 2);
    r.advance(Duration::from_millis(100));
    let out = r.core.reload(r.now, &mut r.host, checked(new.clone()));
    let msg = out.reply.unwrap();
    assert_eq!(
        out.event_program,
        Some((Some("/bin/true".into()), Duration::from_secs(5)))
    );
    assert_eq!(
        r.core.pool().unwrap().config().dead_time,
        Duration::from_secs(3)
    );
    assert!(msg.contains("spare e9.2 added to ga"), "{msg}");
    assert!(msg.contains("array c: spare group Some(\"ga\")"), "{msg}");
    assert!(msg.contains("not applied: array c: chunk"), "{msg}");
    assert_eq!(r.core.spares.available("ga"), 2);
    let (v, a) = volumes::find_array(&r.core.vols, "c").unwrap();
    assert_eq!(r.core.vols[v].arrays[a].spare_group.as_deref(), Some("ga"));
    // The running config is the new one: the same file again changes nothing.
    let out = r.core.reload(r.now, &mut r.host, checked(new));
    assert_eq!(out.reply.unwrap(), "reloaded: nothing changed");
    assert!(out.event_program.is_none());
}

#[test]
fn a_shorter_dead_after_takes_effect_on_frames_already_out() {
    let mut r = rig(mirror());
    r.blade("e1.0").dead = true;
    r.write(0, 1);
    let mut shorter = mirror();
    shorter.backend.dead_after = Some("100ms".into());
    let out = r.core.reload(r.now, &mut r.host, checked(shorter));
    assert!(out.reply.unwrap().contains("dead_after 100ms"));
    r.advance(Duration::from_millis(300));
    assert_eq!(r.state("data", "e1.0"), Some(MemberState::Faulty));
}

// ---- blades that come back by themselves (rejoin.rs) ----

/// A mirror whose bitmap region (64 KiB, one chunk) is a small part of the data
/// area, so a bitmap resync is told apart from a whole rebuild.
fn small_regions() -> lab::Config {
    exported(
        lab::Array::raid1("data", &PAIR)
            .chunk("64KiB")
            .bitmap_region("64KiB"),
    )
}

impl Rig {
    /// The arrays clear their bitmaps and mark themselves clean, as a stop does,
    /// out of sync ones included (their bits stay). They are left clearing at
    /// once: restart after it for ordinary running.
    fn quiesce(&mut self) {
        self.core.start_mark_clean();
        self.advance(Duration::from_secs(1));
        assert!(self.core.all_clean(), "not clean: {:?}", self.notices);
    }

    /// The appliance restarts: every array assembled from what the blades carry
    /// (the configured ones and any other carrying its superblock), the blades
    /// named in `absent` not answering.
    fn restart(&mut self, absent: &[&str]) {
        let cfg = self.core.config.clone();
        let mut sim = Sim::new(
            PoolConfig {
                dead_time: DEAD,
                ..PoolConfig::default()
            },
            1,
            9000,
            7,
        );
        let gone: Vec<MemberAddr> = absent.iter().map(|a| addr(a)).collect();
        for mut b in self.blades.drain(..) {
            b.dead = gone.contains(&MemberAddr::Blade {
                shelf: b.shelf,
                slot: b.slot,
            });
            sim.attach(b, &[0]);
        }
        let live = sim.blades.iter().filter(|b| !b.blade.dead).count();
        sim.pool.discover();
        sim.run_until(Duration::from_secs(2), |s| {
            s.pool
                .blade_ids()
                .filter(|&b| s.pool.blade_state(b) == Some(BladeState::Up))
                .count()
                == live
        });
        let pool = std::mem::replace(&mut sim.pool, Pool::new(PoolConfig::default()));
        self.blades = sim.blades.drain(..).map(|a| a.blade).collect();
        let blades = &self.blades;
        let superblock = |a: &MemberAddr| {
            let b = blades
                .iter()
                .find(|b| !b.dead && addr(&format!("e{}.{}", b.shelf, b.slot)) == *a)?;
            let s = SB_OFFSET as usize * SECTOR;
            Some(b.disk[s..s + SB_BYTES].to_vec())
        };
        // Every blade on the network is offered, as `aoeraid run` reads them all.
        let on_net: Vec<MemberAddr> = blades
            .iter()
            .map(|b| addr(&format!("e{}.{}", b.shelf, b.slot)))
            .collect();
        self.now = sim.now;
        self.core = crate::sim::boot::assemble_all(
            &cfg,
            0,
            pool,
            &superblock,
            &on_net,
            &mut self.host,
            self.now,
        )
        .unwrap();
        self.notices.clear();
        self.settle();
    }

    /// Replaces the superblock on `blade` by `edit` of it.
    fn edit_superblock(&mut self, blade: &str, edit: impl FnOnce(&mut Superblock)) {
        let s = SB_OFFSET as usize * SECTOR;
        let disk = &mut self.blade(blade).disk;
        let mut sb = Superblock::decode(&disk[s..s + SB_BYTES]).unwrap();
        edit(&mut sb);
        disk[s..s + SB_BYTES].copy_from_slice(&sb.encode());
    }

    fn rebuilt_bytes(&self, v: usize) -> u64 {
        self.core.vols[v].concat.arrays()[0]
            .status()
            .counters
            .sync_bytes
            .rebuild
    }

    fn blade_status(&self, name: &str) -> crate::control::status::BladeStatus {
        let s = self.core.status(self.now);
        s.blades.into_iter().find(|b| b.blade == name).unwrap()
    }

    /// `blade` was left out by assembly at start, untouched, and the status says so
    /// with a reason containing `why`. (This rig hands the core the blades'
    /// discovery at start, which judges a configured blade no array holds again:
    /// its reason may be the rejoin rule's, in other words.)
    fn assert_left_out(&self, blade: &str, why: &str) {
        let st = self.blade_status(blade);
        assert!(
            st.refused.as_deref().is_some_and(|r| r.contains(why)),
            "{st:?}"
        );
        assert!(
            crate::control::render::render(&self.core.status(self.now), false)
                .contains(&format!("refused, left untouched: {}", st.refused.unwrap())),
        );
    }

    /// `blade` was refused (event and status, naming it) for a reason containing
    /// `why`.
    fn assert_refused(&self, blade: &str, why: &str) {
        use crate::events::EventKind as K;
        let refused = self.events(K::MemberRefused);
        assert!(
            refused.iter().any(|e| e.member.as_deref() == Some(blade)
                && e.detail.as_deref().is_some_and(|d| d.contains(why))),
            "{:?}",
            self.notices
        );
        let st = self.blade_status(blade);
        assert!(
            st.refused.as_deref().is_some_and(|r| r.contains(why)),
            "{st:?}"
        );
    }
}

#[test]
fn a_blade_missing_at_start_joins_when_it_appears_and_resyncs_only_what_changed() {
    use crate::events::EventKind as K;
    let mut r = rig(small_regions());
    r.quiesce();
    r.restart(&["e1.0"]);
    assert_eq!(r.state("data", "e0.0"), Some(MemberState::Active));
    assert_eq!(r.state("data", "e1.0"), None, "not found: no address yet");
    // Written while it is away: one 64 KiB region.
    r.write(0, 1);
    r.advance(Duration::from_secs(3));
    assert_eq!(r.state("data", "e1.0"), None);

    r.blade("e1.0").dead = false;
    r.advance(Duration::from_secs(10));
    assert_eq!(r.state("data", "e1.0"), Some(MemberState::Active));
    let back = r.events(K::DeviceReappeared);
    assert_eq!(back.len(), 1, "{:?}", r.notices);
    assert_eq!(back[0].member.as_deref(), Some("e1.0"));
    assert_eq!(r.events(K::ReAdded).len(), 1, "{:?}", r.notices);
    let copied = r.rebuilt_bytes(0);
    assert!(
        copied > 0 && copied <= 64 << 10,
        "a bitmap resync of one region copied {copied} bytes"
    );
    assert!(r.blade_status("e1.0").refused.is_none());
}

#[test]
fn a_blade_returning_with_a_foreign_superblock_is_refused_and_untouched() {
    let mut r = rig(mirror());
    r.blade("e1.0").dead = true;
    r.write(0, 1);
    r.advance(DEAD * 3);
    assert_eq!(r.state("data", "e1.0"), Some(MemberState::Faulty));
    // Another array's disk comes back under its address.
    r.edit_superblock("e1.0", |sb| {
        sb.array_uuid = [0xEE; 16];
        sb.name = "other".into();
    });
    let before = r.blade("e1.0").disk.clone();
    r.blade("e1.0").dead = false;
    let writes = r.blade("e1.0").writes;
    r.advance(Duration::from_secs(10));
    r.write(0, 2);
    r.advance(Duration::from_secs(5));
    assert_eq!(r.state("data", "e1.0"), Some(MemberState::Faulty));
    r.assert_refused("e1.0", "another array `other`");
    assert_eq!(
        r.blade("e1.0").writes,
        writes,
        "a refused blade was written"
    );
    assert!(r.blade("e1.0").disk == before, "a refused blade changed");
}

#[test]
fn a_blade_missing_at_start_with_a_foreign_superblock_is_refused_and_untouched() {
    let mut r = rig(mirror());
    r.quiesce();
    r.restart(&["e1.0"]);
    r.edit_superblock("e1.0", |sb| sb.array_uuid = [0xEE; 16]);
    let before = r.blade("e1.0").disk.clone();
    r.blade("e1.0").dead = false;
    r.write(0, 1);
    r.advance(Duration::from_secs(10));
    r.assert_refused("e1.0", "another array");
    assert_eq!(r.state("data", "e1.0"), None, "not taken for the member");
    assert!(r.blade("e1.0").disk == before, "a refused blade changed");
}

#[test]
fn a_stale_blade_beyond_the_bitmap_is_refused_until_re_add_rebuilds_it_whole() {
    let mut r = rig(small_regions());
    r.quiesce();
    r.restart(&[]);
    // A copy of e1.0 at a clean point, then writes the bitmap marks and clears
    // again once idle.
    let old = r.blade("e1.0").disk.clone();
    r.write(0, 1);
    r.advance(Duration::from_secs(8));
    assert!(r.core.all_clean());
    r.blade("e1.0").dead = true;
    r.write(0, 2);
    r.advance(DEAD * 3);
    assert_eq!(r.state("data", "e1.0"), Some(MemberState::Faulty));
    // The old copy comes back: what it missed before the last clear is unmarked.
    r.blade("e1.0").disk = old.clone();
    r.blade("e1.0").dead = false;
    r.advance(Duration::from_secs(10));
    assert_eq!(r.state("data", "e1.0"), Some(MemberState::Faulty));
    r.assert_refused("e1.0", "stale");
    assert!(r.blade("e1.0").disk == old, "a refused blade changed");
    // The operator decides: re-add rebuilds it whole.
    r.cmd(Command::ReAdd {
        array: "data".into(),
        member: addr("e1.0"),
    })
    .unwrap();
    r.advance(Duration::from_secs(30));
    assert_eq!(r.state("data", "e1.0"), Some(MemberState::Active));
    assert!(r.blade_status("e1.0").refused.is_none());
    let data = r.core.vols[0].concat.arrays()[0]
        .geometry()
        .member_used_sectors();
    assert!(
        r.rebuilt_bytes(0) >= data * SECTOR as u64,
        "rebuilt {} bytes of {data} sectors",
        r.rebuilt_bytes(0)
    );
}

// ---- a failed array back by itself (regather.rs) ----

impl Rig {
    fn array_state(&self, array: &str) -> raid_engine::ArrayState {
        let (v, a) = volumes::find_array(&self.core.vols, array).unwrap();
        self.core.vols[v].concat.arrays()[a].status().state
    }

    /// The data area of `blade` (its superblock's), sectors `[from, from + n)`.
    fn data(&mut self, blade: &str, from: u64, n: u64) -> Vec<u8> {
        let s = SB_OFFSET as usize * SECTOR;
        let disk = &self.blade(blade).disk;
        let sb = Superblock::decode(&disk[s..s + SB_BYTES]).unwrap();
        let at = (sb.areas.data_offset + from) as usize * SECTOR;
        disk[at..at + n as usize * SECTOR].to_vec()
    }
}

/// A held [`rig`] over `c` whose volume 0 has acknowledged 0x11 in its first 8
/// sectors (write id 1), the state the whole-array outage tests start from.
fn held_with_a_first_write(c: lab::Config) -> Rig {
    let mut r = rig(c);
    r.hold();
    r.fill_at(0, 1, 0, 0x11);
    r.advance(Duration::from_secs(1));
    r
}

#[test]
fn an_array_whose_blades_all_fell_silent_at_once_comes_back_when_they_answer() {
    use crate::events::EventKind as K;
    let mut r = held_with_a_first_write(mirror());
    for b in ["e0.0", "e1.0"] {
        r.blade(b).dead = true;
    }
    r.fill_at(0, 2, 64, 0x22);
    r.advance(DEAD * 3);
    assert_eq!(r.array_state("data"), raid_engine::ArrayState::Failed);
    assert_eq!(r.events(K::ArrayFailed).len(), 1, "{:?}", r.notices);
    // One back: not enough, the other carries the array's last state too.
    r.blade("e0.0").dead = false;
    r.advance(Duration::from_secs(5));
    assert_eq!(r.array_state("data"), raid_engine::ArrayState::Failed);
    assert!(
        r.logged("re-assembled once e1.0 answer again"),
        "{:?}",
        r.notices
    );
    r.blade("e1.0").dead = false;
    r.advance(Duration::from_secs(10));
    assert_ne!(r.array_state("data"), raid_engine::ArrayState::Failed);
    assert!(r.events(K::NewArray).len() == 1, "{:?}", r.notices);
    r.advance(Duration::from_secs(30));
    assert_eq!(r.array_state("data"), raid_engine::ArrayState::Clean);
    assert_eq!(r.state("data", "e0.0"), Some(MemberState::Active));
    assert_eq!(r.state("data", "e1.0"), Some(MemberState::Active));
    assert!(!r.reservation_lost());
    // It serves again, both copies written, and what was acknowledged before the
    // outage is there.
    r.fill_at(0, 3, 128, 0x33);
    r.advance(Duration::from_secs(1));
    for b in ["e0.0", "e1.0"] {
        assert_eq!(r.data(b, 0, 8), vec![0x11; 8 * SECTOR], "{b}");
        assert_eq!(r.data(b, 128, 8), vec![0x33; 8 * SECTOR], "{b}");
    }
    assert_eq!(r.data("e0.0", 64, 8), r.data("e1.0", 64, 8), "resynced");
}

#[test]
fn a_failed_array_waits_for_the_member_that_ran_last_and_never_trusts_the_stale_one() {
    let mut r = held_with_a_first_write(small_regions());
    // e1.0 goes first; the array runs on e0.0 alone and takes a write.
    r.blade("e1.0").dead = true;
    r.fill_at(0, 2, 0, 0x22);
    r.advance(DEAD * 3);
    assert_eq!(r.state("data", "e1.0"), Some(MemberState::Faulty));
    r.fill_at(0, 3, 0, 0x33);
    r.advance(Duration::from_millis(100));
    assert_eq!(r.data("e0.0", 0, 8), vec![0x33; 8 * SECTOR]);
    // Then e0.0 falls silent too: the array fails with it.
    r.blade("e0.0").dead = true;
    r.fill_at(0, 4, 64, 0x44);
    r.advance(DEAD * 3);
    assert_eq!(r.array_state("data"), raid_engine::ArrayState::Failed);
    // The stale e1.0 comes back alone: the array stays failed, e1.0 unwritten.
    let writes = r.blade("e1.0").writes;
    r.blade("e1.0").dead = false;
    r.advance(Duration::from_secs(10));
    assert_eq!(r.array_state("data"), raid_engine::ArrayState::Failed);
    assert_eq!(r.blade("e1.0").writes, writes, "a stale member was written");
    // e0.0 is back: re-assembled from it, e1.0 brought up to date.
    r.blade("e0.0").dead = false;
    r.advance(Duration::from_secs(30));
    assert_eq!(r.array_state("data"), raid_engine::ArrayState::Clean);
    assert_eq!(r.state("data", "e1.0"), Some(MemberState::Active));
    for b in ["e0.0", "e1.0"] {
        assert_eq!(r.data(b, 0, 8), vec![0x33; 8 * SECTOR], "{b}");
    }
}

#[test]
fn adding_a_blade_another_appliance_holds_is_refused_and_the_volume_runs_on() {
    let mut r = rig(mirror().spare_group("g", &[]));
    let ours = r.hold();
    r.cmd(Command::Fail {
        array: "data".into(),
        member: addr("e1.0"),
    })
    .unwrap();
    // A blade new to the appliance, held by another one.
    r.blades.push({
        let mut b = SimBlade::new(5, 0, SECTORS);
        b.sector_count = 16;
        b.reserve = vec![OTHER];
        b
    });
    r.core.pool.as_mut().unwrap().query(5, 0);
    r.advance(Duration::from_millis(100));
    for cmd in [
        Command::Add {
            array: "data".into(),
            member: addr("e5.0"),
            force: false,
        },
        Command::SpareAdd {
            group: "g".into(),
            member: addr("e5.0"),
            force: false,
        },
    ] {
        let err = r.cmd(cmd).unwrap_err();
        assert!(err.contains(&format!("e5.0 reserved by {OTHER}")), "{err}");
    }
    assert!(!r.reservation_lost(), "{:?}", r.notices);
    assert_eq!(r.blade("e5.0").writes, 0);
    assert_eq!(r.blade("e5.0").reserve, vec![OTHER]);
    assert_eq!(r.core.spares.available("g"), 0);
    let before = r.blade("e0.0").writes;
    r.write(0, 7);
    assert!(r.blade("e0.0").writes > before, "the volume still writes");
    // Its holder lets it go: the same add claims it, then rebuilds onto it.
    r.blade("e5.0").reserve.clear();
    let msg = r.add("e5.0").unwrap();
    assert!(msg.contains("rebuilding onto it"), "{msg}");
    assert_eq!(r.blade("e5.0").reserve, vec![ours]);
    r.advance(Duration::from_secs(30));
    assert_eq!(r.state("data", "e5.0"), Some(MemberState::Active));
}

// ---- spares added at run time (`spare_scan.rs`) --------------------------------

/// A mirror with spare group `g` (one configured spare, e2.0); e5.0 and e6.0 are
/// blades the configuration does not name.
fn spared() -> Rig {
    rig_with(
        exported(lab::Array::raid1("data", &PAIR).spare_group("g")).spare_group("g", &["e2.0"]),
        &["e5.0", "e6.0"],
    )
}

impl Rig {
    /// `aoeraid spare-add g BLADE`.
    fn spare_add(&mut self, blade: &str) -> Reply {
        self.cmd(Command::SpareAdd {
            group: "g".into(),
            member: addr(blade),
            force: false,
        })
    }

    fn label(&mut self, blade: &str) -> Option<SpareLabel> {
        let s = SB_OFFSET as usize * SECTOR;
        SpareLabel::decode(&self.blade(blade).disk[s..s + SB_BYTES])
    }

    fn origins(&self, group: &str) -> Vec<(String, String)> {
        let st = self.core.status(self.now);
        let g = st.spare_groups.iter().find(|g| g.name == group).unwrap();
        g.available
            .iter()
            .cloned()
            .zip(g.origins.iter().cloned())
            .collect()
    }
}

#[test]
fn a_spare_added_at_run_time_is_labelled_found_after_a_restart_and_used() {
    let mut r = spared();
    let msg = r.spare_add("e5.0").unwrap();
    assert!(msg.contains("labelled"), "{msg}");
    r.advance(Duration::from_millis(100));
    assert_eq!(r.label("e5.0").map(|l| l.group), Some("g".to_string()));
    assert_eq!(
        r.origins("g"),
        [
            ("e2.0".into(), "config".into()),
            ("e5.0".into(), "spare-add".into())
        ]
    );
    r.quiesce();
    r.restart(&[]);
    r.advance(Duration::from_secs(2));
    assert_eq!(
        r.origins("g"),
        [
            ("e2.0".into(), "config".into()),
            ("e5.0".into(), "label".into())
        ]
    );
    assert!(
        r.logged("e5.0: found by its spare label"),
        "{:?}",
        r.notices
    );
    // Two failures use both spares; the array's superblock replaces the label.
    r.fail("data", "e1.0");
    r.advance(Duration::from_secs(30));
    assert_eq!(r.state("data", "e2.0"), Some(MemberState::Active));
    r.fail("data", "e0.0");
    r.advance(Duration::from_secs(30));
    assert_eq!(r.state("data", "e5.0"), Some(MemberState::Active));
    assert_eq!(r.label("e5.0"), None);
    let s = SB_OFFSET as usize * SECTOR;
    assert!(Superblock::decode(&r.blade("e5.0").disk[s..s + SB_BYTES]).is_ok());
}

#[test]
fn a_removed_spare_is_wiped_and_not_claimed_next_start() {
    let mut r = spared();
    r.spare_add("e5.0").unwrap();
    r.cmd(Command::SpareRemove {
        group: "g".into(),
        member: addr("e5.0"),
    })
    .unwrap();
    r.advance(Duration::from_millis(100));
    assert!(r.blade("e5.0").disk[..64 * 1024].iter().all(|&b| b == 0));
    // A label for a group this appliance does not have is someone else's.
    let other = SpareLabel {
        group: "elsewhere".into(),
        uuid: [3; 16],
    }
    .encode();
    let s = SB_OFFSET as usize * SECTOR;
    r.blade("e6.0").disk[s..s + SB_BYTES].copy_from_slice(&other);
    r.quiesce();
    r.restart(&[]);
    r.advance(Duration::from_secs(2));
    assert_eq!(r.origins("g"), [("e2.0".into(), "config".into())]);
    assert_eq!(&r.blade("e6.0").disk[s..s + SB_BYTES], &other[..]);
}

#[test]
fn an_array_spare_added_at_run_time_comes_back_after_a_restart_until_removed() {
    let mut r = spared();
    assert!(r.add("e5.0").unwrap().contains("as a spare"));
    r.advance(Duration::from_millis(100));
    r.quiesce();
    r.restart(&[]);
    r.advance(Duration::from_secs(2));
    // Assembled as the array's spare by its superblock.
    assert_eq!(r.state("data", "e5.0"), Some(MemberState::Spare));
    assert_eq!(r.origin("e5.0").as_deref(), Some("superblock"));
    // Its own spare goes first; the group's stays.
    r.fail("data", "e1.0");
    r.advance(Duration::from_secs(30));
    assert_eq!(r.state("data", "e5.0"), Some(MemberState::Active));
    assert_eq!(r.origins("g").len(), 1);
}

#[test]
fn a_removed_array_spare_is_not_taken_back_at_the_next_start() {
    let mut r = spared();
    r.add("e5.0").unwrap();
    r.advance(Duration::from_millis(100));
    r.cmd(Command::Remove {
        array: "data".into(),
        member: addr("e5.0"),
    })
    .unwrap();
    r.advance(Duration::from_millis(100));
    r.quiesce();
    r.restart(&[]);
    r.advance(Duration::from_secs(2));
    assert_eq!(r.state("data", "e5.0"), None);
}

#[test]
fn a_spare_whose_blade_is_silent_is_passed_over() {
    let mut r = rig(exported(lab::Array::raid1("data", &PAIR).spare_group("g"))
        .spare_group("g", &["e2.0", "e3.0"]));
    // e2.0 waited longest but no longer answers: the pool declared it down.
    r.blade("e2.0").dead = true;
    let pool = r.core.pool.as_mut().unwrap();
    let id = pool.find(2, 0).unwrap();
    assert!(pool.reidentify(r.now, id));
    r.advance(DEAD * 3);
    assert_eq!(
        r.core.pool().unwrap().blade_state(id),
        Some(BladeState::Down)
    );
    r.fail("data", "e1.0");
    r.advance(Duration::from_secs(30));
    assert_eq!(r.state("data", "e3.0"), Some(MemberState::Active));
    assert_eq!(r.state("data", "e2.0"), None);
}

// ---- `add` and `spare-add` read the blade first (`add_check.rs`) ---------------

impl Rig {
    fn sb_area(&mut self, blade: &str) -> Vec<u8> {
        let s = SB_OFFSET as usize * SECTOR;
        self.blade(blade).disk[s..s + SB_BYTES].to_vec()
    }

    fn put_sb_area(&mut self, blade: &str, bytes: &[u8]) {
        let s = SB_OFFSET as usize * SECTOR;
        self.blade(blade).disk[s..s + SB_BYTES].copy_from_slice(bytes);
    }

    fn forced(&mut self, cmd: Command) -> Reply {
        self.cmd(match cmd {
            Command::Add { array, member, .. } => Command::Add {
                array,
                member,
                force: true,
            },
            Command::SpareAdd { group, member, .. } => Command::SpareAdd {
                group,
                member,
                force: true,
            },
            c => c,
        })
    }
}

fn add_data(blade: &str) -> Command {
    Command::Add {
        array: "data".into(),
        member: addr(blade),
        force: false,
    }
}

fn spare_add_g(blade: &str) -> Command {
    Command::SpareAdd {
        group: "g".into(),
        member: addr(blade),
        force: false,
    }
}

#[test]
fn a_blade_carrying_another_arrays_superblock_is_refused_untouched_unless_forced() {
    let mut r = spared();
    // e5.0 is a member (role 1) of another appliance's array `other`.
    let sb = r.sb_area("e1.0");
    r.put_sb_area("e5.0", &sb);
    r.edit_superblock("e5.0", |sb| {
        sb.array_uuid = [0xEE; 16];
        sb.name = "other".into();
        sb.role = 1;
        sb.events = 4242;
    });
    let before = r.blade("e5.0").disk.clone();
    for cmd in [add_data("e5.0"), spare_add_g("e5.0")] {
        let err = r.cmd(cmd).unwrap_err();
        for part in [
            "e5.0 not added",
            "array `other` (eeeeeeee",
            "role 1",
            "event count 4242",
            "nothing was written",
            "--force",
        ] {
            assert!(err.contains(part), "{part:?} not in {err}");
        }
    }
    r.advance(Duration::from_secs(1));
    assert_eq!(r.blade("e5.0").writes, 0);
    assert!(r.blade("e5.0").disk == before, "a refused blade changed");
    assert_eq!(r.state("data", "e5.0"), None);
    assert_eq!(r.origins("g").len(), 1);
    // The operator means it: overwritten, and the reply says what was lost.
    let msg = r.forced(add_data("e5.0")).unwrap();
    assert!(msg.contains("added to data as a spare"), "{msg}");
    assert!(
        msg.contains("overwrote a superblock of array `other`"),
        "{msg}"
    );
    r.advance(Duration::from_millis(100));
    assert_eq!(r.state("data", "e5.0"), Some(MemberState::Spare));
    let sb = Superblock::decode(&r.sb_area("e5.0")).unwrap();
    assert_eq!(sb.name, "data");
}

#[test]
fn a_blank_blade_is_added_and_what_the_command_would_write_is_no_obstacle() {
    let mut r = spared();
    assert!(r.cmd(add_data("e5.0")).unwrap().contains("as a spare"));
    r.advance(Duration::from_millis(100));
    // e6.0 carries a spare superblock of `data` the array does not know (an add
    // whose answer was lost): adding it again is fine.
    let mut sb = Superblock::decode(&r.sb_area("e5.0")).unwrap();
    sb.member_uuid = [0x66; 16];
    r.put_sb_area("e6.0", &sb.encode());
    let msg = r.cmd(add_data("e6.0")).unwrap();
    assert!(!msg.contains("overwrote"), "{msg}");
    assert_eq!(r.state("data", "e6.0"), Some(MemberState::Spare));
}

#[test]
fn spare_add_takes_our_groups_label_refuses_another_and_force_overwrites_it() {
    let mut r = spared();
    let label = |group: &str| {
        SpareLabel {
            group: group.into(),
            uuid: [3; 16],
        }
        .encode()
    };
    // Our own label for `g` (written by the peer of an HA pair): fine.
    r.put_sb_area("e5.0", &label("g"));
    let msg = r.cmd(spare_add_g("e5.0")).unwrap();
    assert!(msg.contains("added to spare group g"), "{msg}");
    // Another group's label: refused by name, untouched, until forced.
    let elsewhere = label("elsewhere");
    r.put_sb_area("e6.0", &elsewhere);
    for cmd in [spare_add_g("e6.0"), add_data("e6.0")] {
        let err = r.cmd(cmd).unwrap_err();
        assert!(err.contains("the spare label of group elsewhere"), "{err}");
    }
    r.advance(Duration::from_millis(100));
    assert_eq!(r.sb_area("e6.0"), elsewhere);
    assert_eq!(r.blade("e6.0").writes, 0);
    let msg = r.forced(spare_add_g("e6.0")).unwrap();
    assert!(
        msg.contains("overwrote the spare label of group elsewhere"),
        "{msg}"
    );
    r.advance(Duration::from_millis(100));
    assert_eq!(r.label("e6.0").map(|l| l.group), Some("g".to_string()));
}

#[test]
fn a_failed_member_comes_back_by_re_add_not_by_add_unless_forced() {
    let mut r = spared();
    r.fail("data", "e1.0");
    r.advance(Duration::from_secs(30));
    assert_eq!(r.state("data", "e2.0"), Some(MemberState::Active));
    r.cmd(Command::Remove {
        array: "data".into(),
        member: addr("e1.0"),
    })
    .unwrap();
    let before = r.sb_area("e1.0");
    let err = r.cmd(add_data("e1.0")).unwrap_err();
    assert!(err.contains("a superblock of array `data`"), "{err}");
    assert!(err.contains("`re-add`"), "{err}");
    assert_eq!(r.sb_area("e1.0"), before);
    let msg = r.forced(add_data("e1.0")).unwrap();
    assert!(
        msg.contains("overwrote a superblock of array `data`"),
        "{msg}"
    );
    r.advance(Duration::from_millis(100));
    assert_eq!(r.state("data", "e1.0"), Some(MemberState::Spare));
}

// ---- members found by their superblock at start (`assembly.rs`, `listing.rs`) ----

impl Rig {
    /// A restart (a crash: the arrays resync what their bitmaps mark) that
    /// settles.
    fn crash_restart(&mut self) {
        self.restart(&[]);
        self.advance(Duration::from_secs(30));
    }

    /// `blade` replaces `failed` in array `data` as an operator does: fail,
    /// remove, `add`; rebuilt.
    fn replace(&mut self, failed: &str, blade: &str) {
        self.fail("data", failed);
        self.cmd(Command::Remove {
            array: "data".into(),
            member: addr(failed),
        })
        .unwrap();
        self.add(blade).unwrap();
        self.advance(Duration::from_secs(30));
        assert_eq!(self.state("data", blade), Some(MemberState::Active));
    }

    fn origin(&self, member: &str) -> Option<String> {
        let st = self.core.status(self.now);
        let a = st.arrays.iter().find(|a| a.name == "data").unwrap();
        let m = a.members.iter().find(|m| m.blade == member)?;
        m.origin.clone()
    }
}

#[test]
fn a_member_added_at_run_time_holds_its_slot_after_a_restart_without_a_rebuild() {
    let mut r = rig_with(small_regions(), &["e5.0"]);
    r.replace("e1.0", "e5.0");
    assert_eq!(r.origin("e5.0").as_deref(), Some("added"));
    r.fill_at(0, 1, 0, 0x77);
    let replaced = r.sb_area("e1.0");
    r.quiesce();
    r.restart(&[]);
    assert_eq!(r.state("data", "e5.0"), Some(MemberState::Active));
    assert_eq!(r.state("data", "e0.0"), Some(MemberState::Active));
    assert_eq!(r.array_state("data"), raid_engine::ArrayState::Clean);
    assert_eq!(r.rebuilt_bytes(0), 0, "no rebuild");
    // The replaced member listed in the YAML is left out and never written; the
    // status says why.
    assert_eq!(r.state("data", "e1.0"), None);
    r.assert_left_out("e1.0", "replaced");
    let writes = r.blade("e1.0").writes;
    r.fill_at(0, 2, 0, 0x78);
    r.advance(Duration::from_secs(5));
    assert_eq!(r.blade("e1.0").writes, writes);
    assert_eq!(r.sb_area("e1.0"), replaced);
    assert_eq!(r.data("e5.0", 0, 8), vec![0x78; 8 * SECTOR]);
    // The operator is told where it came from and what the YAML should say.
    assert_eq!(r.origin("e5.0").as_deref(), Some("superblock"));
    assert_eq!(r.origin("e0.0").as_deref(), Some("config"));
    let want = "array data: e5.0 (slot 1, superblock) not in appliance.yaml's member list; \
                update its line to `members: [e0.0, e5.0]`";
    assert_eq!(r.core.status(r.now).warnings, vec![want.to_string()]);
    assert!(r.logged(want), "{:?}", r.notices);
}

#[test]
fn of_two_blades_claiming_a_slot_the_newer_holds_it_and_the_other_is_untouched() {
    let mut r = rig_with(small_regions(), &["e5.0", "e6.0"]);
    r.replace("e1.0", "e5.0");
    r.replace("e5.0", "e6.0");
    r.fill_at(0, 1, 0, 0x21);
    let older = r.sb_area("e5.0");
    let claimed = Superblock::decode(&older).unwrap();
    assert_eq!(claimed.role, 1, "e5.0 still claims slot 1");
    r.crash_restart();
    assert_eq!(r.state("data", "e6.0"), Some(MemberState::Active));
    assert_eq!(r.array_state("data"), raid_engine::ArrayState::Clean);
    assert_eq!(r.rebuilt_bytes(0), 0);
    for stale in ["e1.0", "e5.0"] {
        assert_eq!(r.state("data", stale), None, "{stale}");
        r.assert_left_out(stale, "replaced");
    }
    let writes = r.blade("e5.0").writes;
    r.fill_at(0, 2, 0, 0x22);
    r.advance(Duration::from_secs(5));
    assert_eq!(r.blade("e5.0").writes, writes);
    assert_eq!(r.sb_area("e5.0"), older);
}

#[test]
fn a_blade_of_another_appliances_array_of_the_same_name_is_ignored_and_untouched() {
    let mut r = rig_with(small_regions(), &["e6.0"]);
    r.fill_at(0, 1, 0, 0x31);
    // Another appliance's array `data`: its own UUID, newer, claiming slot 1.
    let mut theirs = Superblock::decode(&r.sb_area("e1.0")).unwrap();
    theirs.array_uuid = [0x5E; 16];
    theirs.member_uuid = [0x5F; 16];
    theirs.events += 100;
    let theirs = theirs.encode();
    r.put_sb_area("e6.0", &theirs);
    r.crash_restart();
    assert_eq!(r.state("data", "e0.0"), Some(MemberState::Active));
    assert_eq!(r.state("data", "e1.0"), Some(MemberState::Active));
    assert_eq!(r.state("data", "e6.0"), None);
    assert_eq!(r.array_state("data"), raid_engine::ArrayState::Clean);
    let writes = r.blade("e6.0").writes;
    r.fill_at(0, 2, 0, 0x32);
    r.advance(Duration::from_secs(5));
    assert_eq!(r.blade("e6.0").writes, writes);
    assert_eq!(r.sb_area("e6.0"), theirs);
    assert!(r.core.status(r.now).warnings.is_empty());
    assert!(
        r.blade_status("e6.0").refused.is_none(),
        "not ours: no news"
    );
}

#[test]
fn a_listed_member_assembly_leaves_out_shows_as_refused_and_its_array_stops_cleanly() {
    let mut r = rig(small_regions());
    r.edit_superblock("e1.0", |sb| {
        sb.array_uuid = [0xEE; 16];
        sb.name = "other".into();
    });
    let before = r.sb_area("e1.0");
    r.crash_restart();
    assert_eq!(r.state("data", "e1.0"), None);
    r.assert_left_out("e1.0", "another array");
    // A clean stop of the array running without it, its bitmap marked by a
    // write (the bits stay): the mark lands and the rig's steps do not spin.
    r.write(0, 1);
    r.advance(Duration::from_secs(1));
    r.quiesce();
    assert!(
        r.core.vols[0].concat.arrays()[0]
            .status()
            .bitmap_dirty_regions
            > 0
    );
    r.assert_left_out("e1.0", "another array");
    assert_eq!(r.sb_area("e1.0"), before, "a refused blade changed");
}

#[test]
fn start_up_waits_for_an_unlisted_blade_that_answered_to_be_identified() {
    let mut sim = Sim::new(PoolConfig::default(), 1, 9000, 7);
    sim.attach(SimBlade::new(0, 0, SECTORS), &[0]);
    sim.discover_all();
    let listed = [(0, 0)];
    assert!(assembly::discovery_settled(&sim.pool, &listed));
    assert!(!assembly::discovery_settled(&sim.pool, &[(0, 0), (1, 0)]));
    // A blade the configuration does not list answers while the listed one is
    // up: the wait goes on until it is identified, so assembly reads it too.
    sim.attach(SimBlade::new(5, 0, SECTORS), &[0]);
    sim.pool.query(5, 0);
    let state = |s: &Sim| s.pool.find(5, 0).and_then(|b| s.pool.blade_state(b));
    assert!(sim.run_until(Duration::from_secs(1), |s| state(s).is_some()));
    assert_eq!(state(&sim), Some(BladeState::Identifying));
    assert!(!assembly::discovery_settled(&sim.pool, &listed));
    assert!(sim.run_until(Duration::from_secs(1), |s| state(s) == Some(BladeState::Up)));
    assert!(assembly::discovery_settled(&sim.pool, &listed));
}
