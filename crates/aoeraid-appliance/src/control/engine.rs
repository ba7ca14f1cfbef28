//! From the RAID engine's status snapshot to the status schema. The engine
//! names members by index and counts in sectors and KiB/s; the schema uses
//! member addresses, bytes and bytes per second.

use super::status::{
    ArrayCounters, ArrayStatus, BladeState, BladeStatus, MemberRole, MemberStatus, SyncAction,
    SyncProgress,
};
use raid_engine::Status as EngineStatus;

const SECTOR: u64 = 512;

/// What the appliance knows about an array that its engine does not.
pub struct ArrayContext<'a> {
    /// Address of member index i (`e0.1`, `file:/path`).
    pub member_names: &'a [String],
    pub spare_group: Option<String>,
    /// Spares this array could take now (dedicated + its group's).
    pub spares_available: u32,
}

fn action(kind: raid_engine::SyncKind) -> SyncAction {
    match kind {
        raid_engine::SyncKind::Rebuild => SyncAction::Rebuild,
        raid_engine::SyncKind::Resync => SyncAction::Resync,
        raid_engine::SyncKind::Check => SyncAction::Check,
        raid_engine::SyncKind::Repair => SyncAction::Repair,
        raid_engine::SyncKind::Seal => SyncAction::Seal,
    }
}

/// A member with a slot holds data; one without is a spare only while it is a
/// usable spare: a failed or missing member that lost its slot has no role (mdadm
/// shows such a device as faulty, never as a spare).
fn member_role(slot: Option<usize>, state: raid_engine::MemberState) -> MemberRole {
    match (slot, state) {
        (Some(_), _) => MemberRole::Data,
        (None, raid_engine::MemberState::Spare) => MemberRole::Spare,
        (None, _) => MemberRole::None,
    }
}

/// Builds the schema's view of one array.
pub fn array_status(s: &EngineStatus, ctx: &ArrayContext<'_>) -> ArrayStatus {
    let synced = s.counters.sync_bytes;
    let members = s
        .members
        .iter()
        .map(|m| MemberStatus {
            blade: ctx
                .member_names
                .get(m.index)
                .cloned()
                .unwrap_or_else(|| format!("member{}", m.index)),
            role: member_role(m.role, m.state),
            index: m.role.map(|r| r as u32),
            state: m.state,
            read_bytes: 0,
            write_bytes: 0,
            errors: 0,
            origin: None,
        })
        .collect();
    let rebuild = match &s.sync {
        None => SyncProgress::default(),
        Some(p) => SyncProgress {
            action: action(p.kind),
            done_ratio: p.fraction.clamp(0.0, 1.0),
            done_bytes: p.done_sectors * SECTOR,
            total_bytes: p.total_sectors * SECTOR,
            rate_bytes_per_second: (p.rate_kib_s * 1024) as f64,
            eta_seconds: p.eta_ns.map(|ns| ns as f64 / 1e9),
        },
    };
    ArrayStatus {
        name: s.name.clone(),
        level: s.level.name().to_string(),
        state: s.state.into(),
        size_bytes: s.volume_sectors * SECTOR,
        chunk_bytes: u64::from(s.chunk_sectors) * SECTOR,
        members_required: s.raid_disks as u32,
        members,
        rebuild,
        rebuild_min_bytes_per_second: s.sync_min_kib_s * 1024,
        rebuild_max_bytes_per_second: s.sync_max_kib_s * 1024,
        spare_group: ctx.spare_group.clone(),
        spares_available: ctx.spares_available,
        counters: ArrayCounters {
            rebuilt_bytes: synced.rebuild,
            resynced_bytes: synced.resync,
            scrubbed_bytes: synced.check + synced.repair,
            checked_bytes: synced.check,
            repaired_bytes: synced.repair,
            mismatch_bytes: s.counters.mismatch_sectors * SECTOR,
            corrected_errors: s.counters.corrected_read_errors,
            checksum_repairs: s.counters.checksum_repairs,
            ppl_bytes: s.counters.ppl_sectors * SECTOR,
            ppl_replayed_stripes: s.counters.ppl_replayed,
            ppl_refused_entries: s.counters.ppl_refused,
            ppl_stale_entries: s.counters.ppl_stale,
        },
        uuid: uuid_string(&s.array_uuid),
        events: s.events,
        clean_on_disk: s.clean_on_disk,
        bitmap_dirty_regions: s.bitmap_dirty_regions,
        consistency_policy: (s.level.parity() > 0)
            .then(|| if s.ppl { "ppl" } else { "resync" }.to_string()),
    }
}

