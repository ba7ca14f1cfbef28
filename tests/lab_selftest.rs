//! Self-tests of the namespace lab (tests/lab): blades answer, impairments
//! apply and go away, blades die and come back, captures work, teardown
//! leaves nothing behind. Root only (CI runs as root); kept short.

use aoeraid_lab as lab;

use std::process::Command;
use std::time::{Duration, Instant};

use lab::{BladeSpec, Direction, Impairment, Lab, LabConfig, Netem, Segment};

const MIB: u64 = 1 << 20;

fn ready(test: &str) -> bool {
    lab::require_root(test) && lab::require_tools(test, &["vblade", "aoeping", "aoecfg", "tc"])
}

fn netns_exists(name: &str) -> bool {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.split_whitespace().next() == Some(name))
}

fn timed(name: &str, f: impl FnOnce()) {
    let t = Instant::now();
    f();
    eprintln!("{name}: {:.2}s", t.elapsed().as_secs_f64());
}

/// 8 blades (e0.0-e0.3, e1.0-e1.3); each answers aoeping from an initiator
/// port with the Sector Count its MTU allows ((MTU-36)/512: 2 or 17).
fn eight_blades(mtu: u32) {
    let lab = Lab::with_blades(
        &format!("eight-{mtu}"),
        mtu,
        &Lab::grid(&[0, 1], 0..4, 64 * MIB),
    )
    .expect("lab");
    let ini = lab
        .add_initiator_port(&Segment::BACK)
        .expect("initiator port");
    assert_eq!(lab.blades().len(), 8);
    let mut macs = Vec::new();
    for b in lab.blades() {
        let r = lab
            .aoeping(&ini, b.shelf(), b.slot(), 2)
            .unwrap_or_else(|e| panic!("{}: {e}", b.name()));
        assert_eq!(
            u32::from(r.sector_count),
            (mtu - 36) / 512,
            "{} sector count at MTU {mtu}",
            b.name()
        );
        assert_eq!(r.buffer_count, 16, "{} buffer count", b.name());
        assert!(
            r.config.starts_with(&format!("aoelab blade {}", b.name())),
            "config string {:?}",
            r.config
        );
        assert_eq!(r.mac, b.mac(0).expect("mac").replace(':', ""));
        assert_eq!(b.sectors().expect("size"), 64 * MIB / 512);
        macs.push(r.mac);
    }
    macs.sort();
    macs.dedup();
    assert_eq!(macs.len(), 8, "every blade has its own MAC");
}

#[test]
fn eight_blades_mtu_1500() {
    if ready("eight_blades_mtu_1500") {
        timed("eight_blades_mtu_1500", || eight_blades(1500));
    }
}

#[test]
fn eight_blades_mtu_9000() {
    if ready("eight_blades_mtu_9000") {
        timed("eight_blades_mtu_9000", || eight_blades(9000));
    }
}

