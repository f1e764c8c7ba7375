//! PATCH (RFC 7644 §3.5.2) as clients send it: add/replace/remove with and
//! without paths, value filters, sub-attributes, extension URNs, several
//! operations applied atomically, vendor forms (docs/vendor-quirks.md,
//! E1–E11), and group membership changes.

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_scim_error, header, json, patch_op, spawn_app};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

async fn user(app: &TestApp) -> String {
    app.post_created(
        "/Users",
        &json!({
            "userName": "bjensen@example.com",
            "displayName": "Babs",
            "title": "Guide",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@home.example", "type": "home"}
            ],
            "active": true,
            ENTERPRISE: {"employeeNumber": "42", "department": "Tours"}
        }),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// PATCH and assert 200; returns the answered resource after checking it is
/// what a GET now returns, with `ETag` = `meta.version`.
async fn ok(app: &TestApp, path: &str, operations: Value) -> Value {
    let res = app.patch(path, &patch_op(operations.clone())).await;
    let status = res.status();
    let etag = res
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = json(res).await;
    assert_eq!(status, 200, "PATCH {operations}: {body}");
    assert_eq!(etag.as_deref(), body["meta"]["version"].as_str());
    let read = app.get_ok(path).await;
    assert_eq!(read, body, "the answer is what was stored");
    body
}

fn emails(user: &Value) -> Value {
    user["emails"].clone()
}

#[tokio::test]
async fn add_with_a_path_sets_simple_values_and_appends_to_lists() {
    let app = spawn_app().await;
    let id = user(&app).await;
    let path = format!("/Users/{id}");
    let u = ok(
        &app,
        &path,
        json!([
            {"op": "add", "path": "nickName", "value": "B"},
            {"op": "add", "path": "emails", "value": [{"value": "b@other.example", "type": "other"}]},
            {"op": "add", "path": "phoneNumbers", "value": [{"value": "555-1234", "type": "work"}]}
        ]),
    )
    .await;
    assert_eq!(u["nickName"], "B");
    assert_eq!(
        emails(&u),
        json!([
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@home.example", "type": "home"},
            {"value": "b@other.example", "type": "other"}
        ])
    );
    assert_eq!(
        u["phoneNumbers"],
        json!([{"value": "555-1234", "type": "work"}])
    );
    assert_eq!(u["meta"]["version"], "W/\"2\"");
    // Adding an element that is already there does not repeat it.
    let again = ok(
        &app,
        &path,
        json!([{"op": "add", "path": "emails", "value": [{"value": "b@other.example", "type": "other"}]}]),
    )
    .await;
    assert_eq!(again["emails"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn add_without_a_path_merges_the_value_object() {
    let app = spawn_app().await;
    let id = user(&app).await;
    let u = ok(
        &app,
        &format!("/Users/{id}"),
        json!([{"op": "add", "value": {
            "nickName": "Babs",
            "name": {"middleName": "Jane"},
            "emails": [{"value": "x@y.example", "type": "other"}]
        }}]),
    )
    .await;
    assert_eq!(u["nickName"], "Babs");
    // RFC 7644 §3.5.2.1: a complex value merges its sub-attributes.
    assert_eq!(
        u["name"],
        json!({"givenName": "Barbara", "familyName": "Jensen", "middleName": "Jane"})
    );
    assert_eq!(u["emails"].as_array().unwrap().len(), 3);
    assert_eq!(u["title"], "Guide");
}

#[tokio::test]
async fn replace_with_a_path_sets_values_and_replaces_lists() {
    let app = spawn_app().await;
    let id = user(&app).await;
    let u = ok(
        &app,
        &format!("/Users/{id}"),
        json!([
            {"op": "replace", "path": "title", "value": "Lead"},
            {"op": "replace", "path": "name.familyName", "value": "Smith"},
            {"op": "replace", "path": "emails", "value": [{"value": "only@example.com", "type": "work", "primary": true}]}
        ]),
    )
    .await;
    assert_eq!(u["title"], "Lead");
    assert_eq!(
        u["name"],
        json!({"givenName": "Barbara", "familyName": "Smith"})
    );
    assert_eq!(
        emails(&u),
        json!([{"value": "only@example.com", "type": "work", "primary": true}])
    );
    // The stored primary email follows (filters read it).
    let found = app
        .filter("/Users", r#"emails.value eq "only@example.com""#)
        .await;
    assert_eq!(found["totalResults"], 1);
}

#[tokio::test]
async fn replace_without_a_path_takes_dotted_and_urn_keys() {
    // E4: Entra's path-less replace whose keys are paths.
    let app = spawn_app().await;
    let id = user(&app).await;
    let u = ok(
        &app,
        &format!("/Users/{id}"),
        json!([{"op": "replace", "value": {
            "displayName": "Bjfe",
            "name.givenName": "Kkom",
            "name.familyName": "Unua",
            format!("{ENTERPRISE}:employeeNumber"): "Aklq",
            "active": "False"
        }}]),
    )
    .await;
    assert_eq!(u["displayName"], "Bjfe");
    assert_eq!(
        u["name"],
        json!({"givenName": "Kkom", "familyName": "Unua"})
    );
    assert_eq!(
        u[ENTERPRISE],
        json!({"employeeNumber": "Aklq", "department": "Tours"})
    );
    assert_eq!(u["active"], false);
    assert!(
        u.get("name.givenName").is_none(),
        "no literal dotted attribute: {u}"
    );
    let text = u.to_string();
    assert!(!text.contains("\"name.familyName\""), "{text}");
}

#[tokio::test]
async fn remove_with_a_path_clears_attributes_sub_attributes_and_elements() {
    let app = spawn_app().await;
    let id = user(&app).await;
    let u = ok(
        &app,
        &format!("/Users/{id}"),
        json!([
            {"op": "remove", "path": "title"},
            {"op": "remove", "path": "name.givenName"},
            {"op": "remove", "path": "emails[type eq \"home\"]"},
            {"op": "remove", "path": format!("{ENTERPRISE}:department")}
        ]),
    )
    .await;
    assert!(u.get("title").is_none());
    assert_eq!(u["name"], json!({"familyName": "Jensen"}));
    assert_eq!(
        emails(&u),
        json!([{"value": "bjensen@example.com", "type": "work", "primary": true}])
    );
    assert_eq!(u[ENTERPRISE], json!({"employeeNumber": "42"}));
    // Removing what is absent succeeds and changes nothing.
    let same = ok(
        &app,
        &format!("/Users/{id}"),
        json!([{"op": "remove", "path": "title"}]),
    )
    .await;
    assert_eq!(same["meta"]["version"], u["meta"]["version"]);
    // Removing the whole extension drops it from schemas.
    let u = ok(
        &app,
        &format!("/Users/{id}"),
        json!([{"op": "remove", "path": ENTERPRISE}]),
    )
    .await;
    assert!(u.get(ENTERPRISE).is_none());
    assert_eq!(
        u["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:User"])
    );
}

#[tokio::test]
async fn a_value_filter_path_updates_the_matching_element_in_place() {
    // E8: Entra's multi-valued update.
    let app = spawn_app().await;
    let id = user(&app).await;
    let u = ok(
        &app,
        &format!("/Users/{id}"),
        json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "new@example.com"}]),
    )
    .await;
    assert_eq!(
        emails(&u),
        json!([
            {"value": "new@example.com", "type": "work", "primary": true},
            {"value": "babs@home.example", "type": "home"}
        ])
    );
    let found = app
        .filter(
            "/Users",
            r#"emails[type eq "work"].value eq "new@example.com""#,
        )
        .await;
    assert_eq!(found["totalResults"], 1);
}

#[tokio::test]
async fn a_value_filter_path_that_matches_nothing_creates_the_element() {
    // E9: Entra expects the work address to be created.
    let app = spawn_app().await;
    let id = app.create_user("plain@example.com").await;
    let u = ok(
        &app,
        &format!("/Users/{id}"),
        json!([
            {"op": "Replace", "path": "addresses[type eq \"work\"].formatted", "value": "18/2111"},
            {"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "555-0000"}
        ]),
    )
    .await;
    assert_eq!(
        u["addresses"],
        json!([{"type": "work", "formatted": "18/2111"}])
    );
    assert_eq!(
        u["phoneNumbers"],
        json!([{"type": "mobile", "value": "555-0000"}])
    );
}

#[tokio::test]
async fn the_manager_is_set_by_urn_path_in_each_shape_and_cleared_by_empty() {
    // E10: three shapes of the same manager.
    let app = spawn_app().await;
    let boss = app.create_user("boss@example.com").await;
    let other = app.create_user("other@example.com").await;
    let id = user(&app).await;
    let path = format!("/Users/{id}");
    let u = ok(
        &app,
        &path,
        json!([{"op": "Add", "path": format!("{ENTERPRISE}:manager"), "value": boss}]),
    )
    .await;
    assert_eq!(u[ENTERPRISE]["manager"]["value"], json!(boss));
    let u = ok(
        &app,
        &path,
        json!([{"op": "replace", "path": "manager", "value": [{"$ref": format!("{}/Users/{other}", app.base), "value": other}]}]),
    )
    .await;
    assert_eq!(u[ENTERPRISE]["manager"]["value"], json!(other));
    let u = ok(
        &app,
        &path,
        json!([{"op": "replace", "path": format!("{ENTERPRISE}.manager"), "value": {"value": boss}}]),
    )
    .await;
    assert_eq!(u[ENTERPRISE]["manager"], json!({"value": boss}));
    let found = app
        .filter(
            "/Users",
            &format!(r#"{ENTERPRISE}:manager.value eq "{boss}""#),
        )
        .await;
    assert_eq!(found["totalResults"], 1);
    let u = ok(
        &app,
        &path,
        json!([{"op": "replace", "path": format!("{ENTERPRISE}:manager"), "value": ""}]),
    )
    .await;
    assert!(u[ENTERPRISE].get("manager").is_none(), "{u}");
    assert_eq!(u[ENTERPRISE]["department"], "Tours");
}

#[tokio::test]
async fn extension_attributes_patch_by_urn_path() {
    let app = spawn_app().await;
    let id = app.create_user("plain@example.com").await;
    let u = ok(
        &app,
        &format!("/Users/{id}"),
        json!([
            {"op": "add", "path": format!("{ENTERPRISE}:costCenter"), "value": "CC-1"},
            {"op": "add", "path": ENTERPRISE, "value": {"division": "North"}}
        ]),
    )
    .await;
    assert_eq!(
        u[ENTERPRISE],
        json!({"costCenter": "CC-1", "division": "North"})
    );
    assert_eq!(
        u["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE])
    );
}

#[tokio::test]
async fn operations_apply_in_order() {
    let app = spawn_app().await;
    let id = user(&app).await;
    let u = ok(
        &app,
        &format!("/Users/{id}"),
        json!([
            {"op": "replace", "path": "title", "value": "First"},
            {"op": "remove", "path": "title"},
            {"op": "add", "path": "title", "value": "Third"},
            {"op": "replace", "path": "nickName", "value": "x"},
            {"op": "replace", "path": "nickName", "value": "y"}
        ]),
    )
    .await;
    assert_eq!(u["title"], "Third");
    assert_eq!(u["nickName"], "y");
    // One request, one new version.
    assert_eq!(u["meta"]["version"], "W/\"2\"");
}

#[tokio::test]
async fn a_failing_operation_leaves_the_user_unchanged() {
    let app = spawn_app().await;
    let id = user(&app).await;
    let path = format!("/Users/{id}");
    let before = app.get_ok(&path).await;
    for third in [
        json!({"op": "replace", "path": "active", "value": "maybe"}),
        json!({"op": "remove", "path": "userName"}),
        json!({"op": "replace", "path": "emails", "value": 7}),
        json!({"op": "replace", "path": "emails[type eq \"work\"]", "value": [{"value": "a"}, {"value": "b"}]}),
    ] {
        let res = app
            .patch(
                &path,
                &patch_op(json!([
                    {"op": "replace", "path": "title", "value": "Changed"},
                    {"op": "add", "path": "nickName", "value": "Nick"},
                    third
                ])),
            )
            .await;
        assert_eq!(res.status(), 400, "{third}");
        assert_scim_error(res, 400, None).await;
        let after = app.get_ok(&path).await;
        assert_eq!(after, before, "{third}");
    }
}

#[tokio::test]
async fn a_failing_operation_leaves_the_group_and_its_members_unchanged() {
    let app = spawn_app().await;
    let a = app.create_user("a@example.com").await;
    let b = app.create_user("b@example.com").await;
    app.create_group("Taken", &[]).await;
    let gid = app.create_group("Team", &[&a]).await;
    let path = format!("/Groups/{gid}");
    let before = app.get_ok(&path).await;
    // The third operation fails in PATCH itself; the next, in the database
    // (another group already has that name).
    for third in [
        json!({"op": "replace", "path": "displayName", "value": 5}),
        json!({"op": "replace", "path": "displayName", "value": "taken"}),
    ] {
        let res = app
            .patch(
                &path,
                &patch_op(json!([
                    {"op": "add", "path": "members", "value": [{"value": b}]},
                    {"op": "remove", "path": "members", "value": [{"value": a}]},
                    third
                ])),
            )
            .await;
        assert!(res.status().is_client_error(), "{third}: {}", res.status());
        assert_eq!(app.get_ok(&path).await, before, "{third}");
        let b_user = app.get_ok(&format!("/Users/{b}")).await;
        assert!(b_user.get("groups").is_none(), "{b_user}");
    }
}

#[tokio::test]
async fn op_names_match_case_insensitively_and_others_are_invalid_syntax() {
    // E1: Entra sends Add/Replace/Remove.
    let app = spawn_app().await;
    let id = user(&app).await;
    let path = format!("/Users/{id}");
    let u = ok(
        &app,
        &path,
        json!([
            {"op": "Add", "path": "nickName", "value": "N"},
            {"op": "Replace", "path": "title", "value": "T"},
            {"op": "Remove", "path": "displayName"},
            {"op": "REPLACE", "path": "locale", "value": "en-US"}
        ]),
    )
    .await;
    assert_eq!(
        (u["nickName"].as_str(), u["title"].as_str()),
        (Some("N"), Some("T"))
    );
    assert!(u.get("displayName").is_none());
    assert_eq!(u["locale"], "en-US");
    let before = app.get_ok(&path).await;
    for op in ["merge", "copy", ""] {
        let res = app
            .patch(
                &path,
                &patch_op(json!([{"op": op, "path": "title", "value": "X"}])),
            )
            .await;
        assert_scim_error(res, 400, Some("invalidSyntax")).await;
    }
    assert_eq!(app.get_ok(&path).await, before);
}

#[tokio::test]
async fn boolean_strings_become_booleans() {
    // E2: Entra disables users with a string.
    let app = spawn_app().await;
    let id = user(&app).await;
    let path = format!("/Users/{id}");
    let u = ok(
        &app,
        &path,
        json!([{"op": "Replace", "path": "active", "value": "False"}]),
    )
    .await;
    assert_eq!(u["active"], json!(false));
    let found = app.filter("/Users", "active eq false").await;
    assert_eq!(found["totalResults"], 1);
    let u = ok(
        &app,
        &path,
        json!([{"op": "replace", "value": {"active": "TRUE"}}]),
    )
    .await;
    assert_eq!(u["active"], json!(true));
    let u = ok(
        &app,
        &path,
        json!([{"op": "replace", "path": "emails[type eq \"home\"].primary", "value": "true"}]),
    )
    .await;
    // Setting primary on one demotes the other (RFC 7644 §3.5.2).
    assert_eq!(
        emails(&u),
        json!([
            {"value": "bjensen@example.com", "type": "work", "primary": false},
            {"value": "babs@home.example", "type": "home", "primary": true}
        ])
    );
}

#[tokio::test]
async fn empty_string_and_null_clear_attributes() {
    // E11: Microsoft's mandatory null-update test.
    let app = spawn_app().await;
    let id = user(&app).await;
    let path = format!("/Users/{id}");
    let u = ok(
        &app,
        &path,
        json!([{"op": "replace", "path": "title", "value": ""}]),
    )
    .await;
    assert!(u.get("title").is_none());
    let u = ok(
        &app,
        &path,
        json!([{"op": "replace", "path": "displayName", "value": null}]),
    )
    .await;
    assert!(u.get("displayName").is_none());
    let u = ok(
        &app,
        &path,
        json!([{"op": "replace", "value": {"name.givenName": "", format!("{ENTERPRISE}:department"): null}}]),
    )
    .await;
    assert_eq!(u["name"], json!({"familyName": "Jensen"}));
    assert_eq!(u[ENTERPRISE], json!({"employeeNumber": "42"}));
}

#[tokio::test]
async fn a_patch_that_changes_nothing_keeps_the_version() {
    let app = spawn_app().await;
    let id = user(&app).await;
    let path = format!("/Users/{id}");
    let before = app.get_ok(&path).await;
    let u = ok(
        &app,
        &path,
        json!([
            {"op": "replace", "path": "title", "value": "Guide"},
            {"op": "add", "path": "emails", "value": [{"value": "babs@home.example", "type": "home"}]},
            {"op": "remove", "path": "nickName"}
        ]),
    )
    .await;
    assert_eq!(u, before);
}

#[tokio::test]
async fn lowercase_operations_key_and_missing_schemas_are_tolerated() {
    // X1, X8.
    let app = spawn_app().await;
    let id = user(&app).await;
    let res = app
        .patch(
            &format!("/Users/{id}"),
            &json!({"operations": [{"op": "replace", "path": "title", "value": "Lower"}]}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(json(res).await["title"], "Lower");
}

#[tokio::test]
async fn remove_without_a_path_is_400_no_target_and_changes_nothing() {
    let app = spawn_app().await;
    let id = user(&app).await;
    let path = format!("/Users/{id}");
    let before = app.get_ok(&path).await;
    let res = app
        .patch(
            &path,
            &patch_op(json!([{"op": "remove", "value": {"title": "Guide"}}])),
        )
        .await;
    assert_scim_error(res, 400, Some("noTarget")).await;
    let res = app.patch(&path, &patch_op(json!([]))).await;
    assert_scim_error(res, 400, Some("invalidSyntax")).await;
    assert_eq!(app.get_ok(&path).await, before);
}

// ---- Group membership ----

fn sorted(ids: &[&String]) -> Vec<String> {
    let mut ids: Vec<String> = ids.iter().map(|s| (*s).clone()).collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn members_are_added_several_at_once_with_null_refs() {
    // E7.
    let app = spawn_app().await;
    let a = app.create_user("a@example.com").await;
    let b = app.create_user("b@example.com").await;
    let gid = app.create_group("Team", &[]).await;
    let res = app
        .patch(
            &format!("/Groups/{gid}"),
            &patch_op(json!([{"op": "Add", "path": "members", "value": [
                {"$ref": null, "value": a}, {"$ref": null, "value": b}
            ]}])),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "etag"), "W/\"2\"");
    let group = json(res).await;
    assert_eq!(group["members"].as_array().unwrap().len(), 2);
    assert_eq!(app.member_ids(&gid).await, sorted(&[&a, &b]));
    // Adding them again is a no-op: same version.
    let res = app
        .patch(
            &format!("/Groups/{gid}"),
            &patch_op(json!([{"op": "add", "path": "members", "value": [{"value": a}]}])),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(json(res).await["meta"]["version"], "W/\"2\"");
}

#[tokio::test]
async fn members_are_removed_by_filter_by_value_list_and_all_at_once() {
    let app = spawn_app().await;
    let a = app.create_user("a@example.com").await;
    let b = app.create_user("b@example.com").await;
    let c = app.create_user("c@example.com").await;
    let d = app.create_user("d@example.com").await;
    let gid = app.create_group("Team", &[&a, &b, &c, &d]).await;
    let path = format!("/Groups/{gid}");

    // E6: a value filter.
    let res = app
        .patch(
            &path,
            &patch_op(json!([{"op": "remove", "path": format!("members[value eq \"{a}\"]")}])),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(app.member_ids(&gid).await, sorted(&[&b, &c, &d]));

    // E5: a value list on a bare `members` path removes only those.
    let res = app
        .patch(
            &path,
            &patch_op(
                json!([{"op": "Remove", "path": "members", "value": [{"value": b, "$ref": null}]}]),
            ),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(app.member_ids(&gid).await, sorted(&[&c, &d]));

    // `or` of values.
    let res = app
        .patch(
            &path,
            &patch_op(json!([{"op": "remove", "path": format!("members[value eq \"{c}\" or value eq \"{d}\"]")}])),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert!(app.member_ids(&gid).await.is_empty());

    // No value: the whole list goes.
    let res = app
        .patch(
            &path,
            &patch_op(
                json!([{"op": "add", "path": "members", "value": [{"value": a}, {"value": b}]}]),
            ),
        )
        .await;
    assert_eq!(res.status(), 200);
    let res = app
        .patch(
            &path,
            &patch_op(json!([{"op": "remove", "path": "members"}])),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert!(app.member_ids(&gid).await.is_empty());
    let user = app.get_ok(&format!("/Users/{a}")).await;
    assert!(user.get("groups").is_none());
}

#[tokio::test]
async fn members_removed_by_type_filter() {
    let app = spawn_app().await;
    let a = app.create_user("a@example.com").await;
    let inner = app.create_group("Inner", &[]).await;
    let gid = app.create_group("Outer", &[&a, &inner]).await;
    let res = app
        .patch(
            &format!("/Groups/{gid}"),
            &patch_op(json!([{"op": "remove", "path": "members[type eq \"Group\"]"}])),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(app.member_ids(&gid).await, vec![a]);
}

#[tokio::test]
async fn replace_members_sets_exactly_the_list() {
    let app = spawn_app().await;
    let a = app.create_user("a@example.com").await;
    let b = app.create_user("b@example.com").await;
    let c = app.create_user("c@example.com").await;
    let gid = app.create_group("Team", &[&a, &b]).await;
    let path = format!("/Groups/{gid}");
    let res = app
        .patch(&path, &patch_op(json!([{"op": "replace", "path": "members", "value": [{"value": b}, {"value": c}]}])))
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(app.member_ids(&gid).await, sorted(&[&b, &c]));
    // The same list again changes nothing (Okta re-pushes full lists, O9).
    let version = app.get_ok(&path).await["meta"]["version"].clone();
    let res = app
        .patch(&path, &patch_op(json!([{"op": "replace", "path": "members", "value": [{"value": c}, {"value": b}]}])))
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(json(res).await["meta"]["version"], version);
    // Path-less replace with members and a new name.
    let res = app
        .patch(
            &path,
            &patch_op(json!([{"op": "replace", "value": {"displayName": "Renamed", "members": [{"value": a}]}}])),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(app.member_ids(&gid).await, vec![a]);
    assert_eq!(app.get_ok(&path).await["displayName"], "Renamed");
}

#[tokio::test]
async fn removing_a_non_member_is_a_200_no_op() {
    let app = spawn_app().await;
    let a = app.create_user("a@example.com").await;
    let outsider = app.create_user("out@example.com").await;
    let gid = app.create_group("Team", &[&a]).await;
    let path = format!("/Groups/{gid}");
    let before = app.get_ok(&path).await;
    for op in [
        json!({"op": "remove", "path": format!("members[value eq \"{outsider}\"]")}),
        json!({"op": "remove", "path": "members", "value": [{"value": outsider}]}),
        json!({"op": "remove", "path": format!("members[value eq \"{}\"]", uuid::Uuid::new_v4())}),
        json!({"op": "remove", "path": "members[value eq \"not-a-uuid\"]"}),
    ] {
        let res = app.patch(&path, &patch_op(json!([op.clone()]))).await;
        assert_eq!(res.status(), 200, "{op}");
        assert_eq!(json(res).await, before, "{op}");
    }
}

#[tokio::test]
async fn adding_an_id_that_names_nothing_is_200_and_links_nothing() {
    // X3: conformance probes add "fake-member-id" and expect 200.
    let app = spawn_app().await;
    let a = app.create_user("a@example.com").await;
    let gid = app.create_group("Team", &[]).await;
    let res = app
        .patch(
            &format!("/Groups/{gid}"),
            &patch_op(json!([{"op": "add", "path": "members", "value": [
                {"value": "fake-member-id"}, {"value": uuid::Uuid::new_v4().to_string()}, {"value": a}
            ]}])),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(app.member_ids(&gid).await, vec![a]);
}

#[tokio::test]
async fn member_sub_attributes_cannot_be_patched() {
    let app = spawn_app().await;
    let a = app.create_user("a@example.com").await;
    let gid = app.create_group("Team", &[&a]).await;
    let before = app.get_ok(&format!("/Groups/{gid}")).await;
    let res = app
        .patch(
            &format!("/Groups/{gid}"),
            &patch_op(json!([{"op": "replace", "path": format!("members[value eq \"{a}\"].display"), "value": "X"}])),
        )
        .await;
    assert_scim_error(res, 400, Some("mutability")).await;
    assert_eq!(app.get_ok(&format!("/Groups/{gid}")).await, before);
}
