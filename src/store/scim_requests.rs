//! The SCIM request log's rows: written in batches by the log's writer
//! (`scim::request_log`), trimmed to the newest N per directory, pruned by
//! age, read newest first a page at a time. They live where
//! `Store::scim_log` says: on SQLite a file of their own, so none of this
//! takes the directories' writer lock.

use std::collections::BTreeSet;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::entities::scim_requests;
use super::events::Pruned;
use super::pages::{self, Anchor, Page};
use super::{Conn, Result, Store};

pub use scim_requests::Model as Request;

/// Which requests a read wants (all when empty).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Statuses from `status.0` up to, not including, `status.1`.
    pub status: Option<(i32, i32)>,
    /// The HTTP method, upper case.
    pub method: Option<String>,
}

/// Write a batch of requests in one statement, then trim each directory
/// among `directories` to its newest `keep`, in one transaction.
pub async fn insert(
    store: &Store,
    requests: Vec<Request>,
    directories: &BTreeSet<String>,
    keep: u64,
) -> Result<()> {
    if requests.is_empty() {
        return Ok(());
    }
    let tx = store.scim_log().write().await?;
    let models = requests.into_iter().map(scim_requests::ActiveModel::from);
    scim_requests::Entity::insert_many(models)
        .exec(tx.conn())
        .await?;
    for directory in directories {
        trim(tx.conn(), directory, keep).await?;
    }
    tx.commit().await
}

/// Keep the directory's newest `keep` requests and delete the older ones;
/// how many went.
async fn trim<C: Conn>(conn: &C, directory_id: &str, keep: u64) -> Result<u64> {
    use scim_requests::Column as R;
    let delete = scim_requests::Entity::delete_many().filter(R::DirectoryId.eq(directory_id));
    if keep == 0 {
        return Ok(delete.exec(conn).await?.rows_affected);
    }
    // The oldest request that stays: the `keep`-th newest (an index walk of
    // `keep` entries of `scim_requests_directory_newest`).
    let oldest_kept: Option<String> = scim_requests::Entity::find()
        .select_only()
        .column(R::Id)
        .filter(R::DirectoryId.eq(directory_id))
        .order_by_desc(R::Id)
        .offset(keep - 1)
        .limit(1)
        .into_tuple()
        .one(conn)
        .await?;
    let Some(oldest_kept) = oldest_kept else {
        return Ok(0);
    };
    let done = delete.filter(R::Id.lt(oldest_kept)).exec(conn).await?;
    Ok(done.rows_affected)
}

/// Delete every request of a directory that is gone (on PostgreSQL its
/// foreign key did already); how many went.
pub async fn forget(store: &Store, directory_id: &str) -> Result<u64> {
    let tx = store.scim_log().write().await?;
    let gone = trim(tx.conn(), directory_id, 0).await?;
    tx.commit().await?;
    Ok(gone)
}

/// Rows one prune transaction deletes at most.
const PRUNE_CHUNK: u64 = 1000;

/// Delete the requests that arrived before `before` (epoch ms), at most
/// `at_most`, in write transactions of at most `PRUNE_CHUNK` rows (behind
/// the SQLite writer lock, like every write). Replicas pruning together
/// only find less to do.
pub async fn prune(store: &Store, before: i64, at_most: u64) -> Result<Pruned> {
    use scim_requests::Column as R;
    let store = store.scim_log();
    let mut deleted = 0;
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
            .filter(R::At.lt(before))
            .limit(chunk)
            .into_tuple()
            .all(tx.conn())
            .await?;
        if ids.is_empty() {
            return Ok(Pruned {
                deleted,
                is_complete: true,
            });
        }
        let done = scim_requests::Entity::delete_many()
            .filter(R::Id.is_in(ids))
            .exec(tx.conn())
            .await?;
        tx.commit().await?;
        deleted += done.rows_affected;
        if done.rows_affected < chunk {
            return Ok(Pruned {
                deleted,
                is_complete: true,
            });
        }
    }
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
