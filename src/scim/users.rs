//! `/Users` as an [`Endpoint`]: a user's row (userName folded, primary
//! email), its groups in the representation, and how a write reaches the
//! engine. The handlers are `scim::endpoint`'s.

use serde_json::{Map, Value};

use super::endpoint::{Edit, Endpoint};
use super::error::ScimError;
use super::render::{self, Parts};
use super::resource::Canonical;
use super::schema::{ResourceType, USER_RESOURCE};
use super::snapshot;
use super::write::Failed;
use super::{check_indexed_len, now_ms};
use crate::domain::names::{self, UserName};
use crate::reconcile::unit::Unit;
use crate::store::mirror::Chunk;
use crate::store::mirror::list::{ListQuery, Matches};
use crate::store::mirror::users::{self as store_users, GroupOfUser, MirrorUser};
use crate::store::{Conn, StoreError};

/// RFC 7643 §4.1.1 leaves an absent `active` to the provider: an IdP that
/// provisions a user without saying otherwise means an active one. The default
/// is written on create and replace (POST, PUT), so the representation shows
/// what filters match; a PATCH that removes `active` is honoured (RFC 7644
/// §3.5.2.2, scim2-tester's check_remove_attribute).
fn default_active(data: &mut Map<String, Value>) {
    if !data.contains_key("active") {
        data.insert("active".into(), Value::Bool(true));
    }
}

/// The row for a user from its canonical data.
fn user_row(
    directory_id: &str,
    id: &str,
    data: Map<String, Value>,
    version: i64,
    created_at: i64,
    updated_at: i64,
) -> Result<MirrorUser, ScimError> {
    let user_name = data
        .get("userName")
        .and_then(Value::as_str)
        .ok_or_else(|| ScimError::invalid_value("userName is required"))?;
    let user_name =
        UserName::parse(user_name).map_err(|e| ScimError::invalid_value(e.to_string()))?;
    let text = |key: &str| data.get(key).and_then(Value::as_str).map(str::to_owned);
    let external_id = text("externalId");
    let primary_email = primary_email(&data)?;
    check_indexed_len("userName", user_name.as_str())?;
    check_indexed_len("userName", user_name.folded())?;
    check_indexed_len("externalId", external_id.as_deref().unwrap_or_default())?;
    check_indexed_len(
        "the primary emails.value",
        primary_email.as_deref().unwrap_or_default(),
    )?;
    Ok(MirrorUser {
        id: id.to_owned(),
        directory_id: directory_id.to_owned(),
        user_name: user_name.as_str().to_owned(),
        user_name_folded: user_name.folded().to_owned(),
        external_id,
        display_name: text("displayName"),
        primary_email,
        active: data.get("active").and_then(Value::as_bool).unwrap_or(true),
        data: Value::Object(data),
        version,
        created_at,
        updated_at,
    })
}

/// The primary email (or the first, as OneLogin may flag none, L11),
/// folded: the application user's address, which look-alikes may not share
/// (`names::check_visible`).
fn primary_email(data: &Map<String, Value>) -> Result<Option<String>, ScimError> {
    let Some(emails) = data.get("emails").and_then(Value::as_array) else {
        return Ok(None);
    };
    let Some(value) = emails
        .iter()
        .find(|e| e.get("primary").and_then(Value::as_bool) == Some(true))
        .or_else(|| emails.first())
        .and_then(|e| e.get("value"))
        .and_then(Value::as_str)
    else {
        return Ok(None);
    };
    names::check_visible("the primary emails.value", value)
        .map_err(|e| ScimError::invalid_value(e.to_string()))?;
    Ok(Some(names::fold(value)))
}

/// A unique-index refusal is the client's duplicate userName (409 uniqueness).
fn conflict_on_user_name(err: StoreError, user: &MirrorUser) -> Failed {
    match err {
        StoreError::Conflict(_) => ScimError::uniqueness(format!(
            "userName {} is already taken in this directory (compared as folded: case, \
             width and compatibility forms ignored)",
            crate::domain::text::quoted(&user.user_name)
        ))
        .into(),
        other => other.into(),
    }
}

/// `/Users`.
pub struct Users;

