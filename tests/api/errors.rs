//! Bad input: each gets a clear SCIM error (RFC 7644 §3.12), never a 5xx, and
//! nothing is partly written.

use dirsync::admin;
use dirsync::config::ServerSettings;
use reqwest::Method;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

use crate::helpers::{
    SCIM_JSON, TestApp, assert_scim_error, enc, header, json, patch_op, spawn_app, spawn_app_with,
};
use crate::host_api::{call, token as host_token};

/// Every stored user and group row's JSON, as text: proves what was stored.
async fn stored_data(app: &TestApp) -> String {
    let conn = app.store.connection();
    let backend = conn.get_database_backend();
    let mut out = String::new();
    for table in ["directory_users", "directory_groups"] {
        let rows = conn
            .query_all_raw(Statement::from_string(
                backend,
                format!("SELECT CAST(data AS TEXT) AS d FROM {table} ORDER BY id"),
            ))
            .await
            .unwrap();
        for row in rows {
            out.push_str(&row.try_get::<String>("", "d").unwrap());
            out.push('\n');
        }
    }
    out
}

async fn raw(app: &TestApp, method: Method, path: &str, body: &str) -> reqwest::Response {
    app.request(method, path)
        .header("content-type", SCIM_JSON)
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn malformed_json_is_400_invalid_syntax_everywhere() {
    let app = spawn_app().await;
    let uid = app.create_user("keep@example.com").await;
    let gid = app.create_group("Keep", &[]).await;
    let before = stored_data(&app).await;
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    for body in [
        "{",
        "{\"userName\": \"x\",}",
        "not json",
        "{'userName': 'x'}",
        "",
        "   ",
        deep.as_str(),
        "{\"userName\": \"\\ud800\"}",
    ] {
        for (method, path) in [
            (Method::POST, "/Users".to_owned()),
            (Method::PUT, format!("/Users/{uid}")),
            (Method::PATCH, format!("/Users/{uid}")),
            (Method::POST, "/Groups".to_owned()),
            (Method::PUT, format!("/Groups/{gid}")),
            (Method::PATCH, format!("/Groups/{gid}")),
            (Method::POST, "/Users/.search".to_owned()),
            (Method::POST, "/.search".to_owned()),
            (Method::POST, "/Bulk".to_owned()),
        ] {
            let res = raw(&app, method.clone(), &path, body).await;
            let error = assert_scim_error(res, 400, Some("invalidSyntax")).await;
            assert!(
                error["detail"].as_str().unwrap().len() > 10,
                "{method} {path}"
            );
        }
    }
    assert_eq!(stored_data(&app).await, before);
}

#[tokio::test]
async fn wrongly_typed_values_are_400_invalid_value_and_store_nothing() {
    let app = spawn_app().await;
    let uid = app.create_user("keep@example.com").await;
    let before = stored_data(&app).await;
    for body in [
        json!({"userName": 123}),
        json!({"userName": ["a"]}),
        json!({"userName": "x@example.com", "emails": "x"}),
        json!({"userName": "x@example.com", "emails": [{"value": 5}]}),
        json!({"userName": "x@example.com", "active": "maybe"}),
        json!({"userName": "x@example.com", "active": 1}),
        json!({"userName": "x@example.com", "name": "Barbara"}),
        json!({"userName": "x@example.com", "title": {"a": 1}}),
        json!({"userName": "x@example.com", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": "x"}),
    ] {
        let res = app.post("/Users", &body).await;
        let error = assert_scim_error(res, 400, Some("invalidValue")).await;
        assert!(
            error["detail"].as_str().unwrap().contains("must"),
            "{body}: {error}"
        );
        let res = app.put(&format!("/Users/{uid}"), &body).await;
        assert_scim_error(res, 400, Some("invalidValue")).await;
    }
    for value in [json!(123), json!(["a"]), json!({"a": 1})] {
        let res = app
            .patch(
                &format!("/Users/{uid}"),
                &patch_op(json!([{"op": "replace", "path": "userName", "value": value}])),
            )
            .await;
        assert_scim_error(res, 400, Some("invalidValue")).await;
    }
    let res = app.post("/Groups", &json!({"displayName": 5})).await;
    assert_scim_error(res, 400, Some("invalidValue")).await;
    let res = app
        .post(
            "/Groups",
            &json!({"displayName": "G", "members": [{"value": 5}]}),
        )
        .await;
    assert_scim_error(res, 400, Some("invalidValue")).await;
    assert_eq!(stored_data(&app).await, before);
}

#[tokio::test]
async fn a_user_without_user_name_is_400() {
    let app = spawn_app().await;
    let uid = app.create_user("keep@example.com").await;
    let before = stored_data(&app).await;
    for body in [
        json!({}),
        json!({"not": "a scim resource"}),
        json!({"userName": ""}),
        json!({"userName": "   "}),
        json!({"userName": null, "displayName": "No Name"}),
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "name": {"givenName": "A"}}),
    ] {
        let res = app.post("/Users", &body).await;
        assert_scim_error(res, 400, Some("invalidValue")).await;
        // M5: a PUT without userName too.
        let res = app.put(&format!("/Users/{uid}"), &body).await;
        assert_scim_error(res, 400, Some("invalidValue")).await;
    }
    let res = app
        .patch(
            &format!("/Users/{uid}"),
            &patch_op(json!([{"op": "remove", "path": "userName"}])),
        )
        .await;
    assert_scim_error(res, 400, None).await;
    let res = app.post("/Groups", &json!({"members": []})).await;
    assert_scim_error(res, 400, Some("invalidValue")).await;
    assert_eq!(stored_data(&app).await, before);
}

#[tokio::test]
async fn unknown_attributes_are_ignored_not_stored_and_not_returned() {
    // M3, E12, E14 (an unknown URN listed in `schemas`; an extension object
    // under an unknown URN is kept, tests/api/custom_extensions.rs).
    let app = spawn_app().await;
    let res = app
        .post(
            "/Users",
            &json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:example:custom:1.0:User"],
                "userName": "u@example.com",
                "favouriteColour": "blue-zqx",
                "name": {"givenName": "A", "shoeSize": "nine-zqx"},
                "emails": [{"value": "u@example.com", "verified": "yes-zqx"}]
            }),
        )
        .await;
    assert_eq!(res.status(), 201);
    let user = json(res).await;
    let text = user.to_string();
    assert!(!text.contains("zqx"), "{text}");
    assert_eq!(user["name"], json!({"givenName": "A"}));
    let id = user["id"].as_str().unwrap();
    let read = app.get_ok(&format!("/Users/{id}")).await;
    assert!(!read.to_string().contains("zqx"));
    assert!(!stored_data(&app).await.contains("zqx"));
    // Not an attribute, so not filterable either.
    let res = app
        .get(&format!(
            "/Users?filter={}",
            enc(r#"favouriteColour eq "blue-zqx""#)
        ))
        .await;
    assert_scim_error(res, 400, Some("invalidFilter")).await;
    // PUT and path-less PATCH ignore them the same way.
    let res = app
        .put(
            &format!("/Users/{id}"),
            &json!({"userName": "u@example.com", "adreses": [{"formatted": "x-zqx"}]}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let res = app
        .patch(
            &format!("/Users/{id}"),
            &patch_op(json!([{"op": "replace", "value": {"nickName": "N", "favouriteColour": "red-zqx"}}])),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(json(res).await["nickName"], "N");
    assert!(!stored_data(&app).await.contains("zqx"));
}

#[tokio::test]
async fn an_oversize_body_is_413_and_stores_nothing() {
    let app = spawn_app_with(ServerSettings {
        max_body_bytes: 4_096,
        ..ServerSettings::for_tests()
    })
    .await;
    let uid = app.create_user("keep@example.com").await;
    let before = stored_data(&app).await;
    let big = json!({"userName": "big@example.com", "title": "x".repeat(8_000)});
    for (method, path) in [
        (Method::POST, "/Users".to_owned()),
        (Method::PUT, format!("/Users/{uid}")),
        (Method::POST, "/Groups".to_owned()),
        (Method::POST, "/Users/.search".to_owned()),
    ] {
        let res = raw(&app, method, &path, &big.to_string()).await;
        assert_scim_error(res, 413, None).await;
    }
    let res = app
        .patch(
            &format!("/Users/{uid}"),
            &patch_op(json!([{"op": "replace", "path": "title", "value": "y".repeat(8_000)}])),
        )
        .await;
    assert_scim_error(res, 413, None).await;
    let (status, error) = app.post_chunked("/Users", big.to_string()).await;
    assert_eq!(status, 413, "{error}");
    assert_eq!(error["status"], "413");
    assert_eq!(stored_data(&app).await, before);
    // Just under the limit is fine (each attribute within its own cap, README "Limits").
    let ok = json!({
        "userName": "ok@example.com",
        "title": "x".repeat(1_000),
        "nickName": "x".repeat(1_000),
        "displayName": "x".repeat(1_000)
    });
    assert_eq!(app.post("/Users", &ok).await.status(), 201);
}

#[tokio::test]
async fn huge_and_deeply_nested_filters_are_400_not_a_crash() {
    let app = spawn_app().await;
    app.create_user("a@example.com").await;
    let terms = vec![r#"userName eq "x""#; 10_000].join(" or ");
    let res = app.post("/Users/.search", &json!({"filter": terms})).await;
    assert_scim_error(res, 400, Some("invalidFilter")).await;
    let res = app.post("/Groups/.search", &json!({"filter": terms})).await;
    assert_scim_error(res, 400, Some("invalidFilter")).await;
    let res = app.post("/.search", &json!({"filter": terms})).await;
    assert_scim_error(res, 400, Some("invalidFilter")).await;

    let nested = format!(
        "{}userName eq \"x\"{}",
        "not (".repeat(500),
        ")".repeat(500)
    );
    let res = app.post("/Users/.search", &json!({"filter": nested})).await;
    assert_scim_error(res, 400, Some("invalidFilter")).await;
    let res = app.get(&format!("/Users?filter={}", enc(&nested))).await;
    assert_scim_error(res, 400, Some("invalidFilter")).await;
    let grouped = format!("{}userName eq \"x\"{}", "(".repeat(500), ")".repeat(500));
    let res = app.get(&format!("/Users?filter={}", enc(&grouped))).await;
    assert_scim_error(res, 400, Some("invalidFilter")).await;
    let valued = format!(
        "emails[{}type eq \"x\"{}]",
        "not (".repeat(500),
        ")".repeat(500)
    );
    let res = app.get(&format!("/Users?filter={}", enc(&valued))).await;
    assert_scim_error(res, 400, Some("invalidFilter")).await;
    // The server is still there.
    assert_eq!(app.total("/Users").await, 1);
}

#[tokio::test]
async fn an_invalid_patch_path_is_400_invalid_path() {
    let app = spawn_app().await;
    let uid = app.create_user("p@example.com").await;
    let gid = app.create_group("G", &[]).await;
    let before = stored_data(&app).await;
    for path in [
        "nosuch",
        "name.nosuch",
        "emails[type eq \"work\"",
        "emails[nosuch eq \"x\"]",
        "emails[type eq \"work\"].nosuch",
        "title[value eq \"x\"]",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:thing",
        "urn:example:nosuch:1.0:User:1thing",
        "emails]",
        "..",
    ] {
        let res = app
            .patch(
                &format!("/Users/{uid}"),
                &patch_op(json!([
                    {"op": "replace", "path": "title", "value": "ok"},
                    {"op": "replace", "path": path, "value": "x"}
                ])),
            )
            .await;
        assert_scim_error(res, 400, Some("invalidPath")).await;
    }
    let res = app
        .patch(
            &format!("/Users/{uid}"),
            &patch_op(json!([{"op": "remove", "path": "nosuch"}])),
        )
        .await;
    assert_scim_error(res, 400, Some("invalidPath")).await;
    let res = app
        .patch(
            &format!("/Groups/{gid}"),
            &patch_op(json!([{"op": "add", "path": "userName", "value": "x"}])),
        )
        .await;
    assert_scim_error(res, 400, Some("invalidPath")).await;
    assert_eq!(stored_data(&app).await, before);
}

#[tokio::test]
async fn patching_read_only_attributes_is_400_mutability() {
    let app = spawn_app().await;
    let uid = app.create_user("ro@example.com").await;
    let gid = app.create_group("G", &[&uid]).await;
    let before = stored_data(&app).await;
    for (path, value) in [
        ("id", json!(uuid::Uuid::new_v4().to_string())),
        ("meta", json!({"created": "2001-01-01T00:00:00Z"})),
        ("meta.created", json!("2001-01-01T00:00:00Z")),
        ("meta.version", json!("W/\"9\"")),
        ("groups", json!([{"value": gid}])),
        ("groups.display", json!("x")),
    ] {
        for op in ["add", "replace", "remove"] {
            let res = app
                .patch(
                    &format!("/Users/{uid}"),
                    &patch_op(json!([{"op": op, "path": path, "value": value}])),
                )
                .await;
            assert_scim_error(res, 400, Some("mutability")).await;
        }
    }
    // O8 allows echoing the same id path-less; another id is refused.
    let res = app
        .patch(
            &format!("/Groups/{gid}"),
            &patch_op(json!([{"op": "replace", "value": {"id": uuid::Uuid::new_v4().to_string(), "displayName": "H"}}])),
        )
        .await;
    assert_scim_error(res, 400, Some("mutability")).await;
    let res = app
        .patch(
            &format!("/Groups/{gid}"),
            &patch_op(
                json!([{"op": "replace", "path": "id", "value": uuid::Uuid::new_v4().to_string()}]),
            ),
        )
        .await;
    assert_scim_error(res, 400, Some("mutability")).await;
    assert_eq!(stored_data(&app).await, before);
    assert_eq!(
        app.get_ok(&format!("/Users/{uid}")).await["groups"][0]["value"],
        json!(gid)
    );
}

#[tokio::test]
async fn ids_that_are_not_uuids_are_404_on_every_method() {
    // O11: Okta's SPEC test.
    let app = spawn_app().await;
    app.create_user("x@example.com").await;
    app.create_group("G", &[]).await;
    let before = stored_data(&app).await;
    for collection in ["Users", "Groups"] {
        for id in [
            "010101001010101011001010101011",
            "00919288221112222",
            "not-an-id",
            "%27%20OR%201%3D1",
        ] {
            let path = format!("/{collection}/{id}");
            assert_scim_error(app.get(&path).await, 404, None).await;
            let res = app
                .put(&path, &json!({"userName": "y", "displayName": "y"}))
                .await;
            assert_scim_error(res, 404, None).await;
            let res = app
                .patch(
                    &path,
                    &patch_op(json!([{"op": "replace", "path": "displayName", "value": "y"}])),
                )
                .await;
            assert_scim_error(res, 404, None).await;
            assert_scim_error(app.delete(&path).await, 404, None).await;
        }
        // A well-formed id that names nothing: also 404.
        let path = format!("/{collection}/{}", uuid::Uuid::new_v4());
        assert_scim_error(app.get(&path).await, 404, None).await;
        assert_scim_error(app.delete(&path).await, 404, None).await;
    }
    assert_eq!(stored_data(&app).await, before);
}

#[tokio::test]
async fn unknown_urls_are_404_with_a_scim_body() {
    // X5.
    let app = spawn_app().await;
    for path in [
        format!("{}/{}", app.base, uuid::Uuid::new_v4()),
        format!("{}/Printers", app.base),
        format!("{}/Users/{}/extra", app.base, uuid::Uuid::new_v4()),
        format!("{}/nothing/here", app.origin),
    ] {
        let res = app
            .client
            .get(&path)
            .bearer_auth(&app.token)
            .send()
            .await
            .unwrap();
        assert_scim_error(res, 404, None).await;
    }
}

#[tokio::test]
async fn missing_malformed_or_revoked_tokens_are_401_with_www_authenticate() {
    let app = spawn_app().await;
    let check = |res: reqwest::Response| async move {
        let challenge = header(&res, "www-authenticate");
        assert!(challenge.starts_with("Bearer"), "{challenge}");
        assert_scim_error(res, 401, None).await;
    };
    // Missing.
    check(
        app.client
            .get(format!("{}/Users", app.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    // Malformed or wrong (O12 sends `non-token`).
    for authorization in [
        "non-token",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer not-a-real-token",
        &format!("Bearer {}x", app.token),
        &format!("Token {}", app.token),
    ] {
        let res = app
            .client
            .get(format!("{}/Users", app.base))
            .header("authorization", authorization)
            .send()
            .await
            .unwrap();
        check(res).await;
    }
    // Writes are refused the same way and write nothing.
    let res = app
        .client
        .post(format!("{}/Users", app.base))
        .header("content-type", SCIM_JSON)
        .body(json!({"userName": "intruder@example.com"}).to_string())
        .send()
        .await
        .unwrap();
    check(res).await;
    // Revoked: works, then is revoked through this server, then is 401
    // everywhere at once.
    let token = admin::create_token(&app.store, &app.directory_id, Some("temp"))
        .await
        .unwrap();
    let res = app
        .request_as(&token.token, Method::GET, "/Users")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (status, _, _) = call(
        &app,
        Some(&host_token(&app.tenant, "admin")),
        Method::DELETE,
        &format!(
            "/api/v1/directories/{}/tokens/{}",
            app.directory_id, token.id
        ),
        None,
    )
    .await;
    assert_eq!(status, 200);
    for (method, path) in [
        (Method::GET, "/Users"),
        (Method::GET, "/Groups"),
        (Method::POST, "/Users"),
        (Method::POST, "/Bulk"),
        (Method::POST, "/.search"),
    ] {
        let res = app
            .request_as(&token.token, method, path)
            .header("content-type", SCIM_JSON)
            .body(json!({"userName": "revoked@example.com", "Operations": []}).to_string())
            .send()
            .await
            .unwrap();
        check(res).await;
    }
    assert_eq!(app.total("/Users").await, 0);
    // The other token still works.
    assert_eq!(app.get("/Users").await.status(), 200);
}

#[tokio::test]
async fn a_duplicate_user_name_in_any_case_is_409_uniqueness() {
    // M5, O3.
    let app = spawn_app().await;
    let first = app.create_user("Dup@Example.com").await;
    let other = app.create_user("other@example.com").await;
    let before = stored_data(&app).await;
    for user_name in ["Dup@Example.com", "dup@example.com", "DUP@EXAMPLE.COM"] {
        let res = app.post("/Users", &json!({"userName": user_name})).await;
        let error = assert_scim_error(res, 409, Some("uniqueness")).await;
        assert!(error["detail"].as_str().unwrap().contains("userName"));
        // Renaming another user onto it, by PUT or PATCH.
        let res = app
            .put(&format!("/Users/{other}"), &json!({"userName": user_name}))
            .await;
        assert_scim_error(res, 409, Some("uniqueness")).await;
        let res = app
            .patch(
                &format!("/Users/{other}"),
                &patch_op(json!([{"op": "replace", "path": "userName", "value": user_name}])),
            )
            .await;
        assert_scim_error(res, 409, Some("uniqueness")).await;
    }
    assert_eq!(stored_data(&app).await, before);
    // Changing the case of one's own userName is allowed.
    let res = app
        .patch(
            &format!("/Users/{first}"),
            &patch_op(json!([{"op": "replace", "path": "userName", "value": "dup@example.com"}])),
        )
        .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_duplicate_group_display_name_is_409_uniqueness() {
    // J3: JumpCloud adopts the existing group on 409.
    let app = spawn_app().await;
    let user = app.create_user("m@example.com").await;
    app.create_group("Engineering", &[]).await;
    let other = app.create_group("Sales", &[]).await;
    let before = stored_data(&app).await;
    for name in ["Engineering", "engineering", "ENGINEERING"] {
        let res = app
            .post(
                "/Groups",
                &json!({"displayName": name, "members": [{"value": user}]}),
            )
            .await;
        assert_scim_error(res, 409, Some("uniqueness")).await;
        let res = app
            .put(&format!("/Groups/{other}"), &json!({"displayName": name}))
            .await;
        assert_scim_error(res, 409, Some("uniqueness")).await;
        let res = app
            .patch(
                &format!("/Groups/{other}"),
                &patch_op(json!([{"op": "replace", "path": "displayName", "value": name}])),
            )
            .await;
        assert_scim_error(res, 409, Some("uniqueness")).await;
    }
    assert_eq!(stored_data(&app).await, before);
    assert_eq!(app.total("/Groups").await, 2);
    let user = app.get_ok(&format!("/Users/{user}")).await;
    assert!(
        user.get("groups").is_none(),
        "no membership from a refused create: {user}"
    );
}

#[tokio::test]
async fn strings_the_database_cannot_hold_are_400_not_500() {
    let app = spawn_app().await;
    let uid = app.create_user("keep@example.com").await;
    let before = stored_data(&app).await;
    let long: String = (0..10_000)
        .map(|i| char::from(b'a' + ((i * 7919 + i / 26) % 26) as u8))
        .collect();
    for body in [
        json!({"userName": "nul\u{0}byte@example.com"}),
        json!({"userName": "ok@example.com", "title": "nul\u{0}"}),
        json!({"userName": long}),
        json!({"userName": "ok@example.com", "externalId": long}),
        json!({"userName": "ok@example.com", "emails": [{"value": long, "primary": true}]}),
    ] {
        let res = app.post("/Users", &body).await;
        assert_scim_error(res, 400, Some("invalidValue")).await;
        let res = app.put(&format!("/Users/{uid}"), &body).await;
        assert_scim_error(res, 400, Some("invalidValue")).await;
    }
    for body in [
        json!({"displayName": long}),
        json!({"displayName": "g\u{0}"}),
    ] {
        let res = app.post("/Groups", &body).await;
        assert_scim_error(res, 400, Some("invalidValue")).await;
    }
    let res = app
        .get(&format!("/Users?filter={}", enc("userName eq \"a\u{0}b\"")))
        .await;
    assert_scim_error(res, 400, Some("invalidFilter")).await;
    let res = app
        .patch(
            &format!("/Users/{uid}"),
            &patch_op(json!([{"op": "replace", "path": "userName", "value": long}])),
        )
        .await;
    assert_scim_error(res, 400, Some("invalidValue")).await;
    assert_eq!(stored_data(&app).await, before);
    // At the bound, a userName is fine.
    assert_eq!(
        app.post("/Users", &json!({"userName": long[..1024]}))
            .await
            .status(),
        201
    );
}
