//! Command 0, Issue ATA Command: AFlags, the 12-byte argument and its data.

use crate::{
    ata, emit_frame, ensure_buf, ensure_frame, padded_len, Header, Mac, WireError, AOE_HEADER_END,
    ATA_DATA_OFFSET,
};

/// Byte offsets of the ATA argument fields.
mod field {
    pub(super) const AFLAGS: usize = 24;
    pub(super) const ERR_FEATURE: usize = 25;
    pub(super) const SECTOR_COUNT: usize = 26;
    pub(super) const CMD_STATUS: usize = 27;
    pub(super) const LBA: usize = 28;
    pub(super) const RESERVED: usize = 34;
}

/// Largest LBA the six LBA bytes can carry.
pub(crate) const LBA48_MAX: u64 = (1 << 48) - 1;
/// Mask of the LBA bits an LBA28 command uses.
const LBA28_MASK: u64 = 0x0FFF_FFFF;
/// Device register Linux sends with LBA28 commands (LBA mode + obsolete bits).
const LBA28_DEVICE: u64 = 0xE0;
/// Device register Linux sends with IDENTIFY.
const IDENTIFY_DEVICE: u64 = 0xA0;

/// AFlags (byte 24). Reserved bits are dropped on parse and never emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AFlags(u8);

impl AFlags {
    /// E: LBA48 command, all six LBA bytes significant.
    pub const EXTENDED: AFlags = AFlags(0x40);
    /// D: DEV bit of the device register for LBA48 commands.
    pub const DEVICE: AFlags = AFlags(0x10);
    /// A: asynchronous write.
    pub const ASYNC: AFlags = AFlags(0x02);
    /// W: write (data flows initiator → target).
    pub const WRITE: AFlags = AFlags(0x01);
    /// No flags.
    pub const NONE: AFlags = AFlags(0);
    const DEFINED: u8 = 0x53;

    /// Keeps only the defined bits of `bits`.
    #[inline]
    pub const fn from_bits_truncate(bits: u8) -> AFlags {
        AFlags(bits & Self::DEFINED)
    }

    #[inline]
    pub const fn bits(self) -> u8 {
        self.0
    }

    #[inline]
    pub const fn contains(self, other: AFlags) -> bool {
        self.0 & other.0 == other.0
    }

    #[inline]
    pub const fn extended(self) -> bool {
        self.0 & Self::EXTENDED.0 != 0
    }

    #[inline]
    pub const fn device(self) -> bool {
        self.0 & Self::DEVICE.0 != 0
    }

    #[inline]
    pub const fn async_write(self) -> bool {
        self.0 & Self::ASYNC.0 != 0
    }

    #[inline]
    pub const fn write(self) -> bool {
        self.0 & Self::WRITE.0 != 0
    }

    /// These flags with `other` set (`on`) or cleared.
    #[inline]
    pub const fn with(self, other: AFlags, on: bool) -> AFlags {
        if on {
            AFlags(self.0 | other.0)
        } else {
            AFlags(self.0 & !other.0)
        }
    }
}

impl core::ops::BitOr for AFlags {
    type Output = AFlags;
    #[inline]
    fn bitor(self, rhs: AFlags) -> AFlags {
        AFlags(self.0 | rhs.0)
    }
}

impl core::ops::BitOrAssign for AFlags {
    #[inline]
    fn bitor_assign(&mut self, rhs: AFlags) {
        self.0 |= rhs.0;
    }
}

/// The 12-byte ATA argument (frame bytes 24–35), without data.
///
/// `lba` holds the six LBA bytes as one 48-bit number (lba0 is the least
/// significant byte). For LBA28 commands byte 3 of it is the device register;
/// use [`AtaArg::lba28`] / [`AtaArg::device`] to read it that way and
/// [`AtaArg::lba28_field`] to build it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AtaArg {
    pub aflags: AFlags,
    /// Features register (request) / Error register (response).
    pub err_feature: u8,
    /// Sector count (request) / remaining count or command output (response).
    pub sector_count: u8,
    /// Command register (request) / Status register (response).
    pub cmd_status: u8,
    /// The six LBA bytes as a 48-bit number.
    pub lba: u64,
}

impl AtaArg {
    /// Argument length in bytes.
    pub const LEN: usize = ATA_DATA_OFFSET - AOE_HEADER_END;

    /// The value of the LBA field for an LBA28 command: `lba` masked to 28
    /// bits, with lba3 = 0xE0 | bits 27..24 as Linux sends it.
    #[inline]
    pub const fn lba28_field(lba: u32) -> u64 {
        (lba as u64 & LBA28_MASK) | (LBA28_DEVICE << 24)
    }

