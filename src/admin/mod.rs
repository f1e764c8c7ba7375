//! Operator actions behind the CLI: tenants, directories and their policies,
//! SCIM tokens, and (until the JSON API) the host application's reads and actions.
//! Kept in the library so tests drive exactly what the CLI runs. Every action
//! on a directory takes a reference (id or `TENANT/NAME`) and resolves it
//! through `directory::resolve`. No actix_web.

pub mod api;
pub mod connections;
pub mod directory;
pub mod operators;
pub mod requests;
pub mod setup;
pub mod webhooks;

use serde::Serialize;
use validator::Validate;

use crate::crypto;
use crate::domain::time::rfc3339;
use crate::pull::source::Asked;
use crate::reconcile::apply::Origin;
use crate::reconcile::host::{Action, HostError, UserKey};
use crate::reconcile::mapping::{Mapping, Rule, SourceKind};
use crate::reconcile::model::Snapshot;
use crate::reconcile::policy::{GroupRole, NewUserStatus, OnDelete, OnMissing, Policy};
pub use crate::store::events::Pruned;
use crate::store::tenants::{Directory, Tenant};
use crate::store::{Store, StoreError};
use directory::Kind;
pub use requests::{prune_scim_requests, scim_requests};

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
    /// The directory exists but is not the kind the action is for (a SCIM
    /// token for a pull directory, a run of a SCIM directory).
    #[error("{0}")]
    WrongKind(String),
    /// A run of the connection holds its lease (the API answers 409).
    #[error("{0}")]
    Busy(String),
    /// A pull directory's provider could not be read (a refused secret, a
    /// missing permission, an outage), in the provider's own words.
    #[error("{0}")]
    Provider(String),
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

/// A store error as an admin one: NotFound names `what`.
fn store_err(what: String) -> impl FnOnce(StoreError) -> AdminError {
    move |e| match e {
        StoreError::NotFound => AdminError::NotFound(what),
        other => AdminError::Store(other),
    }
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
    /// `scim`, or the provider a pull directory is read from.
    pub kind: String,
}

