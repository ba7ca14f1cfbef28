//! Assembly: decide, from each member's superblock (or the error reading it), which
//! members form the array and in what state. A pure function: the caller reads sector
//! 8..16 of every candidate member and hands the bytes in.
//!
//! Rules: members of the chosen array with the highest event count are in sync; an
//! older member within the bitmap's reach (its events ≥ events_cleared) is re-added with
//! a bitmap-only resync, otherwise rebuilt whole; the slot table of the newest
//! superblock decides who holds a slot, so of two members claiming one the newer
//! wins and a member whose slot went to another is refused; anything else — another array's
//! member, no superblock, a corrupt one — is refused by name and never written.

use crate::layout::Level;
use crate::superblock::{SbError, SlotState, Superblock, ROLE_SPARE};
use crate::types::MemberError;

#[derive(Clone, Debug)]
pub struct AssemblyInput {
    /// Operator-facing name (e.g. "e1.3" or a path), used in every message.
    pub name: String,
    pub superblock: Result<Vec<u8>, MemberError>,
    pub size_sectors: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlannedState {
    Active,
    /// Rebuild from `checkpoint` (units); `bitmap_only`: only dirty regions.
    Recovering {
        checkpoint: u64,
        bitmap_only: bool,
    },
    Spare,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedMember {
    pub name: String,
    /// Index into the inputs.
    pub input: usize,
    pub uuid: [u8; 16],
    pub size_sectors: u64,
    pub role: Option<usize>,
    pub state: PlannedState,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub name: String,
    pub reason: String,
}

#[derive(Clone, Debug)]
pub struct AssemblyPlan {
    /// Superblock with the highest event count: the array's truth.
    pub reference: Superblock,
    pub members: Vec<PlannedMember>,
    /// Members left out, never written.
    pub refused: Vec<Refusal>,
    /// Slots with no member.
    pub missing_slots: Vec<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AssemblyError {
    /// No member carries a usable superblock of the wanted array.
    NoArray { refused: Vec<Refusal> },
    /// More slots missing than the level tolerates.
    TooFewMembers {
        missing_slots: Vec<usize>,
        refused: Vec<Refusal>,
    },
    /// Unclean RAID 5 with a slot not in sync (no member, or its member was still
    /// being rebuilt): parity of the stripes written at the crash is unknown (the write
    /// hole), so the member's missing chunks cannot be trusted to reconstruction.
    /// Needs `force`.
    DirtyDegraded {
        /// Every slot without an in-sync member.
        not_in_sync: Vec<usize>,
        /// Those of them with no member at all (the others are rebuilding).
        missing_slots: Vec<usize>,
    },
}

impl std::fmt::Display for AssemblyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |r: &[Refusal]| {
            r.iter()
                .map(|x| format!("{}: {}", x.name, x.reason))
                .collect::<Vec<_>>()
                .join("; ")
        };
        match self {
            AssemblyError::NoArray { refused } => {
                write!(f, "no member of the array found ({})", list(refused))
            }
            AssemblyError::TooFewMembers {
                missing_slots,
                refused,
            } => {
                write!(
                    f,
                    "slots {missing_slots:?} have no usable member ({})",
                    list(refused)
                )
            }
            AssemblyError::DirtyDegraded {
                not_in_sync,
                missing_slots,
            } => write!(
                f,
                "RAID 5 was not shut down cleanly and slots {not_in_sync:?} are not in sync \
                 (missing: {missing_slots:?}; the others were being rebuilt): parity of \
                 interrupted stripes is unknown; assemble with force to accept"
            ),
        }
    }
}

impl std::error::Error for AssemblyError {}

fn hex(u: &[u8; 16]) -> String {
    u.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn assemble(
    inputs: &[AssemblyInput],
    expect_array: Option<[u8; 16]>,
    force: bool,
) -> Result<AssemblyPlan, AssemblyError> {
    let mut refused = Vec::new();
    let mut sbs: Vec<(usize, Superblock)> = Vec::new();
    for (i, inp) in inputs.iter().enumerate() {
        let reason = match &inp.superblock {
            Err(e) => format!("superblock unreadable ({e:?})"),
            Ok(bytes) => match Superblock::decode(bytes) {
                Ok(sb) => {
                    sbs.push((i, sb));
                    continue;
                }
                Err(SbError::Unknown) => {
                    "no aoeraid superblock (blank or foreign disk)".to_string()
                }
                Err(e) => format!("{e}"),
            },
        };
        refused.push(Refusal {
            name: inp.name.clone(),
            reason,
        });
    }
    // Which array: the expected one, else the one with the most members.
    let array = match expect_array {
        Some(u) => u,
        None => {
            let mut best: Option<([u8; 16], usize)> = None;
            for (_, sb) in &sbs {
                let n = sbs
                    .iter()
                    .filter(|(_, o)| o.array_uuid == sb.array_uuid)
                    .count();
                if best.is_none_or(|(_, b)| n > b) {
                    best = Some((sb.array_uuid, n));
                }
            }
            match best {
                Some((u, _)) => u,
                None => return Err(AssemblyError::NoArray { refused }),
            }
        }
    };
    let mut ours = Vec::new();
    for (i, sb) in sbs {
        if sb.array_uuid == array {
            ours.push((i, sb));
        } else {
            refused.push(Refusal {
                name: inputs[i].name.clone(),
                reason: format!(
                    "belongs to another array {} ({})",
                    hex(&sb.array_uuid),
                    sb.name
                ),
            });
        }
    }
    let Some(reference) = ours
        .iter()
        .max_by_key(|(_, sb)| sb.events)
        .map(|(_, sb)| sb.clone())
    else {
        return Err(AssemblyError::NoArray { refused });
    };
    let mut members: Vec<PlannedMember> = Vec::new();
    let mut slot_taken = vec![false; reference.raid_disks as usize];
    // Current members first (highest events), then stale ones.
    ours.sort_by_key(|(_, sb)| std::cmp::Reverse(sb.events));
    for (i, sb) in ours {
        let name = inputs[i].name.clone();
        let geometry_matches = sb.level == reference.level
            && sb.chunk == reference.chunk
            && sb.raid_disks == reference.raid_disks
            && sb.areas.data_offset == reference.areas.data_offset;
        if !geometry_matches {
            refused.push(Refusal {
                name,
                reason: "geometry differs from the array's newest superblock".into(),
            });
            continue;
        }
        if inputs[i].size_sectors < reference.areas.data_offset + reference.data_size {
            refused.push(Refusal {
                name,
                reason: "smaller than the array's data area".into(),
            });
            continue;
        }
        let mut pm = PlannedMember {
            name: name.clone(),
            input: i,
            uuid: sb.member_uuid,
            size_sectors: inputs[i].size_sectors,
            role: None,
            state: PlannedState::Spare,
        };
        // The newest superblock's role table decides the slot: a member that missed
        // the last superblock write (crash mid-update) is still what the table says.
        let Some(slot) = reference
            .slots
            .iter()
            .position(|s| s.member_uuid == sb.member_uuid)
        else {
            if sb.role != ROLE_SPARE {
                // It held a slot once; the newest table gave that slot to another
                // member (a spare or an added blade rebuilt into it). Taking it as a
                // spare would overwrite what it carries: left out, like any stale
                // claimant of a slot.
                refused.push(Refusal {
                    name,
                    reason: format!(
                        "replaced: its slot {} is now another member's (its events {}, \
                         the array's {})",
                        sb.role, sb.events, reference.events
                    ),
                });
                continue;
            }
            members.push(pm);
            continue;
        };
        if slot_taken[slot] {
            refused.push(Refusal {
                name,
                reason: format!("slot {slot} already filled by a newer member"),
            });
            continue;
        }
        pm.role = Some(slot);
        pm.state = match reference.slots[slot].state {
            // Failures are on the survivors' superblocks before any write skips the
            // failed member, so "Active" in the newest table means in sync, whatever
            // this member's own (possibly older) superblock says.
            SlotState::Active => PlannedState::Active,
            SlotState::Rebuilding if sb.recovering => PlannedState::Recovering {
                checkpoint: sb.recovery_unit,
                bitmap_only: sb.recovery_bitmap_only,
            },
            SlotState::Rebuilding => PlannedState::Recovering {
                checkpoint: 0,
                bitmap_only: false,
            },
            SlotState::Faulty | SlotState::Missing => {
                // Stale: the array went on without it. Bitmap reach decides how much
                // to copy.
                let bitmap_only = sb.events >= reference.bitmap_events_cleared
                    && !sb.recovering
                    && sb.role != ROLE_SPARE;
                PlannedState::Recovering {
                    checkpoint: 0,
                    bitmap_only,
                }
            }
        };
        slot_taken[slot] = true;
        members.push(pm);
    }
    let missing_slots: Vec<usize> = (0..slot_taken.len()).filter(|&s| !slot_taken[s]).collect();
    // Redundancy is judged on in-sync members only.
    let not_in_sync: Vec<usize> = (0..slot_taken.len())
        .filter(|&s| {
            !members
                .iter()
                .any(|m| m.role == Some(s) && m.state == PlannedState::Active)
        })
        .collect();
    let redundancy = reference.level.redundancy(reference.raid_disks as usize);
    let too_few = match reference.level {
        Level::Raid10 => {
            // Each copy pair needs one in-sync member.
            let n = reference.raid_disks as usize;
            let geo_units = n as u64;
            (0..geo_units).any(|u| {
                let s0 = (u * 2) as usize % n;
                let s1 = (u * 2 + 1) as usize % n;
                ![s0, s1].iter().any(|&s| {
                    members
                        .iter()
                        .any(|m| m.role == Some(s) && m.state == PlannedState::Active)
                })
            })
        }
        _ => not_in_sync.len() > redundancy,
    };
    if too_few {
        return Err(AssemblyError::TooFewMembers {
            missing_slots,
            refused,
        });
    }
    // With the partial-parity log the replay at start makes every interrupted stripe
    // consistent with what landed, so a dirty degraded array is safe to start — unless
    // parity was never computed (initial resync unfinished).
    let logged = reference.areas.ppl_slots > 0 && !reference.initial_sync;
    if reference.level.parity() > 0
        && !reference.clean
        && !not_in_sync.is_empty()
        && !force
        && !logged
    {
        return Err(AssemblyError::DirtyDegraded {
            not_in_sync,
            missing_slots,
        });
    }
    Ok(AssemblyPlan {
        reference,
        members,
        refused,
        missing_slots,
    })
}

#[cfg(test)]
mod tests;
