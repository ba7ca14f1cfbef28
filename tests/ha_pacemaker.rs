//! Two Pacemaker nodes on this one host, each in namespaces of its own
//! (aoeraid-lab's `pacemaker.rs`: network, mount, UTS, IPC, PID; Debian's
//! corosync and pacemakerd), run `ocf:aoeraid:appliance` over a RAID 1 of two
//! vblades. Each node has its own back-end and front-end port on the blades'
//! and the clients' segments and the same appliance.yaml (its paths are the
//! node's own). When the active appliance's process is SIGKILLed, the
//! recurring monitor reports it failed, and Pacemaker (migration-threshold=1)
//! stops it there and starts it on the other node through the agent; the
//! export then answers a client on the front segment from the new node's MAC.
//! Prints how long each step took. Root only.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aoeraid_lab as lab;
use lab::{Array, BladeSpec, Config, Lab, PacemakerCluster, Segment, Volume, NODE_FILES};

const AOERAID: &str = env!("CARGO_BIN_EXE_aoeraid");
const AGENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/ocf/appliance");
const RSC: &str = "appliance";
/// The agent's default pidfile inside a node (`HA_RSCTMP` is /run/resource-agents).
const PIDFILE: &str = "/run/resource-agents/aoeraid-appliance.pid";

/// The one appliance.yaml both nodes run: same arrays and volume, interfaces
/// and paths that each node has for itself.
fn appliance_yaml() -> String {
    let mut c = Config::default()
        .array(Array::raid1("data", &["e0.0", "e1.0"]))
        .volume(Volume::new("vol", &["data"], 7, 0));
    c.appliance.name = "ha".into();
    c.appliance.state_dir = Some(PathBuf::from(format!("{NODE_FILES}/state")));
    c.backend.interfaces = vec!["back0".into()];
    c.backend.dead_after = Some("2s".into());
    c.frontend.interfaces = vec!["front0".into()];
    c.to_yaml()
}

/// Polls `f` every 200 ms until it gives a value; panics with `what` and the
/// cluster's state after `limit`.
fn wait_for<T>(
    cluster: &PacemakerCluster,
    what: &str,
    limit: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let t = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if t.elapsed() > limit {
            for node in cluster.nodes() {
                eprintln!(
                    "--- {} aoeraid.log:\n{}",
                    node.name(),
                    node.read_file("aoeraid.log")
                );
            }
            panic!(
                "{what}: not within {limit:?}\n{}\n{}",
                cluster.crm_mon_xml(),
                cluster.nodes()[0].pacemaker_log()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn pacemaker_moves_the_appliance_when_its_process_dies() {
    let test = "ha_pacemaker";
    if !lab::require_root(test)
        || !lab::require_tools(
            test,
            &[
                "vblade",
                "aoeping",
                "corosync",
                "pacemakerd",
                "pcs",
                "crm_mon",
                "unshare",
                "nsenter",
            ],
        )
    {
        return;
    }
    let t0 = Instant::now();
    let blades = [
        BladeSpec::new(0, 0, 32 << 20),
        BladeSpec::new(1, 0, 32 << 20),
    ];
    let lab = Lab::with_blades(test, 9000, &blades).expect("lab");
    let client = lab.add_port(&Segment::FRONT, "cli").expect("client port");
    let mut cluster = lab
        .pacemaker_cluster(
            &["node1", "node2"],
            &[("aoeraid/appliance", Path::new(AGENT))],
        )
        .expect("nodes");
    let yaml = appliance_yaml();
    let mut front_macs = Vec::new();
    for node in cluster.nodes() {
        node.add_port(&lab, &Segment::BACK, "back0")
            .expect("back port");
        let mac = node
            .add_port(&lab, &Segment::FRONT, "front0")
            .expect("front port");
        // As aoeping prints it: lower-case hex, no separators.
        front_macs.push((node.name().to_string(), mac.replace(':', "")));
        node.write_file("appliance.yaml", &yaml)
            .expect("appliance.yaml");
    }
    let cfg = format!("{NODE_FILES}/appliance.yaml");
    cluster
        .node("node1")
        .run(AOERAID, &["create", "--config", &cfg, "--assume-clean"])
        .expect("create the array");

    // What docs/ha.md configures, minus fencing (no stonith device here) and
    // with a faster monitor.
    let config = format!("config={cfg}");
    let binary = format!("binary={AOERAID}");
    let logfile = format!("logfile={NODE_FILES}/aoeraid.log");
    cluster
        .configure(&[
            &["property", "set", "stonith-enabled=false", "dc-deadtime=2s"],
            &[
                "resource",
                "create",
                RSC,
                "ocf:aoeraid:appliance",
                &config,
                &binary,
                &logfile,
                "op",
                "monitor",
                "interval=2s",
                "timeout=20s",
                "meta",
                "migration-threshold=1",
                "resource-stickiness=100",
            ],
        ])
        .expect("pcs");
    let configured = t0.elapsed();
    cluster.start(&lab).expect("corosync and pacemakerd");
    cluster.wait_online(Duration::from_secs(90));
    let online = t0.elapsed();

    let mac_of = |node: &str| {
        front_macs
            .iter()
            .find(|(n, _)| n == node)
            .map(|(_, m)| m.clone())
            .expect("node")
    };
    // The export answers from the MAC of `node`'s front port.
    let answers_from = |node: &str| {
        lab.aoeping(&client, 7, 0, 1)
            .is_ok_and(|r| r.mac.eq_ignore_ascii_case(&mac_of(node)))
    };
    let first = wait_for(
        &cluster,
        "the appliance started",
        Duration::from_secs(90),
        || {
            // Started (its recurring monitor passed once) and answering.
            cluster
                .locate(RSC)
                .filter(|n| cluster.op_rc(n, RSC, "monitor") == Some(0) && answers_from(n))
        },
    );
    let serving = t0.elapsed();
    let second = if first == "node1" { "node2" } else { "node1" };

    let active = cluster.node(&first);
    let pid = active.run("cat", &[PIDFILE]).expect("the agent's pidfile");
    let killed = Instant::now();
    active.run("kill", &["-KILL", pid.trim()]).expect("kill");

    let detected = wait_for(
        &cluster,
        "the monitor failure",
        Duration::from_secs(30),
        || {
            let xml = cluster.crm_mon_xml();
            xml.contains(&format!("<failure op_key=\"{RSC}_monitor_"))
                .then(|| killed.elapsed())
        },
    );
    let moved = wait_for(
        &cluster,
        "the appliance moved",
        Duration::from_secs(120),
        || (cluster.locate(RSC).as_deref() == Some(second)).then(|| killed.elapsed()),
    );
    let answered = wait_for(
        &cluster,
        "the export on the new node",
        Duration::from_secs(60),
        || answers_from(second).then(|| killed.elapsed()),
    );
    let start = cluster
        .op_exec_time(second, RSC, "start")
        .expect("the start on the new node in the operation history");
    eprintln!(
        "ha_pacemaker: cluster configured {:.1} s, online {:.1} s, appliance serving on {first} {:.1} s after the test began; \
         after its SIGKILL: monitor failure recorded {:.1} s, running on {second} {:.1} s \
         (the agent's start took {:.1} s), e7.0 answering from {second} {:.1} s",
        configured.as_secs_f64(),
        online.as_secs_f64(),
        serving.as_secs_f64(),
        detected.as_secs_f64(),
        moved.as_secs_f64(),
        start.as_secs_f64(),
        answered.as_secs_f64()
    );
}
