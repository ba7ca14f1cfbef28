//! Engine behaviour with instant in-memory members: failures, degraded I/O, healing,
//! spares and spare groups, re-add by bitmap, RAID 5 gathering, placement.

use raid_engine::sim::VMember;
use raid_engine::superblock::{Superblock, BITMAP_OFFSET, SB_OFFSET, SB_SECTORS};
use raid_engine::*;

struct Rig {
    e: Engine,
    /// The simulator's members, answering at once.
    members: Vec<VMember>,
    now: u64,
    events: Vec<Event>,
    member_reads: u64,
    done: Vec<VolumeCompletion>,
    /// Virtual time only moves with requests: a sync does one paced step and waits.
    frozen: bool,
}

const MEMBER: u64 = 2048 + 4096;

fn spec(i: u8, shelf: u32) -> MemberSpec {
    MemberSpec {
        uuid: [i; 16],
        size_sectors: MEMBER,
        shelf: Some(shelf),
    }
}

/// A volume request; a write carries `sectors` sectors of `fill`.
fn req(id: u64, op: VolumeOp, offset: u64, sectors: u32, fill: u8) -> VolumeRequest {
    match op {
        VolumeOp::Write => VolumeRequest::write(id, offset, vec![fill; sectors as usize * 512]),
        VolumeOp::Read => VolumeRequest::read(id, offset, sectors),
        VolumeOp::Flush => VolumeRequest::flush(id),
    }
}

fn instant_member() -> VMember {
    VMember::new(MEMBER, 0, 0)
}

impl Rig {
    fn new(level: Level, n: usize, spares: usize, chunk: u32) -> Rig {
        Rig::build(level, n, spares, chunk, false)
    }

    fn build(level: Level, n: usize, spares: usize, chunk: u32, integrity: bool) -> Rig {
        let mut cfg = ArrayConfig::new(
            "t",
            [0xAB; 16],
            level,
            (0..n as u8).map(|i| spec(i, i as u32)).collect(),
        );
        cfg.chunk_sectors = chunk;
        cfg.assume_clean = true;
        cfg.integrity = integrity;
        cfg.bitmap_region_sectors = 256;
        cfg.spares = (0..spares as u8).map(|i| spec(100 + i, 50)).collect();
        let e = Engine::create(&cfg).unwrap();
        let total = n + spares;
        let mut r = Rig {
            e,
            members: (0..total).map(|_| instant_member()).collect(),
            now: 0,
            events: Vec::new(),
            member_reads: 0,
            done: Vec::new(),
            frozen: false,
        };
        r.e.set_sync_rates(1_000_000, 1_000_000);
        r.run();
        r
    }

    fn run(&mut self) {
        for _ in 0..1_000_000 {
            let mut progressed = false;
            while let Some(io) = self.e.poll_member_io() {
                progressed = true;
                let m = io.member;
                if m >= self.members.len() {
                    self.members.push(instant_member());
                }
                if io.op == MemberOp::Read {
                    self.member_reads += io.sectors as u64;
                }
                let res = self.members[m].serve(&io);
                self.e.complete_member_io(io.id, res);
                if let Err(e) = self.e.check_invariants() {
                    panic!("{e}");
                }
            }
            while let Some(ev) = self.e.poll_event() {
                self.events.push(ev);
            }
            while let Some(c) = self.e.poll_completion() {
                self.done.push(c);
            }
            if !progressed {
                if self.frozen {
                    return;
                }
                match self.e.poll_timeout() {
                    Some(t) if self.e.status().sync.is_some() || t <= self.now + 10_000_000 => {
                        self.now = t.max(self.now + 1_000_000);
                        self.e.tick(self.now);
                    }
                    _ => return,
                }
            }
        }
        panic!("engine never went quiet");
    }

    /// Submits `req` under an id of the rig's and runs until it completes.
    fn io(&mut self, mut req: VolumeRequest) -> Result<Vec<u8>, VolumeError> {
        let id = 1_000_000 + self.done.len() as u64 + self.now;
        req.id = id;
        self.e.submit(req);
        self.now += 1_000;
        self.e.tick(self.now);
        self.run();
        let i = self
            .done
            .iter()
            .position(|c| c.id == id)
            .expect("request completed");
        self.done.remove(i).result
    }
    fn write(&mut self, offset: u64, fill: u8, sectors: u32) {
        self.io(VolumeRequest::write(
            0,
            offset,
            vec![fill; sectors as usize * 512],
        ))
        .expect("write");
    }
    /// Member `m` is away while `fill` is written over sectors 0..8 (the write fails it),
    /// then it is back for a restart from the members.
    fn write_while_away_then_restart(&mut self, m: usize, fill: u8) {
        self.members[m].alive = false;
        self.write(0, fill, 8);
        assert_eq!(self.e.status().members[m].state, MemberState::Faulty);
        self.members[m].alive = true;
        self.reassemble();
    }
    /// Reads with the member of `uuid` gone, so the others must serve it all.
    fn read_without(&mut self, uuid: [u8; 16], offset: u64, sectors: u32) -> Vec<u8> {
        let gone = self
            .e
            .status()
            .members
            .iter()
            .find(|m| m.uuid == uuid)
            .expect("member of that uuid")
            .index;
        self.members[gone].alive = false;
        self.read(offset, sectors)
            .expect("read served by the others")
    }

    /// Member `m`'s superblock as it lies on the member.
    fn superblock(&self, m: usize) -> Superblock {
        let sb = SB_OFFSET as usize * 512..(SB_OFFSET as usize + SB_SECTORS as usize) * 512;
        Superblock::decode(&self.members[m].data[sb]).unwrap()
    }

    /// Byte offset on member `m` of its data sector `sector` (after the metadata).
    fn member_data_byte(&self, m: usize, sector: usize) -> usize {
        (self.superblock(m).areas.data_offset as usize + sector) * 512
    }

