//! The appliance end to end in the namespace lab: real vblade blades behind,
//! `aoeraid run` in the middle, `aoeraid bench` (and the Linux client) in front.
//! Root only; each test builds its own lab and tears it down.

use aoeraid_lab as lab;

use lab::{
    metric, metric_sum, Appliance, Array, BladeSpec, Config, Direction, Impairment, Lab, Level,
    Volume,
};
use std::time::Duration;

const AOERAID: &str = env!("CARGO_BIN_EXE_aoeraid");

const MIB: u64 = 1 << 20;

fn ready(test: &str) -> bool {
    lab::require_root(test) && lab::require_tools(test, &["vblade", "aoecfg"])
}

fn assert_bench_clean(what: &str, ok: bool, out: &str) {
    assert!(ok, "{what}: bench failed:\n{out}");
    assert!(
        out.contains("errors 0") && out.contains("mismatches 0"),
        "{what}:\n{out}"
    );
}

/// `aoeraid bench` in mode `rw` over the first `span` bytes of the export, which
/// must finish with no error and no mismatch.
fn bench_clean(app: &Appliance, what: &str, rw: &str, span: u64) {
    let (ok, out) = app.bench(rw, span, &[]);
    assert_bench_clean(what, ok, &out);
}

/// `arrays` behind volume `gfs`, exported as e7.0.
fn exported(arrays: &[Array]) -> Config {
    arrays
        .iter()
        .cloned()
        .fold(Config::default(), Config::array)
        .volume(Volume::new("gfs", &["data"], 7, 0))
}

/// The seed's RAID 10 over two shelves with the group spares e0.4 and e1.4.
fn raid10() -> Config {
    let members = [
        "e0.0", "e1.0", "e0.1", "e1.1", "e0.2", "e1.2", "e0.3", "e1.3",
    ];
    exported(&[Array::new("data", Level::Raid10, &members)
        .chunk("128KiB")
        .spare_group("shelfspares")])
    .spare_group("shelfspares", &["e0.4", "e1.4"])
}

/// The seed's RAID 10: verify, kill a member mid-verify, spare takes over and
/// rebuilds, a second verify, the killed blade comes back and is not reused until
/// `aoeraid add` makes it a spare; SIGTERM stops cleanly.
#[test]
fn raid10_member_loss_spare_rebuild() {
    if !ready("raid10_member_loss_spare_rebuild") {
        return;
    }
    // 80 MiB blades: four mirror pairs leave > 256 MiB after each member's
    // reserved metadata area, so the first verify covers the 256 MiB.
    let blades = Lab::grid(&[0, 1], 0..5, 80 * MIB);
    let mut app = Appliance::new(AOERAID, "raid10", 9000, &blades, raid10());
    app.create_and_start();
    bench_clean(&app, "first verify over 256 MiB", "verify", 256 * MIB);

    // Kill e0.1 while a verify runs.
    let mut bench = app.spawn_bench("bench-under-failure", "verify", 96 * MIB, &[]);
    std::thread::sleep(Duration::from_secs(2));
    app.lab.blade(0, 1).kill().expect("kill e0.1");
    let st = bench
        .wait_timeout(Duration::from_secs(300))
        .expect("wait bench");
    let out = bench.log();
    assert_bench_clean(
        "verify with a member killed",
        st.is_some_and(|s| s.success()),
        &out,
    );

    let seen = app.wait_for("data", Duration::from_secs(240), |st, m| {
        st == "clean"
            && m.iter()
                .any(|(b, s)| (b == "e0.4" || b == "e1.4") && s == "active")
    });
    let ev = app.events();
    for e in ["Fail data e0.1", "RebuildFinished data"] {
        assert!(
            ev.contains(e),
            "event {e} missing; states {seen:?}; events:\n{ev}"
        );
    }
    assert!(
        ev.contains("SpareActive") || ev.contains("MoveSpare"),
        "no spare event:\n{ev}"
    );
    let m = app.metrics();
    // The verifying bench went through the front end: its frames and the
    // target's view of them are counted on the real daemon.
    let sample = |series: &str| -> u64 {
        metric(&m, series).unwrap_or_else(|| panic!("no `{series}` in metrics:\n{m}"))
    };
    let front_frames = sample("aoeraid_frontend_frames_total");
    assert!(front_frames > 1000, "front-end frames {front_frames}");
    assert_eq!(
        sample("aoeraid_frontend_requests_total{outcome=\"malformed\"}"),
        0
    );
    for side in ["frontend", "backend"] {
        let rx = metric_sum(
            &m,
            "aoeraid_frames_received_total",
            &format!("side=\"{side}\""),
        );
        assert!(rx > 1000, "{side} interfaces received {rx} frames:\n{m}");
    }

    bench_clean(&app, "verify after rebuild", "verify", 64 * MIB);

    // The killed blade returns: not reused behind the operator's back.
    app.lab.blade(0, 1).restart().expect("restart e0.1");
    std::thread::sleep(Duration::from_secs(4));
    let (_, members) = app.array_state("data").unwrap();
    assert!(
        !members
            .iter()
            .any(|(b, s)| b == "e0.1" && (s == "active" || s == "rebuilding" || s == "spare")),
        "e0.1 reused silently: {members:?}"
    );
    // It carries data's superblock: a plain add refuses it, naming the array;
    // the operator who means it says --force.
    let (ok, out) = app.aoeraid(&["add", "data", "e0.1", "--config", app.cfg()]);
    assert!(!ok && out.contains("array `data`"), "add: {out}");
    let (ok, out) = app.aoeraid(&["add", "data", "e0.1", "--force", "--config", app.cfg()]);
    assert!(ok && out.contains("overwrote"), "add --force: {out}");
    app.wait_for("data", Duration::from_secs(30), |_, m| {
        m.iter().any(|(b, s)| b == "e0.1" && s == "spare")
    });
    app.stop();
    // A restart assembles the array with the group spare that replaced e0.1.
    app.start();
    app.wait_for("data", Duration::from_secs(60), |st, m| {
        st == "clean"
            && m.iter().filter(|(_, s)| s == "active").count() == 8
            && m.iter()
                .any(|(b, s)| (b == "e0.4" || b == "e1.4") && s == "active")
    });
    bench_clean(&app, "check after restart", "check", 64 * MIB);
    app.stop();
}

