//! Vendor forms that are not RFC 7644 but are sent by real clients, rewritten
//! into the RFC form at the edge. Each rewrite runs only when the strict form
//! failed to parse, so a valid RFC request is never reinterpreted.

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
