//! Any text → `AoeAddr::from_str`; a parsed address is never a broadcast value
//! or shelf 4095, prints as `eS.L` and parses back to itself, and agrees with
//! `AoeAddr::new` on the same numbers.
#![no_main]

use aoe_wire::{AoeAddr, BROADCAST_SHELF, BROADCAST_SLOT};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(addr) = text.parse::<AoeAddr>() {
        assert_ne!(addr.shelf(), BROADCAST_SHELF);
        assert_ne!(addr.shelf(), 0x0FFF);
        assert_ne!(addr.slot(), BROADCAST_SLOT);
        assert_eq!(AoeAddr::new(addr.shelf(), addr.slot()), Ok(addr));
        let printed = addr.to_string();
        assert_eq!(printed, format!("e{}.{}", addr.shelf(), addr.slot()));
        assert_eq!(printed.parse::<AoeAddr>(), Ok(addr));
    }
    if let [a, b, c, ..] = data {
        let (shelf, slot) = (u16::from_be_bytes([*a, *b]), *c);
        let text = format!("e{shelf}.{slot}");
        assert_eq!(text.parse::<AoeAddr>(), AoeAddr::new(shelf, slot));
    }
});
