//! Any bytes → `parse`. A frame that parses must emit; the emitted frame must
//! parse back to the same packet, exactly when the input needed no padding
//! (≥ 60 bytes, not a bare error reply), and the result of one
//! parse → emit → parse round must be a fixpoint.
#![no_main]

use aoe_wire::{parse, Message, Packet, MIN_FRAME};
use libfuzzer_sys::fuzz_target;

fn emit(packet: &Packet<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; packet.buffer_len()];
    let n = packet
        .emit(&mut buf)
        .unwrap_or_else(|e| panic!("parsed packet does not emit: {e}: {packet:?}"));
    assert_eq!(n, buf.len(), "buffer_len disagrees with emit");
    assert!(n >= MIN_FRAME, "emitted frame not padded");
    buf
}

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = parse(data) else {
        return;
    };
    let first = emit(&packet);
    let again = parse(&first).unwrap_or_else(|e| panic!("emitted frame does not parse: {e}"));
    assert_eq!(again.header, packet.header);
    let padded = data.len() < MIN_FRAME || matches!(packet.message, Message::Bare(_));
    if !padded {
        assert_eq!(again, packet);
    }
    // Padding (and dropped reserved bits of a bare reply) may change the
    // first round; after it the frame is canonical.
    let second = emit(&again);
    if !padded {
        assert_eq!(second, first);
    }
    let third = parse(&second).expect("canonical frame parses");
    assert_eq!(third, again);
    assert_eq!(emit(&third), second);
});
