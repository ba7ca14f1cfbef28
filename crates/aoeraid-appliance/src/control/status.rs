//! The status snapshot: what `aoeraid status --json` prints, what the
//! control socket returns, and what the metrics are refreshed from. The
//! daemon builds one from the RAID engine's, initiator pool's and target's
//! snapshots; field names are a public interface for scripts, so they change
//! only by addition.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub appliance: String,
    pub version: String,
    #[serde(default)]
    pub uptime_seconds: f64,
    #[serde(default)]
    pub arrays: Vec<ArrayStatus>,
    #[serde(default)]
    pub volumes: Vec<VolumeStatus>,
    #[serde(default)]
    pub blades: Vec<BladeStatus>,
    #[serde(default)]
    pub spare_groups: Vec<SpareGroupStatus>,
    #[serde(default)]
    pub interfaces: Vec<InterfaceStatus>,
    #[serde(default)]
    pub frontend: FrontendCounters,
    /// Member I/Os and reserve Sets refused because another station holds a
    /// blade's AoE reserve list (cumulative since start).
    #[serde(default)]
    pub reservation_refused: u64,
    /// What the operator should look at: arrays whose slots are held by blades
    /// appliance.yaml does not list for them, with the line to write.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// What the front end's target did with the frames it was handed, over all
/// front-end interfaces (cumulative since start).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrontendCounters {
    pub frames: u64,
    pub malformed: u64,
    /// Requests for a shelf.slot we do not export there, or from a masked MAC.
    pub not_for_us: u64,
    /// Requests dropped because their client already had Buffer Count queued.
    pub client_queue_full: u64,
    /// Requests dropped because every request or client slot was busy.
    pub target_queue_full: u64,
    /// Replies, control frames and reads that waited for a free send slot (queued, not dropped).
    pub no_send_slot: u64,
    pub send_errors: u64,
    /// Client FLUSH CACHE commands passed on to the members.
    pub flushes: u64,
    pub reservation_conflicts: u64,
}

/// An array's state in the status: its engine's, or `Inactive` for an array declared in
/// the config but not assembled (members absent, refused), which has no engine. Either
/// is its `as_str` name in the JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArrayState {
    Inactive,
    #[serde(untagged)]
    Assembled(raid_engine::ArrayState),
}

impl ArrayState {
    /// The engine's states in their order, then `Inactive`.
    pub const ALL: [ArrayState; 6] = {
        let engine = raid_engine::ArrayState::ALL;
        let mut all = [ArrayState::Inactive; 6];
        let mut i = 0;
        while i < engine.len() {
            all[i] = ArrayState::Assembled(engine[i]);
            i += 1;
        }
        all
    };

    pub fn as_str(self) -> &'static str {
        match self {
            ArrayState::Assembled(s) => s.as_str(),
            ArrayState::Inactive => "inactive",
        }
    }
}

impl From<raid_engine::ArrayState> for ArrayState {
    fn from(s: raid_engine::ArrayState) -> ArrayState {
        ArrayState::Assembled(s)
    }
}

impl PartialEq<raid_engine::ArrayState> for ArrayState {
    fn eq(&self, other: &raid_engine::ArrayState) -> bool {
        *self == ArrayState::Assembled(*other)
    }
}

