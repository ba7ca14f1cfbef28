//! Real Linux clients: Debian's kernel in qemu-system-x86_64 running the
//! in-kernel `aoe` initiator against whatever answers on a lab segment.
//!
//! Each guest gets a tap on the segment's bridge (inside the lab namespace;
//! qemu itself runs there via `ip netns exec`), its own MAC, the shared base
//! initramfs plus a per-run archive with its workloads, and a serial console
//! written to `<lab dir>/guest-N.console`. The guest's /init (see
//! realclient/guest/init) reports results on that console; this module
//! follows the consoles while the guests run, hands every line to an optional
//! hook (so a test can act on `REALCLIENT-EVENT` lines, e.g. grow an export
//! when the revalidate workload is ready), and parses the outcome.

mod cpio;
mod image;
mod report;

pub use report::{ClientResult, Outcome};

use std::fs;
use std::io;
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::proc::Proc;
use super::sh::{err, ip};
use super::{Lab, Segment};

/// A guest workload (busybox sh script run by the guest's /init).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Workload {
    /// 64 MiB (SMOKE_MB) per-sector-unique pattern, O_DIRECT write, read,
    /// compare; sub-sector writes. Each guest uses region index*SMOKE_MB.
    Smoke,
    /// mkfs.ext4, files, umount, e2fsck -fn clean, remount, SHA-256 (alone only).
    Ext4,
    /// Guest i writes+verifies share i, barrier through marker sectors in the
    /// device's last MiB, then verifies every other guest's share.
    Halves,
    /// Emits `REALCLIENT-EVENT revalidate-ready`; the host grows the export;
    /// the guest revalidates until the size changes (REVALIDATE_EXPECT_SECTORS).
    Revalidate,
    /// sysfs state "up" and aoe-stat listing the device up; driver view as metrics.
    Stat,
    /// Joins the guests of this boot into a corosync (knet) cluster on
    /// 10.88.0.0/24 (an address on eth0; guest i is 10.88.0.(i+1), node
    /// id i+1) and starts dlm_controld over TCP. Needs the cluster layer
    /// ([`ClientSpec::cluster_node`]). Env: CLUSTER_NAME (aoelab),
    /// CLUSTER_WAIT (s for every node to join, 180), DLM_FENCING (0: off;
    /// otherwise /etc/dlm/dlm.conf.extra lines are used).
    Cluster,
    /// GFS2 on the device from every guest at once: guest 0 makes it, all
    /// mount, write per-node files, append to one shared file under flock,
    /// rename and unlink in a shared directory, verify every node's data,
    /// unmount; guest 0 runs `fsck.gfs2 -n`. See realclient/workloads/gfs2.sh.
    Gfs2,
    /// ext4, then files written (fsynced) and read back with O_DIRECT in a
    /// stream while the host moves the export to the other appliance of an
    /// HA pair at `REALCLIENT-EVENT takeover-writing`; every file verified,
    /// e2fsck clean, no kernel I/O error; the longest gap as `max_gap_s`.
    /// See realclient/workloads/takeover.sh.
    Takeover,
    /// Any busybox sh script; `name` is [A-Za-z0-9_-]+. Source
    /// /lib/realclient/common.sh for metric/info/fail/pattern helpers.
    Script { name: String, body: String },
}

impl Workload {
    pub fn name(&self) -> &str {
        match self {
            Workload::Smoke => "smoke",
            Workload::Ext4 => "ext4",
            Workload::Halves => "halves",
            Workload::Revalidate => "revalidate",
            Workload::Stat => "stat",
            Workload::Cluster => "cluster",
            Workload::Gfs2 => "gfs2",
            Workload::Takeover => "takeover",
            Workload::Script { name, .. } => name,
        }
    }
    fn body(&self) -> io::Result<Vec<u8>> {
        match self {
            Workload::Script { name, body } => {
                if name.is_empty()
                    || !name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    return Err(err(format!(
                        "workload name '{name}' must be [A-Za-z0-9_-]+"
                    )));
                }
                Ok(body.clone().into_bytes())
            }
            w => image::workload_script(w.name()),
        }
    }
}

