//! The driver without a ring: a port with a settable number of free send
//! buffers, the RAID volume store and a store that writes frames in place.

use super::*;
use crate::frontend::merge::{Merge, RunBounds};
use crate::frontend::Volumes;
use aoe_target::{ExportConfig, ExportState, SharedExport, TargetConfig};
use aoe_wire::{ata, parse, AFlags, AtaArg, CCmd, Command, Header, Mac, Message, QueryConfig};
use raid_engine::{VolumeOp, VolumeRequest};

const IF_MAC: Mac = Mac([2, 0xaa, 0, 0, 0, 1]);
const CLIENT: Mac = Mac([2, 0, 0, 0, 0, 0xc]);
const SHELF: u16 = 5;
const SLOT: u8 = 1;

/// A received frame: an id (to tell frames apart) and its bytes.
#[derive(Debug)]
struct TestFrame {
    id: u32,
    bytes: Vec<u8>,
}

#[derive(Default)]
struct TestPort {
    free: usize,
    sent: Vec<Vec<u8>>,
    recycled: Vec<u32>,
}

impl Port for TestPort {
    type Frame = TestFrame;
    type Slot = Vec<u8>;

    fn frame<'a>(&'a self, frame: &'a TestFrame) -> &'a [u8] {
        &frame.bytes
    }

    fn recycle(&mut self, frame: TestFrame) {
        self.recycled.push(frame.id);
    }

    fn slot(&mut self) -> Option<Vec<u8>> {
        self.free = self.free.checked_sub(1)?;
        Some(vec![0; 9000])
    }

    fn slot_bytes<'a>(&'a mut self, slot: &'a mut Vec<u8>) -> &'a mut [u8] {
        slot
    }

    fn release(&mut self, _slot: Vec<u8>) {
        self.free += 1;
    }

    fn send(&mut self, _iface: IfaceId, mut slot: Vec<u8>, len: usize) -> bool {
        slot.truncate(len);
        self.sent.push(slot);
        true
    }
}

/// A store like the io_uring file store: writes take the received frame
/// itself, reads need a send buffer up front; with `merging`, runs of
/// consecutive requests go to it as one operation each.
#[derive(Default)]
struct InPlace {
    /// Frames taken by writes: (frame id, byte range written from it,
    /// durable by itself).
    written: Vec<(u32, std::ops::Range<usize>, bool)>,
    /// Syncs asked for.
    syncs: usize,
    /// Reads started, with the buffer they read into.
    reading: Vec<(ReqId, Vec<u8>)>,
    merging: Option<RunBounds>,
    /// Frames of the run being collected.
    kept: Vec<TestFrame>,
    /// The requests of every operation started, in order: (write, request
    /// indexes).
    ops: Vec<(bool, Vec<u32>)>,
}

impl Store<TestPort> for InPlace {
    fn read(&mut self, port: &mut TestPort, io: StoreIo) -> ReadStart {
        match port.slot() {
            Some(slot) => {
                self.reading.push((io.req, slot));
                ReadStart::Started
            }
            None => ReadStart::NoSlot,
        }
    }

    fn write(
        &mut self,
        _port: &mut TestPort,
        io: StoreIo,
        frame: &mut Option<TestFrame>,
        durable: bool,
    ) -> bool {
        let f = frame.take().expect("the request's frame");
        self.written
            .push((f.id, ATA_DATA_OFFSET..ATA_DATA_OFFSET + io.len, durable));
        true
    }

    fn sync(&mut self, _port: &mut TestPort, _export: ExportId, _flush: bool) -> SyncStart {
        self.syncs += 1;
        SyncStart::Done(true)
    }

    fn merge(&mut self) -> Option<&mut dyn Merge<TestPort>> {
        Some(self)
    }
}

impl Merge<TestPort> for InPlace {
    fn bounds(&self, _export: ExportId) -> Option<RunBounds> {
        self.merging
    }