    /// A READ (`write == false`) or WRITE of `count` sectors at `lba`.
    /// With `lba48` it is READ/WRITE EXT with the E flag; otherwise the LBA28
    /// opcode, which only reaches `lba <= 0x0FFFFFFF`.
    pub fn read_write(write: bool, lba: u64, count: u8, lba48: bool) -> Result<AtaArg, WireError> {
        let (cmd, lba_field, mut aflags) = if lba48 {
            if lba > LBA48_MAX {
                return Err(WireError::ValueOutOfRange {
                    field: "LBA48",
                    value: lba,
                    max: LBA48_MAX,
                });
            }
            let cmd = if write { ata::WRITE_EXT } else { ata::READ_EXT };
            (cmd, lba, AFlags::EXTENDED)
        } else {
            if lba > LBA28_MASK {
                return Err(WireError::ValueOutOfRange {
                    field: "LBA28",
                    value: lba,
                    max: LBA28_MASK,
                });
            }
            let cmd = if write { ata::WRITE } else { ata::READ };
            (cmd, Self::lba28_field(lba as u32), AFlags::NONE)
        };
        if write {
            aflags |= AFlags::WRITE;
        }
        Ok(AtaArg {
            aflags,
            err_feature: 0,
            sector_count: count,
            cmd_status: cmd,
            lba: lba_field,
        })
    }

    /// IDENTIFY DEVICE as Linux sends it: AFlags 0, count 1, lba3 = 0xA0.
    #[inline]
    pub const fn identify() -> AtaArg {
        AtaArg {
            aflags: AFlags::NONE,
            err_feature: 0,
            sector_count: 1,
            cmd_status: ata::IDENTIFY,
            lba: IDENTIFY_DEVICE << 24,
        }
    }

    /// A data-less command (`FLUSH`, `FLUSH_EXT`, `CHECK_POWER`, …).
    #[inline]
    pub const fn no_data(cmd: u8) -> AtaArg {
        AtaArg {
            aflags: AFlags::NONE,
            err_feature: 0,
            sector_count: 0,
            cmd_status: cmd,
            lba: 0,
        }
    }

    /// The argument of the reply to this request: AFlags and LBA echoed,
    /// `status` and `error` registers set, sector count 0 (nothing remaining).
    /// Use `ata::STATUS_OK, 0` for success, `ata::STATUS_FAILED` with
    /// `ata::ERROR_IDNF`/`ERROR_ABRT`/`ERROR_UNC` for failures.
    #[inline]
    pub const fn reply(&self, status: u8, error: u8) -> AtaArg {
        AtaArg {
            aflags: self.aflags,
            err_feature: error,
            sector_count: 0,
            cmd_status: status,
            lba: self.lba & LBA48_MAX,
        }
    }

    /// The LBA as a 48-bit number (all six bytes).
    #[inline]
    pub const fn lba48(&self) -> u64 {
        self.lba & LBA48_MAX
    }

    /// The LBA28 interpretation: low 28 bits.
    #[inline]
    pub const fn lba28(&self) -> u32 {
        (self.lba & LBA28_MASK) as u32
    }

    /// lba3, which LBA28 commands use as the device register.
    #[inline]
    pub const fn device(&self) -> u8 {
        (self.lba >> 24) as u8
    }

    /// The LBA a target should use for this command: 28 bits for the LBA28
    /// opcodes (0x20/0x30), 48 bits otherwise (what vblade does).
    #[inline]
    pub const fn effective_lba(&self) -> u64 {
        if ata::is_lba28_opcode(self.cmd_status) {
            self.lba28() as u64
        } else {
            self.lba48()
        }
    }

    /// Response status byte viewed as failed per Linux (`status & 0xA9`).
    #[inline]
    pub const fn is_failed(&self) -> bool {
        ata::is_failed_status(self.cmd_status)
    }

    /// Reads the argument from `frame[24..36]`. Reserved AFlags bits and the
    /// reserved bytes 34–35 are ignored.
    #[inline]
    pub fn parse(frame: &[u8]) -> Result<AtaArg, WireError> {
        ensure_frame(frame, "ATA argument", ATA_DATA_OFFSET)?;
        let l = &frame[field::LBA..field::LBA + 6];
        let lba = u64::from(l[0])
            | u64::from(l[1]) << 8
            | u64::from(l[2]) << 16
            | u64::from(l[3]) << 24
            | u64::from(l[4]) << 32
            | u64::from(l[5]) << 40;
        Ok(AtaArg {
            aflags: AFlags::from_bits_truncate(frame[field::AFLAGS]),
            err_feature: frame[field::ERR_FEATURE],
            sector_count: frame[field::SECTOR_COUNT],
            cmd_status: frame[field::CMD_STATUS],
            lba,
        })
    }