/// One guest to boot.
#[derive(Clone, Debug)]
pub struct ClientSpec {
    /// AoE address the guest waits for, "eS.L".
    pub target: String,
    pub workloads: Vec<Workload>,
    /// Exported to the workloads (SMOKE_MB, EXT4_BIG_MB, REVALIDATE_EXPECT_SECTORS, ...).
    pub env: Vec<(String, String)>,
    /// MTU of the tap and guest eth0 (virtio host_mtu); default the lab's.
    pub mtu: Option<u32>,
    pub mem_mib: u32,
    /// Hard limit for the guest's whole run (then qemu is killed).
    pub timeout: Duration,
    pub segment: Segment,
    /// More NICs (eth1, eth2, ...), one per segment: several paths.
    pub extra_segments: Vec<Segment>,
    /// Extra aoe.ko parameters, e.g. "aoe_deadsecs=20 aoe_maxout=8".
    pub aoe_params: String,
    /// How long /init waits for the device to appear with a size.
    pub discover_wait: Duration,
    /// Extra kernel command line.
    pub cmdline: String,
    /// Add the cluster layer (corosync, dlm_controld, GFS2 tools and
    /// modules) to the image: see [`Workload::Cluster`].
    pub cluster: bool,
    /// Host programs copied into the guest's /usr/local/sbin (with the
    /// libraries of the ELF ones), e.g. the `aoeraid` under test.
    pub programs: Vec<std::path::PathBuf>,
}

impl ClientSpec {
    pub fn new(target: &str, workloads: &[Workload]) -> ClientSpec {
        ClientSpec {
            target: target.to_string(),
            workloads: workloads.to_vec(),
            env: Vec::new(),
            mtu: None,
            mem_mib: 512,
            timeout: Duration::from_secs(300),
            segment: Segment::FRONT,
            extra_segments: Vec::new(),
            aoe_params: String::new(),
            discover_wait: Duration::from_secs(30),
            cmdline: String::new(),
            cluster: false,
            programs: Vec::new(),
        }
    }
    /// A GFS2 cluster node: the cluster layer in the image, then the
    /// `cluster` workload (corosync + dlm_controld among all guests of the
    /// boot) before `workloads`.
    pub fn cluster_node(target: &str, workloads: &[Workload]) -> ClientSpec {
        let mut all = vec![Workload::Cluster];
        all.extend_from_slice(workloads);
        let mut spec = ClientSpec::new(target, &all);
        spec.cluster = true;
        spec
    }
    /// Copies a host program (and its libraries) into the guest.
    pub fn program(mut self, path: impl Into<std::path::PathBuf>) -> ClientSpec {
        self.programs.push(path.into());
        self
    }
    /// Smoke, ext4 and stat on `target`, then revalidate: the guest waits
    /// (event `revalidate-ready`) for the host to grow the export to `grown`
    /// bytes and expects that size.
    pub fn grow_check(target: &str, grown: u64) -> ClientSpec {
        let workloads = [
            Workload::Smoke,
            Workload::Ext4,
            Workload::Stat,
            Workload::Revalidate,
        ];
        ClientSpec::new(target, &workloads)
            .env("REVALIDATE_EXPECT_SECTORS", &(grown / 512).to_string())
    }
    pub fn env(mut self, key: &str, value: &str) -> ClientSpec {
        self.env.push((key.to_string(), value.to_string()));
        self
    }
    pub fn timeout(mut self, t: Duration) -> ClientSpec {
        self.timeout = t;
        self
    }
    pub fn mtu(mut self, mtu: u32) -> ClientSpec {
        self.mtu = Some(mtu);
        self
    }
}

fn valid_target(t: &str) -> bool {
    t.strip_prefix('e')
        .and_then(|r| r.split_once('.'))
        .is_some_and(|(s, l)| s.parse::<u16>().is_ok() && l.parse::<u8>().is_ok())
}

fn shell_quote(v: &str) -> String {
    format!("'{}'", v.replace('\'', "'\\''"))
}

/// What the host asks of the guests from its line hook
/// ([`Lab::boot_clients_ctl`]); applied as soon as the hook returns.
pub struct GuestControl {
    macs: Vec<String>,
    kills: Vec<usize>,
    reboots: Vec<usize>,
}

