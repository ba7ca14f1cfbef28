//! Write-intent bitmap: one bit per region of `region_units` units, LSB first, 4096 bits
//! per sector. A region's bit is on the members before any write to it is issued; it is
//! cleared lazily once no write has touched the region for a while and every member is
//! in sync (so the bits also record what an absent member missed).

pub(crate) const BITS_PER_SECTOR: u64 = 4096;

#[derive(Clone, Debug)]
pub(crate) struct Bitmap {
    region_units: u64,
    regions: u64,
    bits: Vec<u8>,
    inflight: Vec<u32>,
    /// Sum of `inflight`.
    writes: u64,
    /// Regions with a write in flight (each of them dirty).
    busy: u64,
    last_write_ns: Vec<u64>,
}

impl Bitmap {
    pub(crate) fn new(units: u64, region_units: u64) -> Bitmap {
        let region_units = region_units.max(1);
        let regions = units.div_ceil(region_units).max(1);
        Bitmap {
            region_units,
            regions,
            bits: vec![0; regions.div_ceil(8) as usize],
            inflight: vec![0; regions as usize],
            writes: 0,
            busy: 0,
            last_write_ns: vec![0; regions as usize],
        }
    }

    pub(crate) fn sectors_for(units: u64, region_units: u64) -> u32 {
        units
            .div_ceil(region_units.max(1))
            .max(1)
            .div_ceil(BITS_PER_SECTOR) as u32
    }

    pub(crate) fn sectors(&self) -> u32 {
        self.regions.div_ceil(BITS_PER_SECTOR) as u32
    }
    #[cfg(test)]
    fn regions(&self) -> u64 {
        self.regions
    }
    pub(crate) fn region_units(&self) -> u64 {
        self.region_units
    }
    pub(crate) fn region_of(&self, unit: u64) -> u64 {
        unit / self.region_units
    }
    pub(crate) fn sector_of(region: u64) -> u32 {
        (region / BITS_PER_SECTOR) as u32
    }

    pub(crate) fn is_dirty(&self, r: u64) -> bool {
        self.bits[(r / 8) as usize] & (1 << (r % 8)) != 0
    }
    pub(crate) fn unit_dirty(&self, unit: u64) -> bool {
        self.is_dirty(self.region_of(unit))
    }
    fn set(&mut self, r: u64, on: bool) {
        let b = &mut self.bits[(r / 8) as usize];
        if on {
            *b |= 1 << (r % 8);
        } else {
            *b &= !(1 << (r % 8));
        }
    }
    pub(crate) fn dirty_count(&self) -> u64 {
        self.bits.iter().map(|b| b.count_ones() as u64).sum()
    }
    pub(crate) fn set_all(&mut self) {
        for r in 0..self.regions {
            self.set(r, true);
        }
    }

    /// A write to region `r` begins. Returns the bitmap sector to persist if the bit was
    /// clear (the write must wait for it).
    pub(crate) fn start_write(&mut self, r: u64, now_ns: u64) -> Option<u32> {
        self.inflight[r as usize] += 1;
        if self.inflight[r as usize] == 1 {
            self.busy += 1;
        }
        self.writes += 1;
        self.last_write_ns[r as usize] = now_ns;
        if self.is_dirty(r) {
            None
        } else {
            self.set(r, true);
            Some(Self::sector_of(r))
        }
    }

    pub(crate) fn end_write(&mut self, r: u64, now_ns: u64) {
        debug_assert!(
            self.is_dirty(r),
            "region {r}: write in flight on a clean bit"
        );
        let c = &mut self.inflight[r as usize];
        debug_assert!(*c > 0, "region {r}: write ended that never started");
        *c = c.saturating_sub(1);
        if *c == 0 {
            self.busy = self.busy.saturating_sub(1);
        }
        self.writes = self.writes.saturating_sub(1);
        self.last_write_ns[r as usize] = now_ns;
    }

    /// Writes in flight to all regions.
    pub(crate) fn writes(&self) -> u64 {
        self.writes
    }

