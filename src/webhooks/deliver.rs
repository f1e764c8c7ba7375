//! The delivery worker. Each tick (every second, and at once when this
//! replica commits a write) it asks the store for enabled endpoints whose
//! next attempt is due and whose tenant has events past their position, and
//! delivers each on a task of its own under the endpoint's lease: the events
//! after the position, in order, `batch_size` per POST; a 2xx moves the
//! position past them, anything else waits for the next retry and holds the
//! endpoint's later events back (a failing endpoint holds back only itself).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::json;
use tracing::{info, instrument, warn};

use super::Settings;
use super::address::{self, UrlPolicy};
use super::sign;
use crate::admin::EventView;
use crate::crypto::{SealingKey, Secret};
use crate::store::events::{self, Event};
use crate::store::webhooks::{self as rows, Advance, Attempt, Endpoint, Failure, Recorded};
use crate::store::{Store, StoreError};

/// Messages sent before their attempts and the position are written
/// (a crash re-sends at most these).
const RUN_MESSAGES: usize = 64;
/// The longest sent messages wait to be written.
const RUN_AGE: Duration = Duration::from_millis(250);
/// How long a caught-up delivery waits for a new event before it gives the
/// endpoint back.
const LINGER: Duration = Duration::from_secs(1);
/// The shortest time between two looks for due endpoints (commits wake
/// the worker; under load that is hundreds of times a second).
const TICK_FLOOR: Duration = Duration::from_millis(100);
/// Endpoints one tick starts at most.
const DUE_PER_TICK: u64 = 64;
/// Events read at once past an endpoint's position (to find the ones its
/// types take).
const SCAN: u64 = 1_000;
/// Most bytes of an answer the log keeps.
pub const EXCERPT_BYTES: usize = 1_024;
/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The sealing context of an endpoint's secret: bound to its row.
fn context(endpoint_id: &str) -> Vec<u8> {
    format!("webhook:{endpoint_id}").into_bytes()
}

pub fn seal(key: &SealingKey, endpoint_id: &str, secret: &Secret) -> Result<String, String> {
    key.seal(secret.expose().as_bytes(), &context(endpoint_id))
        .map_err(|e| e.to_string())
}

pub fn open(key: &SealingKey, endpoint_id: &str, sealed: &str) -> Result<Secret, String> {
    key.open(sealed, &context(endpoint_id))
        .map_err(|e| e.to_string())
}

/// The secrets that sign now: the current one, and the previous one until
/// its overlap ends.
pub fn signing_secrets(
    key: &SealingKey,
    endpoint: &Endpoint,
    now: i64,
) -> Result<Vec<Secret>, String> {
    let mut secrets = vec![open(key, &endpoint.id, &endpoint.secret_sealed)?];
    if let (Some(previous), Some(until)) = (
        &endpoint.previous_secret_sealed,
        endpoint.previous_expires_at,
    ) && until > now
    {
        secrets.push(open(key, &endpoint.id, previous)?);
    }
    Ok(secrets)
}

/// Longest lease owner the column holds (`webhook_endpoints.lease_owner`).
const OWNER_MAX: usize = 64;

/// The owner of one delivery's lease: a fresh id, and as much of the
/// replica's name as the column has room for (for an operator reading it).
fn lease_owner(replica: &str) -> String {
    let id = uuid::Uuid::now_v7().simple().to_string();
    let room = OWNER_MAX - id.len() - 1;
    let replica: String = replica.chars().take(room).collect();
    format!("{id}@{replica}")
}

/// What one POST carried and how the endpoint answered.
#[derive(Debug, Clone)]
pub struct Sent {
    /// The HTTP status; None when no answer came.
    pub status: Option<u16>,
    pub latency: Duration,
    /// The start of the answer, or the error.
    pub excerpt: String,
    /// `Retry-After` of a 429 or 503.
    pub retry_after: Option<Duration>,
}

