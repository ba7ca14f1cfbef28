//! An HA pair in a lab: the standby of a running appliance (a peer on the
//! same blades whose plain `aoeraid run` must refuse them) and the takeover
//! as Pacemaker does it — the active SIGKILLed, the standby started through
//! the resource agent's `start` — with the checks every takeover test makes
//! of it afterwards.

use std::time::{Duration, Instant};

use crate::{Appliance, OcfResource, OCF_SUCCESS};

/// What one takeover took, from the host's side.
pub struct Takeover {
    /// The emulated detection (Pacemaker's monitor finds the dead process at
    /// its next run): `HA_MONITOR_S` seconds, 0 unless `benches/ha_takeover.sh`
    /// sets it.
    pub detection: Duration,
    /// The resource agent's `start` of the standby: takeover to serving.
    pub b_start: Duration,
    /// The active's SIGKILL to the standby serving.
    pub kill_to_serving: Duration,
    /// The active's log up to its death.
    pub a_log: String,
}

impl Appliance {
    /// The standby of this (running, active) appliance: [`Appliance::peer`]
    /// `name`, not started, whose plain `aoeraid run` was refused because this
    /// one holds the blades.
    pub fn standby(&self, name: &str, metrics_port: u16) -> Appliance {
        let b = self.peer(name, metrics_port);
        let (st, log) = b.run_to_exit(&[], Duration::from_secs(30));
        assert!(
            st.is_some_and(|s| !s.success()),
            "a plain run of the standby must refuse the active's blades: {log}"
        );
        b
    }

    /// `after` from now (the client's I/O in full flow), SIGKILLs this
    /// appliance, waits the emulated monitor interval and starts the standby
    /// through `rsc`, its resource agent (a takeover); returns once that
    /// `start` succeeded.
    pub fn take_over_by(&mut self, rsc: &OcfResource, after: Duration) -> Takeover {
        take_over(|| self.kill(), rsc, after)
    }
}

impl OcfResource<'_> {
    /// SIGKILLs the daemon this resource's `start` left running, as a crash
    /// (the pidfile stays); returns its log once the process is gone.
    pub fn kill(&self) -> String {
        let pidfile = self.param("pidfile").expect("pidfile");
        let pid = std::fs::read_to_string(pidfile).expect("the agent's pidfile");
        let pid = pid.trim();
        let (ok, out) = self.lab.outcome("kill", &["-KILL", pid]);
        assert!(ok, "kill -KILL {pid}: {out}");
        let t = Instant::now();
        // Gone once reaped (or a zombie: its sockets are closed by then).
        let gone = || match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z'),
            Err(_) => true,
        };
        while !gone() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "pid {pid} survived SIGKILL"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.log()
    }

    /// What the daemons this resource started printed (its `logfile`).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.param("logfile").expect("logfile")).unwrap_or_default()
    }

    /// [`Appliance::take_over_by`] for an active this resource started: its
    /// daemon is SIGKILLed and `rsc` (the other appliance's) started.
    pub fn take_over_by(&self, rsc: &OcfResource, after: Duration) -> Takeover {
        take_over(|| self.kill(), rsc, after)
    }
}

/// After `after`, `kill` the active (returning its log), wait the emulated
/// detection, `start` `rsc`.
fn take_over(kill: impl FnOnce() -> String, rsc: &OcfResource, after: Duration) -> Takeover {
    let detection = Duration::from_secs_f64(
        std::env::var("HA_MONITOR_S")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0),
    );
    std::thread::sleep(after);
    let killed = Instant::now();
    let a_log = kill();
    std::thread::sleep(detection);
    let t = Instant::now();
    rsc.expect("start", OCF_SUCCESS);
    Takeover {
        detection,
        b_start: t.elapsed(),
        kill_to_serving: killed.elapsed(),
        a_log,
    }
}

impl Takeover {
    /// "detection …; the standby's start …; serving … after the kill".
    pub fn summary(&self) -> String {
        format!(
            "detection {:.2} s; the standby's start (resource agent) {:.2} s; serving {:.2} s \
             after the active's SIGKILL",
            self.detection.as_secs_f64(),
            self.b_start.as_secs_f64(),
            self.kill_to_serving.as_secs_f64()
        )
    }

    /// The export moved through the members: A saved its state record, B
    /// (started through `rsc`) read it.
    pub fn assert_moved(&self, rsc: &OcfResource) {
        assert!(
            self.a_log.contains("export state saved"),
            "A saved the export state on the members:\n{}",
            self.a_log
        );
        let b_log = rsc.log();
        assert!(
            b_log.contains("export state from record"),
            "B took the export state from the members:\n{b_log}"
        );
    }

    /// [`Takeover::assert_moved`]; B (`b`, started through `rsc`) monitors
    /// as running. Prints B's start-up phases, waits until `array` is clean
    /// on B (A died with writes in flight: B resyncs their dirty bitmap
    /// regions under the clients' I/O) and stops B through the agent.
    pub fn check_and_stop(&self, b: &Appliance, rsc: &OcfResource, array: &str) {
        self.assert_moved(rsc);
        rsc.expect("monitor", OCF_SUCCESS);
        for l in rsc.log().lines().filter(|l| l.contains("start-up took")) {
            eprintln!(
                "takeover: the new active's {}",
                l.trim_start_matches("aoeraid: ")
            );
        }
        let seen = b.wait_for(array, Duration::from_secs(120), |st, _| st == "clean");
        eprintln!("takeover: the new active's array states after the workload {seen:?}");
        rsc.expect("stop", OCF_SUCCESS);
    }
}