/// Re-add: a blade stopped briefly under writes comes back before the dead time
/// and only what changed is resynced.
#[test]
fn raid1_blade_pause_resyncs_little() {
    if !ready("raid1_blade_pause_resyncs_little") {
        return;
    }
    let blades = vec![
        BladeSpec::new(0, 0, 64 * MIB),
        BladeSpec::new(1, 0, 64 * MIB),
    ];
    let config = exported(&[Array::raid1("data", &["e0.0", "e1.0"]).bitmap_region("1MiB")]);
    let mut app = Appliance::new(AOERAID, "raid1", 9000, &blades, config);
    app.create_and_start();
    bench_clean(&app, "raid1 verify", "verify", 32 * MIB);
    // Let the write-intent bitmap clear (5 s after the last write) so that only the
    // writes made while the blade is away count.
    std::thread::sleep(Duration::from_secs(7));
    // Stop e1.0 past the dead time (2 s) while writing a small span, then resume it.
    app.lab.blade(1, 0).stop().expect("SIGSTOP e1.0");
    let (ok, out) = app.bench("write", 4 * MIB, &["--bytes", &(4 * MIB).to_string()]);
    assert!(ok, "write during pause: {out}");
    app.wait_for("data", Duration::from_secs(30), |st, _| st == "degraded");
    app.lab.blade(1, 0).cont().expect("SIGCONT e1.0");
    app.wait_for("data", Duration::from_secs(120), |st, m| {
        st == "clean" && m.iter().all(|(_, s)| s == "active")
    });
    let resynced = app.synced_bytes("data");
    assert!(
        resynced < 16 * MIB,
        "re-add copied {resynced} bytes of a 64 MiB member"
    );
    bench_clean(&app, "raid1 verify after re-add", "verify", 32 * MIB);
    app.stop();
}

