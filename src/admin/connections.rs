//! Pull directories for the operator: a connection's create / show / update
//! / test / delete, the key its credentials are sealed under and its
//! rotation, runs on demand, the run history and the approval of a run the
//! guard stopped; the import wizard's preview of the provider's users
//! (`pull::preview`, which the mapping preview reads through too) and its
//! selective import, a run of mode `import`.
//! Credentials go in once and never come back out: no view carries them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::directory::{self, Kind, Named};
use super::{AdminError, new_id, now, store_err, valid_name};
use crate::crypto::{SealingKey, Secret};
use crate::domain::names::fold;
use crate::domain::time::rfc3339;
use crate::pull::connector::{self, Connector, Definition};
use crate::pull::retry::Pacing;
use crate::pull::run::{self, Progress, Request, RunError, Trigger};
use crate::pull::schedule::Schedule;
use crate::pull::source::{Asked, Check, Scope, Source};
use crate::pull::{Provider, PullError, preview};
use crate::reconcile::apply::Origin;
use crate::reconcile::model::{RunStatus, Snapshot};
use crate::store::pull::{self as rows, Connection, Run};
use crate::store::tenants::Directory;
use crate::store::{Store, StoreError};

/// A connection as shown: settings, scope, schedule and state; of the
/// credentials only that they are sealed, and under which key.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Connection)]
pub struct ConnectionView {
    pub directory_id: String,
    pub tenant_id: String,
    /// The tenant's name.
    pub tenant: String,
    /// The directory's name.
    pub directory: String,
    pub provider: Provider,
    #[schema(value_type = Object)]
    pub settings: Value,
    #[schema(value_type = crate::pull::source::Scope)]
    pub scope: Value,
    #[schema(value_type = crate::pull::schedule::Schedule)]
    pub schedule: Value,
    /// `sealed with key 1a2b3c4d`
    pub credentials: String,
    pub incremental_cursor: bool,
    pub next_run_at: Option<String>,
    pub running_on: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

fn view(connection: &Connection, tenant: &str, directory: &str) -> ConnectionView {
    let key_id = connection
        .secret_sealed
        .split('.')
        .nth(1)
        .unwrap_or("unknown");
    let now = now();
    ConnectionView {
        directory_id: connection.directory_id.clone(),
        tenant_id: connection.tenant_id.clone(),
        tenant: tenant.to_owned(),
        directory: directory.to_owned(),
        provider: Provider::parse(&connection.provider).unwrap_or(Provider::Entra),
        settings: connection.settings.clone(),
        scope: connection.scope.clone(),
        schedule: connection.schedule.clone(),
        credentials: format!("sealed with key {key_id}"),
        incremental_cursor: connection.cursor.is_some(),
        next_run_at: connection.next_run_at.map(rfc3339),
        running_on: connection
            .lease_owner
            .clone()
            .filter(|_| connection.lease_expires_at.is_some_and(|at| at > now)),
        created_at: rfc3339(connection.created_at),
        updated_at: rfc3339(connection.updated_at),
    }
}

fn no_key() -> AdminError {
    AdminError::Invalid(
        "the server has no secret key to seal credentials with: set DIRSYNC_SECRET_KEY \
         (`dirsync secret-key generate` makes one)"
            .into(),
    )
}

/// The pull directory `reference` (its id or `TENANT/NAME`) names.
async fn pull_directory(store: &Store, reference: &str) -> Result<Named, AdminError> {
    Ok(directory::resolve(store, reference).await?.pull()?.0)
}

/// A pull directory's connection (gone once `delete` removed it).
async fn connection_of(store: &Store, directory: &Named) -> Result<Connection, AdminError> {
    store
        .connection_of(&directory.directory.id)
        .await
        .map_err(store_err(format!("a connection for directory {directory}")))
}

/// Create a pull directory of `definition.provider` in `tenant`, holding the
/// connection; the credentials are sealed under `key` before they are stored.
pub async fn create(
    store: &Store,
    key: Option<&SealingKey>,
    tenant: &str,
    name: &str,
    definition: Definition,
) -> Result<ConnectionView, AdminError> {
    let key = key.ok_or_else(no_key)?;
    let name = valid_name("a directory name", name)?;
    let secret = definition.secret.ok_or_else(|| {
        AdminError::Invalid(
            "the connection needs its credentials (--secret-file or --secret-env)".into(),
        )
    })?;
    let provider = definition.provider;
    let settings = checked(
        provider,
        &definition.settings,
        &definition.scope,
        &definition.schedule,
        &secret,
    )?;
    let tenant = store
        .tenant_by_name(tenant)
        .await
        .map_err(store_err(format!("tenant {tenant:?}")))?;
    let now = now();
    let connection_id = new_id();
    let sealed = connector::seal(key, &connection_id, &secret)
        .map_err(|e| AdminError::Invalid(e.to_string()))?;
    let directory = Directory {
        id: new_id(),
        tenant_id: tenant.id.clone(),
        name: name.to_owned(),
        kind: Kind::Pull(provider).as_str().to_owned(),
        vendor: provider.as_str().to_owned(),
        policy: serde_json::json!({}),
        created_at: now,
    };
    let connection = Connection {
        id: connection_id,
        directory_id: directory.id.clone(),
        tenant_id: tenant.id.clone(),
        provider: provider.as_str().to_owned(),
        settings,
        scope: serde_json::to_value(&definition.scope).unwrap_or_default(),
        schedule: serde_json::to_value(&definition.schedule).unwrap_or_default(),
        secret_sealed: sealed,
        cursor: None,
        // A scheduled connection's first import is due at once.
        next_run_at: definition.schedule.enabled.then_some(now),
        lease_owner: None,
        lease_expires_at: None,
        created_at: now,
        updated_at: now,
    };
    let (directory, connection) = store
        .create_pull_directory(directory, connection)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => AdminError::Exists(format!(
                "a directory named {name:?} or a {} connection in tenant {:?}",
                provider.as_str(),
                tenant.name
            )),
            other => AdminError::Store(other),
        })?;
    Ok(view(&connection, &tenant.name, &directory.name))
}