    fn keep(&mut self, _port: &mut TestPort, frame: TestFrame) {
        self.kept.push(frame);
    }

    fn read_run(&mut self, port: &mut TestPort, run: &[StoreIo]) -> ReadStart {
        if port.free < run.len() {
            return ReadStart::NoSlot;
        }
        for io in run {
            let slot = port.slot().expect("counted free");
            self.reading.push((io.req, slot));
        }
        self.ops
            .push((false, run.iter().map(|io| io.req.0).collect()));
        ReadStart::Started
    }

    fn write_run(&mut self, _port: &mut TestPort, run: &[StoreIo], durable: bool) -> bool {
        assert_eq!(self.kept.len(), run.len(), "one kept frame per write");
        for (io, f) in run.iter().zip(self.kept.drain(..)) {
            let range = ATA_DATA_OFFSET..ATA_DATA_OFFSET + io.len;
            self.written.push((f.id, range, durable));
        }
        self.ops
            .push((true, run.iter().map(|io| io.req.0).collect()));
        true
    }
}

fn driver<S>(store: S) -> Driver<S> {
    let mut t = Target::new(TargetConfig::default()).unwrap();
    let export = ExportConfig {
        shelf: SHELF,
        slot: SLOT,
        read_only: false,
        ifaces: vec![t.add_interface(IF_MAC, 9000).unwrap()],
    };
    let state = ExportState::with_random_serial(7);
    t.add_export(export, SharedExport::new(state, 1 << 20))
        .unwrap();
    Driver::new(t, store)
}

fn header(command: Command, tag: u32) -> Header {
    Header::request(IF_MAC, CLIENT, SHELF, SLOT, command, tag)
}

/// An LBA48 ATA request frame for `sectors` sectors at `lba` (with data for writes).
fn ata_frame(id: u32, write: bool, lba: u64, data: &[u8], sectors: u8) -> TestFrame {
    let (flags, cmd) = if write {
        (AFlags::EXTENDED | AFlags::WRITE, ata::WRITE_EXT)
    } else {
        (AFlags::EXTENDED, ata::READ_EXT)
    };
    let arg = AtaArg {
        aflags: flags,
        err_feature: 0,
        sector_count: sectors,
        cmd_status: cmd,
        lba,
    };
    let mut bytes = vec![0u8; ATA_DATA_OFFSET + data.len().max(24)];
    aoe_wire::write_ata_request(&mut bytes, &header(Command::Ata, id), &arg).unwrap();
    bytes[ATA_DATA_OFFSET..ATA_DATA_OFFSET + data.len()].copy_from_slice(data);
    TestFrame { id, bytes }
}

fn query_frame(id: u32) -> TestFrame {
    let mut bytes = vec![0u8; 128];
    let n = QueryConfig::request(CCmd::Read, b"")
        .emit(&header(Command::QueryConfig, id), &mut bytes)
        .unwrap();
    bytes.truncate(n);
    TestFrame { id, bytes }
}

fn sector(fill: u8) -> Vec<u8> {
    vec![fill; 512]
}

/// Tag and ATA status of an ATA reply, or `None` for other frames.
fn ata_reply(frame: &[u8]) -> Option<(u32, u8, Vec<u8>)> {
    let p = parse(frame).unwrap();
    match p.message {
        Message::Ata(a) => Some((p.header.tag, a.arg.cmd_status, a.data.to_vec())),
        _ => None,
    }
}

/// A frame arrives on interface 0.
fn feed<S: Store<TestPort>>(d: &mut Driver<S>, port: &mut TestPort, frame: TestFrame) {
    d.on_frame(port, IfaceId(0), frame, Instant::now());
}

/// The volume request `id` finished with `result`.
fn complete<P: Port>(
    d: &mut Driver<Volumes>,
    port: &mut P,
    id: u64,
    result: Result<Vec<u8>, raid_engine::VolumeError>,
) {
    let done = d
        .store_mut()
        .done(raid_engine::VolumeCompletion { id, result });
    d.on_done(port, done.expect("a front-end request"));
}

