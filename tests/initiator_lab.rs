//! `aoeraid discover` and `aoeraid bench` against real vblade blades in the
//! namespace lab (needs root; skipped otherwise).

use aoeraid_lab as lab;

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use lab::{BladeSpec, Direction, Impairment, Lab, Segment};
use serde_json::Value;

const AOERAID: &str = env!("CARGO_BIN_EXE_aoeraid");

/// A child process killed (by PID) if the test ends while it runs.
struct Running(Option<Child>);

impl Running {
    fn spawn(mut cmd: Command) -> Running {
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn aoeraid");
        Running(Some(child))
    }

    /// Waits up to `limit`; returns (exit code, stdout, stderr) or None on timeout.
    fn wait(&mut self, limit: Duration) -> Option<(i32, String, String)> {
        let end = Instant::now() + limit;
        let child = self.0.as_mut()?;
        loop {
            if let Some(st) = child.try_wait().expect("try_wait") {
                let mut out = String::new();
                let mut err = String::new();
                if let Some(mut o) = child.stdout.take() {
                    let _ = o.read_to_string(&mut out);
                }
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                self.0 = None;
                return Some((st.code().unwrap_or(-1), out, err));
            }
            if Instant::now() >= end {
                return None;
            }
            sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn aoeraid(lab: &Lab, args: &[&str]) -> Command {
    let mut c = lab.cmd(AOERAID);
    c.args(args);
    c
}

/// Starts `aoeraid bench --json ARGS` in the lab.
fn spawn_bench(lab: &Lab, args: &[&str]) -> Running {
    let mut all = vec!["bench", "--json"];
    all.extend_from_slice(args);
    Running::spawn(aoeraid(lab, &all))
}

impl Running {
    /// Waits for a bench up to `limit`; returns (exit code, JSON report, stderr).
    fn report(&mut self, limit: Duration) -> (i32, Value, String) {
        let (code, out, err) = self
            .wait(limit)
            .unwrap_or_else(|| panic!("bench did not finish within {limit:?}"));
        let v: Value = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("bench output is not JSON ({e}): {out}\nstderr: {err}"));
        (code, v, err)
    }
}

/// Runs a bench to completion; returns (exit code, JSON report, stderr).
fn bench(lab: &Lab, args: &[&str], limit: Duration) -> (i32, Value, String) {
    spawn_bench(lab, args).report(limit)
}

/// Runs a bench that must succeed without an error or a mismatch; returns its report.
fn bench_clean(lab: &Lab, args: &[&str], limit: Duration) -> Value {
    let (code, v, err) = bench(lab, args, limit);
    assert_eq!(code, 0, "{v}\n{err}");
    assert_eq!((n(&v, "errors"), n(&v, "mismatches")), (0, 0), "{v}");
    v
}

/// A clean `bench --rw verify --qd 8` through `ini`, sequential then random, with `args`
/// (the device, block size, span...); their reports.
fn verify_patterns(lab: &Lab, ini: &str, args: &[&str]) -> Vec<Value> {
    ["seq", "rand"]
        .into_iter()
        .map(|pattern| {
            let common = [
                "--iface",
                ini,
                "--rw",
                "verify",
                "--qd",
                "8",
                "--pattern",
                pattern,
            ];
            bench_clean(lab, &[&common[..], args].concat(), Duration::from_secs(240))
        })
        .collect()
}

fn n(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

/// The lab of test `name` (MTU `mtu`, `blades`) with an initiator port on the back
/// segment; None when the test is skipped (not root, tools missing).
fn lab_with_port(name: &str, mtu: u32, blades: &[BladeSpec]) -> Option<(Lab, String)> {
    if !lab::require_root(name) || !lab::require_tools(name, &["vblade", "ip"]) {
        return None;
    }
    let lab = Lab::with_blades(name, mtu, blades).expect("lab");
    let ini = lab.add_initiator_port(&Segment::BACK).expect("port");
    Some((lab, ini))
}

/// `aoeraid discover --json ARGS`, which must succeed: the blades it lists.
fn discover(lab: &Lab, args: &[&str]) -> Vec<Value> {
    let out = lab
        .run(AOERAID, &[&["discover", "--json"], args].concat())
        .unwrap_or_else(|e| panic!("{e}"));
    serde_json::from_str(&out).expect("JSON list")
}

fn discover_eight(mtu: u32) {
    let blades = Lab::grid(&[0, 1], 0..4, 8 << 20);
    let Some((lab, ini)) = lab_with_port(&format!("initiator_discover_{mtu}"), mtu, &blades) else {
        return;
    };
    let list = discover(&lab, &["--iface", &ini, "--timeout", "1500ms"]);
    assert_eq!(list.len(), 8, "{list:?}");
    let spf = if mtu == 9000 { 17 } else { 2 };
    for (i, b) in list.iter().enumerate() {
        assert_eq!(n(b, "shelf"), (i / 4) as u64);
        assert_eq!(n(b, "slot"), (i % 4) as u64);
        assert_eq!(n(b, "sectors"), (8 << 20) / 512);
        assert_eq!(n(b, "buffer_count"), 16);
        assert_eq!(n(b, "sectors_per_frame"), spf);
        assert_eq!(b["interfaces"], serde_json::json!([ini]));
        assert_eq!(b["macs"].as_array().map(Vec::len), Some(1));
        assert!(b["firmware"].is_string() && b["config"].is_string());
    }
    // The table form lists them too.
    let out = aoeraid(&lab, &["discover", "--iface", &ini, "--timeout", "1s"])
        .output()
        .expect("discover");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().filter(|l| l.starts_with('e')).count(),
        8,
        "{text}"
    );
    // Without --iface every Ethernet interface that is up is probed, as
    // aoe-discover does: the same eight blades, the initiator port among the
    // interfaces each one answered on.
    let list = discover(&lab, &["--timeout", "1500ms"]);
    let found: Vec<(u64, u64)> = list.iter().map(|b| (n(b, "shelf"), n(b, "slot"))).collect();
    let want: Vec<(u64, u64)> = (0..2).flat_map(|s| (0..4).map(move |l| (s, l))).collect();
    assert_eq!(found, want, "{list:?}");
    for b in &list {
        let ifaces = b["interfaces"].as_array().expect("interfaces");
        assert!(ifaces.iter().any(|i| i == &serde_json::json!(ini)), "{b}");
    }
}

#[test]
fn initiator_discover_eight_blades_mtu1500() {
    discover_eight(1500);
}

#[test]
fn initiator_discover_eight_blades_mtu9000() {
    discover_eight(9000);
}

fn verify_one(mtu: u32) {
    let spec = BladeSpec::new(0, 1, 64 << 20).no_sync();
    let Some((lab, ini)) = lab_with_port(&format!("initiator_verify_{mtu}"), mtu, &[spec]) else {
        return;
    };
    let args = [
        "--device", "0.1", "--bs", "64K", "--span", "64M", "--seed", "7",
    ];
    for v in verify_patterns(&lab, &ini, &args) {
        assert_eq!(n(&v, "bytes"), 2 * (64 << 20), "{v}");
    }
    // A later check with the same seed finds the data; another seed does not.
    let base = [
        "--iface",
        ini.as_str(),
        "--device",
        "0.1",
        "--rw",
        "check",
        "--span",
        "1M",
    ];
    let (code, v, _) = bench(
        &lab,
        &[&base[..], &["--seed", "7"]].concat(),
        Duration::from_secs(60),
    );
    assert_eq!((code, n(&v, "mismatches")), (0, 0), "{v}");
    let (code, v, _) = bench(
        &lab,
        &[&base[..], &["--seed", "8"]].concat(),
        Duration::from_secs(60),
    );
    assert_ne!(code, 0);
    assert_eq!(n(&v, "mismatches"), 2048, "every sector differs: {v}");
}

#[test]
fn initiator_verify_mtu1500() {
    verify_one(1500);
}

#[test]
fn initiator_verify_mtu9000() {
    verify_one(9000);
}

#[test]
fn initiator_verify_through_loss_reorder_duplicate() {
    let spec = BladeSpec::new(0, 2, 16 << 20).no_sync();
    let Some((lab, ini)) = lab_with_port("initiator_netem", 1500, &[spec]) else {
        return;
    };
    lab.blade(0, 2)
        .impair(
            Direction::Both,
            &Impairment::loss_reorder_dup(5.0, 25.0, 1.0),
        )
        .expect("impair");
    let args = ["--device", "0.2", "--bs", "32K", "--span", "16M"];
    for v in verify_patterns(&lab, &ini, &args) {
        assert!(
            n(&v, "retransmits") > 0,
            "5% loss must cost retransmits: {v}"
        );
    }
}

#[test]
fn initiator_blade_killed_mid_bench_fails_fast_and_returns() {
    let spec = BladeSpec::new(1, 0, 16 << 20).no_sync();
    let Some((lab, ini)) = lab_with_port("initiator_kill", 1500, &[spec]) else {
        return;
    };
    let dead = 3.0;
    let mut run = spawn_bench(
        &lab,
        &[
            "--iface",
            &ini,
            "--device",
            "1.0",
            "--rw",
            "read",
            "--qd",
            "8",
            "--seconds",
            "60",
            "--dead-time",
            "3s",
        ],
    );
    sleep(Duration::from_millis(1500));
    lab.blade(1, 0).kill().expect("kill vblade");
    let killed = Instant::now();
    let (code, v, err) = run.report(Duration::from_secs_f64(dead + 7.0));
    let took = killed.elapsed().as_secs_f64();
    assert!(took < dead + 3.0, "ended {took:.1} s after the kill");
    assert_ne!(code, 0, "{v}\n{err}");
    assert!(n(&v, "errors") > 0, "{v}");
    assert!(n(&v, "ios") > 0, "it was working before the kill: {v}");
    assert!(err.contains("down"), "{err}");
    // The blade comes back: a new bench works, nothing else restarted.
    lab.blade(1, 0).restart().expect("restart vblade");
    bench_clean(
        &lab,
        &[
            "--iface", &ini, "--device", "1.0", "--rw", "verify", "--span", "4M",
        ],
        Duration::from_secs(60),
    );
}

#[test]
fn initiator_two_paths_survive_one_link_down() {
    let spec = BladeSpec::new(0, 3, 16 << 20).no_sync().dual_port();
    let Some((lab, ini0)) = lab_with_port("initiator_multipath", 1500, &[spec]) else {
        return;
    };
    let ini1 = lab.add_initiator_port(&Segment::BACK2).expect("port");
    let list = discover(&lab, &["--iface", &ini0, "--iface", &ini1]);
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(
        list[0]["interfaces"].as_array().map(Vec::len),
        Some(2),
        "{list:?}"
    );
    // Data to read back.
    let (code, v, _) = bench(
        &lab,
        &[
            "--iface", &ini0, "--iface", &ini1, "--device", "0.3", "--rw", "verify", "--span",
            "8M", "--seed", "3",
        ],
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{v}");
    let mut run = spawn_bench(
        &lab,
        &[
            "--iface",
            &ini0,
            "--iface",
            &ini1,
            "--device",
            "0.3",
            "--rw",
            "read",
            "--qd",
            "8",
            "--seconds",
            "5",
            "--span",
            "8M",
        ],
    );
    sleep(Duration::from_millis(1500));
    lab.blade(0, 3).link_down(0).expect("link down");
    let (code, v, err) = run.report(Duration::from_secs(30));
    assert_eq!(code, 0, "{v}\n{err}");
    assert_eq!(n(&v, "errors"), 0, "{v}");
    // And the surviving path still serves the right data.
    bench_clean(
        &lab,
        &[
            "--iface", &ini0, "--iface", &ini1, "--device", "0.3", "--rw", "check", "--span", "8M",
            "--seed", "3",
        ],
        Duration::from_secs(60),
    );
}
