//! Shared fixture helpers.

use aoe_wire::{Mac, WireError};

pub(crate) const INITIATOR: Mac = Mac([0x02, 0x00, 0x00, 0x00, 0x00, 0x01]);
pub(crate) const TARGET: Mac = Mac([0x02, 0x00, 0x00, 0x00, 0x00, 0x02]);

/// The tag of every [`frame`].
pub(crate) const TAG: u32 = 0x8000_0001;

/// Header bytes (dst TARGET, src INITIATOR unless a response, e7.3, [`TAG`])
/// followed by `arg`, not padded.
pub(crate) fn frame(byte14: u8, error: u8, command: u8, arg: &[u8]) -> Vec<u8> {
    let (dst, src) = if byte14 & 0x08 != 0 {
        (INITIATOR, TARGET)
    } else {
        (TARGET, INITIATOR)
    };
    let mut f = Vec::with_capacity(60 + arg.len());
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&[
        0x88, 0xA2, byte14, error, 0x00, 0x07, 0x03, command, 0x80, 0x00, 0x00, 0x01,
    ]);
    f.extend_from_slice(arg);
    f
}

/// `f` zero-padded to 60 bytes.
pub(crate) fn padded(mut f: Vec<u8>) -> Vec<u8> {
    if f.len() < 60 {
        f.resize(60, 0);
    }
    f
}

/// Checks that `emit` writes exactly the fixture frame `f`, padding
/// included, and says so in its length.
pub(crate) fn assert_emits(f: &[u8], emit: impl FnOnce(&mut [u8]) -> Result<usize, WireError>) {
    let mut buf = vec![0u8; f.len()];
    assert_eq!(emit(&mut buf), Ok(f.len()));
    assert_eq!(buf, f);
}

/// The message of `packet` as `Message::$variant`; any other message fails
/// the test, naming what came instead.
macro_rules! message {
    ($packet:expr, $variant:ident) => {
        match $packet.message {
            aoe_wire::Message::$variant(m) => m,
            other => panic!("not {}: {other:?}", stringify!($variant)),
        }
    };
}
pub(crate) use message;
