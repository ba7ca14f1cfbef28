//! `aoeraid serve` under hostile and failure conditions in the namespace lab,
//! with a raw-socket client: malformed-frame storm, mask list and
//! reservation seen from a second MAC, durability across SIGKILL, growth
//! announcement. Root only.

use aoeraid_lab as lab;

use lab::frames::*;
use lab::RawClient;
use lab::{serve_counter, Lab, LabConfig, Proc};
use std::path::Path;
use std::time::{Duration, Instant};

const AOERAID: &str = env!("CARGO_BIN_EXE_aoeraid");

const MIB: u64 = 1 << 20;
const SHELF: u16 = 9;
const SLOT: u8 = 2;

fn serve(lab: &Lab, iface: &str, file: &Path) -> Proc {
    serve_with(lab, iface, file, &[])
}

fn serve_with(lab: &Lab, iface: &str, file: &Path, extra: &[&str]) -> Proc {
    let args = [&["--stat-interval", "1s"], extra].concat();
    lab.serve_aoeraid(AOERAID, iface, file, SHELF, SLOT, &args)
}

fn wait_up(c: &RawClient) {
    let up = c.wait_up(SHELF, SLOT, Duration::from_secs(15)).expect("io");
    assert!(up, "target never answered");
}

/// `aoeraid serve` of `file` on `iface`, answering `c`.
fn serve_up(lab: &Lab, iface: &str, file: &Path, c: &RawClient) -> Proc {
    let srv = serve(lab, iface, file);
    wait_up(c);
    srv
}

/// A lab (`name`) with the target's port, a raw client and a 4 MiB store; None (the
/// test `test` is skipped) without root.
fn setup(test: &str, name: &str) -> Option<(Lab, String, RawClient, std::path::PathBuf)> {
    if !lab::require_root(test) {
        return None;
    }
    let lab = Lab::new(name, LabConfig::default()).expect("lab");
    let tgt = lab.add_front_port().expect("target port");
    let cli = lab.add_front_port().expect("client port");
    let file = lab.sparse_file("store.img", 4 * MIB).expect("store");
    let c = lab.raw_client(&cli).expect("raw client");
    Some((lab, tgt, c, file))
}

/// [`setup`] with a second client on a port of its own (another MAC).
fn setup_two(
    test: &str,
    name: &str,
) -> Option<(Lab, String, RawClient, RawClient, std::path::PathBuf)> {
    let (lab, tgt, a, file) = setup(test, name)?;
    let bport = lab.add_front_port().expect("port");
    let b = lab.raw_client(&bport).expect("client B");
    Some((lab, tgt, a, b, file))
}

#[test]
fn target_malformed_storm() {
    let Some((lab, tgt, c, file)) = setup("target_malformed_storm", "tgt-storm") else {
        return;
    };
    let mut srv = serve_up(&lab, &tgt, &file, &c);
    let src = c.mac;
    let mut sent = 0u64;
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for i in 0..3000u32 {
        let f = match i % 6 {
            // Truncated headers and arguments.
            0 => config_read(src, SHELF, SLOT, i)[..(14 + (i as usize % 20))].to_vec(),
            // Lying Dir Count / NMacs / config length.
            1 => {
                let mut f = mask_edit(src, SHELF, SLOT, i, &[(1, [2, 0, 0, 0, 0, 1])]);
                f[27] = 250;
                f
            }
            2 => {
                let mut f = reserve(src, SHELF, SLOT, i, 1, &[]);
                f[25] = 200;
                f
            }
            // Huge sector counts (read and write with little data).
            3 => {
                let mut f = ata_rw(src, SHELF, SLOT, i, i % 2 == 0, u64::from(i), 255, &[]);
                f[26] = 255;
                f
            }
            // Wrong versions and flags.
            4 => {
                let mut f = identify(src, SHELF, SLOT, i);
                f[14] = ((i % 16) as u8) << 4 | 0x03;
                f
            }
            // Random bytes after a valid EtherType and address.
            _ => {
                let mut f = header([0xff; 6], src, SHELF, SLOT, (next() & 0xff) as u8, i);
                let n = (next() % 1400) as usize;
                f.extend((0..n).map(|_| next() as u8));
                if f.len() < 60 {
                    f.resize(60, 0);
                }
                f
            }
        };
        c.send(&f).expect("send");
        sent += 1;
    }
    // Still answering, with correct data.
    wait_up(&c);
    let r = c
        .call(&ata_rw(src, SHELF, SLOT, 0x55, false, 0, 2, &[]), 0x55)
        .unwrap()
        .expect("read after storm");
    assert_eq!(r.len(), 36 + 1024);
    assert_eq!(r[27], 0x40);
    assert!(srv.is_running(), "target died: {}", srv.log());
    srv.terminate(Duration::from_secs(5)).expect("stop");
    let log = srv.log();
    let frames = serve_counter(&log, "frames").expect("counters at exit");
    let malformed = serve_counter(&log, "malformed").unwrap();
    eprintln!("storm: sent {sent}, target saw {frames} frames, {malformed} malformed");
    assert!(malformed >= 1000, "malformed frames must be counted: {log}");
}

