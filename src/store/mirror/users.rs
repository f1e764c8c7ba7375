//! Directory users: the mirror of what a directory asserted about each user.

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter,
    QueryOrder, QuerySelect,
};
use tracing::instrument;

use super::Chunk;
use super::list::{ListQuery, Matches, list};
use crate::store::entities::{directory_groups, directory_memberships, directory_users};
use crate::store::{Result, StoreError};

pub use directory_users::Model as MirrorUser;

#[instrument(skip_all, fields(directory_id))]
pub async fn list_users<C: ConnectionTrait>(
    conn: &C,
    directory_id: &str,
    query: &ListQuery,
) -> Result<Matches<MirrorUser>> {
    let select = directory_users::Entity::find()
        .filter(directory_users::Column::DirectoryId.eq(directory_id));
    list(
        conn,
        &super::filter::USERS,
        select,
        directory_users::Column::Id,
        query,
    )
    .await
}

/// A directory's users after `after` (an id; None: from the first), at
/// most `limit`, in id order: a keyset page for a pass over the directory.
pub async fn users_after<C: ConnectionTrait>(
    conn: &C,
    directory_id: &str,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<MirrorUser>> {
    let mut select = directory_users::Entity::find()
        .filter(directory_users::Column::DirectoryId.eq(directory_id));
    if let Some(after) = after {
        select = select.filter(directory_users::Column::Id.gt(after));
    }
    Ok(select
        .order_by_asc(directory_users::Column::Id)
        .limit(limit)
        .all(conn)
        .await?)
}

pub async fn find_user<C: ConnectionTrait>(
    conn: &C,
    directory_id: &str,
    id: &str,
) -> Result<MirrorUser> {
    directory_users::Entity::find_by_id(id.to_owned())
        .filter(directory_users::Column::DirectoryId.eq(directory_id))
        .one(conn)
        .await?
        .ok_or(StoreError::NotFound)
}

#[instrument(skip_all, fields(directory_id = %user.directory_id, user_id = %user.id))]
pub async fn insert_user<C: ConnectionTrait>(conn: &C, user: MirrorUser) -> Result<MirrorUser> {
    let model: directory_users::ActiveModel = user.into();
    Ok(model.insert(conn).await?)
}

/// Write `user` if the stored row still has `expected_version`; the row's
/// version must already be bumped in `user`. `VersionMismatch` means a
/// concurrent writer won and the caller should re-read.
#[instrument(skip_all, fields(directory_id = %user.directory_id, user_id = %user.id))]
pub async fn update_user<C: ConnectionTrait>(
    conn: &C,
    user: &MirrorUser,
    expected_version: i64,
) -> Result<()> {
    let result = directory_users::Entity::update_many()
        .col_expr(
            directory_users::Column::UserName,
            Expr::val(user.user_name.clone()),
        )
        // A name written as it stands keeps its key: a look-alike that an
        // older fold let coexist keeps the key `store::folds` left it, so
        // its directory can still change and deactivate it; a new name is
        // keyed by the fold of today.
        .col_expr(
            directory_users::Column::UserNameFolded,
            Expr::case(
                directory_users::Column::UserName.eq(user.user_name.clone()),
                Expr::col(directory_users::Column::UserNameFolded),
            )
            .finally(Expr::val(user.user_name_folded.clone()))
            .into(),
        )
        .col_expr(
            directory_users::Column::ExternalId,
            Expr::val(user.external_id.clone()),
        )
        .col_expr(
            directory_users::Column::DisplayName,
            Expr::val(user.display_name.clone()),
        )
        .col_expr(
            directory_users::Column::PrimaryEmail,
            Expr::val(user.primary_email.clone()),
        )
        .col_expr(directory_users::Column::Active, Expr::val(user.active))
        .col_expr(directory_users::Column::Data, Expr::val(user.data.clone()))
        .col_expr(directory_users::Column::Version, Expr::val(user.version))
        .col_expr(
            directory_users::Column::UpdatedAt,
            Expr::val(user.updated_at),
        )
        .filter(directory_users::Column::Id.eq(user.id.clone()))
        .filter(directory_users::Column::DirectoryId.eq(user.directory_id.clone()))
        .filter(directory_users::Column::Version.eq(expected_version))
        .exec(conn)
        .await?;
    if result.rows_affected == 1 {
        Ok(())
    } else {
        Err(StoreError::VersionMismatch)
    }
}

/// Delete a user and its memberships; groups that lost it get a new version.
#[instrument(skip_all, fields(directory_id, user_id = id))]
pub async fn delete_user<C: ConnectionTrait>(
    conn: &C,
    directory_id: &str,
    id: &str,
    now: i64,
) -> Result<()> {
    let deleted = directory_users::Entity::delete_many()
        .filter(directory_users::Column::Id.eq(id))
        .filter(directory_users::Column::DirectoryId.eq(directory_id))
        .exec(conn)
        .await?;
    if deleted.rows_affected == 0 {
        return Err(StoreError::NotFound);
    }
    detach_member(conn, directory_id, id, now).await
}

/// Remove `member_id` from every group of the directory, bumping their versions.
pub(super) async fn detach_member<C: ConnectionTrait>(
    conn: &C,
    directory_id: &str,
    member_id: &str,
    now: i64,
) -> Result<()> {
    let groups: Vec<String> = directory_memberships::Entity::find()
        .select_only()
        .column(directory_memberships::Column::GroupId)
        .filter(directory_memberships::Column::DirectoryId.eq(directory_id))
        .filter(directory_memberships::Column::MemberId.eq(member_id))
        .into_tuple()
        .all(conn)
        .await?;
    if groups.is_empty() {
        return Ok(());
    }
    directory_memberships::Entity::delete_many()
        .filter(directory_memberships::Column::DirectoryId.eq(directory_id))
        .filter(directory_memberships::Column::MemberId.eq(member_id))
        .exec(conn)
        .await?;
    for chunk in groups.chunks(500) {
        directory_groups::Entity::update_many()
            .col_expr(
                directory_groups::Column::Version,
                Expr::col(directory_groups::Column::Version).add(1),
            )
            .col_expr(directory_groups::Column::UpdatedAt, Expr::val(now))
            .filter(directory_groups::Column::Id.is_in(chunk.iter().cloned()))
            .exec(conn)
            .await?;
    }
    Ok(())
}

/// One group a user belongs to, for the User `groups` attribute.
#[derive(Debug, Clone, FromQueryResult)]
pub struct GroupOfUser {
    pub member_id: String,
    pub group_id: String,
    pub display_name: String,
    /// The group's place among the user's groups (unique in a directory).
    pub display_name_folded: String,
}

/// One chunk of the direct groups of the users `chunk.owners`, in (user id,
/// folded group name) order.
pub async fn groups_of_users<C: ConnectionTrait>(
    conn: &C,
    directory_id: &str,
    chunk: Chunk<'_>,
) -> Result<Vec<GroupOfUser>> {
    let member = (
        directory_memberships::Entity,
        directory_memberships::Column::MemberId,
    );
    let folded = (
        directory_groups::Entity,
        directory_groups::Column::DisplayNameFolded,
    );
    let mut select = directory_memberships::Entity::find()
        .select_only()
        .column(directory_memberships::Column::MemberId)
        .column(directory_memberships::Column::GroupId)
        .column_as(directory_groups::Column::DisplayName, "display_name")
        .column_as(
            directory_groups::Column::DisplayNameFolded,
            "display_name_folded",
        )
        .join(
            sea_orm::JoinType::InnerJoin,
            directory_memberships::Entity::belongs_to(directory_groups::Entity)
                .from(directory_memberships::Column::GroupId)
                .to(directory_groups::Column::Id)
                .into(),
        )
        .filter(directory_memberships::Column::DirectoryId.eq(directory_id));
    select = match chunk.owners {
        [] => return Ok(Vec::new()),
        [one] => select.filter(Expr::col(member).eq(one.as_str())),
        many => select.filter(Expr::col(member).is_in(many.iter().cloned())),
    };
    if let Some(after) = chunk.after_owner {
        select = select.filter(Expr::col(member).gt(after));
    }
    if let Some(after) = chunk.after_key {
        select = select.filter(Expr::col(folded).gt(after));
    }
    Ok(select
        .order_by_asc(Expr::col(member))
        .order_by_asc(Expr::col(folded))
        .limit(chunk.limit)
        .into_model::<GroupOfUser>()
        .all(conn)
        .await?)
}

/// The ids of the groups a user belongs to, by folded name (all of them: the
/// engine hears of each when the user goes).
pub async fn group_ids_of<C: ConnectionTrait>(
    conn: &C,
    directory_id: &str,
    user_id: &str,
) -> Result<Vec<String>> {
    Ok(directory_memberships::Entity::find()
        .select_only()
        .column(directory_memberships::Column::GroupId)
        .join(
            sea_orm::JoinType::InnerJoin,
            directory_memberships::Entity::belongs_to(directory_groups::Entity)
                .from(directory_memberships::Column::GroupId)
                .to(directory_groups::Column::Id)
                .into(),
        )
        .filter(directory_memberships::Column::DirectoryId.eq(directory_id))
        .filter(directory_memberships::Column::MemberId.eq(user_id))
        .order_by_asc(directory_groups::Column::DisplayNameFolded)
        .into_tuple()
        .all(conn)
        .await?)
}
