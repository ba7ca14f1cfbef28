//! Durability of the appliance's RAID volumes in the namespace lab: a client's
//! ATA FLUSH CACHE EXT reaches every member (vblade blades through the initiator
//! pool) and is answered only after they did, while ordinary writes (answered
//! after the target's group commit) flush no member. Root only.

use aoeraid_lab as lab;

use lab::frames::{ata_rw, header, identify, pad};
use lab::RawClient;
use lab::{BladeSpec, Daemon, Lab, Segment};
use std::time::{Duration, Instant};

const AOERAID: &str = env!("CARGO_BIN_EXE_aoeraid");

const MIB: u64 = 1 << 20;
const SHELF: u16 = 7;
const SLOT: u8 = 0;
/// ATA status of a good answer: DRDY, no ERR.
const STATUS_OK: u8 = 0x40;
/// Byte of the ATA command (request) / status (answer) in a frame.
const CMD_STATUS_AT: usize = 27;

/// The `aoeraid_member_io_ops_total` value of `member` and `op` (0 if absent).
fn member_ops(metrics: &str, member: &str, op: &str) -> u64 {
    let key = format!("aoeraid_member_io_ops_total{{member=\"{member}\",op=\"{op}\"}}");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(key.as_str()))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// An ATA FLUSH CACHE EXT request (no data, LBA48 flag as Linux sets it).
fn flush_ext(src: [u8; 6], tag: u32) -> Vec<u8> {
    let mut f = header([0xff; 6], src, SHELF, SLOT, 0, tag);
    f.extend_from_slice(&[0x40, 0, 0, 0xEA]);
    f.extend_from_slice(&[0; 8]);
    pad(f)
}

#[test]
fn client_flush_reaches_members_and_writes_do_not() {
    let test = "client_flush_reaches_members";
    if !lab::require_root(test) || !lab::require_tools(test, &["vblade"]) {
        return;
    }
    let blades = [
        BladeSpec::new(0, 0, 64 * MIB),
        BladeSpec::new(1, 0, 64 * MIB),
    ];
    let lab = Lab::with_blades("aflush", 9000, &blades).expect("lab");
    let back = lab.add_initiator_port(&Segment::BACK).expect("back port");
    let front = lab.add_front_port().expect("front port");
    let client = lab.add_port(&Segment::FRONT, "cli").expect("client port");
    lab.run("ip", &["link", "set", "lo", "up"]).expect("lo up");
    let dir = lab.dir().to_path_buf();
    let metrics_port = 20000 + ((std::process::id() + 7) % 20000) as u16;
    let yaml = format!(
        "appliance: {{name: lab, state_dir: {d}/state, control_socket: {d}/ctl.sock, \
         metrics_listen: \"127.0.0.1:{metrics_port}\"}}\n\
         backend: {{interfaces: [{back}], dead_after: 2s}}\n\
         frontend: {{interfaces: [{front}]}}\n\
         arrays:\n  - {{name: data, level: raid1, members: [e0.0, e1.0]}}\n\
         volumes:\n  - {{name: vol, arrays: [data], export: {{shelf: {SHELF}, slot: {SLOT}}}}}\n",
        d = dir.display(),
    );
    let cfg = lab.write_file("appliance.yaml", &yaml).expect("yaml");
    let cfg = cfg.display().to_string();
    let mut daemon = Daemon::create_and_run(&lab, AOERAID, &cfg);
    let metrics = || {
        let script = format!(
            "exec 3<>/dev/tcp/127.0.0.1/{metrics_port}; \
             printf 'GET /metrics HTTP/1.0\\r\\n\\r\\n' >&3; cat <&3"
        );
        lab.run("bash", &["-c", &script]).unwrap_or_default()
    };

    let cli = RawClient::open(lab.ns(), &client, &lab.mac(&client).unwrap()).expect("raw client");
    let t = Instant::now();
    let mut tag = 1;
    loop {
        tag += 1;
        if cli
            .call(&identify(cli.mac, SHELF, SLOT, tag), tag)
            .unwrap()
            .is_some()
        {
            break;
        }
        let log = daemon.log();
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "export never answered IDENTIFY:\n{log}"
        );
    }

    // Ordinary writes: answered after the target's group commit, no member flush.
    for i in 0..8u64 {
        tag += 1;
        let data = vec![i as u8 + 1; 2 * 512];
        let r = cli
            .call(
                &ata_rw(cli.mac, SHELF, SLOT, tag, true, i * 2, 2, &data),
                tag,
            )
            .unwrap()
            .expect("write answered");
        assert_eq!(r[CMD_STATUS_AT], STATUS_OK, "write {i} status");
    }
    let m = metrics();
    for member in ["e0.0", "e1.0"] {
        assert!(
            member_ops(&m, member, "write") >= 8,
            "{member} writes:\n{m}"
        );
        assert_eq!(member_ops(&m, member, "flush"), 0, "{member}:\n{m}");
    }

    // FLUSH CACHE EXT: every member flushes, then the client gets its answer.
    for n in 1..=2u64 {
        tag += 1;
        let r = cli
            .call(&flush_ext(cli.mac, tag), tag)
            .unwrap()
            .expect("flush answered");
        assert_eq!(r[CMD_STATUS_AT], STATUS_OK, "flush {n} status");
        let m = metrics();
        for member in ["e0.0", "e1.0"] {
            assert!(member_ops(&m, member, "flush") >= n, "{member}:\n{m}");
            assert_eq!(
                m.lines()
                    .filter(|l| l.starts_with("aoeraid_member_io_errors_total"))
                    .filter(|l| l.contains("op=\"flush\""))
                    .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
                    .sum::<u64>(),
                0,
                "flush errors:\n{m}"
            );
        }
    }
    daemon.stop();
}
