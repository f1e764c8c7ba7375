//! `/Groups`: create, read, list, replace, patch, delete, `.search`, and the
//! media types a client may send (RFC 7644 §3.1, §3.3–§3.6).

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{
    SCIM_JSON, TestApp, assert_scim_error, header, ids, json, patch_op, spawn_app,
};

const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// A user member as read back when its client sent no `display` (RFC 7643
/// §2.4: `display` is immutable, the client's, never computed by the server).
fn member(app: &TestApp, id: &str) -> Value {
    json!({
        "value": id,
        "$ref": format!("{}/Users/{id}", app.base),
        "type": "User"
    })
}

#[tokio::test]
async fn post_group_is_201_with_location_meta_etag_and_members() {
    let app = spawn_app().await;
    let ann = app.create_user("ann@example.com").await;
    let bob = app.create_user("bob@example.com").await;
    let res = app
        .post(
            "/Groups",
            &json!({
                "schemas": [GROUP],
                "displayName": "Engineering",
                "externalId": "eng-1",
                "members": [{"value": ann}, {"value": bob, "type": "User"}]
            }),
        )
        .await;
    assert_eq!(res.status(), 201);
    assert!(header(&res, "content-type").starts_with(SCIM_JSON));
    let location = header(&res, "location");
    let etag = header(&res, "etag");
    let group = json(res).await;
    let id = group["id"].as_str().unwrap();
    uuid::Uuid::parse_str(id).expect("a UUID id");
    assert_eq!(location, format!("{}/Groups/{id}", app.base));
    assert_eq!(group["meta"]["location"], json!(location));
    assert_eq!(group["meta"]["resourceType"], "Group");
    assert_eq!(group["meta"]["version"], json!(etag));
    assert_eq!(etag, "W/\"1\"");
    assert_eq!(group["meta"]["created"], group["meta"]["lastModified"]);
    assert_eq!(group["schemas"], json!([GROUP]));
    assert_eq!(group["displayName"], "Engineering");
    assert_eq!(group["externalId"], "eng-1");
    let mut members = group["members"].as_array().unwrap().clone();
    members.sort_by_key(|m| m["value"].as_str().unwrap().to_owned());
    let mut want = vec![member(&app, &ann), member(&app, &bob)];
    want.sort_by_key(|m| m["value"].as_str().unwrap().to_owned());
    assert_eq!(members, want);
    assert_eq!(app.get_ok(&format!("/Groups/{id}")).await, group);

    // The users see the group.
    let user = app.get_ok(&format!("/Users/{ann}")).await;
    assert_eq!(user["groups"][0]["value"], json!(id));
    assert_eq!(user["groups"][0]["display"], "Engineering");
}

#[tokio::test]
async fn get_group_by_id_returns_it_with_its_etag() {
    let app = spawn_app().await;
    let id = app.create_group("Readers", &[]).await;
    let res = app.get(&format!("/Groups/{id}")).await;
    assert_eq!(res.status(), 200);
    assert!(header(&res, "content-type").starts_with(SCIM_JSON));
    let etag = header(&res, "etag");
    let group = json(res).await;
    assert_eq!(group["id"], json!(id));
    assert_eq!(group["displayName"], "Readers");
    assert_eq!(group["meta"]["version"], json!(etag));
    assert!(group.get("members").is_none(), "{group}");
}

