//! `/Groups` as an [`Endpoint`]: a group's row (displayName folded) and its
//! members. Members are rows: they are read only when the response includes
//! them (E15) and changed by row operations, never by rewriting a list. The
//! handlers are `scim::endpoint`'s.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::check_indexed_len;
use super::endpoint::{Edit, Endpoint};
use super::error::ScimError;
use super::patch::MemberChange;
use super::render::{self, Parts};
use super::resource::{Canonical, MemberRef};
use super::schema::{GROUP_RESOURCE, ResourceType};
use super::snapshot;
use super::write::Failed;
use crate::domain::names::GroupName;
use crate::reconcile::model::{GroupChange, MemberChanges};
use crate::reconcile::unit::Unit;
use crate::store::mirror::Chunk;
use crate::store::mirror::groups::{self as store_groups, Member, MirrorGroup, NewMember};
use crate::store::mirror::list::{ListQuery, Matches};
use crate::store::{Conn, StoreError};

fn group_row(
    directory_id: &str,
    id: &str,
    data: Map<String, Value>,
    version: i64,
    created_at: i64,
    updated_at: i64,
) -> Result<MirrorGroup, ScimError> {
    let name = data
        .get("displayName")
        .and_then(Value::as_str)
        .ok_or_else(|| ScimError::invalid_value("displayName is required"))?;
    let name = GroupName::parse(name).map_err(|e| ScimError::invalid_value(e.to_string()))?;
    let external_id = data
        .get("externalId")
        .and_then(Value::as_str)
        .map(str::to_owned);
    check_indexed_len("displayName", name.as_str())?;
    check_indexed_len("displayName", name.folded())?;
    check_indexed_len("externalId", external_id.as_deref().unwrap_or_default())?;
    Ok(MirrorGroup {
        id: id.to_owned(),
        directory_id: directory_id.to_owned(),
        display_name: name.as_str().to_owned(),
        display_name_folded: name.folded().to_owned(),
        external_id,
        data: Value::Object(data),
        version,
        created_at,
        updated_at,
    })
}

/// A unique-index refusal is the client's duplicate displayName (409 uniqueness).
fn conflict_on_display_name(err: StoreError, group: &MirrorGroup) -> Failed {
    match err {
        StoreError::Conflict(_) => ScimError::uniqueness(format!(
            "a group named {} already exists in this directory (compared as folded: case, \
             width and compatibility forms ignored)",
            crate::domain::text::quoted(&group.display_name)
        ))
        .into(),
        other => other.into(),
    }
}

/// The members among `refs` that exist in this directory, with their types.
/// References to nothing (a deleted user, another directory's id, Microsoft's
/// test's `"string id 1"`, M7) are skipped: nothing outside the directory is
/// ever linked, and the client's other changes still apply. A group never
/// contains itself.
async fn existing_members<C: Conn>(
    conn: &C,
    directory_id: &str,
    group_id: &str,
    refs: &[MemberRef],
) -> Result<Vec<NewMember>, ScimError> {
    let mut seen = HashSet::new();
    let wanted: Vec<(String, Option<String>)> = refs
        .iter()
        .filter_map(|r| {
            let id = uuid::Uuid::parse_str(&r.value)
                .ok()?
                .hyphenated()
                .to_string();
            Some((id, r.display.clone()))
        })
        .filter(|(id, _)| id != group_id && seen.insert(id.clone()))
        .collect();
    let ids: Vec<String> = wanted.iter().map(|(id, _)| id.clone()).collect();
    let found = store_groups::resolve_members(conn, directory_id, &ids).await?;
    let skipped = refs.len() - found.len();
    if skipped > 0 {
        tracing::debug!(
            skipped,
            "member references that name nothing in this directory were skipped"
        );
    }
    Ok(wanted
        .into_iter()
        .filter_map(|(id, display)| {
            found.get(&id).map(|kind| NewMember {
                id,
                kind: *kind,
                display,
            })
        })
        .collect())
}

