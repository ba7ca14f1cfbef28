//! SIGHUP reload of a volume's export state in the namespace lab: the allow
//! list (MAC mask list) and config string of a running `aoeraid run` change
//! live — the front end enforces the new mask and answers Query Config with
//! the new string — and are saved in the export's state file. Root only.

use aoeraid_lab as lab;

use lab::frames::config_read;
use lab::{Appliance, Array, BladeSpec, Config, Volume};
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
    let test = "sighup_applies_allow_list";
    if !lab::require_root(test) || !lab::require_tools(test, &["vblade"]) {
        return;
    }
    let blades = [
        BladeSpec::new(0, 0, 32 * MIB),
        BladeSpec::new(1, 0, 32 * MIB),
    ];
    let config = Config::default()
        .array(Array::raid1("data", &["e0.0", "e1.0"]))
        .volume(Volume::new("vol", &["data"], SHELF, SLOT).config_string("before"));
    let mut app = Appliance::new(AOERAID, "areload", 9000, &blades, config);
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
