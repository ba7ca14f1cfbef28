//! A blade: one sparse backing file served by real `vblade` processes, one
//! per port (vblade binds exactly one interface). A dual-port blade is two
//! vblade processes with the same shelf.slot on the same file, each on its
//! own segment: to an initiator that is one device reachable through two
//! MACs, which is how the Linux driver and aoeraid see a multi-port shelf.
//! Both processes use pread/pwrite on one file, so the page cache keeps them
//! coherent, and `-s` (O_SYNC) makes every acknowledged write durable.

use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::impair::{self, Direction, Impairment};
use super::proc::{Proc, Registry};
use super::relay::{RelayStats, Relays};
use super::sh::{err, in_ns, ip, output, spawn_logged};
use super::{Port, Segment};

/// What to build. `BladeSpec::new(0, 3, 64 << 20)` = e0.3, 64 MiB, one port
/// on the back segment, `vblade -s`.
#[derive(Clone, Debug)]
pub struct BladeSpec {
    pub shelf: u16,
    pub slot: u8,
    pub size_bytes: u64,
    /// One port (and one vblade process) per segment.
    pub segments: Vec<Segment>,
    /// `-s`: O_SYNC writes (default on: the appliance relies on durable acks).
    pub sync: bool,
    /// `-b N`: advertised Buffer Count (vblade default 16).
    pub buffers: Option<u32>,
    /// Set with `aoecfg fset` after every (re)start. vblade does not pad its
    /// 32-byte config reply and aoetools drop frames shorter than 60 bytes, so
    /// without a string of at least 28 bytes `aoeping`/`aoecfg` never see the
    /// blade. The default names the blade and is 32 bytes long. None = leave
    /// the string empty (then readiness is judged by the process staying up).
    pub config_string: Option<String>,
    /// More vblade options (e.g. `-d`, `-r`, `-m MAC`).
    pub extra_args: Vec<String>,
}

impl BladeSpec {
    pub fn new(shelf: u16, slot: u8, size_bytes: u64) -> BladeSpec {
        BladeSpec {
            shelf,
            slot,
            size_bytes,
            segments: vec![Segment::BACK],
            sync: true,
            buffers: None,
            config_string: Some(format!("{:.<32}", format!("aoelab blade e{shelf}.{slot} "))),
            extra_args: Vec::new(),
        }
    }
    /// Ports on the back segment and on the second back segment.
    pub fn dual_port(mut self) -> BladeSpec {
        self.segments = vec![Segment::BACK, Segment::BACK2];
        self
    }
    pub fn on(mut self, segments: &[Segment]) -> BladeSpec {
        self.segments = segments.to_vec();
        self
    }
    pub fn buffers(mut self, n: u32) -> BladeSpec {
        self.buffers = Some(n);
        self
    }
    pub fn no_sync(mut self) -> BladeSpec {
        self.sync = false;
        self
    }
    pub fn config_string(mut self, s: Option<&str>) -> BladeSpec {
        self.config_string = s.map(str::to_string);
        self
    }
    pub fn arg(mut self, a: &str) -> BladeSpec {
        self.extra_args.push(a.to_string());
        self
    }
}

pub struct Blade {
    spec: BladeSpec,
    ns: String,
    path: PathBuf,
    log_dir: PathBuf,
    mtu: u32,
    ports: Vec<Port>,
    procs: Mutex<Vec<Proc>>,
    registry: Registry,
    relays: Arc<Relays>,
    starts: Arc<AtomicU32>,
}

impl Blade {
    pub(crate) fn create(
        spec: BladeSpec,
        ns: &str,
        dir: &Path,
        mtu: u32,
        ports: Vec<Port>,
        registry: &Registry,
        relays: &Arc<Relays>,
    ) -> io::Result<Blade> {
        let path = dir.join(format!("blade-e{}.{}.img", spec.shelf, spec.slot));
        let f = OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(&path)?;
        f.set_len(spec.size_bytes)?;
        let b = Blade {
            spec,
            ns: ns.to_string(),
            path,
            log_dir: dir.join("logs"),
            mtu,
            ports,
            procs: Mutex::new(Vec::new()),
            registry: registry.clone(),
            relays: relays.clone(),
            starts: Arc::new(AtomicU32::new(0)),
        };
        b.start()?;
        Ok(b)
    }

