//! Pull directories for the operator: a connection's create / show / update
//! / test / delete, the key its credentials are sealed under and its
//! rotation, runs on demand, the run history and the approval of a run the
//! guard stopped.
//! Credentials go in once and never come back out: no view carries them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::directory::{self, Kind, Named};
use super::{AdminError, new_id, now, store_err, valid_name};
use crate::crypto::{SealingKey, Secret};
use crate::domain::time::rfc3339;
use crate::pull::Provider;
use crate::pull::connector::{self, Connector, Definition};
use crate::pull::retry::Pacing;
use crate::pull::run::{self, Progress, Request, RunError, Trigger};
use crate::pull::schedule::Schedule;
use crate::pull::source::{Check, Scope, Source};
use crate::reconcile::model::RunStatus;
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
