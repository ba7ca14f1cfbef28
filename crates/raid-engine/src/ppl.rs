//! Partial-parity log (PPL) entries, as md's PPL: before a RAID 5/6 stripe write puts
//! new data and parity on its members, the stripe's P member gets one entry naming the
//! sectors about to change and the XOR of the data that will *not* change (the partial
//! parity). After a crash, P = partial parity ⊕ whatever landed in the changing sectors
//! is consistent with the data on disk, even with one data member gone. See DESIGN.md
//! ("Write hole: partial-parity log").
//!
//! Entry = one 4 KiB header (magic, array, generation, sequence, unit, row range,
//! covered intervals, CRC32C of the payload, CRC32C of the header) followed by the
//! partial parity of rows `lo..hi` (absent for a full-stripe write, where every row
//! changes in every data column and the partial parity is zero).

use crate::le::{get32, get64, put32, put64};
use crate::types::SECTOR;

pub(crate) const HEADER_SECTORS: u64 = 8;
const HEADER_BYTES: usize = HEADER_SECTORS as usize * SECTOR;
const MAGIC: [u8; 8] = *b"AOERPPL\x01";
/// Slots per member: stripe writes whose P is on one member that can be in flight at
/// once (more wait for a slot). 32 covers the Linux aoe driver's queue depth with
/// every request on its own stripe.
pub(crate) const SLOTS: u32 = 32;
/// Covered intervals one entry can name; a gathering stripe stops merging writes
/// before it would need more (`Entry::fits`).
pub(crate) const MAX_INTERVALS: usize = 128;
const INTERVALS_AT: usize = 96;
const COL_CRCS_AT: usize = INTERVALS_AT + MAX_INTERVALS * 16;
const MAX_COLS: usize = (CRC_AT - COL_CRCS_AT) / 4;
const CRC_AT: usize = HEADER_BYTES - 4;

/// One logged stripe write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub array_uuid: [u8; 16],
    /// The engine run that wrote it (see `PplState::generation`).
    pub generation: u64,
    /// Order of entries within a run: the newest entry of a unit describes its last write.
    pub seq: u64,
    pub unit: u64,
    /// Rows (chunk-relative sectors) the write covers on every column.
    pub lo: u64,
    pub hi: u64,
    /// Unit-relative sector intervals the write changes (the stripe buffer's coverage).
    pub covered: Vec<(u64, u64)>,
    /// Partial parity of rows lo..hi, or empty for a full-stripe write.
    pub partial: Vec<u8>,
    /// CRC32C of each data column's new bytes over lo..hi: after a crash, a lost column
    /// rebuilt from P that matches it holds the write's data (the write completed).
    pub col_crcs: Vec<u32>,
}

impl Entry {
    pub(crate) fn fits(intervals: usize) -> bool {
        intervals <= MAX_INTERVALS
    }

