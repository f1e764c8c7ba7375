//! The SCIM request log, stored a batch to a row: what the log's writer
//! (`scim::request_log`) takes together for one directory is one row of
//! `scim_request_batches`, its requests a JSON array, newest first. A row
//! per request cost the writer a row's b-tree work (and at the cap a
//! delete's) for every SCIM request; a batch's costs it once (README "SCIM
//! request log").
//!
//! Each directory keeps its newest `keep`: a batch's `total` numbers the
//! newest request in it among the directory's, so the trim deletes the
//! rows wholly below the cap by one seek and cuts the one it falls in.
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
use serde_json::value::RawValue;

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
/// wholly below it by one seek (`scim_request_batches_total`), and from
/// the oldest row left those of its requests that are.
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

/// Cut a batch down to its newest `kept` requests.
async fn keep_newest<C: ConnectionTrait>(
    conn: &C,
    directory: &str,
    last_id: &str,
    kept: usize,
) -> Result<()> {
    use batches::Column as B;
    let records: Option<String> = batches::Entity::find()
        .select_only()
        .column(B::Records)
        .filter(B::DirectoryId.eq(directory))
        .filter(B::LastId.eq(last_id))
        .into_tuple()
        .one(conn)
        .await?;
    let Some(records) = records else {
        return Ok(());
    };
    let (text, first_id, kept) = match cut(&records, kept) {
        Some((text, first_id)) => (text, first_id, kept),
        None => {
            // Not laid out as the writer writes: parse it. Each request
            // stays the text it was; only the array is cut.
            let mut requests: Vec<&RawValue> = serde_json::from_str(&records).map_err(invalid)?;
            requests.truncate(kept);
            let Some(oldest) = requests.last() else {
                batches::Entity::delete_many()
                    .filter(B::DirectoryId.eq(directory))
                    .filter(B::LastId.eq(last_id))
                    .exec(conn)
                    .await?;
                return Ok(());
            };
            #[derive(Deserialize)]
            struct Id {
                id: String,
            }
            let first_id = serde_json::from_str::<Id>(oldest.get())
                .map_err(invalid)?
                .id;
            let text = serde_json::to_string(&requests).map_err(invalid)?;
            (text, first_id, requests.len())
        }
    };
    batches::Entity::update_many()
        .col_expr(B::FirstId, Expr::value(first_id))
        .col_expr(B::Count, Expr::value(count(kept)))
        .col_expr(B::Records, Expr::value(text))
        .filter(B::DirectoryId.eq(directory))
        .filter(B::LastId.eq(last_id))
        .exec(conn)
        .await?;
    Ok(())
}

/// How a request's JSON starts in a batch as `insert` writes it (`id` is
/// `Request`'s first field), and how it starts after the one before.
const REQUEST_START: &str = r#"{"id":""#;
const NEXT_REQUEST: &str = r#",{"id":""#;

/// A batch's text cut to its newest `kept` requests (at least one), and
/// the id of the oldest of those, found without parsing the requests: a
/// quote inside a JSON string is escaped, so `,{"id":"` stands only where
/// one request ends and the next begins. None when there is nothing to cut
/// or the text is not laid out so (a batch a migration wrote).
fn cut(records: &str, kept: usize) -> Option<(String, String)> {
    if !records.starts_with('[') {
        return None;
    }
    let mut starts =
        std::iter::once(1).chain(records.match_indices(NEXT_REQUEST).map(|(at, _)| at + 1));
    let oldest = starts.nth(kept.checked_sub(1)?)?;
    let end = starts.next()? - 1;
    let id = records.get(oldest..)?.strip_prefix(REQUEST_START)?;
    let id = &id[..id.find('"')?];
    Some((format!("{}]", &records[..end]), id.to_owned()))
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
            .columns([B::LastId, B::Records])
            .filter(B::DirectoryId.eq(directory_id));
        if let Some(id) = older_than {
            select = select.filter(B::FirstId.lt(id));
        }
        if let Some(last_id) = &resume {
            select = select.filter(B::LastId.lt(last_id.as_str()));
        }
        let rows: Vec<(String, String)> = select
            .order_by_desc(B::LastId)
            .limit(READ_CHUNK)
            .into_tuple()
            .all(conn)
            .await?;
        let read = rows.len();
        for (last_id, records) in rows {
            if found.len() >= wanted && found[wanted - 1].id > last_id {
                break 'read;
            }
            let requests: Vec<Request> = serde_json::from_str(&records).map_err(invalid)?;
            found.extend(
                requests
                    .into_iter()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn request(id: &str, path: &str) -> Request {
        Request {
            id: id.into(),
            directory_id: "d".into(),
            at: 1,
            method: "POST".into(),
            path: path.into(),
            status: 201,
            duration_ms: 2,
            scim_type: None,
            detail: Some(r#"a "quoted" {"id":"x"} detail"#.into()),
            outcomes: r#"[{"resource":"u","outcome":"created"}]"#.into(),
            request_headers: None,
            request_body: Some(r#"{"id":"not-a-request","userName":"ada"}"#.into()),
            response_body: None,
        }
    }

    #[test]
    fn a_batch_is_cut_to_its_newest_requests_where_they_end() {
        let batch = [request("c", "/3"), request("b", "/2"), request("a", "/1")];
        let text = serde_json::to_string(&batch).unwrap();
        assert!(text.starts_with(&format!("[{REQUEST_START}")), "{text}");
        for kept in 1..3 {
            let (cut_text, first_id) = cut(&text, kept).unwrap();
            let read: Vec<Request> = serde_json::from_str(&cut_text).unwrap();
            let paths: Vec<&str> = read.iter().map(|r| r.path.as_str()).collect();
            assert_eq!(paths, ["/3", "/2", "/1"][..kept], "kept {kept}");
            assert_eq!(read[kept - 1].detail, batch[kept - 1].detail);
            assert_eq!(first_id, batch[kept - 1].id);
        }
        assert_eq!(cut(&text, 3), None, "nothing to cut");
        assert_eq!(cut(&text, 0), None);
    }

    #[test]
    fn a_batch_laid_out_otherwise_is_not_cut_by_its_text() {
        let migrated = r#"[{"id" : "b", "at" : 1}, {"id" : "a", "at" : 0}]"#;
        assert_eq!(cut(migrated, 1), None);
    }
}