/// Writes one sector at `lba` through the volume store and completes it:
/// its reply waits to be sent.
fn durable_write(d: &mut Driver<Volumes>, port: &mut TestPort, tag: u32, lba: u64) {
    feed(d, port, ata_frame(tag, true, lba, &sector(tag as u8), 1));
    for (_, r) in requests(d) {
        assert_eq!(r.op, VolumeOp::Write);
        complete(d, port, r.id, Ok(Vec::new()));
    }
}

fn requests(d: &mut Driver<Volumes>) -> Vec<(usize, VolumeRequest)> {
    d.store_mut().take_requests().collect()
}

#[test]
fn replies_wait_for_send_slots_in_order_and_none_is_dropped() {
    let mut d = driver(Volumes::new(vec![3]));
    let mut port = TestPort::default();
    feed(&mut d, &mut port, ata_frame(1, true, 8, &sector(0x11), 1));
    feed(&mut d, &mut port, ata_frame(2, true, 9, &sector(0x22), 1));
    let reqs = requests(&mut d);
    assert_eq!(reqs.len(), 2);
    for (v, r) in &reqs {
        assert_eq!(*v, 3, "the export's volume");
        complete(&mut d, &mut port, r.id, Ok(Vec::new()));
    }
    // Both writes are durable (group commit) but no send slot is free.
    d.transmit(&mut port);
    assert!(port.sent.is_empty());
    assert_eq!(d.counters().slot_waits, 1);
    assert!(!d.drained());

    port.free = 1;
    d.transmit(&mut port);
    assert_eq!(port.sent.len(), 1);
    port.free = 1;
    d.transmit(&mut port);
    let tags: Vec<u32> = port.sent.iter().map(|f| ata_reply(f).unwrap().0).collect();
    assert_eq!(tags, [1, 2], "answered in the order they waited");
    for f in &port.sent {
        assert_eq!(ata_reply(f).unwrap().1, ata::STATUS_OK);
    }
    assert!(d.drained());
    assert_eq!(d.target().counters().driver_dropped, 0);
    assert_eq!(d.counters().ctl_dropped, 0);
}

#[test]
fn volume_writes_carry_the_payload_after_the_ata_header() {
    let mut d = driver(Volumes::new(vec![0]));
    let mut port = TestPort::default();
    let mut data = sector(0xa5);
    data.extend(sector(0x5a));
    feed(&mut d, &mut port, ata_frame(4, true, 100, &data, 2));
    let reqs = requests(&mut d);
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0].1;
    assert_eq!((r.offset, r.sectors), (100, 2));
    assert_eq!(r.data, data);
    assert_eq!(
        port.recycled,
        [4],
        "the frame goes back once its payload is taken"
    );
}

#[test]
fn read_data_waits_for_a_slot_then_fills_the_reply() {
    let mut d = driver(Volumes::new(vec![0]));
    let mut port = TestPort::default();
    feed(&mut d, &mut port, ata_frame(9, false, 5, &[], 1));
    let reqs = requests(&mut d);
    assert_eq!(reqs[0].1.op, VolumeOp::Read);
    complete(&mut d, &mut port, reqs[0].1.id, Ok(sector(0x77)));
    d.transmit(&mut port);
    assert!(port.sent.is_empty());
    assert_eq!(d.counters().slot_waits, 1);

    port.free = 1;
    d.transmit(&mut port);
    let (tag, status, data) = ata_reply(&port.sent[0]).unwrap();
    assert_eq!((tag, status), (9, ata::STATUS_OK));
    assert_eq!(data, sector(0x77));
    assert_eq!(d.counters().read_bytes, 512);
    assert!(d.drained());
}

