//! Concurrent clients: writes without preconditions all land (never a 412 the
//! client did not ask for), uniqueness holds under races, versions count every
//! change once.

use std::collections::BTreeMap;

use dirsync::admin;
use dirsync::config::ServerSettings;
use futures_util::future::join_all;
use reqwest::Method;
use rstest::rstest;
use serde_json::json;

use crate::helpers::{SCIM_JSON, TestApp, json, patch_op, spawn_app, spawn_app_with};

const PARALLEL: usize = 12;

#[tokio::test]
async fn parallel_member_adds_to_one_group_all_land() {
    let app = spawn_app().await;
    let app = &app;
    let mut users = Vec::new();
    for i in 0..PARALLEL {
        users.push(app.create_user(&format!("p{i}@example.com")).await);
    }
    let gid = app.create_group("Busy", &[]).await;
    let path = format!("/Groups/{gid}");
    let responses = join_all(users.iter().map(|u| {
        let body = patch_op(json!([{"op": "add", "path": "members", "value": [{"value": u}]}]));
        let path = &path;
        async move { app.patch(path, &body).await }
    }))
    .await;
    for res in responses {
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    }
    let group = app.get_ok(&path).await;
    assert_eq!(group["members"].as_array().unwrap().len(), PARALLEL);
    assert_eq!(
        group["meta"]["version"],
        json!(format!("W/\"{}\"", PARALLEL + 1))
    );
}

#[tokio::test]
async fn parallel_patches_of_different_attributes_of_one_user_all_land() {
    let app = spawn_app().await;
    let app = &app;
    let uid = app.create_user("busy@example.com").await;
    let path = format!("/Users/{uid}");
    let responses = join_all((0..PARALLEL).map(|i| {
        let body = patch_op(json!([{"op": "add", "path": "phoneNumbers",
                                    "value": [{"value": format!("555-{i:04}"), "type": "work"}]}]));
        let path = &path;
        async move { app.patch(path, &body).await }
    }))
    .await;
    for res in responses {
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    }
    let user = app.get_ok(&path).await;
    assert_eq!(user["phoneNumbers"].as_array().unwrap().len(), PARALLEL);
    assert_eq!(
        user["meta"]["version"],
        json!(format!("W/\"{}\"", PARALLEL + 1))
    );
}

