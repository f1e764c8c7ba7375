//! Attribute mapping (issue 14) on the SCIM path: rules set through the host
//! API read a directory's own attributes into the app user's standard fields,
//! custom attributes and role; a change of a mapped value is a `user.updated`
//! naming it, a change of an unmapped one is nothing; changing the rules
//! applies them to the users already there; a preview writes nothing; bad
//! rules are refused with the reason.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, patch_op, spawn_app};
use crate::host_api::{call, token};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn admin(app: &TestApp) -> String {
    token(&app.tenant, "read write admin")
}

async fn put_mapping(app: &TestApp, rules: Value) -> (u16, Value) {
    let path = format!("/api/v1/directories/{}/policy", app.directory_id);
    let (status, body, _) = call(
        app,
        Some(&admin(app)),
        Method::PUT,
        &path,
        Some(json!({ "attribute_mapping": rules })),
    )
    .await;
    (status, body)
}

/// Cost center and division from the enterprise extension: one to a custom
/// attribute, one in place of the default source of `department`.
fn rules() -> Value {
    json!([
        {"source": format!("{ENTERPRISE}:costCenter"), "target": "custom.cost_center"},
        {"source": format!("{ENTERPRISE}:division"), "target": "department", "trim": true},
        {"source": "emails[type eq \"home\"].value", "target": "custom.home_email", "lowercase": true},
    ])
}

async fn create(app: &TestApp, user_name: &str, cost_center: &str) -> String {
    let created = app
        .post_created(
            "/Users",
            &json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
                "userName": user_name,
                "active": true,
                "emails": [
                    {"value": user_name, "type": "work", "primary": true},
                    {"value": "Home.Address@Example.NET", "type": "home"},
                ],
                ENTERPRISE: {
                    "costCenter": cost_center,
                    "division": "  Research  ",
                    "department": "Engineering",
                },
            }),
        )
        .await;
    created["id"].as_str().unwrap().to_owned()
}

/// The events after `after` of one type, with their `changed` lists.
async fn changes_after(app: &TestApp, after: i64) -> Vec<(String, Vec<String>)> {
    app.events_after(after)
        .await
        .iter()
        .map(|e| {
            let changed = e["data"]["changed"]
                .as_array()
                .map(|c| {
                    c.iter()
                        .map(|n| n.as_str().unwrap_or("").to_owned())
                        .collect()
                })
                .unwrap_or_default();
            (e["type"].as_str().unwrap_or("").to_owned(), changed)
        })
        .collect()
}

