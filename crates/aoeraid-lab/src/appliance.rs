//! The appliance under test in a lab: vblade blades and the appliance's
//! initiator port on the back segment, its target port and a client port on
//! the front segment, `appliance.yaml` written from a typed [`Config`], and
//! `aoeraid run` with the helpers every appliance test polls it through
//! (status, metrics, events, bench, grow, reload). [`Appliance::peer`] adds a
//! second appliance on the same blades and segments (an HA pair).

use std::path::PathBuf;
use std::process::{Command, ExitStatus};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{Array, Config, Volume};
use crate::{write_script, BladeSpec, Daemon, Lab, Proc, RawClient, Segment};

/// Where the daemon serves /metrics: its own loopback in the lab namespace,
/// so every lab can use the same port.
const METRICS_LISTEN: &str = "127.0.0.1:9720";

pub struct Appliance {
    /// Shared by the appliances of one lab ([`Appliance::peer`]).
    pub lab: Arc<Lab>,
    /// The client's port on the front segment (`bench`, the raw client).
    pub client: String,
    bin: String,
    config: Config,
    cfg: String,
    events: PathBuf,
    metrics_listen: String,
    daemon: Option<Daemon>,
}

impl Appliance {
    /// A lab at `mtu` with `blades`, the appliance's ports and a client
    /// port, and `appliance.yaml`: `config` (arrays, volumes, spare groups)
    /// with the appliance, backend and frontend sections filled in — state,
    /// control socket and an event program recording into `events()` in the
    /// lab dir, /metrics on the namespace's loopback, blades dead after 2 s.
    /// `bin` is the `aoeraid` under test.
    pub fn new(bin: &str, test: &str, mtu: u32, blades: &[BladeSpec], config: Config) -> Appliance {
        let lab = Lab::with_blades(test, mtu, blades).expect("lab");
        let client = lab.add_port(&Segment::FRONT, "cli").expect("client port");
        Appliance::on(Arc::new(lab), bin, "lab", METRICS_LISTEN, client, config)
    }

    /// An appliance named `name` in `lab`: its own back-end and front-end ports
    /// and, under the lab directory, its own `NAME.yaml`, state directory,
    /// control socket and event log (`lab` keeps the names of the first one).
    fn on(
        lab: Arc<Lab>,
        bin: &str,
        name: &str,
        metrics_listen: &str,
        client: String,
        mut config: Config,
    ) -> Appliance {
        let back = lab.add_initiator_port(&Segment::BACK).expect("back port");
        let front = lab.add_front_port().expect("front port");
        let dir = lab.dir().to_path_buf();
        let local = |file: &str| match name {
            "lab" => dir.join(file),
            _ => dir.join(format!("{name}-{file}")),
        };
        let events = local("events.log");
        let prog = local("on-event");
        write_script(&prog, &format!("echo \"$@\" >> {}", events.display()))
            .expect("event program");
        let a = &mut config.appliance;
        a.name = name.into();
        a.state_dir = Some(local("state"));
        a.control_socket = Some(local("ctl.sock"));
        a.metrics_listen = Some(metrics_listen.into());
        a.event_program = Some(prog);
        config.backend.interfaces = vec![back];
        config.backend.dead_after.get_or_insert_with(|| "2s".into());
        config.frontend.interfaces = vec![front];
        let yaml = match name {
            "lab" => "appliance.yaml".to_string(),
            _ => format!("{name}.yaml"),
        };
        let cfg = lab
            .write_file(&yaml, &config.to_yaml())
            .expect("appliance yaml")
            .display()
            .to_string();
        Appliance {
            lab,
            client,
            bin: bin.to_string(),
            config,
            cfg,
            events,
            metrics_listen: metrics_listen.to_string(),
            daemon: None,
        }
    }

    /// A second appliance `name` on the same blades and segments, with the same
    /// arrays, volumes and exports (one YAML apart from what is local to a box:
    /// its interfaces, state directory, control socket, event log and /metrics
    /// port, `9721` for the first peer…), sharing the client port. Not started.
    pub fn peer(&self, name: &str, metrics_port: u16) -> Appliance {
        let (host, _) = METRICS_LISTEN.split_once(':').expect("host:port");
        Appliance::on(
            self.lab.clone(),
            &self.bin,
            name,
            &format!("{host}:{metrics_port}"),
            self.client.clone(),
            self.config.clone(),
        )
    }

