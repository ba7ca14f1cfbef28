//! The event dispatcher with real programs: arguments and order, metrics,
//! failing, missing and hung programs, and a full queue.

use aoeraid_appliance::events::{Dispatcher, DispatcherOptions, Event, EventKind};
use aoeraid_appliance::metrics::Metrics;
use aoeraid_lab::TempDir;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

/// A test's directory (for its scripts and their output) and the metrics its
/// dispatchers count into.
struct Fixture {
    dir: TempDir,
    metrics: Arc<Metrics>,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture {
            dir: TempDir::new("ctl-events"),
            metrics: Arc::new(Metrics::new()),
        }
    }

    /// A dispatcher of appliance `rb1` running `program` (killed after `timeout`, at
    /// most `queue` events waiting).
    fn start(&self, program: &Path, timeout: Duration, queue: usize) -> Dispatcher {
        let opts = DispatcherOptions {
            program: Some(program.to_path_buf()),
            timeout,
            queue,
            appliance: "rb1".into(),
        };
        Dispatcher::start(opts, Some(self.metrics.clone())).unwrap()
    }

    /// `aoeraid_events_total{event}`.
    fn events(&self, event: &str) -> u64 {
        self.metrics.events_total.with_label_values(&[event]).get()
    }

    /// `aoeraid_event_program_failures_total{reason}`.
    fn failures(&self, reason: &str) -> u64 {
        self.metrics
            .event_program_failures
            .with_label_values(&[reason])
            .get()
    }
}

#[test]
fn program_gets_event_array_member_in_order() {
    let f = Fixture::new();
    let out = f.dir.join("events.log");
    let prog = f.dir.script(
        "on-event",
        &format!("echo \"$# $* env=$AOERAID_EVENT/$AOERAID_ARRAY/$AOERAID_MEMBER/$AOERAID_APPLIANCE\" >> {}", out.display()),
    );
    let d = f.start(&prog, Duration::from_secs(10), 64);
    let sink = d.sink();
    let seq = [
        Event::new(EventKind::Fail, "data").member("e1.1"),
        Event::new(EventKind::DegradedArray, "data"),
        Event::new(EventKind::MoveSpare, "data").member("e0.4"),
        Event::new(EventKind::RebuildStarted, "data").member("e0.4"),
        Event::new(EventKind::Rebuild(20), "data"),
        Event::new(EventKind::RebuildFinished, "data").member("e0.4"),
        Event::new(EventKind::SpareActive, "data").member("e0.4"),
    ];
    for e in &seq {
        assert!(sink.emit(e.clone()));
    }
    d.shutdown();
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "3 Fail data e1.1 env=Fail/data/e1.1/rb1",
            "2 DegradedArray data env=DegradedArray/data//rb1",
            "3 MoveSpare data e0.4 env=MoveSpare/data/e0.4/rb1",
            "3 RebuildStarted data e0.4 env=RebuildStarted/data/e0.4/rb1",
            "2 Rebuild20 data env=Rebuild20/data//rb1",
            "3 RebuildFinished data e0.4 env=RebuildFinished/data/e0.4/rb1",
            "3 SpareActive data e0.4 env=SpareActive/data/e0.4/rb1",
        ]
    );
    assert_eq!(f.events("Fail"), 1);
    assert_eq!(f.events("Rebuild20"), 1);
    assert!(f
        .metrics
        .render()
        .contains("aoeraid_events_total{event=\"MoveSpare\"} 1"));
}

#[test]
fn failing_and_missing_programs_are_counted() {
    let f = Fixture::new();
    let prog = f.dir.script("fails", "exit 3");
    let d = f.start(&prog, Duration::from_secs(10), 8);
    d.sink().emit(Event::new(EventKind::TestMessage, "data"));
    d.sink().emit(Event::new(EventKind::TestMessage, "data"));
    d.shutdown();
    assert_eq!(f.failures("exit"), 2);

    let d = f.start(&f.dir.join("does-not-exist"), Duration::from_secs(10), 8);
    d.sink().emit(Event::new(EventKind::NewArray, "data"));
    d.shutdown();
    assert_eq!(f.failures("spawn"), 1);
    assert_eq!(f.events("TestMessage"), 2);
}

