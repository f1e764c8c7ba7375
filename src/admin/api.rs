//! What the host application's JSON API adds to the operator's actions:
//! lookups scoped to a tenant by id (another tenant's directory or run is
//! not found), creation in a tenant named by id, a directory's removal, and
//! runs started in the background that answer with the run's id as soon as
//! its record exists. Each calls the action the CLI calls; nothing here is
//! a second copy of one.

use serde_json::Value;
use tokio::sync::oneshot;

use super::connections::{self, ConnectionView};
use super::{
    AdminError, DirectoryView, NewTokenView, PolicyChange, now, store_err, valid_name, valid_role,
};
use crate::crypto::SealingKey;
use crate::pull::connector::Definition;
use crate::pull::run::{Progress, Request};
use crate::reconcile::policy::{GroupRole, Policy};
use crate::reconcile::removal::{self, Removal, RemovalError};
use crate::store::pull::Run;
use crate::store::tenants::Directory;
use crate::store::{Store, StoreError};

/// One of the tenant's directories.
pub async fn directory_in(
    store: &Store,
    tenant_id: &str,
    directory_id: &str,
) -> Result<Directory, AdminError> {
    let what = format!("directory {directory_id:?}");
    match store.directory(directory_id).await {
        Ok(directory) if directory.tenant_id == tenant_id => return Ok(directory),
        Ok(_) | Err(StoreError::NotFound) => {}
        Err(other) => return Err(AdminError::Store(other)),
    }
    // Not an id of the tenant's: its name in the tenant (names are unique
    // in a tenant).
    store
        .directories_of(tenant_id)
        .await
        .map_err(AdminError::Store)?
        .into_iter()
        .find(|d| d.name == directory_id)
        .ok_or(AdminError::NotFound(what))
}

/// One of the tenant's runs.
pub async fn run_in(store: &Store, tenant_id: &str, run_id: &str) -> Result<Run, AdminError> {
    let what = format!("run {run_id:?}");
    let run = store.run(run_id).await.map_err(store_err(what.clone()))?;
    if run.tenant_id != tenant_id {
        return Err(AdminError::NotFound(what));
    }
    Ok(run)
}

async fn tenant_name(store: &Store, tenant_id: &str) -> Result<String, AdminError> {
    Ok(store
        .tenant(tenant_id)
        .await
        .map_err(store_err(format!("tenant {tenant_id:?}")))?
        .name)
}

/// A SCIM directory in the tenant (`super::create_directory`).
pub async fn create_directory(
    store: &Store,
    tenant_id: &str,
    name: &str,
    vendor: &str,
) -> Result<DirectoryView, AdminError> {
    let tenant = tenant_name(store, tenant_id).await?;
    super::create_directory(store, &tenant, name, vendor).await
}

/// A pull directory with its connection in the tenant
/// (`connections::create`).
pub async fn create_connection(
    store: &Store,
    key: Option<&SealingKey>,
    tenant_id: &str,
    name: &str,
    definition: Definition,
) -> Result<ConnectionView, AdminError> {
    let tenant = tenant_name(store, tenant_id).await?;
    connections::create(store, key, &tenant, name, definition).await
}

/// A SCIM token for the directory; a label, when given, is a name an
/// operator reads (1 to 200 printable characters).
pub async fn create_token(
    store: &Store,
    directory_id: &str,
    label: Option<&str>,
) -> Result<NewTokenView, AdminError> {
    let label = label.map(|l| valid_name("a token label", l)).transpose()?;
    super::create_token(store, directory_id, label).await
}

/// Replace a directory's policy whole: every field is a change
/// (`super::update_policy`), each checked as the CLI's flags are, group
/// roles included.
pub async fn replace_policy(
    store: &Store,
    directory_id: &str,
    policy: Policy,
) -> Result<Policy, AdminError> {
    let group_roles = policy
        .group_roles
        .iter()
        .map(|m| {
            Ok(GroupRole {
                group: valid_name("a group", &m.group)?.to_owned(),
                role: valid_role(&m.role)?,
            })
        })
        .collect::<Result<Vec<_>, AdminError>>()?;
    let threshold = policy.deactivation_threshold;
    super::update_policy(
        store,
        directory_id,
        PolicyChange {
            default_role: Some(policy.default_role),
            new_user_status: Some(policy.new_user_status),
            on_delete: Some(policy.on_delete),
            on_missing: Some(policy.on_missing),
            max_deactivations: Some(threshold.max_count),
            max_deactivation_percent: Some(threshold.max_percent),
            allowed_domains: Some(policy.allowed_domains),
            group_roles_enabled: Some(policy.group_roles_enabled),
            group_roles: Some(group_roles),
            require_group_membership: Some(policy.require_group_membership),
            attribute_mapping: Some(policy.attribute_mapping),
        },
    )
    .await
}

