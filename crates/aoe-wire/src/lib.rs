//! # aoe-wire — ATA over Ethernet frames, parsed and built in place
//!
//! This crate holds the AoE wire format (AoE spec r11, as spoken by the Linux
//! `aoe` driver, vblade and aoetools) and nothing else: no sockets, no clocks,
//! no allocation per frame. Everything works on caller-provided byte slices.
//!
//! * [`parse`] takes a received Ethernet frame and returns a [`Packet`]: the
//!   common [`Header`] plus a [`Message`] whose variable parts (ATA data, config
//!   string, directive and MAC lists) borrow from the frame.
//! * Every repr has `emit` (write into a `&mut [u8]`, return the frame length)
//!   and `buffer_len` (how many bytes `emit` needs). Emitted frames are always
//!   zero-padded to [`MIN_FRAME`] (60) bytes, because software links (veth, tap,
//!   bridges) do not pad and aoetools drop shorter frames.
//! * Hot-path helpers avoid building a whole repr: [`write_ata_request`] writes
//!   header + ATA argument and returns [`ATA_DATA_OFFSET`] so the payload can be
//!   placed in the buffer directly; [`respond_in_place`] turns a received
//!   request into its response header, [`write_ata_response`] writes one into
//!   a fresh buffer; [`finish_frame`] pads.
//! * [`Identify`] builds and parses the 512-byte ATA IDENTIFY DEVICE block.
//! * [`AoeAddr`] is a target address `eS.L` (never a broadcast value), [`Mac`]
//!   an Ethernet address; both parse from and print as text (and, with the
//!   `serde` feature, travel as text).
//! * The [`ata`] module holds ATA opcodes, status and error bits.
//!
//! ```
//! use aoe_wire::{ata, parse, write_ata_request, finish_frame, AtaArg, Command, Header, Mac, Message};
//!
//! let me: Mac = "02:00:00:00:00:01".parse().unwrap();
//! let blade: Mac = "02:00:00:00:00:02".parse().unwrap();
//! let mut buf = [0u8; 1060];
//!
//! // Initiator: a 2-sector WRITE EXT, payload placed straight into the frame.
//! let header = Header::request(blade, me, 7, 3, Command::Ata, 0x0001_0000);
//! let arg = AtaArg::read_write(true, 4096, 2, true).unwrap();
//! let off = write_ata_request(&mut buf, &header, &arg).unwrap();
//! buf[off..off + 1024].fill(0xAB);
//! let len = finish_frame(&mut buf, off + 1024).unwrap();
//!
//! // Target: parse it, borrowing the data from the frame.
//! let packet = parse(&buf[..len]).unwrap();
//! let Message::Ata(req) = packet.message else { unreachable!() };
//! assert_eq!(req.arg.effective_lba(), 4096);
//! assert_eq!(req.data.len(), 1024);
//! assert!(req.arg.aflags.write());
//! let reply = req.arg.reply(ata::STATUS_OK, 0);
//! assert!(!ata::is_failed_status(reply.cmd_status));
//! ```
//!
//! ## Strict when sending, lenient when receiving
//!
//! Emitting refuses anything the spec forbids (values that do not fit,
//! counts that disagree with lists, config strings over 1024 bytes) and always
//! writes reserved bits and bytes as zero, version 1 unless told otherwise, and
//! padding as zero. Parsing follows what real peers do:
//!
//! * reserved bits (byte 14 bits 0–1, AFlags bits 7/5/3/2, reserved bytes) are
//!   ignored, so e.g. aoeping's stray flag bit does not reject its frames;
//! * the version nibble is reported but never checked;
//! * the AoE error code is only read when the E flag is set;
//! * frames longer than their content (padding, filler, probe payload) are
//!   accepted; frames shorter than 60 bytes are accepted too if every field
//!   they declare is present (vblade does not pad);
//! * every count or length field is validated against the bytes actually in
//!   the frame ([`WireError`] says which field, what it declared, what was
//!   there);
//! * a Query Config *read request* ignores its config string length if it is
//!   invalid (aoeping sends a 1024-byte filler, aoecfg a stale length) and
//!   yields an empty string instead of an error;
//! * in a MAC Mask request the response-only MError byte is ignored;
//! * an error response (E set) whose argument is cut short (ggaoed shortens
//!   error replies to the bare 24-byte header) parses as [`Message::Bare`] so
//!   the error code is not lost.

mod addr;
mod ata_msg;
mod code;
mod config;
mod error;
mod header;
mod identify;
mod list;
mod mac;
mod mask;
mod packet;
mod reserve;
#[cfg(feature = "serde")]
mod text_serde;

pub mod ata;

