//! Vendor forms that are not RFC 7644 but are sent by real clients, rewritten
//! into the RFC form at the edge, so `filter` and `patch` parse only RFC forms:
//! filters (M6, E20, P2, E8), OneLogin's SCIM 1.1 PATCH bodies (L9), and URN
//! spellings in PATCH paths (E28, L2). A filter or PATCH body is rewritten only
//! when its strict form failed to parse (or is absent), so a valid RFC request
//! is never reinterpreted. Pure: serde_json in, serde_json out.

use serde_json::{Map, Value};

use super::custom;
use super::resource;
use super::schema::{self, ResourceType};

const OPERATORS: &[&str] = &["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"];

/// Rewrite a filter the RFC grammar refused into one it accepts, if the
/// failure is one of the known vendor forms:
/// - unquoted comparison values: `userName sw O`, `meta.Created gt
///   2015-10-10T14:38:21.8617979-07:00`, `externalId eq jyoung` (Microsoft's
///   reference tests, M6; Entra's tutorial, E20; Ping, P2);
/// - a sub-attribute after a value filter: `emails[type eq "work"].value eq
///   "x"` (Entra, E8) becomes `emails[type eq "work" and value eq "x"]`.
///
/// Returns None when nothing was rewritten.
pub fn lenient_filter(raw: &str) -> Option<String> {
    let quoted = quote_bare_values(raw);
    let merged = merge_value_path_sub_attribute(quoted.as_deref().unwrap_or(raw));
    merged.or(quoted)
}

/// Split into tokens, keeping quoted strings whole and brackets separate.
fn tokens(raw: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
                let mut s = String::from('"');
                let mut escaped = false;
                for c in chars.by_ref() {
                    s.push(c);
                    if escaped {
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        break;
                    }
                }
                out.push(s);
            }
            '(' | ')' | '[' | ']' => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
                out.push(c.to_string());
            }
            c if c.is_whitespace() => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn is_operator(token: &str) -> bool {
    OPERATORS.iter().any(|op| op.eq_ignore_ascii_case(token))
}

fn is_literal(token: &str) -> bool {
    token.starts_with('"')
        || ["true", "false", "null"]
            .iter()
            .any(|l| l.eq_ignore_ascii_case(token))
        || serde_json::from_str::<serde_json::Number>(token).is_ok()
}

/// Join tokens back with single spaces (brackets hug their neighbours).
fn join(tokens: &[String]) -> String {
    let mut out = String::new();
    for (i, t) in tokens.iter().enumerate() {
        let prev = i.checked_sub(1).map(|j| tokens[j].as_str());
        let glue = match (prev, t.as_str()) {
            (None, _) => "",
            (Some("(" | "["), _) | (_, ")" | "]") => "",
            (Some(_), "[") => "",
            (Some("]"), s) if s.starts_with('.') => "",
            _ => " ",
        };
        out.push_str(glue);
        out.push_str(t);
    }
    out
}

fn quote_bare_values(raw: &str) -> Option<String> {
    let mut toks = tokens(raw);
    let mut changed = false;
    for i in 1..toks.len() {
        if is_operator(&toks[i - 1])
            && i >= 2
            && !matches!(toks[i - 2].as_str(), "(" | "[" | "and" | "or" | "not")
            && !matches!(toks[i].as_str(), "(" | ")" | "[" | "]")
            && !is_literal(&toks[i])
        {
            toks[i] = serde_json::Value::String(toks[i].clone()).to_string();
            changed = true;
        }
    }
    changed.then(|| join(&toks))
}

