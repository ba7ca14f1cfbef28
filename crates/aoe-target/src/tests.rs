//! Conformance tests (aoe-protocol.md §13) at the sans-IO level: a tiny
//! synchronous driver with an in-memory store runs every action at once.

use crate::*;
use aoe_wire::{
    ata, parse, AtaArg, CCmd, Command, DCmd, Directive, Directives, ErrorCode, Header, Identify,
    MCmd, MError, Mac, MacList, MacMask, Message, QueryConfig, RCmd, Reserve, SECTOR_SIZE,
};
use std::time::{Duration, Instant};

const SECTORS: u64 = 1000;
const SHELF: u16 = 7;
const SLOT: u8 = 3;
const IF_MAC: [Mac; 2] = [Mac([2, 0xaa, 0, 0, 0, 1]), Mac([2, 0xaa, 0, 0, 0, 2])];
const A: Mac = Mac([2, 0, 0, 0, 0, 0xa]);
const B: Mac = Mac([2, 0, 0, 0, 0, 0xb]);
const C: Mac = Mac([2, 0, 0, 0, 0, 0xc]);

struct Harness {
    t: Target,
    store: Vec<u8>,
    now: Instant,
    /// When set, store I/O fails.
    fail_io: bool,
    /// Hold syncs instead of completing them (to test grouping).
    hold_syncs: bool,
    held_syncs: Vec<ExportId>,
    persisted: usize,
    syncs: usize,
    /// Syncs that carried a client FLUSH.
    flush_syncs: usize,
    /// Hold store writes (in flight) instead of completing them.
    hold_writes: bool,
    held_writes: Vec<(ReqId, usize, Vec<u8>)>,
}

impl Harness {
    fn new() -> Harness {
        Self::with(TargetConfig::default(), false)
    }

    fn with(cfg: TargetConfig, read_only: bool) -> Harness {
        let mut t = Target::new(cfg).unwrap();
        let i0 = t.add_interface(IF_MAC[0], 1500).unwrap();
        let i1 = t.add_interface(IF_MAC[1], 9000).unwrap();
        let shared = SharedExport::new(ExportState::with_random_serial(0xabc), SECTORS);
        t.add_export(
            ExportConfig {
                shelf: SHELF,
                slot: SLOT,
                read_only,
                ifaces: vec![i0, i1],
            },
            shared,
        )
        .unwrap();
        let store = (0..SECTORS as usize * SECTOR_SIZE)
            .map(|i| (i * 7 + i / 512) as u8)
            .collect();
        Harness {
            t,
            store,
            now: Instant::now(),
            fail_io: false,
            hold_syncs: false,
            held_syncs: Vec::new(),
            persisted: 0,
            syncs: 0,
            flush_syncs: 0,
            hold_writes: false,
            held_writes: Vec::new(),
        }
    }

    /// Feeds a frame on interface `i`; returns every frame sent (interface, bytes).
    fn send(&mut self, i: u16, frame: &[u8]) -> Vec<(u16, Vec<u8>)> {
        let mut acts = Vec::new();
        self.t.handle_frame(IfaceId(i), frame, self.now, &mut acts);
        self.run(acts, frame)
    }

    fn run(&mut self, mut acts: Vec<Action>, frame: &[u8]) -> Vec<(u16, Vec<u8>)> {
        let mut sent = Vec::new();
        while !acts.is_empty() {
            let mut next = Vec::new();
            for a in acts.drain(..) {
                match a {
                    Action::Send {
                        iface,
                        frame: f,
                        len,
                    } => sent.push((iface.0, self.t.ctl_frame(f, len).to_vec())),
                    Action::Read {
                        req, offset, len, ..
                    } => {
                        let mut buf = vec![0u8; 36 + len.max(24)];
                        let o = offset as usize;
                        buf[36..36 + len].copy_from_slice(&self.store[o..o + len]);
                        let ok = !self.fail_io;
                        let n = self.t.read_done(req, ok, &mut buf);
                        assert!(n >= 60);
                        let iface = self.iface_of(&buf[..n]);
                        sent.push((iface, buf[..n].to_vec()));
                    }
                    Action::Write {
                        req, offset, len, ..
                    } => {
                        let o = offset as usize;
                        if self.hold_writes {
                            self.held_writes
                                .push((req, o, frame[36..36 + len].to_vec()));
                            continue;
                        }
                        if !self.fail_io {
                            self.store[o..o + len].copy_from_slice(&frame[36..36 + len]);
                        }
                        self.t.write_done(req, !self.fail_io, &mut next);
                    }
                    Action::Sync { export, flush } => {
                        self.syncs += 1;
                        self.flush_syncs += usize::from(flush);
                        if self.hold_syncs {
                            self.held_syncs.push(export);
                        } else {
                            self.t.sync_done(export, !self.fail_io, &mut next);
                        }
                    }
                    Action::Reply { req, iface } => {
                        let mut buf = vec![0u8; 128];
                        let n = self.t.finish_reply(req, &mut buf);
                        assert_eq!(n, 60);
                        sent.push((iface.0, buf[..n].to_vec()));
                    }
                    Action::Persist { .. } => self.persisted += 1,
                }
            }
            acts = next;
        }
        sent
    }

    fn release_syncs(&mut self) -> Vec<(u16, Vec<u8>)> {
        let mut acts = Vec::new();
        for e in std::mem::take(&mut self.held_syncs) {
            self.t.sync_done(e, !self.fail_io, &mut acts);
        }
        self.run(acts, &[])
    }

    /// Lands the held writes in the store and completes them.
    fn release_writes(&mut self) -> Vec<(u16, Vec<u8>)> {
        let mut acts = Vec::new();
        for (req, o, data) in std::mem::take(&mut self.held_writes) {
            self.store[o..o + data.len()].copy_from_slice(&data);
            self.t.write_done(req, true, &mut acts);
        }
        self.run(acts, &[])
    }

    fn iface_of(&self, frame: &[u8]) -> u16 {
        IF_MAC.iter().position(|m| m.0 == frame[6..12]).unwrap() as u16
    }
}

fn hdr(src: Mac, shelf: u16, slot: u8, cmd: Command, tag: u32) -> Header {
    Header::request(IF_MAC[0], src, shelf, slot, cmd, tag)
}

fn ata_frame(src: Mac, tag: u32, arg: AtaArg, data: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 36 + data.len().max(24)];
    let h = hdr(src, SHELF, SLOT, Command::Ata, tag);
    aoe_wire::write_ata_request(&mut buf, &h, &arg).unwrap();
    buf[36..36 + data.len()].copy_from_slice(data);
    buf
}

fn config_frame(src: Mac, shelf: u16, slot: u8, ccmd: CCmd, s: &[u8], tag: u32) -> Vec<u8> {
    let mut buf = vec![0u8; 1200];
    let q = QueryConfig::request(ccmd, s);
    let n = q
        .emit(&hdr(src, shelf, slot, Command::QueryConfig, tag), &mut buf)
        .unwrap();
    buf.truncate(n);
    buf
}