/// Apply membership changes in order. Returns how many rows changed, and the
/// directory users whose membership may have changed (for the engine).
async fn apply_member_changes<C: Conn>(
    conn: &C,
    directory_id: &str,
    group_id: &str,
    changes: &[MemberChange],
    now: i64,
) -> Result<(u64, Vec<String>), ScimError> {
    let mut changed = 0;
    let mut touched: Vec<String> = Vec::new();
    for change in changes {
        changed += match change {
            // Only members whose membership changes are touched: the
            // engine hears of no add of a member or removal of a stranger.
            MemberChange::Add(refs) => {
                let members = existing_members(conn, directory_id, group_id, refs).await?;
                let ids: Vec<String> = members.iter().map(|m| m.id.clone()).collect();
                let present = store_groups::members_among(conn, group_id, &ids).await?;
                touched.extend(ids.into_iter().filter(|id| !present.contains(id)));
                store_groups::add_members(conn, directory_id, group_id, &members, now).await?
            }
            MemberChange::Remove(ids) => {
                let present = store_groups::members_among(conn, group_id, ids).await?;
                touched.extend(present);
                store_groups::remove_members(conn, group_id, ids).await?
            }
            MemberChange::RemoveWhere(filter) => {
                touched.extend(store_groups::member_ids(conn, group_id).await?);
                store_groups::remove_members_where(conn, group_id, filter).await?
            }
            MemberChange::RemoveAll => {
                touched.extend(store_groups::member_ids(conn, group_id).await?);
                store_groups::remove_all_members(conn, group_id).await?
            }
            MemberChange::Replace(refs) => {
                // Diff against the current members so an identical list is a
                // no-op (Okta re-pushes the full list, O9) and only the
                // difference is written.
                let wanted = existing_members(conn, directory_id, group_id, refs).await?;
                let current = store_groups::member_ids(conn, group_id).await?;
                let wanted_ids: HashSet<&str> = wanted.iter().map(|m| m.id.as_str()).collect();
                let gone: Vec<String> = current
                    .iter()
                    .filter(|id| !wanted_ids.contains(id.as_str()))
                    .cloned()
                    .collect();
                let new: Vec<NewMember> = wanted
                    .into_iter()
                    .filter(|m| !current.contains(&m.id))
                    .collect();
                touched.extend(gone.iter().cloned());
                touched.extend(new.iter().map(|m| m.id.clone()));
                store_groups::remove_members(conn, group_id, &gone).await?
                    + store_groups::add_members(conn, directory_id, group_id, &new, now).await?
            }
        };
    }
    touched.sort();
    touched.dedup();
    Ok((changed, touched))
}

/// Split the touched directory users by where the mirror left them: the
/// final state decides, whatever order the operations came in.
async fn member_changes<C: Conn>(
    conn: &C,
    group_id: &str,
    touched: Vec<String>,
) -> Result<MemberChanges, ScimError> {
    let present = store_groups::members_among(conn, group_id, &touched).await?;
    let (added, removed) = touched.into_iter().partition(|id| present.contains(id));
    Ok(MemberChanges { added, removed })
}

/// `/Groups`.
pub struct Groups;

impl Endpoint for Groups {
    type Row = MirrorGroup;
    /// The row and the members the body names (none when it has no `members`).
    type New = (MirrorGroup, Option<Vec<MemberRef>>);

    const TYPE: &'static ResourceType = &GROUP_RESOURCE;

    fn id(row: &MirrorGroup) -> &str {
        &row.id
    }

    fn version(row: &MirrorGroup) -> i64 {
        row.version
    }

    fn data(row: &MirrorGroup) -> &Value {
        &row.data
    }

    fn location(base_url: &str, id: &str) -> String {
        render::group_location(base_url, id)
    }

    async fn find<C: Conn>(
        conn: &C,
        directory_id: &str,
        id: &str,
    ) -> Result<MirrorGroup, StoreError> {
        store_groups::find_group(conn, directory_id, id).await
    }

