//! A directory's removal, in one transaction: its app groups are deleted,
//! each with its `group.deleted` event as when the directory deletes a
//! group; the profiles it owned are released; the directory goes, and with
//! it (the schema's foreign keys cascade) its tokens, mirror, connection,
//! runs, links and waiting changes; one `directory.deleted` event says so.
//!
//! The app users it linked stay as they are. A directory going away is not
//! its people leaving, and deactivating them all here would be a mass
//! deactivation that no guard weighed; the host application decides.

use serde::Serialize;
use serde_json::json;
use tracing::{instrument, warn};

use super::groups::group_view;
use super::model::EventType;
use super::unit::Unit;
use crate::store::app::groups as app_groups;
use crate::store::app::links;
use crate::store::app::users as app_users;
use crate::store::{Store, StoreError, pull, scim_requests, tenants};

#[derive(Debug, thiserror::Error)]
pub enum RemovalError {
    #[error("no such directory")]
    NotFound,
    /// A run of the directory's connection holds its lease.
    #[error("a run of the directory's connection is in progress")]
    Busy,
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for RemovalError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => RemovalError::NotFound,
            other => RemovalError::Store(other),
        }
    }
}

/// What a removal took with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Removal {
    pub groups_deleted: u64,
    /// App users the directory linked (they stay, unlinked from it).
    pub users_unlinked: u64,
}

/// Remove a directory. `Busy` while a run of its connection holds the
/// lease: the run would otherwise write into a directory that is gone.
#[instrument(skip_all, fields(directory_id = %directory_id))]
pub async fn remove_directory(
    store: &Store,
    directory_id: &str,
    now: i64,
) -> Result<Removal, RemovalError> {
    let mut unit = Unit::begin(store, now).await?;
    let directory = tenants::directory_in(unit.conn(), directory_id).await?;
    if !pull::delete_idle_connection(unit.conn(), directory_id, now).await? {
        return Err(RemovalError::Busy);
    }
    let tenant_id = directory.tenant_id.clone();
    let groups = app_groups::groups_of_directory(unit.conn(), directory_id).await?;
    for group in &groups {
        let members = app_groups::member_ids(unit.conn(), &group.id).await?;
        unit.event(
            &tenant_id,
            EventType::GroupDeleted,
            "group",
            &group.id,
            json!({ "group": group_view(group), "members": members }),
        )?;
    }
    let conn = unit.conn();
    let removal = Removal {
        groups_deleted: groups.len() as u64,
        users_unlinked: links::count_live_links(conn, directory_id).await?,
    };
    app_users::release_profiles(conn, directory_id).await?;
    tenants::delete_directory(conn, directory_id).await?;
    unit.event(
        &tenant_id,
        EventType::DirectoryDeleted,
        "directory",
        directory_id,
        json!({
            "directory": {
                "id": directory.id,
                "name": directory.name,
                "kind": directory.kind,
                "vendor": directory.vendor,
            },
            "groups_deleted": removal.groups_deleted,
            "users_unlinked": removal.users_unlinked,
        }),
    )?;
    unit.commit().await?;
    // Its SCIM request log (on SQLite a file of its own, out of the
    // transaction's reach); what a failure leaves, retention prunes.
    if let Err(err) = scim_requests::forget(store, directory_id).await {
        warn!(error = %err, directory_id, "a removed directory's SCIM request log was not deleted");
    }
    Ok(removal)
}
