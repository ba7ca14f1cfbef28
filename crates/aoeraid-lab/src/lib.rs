//! The aoeraid test lab: real network namespaces, bridges, veth pairs, real
//! `vblade` blades, `tc` impairments, packet captures and real Linux clients
//! in qemu, a raw-socket AoE client, and `aoeraid` itself run inside a lab.
//! A dev-dependency of the tests that need root: `use aoeraid_lab as lab;`.
//! See `README.md` beside this crate.
//!
//! Everything a `Lab` creates lives in one namespace of its own (unique per
//! process, lab and test name), so tests run in parallel and interface names
//! inside it can be short and fixed. Dropping the lab — also while a test
//! panics — kills every process it started (by PID), deletes the namespace
//! (and with it every veth, bridge and tap) and removes its temp dir.

mod acked;
mod appliance;
mod blade;
mod capture;
mod client;
mod config;
mod daemon;
pub mod frames;
mod ha;
mod impair;
mod netns;
mod ocf;
mod pacemaker;
mod proc;
mod raw;
mod relay;
mod sh;
mod tempdir;

pub use acked::{AckedWriter, CheckStats, WriteStats};
pub use appliance::{metric, metric_sum, Appliance};
pub use blade::{Blade, BladeSpec};
pub use capture::{Capture, CaptureFile, CaptureSummary};
pub use client::{assert_fsck_clean, ClientResult, ClientSpec, GuestControl, Outcome, Workload};
pub use config::{
    ApplianceSection, Array, Backend, Bitmap, Config, Export, Frontend, Level, RebuildRates, Volume,
};
pub use daemon::{serve_counter, Daemon, ServeExport};
pub use ha::Takeover;
pub use impair::{Direction, Impairment, Netem, Tbf};
pub use ocf::{OcfResource, OcfRun, OCF_ROOT, OCF_SUCCESS};
pub use pacemaker::{PacemakerCluster, PacemakerNode, NODE_FILES};
pub use proc::Proc;
pub use raw::RawClient;
pub use relay::RelayStats;
pub use sh::run as run_command;
pub use tempdir::{write_script, TempDir};

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Once};

use proc::Registry;
use relay::Relays;
use sh::{err, in_ns, ip, run};

/// True if we are root. Otherwise prints "skipped: needs root" and the caller
/// returns early: `if !lab::require_root("my_test") { return; }`.
pub fn require_root(test: &str) -> bool {
    // SAFETY: geteuid() has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("{test}: skipped: needs root (network namespaces, vblade, qemu taps)");
    }
    root
}

/// True if every tool is installed; otherwise prints which are missing and
/// the test should return early (CI installs them all).
pub fn require_tools(test: &str, tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| !sh::have_tool(t))
        .collect();
    if !missing.is_empty() {
        eprintln!("{test}: skipped: missing tools {missing:?} (see .ci/run)");
    }
    missing.is_empty()
}

/// An L2 segment = one Linux bridge in the lab namespace (STP off, forward
/// delay 0, multicast snooping off), created on first use.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Segment(Cow<'static, str>);

impl Segment {
    /// Back-end segment: blades and the appliance's initiator ports.
    pub const BACK: Segment = Segment(Cow::Borrowed("back0"));
    /// Second back-end segment (second path of dual-port blades).
    pub const BACK2: Segment = Segment(Cow::Borrowed("back1"));
    /// Front-end segment: the appliance's target ports and the clients.
    pub const FRONT: Segment = Segment(Cow::Borrowed("front0"));

    /// Any other bridge name (1..=15 characters, [a-z0-9_-]).
    pub fn named(name: &str) -> io::Result<Segment> {
        valid_ifname(name)?;
        Ok(Segment(Cow::Owned(name.to_string())))
    }
    /// The bridge interface (also usable as a port on the segment itself).
    pub fn bridge(&self) -> &str {
        &self.0
    }
}

