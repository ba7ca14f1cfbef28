//! A virtual member: bytes, latency, and the ways a real blade goes wrong.

use super::rng::Rng;
use crate::types::{MemberError, MemberIo, MemberOp, SECTOR};

#[derive(Clone, Debug)]
pub struct VMember {
    pub data: Vec<u8>,
    /// Sector ranges that fail reads (media errors); a write over them remaps them.
    pub bad: Vec<(u64, u64)>,
    pub alive: bool,
    pub base_latency_ns: u64,
    pub jitter_ns: u64,
    /// Latency multiplier (slow member).
    pub slow: u64,
    /// Silent corruptions not yet overwritten: (sector, byte index, xor mask).
    pub flipped: Vec<(u64, usize, u8)>,
    /// 4 KiB blocks fully written since creation (their checksum is set when the
    /// array has integrity on): the only blocks where a flip must be caught.
    pub sealed: Vec<bool>,
}

impl VMember {
    pub fn new(sectors: u64, base_latency_ns: u64, jitter_ns: u64) -> VMember {
        VMember {
            data: vec![0; sectors as usize * SECTOR],
            bad: Vec::new(),
            alive: true,
            base_latency_ns,
            jitter_ns,
            slow: 1,
            flipped: Vec::new(),
            sealed: vec![false; sectors.div_ceil(8) as usize],
        }
    }
    pub fn sectors(&self) -> u64 {
        (self.data.len() / SECTOR) as u64
    }
    pub(super) fn latency(&self, rng: &mut Rng) -> u64 {
        (self.base_latency_ns + rng.below(self.jitter_ns + 1)) * self.slow
    }
    pub fn read(&self, off: u64, sectors: u32) -> Option<Vec<u8>> {
        let end = off + sectors as u64;
        if end > self.sectors() || self.bad.iter().any(|&(a, b)| a < end && off < b) {
            return None;
        }
        Some(self.data[off as usize * SECTOR..end as usize * SECTOR].to_vec())
    }
    /// Apply `keep` leading sectors of a write (all for a normal write, fewer when torn).
    pub fn write(&mut self, off: u64, data: &[u8], keep: u64) -> bool {
        let n = (data.len() / SECTOR) as u64;
        let end = off + n;
        if end > self.sectors() {
            return false;
        }
        let k = keep.min(n);
        self.data[off as usize * SECTOR..(off + k) as usize * SECTOR]
            .copy_from_slice(&data[..k as usize * SECTOR]);
        if k == n {
            self.bad.retain(|&(a, b)| !(off <= a && b <= end));
        }
        self.flipped.retain(|&(s, _, _)| !(s >= off && s < off + k));
        let (first, last) = (off.div_ceil(8), end / 8);
        for b in first..last {
            self.sealed[b as usize] = k == n;
        }
        for b in [off / 8, end.saturating_sub(1) / 8] {
            if b < first || b >= last {
                self.sealed[b as usize] = false;
            }
        }
        true
    }
    pub(super) fn flip_bit(&mut self, sector: u64, rng: &mut Rng) {
        let byte = sector as usize * SECTOR + rng.below(SECTOR as u64) as usize;
        let mask = 1u8 << rng.below(8);
        self.data[byte] ^= mask;
        self.flipped.push((sector, byte, mask));
    }
    /// A silent flip nobody tracks (integrity off): the simulator's taints say what
    /// it may spoil, and only a write over it or a repair puts it right.
    pub(super) fn rot(&mut self, sector: u64, rng: &mut Rng) {
        let byte = sector as usize * SECTOR + rng.below(SECTOR as u64) as usize;
        self.data[byte] ^= 1u8 << rng.below(8);
    }
    /// Undo outstanding flips (the operator replaced the bad part).
    pub fn unflip(&mut self) {
        for (_, byte, mask) in self.flipped.drain(..) {
            self.data[byte] ^= mask;
        }
    }
    /// Do one member I/O as this member would: gone when not alive, reads fail over a
    /// bad range, a write lands whole (and remaps the bad ranges it covers).
    pub fn serve(&mut self, io: &MemberIo) -> Result<Vec<u8>, MemberError> {
        if !self.alive {
            return Err(MemberError::Gone);
        }
        match io.op {
            MemberOp::Read => self.read(io.offset, io.sectors).ok_or(MemberError::Io),
            MemberOp::Write if self.write(io.offset, &io.data, u64::MAX) => Ok(Vec::new()),
            MemberOp::Write => Err(MemberError::Io),
            MemberOp::Flush => Ok(Vec::new()),
        }
    }

    pub fn healthy(&self) -> bool {
        self.alive && self.bad.is_empty() && self.flipped.is_empty() && self.slow == 1
    }
}