impl Endpoint for Users {
    type Row = MirrorUser;
    type New = MirrorUser;

    const TYPE: &'static ResourceType = &USER_RESOURCE;

    fn id(row: &MirrorUser) -> &str {
        &row.id
    }

    fn version(row: &MirrorUser) -> i64 {
        row.version
    }

    fn data(row: &MirrorUser) -> &Value {
        &row.data
    }

    fn location(base_url: &str, id: &str) -> String {
        render::user_location(base_url, id)
    }

    async fn find<C: Conn>(
        conn: &C,
        directory_id: &str,
        id: &str,
    ) -> Result<MirrorUser, StoreError> {
        store_users::find_user(conn, directory_id, id).await
    }

    async fn list<C: Conn>(
        conn: &C,
        directory_id: &str,
        query: &ListQuery,
    ) -> Result<Matches<MirrorUser>, StoreError> {
        store_users::list_users(conn, directory_id, query).await
    }

    /// A user's groups.
    type Related = GroupOfUser;
    const RELATED: &'static str = "groups";
    const CREATED_WITH_RELATED: bool = false;

    async fn related<C: Conn>(
        conn: &C,
        directory_id: &str,
        chunk: Chunk<'_>,
    ) -> Result<Vec<GroupOfUser>, StoreError> {
        store_users::groups_of_users(conn, directory_id, chunk).await
    }

    fn owner(group: &GroupOfUser) -> &str {
        &group.member_id
    }

    /// A user's groups come in the order of their folded names.
    fn related_key(group: &GroupOfUser) -> &str {
        &group.display_name_folded
    }

    fn render(base_url: &str, user: &MirrorUser) -> Parts {
        render::user(base_url, user)
    }

    fn render_related(base_url: &str, group: &GroupOfUser) -> Value {
        render::group_of_user(base_url, group)
    }

    fn new_resource(
        directory_id: &str,
        id: &str,
        canonical: Canonical,
        now: i64,
    ) -> Result<MirrorUser, ScimError> {
        let mut data = canonical.data;
        default_active(&mut data);
        user_row(directory_id, id, data, 1, now, now)
    }

    async fn insert(unit: &mut Unit, row: &MirrorUser) -> Result<MirrorUser, Failed> {
        let saved = store_users::insert_user(unit.conn(), row.clone())
            .await
            .map_err(|e| conflict_on_user_name(e, row))?;
        snapshot::user_written(unit, &saved);
        Ok(saved)
    }

    /// PUT replaces the whole resource, so the create-time default applies
    /// (RFC 7644 §3.5.1 lets the provider assign defaults to omitted attributes).
    fn replacement(canonical: Canonical) -> Edit {
        let mut data = canonical.data;
        default_active(&mut data);
        Edit {
            data,
            members: Vec::new(),
        }
    }

    async fn update(
        unit: &mut Unit,
        current: MirrorUser,
        edit: Edit,
    ) -> Result<MirrorUser, Failed> {
        if !edit.members.is_empty() {
            return Err(ScimError::invalid_path("users have no members").into());
        }
        if Value::Object(edit.data.clone()) == current.data {
            // Nothing changed: no new version, no write (idempotent
            // re-sends); the engine still sees the user.
            snapshot::user_written(unit, &current);
            return Ok(current);
        }
        let next = user_row(
            &current.directory_id,
            &current.id,
            edit.data,
            current.version + 1,
            current.created_at,
            now_ms().max(current.updated_at),
        )?;
        store_users::update_user(unit.conn(), &next, current.version)
            .await
            .map_err(|err| conflict_on_user_name(err, &next))?;
        snapshot::user_written(unit, &next);
        Ok(next)
    }

    async fn remove(unit: &mut Unit, current: MirrorUser) -> Result<(), Failed> {
        let (directory_id, id) = (&current.directory_id, &current.id);
        // The directory's groups lose the user in the mirror; the app
        // groups follow.
        let groups = store_users::group_ids_of(unit.conn(), directory_id, id).await?;
        store_users::delete_user(unit.conn(), directory_id, id, unit.now()).await?;
        snapshot::user_removed(unit, directory_id, id, &groups);
        Ok(())
    }
}
