//! Durability of the appliance's RAID volumes in the namespace lab: a client's
//! ATA FLUSH CACHE EXT reaches every member (vblade blades through the initiator
//! pool) and is answered only after they did, while ordinary writes (answered
//! after the target's group commit) flush no member. Root only.

use aoeraid_lab as lab;

use lab::frames::{ata_rw, header, pad};
use lab::{metric, metric_sum, Appliance, Volume};
use std::time::Duration;

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
    let series = format!("aoeraid_member_io_ops_total{{member=\"{member}\",op=\"{op}\"}}");
    metric(metrics, &series).unwrap_or(0)
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
    let vol = Volume::new("vol", &["data"], SHELF, SLOT);
    let Some(mut app) = Appliance::mirror(AOERAID, "aflush", 64 * MIB, vol) else {
        return;
    };
    app.create_and_start();
    let cli = app.raw_client();
    let up = cli
        .wait_up(SHELF, SLOT, Duration::from_secs(30))
        .expect("io");
    assert!(up, "export never answered:\n{}", app.daemon().log());
    let mut tag = 1;

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
    let m = app.metrics();
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
        let m = app.metrics();
        for member in ["e0.0", "e1.0"] {
            assert!(member_ops(&m, member, "flush") >= n, "{member}:\n{m}");
            assert_eq!(
                metric_sum(&m, "aoeraid_member_io_errors_total", "op=\"flush\""),
                0,
                "flush errors:\n{m}"
            );
        }
    }
    app.stop();
}
