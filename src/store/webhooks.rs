//! Webhook endpoints and their delivery attempts. An endpoint's position in
//! its tenant's feed (`delivered_seq`) moves only forward past an event the
//! endpoint took (or does not take, by its types), only by the replica that
//! holds its lease, and in the same transaction as the attempt's log row: a
//! crash between the send and this write sends the event again (at least
//! once, same `webhook-id`), never skips it.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::entities::{webhook_attempts, webhook_endpoints};
use super::pages::{self, Anchor, Page};
use super::{Conn, Result, StoreError};

pub use webhook_attempts::Model as Attempt;
pub use webhook_endpoints::Model as Endpoint;

fn lease_free(now: i64) -> Condition {
    Condition::any()
        .add(webhook_endpoints::Column::LeaseOwner.is_null())
        .add(webhook_endpoints::Column::LeaseExpiresAt.lt(now))
}

pub async fn insert<C: Conn>(conn: &C, endpoint: Endpoint) -> Result<Endpoint> {
    let model: webhook_endpoints::ActiveModel = endpoint.into();
    Ok(model.insert(conn).await?)
}

/// An endpoint of a tenant; NotFound for another tenant's.
pub async fn endpoint_in<C: Conn>(conn: &C, tenant_id: &str, id: &str) -> Result<Endpoint> {
    webhook_endpoints::Entity::find_by_id(id.to_owned())
        .filter(webhook_endpoints::Column::TenantId.eq(tenant_id))
        .one(conn)
        .await?
        .ok_or(StoreError::NotFound)
}

pub async fn endpoint<C: Conn>(conn: &C, id: &str) -> Result<Endpoint> {
    webhook_endpoints::Entity::find_by_id(id.to_owned())
        .one(conn)
        .await?
        .ok_or(StoreError::NotFound)
}

/// A page of a tenant's endpoints, oldest first.
pub async fn endpoints<C: Conn>(
    conn: &C,
    tenant_id: &str,
    from: &Anchor,
    limit: u64,
) -> Result<Page<Endpoint>> {
    let select =
        webhook_endpoints::Entity::find().filter(webhook_endpoints::Column::TenantId.eq(tenant_id));
    pages::window(conn, select, webhook_endpoints::Column::Id, from, limit).await
}

/// Every endpoint (key rotation).
pub async fn all<C: Conn>(conn: &C) -> Result<Vec<Endpoint>> {
    Ok(webhook_endpoints::Entity::find()
        .order_by_asc(webhook_endpoints::Column::Id)
        .all(conn)
        .await?)
}

/// Write what an operator changes (URL, description, types, batch size,
/// enabled and why not, the sealed secrets, the position): the columns a
/// delivery writes (failures, next attempt, lease) are left to it unless
/// `reset` says the endpoint starts afresh (re-enabled, replayed).
pub async fn save_definition<C: Conn>(conn: &C, endpoint: &Endpoint, reset: bool) -> Result<()> {
    use webhook_endpoints::Column as E;
    let mut update = webhook_endpoints::Entity::update_many()
        .col_expr(E::Url, Expr::value(endpoint.url.clone()))
        .col_expr(E::Description, Expr::value(endpoint.description.clone()))
        .col_expr(E::EventTypes, Expr::value(endpoint.event_types.clone()))
        .col_expr(E::BatchSize, Expr::value(endpoint.batch_size))
        .col_expr(E::Enabled, Expr::value(endpoint.enabled))
        .col_expr(
            E::DisabledReason,
            Expr::value(endpoint.disabled_reason.clone()),
        )
        .col_expr(E::SecretSealed, Expr::value(endpoint.secret_sealed.clone()))
        .col_expr(
            E::PreviousSecretSealed,
            Expr::value(endpoint.previous_secret_sealed.clone()),
        )
        .col_expr(
            E::PreviousExpiresAt,
            Expr::value(endpoint.previous_expires_at),
        )
        .col_expr(E::UpdatedAt, Expr::value(endpoint.updated_at));
    if reset {
        update = update
            .col_expr(E::DeliveredSeq, Expr::value(endpoint.delivered_seq))
            .col_expr(E::Failures, Expr::value(0))
            .col_expr(E::NextAttemptAt, Expr::value(endpoint.updated_at));
    }
    update
        .filter(E::Id.eq(endpoint.id.clone()))
        .exec(conn)
        .await?;
    Ok(())
}

