//! Member addresses: an AoE blade `eS.L` (shelf.slot, as the Linux aoe driver
//! names them) or a local file / block device `file:/path`.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// AoE broadcast shelf (major) value: matches every shelf, never an address.
pub const BROADCAST_SHELF: u16 = 0xFFFF;
/// AoE broadcast slot (minor) value.
pub const BROADCAST_SLOT: u8 = 0xFF;
/// The Linux aoe driver ignores targets that answer with this shelf.
pub const LINUX_IGNORED_SHELF: u16 = 0x0FFF;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MemberAddr {
    Blade { shelf: u16, slot: u8 },
    File(PathBuf),
}

impl MemberAddr {
    /// The shelf of a blade member; files have none.
    pub fn shelf(&self) -> Option<u16> {
        match self {
            MemberAddr::Blade { shelf, .. } => Some(*shelf),
            MemberAddr::File(_) => None,
        }
    }

    pub fn is_blade(&self) -> bool {
        matches!(self, MemberAddr::Blade { .. })
    }
}

impl FromStr for MemberAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if let Some(path) = t.strip_prefix("file:") {
            if !path.starts_with('/') {
                return Err(format!(
                    "invalid member `{s}`: a file member needs an absolute path, e.g. file:/srv/disk0.img"
                ));
            }
            return Ok(MemberAddr::File(PathBuf::from(path)));
        }
        let bad = || {
            format!(
                "invalid member `{s}`: expected an AoE blade eSHELF.SLOT (e.g. e0.1) or file:/path"
            )
        };
        let rest = t.strip_prefix('e').ok_or_else(bad)?;
        let (shelf, slot) = rest.split_once('.').ok_or_else(bad)?;
        let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
        if !digits(shelf) || !digits(slot) {
            return Err(bad());
        }
        let shelf: u16 = shelf
            .parse()
            .map_err(|_| format!("invalid member `{s}`: shelf must be 0..65534"))?;
        let slot: u8 = slot
            .parse()
            .map_err(|_| format!("invalid member `{s}`: slot must be 0..254"))?;
        if shelf == BROADCAST_SHELF || slot == BROADCAST_SLOT {
            return Err(format!(
                "invalid member `{s}`: shelf 65535 and slot 255 are AoE broadcast values, not addresses"
            ));
        }
        Ok(MemberAddr::Blade { shelf, slot })
    }
}

impl fmt::Display for MemberAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemberAddr::Blade { shelf, slot } => write!(f, "e{shelf}.{slot}"),
            MemberAddr::File(p) => write!(f, "file:{}", p.display()),
        }
    }
}

impl<'de> Deserialize<'de> for MemberAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = MemberAddr;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member address like e0.1 or file:/path")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<MemberAddr, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

impl Serialize for MemberAddr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_blades_and_files() {
        assert_eq!(
            "e1.3".parse::<MemberAddr>().unwrap(),
            MemberAddr::Blade { shelf: 1, slot: 3 }
        );
        assert_eq!(
            "file:/srv/d0.img".parse::<MemberAddr>().unwrap(),
            MemberAddr::File("/srv/d0.img".into())
        );
        assert_eq!(
            "e65534.254".parse::<MemberAddr>().unwrap().to_string(),
            "e65534.254"
        );
        for bad in [
            "e1", "x1.2", "e1.", "e.1", "e-1.2", "e70000.1", "e1.300", "e65535.0", "e0.255",
            "file:rel",
        ] {
            assert!(
                bad.parse::<MemberAddr>().is_err(),
                "{bad} should be refused"
            );
        }
    }
}
