//! Ownership of blades by AoE reservation, with real vblades and two `aoeraid run`
//! processes on the same blades (`docs/ha.md`, "Blade ownership"): A claims the
//! blades; a blade restarted under A (vblade forgets its list) gets A's reservation
//! back; a plain run of B refuses, naming the blades and A's MAC; B `--takeover`
//! force-sets them; A's next Set or I/O is refused, and A stops that volume (silent
//! export, event, status, metric) and never takes the blades back; a clean stop
//! releases the blades. Root only.

use aoeraid_lab as lab;

use lab::{metric, Appliance, RawClient, Segment, Volume};
use std::time::{Duration, Instant};

const AOERAID: &str = env!("CARGO_BIN_EXE_aoeraid");
const BLADES: [(u16, u8); 2] = [(0, 0), (1, 0)];

fn mac_bytes(text: &str) -> [u8; 6] {
    let mut m = [0u8; 6];
    for (b, h) in m.iter_mut().zip(text.trim().split(':')) {
        *b = u8::from_str_radix(h, 16).expect("hex MAC");
    }
    m
}

/// The back-end MAC of appliance `a` (one back-end interface in the lab).
fn back_mac(a: &Appliance) -> String {
    a.lab
        .mac(&a.config().backend.interfaces[0])
        .expect("back mac")
        .trim()
        .to_string()
}

/// Polls until every blade's reserve list is exactly `[mac]`, 10 s at most.
fn wait_lists(raw: &RawClient, mac: &str, what: &str, tag: &mut u32) {
    let want = vec![mac_bytes(mac)];
    let t = Instant::now();
    loop {
        let lists: Vec<_> = BLADES
            .iter()
            .map(|&(s, l)| {
                *tag += 1;
                raw.reserve_list(s, l, *tag).expect("reserve read")
            })
            .collect();
        if lists.iter().all(|l| l.as_ref() == Some(&want)) {
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{what}: lists {lists:?}, want [{mac}]"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Polls `a`'s status until `f` holds (10 s at most); returns it.
fn wait_status(
    a: &Appliance,
    what: &str,
    f: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let t = Instant::now();
    loop {
        if let Some(s) = a.status_json().filter(|s| f(s)) {
            return s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{what}: {:?}",
            a.status_json()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn blade_field<'a>(s: &'a serde_json::Value, blade: &str, field: &str) -> &'a serde_json::Value {
    s["blades"]
        .as_array()
        .and_then(|b| b.iter().find(|b| b["blade"] == blade))
        .map_or(&serde_json::Value::Null, |b| &b[field])
}

#[test]
fn blades_are_owned_by_reservation_and_taken_over_only_by_force() {
    let vol = Volume::new("vol", &["data"], 7, 0);
    let Some(mut a) = Appliance::mirror(AOERAID, "ownership", 16 << 20, vol) else {
        return;
    };
    a.create_and_start();
    let probe = a.lab.add_port(&Segment::BACK, "probe").expect("probe port");
    let raw = a.lab.raw_client(&probe).expect("raw client");
    let mut tag = 0x5000;
    let mac_a = back_mac(&a);
    wait_lists(&raw, &mac_a, "A claims both blades", &mut tag);
    let s = a.status_json().expect("status");
    assert_eq!(blade_field(&s, "e0.0", "reservation"), "held", "{s}");

    // vblade keeps its list in memory only: restarted, e0.0 comes back free and A
    // sets it again (the periodic re-assert, or the return path if it looked dead).
    a.lab.blade(0, 0).restart().expect("restart e0.0");
    wait_lists(
        &raw,
        &mac_a,
        "A re-asserts e0.0 after its restart",
        &mut tag,
    );
    let (ok, out) = a.bench("write", 4 << 20, &[]);
    assert!(ok, "writes through A: {out}");

    // A plain run of B while A is healthy refuses, naming each blade and its holder.
    let mut b = a.peer("b", 9721);
    let (st, log) = b.run_to_exit(&[], Duration::from_secs(30));
    assert!(
        st.is_some_and(|s| !s.success()),
        "B must refuse: {st:?}\n{log}"
    );
    for blade in ["e0.0", "e1.0"] {
        assert!(
            log.contains(&format!("{blade} reserved by {mac_a}")),
            "B names {blade} and A's MAC:\n{log}"
        );
    }
    wait_lists(&raw, &mac_a, "a refused start takes nothing", &mut tag);

    // B takes over by force: the blades are B's, A is fenced at the blades.
    let t0 = Instant::now();
    b.start_with(&["--takeover"]);
    let mac_b = back_mac(&b);
    wait_lists(&raw, &mac_b, "B force-set both blades", &mut tag);
    eprintln!("takeover: B serving {:?} after its start", t0.elapsed());

    // A's next Set (within a second) or I/O is refused: it stops the volume.
    let s = wait_status(&a, "A reports the lost reservation", |s| {
        s["volumes"][0]["reservation_lost"] == true
    });
    assert_eq!(blade_field(&s, "e0.0", "reservation"), "lost", "{s}");
    let holders = blade_field(&s, "e0.0", "reserved_by").to_string();
    assert!(holders.contains(&mac_b), "A names B as the holder: {s}");
    assert!(s["reservation_refused"].as_u64() > Some(0), "{s}");
    let m = a.metrics();
    assert_eq!(
        metric(&m, "aoeraid_blade_reservation_lost{blade=\"e0.0\"}"),
        Some(1),
        "{m}"
    );
    assert!(
        a.events().contains("ReservationLost"),
        "event: {}",
        a.events()
    );

    // The client's writes go to B (A's export is silent), and A never forces back.
    let (ok, out) = a.bench("write", 4 << 20, &[]);
    assert!(ok, "writes through B after the takeover: {out}");
    std::thread::sleep(Duration::from_secs(2));
    wait_lists(&raw, &mac_b, "A never takes the blades back", &mut tag);
    let s = b.status_json().expect("B status");
    assert_eq!(blade_field(&s, "e1.0", "reservation"), "held", "{s}");
    assert_eq!(s["volumes"][0]["reservation_lost"], false, "{s}");
    // A clean stop releases what it holds; the stopped A had nothing left to release.
    b.stop();
    a.stop();
    for (s, l) in BLADES {
        tag += 1;
        let list = raw.reserve_list(s, l, tag).expect("reserve read");
        assert_eq!(list, Some(vec![]), "e{s}.{l} released by B's clean stop");
    }
}
