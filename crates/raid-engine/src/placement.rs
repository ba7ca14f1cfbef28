//! Placement check: one shelf's loss (its power supply, its uplink) must not take more
//! members than the level survives. Mirrors: two copies of the same data must not sit
//! on one shelf. Parity levels: a shelf may hold at most as many members as there are
//! parity columns (RAID 5 one, RAID 6 two), since every member holds part of every
//! stripe and losing more than that loses data.

use crate::layout::{Geometry, Level};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacementError {
    pub level: Level,
    /// The members on `shelf` (in slot order) that one shelf loss would take together.
    pub members: Vec<usize>,
    pub shelf: u32,
}

impl std::fmt::Display for PlacementError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = match self.members.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!(
                "{} and {last}",
                rest.iter()
                    .map(|m| m.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => format!("{:?}", self.members),
        };
        let shelf = self.shelf;
        match self.level.parity() {
            0 => write!(
                f,
                "members {list} hold copies of the same data and are both on shelf {shelf}"
            )?,
            p => write!(
                f,
                "members {list} are all on shelf {shelf}: losing that shelf takes {} members \
                 at once, and RAID {} survives the loss of only {p}",
                self.members.len(),
                self.level.code()
            )?,
        }
        f.write_str("; move one or force the creation")
    }
}

impl std::error::Error for PlacementError {}

/// `shelves[i]` is the shelf of member i. Returns the first offending group unless forced.
pub(crate) fn check_placement(
    geo: &Geometry,
    shelves: &[u32],
    force: bool,
) -> Result<(), PlacementError> {
    if force {
        return Ok(());
    }
    let level = geo.level;
    if level.parity() > 0 {
        // First shelf (by its lowest member) holding more members than the parity covers.
        for (i, &s) in shelves.iter().enumerate() {
            let on: Vec<usize> = (0..shelves.len()).filter(|&j| shelves[j] == s).collect();
            if on[0] == i && on.len() > level.parity() {
                return Err(PlacementError {
                    level,
                    members: on[..=level.parity()].to_vec(),
                    shelf: s,
                });
            }
        }
        return Ok(());
    }
    let pairs: Vec<(usize, usize)> = match level {
        Level::Raid1 => (0..geo.members)
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
        _ => Vec::new(),
    };
    for (a, b) in pairs {
        if let (Some(&sa), Some(&sb)) = (shelves.get(a), shelves.get(b)) {
            if sa == sb {
                return Err(PlacementError {
                    level,
                    members: vec![a, b],
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
        assert_eq!((e.members.clone(), e.shelf), (vec![0, 1], 0));
        assert!(e.to_string().contains("members 0 and 1 hold copies"));
        assert!(check_placement(&g, &[0, 0, 1, 2], true).is_ok());
    }

    #[test]
    fn raid1_and_raid0() {
        let g1 = Geometry::new(Level::Raid1, 3, 128, 10_000).unwrap();
        assert_eq!(
            check_placement(&g1, &[4, 5, 4], false).unwrap_err().members,
            vec![0, 2]
        );
        let g0 = Geometry::new(Level::Raid0, 2, 128, 10_000).unwrap();
        assert!(check_placement(&g0, &[1, 1], false).is_ok());
    }

    #[test]
    fn raid5_refuses_two_on_a_shelf_and_says_why() {
        let g = Geometry::new(Level::Raid5, 4, 128, 10_000).unwrap();
        assert!(check_placement(&g, &[0, 1, 2, 3], false).is_ok());
        let e = check_placement(&g, &[0, 1, 2, 1], false).unwrap_err();
        assert_eq!((e.members.clone(), e.shelf), (vec![1, 3], 1));
        let msg = e.to_string();
        assert!(!msg.contains("copies"), "{msg}");
        assert!(
            msg.contains("members 1 and 3 are all on shelf 1: losing that shelf takes 2 members"),
            "{msg}"
        );
        assert!(msg.contains("RAID 5 survives the loss of only 1"), "{msg}");
    }

    #[test]
    fn raid6_allows_two_per_shelf_refuses_three() {
        let g = Geometry::new(Level::Raid6, 6, 128, 10_000).unwrap();
        // Three shelves of two: any one shelf's loss takes two members — survived.
        assert!(check_placement(&g, &[0, 0, 1, 1, 2, 2], false).is_ok());
        let e = check_placement(&g, &[0, 1, 0, 2, 0, 1], false).unwrap_err();
        assert_eq!((e.members.clone(), e.shelf), (vec![0, 2, 4], 0));
        let msg = e.to_string();
        assert!(
            msg.contains("members 0, 2 and 4 are all on shelf 0: losing that shelf takes 3"),
            "{msg}"
        );
        assert!(msg.contains("RAID 6 survives the loss of only 2"), "{msg}");
        assert!(check_placement(&g, &[0, 1, 0, 2, 0, 1], true).is_ok());
    }
}