    /// Sectors the entry occupies on the member.
    pub(crate) fn sectors(&self) -> u64 {
        HEADER_SECTORS + (self.partial.len() / SECTOR) as u64
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_BYTES + self.partial.len()];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..24].copy_from_slice(&self.array_uuid);
        put64(&mut b, 24, self.generation);
        put64(&mut b, 32, self.seq);
        put64(&mut b, 40, self.unit);
        put64(&mut b, 48, self.lo);
        put64(&mut b, 56, self.hi);
        put64(&mut b, 64, (self.partial.len() / SECTOR) as u64);
        put32(&mut b, 72, self.covered.len() as u32);
        put32(&mut b, 76, crc32c::crc32c(&self.partial));
        put32(&mut b, 80, self.col_crcs.len() as u32);
        debug_assert!(Entry::fits(self.covered.len()), "too many intervals");
        debug_assert!(self.col_crcs.len() <= MAX_COLS, "too many columns");
        for (i, &c) in self.col_crcs.iter().enumerate() {
            put32(&mut b, COL_CRCS_AT + i * 4, c);
        }
        for (i, &(a, e)) in self.covered.iter().enumerate() {
            put64(&mut b, INTERVALS_AT + i * 16, a);
            put64(&mut b, INTERVALS_AT + i * 16 + 8, e);
        }
        let crc = crc32c::crc32c(&b[..CRC_AT]);
        put32(&mut b, CRC_AT, crc);
        b[HEADER_BYTES..].copy_from_slice(&self.partial);
        b
    }

    /// Does the slot hold an entry header at all (zeroed and never-written slots do not)?
    pub(crate) fn present(b: &[u8]) -> bool {
        b.get(..MAGIC.len()) == Some(&MAGIC[..])
    }

    /// An entry of this array, whole (a torn entry write fails a CRC: its stripe write
    /// was never issued, since data waits for the entry).
    pub(crate) fn decode(b: &[u8], array_uuid: &[u8; 16]) -> Option<Entry> {
        if b.len() < HEADER_BYTES || b[0..8] != MAGIC || &b[8..24] != array_uuid {
            return None;
        }
        if crc32c::crc32c(&b[..CRC_AT]) != get32(b, CRC_AT) {
            return None;
        }
        let n = get32(b, 72) as usize;
        let partial_sectors = get64(b, 64);
        let (lo, hi) = (get64(b, 48), get64(b, 56));
        let ncols = get32(b, 80) as usize;
        if ncols > MAX_COLS
            || n > MAX_INTERVALS
            || lo >= hi
            || (partial_sectors != 0 && partial_sectors != hi - lo)
        {
            return None;
        }
        // The row count is the header's word: a whole header may still name more rows
        // than any slot holds (or than a byte count can express).
        let end = usize::try_from(partial_sectors)
            .ok()
            .and_then(|s| s.checked_mul(SECTOR))
            .and_then(|len| len.checked_add(HEADER_BYTES))?;
        let partial = b.get(HEADER_BYTES..end)?.to_vec();
        if crc32c::crc32c(&partial) != get32(b, 76) {
            return None;
        }
        let covered = (0..n)
            .map(|i| {
                (
                    get64(b, INTERVALS_AT + i * 16),
                    get64(b, INTERVALS_AT + i * 16 + 8),
                )
            })
            .collect();
        Some(Entry {
            array_uuid: *array_uuid,
            generation: get64(b, 24),
            seq: get64(b, 32),
            unit: get64(b, 40),
            lo,
            hi,
            covered,
            partial,
            col_crcs: (0..ncols).map(|i| get32(b, COL_CRCS_AT + i * 4)).collect(),
        })
    }

    /// Make `b` (one slot) pass the CRCs as this array's entry of `generation`: magic,
    /// array and generation set, the payload's CRC taken over the sectors the header
    /// declares (where they fit), the header's CRC last. The fuzz target's way past the
    /// CRCs to the field checks behind them.
    #[cfg(fuzzing)]
    pub(crate) fn seal(b: &mut [u8], array_uuid: &[u8; 16], generation: u64) {
        if b.len() < HEADER_BYTES {
            return;
        }
        b[0..8].copy_from_slice(&MAGIC);
        b[8..24].copy_from_slice(array_uuid);
        put64(b, 24, generation);
        let end = usize::try_from(get64(b, 64))
            .ok()
            .and_then(|n| n.checked_mul(SECTOR))
            .and_then(|n| n.checked_add(HEADER_BYTES));
        if let Some(payload) = end.and_then(|end| b.get(HEADER_BYTES..end)) {
            let crc = crc32c::crc32c(payload);
            put32(b, 76, crc);
        }
        let crc = crc32c::crc32c(&b[..CRC_AT]);
        put32(b, CRC_AT, crc);
    }

    /// The unit a slot's header names when the header itself is whole (its CRC holds)
    /// and belongs to this array's run `generation` — the only entries replay may act
    /// on, whatever their other fields say.
    #[cfg(fuzzing)]
    pub(crate) fn vouched_unit(b: &[u8], array_uuid: &[u8; 16], generation: u64) -> Option<u64> {
        let whole = b.len() >= HEADER_BYTES
            && b[0..8] == MAGIC
            && &b[8..24] == array_uuid
            && get64(b, 24) == generation
            && crc32c::crc32c(&b[..CRC_AT]) == get32(b, CRC_AT);
        whole.then(|| get64(b, 40))
    }

    /// Does the write change row `r` (chunk-relative) of data column `c`?
    pub(crate) fn changes(&self, chunk: u64, c: usize, r: u64) -> bool {
        let s = c as u64 * chunk + r;
        self.covered.iter().any(|&(a, b)| a <= s && s < b)
    }
}

