//! Names that identify resources within a directory and compare
//! case-insensitively: a user's userName (RFC 7643 §4.1.1, caseExact false)
//! and a group's displayName. Each carries its folded form, which the store
//! keeps in a column with a unique index.

use std::marker::PhantomData;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} must be a non-empty string")]
pub struct EmptyName(pub &'static str);

/// Which attribute a name is, for messages and to keep the kinds apart.
pub trait NameKind {
    const ATTRIBUTE: &'static str;
}

/// A user's login name (`userName`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserNameKind {}

impl NameKind for UserNameKind {
    const ATTRIBUTE: &'static str = "userName";
}

/// A group's name (`displayName`), unique per directory ignoring case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupNameKind {}

impl NameKind for GroupNameKind {
    const ATTRIBUTE: &'static str = "displayName";
}

/// A name as sent, with its case-folded form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name<K> {
    raw: String,
    folded: String,
    kind: PhantomData<K>,
}

pub type UserName = Name<UserNameKind>;
pub type GroupName = Name<GroupNameKind>;

impl<K: NameKind> Name<K> {
    pub fn parse(raw: &str) -> Result<Self, EmptyName> {
        if raw.trim().is_empty() {
            return Err(EmptyName(K::ATTRIBUTE));
        }
        Ok(Name {
            raw: raw.to_owned(),
            folded: fold(raw),
            kind: PhantomData,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    pub fn folded(&self) -> &str {
        &self.folded
    }
}

/// Case folding used for every case-insensitive identity value.
pub fn fold(s: &str) -> String {
    s.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_fold_and_reject_blank() {
        let n = UserName::parse("BJensen@Example.com").unwrap();
        assert_eq!(n.as_str(), "BJensen@Example.com");
        assert_eq!(n.folded(), "bjensen@example.com");
        assert_eq!(UserName::parse("  "), Err(EmptyName("userName")));
        assert_eq!(GroupName::parse(""), Err(EmptyName("displayName")));
    }
}