pub async fn delete<C: Conn>(conn: &C, id: &str) -> Result<()> {
    webhook_endpoints::Entity::delete_by_id(id.to_owned())
        .exec(conn)
        .await?;
    Ok(())
}

/// Enabled endpoints whose next attempt is due, whose lease is free, and
/// whose tenant's feed holds events after their position.
pub async fn due<C: Conn>(conn: &C, now: i64, limit: u64) -> Result<Vec<Endpoint>> {
    use webhook_endpoints::Column as E;
    Ok(webhook_endpoints::Entity::find()
        .filter(E::Enabled.eq(true))
        .filter(E::NextAttemptAt.lte(now))
        .filter(lease_free(now))
        .filter(Expr::cust(
            "webhook_endpoints.delivered_seq < (SELECT event_sequences.last_seq \
             FROM event_sequences WHERE event_sequences.tenant_id = webhook_endpoints.tenant_id)",
        ))
        .order_by_asc(E::NextAttemptAt)
        .limit(limit)
        .all(conn)
        .await?)
}

/// Take (or renew) the endpoint's lease until `now + ttl_ms`: true when
/// `owner` holds it now.
pub async fn take_lease<C: Conn>(
    conn: &C,
    id: &str,
    owner: &str,
    now: i64,
    ttl_ms: i64,
) -> Result<bool> {
    use webhook_endpoints::Column as E;
    let done = webhook_endpoints::Entity::update_many()
        .col_expr(E::LeaseOwner, Expr::value(owner))
        .col_expr(E::LeaseExpiresAt, Expr::value(now + ttl_ms))
        .filter(E::Id.eq(id))
        .filter(
            Condition::any()
                .add(lease_free(now))
                .add(E::LeaseOwner.eq(owner)),
        )
        .exec(conn)
        .await?;
    Ok(done.rows_affected == 1)
}

/// Give the lease back (only if `owner` still holds it).
pub async fn release_lease<C: Conn>(conn: &C, id: &str, owner: &str) -> Result<()> {
    use webhook_endpoints::Column as E;
    webhook_endpoints::Entity::update_many()
        .col_expr(E::LeaseOwner, Expr::value(Option::<String>::None))
        .col_expr(E::LeaseExpiresAt, Expr::value(Option::<i64>::None))
        .filter(E::Id.eq(id))
        .filter(E::LeaseOwner.eq(owner))
        .exec(conn)
        .await?;
    Ok(())
}

/// Why an endpoint stops after an attempt that failed.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// Tried again at `at`, the failures counted so far.
    Retry { failures: i32, at: i64 },
    /// Given up on (retries exhausted, 410 Gone): disabled, saying why.
    Disable { failures: i32, reason: String },
}

/// What a run of attempts did to the endpoint: its position moves from
/// `from` (where the worker read it) to `to` (past what was taken, or
/// skipped by its types), and the last attempt may have failed.
#[derive(Debug, Clone, PartialEq)]
pub struct Advance {
    pub from: i64,
    pub to: i64,
    pub failure: Option<Failure>,
}

/// How a record went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Written, and the lease renewed.
    Kept,
    /// The attempts are logged, but an operator moved the position
    /// meanwhile (a replay, a re-enable): the position is theirs.
    Moved,
    /// Another replica holds the lease (ours lapsed): nothing written.
    Lost,
}

