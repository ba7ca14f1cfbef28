//! The control socket end to end: a server with a recording handler in a
//! temp dir, every CLI command through the real binary, permission bits,
//! peer-credential refusal, stale and live sockets.

mod ctl_fixture;

use aoeraid_appliance::config::{MemberAddr, Rate};
use aoeraid_appliance::control::server::Reply;
use aoeraid_appliance::control::{
    Client, ControlHandler, ControlServer, MemberCommand, Request, Status,
};
use aoeraid_lab::TempDir;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

const AOERAID: &str = env!("CARGO_BIN_EXE_aoeraid");

#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<String>>,
    /// What `status` answers instead of the rebuilding fixture.
    status: Mutex<Option<Status>>,
}

impl Recorder {
    fn log(&self, s: String) -> Reply {
        self.calls.lock().unwrap().push(s.clone());
        Ok(format!("done: {s}"))
    }
    fn known(array: &str) -> Result<(), String> {
        if array == "data" || array == "gfs" || array == "shelfspares" {
            Ok(())
        } else {
            Err(format!("no array, volume or group named {array}"))
        }
    }
}

impl ControlHandler for Recorder {
    fn status(&self) -> Result<Status, String> {
        Ok(self
            .status
            .lock()
            .unwrap()
            .clone()
            .unwrap_or_else(ctl_fixture::rebuilding))
    }
    fn member(&self, cmd: MemberCommand, target: &str, m: &MemberAddr) -> Reply {
        Self::known(target)?;
        let force = match cmd {
            MemberCommand::Add { force } | MemberCommand::SpareAdd { force } => force,
            _ => false,
        };
        let flag = if force { " --force" } else { "" };
        self.log(format!("{} {target} {m}{flag}", cmd.as_str()))
    }
    fn scrub(&self, array: &str, repair: bool) -> Reply {
        Self::known(array)?;
        self.log(format!("scrub {array} repair={repair}"))
    }
    fn grow(&self, volume: &str, add: &str) -> Reply {
        Self::known(volume)?;
        self.log(format!("grow {volume} +{add}"))
    }
    fn rebuild_rate(&self, array: &str, min: Option<Rate>, max: Option<Rate>) -> Reply {
        Self::known(array)?;
        self.log(format!(
            "rebuild-rate {array} min={} max={}",
            min.map_or("-".into(), |r| r.bytes_per_sec().to_string()),
            max.map_or("-".into(), |r| r.bytes_per_sec().to_string())
        ))
    }
    fn reload(&self) -> Reply {
        self.log("reload".into())
    }
}

fn start() -> (TempDir, Arc<Recorder>, ControlServer) {
    let dir = TempDir::new("ctl-control");
    let rec = Arc::new(Recorder::default());
    let server = ControlServer::start(&dir.join("run/control.sock"), rec.clone()).unwrap();
    (dir, rec, server)
}