/// The provider's settings checked and completed, and the schedule checked;
/// the connector reads the credentials here once, so a key file that is not
/// one is refused now rather than at the first run.
fn checked(
    provider: Provider,
    settings: &Value,
    scope: &Scope,
    schedule: &Schedule,
    secret: &Secret,
) -> Result<Value, AdminError> {
    if secret.expose().trim().is_empty() {
        return Err(AdminError::Invalid("the credentials are empty".into()));
    }
    let settings = connector::settings(provider, settings).map_err(AdminError::Invalid)?;
    schedule.validate().map_err(AdminError::Invalid)?;
    Connector::connect(
        provider,
        &settings,
        scope,
        secret.clone(),
        Pacing::default(),
    )
    .map_err(|e| AdminError::Invalid(e.to_string()))?;
    Ok(settings)
}

/// Changes to a connection; what is left out stays as it is. Settings,
/// scope and schedule are each replaced whole.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionChange {
    /// The provider's settings, whole (checked as at creation).
    #[schema(value_type = Option<Object>)]
    pub settings: Option<Value>,
    pub scope: Option<Scope>,
    pub schedule: Option<Schedule>,
    /// New credentials, sealed under the server's key; never shown again.
    #[schema(value_type = Option<String>, write_only)]
    pub secret: Option<Secret>,
}