    fn read(&mut self, offset: u64, sectors: u32) -> Result<Vec<u8>, VolumeError> {
        self.io(VolumeRequest::read(0, offset, sectors))
    }
    /// Restart from member bytes alone (a crash: nothing in flight with this rig), as
    /// the appliance does: assembly plan from the superblocks, then `Engine::assemble`.
    /// Members are renumbered in plan order, like the engine numbers them.
    fn reassemble(&mut self) {
        let sb = SB_OFFSET as usize * 512..(SB_OFFSET as usize + SB_SECTORS as usize) * 512;
        let inputs: Vec<AssemblyInput> = (0..self.members.len())
            .map(|i| AssemblyInput {
                name: format!("m{i}"),
                superblock: if self.members[i].alive {
                    Ok(self.members[i].data[sb.clone()].to_vec())
                } else {
                    Err(MemberError::Gone)
                },
                size_sectors: MEMBER,
            })
            .collect();
        let plan = assemble(&inputs, None, false).expect("assembly");
        self.members = plan
            .members
            .iter()
            .map(|pm| self.members[pm.input].clone())
            .collect();
        self.e = Engine::assemble(&plan).expect("engine assemble");
        let rate = if self.frozen { 1 } else { 1_000_000 };
        self.e.set_sync_rates(rate, rate);
        self.run();
    }
    fn settle(&mut self, ns: u64) {
        let end = self.now + ns;
        while self.now < end {
            self.now += 1_000_000;
            self.e.tick(self.now);
            self.run();
        }
    }

    /// Steps a clean stop as a loop sleeping until `poll_timeout` does: bitmap
    /// clearing delay 0 (the appliance's `start_mark_clean`), time moved only to
    /// where the engine asks, until it asks for nothing. Returns how many ticks it
    /// asked for at the present moment on the way.
    fn clean_stop(&mut self) -> usize {
        self.e.set_tunables(Tunables {
            bitmap_clear_ns: 0,
            ..self.e.tunables()
        });
        let frozen = std::mem::replace(&mut self.frozen, true);
        let mut at_now = 0;
        for _ in 0..100_000 {
            self.run();
            let Some(t) = self.e.poll_timeout() else {
                self.frozen = frozen;
                return at_now;
            };
            if t <= self.now {
                at_now += 1;
            }
            self.now = self.now.max(t);
            self.e.tick(self.now);
        }
        panic!("the stop never went quiet: {at_now} ticks asked for at the present");
    }
}

#[test]
fn raid1_member_gone_runs_degraded_and_keeps_data() {
    let mut r = Rig::new(Level::Raid1, 2, 0, 16);
    r.write(0, 7, 64);
    r.members[0].alive = false;
    r.write(64, 8, 16);
    assert_eq!(r.read(0, 64).unwrap(), vec![7; 64 * 512]);
    assert_eq!(r.read(64, 16).unwrap(), vec![8; 16 * 512]);
    let st = r.e.status();
    assert_eq!(st.state, ArrayState::Degraded);
    assert_eq!(st.members[0].state, MemberState::Faulty);
    assert!(r.events.contains(&Event::Fail { member: 0 }));
    assert!(r.events.contains(&Event::DegradedArray));
    assert!(r.events.contains(&Event::SparesMissing));
}

#[test]
fn raid0_member_loss_fails_the_array_never_lies() {
    let mut r = Rig::new(Level::Raid0, 2, 0, 16);
    r.write(0, 3, 64);
    r.members[1].alive = false;
    assert!(r.read(0, 64).is_err());
    assert!(r.events.contains(&Event::ArrayFailed));
    assert_eq!(r.e.status().state, ArrayState::Failed);
    assert_eq!(r.read(0, 8), Err(VolumeError::ArrayFailed));
}

#[test]
fn raid5_read_error_is_served_from_parity_and_rewritten() {
    let mut r = Rig::new(Level::Raid5, 4, 0, 16);
    r.write(0, 9, 48);
    // Volume sector 0 is on member 0 (left-symmetric stripe 0), data starts at 2048.
    r.members[0].bad.push((2048, 2056));
    assert_eq!(r.read(0, 48).unwrap(), vec![9; 48 * 512]);
    assert!(
        r.members.iter().all(|m| m.bad.is_empty()),
        "bad range rewritten"
    );
    assert_eq!(r.e.counters().corrected_read_errors, 1);
    assert!(r
        .events
        .iter()
        .any(|e| matches!(e, Event::CorrectedReadError { member: 0, .. })));
    assert_eq!(r.e.status().state, ArrayState::Clean);
}

/// Two reads of one bad range submitted together: readers of one unit run side by
/// side, both find the bad copy or column and serve the data from the others, but two
/// writes of one member range must never be in flight together (the rig checks the
/// engine's invariants after every member completion): it is rewritten once.
fn two_reads_of_a_bad_range(level: Level, n: usize) {
    let mut r = Rig::new(level, n, 0, 16);
    r.write(0, 9, 48);
    // Volume sector 0 is on member 0 (unit 0's first copy, or RAID 5's column 0).
    r.members[0].bad.push((2048, 2056));
    for id in [1, 2] {
        r.e.submit(req(id, VolumeOp::Read, 0, 8, 0));
    }
    r.run();
    for id in [1, 2] {
        let c = r.done.iter().find(|c| c.id == id).expect("read completed");
        assert_eq!(c.result, Ok(vec![9; 8 * 512]), "{level:?}");
    }
    assert!(
        r.members.iter().all(|m| m.bad.is_empty()),
        "{level:?}: bad range rewritten"
    );
    assert_eq!(
        r.e.counters().corrected_read_errors,
        1,
        "{level:?}: rewritten once"
    );
}

#[test]
fn concurrent_reads_of_one_bad_range_rewrite_it_once() {
    two_reads_of_a_bad_range(Level::Raid5, 4);
    two_reads_of_a_bad_range(Level::Raid1, 2);
}

#[test]
fn a_spare_added_to_a_degraded_array_is_formatted_before_metadata_rounds() {
    // The spare takes the empty slot at once, which starts a superblock round; the
    // round must wait for the spare's own format writes of the same blocks.
    let mut r = Rig::new(Level::Raid1, 2, 0, 16);
    r.write(0, 5, 16);
    r.members[1].alive = false;
    r.write(16, 6, 16);
    let idx = r.e.add_spare(spec(9, 9)).expect("add spare");
    r.settle(50_000_000);
    let st = r.e.status();
    assert_eq!(st.members[idx].state, MemberState::Active, "{st:?}");
    let sb = SB_OFFSET as usize * 512..(SB_OFFSET as usize + SB_SECTORS as usize) * 512;
    let on_disk = raid_engine::superblock::Superblock::decode(&r.members[idx].data[sb]).unwrap();
    assert_eq!(on_disk.role, 1, "the spare's superblock names its slot");
    assert_eq!(
        r.read_without([0; 16], 0, 32)[..16 * 512],
        vec![5; 16 * 512][..]
    );
}

