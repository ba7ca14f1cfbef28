//! `aoeraid check-config` on bad files: every rule names the line and the
//! field, and the exit status tells a script whether the file is usable.

use aoeraid_lab::TempDir;
use std::process::Command;

const AOERAID: &str = env!("CARGO_BIN_EXE_aoeraid");

struct Outcome {
    ok: bool,
    file: String,
    stdout: String,
    stderr: String,
}

fn check(yaml: &str, extra: &[&str]) -> Outcome {
    let dir = TempDir::new("ctl-check");
    let path = dir.join("appliance.yaml");
    std::fs::write(&path, yaml).unwrap();
    let out = Command::new(AOERAID)
        .arg("check-config")
        .arg(&path)
        .args(extra)
        .output()
        .unwrap();
    Outcome {
        ok: out.status.success(),
        file: path.display().to_string(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Asserts the file is rejected with a line `FILE:LINE: FIELD: ...MESSAGE...`.
fn rejects(yaml: &str, line: usize, field: &str, message: &str) {
    let o = check(yaml, &[]);
    assert!(!o.ok, "expected rejection, got OK:\n{}", o.stdout);
    let prefix = format!("{}:{line}: {field}: ", o.file);
    assert!(
        o.stderr
            .lines()
            .any(|l| l.starts_with(&prefix) && l.contains(message)),
        "no `{prefix}...{message}` in:\n{}",
        o.stderr
    );
}

const HEAD: &str = "\
appliance: {name: rb1}
backend: {interfaces: [eth1]}
frontend: {interfaces: [eth2]}
";

#[test]
fn example_config_passes() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/appliance.yaml.example"
    ))
    .unwrap();
    let o = check(&text, &[]);
    assert!(o.ok, "example rejected:\n{}", o.stderr);
    assert!(o.stdout.contains(": OK"));
    assert!(o.stdout.contains(
        "array data raid10 chunk 256KiB members [e0.0 e1.0 e0.1 e1.1 e0.2 e1.2 e0.3 e1.3]"
    ));
    assert!(o.stdout.contains("spare group shelfspares (2 spares)"));
    assert!(o.stdout.contains("volume gfs = data exported as e7.0"));
}

#[test]
fn unknown_key() {
    let y = format!("{HEAD}arrays:\n  - name: data\n    level: raid1\n    members: [e0.0, e1.0]\n    colour: blue\n");
    rejects(&y, 8, "arrays[0].colour", "unknown key `colour`");
    rejects(
        "appliance: {name: rb1, nmae: x}\n",
        1,
        "appliance.nmae",
        "unknown key",
    );
}

#[test]
fn duplicate_member() {
    let y = format!("{HEAD}arrays:\n  - name: data\n    level: raid1\n    members:\n      - e0.0\n      - e1.0\n      - e0.0\n");
    rejects(&y, 10, "arrays[0].members[2]", "e0.0 is listed twice");
}

#[test]
fn member_in_two_arrays() {
    let y = format!(
        "{HEAD}arrays:\n  - {{name: a, level: raid1, members: [e0.0, e1.0]}}\n  - {{name: b, level: raid1,\n     members: [e0.1, e1.0]}}\n"
    );
    rejects(
        &y,
        7,
        "arrays[1].members[1]",
        "e1.0 is already a member of array a and cannot also be a member of array b",
    );
    rejects(
        &y,
        7,
        "arrays[1].members[1]",
        "(see arrays[0].members[1], line 5)",
    );
}

#[test]
fn raid5_with_two_members() {
    let y = format!("{HEAD}arrays:\n  - name: r5\n    level: raid5\n    members: [e0.0, e1.0]\n");
    rejects(
        &y,
        7,
        "arrays[0].members",
        "raid5 needs at least 3 members, has 2",
    );
}

