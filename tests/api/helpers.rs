//! `spawn_app()`: the real server on port 0 against a fresh database — a SQLite
//! temp file by default, or a freshly created PostgreSQL database (dropped
//! afterwards) when `DIRSYNC_TEST_DATABASE_URL` names a server.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use dirsync::admin;
use dirsync::config::ServerSettings;
use dirsync::crypto::SealingKey;
use dirsync::startup::Application;
use dirsync::store::Store;
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;

pub const SCIM_JSON: &str = "application/scim+json";

/// Which backend this run uses (from the environment).
pub fn postgres_url() -> Option<String> {
    std::env::var("DIRSYNC_TEST_DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres"))
}

/// A database that exists for one test and is removed after it.
pub enum TestDb {
    /// Held so the directory (and the database file) lives as long as the test.
    Sqlite {
        _dir: tempfile::TempDir,
    },
    Postgres {
        admin_url: String,
        name: String,
    },
}

impl TestDb {
    pub async fn create() -> (TestDb, String) {
        match postgres_url() {
            Some(admin_url) => {
                let name = format!("dirsync_test_{}", uuid::Uuid::new_v4().simple());
                let admin = Store::connect(&admin_url, 1)
                    .await
                    .expect("connect to PostgreSQL");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .expect("create test database");
                let url = replace_db_name(&admin_url, &name);
                (TestDb::Postgres { admin_url, name }, url)
            }
            None => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("dirsync.db").display()
                );
                (TestDb::Sqlite { _dir: dir }, url)
            }
        }
    }
}

fn replace_db_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let base = match base.rsplit_once('/') {
        Some((head, _)) if head.contains("://") && head.len() > "postgres://".len() => head,
        _ => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Postgres { admin_url, name } = self {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Drop runs outside async; use a throwaway runtime on its own thread.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(rt) = rt {
                    rt.block_on(async {
                        if let Ok(admin) = Store::connect(&admin_url, 1).await {
                            let _ = admin
                                .execute_unprepared(&format!(
                                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                                ))
                                .await;
                        }
                    });
                }
            })
            .join();
        }
    }
}

pub struct TestApp {
    /// `http://127.0.0.1:PORT`
    pub origin: String,
    /// `http://127.0.0.1:PORT/scim/v2`
    pub base: String,
    pub store: Store,
    pub tenant: String,
    pub directory_id: String,
    pub token: String,
    pub client: reqwest::Client,
    pub db_url: String,
    /// The server's key for connection credentials (None: it has none).
    pub key: Option<SealingKey>,
    /// The server's SCIM request log (`flush` waits until what it queued
    /// is written).
    pub scim_log: dirsync::scim::request_log::Recorder,
    _db: TestDb,
}

fn init_tracing() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        if std::env::var("TEST_LOG").is_ok() {
            dirsync::telemetry::init("debug");
        }
    });
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(ServerSettings::for_tests()).await
}

/// The server with these settings and a fresh key for connection
/// credentials.
pub async fn spawn_app_with(settings: ServerSettings) -> TestApp {
    let key = SealingKey::parse(SealingKey::generate().expose()).expect("key");
    spawn_app_keyed(settings, Some(key)).await
}

pub async fn spawn_app_keyed(settings: ServerSettings, key: Option<SealingKey>) -> TestApp {
    init_tracing();
    let (db, db_url) = TestDb::create().await;
    let store = Store::connect(&db_url, 8)
        .await
        .expect("connect test database");
    store.migrate().await.expect("migrate");
    let app = Application::with_store(store.clone(), settings, key.clone()).expect("build app");
    let port = app.port();
    let scim_log = app.scim_log();
    tokio::spawn(app.run_until_stopped());
    let tenant = format!("tenant-{}", uuid::Uuid::new_v4().simple());
    admin::create_tenant(&store, &tenant).await.expect("tenant");
    let dir = admin::create_directory(&store, &tenant, "main", "generic")
        .await
        .expect("directory");
    let token = admin::create_token(&store, &dir.id, None)
        .await
        .expect("token");
    let origin = format!("http://127.0.0.1:{port}");
    TestApp {
        base: format!("{origin}/scim/v2"),
        origin,
        store,
        tenant,
        directory_id: dir.id,
        token: token.token,
        client: reqwest::Client::new(),
        db_url,
        key,
        scim_log,
        _db: db,
    }
}

