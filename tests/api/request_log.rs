//! The per-directory SCIM request log: what each request a directory's
//! token authenticated asked, how it was answered, what the engine made of
//! each user; bodies only when configured and then without secrets; the
//! newest N kept per directory; retention; read through the host API (one
//! tenant's only) and the CLI.

use dirsync::admin;
use dirsync::config::{ScimLogArgs, ServerSettings};
use dirsync::retention::{self, Retention};
use dirsync::store::scim_requests::{self, Request};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{SCIM_JSON, TestApp, enc, json, spawn_app_with};
use crate::host_api::{get, token};

fn user(user_name: &str, email: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name,
        "emails": [{"value": email, "type": "work", "primary": true}],
        "active": true
    })
}

fn log_path(directory_id: &str, query: &str) -> String {
    format!("/api/v1/directories/{directory_id}/scim-requests{query}")
}

/// The directory's log through the host API, once the recorder has written
/// what it queued: the page's body.
async fn log_page(app: &TestApp, directory_id: &str, query: &str) -> Value {
    app.scim_log.flush().await;
    let (status, page) = get(
        app,
        &token(&app.tenant, "read"),
        &log_path(directory_id, query),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    page
}

async fn logged(app: &TestApp, query: &str) -> Vec<Value> {
    let page = log_page(app, &app.directory_id, query).await;
    page["data"].as_array().unwrap().clone()
}

/// A GET of `path` answered 200, as the log's writer takes it.
fn answered(directory_id: &str, path: String) -> Request {
    Request {
        id: uuid::Uuid::now_v7().to_string(),
        directory_id: directory_id.to_owned(),
        at: chrono::Utc::now().timestamp_millis(),
        method: "GET".into(),
        path,
        status: 200,
        duration_ms: 1,
        scim_type: None,
        detail: None,
        outcomes: "[]".into(),
        request_headers: None,
        request_body: None,
        response_body: None,
    }
}

fn paths(page: &Value) -> Vec<String> {
    paths_of(page["data"].as_array().unwrap())
}

/// Every page of the directory's log, `limit` a page, following each
/// page's `next_cursor` to the end: the requests read, in order.
async fn every_page(app: &TestApp, query: &str, limit: usize) -> Vec<Value> {
    let mut read = Vec::new();
    let mut page = log_page(app, &app.directory_id, &format!("?limit={limit}{query}")).await;
    loop {
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= limit, "{page}");
        read.extend(data.iter().cloned());
        let Some(next) = page["next_cursor"].as_str() else {
            return read;
        };
        let after = format!("?limit={limit}{query}&after={next}");
        page = log_page(app, &app.directory_id, &after).await;
    }
}

fn paths_of(requests: &[Value]) -> Vec<String> {
    requests
        .iter()
        .map(|r| r["path"].as_str().unwrap().to_owned())
        .collect()
}

/// Rows of the log's table, every directory's.
async fn stored_batches(app: &TestApp) -> i64 {
    use sea_orm::{ConnectionTrait, Statement};
    let conn = app.store.scim_log().connection();
    conn.query_one_raw(Statement::from_string(
        conn.get_database_backend(),
        "SELECT COUNT(*) AS n FROM scim_request_batches",
    ))
    .await
    .unwrap()
    .unwrap()
    .try_get::<i64>("", "n")
    .unwrap()
}

async fn with_log(log: ScimLogArgs) -> TestApp {
    spawn_app_with(ServerSettings {
        scim_log: log,
        ..ServerSettings::for_tests()
    })
    .await
}

