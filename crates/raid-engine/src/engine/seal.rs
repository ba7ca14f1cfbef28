//! Sealing: checksums for data already on the members. A block's checksum is 0, "never
//! written" (reads of it not verified), from `create` until something writes it: with
//! `assume_clean` that is every block, and after an initial mirror resync the copy it
//! copied from (the resync writes only copies that differ). dm-integrity, formatted
//! without wiping, recalculates its tags in the background; the seal pass does the
//! same. Unit by unit, through the unit queues (alone in its unit, so no write races
//! its read), it reads the rows of in-sync members that hold a block with checksum 0
//! and stores the checksum of what it read, as it lies — what `assume_clean` vouches
//! for. It runs after any resync and gives way to rebuilds. It keeps no checkpoint: a
//! 0 in the tables is what marks a block not sealed yet, so each start (`assemble`)
//! resumes where the tables on the members say.

use super::job::{Job, Slot, SyncPhase};
use super::{Engine, JobId};
use crate::config::CSUM_BLOCK_SECTORS;
use crate::types::*;

impl Engine {
    /// Does an in-sync member hold a block not sealed yet?
    pub(crate) fn seal_wanted(&self) -> bool {
        self.integrity
            && self
                .members
                .iter()
                .zip(&self.csums)
                .any(|(m, t)| m.role.is_some() && m.state == MemberState::Active && t.contains(&0))
    }

    /// (member, member data offset) of each row of unit `u`, on a member in sync
    /// for it, that holds a block not sealed yet.
    pub(crate) fn seal_targets(&self, u: u64) -> Vec<(MemberIndex, u64)> {
        if self.unsynced(u) {
            return Vec::new();
        }
        let chunk = self.geo.chunk_u64();
        let per_row = (chunk / CSUM_BLOCK_SECTORS) as usize;
        (0..self.geo.members)
            .filter_map(|s| {
                let row = self.geo.unit_row_on(u, s)?;
                let m = self.sm(s);
                let first = (row * chunk / CSUM_BLOCK_SECTORS) as usize;
                let unsealed = self.csums[m]
                    .get(first..first + per_row)
                    .is_some_and(|b| b.contains(&0));
                (unsealed && self.in_sync(m, u)).then_some((m, row * chunk))
            })
            .collect()
    }

    /// A seal unit: read the rows that need it, then seal what came back whole and
    /// verified (a row that fails its read or a stored checksum waits for a later
    /// pass; reads and scrubs heal it meanwhile).
    pub(crate) fn step_seal(&mut self, id: JobId, job: &mut Job, phase: SyncPhase) -> bool {
        match phase {
            SyncPhase::Read => {
                let chunk = self.geo.chunk_u64();
                job.slots = self
                    .seal_targets(job.unit)
                    .into_iter()
                    .enumerate()
                    .map(|(i, (m, off))| Slot::read(m, off, chunk, i))
                    .collect();
                self.issue(id, job);
            }
            SyncPhase::Write => {
                for s in std::mem::take(&mut job.slots) {
                    if s.ok() {
                        self.seal_csums(s.member, s.off, &s.data);
                    }
                }
            }
            SyncPhase::Done => unreachable!("step_sync finishes done units"),
        }
        false
    }
}
