//! A virtual AoE client on the front segment, like the Linux `aoe` driver: it finds
//! the export with a broadcast Query Config, learns its size with IDENTIFY, keeps a
//! few ATA commands in flight (one frame each: READ EXT, WRITE EXT, FLUSH CACHE
//! EXT) and retransmits each with an exponential timeout until it is answered. It
//! counts the copies of each request that may still reach each appliance, which is
//! what the reference model needs to know when a write can no longer land.
//!
//! Like the driver (`aoecmd.c`, docs/ha.md "Takeover and clients") it keeps every
//! MAC that answered for its shelf.slot as a target: a config response from a new
//! MAC (the standby's announcement after a takeover) adds one; new commands go
//! round robin over the least tainted targets; a command unanswered on its target
//! for [`SCORN_NS`] scorns that target (taint ×3) and moves every command waiting
//! there to another; each answer lowers its sender's taint by one.

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
    /// Intact copies on the wire towards an appliance.
    on_wire: u32,
    /// Copies each appliance of the pair took in and has not answered yet.
    in_appliance: [u32; 2],
    /// The target it is sent to (index in [`Client::targets`]) and since when.
    to: Option<(usize, u64)>,
}

impl std::fmt::Debug for ClientOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?} {}+{} sends={} answered={} failed={} on_wire={} in_appliance={:?} to={:?}",
            self.kind,
            self.lba,
            self.sectors,
            self.sends,
            self.answered,
            self.failed,
            self.on_wire,
            self.in_appliance,
            self.to
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
            in_appliance: [0; 2],
            to: None,
        }
    }

    /// No copy of it can reach the store any more.
    pub(crate) fn gone(&self) -> bool {
        self.answered && self.on_wire == 0 && self.in_appliance == [0; 2]
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
/// The driver's `HARD_SCORN_SECS`: a command waiting this long on one target
/// moves to another.
pub(crate) const SCORN_NS: u64 = 10_000_000_000;
/// The driver's cap on a target's taint.
const TAINT_MAX: u32 = 1000;

/// An appliance MAC that answered for the client's shelf.slot.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Target {
    pub(crate) mac: Mac,
    taint: u32,
}

pub(crate) struct Client {
    pub(crate) mac: Mac,
    shelf: u16,
    slot: u8,
    /// The MACs that answered for the export, in the order they were learnt.
    pub(crate) targets: Vec<Target>,
    /// Round-robin position for new commands.
    next_target: usize,
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
            targets: Vec::new(),
            next_target: 0,
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
        !self.targets.is_empty() && self.sectors > 0 && !self.reidentify
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
        if self.targets.is_empty() {
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
        self.scorn_stuck(now);
        let due: Vec<u32> = self
            .ops
            .iter()
            .filter(|(_, o)| !o.answered && (o.sends == 0 || now >= o.sent_at + o.rto))
            .map(|(t, _)| *t)
            .collect();
        for tag in due {
            let fresh = self.ops[&tag].to.is_none();
            let pick = fresh.then(|| self.pick(None));
            let op = self.ops.get_mut(&tag).expect("listed");
            if let Some(t) = pick {
                op.to = Some((t, now));
            }
            let target = op.to.map_or(Mac::BROADCAST, |(t, _)| self.targets[t].mac);
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

    /// A target some command has waited on for [`SCORN_NS`] is scorned: its taint
    /// grows and every command waiting on it moves to the least tainted other
    /// target (`rexmit_deferred` → `reassign_frame`).
    fn scorn_stuck(&mut self, now: u64) {
        if self.targets.len() < 2 {
            return;
        }
        let stuck = self
            .ops
            .values()
            .filter(|o| !o.answered)
            .find_map(|o| o.to.filter(|&(_, since)| now >= since + SCORN_NS))
            .map(|(t, _)| t);
        let Some(t) = stuck else {
            return;
        };
        let taint = &mut self.targets[t].taint;
        *taint = (*taint * 3).clamp(1, TAINT_MAX);
        let to = self.pick(Some(t));
        for o in self.ops.values_mut() {
            if !o.answered && o.to.is_some_and(|(x, _)| x == t) {
                o.to = Some((to, now));
            }
        }
    }

    /// The next target for a command: round robin over the least tainted,
    /// `other_than` excluded when there is another.
    fn pick(&mut self, other_than: Option<usize>) -> usize {
        let n = self.targets.len();
        let eligible = |i: usize| n == 1 || Some(i) != other_than;
        let least = (0..n)
            .filter(|&i| eligible(i))
            .map(|i| self.targets[i].taint)
            .min()
            .unwrap_or(0);
        for k in 0..n {
            let i = (self.next_target + k) % n;
            if eligible(i) && self.targets[i].taint == least {
                self.next_target = i + 1;
                return i;
            }
        }
        0
    }

    /// The earliest retransmit or probe.
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        if self.targets.is_empty() {
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

    /// A copy of `tag` reached appliance `who`.
    pub(crate) fn arrived(&mut self, tag: u32, who: usize) {
        self.changed = true;
        if let Some(o) = self.ops.get_mut(&tag) {
            o.on_wire = o.on_wire.saturating_sub(1);
            o.in_appliance[who] += 1;
        }
    }

    /// A copy of `tag` on its way to the appliance was lost (the appliance went down).
    pub(crate) fn lost(&mut self, tag: u32) {
        self.changed = true;
        if let Some(o) = self.ops.get_mut(&tag) {
            o.on_wire = o.on_wire.saturating_sub(1);
        }
    }

    /// Appliance `who` answered (or dropped) a copy of `tag` (seen as it leaves).
    pub(crate) fn answered_copy(&mut self, tag: u32, who: usize) {
        self.changed = true;
        if let Some(o) = self.ops.get_mut(&tag) {
            o.in_appliance[who] = o.in_appliance[who].saturating_sub(1);
        }
    }

    /// Appliance `who` crashed or stopped serving: nothing it held will be
    /// answered or carried out.
    pub(crate) fn appliance_lost(&mut self, who: usize) {
        self.changed = true;
        for o in self.ops.values_mut() {
            o.in_appliance[who] = 0;
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
                if h.tag == 0 && !self.targets.is_empty() {
                    // An announcement (size change, restart): IDENTIFY again.
                    self.reidentify = true;
                }
                if !self.targets.iter().any(|t| t.mac == h.src) {
                    self.targets.push(Target {
                        mac: h.src,
                        taint: 0,
                    });
                }
                self.max_sectors = aoe_wire::effective_sector_count(qc.sector_count);
                None
            }
            Message::Ata(a) => {
                let op = self.ops.get_mut(&h.tag)?;
                if op.answered || h.error.is_some() {
                    return None;
                }
                if let Some(t) = self.targets.iter_mut().find(|t| t.mac == h.src) {
                    t.taint = t.taint.saturating_sub(1);
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