/// The form mdadm and `aoeraid examine` print: 8-4-4-4-12 hex digits.
pub(crate) fn uuid_string(u: &[u8; 16]) -> String {
    let h: String = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Every blade the initiator pool knows, as the schema shows them.
pub fn blade_statuses(pool: &aoe_initiator::Pool) -> Vec<BladeStatus> {
    let ifaces = pool.interfaces();
    let mut out: Vec<BladeStatus> = pool
        .blade_ids()
        .filter_map(|id| pool.blade_info(id))
        .map(|b| {
            let path = b.paths.first();
            BladeStatus {
                blade: format!("e{}.{}", b.shelf, b.slot),
                state: match b.state {
                    aoe_initiator::BladeState::Up => BladeState::Up,
                    // Answered Query Config, IDENTIFY still outstanding.
                    aoe_initiator::BladeState::Identifying => BladeState::Slow,
                    aoe_initiator::BladeState::Down => BladeState::Down,
                },
                rtt_seconds: b.stats.srtt_us as f64 / 1e6,
                retransmits: b.stats.retransmits,
                timeouts: b.stats.timeouts,
                outstanding: b.stats.in_flight,
                window: b.stats.window,
                mac: path.map(|p| p.mac.to_string()),
                interface: path
                    .and_then(|p| ifaces.get(p.iface))
                    .map(|i| i.name.clone()),
                refused: None,
                reservation: None,
                reserved_by: Vec::new(),
            }
        })
        .collect();
    out.sort_by_key(|b| b.blade.parse::<aoe_wire::AoeAddr>().ok());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn announcement(shelf: u16, slot: u8, src: aoe_wire::Mac) -> Vec<u8> {
        let h = aoe_wire::Header {
            dst: aoe_wire::Mac::BROADCAST,
            src,
            version: 1,
            response: true,
            error: None,
            shelf,
            slot,
            command: aoe_wire::Command::QueryConfig,
            tag: 0,
        };
        let qc = aoe_wire::QueryConfig {
            buffer_count: 16,
            firmware: 0x4019,
            sector_count: 2,
            version: 1,
            ccmd: aoe_wire::CCmd::Read,
            config: b"",
        };
        let mut out = vec![0u8; 1200];
        let n = qc.emit(&h, &mut out).unwrap();
        out.truncate(n);
        out
    }

    #[test]
    fn a_failed_member_without_a_slot_is_no_spare() {
        use raid_engine::MemberState as S;
        assert_eq!(member_role(Some(2), S::Faulty), MemberRole::Data);
        assert_eq!(member_role(Some(0), S::Active), MemberRole::Data);
        assert_eq!(member_role(None, S::Spare), MemberRole::Spare);
        assert_eq!(member_role(None, S::Faulty), MemberRole::None);
        assert_eq!(member_role(None, S::Missing), MemberRole::None);
    }

    #[test]
    fn pool_blades_become_schema_blades() {
        let mut pool = aoe_initiator::Pool::new(aoe_initiator::PoolConfig::default());
        pool.add_interface("eth1", aoe_wire::Mac([2, 0, 0, 0, 0, 1]), 9000);
        let now = std::time::Instant::now();
        let blade_mac = aoe_wire::Mac([2, 0, 0, 0, 1, 9]);
        pool.handle_frame(now, 0, &announcement(1, 3, blade_mac));
        pool.handle_frame(now, 0, &announcement(0, 4, blade_mac));
        let b = blade_statuses(&pool);
        let names: Vec<&str> = b.iter().map(|b| b.blade.as_str()).collect();
        assert_eq!(names, ["e0.4", "e1.3"]);
        // Announced but not yet identified.
        assert_eq!(b[0].state, BladeState::Slow);
        assert_eq!(b[0].interface.as_deref(), Some("eth1"));
        assert_eq!(b[0].mac.as_deref(), Some("02:00:00:00:01:09"));
    }
}
