//! SCIM filter text → `domain::filter::Filter` (RFC 7644 §3.4.2.2).
//!
//! `scim_v2` parses (with its term and depth limits); this resolves each
//! attribute against the schema registry so the neutral filter carries
//! canonical paths, value kinds and caseExact, and `store` can make SQL of it.

use scim_v2::filter::{AttrExp, AttrPath, CompValue, CompareOp, Filter as ScimFilter, ValFilter};

use super::error::ScimError;
use super::schema::{self, AttrType, Attribute, Resolved, ResourceType, Returned};
use crate::domain::filter::{AttrRef, Filter, Op, Related, Value, ValueKind};
use crate::domain::text;

/// Parse and resolve a filter for `rt`. Malformed or unsupported → 400 invalidFilter.
pub fn parse(rt: &'static ResourceType, raw: &str) -> Result<Filter, ScimError> {
    let ast: ScimFilter = match raw.parse() {
        Ok(ast) => ast,
        Err(strict) => {
            // Known vendor forms (unquoted values, E8's `attr[f].sub op v`) are
            // retried in RFC form; anything else keeps the strict error.
            let lenient = super::quirks::lenient_filter(raw).and_then(|r| r.parse().ok());
            lenient.ok_or_else(|| {
                ScimError::invalid_filter(format!(
                    "invalid filter {}: {}",
                    text::quoted(raw),
                    text::bounded(strict.to_string(), text::QUOTED_CHARS * 2)
                ))
            })?
        }
    };
    check_literals(&ast)?;
    translate(rt, &ast)
}

/// The filter's string literals as decoded (`"\u0000"` is a NUL) kept to
/// the text rule (`domain::text`) before any reaches a query.
fn check_literals(filter: &ScimFilter) -> Result<(), ScimError> {
    fn exp(exp: &AttrExp) -> Result<(), ScimError> {
        match exp {
            AttrExp::Comparison(path, _, CompValue::Str(s)) => text::check(s).map_err(|found| {
                ScimError::invalid_filter(format!("the value compared with {path} {found}"))
            }),
            _ => Ok(()),
        }
    }
    fn val(filter: &ValFilter) -> Result<(), ScimError> {
        match filter {
            ValFilter::Attr(e) => exp(e),
            ValFilter::Not(inner) => val(inner),
            ValFilter::And(items) | ValFilter::Or(items) => items.iter().try_for_each(val),
        }
    }
    match filter {
        ScimFilter::Attr(e) => exp(e),
        ScimFilter::ValuePath(vp) => val(&vp.filter),
        ScimFilter::Not(inner) => check_literals(inner),
        ScimFilter::And(items) | ScimFilter::Or(items) => items.iter().try_for_each(check_literals),
    }
}

fn translate(rt: &'static ResourceType, filter: &ScimFilter) -> Result<Filter, ScimError> {
    Ok(match filter {
        ScimFilter::Attr(exp) => attr_exp(rt, exp)?,
        ScimFilter::ValuePath(vp) => {
            let resolved = resolve(rt, &vp.attr)?;
            if is_membership(rt, &resolved) {
                return membership_value_path(&resolved, &vp.filter);
            }
            if !resolved.attribute.is_complex() || resolved.sub_attribute.is_some() {
                return Err(ScimError::invalid_filter(format!(
                    "{} is not a complex attribute; a value filter [..] needs one",
                    resolved
                )));
            }
            let inner = val_filter(resolved.attribute, &vp.filter)?;
            wrap_element(&resolved, inner)
        }
        ScimFilter::Not(inner) => Filter::Not(Box::new(translate(rt, inner)?)),
        ScimFilter::And(items) => Filter::And(
            items
                .iter()
                .map(|f| translate(rt, f))
                .collect::<Result<_, _>>()?,
        ),
        ScimFilter::Or(items) => Filter::Or(
            items
                .iter()
                .map(|f| translate(rt, f))
                .collect::<Result<_, _>>()?,
        ),
    })
}

