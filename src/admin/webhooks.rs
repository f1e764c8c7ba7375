//! A tenant's webhook endpoints, as the API and the CLI manage them: create
//! (the signing secret shown once), read, change, enable and disable,
//! delete, send a test event, rotate the secret, replay from a sequence
//! number, and read the delivery log. The worker that delivers is
//! `webhooks::deliver`.

use serde::{Deserialize, Serialize};

use super::{AdminError, new_id, now, store_err};
use crate::crypto::SealingKey;
use crate::domain::event::EventType;
use crate::domain::time::rfc3339;
use crate::store::Store;
use crate::store::pages::{Anchor, Page};
use crate::store::webhooks::{self as rows, Attempt, Endpoint};
use crate::webhooks::deliver::{self, Sent};
use crate::webhooks::{Settings, address, sign};

/// Most events one POST may carry.
pub const MAX_BATCH: u32 = 1_000;
/// Longest description.
const MAX_DESCRIPTION: usize = 500;

/// A webhook endpoint as the API and the CLI show it (never its secret).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = Webhook)]
pub struct WebhookView {
    pub id: String,
    pub tenant_id: String,
    pub url: String,
    pub description: String,
    /// The event types it takes; null: every type.
    pub event_types: Option<Vec<String>>,
    /// Events per POST: 1 sends each event as its own message; more sends
    /// `{"data": [...]}`.
    pub batch_size: i32,
    pub enabled: bool,
    /// Why it is disabled (retries exhausted, 410 Gone, an operator).
    pub disabled_reason: Option<String>,
    /// The last event of the feed it took (or skipped by its types).
    pub delivered_seq: i64,
    /// Failed attempts of the event at its head.
    pub failures: i32,
    /// When the event at its head is tried again (RFC 3339).
    pub next_attempt_at: String,
    /// Until when the previous secret still signs too, after a rotation.
    pub previous_secret_until: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&Endpoint> for WebhookView {
    fn from(e: &Endpoint) -> WebhookView {
        WebhookView {
            id: e.id.clone(),
            tenant_id: e.tenant_id.clone(),
            url: e.url.clone(),
            description: e.description.clone(),
            event_types: types_of(e),
            batch_size: e.batch_size,
            enabled: e.enabled,
            disabled_reason: e.disabled_reason.clone(),
            delivered_seq: e.delivered_seq,
            failures: e.failures,
            next_attempt_at: rfc3339(e.next_attempt_at),
            previous_secret_until: e
                .previous_expires_at
                .filter(|until| *until > now())
                .map(rfc3339),
            created_at: rfc3339(e.created_at),
            updated_at: rfc3339(e.updated_at),
        }
    }
}

fn types_of(e: &Endpoint) -> Option<Vec<String>> {
    e.event_types.as_ref().and_then(|v| {
        v.as_array().map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect()
        })
    })
}

/// A new endpoint.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// https, or http to loopback when the server allows it.
    pub url: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Only these types; absent, null or empty: every type.
    #[serde(default)]
    pub event_types: Option<Vec<String>>,
    /// Events per POST, 1 (the default) to 1,000.
    #[serde(default)]
    pub batch_size: Option<u32>,
}

/// Changes to an endpoint; an absent field stays as it is.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookChange {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Only these types; empty: every type.
    #[serde(default)]
    pub event_types: Option<Vec<String>>,
    #[serde(default)]
    pub batch_size: Option<u32>,
}

/// An endpoint with its signing secret: the one answer that shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// `whsec_…`: verify deliveries with it (Standard Webhooks). Shown
    /// once.
    pub secret: String,
}

/// What a test delivery got back.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TestDelivery {
    pub delivered: bool,
    /// The HTTP status; null when no answer came.
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// The start of the answer (at most 1 KB), or the error.
    pub excerpt: String,
}

/// One delivery attempt as the log shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AttemptView {
    pub id: String,
    /// The events it carried: `first_seq` to `last_seq` (0 for a test).
    pub first_seq: i64,
    pub last_seq: i64,
    pub attempted_at: String,
    /// `delivered`, `failed`, `gone` (410), `error` (no answer) or `test`.
    pub outcome: String,
    pub status: Option<i32>,
    pub latency_ms: i64,
    /// At most 1 KB of the answer, or the error.
    pub excerpt: String,
}

