//! Any bytes as a member's export state record area (sectors 0–7: two 2 KiB
//! slots, `frontend/record.rs`), what a starting appliance reads from every member
//! of a volume. Decoding and the newest-whole-record choice never panic; a decoded
//! record encodes to a slot that decodes to the same record, and the record's own
//! slot is where `offset` says; a record torn anywhere is refused, and tearing the
//! newer slot leaves the choice on the other slot's record, never on the torn one.
//!
//! Random bytes almost never carry the magic and a good CRC32C, so the area is
//! also tried with both slots *sealed* (magic, version and checksum put in).
#![no_main]

use aoeraid_appliance::fuzzing::{Record, RECORD_AREA_BYTES};
use libfuzzer_sys::fuzz_target;

const SLOT: usize = RECORD_AREA_BYTES / 2;
const CRC_AT: usize = SLOT - 4;

fn seal(slot: &mut [u8]) {
    slot[..8].copy_from_slice(b"AOERAIDX");
    slot[8..12].copy_from_slice(&1u32.to_le_bytes());
    let crc = crc32c::crc32c(&slot[..CRC_AT]);
    slot[CRC_AT..SLOT].copy_from_slice(&crc.to_le_bytes());
}

fn check_slot(b: &[u8]) -> Option<Record> {
    let r = Record::decode(b)?;
    let again = r.encode();
    assert_eq!(again.len(), SLOT);
    assert_eq!(Record::decode(&again).as_ref(), Some(&r), "round trip");
    assert_eq!(again, Record::decode(&again).unwrap().encode(), "fixpoint");
    Some(r)
}

/// The choice over `area` for every filter the decoded slots suggest.
fn check_area(area: &[u8]) {
    let slots: Vec<Option<Record>> = area.chunks(SLOT).take(2).map(check_slot).collect();
    for r in slots.iter().flatten() {
        for export in [None, Some(r.export())] {
            let best = Record::newest_in(area, &r.array_uuid(), export)
                .expect("a whole record of this array is there");
            assert!(best.seq() >= r.seq());
            assert_eq!(best.array_uuid(), r.array_uuid());
            assert!(
                slots.iter().flatten().any(|s| s == &best),
                "chosen from a slot"
            );
        }
    }
    let foreign = [0x5A; 16];
    if slots.iter().flatten().all(|r| r.array_uuid() != foreign) {
        assert_eq!(Record::newest_in(area, &foreign, None), None);
    }
}

fuzz_target!(|data: &[u8]| {
    check_area(data);
    let mut area = vec![0u8; RECORD_AREA_BYTES];
    let n = data.len().min(RECORD_AREA_BYTES);
    area[..n].copy_from_slice(&data[..n]);
    for s in area.chunks_mut(SLOT) {
        seal(s);
    }
    check_area(&area);
    // Put each whole record in the slot its sequence number picks and tear the
    // newer one (one bit, chosen by the input): the older one must still win.
    let recs: Vec<Record> = area.chunks(SLOT).filter_map(Record::decode).collect();
    let [a, b] = recs.as_slice() else {
        return;
    };
    if a.seq() % 2 == b.seq() % 2 || a.array_uuid() != b.array_uuid() || a.export() != b.export() {
        return;
    }
    let (old, new) = if a.seq() < b.seq() { (a, b) } else { (b, a) };
    let mut placed = vec![0u8; RECORD_AREA_BYTES];
    for r in [old, new] {
        let at = r.offset() as usize * 512;
        placed[at..at + SLOT].copy_from_slice(&r.encode());
    }
    let pick = |area: &[u8]| Record::newest_in(area, &new.array_uuid(), Some(new.export()));
    assert_eq!(pick(&placed).as_ref(), Some(new));
    let bit = data
        .iter()
        .fold(0usize, |h, &x| h.wrapping_mul(31).wrapping_add(x.into()))
        % (SLOT * 8);
    let at = new.offset() as usize * 512 + bit / 8;
    placed[at] ^= 1 << (bit % 8);
    assert_eq!(
        Record::decode(&placed[new.offset() as usize * 512..][..SLOT]),
        None,
        "torn"
    );
    assert_eq!(pick(&placed).as_ref(), Some(old));
});
