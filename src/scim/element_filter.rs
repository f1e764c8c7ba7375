//! Value filters (`emails[type eq "work"]`, RFC 7644 §3.4.2.2) evaluated against one
//! element of a multi-valued attribute in canonical JSON, or translated into a
//! domain filter relative to the element. Pure: no I/O, no HTTP, no SQL.

use std::cmp::Ordering;

use chrono::DateTime;
use scim_v2::filter::{AttrExp, AttrPath, CompValue, CompareOp, ValFilter};
use serde_json::Value;

use super::error::ScimError;
use super::schema::{AttrType, Attribute};
use crate::domain::filter as domain;

/// Whether `element` (one value of the multi-valued `attr`, canonical form) satisfies
/// `filter`. Sub-attribute names compare case-insensitively (RFC 7643 §2.1); strings
/// compare case-insensitively unless the sub-attribute is caseExact (RFC 7643 §2.2).
/// A term naming an unknown sub-attribute matches nothing.
pub fn matches(attr: &'static Attribute, element: &Value, filter: &ValFilter) -> bool {
    match filter {
        ValFilter::Attr(AttrExp::Present(path)) => sub_attribute(attr, path)
            .and_then(|sub| field(element, sub))
            .is_some_and(is_present),
        ValFilter::Attr(AttrExp::Comparison(path, op, expected)) => match sub_attribute(attr, path)
        {
            Some(sub) => compare(sub, field(element, sub), op, expected),
            None => false,
        },
        ValFilter::Not(inner) => !matches(attr, element, inner),
        ValFilter::And(items) => items.iter().all(|f| matches(attr, element, f)),
        ValFilter::Or(items) => items.iter().any(|f| matches(attr, element, f)),
    }
}

/// Translate `filter` into a domain filter whose paths are relative to the element
/// (`["value"]`, `["type"]`), for evaluating it in SQL (group members removed by
/// filter, RFC 7644 §3.5.2.2). An unknown sub-attribute, or an operator/value that
/// does not fit the sub-attribute's type, is `invalidFilter` (RFC 7644 §3.4.2.2).
pub fn to_domain(
    attr: &'static Attribute,
    filter: &ValFilter,
) -> Result<domain::Filter, ScimError> {
    match filter {
        ValFilter::Attr(AttrExp::Present(path)) => {
            let sub = known_sub_attribute(attr, path)?;
            Ok(domain::Filter::Present(attr_ref(sub)?))
        }
        ValFilter::Attr(AttrExp::Comparison(path, op, value)) => {
            let sub = known_sub_attribute(attr, path)?;
            let reference = attr_ref(sub)?;
            let value = domain_value(sub, reference.kind, op, value)?;
            Ok(domain::Filter::Compare(reference, domain_op(op), value))
        }
        ValFilter::Not(inner) => Ok(domain::Filter::Not(Box::new(to_domain(attr, inner)?))),
        ValFilter::And(items) => Ok(domain::Filter::And(
            items
                .iter()
                .map(|f| to_domain(attr, f))
                .collect::<Result<_, _>>()?,
        )),
        ValFilter::Or(items) => Ok(domain::Filter::Or(
            items
                .iter()
                .map(|f| to_domain(attr, f))
                .collect::<Result<_, _>>()?,
        )),
    }
}

/// The `sub eq value` terms of a filter that is one such term or a conjunction of
/// them, in filter order; `None` for any other shape. PATCH uses them to create the
/// element a replace/add addressed but did not find (quirk E9).
pub fn eq_terms(
    attr: &'static Attribute,
    filter: &ValFilter,
) -> Option<Vec<(&'static Attribute, Value)>> {
    let term = |f: &ValFilter| match f {
        ValFilter::Attr(AttrExp::Comparison(path, CompareOp::Eq, value)) => {
            let value = match value {
                CompValue::Str(s) => Value::String(s.clone()),
                CompValue::True => Value::Bool(true),
                CompValue::False => Value::Bool(false),
                CompValue::Number(n) => Value::Number(n.clone()),
                CompValue::Null => return None,
            };
            Some((sub_attribute(attr, path)?, value))
        }
        _ => None,
    };
    match filter {
        ValFilter::And(items) => items.iter().map(term).collect(),
        single => term(single).map(|t| vec![t]),
    }
}

