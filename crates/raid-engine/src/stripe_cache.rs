//! Gathering buffer of one RAID 5 stripe: new data merged in arrival order plus the set of
//! sectors it covers. Consecutive small writes fill it until the whole stripe is covered,
//! so parity is computed from new data alone and nothing has to be read.

use crate::bytes;
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

    /// Merge `data` at sector `off`; later merges win over earlier ones. Copies run a
    /// page at a time; a page the merge fills whole is not zeroed first.
    pub(crate) fn merge(&mut self, off: u64, data: &[u8]) {
        let end = off + (data.len() / SECTOR) as u64;
        assert!(end <= self.sectors, "merge beyond stripe");
        let mut s = off;
        while s < end {
            let e = end.min((s / PAGE_SECTORS + 1) * PAGE_SECTORS);
            let src = &data[(s - off) as usize * SECTOR..(e - off) as usize * SECTOR];
            let at = (s % PAGE_SECTORS) as usize * SECTOR;
            let page = &mut self.pages[(s / PAGE_SECTORS) as usize];
            match page {
                None if src.len() == PAGE_BYTES => *page = Some(bytes::to_vec(src).into()),
                _ => bytes::copy(
                    &mut page.get_or_insert_with(|| vec![0u8; PAGE_BYTES].into_boxed_slice())
                        [at..at + src.len()],
                    src,
                ),
            }
            s = e;
        }
        self.add_interval(off, end);
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
    /// The bytes of sectors [s, e), all covered, as one slice per page they span.
    fn runs(&self, s: u64, e: u64) -> impl Iterator<Item = &[u8]> + '_ {
        let first = s / PAGE_SECTORS;
        (first..e.div_ceil(PAGE_SECTORS)).map(move |p| {
            let page = self.pages[p as usize]
                .as_ref()
                .expect("covered sector has a page");
            let a = s.max(p * PAGE_SECTORS) - p * PAGE_SECTORS;
            let b = e.min((p + 1) * PAGE_SECTORS) - p * PAGE_SECTORS;
            &page[a as usize * SECTOR..b as usize * SECTOR]
        })
    }
    /// Copy covered sectors of [s, e) over `dst` (which holds [s, e)).
    pub(crate) fn overlay(&self, s: u64, e: u64, dst: &mut [u8]) {
        for &(a, b) in &self.covered {
            let (a, b) = (a.max(s), b.min(e));
            if a >= b {
                continue;
            }
            let mut d = (a - s) as usize * SECTOR;
            for run in self.runs(a, b) {
                bytes::copy(&mut dst[d..d + run.len()], run);
                d += run.len();
            }
        }
    }
    /// The bytes of [s, e), every sector of which is covered: a new buffer filled
    /// from the pages, never zeroed first.
    pub(crate) fn gather(&self, s: u64, e: u64) -> Vec<u8> {
        debug_assert!(self.covers(s, e), "gather of uncovered sectors");
        let mut out = Vec::with_capacity((e - s) as usize * SECTOR);
        for run in self.runs(s, e) {
            bytes::extend(&mut out, run);
        }
        out
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
        assert_eq!(b.gather(8, 9)[0], 1);
    }

    proptest! {
        #[test]
        fn merge_matches_reference(writes in proptest::collection::vec((0u64..64, 1u64..40, any::<u8>()), 1..20)) {
            let mut b = StripeBuffer::new(64);
            let mut reference = [None::<u8>; 64];
            for (off, len, val) in writes {
                let len = len.min(64 - off);
                if len == 0 { continue; }
                // Each sector of a merge carries its own byte, so a run copied to the
                // wrong place within a page or across a page boundary shows.
                let byte = |s: u64| val ^ (s as u8).wrapping_mul(37);
                let data: Vec<u8> = (off..off + len).flat_map(|s| [byte(s); SECTOR]).collect();
                b.merge(off, &data);
                for s in off..off + len { reference[s as usize] = Some(byte(s)); }
            }
            for s in 0..64u64 {
                prop_assert_eq!(b.covers(s, s + 1), reference[s as usize].is_some());
                prop_assert_eq!(b.touches(s, s + 1), reference[s as usize].is_some());
                if let Some(v) = reference[s as usize] {
                    prop_assert!(b.gather(s, s + 1).iter().all(|&x| x == v));
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
                prop_assert!(dst[s * SECTOR..(s + 1) * SECTOR].iter().all(|&x| x == want));
            }
            for &(a, e) in b.intervals() {
                let g = b.gather(a, e);
                prop_assert_eq!(&g[..], &dst[a as usize * SECTOR..e as usize * SECTOR]);
            }
        }
    }
}
