//! User extensions no schema of the registry describes: Entra's custom
//! `urn:ietf:params:scim:schemas:extension:<Name>:2.0:User`, an Okta app's
//! own namespace, a tenant's URN. They are kept as sent, each under its URN in
//! the canonical JSON, so a directory's attribute mapping can read them; since
//! no schema says what they hold, caps of their own bound them. Here: which
//! keys and paths name them, where a URN-prefixed name points ([`place`]), and
//! their canonical form ([`canonical`]). Never filtered on (a filter naming
//! one is 400, like any unknown attribute), never listed under `/Schemas`.
//! Pure: serde_json in, serde_json out; no I/O, HTTP or SQL.

use serde_json::{Map, Value};

use super::error::ScimError;
use super::schema::{self, ResourceType};
use crate::domain::text;

/// The most unregistered extensions one resource keeps.
pub const MAX_EXTENSIONS: usize = 8;
/// The most attributes one unregistered extension keeps, and the most
/// sub-attributes one of its complex attributes keeps.
pub const MAX_ATTRIBUTES: usize = 64;
/// The longest URN of an unregistered extension, in bytes.
pub const URN_BYTES: usize = 256;
/// The longest name of an attribute or sub-attribute in one, in bytes.
pub const NAME_BYTES: usize = 128;

/// Unregistered extensions in canonical form: each URN as stored, with its
/// attributes, in the order first sent.
pub type Extensions = Vec<(String, Map<String, Value>)>;

/// Whether `key` may name an unregistered extension of a `rt` resource, or
/// an attribute in one: a `urn:` that is neither one of the registry's URNs
/// nor under one (those resolve through the registry, or are unknown
/// attributes) nor in a namespace SCIM keeps for itself.
pub fn is_custom(rt: &ResourceType, key: &str) -> bool {
    rt.custom_extensions
        && key.len() > 4
        && key.is_char_boundary(4)
        && key[..4].eq_ignore_ascii_case("urn:")
        && !schema::is_reserved_urn(key)
}

/// The unregistered extensions `data` holds, by the URN they are stored under.
pub fn present(rt: &ResourceType, data: &Map<String, Value>) -> Vec<String> {
    data.iter()
        .filter(|(key, value)| value.is_object() && is_custom(rt, key))
        .map(|(key, _)| key.clone())
        .collect()
}

/// How a URN-prefixed name was written, which decides what an object value
/// under it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// A key of a resource body or of a path-less PATCH value: an object under
    /// it is the extension (`"urn:…:User": {…}`), anything else one attribute
    /// (`"urn:…:User:costCenter": "42"`, Entra's E4 form).
    Key,
    /// A PATCH `path`: `URN:attr[.sub]` as RFC 7644 §3.5.2's grammar reads
    /// it, or a bare URN naming the whole extension.
    Path,
}

/// Where a URN-prefixed name points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// The whole extension stored (or to be stored) under this URN.
    Extension(String),
    /// An attribute of the extension `urn`, or one sub-attribute of it.
    Attribute {
        urn: String,
        name: String,
        sub: Option<String>,
    },
}