fn resolve(rt: &'static ResourceType, path: &AttrPath) -> Result<Resolved, ScimError> {
    let resolved = rt
        .resolve(path.uri.as_deref(), &path.name, path.sub_attr.as_deref())
        .ok_or_else(|| {
            ScimError::invalid_filter(format!("unknown attribute {path} for {}", rt.name))
        })?;
    if resolved.target().returned == Returned::Never {
        return Err(ScimError::invalid_filter(format!(
            "{resolved} is never returned and cannot be filtered on"
        )));
    }
    Ok(resolved)
}

/// The canonical JSON path of a resolved attribute (without its sub-attribute).
fn base_path(resolved: &Resolved) -> Vec<&'static str> {
    let mut path = Vec::with_capacity(2);
    if let Some(urn) = resolved.extension {
        path.push(urn);
    }
    path.push(resolved.attribute.name);
    path
}

fn kind_of(attr: &Attribute) -> ValueKind {
    match attr.ty {
        AttrType::String => ValueKind::String,
        AttrType::Boolean => ValueKind::Boolean,
        AttrType::Decimal | AttrType::Integer => ValueKind::Number,
        AttrType::DateTime => ValueKind::DateTime,
        AttrType::Reference | AttrType::Binary | AttrType::Complex => ValueKind::Opaque,
    }
}

fn attr_ref(path: &[&str], attr: &Attribute) -> AttrRef {
    AttrRef::new(path, kind_of(attr), attr.case_exact)
}

/// Wrap a filter over one element's sub-attributes so it applies to the
/// attribute: `Any` for multi-valued, a path prefix for single-valued complex.
fn wrap_element(resolved: &Resolved, inner: Filter) -> Filter {
    let base = base_path(resolved);
    if resolved.attribute.multi_valued {
        Filter::Any(attr_ref(&base, resolved.attribute), Box::new(inner))
    } else {
        prefix(&base, inner)
    }
}

fn prefix(base: &[&str], filter: Filter) -> Filter {
    let add = |r: AttrRef| {
        let mut path: Vec<String> = base.iter().map(|s| (*s).to_owned()).collect();
        path.extend(r.path);
        AttrRef { path, ..r }
    };
    match filter {
        Filter::Present(r) => Filter::Present(add(r)),
        Filter::Compare(r, op, v) => Filter::Compare(add(r), op, v),
        Filter::And(v) => Filter::And(v.into_iter().map(|f| prefix(base, f)).collect()),
        Filter::Or(v) => Filter::Or(v.into_iter().map(|f| prefix(base, f)).collect()),
        Filter::Not(f) => Filter::Not(Box::new(prefix(base, *f))),
        other => other,
    }
}

fn attr_exp(rt: &'static ResourceType, exp: &AttrExp) -> Result<Filter, ScimError> {
    let path = match exp {
        AttrExp::Present(p) | AttrExp::Comparison(p, _, _) => p,
    };
    let resolved = resolve(rt, path)?;
    if resolved.attribute.name == "meta" {
        return meta(rt, &resolved, exp);
    }
    if is_membership(rt, &resolved) {
        return membership(&resolved, exp);
    }
    let attribute = resolved.attribute;
    // The attribute the comparison reads inside one element (multi-valued or
    // complex): the sub-attribute, or `value` for `emails eq "x"` (Ping, P2).
    let element_target: Option<&'static Attribute> = match resolved.sub_attribute {
        Some(sub) => Some(sub),
        None if attribute.is_complex() => match exp {
            AttrExp::Present(_) => None,
            AttrExp::Comparison(..) => Some(attribute.sub_attribute("value").ok_or_else(|| {
                ScimError::invalid_filter(format!(
                    "{resolved} is complex; compare one of its sub-attributes"
                ))
            })?),
        },
        None => None,
    };
    match element_target {
        Some(target) if attribute.multi_valued || attribute.is_complex() => {
            let inner = leaf(&[target.name], target, exp)?;
            Ok(wrap_element(&resolved, inner))
        }
        _ => leaf(&base_path(&resolved), attribute, exp),
    }
}