pub use raid_engine::MemberState;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberRole {
    /// Holds data (or parity) at position `index` of the layout.
    Data,
    Spare,
    /// Neither: a faulty or missing member that no longer holds a slot.
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberStatus {
    /// Member address as written in the config: `e0.1` or `file:/path`.
    pub blade: String,
    pub role: MemberRole,
    /// Position in the layout for data members.
    #[serde(default)]
    pub index: Option<u32>,
    pub state: MemberState,
    #[serde(default)]
    pub read_bytes: u64,
    #[serde(default)]
    pub write_bytes: u64,
    #[serde(default)]
    pub errors: u64,
    /// Where the appliance got it: `config` (the array's line in
    /// appliance.yaml), `spare-group`, `superblock` (found by its superblock at
    /// start, listed nowhere) or `added` (at run time, listed nowhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

/// What the array's background sync is doing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncAction {
    #[default]
    Idle,
    /// Copying onto a replacement member.
    Rebuild,
    /// Bringing mirrors/parity back in step after a crash or re-add.
    Resync,
    /// Reading everything and counting mismatches.
    Check,
    /// Reading everything and fixing mismatches.
    Repair,
    /// Computing checksums for blocks not written since the array was created
    /// (integrity on; their reads are not verified until then).
    Seal,
}

impl SyncAction {
    pub const ACTIVE: [SyncAction; 5] = [
        SyncAction::Rebuild,
        SyncAction::Resync,
        SyncAction::Check,
        SyncAction::Repair,
        SyncAction::Seal,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            SyncAction::Idle => "idle",
            SyncAction::Rebuild => "rebuild",
            SyncAction::Resync => "resync",
            SyncAction::Check => "check",
            SyncAction::Repair => "repair",
            SyncAction::Seal => "seal",
        }
    }
}

/// Progress of the current rebuild / resync / scrub (`action` says which).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SyncProgress {
    pub action: SyncAction,
    /// 0..=1; 1 when idle.
    pub done_ratio: f64,
    pub done_bytes: u64,
    pub total_bytes: u64,
    #[serde(default)]
    pub rate_bytes_per_second: f64,
    /// None when idle or when the rate is still 0.
    #[serde(default)]
    pub eta_seconds: Option<f64>,
}

impl Default for SyncProgress {
    fn default() -> Self {
        SyncProgress {
            action: SyncAction::Idle,
            done_ratio: 1.0,
            done_bytes: 0,
            total_bytes: 0,
            rate_bytes_per_second: 0.0,
            eta_seconds: None,
        }
    }
}

/// Monotonic per-array counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArrayCounters {
    pub rebuilt_bytes: u64,
    pub resynced_bytes: u64,
    /// Bytes scrubbed, check and repair together (`checked_bytes + repaired_bytes`).
    pub scrubbed_bytes: u64,
    /// Bytes scrubbed by `check` (count mismatches only).
    #[serde(default)]
    pub checked_bytes: u64,
    /// Bytes scrubbed by `repair` (mismatches rewritten).
    #[serde(default)]
    pub repaired_bytes: u64,
    /// Data whose copies or parity disagreed during scrubs (md's
    /// mismatch_cnt, in bytes).
    pub mismatch_bytes: u64,
    /// Read errors fixed from redundancy.
    pub corrected_errors: u64,
    /// Blocks whose checksum failed and were rewritten from a good copy.
    pub checksum_repairs: u64,
    /// Bytes written to the partial-parity log (`consistency_policy: ppl`).
    #[serde(default)]
    pub ppl_bytes: u64,
    /// Stripes the log's replay made consistent at an unclean start (writes the
    /// crash interrupted).
    #[serde(default)]
    pub ppl_replayed_stripes: u64,
    /// Log entries found at an unclean start but refused, never applied: torn or
    /// corrupt (a CRC fails), another array's, a generation above the superblocks',
    /// or naming a stripe, rows, columns or member they cannot belong to.
    #[serde(default)]
    pub ppl_refused_entries: u64,
    /// Log entries found at an unclean start and skipped as stale: an earlier run's,
    /// superseded by a newer entry of their stripe, or on a member not in sync there
    /// (the normal leftovers of earlier runs and rebuilds).
    #[serde(default)]
    pub ppl_stale_entries: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArrayStatus {
    pub name: String,
    pub level: String,
    pub state: ArrayState,
    #[serde(default)]
    pub size_bytes: u64,
    #[serde(default)]
    pub chunk_bytes: u64,
    /// Data members the layout needs (node_exporter's disks_required).
    pub members_required: u32,
    pub members: Vec<MemberStatus>,
    pub rebuild: SyncProgress,
    #[serde(default)]
    pub rebuild_min_bytes_per_second: u64,
    #[serde(default)]
    pub rebuild_max_bytes_per_second: u64,
    #[serde(default)]
    pub spare_group: Option<String>,
    /// Spares this array could take right now (dedicated + its group's).
    #[serde(default)]
    pub spares_available: u32,
    #[serde(default)]
    pub counters: ArrayCounters,
    /// The array's UUID, as in every member's superblock (`aoeraid examine`).
    #[serde(default)]
    pub uuid: String,
    /// The superblocks' event count: bumped on every metadata change, it decides
    /// which member is newest at assembly.
    #[serde(default)]
    pub events: u64,
    /// The superblocks say clean: no write in flight, nothing to resync after a crash.
    #[serde(default)]
    pub clean_on_disk: bool,
    /// Write-intent bitmap regions set: what a crash now, or a member returning,
    /// would resync.
    #[serde(default)]
    pub bitmap_dirty_regions: u64,
    /// RAID 5/6: `ppl` (a partial-parity log closes the write hole) or `resync`.
    #[serde(default)]
    pub consistency_policy: Option<String>,
}

