//! Reference model: for every volume sector, the content hashes a read may return.
//! One hash when the sector is known; several after a crash interrupted writes to it
//! (old or new, torn per sector); empty when anything goes (a write failed beyond the
//! redundancy). The first read of an uncertain sector pins it.

use super::rng::hash_sector;
use crate::types::SECTOR;

#[derive(Clone, Debug)]
pub(super) struct PendingWrite {
    pub offset: u64,
    pub prev: Vec<Vec<u64>>,
}

#[derive(Clone, Debug)]
pub(super) struct Model {
    pub sectors: Vec<Vec<u64>>,
}

impl Model {
    pub(super) fn zeroed(sectors: u64) -> Model {
        let z = hash_sector(&[0u8; SECTOR]);
        Model {
            sectors: vec![vec![z]; sectors as usize],
        }
    }

    /// A write is submitted: it is what later reads must see.
    pub(super) fn write(&mut self, offset: u64, data: &[u8]) -> PendingWrite {
        let mut prev = Vec::with_capacity(data.len() / SECTOR);
        for (i, s) in data.chunks(SECTOR).enumerate() {
            let slot = &mut self.sectors[offset as usize + i];
            prev.push(std::mem::replace(slot, vec![hash_sector(s)]));
        }
        PendingWrite { offset, prev }
    }

    /// A crash interrupted `w`: each sector may hold its old or new content.
    pub(super) fn interrupted(&mut self, w: &PendingWrite) {
        for (i, p) in w.prev.iter().enumerate() {
            let slot = &mut self.sectors[w.offset as usize + i];
            if slot.is_empty() || p.is_empty() {
                slot.clear();
                continue;
            }
            for h in p {
                if !slot.contains(h) {
                    slot.push(*h);
                }
            }
        }
    }

    /// A write failed (allowed only beyond redundancy): its sectors are unknown.
    pub(super) fn failed(&mut self, offset: u64, sectors: u64) {
        for s in offset..offset + sectors {
            self.sectors[s as usize].clear();
        }
    }

    pub(super) fn snapshot(&self, offset: u64, sectors: u64) -> Vec<Vec<u64>> {
        self.sectors[offset as usize..(offset + sectors) as usize].to_vec()
    }

    /// Check a read against what was expected at its submission; pin uncertain sectors.
    /// Sectors `unsure` names (a silent flip may reach them) may hold anything and are
    /// not pinned; returns how many of them differed from the expectation.
    pub(super) fn check_read(
        &mut self,
        offset: u64,
        expected: &[Vec<u64>],
        data: &[u8],
        unsure: impl Fn(u64) -> bool,
    ) -> Result<u64, String> {
        let mut differed = 0;
        for (i, s) in data.chunks(SECTOR).enumerate() {
            let h = hash_sector(s);
            let exp = &expected[i];
            if unsure(offset + i as u64) {
                differed += u64::from(!exp.is_empty() && !exp.contains(&h));
                continue;
            }
            if !exp.is_empty() && !exp.contains(&h) {
                return Err(format!(
                    "sector {} read wrong data (hash {h:016x}, expected one of {exp:016x?})",
                    offset + i as u64
                ));
            }
            let cur = &mut self.sectors[offset as usize + i];
            if cur == exp && cur.len() != 1 {
                *cur = vec![h];
            }
        }
        Ok(differed)
    }
}