fn one(sent: Vec<(u16, Vec<u8>)>) -> (u16, Vec<u8>) {
    assert_eq!(sent.len(), 1, "expected exactly one reply, got {sent:?}");
    sent.into_iter().next().unwrap()
}

fn ata_reply(frame: &[u8]) -> (Header, AtaArg, Vec<u8>) {
    let p = parse(frame).unwrap();
    match p.message {
        Message::Ata(a) => (p.header, a.arg, a.data.to_vec()),
        m => panic!("not ATA: {m:?}"),
    }
}

fn config_reply(frame: &[u8]) -> (Header, u16, u8, u8, CCmd, Vec<u8>) {
    let p = parse(frame).unwrap();
    match p.message {
        Message::QueryConfig(q) => (
            p.header,
            q.buffer_count,
            q.sector_count,
            q.version,
            q.ccmd,
            q.config.to_vec(),
        ),
        m => panic!("not config: {m:?}"),
    }
}

fn read(h: &mut Harness, src: Mac, lba: u64, n: u8) -> (Header, AtaArg, Vec<u8>) {
    let arg = AtaArg::read_write(false, lba, n, true).unwrap();
    let (_, f) = one(h.send(0, &ata_frame(src, 1, arg, &[])));
    ata_reply(&f)
}

// §13.1, 13.3: broadcast query → one unicast reply per export, from the receiving iface.
#[test]
fn broadcast_query_config() {
    let mut h = Harness::new();
    for (i, want_sc) in [(0u16, 2u8), (1, 17)] {
        let mut q = config_frame(A, 0xFFFF, 0xFF, CCmd::Read, b"", 0x1234);
        q[..6].copy_from_slice(&Mac::BROADCAST.0);
        let (iface, f) = one(h.send(i, &q));
        assert_eq!(iface, i);
        assert!(f.len() >= 60);
        assert_eq!(f[14], 0x18);
        assert_eq!(&f[0..6], &A.0);
        assert_eq!(&f[6..12], &IF_MAC[usize::from(i)].0);
        let (hd, bc, sc, ver, ccmd, _) = config_reply(&f);
        assert_eq!(
            (hd.shelf, hd.slot, hd.command, hd.tag),
            (SHELF, SLOT, Command::QueryConfig, 0x1234)
        );
        assert!(bc >= 16);
        assert_eq!(sc, want_sc);
        assert_eq!((ver, ccmd), (1, CCmd::Read));
        assert_eq!(f[29], 0x10);
    }
    // Shelf broadcast only, slot broadcast only.
    assert_eq!(
        h.send(0, &config_frame(A, SHELF, 0xFF, CCmd::Read, b"", 1))
            .len(),
        1
    );
    assert_eq!(
        h.send(0, &config_frame(A, 0xFFFF, SLOT, CCmd::Read, b"", 1))
            .len(),
        1
    );
}

// §13.2
#[test]
fn directed_query_for_other_target_is_silent() {
    let mut h = Harness::new();
    assert!(h
        .send(0, &config_frame(A, SHELF + 1, SLOT, CCmd::Read, b"", 1))
        .is_empty());
    assert!(h
        .send(0, &config_frame(A, SHELF, SLOT + 1, CCmd::Read, b"", 1))
        .is_empty());
    assert_eq!(h.t.counters().not_addressed, 2);
}

#[test]
fn broadcast_storm_is_rate_limited() {
    let mut h = Harness::with(
        TargetConfig {
            broadcast_burst: 5,
            broadcast_per_sec: 10,
            ..TargetConfig::default()
        },
        false,
    );
    let q = config_frame(A, 0xFFFF, 0xFF, CCmd::Read, b"", 1);
    let answered: usize = (0..100).map(|_| h.send(0, &q).len()).sum();
    assert_eq!(answered, 5);
    assert_eq!(h.t.counters().broadcast_limited, 95);
    // Directed queries are not limited.
    assert_eq!(
        h.send(0, &config_frame(A, SHELF, SLOT, CCmd::Read, b"", 1))
            .len(),
        1
    );
    h.now += Duration::from_millis(250);
    assert_eq!(h.send(0, &q).len(), 1);
}

// §13.6 (and the strings §13.5 checks through aoeping -I)
#[test]
fn identify() {
    let mut h = Harness::new();
    let (_, f) = one(h.send(0, &ata_frame(A, 9, AtaArg::identify(), &[])));
    assert_eq!(f.len(), 36 + 512);
    let (hd, arg, data) = ata_reply(&f);
    assert_eq!(hd.tag, 9);
    assert_eq!(arg.cmd_status, ata::STATUS_OK);
    let w = |i: usize| u16::from_le_bytes([data[2 * i], data[2 * i + 1]]);
    assert_ne!(w(83) & (1 << 10), 0);
    assert_ne!(w(86) & (1 << 10), 0);
    assert_eq!(u64::from(w(100)) | u64::from(w(101)) << 16, SECTORS);
    assert_eq!(u32::from(w(60)) | u32::from(w(61)) << 16, SECTORS as u32);
    let id = Identify::parse(&data).unwrap();
    assert_eq!(id.serial_str(), "AOERAID-000000000ABC");
    assert_eq!(id.model_str(), "aoeraid io_uring AoE target");
    assert!(id.flush && id.flush_ext);
    // Byte-swapped on the wire: "AO" is stored as 'O','A'.
    assert_eq!(&data[20..22], b"OA");
}

// §13.7, 13.12 (probe payload on a read is ignored), 13.16 (same request, new tag)
#[test]
fn read_ext_full_frame() {
    let mut h = Harness::new();
    let arg = AtaArg::read_write(false, 10, 17, true).unwrap();
    let probe = vec![0u8; 17 * 512];
    for tag in [5u32, 6, 6] {
        let mut req = ata_frame(A, tag, arg, &probe);
        req[..6].copy_from_slice(&IF_MAC[1].0);
        let (iface, f) = one(h.send(1, &req));
        assert_eq!(iface, 1);
        assert_eq!(f.len(), 36 + 17 * 512);
        let (hd, a, data) = ata_reply(&f);
        assert_eq!(hd.tag, tag);
        assert_eq!((a.cmd_status, a.err_feature), (0x40, 0));
        assert_eq!(data, h.store[10 * 512..27 * 512]);
    }
    // 17 sectors do not fit a 1500-byte MTU interface: abort.
    let (_, f) = one(h.send(0, &ata_frame(A, 1, arg, &[])));
    let (_, a, _) = ata_reply(&f);
    assert_eq!((a.cmd_status, a.err_feature), (0x41, ata::ERROR_ABRT));
}