#[test]
fn hung_program_is_killed_with_its_children() {
    let f = Fixture::new();
    let pids = f.dir.join("pids");
    // The script starts a grandchild and waits on it: both must die.
    let prog = f.dir.script(
        "hangs",
        &format!("sleep 600 &\necho $$ $! >> {}\nwait", pids.display()),
    );
    let d = f.start(&prog, Duration::from_millis(300), 8);
    d.sink()
        .emit(Event::new(EventKind::Fail, "data").member("e0.1"));
    d.sink().emit(Event::new(EventKind::DegradedArray, "data"));
    d.shutdown();
    assert_eq!(f.failures("timeout"), 2);
    let text = std::fs::read_to_string(&pids).unwrap();
    let all: Vec<u32> = text
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(all.len(), 4, "two runs, each a shell and a sleep: {text}");
    for pid in all {
        // The shell was reaped by us; the sleep, orphaned by the kill, is
        // reaped by init. Either way it must not be running: a zombie
        // that init has not collected yet is dead too. A process killed while
        // asleep is runnable (R) until the scheduler lets it die, which on a
        // loaded machine takes a moment: wait for that, but not for long.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .next()
                .unwrap_or("X")
                .to_string();
            if stat.is_empty() || state == "Z" || state == "X" {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "pid {pid} still {state} 5 s after the kill"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn full_queue_drops_but_counts_and_never_blocks() {
    let f = Fixture::new();
    let prog = f.dir.script("slow", "sleep 600");
    let d = f.start(&prog, Duration::from_millis(200), 2);
    let sink = d.sink();
    let mut accepted = 0;
    for _ in 0..50 {
        if sink.emit(Event::new(EventKind::ChecksumRepaired, "data").member("e0.2")) {
            accepted += 1;
        }
    }
    d.shutdown();
    let total = f.events("ChecksumRepaired");
    let dropped = f.metrics.events_dropped.get();
    assert_eq!(total, 50, "every event is counted");
    assert!(
        dropped > 0,
        "a queue of 2 behind a hung program must overflow"
    );
    assert!(accepted < 50);
    // Each event that got a run was killed at the timeout.
    let ran = f.failures("timeout");
    assert!(
        ran >= 1 && ran + dropped <= 50,
        "ran {ran}, dropped {dropped}"
    );
}

#[test]
fn without_a_program_events_are_still_counted() {
    let f = Fixture::new();
    let d = Dispatcher::start(DispatcherOptions::default(), Some(f.metrics.clone())).unwrap();
    assert!(d
        .sink()
        .emit(Event::new(EventKind::ScrubFinished, "data").detail("0 mismatches")));
    d.shutdown();
    assert_eq!(f.events("ScrubFinished"), 1);
}

/// `aoeraid test-event`: the configured program runs once per array with a
/// TestMessage and the same arguments and environment as a real event; a failing
/// or hung program makes the command fail and says why.
#[test]
fn test_event_runs_the_program_for_every_array() {
    let dir = TempDir::new("ctl-events");
    let log = dir.join("calls");
    let ok = dir.script(
        "ok",
        &format!(
            "echo \"$* app=$AOERAID_APPLIANCE event=$AOERAID_EVENT\" >> {}",
            log.display()
        ),
    );
    let yaml = |program: &Path| {
        format!(
            "appliance: {{name: rb9, event_program: {}, event_timeout: 1s}}\n\
             backend: {{interfaces: [eth1]}}\n\
             arrays:\n\
             \x20 - {{name: data, level: raid1, members: [e0.0, e1.0]}}\n\
             \x20 - {{name: logs, level: raid1, members: [e0.1, e1.1]}}\n",
            program.display()
        )
    };
    let cfg = dir.join("appliance.yaml");
    let test_event = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_aoeraid"));
        c.args(["test-event", "--config"]).arg(&cfg);
        c
    };
    std::fs::write(&cfg, yaml(&ok)).unwrap();
    aoeraid_lab::run_command(&mut test_event()).unwrap_or_else(|e| panic!("{e}"));
    let calls = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        calls.lines().collect::<Vec<_>>(),
        [
            "TestMessage data app=rb9 event=TestMessage",
            "TestMessage logs app=rb9 event=TestMessage"
        ]
    );

    for (name, body, why) in [
        ("fails", "exit 3", "exit status: 3"),
        ("hangs", "sleep 30", "killed after event_timeout"),
    ] {
        let program = dir.script(name, body);
        std::fs::write(&cfg, yaml(&program)).unwrap();
        let out = test_event().output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        assert!(err.contains(why), "{name}: {err}");
    }

    std::fs::write(&cfg, "appliance: {name: rb9}\n").unwrap();
    let out = test_event().output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no appliance.event_program"));
}