/// Change a connection, checked as `create` checks a new one (with its
/// stored credentials when no new ones come). New settings or a new scope
/// make the next run a full one: the incremental cursor belonged to the old
/// ones. Refused while a run holds the connection's lease, so a run never
/// finishes under settings it did not start with.
pub async fn update(
    store: &Store,
    key: Option<&SealingKey>,
    directory: &str,
    change: ConnectionChange,
) -> Result<ConnectionView, AdminError> {
    let key = key.ok_or_else(no_key)?;
    let directory = pull_directory(store, directory).await?;
    let connection = connection_of(store, &directory).await?;
    let provider = Provider::parse(&connection.provider).ok_or_else(|| {
        AdminError::Invalid(format!("unknown provider {:?}", connection.provider))
    })?;
    let stored = |what: &str, e: String| {
        AdminError::Store(StoreError::Invalid(format!(
            "the {what} of directory {}'s connection: {e}",
            directory.directory.id
        )))
    };
    let scope: Scope = match change.scope {
        Some(scope) => scope,
        None => serde_json::from_value(connection.scope.clone())
            .map_err(|e| stored("scope", e.to_string()))?,
    };
    let schedule: Schedule = match change.schedule {
        Some(schedule) => schedule,
        None => serde_json::from_value(connection.schedule.clone())
            .map_err(|e| stored("schedule", e.to_string()))?,
    };
    let fresh_secret = change.secret.is_some();
    let secret = match change.secret {
        Some(secret) => secret,
        None => connector::open(key, &connection.id, &connection.secret_sealed)
            .map_err(|e| AdminError::Invalid(e.to_string()))?,
    };
    let settings = checked(
        provider,
        change.settings.as_ref().unwrap_or(&connection.settings),
        &scope,
        &schedule,
        &secret,
    )?;
    let scope = serde_json::to_value(&scope).map_err(|e| AdminError::Invalid(e.to_string()))?;
    let now = now();
    let definition = rows::NewDefinition {
        reset_cursor: settings != connection.settings || scope != connection.scope,
        settings,
        scope,
        schedule: serde_json::to_value(&schedule)
            .map_err(|e| AdminError::Invalid(e.to_string()))?,
        secret_sealed: if fresh_secret {
            Some(
                connector::seal(key, &connection.id, &secret)
                    .map_err(|e| AdminError::Invalid(e.to_string()))?,
            )
        } else {
            None
        },
        next_run_at: match (schedule.enabled, connection.next_run_at) {
            (false, _) => None,
            // Newly scheduled: due at once, as a new connection's first run.
            (true, None) => Some(now),
            // A shorter interval takes effect now, not after the old wait.
            (true, Some(at)) => Some(schedule.next_after(now).map_or(at, |soon| soon.min(at))),
        },
    };
    let saved = rows::save_definition(store.connection(), &connection.id, &definition, now)
        .await
        .map_err(AdminError::Store)?;
    if !saved {
        return Err(AdminError::Busy(format!(
            "a run of directory {} is in progress; change its connection when it ends",
            directory
        )));
    }
    let connection = connection_of(store, &directory).await?;
    Ok(view(
        &connection,
        &directory.tenant.name,
        &directory.directory.name,
    ))
}

pub async fn show(store: &Store, directory: &str) -> Result<ConnectionView, AdminError> {
    let directory = pull_directory(store, directory).await?;
    let connection = connection_of(store, &directory).await?;
    Ok(view(
        &connection,
        &directory.tenant.name,
        &directory.directory.name,
    ))
}

/// Delete the connection: no more runs. The directory, its users and its
/// run history stay.
pub async fn delete(store: &Store, directory: &str) -> Result<ConnectionView, AdminError> {
    let directory = pull_directory(store, directory).await?;
    let connection = connection_of(store, &directory).await?;
    if !store
        .delete_connection(&directory.directory.id, now())
        .await
        .map_err(AdminError::Store)?
    {
        return Err(AdminError::Busy(format!(
            "a run of {directory:?} is in progress; delete its connection when the run ends"
        )));
    }
    Ok(view(
        &connection,
        &directory.tenant.name,
        &directory.directory.name,
    ))
}

/// Perform the auth handshake and one small read.
pub async fn test(
    store: &Store,
    key: Option<&SealingKey>,
    directory: &str,
) -> Result<Check, AdminError> {
    let directory = pull_directory(store, directory).await?;
    let connection = connection_of(store, &directory).await?;
    let mut connector = connector::for_connection(key, &connection, Pacing::default())
        .map_err(|e| AdminError::Invalid(e.to_string()))?;
    connector
        .check()
        .await
        .map_err(|e| AdminError::Invalid(e.to_string()))
}

