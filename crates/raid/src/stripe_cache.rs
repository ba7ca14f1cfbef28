//! Gathering buffer of one RAID 5 stripe: new data merged in arrival order plus the set of
//! sectors it covers. Consecutive small writes fill it until the whole stripe is covered,
//! so parity is computed from new data alone and nothing has to be read.

use crate::types::SECTOR;

#[derive(Clone, Debug)]
pub struct StripeBuffer {
    sectors: u64,
    data: Vec<u8>,
    /// Sorted, disjoint, non-adjacent [start, end) sector intervals.
    covered: Vec<(u64, u64)>,
}

impl StripeBuffer {
    pub fn new(sectors: u64) -> StripeBuffer {
        StripeBuffer {
            sectors,
            data: vec![0; sectors as usize * SECTOR],
            covered: Vec::new(),
        }
    }

    /// Merge `data` at sector `off`; later merges win over earlier ones.
    pub fn merge(&mut self, off: u64, data: &[u8]) {
        let n = (data.len() / SECTOR) as u64;
        assert!(off + n <= self.sectors, "merge beyond stripe");
        let b = off as usize * SECTOR;
        self.data[b..b + data.len()].copy_from_slice(data);
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

    pub fn sectors(&self) -> u64 {
        self.sectors
    }
    pub fn data(&self) -> &[u8] {
        &self.data
    }
    pub fn intervals(&self) -> &[(u64, u64)] {
        &self.covered
    }
    pub fn is_full(&self) -> bool {
        self.covered == [(0, self.sectors)]
    }
    pub fn is_empty(&self) -> bool {
        self.covered.is_empty()
    }
    /// Is every sector of [s, e) covered?
    pub fn covers(&self, s: u64, e: u64) -> bool {
        s >= e || self.covered.iter().any(|&(a, b)| a <= s && e <= b)
    }
    /// Does any covered sector fall in [s, e)?
    pub fn touches(&self, s: u64, e: u64) -> bool {
        self.covered.iter().any(|&(a, b)| a < e && s < b)
    }
    /// Smallest [s, e) within [lo, hi) containing all covered sectors there.
    pub fn span_within(&self, lo: u64, hi: u64) -> Option<(u64, u64)> {
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
    pub fn overlay(&self, s: u64, e: u64, dst: &mut [u8]) {
        for &(a, b) in &self.covered {
            let (a, b) = (a.max(s), b.min(e));
            if a < b {
                let (da, db) = ((a - s) as usize * SECTOR, (b - s) as usize * SECTOR);
                dst[da..db].copy_from_slice(&self.data[a as usize * SECTOR..b as usize * SECTOR]);
            }
        }
    }
    /// Looks like the head of a sequential stream that the next writes will extend.
    pub fn looks_sequential(&self) -> bool {
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
        assert_eq!(b.data()[8 * SECTOR], 1);
    }

    proptest! {
        #[test]
        fn merge_matches_reference(writes in proptest::collection::vec((0u64..64, 1u64..16, any::<u8>()), 1..20)) {
            let mut b = StripeBuffer::new(64);
            let mut reference = vec![None::<u8>; 64];
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
                    prop_assert_eq!(b.data()[s as usize * SECTOR], v);
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
