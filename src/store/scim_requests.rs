//! The SCIM request log, stored a batch to a row: what the log's writer
//! (`scim::request_log`) takes together for one directory is one row of
//! `scim_request_batches`, its requests a JSON array, newest first. A row
//! per request cost the writer a row's b-tree work (and at the cap a
//! delete's) for every SCIM request; a batch's costs it once (README "SCIM
//! request log").
//!
//! Each directory keeps its newest `keep`: a batch's `total` numbers the
//! newest request in it among the directory's, so the trim deletes the
//! rows wholly below the cap by one seek and, in the one it falls in,
//! lowers how many of its newest are kept (`count`): its text is written
//! once and never again (rewriting it was a third of the writer's cost).
//! Reads go through the batches that can hold the page, newest first, and
//! stop once no further batch can. The rows live where `Store::scim_log`
//! says: on SQLite a file of their own, so none of this takes the
//! directories' writer lock.

use std::collections::BTreeMap;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde::{Deserialize, Serialize};

use super::entities::scim_request_batches as batches;
use super::events::Pruned;
use super::pages::Page;
use super::{Result, Store, StoreError};

/// One SCIM request a directory's token authenticated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// UUIDv7 taken when it arrived: id order is arrival order.
    pub id: String,
    /// Not written into its batch's JSON: the batch's own.
    #[serde(skip)]
    pub directory_id: String,
    /// When it arrived, epoch milliseconds.
    pub at: i64,
    pub method: String,
    /// The path and query string, capped.
    pub path: String,
    pub status: i32,
    pub duration_ms: i64,
    /// A SCIM error's `scimType` and `detail` (capped).
    pub scim_type: Option<String>,
    pub detail: Option<String>,
    /// What the engine made of each resource, a JSON array.
    pub outcomes: String,
    /// Kept only when the server keeps bodies; secrets removed.
    pub request_headers: Option<String>,
    pub request_body: Option<String>,
    pub response_body: Option<String>,
}

/// Which requests a read wants (all when empty).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Statuses from `status.0` up to, not including, `status.1`.
    pub status: Option<(i32, i32)>,
    /// The HTTP method, upper case.
    pub method: Option<String>,
}

impl Filter {
    fn admits(&self, request: &Request) -> bool {
        self.status
            .is_none_or(|(low, high)| (low..high).contains(&request.status))
            && self
                .method
                .as_ref()
                .is_none_or(|method| *method == request.method)
    }
}

/// Write a batch of requests, a row for each directory among them (more
/// when their text passes `ROW_BYTES`), then trim each of those
/// directories to its newest `keep`: one transaction.
/// A directory's newest request is numbered after its newest so far, in
/// id order. On PostgreSQL two replicas writing one directory's batches at
/// the same moment may give a number twice; that directory then keeps as
/// many more.
pub async fn insert(store: &Store, requests: &[Request], keep: u64) -> Result<()> {
    let keep = usize::try_from(keep).unwrap_or(usize::MAX);
    if requests.is_empty() || keep == 0 {
        return Ok(());
    }
    let mut directories: BTreeMap<&str, Vec<&Request>> = BTreeMap::new();
    for request in requests {
        directories
            .entry(request.directory_id.as_str())
            .or_default()
            .push(request);
    }
    let tx = store.scim_log().write().await?;
    for (directory, mut batch) in directories {
        batch.sort_unstable_by(|a, b| b.id.cmp(&a.id));
        let arrived = count(batch.len());
        // More than the cap at once: the oldest of them are below it now.
        batch.truncate(keep);
        let newest_total = last_total(tx.conn(), directory).await? + arrived;
        let mut total = newest_total;
        let mut rest = &batch[..];
        while !rest.is_empty() {
            let (records, taken) = row_text(rest)?;
            let (part, older) = rest.split_at(taken);
            let (Some(newest), Some(oldest)) = (part.first(), part.last()) else {
                break;
            };
            let row = batches::ActiveModel {
                directory_id: Set(directory.to_owned()),
                last_id: Set(newest.id.clone()),
                first_id: Set(oldest.id.clone()),
                last_at: Set(part.iter().map(|r| r.at).max().unwrap_or(newest.at)),
                total: Set(total),
                count: Set(i32::try_from(taken).unwrap_or(i32::MAX)),
                records: Set(records),
            };
            batches::Entity::insert(row)
                .exec_without_returning(tx.conn())
                .await?;
            total -= count(taken);
            rest = older;
        }
        trim(tx.conn(), directory, newest_total - count(keep)).await?;
    }
    tx.commit().await
}

