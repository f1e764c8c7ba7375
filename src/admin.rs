//! Operator actions behind the CLI: tenants, directories, SCIM tokens.
//! Kept in the library so tests drive exactly what the CLI runs.

use serde::Serialize;
use validator::Validate;

use crate::crypto;
use crate::store::tenants::Directory;
use crate::store::{Store, StoreError};

/// Vendors a directory may name; `vendor` selects edge tolerances only where
/// two vendors genuinely conflict.
pub const VENDORS: &[&str] = &[
    "entra",
    "okta",
    "onelogin",
    "jumpcloud",
    "pingone",
    "google",
    "generic",
];

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    Exists(String),
    #[error(transparent)]
    Store(StoreError),
}

/// A name an operator types: 1–200 characters, no control characters.
#[derive(Debug, Validate)]
struct Name<'a> {
    #[validate(length(min = 1, max = 200), custom(function = "printable"))]
    value: &'a str,
}

fn printable(value: &str) -> Result<(), validator::ValidationError> {
    if value.chars().any(char::is_control) {
        return Err(validator::ValidationError::new("control_characters"));
    }
    Ok(())
}

fn valid_name<'a>(what: &str, raw: &'a str) -> Result<&'a str, AdminError> {
    let value = raw.trim();
    Name { value }.validate().map_err(|_| {
        AdminError::Invalid(format!("{what} must be 1 to 200 printable characters"))
    })?;
    Ok(value)
}

fn now() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[derive(Debug, Serialize)]
pub struct TenantView {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Serialize)]
pub struct DirectoryView {
    pub id: String,
    pub tenant_id: String,
    pub tenant: String,
    pub name: String,
    pub vendor: String,
    pub kind: String,
}

/// A token as listed: never the secret.
#[derive(Debug, Serialize)]
pub struct TokenView {
    pub id: String,
    pub directory_id: String,
    pub label: Option<String>,
    pub prefix: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// A token just created: the only time the secret is shown.
#[derive(Debug, Serialize)]
pub struct NewTokenView {
    pub id: String,
    pub directory_id: String,
    pub token: String,
}

fn rfc3339(ms: i64) -> String {
    crate::scim::render::timestamp(ms)
}

pub async fn create_tenant(store: &Store, name: &str) -> Result<TenantView, AdminError> {
    let name = valid_name("a tenant name", name)?;
    let tenant = store
        .create_tenant(&new_id(), name, now())
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => AdminError::Exists(format!("tenant {name:?}")),
            other => AdminError::Store(other),
        })?;
    Ok(TenantView {
        id: tenant.id,
        name: tenant.name,
    })
}

pub async fn create_directory(
    store: &Store,
    tenant: &str,
    name: &str,
    vendor: &str,
) -> Result<DirectoryView, AdminError> {
    let vendor = vendor.to_ascii_lowercase();
    if !VENDORS.contains(&vendor.as_str()) {
        return Err(AdminError::Invalid(format!(
            "vendor must be one of {}",
            VENDORS.join(", ")
        )));
    }
    let name = valid_name("a directory name", name)?;
    let tenant = store.tenant_by_name(tenant).await.map_err(|e| match e {
        StoreError::NotFound => AdminError::NotFound(format!("tenant {tenant:?}")),
        other => AdminError::Store(other),
    })?;
    let directory = store
        .create_directory(Directory {
            id: new_id(),
            tenant_id: tenant.id.clone(),
            name: name.to_owned(),
            kind: "scim".to_owned(),
            vendor: vendor.clone(),
            policy: serde_json::json!({}),
            created_at: now(),
        })
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => {
                AdminError::Exists(format!("directory {name:?} in tenant {:?}", tenant.name))
            }
            other => AdminError::Store(other),
        })?;
    Ok(DirectoryView {
        id: directory.id,
        tenant_id: tenant.id,
        tenant: tenant.name,
        name: directory.name,
        vendor: directory.vendor,
        kind: directory.kind,
    })
}

async fn directory_exists(store: &Store, directory_id: &str) -> Result<(), AdminError> {
    store
        .directory(directory_id)
        .await
        .map(|_| ())
        .map_err(|e| match e {
            StoreError::NotFound => AdminError::NotFound(format!("directory {directory_id:?}")),
            other => AdminError::Store(other),
        })
}

pub async fn create_token(
    store: &Store,
    directory_id: &str,
    label: Option<&str>,
) -> Result<NewTokenView, AdminError> {
    directory_exists(store, directory_id).await?;
    let token = crypto::generate_token();
    let saved = store
        .create_token(
            &new_id(),
            directory_id,
            label,
            &token.prefix,
            &token.hash,
            now(),
        )
        .await
        .map_err(AdminError::Store)?;
    Ok(NewTokenView {
        id: saved.id,
        directory_id: saved.directory_id,
        token: token.secret.expose().to_owned(),
    })
}

pub async fn list_tokens(store: &Store, directory_id: &str) -> Result<Vec<TokenView>, AdminError> {
    directory_exists(store, directory_id).await?;
    let tokens = store
        .tokens_of(directory_id)
        .await
        .map_err(AdminError::Store)?;
    Ok(tokens
        .into_iter()
        .map(|t| TokenView {
            id: t.id,
            directory_id: t.directory_id,
            label: t.label,
            prefix: t.prefix,
            created_at: rfc3339(t.created_at),
            revoked_at: t.revoked_at.map(rfc3339),
        })
        .collect())
}

pub async fn revoke_token(
    store: &Store,
    directory_id: &str,
    token_id: &str,
) -> Result<TokenView, AdminError> {
    let t = store
        .revoke_token(directory_id, token_id, now())
        .await
        .map_err(|e| match e {
            StoreError::NotFound => {
                AdminError::NotFound(format!("token {token_id:?} of directory {directory_id:?}"))
            }
            other => AdminError::Store(other),
        })?;
    Ok(TokenView {
        id: t.id,
        directory_id: t.directory_id,
        label: t.label,
        prefix: t.prefix,
        created_at: rfc3339(t.created_at),
        revoked_at: t.revoked_at.map(rfc3339),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(valid_name("x", "  acme ").unwrap(), "acme");
        assert!(valid_name("x", "   ").is_err());
        assert!(valid_name("x", &"a".repeat(201)).is_err());
        assert!(valid_name("x", "bad\u{7}name").is_err());
    }
}
