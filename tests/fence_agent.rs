//! `fence_aoeraid` in the lab, always through the real wrapper script
//! `deploy/fence/fence_aoeraid` (which finds the freshly built `aoeraid` in PATH): every
//! action and its exit code with options on stdin and on the command line, against
//! `aoeraid serve` and against vblade; bad input and unusable targets exit 1 and change
//! nothing; the metadata validates against fence-agents' schema. The reserve list is
//! always read back with a raw client of the test's own, not through the agent.
//!
//! Three nodes `n1`..`n3` have one port each on the target's segment, plus a probe port
//! for the test. Root only (namespaces).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aoeraid_lab as lab;
use lab::{Appliance, Array, BladeSpec, Config, Lab, RawClient, Segment, Volume};

const AOERAID: &str = env!("CARGO_BIN_EXE_aoeraid");
const WRAPPER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/fence/fence_aoeraid");
const SHELF: u16 = 4;
const SLOT: u8 = 2;
const TARGET: &str = "e4.2";
/// fence-agents' schema for agent metadata (Debian package `fence-agents`).
const FENCE_RNG: &str = "/usr/share/cluster/relaxng/metadata.rng";

/// What one agent run gave.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// The wrapper with the built `aoeraid` first in PATH.
fn wrapper(mut cmd: Command) -> Command {
    let bin_dir = std::path::Path::new(AOERAID).parent().expect("bin dir");
    let path = std::env::var("PATH").unwrap_or_default();
    cmd.env("PATH", format!("{}:{path}", bin_dir.display()));
    cmd
}

impl Run {
    /// Asserts the exit code and the whole stdout (trimmed).
    fn expect(&self, code: i32, stdout: &str) {
        assert_eq!(
            (self.code, self.stdout.trim()),
            (code, stdout),
            "stderr: {}",
            self.stderr
        );
    }
}

