//! Prometheus metrics. Names follow Prometheus conventions (one `aoeraid_`
//! prefix, base units, `_total` counters, `_info` metadata) and the label sets
//! stay small: array, member, volume, blade, interface and a few enums.
//!
//! Two ways in: [`Metrics::apply_status`] refreshes every gauge and
//! engine-side counter from a [`Status`] snapshot (the daemon calls it on
//! every state change and before each scrape), and hot-path handles
//! ([`Metrics::volume_io`], [`Metrics::member_io`]) that the runtime looks up
//! once and then bumps without any label hashing.
//!
//! Why the `prometheus` crate and not `prometheus-client` (the Prometheus
//! project's own): the latter builds collectors from a snapshot at scrape time,
//! which would make the stale-series bookkeeping below ([`SnapshotGauge`]'s sweep)
//! unnecessary, since a series that is not in the snapshot is simply not
//! emitted. We keep `prometheus` because (a) the hot-path handles must be
//! pre-resolved atomic counters and histograms, which `prometheus` has and which a
//! snapshot collector would turn into a second copy of every I/O counter; (b) the
//! stale-series code is one set and one `difference` per gauge and snapshot, tested by
//! `tests/ctl_metrics.rs` (`vanished_members_and_finished_rebuilds_leave_no_series`);
//! (c) the process collector (`process_*`) comes with it; and (d) it is the crate
//! this project was asked to use. Revisit if the bookkeeping grows beyond that.

pub mod http;

use crate::control::status::{ArrayState, MemberState, Status, SyncAction};
use parking_lot::Mutex;
use prometheus::core::{Atomic, AtomicF64, AtomicI64, Collector, GenericGaugeVec};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::collections::HashSet;
use std::sync::Arc;

/// I/O latency buckets, seconds: 50 µs (a cached read over one veth hop)
/// to 10 s (a request that waited out retransmits).
const LATENCY_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 10.0,
];

/// Counters and latency for one direction of one volume or member.
#[derive(Clone)]
pub struct IoOp {
    pub bytes: IntCounter,
    pub ops: IntCounter,
    pub errors: IntCounter,
    pub latency: Histogram,
}

impl IoOp {
    /// Records one completed request.
    pub fn record(&self, bytes: u64, seconds: f64, ok: bool) {
        self.ops.inc();
        if ok {
            self.bytes.inc_by(bytes);
        } else {
            self.errors.inc();
        }
        self.latency.observe(seconds);
    }
}

#[derive(Clone)]
pub struct IoHandles {
    pub read: IoOp,
    pub write: IoOp,
}

/// The four families of one kind of I/O (`aoeraid_<subject>_io_*`: a volume's client
/// requests, a member's requests), labelled by subject and direction.
struct IoFamilies {
    bytes: IntCounterVec,
    ops: IntCounterVec,
    errors: IntCounterVec,
    latency: HistogramVec,
}

impl IoFamilies {
    /// `help`: of the bytes, ops, errors and latency families.
    fn register(f: &Families, subject: &str, help: [&str; 4]) -> IoFamilies {
        let name = |what: &str| format!("aoeraid_{subject}_io_{what}");
        let labels = [subject, "op"];
        IoFamilies {
            bytes: f.counter(&name("bytes_total"), help[0], &labels),
            ops: f.counter(&name("ops_total"), help[1], &labels),
            errors: f.counter(&name("errors_total"), help[2], &labels),
            latency: f.histogram(&name("latency_seconds"), help[3], &labels),
        }
    }

    fn op(&self, subject: &str, op: &str) -> IoOp {
        let labels = [subject, op];
        IoOp {
            bytes: self.bytes.with_label_values(&labels),
            ops: self.ops.with_label_values(&labels),
            errors: self.errors.with_label_values(&labels),
            latency: self.latency.with_label_values(&labels),
        }
    }

    fn handles(&self, subject: &str) -> IoHandles {
        IoHandles {
            read: self.op(subject, "read"),
            write: self.op(subject, "write"),
        }
    }
}