fn valid_ifname(name: &str) -> io::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(err(format!(
            "bad interface name '{name}' (1-15 of [A-Za-z0-9._-])"
        )))
    }
}

/// A veth port: `iface` (used by a blade, the code under test or a client)
/// whose other end `peer` is a port of `segment`'s bridge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Port {
    pub iface: String,
    pub peer: String,
    pub segment: Segment,
}

#[derive(Clone, Debug)]
pub struct LabConfig {
    /// MTU of every link, bridge and tap the lab creates (1500 or 9000).
    pub mtu: u32,
    /// Where the per-lab temp dir goes. Default: /dev/shm (tmpfs) when it
    /// exists, else std::env::temp_dir(). Blades run `vblade -s` (O_SYNC):
    /// on a disk-backed file that is one synchronous disk write per 1 KiB
    /// frame (0.4 MB/s measured here), on tmpfs it costs nothing and a
    /// killed vblade still loses no acknowledged write.
    pub dir_base: Option<PathBuf>,
}

impl Default for LabConfig {
    fn default() -> LabConfig {
        LabConfig {
            mtu: 1500,
            dir_base: None,
        }
    }
}

static LAB_COUNTER: AtomicU32 = AtomicU32::new(0);
const NS_PREFIX: &str = "aoelab-";

pub struct Lab {
    ns: String,
    dir: PathBuf,
    mtu: u32,
    registry: Registry,
    // Declared before the namespace cleanup in Drop order: blades are killed
    // by Lab::drop explicitly, fields drop afterwards.
    blades: Vec<Blade>,
    segments: Mutex<BTreeSet<Segment>>,
    ports: Mutex<Vec<Port>>,
    relays: Arc<Relays>,
    port_counter: AtomicU32,
    proc_counter: AtomicU32,
    guest_counter: AtomicU32,
}

impl Lab {
    /// A lab with no blades yet. `test` goes into the namespace name.
    pub fn new(test: &str, cfg: LabConfig) -> io::Result<Lab> {
        static SWEEP: Once = Once::new();
        SWEEP.call_once(sweep_stale_labs);
        if !(68..=65535).contains(&cfg.mtu) {
            return Err(err(format!("MTU {} out of range", cfg.mtu)));
        }
        let tag: String = test
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .take(24)
            .collect();
        let ns = format!(
            "{NS_PREFIX}{}-{}-{tag}",
            std::process::id(),
            LAB_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let base = cfg.dir_base.clone().unwrap_or_else(default_dir_base);
        let dir = base.join(&ns);
        // From here on Drop cleans up whatever part got built.
        let lab = Lab {
            ns: ns.clone(),
            dir,
            mtu: cfg.mtu,
            registry: Registry::default(),
            blades: Vec::new(),
            segments: Mutex::new(BTreeSet::new()),
            ports: Mutex::new(Vec::new()),
            relays: Arc::new(Relays::new(&ns, cfg.mtu)),
            port_counter: AtomicU32::new(0),
            proc_counter: AtomicU32::new(0),
            guest_counter: AtomicU32::new(0),
        };
        fs::create_dir_all(lab.dir.join("logs"))?;
        run(Command::new("ip").args(["netns", "add", &lab.ns]))?;
        // No IPv6 (no ND/MLD chatter in captures); AoE needs no IP at all.
        for key in ["all", "default"] {
            run(in_ns(&lab.ns, "sysctl")
                .args(["-qw", &format!("net.ipv6.conf.{key}.disable_ipv6=1")]))?;
        }
        ip(&lab.ns, &["link", "set", "lo", "up"])?;
        Ok(lab)
    }

    /// `Lab::new` + the given blades.
    pub fn with_blades(test: &str, mtu: u32, blades: &[BladeSpec]) -> io::Result<Lab> {
        let mut lab = Lab::new(
            test,
            LabConfig {
                mtu,
                ..LabConfig::default()
            },
        )?;
        for b in blades {
            lab.add_blade(b.clone())?;
        }
        Ok(lab)
    }

    /// Blades e{S}.{L} for every shelf in `shelves` and slot in `slots`.
    pub fn grid(shelves: &[u16], slots: std::ops::Range<u8>, size_bytes: u64) -> Vec<BladeSpec> {
        shelves
            .iter()
            .flat_map(|&s| slots.clone().map(move |l| BladeSpec::new(s, l, size_bytes)))
            .collect()
    }

    pub fn ns(&self) -> &str {
        &self.ns
    }
    /// Per-lab temp dir (blade files, logs, captures, guest consoles).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn mtu(&self) -> u32 {
        self.mtu
    }

