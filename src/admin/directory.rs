//! How an operator names a directory (its id, or `TENANT/NAME`) and what kind
//! of directory it is. Every admin action that takes a directory resolves it
//! here, so the command line and the HTTP API accept the same references and
//! answer a directory of the wrong kind with the same words. No actix_web.

use std::fmt;

use super::AdminError;
use crate::pull::Provider;
use crate::store::tenants::{Directory, Tenant};
use crate::store::{Store, StoreError};

/// Where a directory's users come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SCIM clients write into it with the directory's tokens.
    Scim,
    /// dirsync reads it from the provider through its connection.
    Pull(Provider),
}

impl Kind {
    /// The stored `directories.kind`: `scim`, or the provider's name.
    pub fn parse(raw: &str) -> Option<Kind> {
        match raw {
            "scim" => Some(Kind::Scim),
            other => Provider::parse(other).map(Kind::Pull),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Scim => "scim",
            Kind::Pull(provider) => provider.as_str(),
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Scim => f.write_str("a SCIM directory"),
            Kind::Pull(provider) => {
                let name = provider.as_str();
                let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
                    "an"
                } else {
                    "a"
                };
                write!(f, "{article} {name} pull directory")
            }
        }
    }
}

/// A directory an operator named, with its tenant and kind; it displays as
/// `TENANT/NAME` whichever way it was named, so messages read alike.
#[derive(Debug, Clone)]
pub struct Named {
    pub directory: Directory,
    pub tenant: Tenant,
    pub kind: Kind,
}

impl fmt::Display for Named {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.tenant.name, self.directory.name)
    }
}

impl Named {
    /// This directory, if SCIM clients write into it.
    pub fn scim(self) -> Result<Named, AdminError> {
        match self.kind {
            Kind::Scim => Ok(self),
            // A pull directory's users come from its connection; a SCIM
            // client writing into it too would fight every run.
            Kind::Pull(_) => Err(AdminError::WrongKind(format!(
                "directory {self} is {}; SCIM tokens are for SCIM directories",
                self.kind
            ))),
        }
    }

    /// This directory and its provider, if dirsync pulls it.
    pub fn pull(self) -> Result<(Named, Provider), AdminError> {
        match self.kind {
            Kind::Pull(provider) => Ok((self, provider)),
            Kind::Scim => Err(AdminError::WrongKind(format!(
                "directory {self} is {}; connections and runs are for pull directories \
                 (google, entra, okta)",
                self.kind
            ))),
        }
    }
}

/// The directory `reference` names: its id, or `TENANT/NAME`.
pub async fn resolve(store: &Store, reference: &str) -> Result<Named, AdminError> {
    let reference = reference.trim();
    let (directory, tenant) = match store.directory(reference).await {
        Ok(directory) => {
            let tenant = store
                .tenant(&directory.tenant_id)
                .await
                .map_err(AdminError::Store)?;
            (directory, tenant)
        }
        Err(StoreError::NotFound) => by_name(store, reference).await?,
        Err(other) => return Err(AdminError::Store(other)),
    };
    let kind = Kind::parse(&directory.kind).ok_or_else(|| {
        AdminError::Invalid(format!(
            "directory {}/{} has an unknown kind {:?}",
            tenant.name, directory.name, directory.kind
        ))
    })?;
    Ok(Named {
        directory,
        tenant,
        kind,
    })
}

/// `TENANT/NAME`. Names may themselves hold a `/` (a name is any printable
/// text), so every split is tried, and a reference two splits match is
/// refused rather than guessed.
async fn by_name(store: &Store, reference: &str) -> Result<(Directory, Tenant), AdminError> {
    let mut found = None;
    let mut tenant_found = None;
    for (at, _) in reference.match_indices('/') {
        let (tenant, name) = (&reference[..at], &reference[at + 1..]);
        let tenant = match store.tenant_by_name(tenant).await {
            Ok(tenant) => tenant,
            Err(StoreError::NotFound) => continue,
            Err(other) => return Err(AdminError::Store(other)),
        };
        let directory = store
            .directories_of(&tenant.id)
            .await
            .map_err(AdminError::Store)?
            .into_iter()
            .find(|d| d.name == name);
        match directory {
            Some(_) if found.is_some() => {
                return Err(AdminError::Invalid(format!(
                    "{reference:?} names more than one directory: give the directory's id"
                )));
            }
            Some(directory) => found = Some((directory, tenant)),
            None => tenant_found = Some((tenant.name, name)),
        }
    }
    found.ok_or_else(|| match tenant_found {
        Some((tenant, name)) => {
            AdminError::NotFound(format!("directory {name:?} in tenant {tenant:?}"))
        }
        None => AdminError::NotFound(format!("directory {reference:?}")),
    })
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case("scim", Kind::Scim, "a SCIM directory")]
    #[case("google", Kind::Pull(Provider::Google), "a google pull directory")]
    #[case("entra", Kind::Pull(Provider::Entra), "an entra pull directory")]
    #[case("okta", Kind::Pull(Provider::Okta), "an okta pull directory")]
    fn a_stored_kind_parses_back_to_itself_and_reads_as_words(
        #[case] stored: &str,
        #[case] kind: Kind,
        #[case] words: &str,
    ) {
        assert_eq!(Kind::parse(stored), Some(kind));
        assert_eq!(kind.as_str(), stored);
        assert_eq!(kind.to_string(), words);
    }

    #[test]
    fn an_unknown_stored_kind_does_not_parse() {
        assert_eq!(Kind::parse("ldap"), None);
    }
}
