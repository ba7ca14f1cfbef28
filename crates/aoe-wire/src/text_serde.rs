//! serde support (feature `serde`): addresses travel as the text an operator
//! writes (`e7.0`, `52:54:00:12:34:56`), so a configuration file can hold
//! them and a parse error names the value that was refused.

use core::fmt;
use core::marker::PhantomData;
use core::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::{AoeAddr, Mac};

struct TextVisitor<T>(&'static str, PhantomData<T>);

impl<T> Visitor<'_> for TextVisitor<T>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        v.parse()
            .map_err(|e| E::custom(format_args!("`{v}` is refused: {e}")))
    }
}

macro_rules! text_serde {
    ($t:ty, $expecting:literal) => {
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_str(TextVisitor::<$t>($expecting, PhantomData))
            }
        }

        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    };
}

text_serde!(Mac, "a MAC address like 52:54:00:12:34:56");
text_serde!(AoeAddr, "an AoE address like e7.0");

#[cfg(test)]
mod tests {
    use crate::{AoeAddr, Mac};

    #[test]
    fn round_trips_as_text() {
        let a: AoeAddr = serde_json::from_str("\"e7.0\"").unwrap();
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"e7.0\"");
        let m: Mac = serde_json::from_str("\"52:54:00:AB:cd:01\"").unwrap();
        assert_eq!(serde_json::to_string(&m).unwrap(), "\"52:54:00:ab:cd:01\"");
    }

    #[test]
    fn errors_name_the_value_and_the_reason() {
        let e = serde_json::from_str::<AoeAddr>("\"e65535.1\"").unwrap_err();
        assert!(
            e.to_string().contains("`e65535.1` is refused: shelf 65535"),
            "{e}"
        );
        let e = serde_json::from_str::<Mac>("\"52:54:00:12:34\"").unwrap_err();
        assert!(
            e.to_string()
                .contains("`52:54:00:12:34` is refused: invalid MAC address"),
            "{e}"
        );
        assert!(serde_json::from_str::<Mac>("7").is_err());
    }
}