impl Status {
    /// One line for `systemctl status` (sd_notify STATUS=): the arrays that need
    /// attention first, then how many are clean and how many volumes are exported.
    pub fn summary(&self) -> String {
        let mut parts: Vec<String> = self
            .arrays
            .iter()
            .filter(|a| a.state != raid_engine::ArrayState::Clean)
            .map(|a| {
                if a.rebuild.action == SyncAction::Idle {
                    format!("{} {}", a.name, a.state.as_str())
                } else {
                    format!(
                        "{} {} {} {:.0}%",
                        a.name,
                        a.state.as_str(),
                        a.rebuild.action.as_str(),
                        a.rebuild.done_ratio * 100.0
                    )
                }
            })
            .collect();
        let clean = self
            .arrays
            .iter()
            .filter(|a| a.state == raid_engine::ArrayState::Clean)
            .count();
        parts.push(format!("{clean} of {} arrays clean", self.arrays.len()));
        let exported: Vec<String> = self
            .volumes
            .iter()
            .filter(|v| v.exported)
            .map(|v| format!("e{}.{}", v.shelf, v.slot))
            .collect();
        parts.push(if exported.is_empty() {
            "nothing exported".to_string()
        } else {
            format!("exporting {}", exported.join(" "))
        });
        parts.join("; ")
    }
}

impl ArrayStatus {
    pub fn degraded(&self) -> bool {
        self.members
            .iter()
            .filter(|m| m.role == MemberRole::Data && m.state == MemberState::Active)
            .count()
            < self.members_required as usize
    }