fn cli(socket: &Path, args: &[&str]) -> Output {
    Command::new(AOERAID)
        .args(args)
        .arg("--socket")
        .arg(socket)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn socket_and_directory_are_root_only() {
    let (dir, _rec, server) = start();
    let sock_mode = std::fs::metadata(server.path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(sock_mode & 0o777, 0o600, "socket mode {sock_mode:o}");
    let dir_mode = std::fs::metadata(dir.join("run"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o777, 0o700, "dir mode {dir_mode:o}");
    let path = server.path().to_path_buf();
    server.shutdown();
    assert!(!path.exists(), "socket removed on shutdown");
}

#[test]
fn every_command_round_trips_through_the_cli() {
    let (_dir, rec, server) = start();
    let s = server.path();
    let cases: &[(&[&str], &str)] = &[
        (&["fail", "data", "e1.1"], "fail data e1.1"),
        (&["remove", "data", "e1.1"], "remove data e1.1"),
        (&["add", "data", "e1.1"], "add data e1.1"),
        (&["add", "data", "e1.1", "--force"], "add data e1.1 --force"),
        (
            &["re-add", "data", "file:/srv/d0.img"],
            "re-add data file:/srv/d0.img",
        ),
        (
            &["spare", "add", "shelfspares", "e2.4"],
            "spare-add shelfspares e2.4",
        ),
        (
            &["spare", "add", "shelfspares", "e2.4", "--force"],
            "spare-add shelfspares e2.4 --force",
        ),
        (
            &["spare", "remove", "shelfspares", "e2.4"],
            "spare-remove shelfspares e2.4",
        ),
        (&["scrub", "data"], "scrub data repair=false"),
        (&["scrub", "data", "--repair"], "scrub data repair=true"),
        (&["grow", "gfs", "--add", "more"], "grow gfs +more"),
        (
            &[
                "rebuild-rate",
                "data",
                "--min",
                "10MB/s",
                "--max",
                "200MiB/s",
            ],
            "rebuild-rate data min=10000000 max=209715200",
        ),
        (
            &["rebuild-rate", "data", "--max", "1GB/s"],
            "rebuild-rate data min=- max=1000000000",
        ),
    ];
    for (args, expect) in cases {
        let o = cli(s, args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        assert_eq!(stdout(&o).trim(), format!("done: {expect}"), "{args:?}");
        assert_eq!(rec.calls.lock().unwrap().last().unwrap(), expect);
    }
    assert_eq!(rec.calls.lock().unwrap().len(), cases.len());

    // --json on a command prints the whole response.
    let o = cli(s, &["fail", "data", "e0.0", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["message"], "done: fail data e0.0");

    // A refusal exits 1 and says why.
    let o = cli(s, &["fail", "dta", "e0.0"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("no array, volume or group named dta"),
        "{}",
        stderr(&o)
    );

    // Reload has no CLI command of its own (SIGHUP does it); the socket takes it.
    let mut c = Client::connect(s).unwrap();
    let r = c.call(&Request::Reload).unwrap();
    assert!(r.ok);
    assert_eq!(rec.calls.lock().unwrap().last().unwrap(), "reload");
}

#[test]
fn status_json_keeps_the_documented_fields() {
    let (_dir, _rec, server) = start();
    let o = cli(server.path(), &["status", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let a = &v["arrays"][0];
    assert_eq!(a["name"], "data");
    assert_eq!(a["level"], "raid10");
    assert_eq!(a["state"], "rebuilding");
    assert_eq!(a["members"][3]["blade"], "e0.4");
    assert_eq!(a["members"][3]["role"], "data");
    assert_eq!(a["members"][3]["state"], "rebuilding");
    assert_eq!(a["members"][8]["state"], "faulty");
    assert_eq!(a["rebuild"]["done_ratio"], 0.25);
    let vol = &v["volumes"][0];
    assert_eq!(
        (
            vol["name"].as_str(),
            vol["shelf"].as_u64(),
            vol["slot"].as_u64()
        ),
        (Some("gfs"), Some(7), Some(0))
    );
    assert_eq!(vol["sectors"], 8388608);
    assert_eq!(
        vol["reserved"],
        serde_json::json!(["52:54:00:00:00:01", "52:54:00:00:00:02"])
    );
    assert_eq!(vol["fenced_commands"], 6);
    assert_eq!(v["blades"][3]["blade"], "e1.1");
    assert_eq!(v["blades"][3]["retransmits"], 4);
    assert!(v["blades"][0]["rtt_seconds"].as_f64().unwrap() > 0.0);
    // And it parses back into the schema types.
    let back: Status = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(back, ctl_fixture::rebuilding());
}

/// `aoeraid status` succeeds and shows every one of `wants`; its output.
fn status_showing(server: &ControlServer, wants: &[&str]) -> String {
    let o = cli(server.path(), &["status"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for want in wants {
        assert!(out.contains(want), "missing `{want}` in:\n{out}");
    }
    out
}

#[test]
fn status_human_view() {
    let (_dir, _rec, server) = start();
    let out = status_showing(
        &server,
        &[
        "array data  raid10  rebuilding",
        "rebuild",
        "25.0%",
        "64.0 MiB/s",
        "ETA 12s",
        "e0.4",
        "faulty",
        "gfs",
        "e7.0",
        "8388608 sectors",
        "reserved 52:54:00:00:00:01,52:54:00:00:00:02 (fenced 6 commands, refused 1 reserve changes)",
        "e1.1         down",
        "spare group shelfspares: available [e1.4]",
        "uuid 6f1c2a9e-0b7d-4e55-9a13-2c4b8d7e6f01  events 42  writes in flight  bitmap 5 dirty",
        ],
    );
    // Not a terminal: no progress bar.
    assert!(!out.contains("[####"), "{out}");
}

#[test]
fn status_shows_the_partial_parity_log() {
    let (_dir, rec, server) = start();
    *rec.status.lock().unwrap() = Some(ctl_fixture::logged());
    status_showing(
        &server,
        &[
            "consistency policy ppl, 8.0 MiB logged",
            "log replay at start: 2 stripes replayed; entries refused 1, stale 5",
        ],
    );
    let o = cli(server.path(), &["status", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let c = &v["arrays"][0]["counters"];
    assert_eq!(
        [
            &c["ppl_bytes"],
            &c["ppl_replayed_stripes"],
            &c["ppl_refused_entries"],
            &c["ppl_stale_entries"]
        ],
        [8 << 20, 2, 1, 5]
    );
    // The daemon's default without a log says nothing about one.
    *rec.status.lock().unwrap() = None;
    let out = stdout(&cli(server.path(), &["status"]));
    assert!(!out.contains("log replay"), "{out}");
}

#[test]
fn status_test_exits_like_mdadm_detail_test() {
    use raid_engine::ArrayState;
    let (dir, rec, server) = start();
    for (state, code) in [
        (ArrayState::Clean, 0),
        (ArrayState::Rebuilding, 1),
        (ArrayState::Degraded, 1),
        (ArrayState::Failed, 2),
    ] {
        let mut s = ctl_fixture::rebuilding();
        s.arrays[0].state = state.into();
        // A second, clean array never hides the first one's state.
        let mut other = s.arrays[0].clone();
        other.name = "other".into();
        other.state = ArrayState::Clean.into();
        s.arrays.push(other);
        *rec.status.lock().unwrap() = Some(s);
        let o = cli(server.path(), &["status", "--test"]);
        assert_eq!(o.status.code(), Some(code), "{state:?}: {}", stderr(&o));
        assert!(
            stdout(&o).contains("array data"),
            "the status is still shown"
        );
    }
    // No daemon to ask: 4, as mdadm says when it cannot read the array.
    let o = cli(&dir.join("run/none.sock"), &["status", "--test"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let o = cli(&dir.join("run/none.sock"), &["status"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
}

#[test]
fn config_file_points_at_the_daemon() {
    let (dir, _rec, server) = start();
    let cfg = dir.join("appliance.yaml");
    std::fs::write(
        &cfg,
        format!(
            "appliance: {{name: rb1, control_socket: {}}}\n",
            server.path().display()
        ),
    )
    .unwrap();
    let o = Command::new(AOERAID)
        .args(["status", "--json", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["appliance"], "rb1");
}

#[test]
fn malformed_requests_get_errors_not_hangups() {
    let (_dir, _rec, server) = start();
    let stream = UnixStream::connect(server.path()).unwrap();
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    let mut ask = |line: &str| {
        w.write_all(line.as_bytes()).unwrap();
        w.write_all(b"\n").unwrap();
        let mut resp = String::new();
        r.read_line(&mut resp).unwrap();
        serde_json::from_str::<serde_json::Value>(&resp).unwrap()
    };
    let v = ask("this is not json");
    assert_eq!(v["ok"], false);
    assert!(v["error"].as_str().unwrap().starts_with("bad request"));
    let v = ask(r#"{"cmd":"explode"}"#);
    assert_eq!(v["ok"], false);
    let v = ask(r#"{"cmd":"fail","array":"data","member":"e0.255"}"#);
    assert!(v["error"].as_str().unwrap().contains("broadcast"), "{v}");
    let v = ask(
        r#"{"cmd":"rebuild-rate","array":"data","min_bytes_per_second":5,"max_bytes_per_second":1}"#,
    );
    assert!(v["error"].as_str().unwrap().contains("above max"), "{v}");
    // The same connection still works afterwards.
    let v = ask(r#"{"cmd":"status"}"#);
    assert_eq!(v["ok"], true);
    assert_eq!(v["status"]["appliance"], "rb1");
}

#[test]
fn live_socket_is_not_stolen_and_stale_one_is_replaced() {
    let (dir, _rec, server) = start();
    let again = ControlServer::start(server.path(), Arc::new(Recorder::default()));
    assert_eq!(again.err().unwrap().kind(), std::io::ErrorKind::AddrInUse);

    // A socket file nobody listens on (daemon killed) is replaced.
    let stale = dir.join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(stale.exists());
    let s2 = ControlServer::start(&stale, Arc::new(Recorder::default())).unwrap();
    assert!(
        Client::connect(&stale)
            .unwrap()
            .call(&Request::Status)
            .unwrap()
            .ok
    );
    drop(s2);

    // A regular file in the way is left alone.
    let file = dir.join("not-a-socket");
    std::fs::write(&file, "keep me").unwrap();
    assert!(ControlServer::start(&file, Arc::new(Recorder::default())).is_err());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
}

#[test]
fn other_users_are_refused() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to run a client as another uid");
        return;
    }
    use std::os::unix::process::CommandExt;
    let (dir, rec, server) = start();
    // With the file modes in place, another uid cannot even connect.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // The build tree may not be reachable for another uid (a clone under
    // /root): run a copy from the test directory.
    let exe = dir.join("aoeraid");
    std::fs::copy(AOERAID, &exe).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    // A test thread that forks while the copy's write descriptor is still open
    // hands that descriptor to its child until the child's exec closes it; until
    // then exec of the copy fails with ETXTBSY. It passes in moments: retry.
    let nobody = |args: &[&str]| {
        let mut tries = 0;
        loop {
            match Command::new(&exe)
                .args(args)
                .arg("--socket")
                .arg(server.path())
                .uid(65534)
                .gid(65534)
                .output()
            {
                Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 100 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                r => break r.unwrap(),
            }
        }
    };
    let o = nobody(&["fail", "data", "e0.0"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("Permission denied"), "{}", stderr(&o));
    // Even with the modes opened up, the peer credential check refuses.
    std::fs::set_permissions(dir.join("run"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(server.path(), std::fs::Permissions::from_mode(0o666)).unwrap();
    let o = nobody(&["fail", "data", "e0.0"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("uid 65534 may not control aoeraid"),
        "{}",
        stderr(&o)
    );
    assert!(rec.calls.lock().unwrap().is_empty());
}