/// Where `raw` (an [`is_custom`] key or path) points, given the unregistered
/// extensions the resource already holds (`present`). URNs compare
/// case-insensitively (RFC 8141 §3, X9): a URN spelled as one of `present`
/// names that one, in its stored spelling.
///
/// A URN and an attribute are both colon-separated, so a name is read, in
/// order, as: an extension the resource holds; an attribute of one it holds
/// (after `:`, or E28's `.`; the longest URN wins); for a [`Form::Key`], an
/// extension when its value is an object; an extension when its last segment
/// is the resource type's name (RFC 7643 §3.3 names an extension's schema
/// `…:2.0:User`); `…:User.attr` (E28); `URN:attr[.sub]`; an extension when its
/// value is an object. `Err` is a detail for the caller's 400.
pub fn place(
    rt: &ResourceType,
    raw: &str,
    value: Option<&Value>,
    form: Form,
    present: &[String],
) -> Result<Place, String> {
    if let Some(urn) = present.iter().find(|urn| urn.eq_ignore_ascii_case(raw)) {
        return Ok(Place::Extension(urn.clone()));
    }
    let under = present
        .iter()
        .filter_map(|urn| {
            let (name, sub) = attribute_in(raw, urn)?;
            Some((urn, name, sub))
        })
        .max_by_key(|(urn, ..)| urn.len());
    if let Some((urn, name, sub)) = under {
        return Ok(attribute(urn, name, sub));
    }
    let is_object = value.is_some_and(Value::is_object);
    if form == Form::Key && is_object {
        return extension(raw);
    }
    let (head, last) = raw.rsplit_once(':').unwrap_or(("", raw));
    if last.eq_ignore_ascii_case(rt.name) {
        return extension(raw);
    }
    if let Some((ty, rest)) = last.split_once('.')
        && ty.eq_ignore_ascii_case(rt.name)
        && let Some((name, sub)) = attribute_path(rest)
    {
        let urn = &raw[..head.len() + 1 + ty.len()];
        check_urn(urn)?;
        return Ok(attribute(urn, name, sub));
    }
    if let Some((name, sub)) = attribute_path(last) {
        check_urn(head)?;
        return Ok(attribute(head, name, sub));
    }
    if is_object {
        return extension(raw);
    }
    Err(format!(
        "{} names no attribute: after an extension's URN and ':' comes an attribute name \
         (a letter, then letters, digits, '-' or '_'; RFC 7643 §2.1)",
        text::quoted(raw)
    ))
}

/// The unregistered extensions of one body (its [`is_custom`] keys and their
/// values, in body order) in canonical form: each under the URN first spelled
/// for it, its attributes under the name first spelled for each (names
/// compare case-insensitively, RFC 7643 §2.1; a later value wins, an
/// unassigned one changes nothing), values as sent within the caps: strings
/// of at most `schema::TEXT_BYTES`, numbers, booleans, arrays of those of at
/// most `schema::MAX_ITEMS` elements, and objects of those one level deep
/// (`manager: {value}`). Unassigned values (null, `""`, `[]`, `{}`; RFC 7643
/// §2.5) and extensions left empty are not kept. Past a cap: 400
/// `invalidValue`.
pub fn canonical(rt: &ResourceType, entries: &[(&str, &Value)]) -> Result<Extensions, ScimError> {
    let mut out = Extensions::new();
    for &(key, value) in entries {
        match place(rt, key, Some(value), Form::Key, &[]).map_err(ScimError::invalid_value)? {
            Place::Extension(urn) => match value {
                Value::Null => {}
                Value::String(s) if s.is_empty() => {}
                Value::Object(object) => {
                    for (name, v) in object {
                        put(&mut out, &urn, name, None, v)?;
                    }
                }
                _ => {
                    return Err(ScimError::invalid_value(format!("{urn} must be an object")));
                }
            },
            Place::Attribute { urn, name, sub } => {
                put(&mut out, &urn, &name, sub.as_deref(), value)?;
            }
        }
    }
    out.retain(|(_, attributes)| !attributes.is_empty());
    if out.len() > MAX_EXTENSIONS {
        return Err(ScimError::invalid_value(format!(
            "the {} has {} extensions that no schema describes; at most {MAX_EXTENSIONS} are accepted",
            rt.name,
            out.len()
        )));
    }
    for (urn, attributes) in &out {
        if attributes.len() > MAX_ATTRIBUTES {
            return Err(ScimError::invalid_value(format!(
                "{urn} has {} attributes; at most {MAX_ATTRIBUTES} are accepted",
                attributes.len()
            )));
        }
        for (name, value) in attributes {
            if let Value::Object(subs) = value
                && subs.len() > MAX_ATTRIBUTES
            {
                return Err(ScimError::invalid_value(format!(
                    "{urn}:{name} has {} sub-attributes; at most {MAX_ATTRIBUTES} are accepted",
                    subs.len()
                )));
            }
        }
    }
    Ok(out)
}

/// The `attr[.sub]` that `raw` names in the extension `urn`: after `urn`
/// (compared case-insensitively) and `:` or E28's `.`.
pub fn attribute_in<'r>(raw: &'r str, urn: &str) -> Option<(&'r str, Option<&'r str>)> {
    attribute_path(after_urn(raw, urn)?)
}

