//! Processes the lab starts: tracked by PID, killed when their handle or the
//! lab goes away.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::sh::err;

/// PIDs of children that are started and not yet reaped. While a child is
/// unreaped its PID cannot be reused, so signalling a PID from this set can
/// only ever reach a process the lab started.
#[derive(Clone, Default)]
pub(crate) struct Registry(Arc<Mutex<BTreeSet<u32>>>);

impl Registry {
    fn insert(&self, pid: u32) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).insert(pid);
    }
    fn remove(&self, pid: u32) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&pid);
    }
    /// SIGKILL to every child still registered (their handles reap them later).
    pub(crate) fn kill_all(&self) {
        let pids: Vec<u32> = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect();
        for pid in pids {
            send_signal(pid, libc::SIGKILL);
        }
    }
}

fn send_signal(pid: u32, sig: i32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // SAFETY: kill(2) takes plain integers and touches no memory of ours. The
    // PID belongs to a child we have not reaped yet (callers check), so it
    // names that child and no other process.
    unsafe { libc::kill(pid, sig) == 0 }
}

/// A long-running process inside the lab (vblade, the code under test, a
/// capture, qemu). stdout and stderr go to `log_path()`. Dropping the handle
/// SIGKILLs and reaps the process.
pub struct Proc {
    name: String,
    child: Child,
    status: Option<ExitStatus>,
    registry: Registry,
    log: PathBuf,
}

impl Proc {
    pub(crate) fn new(name: &str, child: Child, registry: &Registry, log: PathBuf) -> Proc {
        registry.insert(child.id());
        Proc {
            name: name.to_string(),
            child,
            status: None,
            registry: registry.clone(),
            log,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
    pub fn log_path(&self) -> &Path {
        &self.log
    }
    /// Everything the process wrote to stdout/stderr so far.
    pub fn log(&self) -> String {
        fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    fn reaped(&mut self, st: ExitStatus) -> ExitStatus {
        self.status = Some(st);
        self.registry.remove(self.child.id());
        st
    }

    /// Non-blocking: Some(status) once the process has exited.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Some(st) = self.status {
            return Ok(Some(st));
        }
        match self.child.try_wait()? {
            Some(st) => Ok(Some(self.reaped(st))),
            None => Ok(None),
        }
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.try_wait(), Ok(None))
    }

    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        if let Some(st) = self.status {
            return Ok(st);
        }
        let st = self.child.wait()?;
        Ok(self.reaped(st))
    }

    /// Waits up to `limit`; None if it is still running then.
    pub fn wait_timeout(&mut self, limit: Duration) -> io::Result<Option<ExitStatus>> {
        let end = Instant::now() + limit;
        loop {
            if let Some(st) = self.try_wait()? {
                return Ok(Some(st));
            }
            if Instant::now() >= end {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `sig` (libc::SIGSTOP, SIGCONT, SIGTERM, ...) if the process has
    /// not been reaped yet.
    pub fn signal(&mut self, sig: i32) -> io::Result<()> {
        if self.try_wait()?.is_some() {
            return Err(err(format!(
                "{} (pid {}) has already exited",
                self.name,
                self.pid()
            )));
        }
        if send_signal(self.pid(), sig) {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) -> io::Result<ExitStatus> {
        if self.status.is_none() {
            send_signal(self.pid(), libc::SIGKILL);
        }
        self.wait()
    }

    /// SIGTERM, then SIGKILL if it is still there after `grace`.
    pub fn terminate(&mut self, grace: Duration) -> io::Result<ExitStatus> {
        if self.status.is_none() {
            send_signal(self.pid(), libc::SIGTERM);
            if let Some(st) = self.wait_timeout(grace)? {
                return Ok(st);
            }
        }
        self.kill()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}
