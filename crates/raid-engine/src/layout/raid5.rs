//! RAID 5 left-symmetric (md's ALGORITHM_LEFT_SYMMETRIC): parity walks backwards from the
//! last member, data starts right after parity and wraps, so sequential data chunks visit
//! every member in turn.

use crate::types::MemberIndex;

/// Parity member of stripe `row`.
pub(crate) fn parity_member(members: usize, row: u64) -> MemberIndex {
    let n = members as u64;
    ((n - 1) - row % n) as usize
}

/// Member holding data column `col` (0-based) of stripe `row`.
pub(crate) fn raid5_data_member(members: usize, row: u64, col: usize) -> MemberIndex {
    (parity_member(members, row) + 1 + col) % members
}

/// Data column of `member` in `row`, None if it holds the parity.
pub(super) fn column_of(members: usize, row: u64, member: MemberIndex) -> Option<usize> {
    let p = parity_member(members, row);
    if member == p {
        None
    } else {
        Some((member + members - p - 1) % members)
    }
}

/// ((member, row), offset in chunk) of a unit offset.
pub(super) fn data_location(
    members: usize,
    chunk: u64,
    unit: u64,
    off: u64,
) -> ((MemberIndex, u64), u64) {
    let col = (off / chunk) as usize;
    ((raid5_data_member(members, unit, col), unit), off % chunk)
}
