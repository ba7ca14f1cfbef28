//! The driver without a ring: a port with a settable number of free send
//! buffers, the RAID volume store and a store that writes frames in place.

use super::*;
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
/// itself, reads need a send buffer up front.
#[derive(Default)]
struct InPlace {
    /// Frames taken by writes: (frame id, byte range written from it,
    /// durable by itself).
    written: Vec<(u32, std::ops::Range<usize>, bool)>,
    /// Syncs asked for.
    syncs: usize,
    /// Reads started, with the buffer they read into.
    reading: Vec<(ReqId, Vec<u8>)>,
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

#[test]
fn a_fence_reply_waits_for_the_victims_volume_write() {
    use aoe_wire::{MacList, RCmd, Reserve};
    const FENCER: Mac = Mac([2, 0, 0, 0, 0, 0xf]);
    let mut d = driver(Volumes::new(vec![0]));
    let mut port = TestPort {
        free: 8,
        ..TestPort::default()
    };
    // CLIENT's write is in the RAID volume when FENCER reserves for itself.
    feed(&mut d, &mut port, ata_frame(1, true, 8, &sector(0x11), 1));
    let in_flight = requests(&mut d);
    assert_eq!(in_flight.len(), 1);
    let mut bytes = vec![0u8; 128];
    let reserve = Reserve {
        rcmd: RCmd::Set,
        macs: MacList::from_slice(&[FENCER]),
    };
    let hdr = Header::request(IF_MAC, FENCER, SHELF, SLOT, Command::ReserveRelease, 9);
    let n = reserve.emit(&hdr, &mut bytes).unwrap();
    bytes.truncate(n);
    feed(&mut d, &mut port, TestFrame { id: 9, bytes });
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
