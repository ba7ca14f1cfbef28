//! A 3-node GFS2 cluster on the appliance: Debian's kernel in three qemu
//! guests, corosync (knet) + dlm_controld among them on a subnet that exists
//! only in the lab namespace, one GFS2 (lock_dlm) on a RAID 10 volume that
//! `aoeraid run` exports at MTU 9000 over vblade blades. Every node works on
//! it at once (per-node files, a shared file appended under flock, renames
//! and unlinks in a shared directory), then verifies every node's data;
//! `fsck.gfs2 -n` is clean. Variants: a member blade killed mid-workload,
//! a node killed and fenced, the appliance taken over by its HA standby.
//! Root only; the guests' workloads are realclient/workloads/{cluster,gfs2}.sh
//! of the lab crate.

use aoeraid_lab as lab;

use lab::{
    Appliance, Array, BladeSpec, ClientResult, ClientSpec, Config, GuestControl, Lab, Level, Volume,
};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

const AOERAID: &str = env!("CARGO_BIN_EXE_aoeraid");
const AGENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/ocf/appliance");

const MIB: u64 = 1 << 20;
const NODES: usize = 3;

/// How long after the first node's `gfs2-working` the active appliance dies
/// in the takeover test: every node is in the mixed workload by then.
const KILL_AFTER: Duration = Duration::from_secs(3);

/// Three TCG guests each are all two cores can take: one cluster at a time.
static ONE_CLUSTER: Mutex<()> = Mutex::new(());

fn one_cluster() -> MutexGuard<'static, ()> {
    ONE_CLUSTER.lock().unwrap_or_else(|e| e.into_inner())
}

fn ready(test: &str) -> bool {
    lab::require_root(test)
        && lab::require_tools(
            test,
            &[
                "vblade",
                "aoecfg",
                "qemu-system-x86_64",
                "corosync",
                "dlm_controld",
                "mkfs.gfs2",
                "flock",
            ],
        )
}

/// RAID 10 of e0.0/e1.0 and e0.1/e1.1 (each mirror across the two shelves)
/// with e0.2 as its spare, exported as e7.0 at MTU 9000: about 256 MiB.
fn raid10_appliance(test: &str) -> Appliance {
    let mut blades = Lab::grid(&[0, 1], 0..2, 144 * MIB);
    blades.push(BladeSpec::new(0, 2, 144 * MIB));
    let config = Config::default()
        .array(
            Array::new("data", Level::Raid10, &["e0.0", "e1.0", "e0.1", "e1.1"])
                .chunk("128KiB")
                .spare_group("spares"),
        )
        .spare_group("spares", &["e0.2"])
        .volume(Volume::new("gfs", &["data"], 7, 0));
    let mut app = Appliance::new(AOERAID, test, 9000, &blades, config);
    app.create_and_start();
    let mib = app.volume_sectors() / 2048;
    assert!((240..=288).contains(&mib), "volume of {mib} MiB");
    app
}

fn node() -> ClientSpec {
    ClientSpec::cluster_node("e7.0", &[lab::Workload::Gfs2, lab::Workload::Stat])
        .timeout(Duration::from_secs(900))
}

/// Every node passed both workloads, verified `verified` nodes' data and saw
/// the export's jumbo frames; guest 0's fsck.gfs2 -n was clean.
fn assert_cluster_verified(res: &[ClientResult], verified: usize) {
    for r in res {
        eprintln!("{}", r.summary());
    }
    if res.iter().any(|r| !r.passed) {
        // One node's failure is often another's hang: show every console.
        for r in res {
            eprintln!("==== guest {} console\n{}", r.index, r.console);
        }
    }
    for r in res {
        r.assert_passed();
        assert_eq!(
            r.metric("gfs2", "nodes_verified"),
            Some(verified.to_string().as_str()),
            "guest {}",
            r.index
        );
        r.assert_stat(9000);
    }
    // After a node was killed (fewer nodes verified than booted), gfs2.sh
    // accepts fsck.gfs2 finding only the statfs totals stale, and says so.
    let fsck = res[0].metric("gfs2", "fsck_clean") == Some("1")
        || (verified < res.len() && res[0].metric("gfs2", "fsck_statfs_stale") == Some("1"));
    assert!(fsck, "fsck.gfs2 -n not clean: {}", res[0].summary());
    eprintln!(
        "{}",
        per_guest(res, &["write_MBps", "read_MBps", "mixed_s"])
    );
}

