//! `ocf:aoeraid:appliance` (the script `deploy/ocf/appliance`) against a real
//! appliance in the lab (RAID 1 over two vblades, one volume): `ocf-tester`
//! passes (it really starts and stops the daemon through the agent), `monitor`
//! tells running (0), failed (1: another appliance took the blades over, or the
//! daemon was SIGKILLed) and stopped (7) apart, `start` takes the blades back,
//! `stop` of a stopped resource is 0, and `validate-all` refuses a broken
//! config with OCF_ERR_CONFIGURED. Root only (namespaces, vblade), and Debian's
//! resource-agents for ocf-shellfuncs and ocf-tester.

use std::time::{Duration, Instant};

use aoeraid_lab as lab;
use lab::{Appliance, Volume};

const AOERAID: &str = env!("CARGO_BIN_EXE_aoeraid");
const AGENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/ocf/appliance");

const OCF_SUCCESS: i32 = 0;
const OCF_ERR_GENERIC: i32 = 1;
const OCF_ERR_CONFIGURED: i32 = 6;
const OCF_NOT_RUNNING: i32 = 7;

/// The lab appliance with its arrays created, not running; None when skipped.
fn created(test: &str) -> Option<Appliance> {
    if !lab::require_tools(test, &["ocf-tester", "setsid"]) {
        return None;
    }
    let app = Appliance::mirror(AOERAID, test, 32 << 20, Volume::new("vol", &["data"], 7, 0))?;
    app.create();
    Some(app)
}

fn resource(app: &Appliance) -> lab::OcfResource<'_> {
    app.ocf_resource(AGENT)
}

#[test]
fn ocf_tester_passes() {
    let Some(app) = created("ocf_tester_passes") else {
        return;
    };
    let t = Instant::now();
    let (ok, out) = resource(&app).ocf_tester();
    assert!(ok, "ocf-tester failed:\n{out}");
    assert!(out.contains("passed all tests"), "{out}");
    eprintln!("ocf-tester: {:.1} s", t.elapsed().as_secs_f64());
}

#[test]
fn monitor_tells_running_failed_and_stopped_apart() {
    let Some(app) = created("ocf_monitor_codes") else {
        return;
    };
    let rsc = resource(&app);
    rsc.expect("monitor", OCF_NOT_RUNNING);
    rsc.expect("stop", OCF_SUCCESS);

    let t = Instant::now();
    rsc.expect("start", OCF_SUCCESS);
    eprintln!("start to serving: {:.1} s", t.elapsed().as_secs_f64());
    rsc.expect("monitor", OCF_SUCCESS);
    let status = app.status_json().expect("the daemon answers");
    assert_eq!(status["volumes"][0]["exported"], true, "{status}");

    // Another appliance takes the blades over: ours lost them, and says so.
    let mut peer = app.peer("peer", 9721);
    peer.start_with(&["--takeover"]);
    let t = Instant::now();
    let lost = loop {
        let run = rsc.action("monitor");
        if run.code != OCF_SUCCESS || t.elapsed() > Duration::from_secs(10) {
            break run;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(lost.code, OCF_ERR_GENERIC, "{}", lost.output);
    assert!(lost.output.contains("reservation lost"), "{}", lost.output);
    rsc.expect("stop", OCF_SUCCESS);
    rsc.expect("monitor", OCF_NOT_RUNNING);
    peer.stop();

    // Start takes the blades back (Force Set).
    rsc.expect("start", OCF_SUCCESS);
    rsc.expect("monitor", OCF_SUCCESS);

    // A crash: the pidfile stays, the process is gone.
    let pidfile = rsc.param("pidfile").expect("pidfile");
    let pid = std::fs::read_to_string(pidfile).expect("pidfile");
    let (ok, out) = app.lab.outcome("kill", &["-KILL", pid.trim()]);
    assert!(ok, "{out}");
    let failed = rsc.expect("monitor", OCF_ERR_GENERIC);
    assert!(failed.output.contains("is gone"), "{}", failed.output);

    // Pacemaker's recovery: stop (clears the stale pidfile), then a clean monitor.
    rsc.expect("stop", OCF_SUCCESS);
    rsc.expect("monitor", OCF_NOT_RUNNING);
    rsc.expect("stop", OCF_SUCCESS);

    let bad = app
        .lab
        .write_file("broken.yaml", "appliance:\n  name: lab\narrays: 7\n")
        .expect("broken config");
    let bad = resource(&app).with("config", &bad.display().to_string());
    let refused = bad.expect("validate-all", OCF_ERR_CONFIGURED);
    assert!(refused.output.contains("broken.yaml"), "{}", refused.output);
    rsc.expect("validate-all", OCF_SUCCESS);
}