    pub fn count(&self, state: MemberState) -> usize {
        self.members.iter().filter(|m| m.state == state).count()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolumeStatus {
    pub name: String,
    pub shelf: u16,
    pub slot: u8,
    /// Exported size in 512-byte sectors.
    pub sectors: u64,
    pub arrays: Vec<String>,
    #[serde(default)]
    pub read_only: bool,
    /// MAC mask list; empty = everyone.
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default)]
    pub exported: bool,
    #[serde(default)]
    pub read_bytes: u64,
    #[serde(default)]
    pub write_bytes: u64,
    /// The export's reserve list (AoE Reserve/Release): while non-empty, only
    /// these MACs may read and write; empty = not reserved.
    #[serde(default)]
    pub reserved: Vec<String>,
    /// ATA commands refused because the reserve list excludes their sender.
    #[serde(default)]
    pub fenced_commands: u64,
    /// Reserve Set/Force Set refused (sender outside the allow list, or a
    /// Set from outside a non-empty reserve list).
    #[serde(default)]
    pub reserve_refused: u64,
    /// Another appliance took a blade of this volume (its reservation was
    /// lost): no member I/O goes out and the export is silent.
    #[serde(default)]
    pub reservation_lost: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BladeState {
    Up,
    /// Silent for longer than the retransmit timeout, not yet dead.
    Slow,
    Down,
}

impl BladeState {
    pub fn as_str(self) -> &'static str {
        match self {
            BladeState::Up => "up",
            BladeState::Slow => "slow",
            BladeState::Down => "down",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BladeStatus {
    /// `eS.L`.
    pub blade: String,
    pub state: BladeState,
    /// Smoothed round-trip time.
    pub rtt_seconds: f64,
    pub retransmits: u64,
    #[serde(default)]
    pub timeouts: u64,
    #[serde(default)]
    pub outstanding: u32,
    #[serde(default)]
    pub window: u32,
    #[serde(default)]
    pub mac: Option<String>,
    #[serde(default)]
    pub interface: Option<String>,
    /// Why the appliance refused this blade when it came back, or why assembly
    /// left it out at start (foreign or stale superblock, replaced member): it is
    /// left untouched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// This appliance's claim on the blade's AoE reserve list; None when it
    /// holds no reservation on it.
    #[serde(default)]
    pub reservation: Option<Reservation>,
    /// Who holds the blade once the reservation is lost (MACs, when known).
    #[serde(default)]
    pub reserved_by: Vec<String>,
}

/// The appliance's claim on one blade (`docs/ha.md`, "Blade ownership").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reservation {
    /// Our back-end MACs are the blade's reserve list.
    Held,
    /// The blade came back (or is re-asserted): a Set is on its way.
    Asserting,
    /// Another appliance holds it: never written again by this process.
    Lost,
}

impl Reservation {
    pub fn as_str(self) -> &'static str {
        match self {
            Reservation::Held => "held",
            Reservation::Asserting => "asserting",
            Reservation::Lost => "lost",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpareGroupStatus {
    pub name: String,
    /// Spares present and unused.
    pub available: Vec<String>,
    /// Declared spares that are absent or faulty.
    #[serde(default)]
    pub missing: Vec<String>,
    /// Where each available spare came from, in `available`'s order: `config`
    /// (the spare group lists it), `spare-add` (added while running; labelled),
    /// `label` (not in the configuration, found at start by its spare label).
    #[serde(default)]
    pub origins: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Backend,
    Frontend,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InterfaceStatus {
    pub name: String,
    pub side: Side,
    #[serde(default)]
    pub mtu: u32,
    #[serde(default)]
    pub rx_frames: u64,
    #[serde(default)]
    pub tx_frames: u64,
    /// Frames the kernel dropped because our socket buffer was full.
    #[serde(default)]
    pub dropped_kernel: u64,
    /// Frames we dropped as malformed.
    #[serde(default)]
    pub dropped_malformed: u64,
}

impl InterfaceStatus {
    /// One interface of a driver: the kernel's receive and drop counts of its
    /// socket (zero if the socket is gone) next to the driver's own counts.
    pub fn of_socket(
        name: &str,
        side: Side,
        sock: Option<&aoe_uring::PacketSocket>,
        sent: u64,
        malformed: u64,
    ) -> InterfaceStatus {
        let kernel = sock.and_then(|s| s.stats().ok()).unwrap_or_default();
        InterfaceStatus {
            name: name.to_string(),
            side,
            mtu: sock.map_or(0, |s| s.mtu()),
            rx_frames: kernel.received,
            tx_frames: sent,
            dropped_kernel: kernel.dropped,
            dropped_malformed: malformed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ArrayState, MemberState};

    #[test]
    fn states_are_their_names_in_the_json() {
        let names: Vec<_> = ArrayState::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            names,
            [
                "clean",
                "degraded",
                "rebuilding",
                "resyncing",
                "failed",
                "inactive"
            ]
        );
        for s in ArrayState::ALL {
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
            assert_eq!(serde_json::from_str::<ArrayState>(&json).unwrap(), s);
        }
        for s in MemberState::ALL {
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
            assert_eq!(serde_json::from_str::<MemberState>(&json).unwrap(), s);
        }
        assert!(serde_json::from_str::<ArrayState>("\"assembled\"").is_err());
    }
}
