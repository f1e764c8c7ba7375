//! POST/PUT bodies (RFC 7644 §3.3, §3.5.1) into dirsync's canonical JSON: schema
//! names, typed values, extensions under their URN (a user's unregistered ones
//! too, `scim::custom`), no readOnly/writeOnly data, no memberships. Pure: serde_json in, serde_json out; no I/O, HTTP or SQL.

use chrono::DateTime;
use serde_json::{Map, Value};

use super::custom;
use super::error::ScimError;
use super::schema::{self, AttrType, Attribute, Mutability, Resolved, ResourceType, Schema};

/// Why a body is being canonicalised. Only `Replace` (PUT) records an echoed `id`:
/// on create the server assigns the id (RFC 7644 §3.3) and templates send
/// `"id": null` (L5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Create,
    Replace,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberKind {
    User,
    Group,
}

/// One `members` element of a Group body or PATCH value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRef {
    pub value: String,
    /// From `type` (case-insensitive) or from a `$ref` ending in `/Users/<id>` or
    /// `/Groups/<id>`; `None` when the client said neither (Okta, O9).
    pub kind: Option<MemberKind>,
    /// The member's `display` as the client sent it: RFC 7643 §2.4 makes
    /// `display` immutable (set on add, never changed), not server-computed.
    /// Microsoft's reference tests send it as `displayName`
    /// (docs/vendor-quirks.md, MS-PM step 24).
    pub display: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Canonical {
    pub data: Map<String, Value>,
    /// `None` when the body had no `members` key; `Some(vec![])` for null or `[]`.
    pub members: Option<Vec<MemberRef>>,
    /// A string `id` echoed in a PUT body (Okta O5, X6), for the caller to compare
    /// with the URL id.
    pub echoed_id: Option<String>,
}

/// Turn a request body into the canonical form of a `rt` resource.
pub fn canonicalize(
    rt: &'static ResourceType,
    body: &Value,
    mode: Mode,
) -> Result<Canonical, ScimError> {
    let Some(object) = body.as_object() else {
        return Err(ScimError::invalid_syntax(format!(
            "a {} must be a JSON object",
            rt.name
        )));
    };
    let mut data = Map::new();
    let mut members = None;
    let mut echoed_id = None;
    let mut unregistered = Vec::new();
    for (key, value) in object {
        // E14, X8: `schemas` is rebuilt from the data; unknown URNs are harmless.
        if key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        // RFC 8141 §3 / X9: URN keys compare case-insensitively. L6: the extension
        // object counts even when its URN is missing from `schemas`.
        if let Some(extension) = rt.extension(key) {
            merge_extension(extension, value, &mut data)?;
            continue;
        }
        let Some(resolved) = resolve_body_key(rt, key) else {
            // E14: a user's extension under a URN no schema here describes is
            // kept as sent, for the directory's attribute mapping.
            if custom::is_custom(rt, key) {
                unregistered.push((key.as_str(), value));
            }
            // M3, E12: other unknown attributes are ignored, as Microsoft's
            // reference server does.
            continue;
        };
        let attr = resolved.attribute;
        if resolved.extension.is_none() && attr.name == "id" {
            if mode == Mode::Replace {
                echoed_id = value.as_str().map(str::to_owned);
            }
            continue;
        }
        if is_members(rt, &resolved) {
            members = Some(member_refs(value, attr.name)?);
            continue;
        }
        // readOnly (`meta`, User `groups`) is ignored on input (RFC 7643 §2.2, E13,
        // O2, L5); writeOnly `password` is accepted and dropped: dirsync never
        // stores credentials (O2).
        if matches!(
            attr.mutability,
            Mutability::ReadOnly | Mutability::WriteOnly
        ) {
            continue;
        }
        let coerced = coerce(attr, value, &resolved.to_string())?;
        insert(&mut data, resolved.extension, attr, coerced);
    }
    for (urn, attributes) in custom::canonical(rt, &unregistered)? {
        data.insert(urn, Value::Object(attributes));
    }
    Ok(Canonical {
        data: finish(rt, data)?,
        members,
        echoed_id,
    })
}

/// One attribute's value in canonical form; `None` means unassigned (RFC 7643 §2.5:
/// null, `""`, `[]` and `{}` are not stored, E11). `path` names the attribute in
/// error details ("emails[0].primary must be a boolean").
pub fn coerce(
    attr: &'static Attribute,
    value: &Value,
    path: &str,
) -> Result<Option<Value>, ScimError> {
    if is_manager(attr) {
        return manager(attr, value, path);
    }
    if attr.multi_valued {
        multi_valued(attr, value, path)
    } else {
        single(attr, value, path)
    }
}

/// Resolve `[urn:]name[.sub]` like [`ResourceType::resolve`], and additionally a
/// bare name that is not a core/common attribute but belongs to exactly one
/// extension (a flat `manager`, `department`: E10, E12).
pub fn resolve(
    rt: &'static ResourceType,
    urn: Option<&str>,
    name: &str,
    sub: Option<&str>,
) -> Option<Resolved> {
    rt.resolve(urn, name, sub).or_else(|| {
        if urn.is_some() {
            return None;
        }
        let mut owners = rt
            .extensions
            .iter()
            .filter(|e| e.schema.attribute(name).is_some());
        let owner = owners.next()?;
        if owners.next().is_some() {
            return None;
        }
        rt.resolve(Some(owner.schema.id), name, sub)
    })
}

/// Resolve a dotted path string (`name.givenName`, `urn:…:User:manager`,
/// `urn:…:User.manager`, flat `manager.value`) with the flat-extension fallback.
pub fn resolve_path(rt: &'static ResourceType, path: &str) -> Option<Resolved> {
    rt.resolve_path_str(path).or_else(|| {
        if path.contains(':') {
            return None;
        }
        let (name, sub) = match path.split_once('.') {
            Some((name, sub)) => (name, Some(sub)),
            None => (path, None),
        };
        resolve(rt, None, name, sub)
    })
}

/// Whether `resolved` is the Group `members` attribute, which lives in a table and
/// never in the canonical data.
pub fn is_members(rt: &ResourceType, resolved: &Resolved) -> bool {
    rt.schema.id == schema::GROUP
        && resolved.extension.is_none()
        && resolved.attribute.name == "members"
}