    /// Creates the blade's file and ports and starts its vblade(s); returns
    /// once each answers (see `BladeSpec::config_string`).
    pub fn add_blade(&mut self, spec: BladeSpec) -> io::Result<&Blade> {
        if self
            .blades
            .iter()
            .any(|b| b.shelf() == spec.shelf && b.slot() == spec.slot)
        {
            return Err(err(format!(
                "blade e{}.{} already exists",
                spec.shelf, spec.slot
            )));
        }
        if spec.segments.is_empty() {
            return Err(err("a blade needs at least one segment"));
        }
        let mut ports = Vec::new();
        for (i, seg) in spec.segments.iter().enumerate() {
            let iface = if i == 0 {
                format!("e{}-{}", spec.shelf, spec.slot)
            } else {
                format!("e{}-{}-{i}", spec.shelf, spec.slot)
            };
            let peer = format!("p{iface}");
            ports.push(self.veth_on(seg, &iface, &peer)?);
        }
        let blade = Blade::create(
            spec,
            &self.ns,
            &self.dir,
            self.mtu,
            ports,
            &self.registry,
            &self.relays,
        )?;
        self.blades.push(blade);
        Ok(self.blades.last().expect("just pushed"))
    }

    pub fn blades(&self) -> &[Blade] {
        &self.blades
    }
    /// The blade eSHELF.SLOT; panics if the lab has none (a test bug).
    pub fn blade(&self, shelf: u16, slot: u8) -> &Blade {
        self.blades
            .iter()
            .find(|b| b.shelf() == shelf && b.slot() == slot)
            .unwrap_or_else(|| panic!("lab has no blade e{shelf}.{slot}"))
    }

    fn ensure_segment(&self, seg: &Segment) -> io::Result<()> {
        let mut segs = self.segments.lock().unwrap_or_else(|e| e.into_inner());
        if segs.contains(seg) {
            return Ok(());
        }
        let br = seg.bridge();
        let mtu = self.mtu.to_string();
        // No STP, no forwarding delay, no multicast snooping (its IGMP
        // queries would be the only non-AoE frames on the segment).
        ip(
            &self.ns,
            &[
                "link",
                "add",
                br,
                "type",
                "bridge",
                "stp_state",
                "0",
                "forward_delay",
                "0",
                "mcast_snooping",
                "0",
            ],
        )?;
        ip(&self.ns, &["link", "set", br, "mtu", &mtu])?;
        ip(&self.ns, &["link", "set", br, "up"])?;
        segs.insert(seg.clone());
        Ok(())
    }

    /// veth `iface` <-> `peer`, `peer` enslaved to `seg`, both up at lab MTU.
    fn veth_on(&self, seg: &Segment, iface: &str, peer: &str) -> io::Result<Port> {
        self.ensure_segment(seg)?;
        self.veth(iface, peer)?;
        ip(&self.ns, &["link", "set", peer, "master", seg.bridge()])?;
        wait_forwarding(&self.ns, iface, peer)?;
        let port = Port {
            iface: iface.to_string(),
            peer: peer.to_string(),
            segment: seg.clone(),
        };
        self.ports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(port.clone());
        Ok(port)
    }

