//! The event outbox: `(tenant_id, seq)` with no gaps a reader could skip.
//!
//! Writers reserve their numbers from `event_sequences` with one upsert just
//! before commit. On PostgreSQL the upsert locks the tenant's counter row until
//! the transaction ends, so the next writer's numbers come after this one's
//! commit: sequences become visible in order, and a reader paging with
//! `seq > last_seen` never passes a number that commits later. On SQLite there
//! is one writer at a time anyway.

use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::Value;
use tracing::instrument;

use super::entities::{event_sequences, events};
use super::{Result, Store, StoreError};
use crate::domain::event::EventType;

pub use events::Model as Event;

/// An event before it has a sequence number.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub r#type: EventType,
    pub resource_type: &'static str,
    pub resource_id: String,
    /// The event's data object as JSON text (the engine writes it out once,
    /// without building a tree for it).
    pub data: String,
}

/// Rows per multi-row insert (7 binds each).
const CHUNK: usize = 500;

/// Append events for a tenant, numbered after every committed one. Call it
/// last in the transaction: the counter row stays locked until commit.
#[instrument(skip_all, fields(tenant_id, count = batch.len()))]
pub async fn append<C: ConnectionTrait>(
    conn: &C,
    tenant_id: &str,
    batch: Vec<NewEvent>,
    now: i64,
) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let count = i64::try_from(batch.len()).unwrap_or(i64::MAX);
    let reserve = Query::insert()
        .into_table(event_sequences::Entity)
        .columns([
            event_sequences::Column::TenantId,
            event_sequences::Column::LastSeq,
        ])
        .values_panic([tenant_id.into(), count.into()])
        .on_conflict(
            OnConflict::column(event_sequences::Column::TenantId)
                .value(
                    event_sequences::Column::LastSeq,
                    Expr::col((event_sequences::Entity, event_sequences::Column::LastSeq))
                        .add(count),
                )
                .to_owned(),
        )
        .returning_col(event_sequences::Column::LastSeq)
        .to_owned();
    let row = conn
        .query_one(&reserve)
        .await?
        .ok_or(StoreError::NotFound)?;
    let last: i64 = row.try_get("", "last_seq")?;
    let first = last - count + 1;
    let types: Vec<&'static str> = batch.iter().map(|e| e.r#type.as_str()).collect();
    let mut rows = batch
        .into_iter()
        .zip(first..)
        .map(|(e, seq)| {
            let row = events::ActiveModel {
                tenant_id: sea_orm::ActiveValue::Set(tenant_id.to_owned()),
                seq: sea_orm::ActiveValue::Set(seq),
                r#type: sea_orm::ActiveValue::Set(e.r#type.as_str().to_owned()),
                resource_type: sea_orm::ActiveValue::Set(e.resource_type.to_owned()),
                resource_id: sea_orm::ActiveValue::Set(e.resource_id),
                // The statement binds the text `e.data` in its place.
                data: sea_orm::ActiveValue::Set(Value::Null),
                created_at: sea_orm::ActiveValue::Set(now),
            };
            (row, Some(e.data))
        })
        .peekable();
    let backend = conn.get_database_backend();
    while rows.peek().is_some() {
        let chunk = rows.by_ref().take(CHUNK);
        let statement =
            crate::store::rows::insert_with_text(backend, Some(events::Column::Data), chunk);
        conn.execute(&statement).await?;
    }
    // Recorded before the caller commits: a transaction that then rolls back
    // was counted all the same, and its tenant's gauge stays ahead until the
    // tenant's next append.
    crate::metrics::events_appended(tenant_id, &types, last);
    Ok(())
}

/// The tenant's newest sequence number (0 before its first event).
pub async fn last_seq<C: ConnectionTrait>(conn: &C, tenant_id: &str) -> Result<i64> {
    Ok(event_sequences::Entity::find_by_id(tenant_id.to_owned())
        .one(conn)
        .await?
        .map_or(0, |row| row.last_seq))
}

/// What a reader of the feed asks for besides the position.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only these types (any of them); empty: every type.
    pub types: Vec<String>,
    pub resource_id: Option<String>,
}

/// How much one read of the outbox answers at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Events.
    pub count: u64,
    /// Bytes of events, as the reader measures them. The first event is
    /// answered whatever its size, so a reader always makes progress.
    pub bytes: u64,
}