impl TestApp {
    /// A request to `{base}{path}` with this app's token.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.request_as(&self.token, method, path)
    }

    pub fn request_as(&self, token: &str, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(token)
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Response {
        let mut req = self.request(method, path);
        if let Some(body) = body {
            req = req.header("content-type", SCIM_JSON).body(body.to_string());
        }
        req.send().await.expect("request")
    }

    pub async fn get(&self, path: &str) -> Response {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.send(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Response {
        self.send(Method::PUT, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Response {
        self.send(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.send(Method::DELETE, path, None).await
    }

    /// Another directory (optionally in another tenant) with its own token.
    pub async fn other_directory(&self, new_tenant: bool) -> (String, String) {
        let tenant = if new_tenant {
            let name = format!("tenant-{}", uuid::Uuid::new_v4().simple());
            admin::create_tenant(&self.store, &name)
                .await
                .expect("tenant");
            name
        } else {
            self.tenant.clone()
        };
        let name = format!("dir-{}", uuid::Uuid::new_v4().simple());
        let dir = admin::create_directory(&self.store, &tenant, &name, "generic")
            .await
            .expect("directory");
        let token = admin::create_token(&self.store, &dir.id, None)
            .await
            .expect("token");
        (dir.id, token.token)
    }

    /// Create a user with this userName; returns its id.
    pub async fn create_user(&self, user_name: &str) -> String {
        let res = self
            .post(
                "/Users",
                &serde_json::json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": user_name,
                    "name": {"givenName": "Given", "familyName": "Family"},
                    "emails": [{"value": user_name, "type": "work", "primary": true}],
                    "active": true
                }),
            )
            .await;
        assert_eq!(res.status(), 201, "create user {user_name}");
        json(res).await["id"].as_str().expect("id").to_owned()
    }

    /// Create a group with this displayName and member ids; returns its id.
    pub async fn create_group(&self, name: &str, members: &[&str]) -> String {
        let members: Vec<Value> = members
            .iter()
            .map(|m| serde_json::json!({"value": m}))
            .collect();
        let res = self
            .post(
                "/Groups",
                &serde_json::json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                    "displayName": name,
                    "members": members
                }),
            )
            .await;
        assert_eq!(res.status(), 201, "create group {name}");
        json(res).await["id"].as_str().expect("id").to_owned()
    }
}

impl TestApp {
    /// The member ids of a group as read back, sorted.
    pub async fn member_ids(&self, group_id: &str) -> Vec<String> {
        let group = self.get_ok(&format!("/Groups/{group_id}")).await;
        let mut ids: Vec<String> = group
            .get("members")
            .and_then(Value::as_array)
            .map(|m| {
                m.iter()
                    .map(|m| m["value"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    }
}

/// The `status` of each operation of a BulkResponse, in order.
pub fn bulk_statuses(response: &Value) -> Vec<&str> {
    response["Operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect()
}

pub async fn json(res: Response) -> Value {
    let text = res.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Assert a SCIM error body (RFC 7644 §3.12) with this status and scimType.
pub async fn assert_scim_error(res: Response, status: u16, scim_type: Option<&str>) -> Value {
    let actual = res.status().as_u16();
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = res.text().await.expect("body");
    // The body says why when the status is not the one expected.
    assert_eq!(actual, status, "status; body: {text}");
    assert!(
        content_type.starts_with(SCIM_JSON),
        "content-type {content_type}"
    );
    let body: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    assert_eq!(
        body["schemas"],
        serde_json::json!(["urn:ietf:params:scim:api:messages:2.0:Error"]),
        "{body}"
    );
    assert_eq!(body["status"], Value::String(status.to_string()), "{body}");
    if let Some(t) = scim_type {
        assert_eq!(body["scimType"], Value::String(t.into()), "{body}");
    }
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    body
}

/// A PatchOp body (RFC 7644 §3.5.2) around these operations.
pub fn patch_op(operations: Value) -> Value {
    serde_json::json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": operations
    })
}

/// Percent-encode a query-string value (a filter, a cursor).
pub fn enc(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// A response header as text (panics when absent).
pub fn header(res: &Response, name: &str) -> String {
    res.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .expect("header text")
        .to_owned()
}

/// The ids of a ListResponse's `Resources`, in order.
pub fn ids(list: &Value) -> Vec<String> {
    list["Resources"]
        .as_array()
        .unwrap_or_else(|| panic!("no Resources: {list}"))
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_owned())
        .collect()
}

impl TestApp {
    /// GET a path, assert 200, return the JSON body.
    pub async fn get_ok(&self, path: &str) -> Value {
        let res = self.get(path).await;
        let status = res.status();
        let body = json(res).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// GET `{collection}?filter=…` (encoded) and return the ListResponse.
    pub async fn filter(&self, collection: &str, filter: &str) -> Value {
        self.get_ok(&format!("{collection}?filter={}", enc(filter)))
            .await
    }

    /// How many resources a collection holds (`totalResults`).
    pub async fn total(&self, collection: &str) -> u64 {
        self.get_ok(&format!("{collection}?count=0")).await["totalResults"]
            .as_u64()
            .expect("totalResults")
    }

    /// POST a body and assert 201; returns the created resource.
    pub async fn post_created(&self, path: &str, body: &Value) -> Value {
        let res = self.post(path, body).await;
        let status = res.status();
        let out = json(res).await;
        assert_eq!(status, 201, "POST {path}: {out}");
        out
    }
}

impl TestApp {
    /// Send `body` with `Transfer-Encoding: chunked` (no Content-Length, so the
    /// server only learns the size while reading) over a plain socket; returns
    /// the status and the response body.
    pub async fn post_chunked(&self, path: &str, body: String) -> (u16, Value) {
        use std::io::{Read, Write};
        let host = self.origin.trim_start_matches("http://").to_owned();
        let path = format!("/scim/v2{path}");
        let token = self.token.clone();
        tokio::task::spawn_blocking(move || {
            let mut stream = std::net::TcpStream::connect(&host).expect("connect");
            let mut request = format!(
                "POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
                 Content-Type: {SCIM_JSON}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            );
            for chunk in body.as_bytes().chunks(500) {
                request.push_str(&format!("{:x}\r\n", chunk.len()));
                request.push_str(std::str::from_utf8(chunk).expect("ASCII body"));
                request.push_str("\r\n");
            }
            request.push_str("0\r\n\r\n");
            // The server may answer before reading everything; a write error
            // after that is expected.
            let _ = stream.write_all(request.as_bytes());
            let mut response = Vec::new();
            let _ = stream.read_to_end(&mut response);
            let text = String::from_utf8_lossy(&response).into_owned();
            let status = text
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("no status line: {text}"));
            let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
            let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
                dechunk(rest)
            } else {
                rest.to_owned()
            };
            let value = serde_json::from_str(&body).unwrap_or(Value::Null);
            (status, value)
        })
        .await
        .expect("chunked request")
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || tail.len() < size {
            break;
        }
        out.push_str(&tail[..size]);
        rest = tail[size..].trim_start_matches("\r\n");
    }
    out
}

/// The host application's side: app users, groups, events and policy.
impl TestApp {
    pub async fn app_users(&self) -> Vec<Value> {
        admin::users(&self.store, &self.tenant)
            .await
            .expect("users")
    }

    /// The app user with this email (folded), if any.
    pub async fn app_user(&self, email: &str) -> Option<Value> {
        let folded = email.to_lowercase();
        self.app_users()
            .await
            .into_iter()
            .find(|u| u["email"] == folded.as_str())
    }

    pub async fn app_groups(&self) -> Vec<Value> {
        admin::groups(&self.store, &self.tenant)
            .await
            .expect("groups")
    }

    /// Every event of the tenant after `after`, as JSON, page after page
    /// (a page ends at its count or its bytes).
    pub async fn events_after(&self, after: i64) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after = after;
        loop {
            let page = admin::event_page(&self.store, &self.tenant, after, 10_000)
                .await
                .expect("events");
            out.extend(
                page.events
                    .into_iter()
                    .map(|e| serde_json::to_value(e).expect("event json")),
            );
            match page.next_after {
                Some(next) => after = next,
                None => return out,
            }
        }
    }

    /// The event types after `after`, in order.
    pub async fn event_types_after(&self, after: i64) -> Vec<String> {
        self.events_after(after)
            .await
            .iter()
            .map(|e| e["type"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// The last sequence number so far (0 when none).
    pub async fn last_seq(&self) -> i64 {
        self.events_after(0)
            .await
            .last()
            .and_then(|e| e["seq"].as_i64())
            .unwrap_or(0)
    }

    pub async fn set_policy(&self, change: admin::PolicyChange) {
        admin::update_policy(&self.store, &self.directory_id, change)
            .await
            .expect("policy");
    }

    pub async fn act(&self, email: &str, action: dirsync::reconcile::host::Action) -> Value {
        admin::user_action(&self.store, &self.tenant, email, action)
            .await
            .expect("user action")
    }
}

/// `dirsync serve` as a child process on a free port, every log line on
/// (`RUST_LOG=trace` unless `env` says otherwise, JSON) and kept for the test: what the server logs is
/// checked the way an operator would read it.
pub struct Served {
    /// `http://127.0.0.1:PORT`
    pub origin: String,
    child: Child,
    log: std::thread::JoinHandle<String>,
    /// Every JSON log line after the one that gave the port, as it comes.
    lines: std::sync::mpsc::Receiver<Value>,
}

impl Served {
    pub fn start(db_url: &str, env: &[(&str, &str)]) -> Served {
        let mut child = Command::new(env!("CARGO_BIN_EXE_dirsync"))
            .args(["--database-url", db_url, "serve", "--listen", "127.0.0.1:0"])
            .args(["--scheduler", "false"])
            .env("RUST_LOG", "trace")
            .envs(env.iter().copied())
            .env("DIRSYNC_LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start dirsync serve");
        let stderr = child.stderr.take().expect("stderr");
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let (lines_tx, lines) = std::sync::mpsc::channel();
        let log = std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let parsed: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
                if parsed["fields"]["message"] == "dirsync listening" {
                    let _ = port_tx.send(parsed["fields"]["port"].as_u64());
                }
                let _ = lines_tx.send(parsed);
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        match port_rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Some(port)) => Served {
                origin: format!("http://127.0.0.1:{port}"),
                child,
                log,
                lines,
            },
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("dirsync serve did not start:\n{}", log.join().unwrap());
            }
        }
    }

    /// The first log line with this message (from the start), waiting for
    /// it up to a minute; None if the server logged none by then.
    pub fn wait_for_log(&self, message: &str) -> Option<Value> {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line["fields"]["message"] == message => return Some(line),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    /// The server's process id (to read its `/proc/<pid>/status`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stop the server; everything it logged.
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.log.join().expect("log reader")
    }
}
