//! Creating and assembling engines, superblock/bitmap/checksum-area writes, the initial
//! metadata load, write intent and lazy clearing.

use super::outbox::Inflight;
use super::{Engine, Member, Recovery};
use crate::assembly::{AssemblyPlan, PlannedState};
use crate::bitmap::Bitmap;
use crate::config::{validate, ArrayConfig, CreateError, Format, CSUM_BLOCK_SECTORS};
use crate::engine::io::CSUMS_PER_SECTOR;
use crate::engine::job::{Job, SyncOp};
use crate::layout::Geometry;
use crate::meta::{MetaKey, MetaWriter};
use crate::superblock::{
    layout_code, SlotEntry, SlotState, Superblock, BITMAP_OFFSET, ROLE_SPARE, SB_OFFSET, SB_SECTORS,
};
use crate::types::*;

/// Largest single write/read the engine emits while formatting or loading.
const INIT_IO_SECTORS: u64 = 256;

/// What an initial load read fills in.
#[derive(Clone, Copy, Debug)]
pub(crate) enum LoadKind {
    Bitmap(u32),
    Csum(u64),
    /// A partial-parity log slot, kept for the replay.
    Ppl,
}

/// What the superblocks and bitmaps say, and the writes that keep them saying it.
#[derive(Debug)]
pub(crate) struct MetaState {
    /// The superblocks' event counter: bumped by every superblock round.
    pub(crate) events: u64,
    /// What the superblocks' clean flag says (or will, once the round lands).
    pub(crate) clean_on_disk: bool,
    pub(crate) bitmap: Bitmap,
    /// `events` when the bitmap last dropped a bit: a member whose superblock is at
    /// least this recent missed only what the bitmap records.
    pub(crate) events_cleared: u64,
    pub(crate) writer: MetaWriter,
    /// Last write start or end: the clean flag is set after writes have been idle.
    pub(crate) last_write_ns: u64,
    /// Superblock version that carries `clean_on_disk == false`.
    pub(crate) sb_dirty_version: u64,
    pub(crate) next_clear_scan: u64,
    /// Assembly loaded the bitmap as the OR of the members' copies: write the merged
    /// bitmap back to every member once all loads are in (see `init_done`).
    pub(crate) bitmap_writeback: bool,
    /// Format writes and initial loads still in flight; requests wait for them.
    pub(crate) init_pending: usize,
    /// Parity has never been computed over the whole array (created without
    /// `assume_clean`; the first resync has not finished).
    pub(crate) initial_sync: bool,
}

impl MetaState {
    pub(crate) fn new(bitmap: Bitmap) -> MetaState {
        MetaState {
            events: 0,
            clean_on_disk: true,
            bitmap,
            events_cleared: 0,
            writer: MetaWriter::default(),
            last_write_ns: 0,
            sb_dirty_version: 0,
            next_clear_scan: 0,
            bitmap_writeback: false,
            init_pending: 0,
            initial_sync: false,
        }
    }

    /// The latest superblock version (what a barrier waits for).
    pub(crate) fn sb_version(&self) -> u64 {
        self.writer.version(MetaKey::Superblock)
    }
}

impl Engine {
    /// A new array. The engine first writes superblocks, an empty bitmap and (with
    /// integrity) a zeroed checksum area; requests submitted meanwhile wait. Without
    /// `assume_clean` every region starts dirty and a resync runs.
    pub fn create(cfg: &ArrayConfig) -> Result<Engine, CreateError> {
        let format = validate(cfg)?;
        let mut e = Engine::blank(cfg.name.clone(), cfg.array_uuid, cfg.integrity, format);
        for (i, m) in cfg.members.iter().enumerate() {
            e.members.push(Member {
                uuid: m.uuid,
                state: MemberState::Active,
                role: Some(i),
                outstanding: 0,
                recovery: None,
            });
            e.slots[i] = Some(i);
        }
        for m in &cfg.spares {
            e.members.push(Member {
                uuid: m.uuid,
                state: MemberState::Spare,
                role: None,
                outstanding: 0,
                recovery: None,
            });
        }
        e.csums = e.members.iter().map(|_| e.new_csum_table()).collect();
        e.meta.events = 1;
        e.ppl.generation = 1;
        e.ppl.sb_generation = 1;
        if !cfg.assume_clean {
            e.meta.initial_sync = true;
            e.meta.bitmap.set_all();
            e.sync.resync_needed = true;
            e.meta.clean_on_disk = false;
            e.sync.pending.push_back(SyncOp::Resync);
        }
        if e.integrity {
            e.sync.pending.push_back(SyncOp::Seal);
        }
        for m in 0..e.members.len() {
            e.format_member(m);
        }
        Ok(e)
    }