/// `guest N: KEY=VALUE …` of gfs2.sh's metrics `keys` for every guest, `;`
/// between guests.
fn per_guest(res: &[ClientResult], keys: &[&str]) -> String {
    let guests: Vec<String> = res
        .iter()
        .map(|r| {
            let values: Vec<String> = keys
                .iter()
                .map(|k| format!("{k}={}", r.metric("gfs2", k).unwrap_or("?")))
                .collect();
            format!("guest {}: {}", r.index, values.join(" "))
        })
        .collect();
    guests.join("; ")
}

/// One cluster test on a fresh RAID 10 appliance: `specs` boot with `hook`
/// seeing their console lines; returns the appliance (still running) and
/// the results, verified by [`assert_cluster_verified`] (`verified` nodes).
fn cluster_run(
    test: &str,
    specs: &[ClientSpec],
    verified: usize,
    hook: impl FnMut(&mut Appliance, &mut GuestControl, usize, &str),
) -> Option<(Appliance, Vec<ClientResult>)> {
    if !ready(test) {
        return None;
    }
    let _one = one_cluster();
    let app = raid10_appliance(test);
    Some(boot_cluster(test, app, specs, verified, hook))
}

/// The cluster part of [`cluster_run`] on `app`, already started.
fn boot_cluster(
    test: &str,
    mut app: Appliance,
    specs: &[ClientSpec],
    verified: usize,
    mut hook: impl FnMut(&mut Appliance, &mut GuestControl, usize, &str),
) -> (Appliance, Vec<ClientResult>) {
    let t = Instant::now();
    let lab = app.lab.clone();
    let res = lab
        .boot_clients_ctl(specs, |ctl, i, line| hook(&mut app, ctl, i, line))
        .expect("boot cluster");
    assert_cluster_verified(&res, verified);
    eprintln!(
        "{test}: cluster done after {:.1}s",
        t.elapsed().as_secs_f64()
    );
    (app, res)
}

/// Test A: the cluster's concurrent workload on a healthy RAID 10.
#[test]
fn gfs2_three_nodes_raid10() {
    let specs = vec![node(); NODES];
    let Some((mut app, _)) = cluster_run("gfs2_three_nodes_raid10", &specs, NODES, |_, _, _, _| {})
    else {
        return;
    };
    let (state, _) = app.array_state("data").expect("status");
    assert_eq!(state, "clean");
    app.stop();
}

/// Test B: a RAID 10 member blade is SIGKILLed while every node works; no
/// node sees an I/O error (gfs2.sh fails on any in dmesg), everything
/// verifies, the spare rebuilds and the array is clean again.
#[test]
fn gfs2_three_nodes_member_killed() {
    let mut killed = false;
    let specs = vec![node(); NODES];
    let hook = |app: &mut Appliance, _: &mut GuestControl, _: usize, line: &str| {
        if !killed && line.starts_with("REALCLIENT-EVENT gfs2-working") {
            killed = true;
            app.lab.blade(0, 1).kill().expect("kill e0.1");
        }
    };
    let Some((mut app, _)) = cluster_run("gfs2_three_nodes_member_killed", &specs, NODES, hook)
    else {
        return;
    };
    assert!(killed, "no node reached the mixed workload");
    let seen = app.wait_for("data", Duration::from_secs(300), |st, m| {
        st == "clean" && m.iter().any(|(b, s)| b == "e0.2" && s == "active")
    });
    let ev = app.events();
    for e in ["Fail data e0.1", "RebuildFinished data"] {
        assert!(
            ev.contains(e),
            "event {e} missing; states {seen:?}; events:\n{ev}"
        );
    }
    app.stop();
}