impl Sent {
    pub fn delivered(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// POST `body` as message `id`, signed by `secrets`, to `url`.
pub async fn post(
    client: &reqwest::Client,
    policy: UrlPolicy,
    url: &str,
    id: &str,
    secrets: &[Secret],
    body: Vec<u8>,
) -> Sent {
    let started = Instant::now();
    let failed = |excerpt: String| Sent {
        status: None,
        latency: started.elapsed(),
        excerpt,
        retry_after: None,
    };
    // The URL is checked again at send time: the server's policy may have
    // changed since the endpoint was saved.
    if let Err(why) = address::check_url(url, policy) {
        return failed(format!("refused: {why}"));
    }
    let timestamp = chrono::Utc::now().timestamp();
    let refs: Vec<&Secret> = secrets.iter().collect();
    let signature = match sign::signature(&refs, id, timestamp, &body) {
        Ok(s) => s,
        Err(why) => return failed(why),
    };
    let answer = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await;
    let mut response = match answer {
        Ok(r) => r,
        // Without the URL: an operator may have put a token in its query.
        Err(err) => return failed(describe(&err.without_url())),
    };
    let status = response.status().as_u16();
    let retry_after = matches!(status, 429 | 503)
        .then(|| retry_after(response.headers()))
        .flatten();
    let mut excerpt = Vec::new();
    while excerpt.len() < EXCERPT_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => excerpt.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(err) => {
                excerpt.extend_from_slice(describe(&err.without_url()).as_bytes());
                break;
            }
        }
    }
    excerpt.truncate(EXCERPT_BYTES);
    Sent {
        status: Some(status),
        latency: started.elapsed(),
        excerpt: String::from_utf8_lossy(&excerpt).into_owned(),
        retry_after,
    }
}

