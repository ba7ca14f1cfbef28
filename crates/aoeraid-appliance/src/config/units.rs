//! Human-friendly quantities, written the same way in `appliance.yaml` and on
//! the command line: byte sizes (`256KiB`, `64K`), transfer rates (`10MB/s`)
//! and durations (`500ms`, `10s`, `2m`). Each parses from the text an operator
//! writes and prints back in the same form, so error messages and summaries
//! echo the operator's words.
//!
//! * Size: a whole number of bytes with an optional unit. `K`, `M`, `G`, `T`
//!   (also `k`) and `KiB`, `MiB`, `GiB`, `TiB` are powers of 1024; `kB`/`KB`,
//!   `MB`, `GB`, `TB` are powers of 1000 (the coreutils convention); `B` is
//!   one. A fraction is allowed when the result is whole bytes (`1.5MiB`).
//! * Rate: a size followed by `/s`.
//! * Duration: a number with a unit that must be given: `ms`, `s`, `m`, `h`
//!   (`1.5s` is allowed).

use serde::de::{self, Visitor};
use std::fmt;
use std::str::FromStr;

/// A family of unit suffixes, each a multiple of `base`.
struct Units {
    /// Every suffix an operator may write. The first `printed` are the ones
    /// values print in, in the order they are tried: a value prints in the first
    /// that divides it exactly, else in `one`.
    table: &'static [(&'static str, u64)],
    printed: usize,
    help: &'static str,
    base: &'static str,
    /// The suffix of one `base`.
    one: &'static str,
    /// How zero prints.
    zero: &'static str,
}

/// Unit suffixes for sizes; rates reuse them with `/s`. Sizes print in binary
/// units where they can.
const SIZE_UNITS: Units = Units {
    table: &[
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
        ("TB", 1_000_000_000_000),
        ("GB", 1_000_000_000),
        ("MB", 1_000_000),
        ("KB", 1_000),
        ("T", 1 << 40),
        ("G", 1 << 30),
        ("M", 1 << 20),
        ("K", 1 << 10),
        ("k", 1 << 10),
        ("kB", 1_000),
        ("B", 1),
    ],
    printed: 8,
    help: "B, K/KiB, M/MiB, G/GiB, T/TiB (powers of 1024) or kB, MB, GB, TB (powers of 1000)",
    base: "bytes",
    one: "B",
    zero: "0B",
};

const DURATION_UNITS: Units = Units {
    table: &[("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)],
    printed: 3,
    help: "ms, s, m or h",
    base: "milliseconds",
    one: "ms",
    zero: "0s",
};

/// Reads "256KiB" as 256 × 1024; the number may carry a fraction ("1.5GiB")
/// as long as the result is a whole number of `units.base`.
fn parse_scaled(text: &str, units: &Units, what: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = (&t[..split], t[split..].trim());
    if num.is_empty() {
        return Err(format!("invalid {what} `{text}`: expected a number first"));
    }
    let scale = if unit.is_empty() {
        1
    } else {
        match units.table.iter().find(|(u, _)| *u == unit) {
            Some((_, s)) => *s,
            None => {
                return Err(format!(
                    "invalid {what} `{text}`: unknown unit `{unit}` (use {})",
                    units.help
                ));
            }
        }
    };
    let whole = |digits: &str| -> Result<u64, String> {
        digits.parse().map_err(|e: std::num::ParseIntError| {
            if *e.kind() == std::num::IntErrorKind::PosOverflow {
                format!("invalid {what} `{text}`: too large")
            } else {
                format!("invalid {what} `{text}`: bad number")
            }
        })
    };
    if let Some((int, frac)) = num.split_once('.') {
        let int = whole(int)?;
        if frac.is_empty() || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("invalid {what} `{text}`: bad number"));
        }
        let denom = 10u128.pow(frac.len() as u32);
        let frac = u128::from(whole(frac)?);
        let total = (u128::from(int) * denom + frac) * u128::from(scale);
        if !total.is_multiple_of(denom) {
            return Err(format!(
                "invalid {what} `{text}`: not a whole number of {}",
                units.base
            ));
        }
        u64::try_from(total / denom).map_err(|_| format!("invalid {what} `{text}`: too large"))
    } else {
        whole(num)?
            .checked_mul(scale)
            .ok_or_else(|| format!("invalid {what} `{text}`: too large"))
    }
}

