//! `/Users`: create, read, list, replace, patch, delete, `.search`, and the
//! media types a client may send (RFC 7644 §3.1, §3.3–§3.6).

use dirsync::config::ServerSettings;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{
    SCIM_JSON, assert_scim_error, header, ids, json, patch_op, spawn_app, spawn_app_with,
};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn full_user(user_name: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "userName": user_name,
        "externalId": "ext-1",
        "displayName": "Barbara Jensen",
        "title": "Tour Guide",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [{"value": user_name, "type": "work", "primary": true}],
        "phoneNumbers": [{"value": "555-555-8377", "type": "work"}],
        "active": true,
        ENTERPRISE: {"employeeNumber": "701984", "department": "Tour Operations"}
    })
}

fn rfc3339_ms(value: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(value.as_str().expect("a dateTime string"))
        .unwrap_or_else(|e| panic!("{value} is not RFC 3339: {e}"))
        .timestamp_millis()
}

#[tokio::test]
async fn post_user_is_201_with_location_meta_etag_and_scim_content_type() {
    let app = spawn_app().await;
    let res = app.post("/Users", &full_user("bjensen@example.com")).await;
    assert_eq!(res.status(), 201);
    assert!(header(&res, "content-type").starts_with(SCIM_JSON));
    let location = header(&res, "location");
    let etag = header(&res, "etag");
    let user = json(res).await;
    let id = user["id"].as_str().unwrap();
    uuid::Uuid::parse_str(id).expect("the server assigns a UUID id");

    assert_eq!(location, format!("{}/Users/{id}", app.base));
    assert!(location.starts_with("http://127.0.0.1:"), "{location}");
    let meta = &user["meta"];
    assert_eq!(meta["location"], json!(location));
    assert_eq!(meta["resourceType"], "User");
    assert_eq!(meta["version"], json!(etag));
    assert_eq!(etag, "W/\"1\"");
    assert_eq!(
        rfc3339_ms(&meta["created"]),
        rfc3339_ms(&meta["lastModified"])
    );
    let now = chrono::Utc::now().timestamp_millis();
    assert!(
        (now - rfc3339_ms(&meta["created"])).abs() < 60_000,
        "{meta}"
    );

    assert_eq!(user["userName"], "bjensen@example.com");
    assert_eq!(user["name"]["familyName"], "Jensen");
    assert_eq!(user["emails"][0]["value"], "bjensen@example.com");
    assert_eq!(user[ENTERPRISE]["employeeNumber"], "701984");
    assert_eq!(
        user["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE])
    );

    // What was answered is what is stored.
    let read = app.get_ok(&format!("/Users/{id}")).await;
    assert_eq!(read, user);
}

#[tokio::test]
async fn location_is_built_from_the_public_url() {
    let app = spawn_app_with(ServerSettings {
        public_url: Some("https://scim.example.com/tenant-a/".into()),
        ..ServerSettings::for_tests()
    })
    .await;
    let res = app.post("/Users", &full_user("pub@example.com")).await;
    assert_eq!(res.status(), 201);
    let location = header(&res, "location");
    let user = json(res).await;
    let id = user["id"].as_str().unwrap();
    let expected = format!("https://scim.example.com/tenant-a/scim/v2/Users/{id}");
    assert_eq!(location, expected);
    assert_eq!(user["meta"]["location"], json!(expected));
    let listed = app.get_ok("/Users").await;
    assert_eq!(listed["Resources"][0]["meta"]["location"], json!(expected));
}

#[tokio::test]
async fn get_user_by_id_returns_it_with_its_etag() {
    let app = spawn_app().await;
    let id = app.create_user("get@example.com").await;
    let res = app.get(&format!("/Users/{id}")).await;
    assert_eq!(res.status(), 200);
    assert!(header(&res, "content-type").starts_with(SCIM_JSON));
    let etag = header(&res, "etag");
    let user = json(res).await;
    assert_eq!(user["id"], json!(id));
    assert_eq!(user["userName"], "get@example.com");
    assert_eq!(user["meta"]["version"], json!(etag));
    assert_eq!(
        user["meta"]["location"],
        json!(format!("{}/Users/{id}", app.base))
    );
}

#[tokio::test]
async fn list_users_is_a_list_response_of_every_user() {
    let app = spawn_app().await;
    let empty = app.get_ok("/Users").await;
    assert_eq!(
        empty["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
    );
    assert_eq!(empty["totalResults"], 0);
    assert_eq!(empty["Resources"], json!([]));

    let a = app.create_user("a@example.com").await;
    let b = app.create_user("b@example.com").await;
    let res = app.get("/Users").await;
    assert!(header(&res, "content-type").starts_with(SCIM_JSON));
    let list = json(res).await;
    assert_eq!(list["totalResults"], 2);
    assert_eq!(list["itemsPerPage"], 2);
    assert_eq!(list["startIndex"], 1);
    let mut got = ids(&list);
    got.sort();
    let mut want = vec![a, b];
    want.sort();
    assert_eq!(got, want);
    assert_eq!(list["Resources"][0]["meta"]["resourceType"], "User");
}

#[tokio::test]
async fn put_replaces_the_whole_user_and_clears_omitted_attributes() {
    let app = spawn_app().await;
    let created = app
        .post_created("/Users", &full_user("put@example.com"))
        .await;
    let id = created["id"].as_str().unwrap();

    let res = app
        .put(
            &format!("/Users/{id}"),
            &json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "put@example.com",
                "displayName": "Babs"
            }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let etag = header(&res, "etag");
    let replaced = json(res).await;
    assert_eq!(replaced["displayName"], "Babs");
    for gone in [
        "externalId",
        "title",
        "name",
        "emails",
        "phoneNumbers",
        ENTERPRISE,
    ] {
        assert!(
            replaced.get(gone).is_none(),
            "{gone} survived PUT: {replaced}"
        );
    }
    assert_eq!(
        replaced["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:User"])
    );
    assert_eq!(replaced["meta"]["version"], "W/\"2\"");
    assert_eq!(etag, "W/\"2\"");
    assert_eq!(replaced["meta"]["created"], created["meta"]["created"]);
    assert!(
        rfc3339_ms(&replaced["meta"]["lastModified"]) >= rfc3339_ms(&created["meta"]["created"])
    );

    let stored = app.get_ok(&format!("/Users/{id}")).await;
    assert_eq!(stored, replaced);
    // The cleared externalId no longer finds the user.
    let found = app.filter("/Users", r#"externalId eq "ext-1""#).await;
    assert_eq!(found["totalResults"], 0);
}

#[tokio::test]
async fn put_of_the_read_representation_with_its_id_and_meta_is_accepted() {
    // X6: testers PUT the representation they were given back, echoed id and meta.
    let app = spawn_app().await;
    let created = app
        .post_created("/Users", &full_user("echo@example.com"))
        .await;
    let id = created["id"].as_str().unwrap();
    let mut body = created.clone();
    body["title"] = json!("Chief Guide");
    body["meta"]["version"] = json!("W/\"99\"");
    body["meta"]["created"] = json!("2001-01-01T00:00:00Z");
    let res = app.put(&format!("/Users/{id}"), &body).await;
    assert_eq!(res.status(), 200);
    let replaced = json(res).await;
    assert_eq!(replaced["id"], json!(id));
    assert_eq!(replaced["title"], "Chief Guide");
    assert_eq!(replaced["meta"]["created"], created["meta"]["created"]);
    assert_eq!(replaced["meta"]["version"], "W/\"2\"");
    assert_eq!(replaced["name"], created["name"]);
}

#[tokio::test]
async fn put_with_another_id_in_the_body_is_400_mutability_and_changes_nothing() {
    let app = spawn_app().await;
    let created = app
        .post_created("/Users", &full_user("id@example.com"))
        .await;
    let id = created["id"].as_str().unwrap();
    let mut body = full_user("id@example.com");
    body["id"] = json!(uuid::Uuid::new_v4().to_string());
    body["title"] = json!("Changed");
    let res = app.put(&format!("/Users/{id}"), &body).await;
    assert_scim_error(res, 400, Some("mutability")).await;
    assert_eq!(app.get_ok(&format!("/Users/{id}")).await, created);
}

#[tokio::test]
async fn patch_answers_200_with_the_changed_resource() {
    let app = spawn_app().await;
    let id = app.create_user("patch@example.com").await;
    let res = app
        .patch(
            &format!("/Users/{id}"),
            &patch_op(json!([{"op": "replace", "path": "title", "value": "Lead"}])),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert!(header(&res, "content-type").starts_with(SCIM_JSON));
    assert_eq!(header(&res, "etag"), "W/\"2\"");
    let patched = json(res).await;
    assert_eq!(patched["title"], "Lead");
    assert_eq!(patched["userName"], "patch@example.com");
    assert_eq!(app.get_ok(&format!("/Users/{id}")).await, patched);
}

#[tokio::test]
async fn delete_is_204_then_the_user_is_gone_everywhere() {
    let app = spawn_app().await;
    let id = app.create_user("del@example.com").await;
    let keep = app.create_user("keep@example.com").await;
    let group = app.create_group("Team", &[&id, &keep]).await;

    let res = app.delete(&format!("/Users/{id}")).await;
    assert_eq!(res.status(), 204);
    assert!(res.text().await.unwrap().is_empty());

    assert_scim_error(app.get(&format!("/Users/{id}")).await, 404, None).await;
    assert_scim_error(app.delete(&format!("/Users/{id}")).await, 404, None).await;
    assert_eq!(ids(&app.get_ok("/Users").await), vec![keep.clone()]);
    let group = app.get_ok(&format!("/Groups/{group}")).await;
    assert_eq!(
        group["members"],
        json!([{
            "value": keep,
            "$ref": format!("{}/Users/{keep}", app.base),
            "type": "User"
        }])
    );
    // The userName is free again.
    app.create_user("del@example.com").await;
}

#[tokio::test]
async fn users_search_takes_a_search_request_body() {
    let app = spawn_app().await;
    let a = app.create_user("alice@example.com").await;
    app.create_user("bob@example.com").await;
    let res = app
        .post(
            "/Users/.search",
            &json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                "filter": "userName sw \"ALICE\"",
                "attributes": ["userName"],
                "startIndex": 1,
                "count": 10
            }),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert!(header(&res, "content-type").starts_with(SCIM_JSON));
    let list = json(res).await;
    assert_eq!(list["totalResults"], 1);
    assert_eq!(
        list["Resources"],
        json!([{
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": a,
            "userName": "alice@example.com"
        }])
    );
    // A search never creates anything.
    assert_eq!(app.total("/Users").await, 2);
}

#[tokio::test]
async fn users_search_with_an_empty_request_lists_everyone() {
    let app = spawn_app().await;
    app.create_user("a@example.com").await;
    app.create_user("b@example.com").await;
    let res = app.post("/Users/.search", &json!({})).await;
    assert_eq!(res.status(), 200);
    assert_eq!(json(res).await["totalResults"], 2);
}

#[tokio::test]
async fn get_on_users_search_is_405() {
    let app = spawn_app().await;
    assert_scim_error(app.get("/Users/.search").await, 405, None).await;
}

#[tokio::test]
async fn root_search_finds_users_and_groups() {
    let app = spawn_app().await;
    let mut body = full_user("rep@example.com");
    body["externalId"] = json!("shared-ext");
    let user = app.post_created("/Users", &body).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = app.create_user("other@example.com").await;
    let group = app
        .post_created(
            "/Groups",
            &json!({"displayName": "Sales", "externalId": "shared-ext", "members": [{"value": user}]}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .post(
            "/.search",
            &json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                "filter": "externalId eq \"shared-ext\""
            }),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert!(header(&res, "content-type").starts_with(SCIM_JSON));
    let list = json(res).await;
    assert_eq!(list["totalResults"], 2, "{list}");
    assert_eq!(ids(&list), vec![user.clone(), group.clone()]);
    let types: Vec<&str> = list["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["meta"]["resourceType"].as_str().unwrap())
        .collect();
    assert_eq!(types, vec!["User", "Group"]);

    // An attribute only users have finds only users.
    let users_only = json(
        app.post(
            "/.search",
            &json!({"filter": "userName eq \"other@example.com\""}),
        )
        .await,
    )
    .await;
    assert_eq!(ids(&users_only), vec![other.clone()]);

    // Without a filter: everything, one window across both types.
    let all = json(
        app.post("/.search", &json!({"count": 2, "startIndex": 2}))
            .await,
    )
    .await;
    assert_eq!(all["totalResults"], 3);
    assert_eq!(all["startIndex"], 2);
    assert_eq!(all["itemsPerPage"], 2);
    assert_eq!(all["Resources"][1]["id"], json!(group));

    // A filter neither type understands is the client's error.
    let res = app
        .post("/.search", &json!({"filter": "nosuch eq \"x\""}))
        .await;
    assert_scim_error(res, 400, Some("invalidFilter")).await;
}

#[tokio::test]
async fn application_json_with_charset_is_accepted_on_every_write() {
    let app = spawn_app().await;
    let send = |method: Method, path: String, body: Value| {
        app.request(method, &path)
            .header("content-type", "application/json; charset=utf-8")
            .body(body.to_string())
            .send()
    };
    let res = send(Method::POST, "/Users".into(), full_user("cs@example.com"))
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let id = json(res).await["id"].as_str().unwrap().to_owned();
    let mut body = full_user("cs@example.com");
    body["title"] = json!("Put");
    let res = send(Method::PUT, format!("/Users/{id}"), body)
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = send(
        Method::PATCH,
        format!("/Users/{id}"),
        patch_op(json!([{"op": "replace", "path": "title", "value": "Patched"}])),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    let res = send(
        Method::POST,
        "/Users/.search".into(),
        json!({"filter": "title eq \"Patched\""}),
    )
    .await
    .unwrap();
    assert_eq!(json(res).await["totalResults"], 1);
    let res = app
        .request(Method::POST, "/Users")
        .header("content-type", "Application/SCIM+JSON; charset=UTF-8")
        .body(full_user("cs2@example.com").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
}

#[tokio::test]
async fn other_content_types_are_415_and_nothing_is_written() {
    let app = spawn_app().await;
    let id = app.create_user("media@example.com").await;
    let before = app.get_ok(&format!("/Users/{id}")).await;
    for content_type in [
        "text/plain",
        "application/xml",
        "application/x-www-form-urlencoded",
    ] {
        let body = full_user("other@example.com").to_string();
        let res = app
            .request(Method::POST, "/Users")
            .header("content-type", content_type)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_scim_error(res, 415, None).await;
        let res = app
            .request(Method::PUT, &format!("/Users/{id}"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_scim_error(res, 415, None).await;
        let res = app
            .request(Method::PATCH, &format!("/Users/{id}"))
            .header("content-type", content_type)
            .body(patch_op(json!([{"op": "replace", "path": "title", "value": "x"}])).to_string())
            .send()
            .await
            .unwrap();
        assert_scim_error(res, 415, None).await;
    }
    assert_eq!(app.total("/Users").await, 1);
    assert_eq!(app.get_ok(&format!("/Users/{id}")).await, before);
}

#[tokio::test]
async fn the_server_assigns_the_id_and_ignores_client_id_and_meta_on_create() {
    // L5, E13: templates send `"id": null` or an id of their own, and `meta`.
    let app = spawn_app().await;
    let theirs = uuid::Uuid::new_v4().to_string();
    let created = app
        .post_created(
            "/Users",
            &json!({"id": theirs, "userName": "own@example.com",
                    "meta": {"resourceType": "User", "created": "2001-01-01T00:00:00Z"}}),
        )
        .await;
    assert_ne!(created["id"], json!(theirs));
    assert_ne!(created["meta"]["created"], "2001-01-01T00:00:00Z");
    assert_scim_error(app.get(&format!("/Users/{theirs}")).await, 404, None).await;
    let created = app
        .post_created(
            "/Users",
            &json!({"id": null, "userName": "null@example.com"}),
        )
        .await;
    assert!(created["id"].is_string());
}

#[tokio::test]
async fn ids_are_found_in_any_case_and_trailing_slashes_are_ignored() {
    // M2: Microsoft's collection sends `/Users/?filter=…`.
    let app = spawn_app().await;
    let id = app.create_user("slash@example.com").await;
    let upper = app.get_ok(&format!("/Users/{}", id.to_uppercase())).await;
    assert_eq!(upper["id"], json!(id));
    let list = app
        .get_ok("/Users/?filter=UserName+eq+%22slash%40example.com%22")
        .await;
    assert_eq!(ids(&list), vec![id.clone()]);
    let one = app.get_ok(&format!("/Users/{id}/")).await;
    assert_eq!(one["id"], json!(id));
}

#[tokio::test]
async fn a_lone_email_object_is_stored_as_a_list() {
    // L3: OneLogin sends `emails` as one object.
    let app = spawn_app().await;
    let created = app
        .post_created(
            "/Users",
            &json!({"userName": "ol@example.com",
                    "emails": {"value": "ol@example.com", "type": "work", "primary": "true"}}),
        )
        .await;
    assert_eq!(
        created["emails"],
        json!([{"value": "ol@example.com", "type": "work", "primary": true}])
    );
    let found = app
        .filter("/Users", r#"emails.value eq "ol@example.com""#)
        .await;
    assert_eq!(found["totalResults"], 1);
}

#[tokio::test]
async fn a_user_created_without_active_is_shown_active_as_filters_see_it() {
    // RFC 7643 §4.1.1 leaves the default to the provider; dirsync's default is
    // active, and the representation says so rather than hiding it.
    let app = spawn_app().await;
    let created = app
        .post_created("/Users", &json!({"userName": "quiet@example.com"}))
        .await;
    assert_eq!(created["active"], true);
    let found = app.get_ok("/Users?filter=active%20eq%20true").await;
    assert_eq!(found["totalResults"], 1);
    assert_eq!(found["Resources"][0]["active"], true);
}

#[tokio::test]
async fn removing_active_by_patch_is_honoured() {
    // The create-time default must not come back after an explicit removal
    // (RFC 7644 §3.5.2.2; scim2-tester's check_remove_attribute).
    let app = spawn_app().await;
    let created = app
        .post_created(
            "/Users",
            &json!({"userName": "r@example.com", "active": true}),
        )
        .await;
    let id = created["id"].as_str().unwrap();
    let res = app
        .patch(
            &format!("/Users/{id}"),
            &json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "remove", "path": "active"}]
            }),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert!(json(res).await.get("active").is_none());
    assert!(
        app.get_ok(&format!("/Users/{id}"))
            .await
            .get("active")
            .is_none()
    );
}