/// The key of `map` that is `name` compared case-insensitively.
pub fn stored_key(map: &Map<String, Value>, name: &str) -> Option<String> {
    map.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

/// Set `name` (compared case-insensitively) to `value`, keeping the stored
/// spelling of a name already there.
pub fn insert_named(map: &mut Map<String, Value>, name: &str, value: Value) {
    let key = stored_key(map, name).unwrap_or_else(|| name.to_owned());
    map.insert(key, value);
}

/// Remove `name` (compared case-insensitively).
pub fn remove_named(map: &mut Map<String, Value>, name: &str) {
    if let Some(key) = stored_key(map, name) {
        map.shift_remove(&key);
    }
}

fn attribute(urn: &str, name: &str, sub: Option<&str>) -> Place {
    Place::Attribute {
        urn: urn.to_owned(),
        name: name.to_owned(),
        sub: sub.map(str::to_owned),
    }
}

fn extension(raw: &str) -> Result<Place, String> {
    check_urn(raw)?;
    Ok(Place::Extension(raw.to_owned()))
}

/// What follows `urn` (compared case-insensitively) and one `:` or `.` in `raw`.
fn after_urn<'r>(raw: &'r str, urn: &str) -> Option<&'r str> {
    (raw.len() > urn.len()
        && raw.is_char_boundary(urn.len())
        && raw[..urn.len()].eq_ignore_ascii_case(urn)
        && matches!(raw.as_bytes()[urn.len()], b':' | b'.'))
    .then(|| &raw[urn.len() + 1..])
}

/// `attr` or `attr.sub` as RFC 7644 §3.4.2.2 `ATTRNAME *1subAttr` has them
/// (the sub-attribute may also be `$ref`, RFC 7643 §2.4).
fn attribute_path(rest: &str) -> Option<(&str, Option<&str>)> {
    match rest.split_once('.') {
        None => is_attribute_name(rest).then_some((rest, None)),
        Some((name, sub)) => {
            (is_attribute_name(name) && is_sub_attribute_name(sub)).then_some((name, Some(sub)))
        }
    }
}

/// RFC 7643 §2.1: `ATTRNAME = ALPHA *(nameChar)`, `nameChar = "-" / "_" /
/// DIGIT / ALPHA`.
fn is_attribute_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn is_sub_attribute_name(s: &str) -> bool {
    is_attribute_name(s) || s.eq_ignore_ascii_case("$ref")
}

/// RFC 8141 §2: `urn:` NID `:` NSS, at most [`URN_BYTES`].
fn check_urn(urn: &str) -> Result<(), String> {
    if urn.len() > URN_BYTES {
        return Err(format!(
            "the extension URN {} is {} bytes long; at most {URN_BYTES} are accepted",
            text::quoted(urn),
            urn.len()
        ));
    }
    let is_nid = |nid: &str| {
        (2..=32).contains(&nid.len())
            && nid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !nid.starts_with('-')
            && !nid.ends_with('-')
    };
    let is_nss = |nss: &str| {
        !nss.is_empty()
            && nss
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/%".contains(&b))
    };
    let valid = urn
        .get(..4)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("urn:"))
        && urn[4..]
            .split_once(':')
            .is_some_and(|(nid, nss)| is_nid(nid) && is_nss(nss));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{} is not a URN an extension can be kept under (RFC 8141: urn:NID:NSS)",
            text::quoted(urn)
        ))
    }
}

fn check_name(owner: &str, name: &str, sub: bool) -> Result<(), ScimError> {
    let valid = if sub {
        is_sub_attribute_name(name)
    } else {
        is_attribute_name(name)
    };
    if !valid {
        return Err(ScimError::invalid_value(format!(
            "{owner}: {} is not an attribute name (a letter, then letters, digits, '-' or '_'; RFC 7643 §2.1)",
            text::quoted(name)
        )));
    }
    if name.len() > NAME_BYTES {
        return Err(ScimError::invalid_value(format!(
            "{owner}: the attribute name {} is {} bytes long; at most {NAME_BYTES} are accepted",
            text::quoted(name),
            name.len()
        )));
    }
    Ok(())
}

