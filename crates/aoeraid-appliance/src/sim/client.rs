//! A virtual AoE client on the front segment, like the Linux `aoe` driver: it finds
//! the export with a broadcast Query Config, learns its size with IDENTIFY, keeps a
//! few ATA commands in flight (one frame each: READ EXT, WRITE EXT, FLUSH CACHE
//! EXT) and retransmits each with an exponential timeout until it is answered. It
//! counts the copies of each request that may still reach the appliance, which is
//! what the reference model needs to know when a write can no longer land.

use aoe_wire::{
    ata, finish_frame, parse, write_ata_request, AtaArg, CCmd, Command, Header, Identify, Mac,
    Message, QueryConfig, ATA_DATA_OFFSET, SECTOR_SIZE,
};
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Read,
    Write,
    Flush,
    Identify,
}

/// One command of a client, from first send to the last copy gone.
pub(crate) struct ClientOp {
    pub(crate) kind: Kind,
    pub(crate) lba: u64,
    pub(crate) sectors: u64,
    /// Write payload.
    pub(crate) data: Vec<u8>,
    /// The model's id of this op.
    pub(crate) id: u64,
    pub(crate) issued_at: u64,
    /// Errors were acceptable when it was issued (beyond redundancy).
    pub(crate) errors_ok: bool,
    sent_at: u64,
    rto: u64,
    pub(crate) sends: u32,
    /// Answered (its reply reached the client).
    pub(crate) answered: bool,
    /// Answered with an error.
    pub(crate) failed: bool,
    /// Intact copies on the wire towards the appliance.
    on_wire: u32,
    /// Copies the appliance took in and has not answered yet.
    in_appliance: u32,
}

impl std::fmt::Debug for ClientOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?} {}+{} sends={} answered={} failed={} on_wire={} in_appliance={}",
            self.kind,
            self.lba,
            self.sectors,
            self.sends,
            self.answered,
            self.failed,
            self.on_wire,
            self.in_appliance
        )
    }
}

impl ClientOp {
    pub(crate) fn new(
        kind: Kind,
        lba: u64,
        sectors: u64,
        data: Vec<u8>,
        id: u64,
        now: u64,
    ) -> ClientOp {
        ClientOp {
            kind,
            lba,
            sectors,
            data,
            id,
            issued_at: now,
            errors_ok: false,
            sent_at: 0,
            rto: RTO_INITIAL_NS,
            sends: 0,
            answered: false,
            failed: false,
            on_wire: 0,
            in_appliance: 0,
        }
    }

    /// No copy of it can reach the store any more.
    pub(crate) fn gone(&self) -> bool {
        self.answered && self.on_wire == 0 && self.in_appliance == 0
    }
}

/// An answer to one of the client's commands.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) tag: u32,
    /// ATA status OK; for reads, the data.
    pub(crate) ok: bool,
    pub(crate) data: Vec<u8>,
}

const RTO_INITIAL_NS: u64 = 40_000_000;
const RTO_MAX_NS: u64 = 1_000_000_000;
const PROBE_NS: u64 = 50_000_000;

pub(crate) struct Client {
    pub(crate) mac: Mac,
    shelf: u16,
    slot: u8,
    /// The export's MAC, once it answered Query Config.
    pub(crate) target: Option<Mac>,
    /// Sectors per frame the export advertised.
    pub(crate) max_sectors: u8,
    /// The export's size from IDENTIFY (0 until known).
    pub(crate) sectors: u64,
    /// An announcement arrived: IDENTIFY again.
    pub(crate) reidentify: bool,
    next_tag: u32,
    pub(crate) ops: BTreeMap<u32, ClientOp>,
    next_probe: u64,
    pub(crate) retransmits: u64,
    /// A command may have become gone since the last look.
    pub(crate) changed: bool,
}