impl GuestControl {
    /// Guest `i`'s eth0 MAC (as the target sees it).
    pub fn mac(&self, i: usize) -> &str {
        &self.macs[i]
    }
    /// SIGKILLs guest `i`'s qemu: a node dying without a clean shutdown.
    pub fn kill(&mut self, i: usize) {
        self.kills.push(i);
    }
    /// Boots guest `i` again (after [`GuestControl::kill`]) with the same
    /// MAC, taps, image and settings; its /init sees `rc.boot=2` (3, ...)
    /// and its console continues in the same file.
    pub fn boot_again(&mut self, i: usize) {
        self.reboots.push(i);
    }
}

/// One guest's qemu, as launched (again, after a kill, with `boot` + 1).
struct Guest {
    n: u32,
    nics: Vec<(String, String)>,
    initrd: std::path::PathBuf,
    console: std::path::PathBuf,
    append: String,
    mem_mib: u32,
    mtu: u32,
    boot: u32,
}

struct Running {
    guest: Guest,
    proc: Proc,
    seen: usize,
    partial: String,
    started: Instant,
    deadline: Instant,
    wall: Option<Duration>,
    timed_out: bool,
    status: Option<std::process::ExitStatus>,
}

/// eth`k`'s MAC of guest number `n` (unique within a lab).
fn guest_mac(n: u32, k: usize) -> String {
    format!("52:54:00:a{k:x}:{:02x}:{:02x}", (n >> 8) & 0xff, n & 0xff)
}

/// What the whole boot shares: kernel, images, settings every guest gets.
struct Boot {
    kernel: std::path::PathBuf,
    base: Vec<u8>,
    cluster: Option<Vec<u8>>,
    seed: u32,
    accel: String,
    macs: Vec<String>,
}

impl Lab {
    /// Boots one guest and waits for it to finish.
    pub fn boot_client(&self, spec: ClientSpec) -> io::Result<ClientResult> {
        Ok(self.boot_clients_with(&[spec], |_, _| {})?.remove(0))
    }

    /// Boots one guest; `at_event` runs once, on this thread, at the guest's
    /// first `REALCLIENT-EVENT <event>` line (a workload waiting there for
    /// the host, e.g. `revalidate-ready`). Returns the result and whether
    /// `at_event` ran.
    pub fn boot_client_at(
        &self,
        spec: ClientSpec,
        event: &str,
        at_event: impl FnOnce(),
    ) -> io::Result<(ClientResult, bool)> {
        let line_wanted = format!("REALCLIENT-EVENT {event}");
        let mut hook = Some(at_event);
        let mut res = self.boot_clients_with(&[spec], |_, line| {
            if line.starts_with(&line_wanted) {
                if let Some(f) = hook.take() {
                    f();
                }
            }
        })?;
        Ok((res.remove(0), hook.is_none()))
    }

    /// Two guests at once on `target` at the lab's MTU, each writing and
    /// verifying its half with O_DIRECT and then the other's (the `halves`
    /// workload); asserts they both did, with the frame size the MTU allows.
    pub fn two_guests_halves(&self, target: &str, timeout: Duration) -> Vec<ClientResult> {
        let spec = ClientSpec::new(target, &[Workload::Halves, Workload::Stat]).timeout(timeout);
        let res = self.boot_clients(&[spec.clone(), spec]).expect("boot");
        // Every guest's summary before the first failure: a guest that waits
        // in vain for the other only says that the other is late.
        for r in &res {
            eprintln!(
                "{}{}",
                r.summary(),
                r.lines_with("REALCLIENT-INFO").join("\n")
            );
        }
        for r in &res {
            r.assert_passed();
            assert_eq!(r.metric("halves", "share_MB"), Some("16"));
            assert_eq!(r.metric("halves", "other_shares_verified"), Some("1"));
            r.assert_stat(self.mtu());
        }
        assert_ne!(res[0].mac, res[1].mac);
        res
    }

    /// Boots all guests at once (guest i gets AOE_GUEST_INDEX=i,
    /// AOE_GUEST_COUNT=len) and waits for all of them.
    pub fn boot_clients(&self, specs: &[ClientSpec]) -> io::Result<Vec<ClientResult>> {
        self.boot_clients_with(specs, |_, _| {})
    }

