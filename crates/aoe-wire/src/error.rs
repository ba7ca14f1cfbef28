//! The error type for parsing and emitting frames.

use core::fmt;

/// What is wrong with a frame being parsed, or with a repr being emitted.
///
/// Every variant names the field and the numbers involved so that a log line
/// is enough to understand a rejected frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// The frame ends before the fixed-size part `part` does.
    Truncated {
        part: &'static str,
        need: usize,
        have: usize,
    },
    /// The EtherType is not 0x88A2.
    EtherType { found: u16 },
    /// A count or length field declares more bytes than the frame holds
    /// after the field (`need` bytes for `count` entries, `available` present).
    CountExceedsFrame {
        field: &'static str,
        count: usize,
        need: usize,
        available: usize,
    },
    /// A length field is above the protocol's maximum.
    LengthExceedsLimit {
        field: &'static str,
        declared: usize,
        limit: usize,
    },
    /// The output buffer cannot hold the frame.
    BufferTooSmall { need: usize, have: usize },
    /// A value does not fit its wire field (emit side).
    ValueOutOfRange {
        field: &'static str,
        value: u64,
        max: u64,
    },
    /// A repr's fields contradict each other (emit side).
    Inconsistent {
        field: &'static str,
        reason: &'static str,
    },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            WireError::Truncated { part, need, have } => write!(
                f,
                "frame truncated: {part} needs {need} bytes, frame has {have}"
            ),
            WireError::EtherType { found } => {
                write!(
                    f,
                    "not an AoE frame: EtherType {found:#06x}, expected 0x88a2"
                )
            }
            WireError::CountExceedsFrame {
                field,
                count,
                need,
                available,
            } => write!(
                f,
                "{field} = {count} needs {need} bytes but only {available} follow in the frame"
            ),
            WireError::LengthExceedsLimit {
                field,
                declared,
                limit,
            } => write!(f, "{field} = {declared} exceeds the limit of {limit}"),
            WireError::BufferTooSmall { need, have } => write!(
                f,
                "output buffer too small: frame needs {need} bytes, buffer has {have}"
            ),
            WireError::ValueOutOfRange { field, value, max } => {
                write!(f, "{field} = {value} does not fit (max {max})")
            }
            WireError::Inconsistent { field, reason } => write!(f, "{field}: {reason}"),
        }
    }
}

impl std::error::Error for WireError {}