/// Test C: node 3 (guest 2) is killed (its qemu SIGKILLed) in the middle of
/// the workload. A survivor's dlm_controld fences it through fence_aoeraid
/// (Reserve/Release from the survivor's NIC), GFS2 replays its journal, the
/// survivors finish and verify each other. The appliance then shows the
/// victim's MAC off the reserve list; the victim boots again with the same
/// MAC: its raw write fails with EIO, a survivor unfences it, it mounts and
/// verifies the survivors' data. Survivor lines about membership, fencing
/// and journal recovery are printed with their time after the kill
/// (benches/gfs2_cluster.sh reads them).
#[test]
fn gfs2_node_killed_fenced_and_back() {
    const VICTIM: usize = 2;
    let agent = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/fence/fence_aoeraid");
    let spec = node()
        .env("CLUSTER_FENCING", "1")
        .env("GFS2_VICTIM", &VICTIM.to_string())
        .program(AOERAID)
        .program(agent);
    let specs = vec![spec; NODES];
    let mut killed: Option<Instant> = None;
    let mut back = false;
    let mut timeline: Vec<(f64, usize, String)> = Vec::new();
    let hook = |app: &mut Appliance, ctl: &mut GuestControl, i: usize, line: &str| {
        if i == VICTIM && killed.is_none() && line.starts_with("REALCLIENT-EVENT gfs2-working") {
            ctl.kill(VICTIM);
            killed = Some(Instant::now());
            return;
        }
        let Some(t0) = killed else { return };
        if i != VICTIM
            && [
                "membership",
                "Members",
                "fence",
                "jid=",
                "recover",
                "gfs2-survivors",
            ]
            .iter()
            .any(|k| line.contains(k))
        {
            timeline.push((t0.elapsed().as_secs_f64(), i, line.to_string()));
        }
        if !back && line.starts_with("REALCLIENT-EVENT gfs2-survivors-verified") {
            let reserved = app.status_json().expect("status")["volumes"][0]["reserved"].clone();
            let list: Vec<&str> = reserved
                .as_array()
                .expect("reserved list")
                .iter()
                .filter_map(|m| m.as_str())
                .collect();
            let survivors: Vec<&str> = (0..NODES)
                .filter(|&g| g != VICTIM)
                .map(|g| ctl.mac(g))
                .collect();
            assert!(
                !list.contains(&ctl.mac(VICTIM)) && survivors.iter().all(|m| list.contains(m)),
                "reserve list {list:?}: the victim {} should be off it, {survivors:?} on it",
                ctl.mac(VICTIM)
            );
            back = true;
            ctl.boot_again(VICTIM);
        }
    };
    let Some((mut app, res)) = cluster_run("gfs2_node_killed_fenced_and_back", &specs, 2, hook)
    else {
        return;
    };
    assert!(
        killed.is_some(),
        "the victim never reached the mixed workload"
    );
    assert!(back, "the survivors never verified");
    for (t, g, l) in &timeline {
        eprintln!("GFS2-TIMELINE {t:8.2}s guest {g}: {l}");
    }
    let victim = &res[VICTIM];
    assert_eq!(victim.metric("cluster", "fenced_write_refused"), Some("1"));
    assert!(
        victim.console.contains("rc.boot=2") || victim.console.contains("boot=2"),
        "the victim did not boot again"
    );
    assert!(
        res.iter()
            .any(|r| r.index != VICTIM
                && r.console.contains(&format!("unfenced node {}", VICTIM + 1))),
        "no survivor unfenced the victim"
    );
    let st = app.status_json().expect("status");
    assert_eq!(
        st["volumes"][0]["reserved"].as_array().map(Vec::len),
        Some(NODES),
        "every node back on the reserve list: {st}"
    );
    app.stop();
}