// §13.8
#[test]
fn write_then_read_and_durability_order() {
    let mut h = Harness::new();
    let data: Vec<u8> = (0..1024).map(|i| (i % 251) as u8).collect();
    let arg = AtaArg::read_write(true, 100, 2, true).unwrap();
    h.hold_syncs = true;
    let sent = h.send(0, &ata_frame(A, 77, arg, &data));
    assert!(
        sent.is_empty(),
        "a write must not be acknowledged before its sync"
    );
    let (_, f) = one(h.release_syncs());
    assert_eq!(f.len(), 60);
    let (hd, a, _) = ata_reply(&f);
    assert_eq!((hd.tag, a.cmd_status, a.err_feature), (77, 0x40, 0));
    let (_, _, back) = read(&mut h, A, 100, 2);
    assert_eq!(back, data);
}

#[test]
fn concurrent_writes_share_one_sync() {
    let mut h = Harness::new();
    h.hold_syncs = true;
    let data = vec![0x5au8; 1024];
    // First write triggers a sync; the next 9 wait and go out together.
    for tag in 0..10u32 {
        let arg = AtaArg::read_write(true, u64::from(tag) * 2, 2, true).unwrap();
        assert!(h.send(0, &ata_frame(A, tag, arg, &data)).is_empty());
    }
    assert_eq!(h.syncs, 1);
    assert_eq!(h.release_syncs().len(), 1);
    assert_eq!(h.syncs, 2);
    assert_eq!(h.release_syncs().len(), 9);
    assert_eq!(h.syncs, 2);
    assert_eq!(h.t.counters().synced_acks, 10);
    assert_eq!(h.t.requests_in_flight(), 0);
}

#[test]
fn a_durable_write_is_answered_without_a_sync_and_a_flush_waits_for_it() {
    let mut h = Harness::new();
    h.hold_writes = true;
    let w = AtaArg::read_write(true, 4, 1, true).unwrap();
    assert!(h.send(0, &ata_frame(A, 1, w, &[0x3c; 512])).is_empty());
    assert_eq!(h.t.writes_in_store(ExportId(0)), 1);
    // A FLUSH behind the write in the store waits for it.
    assert!(h
        .send(0, &ata_frame(A, 2, AtaArg::no_data(ata::FLUSH_EXT), &[]))
        .is_empty());
    let (req, o, payload) = h.held_writes.pop().unwrap();
    h.store[o..o + payload.len()].copy_from_slice(&payload);
    let mut acts = Vec::new();
    h.t.durable_write_done(req, true, &mut acts);
    // The write is answered at once; the flush gets its sync.
    assert!(matches!(acts[0], Action::Reply { req: r, .. } if r == req));
    assert!(matches!(
        acts[1],
        Action::Sync {
            export: ExportId(0),
            flush: true
        }
    ));
    let sent = h.run(acts, &[]);
    assert_eq!(sent.len(), 2, "the write's and the flush's replies");
    assert_eq!((h.syncs, h.flush_syncs), (1, 1));
    assert_eq!(h.t.counters().durable_writes, 1);
    assert_eq!(h.t.counters().synced_acks, 1, "only the flush");
    assert_eq!(h.t.writes_in_store(ExportId(0)), 0);
    assert_eq!(h.t.requests_in_flight(), 0);
}

#[test]
fn a_sync_says_whether_it_answers_a_flush() {
    let mut h = Harness::new();
    h.hold_syncs = true;
    let data = vec![0x11u8; 512];
    let w = AtaArg::read_write(true, 8, 1, true).unwrap();
    assert!(h.send(0, &ata_frame(A, 1, w, &data)).is_empty());
    assert_eq!((h.syncs, h.flush_syncs), (1, 0), "group commit of a write");
    // A FLUSH and a write wait behind it and go out in one sync that flushes.
    assert!(h
        .send(0, &ata_frame(A, 2, AtaArg::no_data(ata::FLUSH_EXT), &[]))
        .is_empty());
    assert!(h.send(0, &ata_frame(A, 3, w, &data)).is_empty());
    assert_eq!(h.release_syncs().len(), 1);
    assert_eq!((h.syncs, h.flush_syncs), (2, 1));
    assert_eq!(h.release_syncs().len(), 2, "flush and write answered");
    // Writes alone again: no flush.
    assert!(h.send(0, &ata_frame(A, 4, w, &data)).is_empty());
    assert_eq!((h.syncs, h.flush_syncs), (3, 1));
    assert_eq!(h.release_syncs().len(), 1);
}

#[test]
fn a_flush_synced_ahead_of_a_write_still_in_the_store_never_answers_that_write() {
    // A big batch is synced while a write is still on its way to the store. The FLUSH
    // in it is answered: it covers the writes the client saw completed, and each of
    // those was synced before its own reply. The write still in the store is
    // answered only by a sync started after it landed.
    let mut h = Harness::new();
    h.hold_syncs = true;
    let data = vec![0x33u8; 512];
    let w = |lba: u64| AtaArg::read_write(true, lba, 1, true).unwrap();
    h.hold_writes = true;
    assert!(h.send(0, &ata_frame(A, 0, w(0), &data)).is_empty());
    h.hold_writes = false;
    let flush = ata_frame(A, 1, AtaArg::no_data(ata::FLUSH_EXT), &[]);
    assert!(h.send(0, &flush).is_empty());
    let mut tag = 2u32;
    while h.syncs == 0 {
        assert!(tag < 64, "a full batch starts a sync");
        assert!(h
            .send(0, &ata_frame(A, tag, w(tag.into()), &data))
            .is_empty());
        tag += 1;
    }
    let answered: Vec<u32> = h
        .release_syncs()
        .iter()
        .map(|(_, f)| ata_reply(f).0.tag)
        .collect();
    assert_eq!(
        answered.len(),
        tag as usize - 1,
        "the flush and the landed writes"
    );
    assert!(answered.contains(&1) && !answered.contains(&0));
    assert!(
        h.release_writes().is_empty(),
        "no reply before its own sync"
    );
    assert_eq!(h.syncs, 2);
    let (_, f) = one(h.release_syncs());
    assert_eq!(ata_reply(&f).0.tag, 0);
}

// §13.9
#[test]
fn lba28_masks_device_bits() {
    let mut h = Harness::new();
    let arg = AtaArg {
        lba: 5 | (0xE0 << 24),
        ..AtaArg::read_write(false, 5, 1, false).unwrap()
    };
    assert_eq!(arg.cmd_status, ata::READ);
    let (_, f) = one(h.send(0, &ata_frame(A, 1, arg, &[])));
    let (_, a, data) = ata_reply(&f);
    assert_eq!(a.cmd_status, 0x40);
    assert_eq!(data, h.store[5 * 512..6 * 512]);
    let (_, _, data48) = read(&mut h, A, 5, 1);
    assert_eq!(data, data48);
}

// §13.10
#[test]
fn out_of_range_is_idnf() {
    let mut h = Harness::new();
    let (hd, a, data) = read(&mut h, A, SECTORS - 1, 2);
    assert!(hd.error.is_none());
    assert_eq!((a.cmd_status, a.err_feature), (0x41, ata::ERROR_IDNF));
    assert!(data.iter().all(|&b| b == 0));
    let arg = AtaArg::read_write(true, SECTORS, 1, true).unwrap();
    let (_, f) = one(h.send(0, &ata_frame(A, 1, arg, &[0; 512])));
    let (hd, a, _) = ata_reply(&f);
    assert!(hd.error.is_none());
    assert_eq!((a.cmd_status, a.err_feature), (0x41, ata::ERROR_IDNF));
    // Huge LBA near 2^48 does not overflow.
    let (_, a, _) = read(&mut h, A, (1 << 48) - 1, 2);
    assert_eq!(a.err_feature, ata::ERROR_IDNF);
}