#[test]
fn target_mask_and_reservation_second_mac() {
    let test = "target_mask_and_reservation_second_mac";
    let Some((lab, tgt, a, b, file)) = setup_two(test, "tgt-acl") else {
        return;
    };
    let _srv = serve(&lab, &tgt, &file);
    wait_up(&a);
    wait_up(&b);
    // Reservation by A: B's read gets ATA ERR/ABRT (no data), A's read works.
    let r = a
        .call(&reserve(a.mac, SHELF, SLOT, 1, 1, &[a.mac]), 1)
        .unwrap()
        .expect("reserve");
    assert_eq!(r[14] & 0x04, 0, "reserve must succeed");
    let r = b
        .call(&ata_rw(b.mac, SHELF, SLOT, 2, false, 0, 1, &[]), 2)
        .unwrap()
        .expect("reply to B");
    assert_eq!(
        (r[14] & 0x04, r[25], r[27]),
        (0, 0x04, 0x41),
        "B must get ATA ERR/ABRT (not E/6, which Linux retries for minutes)"
    );
    assert!(r.len() < 36 + 512, "no data for B");
    let r = a
        .call(&ata_rw(a.mac, SHELF, SLOT, 3, false, 0, 1, &[]), 3)
        .unwrap()
        .expect("A read");
    assert_eq!(r.len(), 36 + 512);
    // B force-releases; then mask list {A}: B gets nothing at all.
    let r = b
        .call(&reserve(b.mac, SHELF, SLOT, 4, 2, &[]), 4)
        .unwrap()
        .expect("force release");
    assert_eq!((r[14] & 0x04, r[25]), (0, 0));
    let r = a
        .call(&mask_edit(a.mac, SHELF, SLOT, 5, &[(1, a.mac)]), 5)
        .unwrap()
        .expect("mask");
    assert_eq!((r[26], r[27]), (0, 1));
    assert!(b
        .call(&ata_rw(b.mac, SHELF, SLOT, 6, false, 0, 1, &[]), 6)
        .unwrap()
        .is_none());
    assert!(b
        .call(&config_read(b.mac, SHELF, SLOT, 7), 7)
        .unwrap()
        .is_none());
    assert!(a
        .call(&ata_rw(a.mac, SHELF, SLOT, 8, false, 0, 1, &[]), 8)
        .unwrap()
        .is_some());
}