/// `members` as sent: an array, a lone object, or bare string ids (M7); null means
/// none. `$ref: null` is accepted (E7). A member with neither a string `value` nor
/// a `$ref` naming a User or Group is `invalidValue`. Duplicates keep the first.
pub fn member_refs(value: &Value, path: &str) -> Result<Vec<MemberRef>, ScimError> {
    let items: Vec<&Value> = match value {
        Value::Null => Vec::new(),
        Value::Array(items) => items.iter().collect(),
        Value::Object(_) | Value::String(_) => vec![value],
        _ => {
            return Err(ScimError::invalid_value(format!(
                "{path} must be an array of members"
            )));
        }
    };
    let attr = members_attribute();
    at_most(items.len(), attr.max_items, path)?;
    let mut out: Vec<MemberRef> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, item) in items.into_iter().enumerate() {
        if let Some(member) = member_ref(attr, item, &format!("{path}[{i}]"))?
            && seen.insert(member.value.clone())
        {
            out.push(member);
        }
    }
    Ok(out)
}

/// The Group `members` attribute of the registry, whose caps a member list obeys.
pub fn members_attribute() -> &'static Attribute {
    schema::GROUP_SCHEMA
        .attribute("members")
        .unwrap_or(&MEMBERS_FALLBACK)
}

/// Never used: the registry defines Group `members`; this keeps the lookup
/// total without an `expect`.
static MEMBERS_FALLBACK: Attribute = Attribute {
    name: "members",
    ty: AttrType::Complex,
    multi_valued: true,
    required: false,
    case_exact: false,
    mutability: Mutability::ReadWrite,
    returned: schema::Returned::Default,
    uniqueness: schema::Uniqueness::None,
    canonical_values: &[],
    reference_types: &[],
    sub_attributes: &[],
    description: "",
    max_bytes: schema::TEXT_BYTES,
    max_items: schema::MAX_MEMBERS_PER_REQUEST,
};

fn resolve_body_key(rt: &'static ResourceType, key: &str) -> Option<Resolved> {
    let resolved = if key.contains(':') {
        rt.resolve_path_str(key)
    } else {
        resolve(rt, None, key, None)
    };
    resolved.filter(|r| r.sub_attribute.is_none())
}

fn merge_extension(
    extension: &'static Schema,
    value: &Value,
    data: &mut Map<String, Value>,
) -> Result<(), ScimError> {
    let object = match value {
        Value::Null => return Ok(()),
        Value::Object(object) => object,
        _ => {
            return Err(ScimError::invalid_value(format!(
                "{} must be an object",
                extension.id
            )));
        }
    };
    for (key, value) in object {
        let Some(attr) = extension.attribute(key) else {
            continue;
        };
        if matches!(
            attr.mutability,
            Mutability::ReadOnly | Mutability::WriteOnly
        ) {
            continue;
        }
        let coerced = coerce(attr, value, &format!("{}:{}", extension.id, attr.name))?;
        insert(data, Some(extension.id), attr, coerced);
    }
    Ok(())
}

/// Store a value; an unassigned one stores nothing, so a later `"department": null`
/// does not undo a department sent inside the extension object (E12).
fn insert(
    data: &mut Map<String, Value>,
    extension: Option<&'static str>,
    attr: &Attribute,
    value: Option<Value>,
) {
    let Some(value) = value else {
        return;
    };
    match extension {
        None => {
            data.insert(attr.name.to_owned(), value);
        }
        Some(urn) => {
            let slot = data.entry(urn).or_insert_with(|| Value::Object(Map::new()));
            if let Some(object) = slot.as_object_mut() {
                object.insert(attr.name.to_owned(), value);
            }
        }
    }
}

/// Required attributes (M5), empty extensions dropped, `schemas` rebuilt first
/// (the registry's extensions, then the unregistered ones as stored).
fn finish(
    rt: &'static ResourceType,
    data: Map<String, Value>,
) -> Result<Map<String, Value>, ScimError> {
    for attr in rt.schema.attributes.iter().filter(|a| a.required) {
        let present = data
            .get(attr.name)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.trim().is_empty());
        if !present {
            return Err(ScimError::invalid_value(format!(
                "{} is required",
                attr.name
            )));
        }
    }
    let mut schemas = vec![Value::from(rt.schema.id)];
    for extension in rt.extensions {
        if data
            .get(extension.schema.id)
            .and_then(Value::as_object)
            .is_some_and(|o| !o.is_empty())
        {
            schemas.push(Value::from(extension.schema.id));
        }
    }
    schemas.extend(
        data.keys()
            .filter(|key| custom::is_custom(rt, key))
            .map(|key| Value::from(key.as_str())),
    );
    let mut out = Map::new();
    out.insert("schemas".to_owned(), Value::Array(schemas));
    for (key, value) in data {
        let empty_extension =
            rt.extension(&key).is_some() && value.as_object().is_none_or(|o| o.is_empty());
        if !empty_extension {
            out.insert(key, value);
        }
    }
    let size = json_len(&out);
    if size > schema::MAX_RESOURCE_BYTES {
        return Err(ScimError::invalid_value(format!(
            "the {} is {size} bytes as stored; at most {} are accepted",
            rt.name,
            schema::MAX_RESOURCE_BYTES
        )));
    }
    Ok(out)
}

/// The length of `data` serialised, without building the text.
pub fn json_len(data: &Map<String, Value>) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a `Map` to a sink that never fails cannot fail.
    let _ = serde_json::to_writer(&mut count, data);
    count.0
}

fn multi_valued(
    attr: &'static Attribute,
    value: &Value,
    path: &str,
) -> Result<Option<Value>, ScimError> {
    let items: Vec<&Value> = match value {
        Value::Null => return Ok(None),
        Value::String(s) if s.is_empty() => return Ok(None),
        Value::Array(items) => items.iter().collect(),
        // L3: OneLogin sends a lone object. A lone string (`"emails": "x"`) is
        // not a list of anything: invalidValue (bare strings stay accepted as
        // elements of an array, M7).
        Value::Object(_) => vec![value],
        _ => return Err(ScimError::invalid_value(format!("{path} must be an array"))),
    };
    at_most(items.len(), attr.max_items, path)?;
    let bare_value = attr.is_complex() && attr.sub_attribute("value").is_some();
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let element_path = format!("{path}[{i}]");
        let element = match item {
            Value::String(s) if bare_value => {
                let mut wrapped = Map::new();
                wrapped.insert("value".to_owned(), Value::String(s.clone()));
                single(attr, &Value::Object(wrapped), &element_path)?
            }
            _ => single(attr, item, &element_path)?,
        };
        out.extend(element);
    }
    // RFC 7643 §2.4: "primary" true at most once; P5: keep the first.
    let mut seen_primary = false;
    for element in &mut out {
        if let Some(object) = element.as_object_mut()
            && object.get("primary") == Some(&Value::Bool(true))
        {
            if seen_primary {
                object.insert("primary".to_owned(), Value::Bool(false));
            }
            seen_primary = true;
        }
    }
    Ok((!out.is_empty()).then_some(Value::Array(out)))
}

