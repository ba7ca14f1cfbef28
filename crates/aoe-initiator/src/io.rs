//! Block I/O as the pool's callers see it: requests in, completions out.
//! Buffers are owned `Vec<u8>`s handed to the pool and handed back with the
//! completion, so callers recycle them and nothing is allocated per I/O.

use std::fmt;

use aoe_wire::ErrorCode;

use crate::BladeId;

/// What an I/O does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Read `sectors` sectors at `lba` into the buffer.
    Read,
    /// Write the first `sectors × 512` bytes of the buffer at `lba`.
    Write,
    /// FLUSH CACHE (EXT if that is all the blade supports); completes at
    /// once without a frame when the blade advertises neither.
    Flush,
}

/// One block I/O for [`crate::Pool::submit`].
#[derive(Debug)]
pub struct IoRequest {
    pub blade: BladeId,
    pub op: Op,
    pub lba: u64,
    /// Sectors to transfer (ignored for `Flush`).
    pub sectors: u32,
    /// Read destination / write source; at least `sectors × 512` bytes.
    pub buf: Vec<u8>,
    /// Caller's token, returned in the completion.
    pub user: u64,
}

/// Why an I/O failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IoError {
    /// The blade stopped answering (dead time passed) or was down already.
    BladeDown,
    /// The blade answered with the AoE error flag (e.g. 6: target reserved).
    Aoe(ErrorCode),
    /// ATA status reported failure; `error` is the ATA Error register
    /// (0x04 ABRT, 0x10 IDNF, 0x40 UNC).
    Ata { status: u8, error: u8 },
    /// A read reply carried fewer data bytes than requested.
    Runt { got: usize, need: usize },
    /// The request could not be encoded (e.g. an LBA beyond LBA28 on a blade
    /// without LBA48).
    Encode(String),
}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IoError::BladeDown => f.write_str("blade is down (no answer within the dead time)"),
            IoError::Aoe(code) => write!(f, "AoE error reply: {code}"),
            IoError::Ata { status, error } => {
                write!(f, "ATA error: status {status:#04x}, error {error:#04x}")?;
                let what = [
                    (aoe_wire::ata::ERROR_ABRT, " ABRT"),
                    (aoe_wire::ata::ERROR_IDNF, " IDNF"),
                    (aoe_wire::ata::ERROR_UNC, " UNC"),
                ];
                for (bit, name) in what {
                    if error & bit != 0 {
                        f.write_str(name)?;
                    }
                }
                Ok(())
            }
            IoError::Runt { got, need } => {
                write!(f, "short read reply: {got} data bytes, {need} expected")
            }
            IoError::Encode(e) => write!(f, "cannot encode request: {e}"),
        }
    }
}

impl std::error::Error for IoError {}

/// A finished I/O.
#[derive(Debug)]
pub struct IoCompletion {
    pub user: u64,
    pub blade: BladeId,
    pub op: Op,
    pub lba: u64,
    pub sectors: u32,
    /// The caller's buffer (filled for successful reads).
    pub buf: Vec<u8>,
    /// First error of any of its frames.
    pub result: Result<(), IoError>,
}

/// Why [`crate::Pool::submit`] refused a request up front.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitError {
    UnknownBlade,
    /// Discovered but IDENTIFY has not answered yet.
    NotReady,
    Down,
    /// `lba + sectors` beyond the capacity.
    OutOfRange {
        lba: u64,
        sectors: u32,
        capacity: u64,
    },
    /// Buffer shorter than `sectors × 512`.
    BufferTooSmall {
        need: usize,
        have: usize,
    },
    /// Read or write of zero sectors.
    Empty,
}

impl fmt::Display for SubmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitError::UnknownBlade => f.write_str("no such blade"),
            SubmitError::NotReady => f.write_str("blade not identified yet"),
            SubmitError::Down => f.write_str("blade is down"),
            SubmitError::OutOfRange {
                lba,
                sectors,
                capacity,
            } => write!(
                f,
                "sectors {lba}..{} beyond capacity {capacity}",
                lba.saturating_add(u64::from(*sectors))
            ),
            SubmitError::BufferTooSmall { need, have } => {
                write!(f, "buffer of {have} bytes, {need} needed")
            }
            SubmitError::Empty => f.write_str("zero-sector read/write"),
        }
    }
}

impl std::error::Error for SubmitError {}

/// A refused request: the reason and the caller's buffer back.
#[derive(Debug)]
pub struct Rejected {
    pub error: SubmitError,
    pub buf: Vec<u8>,
    pub user: u64,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for Rejected {}
