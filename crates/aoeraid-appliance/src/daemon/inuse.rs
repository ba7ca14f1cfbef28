//! Does a device look in use? `create` reads the head of every member and refuses
//! (unless forced) anything that carries an aoeraid superblock, a known filesystem,
//! volume-manager or partition-table signature, or any non-zero byte in the area
//! our metadata would overwrite.

use crate::core::SpareLabel;
use raid_engine::superblock::{SbError, Superblock, SB_BYTES, SB_OFFSET};
use raid_engine::SECTOR;

/// Sectors `create` reads from the start of each member: the 1 MiB our metadata
/// may use plus btrfs's superblock at 64 KiB (inside it) — 1 MiB covers all.
pub(crate) const PROBE_SECTORS: u32 = 2048;

/// The part of the probe our superblock and bitmap overwrite: a non-zero byte
/// here means someone wrote it.
const META_AREA_BYTES: usize = 64 * 1024;

fn hex(u: &[u8; 16]) -> String {
    u.iter().map(|b| format!("{b:02x}")).collect()
}

/// Known signatures: (byte offset, magic, what it is).
const SIGNATURES: &[(usize, &[u8], &str)] = &[
    (1080, &[0x53, 0xEF], "an ext2/3/4 filesystem"),
    (0, b"XFSB", "an XFS filesystem"),
    (65600, b"_BHRfS_M", "a btrfs filesystem"),
    // GFS2 puts its superblock 64 KiB in, past the 64 KiB our metadata uses, so
    // the zero check alone would miss a cluster's filesystem.
    (65536, &[0x01, 0x16, 0x19, 0x70], "a GFS2 filesystem"),
    (512, b"LABELONE", "an LVM physical volume"),
    (512, b"EFI PART", "a GPT partition table"),
    (4086, b"SWAPSPACE2", "a swap area"),
    (
        4096,
        &[0xFC, 0x4E, 0x2B, 0xA9],
        "a Linux md (v1.1/1.2) superblock",
    ),
    (0, &[0xFC, 0x4E, 0x2B, 0xA9], "a Linux md (v1.1) superblock"),
    (3, b"NTFS    ", "an NTFS filesystem"),
    (32769, b"CD001", "an ISO 9660 image"),
];

/// Why a device must not be overwritten, or None if it looks blank.
pub(crate) fn in_use_reason(head: &[u8]) -> Option<String> {
    let sb_at = SB_OFFSET as usize * SECTOR;
    if head.len() >= sb_at + SB_BYTES {
        let area = &head[sb_at..sb_at + SB_BYTES];
        if let Some(l) = SpareLabel::decode(area) {
            return Some(format!(
                "carries the aoeraid spare label of spare group `{}` (`aoeraid spare-remove` \
                 wipes it)",
                l.group
            ));
        }
        if SpareLabel::looks_like(area) {
            return Some("carries a damaged aoeraid spare label".into());
        }
        match Superblock::decode(&head[sb_at..sb_at + SB_BYTES]) {
            Ok(sb) => {
                let role = if sb.role == raid_engine::superblock::ROLE_SPARE {
                    "spare".to_string()
                } else {
                    format!("member {}", sb.role)
                };
                return Some(format!(
                    "carries the aoeraid superblock of array `{}` ({}, {role}, events {})",
                    sb.name,
                    hex(&sb.array_uuid),
                    sb.events
                ));
            }
            Err(SbError::Unknown) => {}
            Err(e) => return Some(format!("carries a damaged aoeraid superblock ({e})")),
        }
    }
    for &(at, magic, what) in SIGNATURES {
        if head.len() >= at + magic.len() && &head[at..at + magic.len()] == magic {
            return Some(format!("looks like {what}"));
        }
    }
    // An MBR boot signature with at least one partition entry filled in.
    if head.len() >= 512
        && head[510] == 0x55
        && head[511] == 0xAA
        && head[446..510].iter().any(|&b| b != 0)
    {
        return Some("carries a partition table (MBR)".into());
    }
    let meta = &head[..head.len().min(META_AREA_BYTES)];
    if let Some(pos) = meta.iter().position(|&b| b != 0) {
        return Some(format!(
            "has data in its first {} KiB (non-zero byte at offset {pos})",
            META_AREA_BYTES / 1024
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_is_free() {
        assert_eq!(
            in_use_reason(&vec![0u8; PROBE_SECTORS as usize * SECTOR]),
            None
        );
    }

    #[test]
    fn signatures_are_named() {
        let mut b = vec![0u8; PROBE_SECTORS as usize * SECTOR];
        b[1080] = 0x53;
        b[1081] = 0xEF;
        assert!(in_use_reason(&b).unwrap().contains("ext2/3/4"));
        let mut b = vec![0u8; PROBE_SECTORS as usize * SECTOR];
        b[65600..65608].copy_from_slice(b"_BHRfS_M");
        assert!(in_use_reason(&b).unwrap().contains("btrfs"));
        let mut b = vec![0u8; PROBE_SECTORS as usize * SECTOR];
        b[65536..65540].copy_from_slice(&0x0116_1970u32.to_be_bytes());
        assert_eq!(
            in_use_reason(&b).as_deref(),
            Some("looks like a GFS2 filesystem")
        );
        let mut b = vec![0u8; PROBE_SECTORS as usize * SECTOR];
        b[20_000] = 1;
        assert!(in_use_reason(&b).unwrap().contains("offset 20000"));
    }

    #[test]
    fn damaged_superblock_is_refused() {
        let mut b = vec![0u8; PROBE_SECTORS as usize * SECTOR];
        b[4096..4104].copy_from_slice(&raid_engine::superblock::MAGIC);
        assert!(in_use_reason(&b)
            .unwrap()
            .contains("damaged aoeraid superblock"));
    }
}
