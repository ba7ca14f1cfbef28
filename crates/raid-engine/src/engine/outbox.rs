//! The engine's edge: member I/O handed out and not yet completed, and the queues the
//! caller polls (member I/O, volume completions, events).

use std::collections::VecDeque;

use crate::fastmap::FastMap as HashMap;
use crate::meta::MetaKey;
use crate::types::*;

use super::metadata::LoadKind;
use super::JobId;

/// A member I/O handed out and not yet completed: where it went and what it is for.
#[derive(Debug)]
pub(crate) struct Issued {
    pub(crate) member: MemberIndex,
    pub(crate) op: MemberOp,
    pub(crate) offset: u64,
    pub(crate) sectors: u32,
    pub(crate) what: Inflight,
}

/// What a member I/O's completion goes to.
#[derive(Debug)]
pub(crate) enum Inflight {
    /// Slot `.1` of a job.
    Job(JobId, usize),
    /// A metadata round's write.
    Meta(MetaKey),
    /// Formatting (None) or the initial load.
    Init(Option<LoadKind>),
    /// A member flush of a volume flush.
    Flush(RequestId),
    /// Reading a returning member's superblock.
    Probe(MemberIndex),
    /// Reading a returning member's checksum area, from `sector` on (rejoin.rs).
    CsumLoad { serial: u64, sector: u64 },
}

#[derive(Debug)]
pub(crate) struct Outbox {
    next_id: MemberIoId,
    pub(crate) inflight: HashMap<MemberIoId, Issued>,
    pub(crate) out: VecDeque<MemberIo>,
    pub(crate) done: VecDeque<VolumeCompletion>,
    pub(crate) events: VecDeque<Event>,
    /// Members just failed: their I/O in flight is failed at the next pump.
    pub(crate) to_cancel: Vec<MemberIndex>,
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox {
            next_id: 1,
            inflight: HashMap::default(),
            out: VecDeque::new(),
            done: VecDeque::new(),
            events: VecDeque::new(),
            to_cancel: Vec::new(),
        }
    }
}

impl Outbox {
    /// Hand out a member I/O.
    pub(crate) fn issue(&mut self, io: Issued, data: Vec<u8>) {
        let id = self.next_id;
        self.next_id += 1;
        debug_assert!(
            io.op != MemberOp::Write || data.len() == io.sectors as usize * SECTOR,
            "write of {} sectors with {} bytes",
            io.sectors,
            data.len()
        );
        self.out.push_back(MemberIo {
            id,
            member: io.member,
            op: io.op,
            offset: io.offset,
            sectors: io.sectors,
            data,
        });
        self.inflight.insert(id, io);
    }

    /// Remove (and return) every I/O in flight that `pick` selects.
    pub(crate) fn take(&mut self, pick: impl Fn(&Issued) -> bool) -> Vec<Issued> {
        let ids: Vec<MemberIoId> = self
            .inflight
            .iter()
            .filter(|(_, io)| pick(io))
            .map(|(k, _)| *k)
            .collect();
        ids.iter()
            .filter_map(|id| self.inflight.remove(id))
            .collect()
    }

    /// Is a write in flight to member `m` over any of the absolute sectors
    /// [offset, offset+sectors)?
    pub(crate) fn writing(&self, m: MemberIndex, offset: u64, sectors: u64) -> bool {
        self.inflight.values().any(|io| {
            io.member == m
                && io.op == MemberOp::Write
                && io.offset < offset + sectors
                && offset < io.offset + io.sectors as u64
        })
    }
}
