//! Ethernet MAC addresses.

use core::fmt;
use core::str::FromStr;

/// A 48-bit Ethernet MAC address, stored in wire order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: Mac = Mac([0xff; 6]);
    /// `00:00:00:00:00:00`.
    pub const ZERO: Mac = Mac([0; 6]);

    /// The six address bytes in wire order.
    #[inline]
    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// Reads a MAC from the first six bytes of `bytes`; `None` if shorter.
    #[inline]
    pub fn from_slice(bytes: &[u8]) -> Option<Mac> {
        let b: [u8; 6] = bytes.get(..6)?.try_into().ok()?;
        Some(Mac(b))
    }

    #[inline]
    pub const fn is_broadcast(&self) -> bool {
        matches!(self.0, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
    }

    /// True for group addresses (I/G bit set), which includes broadcast.
    #[inline]
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// True for a unicast address other than all-zero.
    #[inline]
    pub const fn is_unicast(&self) -> bool {
        !self.is_multicast() && !matches!(self.0, [0, 0, 0, 0, 0, 0])
    }
}

impl From<[u8; 6]> for Mac {
    #[inline]
    fn from(b: [u8; 6]) -> Mac {
        Mac(b)
    }
}

impl From<Mac> for [u8; 6] {
    #[inline]
    fn from(m: Mac) -> [u8; 6] {
        m.0
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a string is not a MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacParseError {
    /// Fewer or more than six octets.
    OctetCount { found: usize },
    /// Octet number `index` (0-based) is not one or two hex digits.
    BadOctet { index: usize },
    /// Separators are mixed or not `:` / `-`.
    BadSeparator,
}

impl fmt::Display for MacParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const FORM: &str = "expected six hex octets like aa:bb:cc:dd:ee:ff";
        match self {
            MacParseError::OctetCount { found } => {
                write!(f, "invalid MAC address: {found} octets, {FORM}")
            }
            MacParseError::BadOctet { index } => {
                write!(
                    f,
                    "invalid MAC address: octet {} is not hex, {FORM}",
                    index + 1
                )
            }
            MacParseError::BadSeparator => {
                write!(
                    f,
                    "invalid MAC address: separators must all be ':' or all '-', {FORM}"
                )
            }
        }
    }
}

impl std::error::Error for MacParseError {}

impl FromStr for Mac {
    type Err = MacParseError;

    /// Accepts `aa:bb:cc:dd:ee:ff` or `aa-bb-cc-dd-ee-ff` (hex, any case,
    /// one or two digits per octet).
    fn from_str(s: &str) -> Result<Mac, MacParseError> {
        let s = s.trim();
        let sep = if s.contains(':') { ':' } else { '-' };
        if sep == ':' && s.contains('-') {
            return Err(MacParseError::BadSeparator);
        }
        let mut out = [0u8; 6];
        let mut n = 0;
        for (index, part) in s.split(sep).enumerate() {
            if index >= 6 {
                return Err(MacParseError::OctetCount {
                    found: s.split(sep).count(),
                });
            }
            let ok =
                !part.is_empty() && part.len() <= 2 && part.bytes().all(|c| c.is_ascii_hexdigit());
            if !ok {
                return Err(MacParseError::BadOctet { index });
            }
            out[index] =
                u8::from_str_radix(part, 16).map_err(|_| MacParseError::BadOctet { index })?;
            n = index + 1;
        }
        if n != 6 {
            return Err(MacParseError::OctetCount { found: n });
        }
        Ok(Mac(out))
    }
}
