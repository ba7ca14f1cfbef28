//! Member addresses: an AoE blade `eS.L` (shelf.slot, as the Linux aoe driver
//! names them) or a local file / block device `file:/path`.

use aoe_wire::{AddrError, AoeAddr};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

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
        match t.parse::<AoeAddr>() {
            Ok(a) => Ok(MemberAddr::Blade {
                shelf: a.shelf(),
                slot: a.slot(),
            }),
            Err(AddrError::Syntax) => Err(format!(
                "invalid member `{s}`: expected an AoE blade eSHELF.SLOT (e.g. e0.1) or file:/path"
            )),
            Err(e) => Err(format!("invalid member `{s}`: {e}")),
        }
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

super::units::text_serde!(MemberAddr, "a member address like e0.1 or file:/path");

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
        assert_eq!(
            "0.1".parse::<MemberAddr>().unwrap(),
            MemberAddr::Blade { shelf: 0, slot: 1 }
        );
        for (bad, why) in [
            ("e1", "expected an AoE blade"),
            ("x1.2", "expected an AoE blade"),
            ("e1.", "expected an AoE blade"),
            ("e.1", "expected an AoE blade"),
            ("e-1.2", "expected an AoE blade"),
            ("disk2", "expected an AoE blade"),
            ("e70000.1", "shelf must be"),
            ("e1.300", "slot must be"),
            ("e65535.0", "broadcast"),
            ("e4095.0", "ignored by the Linux aoe driver"),
            ("e0.255", "broadcast"),
            ("file:rel", "absolute path"),
        ] {
            let e = bad.parse::<MemberAddr>().unwrap_err();
            assert!(e.starts_with(&format!("invalid member `{bad}`: ")), "{e}");
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