/// A member's blade is down when `aoeraid run` starts: the array runs degraded,
/// the blade starts 30 s later and rejoins by itself, resyncing only the regions
/// written meanwhile. Then it dies again and comes back holding another array's
/// disk: refused by name (status, metric, event) and never written.
#[test]
fn raid1_blade_missing_at_start_rejoins_alone() {
    if !ready("raid1_blade_missing_at_start_rejoins_alone") {
        return;
    }
    let blades = Lab::grid(&[0, 1, 2, 3], 0..1, 64 * MIB);
    let config = exported(&[Array::raid1("data", &["e0.0", "e1.0"]).bitmap_region("1MiB")]);
    let mut app = Appliance::new(AOERAID, "rejoin", 9000, &blades, config);
    // A second array on e2.0 and e3.0: e2.0 lends its disk to the foreign return.
    let other = app.write_config("other.yaml", |c| {
        c.arrays = vec![Array::raid1("other", &["e2.0", "e3.0"])];
        c.volumes.clear();
    });
    let (ok, out) = app.aoeraid(&["create", "--config", &other, "--assume-clean"]);
    assert!(ok, "create other: {out}");
    app.create_and_start();
    app.stop();

    app.lab.blade(1, 0).kill().expect("kill e1.0");
    let started = std::time::Instant::now();
    app.start();
    app.wait_for("data", Duration::from_secs(20), |st, _| st == "degraded");
    let (ok, out) = app.bench("write", 4 * MIB, &["--bytes", &(4 * MIB).to_string()]);
    assert!(ok, "write while e1.0 is away: {out}");
    std::thread::sleep(Duration::from_secs(30).saturating_sub(started.elapsed()));
    app.lab.blade(1, 0).restart().expect("start e1.0");
    app.wait_for("data", Duration::from_secs(60), |st, m| {
        st == "clean" && m.iter().filter(|(_, s)| s == "active").count() == 2
    });
    let copied = app.synced_bytes("data");
    eprintln!("rejoin after 30 s away: {copied} bytes resynced of a 64 MiB member");
    // 4 MiB written: four 1 MiB regions, five if unaligned.
    assert!(
        copied > 0 && copied <= 5 * MIB,
        "rejoin copied {copied} bytes"
    );
    let ev = app.events();
    assert!(ev.contains("ReAdded data e1.0"), "no re-add:\n{ev}");
    bench_clean(&app, "check after the rejoin", "check", 4 * MIB);

    // Away again (noticed under writes), back with the other array's disk.
    app.lab.blade(1, 0).kill().expect("kill e1.0");
    let (ok, out) = app.bench("write", 4 * MIB, &["--bytes", &MIB.to_string()]);
    assert!(ok, "write while e1.0 is dead: {out}");
    app.wait_for("data", Duration::from_secs(20), |st, _| st == "degraded");
    let e1 = app.lab.blade(1, 0).path().to_path_buf();
    std::fs::copy(app.lab.blade(2, 0).path(), &e1).expect("swap the disk");
    let before = std::fs::read(&e1).expect("read e1.0");
    app.lab.blade(1, 0).restart().expect("start e1.0");
    let b = app.wait_blade("e1.0", Duration::from_secs(30), |b| {
        b["refused"].is_string()
    });
    let why = b["refused"].as_str().unwrap_or_default();
    assert!(why.contains("another array `other`"), "{b}");
    assert_eq!(
        metric(&app.metrics(), "aoeraid_blade_refused{blade=\"e1.0\"}"),
        Some(1)
    );
    let (ok, out) = app.bench("write", 4 * MIB, &["--bytes", &MIB.to_string()]);
    assert!(ok, "write after the refusal: {out}");
    let ev = app.events();
    assert!(ev.contains("MemberRefused data e1.0"), "{ev}");
    let (st, members) = app.array_state("data").unwrap();
    assert_eq!(st, "degraded", "{members:?}");
    assert!(
        std::fs::read(&e1).expect("read e1.0") == before,
        "a refused blade was written"
    );
    app.stop();
}