    /// The tests' usual appliance: blades e0.0 and e1.0 of `blade_bytes` each at MTU
    /// 9000, RAID 1 `data` over them and `volume` over that. None (the test `test` is
    /// skipped) without root or vblade.
    pub fn mirror(bin: &str, test: &str, blade_bytes: u64, volume: Volume) -> Option<Appliance> {
        if !crate::require_root(test) || !crate::require_tools(test, &["vblade"]) {
            return None;
        }
        let blades = [
            BladeSpec::new(0, 0, blade_bytes),
            BladeSpec::new(1, 0, blade_bytes),
        ];
        let config = Config::default()
            .array(Array::raid1("data", &["e0.0", "e1.0"]))
            .volume(volume);
        Some(Appliance::new(bin, test, 9000, &blades, config))
    }

    /// The path of `appliance.yaml`.
    pub fn cfg(&self) -> &str {
        &self.cfg
    }
    /// The `aoeraid` under test.
    pub fn bin(&self) -> &str {
        &self.bin
    }
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Writes `name` in the lab dir: this appliance's config changed by `edit`
    /// (e.g. another array for `aoeraid create`); returns its path.
    pub fn write_config(&self, name: &str, edit: impl FnOnce(&mut Config)) -> String {
        let mut c = self.config.clone();
        edit(&mut c);
        self.lab
            .write_file(name, &c.to_yaml())
            .expect("config file")
            .display()
            .to_string()
    }

    /// Edits the config, rewrites `appliance.yaml` and sends SIGHUP.
    pub fn reload(&mut self, edit: impl FnOnce(&mut Config)) {
        edit(&mut self.config);
        self.lab
            .write_file("appliance.yaml", &self.config.to_yaml())
            .expect("appliance.yaml");
        self.daemon().proc().signal(libc::SIGHUP).expect("SIGHUP");
    }

    /// `aoeraid ARGS` in the lab: success, stdout + stderr.
    pub fn aoeraid(&self, args: &[&str]) -> (bool, String) {
        self.lab.outcome(&self.bin, args)
    }
    /// `aoeraid` in the lab, to add arguments to and spawn.
    pub fn cmd(&self) -> Command {
        self.lab.cmd(&self.bin)
    }

    /// `aoeraid create --assume-clean`.
    pub fn create(&self) {
        let (ok, out) = self.aoeraid(&["create", "--config", &self.cfg, "--assume-clean"]);
        assert!(ok, "create failed: {out}");
    }

    /// `aoeraid run`, returning once it answers `status` (30 s at most).
    pub fn start(&mut self) {
        self.start_with(&[]);
    }