// §13.11
#[test]
fn unsupported_opcode_aborts() {
    let mut h = Harness::new();
    for op in [ata::SET_FEATURES, ata::SMART, 0x00, 0xFF] {
        let (_, f) = one(h.send(0, &ata_frame(A, 1, AtaArg::no_data(op), &[])));
        let (hd, a, _) = ata_reply(&f);
        assert!(hd.error.is_none());
        assert_eq!((a.cmd_status, a.err_feature), (0x41, ata::ERROR_ABRT));
    }
}

// §13.13 and read-only exports (§10.13)
#[test]
fn short_write_and_read_only_abort() {
    let mut h = Harness::new();
    let arg = AtaArg::read_write(true, 0, 2, true).unwrap();
    let (_, f) = one(h.send(0, &ata_frame(A, 1, arg, &[1; 600])));
    assert_eq!(ata_reply(&f).1.err_feature, ata::ERROR_ABRT);
    let mut ro = Harness::with(TargetConfig::default(), true);
    let before = ro.store.clone();
    let (_, f) = one(ro.send(0, &ata_frame(A, 1, arg, &[1; 1024])));
    let a = ata_reply(&f).1;
    assert_eq!((a.cmd_status, a.err_feature), (0x41, ata::ERROR_ABRT));
    assert_eq!(ro.store, before);
}

// §13.14
#[test]
fn check_power_and_flush() {
    let mut h = Harness::new();
    let (_, f) = one(h.send(0, &ata_frame(A, 1, AtaArg::no_data(ata::CHECK_POWER), &[])));
    let a = ata_reply(&f).1;
    assert_eq!((a.sector_count, a.cmd_status), (0xFF, 0x40));
    for op in [ata::FLUSH, ata::FLUSH_EXT] {
        h.hold_syncs = true;
        assert!(h
            .send(0, &ata_frame(A, 1, AtaArg::no_data(op), &[]))
            .is_empty());
        let (_, f) = one(h.release_syncs());
        assert_eq!(ata_reply(&f).1.cmd_status, 0x40);
    }
}

#[test]
fn io_errors_are_ata_unc() {
    let mut h = Harness::new();
    h.fail_io = true;
    let (hd, a, _) = read(&mut h, A, 0, 1);
    assert!(hd.error.is_none());
    assert_eq!((a.cmd_status, a.err_feature), (0x41, ata::ERROR_UNC));
    let arg = AtaArg::read_write(true, 0, 1, true).unwrap();
    let (_, f) = one(h.send(0, &ata_frame(A, 1, arg, &[0; 512])));
    assert_eq!(ata_reply(&f).1.err_feature, ata::ERROR_UNC);
    // Write ok but sync fails → UNC too.
    h.fail_io = false;
    h.hold_syncs = true;
    assert!(h.send(0, &ata_frame(A, 1, arg, &[0; 512])).is_empty());
    h.fail_io = true;
    let (_, f) = one(h.release_syncs());
    assert_eq!(ata_reply(&f).1.err_feature, ata::ERROR_UNC);
    assert_eq!(h.t.counters().io_errors, 3);
}

// §13.15
#[test]
fn unknown_command_and_vendor() {
    let mut h = Harness::new();
    let mut f = config_frame(A, SHELF, SLOT, CCmd::Read, b"", 3);
    f[19] = 4;
    let (_, r) = one(h.send(0, &f));
    assert!(r.len() >= 60);
    let hd = Header::parse(&r).unwrap();
    assert_eq!(hd.error, Some(ErrorCode::UnrecognizedCommand));
    assert_eq!((hd.tag, hd.shelf, hd.slot), (3, SHELF, SLOT));
    f[19] = 0xF3;
    assert!(h.send(0, &f).is_empty());
    assert_eq!(h.t.counters().vendor_ignored, 1);
}

// §13.17, 13.18
#[test]
fn config_subcommands() {
    let mut h = Harness::new();
    let q = |h: &mut Harness, c, s: &[u8]| h.send(0, &config_frame(A, SHELF, SLOT, c, s, 1));
    let (_, f) = one(q(&mut h, CCmd::ForceSet, b"A-string"));
    assert_eq!(config_reply(&f).5, b"A-string");
    assert_eq!(h.persisted, 1);
    let (_, f) = one(q(&mut h, CCmd::Set, b"B"));
    let (hd, _, _, _, ccmd, s) = config_reply(&f);
    assert_eq!(
        (hd.error, ccmd, s.as_slice()),
        (
            Some(ErrorCode::ConfigStringPresent),
            CCmd::Set,
            &b"A-string"[..]
        )
    );
    // Set to the identical string is success.
    let (_, f) = one(q(&mut h, CCmd::Set, b"A-string"));
    assert_eq!(config_reply(&f).0.error, None);
    assert_eq!(one(q(&mut h, CCmd::Test, b"A-string")).1[29], 0x11);
    assert!(q(&mut h, CCmd::Test, b"B").is_empty());
    assert!(q(&mut h, CCmd::Test, b"A-str").is_empty());
    assert_eq!(
        config_reply(&one(q(&mut h, CCmd::TestPrefix, b"A-s")).1).5,
        b"A-string"
    );
    assert!(q(&mut h, CCmd::TestPrefix, b"B").is_empty());
    let (_, f) = one(q(&mut h, CCmd::Unknown(7), b""));
    assert_eq!(config_reply(&f).0.error, Some(ErrorCode::BadArgument));
    // Force set "" clears; then set works.
    assert!(config_reply(&one(q(&mut h, CCmd::ForceSet, b"")).1)
        .5
        .is_empty());
    assert_eq!(
        config_reply(&one(q(&mut h, CCmd::Set, b"B")).1).0.error,
        None
    );
    // 1024 bytes accepted; 1025 rejected with E/2 and the string unchanged.
    let big = vec![b'x'; 1024];
    assert_eq!(config_reply(&one(q(&mut h, CCmd::ForceSet, &big)).1).5, big);
    let mut f = config_frame(A, SHELF, SLOT, CCmd::ForceSet, &big, 1);
    f.push(b'y');
    f[30..32].copy_from_slice(&1025u16.to_be_bytes());
    let (_, r) = one(h.send(0, &f));
    assert_eq!(
        Header::parse(&r).unwrap().error,
        Some(ErrorCode::BadArgument)
    );
    assert_eq!(h.t.shared(ExportId(0)).snapshot().config, big);
    // aoeping-style read: length 1024 and filler → plain read.
    let mut f = config_frame(A, SHELF, SLOT, CCmd::Read, &[0xED; 1024], 1);
    f[30..32].copy_from_slice(&1024u16.to_be_bytes());
    assert_eq!(config_reply(&one(h.send(0, &f)).1).5, big);
}