/// What a bounded read answered.
#[derive(Debug, Clone, Default)]
pub struct Read {
    /// In sequence order, gap-free within what the filter passes: the
    /// next read `after` the last one's `seq` goes on exactly from here.
    pub events: Vec<Event>,
    /// Their size, as measured.
    pub bytes: u64,
    /// Events that pass the filter follow the last one (the read ended at
    /// its count or at its bytes).
    pub is_cut: bool,
}

/// Rows the first query of a read fetches at most.
const FIRST_CHUNK: u64 = 64;
/// Rows any later query fetches at most.
const MAX_CHUNK: u64 = 128;

/// Rows the next query fetches: as many as the bytes left hold at the size
/// seen so far, and one more to find where the budget ends, so a read past
/// a few large events does not fetch a chunk of them only to drop it.
fn chunk_rows(budget: Budget, read: &Read) -> u64 {
    let answered = read.events.len() as u64;
    let left = budget.count.saturating_sub(answered);
    let rows = match answered {
        0 => FIRST_CHUNK,
        n => {
            let seen = Ord::max(read.bytes / n, 1);
            (budget.bytes.saturating_sub(read.bytes) / seen).saturating_add(1)
        }
    };
    // One row past the count says whether more follow.
    Ord::min(rows.clamp(1, MAX_CHUNK), left.saturating_add(1))
}

/// A tenant's events after `after` that pass `filter`, in sequence order,
/// at most `budget.count` of them and, as `measure` sizes each one, at most
/// `budget.bytes` (but always the first): the read stops before the event
/// that would pass the budget. Rows are fetched a chunk at a time (keyset
/// on the `(tenant_id, seq)` key, an index range), so the read holds the
/// events it answers and at most one chunk besides, whatever the outbox
/// holds.
pub async fn read<C: ConnectionTrait>(
    conn: &C,
    tenant_id: &str,
    after: i64,
    filter: &EventFilter,
    budget: Budget,
    mut measure: impl FnMut(&Event) -> u64,
) -> Result<Read> {
    let mut read = Read::default();
    let mut position = after;
    loop {
        let rows = chunk_rows(budget, &read);
        let mut select = events::Entity::find()
            .filter(events::Column::TenantId.eq(tenant_id))
            .filter(events::Column::Seq.gt(position));
        if !filter.types.is_empty() {
            select = select.filter(events::Column::Type.is_in(filter.types.iter().cloned()));
        }
        if let Some(id) = &filter.resource_id {
            select = select.filter(events::Column::ResourceId.eq(id.as_str()));
        }
        let chunk = select
            .order_by_asc(events::Column::Seq)
            .limit(rows)
            .all(conn)
            .await?;
        let fetched = chunk.len() as u64;
        for event in chunk {
            if read.events.len() as u64 >= budget.count {
                read.is_cut = true;
                return Ok(read);
            }
            let size = measure(&event);
            if !read.events.is_empty() && read.bytes.saturating_add(size) > budget.bytes {
                read.is_cut = true;
                return Ok(read);
            }
            position = event.seq;
            read.bytes = read.bytes.saturating_add(size);
            read.events.push(event);
        }
        if fetched < rows {
            return Ok(read);
        }
    }
}

/// Rows one prune transaction deletes at most: each is a short write, so a
/// large backlog never holds SQLite's one writer (or PostgreSQL's row locks)
/// for long, and the feed's writers get their turn between chunks.
const PRUNE_CHUNK: u64 = 1000;

/// What a prune did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub deleted: u64,
    /// False when it stopped at its budget with more to delete.
    pub is_complete: bool,
}