/// A member replaced at run time by a blade appliance.yaml does not list holds its
/// slot after a restart: assembly takes it by its superblock (no rebuild), the
/// replaced blade the YAML still lists is refused unwritten, and status names the
/// YAML line to write.
#[test]
fn raid1_member_replaced_at_run_time_holds_its_slot_after_a_restart() {
    if !ready("raid1_member_replaced_at_run_time_holds_its_slot_after_a_restart") {
        return;
    }
    let blades = Lab::grid(&[0, 1, 2], 0..1, 32 * MIB);
    let config = exported(&[Array::raid1("data", &["e0.0", "e1.0"])]);
    let mut app = Appliance::new(AOERAID, "replaced", 9000, &blades, config);
    app.create_and_start();
    bench_clean(&app, "raid1 verify", "verify", 8 * MIB);
    for cmd in [
        ["fail", "data", "e1.0"],
        ["remove", "data", "e1.0"],
        ["add", "data", "e2.0"],
    ] {
        let (ok, out) = app.aoeraid(&[cmd[0], cmd[1], cmd[2], "--config", app.cfg()]);
        assert!(ok, "{cmd:?}: {out}");
    }
    app.wait_for("data", Duration::from_secs(60), |st, m| {
        st == "clean" && m.iter().any(|(b, s)| b == "e2.0" && s == "active")
    });
    app.stop();
    let e1 = std::fs::read(app.lab.blade(1, 0).path()).expect("read e1.0");

    app.start();
    app.wait_for("data", Duration::from_secs(30), |st, m| {
        st == "clean"
            && m.iter().filter(|(_, s)| s == "active").count() == 2
            && m.iter().any(|(b, s)| b == "e2.0" && s == "active")
    });
    assert_eq!(app.synced_bytes("data"), 0, "the restart rebuilt a member");
    let status = app.status_json().expect("status");
    let warned = status["warnings"].as_array().is_some_and(|w| {
        w.iter()
            .any(|l| l.as_str().is_some_and(|l| l.contains("e2.0")))
    });
    assert!(warned, "no warning names e2.0: {status}");
    eprintln!("warnings after the restart: {}", status["warnings"]);
    // The replaced blade is shown refused, with assembly's reason.
    let refused = status["blades"].as_array().and_then(|bs| {
        bs.iter()
            .find(|b| b["blade"] == "e1.0")
            .and_then(|b| b["refused"].as_str())
    });
    assert!(
        refused.is_some_and(|r| r.contains("replaced: its slot 1 is now another member's")),
        "e1.0 not shown refused: {status}"
    );
    bench_clean(&app, "check after the restart", "check", 8 * MIB);
    app.stop();
    assert!(
        std::fs::read(app.lab.blade(1, 0).path()).expect("read e1.0") == e1,
        "the replaced blade was written"
    );
}

/// RAID 5 over five blades serves a verify; kill -9 of the daemon during writes,
/// restart, and what was written reads back (bench check with the same pattern).
#[test]
fn raid5_verify_and_daemon_crash() {
    if !ready("raid5_verify_and_daemon_crash") {
        return;
    }
    let blades = Lab::grid(&[0], 0..5, 64 * MIB);
    let members = ["e0.0", "e0.1", "e0.2", "e0.3", "e0.4"];
    let config = exported(&[Array::new("data", Level::Raid5, &members)
        .chunk("64KiB")
        .same_shelf_mirrors()
        .bitmap_region("4MiB")]);
    let mut app = Appliance::new(AOERAID, "raid5", 9000, &blades, config);
    app.create_and_start();
    bench_clean(&app, "raid5 verify", "verify", 64 * MIB);
    // Crash the daemon mid-write.
    let mut w = app.spawn_bench("writer", "write", 32 * MIB, &["--seconds", "30"]);
    std::thread::sleep(Duration::from_secs(3));
    app.kill();
    let _ = w.kill();
    // Every sector of the span was written with the same pattern before (verify) and
    // again now: whatever was acknowledged or not, the pattern reads back.
    app.start();
    app.wait_for("data", Duration::from_secs(120), |st, _| st == "clean");
    // The resync after the crash covers the dirty regions only, not the whole array.
    let s = app.status_json().unwrap();
    let a = &s["arrays"][0];
    let size = a["size_bytes"].as_u64().unwrap();
    let resynced = a["counters"]["resynced_bytes"].as_u64().unwrap_or(0);
    eprintln!("resync after kill -9: {resynced} bytes of a {size}-byte array");
    let ev = app.events();
    assert!(
        ev.contains("ResyncStarted data") && ev.contains("ResyncFinished data"),
        "no resync after the crash:\n{ev}"
    );
    assert!(
        resynced < size / 2,
        "resync after crash covered {resynced} of {size} bytes"
    );
    bench_clean(&app, "check after crash", "check", 32 * MIB);
    app.stop();
}

