//! Any bytes → `Superblock::decode`, the parser of what assembly reads from every
//! candidate member (sector 8, 4 KiB). It must never panic; a decoded superblock
//! encodes to a block that decodes to the same superblock (and encodes again to the
//! same bytes); a block whose checksum does not match is refused as `Corrupt`.
//!
//! Random bytes almost never carry the magic and a good CRC32C, so each input is
//! also tried *sealed*: padded to 4 KiB with the magic and a correct checksum put in,
//! which takes it past the checksum to the field checks. The sealed block with one
//! bit flipped (the bit chosen by the input) must then be refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use raid_engine::superblock::{SbError, Superblock, MAGIC, SB_BYTES};

const CRC_AT: usize = SB_BYTES - 4;

fn check(b: &[u8]) {
    match Superblock::decode(b) {
        Ok(sb) => {
            let again = sb.encode();
            assert_eq!(again.len(), SB_BYTES);
            assert_eq!(Superblock::decode(&again).as_ref(), Ok(&sb), "round trip");
            assert_eq!(
                Superblock::decode(&again).map(|s| s.encode()),
                Ok(again),
                "encode is a fixpoint"
            );
            assert_eq!(sb.slots.len(), sb.raid_disks as usize);
        }
        Err(SbError::Short) => assert!(b.len() < SB_BYTES),
        Err(e) => {
            // Every refusal renders as an operator-facing reason.
            assert!(!e.to_string().is_empty());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    let mut sealed = [0u8; SB_BYTES];
    let n = data.len().min(SB_BYTES);
    sealed[..n].copy_from_slice(&data[..n]);
    sealed[..8].copy_from_slice(&MAGIC);
    let crc = crc32c::crc32c(&sealed[..CRC_AT]);
    sealed[CRC_AT..].copy_from_slice(&crc.to_le_bytes());
    check(&sealed);
    assert!(
        !matches!(
            Superblock::decode(&sealed),
            Err(SbError::Corrupt | SbError::Unknown | SbError::Short)
        ),
        "a sealed block passes the magic and checksum"
    );
    // One bit flipped past the magic: CRC32C catches every single-bit error.
    let bit = (crc as usize) % ((SB_BYTES - 8) * 8);
    sealed[8 + bit / 8] ^= 1 << (bit % 8);
    assert_eq!(Superblock::decode(&sealed), Err(SbError::Corrupt));
});