#[test]
fn a_failed_array_answers_requests_held_for_the_initial_load() {
    let cfg = {
        let mut c = ArrayConfig::new("t", [1; 16], Level::Raid0, vec![spec(0, 0), spec(1, 1)]);
        c.assume_clean = true;
        c
    };
    let mut e = Engine::create(&cfg).unwrap();
    e.submit(req(7, VolumeOp::Read, 0, 8, 0));
    assert!(e.poll_completion().is_none(), "held until formatted");
    // Member 1's first format write fails it; the rest complete in order.
    let ios: Vec<MemberIo> = std::iter::from_fn(|| e.poll_member_io()).collect();
    for io in ios {
        let res = if io.member == 1 {
            Err(MemberError::Gone)
        } else {
            Ok(Vec::new())
        };
        e.complete_member_io(io.id, res);
        e.check_invariants().unwrap();
    }
    assert_eq!(e.status().state, ArrayState::Failed);
    let c = e.poll_completion().expect("held request answered");
    assert_eq!((c.id, c.result), (7, Err(VolumeError::ArrayFailed)));
    // The failure's superblock round still goes to the survivor; then nothing is owed.
    while let Some(io) = e.poll_member_io() {
        assert_eq!((io.member, io.op), (0, MemberOp::Write));
        e.complete_member_io(io.id, Ok(Vec::new()));
        e.check_invariants().unwrap();
    }
    assert!(e.status().members.iter().all(|m| m.outstanding == 0));
}

#[test]
fn raid5_degraded_write_and_read_then_spare_rebuild() {
    let mut r = Rig::new(Level::Raid5, 4, 1, 16);
    for i in 0..20u64 {
        r.write(i * 24, i as u8 + 1, 24);
    }
    r.members[2].alive = false;
    r.write(7, 0xEE, 5);
    for i in 0..20u64 {
        let d = r.read(i * 24, 24).unwrap();
        for (s, chunk) in d.chunks(512).enumerate() {
            let v = i * 24 + s as u64;
            let want = if (7..12).contains(&v) {
                0xEE
            } else {
                i as u8 + 1
            };
            assert!(chunk.iter().all(|&b| b == want), "sector {v}");
        }
    }
    r.settle(2_000_000_000);
    let st = r.e.status();
    assert!(r
        .events
        .iter()
        .any(|e| matches!(e, Event::SpareActive { member: 4 })));
    assert!(r
        .events
        .iter()
        .any(|e| matches!(e, Event::RebuildFinished { member: 4 })));
    assert!(r
        .events
        .iter()
        .any(|e| matches!(e, Event::RebuildProgress { percent: 20, .. })));
    assert_eq!(st.members[4].state, MemberState::Active);
    assert_eq!(st.state, ArrayState::Clean, "{st:?}");
    r.e.start_scrub(false).unwrap();
    r.settle(2_000_000_000);
    assert_eq!(r.e.counters().last_scrub_mismatch_sectors, 0);
}

/// RAID 6: two members die one after the other (data, then data or parity depending
/// on the stripe); reads and writes go on from P, Q or both, both spares rebuild, and
/// a scrub of both syndromes finds nothing; a flipped Q sector is found and repaired.
#[test]
fn raid6_two_members_lost_then_two_spares_rebuild() {
    let mut r = Rig::new(Level::Raid6, 6, 2, 16);
    let unit = 16 * 4;
    let sectors = unit * 12;
    for i in 0..sectors / 8 {
        r.write(i * 8, i as u8 + 1, 8);
    }
    let want = |v: u64, over: &[(u64, u64, u8)]| {
        over.iter()
            .rev()
            .find(|&&(a, b, _)| (a..b).contains(&v))
            .map_or((v / 8) as u8 + 1, |o| o.2)
    };
    let check = |r: &mut Rig, over: &[(u64, u64, u8)]| {
        for i in 0..sectors / unit {
            let d = r.read(i * unit, unit as u32).unwrap();
            for (s, chunk) in d.chunks(512).enumerate() {
                let v = i * unit + s as u64;
                assert!(chunk.iter().all(|&b| b == want(v, over)), "sector {v}");
            }
        }
    };
    r.e.fail_member(1).unwrap();
    r.e.fail_member(4).unwrap();
    r.frozen = true;
    // Small writes (read-modify-write or reconstruct) and a full stripe, degraded twice.
    let mut over = vec![(5, 9, 0xE1), (unit * 3 + 20, unit * 3 + 21, 0xE2)];
    r.write(5, 0xE1, 4);
    r.write(unit * 3 + 20, 0xE2, 1);
    r.write(unit * 7, 0xE3, unit as u32);
    over.push((unit * 7, unit * 8, 0xE3));
    check(&mut r, &over);
    r.frozen = false;
    r.settle(5_000_000_000);
    let st = r.e.status();
    for m in [6, 7] {
        assert!(r
            .events
            .iter()
            .any(|e| matches!(e, Event::RebuildFinished { member } if *member == m)));
        assert_eq!(st.members[m].state, MemberState::Active, "{st:?}");
    }
    assert_eq!(st.state, ArrayState::Clean, "{st:?}");
    // The rebuilt members alone serve now: lose two of the original ones.
    r.e.fail_member(0).unwrap();
    r.e.fail_member(2).unwrap();
    check(&mut r, &over);
    assert!(r.e.add_spare(spec(120, 60)).is_ok());
    assert!(r.e.add_spare(spec(121, 61)).is_ok());
    r.settle(5_000_000_000);
    r.e.start_scrub(false).unwrap();
    r.settle(2_000_000_000);
    assert_eq!(r.e.counters().last_scrub_mismatch_sectors, 0);
    // Corrupt one sector of Q (stripe 0's Q is on slot 0): check counts it, repair
    // rewrites it, the next check is clean.
    let q_member =
        r.e.status()
            .members
            .iter()
            .find(|m| m.role == Some(0))
            .unwrap()
            .index;
    let at = r.member_data_byte(q_member, 3);
    r.members[q_member].data[at] ^= 0x40;
    r.e.start_scrub(false).unwrap();
    r.settle(2_000_000_000);
    assert_eq!(r.e.counters().last_scrub_mismatch_sectors, 1);
    r.e.start_scrub(true).unwrap();
    r.settle(2_000_000_000);
    r.e.start_scrub(false).unwrap();
    r.settle(2_000_000_000);
    assert_eq!(r.e.counters().last_scrub_mismatch_sectors, 0);
    check(&mut r, &over);
}

