//! Command 3, Reserve/Release.

use crate::code::byte_code;
use crate::list::{count_byte, counted_entries, indexed_list};

use crate::{
    emit_frame, ensure_buf, ensure_frame, padded_len, Header, Mac, WireError, AOE_HEADER_END,
};

/// Byte offsets of the Reserve/Release argument fields.
mod field {
    pub(super) const RCMD: usize = 24;
    pub(super) const NMACS: usize = 25;
    pub(super) const MACS: usize = 26;
}

const MAC_LEN: usize = 6;

byte_code! {
    /// Reserve/Release subcommand (byte 24).
    pub enum RCmd {
        /// 0: read the reservation list.
        Read = 0,
        /// 1: set the list (allowed if empty or the requester is on it).
        Set = 1,
        /// 2: set the list unconditionally.
        ForceSet = 2,
    }
}

#[derive(Clone, Copy)]
enum MacSource<'a> {
    /// `6 * n` bytes straight from a frame.
    Wire(&'a [u8]),
    Slice(&'a [Mac]),
}

/// A list of MACs: borrowed from a received frame or from a caller's slice
/// for emitting. Equality compares the addresses, not the source.
#[derive(Clone, Copy)]
pub struct MacList<'a>(MacSource<'a>);

impl<'a> MacList<'a> {
    #[inline]
    pub const fn empty() -> MacList<'static> {
        MacList(MacSource::Slice(&[]))
    }

    #[inline]
    pub const fn from_slice(list: &'a [Mac]) -> MacList<'a> {
        MacList(MacSource::Slice(list))
    }

    #[inline]
    pub fn len(&self) -> usize {
        match self.0 {
            MacSource::Wire(b) => b.len() / MAC_LEN,
            MacSource::Slice(s) => s.len(),
        }
    }

    #[inline]
    pub fn get(&self, i: usize) -> Option<Mac> {
        match self.0 {
            MacSource::Wire(b) => Mac::from_slice(b.get(i * MAC_LEN..(i + 1) * MAC_LEN)?),
            MacSource::Slice(s) => s.get(i).copied(),
        }
    }

    #[inline]
    pub fn contains(&self, mac: &Mac) -> bool {
        self.iter().any(|m| m == *mac)
    }
}

indexed_list!(MacList, MacIter, Mac);

/// A Reserve/Release message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reserve<'a> {
    pub rcmd: RCmd,
    pub macs: MacList<'a>,
}

impl<'a> Reserve<'a> {
    /// Fixed part of the argument.
    pub const ARG_LEN: usize = field::MACS - AOE_HEADER_END;

    /// Parses the argument of `frame`; NMacs × 6 must fit in the frame.
    pub fn parse(frame: &'a [u8]) -> Result<Reserve<'a>, WireError> {
        ensure_frame(frame, "Reserve/Release argument", field::MACS)?;
        let n = frame[field::NMACS];
        let macs = counted_entries(frame, field::MACS, n, MAC_LEN, "Reserve/Release NMacs")?;
        Ok(Reserve {
            rcmd: RCmd::from(frame[field::RCMD]),
            macs: MacList(MacSource::Wire(macs)),
        })
    }

    /// Bytes from offset 24 to the end of the MAC list (no padding).
    #[inline]
    pub fn arg_len(&self) -> usize {
        Self::ARG_LEN + self.macs.len() * MAC_LEN
    }

    /// Length of the frame `emit` writes, padding included.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        padded_len(AOE_HEADER_END + self.arg_len())
    }

    /// Writes the argument at offset 24 of `frame` (header untouched);
    /// returns the unpadded end offset.
    pub fn emit_arg(&self, frame: &mut [u8]) -> Result<usize, WireError> {
        let n = self.macs.len();
        let nmacs = count_byte(n, "Reserve/Release NMacs")?;
        let end = AOE_HEADER_END + self.arg_len();
        ensure_buf(frame, end)?;
        frame[field::RCMD] = self.rcmd.into();
        frame[field::NMACS] = nmacs;
        let out = &mut frame[field::MACS..end];
        for (chunk, mac) in out.chunks_exact_mut(MAC_LEN).zip(self.macs.iter()) {
            chunk.copy_from_slice(&mac.0);
        }
        Ok(end)
    }

    /// Writes a whole frame (header, argument, padding) and returns its length.
    #[inline]
    pub fn emit(&self, header: &Header, buf: &mut [u8]) -> Result<usize, WireError> {
        emit_frame(header, buf, self.buffer_len(), |frame| self.emit_arg(frame))
    }
}