    /// Like `boot_clients`; `on_line(guest, line)` sees every console line
    /// as it arrives (called on this thread; the guests keep running while it
    /// works). Err only for setup problems: a guest that fails, crashes or
    /// times out is a `ClientResult` with `passed == false`.
    pub fn boot_clients_with(
        &self,
        specs: &[ClientSpec],
        mut on_line: impl FnMut(usize, &str),
    ) -> io::Result<Vec<ClientResult>> {
        self.boot_clients_ctl(specs, |_, i, line| on_line(i, line))
    }

    /// Like `boot_clients_with`; the hook also gets a [`GuestControl`] to
    /// kill a guest or boot it again. Every guest also gets RC_GUEST_MACS
    /// (eth0 MACs of all guests of this boot, by index, space-separated)
    /// and RC_SEED (one per boot: tags barrier markers).
    pub fn boot_clients_ctl(
        &self,
        specs: &[ClientSpec],
        mut on_line: impl FnMut(&mut GuestControl, usize, &str),
    ) -> io::Result<Vec<ClientResult>> {
        if specs.is_empty() {
            return Ok(Vec::new());
        }
        let kernel = image::find_kernel()?;
        let first = self
            .guest_counter
            .fetch_add(specs.len() as u32, std::sync::atomic::Ordering::Relaxed);
        let boot = Boot {
            kernel: image::boot_image(&kernel)?,
            base: fs::read(image::base_initramfs(&kernel)?)?,
            cluster: if specs.iter().any(|s| s.cluster) {
                Some(fs::read(image::cluster_layer(&kernel)?)?)
            } else {
                None
            },
            seed: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(1)
                % 1_000_000_000
                + std::process::id(),
            accel: std::env::var("AOERAID_QEMU_ACCEL").unwrap_or_else(|_| "tcg".into()),
            macs: (0..specs.len())
                .map(|i| guest_mac(first + i as u32, 0))
                .collect(),
        };
        let mut running = Vec::new();
        let result = (|| -> io::Result<()> {
            for (i, spec) in specs.iter().enumerate() {
                running.push(self.start_guest(first + i as u32, i, spec, &boot)?);
            }
            Ok(())
        })();
        if let Err(e) = result {
            for r in &running {
                self.del_taps(&r.guest.nics);
            }
            return Err(e);
        }

        // Follow the consoles until every qemu has exited.
        let mut rebooted = vec![false; running.len()];
        loop {
            let mut alive = 0;
            let mut ctl = GuestControl {
                macs: boot.macs.clone(),
                kills: Vec::new(),
                reboots: Vec::new(),
            };
            for (i, r) in running.iter_mut().enumerate() {
                if let Ok(bytes) = fs::read(&r.guest.console) {
                    if bytes.len() > r.seen {
                        r.partial
                            .push_str(&String::from_utf8_lossy(&bytes[r.seen..]));
                        r.seen = bytes.len();
                        while let Some(pos) = r.partial.find('\n') {
                            let line: String = r.partial.drain(..=pos).collect();
                            on_line(&mut ctl, i, line.trim_end_matches(['\n', '\r']));
                        }
                    }
                }
                if r.status.is_some() {
                    continue;
                }
                if let Some(st) = r.proc.try_wait()? {
                    let silent = fs::metadata(&r.guest.console).is_ok_and(|m| m.len() == 0);
                    if silent && !rebooted[i] {
                        // Seen under load on TCG, now and then for the second
                        // of two guests: qemu exits 0 within seconds and the
                        // guest never printed a byte, so no workload ran.
                        // That is the host's trouble, not the target's: boot
                        // that guest once more (same taps, MAC and image).
                        eprintln!("guest {i}: qemu exited ({st}) before any console output; booting it again");
                        rebooted[i] = true;
                        r.proc = self.spawn(
                            &format!("qemu-guest-{}-again", r.guest.n),
                            self.qemu(&r.guest, &boot),
                        )?;
                        alive += 1;
                        continue;
                    }
                    r.status = Some(st);
                    r.wall = Some(r.started.elapsed());
                    continue;
                }
                if Instant::now() >= r.deadline {
                    r.timed_out = true;
                    r.status = Some(r.proc.kill()?);
                    r.wall = Some(r.started.elapsed());
                    continue;
                }
                alive += 1;
            }
            for i in ctl.kills {
                let r = running
                    .get_mut(i)
                    .ok_or_else(|| err("kill: no such guest"))?;
                if r.status.is_none() {
                    r.status = Some(r.proc.kill()?);
                    r.wall = Some(r.started.elapsed());
                    alive -= 1;
                }
            }
            for i in ctl.reboots {
                let r = running
                    .get_mut(i)
                    .ok_or_else(|| err("boot_again: no such guest"))?;
                if r.status.is_none() {
                    return Err(err(format!("boot_again: guest {i} still runs")));
                }
                r.guest.boot += 1;
                r.proc = self.spawn(
                    &format!("qemu-guest-{}-boot{}", r.guest.n, r.guest.boot),
                    self.qemu(&r.guest, &boot),
                )?;
                r.status = None;
                r.wall = None;
                alive += 1;
            }
            if alive == 0 {
                break;
            }
            sleep(Duration::from_millis(100));
        }

        let mut results = Vec::new();
        for (i, r) in running.into_iter().enumerate() {
            let console = fs::read(&r.guest.console)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            let mut res = ClientResult::parse(i, console);
            res.wall = r.wall.unwrap_or_default();
            res.timed_out = r.timed_out;
            res.qemu_status = r.status;
            res.mac = r.guest.nics[0].1.clone();
            res.tap = r
                .guest
                .nics
                .iter()
                .map(|(t, _)| t.as_str())
                .collect::<Vec<_>>()
                .join(",");
            if !res.passed && res.failure.is_none() {
                res.failure = Some(if r.timed_out {
                    format!("timed out after {:?}", specs[i].timeout)
                } else {
                    format!(
                        "no result line (qemu {:?}): {}",
                        r.status,
                        r.proc.log().trim()
                    )
                });
            }
            self.del_taps(&r.guest.nics);
            results.push(res);
        }
        Ok(results)
    }