/// The member came back once (by bitmap, or whole for the reason in `whole`) and its
/// rebuild finished.
fn assert_readded_and_rebuilt(r: &Rig, member: usize, whole: Option<WholeRebuild>) {
    let readds: Vec<&Event> = r
        .events
        .iter()
        .filter(|e| matches!(e, Event::ReAdded { .. }))
        .collect();
    assert_eq!(
        readds,
        [&Event::ReAdded { member, whole }],
        "{:?}",
        r.events
    );
    assert!(r.events.contains(&Event::RebuildFinished { member }));
}

/// Bytes the rebuilds copied, at most one bitmap region's worth (256 sectors) and
/// nothing else synced.
fn assert_one_region_rebuilt(r: &Rig) {
    let synced = r.e.counters().sync_bytes.rebuild;
    assert!(
        synced > 0 && synced <= 256 * 512,
        "only one bitmap region copied: {synced} bytes"
    );
    assert_eq!(
        r.e.counters().sync_bytes.total(),
        synced,
        "all of it by the rebuild"
    );
}

#[test]
fn returning_member_resyncs_only_the_bitmap_dirty_regions() {
    let mut r = Rig::new(Level::Raid1, 2, 0, 16);
    r.settle(10_000_000_000);
    r.members[1].alive = false;
    r.write(0, 5, 8);
    r.members[1].alive = true;
    r.e.member_returned(1).unwrap();
    r.run();
    r.settle(2_000_000_000);
    assert_readded_and_rebuilt(&r, 1, None);
    assert_one_region_rebuilt(&r);
    r.members[0].alive = false;
    assert_eq!(r.read(0, 8).unwrap(), vec![5; 8 * 512]);
}

/// A clean stop with a member away: the bits must stay (they record what it missed),
/// so the bitmap timer has nothing to wake for. It used to ask for a tick at the
/// present on every poll, and a loop sleeping until `poll_timeout` spun until the
/// stop gave up. The clean mark still lands; when the member comes back during the
/// stop, its bitmap resync runs and then the bits are cleared at once.
#[test]
fn a_clean_stop_of_a_degraded_then_resyncing_array_lands_without_spinning() {
    for (level, n) in [(Level::Raid1, 2), (Level::Raid5, 3)] {
        let mut r = Rig::new(level, n, 0, 16);
        r.settle(10_000_000_000);
        r.members[1].alive = false;
        r.write(0, 5, 8);
        let st = r.e.status();
        assert_eq!(st.state, ArrayState::Degraded, "{level:?}");
        assert!(
            st.bitmap_dirty_regions > 0 && !st.clean_on_disk,
            "{level:?}"
        );
        let at_now = r.clean_stop();
        assert!(at_now <= 1, "{level:?}: {at_now} ticks at the present");
        let st = r.e.status();
        assert!(st.clean_on_disk, "{level:?}: the clean mark landed");
        assert!(r.superblock(0).clean, "{level:?}");
        assert!(
            st.bitmap_dirty_regions > 0,
            "{level:?}: bits kept while away"
        );
        let bit0 = BITMAP_OFFSET as usize * 512;
        assert_eq!(
            r.members[0].data[bit0] & 1,
            1,
            "{level:?}: and on the member"
        );
        assert_eq!(r.e.poll_timeout(), None, "{level:?}");
        // Back while the stop waits: resynced by its bitmap, then the bits go.
        r.members[1].alive = true;
        r.e.member_returned(1).unwrap();
        let at_now = r.clean_stop();
        assert!(at_now <= 2, "{level:?}: {at_now} ticks at the present");
        assert_readded_and_rebuilt(&r, 1, None);
        let st = r.e.status();
        assert_eq!(
            st.bitmap_dirty_regions, 0,
            "{level:?}: cleared once in sync"
        );
        assert!(st.clean_on_disk, "{level:?}");
        assert!((0..n).all(|m| r.superblock(m).clean), "{level:?}");
        assert!(
            r.members.iter().all(|m| m.data[bit0] == 0),
            "{level:?}: the members' bitmaps cleared"
        );
    }
}

/// Nothing was written while the member was away: its bitmap-only rebuild skips
/// every unit, copies nothing and finishes. (The lab's RAID 5 rejoin after a clean
/// stop: the checkpoint stayed at 0 past the skipped units and the debug check that
/// a finished rebuild reached the end stopped the daemon.)
#[test]
fn a_member_back_with_nothing_written_meanwhile_finishes_its_rebuild() {
    let mut r = Rig::new(Level::Raid1, 2, 0, 16);
    r.write(0, 5, 8);
    r.settle(5_000_000_000);
    let away = r.members[1].clone();
    r.members[1].alive = false;
    r.reassemble();
    r.members.push(away);
    r.e.member_returned(1).unwrap();
    r.run();
    r.settle(2_000_000_000);
    assert_readded_and_rebuilt(&r, 1, None);
    assert_eq!(r.e.counters().sync_bytes.total(), 0, "nothing to copy");
    r.members[0].alive = false;
    assert_eq!(r.read(0, 8).unwrap(), vec![5; 8 * 512]);
}

/// RAID 1 with integrity: region 0 written and sealed on both members, then member 1
/// is absent at a restart and, while it is away, region 2 is written and a bit of
/// region 0 flips on it. Returns the rig with member 1 returned (twice: the blade
/// answered again while its first probe was in flight) and settled. `csums_lost`:
/// its first checksum-area sector cannot be read.
fn absent_at_assembly_then_back(csums_lost: bool) -> Rig {
    let mut r = Rig::build(Level::Raid1, 2, 0, 16, true);
    r.write(0, 5, 8);
    r.settle(10_000_000_000);
    let mut away = r.members[1].clone();
    r.members[1].alive = false;
    r.reassemble();
    assert_eq!(r.members.len(), 1, "the absent member is a placeholder");
    r.write(512, 7, 8);
    let at = r.member_data_byte(0, 3);
    away.data[at] ^= 0x10;
    if csums_lost {
        let csum_offset = r.superblock(0).areas.csum_offset;
        away.bad.push((csum_offset, csum_offset + 1));
    }
    r.members.push(away);
    r.e.member_returned(1).unwrap();
    r.e.member_returned(1).unwrap();
    r.run();
    r.settle(2_000_000_000);
    r
}