    pub(crate) fn new_csum_table(&self) -> Vec<u32> {
        if self.integrity {
            vec![0; (self.geo.member_used_sectors() / CSUM_BLOCK_SECTORS) as usize]
        } else {
            Vec::new()
        }
    }

    /// Write a member's superblock, bitmap and checksum area from scratch.
    pub(crate) fn format_member(&mut self, m: MemberIndex) {
        let sb = self.sb_for(m).encode();
        self.meta.init_pending += 1;
        self.emit(
            m,
            MemberOp::Write,
            SB_OFFSET,
            SB_SECTORS,
            sb,
            Inflight::Init(None),
        );
        for s in 0..self.meta.bitmap.sectors() {
            let b = self.meta.bitmap.encode_sector(s);
            self.meta.init_pending += 1;
            self.emit(
                m,
                MemberOp::Write,
                BITMAP_OFFSET + s as u64,
                1,
                b,
                Inflight::Init(None),
            );
        }
        let mut s = 0;
        while s < self.ml.csum_sectors {
            let n = INIT_IO_SECTORS.min(self.ml.csum_sectors - s);
            self.meta.init_pending += 1;
            self.emit(
                m,
                MemberOp::Write,
                self.ml.csum_offset + s,
                n as u32,
                vec![0; n as usize * SECTOR],
                Inflight::Init(None),
            );
            s += n;
        }
    }

    /// Start an engine from an assembly plan. Member index i is `plan.members[i]`.
    /// The engine reads the bitmap (and checksum areas) first; requests wait meanwhile.
    pub fn assemble(plan: &AssemblyPlan) -> Result<Engine, CreateError> {
        let sb = &plan.reference;
        let min = plan
            .members
            .iter()
            .filter(|m| m.role.is_some())
            .map(|m| m.size_sectors)
            .min()
            .unwrap_or(sb.areas.data_offset + sb.data_size);
        let geo = Geometry::new(
            sb.level,
            sb.raid_disks as usize,
            sb.chunk,
            sb.data_size.min(min.saturating_sub(sb.areas.data_offset)),
        )
        .map_err(CreateError::Geometry)?;
        let ml = sb.areas;
        // Decoding checked that the areas lie in order; they must also hold what
        // this geometry keeps in them, or write-back would run into the next one.
        if Bitmap::sectors_for(geo.units(), sb.bitmap_region_units) > ml.bitmap_sectors {
            return Err(CreateError::AreaTooSmall("bitmap"));
        }
        let csum_blocks = geo.member_used_sectors() / CSUM_BLOCK_SECTORS;
        if sb.integrity && csum_blocks.div_ceil(CSUMS_PER_SECTOR) > ml.csum_sectors {
            return Err(CreateError::AreaTooSmall("checksum"));
        }
        let format = Format {
            geo,
            ml,
            region_units: sb.bitmap_region_units,
        };
        let mut e = Engine::blank(sb.name.clone(), sb.array_uuid, sb.integrity, format);
        e.meta.events = sb.events;
        e.meta.events_cleared = sb.bitmap_events_cleared;
        e.meta.clean_on_disk = sb.clean;
        e.meta.initial_sync = sb.initial_sync;
        e.ppl.generation = sb.events + 1;
        e.ppl.sb_generation = sb.ppl_generation;
        // After a crash the log of the run that crashed is replayed before anything
        // else runs (its parity cannot vouch for a never-synced array: no replay then).
        let replay = e.ppl_on() && !sb.clean && !sb.initial_sync;
        for pm in &plan.members {
            let (state, recovery) = match pm.state {
                PlannedState::Active => (MemberState::Active, None),
                PlannedState::Recovering {
                    checkpoint,
                    bitmap_only,
                } => (
                    MemberState::Rebuilding,
                    Some(Recovery {
                        checkpoint,
                        bitmap_only,
                    }),
                ),
                PlannedState::Spare => (MemberState::Spare, None),
            };
            let idx = e.members.len();
            if let Some(r) = pm.role {
                e.slots[r] = Some(idx);
            }
            e.members.push(Member {
                uuid: pm.uuid,
                state,
                role: pm.role,
                outstanding: 0,
                recovery,
            });
        }
        // Placeholders keep every slot filled; a spare replaces them.
        for s in 0..e.geo.members {
            if e.slots[s].is_none() {
                let idx = e.members.len();
                e.slots[s] = Some(idx);
                e.members.push(Member {
                    uuid: sb.slots[s].member_uuid,
                    state: MemberState::Missing,
                    role: Some(s),
                    outstanding: 0,
                    recovery: None,
                });
            }
        }
        // Only the members read below get a table: one absent now has none until it
        // returns, when its own is read back (rejoin.rs) or it is rebuilt whole.
        e.csums = e
            .members
            .iter()
            .map(|m| match m.state {
                MemberState::Missing => Vec::new(),
                _ => e.new_csum_table(),
            })
            .collect();
        if !sb.clean {
            e.sync.resync_needed = true;
            e.sync.pending.push_back(SyncOp::Resync);
        }
        for (i, m) in e.members.iter().enumerate() {
            if let (MemberState::Rebuilding, Some(r)) = (m.state, &m.recovery) {
                e.sync.pending.push_back(SyncOp::Recover {
                    member: i,
                    bitmap_only: r.bitmap_only,
                });
            }
        }
        // Blocks a run before left unsealed (a seal pass cut short): sealed after
        // whatever resync or rebuild comes first.
        if e.integrity {
            e.sync.pending.push_back(SyncOp::Seal);
        }
        // Load the bitmap from every in-sync member (OR) and each member's checksums.
        for m in 0..e.members.len() {
            if replay
                && matches!(
                    e.members[m].state,
                    MemberState::Active | MemberState::Rebuilding
                )
            {
                for slot in 0..e.ml.ppl_slots as u64 {
                    e.meta.init_pending += 1;
                    e.emit(
                        m,
                        MemberOp::Read,
                        e.ml.ppl_offset + slot * e.ml.ppl_slot_sectors as u64,
                        e.ml.ppl_slot_sectors,
                        Vec::new(),
                        Inflight::Init(Some(LoadKind::Ppl)),
                    );
                }
            }
            if e.members[m].state == MemberState::Active {
                for s in 0..e.ml.bitmap_sectors {
                    e.meta.init_pending += 1;
                    e.emit(
                        m,
                        MemberOp::Read,
                        BITMAP_OFFSET + s as u64,
                        1,
                        Vec::new(),
                        Inflight::Init(Some(LoadKind::Bitmap(s))),
                    );
                }
            }
            if e.integrity
                && matches!(
                    e.members[m].state,
                    MemberState::Active | MemberState::Rebuilding
                )
            {
                let blocks = e.csums[m].len();
                e.meta.init_pending +=
                    e.read_csum_area(m, blocks, |s| Inflight::Init(Some(LoadKind::Csum(s))));
            }
        }
        e.meta.bitmap_writeback = true;
        let v = e.meta.writer.touch(MetaKey::Superblock);
        if replay {
            e.ppl.replay_pending = true;
        } else {
            e.ppl.sb_generation = e.ppl.generation;
            e.ppl.gen_version = v;
        }
        e.update_degraded();
        Ok(e)
    }