    pub fn shelf(&self) -> u16 {
        self.spec.shelf
    }
    pub fn slot(&self) -> u8 {
        self.spec.slot
    }
    /// "e0.3"
    pub fn name(&self) -> String {
        format!("e{}.{}", self.spec.shelf, self.spec.slot)
    }
    pub fn spec(&self) -> &BladeSpec {
        &self.spec
    }
    /// The backing file (sparse); read it to check what the blade stored.
    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn size_bytes(&self) -> io::Result<u64> {
        Ok(std::fs::metadata(&self.path)?.len())
    }
    /// Sectors vblade exports (a partial last sector is not exported).
    pub fn sectors(&self) -> io::Result<u64> {
        Ok(self.size_bytes()? / 512)
    }
    pub fn ports(&self) -> &[Port] {
        &self.ports
    }
    /// MAC of port `port`'s blade-side interface (what initiators see as source).
    pub fn mac(&self, port: usize) -> io::Result<String> {
        let p = self.port(port)?;
        super::read_mac(&self.ns, &p.iface)
    }

    fn port(&self, port: usize) -> io::Result<&Port> {
        self.ports
            .get(port)
            .ok_or_else(|| err(format!("{} has no port {port}", self.name())))
    }

    fn procs(&self) -> MutexGuard<'_, Vec<Proc>> {
        self.procs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// PIDs of the vblade processes (one per port) while they run.
    pub fn pids(&self) -> Vec<u32> {
        self.procs()
            .iter_mut()
            .filter_map(|p| p.is_running().then(|| p.pid()))
            .collect()
    }
    /// True if every port's vblade is running.
    pub fn is_running(&self) -> bool {
        let mut procs = self.procs();
        !procs.is_empty() && procs.iter_mut().all(|p| p.is_running())
    }
    /// vblade output of the current (or last) run, all ports.
    pub fn log(&self) -> String {
        self.procs()
            .iter()
            .map(|p| p.log())
            .collect::<Vec<_>>()
            .join("")
    }

    fn start(&self) -> io::Result<()> {
        let n = self.starts.fetch_add(1, Ordering::Relaxed);
        let mut started = Vec::new();
        for (i, port) in self.ports.iter().enumerate() {
            let mut cmd = in_ns(&self.ns, "vblade");
            if self.spec.sync {
                cmd.arg("-s");
            }
            if let Some(b) = self.spec.buffers {
                cmd.arg("-b").arg(b.to_string());
            }
            cmd.args(&self.spec.extra_args);
            cmd.arg(self.spec.shelf.to_string())
                .arg(self.spec.slot.to_string())
                .arg(&port.iface)
                .arg(&self.path);
            let log = self
                .log_dir
                .join(format!("vblade-{}-p{i}-run{n}.log", self.name()));
            let child = spawn_logged(&mut cmd, &log, "vblade")?;
            started.push(Proc::new(
                &format!("vblade {} port {i}", self.name()),
                child,
                &self.registry,
                log,
            ));
        }
        let mut procs = self.procs();
        *procs = started;
        for (i, p) in procs.iter_mut().enumerate() {
            self.wait_ready(i, p)?;
        }
        Ok(())
    }

