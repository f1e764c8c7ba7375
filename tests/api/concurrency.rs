//! Concurrent clients: writes without preconditions all land (never a 412 the
//! client did not ask for), uniqueness holds under races, versions count every
//! change once.

use futures_util::future::join_all;
use serde_json::json;

use crate::helpers::{json, patch_op, spawn_app};

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