    /// Read the part of member `m`'s checksum area that holds `blocks` checksums;
    /// `what(first sector)` tags each read. Returns the number of reads issued.
    pub(crate) fn read_csum_area(
        &mut self,
        m: MemberIndex,
        blocks: usize,
        what: impl Fn(u64) -> Inflight,
    ) -> usize {
        let used = (blocks as u64).div_ceil(CSUMS_PER_SECTOR);
        let (mut s, mut reads) = (0, 0);
        while s < used {
            let n = INIT_IO_SECTORS.min(used - s);
            self.emit(
                m,
                MemberOp::Read,
                self.ml.csum_offset + s,
                n as u32,
                Vec::new(),
                what(s),
            );
            reads += 1;
            s += n;
        }
        reads
    }

    pub(crate) fn init_done(
        &mut self,
        member: MemberIndex,
        kind: Option<LoadKind>,
        result: Result<Vec<u8>, MemberError>,
    ) {
        self.meta.init_pending = self.meta.init_pending.saturating_sub(1);
        match (kind, result) {
            (_, Err(_)) => self.fail_member_internal(member),
            (Some(LoadKind::Bitmap(s)), Ok(d)) => self.meta.bitmap.merge_sector(s, &d),
            (Some(LoadKind::Ppl), Ok(d)) => self.ppl.loaded.push((member, d)),
            (Some(LoadKind::Csum(s)), Ok(d)) => {
                for (i, chunk) in d.chunks(SECTOR).enumerate() {
                    self.load_csum_sector(member, s + i as u64, chunk);
                }
            }
            (None, Ok(_)) => {}
        }
        if self.meta.init_pending == 0 && self.meta.bitmap_writeback {
            // The members' bitmaps may differ (a crash landed a bitmap write on some
            // of them only: a lazy clear, say). Held requests start after this, so
            // their write intent waits for these rounds.
            self.meta.bitmap_writeback = false;
            self.rewrite_bitmap();
        }
        if self.meta.init_pending == 0 && self.ppl.replay_pending {
            self.ppl.replay_pending = false;
            self.ppl_start_replay();
        }
    }

