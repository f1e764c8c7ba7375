//! The SCIM request log's rows: written in batches by the log's writer
//! (`scim::request_log`), trimmed to the newest N per directory, pruned by
//! age, read newest first a page at a time. They live where
//! `Store::scim_log` says: on SQLite a file of their own, so none of this
//! takes the directories' writer lock.

use std::collections::BTreeSet;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::entities::scim_requests;
use super::events::Pruned;
use super::pages::{self, Anchor, Page};
use super::rows;
use super::{Result, Store};

pub use scim_requests::Model as Request;

/// Rows one `INSERT` of a batch carries at most: 14 parameters each, far
/// inside both backends' limits, and one statement the driver keeps
/// prepared for every full chunk.
const ROWS_PER_STATEMENT: usize = 64;

/// Which requests a read wants (all when empty).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Statuses from `status.0` up to, not including, `status.1`.
    pub status: Option<(i32, i32)>,
    /// The HTTP method, upper case.
    pub method: Option<String>,
}

/// Write a batch of requests, numbering each directory's after its newest
/// (in the batch's order), then trim each directory they belong to to its
/// newest `keep`: one transaction.
///
/// The trim deletes by number (`scim_requests_directory_number`): a seek
/// and the rows that go, where finding the `keep`-th newest by position
/// walked `keep` index entries for every batch (on SQLite a third of the
/// instructions of a SCIM create). The rows go `ROWS_PER_STATEMENT` to a
/// statement: a statement a row cost a round trip to the driver's thread
/// each, more than the row itself. On PostgreSQL
/// two replicas writing one directory's batches at the same moment may
/// give a number twice; that directory then keeps as many more.
pub async fn insert(store: &Store, mut requests: Vec<Request>, keep: u64) -> Result<()> {
    use scim_requests::Column as R;
    if requests.is_empty() {
        return Ok(());
    }
    let directories: BTreeSet<String> = requests.iter().map(|r| r.directory_id.clone()).collect();
    let tx = store.scim_log().write().await?;
    let mut newest = Vec::with_capacity(directories.len());
    for directory in &directories {
        let last: Option<Option<i64>> = scim_requests::Entity::find()
            .select_only()
            .column_as(R::Number.max(), "number")
            .filter(R::DirectoryId.eq(directory.as_str()))
            .into_tuple()
            .one(tx.conn())
            .await?;
        let mut number = last.flatten().unwrap_or(0);
        for request in requests.iter_mut().filter(|r| &r.directory_id == directory) {
            number += 1;
            request.number = Some(number);
        }
        newest.push((directory, number));
    }
    let backend = tx.conn().get_database_backend();
    let mut rows = requests
        .into_iter()
        .map(scim_requests::ActiveModel::from)
        .peekable();
    while rows.peek().is_some() {
        let chunk = rows.by_ref().take(ROWS_PER_STATEMENT);
        tx.conn().execute(&rows::insert(backend, chunk)).await?;
    }
    for (directory, number) in newest {
        let below = number.saturating_sub(i64::try_from(keep).unwrap_or(i64::MAX));
        scim_requests::Entity::delete_many()
            .filter(R::DirectoryId.eq(directory.as_str()))
            .filter(R::Number.lte(below))
            .exec(tx.conn())
            .await?;
    }
    tx.commit().await
}

/// Delete every request of a directory that is gone (on PostgreSQL its
/// foreign key did already); how many went.
pub async fn forget(store: &Store, directory_id: &str) -> Result<u64> {
    use scim_requests::Column as R;
    let done = scim_requests::Entity::delete_many()
        .filter(R::DirectoryId.eq(directory_id))
        .exec(store.scim_log().connection())
        .await?;
    Ok(done.rows_affected)
}

/// Rows one prune transaction deletes at most.
const PRUNE_CHUNK: u64 = 1000;

/// Delete the requests that arrived before `before` (epoch ms), at most
/// `at_most`, in write transactions of at most `PRUNE_CHUNK` rows (behind
/// the log's writer lock, like every write). Each directory's requests are
/// read oldest first by `(directory_id, id)`, the log's one key: ids are
/// UUIDv7, so the old ones come first and the read stops at the chunk's
/// last. Replicas pruning together only find less to do.
pub async fn prune(store: &Store, before: i64, at_most: u64) -> Result<Pruned> {
    use scim_requests::Column as R;
    let store = store.scim_log();
    let directories: Vec<String> = scim_requests::Entity::find()
        .select_only()
        .column(R::DirectoryId)
        .distinct()
        .into_tuple()
        .all(store.connection())
        .await?;
    let mut deleted = 0;
    for directory in directories {
        loop {
            if deleted >= at_most {
                return Ok(Pruned {
                    deleted,
                    is_complete: false,
                });
            }
            let chunk = PRUNE_CHUNK.min(at_most - deleted);
            let tx = store.write().await?;
            let ids: Vec<String> = scim_requests::Entity::find()
                .select_only()
                .column(R::Id)
                .filter(R::DirectoryId.eq(directory.as_str()))
                .filter(R::At.lt(before))
                .order_by_asc(R::Id)
                .limit(chunk)
                .into_tuple()
                .all(tx.conn())
                .await?;
            if ids.is_empty() {
                break;
            }
            let done = scim_requests::Entity::delete_many()
                .filter(R::DirectoryId.eq(directory.as_str()))
                .filter(R::Id.is_in(ids))
                .exec(tx.conn())
                .await?;
            tx.commit().await?;
            deleted += done.rows_affected;
            if done.rows_affected < chunk {
                break;
            }
        }
    }
    Ok(Pruned {
        deleted,
        is_complete: true,
    })
}

/// A page of the directory's requests, newest first.
pub async fn page(
    store: &Store,
    directory_id: &str,
    filter: &Filter,
    from: &Anchor,
    limit: u64,
) -> Result<Page<Request>> {
    use scim_requests::Column as R;
    let mut select = scim_requests::Entity::find().filter(R::DirectoryId.eq(directory_id));
    if let Some((low, high)) = filter.status {
        select = select.filter(R::Status.gte(low)).filter(R::Status.lt(high));
    }
    if let Some(method) = &filter.method {
        select = select.filter(R::Method.eq(method.as_str()));
    }
    pages::window_newest_first(store.scim_log().connection(), select, R::Id, from, limit).await
}