#[test]
fn new_frames_queue_behind_waiting_work() {
    let mut d = driver(Volumes::new(vec![0]));
    let mut port = TestPort::default();
    durable_write(&mut d, &mut port, 1, 0);
    d.transmit(&mut port);
    // Slots come back; a query arrives before the host sends again.
    port.free = 2;
    feed(&mut d, &mut port, query_frame(2));
    d.transmit(&mut port);
    assert_eq!(port.sent.len(), 2);
    assert_eq!(
        ata_reply(&port.sent[0]).unwrap().0,
        1,
        "the waiting reply first"
    );
    assert!(ata_reply(&port.sent[1]).is_none(), "then the config reply");
    assert!(!d.has_transmit());
}

#[test]
fn control_frames_wait_too() {
    let mut d = driver(Volumes::new(vec![0]));
    let mut port = TestPort::default();
    feed(&mut d, &mut port, query_frame(3));
    d.transmit(&mut port);
    assert!(d.has_transmit());
    port.free = 1;
    d.transmit(&mut port);
    let p = parse(&port.sent[0]).unwrap();
    assert_eq!(p.header.tag, 3);
    assert!(matches!(p.message, Message::QueryConfig(_)));
}

#[test]
fn state_is_saved_before_the_reply_that_reports_it() {
    let mut d = driver(Volumes::new(vec![0]));
    let mut bytes = vec![0u8; 128];
    let n = QueryConfig::request(CCmd::Set, b"rack 4")
        .emit(&header(Command::QueryConfig, 5), &mut bytes)
        .unwrap();
    // The appliance core's way: borrowed bytes in, frames pulled out.
    d.on_frame(
        &mut SlicePort::default(),
        IfaceId(0),
        &bytes[..n],
        Instant::now(),
    );
    let mut buf = vec![0u8; 1500];
    assert!(!d.has_transmit());
    assert_eq!(
        d.poll_transmit(&mut buf),
        None,
        "held until the state is saved"
    );
    let export = d.poll_persist().expect("a save is owed");
    assert_eq!(d.target().shared(export).snapshot().config, b"rack 4");
    assert_eq!(d.poll_persist(), None);
    let (iface, len) = d.poll_transmit(&mut buf).expect("the reply");
    assert_eq!(iface, IfaceId(0));
    assert_eq!(parse(&buf[..len]).unwrap().header.tag, 5);
}

#[test]
fn slice_port_hosts_pull_read_replies() {
    let mut d = driver(Volumes::new(vec![0]));
    let frame = ata_frame(12, false, 3, &[], 1);
    let mut port = SlicePort::default();
    d.on_frame(&mut port, IfaceId(0), &frame.bytes[..], Instant::now());
    let r = requests(&mut d).remove(0).1;
    complete(&mut d, &mut port, r.id, Ok(sector(0x3c)));
    let mut buf = vec![0u8; 1500];
    let (_, len) = d.poll_transmit(&mut buf).expect("the read reply");
    let (tag, status, data) = ata_reply(&buf[..len]).unwrap();
    assert_eq!((tag, status, data), (12, ata::STATUS_OK, sector(0x3c)));
    assert!(d.drained());
}

#[test]
fn writes_hand_the_received_frame_to_the_store() {
    let (mut d, mut port) = in_place(4);
    feed(&mut d, &mut port, ata_frame(21, true, 0, &sector(3), 1));
    assert_eq!(
        d.store().written,
        [(21, ATA_DATA_OFFSET..ATA_DATA_OFFSET + 512, true)],
        "the frame itself, not a copy"
    );
    assert!(port.recycled.is_empty(), "the store owns the frame now");
    write_done(&mut d, &mut port, 0);
    d.transmit(&mut port);
    assert_eq!(ata_reply(&port.sent[0]).unwrap().0, 21);
}

/// A driver over the in-place store, and a port with `free` send buffers.
fn in_place(free: usize) -> (Driver<InPlace>, TestPort) {
    let port = TestPort {
        free,
        ..TestPort::default()
    };
    (driver(InPlace::default()), port)
}

