//! Deferred changes (migration m20261206_000004): a directory's word on a
//! user that waits for an address another user of the same directory still
//! holds. The engine reads them by the address they wait for (whoever
//! releases it applies them in the same transaction) and by the directory's
//! id for the user (a later word replaces or clears the row).

use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::store::Result;
use crate::store::entities::deferred_changes;

pub use deferred_changes::Model as Deferred;

/// Keys per `IN (…)` list (every backend's bind-parameter limit).
const CHUNK: usize = 500;

/// This directory's deferred changes waiting for any of these addresses or
/// belonging to any of these directory users.
pub async fn deferred_for<C: ConnectionTrait>(
    conn: &C,
    directory_id: &str,
    emails: &[String],
    source_ids: &[String],
) -> Result<Vec<Deferred>> {
    let mut out: Vec<Deferred> = Vec::new();
    let by = |column: deferred_changes::Column, keys: &[String]| {
        deferred_changes::Entity::find()
            .filter(deferred_changes::Column::DirectoryId.eq(directory_id))
            .filter(column.is_in(keys.iter().cloned()))
    };
    for chunk in emails.chunks(CHUNK) {
        out.extend(
            by(deferred_changes::Column::EmailFolded, chunk)
                .all(conn)
                .await?,
        );
    }
    for chunk in source_ids.chunks(CHUNK) {
        out.extend(
            by(deferred_changes::Column::SourceId, chunk)
                .all(conn)
                .await?,
        );
    }
    out.sort_by(|a, b| a.source_id.cmp(&b.source_id));
    out.dedup_by(|a, b| a.source_id == b.source_id);
    Ok(out)
}

/// Every deferred change of a directory, oldest first (what an operator is
/// shown as waiting).
pub async fn deferred_of_directory<C: ConnectionTrait>(
    conn: &C,
    directory_id: &str,
) -> Result<Vec<Deferred>> {
    Ok(deferred_changes::Entity::find()
        .filter(deferred_changes::Column::DirectoryId.eq(directory_id))
        .order_by_asc(deferred_changes::Column::CreatedAt)
        .order_by_asc(deferred_changes::Column::SourceId)
        .all(conn)
        .await?)
}

/// Insert or replace deferred changes (keyed by directory and source id);
/// a replaced row keeps when it was first deferred.
pub async fn upsert_deferred<C: ConnectionTrait>(conn: &C, rows: Vec<Deferred>) -> Result<()> {
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<deferred_changes::ActiveModel> =
            rows.by_ref().take(CHUNK / 4).map(Into::into).collect();
        deferred_changes::Entity::insert_many(chunk)
            .on_conflict(
                OnConflict::columns([
                    deferred_changes::Column::DirectoryId,
                    deferred_changes::Column::SourceId,
                ])
                .update_columns([
                    deferred_changes::Column::EmailFolded,
                    deferred_changes::Column::HolderId,
                    deferred_changes::Column::Reason,
                    deferred_changes::Column::Snapshot,
                    deferred_changes::Column::UpdatedAt,
                ])
                .to_owned(),
            )
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

/// Drop these directory users' deferred changes.
pub async fn delete_deferred<C: ConnectionTrait>(
    conn: &C,
    directory_id: &str,
    source_ids: &[String],
) -> Result<()> {
    for chunk in source_ids.chunks(CHUNK) {
        deferred_changes::Entity::delete_many()
            .filter(deferred_changes::Column::DirectoryId.eq(directory_id))
            .filter(deferred_changes::Column::SourceId.is_in(chunk.iter().cloned()))
            .exec(conn)
            .await?;
    }
    Ok(())
}
