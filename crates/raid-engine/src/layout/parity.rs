//! RAID 5 and RAID 6 left-symmetric, as md lays them out (ALGORITHM_LEFT_SYMMETRIC):
//! P walks backwards from the last member (`n-1 - row mod n`), Q (RAID 6) sits right
//! after P, and data starts right after the last parity and wraps, so sequential data
//! chunks visit every member in turn.
//!
//! A stripe's *logical columns* are its data columns `0..k`, then P (`k`), then Q
//! (`k + 1`); `slot_of_column` maps them to slots.

/// Slot of logical column `col` (data `0..k`, P = `k`, Q = `k + 1`) in stripe `row`
/// of `members` slots with `parity` parity columns.
pub(crate) fn slot_of_column(members: usize, parity: usize, row: u64, col: usize) -> usize {
    let n = members as u64;
    let p = ((n - 1) - row % n) as usize;
    let k = members - parity;
    if col >= k {
        (p + col - k) % members
    } else {
        (p + parity + col) % members
    }
}

/// Logical column of `slot` in stripe `row`.
pub(super) fn column_of_slot(members: usize, parity: usize, row: u64, slot: usize) -> usize {
    let n = members as u64;
    let p = ((n - 1) - row % n) as usize;
    let k = members - parity;
    let d = (slot + members - p) % members;
    if d < parity {
        k + d
    } else {
        d - parity
    }
}