fn mask_frame(src: Mac, mcmd: MCmd, dirs: &[Directive]) -> Vec<u8> {
    let mut buf = vec![0u8; 2200];
    let m = MacMask::request(mcmd, Directives::from_slice(dirs));
    let n = m
        .emit(&hdr(src, SHELF, SLOT, Command::MacMask, 1), &mut buf)
        .unwrap();
    buf.truncate(n);
    buf
}

fn mask_reply(f: &[u8]) -> (Option<ErrorCode>, MError, u8, Vec<Mac>) {
    let p = parse(f).unwrap();
    match p.message {
        Message::MacMask(m) => (
            p.header.error,
            m.merror,
            m.failed_index,
            m.directives.iter().map(|d| d.mac).collect(),
        ),
        m => panic!("{m:?}"),
    }
}

fn add(mac: Mac) -> Directive {
    Directive {
        dcmd: DCmd::Add,
        mac,
    }
}

// §13.19
#[test]
fn mask_list() {
    let mut h = Harness::new();
    let (_, f) = one(h.send(0, &mask_frame(A, MCmd::Edit, &[add(A), add(B), add(A)])));
    assert_eq!(mask_reply(&f), (None, MError::Ok, 0, vec![A, B]));
    // C is ignored for every command.
    assert!(h.send(0, &mask_frame(C, MCmd::Read, &[])).is_empty());
    assert!(h
        .send(0, &config_frame(C, 0xFFFF, 0xFF, CCmd::Read, b"", 1))
        .is_empty());
    let arg = AtaArg::read_write(false, 0, 1, true).unwrap();
    assert!(h.send(0, &ata_frame(C, 1, arg, &[])).is_empty());
    assert!(h.send(0, &mask_frame(C, MCmd::Edit, &[add(C)])).is_empty());
    assert_eq!(h.t.counters().masked, 4);
    // B can read; delete B; B is then ignored.
    assert_eq!(read(&mut h, B, 0, 1).1.cmd_status, 0x40);
    let del = Directive {
        dcmd: DCmd::Delete,
        mac: B,
    };
    let (_, f) = one(h.send(0, &mask_frame(A, MCmd::Edit, &[del, del])));
    assert_eq!(mask_reply(&f).3, vec![A]);
    assert!(h.send(0, &ata_frame(B, 1, arg, &[])).is_empty());
    // Bad DCmd at index 1: first stays applied.
    let bad = Directive {
        dcmd: DCmd::Unknown(9),
        mac: C,
    };
    let (_, f) = one(h.send(0, &mask_frame(A, MCmd::Edit, &[add(B), bad, add(C)])));
    assert_eq!(mask_reply(&f), (None, MError::BadDCmd, 1, vec![]));
    let (_, f) = one(h.send(0, &mask_frame(A, MCmd::Read, &[])));
    assert_eq!(mask_reply(&f).3, vec![A, B]);
    // Fill the list; one more → MError 3 at the failing index.
    let many: Vec<Directive> = (0..(MASK_CAPACITY - 2) as u8)
        .map(|i| add(Mac([4, 0, 0, 0, 1, i])))
        .collect();
    let (_, f) = one(h.send(0, &mask_frame(A, MCmd::Edit, &many)));
    assert_eq!(mask_reply(&f).3.len(), MASK_CAPACITY);
    let (_, f) = one(h.send(0, &mask_frame(A, MCmd::Edit, &[add(A), add(C)])));
    assert_eq!(mask_reply(&f), (None, MError::ListFull, 1, vec![]));
    // Unknown MCmd → E/2.
    let (_, f) = one(h.send(0, &mask_frame(A, MCmd::Unknown(5), &[])));
    assert_eq!(mask_reply(&f).0, Some(ErrorCode::BadArgument));
    // State is shared/persistable.
    assert_eq!(h.t.shared(ExportId(0)).snapshot().mask.len(), MASK_CAPACITY);
}

fn reserve_frame(src: Mac, rcmd: RCmd, macs: &[Mac]) -> Vec<u8> {
    let mut buf = vec![0u8; 1600];
    let r = Reserve {
        rcmd,
        macs: MacList::from_slice(macs),
    };
    let n = r
        .emit(&hdr(src, SHELF, SLOT, Command::ReserveRelease, 1), &mut buf)
        .unwrap();
    buf.truncate(n);
    buf
}

fn reserve_reply(f: &[u8]) -> (Option<ErrorCode>, Vec<Mac>) {
    let p = parse(f).unwrap();
    match p.message {
        Message::Reserve(r) => (p.header.error, r.macs.iter().collect()),
        m => panic!("{m:?}"),
    }
}

// §13.20
#[test]
fn reserve_release() {
    let mut h = Harness::new();
    let (_, f) = one(h.send(0, &reserve_frame(A, RCmd::Set, &[A])));
    assert_eq!(reserve_reply(&f), (None, vec![A]));
    // B's READ → ATA ERR/ABRT (Linux fails it at once; an E reply it would
    // retransmit for minutes); B's IDENTIFY is exempt; B's config query is
    // not blocked.
    let (_, f) = one(h.send(
        0,
        &ata_frame(B, 1, AtaArg::read_write(false, 0, 1, true).unwrap(), &[]),
    ));
    assert!(f.len() >= 60);
    let (hd, arg, _) = ata_reply(&f);
    assert_eq!(hd.error, None);
    assert_eq!((arg.cmd_status, arg.err_feature), (0x41, ata::ERROR_ABRT));
    assert_ne!(arg.cmd_status & 0xa9, 0, "the Linux driver's error mask");
    assert_eq!(
        ata_reply(&one(h.send(0, &ata_frame(B, 1, AtaArg::identify(), &[]))).1)
            .1
            .cmd_status,
        0x40
    );
    assert_eq!(
        h.send(0, &config_frame(B, SHELF, SLOT, CCmd::Read, b"", 1))
            .len(),
        1
    );
    // B's set → E/6 with the list {A}.
    let (_, f) = one(h.send(0, &reserve_frame(B, RCmd::Set, &[B])));
    assert_eq!(
        reserve_reply(&f),
        (Some(ErrorCode::TargetReserved), vec![A])
    );
    // A reads fine.
    assert_eq!(read(&mut h, A, 0, 1).1.cmd_status, 0x40);
    // B's force set {} releases; B's READ works.
    let (_, f) = one(h.send(0, &reserve_frame(B, RCmd::ForceSet, &[])));
    assert_eq!(reserve_reply(&f), (None, vec![]));
    assert_eq!(read(&mut h, B, 0, 1).1.cmd_status, 0x40);
    let (_, f) = one(h.send(0, &reserve_frame(B, RCmd::Unknown(9), &[])));
    assert_eq!(reserve_reply(&f).0, Some(ErrorCode::BadArgument));
    assert_eq!(h.t.counters().reservation_conflicts, 1);
    assert_eq!(h.t.counters().reserve_refused, 1);
    assert_eq!(h.t.shared(ExportId(0)).fenced_commands(), 1);
    assert_eq!(h.t.shared(ExportId(0)).reserve_refused(), 1);
    assert_eq!(h.persisted, 2);
}

