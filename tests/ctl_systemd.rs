//! The shipped systemd units pass `systemd-analyze verify` (no warnings) and
//! the service's hardening keeps its exposure score low.

use std::path::{Path, PathBuf};
use std::process::Command;

const AOERAID: &str = env!("CARGO_BIN_EXE_aoeraid");

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn have_systemd_analyze() -> bool {
    Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Copies the units into a temp dir with ExecStart pointing at the binary
/// under test (verify checks that executables exist).
fn staged(tag: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("ctl-systemd-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd");
    let service = std::fs::read_to_string(src.join("aoeraid.service"))
        .unwrap()
        .replace("/usr/local/bin/aoeraid", AOERAID);
    std::fs::write(dir.join("aoeraid.service"), service).unwrap();
    std::fs::copy(
        src.join("aoeraid-interfaces.target"),
        dir.join("aoeraid-interfaces.target"),
    )
    .unwrap();
    // Templates are verified through an instance.
    std::fs::copy(
        src.join("aoeraid-iface@.service"),
        dir.join("aoeraid-iface@eth1.service"),
    )
    .unwrap();
    TempDir(dir)
}

#[test]
fn units_verify_cleanly() {
    if !have_systemd_analyze() {
        eprintln!("skipped: systemd-analyze not installed");
        return;
    }
    let dir = staged("verify");
    let units = [
        "aoeraid.service",
        "aoeraid-interfaces.target",
        "aoeraid-iface@eth1.service",
    ];
    let o = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(units.iter().map(|u| dir.0.join(u)))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "verify failed:\n{stderr}");
    // verify reports unknown keys and bad values as warnings with exit 0.
    for u in units {
        assert!(
            !stderr.contains(u),
            "systemd-analyze complains about {u}:\n{stderr}"
        );
    }
}

#[test]
fn service_is_hardened() {
    if !have_systemd_analyze() {
        eprintln!("skipped: systemd-analyze not installed");
        return;
    }
    let dir = staged("security");
    let o = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(dir.0.join("aoeraid.service"))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let score: f64 = out
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for aoeraid.service:")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no exposure score in:\n{out}"));
    // 0 is a fully sandboxed service, 10 an unprotected one; a root daemon
    // with raw sockets and block devices should still stay well below 5.
    assert!(score <= 3.5, "exposure {score} too high:\n{out}");
    let unit = std::fs::read_to_string(dir.0.join("aoeraid.service")).unwrap();
    for must in [
        "Type=notify",
        "WatchdogSec=",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "CapabilityBoundingSet=CAP_NET_RAW CAP_NET_ADMIN CAP_IPC_LOCK",
        "RestrictAddressFamilies=AF_UNIX AF_PACKET AF_INET AF_INET6 AF_NETLINK",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
    ] {
        assert!(unit.contains(must), "aoeraid.service lacks {must}");
    }
}
