//! The partial-parity log as the replay after a crash reads it. A RAID 5 (4 members)
//! or RAID 6 (5 members) array is written through the engine — whole stripes, then
//! small writes that leave real entries in the log slots — and its members are taken
//! as they lie, unclean, every stripe consistent. The input then overwrites log slots:
//! byte 0 picks the array and which member (if any) is lost; then records of
//! `[member, slot, mode, len lo, len hi]` + `len` bytes written at the slot's start,
//! mode 0 as given, 1..=3 sealed (`ppl_seal`: magic, array, a good CRC) with the
//! crashed run's generation, the one before, the one after. The array is assembled
//! and the engine runs until it issues no more member I/O.
//!
//! Every decoded entry encodes to bytes that decode equal, and with one header bit
//! flipped is refused. Replay never trusts the log: nothing panics, member I/O stays
//! bounded and inside the members; every slot with an entry header is replayed,
//! refused or counted stale (`ppl_replayed + ppl_refused + ppl_stale`); with every
//! member present no data-area byte changes (consistent stripes stay as they are,
//! whatever the log says); with one lost, bytes change only in stripes named by a whole
//! header of the crashed run (`ppl_vouched_unit`).
#![no_main]

use std::collections::BTreeSet;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use raid_engine::fuzzing::{ppl_present, ppl_seal, ppl_vouched_unit, PplEntry, PPL_HEADER_BYTES};
use raid_engine::sim::VMember;
use raid_engine::superblock::{Superblock, SB_OFFSET, SB_SECTORS};
use raid_engine::{
    assemble, ArrayConfig, AssemblyInput, Engine, Level, MemberError, MemberIo, MemberSpec,
    VolumeRequest,
};

const CHUNK: u32 = 8;
const UNITS: u64 = 48;
/// Sectors before the data area: the engine aligns data to 1 MiB.
const DATA_OFFSET: u64 = 2048;
const MAX_IOS: usize = 100_000;

struct Crashed {
    members: Vec<VMember>,
    sb: Superblock,
}

impl Crashed {
    fn slot_at(&self, slot: u64) -> usize {
        (self.sb.areas.ppl_offset + slot * u64::from(self.sb.areas.ppl_slot_sectors)) as usize * 512
    }

    fn slot_bytes(&self) -> usize {
        self.sb.areas.ppl_slot_sectors as usize * 512
    }
}

/// Serve the engine's member I/O from `members` until it issues none; panics on a
/// runaway or on I/O beyond a member.
fn pump(e: &mut Engine, members: &mut [VMember]) {
    let mut ios = 0;
    loop {
        let mut any = false;
        while let Some(io) = e.poll_member_io() {
            any = true;
            ios += 1;
            assert!(ios <= MAX_IOS, "member I/O runs away");
            let MemberIo {
                member,
                offset,
                sectors,
                ..
            } = io;
            let m = &mut members[member];
            assert!(
                offset + u64::from(sectors) <= m.sectors(),
                "{:?} of {offset}+{sectors} beyond member {member}",
                io.op
            );
            let r = m.serve(&io);
            e.complete_member_io(io.id, r);
        }
        while e.poll_completion().is_some() {}
        while e.poll_event().is_some() {}
        if !any {
            return;
        }
    }
}

fn crashed(level: Level, n: usize) -> Crashed {
    let size = DATA_OFFSET + UNITS * u64::from(CHUNK);
    let specs = (0..n as u8)
        .map(|i| MemberSpec {
            uuid: [i + 1; 16],
            size_sectors: size,
            shelf: Some(u32::from(i)),
        })
        .collect();
    let mut cfg = ArrayConfig::new("f", [0x5a; 16], level, specs);
    cfg.chunk_sectors = CHUNK;
    cfg.assume_clean = true;
    cfg.ppl = true;
    let mut e = Engine::create(&cfg).expect("create");
    let mut members: Vec<VMember> = (0..n).map(|_| VMember::new(size, 0, 0)).collect();
    pump(&mut e, &mut members);
    let vs = e.volume_sectors();
    let stripe = u64::from(CHUNK) * (n - level.parity()) as u64;
    let mut id = 0;
    let mut write = |e: &mut Engine, offset: u64, sectors: u64| {
        id += 1;
        let data = (0..sectors * 512)
            .map(|i| (i * 7 + id * 13) as u8)
            .collect();
        e.submit(VolumeRequest::write(id, offset, data));
    };
    for s in (0..vs).step_by(stripe as usize) {
        write(&mut e, s, stripe);
    }
    pump(&mut e, &mut members);
    // Small writes (read-modify-write, reconstruct-write): entries with partial parity.
    for i in 0..24u64 {
        write(&mut e, (i * 37 + 3) % (vs - 3), 1 + i % 3);
        pump(&mut e, &mut members);
    }
    // No tick: the superblocks still say dirty, as after a crash.
    let sb = Superblock::decode(members[0].read(SB_OFFSET, SB_SECTORS).as_deref().unwrap())
        .expect("superblock");
    assert!(!sb.clean && sb.areas.ppl_slots > 0 && sb.areas.data_offset == DATA_OFFSET);
    Crashed { members, sb }
}