fn single(attr: &'static Attribute, value: &Value, path: &str) -> Result<Option<Value>, ScimError> {
    if value.is_null() || value.as_str() == Some("") {
        return Ok(None);
    }
    let invalid = |expected: &str| ScimError::invalid_value(format!("{path} must be {expected}"));
    match attr.ty {
        // E24: stored exactly as sent.
        AttrType::String | AttrType::Reference | AttrType::Binary => match value {
            Value::String(s) => {
                within(s, attr.max_bytes, path)?;
                Ok(Some(value.clone()))
            }
            _ => Err(invalid("a string")),
        },
        AttrType::DateTime => match value.as_str().map(DateTime::parse_from_rfc3339) {
            Some(Ok(_)) => Ok(Some(value.clone())),
            _ => Err(invalid("an RFC 3339 dateTime")),
        },
        // E2, E3, L4: string booleans in any case.
        AttrType::Boolean => match value {
            Value::Bool(_) => Ok(Some(value.clone())),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(Some(Value::Bool(true))),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(Some(Value::Bool(false))),
            _ => Err(invalid("a boolean")),
        },
        AttrType::Integer => match value {
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(Some(value.clone())),
            _ => Err(invalid("an integer")),
        },
        AttrType::Decimal => match value {
            Value::Number(_) => Ok(Some(value.clone())),
            _ => Err(invalid("a number")),
        },
        AttrType::Complex => match value {
            Value::Object(object) => complex(attr, object, path),
            _ => Err(invalid("an object")),
        },
    }
}

fn complex(
    attr: &'static Attribute,
    object: &Map<String, Value>,
    path: &str,
) -> Result<Option<Value>, ScimError> {
    let mut out = Map::new();
    for (key, value) in object {
        // E12: unknown sub-attributes are dropped; readOnly ones
        // (`manager.displayName`) are ignored on input (RFC 7643 §2.2).
        let Some(sub) = attr.sub_attribute(key) else {
            continue;
        };
        if sub.mutability == Mutability::ReadOnly {
            continue;
        }
        if let Some(v) = single(sub, value, &format!("{path}.{}", sub.name))? {
            out.insert(sub.name.to_owned(), v);
        }
    }
    Ok((!out.is_empty()).then_some(Value::Object(out)))
}

/// The enterprise `manager`: a single reference that is always written whole, never
/// merged sub-attribute by sub-attribute (a merge would keep a stale `$ref`).
pub(crate) fn is_manager(attr: &'static Attribute) -> bool {
    schema::ENTERPRISE_USER_SCHEMA
        .attribute("manager")
        .is_some_and(|m| std::ptr::eq(m, attr))
}

/// E10, L7: a string id, `{value}` / `{managerId}`, or a one-element array of such
/// an object; blank means no manager. Canonical: `{"value": id}` plus `$ref`.
fn manager(
    attr: &'static Attribute,
    value: &Value,
    path: &str,
) -> Result<Option<Value>, ScimError> {
    let cap = |name: &str| {
        attr.sub_attribute(name)
            .map_or(schema::TEXT_BYTES, |a| a.max_bytes)
    };
    match value {
        Value::Null => Ok(None),
        Value::String(s) => {
            within(s, cap("value"), path)?;
            Ok(non_blank(s).map(|id| manager_object(id, None)))
        }
        Value::Array(items) => match items.as_slice() {
            [] => Ok(None),
            [one @ (Value::Object(_) | Value::String(_) | Value::Null)] => manager(attr, one, path),
            _ => Err(ScimError::invalid_value(format!(
                "{path} must be a single manager"
            ))),
        },
        Value::Object(object) => {
            let (mut value_id, mut manager_id, mut reference) = (None, None, None);
            for (key, v) in object {
                let slot = if key.eq_ignore_ascii_case("value") {
                    &mut value_id
                } else if key.eq_ignore_ascii_case("managerId") {
                    &mut manager_id
                } else if key.eq_ignore_ascii_case("$ref") {
                    &mut reference
                } else {
                    continue;
                };
                match v {
                    Value::String(s) => {
                        let at = format!("{path}.{key}");
                        let sub = if key.eq_ignore_ascii_case("$ref") {
                            "$ref"
                        } else {
                            "value"
                        };
                        within(s, cap(sub), &at)?;
                        *slot = non_blank(s);
                    }
                    Value::Null => {}
                    _ => {
                        return Err(ScimError::invalid_value(format!(
                            "{path}.{key} must be a string"
                        )));
                    }
                }
            }
            Ok(value_id
                .or(manager_id)
                .map(|id| manager_object(id, reference)))
        }
        _ => Err(ScimError::invalid_value(format!(
            "{path} must be a manager id or object"
        ))),
    }
}

fn manager_object(id: &str, reference: Option<&str>) -> Value {
    let mut object = Map::new();
    object.insert("value".to_owned(), Value::from(id));
    if let Some(reference) = reference {
        object.insert("$ref".to_owned(), Value::from(reference));
    }
    Value::Object(object)
}

/// `invalidValue` naming the attribute and its cap when `s` is longer than
/// `max` bytes (`schema::TEXT_BYTES` and the caps beside it). SCIM has no
/// `tooLong` scimType (RFC 7644 §3.12).
fn within(s: &str, max: usize, path: &str) -> Result<(), ScimError> {
    if s.len() > max {
        return Err(ScimError::too_long(path, s.len(), max));
    }
    Ok(())
}

/// `invalidValue` naming the attribute and its cap when a multi-valued
/// attribute has more than `max` elements.
fn at_most(count: usize, max: usize, path: &str) -> Result<(), ScimError> {
    if count > max {
        return Err(ScimError::too_many_values(path, count, max));
    }
    Ok(())
}

/// The string itself unless it is empty or whitespace-only (L7); never trimmed (E24).
fn non_blank(s: &str) -> Option<&str> {
    (!s.trim().is_empty()).then_some(s)
}

