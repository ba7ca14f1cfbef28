//! A 3-node GFS2 cluster on the appliance: Debian's kernel in three qemu
//! guests, corosync (knet) + dlm_controld among them on a subnet that exists
//! only in the lab namespace, one GFS2 (lock_dlm) on a RAID 10 volume that
//! `aoeraid run` exports at MTU 9000 over vblade blades. Every node works on
//! it at once (per-node files, a shared file appended under flock, renames
//! and unlinks in a shared directory), then verifies every node's data;
//! `fsck.gfs2 -n` is clean. Variants: a member blade killed mid-workload.
//! Root only; the guests' workloads are realclient/workloads/{cluster,gfs2}.sh
//! of the lab crate.

use aoeraid_lab as lab;

use lab::{
    Appliance, Array, BladeSpec, ClientResult, ClientSpec, Config, GuestControl, Lab, Level, Volume,
};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const AOERAID: &str = env!("CARGO_BIN_EXE_aoeraid");

const MIB: u64 = 1 << 20;
const NODES: usize = 3;

/// Three TCG guests each are all two cores can take: one cluster at a time.
static ONE_CLUSTER: Mutex<()> = Mutex::new(());

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

fn nodes() -> Vec<ClientSpec> {
    let spec = ClientSpec::cluster_node("e7.0", &[lab::Workload::Gfs2, lab::Workload::Stat])
        .timeout(Duration::from_secs(900));
    vec![spec; NODES]
}

/// Every node passed both workloads, verified all nodes' data and saw the
/// export's jumbo frames; guest 0's fsck.gfs2 -n was clean.
fn assert_cluster_verified(res: &[ClientResult]) {
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
            Some("3"),
            "guest {}",
            r.index
        );
        r.assert_stat(9000);
    }
    assert_eq!(res[0].metric("gfs2", "fsck_clean"), Some("1"));
    let rates: Vec<String> = res
        .iter()
        .map(|r| {
            format!(
                "guest {}: write {} MB/s, read {} MB/s, mixed {} s",
                r.index,
                r.metric("gfs2", "write_MBps").unwrap_or("?"),
                r.metric("gfs2", "read_MBps").unwrap_or("?"),
                r.metric("gfs2", "mixed_s").unwrap_or("?")
            )
        })
        .collect();
    eprintln!("{}", rates.join("; "));
}

/// One cluster test on a fresh RAID 10 appliance: the three nodes boot
/// with `hook` seeing their console lines; returns the appliance (still
/// running) and the results, verified by [`assert_cluster_verified`].
fn cluster_run(
    test: &str,
    hook: impl FnMut(&Appliance, &mut GuestControl, usize, &str),
) -> Option<(Appliance, Vec<ClientResult>)> {
    if !ready(test) {
        return None;
    }
    let _one = ONE_CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let t = Instant::now();
    let app = raid10_appliance(test);
    let mut hook = hook;
    let res = app
        .lab
        .boot_clients_ctl(&nodes(), |ctl, i, line| hook(&app, ctl, i, line))
        .expect("boot cluster");
    assert_cluster_verified(&res);
    eprintln!(
        "{test}: cluster done after {:.1}s",
        t.elapsed().as_secs_f64()
    );
    Some((app, res))
}

/// Test A: the cluster's concurrent workload on a healthy RAID 10.
#[test]
fn gfs2_three_nodes_raid10() {
    let Some((mut app, _)) = cluster_run("gfs2_three_nodes_raid10", |_, _, _, _| {}) else {
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
    let Some((mut app, _)) = cluster_run("gfs2_three_nodes_member_killed", |app, _, _, line| {
        if !killed && line.starts_with("REALCLIENT-EVENT gfs2-working") {
            killed = true;
            app.lab.blade(0, 1).kill().expect("kill e0.1");
        }
    }) else {
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
