//! md's RAID 10 "near 2" layout: chunk k's two copies occupy consecutive device slots
//! `2k` and `2k + 1`, counted row-major over the members (works for odd member counts).

use crate::types::MemberIndex;

pub(super) fn copies(members: usize, unit: u64) -> [(MemberIndex, u64); 2] {
    let n = members as u64;
    let s0 = unit * 2;
    let s1 = s0 + 1;
    [((s0 % n) as usize, s0 / n), ((s1 % n) as usize, s1 / n)]
}