    /// `aoeraid run --config CFG EXTRA…` (e.g. `--takeover`), returning once it
    /// answers `status` (30 s at most).
    pub fn start_with(&mut self, extra: &[&str]) {
        self.daemon = Some(Daemon::run_with(&self.lab, &self.bin, &self.cfg, extra));
        let t = Instant::now();
        while self.status_json().is_none() {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "daemon did not come up: {}",
                self.daemon().log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// [`Appliance::create`], then [`Appliance::start`].
    pub fn create_and_start(&mut self) {
        self.create();
        self.start();
    }

    /// The running daemon; panics if none runs (a test bug).
    pub fn daemon(&mut self) -> &mut Daemon {
        self.daemon.as_mut().expect("daemon running")
    }

    /// SIGTERM: the daemon exits cleanly and marks its arrays clean; returns its log.
    pub fn stop(&mut self) -> String {
        let log = self.daemon.take().expect("daemon running").stop();
        assert!(log.contains("arrays marked clean"), "{log}");
        log
    }

    /// kill -9, as a crash; returns the log.
    pub fn kill(&mut self) -> String {
        self.daemon.take().expect("daemon running").kill()
    }

    /// `aoeraid run --config CFG EXTRA…` expected to give up at start: its exit
    /// status (None if still running after `limit`; it is then killed) and log.
    pub fn run_to_exit(&self, extra: &[&str], limit: Duration) -> (Option<ExitStatus>, String) {
        let mut c = self.cmd();
        c.args(["run", "--config", &self.cfg]).args(extra);
        let mut p = self.lab.spawn("aoeraid-run", c).expect("spawn aoeraid run");
        let st = p.wait_timeout(limit).expect("wait");
        if st.is_none() {
            let _ = p.kill();
        }
        (st, p.log())
    }

    /// `aoeraid status --json`, or None while the daemon does not answer.
    pub fn status_json(&self) -> Option<serde_json::Value> {
        let (ok, out) = self.aoeraid(&["status", "--json", "--config", &self.cfg]);
        if !ok {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&out).ok()?;
        Some(v.get("status").cloned().unwrap_or(v))
    }

    /// Sectors of the first volume as `status` reports them.
    pub fn volume_sectors(&self) -> u64 {
        self.status_json().expect("status")["volumes"][0]["sectors"]
            .as_u64()
            .expect("volume sectors")
    }

    /// An array's state and its members' (blade, state).
    pub fn array_state(&self, name: &str) -> Option<(String, Vec<(String, String)>)> {
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

    /// Polls until `f` holds for the array or `limit` passes (then panics);
    /// returns every array state seen.
    pub fn wait_for(
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

    /// Bytes `array` copied to bring members in sync (rebuilt + resynced), from
    /// its status counters.
    pub fn synced_bytes(&self, array: &str) -> u64 {
        let s = self.status_json().expect("status");
        let a = s["arrays"]
            .as_array()
            .and_then(|v| v.iter().find(|a| a["name"] == array))
            .unwrap_or_else(|| panic!("no array {array} in {s}"));
        let c = &a["counters"];
        c["rebuilt_bytes"].as_u64().unwrap_or(0) + c["resynced_bytes"].as_u64().unwrap_or(0)
    }

    /// Polls `status` until blade `blade`'s entry satisfies `f` or `limit` passes
    /// (then panics); returns the entry.
    pub fn wait_blade(
        &self,
        blade: &str,
        limit: Duration,
        f: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let t = Instant::now();
        while t.elapsed() < limit {
            let entry = self.status_json().and_then(|s| {
                s["blades"]
                    .as_array()?
                    .iter()
                    .find(|b| b["blade"] == blade)
                    .cloned()
            });
            if let Some(b) = entry.filter(|b| f(b)) {
                return b;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!(
            "blade {blade}: condition not reached in {limit:?}; status {:?}",
            self.status_json()
        );
    }

    fn bench_args(&self, rw: &str, span: u64, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = [
            "bench",
            "--iface",
            &self.client,
            "--device",
            "e7.0",
            "--rw",
            rw,
            "--span",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push(span.to_string());
        for (flag, default) in [("--bs", "64K"), ("--qd", "16")] {
            if !extra.contains(&flag) {
                args.extend([flag, default].map(String::from));
            }
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    /// `aoeraid bench` on e7.0 from the client port (64K blocks, queue depth
    /// 16 unless `extra` says otherwise), to completion.
    pub fn bench(&self, rw: &str, span: u64, extra: &[&str]) -> (bool, String) {
        let args = self.bench_args(rw, span, extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.aoeraid(&args)
    }

    /// The same bench in the background.
    pub fn spawn_bench(&self, name: &str, rw: &str, span: u64, extra: &[&str]) -> Proc {
        let mut c = self.cmd();
        c.args(self.bench_args(rw, span, extra));
        self.lab.spawn(name, c).expect("spawn bench")
    }

    /// A raw AoE socket on the client port.
    pub fn raw_client(&self) -> RawClient {
        self.lab.raw_client(&self.client).expect("raw client")
    }

    /// `aoeraid grow VOLUME --add ARRAY`, retried while the daemon answers
    /// busy (10 s at most).
    pub fn grow(&self, volume: &str, array: &str) -> Result<(), String> {
        for _ in 0..40 {
            let (ok, out) = self.aoeraid(&["grow", volume, "--add", array, "--config", &self.cfg]);
            if ok {
                return Ok(());
            }
            if !out.contains("busy") {
                return Err(out);
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        Err("grow: busy for 10 s".into())
    }

    /// The daemon's /metrics text (empty if it does not answer).
    pub fn metrics(&self) -> String {
        let (host, port) = self.metrics_listen.split_once(':').expect("host:port");
        let script = format!(
            "exec 3<>/dev/tcp/{host}/{port}; printf 'GET /metrics HTTP/1.0\\r\\n\\r\\n' >&3; cat <&3"
        );
        self.lab.run("bash", &["-c", &script]).unwrap_or_default()
    }

    /// Every event the event program recorded, one line each.
    pub fn events(&self) -> String {
        std::fs::read_to_string(&self.events).unwrap_or_default()
    }
}

/// The value of the one series `series` (name and labels as printed) in
/// Prometheus text, if present.
pub fn metric(metrics: &str, series: &str) -> Option<u64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// The sum over every series of metric `name` whose labels contain `label`
/// (e.g. `side="backend"`).
pub fn metric_sum(metrics: &str, name: &str, label: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.strip_prefix(name).is_some_and(|r| r.starts_with('{')))
        .filter(|l| l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}