#[test]
fn target_durable_across_sigkill_and_growth_announced() {
    let test = "target_durable_across_sigkill_and_growth_announced";
    let Some((lab, tgt, c, file)) = setup(test, "tgt-durable") else {
        return;
    };
    let mut srv = serve_up(&lab, &tgt, &file, &c);
    let pattern: Vec<u8> = (0..1024u32).map(|i| (i * 31 + 7) as u8).collect();
    let r = c
        .call(
            &ata_rw(c.mac, SHELF, SLOT, 0x77, true, 4000, 2, &pattern),
            0x77,
        )
        .unwrap()
        .expect("write ack");
    assert_eq!(r[27], 0x40);
    // Kill at once after the ack: no chance to flush anything later.
    srv.kill().expect("SIGKILL");
    let _srv2 = serve_up(&lab, &tgt, &file, &c);
    let r = c
        .call(&ata_rw(c.mac, SHELF, SLOT, 0x78, false, 4000, 2, &[]), 0x78)
        .unwrap()
        .expect("read");
    assert_eq!(&r[36..36 + 1024], &pattern[..], "acknowledged write lost");

    // Growth: extend the file, the target announces (unsolicited config
    // reply, tag 0) and IDENTIFY shows the new size.
    let r = c
        .call(&identify(c.mac, SHELF, SLOT, 0x79), 0x79)
        .unwrap()
        .expect("identify");
    assert_eq!(identify_sectors(&r), 4 * MIB / 512);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(6 * MIB)
        .unwrap();
    let t = Instant::now();
    let mut announced = false;
    while t.elapsed() < Duration::from_secs(6) && !announced {
        if let Some(f) = c.recv(Duration::from_millis(500)).unwrap() {
            announced = f.len() >= 60 && f[14] == 0x18 && f[19] == 1 && f[20..24] == [0, 0, 0, 0];
        }
    }
    assert!(announced, "no announcement after growth");
    let r = c
        .call(&identify(c.mac, SHELF, SLOT, 0x7a), 0x7a)
        .unwrap()
        .expect("identify");
    assert_eq!(identify_sectors(&r), 6 * MIB / 512);
}

/// Two worker threads (fanout by source MAC): data written through one worker
/// reads back through either, and a mask change made on one is enforced by
/// both (shared state).
#[test]
fn target_two_threads_share_state() {
    let test = "target_two_threads_share_state";
    let Some((lab, tgt, a, b, file)) = setup_two(test, "tgt-threads") else {
        return;
    };
    let mut srv = serve_with(&lab, &tgt, &file, &["--threads", "2"]);
    wait_up(&a);
    for i in 0..40u32 {
        let lba = u64::from(i) * 8;
        let data: Vec<u8> = (0..1024u32).map(|k| (k ^ (i * 13)) as u8).collect();
        let r = a
            .call(
                &ata_rw(a.mac, SHELF, SLOT, 1000 + i, true, lba, 2, &data),
                1000 + i,
            )
            .unwrap()
            .expect("write");
        assert_eq!(r[27], 0x40);
        let r = b
            .call(
                &ata_rw(b.mac, SHELF, SLOT, 2000 + i, false, lba, 2, &[]),
                2000 + i,
            )
            .unwrap()
            .expect("read");
        assert_eq!(&r[36..36 + 1024], &data[..], "sector {lba}");
    }
    let r = a
        .call(&mask_edit(a.mac, SHELF, SLOT, 5, &[(1, a.mac)]), 5)
        .unwrap()
        .expect("mask");
    assert_eq!((r[26], r[27]), (0, 1));
    for i in 0..10u32 {
        b.send(&ata_rw(b.mac, SHELF, SLOT, 3000 + i, false, 0, 1, &[]))
            .unwrap();
        assert!(
            b.recv_reply(3000 + i, Duration::from_millis(200))
                .unwrap()
                .is_none(),
            "masked MAC answered"
        );
    }
    srv.terminate(Duration::from_secs(5)).expect("stop");
    assert!(
        serve_counter(&srv.log(), "masked").unwrap_or(0) >= 10,
        "{}",
        srv.log()
    );
}