/// Partial parity of rows lo..hi: new P with every changing sector's new data taken
/// out again, i.e. the XOR of the data that stays.
pub(crate) fn partial_parity(
    new_p: &[u8],
    new_data: &[Vec<u8>],
    chunk: u64,
    lo: u64,
    covered: &[(u64, u64)],
) -> Vec<u8> {
    let mut pp = new_p.to_vec();
    for (c, d) in new_data.iter().enumerate() {
        let base = c as u64 * chunk;
        for &(a, b) in covered {
            let (a, b) = (
                a.max(base + lo),
                b.min(base + lo + (d.len() / SECTOR) as u64),
            );
            for s in a..b.max(a) {
                let at = (s - base - lo) as usize * SECTOR;
                crate::xor::xor_into(&mut pp[at..at + SECTOR], &d[at..at + SECTOR]);
            }
        }
    }
    pp
}

/// Fill row `r` (bytes `(r-lo)·512..` of every column) of the one lost data column
/// `j` from the entry: from the partial parity when the write left that column alone
/// (exact: the column holds acknowledged data there), else from P. When the write
/// changed that column alone in this row, P and the column hold the same generation of
/// the row (old with old, new with new), so P gives the old or the new bytes. Returns
/// false when the write changed it together with other columns: the bytes from P are
/// then neither reliably old nor new — md's PPL leaves such rows so too; they were
/// never acknowledged.
pub(crate) fn fill_row(
    entry: &Entry,
    chunk: u64,
    r: u64,
    data: &mut [Vec<u8>],
    j: usize,
    p: &[u8],
) -> bool {
    let at = (r - entry.lo) as usize * SECTOR;
    let changed: Vec<usize> = (0..data.len())
        .filter(|&c| entry.changes(chunk, c, r))
        .collect();
    let from_partial = !changed.contains(&j) && !entry.partial.is_empty();
    let mut row = if from_partial {
        entry.partial[at..at + SECTOR].to_vec()
    } else {
        p[at..at + SECTOR].to_vec()
    };
    for (c, d) in data.iter().enumerate() {
        // Partial parity already holds the changed columns' share; P holds everyone's.
        if c != j && !(from_partial && changed.contains(&c)) {
            crate::xor::xor_into(&mut row, &d[at..at + SECTOR]);
        }
    }
    data[j][at..at + SECTOR].copy_from_slice(&row);
    from_partial || changed.len() <= 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            array_uuid: [3; 16],
            generation: 7,
            seq: 9,
            unit: 42,
            lo: 2,
            hi: 4,
            covered: vec![(2, 3), (8 + 3, 8 + 4)],
            partial: vec![0x5a; 2 * SECTOR],
            col_crcs: vec![1, 2, 3],
        }
    }

    #[test]
    fn a_column_changed_with_others_is_reported() {
        let mut e = entry();
        e.covered = vec![(2, 3), (8 + 2, 8 + 3)];
        let mut d = vec![vec![0; 2 * SECTOR], vec![1; 2 * SECTOR]];
        assert!(!fill_row(&e, 8, 2, &mut d, 0, &[0; 2 * SECTOR]));
        assert!(fill_row(&e, 8, 3, &mut d, 0, &[0; 2 * SECTOR]));
    }

    #[test]
    fn round_trip_and_torn_entries_rejected() {
        let e = entry();
        let b = e.encode();
        assert_eq!(b.len() as u64, e.sectors() * SECTOR as u64);
        assert_eq!(Entry::decode(&b, &[3; 16]), Some(e.clone()));
        assert_eq!(Entry::decode(&b, &[4; 16]), None, "another array's entry");
        let mut torn = b.clone();
        torn[HEADER_BYTES + 5] ^= 1;
        assert_eq!(
            Entry::decode(&torn, &[3; 16]),
            None,
            "payload behind its header"
        );
        let mut torn = b;
        torn[100] ^= 1;
        assert_eq!(Entry::decode(&torn, &[3; 16]), None, "torn header");
    }

    #[test]
    fn rows_beyond_any_slot_are_refused_not_overflowed() {
        // Found by fuzz target ppl_replay: a whole header (good CRC) naming 2^55 rows of
        // partial parity made the byte count 2^64 — an overflow panic at replay.
        let mut b = entry().encode();
        put64(&mut b, 48, 0);
        put64(&mut b, 56, 1 << 55);
        put64(&mut b, 64, 1 << 55);
        let crc = crc32c::crc32c(&b[..CRC_AT]);
        put32(&mut b, CRC_AT, crc);
        assert_eq!(Entry::decode(&b, &[3; 16]), None);
        put64(&mut b, 56, 3);
        put64(&mut b, 64, 3);
        let crc = crc32c::crc32c(&b[..CRC_AT]);
        put32(&mut b, CRC_AT, crc);
        assert_eq!(
            Entry::decode(&b, &[3; 16]),
            None,
            "more rows than the slot read"
        );
    }

    /// Three data columns, chunk 8, rows 2..4; the write changes column 0 row 2 and
    /// column 1 row 3. Whatever landed, a lost column the write left alone comes back
    /// from the partial parity, and a lost column it changed alone comes back as the
    /// generation P holds.
    #[test]
    fn a_lost_column_comes_back_old_or_new() {
        let row = |v: u8| vec![v; SECTOR];
        let cat = |a: Vec<u8>, b: Vec<u8>| [a, b].concat();
        let old = [
            cat(row(1), row(2)),
            cat(row(3), row(4)),
            cat(row(5), row(6)),
        ];
        let new = [
            cat(row(11), row(2)),
            cat(row(3), row(14)),
            cat(row(5), row(6)),
        ];
        let p_of = |d: &[Vec<u8>; 3]| {
            let mut p = d[0].clone();
            crate::xor::xor_into(&mut p, &d[1]);
            crate::xor::xor_into(&mut p, &d[2]);
            p
        };
        let mut e = entry();
        e.covered = vec![(2, 3), (8 + 3, 8 + 4)];
        e.partial = partial_parity(&p_of(&new), &new, 8, 2, &e.covered);
        for (landed0, landed1, p_new) in [(false, true, false), (true, false, true)] {
            let disk0 = if landed0 { &new[0] } else { &old[0] };
            let disk1 = if landed1 { &new[1] } else { &old[1] };
            let p = if p_new { p_of(&new) } else { p_of(&old) };
            // Column 2 (left alone) lost: comes back exactly.
            let mut d = vec![disk0.clone(), disk1.clone(), vec![0; 2 * SECTOR]];
            assert!(fill_row(&e, 8, 2, &mut d, 2, &p));
            assert!(fill_row(&e, 8, 3, &mut d, 2, &p));
            assert_eq!(d[2], old[2]);
            // Column 0 lost: row 2 (changed alone) follows P, row 3 (untouched) exact.
            let mut d = vec![vec![0; 2 * SECTOR], disk1.clone(), old[2].clone()];
            assert!(fill_row(&e, 8, 2, &mut d, 0, &p));
            assert!(fill_row(&e, 8, 3, &mut d, 0, &p));
            let want_r2 = if p_new { row(11) } else { row(1) };
            assert_eq!(&d[0][..SECTOR], &want_r2[..]);
            assert_eq!(&d[0][SECTOR..], &row(2)[..]);
        }
    }
}
