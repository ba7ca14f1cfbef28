use super::*;
use proptest::prelude::*;

fn geos() -> Vec<Geometry> {
    let mut v = Vec::new();
    for &(level, counts) in &[
        (Level::Raid0, &[1usize, 2, 3, 4, 5][..]),
        (Level::Raid1, &[2, 3][..]),
        (Level::Raid10, &[2, 3, 4, 5, 6][..]),
        (Level::Raid5, &[3, 4, 5, 6][..]),
        (Level::Raid6, &[4, 5, 6, 7][..]),
    ] {
        for &n in counts {
            for &chunk in &[8u32, 16, 128] {
                v.push(Geometry::new(level, n, chunk, chunk as u64 * 7 + 3).unwrap());
            }
        }
    }
    v
}

/// Every chunk boundary (and the sectors either side) round-trips volume → member → volume.
#[test]
fn round_trip_every_chunk_boundary() {
    for g in geos() {
        let c = g.chunk_u64();
        let total = g.volume_sectors();
        let mut b = 0;
        while b < total {
            for v in [b, b + 1, b + c - 1] {
                if v >= total {
                    continue;
                }
                let (m, ms) = g.map(v);
                assert!(ms < g.member_used_sectors(), "{g:?} v={v}");
                assert_eq!(g.unmap(m, ms), Some(v), "{g:?} v={v} -> m{m}:{ms}");
            }
            b += c;
        }
    }
}

/// Every member data sector is either parity or maps to exactly one volume sector per copy.
#[test]
fn member_space_is_covered_exactly() {
    for g in geos() {
        let mut hits = vec![0u32; g.volume_sectors() as usize];
        let mut parity = 0u64;
        for m in 0..g.members {
            for s in 0..g.member_used_sectors() {
                match g.unmap(m, s) {
                    Some(v) => {
                        hits[v as usize] += 1;
                        let (u, _) = g.unit_of(v);
                        assert!(g.unit_row_on(u, m).is_some(), "{g:?}");
                    }
                    None => parity += 1,
                }
            }
        }
        let copies = match g.level {
            Level::Raid0 | Level::Raid5 | Level::Raid6 => 1,
            Level::Raid1 => g.members as u32,
            Level::Raid10 => 2,
        };
        assert!(hits.iter().all(|&h| h == copies), "{g:?}");
        let expect_parity = match g.level {
            Level::Raid5 => g.member_used_sectors(),
            Level::Raid6 => 2 * g.member_used_sectors(),
            Level::Raid10 => (g.rows * g.members as u64 % 2) * g.chunk_u64(),
            _ => 0,
        };
        assert_eq!(parity, expect_parity, "{g:?}");
    }
}

#[test]
fn raid5_left_symmetric_matches_md() {
    // md, 4 disks: stripe 0 parity on disk 3 and D0 on disk 0; stripe 1 parity on disk 2,
    // D0 on disk 3; stripe 2 parity on disk 1, D0 on disk 2.
    let g = Geometry::new(Level::Raid5, 4, 8, 80).unwrap();
    assert_eq!(g.column_slot(0, 3), 3);
    assert_eq!(g.column_slot(0, 0), 0);
    assert_eq!(g.column_slot(1, 3), 2);
    assert_eq!(g.column_slot(1, 0), 3);
    assert_eq!(g.column_slot(1, 2), 1);
    assert_eq!(g.column_slot(2, 3), 1);
    assert_eq!(g.column_slot(2, 0), 2);
    assert_eq!(g.column_slot(4, 3), 3);
}

#[test]
fn raid6_left_symmetric_matches_md() {
    // md raid6 ALGORITHM_LEFT_SYMMETRIC, 5 disks: pd = 4 - stripe % 5, qd = pd + 1,
    // data from qd + 1. Stripe 0: P 4, Q 0, D0 1; stripe 1: P 3, Q 4, D0 0, D2 2.
    let g = Geometry::new(Level::Raid6, 5, 8, 80).unwrap();
    assert_eq!((g.column_slot(0, 3), g.column_slot(0, 4)), (4, 0));
    assert_eq!(g.column_slot(0, 0), 1);
    assert_eq!((g.column_slot(1, 3), g.column_slot(1, 4)), (3, 4));
    assert_eq!(g.column_slot(1, 0), 0);
    assert_eq!(g.column_slot(1, 2), 2);
    for row in 0..10 {
        let mut slots: Vec<usize> = (0..5).map(|c| g.column_slot(row, c)).collect();
        slots.sort();
        assert_eq!(slots, vec![0, 1, 2, 3, 4]);
    }
}

#[test]
fn raid10_near_copies_on_different_members() {
    for n in 2..8 {
        for u in 0..50 {
            let c = raid10::copies(n, u);
            assert_ne!(c[0].0, c[1].0);
        }
    }
}

#[test]
fn split_covers_range() {
    let g = Geometry::new(Level::Raid5, 4, 16, 1000).unwrap();
    let p = g.split(40, 100);
    assert_eq!(p.iter().map(|x| x.2).sum::<u64>(), 100);
    assert_eq!(p[0], (0, 40, 8));
    assert_eq!(p[1], (1, 0, 48));
}

#[test]
fn bad_geometry_rejected() {
    assert!(Geometry::new(Level::Raid5, 2, 16, 1000).is_err());
    assert!(Geometry::new(Level::Raid6, 3, 16, 1000).is_err());
    assert!(Geometry::new(Level::Raid0, 2, 12, 1000).is_err());
    assert!(Geometry::new(Level::Raid0, 2, 16, 8).is_err());
}

proptest! {
    #[test]
    fn prop_round_trip(level in 0usize..5, n in 1usize..9, chunk_pow in 3u32..11, rows in 1u64..40, v in any::<u64>()) {
        let level = [Level::Raid0, Level::Raid1, Level::Raid10, Level::Raid5, Level::Raid6][level];
        let n = n.max(level.min_members());
        let chunk = 1u32 << chunk_pow;
        let g = Geometry::new(level, n, chunk, rows * chunk as u64 + 1);
        prop_assume!(g.is_ok());
        let g = g.unwrap();
        let v = v % g.volume_sectors();
        let (m, ms) = g.map(v);
        prop_assert_eq!(g.unmap(m, ms), Some(v));
        let (u, off) = g.unit_of(v);
        prop_assert!(off < g.unit_sectors());
        if level.parity() == 0 {
            for (cm, row) in g.copies(u) {
                prop_assert_eq!(g.unmap(cm, row * g.chunk_u64() + off), Some(v));
            }
        }
    }

    #[test]
    fn prop_split(off in 0u64..10_000, len in 1u64..5_000) {
        let g = Geometry::new(Level::Raid5, 5, 32, 100_000).unwrap();
        let parts = g.split(off, len);
        let mut pos = off;
        for (u, o, n) in parts {
            prop_assert_eq!(u * g.unit_sectors() + o, pos);
            prop_assert!(o + n <= g.unit_sectors());
            pos += n;
        }
        prop_assert_eq!(pos, off + len);
    }
}
