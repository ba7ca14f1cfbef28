//! The values that cross the engine boundary: volume requests in, member I/O out,
//! member completions in, volume completions and events out.

/// Bytes per sector everywhere in the engine (volume and members).
pub const SECTOR: usize = 512;

/// Caller-chosen id of a volume request, echoed in its completion.
pub type RequestId = u64;
/// Engine-chosen id of a member I/O, to be echoed in `complete_member_io`.
pub type MemberIoId = u64;
/// Index of a member inside one array (stable for the array's lifetime).
pub type MemberIndex = usize;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VolumeOp {
    Read,
    Write,
    Flush,
}

/// A request against the volume. `offset` and `sectors` are in 512-byte sectors;
/// `data` holds `sectors * 512` bytes for writes and is empty otherwise.
#[derive(Clone, Debug)]
pub struct VolumeRequest {
    pub id: RequestId,
    pub op: VolumeOp,
    pub offset: u64,
    pub sectors: u32,
    pub data: Vec<u8>,
}

impl VolumeRequest {
    /// A read of `sectors` sectors at `offset`.
    pub fn read(id: RequestId, offset: u64, sectors: u32) -> VolumeRequest {
        VolumeRequest {
            id,
            op: VolumeOp::Read,
            offset,
            sectors,
            data: Vec::new(),
        }
    }

    /// A write of `data` at `offset`, as many sectors as it holds whole (a length
    /// that is not whole sectors is refused at submission).
    pub fn write(id: RequestId, offset: u64, data: Vec<u8>) -> VolumeRequest {
        VolumeRequest {
            id,
            op: VolumeOp::Write,
            offset,
            sectors: (data.len() / SECTOR) as u32,
            data,
        }
    }

    /// A flush of the writes completed before it.
    pub fn flush(id: RequestId) -> VolumeRequest {
        VolumeRequest {
            op: VolumeOp::Flush,
            ..VolumeRequest::read(id, 0, 0)
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VolumeError {
    /// Offset/length outside the volume or data length wrong.
    InvalidRequest,
    /// The data cannot be produced or stored: the failure exceeds the redundancy.
    Io,
    /// The array has failed (too many members lost); nothing is served.
    ArrayFailed,
}

impl std::fmt::Display for VolumeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            VolumeError::InvalidRequest => "invalid request",
            VolumeError::Io => "I/O error beyond redundancy",
            VolumeError::ArrayFailed => "array failed",
        })
    }
}

impl std::error::Error for VolumeError {}

/// Completion of a volume request. Reads carry the data; writes and flushes an empty vec.
#[derive(Clone, Debug)]
pub struct VolumeCompletion {
    pub id: RequestId,
    pub result: Result<Vec<u8>, VolumeError>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberOp {
    Read,
    Write,
    Flush,
}

/// An I/O the engine wants done on one member. `offset` is the absolute member sector
/// (metadata areas included); writes carry `sectors * 512` bytes.
#[derive(Clone, Debug)]
pub struct MemberIo {
    pub id: MemberIoId,
    pub member: MemberIndex,
    pub op: MemberOp,
    pub offset: u64,
    pub sectors: u32,
    pub data: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberError {
    /// The member answered with an error for this range (media error).
    Io,
    /// The member is unreachable (blade dead, link down, device gone).
    Gone,
}

/// Member states as reported in `status()`. `as_str` is the name the appliance's status
/// schema (feature `serde`) and metrics labels use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "lowercase")
)]
pub enum MemberState {
    Active,
    Rebuilding,
    Spare,
    Faulty,
    Missing,
}

impl MemberState {
    pub const ALL: [MemberState; 5] = [
        MemberState::Active,
        MemberState::Rebuilding,
        MemberState::Spare,
        MemberState::Faulty,
        MemberState::Missing,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MemberState::Active => "active",
            MemberState::Rebuilding => "rebuilding",
            MemberState::Spare => "spare",
            MemberState::Faulty => "faulty",
            MemberState::Missing => "missing",
        }
    }
}