#[tokio::test]
async fn a_create_a_uniqueness_conflict_and_a_bad_filter_are_logged_with_what_the_engine_did() {
    let app = with_log(ScimLogArgs::defaults()).await;
    let created = app
        .post("/Users", &user("ada@example.com", "ada@example.com"))
        .await;
    assert_eq!(created.status(), 201);
    let id = json(created).await["id"].as_str().unwrap().to_owned();
    let again = app
        .post("/Users", &user("ada@example.com", "ada@example.com"))
        .await;
    assert_eq!(again.status(), 409);
    let filter = format!("/Users?filter={}", enc("userName eq"));
    assert_eq!(app.get(&filter).await.status(), 400);
    // Without a directory's token nothing is logged: nobody's directory.
    let stranger = app
        .request_as("not-a-token", Method::GET, "/Users")
        .send()
        .await
        .unwrap();
    assert_eq!(stranger.status(), 401);

    let log = logged(&app, "").await;
    assert_eq!(log.len(), 3, "{log:#?}");
    let (bad_filter, conflict, create) = (&log[0], &log[1], &log[2]);

    assert_eq!(create["method"], "POST");
    assert_eq!(create["path"], "/scim/v2/Users");
    assert_eq!(create["status"], 201);
    assert_eq!(create["scim_type"], Value::Null);
    assert_eq!(
        create["outcomes"],
        json!([{"resource": id, "outcome": "created"}])
    );
    assert!(create["duration_ms"].as_i64().unwrap() >= 0);
    assert!(create["at"].as_str().unwrap().ends_with('Z'), "{create}");

    assert_eq!(conflict["method"], "POST");
    assert_eq!(conflict["status"], 409);
    assert_eq!(conflict["scim_type"], "uniqueness");
    assert!(
        conflict["detail"]
            .as_str()
            .unwrap()
            .contains("already taken")
    );
    assert_eq!(conflict["outcomes"], json!([]));

    assert_eq!(bad_filter["method"], "GET");
    assert_eq!(bad_filter["path"], format!("/scim/v2{filter}"));
    assert_eq!(bad_filter["status"], 400);
    assert_eq!(bad_filter["scim_type"], "invalidFilter");

    // Bodies are kept only when the server is told to.
    for request in &log {
        assert_eq!(request["request_body"], Value::Null, "{request}");
        assert_eq!(request["response_body"], Value::Null, "{request}");
        assert_eq!(request["request_headers"], Value::Null, "{request}");
    }
}

#[tokio::test]
async fn an_engine_conflict_and_each_bulk_operation_are_logged_with_their_reasons() {
    let app = with_log(ScimLogArgs::defaults()).await;
    app.create_user("grace@example.com").await;
    // Another directory of the tenant asks for grace's address for its own
    // user: the engine records a conflict and changes nothing.
    let (other, other_token) = app.other_directory(false).await;
    let res = app
        .request_as(&other_token, Method::POST, "/Users")
        .header("content-type", SCIM_JSON)
        .body(user("gh", "hopper@example.com").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let gh = json(res).await["id"].as_str().unwrap().to_owned();
    let res = app
        .request_as(&other_token, Method::PUT, &format!("/Users/{gh}"))
        .header("content-type", SCIM_JSON)
        .body(user("gh", "grace@example.com").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let other_log = log_page(&app, &other, "").await;
    let replaced = &other_log["data"][0];
    assert_eq!(replaced["method"], "PUT");
    assert_eq!(replaced["status"], 200);
    let outcome = &replaced["outcomes"][0];
    assert_eq!(outcome["resource"], gh);
    assert_eq!(outcome["outcome"], "conflict", "{replaced}");
    assert!(
        outcome["why"]
            .as_str()
            .unwrap()
            .contains("grace@example.com"),
        "{outcome}"
    );

    // One entry per Bulk operation, tagged with its place in the request.
    let bulk = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "a", "data": user("alan@example.com", "alan@example.com")},
            {"method": "POST", "path": "/Users", "bulkId": "b", "data": user("grace@example.com", "g2@example.com")}
        ]
    });
    let res = app.post("/Bulk", &bulk).await;
    assert_eq!(res.status(), 200);
    let log = logged(&app, "?method=POST").await;
    let outcomes = log[0]["outcomes"].as_array().unwrap();
    assert_eq!(log[0]["path"], "/scim/v2/Bulk");
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
    assert_eq!(outcomes[0]["operation"], 0);
    assert_eq!(outcomes[0]["outcome"], "created");
    assert_eq!(outcomes[1]["operation"], 1);
    assert_eq!(outcomes[1]["outcome"], "refused");
    assert!(
        outcomes[1]["why"]
            .as_str()
            .unwrap()
            .contains("409 uniqueness"),
        "{outcomes:?}"
    );
}

