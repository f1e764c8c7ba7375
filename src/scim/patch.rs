//! RFC 7644 §3.5.2 PATCH: parse a PatchOp body and apply it to a resource's
//! canonical JSON, turning Group `members` operations into membership changes.
//! Only the RFC form: vendor forms (OneLogin's SCIM 1.1 bodies, URN spellings)
//! are rewritten by `quirks`. Pure: serde_json in, serde_json out; no I/O,
//! HTTP or SQL.

use std::str::FromStr;

use scim_v2::filter::{PatchPath, ValFilter};
use serde_json::{Map, Value};

use super::custom::{self, Place};
use super::element_filter;
use super::error::ScimError;
use super::quirks;
use super::resource::{self, MemberRef, Mode};
use super::schema::{Attribute, Mutability, Resolved, ResourceType, Schema};
use crate::domain::filter::Filter;
use crate::domain::text;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Add,
    Replace,
    Remove,
}

/// What a PATCH `path` names, resolved against the resource type.
#[derive(Debug, Clone, PartialEq)]
pub enum PathTarget {
    /// `userName`, `name.familyName`, `emails`, `urn:…:User:manager`.
    Attribute(Resolved),
    /// `emails[type eq "work"]` or `emails[type eq "work"].value`: the elements of a
    /// multi-valued attribute matching the filter; `sub_attribute` is the part
    /// after `]`.
    Elements(Resolved, ValFilter),
    /// A bare extension URN: the whole extension object.
    Extension(&'static Schema),
    /// A user's extension no schema here describes, or an attribute in one, as
    /// written (`urn:…:2.0:User:costCenter`): what it names depends on the
    /// extensions the resource holds when the operation applies
    /// (`custom::place`).
    Custom(String),
}

impl PathTarget {
    fn resolved(&self) -> Option<&Resolved> {
        match self {
            PathTarget::Attribute(r) | PathTarget::Elements(r, _) => Some(r),
            PathTarget::Extension(_) | PathTarget::Custom(_) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    pub op: OpKind,
    pub path: Option<PathTarget>,
    /// `None` when the operation had no `value` member; `Some(Value::Null)` for an
    /// explicit null (which clears, E11).
    pub value: Option<Value>,
}

/// A change to a Group's membership table, in operation order (O9).
#[derive(Debug, Clone, PartialEq)]
pub enum MemberChange {
    Add(Vec<MemberRef>),
    Remove(Vec<String>),
    /// Remove the members matching a filter relative to one member (`["value"]`,
    /// `["type"]`, `["display"]`).
    RemoveWhere(Filter),
    RemoveAll,
    Replace(Vec<MemberRef>),
}

/// Parse a PatchOp body (RFC 7644 §3.5.2). `schemas` is tolerated, not checked (X8).
pub fn parse(rt: &'static ResourceType, body: &Value) -> Result<Vec<Operation>, ScimError> {
    let Some(object) = body.as_object() else {
        return Err(ScimError::invalid_syntax("a PatchOp must be a JSON object"));
    };
    // X1: ssoready#182 saw `operations` in lowercase.
    let operations = object
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("Operations"))
        .map(|(_, v)| v);
    let items = match operations {
        Some(Value::Array(items)) => items.clone(),
        // L9: no `Operations` at all may be OneLogin's SCIM 1.1 PATCH.
        None => quirks::scim11_operations(rt, object),
        Some(_) => Vec::new(),
    };
    if items.is_empty() {
        return Err(ScimError::invalid_syntax(
            "Operations must be a non-empty array",
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| parse_operation(rt, item, i))
        .collect()
}

/// Parse one PATCH path: `attr[.sub]`, `attr[filter][.sub]`, `URN:attr`, `URN.attr`
/// (E28), a flat extension attribute (`manager`, E10), a bare extension URN, or
/// a user's unregistered extension or attribute in one (E14).
/// Unparseable or unknown paths are `invalidPath`.
pub fn parse_path(rt: &'static ResourceType, raw: &str) -> Result<PathTarget, ScimError> {
    let raw = raw.trim();
    if let Some(extension) = rt.extension(raw) {
        return Ok(PathTarget::Extension(extension));
    }
    if custom::is_custom(rt, raw) {
        // No schema says an unregistered attribute is multi-valued complex, and
        // its values nest no object in an array.
        if raw.contains('[') {
            return Err(ScimError::invalid_path(format!(
                "{}: a value filter needs a multi-valued attribute of a registered schema",
                text::quoted(raw)
            )));
        }
        return Ok(PathTarget::Custom(raw.to_owned()));
    }
    let unknown = || ScimError::invalid_path(format!("{raw} is not an attribute of a {}", rt.name));
    let parsed = PatchPath::from_str(&quirks::urn_dot_to_colon(rt, raw))
        .map_err(|e| ScimError::invalid_path(format!("{raw} is not a valid path: {e}")))?;
    match parsed {
        PatchPath::Attr(p) => {
            resource::resolve(rt, p.uri.as_deref(), &p.name, p.sub_attr.as_deref())
                .map(PathTarget::Attribute)
                .ok_or_else(unknown)
        }
        PatchPath::Value(vp) => {
            if vp.attr.sub_attr.is_some() {
                return Err(unknown());
            }
            let base = resource::resolve(rt, vp.attr.uri.as_deref(), &vp.attr.name, None)
                .ok_or_else(unknown)?;
            let attr = base.attribute;
            if !attr.multi_valued || !attr.is_complex() {
                return Err(ScimError::invalid_path(format!(
                    "{raw}: only multi-valued complex attributes take a value filter"
                )));
            }
            let sub_attribute = match &vp.sub_attr {
                Some(sub) => Some(attr.sub_attribute(sub).ok_or_else(unknown)?),
                None => None,
            };
            // Validates the filter's sub-attributes and types; inside a path the
            // problem is the path (RFC 7644 §3.12 invalidPath).
            element_filter::to_domain(attr, &vp.filter)
                .map_err(|e| ScimError::invalid_path(e.detail))?;
            Ok(PathTarget::Elements(
                Resolved {
                    sub_attribute,
                    ..base
                },
                vp.filter,
            ))
        }
    }
}

/// Apply `ops` in order to `data` (canonical form). All-or-nothing: `data` is only
/// written when every operation succeeded and the result is still canonical.
pub fn apply(
    rt: &'static ResourceType,
    resource_id: &str,
    data: &mut Map<String, Value>,
    ops: &[Operation],
) -> Result<Vec<MemberChange>, ScimError> {
    let mut patch = Patch {
        rt,
        resource_id,
        work: data.clone(),
        changes: Vec::new(),
    };
    for op in ops {
        patch.apply(op)?;
    }
    let named: usize = patch
        .changes
        .iter()
        .map(|c| match c {
            MemberChange::Add(refs) | MemberChange::Replace(refs) => refs.len(),
            MemberChange::Remove(ids) => ids.len(),
            MemberChange::RemoveWhere(_) | MemberChange::RemoveAll => 0,
        })
        .sum();
    let max = resource::members_attribute().max_items;
    if named > max {
        return Err(ScimError::invalid_value(format!(
            "members: the operations name {named} members; at most {max} are accepted in one request"
        )));
    }
    // The same normalisation as POST/PUT: types, empties dropped, primary
    // uniqueness (P5), required attributes (M5), `schemas` rebuilt.
    *data = resource::canonicalize(rt, &Value::Object(patch.work), Mode::Replace)?.data;
    Ok(patch.changes)
}

fn parse_operation(
    rt: &'static ResourceType,
    item: &Value,
    i: usize,
) -> Result<Operation, ScimError> {
    let Some(object) = item.as_object() else {
        return Err(ScimError::invalid_syntax(format!(
            "Operations[{i}] must be an object"
        )));
    };
    let field = |name: &str| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    };
    // E1: Entra sends `Add`/`Replace`/`Remove`.
    let op = match field("op").and_then(Value::as_str) {
        Some(s) if s.eq_ignore_ascii_case("add") => OpKind::Add,
        Some(s) if s.eq_ignore_ascii_case("replace") => OpKind::Replace,
        Some(s) if s.eq_ignore_ascii_case("remove") => OpKind::Remove,
        _ => {
            return Err(ScimError::invalid_syntax(format!(
                "Operations[{i}].op must be add, replace or remove"
            )));
        }
    };
    let path = match field("path") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(parse_path(rt, s)?),
        Some(_) => {
            return Err(ScimError::invalid_path(format!(
                "Operations[{i}].path must be a string"
            )));
        }
    };
    let value = field("value").cloned();
    if op == OpKind::Remove && path.is_none() {
        // RFC 7644 §3.5.2.2: "If "path" is unspecified, the operation fails".
        return Err(ScimError::no_target(format!(
            "Operations[{i}]: remove requires a path"
        )));
    }
    if op != OpKind::Remove && value.is_none() {
        return Err(ScimError::invalid_value(format!(
            "Operations[{i}]: add and replace require a value"
        )));
    }
    if let Some(target) = &path {
        check_mutability(rt, op, target)?;
    }
    Ok(Operation { op, path, value })
}

/// RFC 7643 §2.2: readOnly attributes cannot be modified. Group members are
/// written whole; their sub-attributes are immutable or readOnly.
fn check_mutability(rt: &ResourceType, op: OpKind, target: &PathTarget) -> Result<(), ScimError> {
    let Some(resolved) = target.resolved() else {
        return Ok(());
    };
    let filtered = matches!(target, PathTarget::Elements(..));
    if resource::is_members(rt, resolved)
        && (resolved.sub_attribute.is_some() || (filtered && op != OpKind::Remove))
    {
        return Err(ScimError::mutability(format!(
            "{}: members are added, replaced or removed whole",
            resolved
        )));
    }
    if is_read_only(resolved) {
        return Err(ScimError::mutability(format!("{resolved} is readOnly")));
    }
    Ok(())
}

fn is_read_only(resolved: &Resolved) -> bool {
    resolved.attribute.mutability == Mutability::ReadOnly
        || resolved
            .sub_attribute
            .is_some_and(|s| s.mutability == Mutability::ReadOnly)
}

struct Patch<'a> {
    rt: &'static ResourceType,
    resource_id: &'a str,
    work: Map<String, Value>,
    changes: Vec<MemberChange>,
}

impl Patch<'_> {
    fn apply(&mut self, op: &Operation) -> Result<(), ScimError> {
        match (op.op, &op.path, &op.value) {
            (OpKind::Remove, None, _) => Err(ScimError::no_target("remove requires a path")),
            (OpKind::Remove, Some(target), value) => self.remove(target, value.as_ref()),
            (_, _, None) => Err(ScimError::invalid_value("add and replace require a value")),
            (kind, None, Some(value)) => self.set_pathless(kind, value),
            (kind, Some(target), Some(value)) => self.set(kind, target, value),
        }
    }