#[test]
fn raid1_and_raid10_member_counts() {
    let y = format!("{HEAD}arrays:\n  - {{name: m, level: raid1, members: [e0.0]}}\n");
    rejects(&y, 5, "arrays[0].members", "raid1 needs at least 2 members");
    let y = format!(
        "{HEAD}arrays:\n  - {{name: m, level: raid10, members: [e0.0, e1.0, e0.1, e1.1, e0.2]}}\n"
    );
    rejects(
        &y,
        5,
        "arrays[0].members",
        "raid10 needs an even number of members",
    );
    let y = format!("{HEAD}arrays:\n  - {{name: m, level: raid10, members: [e0.0, e1.0]}}\n");
    rejects(&y, 5, "arrays[0].members", "use raid1 for two members");
}

#[test]
fn spare_group_naming_an_array_member() {
    let y = format!(
        "{HEAD}spare_groups:\n  sg: [e0.4,\n       e0.1]\narrays:\n  - {{name: a, level: raid1, members: [e0.1, e1.1], spare_group: sg}}\n"
    );
    rejects(
        &y,
        6,
        "spare_groups.sg[1]",
        "e0.1 is already a member of array a and cannot also be a spare in group sg",
    );
}

#[test]
fn unknown_references() {
    let y = format!(
        "{HEAD}arrays:\n  - name: a\n    level: raid1\n    members: [e0.1, e1.1]\n    spare_group: missing\nvolumes:\n  - {{name: v, arrays: [a, b], export: {{shelf: 7, slot: 0}}}}\n"
    );
    rejects(
        &y,
        8,
        "arrays[0].spare_group",
        "unknown spare group `missing`",
    );
    rejects(&y, 10, "volumes[0].arrays[1]", "unknown array `b`");
}

#[test]
fn duplicate_export_and_broadcast_addresses() {
    let y = format!(
        "{HEAD}arrays:\n  - {{name: a, level: raid0, members: [e0.1]}}\n  - {{name: b, level: raid0, members: [e0.2]}}\n  - {{name: c, level: raid0, members: [e0.3]}}\nvolumes:\n  - {{name: v, arrays: [a], export: {{shelf: 7, slot: 0}}}}\n  - {{name: w, arrays: [b], export: {{shelf: 7, slot: 0}}}}\n  - name: x\n    arrays: [c]\n    export:\n      shelf: 65535\n      slot: 255\n"
    );
    rejects(
        &y,
        10,
        "volumes[1].export",
        "export e7.0 is already used by another volume (see volumes[0].export, line 9)",
    );
    rejects(&y, 14, "volumes[2].export.shelf", "broadcast");
    rejects(&y, 15, "volumes[2].export.slot", "broadcast");
    let y = format!("{HEAD}arrays:\n  - {{name: a, level: raid0, members: [e0.1]}}\nvolumes:\n  - {{name: v, arrays: [a], export: {{shelf: 4095, slot: 0}}}}\n");
    rejects(
        &y,
        7,
        "volumes[0].export.shelf",
        "ignored by the Linux aoe driver",
    );
    let y = format!("{HEAD}arrays:\n  - {{name: a, level: raid0, members: [e65535.1]}}\n");
    rejects(&y, 5, "arrays[0].members[0]", "broadcast");
}

