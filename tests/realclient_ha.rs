//! Two appliances on one set of blades, an HA pair: the active one (A) is
//! SIGKILLed under a Linux client's ext4 workload and the standby (B) takes
//! the volume over — assembled from the members' superblocks, exported as the
//! same shelf.slot from B's own MAC with the state A saved on the members,
//! announced. B is started the way Pacemaker starts it, through the
//! resource agent (deploy/ocf/appliance), after a plain `aoeraid run` of B
//! while A was healthy refused the blades. The guest (Debian's kernel in qemu, the stock aoe driver) must
//! see no I/O error, every file acknowledged before the kill must read back,
//! and e2fsck must be clean (realclient/workloads/takeover.sh of the lab
//! crate). Root only.

use aoeraid_lab as lab;

use lab::{Appliance, ClientSpec, Volume, Workload};
use std::time::Duration;

const AOERAID: &str = env!("CARGO_BIN_EXE_aoeraid");
const AGENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/ocf/appliance");
const MIB: u64 = 1 << 20;

/// How long after the guest's `takeover-writing` the active appliance dies:
/// the stream is in full flow, frames in flight.
const KILL_AFTER: Duration = Duration::from_secs(3);

#[test]
fn ext4_client_rides_through_a_takeover() {
    let test = "ha-takeover";
    if !lab::require_tools(test, &["qemu-system-x86_64", "aoecfg"]) {
        return;
    }
    let Some(mut app) = Appliance::mirror(
        AOERAID,
        test,
        128 * MIB,
        Volume::new("vol", &["data"], 7, 0),
    ) else {
        return;
    };
    app.create_and_start();
    // A plain start of B while A is healthy takes nothing: it refuses.
    let b = app.standby("b", 9721);
    // B as Pacemaker starts it: the resource agent's start (a takeover).
    let rsc = b.ocf_resource(AGENT);
    let spec = ClientSpec::new("e7.0", &[Workload::Takeover])
        .env("TAKEOVER_S", "60")
        .timeout(Duration::from_secs(420));
    let lab = app.lab.clone();
    let mut takeover = None;
    let (r, ran) = lab
        .boot_client_at(spec, "takeover-writing", || {
            takeover = Some(app.take_over_by(&rsc, KILL_AFTER));
        })
        .expect("boot guest");
    assert!(ran, "the guest never reached the takeover:\n{}", r.console);
    r.assert_passed();
    let takeover = takeover.expect("takeover ran");
    let stall = r.metric_f64("takeover", "max_gap_s").expect("max_gap_s");
    let files = r.metric_f64("takeover", "files").unwrap_or(0.0);
    let gap_at = r.metric_f64("takeover", "gap_at_s").unwrap_or(0.0);
    eprintln!(
        "takeover: {}; the guest's longest stall {stall:.2} s, from {:.2} s after the kill \
         ({files} files verified)",
        takeover.summary(),
        gap_at - KILL_AFTER.as_secs_f64()
    );
    takeover.check_and_stop(&b, &rsc, "data");
    // Loose: TCG on a loaded 2-core box. The driver moves frames off a silent
    // target after 10 s (HARD_SCORN_SECS); benches/ha_takeover.sh measures.
    assert!(stall < 45.0, "the guest stalled {stall} s");
}