/// Completes the write of request `req` (ok).
fn write_done(d: &mut Driver<InPlace>, port: &mut TestPort, req: u32) {
    let done = Done::Write {
        req: ReqId(req),
        ok: true,
    };
    d.on_done(port, done);
}

#[test]
fn a_lone_write_is_one_durable_write_and_a_batch_shares_one_sync() {
    let (mut d, mut port) = in_place(16);
    // One frame in the wake-up, no write in the store: durable by itself,
    // answered when it completes, no sync.
    d.frames_coming(1);
    feed(&mut d, &mut port, ata_frame(40, true, 0, &sector(1), 1));
    assert!(d.store().written[0].2, "submitted as a durable write");
    write_done(&mut d, &mut port, 0);
    d.transmit(&mut port);
    assert_eq!(ata_reply(&port.sent[0]).unwrap().0, 40);
    assert_eq!(d.store().syncs, 0, "no separate sync");
    assert_eq!(d.target().counters().durable_writes, 1);

    // Three writes in one wake-up: none alone, one sync for all of them,
    // every reply only after it.
    d.frames_coming(3);
    for (tag, lba) in [(41, 8), (42, 16), (43, 24)] {
        feed(&mut d, &mut port, ata_frame(tag, true, lba, &sector(2), 1));
    }
    let durable: Vec<bool> = d.store().written[1..].iter().map(|w| w.2).collect();
    assert_eq!(durable, [false, false, false]);
    let reqs: Vec<u32> = (0..3).map(|i| 2 - i).collect();
    for &r in &reqs[..2] {
        write_done(&mut d, &mut port, r);
        d.transmit(&mut port);
        assert_eq!(port.sent.len(), 1, "no reply before the sync");
    }
    write_done(&mut d, &mut port, reqs[2]);
    d.transmit(&mut port);
    assert_eq!(d.store().syncs, 1, "one sync for the batch");
    assert_eq!(port.sent.len(), 4);

    // A write that arrives alone while another is in the store shares a
    // sync with it instead.
    d.frames_coming(1);
    feed(&mut d, &mut port, ata_frame(44, true, 32, &sector(3), 1));
    d.frames_coming(1);
    feed(&mut d, &mut port, ata_frame(45, true, 40, &sector(4), 1));
    let durable: Vec<bool> = d.store().written[4..].iter().map(|w| w.2).collect();
    assert_eq!(durable, [true, false]);
    assert_eq!(d.target().counters().durable_writes, 1);
}

#[test]
fn reads_that_need_a_slot_wait_for_one() {
    let mut d = driver(InPlace::default());
    let mut port = TestPort::default();
    feed(&mut d, &mut port, ata_frame(30, false, 0, &[], 1));
    feed(&mut d, &mut port, ata_frame(31, false, 1, &[], 1));
    assert!(d.store().reading.is_empty());
    d.transmit(&mut port);
    assert_eq!(d.counters().slot_waits, 1);
    port.free = 1;
    d.transmit(&mut port);
    assert_eq!(d.store().reading.len(), 1, "one slot, one read, in order");
    let (req, mut slot) = d.store_mut().reading.pop().expect("read started");
    slot[ATA_DATA_OFFSET..ATA_DATA_OFFSET + 512].copy_from_slice(&sector(0x42));
    d.on_done(
        &mut port,
        Done::Read {
            req,
            data: ReadData::InSlot { slot, ok: true },
        },
    );
    let (tag, _, data) = ata_reply(&port.sent[0]).unwrap();
    assert_eq!((tag, data), (30, sector(0x42)));
    port.free = 1;
    d.transmit(&mut port);
    assert_eq!(d.store().reading.len(), 1, "the second read started");
}

const FENCER: Mac = Mac([2, 0, 0, 0, 0, 0xf]);