fn write_frame(src: Mac, tag: u32, lba: u64, fill: u8) -> Vec<u8> {
    let arg = AtaArg::read_write(true, lba, 1, true).unwrap();
    ata_frame(src, tag, arg, &[fill; 512])
}

fn sector(h: &Harness, lba: usize) -> &[u8] {
    &h.store[lba * SECTOR_SIZE..(lba + 1) * SECTOR_SIZE]
}

/// Replies in `sent` that are Reserve replies, and the rest.
fn split_reserve(sent: Vec<(u16, Vec<u8>)>) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let (r, o): (Vec<_>, Vec<_>) = sent
        .into_iter()
        .map(|(_, f)| f)
        .partition(|f| matches!(parse(f).unwrap().message, Message::Reserve(_)));
    (r, o)
}

#[test]
fn off_answers_only_after_the_victims_writes_in_flight_landed() {
    let mut h = Harness::new();
    h.hold_writes = true;
    // B's write is on its way to the store when A fences B out.
    assert!(h.send(0, &write_frame(B, 1, 5, 0xb1)).is_empty());
    assert!(h.send(0, &reserve_frame(A, RCmd::Set, &[A])).is_empty());
    assert_eq!(h.t.shared(ExportId(0)).snapshot().reserve, vec![A]);
    assert_eq!(h.persisted, 1, "the change is saved at once");
    assert_eq!(h.t.counters().reserve_replies_held, 1);
    // A write from B arriving now is refused at once and never reaches the store.
    let (_, f) = one(h.send(0, &write_frame(B, 2, 6, 0xb2)));
    let (_, arg, _) = ata_reply(&f);
    assert_eq!((arg.cmd_status, arg.err_feature), (0x41, ata::ERROR_ABRT));
    assert_eq!(h.held_writes.len(), 1);
    // A Read of the list waits as well: it shows B excluded.
    assert!(h.send(0, &reserve_frame(C, RCmd::Read, &[])).is_empty());
    // The write in flight lands; only then do both replies go out.
    let before = h.store[6 * SECTOR_SIZE];
    let (reserve, rest) = split_reserve(h.release_writes());
    assert_eq!(reserve.len(), 2);
    for f in &reserve {
        assert_eq!(reserve_reply(f), (None, vec![A]));
    }
    assert!(
        sector(&h, 5).iter().all(|&b| b == 0xb1),
        "landed before the reply"
    );
    assert_eq!(
        h.store[6 * SECTOR_SIZE],
        before,
        "refused write never landed"
    );
    // B's first write is still acknowledged after its sync (it did land).
    assert_eq!(rest.len(), 1);
    assert_eq!(ata_reply(&rest[0]).1.cmd_status, 0x40);
    assert_eq!(h.t.shared(ExportId(0)).fenced_commands(), 1);
}

#[test]
fn a_reply_that_excludes_nobody_is_not_held() {
    let mut h = Harness::new();
    h.hold_writes = true;
    assert!(h.send(0, &write_frame(B, 1, 5, 0xb1)).is_empty());
    // Releasing ({} stays {}) and reading an empty list exclude nobody.
    let (_, f) = one(h.send(0, &reserve_frame(A, RCmd::ForceSet, &[])));
    assert_eq!(reserve_reply(&f), (None, vec![]));
    let (_, f) = one(h.send(0, &reserve_frame(A, RCmd::Read, &[])));
    assert_eq!(reserve_reply(&f), (None, vec![]));
    // With no write in flight, a Set that excludes everybody else is
    // answered at once.
    h.release_writes();
    let (_, f) = one(h.send(0, &reserve_frame(A, RCmd::Set, &[A, B])));
    assert_eq!(reserve_reply(&f), (None, vec![A, B]));
    assert_eq!(h.t.counters().reserve_replies_held, 0);
}

#[test]
fn allow_list_decides_who_may_change_reservations() {
    let mut h = Harness::new();
    one(h.send(0, &mask_frame(A, MCmd::Edit, &[add(A), add(B)])));
    // C is outside the allow list: Set and Force Set get E/6 without a list,
    // and nothing changes; other commands from C stay unanswered.
    for rcmd in [RCmd::Set, RCmd::ForceSet] {
        let (_, f) = one(h.send(0, &reserve_frame(C, rcmd, &[C])));
        assert_eq!(reserve_reply(&f), (Some(ErrorCode::TargetReserved), vec![]));
    }
    assert!(h.send(0, &reserve_frame(C, RCmd::Read, &[])).is_empty());
    assert!(h.t.shared(ExportId(0)).snapshot().reserve.is_empty());
    assert_eq!(h.t.shared(ExportId(0)).reserve_refused(), 2);
    // A reserves for itself; B's Set is refused (vblade's rule) but B's
    // Force Set is not: it is on the allow list.
    one(h.send(0, &reserve_frame(A, RCmd::Set, &[A])));
    let (_, f) = one(h.send(0, &reserve_frame(B, RCmd::Set, &[B])));
    assert_eq!(
        reserve_reply(&f),
        (Some(ErrorCode::TargetReserved), vec![A])
    );
    let (_, f) = one(h.send(0, &reserve_frame(B, RCmd::ForceSet, &[B])));
    assert_eq!(reserve_reply(&f), (None, vec![B]));
    assert_eq!(h.t.counters().reserve_refused, 3);
    assert_eq!(h.t.shared(ExportId(0)).reserve_refused(), 3);
}

#[test]
fn responses_and_malformed_frames_are_dropped() {
    let mut h = Harness::new();
    let mut f = config_frame(A, SHELF, SLOT, CCmd::Read, b"", 1);
    f[14] |= 0x08;
    assert!(h.send(0, &f).is_empty());
    assert_eq!(h.t.counters().responses_ignored, 1);
    for bad in [&[][..], &[0u8; 13], &f[..20], &[0xffu8; 60]] {
        assert!(h.send(0, bad).is_empty());
    }
    // Lying mask Dir Count.
    let mut m = mask_frame(A, MCmd::Edit, &[add(A)]);
    m[27] = 200;
    assert!(h.send(0, &m).is_empty());
    assert_eq!(h.t.counters().malformed, 5);
    // Unknown interface index.
    assert!(h
        .send(9, &config_frame(A, SHELF, SLOT, CCmd::Read, b"", 1))
        .is_empty());
    // Still answering.
    assert_eq!(read(&mut h, A, 0, 1).1.cmd_status, 0x40);
}