/// Keep `value` as `urn:name[.sub]` in `out`, merged by case-insensitive URN
/// and names.
fn put(
    out: &mut Extensions,
    urn: &str,
    name: &str,
    sub: Option<&str>,
    value: &Value,
) -> Result<(), ScimError> {
    check_name(urn, name, false)?;
    let path = format!("{urn}:{name}");
    let value = match sub {
        None => normalize(value, &path, true)?,
        Some(sub) => {
            check_name(&path, sub, true)?;
            normalize(value, &format!("{path}.{sub}"), false)?
        }
    };
    let Some(value) = value else {
        return Ok(());
    };
    let at = match out.iter().position(|(u, _)| u.eq_ignore_ascii_case(urn)) {
        Some(at) => at,
        None => {
            out.push((urn.to_owned(), Map::new()));
            out.len() - 1
        }
    };
    let attributes = &mut out[at].1;
    match sub {
        None => insert_named(attributes, name, value),
        Some(sub) => {
            let key = stored_key(attributes, name).unwrap_or_else(|| name.to_owned());
            let slot = attributes
                .entry(key)
                .or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            if let Value::Object(object) = slot {
                insert_named(object, sub, value);
            }
        }
    }
    Ok(())
}

/// One value within the caps; `None` when unassigned. `top`: an attribute's
/// own value, which may be an object (a sub-attribute's may not).
fn normalize(value: &Value, path: &str, top: bool) -> Result<Option<Value>, ScimError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => {
            if s.len() > schema::TEXT_BYTES {
                return Err(ScimError::too_long(path, s.len(), schema::TEXT_BYTES));
            }
            Ok(Some(value.clone()))
        }
        Value::Bool(_) | Value::Number(_) => Ok(Some(value.clone())),
        Value::Array(items) => {
            if items.len() > schema::MAX_ITEMS {
                return Err(ScimError::too_many_values(
                    path,
                    items.len(),
                    schema::MAX_ITEMS,
                ));
            }
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::Null => {}
                    Value::String(s) if s.is_empty() => {}
                    Value::String(s) if s.len() > schema::TEXT_BYTES => {
                        return Err(ScimError::too_long(
                            &format!("{path}[{i}]"),
                            s.len(),
                            schema::TEXT_BYTES,
                        ));
                    }
                    Value::String(_) | Value::Bool(_) | Value::Number(_) => out.push(item.clone()),
                    Value::Array(_) | Value::Object(_) => {
                        return Err(ScimError::invalid_value(format!(
                            "{path}[{i}] must be a string, a number or a boolean"
                        )));
                    }
                }
            }
            Ok((!out.is_empty()).then_some(Value::Array(out)))
        }
        Value::Object(object) if top => {
            let mut out = Map::new();
            for (name, v) in object {
                check_name(path, name, true)?;
                if let Some(v) = normalize(v, &format!("{path}.{name}"), false)? {
                    insert_named(&mut out, name, v);
                }
            }
            Ok((!out.is_empty()).then_some(Value::Object(out)))
        }
        Value::Object(_) => Err(ScimError::invalid_value(format!(
            "{path} must be a string, a number, a boolean or an array of those \
             (an extension no schema describes nests one level)"
        ))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::schema::{ENTERPRISE_USER, GROUP_RESOURCE, USER, USER_RESOURCE};
    use super::*;
    use rstest::rstest;
    use serde_json::json;

    const EXT: &str = "urn:ietf:params:scim:schemas:extension:Contoso:2.0:User";
    const OKTA: &str = "urn:okta:acme:1.0:profile:custom";

    fn attr(urn: &str, name: &str, sub: Option<&str>) -> Place {
        attribute(urn, name, sub)
    }

    #[rstest]
    #[case("urn:ietf:params:scim:schemas:extension:Contoso:2.0:User", true)]
    #[case("URN:okta:acme:1.0:profile:custom", true)]
    #[case(ENTERPRISE_USER, false)]
    #[case(
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter",
        false
    )]
    #[case(
        "urn:ietf:params:scim:schemas:extension:ENTERPRISE:2.0:User.bogus",
        false
    )]
    #[case("urn:scim:schemas:extension:enterprise:1.0", false)]
    #[case(USER, false)]
    #[case("urn:ietf:params:scim:schemas:core:2.0:Group", false)]
    #[case("urn:ietf:params:scim:api:messages:2.0:PatchOp", false)]
    #[case("urn:scim:schemas:core:1.0", false)]
    #[case(
        "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group",
        false
    )]
    #[case("urn:", false)]
    #[case("costCenter", false)]
    fn only_urns_outside_the_registry_and_scims_own_namespaces_are_custom(
        #[case] key: &str,
        #[case] expected: bool,
    ) {
        assert_eq!(is_custom(&USER_RESOURCE, key), expected);
    }

    #[test]
    fn a_group_keeps_no_custom_extension() {
        assert!(!is_custom(&GROUP_RESOURCE, EXT));
    }

    #[rstest]
    // Extensions, by shape of the value or a last segment naming the resource type.
    #[case(EXT, json!({}), Form::Key, Place::Extension(EXT.into()))]
    #[case(EXT, json!(null), Form::Key, Place::Extension(EXT.into()))]
    #[case(EXT, json!(null), Form::Path, Place::Extension(EXT.into()))]
    #[case(OKTA, json!({"a": 1}), Form::Key, Place::Extension(OKTA.into()))]
    // Entra's E4 keys and RFC 7644 paths.
    #[case("urn:ietf:params:scim:schemas:extension:Contoso:2.0:User:costCenter", json!("42"), Form::Key, attr(EXT, "costCenter", None))]
    #[case("urn:ietf:params:scim:schemas:extension:Contoso:2.0:User:manager.value", json!("m"), Form::Path, attr(EXT, "manager", Some("value")))]
    #[case("urn:ietf:params:scim:schemas:extension:Contoso:2.0:User:manager", json!({"value": "m"}), Form::Path, attr(EXT, "manager", None))]
    // E28's dot after the resource type's name.
    #[case("urn:ietf:params:scim:schemas:extension:Contoso:2.0:User.costCenter", json!("42"), Form::Key, attr(EXT, "costCenter", None))]
    #[case("urn:okta:acme:1.0:profile:custom:costCenter", json!(7), Form::Path, attr(OKTA, "costCenter", None))]
    fn a_name_with_no_extension_present_is_placed_by_its_shape(
        #[case] raw: &str,
        #[case] value: Value,
        #[case] form: Form,
        #[case] expected: Place,
    ) {
        let got = place(&USER_RESOURCE, raw, Some(&value), form, &[]).unwrap();
        assert_eq!(got, expected);
    }

    #[test]
    fn an_object_under_a_key_is_an_extension_but_under_a_path_an_attribute() {
        let raw = "urn:example:acme:manager";
        let value = json!({"value": "m"});
        assert_eq!(
            place(&USER_RESOURCE, raw, Some(&value), Form::Key, &[]),
            Ok(Place::Extension(raw.into()))
        );
        assert_eq!(
            place(&USER_RESOURCE, raw, Some(&value), Form::Path, &[]),
            Ok(attr("urn:example:acme", "manager", None))
        );
    }

    #[rstest]
    #[case("URN:IETF:params:scim:schemas:extension:contoso:2.0:user", Place::Extension(EXT.into()))]
    #[case(
        "urn:ietf:params:scim:schemas:extension:contoso:2.0:USER:CostCenter",
        attr(EXT, "CostCenter", None)
    )]
    #[case(
        "urn:ietf:params:scim:schemas:extension:Contoso:2.0:User.manager.value",
        attr(EXT, "manager", Some("value"))
    )]
    #[case(
        "urn:okta:acme:1.0:profile:custom.costCenter",
        attr(OKTA, "costCenter", None)
    )]
    #[case(OKTA, Place::Extension(OKTA.into()))]
    fn a_name_under_a_present_extension_takes_its_stored_spelling(
        #[case] raw: &str,
        #[case] expected: Place,
    ) {
        // X9: URNs compare case-insensitively; the first spelling stays.
        let present = vec![EXT.to_owned(), OKTA.to_owned()];
        for form in [Form::Key, Form::Path] {
            let got = place(&USER_RESOURCE, raw, Some(&json!({"x": 1})), form, &present);
            assert_eq!(got, Ok(expected.clone()), "{raw} {form:?}");
        }
    }

    #[rstest]
    #[case("urn:example:acme:1st", json!("x"))]
    #[case("urn:example:acme:a.b.c", json!("x"))]
    #[case("urn:example:acme:emails[type eq \"work\"]", json!("x"))]
    #[case("urn:example:acme:bad name", json!({}))]
    fn a_name_that_is_neither_an_attribute_nor_a_urn_is_refused(
        #[case] raw: &str,
        #[case] value: Value,
    ) {
        let err = place(&USER_RESOURCE, raw, Some(&value), Form::Path, &[]).unwrap_err();
        assert!(err.contains(&format!("{raw:?}")), "{err}");
    }

    fn canon(entries: Value) -> Result<Value, ScimError> {
        let object = entries.as_object().unwrap();
        let entries: Vec<(&str, &Value)> = object.iter().map(|(k, v)| (k.as_str(), v)).collect();
        canonical(&USER_RESOURCE, &entries).map(|out| {
            Value::Object(
                out.into_iter()
                    .map(|(k, v)| (k, Value::Object(v)))
                    .collect(),
            )
        })
    }

    #[test]
    fn values_are_kept_as_sent_and_unassigned_ones_dropped() {
        let got = canon(json!({
            EXT: {
                "costCenter": "42",
                "level": 7,
                "ratio": 0.5,
                "isManager": false,
                "tags": ["a", "", null, 3, true],
                "manager": {"value": "m1", "$ref": "https://h/Users/m1", "note": null},
                "blank": "",
                "none": null,
                "empty": [],
                "nothing": {},
                "spaces": "  ",
            },
            "urn:example:empty:1.0": {"a": null}
        }))
        .unwrap();
        assert_eq!(
            got,
            json!({EXT: {
                "costCenter": "42",
                "level": 7,
                "ratio": 0.5,
                "isManager": false,
                "tags": ["a", 3, true],
                "manager": {"value": "m1", "$ref": "https://h/Users/m1"},
                "spaces": "  ",
            }})
        );
    }

    #[test]
    fn spellings_differing_in_case_merge_under_the_first() {
        // X9 for URNs, RFC 7643 §2.1 for names; a later value wins, a later
        // null changes nothing.
        let got = canon(json!({
            EXT: {"costCenter": "1", "Level": 1},
            "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:CONTOSO:2.0:USER": {"CostCenter": "2", "level": null},
            "urn:ietf:params:scim:schemas:extension:contoso:2.0:user:division": "D",
            "urn:ietf:params:scim:schemas:extension:contoso:2.0:user:manager.Value": "m",
            "urn:ietf:params:scim:schemas:extension:contoso:2.0:user:MANAGER.value": "n",
        }))
        .unwrap();
        assert_eq!(
            got,
            json!({EXT: {"costCenter": "2", "Level": 1, "division": "D", "manager": {"Value": "n"}}})
        );
    }

    #[test]
    fn canonical_output_is_canonical_again() {
        let first = canon(json!({
            "urn:ex:b:User:x:y": "v",
            "urn:ex:b:c": {"d": {"e": 1}},
            "urn:ex:b:c:f": "g",
            EXT: {"m": {"value": "1"}},
            "urn:ietf:params:scim:schemas:extension:Contoso:2.0:User.n": "2",
        }))
        .unwrap();
        assert_eq!(canon(first.clone()).unwrap(), first);
    }

    fn detail(entries: Value) -> String {
        let err = canon(entries).unwrap_err();
        assert_eq!(err.scim_type.map(|t| t.as_str()), Some("invalidValue"));
        err.detail
    }

    #[test]
    fn a_string_at_the_text_cap_is_kept_and_one_byte_more_is_refused() {
        let at = "é".repeat(schema::TEXT_BYTES / 2);
        assert!(canon(json!({EXT: {"s": at, "t": [at], "u": {"v": at}}})).is_ok());
        let over = format!("x{at}");
        for (value, path) in [
            (json!({"s": over}), format!("{EXT}:s")),
            (json!({"s": [over]}), format!("{EXT}:s[0]")),
            (json!({"s": {"v": over}}), format!("{EXT}:s.v")),
        ] {
            assert_eq!(
                detail(json!({EXT: value})),
                format!("{path} is 1025 bytes long; at most 1024 are accepted")
            );
        }
    }

    #[test]
    fn an_array_at_the_item_cap_is_kept_and_one_more_is_refused() {
        let items = |n: usize| -> Vec<Value> { (0..n).map(|i| json!(i)).collect() };
        assert!(canon(json!({EXT: {"s": items(schema::MAX_ITEMS)}})).is_ok());
        assert_eq!(
            detail(json!({EXT: {"s": items(schema::MAX_ITEMS + 1)}})),
            format!("{EXT}:s has 101 values; at most 100 are accepted")
        );
    }

    #[test]
    fn attributes_and_extensions_are_counted_after_merging() {
        let attributes = |n: usize| -> Value {
            Value::Object((0..n).map(|i| (format!("a{i}"), json!(i))).collect())
        };
        assert!(canon(json!({EXT: attributes(MAX_ATTRIBUTES)})).is_ok());
        assert_eq!(
            detail(json!({EXT: attributes(MAX_ATTRIBUTES + 1)})),
            format!("{EXT} has 65 attributes; at most 64 are accepted")
        );
        assert_eq!(
            detail(json!({EXT: {"m": attributes(MAX_ATTRIBUTES + 1)}})),
            format!("{EXT}:m has 65 sub-attributes; at most 64 are accepted")
        );
        let extensions = |n: usize| -> Value {
            Value::Object(
                (0..n)
                    .map(|i| (format!("urn:example:e{i}"), json!({"a": 1})))
                    .collect(),
            )
        };
        // Two spellings of one URN, and an empty one, are not two more.
        let mut at_cap = extensions(MAX_EXTENSIONS);
        at_cap["URN:EXAMPLE:E0"] = json!({"b": 2});
        at_cap["urn:example:empty"] = json!({"c": null});
        assert_eq!(
            canon(at_cap).unwrap().as_object().unwrap().len(),
            MAX_EXTENSIONS
        );
        assert_eq!(
            detail(extensions(MAX_EXTENSIONS + 1)),
            "the User has 9 extensions that no schema describes; at most 8 are accepted"
        );
    }

    #[rstest]
    #[case(json!({EXT: {"a": {"b": {"c": 1}}}}), format!("{EXT}:a.b must be a string, a number, a boolean or an array of those (an extension no schema describes nests one level)"))]
    #[case(json!({EXT: {"a": [[1]]}}), format!("{EXT}:a[0] must be a string, a number or a boolean"))]
    #[case(json!({EXT: {"a": [{"b": 1}]}}), format!("{EXT}:a[0] must be a string, a number or a boolean"))]
    #[case(json!({EXT: {"1a": 1}}), format!("{EXT}: \"1a\" is not an attribute name (a letter, then letters, digits, '-' or '_'; RFC 7643 §2.1)"))]
    #[case(json!({EXT: {"a b": 1}}), format!("{EXT}: \"a b\" is not an attribute name (a letter, then letters, digits, '-' or '_'; RFC 7643 §2.1)"))]
    #[case(json!({EXT: {"a": {"$ref": "r", "b.c": 1}}}), format!("{EXT}:a: \"b.c\" is not an attribute name (a letter, then letters, digits, '-' or '_'; RFC 7643 §2.1)"))]
    #[case(json!({EXT: 5}), format!("{EXT} must be an object"))]
    #[case(json!({"urn:bad nid:x": {"a": 1}}), "\"urn:bad nid:x\" is not a URN an extension can be kept under (RFC 8141: urn:NID:NSS)".to_owned())]
    #[case(json!({"urn:x": {"a": 1}}), "\"urn:x\" is not a URN an extension can be kept under (RFC 8141: urn:NID:NSS)".to_owned())]
    fn shapes_beyond_the_caps_are_invalid_value_naming_the_place(
        #[case] entries: Value,
        #[case] expected: String,
    ) {
        assert_eq!(detail(entries), expected);
    }

    #[test]
    fn names_and_urns_have_a_length_cap() {
        let name = format!("a{}", "b".repeat(NAME_BYTES - 1));
        assert!(canon(json!({EXT: {name.clone(): 1}})).is_ok());
        assert!(
            detail(json!({EXT: {format!("{name}c"): 1}}))
                .contains("is 129 bytes long; at most 128 are accepted")
        );
        let urn = format!("urn:example:{}", "u".repeat(URN_BYTES - 12));
        assert!(canon(json!({urn.clone(): {"a": 1}})).is_ok());
        assert!(
            detail(json!({format!("{urn}v"): {"a": 1}}))
                .contains("is 257 bytes long; at most 256 are accepted")
        );
    }
}
