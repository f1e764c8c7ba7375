//! Directory groups and their memberships. Memberships are rows (group_id,
//! member_id, member_type), so adding 1,000 members to a 100,000-member group
//! touches 1,000 rows, and reading a group without members reads none.

use std::collections::HashMap;

use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, QuerySelect,
};
use tracing::instrument;

use super::Chunk;
use super::filter::{MEMBERSHIPS, Translator};
use super::list::{ListQuery, Matches, list};
use super::users::detach_member;
use crate::domain::filter::Filter;
use crate::store::entities::{directory_groups, directory_memberships, directory_users};
use crate::store::{Result, StoreError};

pub use directory_groups::Model as MirrorGroup;

/// Rows per multi-row statement: keeps every backend under its bind-parameter limit.
const CHUNK: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemberType {
    User,
    Group,
}

impl MemberType {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberType::User => "User",
            MemberType::Group => "Group",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "User" => Some(MemberType::User),
            "Group" => Some(MemberType::Group),
            _ => None,
        }
    }
}

/// One member of a group as read back.
#[derive(Debug, Clone, PartialEq, FromQueryResult)]
pub struct Member {
    pub group_id: String,
    pub member_id: String,
    pub member_type: String,
    pub display: Option<String>,
}

#[instrument(skip_all, fields(directory_id))]
pub async fn list_groups<C: ConnectionTrait>(
    conn: &C,
    directory_id: &str,
    query: &ListQuery,
) -> Result<Matches<MirrorGroup>> {
    let select = directory_groups::Entity::find()
        .filter(directory_groups::Column::DirectoryId.eq(directory_id));
    list(
        conn,
        &super::filter::GROUPS,
        select,
        directory_groups::Column::Id,
        query,
    )
    .await
}

pub async fn find_group<C: ConnectionTrait>(
    conn: &C,
    directory_id: &str,
    id: &str,
) -> Result<MirrorGroup> {
    directory_groups::Entity::find_by_id(id.to_owned())
        .filter(directory_groups::Column::DirectoryId.eq(directory_id))
        .one(conn)
        .await?
        .ok_or(StoreError::NotFound)
}

#[instrument(skip_all, fields(directory_id = %group.directory_id, group_id = %group.id))]
pub async fn insert_group<C: ConnectionTrait>(conn: &C, group: MirrorGroup) -> Result<MirrorGroup> {
    let model: directory_groups::ActiveModel = group.into();
    Ok(model.insert(conn).await?)
}

/// Conditional update, as `users::update_user`.
#[instrument(skip_all, fields(directory_id = %group.directory_id, group_id = %group.id))]
pub async fn update_group<C: ConnectionTrait>(
    conn: &C,
    group: &MirrorGroup,
    expected_version: i64,
) -> Result<()> {
    let result = directory_groups::Entity::update_many()
        .col_expr(
            directory_groups::Column::DisplayName,
            Expr::val(group.display_name.clone()),
        )
        // A name written as it stands keeps its key (`users::update_user`).
        .col_expr(
            directory_groups::Column::DisplayNameFolded,
            Expr::case(
                directory_groups::Column::DisplayName.eq(group.display_name.clone()),
                Expr::col(directory_groups::Column::DisplayNameFolded),
            )
            .finally(Expr::val(group.display_name_folded.clone()))
            .into(),
        )
        .col_expr(
            directory_groups::Column::ExternalId,
            Expr::val(group.external_id.clone()),
        )
        .col_expr(
            directory_groups::Column::Data,
            Expr::val(group.data.clone()),
        )
        .col_expr(directory_groups::Column::Version, Expr::val(group.version))
        .col_expr(
            directory_groups::Column::UpdatedAt,
            Expr::val(group.updated_at),
        )
        .filter(directory_groups::Column::Id.eq(group.id.clone()))
        .filter(directory_groups::Column::DirectoryId.eq(group.directory_id.clone()))
        .filter(directory_groups::Column::Version.eq(expected_version))
        .exec(conn)
        .await?;
    if result.rows_affected == 1 {
        Ok(())
    } else {
        Err(StoreError::VersionMismatch)
    }
}