/// A Group's `members` and a User's `groups` are kept as membership rows,
/// not in the resource's JSON.
fn is_membership(rt: &ResourceType, resolved: &Resolved) -> bool {
    resolved.extension.is_none()
        && match rt.schema.id {
            schema::GROUP => resolved.attribute.name == "members",
            schema::USER => resolved.attribute.name == "groups",
            _ => false,
        }
}

/// The membership forms that are answered from the membership rows:
/// `members[value eq "u"]` and `members.value eq "u"` (RFC 7644 §3.4.2.2), and
/// `members eq "u"`, the complex attribute compared by its `value` as P2 does
/// for `emails`, which is how Entra is reported to check a membership
/// (`id eq "g" and members eq "u"`).
fn membership_forms(resolved: &Resolved) -> String {
    let name = resolved.attribute.name;
    format!(
        "{name} is filtered only by member id: {name}[value eq \"id\"] (ids joined by or), \
         {name}.value eq \"id\", {name} eq \"id\" or {name} pr"
    )
}

/// `members pr`, `members eq "id"`, `members.value eq "id"` (and `value pr`).
fn membership(resolved: &Resolved, exp: &AttrExp) -> Result<Filter, ScimError> {
    let on_value = resolved.sub_attribute.is_none_or(|sub| sub.name == "value");
    match exp {
        AttrExp::Present(_) if on_value => Ok(Filter::Membership(Related::Any)),
        AttrExp::Comparison(_, CompareOp::Eq, CompValue::Str(id)) if on_value => {
            Ok(Filter::Membership(Related::Ids(vec![id.clone()])))
        }
        _ => Err(ScimError::invalid_filter(membership_forms(resolved))),
    }
}

/// `members[value eq "a" or value eq "b"]`, `members[value pr]`.
fn membership_value_path(resolved: &Resolved, filter: &ValFilter) -> Result<Filter, ScimError> {
    let related = match filter {
        ValFilter::Attr(AttrExp::Present(path))
            if path.uri.is_none()
                && path.sub_attr.is_none()
                && path.name.eq_ignore_ascii_case("value") =>
        {
            Some(Related::Any)
        }
        other => super::element_filter::value_ids(other).map(Related::Ids),
    };
    related
        .map(Filter::Membership)
        .ok_or_else(|| ScimError::invalid_filter(membership_forms(resolved)))
}

/// A presence test or comparison on one simple attribute at `path`.
fn leaf(path: &[&str], attr: &Attribute, exp: &AttrExp) -> Result<Filter, ScimError> {
    let r = attr_ref(path, attr);
    match exp {
        AttrExp::Present(_) => Ok(Filter::Present(r)),
        AttrExp::Comparison(p, op, value) => {
            let op = operator(op);
            let value = comp_value(p, attr, op, value)?;
            Ok(Filter::Compare(r, op, value))
        }
    }
}

fn operator(op: &CompareOp) -> Op {
    match op {
        CompareOp::Eq => Op::Eq,
        CompareOp::Ne => Op::Ne,
        CompareOp::Co => Op::Co,
        CompareOp::Sw => Op::Sw,
        CompareOp::Ew => Op::Ew,
        CompareOp::Gt => Op::Gt,
        CompareOp::Ge => Op::Ge,
        CompareOp::Lt => Op::Lt,
        CompareOp::Le => Op::Le,
    }
}

