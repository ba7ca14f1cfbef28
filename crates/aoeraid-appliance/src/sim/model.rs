//! The reference model of one exported volume, exact under concurrency.
//!
//! Every sector holds the set of contents a read may return. A write is *in flux*
//! from its first frame until it is acknowledged **and** no copy of it can still
//! reach the store (every frame sent was dropped, or answered, or died with a
//! crashed appliance): until then both the old and the new content are acceptable.
//! When it resolves, the sector holds its content alone, plus the content of any
//! overlapping write that resolved while it was in flux (their order in the store is
//! unknown). A write that failed beyond redundancy leaves the sector unknown (any
//! content). A read accepts what the sector held when it was issued, every write in
//! flux then, and every write issued while it was outstanding; a read that saw a
//! settled sector with several possible contents pins the one it saw.

use raid_engine::sim::hash_sector;
use raid_engine::SECTOR;
use std::collections::HashSet;

/// Possible contents of a sector: hashes, or anything (`any`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Values {
    any: bool,
    hashes: Vec<u64>,
}

impl Values {
    fn one(h: u64) -> Values {
        Values {
            any: false,
            hashes: vec![h],
        }
    }
    fn any() -> Values {
        Values {
            any: true,
            hashes: Vec::new(),
        }
    }
    fn add(&mut self, h: u64) {
        if !self.any && !self.hashes.contains(&h) {
            self.hashes.push(h);
        }
    }
    fn union(&mut self, o: &Values) {
        if o.any {
            *self = Values::any();
        } else {
            for &h in &o.hashes {
                self.add(h);
            }
        }
    }
    fn accepts(&self, h: u64) -> bool {
        self.any || self.hashes.contains(&h)
    }
}

/// A write in flux on one sector.
#[derive(Clone, Debug)]
struct Flux {
    write: u64,
    hash: u64,
    /// Contents of overlapping writes that resolved while this one was in flux.
    also: Values,
}

#[derive(Clone, Debug)]
struct Cell {
    settled: Values,
    flux: Vec<Flux>,
}

/// What a read must see, fixed when it is issued and widened by writes issued
/// while it is outstanding.
#[derive(Debug)]
pub(crate) struct ReadExpect {
    offset: u64,
    accept: Vec<Values>,
    /// Per sector: settled with no write in flux at issue, nothing issued since.
    pinnable: Vec<bool>,
}

/// How a write ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Acknowledged as durable.
    Acked,
    /// Answered with an error (allowed only beyond redundancy): content unknown.
    Failed,
}

pub(crate) struct VolumeModel {
    cells: Vec<Cell>,
    /// Reads outstanding: id → expectation.
    reads: Vec<(u64, ReadExpect)>,
}

impl VolumeModel {
    pub(crate) fn zeroed(sectors: u64) -> VolumeModel {
        let z = hash_sector(&[0u8; SECTOR]);
        VolumeModel {
            cells: vec![
                Cell {
                    settled: Values::one(z),
                    flux: Vec::new(),
                };
                sectors as usize
            ],
            reads: Vec::new(),
        }
    }

    pub(crate) fn sectors(&self) -> u64 {
        self.cells.len() as u64
    }

    /// The volume grew: the new sectors read as zeros (fresh members are zeroed).
    pub(crate) fn grow(&mut self, sectors: u64) {
        let z = hash_sector(&[0u8; SECTOR]);
        while (self.cells.len() as u64) < sectors {
            self.cells.push(Cell {
                settled: Values::one(z),
                flux: Vec::new(),
            });
        }
    }

    /// Write `id` of `data` at `offset` sends its first frame.
    pub(crate) fn write_issued(&mut self, id: u64, offset: u64, data: &[u8]) {
        for (i, s) in data.chunks(SECTOR).enumerate() {
            let sector = offset + i as u64;
            let h = hash_sector(s);
            self.cells[sector as usize].flux.push(Flux {
                write: id,
                hash: h,
                also: Values {
                    any: false,
                    hashes: Vec::new(),
                },
            });
            for (_, r) in &mut self.reads {
                if sector >= r.offset && sector < r.offset + r.accept.len() as u64 {
                    let k = (sector - r.offset) as usize;
                    r.accept[k].add(h);
                    r.pinnable[k] = false;
                }
            }
        }
    }

