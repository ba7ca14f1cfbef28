//! The Debian package as an admin meets it: `scripts/package.sh` builds it from the
//! binary under test, lintian finds no error in it, and it installs into a scratch
//! root (`dpkg --root`) where the binary runs, both man pages render, the units pass
//! `systemd-analyze verify`, the configuration is a conffile, and purging removes
//! the state directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{shown}: {e} (scripts/install-deps.sh installs it)"));
    assert!(
        out.status.success(),
        "{shown} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Builds the package into `dir` and returns its path.
fn build_package(dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = run(Command::new(root.join("scripts/package.sh"))
        .env("AOERAID_BIN", env!("CARGO_BIN_EXE_aoeraid"))
        .env("DIST_DIR", dir));
    let deb = PathBuf::from(stdout(&out).trim());
    assert!(
        deb.is_file(),
        "package.sh named {deb:?}, which does not exist"
    );
    let name = deb.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with(&format!("aoeraid_{}_", env!("CARGO_PKG_VERSION")))
            && name.ends_with(".deb"),
        "unexpected package name {name}"
    );
    deb
}

/// A root that dpkg can install into: its own empty database, plus what the
/// package's dependencies would bring and `systemd-analyze verify` looks at (the
/// system's targets, `kill` from procps, `ip` from iproute2).
fn scratch_root(dir: &Path) -> PathBuf {
    let r = dir.join("root");
    for d in [
        "var/lib/dpkg/info",
        "var/lib/dpkg/updates",
        "bin",
        "usr/sbin",
        "lib/systemd/system",
    ] {
        std::fs::create_dir_all(r.join(d)).unwrap();
    }
    std::fs::write(r.join("var/lib/dpkg/status"), "").unwrap();
    for entry in std::fs::read_dir("/lib/systemd/system").unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "target") {
            std::fs::copy(
                &p,
                r.join("lib/systemd/system").join(p.file_name().unwrap()),
            )
            .unwrap();
        }
    }
    std::fs::copy("/bin/kill", r.join("bin/kill")).unwrap();
    std::fs::copy("/usr/sbin/ip", r.join("usr/sbin/ip")).unwrap();
    r
}

fn dpkg(root: &Path) -> Command {
    let mut c = Command::new("dpkg");
    // Maintainer scripts run outside the root with DPKG_ROOT set (they honour it);
    // the dependencies are not in the scratch database.
    c.arg(format!("--root={}", root.display())).args([
        "--force-script-chrootless",
        "--force-depends",
        "--log=/dev/null",
    ]);
    c
}

