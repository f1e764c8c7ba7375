//! Operator actions behind the CLI: tenants, directories and their policies,
//! SCIM tokens, and (until the JSON API) the host application's reads and actions.
//! Kept in the library so tests drive exactly what the CLI runs.

pub mod api;
pub mod connections;

use serde::Serialize;
use validator::Validate;

use crate::crypto;
use crate::domain::time::rfc3339;
use crate::reconcile::host::{Action, HostError, UserKey};
use crate::reconcile::policy::{GroupRole, NewUserStatus, OnDelete, OnMissing, Policy};
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
    /// A run of the connection holds its lease (the API answers 409).
    #[error("{0}")]
    Busy(String),
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

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Tenant)]
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
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ScimToken)]
pub struct TokenView {
    pub id: String,
    pub directory_id: String,
    pub label: Option<String>,
    pub prefix: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// A token just created: the only time the secret is shown.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = NewScimToken)]
pub struct NewTokenView {
    pub id: String,
    pub directory_id: String,
    pub token: String,
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
    let directory = store
        .directory(directory_id)
        .await
        .map_err(AdminError::Store)?;
    if directory.kind != "scim" {
        // A pull directory's users come from its connection; a SCIM client
        // writing into it too would fight every run.
        return Err(AdminError::Invalid(format!(
            "directory {:?} pulls from {}: it takes no SCIM tokens",
            directory.name, directory.kind
        )));
    }
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

async fn tenant_id(store: &Store, tenant: &str) -> Result<String, AdminError> {
    store
        .tenant_by_name(tenant)
        .await
        .map(|t| t.id)
        .map_err(|e| match e {
            StoreError::NotFound => AdminError::NotFound(format!("tenant {tenant:?}")),
            other => AdminError::Store(other),
        })
}

/// Changes to a directory's policy; `None` leaves a value as it is.
#[derive(Debug, Default, Clone)]
pub struct PolicyChange {
    pub default_role: Option<String>,
    pub new_user_status: Option<NewUserStatus>,
    pub on_delete: Option<OnDelete>,
    pub on_missing: Option<OnMissing>,
    /// `Some(None)` removes the limit.
    pub max_deactivations: Option<Option<u64>>,
    pub max_deactivation_percent: Option<Option<f64>>,
    pub allowed_domains: Option<Vec<String>>,
    pub group_roles_enabled: Option<bool>,
    /// Replaces the whole mapping (`GROUP=ROLE` pairs).
    pub group_roles: Option<Vec<GroupRole>>,
    pub require_group_membership: Option<bool>,
}

fn valid_role(role: &str) -> Result<String, AdminError> {
    Ok(valid_name("a role", role)?.to_owned())
}

/// A `GROUP=ROLE` pair from the command line.
pub fn parse_group_role(raw: &str) -> Result<GroupRole, AdminError> {
    let (group, role) = raw
        .rsplit_once('=')
        .ok_or_else(|| AdminError::Invalid(format!("{raw:?} is not GROUP=ROLE")))?;
    Ok(GroupRole {
        group: valid_name("a group", group)?.to_owned(),
        role: valid_role(role)?,
    })
}

/// Read a directory's policy.
pub async fn policy(store: &Store, directory_id: &str) -> Result<Policy, AdminError> {
    let directory = store.directory(directory_id).await.map_err(|e| match e {
        StoreError::NotFound => AdminError::NotFound(format!("directory {directory_id:?}")),
        other => AdminError::Store(other),
    })?;
    serde_json::from_value(directory.policy)
        .map_err(|e| AdminError::Invalid(format!("the stored policy does not parse: {e}")))
}

/// Change a directory's policy; returns the policy now in force (it applies
/// from the directory's next write or run).
pub async fn update_policy(
    store: &Store,
    directory_id: &str,
    change: PolicyChange,
) -> Result<Policy, AdminError> {
    let mut p = policy(store, directory_id).await?;
    if let Some(role) = change.default_role {
        p.default_role = valid_role(&role)?;
    }
    if let Some(v) = change.new_user_status {
        p.new_user_status = v;
    }
    if let Some(v) = change.on_delete {
        p.on_delete = v;
    }
    if let Some(v) = change.on_missing {
        p.on_missing = v;
    }
    if let Some(v) = change.max_deactivations {
        p.deactivation_threshold.max_count = v;
    }
    if let Some(v) = change.max_deactivation_percent {
        if v.is_some_and(|pct| !(0.0..=100.0).contains(&pct)) {
            return Err(AdminError::Invalid(
                "the deactivation percentage must be between 0 and 100".into(),
            ));
        }
        p.deactivation_threshold.max_percent = v;
    }
    if let Some(domains) = change.allowed_domains {
        let mut clean = Vec::new();
        for d in domains {
            let d = d.trim().trim_start_matches('@').to_ascii_lowercase();
            if d.is_empty() {
                continue;
            }
            if !d.contains('.') || d.chars().any(|c| c.is_whitespace() || c == '@') {
                return Err(AdminError::Invalid(format!("{d:?} is not an email domain")));
            }
            clean.push(d);
        }
        p.allowed_domains = clean;
    }
    if let Some(v) = change.group_roles_enabled {
        p.group_roles_enabled = v;
    }
    if let Some(v) = change.group_roles {
        p.group_roles = v;
    }
    if let Some(v) = change.require_group_membership {
        p.require_group_membership = v;
    }
    if p.require_group_membership && p.group_roles.is_empty() {
        return Err(AdminError::Invalid(
            "requiring group membership needs at least one mapped group (--group-role GROUP=ROLE)"
                .into(),
        ));
    }
    let value = serde_json::to_value(&p).map_err(|e| AdminError::Invalid(e.to_string()))?;
    crate::store::tenants::set_policy(store.connection(), directory_id, value)
        .await
        .map_err(AdminError::Store)?;
    Ok(p)
}

/// A tenant's app users, as the host application sees them.
pub async fn users(store: &Store, tenant: &str) -> Result<Vec<serde_json::Value>, AdminError> {
    let tenant_id = tenant_id(store, tenant).await?;
    let rows = crate::store::identity::users_of_tenant(store.connection(), &tenant_id)
        .await
        .map_err(AdminError::Store)?;
    Ok(rows
        .iter()
        .map(crate::reconcile::apply::user_view)
        .collect())
}

/// A tenant's app groups with their members' ids.
pub async fn groups(store: &Store, tenant: &str) -> Result<Vec<serde_json::Value>, AdminError> {
    let tenant_id = tenant_id(store, tenant).await?;
    let conn = store.connection();
    let rows = crate::store::identity::groups_of_tenant(conn, &tenant_id)
        .await
        .map_err(AdminError::Store)?;
    let mut out = Vec::with_capacity(rows.len());
    for g in rows {
        let members = crate::store::identity::member_ids(conn, &g.id)
            .await
            .map_err(AdminError::Store)?;
        out.push(serde_json::json!({
            "id": g.id,
            "name": g.name,
            "external_id": g.external_id,
            "directory_id": g.directory_id,
            "members": members,
        }));
    }
    Ok(out)
}

/// The host application's action on a user (sign-in, admin deactivate or
/// reactivate, role); returns the user after it.
pub async fn user_action(
    store: &Store,
    tenant: &str,
    email: &str,
    action: Action,
) -> Result<serde_json::Value, AdminError> {
    if let Action::SetRole(role) = &action {
        valid_role(role)?;
    }
    let tenant_id = tenant_id(store, tenant).await?;
    act_on_user(store, &tenant_id, &UserKey::Email(email.to_owned()), action).await
}

/// The host application's action on one of a tenant's users, named by id
/// or email (the CLI and the API both come here).
pub async fn act_on_user(
    store: &Store,
    tenant_id: &str,
    user: &UserKey,
    action: Action,
) -> Result<serde_json::Value, AdminError> {
    if let Action::SetRole(role) = &action {
        valid_role(role)?;
    }
    crate::reconcile::host::act(store, tenant_id, user, action, now())
        .await
        .map_err(|e| match e {
            HostError::NotFound => AdminError::NotFound(match user {
                UserKey::Id(id) => format!("user {id:?}"),
                UserKey::Email(email) => format!("user {email:?}"),
            }),
            HostError::Store(err) => AdminError::Store(err),
        })
}

/// One event as read from the outbox.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Event)]
pub struct EventView {
    /// Gap-free per tenant, in commit order.
    pub seq: i64,
    /// `user.created`, `user.updated`, `user.deactivated`, …
    pub r#type: String,
    pub resource_type: String,
    pub resource_id: String,
    /// What happened: the resource after it, and for updates the fields
    /// that changed.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    pub created_at: String,
}

impl From<crate::store::events::Event> for EventView {
    fn from(e: crate::store::events::Event) -> EventView {
        EventView {
            seq: e.seq,
            r#type: e.r#type,
            resource_type: e.resource_type,
            resource_id: e.resource_id,
            data: e.data,
            created_at: rfc3339(e.created_at),
        }
    }
}

/// A tenant's events after `after`, in order, at most `limit`.
pub async fn events(
    store: &Store,
    tenant: &str,
    after: i64,
    limit: u64,
) -> Result<Vec<EventView>, AdminError> {
    let tenant_id = tenant_id(store, tenant).await?;
    let rows = crate::store::events::after(
        store.connection(),
        &tenant_id,
        after,
        limit.clamp(1, 10_000),
    )
    .await
    .map_err(AdminError::Store)?;
    Ok(rows.into_iter().map(EventView::from).collect())
}