    /// A new port `{prefix}{n}` on `seg` (its bridge-side peer is `p{name}`);
    /// returns the name of the end the code under test uses.
    pub fn add_port(&self, seg: &Segment, prefix: &str) -> io::Result<String> {
        let n = self.port_counter.fetch_add(1, Ordering::Relaxed);
        let name = format!("{prefix}{n}");
        self.veth_on(seg, &name, &format!("p{name}"))?;
        Ok(name)
    }
    /// An initiator port (e.g. "ini0") on a back segment.
    pub fn add_initiator_port(&self, seg: &Segment) -> io::Result<String> {
        self.add_port(seg, "ini")
    }
    /// A port on the front segment for a target (e.g. "tgt1").
    pub fn add_front_port(&self) -> io::Result<String> {
        self.add_port(&Segment::FRONT, "tgt")
    }
    /// The bridge of `seg`, created if needed.
    pub fn segment(&self, seg: &Segment) -> io::Result<String> {
        self.ensure_segment(seg)?;
        Ok(seg.bridge().to_string())
    }

    /// Interface names of [`Lab::veth_pair`].
    pub const VETH_A: &'static str = "va";
    pub const VETH_B: &'static str = "vb";

    /// A lab holding nothing but the veth pair `va` <-> `vb` (no bridge),
    /// both up at `mtu`: two raw interfaces wired to each other.
    pub fn veth_pair(test: &str, mtu: u32) -> io::Result<Lab> {
        let lab = Lab::new(
            test,
            LabConfig {
                mtu,
                ..LabConfig::default()
            },
        )?;
        lab.veth(Lab::VETH_A, Lab::VETH_B)?;
        wait_up(&lab.ns, Lab::VETH_A, Lab::VETH_B)?;
        Ok(lab)
    }

    /// veth `a` <-> `b`, both up at lab MTU.
    fn veth(&self, a: &str, b: &str) -> io::Result<()> {
        valid_ifname(a)?;
        valid_ifname(b)?;
        let mtu = self.mtu.to_string();
        ip(
            &self.ns,
            &[
                "link", "add", a, "mtu", &mtu, "type", "veth", "peer", "name", b, "mtu", &mtu,
            ],
        )?;
        ip(&self.ns, &["link", "set", a, "up"])?;
        ip(&self.ns, &["link", "set", b, "up"])?;
        Ok(())
    }

