//! The per-directory SCIM request log: for each request a directory's token
//! authenticated, when it came, what it asked (method, path with query),
//! how it was answered (status, duration, the SCIM error), what the engine
//! made of each resource it wrote, and, when the server keeps them, its
//! bodies with secrets removed.
//!
//! Recording never holds a SCIM request up: `record` (the middleware on
//! `/scim/v2`) hands the finished record to a bounded queue and moves on;
//! a full queue drops the record and counts it
//! (`dirsync_scim_log_dropped_total`). One background writer sleeps
//! `GATHER`, takes what was queued meanwhile, writes it in one transaction,
//! a row for each directory's (`store::scim_requests`), and trims each
//! directory it wrote to its newest `--scim-log-keep`;
//! `retention` prunes by age. On SQLite the log is a file of its own (`Store::scim_log`): its
//! writes never wait for the directories' writer lock, nor hold it. The
//! engine's outcomes reach the record through the request: the middleware puts a
//! `Trail` in the request's extensions, the `Caller` extractor carries it
//! to the handler, and `scim::write` adds what the unit of work answered.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::HeaderMap;
use actix_web::web::Bytes;
use actix_web::{Error, HttpMessage, web};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{Notify, mpsc, oneshot};
use tracing::warn;

use super::ScimState;
use super::auth::Caller;
use super::error::ScimError;
use crate::domain::text;
use crate::reconcile::apply::Applied;
use crate::reconcile::model::Outcome;
use crate::retention::Retention;
use crate::store::Store;
use crate::store::scim_requests::{self, Request};

/// Longest path (with its query string) a record keeps, in characters.
pub const PATH_CHARS: usize = 2048;
/// Longest SCIM error detail a record keeps, in characters.
pub const DETAIL_CHARS: usize = 1024;
/// Most resource outcomes one record keeps (a Bulk request may write a
/// thousand); past them the record says how many it left out.
pub const OUTCOMES_MAX: usize = 100;
/// Longest body a record keeps, in bytes; a longer one is cut.
pub const BODY_BYTES: usize = 65_536;
/// Most records one write of the log takes.
const BATCH: usize = 1000;
/// How long the writer sleeps, once it has a record, before it writes what
/// came. Every commit writes each page it touched whole into SQLite's WAL
/// (checksummed): with a record a commit the log added over a quarter to a
/// SCIM create's instructions; S1 on SQLite went from −20% to −10% with
/// 50 ms. With a batch a row, a batch's own statements are most of what is
/// left to share out: at S1's rate 200 ms gathers four times the records of
/// 50 ms, and the writer's instructions a record fall by a sixth
/// (`bench/scim_log_write.rs`; README "SCIM request log"). A request shows
/// in the log a fifth of a second after it is answered.
const GATHER: std::time::Duration = std::time::Duration::from_millis(200);
/// What stands where a secret was.
pub const REMOVED: &str = "[removed]";

/// How the log behaves (`--scim-log-*`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Requests kept per directory, the newest; 0 turns the log off.
    pub keep: u64,
    /// How long a request is kept at most (`retention`'s hourly pass).
    pub retention: Retention,
    /// Keep request and response bodies (secrets removed).
    pub bodies: bool,
    /// Records waiting to be written at most; past this they are dropped.
    pub queue: usize,
}

/// What the engine made of one resource a request wrote, or why one Bulk
/// operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// The Bulk operation (0-based, request order); absent outside Bulk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<usize>,
    /// The directory's id for the user (the SCIM resource id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// `created`, `updated`, `unchanged`, `deactivated`, `reactivated`,
    /// `deleted`, `skipped`, `conflict`, `deferred`; `refused` for a Bulk
    /// operation that failed.
    pub outcome: &'static str,
    /// Why: a skip's, a conflict's or a deferral's reason; a refused
    /// operation's status, scimType and detail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// What an update changed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<String>,
}

impl Entry {
    fn of(applied: &Applied, operation: Option<usize>) -> Entry {
        let (why, changed) = match &applied.outcome {
            Outcome::Skipped(why) | Outcome::Conflict(why) | Outcome::Deferred(why) => {
                (Some(why.clone()), Vec::new())
            }
            Outcome::Updated(fields) => (None, fields.iter().map(|f| f.name().into()).collect()),
            _ => (None, Vec::new()),
        };
        Entry {
            operation,
            resource: Some(applied.source_id.clone()),
            outcome: applied.outcome.as_str(),
            why,
            changed,
        }
    }
}