/// Delete the events written before `before` (epoch milliseconds), of one
/// tenant or of every tenant, at most `at_most` of them, the oldest of each
/// tenant first, in transactions of at most `PRUNE_CHUNK` rows. Sequence
/// numbers go on from the counter, so a reader's `after` stays valid; what
/// it had not read is gone.
///
/// Each chunk is found by a read (the primary key in `seq` order; no write
/// lock held while it looks) and deleted as a `seq` range with the age
/// checked again, so replicas pruning at the same time only find less to do.
#[instrument(skip_all, fields(tenant_id, before, at_most))]
pub async fn prune(
    store: &Store,
    tenant_id: Option<&str>,
    before: i64,
    at_most: u64,
) -> Result<Pruned> {
    let tenants: Vec<String> = match tenant_id {
        Some(t) => vec![t.to_owned()],
        None => {
            event_sequences::Entity::find()
                .select_only()
                .column(event_sequences::Column::TenantId)
                .order_by_asc(event_sequences::Column::TenantId)
                .into_tuple()
                .all(store.connection())
                .await?
        }
    };
    let mut deleted = 0;
    for tenant in &tenants {
        // What a webhook endpoint has not taken yet stays, whatever its
        // age: an endpoint's events wait in the outbox until it takes them.
        let undelivered: Option<i64> = super::entities::webhook_endpoints::Entity::find()
            .select_only()
            .expr(Expr::col(super::entities::webhook_endpoints::Column::DeliveredSeq).min())
            .filter(super::entities::webhook_endpoints::Column::TenantId.eq(tenant.as_str()))
            .into_tuple::<Option<i64>>()
            .one(store.connection())
            .await?
            .flatten();
        let kept = |select: sea_orm::Select<events::Entity>| match undelivered {
            Some(seq) => select.filter(events::Column::Seq.lte(seq)),
            None => select,
        };
        loop {
            if deleted >= at_most {
                return Ok(Pruned {
                    deleted,
                    is_complete: false,
                });
            }
            let limit = std::cmp::min(PRUNE_CHUNK, at_most - deleted);
            let seqs: Vec<i64> = kept(events::Entity::find())
                .select_only()
                .column(events::Column::Seq)
                .filter(events::Column::TenantId.eq(tenant.as_str()))
                .filter(events::Column::CreatedAt.lt(before))
                .order_by_asc(events::Column::Seq)
                .limit(limit)
                .into_tuple()
                .all(store.connection())
                .await?;
            let (Some(&first), Some(&last)) = (seqs.first(), seqs.last()) else {
                break;
            };
            // The range holds exactly the rows just found that are still
            // there: they were the first `limit` old enough in `seq` order.
            let tx = store.write().await?;
            let gone = events::Entity::delete_many()
                .filter(events::Column::TenantId.eq(tenant.as_str()))
                .filter(events::Column::Seq.between(first, last))
                .filter(events::Column::CreatedAt.lt(before))
                .exec(tx.conn())
                .await?
                .rows_affected;
            tx.commit().await?;
            deleted += gone;
            if (seqs.len() as u64) < limit {
                break;
            }
        }
    }
    Ok(Pruned {
        deleted,
        is_complete: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A read that answered `n` events of `size` bytes each.
    fn answered(n: usize, size: u64) -> Read {
        Read {
            events: (1..=n as i64)
                .map(|seq| Event {
                    tenant_id: "t".into(),
                    seq,
                    r#type: "user.created".into(),
                    resource_type: "user".into(),
                    resource_id: format!("u{seq}"),
                    data: Value::Null,
                    created_at: 0,
                })
                .collect(),
            bytes: n as u64 * size,
            is_cut: false,
        }
    }

    #[rstest::rstest]
    #[case::a_first_chunk(1000, 4 << 20, 0, 0, FIRST_CHUNK)]
    #[case::a_first_chunk_past_a_small_count(5, 4 << 20, 0, 0, 6)]
    #[case::small_events_fill_a_whole_chunk(1000, 4 << 20, 64, 1_000, MAX_CHUNK)]
    #[case::large_events_fetch_what_the_bytes_left_hold_and_one(1000, 100_000, 5, 10_000, 6)]
    #[case::a_full_budget_fetches_one_to_find_the_end(1000, 50_000, 5, 10_000, 1)]
    #[case::the_count_reached_fetches_one_to_say_whether_more_follow(64, 4 << 20, 64, 1_000, 1)]
    fn a_chunk_holds_what_the_budget_has_left_and_one_row_more(
        #[case] count: u64,
        #[case] bytes: u64,
        #[case] n: usize,
        #[case] size: u64,
        #[case] rows: u64,
    ) {
        let budget = Budget { count, bytes };
        assert_eq!(chunk_rows(budget, &answered(n, size)), rows);
    }
}
