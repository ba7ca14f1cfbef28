//! Command 2, MAC Mask List.

use crate::code::byte_code;
use crate::list::{count_byte, counted_entries, indexed_list};

use crate::{
    emit_frame, ensure_buf, ensure_frame, padded_len, Header, Mac, WireError, AOE_HEADER_END,
};

/// Byte offsets of the MAC Mask argument fields.
mod field {
    pub(super) const RESERVED: usize = 24;
    pub(super) const MCMD: usize = 25;
    pub(super) const MERROR: usize = 26;
    pub(super) const DIR_COUNT: usize = 27;
    pub(super) const DIRECTIVES: usize = 28;
}

/// Bytes per directive: reserved, DCmd, MAC.
const DIRECTIVE_LEN: usize = 8;

byte_code! {
    /// Mask subcommand (byte 25).
    pub enum MCmd {
        /// 0: read the list.
        Read = 0,
        /// 1: apply the directives.
        Edit = 1,
    }
}

byte_code! {
    /// Mask result (byte 26, responses only).
    pub enum MError {
        /// 0: success.
        Ok = 0,
        /// 1: unspecified error.
        Unspecified = 1,
        /// 2: bad DCmd directive.
        BadDCmd = 2,
        /// 3: mask list full.
        ListFull = 3,
    }
}

byte_code! {
    /// Directive command.
    pub enum DCmd {
        /// 0: no directive (used for every entry of a read reply).
        None = 0,
        /// 1: add the MAC.
        Add = 1,
        /// 2: delete the MAC.
        Delete = 2,
    }
}

/// One mask list directive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Directive {
    pub dcmd: DCmd,
    pub mac: Mac,
}

