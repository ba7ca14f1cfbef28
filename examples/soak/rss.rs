//! The daemon's resident set over time: a sampler thread reads VmRSS of whichever
//! `aoeraid run` is up (the soak restarts it after each SIGKILL), and the bound is
//! judged per daemon lifetime, from a settled sample on.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One sample: seconds since the soak started, daemon PID, resident KiB.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    pub(crate) t: f64,
    pub(crate) pid: u32,
    pub(crate) kib: u64,
}

pub(crate) struct Sampler {
    /// The daemon to sample; 0 while none runs.
    pid: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    thread: Option<JoinHandle<()>>,
}

const EVERY: Duration = Duration::from_secs(2);

impl Sampler {
    pub(crate) fn start(t0: Instant) -> Sampler {
        let pid = Arc::new(AtomicU32::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (p, s, out) = (pid.clone(), stop.clone(), samples.clone());
        let thread = std::thread::spawn(move || {
            let mut printed = 0.0f64;
            while !s.load(Ordering::SeqCst) {
                let pid = p.load(Ordering::SeqCst);
                if let Some(kib) = (pid != 0).then(|| vm_rss_kib(pid)).flatten() {
                    let t = t0.elapsed().as_secs_f64();
                    out.lock().unwrap().push(Sample { t, pid, kib });
                    if t - printed >= 30.0 || printed == 0.0 {
                        printed = t;
                        println!(
                            "soak: rss t={t:.0}s pid={pid} {:.1} MiB",
                            kib as f64 / 1024.0
                        );
                    }
                }
                std::thread::sleep(EVERY);
            }
        });
        Sampler {
            pid,
            stop,
            samples,
            thread: Some(thread),
        }
    }

    /// The daemon now running (0: none).
    pub(crate) fn follow(&self, pid: u32) {
        self.pid.store(pid, Ordering::SeqCst);
    }

    pub(crate) fn finish(mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        std::mem::take(&mut *self.samples.lock().unwrap())
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn vm_rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Per daemon lifetime: the first sample `settle_s` after its first one is the
/// baseline, and no later sample of that lifetime may exceed it by more than
/// `bound_kib`. Returns one line per lifetime and the violations.
pub(crate) fn judge(
    samples: &[Sample],
    settle_s: f64,
    bound_kib: u64,
) -> (Vec<String>, Vec<String>) {
    let mut lines = Vec::new();
    let mut bad = Vec::new();
    let mut i = 0;
    while i < samples.len() {
        let pid = samples[i].pid;
        let end = samples[i..]
            .iter()
            .position(|s| s.pid != pid)
            .map_or(samples.len(), |n| i + n);
        let life = &samples[i..end];
        let first = life[0].t;
        let min = life.iter().map(|s| s.kib).min().unwrap_or(0);
        let max = life.iter().map(|s| s.kib).max().unwrap_or(0);
        let mib = |k: u64| k as f64 / 1024.0;
        match life.iter().find(|s| s.t >= first + settle_s) {
            Some(base) => {
                let peak = life
                    .iter()
                    .filter(|s| s.t >= base.t)
                    .map(|s| s.kib)
                    .max()
                    .unwrap_or(base.kib);
                let line = format!(
                    "pid {pid} t={:.0}..{:.0}s: min {:.1} MiB, max {:.1} MiB, settled {:.1} MiB, growth after settling {:.1} MiB",
                    first,
                    life[life.len() - 1].t,
                    mib(min),
                    mib(max),
                    mib(base.kib),
                    mib(peak - base.kib)
                );
                if peak > base.kib + bound_kib {
                    bad.push(format!("RSS grew beyond {:.0} MiB: {line}", mib(bound_kib)));
                }
                lines.push(line);
            }
            None => lines.push(format!(
                "pid {pid} t={first:.0}s: too short to settle (min {:.1} MiB, max {:.1} MiB)",
                mib(min),
                mib(max)
            )),
        }
        i = end;
    }
    (lines, bad)
}