/// `attr[f].sub op value` → `attr[f and sub op value]`; `attr[f].sub pr` too.
fn merge_value_path_sub_attribute(raw: &str) -> Option<String> {
    let toks = tokens(raw);
    let mut out: Vec<String> = Vec::with_capacity(toks.len());
    let mut changed = false;
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        if let Some(sub) = t
            .strip_prefix('.')
            .filter(|_| out.last().is_some_and(|l| l == "]"))
        {
            let op = toks.get(i + 1);
            let is_pr = op.is_some_and(|o| o.eq_ignore_ascii_case("pr"));
            let is_cmp = op.is_some_and(|o| is_operator(o)) && toks.get(i + 2).is_some();
            if is_pr || is_cmp {
                out.pop(); // the "]"
                let mut term = vec!["and".to_owned(), sub.to_owned()];
                term.push(toks[i + 1].clone());
                if is_cmp {
                    term.push(toks[i + 2].clone());
                }
                out.extend(term);
                out.push("]".to_owned());
                i += if is_cmp { 3 } else { 2 };
                changed = true;
                continue;
            }
        }
        out.push(t.clone());
        i += 1;
    }
    changed.then(|| join(&out))
}

/// L9: OneLogin's SCIM 1.1 connector PATCHes with the resource itself, no
/// `Operations` (SCIM 1.1 §3.3.2): `{"members":[{"value":"<id>","operation":"delete"}]}`.
/// Rewritten into RFC 7644 operations: names in `meta.attributes` are removed;
/// elements of a multi-valued attribute are added, or removed when marked
/// `"operation":"delete"`; every other attribute is set as by a path-less add.
/// A body naming no attribute of the resource (or claiming to be a PatchOp)
/// gives no operations, and so stays a 400.
pub fn scim11_operations(rt: &'static ResourceType, object: &Map<String, Value>) -> Vec<Value> {
    let claims_patch_op = object
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("schemas"))
        .flat_map(|(_, v)| v.as_array().into_iter().flatten())
        .any(|urn| {
            urn.as_str()
                .is_some_and(|u| u.eq_ignore_ascii_case(schema::PATCH_OP))
        });
    if claims_patch_op {
        return Vec::new();
    }
    let mut ops = Vec::new();
    let mut rest = Map::new();
    for (key, value) in object {
        if key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        if key.eq_ignore_ascii_case("meta") {
            let removed = value
                .as_object()
                .and_then(|m| m.iter().find(|(k, _)| k.eq_ignore_ascii_case("attributes")))
                .and_then(|(_, names)| names.as_array());
            for name in removed.into_iter().flatten().filter_map(Value::as_str) {
                ops.push(serde_json::json!({"op": "remove", "path": name}));
            }
            continue;
        }
        if rt.extension(key).is_some() || custom::is_custom(rt, key) {
            rest.insert(key.clone(), value.clone());
            continue;
        }
        let Some(resolved) = resource::resolve_path(rt, key) else {
            continue;
        };
        if !resolved.attribute.multi_valued || resolved.sub_attribute.is_some() {
            rest.insert(key.clone(), value.clone());
            continue;
        }
        let elements: Vec<&Value> = match value {
            Value::Array(items) => items.iter().collect(),
            Value::Null => Vec::new(),
            other => vec![other],
        };
        let is_delete = |e: &&Value| {
            e.as_object().is_some_and(|o| {
                o.iter().any(|(k, v)| {
                    k.eq_ignore_ascii_case("operation")
                        && v.as_str()
                            .is_some_and(|op| op.eq_ignore_ascii_case("delete"))
                })
            })
        };
        let (deleted, added): (Vec<&Value>, Vec<&Value>) =
            elements.into_iter().partition(is_delete);
        if !deleted.is_empty() {
            ops.push(serde_json::json!({"op": "remove", "path": key, "value": deleted}));
        }
        if !added.is_empty() {
            ops.push(serde_json::json!({"op": "add", "path": key, "value": added}));
        }
    }
    // An echoed `id` alone changes nothing and names no attribute to change.
    if rest.keys().any(|k| !k.eq_ignore_ascii_case("id")) {
        ops.push(serde_json::json!({"op": "add", "value": rest}));
    }
    ops
}