    /// RFC 7644 §3.5.2.1/3 without a path: the value's keys name attributes. E4, O6:
    /// keys may be paths (`name.givenName`, `urn:…:User:employeeNumber`).
    fn set_pathless(&mut self, kind: OpKind, value: &Value) -> Result<(), ScimError> {
        let Value::Object(object) = value else {
            return Err(ScimError::invalid_value(
                "a path-less add or replace needs an object value",
            ));
        };
        for (key, v) in object {
            if key.eq_ignore_ascii_case("schemas") {
                continue;
            }
            // M3: keys that are not attributes are ignored, as on PUT.
            let Ok(target) = parse_path(self.rt, key) else {
                continue;
            };
            // E14: a URN key holding an object is the extension, as in a body.
            if let PathTarget::Custom(raw) = &target {
                self.set_custom(kind, raw, custom::Form::Key, v)?;
                continue;
            }
            if let Some(resolved) = target.resolved() {
                if resolved.extension.is_none() && resolved.attribute.name == "id" {
                    // O8: Okta echoes the resource's own id in a group rename.
                    match v {
                        Value::Null => continue,
                        Value::String(id) if id == self.resource_id => continue,
                        _ => return Err(ScimError::mutability("id cannot be changed")),
                    }
                }
                // O8: echoed `meta`, `groups` are ignored like on PUT.
                if is_read_only(resolved) {
                    continue;
                }
                check_mutability(self.rt, kind, &target)?;
            }
            self.set(kind, &target, v)?;
        }
        Ok(())
    }

    fn set(&mut self, kind: OpKind, target: &PathTarget, value: &Value) -> Result<(), ScimError> {
        match target {
            PathTarget::Extension(extension) => self.set_extension(kind, extension, value),
            PathTarget::Custom(raw) => self.set_custom(kind, raw, custom::Form::Path, value),
            PathTarget::Attribute(resolved) => self.set_attribute(kind, resolved, value),
            PathTarget::Elements(resolved, filter) => {
                self.set_elements(kind, resolved, filter, value)
            }
        }
    }

    /// A whole extension object behaves like a complex attribute: its attributes are
    /// set one by one (RFC 7644 §3.5.2.3: unspecified ones are left unchanged).
    fn set_extension(
        &mut self,
        kind: OpKind,
        extension: &'static Schema,
        value: &Value,
    ) -> Result<(), ScimError> {
        match value {
            Value::Null => {
                self.work.shift_remove(extension.id);
                Ok(())
            }
            Value::String(s) if s.is_empty() => {
                self.work.shift_remove(extension.id);
                Ok(())
            }
            Value::Object(object) => {
                for (key, v) in object {
                    let Ok(target) = parse_path(self.rt, &format!("{}:{key}", extension.id)) else {
                        continue;
                    };
                    if target.resolved().is_some_and(is_read_only) {
                        continue;
                    }
                    self.set(kind, &target, v)?;
                }
                Ok(())
            }
            _ => Err(ScimError::invalid_value(format!(
                "{} must be an object",
                extension.id
            ))),
        }
    }

    /// E14: a user's unregistered extension, or an attribute in one. The final
    /// `canonicalize` checks names, shapes and caps as on POST; here only
    /// where the value goes.
    fn set_custom(
        &mut self,
        kind: OpKind,
        raw: &str,
        form: custom::Form,
        value: &Value,
    ) -> Result<(), ScimError> {
        let present = custom::present(self.rt, &self.work);
        match custom::place(self.rt, raw, Some(value), form, &present)
            .map_err(ScimError::invalid_path)?
        {
            // Like a registered extension (`set_extension`): null or `""`
            // clears it (E11), an object sets its attributes one by one.
            Place::Extension(urn) => match value {
                Value::Null => {
                    custom::remove_named(&mut self.work, &urn);
                    Ok(())
                }
                Value::String(s) if s.is_empty() => {
                    custom::remove_named(&mut self.work, &urn);
                    Ok(())
                }
                Value::Object(object) => {
                    with_custom(&mut self.work, &urn, |attributes| {
                        for (name, v) in object {
                            set_custom_value(attributes, name, None, kind, v);
                        }
                    });
                    Ok(())
                }
                _ => Err(ScimError::invalid_value(format!("{urn} must be an object"))),
            },
            Place::Attribute { urn, name, sub } => {
                with_custom(&mut self.work, &urn, |attributes| {
                    set_custom_value(attributes, &name, sub.as_deref(), kind, value);
                });
                Ok(())
            }
        }
    }

    /// RFC 7644 §3.5.2.2: removing what is not there is a success.
    fn remove_custom(&mut self, raw: &str, value: Option<&Value>) -> Result<(), ScimError> {
        let present = custom::present(self.rt, &self.work);
        let place = custom::place(self.rt, raw, None, custom::Form::Path, &present)
            .map_err(ScimError::invalid_path)?;
        match place {
            Place::Extension(urn) => custom::remove_named(&mut self.work, &urn),
            Place::Attribute { urn, name, sub } => {
                if custom::stored_key(&self.work, &urn).is_none() {
                    return Ok(());
                }
                with_custom(&mut self.work, &urn, |attributes| {
                    remove_custom_value(attributes, &name, sub.as_deref(), value);
                });
            }
        }
        Ok(())
    }

    fn set_attribute(
        &mut self,
        kind: OpKind,
        resolved: &Resolved,
        value: &Value,
    ) -> Result<(), ScimError> {
        let attr = resolved.attribute;
        if resource::is_members(self.rt, resolved) {
            // E7, M7: arrays, lone objects and bare ids.
            let refs = resource::member_refs(value, "members")?;
            self.changes.push(match kind {
                OpKind::Add => MemberChange::Add(refs),
                _ => MemberChange::Replace(refs),
            });
            return Ok(());
        }
        // O2: a password is accepted and never stored.
        if attr.mutability == Mutability::WriteOnly {
            return Ok(());
        }
        let path = resolved.to_string();
        with_container(&mut self.work, resolved.extension, |container| {
            match resolved.sub_attribute {
                // `emails.type` without a filter addresses every element.
                Some(sub) if attr.multi_valued => {
                    let coerced = resource::coerce(sub, value, &path)?;
                    let mut elements = take_array(container, attr.name);
                    if elements.is_empty() {
                        if let Some(v) = coerced {
                            let mut element = Map::new();
                            element.insert(sub.name.to_owned(), v);
                            elements.push(Value::Object(element));
                        }
                    } else {
                        for element in &mut elements {
                            set_field(element, sub.name, coerced.clone());
                        }
                    }
                    container.insert(attr.name.to_owned(), Value::Array(elements));
                }
                Some(sub) => {
                    let coerced = resource::coerce(sub, value, &path)?;
                    let mut object = take_object(container, attr.name);
                    set_field_in(&mut object, sub.name, coerced);
                    container.insert(attr.name.to_owned(), Value::Object(object));
                }
                None if attr.multi_valued => match resource::coerce(attr, value, &path)? {
                    // E11: `""`, null and `[]` clear.
                    None => {
                        container.shift_remove(attr.name);
                    }
                    Some(Value::Array(new)) if kind == OpKind::Add => {
                        // RFC 7644 §3.5.2.1: add appends; exact duplicates are not repeated.
                        let mut elements = take_array(container, attr.name);
                        let mut touched = Vec::new();
                        for element in new {
                            if !elements.contains(&element) {
                                touched.push(elements.len());
                                elements.push(element);
                            }
                        }
                        demote_other_primaries(&mut elements, &touched);
                        container.insert(attr.name.to_owned(), Value::Array(elements));
                    }
                    Some(replacement) => {
                        container.insert(attr.name.to_owned(), replacement);
                    }
                },
                // RFC 7644 §3.5.2.1/3: a complex value merges its sub-attributes.
                None if attr.is_complex() && !resource::is_manager(attr) && value.is_object() => {
                    let mut object = take_object(container, attr.name);
                    for (key, v) in value.as_object().into_iter().flatten() {
                        let Some(sub) = attr.sub_attribute(key) else {
                            continue;
                        };
                        if sub.mutability == Mutability::ReadOnly {
                            continue;
                        }
                        let coerced = resource::coerce(sub, v, &format!("{path}.{}", sub.name))?;
                        set_field_in(&mut object, sub.name, coerced);
                    }
                    container.insert(attr.name.to_owned(), Value::Object(object));
                }
                None => {
                    let coerced = resource::coerce(attr, value, &path)?;
                    set_field_in(container, attr.name, coerced);
                }
            }
            Ok(())
        })
    }