    /// A dirty region without a write in flight: one `lazy_clear` may drop once it has
    /// been idle long enough. A region with a write in flight is always dirty, so the
    /// dirty ones outnumber the busy ones exactly when one of them is idle.
    pub(crate) fn any_idle_dirty(&self) -> bool {
        self.dirty_count() > self.busy
    }

    /// Writes in flight to region `r`.
    pub(crate) fn writes_in(&self, r: u64) -> u32 {
        self.inflight[r as usize]
    }

    /// Clear the bits of regions idle for `delay_ns`; returns the sectors to persist.
    pub(crate) fn lazy_clear(&mut self, now_ns: u64, delay_ns: u64) -> Vec<u32> {
        let mut sectors = Vec::new();
        for r in 0..self.regions {
            if self.is_dirty(r)
                && self.inflight[r as usize] == 0
                && now_ns.saturating_sub(self.last_write_ns[r as usize]) >= delay_ns
            {
                self.set(r, false);
                let s = Self::sector_of(r);
                if sectors.last() != Some(&s) {
                    sectors.push(s);
                }
            }
        }
        sectors
    }

    /// The on-disk bytes of bitmap sector `s` (512 bytes).
    pub(crate) fn encode_sector(&self, s: u32) -> Vec<u8> {
        let mut out = vec![0u8; 512];
        let start = s as usize * 512;
        let end = (start + 512).min(self.bits.len());
        if start < end {
            out[..end - start].copy_from_slice(&self.bits[start..end]);
        }
        out
    }

    /// OR a sector read from a member into the in-memory bits (bits beyond the region
    /// count are ignored).
    pub(crate) fn merge_sector(&mut self, s: u32, bytes: &[u8]) {
        for (i, &byte) in bytes.iter().take(512).enumerate() {
            for bit in 0..8 {
                let r = (s as u64 * 512 + i as u64) * 8 + bit;
                if r < self.regions && byte & (1 << bit) != 0 {
                    self.set(r, true);
                }
            }
        }
    }

    #[cfg(test)]
    fn dirty_regions(&self) -> Vec<u64> {
        (0..self.regions).filter(|&r| self.is_dirty(r)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_before_write_clear_lazily() {
        let mut b = Bitmap::new(100, 10);
        assert_eq!(b.regions(), 10);
        assert_eq!(b.start_write(3, 0), Some(0));
        assert_eq!(
            b.start_write(3, 5),
            None,
            "already dirty: no metadata write"
        );
        b.end_write(3, 10);
        assert!(
            b.lazy_clear(15, 100).is_empty(),
            "one write still in flight"
        );
        assert!(!b.any_idle_dirty(), "the one dirty region is busy");
        b.end_write(3, 20);
        assert!(b.any_idle_dirty());
        assert!(b.lazy_clear(50, 100).is_empty(), "too recent");
        assert_eq!(b.lazy_clear(120, 100), vec![0]);
        assert!(!b.is_dirty(3));
        assert!(!b.any_idle_dirty());
        b.set_all();
        b.start_write(4, 130);
        assert!(
            b.any_idle_dirty(),
            "nine dirty regions idle beside the busy one"
        );
    }

    #[test]
    fn encode_decode() {
        let mut b = Bitmap::new(20_000, 1);
        for r in [0u64, 7, 8, 4095, 4096, 19_999] {
            b.start_write(r, 0);
        }
        assert_eq!(b.sectors(), 5);
        let mut c = Bitmap::new(20_000, 1);
        for s in 0..b.sectors() {
            let e = b.encode_sector(s);
            assert_eq!(e.len(), 512);
            c.merge_sector(s, &e);
        }
        assert_eq!(c.dirty_regions(), vec![0, 7, 8, 4095, 4096, 19_999]);
        assert_eq!(b.encode_sector(0)[0], 0b1000_0001);
        assert_eq!(Bitmap::sectors_for(20_000, 1), 5);
    }
}
