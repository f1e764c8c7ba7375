//! The host application's identity: app users, the links from directory users
//! to them, app groups and their members. Batch reads take a page of keys and
//! answer in one statement, so the engine costs a few round trips per page,
//! not per user. App users are read `FOR UPDATE` on PostgreSQL, so a sync and
//! an admin action on the same user serialize instead of losing an update.

use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, QuerySelect,
};
use tracing::instrument;

use super::entities::{
    deferred_changes, directory_memberships, group_members, groups, user_links, users,
};
use super::{Result, StoreError};

pub use groups::Model as AppGroup;
pub use user_links::Model as Link;
pub use users::Model as AppUser;

/// Keys per `IN (…)` list and rows per multi-row insert: keeps every backend
/// under its bind-parameter limit.
const CHUNK: usize = 500;

/// `select` restricted to `column IN keys`, a statement per `CHUNK` keys.
async fn find_in<C: ConnectionTrait, E: EntityTrait>(
    conn: &C,
    select: sea_orm::Select<E>,
    column: E::Column,
    keys: &[String],
) -> Result<Vec<E::Model>> {
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(CHUNK) {
        out.extend(
            select
                .clone()
                .filter(column.is_in(chunk.iter().cloned()))
                .all(conn)
                .await?,
        );
    }
    Ok(out)
}

/// App users by id, locked for the rest of the transaction on PostgreSQL.
pub async fn users_by_id<C: ConnectionTrait>(conn: &C, ids: &[String]) -> Result<Vec<AppUser>> {
    find_in(
        conn,
        users::Entity::find().lock_exclusive(),
        users::Column::Id,
        ids,
    )
    .await
}

/// App users of a tenant by folded email, locked like `users_by_id`.
pub async fn users_by_email<C: ConnectionTrait>(
    conn: &C,
    tenant_id: &str,
    emails: &[String],
) -> Result<Vec<AppUser>> {
    let select = users::Entity::find()
        .filter(users::Column::TenantId.eq(tenant_id))
        .lock_exclusive();
    find_in(conn, select, users::Column::EmailFolded, emails).await
}

pub async fn user_by_email<C: ConnectionTrait>(
    conn: &C,
    tenant_id: &str,
    email_folded: &str,
) -> Result<AppUser> {
    users::Entity::find()
        .filter(users::Column::TenantId.eq(tenant_id))
        .filter(users::Column::EmailFolded.eq(email_folded))
        .lock_exclusive()
        .one(conn)
        .await?
        .ok_or(StoreError::NotFound)
}

/// A tenant's app users in id (creation) order.
pub async fn users_of_tenant<C: ConnectionTrait>(
    conn: &C,
    tenant_id: &str,
) -> Result<Vec<AppUser>> {
    Ok(users::Entity::find()
        .filter(users::Column::TenantId.eq(tenant_id))
        .order_by_asc(users::Column::Id)
        .all(conn)
        .await?)
}