    /// E8: update the matching elements in place. E9: when nothing matches, create
    /// the element from the filter's `eq` terms (RFC 7644 would say noTarget).
    fn set_elements(
        &mut self,
        kind: OpKind,
        resolved: &Resolved,
        filter: &ValFilter,
        value: &Value,
    ) -> Result<(), ScimError> {
        let attr = resolved.attribute;
        let path = filter_path(resolved, filter);
        with_container(&mut self.work, resolved.extension, |container| {
            let mut elements = take_array(container, attr.name);
            let hits: Vec<usize> = (0..elements.len())
                .filter(|&i| element_filter::matches(attr, &elements[i], filter))
                .collect();
            let mut touched = hits.clone();
            match resolved.sub_attribute {
                Some(sub) => {
                    let coerced = resource::coerce(sub, value, &path)?;
                    if hits.is_empty() {
                        if let Some(v) = coerced {
                            let mut element = seed(attr, filter, &path)?;
                            element.insert(sub.name.to_owned(), v);
                            touched.push(elements.len());
                            elements.push(Value::Object(element));
                        }
                    } else {
                        for &i in &hits {
                            set_field(&mut elements[i], sub.name, coerced.clone());
                        }
                    }
                }
                None => match single_element(attr, value, &path)? {
                    // E11: clearing a filtered element removes it.
                    None => {
                        let mut i = 0;
                        elements.retain(|_| {
                            let keep = !hits.contains(&i);
                            i += 1;
                            keep
                        });
                        touched.clear();
                    }
                    Some(new) if hits.is_empty() => {
                        let mut element = seed(attr, filter, &path)?;
                        element.extend(new);
                        touched.push(elements.len());
                        elements.push(Value::Object(element));
                    }
                    Some(new) => {
                        for &i in &hits {
                            let mut element = match kind {
                                // §3.5.2.3 replaces the element; the filter's `eq` terms
                                // stay so it is still found by the same filter.
                                OpKind::Replace => {
                                    eq_seed(attr, filter, &path)?.unwrap_or_default()
                                }
                                _ => elements[i].as_object().cloned().unwrap_or_default(),
                            };
                            element.extend(new.clone());
                            elements[i] = Value::Object(element);
                        }
                    }
                },
            }
            demote_other_primaries(&mut elements, &touched);
            container.insert(attr.name.to_owned(), Value::Array(elements));
            Ok(())
        })
    }

    fn remove(&mut self, target: &PathTarget, value: Option<&Value>) -> Result<(), ScimError> {
        match target {
            PathTarget::Extension(extension) => {
                self.work.shift_remove(extension.id);
                Ok(())
            }
            PathTarget::Custom(raw) => self.remove_custom(raw, value),
            PathTarget::Attribute(resolved) => self.remove_attribute(resolved, value),
            PathTarget::Elements(resolved, filter) => self.remove_elements(resolved, filter),
        }
    }

    fn remove_attribute(
        &mut self,
        resolved: &Resolved,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        let attr = resolved.attribute;
        if resource::is_members(self.rt, resolved) {
            // E5, J4: a value list removes only those members; RFC 7644 §3.5.2.2
            // clears the attribute only when there is no value.
            let change = match value {
                None | Some(Value::Null) => MemberChange::RemoveAll,
                Some(v) => MemberChange::Remove(
                    resource::member_refs(v, "members")?
                        .into_iter()
                        .map(|m| m.value)
                        .collect(),
                ),
            };
            self.changes.push(change);
            return Ok(());
        }
        if attr.required && resolved.sub_attribute.is_none() {
            return Err(ScimError::invalid_value(format!(
                "{} is required and cannot be removed",
                attr.name
            )));
        }
        if attr.mutability == Mutability::WriteOnly {
            return Ok(());
        }
        let path = resolved.to_string();
        with_container(&mut self.work, resolved.extension, |container| {
            match (resolved.sub_attribute, value) {
                (Some(sub), _) if attr.multi_valued => {
                    let mut elements = take_array(container, attr.name);
                    for element in &mut elements {
                        set_field(element, sub.name, None);
                    }
                    container.insert(attr.name.to_owned(), Value::Array(elements));
                }
                (Some(sub), _) => {
                    if let Some(Value::Object(object)) = container.get_mut(attr.name) {
                        object.shift_remove(sub.name);
                    }
                }
                (None, Some(listed)) if attr.multi_valued && !listed.is_null() => {
                    let listed = resource::coerce(attr, listed, &path)?;
                    let mut elements = take_array(container, attr.name);
                    for item in listed
                        .as_ref()
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        elements.retain(|element| !same_element(attr, element, item));
                    }
                    container.insert(attr.name.to_owned(), Value::Array(elements));
                }
                (None, _) => {
                    container.shift_remove(attr.name);
                }
            }
            Ok(())
        })
    }

    /// E6, O9: removing elements that do not exist is a success.
    fn remove_elements(
        &mut self,
        resolved: &Resolved,
        filter: &ValFilter,
    ) -> Result<(), ScimError> {
        let attr = resolved.attribute;
        if resource::is_members(self.rt, resolved) {
            let change = match element_filter::value_ids(filter) {
                Some(ids) => MemberChange::Remove(ids),
                None => MemberChange::RemoveWhere(
                    element_filter::to_domain(attr, filter)
                        .map_err(|e| ScimError::invalid_path(e.detail))?,
                ),
            };
            self.changes.push(change);
            return Ok(());
        }
        with_container(&mut self.work, resolved.extension, |container| {
            let mut elements = take_array(container, attr.name);
            match resolved.sub_attribute {
                Some(sub) => {
                    for element in &mut elements {
                        if element_filter::matches(attr, element, filter) {
                            set_field(element, sub.name, None);
                        }
                    }
                }
                None => elements.retain(|element| !element_filter::matches(attr, element, filter)),
            }
            container.insert(attr.name.to_owned(), Value::Array(elements));
        });
        Ok(())
    }
}

/// Run `f` on the map that holds the attribute: the resource itself, or the
/// extension object (created when missing; emptiness is cleaned up at the end).
fn with_container<R>(
    work: &mut Map<String, Value>,
    extension: Option<&'static str>,
    f: impl FnOnce(&mut Map<String, Value>) -> R,
) -> R {
    match extension {
        None => f(work),
        Some(urn) => {
            let mut inner = take_object(work, urn);
            let out = f(&mut inner);
            work.insert(urn.to_owned(), Value::Object(inner));
            out
        }
    }
}

/// Run `f` on the attributes of the unregistered extension `urn` (compared
/// case-insensitively: the stored spelling stays, X9), created when missing.
fn with_custom<R>(
    work: &mut Map<String, Value>,
    urn: &str,
    f: impl FnOnce(&mut Map<String, Value>) -> R,
) -> R {
    let key = custom::stored_key(work, urn).unwrap_or_else(|| urn.to_owned());
    let mut attributes = take_object(work, &key);
    let out = f(&mut attributes);
    work.insert(key, Value::Object(attributes));
    out
}

/// RFC 7643 §2.5, E11: null, `""`, `[]` and `{}` are no value; setting one clears.
fn is_unassigned(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(object) => object.is_empty(),
        _ => false,
    }
}