/// The barrier of the real-client `halves` workload without qemu, hammered:
/// two clients (two MACs) each write one sector of the same 4 KiB page with
/// a new content every round (now and then twice under two tags, as Linux
/// retransmits), read their own sector back, then poll the other's sector
/// until it shows the other's write of this round. A write acknowledged but
/// lost, misplaced, torn or served stale stops a client here, with the
/// page as the store holds it and the serve log in the message.
#[test]
fn target_two_clients_adjacent_sectors_one_page() {
    two_clients_one_page(
        "target_two_clients_adjacent_sectors_one_page",
        "tgt-page",
        "1",
        true,
    );
}

/// [`target_two_clients_adjacent_sectors_one_page`] with two worker threads,
/// each client checking only its own sector (and the store at the end).
///
/// Under round-robin fanout the cross-reading variant below lost a write now
/// and then (once in 15-20 runs): a write sent twice (two tags, as Linux
/// retransmits) reached both workers, the answer to the newer copy came
/// first, the client wrote the sector anew, and the older copy landed after
/// that. Now each client's frames reach one worker in arrival order
/// (`fanout_by_source_mac_keeps_each_sender_on_one_socket` in aoe-uring's
/// `ring_net` shows the kernel doing so). This variant is timing-bound: it
/// did not catch round robin in 70 runs here, so it guards loosely.
#[test]
fn target_two_clients_adjacent_sectors_one_page_two_threads() {
    two_clients_one_page(
        "target_two_clients_adjacent_sectors_one_page_two_threads",
        "tgt-page2",
        "2",
        false,
    );
}

/// [`target_two_clients_adjacent_sectors_one_page`] with two worker threads,
/// each client also reading the other's sector while that one rewrites it.
///
/// When the two MACs hash to different workers, a read of the other's
/// sector, served by one worker while the other worker writes that sector,
/// can return part of each round (seen: first 40 bytes of the new round, the
/// tail of the old). On a page-cache store (tmpfs here, O_DIRECT or not) a
/// read and a write of the same bytes in two threads are two unlocked
/// copies; nothing orders overlapping requests across workers.
#[test]
#[ignore = "not given: per-sector atomicity between two clients served by two workers (--threads 2); a read racing the other client's write of that sector can tear"]
fn target_two_clients_same_sector_reads_two_threads() {
    two_clients_one_page(
        "target_two_clients_same_sector_reads_two_threads",
        "tgt-page3",
        "2",
        true,
    );
}

/// `cross`: each client also reads the other's sector every round.
fn two_clients_one_page(test: &str, name: &str, threads: &str, cross: bool) {
    let Some((lab, tgt, a, b, file)) = setup_two(test, name) else {
        return;
    };
    let mut srv = serve_with(&lab, &tgt, &file, &["--threads", threads]);
    wait_up(&a);
    wait_up(&b);
    let errors: Vec<String> = std::thread::scope(|s| {
        let runs = [&a, &b].map(|c| {
            let who = if c.mac == a.mac { 0 } else { 1 };
            s.spawn(move || page_rounds(c, who, cross))
        });
        runs.map(|r| r.join().expect("client thread"))
            .into_iter()
            .filter_map(Result::err)
            .collect()
    });
    srv.terminate(Duration::from_secs(5)).expect("stop");
    let data = std::fs::read(&file).expect("store");
    let mut errors = errors;
    for who in 0..2u64 {
        let at = (PAGE + who) as usize * 512;
        if errors.is_empty() && data[at..at + 512] != page_sector(who, ROUNDS) {
            errors.push(format!("the store does not hold client {who}'s last write"));
        }
    }
    if !errors.is_empty() {
        let why = errors.join("; ");
        let marks = &data[PAGE as usize * 512..(PAGE as usize + 2) * 512];
        let heads: Vec<String> = marks
            .chunks(512)
            .map(|s| String::from_utf8_lossy(&s[..40]).into_owned())
            .collect();
        panic!(
            "--threads {threads}: {why}\nstore sectors {PAGE}, {PAGE}+1 (first 40 bytes): {heads:?}\nserve log:\n{}",
            srv.log()
        );
    }
}

