//! Any bytes → `Identify::parse`. What parses and is emittable must come back
//! unchanged; the string accessors must not panic on arbitrary bytes.
#![no_main]

use aoe_wire::{Identify, IDENTIFY_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(id) = Identify::parse(data) else {
        assert!(data.len() < IDENTIFY_LEN);
        return;
    };
    let _ = (id.serial_str(), id.firmware_str(), id.model_str());
    let mut out = [0u8; IDENTIFY_LEN];
    if id.emit(&mut out).is_ok() {
        assert_eq!(Identify::parse(&out).expect("own block parses"), id);
        assert_eq!(out.iter().fold(0u8, |a, &b| a.wrapping_add(b)), 0);
    } else {
        // Only a capacity beyond the advertised addressing mode is refused.
        let max = if id.lba48 { (1u64 << 48) - 1 } else { 0x0FFF_FFFF };
        assert!(id.sectors > max);
    }
});
