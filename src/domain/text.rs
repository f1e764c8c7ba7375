//! Text from outside (a client's body, query or filter; a provider's
//! listing), checked once where it enters, and client text quoted back
//! within a bound.
//!
//! The rule for stored and queried text: no C0 control character other than
//! TAB, LF and CR. PostgreSQL refuses NUL in `text` (SQLite keeps it), so
//! without the rule one backend answers 500 where the other stores the
//! value; the other C0 controls carry no meaning in any SCIM attribute
//! (RFC 7643 §2.3.1 strings are Unicode text), while TAB, LF and CR may
//! stand in a multi-line value such as an address's `formatted`
//! (RFC 7643 §4.1.2).

use std::fmt;

/// Characters of client input an error detail or a log field repeats; the
/// rest is cut, so a megabyte of query string costs a line, not a megabyte
/// (issue 13, item 8).
pub const QUOTED_CHARS: usize = 96;

/// A control character found where none may stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("holds the control character U+{:04X} (at character {position})", *.found as u32)]
pub struct ControlCharacter {
    pub found: char,
    /// Its index in characters, counted from 0.
    pub position: usize,
}

/// Whether stored or queried text may not hold `c`.
pub fn is_forbidden_control(c: char) -> bool {
    c.is_ascii_control() && !matches!(c, '\t' | '\n' | '\r') && c != '\u{7f}'
}

/// `Err` naming the first forbidden control character of `s`.
pub fn check(s: &str) -> Result<(), ControlCharacter> {
    match s
        .chars()
        .enumerate()
        .find(|(_, c)| is_forbidden_control(*c))
    {
        Some((position, found)) => Err(ControlCharacter { found, position }),
        None => Ok(()),
    }
}

/// The first string of a JSON document (a member's name or a value, at any
/// depth) that holds a forbidden control character: where it is
/// (`members[0].display`) and what it holds.
pub fn find_control_in_json(value: &serde_json::Value) -> Option<(String, ControlCharacter)> {
    let mut path = Vec::new();
    let found = walk(value, &mut path)?;
    Some((path.concat(), found))
}

fn walk(value: &serde_json::Value, path: &mut Vec<String>) -> Option<ControlCharacter> {
    use serde_json::Value;
    match value {
        Value::String(s) => check(s).err(),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            path.push(format!("[{i}]"));
            let found = walk(item, path);
            if found.is_none() {
                path.pop();
            }
            found
        }),
        Value::Object(map) => map.iter().find_map(|(name, item)| {
            let dot = if path.is_empty() { "" } else { "." };
            if let Err(found) = check(name) {
                path.push(format!("{dot}the name {}", quoted(name)));
                return Some(found);
            }
            path.push(format!("{dot}{name}"));
            let found = walk(item, path);
            if found.is_none() {
                path.pop();
            }
            found
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => None,
    }
}

/// Where in a request target a forbidden control character was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InTarget {
    Path,
    /// The value of the query parameter of this name (as decoded).
    Parameter(String),
    /// A query parameter's name.
    ParameterName,
}

impl fmt::Display for InTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InTarget::Path => f.write_str("the path"),
            InTarget::Parameter(name) => write!(f, "the query parameter {}", quoted(name)),
            InTarget::ParameterName => f.write_str("a query parameter's name"),
        }
    }
}

/// The first forbidden control character of a request target once decoded
/// (`%00` is a NUL): the path's segments, then each query parameter's name
/// and value (`application/x-www-form-urlencoded`, `+` a space).
pub fn find_control_in_target(path: &str, query: &str) -> Option<(InTarget, ControlCharacter)> {
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    if let Err(found) = check(&decoded) {
        return Some((InTarget::Path, found));
    }
    url::form_urlencoded::parse(query.as_bytes()).find_map(|(name, value)| {
        if let Err(found) = check(&name) {
            return Some((InTarget::ParameterName, found));
        }
        check(&value)
            .err()
            .map(|found| (InTarget::Parameter(name.into_owned()), found))
    })
}

/// `s` without its forbidden control characters (a provider's value, which
/// dirsync cannot send back to be fixed).
pub fn strip_controls(s: &str) -> std::borrow::Cow<'_, str> {
    // Scanned as bytes: every forbidden character is ASCII, and every byte
    // of a longer UTF-8 sequence is 0x80 or above, which as a char is not
    // an ASCII control (this runs for every mapped value of every user).
    if s.bytes().any(|b| is_forbidden_control(char::from(b))) {
        s.chars()
            .filter(|c| !is_forbidden_control(*c))
            .collect::<String>()
            .into()
    } else {
        s.into()
    }
}