    /// Write the whole in-memory bitmap to every writable member. Write intent trusts
    /// it — a bit already set is not written again before a write to its region — so
    /// every member's copy must hold every set bit: one that lacks a bit could later
    /// be the only in-sync member and lose the record of what an absent member missed.
    /// Needed when the copies may differ: after assembly (the in-memory bitmap is their
    /// OR) and when a member starts taking writes again (re-add, spare takeover).
    /// Writes issued after this wait for the rounds (they need the latest version).
    pub(crate) fn rewrite_bitmap(&mut self) {
        for s in 0..self.meta.bitmap.sectors() {
            self.meta.writer.touch(MetaKey::Bitmap(s));
        }
    }

    /// This member's superblock as the engine sees the array now.
    pub(crate) fn sb_for(&self, m: MemberIndex) -> Superblock {
        let mem = &self.members[m];
        let slots = (0..self.geo.members)
            .map(|s| match self.slots[s] {
                Some(mi) => SlotEntry {
                    member_uuid: self.members[mi].uuid,
                    state: match self.members[mi].state {
                        MemberState::Active => SlotState::Active,
                        MemberState::Rebuilding => SlotState::Rebuilding,
                        MemberState::Faulty => SlotState::Faulty,
                        _ => SlotState::Missing,
                    },
                },
                None => SlotEntry {
                    member_uuid: [0; 16],
                    state: SlotState::Missing,
                },
            })
            .collect();
        Superblock {
            array_uuid: self.array_uuid,
            member_uuid: mem.uuid,
            name: self.name.clone(),
            level: self.geo.level,
            layout: layout_code(self.geo.level),
            chunk: self.geo.chunk,
            raid_disks: self.geo.members as u32,
            role: mem.role.map_or(ROLE_SPARE, |r| r as u32),
            areas: self.ml,
            data_size: self.geo.member_used_sectors(),
            events: self.meta.events,
            clean: self.meta.clean_on_disk,
            integrity: self.integrity,
            recovering: mem.recovery.is_some(),
            recovery_bitmap_only: mem.recovery.as_ref().is_some_and(|r| r.bitmap_only),
            recovery_unit: mem.recovery.as_ref().map_or(0, |r| r.checkpoint),
            bitmap_region_units: self.meta.bitmap.region_units(),
            bitmap_events_cleared: self.meta.events_cleared,
            ppl_generation: self.ppl.sb_generation,
            initial_sync: self.meta.initial_sync,
            slots,
        }
    }

    /// Start a write round for every metadata block with unwritten changes.
    pub(crate) fn issue_meta(&mut self) {
        // Formatting writes the same blocks (a new spare's superblock and bitmap), and
        // the initial load reads them: rounds start once that is done, or two writes
        // of one block could land in either order.
        if !self.meta.writer.has_ready() || !self.is_ready() {
            return;
        }
        for key in self.meta.writer.ready() {
            let targets: Vec<MemberIndex> = (0..self.members.len())
                .filter(|&m| match key {
                    MetaKey::Superblock => matches!(
                        self.members[m].state,
                        MemberState::Active | MemberState::Rebuilding | MemberState::Spare
                    ),
                    MetaKey::Bitmap(_) => self.writable(m),
                    MetaKey::Csum(cm, _) | MetaKey::PplSlot(cm, _) => cm == m && self.writable(m),
                })
                .collect();
            if key == MetaKey::Superblock {
                self.meta.events += 1;
            }
            self.meta.writer.start(key, targets.len());
            for m in targets {
                let (off, sectors, data) = match key {
                    MetaKey::Superblock => (SB_OFFSET, SB_SECTORS, self.sb_for(m).encode()),
                    MetaKey::Bitmap(s) => (
                        BITMAP_OFFSET + s as u64,
                        1,
                        self.meta.bitmap.encode_sector(s),
                    ),
                    MetaKey::Csum(cm, s) => {
                        (self.ml.csum_offset + s, 1, self.csum_sector_bytes(cm, s))
                    }
                    MetaKey::PplSlot(_, s) => (
                        self.ppl_slot_offset(s),
                        crate::ppl::HEADER_SECTORS as u32,
                        vec![0; crate::ppl::HEADER_SECTORS as usize * SECTOR],
                    ),
                };
                self.emit(m, MemberOp::Write, off, sectors, data, Inflight::Meta(key));
            }
        }
    }

