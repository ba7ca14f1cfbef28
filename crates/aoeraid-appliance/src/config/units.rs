//! Human-friendly quantities used in `appliance.yaml`: byte sizes (`256KiB`),
//! transfer rates (`10MB/s`), durations (`500ms`, `10s`, `2m`) and MAC
//! addresses. Each parses from the text an operator writes and prints back in
//! the same form, so error messages and summaries echo the operator's words.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// Unit suffixes for sizes; rates reuse them with `/s`. Binary units are
/// listed before decimal ones so that "KiB" is not read as "K" + "iB".
const SIZE_UNITS: &[(&str, u64)] = &[
    ("TiB", 1 << 40),
    ("GiB", 1 << 30),
    ("MiB", 1 << 20),
    ("KiB", 1 << 10),
    ("TB", 1_000_000_000_000),
    ("GB", 1_000_000_000),
    ("MB", 1_000_000),
    ("KB", 1_000),
    ("kB", 1_000),
    ("B", 1),
];

/// Splits "256KiB" into (256, "KiB"); the number may carry a fraction
/// ("1.5GiB") as long as the result is a whole number of bytes.
fn parse_scaled(text: &str, units: &[(&str, u64)], what: &str) -> Result<u64, String> {
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
        match units.iter().find(|(u, _)| *u == unit) {
            Some((_, s)) => *s,
            None => {
                let known: Vec<&str> = units.iter().map(|(u, _)| *u).collect();
                return Err(format!(
                    "invalid {what} `{text}`: unknown unit `{unit}` (use one of {})",
                    known.join(", ")
                ));
            }
        }
    };
    if let Some((int, frac)) = num.split_once('.') {
        let int: u64 = int
            .parse()
            .map_err(|_| format!("invalid {what} `{text}`: bad number"))?;
        if frac.is_empty() || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("invalid {what} `{text}`: bad number"));
        }
        let denom = 10u128.pow(frac.len() as u32);
        let frac: u128 = frac.parse().unwrap_or(0);
        let total = (int as u128 * denom + frac) * scale as u128;
        if !total.is_multiple_of(denom) {
            return Err(format!(
                "invalid {what} `{text}`: not a whole number of bytes"
            ));
        }
        u64::try_from(total / denom).map_err(|_| format!("invalid {what} `{text}`: too large"))
    } else {
        let n: u64 = num
            .parse()
            .map_err(|_| format!("invalid {what} `{text}`: bad number"))?;
        n.checked_mul(scale)
            .ok_or_else(|| format!("invalid {what} `{text}`: too large"))
    }
}

/// Formats bytes with the largest binary unit that divides them exactly.
fn format_bytes(n: u64) -> String {
    for (unit, scale) in [
        ("TiB", 1u64 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ] {
        if n >= scale && n.is_multiple_of(scale) {
            return format!("{}{unit}", n / scale);
        }
    }
    for (unit, scale) in [
        ("TB", 1_000_000_000_000u64),
        ("GB", 1_000_000_000),
        ("MB", 1_000_000),
        ("KB", 1_000),
    ] {
        if n >= scale && n.is_multiple_of(scale) {
            return format!("{}{unit}", n / scale);
        }
    }
    format!("{n}B")
}

/// A size in bytes, written `4096`, `256KiB`, `1MiB`, `2GB`.
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
        parse_scaled(s, SIZE_UNITS, "size").map(ByteSize)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_bytes(self.0))
    }
}

/// A transfer rate in bytes per second, written `10MB/s`, `200MiB/s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rate(pub u64);

impl Rate {
    pub const fn bytes_per_sec(self) -> u64 {
        self.0
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
        parse_scaled(per, SIZE_UNITS, "rate").map(Rate)
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/s", format_bytes(self.0))
    }
}

/// A duration, written `500ms`, `10s`, `2m`, `1h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub std::time::Duration);

