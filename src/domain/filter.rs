//! A protocol-neutral filter over a resource's canonical JSON.
//!
//! `scim` translates the SCIM filter AST into this once (resolving names against
//! the schema, so every path here is in canonical case); `store` turns it into SQL.
//! Imports nothing from HTTP, SQL or SCIM wire crates.

/// Where a value lives in the canonical JSON, and how to compare it.
#[derive(Debug, Clone, PartialEq)]
pub struct AttrRef {
    /// Canonical JSON keys from the resource root (or, inside [`Filter::Any`], from
    /// the element): `["userName"]`, `["name", "givenName"]`,
    /// `["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "manager", "value"]`.
    pub path: Vec<String>,
    pub kind: ValueKind,
    /// RFC 7643 §2.2 caseExact: when false, strings compare case-insensitively.
    pub case_exact: bool,
}

impl AttrRef {
    pub fn new(path: &[&str], kind: ValueKind, case_exact: bool) -> Self {
        Self {
            path: path.iter().map(|s| (*s).to_owned()).collect(),
            kind,
            case_exact,
        }
    }

    /// The path joined with dots, for messages and column lookup.
    pub fn dotted(&self) -> String {
        self.path.join(".")
    }

    pub fn is(&self, path: &[&str]) -> bool {
        self.path.len() == path.len() && self.path.iter().zip(path).all(|(a, b)| a == b)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    String,
    Boolean,
    Number,
    DateTime,
    /// Compared as an exact string (references, binary).
    Opaque,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Bool(bool),
    Number(f64),
    /// Milliseconds since the Unix epoch, UTC.
    DateTime(i64),
    Null,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Matches every resource (no filter given).
    True,
    /// Matches nothing (e.g. `id eq "not-a-uuid"`).
    False,
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    Present(AttrRef),
    Compare(AttrRef, Op, Value),
    /// A multi-valued attribute at `attr` has at least one element matching the
    /// inner filter, whose paths are relative to the element (RFC 7644 §3.4.2.2:
    /// "the filter matches if any of the values of the specified attribute match").
    /// A multi-valued attribute of simple values has one path segment `""` inside.
    Any(AttrRef, Box<Filter>),
    /// Direct group membership, kept as rows rather than in the resource: a
    /// group with one of these members (RFC 7643 §4.2 `members`), or a user who
    /// is a member of one of these groups (§4.1.2 `groups`).
    Membership(Related),
}

/// Which related resources a [`Filter::Membership`] asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Related {
    /// At least one (`members pr`).
    Any,
    /// One of these ids (`members[value eq "a" or value eq "b"]`).
    Ids(Vec<String>),
}

impl Filter {
    /// Number of comparison/presence terms, for limits.
    pub fn terms(&self) -> usize {
        let mut n = 0;
        let mut stack = vec![self];
        while let Some(f) = stack.pop() {
            match f {
                Filter::True | Filter::False => {}
                Filter::And(v) | Filter::Or(v) => stack.extend(v.iter()),
                Filter::Not(inner) => stack.push(inner),
                Filter::Present(_) | Filter::Compare(..) => n += 1,
                Filter::Membership(Related::Any) => n += 1,
                Filter::Membership(Related::Ids(ids)) => n += ids.len(),
                Filter::Any(_, inner) => stack.push(inner),
            }
        }
        n
    }
}
