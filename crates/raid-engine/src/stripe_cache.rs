//! Gathering buffer of one RAID 5 stripe: new data merged in arrival order plus the set of
//! sectors it covers. Consecutive small writes fill it until the whole stripe is covered,
//! so parity is computed from new data alone and nothing has to be read.

use crate::types::SECTOR;

/// Sectors per lazily allocated page: a small write into a wide stripe costs one page,
/// not a zeroed stripe.
const PAGE_SECTORS: u64 = 16;
const PAGE_BYTES: usize = PAGE_SECTORS as usize * SECTOR;

#[derive(Clone, Debug)]
pub(crate) struct StripeBuffer {
    sectors: u64,
    pages: Vec<Option<Box<[u8]>>>,
    /// Sorted, disjoint, non-adjacent [start, end) sector intervals.
    covered: Vec<(u64, u64)>,
}

impl StripeBuffer {
    pub(crate) fn new(sectors: u64) -> StripeBuffer {
        StripeBuffer {
            sectors,
            pages: vec![None; sectors.div_ceil(PAGE_SECTORS) as usize],
            covered: Vec::new(),
        }
    }

    /// Merge `data` at sector `off`; later merges win over earlier ones.
    pub(crate) fn merge(&mut self, off: u64, data: &[u8]) {
        let n = (data.len() / SECTOR) as u64;
        assert!(off + n <= self.sectors, "merge beyond stripe");
        for i in 0..n {
            let s = off + i;
            let page = self.pages[(s / PAGE_SECTORS) as usize]
                .get_or_insert_with(|| vec![0u8; PAGE_BYTES].into_boxed_slice());
            let at = (s % PAGE_SECTORS) as usize * SECTOR;
            page[at..at + SECTOR]
                .copy_from_slice(&data[i as usize * SECTOR..(i as usize + 1) * SECTOR]);
        }
        self.add_interval(off, off + n);
    }

    fn add_interval(&mut self, mut s: u64, mut e: u64) {
        let mut out = Vec::with_capacity(self.covered.len() + 1);
        for &(a, b) in &self.covered {
            if b < s || a > e {
                out.push((a, b));
            } else {
                s = s.min(a);
                e = e.max(b);
            }
        }
        out.push((s, e));
        out.sort_unstable();
        self.covered = out;
    }

    /// Bytes of sector `s` if it was ever merged.
    pub(crate) fn sector(&self, s: u64) -> Option<&[u8]> {
        let page = self.pages[(s / PAGE_SECTORS) as usize].as_ref()?;
        let at = (s % PAGE_SECTORS) as usize * SECTOR;
        Some(&page[at..at + SECTOR])
    }
    /// The covered intervals, sorted.
    pub(crate) fn intervals(&self) -> &[(u64, u64)] {
        &self.covered
    }
    pub(crate) fn is_full(&self) -> bool {
        self.covered == [(0, self.sectors)]
    }
    /// Is every sector of [s, e) covered?
    pub(crate) fn covers(&self, s: u64, e: u64) -> bool {
        s >= e || self.covered.iter().any(|&(a, b)| a <= s && e <= b)
    }
    /// Does any covered sector fall in [s, e)?
    pub(crate) fn touches(&self, s: u64, e: u64) -> bool {
        self.covered.iter().any(|&(a, b)| a < e && s < b)
    }
    /// Smallest [s, e) within [lo, hi) containing all covered sectors there.
    pub(crate) fn span_within(&self, lo: u64, hi: u64) -> Option<(u64, u64)> {
        let mut r: Option<(u64, u64)> = None;
        for &(a, b) in &self.covered {
            let (a, b) = (a.max(lo), b.min(hi));
            if a < b {
                r = Some(match r {
                    None => (a, b),
                    Some((x, y)) => (x.min(a), y.max(b)),
                });
            }
        }
        r
    }
    /// Copy covered sectors of [s, e) over `dst` (which holds [s, e)).
    pub(crate) fn overlay(&self, s: u64, e: u64, dst: &mut [u8]) {
        for &(a, b) in &self.covered {
            let (a, b) = (a.max(s), b.min(e));
            for x in a..b {
                let d = (x - s) as usize * SECTOR;
                dst[d..d + SECTOR]
                    .copy_from_slice(self.sector(x).expect("covered sector has a page"));
            }
        }
    }
    /// Looks like the head of a sequential stream that the next writes will extend.
    pub(crate) fn looks_sequential(&self) -> bool {
        matches!(self.covered.as_slice(), [(0, e)] if *e < self.sectors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn gathers_to_full() {
        let mut b = StripeBuffer::new(32);
        for i in 0..4 {
            assert!(!b.is_full());
            b.merge(i * 8, &vec![i as u8; 8 * SECTOR]);
            assert!(i == 3 || b.looks_sequential());
        }
        assert!(b.is_full());
        assert_eq!(b.sector(8).unwrap()[0], 1);
    }

    proptest! {
        #[test]
        fn merge_matches_reference(writes in proptest::collection::vec((0u64..64, 1u64..16, any::<u8>()), 1..20)) {
            let mut b = StripeBuffer::new(64);
            let mut reference = [None::<u8>; 64];
            for (off, len, val) in writes {
                let len = len.min(64 - off);
                if len == 0 { continue; }
                b.merge(off, &vec![val; len as usize * SECTOR]);
                for s in off..off + len { reference[s as usize] = Some(val); }
            }
            for s in 0..64u64 {
                prop_assert_eq!(b.covers(s, s + 1), reference[s as usize].is_some());
                prop_assert_eq!(b.touches(s, s + 1), reference[s as usize].is_some());
                if let Some(v) = reference[s as usize] {
                    prop_assert_eq!(b.sector(s).unwrap()[0], v);
                }
            }
            for w in b.intervals().windows(2) {
                prop_assert!(w[0].1 < w[1].0, "intervals disjoint, non-adjacent, sorted");
            }
            prop_assert_eq!(b.is_full(), reference.iter().all(|r| r.is_some()));
            let mut dst = vec![0xEEu8; 64 * SECTOR];
            b.overlay(0, 64, &mut dst);
            for s in 0..64usize {
                let want = reference[s].unwrap_or(0xEE);
                prop_assert_eq!(dst[s * SECTOR], want);
            }
        }
    }
}