/// Client input as an error detail or a log field shows it: quoted and
/// escaped like `{:?}`, at most [`QUOTED_CHARS`] characters of it, then
/// `…` and the whole length when it was cut.
#[derive(Clone, Copy)]
pub struct Quoted<'a>(&'a str);

/// See [`Quoted`].
pub fn quoted(s: &str) -> Quoted<'_> {
    Quoted(s)
}

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.char_indices().nth(QUOTED_CHARS) {
            None => write!(f, "{:?}", self.0),
            Some((cut, _)) => write!(f, "{:?}… ({} bytes in all)", &self.0[..cut], self.0.len()),
        }
    }
}

impl fmt::Debug for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// At most `max` characters of `s` (an error detail that may carry client
/// input from a place that did not quote it), with `…` when cut.
pub fn bounded(s: String, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s,
        Some((cut, _)) => {
            let mut kept = s;
            kept.truncate(cut);
            kept.push('…');
            kept
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("plain", None)]
    #[case("tab\tline\ncr\r", None)]
    #[case("del\u{7f}", None)]
    #[case("a\u{0}b", Some(('\u{0}', 1)))]
    #[case("é\u{1b}[31m", Some(('\u{1b}', 1)))]
    #[case("\u{1f}", Some(('\u{1f}', 0)))]
    fn only_c0_controls_other_than_tab_lf_cr_are_refused(
        #[case] s: &str,
        #[case] found: Option<(char, usize)>,
    ) {
        assert_eq!(
            check(s).err().map(|e| (e.found, e.position)),
            found,
            "{s:?}"
        );
    }

    #[test]
    fn a_control_character_is_named_by_its_code_point() {
        let err = check("ab\u{0}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "holds the control character U+0000 (at character 2)"
        );
    }

    #[test]
    fn a_json_document_names_where_its_control_character_is() {
        let doc = serde_json::json!({
            "userName": "ok",
            "members": [{"value": "1"}, {"display": "a\u{0}"}],
        });
        let (path, found) = find_control_in_json(&doc).unwrap();
        assert_eq!(path, "members[1].display");
        assert_eq!(found.found, '\u{0}');
        let key = serde_json::json!({"a": {"b\u{7}": 1}});
        assert_eq!(
            find_control_in_json(&key).unwrap().0,
            "a.the name \"b\\u{7}\""
        );
        assert!(find_control_in_json(&serde_json::json!({"formatted": "a\nb\tc"})).is_none());
    }

    #[rstest]
    #[case("/Users/a%00b", "", Some(InTarget::Path))]
    #[case("/Users", "filter=userName%20eq%20%22%00%22", Some(InTarget::Parameter("filter".into())))]
    #[case("/Users", "count=1&a%01=2", Some(InTarget::ParameterName))]
    #[case("/Users", "filter=a%0Ab%09c+d", None)]
    #[case("/Users", "filter=%2500", None)]
    fn a_request_target_is_checked_as_decoded(
        #[case] path: &str,
        #[case] query: &str,
        #[case] at: Option<InTarget>,
    ) {
        assert_eq!(find_control_in_target(path, query).map(|(at, _)| at), at);
    }

    #[test]
    fn stripping_keeps_tab_lf_cr_and_drops_the_rest() {
        assert_eq!(strip_controls("a\u{0}b\tc\u{7}"), "ab\tc");
        assert!(matches!(
            strip_controls("clean"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn short_input_is_quoted_whole() {
        assert_eq!(quoted("a\"b").to_string(), r#""a\"b""#);
        let exact = "x".repeat(QUOTED_CHARS);
        assert_eq!(quoted(&exact).to_string(), format!("{exact:?}"));
    }

    #[test]
    fn long_input_is_quoted_to_a_prefix_with_its_length() {
        let long = "é".repeat(1_000_000);
        let shown = quoted(&long).to_string();
        assert!(shown.chars().count() < QUOTED_CHARS + 40, "{}", shown.len());
        assert!(shown.starts_with(&format!("\"{}\"…", "é".repeat(QUOTED_CHARS))));
        assert!(shown.ends_with("(2000000 bytes in all)"));
    }

    #[test]
    fn bounded_cuts_at_a_character_boundary() {
        assert_eq!(bounded("ééé".into(), 2), "éé…");
        assert_eq!(bounded("ab".into(), 2), "ab");
    }
}
