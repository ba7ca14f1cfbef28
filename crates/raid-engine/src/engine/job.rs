//! Per-unit jobs: the state each in-flight operation keeps between member completions.

use super::status::SyncKind;
use crate::meta::MetaKey;
use crate::stripe_cache::StripeBuffer;
use crate::types::{MemberIndex, MemberOp, RequestId};

/// Why a member read did not produce usable data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fail {
    Io,
    Checksum,
    Gone,
}

/// One member I/O of a job. `data` is the payload of a write or the result of a read
/// (kept even on a checksum failure, for resync of torn regions).
#[derive(Debug)]
pub(crate) struct Slot {
    pub member: MemberIndex,
    pub op: MemberOp,
    /// Member-data-relative sector (data_offset is added at issue).
    pub off: u64,
    pub sectors: u32,
    pub data: Vec<u8>,
    pub res: Option<Result<(), Fail>>,
    pub issued: bool,
    pub tag: usize,
    /// `off` is a member offset outside the data area (a log entry): no data offset
    /// added, no checksum kept.
    pub raw: bool,
}

impl Slot {
    pub(crate) fn read(member: MemberIndex, off: u64, sectors: u64, tag: usize) -> Slot {
        Slot {
            member,
            op: MemberOp::Read,
            off,
            sectors: sectors as u32,
            data: Vec::new(),
            res: None,
            issued: false,
            tag,
            raw: false,
        }
    }
    pub(crate) fn write(member: MemberIndex, off: u64, data: Vec<u8>, tag: usize) -> Slot {
        let sectors = (data.len() / crate::types::SECTOR) as u32;
        Slot {
            member,
            op: MemberOp::Write,
            off,
            sectors,
            data,
            res: None,
            issued: false,
            tag,
            raw: false,
        }
    }
    pub(crate) fn ok(&self) -> bool {
        matches!(self.res, Some(Ok(())))
    }
    pub(crate) fn fail(&self) -> Option<Fail> {
        match self.res {
            Some(Err(f)) => Some(f),
            _ => None,
        }
    }
}

/// The part of a volume request that falls in one unit.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Piece {
    pub req: RequestId,
    /// Offset inside the unit, sectors.
    pub off: u64,
    pub sectors: u64,
    /// Byte offset inside the request's buffer.
    pub buf_off: usize,
}

#[derive(Debug)]
pub(crate) enum MirrorReadPhase {
    Pick,
    Reading,
    Rewrite,
    Done,
}

/// Read from one copy (RAID 0/1/10); on failure the next copy, then heal the failed ones.
#[derive(Debug)]
pub(crate) struct MirrorRead {
    pub piece: Piece,
    pub lo: u64,
    pub hi: u64,
    pub phase: MirrorReadPhase,
    pub tried: Vec<MemberIndex>,
    pub bad: Vec<(MemberIndex, Fail)>,
    pub good: Option<Vec<u8>>,
    pub raw: Option<Vec<u8>>,
    pub error: bool,
}

#[derive(Debug)]
pub(crate) enum MirrorWritePhase {
    Intent,
    EdgeRead,
    Write,
    Written,
    Done,
}