/// Record a run of attempts (none: events skipped by type, or only the
/// lease renewed) and their effect on the endpoint, only while `owner`
/// holds the lease, and renew it until `lease_until`. The position moves
/// only if it is still `progress.from`.
pub async fn record<C: Conn>(
    conn: &C,
    endpoint_id: &str,
    owner: &str,
    attempts: Vec<Attempt>,
    progress: Advance,
    now: i64,
    lease_until: i64,
) -> Result<Recorded> {
    use webhook_endpoints::Column as E;
    let mut update = webhook_endpoints::Entity::update_many()
        .col_expr(E::UpdatedAt, Expr::value(now))
        .col_expr(E::LeaseExpiresAt, Expr::value(lease_until))
        .col_expr(E::DeliveredSeq, Expr::value(progress.to));
    update = match progress.failure {
        None => update
            .col_expr(E::Failures, Expr::value(0))
            .col_expr(E::NextAttemptAt, Expr::value(now)),
        Some(Failure::Retry { failures, at }) => update
            .col_expr(E::Failures, Expr::value(failures))
            .col_expr(E::NextAttemptAt, Expr::value(at)),
        Some(Failure::Disable { failures, reason }) => update
            .col_expr(E::Failures, Expr::value(failures))
            .col_expr(E::Enabled, Expr::value(false))
            .col_expr(E::DisabledReason, Expr::value(reason)),
    };
    let done = update
        .filter(E::Id.eq(endpoint_id))
        .filter(E::LeaseOwner.eq(owner))
        .filter(E::DeliveredSeq.eq(progress.from))
        .exec(conn)
        .await?;
    let recorded = if done.rows_affected == 1 {
        Recorded::Kept
    } else if take_lease(conn, endpoint_id, owner, now, lease_until - now).await? {
        Recorded::Moved
    } else {
        return Ok(Recorded::Lost);
    };
    if !attempts.is_empty() {
        let models = attempts
            .into_iter()
            .map(webhook_attempts::ActiveModel::from);
        webhook_attempts::Entity::insert_many(models)
            .exec_without_returning(conn)
            .await?;
    }
    Ok(recorded)
}

/// Log an attempt that moves nothing (a test message).
pub async fn log_attempt<C: Conn>(conn: &C, attempt: Attempt) -> Result<()> {
    let model: webhook_attempts::ActiveModel = attempt.into();
    model.insert(conn).await?;
    Ok(())
}

/// A page of an endpoint's attempts, newest first.
pub async fn attempts<C: Conn>(
    conn: &C,
    endpoint_id: &str,
    from: &Anchor,
    limit: u64,
) -> Result<Page<Attempt>> {
    let select = webhook_attempts::Entity::find()
        .filter(webhook_attempts::Column::EndpointId.eq(endpoint_id));
    pages::window_newest_first(conn, select, webhook_attempts::Column::Id, from, limit).await
}

/// The sealed secrets of an endpoint, replaced only if they are still
/// `was` (key rotation): false when they changed meanwhile.
pub async fn reseal<C: Conn>(
    conn: &C,
    id: &str,
    was: &str,
    secret: String,
    previous: Option<String>,
) -> Result<bool> {
    use webhook_endpoints::Column as E;
    let done = webhook_endpoints::Entity::update_many()
        .col_expr(E::SecretSealed, Expr::value(secret))
        .col_expr(E::PreviousSecretSealed, Expr::value(previous))
        .filter(E::Id.eq(id))
        .filter(E::SecretSealed.eq(was))
        .exec(conn)
        .await?;
    Ok(done.rows_affected == 1)
}

/// Attempts logged before `before` (epoch ms), deleted in statements of at
/// most `chunk` rows; how many went.
pub async fn prune_attempts<C: Conn>(conn: &C, before: i64, chunk: u64) -> Result<u64> {
    let ids: Vec<String> = webhook_attempts::Entity::find()
        .select_only()
        .column(webhook_attempts::Column::Id)
        .filter(webhook_attempts::Column::AttemptedAt.lt(before))
        .limit(chunk)
        .into_tuple()
        .all(conn)
        .await?;
    if ids.is_empty() {
        return Ok(0);
    }
    let done = webhook_attempts::Entity::delete_many()
        .filter(webhook_attempts::Column::Id.is_in(ids))
        .exec(conn)
        .await?;
    Ok(done.rows_affected)
}