/// A concatenated volume grows online: `aoeraid grow` appends a second RAID 1
/// while a client writes; the export's size grows and data on both sides verifies.
#[test]
fn concat_volume_grows_online() {
    if !ready("concat_volume_grows_online") {
        return;
    }
    let blades = Lab::grid(&[0, 1], 0..2, 48 * MIB);
    let config = exported(&[
        Array::raid1("data", &["e0.0", "e1.0"]),
        Array::raid1("shelf2", &["e0.1", "e1.1"]),
    ]);
    let mut app = Appliance::new(AOERAID, "grow", 9000, &blades, config);
    app.create_and_start();
    let before = app.volume_sectors();
    let mut writer = app.spawn_bench("writer", "verify", 32 * MIB, &["--qd", "8"]);
    std::thread::sleep(Duration::from_secs(1));
    app.grow("gfs", "shelf2").expect("grow");
    let st = writer
        .wait_timeout(Duration::from_secs(120))
        .expect("writer");
    assert_bench_clean(
        "verify during grow",
        st.is_some_and(|s| s.success()),
        &writer.log(),
    );
    let after = app.volume_sectors();
    assert!(
        after > before + 80 * 1024,
        "volume did not grow: {before} -> {after} sectors"
    );
    // The whole grown volume (the new array's part included) takes a verify.
    bench_clean(&app, "verify of the grown volume", "verify", after * 512);
    app.stop();
}

/// The Linux aoe driver (qemu guest) mounts the exported RAID 10: ext4 round trip,
/// and a smoke pass still succeeds with a member blade killed mid-workload.
#[test]
fn raid10_real_linux_client_ext4() {
    if !ready("raid10_real_linux_client_ext4")
        || !lab::require_tools("raid10_real_linux_client_ext4", &["qemu-system-x86_64"])
    {
        return;
    }
    let blades = Lab::grid(&[0, 1], 0..5, 64 * MIB);
    let mut app = Appliance::new(AOERAID, "rc10", 9000, &blades, raid10());
    app.create_and_start();
    let spec = lab::ClientSpec::new("e7.0", &[lab::Workload::Ext4, lab::Workload::Smoke])
        .env("SMOKE_MB", "32");
    let mut killed = false;
    let r = app.lab.boot_clients_with(&[spec], |_, line| {
        // Kill a member at the ext4 workload's first progress line (mid-workload).
        if !killed
            && line.starts_with("REALCLIENT-")
            && line.contains("ext4")
            && !line.contains("WORKLOAD")
        {
            killed = true;
            let _ = app.lab.blade(1, 2).kill();
        }
    });
    let r = r.expect("boot client");
    r[0].assert_passed();
    assert!(
        killed,
        "the ext4 workload printed no progress line to time the kill"
    );
    let (_, members) = app.array_state("data").unwrap();
    assert!(
        members.iter().any(|(b, s)| b == "e1.2" && s != "active"),
        "{members:?}"
    );
    app.stop();
}

/// RAID 6 over six blades on three shelves (two per shelf: a shelf's loss is within
/// what RAID 6 survives, so `create` accepts it) with two group spares: two member
/// blades, on different shelves, are killed one after the other under a verifying
/// client. The client sees no error and no mismatch; both spares take a slot and are
/// rebuilt (from the four survivors for the first), and the rebuilt array reads back.
#[test]
fn raid6_two_members_killed_under_verify() {
    if !ready("raid6_two_members_killed_under_verify") {
        return;
    }
    let blades = Lab::grid(&[0, 1, 2], 0..3, 64 * MIB);
    let members = ["e0.0", "e1.0", "e2.0", "e0.1", "e1.1", "e2.1"];
    let config = exported(&[Array::new("data", Level::Raid6, &members)
        .chunk("16KiB")
        .spare_group("spares")
        .bitmap_region("4MiB")])
    .spare_group("spares", &["e0.2", "e1.2"]);
    let mut app = Appliance::new(AOERAID, "raid6", 9000, &blades, config);
    app.create_and_start();
    // Members at 80 Mbit/s each: the verify's write and read passes take
    // about 10 s whatever the box's speed, so both kills land inside it (the
    // spares stay fast for the rebuilds).
    for (shelf, slot) in [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1)] {
        app.lab
            .blade(shelf, slot)
            .impair(Direction::Both, &Impairment::rate_mbit(80))
            .expect("rate-limit member");
    }
    let mut bench = app.spawn_bench("verify-under-two-failures", "verify", 240 * MIB, &[]);
    std::thread::sleep(Duration::from_secs(2));
    app.lab.blade(0, 0).kill().expect("kill e0.0");
    std::thread::sleep(Duration::from_secs(2));
    app.lab.blade(1, 1).kill().expect("kill e1.1");
    assert!(
        bench.try_wait().expect("bench").is_none(),
        "the verify ended before the second blade was killed:\n{}",
        bench.log()
    );
    let st = bench
        .wait_timeout(Duration::from_secs(400))
        .expect("wait bench");
    let log = bench.log();
    eprintln!("verify under two failures:\n{log}");
    assert_bench_clean(
        "verify with two members killed",
        st.is_some_and(|s| s.success()),
        &log,
    );
    let spares = ["e0.2", "e1.2"];
    let seen = app.wait_for("data", Duration::from_secs(400), |st, m| {
        st == "clean"
            && spares
                .iter()
                .all(|sp| m.iter().any(|(b, s)| b == sp && s == "active"))
    });
    let s = app.status_json().unwrap();
    let a = &s["arrays"][0];
    assert_eq!(a["level"], "raid6", "{a}");
    let ev = app.events();
    for e in ["Fail data e0.0", "Fail data e1.1"] {
        assert!(ev.contains(e), "event {e} missing; states {seen:?}:\n{ev}");
    }
    assert!(
        ev.matches("RebuildFinished data").count() >= 2,
        "two rebuilds; states {seen:?}:\n{ev}"
    );
    // What the verify wrote reads back from the rebuilt array.
    bench_clean(&app, "check after both rebuilds", "check", 240 * MIB);
    app.stop();
}

