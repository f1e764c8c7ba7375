//! App groups (one per directory group) and their members (app users), and
//! the mirror's memberships as app groups see them.

use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, QuerySelect,
};

use super::CHUNK;
use crate::store::Result;
use crate::store::entities::{directory_memberships, group_members, groups};

pub use groups::Model as AppGroup;

#[derive(Debug, Clone, FromQueryResult)]
pub struct GroupKey {
    pub user_id: String,
    pub name: String,
    pub external_id: Option<String>,
}

/// The app groups of one directory that these app users are members of.
pub async fn group_keys_of_users<C: ConnectionTrait>(
    conn: &C,
    directory_id: &str,
    app_user_ids: &[String],
) -> Result<Vec<GroupKey>> {
    let mut out = Vec::new();
    for chunk in app_user_ids.chunks(CHUNK) {
        out.extend(
            group_members::Entity::find()
                .select_only()
                .column(group_members::Column::UserId)
                .column(groups::Column::Name)
                .column(groups::Column::ExternalId)
                .join(
                    sea_orm::JoinType::InnerJoin,
                    group_members::Entity::belongs_to(groups::Entity)
                        .from(group_members::Column::GroupId)
                        .to(groups::Column::Id)
                        .into(),
                )
                .filter(groups::Column::DirectoryId.eq(directory_id))
                .filter(group_members::Column::UserId.is_in(chunk.iter().cloned()))
                .into_model::<GroupKey>()
                .all(conn)
                .await?,
        );
    }
    Ok(out)
}

pub async fn group_by_source<C: ConnectionTrait>(
    conn: &C,
    directory_id: &str,
    source_id: &str,
) -> Result<Option<AppGroup>> {
    Ok(groups::Entity::find()
        .filter(groups::Column::DirectoryId.eq(directory_id))
        .filter(groups::Column::SourceId.eq(source_id))
        .one(conn)
        .await?)
}

/// The directory's ids for the app groups of one directory.
pub async fn group_source_ids<C: ConnectionTrait>(
    conn: &C,
    directory_id: &str,
) -> Result<Vec<String>> {
    Ok(groups::Entity::find()
        .select_only()
        .column(groups::Column::SourceId)
        .filter(groups::Column::DirectoryId.eq(directory_id))
        .into_tuple()
        .all(conn)
        .await?)
}

pub async fn groups_of_tenant<C: ConnectionTrait>(
    conn: &C,
    tenant_id: &str,
) -> Result<Vec<AppGroup>> {
    Ok(groups::Entity::find()
        .filter(groups::Column::TenantId.eq(tenant_id))
        .order_by_asc(groups::Column::Id)
        .all(conn)
        .await?)
}