impl Units {
    /// `n` in the largest printed unit that divides it exactly.
    fn format(&self, n: u64) -> String {
        if n == 0 {
            return self.zero.to_string();
        }
        match self.table[..self.printed]
            .iter()
            .find(|(_, scale)| n >= *scale && n.is_multiple_of(*scale))
        {
            Some((unit, scale)) => format!("{}{unit}", n / scale),
            None => format!("{n}{}", self.one),
        }
    }
}

/// A size in bytes, written `4096`, `64K`, `256KiB`, `1MiB`, `2GB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub const fn bytes(self) -> u64 {
        self.0
    }
}

impl FromStr for ByteSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse_scaled(s, &SIZE_UNITS, "size").map(ByteSize)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&SIZE_UNITS.format(self.0))
    }
}

/// A transfer rate in bytes per second, written `10MB/s`, `200MiB/s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rate(pub u64);

impl Rate {
    pub const fn bytes_per_sec(self) -> u64 {
        self.0
    }
    /// The rate in the RAID engine's whole KiB/s, at least 1: the engine paces
    /// in KiB/s, and a rate rounded down to 0 would never finish.
    pub fn kib_per_sec(self) -> u64 {
        (self.0 / 1024).max(1)
    }
}

impl FromStr for Rate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let Some(per) = t.strip_suffix("/s") else {
            return Err(format!(
                "invalid rate `{s}`: expected bytes per second like 10MB/s or 200MiB/s"
            ));
        };
        parse_scaled(per, &SIZE_UNITS, "rate").map(Rate)
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/s", SIZE_UNITS.format(self.0))
    }
}

/// A duration, written `500ms`, `10s`, `2m`, `1h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    pub const fn get(self) -> std::time::Duration {
        self.0
    }
    pub const fn from_millis(ms: u64) -> Self {
        Duration(std::time::Duration::from_millis(ms))
    }
}

impl FromStr for Duration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "invalid duration `{s}`: a unit is required (ms, s, m or h), e.g. 10s"
            ));
        }
        parse_scaled(t, &DURATION_UNITS, "duration")
            .map(|ms| Duration(std::time::Duration::from_millis(ms)))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Whole milliseconds are all a duration parses from.
        let ms = u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX);
        f.write_str(&DURATION_UNITS.format(ms))
    }
}

/// Deserializes a config value written as text (sizes, rates, durations; levels
/// and member addresses too) from a YAML string (or, for sizes, a plain integer),
/// parsing inside the deserializer so that a failure becomes a serde error to
/// which serde_norway attaches the line and field path.
pub(crate) struct TextVisitor<T>(
    pub(crate) &'static str,
    pub(crate) std::marker::PhantomData<T>,
);

impl<T: FromStr<Err = String>> Visitor<'_> for TextVisitor<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        v.parse().map_err(E::custom)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        v.to_string().parse().map_err(E::custom)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        v.to_string().parse().map_err(E::custom)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        Err(E::custom(format!("invalid value {v}: {}", self.0)))
    }
}

/// serde for a type that is its `FromStr` and `Display` text in the YAML.
macro_rules! text_serde {
    ($t:ty, $expecting:literal) => {
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any($crate::config::units::TextVisitor::<$t>(
                    $expecting,
                    std::marker::PhantomData,
                ))
            }
        }
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    };
}
pub(crate) use text_serde;

text_serde!(ByteSize, "a size like 4096, 256KiB or 1MiB");
text_serde!(Rate, "a rate like 10MB/s or 200MiB/s");
text_serde!(Duration, "a duration like 500ms, 10s or 2m");

#[cfg(test)]
mod tests {
    use super::*;

    fn size(s: &str) -> Result<u64, String> {
        s.parse::<ByteSize>().map(ByteSize::bytes)
    }

