//! Operator and appliance control: fail/remove/re-add members, spares, rates, scrub.

use super::job::SyncOp;
use super::{Engine, Inflight, Member, Recovery};
use crate::config::MemberSpec;
use crate::layout::Level;
use crate::meta::MetaKey;
use crate::superblock::{Superblock, SB_OFFSET, SB_SECTORS};
use crate::types::*;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControlError {
    NoSuchMember(MemberIndex),
    /// The member is in a state that does not allow this.
    WrongState {
        member: MemberIndex,
        state: MemberState,
    },
    Degraded,
    Busy,
    TooSmall {
        member_sectors: u64,
        needed: u64,
    },
    ArrayFailed,
}

impl std::fmt::Display for ControlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ControlError::NoSuchMember(m) => write!(f, "no member {m}"),
            ControlError::WrongState { member, state } => write!(f, "member {member} is {state:?}"),
            ControlError::Degraded => f.write_str("array is degraded"),
            ControlError::Busy => f.write_str("another sync is running"),
            ControlError::TooSmall {
                member_sectors,
                needed,
            } => {
                write!(f, "member has {member_sectors} sectors, {needed} needed")
            }
            ControlError::ArrayFailed => f.write_str("array failed"),
        }
    }
}

impl std::error::Error for ControlError {}

impl Engine {
    fn member_ref(&self, m: MemberIndex) -> Result<&Member, ControlError> {
        self.members.get(m).ok_or(ControlError::NoSuchMember(m))
    }

    /// Mark a member faulty (operator `--fail`, or the appliance declaring a blade dead).
    /// I/O in flight to it is failed at once; the array runs degraded.
    pub fn fail_member(&mut self, m: MemberIndex) -> Result<(), ControlError> {
        self.member_ref(m)?;
        self.rejoin.cancel(m);
        self.fail_member_internal(m);
        self.pump();
        Ok(())
    }

    pub(crate) fn set_state(&mut self, m: MemberIndex, to: MemberState) {
        let from = self.members[m].state;
        debug_assert!(
            from == to || from.may_become(to),
            "member {m}: {from:?} may not become {to:?}"
        );
        if from != to {
            self.members[m].state = to;
            self.io.events.push_back(Event::MemberStateChanged {
                member: m,
                from,
                to,
            });
        }
    }

    pub(crate) fn fail_member_internal(&mut self, m: MemberIndex) {
        let state = self.members[m].state;
        if !matches!(
            state,
            MemberState::Active | MemberState::Rebuilding | MemberState::Spare
        ) {
            return;
        }
        self.set_state(m, MemberState::Faulty);
        self.members[m].recovery = None;
        self.io.events.push_back(Event::Fail { member: m });
        self.counters.member_failures += 1;
        // No write may be acknowledged without this member before its failure is on
        // the survivors' superblocks (jobs that saw it fail wait on `sb_barrier`).
        self.meta.writer.touch(MetaKey::Superblock);
        self.io.to_cancel.push(m);
        if let Some(run) = &mut self.sync.run {
            let stop = match run.kind {
                SyncOp::Recover { member, .. } => member == m,
                SyncOp::Check | SyncOp::Repair => true,
                SyncOp::Resync | SyncOp::Seal => false,
            };
            if stop {
                run.aborted = true;
                run.next = self.geo.units();
            }
        }
        if state != MemberState::Spare {
            self.update_degraded();
        }
    }

    /// Array lost data (more members out than the level tolerates)?
    pub(crate) fn data_lost(&self) -> bool {
        let ok = |s: usize| self.slot_active(s);
        let n = self.geo.members;
        match self.geo.level {
            Level::Raid0 => (0..n).any(|s| !ok(s)),
            Level::Raid1 => !(0..n).any(ok),
            Level::Raid5 | Level::Raid6 => {
                (0..n).filter(|&s| !ok(s)).count() > self.geo.level.parity()
            }
            Level::Raid10 => (0..n as u64).any(|u| self.geo.copies(u).iter().all(|&(m, _)| !ok(m))),
        }
    }

    pub fn is_degraded(&self) -> bool {
        (0..self.geo.members).any(|s| !self.slot_active(s))
    }