#[tokio::test]
async fn list_groups_is_a_list_response_of_every_group() {
    let app = spawn_app().await;
    let empty = app.get_ok("/Groups").await;
    assert_eq!(empty["totalResults"], 0);
    assert_eq!(empty["Resources"], json!([]));
    let a = app.create_group("A", &[]).await;
    let b = app.create_group("B", &[]).await;
    let list = app.get_ok("/Groups").await;
    assert_eq!(
        list["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
    );
    assert_eq!(list["totalResults"], 2);
    assert_eq!(list["itemsPerPage"], 2);
    assert_eq!(list["startIndex"], 1);
    let mut got = ids(&list);
    got.sort();
    let mut want = vec![a, b];
    want.sort();
    assert_eq!(got, want);
}

#[tokio::test]
async fn put_replaces_name_external_id_and_the_whole_member_list() {
    let app = spawn_app().await;
    let ann = app.create_user("ann@example.com").await;
    let bob = app.create_user("bob@example.com").await;
    let created = app
        .post_created(
            "/Groups",
            &json!({"displayName": "Old", "externalId": "x-1", "members": [{"value": ann}]}),
        )
        .await;
    let id = created["id"].as_str().unwrap();

    let res = app
        .put(
            &format!("/Groups/{id}"),
            &json!({"schemas": [GROUP], "displayName": "New", "members": [{"value": bob}]}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "etag"), "W/\"2\"");
    let replaced = json(res).await;
    assert_eq!(replaced["displayName"], "New");
    assert!(replaced.get("externalId").is_none(), "{replaced}");
    assert_eq!(replaced["members"], json!([member(&app, &bob)]));
    assert_eq!(replaced["meta"]["created"], created["meta"]["created"]);
    assert_eq!(app.get_ok(&format!("/Groups/{id}")).await, replaced);

    // A PUT without members empties the group.
    let res = app
        .put(&format!("/Groups/{id}"), &json!({"displayName": "New"}))
        .await;
    assert_eq!(res.status(), 200);
    let emptied = json(res).await;
    assert!(emptied.get("members").is_none(), "{emptied}");
    let user = app.get_ok(&format!("/Users/{bob}")).await;
    assert!(user.get("groups").is_none(), "{user}");
}

#[tokio::test]
async fn put_of_the_read_representation_with_id_meta_and_members_is_accepted() {
    let app = spawn_app().await;
    let ann = app.create_user("ann@example.com").await;
    let id = app.create_group("Echo", &[&ann]).await;
    let mut body = app.get_ok(&format!("/Groups/{id}")).await;
    body["displayName"] = json!("Echoed");
    let res = app.put(&format!("/Groups/{id}"), &body).await;
    assert_eq!(res.status(), 200);
    let replaced = json(res).await;
    assert_eq!(replaced["displayName"], "Echoed");
    assert_eq!(replaced["members"], json!([member(&app, &ann)]));
    assert_eq!(replaced["meta"]["version"], "W/\"2\"");
}

#[tokio::test]
async fn put_with_another_id_in_the_body_is_400_mutability_and_changes_nothing() {
    let app = spawn_app().await;
    let ann = app.create_user("ann@example.com").await;
    let id = app.create_group("Fixed", &[&ann]).await;
    let before = app.get_ok(&format!("/Groups/{id}")).await;
    let res = app
        .put(
            &format!("/Groups/{id}"),
            &json!({"id": uuid::Uuid::new_v4().to_string(), "displayName": "Moved", "members": []}),
        )
        .await;
    assert_scim_error(res, 400, Some("mutability")).await;
    assert_eq!(app.get_ok(&format!("/Groups/{id}")).await, before);
}

#[tokio::test]
async fn patch_answers_200_with_the_group() {
    let app = spawn_app().await;
    let ann = app.create_user("ann@example.com").await;
    let id = app.create_group("Patchable", &[]).await;
    let res = app
        .patch(
            &format!("/Groups/{id}"),
            &patch_op(json!([
                {"op": "replace", "path": "displayName", "value": "Patched"},
                {"op": "add", "path": "members", "value": [{"value": ann}]}
            ])),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert!(header(&res, "content-type").starts_with(SCIM_JSON));
    assert_eq!(header(&res, "etag"), "W/\"2\"");
    let group = json(res).await;
    assert_eq!(group["displayName"], "Patched");
    assert_eq!(group["members"], json!([member(&app, &ann)]));
    assert_eq!(app.get_ok(&format!("/Groups/{id}")).await, group);
}

#[tokio::test]
async fn delete_is_204_then_the_group_is_gone_everywhere() {
    let app = spawn_app().await;
    let ann = app.create_user("ann@example.com").await;
    let id = app.create_group("Doomed", &[&ann]).await;
    let keep = app.create_group("Kept", &[]).await;
    let res = app.delete(&format!("/Groups/{id}")).await;
    assert_eq!(res.status(), 204);
    assert!(res.text().await.unwrap().is_empty());
    assert_scim_error(app.get(&format!("/Groups/{id}")).await, 404, None).await;
    assert_scim_error(app.delete(&format!("/Groups/{id}")).await, 404, None).await;
    assert_eq!(ids(&app.get_ok("/Groups").await), vec![keep]);
    let user = app.get_ok(&format!("/Users/{ann}")).await;
    assert!(user.get("groups").is_none(), "{user}");
    // The name is free again.
    app.create_group("Doomed", &[]).await;
}

#[tokio::test]
async fn groups_search_takes_a_search_request_body() {
    let app = spawn_app().await;
    let sales = app.create_group("Sales", &[]).await;
    app.create_group("Support", &[]).await;
    let res = app
        .post(
            "/Groups/.search",
            &json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                "filter": "displayName eq \"sales\"",
                "excludedAttributes": "members"
            }),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert!(header(&res, "content-type").starts_with(SCIM_JSON));
    let list = json(res).await;
    assert_eq!(list["totalResults"], 1);
    assert_eq!(ids(&list), vec![sales]);
    assert_eq!(app.total("/Groups").await, 2);
}

#[tokio::test]
async fn application_json_with_charset_is_accepted_on_group_writes() {
    let app = spawn_app().await;
    let send = |method: Method, path: String, body: Value| {
        app.request(method, &path)
            .header("content-type", "application/json; charset=utf-8")
            .body(body.to_string())
            .send()
    };
    let res = send(Method::POST, "/Groups".into(), json!({"displayName": "G"}))
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let id = json(res).await["id"].as_str().unwrap().to_owned();
    let res = send(
        Method::PUT,
        format!("/Groups/{id}"),
        json!({"displayName": "H"}),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    let res = send(
        Method::PATCH,
        format!("/Groups/{id}"),
        patch_op(json!([{"op": "replace", "path": "displayName", "value": "I"}])),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    let res = send(
        Method::POST,
        "/Groups/.search".into(),
        json!({"filter": "displayName eq \"I\""}),
    )
    .await
    .unwrap();
    assert_eq!(json(res).await["totalResults"], 1);
}

#[tokio::test]
async fn other_content_types_on_group_writes_are_415_and_nothing_is_written() {
    let app = spawn_app().await;
    let id = app.create_group("Stable", &[]).await;
    let before = app.get_ok(&format!("/Groups/{id}")).await;
    for (method, path, body) in [
        (
            Method::POST,
            "/Groups".to_owned(),
            json!({"displayName": "New"}),
        ),
        (
            Method::PUT,
            format!("/Groups/{id}"),
            json!({"displayName": "New"}),
        ),
        (
            Method::PATCH,
            format!("/Groups/{id}"),
            patch_op(json!([{"op": "replace", "path": "displayName", "value": "New"}])),
        ),
        (Method::POST, "/Groups/.search".to_owned(), json!({})),
    ] {
        let res = app
            .request(method, &path)
            .header("content-type", "text/plain")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_scim_error(res, 415, None).await;
    }
    assert_eq!(app.total("/Groups").await, 1);
    assert_eq!(app.get_ok(&format!("/Groups/{id}")).await, before);
}

#[tokio::test]
async fn a_member_display_sent_on_add_is_kept_and_microsofts_display_name_is_its_alias() {
    // RFC 7643 §2.4: a multi-valued `display` is immutable, so the client's
    // value is what is returned. Microsoft's reference test
    // (docs/vendor-quirks.md, MS-PM step 24) spells it `displayName` and
    // expects it back.
    let app = spawn_app().await;
    let ann = app.create_user("ann@example.com").await;
    let bob = app.create_user("bob@example.com").await;
    let group = app.create_group("G", &[]).await;
    let res = app
        .patch(
            &format!("/Groups/{group}"),
            &json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "add", "path": "members", "value": [
                    {"value": ann, "display": "Ann A."},
                    {"value": bob, "displayName": "new User"}
                ]}]
            }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let read = app.get_ok(&format!("/Groups/{group}")).await;
    let mut members = read["members"].as_array().unwrap().clone();
    members.sort_by_key(|m| m["value"].as_str().unwrap().to_owned());
    let mut want = vec![
        json!({"value": ann, "$ref": format!("{}/Users/{ann}", app.base), "display": "Ann A.", "type": "User"}),
        json!({"value": bob, "$ref": format!("{}/Users/{bob}", app.base), "display": "new User", "type": "User"}),
    ];
    want.sort_by_key(|m| m["value"].as_str().unwrap().to_owned());
    assert_eq!(members, want);
}

/// A PATCH that renames a group and removes a user who is not in it tells
/// the application of the rename alone: the engine hears only of
/// memberships the mirror changed.
#[tokio::test]
async fn removing_a_stranger_with_a_rename_tells_only_of_the_rename() {
    let app = spawn_app().await;
    let member = app.create_user("member@example.com").await;
    let stranger = app.create_user("stranger@example.com").await;
    let gid = app.create_group("Before", &[&member]).await;
    let start = app.last_seq().await;
    let res = app
        .patch(
            &format!("/Groups/{gid}"),
            &patch_op(serde_json::json!([
                {"op": "replace", "path": "displayName", "value": "After"},
                {"op": "remove", "path": format!("members[value eq \"{stranger}\"]")},
                {"op": "add", "path": "members", "value": [{"value": member}]}
            ])),
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    assert_eq!(app.event_types_after(start).await, vec!["group.updated"]);
}
