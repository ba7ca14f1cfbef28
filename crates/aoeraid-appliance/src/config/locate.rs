//! Field paths (`arrays[0].members[3]`) and finding the line a path starts on.
//!
//! Semantic checks run on typed values that no longer know where they came
//! from. Rather than keep a second, hand-written YAML scanner, we ask the real
//! parser: a probe deserializer walks the document along the path and fails
//! on purpose when it reaches the node; serde_norway stamps that failure with
//! the node's position. Flow and block styles, anchors and comments are
//! therefore handled exactly as the config itself was parsed.

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A path from the document root, printed like serde_norway prints paths.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct FieldPath(pub Vec<Seg>);

impl FieldPath {
    pub fn root() -> Self {
        FieldPath(Vec::new())
    }
    pub fn key(&self, k: impl Into<String>) -> Self {
        let mut v = self.0.clone();
        v.push(Seg::Key(k.into()));
        FieldPath(v)
    }
    pub fn index(&self, i: usize) -> Self {
        let mut v = self.0.clone();
        v.push(Seg::Index(i));
        FieldPath(v)
    }
    /// Builds a path from keys, for the common `a.b.c` case.
    pub fn of(keys: &[&str]) -> Self {
        FieldPath(keys.iter().map(|k| Seg::Key((*k).to_string())).collect())
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str(".");
        }
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => f.write_str(k)?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// Marker put in the deliberate error so it cannot be mistaken for a real one.
const FOUND: &str = "\u{1}aoeraid-locate-found\u{1}";

/// The 1-based line where `path` starts in `text`, or where its deepest
/// existing ancestor starts (a defaulted field has no text of its own; its
/// parent mapping is the best place to point at).
pub fn line_of(text: &str, path: &FieldPath) -> Option<usize> {
    (0..=path.0.len())
        .rev()
        .find_map(|n| exact_line(text, &path.0[..n]))
}

fn exact_line(text: &str, path: &[Seg]) -> Option<usize> {
    let de = serde_norway::Deserializer::from_str(text);
    let probe = Probe { path };
    match probe.deserialize(de) {
        Ok(()) => None,
        Err(e) if e.to_string().contains(FOUND) => e.location().map(|l| l.line()),
        Err(_) => None,
    }
}

struct Probe<'p> {
    path: &'p [Seg],
}

impl<'de> DeserializeSeed<'de> for Probe<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if self.path.is_empty() {
            d.deserialize_any(Found)
        } else {
            d.deserialize_any(self)
        }
    }
}

/// Refuses every value: its error, raised inside the target node, carries
/// that node's position.
struct Found;

impl Visitor<'_> for Found {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(FOUND)
    }
}

impl<'de> Visitor<'de> for Probe<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let want = match &self.path[0] {
            Seg::Key(k) => Some(k.as_str()),
            Seg::Index(_) => None,
        };
        while let Some(key) = map.next_key::<serde_norway::Value>()? {
            let matches = match (&key, want) {
                (serde_norway::Value::String(s), Some(w)) => s == w,
                (serde_norway::Value::Number(n), Some(w)) => n.to_string() == w,
                _ => false,
            };
            if matches {
                map.next_value_seed(Probe {
                    path: &self.path[1..],
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let want = match &self.path[0] {
            Seg::Index(i) => Some(*i),
            Seg::Key(_) => None,
        };
        let mut i = 0;
        loop {
            let found = if Some(i) == want {
                seq.next_element_seed(Probe {
                    path: &self.path[1..],
                })?
            } else {
                seq.next_element::<IgnoredAny>()?.map(|_| ())
            };
            if found.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        // A tagged value (`!tag x`): walk into its content as if untagged.
        let (_, variant) = data.variant::<IgnoredAny>()?;
        de::VariantAccess::newtype_variant_seed(variant, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
appliance: {name: rb1}
# a comment
arrays:
  - name: data
    members: [e0.0, e1.0,
              e0.1]
  - {name: logs, members: [e2.0]}
spare_groups:
  shelfspares:
    - e0.4
    - e1.4
";

    fn line(p: FieldPath) -> Option<usize> {
        line_of(DOC, &p)
    }

    #[test]
    fn finds_block_and_flow_nodes() {
        let arrays = FieldPath::of(&["arrays"]);
        assert_eq!(line(FieldPath::of(&["appliance", "name"])), Some(1));
        assert_eq!(line(arrays.index(0).key("name")), Some(4));
        assert_eq!(line(arrays.index(0).key("members").index(2)), Some(6));
        assert_eq!(line(arrays.index(1).key("members").index(0)), Some(7));
        assert_eq!(
            line(FieldPath::of(&["spare_groups", "shelfspares"]).index(1)),
            Some(11)
        );
    }

    #[test]
    fn missing_field_points_at_parent() {
        let p = FieldPath::of(&["arrays"]).index(1).key("chunk");
        assert_eq!(line(p), Some(7));
        assert_eq!(line(FieldPath::of(&["volumes"])), Some(1));
    }

    #[test]
    fn path_display_matches_serde_norway() {
        let p = FieldPath::of(&["arrays"]).index(0).key("members").index(3);
        assert_eq!(p.to_string(), "arrays[0].members[3]");
        assert_eq!(FieldPath::root().to_string(), ".");
    }
}