    pub(crate) fn meta_done(
        &mut self,
        member: MemberIndex,
        key: MetaKey,
        result: Result<Vec<u8>, MemberError>,
    ) {
        if result.is_err() {
            self.fail_member_internal(member);
        }
        self.meta.writer.ack(key);
    }

    /// Before a write to unit `u`: its bitmap bit and the dirty flag must be on disk.
    pub(crate) fn write_intent(&mut self, job: &mut Job) {
        if job.region.is_some() {
            return;
        }
        let r = self.meta.bitmap.region_of(job.unit);
        job.region = Some(r);
        self.meta.last_write_ns = self.now;
        let k = MetaKey::Bitmap(Bitmap::sector_of(r));
        if self.meta.bitmap.start_write(r, self.now).is_some() {
            self.meta.writer.touch(k);
        }
        debug_assert!(
            self.meta.bitmap.is_dirty(r),
            "write intent on region {r} left its bit clear"
        );
        // Even if another job set the bit, it must be durable before this write goes out.
        job.wait.push((k, self.meta.writer.version(k)));
        if self.meta.clean_on_disk {
            self.meta.clean_on_disk = false;
            self.meta.sb_dirty_version = self.meta.writer.touch(MetaKey::Superblock);
        }
        if !self
            .meta
            .writer
            .is_durable(MetaKey::Superblock, self.meta.sb_dirty_version)
        {
            job.wait
                .push((MetaKey::Superblock, self.meta.sb_dirty_version));
        }
        // A log entry of this run must not land before the superblocks name the run.
        if self.ppl_on() {
            job.wait.push((MetaKey::Superblock, self.ppl.gen_version));
        }
    }

    /// Every slot holds an active member and no rebuild or resync is owed (a scrub may
    /// run): only then may a bitmap bit drop, since the bits also record what an absent
    /// or rebuilding member missed.
    fn all_in_sync(&self) -> bool {
        self.slots
            .iter()
            .all(|s| s.is_some_and(|m| self.members[m].state == MemberState::Active))
            && !self.sync.resync_needed
            && self
                .sync
                .run
                .as_ref()
                .is_none_or(|s| matches!(s.kind, SyncOp::Check | SyncOp::Repair | SyncOp::Seal))
    }

    /// The clean flag may be set once writes have been idle (degraded or not).
    fn clean_mark_owed(&self) -> bool {
        !self.meta.clean_on_disk && self.meta.bitmap.writes() == 0 && !self.sync.resync_needed
    }

    /// When `lazy_clear_bitmap` next has something to do, or None while it can do
    /// nothing until a write, a member's state or a sync changes (each re-polls the
    /// timer). Arming it on a dirty bitmap alone would, with a delay of 0 (a clean
    /// stop), ask for a tick at `now` over and over on an array out of sync.
    pub(crate) fn lazy_clear_due(&self) -> Option<u64> {
        if !self.is_ready() || self.failed {
            return None;
        }
        let delay = self.tun.bitmap_clear_ns;
        let regions =
            (self.meta.bitmap.any_idle_dirty() && self.all_in_sync()).then(|| self.now + delay / 4);
        let clean = self
            .clean_mark_owed()
            .then(|| self.meta.last_write_ns.saturating_add(delay));
        let due = match (regions, clean) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        Some(due.max(self.meta.next_clear_scan))
    }

    /// Clear idle bitmap regions once every member is in sync; mark the array clean when
    /// writes have been idle.
    pub(crate) fn lazy_clear_bitmap(&mut self) {
        if !self.is_ready() || self.failed || self.now < self.meta.next_clear_scan {
            return;
        }
        self.meta.next_clear_scan = self.now + self.tun.bitmap_clear_ns / 8;
        if self.all_in_sync() {
            let sectors = self
                .meta
                .bitmap
                .lazy_clear(self.now, self.tun.bitmap_clear_ns);
            if !sectors.is_empty() {
                self.meta.events_cleared = self.meta.events;
                self.meta.writer.touch(MetaKey::Superblock);
                for s in sectors {
                    self.meta.writer.touch(MetaKey::Bitmap(s));
                }
            }
        }
        if self.clean_mark_owed()
            && self.now.saturating_sub(self.meta.last_write_ns) >= self.tun.bitmap_clear_ns
        {
            self.meta.clean_on_disk = true;
            self.meta.writer.touch(MetaKey::Superblock);
        }
    }

    pub(crate) fn end_write_intent(&mut self, r: u64) {
        self.meta.bitmap.end_write(r, self.now);
        self.meta.last_write_ns = self.now;
    }
}