#[test]
fn a_member_absent_at_assembly_returns_by_its_bitmap_with_its_own_checksums() {
    // Appliance sim concat seed 17: its checksums were never loaded, yet it came back
    // bitmap-only; a silent flip on it passed unverified into a partial write. Its own
    // table, read back, keeps its clean regions verified.
    let mut r = absent_at_assembly_then_back(false);
    assert_readded_and_rebuilt(&r, 1, None);
    assert_one_region_rebuilt(&r);
    r.members[0].alive = false;
    assert_eq!(
        r.read(512, 8).unwrap(),
        vec![7; 8 * 512],
        "the dirty region"
    );
    assert!(
        r.read(0, 8).is_err(),
        "the flip made while it was away is caught by its own checksum"
    );
}

#[test]
fn a_returning_member_whose_checksums_cannot_be_read_is_rebuilt_whole() {
    let mut r = absent_at_assembly_then_back(true);
    assert_readded_and_rebuilt(&r, 1, Some(WholeRebuild::ChecksumsUnreadable));
    assert!(
        r.e.counters().sync_bytes.rebuild >= 4096 * 512,
        "every data sector copied"
    );
    assert!(r.members[1].bad.is_empty(), "its checksum area rewritten");
    let at = r.member_data_byte(1, 3);
    r.members[1].data[at] ^= 0x10;
    r.members[0].alive = false;
    assert_eq!(r.read(512, 8).unwrap(), vec![7; 8 * 512]);
    assert!(
        r.read(0, 8).is_err(),
        "a flip after the rebuild is caught by the checksums it sealed"
    );
}

/// Flips a bit of never-written sector 3 on member 1, then reads it with member 0
/// gone: a sealed block fails its checksum instead of being served.
fn assert_flip_of_unwritten_block_caught(r: &mut Rig) {
    let at = r.member_data_byte(1, 3);
    r.members[1].data[at] ^= 0x10;
    r.members[0].alive = false;
    assert!(r.read(0, 8).is_err(), "the flip is caught by its seal");
}

#[test]
fn an_assume_clean_array_with_integrity_seals_its_blocks_in_the_background() {
    // Before: checksums stayed 0 ("never written") until a block was first written,
    // so a flip in data the array was created over was served unverified.
    let mut r = Rig::build(Level::Raid1, 2, 0, 16, true);
    assert!(r.events.contains(&Event::SealStarted), "{:?}", r.events);
    assert!(r.events.contains(&Event::SealFinished), "{:?}", r.events);
    assert_eq!(
        r.e.counters().sync_bytes.total(),
        0,
        "a seal writes no data"
    );
    assert_flip_of_unwritten_block_caught(&mut r);
}

/// A sealed RAID 1 with integrity whose member 1 lost the first `bytes` of its
/// checksum area (the seal pass stopped before they landed), restarted; member reads
/// counted from the restart.
fn seal_cut_short(bytes: usize, frozen: bool) -> Rig {
    let mut r = Rig::build(Level::Raid1, 2, 0, 16, true);
    let csum0 = r.superblock(1).areas.csum_offset as usize * 512;
    r.members[1].data[csum0..csum0 + bytes].fill(0);
    r.events.clear();
    r.member_reads = 0;
    r.frozen = frozen;
    r.reassemble();
    r
}

#[test]
fn a_seal_in_progress_shows_in_the_status() {
    let mut r = seal_cut_short(4 * 512, true);
    let st = r.e.status();
    assert_eq!(
        st.sync.as_ref().map(|s| s.kind),
        Some(SyncKind::Seal),
        "{st:?}"
    );
    assert_eq!(SyncKind::Seal.name(), "seal");
    r.frozen = false;
    r.settle(1_000_000_000);
    assert!(r.events.contains(&Event::SealFinished), "{:?}", r.events);
    assert_flip_of_unwritten_block_caught(&mut r);
}

#[test]
fn a_seal_cut_short_resumes_at_the_next_start_where_the_tables_say() {
    let mut r = seal_cut_short(4, false);
    assert!(r.events.contains(&Event::SealStarted), "{:?}", r.events);
    assert!(r.events.contains(&Event::SealFinished), "{:?}", r.events);
    let data_sectors = r.superblock(1).data_size;
    assert!(
        r.member_reads < data_sectors / 8,
        "only the unsealed unit is read again: {} sectors",
        r.member_reads
    );
    assert_flip_of_unwritten_block_caught(&mut r);
}

#[test]
fn assembly_writes_the_merged_bitmap_back_to_every_member() {
    // Seed 2052 of the raid1 sweep: a crash landed a bitmap write (a lazy clear) on one
    // member only. Assembly ORs the copies, so the engine believed region 0's bit was
    // on disk; a write while member 1 was away then skipped the bitmap write, and after
    // the next crash the only in-sync member's bitmap had no record of it: the re-added
    // member was "in sync" for region 0 and served stale data.
    let mut r = Rig::new(Level::Raid1, 2, 0, 16);
    r.write(0, 1, 8);
    let bit0 = BITMAP_OFFSET as usize * 512;
    assert!(
        r.members.iter().all(|m| m.data[bit0] & 1 == 1),
        "region 0 dirty"
    );
    r.members[0].data[bit0..bit0 + 512].fill(0);
    r.reassemble();
    assert!(
        r.members.iter().all(|m| m.data[bit0] & 1 == 1),
        "merged bitmap on every member after assembly"
    );
    r.write_while_away_then_restart(1, 2);
    assert!(
        r.events.iter().any(|e| matches!(
            e,
            Event::RebuildStarted {
                bitmap_only: true,
                ..
            }
        )),
        "{:?}",
        r.events
    );
    r.settle(1_000_000_000);
    assert_eq!(r.e.status().state, ArrayState::Clean);
    // Only the re-added member is left: it must hold what it missed.
    assert!(
        r.read_without([0; 16], 0, 8) == vec![2; 8 * 512],
        "the re-added member missed the write while it was away"
    );
}

