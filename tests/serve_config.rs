//! `aoeraid serve --config`: many exports from one process, found by
//! `aoeraid discover` with their exact sizes and verified by `aoeraid bench`;
//! SIGHUP adds and removes exports while another has I/O in flight; an
//! interface that appears after start is served. Root only.

use aoeraid_lab as lab;

use lab::{Lab, LabConfig, Proc, ServeExport};
use serde_json::Value;
use std::time::{Duration, Instant};

const AOERAID: &str = env!("CARGO_BIN_EXE_aoeraid");
const SHELF: u16 = 5;
const KIB: u64 = 1024;

/// Export `slot` of shelf 5: the store file `store{slot}.img` in the lab
/// directory, on `iface`.
fn export_at(lab: &Lab, slot: u8, iface: &str) -> ServeExport {
    ServeExport {
        shelf: SHELF,
        slot,
        file: lab.dir().join(format!("store{slot}.img")),
        iface: iface.to_string(),
        offset_length: None,
    }
}

/// [`export_at`] of a new sparse store of `bytes`.
fn export_new(lab: &Lab, slot: u8, bytes: u64, iface: &str) -> ServeExport {
    lab.sparse_file(&format!("store{slot}.img"), bytes)
        .expect("store");
    export_at(lab, slot, iface)
}

/// `aoeraid discover --json` on `iface`: (slot, sectors) of shelf 5, sorted.
fn discover(lab: &Lab, iface: &str) -> Vec<(u64, u64)> {
    let (ok, out) = lab.outcome(
        AOERAID,
        &["discover", "--iface", iface, "--timeout", "2s", "--json"],
    );
    assert!(ok, "{out}");
    let json = &out[..out.rfind(']').map_or(out.len(), |i| i + 1)];
    let list: Vec<Value> = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {out}"));
    let mut found: Vec<(u64, u64)> = list
        .iter()
        .filter(|b| b["shelf"].as_u64() == Some(u64::from(SHELF)))
        .map(|b| (b["slot"].as_u64().unwrap(), b["sectors"].as_u64().unwrap()))
        .collect();
    found.sort();
    found
}