/// The RAID 5 write hole, closed by the partial-parity log. A raw client keeps
/// 32 small writes (4 KiB into a 16 KiB chunk: parity by read-modify-write) in
/// flight over the stripes where e0.1 holds data, counting a write only once its
/// reply came back. The appliance is stopped under those writes, e0.1's blade is
/// stopped, and `aoeraid run` starts again without it: every acknowledged write
/// and every sector not written since the fill reads back — what e0.1 held among
/// them rebuilt from parity. First with SIGTERM (a clean start, degraded), then
/// e0.1 rejoins and the same with SIGKILL, the kill made to tear stripes: for the
/// last 0.5 s before it (well under `dead_after`, so e0.3 is not failed) the relay
/// in front of e0.3 drops every ATA WRITE to it, so in the stripes whose parity or
/// written column lives on e0.3 the other member's write landed and e0.3's did
/// not. The array starts dirty and degraded and the log's replay makes those
/// stripes consistent before e0.1's data is rebuilt from them. Without the log
/// they rebuild wrong: see `raid5_write_hole_without_log_loses_acknowledged_writes`.
#[test]
fn raid5_sigkill_then_member_loss_keeps_acknowledged_writes() {
    if !ready("raid5_sigkill_then_member_loss_keeps_acknowledged_writes") {
        return;
    }
    if let Err(e) = torn_stripes_then_member_loss("ppl") {
        panic!("SIGKILL then e0.1 lost: {e}");
    }
}

/// The same with `consistency_policy: resync` (no log) and `aoeraid run --force`:
/// the stripes torn on e0.3 keep the other member's new block beside e0.3's old
/// one, so e0.1's acknowledged data rebuilt from them reads back wrong. Ignored
/// (it only shows that the test above needs the log); run it with `--ignored`.
#[test]
#[ignore = "shows the write hole without the log; run with --ignored"]
fn raid5_write_hole_without_log_loses_acknowledged_writes() {
    if !ready("raid5_write_hole_without_log_loses_acknowledged_writes") {
        return;
    }
    match torn_stripes_then_member_loss("resync") {
        Ok(c) => panic!("no acknowledged write lost without the log: {c:?}"),
        Err(e) => assert!(e.contains("sectors wrong"), "{e}"),
    }
}