/// Check the comparison value against the attribute's type (RFC 7644 §3.4.2.2:
/// gt/ge/lt/le on boolean or binary attributes "SHALL cause a failed response
/// (HTTP status code 400) with a "scimType" of "invalidFilter"").
fn comp_value(
    path: &AttrPath,
    attr: &Attribute,
    op: Op,
    value: &CompValue,
) -> Result<Value, ScimError> {
    let ordering = matches!(op, Op::Gt | Op::Ge | Op::Lt | Op::Le);
    let substring = matches!(op, Op::Co | Op::Sw | Op::Ew);
    if ordering && matches!(attr.ty, AttrType::Boolean | AttrType::Binary) {
        return Err(ScimError::invalid_filter(format!(
            "{path}: gt/ge/lt/le are not defined for {} attributes",
            attr.ty.as_str()
        )));
    }
    if matches!(value, CompValue::Null) {
        return if matches!(op, Op::Eq | Op::Ne) {
            Ok(Value::Null)
        } else {
            Err(ScimError::invalid_filter(format!(
                "{path}: null only compares with eq or ne"
            )))
        };
    }
    let mismatch = || {
        ScimError::invalid_filter(format!(
            "{path} is a {} attribute; the comparison value {value} does not fit",
            attr.ty.as_str()
        ))
    };
    match attr.ty {
        AttrType::Boolean => {
            if substring {
                return Err(mismatch());
            }
            match value {
                CompValue::True => Ok(Value::Bool(true)),
                CompValue::False => Ok(Value::Bool(false)),
                // Entra sends booleans as strings (E2); accept them in filters too.
                CompValue::Str(s) if s.eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
                CompValue::Str(s) if s.eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
                _ => Err(mismatch()),
            }
        }
        AttrType::Integer | AttrType::Decimal => match value {
            CompValue::Number(n) if !substring => {
                n.as_f64().map(Value::Number).ok_or_else(mismatch)
            }
            _ => Err(mismatch()),
        },
        AttrType::DateTime => match value {
            CompValue::Str(s) if !substring => chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| Value::DateTime(t.timestamp_millis()))
                .map_err(|_| {
                    ScimError::invalid_filter(format!(
                        "{path}: {} is not an RFC 3339 dateTime",
                        text::quoted(s)
                    ))
                }),
            _ => Err(mismatch()),
        },
        AttrType::String | AttrType::Reference | AttrType::Binary | AttrType::Complex => {
            match value {
                CompValue::Str(s) => Ok(Value::Str(s.clone())),
                _ => Err(mismatch()),
            }
        }
    }
}

/// The filter inside `attr[...]`, over the element's sub-attributes.
fn val_filter(attr: &'static Attribute, filter: &ValFilter) -> Result<Filter, ScimError> {
    Ok(match filter {
        ValFilter::Attr(exp) => {
            let path = match exp {
                AttrExp::Present(p) | AttrExp::Comparison(p, _, _) => p,
            };
            if path.sub_attr.is_some() || path.uri.is_some() {
                return Err(ScimError::invalid_filter(format!(
                    "{path}: inside {}[..] name one sub-attribute",
                    attr.name
                )));
            }
            let sub = attr.sub_attribute(&path.name).ok_or_else(|| {
                ScimError::invalid_filter(format!(
                    "{} has no sub-attribute {}",
                    attr.name, path.name
                ))
            })?;
            leaf(&[sub.name], sub, exp)?
        }
        ValFilter::Not(inner) => Filter::Not(Box::new(val_filter(attr, inner)?)),
        ValFilter::And(items) => Filter::And(
            items
                .iter()
                .map(|f| val_filter(attr, f))
                .collect::<Result<_, _>>()?,
        ),
        ValFilter::Or(items) => Filter::Or(
            items
                .iter()
                .map(|f| val_filter(attr, f))
                .collect::<Result<_, _>>()?,
        ),
    })
}