/// Write every copy (RAID 0/1/10), after reading the 4 KiB edges when integrity is on.
#[derive(Debug)]
pub(crate) struct MirrorWrite {
    pub piece: Piece,
    pub data: Vec<u8>,
    pub lo: u64,
    pub hi: u64,
    pub phase: MirrorWritePhase,
    pub tried: Vec<MemberIndex>,
    pub merged: Vec<u8>,
    pub error: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ParityReadPhase {
    Read,
    Collect,
    Rebuilt,
    Healed,
    Done,
}

/// RAID 5/6 read: data columns directly, missing columns rebuilt from the others.
#[derive(Debug)]
pub(crate) struct ParityRead {
    pub piece: Piece,
    pub phase: ParityReadPhase,
    /// (column, aligned row-relative range) touched.
    pub cols: Vec<(usize, u64, u64)>,
    pub col_data: Vec<Option<Vec<u8>>>,
    /// The columns (indices into `cols`) rebuilt from the others, and why each failed.
    pub failed: Vec<(usize, Fail)>,
    /// Row-relative sectors read from the other columns to rebuild the failed ones.
    pub span: (u64, u64),
    /// Bytes of columns that failed their checksum, by column index: a torn block in
    /// a not-yet-resynced region is served as it lies when nothing better is proven.
    pub raw: Vec<(usize, Vec<u8>)>,
    /// Not-yet-resynced region: the parity is not trusted, so a rebuilt column is
    /// served only if it matches the stored checksums of every block.
    pub verify: bool,
    /// Parity trusted (the log replayed) in a not-yet-resynced region: if the rebuild
    /// fails, torn blocks are still served as they lie.
    pub raw_ok: bool,
    pub error: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StripeMode {
    /// Every column covered: parity from new data, no reads.
    Full,
    /// Read the columns not fully covered, parity over all.
    Rcw,
    /// Read old data of touched columns and old parity (P, and Q on RAID 6).
    Rmw,
    /// Read every other member, rebuild the unreadable columns, parity over all.
    Reconstruct,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StripePhase {
    Gather,
    Intent,
    Plan,
    Reading,
    /// The partial-parity log entry is being written (data and parity wait in
    /// `log.deferred`).
    Log,
    Logged,
    Write,
    Writing,
    Done,
}

/// RAID 5/6 write of one stripe, gathering consecutive writes before it starts.
#[derive(Debug)]
pub(crate) struct StripeWrite {
    pub buf: StripeBuffer,
    pub pieces: Vec<Piece>,
    pub first_ns: u64,
    /// Stop gathering: someone waits for this stripe.
    pub force: bool,
    pub phase: StripePhase,
    pub unreadable: Vec<MemberIndex>,
    /// Members whose read failed with a media/checksum error: rewrite them.
    pub heal: Vec<(MemberIndex, Fail)>,
    pub lo: u64,
    pub hi: u64,
    pub mode: StripeMode,
    pub error: bool,
    pub log: super::ppl::StripeLog,
}

/// What one sync run does (its public face is `SyncKind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SyncOp {
    /// After an unclean shutdown or creation: make copies / parity agree.
    Resync,
    /// Rebuild one member (full, or only the bitmap's dirty regions).
    Recover {
        member: MemberIndex,
        bitmap_only: bool,
    },
    Check,
    Repair,
    /// Checksum the blocks never written since creation (seal.rs).
    Seal,
}

impl SyncOp {
    /// The member a rebuild writes.
    pub(crate) fn target(self) -> Option<MemberIndex> {
        match self {
            SyncOp::Recover { member, .. } => Some(member),
            _ => None,
        }
    }

    pub(crate) fn kind(self) -> SyncKind {
        match self {
            SyncOp::Resync => SyncKind::Resync,
            SyncOp::Recover { .. } => SyncKind::Rebuild,
            SyncOp::Check => SyncKind::Check,
            SyncOp::Repair => SyncKind::Repair,
            SyncOp::Seal => SyncKind::Seal,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SyncPhase {
    Read,
    Write,
    Done,
}

#[derive(Debug)]
pub(crate) struct SyncUnit {
    pub kind: SyncOp,
    pub phase: SyncPhase,
    pub abort: bool,
    pub mismatches: u64,
}

#[derive(Debug)]
pub(crate) enum Work {
    MirrorRead(MirrorRead),
    MirrorWrite(MirrorWrite),
    ParityRead(ParityRead),
    Stripe(StripeWrite),
    Sync(SyncUnit),
    Replay(super::ppl::Replay),
}

#[derive(Debug)]
pub(crate) struct Job {
    pub unit: u64,
    pub exclusive: bool,
    pub started: bool,
    pub work: Work,
    pub slots: Vec<Slot>,
    pub pending: usize,
    pub wait: Vec<(MetaKey, u64)>,
    /// Bitmap region whose in-flight count this job holds.
    pub region: Option<u64>,
    /// Waits for a free log slot (`Engine::ppl_park`), not for I/O or metadata.
    pub parked: bool,
}

impl Job {
    pub(crate) fn new(unit: u64, exclusive: bool, work: Work) -> Job {
        Job {
            unit,
            exclusive,
            started: false,
            work,
            slots: Vec::new(),
            pending: 0,
            wait: Vec::new(),
            region: None,
            parked: false,
        }
    }
}