/// E28: Entra writes `urn:…:User.manager`; the path grammar wants `urn:…:User:manager`.
/// L2: a SCIM 1.1 URN is written as the 2.0 URN it stands for.
pub fn urn_dot_to_colon(rt: &ResourceType, raw: &str) -> String {
    match rt.split_urn(raw) {
        Some((urn, rest)) => format!("{urn}:{rest}"),
        None => raw.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::schema::{GROUP_RESOURCE, PATCH_OP, USER_RESOURCE};
    use super::*;
    use rstest::rstest;
    use serde_json::json;

    #[test]
    fn unquoted_values_are_quoted() {
        assert_eq!(
            lenient_filter("userName sw O").as_deref(),
            Some("userName sw \"O\"")
        );
        assert_eq!(
            lenient_filter("meta.Created gt 2015-10-10T14:38:21.8617979-07:00").as_deref(),
            Some("meta.Created gt \"2015-10-10T14:38:21.8617979-07:00\"")
        );
        assert_eq!(
            lenient_filter(
                "name.FamilyName eq Employee and (emails.Value co example.com or emails.Value co example.org)"
            )
            .as_deref(),
            Some(
                "name.FamilyName eq \"Employee\" and (emails.Value co \"example.com\" or emails.Value co \"example.org\")"
            )
        );
    }

    #[test]
    fn literals_and_quoted_values_stay_as_they_are() {
        assert_eq!(lenient_filter("active eq true and x eq 5"), None);
        assert_eq!(lenient_filter("userName eq \"a b\""), None);
    }

    #[test]
    fn value_path_sub_attribute_moves_inside_the_brackets() {
        assert_eq!(
            lenient_filter("emails[type eq \"work\"].value eq \"user@contoso.com\"").as_deref(),
            Some("emails[type eq \"work\" and value eq \"user@contoso.com\"]")
        );
    }

    fn scim11(rt: &'static ResourceType, body: Value) -> Value {
        Value::Array(scim11_operations(
            rt,
            body.as_object().unwrap_or(&Map::new()),
        ))
    }

    #[rstest]
    #[case(json!({"members": [{"value": "u1", "operation": "delete"}]}),
           json!([{"op": "remove", "path": "members", "value": [{"value": "u1", "operation": "delete"}]}]))]
    #[case(json!({"members": [{"value": "u1", "operation": "Delete"}, {"value": "u2", "operation": "add"}, {"value": "u3"}]}),
           json!([{"op": "remove", "path": "members", "value": [{"value": "u1", "operation": "Delete"}]},
                  {"op": "add", "path": "members", "value": [{"value": "u2", "operation": "add"}, {"value": "u3"}]}]))]
    #[case(json!({"schemas": ["urn:scim:schemas:core:1.0"], "members": [{"value": "u2"}]}),
           json!([{"op": "add", "path": "members", "value": [{"value": "u2"}]}]))]
    #[case(json!({"displayName": "Sales", "meta": {"attributes": ["members"]}}),
           json!([{"op": "remove", "path": "members"}, {"op": "add", "value": {"displayName": "Sales"}}]))]
    fn onelogins_scim_1_1_group_patch_becomes_rfc_operations(
        #[case] body: Value,
        #[case] expected: Value,
    ) {
        // L9: OneLogin's Core v1.1 connector (onelogin-scim-node handlers/groups/update.js).
        assert_eq!(scim11(&GROUP_RESOURCE, body), expected);
    }

    #[test]
    fn a_scim_1_1_patch_sets_single_valued_attributes() {
        // L9: attributes other than multi-valued ones are set as by a path-less add.
        let body = json!({"title": "New", "emails": [{"value": "1@x", "operation": "delete"}, {"value": "2@x"}]});
        assert_eq!(
            scim11(&USER_RESOURCE, body),
            json!([
                {"op": "remove", "path": "emails", "value": [{"value": "1@x", "operation": "delete"}]},
                {"op": "add", "path": "emails", "value": [{"value": "2@x"}]},
                {"op": "add", "value": {"title": "New"}}
            ])
        );
    }

    #[rstest]
    #[case(json!({"not": "a scim resource"}))]
    #[case(json!({"schemas": [PATCH_OP], "members": [{"value": "u1"}]}))]
    #[case(json!({"id": "2819c223-7f76-453a-919d-413861904646"}))]
    #[case(json!({}))]
    fn a_body_that_is_no_scim_1_1_patch_gives_no_operations(#[case] body: Value) {
        // `patch::parse` answers no operations with 400 invalidSyntax.
        assert_eq!(scim11(&GROUP_RESOURCE, body), json!([]));
    }
}