/// FENCER's Reserve Set of itself alone, tag `id`.
fn reserve_frame(id: u32) -> TestFrame {
    use aoe_wire::{MacList, RCmd, Reserve};
    let mut bytes = vec![0u8; 128];
    let reserve = Reserve {
        rcmd: RCmd::Set,
        macs: MacList::from_slice(&[FENCER]),
    };
    let hdr = Header::request(IF_MAC, FENCER, SHELF, SLOT, Command::ReserveRelease, id);
    let n = reserve.emit(&hdr, &mut bytes).unwrap();
    bytes.truncate(n);
    TestFrame { id, bytes }
}

#[test]
fn a_fence_reply_waits_for_the_victims_volume_write() {
    let mut d = driver(Volumes::new(vec![0]));
    let mut port = TestPort {
        free: 8,
        ..TestPort::default()
    };
    // CLIENT's write is in the RAID volume when FENCER reserves for itself.
    feed(&mut d, &mut port, ata_frame(1, true, 8, &sector(0x11), 1));
    let in_flight = requests(&mut d);
    assert_eq!(in_flight.len(), 1);
    feed(&mut d, &mut port, reserve_frame(9));
    assert_eq!(d.poll_persist(), Some(ExportId(0)), "saved at once");
    d.transmit(&mut port);
    assert!(
        port.sent.is_empty(),
        "no reply while CLIENT's write may land"
    );
    assert!(d.fences_held() && !d.drained());
    // CLIENT's next write is refused at once and never reaches the volume.
    feed(&mut d, &mut port, ata_frame(2, true, 9, &sector(0x22), 1));
    assert!(requests(&mut d).is_empty());
    d.transmit(&mut port);
    let (tag, status, _) = ata_reply(&port.sent.remove(0)).unwrap();
    assert_eq!((tag, status), (2, ata::STATUS_FAILED));
    // The write lands: its ack and the Reserve reply go out, the reply only now.
    complete(&mut d, &mut port, in_flight[0].1.id, Ok(Vec::new()));
    d.poll_fences(&mut port);
    d.transmit(&mut port);
    let tags: Vec<u32> = port
        .sent
        .iter()
        .map(|f| parse(f).unwrap().header.tag)
        .collect();
    assert_eq!(tags.len(), 2, "{tags:?}");
    assert!(tags.contains(&1) && tags.contains(&9));
    assert!(d.drained());
    assert_eq!(d.target().shared(ExportId(0)).fenced_commands(), 1);
}

/// A driver over an in-place store that merges runs of up to
/// `max_requests`, and a port with 64 send buffers.
fn merging(max_requests: usize) -> (Driver<InPlace>, TestPort) {
    let store = InPlace {
        merging: Some(RunBounds {
            max_requests,
            max_bytes: 64 << 10,
        }),
        ..InPlace::default()
    };
    let port = TestPort {
        free: 64,
        ..TestPort::default()
    };
    (driver(store), port)
}

/// One wake-up's frames.
fn wake_up<S: Store<TestPort>>(d: &mut Driver<S>, port: &mut TestPort, frames: Vec<TestFrame>) {
    d.frames_coming(frames.len());
    for f in frames {
        feed(d, port, f);
    }
}

/// Completes every read started, each slot filled with its request index.
fn finish_reads(d: &mut Driver<InPlace>, port: &mut TestPort) {
    for (req, mut slot) in std::mem::take(&mut d.store_mut().reading) {
        slot[ATA_DATA_OFFSET..].fill(req.0 as u8);
        let data = ReadData::InSlot { slot, ok: true };
        d.on_done(port, Done::Read { req, data });
    }
}

/// Tags and statuses of the ATA replies sent so far.
fn answers(port: &TestPort) -> Vec<(u32, u8)> {
    let replies = port.sent.iter().filter_map(|f| ata_reply(f));
    replies.map(|(tag, status, _)| (tag, status)).collect()
}