/// The outcomes of one request, gathered as its writes commit. Cloned, it
/// is the same trail; one made for a Bulk operation tags what it gathers.
/// The default trail gathers nothing (the log is off, or no middleware).
#[derive(Clone, Default)]
pub struct Trail {
    entries: Option<Arc<Mutex<Vec<Entry>>>>,
    operation: Option<usize>,
}

impl std::fmt::Debug for Trail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trail")
            .field("is_on", &self.entries.is_some())
            .field("operation", &self.operation)
            .finish()
    }
}

impl Trail {
    fn new() -> Trail {
        Trail {
            entries: Some(Arc::new(Mutex::new(Vec::new()))),
            operation: None,
        }
    }

    /// The same trail, its entries tagged with Bulk operation `index`.
    pub fn operation(&self, index: usize) -> Trail {
        Trail {
            entries: self.entries.clone(),
            operation: Some(index),
        }
    }

    fn push(&self, entry: impl FnOnce() -> Entry) {
        if let Some(entries) = &self.entries {
            let mut entries = entries.lock().unwrap_or_else(|e| e.into_inner());
            entries.push(entry());
        }
    }

    /// What the engine made of the user changes a write handed over.
    pub fn applied(&self, applied: &[Applied]) {
        for a in applied {
            self.push(|| Entry::of(a, self.operation));
        }
    }

    /// A Bulk operation refused with `err`.
    pub fn refused(&self, err: &ScimError) {
        self.push(|| Entry {
            operation: self.operation,
            resource: None,
            outcome: "refused",
            why: Some(text::bounded(
                format!(
                    "{} {}: {}",
                    err.status.as_u16(),
                    err.scim_type.map_or("-", |t| t.as_str()),
                    err.detail
                ),
                DETAIL_CHARS,
            )),
            changed: Vec::new(),
        });
    }

    /// The entries as the record's JSON array, at most `OUTCOMES_MAX` of
    /// them and then one that says how many were left out.
    fn json(&self) -> String {
        let Some(entries) = &self.entries else {
            return "[]".to_owned();
        };
        let entries = entries.lock().unwrap_or_else(|e| e.into_inner());
        let omitted = (entries.len() > OUTCOMES_MAX).then(|| Entry {
            operation: None,
            resource: None,
            outcome: "omitted",
            why: Some(format!(
                "{} more outcomes not kept",
                entries.len() - OUTCOMES_MAX
            )),
            changed: Vec::new(),
        });
        let kept: Vec<&Entry> = entries
            .iter()
            .take(OUTCOMES_MAX)
            .chain(omitted.as_ref())
            .collect();
        serde_json::to_string(&kept).unwrap_or_else(|_| "[]".to_owned())
    }
}

/// The request body the `ScimBody` extractor read, kept in the request's
/// extensions when the log keeps bodies.
#[derive(Debug, Clone)]
pub struct ReadBody(pub Bytes);

/// Marks a request whose body the log keeps.
#[derive(Debug, Clone, Copy)]
pub struct KeepBody;

enum Message {
    Record(Box<Request>),
    /// Answered once every record queued before it is written.
    Flush(oneshot::Sender<()>),
}

impl Message {
    fn is_flush(&self) -> bool {
        matches!(self, Message::Flush(_))
    }
}

/// The log's entry point, shared by every request: cheap to clone. Off, it
/// records nothing.
#[derive(Clone)]
pub struct Recorder {
    queue: Option<mpsc::Sender<Message>>,
    /// Wakes the writer from its gathering when someone waits on a flush.
    hurry: Arc<Notify>,
    bodies: bool,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("is_on", &self.queue.is_some())
            .field("bodies", &self.bodies)
            .finish()
    }
}

impl Recorder {
    /// A recorder that records nothing.
    pub fn off() -> Recorder {
        Recorder {
            queue: None,
            hurry: Arc::default(),
            bodies: false,
        }
    }

    /// The log as `settings` say, its writer spawned on the current Tokio
    /// runtime (none when `keep` is 0: the log is off).
    pub fn start(store: Store, settings: &Settings) -> Recorder {
        if settings.keep == 0 {
            return Recorder::off();
        }
        let (recorder, queue) = Recorder::queued(settings.queue, settings.bodies);
        tokio::spawn(run(store, queue, recorder.hurry.clone(), settings.keep));
        recorder
    }