    async fn list<C: Conn>(
        conn: &C,
        directory_id: &str,
        query: &ListQuery,
    ) -> Result<Matches<MirrorGroup>, StoreError> {
        store_groups::list_groups(conn, directory_id, query).await
    }

    /// A group's members.
    type Related = Member;
    const RELATED: &'static str = "members";
    const CREATED_WITH_RELATED: bool = true;

    async fn related<C: Conn>(
        conn: &C,
        _directory_id: &str,
        chunk: Chunk<'_>,
    ) -> Result<Vec<Member>, StoreError> {
        store_groups::members_of(conn, chunk).await
    }

    fn owner(member: &Member) -> &str {
        &member.group_id
    }

    /// Members come in member id order (the membership rows' key).
    fn related_key(member: &Member) -> &str {
        &member.member_id
    }

    fn render(base_url: &str, group: &MirrorGroup) -> Parts {
        render::group(base_url, group)
    }

    fn render_related(base_url: &str, member: &Member) -> Value {
        render::member(base_url, member)
    }

    fn new_resource(
        directory_id: &str,
        id: &str,
        canonical: Canonical,
        now: i64,
    ) -> Result<Self::New, ScimError> {
        let row = group_row(directory_id, id, canonical.data, 1, now, now)?;
        Ok((row, canonical.members))
    }

    /// The group and its members, in the one transaction.
    async fn insert(unit: &mut Unit, (row, refs): &Self::New) -> Result<MirrorGroup, Failed> {
        let saved = store_groups::insert_group(unit.conn(), row.clone())
            .await
            .map_err(|e| conflict_on_display_name(e, row))?;
        let (directory_id, id) = (&saved.directory_id, &saved.id);
        if let Some(refs) = refs {
            let members = existing_members(unit.conn(), directory_id, id, refs).await?;
            let now = unit.now();
            store_groups::add_members(unit.conn(), directory_id, id, &members, now).await?;
        }
        // A new app group adopts the members its directory group has
        // in the mirror.
        let change = GroupChange::Upsert(snapshot::group(&saved));
        let members = MemberChanges::default();
        snapshot::group_changed(unit, directory_id, id, change, members);
        Ok(saved)
    }

    /// PUT replaces: members absent from the body means no members.
    fn replacement(canonical: Canonical) -> Edit {
        Edit {
            data: canonical.data,
            members: vec![MemberChange::Replace(canonical.members.unwrap_or_default())],
        }
    }

    /// The data and the members in one job.
    async fn update(
        unit: &mut Unit,
        current: MirrorGroup,
        edit: Edit,
    ) -> Result<MirrorGroup, Failed> {
        let (directory_id, id) = (&current.directory_id, &current.id);
        let now = unit.now().max(current.updated_at);
        let (members_changed, touched) =
            apply_member_changes(unit.conn(), directory_id, id, &edit.members, now).await?;
        let data_changed = Value::Object(edit.data.clone()) != current.data;
        if !data_changed && members_changed == 0 {
            // Nothing changed: no new version (idempotent re-sends).
            return Ok(current);
        }
        let next = group_row(
            directory_id,
            id,
            edit.data,
            current.version + 1,
            current.created_at,
            now,
        )?;
        store_groups::update_group(unit.conn(), &next, current.version)
            .await
            .map_err(|err| conflict_on_display_name(err, &next))?;
        let members = member_changes(unit.conn(), id, touched).await?;
        let change = GroupChange::Upsert(snapshot::group(&next));
        snapshot::group_changed(unit, directory_id, id, change, members);
        Ok(next)
    }

    async fn remove(unit: &mut Unit, current: MirrorGroup) -> Result<(), Failed> {
        let (directory_id, id) = (&current.directory_id, &current.id);
        store_groups::delete_group(unit.conn(), directory_id, id, unit.now()).await?;
        let removed = GroupChange::Removed;
        let members = MemberChanges::default();
        snapshot::group_changed(unit, directory_id, id, removed, members);
        Ok(())
    }
}