/// Delete a group, its own memberships, and its membership in other groups.
#[instrument(skip_all, fields(directory_id, group_id = id))]
pub async fn delete_group<C: ConnectionTrait>(
    conn: &C,
    directory_id: &str,
    id: &str,
    now: i64,
) -> Result<()> {
    directory_memberships::Entity::delete_many()
        .filter(directory_memberships::Column::GroupId.eq(id))
        .filter(directory_memberships::Column::DirectoryId.eq(directory_id))
        .exec(conn)
        .await?;
    let deleted = directory_groups::Entity::delete_many()
        .filter(directory_groups::Column::Id.eq(id))
        .filter(directory_groups::Column::DirectoryId.eq(directory_id))
        .exec(conn)
        .await?;
    if deleted.rows_affected == 0 {
        return Err(StoreError::NotFound);
    }
    detach_member(conn, directory_id, id, now).await
}

/// Which of `ids` exist in this directory, and as what. Ids of other directories
/// are simply not found, so a member reference never crosses directories.
pub async fn resolve_members<C: ConnectionTrait>(
    conn: &C,
    directory_id: &str,
    ids: &[String],
) -> Result<HashMap<String, MemberType>> {
    let mut found = HashMap::new();
    for chunk in ids.chunks(CHUNK) {
        let users: Vec<String> = directory_users::Entity::find()
            .select_only()
            .column(directory_users::Column::Id)
            .filter(directory_users::Column::DirectoryId.eq(directory_id))
            .filter(directory_users::Column::Id.is_in(chunk.iter().cloned()))
            .into_tuple()
            .all(conn)
            .await?;
        found.extend(users.into_iter().map(|id| (id, MemberType::User)));
        let groups: Vec<String> = directory_groups::Entity::find()
            .select_only()
            .column(directory_groups::Column::Id)
            .filter(directory_groups::Column::DirectoryId.eq(directory_id))
            .filter(directory_groups::Column::Id.is_in(chunk.iter().cloned()))
            .into_tuple()
            .all(conn)
            .await?;
        found.extend(groups.into_iter().map(|id| (id, MemberType::Group)));
    }
    Ok(found)
}

/// A member to add: its id, what it is, and the display its client sent.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMember {
    pub id: String,
    pub kind: MemberType,
    pub display: Option<String>,
}

