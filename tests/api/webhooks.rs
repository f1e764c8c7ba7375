//! Webhooks against a local receiver on port 0: every event delivered in
//! order and signed (checked by a verifier written here, apart from the
//! signer), a receiver that fails and recovers loses nothing, exhaustion
//! disables and enabling resumes, 410 disables, replay, secret rotation with
//! both signatures, event-type filters, refused URLs, the test message.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;

use dirsync::webhooks::{Settings, deliver::Worker};

use crate::helpers::{TestApp, spawn_app};
use crate::host_api::{call, get, seed_large, token};

/// What the receiver got.
#[derive(Debug, Clone)]
pub struct Got {
    pub headers: HashMap<String, String>,
    pub body: String,
    /// What it answered.
    status: u16,
}

#[derive(Default)]
struct Script {
    /// Statuses to answer, in turn; then 200.
    answers: VecDeque<u16>,
    got: Vec<Got>,
    /// How long each answer takes.
    delay_ms: u64,
    /// The first this many requests take 1 s (past a short timeout).
    slow_first: usize,
    /// Requests being answered now, and the most there ever were.
    at_once: usize,
    most_at_once: usize,
}

pub struct Receiver {
    pub url: String,
    script: Arc<Mutex<Script>>,
    _server: actix_web::dev::ServerHandle,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let script = Arc::new(Mutex::new(Script::default()));
        let shared = web::Data::from(script.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .default_service(web::to(receive))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Receiver {
            url: format!("http://127.0.0.1:{port}/hook"),
            script,
            _server: handle,
        }
    }

    fn answer(&self, statuses: &[u16]) {
        self.script.lock().unwrap().answers.extend(statuses);
    }

    pub fn got(&self) -> Vec<Got> {
        self.script.lock().unwrap().got.clone()
    }

    /// The bodies it took (2xx), parsed.
    fn taken(&self) -> Vec<Value> {
        self.got()
            .into_iter()
            .filter(|g| (200..300).contains(&g.status))
            .map(|g| serde_json::from_str(&g.body).unwrap())
            .collect()
    }

    /// Wait until it took `n` messages (or fail after 20 s).
    pub async fn wait_for(&self, n: usize) -> Vec<Value> {
        for _ in 0..400 {
            let taken = self.taken();
            if taken.len() >= n {
                return taken;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "the receiver took {} of {n}: {:?}",
            self.taken().len(),
            self.got()
        );
    }
}

async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    shared: web::Data<Mutex<Script>>,
) -> HttpResponse {
    let wait = {
        let mut script = shared.lock().unwrap();
        script.at_once += 1;
        script.most_at_once = script.most_at_once.max(script.at_once);
        if script.slow_first > 0 {
            script.slow_first -= 1;
            1_000
        } else {
            script.delay_ms
        }
    };
    tokio::time::sleep(Duration::from_millis(wait)).await;
    let mut script = shared.lock().unwrap();
    script.at_once -= 1;
    let status = script.answers.pop_front().unwrap_or(200);
    script.got.push(Got {
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
        status,
    });
    let mut answer = HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap());
    if status == 429 {
        answer.insert_header(("retry-after", "1"));
    }
    answer.body("ok")
}