    fn del_taps(&self, nics: &[(String, String)]) {
        for (t, _) in nics {
            let _ = ip(self.ns(), &["link", "del", t]);
        }
    }

    fn start_guest(
        &self,
        n: u32,
        index: usize,
        spec: &ClientSpec,
        boot: &Boot,
    ) -> io::Result<Running> {
        if !valid_target(&spec.target) {
            return Err(err(format!("target '{}' must look like e1.1", spec.target)));
        }
        if spec.workloads.is_empty() {
            return Err(err("a client needs at least one workload"));
        }
        let mut nics = Vec::new();
        match self.prepare_guest(n, index, spec, boot, &mut nics) {
            Ok(guest) => {
                let proc = self.spawn(&format!("qemu-guest-{n}"), self.qemu(&guest, boot))?;
                let started = Instant::now();
                Ok(Running {
                    guest,
                    proc,
                    seen: 0,
                    partial: String::new(),
                    started,
                    deadline: started + spec.timeout,
                    wall: None,
                    timed_out: false,
                    status: None,
                })
            }
            Err(e) => {
                self.del_taps(&nics);
                Err(e)
            }
        }
    }

    /// Taps on the guest's segments (pushed to `nics` as made, so a
    /// failure can remove them), its image and its kernel command line.
    fn prepare_guest(
        &self,
        n: u32,
        index: usize,
        spec: &ClientSpec,
        boot: &Boot,
        nics: &mut Vec<(String, String)>,
    ) -> io::Result<Guest> {
        let mtu = spec.mtu.unwrap_or(self.mtu());
        let segments: Vec<&Segment> = std::iter::once(&spec.segment)
            .chain(&spec.extra_segments)
            .collect();
        for (k, seg) in segments.iter().enumerate() {
            let bridge = self.segment(seg)?;
            let tap = if k == 0 {
                format!("tap{n}")
            } else {
                format!("tap{n}-{k}")
            };
            ip(self.ns(), &["tuntap", "add", "dev", &tap, "mode", "tap"])?;
            nics.push((tap.clone(), guest_mac(n, k)));
            ip(self.ns(), &["link", "set", &tap, "mtu", &mtu.to_string()])?;
            ip(self.ns(), &["link", "set", &tap, "master", &bridge])?;
            ip(self.ns(), &["link", "set", &tap, "up"])?;
        }

        let mut env = format!(
            "RC_TARGET={}\nRC_WAIT={}\nRC_AOE_PARAMS={}\nexport RC_SEED={}\nexport RC_GUEST_MACS={}\n",
            spec.target,
            spec.discover_wait.as_secs().max(1),
            shell_quote(&spec.aoe_params),
            boot.seed,
            shell_quote(&boot.macs.join(" ")),
        );
        let mut defaults = vec![
            ("SMOKE_SEED", boot.seed.to_string()),
            ("HALVES_SEED", boot.seed.to_string()),
        ];
        defaults.retain(|(k, _)| !spec.env.iter().any(|(u, _)| u == k));
        for (k, v) in defaults
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .chain(spec.env.iter().cloned())
        {
            if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(err(format!("bad environment variable name '{k}'")));
            }
            env.push_str(&format!("export {k}={}\n", shell_quote(&v)));
        }
        let mut scripts = Vec::new();
        for w in &spec.workloads {
            scripts.push((w.name().to_string(), w.body()?));
        }
        let mut initrd = boot.base.clone();
        if spec.cluster {
            initrd.extend(boot.cluster.as_deref().unwrap_or_default());
        }
        initrd.extend(image::overlay(&env, &scripts, &spec.programs)?);
        let initrd_path = self.dir().join(format!("guest-{n}.cpio"));
        fs::write(&initrd_path, initrd)?;
        let console = self.dir().join(format!("guest-{n}.console"));
        fs::write(&console, b"")?;