/// Add or replace an unregistered attribute, whose shape is the one it was
/// sent in (no schema says it is multi-valued or complex): RFC 7644 §3.5.2.1
/// add appends to an array and merges into an object, §3.5.2.3 replace
/// merges into an object and otherwise replaces; names compare
/// case-insensitively.
fn set_custom_value(
    attributes: &mut Map<String, Value>,
    name: &str,
    sub: Option<&str>,
    kind: OpKind,
    value: &Value,
) {
    let key = custom::stored_key(attributes, name);
    if let Some(sub) = sub {
        let mut object = key
            .as_deref()
            .and_then(|k| attributes.get(k))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        set_custom_value(&mut object, sub, None, OpKind::Replace, value);
        custom::insert_named(attributes, name, Value::Object(object));
        return;
    }
    if is_unassigned(value) {
        custom::remove_named(attributes, name);
        return;
    }
    let current = key.as_deref().and_then(|k| attributes.get_mut(k));
    match (kind, current, value) {
        (OpKind::Add, Some(Value::Array(items)), Value::Array(new)) => {
            for item in new {
                if !items.contains(item) {
                    items.push(item.clone());
                }
            }
        }
        (OpKind::Add, Some(Value::Array(items)), item) => {
            if !items.contains(item) {
                items.push(item.clone());
            }
        }
        (_, Some(Value::Object(object)), Value::Object(new)) => {
            for (sub, v) in new {
                set_custom_value(object, sub, None, OpKind::Replace, v);
            }
        }
        _ => custom::insert_named(attributes, name, value.clone()),
    }
}

/// Remove an unregistered attribute or sub-attribute; with a value list on an
/// array, only the listed values (E5's form, on any attribute).
fn remove_custom_value(
    attributes: &mut Map<String, Value>,
    name: &str,
    sub: Option<&str>,
    value: Option<&Value>,
) {
    let Some(key) = custom::stored_key(attributes, name) else {
        return;
    };
    match (sub, value, attributes.get_mut(&key)) {
        (Some(sub), _, Some(Value::Object(object))) => custom::remove_named(object, sub),
        (Some(_), _, _) => {}
        (None, Some(listed), Some(Value::Array(items))) if !listed.is_null() => {
            let listed: Vec<&Value> = match listed {
                Value::Array(listed) => listed.iter().collect(),
                one => vec![one],
            };
            items.retain(|item| !listed.contains(&item));
        }
        (None, _, _) => {
            attributes.shift_remove(&key);
        }
    }
}

/// Take an array out of `container` (the key keeps its position until reinserted).
fn take_array(container: &mut Map<String, Value>, key: &str) -> Vec<Value> {
    match container.get_mut(key) {
        Some(Value::Array(items)) => std::mem::take(items),
        _ => Vec::new(),
    }
}

fn take_object(container: &mut Map<String, Value>, key: &str) -> Map<String, Value> {
    match container.get_mut(key) {
        Some(Value::Object(object)) => std::mem::take(object),
        _ => Map::new(),
    }
}

fn set_field(element: &mut Value, key: &str, value: Option<Value>) {
    if let Value::Object(object) = element {
        set_field_in(object, key, value);
    }
}

fn set_field_in(object: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    match value {
        Some(value) => {
            object.insert(key.to_owned(), value);
        }
        None => {
            object.shift_remove(key);
        }
    }
}

/// RFC 7644 §3.5.2: setting "primary" to true on some values sets it to false on
/// the others.
fn demote_other_primaries(elements: &mut [Value], touched: &[usize]) {
    let is_primary = |e: &Value| e.get("primary") == Some(&Value::Bool(true));
    if !touched
        .iter()
        .any(|&i| elements.get(i).is_some_and(is_primary))
    {
        return;
    }
    for (i, element) in elements.iter_mut().enumerate() {
        if !touched.contains(&i) && is_primary(element) {
            set_field(element, "primary", Some(Value::Bool(false)));
        }
    }
}

/// A value addressing one element: an object (or a one-element array of one).
fn single_element(
    attr: &'static Attribute,
    value: &Value,
    path: &str,
) -> Result<Option<Map<String, Value>>, ScimError> {
    match resource::coerce(attr, value, path)? {
        None => Ok(None),
        Some(Value::Array(mut items)) if items.len() <= 1 => {
            Ok(items.pop().and_then(|e| match e {
                Value::Object(object) => Some(object),
                _ => None,
            }))
        }
        Some(_) => Err(ScimError::invalid_value(format!(
            "{path} must be a single element"
        ))),
    }
}

/// The element to create when a filtered add/replace matched nothing (E9).
fn seed(
    attr: &'static Attribute,
    filter: &ValFilter,
    path: &str,
) -> Result<Map<String, Value>, ScimError> {
    eq_seed(attr, filter, path)?.ok_or_else(|| {
        ScimError::no_target(format!(
            "{path} matched no value, and its filter does not describe one to create"
        ))
    })
}

fn eq_seed(
    attr: &'static Attribute,
    filter: &ValFilter,
    path: &str,
) -> Result<Option<Map<String, Value>>, ScimError> {
    let Some(terms) = element_filter::eq_terms(attr, filter) else {
        return Ok(None);
    };
    let mut element = Map::new();
    for (sub, value) in terms {
        if let Some(v) = resource::coerce(sub, &value, path)? {
            element.insert(sub.name.to_owned(), v);
        }
    }
    Ok(Some(element))
}

fn filter_path(resolved: &Resolved, filter: &ValFilter) -> String {
    let mut path = format!("{}[{filter}]", resolved.attribute.name);
    if let Some(sub) = resolved.sub_attribute {
        path.push('.');
        path.push_str(sub.name);
    }
    path
}