/// Longest text a row of requests holds, in bytes, unless one request is
/// longer: a batch of requests with their bodies kept (up to 64 KiB each)
/// goes into several rows, so a read holds `READ_CHUNK` rows of at most
/// this much.
const ROW_BYTES: usize = 1 << 20;

/// The newest of `requests` (newest first) that fit in a row, as its JSON
/// array, and how many those are (at least one).
fn row_text(requests: &[&Request]) -> Result<(String, usize)> {
    let mut text = Vec::with_capacity(1024);
    text.push(b'[');
    let mut taken = 0;
    for request in requests {
        let before = text.len();
        if taken > 0 {
            text.push(b',');
        }
        serde_json::to_writer(&mut text, request).map_err(invalid)?;
        if taken > 0 && text.len() >= ROW_BYTES {
            text.truncate(before);
            break;
        }
        taken += 1;
    }
    text.push(b']');
    let text = String::from_utf8(text)
        .map_err(|e| StoreError::Invalid(format!("a SCIM request log batch: {e}")))?;
    Ok((text, taken))
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn invalid(err: serde_json::Error) -> StoreError {
    StoreError::Invalid(format!("a SCIM request log batch: {err}"))
}

/// The number of the directory's newest logged request (0 before any).
async fn last_total<C: ConnectionTrait>(conn: &C, directory: &str) -> Result<i64> {
    use batches::Column as B;
    let last: Option<Option<i64>> = batches::Entity::find()
        .select_only()
        .column_as(B::Total.max(), "total")
        .filter(B::DirectoryId.eq(directory))
        .into_tuple()
        .one(conn)
        .await?;
    Ok(last.flatten().unwrap_or(0))
}

/// Delete the directory's requests numbered `cutoff` or below: the rows
/// wholly below it by one seek (`scim_request_batches_total`); the oldest
/// row left keeps only those of its requests that are above it.
async fn trim<C: ConnectionTrait>(conn: &C, directory: &str, cutoff: i64) -> Result<()> {
    use batches::Column as B;
    if cutoff <= 0 {
        return Ok(());
    }
    batches::Entity::delete_many()
        .filter(B::DirectoryId.eq(directory))
        .filter(B::Total.lte(cutoff))
        .exec(conn)
        .await?;
    let oldest: Option<(String, i64, i32)> = batches::Entity::find()
        .select_only()
        .columns([B::LastId, B::Total, B::Count])
        .filter(B::DirectoryId.eq(directory))
        .order_by_asc(B::Total)
        .into_tuple()
        .one(conn)
        .await?;
    match oldest {
        Some((last_id, total, count)) if total - i64::from(count) < cutoff => {
            let kept = usize::try_from(total - cutoff).unwrap_or(0);
            keep_newest(conn, directory, &last_id, kept).await
        }
        _ => Ok(()),
    }
}

/// Keep a batch's newest `kept` requests: its `count` says how many of
/// its newest a read takes. The text stays as written (a row holds at most
/// `ROW_BYTES`, the older requests in it too).
async fn keep_newest<C: ConnectionTrait>(
    conn: &C,
    directory: &str,
    last_id: &str,
    kept: usize,
) -> Result<()> {
    use batches::Column as B;
    batches::Entity::update_many()
        .col_expr(B::Count, Expr::value(count(kept)))
        .filter(B::DirectoryId.eq(directory))
        .filter(B::LastId.eq(last_id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Delete every request of a directory that is gone (on PostgreSQL its
/// foreign key did already); how many batches of them went.
pub async fn forget(store: &Store, directory_id: &str) -> Result<u64> {
    use batches::Column as B;
    let done = batches::Entity::delete_many()
        .filter(B::DirectoryId.eq(directory_id))
        .exec(store.scim_log().connection())
        .await?;
    Ok(done.rows_affected)
}

/// Batches one prune transaction deletes at most.
const PRUNE_CHUNK: u64 = 100;

/// Delete the requests that arrived before `before` (epoch ms), at most
/// `at_most`, in write transactions of at most `PRUNE_CHUNK` batches
/// (behind the log's writer lock, like every write). A batch goes when its
/// newest request is older than `before`; each directory's are read oldest
/// first by their key. Replicas pruning together only find less to do.
pub async fn prune(store: &Store, before: i64, at_most: u64) -> Result<Pruned> {
    use batches::Column as B;
    let store = store.scim_log();
    let directories: Vec<String> = batches::Entity::find()
        .select_only()
        .column(B::DirectoryId)
        .distinct()
        .into_tuple()
        .all(store.connection())
        .await?;
    let mut deleted = 0;
    for directory in directories {
        loop {
            let tx = store.write().await?;
            let old: Vec<(String, i32)> = batches::Entity::find()
                .select_only()
                .columns([B::LastId, B::Count])
                .filter(B::DirectoryId.eq(directory.as_str()))
                .filter(B::LastAt.lt(before))
                .order_by_asc(B::LastId)
                .limit(PRUNE_CHUNK)
                .into_tuple()
                .all(tx.conn())
                .await?;
            let read = old.len();
            for (last_id, count) in old {
                let count = u64::try_from(count).unwrap_or(0);
                let allowed = at_most - deleted;
                if allowed == 0 {
                    tx.commit().await?;
                    return Ok(Pruned {
                        deleted,
                        is_complete: false,
                    });
                }
                if count > allowed {
                    // The pass's limit falls inside this batch: its oldest
                    // go, the rest wait for the next pass.
                    let kept = usize::try_from(count - allowed).unwrap_or(usize::MAX);
                    keep_newest(tx.conn(), &directory, &last_id, kept).await?;
                    tx.commit().await?;
                    return Ok(Pruned {
                        deleted: at_most,
                        is_complete: false,
                    });
                }
                batches::Entity::delete_many()
                    .filter(B::DirectoryId.eq(directory.as_str()))
                    .filter(B::LastId.eq(last_id))
                    .exec(tx.conn())
                    .await?;
                deleted += count;
            }
            tx.commit().await?;
            if (read as u64) < PRUNE_CHUNK {
                break;
            }
        }
    }
    Ok(Pruned {
        deleted,
        is_complete: true,
    })
}

/// Batches one step of a read takes.
const READ_CHUNK: u64 = 8;

/// A page of the directory's requests, newest first, from the newest or
/// from those older than the request `older_than`.
///
/// The batches that can hold such a request (their oldest is older) are
/// read by their newest request, newest first; the read stops once it has
/// `limit` and one more and the next batch's newest is older than all of
/// them. Memory holds a page and `READ_CHUNK` rows (`ROW_BYTES` each).
pub async fn page(
    store: &Store,
    directory_id: &str,
    filter: &Filter,
    older_than: Option<&str>,
    limit: u64,
) -> Result<Page<Request>> {
    use batches::Column as B;
    let conn = store.scim_log().connection();
    let wanted = usize::try_from(limit)
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    let mut found: Vec<Request> = Vec::new();
    let mut resume: Option<String> = None;
    'read: loop {
        let mut select = batches::Entity::find()
            .select_only()
            .columns([B::LastId, B::Count, B::Records])
            .filter(B::DirectoryId.eq(directory_id));
        if let Some(id) = older_than {
            select = select.filter(B::FirstId.lt(id));
        }
        if let Some(last_id) = &resume {
            select = select.filter(B::LastId.lt(last_id.as_str()));
        }
        let rows: Vec<(String, i32, String)> = select
            .order_by_desc(B::LastId)
            .limit(READ_CHUNK)
            .into_tuple()
            .all(conn)
            .await?;
        let read = rows.len();
        for (last_id, kept, records) in rows {
            if found.len() >= wanted && found[wanted - 1].id > last_id {
                break 'read;
            }
            let requests: Vec<Request> = serde_json::from_str(&records).map_err(invalid)?;
            found.extend(
                requests
                    .into_iter()
                    .take(usize::try_from(kept).unwrap_or(0))
                    .filter(|r| older_than.is_none_or(|id| r.id.as_str() < id) && filter.admits(r)),
            );
            found.sort_unstable_by(|a, b| b.id.cmp(&a.id));
            found.truncate(wanted);
            resume = Some(last_id);
        }
        if (read as u64) < READ_CHUNK {
            break;
        }
    }
    let more_after = found.len() >= wanted;
    found.truncate(wanted - 1);
    for request in &mut found {
        request.directory_id = directory_id.to_owned();
    }
    Ok(Page {
        rows: found,
        more_after,
        // A page older than a request has that one before it, at least.
        more_before: older_than.is_some(),
    })
}