#[test]
fn package_builds_passes_lintian_and_installs_into_a_scratch_root() {
    let dir = std::env::temp_dir().join(format!("aoeraid-package-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = Scratch(dir.clone());

    let deb = build_package(&dir);

    // lintian exits non-zero on errors; warnings and the documented overrides pass.
    let lint = run(Command::new("lintian")
        .args(["--tag-display-limit", "0"])
        .arg(&deb));
    let report = stdout(&lint);
    assert!(
        !report.lines().any(|l| l.starts_with("E: ")),
        "lintian errors:\n{report}"
    );

    let contents = stdout(&run(Command::new("dpkg-deb").arg("--contents").arg(&deb)));
    for path in [
        "./usr/sbin/aoeraid",
        "./usr/sbin/fence_aoeraid",
        "./usr/lib/ocf/resource.d/aoeraid/appliance",
        "./lib/systemd/system/aoeraid.service",
        "./lib/systemd/system/aoeraid-iface@.service",
        "./lib/systemd/system/aoeraid-interfaces.target",
        "./etc/aoeraid/appliance.yaml",
        "./var/lib/aoeraid/",
        "./usr/share/man/man8/aoeraid.8.gz",
        "./usr/share/man/man5/appliance.yaml.5.gz",
        "./usr/share/bash-completion/completions/aoeraid",
        "./usr/share/zsh/vendor-completions/_aoeraid",
        "./usr/share/aoeraid/prometheus/alerts.yaml",
        "./usr/share/aoeraid/grafana/aoeraid.json",
        "./usr/share/doc/aoeraid/copyright",
    ] {
        assert!(
            contents.lines().any(|l| l.ends_with(path)),
            "{path} missing from the package:\n{contents}"
        );
    }
    assert!(
        contents.lines().all(|l| l.contains(" root/root ")),
        "files not owned by root in the archive"
    );

    let root = scratch_root(&dir);
    run(dpkg(&root).arg("--install").arg(&deb));
    let status = std::fs::read_to_string(root.join("var/lib/dpkg/status")).unwrap();
    assert!(
        status.contains("Package: aoeraid\nStatus: install ok installed"),
        "not installed:\n{status}"
    );
    let conffiles =
        std::fs::read_to_string(root.join("var/lib/dpkg/info/aoeraid.conffiles")).unwrap();
    assert_eq!(conffiles.trim(), "/etc/aoeraid/appliance.yaml");

    let version = stdout(&run(
        Command::new(root.join("usr/sbin/aoeraid")).arg("--version")
    ));
    assert_eq!(
        version.trim(),
        format!("aoeraid {}", env!("CARGO_PKG_VERSION"))
    );

    // The fence agent's wrapper finds the aoeraid next to it, where Pacemaker looks.
    let metadata = stdout(&run(
        Command::new(root.join("usr/sbin/fence_aoeraid")).args(["-o", "metadata"])
    ));
    assert!(
        metadata.contains("<resource-agent name=\"fence_aoeraid\""),
        "{metadata}"
    );

    // The resource agent, where Pacemaker looks for ocf:aoeraid:appliance; its
    // default binary is the packaged one.
    let metadata = stdout(&run(Command::new(
        root.join("usr/lib/ocf/resource.d/aoeraid/appliance"),
    )
    .arg("meta-data")
    .env("OCF_ROOT", "/usr/lib/ocf")));
    assert!(
        metadata.contains("<resource-agent name=\"appliance\"")
            && metadata.contains("default=\"/usr/sbin/aoeraid\""),
        "{metadata}"
    );

    // The shipped configuration is the example, and it is valid.
    run(Command::new(root.join("usr/sbin/aoeraid"))
        .arg("check-config")
        .arg(root.join("etc/aoeraid/appliance.yaml")));

    let page8 = stdout(&run(Command::new("man")
        .arg("-l")
        .arg(root.join("usr/share/man/man8/aoeraid.8.gz"))
        .env("MANWIDTH", "100")));
    for heading in [
        "NAME",
        "SYNOPSIS",
        "AOERAID RUN",
        "AOERAID STATUS",
        "AOERAID SERVE",
        "FILES",
    ] {
        assert!(
            page8.contains(heading),
            "aoeraid(8) has no {heading}:\n{page8}"
        );
    }
    let page5 = stdout(&run(Command::new("man")
        .arg("-l")
        .arg(root.join("usr/share/man/man5/appliance.yaml.5.gz"))));
    for heading in ["NAME", "SECTIONS", "EXAMPLE", "spare_groups", "dead_after"] {
        assert!(
            page5.contains(heading),
            "appliance.yaml(5) has no {heading}:\n{page5}"
        );
    }

    let units = root.join("lib/systemd/system");
    let service = std::fs::read_to_string(units.join("aoeraid.service")).unwrap();
    assert!(service.contains("ExecStart=/usr/sbin/aoeraid run"));
    assert!(
        !service.contains("/usr/local"),
        "unit still points at /usr/local"
    );
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", root.display()))
        .arg(units.join("aoeraid.service"))
        .arg(units.join("aoeraid-iface@eth1.service"))
        .arg(units.join("aoeraid-interfaces.target"))
        .env("MANPATH", root.join("usr/share/man"))
        .output()
        .expect("systemd-analyze");
    let said = String::from_utf8_lossy(&verify.stderr);
    assert!(
        verify.status.success() && said.trim().is_empty(),
        "systemd-analyze verify:\n{said}"
    );

    run(Command::new("bash")
        .arg("-n")
        .arg(root.join("usr/share/bash-completion/completions/aoeraid")));

    run(dpkg(&root).args(["--purge", "aoeraid"]));
    assert!(!root.join("usr/sbin/aoeraid").exists());
    assert!(
        !root.join("var/lib/aoeraid").exists(),
        "purge left the state directory"
    );
    assert!(
        !root.join("etc/aoeraid/appliance.yaml").exists(),
        "purge left the conffile"
    );
}