/// Re-seal every connection's credentials and every webhook endpoint's
/// signing secrets under `new`, in one transaction (all or nothing); how
/// many were re-sealed. Values already under `new` are left as they are.
pub async fn rotate_key(
    store: &Store,
    old: Option<&SealingKey>,
    new: &SealingKey,
) -> Result<u64, AdminError> {
    let old = old.ok_or_else(no_key)?;
    let connections = store.connections().await.map_err(AdminError::Store)?;
    let tx = store.write().await.map_err(AdminError::Store)?;
    let mut rotated = 0;
    for connection in connections {
        if connection.secret_sealed.split('.').nth(1) == Some(new.id()) {
            continue;
        }
        let secret =
            connector::open(old, &connection.id, &connection.secret_sealed).map_err(|e| {
                AdminError::Invalid(format!(
                    "connection of directory {}: {e}",
                    connection.directory_id
                ))
            })?;
        let sealed = connector::seal(new, &connection.id, &secret)
            .map_err(|e| AdminError::Invalid(e.to_string()))?;
        let done = rows::reseal(
            tx.conn(),
            &connection.id,
            &connection.secret_sealed,
            &sealed,
            now(),
        )
        .await
        .map_err(AdminError::Store)?;
        if !done {
            return Err(AdminError::Invalid(format!(
                "the credentials of directory {} changed during the rotation; run it again",
                connection.directory_id
            )));
        }
        rotated += 1;
    }
    // Webhook signing secrets are sealed under the same key: all of them
    // move with the credentials, in the same transaction.
    rotated += super::webhooks::reseal_all(tx.conn(), old, new).await?;
    tx.commit().await.map_err(AdminError::Store)?;
    Ok(rotated)
}

fn run_error(err: RunError) -> AdminError {
    match err {
        RunError::Store(e) => AdminError::Store(e),
        busy @ RunError::Busy(_) => AdminError::Busy(busy.to_string()),
        RunError::NoConnection(d) => {
            AdminError::NotFound(format!("a connection for directory {d}"))
        }
        other => AdminError::Invalid(other.to_string()),
    }
}

/// Run a connection now, as `owner` (the lease holder's name).
pub async fn sync(
    store: &Store,
    key: Option<&SealingKey>,
    directory: &str,
    request: &Request,
    owner: &str,
    progress: &mut (dyn FnMut(&Progress) + Send),
) -> Result<Value, AdminError> {
    let directory = pull_directory(store, directory).await?;
    let run = run::run_connection(
        store,
        &directory.directory.id,
        request,
        owner,
        |connection| connector::for_connection(key, connection, Pacing::default()),
        progress,
    )
    .await
    .map_err(|e| match e {
        RunError::NoConnection(_) => {
            AdminError::NotFound(format!("a connection for directory {directory}"))
        }
        other => run_error(other),
    })?;
    Ok(run::run_view(&run))
}

/// A directory's runs, newest first.
pub async fn runs(store: &Store, directory: &str, limit: u64) -> Result<Vec<Value>, AdminError> {
    let directory = pull_directory(store, directory).await?;
    Ok(store
        .runs_of(&directory.directory.id, limit)
        .await
        .map_err(AdminError::Store)?
        .iter()
        .map(run::run_view)
        .collect())
}

/// Whom a run the guard stopped would have deactivated, with why: a page
/// in user id order after the user `after` (`store::pages::held_back`, as
/// the API reads it).
pub async fn held_back(
    store: &Store,
    run_id: &str,
    after: Option<String>,
    limit: u64,
) -> Result<crate::store::pages::Page<(crate::store::app::users::AppUser, String)>, AdminError> {
    use crate::store::pages::{self, Anchor};
    let run = store
        .run(run_id)
        .await
        .map_err(store_err(format!("run {run_id:?}")))?;
    let from = after.map_or(Anchor::Start, Anchor::After);
    pages::held_back(store.connection(), &run.id, &from, limit)
        .await
        .map_err(AdminError::Store)
}

