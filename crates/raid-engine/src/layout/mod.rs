//! Address mapping: volume sectors ↔ member sectors for every level.
//!
//! The volume is cut into *units*: a chunk for RAID 0/1/10, a whole stripe's data for
//! RAID 5/6. A unit is the engine's lock and sync granule; every unit lives on one member
//! row (`row * chunk .. (row + 1) * chunk`, data-area relative) per member it touches.

mod parity;
mod raid10;

use crate::types::MemberIndex;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Level {
    Raid0,
    Raid1,
    Raid10,
    Raid5,
    Raid6,
}

impl Level {
    pub const ALL: [Level; 5] = [
        Level::Raid0,
        Level::Raid1,
        Level::Raid10,
        Level::Raid5,
        Level::Raid6,
    ];
    /// The superblock's level field (mdadm's numbers).
    pub fn code(self) -> u32 {
        match self {
            Level::Raid0 => 0,
            Level::Raid1 => 1,
            Level::Raid10 => 10,
            Level::Raid5 => 5,
            Level::Raid6 => 6,
        }
    }
    pub fn from_code(c: u32) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.code() == c)
    }
    /// The level as configurations and status spell it (`raid5`).
    pub fn name(self) -> &'static str {
        match self {
            Level::Raid0 => "raid0",
            Level::Raid1 => "raid1",
            Level::Raid10 => "raid10",
            Level::Raid5 => "raid5",
            Level::Raid6 => "raid6",
        }
    }
    pub fn from_name(s: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.name() == s)
    }
    /// Members that may be lost without losing data.
    pub fn redundancy(self, members: usize) -> usize {
        match self {
            Level::Raid0 => 0,
            Level::Raid1 => members.saturating_sub(1),
            Level::Raid10 | Level::Raid5 => 1,
            Level::Raid6 => 2,
        }
    }
    /// Parity columns per stripe: 1 for RAID 5, 2 (P and Q) for RAID 6, else 0.
    pub fn parity(self) -> usize {
        match self {
            Level::Raid5 => 1,
            Level::Raid6 => 2,
            _ => 0,
        }
    }
    pub fn min_members(self) -> usize {
        match self {
            Level::Raid0 => 1,
            Level::Raid1 | Level::Raid10 => 2,
            Level::Raid5 => 3,
            Level::Raid6 => 4,
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a geometry cannot be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GeometryError {
    TooFewMembers { level: Level, members: usize },
    BadChunk(u32),
    MemberTooSmall,
}

impl std::fmt::Display for GeometryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GeometryError::TooFewMembers { level, members } => {
                write!(
                    f,
                    "{level:?} needs at least {} members, got {members}",
                    level.min_members()
                )
            }
            GeometryError::BadChunk(c) => {
                write!(
                    f,
                    "chunk of {c} sectors: must be a power of two ≥ 8 sectors (4 KiB)"
                )
            }
            GeometryError::MemberTooSmall => f.write_str("members too small for one chunk row"),
        }
    }
}

impl std::error::Error for GeometryError {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub level: Level,
    pub members: usize,
    /// Chunk size in sectors (power of two, ≥ 8).
    pub chunk: u32,
    /// Rows of chunks per member (member data size / chunk).
    pub rows: u64,
}

impl Geometry {
    /// `member_data_sectors` is the usable data size of the smallest member.
    pub fn new(
        level: Level,
        members: usize,
        chunk: u32,
        member_data_sectors: u64,
    ) -> Result<Geometry, GeometryError> {
        if members < level.min_members() {
            return Err(GeometryError::TooFewMembers { level, members });
        }
        if chunk < 8 || !chunk.is_power_of_two() {
            return Err(GeometryError::BadChunk(chunk));
        }
        let mut rows = member_data_sectors / chunk as u64;
        if level == Level::Raid10 && (rows * members as u64) % 2 == 1 {
            rows -= 1;
        }
        if rows == 0 {
            return Err(GeometryError::MemberTooSmall);
        }
        Ok(Geometry {
            level,
            members,
            chunk,
            rows,
        })
    }

    pub fn chunk_u64(&self) -> u64 {
        self.chunk as u64
    }

    /// Sectors per unit.
    pub fn unit_sectors(&self) -> u64 {
        self.chunk_u64() * self.data_columns() as u64
    }