fn bench_args(iface: &str, slot: u8, span: u64, extra: &[&str]) -> Vec<String> {
    let device = format!("e{SHELF}.{slot}");
    let mut a: Vec<String> = [
        "bench", "--iface", iface, "--device", &device, "--rw", "verify",
    ]
    .map(String::from)
    .to_vec();
    a.extend(["--span".into(), span.to_string()]);
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

/// A short `bench --rw verify` over the first `span` bytes of `slot`: clean.
fn verify(lab: &Lab, iface: &str, slot: u8, span: u64) {
    let args = bench_args(iface, slot, span, &["--qd", "8", "--bs", "4K"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, out) = lab.outcome(AOERAID, &args);
    assert!(ok, "verify e{SHELF}.{slot}: {out}");
}

/// Waits until `done` or `limit`; panics naming `what` with the serve log.
fn wait_for(what: &str, serve: &Proc, limit: Duration, mut done: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !done() {
        assert!(
            Instant::now() < end,
            "{what} within {limit:?}; serve log:\n{}",
            serve.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn stop(mut serve: Proc) -> String {
    serve
        .terminate(Duration::from_secs(10))
        .expect("stop serve");
    serve.log()
}

/// A lab with a target port and a client port on the front segment (None
/// without root).
fn front_lab(test: &str) -> Option<(Lab, String, String)> {
    front_lab_at(test, LabConfig::default().mtu)
}

/// [`front_lab`] at `mtu`.
fn front_lab_at(test: &str, mtu: u32) -> Option<(Lab, String, String)> {
    if !lab::require_root(test) {
        return None;
    }
    let lab = Lab::with_blades(test, mtu, &[]).expect("lab");
    let tgt = lab.add_front_port().expect("target port");
    let cli = lab.add_front_port().expect("client port");
    Some((lab, tgt, cli))
}

/// At MTU 9000 the replies go out through the sockets' mapped transmit rings
/// (`frontend/intake.rs`): a verify of 8 KiB blocks, 16 in flight, reads back
/// every byte it wrote.
#[test]
fn serve_jumbo_replies_through_the_transmit_ring() {
    let Some((lab, tgt, cli)) = front_lab_at("serve_jumbo_tx_ring", 9000) else {
        return;
    };
    let cfg = lab.write_serve_config(&[export_new(&lab, 1, 4096 * KIB, &tgt)]);
    let serve = lab.serve_config(AOERAID, &cfg);
    let args = bench_args(&cli, 1, 4096 * KIB, &["--qd", "16", "--bs", "8K"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, out) = lab.outcome(AOERAID, &args);
    assert!(ok, "verify at MTU 9000: {out}\nserve log:\n{}", serve.log());
    stop(serve);
}

#[test]
fn serve_config_64_exports_one_process() {
    let Some((lab, tgt, cli)) = front_lab("serve_config_64_exports") else {
        return;
    };
    // Every size different, so a mixed-up export shows; the last one cut out
    // of its file by offset and length (vblade -o/-l).
    let mut exports: Vec<ServeExport> = (0..64u8)
        .map(|i| export_new(&lab, i, 512 * KIB + u64::from(i) * 4 * KIB, &tgt))
        .collect();
    exports[63].offset_length = Some((256 * KIB, 128 * KIB));
    let cfg = lab.write_serve_config(&exports);
    let serve = lab.serve_config(AOERAID, &cfg);
    let want: Vec<(u64, u64)> = (0..64u64)
        .map(|i| (i, (512 + i * 4) * 2))
        .map(|(i, s)| if i == 63 { (i, 256) } else { (i, s) })
        .collect();
    let mut found = Vec::new();
    wait_for(
        "64 exports discovered",
        &serve,
        Duration::from_secs(20),
        || {
            found = discover(&lab, &cli);
            found.len() == 64
        },
    );
    assert_eq!(found, want);
    for e in &exports {
        verify(&lab, &cli, e.slot, 64 * KIB);
    }
    // The last export's data sits at its offset in the file.
    let data = std::fs::read(&exports[63].file).expect("read store");
    assert!(data[..256 * KIB as usize].iter().all(|&b| b == 0));
    assert!(data[256 * KIB as usize..320 * KIB as usize]
        .iter()
        .any(|&b| b != 0));
    let log = stop(serve);
    assert_eq!(lab::serve_counter(&log, "io_errors"), Some(0), "{log}");
}

#[test]
fn serve_config_sighup_and_late_interface() {
    let Some((lab, tgt, cli)) = front_lab("serve_config_sighup") else {
        return;
    };
    // Ports are numbered in creation order: the next one is "tgt2".
    let late = "tgt2";
    let mb = 128 * 1024 * KIB;
    let busy = export_new(&lab, 0, mb, &tgt);
    let gone = export_new(&lab, 1, mb, &tgt);
    let later = export_new(&lab, 3, mb, late);
    let cfg = lab.write_serve_config(&[busy, gone, later]);
    let mut serve = lab.serve_config(AOERAID, &cfg);
    wait_for("e5.0 and e5.1", &serve, Duration::from_secs(15), || {
        discover(&lab, &cli) == [(0, mb / 512), (1, mb / 512)]
    });
    // A verify over the whole of e5.0 keeps I/O in flight across the reload.
    let mut c = lab.cmd(AOERAID);
    c.args(bench_args(&cli, 0, mb, &["--qd", "16", "--bs", "1K"]));
    let mut bench = lab.spawn("bench", c).expect("bench");
    std::thread::sleep(Duration::from_millis(700));
    let busy = export_at(&lab, 0, &tgt);
    let added = export_new(&lab, 2, 2 * mb, &tgt);
    let later = export_at(&lab, 3, late);
    lab.write_serve_config(&[busy, added, later]);
    serve.signal(1).expect("SIGHUP");
    wait_for(
        "e5.1 removed, e5.2 added",
        &serve,
        Duration::from_secs(10),
        || discover(&lab, &cli) == [(0, mb / 512), (2, 2 * mb / 512)],
    );
    assert!(
        bench.is_running(),
        "the verify ended before the reload: {}",
        bench.log()
    );
    let st = bench
        .wait_timeout(Duration::from_secs(120))
        .expect("wait bench")
        .expect("bench finished");
    assert!(st.success(), "verify across the reload: {}", bench.log());
    verify(&lab, &cli, 2, 256 * KIB);
    // The interface named in the config comes up: e5.3 is served there.
    assert_eq!(lab.add_front_port().expect("late port"), late);
    wait_for(
        "e5.3 on the late interface",
        &serve,
        Duration::from_secs(10),
        || discover(&lab, &cli).contains(&(3, mb / 512)),
    );
    verify(&lab, &cli, 3, 256 * KIB);
    let log = stop(serve);
    assert!(log.contains("reload: removed e5.1"), "{log}");
    assert!(log.contains("reload: added e5.2"), "{log}");
    assert!(log.contains(&format!("serving on {late}")), "{log}");
    assert_eq!(lab::serve_counter(&log, "io_errors"), Some(0), "{log}");
}
