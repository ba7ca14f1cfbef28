//! ATA register values used over AoE: opcodes, status and error bits.

/// READ SECTORS (LBA28).
pub const READ: u8 = 0x20;
/// READ SECTORS EXT (LBA48).
pub const READ_EXT: u8 = 0x24;
/// WRITE SECTORS (LBA28).
pub const WRITE: u8 = 0x30;
/// WRITE SECTORS EXT (LBA48).
pub const WRITE_EXT: u8 = 0x34;
/// IDENTIFY DEVICE (one 512-byte sector in).
pub const IDENTIFY: u8 = 0xEC;
/// FLUSH CACHE.
pub const FLUSH: u8 = 0xE7;
/// FLUSH CACHE EXT.
pub const FLUSH_EXT: u8 = 0xEA;
/// CHECK POWER MODE.
pub const CHECK_POWER: u8 = 0xE5;
/// SMART.
pub const SMART: u8 = 0xB0;
/// SET FEATURES.
pub const SET_FEATURES: u8 = 0xEF;

/// Status: busy.
pub const STATUS_BSY: u8 = 0x80;
/// Status: device ready.
pub const STATUS_DRDY: u8 = 0x40;
/// Status: device fault.
pub const STATUS_DF: u8 = 0x20;
/// Status: data request.
pub const STATUS_DRQ: u8 = 0x08;
/// Status: error (Error register valid).
pub const STATUS_ERR: u8 = 0x01;

/// Error: uncorrectable data (media / EIO).
pub const ERROR_UNC: u8 = 0x40;
/// Error: ID not found (LBA out of range).
pub const ERROR_IDNF: u8 = 0x10;
/// Error: command aborted.
pub const ERROR_ABRT: u8 = 0x04;

/// Status of a successfully completed command.
pub const STATUS_OK: u8 = STATUS_DRDY;
/// Status of a failed command (DRDY | ERR).
pub const STATUS_FAILED: u8 = STATUS_DRDY | STATUS_ERR;

/// Linux's test for a failed ATA response: any of BSY, DF, DRQ, ERR set.
#[inline]
pub const fn is_failed_status(status: u8) -> bool {
    status & (STATUS_BSY | STATUS_DF | STATUS_DRQ | STATUS_ERR) != 0
}

/// True for the LBA28 read/write opcodes, whose LBA is the low 28 bits with
/// the device register in lba3.
#[inline]
pub const fn is_lba28_opcode(cmd: u8) -> bool {
    matches!(cmd, READ | WRITE)
}

/// True for the four read/write opcodes.
#[inline]
pub const fn is_read_write(cmd: u8) -> bool {
    matches!(cmd, READ | READ_EXT | WRITE | WRITE_EXT)
}

/// True for the opcodes that write data to the device.
#[inline]
pub const fn is_write(cmd: u8) -> bool {
    matches!(cmd, WRITE | WRITE_EXT)
}
