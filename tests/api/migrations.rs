//! Migrations run up, down and up again on this run's backend, and the server
//! works afterwards: through the running server's own pool, and after a
//! restart on the same database.

use dirsync::admin;
use dirsync::config::ServerSettings;
use dirsync::startup::Application;
use dirsync::store::Store;
use reqwest::Method;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::json;

use crate::helpers::{SCIM_JSON, TestApp, assert_scim_error, enc, json, patch_op, spawn_app_with};

const TABLES: [&str; 19] = [
    "tenants",
    "directories",
    "scim_tokens",
    "directory_users",
    "directory_groups",
    "directory_memberships",
    "users",
    "user_links",
    "groups",
    "group_members",
    "events",
    "event_sequences",
    "connections",
    "sync_runs",
    "deferred_changes",
    "run_deactivations",
    "webhook_endpoints",
    "webhook_attempts",
    "scim_request_batches",
];

/// The application tables that exist now, in the database and (on SQLite)
/// in the SCIM request log's own file.
async fn tables(store: &Store) -> Vec<String> {
    let mut names = std::collections::BTreeSet::new();
    for conn in [store.connection(), store.scim_log().connection()] {
        let sql = match conn.get_database_backend() {
            DbBackend::Postgres => {
                "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema()"
            }
            _ => "SELECT name FROM sqlite_master WHERE type = 'table'",
        };
        let rows = conn
            .query_all_raw(Statement::from_string(conn.get_database_backend(), sql))
            .await
            .unwrap();
        names.extend(
            rows.iter()
                .map(|r| r.try_get::<String>("", "name").unwrap())
                .filter(|n| TABLES.contains(&n.as_str())),
        );
    }
    names.into_iter().collect()
}

/// Whether the database itself (not the log's file) holds `table`.
async fn database_has(store: &Store, table: &str) -> bool {
    let conn = store.connection();
    let sql = match conn.get_database_backend() {
        DbBackend::Postgres => format!(
            "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = '{table}'"
        ),
        _ => format!(
            "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = '{table}'"
        ),
    };
    let row = conn
        .query_one_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap() > 0
}

fn all_tables() -> Vec<String> {
    let mut all: Vec<String> = TABLES.iter().map(|t| (*t).to_owned()).collect();
    all.sort();
    all
}

/// A new directory and token (the old ones went with the down migration), and
/// a full round of SCIM traffic through `base`.
async fn exercise(app: &TestApp, store: &Store, base: &str) {
    let tenant = admin::create_tenant(store, &format!("t-{}", uuid::Uuid::new_v4().simple()))
        .await
        .unwrap();
    let dir = admin::create_directory(store, &tenant.name, "again", "generic")
        .await
        .unwrap();
    let token = admin::create_token(store, &dir.id, None)
        .await
        .unwrap()
        .token;
    let send = |method: Method, path: String, body: Option<serde_json::Value>| {
        let mut req = app
            .client
            .request(method, format!("{base}{path}"))
            .bearer_auth(&token);
        if let Some(body) = body {
            req = req.header("content-type", SCIM_JSON).body(body.to_string());
        }
        req.send()
    };
    let res = send(
        Method::POST,
        "/Users".into(),
        Some(json!({"userName": "again@example.com", "emails": [{"value": "again@example.com", "primary": true}]})),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 201);
    let uid = json(res).await["id"].as_str().unwrap().to_owned();
    let dup = send(
        Method::POST,
        "/Users".into(),
        Some(json!({"userName": "AGAIN@example.com"})),
    )
    .await
    .unwrap();
    assert_scim_error(dup, 409, Some("uniqueness")).await;
    let res = send(
        Method::POST,
        "/Groups".into(),
        Some(json!({"displayName": "Again", "members": [{"value": uid}]})),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 201);
    let gid = json(res).await["id"].as_str().unwrap().to_owned();
    let found = send(
        Method::GET,
        format!(
            "/Users?filter={}",
            enc(r#"emails.value eq "again@example.com""#)
        ),
        None,
    )
    .await
    .unwrap();
    assert_eq!(json(found).await["totalResults"], 1);
    let res = send(
        Method::PATCH,
        format!("/Users/{uid}"),
        Some(patch_op(
            json!([{"op": "replace", "path": "active", "value": "False"}]),
        )),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(json(res).await["meta"]["version"], "W/\"2\"");
    let user = json(
        send(Method::GET, format!("/Users/{uid}"), None)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(user["groups"][0]["value"], json!(gid));
    assert_eq!(user["active"], false);
    let res = send(Method::DELETE, format!("/Users/{uid}"), None)
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let group = json(
        send(Method::GET, format!("/Groups/{gid}"), None)
            .await
            .unwrap(),
    )
    .await;
    assert!(group.get("members").is_none(), "{group}");
}

#[tokio::test]
async fn migrations_run_up_down_and_up_again_and_the_server_still_works() {
    // The tokens table is dropped under the running server, behind its
    // token cache's back: without the cache it notices at the next request.
    let app = spawn_app_with(ServerSettings {
        token_cache_ttl: std::time::Duration::ZERO,
        ..ServerSettings::for_tests()
    })
    .await;
    assert_eq!(tables(&app.store).await, all_tables());
    // SQLite keeps the SCIM request log in a file of its own, beside the
    // database's; PostgreSQL in the database.
    let sqlite = app.store.backend() == DbBackend::Sqlite;
    assert_eq!(
        database_has(&app.store, "scim_request_batches").await,
        !sqlite
    );
    if sqlite {
        let file = app.db_url.trim_start_matches("sqlite://");
        let file = file.split('?').next().unwrap();
        assert!(
            std::path::Path::new(&format!("{file}-scim-log")).exists(),
            "the log's file beside {file}"
        );
    }
    app.create_user("before@example.com").await;

    for _ in 0..2 {
        app.store.migrate_down().await.unwrap();
        assert!(
            tables(&app.store).await.is_empty(),
            "down drops every table"
        );
        app.store.migrate().await.unwrap();
        assert_eq!(tables(&app.store).await, all_tables());
    }
    // Up again with nothing pending changes nothing.
    app.store.migrate().await.unwrap();
    assert_eq!(tables(&app.store).await, all_tables());

    // The old token went with its table.
    assert_scim_error(app.get("/Users").await, 401, None).await;

    // The running server, on its existing connections.
    exercise(&app, &app.store, &app.base).await;

    // A restarted server on the same database.
    let store = Store::connect(&app.db_url, 4).await.unwrap();
    store.migrate().await.unwrap();
    let restarted =
        Application::with_store(store.clone(), ServerSettings::for_tests(), None).unwrap();
    let base = format!("http://127.0.0.1:{}/scim/v2", restarted.port());
    tokio::spawn(restarted.run_until_stopped());
    exercise(&app, &store, &base).await;
}