fn arrays() -> &'static [Crashed; 2] {
    static A: OnceLock<[Crashed; 2]> = OnceLock::new();
    A.get_or_init(|| [crashed(Level::Raid5, 4), crashed(Level::Raid6, 5)])
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, mut rest)) = data.split_first() else {
        return;
    };
    let c = &arrays()[usize::from(pick & 1)];
    let n = c.members.len();
    let lost = match usize::from(pick >> 1) % (n + 1) {
        0 => None,
        m => Some(m - 1),
    };
    let (uuid, generation) = (c.sb.array_uuid, c.sb.ppl_generation);
    let mut members = c.members.clone();
    let slot_bytes = c.slot_bytes();
    while rest.len() >= 5 {
        let (h, r) = rest.split_at(5);
        let len = usize::from(u16::from_le_bytes([h[3], h[4]]))
            .min(r.len())
            .min(slot_bytes);
        let (body, r) = r.split_at(len);
        rest = r;
        let at = c.slot_at(u64::from(h[1]) % u64::from(c.sb.areas.ppl_slots));
        let slot = &mut members[usize::from(h[0]) % n].data[at..at + slot_bytes];
        slot[..len].copy_from_slice(body);
        match h[2] % 4 {
            0 => {}
            g => ppl_seal(slot, &uuid, generation + u64::from(g) - 2),
        }
        if let Some(e) = PplEntry::decode(slot, &uuid) {
            let bytes = e.encode();
            assert_eq!(PplEntry::decode(&bytes, &uuid).as_ref(), Some(&e));
            let mut torn = bytes.clone();
            let bit = usize::from(h[3]) * 8 % (PPL_HEADER_BYTES * 8 - 64) + 64;
            torn[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                PplEntry::decode(&torn, &uuid),
                None,
                "one header bit flipped"
            );
        }
    }

    let mut present = 0u64;
    let mut vouched = BTreeSet::new();
    for (i, m) in members.iter().enumerate() {
        if Some(i) == lost {
            continue;
        }
        for s in 0..u64::from(c.sb.areas.ppl_slots) {
            let slot = &m.data[c.slot_at(s)..c.slot_at(s) + slot_bytes];
            present += u64::from(ppl_present(slot));
            vouched.extend(ppl_vouched_unit(slot, &uuid, generation));
        }
    }
    let inputs: Vec<AssemblyInput> = members
        .iter()
        .enumerate()
        .map(|(i, m)| AssemblyInput {
            name: format!("m{i}"),
            superblock: if Some(i) == lost {
                Err(MemberError::Gone)
            } else {
                m.read(SB_OFFSET, SB_SECTORS).ok_or(MemberError::Io)
            },
            size_sectors: m.sectors(),
        })
        .collect();
    // With the log, an unclean array that lost one member assembles without force.
    let plan = assemble(&inputs, Some(uuid), false).expect("dirty degraded assembly");
    let mut e = Engine::assemble(&plan).expect("engine assemble");
    let mut run: Vec<VMember> = plan
        .members
        .iter()
        .map(|pm| members[pm.input].clone())
        .collect();
    let order: Vec<usize> = plan.members.iter().map(|pm| pm.input).collect();
    while run.len() < n {
        let mut dead = VMember::new(c.members[0].sectors(), 0, 0);
        dead.alive = false;
        run.push(dead);
    }
    pump(&mut e, &mut run);
    assert!(e.is_ready(), "assembly finished");
    let k = e.counters();
    assert_eq!(
        k.ppl_replayed + k.ppl_refused + k.ppl_stale,
        present,
        "every entry header read is replayed, refused or stale: {k:?}"
    );
    let data_at = DATA_OFFSET as usize * 512;
    for (m, &input) in run.iter().zip(&order) {
        let before = &c.members[input].data[data_at..];
        for (s, (a, b)) in m.data[data_at..]
            .chunks(512)
            .zip(before.chunks(512))
            .enumerate()
        {
            if a == b {
                continue;
            }
            let unit = s as u64 / u64::from(CHUNK);
            assert!(
                lost.is_some(),
                "member {input} sector {s} changed with every member present"
            );
            assert!(
                vouched.contains(&unit),
                "member {input} unit {unit} changed by no whole entry of the crashed run"
            );
        }
    }
});
