//! Isolation: a token acts for exactly one directory. Nothing is read, listed,
//! found, written, bulk-processed or linked across directories, whether they
//! share a tenant or not.

use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::helpers::{
    SCIM_JSON, TestApp, assert_scim_error, bulk_statuses, enc, ids, json, patch_op, spawn_app,
};

/// What directory A holds, as seen through its own token.
struct Seeded {
    app: TestApp,
    user: String,
    group: String,
}

async fn seeded() -> Seeded {
    let app = spawn_app().await;
    let body = json!({"userName": "alice@a.example", "externalId": "ext-alice", "title": "A's"});
    let user = app.post_created("/Users", &body).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let group = app.create_group("A Team", &[&user]).await;
    Seeded { app, user, group }
}

async fn send_as(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Response {
    let mut req = app.request_as(token, method, path);
    if let Some(body) = body {
        req = req.header("content-type", SCIM_JSON).body(body.to_string());
    }
    req.send().await.unwrap()
}

async fn ok_as(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Value {
    let res = send_as(app, token, method.clone(), path, body).await;
    let status = res.status();
    let out = json(res).await;
    assert!(status.is_success(), "{method} {path}: {status} {out}");
    out
}

/// Directory A's user and group, exactly as they were.
async fn snapshot(s: &Seeded) -> (Value, Value) {
    (
        s.app.get_ok(&format!("/Users/{}", s.user)).await,
        s.app.get_ok(&format!("/Groups/{}", s.group)).await,
    )
}

async fn nothing_crosses(new_tenant: bool) {
    let s = seeded().await;
    let app = &s.app;
    let before = snapshot(&s).await;
    let (other_dir, other) = app.other_directory(new_tenant).await;
    // The setup is what the test says it is.
    let tenant = app.store.tenant_by_name(&app.tenant).await.unwrap();
    assert_eq!(
        app.store
            .directory(&app.directory_id)
            .await
            .unwrap()
            .tenant_id,
        tenant.id
    );
    let other_tenant = app.store.directory(&other_dir).await.unwrap().tenant_id;
    assert_eq!(other_tenant == tenant.id, !new_tenant);
    assert_ne!(other_dir, app.directory_id);
    let mine = ok_as(
        app,
        &other,
        Method::POST,
        "/Users",
        Some(&json!({"userName": "bob@b.example"})),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let my_group = ok_as(
        app,
        &other,
        Method::POST,
        "/Groups",
        Some(&json!({"displayName": "B Team"})),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Read.
    for path in [format!("/Users/{}", s.user), format!("/Groups/{}", s.group)] {
        let res = send_as(app, &other, Method::GET, &path, None).await;
        assert_scim_error(res, 404, None).await;
    }
    // List.
    let users = ok_as(app, &other, Method::GET, "/Users", None).await;
    assert_eq!(ids(&users), vec![mine.clone()]);
    assert_eq!(users["totalResults"], 1);
    let groups = ok_as(app, &other, Method::GET, "/Groups", None).await;
    assert_eq!(ids(&groups), vec![my_group.clone()]);
    let cursor = ok_as(app, &other, Method::GET, "/Users?cursor=&count=10", None).await;
    assert_eq!(ids(&cursor), vec![mine.clone()]);
    // Filter.
    for filter in [
        r#"userName eq "alice@a.example""#.to_owned(),
        format!(r#"id eq "{}""#, s.user),
        r#"externalId eq "ext-alice""#.to_owned(),
        r#"title pr"#.to_owned(),
    ] {
        let found = ok_as(
            app,
            &other,
            Method::GET,
            &format!("/Users?filter={}", enc(&filter)),
            None,
        )
        .await;
        assert_eq!(found["totalResults"], 0, "{filter}");
    }
    let found = ok_as(
        app,
        &other,
        Method::GET,
        &format!("/Groups?filter={}", enc(r#"displayName eq "A Team""#)),
        None,
    )
    .await;
    assert_eq!(found["totalResults"], 0);
    // Search and root search.
    let searched = ok_as(
        app,
        &other,
        Method::POST,
        "/Users/.search",
        Some(&json!({})),
    )
    .await;
    assert_eq!(ids(&searched), vec![mine.clone()]);
    let searched = ok_as(
        app,
        &other,
        Method::POST,
        "/Groups/.search",
        Some(&json!({})),
    )
    .await;
    assert_eq!(ids(&searched), vec![my_group.clone()]);
    let root = ok_as(app, &other, Method::POST, "/.search", Some(&json!({}))).await;
    assert_eq!(ids(&root), vec![mine.clone(), my_group.clone()]);
    let root = ok_as(
        app,
        &other,
        Method::POST,
        "/.search",
        Some(&json!({"filter": "externalId eq \"ext-alice\""})),
    )
    .await;
    assert_eq!(root["totalResults"], 0);

    // Write: PUT, PATCH, DELETE of the other directory's ids.
    for (path, put) in [
        (
            format!("/Users/{}", s.user),
            json!({"userName": "hijack@b.example"}),
        ),
        (
            format!("/Groups/{}", s.group),
            json!({"displayName": "Hijacked"}),
        ),
    ] {
        let res = send_as(app, &other, Method::PUT, &path, Some(&put)).await;
        assert_scim_error(res, 404, None).await;
        let patch =
            patch_op(json!([{"op": "replace", "path": "displayName", "value": "Hijacked"}]));
        let res = send_as(app, &other, Method::PATCH, &path, Some(&patch)).await;
        assert_scim_error(res, 404, None).await;
        let res = send_as(app, &other, Method::DELETE, &path, None).await;
        assert_scim_error(res, 404, None).await;
    }

    // Bulk.
    let out = ok_as(
        app,
        &other,
        Method::POST,
        "/Bulk",
        Some(&json!({"Operations": [
            {"method": "PUT", "path": format!("/Users/{}", s.user), "data": {"userName": "bulk@b.example"}},
            {"method": "PATCH", "path": format!("/Groups/{}", s.group),
             "data": {"Operations": [{"op": "remove", "path": "members"}]}},
            {"method": "DELETE", "path": format!("/Users/{}", s.user)},
            {"method": "DELETE", "path": format!("/Groups/{}", s.group)},
            {"method": "POST", "path": "/Groups", "bulkId": "g",
             "data": {"displayName": "Bulk B", "members": [{"value": s.user}]}}
        ]})),
    )
    .await;
    let statuses = bulk_statuses(&out);
    assert_eq!(statuses, vec!["404", "404", "404", "404", "201"]);
    let bulk_group = out["Operations"][4]["location"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();

    // Member references to the other directory's user are not linked.
    let created = ok_as(
        app,
        &other,
        Method::POST,
        "/Groups",
        Some(&json!({"displayName": "Linked?", "members": [{"value": s.user}, {"value": mine}]})),
    )
    .await;
    assert_eq!(created["members"].as_array().unwrap().len(), 1, "{created}");
    assert_eq!(created["members"][0]["value"], json!(mine));
    let patched = ok_as(
        app,
        &other,
        Method::PATCH,
        &format!("/Groups/{my_group}"),
        Some(&patch_op(json!([{"op": "add", "path": "members", "value": [{"value": s.user}, {"value": s.group}]}]))),
    )
    .await;
    assert!(patched.get("members").is_none(), "{patched}");
    let replaced = ok_as(
        app,
        &other,
        Method::PUT,
        &format!("/Groups/{my_group}"),
        Some(&json!({"displayName": "B Team", "members": [{"value": s.user}]})),
    )
    .await;
    assert!(replaced.get("members").is_none(), "{replaced}");
    let bulk_group = ok_as(
        app,
        &other,
        Method::GET,
        &format!("/Groups/{bulk_group}"),
        None,
    )
    .await;
    assert!(bulk_group.get("members").is_none(), "{bulk_group}");

    // And A's side never saw any of it.
    assert_eq!(snapshot(&s).await, before);
    let a_users = app.get_ok("/Users").await;
    assert_eq!(ids(&a_users), vec![s.user.clone()]);
    let a_groups = app.get_ok("/Groups").await;
    assert_eq!(ids(&a_groups), vec![s.group.clone()]);
    // Nor can A reach B's resources.
    assert_scim_error(app.get(&format!("/Users/{mine}")).await, 404, None).await;
    let res = app
        .patch(
            &format!("/Groups/{}", s.group),
            &patch_op(json!([{"op": "add", "path": "members", "value": [{"value": mine}]}])),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(snapshot(&s).await, before);
}

#[tokio::test]
async fn nothing_crosses_between_directories_of_one_tenant() {
    nothing_crosses(false).await;
}

#[tokio::test]
async fn nothing_crosses_between_tenants() {
    nothing_crosses(true).await;
}

#[tokio::test]
async fn the_same_names_may_exist_in_two_directories() {
    let s = seeded().await;
    let app = &s.app;
    for new_tenant in [false, true] {
        let (_, other) = app.other_directory(new_tenant).await;
        let res = send_as(
            app,
            &other,
            Method::POST,
            "/Users",
            Some(&json!({"userName": "ALICE@a.example", "externalId": "ext-alice"})),
        )
        .await;
        assert_eq!(res.status(), 201);
        let theirs = json(res).await["id"].as_str().unwrap().to_owned();
        assert_ne!(theirs, s.user);
        let res = send_as(
            app,
            &other,
            Method::POST,
            "/Groups",
            Some(&json!({"displayName": "a team"})),
        )
        .await;
        assert_eq!(res.status(), 201);
        // Each sees its own.
        let found = ok_as(
            app,
            &other,
            Method::GET,
            &format!("/Users?filter={}", enc(r#"userName eq "alice@a.example""#)),
            None,
        )
        .await;
        assert_eq!(ids(&found), vec![theirs]);
        // Uniqueness still holds within the other directory.
        let res = send_as(
            app,
            &other,
            Method::POST,
            "/Users",
            Some(&json!({"userName": "alice@A.example"})),
        )
        .await;
        assert_scim_error(res, 409, Some("uniqueness")).await;
    }
    let found = app
        .filter("/Users", r#"userName eq "alice@a.example""#)
        .await;
    assert_eq!(ids(&found), vec![s.user.clone()]);
    assert_eq!(app.total("/Groups").await, 1);
}

#[tokio::test]
async fn deleting_in_one_directory_leaves_the_other_alone() {
    let s = seeded().await;
    let app = &s.app;
    let (_, other) = app.other_directory(false).await;
    let theirs = ok_as(
        app,
        &other,
        Method::POST,
        "/Users",
        Some(&json!({"userName": "alice@a.example"})),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let their_group = ok_as(
        app,
        &other,
        Method::POST,
        "/Groups",
        Some(&json!({"displayName": "A Team", "members": [{"value": theirs}]})),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.delete(&format!("/Users/{}", s.user)).await.status(),
        204
    );
    assert_eq!(
        app.delete(&format!("/Groups/{}", s.group)).await.status(),
        204
    );
    let group = ok_as(
        app,
        &other,
        Method::GET,
        &format!("/Groups/{their_group}"),
        None,
    )
    .await;
    assert_eq!(group["members"][0]["value"], json!(theirs));
    assert_eq!(group["meta"]["version"], "W/\"1\"");
    let user = ok_as(app, &other, Method::GET, &format!("/Users/{theirs}"), None).await;
    assert_eq!(user["groups"][0]["value"], json!(their_group));
}
