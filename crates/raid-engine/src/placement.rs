//! Placement check: two copies of the same data must not sit on the same shelf, or one
//! shelf's power supply takes both halves of a mirror with it.

use crate::layout::{Geometry, Level};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacementError {
    pub member_a: usize,
    pub member_b: usize,
    pub shelf: u32,
}

impl std::fmt::Display for PlacementError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "members {} and {} hold copies of the same data and are both on shelf {}; \
             move one or force the creation",
            self.member_a, self.member_b, self.shelf
        )
    }
}

impl std::error::Error for PlacementError {}

/// `shelves[i]` is the shelf of member i. Returns the first offending pair unless forced.
/// RAID 5 counts too: two members on one shelf means one shelf loss kills the array.
pub(crate) fn check_placement(
    geo: &Geometry,
    shelves: &[u32],
    force: bool,
) -> Result<(), PlacementError> {
    if force {
        return Ok(());
    }
    let pairs: Vec<(usize, usize)> = match geo.level {
        Level::Raid0 => Vec::new(),
        Level::Raid1 | Level::Raid5 => (0..geo.members)
            .flat_map(|a| (a + 1..geo.members).map(move |b| (a, b)))
            .collect(),
        Level::Raid10 => {
            // The copy pairs repeat with period `members` units.
            let mut v: Vec<(usize, usize)> = (0..geo.members as u64)
                .map(|u| {
                    let c = geo.copies(u);
                    (c[0].0.min(c[1].0), c[0].0.max(c[1].0))
                })
                .collect();
            v.sort();
            v.dedup();
            v
        }
    };
    for (a, b) in pairs {
        if let (Some(&sa), Some(&sb)) = (shelves.get(a), shelves.get(b)) {
            if sa == sb {
                return Err(PlacementError {
                    member_a: a,
                    member_b: b,
                    shelf: sa,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raid10_same_shelf_pair_named() {
        let g = Geometry::new(Level::Raid10, 4, 128, 10_000).unwrap();
        // copies are (0,1) and (2,3): shelves alternate → fine.
        assert!(check_placement(&g, &[0, 1, 0, 1], false).is_ok());
        let e = check_placement(&g, &[0, 0, 1, 2], false).unwrap_err();
        assert_eq!((e.member_a, e.member_b, e.shelf), (0, 1, 0));
        assert!(e.to_string().contains("members 0 and 1"));
        assert!(check_placement(&g, &[0, 0, 1, 2], true).is_ok());
    }

    #[test]
    fn raid1_and_raid0() {
        let g1 = Geometry::new(Level::Raid1, 3, 128, 10_000).unwrap();
        assert_eq!(
            check_placement(&g1, &[4, 5, 4], false)
                .unwrap_err()
                .member_b,
            2
        );
        let g0 = Geometry::new(Level::Raid0, 2, 128, 10_000).unwrap();
        assert!(check_placement(&g0, &[1, 1], false).is_ok());
    }
}