    /// A recorder and the queue it fills, `capacity` records deep.
    fn queued(capacity: usize, bodies: bool) -> (Recorder, mpsc::Receiver<Message>) {
        let (queue, rx) = mpsc::channel(capacity.max(1));
        let recorder = Recorder {
            queue: Some(queue),
            hurry: Arc::default(),
            bodies,
        };
        (recorder, rx)
    }

    pub fn is_on(&self) -> bool {
        self.queue.is_some()
    }

    /// Queue `request` for the writer, or drop it (and count the drop) when
    /// the queue is full: a SCIM request never waits on its log. Whether it
    /// was queued.
    pub fn record(&self, request: Request) -> bool {
        let Some(queue) = &self.queue else {
            return false;
        };
        match queue.try_send(Message::Record(Box::new(request))) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                crate::metrics::scim_log_dropped("full");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                crate::metrics::scim_log_dropped("stopped");
                false
            }
        }
    }

    /// Wait until every record queued so far is written (tests, shutdown).
    pub async fn flush(&self) {
        let Some(queue) = &self.queue else {
            return;
        };
        let (done, written) = oneshot::channel();
        if queue.send(Message::Flush(done)).await.is_ok() {
            self.hurry.notify_one();
            let _ = written.await;
        }
    }
}

/// The writer: from the first record it finds, sleep `GATHER` (or until
/// someone waits on a flush), then take what arrived, up to `BATCH`, and
/// write it in one transaction with each directory it touched trimmed to
/// its newest `keep`. Asleep, it is woken once a batch, not once a record
/// (every wake-up from an HTTP worker's thread is a futex call and a
/// context switch). A full batch is written at once: a backlog does not
/// wait.
async fn run(store: Store, mut queue: mpsc::Receiver<Message>, hurry: Arc<Notify>, keep: u64) {
    let mut messages = Vec::with_capacity(BATCH);
    while queue.recv_many(&mut messages, BATCH).await > 0 {
        if messages.len() < BATCH && !messages.iter().any(Message::is_flush) {
            tokio::select! {
                () = tokio::time::sleep(GATHER) => {}
                () = hurry.notified() => {}
            }
            while messages.len() < BATCH {
                match queue.try_recv() {
                    Ok(message) => messages.push(message),
                    Err(_) => break,
                }
            }
        }
        let mut records = Vec::with_capacity(messages.len());
        let mut flushes = Vec::new();
        for message in messages.drain(..) {
            match message {
                Message::Record(request) => records.push(*request),
                Message::Flush(done) => flushes.push(done),
            }
        }
        if !records.is_empty() {
            write(&store, records, keep).await;
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

async fn write(store: &Store, mut records: Vec<Request>, keep: u64) {
    let Err(err) = scim_requests::insert(store, &records, keep).await else {
        return;
    };
    records.sort_by(|a, b| a.directory_id.cmp(&b.directory_id));
    let directories: Vec<&[Request]> = records
        .chunk_by(|a, b| a.directory_id == b.directory_id)
        .collect();
    if directories.len() == 1 {
        warn!(error = %err, count = records.len(), "SCIM request log records were not written");
        return;
    }
    // On PostgreSQL a directory removed since its requests were answered
    // fails the whole transaction (its foreign key): write each
    // directory's on its own.
    warn!(error = %err, "the SCIM request log's batch failed; writing each directory's records on their own");
    for directory in directories {
        if let Err(err) = scim_requests::insert(store, directory, keep).await {
            warn!(error = %err, count = directory.len(), "SCIM request log records were not written");
        }
    }
}

/// Middleware on `/scim/v2` (outermost of its own): records each request
/// its `Caller` authenticated, once its response is ready.
pub async fn record(
    req: ServiceRequest,
    next: actix_web::middleware::Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let recorder = req
        .app_data::<web::Data<ScimState>>()
        .map(|state| state.log.clone())
        .filter(Recorder::is_on);
    let Some(recorder) = recorder else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let started = Instant::now();
    let id = uuid::Uuid::now_v7().to_string();
    let at = super::now_ms();
    let method = req.method().as_str().to_owned();
    let path = match req.query_string() {
        "" => req.path().to_owned(),
        query => format!("{}?{query}", req.path()),
    };
    let trail = Trail::new();
    req.extensions_mut().insert(trail.clone());
    let headers = recorder
        .bodies
        .then(|| headers_without_secrets(req.headers()));
    if recorder.bodies {
        req.extensions_mut().insert(KeepBody);
    }
    let res = next.call(req).await?.map_into_boxed_body();
    let directory_id = res
        .request()
        .extensions()
        .get::<Caller>()
        .map(|caller| caller.directory_id.clone());
    let Some(directory_id) = directory_id else {
        // No directory's token: nobody's log.
        return Ok(res);
    };
    let status = res.status().as_u16();
    let error = res.response().extensions().get::<ScimError>().cloned();
    let request_body = recorder.bodies.then(|| {
        let read = res.request().extensions().get::<ReadBody>().cloned();
        read.map(|b| body_without_secrets(&b.0))
    });
    let (res, response_body) = if recorder.bodies {
        let (res, body) = response_body(res);
        (res, Some(body))
    } else {
        (res, None)
    };
    let duration = started.elapsed();
    recorder.record(Request {
        id,
        directory_id,
        at,
        method,
        path: text::bounded(path, PATH_CHARS),
        status: i32::from(status),
        duration_ms: i64::try_from(duration.as_millis()).unwrap_or(i64::MAX),
        scim_type: error
            .as_ref()
            .and_then(|e| e.scim_type)
            .map(|t| t.as_str().to_owned()),
        detail: error.map(|e| text::bounded(e.detail, DETAIL_CHARS)),
        outcomes: trail.json(),
        request_headers: headers,
        request_body: request_body.flatten(),
        response_body: response_body.flatten(),
    });
    Ok(res)
}

/// The response with its body put back, and the body as the log keeps it
/// (a streamed body, read as it is sent, is not kept).
fn response_body(res: ServiceResponse<BoxBody>) -> (ServiceResponse<BoxBody>, Option<String>) {
    let (req, res) = res.into_parts();
    let (res, body) = res.into_parts();
    let (body, kept) = match body.try_into_bytes() {
        Ok(bytes) => {
            let kept = (!bytes.is_empty()).then(|| body_without_secrets(&bytes));
            (BoxBody::new(bytes), kept)
        }
        Err(body) => (body, Some("[streamed; not kept]".to_owned())),
    };
    (ServiceResponse::new(req, res.set_body(body)), kept)
}

/// Whether an attribute or header of this name holds a secret.
fn names_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "password",
        "secret",
        "token",
        "credential",
        "authorization",
        "cookie",
        "api-key",
        "apikey",
    ]
    .iter()
    .any(|s| name.contains(s))
}

/// A value that reads as a credential whatever its name: an auth scheme
/// and its token, or one long word of token characters.
fn looks_like_token(value: &str) -> bool {
    let value = value.trim();
    let lower = value.to_ascii_lowercase();
    if ["bearer ", "basic ", "token ", "sharedsecret "]
        .iter()
        .any(|scheme| lower.starts_with(scheme))
    {
        return true;
    }
    value.len() >= 32
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~+/=".contains(&b))
        && value.bytes().any(|b| b.is_ascii_digit())
        && value.bytes().any(|b| b.is_ascii_alphabetic())
}

/// The request's headers as a JSON object, secrets removed: a header named
/// like a credential, or whose value looks like a token.
fn headers_without_secrets(headers: &HeaderMap) -> String {
    let mut out = serde_json::Map::new();
    for (name, value) in headers {
        let value = value.to_str().unwrap_or("[not text]");
        let kept = if names_secret(name.as_str()) || looks_like_token(value) {
            REMOVED.to_owned()
        } else {
            text::bounded(value.to_owned(), 512)
        };
        out.insert(name.as_str().to_owned(), Value::String(kept));
    }
    Value::Object(out).to_string()
}

/// A body as the log keeps it: JSON with every secret removed (passwords
/// wherever they stand, PATCH operations whose path names one, values that
/// look like tokens), cut at `BODY_BYTES`; anything else only by its size.
pub fn body_without_secrets(bytes: &[u8]) -> String {
    let Ok(mut value) = serde_json::from_slice::<Value>(bytes) else {
        return format!("[{} bytes, not JSON; not kept]", bytes.len());
    };
    remove_secrets(&mut value);
    let text = value.to_string();
    if text.len() <= BODY_BYTES {
        return text;
    }
    let mut cut = BODY_BYTES;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…[cut at {BODY_BYTES} bytes]", &text[..cut])
}

fn remove_secrets(value: &mut Value) {
    match value {
        Value::Object(map) => {
            // A PATCH operation (RFC 7644 §3.5.2) whose path names a secret
            // carries it in `value`.
            let path_names_secret = map
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("path"))
                .and_then(|(_, v)| v.as_str())
                .is_some_and(names_secret);
            for (name, v) in map.iter_mut() {
                if names_secret(name) || (path_names_secret && name.eq_ignore_ascii_case("value")) {
                    *v = Value::String(REMOVED.to_owned());
                } else {
                    remove_secrets(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(remove_secrets),
        Value::String(s) if looks_like_token(s) => *s = REMOVED.to_owned(),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    fn request(directory: &str) -> Request {
        Request {
            id: uuid::Uuid::now_v7().to_string(),
            directory_id: directory.into(),
            at: 0,
            method: "POST".into(),
            path: "/scim/v2/Users".into(),
            status: 201,
            duration_ms: 1,
            scim_type: None,
            detail: None,
            outcomes: "[]".into(),
            request_headers: None,
            request_body: None,
            response_body: None,
        }
    }

    #[tokio::test]
    async fn a_full_queue_drops_the_record_instead_of_waiting() {
        // Nobody reads the queue: the writer is stuck (a slow database).
        let (recorder, _queue) = Recorder::queued(2, false);
        let started = Instant::now();
        assert!(recorder.record(request("d1")));
        assert!(recorder.record(request("d1")));
        assert!(!recorder.record(request("d1")), "the third is dropped");
        assert!(!recorder.record(request("d1")));
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn an_off_recorder_records_nothing() {
        assert!(!Recorder::off().record(request("d1")));
    }

    #[test]
    fn passwords_and_tokens_are_removed_from_bodies() {
        let body = json!({
            "userName": "ada@example.com",
            "password": "hunter2",
            "urn:x:ext": {"apiToken": "abc", "note": "Bearer abc.def"},
            "Operations": [
                {"op": "replace", "path": "password", "value": "s3cret"},
                {"op": "replace", "path": "title", "value": "Engineer"},
                {"op": "replace", "value": {"password": "again", "active": true}}
            ]
        });
        let kept: Value =
            serde_json::from_str(&body_without_secrets(body.to_string().as_bytes())).unwrap();
        assert_eq!(kept["userName"], "ada@example.com");
        assert_eq!(kept["password"], REMOVED);
        assert_eq!(kept["urn:x:ext"]["apiToken"], REMOVED);
        assert_eq!(kept["urn:x:ext"]["note"], REMOVED);
        assert_eq!(kept["Operations"][0]["value"], REMOVED);
        assert_eq!(kept["Operations"][1]["value"], "Engineer");
        assert_eq!(kept["Operations"][2]["value"]["password"], REMOVED);
        assert_eq!(kept["Operations"][2]["value"]["active"], true);
        assert!(!kept.to_string().contains("hunter2"));
    }

    #[test]
    fn token_looking_headers_are_removed() {
        let mut headers = HeaderMap::new();
        let mut add = |name: &'static str, value: &'static str| {
            headers.insert(
                actix_web::http::header::HeaderName::from_static(name),
                actix_web::http::header::HeaderValue::from_static(value),
            );
        };
        add("authorization", "Bearer 0123456789abcdef");
        add("x-custom", "aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dE3");
        add("user-agent", "Okta SCIM Client 1.0.0");
        add("content-type", "application/scim+json");
        let kept: Value = serde_json::from_str(&headers_without_secrets(&headers)).unwrap();
        assert_eq!(kept["authorization"], REMOVED);
        assert_eq!(kept["x-custom"], REMOVED);
        assert_eq!(kept["user-agent"], "Okta SCIM Client 1.0.0");
        assert_eq!(kept["content-type"], "application/scim+json");
    }

    #[test]
    fn a_long_trail_keeps_its_first_outcomes_and_says_how_many_it_left_out() {
        let trail = Trail::new();
        let applied: Vec<Applied> = (0..OUTCOMES_MAX + 5)
            .map(|i| Applied {
                source_id: format!("u{i}"),
                outcome: Outcome::Skipped("outside the allowed domains".into()),
                app_user_id: None,
                status: None,
            })
            .collect();
        trail.operation(3).applied(&applied);
        let kept: Value = serde_json::from_str(&trail.json()).unwrap();
        let kept = kept.as_array().unwrap();
        assert_eq!(kept.len(), OUTCOMES_MAX + 1);
        assert_eq!(
            kept[0],
            json!({"operation": 3, "resource": "u0", "outcome": "skipped", "why": "outside the allowed domains"})
        );
        assert_eq!(kept[OUTCOMES_MAX]["outcome"], "omitted");
    }
}