    /// Runs `f` on a new thread that entered the lab's namespace (sockets it
    /// opens stay there); a panic in `f` goes on in the caller.
    pub fn in_ns<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        netns::run_in(&self.ns, f).expect("enter the lab namespace")
    }

    /// `ip netns exec <ns> program`: add args and run or spawn it yourself.
    pub fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        in_ns(&self.ns, program)
    }
    /// Runs `program args` in the namespace to completion (any exit status).
    pub fn output(&self, program: &str, args: &[&str]) -> io::Result<Output> {
        sh::output(self.cmd(program).args(args))
    }
    /// Runs `program args` in the namespace, requires success, returns stdout.
    pub fn run(&self, program: &str, args: &[&str]) -> io::Result<String> {
        run(self.cmd(program).args(args))
    }
    /// Starts a long-running process (build it with `cmd`). Output goes to
    /// `<dir>/logs/<name>-<n>.log`; the returned handle kills it on drop, and
    /// the lab kills it on its own drop if the handle is still around.
    pub fn spawn(&self, name: &str, mut cmd: Command) -> io::Result<Proc> {
        let n = self.proc_counter.fetch_add(1, Ordering::Relaxed);
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let log = self.dir.join("logs").join(format!("{safe}-{n}.log"));
        let child = sh::spawn_logged(&mut cmd, &log, name)?;
        Ok(Proc::new(name, child, &self.registry, log))
    }

    /// Link up/down of any lab interface.
    pub fn set_link(&self, iface: &str, up: bool) -> io::Result<()> {
        ip(
            &self.ns,
            &["link", "set", iface, if up { "up" } else { "down" }],
        )
        .map(drop)
    }
    pub fn set_mtu(&self, iface: &str, mtu: u32) -> io::Result<()> {
        ip(&self.ns, &["link", "set", iface, "mtu", &mtu.to_string()]).map(drop)
    }
    pub fn mac(&self, iface: &str) -> io::Result<String> {
        read_mac(&self.ns, iface)
    }
    /// The veth port `iface` belongs to (as its own end or its bridge-side peer).
    pub fn port_of(&self, iface: &str) -> Option<Port> {
        let ports = self.ports.lock().unwrap_or_else(|e| e.into_inner());
        ports
            .iter()
            .find(|p| p.iface == iface || p.peer == iface)
            .cloned()
    }
    /// Impairment of frames leaving `iface` (replaces what was there).
    /// `iface` is either end of a lab veth port: the port's own end means
    /// "from the port", its bridge-side peer "to the port". A rate limit alone
    /// works on any interface (taps too).
    pub fn impair(&self, iface: &str, imp: &Impairment) -> io::Result<()> {
        match self.port_of(iface) {
            Some(p) => {
                impair::impair_port(&self.relays, &self.ns, self.mtu, &p, p.peer == iface, imp)
            }
            None if imp.netem.is_none() => {
                impair::set_tbf(&self.ns, iface, imp.tbf.as_ref(), self.mtu)
            }
            None => Err(err(format!(
                "{iface} is not a lab veth port: netem needs one"
            ))),
        }
    }
    pub fn clear_impairment(&self, iface: &str) -> io::Result<()> {
        self.impair(iface, &Impairment::default())
    }
    /// netem relay counters of the port `iface` belongs to: (to, from) the port.
    pub fn netem_stats(&self, iface: &str) -> Option<(RelayStats, RelayStats)> {
        self.relays.stats(&self.port_of(iface)?.iface)
    }
    /// `tc qdisc show dev IFACE`
    pub fn qdisc(&self, iface: &str) -> io::Result<String> {
        impair::show(&self.ns, iface)
    }

    /// Writes a file in the lab dir (configs for the code under test).
    pub fn write_file(&self, name: &str, contents: &str) -> io::Result<PathBuf> {
        let p = self.dir.join(name);
        fs::write(&p, contents)?;
        Ok(p)
    }
    /// A sparse file of `bytes` in the lab dir (a backing store for a target).
    pub fn sparse_file(&self, name: &str, bytes: u64) -> io::Result<PathBuf> {
        let p = self.dir.join(name);
        fs::File::create(&p)?.set_len(bytes)?;
        Ok(p)
    }
}

/// A blade's Query Config reply as `aoeping -v` printed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PingReply {
    /// Source MAC, lower-case hex without separators (as aoeping prints it).
    pub mac: String,
    pub buffer_count: u16,
    pub firmware: u16,
    pub sector_count: u8,
    pub config: String,
}

impl Lab {
    /// `aoeping -v -s TIMEOUT SHELF SLOT IFACE` from `iface` in the lab.
    /// Err if nothing answered in time (note: aoetools ignore replies shorter
    /// than 60 bytes; see `BladeSpec::config_string`).
    pub fn aoeping(
        &self,
        iface: &str,
        shelf: u16,
        slot: u8,
        timeout_s: u32,
    ) -> io::Result<PingReply> {
        let out = self.output(
            "aoeping",
            &[
                "-v",
                "-s",
                &timeout_s.max(1).to_string(),
                &shelf.to_string(),
                &slot.to_string(),
                iface,
            ],
        )?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(err(format!(
                "aoeping e{shelf}.{slot} via {iface}: no reply ({})",
                out.status
            )));
        }
        parse_aoeping(&text).ok_or_else(|| err(format!("cannot parse aoeping output: {text}")))
    }
}

