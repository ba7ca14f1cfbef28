//! Snapshot of the array for the control plane and /metrics.

use super::job::SyncOp;
use super::Engine;
use crate::layout::Level;
use crate::meta::MetaKey;
use crate::types::*;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub reads: u64,
    pub writes: u64,
    pub failed_requests: u64,
    /// Sectors found inconsistent by scrub (md's mismatch_cnt), cumulative.
    pub mismatch_sectors: u64,
    pub last_scrub_mismatch_sectors: u64,
    pub corrected_read_errors: u64,
    pub checksum_errors: u64,
    pub checksum_repairs: u64,
    /// Bytes written by background syncs (resync, rebuild, and scrub heals/repairs).
    pub sync_bytes: SyncBytes,
    pub member_failures: u64,
    pub full_stripe_writes: u64,
    pub rmw_writes: u64,
    pub rcw_writes: u64,
    /// Member sectors read to serve RAID 5 writes (≈ 0 when writes gather).
    pub stripe_read_sectors: u64,
    pub stripe_writes_gathered: u64,
    /// Partial-parity log: entries and sectors written, entries replayed at start,
    /// sectors of interrupted writes on a lost member that came back undetermined.
    pub ppl_entries: u64,
    pub ppl_sectors: u64,
    pub ppl_replayed: u64,
    pub ppl_indeterminate_sectors: u64,
    /// Log slots read at an unclean start that held an entry header (the magic) but
    /// were not replayed. Refused: torn or corrupt (a CRC fails), another array's, a
    /// generation above the superblocks', or naming a stripe, rows, columns or a member
    /// the entry cannot belong to — never applied. Stale: an earlier run's entry, one
    /// superseded by a newer entry of its stripe, or one on a member not in sync there
    /// (the normal leftovers of earlier runs and rebuilds).
    pub ppl_refused: u64,
    pub ppl_stale: u64,
}

/// What a background sync does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SyncKind {
    /// Make copies / parity agree after an unclean shutdown or creation.
    Resync,
    /// Bring one member up to date (whole, or only the bitmap's dirty regions).
    Rebuild,
    /// Scrub that counts mismatches (md's `check`).
    Check,
    /// Scrub that rewrites mismatches (md's `repair`).
    Repair,
    /// Checksums computed for data written before integrity knew it (seal.rs).
    Seal,
}

impl SyncKind {
    /// md's name for it, as `/proc/mdstat` and `sync_action` show it.
    pub fn name(self) -> &'static str {
        match self {
            SyncKind::Resync => "resync",
            SyncKind::Rebuild => "rebuild",
            SyncKind::Check => "check",
            SyncKind::Repair => "repair",
            SyncKind::Seal => "seal",
        }
    }
}

impl std::fmt::Display for SyncKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Bytes written to members by background syncs, by kind; cumulative. A seal writes
/// no data (only checksum sectors): it counts none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncBytes {
    pub resync: u64,
    pub rebuild: u64,
    pub check: u64,
    pub repair: u64,
}

impl SyncBytes {
    pub fn of(&self, kind: SyncKind) -> u64 {
        match kind {
            SyncKind::Resync => self.resync,
            SyncKind::Rebuild => self.rebuild,
            SyncKind::Check => self.check,
            SyncKind::Repair => self.repair,
            SyncKind::Seal => 0,
        }
    }

    pub fn total(&self) -> u64 {
        self.resync + self.rebuild + self.check + self.repair
    }