#[test]
fn adjacent_reads_of_a_wake_up_are_one_operation_and_each_is_answered() {
    let (mut d, mut port) = merging(32);
    let frames = [(1, 0, 2), (2, 2, 2), (3, 4, 2), (4, 6, 1)];
    d.frames_coming(frames.len());
    for (i, &(tag, lba, n)) in frames.iter().enumerate() {
        feed(&mut d, &mut port, ata_frame(tag, false, lba, &[], n));
        let started = d.store().ops.len();
        assert_eq!(
            started,
            usize::from(i == 3),
            "the run starts at the last frame"
        );
    }
    assert_eq!(d.store().ops, [(false, vec![0, 1, 2, 3])]);
    finish_reads(&mut d, &mut port);
    let tags: Vec<u32> = answers(&port).iter().map(|a| a.0).collect();
    assert_eq!(tags, [1, 2, 3, 4], "every request its own reply");
    for (k, f) in port.sent.iter().enumerate() {
        let (_, status, data) = ata_reply(f).unwrap();
        assert_eq!(status, ata::STATUS_OK);
        assert_eq!(data.len(), 512 * frames[k].2 as usize);
        assert!(data.iter().all(|&b| b == k as u8), "its own buffer");
    }
    assert_eq!(
        (d.counters().merged_ops, d.counters().merged_requests),
        (1, 4)
    );
    assert!(d.drained());
}

#[test]
fn runs_end_at_a_gap_an_overlap_the_other_direction_an_export_a_bound_and_a_wake_up() {
    let (mut d, mut port) = merging(3);
    let t = d.target_mut();
    let other = ExportConfig {
        shelf: SHELF,
        slot: SLOT + 1,
        read_only: false,
        ifaces: vec![IfaceId(0)],
    };
    let state = ExportState::with_random_serial(8);
    t.add_export(other, SharedExport::new(state, 1 << 20))
        .unwrap();
    let mut to_other = ata_frame(9, false, 5, &[], 1);
    to_other.bytes[21] = SLOT + 1;
    let w = |tag, lba| ata_frame(tag, true, lba, &sector(tag as u8), 1);
    let r = |tag, lba| ata_frame(tag, false, lba, &[], 1);
    let frames = vec![
        r(0, 0),
        r(1, 1),
        ata_frame(2, false, 1, &[], 2), // overlaps 1
        r(3, 5),                        // a gap
        to_other,                       // lba 5 of the other export
        w(5, 6),
        w(6, 7), // writes after reads
        r(7, 8), // a read after writes
        r(8, 9),
        r(10, 10),
        r(11, 11), // the fourth of a run of at most three
    ];
    wake_up(&mut d, &mut port, frames);
    // The next wake-up's adjacent read starts a run of its own.
    wake_up(&mut d, &mut port, vec![r(12, 12)]);
    let ops: Vec<(bool, Vec<u32>)> = d.store().ops.clone();
    let expect: Vec<(bool, Vec<u32>)> = vec![
        (false, vec![0, 1]),
        (false, vec![2]),
        (false, vec![3]),
        (false, vec![4]),
        (true, vec![5, 6]),
        (false, vec![7, 8, 9]),
        (false, vec![10]),
        (false, vec![11]),
    ];
    assert_eq!(ops, expect, "in arrival order, merged only where adjacent");
    assert_eq!(
        (d.counters().merged_ops, d.counters().merged_requests),
        (3, 7)
    );
}