pub async fn insert_users<C: ConnectionTrait>(conn: &C, rows: Vec<AppUser>) -> Result<()> {
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<users::ActiveModel> =
            rows.by_ref().take(CHUNK / 2).map(Into::into).collect();
        users::Entity::insert_many(chunk)
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

/// Overwrite an app user whose row this transaction read (and locked).
#[instrument(skip_all, fields(user_id = %user.id))]
pub async fn update_user<C: ConnectionTrait>(conn: &C, user: &AppUser) -> Result<()> {
    let model: users::ActiveModel = user.clone().into();
    let model = model.reset_all();
    users::Entity::update(model).exec(conn).await?;
    Ok(())
}

/// Move these app users off their addresses for the rest of the statement
/// sequence (a placeholder no email can be: it has no `@`), so users who
/// exchange addresses in one transaction never meet the tenant's unique
/// email index half-way.
pub async fn park_emails<C: ConnectionTrait>(conn: &C, ids: &[String]) -> Result<()> {
    use sea_orm::sea_query::Expr;
    for id in ids {
        let parked = format!("moving:{id}");
        users::Entity::update_many()
            .col_expr(users::Column::Email, Expr::value(parked.clone()))
            .col_expr(users::Column::EmailFolded, Expr::value(parked))
            .filter(users::Column::Id.eq(id.as_str()))
            .exec(conn)
            .await?;
    }
    Ok(())
}

pub async fn delete_user<C: ConnectionTrait>(conn: &C, id: &str) -> Result<()> {
    users::Entity::delete_by_id(id.to_owned())
        .exec(conn)
        .await?;
    Ok(())
}

/// Links without their snapshot JSON (NULL in its place): the engine decides
/// by `snapshot_hash` and leaves the stored snapshot alone unless it changed.
fn heads() -> sea_orm::Select<user_links::Entity> {
    use sea_orm::Iterable;
    use sea_orm::sea_query::Expr;
    let mut select = user_links::Entity::find().select_only();
    for col in user_links::Column::iter() {
        if matches!(col, user_links::Column::Snapshot) {
            select = select.column_as(Expr::cust("NULL"), "snapshot");
        } else {
            select = select.column(col);
        }
    }
    select
}

/// This directory's live links to these app users, with their snapshots.
pub async fn snapshots_of<C: ConnectionTrait>(
    conn: &C,
    directory_id: &str,
    app_user_ids: &[String],
) -> Result<Vec<Link>> {
    let select = user_links::Entity::find()
        .filter(user_links::Column::DirectoryId.eq(directory_id))
        .filter(user_links::Column::RemovedAt.is_null());
    find_in(conn, select, user_links::Column::AppUserId, app_user_ids).await
}

/// This directory's links for these source ids, with their snapshots (a
/// partial item completes over the last one).
pub async fn snapshots_by_source<C: ConnectionTrait>(
    conn: &C,
    directory_id: &str,
    source_ids: &[String],
) -> Result<Vec<Link>> {
    let select =
        user_links::Entity::find().filter(user_links::Column::DirectoryId.eq(directory_id));
    find_in(conn, select, user_links::Column::SourceId, source_ids).await
}

/// This directory's links for these source ids.
pub async fn links_by_source<C: ConnectionTrait>(
    conn: &C,
    directory_id: &str,
    source_ids: &[String],
) -> Result<Vec<Link>> {
    let select = heads().filter(user_links::Column::DirectoryId.eq(directory_id));
    find_in(conn, select, user_links::Column::SourceId, source_ids).await
}

/// Links this directory removed (SCIM DELETE) whose external id comes back:
/// an IdP that deletes and re-creates a user keeps its app user.
pub async fn removed_links_by_external_id<C: ConnectionTrait>(
    conn: &C,
    directory_id: &str,
    external_ids: &[String],
) -> Result<Vec<Link>> {
    let select = heads()
        .filter(user_links::Column::DirectoryId.eq(directory_id))
        .filter(user_links::Column::RemovedAt.is_not_null());
    find_in(conn, select, user_links::Column::ExternalId, external_ids).await
}

/// Every link (of any directory) to these app users.
pub async fn links_of_users<C: ConnectionTrait>(
    conn: &C,
    app_user_ids: &[String],
) -> Result<Vec<Link>> {
    find_in(conn, heads(), user_links::Column::AppUserId, app_user_ids).await
}

/// Links of other directories to these app users.
pub async fn links_elsewhere<C: ConnectionTrait>(
    conn: &C,
    directory_id: &str,
    app_user_ids: &[String],
) -> Result<Vec<Link>> {
    let select = heads().filter(user_links::Column::DirectoryId.ne(directory_id));
    find_in(conn, select, user_links::Column::AppUserId, app_user_ids).await
}

/// A live link of this directory as the engine last judged it, with its
/// app user's version now: what the no-op fast path compares.
#[derive(Debug, Clone, FromQueryResult)]
pub struct JudgedLink {
    pub source_id: String,
    pub app_user_id: String,
    pub snapshot_hash: String,
    pub judged: String,
    pub directory_active: bool,
    pub version: i64,
}

/// This directory's judged live links among `source_ids` whose app user no
/// other directory links and for which no change waits (one statement per
/// `CHUNK` keys, reading neither snapshots nor app user rows).
pub async fn judged_links<C: ConnectionTrait>(
    conn: &C,
    directory_id: &str,
    source_ids: &[String],
) -> Result<Vec<JudgedLink>> {
    use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
    let (l, o, d) = (Alias::new("l"), Alias::new("o"), Alias::new("d"));
    let mut out = Vec::with_capacity(source_ids.len());
    for chunk in source_ids.chunks(CHUNK) {
        let elsewhere = Query::select()
            .expr(Expr::val(1))
            .from_as(user_links::Entity, o.clone())
            .and_where(
                Expr::col((o.clone(), user_links::Column::AppUserId))
                    .equals((l.clone(), user_links::Column::AppUserId)),
            )
            .and_where(Expr::col((o.clone(), user_links::Column::DirectoryId)).ne(directory_id))
            .and_where(Expr::col((o.clone(), user_links::Column::RemovedAt)).is_null())
            .to_owned();
        let waiting = Query::select()
            .expr(Expr::val(1))
            .from_as(deferred_changes::Entity, d.clone())
            .and_where(
                Expr::col((d.clone(), deferred_changes::Column::DirectoryId))
                    .equals((l.clone(), user_links::Column::DirectoryId)),
            )
            .and_where(
                Expr::col((d.clone(), deferred_changes::Column::SourceId))
                    .equals((l.clone(), user_links::Column::SourceId)),
            )
            .to_owned();
        let query = Query::select()
            .column((l.clone(), user_links::Column::SourceId))
            .column((l.clone(), user_links::Column::AppUserId))
            .column((l.clone(), user_links::Column::SnapshotHash))
            .column((l.clone(), user_links::Column::Judged))
            .column((l.clone(), user_links::Column::DirectoryActive))
            .column((users::Entity, users::Column::Version))
            .from_as(user_links::Entity, l.clone())
            .inner_join(
                users::Entity,
                Expr::col((users::Entity, users::Column::Id))
                    .equals((l.clone(), user_links::Column::AppUserId)),
            )
            .and_where(Expr::col((l.clone(), user_links::Column::DirectoryId)).eq(directory_id))
            .and_where(
                Expr::col((l.clone(), user_links::Column::SourceId)).is_in(chunk.iter().cloned()),
            )
            .and_where(Expr::col((l.clone(), user_links::Column::RemovedAt)).is_null())
            .and_where(Expr::col((l.clone(), user_links::Column::Judged)).is_not_null())
            .and_where(Expr::exists(elsewhere).not())
            .and_where(Expr::exists(waiting).not())
            .to_owned();
        let stmt = conn.get_database_backend().build(&query);
        out.extend(JudgedLink::find_by_statement(stmt).all(conn).await?);
    }
    Ok(out)
}

#[derive(Debug, FromQueryResult)]
struct SourceId {
    source_id: String,
}

/// Source ids of this directory's live (not removed) links, in order: a
/// complete listing compares against them to find who went missing.
pub async fn live_source_ids<C: ConnectionTrait>(
    conn: &C,
    directory_id: &str,
) -> Result<Vec<String>> {
    Ok(user_links::Entity::find()
        .select_only()
        .column(user_links::Column::SourceId)
        .filter(user_links::Column::DirectoryId.eq(directory_id))
        .filter(user_links::Column::RemovedAt.is_null())
        .order_by_asc(user_links::Column::SourceId)
        .into_model::<SourceId>()
        .all(conn)
        .await?
        .into_iter()
        .map(|r| r.source_id)
        .collect())
}

/// How many app users this directory links (live links).
pub async fn count_live_links<C: ConnectionTrait>(conn: &C, directory_id: &str) -> Result<u64> {
    use sea_orm::PaginatorTrait;
    Ok(user_links::Entity::find()
        .filter(user_links::Column::DirectoryId.eq(directory_id))
        .filter(user_links::Column::RemovedAt.is_null())
        .count(conn)
        .await?)
}

/// The profiles this directory owns go to whichever directory writes the
/// user next (as when a directory unlinks a user). Nothing the host
/// application sees changes, so the users keep their `updated_at`.
pub async fn release_profiles<C: ConnectionTrait>(conn: &C, directory_id: &str) -> Result<u64> {
    use sea_orm::sea_query::Expr;
    let done = users::Entity::update_many()
        .col_expr(
            users::Column::ProfileDirectoryId,
            Expr::value(Option::<String>::None),
        )
        .filter(users::Column::ProfileDirectoryId.eq(directory_id))
        .exec(conn)
        .await?;
    Ok(done.rows_affected)
}

/// How many of this directory's live links say active (the population the
/// mass-deactivation guard measures against).
pub async fn count_active_links<C: ConnectionTrait>(conn: &C, directory_id: &str) -> Result<u64> {
    use sea_orm::PaginatorTrait;
    Ok(user_links::Entity::find()
        .filter(user_links::Column::DirectoryId.eq(directory_id))
        .filter(user_links::Column::RemovedAt.is_null())
        .filter(user_links::Column::DirectoryActive.eq(true))
        .count(conn)
        .await?)
}

/// Insert or overwrite links (keyed by directory and source id); a link
/// without a snapshot keeps the stored one.
pub async fn upsert_links<C: ConnectionTrait>(conn: &C, rows: Vec<Link>) -> Result<()> {
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<user_links::ActiveModel> =
            rows.by_ref().take(CHUNK / 2).map(Into::into).collect();
        user_links::Entity::insert_many(chunk)
            .on_conflict(
                OnConflict::columns([
                    user_links::Column::DirectoryId,
                    user_links::Column::SourceId,
                ])
                .update_columns([
                    user_links::Column::AppUserId,
                    user_links::Column::ExternalId,
                    user_links::Column::DirectoryActive,
                    user_links::Column::SnapshotHash,
                    user_links::Column::Judged,
                    user_links::Column::RemovedAt,
                    user_links::Column::UpdatedAt,
                ])
                // A link read without its snapshot keeps the stored one.
                .value(
                    user_links::Column::Snapshot,
                    sea_orm::sea_query::Expr::cust(
                        "COALESCE(excluded.snapshot, user_links.snapshot)",
                    ),
                )
                .to_owned(),
            )
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

pub async fn delete_link<C: ConnectionTrait>(
    conn: &C,
    directory_id: &str,
    source_id: &str,
) -> Result<()> {
    user_links::Entity::delete_many()
        .filter(user_links::Column::DirectoryId.eq(directory_id))
        .filter(user_links::Column::SourceId.eq(source_id))
        .exec(conn)
        .await?;
    Ok(())
}

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