/// Test D: the appliance is an HA pair. A (the RAID 10 above) serves the
/// cluster; a plain `aoeraid run` of B, its standby on the same blades with
/// the same YAML but for what is local to a box, is refused. When the first
/// node reaches the middle of the mixed workload, A is SIGKILLed and B is
/// started through the resource agent (`deploy/ocf/appliance start`, a
/// takeover): every node rides through on the aoe driver's move to B's MAC
/// (docs/ha.md, "Takeover and clients") with no I/O error in its dmesg or
/// its workload, verifies every node's data, and fsck.gfs2 -n is clean.
/// Each node's heartbeat (a 4 KiB write + fsync every 0.5 s) reports the
/// longest stall it saw.
#[test]
fn gfs2_three_nodes_appliance_takeover() {
    let test = "gfs2_three_nodes_appliance_takeover";
    if !ready(test) || !lab::require_tools(test, &["aoecfg"]) {
        return;
    }
    let _one = one_cluster();
    let app = raid10_appliance(test);
    let b = app.standby("b", 9721);
    let rsc = b.ocf_resource(AGENT);
    let specs = vec![node().env("GFS2_HEARTBEAT", "1"); NODES];
    let mut takeover = None;
    let hook = |app: &mut Appliance, _: &mut GuestControl, _: usize, line: &str| {
        if takeover.is_none() && line.starts_with("REALCLIENT-EVENT gfs2-working") {
            takeover = Some(app.take_over_by(&rsc, KILL_AFTER));
        }
    };
    let (_, res) = boot_cluster(test, app, &specs, NODES, hook);
    let takeover = takeover.expect("no node reached the mixed workload");
    // gap_at_s: when the longest stall began, after the guest's own
    // gfs2-working (A died KILL_AFTER after the first node's).
    eprintln!(
        "takeover: {}; heartbeats: {}",
        takeover.summary(),
        per_guest(&res, &["max_gap_s", "gap_at_s", "beats"])
    );
    takeover.check_and_stop(&b, &rsc, "data");
    // Loose, as for ext4 (tests/realclient_ha.rs): TCG guests on 2 cores.
    for r in &res {
        let stall = r.metric_f64("gfs2", "max_gap_s").expect("max_gap_s");
        assert!(stall < 60.0, "guest {} stalled {stall} s", r.index);
    }
}

/// Measurement, not a test (benches/gfs2_cluster.sh runs it with
/// `--ignored`): clusters of 1, 2 and 3 nodes on one export, each node
/// writing and reading GFS2_BENCH_MB (default 32) at the same time; prints
/// one `GFS2-THROUGHPUT` line per cluster size with per-node and aggregate
/// MB/s as the guests measured them.
#[test]
#[ignore = "a benchmark: benches/gfs2_cluster.sh"]
fn gfs2_throughput_by_nodes() {
    let mb = std::env::var("GFS2_BENCH_MB").unwrap_or_else(|_| "32".into());
    for n in 1..=NODES {
        let specs = vec![node().env("GFS2_BIG_MB", &mb); n];
        let Some((mut app, res)) =
            cluster_run("gfs2_throughput_by_nodes", &specs, n, |_, _, _, _| {})
        else {
            return;
        };
        let rate = |k: &str| -> Vec<f64> {
            res.iter()
                .map(|r| r.metric_f64("gfs2", k).expect("throughput metric"))
                .collect()
        };
        let (w, r) = (rate("write_MBps"), rate("read_MBps"));
        eprintln!(
            "GFS2-THROUGHPUT nodes={n} MiB_per_node={mb} write_per_node={w:?} write_sum={:.1} read_per_node={r:?} read_sum={:.1}",
            w.iter().sum::<f64>(),
            r.iter().sum::<f64>()
        );
        app.stop();
    }
}