/// A gauge family whose series follow the status snapshots: [`Metrics::apply_status`]
/// sets the series a snapshot knows, then `sweep` deletes those the snapshot before
/// set and this one did not, so arrays, members and blades that went away vanish from
/// /metrics instead of freezing at their last value.
struct SnapshotGauge<P: Atomic> {
    family: GenericGaugeVec<P>,
    labels: Arc<Mutex<LabelSets>>,
}

#[derive(Default)]
struct LabelSets {
    now: HashSet<Vec<String>>,
    before: HashSet<Vec<String>>,
}

// By hand: the derive would ask `P: Clone`, which the atomics are not.
impl<P: Atomic> Clone for SnapshotGauge<P> {
    fn clone(&self) -> Self {
        SnapshotGauge {
            family: self.family.clone(),
            labels: self.labels.clone(),
        }
    }
}

impl<P: Atomic> SnapshotGauge<P> {
    fn set(&self, labels: &[&str], value: P::T) {
        self.family.with_label_values(labels).set(value);
        self.labels
            .lock()
            .now
            .insert(labels.iter().map(|l| l.to_string()).collect());
    }
}

/// A snapshot gauge of any value type, for the list [`Metrics::apply_status`] sweeps.
trait Sweep: Send + Sync {
    fn sweep(&self);
}

impl<P: Atomic + 'static> Sweep for SnapshotGauge<P> {
    fn sweep(&self) {
        let mut sets = self.labels.lock();
        let LabelSets { now, before } = &mut *sets;
        for gone in before.difference(now) {
            let l: Vec<&str> = gone.iter().map(String::as_str).collect();
            // A missing series is fine: deletion is best effort by design.
            let _ = self.family.remove_label_values(&l);
        }
        *before = std::mem::take(now);
    }
}

/// Registers the families in one registry, keeping the snapshot gauges for
/// [`Metrics::apply_status`] to sweep. Names and label sets are fixed in this file,
/// so a definition the registry refuses is a bug.
struct Families {
    registry: Registry,
    snapshot_gauges: Vec<Box<dyn Sweep>>,
}

impl Families {
    fn register<M: Collector + Clone + 'static>(&self, metric: prometheus::Result<M>) -> M {
        let m = metric.expect("valid metric definition");
        self.registry
            .register(Box::new(m.clone()))
            .expect("metric names are unique");
        m
    }

    fn gauge<P: Atomic + 'static>(
        &mut self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> SnapshotGauge<P> {
        let g = SnapshotGauge {
            family: self.register(GenericGaugeVec::new(Opts::new(name, help), labels)),
            labels: Arc::default(),
        };
        self.snapshot_gauges.push(Box::new(g.clone()));
        g
    }

    fn counter(&self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        self.register(IntCounterVec::new(Opts::new(name, help), labels))
    }

    fn plain_counter(&self, name: &str, help: &str) -> IntCounter {
        self.register(IntCounter::new(name, help))
    }

    fn histogram(&self, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
        let opts = HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec());
        self.register(HistogramVec::new(opts, labels))
    }
}

