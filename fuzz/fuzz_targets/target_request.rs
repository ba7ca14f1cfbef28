//! Any bytes into the target core's request path: it must never panic, and
//! every frame it asks to send must be a well-formed AoE response (parses,
//! R set, own shelf.slot, at least 60 bytes). Input: the bytes are split at
//! 0xFE 0xFE markers into several frames fed in order (so state-changing
//! commands — mask, reserve, config — affect the later ones); the first byte
//! of each chunk picks the interface.
#![no_main]

use aoe_target::{Action, ExportConfig, ExportState, IfaceId, SharedExport, Target, TargetConfig};
use aoe_wire::{parse, Mac};
use libfuzzer_sys::fuzz_target;
use std::time::Instant;

const SECTORS: u64 = 64;

fn check_reply(f: &[u8]) {
    assert!(f.len() >= 60, "short reply {}", f.len());
    let p = parse(f).expect("target sent an unparsable frame");
    assert!(p.header.response);
    assert_eq!((p.header.shelf, p.header.slot), (1, 1));
}

fuzz_target!(|data: &[u8]| {
    let mut t = Target::new(TargetConfig {
        buffer_count: 4,
        max_clients: 2,
        ..TargetConfig::default()
    })
    .unwrap();
    let i0 = t.add_interface(Mac([2, 0, 0, 0, 0, 1]), 1500).unwrap();
    let i1 = t.add_interface(Mac([2, 0, 0, 0, 0, 2]), 9000).unwrap();
    let shared = SharedExport::new(ExportState::with_random_serial(7), SECTORS);
    t.add_export(
        ExportConfig {
            shelf: 1,
            slot: 1,
            read_only: false,
            ifaces: vec![i0, i1],
        },
        shared,
    )
    .unwrap();
    let mut store = vec![0u8; SECTORS as usize * 512];
    let now = Instant::now();
    let mut acts = Vec::new();
    let mut next = Vec::new();
    for chunk in data.split(|&b| b == 0xFE).filter(|c| !c.is_empty()) {
        let iface = IfaceId(u16::from(chunk[0] & 1));
        let frame = &chunk[1..];
        t.handle_frame(iface, frame, now, &mut acts);
        while !acts.is_empty() {
            for a in acts.drain(..) {
                match a {
                    Action::Send { frame: f, len, .. } => check_reply(t.ctl_frame(f, len)),
                    Action::Read {
                        req, offset, len, ..
                    } => {
                        let o = offset as usize;
                        assert!(o + len <= store.len(), "read past the end");
                        let mut buf = vec![0u8; 36 + len + 24];
                        buf[36..36 + len].copy_from_slice(&store[o..o + len]);
                        let n = t.read_done(req, true, &mut buf);
                        assert_eq!(n, (36 + len).max(60));
                        check_reply(&buf[..n]);
                    }
                    Action::Write {
                        req, offset, len, ..
                    } => {
                        let o = offset as usize;
                        assert!(o + len <= store.len(), "write past the end");
                        assert!(36 + len <= frame.len(), "write beyond the frame's data");
                        store[o..o + len].copy_from_slice(&frame[36..36 + len]);
                        t.write_done(req, true, &mut next);
                    }
                    Action::Sync { export, .. } => t.sync_done(export, true, &mut next),
                    Action::Reply { req, .. } => {
                        let mut buf = [0u8; 64];
                        let n = t.finish_reply(req, &mut buf);
                        check_reply(&buf[..n]);
                    }
                    Action::Persist { .. } => {}
                }
            }
            std::mem::swap(&mut acts, &mut next);
        }
    }
    assert_eq!(t.requests_in_flight(), 0, "requests leaked");
});
