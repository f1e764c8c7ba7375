//! A user's custom attributes (what a directory's attribute mapping gives):
//! name → a string, or a list of strings. One user's attributes travel from
//! the snapshot the engine maps to the app user's row and to the event about
//! it, and each writes them out as JSON: here they are shared rather than
//! copied, and written out once for all three (copying them and writing
//! them out three times was a measured part of what mapping rules add to a
//! directory's first import; README "Attribute mapping").

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

/// Custom attributes by name, in name order. Cloning shares them; changing
/// them (`to_mut`) copies them first if they are shared. Serialized as the
/// JSON object of the map, the same text a `BTreeMap` gives, written once
/// however often it is serialized.
#[derive(Clone, Default)]
pub struct Custom(Option<Arc<Shared>>);

/// The attributes and their JSON text, once something wrote them out.
#[derive(Default)]
struct Shared {
    map: BTreeMap<String, Value>,
    text: OnceLock<Box<RawValue>>,
}

impl Clone for Shared {
    fn clone(&self) -> Shared {
        Shared {
            map: self.map.clone(),
            text: OnceLock::new(),
        }
    }
}

/// What `Custom` without attributes reads as.
static NONE: BTreeMap<String, Value> = BTreeMap::new();

impl Custom {
    /// No attributes (what a `static` can hold).
    pub const NONE: Custom = Custom(None);

    /// Whether there are none (`skip_serializing_if`).
    pub fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|shared| shared.map.is_empty())
    }

    /// The attributes to change: copied first if another holder shares
    /// them, and their text forgotten.
    pub fn to_mut(&mut self) -> &mut BTreeMap<String, Value> {
        let shared = Arc::make_mut(self.0.get_or_insert_default());
        shared.text = OnceLock::new();
        &mut shared.map
    }

    /// Remove the attribute `name`, if there is one: only then are the
    /// attributes copied (when shared) and their text forgotten.
    pub fn remove(&mut self, name: &str) {
        if self.contains_key(name) {
            self.to_mut().remove(name);
        }
    }

    /// The JSON object, written out the first time it is asked for.
    fn text(shared: &Shared) -> &RawValue {
        shared.text.get_or_init(|| {
            // A map with string keys and JSON values: writing it out cannot
            // fail.
            serde_json::value::to_raw_value(&shared.map).unwrap_or_default()
        })
    }
}

impl From<BTreeMap<String, Value>> for Custom {
    fn from(map: BTreeMap<String, Value>) -> Custom {
        if map.is_empty() {
            return Custom(None);
        }
        Custom(Some(Arc::new(Shared {
            map,
            text: OnceLock::new(),
        })))
    }
}

impl Deref for Custom {
    type Target = BTreeMap<String, Value>;

    fn deref(&self) -> &BTreeMap<String, Value> {
        self.0.as_ref().map_or(&NONE, |shared| &shared.map)
    }
}

impl PartialEq for Custom {
    fn eq(&self, other: &Custom) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) if Arc::ptr_eq(a, b) => true,
            _ => **self == **other,
        }
    }
}

impl Eq for Custom {}

impl fmt::Debug for Custom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

impl Serialize for Custom {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            None => NONE.serialize(serializer),
            Some(shared) => Custom::text(shared).serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Custom {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Custom, D::Error> {
        BTreeMap::deserialize(deserializer).map(Custom::from)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn custom(value: Value) -> Custom {
        serde_json::from_value(value).unwrap_or_default()
    }

    #[test]
    fn it_writes_out_as_its_map_does() {
        let map: BTreeMap<String, Value> = [
            ("b".to_owned(), json!(["x", "y \"quoted\""])),
            ("a".to_owned(), json!("caf\u{e9}\n")),
        ]
        .into();
        let shared = Custom::from(map.clone());
        let want = serde_json::to_string(&map).unwrap_or_default();
        assert_eq!(serde_json::to_string(&shared).ok(), Some(want.clone()));
        // Again, from the text kept, and through a clone sharing it.
        assert_eq!(serde_json::to_string(&shared.clone()).ok(), Some(want));
        // Into a tree too (the CLI's and the API's views).
        assert_eq!(
            serde_json::to_value(&shared).ok(),
            serde_json::to_value(&map).ok()
        );
        assert_eq!(
            serde_json::to_string(&Custom::default()).ok(),
            Some("{}".into())
        );
    }

    #[test]
    fn a_change_is_its_holders_alone_and_writes_out_anew() {
        let first = custom(json!({"a": "1"}));
        assert_eq!(
            serde_json::to_string(&first).ok(),
            Some(r#"{"a":"1"}"#.into())
        );
        let mut second = first.clone();
        second.to_mut().insert("b".into(), json!("2"));
        assert_eq!(
            serde_json::to_string(&first).ok(),
            Some(r#"{"a":"1"}"#.into())
        );
        assert_eq!(
            serde_json::to_string(&second).ok(),
            Some(r#"{"a":"1","b":"2"}"#.into())
        );
        assert_ne!(first, second);
        second.to_mut().remove("b");
        assert_eq!(first, second);
    }

    #[test]
    fn removing_an_absent_name_keeps_them_shared() {
        let first = custom(json!({"a": "1"}));
        let mut second = first.clone();
        second.remove("b");
        assert!(matches!((&first.0, &second.0), (Some(a), Some(b)) if Arc::ptr_eq(a, b)));
        second.remove("a");
        assert!(second.is_empty());
        assert_eq!(first.get("a"), Some(&json!("1")));
    }

    #[test]
    fn empty_or_not_it_reads_as_a_map() {
        let none = Custom::default();
        assert!(none.is_empty() && none.get("a").is_none());
        assert_eq!(none, custom(json!({})));
        let some = custom(json!({"a": ["x"]}));
        assert_eq!(some.get("a"), Some(&json!(["x"])));
        assert_eq!(format!("{some:?}"), r#"{"a": Array [String("x")]}"#);
    }
}