#[tokio::test]
async fn racing_creates_of_one_user_name_make_one_user_and_409s() {
    let app = spawn_app().await;
    let app = &app;
    let responses = join_all((0..PARALLEL).map(|i| {
        let name = if i % 2 == 0 {
            "race@example.com"
        } else {
            "RACE@example.com"
        };
        let body = json!({"userName": name});
        async move { app.post("/Users", &body).await }
    }))
    .await;
    let mut created = 0;
    for res in responses {
        match res.status().as_u16() {
            201 => created += 1,
            409 => assert_eq!(json(res).await["scimType"], "uniqueness"),
            other => panic!("{other}: {}", res.text().await.unwrap()),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(app.total("/Users").await, 1);

    let body = json!({"displayName": "Race"});
    let responses = join_all((0..PARALLEL).map(|_| app.post("/Groups", &body))).await;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn racing_writes_on_one_if_match_let_exactly_one_through() {
    let app = spawn_app().await;
    let app = &app;
    let uid = app.create_user("cas@example.com").await;
    let path = format!("/Users/{uid}");
    let responses = join_all((0..PARALLEL).map(|i| {
        let body = patch_op(json!([{"op": "replace", "path": "title", "value": format!("t{i}")}]));
        let path = &path;
        async move {
            app.request(reqwest::Method::PATCH, path)
                .header("content-type", crate::helpers::SCIM_JSON)
                .header("if-match", "W/\"1\"")
                .body(body.to_string())
                .send()
                .await
                .unwrap()
        }
    }))
    .await;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 412),
        "{statuses:?}"
    );
    let user = app.get_ok(&path).await;
    assert_eq!(user["meta"]["version"], "W/\"2\"");
}

/// What the application made of one directory: its users' emails and
/// statuses, and how many events of each type it heard.
async fn identity_of(
    app: &TestApp,
    tenant: &str,
) -> (Vec<(String, String)>, BTreeMap<String, usize>) {
    let users = admin::users(&app.store, tenant).await.unwrap();
    let mut users: Vec<(String, String)> = users
        .iter()
        .map(|u| (u["email"].to_string(), u["status"].to_string()))
        .collect();
    users.sort();
    let mut events = BTreeMap::new();
    for event in admin::events(&app.store, tenant, 0, 10_000).await.unwrap() {
        let event = serde_json::to_value(event).unwrap();
        *events.entry(event["type"].to_string()).or_default() += 1;
    }
    (users, events)
}

/// Thirty directory users with distinct userNames and one email, created
/// at once, are each 201 on both backends and with either commit mode
/// (`--write-batch 1`: each write its own transaction, racing on
/// PostgreSQL; 32: group commit), and the application ends as the rules
/// leave it when the same thirty come one at a time (docs/reconciliation.md,
/// rules 1 and 5): one app user with that email, the other directory users
/// waiting for the address, the same events.
#[rstest]
#[case::each_write_alone(1)]
#[case::group_commit(32)]
#[tokio::test]
async fn thirty_parallel_creates_of_distinct_user_names_sharing_one_email_all_land(
    #[case] write_batch: u64,
) {
    const USERS: usize = 30;
    let body = |i: usize| {
        json!({
            "userName": format!("person{i}"),
            "emails": [{"value": "shared@example.com", "primary": true}],
        })
    };
    for round in 0..3 {
        let mut settings = ServerSettings::for_tests();
        settings.write_batch = write_batch;
        let app = spawn_app_with(settings).await;
        let app = &app;
        let responses = join_all((0..USERS).map(|i| {
            let body = body(i);
            async move { app.post("/Users", &body).await }
        }))
        .await;
        for res in responses {
            let status = res.status().as_u16();
            assert_eq!(status, 201, "round {round}: {}", res.text().await.unwrap());
        }
        assert_eq!(app.total("/Users").await, USERS as u64);

        // The same writes one at a time, in a tenant of their own.
        let serial = format!("tenant-{}", uuid::Uuid::new_v4().simple());
        admin::create_tenant(&app.store, &serial).await.unwrap();
        let dir = admin::create_directory(&app.store, &serial, "main", "generic")
            .await
            .unwrap();
        let token = admin::create_token(&app.store, &dir.id, None)
            .await
            .unwrap();
        for i in 0..USERS {
            let res = app
                .request_as(&token.token, Method::POST, "/Users")
                .header("content-type", SCIM_JSON)
                .body(body(i).to_string())
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 201);
        }

        let (users, events) = identity_of(app, &app.tenant).await;
        assert_eq!(users.len(), 1, "round {round}: {users:?}");
        assert_eq!(
            (users, events),
            identity_of(app, &serial).await,
            "round {round}"
        );
    }
}

/// A second process on the same database — the CLI acting on a user while
/// the server takes SCIM writes — never meets "database is locked": on
/// SQLite a write transaction takes the write lock when it begins (waiting
/// its turn), so no transaction that has read is refused the lock later.
/// Every write of both sides lands.
#[tokio::test]
async fn a_second_process_writing_beside_the_server_is_never_refused() {
    use dirsync::reconcile::host::Action;
    const ROUNDS: usize = 30;
    let app = spawn_app().await;
    app.create_user("cli-target@example.com").await;
    let cli = dirsync::store::Store::connect(&app.db_url, 2)
        .await
        .expect("a second pool on the same database");
    let scim_side = async {
        for i in 0..ROUNDS {
            let res = app
                .post(
                    "/Users",
                    &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                            "userName": format!("side{i}@example.com")}),
                )
                .await;
            let status = res.status().as_u16();
            assert_eq!(status, 201, "SCIM create {i}: {}", json(res).await);
        }
    };
    let cli_side = async {
        for i in 0..ROUNDS {
            let role = if i % 2 == 0 { "admin" } else { "member" };
            admin::user_action(
                &cli,
                &app.tenant,
                "cli-target@example.com",
                Action::SetRole(role.into()),
            )
            .await
            .unwrap_or_else(|e| panic!("the CLI's write {i} was refused: {e}"));
        }
    };
    futures_util::future::join(scim_side, cli_side).await;
    assert_eq!(app.total("/Users").await, ROUNDS as u64 + 1);
    let user = app
        .app_user("cli-target@example.com")
        .await
        .expect("the user");
    assert_eq!(user["role"], "member", "{user}");
}