#[test]
fn malformed_values() {
    let arr = "arrays:\n  - name: a\n    level: raid1\n    members: [e0.1, e1.1]\n";
    rejects(
        &format!("{HEAD}{arr}    chunk: 256Kb\n"),
        8,
        "arrays[0].chunk",
        "invalid size `256Kb`",
    );
    rejects(
        &format!("{HEAD}{arr}    rebuild: {{min: 10MB, max: 1GB/s}}\n"),
        8,
        "arrays[0].rebuild.min",
        "invalid rate `10MB`",
    );
    rejects(
        &format!("{HEAD}{arr}    rebuild: {{min: 20MB/s, max: 10MB/s}}\n"),
        8,
        "arrays[0].rebuild.min",
        "min 20MB/s is above max 10MB/s",
    );
    rejects(
        &format!("{HEAD}arrays:\n  - name: a\n    level: raid7\n"),
        6,
        "arrays[0].level",
        "unknown variant `raid7`",
    );
    rejects(
        &format!("{HEAD}arrays:\n  - name: a\n    level: raid1\n    members: [e0.1, disk2]\n"),
        7,
        "arrays[0].members[1]",
        "invalid member `disk2`",
    );
    rejects(
        "appliance: {name: rb1}\nbackend:\n  interfaces: [eth1]\n  dead_after: 10\n",
        4,
        "backend.dead_after",
        "a unit is required",
    );
    let vol = format!(
        "{HEAD}{arr}volumes:\n  - name: v\n    arrays: [a]\n    export: {{shelf: 1, slot: 1}}\n"
    );
    rejects(
        &format!("{vol}    allow: [52:54:00:12:34]\n"),
        12,
        "volumes[0].allow[0]",
        "invalid MAC address",
    );
    rejects(
        &format!("{vol}    allow: [01:00:5e:00:00:01]\n"),
        12,
        "volumes[0].allow[0]",
        "multicast",
    );
    let r0 = "arrays:\n  - name: a\n    level: raid0\n    members: [e0.1, e1.1]\n";
    rejects(
        &format!("{HEAD}{r0}    chunk: 3KiB\n"),
        8,
        "arrays[0].chunk",
        "power of two",
    );
}

#[test]
fn mirror_halves_on_one_shelf() {
    let y = format!("{HEAD}arrays:\n  - name: data\n    level: raid10\n    members: [e0.0, e1.0,\n              e0.1, e0.2]\n");
    rejects(
        &y,
        8,
        "arrays[0].members[2]",
        "warning: mirror halves e0.1 and e0.2 are all on shelf 0",
    );
    let forced = check(&y, &["--force"]);
    assert!(forced.ok, "--force should accept:\n{}", forced.stderr);
    assert!(forced.stderr.contains(&format!(
        "{}:8: arrays[0].members[2]: warning: mirror halves",
        forced.file
    )));
    let allowed = format!("{y}    allow_same_shelf_mirrors: true\n");
    let o = check(&allowed, &[]);
    assert!(
        o.ok,
        "allow_same_shelf_mirrors should accept:\n{}",
        o.stderr
    );
    assert!(!o.stderr.contains("warning"));
    let y = format!("{HEAD}arrays:\n  - {{name: m, level: raid1, members: [e3.0, e3.1]}}\n");
    rejects(
        &y,
        5,
        "arrays[0].members[0]",
        "warning: mirror halves e3.0 and e3.1 are all on shelf 3",
    );
}

/// Parity levels: a shelf may hold as many members as the level survives losing —
/// one for RAID 5, two for RAID 6 — and the warning says what a shelf loss takes.
#[test]
fn parity_members_on_one_shelf() {
    let y = format!("{HEAD}arrays:\n  - {{name: p, level: raid5, members: [e0.0, e1.0, e0.1]}}\n");
    rejects(
        &y,
        5,
        "arrays[0].members[2]",
        "warning: members e0.0, e0.1 are all on shelf 0: losing that shelf takes 2 members \
         at once, and raid5 survives the loss of only 1",
    );
    assert!(!check(&y, &[]).stderr.contains("copies"));
    let two_per_shelf = format!(
        "{HEAD}arrays:\n  - {{name: q, level: raid6, members: [e0.0, e0.1, e1.0, e1.1]}}\n"
    );
    let o = check(&two_per_shelf, &[]);
    assert!(o.ok, "raid6 survives a shelf of two:\n{}", o.stderr);
    assert!(!o.stderr.contains("warning"), "{}", o.stderr);
    let three = format!(
        "{HEAD}arrays:\n  - {{name: q, level: raid6, members: [e0.0, e0.1, e1.0, e0.2]}}\n"
    );
    rejects(
        &three,
        5,
        "arrays[0].members[3]",
        "warning: members e0.0, e0.1, e0.2 are all on shelf 0: losing that shelf takes 3 \
         members at once, and raid6 survives the loss of only 2",
    );
    let allowed = format!(
        "{HEAD}arrays:\n  - {{name: q, level: raid6, members: [e0.0, e0.1, e1.0, e0.2], allow_same_shelf_mirrors: true}}\n"
    );
    assert!(check(&allowed, &[]).ok);
    let short =
        format!("{HEAD}arrays:\n  - {{name: q, level: raid6, members: [e0.0, e1.0, e2.0]}}\n");
    rejects(
        &short,
        5,
        "arrays[0].members",
        "raid6 needs at least 4 members, has 3",
    );
}

