//! The event dispatcher thread: logs each event and runs `event_program`
//! for it, one run at a time in event order (like mdadm), killing runs that
//! exceed the timeout so a hung script cannot hold back later events for
//! long. The data path talks to it only through [`EventSink::emit`], a
//! non-blocking send into a bounded queue.

use super::{log_line, Event};
use crate::metrics::Metrics;
use aoe_uring::sys::{self, Signal};
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use std::collections::VecDeque;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often a running program is checked for exit or timeout.
const REAP_INTERVAL: Duration = Duration::from_millis(20);

#[derive(Debug, Clone)]
pub struct DispatcherOptions {
    /// Run as `PROGRAM EVENT ARRAY [MEMBER]`; None only logs and counts.
    pub program: Option<PathBuf>,
    /// A run still going after this is killed.
    pub timeout: Duration,
    /// Events waiting for the program beyond this are dropped (and counted).
    pub queue: usize,
    /// Passed to the program as AOERAID_APPLIANCE.
    pub appliance: String,
}

impl Default for DispatcherOptions {
    fn default() -> Self {
        DispatcherOptions {
            program: None,
            timeout: Duration::from_secs(30),
            queue: 1024,
            appliance: String::new(),
        }
    }
}

/// How the event program is run for `e`: `PROGRAM EVENT ARRAY [MEMBER]`, the same
/// facts in AOERAID_* variables, no standard input, in its own process group so
/// that a timeout kills whatever it started. `aoeraid test-event` runs it the
/// same way.
pub(crate) fn program_command(program: &Path, e: &Event, appliance: &str) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(e.argv())
        .env("AOERAID_EVENT", e.kind.name())
        .env("AOERAID_ARRAY", &e.array)
        .env("AOERAID_MEMBER", e.member.as_deref().unwrap_or(""))
        .env("AOERAID_DETAIL", e.detail.as_deref().unwrap_or(""))
        .env("AOERAID_APPLIANCE", appliance)
        .stdin(Stdio::null())
        .process_group(0);
    cmd
}

enum Msg {
    Event(Event),
    /// A reload changed `event_program` or `event_timeout`: events queued after
    /// this run the new program.
    Program(Option<PathBuf>, Duration),
    Stop,
}

/// The handle the rest of the appliance raises events through. Cheap to
/// clone; never blocks.
#[derive(Clone)]
pub struct EventSink {
    tx: Sender<Msg>,
    metrics: Option<Arc<Metrics>>,
}

impl EventSink {
    /// Counts the event and queues it for logging and the program. Returns
    /// false if the queue was full and the event was only counted.
    pub fn emit(&self, event: Event) -> bool {
        if let Some(m) = &self.metrics {
            m.count_event(&event.kind.name());
        }
        match self.tx.try_send(Msg::Event(event)) {
            Ok(()) => true,
            Err(TrySendError::Full(Msg::Event(e)))
            | Err(TrySendError::Disconnected(Msg::Event(e))) => {
                if let Some(m) = &self.metrics {
                    m.events_dropped.inc();
                }
                log_line(
                    e.kind.syslog_priority(),
                    &format!("{e} (event queue full, program not run)"),
                );
                false
            }
            Err(_) => false,
        }
    }

    /// Swaps the program run for every later event (a reload). Blocks only if the
    /// queue is full, which a reload can afford.
    pub fn set_program(&self, program: Option<PathBuf>, timeout: Duration) {
        let _ = self.tx.send(Msg::Program(program, timeout));
    }
}

pub struct Dispatcher {
    sink: EventSink,
    thread: Option<JoinHandle<()>>,
}

impl Dispatcher {
    pub fn start(opts: DispatcherOptions, metrics: Option<Arc<Metrics>>) -> io::Result<Dispatcher> {
        let (tx, rx) = bounded(opts.queue.max(1));
        let m = metrics.clone();
        let thread = std::thread::Builder::new()
            .name("events".into())
            .spawn(move || Worker::new(opts, m).run(rx))?;
        Ok(Dispatcher {
            sink: EventSink { tx, metrics },
            thread: Some(thread),
        })
    }

    pub fn sink(&self) -> EventSink {
        self.sink.clone()
    }