    fn wait_ready(&self, port: usize, p: &mut Proc) -> io::Result<()> {
        let bridge = self.ports[port].segment.bridge();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = p.try_wait()? {
                return Err(err(format!(
                    "{} exited at start ({st}): {}",
                    p.name(),
                    p.log().trim()
                )));
            }
            match &self.spec.config_string {
                None => {
                    // Nothing observable to wait for: give it time to open
                    // its socket and check it is still alive.
                    sleep(Duration::from_millis(200));
                    return match p.try_wait()? {
                        None => Ok(()),
                        Some(st) => Err(err(format!(
                            "{} exited at start ({st}): {}",
                            p.name(),
                            p.log()
                        ))),
                    };
                }
                Some(s) => {
                    let out = output(
                        in_ns(&self.ns, "aoecfg")
                            .args(["-t", "1", "-c", "fset", "-s", s])
                            .arg(self.spec.shelf.to_string())
                            .arg(self.spec.slot.to_string())
                            .arg(bridge),
                    )?;
                    if out.status.success()
                        && String::from_utf8_lossy(&out.stdout).contains(s.as_str())
                    {
                        return Ok(());
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(err(format!(
                    "{} did not answer aoecfg fset on {bridge} within 10 s",
                    p.name()
                )));
            }
            sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL every vblade of this blade (the blade "dies"; its file stays).
    pub fn kill(&self) -> io::Result<()> {
        for p in self.procs().iter_mut() {
            p.kill()?;
        }
        Ok(())
    }
    /// SIGSTOP: the blade stops answering but keeps its state.
    pub fn stop(&self) -> io::Result<()> {
        for p in self.procs().iter_mut() {
            p.signal(libc::SIGSTOP)?;
        }
        Ok(())
    }
    /// SIGCONT after `stop`.
    pub fn cont(&self) -> io::Result<()> {
        for p in self.procs().iter_mut() {
            p.signal(libc::SIGCONT)?;
        }
        Ok(())
    }
    /// Kills what still runs and starts fresh vblade processes on the same
    /// file (same shelf.slot, ports, options); returns once they answer.
    pub fn restart(&self) -> io::Result<()> {
        self.kill()?;
        self.start()
    }
    /// Truncates/extends the backing file. vblade reads the size only at
    /// start, so `restart()` afterwards to export the new size.
    pub fn set_len(&self, bytes: u64) -> io::Result<()> {
        OpenOptions::new()
            .write(true)
            .open(&self.path)?
            .set_len(bytes)
    }

    /// Sets (replacing what was there) the impairment of direction `dir`
    /// on every port. `Direction::Both` applies `imp` to each direction.
    pub fn impair(&self, dir: Direction, imp: &Impairment) -> io::Result<()> {
        for i in 0..self.ports.len() {
            self.impair_port(i, dir, imp)?;
        }
        Ok(())
    }
    pub fn impair_port(&self, port: usize, dir: Direction, imp: &Impairment) -> io::Result<()> {
        let p = self.port(port)?;
        if matches!(dir, Direction::ToBlade | Direction::Both) {
            impair::impair_port(&self.relays, &self.ns, self.mtu, p, true, imp)?;
        }
        if matches!(dir, Direction::FromBlade | Direction::Both) {
            impair::impair_port(&self.relays, &self.ns, self.mtu, p, false, imp)?;
        }
        Ok(())
    }
    /// Removes impairments in both directions on every port.
    pub fn clear_impairment(&self) -> io::Result<()> {
        self.impair(Direction::Both, &Impairment::default())
    }
    /// Frame counts of the netem relay on `port`: (to the blade, from the
    /// blade); None while the port has no netem.
    pub fn netem_stats(&self, port: usize) -> Option<(RelayStats, RelayStats)> {
        self.relays.stats(&self.port(port).ok()?.iface)
    }
    /// `tc qdisc show` of both ends of every port (the tbf part).
    pub fn qdiscs(&self) -> io::Result<String> {
        let mut s = String::new();
        for p in &self.ports {
            s.push_str(&impair::show(&self.ns, &p.iface)?);
            s.push_str(&impair::show(&self.ns, &p.peer)?);
        }
        Ok(s)
    }
    /// Takes port `port`'s link down: the bridge-side end goes down, so the
    /// blade's interface loses carrier and nothing passes. (Downing the
    /// blade's own interface instead would make vblade exit: its read fails
    /// with ENETDOWN — "read network: Network is down".)
    pub fn link_down(&self, port: usize) -> io::Result<()> {
        ip(&self.ns, &["link", "set", &self.port(port)?.peer, "down"]).map(drop)
    }
    /// Brings the link back; returns once the bridge forwards on it again.
    pub fn link_up(&self, port: usize) -> io::Result<()> {
        let p = self.port(port)?;
        ip(&self.ns, &["link", "set", &p.peer, "up"])?;
        if self.relays.stats(&p.iface).is_none() {
            super::wait_forwarding(&self.ns, &p.iface, &p.peer)?;
        }
        Ok(())
    }
}
