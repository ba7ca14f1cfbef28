//! Frames the tests build by hand: AoE requests for the raw client, and
//! numbered Ethernet frames for the io_uring tests and benches.

/// The AoE ethertype.
pub const ETH_P_AOE: u16 = 0x88A2;

/// AoE request header: dst, src, version 1, shelf, slot, command, tag.
pub fn header(dst: [u8; 6], src: [u8; 6], shelf: u16, slot: u8, cmd: u8, tag: u32) -> Vec<u8> {
    let mut f = Vec::with_capacity(1100);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ETH_P_AOE.to_be_bytes());
    f.push(0x10);
    f.push(0);
    f.extend_from_slice(&shelf.to_be_bytes());
    f.push(slot);
    f.push(cmd);
    f.extend_from_slice(&tag.to_be_bytes());
    f
}

pub fn pad(mut f: Vec<u8>) -> Vec<u8> {
    if f.len() < 60 {
        f.resize(60, 0);
    }
    f
}

/// ATA READ EXT / WRITE EXT (LBA48) request.
#[allow(clippy::too_many_arguments)]
pub fn ata_rw(
    src: [u8; 6],
    shelf: u16,
    slot: u8,
    tag: u32,
    write: bool,
    lba: u64,
    n: u8,
    data: &[u8],
) -> Vec<u8> {
    let mut f = header([0xff; 6], src, shelf, slot, 0, tag);
    f.push(if write { 0x41 } else { 0x40 });
    f.push(0);
    f.push(n);
    f.push(if write { 0x34 } else { 0x24 });
    f.extend_from_slice(&lba.to_le_bytes()[..6]);
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(data);
    pad(f)
}

/// IDENTIFY request.
pub fn identify(src: [u8; 6], shelf: u16, slot: u8, tag: u32) -> Vec<u8> {
    let mut f = header([0xff; 6], src, shelf, slot, 0, tag);
    f.extend_from_slice(&[0, 0, 1, 0xEC, 0, 0, 0, 0xA0, 0, 0, 0, 0]);
    pad(f)
}

/// Capacity (words 100–103) from an IDENTIFY reply frame.
pub fn identify_sectors(reply: &[u8]) -> u64 {
    let d = &reply[36..];
    (0..4)
        .map(|i| u64::from(u16::from_le_bytes([d[200 + 2 * i], d[201 + 2 * i]])) << (16 * i))
        .sum()
}

/// MAC Mask edit with (dcmd, mac) directives.
pub fn mask_edit(src: [u8; 6], shelf: u16, slot: u8, tag: u32, dirs: &[(u8, [u8; 6])]) -> Vec<u8> {
    let mut f = header([0xff; 6], src, shelf, slot, 2, tag);
    f.extend_from_slice(&[0, 1, 0, dirs.len() as u8]);
    for (d, m) in dirs {
        f.push(0);
        f.push(*d);
        f.extend_from_slice(m);
    }
    pad(f)
}

/// Reserve/Release with rcmd and MAC list.
pub fn reserve(
    src: [u8; 6],
    shelf: u16,
    slot: u8,
    tag: u32,
    rcmd: u8,
    macs: &[[u8; 6]],
) -> Vec<u8> {
    let mut f = header([0xff; 6], src, shelf, slot, 3, tag);
    f.push(rcmd);
    f.push(macs.len() as u8);
    for m in macs {
        f.extend_from_slice(m);
    }
    pad(f)
}

/// Query Config read.
pub fn config_read(src: [u8; 6], shelf: u16, slot: u8, tag: u32) -> Vec<u8> {
    let mut f = header([0xff; 6], src, shelf, slot, 1, tag);
    f.extend_from_slice(&[0; 8]);
    pad(f)
}

/// An Ethernet frame: dst, src, ethertype, then `payload_len` bytes derived from `seq`.
pub fn frame(dst: [u8; 6], src: [u8; 6], ethertype: u16, seq: u32, payload_len: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload_len);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    for i in 4..payload_len {
        f.push((seq as usize).wrapping_mul(31).wrapping_add(i) as u8);
    }
    f
}

/// The sequence number stored by `frame`.
pub fn seq_of(f: &[u8]) -> u32 {
    u32::from_be_bytes([f[14], f[15], f[16], f[17]])
}