#[tokio::test]
async fn bodies_are_kept_without_passwords_or_tokens_when_configured() {
    let app = with_log(ScimLogArgs {
        scim_log_bodies: true,
        ..ScimLogArgs::defaults()
    })
    .await;
    let mut body = user("ada@example.com", "ada@example.com");
    body["password"] = json!("hunter2-correct-horse");
    assert_eq!(app.post("/Users", &body).await.status(), 201);
    let log = logged(&app, "").await;
    let request = &log[0];
    let sent = request["request_body"].as_str().unwrap();
    assert!(sent.contains("ada@example.com"), "{sent}");
    assert!(!sent.contains("hunter2"), "{sent}");
    assert!(sent.contains("[removed]"), "{sent}");
    let answered = request["response_body"].as_str().unwrap();
    assert!(
        answered.contains("\"userName\":\"ada@example.com\""),
        "{answered}"
    );
    let headers = &request["request_headers"];
    assert_eq!(headers["authorization"], "[removed]", "{headers}");
    assert_eq!(headers["content-type"], SCIM_JSON, "{headers}");
    assert!(!request.to_string().contains(&app.token));
}

#[tokio::test]
async fn the_log_keeps_the_newest_requests_of_each_directory_up_to_its_cap() {
    let app = with_log(ScimLogArgs {
        scim_log_keep: 3,
        ..ScimLogArgs::defaults()
    })
    .await;
    for n in 0..5 {
        let res = app.get(&format!("/Users?startIndex={}", n + 1)).await;
        assert_eq!(res.status(), 200);
        // Each written (and trimmed) before the next: the cap is exact.
        app.scim_log.flush().await;
    }
    let log = logged(&app, "").await;
    let paths: Vec<&str> = log.iter().map(|r| r["path"].as_str().unwrap()).collect();
    assert_eq!(
        paths,
        [
            "/scim/v2/Users?startIndex=5",
            "/scim/v2/Users?startIndex=4",
            "/scim/v2/Users?startIndex=3"
        ]
    );
}