/// The Standard Webhooks check, written here from the specification
/// (HMAC-SHA256 over `id.timestamp.body` with the base64 key after
/// `whsec_`), apart from the server's signer: true when one of the
/// signatures in the header is this secret's.
fn verifies(secret: &str, got: &Got) -> bool {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let signed = format!(
        "{}.{}.{}",
        got.headers["webhook-id"], got.headers["webhook-timestamp"], got.body
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(signed.as_bytes());
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    got.headers["webhook-signature"]
        .split(' ')
        .any(|s| s == expected)
}

fn admin(app: &TestApp) -> String {
    token(&app.tenant, "read write admin")
}

/// The delivery worker, with retries after `retries` (short, for tests).
fn start_worker(app: &TestApp, retries: &[u64]) {
    let settings = Settings {
        retries: retries
            .iter()
            .map(|ms| Duration::from_millis(*ms))
            .collect(),
        timeout: Duration::from_secs(2),
        ..dirsync::config::WebhookArgs::for_tests().settings()
    };
    // Named as `serve` names its replicas (a long name: the lease's owner
    // must still fit its column on PostgreSQL).
    let replica = format!("serve:{}", uuid::Uuid::now_v7());
    let worker = Worker::new(app.store.clone(), app.key.clone(), settings, replica).unwrap();
    tokio::spawn(worker.run_forever());
}

/// An endpoint of the app's tenant; (its id, its secret).
async fn endpoint(app: &TestApp, body: Value) -> (String, String) {
    let (status, created, _) = call(
        app,
        Some(&admin(app)),
        Method::POST,
        "/api/v1/webhooks",
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    (
        created["id"].as_str().unwrap().to_owned(),
        created["secret"].as_str().unwrap().to_owned(),
    )
}

async fn send(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let (status, body, _) = call(app, Some(&admin(app)), method, path, body).await;
    (status, body)
}

/// The endpoint's state, once `done` holds (or fail after 20 s).
async fn endpoint_when(app: &TestApp, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..400 {
        let (_, e) = get(app, &admin(app), &format!("/api/v1/webhooks/{id}")).await;
        if done(&e) {
            return e;
        }
        last = e;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the endpoint never got there: {last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_reaches_the_endpoint_once_in_order_signed_as_the_feed_shows_it() {
    let app = spawn_app().await;
    app.create_user("before@example.com").await;
    let receiver = Receiver::start().await;
    let (id, secret) = endpoint(&app, json!({"url": receiver.url})).await;
    let (_, created) = get(&app, &admin(&app), &format!("/api/v1/webhooks/{id}")).await;
    let start = created["delivered_seq"].as_i64().unwrap();
    assert_eq!(
        start,
        app.last_seq().await,
        "it starts after the newest event"
    );
    start_worker(&app, &[50]);
    // Four writers at once: the endpoint still sees one sequence.
    let mut writers = Vec::new();
    for w in 0..4 {
        let app_token = app.token.clone();
        let base = app.base.clone();
        writers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            for n in 0..5 {
                let name = format!("w{w}-{n}@example.com");
                let res = client
                    .post(format!("{base}/Users"))
                    .bearer_auth(&app_token)
                    .header("content-type", "application/scim+json")
                    .body(
                        json!({
                            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                            "userName": name,
                            "emails": [{"value": name, "primary": true}]
                        })
                        .to_string(),
                    )
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 201);
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    let taken = receiver.wait_for(20).await;
    let (_, feed) = get(&app, &admin(&app), "/api/v1/events?after=0&limit=1000").await;
    let feed: Vec<Value> = feed["data"].as_array().unwrap().clone();
    // Created before the endpoint: not sent; everything after: each once,
    // in sequence order, exactly as the feed shows it.
    let after: Vec<&Value> = feed
        .iter()
        .filter(|e| e["seq"].as_i64().unwrap() > start)
        .collect();
    assert_eq!(taken.len(), after.len());
    for (got, shown) in taken.iter().zip(&after) {
        assert_eq!(&got, shown);
    }
    let seqs: Vec<i64> = taken.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    for got in receiver.got() {
        assert!(verifies(&secret, &got), "a signature that does not verify");
        let body: Value = serde_json::from_str(&got.body).unwrap();
        assert_eq!(got.headers["webhook-id"], body["id"].as_str().unwrap());
        assert_eq!(got.headers["content-type"], "application/json");
    }
    let shown = endpoint_when(&app, &id, |e| e["delivered_seq"] == seqs[seqs.len() - 1]).await;
    assert_eq!(shown["failures"], 0);
    let (_, log) = get(
        &app,
        &admin(&app),
        &format!("/api/v1/webhooks/{id}/attempts?limit=100"),
    )
    .await;
    let log = log["data"].as_array().unwrap();
    assert_eq!(log.len(), 20);
    assert!(
        log.iter()
            .all(|a| a["outcome"] == "delivered" && a["status"] == 200)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_receiver_gets_every_event_in_order_once_it_recovers() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    receiver.answer(&[500, 503, 429, 500]);
    let (id, _) = endpoint(&app, json!({"url": receiver.url})).await;
    start_worker(&app, &[30, 30, 30, 30, 30, 30]);
    for n in 0..5 {
        app.create_user(&format!("u{n}@example.com")).await;
    }
    let taken = receiver.wait_for(5).await;
    let seqs: Vec<i64> = taken.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    // The first event was sent five times (four refusals, then taken), the
    // same message each time.
    let got = receiver.got();
    let first_ids: Vec<&str> = got[..5]
        .iter()
        .map(|g| g.headers["webhook-id"].as_str())
        .collect();
    assert!(
        first_ids.iter().all(|i| *i == first_ids[0]),
        "{first_ids:?}"
    );
    let (_, log) = get(
        &app,
        &admin(&app),
        &format!("/api/v1/webhooks/{id}/attempts?limit=100"),
    )
    .await;
    let outcomes: Vec<&str> = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes[..5],
        ["failed", "failed", "failed", "failed", "delivered"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_retries_disable_the_endpoint_and_enabling_it_resumes_without_loss() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    receiver.answer(&[500, 500, 500]);
    let (id, _) = endpoint(&app, json!({"url": receiver.url})).await;
    start_worker(&app, &[20, 20]);
    app.create_user("a@example.com").await;
    let disabled = endpoint_when(&app, &id, |e| e["enabled"] == false).await;
    assert!(
        disabled["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("gave up after 3 failed attempts"),
        "{disabled}"
    );
    // Written while it was disabled: it waits in the outbox.
    app.create_user("b@example.com").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.taken().is_empty());
    let (status, enabled) = send(
        &app,
        Method::POST,
        &format!("/api/v1/webhooks/{id}/enable"),
        None,
    )
    .await;
    assert_eq!(
        (status, &enabled["enabled"]),
        (200, &json!(true)),
        "{enabled}"
    );
    let taken = receiver.wait_for(2).await;
    let emails: Vec<&str> = taken
        .iter()
        .map(|e| e["data"]["user"]["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["a@example.com", "b@example.com"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_disables_at_once_and_replay_delivers_again_from_a_sequence() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let (id, _) = endpoint(&app, json!({"url": receiver.url})).await;
    start_worker(&app, &[20, 20, 20]);
    app.create_user("a@example.com").await;
    app.create_user("b@example.com").await;
    let first = receiver.wait_for(2).await;
    receiver.answer(&[410]);
    app.create_user("c@example.com").await;
    let gone = endpoint_when(&app, &id, |e| e["enabled"] == false).await;
    assert_eq!(gone["disabled_reason"], "the endpoint answered 410 Gone");
    assert_eq!(receiver.got().len(), 3, "no retry after 410");

    let from = first[1]["seq"].as_i64().unwrap();
    let (status, _) = send(
        &app,
        Method::POST,
        &format!("/api/v1/webhooks/{id}/replay"),
        Some(json!({"from_seq": from})),
    )
    .await;
    assert_eq!(status, 200);
    send(
        &app,
        Method::POST,
        &format!("/api/v1/webhooks/{id}/enable"),
        None,
    )
    .await;
    let taken = receiver.wait_for(4).await;
    let seqs: Vec<i64> = taken.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs[2..], [from, from + 1]);
    let (status, problem) = send(
        &app,
        Method::POST,
        &format!("/api/v1/webhooks/{id}/replay"),
        Some(json!({"from_seq": 0})),
    )
    .await;
    assert_eq!(status, 400, "{problem}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_and_the_previous_one_both_sign_and_types_filter() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let (id, old) = endpoint(
        &app,
        json!({"url": receiver.url, "event_types": ["user.deactivated"]}),
    )
    .await;
    let (status, rotated) = send(
        &app,
        Method::POST,
        &format!("/api/v1/webhooks/{id}/rotate-secret"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(rotated["previous_secret_until"].is_string());
    start_worker(&app, &[20]);
    let user = app.create_user("a@example.com").await;
    let res = app
        .request_as(&app.token, Method::PATCH, &format!("/Users/{user}"))
        .header("content-type", "application/scim+json")
        .body(
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "active", "value": false}]
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let taken = receiver.wait_for(1).await;
    assert_eq!(
        taken[0]["type"], "user.deactivated",
        "only the type asked for"
    );
    let got = &receiver.got()[0];
    assert!(
        verifies(&new, got) && verifies(&old, got),
        "both secrets sign"
    );
    assert_eq!(got.headers["webhook-signature"].split(' ').count(), 2);
    // Nothing else comes: the created event was skipped, not held.
    let shown = endpoint_when(&app, &id, |e| e["delivered_seq"] == taken[0]["seq"]).await;
    assert_eq!(shown["failures"], 0);
    assert!(
        shown.get("secret").is_none(),
        "the secret is never read back"
    );
}

#[tokio::test]
async fn urls_types_and_bodies_are_checked_and_a_test_message_is_signed() {
    let app = spawn_app().await;
    for (body, field) in [
        (json!({"url": "http://hooks.example.com/x"}), "https"),
        (json!({"url": "https://10.0.0.5/hook"}), "private"),
        (json!({"url": "https://169.254.169.254/latest"}), "metadata"),
        (
            json!({"url": "https://ok.example.com", "event_types": ["user.exploded"]}),
            "unknown type",
        ),
        (
            json!({"url": "https://ok.example.com", "batch_size": 0}),
            "batch_size",
        ),
        (
            json!({"url": "https://ok.example.com", "colour": "red"}),
            "colour",
        ),
        (json!(["https://ok.example.com"]), "object"),
    ] {
        let (status, problem) =
            send(&app, Method::POST, "/api/v1/webhooks", Some(body.clone())).await;
        assert_eq!(status, 400, "{body}: {problem}");
        assert!(problem.to_string().contains(field), "{body}: {problem}");
    }
    let receiver = Receiver::start().await;
    let (id, secret) = endpoint(&app, json!({"url": receiver.url, "description": "app"})).await;
    let (status, tested) = send(
        &app,
        Method::POST,
        &format!("/api/v1/webhooks/{id}/test"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{tested}");
    assert_eq!(
        (&tested["delivered"], &tested["status"]),
        (&json!(true), &json!(200))
    );
    let got = &receiver.got()[0];
    assert!(verifies(&secret, got));
    let body: Value = serde_json::from_str(&got.body).unwrap();
    assert_eq!(body["type"], "webhook.test");
    // Another tenant sees none of it.
    dirsync::admin::create_tenant(&app.store, "other")
        .await
        .unwrap();
    let (status, _) = get(
        &app,
        &token("other", "read"),
        &format!("/api/v1/webhooks/{id}"),
    )
    .await;
    assert_eq!(status, 404);
    let (status, list) = get(&app, &token("other", "read"), "/api/v1/webhooks").await;
    assert_eq!((status, list["data"].as_array().unwrap().len()), (200, 0));
    let (status, _) = send(
        &app,
        Method::DELETE,
        &format!("/api/v1/webhooks/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = get(&app, &admin(&app), &format!("/api/v1/webhooks/{id}")).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batching_endpoint_gets_its_events_in_order_several_per_message() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let (_, secret) = endpoint(&app, json!({"url": receiver.url, "batch_size": 5})).await;
    for n in 0..12 {
        app.create_user(&format!("u{n}@example.com")).await;
    }
    // The worker starts once all twelve are committed: 5 + 5 + 2.
    start_worker(&app, &[20]);
    let taken = receiver.wait_for(3).await;
    let sizes: Vec<usize> = taken
        .iter()
        .map(|m| m["data"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [5, 5, 2]);
    let seqs: Vec<i64> = taken
        .iter()
        .flat_map(|m| m["data"].as_array().unwrap().clone())
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    for got in receiver.got() {
        assert!(verifies(&secret, &got));
        assert!(got.headers["webhook-id"].starts_with("batch_"));
    }
}

/// Events near their caps (about 10 kB each) to an endpoint whose messages
/// may carry 64 KiB: with `batch_size` 1000 a message ends at the budget;
/// with 4, every message is four events (a read's short tail waits for the
/// next read). Either way every event arrives once, in order, and a failed
/// message is sent again as it was (same `webhook-id`, same events).
#[rstest::rstest]
#[case::cut_by_bytes(1000)]
#[case::cut_by_count(4)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_ends_at_its_byte_budget_and_a_failed_one_is_sent_again_as_it_was(
    #[case] batch_size: usize,
) {
    const BUDGET: u64 = 64 * 1024;
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    receiver.answer(&[200, 500, 200, 200, 500]);
    let (id, secret) = endpoint(&app, json!({"url": receiver.url, "batch_size": batch_size})).await;
    let start = app.last_seq().await;
    seed_large(&app, 40, 0).await;
    let last = app.last_seq().await;
    let settings = Settings {
        retries: vec![Duration::from_millis(20); 5],
        max_message_bytes: BUDGET,
        ..dirsync::config::WebhookArgs::for_tests().settings()
    };
    let worker = Worker::new(app.store.clone(), app.key.clone(), settings, "test".into()).unwrap();
    tokio::spawn(worker.run_forever());
    endpoint_when(&app, &id, |e| e["delivered_seq"] == last).await;
    let got = receiver.got();
    let messages: Vec<Vec<Value>> = receiver
        .taken()
        .iter()
        .map(|m| m["data"].as_array().unwrap().clone())
        .collect();
    let seqs: Vec<i64> = messages
        .iter()
        .flatten()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, (start + 1..=last).collect::<Vec<_>>());
    for (i, events) in messages.iter().enumerate() {
        let bytes: usize = events.iter().map(|e| e.to_string().len()).sum();
        assert!(bytes as u64 <= BUDGET, "message {i}: {bytes} bytes");
        if batch_size == 4 && i + 1 < messages.len() {
            assert_eq!(events.len(), 4, "message {i}");
        }
    }
    if batch_size == 1000 {
        assert!(messages.iter().all(|m| m.len() > 1 && m.len() < 40));
    }
    let failed: Vec<usize> = (0..got.len()).filter(|&i| got[i].status >= 300).collect();
    assert_eq!(failed.len(), 2, "{got:?}");
    for i in failed {
        let again = &got[i + 1];
        assert_eq!(again.headers["webhook-id"], got[i].headers["webhook-id"]);
        assert_eq!(again.body, got[i].body);
    }
    assert!(got.iter().all(|g| verifies(&secret, g)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_slower_than_the_timeout_is_retried_and_the_event_not_lost() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    receiver.script.lock().unwrap().slow_first = 1;
    let (id, _) = endpoint(&app, json!({"url": receiver.url})).await;
    let settings = Settings {
        retries: vec![Duration::from_millis(20); 3],
        timeout: Duration::from_millis(300),
        ..dirsync::config::WebhookArgs::for_tests().settings()
    };
    let worker = Worker::new(app.store.clone(), app.key.clone(), settings, "test".into()).unwrap();
    tokio::spawn(worker.run_forever());
    app.create_user("a@example.com").await;
    let seq = app.last_seq().await;
    // Taken once the retry went through (the receiver may also have
    // finished the slow answer: at least once, the same message).
    endpoint_when(&app, &id, |e| e["delivered_seq"] == seq).await;
    // The slow answer ends (and is counted) a second after it began.
    for _ in 0..40 {
        if receiver.got().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = receiver.got();
    assert!(got.len() >= 2, "{got:?}");
    assert!(
        got.iter()
            .all(|g| g.headers["webhook-id"] == got[0].headers["webhook-id"])
    );
    let (_, log) = get(
        &app,
        &admin(&app),
        &format!("/api/v1/webhooks/{id}/attempts"),
    )
    .await;
    let log = log["data"].as_array().unwrap();
    let last = &log[log.len() - 1];
    assert_eq!(last["outcome"], "error", "{log:?}");
    assert!(
        last["excerpt"].as_str().unwrap().contains("timed out"),
        "{last}"
    );
    assert_eq!(log[0]["outcome"], "delivered", "{log:?}");
}

/// Two replicas' workers race for one endpoint: one delivers at a time,
/// in order, nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_workers_never_deliver_one_endpoint_at_the_same_time() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    receiver.script.lock().unwrap().delay_ms = 20;
    endpoint(&app, json!({"url": receiver.url})).await;
    for replica in ["replica-a", "replica-b"] {
        let settings = Settings {
            retries: vec![Duration::from_millis(20)],
            ..dirsync::config::WebhookArgs::for_tests().settings()
        };
        let worker =
            Worker::new(app.store.clone(), app.key.clone(), settings, replica.into()).unwrap();
        tokio::spawn(worker.run_forever());
    }
    for n in 0..15 {
        app.create_user(&format!("u{n}@example.com")).await;
    }
    let taken = receiver.wait_for(15).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let taken_after = receiver.taken();
    assert_eq!(taken_after.len(), taken.len(), "nothing sent twice");
    let seqs: Vec<i64> = taken.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    assert_eq!(receiver.script.lock().unwrap().most_at_once, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_show_in_the_metrics_and_the_log_keeps_its_retention() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    receiver.answer(&[500]);
    let (id, _) = endpoint(&app, json!({"url": receiver.url})).await;
    let settings = Settings {
        retries: vec![Duration::from_millis(20); 3],
        ..dirsync::config::WebhookArgs::for_tests().settings()
    };
    let worker = Worker::new(app.store.clone(), app.key.clone(), settings, "test".into()).unwrap();
    tokio::spawn(worker.clone().run_forever());
    app.create_user("a@example.com").await;
    app.create_user("b@example.com").await;
    let seq = app.last_seq().await;
    endpoint_when(&app, &id, |e| e["delivered_seq"] == seq).await;
    let text = app
        .client
        .get(format!("{}/metrics", app.origin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = |name: &str, outcome: &str| {
        text.lines().any(|l| {
            l.starts_with(name) && l.contains(&format!("endpoint=\"{id}\"")) && l.contains(outcome)
        })
    };
    assert!(
        series("dirsync_webhook_attempts_total", "outcome=\"delivered\""),
        "{text}"
    );
    assert!(
        series("dirsync_webhook_attempts_total", "outcome=\"failed\""),
        "{text}"
    );
    assert!(
        series("dirsync_webhook_attempt_duration_seconds_bucket", ""),
        "{text}"
    );
    assert!(series("dirsync_webhook_lag_seconds", ""), "{text}");

    // Three attempts logged (a failure, then two deliveries); a day later
    // they are all within the 30 days kept, a month later none is.
    let now = chrono::Utc::now().timestamp_millis();
    assert_eq!(worker.prune_log(now + 86_400_000).await.unwrap(), 0);
    assert_eq!(worker.prune_log(now + 31 * 86_400_000).await.unwrap(), 3);
    let (_, log) = get(
        &app,
        &admin(&app),
        &format!("/api/v1/webhooks/{id}/attempts"),
    )
    .await;
    assert_eq!(log["data"], json!([]));
}

/// A receiver on a bare socket that answers its first message's status and
/// headers (200) and then holds the rest of the answer back, so the server
/// that sent it sits between the answer and its record of it; every later
/// message it answers whole. What it got comes on the channel.
async fn stalling_receiver() -> (String, tokio::sync::mpsc::UnboundedReceiver<Got>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut first = true;
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let stall = std::mem::take(&mut first);
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut read = Vec::new();
                let mut buf = [0u8; 4096];
                let head_end = loop {
                    let n = socket.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    read.extend_from_slice(&buf[..n]);
                    if let Some(at) = read.windows(4).position(|w| w == b"\r\n\r\n") {
                        break at + 4;
                    }
                };
                let head = String::from_utf8_lossy(&read[..head_end]).into_owned();
                let headers: HashMap<String, String> = head
                    .lines()
                    .skip(1)
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                    .collect();
                let length: usize = headers["content-length"].parse().unwrap();
                while read.len() < head_end + length {
                    let n = socket.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    read.extend_from_slice(&buf[..n]);
                }
                let body = String::from_utf8_lossy(&read[head_end..head_end + length]).into_owned();
                let _ = tx.send(Got {
                    headers,
                    body,
                    status: 200,
                });
                if stall {
                    let _ = socket
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n")
                        .await;
                    tokio::time::sleep(Duration::from_secs(120)).await;
                } else {
                    let _ = socket
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                        )
                        .await;
                }
            });
        }
    });
    (url, rx)
}

/// `dirsync serve` killed (SIGKILL) after the endpoint answered 200 and
/// before the server recorded it: the position has not moved, and the next
/// server, once the dead one's lease lapsed, sends the same event again
/// with the same `webhook-id`, then records it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_the_answer_and_its_record_sends_the_event_again_with_the_same_id() {
    use crate::helpers::{Served, spawn_app_keyed};
    let key = dirsync::crypto::SealingKey::generate().expose().to_owned();
    let sealing = dirsync::crypto::SealingKey::parse(&key).unwrap();
    let app = spawn_app_keyed(dirsync::config::ServerSettings::for_tests(), Some(sealing)).await;
    let (url, mut got) = stalling_receiver().await;
    let (id, secret) = endpoint(&app, json!({"url": url})).await;
    let start = app.last_seq().await;
    app.create_user("crash@example.com").await;
    let last = app.last_seq().await;
    assert!(last > start);

    let env = [
        ("DIRSYNC_SECRET_KEY", key.as_str()),
        ("DIRSYNC_WEBHOOK_DELIVERY", "true"),
        ("DIRSYNC_WEBHOOK_ALLOW_HTTP_LOOPBACK", "true"),
        // A short lease (and a timeout it outlasts twice): the next server
        // takes the endpoint over within seconds.
        ("DIRSYNC_WEBHOOK_TIMEOUT", "3s"),
        ("DIRSYNC_WEBHOOK_LEASE_TTL", "6s"),
    ];
    let first = Served::start(&app.db_url, &env);
    let sent = tokio::time::timeout(Duration::from_secs(30), got.recv())
        .await
        .expect("the first server sent nothing")
        .unwrap();
    // The answer's head is on its way; the body never comes: kill now.
    first.stop();
    let row = dirsync::store::webhooks::endpoint(app.store.connection(), &id)
        .await
        .unwrap();
    assert_eq!(
        row.delivered_seq, start,
        "the killed server recorded nothing"
    );
    assert!(row.lease_owner.is_some(), "the dead server's lease is left");

    let second = Served::start(&app.db_url, &env);
    let again = tokio::time::timeout(Duration::from_secs(30), got.recv())
        .await
        .expect("the next server did not send it again")
        .unwrap();
    assert_eq!(again.headers["webhook-id"], sent.headers["webhook-id"]);
    assert_eq!(again.body, sent.body);
    assert!(verifies(&secret, &sent) && verifies(&secret, &again));
    let body: Value = serde_json::from_str(&again.body).unwrap();
    assert_eq!(body["seq"].as_i64(), Some(start + 1));
    let shown = endpoint_when(&app, &id, |e| e["delivered_seq"] == last).await;
    assert_eq!(shown["failures"], 0);
    second.stop();
}

/// A replay while a delivery is under way is the operator's: the worker's
/// record of what it sent logs the attempt but leaves the position where
/// the replay put it; a worker whose lease another took writes nothing.
#[tokio::test]
async fn a_replay_during_a_delivery_keeps_its_position_and_a_lost_lease_writes_nothing() {
    use dirsync::store::webhooks::{self as rows, Advance, Attempt, Recorded};
    let app = spawn_app().await;
    for n in 0..3 {
        app.create_user(&format!("r{n}@example.com")).await;
    }
    let last = app.last_seq().await;
    // It starts after the newest event; the worker read it there.
    let (id, _) = endpoint(&app, json!({"url": "http://127.0.0.1:9/hook"})).await;
    let conn = app.store.connection();
    let now = chrono::Utc::now().timestamp_millis();
    assert!(
        rows::take_lease(conn, &id, "worker", now, 60_000)
            .await
            .unwrap()
    );
    let row = rows::endpoint(conn, &id).await.unwrap();
    let attempt = |n: i64| Attempt {
        id: uuid::Uuid::now_v7().to_string(),
        endpoint_id: id.clone(),
        tenant_id: row.tenant_id.clone(),
        first_seq: n,
        last_seq: n,
        attempted_at: now,
        status: Some(200),
        latency_ms: 1,
        outcome: "delivered".into(),
        excerpt: String::new(),
    };
    let (status, _) = send(
        &app,
        Method::POST,
        &format!("/api/v1/webhooks/{id}/replay"),
        Some(json!({"from_seq": 1})),
    )
    .await;
    assert_eq!(status, 200);
    let sent = Advance {
        from: row.delivered_seq,
        to: last,
        failure: None,
    };
    let recorded = rows::record(
        conn,
        &id,
        "worker",
        vec![attempt(last)],
        sent.clone(),
        now,
        now + 60_000,
    )
    .await
    .unwrap();
    assert_eq!(recorded, Recorded::Moved);
    let after = rows::endpoint(conn, &id).await.unwrap();
    assert_eq!(after.delivered_seq, 0, "the replay's position stands");
    assert_eq!(after.lease_owner.as_deref(), Some("worker"));

    let lost = rows::record(
        conn,
        &id,
        "another",
        vec![attempt(1)],
        sent,
        now,
        now + 60_000,
    )
    .await
    .unwrap();
    assert_eq!(lost, Recorded::Lost);
    let (_, log) = get(
        &app,
        &admin(&app),
        &format!("/api/v1/webhooks/{id}/attempts"),
    )
    .await;
    let log = log["data"].as_array().unwrap();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["first_seq"], last);
}