impl DirectoryView {
    fn of(directory: Directory, tenant: &Tenant) -> DirectoryView {
        DirectoryView {
            id: directory.id,
            tenant_id: tenant.id.clone(),
            tenant: tenant.name.clone(),
            name: directory.name,
            vendor: directory.vendor,
            kind: directory.kind,
        }
    }
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

/// Every tenant, by name.
pub async fn list_tenants(store: &Store) -> Result<Vec<TenantView>, AdminError> {
    Ok(store
        .tenants()
        .await
        .map_err(AdminError::Store)?
        .into_iter()
        .map(|t| TenantView {
            id: t.id,
            name: t.name,
        })
        .collect())
}

/// A tenant's directories, SCIM and pull, by name.
pub async fn list_directories(
    store: &Store,
    tenant: &str,
) -> Result<Vec<DirectoryView>, AdminError> {
    let tenant = tenant_by_name(store, tenant).await?;
    Ok(store
        .directories_of(&tenant.id)
        .await
        .map_err(AdminError::Store)?
        .into_iter()
        .map(|d| DirectoryView::of(d, &tenant))
        .collect())
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
    let tenant = tenant_by_name(store, tenant).await?;
    let directory = store
        .create_directory(Directory {
            id: new_id(),
            tenant_id: tenant.id.clone(),
            name: name.to_owned(),
            kind: Kind::Scim.as_str().to_owned(),
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
    Ok(DirectoryView::of(directory, &tenant))
}

/// Create a SCIM token for `directory` (its id or `TENANT/NAME`).
pub async fn create_token(
    store: &Store,
    directory: &str,
    label: Option<&str>,
) -> Result<NewTokenView, AdminError> {
    let directory = directory::resolve(store, directory).await?.scim()?;
    let token = crypto::generate_token();
    let saved = store
        .create_token(
            &new_id(),
            &directory.directory.id,
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

/// A SCIM directory's tokens, oldest first.
pub async fn list_tokens(store: &Store, directory: &str) -> Result<Vec<TokenView>, AdminError> {
    let directory = directory::resolve(store, directory).await?.scim()?;
    let tokens = store
        .tokens_of(&directory.directory.id)
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

/// Revoke one of a SCIM directory's tokens (revoking it again changes nothing).
pub async fn revoke_token(
    store: &Store,
    directory: &str,
    token_id: &str,
) -> Result<TokenView, AdminError> {
    let directory = directory::resolve(store, directory).await?.scim()?;
    let t = store
        .revoke_token(&directory.directory.id, token_id, now())
        .await
        .map_err(|e| match e {
            StoreError::NotFound => {
                AdminError::NotFound(format!("token {token_id:?} of directory {directory}"))
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

async fn tenant_by_name(store: &Store, tenant: &str) -> Result<Tenant, AdminError> {
    store.tenant_by_name(tenant).await.map_err(|e| match e {
        StoreError::NotFound => AdminError::NotFound(format!("tenant {tenant:?}")),
        other => AdminError::Store(other),
    })
}

async fn tenant_id(store: &Store, tenant: &str) -> Result<String, AdminError> {
    Ok(tenant_by_name(store, tenant).await?.id)
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
    /// Replaces the whole attribute mapping (an empty list: the defaults).
    pub attribute_mapping: Option<Vec<Rule>>,
}

/// A policy change as text, as the CLI's flags and the dashboard's form
/// give it; `change` reads it the one way both use. `None` leaves a value
/// as it is.
#[derive(Debug, Default, Clone)]
pub struct PolicyText {
    pub default_role: Option<String>,
    /// `pending` or `active`.
    pub new_user_status: Option<String>,
    /// `deactivate` or `delete`.
    pub on_delete: Option<String>,
    /// `deactivate` or `ignore`.
    pub on_missing: Option<String>,
    /// A number, or `none` (no limit).
    pub max_deactivations: Option<String>,
    pub max_deactivation_percent: Option<String>,
    /// Comma-separated; empty allows every domain.
    pub allowed_domains: Option<String>,
    /// `on` or `off`.
    pub group_roles_enabled: Option<String>,
    /// `GROUP=ROLE` pairs; replaces the whole mapping.
    pub group_roles: Option<Vec<String>>,
    /// `on` or `off`.
    pub require_group_membership: Option<String>,
}

impl PolicyText {
    /// The change these words ask for (the attribute mapping is left as
    /// it is), or what is wrong with them.
    pub fn change(&self) -> Result<PolicyChange, AdminError> {
        fn limit<T: std::str::FromStr>(
            what: &str,
            raw: &Option<String>,
        ) -> Result<Option<Option<T>>, AdminError> {
            raw.as_deref()
                .map(str::trim)
                .map(|v| match v {
                    "none" | "" => Ok(None),
                    v => v.parse().map(Some).map_err(|_| {
                        AdminError::Invalid(format!("{what}: {v:?} is not a number or \"none\""))
                    }),
                })
                .transpose()
        }
        fn choice<T: serde::de::DeserializeOwned>(
            what: &str,
            raw: &Option<String>,
            allowed: &str,
        ) -> Result<Option<T>, AdminError> {
            raw.as_ref()
                .map(|v| {
                    serde_json::from_value(serde_json::Value::String(v.clone())).map_err(|_| {
                        AdminError::Invalid(format!("{what}: {v:?} is not one of {allowed}"))
                    })
                })
                .transpose()
        }
        fn on_off(what: &str, raw: &Option<String>) -> Result<Option<bool>, AdminError> {
            match raw.as_deref() {
                None => Ok(None),
                Some("on") => Ok(Some(true)),
                Some("off") => Ok(Some(false)),
                Some(v) => Err(AdminError::Invalid(format!(
                    "{what}: {v:?} is not on or off"
                ))),
            }
        }
        Ok(PolicyChange {
            default_role: self.default_role.clone(),
            new_user_status: choice("new_user_status", &self.new_user_status, "pending, active")?,
            on_delete: choice("on_delete", &self.on_delete, "deactivate, delete")?,
            on_missing: choice("on_missing", &self.on_missing, "deactivate, ignore")?,
            max_deactivations: limit("max_deactivations", &self.max_deactivations)?,
            max_deactivation_percent: limit(
                "max_deactivation_percent",
                &self.max_deactivation_percent,
            )?,
            allowed_domains: self
                .allowed_domains
                .as_ref()
                .map(|d| d.split(',').map(str::to_owned).collect()),
            group_roles_enabled: on_off("group_roles", &self.group_roles_enabled)?,
            group_roles: self
                .group_roles
                .as_ref()
                .map(|pairs| pairs.iter().map(|r| parse_group_role(r)).collect())
                .transpose()?,
            require_group_membership: on_off(
                "require_group_membership",
                &self.require_group_membership,
            )?,
            attribute_mapping: None,
        })
    }
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

/// Read the policy of `directory` (its id or `TENANT/NAME`; SCIM or pull).
pub async fn policy(store: &Store, directory: &str) -> Result<Policy, AdminError> {
    let directory = directory::resolve(store, directory).await?;
    policy_of(&directory)
}

fn policy_of(directory: &directory::Named) -> Result<Policy, AdminError> {
    serde_json::from_value(directory.directory.policy.clone()).map_err(|e| {
        AdminError::Invalid(format!(
            "the stored policy of directory {directory} does not parse: {e}"
        ))
    })
}

/// Change a directory's policy; returns the policy now in force (it applies
/// from the directory's next write or run).
pub async fn update_policy(
    store: &Store,
    directory: &str,
    change: PolicyChange,
) -> Result<Policy, AdminError> {
    let directory = directory::resolve(store, directory).await?;
    let mut p = policy_of(&directory)?;
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
    let remapped = change.attribute_mapping.is_some_and(|rules| {
        let changed = rules != p.attribute_mapping;
        p.attribute_mapping = rules;
        changed
    });
    check_mapping(&directory, &p.attribute_mapping)?;
    if p.require_group_membership && p.group_roles.is_empty() {
        return Err(AdminError::Invalid(
            "requiring group membership needs at least one mapped group (--group-role GROUP=ROLE)"
                .into(),
        ));
    }
    let value = serde_json::to_value(&p).map_err(|e| AdminError::Invalid(e.to_string()))?;
    crate::store::tenants::set_policy(store.connection(), &directory.directory.id, value)
        .await
        .map_err(AdminError::Store)?;
    if remapped {
        reapply_mapping(store, &directory).await?;
    }
    Ok(p)
}

/// Most users a mapping preview shows.
pub const MAX_PREVIEW: u64 = 100;

/// One user of a directory under its attribute mapping and a proposed one.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct MappingPreview {
    /// The directory's id for the user (the SCIM resource id, the
    /// provider's user id).
    pub source_id: String,
    /// The user under the rules in force: email, profile (with
    /// `custom`), role.
    #[schema(value_type = Object)]
    pub before: serde_json::Value,
    /// The same user under the proposed rules.
    #[schema(value_type = Object)]
    pub after: serde_json::Value,
    /// What the proposed rules change (`custom_attributes.NAME` for a
    /// custom attribute), as a `user.updated` event would name it.
    pub changed: Vec<String>,
}

/// A dry run of a mapping change: the first `limit` users of the directory
/// under its rules and under `rules`. Nothing is written. A SCIM
/// directory's users are read from what its clients wrote (in id order); a
/// pull directory's from its provider (in the provider's order), through
/// its connection opened with `key`, asking for what either set of rules
/// reads.
pub async fn preview_mapping(
    store: &Store,
    key: Option<&crypto::SealingKey>,
    directory: &str,
    rules: Vec<Rule>,
    limit: u64,
) -> Result<Vec<MappingPreview>, AdminError> {
    if !(1..=MAX_PREVIEW).contains(&limit) {
        return Err(AdminError::Invalid(format!(
            "a preview shows 1 to {MAX_PREVIEW} users"
        )));
    }
    let directory = directory::resolve(store, directory).await?;
    check_mapping(&directory, &rules)?;
    let id = &directory.directory.id;
    let current = Origin::load(store.connection(), id)
        .await
        .map_err(AdminError::Store)?;
    let proposed = current
        .with_mapping(rules)
        .map_err(|e| AdminError::Invalid(format!("attribute_mapping: {e}")))?;
    let users: Vec<(String, Snapshot)> = match directory.kind {
        directory::Kind::Scim => {
            crate::store::mirror::users::users_after(store.connection(), id, None, limit)
                .await
                .map_err(AdminError::Store)?
                .iter()
                .map(|row| (row.id.clone(), crate::scim::snapshot::user(row)))
                .collect()
        }
        directory::Kind::Pull(_) => {
            let asked = Asked::of(current.mapping()).and(Asked::of(proposed.mapping()));
            connections::sample(store, key, &directory, &asked, limit as usize, |_, _| true).await?
        }
    };
    Ok(users
        .into_iter()
        .map(|(source_id, snapshot)| {
            let compared = current.compare(&proposed, &snapshot);
            MappingPreview {
                source_id,
                before: serde_json::to_value(&compared.before).unwrap_or_default(),
                after: serde_json::to_value(&compared.after).unwrap_or_default(),
                changed: compared
                    .changed
                    .iter()
                    .map(|f| f.name().into_owned())
                    .collect(),
            }
        })
        .collect())
}

/// Refuse rules the directory's kind cannot read, with the rule and why.
fn check_mapping(directory: &directory::Named, rules: &[Rule]) -> Result<(), AdminError> {
    let kind = SourceKind::of_directory(directory.kind.as_str())
        .ok_or_else(|| AdminError::Invalid(format!("directory {directory} has an unknown kind")))?;
    Mapping::compile(kind, rules)
        .map(|_| ())
        .map_err(|e| AdminError::Invalid(format!("attribute_mapping: {e}")))
}

/// A changed mapping applies to the users the directory already gave: a
/// SCIM directory's, at once, from what its clients wrote (the mirror); a
/// pull directory's from its next run, which lists every user again (its
/// incremental cursor is dropped), as only the provider holds attributes
/// the old rules did not read.
async fn reapply_mapping(store: &Store, directory: &directory::Named) -> Result<(), AdminError> {
    let id = &directory.directory.id;
    match directory.kind {
        directory::Kind::Scim => {
            let report = crate::scim::snapshot::reapply(store, id, false, now())
                .await
                .map_err(AdminError::Store)?;
            tracing::info!(
                directory_id = %id,
                updated = report.counts.updated,
                unchanged = report.counts.unchanged,
                "attribute mapping applied to the directory's users"
            );
        }
        directory::Kind::Pull(_) => {
            crate::store::pull::forget_cursor(store.connection(), id, now())
                .await
                .map_err(AdminError::Store)?;
        }
    }
    Ok(())
}

/// A tenant's app users, as the host application sees them.
pub async fn users(store: &Store, tenant: &str) -> Result<Vec<serde_json::Value>, AdminError> {
    let tenant_id = tenant_id(store, tenant).await?;
    let rows = crate::store::app::users::users_of_tenant(store.connection(), &tenant_id)
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
    let rows = crate::store::app::groups::groups_of_tenant(conn, &tenant_id)
        .await
        .map_err(AdminError::Store)?;
    let mut out = Vec::with_capacity(rows.len());
    for g in rows {
        let members = crate::store::app::groups::member_ids(conn, &g.id)
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
    /// The event's stable id (`evt_` TENANT `_` SEQ): the same in the feed
    /// and in every webhook delivery of it (`webhook-id`), so a consumer
    /// can drop what it already handled.
    pub id: String,
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
            id: event_id(&e.tenant_id, e.seq),
            seq: e.seq,
            r#type: e.r#type,
            resource_type: e.resource_type,
            resource_id: e.resource_id,
            data: e.data,
            created_at: rfc3339(e.created_at),
        }
    }
}

impl EventView {
    /// Bytes of the event's JSON as the feed and a webhook message carry
    /// it: what a page's or a message's byte budget counts.
    pub fn size_of(e: &crate::store::events::Event) -> u64 {
        json_bytes(&EventView::from(e.clone()))
    }
}

/// Bytes of a value's compact JSON, counted as it is written rather than
/// held.
fn json_bytes(value: &impl Serialize) -> u64 {
    struct Count(u64);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Serialising a `Value` and plain fields cannot fail; were it to, the
    // event would count as larger than any budget (and still come first
    // on its page).
    match serde_json::to_writer(&mut count, value) {
        Ok(()) => count.0,
        Err(_) => u64::MAX,
    }
}

/// An event's stable id: its tenant and its sequence number (never reused).
pub fn event_id(tenant_id: &str, seq: i64) -> String {
    format!("evt_{}_{seq}", tenant_id.replace('-', ""))
}

/// The most events one page holds, whatever the caller asks for.
pub const MAX_EVENTS_PER_PAGE: u64 = 10_000;

/// A page of a tenant's events and whether more follow it.
#[derive(Debug, Serialize)]
pub struct EventPage {
    pub events: Vec<EventView>,
    /// Set when more events follow this page: the `after` that reads them
    /// (the last sequence number of this page).
    pub next_after: Option<i64>,
}

/// A tenant's events after `after`, in order, at most `limit` (1 to
/// `MAX_EVENTS_PER_PAGE`) and at most the server's default page budget of
/// bytes (`--max-page-bytes`; the first event whatever its size), and where
/// the next page starts if there is one.
pub async fn event_page(
    store: &Store,
    tenant: &str,
    after: i64,
    limit: u64,
) -> Result<EventPage, AdminError> {
    let tenant_id = tenant_id(store, tenant).await?;
    let budget = crate::store::events::Budget {
        count: limit.clamp(1, MAX_EVENTS_PER_PAGE),
        bytes: crate::config::DEFAULT_MAX_PAGE_BYTES,
    };
    let read = crate::store::events::read(
        store.connection(),
        &tenant_id,
        after,
        &crate::store::events::EventFilter::default(),
        budget,
        EventView::size_of,
    )
    .await
    .map_err(AdminError::Store)?;
    let next_after = read.events.last().filter(|_| read.is_cut).map(|e| e.seq);
    let events = read.events.into_iter().map(EventView::from).collect();
    Ok(EventPage { events, next_after })
}

/// Delete the events written before `before` (epoch milliseconds), of one
/// tenant or of all, at most `at_most` of them (`u64::MAX`: all). The one
/// way events go: `dirsync events prune` and the server's retention both
/// call it.
pub async fn prune_events(
    store: &Store,
    tenant: Option<&str>,
    before: i64,
    at_most: u64,
) -> Result<Pruned, AdminError> {
    let tenant_id = match tenant {
        Some(t) => Some(tenant_id(store, t).await?),
        None => None,
    };
    crate::store::events::prune(store, tenant_id.as_deref(), before, at_most)
        .await
        .map_err(AdminError::Store)
}

/// A tenant's events after `after`, in order, at most `limit` (and at most
/// a page's bytes, as `event_page`).
pub async fn events(
    store: &Store,
    tenant: &str,
    after: i64,
    limit: u64,
) -> Result<Vec<EventView>, AdminError> {
    Ok(event_page(store, tenant, after, limit).await?.events)
}