#[tokio::test]
async fn requests_written_together_are_trimmed_to_the_cap_of_each_directory() {
    let app = with_log(ScimLogArgs {
        scim_log_keep: 3,
        ..ScimLogArgs::defaults()
    })
    .await;
    let (other, other_token) = app.other_directory(false).await;
    // No flush between them: the writer takes them in batches as they come.
    for n in 0..7 {
        let res = app.get(&format!("/Users?startIndex={}", n + 1)).await;
        assert_eq!(res.status(), 200);
        if n < 2 {
            let res = app
                .request_as(&other_token, Method::GET, &format!("/Users?count={n}"))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
        }
    }
    let paths = |log: Vec<Value>| -> Vec<String> {
        log.iter()
            .map(|r| r["path"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        paths(logged(&app, "").await),
        [
            "/scim/v2/Users?startIndex=7",
            "/scim/v2/Users?startIndex=6",
            "/scim/v2/Users?startIndex=5"
        ]
    );
    assert_eq!(
        paths(
            log_page(&app, &other, "").await["data"]
                .as_array()
                .unwrap()
                .clone()
        ),
        ["/scim/v2/Users?count=1", "/scim/v2/Users?count=0"]
    );
}

#[tokio::test]
async fn a_batch_of_two_directories_keeps_the_newest_of_each_up_to_the_cap() {
    let app = with_log(ScimLogArgs::defaults()).await;
    let (other, _) = app.other_directory(false).await;
    // 150 requests of ours and 50 of the other directory's, interleaved, in
    // one batch.
    let requests: Vec<Request> = (0..200)
        .map(|n| {
            let directory = if n % 4 == 3 {
                &other
            } else {
                &app.directory_id
            };
            answered(directory, format!("/scim/v2/Users?startIndex={n}"))
        })
        .collect();
    scim_requests::insert(&app.store, &requests, 120)
        .await
        .unwrap();

    let ours: Vec<String> = (0..200)
        .filter(|n| n % 4 != 3)
        .rev()
        .take(120)
        .map(|n| format!("/scim/v2/Users?startIndex={n}"))
        .collect();
    let first = log_page(&app, &app.directory_id, "?limit=100").await;
    let next = first["next_cursor"].as_str().unwrap();
    let rest = log_page(&app, &app.directory_id, &format!("?limit=100&after={next}")).await;
    let read = [paths(&first), paths(&rest)].concat();
    assert_eq!(read, ours, "the newest 120 of ours, newest first");
    let theirs: Vec<String> = (0..200)
        .filter(|n| n % 4 == 3)
        .rev()
        .map(|n| format!("/scim/v2/Users?startIndex={n}"))
        .collect();
    assert_eq!(paths(&log_page(&app, &other, "?limit=100").await), theirs);
}

#[tokio::test]
async fn batches_whose_requests_interleave_are_read_in_arrival_order_page_by_page() {
    let app = with_log(ScimLogArgs::defaults()).await;
    // Twelve requests in three batches, each holding every third of them
    // (as two replicas' writers, or a slow request beside quick ones, give):
    // the batches' spans overlap.
    let requests: Vec<Request> = (0..12)
        .map(|n| Request {
            method: if n % 2 == 0 { "GET" } else { "POST" }.into(),
            ..answered(&app.directory_id, format!("/scim/v2/Users?n={n}"))
        })
        .collect();
    for k in 0..3 {
        let batch: Vec<Request> = requests.iter().skip(k).step_by(3).cloned().collect();
        scim_requests::insert(&app.store, &batch, 1000)
            .await
            .unwrap();
    }
    let newest_first: Vec<String> = (0..12)
        .rev()
        .map(|n| format!("/scim/v2/Users?n={n}"))
        .collect();
    for limit in [1, 2, 5, 12] {
        let read = paths_of(&every_page(&app, "", limit).await);
        assert_eq!(read, newest_first, "pages of {limit}");
    }
    let posts: Vec<String> = (0..12)
        .rev()
        .filter(|n| n % 2 == 1)
        .map(|n| format!("/scim/v2/Users?n={n}"))
        .collect();
    assert_eq!(paths_of(&every_page(&app, "&method=post", 2).await), posts);
}

#[tokio::test]
async fn requests_too_long_for_one_row_are_written_to_several_and_read_back_whole() {
    let app = with_log(ScimLogArgs::defaults()).await;
    // Five requests with 300 KB bodies (kept bodies are up to 64 KiB each,
    // three of them; this is more) in one batch: over a row's megabyte.
    let requests: Vec<Request> = (0..5)
        .map(|n| Request {
            request_body: Some(format!("{n}").repeat(300_000)),
            ..answered(&app.directory_id, format!("/scim/v2/Users?n={n}"))
        })
        .collect();
    scim_requests::insert(&app.store, &requests, 1000)
        .await
        .unwrap();
    let rows = stored_batches(&app).await;
    assert_eq!(rows, 2, "three requests to the first row, two to the next");
    let bodies: Vec<String> = every_page(&app, "", 3)
        .await
        .iter()
        .map(|r| r["request_body"].as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<String> = (0..5)
        .rev()
        .map(|n| format!("{n}").repeat(300_000))
        .collect();
    assert_eq!(bodies, expected);
}

#[tokio::test]
async fn a_cap_or_a_prune_that_falls_inside_a_batch_keeps_only_its_newest() {
    let app = with_log(ScimLogArgs::defaults()).await;
    let path = |n: usize| format!("/scim/v2/Users?n={n}");
    let requests: Vec<Request> = (0..8)
        .map(|n| answered(&app.directory_id, path(n)))
        .collect();
    // Five, then three more with a cap of six: the first batch keeps its
    // newest three.
    scim_requests::insert(&app.store, &requests[..5], 6)
        .await
        .unwrap();
    scim_requests::insert(&app.store, &requests[5..], 6)
        .await
        .unwrap();
    let kept: Vec<String> = (2..8).rev().map(path).collect();
    assert_eq!(paths(&log_page(&app, &app.directory_id, "").await), kept);
    // The next request is the seventh: the oldest kept goes.
    scim_requests::insert(&app.store, &[answered(&app.directory_id, path(8))], 6)
        .await
        .unwrap();
    let kept: Vec<String> = (3..9).rev().map(path).collect();
    assert_eq!(paths(&log_page(&app, &app.directory_id, "").await), kept);
    // Page by page too: what the cap left out of a batch stays out past
    // its last kept request.
    assert_eq!(paths_of(&every_page(&app, "", 4).await), kept);

    // A prune allowed three takes the first batch's two and the oldest of
    // the second's three.
    let later = chrono::Utc::now().timestamp_millis() + 1000;
    let pruned = admin::prune_scim_requests(&app.store, later, 3)
        .await
        .unwrap();
    assert_eq!((pruned.deleted, pruned.is_complete), (3, false));
    let kept: Vec<String> = (6..9).rev().map(path).collect();
    assert_eq!(paths(&log_page(&app, &app.directory_id, "").await), kept);
    let pruned = admin::prune_scim_requests(&app.store, later, 100)
        .await
        .unwrap();
    assert_eq!((pruned.deleted, pruned.is_complete), (3, true));
    assert_eq!(
        log_page(&app, &app.directory_id, "").await["data"],
        json!([])
    );
}

#[tokio::test]
async fn retention_deletes_requests_older_than_it() {
    let app = with_log(ScimLogArgs::defaults()).await;
    assert_eq!(app.get("/Users").await.status(), 200);
    assert_eq!(app.get("/Groups").await.status(), 200);
    assert_eq!(logged(&app, "").await.len(), 2);
    let week = Retention::parse("7d").unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let pruned = retention::scim_log_once(&app.store, week, now)
        .await
        .unwrap();
    assert_eq!((pruned.deleted, pruned.is_complete), (0, true));
    let later = now + 8 * 86_400_000;
    let pruned = retention::scim_log_once(&app.store, week, later)
        .await
        .unwrap();
    assert_eq!((pruned.deleted, pruned.is_complete), (2, true));
    assert!(logged(&app, "").await.is_empty());
}

#[tokio::test]
async fn retention_goes_through_every_directory_and_stops_at_its_limit() {
    let app = with_log(ScimLogArgs::defaults()).await;
    let (other, other_token) = app.other_directory(false).await;
    let other_get = |path: &'static str| app.request_as(&other_token, Method::GET, path).send();
    for _ in 0..2 {
        assert_eq!(app.get("/Users").await.status(), 200);
    }
    for _ in 0..3 {
        assert_eq!(other_get("/Groups").await.unwrap().status(), 200);
    }
    app.scim_log.flush().await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let cutoff = chrono::Utc::now().timestamp_millis();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert_eq!(app.get("/Groups").await.status(), 200);
    app.scim_log.flush().await;

    // Five requests of two directories are older than the cutoff: a pass
    // allowed four stops there and says so; the next deletes the fifth.
    let pruned = admin::prune_scim_requests(&app.store, cutoff, 4)
        .await
        .unwrap();
    assert_eq!((pruned.deleted, pruned.is_complete), (4, false));
    let pruned = admin::prune_scim_requests(&app.store, cutoff, 100)
        .await
        .unwrap();
    assert_eq!((pruned.deleted, pruned.is_complete), (1, true));

    let ours = logged(&app, "").await;
    assert_eq!(ours.len(), 1, "{ours:#?}");
    assert_eq!(ours[0]["path"], "/scim/v2/Groups");
    assert_eq!(log_page(&app, &other, "").await["data"], json!([]));
}

#[tokio::test]
async fn logged_requests_survive_the_logs_last_migration_down_and_up() {
    use migrations::MigratorTrait;
    use sea_orm::{ConnectionTrait, Statement};
    let app = with_log(ScimLogArgs::defaults()).await;
    assert_eq!(app.get("/Users").await.status(), 200);
    app.scim_log.flush().await;
    // Three more in one batch: one row, taken apart on the way down.
    let batch: Vec<Request> = (0..3)
        .map(|n| Request {
            detail: Some(format!("detail {n}")),
            outcomes: r#"[{"outcome":"unchanged"}]"#.into(),
            ..answered(&app.directory_id, format!("/scim/v2/Groups?count={n}"))
        })
        .collect();
    scim_requests::insert(&app.store, &batch, 1000)
        .await
        .unwrap();
    let before = logged(&app, "").await;
    assert_eq!(before.len(), 4, "{before:#?}");

    // The last step of the database's migrations and, on SQLite, of the
    // log file's: a row a request again, numbered as they arrived.
    let database = app.store.connection();
    let log_file = app
        .store
        .has_log_file()
        .then(|| app.store.scim_log().connection());
    migrations::Migrator::down(database, Some(1)).await.unwrap();
    if let Some(log_file) = log_file {
        migrations::LogMigrator::down(log_file, Some(1))
            .await
            .unwrap();
    }
    let conn = app.store.scim_log().connection();
    let rows = conn
        .query_all_raw(Statement::from_string(
            conn.get_database_backend(),
            "SELECT id, path, detail, outcomes, number FROM scim_requests ORDER BY id DESC",
        ))
        .await
        .unwrap();
    let rows: Vec<(String, String, Option<String>, Value, i64)> = rows
        .iter()
        .map(|r| {
            let outcomes: String = r.try_get("", "outcomes").unwrap();
            (
                r.try_get("", "id").unwrap(),
                r.try_get("", "path").unwrap(),
                r.try_get("", "detail").unwrap(),
                serde_json::from_str(&outcomes).unwrap(),
                r.try_get("", "number").unwrap(),
            )
        })
        .collect();
    let expected: Vec<(String, String, Option<String>, Value, i64)> = before
        .iter()
        .zip([4, 3, 2, 1])
        .map(|(r, number)| {
            (
                r["id"].as_str().unwrap().to_owned(),
                r["path"].as_str().unwrap().to_owned(),
                r["detail"].as_str().map(str::to_owned),
                r["outcomes"].clone(),
                number,
            )
        })
        .collect();
    assert_eq!(rows, expected);

    app.store.migrate().await.unwrap();
    assert_eq!(logged(&app, "").await, before);
    assert_eq!(app.get("/Users?count=1").await.status(), 200);
    let after = logged(&app, "").await;
    assert_eq!(after.len(), 5, "{after:#?}");
    assert_eq!(after[1..], before[..]);
}

#[tokio::test]
async fn the_log_pages_newest_first_and_filters_by_status_class_and_method() {
    let app = with_log(ScimLogArgs::defaults()).await;
    app.create_user("ada@example.com").await;
    let again = app
        .post("/Users", &user("ada@example.com", "ada@example.com"))
        .await;
    assert_eq!(again.status(), 409);
    assert_eq!(app.get("/Users/nope").await.status(), 404);

    let client_errors = logged(&app, "?status=4xx").await;
    let statuses: Vec<i64> = client_errors
        .iter()
        .map(|r| r["status"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses, [404, 409]);
    let posts = logged(&app, "?status=4xx&method=post").await;
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0]["status"], 409);

    let first = log_page(&app, &app.directory_id, "?limit=2").await;
    assert_eq!(first["data"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest = log_page(&app, &app.directory_id, &format!("?limit=2&after={cursor}")).await;
    let rest = rest["data"].as_array().unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0]["status"], 201);

    let read = token(&app.tenant, "read");
    for (query, field) in [
        ("?status=9xx", "status"),
        ("?method=FETCH", "method"),
        ("?after=not-a-cursor", "after"),
        ("?limit=0", "limit"),
    ] {
        let (status, problem) = get(&app, &read, &log_path(&app.directory_id, query)).await;
        assert_eq!(status, 400, "{query}: {problem}");
        assert!(problem.to_string().contains(field), "{query}: {problem}");
    }
}

#[tokio::test]
async fn another_tenants_token_cannot_read_a_directorys_log() {
    let app = with_log(ScimLogArgs::defaults()).await;
    app.create_user("ada@example.com").await;
    let (other_directory, other_token) = app.other_directory(true).await;
    let res = app
        .request_as(&other_token, Method::GET, "/Users")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    app.scim_log.flush().await;

    let other_tenant = format!("tenant-{}", uuid::Uuid::new_v4().simple());
    dirsync::admin::create_tenant(&app.store, &other_tenant)
        .await
        .unwrap();
    let stranger = token(&other_tenant, "read");
    let (status, _) = get(&app, &stranger, &log_path(&app.directory_id, "")).await;
    assert_eq!(status, 404);
    // The tenant's own token does not reach another tenant's directory.
    let (status, _) = get(
        &app,
        &token(&app.tenant, "read"),
        &log_path(&other_directory, ""),
    )
    .await;
    assert_eq!(status, 404);
    // Nor does another directory's traffic show in this one's log.
    let log = logged(&app, "").await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["method"], "POST");
}

#[tokio::test]
async fn the_cli_lists_a_directorys_requests() {
    let app = with_log(ScimLogArgs::defaults()).await;
    app.create_user("ada@example.com").await;
    app.scim_log.flush().await;
    let reference = format!("{}/main", app.tenant);
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_dirsync"))
            .arg("--database-url")
            .arg(&app.db_url)
            .args(["directory", "requests", "--directory", &reference])
            .args(args)
            .output()
            .expect("run dirsync");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let listed: Value = serde_json::from_str(&run(&["--json", "--limit", "5"])).unwrap();
    assert_eq!(listed[0]["path"], "/scim/v2/Users");
    assert_eq!(listed[0]["outcomes"][0]["outcome"], "created");
    let text = run(&[]);
    assert!(text.contains("POST /scim/v2/Users  201"), "{text}");
    assert!(text.contains("created"), "{text}");
}

#[tokio::test]
async fn a_removed_directory_takes_its_log_with_it() {
    let app = with_log(ScimLogArgs::defaults()).await;
    app.create_user("ada@example.com").await;
    assert_eq!(logged(&app, "").await.len(), 1);
    let admin = token(&app.tenant, "read write admin");
    let (status, _, _) = crate::host_api::call(
        &app,
        Some(&admin),
        Method::DELETE,
        &format!("/api/v1/directories/{}", app.directory_id),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let count = stored_batches(&app).await;
    assert_eq!(count, 0);
}

#[tokio::test]
async fn the_log_is_written_while_the_directories_writer_is_held() {
    // A long write of the directories (an import's page, a migration of
    // the CLI beside the server) holds their writer; the log goes on
    // writing what SCIM reads asked, without waiting for it (on SQLite a
    // file of its own; on PostgreSQL, rows no one else writes).
    let app = with_log(ScimLogArgs::defaults()).await;
    app.create_user("ada@example.com").await;
    app.scim_log.flush().await;
    let held = app.store.write().await.unwrap();
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        let res = app.get("/Users?count=1").await;
        assert_eq!(res.status(), 200);
        app.scim_log.flush().await;
    })
    .await;
    assert!(read.is_ok(), "the log waited for the directories' writer");
    drop(held);
    let log = logged(&app, "").await;
    assert_eq!(log.len(), 2, "{log:#?}");
    assert_eq!(log[0]["method"], "GET");
}
