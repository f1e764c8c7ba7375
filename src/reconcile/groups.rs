//! App groups follow directory groups one to one: created, renamed and deleted
//! with them; their members are the app users linked to the directory group's
//! user members (nested groups stay in the mirror). Under a policy that maps
//! groups to roles or requires membership, a membership change re-plans the
//! users it touches.

use serde_json::json;
use tracing::instrument;

use super::apply::{self, Effects, Origin};
use super::model::{EventType, GroupChange, GroupOutcome, MemberChanges};
use crate::domain::time::rfc3339;
use crate::store::app::groups::{self as app_groups, AppGroup};
use crate::store::app::links;
use crate::store::{Conn, StoreError};

/// A group as its events carry it.
pub fn group_view(g: &AppGroup) -> serde_json::Value {
    json!({
        "id": g.id,
        "name": g.name,
        "external_id": g.external_id,
        "directory_id": g.directory_id,
        "created_at": rfc3339(g.created_at),
        "updated_at": rfc3339(g.updated_at),
    })
}

/// Apply a group's snapshot or removal. A new group adopts the members its
/// directory group already has in the mirror.
#[instrument(skip_all, fields(directory_id = %dir.id, source_id))]
pub async fn apply_group<C: Conn>(
    conn: &C,
    dir: &Origin,
    source_id: &str,
    change: GroupChange,
    now: i64,
    fx: &mut Effects,
) -> Result<GroupOutcome, StoreError> {
    let current = app_groups::group_by_source(conn, &dir.id, source_id).await?;
    match (change, current) {
        (GroupChange::Upsert(s), None) => {
            let group = AppGroup {
                id: uuid::Uuid::now_v7().to_string(),
                tenant_id: dir.tenant_id.clone(),
                directory_id: dir.id.clone(),
                source_id: source_id.to_owned(),
                name: s.name,
                external_id: s.external_id,
                created_at: now,
                updated_at: now,
            };
            app_groups::insert_group(conn, group.clone()).await?;
            fx.push(
                EventType::GroupCreated,
                "group",
                &group.id,
                json!({ "group": group_view(&group) }),
            );
            let mirror = app_groups::mirror_user_members(conn, source_id).await?;
            let users = app_users_of(conn, dir, &mirror).await?;
            let added = apply::add_members(conn, &group.id, &users, now, fx).await?;
            apply::refresh_users(conn, dir, &added, now, fx).await?;
            Ok(GroupOutcome::Created)
        }
        (GroupChange::Upsert(s), Some(group)) => {
            if group.name == s.name && group.external_id == s.external_id {
                return Ok(GroupOutcome::Unchanged);
            }
            let mut changed = Vec::new();
            if group.name != s.name {
                changed.push("name");
            }
            if group.external_id != s.external_id {
                changed.push("external_id");
            }
            let next = AppGroup {
                name: s.name,
                external_id: s.external_id,
                updated_at: now.max(group.updated_at),
                ..group
            };
            app_groups::update_group(conn, &next).await?;
            fx.push(
                EventType::GroupUpdated,
                "group",
                &next.id,
                json!({ "group": group_view(&next), "changed": changed }),
            );
            // A mapping may name the group by its old or new name.
            let members = app_groups::member_ids(conn, &next.id).await?;
            apply::refresh_users(conn, dir, &members, now, fx).await?;
            Ok(GroupOutcome::Updated)
        }
        (GroupChange::Removed, Some(group)) => {
            let members = app_groups::member_ids(conn, &group.id).await?;
            app_groups::delete_group(conn, &group.id).await?;
            fx.push(
                EventType::GroupDeleted,
                "group",
                &group.id,
                json!({ "group": group_view(&group), "members": members }),
            );
            apply::refresh_users(conn, dir, &members, now, fx).await?;
            Ok(GroupOutcome::Deleted)
        }
        (GroupChange::Removed, None) => Ok(GroupOutcome::Unchanged),
    }
}

/// The app users linked (live) to these directory users of `dir`.
async fn app_users_of<C: Conn>(
    conn: &C,
    dir: &Origin,
    source_ids: &[String],
) -> Result<Vec<String>, StoreError> {
    Ok(links::links_by_source(conn, &dir.id, source_ids)
        .await?
        .into_iter()
        .filter(|l| l.removed_at.is_none())
        .map(|l| l.app_user_id)
        .collect())
}

/// Apply member additions and removals to the group's app group.
#[instrument(skip_all, fields(directory_id = %dir.id, added = changes.added.len(), removed = changes.removed.len()))]
pub async fn apply_members<C: Conn>(
    conn: &C,
    dir: &Origin,
    group_source_id: &str,
    changes: &MemberChanges,
    now: i64,
    fx: &mut Effects,
) -> Result<(), StoreError> {
    let Some(group) = app_groups::group_by_source(conn, &dir.id, group_source_id).await? else {
        return Ok(());
    };
    let removed = app_users_of(conn, dir, &changes.removed).await?;
    let mut touched = apply::remove_members(conn, &group.id, &removed, fx).await?;
    let added = app_users_of(conn, dir, &changes.added).await?;
    touched.extend(apply::add_members(conn, &group.id, &added, now, fx).await?);
    touched.sort();
    touched.dedup();
    apply::refresh_users(conn, dir, &touched, now, fx).await
}

/// Make the app group's members exactly these directory users (a pull's full
/// member listing).
pub async fn replace_members<C: Conn>(
    conn: &C,
    dir: &Origin,
    group_source_id: &str,
    source_ids: &[String],
    now: i64,
    fx: &mut Effects,
) -> Result<(), StoreError> {
    let Some(group) = app_groups::group_by_source(conn, &dir.id, group_source_id).await? else {
        return Ok(());
    };
    let wanted: std::collections::HashSet<String> = app_users_of(conn, dir, source_ids)
        .await?
        .into_iter()
        .collect();
    let present: std::collections::HashSet<String> = app_groups::member_ids(conn, &group.id)
        .await?
        .into_iter()
        .collect();
    let gone: Vec<String> = present
        .iter()
        .filter(|u| !wanted.contains(*u))
        .cloned()
        .collect();
    let new: Vec<String> = wanted
        .into_iter()
        .filter(|u| !present.contains(u))
        .collect();
    // Most listings change nothing: then nothing more is read or written.
    if gone.is_empty() && new.is_empty() {
        return Ok(());
    }
    let mut touched = Vec::new();
    if !gone.is_empty() {
        touched.extend(apply::remove_members(conn, &group.id, &gone, fx).await?);
    }
    if !new.is_empty() {
        touched.extend(apply::add_members(conn, &group.id, &new, now, fx).await?);
    }
    touched.sort();
    touched.dedup();
    apply::refresh_users(conn, dir, &touched, now, fx).await
}
