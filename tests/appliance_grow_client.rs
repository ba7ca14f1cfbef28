//! The issue's online grow seen by the real Linux client: `aoeraid run` exports a
//! concatenated volume of one RAID 1; the guest (Debian's kernel in qemu) puts
//! ext4 on it and fills it, then waits; the host appends a second RAID 1 with
//! `aoeraid grow` through the daemon's control socket; the guest revalidates,
//! sees the larger size and its ext4 is still intact (e2fsck -fn clean, every
//! checksum matches). Root only, one qemu boot.

use aoeraid_lab as lab;

use lab::{Appliance, Array, ClientSpec, Config, Lab, Outcome, Volume, Workload};
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

/// RAID 1 `data` exported as e7.0 at MTU 1500 (the guest's); `shelf2` is
/// declared (so `create` writes its superblocks) but only joins the volume
/// when the test grows it.
fn appliance(test: &str, blade_bytes: u64) -> Appliance {
    let config = Config::default()
        .array(Array::raid1("data", &["e0.0", "e1.0"]))
        .array(Array::raid1("shelf2", &["e0.1", "e1.1"]))
        .volume(Volume::new("gfs", &["data"], 7, 0));
    let blades = Lab::grid(&[0, 1], 0..2, blade_bytes);
    let mut app = Appliance::new(AOERAID, test, 1500, &blades, config);
    app.create_and_start();
    app
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
    let (r, _) = d
        .lab
        .boot_client_at(spec, "revalidate-ready", || {
            grown = Some(d.grow("gfs", "shelf2").map(|()| d.volume_sectors()));
        })
        .expect("boot client");
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
    d.stop();
    eprintln!(
        "{test}: {before} -> {after} sectors, revalidate {}s, guest {:.1}s, total {:.1}s",
        r.metric("revalidate", "wait_s").unwrap_or("?"),
        r.wall.as_secs_f64(),
        t.elapsed().as_secs_f64()
    );
}