    /// Write `id` at `offset` over `sectors` resolved with `outcome`.
    pub(crate) fn write_resolved(&mut self, id: u64, offset: u64, sectors: u64, outcome: Outcome) {
        for sector in offset..offset + sectors {
            let cell = &mut self.cells[sector as usize];
            let Some(i) = cell.flux.iter().position(|f| f.write == id) else {
                continue;
            };
            let f = cell.flux.swap_remove(i);
            let landed = match outcome {
                Outcome::Acked => Values::one(f.hash),
                Outcome::Failed => Values::any(),
            };
            let mut settled = landed.clone();
            settled.union(&f.also);
            cell.settled = settled;
            for other in &mut cell.flux {
                other.also.union(&landed);
            }
        }
    }

    /// Read `id` of `sectors` at `offset` is issued.
    pub(crate) fn read_issued(&mut self, id: u64, offset: u64, sectors: u64) {
        let mut accept = Vec::with_capacity(sectors as usize);
        let mut pinnable = Vec::with_capacity(sectors as usize);
        for c in &self.cells[offset as usize..(offset + sectors) as usize] {
            let mut v = c.settled.clone();
            for f in &c.flux {
                v.add(f.hash);
            }
            accept.push(v);
            pinnable.push(c.flux.is_empty());
        }
        self.reads.push((
            id,
            ReadExpect {
                offset,
                accept,
                pinnable,
            },
        ));
    }

    /// Read `id` ended without data (an error, or its appliance died with it).
    pub(crate) fn read_abandoned(&mut self, id: u64) {
        self.reads.retain(|r| r.0 != id);
    }

    /// Read `id` returned `data`: checks every sector, pins what it may.
    pub(crate) fn read_done(&mut self, id: u64, data: &[u8]) -> Result<(), String> {
        let Some(i) = self.reads.iter().position(|r| r.0 == id) else {
            return Err(format!("read {id} completed twice or was never issued"));
        };
        let (_, r) = self.reads.swap_remove(i);
        if data.len() != r.accept.len() * SECTOR {
            return Err(format!(
                "read of {} sectors returned {} bytes",
                r.accept.len(),
                data.len()
            ));
        }
        for (k, s) in data.chunks(SECTOR).enumerate() {
            let h = hash_sector(s);
            let sector = r.offset + k as u64;
            if !r.accept[k].accepts(h) {
                return Err(format!(
                    "sector {sector} read content {h:016x}, which no write put there \
                     (acceptable: {:016x?})",
                    r.accept[k].hashes
                ));
            }
            let cell = &mut self.cells[sector as usize];
            if r.pinnable[k] && cell.flux.is_empty() && cell.settled == r.accept[k] {
                cell.settled = Values::one(h);
            }
        }
        Ok(())
    }

    /// Ids of the writes in flux now.
    pub(crate) fn writes_in_flux(&self) -> HashSet<u64> {
        self.cells
            .iter()
            .flat_map(|c| c.flux.iter().map(|f| f.write))
            .collect()
    }

    /// After a crash and a member loss the log replay could not tell old from new in
    /// `sectors` at `offset`: allowed only under a write of `interrupted` (in flux at
    /// the crash, never acknowledged) still in flux; the sectors may hold anything
    /// until a write resolves there, reads outstanding included.
    pub(crate) fn interrupted_lost(
        &mut self,
        offset: u64,
        sectors: u64,
        interrupted: &HashSet<u64>,
    ) -> Result<(), String> {
        for sector in offset..offset + sectors {
            let Some(cell) = self.cells.get_mut(sector as usize) else {
                return Err(format!("log replay lost sector {sector}, past the volume"));
            };
            if !cell.flux.iter().any(|f| interrupted.contains(&f.write)) {
                return Err(format!(
                    "log replay lost sector {sector}, which no write in flux at the crash covered"
                ));
            }
            cell.settled = Values::any();
            for (_, r) in &mut self.reads {
                if sector >= r.offset && sector < r.offset + r.accept.len() as u64 {
                    let k = (sector - r.offset) as usize;
                    r.accept[k] = Values::any();
                    r.pinnable[k] = false;
                }
            }
        }
        Ok(())
    }