/// The write-hole scenario of the two tests above under `policy`; the check
/// after the SIGKILL and e0.1's loss is returned (the SIGTERM round must pass).
fn torn_stripes_then_member_loss(policy: &str) -> Result<lab::CheckStats, String> {
    const VICTIM: u8 = 1;
    const TORN: u8 = 3;
    let members = ["e0.0", "e0.1", "e0.2", "e0.3", "e0.4"];
    let blades = Lab::grid(&[0], 0..5, 64 * MIB);
    let config = exported(&[Array::new("data", Level::Raid5, &members)
        .chunk("16KiB")
        .same_shelf_mirrors()
        .bitmap_region("1MiB")
        .consistency_policy(policy)]);
    let with_log = policy == "ppl";
    let run_args: &[&str] = if with_log { &[] } else { &["--force"] };
    let mut app = Appliance::new(AOERAID, "hole5", 9000, &blades, config);
    // The relay in front of e0.3 goes in now (passing everything): plumbing it
    // later would take e0.3's link away for a moment under the writes.
    let lab = app.lab.clone();
    let torn = lab.blade(0, TORN);
    let writes_to_torn = |drop_ata_writes| {
        let n = lab::Netem {
            drop_ata_writes,
            ..lab::Netem::default()
        };
        torn.impair(Direction::ToBlade, &Impairment::netem(n))
            .expect("relay in front of e0.3");
    };
    writes_to_torn(false);
    app.create();
    app.start_with(run_args);
    let span = 8 * MIB / 512;
    let targets = small_writes_beside(VICTIM.into(), members.len(), 32, span);
    let mut w = lab::AckedWriter::new(app.raw_client(), 7, 0, span, 5);
    w.fill(16, 16).expect("fill the span");

    let (mut w, stats) = write_through(w, &targets, || {
        app.stop();
    });
    restart_without(&mut app, VICTIM, run_args, "SIGTERM", &stats);
    match w.check() {
        Ok(c) => eprintln!("SIGTERM then e0.1 lost: {c:?}"),
        Err(e) => panic!("SIGTERM then e0.1 lost: {e}"),
    }
    app.lab.blade(0, VICTIM).restart().expect("start e0.1");
    app.wait_for("data", Duration::from_secs(60), |st, m| {
        st == "clean" && m.iter().all(|(_, s)| s == "active")
    });

    let (mut w, stats) = write_through(w, &targets, || {
        writes_to_torn(true);
        std::thread::sleep(Duration::from_millis(500));
        app.kill();
        writes_to_torn(false);
    });
    let s = restart_without(&mut app, VICTIM, run_args, "SIGKILL", &stats);
    let (to, _) = torn.netem_stats(0).expect("relay in front of e0.3");
    eprintln!(
        "ATA writes to e0.3 dropped before the SIGKILL: {}",
        to.dropped
    );
    assert!(to.dropped > 0, "no write to e0.3 dropped: {to:?}");
    let replayed = s["arrays"][0]["counters"]["ppl_replayed_stripes"].as_u64();
    eprintln!("SIGKILL: {replayed:?} stripes replayed from the log");
    if with_log {
        assert!(replayed > Some(0), "no log replay:\n{s}");
    }
    let checked = w.check();
    eprintln!("{policy}: SIGKILL then e0.1 lost: {checked:?}");
    app.stop();
    checked
}

/// After the appliance was stopped (`how`) under writes (`stats`): stops blade
/// e0.`victim`, starts `aoeraid run EXTRA…` again and waits for the array to
/// run degraded; returns the status then.
fn restart_without(
    app: &mut Appliance,
    victim: u8,
    extra: &[&str],
    how: &str,
    stats: &lab::WriteStats,
) -> serde_json::Value {
    eprintln!("{how} under small writes: {stats:?}");
    assert!(stats.acked > 100, "{how}: {stats:?}");
    app.lab.blade(0, victim).kill().expect("stop the victim");
    app.start_with(extra);
    app.wait_for("data", Duration::from_secs(30), |st, _| st == "degraded");
    app.status_json().unwrap()
}

/// 4 KiB writes into the data chunks of the stripes over the first `span` sectors in
/// which member `victim` holds data, as (LBA, sectors): a chunk of `chunk` sectors
/// takes four.
fn small_writes_beside(victim: usize, members: usize, chunk: u32, span: u64) -> Vec<(u64, u8)> {
    let g = raid_engine::Geometry::new(Level::Raid5, members, chunk, span).expect("geometry");
    let k = g.data_columns();
    (0..span / g.unit_sectors())
        .filter(|&row| (0..k).any(|c| g.column_slot(row, c) == victim))
        .flat_map(|row| (0..g.unit_sectors() / 8).map(move |b| (row * g.unit_sectors() + b * 8, 8)))
        .collect()
}

/// Runs `w` over `targets` (32 in flight) for 3 s, then calls `interrupt` while the
/// writes go on, and stops the writer once it returns.
fn write_through(
    mut w: lab::AckedWriter,
    targets: &[(u64, u8)],
    interrupt: impl FnOnce(),
) -> (lab::AckedWriter, lab::WriteStats) {
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let r = w.run(targets, 32, &stop);
            (w, r)
        });
        std::thread::sleep(Duration::from_secs(3));
        interrupt();
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let (w, r) = writer.join().expect("writer thread");
        (w, r.expect("writes"))
    })
}