/// The appliance's metric families.
pub struct Metrics {
    registry: Registry,
    appliance_info: IntGaugeVec,
    array_info: SnapshotGauge<AtomicI64>,
    array_state: SnapshotGauge<AtomicI64>,
    array_degraded: SnapshotGauge<AtomicI64>,
    array_size_bytes: SnapshotGauge<AtomicI64>,
    array_members: SnapshotGauge<AtomicI64>,
    array_members_required: SnapshotGauge<AtomicI64>,
    array_spares_available: SnapshotGauge<AtomicI64>,
    member_state: SnapshotGauge<AtomicI64>,
    sync_done_ratio: SnapshotGauge<AtomicF64>,
    sync_done_bytes: SnapshotGauge<AtomicI64>,
    sync_total_bytes: SnapshotGauge<AtomicI64>,
    sync_speed: SnapshotGauge<AtomicF64>,
    pub sync_bytes_total: IntCounterVec,
    pub mismatch_bytes_total: IntCounterVec,
    pub corrected_errors_total: IntCounterVec,
    pub checksum_repairs_total: IntCounterVec,
    pub ppl_bytes_total: IntCounterVec,
    pub ppl_replayed_stripes_total: IntCounterVec,
    pub ppl_refused_entries_total: IntCounterVec,
    pub ppl_stale_entries_total: IntCounterVec,
    rebuild_limit: SnapshotGauge<AtomicI64>,
    spare_group_spares: SnapshotGauge<AtomicI64>,
    volume_info: SnapshotGauge<AtomicI64>,
    volume_size_bytes: SnapshotGauge<AtomicI64>,
    volume_ios: IoFamilies,
    export_reserved_macs: SnapshotGauge<AtomicI64>,
    pub export_fenced_commands: IntCounterVec,
    pub export_reserve_refused: IntCounterVec,
    member_ios: IoFamilies,
    blade_up: SnapshotGauge<AtomicI64>,
    blade_refused: SnapshotGauge<AtomicI64>,
    blade_rtt: SnapshotGauge<AtomicF64>,
    pub blade_retransmits: IntCounterVec,
    pub blade_timeouts: IntCounterVec,
    blade_outstanding: SnapshotGauge<AtomicI64>,
    blade_reservation_lost: SnapshotGauge<AtomicI64>,
    pub reservation_refused: IntCounter,
    pub frames_received: IntCounterVec,
    pub frames_sent: IntCounterVec,
    pub frames_dropped: IntCounterVec,
    pub frontend_frames: IntCounter,
    pub frontend_flushes: IntCounter,
    pub frontend_requests: IntCounterVec,
    pub events_total: IntCounterVec,
    pub events_dropped: IntCounter,
    pub event_program_failures: IntCounterVec,
    status_refresh_timestamp: IntGauge,
    /// Every [`SnapshotGauge`] above, swept after each snapshot.
    snapshot_gauges: Vec<Box<dyn Sweep>>,
    /// One snapshot applied at a time (the data path and a scrape both apply
    /// them), so a sweep never deletes a series another snapshot is setting.
    applying: Mutex<()>,
}

