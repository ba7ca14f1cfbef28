//! What a guest printed on its console, parsed.

use std::fmt::Write as _;
use std::process::ExitStatus;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Skip,
    Fail(i32),
}

/// One guest's run.
#[derive(Clone, Debug)]
pub struct ClientResult {
    /// Index of the guest within its `boot_clients` call.
    pub index: usize,
    /// MAC of eth0.
    pub mac: String,
    /// The guest's taps, comma-separated (one per NIC).
    pub tap: String,
    /// The guest printed `REALCLIENT-RESULT: PASS`.
    pub passed: bool,
    /// The reason after `REALCLIENT-RESULT: FAIL`, or why there was no result.
    pub failure: Option<String>,
    /// (workload, outcome) in the order they ran.
    pub workloads: Vec<(String, Outcome)>,
    /// (workload, key, value) from `REALCLIENT-METRIC` lines.
    pub metrics: Vec<(String, String, String)>,
    /// (label, guest uptime s) from `REALCLIENT-TIME` lines.
    pub times: Vec<(String, f64)>,
    /// qemu start to qemu exit.
    pub wall: Duration,
    pub timed_out: bool,
    pub qemu_status: Option<ExitStatus>,
    /// The whole serial console.
    pub console: String,
}

impl ClientResult {
    pub(crate) fn parse(index: usize, console: String) -> ClientResult {
        let mut r = ClientResult {
            index,
            mac: String::new(),
            tap: String::new(),
            passed: false,
            failure: None,
            workloads: Vec::new(),
            metrics: Vec::new(),
            times: Vec::new(),
            wall: Duration::ZERO,
            timed_out: false,
            qemu_status: None,
            console: String::new(),
        };
        for line in console.lines().map(|l| l.trim_end_matches('\r')) {
            if let Some(rest) = line.strip_prefix("REALCLIENT-RESULT: ") {
                if rest.trim() == "PASS" {
                    r.passed = true;
                } else {
                    r.failure = Some(rest.trim_start_matches("FAIL").trim().to_string());
                }
            } else if let Some(rest) = line.strip_prefix("REALCLIENT-WORKLOAD ") {
                let f: Vec<&str> = rest.split_whitespace().collect();
                if f.len() >= 2 {
                    let rc = f
                        .get(2)
                        .and_then(|x| x.strip_prefix("rc="))
                        .and_then(|x| x.parse().ok())
                        .unwrap_or(-1);
                    let o = match f[1] {
                        "PASS" => Outcome::Pass,
                        "SKIP" => Outcome::Skip,
                        _ => Outcome::Fail(rc),
                    };
                    r.workloads.push((f[0].to_string(), o));
                }
            } else if let Some(rest) = line.strip_prefix("REALCLIENT-METRIC ") {
                if let Some((w, kv)) = rest.split_once(' ') {
                    if let Some((k, v)) = kv.split_once('=') {
                        r.metrics
                            .push((w.to_string(), k.to_string(), v.trim().to_string()));
                    }
                }
            } else if let Some(rest) = line.strip_prefix("REALCLIENT-TIME ") {
                let mut f = rest.split_whitespace();
                if let (Some(l), Some(t)) = (f.next(), f.next().and_then(|t| t.parse().ok())) {
                    r.times.push((l.to_string(), t));
                }
            }
        }
        r.console = console;
        r
    }

    pub fn outcome(&self, workload: &str) -> Option<Outcome> {
        self.workloads
            .iter()
            .find(|(w, _)| w == workload)
            .map(|(_, o)| *o)
    }
    pub fn metric(&self, workload: &str, key: &str) -> Option<&str> {
        self.metrics
            .iter()
            .find(|(w, k, _)| w == workload && k == key)
            .map(|(_, _, v)| v.as_str())
    }
    pub fn metric_f64(&self, workload: &str, key: &str) -> Option<f64> {
        self.metric(workload, key)?.parse().ok()
    }
    /// Guest uptime at a `REALCLIENT-TIME` label ("init", "aoe-device", "end", ...).
    pub fn time(&self, label: &str) -> Option<f64> {
        self.times.iter().find(|(l, _)| l == label).map(|(_, t)| *t)
    }
    /// Lines of the console that start with `prefix` (e.g. "REALCLIENT-EVENT").
    pub fn lines_with(&self, prefix: &str) -> Vec<&str> {
        self.console
            .lines()
            .map(|l| l.trim_end_matches('\r'))
            .filter(|l| l.starts_with(prefix))
            .collect()
    }

    /// A few lines: verdict, workloads, metrics, boot times.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let verdict = if self.passed {
            "PASS".to_string()
        } else {
            format!("FAIL {}", self.failure.as_deref().unwrap_or(""))
        };
        let _ = writeln!(
            s,
            "guest {} ({} on {}): {verdict}; wall {:.1}s, init@{:?}s device@{:?}s end@{:?}s{}",
            self.index,
            self.mac,
            self.tap,
            self.wall.as_secs_f64(),
            self.time("init"),
            self.time("aoe-device"),
            self.time("end"),
            if self.timed_out { " TIMED OUT" } else { "" }
        );
        for (w, o) in &self.workloads {
            let _ = writeln!(s, "  {w}: {o:?}");
        }
        for (w, k, v) in &self.metrics {
            let _ = writeln!(s, "  {w}.{k} = {v}");
        }
        s
    }

    /// Asserts the `stat` workload saw the device up, carrying as many whole
    /// sectors per frame as `mtu` leaves after the 36-byte AoE/ATA headers.
    pub fn assert_stat(&self, mtu: u32) {
        assert_eq!(
            self.metric("stat", "state"),
            Some("up"),
            "{}",
            self.summary()
        );
        let payload = ((mtu - 36) / 512 * 512).to_string();
        assert_eq!(
            self.metric("stat", "payload"),
            Some(payload.as_str()),
            "{} sectors per frame at MTU {mtu}",
            (mtu - 36) / 512
        );
    }

    /// Asserts the `revalidate` workload ended with the device at `bytes`.
    pub fn assert_revalidated(&self, bytes: u64) {
        assert_eq!(
            self.metric("revalidate", "new_sectors"),
            Some((bytes / 512).to_string().as_str()),
            "{}",
            self.summary()
        );
    }

    /// Panics with the summary and the console tail unless the guest passed
    /// and every workload passed (SKIP counts as not passed).
    pub fn assert_passed(&self) {
        let all = self.workloads.iter().all(|(_, o)| *o == Outcome::Pass);
        if !(self.passed && all) {
            let tail: Vec<&str> = self.console.lines().rev().take(80).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            panic!(
                "real client failed:\n{}---- console tail ----\n{}",
                self.summary(),
                tail.join("\n")
            );
        }
    }
}
