//! SIGHUP reload of a volume's export state in the namespace lab: the allow
//! list (MAC mask list) and config string of a running `aoeraid run` change
//! live — the front end enforces the new mask and answers Query Config with
//! the new string — and are saved in the export's state file. Root only.

use aoeraid_lab as lab;

use lab::frames::config_read;
use lab::RawClient;
use lab::{BladeSpec, Daemon, Lab, Segment};
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
    let lab = Lab::with_blades("areload", 9000, &blades).expect("lab");
    let back = lab.add_initiator_port(&Segment::BACK).expect("back port");
    let front = lab.add_front_port().expect("front port");
    let client = lab.add_port(&Segment::FRONT, "cli").expect("client port");
    let client_mac = lab.mac(&client).expect("client mac");
    let dir = lab.dir().to_path_buf();
    let yaml = |volume_extra: &str| {
        format!(
            "appliance: {{name: lab, state_dir: {d}/state, control_socket: {d}/ctl.sock}}\n\
             backend: {{interfaces: [{back}], dead_after: 2s}}\n\
             frontend: {{interfaces: [{front}]}}\n\
             arrays:\n  - {{name: data, level: raid1, members: [e0.0, e1.0]}}\n\
             volumes:\n  - {{name: vol, arrays: [data], export: {{shelf: {SHELF}, slot: {SLOT}}}\
             {volume_extra}}}\n",
            d = dir.display(),
        )
    };
    let cfg = lab
        .write_file(
            "appliance.yaml",
            &yaml(", allow: [], config_string: before"),
        )
        .expect("yaml");
    let cfg = cfg.display().to_string();
    let mut daemon = Daemon::create_and_run(&lab, AOERAID, &cfg);

    let cli = RawClient::open(lab.ns(), &client, &client_mac).expect("raw client");
    let mut tag = 1;
    // Query Config until `done(reply)` holds, or fail after 30 s.
    let mut wait_for = |daemon: &mut Daemon, what: &str, done: &dyn Fn(Option<Vec<u8>>) -> bool| {
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
                daemon.proc().log()
            );
        }
    };
    wait_for(&mut daemon, "export never answered with \"before\"", &|r| {
        r.is_some_and(|r| config_string(&r) == b"before")
    });

    // A mask list without the client: its queries go unanswered.
    lab.write_file(
        "appliance.yaml",
        &yaml(&format!(
            ", allow: [\"{STRANGER}\"], config_string: reloaded"
        )),
    )
    .expect("yaml");
    daemon.proc().signal(libc::SIGHUP).expect("SIGHUP");
    wait_for(&mut daemon, "mask list not enforced after SIGHUP", &|r| {
        r.is_none()
    });
    let state: String = std::fs::read_dir(dir.join("state"))
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
    lab.write_file(
        "appliance.yaml",
        &yaml(&format!(
            ", allow: [\"{STRANGER}\", \"{client_mac}\"], config_string: reloaded"
        )),
    )
    .expect("yaml");
    daemon.proc().signal(libc::SIGHUP).expect("SIGHUP");
    wait_for(
        &mut daemon,
        "client not answered after joining the mask list",
        &|r| r.is_some_and(|r| config_string(&r) == b"reloaded"),
    );

    let log = daemon.stop();
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