    pub(crate) fn add(&mut self, kind: SyncKind, bytes: u64) {
        *match kind {
            SyncKind::Resync => &mut self.resync,
            SyncKind::Rebuild => &mut self.rebuild,
            SyncKind::Check => &mut self.check,
            SyncKind::Repair => &mut self.repair,
            SyncKind::Seal => return,
        } += bytes;
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberStatus {
    pub index: MemberIndex,
    pub uuid: [u8; 16],
    pub role: Option<usize>,
    pub state: MemberState,
    pub outstanding: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SyncProgress {
    pub kind: SyncKind,
    /// The member a rebuild writes.
    pub member: Option<MemberIndex>,
    pub done_sectors: u64,
    pub total_sectors: u64,
    pub fraction: f64,
    /// Current limit, KiB/s per member.
    pub rate_limit_kib_s: u64,
    /// Measured since the run started, KiB/s.
    pub rate_kib_s: u64,
    pub eta_ns: Option<u64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Status {
    pub name: String,
    pub array_uuid: [u8; 16],
    pub level: Level,
    pub state: ArrayState,
    pub volume_sectors: u64,
    pub chunk_sectors: u32,
    pub raid_disks: usize,
    pub events: u64,
    /// The superblocks say clean (no write in flight, nothing to resync).
    pub clean_on_disk: bool,
    pub members: Vec<MemberStatus>,
    pub sync: Option<SyncProgress>,
    pub bitmap_dirty_regions: u64,
    pub counters: Counters,
    pub sync_min_kib_s: u64,
    pub sync_max_kib_s: u64,
    /// `consistency_policy`: a partial-parity log closes the write hole (RAID 5/6).
    pub ppl: bool,
    /// Parity not yet computed over the whole array (first resync after creation).
    pub initial_sync: bool,
}

impl Engine {
    /// The event count at which the write-intent bitmap was last cleared: a member
    /// whose superblock is at least this new missed only writes the bitmap still
    /// marks (md's `events_cleared`), so a bitmap resync brings it back in sync.
    pub fn bitmap_events_cleared(&self) -> u64 {
        self.meta.events_cleared
    }

    pub fn status(&self) -> Status {
        let state = if self.failed {
            ArrayState::Failed
        } else if self
            .sync
            .run
            .as_ref()
            .is_some_and(|s| matches!(s.kind, SyncOp::Recover { .. }))
        {
            ArrayState::Rebuilding
        } else if self.sync.resync_needed {
            ArrayState::Resyncing
        } else if self.is_degraded() {
            ArrayState::Degraded
        } else {
            ArrayState::Clean
        };
        let unit = self.geo.unit_sectors();
        let busy = self
            .sync
            .foreground_busy(self.now, self.tun.idle_ns, self.has_requests());
        let sync = self.sync.run.as_ref().map(|s| {
            let total = self.geo.units();
            let ck = s.checkpoint();
            let elapsed = self.now.saturating_sub(s.started_ns);
            let moved = ck.saturating_sub(s.start_unit);
            let rate = if elapsed > 0 {
                (s.bytes as u128 * 1_000_000_000 / elapsed as u128 / 1024) as u64
            } else {
                0
            };
            let eta = (moved > 0 && elapsed > 0)
                .then(|| ((total - ck) as u128 * elapsed as u128 / moved as u128) as u64);
            SyncProgress {
                kind: s.kind.kind(),
                member: s.kind.target(),
                done_sectors: ck * unit,
                total_sectors: total * unit,
                fraction: ck as f64 / total.max(1) as f64,
                rate_limit_kib_s: self.sync.pacer.rate_kib_s(busy),
                rate_kib_s: rate,
                eta_ns: eta,
            }
        });
        Status {
            name: self.name.clone(),
            array_uuid: self.array_uuid,
            level: self.geo.level,
            state,
            volume_sectors: self.geo.volume_sectors(),
            chunk_sectors: self.geo.chunk,
            raid_disks: self.geo.members,
            events: self.meta.events,
            clean_on_disk: self.meta.clean_on_disk,
            members: self
                .members
                .iter()
                .enumerate()
                .map(|(i, m)| MemberStatus {
                    index: i,
                    uuid: m.uuid,
                    role: m.role,
                    state: m.state,
                    outstanding: m.outstanding,
                })
                .collect(),
            sync,
            bitmap_dirty_regions: self.meta.bitmap.dirty_count(),
            counters: self.counters.clone(),
            sync_min_kib_s: self.sync.pacer.min_kib_s,
            sync_max_kib_s: self.sync.pacer.max_kib_s,
            ppl: self.ppl_on(),
            initial_sync: self.meta.initial_sync,
        }
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Is what `status()` says about the members and cleanliness on the members'
    /// superblocks? Right after a change (a rebuild finishing, a failure, the clean
    /// flag) it is not until the superblock round lands: a crash meanwhile assembles
    /// from the previous state.
    pub fn superblock_durable(&self) -> bool {
        let sb = MetaKey::Superblock;
        self.meta
            .writer
            .is_durable(sb, self.meta.writer.version(sb))
    }

    /// No metadata block (superblock, bitmap, checksums) has a change waiting or in
    /// flight. An orderly shutdown stops I/O and waits for this.
    pub fn metadata_settled(&self) -> bool {
        self.meta.writer.idle()
    }
}