/// Add members; ones already present are left as they are. Returns how many
/// rows were new.
pub async fn add_members<C: ConnectionTrait>(
    conn: &C,
    directory_id: &str,
    group_id: &str,
    members: &[NewMember],
    now: i64,
) -> Result<u64> {
    let mut added = 0;
    for chunk in members.chunks(CHUNK) {
        let rows = chunk.iter().map(|m| directory_memberships::ActiveModel {
            directory_id: Set(directory_id.to_owned()),
            group_id: Set(group_id.to_owned()),
            member_id: Set(m.id.clone()),
            member_type: Set(m.kind.as_str().to_owned()),
            display: Set(m.display.clone()),
            created_at: Set(now),
        });
        let result = directory_memberships::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([
                    directory_memberships::Column::GroupId,
                    directory_memberships::Column::MemberId,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(conn)
            .await?;
        added += result;
    }
    Ok(added)
}

pub async fn remove_members<C: ConnectionTrait>(
    conn: &C,
    group_id: &str,
    member_ids: &[String],
) -> Result<u64> {
    let mut removed = 0;
    for chunk in member_ids.chunks(CHUNK) {
        let result = directory_memberships::Entity::delete_many()
            .filter(directory_memberships::Column::GroupId.eq(group_id))
            .filter(directory_memberships::Column::MemberId.is_in(chunk.iter().cloned()))
            .exec(conn)
            .await?;
        removed += result.rows_affected;
    }
    Ok(removed)
}

/// Remove the members matching a filter over `value` / `type` (PATCH
/// `remove members[type eq "Group"]`), as SQL.
pub async fn remove_members_where<C: ConnectionTrait>(
    conn: &C,
    group_id: &str,
    filter: &Filter,
) -> Result<u64> {
    let translator = Translator::new(conn.get_database_backend(), &MEMBERSHIPS);
    let result = directory_memberships::Entity::delete_many()
        .filter(directory_memberships::Column::GroupId.eq(group_id))
        .filter(translator.condition(filter))
        .exec(conn)
        .await?;
    Ok(result.rows_affected)
}

pub async fn remove_all_members<C: ConnectionTrait>(conn: &C, group_id: &str) -> Result<u64> {
    let result = directory_memberships::Entity::delete_many()
        .filter(directory_memberships::Column::GroupId.eq(group_id))
        .exec(conn)
        .await?;
    Ok(result.rows_affected)
}

/// The ids of a group's members.
pub async fn member_ids<C: ConnectionTrait>(
    conn: &C,
    group_id: &str,
) -> Result<std::collections::HashSet<String>> {
    let ids: Vec<String> = directory_memberships::Entity::find()
        .select_only()
        .column(directory_memberships::Column::MemberId)
        .filter(directory_memberships::Column::GroupId.eq(group_id))
        .into_tuple()
        .all(conn)
        .await?;
    Ok(ids.into_iter().collect())
}

/// Bump a group's version after a membership-only change.
pub async fn touch_group<C: ConnectionTrait>(conn: &C, group_id: &str, now: i64) -> Result<()> {
    directory_groups::Entity::update_many()
        .col_expr(
            directory_groups::Column::Version,
            Expr::col(directory_groups::Column::Version).add(1),
        )
        .col_expr(directory_groups::Column::UpdatedAt, Expr::val(now))
        .filter(directory_groups::Column::Id.eq(group_id))
        .exec(conn)
        .await?;
    Ok(())
}

/// One chunk of the members of the groups `chunk.owners`, in (group id,
/// member id) order: the primary key's, so each chunk is one index range
/// however large the group.
pub async fn members_of<C: ConnectionTrait>(conn: &C, chunk: Chunk<'_>) -> Result<Vec<Member>> {
    use directory_memberships::Column;
    let mut select = directory_memberships::Entity::find()
        .select_only()
        .column(Column::GroupId)
        .column(Column::MemberId)
        .column(Column::MemberType)
        .column(Column::Display);
    // One group is an equality, so a continued read is a plain range on
    // the key (`group_id = ? AND member_id > ?`) on either backend.
    select = match chunk.owners {
        [] => return Ok(Vec::new()),
        [one] => select.filter(Column::GroupId.eq(one.as_str())),
        many => select.filter(Column::GroupId.is_in(many.iter().cloned())),
    };
    if let Some(after) = chunk.after_owner {
        select = select.filter(Column::GroupId.gt(after));
    }
    if let Some(after) = chunk.after_key {
        select = select.filter(Column::MemberId.gt(after));
    }
    Ok(select
        .order_by_asc(Column::GroupId)
        .order_by_asc(Column::MemberId)
        .limit(chunk.limit)
        .into_model::<Member>()
        .all(conn)
        .await?)
}

/// Which of these ids are members of the group now.
pub async fn members_among<C: ConnectionTrait>(
    conn: &C,
    group_id: &str,
    ids: &[String],
) -> Result<std::collections::HashSet<String>> {
    let mut out = std::collections::HashSet::new();
    for chunk in ids.chunks(CHUNK) {
        let found: Vec<String> = directory_memberships::Entity::find()
            .select_only()
            .column(directory_memberships::Column::MemberId)
            .filter(directory_memberships::Column::GroupId.eq(group_id))
            .filter(directory_memberships::Column::MemberId.is_in(chunk.iter().cloned()))
            .into_tuple()
            .all(conn)
            .await?;
        out.extend(found);
    }
    Ok(out)
}