    /// Writes the argument into `frame[24..36]` (the header is not touched)
    /// and returns [`ATA_DATA_OFFSET`], where data goes.
    #[inline]
    pub fn emit(&self, frame: &mut [u8]) -> Result<usize, WireError> {
        if self.lba > LBA48_MAX {
            return Err(WireError::ValueOutOfRange {
                field: "ATA LBA",
                value: self.lba,
                max: LBA48_MAX,
            });
        }
        ensure_buf(frame, ATA_DATA_OFFSET)?;
        frame[field::AFLAGS] = self.aflags.bits();
        frame[field::ERR_FEATURE] = self.err_feature;
        frame[field::SECTOR_COUNT] = self.sector_count;
        frame[field::CMD_STATUS] = self.cmd_status;
        let lba = self.lba.to_le_bytes();
        frame[field::LBA..field::LBA + 6].copy_from_slice(&lba[..6]);
        frame[field::RESERVED] = 0;
        frame[field::RESERVED + 1] = 0;
        Ok(ATA_DATA_OFFSET)
    }
}

/// An ATA message: the argument and the bytes after it.
///
/// On parse `data` is everything after offset 36, including any padding,
/// filler or probe payload; use the sector count to know how much of it
/// matters. On emit the frame is padded to 60 bytes, so data shorter than
/// 24 bytes comes back from a re-parse followed by zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ata<'a> {
    pub arg: AtaArg,
    pub data: &'a [u8],
}

impl<'a> Ata<'a> {
    /// Parses the ATA argument and data of `frame` (a whole frame).
    #[inline]
    pub fn parse(frame: &'a [u8]) -> Result<Ata<'a>, WireError> {
        let arg = AtaArg::parse(frame)?;
        Ok(Ata {
            arg,
            data: &frame[ATA_DATA_OFFSET..],
        })
    }

    /// Bytes from offset 24 to the end of the data (no padding).
    #[inline]
    pub fn arg_len(&self) -> usize {
        AtaArg::LEN + self.data.len()
    }

    /// Length of the frame `emit` writes, padding included.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        padded_len(AOE_HEADER_END + self.arg_len())
    }

    /// Writes argument and data at offset 24 of `frame` (header untouched);
    /// returns the unpadded end offset.
    #[inline]
    pub fn emit_arg(&self, frame: &mut [u8]) -> Result<usize, WireError> {
        let end = AOE_HEADER_END + self.arg_len();
        ensure_buf(frame, end)?;
        self.arg.emit(frame)?;
        frame[ATA_DATA_OFFSET..end].copy_from_slice(self.data);
        Ok(end)
    }

    /// Writes a whole frame (header, argument, data, padding) and returns its length.
    #[inline]
    pub fn emit(&self, header: &Header, buf: &mut [u8]) -> Result<usize, WireError> {
        emit_frame(header, buf, self.buffer_len(), |frame| self.emit_arg(frame))
    }
}

/// Hot path for initiators and targets: writes `header` and `arg` into
/// `buf[..36]` and returns [`ATA_DATA_OFFSET`] so the caller can copy (or
/// read) the payload straight into `buf[36..]`, then call
/// [`finish_frame`](crate::finish_frame)`(buf, 36 + data_len)` for the
/// padded length to send.
#[inline]
pub fn write_ata_request(
    buf: &mut [u8],
    header: &Header,
    arg: &AtaArg,
) -> Result<usize, WireError> {
    ensure_buf(buf, ATA_DATA_OFFSET)?;
    header.emit(buf)?;
    arg.emit(buf)
}

/// Hot path for targets answering into a fresh buffer: writes the response
/// header for `request` (see [`Header::response_to`]) and `arg` into
/// `buf[..36]`, returns [`ATA_DATA_OFFSET`]. Place read data at `buf[36..]`,
/// then [`finish_frame`](crate::finish_frame).
#[inline]
pub fn write_ata_response(
    buf: &mut [u8],
    request: &Header,
    own_mac: Mac,
    shelf: u16,
    slot: u8,
    arg: &AtaArg,
) -> Result<usize, WireError> {
    write_ata_request(buf, &request.response_to(own_mac, shelf, slot), arg)
}