// §1.2, 1.3: every header field of a request is checked.
#[test]
fn header_fields_are_checked() {
    let mut h = Harness::new();
    let good = config_frame(A, SHELF, SLOT, CCmd::Read, b"", 9);
    // Version 2, and a version-2 frame whose body does not parse as version 1:
    // "unsupported version" (E + 5), header only, sent as version 1.
    let mut v2 = good.clone();
    v2[14] = 0x20;
    let mut v2_short = v2[..24].to_vec();
    v2_short[19] = 0;
    for f in [&v2, &v2_short] {
        let (_, r) = one(h.send(0, f));
        assert_eq!(r.len(), 60);
        assert_eq!(r[14], 0x1C, "version 1, R and E");
        let hd = Header::parse(&r).unwrap();
        assert_eq!(hd.error, Some(ErrorCode::UnsupportedVersion));
        assert_eq!((hd.tag, hd.shelf, hd.slot, hd.dst), (9, SHELF, SLOT, A));
        assert!(r[24..].iter().all(|&b| b == 0));
    }
    // Version 0 (vblade's advertisements carry it) is not 1 either.
    let mut v0 = good.clone();
    v0[14] = 0x00;
    let hd = Header::parse(&one(h.send(0, &v0)).1).unwrap();
    assert_eq!(hd.error, Some(ErrorCode::UnsupportedVersion));
    assert_eq!(h.t.counters().unsupported_version, 3);
    assert_eq!(h.t.counters().malformed, 0);
    // Another version for another shelf.slot: silence.
    let mut other = v2.clone();
    other[16..18].copy_from_slice(&8u16.to_be_bytes());
    assert!(h.send(0, &other).is_empty());
    assert_eq!(h.t.counters().not_addressed, 1);
    // From a MAC outside the mask list: silence.
    one(h.send(0, &mask_frame(A, MCmd::Edit, &[add(A)])));
    let mut from_b = v2.clone();
    from_b[6..12].copy_from_slice(&B.0);
    assert!(h.send(0, &from_b).is_empty());
    assert_eq!(h.t.counters().masked, 1);
    // Another unicast destination (a promiscuous interface): ignored.
    let mut elsewhere = good.clone();
    elsewhere[..6].copy_from_slice(&C.0);
    assert!(h.send(0, &elsewhere).is_empty());
    // This interface's MAC on the other interface is another destination too.
    assert!(h.send(1, &good).is_empty());
    assert_eq!(h.t.counters().wrong_destination, 2);
    // Broadcast or multicast source: no one to answer.
    for src in [Mac::BROADCAST, Mac([0x01, 0, 0x5e, 0, 0, 1])] {
        let mut f = good.clone();
        f[6..12].copy_from_slice(&src.0);
        assert!(h.send(0, &f).is_empty());
    }
    assert_eq!(h.t.counters().bad_source, 2);
    // E set in a request.
    let mut e = good.clone();
    e[14] |= 0x04;
    e[15] = 2;
    assert!(h.send(0, &e).is_empty());
    assert_eq!(h.t.counters().error_flag_requests, 1);
    // Reserved flag bits (aoeping sets bit 0 on SMART) and an error byte
    // without E: served, counted.
    let mut r = good.clone();
    r[14] |= 0x01;
    assert_eq!(config_reply(&one(h.send(0, &r)).1).0.tag, 9);
    let mut r = good.clone();
    r[15] = 7;
    assert_eq!(config_reply(&one(h.send(0, &r)).1).0.error, None);
    assert_eq!(h.t.counters().reserved_bits, 2);
    // The broadcast destination is served on either interface.
    let mut b = good.clone();
    b[..6].copy_from_slice(&Mac::BROADCAST.0);
    assert_eq!(one(h.send(1, &b)).0, 1);
}

#[test]
fn per_client_queue_is_buffer_count() {
    let mut h = Harness::with(
        TargetConfig {
            buffer_count: 16,
            max_clients: 2,
            ..TargetConfig::default()
        },
        false,
    );
    h.hold_syncs = true;
    let data = vec![0u8; 512];
    let arg = AtaArg::read_write(true, 0, 1, true).unwrap();
    for tag in 0..20 {
        h.send(0, &ata_frame(A, tag, arg, &data));
    }
    assert_eq!(h.t.counters().client_queue_full, 4);
    for tag in 0..16 {
        h.send(0, &ata_frame(B, tag, arg, &data));
    }
    // A third client finds no client slot while A and B are busy.
    h.send(0, &ata_frame(C, 0, arg, &data));
    assert_eq!(h.t.counters().target_queue_full, 1);
    let mut acked = 0;
    while !h.held_syncs.is_empty() {
        acked += h.release_syncs().len();
    }
    assert_eq!(acked, 32);
    assert_eq!(h.t.requests_in_flight(), 0);
    // Slots are reusable by C now.
    h.send(0, &ata_frame(C, 0, arg, &data));
    assert_eq!(h.release_syncs().len(), 1);
}

#[test]
fn announce_and_resize() {
    let mut h = Harness::new();
    let mut acts = Vec::new();
    h.t.announce(ExportId(0), &mut acts);
    let sent = h.run(acts, &[]);
    assert_eq!(sent.len(), 2, "one per interface");
    for (i, f) in &sent {
        assert_eq!(&f[0..6], &[0xff; 6]);
        assert_eq!(&f[6..12], &IF_MAC[usize::from(*i)].0);
        let (hd, ..) = config_reply(f);
        assert!(hd.response && hd.tag == 0 && hd.shelf == SHELF && hd.slot == SLOT);
    }
    // With a mask list: one per allowed MAC per interface.
    one(h.send(0, &mask_frame(A, MCmd::Edit, &[add(A), add(B)])));
    let mut acts = Vec::new();
    assert!(h.t.resize(ExportId(0), SECTORS * 2, &mut acts));
    let sent = h.run(acts, &[]);
    assert_eq!(sent.len(), 4);
    assert!(sent.iter().any(|(_, f)| f[0..6] == B.0));
    let mut acts = Vec::new();
    assert!(!h.t.resize(ExportId(0), SECTORS * 2, &mut acts));
    assert!(acts.is_empty());
    let (_, f) = one(h.send(0, &ata_frame(A, 1, AtaArg::identify(), &[])));
    assert_eq!(
        Identify::parse(&ata_reply(&f).2).unwrap().sectors,
        SECTORS * 2
    );
}

/// Two workers' targets serving one export (one shared state), and a time.
fn two_workers() -> (Target, Target, Instant) {
    let shared = SharedExport::new(ExportState::with_random_serial(1), SECTORS);
    let worker = || {
        let mut t = Target::new(TargetConfig::default()).unwrap();
        let i = t.add_interface(IF_MAC[0], 1500).unwrap();
        t.add_export(
            ExportConfig {
                shelf: SHELF,
                slot: SLOT,
                read_only: false,
                ifaces: vec![i],
            },
            shared.clone(),
        )
        .unwrap();
        t
    };
    (worker(), worker(), Instant::now())
}

#[test]
fn state_shared_between_workers() {
    let (mut w1, mut w2, now) = two_workers();
    let mut out = Vec::new();
    w1.handle_frame(
        IfaceId(0),
        &mask_frame(A, MCmd::Edit, &[add(A)]),
        now,
        &mut out,
    );
    assert!(out.contains(&Action::Persist {
        export: ExportId(0)
    }));
    out.clear();
    w2.handle_frame(
        IfaceId(0),
        &config_frame(B, SHELF, SLOT, CCmd::Read, b"", 1),
        now,
        &mut out,
    );
    assert!(out.is_empty(), "worker 2 must see worker 1's mask");
    assert_eq!(w2.counters().masked, 1);
}