#[test]
fn superblock_durable_lags_the_status_until_the_round_lands() {
    // A crash assembles from the superblocks, not from `status()`: the simulator's
    // "calm, safe to crash" check (sim raid5 seed 2006 crashed a RAID 5 whose rebuild
    // had finished in memory only) and an orderly shutdown both need to know.
    let mut r = Rig::new(Level::Raid5, 3, 0, 16);
    assert!(r.e.superblock_durable() && r.e.metadata_settled());
    r.e.fail_member(2).unwrap();
    assert_eq!(r.e.status().members[2].state, MemberState::Faulty);
    assert!(!r.e.superblock_durable() && !r.e.metadata_settled());
    r.run();
    assert!(r.e.superblock_durable());
    let sb = SB_OFFSET as usize * 512..(SB_OFFSET as usize + SB_SECTORS as usize) * 512;
    let on_disk = raid_engine::superblock::Superblock::decode(&r.members[0].data[sb]).unwrap();
    assert_eq!(
        on_disk.slots[2].state,
        raid_engine::superblock::SlotState::Faulty
    );
}

#[test]
fn a_re_added_member_gets_the_whole_bitmap() {
    // Like the assembly case: bits set while member 1 was away were on member 0 only.
    // Member 1 came back, caught up, and then was the only in-sync member when member 0
    // failed: its bitmap must record region 0 for member 0's own bitmap-only re-add.
    let mut r = Rig::new(Level::Raid1, 2, 0, 16);
    r.members[1].alive = false;
    r.write(0, 5, 8);
    r.members[1].alive = true;
    r.e.member_returned(1).unwrap();
    r.run();
    assert!(r.events.contains(&Event::RebuildFinished { member: 1 }));
    let bit0 = BITMAP_OFFSET as usize * 512;
    assert!(
        r.members[1].data[bit0] & 1 == 1,
        "re-added member has the bitmap"
    );
    r.write_while_away_then_restart(0, 6);
    r.settle(1_000_000_000);
    assert_eq!(r.e.status().state, ArrayState::Clean);
    assert!(
        r.read_without([1; 16], 0, 8) == vec![6; 8 * 512],
        "member 0 missed the write while it was away"
    );
}

/// RAID 5, 3 members, 8 KiB chunks, integrity on; volume sectors 32..64 (unit 1) written
/// with 1s, then the rig restarts unclean with the resync held before unit 1, so unit 1
/// is dirty and not yet resynced. Left-symmetric row 1: parity on slot 1, data column 0
/// on slot 2, column 1 on slot 0, both at member data sectors 16..32.
fn raid5_unsynced_unit_1(damage: impl FnOnce(&mut Rig, usize)) -> Rig {
    let mut r = Rig::build(Level::Raid5, 3, 0, 16, true);
    r.write(32, 1, 32);
    let at = r.member_data_byte(0, 16);
    damage(&mut r, at);
    r.frozen = true;
    r.reassemble();
    assert_eq!(r.e.status().state, ArrayState::Resyncing);
    r
}

#[test]
fn raid5_torn_blocks_in_several_columns_are_served_as_they_lie_until_resync() {
    // Sims raid5 2027/2035/2051 and concat 2037 (integrity on): a crash tore one stripe
    // write in two data columns (data landed, checksums did not). A read of both in the
    // not-yet-resynced region failed with EIO, "beyond redundancy": only one torn
    // column was served as it lies. Each torn sector holds the old or the new write.
    let mut r = raid5_unsynced_unit_1(|r, at| {
        r.members[2].data[at..at + 8 * 512].fill(0x77);
        r.members[0].data[at..at + 8 * 512].fill(0x77);
    });
    let d = r
        .read(32, 32)
        .expect("torn blocks are not beyond redundancy");
    for (s, sector) in d.chunks(512).enumerate() {
        let want = if s % 16 < 8 { 0x77 } else { 1 };
        assert!(sector.iter().all(|&b| b == want), "sector {}", 32 + s);
    }
}

#[test]
fn raid5_unsynced_column_rebuilt_when_its_checksum_proves_it() {
    // Not yet resynced, the parity is not trusted in general; but a column rebuilt from
    // it that matches the stored checksums is what was last written there. Before, the
    // failed block was served as it lies — here a silently corrupted one.
    let mut r = raid5_unsynced_unit_1(|r, at| r.members[2].data[at + 100] ^= 0x10);
    assert!(
        r.read(32, 8).unwrap() == vec![1; 8 * 512],
        "rebuilt from parity, not the corrupted block"
    );
    let blk = r.member_data_byte(2, 16);
    assert!(
        r.members[2].data[blk..blk + 8 * 512]
            .iter()
            .all(|&b| b == 1),
        "written back"
    );
    assert!(r
        .events
        .iter()
        .any(|e| matches!(e, Event::ChecksumRepaired { member: 2, .. })));
}

#[test]
fn raid0_block_torn_by_a_crash_is_resealed_by_the_resync() {
    // RAID 0 has no other copy: a block whose data landed without its checksum (a
    // crash with the write in flight) must not stay unreadable. As dm-integrity's
    // bitmap mode does, the restart's resync re-checksums the write-intent bitmap's
    // dirty regions, and the block reads as it lies (the old or the new write).
    let mut r = Rig::build(Level::Raid0, 3, 0, 16, true);
    r.write(0, 1, 48);
    // Chunk 1 (volume sectors 16..32) is member 1's data sectors 0..16.
    let at = r.member_data_byte(1, 0);
    r.members[1].data[at..at + 8 * 512].fill(0x77);
    r.reassemble();
    assert_eq!(r.e.status().state, ArrayState::Clean);
    assert_eq!(
        r.e.counters().checksum_errors,
        1,
        "the resync met the torn block"
    );
    for _ in 0..2 {
        let d = r.read(16, 16).expect("a torn block is resealed, not lost");
        assert!(d[..8 * 512].iter().all(|&b| b == 0x77));
        assert!(d[8 * 512..].iter().all(|&b| b == 1));
    }
    assert_eq!(r.read(0, 16).unwrap(), vec![1; 16 * 512]);
}

#[test]
fn raid5_sequential_small_writes_become_full_stripes() {
    // 5 members, 16 KiB chunk: 64 KiB stripe; 8 KiB writes, 16 in flight.
    let mut r = Rig::new(Level::Raid5, 5, 0, 32);
    let mut id = 1;
    let mut off = 0u64;
    for _ in 0..8 {
        for _ in 0..16 {
            r.e.submit(req(id, VolumeOp::Write, off, 16, id as u8));
            id += 1;
            off += 16;
        }
        r.run();
    }
    let c = r.e.counters().clone();
    assert_eq!(c.stripe_read_sectors, 0, "{c:?}");
    assert_eq!(c.full_stripe_writes, 16);
    assert_eq!(r.done.len(), 128);
}