    /// Processes every event already queued (running the program for each,
    /// within its timeout) and stops the thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(t) = self.thread.take() {
            // Blocking is fine here: this is the shutdown path, and the
            // worker keeps draining the queue.
            let _ = self.sink.tx.send(Msg::Stop);
            let _ = t.join();
        }
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Running {
    child: Child,
    started: Instant,
    what: String,
}

struct Worker {
    opts: DispatcherOptions,
    metrics: Option<Arc<Metrics>>,
    pending: VecDeque<Event>,
    running: Option<Running>,
}

impl Worker {
    fn new(opts: DispatcherOptions, metrics: Option<Arc<Metrics>>) -> Self {
        Worker {
            opts,
            metrics,
            pending: VecDeque::new(),
            running: None,
        }
    }

    fn run(mut self, rx: Receiver<Msg>) {
        let mut stopping = false;
        loop {
            if !stopping {
                let msg = if self.running.is_some() || !self.pending.is_empty() {
                    rx.recv_timeout(REAP_INTERVAL)
                } else {
                    rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
                };
                match msg {
                    Ok(m @ (Msg::Event(_) | Msg::Program(..))) => self.handle(m),
                    Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => {
                        stopping = true;
                        while let Ok(m) = rx.try_recv() {
                            self.handle(m);
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                }
            } else if self.running.is_some() {
                std::thread::sleep(REAP_INTERVAL);
            }
            self.reap();
            if self.running.is_none() {
                if let Some(e) = self.pending.pop_front() {
                    self.spawn(e);
                }
            }
            if stopping && self.running.is_none() && self.pending.is_empty() {
                return;
            }
        }
    }

    fn handle(&mut self, m: Msg) {
        match m {
            Msg::Event(e) => self.accept(e),
            // Events accepted before still wait in `pending`; they run the new
            // program too, as a reload is about what runs from now on.
            Msg::Program(program, timeout) => {
                self.opts.program = program;
                self.opts.timeout = timeout;
            }
            Msg::Stop => {}
        }
    }

    fn accept(&mut self, e: Event) {
        log_line(e.kind.syslog_priority(), &e.to_string());
        if self.opts.program.is_none() {
            return;
        }
        if self.pending.len() >= self.opts.queue {
            if let Some(m) = &self.metrics {
                m.events_dropped.inc();
            }
            log_line(4, &format!("event program backlog full, not run for: {e}"));
            return;
        }
        self.pending.push_back(e);
    }

    fn failure(&self, reason: &str) {
        if let Some(m) = &self.metrics {
            m.event_program_failures.with_label_values(&[reason]).inc();
        }
    }

    fn spawn(&mut self, e: Event) {
        let Some(program) = &self.opts.program else {
            return;
        };
        match program_command(program, &e, &self.opts.appliance).spawn() {
            Ok(child) => {
                self.running = Some(Running {
                    child,
                    started: Instant::now(),
                    what: format!("{} {}", program.display(), e.argv().join(" ")),
                })
            }
            Err(err) => {
                self.failure("spawn");
                log_line(
                    3,
                    &format!("cannot run event program {}: {err}", program.display()),
                );
            }
        }
    }

    fn reap(&mut self) {
        let Some(r) = &mut self.running else {
            return;
        };
        match r.child.try_wait() {
            Ok(Some(status)) => {
                if !status.success() {
                    log_line(4, &format!("event program `{}` {status}", r.what));
                    self.failure("exit");
                }
                self.running = None;
            }
            Ok(None) if r.started.elapsed() >= self.opts.timeout => {
                // The child leads its own group (process_group(0) above) and is
                // not reaped yet (try_wait said it runs), so the group id is its.
                let _ = sys::kill_process_group(r.child.id(), Signal::Kill);
                let _ = r.child.kill();
                let _ = r.child.wait();
                log_line(
                    3,
                    &format!(
                        "event program `{}` killed after {:?}",
                        r.what, self.opts.timeout
                    ),
                );
                self.failure("timeout");
                self.running = None;
            }
            Ok(None) => {}
            Err(err) => {
                log_line(3, &format!("waiting for event program `{}`: {err}", r.what));
                self.running = None;
            }
        }
    }
}
