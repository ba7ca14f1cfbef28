//! The write-intent bitmap as assembly loads it from disk: a superblock (the
//! input's first 4 KiB, sealed with the magic and a good checksum) is written to
//! every slot's member, `assemble` plans the array and `Engine::assemble` reads
//! each in-sync member's bitmap sectors, answered with the input's next bytes.
//! Nothing may panic, and the load may not run away (bounded I/O); every member
//! I/O lies inside one area the superblock declares (superblock, bitmap,
//! checksums, partial-parity log, data) and inside the member; the loaded bitmap is the OR of the
//! sectors read (bits beyond the array's regions ignored), and the engine's
//! write-back of each bitmap sector carries exactly those bits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use raid_engine::superblock::{
    SlotState, Superblock, BITMAP_OFFSET, MAGIC, SB_BYTES, SB_OFFSET, SB_SECTORS,
};
use raid_engine::{assemble, AssemblyInput, Engine, MemberOp};

/// Members larger than this are not tried: the bitmap's size follows the member's.
const MAX_MEMBER_SECTORS: u64 = 1 << 22;
/// More member I/O than this before the engine settles is a runaway.
const MAX_IOS: usize = 100_000;

fn seal(data: &[u8]) -> [u8; SB_BYTES] {
    let mut b = [0u8; SB_BYTES];
    let n = data.len().min(SB_BYTES);
    b[..n].copy_from_slice(&data[..n]);
    b[..8].copy_from_slice(&MAGIC);
    let crc = crc32c::crc32c(&b[..SB_BYTES - 4]);
    b[SB_BYTES - 4..].copy_from_slice(&crc.to_le_bytes());
    b
}

fn within(start: u64, len: u64, area: (u64, u64)) -> bool {
    start >= area.0 && start.saturating_add(len) <= area.0.saturating_add(area.1)
}

fuzz_target!(|data: &[u8]| {
    let Ok(mut sb) = Superblock::decode(&seal(data)) else {
        return;
    };
    let size = sb.areas.data_offset.saturating_add(sb.data_size);
    if size > MAX_MEMBER_SECTORS || sb.raid_disks > 8 {
        return;
    }
    // A clean array with every slot in sync: the engine only loads metadata.
    sb.clean = true;
    sb.recovering = false;
    for s in &mut sb.slots {
        s.state = SlotState::Active;
    }
    let inputs: Vec<AssemblyInput> = (0..sb.raid_disks)
        .map(|role| {
            let mut m = sb.clone();
            m.member_uuid = sb.slots[role as usize].member_uuid;
            m.role = role;
            AssemblyInput {
                name: format!("m{role}"),
                superblock: Ok(m.encode()),
                size_sectors: size,
            }
        })
        .collect();
    let Ok(plan) = assemble(&inputs, None, true) else {
        return;
    };
    let Ok(mut engine) = Engine::assemble(&plan) else {
        return;
    };
    let areas = [
        (SB_OFFSET, u64::from(SB_SECTORS)),
        (BITMAP_OFFSET, u64::from(sb.areas.bitmap_sectors)),
        (sb.areas.csum_offset, sb.areas.csum_sectors),
        (
            sb.areas.ppl_offset,
            u64::from(sb.areas.ppl_slots) * u64::from(sb.areas.ppl_slot_sectors),
        ),
        (sb.areas.data_offset, sb.data_size),
    ];
    let mut feed = data.get(SB_BYTES..).unwrap_or_default().chunks(512);
    let mut loaded: Vec<u8> = Vec::new();
    let mut written: Vec<Option<Vec<u8>>> = Vec::new();
    let mut ios = 0;
    while let Some(io) = engine.poll_member_io() {
        ios += 1;
        assert!(ios <= MAX_IOS, "member I/O runs away");
        let len = u64::from(io.sectors);
        assert!(
            io.op == MemberOp::Flush || areas.iter().any(|&a| within(io.offset, len, a)),
            "{:?} of sectors {}+{} outside every area {areas:?}",
            io.op,
            io.offset,
            len
        );
        assert!(io.offset.saturating_add(len) <= size, "beyond the member");
        let in_bitmap = within(io.offset, len, areas[1]);
        let result = match io.op {
            MemberOp::Read => {
                let mut d = vec![0u8; io.sectors as usize * 512];
                if in_bitmap {
                    for (i, sector) in d.chunks_mut(512).enumerate() {
                        let src = feed.next().unwrap_or_default();
                        sector[..src.len()].copy_from_slice(src);
                        let at = (io.offset - BITMAP_OFFSET) as usize * 512 + i * 512;
                        if loaded.len() < at + 512 {
                            loaded.resize(at + 512, 0);
                        }
                        for (l, b) in loaded[at..at + 512].iter_mut().zip(sector.iter()) {
                            *l |= b;
                        }
                    }
                }
                Ok(d)
            }
            MemberOp::Write => {
                if in_bitmap {
                    assert_eq!(io.data.len(), io.sectors as usize * 512);
                    for (i, sector) in io.data.chunks(512).enumerate() {
                        let s = (io.offset - BITMAP_OFFSET) as usize + i;
                        if written.len() <= s {
                            written.resize(s + 1, None);
                        }
                        // The first write-back of each sector is the loaded bitmap.
                        written[s].get_or_insert_with(|| sector.to_vec());
                    }
                }
                Ok(Vec::new())
            }
            MemberOp::Flush => Ok(Vec::new()),
        };
        engine.complete_member_io(io.id, result);
    }
    assert!(engine.is_ready(), "the load finished");
    let regions = engine
        .geometry()
        .units()
        .div_ceil(sb.bitmap_region_units)
        .max(1);
    let bit = |bytes: &[u8], r: u64| {
        bytes
            .get((r / 8) as usize)
            .is_some_and(|b| b >> (r % 8) & 1 == 1)
    };
    let dirty = (0..regions).filter(|&r| bit(&loaded, r)).count() as u64;
    assert_eq!(engine.status().bitmap_dirty_regions, dirty);
    for (s, w) in written.iter().enumerate() {
        let w = w
            .as_ref()
            .expect("every bitmap sector up to the last is written back");
        for (i, &byte) in w.iter().enumerate() {
            for b in 0..8 {
                let r = ((s * 512 + i) * 8 + b) as u64;
                let want = r < regions && bit(&loaded, r);
                assert_eq!(byte >> b & 1 == 1, want, "region {r} written back wrong");
            }
        }
    }
});
