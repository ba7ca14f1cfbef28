//! `aoeraid` inside a lab: one-shot subcommands, `aoeraid serve`, and the
//! `aoeraid run` daemon with the clean stop every appliance test ends with.
//! The binary is the caller's: only a test of the `aoeraid` package knows it
//! (`env!("CARGO_BIN_EXE_aoeraid")`).

use super::{Lab, Proc};
use std::path::{Path, PathBuf};
use std::time::Duration;

impl Lab {
    /// Runs `program args` in the lab's namespace to completion: whether it
    /// succeeded, and its stdout followed by its stderr.
    pub fn outcome(&self, program: &str, args: &[&str]) -> (bool, String) {
        let out = self
            .cmd(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("run {program}: {e}"));
        (out.status.success(), super::sh::combined(&out))
    }

    /// Starts `aoeraid serve` (binary `bin`) in the namespace, exporting
    /// `file` as `shelf`.`slot` on `iface` with its state under this lab's
    /// directory; `extra` options come before the file.
    pub fn serve_aoeraid(
        &self,
        bin: &str,
        iface: &str,
        file: &Path,
        shelf: u16,
        slot: u8,
        extra: &[&str],
    ) -> Proc {
        let mut c = self.cmd(bin);
        c.args([
            "serve",
            "--iface",
            iface,
            "--shelf",
            &shelf.to_string(),
            "--slot",
            &slot.to_string(),
        ])
        .arg("--state-dir")
        .arg(self.dir().join("state"))
        .args(extra)
        .arg(file);
        self.spawn("serve", c).expect("start aoeraid serve")
    }
}

/// One export of a `serve --config` file ([`Lab::write_serve_config`]).
#[derive(Clone, Debug)]
pub struct ServeExport {
    pub shelf: u16,
    pub slot: u8,
    pub file: PathBuf,
    pub iface: String,
    /// vblade's -o/-l, in bytes.
    pub offset_length: Option<(u64, u64)>,
}

impl Lab {
    /// Writes `serve.yaml` in the lab directory: `exports` with a Buffer Count
    /// of 32, state under the lab, interfaces looked up every 200 ms.
    pub fn write_serve_config(&self, exports: &[ServeExport]) -> PathBuf {
        let mut y = format!(
            "state_dir: {}\ninterface_poll: 200ms\nexports:\n",
            self.dir().join("state").display()
        );
        for e in exports {
            y.push_str(&format!(
                "  - {{file: {}, shelf: {}, slot: {}, interfaces: [{}], buffers: 32",
                e.file.display(),
                e.shelf,
                e.slot,
                e.iface
            ));
            if let Some((o, l)) = e.offset_length {
                y.push_str(&format!(", offset: {o}, length: {l}"));
            }
            y.push_str("}\n");
        }
        let path = self.dir().join("serve.yaml");
        std::fs::write(&path, y).expect("write serve.yaml");
        path
    }

    /// Starts `aoeraid serve --config CFG` (binary `bin`) in the namespace.
    pub fn serve_config(&self, bin: &str, cfg: &Path) -> Proc {
        let mut c = self.cmd(bin);
        c.arg("serve").arg("--config").arg(cfg);
        self.spawn("serve", c)
            .expect("start aoeraid serve --config")
    }
}

/// One `key=value` counter from `aoeraid serve`'s exit line.
pub fn serve_counter(log: &str, key: &str) -> Option<u64> {
    let line = log.lines().rev().find(|l| l.contains("stopped;"))?;
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
}

/// A running `aoeraid run --config CFG`. Dropped without `stop` (a failing
/// test), the lab kills it with everything else it started.
pub struct Daemon {
    proc: Option<Proc>,
}

impl Daemon {
    /// Starts `bin run` on `cfg` (whose arrays exist already).
    pub fn run(lab: &Lab, bin: &str, cfg: &str) -> Daemon {
        Daemon::run_with(lab, bin, cfg, &[])
    }

    /// [`Daemon::run`] with more options (e.g. `--takeover`).
    pub fn run_with(lab: &Lab, bin: &str, cfg: &str, extra: &[&str]) -> Daemon {
        let mut c = lab.cmd(bin);
        c.args(["run", "--config", cfg]).args(extra);
        Daemon {
            proc: Some(lab.spawn("aoeraid-run", c).expect("spawn daemon")),
        }
    }

    /// `bin create --assume-clean` on `cfg`, then [`Daemon::run`].
    pub fn create_and_run(lab: &Lab, bin: &str, cfg: &str) -> Daemon {
        let (ok, out) = lab.outcome(bin, &["create", "--config", cfg, "--assume-clean"]);
        assert!(ok, "create failed: {out}");
        Daemon::run(lab, bin, cfg)
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