fn member_ref(
    attr: &'static Attribute,
    item: &Value,
    path: &str,
) -> Result<Option<MemberRef>, ScimError> {
    let missing = || ScimError::invalid_value(format!("{path}.value is required"));
    let cap = |name: &str| {
        attr.sub_attribute(name)
            .map_or(schema::TEXT_BYTES, |a| a.max_bytes)
    };
    match item {
        Value::Null => Ok(None),
        Value::String(s) => {
            within(s, cap("value"), path)?;
            non_blank(s)
                .map(|value| {
                    Some(MemberRef {
                        value: value.to_owned(),
                        kind: None,
                        display: None,
                    })
                })
                .ok_or_else(missing)
        }
        Value::Object(object) => {
            let (mut value, mut reference, mut kind, mut display) = (None, None, None, None);
            for (key, v) in object {
                let text = match v {
                    Value::String(s) => {
                        let sub = if key.eq_ignore_ascii_case("$ref") {
                            "$ref"
                        } else if key.eq_ignore_ascii_case("displayName") {
                            "display"
                        } else {
                            key.as_str()
                        };
                        within(s, cap(sub), &format!("{path}.{key}"))?;
                        Some(s.as_str())
                    }
                    Value::Null => None,
                    _ => {
                        return Err(ScimError::invalid_value(format!(
                            "{path}.{key} must be a string"
                        )));
                    }
                };
                if key.eq_ignore_ascii_case("value") {
                    value = text.and_then(non_blank);
                } else if key.eq_ignore_ascii_case("$ref") {
                    reference = text.and_then(parse_member_ref);
                } else if key.eq_ignore_ascii_case("type") {
                    kind = text.and_then(parse_kind);
                } else if key.eq_ignore_ascii_case("display")
                    || (key.eq_ignore_ascii_case("displayName") && display.is_none())
                {
                    display = text.and_then(non_blank).map(str::to_owned);
                }
            }
            let value = match (value, &reference) {
                (Some(value), _) => value.to_owned(),
                (None, Some((id, _))) => id.clone(),
                (None, None) => return Err(missing()),
            };
            Ok(Some(MemberRef {
                value,
                kind: kind.or(reference.map(|(_, k)| k)),
                display,
            }))
        }
        _ => Err(ScimError::invalid_value(format!(
            "{path} must be a member object"
        ))),
    }
}

fn parse_kind(s: &str) -> Option<MemberKind> {
    if s.eq_ignore_ascii_case("User") {
        Some(MemberKind::User)
    } else if s.eq_ignore_ascii_case("Group") {
        Some(MemberKind::Group)
    } else {
        None
    }
}

