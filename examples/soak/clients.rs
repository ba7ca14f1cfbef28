//! The verifying clients: one thread per volume, each running `aoeraid bench --rw
//! verify` over its span again and again (a fresh pattern seed per pass, so a stale
//! sector never compares equal) until told to stop.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// What one client saw, all passes together.
#[derive(Debug, Default, Clone)]
pub(crate) struct Tally {
    pub(crate) passes: u64,
    pub(crate) errors: u64,
    pub(crate) mismatches: u64,
    pub(crate) retransmits: u64,
    /// One line per failed pass: what bench said.
    pub(crate) failures: Vec<String>,
}

/// One client: where it runs and what it verifies.
pub(crate) struct ClientSpec {
    pub(crate) ns: String,
    pub(crate) bin: String,
    pub(crate) iface: String,
    pub(crate) device: String,
    pub(crate) span_mib: u64,
    /// How long the client retransmits to a silent appliance before it calls the
    /// device dead: longer than the appliance's restart after a SIGKILL.
    pub(crate) dead_time_s: u64,
    pub(crate) seed: u64,
}

/// Running clients; `stop` lets each finish its pass and returns the tallies.
pub(crate) struct Clients {
    stop: Arc<AtomicBool>,
    /// PIDs of the bench processes running now: killed by PID if the soak aborts.
    pids: Arc<Mutex<BTreeSet<u32>>>,
    threads: Vec<(String, JoinHandle<Tally>, Arc<Mutex<Tally>>)>,
}

impl Clients {
    pub(crate) fn start(specs: Vec<ClientSpec>) -> Clients {
        let stop = Arc::new(AtomicBool::new(false));
        let pids = Arc::new(Mutex::new(BTreeSet::new()));
        let threads = specs
            .into_iter()
            .map(|spec| {
                let live = Arc::new(Mutex::new(Tally::default()));
                let (stop, pids, tally) = (stop.clone(), pids.clone(), live.clone());
                let name = spec.device.clone();
                let h = std::thread::spawn(move || run(&spec, &stop, &pids, &tally));
                (name, h, live)
            })
            .collect();
        Clients {
            stop,
            pids,
            threads,
        }
    }

    /// The tallies so far, per device.
    pub(crate) fn snapshot(&self) -> Vec<(String, Tally)> {
        self.threads
            .iter()
            .map(|(d, _, t)| (d.clone(), t.lock().unwrap().clone()))
            .collect()
    }

    /// Lets every client finish the pass it is in, then returns the tallies.
    pub(crate) fn finish(mut self) -> Vec<(String, Tally)> {
        self.stop.store(true, Ordering::SeqCst);
        std::mem::take(&mut self.threads)
            .into_iter()
            .map(|(d, h, _)| (d, h.join().expect("client thread")))
            .collect()
    }
}

impl Drop for Clients {
    fn drop(&mut self) {
        // Only reached with passes still running when the soak gave up.
        self.stop.store(true, Ordering::SeqCst);
        for &pid in self.pids.lock().unwrap().iter() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

fn run(
    spec: &ClientSpec,
    stop: &AtomicBool,
    pids: &Mutex<BTreeSet<u32>>,
    tally: &Mutex<Tally>,
) -> Tally {
    let mut pass = 0u64;
    while !stop.load(Ordering::SeqCst) {
        pass += 1;
        let seed = spec.seed.wrapping_mul(1_000_003).wrapping_add(pass);
        let dead = format!("{}s", spec.dead_time_s);
        let span = format!("{}MiB", spec.span_mib);
        let child = Command::new("ip")
            .args(["netns", "exec", &spec.ns, &spec.bin, "bench", "--iface"])
            .args([&spec.iface, "--device", &spec.device, "--rw", "verify"])
            .args(["--span", &span, "--bs", "64K", "--qd", "8", "--json"])
            .args(["--seed", &seed.to_string(), "--dead-time", &dead])
            .args(["--find-timeout", &dead])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn bench");
        let pid = child.id();
        pids.lock().unwrap().insert(pid);
        let out = child.wait_with_output().expect("bench output");
        pids.lock().unwrap().remove(&pid);
        let text = String::from_utf8_lossy(&out.stdout);
        let report: Option<serde_json::Value> = text
            .find('{')
            .and_then(|i| serde_json::from_str(&text[i..]).ok());
        let mut t = tally.lock().unwrap();
        t.passes += 1;
        let field = |k: &str| report.as_ref().and_then(|r| r[k].as_u64()).unwrap_or(0);
        t.errors += field("errors");
        t.mismatches += field("mismatches");
        t.retransmits += field("retransmits");
        if !out.status.success() || report.is_none() {
            let why = report
                .as_ref()
                .and_then(|r| r["first_error"].as_str().map(String::from))
                .unwrap_or_else(|| String::from_utf8_lossy(&out.stderr).trim().to_string());
            t.failures.push(format!(
                "{} pass {pass} (seed {seed}): {}, errors {}, mismatches {}: {why}",
                spec.device,
                out.status,
                field("errors"),
                field("mismatches")
            ));
            if report.is_none() {
                // Not a verify that ran (bench could not even start): count it.
                t.errors += 1;
            }
            // The first failure says it all; passes after it would only repeat it.
            break;
        }
    }
    tally.lock().unwrap().clone()
}