/// An error with its causes (reqwest's own text is only the outermost).
fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `Retry-After` in seconds or as an HTTP date (RFC 9110 §10.2.3).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    let wait = match value.trim().parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => {
            let at = httpdate::parse_http_date(value.trim()).ok()?;
            at.duration_since(std::time::SystemTime::now())
                .unwrap_or_default()
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// The wait before the next attempt after `failures` failed ones: the
/// schedule's, spread by up to a fifth either way so endpoints that failed
/// together do not all come back at once. None once the schedule is spent.
pub fn backoff(retries: &[Duration], failures: usize) -> Option<Duration> {
    let base = *retries.get(failures.checked_sub(1)?)?;
    let spread = base.as_secs_f64() * 0.2;
    let jitter = rand::rng().random_range(-spread..=spread);
    Some(Duration::from_secs_f64(
        (base.as_secs_f64() + jitter).max(0.0),
    ))
}

/// Whether an endpoint takes events of `type`.
pub fn takes(endpoint: &Endpoint, r#type: &str) -> bool {
    match endpoint.event_types.as_ref().and_then(|t| t.as_array()) {
        None => true,
        Some(types) => types.iter().any(|t| t.as_str() == Some(r#type)),
    }
}

/// One read's events (those the endpoint takes) as messages of `size`
/// events each, and whether the last events were held back: a shorter last
/// message goes only when the read reached the end of the backlog
/// (`!is_cut`) or it is the read's only one. Otherwise it waits for the
/// next read, which begins where it begins, so a message is the same
/// events (and `webhook-id`) however the reads before it fell: a retry, or
/// a replica that takes over, sends it again as it was sent.
pub fn messages(taken: Vec<Event>, size: usize, is_cut: bool) -> (Vec<Vec<Event>>, bool) {
    let size = size.max(1);
    let mut out: Vec<Vec<Event>> = Vec::new();
    let mut events = taken.into_iter().peekable();
    while events.peek().is_some() {
        out.push(events.by_ref().take(size).collect());
    }
    let short_tail = out.last().is_some_and(|m| m.len() < size);
    if is_cut && short_tail && out.len() > 1 {
        out.pop();
        return (out, true);
    }
    (out, false)
}

/// The body and `webhook-id` of a delivery: one event as the events API
/// shows it, or with `batch_size` > 1 `{"data": [...]}`.
pub fn message(endpoint: &Endpoint, batch: Vec<Event>) -> (String, Vec<u8>) {
    let tenant = endpoint.tenant_id.replace('-', "");
    let (first, last) = (
        batch.first().map_or(0, |e| e.seq),
        batch.last().map_or(0, |e| e.seq),
    );
    let views: Vec<EventView> = batch.into_iter().map(EventView::from).collect();
    if endpoint.batch_size <= 1 && views.len() == 1 {
        let id = views[0].id.clone();
        let body = serde_json::to_vec(&views[0]).unwrap_or_default();
        (id, body)
    } else {
        let id = format!("batch_{tenant}_{first}_{last}");
        let body = serde_json::to_vec(&json!({ "data": views })).unwrap_or_default();
        (id, body)
    }
}

/// The worker of one replica.
pub struct Worker {
    store: Store,
    key: Option<SealingKey>,
    settings: Settings,
    client: reqwest::Client,
    replica: String,
    /// Endpoints this replica is delivering now.
    busy: Mutex<HashSet<String>>,
}

impl Worker {
    pub fn new(
        store: Store,
        key: Option<SealingKey>,
        settings: Settings,
        replica: String,
    ) -> Result<Arc<Worker>, String> {
        settings.check()?;
        let client = address::client(settings.policy, settings.timeout)?;
        Ok(Arc::new(Worker {
            store,
            key,
            settings,
            client,
            replica,
            busy: Mutex::new(HashSet::new()),
        }))
    }

    /// Deliver until the process ends (and keep the delivery log within
    /// its retention, hourly).
    pub async fn run_forever(self: Arc<Self>) {
        let mut commits = self.store.commits();
        let mut pruned: Option<Instant> = None;
        loop {
            if pruned.is_none_or(|at| at.elapsed() >= Duration::from_secs(3600)) {
                match self.prune_log(now_ms()).await {
                    Ok(0) => {}
                    Ok(deleted) => {
                        info!(deleted, "webhook attempts past the log's retention deleted")
                    }
                    Err(err) => warn!(error = %err, "the webhook log could not be pruned"),
                }
                pruned = Some(Instant::now());
            }
            if let Err(err) = self.tick().await {
                warn!(error = %err, "webhook delivery could not look for due endpoints");
            }
            // Commits in the meantime are not lost: `changed` answers at
            // once for them.
            tokio::time::sleep(TICK_FLOOR).await;
            tokio::select! {
                _ = commits.changed() => {}
                _ = tokio::time::sleep(Duration::from_secs(1) - TICK_FLOOR) => {}
            }
        }
    }

    /// Delete attempts older than the log's retention at `now`, a thousand
    /// per transaction; how many went.
    pub async fn prune_log(&self, now: i64) -> Result<u64, StoreError> {
        let before = now - self.settings.log_retention.as_millis() as i64;
        let mut deleted = 0;
        loop {
            let tx = self.store.write().await?;
            let gone = rows::prune_attempts(tx.conn(), before, 1_000).await?;
            tx.commit().await?;
            deleted += gone;
            if gone < 1_000 {
                return Ok(deleted);
            }
        }
    }

    /// Start delivering every due endpoint this replica is not delivering.
    pub async fn tick(self: &Arc<Self>) -> Result<usize, StoreError> {
        let due = rows::due(self.store.connection(), now_ms(), DUE_PER_TICK).await?;
        let mut started = 0;
        for endpoint in due {
            if !self
                .busy
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(endpoint.id.clone())
            {
                continue;
            }
            started += 1;
            let worker = self.clone();
            tokio::spawn(async move {
                if let Err(err) = worker.deliver(&endpoint.id).await {
                    warn!(endpoint_id = %endpoint.id, error = %err, "webhook delivery stopped");
                }
                worker
                    .busy
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&endpoint.id);
            });
        }
        Ok(started)
    }

    /// Deliver one endpoint's due events under its lease, until it is
    /// caught up (and no new event came for a while), fails, or loses the
    /// lease.
    #[instrument(skip(self))]
    pub async fn deliver(&self, endpoint_id: &str) -> Result<(), StoreError> {
        // One owner per delivery: not even two tasks of this replica share
        // an endpoint.
        let owner = lease_owner(&self.replica);
        if !self.lease(endpoint_id, &owner).await? {
            return Ok(());
        }
        let result = self.deliver_leased(endpoint_id, &owner).await;
        let released = self.release(endpoint_id, &owner).await;
        result?;
        released
    }

    fn lease_ttl_ms(&self) -> i64 {
        self.settings.lease_ttl.as_millis() as i64
    }

    /// Take the lease. Every write of the worker goes through the store's
    /// write transaction: on SQLite a write beside it would make a
    /// concurrent SCIM transaction fail as busy.
    async fn lease(&self, endpoint_id: &str, owner: &str) -> Result<bool, StoreError> {
        let tx = self.store.write().await?;
        let taken =
            rows::take_lease(tx.conn(), endpoint_id, owner, now_ms(), self.lease_ttl_ms()).await?;
        tx.commit().await?;
        Ok(taken)
    }

    async fn release(&self, endpoint_id: &str, owner: &str) -> Result<(), StoreError> {
        let tx = self.store.write().await?;
        rows::release_lease(tx.conn(), endpoint_id, owner).await?;
        tx.commit().await
    }

    /// Send past the endpoint's position, `batch_size` events per POST, one
    /// after the other. What was sent is written in runs (`Unwritten`): a
    /// crash before a run is written sends its events again (at least
    /// once, same `webhook-id`), and each write renews the lease and sees
    /// what an operator changed meanwhile.
    async fn deliver_leased(&self, endpoint_id: &str, owner: &str) -> Result<(), StoreError> {
        let conn = self.store.connection();
        let mut commits = self.store.commits();
        let mut endpoint = rows::endpoint(conn, endpoint_id).await?;
        let mut run = Unwritten::new(endpoint.delivered_seq);
        let mut idle_since: Option<Instant> = None;
        loop {
            if !endpoint.enabled || endpoint.next_attempt_at > now_ms() {
                return Ok(());
            }
            // Seen before the read: a commit after it wakes the wait below.
            commits.borrow_and_update();
            let read = self.past(&endpoint, run.to).await?;
            if read.events.is_empty() {
                crate::metrics::webhook_lag(&endpoint.id, 0.0);
                if !run.is_empty(&endpoint) || run.since.elapsed() >= self.settings.lease_ttl / 4 {
                    if !self.write(&mut endpoint, owner, &mut run, None).await? {
                        return Ok(());
                    }
                    continue;
                }
                // Caught up: stay a moment for the next commit rather than
                // give the endpoint back and take it again for every event.
                let idle = idle_since.get_or_insert_with(Instant::now);
                let left = LINGER.saturating_sub(idle.elapsed());
                if left.is_zero() {
                    return Ok(());
                }
                tokio::select! {
                    _ = commits.changed() => continue,
                    _ = tokio::time::sleep(left) => return Ok(()),
                }
            }
            idle_since = None;
            let last_read = read.events.last().map_or(run.to, |e| e.seq);
            let taken: Vec<Event> = read
                .events
                .into_iter()
                .filter(|e| takes(&endpoint, &e.r#type))
                .collect();
            let size = endpoint.batch_size.max(1) as usize;
            let (messages, held_back) = messages(taken, size, read.is_cut);
            let mut batches = messages.into_iter().peekable();
            let mut restart = false;
            while batches.peek().is_some() {
                // The endpoint as it is now (another replica's operator may
                // have rotated its secret, disabled or replayed it): what
                // an operator changed applies from the next message.
                let fresh = rows::endpoint(self.store.connection(), &endpoint.id).await?;
                if changes_what_is_sent(&endpoint, &fresh) {
                    if !self.write(&mut endpoint, owner, &mut run, None).await? {
                        return Ok(());
                    }
                    restart = true;
                    break;
                }
                endpoint = fresh;
                let Some(batch) = batches.next() else {
                    break;
                };
                let now = now_ms();
                let oldest = batch.first().map_or(now, |e| e.created_at);
                crate::metrics::webhook_lag(&endpoint.id, (now - oldest).max(0) as f64 / 1000.0);
                let (first, last) = (batch[0].seq, batch[batch.len() - 1].seq);
                let sent = self.send(&endpoint, batch).await;
                let failed_before = if run.to > endpoint.delivered_seq {
                    0
                } else {
                    endpoint.failures
                };
                let (outcome, failure) = self.judge(failed_before, first, &sent);
                crate::metrics::webhook_attempt(&endpoint.id, outcome, sent.latency);
                run.attempts.push(Attempt {
                    id: uuid::Uuid::now_v7().to_string(),
                    endpoint_id: endpoint.id.clone(),
                    tenant_id: endpoint.tenant_id.clone(),
                    first_seq: first,
                    last_seq: last,
                    attempted_at: now,
                    status: sent.status.map(i32::from),
                    latency_ms: sent.latency.as_millis() as i64,
                    outcome: outcome.to_owned(),
                    excerpt: sent.excerpt,
                });
                if let Some(failure) = failure {
                    if let Failure::Disable { reason, .. } = &failure {
                        warn!(endpoint_id = %endpoint.id, %reason, "webhook endpoint disabled");
                    }
                    self.write(&mut endpoint, owner, &mut run, Some(failure))
                        .await?;
                    return Ok(());
                }
                run.to = last;
                if run.is_due(self.settings.lease_ttl) {
                    if !self.write(&mut endpoint, owner, &mut run, None).await? {
                        return Ok(());
                    }
                    // The endpoint as it is now: its URL, types or batch
                    // size may have changed.
                    break;
                }
            }
            if !restart && !held_back && batches.peek().is_none() && run.to < last_read {
                // The rest of what was read, its types do not take.
                run.to = last_read;
            }
        }
    }

    /// Write the run (and renew the lease); the endpoint as it is now.
    /// False when the lease is lost.
    async fn write(
        &self,
        endpoint: &mut Endpoint,
        owner: &str,
        run: &mut Unwritten,
        failure: Option<Failure>,
    ) -> Result<bool, StoreError> {
        let progress = Advance {
            from: endpoint.delivered_seq,
            to: run.to,
            failure,
        };
        let now = now_ms();
        let tx = self.store.write().await?;
        let recorded = rows::record(
            tx.conn(),
            &endpoint.id,
            owner,
            std::mem::take(&mut run.attempts),
            progress,
            now,
            now + self.lease_ttl_ms(),
        )
        .await?;
        if recorded == Recorded::Lost {
            // Another replica took the lease over (ours lapsed): what it
            // sends now is its own; ours goes again, at least once.
            info!(endpoint_id = %endpoint.id, "lost the endpoint's lease");
            return Ok(false);
        }
        *endpoint = rows::endpoint(tx.conn(), &endpoint.id).await?;
        tx.commit().await?;
        *run = Unwritten::new(endpoint.delivered_seq);
        Ok(true)
    }

    /// Events after `position`: as many as a run sends, or a scan's worth
    /// when the endpoint's types may skip some, and at most a message's
    /// bytes of them (the first whatever its size), so what a delivery
    /// holds follows the settings, never the events' sizes.
    async fn past(&self, endpoint: &Endpoint, position: i64) -> Result<events::Read, StoreError> {
        let size = endpoint.batch_size.max(1) as u64;
        let count = if endpoint.event_types.is_none() {
            (size * RUN_MESSAGES as u64).min(SCAN.max(size))
        } else {
            SCAN.max(size)
        };
        let budget = events::Budget {
            count,
            bytes: self.settings.max_message_bytes,
        };
        events::read(
            self.store.connection(),
            &endpoint.tenant_id,
            position,
            &events::EventFilter::default(),
            budget,
            EventView::size_of,
        )
        .await
    }

    async fn send(&self, endpoint: &Endpoint, batch: Vec<Event>) -> Sent {
        let secrets = match &self.key {
            None => {
                Err("the server has no DIRSYNC_SECRET_KEY to open the signing secret".to_owned())
            }
            Some(key) => signing_secrets(key, endpoint, now_ms()),
        };
        let secrets = match secrets {
            Ok(s) => s,
            Err(why) => {
                return Sent {
                    status: None,
                    latency: Duration::ZERO,
                    excerpt: format!("not sent: {why}"),
                    retry_after: None,
                };
            }
        };
        let (id, body) = message(endpoint, batch);
        post(
            &self.client,
            self.settings.policy,
            &endpoint.url,
            &id,
            &secrets,
            body,
        )
        .await
    }

    /// The outcome of an attempt (`delivered`, `failed`, `gone`, `error`)
    /// of a message that starts with event `first`, after `failed_before`
    /// failed attempts of it, and why the endpoint stops when it failed.
    fn judge(
        &self,
        failed_before: i32,
        first: i64,
        sent: &Sent,
    ) -> (&'static str, Option<Failure>) {
        if sent.delivered() {
            return ("delivered", None);
        }
        let failures = failed_before.saturating_add(1);
        if sent.status == Some(410) {
            return (
                "gone",
                Some(Failure::Disable {
                    failures,
                    reason: "the endpoint answered 410 Gone".into(),
                }),
            );
        }
        let outcome = if sent.status.is_some() {
            "failed"
        } else {
            "error"
        };
        let what = match sent.status {
            Some(status) => format!("HTTP {status}"),
            None => sent.excerpt.clone(),
        };
        let failure = match backoff(&self.settings.retries, failures as usize) {
            None => Failure::Disable {
                failures,
                reason: format!(
                    "gave up after {failures} failed attempts of event {first}: {what}"
                ),
            },
            Some(wait) => Failure::Retry {
                failures,
                at: now_ms() + sent.retry_after.unwrap_or(wait).as_millis() as i64,
            },
        };
        (outcome, Some(failure))
    }
}

/// Whether an operator changed, since `was` was read, what a delivery
/// sends or from where (its secrets sign from the next message without a
/// restart).
fn changes_what_is_sent(was: &Endpoint, now: &Endpoint) -> bool {
    now.enabled != was.enabled
        || now.delivered_seq != was.delivered_seq
        || now.next_attempt_at > was.next_attempt_at.max(now_ms())
        || now.url != was.url
        || now.event_types != was.event_types
        || now.batch_size != was.batch_size
}

/// What this delivery sent and has not written yet: the attempts, and the
/// position past what the endpoint took.
struct Unwritten {
    attempts: Vec<Attempt>,
    to: i64,
    since: Instant,
}

impl Unwritten {
    fn new(position: i64) -> Unwritten {
        Unwritten {
            attempts: Vec::new(),
            to: position,
            since: Instant::now(),
        }
    }

    /// Whether it holds nothing the endpoint's row does not say.
    fn is_empty(&self, endpoint: &Endpoint) -> bool {
        self.attempts.is_empty() && self.to == endpoint.delivered_seq
    }

    /// Whether to write it now: it holds a run's worth of messages, or
    /// it is as old as a run may be, or the lease needs renewing.
    fn is_due(&self, lease_ttl: Duration) -> bool {
        self.attempts.len() >= RUN_MESSAGES || self.since.elapsed() >= RUN_AGE.min(lease_ttl / 4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: i64) -> Event {
        Event {
            tenant_id: "t".into(),
            seq,
            r#type: "user.created".into(),
            resource_type: "user".into(),
            resource_id: format!("u{seq}"),
            data: json!({}),
            created_at: 0,
        }
    }

    fn seqs(messages: &[Vec<Event>]) -> Vec<Vec<i64>> {
        messages
            .iter()
            .map(|m| m.iter().map(|e| e.seq).collect())
            .collect()
    }

    #[rstest::rstest]
    #[case::whole_messages_only(7, 3, true, &[&[1, 2, 3][..], &[4, 5, 6]], true)]
    #[case::the_end_of_the_backlog_goes_short(7, 3, false, &[&[1, 2, 3][..], &[4, 5, 6], &[7]], false)]
    #[case::a_read_of_one_short_message_sends_it(2, 3, true, &[&[1, 2][..]], false)]
    #[case::an_exact_fit_holds_nothing_back(6, 3, true, &[&[1, 2, 3][..], &[4, 5, 6]], false)]
    #[case::nothing_read(0, 3, true, &[], false)]
    fn a_reads_short_tail_waits_for_the_next_read_unless_it_is_all_there_is(
        #[case] read: i64,
        #[case] size: usize,
        #[case] is_cut: bool,
        #[case] expected: &[&[i64]],
        #[case] held_back: bool,
    ) {
        let (out, held) = messages((1..=read).map(event).collect(), size, is_cut);
        let expected: Vec<Vec<i64>> = expected.iter().map(|m| m.to_vec()).collect();
        assert_eq!((seqs(&out), held), (expected, held_back));
    }

    #[test]
    fn backoff_follows_the_schedule_within_a_fifth_and_ends_with_it() {
        let retries = super::super::default_retries();
        for (i, base) in retries.iter().enumerate() {
            for _ in 0..20 {
                let wait = backoff(&retries, i + 1).unwrap().as_secs_f64();
                let b = base.as_secs_f64();
                assert!(
                    wait >= b * 0.8 - 1e-9 && wait <= b * 1.2 + 1e-9,
                    "{i}: {wait}"
                );
            }
        }
        assert_eq!(backoff(&retries, retries.len() + 1), None);
        assert_eq!(backoff(&retries, 0), None);
        let total: u64 = retries.iter().map(Duration::as_secs).sum();
        assert!(total >= 3 * 24 * 3600, "retries span three days: {total} s");
    }

    #[test]
    fn a_lease_owner_fits_its_column_whatever_the_replica_is_called() {
        let serve = format!("serve:{}", uuid::Uuid::now_v7());
        for replica in [
            "",
            "test",
            serve.as_str(),
            &"r".repeat(500),
            &"é".repeat(100),
        ] {
            let owner = lease_owner(replica);
            assert!(owner.chars().count() <= OWNER_MAX, "{owner}");
            assert_ne!(owner, lease_owner(replica), "one owner per delivery");
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_dates_and_is_capped() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "120".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(120)));
        h.insert("retry-after", "99999999".parse().unwrap());
        assert_eq!(retry_after(&h), Some(MAX_RETRY_AFTER));
        let soon = std::time::SystemTime::now() + Duration::from_secs(600);
        h.insert(
            "retry-after",
            httpdate::fmt_http_date(soon).parse().unwrap(),
        );
        let wait = retry_after(&h).unwrap().as_secs();
        assert!((590..=600).contains(&wait), "{wait}");
        h.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }
}