impl Client {
    pub(crate) fn new(index: usize, shelf: u16, slot: u8) -> Client {
        Client {
            mac: Mac([0x02, 0xCC, 0, 0, 0, index as u8]),
            shelf,
            slot,
            target: None,
            max_sectors: 0,
            sectors: 0,
            reidentify: false,
            next_tag: 1,
            ops: BTreeMap::new(),
            next_probe: 0,
            retransmits: 0,
            changed: false,
        }
    }

    /// Commands in flight (answered ones that still have copies out do not count).
    pub(crate) fn busy(&self) -> usize {
        self.ops.values().filter(|o| !o.answered).count()
    }

    /// Ready to issue block I/O.
    pub(crate) fn ready(&self) -> bool {
        self.target.is_some() && self.sectors > 0 && !self.reidentify
    }

    pub(crate) fn add(&mut self, op: ClientOp) -> u32 {
        let tag = self.next_tag;
        self.next_tag = self.next_tag.wrapping_add(1).max(1);
        self.ops.insert(tag, op);
        tag
    }

    /// Frames to send at `now`: discovery, IDENTIFY, new commands and retransmits.
    pub(crate) fn due(&mut self, now: u64) -> Vec<(Option<u32>, Vec<u8>)> {
        let mut out = Vec::new();
        if self.target.is_none() {
            if now >= self.next_probe {
                self.next_probe = now + PROBE_NS;
                out.push((None, self.query_frame()));
            }
            return out;
        }
        if (self.sectors == 0 || self.reidentify)
            && now >= self.next_probe
            && !self
                .ops
                .values()
                .any(|o| o.kind == Kind::Identify && !o.answered)
        {
            self.next_probe = now + PROBE_NS;
            self.add(ClientOp::new(Kind::Identify, 0, 0, Vec::new(), 0, now));
        }
        let target = self.target.unwrap_or(Mac::BROADCAST);
        let due: Vec<u32> = self
            .ops
            .iter()
            .filter(|(_, o)| !o.answered && (o.sends == 0 || now >= o.sent_at + o.rto))
            .map(|(t, _)| *t)
            .collect();
        for tag in due {
            let op = self.ops.get_mut(&tag).expect("listed");
            if op.sends > 0 {
                op.rto = (op.rto * 2).min(RTO_MAX_NS);
                self.retransmits += 1;
            }
            op.sends += 1;
            op.sent_at = now;
            let f = frame(self.mac, target, self.shelf, self.slot, tag, op);
            out.push((Some(tag), f));
        }
        out
    }

