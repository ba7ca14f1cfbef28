//! `aoeraid serve` against aoetools (aoeping, aoecfg) in the namespace lab,
//! as aoe-protocol.md §13.4/5/17 describe, with a tshark check that every
//! frame of the run is dissected as AoE and none is malformed. Root only.

use aoeraid_lab as lab;

use lab::{Lab, LabConfig, Proc};
use std::path::Path;
use std::time::{Duration, Instant};

const AOERAID: &str = env!("CARGO_BIN_EXE_aoeraid");

const MIB: u64 = 1 << 20;

fn ready(test: &str) -> bool {
    lab::require_root(test) && lab::require_tools(test, &["aoeping", "aoecfg", "tshark", "dumpcap"])
}

fn serve(lab: &Lab, iface: &str, file: &Path, shelf: u16, slot: u8, extra: &[&str]) -> Proc {
    let args = [&["--stat-interval", "1s"], extra].concat();
    lab.serve_aoeraid(AOERAID, iface, file, shelf, slot, &args)
}

fn wait_up(lab: &Lab, client: &str, shelf: u16, slot: u8) -> lab::PingReply {
    let t = Instant::now();
    loop {
        match lab.aoeping(client, shelf, slot, 1) {
            Ok(r) => return r,
            Err(e) if t.elapsed() > Duration::from_secs(15) => panic!("target never answered: {e}"),
            Err(_) => {}
        }
    }
}

fn aoecfg(lab: &Lab, args: &[&str]) -> (bool, String) {
    let out = lab.output("aoecfg", args).expect("aoecfg");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn conformance(mtu: u32) {
    let lab = Lab::new(
        &format!("tgt-aoetools-{mtu}"),
        LabConfig {
            mtu,
            ..LabConfig::default()
        },
    )
    .expect("lab");
    let tgt = lab.add_front_port().expect("target port");
    let cli = lab.add_front_port().expect("client port");
    let file = lab.sparse_file("store.img", 8 * MIB).expect("store");
    let cap = lab.capture(&cli).expect("capture");
    let mut srv = serve(&lab, &tgt, &file, 5, 1, &[]);

    // §13.4: aoeping -v prints the config reply; Sector Count from the MTU.
    let r = wait_up(&lab, &cli, 5, 1);
    assert_eq!(u32::from(r.sector_count), (mtu - 36) / 512);
    assert!(r.buffer_count >= 16, "buffer count {}", r.buffer_count);
    assert_eq!(r.mac, lab.mac(&tgt).unwrap().replace(':', ""));

    // §13.5: aoeping -I prints serial, firmware and model (byte-swapped right).
    let out = lab
        .output("aoeping", &["-I", "-s", "2", "5", "1", &cli])
        .expect("aoeping -I");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "aoeping -I failed: {text}");
    assert!(
        text.contains("aoeraid io_uring AoE target"),
        "model missing: {text}"
    );
    assert!(text.contains("AOERAID-"), "serial missing: {text}");
    assert!(
        text.contains("firmware_rev: A0.1.0"),
        "firmware missing: {text}"
    );

    // §13.17 with -t 2: `aoecfg -c CMD -s STRING` against e5.1.
    let cfg = |cmd: &str, string: &str| {
        aoecfg(&lab, &["-t", "2", "-c", cmd, "-s", string, "5", "1", &cli])
    };
    let (ok, o) = cfg("fset", "cluster-A");
    assert!(ok && o.contains("cluster-A"), "fset: {o}");
    let (_, o) = cfg("set", "other-B");
    assert!(
        o.contains("badcfg"),
        "set over an existing string must be refused: {o}"
    );
    let (_, o) = cfg("test", "cluster-A");
    assert!(o.contains("cluster-A"), "test exact: {o}");
    let (_, o) = cfg("test", "other-B");
    assert!(
        !o.contains("cluster-A") && !o.contains("other-B"),
        "test mismatch must be silent: {o}"
    );
    let (_, o) = cfg("prefix", "clus");
    assert!(o.contains("cluster-A"), "prefix: {o}");
    let (_, o) = aoecfg(&lab, &["-t", "2", "-c", "read", &cli]);
    assert!(o.contains("5.1\tcluster-A"), "broadcast read: {o:?}");

    // The config string survives a restart (state dir).
    srv.terminate(Duration::from_secs(5)).expect("stop serve");
    assert!(
        srv.log().contains("stopped;"),
        "clean exit expected: {}",
        srv.log()
    );
    let _srv2 = serve(&lab, &tgt, &file, 5, 1, &[]);
    assert_eq!(wait_up(&lab, &cli, 5, 1).config, "cluster-A");

    let file = cap.stop().expect("stop capture");
    let summary = file.summary().expect("tshark");
    // The bridge's own IGMP reports may show up; every other frame must be
    // AoE, dissected cleanly.
    let odd = file
        .describe("!(aoe || igmp) || _ws.malformed", 5)
        .unwrap_or_default();
    let stray = file.count("!(aoe || igmp)").expect("tshark");
    assert!(
        summary.aoe > 10 && summary.malformed == 0 && stray == 0,
        "capture not clean: {summary:?}\n{odd}"
    );
}

#[test]
fn target_aoetools_mtu_1500() {
    if ready("target_aoetools_mtu_1500") {
        conformance(1500);
    }
}

#[test]
fn target_aoetools_mtu_9000() {
    if ready("target_aoetools_mtu_9000") {
        conformance(9000);
    }
}
