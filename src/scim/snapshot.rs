//! From the SCIM mirror to the engine: a stored user or group becomes the
//! normalized snapshot `reconcile` plans with, and every SCIM write hands its
//! change to the engine inside the write's unit of work (so a 2xx means the
//! mirror, the app identity and the events all committed).

use serde_json::{Map, Value};

use super::schema::ENTERPRISE_USER;
use crate::metrics;
use crate::reconcile::apply::{Applied, UserChange};
use crate::reconcile::listing::{Listing, ListingOptions, PAGE, Report};
use crate::reconcile::model::{
    Change, GroupChange, GroupSnapshot, MemberChanges, Profile, Snapshot,
};
use crate::reconcile::unit::Unit;
use crate::store::mirror::groups::MirrorGroup;
use crate::store::mirror::users::{self as store_users, MirrorUser};
use crate::store::{Store, StoreError};

fn text(data: &Map<String, Value>, path: &[&str]) -> Option<String> {
    let mut at = data;
    let (last, parents) = path.split_last()?;
    for key in parents {
        at = at.get(*key)?.as_object()?;
    }
    at.get(*last)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The primary photo, or the first (RFC 7643 §4.1.2 `photos`).
fn photo(data: &Map<String, Value>) -> Option<String> {
    let photos = data.get("photos")?.as_array()?;
    photos
        .iter()
        .find(|p| p.get("primary").and_then(Value::as_bool) == Some(true))
        .or_else(|| photos.first())?
        .get("value")?
        .as_str()
        .map(str::to_owned)
}

/// What a SCIM user says, as the engine's snapshot.
pub fn user(row: &MirrorUser) -> Snapshot {
    let empty = Map::new();
    let data = row.data.as_object().unwrap_or(&empty);
    Snapshot {
        external_id: row.external_id.clone(),
        email: row.primary_email.clone(),
        profile: Profile {
            given_name: text(data, &["name", "givenName"]),
            family_name: text(data, &["name", "familyName"]),
            display_name: text(data, &["displayName"]),
            avatar_url: photo(data),
            department: text(data, &[ENTERPRISE_USER, "department"]),
            title: text(data, &["title"]),
            employee_number: text(data, &[ENTERPRISE_USER, "employeeNumber"]),
            manager: text(data, &[ENTERPRISE_USER, "manager", "value"]),
            custom: Default::default(),
        },
        active: row.active,
        // The resource itself, for the directory's attribute mapping
        // (`reconcile::mapping` reads SCIM paths from it).
        document: Some(std::sync::Arc::new(row.data.clone())),
        ..Snapshot::default()
    }
}

/// What a SCIM group says, as the engine's snapshot.
pub fn group(row: &MirrorGroup) -> GroupSnapshot {
    GroupSnapshot {
        name: row.display_name.clone(),
        external_id: row.external_id.clone(),
    }
}

/// Hand a written user to the engine, planned when its unit commits (with
/// the other writes of its batch).
pub fn user_written(unit: &mut Unit, row: &MirrorUser) {
    let change = UserChange {
        source_id: row.id.clone(),
        change: Change::upsert(user(row)),
    };
    unit.user_later(&row.directory_id, change);
}

/// Count what the engine made of SCIM user changes
/// (`metrics::scim_user_write`).
pub fn count(applied: &[Applied]) {
    for a in applied {
        metrics::scim_user_write(a.outcome.as_str());
    }
}

/// Hand a group change and its membership changes to the engine, planned
/// when the write's unit commits, after the user changes before it.
pub fn group_changed(
    unit: &mut Unit,
    directory_id: &str,
    source_id: &str,
    change: GroupChange,
    members: MemberChanges,
) {
    unit.group_later(directory_id, source_id, change, members);
}

/// Hand a user the directory deleted to the engine: it leaves each of these
/// directory groups, then the removal itself, planned when the write's unit
/// commits.
pub fn user_removed(unit: &mut Unit, directory_id: &str, source_id: &str, groups: &[String]) {
    for group in groups {
        let left = MemberChanges {
            added: Vec::new(),
            removed: vec![source_id.to_owned()],
        };
        unit.members_later(directory_id, group, left);
    }
    let removal = UserChange {
        source_id: source_id.to_owned(),
        change: Change::Removed,
    };
    unit.user_later(directory_id, removal);
}

/// Apply the directory's policy again to every user the directory wrote,
/// from the mirror (no client need send anything): after its attribute
/// mapping changed, each user whose mapped values differ is a
/// `user.updated`, through the engine and its guard, as a listing that
/// names every user but misses no one. A dry run writes nothing and keeps
/// the start of its plan.
pub async fn reapply(
    store: &Store,
    directory_id: &str,
    dry_run: bool,
    now: i64,
) -> Result<Report, StoreError> {
    let options = ListingOptions {
        dry_run,
        partial: true,
        ..ListingOptions::default()
    };
    let mut listing = Listing::begin(store, directory_id, options).await?;
    let mut after: Option<String> = None;
    loop {
        let rows = store_users::users_after(
            store.connection(),
            directory_id,
            after.as_deref(),
            PAGE as u64,
        )
        .await?;
        let Some(last) = rows.last() else {
            break;
        };
        after = Some(last.id.clone());
        let users = rows.iter().map(|row| (row.id.clone(), user(row))).collect();
        listing.page(store, users, now).await?;
    }
    listing.finish(store, true, now).await
}
