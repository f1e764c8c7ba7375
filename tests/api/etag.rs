//! Versions (RFC 7644 §3.14): `ETag` = `meta.version` on every resource
//! response, `If-Match` guards writes (412, nothing written), `If-None-Match`
//! answers 304, and the version moves only when the resource really changes.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{SCIM_JSON, TestApp, assert_scim_error, header, json, patch_op, spawn_app};

async fn send_with(
    app: &TestApp,
    method: Method,
    path: &str,
    condition: (&str, &str),
    body: Option<&Value>,
) -> reqwest::Response {
    let mut req = app.request(method, path).header(condition.0, condition.1);
    if let Some(body) = body {
        req = req.header("content-type", SCIM_JSON).body(body.to_string());
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn every_resource_response_carries_an_etag_equal_to_meta_version() {
    let app = spawn_app().await;
    let mut checked = 0;
    let mut check = |res_etag: String, body: &Value| {
        assert_eq!(body["meta"]["version"], json!(res_etag), "{body}");
        assert!(res_etag.starts_with("W/\""), "{res_etag}");
        checked += 1;
    };

    let res = app
        .post("/Users", &json!({"userName": "e@example.com"}))
        .await;
    let etag = header(&res, "etag");
    let user = json(res).await;
    check(etag, &user);
    let uid = user["id"].as_str().unwrap().to_owned();
    let upath = format!("/Users/{uid}");
    let res = app.get(&upath).await;
    let etag = header(&res, "etag");
    check(etag, &json(res).await);
    let res = app
        .put(&upath, &json!({"userName": "e@example.com", "title": "T"}))
        .await;
    let etag = header(&res, "etag");
    check(etag, &json(res).await);
    let res = app
        .patch(
            &upath,
            &patch_op(json!([{"op": "add", "path": "nickName", "value": "N"}])),
        )
        .await;
    let etag = header(&res, "etag");
    let patched = json(res).await;
    assert_eq!(patched["meta"]["version"], "W/\"3\"");
    check(etag, &patched);

    let res = app
        .post(
            "/Groups",
            &json!({"displayName": "G", "members": [{"value": uid}]}),
        )
        .await;
    let etag = header(&res, "etag");
    let group = json(res).await;
    check(etag, &group);
    let gpath = format!("/Groups/{}", group["id"].as_str().unwrap());
    let res = app.get(&gpath).await;
    let etag = header(&res, "etag");
    check(etag, &json(res).await);
    let res = app.put(&gpath, &json!({"displayName": "H"})).await;
    let etag = header(&res, "etag");
    check(etag, &json(res).await);
    let res = app
        .patch(
            &gpath,
            &patch_op(json!([{"op": "replace", "path": "displayName", "value": "I"}])),
        )
        .await;
    let etag = header(&res, "etag");
    check(etag, &json(res).await);
    // Projected answers still tell the version in the header.
    let res = app.get(&format!("{upath}?attributes=userName")).await;
    assert_eq!(header(&res, "etag"), "W/\"3\"");
    assert_eq!(checked, 8);
}

#[tokio::test]
async fn if_match_mismatch_is_412_and_nothing_is_written() {
    let app = spawn_app().await;
    let uid = app.create_user("m@example.com").await;
    let member = app.create_user("member@example.com").await;
    let gid = app.create_group("G", &[]).await;
    for (path, put_body, patch_body) in [
        (
            format!("/Users/{uid}"),
            json!({"userName": "m@example.com", "title": "X"}),
            patch_op(json!([{"op": "replace", "path": "title", "value": "X"}])),
        ),
        (
            format!("/Groups/{gid}"),
            json!({"displayName": "X", "members": [{"value": member}]}),
            patch_op(json!([{"op": "add", "path": "members", "value": [{"value": member}]}])),
        ),
    ] {
        let before = app.get_ok(&path).await;
        for stale in ["W/\"7\"", "\"7\"", "W/\"0\", W/\"2\""] {
            let res = send_with(
                &app,
                Method::PUT,
                &path,
                ("if-match", stale),
                Some(&put_body),
            )
            .await;
            assert_scim_error(res, 412, None).await;
            let res = send_with(
                &app,
                Method::PATCH,
                &path,
                ("if-match", stale),
                Some(&patch_body),
            )
            .await;
            assert_scim_error(res, 412, None).await;
            let res = send_with(&app, Method::DELETE, &path, ("if-match", stale), None).await;
            assert_scim_error(res, 412, None).await;
        }
        assert_eq!(app.get_ok(&path).await, before, "{path}");
    }
    let user = app.get_ok(&format!("/Users/{member}")).await;
    assert!(user.get("groups").is_none());
}

#[tokio::test]
async fn if_match_on_the_current_version_lets_the_write_through() {
    let app = spawn_app().await;
    let uid = app.create_user("m@example.com").await;
    let path = format!("/Users/{uid}");
    let res = send_with(
        &app,
        Method::PATCH,
        &path,
        ("if-match", "W/\"1\""),
        Some(&patch_op(
            json!([{"op": "replace", "path": "title", "value": "A"}]),
        )),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "etag"), "W/\"2\"");
    // The strong form of the same tag, and `*`, match too.
    let res = send_with(
        &app,
        Method::PUT,
        &path,
        ("if-match", "\"2\""),
        Some(&json!({"userName": "m@example.com", "title": "B"})),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(json(res).await["title"], "B");
    let res = send_with(
        &app,
        Method::PATCH,
        &path,
        ("if-match", "*"),
        Some(&patch_op(
            json!([{"op": "replace", "path": "title", "value": "C"}]),
        )),
    )
    .await;
    assert_eq!(res.status(), 200);
    let res = send_with(
        &app,
        Method::DELETE,
        &path,
        ("if-match", "W/\"1\", W/\"4\""),
        None,
    )
    .await;
    assert_eq!(res.status(), 204);
    assert_scim_error(app.get(&path).await, 404, None).await;

    let gid = app.create_group("G", &[]).await;
    let res = send_with(
        &app,
        Method::DELETE,
        &format!("/Groups/{gid}"),
        ("if-match", "W/\"1\""),
        None,
    )
    .await;
    assert_eq!(res.status(), 204);
}

#[tokio::test]
async fn if_none_match_on_the_current_version_is_304() {
    let app = spawn_app().await;
    let uid = app.create_user("n@example.com").await;
    let gid = app.create_group("G", &[&uid]).await;
    for path in [format!("/Users/{uid}"), format!("/Groups/{gid}")] {
        let res = send_with(&app, Method::GET, &path, ("if-none-match", "W/\"1\""), None).await;
        assert_eq!(res.status(), 304, "{path}");
        assert_eq!(header(&res, "etag"), "W/\"1\"");
        assert!(res.text().await.unwrap().is_empty());
        let res = send_with(&app, Method::GET, &path, ("if-none-match", "W/\"9\""), None).await;
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(json(res).await["meta"]["version"], "W/\"1\"");
    }
    // After a change the old tag no longer matches.
    let res = app
        .patch(
            &format!("/Users/{uid}"),
            &patch_op(json!([{"op": "replace", "path": "title", "value": "New"}])),
        )
        .await;
    assert_eq!(res.status(), 200);
    let res = send_with(
        &app,
        Method::GET,
        &format!("/Users/{uid}"),
        ("if-none-match", "W/\"1\""),
        None,
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(json(res).await["title"], "New");
}

#[tokio::test]
async fn the_version_moves_only_on_a_real_change() {
    let app = spawn_app().await;
    let body = json!({"userName": "v@example.com", "title": "T", "emails": [{"value": "v@example.com", "type": "work"}]});
    let uid = app.post_created("/Users", &body).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/Users/{uid}");
    let first = app.get_ok(&path).await;

    // A PATCH that sets what is already there.
    let res = app
        .patch(
            &path,
            &patch_op(json!([{"op": "replace", "path": "title", "value": "T"}])),
        )
        .await;
    assert_eq!(header(&res, "etag"), "W/\"1\"");
    // A PUT of the same resource, keys in another order.
    let res = app
        .put(&path, &json!({"title": "T", "emails": [{"type": "work", "value": "v@example.com"}], "userName": "v@example.com"}))
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "etag"), "W/\"1\"");
    assert_eq!(app.get_ok(&path).await, first, "lastModified unchanged too");

    // A real change moves it by one.
    let res = app
        .patch(
            &path,
            &patch_op(json!([{"op": "replace", "path": "title", "value": "U"}])),
        )
        .await;
    assert_eq!(header(&res, "etag"), "W/\"2\"");

    // Groups: renaming to the same name, re-adding a member: no change.
    let gid = app.create_group("Same", &[&uid]).await;
    let gpath = format!("/Groups/{gid}");
    let res = app
        .patch(
            &gpath,
            &patch_op(json!([
                {"op": "replace", "path": "displayName", "value": "Same"},
                {"op": "add", "path": "members", "value": [{"value": uid}]}
            ])),
        )
        .await;
    assert_eq!(header(&res, "etag"), "W/\"1\"");
    let res = app
        .put(
            &gpath,
            &json!({"displayName": "Same", "members": [{"value": uid}]}),
        )
        .await;
    assert_eq!(header(&res, "etag"), "W/\"1\"");
    // A membership change is a change of the group.
    let other = app.create_user("o@example.com").await;
    let res = app
        .patch(
            &gpath,
            &patch_op(json!([{"op": "add", "path": "members", "value": [{"value": other}]}])),
        )
        .await;
    assert_eq!(header(&res, "etag"), "W/\"2\"");
    // So is losing a member to a user deletion.
    assert_eq!(app.delete(&format!("/Users/{other}")).await.status(), 204);
    let res = app.get(&gpath).await;
    assert_eq!(header(&res, "etag"), "W/\"3\"");
    let group = json(res).await;
    assert_eq!(group["members"].as_array().unwrap().len(), 1);
}
