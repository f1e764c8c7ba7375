//! User links: a directory's user (the directory's id for it) tied to an app
//! user, with the directory's last snapshot and its hash, so an unchanged
//! snapshot costs no write.

use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::{CHUNK, find_in};
use crate::store::Result;
use crate::store::entities::{deferred_changes, user_links, users};

pub use user_links::Model as Link;

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
/// other live link names (of any directory, this one included) and for
/// which no change waits (one statement per
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
            .and_where(
                Expr::col((o.clone(), user_links::Column::DirectoryId))
                    .ne(directory_id)
                    .or(Expr::col((o.clone(), user_links::Column::SourceId))
                        .equals((l.clone(), user_links::Column::SourceId))
                        .not()),
            )
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

/// Insert or overwrite links (keyed by directory and source id), each with
/// its new snapshot as JSON text when the caller has it written out already
/// (stored in place of the link's own); a link without a snapshot keeps the
/// stored one.
pub async fn upsert_links<C: ConnectionTrait>(
    conn: &C,
    rows: Vec<(Link, Option<String>)>,
) -> Result<()> {
    let backend = conn.get_database_backend();
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk = rows
            .by_ref()
            .take(CHUNK / 2)
            .map(|(link, text)| (user_links::ActiveModel::from(link), text));
        let mut statement = crate::store::rows::insert_with_text(
            backend,
            Some(user_links::Column::Snapshot),
            chunk,
        );
        statement.on_conflict(
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
                sea_orm::sea_query::Expr::cust("COALESCE(excluded.snapshot, user_links.snapshot)"),
            )
            .to_owned(),
        );
        conn.execute(&statement).await?;
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
