//! The real-client harness against Debian's vblade: Debian's kernel in qemu
//! (TCG) with the stock aoe driver, on the lab's front segment. Proves the
//! harness itself (guest image, workloads, result parsing, host hooks), so
//! that a failure against aoeraid later is aoeraid's. Root only.

use aoeraid_lab as lab;

use std::time::{Duration, Instant};

use lab::{assert_fsck_clean, BladeSpec, ClientSpec, Lab, Outcome, Segment, Workload};

const MIB: u64 = 1 << 20;

fn ready(test: &str) -> bool {
    lab::require_root(test)
        && lab::require_tools(test, &["vblade", "aoecfg", "qemu-system-x86_64", "e2fsck"])
}

/// One guest: smoke + ext4 + stat, then the export grows while the guest
/// waits (host hook on the revalidate event restarts vblade on the larger
/// file) and the guest sees the new size. Afterwards the host checks the
/// ext4 the guest made, straight from the blade's file.
#[test]
fn one_guest_smoke_ext4_stat_revalidate() {
    if !ready("one_guest_smoke_ext4_stat_revalidate") {
        return;
    }
    let t = Instant::now();
    let lab = Lab::with_blades(
        "rc-vblade",
        1500,
        &[BladeSpec::new(1, 1, 128 * MIB).on(&[Segment::FRONT])],
    )
    .expect("lab");
    let blade = lab.blade(1, 1);
    let grown = 160 * MIB;
    let spec = ClientSpec::grow_check("e1.1", grown)
        // Smaller than the workloads' defaults (64 MiB smoke, 24 MiB ext4
        // file) to keep this self-test short on an emulated CPU.
        .env("SMOKE_MB", "16")
        .env("EXT4_BIG_MB", "8")
        .env("EXT4_FILES", "60")
        .timeout(Duration::from_secs(240));
    let (r, grew) = lab
        .boot_client_at(spec, "revalidate-ready", || {
            blade.set_len(grown).expect("grow blade file");
            blade.restart().expect("restart vblade");
        })
        .expect("boot");
    eprintln!("{}", r.summary());
    r.assert_passed();
    assert!(grew, "the revalidate hook never ran");
    assert_eq!(r.outcome("ext4"), Some(Outcome::Pass));
    r.assert_stat(1500);
    r.assert_revalidated(grown);
    assert!(r.metric_f64("smoke", "write_MBps").is_some_and(|v| v > 0.0));

    // The filesystem the guest left behind, checked on the host from the file.
    blade.kill().expect("stop blade");
    assert_fsck_clean(blade.path());
    eprintln!(
        "one_guest_smoke_ext4_stat_revalidate: {:.1}s total, guest wall {:.1}s, /init at {:?}s",
        t.elapsed().as_secs_f64(),
        r.wall.as_secs_f64(),
        r.time("init")
    );
}

/// Two guests at MTU 9000 on one small export: each writes and verifies its
/// half, then verifies the other's (barrier through marker sectors).
#[test]
fn two_guests_halves_jumbo() {
    if !ready("two_guests_halves_jumbo") {
        return;
    }
    let t = Instant::now();
    let lab = Lab::with_blades(
        "rc-halves",
        9000,
        &[BladeSpec::new(2, 0, 33 * MIB).on(&[Segment::FRONT])],
    )
    .expect("lab");
    lab.two_guests_halves("e2.0", Duration::from_secs(240));
    eprintln!(
        "two_guests_halves_jumbo: {:.1}s total",
        t.elapsed().as_secs_f64()
    );
}

/// A dual-port blade (two vblade processes, one file, one shelf.slot, two
/// segments) as the Linux aoe driver sees it: one device, a path through
/// each of the guest's two NICs. Once both paths are there the host takes
/// one link down and the guest's O_DIRECT round trip still passes.
#[test]
fn dual_port_blade_linux_multipath() {
    if !ready("dual_port_blade_linux_multipath") {
        return;
    }
    let t = Instant::now();
    let second = Segment::named("front1").expect("segment");
    let lab = Lab::with_blades(
        "rc-dualpath",
        1500,
        &[BladeSpec::new(0, 7, 32 * MIB).on(&[Segment::FRONT, second.clone()])],
    )
    .expect("lab");
    let blade = lab.blade(0, 7);
    let paths = Workload::Script {
        name: "paths".into(),
        body: r#". /lib/realclient/common.sh
t=0
netif=$(cat "$AOE_SYSBLK/netif")
until echo "$netif" | grep -q eth0 && echo "$netif" | grep -q eth1; do
    [ $t -ge 40 ] && fail "paths: netif is '$netif'"
    echo > /dev/etherd/discover
    sleep 0.5
    t=$((t + 1))
    netif=$(cat "$AOE_SYSBLK/netif")
done
metric netif "$netif"
event "paths-ready"
sleep 3
exit 0
"#
        .into(),
    };
    let mut spec = ClientSpec::new("e0.7", &[paths, Workload::Smoke, Workload::Stat])
        .env("SMOKE_MB", "8")
        .timeout(Duration::from_secs(240));
    spec.extra_segments = vec![second];
    let (r, downed) = lab
        .boot_client_at(spec, "paths-ready", || {
            blade.link_down(0).expect("link down");
        })
        .expect("boot");
    eprintln!("{}", r.summary());
    r.assert_passed();
    assert!(downed);
    let netif = r.metric("paths", "netif").expect("netif metric");
    assert!(netif.contains("eth0") && netif.contains("eth1"), "{netif}");
    eprintln!(
        "dual_port_blade_linux_multipath: {:.1}s total",
        t.elapsed().as_secs_f64()
    );
}