/// First sector of the page the two clients share.
const PAGE: u64 = 2048;
const ROUNDS: u32 = 2000;

/// Sector `PAGE + who` as client `who` writes it in `round`.
fn page_sector(who: u64, round: u32) -> Vec<u8> {
    let mut s = format!("PAGE-MARK who={who} round={round:08}").into_bytes();
    s.resize(512, b'.');
    s[511] = round as u8 ^ who as u8;
    s
}

/// Sends `frame` with tag `tag`, and again under the next tag whenever no
/// answer came in time; `twice` sends the second copy at once. As Linux
/// does, only an answer to the newest tag counts. The reply and the next
/// free tag.
fn page_call(
    c: &RawClient,
    mut frame: Vec<u8>,
    tag: u32,
    twice: bool,
) -> Result<(Vec<u8>, u32), String> {
    let mut next = tag;
    for attempt in 0..20 {
        frame[20..24].copy_from_slice(&next.to_be_bytes());
        c.send(&frame).map_err(|e| e.to_string())?;
        next += 1;
        if twice && attempt == 0 {
            continue;
        }
        if let Some(f) = c
            .recv_reply(next - 1, Duration::from_millis(250))
            .map_err(|e| e.to_string())?
        {
            return Ok((f, next));
        }
    }
    Err(format!("no reply to tags {tag:#x}..{next:#x}"))
}

/// Client `who`'s side of [`target_two_clients_adjacent_sectors_one_page`];
/// `cross`: also read the other's sector (both at once now and then).
fn page_rounds(c: &RawClient, who: u64, cross: bool) -> Result<(), String> {
    let mine = PAGE + who;
    let theirs = PAGE + 1 - who;
    let mut tag = (who as u32 + 1) << 24;
    let read = |tag: u32, lba: u64, n: u8| {
        page_call(
            c,
            ata_rw(c.mac, SHELF, SLOT, tag, false, lba, n, &[]),
            tag,
            false,
        )
    };
    for round in 1..=ROUNDS {
        let data = page_sector(who, round);
        let (r, t) = page_call(
            c,
            ata_rw(c.mac, SHELF, SLOT, tag, true, mine, 1, &data),
            tag,
            round % 7 == 0,
        )?;
        tag = t;
        if r[27] != 0x40 {
            return Err(format!(
                "client {who} round {round}: write status {:#x}",
                r[27]
            ));
        }
        // Both marks in one read now and then (two sectors: MTU 1500), else
        // the own sector alone.
        let both = cross && round % 5 == 0;
        let (r, t) = if both {
            read(tag, PAGE, 2)?
        } else {
            read(tag, mine, 1)?
        };
        tag = t;
        let at = if both { 36 + who as usize * 512 } else { 36 };
        let got = r.get(at..at + 512).unwrap_or_default();
        if got != data {
            return Err(format!(
                "client {who} round {round}: own sector {mine} reads back {:?}",
                String::from_utf8_lossy(&got[..got.len().min(40)])
            ));
        }
        if !cross {
            continue;
        }
        let since = Instant::now();
        loop {
            let (r, t) = read(tag, theirs, 1)?;
            tag = t;
            let got = r.get(36..36 + 512).unwrap_or_default();
            if got == page_sector(1 - who, round) || got == page_sector(1 - who, round + 1) {
                break;
            }
            if round > 1 && got != page_sector(1 - who, round - 1) {
                return Err(format!(
                    "client {who} round {round}: sector {theirs} holds {:?}, last byte {:?} \
                     (round {round} writes {})",
                    String::from_utf8_lossy(&got[..got.len().min(40)]),
                    got.last(),
                    page_sector(1 - who, round)[511]
                ));
            }
            if since.elapsed() > Duration::from_secs(10) {
                return Err(format!("client {who} round {round}: sector {theirs} never showed the other's write of this round"));
            }
        }
    }
    Ok(())
}
