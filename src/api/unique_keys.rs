//! JSON bodies must name each key of an object once. Parsers disagree on
//! which of two values counts (serde_json keeps the last, others the
//! first), so a proxy in front and this service could read two different
//! requests from one body: such a body is refused instead.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// The first key found twice in one object of `body`, if any. A body that
/// is not JSON passes: the parse that follows says what is wrong with it.
pub fn repeated_key(body: &[u8]) -> Option<String> {
    let found = RefCell::new(None);
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let _ = Checked { found: &found }.deserialize(&mut deserializer);
    found.into_inner()
}

/// Walks one JSON value; the first repeated key goes into `found` and
/// stops the walk.
#[derive(Clone, Copy)]
struct Checked<'a> {
    found: &'a RefCell<Option<String>>,
}

impl<'de> DeserializeSeed<'de> for Checked<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Checked<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<(), A::Error> {
        while items.next_element_seed(self)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = entries.next_key::<String>()? {
            if seen.contains(&key) {
                *self.found.borrow_mut() = Some(key);
                return Err(de::Error::custom("a key repeated"));
            }
            entries.next_value_seed(self)?;
            seen.insert(key);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_named_twice_in_one_object_is_found_at_any_depth() {
        assert_eq!(repeated_key(br#"{"a":1,"a":2}"#).as_deref(), Some("a"));
        assert_eq!(
            repeated_key(br#"{"x":[{"b":1},{"c":{"d":1,"d":1}}]}"#).as_deref(),
            Some("d")
        );
        // Escapes are read: "\u0061" is "a".
        assert_eq!(repeated_key(br#"{"a":1,"\u0061":2}"#).as_deref(), Some("a"));
        assert_eq!(repeated_key(br#"{"a":{"a":1},"b":[1,"a"]}"#), None);
        assert_eq!(repeated_key(br#"[{"a":1},{"a":2}]"#), None);
        assert_eq!(repeated_key(b"{not json"), None);
        assert_eq!(repeated_key(b"null"), None);
    }
}