    /// The earliest retransmit or probe.
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        if self.target.is_none() {
            return Some(self.next_probe);
        }
        self.ops
            .values()
            .filter(|o| !o.answered && o.sends > 0)
            .map(|o| o.sent_at + o.rto)
            .min()
    }

    fn query_frame(&self) -> Vec<u8> {
        let h = Header::request(
            Mac::BROADCAST,
            self.mac,
            self.shelf,
            self.slot,
            Command::QueryConfig,
            0,
        );
        let mut buf = vec![0u8; 128];
        let n = QueryConfig::request(CCmd::Read, &[])
            .emit(&h, &mut buf)
            .expect("fits");
        buf.truncate(n);
        buf
    }

    /// `intact` copies of the request tagged `tag` are on their way.
    pub(crate) fn sent(&mut self, tag: u32, intact: u8) {
        self.changed = true;
        if let Some(o) = self.ops.get_mut(&tag) {
            o.on_wire += u32::from(intact);
        }
    }

    /// A copy of `tag` reached the appliance.
    pub(crate) fn arrived(&mut self, tag: u32) {
        self.changed = true;
        if let Some(o) = self.ops.get_mut(&tag) {
            o.on_wire = o.on_wire.saturating_sub(1);
            o.in_appliance += 1;
        }
    }

    /// A copy of `tag` on its way to the appliance was lost (the appliance went down).
    pub(crate) fn lost(&mut self, tag: u32) {
        self.changed = true;
        if let Some(o) = self.ops.get_mut(&tag) {
            o.on_wire = o.on_wire.saturating_sub(1);
        }
    }

    /// The appliance answered a copy of `tag` (seen as it leaves the appliance).
    pub(crate) fn answered_copy(&mut self, tag: u32) {
        self.changed = true;
        if let Some(o) = self.ops.get_mut(&tag) {
            o.in_appliance = o.in_appliance.saturating_sub(1);
        }
    }

    /// The appliance crashed: nothing it held will be answered or carried out.
    pub(crate) fn appliance_lost(&mut self) {
        self.changed = true;
        for o in self.ops.values_mut() {
            o.in_appliance = 0;
        }
    }

    /// A frame for this client arrived. Returns the answer to a block command.
    pub(crate) fn receive(&mut self, f: &[u8]) -> Option<Answer> {
        self.changed = true;
        let pkt = parse(f).ok()?;
        let h = pkt.header;
        if !h.response || h.shelf != self.shelf || h.slot != self.slot {
            return None;
        }
        match pkt.message {
            Message::QueryConfig(qc) => {
                if h.tag == 0 && self.target.is_some() {
                    // An announcement (size change, restart): IDENTIFY again.
                    self.reidentify = true;
                }
                self.target = Some(h.src);
                self.max_sectors = aoe_wire::effective_sector_count(qc.sector_count);
                None
            }
            Message::Ata(a) => {
                let op = self.ops.get_mut(&h.tag)?;
                if op.answered || h.error.is_some() {
                    return None;
                }
                op.answered = true;
                let ok = !ata::is_failed_status(a.arg.cmd_status);
                let mut data = Vec::new();
                match op.kind {
                    Kind::Read if ok => {
                        let n = op.sectors as usize * SECTOR_SIZE;
                        if a.data.len() < n {
                            return Some(Answer {
                                tag: h.tag,
                                ok: false,
                                data,
                            });
                        }
                        data = a.data[..n].to_vec();
                    }
                    Kind::Identify => {
                        if let Ok(id) = Identify::parse(a.data) {
                            self.sectors = id.sectors;
                            self.reidentify = false;
                        }
                    }
                    _ => {}
                }
                Some(Answer {
                    tag: h.tag,
                    ok,
                    data,
                })
            }
            _ => None,
        }
    }
}

/// The request frame of `op`.
fn frame(src: Mac, dst: Mac, shelf: u16, slot: u8, tag: u32, op: &ClientOp) -> Vec<u8> {
    let h = Header::request(dst, src, shelf, slot, Command::Ata, tag);
    let arg = match op.kind {
        Kind::Read | Kind::Write => {
            AtaArg::read_write(op.kind == Kind::Write, op.lba, op.sectors as u8, true)
                .expect("LBA48 range")
        }
        Kind::Flush => AtaArg::no_data(ata::FLUSH_EXT),
        Kind::Identify => AtaArg::identify(),
    };
    let len = op.data.len();
    let mut buf = vec![0u8; (ATA_DATA_OFFSET + len).max(aoe_wire::MIN_FRAME)];
    let off = write_ata_request(&mut buf, &h, &arg).expect("fits");
    buf[off..off + len].copy_from_slice(&op.data);
    let n = finish_frame(&mut buf, off + len).expect("fits");
    buf.truncate(n);
    buf
}

/// The (client MAC, tag) of a request frame a client sent.
pub(crate) fn request_id(f: &[u8]) -> Option<(Mac, u32)> {
    let h = Header::parse(f).ok()?;
    (!h.response && h.command == Command::Ata).then_some((h.src, h.tag))
}

/// The (client MAC, tag) an ATA reply of the appliance answers.
pub(crate) fn reply_id(f: &[u8]) -> Option<(Mac, u32)> {
    let h = Header::parse(f).ok()?;
    (h.response && h.command == Command::Ata).then_some((h.dst, h.tag))
}
