//! A whole frame: header plus the message its command selects.

use crate::{
    ensure_buf, finish_frame, padded_len, Ata, AtaArg, Command, Header, MacMask, QueryConfig,
    Reserve, WireError, AOE_HEADER_END,
};

/// The command-specific part of a frame, borrowing from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    Ata(Ata<'a>),
    QueryConfig(QueryConfig<'a>),
    MacMask(MacMask<'a>),
    Reserve(Reserve<'a>),
    /// A vendor-specific or undefined command: the bytes after the header.
    Other(&'a [u8]),
    /// An error response (E set) to a known command whose argument is
    /// shorter than that command's fixed part (ggaoed sends bare 24-byte
    /// error replies): the bytes after the header.
    ///
    /// Emitting a `Bare` message writes the header only (then zero padding):
    /// a partial argument followed by padding could form an invalid one.
    Bare(&'a [u8]),
}

impl Message<'_> {
    /// Bytes from offset 24 to the end of the content (no padding).
    #[inline]
    pub fn arg_len(&self) -> usize {
        match self {
            Message::Ata(m) => m.arg_len(),
            Message::QueryConfig(m) => m.arg_len(),
            Message::MacMask(m) => m.arg_len(),
            Message::Reserve(m) => m.arg_len(),
            Message::Other(b) => b.len(),
            Message::Bare(_) => 0,
        }
    }
}

/// A parsed (or to-be-emitted) AoE frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    pub header: Header,
    pub message: Message<'a>,
}

/// Length of the fixed argument part of a known command.
fn fixed_arg_len(command: Command) -> Option<usize> {
    match command {
        Command::Ata => Some(AtaArg::LEN),
        Command::QueryConfig => Some(QueryConfig::ARG_LEN),
        Command::MacMask => Some(MacMask::ARG_LEN),
        Command::ReserveRelease => Some(Reserve::ARG_LEN),
        Command::Vendor(_) | Command::Unknown(_) => None,
    }
}

/// Parses a received Ethernet frame (starting at the destination MAC, no
/// FCS). Checks the EtherType, that every fixed part is present and every
/// count/length field fits in the frame; ignores reserved bits and trailing
/// bytes. Never panics, never allocates.
#[inline]
pub fn parse(frame: &[u8]) -> Result<Packet<'_>, WireError> {
    let header = Header::parse(frame)?;
    let rest = &frame[AOE_HEADER_END..];
    if header.error.is_some() {
        if let Some(fixed) = fixed_arg_len(header.command) {
            if rest.len() < fixed {
                return Ok(Packet {
                    header,
                    message: Message::Bare(rest),
                });
            }
        }
    }
    let message = match header.command {
        Command::Ata => Message::Ata(Ata::parse(frame)?),
        Command::QueryConfig => Message::QueryConfig(QueryConfig::parse(frame, header.response)?),
        Command::MacMask => Message::MacMask(MacMask::parse(frame, header.response)?),
        Command::ReserveRelease => Message::Reserve(Reserve::parse(frame)?),
        Command::Vendor(_) | Command::Unknown(_) => Message::Other(rest),
    };
    Ok(Packet { header, message })
}

impl<'a> Packet<'a> {
    /// Same as [`parse`].
    #[inline]
    pub fn parse(frame: &'a [u8]) -> Result<Packet<'a>, WireError> {
        parse(frame)
    }

    /// Length of the frame `emit` writes, padding included.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        padded_len(AOE_HEADER_END + self.message.arg_len())
    }

    /// Writes the whole frame into `buf` (zero-padded to 60 bytes) and
    /// returns its length. The header's command must match the message
    /// (`Other` goes with vendor/unknown commands, `Bare` needs the E flag).
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        self.check_consistent()?;
        ensure_buf(buf, self.buffer_len())?;
        self.header.emit(buf)?;
        let end = match &self.message {
            Message::Ata(m) => m.emit_arg(buf)?,
            Message::QueryConfig(m) => m.emit_arg(buf)?,
            Message::MacMask(m) => m.emit_arg(buf)?,
            Message::Reserve(m) => m.emit_arg(buf)?,
            Message::Other(b) => {
                let end = AOE_HEADER_END + b.len();
                buf[AOE_HEADER_END..end].copy_from_slice(b);
                end
            }
            Message::Bare(_) => AOE_HEADER_END,
        };
        finish_frame(buf, end)
    }

    fn check_consistent(&self) -> Result<(), WireError> {
        const FIELD: &str = "header command";
        let cmd = self.header.command;
        let ok = match &self.message {
            Message::Ata(_) => cmd == Command::Ata,
            Message::QueryConfig(_) => cmd == Command::QueryConfig,
            Message::MacMask(m) => {
                if !self.header.response && m.merror != crate::MError::Ok {
                    return Err(WireError::Inconsistent {
                        field: "MAC Mask MError",
                        reason: "requests must send MError 0",
                    });
                }
                cmd == Command::MacMask
            }
            Message::Reserve(_) => cmd == Command::ReserveRelease,
            Message::Other(_) => matches!(cmd, Command::Vendor(_) | Command::Unknown(_)),
            Message::Bare(_) => {
                if self.header.error.is_none() {
                    return Err(WireError::Inconsistent {
                        field: "Message::Bare",
                        reason: "only error responses (E set) may omit the argument",
                    });
                }
                fixed_arg_len(cmd).is_some()
            }
        };
        if ok {
            Ok(())
        } else {
            Err(WireError::Inconsistent {
                field: FIELD,
                reason: "does not match the message kind",
            })
        }
    }
}
