//! SIGHUP reload of a volume's export state in the namespace lab: the allow
//! list (MAC mask list) and config string of a running `aoeraid run` change
//! live — the front end enforces the new mask and answers Query Config with
//! the new string — and are saved in the export's state file. Root only.

use aoeraid_lab as lab;

use lab::frames::config_read;
use lab::{Appliance, Volume};
use std::time::{Duration, Instant};

const AOERAID: &str = env!("CARGO_BIN_EXE_aoeraid");

const MIB: u64 = 1 << 20;
const SHELF: u16 = 7;
const SLOT: u8 = 0;
/// A MAC no port of the lab has.
const STRANGER: &str = "02:00:00:00:00:99";

/// The config string of a Query Config reply (length at 30..32, string at 32).
fn config_string(reply: &[u8]) -> Vec<u8> {
    let len = usize::from(u16::from_be_bytes([reply[30], reply[31]]));
    reply[32..32 + len].to_vec()
}

#[test]
fn sighup_applies_allow_list_and_config_string_live() {
    let vol = Volume::new("vol", &["data"], SHELF, SLOT).config_string("before");
    let Some(mut app) = Appliance::mirror(AOERAID, "areload", 32 * MIB, vol) else {
        return;
    };
    app.create_and_start();
    let client_mac = app.lab.mac(&app.client).expect("client mac");
    let cli = app.raw_client();
    let mut tag = 1;
    // Query Config until `done(reply)` holds, or fail after 30 s.
    let mut wait_for = |app: &mut Appliance, what: &str, done: &dyn Fn(Option<Vec<u8>>) -> bool| {
        let t = Instant::now();
        loop {
            tag += 1;
            let r = cli
                .call(&config_read(cli.mac, SHELF, SLOT, tag), tag)
                .expect("io");
            if done(r) {
                return;
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "{what}:\n{}",
                app.daemon().log()
            );
        }
    };
    wait_for(&mut app, "export never answered with \"before\"", &|r| {
        r.is_some_and(|r| config_string(&r) == b"before")
    });

    // A mask list without the client: its queries go unanswered.
    app.reload(|c| {
        let v = c.volume_mut("vol");
        v.allow = vec![STRANGER.into()];
        v.config_string = Some("reloaded".into());
    });
    wait_for(&mut app, "mask list not enforced after SIGHUP", &|r| {
        r.is_none()
    });
    let state: String = std::fs::read_dir(app.lab.dir().join("state"))
        .expect("state dir")
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .collect();
    // The config string is stored hex-encoded.
    assert!(
        state.contains("config 72656c6f61646564\n"),
        "state file:\n{state}"
    );
    assert!(state.contains(STRANGER), "state file:\n{state}");

    // The client added to the list: answered again, with the new string.
    app.reload(|c| c.volume_mut("vol").allow.push(client_mac.clone()));
    wait_for(
        &mut app,
        "client not answered after joining the mask list",
        &|r| r.is_some_and(|r| config_string(&r) == b"reloaded"),
    );

    let log = app.stop();
    assert!(
        log.contains("reload: volume vol: config string \"reloaded\""),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "reload: volume vol: allow list [{STRANGER}, {client_mac}]"
        )),
        "{log}"
    );
}

/// SIGHUP swaps the event program and the back end's dead time: a daemon started
/// without a program and with a dead time of a minute runs the new program for
/// the events of a blade that a reload's two-second dead time declares dead
/// long before the old minute is up.
#[test]
fn sighup_swaps_event_program_and_dead_after() {
    let vol = Volume::new("vol", &["data"], SHELF, SLOT);
    let Some(mut app) = Appliance::mirror(AOERAID, "areload2", 32 * MIB, vol) else {
        return;
    };
    let mut first = app.config().clone();
    first.appliance.event_program = None;
    first.backend.dead_after = Some("60s".into());
    app.lab
        .write_file("appliance.yaml", &first.to_yaml())
        .expect("appliance.yaml");
    app.create_and_start();

    // The fixture's config: its event program, and a dead time of 2 s.
    app.reload(|c| c.backend.dead_after = Some("2s".into()));
    let t = Instant::now();
    while !app
        .daemon()
        .log()
        .contains("reload: backend: dead_after 2s")
    {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{}",
            app.daemon().log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        app.daemon().log().contains("reload: event program"),
        "{}",
        app.daemon().log()
    );

    // e1.0 stops answering; a scrub sends it reads it never answers.
    app.lab.blade(1, 0).stop().expect("SIGSTOP e1.0");
    let stopped = Instant::now();
    let cfg = app.cfg().to_string();
    let (ok, out) = app.aoeraid(&["scrub", "data", "--config", &cfg]);
    assert!(ok, "scrub: {out}");
    let seen = |events: &str, what: &str| {
        events
            .lines()
            .any(|l| l.starts_with(what) && l.contains("e1.0"))
    };
    loop {
        let events = app.events();
        if seen(&events, "DeviceDisappeared data") && seen(&events, "Fail data") {
            break;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(20),
            "no DeviceDisappeared/Fail for e1.0 through the new program within 20 s \
             (the old dead time was 60 s):\nevents: {events}\n{}",
            app.daemon().log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    app.lab.blade(1, 0).cont().expect("SIGCONT e1.0");
    app.stop();
}