impl From<&Attempt> for AttemptView {
    fn from(a: &Attempt) -> AttemptView {
        AttemptView {
            id: a.id.clone(),
            first_seq: a.first_seq,
            last_seq: a.last_seq,
            attempted_at: rfc3339(a.attempted_at),
            outcome: a.outcome.clone(),
            status: a.status,
            latency_ms: a.latency_ms,
            excerpt: a.excerpt.clone(),
        }
    }
}

fn no_key() -> AdminError {
    AdminError::Invalid(
        "the server has no DIRSYNC_SECRET_KEY: webhook signing secrets are sealed with it; \
         generate one with `dirsync secret-key generate`"
            .into(),
    )
}

fn check_url(url: &str, settings: &Settings) -> Result<String, AdminError> {
    address::check_url(url.trim(), settings.policy)
        .map(|u| u.to_string())
        .map_err(|why| AdminError::Invalid(format!("url: {why}")))
}

fn check_types(types: Option<Vec<String>>) -> Result<Option<serde_json::Value>, AdminError> {
    let Some(types) = types.filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    for t in &types {
        if t.parse::<EventType>().is_err() {
            let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
            return Err(AdminError::Invalid(format!(
                "event_types: unknown type {t:?} (one of {})",
                known.join(", ")
            )));
        }
    }
    let mut types = types;
    types.sort();
    types.dedup();
    Ok(Some(serde_json::json!(types)))
}

fn check_batch(batch: Option<u32>) -> Result<Option<i32>, AdminError> {
    match batch {
        None => Ok(None),
        Some(n) if (1..=MAX_BATCH).contains(&n) => Ok(Some(n as i32)),
        Some(_) => Err(AdminError::Invalid(format!(
            "batch_size: must be 1 to {MAX_BATCH}"
        ))),
    }
}

fn check_description(description: Option<String>) -> Result<Option<String>, AdminError> {
    match description {
        Some(d)
            if d.chars().count() > MAX_DESCRIPTION
                || d.chars().any(|c| c.is_control() && c != '\n') =>
        {
            Err(AdminError::Invalid(format!(
                "description: at most {MAX_DESCRIPTION} printable characters"
            )))
        }
        other => Ok(other),
    }
}

/// Write an endpoint's definition in a write transaction (on SQLite, a
/// write beside the store's writer would fail a concurrent one as busy).
async fn save(store: &Store, e: &Endpoint, reset: bool) -> Result<(), AdminError> {
    let tx = store.write().await.map_err(AdminError::Store)?;
    rows::save_definition(tx.conn(), e, reset)
        .await
        .map_err(AdminError::Store)?;
    tx.commit().await.map_err(AdminError::Store)
}

/// A tenant's id from its name (the CLI names tenants).
pub async fn tenant(store: &Store, name: &str) -> Result<String, AdminError> {
    super::tenant_id(store, name).await
}

/// The endpoint `id`, in `tenant_id` when given (the API's caller), or in
/// any tenant (the operator's CLI).
pub async fn endpoint(
    store: &Store,
    tenant_id: Option<&str>,
    id: &str,
) -> Result<Endpoint, AdminError> {
    let what = format!("webhook endpoint {id:?}");
    let found = match tenant_id {
        Some(t) => rows::endpoint_in(store.connection(), t, id).await,
        None => rows::endpoint(store.connection(), id).await,
    };
    found.map_err(store_err(what))
}

/// Create an endpoint; its secret is in this answer only. New endpoints
/// start after the tenant's newest event: they receive what happens from
/// now on (a replay reaches back).
pub async fn create(
    store: &Store,
    key: Option<&SealingKey>,
    settings: &Settings,
    tenant_id: &str,
    new: NewWebhook,
) -> Result<WebhookWithSecret, AdminError> {
    let key = key.ok_or_else(no_key)?;
    let url = check_url(&new.url, settings)?;
    let event_types = check_types(new.event_types)?;
    let batch_size = check_batch(new.batch_size)?.unwrap_or(1);
    let description = check_description(new.description)?.unwrap_or_default();
    let id = new_id();
    let secret = sign::new_secret();
    let sealed = deliver::seal(key, &id, &secret).map_err(AdminError::Invalid)?;
    let now = now();
    let newest = crate::store::events::last_seq(store.connection(), tenant_id)
        .await
        .map_err(AdminError::Store)?;
    let tx = store.write().await.map_err(AdminError::Store)?;
    let endpoint = rows::insert(
        tx.conn(),
        Endpoint {
            id,
            tenant_id: tenant_id.to_owned(),
            url,
            description,
            event_types,
            batch_size,
            enabled: true,
            disabled_reason: None,
            secret_sealed: sealed,
            previous_secret_sealed: None,
            previous_expires_at: None,
            delivered_seq: newest,
            failures: 0,
            next_attempt_at: now,
            lease_owner: None,
            lease_expires_at: None,
            created_at: now,
            updated_at: now,
        },
    )
    .await
    .map_err(AdminError::Store)?;
    tx.commit().await.map_err(AdminError::Store)?;
    Ok(WebhookWithSecret {
        webhook: WebhookView::from(&endpoint),
        secret: secret.expose().to_owned(),
    })
}

