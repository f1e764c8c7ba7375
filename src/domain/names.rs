//! Names that identify resources within a directory and compare
//! case-insensitively: a user's userName (RFC 7643 §4.1.1, caseExact false)
//! and a group's displayName. Each carries its folded form, which the store
//! keeps in a column with a unique index.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} must be a non-empty string")]
pub struct EmptyName(pub &'static str);

/// A user's login name, as sent, with its case-folded form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserName {
    raw: String,
    folded: String,
}

impl UserName {
    pub fn parse(raw: &str) -> Result<Self, EmptyName> {
        if raw.trim().is_empty() {
            return Err(EmptyName("userName"));
        }
        Ok(UserName {
            raw: raw.to_owned(),
            folded: fold(raw),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    pub fn folded(&self) -> &str {
        &self.folded
    }
}

/// A group's display name, unique per directory ignoring case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupName {
    raw: String,
    folded: String,
}

impl GroupName {
    pub fn parse(raw: &str) -> Result<Self, EmptyName> {
        if raw.trim().is_empty() {
            return Err(EmptyName("displayName"));
        }
        Ok(GroupName {
            raw: raw.to_owned(),
            folded: fold(raw),
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
        assert!(UserName::parse("  ").is_err());
        assert!(GroupName::parse("").is_err());
    }
}