    #[test]
    fn sizes_accept_every_documented_form() {
        for (text, bytes) in [
            ("4096", 4096),
            ("0", 0),
            ("512B", 512),
            ("64K", 64 << 10),
            ("4k", 4 << 10),
            ("64KiB", 64 << 10),
            ("256KiB", 256 << 10),
            ("16M", 16 << 20),
            ("1MiB", 1 << 20),
            ("1G", 1 << 30),
            ("2GiB", 2 << 30),
            ("1T", 1 << 40),
            ("1TiB", 1 << 40),
            ("10kB", 10_000),
            ("10KB", 10_000),
            ("10MB", 10_000_000),
            ("2GB", 2_000_000_000),
            ("3TB", 3_000_000_000_000),
            ("1.5KiB", 1536),
            ("0.5M", 512 << 10),
            (" 8 MiB ", 8 << 20),
        ] {
            assert_eq!(size(text), Ok(bytes), "{text:?}");
        }
    }

    #[test]
    fn sizes_refuse_bits_fractions_of_bytes_and_overflow() {
        for (text, why) in [
            ("256Kb", "unknown unit `Kb`"),
            ("1m", "unknown unit `m`"),
            ("1kiB", "unknown unit `kiB`"),
            ("KiB", "expected a number first"),
            ("", "expected a number first"),
            ("-1K", "expected a number first"),
            ("1.2.3MiB", "bad number"),
            ("1.KiB", "bad number"),
            ("1.5B", "not a whole number of bytes"),
            ("0.1K", "not a whole number of bytes"),
            ("99999999999TiB", "too large"),
            ("18446744073709551616", "too large"),
        ] {
            let e = size(text).unwrap_err();
            assert!(e.contains(why), "{text:?}: {e}");
            assert!(e.starts_with(&format!("invalid size `{text}`")), "{e}");
        }
        assert!(size("1Q").unwrap_err().contains("K/KiB"));
    }

    #[test]
    fn sizes_print_in_the_largest_exact_unit() {
        assert_eq!(ByteSize(256 * 1024).to_string(), "256KiB");
        assert_eq!(ByteSize(10_000_000).to_string(), "10MB");
        assert_eq!(ByteSize(1024).to_string(), "1KiB");
        assert_eq!(ByteSize(513).to_string(), "513B");
        assert_eq!(ByteSize(0).to_string(), "0B");
        for n in [0, 1, 512, 1 << 20, 3_000_000, (1 << 40) * 5, 123_456_789] {
            assert_eq!(ByteSize(n).to_string().parse::<ByteSize>(), Ok(ByteSize(n)));
        }
    }

    #[test]
    fn rates() {
        assert_eq!(
            "10MB/s".parse::<Rate>().unwrap().bytes_per_sec(),
            10_000_000
        );
        assert_eq!(
            "200MiB/s".parse::<Rate>().unwrap().bytes_per_sec(),
            200 << 20
        );
        assert_eq!("64K/s".parse::<Rate>().unwrap().bytes_per_sec(), 64 << 10);
        assert!("10MB"
            .parse::<Rate>()
            .unwrap_err()
            .contains("expected bytes per second"));
        assert!("fast/s"
            .parse::<Rate>()
            .unwrap_err()
            .starts_with("invalid rate `fast`"));
        assert_eq!(Rate(10_000_000).to_string(), "10MB/s");
        assert_eq!(Rate(200 << 20).kib_per_sec(), 200 << 10);
        assert_eq!(Rate(500).kib_per_sec(), 1);
    }

    #[test]
    fn durations() {
        for (text, ms) in [
            ("10s", 10_000),
            ("500ms", 500),
            ("2m", 120_000),
            ("1h", 3_600_000),
            ("1.5s", 1_500),
            ("0s", 0),
        ] {
            assert_eq!(
                text.parse::<Duration>().map(|d| d.get().as_millis()),
                Ok(ms),
                "{text:?}"
            );
        }
        for (text, why) in [
            ("10", "a unit is required"),
            ("10 parsecs", "unknown unit `parsecs` (use ms, s, m or h)"),
            ("1.5ms", "not a whole number"),
            ("s", "expected a number first"),
        ] {
            let e = text.parse::<Duration>().unwrap_err();
            assert!(e.contains(why), "{text:?}: {e}");
        }
        assert_eq!(Duration::from_millis(120_000).to_string(), "2m");
        assert_eq!(Duration::from_millis(1_500).to_string(), "1500ms");
        assert_eq!(Duration::from_millis(0).to_string(), "0s");
        assert_eq!(Duration::from_millis(7_200_000).to_string(), "2h");
        assert_eq!(Duration::from_millis(90_000).to_string(), "90s");
    }
}
