//! Running host tools (`ip`, `tc`, `aoecfg`, ...) with errors that say what failed.

use std::ffi::OsStr;
use std::io;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

pub(crate) fn err(msg: impl Into<String>) -> io::Error {
    io::Error::other(msg.into())
}

/// `ip netns exec NS PROGRAM`: `ip` enters the namespace (and remounts /sys
/// for it) and then execs PROGRAM in place, so the spawned PID is PROGRAM's.
pub(crate) fn in_ns(ns: &str, program: impl AsRef<OsStr>) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns]).arg(program);
    c
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs to completion; Ok(output) whatever the exit status.
pub(crate) fn output(cmd: &mut Command) -> io::Result<Output> {
    cmd.stdin(Stdio::null())
        .output()
        .map_err(|e| err(format!("cannot run `{}`: {e}", describe(cmd))))
}

/// What a finished command printed: its stdout, then its stderr.
pub(crate) fn combined(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs to completion and requires exit status 0; returns stdout. The error names the
/// command and its status and carries what it printed (stderr, then stdout: tools such
/// as e2fsck and promtool report on stdout).
pub fn run(cmd: &mut Command) -> io::Result<String> {
    let out = output(cmd)?;
    if !out.status.success() {
        return Err(err(format!(
            "`{}` failed ({}): {}\n{}",
            describe(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Starts `cmd` (`what` in the error) with no stdin and its stdout and stderr in a new
/// file `log`.
pub(crate) fn spawn_logged(cmd: &mut Command, log: &Path, what: &str) -> io::Result<Child> {
    let file = std::fs::File::create(log)?;
    cmd.stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .spawn()
        .map_err(|e| err(format!("cannot start {what}: {e}")))
}

/// `ip -n NS ARGS...`
pub(crate) fn ip(ns: &str, args: &[&str]) -> io::Result<String> {
    run(Command::new("ip").arg("-n").arg(ns).args(args))
}

pub(crate) fn have_tool(name: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths)
            .chain(["/usr/sbin".into(), "/sbin".into()])
            .any(|d| d.join(name).is_file())
    })
}