/// E5, J4: a listed element removes the elements with the same `value` (compared
/// per caseExact), or, for attributes without `value` (addresses), equal elements.
fn same_element(attr: &'static Attribute, element: &Value, listed: &Value) -> bool {
    match (
        attr.sub_attribute("value"),
        listed.get("value").and_then(Value::as_str),
    ) {
        (Some(sub), Some(wanted)) => {
            element
                .get("value")
                .and_then(Value::as_str)
                .is_some_and(|have| {
                    if sub.case_exact {
                        have == wanted
                    } else {
                        have.to_lowercase() == wanted.to_lowercase()
                    }
                })
        }
        _ => element == listed,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::resource::MemberKind;
    use super::super::schema::{
        ENTERPRISE_USER, GROUP, GROUP_RESOURCE, PATCH_OP, USER, USER_RESOURCE,
    };
    use super::*;
    use crate::domain::filter as domain;
    use rstest::rstest;
    use serde_json::json;

    const ID: &str = "2819c223-7f76-453a-919d-413861904646";

    fn user_data(body: Value) -> Map<String, Value> {
        resource::canonicalize(&USER_RESOURCE, &body, Mode::Create)
            .unwrap()
            .data
    }

    fn patch(
        rt: &'static ResourceType,
        data: &mut Map<String, Value>,
        ops: Value,
    ) -> Result<Vec<MemberChange>, ScimError> {
        let ops = parse(rt, &json!({"schemas": [PATCH_OP], "Operations": ops}))?;
        apply(rt, ID, data, &ops)
    }

    /// Patch a user created from `body` and return the result as one JSON value.
    fn patched(body: Value, ops: Value) -> Value {
        let mut data = user_data(body);
        patch(&USER_RESOURCE, &mut data, ops).unwrap();
        Value::Object(data)
    }

    fn user_err(body: Value, ops: Value) -> ScimError {
        let mut data = user_data(body);
        let before = data.clone();
        let err = patch(&USER_RESOURCE, &mut data, ops).unwrap_err();
        assert_eq!(data, before, "a failed PATCH must leave the data untouched");
        err
    }

    fn group_changes(ops: Value) -> Result<Vec<MemberChange>, ScimError> {
        let mut data = resource::canonicalize(
            &GROUP_RESOURCE,
            &json!({"displayName": "Sales"}),
            Mode::Create,
        )
        .unwrap()
        .data;
        let before = data.clone();
        let changes = patch(&GROUP_RESOURCE, &mut data, ops)?;
        assert_eq!(data.get("members"), None);
        assert_eq!(data.get("displayName"), before.get("displayName"));
        Ok(changes)
    }

    fn kind(err: &ScimError) -> (u16, Option<&'static str>) {
        (err.status.as_u16(), err.scim_type.map(|t| t.as_str()))
    }

    fn m(value: &str) -> MemberRef {
        MemberRef {
            value: value.into(),
            kind: None,
            display: None,
        }
    }

    // --- parse ---------------------------------------------------------------

    #[rstest]
    #[case(json!([]), "invalidSyntax")]
    #[case(json!({"schemas": [PATCH_OP]}), "invalidSyntax")]
    #[case(json!({"Operations": []}), "invalidSyntax")]
    #[case(json!({"Operations": {"op": "add"}}), "invalidSyntax")]
    #[case(json!({"Operations": ["add"]}), "invalidSyntax")]
    #[case(json!({"Operations": [{"op": "copy", "path": "title", "value": "x"}]}), "invalidSyntax")]
    #[case(json!({"Operations": [{"path": "title", "value": "x"}]}), "invalidSyntax")]
    #[case(json!({"Operations": [{"op": "remove"}]}), "noTarget")]
    #[case(json!({"Operations": [{"op": "add", "path": "title"}]}), "invalidValue")]
    #[case(json!({"Operations": [{"op": "replace"}]}), "invalidValue")]
    #[case(json!({"Operations": [{"op": "add", "path": "titel", "value": "x"}]}), "invalidPath")]
    #[case(json!({"Operations": [{"op": "add", "path": "emails[type eq]", "value": "x"}]}), "invalidPath")]
    #[case(json!({"Operations": [{"op": "add", "path": "emails[nosuch eq \"x\"].value", "value": "x"}]}), "invalidPath")]
    #[case(json!({"Operations": [{"op": "add", "path": "emails[type eq \"work\"].nosuch", "value": "x"}]}), "invalidPath")]
    #[case(json!({"Operations": [{"op": "add", "path": "name[givenName eq \"x\"]", "value": "x"}]}), "invalidPath")]
    #[case(json!({"Operations": [{"op": "add", "path": 5, "value": "x"}]}), "invalidPath")]
    fn malformed_patch_bodies_are_rejected(#[case] body: Value, #[case] scim_type: &str) {
        let err = parse(&USER_RESOURCE, &body).unwrap_err();
        assert_eq!(kind(&err), (400, Some(scim_type)), "{}", err.detail);
    }

    #[rstest]
    #[case("Add", OpKind::Add)]
    #[case("REPLACE", OpKind::Replace)]
    #[case("Remove", OpKind::Remove)]
    fn op_names_and_the_operations_key_are_case_insensitive(
        #[case] op: &str,
        #[case] expected: OpKind,
    ) {
        // E1 (Entra PascalCase ops), X1 (`operations`).
        let ops = parse(
            &USER_RESOURCE,
            &json!({"operations": [{"OP": op, "Path": "title", "Value": "x"}]}),
        )
        .unwrap();
        assert_eq!(ops[0].op, expected);
        assert_eq!(ops[0].value, Some(json!("x")));
    }

    #[test]
    fn schemas_is_tolerated_when_missing() {
        // X8.
        assert!(
            parse(
                &USER_RESOURCE,
                &json!({"Operations": [{"op": "add", "path": "title", "value": "x"}]})
            )
            .is_ok()
        );
    }

    #[test]
    fn an_explicit_null_value_is_kept_as_a_value() {
        let ops = parse(
            &USER_RESOURCE,
            &json!({"Operations": [{"op": "replace", "path": "title", "value": null}]}),
        )
        .unwrap();
        assert_eq!(ops[0].value, Some(Value::Null));
    }

    #[rstest]
    #[case("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager")]
    #[case("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.manager")]
    #[case("URN:IETF:params:scim:schemas:extension:enterprise:2.0:User.Manager")]
    #[case("urn:scim:schemas:extension:enterprise:1.0:manager")]
    #[case("manager")]
    fn manager_paths_resolve_to_the_enterprise_extension(#[case] path: &str) {
        // E10, E28 (`URN.attr`), X9 (URN case), L2 (SCIM 1.1 URN).
        let target = parse_path(&USER_RESOURCE, path).unwrap();
        let PathTarget::Attribute(resolved) = target else {
            panic!("{target:?}")
        };
        assert_eq!(
            (resolved.extension, resolved.attribute.name),
            (Some(ENTERPRISE_USER), "manager")
        );
    }

    #[test]
    fn a_bare_extension_urn_names_the_whole_extension() {
        let target = parse_path(&USER_RESOURCE, ENTERPRISE_USER).unwrap();
        assert!(matches!(target, PathTarget::Extension(s) if s.id == ENTERPRISE_USER));
    }

    #[rstest]
    #[case(&USER_RESOURCE, "add", "id")]
    #[case(&USER_RESOURCE, "replace", "meta")]
    #[case(&USER_RESOURCE, "replace", "meta.lastModified")]
    #[case(&USER_RESOURCE, "remove", "groups")]
    #[case(&USER_RESOURCE, "add", "groups")]
    #[case(&USER_RESOURCE, "replace", "manager.displayName")]
    #[case(&GROUP_RESOURCE, "replace", "members[value eq \"u1\"].display")]
    #[case(&GROUP_RESOURCE, "add", "members[value eq \"u1\"].value")]
    #[case(&GROUP_RESOURCE, "replace", "members[value eq \"u1\"]")]
    #[case(&GROUP_RESOURCE, "remove", "members.display")]
    fn read_only_and_member_sub_attribute_paths_are_mutability_errors(
        #[case] rt: &'static ResourceType,
        #[case] op: &str,
        #[case] path: &str,
    ) {
        let err = parse(
            rt,
            &json!({"Operations": [{"op": op, "path": path, "value": "x"}]}),
        )
        .unwrap_err();
        assert_eq!(kind(&err), (400, Some("mutability")), "{path}");
    }

    // --- path-less add/replace ------------------------------------------------

    #[test]
    fn pathless_values_keyed_by_paths_set_those_attributes() {
        // E4: Entra's flagged mode; never a literal "name.givenName" key.
        let out = patched(
            json!({"userName": "a", "name": {"givenName": "Old", "formatted": "F"}}),
            json!([{"op": "replace", "value": {
                "displayName": "Bjfe",
                "name.givenName": "Kkom",
                "name.familyName": "Unua",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "Aklq"
            }}]),
        );
        assert_eq!(
            out,
            json!({
                "schemas": [USER, ENTERPRISE_USER],
                "userName": "a",
                "name": {"givenName": "Kkom", "formatted": "F", "familyName": "Unua"},
                "displayName": "Bjfe",
                ENTERPRISE_USER: {"employeeNumber": "Aklq"}
            })
        );
    }

    #[test]
    fn a_pathless_key_may_be_a_value_filter_path() {
        let out = patched(
            json!({"userName": "a", "emails": [{"value": "w@x", "type": "work"}]}),
            json!([{"op": "replace", "value": {"emails[type eq \"work\"].value": "n@x"}}]),
        );
        assert_eq!(out["emails"], json!([{"value": "n@x", "type": "work"}]));
    }

    #[test]
    fn a_pathless_nested_extension_object_is_merged() {
        let out = patched(
            json!({"userName": "a", ENTERPRISE_USER: {"department": "D", "costCenter": "C"}}),
            json!([{"op": "add", "value": {ENTERPRISE_USER: {"Department": "New", "manager": "m1"}}}]),
        );
        assert_eq!(
            out[ENTERPRISE_USER],
            json!({"department": "New", "costCenter": "C", "manager": {"value": "m1"}})
        );
    }

    #[test]
    fn pathless_replace_deactivates_with_a_boolean_or_a_string() {
        // O6 (Okta), E2 (Entra string booleans).
        let out = patched(
            json!({"userName": "a", "active": true}),
            json!([{"op": "replace", "value": {"active": false}}]),
        );
        assert_eq!(out["active"], json!(false));
        let out = patched(
            json!({"userName": "a", "active": true}),
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
        );
        assert_eq!(out["active"], json!(false));
    }

    #[test]
    fn pathless_values_ignore_the_own_id_meta_schemas_and_groups() {
        // O8: Okta's group rename re-sends the id.
        let out = patched(
            json!({"userName": "a"}),
            json!([{"op": "replace", "value": {
                "id": ID, "schemas": [USER], "meta": {"resourceType": "User"}, "groups": [], "password": "pw",
                "displayName": "Renamed", "adreses": "x"
            }}]),
        );
        assert_eq!(
            out,
            json!({"schemas": [USER], "userName": "a", "displayName": "Renamed"})
        );
    }

    #[test]
    fn a_pathless_value_with_another_id_is_a_mutability_error() {
        let err = user_err(
            json!({"userName": "a"}),
            json!([{"op": "replace", "value": {"id": "other"}}]),
        );
        assert_eq!(kind(&err), (400, Some("mutability")));
    }

    #[test]
    fn a_password_path_is_accepted_and_dropped() {
        let out = patched(
            json!({"userName": "a"}),
            json!([{"op": "replace", "path": "password", "value": "s3cret"}]),
        );
        assert_eq!(out, json!({"schemas": [USER], "userName": "a"}));
    }

    // --- attributes, sub-attributes, multi-valued -----------------------------

    #[test]
    fn add_on_a_multi_valued_attribute_appends_without_duplicates() {
        let out = patched(
            json!({"userName": "a", "emails": [{"value": "1@x", "type": "work"}]}),
            json!([{"op": "add", "path": "emails", "value": [{"value": "1@x", "type": "work"}, {"value": "2@x"}]}]),
        );
        assert_eq!(
            out["emails"],
            json!([{"value": "1@x", "type": "work"}, {"value": "2@x"}])
        );
    }

    #[test]
    fn replace_on_a_multi_valued_attribute_replaces_the_array() {
        let out = patched(
            json!({"userName": "a", "emails": [{"value": "1@x"}, {"value": "2@x"}]}),
            json!([{"op": "replace", "path": "emails", "value": {"value": "3@x"}}]),
        );
        // L3: the lone object is wrapped.
        assert_eq!(out["emails"], json!([{"value": "3@x"}]));
    }

    #[test]
    fn a_complex_value_merges_into_the_existing_sub_attributes() {
        // RFC 7644 §3.5.2.1/3: unspecified sub-attributes are left unchanged.
        let out = patched(
            json!({"userName": "a", "name": {"givenName": "Barbara", "familyName": "Jensen"}}),
            json!([{"op": "replace", "path": "name", "value": {"familyName": "Smith", "middleName": null}}]),
        );
        assert_eq!(
            out["name"],
            json!({"givenName": "Barbara", "familyName": "Smith"})
        );
    }

    #[test]
    fn a_sub_attribute_path_sets_only_that_sub_attribute() {
        let out = patched(
            json!({"userName": "a", "name": {"givenName": "Barbara"}}),
            json!([{"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"}]),
        );
        assert_eq!(
            out["name"],
            json!({"givenName": "Barbara", "familyName": "updatedFamilyName"})
        );
    }

    #[test]
    fn a_filtered_sub_attribute_path_updates_the_matching_element_in_place() {
        // E8.
        let out = patched(
            json!({"userName": "a", "emails": [{"value": "h@x", "type": "home"}, {"value": "w@x", "type": "work"}]}),
            json!([{"op": "replace", "path": "emails[type eq \"Work\"].value", "value": "new@x"}]),
        );
        assert_eq!(
            out["emails"],
            json!([{"value": "h@x", "type": "home"}, {"value": "new@x", "type": "work"}])
        );
    }

    #[test]
    fn a_filtered_element_path_replaces_the_element_and_keeps_its_selector() {
        let out = patched(
            json!({"userName": "a", "emails": [{"value": "w@x", "type": "work", "display": "W"}]}),
            json!([{"op": "replace", "path": "emails[type eq \"work\"]", "value": {"value": "n@x"}}]),
        );
        assert_eq!(out["emails"], json!([{"type": "work", "value": "n@x"}]));
        let out = patched(
            json!({"userName": "a", "emails": [{"value": "w@x", "type": "work", "display": "W"}]}),
            json!([{"op": "add", "path": "emails[type eq \"work\"]", "value": {"value": "n@x"}}]),
        );
        assert_eq!(
            out["emails"],
            json!([{"value": "n@x", "type": "work", "display": "W"}])
        );
    }

    #[rstest]
    #[case("replace", "addresses[type eq \"work\"].formatted", json!("18/2111"), json!([{"type": "work", "formatted": "18/2111"}]))]
    #[case("add", "addresses[type eq \"work\" and primary eq true]", json!({"locality": "Oslo"}), json!([{"type": "work", "primary": true, "locality": "Oslo"}]))]
    fn a_filtered_path_that_matches_nothing_creates_the_element(
        #[case] op: &str,
        #[case] path: &str,
        #[case] value: Value,
        #[case] expected: Value,
    ) {
        // E9 (Entra; RFC 7644 would answer noTarget).
        let out = patched(
            json!({"userName": "a"}),
            json!([{"op": op, "path": path, "value": value}]),
        );
        assert_eq!(out["addresses"], expected);
    }

    #[rstest]
    #[case("Add", json!({"userName": "a"}), json!([{"type": "work", "value": "w@x"}]))]
    #[case("Replace", json!({"userName": "a", "emails": [{"value": "h@x", "type": "home", "primary": true}]}),
           json!([{"value": "h@x", "type": "home", "primary": true}, {"type": "work", "value": "w@x"}]))]
    fn a_work_email_path_on_a_user_without_one_appends_it(
        #[case] op: &str,
        #[case] body: Value,
        #[case] expected: Value,
    ) {
        // E9: Entra's `Add emails[type eq "work"].value` on a user with no email.
        let out = patched(
            body,
            json!([{"op": op, "path": "emails[type eq \"work\"].value", "value": "w@x"}]),
        );
        assert_eq!(out["emails"], expected);
    }

    #[test]
    fn a_filtered_add_with_a_filter_that_cannot_seed_an_element_is_no_target() {
        let err = user_err(
            json!({"userName": "a"}),
            json!([{"op": "add", "path": "emails[type co \"wo\"].value", "value": "x@y"}]),
        );
        assert_eq!(kind(&err), (400, Some("noTarget")));
    }

    #[rstest]
    #[case(json!(""))]
    #[case(json!(null))]
    fn empty_string_or_null_clears_the_target(#[case] empty: Value) {
        // E11: Microsoft's mandatory null-update test.
        let body = json!({"userName": "a", "title": "T", "name": {"givenName": "G", "familyName": "F"},
                          "emails": [{"value": "w@x", "type": "work"}, {"value": "h@x", "type": "home"}]});
        let out = patched(
            body.clone(),
            json!([
                {"op": "replace", "path": "title", "value": empty},
                {"op": "replace", "path": "emails[type eq \"work\"]", "value": empty}
            ]),
        );
        assert_eq!(out.get("title"), None);
        assert_eq!(out["emails"], json!([{"value": "h@x", "type": "home"}]));
        let out = patched(
            body,
            json!([{"op": "replace", "value": {"title": empty, "name.givenName": empty, "emails": empty}}]),
        );
        assert_eq!(
            out,
            json!({"schemas": [USER], "userName": "a", "name": {"familyName": "F"}})
        );
    }

    #[rstest]
    #[case("manager", json!([{"$ref": "https://h/scim/Users/m1", "value": "m1"}]), json!({"value": "m1", "$ref": "https://h/scim/Users/m1"}))]
    #[case("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", json!("m1"), json!({"value": "m1"}))]
    #[case("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.manager", json!({"value": "m1"}), json!({"value": "m1"}))]
    #[case("manager", json!({"managerId": "m1"}), json!({"value": "m1"}))]
    #[case("manager.value", json!("m1"), json!({"value": "m1"}))]
    fn the_manager_is_set_in_any_of_its_shapes(
        #[case] path: &str,
        #[case] value: Value,
        #[case] expected: Value,
    ) {
        // E10: a stale `$ref` from the previous manager must not survive.
        let out = patched(
            json!({"userName": "a", "manager": {"value": "old", "$ref": "https://h/scim/Users/old"}}),
            json!([{"op": "Add", "path": path, "value": value}]),
        );
        let expected_ref = if path == "manager.value" {
            Some(json!("https://h/scim/Users/old"))
        } else {
            None
        };
        let mut expected = expected;
        if let Some(r) = expected_ref {
            expected["$ref"] = r;
        }
        assert_eq!(out[ENTERPRISE_USER]["manager"], expected);
    }

    #[rstest]
    #[case("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", json!(""))]
    #[case("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.manager", json!(null))]
    #[case("manager", json!([]))]
    fn clearing_the_only_extension_value_drops_the_extension(
        #[case] path: &str,
        #[case] value: Value,
    ) {
        let out = patched(
            json!({"userName": "a", "manager": "m1"}),
            json!([{"op": "replace", "path": path, "value": value}]),
        );
        assert_eq!(out, json!({"schemas": [USER], "userName": "a"}));
        let out = patched(
            json!({"userName": "a", "manager": "m1"}),
            json!([{"op": "remove", "path": path}]),
        );
        assert_eq!(out, json!({"schemas": [USER], "userName": "a"}));
    }

    #[test]
    fn removing_the_extension_urn_removes_the_whole_extension() {
        let out = patched(
            json!({"userName": "a", "department": "D"}),
            json!([{"op": "remove", "path": ENTERPRISE_USER}]),
        );
        assert_eq!(out, json!({"schemas": [USER], "userName": "a"}));
    }

    #[test]
    fn remove_with_a_filter_removes_matching_elements_and_no_match_is_fine() {
        // E6, O9.
        let body = json!({"userName": "a", "emails": [{"value": "w@x", "type": "work"}, {"value": "h@x", "type": "home"}]});
        let out = patched(
            body.clone(),
            json!([{"op": "remove", "path": "emails[type eq \"work\"]"}]),
        );
        assert_eq!(out["emails"], json!([{"value": "h@x", "type": "home"}]));
        let out = patched(
            body.clone(),
            json!([{"op": "remove", "path": "emails[type eq \"other\"]"}]),
        );
        assert_eq!(out["emails"], body["emails"]);
        let out = patched(
            body,
            json!([{"op": "remove", "path": "emails[type eq \"work\"].type"}]),
        );
        assert_eq!(
            out["emails"],
            json!([{"value": "w@x"}, {"value": "h@x", "type": "home"}])
        );
    }

    #[test]
    fn remove_with_a_value_list_removes_only_the_listed_elements() {
        // E5, J4 applied to any multi-valued attribute.
        let body = json!({"userName": "a", "roles": [{"value": "admin"}, {"value": "dev"}, {"value": "ops"}]});
        let out = patched(
            body.clone(),
            json!([{"op": "remove", "path": "roles", "value": [{"value": "ADMIN"}, "ops"]}]),
        );
        assert_eq!(out["roles"], json!([{"value": "dev"}]));
        let out = patched(body, json!([{"op": "remove", "path": "roles"}]));
        assert_eq!(out.get("roles"), None);
    }

    #[test]
    fn removing_a_sub_attribute_keeps_the_rest() {
        let out = patched(
            json!({"userName": "a", "name": {"givenName": "G", "familyName": "F"}}),
            json!([{"op": "remove", "path": "name.givenName"}]),
        );
        assert_eq!(out["name"], json!({"familyName": "F"}));
    }

    #[rstest]
    #[case(json!([{"op": "remove", "path": "userName"}]))]
    #[case(json!([{"op": "replace", "path": "userName", "value": ""}]))]
    #[case(json!([{"op": "replace", "value": {"userName": null}}]))]
    fn removing_a_required_attribute_is_invalid_value(#[case] ops: Value) {
        let err = user_err(json!({"userName": "a"}), ops);
        assert_eq!(kind(&err), (400, Some("invalidValue")));
    }

    #[test]
    fn a_group_display_name_cannot_be_removed() {
        let err = group_changes(json!([{"op": "remove", "path": "displayName"}])).unwrap_err();
        assert_eq!(kind(&err), (400, Some("invalidValue")));
    }

    #[test]
    fn setting_a_new_primary_demotes_the_old_one() {
        // RFC 7644 §3.5.2: the value just set to primary wins.
        let body = json!({"userName": "a", "emails": [{"value": "1@x", "primary": true}]});
        let out = patched(
            body.clone(),
            json!([{"op": "add", "path": "emails", "value": [{"value": "2@x", "primary": true}]}]),
        );
        assert_eq!(
            out["emails"],
            json!([{"value": "1@x", "primary": false}, {"value": "2@x", "primary": true}])
        );
        let out = patched(
            json!({"userName": "a", "emails": [{"value": "1@x", "primary": true}, {"value": "2@x", "type": "work"}]}),
            json!([{"op": "replace", "path": "emails[type eq \"work\"].primary", "value": "True"}]),
        );
        assert_eq!(
            out["emails"],
            json!([{"value": "1@x", "primary": false}, {"value": "2@x", "type": "work", "primary": true}])
        );
    }

    #[test]
    fn the_result_is_normalised_like_a_put() {
        // P5 on a whole-array replace: the first primary stays.
        let out = patched(
            json!({"userName": "a"}),
            json!([{"op": "replace", "path": "emails", "value": [{"value": "1@x", "primary": true}, {"value": "2@x", "primary": true}]}]),
        );
        assert_eq!(
            out["emails"],
            json!([{"value": "1@x", "primary": true}, {"value": "2@x", "primary": false}])
        );
    }

    #[test]
    fn ill_typed_values_are_invalid_value() {
        let err = user_err(
            json!({"userName": "a"}),
            json!([{"op": "replace", "path": "active", "value": "maybe"}]),
        );
        assert_eq!(kind(&err), (400, Some("invalidValue")));
        assert_eq!(err.detail, "active must be a boolean");
    }

    #[test]
    fn a_failing_operation_leaves_the_data_untouched() {
        let err = user_err(
            json!({"userName": "a", "title": "T"}),
            json!([{"op": "replace", "path": "title", "value": "New"}, {"op": "replace", "path": "active", "value": 3}]),
        );
        assert_eq!(kind(&err), (400, Some("invalidValue")));
    }

    // --- Group members --------------------------------------------------------

    #[test]
    fn member_adds_accept_arrays_lone_objects_and_bare_ids() {
        // E7 (`$ref: null`), O9 (display), M7 (bare string).
        let changes = group_changes(json!([
            {"op": "Add", "path": "members", "value": [{"$ref": null, "value": "u1"}, {"value": "u2", "display": "B"}]},
            {"op": "add", "path": "members", "value": {"value": "u3", "type": "Group"}},
            {"op": "add", "path": "members", "value": "u4"}
        ]))
        .unwrap();
        assert_eq!(
            changes,
            vec![
                MemberChange::Add(vec![
                    m("u1"),
                    MemberRef {
                        display: Some("B".into()),
                        ..m("u2")
                    }
                ]),
                MemberChange::Add(vec![MemberRef {
                    value: "u3".into(),
                    kind: Some(MemberKind::Group),
                    display: None,
                }]),
                MemberChange::Add(vec![m("u4")]),
            ]
        );
    }

    #[test]
    fn member_removal_with_a_value_list_removes_only_those_members() {
        // E5, J4.
        let changes = group_changes(json!([{"op": "Remove", "path": "members", "value": [{"value": "u1091", "$ref": null}]}])).unwrap();
        assert_eq!(changes, vec![MemberChange::Remove(vec!["u1091".into()])]);
    }

    #[test]
    fn member_removal_without_a_value_removes_all() {
        let changes = group_changes(json!([{"op": "remove", "path": "members"}])).unwrap();
        assert_eq!(changes, vec![MemberChange::RemoveAll]);
    }

    #[rstest]
    #[case("members[value eq \"a\"]", vec!["a"])]
    #[case("members[value eq \"a\" or VALUE eq \"b\"]", vec!["a", "b"])]
    fn member_removal_by_value_filter_becomes_an_id_list(
        #[case] path: &str,
        #[case] ids: Vec<&str>,
    ) {
        // E6, O9.
        let changes = group_changes(json!([{"op": "remove", "path": path}])).unwrap();
        assert_eq!(
            changes,
            vec![MemberChange::Remove(
                ids.into_iter().map(String::from).collect()
            )]
        );
    }

    #[test]
    fn member_removal_by_another_filter_becomes_a_domain_filter() {
        let changes =
            group_changes(json!([{"op": "remove", "path": "members[type eq \"Group\"]"}])).unwrap();
        assert_eq!(
            changes,
            vec![MemberChange::RemoveWhere(domain::Filter::Compare(
                domain::AttrRef::new(&["type"], domain::ValueKind::String, false),
                domain::Op::Eq,
                domain::Value::Str("Group".into()),
            ))]
        );
    }

    #[test]
    fn member_replace_by_path_or_pathless_value_becomes_replace() {
        let changes = group_changes(json!([
            {"op": "replace", "path": "members", "value": [{"value": "u1"}]},
            {"op": "replace", "value": {"id": ID, "displayName": "Sales", "members": [{"value": "u2"}]}},
            {"op": "replace", "path": "members", "value": []}
        ]))
        .unwrap();
        assert_eq!(
            changes,
            vec![
                MemberChange::Replace(vec![m("u1")]),
                MemberChange::Replace(vec![m("u2")]),
                MemberChange::Replace(vec![]),
            ]
        );
    }

    #[test]
    fn member_changes_keep_operation_order_beside_attribute_changes() {
        // O9: remove-by-filter then add in one request; O8 rename with the id.
        let mut data = resource::canonicalize(
            &GROUP_RESOURCE,
            &json!({"displayName": "Sales"}),
            Mode::Create,
        )
        .unwrap()
        .data;
        let changes = patch(
            &GROUP_RESOURCE,
            &mut data,
            json!([
                {"op": "remove", "path": "members[value eq \"89bb\"]"},
                {"op": "replace", "value": {"id": ID, "displayName": "Test SCIMv2"}},
                {"op": "add", "path": "members", "value": [{"value": "23a3", "display": "t@okta.local"}]}
            ]),
        )
        .unwrap();
        assert_eq!(
            changes,
            vec![
                MemberChange::Remove(vec!["89bb".into()]),
                MemberChange::Add(vec![MemberRef {
                    display: Some("t@okta.local".into()),
                    ..m("23a3")
                }])
            ]
        );
        assert_eq!(
            Value::Object(data),
            json!({"schemas": [GROUP], "displayName": "Test SCIMv2"})
        );
    }

    #[test]
    fn a_member_without_a_value_is_invalid_value() {
        let err =
            group_changes(json!([{"op": "add", "path": "members", "value": [{"display": "x"}]}]))
                .unwrap_err();
        assert_eq!(kind(&err), (400, Some("invalidValue")));
    }

    // --- extensions no schema describes (E14) ----------------------------------

    const CUSTOM: &str = "urn:ietf:params:scim:schemas:extension:Contoso:2.0:User";

    fn custom(name: &str) -> String {
        format!("{CUSTOM}:{name}")
    }

    #[test]
    fn entras_pathless_replace_with_urn_keys_sets_unregistered_attributes() {
        // E4's form, with a custom extension beside the enterprise one.
        let out = patched(
            json!({"userName": "a", CUSTOM: {"costCenter": "41", "keep": "k"}}),
            json!([{"op": "Replace", "value": {
                "displayName": "D",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "7",
                custom("costCenter"): "42",
                "urn:ietf:params:scim:schemas:extension:contoso:2.0:USER:Division": "Sales",
                "urn:ietf:params:scim:schemas:extension:Other:2.0:User:level": 3
            }}]),
        );
        assert_eq!(
            out,
            json!({
                "schemas": [USER, ENTERPRISE_USER, CUSTOM, "urn:ietf:params:scim:schemas:extension:Other:2.0:User"],
                "userName": "a",
                CUSTOM: {"costCenter": "42", "keep": "k", "Division": "Sales"},
                "displayName": "D",
                ENTERPRISE_USER: {"employeeNumber": "7"},
                "urn:ietf:params:scim:schemas:extension:Other:2.0:User": {"level": 3}
            })
        );
    }

    #[rstest]
    #[case("add")]
    #[case("replace")]
    fn a_pathless_urn_key_with_an_object_merges_into_the_extension(#[case] op: &str) {
        // RFC 7644 §3.5.2.1/3: attributes not named are left as they are.
        let out = patched(
            json!({"userName": "a", CUSTOM: {"costCenter": "41", "keep": "k"}}),
            json!([{"op": op, "value": {CUSTOM: {"costCenter": "42", "keep": null, "new": true}}}]),
        );
        assert_eq!(out[CUSTOM], json!({"costCenter": "42", "new": true}));
    }

    #[test]
    fn op_paths_add_replace_and_remove_unregistered_attributes() {
        let mut data = user_data(json!({"userName": "a"}));
        let steps = [
            (
                json!({"op": "add", "path": custom("costCenter"), "value": "42"}),
                json!({"costCenter": "42"}),
            ),
            (
                json!({"op": "replace", "path": custom("costCenter"), "value": "43"}),
                json!({"costCenter": "43"}),
            ),
            (
                json!({"op": "add", "path": custom("manager.value"), "value": "m1"}),
                json!({"costCenter": "43", "manager": {"value": "m1"}}),
            ),
            (
                json!({"op": "replace", "path": custom("manager"), "value": {"$ref": "../Users/m1"}}),
                json!({"costCenter": "43", "manager": {"value": "m1", "$ref": "../Users/m1"}}),
            ),
            (
                json!({"op": "add", "path": custom("tags"), "value": ["a"]}),
                json!({"costCenter": "43", "manager": {"value": "m1", "$ref": "../Users/m1"}, "tags": ["a"]}),
            ),
            (
                json!({"op": "add", "path": custom("tags"), "value": ["a", "b"]}),
                json!({"costCenter": "43", "manager": {"value": "m1", "$ref": "../Users/m1"}, "tags": ["a", "b"]}),
            ),
            (
                json!({"op": "remove", "path": custom("tags"), "value": ["a"]}),
                json!({"costCenter": "43", "manager": {"value": "m1", "$ref": "../Users/m1"}, "tags": ["b"]}),
            ),
            (
                json!({"op": "remove", "path": custom("manager.$ref")}),
                json!({"costCenter": "43", "manager": {"value": "m1"}, "tags": ["b"]}),
            ),
            (
                json!({"op": "remove", "path": custom("COSTCENTER")}),
                json!({"manager": {"value": "m1"}, "tags": ["b"]}),
            ),
            (
                json!({"op": "replace", "path": custom("tags"), "value": ["c"]}),
                json!({"manager": {"value": "m1"}, "tags": ["c"]}),
            ),
            (
                json!({"op": "replace", "path": custom("tags"), "value": ""}),
                json!({"manager": {"value": "m1"}}),
            ),
        ];
        for (op, expected) in steps {
            patch(&USER_RESOURCE, &mut data, json!([op.clone()])).unwrap();
            assert_eq!(data[CUSTOM], expected, "after {op}");
            assert_eq!(data["schemas"], json!([USER, CUSTOM]));
        }
        patch(
            &USER_RESOURCE,
            &mut data,
            json!([{"op": "remove", "path": custom("manager")}]),
        )
        .unwrap();
        assert_eq!(
            Value::Object(data),
            json!({"schemas": [USER], "userName": "a"})
        );
    }

    #[rstest]
    #[case(json!({"op": "remove", "path": custom("nosuch")}))]
    #[case(json!({"op": "remove", "path": custom("manager.value")}))]
    #[case(json!({"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:Other:2.0:User:x"}))]
    #[case(json!({"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:Other:2.0:User"}))]
    fn removing_an_unregistered_attribute_that_is_not_there_changes_nothing(#[case] op: Value) {
        // RFC 7644 §3.5.2.2.
        let body = json!({"userName": "a", CUSTOM: {"costCenter": "42"}});
        assert_eq!(
            patched(body.clone(), json!([op])),
            Value::Object(user_data(body))
        );
    }

    #[rstest]
    #[case(json!({"op": "remove", "path": CUSTOM}))]
    #[case(json!({"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:CONTOSO:2.0:User"}))]
    #[case(json!({"op": "replace", "path": CUSTOM, "value": null}))]
    #[case(json!({"op": "replace", "value": {CUSTOM: ""}}))]
    fn a_bare_unregistered_urn_names_the_whole_extension(#[case] op: Value) {
        let out = patched(
            json!({"userName": "a", CUSTOM: {"costCenter": "42", "x": 1}}),
            json!([op]),
        );
        assert_eq!(out, json!({"schemas": [USER], "userName": "a"}));
    }

    #[rstest]
    #[case("urn:ietf:params:scim:schemas:extension:contoso:2.0:user:costCenter")]
    #[case("urn:ietf:params:scim:schemas:extension:Contoso:2.0:User.costCenter")]
    #[case("URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:CONTOSO:2.0:USER.COSTCENTER")]
    fn any_spelling_of_the_urn_and_e28s_dot_land_in_the_stored_extension(#[case] path: &str) {
        // X9, E28.
        let out = patched(
            json!({"userName": "a", CUSTOM: {"costCenter": "41"}}),
            json!([{"op": "replace", "path": path, "value": "42"}]),
        );
        assert_eq!(out[CUSTOM], json!({"costCenter": "42"}));
        assert_eq!(out["schemas"], json!([USER, CUSTOM]));
    }

    #[test]
    fn a_pathless_urn_key_with_an_object_is_an_extension_even_when_new() {
        let okta = "urn:okta:acme:1.0:profile:custom";
        let out = patched(
            json!({"userName": "a"}),
            json!([{"op": "add", "value": {okta: {"region": "emea"}}}]),
        );
        assert_eq!(out[okta], json!({"region": "emea"}));
    }

    #[test]
    fn an_okta_namespace_takes_attributes_by_path_and_by_key() {
        let okta = "urn:okta:acme:1.0:profile:custom";
        let out = patched(
            json!({"userName": "a", okta: {"a": "1"}}),
            json!([
                {"op": "replace", "path": format!("{okta}:a"), "value": "2"},
                {"op": "add", "value": {format!("{okta}:b"): "3", okta: {"c": "4"}}}
            ]),
        );
        assert_eq!(out[okta], json!({"a": "2", "b": "3", "c": "4"}));
    }

    #[rstest]
    #[case(json!([{"op": "add", "path": custom("tags[value eq \"a\"]"), "value": "x"}]), "invalidPath")]
    #[case(json!([{"op": "add", "path": custom("1st"), "value": "x"}]), "invalidPath")]
    #[case(json!([{"op": "add", "path": custom("a.b.c"), "value": "x"}]), "invalidPath")]
    #[case(json!([{"op": "add", "path": custom("deep"), "value": {"a": {"b": 1}}}]), "invalidValue")]
    #[case(json!([{"op": "add", "path": custom("s"), "value": "x".repeat(1025)}]), "invalidValue")]
    #[case(json!([{"op": "replace", "value": {CUSTOM: {"bad name": 1}}}]), "invalidValue")]
    #[case(json!([{"op": "replace", "path": CUSTOM, "value": 5}]), "invalidValue")]
    fn a_bad_unregistered_path_or_value_fails_and_changes_nothing(
        #[case] ops: Value,
        #[case] scim_type: &str,
    ) {
        let err = user_err(json!({"userName": "a", CUSTOM: {"costCenter": "41"}}), ops);
        assert_eq!(kind(&err), (400, Some(scim_type)), "{}", err.detail);
    }

    #[test]
    fn the_caps_hold_after_a_patch() {
        let attributes: Map<String, Value> = (0..custom::MAX_ATTRIBUTES)
            .map(|i| (format!("a{i}"), json!(i)))
            .collect();
        let mut data = user_data(json!({"userName": "a", CUSTOM: attributes}));
        let err = patch(
            &USER_RESOURCE,
            &mut data,
            json!([{"op": "add", "path": custom("one_more"), "value": 1}]),
        )
        .unwrap_err();
        assert_eq!(kind(&err), (400, Some("invalidValue")));
        assert_eq!(
            err.detail,
            format!("{CUSTOM} has 65 attributes; at most 64 are accepted")
        );
        patch(
            &USER_RESOURCE,
            &mut data,
            json!([
                {"op": "remove", "path": custom("a0")},
                {"op": "add", "path": custom("one_more"), "value": 1}
            ]),
        )
        .unwrap();
        assert_eq!(
            data[CUSTOM].as_object().map(Map::len),
            Some(custom::MAX_ATTRIBUTES)
        );
    }

    #[test]
    fn a_scim_1_1_patch_keeps_an_unregistered_extension() {
        // L9: OneLogin's body without `Operations`.
        let mut data = user_data(json!({"userName": "a"}));
        let ops = parse(
            &USER_RESOURCE,
            &json!({"title": "T", CUSTOM: {"costCenter": "42"}}),
        )
        .unwrap();
        apply(&USER_RESOURCE, ID, &mut data, &ops).unwrap();
        assert_eq!(
            Value::Object(data),
            json!({"schemas": [USER, CUSTOM], "userName": "a", "title": "T", CUSTOM: {"costCenter": "42"}})
        );
    }
}
