//! Command 1, Query Config Information.

use crate::{
    be16, emit_frame, ensure_buf, ensure_frame, padded_len, put_be16, Header, WireError,
    AOE_HEADER_END, AOE_VERSION, MAX_CONFIG_LEN,
};

/// Byte offsets of the Query Config argument fields.
mod field {
    pub(super) const BUFFER_COUNT: usize = 24;
    pub(super) const FIRMWARE: usize = 26;
    pub(super) const SECTOR_COUNT: usize = 28;
    pub(super) const VER_CCMD: usize = 29;
    pub(super) const CONFIG_LEN: usize = 30;
    pub(super) const CONFIG: usize = 32;
}

/// Config subcommand (low nibble of byte 29).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CCmd {
    /// 0: read the config string.
    Read,
    /// 1: reply only if the string equals the request's.
    Test,
    /// 2: reply only if the request's string is a prefix of the target's.
    TestPrefix,
    /// 3: set the string if none is present.
    Set,
    /// 4: set the string unconditionally.
    ForceSet,
    /// 5–15: undefined.
    Unknown(u8),
}

impl CCmd {
    /// Decodes a nibble (the high bits of `v` are ignored).
    #[inline]
    pub fn from_nibble(v: u8) -> CCmd {
        match v & 0x0F {
            0 => CCmd::Read,
            1 => CCmd::Test,
            2 => CCmd::TestPrefix,
            3 => CCmd::Set,
            4 => CCmd::ForceSet,
            other => CCmd::Unknown(other),
        }
    }

    /// The nibble value.
    #[inline]
    pub fn nibble(self) -> u8 {
        match self {
            CCmd::Read => 0,
            CCmd::Test => 1,
            CCmd::TestPrefix => 2,
            CCmd::Set => 3,
            CCmd::ForceSet => 4,
            CCmd::Unknown(v) => v,
        }
    }
}

/// A Query Config message (request or response).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QueryConfig<'a> {
    /// Requests the target can queue (response only; requests send 0).
    pub buffer_count: u16,
    /// Firmware version (response only).
    pub firmware: u16,
    /// Maximum sectors per ATA request (response only; 0 means 2).
    pub sector_count: u8,
    /// AoE version nibble of the argument (1 in responses).
    pub version: u8,
    pub ccmd: CCmd,
    /// Config string, at most [`MAX_CONFIG_LEN`] bytes.
    pub config: &'a [u8],
}

impl<'a> QueryConfig<'a> {
    /// Fixed part of the argument.
    pub const ARG_LEN: usize = field::CONFIG - AOE_HEADER_END;

    /// A request: counts zero, version 1, the given subcommand and string.
    #[inline]
    pub fn request(ccmd: CCmd, config: &'a [u8]) -> QueryConfig<'a> {
        QueryConfig {
            buffer_count: 0,
            firmware: 0,
            sector_count: 0,
            version: AOE_VERSION,
            ccmd,
            config,
        }
    }

    /// Parses the argument of `frame`. `response` is the header's R flag:
    /// in a *read request* an invalid string length is ignored (empty
    /// string), elsewhere it must be ≤ 1024 and fit in the frame.
    pub fn parse(frame: &'a [u8], response: bool) -> Result<QueryConfig<'a>, WireError> {
        ensure_frame(frame, "Query Config argument", field::CONFIG)?;
        let vc = frame[field::VER_CCMD];
        let ccmd = CCmd::from_nibble(vc);
        let len = usize::from(be16(frame, field::CONFIG_LEN));
        let available = frame.len() - field::CONFIG;
        let config = if len > MAX_CONFIG_LEN || len > available {
            if ccmd == CCmd::Read && !response {
                &frame[field::CONFIG..field::CONFIG]
            } else if len > MAX_CONFIG_LEN {
                return Err(WireError::LengthExceedsLimit {
                    field: "config string length",
                    declared: len,
                    limit: MAX_CONFIG_LEN,
                });
            } else {
                return Err(WireError::CountExceedsFrame {
                    field: "config string length",
                    count: len,
                    need: len,
                    available,
                });
            }
        } else {
            &frame[field::CONFIG..field::CONFIG + len]
        };
        Ok(QueryConfig {
            buffer_count: be16(frame, field::BUFFER_COUNT),
            firmware: be16(frame, field::FIRMWARE),
            sector_count: frame[field::SECTOR_COUNT],
            version: vc >> 4,
            ccmd,
            config,
        })
    }

    /// Bytes from offset 24 to the end of the string (no padding).
    #[inline]
    pub fn arg_len(&self) -> usize {
        Self::ARG_LEN + self.config.len()
    }

    /// Length of the frame `emit` writes, padding included.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        padded_len(AOE_HEADER_END + self.arg_len())
    }

    /// Writes the argument at offset 24 of `frame` (header untouched);
    /// returns the unpadded end offset.
    pub fn emit_arg(&self, frame: &mut [u8]) -> Result<usize, WireError> {
        if self.config.len() > MAX_CONFIG_LEN {
            return Err(WireError::LengthExceedsLimit {
                field: "config string length",
                declared: self.config.len(),
                limit: MAX_CONFIG_LEN,
            });
        }
        if self.version > 0x0F {
            return Err(WireError::ValueOutOfRange {
                field: "Query Config version",
                value: self.version.into(),
                max: 0x0F,
            });
        }
        let nibble = self.ccmd.nibble();
        if nibble > 0x0F {
            return Err(WireError::ValueOutOfRange {
                field: "CCmd",
                value: nibble.into(),
                max: 0x0F,
            });
        }
        let end = AOE_HEADER_END + self.arg_len();
        ensure_buf(frame, end)?;
        put_be16(frame, field::BUFFER_COUNT, self.buffer_count);
        put_be16(frame, field::FIRMWARE, self.firmware);
        frame[field::SECTOR_COUNT] = self.sector_count;
        frame[field::VER_CCMD] = (self.version << 4) | nibble;
        // Fits: checked against MAX_CONFIG_LEN above.
        put_be16(frame, field::CONFIG_LEN, self.config.len() as u16);
        frame[field::CONFIG..end].copy_from_slice(self.config);
        Ok(end)
    }

    /// Writes a whole frame (header, argument, padding) and returns its length.
    #[inline]
    pub fn emit(&self, header: &Header, buf: &mut [u8]) -> Result<usize, WireError> {
        emit_frame(header, buf, self.buffer_len(), |frame| self.emit_arg(frame))
    }
}
