//! `aoeraid examine` against real vblade blades in the lab: a member's superblock
//! and bitmap read over AoE without the daemon, in text and JSON; a blank blade
//! and an absent one refused by name. Root only.

use aoeraid_lab as lab;

use lab::{Appliance, Array, Config, Lab, Volume};

const AOERAID: &str = env!("CARGO_BIN_EXE_aoeraid");

#[test]
fn examine_reads_a_members_superblock_over_aoe() {
    let test = "examine_reads_a_members_superblock_over_aoe";
    if !(lab::require_root(test) && lab::require_tools(test, &["vblade"])) {
        return;
    }
    // Blades e0.0-e0.2 and e1.0-e1.2: a mirror over e0.0 and e1.0, the rest blank.
    let blades = Lab::grid(&[0, 1], 0..3, 16 << 20);
    let config = Config::default()
        .array(Array::raid1("data", &["e0.0", "e1.0"]))
        .volume(Volume::new("gfs", &["data"], 7, 0));
    let mut app = Appliance::new(AOERAID, "examine", 1500, &blades, config);
    app.create();
    let iface = app.config().backend.interfaces[0].clone();

    let (ok, text) = app.aoeraid(&["examine", "e1.0", "--iface", &iface]);
    assert!(ok, "{text}");
    for want in [
        "e1.0:",
        "Name : data",
        "Level : raid1",
        "Raid Devices : 2",
        "Role : member 1",
        "State : clean",
        "(this member)",
    ] {
        assert!(text.contains(want), "missing `{want}` in:\n{text}");
    }

    let json = |app: &Appliance, member: &str| -> serde_json::Value {
        let (ok, out) = app.aoeraid(&["examine", member, "--iface", &iface, "--json"]);
        assert!(ok, "{out}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    };
    let a = json(&app, "e0.0");
    let b = json(&app, "e1.0");
    assert_eq!(a["array_uuid"], b["array_uuid"], "one array");
    assert_ne!(a["member_uuid"], b["member_uuid"]);
    assert_eq!(a["role"], "member 0");
    assert_eq!(a["events"], b["events"]);
    assert_eq!(a["slots"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        a["bitmap"]["dirty_regions"], 0,
        "an assume-clean array has no dirty region"
    );
    assert!(a["export_state"].is_null(), "no export state before a run");

    // The daemon writes through the bitmap; once stopped cleanly, the event count
    // has moved on and the members say clean again.
    app.start();
    let (ok, out) = app.bench("write", 4 << 20, &[]);
    assert!(ok, "{out}");
    // Both halves of the mirror took the 4 MiB, and status counts it per member.
    let st = app.status_json().expect("status");
    for m in st["arrays"][0]["members"].as_array().expect("members") {
        let written = m["write_bytes"].as_u64().unwrap_or(0);
        assert!(written >= 4 << 20, "{}: write_bytes {written}", m["blade"]);
    }
    assert_eq!(
        st["arrays"][0]["uuid"], a["array_uuid"],
        "status and examine agree"
    );
    app.stop();
    let after = json(&app, "e0.0");
    assert!(
        after["events"].as_u64() > a["events"].as_u64(),
        "events {} then {}",
        a["events"],
        after["events"]
    );
    assert_eq!(after["clean"], true);
    // The daemon saved the export's state (serial, reserve list) beside the
    // superblock of every member, where the other appliance of a pair reads it.
    let rec = &after["export_state"];
    assert_eq!(rec["export"], "e7.0", "{after}");
    assert_eq!(rec["record"], 1, "{after}");
    assert_eq!(rec["reserve"], serde_json::json!([]), "{after}");
    assert_eq!(json(&app, "e1.0")["export_state"], *rec, "on both members");

    // A blank blade: no superblock, and examine says what the device looks like.
    let (ok, out) = app.aoeraid(&["examine", "e0.2", "--iface", &iface]);
    assert!(!ok);
    assert!(out.contains("e0.2: no aoeraid superblock"), "{out}");
    assert!(out.contains("blank"), "{out}");
    // A blade nobody exports.
    let (ok, out) = app.aoeraid(&["examine", "e5.5", "--iface", &iface, "--timeout", "1"]);
    assert!(!ok);
    assert!(out.contains("e5.5: blade not found"), "{out}");
}
