//! The appliance end to end in the namespace lab: real vblade blades behind,
//! `aoeraid run` in the middle, `aoeraid bench` (and the Linux client) in front.
//! Root only; each test builds its own lab and tears it down.

use aoeraid_lab as lab;

use lab::{BladeSpec, Daemon, Lab, Segment};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const AOERAID: &str = env!("CARGO_BIN_EXE_aoeraid");

const MIB: u64 = 1 << 20;

fn ready(test: &str) -> bool {
    lab::require_root(test) && lab::require_tools(test, &["vblade", "aoecfg"])
}

/// A lab with blades, the appliance's back and front ports, and a client port.
struct Appliance {
    lab: Lab,
    cfg: PathBuf,
    events: PathBuf,
    client: String,
    metrics_port: u16,
    daemon: Option<Daemon>,
}

impl Appliance {
    fn new(
        test: &str,
        blades: &[BladeSpec],
        arrays_yaml: &str,
        spare_yaml: &str,
        volumes_yaml: &str,
    ) -> Appliance {
        let lab = Lab::with_blades(test, 9000, blades).expect("lab");
        let back = lab.add_initiator_port(&Segment::BACK).expect("back port");
        let front = lab.add_front_port().expect("front port");
        let client = lab.add_port(&Segment::FRONT, "cli").expect("client port");
        lab.run("ip", &["link", "set", "lo", "up"]).expect("lo up");
        let dir = lab.dir().to_path_buf();
        let events = dir.join("events.log");
        let prog = lab
            .write_file(
                "on-event",
                &format!("#!/bin/sh\necho \"$@\" >> {}\n", events.display()),
            )
            .expect("event program");
        std::fs::set_permissions(&prog, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let metrics_port = 20000 + (std::process::id() % 20000) as u16;
        let yaml = format!(
            "appliance: {{name: lab, state_dir: {d}/state, control_socket: {d}/ctl.sock, \
             metrics_listen: \"127.0.0.1:{metrics_port}\", event_program: {p}}}\n\
             backend: {{interfaces: [{back}], dead_after: 2s}}\n\
             frontend: {{interfaces: [{front}]}}\n{spare_yaml}arrays:\n{arrays_yaml}volumes:\n{volumes_yaml}",
            d = dir.display(),
            p = prog.display(),
        );
        let cfg = lab.write_file("appliance.yaml", &yaml).expect("yaml");
        Appliance {
            lab,
            cfg,
            events,
            client,
            metrics_port,
            daemon: None,
        }
    }

    fn aoeraid(&self, args: &[&str]) -> (bool, String) {
        self.lab.outcome(AOERAID, args)
    }

    fn create(&self) {
        let cfg = self.cfg.display().to_string();
        let (ok, out) = self.aoeraid(&["create", "--config", &cfg, "--assume-clean"]);
        assert!(ok, "create failed: {out}");
    }

    fn start(&mut self) {
        self.daemon = Some(Daemon::run(
            &self.lab,
            AOERAID,
            &self.cfg.display().to_string(),
        ));
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(30) {
            if self.status_json().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "daemon did not come up: {}",
            self.daemon.as_ref().unwrap().log()
        );
    }

    fn status_json(&self) -> Option<serde_json::Value> {
        let (ok, out) = self.aoeraid(&[
            "status",
            "--json",
            "--config",
            &self.cfg.display().to_string(),
        ]);
        if !ok {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&out).ok()?;
        Some(v.get("status").cloned().unwrap_or(v))
    }

    fn array_state(&self, name: &str) -> Option<(String, Vec<(String, String)>)> {
        let s = self.status_json()?;
        let a = s["arrays"]
            .as_array()?
            .iter()
            .find(|a| a["name"] == name)?
            .clone();
        let members = a["members"]
            .as_array()?
            .iter()
            .map(|m| {
                (
                    m["blade"].as_str().unwrap_or("").to_string(),
                    m["state"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        Some((a["state"].as_str()?.to_string(), members))
    }

    /// Polls until `f` holds or `limit` passes; returns every array state seen.
    fn wait_for(
        &self,
        array: &str,
        limit: Duration,
        f: impl Fn(&str, &[(String, String)]) -> bool,
    ) -> Vec<String> {
        let t = Instant::now();
        let mut seen: Vec<String> = Vec::new();
        while t.elapsed() < limit {
            if let Some((st, members)) = self.array_state(array) {
                if seen.last() != Some(&st) {
                    seen.push(st.clone());
                }
                if f(&st, &members) {
                    return seen;
                }
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!(
            "array {array}: condition not reached in {limit:?}; states seen {seen:?}; status {:?}",
            self.status_json()
        );
    }

    fn bench(&self, rw: &str, span: u64, extra: &[&str]) -> (bool, String) {
        let span = format!("{}", span);
        let mut args = vec![
            "bench",
            "--iface",
            &self.client,
            "--device",
            "e7.0",
            "--rw",
            rw,
            "--span",
            &span,
            "--bs",
            "64K",
            "--qd",
            "16",
        ];
        args.extend_from_slice(extra);
        self.aoeraid(&args)
    }

    fn metrics(&self) -> String {
        let script = format!(
            "exec 3<>/dev/tcp/127.0.0.1/{}; printf 'GET /metrics HTTP/1.0\\r\\n\\r\\n' >&3; cat <&3",
            self.metrics_port
        );
        self.lab.run("bash", &["-c", &script]).unwrap_or_default()
    }

    fn events(&self) -> String {
        std::fs::read_to_string(&self.events).unwrap_or_default()
    }

    fn stop(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            let log = d.stop();
            assert!(log.contains("arrays marked clean"), "{log}");
        }
    }
}

fn assert_bench_clean(what: &str, ok: bool, out: &str) {
    assert!(ok, "{what}: bench failed:\n{out}");
    assert!(
        out.contains("errors 0") && out.contains("mismatches 0"),
        "{what}:\n{out}"
    );
}

const RAID10: &str = "  - {name: data, level: raid10, chunk: 128KiB, members: [e0.0, e1.0, e0.1, e1.1, e0.2, e1.2, e0.3, e1.3], spare_group: shelfspares}\n";
const SPARES: &str = "spare_groups: {shelfspares: [e0.4, e1.4]}\n";
const VOLUME: &str = "  - {name: gfs, arrays: [data], export: {shelf: 7, slot: 0}}\n";

/// The seed's RAID 10: verify, kill a member mid-verify, spare takes over and
/// rebuilds, a second verify, the killed blade comes back and is not reused until
/// `aoeraid add` makes it a spare; SIGTERM stops cleanly.
#[test]
fn raid10_member_loss_spare_rebuild() {
    if !ready("raid10_member_loss_spare_rebuild") {
        return;
    }
    // 80 MiB blades: four mirror pairs leave > 256 MiB after each member's
    // reserved metadata area, so the first verify covers the 256 MiB.
    let blades = Lab::grid(&[0, 1], 0..5, 80 * MIB);
    let mut app = Appliance::new("raid10", &blades, RAID10, SPARES, VOLUME);
    app.create();
    app.start();
    let (ok, out) = app.bench("verify", 256 * MIB, &[]);
    assert_bench_clean("first verify over 256 MiB", ok, &out);

    // Kill e0.1 while a verify runs.
    let bench = {
        let mut c = app.lab.cmd(AOERAID);
        c.args([
            "bench",
            "--iface",
            &app.client,
            "--device",
            "e7.0",
            "--rw",
            "verify",
            "--span",
            &(96 * MIB).to_string(),
            "--bs",
            "64K",
            "--qd",
            "16",
        ]);
        app.lab.spawn("bench-under-failure", c).expect("bench")
    };
    std::thread::sleep(Duration::from_secs(2));
    app.lab.blade(0, 1).kill().expect("kill e0.1");
    let mut bench = bench;
    let st = bench
        .wait_timeout(Duration::from_secs(300))
        .expect("wait bench");
    let out = bench.log();
    assert_bench_clean(
        "verify with a member killed",
        st.is_some_and(|s| s.success()),
        &out,
    );

    let seen = app.wait_for("data", Duration::from_secs(240), |st, m| {
        st == "clean"
            && m.iter()
                .any(|(b, s)| (b == "e0.4" || b == "e1.4") && s == "active")
    });
    let ev = app.events();
    for e in ["Fail data e0.1", "RebuildFinished data"] {
        assert!(
            ev.contains(e),
            "event {e} missing; states {seen:?}; events:\n{ev}"
        );
    }
    assert!(
        ev.contains("SpareActive") || ev.contains("MoveSpare"),
        "no spare event:\n{ev}"
    );
    let m = app.metrics();
    // The verifying bench went through the front end: its frames and the
    // target's view of them are counted on the real daemon.
    let sample = |prefix: &str| -> u64 {
        m.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no `{prefix}` in metrics:\n{m}"))
    };
    let front_frames = sample("aoeraid_frontend_frames_total");
    assert!(front_frames > 1000, "front-end frames {front_frames}");
    assert_eq!(
        sample("aoeraid_frontend_requests_total{outcome=\"malformed\"}"),
        0
    );
    for side in ["frontend", "backend"] {
        let rx: u64 = m
            .lines()
            .filter(|l| {
                l.starts_with("aoeraid_frames_received_total{")
                    && l.contains(&format!("side=\"{side}\""))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum();
        assert!(rx > 1000, "{side} interfaces received {rx} frames:\n{m}");
    }

    let (ok, out) = app.bench("verify", 64 * MIB, &[]);
    assert_bench_clean("verify after rebuild", ok, &out);

    // The killed blade returns: not reused behind the operator's back.
    app.lab.blade(0, 1).restart().expect("restart e0.1");
    std::thread::sleep(Duration::from_secs(4));
    let (_, members) = app.array_state("data").unwrap();
    assert!(
        !members
            .iter()
            .any(|(b, s)| b == "e0.1" && (s == "active" || s == "rebuilding" || s == "spare")),
        "e0.1 reused silently: {members:?}"
    );
    let cfg = app.cfg.display().to_string();
    let (ok, out) = app.aoeraid(&["add", "data", "e0.1", "--config", &cfg]);
    assert!(ok, "add: {out}");
    app.wait_for("data", Duration::from_secs(30), |_, m| {
        m.iter().any(|(b, s)| b == "e0.1" && s == "spare")
    });
    app.stop();
    // A restart assembles the array with the group spare that replaced e0.1.
    app.start();
    app.wait_for("data", Duration::from_secs(60), |st, m| {
        st == "clean"
            && m.iter().filter(|(_, s)| s == "active").count() == 8
            && m.iter()
                .any(|(b, s)| (b == "e0.4" || b == "e1.4") && s == "active")
    });
    let (ok, out) = app.bench("check", 64 * MIB, &[]);
    assert_bench_clean("check after restart", ok, &out);
    app.stop();
}

/// Re-add: a blade stopped briefly under writes comes back before the dead time
/// and only what changed is resynced.
#[test]
fn raid1_blade_pause_resyncs_little() {
    if !ready("raid1_blade_pause_resyncs_little") {
        return;
    }
    let blades = vec![
        BladeSpec::new(0, 0, 64 * MIB),
        BladeSpec::new(1, 0, 64 * MIB),
    ];
    let arrays = "  - {name: data, level: raid1, members: [e0.0, e1.0], bitmap: {region: 1MiB}}\n";
    let mut app = Appliance::new("raid1", &blades, arrays, "", VOLUME);
    app.create();
    app.start();
    let (ok, out) = app.bench("verify", 32 * MIB, &[]);
    assert_bench_clean("raid1 verify", ok, &out);
    // Let the write-intent bitmap clear (5 s after the last write) so that only the
    // writes made while the blade is away count.
    std::thread::sleep(Duration::from_secs(7));
    // Stop e1.0 past the dead time (2 s) while writing a small span, then resume it.
    app.lab.blade(1, 0).stop().expect("SIGSTOP e1.0");
    let (ok, out) = app.bench("write", 4 * MIB, &["--bytes", &(4 * MIB).to_string()]);
    assert!(ok, "write during pause: {out}");
    app.wait_for("data", Duration::from_secs(30), |st, _| st == "degraded");
    app.lab.blade(1, 0).cont().expect("SIGCONT e1.0");
    app.wait_for("data", Duration::from_secs(120), |st, m| {
        st == "clean" && m.iter().all(|(_, s)| s == "active")
    });
    let s = app.status_json().unwrap();
    let a = &s["arrays"][0];
    let resynced = a["counters"]["rebuilt_bytes"].as_u64().unwrap_or(0)
        + a["counters"]["resynced_bytes"].as_u64().unwrap_or(0);
    assert!(
        resynced < 16 * MIB,
        "re-add copied {resynced} bytes of a 64 MiB member"
    );
    let (ok, out) = app.bench("verify", 32 * MIB, &[]);
    assert_bench_clean("raid1 verify after re-add", ok, &out);
    app.stop();
}

/// RAID 5 over five blades serves a verify; kill -9 of the daemon during writes,
/// restart, and what was written reads back (bench check with the same pattern).
#[test]
fn raid5_verify_and_daemon_crash() {
    if !ready("raid5_verify_and_daemon_crash") {
        return;
    }
    let blades = Lab::grid(&[0], 0..5, 64 * MIB);
    let arrays = "  - {name: data, level: raid5, chunk: 64KiB, members: [e0.0, e0.1, e0.2, e0.3, e0.4], allow_same_shelf_mirrors: true, bitmap: {region: 4MiB}}\n";
    let mut app = Appliance::new("raid5", &blades, arrays, "", VOLUME);
    app.create();
    app.start();
    let (ok, out) = app.bench("verify", 64 * MIB, &[]);
    assert_bench_clean("raid5 verify", ok, &out);
    // Crash the daemon mid-write.
    let mut w = {
        let mut c = app.lab.cmd(AOERAID);
        c.args([
            "bench",
            "--iface",
            &app.client,
            "--device",
            "e7.0",
            "--rw",
            "write",
            "--span",
            &(32 * MIB).to_string(),
            "--bs",
            "64K",
            "--qd",
            "16",
            "--seconds",
            "30",
        ]);
        app.lab.spawn("writer", c).expect("writer")
    };
    std::thread::sleep(Duration::from_secs(3));
    app.daemon.take().unwrap().kill();
    let _ = w.kill();
    // Every sector of the span was written with the same pattern before (verify) and
    // again now: whatever was acknowledged or not, the pattern reads back.
    app.start();
    app.wait_for("data", Duration::from_secs(120), |st, _| st == "clean");
    // The resync after the crash covers the dirty regions only, not the whole array.
    let s = app.status_json().unwrap();
    let a = &s["arrays"][0];
    let size = a["size_bytes"].as_u64().unwrap();
    let resynced = a["counters"]["resynced_bytes"].as_u64().unwrap_or(0);
    eprintln!("resync after kill -9: {resynced} bytes of a {size}-byte array");
    let ev = app.events();
    assert!(
        ev.contains("ResyncStarted data") && ev.contains("ResyncFinished data"),
        "no resync after the crash:\n{ev}"
    );
    assert!(
        resynced < size / 2,
        "resync after crash covered {resynced} of {size} bytes"
    );
    let (ok, out) = app.bench("check", 32 * MIB, &[]);
    assert_bench_clean("check after crash", ok, &out);
    app.stop();
}

/// A concatenated volume grows online: `aoeraid grow` appends a second RAID 1
/// while a client writes; the export's size grows and data on both sides verifies.
#[test]
fn concat_volume_grows_online() {
    if !ready("concat_volume_grows_online") {
        return;
    }
    let blades = Lab::grid(&[0, 1], 0..2, 48 * MIB);
    let arrays = "  - {name: data, level: raid1, members: [e0.0, e1.0]}\n  - {name: shelf2, level: raid1, members: [e0.1, e1.1]}\n";
    let mut app = Appliance::new("grow", &blades, arrays, "", VOLUME);
    app.create();
    app.start();
    let before = app.status_json().unwrap()["volumes"][0]["sectors"]
        .as_u64()
        .unwrap();
    let mut writer = {
        let mut c = app.lab.cmd(AOERAID);
        c.args([
            "bench",
            "--iface",
            &app.client,
            "--device",
            "e7.0",
            "--rw",
            "verify",
            "--span",
            &(32 * MIB).to_string(),
            "--bs",
            "64K",
            "--qd",
            "8",
        ]);
        app.lab.spawn("writer", c).expect("writer")
    };
    std::thread::sleep(Duration::from_secs(1));
    let cfg = app.cfg.display().to_string();
    let mut grown = false;
    for _ in 0..20 {
        let (ok, out) = app.aoeraid(&["grow", "gfs", "--add", "shelf2", "--config", &cfg]);
        if ok {
            grown = true;
            break;
        }
        assert!(out.contains("busy"), "grow refused: {out}");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(grown, "grow never went through");
    let st = writer
        .wait_timeout(Duration::from_secs(120))
        .expect("writer");
    assert_bench_clean(
        "verify during grow",
        st.is_some_and(|s| s.success()),
        &writer.log(),
    );
    let after = app.status_json().unwrap()["volumes"][0]["sectors"]
        .as_u64()
        .unwrap();
    assert!(
        after > before + 80 * 1024,
        "volume did not grow: {before} -> {after} sectors"
    );
    // The whole grown volume (the new array's part included) takes a verify.
    let (ok, out) = app.bench("verify", after * 512, &[]);
    assert_bench_clean("verify of the grown volume", ok, &out);
    app.stop();
}

/// The Linux aoe driver (qemu guest) mounts the exported RAID 10: ext4 round trip,
/// and a smoke pass still succeeds with a member blade killed mid-workload.
#[test]
fn raid10_real_linux_client_ext4() {
    if !ready("raid10_real_linux_client_ext4")
        || !lab::require_tools("raid10_real_linux_client_ext4", &["qemu-system-x86_64"])
    {
        return;
    }
    let blades = Lab::grid(&[0, 1], 0..5, 64 * MIB);
    let mut app = Appliance::new("rc10", &blades, RAID10, SPARES, VOLUME);
    app.create();
    app.start();
    let spec = lab::ClientSpec::new("e7.0", &[lab::Workload::Ext4, lab::Workload::Smoke])
        .env("SMOKE_MB", "32");
    let mut killed = false;
    let r = app.lab.boot_clients_with(&[spec], |_, line| {
        // Kill a member at the ext4 workload's first progress line (mid-workload).
        if !killed
            && line.starts_with("REALCLIENT-")
            && line.contains("ext4")
            && !line.contains("WORKLOAD")
        {
            killed = true;
            let _ = app.lab.blade(1, 2).kill();
        }
    });
    let r = r.expect("boot client");
    r[0].assert_passed();
    assert!(
        killed,
        "the ext4 workload printed no progress line to time the kill"
    );
    let (_, members) = app.array_state("data").unwrap();
    assert!(
        members.iter().any(|(b, s)| b == "e1.2" && s != "active"),
        "{members:?}"
    );
    app.stop();
}
