//! The application's identity: app users (`users`), the links from each
//! directory's users to them (`links`), app groups and their members
//! (`groups`). What the host application reads; only the engine
//! (`reconcile`) writes it. Batch reads take a page of keys and answer in
//! one statement, so the engine costs a few round trips per page, not per
//! user.

pub mod groups;
pub mod links;
pub mod users;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use crate::store::Result;

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
