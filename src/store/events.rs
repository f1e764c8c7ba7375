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
    pub data: Value,
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
        .map(|(e, seq)| events::ActiveModel {
            tenant_id: sea_orm::ActiveValue::Set(tenant_id.to_owned()),
            seq: sea_orm::ActiveValue::Set(seq),
            r#type: sea_orm::ActiveValue::Set(e.r#type.as_str().to_owned()),
            resource_type: sea_orm::ActiveValue::Set(e.resource_type.to_owned()),
            resource_id: sea_orm::ActiveValue::Set(e.resource_id),
            data: sea_orm::ActiveValue::Set(e.data),
            created_at: sea_orm::ActiveValue::Set(now),
        })
        .peekable();
    while rows.peek().is_some() {
        let chunk: Vec<_> = rows.by_ref().take(CHUNK).collect();
        events::Entity::insert_many(chunk)
            .exec_without_returning(conn)
            .await?;
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

/// A page of a tenant's events after `after`, in sequence order.
pub async fn after<C: ConnectionTrait>(
    conn: &C,
    tenant_id: &str,
    after: i64,
    limit: u64,
) -> Result<Vec<Event>> {
    Ok(events::Entity::find()
        .filter(events::Column::TenantId.eq(tenant_id))
        .filter(events::Column::Seq.gt(after))
        .order_by_asc(events::Column::Seq)
        .limit(limit)
        .all(conn)
        .await?)
}

/// What a reader of the feed asks for besides the position.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only these types (any of them); empty: every type.
    pub types: Vec<String>,
    pub resource_id: Option<String>,
}

/// A page of a tenant's events after `after` that pass `filter`, in
/// sequence order (the `(tenant_id, seq)` key keeps it an index range).
pub async fn page<C: ConnectionTrait>(
    conn: &C,
    tenant_id: &str,
    after: i64,
    limit: u64,
    filter: &EventFilter,
) -> Result<Vec<Event>> {
    let mut select = events::Entity::find()
        .filter(events::Column::TenantId.eq(tenant_id))
        .filter(events::Column::Seq.gt(after));
    if !filter.types.is_empty() {
        select = select.filter(events::Column::Type.is_in(filter.types.iter().cloned()));
    }
    if let Some(id) = &filter.resource_id {
        select = select.filter(events::Column::ResourceId.eq(id.as_str()));
    }
    Ok(select
        .order_by_asc(events::Column::Seq)
        .limit(limit)
        .all(conn)
        .await?)
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