fn run(mut cmd: Command, args: &[&str], stdin: Option<&str>) -> Run {
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().expect("start fence_aoeraid");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write options");
    }
    let out = child.wait_with_output().expect("fence_aoeraid");
    Run {
        code: out.status.code().expect("exit code"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Three nodes and a probe on one segment of a lab.
struct Cluster<'a> {
    lab: &'a Lab,
    /// Interface of node `n{i+1}`.
    nodes: Vec<String>,
    macs: Vec<[u8; 6]>,
    hosts: String,
    probe: RawClient,
    tag: std::cell::Cell<u32>,
}

fn parse_mac(text: &str) -> [u8; 6] {
    let mut mac = [0u8; 6];
    for (m, h) in mac.iter_mut().zip(text.trim().split(':')) {
        *m = u8::from_str_radix(h, 16).expect("hex");
    }
    mac
}

impl<'a> Cluster<'a> {
    fn new(lab: &'a Lab, seg: &Segment) -> Cluster<'a> {
        let nodes: Vec<String> = (0..3)
            .map(|_| lab.add_port(seg, "node").expect("port"))
            .collect();
        let macs: Vec<[u8; 6]> = nodes
            .iter()
            .map(|n| parse_mac(&lab.mac(n).expect("mac")))
            .collect();
        let hosts: Vec<String> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| format!("n{}={}", i + 1, lab.mac(n).expect("mac").trim()))
            .collect();
        let probe_port = lab.add_port(seg, "probe").expect("probe port");
        let probe = lab.raw_client(&probe_port).expect("probe");
        Cluster {
            lab,
            nodes,
            macs,
            hosts: hosts.join(";"),
            probe,
            tag: std::cell::Cell::new(0x7000),
        }
    }

    fn wait_up(&self) {
        let up = self
            .probe
            .wait_up(SHELF, SLOT, Duration::from_secs(15))
            .expect("probe");
        assert!(up, "{TARGET} never answered");
    }

    /// The reserve list as the target reports it to the probe.
    fn list(&self) -> Vec<[u8; 6]> {
        self.tag.set(self.tag.get() + 1);
        self.probe
            .reserve_list(SHELF, SLOT, self.tag.get())
            .expect("reserve read")
            .expect("the target answers Reserve/Release")
    }

    /// The ATA status of a one-sector WRITE from node `n{node}`'s MAC (ERR, bit 0x01, when
    /// refused).
    fn write_status(&self, node: usize) -> u8 {
        let raw = self
            .lab
            .raw_client(&self.nodes[node - 1])
            .expect("node raw");
        self.tag.set(self.tag.get() + 1);
        let frame = lab::frames::ata_rw(
            raw.mac,
            SHELF,
            SLOT,
            self.tag.get(),
            true,
            8,
            1,
            &[0x5a; 512],
        );
        let reply = raw
            .call(&frame, self.tag.get())
            .expect("write")
            .expect("a reply");
        assert_eq!(reply[14] & 0x04, 0, "an ATA status, not an AoE error");
        reply[27]
    }

    /// The fence action's own latency (process start included), for the goal
    /// of under 1 s on the lab network: 20 `on`/`off` cycles of n2 from n3. Printed, not
    /// asserted. Leaves n2 fenced.
    fn latency(&self, target: &str) {
        let mut off = Vec::new();
        let mut on = Vec::new();
        for _ in 0..20 {
            let t = Instant::now();
            assert_eq!(self.cli(3, "on", &["-n", "n2"]).code, 0);
            on.push(t.elapsed());
            let t = Instant::now();
            assert_eq!(self.cli(3, "off", &["-n", "n2"]).code, 0);
            off.push(t.elapsed());
        }
        off.sort();
        on.sort();
        println!(
            "fence_aoeraid latency against {target} (20 runs each): off median {:?} \
             (max {:?}), on median {:?} (max {:?})",
            off[10], off[19], on[10], on[19]
        );
    }

    /// The MACs of nodes `n{i}` (1-based), in hosts order.
    fn macs_of(&self, nodes: &[usize]) -> Vec<[u8; 6]> {
        nodes.iter().map(|&n| self.macs[n - 1]).collect()
    }

    /// Options as `dlm_controld` writes them, on stdin, run on node `on` (1-based).
    fn stdin(&self, on: usize, action: &str, extra: &str) -> Run {
        let text = format!(
            "# options of a fence device\naction={action}\ntarget={TARGET}\ninterface={}\n\
             hosts={}\npower_timeout=3\n{extra}",
            self.nodes[on - 1],
            self.hosts
        );
        run(wrapper(self.lab.cmd(WRAPPER)), &[], Some(&text))
    }

    /// The same on the command line.
    fn cli(&self, on: usize, action: &str, extra: &[&str]) -> Run {
        let base = [
            "-o",
            action,
            "--target",
            TARGET,
            "--interface",
            &self.nodes[on - 1],
            "--hosts",
            &self.hosts,
        ];
        run(
            wrapper(self.lab.cmd(WRAPPER)),
            &[&base[..], extra].concat(),
            None,
        )
    }

    /// The fence cycle every conformant target must pass, from an empty list: `on` of
    /// an empty list changes nothing, `off` of n2 (stdin) leaves n1 and n3, status says
    /// off (2), a second survivor's `off` converges, `on` (command line) puts n2 back.
    fn off_status_on(&self) {
        assert!(self.list().is_empty(), "starts unreserved");
        let r = self.stdin(1, "on", "plug=n2\n");
        assert_eq!(r.code, 0, "on of an empty list: {}", r.stderr);
        assert!(self.list().is_empty(), "on never fills an empty list");
        let r = self.cli(1, "status", &["-n", "n2"]);
        r.expect(0, "Status: ON");

        let r = self.stdin(1, "off", "plug=n2\n");
        assert_eq!(r.code, 0, "off: {}{}", r.stdout, r.stderr);
        assert_eq!(r.stdout.trim(), "Success: Powered OFF");
        assert_eq!(self.list(), self.macs_of(&[1, 3]));
        let r = self.stdin(3, "status", "port=n2\n");
        r.expect(2, "Status: OFF");
        let r = self.cli(3, "off", &["--plug", "n2"]);
        r.expect(0, "Success: Already OFF");
        assert_eq!(self.list(), self.macs_of(&[1, 3]));

        let r = self.cli(3, "on", &["--plug", "n2"]);
        r.expect(0, "Success: Powered ON");
        assert_eq!(self.list(), self.macs_of(&[1, 3, 2]));
        let r = self.cli(2, "status", &["--port", "n2"]);
        r.expect(0, "Status: ON");

        let r = self.cli(1, "monitor", &["-v"]);
        assert_eq!(r.code, 0, "monitor: {}", r.stderr);
        let r = self.stdin(2, "list", "");
        r.expect(0, "n1\nn2\nn3");
    }

    /// Runs `check` and asserts it exits 1 with `why` in its one stderr line and leaves
    /// the reserve list as it was.
    fn refused(&self, what: &str, why: &str, check: impl FnOnce() -> Run) {
        let before = self.list();
        let r = check();
        assert_eq!(r.code, 1, "{what}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains(why), "{what}: {}", r.stderr);
        assert_eq!(
            r.stderr.trim().lines().count(),
            1,
            "{what}: one line: {}",
            r.stderr
        );
        assert_eq!(self.list(), before, "{what} changed the list");
    }
}

#[test]
fn metadata_validates_against_the_fence_agents_schema() {
    if !lab::require_tools(
        "metadata_validates_against_the_fence_agents_schema",
        &["xmllint", "busybox"],
    ) {
        return;
    }
    let r = run(wrapper(Command::new(WRAPPER)), &["-o", "metadata"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let stdin = run(
        wrapper(Command::new(WRAPPER)),
        &[],
        Some("action=metadata\n"),
    );
    assert_eq!(
        stdin.stdout, r.stdout,
        "stdin and command line give the same document"
    );
    // dlm_controld in the cluster guests runs it under busybox's sh.
    let mut ash = wrapper(Command::new("busybox"));
    ash.args(["sh", WRAPPER]);
    let ash = run(ash, &[], Some("action=metadata\n"));
    assert_eq!(ash.stdout, r.stdout, "busybox sh: {}", ash.stderr);
    let dir = std::env::temp_dir().join(format!("fence-meta-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let xml = dir.join("fence_aoeraid.xml");
    std::fs::write(&xml, &r.stdout).expect("write");
    let out = Command::new("xmllint")
        .args(["--noout", "--relaxng", FENCE_RNG])
        .arg(&xml)
        .output()
        .expect("xmllint");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "metadata invalid against {FENCE_RNG}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(r.stdout.contains("<action name=\"on\" automatic=\"1\" />"));
    assert!(!r.stdout.contains("\"reboot\""));
}

#[test]
fn agent_actions_and_bad_input_against_aoeraid_serve() {
    if !lab::require_root("agent_actions_and_bad_input_against_aoeraid_serve") {
        return;
    }
    let lab = Lab::new("fence-serve", lab::LabConfig::default()).expect("lab");
    let port = lab.add_front_port().expect("target port");
    let file = lab.sparse_file("export.img", 16 << 20).expect("export");
    let _serve = lab.serve_aoeraid(AOERAID, &port, &file, SHELF, SLOT, &[]);
    let c = Cluster::new(&lab, &Segment::FRONT);
    c.wait_up();

    let r = c.stdin(1, "validate-all", "plug=n2\n");
    assert_eq!(r.code, 0, "{}", r.stderr);
    c.off_status_on();

    // Fence n2 again, then every bad input: exit 1, one line, list unchanged.
    assert_eq!(c.cli(1, "off", &["-n", "n2"]).code, 0);
    c.refused("unknown node", "unknown node `n9`", || {
        c.cli(1, "off", &["-n", "n9"])
    });
    c.refused("malformed MAC map", "malformed hosts map", || {
        let mut cmd = wrapper(c.lab.cmd(WRAPPER));
        cmd.args([
            "-o",
            "off",
            "--target",
            TARGET,
            "--interface",
            &c.nodes[0],
            "-n",
            "n3",
        ]);
        run(
            cmd,
            &["--hosts", "n1=02:00:00:00:00;n3=02:00:00:00:00:03"],
            None,
        )
    });
    c.refused(
        "missing option",
        "missing required option interface",
        || {
            let text = format!("action=off\ntarget={TARGET}\nhosts={}\nplug=n3\n", c.hosts);
            run(wrapper(c.lab.cmd(WRAPPER)), &[], Some(&text))
        },
    );
    c.refused("self-fencing", "refusing to fence myself", || {
        c.cli(1, "off", &["-n", "n1"])
    });
    // The fenced node can neither fence a survivor nor unfence itself.
    c.refused("fenced node fencing", "is not on the reserve list", || {
        c.stdin(2, "off", "plug=n1\n")
    });
    c.refused("self-unfencing", "is not on the reserve list", || {
        c.stdin(2, "on", "node=n2\n")
    });
    c.refused("unreachable target", "unreachable", || {
        c.stdin(1, "off", "plug=n3\ntarget=e4.3\npower_timeout=1\n")
    });
    c.refused("reboot", "not supported", || {
        c.cli(1, "reboot", &["-n", "n3"])
    });

    c.latency("aoeraid serve");
    assert_eq!(c.list(), c.macs_of(&[1, 3]));
}

/// A target without Reserve/Release: answers Query Config, and Reserve/Release with
/// AoE error 1 (`error1`) or not at all.
fn fake_target(
    c: &Cluster<'_>,
    error1: bool,
) -> (
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    std::thread::JoinHandle<()>,
) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let port = c.lab.add_port(&Segment::FRONT, "fake").expect("fake port");
    let raw = c.lab.raw_client(&port).expect("fake raw");
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let done = std::sync::Arc::clone(&stop);
    let thread = std::thread::spawn(move || {
        while !done.load(Ordering::Relaxed) {
            let Some(req) = raw.recv(Duration::from_millis(100)).expect("recv") else {
                continue;
            };
            let request = req.len() >= 24 && req[14] & 0x08 == 0;
            let ours = u16::from_be_bytes([req[16], req[17]]) == SHELF && req[18] == SLOT;
            if !request || !ours {
                continue;
            }
            let mut r = req[..24].to_vec();
            r[..6].copy_from_slice(&req[6..12]);
            r[6..12].copy_from_slice(&raw.mac);
            r[14] = 0x18;
            match req[19] {
                // Buffer count 16, firmware 0, 2 sectors, version 1, no config string.
                1 => r.extend_from_slice(&[0, 16, 0, 0, 2, 0x10, 0, 0]),
                3 if error1 => {
                    r[14] |= 0x04;
                    r[15] = 1;
                }
                _ => continue,
            }
            raw.send(&lab::frames::pad(r)).expect("send");
        }
    });
    (stop, thread)
}

#[test]
fn agent_fails_cleanly_without_a_usable_target() {
    if !lab::require_root("agent_fails_cleanly_without_a_usable_target") {
        return;
    }
    let lab = Lab::new("fence-nores", lab::LabConfig::default()).expect("lab");
    let c = Cluster::new(&lab, &Segment::FRONT);
    let t = Instant::now();
    let r = c.cli(1, "off", &["-n", "n2", "--power-timeout", "1"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains(&format!("target {TARGET} unreachable")),
        "{}",
        r.stderr
    );
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "bounded by power_timeout"
    );
    let r = c.cli(1, "status", &["-n", "n2", "--power-timeout", "1"]);
    assert_eq!(
        r.code, 1,
        "status of an unreachable target is 1: {}",
        r.stderr
    );

    for (error1, why) in [
        (
            true,
            "does not support Reserve/Release: it answered AoE error 1",
        ),
        (
            false,
            "does not support Reserve/Release: it answers Query Config but not",
        ),
    ] {
        let (stop, thread) = fake_target(&c, error1);
        for action in ["off", "on", "status", "monitor"] {
            let r = c.stdin(1, action, "plug=n2\npower_timeout=1\n");
            assert_eq!(r.code, 1, "{action}: {}{}", r.stdout, r.stderr);
            assert!(r.stderr.contains(why), "{action}: {}", r.stderr);
            assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        thread.join().expect("fake target");
    }
}

#[test]
fn agent_actions_against_vblade() {
    if !lab::require_root("agent_actions_against_vblade") {
        return;
    }
    let lab = Lab::with_blades(
        "fence-vblade",
        1500,
        &[BladeSpec::new(SHELF, SLOT, 16 << 20)],
    )
    .expect("lab");
    let c = Cluster::new(&lab, &Segment::BACK);
    c.wait_up();
    c.off_status_on();
    assert_eq!(c.stdin(2, "off", "plug=n1\n").code, 0);
    assert_eq!(c.list(), c.macs_of(&[3, 2]));
    c.refused("fenced node fencing", "is not on the reserve list", || {
        c.cli(1, "off", &["-n", "n3"])
    });
}

/// The appliance's RAID 1 export: the same cycle, and the fenced node's writes get an
/// ATA error until a survivor unfences it.
#[test]
fn agent_actions_against_the_appliance() {
    if !lab::require_root("agent_actions_against_the_appliance")
        || !lab::require_tools("agent_actions_against_the_appliance", &["vblade"])
    {
        return;
    }
    let blades = [
        BladeSpec::new(0, 0, 32 << 20),
        BladeSpec::new(1, 0, 32 << 20),
    ];
    let config = Config::default()
        .array(Array::raid1("data", &["e0.0", "e1.0"]))
        .volume(Volume::new("gfs", &["data"], SHELF, SLOT));
    let mut app = Appliance::new(AOERAID, "fence-app", 1500, &blades, config);
    app.create_and_start();
    let c = Cluster::new(&app.lab, &Segment::FRONT);
    c.wait_up();
    c.off_status_on();
    assert_eq!(c.write_status(2) & 0x01, 0, "an unfenced node writes");
    c.latency("a RAID 1 export of aoeraid run");
    assert_eq!(c.list(), c.macs_of(&[1, 3]));
    assert_ne!(
        c.write_status(2) & 0x01,
        0,
        "the fenced node's write is refused"
    );
    assert_eq!(c.write_status(1) & 0x01, 0, "a survivor still writes");
    c.refused("self-unfencing", "is not on the reserve list", || {
        c.stdin(2, "on", "plug=n2\n")
    });
    assert_eq!(c.stdin(1, "on", "plug=n2\n").code, 0);
    assert_eq!(c.write_status(2) & 0x01, 0, "unfenced, it writes again");
    drop(c);
    app.stop();
}