    /// Sectors with a write in flux (for the final check: none may be left).
    pub(crate) fn in_flux(&self) -> usize {
        self.cells.iter().filter(|c| !c.flux.is_empty()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sector(b: u8) -> Vec<u8> {
        vec![b; SECTOR]
    }

    /// Whether a one-sector read `id` of `offset`, issued and answered now, may
    /// return sector content `b`.
    fn may_read(m: &mut VolumeModel, id: u64, offset: u64, b: u8) -> bool {
        m.read_issued(id, offset, 1);
        m.read_done(id, &sector(b)).is_ok()
    }

    #[test]
    fn an_acked_write_is_the_only_content_once_resolved() {
        let mut m = VolumeModel::zeroed(4);
        m.write_issued(1, 2, &sector(7));
        m.read_issued(10, 2, 1);
        m.write_resolved(1, 2, 1, Outcome::Acked);
        assert!(
            m.read_done(10, &sector(0)).is_ok(),
            "old content while in flux"
        );
        assert!(!may_read(&mut m, 11, 2, 0), "old content after the ack");
        assert!(may_read(&mut m, 12, 2, 7));
    }

    #[test]
    fn overlapping_writes_leave_either_order_until_a_read_pins_one() {
        let mut m = VolumeModel::zeroed(1);
        m.write_issued(1, 0, &sector(1));
        m.write_issued(2, 0, &sector(2));
        m.write_resolved(1, 0, 1, Outcome::Acked);
        m.write_resolved(2, 0, 1, Outcome::Acked);
        assert!(may_read(&mut m, 10, 0, 1), "2 may have landed first");
        assert!(!may_read(&mut m, 11, 0, 2), "pinned to 1 by the read");
    }

    #[test]
    fn a_write_issued_after_another_resolved_replaces_it() {
        let mut m = VolumeModel::zeroed(1);
        m.write_issued(1, 0, &sector(1));
        m.write_resolved(1, 0, 1, Outcome::Acked);
        m.write_issued(2, 0, &sector(2));
        m.write_resolved(2, 0, 1, Outcome::Acked);
        assert!(!may_read(&mut m, 10, 0, 1));
    }

    #[test]
    fn a_write_issued_during_a_read_is_acceptable_and_a_failed_one_is_anything() {
        let mut m = VolumeModel::zeroed(2);
        m.read_issued(10, 0, 2);
        m.write_issued(1, 1, &sector(5));
        assert!(m.read_done(10, &[sector(0), sector(5)].concat()).is_ok());
        m.write_resolved(1, 1, 1, Outcome::Failed);
        assert!(may_read(&mut m, 11, 1, 9), "unknown after a failure");
        assert!(!may_read(&mut m, 12, 0, 9));
    }

    #[test]
    fn a_replay_may_lose_only_a_write_in_flux_at_the_crash_until_it_lands() {
        let mut m = VolumeModel::zeroed(3);
        m.write_issued(1, 1, &sector(1));
        let at_crash = m.writes_in_flux();
        m.write_issued(2, 2, &sector(2));
        // Sector 0 is settled, sector 2's write came after the crash.
        let refused = [0, 2].map(|s| m.interrupted_lost(s, 1, &at_crash).is_err());
        assert_eq!(refused, [true, true]);
        m.read_issued(10, 1, 1);
        m.interrupted_lost(1, 1, &at_crash).unwrap();
        // Anything, for the read outstanding then; the landed write alone afterwards.
        let garbage = sector(9);
        let mut seen = vec![m.read_done(10, &garbage).is_ok()];
        m.write_resolved(1, 1, 1, Outcome::Acked);
        m.read_issued(11, 1, 1);
        seen.push(m.read_done(11, &garbage).is_ok());
        assert_eq!(seen, [true, false]);
    }
}