pub use addr::{AddrError, AoeAddr};
pub use ata_msg::{write_ata_request, write_ata_response, AFlags, Ata, AtaArg};
pub use config::{CCmd, QueryConfig};
pub use error::WireError;
pub use header::{reserved_header_bits, respond_in_place, Command, ErrorCode, Header};
pub use identify::{ata_string, Identify, IDENTIFY_LEN};
pub use mac::{Mac, MacParseError};
pub use mask::{DCmd, Directive, DirectiveIter, Directives, MCmd, MError, MacMask};
pub use packet::{parse, Message, Packet};
pub use reserve::{MacIter, MacList, RCmd, Reserve};

/// EtherType registered for AoE.
pub const ETHERTYPE_AOE: u16 = 0x88A2;
/// Length of the Ethernet II header (dst, src, EtherType).
pub const ETH_HEADER_LEN: usize = 14;
/// Offset where the command-specific argument starts (end of the AoE header).
pub const AOE_HEADER_END: usize = 24;
/// Offset where ATA data starts (AoE header + 12-byte ATA argument).
pub const ATA_DATA_OFFSET: usize = 36;
/// Minimum Ethernet frame length without FCS; emitted frames are padded to it.
pub const MIN_FRAME: usize = 60;
/// Longest config string a Query Config message may carry.
pub const MAX_CONFIG_LEN: usize = 1024;
/// Major (shelf) value that addresses every shelf.
pub const BROADCAST_SHELF: u16 = 0xFFFF;
/// Minor (slot) value that addresses every slot.
pub const BROADCAST_SLOT: u8 = 0xFF;
/// Broadcast destination MAC.
pub const BROADCAST_MAC: Mac = Mac::BROADCAST;
/// AoE protocol version written in every emitted header and config argument.
pub const AOE_VERSION: u8 = 1;
/// Bytes per ATA sector.
pub const SECTOR_SIZE: usize = 512;
/// Sectors per frame a peer means when it advertises (or computes) 0.
pub const DEFAULT_SECTOR_COUNT: u8 = 2;

/// Sectors per frame an interface MTU allows: `floor((mtu - 36) / 512)`,
/// clamped to 255 (Sector Count is one byte). 36 is the full AoE+ATA header
/// including the Ethernet header, as Linux and vblade compute it.
///
/// The result may be 0 for a tiny MTU; pass it through
/// [`effective_sector_count`] before using it as a limit.
#[inline]
pub const fn sectors_per_frame(mtu: u32) -> u8 {
    let mtu = mtu as usize;
    if mtu <= ATA_DATA_OFFSET {
        return 0;
    }
    let n = (mtu - ATA_DATA_OFFSET) / SECTOR_SIZE;
    if n > 255 {
        255
    } else {
        n as u8
    }
}

/// The sector limit a peer means by an advertised (or computed) Sector Count:
/// 0 stands for the backward-compatible default of 2 sectors (1024 bytes).
#[inline]
pub const fn effective_sector_count(advertised: u8) -> u8 {
    if advertised == 0 {
        DEFAULT_SECTOR_COUNT
    } else {
        advertised
    }
}

/// Frame length after padding `len` content bytes to [`MIN_FRAME`].
#[inline]
pub const fn padded_len(len: usize) -> usize {
    if len < MIN_FRAME {
        MIN_FRAME
    } else {
        len
    }
}

/// Zero-pads the frame whose content is `buf[..len]` up to [`MIN_FRAME`]
/// bytes and returns the length to send (`max(len, 60)`).
///
/// Errors if `buf` cannot hold the padded frame.
#[inline]
pub fn finish_frame(buf: &mut [u8], len: usize) -> Result<usize, WireError> {
    let total = padded_len(len);
    if buf.len() < total {
        return Err(WireError::BufferTooSmall {
            need: total,
            have: buf.len(),
        });
    }
    buf[len..total].fill(0);
    Ok(total)
}

/// Writes a whole frame into `buf`: checks it holds `need` bytes, writes
/// `header`, lets `arg` write the argument (and data) from offset 24 and
/// returns the padded length. Every message's `emit` is this.
#[inline]
pub(crate) fn emit_frame(
    header: &Header,
    buf: &mut [u8],
    need: usize,
    arg: impl FnOnce(&mut [u8]) -> Result<usize, WireError>,
) -> Result<usize, WireError> {
    ensure_buf(buf, need)?;
    header.emit(buf)?;
    let end = arg(buf)?;
    finish_frame(buf, end)
}

/// Checks `buf` can hold `need` bytes.
#[inline]
pub(crate) fn ensure_buf(buf: &[u8], need: usize) -> Result<(), WireError> {
    if buf.len() < need {
        Err(WireError::BufferTooSmall {
            need,
            have: buf.len(),
        })
    } else {
        Ok(())
    }
}

/// Checks `frame` holds `need` bytes for `part`.
#[inline]
pub(crate) fn ensure_frame(frame: &[u8], part: &'static str, need: usize) -> Result<(), WireError> {
    if frame.len() < need {
        Err(WireError::Truncated {
            part,
            need,
            have: frame.len(),
        })
    } else {
        Ok(())
    }
}

#[inline]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
pub(crate) fn put_be16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}