/// `meta.*`: created and lastModified have columns; resourceType is a constant
/// of the endpoint; location and version are derived and not filterable.
fn meta(
    rt: &'static ResourceType,
    resolved: &Resolved,
    exp: &AttrExp,
) -> Result<Filter, ScimError> {
    let Some(sub) = resolved.sub_attribute else {
        return match exp {
            AttrExp::Present(_) => Ok(Filter::True),
            AttrExp::Comparison(..) => Err(ScimError::invalid_filter(
                "meta is complex; compare one of its sub-attributes",
            )),
        };
    };
    match sub.name {
        "created" | "lastModified" => leaf(&["meta", sub.name], sub, exp),
        "resourceType" => match exp {
            AttrExp::Present(_) => Ok(Filter::True),
            AttrExp::Comparison(p, op, value) => {
                let op = operator(op);
                let Value::Str(v) = comp_value(p, sub, op, value)? else {
                    return Ok(Filter::False);
                };
                let equal = v == rt.name;
                Ok(match (op, equal) {
                    (Op::Eq, true) | (Op::Ne, false) => Filter::True,
                    (Op::Eq, false) | (Op::Ne, true) => Filter::False,
                    _ => {
                        return Err(ScimError::invalid_filter(
                            "meta.resourceType supports eq and ne",
                        ));
                    }
                })
            }
        },
        other => Err(ScimError::invalid_filter(format!(
            "meta.{other} is not filterable"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::schema::{GROUP_RESOURCE, USER_RESOURCE};

    fn user(raw: &str) -> Result<Filter, ScimError> {
        parse(&USER_RESOURCE, raw)
    }

    #[test]
    fn user_name_eq_resolves_case_insensitively() {
        let f = user(r#"UserName Eq "Bjensen""#).unwrap();
        assert_eq!(
            f,
            Filter::Compare(
                AttrRef::new(&["userName"], ValueKind::String, false),
                Op::Eq,
                Value::Str("Bjensen".into())
            )
        );
    }

    #[test]
    fn value_path_becomes_any_over_elements() {
        let f = user(r#"emails[type eq "work" and value co "@example.com"]"#).unwrap();
        let Filter::Any(attr, inner) = f else {
            panic!("expected Any, got {f:?}")
        };
        assert!(attr.is(&["emails"]));
        assert!(matches!(*inner, Filter::And(ref v) if v.len() == 2));
    }

    #[test]
    fn complex_multi_valued_without_sub_attribute_compares_value() {
        let f = user(r#"emails eq "a@b.c""#).unwrap();
        let Filter::Any(_, inner) = f else { panic!() };
        assert!(matches!(*inner, Filter::Compare(ref r, Op::Eq, _) if r.is(&["value"])));
    }

    #[test]
    fn extension_attributes_resolve_by_urn() {
        let f = user(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "x""#,
        )
        .unwrap();
        let Filter::Compare(r, _, _) = f else {
            panic!()
        };
        assert!(r.is(&[
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
            "manager",
            "value"
        ]));
    }

    #[test]
    fn meta_last_modified_takes_a_date() {
        let f = user(r#"meta.lastModified gt "2011-05-13T04:42:34Z""#).unwrap();
        assert!(matches!(
            f,
            Filter::Compare(_, Op::Gt, Value::DateTime(1305261754000))
        ));
        let err = user(r#"meta.lastModified gt "yesterday""#).unwrap_err();
        assert_eq!(
            err.scim_type,
            Some(super::super::error::ScimType::InvalidFilter)
        );
    }

    #[test]
    fn vendor_forms_are_accepted_after_the_strict_parse_fails() {
        assert!(user("userName sw O").is_ok());
        assert!(user(r#"emails[type eq "work"].value eq "a@b.c""#).is_ok());
        assert!(user("meta.Created gt 2015-10-10T14:38:21.8617979-07:00").is_ok());
    }

    #[rstest::rstest]
    #[case(r#"urn:scim:schemas:extension:enterprise:1.0:department eq "x""#)]
    #[case(r#"URN:IETF:params:scim:schemas:extension:enterprise:2.0:User:department eq "x""#)]
    #[case(r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:Department eq "x""#)]
    fn extension_urns_compare_case_insensitively_and_scim_1_1_urns_alias_2_0(#[case] raw: &str) {
        // X9 (RFC 8141 §3), L2 (OneLogin's SCIM 1.1 URNs).
        let Filter::Compare(r, Op::Eq, _) = user(raw).unwrap() else {
            panic!("{raw}")
        };
        assert!(r.is(&[
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
            "department"
        ]));
    }

    #[rstest::rstest]
    #[case(r#"emails eq "a@b.c""#)]
    #[case(r#"emails.value eq "a@b.c""#)]
    #[case("emails eq a@b.c")]
    fn ping_compares_the_complex_emails_attribute_by_its_value(#[case] raw: &str) {
        // P2: PingFederate's default matching filter `emails eq <workEmail_value>`.
        assert_eq!(
            user(raw).unwrap(),
            user(r#"emails[value eq "a@b.c"]"#).unwrap()
        );
    }

    #[test]
    fn entras_inbound_watermark_filter_parses() {
        // E28: parenthesised, odd casing, seven fractional digits.
        let f = user(r#"(ActiVe eq true) and meta.lastmodified ge "0001-01-03T00:00:00.0000000Z""#)
            .unwrap();
        assert!(matches!(f, Filter::And(ref v) if v.len() == 2), "{f:?}");
    }

    #[test]
    fn ordering_a_boolean_is_invalid_filter() {
        assert!(user("active gt true").is_err());
    }

    #[test]
    fn unknown_attributes_and_garbage_are_invalid_filter() {
        for raw in [
            "nope eq \"x\"",
            "userName eq",
            "((",
            "userName zz \"x\"",
            "password eq \"x\"",
        ] {
            let err = user(raw).unwrap_err();
            assert_eq!(err.status.as_u16(), 400, "{raw}");
        }
    }

    #[test]
    fn ten_thousand_terms_and_deep_nesting_are_rejected_not_crashed() {
        let big = vec![r#"userName eq "x""#; 10_000].join(" or ");
        assert!(user(&big).is_err());
        let deep = format!(
            "{}userName eq \"x\"{}",
            "not (".repeat(500),
            ")".repeat(500)
        );
        assert!(user(&deep).is_err());
    }

    #[rstest::rstest]
    #[case(r#"members[value eq "u1"]"#, Related::Ids(vec!["u1".into()]))]
    #[case(r#"members[value eq "u1" or Value eq "u2"]"#, Related::Ids(vec!["u1".into(), "u2".into()]))]
    #[case(r#"members.value eq "u1""#, Related::Ids(vec!["u1".into()]))]
    #[case(r#"Members EQ "u1""#, Related::Ids(vec!["u1".into()]))]
    #[case("members pr", Related::Any)]
    #[case("members.value pr", Related::Any)]
    #[case("members[value pr]", Related::Any)]
    fn membership_forms_on_groups_become_one_membership(
        #[case] raw: &str,
        #[case] related: Related,
    ) {
        assert_eq!(
            parse(&GROUP_RESOURCE, raw).unwrap(),
            Filter::Membership(related)
        );
    }

    #[test]
    fn a_users_groups_are_a_membership_too() {
        assert_eq!(
            user(r#"groups[value eq "g1"]"#).unwrap(),
            Filter::Membership(Related::Ids(vec!["g1".into()]))
        );
        assert_eq!(
            user(r#"groups.value eq "g1""#).unwrap(),
            user(r#"groups[value eq "g1"]"#).unwrap()
        );
    }

    #[rstest::rstest]
    #[case(r#"members[display co "x"]"#)]
    #[case(r#"members[value eq "a" and type eq "User"]"#)]
    #[case(r#"members[value ne "a"]"#)]
    #[case(r#"members.display eq "x""#)]
    #[case(r#"members co "a""#)]
    #[case("members eq null")]
    fn other_membership_forms_are_invalid_filter_naming_the_supported_ones(#[case] raw: &str) {
        let err = parse(&GROUP_RESOURCE, raw).unwrap_err();
        assert_eq!(
            err.scim_type,
            Some(super::super::error::ScimType::InvalidFilter)
        );
        assert!(
            err.detail.contains(r#"members[value eq "id"]"#),
            "{}",
            err.detail
        );
    }

    #[test]
    fn group_display_name_and_resource_type() {
        assert!(parse(&GROUP_RESOURCE, r#"displayName eq "Sales""#).is_ok());
        assert_eq!(
            parse(&GROUP_RESOURCE, r#"meta.resourceType eq "User""#).unwrap(),
            Filter::False
        );
    }
}
