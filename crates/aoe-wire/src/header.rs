//! The common AoE header: Ethernet addresses, flags, error, address, command, tag.

use crate::code::byte_code;
use crate::{
    be16, ensure_buf, ensure_frame, put_be16, Mac, WireError, AOE_HEADER_END, AOE_VERSION,
    BROADCAST_SHELF, BROADCAST_SLOT, ETHERTYPE_AOE,
};

/// Byte offsets of the header fields.
mod field {
    pub(super) const DST: usize = 0;
    pub(super) const SRC: usize = 6;
    pub(super) const ETHERTYPE: usize = 12;
    pub(super) const VER_FLAGS: usize = 14;
    pub(super) const ERROR: usize = 15;
    pub(super) const MAJOR: usize = 16;
    pub(super) const MINOR: usize = 18;
    pub(super) const COMMAND: usize = 19;
    pub(super) const TAG: usize = 20;
}

/// R flag (response), in byte 14.
const FLAG_RESPONSE: u8 = 0x08;
/// E flag (error), in byte 14.
const FLAG_ERROR: u8 = 0x04;
/// Reserved flag bits of byte 14 (zero when sending).
const FLAG_RESERVED: u8 = 0x03;

byte_code! {
    /// AoE error code (byte 15), meaningful only when the E flag is set.
    pub enum ErrorCode {
        /// 1: unrecognized command code.
        UnrecognizedCommand = 1,
        /// 2: bad argument parameter.
        BadArgument = 2,
        /// 3: device unavailable.
        DeviceUnavailable = 3,
        /// 4: config string present (Query Config *set* refused).
        ConfigStringPresent = 4,
        /// 5: unsupported version.
        UnsupportedVersion = 5,
        /// 6: target is reserved.
        TargetReserved = 6,
    }
}

impl core::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let text = match self {
            ErrorCode::UnrecognizedCommand => "unrecognized command code",
            ErrorCode::BadArgument => "bad argument parameter",
            ErrorCode::DeviceUnavailable => "device unavailable",
            ErrorCode::ConfigStringPresent => "config string present",
            ErrorCode::UnsupportedVersion => "unsupported version",
            ErrorCode::TargetReserved => "target is reserved",
            ErrorCode::Unknown(v) => return write!(f, "unknown AoE error {v}"),
        };
        f.write_str(text)
    }
}

/// AoE command code (byte 19).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// 0: issue ATA command.
    Ata,
    /// 1: query config information.
    QueryConfig,
    /// 2: MAC mask list.
    MacMask,
    /// 3: reserve/release.
    ReserveRelease,
    /// 0xF0–0xFF: vendor specific.
    Vendor(u8),
    /// 4–0xEF: not defined.
    Unknown(u8),
}

impl From<u8> for Command {
    #[inline]
    fn from(v: u8) -> Command {
        match v {
            0 => Command::Ata,
            1 => Command::QueryConfig,
            2 => Command::MacMask,
            3 => Command::ReserveRelease,
            0xF0..=0xFF => Command::Vendor(v),
            other => Command::Unknown(other),
        }
    }
}

impl From<Command> for u8 {
    #[inline]
    fn from(c: Command) -> u8 {
        match c {
            Command::Ata => 0,
            Command::QueryConfig => 1,
            Command::MacMask => 2,
            Command::ReserveRelease => 3,
            Command::Vendor(v) | Command::Unknown(v) => v,
        }
    }
}

/// The common AoE header (frame bytes 0–23).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// Destination MAC.
    pub dst: Mac,
    /// Source MAC.
    pub src: Mac,
    /// Protocol version nibble (0–15); [`AOE_VERSION`] when sending.
    pub version: u8,
    /// R flag: this is a response.
    pub response: bool,
    /// E flag and error code: `Some` iff the E flag is set.
    pub error: Option<ErrorCode>,
    /// Major address ("shelf"); [`BROADCAST_SHELF`] matches every shelf.
    pub shelf: u16,
    /// Minor address ("slot"); [`BROADCAST_SLOT`] matches every slot.
    pub slot: u8,
    /// Command code.
    pub command: Command,
    /// Tag, opaque to the target, echoed in the response.
    pub tag: u32,
}

impl Header {
    /// Header length including the Ethernet header.
    pub const LEN: usize = AOE_HEADER_END;

    /// A request header (version 1, no flags).
    #[inline]
    pub fn request(dst: Mac, src: Mac, shelf: u16, slot: u8, command: Command, tag: u32) -> Header {
        Header {
            dst,
            src,
            version: AOE_VERSION,
            response: false,
            error: None,
            shelf,
            slot,
            command,
            tag,
        }
    }

    /// The header of the response to this request: R set, no error, version
    /// 1, dst = request's src, src = `own_mac`, own shelf/slot (never the
    /// broadcast values the request may carry), command and tag kept.
    #[inline]
    pub fn response_to(&self, own_mac: Mac, shelf: u16, slot: u8) -> Header {
        Header {
            dst: self.src,
            src: own_mac,
            version: AOE_VERSION,
            response: true,
            error: None,
            shelf,
            slot,
            command: self.command,
            tag: self.tag,
        }
    }

