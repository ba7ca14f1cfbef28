//! A status snapshot of the seed's appliance in the middle of a rebuild,
//! shared by the control-plane tests: RAID 10 `data` over e0.0–e0.3 and
//! e1.0–e1.3, e1.1 failed and replaced by spare e0.4, volume `gfs` on e7.0.

#![allow(dead_code)]

use aoeraid_appliance::control::status::*;

pub(crate) fn member(blade: &str, index: Option<u32>, state: MemberState) -> MemberStatus {
    MemberStatus {
        blade: blade.to_string(),
        role: match (index, state) {
            (Some(_), _) => MemberRole::Data,
            (None, MemberState::Spare) => MemberRole::Spare,
            (None, _) => MemberRole::None,
        },
        index,
        state,
        read_bytes: 1 << 20,
        write_bytes: 2 << 20,
        errors: 0,
        origin: None,
    }
}

pub(crate) fn rebuilding() -> Status {
    let mut members = Vec::new();
    for (i, b) in [
        "e0.0", "e1.0", "e0.1", "e0.4", "e0.2", "e1.2", "e0.3", "e1.3",
    ]
    .iter()
    .enumerate()
    {
        let state = if *b == "e0.4" {
            MemberState::Rebuilding
        } else {
            MemberState::Active
        };
        members.push(member(b, Some(i as u32), state));
    }
    members.push(member("e1.1", None, MemberState::Faulty));
    Status {
        appliance: "rb1".into(),
        version: "0.1.0".into(),
        uptime_seconds: 3725.0,
        arrays: vec![ArrayStatus {
            name: "data".into(),
            level: "raid10".into(),
            state: raid_engine::ArrayState::Rebuilding.into(),
            size_bytes: 4 << 30,
            chunk_bytes: 256 << 10,
            members_required: 8,
            members,
            rebuild: SyncProgress {
                action: SyncAction::Rebuild,
                done_ratio: 0.25,
                done_bytes: 256 << 20,
                total_bytes: 1 << 30,
                rate_bytes_per_second: (64 << 20) as f64,
                eta_seconds: Some(12.0),
            },
            rebuild_min_bytes_per_second: 10_000_000,
            rebuild_max_bytes_per_second: 200_000_000,
            spare_group: Some("shelfspares".into()),
            spares_available: 1,
            counters: ArrayCounters {
                rebuilt_bytes: 256 << 20,
                resynced_bytes: 0,
                scrubbed_bytes: 3 << 20,
                checked_bytes: 1 << 20,
                repaired_bytes: 2 << 20,
                mismatch_bytes: 1024,
                corrected_errors: 1,
                checksum_repairs: 3,
                ppl_bytes: 0,
                ppl_replayed_stripes: 0,
                ppl_refused_entries: 0,
                ppl_stale_entries: 0,
            },
            uuid: "6f1c2a9e-0b7d-4e55-9a13-2c4b8d7e6f01".into(),
            events: 42,
            clean_on_disk: false,
            bitmap_dirty_regions: 5,
            consistency_policy: None,
        }],
        volumes: vec![VolumeStatus {
            name: "gfs".into(),
            shelf: 7,
            slot: 0,
            sectors: (4u64 << 30) / 512,
            arrays: vec!["data".into()],
            read_only: false,
            allow: vec![],
            exported: true,
            read_bytes: 10 << 20,
            write_bytes: 20 << 20,
            reserved: vec!["52:54:00:00:00:01".into(), "52:54:00:00:00:02".into()],
            fenced_commands: 6,
            reserve_refused: 1,
            reservation_lost: false,
        }],
        blades: ["e0.0", "e1.0", "e0.1", "e1.1", "e0.4"]
            .iter()
            .map(|b| BladeStatus {
                blade: b.to_string(),
                state: if *b == "e1.1" {
                    BladeState::Down
                } else {
                    BladeState::Up
                },
                rtt_seconds: 0.00021,
                retransmits: 4,
                timeouts: if *b == "e1.1" { 3 } else { 0 },
                outstanding: 2,
                window: 16,
                mac: Some("52:54:00:00:00:01".into()),
                interface: Some("eth1".into()),
                refused: None,
                reservation: Some(Reservation::Held),
                reserved_by: vec![],
            })
            .collect(),
        spare_groups: vec![SpareGroupStatus {
            name: "shelfspares".into(),
            available: vec!["e1.4".into()],
            missing: vec![],
            origins: vec!["config".into()],
        }],
        interfaces: vec![
            InterfaceStatus {
                name: "eth1".into(),
                side: Side::Backend,
                mtu: 9000,
                rx_frames: 1000,
                tx_frames: 1100,
                dropped_kernel: 5,
                dropped_malformed: 1,
            },
            InterfaceStatus {
                name: "eth2".into(),
                side: Side::Frontend,
                mtu: 9000,
                rx_frames: 500,
                tx_frames: 400,
                dropped_kernel: 0,
                dropped_malformed: 2,
            },
        ],
        frontend: FrontendCounters {
            frames: 900,
            malformed: 2,
            client_queue_full: 7,
            ..FrontendCounters::default()
        },
        reservation_refused: 0,
        warnings: Vec::new(),
    }
}

/// The same appliance with `data` as a RAID 6 under the partial-parity log, after an
/// unclean start whose replay found entries of every kind.
pub(crate) fn logged() -> Status {
    let mut s = rebuilding();
    let a = &mut s.arrays[0];
    a.level = "raid6".into();
    a.consistency_policy = Some("ppl".into());
    a.counters.ppl_bytes = 8 << 20;
    a.counters.ppl_replayed_stripes = 2;
    a.counters.ppl_refused_entries = 1;
    a.counters.ppl_stale_entries = 5;
    s
}