/// Approve a run the guard stopped: run the connection again, allowed up to
/// the deactivations the stopped run weighed (more trips the guard again).
pub async fn approve(
    store: &Store,
    key: Option<&SealingKey>,
    run_id: &str,
    owner: &str,
    progress: &mut (dyn FnMut(&Progress) + Send),
) -> Result<Value, AdminError> {
    let stopped: Run = store
        .run(run_id)
        .await
        .map_err(store_err(format!("run {run_id:?}")))?;
    if stopped.status != RunStatus::NeedsApproval.as_str() {
        return Err(AdminError::Invalid(format!(
            "run {run_id} is {}, not needs_approval",
            stopped.status
        )));
    }
    if let Some(by) = &stopped.approved_by_run_id {
        return Err(AdminError::Invalid(format!(
            "run {run_id} was already approved (run {by})"
        )));
    }
    // The same run again (its selection, its mode), allowed as many
    // deactivations as the operator saw.
    let asked = &stopped.counts["request"];
    let request = Request {
        trigger: Trigger::Approval,
        incremental: asked["incremental"].as_bool().unwrap_or(false),
        only: asked["only"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        department: asked["department"].as_str().map(str::to_owned),
        import: asked["import"].as_bool().unwrap_or(false),
        approves: Some((stopped.id.clone(), stopped.deactivations.max(0) as u64)),
        ..Request::manual()
    };
    let run = run::run_connection(
        store,
        &stopped.directory_id,
        &request,
        owner,
        |connection| connector::for_connection(key, connection, Pacing::default()),
        progress,
    )
    .await
    .map_err(run_error)?;
    // The run, when it went through, marked the stopped one approved with
    // its record.
    Ok(run::run_view(&run))
}

/// A provider's failure as an admin one: its own words, except a store
/// failure under it.
fn provider_error(err: PullError) -> AdminError {
    match err {
        PullError::Store(err) => AdminError::Store(err),
        other => AdminError::Provider(other.to_string()),
    }
}

/// The first `limit` users of a pull directory's connection that `wanted`
/// keeps (`pull::preview`), the provider asked for what `asked` names.
/// Nothing is written.
pub(super) async fn sample(
    store: &Store,
    key: Option<&SealingKey>,
    directory: &Named,
    asked: &Asked,
    limit: usize,
    wanted: impl Fn(&str, &Snapshot) -> bool,
) -> Result<Vec<(String, Snapshot)>, AdminError> {
    let connection = connection_of(store, directory).await?;
    let scope: Scope = serde_json::from_value(connection.scope.clone()).map_err(|e| {
        AdminError::Store(StoreError::Invalid(format!(
            "the scope of directory {directory}'s connection: {e}"
        )))
    })?;
    let mut connector =
        connector::for_connection(key, &connection, Pacing::default()).map_err(provider_error)?;
    connector.ask_for(asked);
    let sample = preview::first_users(&mut connector, &scope, limit, wanted)
        .await
        .map_err(provider_error)?;
    Ok(sample.users)
}

/// What the import wizard's preview looks for (all optional).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PreviewQuery {
    /// Text the user's email, name or the provider's id for them contains
    /// (any case).
    pub search: Option<String>,
    /// Only this department's users (any case).
    pub department: Option<String>,
    /// How many users to show, 1 to 100 (default 50).
    pub limit: Option<u64>,
}

/// One user of the provider as the import wizard shows it: under the
/// directory's attribute mapping, as an import would take them in.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PreviewUser {
    /// The provider's id for the user: what an import names.
    pub source_id: String,
    pub email: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub display_name: Option<String>,
    pub department: Option<String>,
    pub title: Option<String>,
    /// Whether the provider says the user is active.
    pub active: bool,
    /// The app user this one is already (linked from this directory, or of
    /// the same email in the tenant); None: an import creates them.
    pub app_user_id: Option<String>,
    pub exists: bool,
}

/// Default users a wizard preview shows.
const PREVIEW_DEFAULT: u64 = 50;