    /// Data columns per unit: the stripe's data members for parity levels, else 1.
    pub fn data_columns(&self) -> usize {
        match self.level.parity() {
            0 => 1,
            p => self.members - p,
        }
    }

    /// Slot of logical column `col` of stripe `row` (parity levels: data `0..k`, then
    /// P, then Q).
    pub fn column_slot(&self, row: u64, col: usize) -> usize {
        parity::slot_of_column(self.members, self.level.parity(), row, col)
    }

    pub fn units(&self) -> u64 {
        match self.level {
            Level::Raid0 => self.rows * self.members as u64,
            Level::Raid1 | Level::Raid5 | Level::Raid6 => self.rows,
            Level::Raid10 => self.rows * self.members as u64 / 2,
        }
    }

    pub fn volume_sectors(&self) -> u64 {
        self.units() * self.unit_sectors()
    }

    /// Member data sectors actually used.
    pub fn member_used_sectors(&self) -> u64 {
        self.rows * self.chunk_u64()
    }

    /// Member row that unit `u` occupies on `member` if it occupies one.
    pub fn unit_row_on(&self, u: u64, member: MemberIndex) -> Option<u64> {
        match self.level {
            Level::Raid0 => {
                (u % self.members as u64 == member as u64).then(|| u / self.members as u64)
            }
            Level::Raid1 | Level::Raid5 | Level::Raid6 => Some(u),
            Level::Raid10 => raid10::copies(self.members, u)
                .into_iter()
                .find(|&(m, _)| m == member)
                .map(|(_, r)| r),
        }
    }

    /// Members holding a copy of unit `u` (mirror levels: every copy; RAID 0: the one).
    /// For parity levels: the first data column only (use `column_slot`).
    pub fn copies(&self, u: u64) -> Vec<(MemberIndex, u64)> {
        match self.level {
            Level::Raid0 => vec![((u % self.members as u64) as usize, u / self.members as u64)],
            Level::Raid1 => (0..self.members).map(|m| (m, u)).collect(),
            Level::Raid10 => raid10::copies(self.members, u).to_vec(),
            Level::Raid5 | Level::Raid6 => vec![(self.column_slot(u, 0), u)],
        }
    }

    /// Map a volume sector to (unit, offset inside unit).
    pub fn unit_of(&self, vol: u64) -> (u64, u64) {
        let us = self.unit_sectors();
        (vol / us, vol % us)
    }

    /// Volume sector → first copy's member extent start (member, data-relative sector).
    pub fn map(&self, vol: u64) -> (MemberIndex, u64) {
        let (u, off) = self.unit_of(vol);
        match self.level {
            Level::Raid5 | Level::Raid6 => {
                let c = self.chunk_u64();
                let m = self.column_slot(u, (off / c) as usize);
                (m, u * c + off % c)
            }
            _ => {
                let (m, row) = self.copies(u)[0];
                (m, row * self.chunk_u64() + off)
            }
        }
    }

    /// Member data sector → volume sector, or None for parity / unused space.
    /// For mirrors every copy maps back to the same volume sector.
    pub fn unmap(&self, member: MemberIndex, msec: u64) -> Option<u64> {
        let c = self.chunk_u64();
        let (row, within) = (msec / c, msec % c);
        if row >= self.rows || member >= self.members {
            return None;
        }
        let us = self.unit_sectors();
        match self.level {
            Level::Raid0 => Some((row * self.members as u64 + member as u64) * us + within),
            Level::Raid1 => Some(row * us + within),
            Level::Raid10 => {
                let slot = row * self.members as u64 + member as u64;
                let u = slot / 2;
                (u < self.units()).then_some(u * us + within)
            }
            Level::Raid5 | Level::Raid6 => {
                let col = parity::column_of_slot(self.members, self.level.parity(), row, member);
                (col < self.data_columns()).then_some(row * us + col as u64 * c + within)
            }
        }
    }

    /// Split a volume range into (unit, offset-in-unit, sectors) pieces.
    pub fn split(&self, offset: u64, sectors: u64) -> Vec<(u64, u64, u64)> {
        let us = self.unit_sectors();
        let mut out = Vec::new();
        let (mut pos, end) = (offset, offset + sectors);
        while pos < end {
            let (u, off) = (pos / us, pos % us);
            let n = (us - off).min(end - pos);
            out.push((u, off, n));
            pos += n;
        }
        out
    }
}

#[cfg(test)]
mod tests;