/// A page of the tenant's endpoints.
pub async fn list(
    store: &Store,
    tenant_id: &str,
    from: &Anchor,
    limit: u64,
) -> Result<Page<Endpoint>, AdminError> {
    rows::endpoints(store.connection(), tenant_id, from, limit)
        .await
        .map_err(AdminError::Store)
}

/// Change an endpoint's URL, description, types or batch size.
pub async fn update(
    store: &Store,
    settings: &Settings,
    tenant_id: Option<&str>,
    id: &str,
    change: WebhookChange,
) -> Result<WebhookView, AdminError> {
    let mut e = endpoint(store, tenant_id, id).await?;
    if let Some(url) = &change.url {
        e.url = check_url(url, settings)?;
    }
    if let Some(description) = check_description(change.description)? {
        e.description = description;
    }
    if change.event_types.is_some() {
        e.event_types = check_types(change.event_types)?;
    }
    if let Some(batch) = check_batch(change.batch_size)? {
        e.batch_size = batch;
    }
    e.updated_at = now();
    save(store, &e, false).await?;
    Ok(WebhookView::from(&e))
}

/// Enable an endpoint (it resumes from the first event it has not taken,
/// tried at once) or disable it (its events wait in the outbox).
pub async fn set_enabled(
    store: &Store,
    tenant_id: Option<&str>,
    id: &str,
    enabled: bool,
) -> Result<WebhookView, AdminError> {
    let mut e = endpoint(store, tenant_id, id).await?;
    let reset = enabled && !e.enabled;
    e.enabled = enabled;
    e.disabled_reason = (!enabled).then(|| "disabled by an operator".to_owned());
    e.updated_at = now();
    save(store, &e, reset).await?;
    if reset {
        e.failures = 0;
        e.next_attempt_at = e.updated_at;
    }
    Ok(WebhookView::from(&e))
}

/// Deliver again from event `from_seq` of the tenant's feed (every later
/// event its types take, in order, once more), tried at once.
pub async fn replay(
    store: &Store,
    tenant_id: Option<&str>,
    id: &str,
    from_seq: i64,
) -> Result<WebhookView, AdminError> {
    if from_seq < 1 {
        return Err(AdminError::Invalid("from_seq: at least 1".into()));
    }
    let mut e = endpoint(store, tenant_id, id).await?;
    e.delivered_seq = from_seq - 1;
    e.updated_at = now();
    save(store, &e, true).await?;
    e.failures = 0;
    e.next_attempt_at = e.updated_at;
    Ok(WebhookView::from(&e))
}

pub async fn delete(
    store: &Store,
    tenant_id: Option<&str>,
    id: &str,
) -> Result<WebhookView, AdminError> {
    let e = endpoint(store, tenant_id, id).await?;
    let tx = store.write().await.map_err(AdminError::Store)?;
    rows::delete(tx.conn(), &e.id)
        .await
        .map_err(AdminError::Store)?;
    tx.commit().await.map_err(AdminError::Store)?;
    Ok(WebhookView::from(&e))
}