/// The import wizard's preview: the first users of the connection that
/// match the search and the department, read from the provider (nothing is
/// written), each with whether it is already an app user.
pub async fn preview(
    store: &Store,
    key: Option<&SealingKey>,
    directory: &str,
    query: PreviewQuery,
) -> Result<Vec<PreviewUser>, AdminError> {
    let limit = query.limit.unwrap_or(PREVIEW_DEFAULT);
    if !(1..=preview::MAX_USERS as u64).contains(&limit) {
        return Err(AdminError::Invalid(format!(
            "a preview shows 1 to {} users",
            preview::MAX_USERS
        )));
    }
    let directory = pull_directory(store, directory).await?;
    let origin = Origin::load(store.connection(), &directory.directory.id)
        .await
        .map_err(AdminError::Store)?;
    let search = query
        .search
        .as_deref()
        .map(|s| fold(s.trim()))
        .filter(|s| !s.is_empty());
    let department = query
        .department
        .as_deref()
        .map(|d| fold(d.trim()))
        .filter(|d| !d.is_empty());
    // Judged as an import would take the user in: under the mapping.
    let mapped = |snapshot: &Snapshot| {
        let mut snapshot = snapshot.clone();
        origin.map(&mut snapshot);
        snapshot
    };
    let wanted = |id: &str, snapshot: &Snapshot| {
        let s = mapped(snapshot);
        let p = &s.profile;
        let in_department = department
            .as_ref()
            .is_none_or(|d| p.department.as_deref().is_some_and(|have| fold(have) == *d));
        let found = search.as_ref().is_none_or(|text| {
            [
                Some(id),
                s.email.as_deref(),
                p.given_name.as_deref(),
                p.family_name.as_deref(),
                p.display_name.as_deref(),
            ]
            .into_iter()
            .flatten()
            .any(|v| fold(v).contains(text.as_str()))
        });
        in_department && found
    };
    let asked = Asked::of(origin.mapping());
    let users = sample(store, key, &directory, &asked, limit as usize, wanted).await?;
    let users: Vec<(String, Snapshot)> = users
        .into_iter()
        .map(|(id, s)| {
            let s = mapped(&s);
            (id, s)
        })
        .collect();
    let known = app_users_of(store, &directory, &users).await?;
    Ok(users
        .into_iter()
        .map(|(source_id, s)| {
            let app_user_id = known.get(&source_id).cloned();
            PreviewUser {
                exists: app_user_id.is_some(),
                app_user_id,
                source_id,
                email: s.email,
                given_name: s.profile.given_name,
                family_name: s.profile.family_name,
                display_name: s.profile.display_name,
                department: s.profile.department,
                title: s.profile.title,
                active: s.active,
            }
        })
        .collect())
}

/// The app user each previewed user already is, by source id: the one this
/// directory's live link names, else the tenant's user of the same email.
async fn app_users_of(
    store: &Store,
    directory: &Named,
    users: &[(String, Snapshot)],
) -> Result<std::collections::HashMap<String, String>, AdminError> {
    let conn = store.connection();
    let ids: Vec<String> = users.iter().map(|(id, _)| id.clone()).collect();
    let mut known: std::collections::HashMap<String, String> =
        crate::store::app::links::links_by_source(conn, &directory.directory.id, &ids)
            .await
            .map_err(AdminError::Store)?
            .into_iter()
            .filter(|l| l.removed_at.is_none())
            .map(|l| (l.source_id, l.app_user_id))
            .collect();
    let emails: Vec<String> = users
        .iter()
        .filter(|(id, _)| !known.contains_key(id))
        .filter_map(|(_, s)| s.email.clone())
        .collect();
    if !emails.is_empty() {
        let by_email: std::collections::HashMap<String, String> =
            crate::store::app::users::ids_by_email(conn, &directory.tenant.id, &emails)
                .await
                .map_err(AdminError::Store)?
                .into_iter()
                .collect();
        for (id, s) in users {
            if let Some(app) = s.email.as_ref().and_then(|e| by_email.get(e))
                && !known.contains_key(id)
            {
                known.insert(id.clone(), app.clone());
            }
        }
    }
    Ok(known)
}

