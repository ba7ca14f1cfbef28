//! `aoeraid` inside a lab: one-shot subcommands, and the `aoeraid run` daemon
//! with the clean stop every appliance test ends with.

use super::{Lab, Proc};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_aoeraid");

impl Lab {
    /// Runs `aoeraid ARGS` in the lab's namespace: success, stdout + stderr.
    pub fn aoeraid(&self, args: &[&str]) -> (bool, String) {
        let out = self.cmd(BIN).args(args).output().expect("run aoeraid");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }
}

/// A running `aoeraid run --config CFG`. Dropped without `stop` (a failing
/// test), the lab kills it with everything else it started.
pub struct Daemon {
    proc: Option<Proc>,
}

impl Daemon {
    /// Starts `aoeraid run` on `cfg` (whose arrays exist already).
    pub fn run(lab: &Lab, cfg: &str) -> Daemon {
        let mut c = lab.cmd(BIN);
        c.args(["run", "--config", cfg]);
        Daemon {
            proc: Some(lab.spawn("aoeraid-run", c).expect("spawn daemon")),
        }
    }

    /// `aoeraid create --assume-clean` on `cfg`, then [`Daemon::run`].
    pub fn create_and_run(lab: &Lab, cfg: &str) -> Daemon {
        let (ok, out) = lab.aoeraid(&["create", "--config", cfg, "--assume-clean"]);
        assert!(ok, "create failed: {out}");
        Daemon::run(lab, cfg)
    }

    pub fn proc(&mut self) -> &mut Proc {
        self.proc.as_mut().expect("daemon running")
    }

    /// What the daemon logged so far.
    pub fn log(&self) -> String {
        self.proc.as_ref().expect("daemon running").log()
    }

    /// SIGTERM; asserts a clean exit within 30 s and returns the log.
    pub fn stop(&mut self) -> String {
        let mut p = self.proc.take().expect("daemon running");
        p.signal(libc::SIGTERM).expect("SIGTERM");
        let st = p.wait_timeout(Duration::from_secs(30)).expect("wait");
        let log = p.log();
        assert!(
            st.is_some_and(|s| s.success()),
            "daemon did not stop cleanly: {st:?}\n{log}"
        );
        log
    }

    /// kill -9, as a crash; returns the log.
    pub fn kill(&mut self) -> String {
        let mut p = self.proc.take().expect("daemon running");
        p.kill().expect("kill -9 daemon");
        p.log()
    }
}
