//! Any text → `Mac::from_str`; a parsed address prints and parses back to itself.
#![no_main]

use aoe_wire::Mac;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(mac) = text.parse::<Mac>() {
        let printed = mac.to_string();
        assert_eq!(printed.len(), 17);
        assert_eq!(printed.parse::<Mac>(), Ok(mac));
    }
});