#[tokio::test]
async fn mapped_attributes_reach_the_user_and_every_patch_form_changes_them() {
    let app = spawn_app().await;
    let (status, policy) = put_mapping(&app, rules()).await;
    assert_eq!(status, 200, "{policy}");
    assert_eq!(
        policy["attribute_mapping"][0]["target"],
        "custom.cost_center"
    );

    let before = app.last_seq().await;
    let id = create(&app, "ada@example.com", "CC-1").await;
    let user = app.app_user("ada@example.com").await.expect("app user");
    assert_eq!(
        user["custom_attributes"],
        json!({"cost_center": "CC-1", "home_email": "home.address@example.net"})
    );
    assert_eq!(
        user["department"], "Research",
        "division, trimmed, not department"
    );
    let events = app.events_after(before).await;
    assert_eq!(events[0]["type"], "user.created");
    assert_eq!(
        events[0]["data"]["user"]["custom_attributes"]["cost_center"], "CC-1",
        "the event carries the custom attributes"
    );

    // Entra: a path-less replace whose value holds URN-prefixed keys.
    let seq = app.last_seq().await;
    let res = app
        .patch(
            &format!("/Users/{id}"),
            &patch_op(json!([{"op": "Replace", "value": {
                format!("{ENTERPRISE}:costCenter"): "CC-2"
            }}])),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        changes_after(&app, seq).await,
        vec![(
            "user.updated".to_owned(),
            vec!["custom_attributes.cost_center".to_owned()]
        )]
    );

    // A path naming the attribute (Okta, RFC 7644 §3.5.2.3).
    let seq = app.last_seq().await;
    let res = app
        .patch(
            &format!("/Users/{id}"),
            &patch_op(json!([{"op": "replace", "path": format!("{ENTERPRISE}:division"), "value": "Sales"}])),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        changes_after(&app, seq).await,
        vec![("user.updated".to_owned(), vec!["department".to_owned()])]
    );

    // A value-filter path on a mapped multi-valued attribute.
    let seq = app.last_seq().await;
    let res = app
        .patch(
            &format!("/Users/{id}"),
            &patch_op(json!([{"op": "replace", "path": "emails[type eq \"home\"].value", "value": "ADA@home.example"}])),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        changes_after(&app, seq).await,
        vec![(
            "user.updated".to_owned(),
            vec!["custom_attributes.home_email".to_owned()]
        )]
    );
    let user = app.app_user("ada@example.com").await.expect("app user");
    assert_eq!(user["custom_attributes"]["home_email"], "ada@home.example");

    // Unmapped now: the enterprise department (division overrides it) and
    // the nick name change nothing the application sees.
    let seq = app.last_seq().await;
    let res = app
        .patch(
            &format!("/Users/{id}"),
            &patch_op(json!([
                {"op": "replace", "path": format!("{ENTERPRISE}:department"), "value": "Finance"},
                {"op": "replace", "path": "nickName", "value": "Countess"},
            ])),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        app.last_seq().await,
        seq,
        "no event for unmapped attributes"
    );

    // Removing the source removes the custom attribute.
    let res = app
        .patch(
            &format!("/Users/{id}"),
            &patch_op(json!([{"op": "remove", "path": format!("{ENTERPRISE}:costCenter")}])),
        )
        .await;
    assert_eq!(res.status(), 200);
    let user = app.app_user("ada@example.com").await.expect("app user");
    assert!(
        user["custom_attributes"].get("cost_center").is_none(),
        "{user}"
    );

    // The host API shows them too.
    let (status, listed, _) = call(
        &app,
        Some(&token(&app.tenant, "read")),
        Method::GET,
        &format!("/api/v1/users/{}", user["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(
        listed["custom_attributes"]["home_email"],
        "ada@home.example"
    );
}

#[tokio::test]
async fn changing_the_mapping_applies_it_to_the_users_already_there_with_events() {
    let app = spawn_app().await;
    for (i, cc) in ["CC-1", "CC-2", "CC-3"].iter().enumerate() {
        create(&app, &format!("user{i}@example.com"), cc).await;
    }
    let users = app.app_users().await;
    assert!(users.iter().all(|u| u["custom_attributes"] == json!({})));
    assert!(users.iter().all(|u| u["department"] == "Engineering"));

    let seq = app.last_seq().await;
    let (status, body) = put_mapping(&app, rules()).await;
    assert_eq!(status, 200, "{body}");
    let changes = changes_after(&app, seq).await;
    assert_eq!(changes.len(), 3, "{changes:?}");
    for (kind, changed) in &changes {
        assert_eq!(kind, "user.updated");
        assert_eq!(
            changed,
            &vec![
                "department".to_owned(),
                "custom_attributes.cost_center".to_owned(),
                "custom_attributes.home_email".to_owned(),
            ]
        );
    }
    let mut centers: Vec<String> = app
        .app_users()
        .await
        .iter()
        .map(|u| {
            u["custom_attributes"]["cost_center"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    centers.sort();
    assert_eq!(centers, ["CC-1", "CC-2", "CC-3"]);

    // The same rules again: nothing to do.
    let seq = app.last_seq().await;
    let (status, _) = put_mapping(&app, rules()).await;
    assert_eq!(status, 200);
    assert_eq!(app.last_seq().await, seq);

    // No rules: back to the defaults, the custom attributes gone.
    let (status, _) = put_mapping(&app, json!([])).await;
    assert_eq!(status, 200);
    let changes = changes_after(&app, seq).await;
    assert_eq!(changes.len(), 3, "{changes:?}");
    let users = app.app_users().await;
    assert!(
        users.iter().all(|u| u["custom_attributes"] == json!({})),
        "{users:?}"
    );
    assert!(users.iter().all(|u| u["department"] == "Engineering"));
}

#[tokio::test]
async fn a_role_comes_from_an_attribute_only_when_the_policy_lets_sync_set_roles() {
    let app = spawn_app().await;
    let (status, body) = put_mapping(
        &app,
        json!([{
            "source": "roles[primary eq true].value",
            "target": "role",
            "map": {"Global Admin": "admin", "Reader": "viewer"},
        }]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let created = app
        .post_created(
            "/Users",
            &json!({
                "userName": "grace@example.com",
                "emails": [{"value": "grace@example.com", "primary": true}],
                "roles": [{"value": "Global Admin", "primary": true}],
            }),
        )
        .await;
    let id = created["id"].as_str().unwrap();
    let user = app.app_user("grace@example.com").await.unwrap();
    assert_eq!(
        user["role"], "member",
        "the switch is off: sync sets no role"
    );

    let path = format!("/api/v1/directories/{}/policy", app.directory_id);
    let (status, body, _) = call(
        &app,
        Some(&admin(&app)),
        Method::PUT,
        &path,
        Some(json!({
            "group_roles_enabled": true,
            "attribute_mapping": [{
                "source": "roles[primary eq true].value",
                "target": "role",
                "map": {"Global Admin": "admin", "Reader": "viewer"},
            }],
        })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let seq = app.last_seq().await;
    let res = app
        .patch(
            &format!("/Users/{id}"),
            &patch_op(json!([{"op": "replace", "path": "title", "value": "CTO"}])),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        changes_after(&app, seq).await,
        vec![(
            "user.updated".to_owned(),
            vec!["role".to_owned(), "title".to_owned()]
        )]
    );
    assert_eq!(
        app.app_user("grace@example.com").await.unwrap()["role"],
        "admin"
    );

    // A value the map does not name gives no role: the user keeps theirs.
    let res = app
        .patch(
            &format!("/Users/{id}"),
            &patch_op(json!([{"op": "replace", "path": "roles", "value": [{"value": "Owner", "primary": true}]}])),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        app.app_user("grace@example.com").await.unwrap()["role"],
        "admin"
    );
}

#[tokio::test]
async fn bad_rules_are_refused_with_the_reason_and_change_nothing() {
    let app = spawn_app().await;
    let (status, _) = put_mapping(&app, rules()).await;
    assert_eq!(status, 200);
    let cases = [
        (
            json!([{"source": "title", "target": "favourite_colour"}]),
            "favourite_colour",
        ),
        (
            json!([{"source": "title", "target": "custom.Cost-Center"}]),
            "Cost-Center",
        ),
        (
            json!([{"source": "emails[type eq", "target": "custom.x"}]),
            "emails[type eq",
        ),
        (json!([{"source": "title", "target": "role"}]), "map"),
        (
            json!([{"source": "title", "target": "custom.x", "map": "Eng=engineering"}]),
            "map",
        ),
        (
            json!([{"source": "title", "target": "custom.x", "weight": 2}]),
            "weight",
        ),
    ];
    let path = format!("/api/v1/directories/{}/policy", app.directory_id);
    for (rules, named) in cases {
        let (status, problem) = put_mapping(&app, rules.clone()).await;
        assert_eq!(status, 400, "{rules}: {problem}");
        let said = problem.to_string();
        assert!(
            said.contains(named),
            "{rules}: the problem names {named:?}: {said}"
        );
    }
    let (_, policy, _) = call(&app, Some(&admin(&app)), Method::GET, &path, None).await;
    assert_eq!(
        policy["attribute_mapping"],
        rules(),
        "refused rules change nothing"
    );
}

#[tokio::test]
async fn a_preview_shows_values_before_and_after_and_writes_nothing() {
    let app = spawn_app().await;
    create(&app, "ada@example.com", "CC-1").await;
    create(&app, "bob@example.com", "CC-2").await;
    let seq = app.last_seq().await;
    let path = format!("/api/v1/directories/{}/policy/preview", app.directory_id);
    let (status, page, _) = call(
        &app,
        Some(&token(&app.tenant, "read")),
        Method::POST,
        &path,
        Some(json!({"attribute_mapping": rules(), "limit": 1})),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let data = page["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "the limit holds");
    let first = &data[0];
    assert_eq!(first["before"]["profile"]["department"], "Engineering");
    assert_eq!(first["after"]["profile"]["department"], "Research");
    assert_eq!(first["after"]["profile"]["custom"]["cost_center"], "CC-1");
    assert_eq!(
        first["changed"],
        json!([
            "department",
            "custom_attributes.cost_center",
            "custom_attributes.home_email"
        ])
    );
    assert_eq!(app.last_seq().await, seq, "a preview writes nothing");
    assert!(
        app.app_users()
            .await
            .iter()
            .all(|u| u["custom_attributes"] == json!({}))
    );

    let (status, problem, _) = call(
        &app,
        Some(&token(&app.tenant, "read")),
        Method::POST,
        &path,
        Some(json!({"attribute_mapping": [{"source": "title", "target": "nope"}]})),
    )
    .await;
    assert_eq!(status, 400, "{problem}");
}

/// Entra's custom extension attributes (a directory extension the admin
/// defines, `urn:ietf:params:scim:schemas:extension:<Name>:2.0:User`),
/// mapped to custom attributes: in the POST body and by its path-less
/// PATCH with URN-prefixed keys; a list of values stays a list.
#[tokio::test]
async fn a_custom_extension_urn_maps_to_custom_attributes_in_entras_forms() {
    const CUSTOM: &str = "urn:ietf:params:scim:schemas:extension:Acme:2.0:User";
    let app = spawn_app().await;
    let (status, body) = put_mapping(
        &app,
        json!([
            {"source": format!("{CUSTOM}:badge"), "target": "custom.badge"},
            {"source": format!("{CUSTOM}:sites"), "target": "custom.sites", "lowercase": true},
            {"source": format!("{CUSTOM}:sites"), "target": "custom.first_site", "first": true},
        ]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let created = app
        .post_created(
            "/Users",
            &json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", CUSTOM],
                "userName": "lin@example.com",
                "emails": [{"value": "lin@example.com", "primary": true}],
                CUSTOM: {"badge": "B-7", "sites": ["Oslo", "Lima"]},
            }),
        )
        .await;
    let id = created["id"].as_str().unwrap();
    let user = app.app_user("lin@example.com").await.unwrap();
    assert_eq!(
        user["custom_attributes"],
        json!({"badge": "B-7", "sites": ["oslo", "lima"], "first_site": "Oslo"})
    );

    let seq = app.last_seq().await;
    let res = app
        .patch(
            &format!("/Users/{id}"),
            &patch_op(json!([{"op": "Replace", "value": {
                format!("{CUSTOM}:badge"): "B-8"
            }}])),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        changes_after(&app, seq).await,
        vec![(
            "user.updated".to_owned(),
            vec!["custom_attributes.badge".to_owned()]
        )]
    );
}

/// Rules may copy one long source into several custom attributes; together
/// they are kept within 64 KiB (`domain::limits::CUSTOM_ATTRIBUTES_BYTES`),
/// the last by name dropped whole.
#[tokio::test]
async fn custom_attributes_are_kept_within_their_cap_together() {
    const CUSTOM: &str = "urn:ietf:params:scim:schemas:extension:Acme:2.0:User";
    let app = spawn_app().await;
    let rules: Vec<Value> = ["a", "b", "c"]
        .iter()
        .map(
            |name| json!({"source": format!("{CUSTOM}:notes"), "target": format!("custom.{name}")}),
        )
        .collect();
    let (status, body) = put_mapping(&app, Value::Array(rules)).await;
    assert_eq!(status, 200, "{body}");
    // 30 values of 900 bytes: about 27 KiB a copy, three copies past 64 KiB.
    let notes: Vec<String> = (0..30)
        .map(|i| format!("{i:03}{}", "n".repeat(897)))
        .collect();
    app.post_created(
        "/Users",
        &json!({
            "userName": "kit@example.com",
            "emails": [{"value": "kit@example.com", "primary": true}],
            CUSTOM: {"notes": notes},
        }),
    )
    .await;
    let user = app.app_user("kit@example.com").await.unwrap();
    let custom = user["custom_attributes"].as_object().unwrap();
    let names: Vec<&String> = custom.keys().collect();
    assert_eq!(names, ["a", "b"], "the last by name goes");
    assert_eq!(custom["a"], json!(notes));
}