/// The ids of a filter that is `value eq "id"` or an `or` of such terms
/// (`members[value eq "a" or value eq "b"]`); `None` for any other shape. Group
/// members are rows, so PATCH removes these ids and a filter looks them up
/// without a filter over the elements.
pub fn value_ids(filter: &ValFilter) -> Option<Vec<String>> {
    let term = |f: &ValFilter| match f {
        ValFilter::Attr(AttrExp::Comparison(path, CompareOp::Eq, CompValue::Str(id)))
            if path.uri.is_none()
                && path.sub_attr.is_none()
                && path.name.eq_ignore_ascii_case("value") =>
        {
            Some(id.clone())
        }
        _ => None,
    };
    match filter {
        ValFilter::Or(items) => items.iter().map(term).collect(),
        single => term(single).map(|id| vec![id]),
    }
}

/// The sub-attribute a path inside brackets names. The RFC form is a bare
/// sub-attribute (`type`); `emails.type` inside `emails[...]` is tolerated.
pub fn sub_attribute(attr: &'static Attribute, path: &AttrPath) -> Option<&'static Attribute> {
    if path.uri.is_some() {
        return None;
    }
    match &path.sub_attr {
        None => attr.sub_attribute(&path.name),
        Some(sub) if path.name.eq_ignore_ascii_case(attr.name) => attr.sub_attribute(sub),
        Some(_) => None,
    }
}

fn known_sub_attribute(
    attr: &'static Attribute,
    path: &AttrPath,
) -> Result<&'static Attribute, ScimError> {
    sub_attribute(attr, path).ok_or_else(|| {
        ScimError::invalid_filter(format!("{path} is not a sub-attribute of {}", attr.name))
    })
}

/// The element's value for `sub`: the canonical key first, any casing as a fallback.
fn field<'a>(element: &'a Value, sub: &Attribute) -> Option<&'a Value> {
    let object = element.as_object()?;
    object.get(sub.name).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(sub.name))
            .map(|(_, v)| v)
    })
}

/// RFC 7644 §3.4.2.2 `pr`: present and not null/empty.
fn is_present(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

fn compare(sub: &Attribute, actual: Option<&Value>, op: &CompareOp, expected: &CompValue) -> bool {
    let actual = actual.filter(|v| is_present(v));
    let (actual, expected) = match (actual, expected) {
        (None, CompValue::Null) => return *op == CompareOp::Eq,
        (Some(_), CompValue::Null) => return *op == CompareOp::Ne,
        // An unassigned value differs from any value.
        (None, _) => return *op == CompareOp::Ne,
        (Some(a), e) => (a, e),
    };
    let ordering = match sub.ty {
        AttrType::Boolean => {
            // `primary eq true` against a stored bool; Entra-style string booleans
            // are tolerated on either side (E2).
            match (as_bool(actual), comp_bool(expected)) {
                (Some(a), Some(e)) => return bool_op(op, a == e),
                _ => return false,
            }
        }
        AttrType::Integer | AttrType::Decimal => match (actual.as_f64(), comp_number(expected)) {
            (Some(a), Some(e)) => a.partial_cmp(&e),
            _ => None,
        },
        AttrType::DateTime => match (actual.as_str(), expected) {
            (Some(a), CompValue::Str(e)) => match (millis(a), millis(e)) {
                (Some(a), Some(e)) => Some(a.cmp(&e)),
                _ => return string_op(op, a, e, sub.case_exact),
            },
            _ => None,
        },
        AttrType::String | AttrType::Reference | AttrType::Binary => {
            return match (actual.as_str(), expected) {
                (Some(a), CompValue::Str(e)) => string_op(op, a, e, sub.case_exact),
                _ => false,
            };
        }
        AttrType::Complex => None,
    };
    ordering.is_some_and(|o| ordering_op(op, o))
}

fn string_op(op: &CompareOp, actual: &str, expected: &str, case_exact: bool) -> bool {
    let (a, e) = if case_exact {
        (actual.to_owned(), expected.to_owned())
    } else {
        (actual.to_lowercase(), expected.to_lowercase())
    };
    match op {
        CompareOp::Co => a.contains(&e),
        CompareOp::Sw => a.starts_with(&e),
        CompareOp::Ew => a.ends_with(&e),
        _ => ordering_op(op, a.cmp(&e)),
    }
}

fn ordering_op(op: &CompareOp, o: Ordering) -> bool {
    match op {
        CompareOp::Eq => o == Ordering::Equal,
        CompareOp::Ne => o != Ordering::Equal,
        CompareOp::Gt => o == Ordering::Greater,
        CompareOp::Ge => o != Ordering::Less,
        CompareOp::Lt => o == Ordering::Less,
        CompareOp::Le => o != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

fn bool_op(op: &CompareOp, equal: bool) -> bool {
    match op {
        CompareOp::Eq => equal,
        CompareOp::Ne => !equal,
        _ => false,
    }
}

fn as_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) => parse_bool(s),
        _ => None,
    }
}