#[derive(Clone, Copy)]
enum DirSource<'a> {
    /// `8 * n` bytes straight from a frame.
    Wire(&'a [u8]),
    Slice(&'a [Directive]),
    /// A read reply: every MAC with DCmd 0.
    Listing(&'a [Mac]),
}

/// A list of directives: either borrowed from a received frame or from a
/// caller's slice for emitting. Equality compares the directives, not the source.
#[derive(Clone, Copy)]
pub struct Directives<'a>(DirSource<'a>);

impl<'a> Directives<'a> {
    /// No directives.
    #[inline]
    pub const fn empty() -> Directives<'static> {
        Directives(DirSource::Slice(&[]))
    }

    /// Directives to emit.
    #[inline]
    pub const fn from_slice(list: &'a [Directive]) -> Directives<'a> {
        Directives(DirSource::Slice(list))
    }

    /// The directives of a read reply listing `macs`: each with
    /// [`DCmd::None`], without building a list of [`Directive`]s.
    #[inline]
    pub const fn listing(macs: &'a [Mac]) -> Directives<'a> {
        Directives(DirSource::Listing(macs))
    }

    /// Number of directives.
    #[inline]
    pub fn len(&self) -> usize {
        match self.0 {
            DirSource::Wire(b) => b.len() / DIRECTIVE_LEN,
            DirSource::Slice(s) => s.len(),
            DirSource::Listing(m) => m.len(),
        }
    }

    /// Directive number `i`.
    #[inline]
    pub fn get(&self, i: usize) -> Option<Directive> {
        match self.0 {
            DirSource::Wire(b) => {
                let e = b.get(i * DIRECTIVE_LEN..(i + 1) * DIRECTIVE_LEN)?;
                Some(Directive {
                    dcmd: DCmd::from(e[1]),
                    mac: Mac::from_slice(&e[2..])?,
                })
            }
            DirSource::Slice(s) => s.get(i).copied(),
            DirSource::Listing(m) => m.get(i).map(|&mac| Directive {
                dcmd: DCmd::None,
                mac,
            }),
        }
    }
}

indexed_list!(Directives, DirectiveIter, Directive);

/// A MAC Mask List message.
///
/// With `merror == MError::Ok` the Dir Count byte is the number of
/// directives. With any other MError it is the index of the directive that
/// failed (`failed_index`), and — as vblade does — no directives follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MacMask<'a> {
    pub mcmd: MCmd,
    pub merror: MError,
    /// Index of the failing directive; only meaningful (and only nonzero)
    /// when `merror` is not `Ok`.
    pub failed_index: u8,
    pub directives: Directives<'a>,
}

impl<'a> MacMask<'a> {
    /// Fixed part of the argument.
    pub const ARG_LEN: usize = field::DIRECTIVES - AOE_HEADER_END;

    /// A request (`MCmd::Read` takes no directives; `MCmd::Edit` does).
    #[inline]
    pub fn request(mcmd: MCmd, directives: Directives<'a>) -> MacMask<'a> {
        MacMask {
            mcmd,
            merror: MError::Ok,
            failed_index: 0,
            directives,
        }
    }

    /// Parses the argument of `frame`. `response` is the header's R flag: in
    /// requests the response-only MError byte is ignored. Dir Count × 8 must
    /// fit in the frame when it counts directives.
    pub fn parse(frame: &'a [u8], response: bool) -> Result<MacMask<'a>, WireError> {
        ensure_frame(frame, "MAC Mask argument", field::DIRECTIVES)?;
        let merror = if response {
            MError::from(frame[field::MERROR])
        } else {
            MError::Ok
        };
        let dir_count = frame[field::DIR_COUNT];
        let (failed_index, directives) = if merror == MError::Ok {
            let bytes = counted_entries(
                frame,
                field::DIRECTIVES,
                dir_count,
                DIRECTIVE_LEN,
                "MAC Mask Dir Count",
            )?;
            (0, Directives(DirSource::Wire(bytes)))
        } else {
            (dir_count, Directives::empty())
        };
        Ok(MacMask {
            mcmd: MCmd::from(frame[field::MCMD]),
            merror,
            failed_index,
            directives,
        })
    }

    /// Bytes from offset 24 to the end of the directives (no padding).
    #[inline]
    pub fn arg_len(&self) -> usize {
        Self::ARG_LEN + self.directives.len() * DIRECTIVE_LEN
    }

    /// Length of the frame `emit` writes, padding included.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        padded_len(AOE_HEADER_END + self.arg_len())
    }

    /// Writes the argument at offset 24 of `frame` (header untouched);
    /// returns the unpadded end offset.
    pub fn emit_arg(&self, frame: &mut [u8]) -> Result<usize, WireError> {
        let n = self.directives.len();
        let dir_count = if self.merror == MError::Ok {
            if self.failed_index != 0 {
                return Err(WireError::Inconsistent {
                    field: "MAC Mask failed_index",
                    reason: "must be 0 when MError is Ok",
                });
            }
            count_byte(n, "MAC Mask Dir Count")?
        } else {
            if n != 0 {
                return Err(WireError::Inconsistent {
                    field: "MAC Mask directives",
                    reason: "an MError reply carries the failing index, not a list",
                });
            }
            self.failed_index
        };
        let end = AOE_HEADER_END + self.arg_len();
        ensure_buf(frame, end)?;
        frame[field::RESERVED] = 0;
        frame[field::MCMD] = self.mcmd.into();
        frame[field::MERROR] = self.merror.into();
        frame[field::DIR_COUNT] = dir_count;
        let out = &mut frame[field::DIRECTIVES..end];
        for (chunk, d) in out
            .chunks_exact_mut(DIRECTIVE_LEN)
            .zip(self.directives.iter())
        {
            chunk[0] = 0;
            chunk[1] = d.dcmd.into();
            chunk[2..].copy_from_slice(&d.mac.0);
        }
        Ok(end)
    }

    /// Writes a whole frame (header, argument, padding) and returns its length.
    /// A request must have `merror == Ok`.
    pub fn emit(&self, header: &Header, buf: &mut [u8]) -> Result<usize, WireError> {
        if !header.response && self.merror != MError::Ok {
            return Err(WireError::Inconsistent {
                field: "MAC Mask MError",
                reason: "requests must send MError 0",
            });
        }
        emit_frame(header, buf, self.buffer_len(), |frame| self.emit_arg(frame))
    }
}