/// `…/Users/<id>` or `…/Groups/<id>` (RFC 7643 §4.2 `$ref`).
fn parse_member_ref(reference: &str) -> Option<(String, MemberKind)> {
    let mut segments = reference.trim_end_matches('/').rsplit('/');
    let id = segments.next().filter(|id| !id.is_empty())?;
    let collection = segments.next()?;
    let kind = if collection.eq_ignore_ascii_case("Users") {
        MemberKind::User
    } else if collection.eq_ignore_ascii_case("Groups") {
        MemberKind::Group
    } else {
        return None;
    };
    Some((id.to_owned(), kind))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::schema::{ENTERPRISE_USER, GROUP_RESOURCE, USER_RESOURCE};
    use super::*;
    use rstest::rstest;
    use serde_json::json;

    const MS_GROUP_URN: &str =
        "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group";

    fn user(body: Value) -> Map<String, Value> {
        canonicalize(&USER_RESOURCE, &body, Mode::Create)
            .unwrap()
            .data
    }

    fn user_err(body: Value) -> ScimError {
        canonicalize(&USER_RESOURCE, &body, Mode::Create).unwrap_err()
    }

    fn group(body: Value) -> Canonical {
        canonicalize(&GROUP_RESOURCE, &body, Mode::Create).unwrap()
    }

    fn kind(err: &ScimError) -> (u16, Option<&'static str>) {
        (err.status.as_u16(), err.scim_type.map(|t| t.as_str()))
    }

    #[rstest]
    #[case(json!([]))]
    #[case(json!("userName"))]
    #[case(json!(null))]
    fn a_body_that_is_not_an_object_is_invalid_syntax(#[case] body: Value) {
        assert_eq!(kind(&user_err(body)), (400, Some("invalidSyntax")));
    }

    #[test]
    fn attribute_names_and_extension_urns_match_case_insensitively() {
        // M1: Microsoft's reference collection posts these casings.
        let data = user(json!({
            "USERNAME": "bjensen",
            "Emails": [{"Primary": true, "TYPE": "work", "Value": "b@example.com"}],
            "URN:IETF:params:scim:schemas:extension:enterprise:2.0:User": {
                "Department": "bob", "Manager": {"Value": "SuzzyQ"}
            }
        }));
        assert_eq!(
            Value::Object(data),
            json!({
                "schemas": [schema::USER, ENTERPRISE_USER],
                "userName": "bjensen",
                "emails": [{"primary": true, "type": "work", "value": "b@example.com"}],
                ENTERPRISE_USER: {"department": "bob", "manager": {"value": "SuzzyQ"}}
            })
        );
    }

    #[test]
    fn unknown_attributes_and_sub_attributes_are_dropped() {
        // M3: a misspelled `adreses` is ignored; E12: so is a stray sub-attribute.
        let data = user(json!({
            "userName": "bjensen",
            "adreses": [{"formatted": "x"}],
            "emails": [{"value": "b@example.com", "verified": true}],
            "name": {"givenName": "Barbara", "nick": "B"}
        }));
        assert_eq!(
            Value::Object(data),
            json!({
                "schemas": [schema::USER],
                "userName": "bjensen",
                "emails": [{"value": "b@example.com"}],
                "name": {"givenName": "Barbara"}
            })
        );
    }

    #[test]
    fn unknown_schema_urns_are_ignored_and_schemas_is_rebuilt() {
        // E14: Entra lists a Microsoft schema on group create.
        let canonical = group(json!({
            "schemas": [schema::GROUP, MS_GROUP_URN],
            "displayName": "Sales"
        }));
        assert_eq!(canonical.data.get("schemas"), Some(&json!([schema::GROUP])));
        // A URN claimed in `schemas` but without data is not kept either.
        let data = user(json!({"schemas": [schema::USER, ENTERPRISE_USER], "userName": "a"}));
        assert_eq!(data.get("schemas"), Some(&json!([schema::USER])));
    }

    #[test]
    fn an_extension_object_counts_even_when_its_urn_is_missing_from_schemas() {
        // L6: OneLogin templates.
        let data = user(json!({
            "schemas": [schema::USER],
            "userName": "a",
            ENTERPRISE_USER: {"employeeNumber": "42"}
        }));
        assert_eq!(
            data.get("schemas"),
            Some(&json!([schema::USER, ENTERPRISE_USER]))
        );
        assert_eq!(
            data.get(ENTERPRISE_USER),
            Some(&json!({"employeeNumber": "42"}))
        );
    }

    #[test]
    fn a_scim_1_1_onelogin_template_is_read_as_scim_2_0() {
        // L2 (SCIM 1.1 URNs), L3 (lone emails object), L4 (string boolean), L5 (id
        // null, meta), L7 (managerId; blank displayName), from OneLogin's templates.
        let data = user(json!({
            "schemas": ["urn:scim:schemas:core:1.0", "urn:scim:schemas:extension:enterprise:1.0"],
            "id": null,
            "meta": {"resourceType": "User"},
            "userName": "ann@example.com",
            "active": "true",
            "emails": {"value": "ann@example.com", "type": "work", "primary": true},
            "urn:scim:schemas:extension:enterprise:1.0": {
                "department": "Sales",
                "manager": {"managerId": "m1", "displayName": " "}
            }
        }));
        assert_eq!(
            Value::Object(data),
            json!({
                "schemas": [schema::USER, ENTERPRISE_USER],
                "userName": "ann@example.com",
                "active": true,
                "emails": [{"value": "ann@example.com", "type": "work", "primary": true}],
                ENTERPRISE_USER: {"department": "Sales", "manager": {"value": "m1"}}
            })
        );
    }

    #[test]
    fn flat_extension_attributes_go_under_their_extension() {
        let data = user(json!({
            "userName": "a",
            "department": "Sales",
            "employeeNumber": "7",
            "manager": "m1",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter": "cc"
        }));
        assert_eq!(
            data.get(ENTERPRISE_USER),
            Some(
                &json!({"department": "Sales", "employeeNumber": "7", "manager": {"value": "m1"}, "costCenter": "cc"})
            )
        );
    }

    #[test]
    fn a_flat_null_does_not_undo_a_value_sent_in_the_extension_object() {
        // E12: Entra's tutorial sends `"department": null` beside real data.
        let data = user(json!({
            "userName": "a",
            ENTERPRISE_USER: {"department": "Sales"},
            "department": null,
            "manager": null
        }));
        assert_eq!(
            data.get(ENTERPRISE_USER),
            Some(&json!({"department": "Sales"}))
        );
    }

    #[test]
    fn read_only_attributes_are_ignored_and_password_is_dropped() {
        // O2, O5, E13, L5: echoed readOnly data and a writeOnly password.
        let data = user(json!({
            "id": "abc",
            "userName": "a",
            "meta": {"resourceType": "User"},
            "groups": [{"value": "g1"}],
            "password": "1mz050nq",
            "manager": {"value": "m1", "displayName": "Boss"}
        }));
        assert_eq!(
            Value::Object(data),
            json!({
                "schemas": [schema::USER, ENTERPRISE_USER],
                "userName": "a",
                ENTERPRISE_USER: {"manager": {"value": "m1"}}
            })
        );
    }

    #[rstest]
    #[case(Mode::Replace, json!("abc"), Some("abc"))]
    #[case(Mode::Replace, json!(null), None)]
    #[case(Mode::Create, json!("abc"), None)]
    fn a_string_id_is_echoed_only_on_replace(
        #[case] mode: Mode,
        #[case] id: Value,
        #[case] expected: Option<&str>,
    ) {
        let canonical =
            canonicalize(&USER_RESOURCE, &json!({"id": id, "userName": "a"}), mode).unwrap();
        assert_eq!(canonical.echoed_id.as_deref(), expected);
        assert!(!canonical.data.contains_key("id"));
    }

    #[rstest]
    #[case(json!({"active": "True"}), "active", json!(true))]
    #[case(json!({"active": "FALSE"}), "active", json!(false))]
    #[case(json!({"active": false}), "active", json!(false))]
    #[case(json!({"emails": [{"value": "x", "primary": "true"}]}), "emails", json!([{"value": "x", "primary": true}]))]
    #[case(json!({"nickName": " Bab "}), "nickName", json!(" Bab "))]
    #[case(json!({"phoneNumbers": [{"value": "55555555555"}]}), "phoneNumbers", json!([{"value": "55555555555"}]))]
    #[case(json!({"profileUrl": "https://x/y"}), "profileUrl", json!("https://x/y"))]
    fn values_are_coerced_to_their_schema_type(
        #[case] extra: Value,
        #[case] key: &str,
        #[case] expected: Value,
    ) {
        // E2, E3, L4 (string booleans); E24 (strings as sent).
        let mut body = json!({"userName": "a"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        assert_eq!(user(body).get(key), Some(&expected));
    }

    #[rstest]
    #[case(json!({"active": "yes"}), "active must be a boolean")]
    #[case(json!({"active": 1}), "active must be a boolean")]
    #[case(json!({"title": 3}), "title must be a string")]
    #[case(json!({"name": "Barbara"}), "name must be an object")]
    #[case(json!({"name": {"givenName": true}}), "name.givenName must be a string")]
    #[case(json!({"emails": 5}), "emails must be an array")]
    #[case(json!({"emails": "x"}), "emails must be an array")]
    #[case(json!({"roles": "admin"}), "roles must be an array")]
    #[case(json!({"emails": [{"value": "x"}, {"value": "y", "primary": "maybe"}]}), "emails[1].primary must be a boolean")]
    #[case(json!({"emails": [true]}), "emails[0] must be an object")]
    #[case(json!({"userName": ["a"]}), "userName must be a string")]
    #[case(json!({ENTERPRISE_USER: "x"}), "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User must be an object")]
    #[case(json!({"manager": 7}), "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager must be a manager id or object")]
    fn ill_typed_values_are_invalid_value_naming_the_path(
        #[case] extra: Value,
        #[case] detail: &str,
    ) {
        let mut body = json!({"userName": "a"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let err = user_err(body);
        assert_eq!(kind(&err), (400, Some("invalidValue")));
        assert_eq!(err.detail, detail);
    }

    const fn scalar(name: &'static str, ty: AttrType) -> Attribute {
        Attribute {
            name,
            ty,
            multi_valued: false,
            required: false,
            case_exact: false,
            mutability: Mutability::ReadWrite,
            returned: schema::Returned::Default,
            uniqueness: schema::Uniqueness::None,
            canonical_values: &[],
            reference_types: &[],
            sub_attributes: &[],
            description: "",
            max_bytes: schema::TEXT_BYTES,
            max_items: 0,
        }
    }
    static COUNT: Attribute = scalar("count", AttrType::Integer);
    static RATIO: Attribute = scalar("ratio", AttrType::Decimal);

    #[rstest]
    #[case(&COUNT, json!(3), Ok(Some(json!(3))))]
    #[case(&COUNT, json!(3.5), Err("count must be an integer"))]
    #[case(&COUNT, json!("3"), Err("count must be an integer"))]
    #[case(&RATIO, json!(3.5), Ok(Some(json!(3.5))))]
    #[case(&RATIO, json!(3), Ok(Some(json!(3))))]
    #[case(&RATIO, json!(true), Err("ratio must be a number"))]
    #[case(&RATIO, json!(null), Ok(None))]
    fn numbers_must_be_json_numbers(
        #[case] attr: &'static Attribute,
        #[case] value: Value,
        #[case] expected: Result<Option<Value>, &str>,
    ) {
        let got = coerce(attr, &value, attr.name).map_err(|e| e.detail);
        assert_eq!(got, expected.map_err(str::to_owned));
    }

    #[test]
    fn date_times_must_parse_as_rfc3339() {
        let attr = USER_RESOURCE
            .resolve(None, "meta", Some("created"))
            .unwrap()
            .target();
        assert_eq!(
            coerce(attr, &json!("2024-01-02T03:04:05.5Z"), "meta.created").unwrap(),
            Some(json!("2024-01-02T03:04:05.5Z"))
        );
        let err = coerce(attr, &json!("yesterday"), "meta.created").unwrap_err();
        assert_eq!(err.detail, "meta.created must be an RFC 3339 dateTime");
    }

    #[test]
    fn a_lone_object_or_bare_string_becomes_a_one_element_array() {
        // L3: OneLogin sends `emails` as an object; M7: bare string values.
        let data = user(json!({
            "userName": "a",
            "emails": {"value": "a@example.com", "type": "work", "primary": true},
            "roles": ["admin", {"value": "dev"}]
        }));
        assert_eq!(
            data.get("emails"),
            Some(&json!([{"value": "a@example.com", "type": "work", "primary": true}]))
        );
        assert_eq!(
            data.get("roles"),
            Some(&json!([{"value": "admin"}, {"value": "dev"}]))
        );
    }

    #[test]
    fn null_empty_string_and_empty_array_are_not_stored() {
        // RFC 7643 §2.5, E11, E12, E13.
        let data = user(json!({
            "userName": "a",
            "title": null,
            "nickName": "",
            "roles": [],
            "addresses": null,
            "name": {"givenName": ""},
            "emails": [{"value": ""}, null],
            "active": "",
            ENTERPRISE_USER: {"department": null, "manager": ""}
        }));
        assert_eq!(
            Value::Object(data),
            json!({"schemas": [schema::USER], "userName": "a"})
        );
    }

    #[test]
    fn only_the_first_primary_element_stays_primary_and_order_is_kept() {
        // P5: Ping may flag two emails primary; O15: client order is preserved.
        let data = user(json!({
            "userName": "a",
            "emails": [
                {"value": "1@x", "primary": false},
                {"value": "2@x", "primary": true},
                {"value": "3@x", "primary": "True"}
            ]
        }));
        assert_eq!(
            data.get("emails"),
            Some(&json!([
                {"value": "1@x", "primary": false},
                {"value": "2@x", "primary": true},
                {"value": "3@x", "primary": false}
            ]))
        );
    }

    #[rstest]
    #[case(json!("m1"), Some(json!({"value": "m1"})))]
    #[case(json!({"value": "m1"}), Some(json!({"value": "m1"})))]
    #[case(json!({"managerId": "m1", "displayName": "Boss"}), Some(json!({"value": "m1"})))]
    #[case(json!({"managerId": "m2", "Value": "m1"}), Some(json!({"value": "m1"})))]
    #[case(json!([{"$ref": "https://h/scim/Users/m1", "value": "m1"}]), Some(json!({"value": "m1", "$ref": "https://h/scim/Users/m1"})))]
    #[case(json!(""), None)]
    #[case(json!("   "), None)]
    #[case(json!(null), None)]
    #[case(json!([]), None)]
    #[case(json!({"managerId": "", "displayName": " "}), None)]
    fn the_manager_arrives_in_three_shapes(
        #[case] manager: Value,
        #[case] expected: Option<Value>,
    ) {
        // E10 (Entra), L7 (OneLogin).
        let data = user(json!({"userName": "a", ENTERPRISE_USER: {"manager": manager}}));
        let stored = data
            .get(ENTERPRISE_USER)
            .and_then(|e| e.get("manager"))
            .cloned();
        assert_eq!(stored, expected);
    }

    #[test]
    fn a_manager_array_with_two_entries_is_invalid_value() {
        let err = user_err(json!({"userName": "a", "manager": [{"value": "a"}, {"value": "b"}]}));
        assert_eq!(kind(&err), (400, Some("invalidValue")));
    }

    #[rstest]
    #[case(json!({}))]
    #[case(json!({"userName": ""}))]
    #[case(json!({"userName": "   "}))]
    #[case(json!({"userName": null}))]
    #[case(json!({"not": "a scim resource"}))]
    fn a_user_without_user_name_is_invalid_value(#[case] body: Value) {
        // M5, X8.
        let err = user_err(body);
        assert_eq!(kind(&err), (400, Some("invalidValue")));
        assert_eq!(err.detail, "userName is required");
    }

    #[test]
    fn a_group_without_display_name_is_invalid_value() {
        let err = canonicalize(
            &GROUP_RESOURCE,
            &json!({"displayName": " ", "members": []}),
            Mode::Replace,
        )
        .unwrap_err();
        assert_eq!(err.detail, "displayName is required");
    }

    #[test]
    fn group_members_go_to_members_and_never_into_data() {
        // E7 (`$ref: null`), O9 (display, no type), M7 (bare string).
        let canonical = group(json!({
            "displayName": "Sales",
            "Members": [
                {"value": "u1", "$ref": null, "display": "Ann"},
                {"value": "g1", "type": "group"},
                {"$ref": "https://h/scim/v2/Users/u2"},
                {"value": "u3", "$ref": "../Groups/u3"},
                "u4",
                {"value": "u1"}
            ]
        }));
        assert!(!canonical.data.contains_key("members"));
        assert_eq!(
            canonical.members,
            Some(vec![
                MemberRef {
                    value: "u1".into(),
                    kind: None,
                    display: Some("Ann".into()),
                },
                MemberRef {
                    value: "g1".into(),
                    kind: Some(MemberKind::Group),
                    display: None,
                },
                MemberRef {
                    value: "u2".into(),
                    kind: Some(MemberKind::User),
                    display: None,
                },
                MemberRef {
                    value: "u3".into(),
                    kind: Some(MemberKind::Group),
                    display: None,
                },
                MemberRef {
                    value: "u4".into(),
                    kind: None,
                    display: None,
                },
            ])
        );
    }

    #[rstest]
    #[case(json!({"displayName": "S"}), None)]
    #[case(json!({"displayName": "S", "members": null}), Some(vec![]))]
    #[case(json!({"displayName": "S", "members": []}), Some(vec![]))]
    fn absent_members_differ_from_empty_members(
        #[case] body: Value,
        #[case] expected: Option<Vec<MemberRef>>,
    ) {
        assert_eq!(group(body).members, expected);
    }

    #[rstest]
    #[case(json!([{"display": "Ann"}]))]
    #[case(json!([{"value": ""}]))]
    #[case(json!([{"value": 5}]))]
    #[case(json!([{"$ref": "https://h/scim/v2/Things/x"}]))]
    #[case(json!(5))]
    fn a_member_without_a_usable_value_is_invalid_value(#[case] members: Value) {
        let err = canonicalize(
            &GROUP_RESOURCE,
            &json!({"displayName": "S", "members": members}),
            Mode::Create,
        )
        .unwrap_err();
        assert_eq!(kind(&err), (400, Some("invalidValue")));
    }

    #[test]
    fn canonical_data_canonicalizes_to_itself() {
        let data = user(json!({
            "userName": "a",
            "name": {"givenName": "B"},
            "emails": [{"value": "a@x", "primary": true}],
            "manager": {"value": "m", "$ref": "../Users/m"}
        }));
        let again =
            canonicalize(&USER_RESOURCE, &Value::Object(data.clone()), Mode::Replace).unwrap();
        assert_eq!(again.data, data);
    }

    #[test]
    fn flat_names_resolve_to_the_only_extension_that_has_them() {
        let r = resolve_path(&USER_RESOURCE, "manager.value").unwrap();
        assert_eq!(
            (r.extension, r.target().name),
            (Some(ENTERPRISE_USER), "value")
        );
        assert!(resolve_path(&GROUP_RESOURCE, "manager").is_none());
        assert!(resolve_path(&USER_RESOURCE, "urn:x:y:manager").is_none());
    }

    #[rstest]
    #[case("title", schema::TEXT_BYTES)]
    #[case("profileUrl", schema::REFERENCE_BYTES)]
    fn a_string_at_its_cap_is_kept_and_one_byte_more_is_invalid_value(
        #[case] name: &str,
        #[case] cap: usize,
    ) {
        let at = user(json!({"userName": "a", name: "é".repeat(cap / 2)}));
        assert_eq!(
            at.get(name).and_then(Value::as_str).map(str::len),
            Some(cap)
        );
        let err = user_err(json!({"userName": "a", name: format!("x{}", "é".repeat(cap / 2))}));
        assert_eq!(kind(&err), (400, Some("invalidValue")));
        assert_eq!(
            err.detail,
            format!(
                "{name} is {} bytes long; at most {cap} are accepted",
                cap + 1
            )
        );
    }

    #[rstest]
    #[case(json!({"addresses": [{"streetAddress": "s".repeat(schema::ADDRESS_BYTES + 1)}]}), "addresses[0].streetAddress is 2049 bytes long; at most 2048 are accepted")]
    #[case(json!({"manager": "m".repeat(schema::TEXT_BYTES + 1)}), "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager is 1025 bytes long; at most 1024 are accepted")]
    #[case(json!({ENTERPRISE_USER: {"department": "d".repeat(schema::TEXT_BYTES + 1)}}), "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department is 1025 bytes long; at most 1024 are accepted")]
    #[case(json!({"x509Certificates": [{"value": "c".repeat(schema::CERTIFICATE_BYTES + 1)}]}), "x509Certificates[0].value is 16385 bytes long; at most 16384 are accepted")]
    fn caps_hold_in_sub_attributes_and_extensions(#[case] extra: Value, #[case] detail: &str) {
        let mut body = json!({"userName": "a"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let err = user_err(body);
        assert_eq!(kind(&err), (400, Some("invalidValue")));
        assert_eq!(err.detail, detail);
    }

    #[test]
    fn a_multi_valued_attribute_takes_its_cap_of_values_and_no_more() {
        let emails = |n: usize| -> Vec<Value> {
            (0..n).map(|i| json!({"value": format!("{i}@x")})).collect()
        };
        let at = user(json!({"userName": "a", "emails": emails(schema::MAX_ITEMS)}));
        assert_eq!(
            at["emails"].as_array().map(Vec::len),
            Some(schema::MAX_ITEMS)
        );
        let err = user_err(json!({"userName": "a", "emails": emails(schema::MAX_ITEMS + 1)}));
        assert_eq!(
            err.detail,
            "emails has 101 values; at most 100 are accepted"
        );
        let roles: Vec<Value> = (0..=schema::MAX_GRANTS)
            .map(|i| json!(i.to_string()))
            .collect();
        let err = user_err(json!({"userName": "a", "roles": roles}));
        assert_eq!(
            err.detail,
            "roles has 1001 values; at most 1000 are accepted"
        );
    }

    #[test]
    fn a_group_names_at_most_its_cap_of_members_in_one_body() {
        let members = |n: usize| -> Vec<Value> { (0..n).map(|i| json!(i.to_string())).collect() };
        let at =
            group(json!({"displayName": "S", "members": members(schema::MAX_MEMBERS_PER_REQUEST)}));
        assert_eq!(
            at.members.map(|m| m.len()),
            Some(schema::MAX_MEMBERS_PER_REQUEST)
        );
        let err = canonicalize(
            &GROUP_RESOURCE,
            &json!({"displayName": "S", "members": members(schema::MAX_MEMBERS_PER_REQUEST + 1)}),
            Mode::Create,
        )
        .unwrap_err();
        assert_eq!(
            err.detail,
            "members has 10001 values; at most 10000 are accepted"
        );
        let err = canonicalize(
            &GROUP_RESOURCE,
            &json!({"displayName": "S", "members": [{"value": "u", "display": "d".repeat(schema::TEXT_BYTES + 1)}]}),
            Mode::Create,
        )
        .unwrap_err();
        assert_eq!(
            err.detail,
            "members[0].display is 1025 bytes long; at most 1024 are accepted"
        );
    }

    /// A user whose canonical JSON is exactly `size` bytes.
    fn user_of_size(size: usize) -> Value {
        let base = user(json!({"userName": "a", "nickName": "n"}));
        let pad = size - json_len(&base) - 1;
        let roles: Vec<Value> = (0..pad / 1000)
            .map(|_| json!({"value": "r".repeat(1000 - 14)}))
            .collect();
        let mut body = json!({"userName": "a", "nickName": "n", "roles": roles});
        let short = size - json_len(&user(body.clone()));
        body["nickName"] = json!("n".repeat(1 + short));
        body
    }

    #[test]
    fn a_resource_at_the_total_cap_is_kept_and_one_byte_more_is_invalid_value() {
        let at = user(user_of_size(schema::MAX_RESOURCE_BYTES));
        assert_eq!(json_len(&at), schema::MAX_RESOURCE_BYTES);
        let err = user_err(user_of_size(schema::MAX_RESOURCE_BYTES + 1));
        assert_eq!(kind(&err), (400, Some("invalidValue")));
        assert_eq!(
            err.detail,
            "the User is 65537 bytes as stored; at most 65536 are accepted"
        );
    }

    // --- extensions no schema describes (E14) ----------------------------------

    const CUSTOM: &str = "urn:ietf:params:scim:schemas:extension:Contoso:2.0:User";

    #[rstest]
    #[case(json!([schema::USER, CUSTOM]))]
    #[case(json!([schema::USER]))]
    #[case(json!(null))]
    fn a_users_unregistered_extension_is_kept_under_its_urn_and_listed_in_schemas(
        #[case] schemas: Value,
    ) {
        // L6 applies to them too: the object counts whether `schemas` lists it or not.
        let data = user(json!({
            "schemas": schemas,
            "userName": "a",
            CUSTOM: {"costCenter": "42", "level": 3, "badges": ["x", "y"], "manager": {"value": "m1"}},
            ENTERPRISE_USER: {"department": "D"}
        }));
        assert_eq!(
            Value::Object(data),
            json!({
                "schemas": [schema::USER, ENTERPRISE_USER, CUSTOM],
                "userName": "a",
                ENTERPRISE_USER: {"department": "D"},
                CUSTOM: {"costCenter": "42", "level": 3, "badges": ["x", "y"], "manager": {"value": "m1"}}
            })
        );
    }

    #[test]
    fn a_urn_key_with_an_attribute_lands_in_its_extension_under_the_first_spelling() {
        // Entra's E4 keys in a body; X9: URNs compare case-insensitively.
        let data = user(json!({
            "userName": "a",
            CUSTOM: {"costCenter": "42"},
            "urn:ietf:params:scim:schemas:extension:contoso:2.0:user:Division": "D",
            "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:CONTOSO:2.0:USER": {"CostCenter": "43"}
        }));
        assert_eq!(data[CUSTOM], json!({"costCenter": "43", "Division": "D"}));
        assert_eq!(data["schemas"], json!([schema::USER, CUSTOM]));
    }

    #[test]
    fn an_empty_unregistered_extension_is_neither_kept_nor_listed() {
        let data = user(json!({
            "schemas": [schema::USER, CUSTOM],
            "userName": "a",
            CUSTOM: {"costCenter": "", "tags": [], "note": null}
        }));
        assert_eq!(
            Value::Object(data),
            json!({"schemas": [schema::USER], "userName": "a"})
        );
    }

    #[test]
    fn unknown_attributes_and_groups_extensions_are_still_dropped() {
        // M3, E12: only `urn:` keys name an extension; a group keeps none.
        let data =
            user(json!({"userName": "a", "shoeSize": "42", "favourite": {"colour": "blue"}}));
        assert_eq!(
            Value::Object(data),
            json!({"schemas": [schema::USER], "userName": "a"})
        );
        let canonical = group(json!({"displayName": "S", CUSTOM: {"costCenter": "42"}}));
        assert_eq!(
            Value::Object(canonical.data),
            json!({"schemas": [schema::GROUP], "displayName": "S"})
        );
    }

    #[test]
    fn canonical_data_with_unregistered_extensions_canonicalizes_to_itself() {
        let data = user(json!({
            "userName": "a",
            "urn:okta:acme:1.0:profile:custom": {"a": 1},
            CUSTOM: {"b": {"c": "d"}},
            "urn:ietf:params:scim:schemas:extension:Contoso:2.0:User.e": "f",
            "urn:example:x:y:z": "w"
        }));
        let again =
            canonicalize(&USER_RESOURCE, &Value::Object(data.clone()), Mode::Replace).unwrap();
        assert_eq!(again.data, data);
    }

    #[test]
    fn unregistered_extensions_count_towards_the_resource_cap() {
        let attributes: Map<String, Value> = (0..custom::MAX_ATTRIBUTES)
            .map(|i| (format!("a{i}"), json!("v".repeat(schema::TEXT_BYTES))))
            .collect();
        let err = user_err(json!({
            "userName": "a",
            CUSTOM: attributes,
        }));
        assert_eq!(kind(&err), (400, Some("invalidValue")));
        assert!(
            err.detail.starts_with("the User is ")
                && err.detail.ends_with("; at most 65536 are accepted"),
            "{}",
            err.detail
        );
    }

    #[test]
    fn an_unregistered_extension_past_a_cap_is_invalid_value_naming_it() {
        let err = user_err(
            json!({"userName": "a", CUSTOM: {"costCenter": "x".repeat(schema::TEXT_BYTES + 1)}}),
        );
        assert_eq!(kind(&err), (400, Some("invalidValue")));
        assert_eq!(
            err.detail,
            format!("{CUSTOM}:costCenter is 1025 bytes long; at most 1024 are accepted")
        );
        let err = user_err(json!({"userName": "a", CUSTOM: "42"}));
        assert_eq!(err.detail, format!("{CUSTOM} must be an object"));
    }
}