    /// Re-evaluate redundancy: failed array, degraded event, spare takeover.
    pub(crate) fn update_degraded(&mut self) {
        if self.failed {
            return;
        }
        if self.data_lost() {
            self.failed = true;
            self.io.events.push_back(Event::ArrayFailed);
            return;
        }
        let missing = self.slots.iter().any(|s| {
            !s.is_some_and(|m| {
                matches!(
                    self.members[m].state,
                    MemberState::Active | MemberState::Rebuilding
                )
            })
        });
        if self.is_degraded() {
            if !self.degraded_reported && missing {
                self.degraded_reported = true;
                self.io.events.push_back(Event::DegradedArray);
            }
        } else {
            self.degraded_reported = false;
        }
        if missing && self.geo.level != Level::Raid0 {
            self.activate_spare();
        }
    }

    /// Put a spare into the first slot without a usable member and start its rebuild.
    fn activate_spare(&mut self) {
        let Some(slot) = (0..self.geo.members).find(|&s| {
            !self.slots[s].is_some_and(|m| {
                matches!(
                    self.members[m].state,
                    MemberState::Active | MemberState::Rebuilding
                )
            })
        }) else {
            return;
        };
        let Some(spare) =
            (0..self.members.len()).find(|&m| self.members[m].state == MemberState::Spare)
        else {
            self.io.events.push_back(Event::SparesMissing);
            return;
        };
        debug_assert!(
            self.members[spare].role.is_none(),
            "spare {spare} already has a role"
        );
        if let Some(old) = self.slots[slot] {
            debug_assert!(
                !self.writable(old),
                "slot {slot} handed to spare {spare} over member {old} still in use"
            );
            self.members[old].role = None;
        }
        self.slots[slot] = Some(spare);
        self.members[spare].role = Some(slot);
        self.members[spare].recovery = Some(Recovery {
            checkpoint: 0,
            bitmap_only: false,
        });
        self.set_state(spare, MemberState::Rebuilding);
        self.rewrite_bitmap();
        self.ppl_forget(spare);
        self.io
            .events
            .push_back(Event::SpareActive { member: spare });
        self.meta.writer.touch(MetaKey::Superblock);
        self.sync.pending.push_back(SyncOp::Recover {
            member: spare,
            bitmap_only: false,
        });
    }

    /// Does the array want a spare it does not have (for spare groups)?
    pub fn needs_spare(&self) -> bool {
        !self.failed
            && self.geo.level != Level::Raid0
            && self.slots.iter().any(|s| {
                !s.is_some_and(|m| {
                    matches!(
                        self.members[m].state,
                        MemberState::Active | MemberState::Rebuilding
                    )
                })
            })
            && !self.members.iter().any(|m| m.state == MemberState::Spare)
    }

    /// Add a spare (or a replacement member): its superblock is written at once and it
    /// takes a missing slot right away if the array is degraded. Returns its index.
    pub fn add_spare(&mut self, spec: MemberSpec) -> Result<MemberIndex, ControlError> {
        let needed = self.ml.data_offset + self.geo.member_used_sectors();
        if spec.size_sectors < needed {
            return Err(ControlError::TooSmall {
                member_sectors: spec.size_sectors,
                needed,
            });
        }
        if self.failed {
            return Err(ControlError::ArrayFailed);
        }
        let idx = self.members.len();
        self.members.push(Member {
            uuid: spec.uuid,
            state: MemberState::Spare,
            role: None,
            outstanding: 0,
            recovery: None,
        });
        let t = self.new_csum_table();
        self.csums.push(t);
        self.set_state(idx, MemberState::Spare);
        self.format_member(idx);
        self.update_degraded();
        self.pump();
        Ok(idx)
    }

    /// Remove a faulty/spare/missing member from the array (`mdadm --remove`).
    pub fn remove_member(&mut self, m: MemberIndex) -> Result<(), ControlError> {
        let state = self.member_ref(m)?.state;
        if matches!(state, MemberState::Active | MemberState::Rebuilding) {
            return Err(ControlError::WrongState { member: m, state });
        }
        self.rejoin.cancel(m);
        self.set_state(m, MemberState::Missing);
        self.meta.writer.touch(MetaKey::Superblock);
        self.pump();
        Ok(())
    }