#[test]
fn a_fence_on_one_worker_waits_for_writes_on_another() {
    let (mut w1, mut w2, now) = two_workers();
    // Worker bits: w1 is woken by writes leaving on w2, never by its own.
    w1.watch_fences_as(0);
    w2.watch_fences_as(1);
    let mut out = Vec::new();
    w2.handle_frame(IfaceId(0), &write_frame(B, 1, 5, 0xb1), now, &mut out);
    let Some(&Action::Write { req, .. }) = out.first() else {
        panic!("{out:?}")
    };
    out.clear();
    w1.handle_frame(
        IfaceId(0),
        &reserve_frame(A, RCmd::Set, &[A]),
        now,
        &mut out,
    );
    assert!(
        out.iter().all(|a| !matches!(a, Action::Send { .. })),
        "{out:?}"
    );
    assert!(w1.fences_held());
    // w2 refuses B's next write at once (it sees the list on its next frame).
    out.clear();
    w2.handle_frame(IfaceId(0), &write_frame(B, 2, 6, 0xb2), now, &mut out);
    assert!(matches!(out.as_slice(), [Action::Send { .. }]), "{out:?}");
    // Refused by the list w2 already sees, before the gate: no one to wake.
    assert_eq!(w2.take_fence_wakes(), 0);
    out.clear();
    w1.poll_fences(&mut out);
    assert!(out.is_empty(), "B's write on w2 is still in flight");
    assert_eq!(w1.take_fence_wakes(), 0);
    w2.write_done(req, true, &mut out);
    // w1 watches the gate: the write that landed names it, once.
    assert_eq!(w2.take_fence_wakes(), 1);
    assert_eq!(w2.take_fence_wakes(), 0);
    out.clear();
    w1.poll_fences(&mut out);
    let [Action::Send { frame, len, .. }] = out.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!(reserve_reply(w1.ctl_frame(*frame, *len)), (None, vec![A]));
    assert!(!w1.fences_held());
    // Nobody watches any more: B's writes wake no one.
    out.clear();
    w2.handle_frame(IfaceId(0), &write_frame(B, 3, 7, 0xb3), now, &mut out);
    assert_eq!(w2.take_fence_wakes(), 0);
}

#[test]
fn setup_errors() {
    let mut t = Target::new(TargetConfig::default()).unwrap();
    let i = t.add_interface(IF_MAC[0], 1500).unwrap();
    let shared = SharedExport::new(ExportState::with_random_serial(1), 8);
    let cfg = |shelf, slot| ExportConfig {
        shelf,
        slot,
        read_only: false,
        ifaces: vec![i],
    };
    assert!(t.add_export(cfg(0xFFFF, 1), shared.clone()).is_err());
    assert!(t.add_export(cfg(1, 0xFF), shared.clone()).is_err());
    t.add_export(cfg(1, 1), shared.clone()).unwrap();
    assert!(t.add_export(cfg(1, 1), shared.clone()).is_err());
    let mut bad = cfg(1, 2);
    bad.ifaces = vec![IfaceId(5)];
    assert!(t.add_export(bad, shared).is_err());
    assert!(Target::new(TargetConfig {
        buffer_count: 1,
        ..TargetConfig::default()
    })
    .is_err());
}

// `aoeraid serve --config` reloads: an export removed with a write in flight
// still answers it, its slot is reused only once idle, and the other export
// is untouched; Buffer Count is per export.
#[test]
fn remove_export_and_reuse_its_slot() {
    let mut h = Harness::new();
    let second = |shelf, slot| ExportConfig {
        shelf,
        slot,
        read_only: false,
        ifaces: vec![IfaceId(0)],
    };
    let shared = || SharedExport::new(ExportState::with_random_serial(0xdef), SECTORS);
    let other = h.t.add_export(second(SHELF, SLOT + 1), shared()).unwrap();
    h.t.set_buffer_count(other, 8).unwrap();
    assert!(h.t.set_buffer_count(other, 65).is_err());
    let mut q = config_frame(A, SHELF, SLOT + 1, CCmd::Read, b"", 1);
    assert_eq!(config_reply(&one(h.send(0, &q)).1).1, 8);
    // A write to export 0 is in the store (its sync held) when it is removed.
    h.hold_syncs = true;
    let arg = AtaArg::read_write(true, 0, 1, true).unwrap();
    assert!(h.send(0, &ata_frame(A, 7, arg, &[1; 512])).is_empty());
    h.t.remove_export(ExportId(0));
    assert!(!h.t.export_idle(ExportId(0)));
    assert!(!h.t.export_idle(other));
    // No longer addressed; the other export still is.
    assert!(h
        .send(0, &config_frame(A, SHELF, SLOT, CCmd::Read, b"", 2))
        .is_empty());
    q[20..24].copy_from_slice(&3u32.to_be_bytes());
    assert_eq!(config_reply(&one(h.send(0, &q)).1).0.tag, 3);
    // A new export while the old one is busy gets a new slot...
    let third = h.t.add_export(second(SHELF, SLOT + 2), shared()).unwrap();
    assert_eq!(third, ExportId(2));
    // ...the write is still answered, then the slot is idle and reused,
    // even by the same shelf.slot.
    let (_, f) = one(h.release_syncs());
    let (hd, a, _) = ata_reply(&f);
    assert_eq!((hd.tag, hd.slot, a.cmd_status), (7, SLOT, 0x40));
    assert!(h.t.export_idle(ExportId(0)));
    let again = h.t.add_export(second(SHELF, SLOT), shared()).unwrap();
    assert_eq!(again, ExportId(0));
    assert!(!h.t.export_idle(again));
    assert_eq!(h.t.export_count(), 3);
    assert!(matches!(
        h.t.add_export(second(SHELF, SLOT), shared()),
        Err(SetupError::DuplicateExport { .. })
    ));
    h.hold_syncs = false;
    assert_eq!(read(&mut h, A, 0, 1).2, vec![1; 512]);
    // An interface added later is set on an export; a MAC change follows.
    h.t.set_export_interfaces(third, &[IfaceId(0), IfaceId(1)])
        .unwrap();
    assert!(h.t.set_export_interfaces(third, &[IfaceId(5)]).is_err());
    let mut b = config_frame(A, SHELF, SLOT + 2, CCmd::Read, b"", 4);
    b[..6].copy_from_slice(&IF_MAC[1].0);
    assert_eq!(one(h.send(1, &b)).0, 1);
    h.t.set_interface(IfaceId(1), C, 1500);
    b[..6].copy_from_slice(&C.0);
    let (hd, _, sc, ..) = config_reply(&one(h.send(1, &b)).1);
    assert_eq!((hd.src, sc), (C, 2));
}