/// Remove a directory (`reconcile::removal`): `Busy` while a run of its
/// connection is in progress.
pub async fn delete_directory(store: &Store, directory_id: &str) -> Result<Removal, AdminError> {
    removal::remove_directory(store, directory_id, now())
        .await
        .map_err(|e| match e {
            RemovalError::NotFound => AdminError::NotFound(format!("directory {directory_id:?}")),
            RemovalError::Busy => AdminError::Busy(format!(
                "a run of directory {directory_id:?} is in progress; delete it when the run ends"
            )),
            RemovalError::Store(err) => AdminError::Store(err),
        })
}

/// The lease holder's name for a run the API started: its own, so that no
/// two API requests share a lease.
fn owner() -> String {
    format!("api:{}", uuid::Uuid::now_v7())
}

/// Import the selected users of a pull directory now
/// (`connections::import`), under a lease of the request's own.
pub async fn import(
    store: &Store,
    key: Option<&SealingKey>,
    directory_id: &str,
    selection: connections::ImportRequest,
) -> Result<connections::ImportSummary, AdminError> {
    connections::import(store, key, directory_id, selection, &owner()).await
}

/// Run the connection now (`connections::sync`) on a task of its own; the
/// run's id once its record exists, or what kept it from starting (`Busy`
/// while another run holds the lease).
pub async fn start_sync(
    store: &Store,
    key: Option<&SealingKey>,
    directory_id: &str,
    request: Request,
) -> Result<String, AdminError> {
    let (tx, rx) = oneshot::channel();
    let (store, key, directory_id) = (store.clone(), key.cloned(), directory_id.to_owned());
    tokio::spawn(async move {
        let mut started = Started(Some(tx));
        let result = connections::sync(
            &store,
            key.as_ref(),
            &directory_id,
            &request,
            &owner(),
            &mut |p| started.report(p),
        )
        .await;
        started.end(result);
    });
    wait(rx).await
}

/// Approve a run the guard stopped (`connections::approve`) on a task of
/// its own; the new run's id once its record exists, or why the approval
/// was refused.
pub async fn start_approval(
    store: &Store,
    key: Option<&SealingKey>,
    run_id: &str,
) -> Result<String, AdminError> {
    let (tx, rx) = oneshot::channel();
    let (store, key, run_id) = (store.clone(), key.cloned(), run_id.to_owned());
    tokio::spawn(async move {
        let mut started = Started(Some(tx));
        let result = connections::approve(&store, key.as_ref(), &run_id, &owner(), &mut |p| {
            started.report(p)
        })
        .await;
        started.end(result);
    });
    wait(rx).await
}

/// Tells the request that started a run when the run began, once.
struct Started(Option<oneshot::Sender<Result<String, AdminError>>>);

impl Started {
    /// A run's first report comes once its record exists.
    fn report(&mut self, progress: &Progress) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(Ok(progress.run_id.clone()));
        }
    }

    /// The run ended. A run that could not start (unreadable credentials)
    /// is recorded without a report: its id answers too. What no request
    /// waits for any more is logged.
    fn end(mut self, result: Result<Value, AdminError>) {
        match (self.0.take(), result) {
            (Some(tx), Ok(run)) => {
                let id = run["id"].as_str().map(str::to_owned).ok_or_else(|| {
                    AdminError::Store(StoreError::Invalid("a run without an id".into()))
                });
                let _ = tx.send(id);
            }
            (Some(tx), Err(err)) => {
                let _ = tx.send(Err(err));
            }
            (None, Err(err)) => tracing::warn!(error = %err, "a run the API started failed"),
            (None, Ok(_)) => {}
        }
    }
}

async fn wait(rx: oneshot::Receiver<Result<String, AdminError>>) -> Result<String, AdminError> {
    rx.await.map_err(|_| {
        AdminError::Store(StoreError::Invalid(
            "the run's task ended before the run began".into(),
        ))
    })?
}