    /// The appliance sees a member again (blade back, link up). The engine reads its
    /// superblock; if it is this array's member still owning its slot it is re-added and
    /// only the bitmap's dirty regions are copied, otherwise it becomes a spare. A
    /// foreign or unreadable superblock leaves it out (event `MemberRefused`).
    /// The caller must have drained any I/O of the member's previous life.
    pub fn member_returned(&mut self, m: MemberIndex) -> Result<(), ControlError> {
        let state = self.member_ref(m)?.state;
        if !matches!(state, MemberState::Faulty | MemberState::Missing) {
            return Err(ControlError::WrongState { member: m, state });
        }
        self.emit(
            m,
            MemberOp::Read,
            SB_OFFSET,
            SB_SECTORS,
            Vec::new(),
            Inflight::Probe(m),
        );
        Ok(())
    }

    pub(crate) fn probe_done(&mut self, m: MemberIndex, result: Result<Vec<u8>, MemberError>) {
        if self.failed
            || !matches!(
                self.members[m].state,
                MemberState::Faulty | MemberState::Missing
            )
        {
            return;
        }
        let sb = match result
            .map_err(|e| format!("superblock unreadable ({e:?})"))
            .and_then(|b| Superblock::decode(&b).map_err(|e| e.to_string()))
        {
            Ok(sb) => sb,
            Err(reason) => {
                self.io
                    .events
                    .push_back(Event::MemberRefused { member: m, reason });
                return;
            }
        };
        if sb.array_uuid != self.array_uuid || sb.member_uuid != self.members[m].uuid {
            self.io.events.push_back(Event::MemberRefused {
                member: m,
                reason: "superblock of another array or member".into(),
            });
            return;
        }
        let whole = self.whole_rebuild_reason(&sb);
        // Absent at assembly, its checksums were never read: without them a bitmap-only
        // rebuild would serve its clean regions unverified (a silent flip there served,
        // or merged into a partial write and copied to every mirror) and rewrite its
        // checksum sectors from an empty table. Its own table is read back first.
        if whole.is_none() && self.owns_slot(m) && self.integrity && self.csums[m].is_empty() {
            self.start_csum_load(m, sb);
            return;
        }
        self.readd(m, whole);
    }

    fn owns_slot(&self, m: MemberIndex) -> bool {
        self.members[m]
            .role
            .is_some_and(|r| self.slots[r] == Some(m))
    }

    /// Take returning member `m` back: into its slot, resyncing the bitmap's dirty
    /// regions (`whole` None) or rebuilt whole; as a spare if its slot is taken.
    pub(crate) fn readd(&mut self, m: MemberIndex, whole: Option<WholeRebuild>) {
        if self.csums[m].is_empty() {
            // No table read back: a full rebuild writes (and seals) every block.
            self.csums[m] = self.new_csum_table();
        }
        if self.owns_slot(m) {
            let bitmap_only = whole.is_none();
            self.members[m].recovery = Some(Recovery {
                checkpoint: 0,
                bitmap_only,
            });
            self.set_state(m, MemberState::Rebuilding);
            self.rewrite_bitmap();
            self.ppl_forget(m);
            self.io
                .events
                .push_back(Event::ReAdded { member: m, whole });
            self.sync.pending.push_back(SyncOp::Recover {
                member: m,
                bitmap_only,
            });
        } else {
            self.members[m].role = None;
            self.set_state(m, MemberState::Spare);
        }
        // A loaded checksum table stays: nothing was written to it while it was away,
        // and the regions written meanwhile are rewritten (and re-sealed) by the resync.
        self.meta.writer.touch(MetaKey::Superblock);
        self.update_degraded();
        self.pump();
    }

    /// md's sync_speed_min / sync_speed_max, KiB/s per member; takes effect at once.
    pub fn set_sync_rates(&mut self, min_kib_s: u64, max_kib_s: u64) {
        self.sync.pacer.set(min_kib_s, max_kib_s);
    }

    /// Start a scrub: `repair == false` counts mismatches (md's `check`), `true` fixes.
    pub fn start_scrub(&mut self, repair: bool) -> Result<(), ControlError> {
        if self.failed {
            return Err(ControlError::ArrayFailed);
        }
        if self.is_degraded() {
            return Err(ControlError::Degraded);
        }
        if !self.sync.idle() || self.sync.resync_needed {
            return Err(ControlError::Busy);
        }
        self.sync.pending.push_back(if repair {
            SyncOp::Repair
        } else {
            SyncOp::Check
        });
        self.pump();
        Ok(())
    }

    pub(crate) fn sb_barrier(&mut self) -> (MetaKey, u64) {
        (MetaKey::Superblock, self.meta.sb_version())
    }
}