        // no_timer_check: a TCG guest starved by a loaded host can miss the
        // kernel's IO-APIC timer check and panic at boot ("IO-APIC + timer
        // doesn't work!"), seen here with three guests at once.
        let mut append = format!(
            "console=ttyS0,115200 panic=-1 quiet loglevel=4 ipv6.disable=1 no_timer_check rc.index={index} rc.count={} rc.mtu={mtu} rc.nics={}",
            boot.macs.len(),
            nics.len()
        );
        if !spec.cmdline.is_empty() {
            append.push(' ');
            append.push_str(&spec.cmdline);
        }
        Ok(Guest {
            n,
            nics: nics.clone(),
            initrd: initrd_path,
            console,
            append,
            mem_mib: spec.mem_mib,
            mtu,
            boot: 1,
        })
    }

    /// The qemu command for `g`'s current boot (a later boot appends to the
    /// console file and tells /init its number).
    fn qemu(&self, g: &Guest, boot: &Boot) -> std::process::Command {
        let mut cmd = self.cmd("qemu-system-x86_64");
        if boot.accel == "kvm" {
            cmd.args(["-accel", "kvm", "-cpu", "host,-arch-capabilities"]);
        } else {
            cmd.args(["-accel", "tcg", "-cpu", "max"]);
        }
        cmd.args(["-m", &g.mem_mib.to_string(), "-smp", "1", "-machine", "q35"])
            .args([
                "-nodefaults",
                "-no-user-config",
                "-display",
                "none",
                "-no-reboot",
                "-monitor",
                "none",
            ])
            .arg("-kernel")
            .arg(&boot.kernel)
            .arg("-initrd")
            .arg(&g.initrd)
            .args(["-append", &format!("{} rc.boot={}", g.append, g.boot)])
            .arg("-chardev")
            .arg(format!(
                "file,id=ser0,path={}{}",
                g.console.display(),
                if g.boot > 1 { ",append=on" } else { "" }
            ))
            .args(["-serial", "chardev:ser0"]);
        for (k, (tap, mac)) in g.nics.iter().enumerate() {
            cmd.arg("-netdev")
                .arg(format!("tap,id=n{k},ifname={tap},script=no,downscript=no"))
                .arg("-device")
                .arg(format!(
                    "virtio-net-pci,netdev=n{k},mac={mac},host_mtu={}",
                    g.mtu
                ));
        }
        cmd
    }
}

/// Asserts `e2fsck -fn` finds the ext4 a guest left in `image` (a blade's or
/// an export's file, checked on the host) clean.
pub fn assert_fsck_clean(image: &std::path::Path) {
    if let Err(e) = crate::sh::run(std::process::Command::new("e2fsck").arg("-fn").arg(image)) {
        panic!("host e2fsck: {e}");
    }
}