/// Array states as reported in `status()`, named by `as_str` as for [`MemberState`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "lowercase")
)]
pub enum ArrayState {
    Clean,
    Degraded,
    Rebuilding,
    Resyncing,
    Failed,
}

impl ArrayState {
    pub const ALL: [ArrayState; 5] = [
        ArrayState::Clean,
        ArrayState::Degraded,
        ArrayState::Rebuilding,
        ArrayState::Resyncing,
        ArrayState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ArrayState::Clean => "clean",
            ArrayState::Degraded => "degraded",
            ArrayState::Rebuilding => "rebuilding",
            ArrayState::Resyncing => "resyncing",
            ArrayState::Failed => "failed",
        }
    }
}

/// Everything the appliance may want to publish (mdadm --monitor's vocabulary plus ours).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    MemberStateChanged {
        member: MemberIndex,
        from: MemberState,
        to: MemberState,
    },
    /// A member was failed (write error, gone, or by the operator).
    Fail {
        member: MemberIndex,
    },
    DegradedArray,
    /// Too many members lost: the array no longer serves I/O.
    ArrayFailed,
    SpareActive {
        member: MemberIndex,
    },
    /// Emitted by a spare group when a spare moved from one array to another.
    MoveSpare {
        from_array: String,
        to_array: String,
    },
    /// No spare available anywhere for a degraded array.
    SparesMissing,
    RebuildStarted {
        member: MemberIndex,
        bitmap_only: bool,
    },
    /// Progress in 20 % steps, like mdadm's RebuildNN.
    RebuildProgress {
        member: MemberIndex,
        percent: u8,
    },
    RebuildFinished {
        member: MemberIndex,
    },
    /// Rebuild stopped because a source range could not be read (beyond redundancy).
    RebuildAborted {
        member: MemberIndex,
    },
    ResyncStarted,
    ResyncFinished,
    /// A seal pass started / finished: checksums for blocks never written since
    /// creation (until then their reads are not verified).
    SealStarted,
    SealFinished,
    ScrubStarted {
        repair: bool,
    },
    ScrubFinished {
        repair: bool,
        mismatch_sectors: u64,
    },
    /// A member read error was served from redundancy and the range rewritten.
    CorrectedReadError {
        member: MemberIndex,
        offset: u64,
        sectors: u32,
    },
    /// A checksum mismatch was healed from redundancy and rewritten.
    ChecksumRepaired {
        member: MemberIndex,
        offset: u64,
        sectors: u32,
    },
    /// A returning member was not taken in (foreign or unreadable superblock).
    MemberRefused {
        member: MemberIndex,
        reason: String,
    },
    /// Replaying the partial-parity log after a crash with a data member lost: the lost
    /// member's share of an interrupted (never acknowledged) stripe write that changed
    /// it together with other columns comes back neither reliably old nor new (volume
    /// sectors of this array).
    InterruptedWriteLost {
        offset: u64,
        sectors: u64,
    },
    /// A member came back and was taken in again: resyncing only the bitmap's dirty
    /// regions (`whole` None) or rebuilt whole, for the reason given.
    ReAdded {
        member: MemberIndex,
        whole: Option<WholeRebuild>,
    },
}

/// Why a returning member is rebuilt whole instead of from the bitmap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WholeRebuild {
    /// It left in the middle of a rebuild: only its checkpoint is known good.
    WasRebuilding,
    /// Its superblock predates the bitmap's last clear: the bitmap no longer records
    /// everything it missed.
    Stale,
    /// Integrity on, and its checksum table could not be read back.
    ChecksumsUnreadable,
    /// Integrity on, and its superblock does not place the checksum area (or the data)
    /// where this array's does: its table cannot be the one sealing its data.
    ChecksumAreaMismatch,
}

impl std::fmt::Display for WholeRebuild {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WholeRebuild::WasRebuilding => "it left during a rebuild",
            WholeRebuild::Stale => "its superblock is older than the bitmap's last clear",
            WholeRebuild::ChecksumsUnreadable => "its checksum table could not be read",
            WholeRebuild::ChecksumAreaMismatch => {
                "its superblock places the checksum area elsewhere"
            }
        })
    }
}
