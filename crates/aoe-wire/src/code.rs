//! One-byte code fields (AoE error, MAC Mask MCmd/MError/DCmd, Reserve/Release RCmd):
//! named codes plus `Unknown(u8)` for any other value a frame carries. Each enum's
//! codes are written once, in its declaration, and both conversions follow from them,
//! so decoding and encoding cannot disagree and every byte survives a round trip.

/// Declares `$name` with the listed variants and `Unknown(u8)`, `From<u8>` (a code not
/// listed becomes `Unknown`) and `From<$name> for u8`.
macro_rules! byte_code {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident = $code:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// Any value not named above.
            Unknown(u8),
        }

        impl From<u8> for $name {
            #[inline]
            fn from(v: u8) -> $name {
                match v {
                    $($code => $name::$variant,)+
                    other => $name::Unknown(other),
                }
            }
        }

        impl From<$name> for u8 {
            #[inline]
            fn from(c: $name) -> u8 {
                match c {
                    $($name::$variant => $code,)+
                    $name::Unknown(v) => v,
                }
            }
        }
    };
}

pub(crate) use byte_code;

#[cfg(test)]
mod tests {
    use crate::{DCmd, ErrorCode, MCmd, MError, RCmd};

    #[test]
    fn every_byte_survives_a_round_trip() {
        for v in 0..=u8::MAX {
            assert_eq!(u8::from(ErrorCode::from(v)), v);
            assert_eq!(u8::from(MCmd::from(v)), v);
            assert_eq!(u8::from(MError::from(v)), v);
            assert_eq!(u8::from(DCmd::from(v)), v);
            assert_eq!(u8::from(RCmd::from(v)), v);
        }
        assert_eq!(ErrorCode::from(6), ErrorCode::TargetReserved);
        assert_eq!(ErrorCode::from(0), ErrorCode::Unknown(0));
    }
}
