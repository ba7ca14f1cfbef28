//! The issue's online grow seen by the real Linux client: `aoeraid run` exports a
//! concatenated volume of one RAID 1; the guest (Debian's kernel in qemu) puts
//! ext4 on it and fills it, then waits; the host appends a second RAID 1 with
//! `aoeraid grow` through the daemon's control socket; the guest revalidates,
//! sees the larger size and its ext4 is still intact (e2fsck -fn clean, every
//! checksum matches). Root only, one qemu boot.

use aoeraid_lab as lab;

use lab::{ClientSpec, Daemon, Lab, Outcome, Segment, Workload};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const AOERAID: &str = env!("CARGO_BIN_EXE_aoeraid");

const MIB: u64 = 1 << 20;

/// After the revalidate: the filesystem the ext4 workload left (its last
/// checksum list is still in the guest's /tmp) must check clean and read back.
const EXT4_INTACT: &str = r#". /lib/realclient/common.sh
set -u
MNT=/mnt/aoe
[ -s /tmp/sums2 ] || fail "the ext4 workload left no checksum list"
drop_caches
e2fsck -fn "$AOE_DEV" > /tmp/fsck3.log 2>&1 || { cat /tmp/fsck3.log; fail "e2fsck -fn after grow"; }
mkdir -p "$MNT"
mount -t ext4 -o ro "$AOE_DEV" "$MNT" || fail "mount after grow"
(cd "$MNT" && sha256sum -c /tmp/sums2 > /tmp/verify3.log 2>&1) ||
    { grep -v ': OK$' /tmp/verify3.log | head -n 20; umount "$MNT"; fail "checksums differ after grow"; }
metric files_verified "$(wc -l < /tmp/sums2)"
umount "$MNT" || fail "umount after grow"
metric device_sectors "$(blockdev --getsz "$AOE_DEV")"
info "ext4 intact after the online grow"
exit 0
"#;

/// The lab around one daemon: RAID 1 blades behind, the daemon's front port
/// on the front segment where the guest's tap also lives.
struct Appliance {
    lab: Lab,
    cfg: String,
    daemon: Option<Daemon>,
}

impl Appliance {
    fn aoeraid(&self, args: &[&str]) -> (bool, String) {
        self.lab.outcome(AOERAID, args)
    }

    fn status(&self) -> Option<serde_json::Value> {
        let (ok, out) = self.aoeraid(&["status", "--json", "--config", &self.cfg]);
        if !ok {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&out).ok()?;
        Some(v.get("status").cloned().unwrap_or(v))
    }

    fn volume_sectors(&self) -> u64 {
        self.status().expect("status")["volumes"][0]["sectors"]
            .as_u64()
            .expect("volume sectors")
    }

    /// `aoeraid grow`, retried while the daemon answers busy.
    fn grow(&self, volume: &str, array: &str) -> Result<(), String> {
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
}

fn appliance(test: &str, blade_bytes: u64) -> Appliance {
    let lab = Lab::with_blades(test, 1500, &Lab::grid(&[0, 1], 0..2, blade_bytes)).expect("lab");
    let back = lab.add_initiator_port(&Segment::BACK).expect("back port");
    let front = lab.add_front_port().expect("front port");
    lab.run("ip", &["link", "set", "lo", "up"]).expect("lo up");
    let dir: PathBuf = lab.dir().to_path_buf();
    let metrics_port = 20000 + (std::process::id() % 20000) as u16 + 1;
    // `shelf2` is declared (so `create` writes its superblocks) but only joins
    // the volume when the test grows it.
    let yaml = format!(
        "appliance: {{name: lab, state_dir: {d}/state, control_socket: {d}/ctl.sock, \
         metrics_listen: \"127.0.0.1:{metrics_port}\"}}\n\
         backend: {{interfaces: [{back}], dead_after: 2s}}\n\
         frontend: {{interfaces: [{front}]}}\n\
         arrays:\n\
         \x20 - {{name: data, level: raid1, members: [e0.0, e1.0]}}\n\
         \x20 - {{name: shelf2, level: raid1, members: [e0.1, e1.1]}}\n\
         volumes:\n\
         \x20 - {{name: gfs, arrays: [data], export: {{shelf: 7, slot: 0}}}}\n",
        d = dir.display(),
    );
    let cfg = lab
        .write_file("appliance.yaml", &yaml)
        .expect("yaml")
        .display()
        .to_string();
    let daemon = Some(Daemon::create_and_run(&lab, AOERAID, &cfg));
    let d = Appliance { lab, cfg, daemon };
    let t = Instant::now();
    while d.status().is_none() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "daemon did not come up: {}",
            d.daemon.as_ref().unwrap().log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    d
}

#[test]
fn grow_online_real_linux_client_keeps_ext4() {
    let test = "grow_online_real_linux_client_keeps_ext4";
    if !lab::require_root(test)
        || !lab::require_tools(test, &["vblade", "aoecfg", "qemu-system-x86_64", "e2fsck"])
    {
        return;
    }
    let t = Instant::now();
    let mut d = appliance("grow-rc", 48 * MIB);
    let before = d.volume_sectors();
    let spec = ClientSpec::new(
        "e7.0",
        &[
            Workload::Ext4,
            Workload::Revalidate,
            Workload::Script {
                name: "ext4-after-grow".into(),
                body: EXT4_INTACT.into(),
            },
        ],
    )
    .env("EXT4_BIG_MB", "12")
    .env("EXT4_FILES", "60")
    .env("REVALIDATE_WAIT", "60")
    .timeout(Duration::from_secs(300));
    let mut grown: Option<Result<u64, String>> = None;
    let mut res = d
        .lab
        .boot_clients_with(&[spec], |_, line| {
            if line.starts_with("REALCLIENT-EVENT revalidate-ready") && grown.is_none() {
                grown = Some(d.grow("gfs", "shelf2").map(|()| d.volume_sectors()));
            }
        })
        .expect("boot client");
    let r = res.remove(0);
    eprintln!("{}", r.summary());
    let after = match grown {
        None => panic!("the guest never reached revalidate-ready\n{}", r.summary()),
        Some(Err(e)) => panic!("aoeraid grow failed: {e}"),
        Some(Ok(after)) => after,
    };
    r.assert_passed();
    assert!(
        after > before + 80 * 1024,
        "daemon's volume did not grow: {before} -> {after} sectors"
    );
    for w in ["ext4", "revalidate", "ext4-after-grow"] {
        assert_eq!(r.outcome(w), Some(Outcome::Pass), "workload {w}");
    }
    assert_eq!(
        r.metric("revalidate", "old_sectors"),
        Some(before.to_string().as_str())
    );
    assert_eq!(
        r.metric("revalidate", "new_sectors"),
        Some(after.to_string().as_str()),
        "the guest's size after revalidate"
    );
    assert_eq!(
        r.metric("ext4-after-grow", "device_sectors"),
        Some(after.to_string().as_str())
    );
    assert!(
        r.metric("ext4-after-grow", "files_verified")
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| n > 0),
        "no files verified after the grow"
    );
    d.daemon.take().unwrap().stop();
    eprintln!(
        "{test}: {before} -> {after} sectors, revalidate {}s, guest {:.1}s, total {:.1}s",
        r.metric("revalidate", "wait_s").unwrap_or("?"),
        r.wall.as_secs_f64(),
        t.elapsed().as_secs_f64()
    );
}