fn parse_aoeping(text: &str) -> Option<PingReply> {
    let mut bytes = Vec::new();
    let mut in_dump = false;
    let mut mac = None;
    for line in text.lines() {
        if line.starts_with("config query response") {
            in_dump = true;
        } else if let Some(rest) = line.strip_prefix("found ") {
            in_dump = false;
            mac = rest.rsplit(' ').next().map(str::to_string);
        } else if in_dump {
            bytes.extend(
                line.split_whitespace()
                    .filter_map(|h| u8::from_str_radix(h, 16).ok()),
            );
        }
    }
    if bytes.len() < 32 {
        return None;
    }
    let be16 = |i: usize| u16::from_be_bytes([bytes[i], bytes[i + 1]]);
    let len = usize::from(be16(30)).min(bytes.len() - 32);
    Some(PingReply {
        mac: mac?,
        buffer_count: be16(24),
        firmware: be16(26),
        sector_count: bytes[28],
        config: String::from_utf8_lossy(&bytes[32..32 + len]).into_owned(),
    })
}

/// Waits until `iface` is operationally up and its bridge-side `peer`
/// forwards. Carrier changes reach the bridge through the kernel's linkwatch,
/// which batches them for up to a second; a frame sent before that is lost.
pub(crate) fn wait_forwarding(ns: &str, iface: &str, peer: &str) -> io::Result<()> {
    // brport/state 3 = BR_STATE_FORWARDING
    wait_sysfs(
        ns,
        &[
            (format!("/sys/class/net/{iface}/operstate"), "up"),
            (format!("/sys/class/net/{peer}/brport/state"), "3"),
        ],
    )
}

/// Waits until both ends of a veth pair are operationally up: until
/// linkwatch has seen the carrier, the device's queue discipline is still the
/// one that drops every frame.
fn wait_up(ns: &str, a: &str, b: &str) -> io::Result<()> {
    wait_sysfs(
        ns,
        &[
            (format!("/sys/class/net/{a}/operstate"), "up"),
            (format!("/sys/class/net/{b}/operstate"), "up"),
        ],
    )
}

/// Polls sysfs files in the namespace until each holds its wanted line (10 s).
fn wait_sysfs(ns: &str, want: &[(String, &str)]) -> io::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let state = sh::output(in_ns(ns, "cat").args(want.iter().map(|(f, _)| f)))?;
        let text = String::from_utf8_lossy(&state.stdout);
        if text.lines().eq(want.iter().map(|(_, w)| *w)) {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(err(format!("{want:?} not reached after 10 s: {text:?}")));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn default_dir_base() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

fn read_mac(ns: &str, iface: &str) -> io::Result<String> {
    let out = run(in_ns(ns, "cat").arg(format!("/sys/class/net/{iface}/address")))?;
    Ok(out.trim().to_string())
}

impl Drop for Lab {
    fn drop(&mut self) {
        for b in &self.blades {
            let _ = b.kill();
        }
        self.relays.stop_all();
        self.registry.kill_all();
        // Daemons that detached from what the lab spawned (an OCF agent's start)
        // are known only as members of the namespace.
        kill_members(&self.ns);
        let _ = sh::output(Command::new("ip").args(["netns", "del", &self.ns]));
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Namespaces left by lab processes that no longer exist (a test binary
/// killed with SIGKILL cannot run Drop): kill what still runs inside them —
/// only processes such a lab started live there — and delete them.
fn sweep_stale_labs() {
    let Ok(list) = run(Command::new("ip").args(["netns", "list"])) else {
        return;
    };
    for line in list.lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(rest) = name.strip_prefix(NS_PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        kill_members(name);
        let _ = sh::output(Command::new("ip").args(["netns", "del", name]));
        let _ = fs::remove_dir_all(default_dir_base().join(name));
    }
}

/// SIGKILLs every process inside lab namespace `ns`: only processes a lab
/// started (and what they started) live there.
fn kill_members(ns: &str) {
    if let Ok(pids) = run(Command::new("ip").args(["netns", "pids", ns])) {
        for p in pids
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            // SAFETY: kill(2) with integer arguments; the PID was just listed
            // as a member of a lab namespace.
            unsafe { libc::kill(p, libc::SIGKILL) };
        }
    }
}