/// The import wizard's selection: the provider's ids of the users to
/// import, or all of them.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ImportRequest {
    /// The provider's ids (or emails) of the users to import.
    pub users: Vec<String>,
    /// Import every user in the connection's scope instead.
    pub all: bool,
}

/// Most users one import names (more: `all`, or a run).
pub const MAX_IMPORT: usize = 1000;

/// What an import did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ImportSummary {
    /// The run that carried it out (`GET /api/v1/runs/{run}`).
    pub run_id: String,
    /// App users created.
    pub imported: u64,
    /// App users changed (reactivations and deactivations the provider
    /// asked for included).
    pub updated: u64,
    pub unchanged: u64,
    /// Users the rules did not take in (a domain not allowed, no email…),
    /// and selected users the provider does not have in the connection's
    /// scope.
    pub skipped: u64,
    /// Conflicts (an address another user holds) and provider errors.
    pub errors: u64,
    /// The first skips, conflicts and provider errors, with their reasons;
    /// a name no user in the scope answered to is `kind: not_found`.
    #[schema(value_type = Vec<Object>)]
    pub problems: Vec<Value>,
}

/// Import the selected users of a pull directory now, through the engine
/// as a run of mode `import` (a partial listing: no one else is touched,
/// no groups), answering when it ends. Named users are read from the
/// provider one by one, not listed (`pull::run`), unless the provider
/// applies the connection's scope. A provider that cannot be read is
/// `Provider`, in its own words.
pub async fn import(
    store: &Store,
    key: Option<&SealingKey>,
    directory: &str,
    selection: ImportRequest,
    owner: &str,
) -> Result<ImportSummary, AdminError> {
    let users: Vec<String> = selection
        .users
        .iter()
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty())
        .collect();
    match (users.is_empty(), selection.all) {
        (true, false) => {
            return Err(AdminError::Invalid(
                "name the users to import, or import all of them".into(),
            ));
        }
        (false, true) => {
            return Err(AdminError::Invalid(
                "name the users to import or import all of them, not both".into(),
            ));
        }
        _ => {}
    }
    if users.len() > MAX_IMPORT {
        return Err(AdminError::Invalid(format!(
            "an import names at most {MAX_IMPORT} users; import more with all"
        )));
    }
    let wanted = users
        .iter()
        .map(|u| fold(u))
        .collect::<std::collections::HashSet<_>>()
        .len() as u64;
    let request = Request {
        only: users,
        import: true,
        ..Request::manual()
    };
    let directory = pull_directory(store, directory).await?;
    let run = run::run_connection(
        store,
        &directory.directory.id,
        &request,
        owner,
        |connection| connector::for_connection(key, connection, Pacing::default()),
        &mut |_| {},
    )
    .await
    .map_err(|e| match e {
        RunError::NoConnection(_) => {
            AdminError::NotFound(format!("a connection for directory {directory}"))
        }
        RunError::Pull(err) => provider_error(err),
        other => run_error(other),
    })?;
    let problems: Vec<Value> = run.errors.as_array().cloned().unwrap_or_default();
    // A run that read no user at all failed on the provider (or on
    // credentials the server cannot open): its reason is the answer.
    if run.status == RunStatus::Failed.as_str() {
        let reason = problems
            .iter()
            .find_map(|p| p["reason"].as_str())
            .unwrap_or("the provider could not be read")
            .to_owned();
        return Err(AdminError::Provider(reason));
    }
    let n = |path: &str| {
        run.counts
            .pointer(path)
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    let unlisted = if selection.all {
        0
    } else {
        wanted.saturating_sub(n("/users/seen"))
    };
    Ok(ImportSummary {
        run_id: run.id.clone(),
        imported: n("/users/created"),
        updated: n("/users/updated") + n("/users/reactivated") + n("/users/deactivated"),
        unchanged: n("/users/unchanged"),
        skipped: n("/users/skipped") + unlisted,
        errors: n("/users/conflicts") + n("/errors"),
        problems,
    })
}
