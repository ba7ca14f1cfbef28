//! A returning member's own checksum table. A member absent at assembly comes back with
//! no table in memory; read back from its checksum area, its table lets it rejoin by
//! the bitmap: its clean regions keep the checksums that sealed them (every read there
//! is verified, so a flip made while it was away is caught, not copied on), and only
//! the dirty regions are copied and sealed anew. A table that cannot be read, or a
//! superblock that puts the area elsewhere, means a whole rebuild instead.

use super::outbox::Inflight;
use super::Engine;
use crate::engine::io::decode_csum_sector;
use crate::superblock::Superblock;
use crate::types::*;

/// A checksum table being read back from a returning member.
#[derive(Debug)]
pub(crate) struct CsumLoad {
    member: MemberIndex,
    /// Tells this load from an earlier one of the same member (it returned again while
    /// the first load was in flight): only the latest one's reads count.
    serial: u64,
    /// The superblock its probe read: the re-add decision is made again with it once
    /// the table is in (the slot may have gone to a spare meanwhile).
    sb: Superblock,
    table: Vec<u32>,
    pending: usize,
    unreadable: bool,
}

#[derive(Debug, Default)]
pub(crate) struct CsumLoads {
    next_serial: u64,
    loads: Vec<CsumLoad>,
}

impl CsumLoads {
    /// Forget member `m`'s load: its reads still in flight are ignored when they end.
    pub(crate) fn cancel(&mut self, m: MemberIndex) {
        self.loads.retain(|l| l.member != m);
    }
}

impl Engine {
    /// Why a returning member whose superblock says `sb` is rebuilt whole rather than
    /// from the bitmap (whether its checksum table can be read aside).
    pub(crate) fn whole_rebuild_reason(&self, sb: &Superblock) -> Option<WholeRebuild> {
        if sb.recovering {
            Some(WholeRebuild::WasRebuilding)
        } else if sb.events < self.meta.events_cleared {
            Some(WholeRebuild::Stale)
        } else if self.integrity
            && (!sb.integrity
                || sb.areas.csum_offset != self.ml.csum_offset
                || sb.areas.csum_sectors != self.ml.csum_sectors
                || sb.areas.data_offset != self.ml.data_offset)
        {
            Some(WholeRebuild::ChecksumAreaMismatch)
        } else {
            None
        }
    }

    /// A member with no checksum table in memory is coming back by the bitmap: read its
    /// table first (it stays out meanwhile; the array runs on as before).
    pub(crate) fn start_csum_load(&mut self, m: MemberIndex, sb: Superblock) {
        self.rejoin.cancel(m);
        let serial = self.rejoin.next_serial;
        self.rejoin.next_serial += 1;
        let table = self.new_csum_table();
        let pending = self.read_csum_area(m, table.len(), |sector| Inflight::CsumLoad {
            serial,
            sector,
        });
        let load = CsumLoad {
            member: m,
            serial,
            sb,
            table,
            pending,
            unreadable: false,
        };
        if pending == 0 {
            self.csum_load_finished(load);
        } else {
            self.rejoin.loads.push(load);
        }
    }

    pub(crate) fn csum_load_done(
        &mut self,
        serial: u64,
        sector: u64,
        result: Result<Vec<u8>, MemberError>,
    ) {
        let Some(i) = self.rejoin.loads.iter().position(|l| l.serial == serial) else {
            return;
        };
        let l = &mut self.rejoin.loads[i];
        l.pending = l.pending.saturating_sub(1);
        match result {
            Ok(d) if !d.is_empty() && d.len() % SECTOR == 0 => {
                for (k, bytes) in d.chunks(SECTOR).enumerate() {
                    decode_csum_sector(&mut l.table, sector + k as u64, bytes);
                }
            }
            _ => l.unreadable = true,
        }
        if l.pending == 0 {
            let l = self.rejoin.loads.swap_remove(i);
            self.csum_load_finished(l);
        }
    }

    /// Every read of a load is in: re-add the member, by the bitmap with the table
    /// read, or whole.
    fn csum_load_finished(&mut self, l: CsumLoad) {
        let m = l.member;
        if self.failed
            || !matches!(
                self.members[m].state,
                MemberState::Faulty | MemberState::Missing
            )
        {
            return;
        }
        let whole = self
            .whole_rebuild_reason(&l.sb)
            .or(l.unreadable.then_some(WholeRebuild::ChecksumsUnreadable));
        if whole.is_none() {
            self.csums[m] = l.table;
        }
        self.readd(m, whole);
    }
}
