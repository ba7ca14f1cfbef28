//! AoE target addresses: shelf (major) and slot (minor), written `eS.L`.

use core::fmt;
use core::str::FromStr;

use crate::{BROADCAST_SHELF, BROADCAST_SLOT};

/// Shelf the Linux aoe driver ignores (it warns about shelf DIP switches set
/// to all ones), and the initiator pool refuses it for the same reason.
pub(crate) const LINUX_IGNORED_SHELF: u16 = 0x0FFF;

/// The address of one AoE target (an export or a blade): never a broadcast
/// value, never shelf 4095.
///
/// Written `eS.L` as the Linux driver names devices (`e7.0`); the `e` may be
/// left out (`7.0`). Shelf is 0..=65534 except 4095, slot 0..=254.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct AoeAddr {
    shelf: u16,
    slot: u8,
}

/// Why a shelf/slot pair or a string is not a target address.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AddrError {
    /// Not `eS.L` (or `S.L`) with decimal shelf and slot.
    Syntax,
    /// Shelf above 65535.
    ShelfRange,
    /// Slot above 255.
    SlotRange,
    /// Shelf 65535 (0xFFFF) addresses every shelf.
    BroadcastShelf,
    /// Shelf 4095 (0x0FFF), which the Linux aoe driver ignores.
    IgnoredShelf,
    /// Slot 255 (0xFF) addresses every slot.
    BroadcastSlot,
}

impl AddrError {
    /// True when the shelf is at fault (so a caller can point at that field).
    pub fn is_shelf(self) -> bool {
        matches!(
            self,
            AddrError::ShelfRange | AddrError::BroadcastShelf | AddrError::IgnoredShelf
        )
    }

    /// True when the slot is at fault.
    pub fn is_slot(self) -> bool {
        matches!(self, AddrError::SlotRange | AddrError::BroadcastSlot)
    }
}

impl fmt::Display for AddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddrError::Syntax => "expected an AoE address eSHELF.SLOT like e7.0",
            AddrError::ShelfRange => "shelf must be 0..=65534 (except 4095)",
            AddrError::SlotRange => "slot must be 0..=254",
            AddrError::BroadcastShelf => "shelf 65535 (0xFFFF) is the AoE broadcast address",
            AddrError::IgnoredShelf => "shelf 4095 (0x0FFF) is ignored by the Linux aoe driver",
            AddrError::BroadcastSlot => "slot 255 (0xFF) is the AoE broadcast address",
        })
    }
}

impl std::error::Error for AddrError {}

impl AoeAddr {
    /// The address `e{shelf}.{slot}`, refused if either part is a broadcast
    /// value or the shelf is 4095.
    pub const fn new(shelf: u16, slot: u8) -> Result<AoeAddr, AddrError> {
        if shelf == BROADCAST_SHELF {
            Err(AddrError::BroadcastShelf)
        } else if shelf == LINUX_IGNORED_SHELF {
            Err(AddrError::IgnoredShelf)
        } else if slot == BROADCAST_SLOT {
            Err(AddrError::BroadcastSlot)
        } else {
            Ok(AoeAddr { shelf, slot })
        }
    }

    /// Major address.
    #[inline]
    pub const fn shelf(self) -> u16 {
        self.shelf
    }

    /// Minor address.
    #[inline]
    pub const fn slot(self) -> u8 {
        self.slot
    }
}

impl FromStr for AoeAddr {
    type Err = AddrError;

    fn from_str(s: &str) -> Result<AoeAddr, AddrError> {
        let t = s.trim();
        let t = t.strip_prefix('e').unwrap_or(t);
        let (shelf, slot) = t.split_once('.').ok_or(AddrError::Syntax)?;
        let decimal = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
        if !decimal(shelf) || !decimal(slot) {
            return Err(AddrError::Syntax);
        }
        let shelf: u16 = shelf.parse().map_err(|_| AddrError::ShelfRange)?;
        let slot: u8 = slot.parse().map_err(|_| AddrError::SlotRange)?;
        AoeAddr::new(shelf, slot)
    }
}

impl fmt::Display for AoeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "e{}.{}", self.shelf, self.slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_whole_range() {
        for (text, shelf, slot) in [
            ("e7.0", 7, 0),
            ("7.0", 7, 0),
            (" e0.254 ", 0, 254),
            ("e65534.3", 65534, 3),
            ("e4094.1", 4094, 1),
            ("e4096.1", 4096, 1),
            ("e007.01", 7, 1),
        ] {
            let a: AoeAddr = text.parse().unwrap();
            assert_eq!((a.shelf(), a.slot()), (shelf, slot), "{text}");
        }
        assert_eq!(AoeAddr::new(7, 0).unwrap().to_string(), "e7.0");
        assert_eq!(
            "e65534.254".parse::<AoeAddr>().unwrap().to_string(),
            "e65534.254"
        );
    }

    #[test]
    fn refuses_broadcast_reserved_and_malformed() {
        for (text, why) in [
            ("e65535.0", AddrError::BroadcastShelf),
            ("e4095.0", AddrError::IgnoredShelf),
            ("e0.255", AddrError::BroadcastSlot),
            ("e65536.0", AddrError::ShelfRange),
            ("e70000.1", AddrError::ShelfRange),
            ("e1.256", AddrError::SlotRange),
            ("e1", AddrError::Syntax),
            ("e1.", AddrError::Syntax),
            ("e.1", AddrError::Syntax),
            ("e-1.2", AddrError::Syntax),
            ("e+1.2", AddrError::Syntax),
            ("e1.2.3", AddrError::Syntax),
            ("x1.2", AddrError::Syntax),
            ("ee1.2", AddrError::Syntax),
            ("e 1.2", AddrError::Syntax),
            ("", AddrError::Syntax),
        ] {
            assert_eq!(text.parse::<AoeAddr>(), Err(why), "{text:?}");
        }
        assert!(AddrError::IgnoredShelf.is_shelf() && !AddrError::IgnoredShelf.is_slot());
        assert!(AddrError::BroadcastSlot.is_slot() && !AddrError::BroadcastSlot.is_shelf());
        assert!(!AddrError::Syntax.is_shelf() && !AddrError::Syntax.is_slot());
    }

    #[test]
    fn new_applies_the_same_limits() {
        assert_eq!(AoeAddr::new(0xFFFF, 0), Err(AddrError::BroadcastShelf));
        assert_eq!(AoeAddr::new(0x0FFF, 0), Err(AddrError::IgnoredShelf));
        assert_eq!(AoeAddr::new(1, 0xFF), Err(AddrError::BroadcastSlot));
        assert!(AoeAddr::new(0, 0).is_ok());
    }
}
