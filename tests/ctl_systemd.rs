//! The shipped systemd units pass `systemd-analyze verify` (no warnings) and
//! the service's hardening keeps its exposure score low.

use aoeraid_lab::TempDir;
use std::path::Path;
use std::process::Command;

const AOERAID: &str = env!("CARGO_BIN_EXE_aoeraid");

fn have_systemd_analyze() -> bool {
    Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Copies the units into a temp dir with ExecStart pointing at the binary
/// under test (verify checks that executables exist); None, with a note,
/// where systemd-analyze is not installed.
fn staged(tag: &str) -> Option<TempDir> {
    if !have_systemd_analyze() {
        eprintln!("{tag}: skipped: systemd-analyze not installed");
        return None;
    }
    let dir = TempDir::new(&format!("ctl-systemd-{tag}"));
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
    Some(dir)
}

#[test]
fn units_verify_cleanly() {
    let Some(dir) = staged("verify") else {
        return;
    };
    let units = [
        "aoeraid.service",
        "aoeraid-interfaces.target",
        "aoeraid-iface@eth1.service",
    ];
    let o = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(units.iter().map(|u| dir.join(u)))
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
    let Some(dir) = staged("security") else {
        return;
    };
    let o = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(dir.join("aoeraid.service"))
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
    let unit = std::fs::read_to_string(dir.join("aoeraid.service")).unwrap();
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