/// A new signing secret, shown once; the previous one signs too for the
/// server's rotation overlap, so receivers can switch without losing a
/// delivery.
pub async fn rotate_secret(
    store: &Store,
    key: Option<&SealingKey>,
    settings: &Settings,
    tenant_id: Option<&str>,
    id: &str,
) -> Result<WebhookWithSecret, AdminError> {
    let key = key.ok_or_else(no_key)?;
    let mut e = endpoint(store, tenant_id, id).await?;
    let secret = sign::new_secret();
    let now = now();
    e.previous_secret_sealed = Some(e.secret_sealed.clone());
    e.previous_expires_at = Some(now + settings.rotation_overlap.as_millis() as i64);
    e.secret_sealed = deliver::seal(key, &e.id, &secret).map_err(AdminError::Invalid)?;
    e.updated_at = now;
    save(store, &e, false).await?;
    Ok(WebhookWithSecret {
        webhook: WebhookView::from(&e),
        secret: secret.expose().to_owned(),
    })
}

/// Send a `webhook.test` message now, outside the feed (it moves nothing),
/// and log the attempt.
pub async fn send_test(
    store: &Store,
    key: Option<&SealingKey>,
    settings: &Settings,
    tenant_id: Option<&str>,
    id: &str,
) -> Result<TestDelivery, AdminError> {
    let key = key.ok_or_else(no_key)?;
    let e = endpoint(store, tenant_id, id).await?;
    let secrets = deliver::signing_secrets(key, &e, now()).map_err(AdminError::Invalid)?;
    let message_id = format!("test_{}", uuid::Uuid::now_v7().simple());
    let body = serde_json::json!({
        "id": message_id,
        "type": "webhook.test",
        "data": {"webhook_id": e.id},
        "created_at": rfc3339(now()),
    });
    let client = address::client(settings.policy, settings.timeout).map_err(AdminError::Invalid)?;
    let sent: Sent = deliver::post(
        &client,
        settings.policy,
        &e.url,
        &message_id,
        &secrets,
        serde_json::to_vec(&body).unwrap_or_default(),
    )
    .await;
    let attempt = Attempt {
        id: new_id(),
        endpoint_id: e.id.clone(),
        tenant_id: e.tenant_id.clone(),
        first_seq: 0,
        last_seq: 0,
        attempted_at: now(),
        status: sent.status.map(i32::from),
        latency_ms: sent.latency.as_millis() as i64,
        outcome: "test".into(),
        excerpt: sent.excerpt.clone(),
    };
    let tx = store.write().await.map_err(AdminError::Store)?;
    rows::log_attempt(tx.conn(), attempt)
        .await
        .map_err(AdminError::Store)?;
    tx.commit().await.map_err(AdminError::Store)?;
    Ok(TestDelivery {
        delivered: sent.delivered(),
        status: sent.status,
        latency_ms: sent.latency.as_millis() as u64,
        excerpt: sent.excerpt,
    })
}

/// A page of an endpoint's delivery log, newest first.
pub async fn attempts(
    store: &Store,
    tenant_id: Option<&str>,
    id: &str,
    from: &Anchor,
    limit: u64,
) -> Result<Page<Attempt>, AdminError> {
    let e = endpoint(store, tenant_id, id).await?;
    rows::attempts(store.connection(), &e.id, from, limit)
        .await
        .map_err(AdminError::Store)
}

/// Re-seal every endpoint's secrets under `new` in the caller's transaction
/// (the key rotation that re-seals connection credentials too).
pub async fn reseal_all<C: crate::store::Conn>(
    conn: &C,
    old: &SealingKey,
    new: &SealingKey,
) -> Result<u64, AdminError> {
    let mut rotated = 0;
    for e in rows::all(conn).await.map_err(AdminError::Store)? {
        if e.secret_sealed.split('.').nth(1) == Some(new.id()) {
            continue;
        }
        let reseal = |sealed: &str| -> Result<String, AdminError> {
            let secret = deliver::open(old, &e.id, sealed)
                .map_err(|why| AdminError::Invalid(format!("webhook endpoint {}: {why}", e.id)))?;
            deliver::seal(new, &e.id, &secret).map_err(AdminError::Invalid)
        };
        let secret = reseal(&e.secret_sealed)?;
        let previous = e
            .previous_secret_sealed
            .as_deref()
            .map(reseal)
            .transpose()?;
        if !rows::reseal(conn, &e.id, &e.secret_sealed, secret, previous)
            .await
            .map_err(AdminError::Store)?
        {
            return Err(AdminError::Invalid(format!(
                "the secret of webhook endpoint {} changed during the rotation; run it again",
                e.id
            )));
        }
        rotated += 1;
    }
    Ok(rotated)
}