fn comp_bool(value: &CompValue) -> Option<bool> {
    match value {
        CompValue::True => Some(true),
        CompValue::False => Some(false),
        CompValue::Str(s) => parse_bool(s),
        _ => None,
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

fn comp_number(value: &CompValue) -> Option<f64> {
    match value {
        CompValue::Number(n) => n.as_f64(),
        _ => None,
    }
}

fn millis(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.timestamp_millis())
}

fn attr_ref(sub: &'static Attribute) -> Result<domain::AttrRef, ScimError> {
    let kind = match sub.ty {
        AttrType::String => domain::ValueKind::String,
        AttrType::Boolean => domain::ValueKind::Boolean,
        AttrType::Integer | AttrType::Decimal => domain::ValueKind::Number,
        AttrType::DateTime => domain::ValueKind::DateTime,
        AttrType::Reference | AttrType::Binary => domain::ValueKind::Opaque,
        AttrType::Complex => {
            return Err(ScimError::invalid_filter(format!(
                "{} cannot be compared",
                sub.name
            )));
        }
    };
    Ok(domain::AttrRef::new(&[sub.name], kind, sub.case_exact))
}

fn domain_op(op: &CompareOp) -> domain::Op {
    match op {
        CompareOp::Eq => domain::Op::Eq,
        CompareOp::Ne => domain::Op::Ne,
        CompareOp::Co => domain::Op::Co,
        CompareOp::Sw => domain::Op::Sw,
        CompareOp::Ew => domain::Op::Ew,
        CompareOp::Gt => domain::Op::Gt,
        CompareOp::Ge => domain::Op::Ge,
        CompareOp::Lt => domain::Op::Lt,
        CompareOp::Le => domain::Op::Le,
    }
}

/// The comparison value in the sub-attribute's type. RFC 7644 §3.4.2.2: `gt`/`ge`/
/// `lt`/`le` on a boolean or binary attribute is `invalidFilter`.
fn domain_value(
    sub: &Attribute,
    kind: domain::ValueKind,
    op: &CompareOp,
    value: &CompValue,
) -> Result<domain::Value, ScimError> {
    let mismatch = || {
        ScimError::invalid_filter(format!(
            "{} {op} {value} does not fit a {} attribute",
            sub.name,
            sub.ty.as_str()
        ))
    };
    let substring = matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew);
    let ordered = matches!(
        op,
        CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le
    );
    if let CompValue::Null = value {
        return if matches!(op, CompareOp::Eq | CompareOp::Ne) {
            Ok(domain::Value::Null)
        } else {
            Err(mismatch())
        };
    }
    match kind {
        domain::ValueKind::Boolean => match comp_bool(value) {
            Some(b) if !substring && !ordered => Ok(domain::Value::Bool(b)),
            _ => Err(mismatch()),
        },
        domain::ValueKind::Number => match comp_number(value) {
            Some(n) if !substring => Ok(domain::Value::Number(n)),
            _ => Err(mismatch()),
        },
        domain::ValueKind::DateTime => match value {
            CompValue::Str(s) if !substring => {
                millis(s).map(domain::Value::DateTime).ok_or_else(mismatch)
            }
            _ => Err(mismatch()),
        },
        domain::ValueKind::String | domain::ValueKind::Opaque => match value {
            CompValue::Str(_) if ordered && sub.ty == AttrType::Binary => Err(mismatch()),
            CompValue::Str(s) => Ok(domain::Value::Str(s.clone())),
            _ => Err(mismatch()),
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::schema::{GROUP_RESOURCE, USER_RESOURCE};
    use super::*;
    use rstest::rstest;
    use serde_json::json;

    fn user_attr(name: &str) -> &'static Attribute {
        USER_RESOURCE.resolve(None, name, None).unwrap().attribute
    }

    fn group_attr(name: &str) -> &'static Attribute {
        GROUP_RESOURCE.resolve(None, name, None).unwrap().attribute
    }

    fn vf(s: &str) -> ValFilter {
        match format!("x[{s}]").parse::<scim_v2::filter::PatchPath>() {
            Ok(scim_v2::filter::PatchPath::Value(vp)) => vp.filter,
            other => panic!("not a value filter: {other:?}"),
        }
    }

    fn emails() -> &'static Attribute {
        user_attr("emails")
    }

    #[rstest]
    #[case(r#"type eq "work""#, true)]
    #[case(r#"TYPE eq "WORK""#, true)]
    #[case(r#"type ne "work""#, false)]
    #[case(r#"type eq "home""#, false)]
    #[case(r#"value co "EXAMPLE""#, true)]
    #[case(r#"value sw "Bjensen@""#, true)]
    #[case(r#"value ew ".com""#, true)]
    #[case(r#"value gt "a""#, true)]
    #[case(r#"value lt "a""#, false)]
    #[case(r#"value ge "bjensen@example.com""#, true)]
    #[case(r#"value le "bjensen@example.com""#, true)]
    #[case("primary eq true", true)]
    #[case("primary eq false", false)]
    #[case(r#"primary eq "True""#, true)]
    #[case("primary ne false", true)]
    #[case("display pr", false)]
    #[case("value pr", true)]
    #[case(r#"type eq "work" and primary eq true"#, true)]
    #[case(r#"type eq "home" or primary eq true"#, true)]
    #[case(r#"not (type eq "work")"#, false)]
    #[case(r#"display eq null"#, true)]
    #[case(r#"display ne "x""#, true)]
    #[case(r#"nosuch eq "x""#, false)]
    fn value_filters_evaluate_against_one_email(#[case] filter: &str, #[case] expected: bool) {
        let element = json!({"value": "bjensen@example.com", "type": "work", "primary": true});
        assert_eq!(
            matches(emails(), &element, &vf(filter)),
            expected,
            "{filter}"
        );
    }

    #[test]
    fn case_exact_sub_attributes_compare_exactly() {
        let members = group_attr("members");
        let element = json!({"value": "ABC"});
        assert!(matches(members, &element, &vf(r#"value eq "ABC""#)));
        assert!(!matches(members, &element, &vf(r#"value eq "abc""#)));
    }

    #[test]
    fn element_keys_in_other_casing_are_still_found() {
        let element = json!({"Type": "work"});
        assert!(matches(emails(), &element, &vf(r#"type eq "work""#)));
    }

    #[test]
    fn parent_qualified_sub_attribute_names_are_tolerated() {
        let element = json!({"type": "work"});
        assert!(matches(emails(), &element, &vf(r#"emails.type eq "work""#)));
    }

    #[test]
    fn eq_terms_of_a_conjunction_seed_a_new_element() {
        let terms = eq_terms(emails(), &vf(r#"Type eq "work" and primary eq true"#)).unwrap();
        let names: Vec<_> = terms.iter().map(|(a, v)| (a.name, v.clone())).collect();
        assert_eq!(
            names,
            vec![("type", json!("work")), ("primary", json!(true))]
        );
        assert!(eq_terms(emails(), &vf(r#"type eq "work" or type eq "home""#)).is_none());
        assert!(eq_terms(emails(), &vf(r#"type co "w""#)).is_none());
    }

    #[test]
    fn value_eq_translates_to_an_element_relative_domain_filter() {
        let f = to_domain(
            group_attr("members"),
            &vf(r#"value eq "a" or Type eq "User""#),
        )
        .unwrap();
        assert_eq!(
            f,
            domain::Filter::Or(vec![
                domain::Filter::Compare(
                    domain::AttrRef::new(&["value"], domain::ValueKind::String, true),
                    domain::Op::Eq,
                    domain::Value::Str("a".into()),
                ),
                domain::Filter::Compare(
                    domain::AttrRef::new(&["type"], domain::ValueKind::String, false),
                    domain::Op::Eq,
                    domain::Value::Str("User".into()),
                ),
            ])
        );
    }

    #[test]
    fn presence_and_negation_translate_to_the_domain() {
        let f = to_domain(emails(), &vf(r#"not (display pr) and primary eq "true""#)).unwrap();
        assert_eq!(
            f,
            domain::Filter::And(vec![
                domain::Filter::Not(Box::new(domain::Filter::Present(domain::AttrRef::new(
                    &["display"],
                    domain::ValueKind::String,
                    false
                )))),
                domain::Filter::Compare(
                    domain::AttrRef::new(&["primary"], domain::ValueKind::Boolean, false),
                    domain::Op::Eq,
                    domain::Value::Bool(true),
                ),
            ])
        );
    }

    #[rstest]
    #[case(r#"nosuch eq "x""#)]
    #[case(r#"primary gt true"#)]
    #[case(r#"value eq 3"#)]
    #[case(r#"primary co "t""#)]
    fn unknown_or_ill_typed_terms_are_invalid_filter(#[case] filter: &str) {
        let err = to_domain(emails(), &vf(filter)).unwrap_err();
        assert_eq!(err.scim_type.map(|t| t.as_str()), Some("invalidFilter"));
        assert_eq!(err.status.as_u16(), 400);
    }
}