#[test]
fn every_problem_is_listed() {
    let y = format!(
        "{HEAD}arrays:\n  - {{name: a, level: raid5, members: [e0.0, e1.0]}}\n  - {{name: a, level: raid1, members: [e0.0, e1.1]}}\n"
    );
    let o = check(&y, &[]);
    assert!(!o.ok);
    let problems: Vec<&str> = o
        .stderr
        .lines()
        .filter(|l| l.starts_with(&o.file) && !l.contains("problems found"))
        .collect();
    assert_eq!(problems.len(), 3, "{}", o.stderr);
    assert!(o.stderr.contains("3 problems found"));
}

#[test]
fn syntax_error_and_missing_file() {
    let o = check("appliance: {name: rb1\narrays: [\n", &[]);
    assert!(!o.ok);
    assert!(
        o.stderr.contains(&format!("{}:2: ", o.file)),
        "{}",
        o.stderr
    );
    let out = Command::new(AOERAID)
        .args(["check-config", "/nonexistent/appliance.yaml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read file"));
}

/// Like `run`, `check-config` and `create` read /etc/aoeraid/appliance.yaml when no
/// file is named (on a machine without one, the error names it).
#[test]
fn check_config_and_create_default_to_the_etc_file() {
    let default = "/etc/aoeraid/appliance.yaml";
    if std::path::Path::new(default).exists() {
        eprintln!("skipped: {default} exists on this machine");
        return;
    }
    for args in [&["check-config"][..], &["create"][..]] {
        let out = Command::new(AOERAID).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            err.contains(default),
            "{args:?} did not read {default}: {err}"
        );
    }
}

/// The lab's typed config (aoeraid-lab's `Config`, which every appliance lab
/// test writes) serializes to a file the daemon accepts without a warning,
/// with every field the builder can set.
#[test]
fn lab_config_is_accepted() {
    use aoeraid_lab::{Array, Config, Level, Volume};
    let mirrors = ["e0.0", "e1.0", "e0.1", "e1.1"];
    let mut c = Config::default()
        .spare_group("shelfspares", &["e0.4", "e1.4"])
        .array(
            Array::new("data", Level::Raid10, &mirrors)
                .chunk("128KiB")
                .spare_group("shelfspares")
                .bitmap_region("1MiB"),
        )
        .array(
            Array::new("parity", Level::Raid5, &["e2.0", "e2.1", "e2.2"])
                .chunk("64KiB")
                .same_shelf_mirrors()
                .integrity("crc32c")
                .rebuild_min("10MB/s"),
        )
        .array(Array::raid1("shelf2", &["e3.0", "e4.0"]))
        .volume(
            Volume::new("gfs", &["data", "shelf2"], 7, 0)
                .allow(&["02:00:00:00:00:99"])
                .config_string("lab volume"),
        )
        .volume(Volume::new("scratch", &["parity"], 7, 1));
    c.appliance.name = "rb1".into();
    c.appliance.metrics_listen = Some("127.0.0.1:9720".into());
    c.appliance.event_program = Some("/bin/true".into());
    c.backend.interfaces = vec!["eth1".into()];
    c.backend.dead_after = Some("2s".into());
    c.frontend.interfaces = vec!["eth2".into()];
    let yaml = c.to_yaml();
    let o = check(&yaml, &[]);
    assert!(o.ok, "rejected:\n{yaml}\n{}{}", o.stdout, o.stderr);
    assert!(!o.stderr.contains("warning"), "{yaml}\n{}", o.stderr);
}
