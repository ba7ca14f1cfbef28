//! Integrity checksums: one CRC32C per 4 KiB member block, held in memory and persisted
//! in the member's checksum area (far from the data, so one torn write cannot take a
//! block and its checksum together). Stored value 0 means "never written".

use super::job::Fail;
use super::Engine;
use crate::config::CSUM_BLOCK_SECTORS;
use crate::meta::MetaKey;
use crate::types::{MemberIndex, SECTOR};

pub(crate) const CSUMS_PER_SECTOR: u64 = 128;
const BLOCK_BYTES: usize = CSUM_BLOCK_SECTORS as usize * SECTOR;

pub(crate) fn stored_crc(data: &[u8]) -> u32 {
    match crc32c::crc32c(data) {
        0 => 1,
        c => c,
    }
}

/// Fill `table` from checksum-area sector `s` as read from a member.
pub(crate) fn decode_csum_sector(table: &mut [u32], s: u64, bytes: &[u8]) {
    for i in 0..CSUMS_PER_SECTOR as usize {
        let idx = s as usize * CSUMS_PER_SECTOR as usize + i;
        if idx < table.len() && bytes.len() >= i * 4 + 4 {
            table[idx] = u32::from_le_bytes(bytes[i * 4..i * 4 + 4].try_into().unwrap());
        }
    }
}

impl Engine {
    /// Full 4 KiB blocks of a member data range: (first block, byte offset of it in the
    /// range, count).
    fn blocks(off: u64, sectors: u64) -> (u64, usize, u64) {
        let first = off.div_ceil(CSUM_BLOCK_SECTORS);
        let end = (off + sectors) / CSUM_BLOCK_SECTORS;
        let skip = ((first * CSUM_BLOCK_SECTORS - off) as usize) * SECTOR;
        (first, skip, end.saturating_sub(first))
    }

    pub(crate) fn verify(
        &mut self,
        member: MemberIndex,
        off: u64,
        sectors: u32,
        data: &[u8],
    ) -> Result<(), Fail> {
        let Some(table) = self.csums.get(member) else {
            return Ok(());
        };
        let (first, skip, n) = Self::blocks(off, sectors as u64);
        for i in 0..n {
            let want = table.get((first + i) as usize).copied().unwrap_or(0);
            if want == 0 {
                continue;
            }
            let b = skip + i as usize * BLOCK_BYTES;
            if stored_crc(&data[b..b + BLOCK_BYTES]) != want {
                self.counters.checksum_errors += 1;
                return Err(Fail::Checksum);
            }
        }
        Ok(())
    }

    /// Does `data` (member range `off`, `sectors`) match the stored checksum of every
    /// 4 KiB block it covers, each of them set? Then it is what was last written there
    /// (up to CRC32C collisions), whatever the state of the parity it was rebuilt from.
    pub(crate) fn csum_proves(
        &self,
        member: MemberIndex,
        off: u64,
        sectors: u32,
        data: &[u8],
    ) -> bool {
        let Some(table) = self.csums.get(member) else {
            return false;
        };
        let (first, skip, n) = Self::blocks(off, sectors as u64);
        if n == 0 || skip != 0 || n * CSUM_BLOCK_SECTORS != sectors as u64 {
            return false;
        }
        (0..n).all(|i| {
            let want = table.get((first + i) as usize).copied().unwrap_or(0);
            let b = i as usize * BLOCK_BYTES;
            want != 0 && stored_crc(&data[b..b + BLOCK_BYTES]) == want
        })
    }

    /// New checksums for data about to be written; returns the metadata versions the
    /// write must wait for. Partial blocks lose their checksum (never happens when the
    /// callers align, which they do with integrity on).
    pub(crate) fn update_csums(
        &mut self,
        member: MemberIndex,
        off: u64,
        data: &[u8],
    ) -> Vec<(MetaKey, u64)> {
        let sectors = (data.len() / SECTOR) as u64;
        let Some(table) = self.csums.get_mut(member) else {
            return Vec::new();
        };
        let (first, _, n) = Self::blocks(off, sectors);
        let mut touched = Self::set_csums(table, off, data, false);
        let head = off / CSUM_BLOCK_SECTORS;
        let tail = (off + sectors).div_ceil(CSUM_BLOCK_SECTORS);
        for blk in [head, tail.saturating_sub(1)] {
            let partial = blk < first || blk >= first + n;
            if partial && (blk as usize) < table.len() && table[blk as usize] != 0 {
                table[blk as usize] = 0;
                touched.push(blk / CSUMS_PER_SECTOR);
            }
        }
        touched.sort_unstable();
        touched.dedup();
        touched
            .into_iter()
            .map(|s| {
                let k = MetaKey::Csum(member, s);
                (k, self.meta.writer.touch(k))
            })
            .collect()
    }

    /// Checksum the full blocks of `data` (member range from `off`) into `table`, only
    /// those still 0 if `unsealed_only`; returns the checksum-area sectors changed.
    fn set_csums(table: &mut [u32], off: u64, data: &[u8], unsealed_only: bool) -> Vec<u64> {
        let (first, skip, n) = Self::blocks(off, (data.len() / SECTOR) as u64);
        let mut touched = Vec::new();
        for i in 0..n {
            let b = skip + i as usize * BLOCK_BYTES;
            let blk = (first + i) as usize;
            if blk < table.len() && !(unsealed_only && table[blk] != 0) {
                table[blk] = stored_crc(&data[b..b + BLOCK_BYTES]);
                touched.push(blk as u64 / CSUMS_PER_SECTOR);
            }
        }
        touched
    }

    /// Seal the blocks of `data`, as read from `member` at `off`, whose checksum is
    /// still 0 (seal.rs); their checksum sectors are written in the next round.
    pub(crate) fn seal_csums(&mut self, member: MemberIndex, off: u64, data: &[u8]) {
        let Some(table) = self.csums.get_mut(member) else {
            return;
        };
        let mut touched = Self::set_csums(table, off, data, true);
        touched.dedup();
        for s in touched {
            self.meta.writer.touch(MetaKey::Csum(member, s));
        }
    }

    pub(crate) fn csum_sector_bytes(&self, member: MemberIndex, s: u64) -> Vec<u8> {
        let mut out = vec![0u8; SECTOR];
        if let Some(t) = self.csums.get(member) {
            for i in 0..CSUMS_PER_SECTOR as usize {
                let v = t
                    .get(s as usize * CSUMS_PER_SECTOR as usize + i)
                    .copied()
                    .unwrap_or(0);
                out[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
            }
        }
        out
    }

    pub(crate) fn load_csum_sector(&mut self, member: MemberIndex, s: u64, bytes: &[u8]) {
        if let Some(t) = self.csums.get_mut(member) {
            decode_csum_sector(t, s, bytes);
        }
    }

    /// Align a row-relative range to 4 KiB when integrity is on.
    pub(crate) fn align(&self, lo: u64, hi: u64) -> (u64, u64) {
        if self.integrity {
            (
                lo / CSUM_BLOCK_SECTORS * CSUM_BLOCK_SECTORS,
                hi.div_ceil(CSUM_BLOCK_SECTORS) * CSUM_BLOCK_SECTORS,
            )
        } else {
            (lo, hi)
        }
    }
}