#[test]
fn impairments_apply_change_and_remove() {
    if !ready("impairments_apply_change_and_remove") {
        return;
    }
    timed("impairments_apply_change_and_remove", || {
        let lab = Lab::with_blades("impair", 1500, &[BladeSpec::new(0, 0, 16 * MIB)]).expect("lab");
        let ini = lab.add_initiator_port(&Segment::BACK).expect("port");
        let b = lab.blade(0, 0);
        let rtt = || {
            let t = Instant::now();
            lab.aoeping(&ini, 0, 0, 3).expect("aoeping");
            t.elapsed()
        };
        let base = rtt();

        // Replies delayed by 1 s: the round trip shows it.
        b.impair(
            Direction::FromBlade,
            &Impairment::netem(Netem {
                delay_ms: 1000.0,
                ..Netem::default()
            }),
        )
        .expect("netem delay");
        let slow = rtt();
        assert!(
            slow >= Duration::from_millis(1000),
            "delay not applied: {slow:?}"
        );

        // loss + reorder + duplicate both ways, plus a rate limit: the relay
        // counts what it did to the frames of 40 concurrent pings.
        let imp = Impairment::loss_reorder_dup(30.0, 25.0, 30.0).with_rate_mbit(100);
        b.impair(Direction::Both, &imp).expect("netem+tbf");
        let q = b.qdiscs().expect("qdiscs");
        assert_eq!(q.matches("tbf").count(), 2, "{q}");
        let answered: usize = std::thread::scope(|s| {
            let pings: Vec<_> = (0..40)
                .map(|_| s.spawn(|| lab.aoeping(&ini, 0, 0, 1).is_ok()))
                .collect();
            pings
                .into_iter()
                .map(|p| usize::from(p.join().expect("ping thread")))
                .sum()
        });
        let (to, from) = b.netem_stats(0).expect("relay in place");
        eprintln!("40 pings, {answered} answered; to blade {to:?}; from blade {from:?}");
        assert!(answered > 0, "nothing got through 30% loss");
        assert!(
            to.frames >= 40 && to.dropped > 0 && to.duplicated > 0,
            "{to:?}"
        );
        assert!(from.frames > 0, "{from:?}");

        // Changed at run time to a bare rate limit: the relay goes away.
        b.impair(Direction::Both, &Impairment::rate_mbit(10))
            .expect("tbf only");
        let q = lab.qdisc(&b.ports()[0].peer).expect("qdisc");
        assert!(q.contains("tbf") && q.contains("10Mbit"), "{q}");
        assert!(b.netem_stats(0).is_none(), "relay still in place");
        lab.aoeping(&ini, 0, 0, 2)
            .expect("answers through the rate limit");

        b.clear_impairment().expect("clear");
        let q = b.qdiscs().expect("qdiscs");
        assert!(!q.contains("tbf"), "{q}");
        let fast = rtt();
        assert!(
            fast < Duration::from_millis(1000),
            "delay still there after clear: {fast:?} (base {base:?})"
        );

        // Any lab port works the same way, e.g. the initiator's own.
        lab.impair(
            &ini,
            &Impairment::netem(Netem {
                delay_ms: 200.0,
                ..Netem::default()
            }),
        )
        .expect("ini delay");
        assert!(rtt() >= Duration::from_millis(200));
        lab.clear_impairment(&ini).expect("clear ini");
        assert!(lab.netem_stats(&ini).is_none());
    });
}

#[test]
fn blade_kill_stop_restart() {
    if !ready("blade_kill_stop_restart") {
        return;
    }
    timed("blade_kill_stop_restart", || {
        let lab =
            Lab::with_blades("killrestart", 1500, &[BladeSpec::new(1, 2, 16 * MIB)]).expect("lab");
        let ini = lab.add_initiator_port(&Segment::BACK).expect("port");
        let b = lab.blade(1, 2);
        let first = b.pids();
        assert_eq!(first.len(), 1);
        lab.aoeping(&ini, 1, 2, 2).expect("answers at start");

        b.stop().expect("SIGSTOP");
        assert!(
            lab.aoeping(&ini, 1, 2, 1).is_err(),
            "a stopped blade answered"
        );
        b.cont().expect("SIGCONT");
        lab.aoeping(&ini, 1, 2, 2).expect("answers after SIGCONT");

        b.kill().expect("SIGKILL");
        assert!(!b.is_running());
        assert!(
            lab.aoeping(&ini, 1, 2, 1).is_err(),
            "a killed blade answered"
        );

        // The data survives in the file; a restart serves the same file.
        std::fs::write(b.path(), vec![0xabu8; (16 * MIB) as usize]).expect("write blade file");
        b.restart().expect("restart");
        assert!(b.is_running());
        assert_ne!(b.pids(), first, "restart started a new process");
        lab.aoeping(&ini, 1, 2, 2).expect("answers after restart");
        assert_eq!(std::fs::read(b.path()).expect("read")[..4], [0xab; 4]);

        // A grown file is exported after a restart.
        b.set_len(32 * MIB).expect("grow");
        b.restart().expect("restart");
        assert_eq!(b.sectors().expect("size"), 32 * MIB / 512);
    });
}