    /// The same header with the E flag set and `code`.
    #[inline]
    pub fn with_error(mut self, code: ErrorCode) -> Header {
        self.error = Some(code);
        self
    }

    /// True if a target at (`shelf`, `slot`) should accept this frame's
    /// address: each part equal or broadcast. (The R flag is not checked.)
    #[inline]
    pub fn addresses(&self, shelf: u16, slot: u8) -> bool {
        (self.shelf == shelf || self.shelf == BROADCAST_SHELF)
            && (self.slot == slot || self.slot == BROADCAST_SLOT)
    }

    /// Parses the header of `frame`: checks the length (24 bytes) and the
    /// EtherType. Reserved flag bits are ignored; the error code is read only
    /// when E is set.
    #[inline]
    pub fn parse(frame: &[u8]) -> Result<Header, WireError> {
        ensure_frame(frame, "AoE header", AOE_HEADER_END)?;
        let ethertype = be16(frame, field::ETHERTYPE);
        if ethertype != ETHERTYPE_AOE {
            return Err(WireError::EtherType { found: ethertype });
        }
        let vf = frame[field::VER_FLAGS];
        let error = if vf & FLAG_ERROR != 0 {
            Some(ErrorCode::from(frame[field::ERROR]))
        } else {
            None
        };
        let mut macs = [0u8; 12];
        macs.copy_from_slice(&frame[field::DST..field::SRC + 6]);
        let [d0, d1, d2, d3, d4, d5, s0, s1, s2, s3, s4, s5] = macs;
        Ok(Header {
            dst: Mac([d0, d1, d2, d3, d4, d5]),
            src: Mac([s0, s1, s2, s3, s4, s5]),
            version: vf >> 4,
            response: vf & FLAG_RESPONSE != 0,
            error,
            shelf: be16(frame, field::MAJOR),
            slot: frame[field::MINOR],
            command: Command::from(frame[field::COMMAND]),
            tag: u32::from_be_bytes([
                frame[field::TAG],
                frame[field::TAG + 1],
                frame[field::TAG + 2],
                frame[field::TAG + 3],
            ]),
        })
    }

    /// Writes the 24 header bytes into `buf[..24]` and returns 24.
    /// Reserved bits are written as zero; the error byte is zero unless E is set.
    #[inline]
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        if self.version > 0x0F {
            return Err(WireError::ValueOutOfRange {
                field: "header version",
                value: self.version.into(),
                max: 0x0F,
            });
        }
        ensure_buf(buf, AOE_HEADER_END)?;
        buf[field::DST..field::DST + 6].copy_from_slice(&self.dst.0);
        buf[field::SRC..field::SRC + 6].copy_from_slice(&self.src.0);
        put_be16(buf, field::ETHERTYPE, ETHERTYPE_AOE);
        let mut vf = self.version << 4;
        if self.response {
            vf |= FLAG_RESPONSE;
        }
        if self.error.is_some() {
            vf |= FLAG_ERROR;
        }
        buf[field::VER_FLAGS] = vf;
        buf[field::ERROR] = self.error.map_or(0, u8::from);
        put_be16(buf, field::MAJOR, self.shelf);
        buf[field::MINOR] = self.slot;
        buf[field::COMMAND] = self.command.into();
        buf[field::TAG..field::TAG + 4].copy_from_slice(&self.tag.to_be_bytes());
        Ok(AOE_HEADER_END)
    }
}

/// True if `frame`'s header has bits set that mean nothing: the reserved
/// flag bits of byte 14, or an error byte while E is clear. Receivers ignore
/// them ([`Header::parse`] does); this lets them count such frames.
#[inline]
pub fn reserved_header_bits(frame: &[u8]) -> bool {
    match (frame.get(field::VER_FLAGS), frame.get(field::ERROR)) {
        (Some(&vf), Some(&err)) => vf & FLAG_RESERVED != 0 || (vf & FLAG_ERROR == 0 && err != 0),
        _ => false,
    }
}

/// Turns the received request in `frame` into the header of its response,
/// in place: dst = old src, src = `own_mac`, version 1 with R set and E
/// clear, error byte 0, major/minor = `shelf`/`slot`; command, tag and the
/// argument bytes are left as they are.
#[inline]
pub fn respond_in_place(
    frame: &mut [u8],
    own_mac: Mac,
    shelf: u16,
    slot: u8,
) -> Result<(), WireError> {
    ensure_frame(frame, "AoE header", AOE_HEADER_END)?;
    frame.copy_within(field::SRC..field::SRC + 6, field::DST);
    frame[field::SRC..field::SRC + 6].copy_from_slice(&own_mac.0);
    put_be16(frame, field::ETHERTYPE, ETHERTYPE_AOE);
    frame[field::VER_FLAGS] = (AOE_VERSION << 4) | FLAG_RESPONSE;
    frame[field::ERROR] = 0;
    put_be16(frame, field::MAJOR, shelf);
    frame[field::MINOR] = slot;
    Ok(())
}