#[test]
fn a_write_run_is_durable_by_itself_only_if_it_is_all_its_export_has_in_the_store() {
    let (mut d, mut port) = merging(32);
    let w = |tag, lba| ata_frame(tag, true, lba, &sector(tag as u8), 1);
    // All the export has in the store: one durable operation, each write
    // answered when it completes, no sync.
    wake_up(&mut d, &mut port, vec![w(1, 0), w(2, 1), w(3, 2)]);
    assert_eq!(d.store().ops, [(true, vec![0, 1, 2])]);
    let durable: Vec<bool> = d.store().written.iter().map(|w| w.2).collect();
    assert_eq!(durable, [true; 3]);
    for req in 0..3 {
        write_done(&mut d, &mut port, req);
    }
    d.transmit(&mut port);
    assert_eq!(answers(&port), [(1, 0x40), (2, 0x40), (3, 0x40)]);
    assert_eq!(d.store().syncs, 0);
    assert_eq!(d.target().counters().durable_writes, 3);

    // A lone write is in the store: the next run shares a sync instead,
    // and none of it is answered before that sync.
    wake_up(&mut d, &mut port, vec![w(4, 10)]);
    wake_up(&mut d, &mut port, vec![w(5, 20), w(6, 21)]);
    let durable: Vec<bool> = d.store().written[3..].iter().map(|w| w.2).collect();
    assert_eq!(durable, [true, false, false]);
    for req in [1, 0] {
        write_done(&mut d, &mut port, req);
        d.transmit(&mut port);
        assert_eq!(port.sent.len(), 3, "no reply before the sync");
    }
    write_done(&mut d, &mut port, 2);
    d.transmit(&mut port);
    assert_eq!(d.store().syncs, 1);
    let tags: Vec<u32> = answers(&port).iter().map(|a| a.0).collect();
    assert_eq!(tags[3..], [4, 5, 6]);
}

#[test]
fn a_flush_and_a_fence_still_wait_for_the_writes_of_a_run_before_them() {
    let (mut d, mut port) = merging(32);
    let w = |tag, lba| ata_frame(tag, true, lba, &sector(tag as u8), 1);
    let mut flush = ata_frame(3, false, 0, &[], 0);
    let arg = AtaArg::no_data(ata::FLUSH_EXT);
    aoe_wire::write_ata_request(&mut flush.bytes, &header(Command::Ata, 3), &arg).unwrap();
    // Two writes and a FLUSH of CLIENT's, FENCER's Reserve, and a third
    // write of CLIENT's (refused: the list now excludes it), in one wake-up.
    let frames = vec![w(1, 0), w(2, 1), flush, reserve_frame(9), w(4, 2)];
    wake_up(&mut d, &mut port, frames);
    assert_eq!(d.store().ops, [(true, vec![0, 1])]);
    assert!(d.poll_persist().is_some());
    d.transmit(&mut port);
    assert_eq!(
        answers(&port),
        [(4, 0x41)],
        "only the refusal before the run lands"
    );
    assert!(d.fences_held());
    // The run is durable by itself: each write is answered when it lands,
    // but the FLUSH and the Reserve reply wait for both.
    let tags = |port: &TestPort| -> Vec<u32> {
        let sent = port.sent.iter().map(|f| parse(f).unwrap().header.tag);
        sent.collect()
    };
    write_done(&mut d, &mut port, 0);
    d.poll_fences(&mut port);
    d.transmit(&mut port);
    assert_eq!(tags(&port), [4, 1]);
    write_done(&mut d, &mut port, 1);
    d.poll_fences(&mut port);
    d.transmit(&mut port);
    let mut last = tags(&port).split_off(2);
    last.sort_unstable();
    assert_eq!(last, [2, 3, 9]);
    assert_eq!(d.store().syncs, 1, "the FLUSH's");
    assert!(d.drained());
}

#[test]
fn a_read_run_without_enough_send_buffers_waits_as_single_reads() {
    let (mut d, mut port) = merging(32);
    port.free = 1;
    let frames = (0..3).map(|i| ata_frame(i, false, u64::from(i), &[], 1));
    wake_up(&mut d, &mut port, frames.collect());
    assert!(d.store().ops.is_empty());
    assert_eq!(d.store().reading.len(), 0);
    d.transmit(&mut port);
    assert_eq!(d.store().reading.len(), 1, "one buffer, one read");
    finish_reads(&mut d, &mut port);
    port.free = 2;
    d.transmit(&mut port);
    finish_reads(&mut d, &mut port);
    let tags: Vec<u32> = answers(&port).iter().map(|a| a.0).collect();
    assert_eq!(tags, [0, 1, 2], "in order");
    assert!(d.drained());
}