pub async fn insert_group<C: ConnectionTrait>(conn: &C, group: AppGroup) -> Result<()> {
    let model: groups::ActiveModel = group.into();
    groups::Entity::insert(model)
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

pub async fn update_group<C: ConnectionTrait>(conn: &C, group: &AppGroup) -> Result<()> {
    let model: groups::ActiveModel = group.clone().into();
    groups::Entity::update(model.reset_all()).exec(conn).await?;
    Ok(())
}

pub async fn delete_group<C: ConnectionTrait>(conn: &C, id: &str) -> Result<()> {
    groups::Entity::delete_by_id(id.to_owned())
        .exec(conn)
        .await?;
    Ok(())
}

/// A directory's app groups, in id order.
pub async fn groups_of_directory<C: ConnectionTrait>(
    conn: &C,
    directory_id: &str,
) -> Result<Vec<AppGroup>> {
    Ok(groups::Entity::find()
        .filter(groups::Column::DirectoryId.eq(directory_id))
        .order_by_asc(groups::Column::Id)
        .all(conn)
        .await?)
}

/// The app user ids in a group.
pub async fn member_ids<C: ConnectionTrait>(conn: &C, group_id: &str) -> Result<Vec<String>> {
    #[derive(FromQueryResult)]
    struct Row {
        user_id: String,
    }
    Ok(group_members::Entity::find()
        .select_only()
        .column(group_members::Column::UserId)
        .filter(group_members::Column::GroupId.eq(group_id))
        .order_by_asc(group_members::Column::UserId)
        .into_model::<Row>()
        .all(conn)
        .await?
        .into_iter()
        .map(|r| r.user_id)
        .collect())
}

/// Which of these app users are already in the group.
pub async fn members_among<C: ConnectionTrait>(
    conn: &C,
    group_id: &str,
    user_ids: &[String],
) -> Result<Vec<String>> {
    #[derive(FromQueryResult)]
    struct Row {
        user_id: String,
    }
    let mut out = Vec::new();
    for chunk in user_ids.chunks(CHUNK) {
        out.extend(
            group_members::Entity::find()
                .select_only()
                .column(group_members::Column::UserId)
                .filter(group_members::Column::GroupId.eq(group_id))
                .filter(group_members::Column::UserId.is_in(chunk.iter().cloned()))
                .into_model::<Row>()
                .all(conn)
                .await?
                .into_iter()
                .map(|r| r.user_id),
        );
    }
    Ok(out)
}

pub async fn add_group_members<C: ConnectionTrait>(
    conn: &C,
    group_id: &str,
    user_ids: &[String],
    now: i64,
) -> Result<()> {
    for chunk in user_ids.chunks(CHUNK / 3) {
        let rows = chunk.iter().map(|id| group_members::ActiveModel {
            group_id: Set(group_id.to_owned()),
            user_id: Set(id.clone()),
            created_at: Set(now),
        });
        group_members::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([
                    group_members::Column::GroupId,
                    group_members::Column::UserId,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

pub async fn remove_group_members<C: ConnectionTrait>(
    conn: &C,
    group_id: &str,
    user_ids: &[String],
) -> Result<()> {
    for chunk in user_ids.chunks(CHUNK) {
        group_members::Entity::delete_many()
            .filter(group_members::Column::GroupId.eq(group_id))
            .filter(group_members::Column::UserId.is_in(chunk.iter().cloned()))
            .exec(conn)
            .await?;
    }
    Ok(())
}

/// Mirror user ids of a directory group's user members (for a group the
/// engine sees for the first time).
pub async fn mirror_user_members<C: ConnectionTrait>(
    conn: &C,
    group_source_id: &str,
) -> Result<Vec<String>> {
    #[derive(FromQueryResult)]
    struct Row {
        member_id: String,
    }
    Ok(directory_memberships::Entity::find()
        .select_only()
        .column(directory_memberships::Column::MemberId)
        .filter(directory_memberships::Column::GroupId.eq(group_source_id))
        .filter(directory_memberships::Column::MemberType.eq("User"))
        .into_model::<Row>()
        .all(conn)
        .await?
        .into_iter()
        .map(|r| r.member_id)
        .collect())
}

#[derive(Debug, Clone, FromQueryResult)]
pub struct MirrorMembership {
    pub member_id: String,
    pub group_id: String,
}

/// For directory users newly linked: the app groups (of this directory) whose
/// directory group already holds them in the mirror. A user linked late
/// (skipped at first, say) joins the groups its directory put it in.
pub async fn mirror_groups_of<C: ConnectionTrait>(
    conn: &C,
    directory_id: &str,
    source_ids: &[String],
) -> Result<Vec<MirrorMembership>> {
    let mut out = Vec::new();
    for chunk in source_ids.chunks(CHUNK) {
        out.extend(
            directory_memberships::Entity::find()
                .select_only()
                .column(directory_memberships::Column::MemberId)
                .column_as(groups::Column::Id, "group_id")
                .join(
                    sea_orm::JoinType::InnerJoin,
                    directory_memberships::Entity::belongs_to(groups::Entity)
                        .from(directory_memberships::Column::GroupId)
                        .to(groups::Column::SourceId)
                        .into(),
                )
                .filter(directory_memberships::Column::DirectoryId.eq(directory_id))
                .filter(groups::Column::DirectoryId.eq(directory_id))
                .filter(directory_memberships::Column::MemberId.is_in(chunk.iter().cloned()))
                .into_model::<MirrorMembership>()
                .all(conn)
                .await?,
        );
    }
    Ok(out)
}