/// Moves a counter to an absolute value taken from a snapshot. Counters only
/// go up; a smaller value means the source restarted, which Prometheus
/// handles as a counter reset.
fn sync_counter(c: &IntCounter, value: u64) {
    let cur = c.get();
    if value >= cur {
        c.inc_by(value - cur);
    } else {
        c.reset();
        c.inc_by(value);
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let r = Registry::new();
        // process_cpu_seconds_total, process_resident_memory_bytes, open fds, start
        // time: what node_exporter users expect of any daemon they scrape.
        r.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))
        .expect("the process collector registers once");
        let mut f = Families {
            registry: r,
            snapshot_gauges: Vec::new(),
        };
        let m = Metrics {
            appliance_info: f.register(IntGaugeVec::new(
                Opts::new(
                    "aoeraid_appliance_info",
                    "Appliance name and software version (always 1).",
                ),
                &["appliance", "version"],
            )),
            array_info: f.gauge(
                "aoeraid_array_info",
                "Array metadata (always 1).",
                &["array", "level", "spare_group"],
            ),
            array_state: f.gauge(
                "aoeraid_array_state",
                "1 for the array's current state, 0 for the others.",
                &["array", "state"],
            ),
            array_degraded: f.gauge(
                "aoeraid_array_degraded",
                "1 when fewer data members are active than the layout requires.",
                &["array"],
            ),
            array_size_bytes: f.gauge(
                "aoeraid_array_size_bytes",
                "Usable array capacity.",
                &["array"],
            ),
            array_members: f.gauge(
                "aoeraid_array_members",
                "Members of the array by state.",
                &["array", "state"],
            ),
            array_members_required: f.gauge(
                "aoeraid_array_members_required",
                "Data members the layout needs.",
                &["array"],
            ),
            array_spares_available: f.gauge(
                "aoeraid_array_spares_available",
                "Spares the array could take now (dedicated plus its group's).",
                &["array"],
            ),
            member_state: f.gauge(
                "aoeraid_member_state",
                "1 for the member's current state, 0 for the others.",
                &["array", "member", "state"],
            ),
            sync_done_ratio: f.gauge(
                "aoeraid_array_sync_done_ratio",
                "Progress of the running rebuild/resync/check/repair, 0..1.",
                &["array", "action"],
            ),
            sync_done_bytes: f.gauge(
                "aoeraid_array_sync_done_bytes",
                "Bytes done by the running rebuild/resync/check/repair.",
                &["array", "action"],
            ),
            sync_total_bytes: f.gauge(
                "aoeraid_array_sync_total_bytes",
                "Bytes the running rebuild/resync/check/repair covers.",
                &["array", "action"],
            ),
            sync_speed: f.gauge(
                "aoeraid_array_sync_speed_bytes_per_second",
                "Current rate of the running rebuild/resync/check/repair.",
                &["array", "action"],
            ),
            sync_bytes_total: f.counter(
                "aoeraid_array_sync_bytes_total",
                "Bytes synced since start, by action: rebuild, resync, check, repair (the actions of the sync progress series; seal writes no data).",
                &["array", "action"],
            ),
            mismatch_bytes_total: f.counter(
                "aoeraid_array_mismatch_bytes_total",
                "Bytes whose copies or parity disagreed during scrubs (md mismatch_cnt).",
                &["array"],
            ),
            corrected_errors_total: f.counter(
                "aoeraid_array_corrected_errors_total",
                "Read errors corrected from redundancy.",
                &["array"],
            ),
            checksum_repairs_total: f.counter(
                "aoeraid_array_checksum_repairs_total",
                "Blocks with a bad checksum rewritten from a good copy.",
                &["array"],
            ),
            ppl_bytes_total: f.counter(
                "aoeraid_array_ppl_bytes_total",
                "Bytes written to the partial-parity log (RAID 5/6, consistency_policy ppl).",
                &["array"],
            ),
            ppl_replayed_stripes_total: f.counter(
                "aoeraid_array_ppl_replayed_stripes_total",
                "Stripes the partial-parity log's replay made consistent at an unclean start.",
                &["array"],
            ),
            ppl_refused_entries_total: f.counter(
                "aoeraid_array_ppl_refused_entries_total",
                "Partial-parity log entries refused at an unclean start, never applied: torn or corrupt, another array's, a generation above the superblocks', or out of range.",
                &["array"],
            ),
            ppl_stale_entries_total: f.counter(
                "aoeraid_array_ppl_stale_entries_total",
                "Partial-parity log entries skipped as stale at an unclean start: an earlier run's, superseded, or on a member not in sync there.",
                &["array"],
            ),
            rebuild_limit: f.gauge(
                "aoeraid_array_rebuild_limit_bytes_per_second",
                "Configured rebuild rate limits.",
                &["array", "bound"],
            ),
            spare_group_spares: f.gauge(
                "aoeraid_spare_group_spares",
                "Spares in a group by state (available, missing).",
                &["group", "state"],
            ),
            volume_info: f.gauge(
                "aoeraid_volume_info",
                "Volume metadata (always 1).",
                &["volume", "export", "read_only"],
            ),
            volume_size_bytes: f.gauge(
                "aoeraid_volume_size_bytes",
                "Exported volume size.",
                &["volume"],
            ),
            volume_ios: IoFamilies::register(
                &f,
                "volume",
                [
                    "Bytes served to clients.",
                    "Client requests completed.",
                    "Client requests answered with an error.",
                    "Client request latency, arrival to reply.",
                ],
            ),
            export_reserved_macs: f.gauge(
                "aoeraid_export_reserved_macs",
                "MACs on the export's AoE reserve list (0: not reserved, everyone may write).",
                &["export"],
            ),
            export_fenced_commands: f.counter(
                "aoeraid_export_fenced_commands_total",
                "ATA commands refused (ATA ERR/ABRT) because the reserve list excludes their sender.",
                &["export"],
            ),
            export_reserve_refused: f.counter(
                "aoeraid_export_reserve_refused_total",
                "Reserve Set/Force Set refused: sender outside the allow list, or a Set from outside a non-empty reserve list.",
                &["export"],
            ),
            member_ios: IoFamilies::register(
                &f,
                "member",
                [
                    "Bytes moved to and from a member.",
                    "Member requests completed.",
                    "Member requests that failed.",
                    "Member request latency including retransmits.",
                ],
            ),
            blade_up: f.gauge(
                "aoeraid_blade_up",
                "1 while the blade answers, 0 once it is declared dead.",
                &["blade"],
            ),
            blade_refused: f.gauge(
                "aoeraid_blade_refused",
                "1 while the blade, back after being away, is refused and left untouched \
                 (foreign or stale superblock, replaced member; see status).",
                &["blade"],
            ),
            blade_rtt: f.gauge(
                "aoeraid_blade_rtt_seconds",
                "Smoothed round-trip time to the blade.",
                &["blade"],
            ),
            blade_retransmits: f.counter(
                "aoeraid_blade_retransmits_total",
                "Frames sent again after no reply in time.",
                &["blade"],
            ),
            blade_timeouts: f.counter(
                "aoeraid_blade_timeouts_total",
                "Requests that ran out of retransmits.",
                &["blade"],
            ),
            blade_outstanding: f.gauge(
                "aoeraid_blade_outstanding_requests",
                "Requests in flight to the blade.",
                &["blade"],
            ),
            blade_reservation_lost: f.gauge(
                "aoeraid_blade_reservation_lost",
                "1 once another appliance holds the blade's AoE reservation (its volumes \
                 stopped here), 0 while this appliance holds it.",
                &["blade"],
            ),
            reservation_refused: f.plain_counter(
                "aoeraid_blade_reservation_refused_total",
                "Member I/Os and reserve Sets refused because another station holds a \
                 blade's reserve list.",
            ),
            frames_received: f.counter(
                "aoeraid_frames_received_total",
                "AoE frames received.",
                &["interface", "side"],
            ),
            frames_sent: f.counter(
                "aoeraid_frames_sent_total",
                "AoE frames sent.",
                &["interface", "side"],
            ),
            frames_dropped: f.counter(
                "aoeraid_frames_dropped_total",
                "AoE frames lost: reason=kernel (socket buffer full) or malformed.",
                &["interface", "side", "reason"],
            ),
            frontend_frames: f.plain_counter(
                "aoeraid_frontend_frames_total",
                "AoE frames the target received on the front end.",
            ),
            frontend_flushes: f.plain_counter(
                "aoeraid_frontend_flushes_total",
                "Client FLUSH CACHE commands, passed to the volumes as member flushes.",
            ),
            frontend_requests: f.counter(
                "aoeraid_frontend_requests_total",
                "Front-end frames not served normally, by outcome (malformed, not_for_us, \
                 client_queue_full, target_queue_full, no_send_slot, send_error, \
                 reservation_conflict). Each frame counts in at most one outcome, so \
                 sum() is part of aoeraid_frontend_frames_total.",
                &["outcome"],
            ),
            events_total: f.counter(
                "aoeraid_events_total",
                "Events raised, by type.",
                &["event"],
            ),
            events_dropped: f.plain_counter(
                "aoeraid_events_dropped_total",
                "Events not handed to event_program because its queue was full.",
            ),
            event_program_failures: f.counter(
                "aoeraid_event_program_failures_total",
                "event_program runs that failed (reason=exit, timeout, spawn).",
                &["reason"],
            ),
            status_refresh_timestamp: f.register(IntGauge::new(
                "aoeraid_status_refresh_timestamp_seconds",
                "Unix time of the last status snapshot applied.",
            )),
            snapshot_gauges: f.snapshot_gauges,
            registry: f.registry,
            applying: Mutex::new(()),
        };
        m.appliance_info
            .with_label_values(&["", env!("CARGO_PKG_VERSION")])
            .set(1);
        m
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The text exposition format, as served on `/metrics`.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec only fails on malformed families, which the
        // constructors above rule out; serve what was encoded regardless.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// Handles for one volume's client I/O, to keep in the data path.
    pub fn volume_io(&self, volume: &str) -> IoHandles {
        self.volume_ios.handles(volume)
    }

    /// Bytes `member` has moved in direction `op` ("read" or "write"), as its
    /// `aoeraid_member_io_bytes_total` series counts them, so `status --json` and
    /// /metrics show one number.
    pub fn member_bytes(&self, member: &str, op: &str) -> u64 {
        self.member_ios.bytes.with_label_values(&[member, op]).get()
    }

    /// Handles for one member's I/O, to keep in the data path.
    pub fn member_io(&self, member: &str) -> IoHandles {
        self.member_ios.handles(member)
    }

    /// Handles for one member's flushes (rare: looked up per flush rather than kept).
    pub fn member_flush(&self, member: &str) -> IoOp {
        self.member_ios.op(member, "flush")
    }

    /// Counts one event (the event dispatcher calls this).
    pub fn count_event(&self, name: &str) {
        self.events_total.with_label_values(&[name]).inc();
    }

    /// Refreshes everything a status snapshot knows.
    pub fn apply_status(&self, s: &Status) {
        let _one_at_a_time = self.applying.lock();
        self.appliance_info.reset();
        self.appliance_info
            .with_label_values(&[s.appliance.as_str(), s.version.as_str()])
            .set(1);

        for a in &s.arrays {
            let n = a.name.as_str();
            let group = a.spare_group.as_deref().unwrap_or("");
            self.array_info.set(&[n, &a.level, group], 1);
            for st in ArrayState::ALL {
                self.array_state
                    .set(&[n, st.as_str()], i64::from(a.state == st));
            }
            self.array_degraded.set(&[n], i64::from(a.degraded()));
            self.array_size_bytes.set(&[n], a.size_bytes as i64);
            self.array_members_required
                .set(&[n], i64::from(a.members_required));
            self.array_spares_available
                .set(&[n], i64::from(a.spares_available));
            for st in MemberState::ALL {
                self.array_members
                    .set(&[n, st.as_str()], a.count(st) as i64);
            }
            for m in &a.members {
                for st in MemberState::ALL {
                    self.member_state
                        .set(&[n, &m.blade, st.as_str()], i64::from(m.state == st));
                }
            }
            // Progress series exist only for the action that is running, so
            // a finished rebuild does not linger at 0.97.
            let r = &a.rebuild;
            if SyncAction::ACTIVE.contains(&r.action) {
                let l = [n, r.action.as_str()];
                self.sync_done_ratio.set(&l, r.done_ratio);
                self.sync_done_bytes.set(&l, r.done_bytes as i64);
                self.sync_total_bytes.set(&l, r.total_bytes as i64);
                self.sync_speed.set(&l, r.rate_bytes_per_second);
            }
            let c = &a.counters;
            // The same action names as the progress series, so a rate over bytes
            // joins with aoeraid_array_sync_done_ratio{action=...}.
            for (action, bytes) in [
                ("rebuild", c.rebuilt_bytes),
                ("resync", c.resynced_bytes),
                ("check", c.checked_bytes),
                ("repair", c.repaired_bytes),
            ] {
                sync_counter(
                    &self.sync_bytes_total.with_label_values(&[n, action]),
                    bytes,
                );
            }
            for (family, value) in [
                (&self.mismatch_bytes_total, c.mismatch_bytes),
                (&self.corrected_errors_total, c.corrected_errors),
                (&self.checksum_repairs_total, c.checksum_repairs),
                (&self.ppl_bytes_total, c.ppl_bytes),
                (&self.ppl_replayed_stripes_total, c.ppl_replayed_stripes),
                (&self.ppl_refused_entries_total, c.ppl_refused_entries),
                (&self.ppl_stale_entries_total, c.ppl_stale_entries),
            ] {
                sync_counter(&family.with_label_values(&[n]), value);
            }
            self.rebuild_limit
                .set(&[n, "min"], a.rebuild_min_bytes_per_second as i64);
            self.rebuild_limit
                .set(&[n, "max"], a.rebuild_max_bytes_per_second as i64);
        }

        for g in &s.spare_groups {
            self.spare_group_spares
                .set(&[&g.name, "available"], g.available.len() as i64);
            self.spare_group_spares
                .set(&[&g.name, "missing"], g.missing.len() as i64);
        }

        for v in &s.volumes {
            let export = format!("e{}.{}", v.shelf, v.slot);
            let ro = if v.read_only { "true" } else { "false" };
            self.volume_info.set(&[&v.name, &export, ro], 1);
            self.volume_size_bytes
                .set(&[&v.name], (v.sectors * 512) as i64);
            if v.exported {
                self.export_reserved_macs
                    .set(&[&export], v.reserved.len() as i64);
                sync_counter(
                    &self.export_fenced_commands.with_label_values(&[&export]),
                    v.fenced_commands,
                );
                sync_counter(
                    &self.export_reserve_refused.with_label_values(&[&export]),
                    v.reserve_refused,
                );
            }
        }

        for b in &s.blades {
            let l = [b.blade.as_str()];
            self.blade_up.set(
                &l,
                i64::from(b.state != crate::control::status::BladeState::Down),
            );
            self.blade_rtt.set(&l, b.rtt_seconds);
            self.blade_outstanding.set(&l, i64::from(b.outstanding));
            sync_counter(&self.blade_retransmits.with_label_values(&l), b.retransmits);
            sync_counter(&self.blade_timeouts.with_label_values(&l), b.timeouts);
            self.blade_refused.set(&l, i64::from(b.refused.is_some()));
            if let Some(r) = b.reservation {
                self.blade_reservation_lost.set(
                    &l,
                    i64::from(r == crate::control::status::Reservation::Lost),
                );
            }
        }

        for i in &s.interfaces {
            let side = match i.side {
                crate::control::status::Side::Backend => "backend",
                crate::control::status::Side::Frontend => "frontend",
            };
            let l = [i.name.as_str(), side];
            sync_counter(&self.frames_received.with_label_values(&l), i.rx_frames);
            sync_counter(&self.frames_sent.with_label_values(&l), i.tx_frames);
            for (reason, dropped) in [
                ("kernel", i.dropped_kernel),
                ("malformed", i.dropped_malformed),
            ] {
                sync_counter(
                    &self
                        .frames_dropped
                        .with_label_values(&[&i.name, side, reason]),
                    dropped,
                );
            }
        }

        let f = &s.frontend;
        sync_counter(&self.frontend_frames, f.frames);
        sync_counter(&self.frontend_flushes, f.flushes);
        sync_counter(&self.reservation_refused, s.reservation_refused);
        for (outcome, v) in [
            ("malformed", f.malformed),
            ("not_for_us", f.not_for_us),
            ("client_queue_full", f.client_queue_full),
            ("target_queue_full", f.target_queue_full),
            ("no_send_slot", f.no_send_slot),
            ("send_error", f.send_errors),
            ("reservation_conflict", f.reservation_conflicts),
        ] {
            sync_counter(&self.frontend_requests.with_label_values(&[outcome]), v);
        }

        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        self.status_refresh_timestamp.set(stamp);

        for g in &self.snapshot_gauges {
            g.sweep();
        }
    }
}