#[test]
fn poll_timeout_is_never_in_the_past_while_a_stripe_gathers_behind_a_job() {
    // A stripe write queued behind a running one kept reporting its gather deadline
    // after it passed (it cannot start before the job ahead finishes), so a loop
    // sleeping until poll_timeout spun.
    let mut r = Rig::new(Level::Raid5, 3, 0, 16);
    r.e.submit(req(1, VolumeOp::Write, 0, 8, 1));
    // The read queued behind releases the gathering write, which starts; the second
    // write gathers behind both while the members do not answer.
    r.e.submit(req(2, VolumeOp::Read, 0, 8, 0));
    r.e.submit(req(3, VolumeOp::Write, 8, 8, 3));
    for step in 1..=4 {
        r.now += step * 1_000_000;
        r.e.tick(r.now);
        if let Some(t) = r.e.poll_timeout() {
            assert!(t > r.now, "poll_timeout {t} at {} (step {step})", r.now);
        }
    }
    r.run();
    assert_eq!(r.done.len(), 3);
    assert!(r.done.iter().all(|c| c.result.is_ok()));
    assert_eq!(r.read(0, 16).unwrap()[8 * 512..], vec![3; 8 * 512][..]);
}

#[test]
fn overlapping_requests_apply_in_order() {
    let mut r = Rig::new(Level::Raid10, 4, 0, 16);
    r.e.submit(req(1, VolumeOp::Write, 10, 30, 1));
    r.e.submit(req(2, VolumeOp::Read, 0, 64, 0));
    r.e.submit(req(3, VolumeOp::Write, 20, 4, 2));
    r.e.submit(req(4, VolumeOp::Flush, 0, 0, 0));
    r.run();
    let read = r
        .done
        .iter()
        .find(|c| c.id == 2)
        .unwrap()
        .result
        .clone()
        .unwrap();
    assert!(read[..10 * 512].iter().all(|&b| b == 0));
    assert!(
        read[10 * 512..40 * 512].iter().all(|&b| b == 1),
        "read sees write 1 whole, not write 3"
    );
    assert!(r.done.iter().all(|c| c.result.is_ok()));
    assert_eq!(
        r.done.last().unwrap().id,
        4,
        "flush completes after everything before it"
    );
    assert_eq!(r.read(20, 4).unwrap(), vec![2; 4 * 512]);
}

#[test]
fn placement_refused_unless_forced() {
    let members = vec![spec(1, 7), spec(2, 7), spec(3, 8), spec(4, 9)];
    let mut cfg = ArrayConfig::new("p", [1; 16], Level::Raid10, members);
    let err = Engine::create(&cfg).err().unwrap();
    assert!(
        err.to_string().contains("members 0 and 1") && err.to_string().contains("shelf 7"),
        "{err}"
    );
    cfg.force_placement = true;
    assert!(Engine::create(&cfg).is_ok());
}

#[test]
fn bad_requests_get_errors_not_panics() {
    let mut r = Rig::new(Level::Raid1, 2, 0, 16);
    let vs = r.e.volume_sectors();
    assert_eq!(r.read(vs, 1), Err(VolumeError::InvalidRequest));
    assert_eq!(
        // One sector declared, three bytes given.
        r.io(VolumeRequest {
            id: 0,
            op: VolumeOp::Write,
            offset: 0,
            sectors: 1,
            data: vec![0; 3],
        }),
        Err(VolumeError::InvalidRequest)
    );
    assert_eq!(r.read(0, 0), Err(VolumeError::InvalidRequest));
    r.e.complete_member_io(987_654, Ok(Vec::new()));
    assert!(r.e.fail_member(99).is_err());
}

#[test]
fn concat_splits_across_arrays() {
    let a = Rig::new(Level::Raid1, 2, 0, 16);
    let b = Rig::new(Level::Raid0, 2, 0, 16);
    let (sa, sb) = (a.e.volume_sectors(), b.e.volume_sectors());
    let mut c = Concat::new(vec![a.e, b.e]);
    assert_eq!(c.volume_sectors(), sa + sb);
    let mut mem = [a.members, b.members];
    let mut drive = |c: &mut Concat| {
        while let Some((arr, io)) = c.poll_member_io() {
            let res = mem[arr][io.member].serve(&io);
            c.complete_member_io(arr, io.id, res);
        }
    };
    c.submit(VolumeRequest {
        id: 1,
        op: VolumeOp::Write,
        offset: sa - 4,
        sectors: 8,
        data: vec![6; 8 * 512],
    });
    drive(&mut c);
    assert!(c.poll_completion().unwrap().result.is_ok());
    c.submit(VolumeRequest {
        id: 2,
        op: VolumeOp::Read,
        offset: sa - 8,
        sectors: 16,
        data: Vec::new(),
    });
    drive(&mut c);
    let d = c.poll_completion().unwrap().result.unwrap();
    assert!(d[..4 * 512].iter().all(|&x| x == 0) && d[4 * 512..12 * 512].iter().all(|&x| x == 6));
}

/// The data offset of member `m` (from its superblock).
fn data_offset(r: &Rig, m: usize) -> usize {
    let sb = SB_OFFSET as usize * 512..(SB_OFFSET as usize + SB_SECTORS as usize) * 512;
    raid_engine::superblock::Superblock::decode(&r.members[m].data[sb])
        .unwrap()
        .areas
        .data_offset as usize
}

/// Flips one bit of sector 3 of the first chunk of the member in `role` (integrity
/// off: nothing notices), returns whether reading the first stripe returned it,
/// then scrubs: check counts one mismatched sector, repair fixes it, the next check
/// is clean. Returns (read returned the flip, the member's byte is back after repair).
fn flip_then_scrub(r: &mut Rig, role: usize, stripe_sectors: u32, want: &[u8]) -> (bool, bool) {
    let m =
        r.e.status()
            .members
            .iter()
            .find(|s| s.role == Some(role))
            .unwrap()
            .index;
    let at = (data_offset(r, m) + 3) * 512 + 77;
    let orig = r.members[m].data[at];
    r.members[m].data[at] ^= 0x10;
    let returned = r.read(0, stripe_sectors).unwrap() != want;
    r.e.start_scrub(false).unwrap();
    r.settle(2_000_000_000);
    assert_eq!(r.e.counters().last_scrub_mismatch_sectors, 1, "role {role}");
    r.e.start_scrub(true).unwrap();
    r.settle(2_000_000_000);
    r.e.start_scrub(false).unwrap();
    r.settle(2_000_000_000);
    assert_eq!(r.e.counters().last_scrub_mismatch_sectors, 0, "role {role}");
    (returned, r.members[m].data[at] == orig)
}