#[test]
fn dual_port_blade_and_link_down() {
    if !ready("dual_port_blade_and_link_down") {
        return;
    }
    timed("dual_port_blade_and_link_down", || {
        let lab = Lab::with_blades(
            "dualport",
            9000,
            &[BladeSpec::new(0, 7, 16 * MIB).dual_port()],
        )
        .expect("lab");
        let ini_a = lab.add_initiator_port(&Segment::BACK).expect("port a");
        let ini_b = lab.add_initiator_port(&Segment::BACK2).expect("port b");
        let b = lab.blade(0, 7);
        assert_eq!(b.pids().len(), 2, "one vblade per port");
        let ra = lab.aoeping(&ini_a, 0, 7, 2).expect("path a");
        let rb = lab.aoeping(&ini_b, 0, 7, 2).expect("path b");
        assert_ne!(ra.mac, rb.mac, "two paths = two MACs");
        assert_eq!((ra.sector_count, rb.sector_count), (17, 17));

        b.link_down(0).expect("link down");
        assert!(
            lab.aoeping(&ini_a, 0, 7, 1).is_err(),
            "answered over a downed link"
        );
        lab.aoeping(&ini_b, 0, 7, 2).expect("other path still up");
        b.link_up(0).expect("link up");
        let t = Instant::now();
        while lab.aoeping(&ini_a, 0, 7, 1).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "path a did not come back"
            );
        }
    });
}

#[test]
fn capture_sees_only_clean_aoe() {
    if !ready("capture_sees_only_clean_aoe")
        || !lab::require_tools("capture", &["dumpcap", "tshark"])
    {
        return;
    }
    timed("capture_sees_only_clean_aoe", || {
        let lab =
            Lab::with_blades("capture", 1500, &[BladeSpec::new(0, 1, 16 * MIB)]).expect("lab");
        let ini = lab.add_initiator_port(&Segment::BACK).expect("port");
        let cap = lab.capture(&ini).expect("capture");
        for _ in 0..3 {
            lab.aoeping(&ini, 0, 1, 2).expect("aoeping");
        }
        lab.output("aoeping", &["-I", "-s", "2", "0", "1", &ini])
            .expect("aoeping -I");
        let file = cap.stop().expect("stop");
        let s = file.summary().expect("tshark");
        // 3 queries + 3 replies + identify request + reply
        assert!(s.frames >= 8, "{s:?}");
        assert!(
            s.all_aoe_clean(),
            "{s:?}\n{}",
            file.describe("!aoe || _ws.malformed", 10)
                .unwrap_or_default()
        );
        assert!(file.count("aoe").expect("count") >= 8);
        assert_eq!(file.dropped, Some(0));
    });
}

#[test]
fn teardown_leaves_nothing_even_after_panic() {
    if !ready("teardown_leaves_nothing_even_after_panic") {
        return;
    }
    timed("teardown_leaves_nothing_even_after_panic", || {
        // A process handle that outlives the lab: the lab kills it anyway.
        let mut sleeper;
        let (ns, dir, pid) = {
            let mut lab = Lab::new("teardown", LabConfig::default()).expect("lab");
            let pid = lab
                .add_blade(BladeSpec::new(3, 3, 8 * MIB))
                .expect("blade")
                .pids()[0];
            let mut c = lab.cmd("sleep");
            c.arg("600");
            sleeper = lab.spawn("sleeper", c).expect("spawn");
            assert!(netns_exists(lab.ns()));
            (lab.ns().to_string(), lab.dir().to_path_buf(), pid)
        };
        assert!(!netns_exists(&ns), "namespace {ns} left behind");
        assert!(!dir.exists(), "temp dir {} left behind", dir.display());
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "vblade {pid} survived"
        );
        let st = sleeper
            .wait_timeout(Duration::from_secs(5))
            .expect("wait")
            .expect("sleeper still running");
        assert!(!st.success(), "sleeper was killed, not finished");

        // Same when the test panics while the lab is alive.
        let names = std::sync::Mutex::new(String::new());
        let r = std::panic::catch_unwind(|| {
            let lab = Lab::with_blades("teardown-panic", 1500, &[BladeSpec::new(3, 4, 8 * MIB)])
                .expect("lab");
            *names.lock().unwrap() = lab.ns().to_string();
            panic!("deliberate panic with a live lab");
        });
        assert!(r.is_err());
        let ns = names.lock().unwrap().clone();
        assert!(
            !ns.is_empty() && !netns_exists(&ns),
            "namespace {ns} left behind after a panic"
        );
    });
}