const DURATION_UNITS: &[(&str, u64)] = &[("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000)];

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
        parse_scaled(t, DURATION_UNITS, "duration")
            .map(|ms| Duration(std::time::Duration::from_millis(ms)))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms == 0 {
            f.write_str("0s")
        } else if ms.is_multiple_of(3_600_000) {
            write!(f, "{}h", ms / 3_600_000)
        } else if ms.is_multiple_of(60_000) {
            write!(f, "{}m", ms / 60_000)
        } else if ms.is_multiple_of(1_000) {
            write!(f, "{}s", ms / 1_000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

/// An Ethernet MAC address, written `52:54:00:12:34:56` (or with `-`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }
}

impl FromStr for MacAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad =
            || format!("invalid MAC address `{s}`: expected six hex pairs like 52:54:00:12:34:56");
        let sep = if s.contains('-') { '-' } else { ':' };
        let mut out = [0u8; 6];
        let mut n = 0;
        for part in s.trim().split(sep) {
            if n == 6 || part.len() != 2 {
                return Err(bad());
            }
            out[n] = u8::from_str_radix(part, 16).map_err(|_| bad())?;
            n += 1;
        }
        if n != 6 {
            return Err(bad());
        }
        Ok(MacAddr(out))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// Deserializes any of the types above from a YAML string (or, for sizes, a
/// plain integer), turning a parse failure into a serde error so that
/// serde_norway attaches the line and field path.
struct TextVisitor<T>(&'static str, std::marker::PhantomData<T>);

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

macro_rules! text_serde {
    ($t:ty, $expecting:literal) => {
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any(TextVisitor::<$t>($expecting, std::marker::PhantomData))
            }
        }
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    };
}

text_serde!(ByteSize, "a size like 4096, 256KiB or 1MiB");
text_serde!(Rate, "a rate like 10MB/s or 200MiB/s");
text_serde!(Duration, "a duration like 500ms, 10s or 2m");
text_serde!(MacAddr, "a MAC address like 52:54:00:12:34:56");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!("256KiB".parse::<ByteSize>().unwrap().bytes(), 256 * 1024);
        assert_eq!("1MiB".parse::<ByteSize>().unwrap().bytes(), 1 << 20);
        assert_eq!("4096".parse::<ByteSize>().unwrap().bytes(), 4096);
        assert_eq!("2GB".parse::<ByteSize>().unwrap().bytes(), 2_000_000_000);
        assert_eq!("1.5KiB".parse::<ByteSize>().unwrap().bytes(), 1536);
        assert!("256Kb".parse::<ByteSize>().is_err());
        assert!("KiB".parse::<ByteSize>().is_err());
        assert!("1.2.3MiB".parse::<ByteSize>().is_err());
        assert!("99999999999TiB".parse::<ByteSize>().is_err());
        assert_eq!(ByteSize(256 * 1024).to_string(), "256KiB");
        assert_eq!(ByteSize(10_000_000).to_string(), "10MB");
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
        assert!("10MB".parse::<Rate>().is_err());
        assert!("fast/s".parse::<Rate>().is_err());
        assert_eq!(Rate(10_000_000).to_string(), "10MB/s");
    }

    #[test]
    fn durations() {
        assert_eq!("10s".parse::<Duration>().unwrap().get().as_millis(), 10_000);
        assert_eq!("500ms".parse::<Duration>().unwrap().get().as_millis(), 500);
        assert_eq!("2m".parse::<Duration>().unwrap().get().as_secs(), 120);
        assert!("10".parse::<Duration>().is_err());
        assert!("10 parsecs".parse::<Duration>().is_err());
        assert_eq!(Duration::from_millis(120_000).to_string(), "2m");
    }

    #[test]
    fn macs() {
        let m: MacAddr = "52:54:00:AB:cd:01".parse().unwrap();
        assert_eq!(m.0, [0x52, 0x54, 0, 0xab, 0xcd, 1]);
        assert_eq!(m.to_string(), "52:54:00:ab:cd:01");
        assert!(!m.is_multicast());
        assert!("01:00:5e:00:00:01"
            .parse::<MacAddr>()
            .unwrap()
            .is_multicast());
        assert!("52:54:00:ab:cd".parse::<MacAddr>().is_err());
        assert!("52:54:00:ab:cd:01:02".parse::<MacAddr>().is_err());
        assert!("52:54:00:ab:cd:zz".parse::<MacAddr>().is_err());
    }
}