/// RAID 6 without integrity: a flipped bit in any one column (data, P or Q) is
/// returned by reads while it lies on a data chunk, and a scrub repair locates the
/// column from P and Q (md's raid6check) and corrects it: the member's byte is back
/// and reads are right again.
#[test]
fn raid6_scrub_repair_locates_and_corrects_one_bad_column() {
    let mut r = Rig::new(Level::Raid6, 5, 0, 16);
    let stripe = 16 * 3;
    r.write(0, 0x5A, stripe);
    let want = vec![0x5A; stripe as usize * 512];
    let mut data_flips = 0;
    for role in 0..5 {
        let (returned, restored) = flip_then_scrub(&mut r, role, stripe, &want);
        assert!(restored, "role {role}: the bad column was not corrected");
        assert_eq!(r.read(0, stripe).unwrap(), want, "role {role}");
        data_flips += returned as u32;
    }
    assert_eq!(data_flips, 3, "three of five columns hold data");
}

/// RAID 5 without integrity cannot tell a bad data chunk from bad parity: a repair
/// trusts the data and rewrites P (md does the same), so a flip on a data chunk is
/// made consistent, not undone; a flip on P is undone.
#[test]
fn raid5_scrub_repair_trusts_the_data_columns() {
    let mut r = Rig::new(Level::Raid5, 4, 0, 16);
    let stripe = 16 * 3;
    r.write(0, 0xA5, stripe);
    let want = vec![0xA5; stripe as usize * 512];
    let mut kept = 0;
    for role in 0..4 {
        let (returned, restored) = flip_then_scrub(&mut r, role, stripe, &want);
        assert_eq!(returned, !restored, "role {role}");
        if returned {
            kept += 1;
            // Put the member right again for the next role.
            r.write(0, 0xA5, stripe);
        }
    }
    assert_eq!(kept, 3, "three of four columns hold data");
}

/// Byte offsets of every partial-parity-log slot on a member (from its superblock).
fn log_slots(r: &Rig, m: usize) -> Vec<usize> {
    let sb = SB_OFFSET as usize * 512..(SB_OFFSET as usize + SB_SECTORS as usize) * 512;
    let sb = raid_engine::superblock::Superblock::decode(&r.members[m].data[sb]).unwrap();
    (0..sb.areas.ppl_slots as usize)
        .map(|s| (sb.areas.ppl_offset as usize + s * sb.areas.ppl_slot_sectors as usize) * 512)
        .collect()
}

#[test]
fn raid5_log_entries_that_cannot_be_trusted_are_skipped_and_counted() {
    // RAID 5 over 4 members, 8 KiB chunks: unit 0 written whole with 1s, then rows 8..16
    // of its column 0 with 2s (read-modify-write, not a prefix held for gathering: the
    // entry's partial parity is columns 1 and 2 of those rows). The crash leaves that
    // entry on P's member; three copies of it are spoiled: its payload torn (the CRC
    // fails), a whole copy on another member's slot (not where that stripe's entries
    // go) and a copy sealed with an earlier run's generation. Column 1's member is then
    // lost: had the torn partial parity been applied, column 1 would come back from it,
    // wrong.
    let mut r = Rig::new(Level::Raid5, 4, 0, 16);
    r.write(0, 1, 48);
    r.frozen = true;
    r.write(8, 2, 8);
    let with_entry: Vec<(usize, usize)> = (0..4)
        .flat_map(|m| log_slots(&r, m).into_iter().map(move |at| (m, at)))
        .filter(|&(m, at)| &r.members[m].data[at..at + 8] == b"AOERPPL\x01")
        .collect();
    let [(p, at)] = with_entry[..] else {
        panic!("one entry for the one stripe written: {with_entry:?}");
    };
    let col1 = r.e.geometry().map(16).0;
    let other = (0..4).find(|&m| m != p && m != col1).unwrap();
    let entry = r.members[p].data[at..at + 16 * 512].to_vec();
    let earlier = {
        let mut b = entry.clone();
        b[24..32].copy_from_slice(&0u64.to_le_bytes());
        let crc = crc32c::crc32c(&b[..4092]);
        b[4092..4096].copy_from_slice(&crc.to_le_bytes());
        b
    };
    let spare_slot = log_slots(&r, p)[5];
    r.members[p].data[spare_slot..spare_slot + earlier.len()].copy_from_slice(&earlier);
    let elsewhere = log_slots(&r, other)[0];
    r.members[other].data[elsewhere..elsewhere + entry.len()].copy_from_slice(&entry);
    r.members[p].data[at + 4096 + 100] ^= 0xff;
    r.members[col1].alive = false;
    r.reassemble();
    let c = r.e.counters();
    assert_eq!(
        (c.ppl_replayed, c.ppl_refused, c.ppl_stale),
        (0, 2, 1),
        "replayed, refused, stale: {c:?}"
    );
    let d = r.read(0, 48).unwrap();
    for (s, sector) in d.chunks(512).enumerate() {
        let want = if (8..16).contains(&s) { 2 } else { 1 };
        assert!(sector.iter().all(|&b| b == want), "sector {s}");
    }
}

/// Every blade silent at once (the appliance simulator's outage): the appliance
/// fails each member while writes wait on them. The failed array answers every
/// write and keeps its books (the simulator's `--layout raid10 --seed 3` found
/// a failed array whose bitmap counted writes no job held any more).
#[test]
fn an_array_failing_with_writes_in_flight_gives_their_write_intent_back() {
    let mut r = Rig::new(Level::Raid1, 2, 0, 16);
    for id in 1..=8 {
        r.e.submit(req(id, VolumeOp::Write, (id % 2) * 256, 8, id as u8));
    }
    // Their member I/O is out and never answered: the blades fell silent.
    let stuck: Vec<MemberIo> = std::iter::from_fn(|| r.e.poll_member_io()).collect();
    assert!(!stuck.is_empty());
    for m in 0..2 {
        r.e.fail_member(m).unwrap();
        r.e.check_invariants().unwrap();
    }
    assert_eq!(r.e.status().state, ArrayState::Failed);
    r.run();
    for id in 1..=8 {
        let c = r.done.iter().find(|c| c.id == id).expect("answered");
        assert_eq!(c.result, Err(VolumeError::ArrayFailed));
    }
}
