//! SCIM writes through the engine: each 2xx leaves its change in the mirror,
//! the app identity and the event log; each refusal leaves none of them.

use dirsync::admin::PolicyChange;
use dirsync::reconcile::host::Action;
use dirsync::reconcile::policy::{GroupRole, OnDelete};
use serde_json::{Value, json};

use crate::helpers::{TestApp, json, patch_op, spawn_app};

fn user_body(user_name: &str, email: &str, given: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name,
        "externalId": format!("ext-{user_name}"),
        "name": {"givenName": given, "familyName": "Lovelace"},
        "title": "Engineer",
        "emails": [{"value": email, "type": "work", "primary": true}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D"},
        "active": true
    })
}

async fn create(app: &TestApp, user_name: &str, email: &str) -> String {
    let res = app
        .post("/Users", &user_body(user_name, email, "Ada"))
        .await;
    assert_eq!(res.status(), 201);
    json(res).await["id"].as_str().unwrap().to_owned()
}

async fn set_active(app: &TestApp, id: &str, active: bool) {
    let res = app
        .patch(
            &format!("/Users/{id}"),
            &patch_op(json!([{"op": "replace", "path": "active", "value": active}])),
        )
        .await;
    assert_eq!(res.status(), 200);
}

async fn status(app: &TestApp, email: &str) -> (String, Option<String>) {
    let u = app.app_user(email).await.expect("app user");
    (
        u["status"].as_str().unwrap().to_owned(),
        u["deactivated_by"].as_str().map(str::to_owned),
    )
}

#[tokio::test]
async fn a_scim_create_makes_a_pending_app_user_with_the_default_role_and_one_event() {
    let app = spawn_app().await;
    create(&app, "ada", "Ada@Example.com").await;
    let user = app.app_user("ada@example.com").await.expect("app user");
    assert_eq!(user["status"], "PENDING");
    assert_eq!(user["role"], "member");
    assert_eq!(user["given_name"], "Ada");
    assert_eq!(user["department"], "R&D");
    assert_eq!(user["title"], "Engineer");
    let events = app.events_after(0).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "user.created");
    assert_eq!(events[0]["seq"], 1);
    assert_eq!(events[0]["resource_id"], user["id"]);
    assert_eq!(events[0]["data"]["user"]["email"], "ada@example.com");
}

#[tokio::test]
async fn re_sending_the_same_user_is_unchanged_and_emits_nothing() {
    let app = spawn_app().await;
    let id = create(&app, "ada", "ada@example.com").await;
    let before = app.last_seq().await;
    let res = app
        .put(
            &format!("/Users/{id}"),
            &user_body("ada", "ada@example.com", "Ada"),
        )
        .await;
    assert_eq!(res.status(), 200);
    set_active(&app, &id, true).await;
    assert_eq!(
        app.last_seq().await,
        before,
        "no event for an unchanged user"
    );
}

#[tokio::test]
async fn a_profile_change_updates_the_app_user_and_names_the_changed_fields() {
    let app = spawn_app().await;
    let id = create(&app, "ada", "ada@example.com").await;
    app.act("ada@example.com", Action::SetRole("admin".into()))
        .await;
    app.act("ada@example.com", Action::SignedIn).await;
    let before = app.last_seq().await;
    let res = app
        .put(
            &format!("/Users/{id}"),
            &user_body("ada", "ada@example.com", "Augusta"),
        )
        .await;
    assert_eq!(res.status(), 200);
    let events = app.events_after(before).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["type"], "user.updated");
    assert_eq!(events[0]["data"]["changed"], json!(["given_name"]));
    let user = app.app_user("ada@example.com").await.unwrap();
    assert_eq!(user["given_name"], "Augusta");
    assert_eq!(user["role"], "admin", "sync never changes a role");
    assert_eq!(
        user["status"], "ACTIVE",
        "sync never touches invitation status"
    );
}

#[tokio::test]
async fn active_false_deactivates_by_directory_and_active_true_restores_the_invitation_status() {
    let app = spawn_app().await;
    let id = create(&app, "ada", "ada@example.com").await;
    set_active(&app, &id, false).await;
    assert_eq!(
        status(&app, "ada@example.com").await,
        ("DEACTIVATED".into(), Some("directory".into()))
    );
    set_active(&app, &id, true).await;
    assert_eq!(
        status(&app, "ada@example.com").await,
        ("PENDING".into(), None)
    );
    app.act("ada@example.com", Action::SignedIn).await;
    set_active(&app, &id, false).await;
    set_active(&app, &id, true).await;
    assert_eq!(
        status(&app, "ada@example.com").await,
        ("ACTIVE".into(), None)
    );
    let types = app.event_types_after(0).await;
    assert_eq!(
        types,
        [
            "user.created",
            "user.deactivated",
            "user.reactivated",
            "user.updated",
            "user.deactivated",
            "user.reactivated"
        ]
    );
}

#[tokio::test]
async fn an_admins_deactivation_stands_against_the_directory_saying_active() {
    let app = spawn_app().await;
    let id = create(&app, "ada", "ada@example.com").await;
    app.act("ada@example.com", Action::Deactivate).await;
    set_active(&app, &id, false).await;
    set_active(&app, &id, true).await;
    let res = app
        .put(
            &format!("/Users/{id}"),
            &user_body("ada", "ada@example.com", "Ada"),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        status(&app, "ada@example.com").await,
        ("DEACTIVATED".into(), Some("admin".into()))
    );
    app.act("ada@example.com", Action::Reactivate).await;
    assert_eq!(
        status(&app, "ada@example.com").await,
        ("PENDING".into(), None)
    );
}

#[tokio::test]
async fn an_email_change_with_the_same_directory_user_updates_in_place() {
    let app = spawn_app().await;
    let id = create(&app, "ada", "ada@example.com").await;
    let res = app
        .put(
            &format!("/Users/{id}"),
            &user_body("ada", "ada@new.example.com", "Ada"),
        )
        .await;
    assert_eq!(res.status(), 200);
    let users = app.app_users().await;
    assert_eq!(users.len(), 1, "no duplicate: {users:?}");
    assert_eq!(users[0]["email"], "ada@new.example.com");
}

#[tokio::test]
async fn a_new_email_that_belongs_to_someone_else_is_a_conflict_and_changes_nothing() {
    let app = spawn_app().await;
    let id = create(&app, "ada", "ada@example.com").await;
    create(&app, "grace", "grace@example.com").await;
    let before = app.last_seq().await;
    let res = app
        .put(
            &format!("/Users/{id}"),
            &user_body("ada", "grace@example.com", "Ada"),
        )
        .await;
    assert_eq!(
        res.status(),
        200,
        "the mirror takes what the directory says"
    );
    assert_eq!(app.last_seq().await, before, "a conflict emits nothing");
    let ada = app
        .app_user("ada@example.com")
        .await
        .expect("ada kept her email");
    assert_eq!(ada["given_name"], "Ada");
    assert_eq!(app.app_users().await.len(), 2);
}

#[tokio::test]
async fn delete_deactivates_by_default_and_deletes_under_on_delete_delete() {
    let app = spawn_app().await;
    let id = create(&app, "ada", "ada@example.com").await;
    assert_eq!(app.delete(&format!("/Users/{id}")).await.status(), 204);
    assert_eq!(
        status(&app, "ada@example.com").await,
        ("DEACTIVATED".into(), Some("directory".into()))
    );
    app.set_policy(PolicyChange {
        on_delete: Some(OnDelete::Delete),
        ..PolicyChange::default()
    })
    .await;
    let id = create(&app, "grace", "grace@example.com").await;
    assert_eq!(app.delete(&format!("/Users/{id}")).await.status(), 204);
    assert!(app.app_user("grace@example.com").await.is_none());
    assert_eq!(
        app.event_types_after(0).await.last().unwrap(),
        "user.deleted"
    );
}

#[tokio::test]
async fn a_user_deleted_and_created_again_with_its_external_id_gets_its_app_user_back() {
    let app = spawn_app().await;
    let id = create(&app, "ada", "ada@example.com").await;
    let app_id = app.app_user("ada@example.com").await.unwrap()["id"].clone();
    assert_eq!(app.delete(&format!("/Users/{id}")).await.status(), 204);
    create(&app, "ada", "ada@example.com").await;
    let user = app.app_user("ada@example.com").await.unwrap();
    assert_eq!(user["id"], app_id);
    assert_eq!(user["status"], "PENDING");
}

#[tokio::test]
async fn a_user_outside_the_allowed_domains_is_skipped() {
    let app = spawn_app().await;
    app.set_policy(PolicyChange {
        allowed_domains: Some(vec!["example.com".into()]),
        ..PolicyChange::default()
    })
    .await;
    create(&app, "eve", "eve@evil.test").await;
    create(&app, "ada", "ada@example.com").await;
    let emails: Vec<Value> = app
        .app_users()
        .await
        .iter()
        .map(|u| u["email"].clone())
        .collect();
    assert_eq!(emails, [json!("ada@example.com")]);
}

#[tokio::test]
async fn a_refused_scim_write_leaves_no_app_change_and_no_event() {
    let app = spawn_app().await;
    create(&app, "ada", "ada@example.com").await;
    let before = app.last_seq().await;
    let res = app
        .post("/Users", &user_body("ADA", "other@example.com", "X"))
        .await;
    assert_eq!(res.status(), 409);
    assert!(app.app_user("other@example.com").await.is_none());
    assert_eq!(app.last_seq().await, before);
}

#[tokio::test]
async fn one_person_in_two_directories_is_one_app_user_deactivated_only_when_both_say_so() {
    let app = spawn_app().await;
    let (_, other_token) = app.other_directory(false).await;
    let id = create(&app, "ada", "ada@example.com").await;
    let res = app
        .request_as(&other_token, reqwest::Method::POST, "/Users")
        .json(&user_body("ada.l", "ADA@example.com", "Someone Else"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let other_id = json(res).await["id"].as_str().unwrap().to_owned();
    let users = app.app_users().await;
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(
        users[0]["given_name"], "Ada",
        "the first directory's profile stays"
    );
    set_active(&app, &id, false).await;
    assert_eq!(status(&app, "ada@example.com").await.0, "PENDING");
    let res = app
        .request_as(
            &other_token,
            reqwest::Method::PATCH,
            &format!("/Users/{other_id}"),
        )
        .json(&patch_op(
            json!([{"op": "replace", "path": "active", "value": false}]),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        status(&app, "ada@example.com").await,
        ("DEACTIVATED".into(), Some("directory".into()))
    );
}

#[tokio::test]
async fn app_groups_and_their_members_follow_the_directory() {
    let app = spawn_app().await;
    let ada = create(&app, "ada", "ada@example.com").await;
    let grace = create(&app, "grace", "grace@example.com").await;
    let before = app.last_seq().await;
    let group = app.create_group("Engineers", &[&ada]).await;
    let groups = app.app_groups().await;
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0]["name"], "Engineers");
    let ada_app = app.app_user("ada@example.com").await.unwrap()["id"].clone();
    let grace_app = app.app_user("grace@example.com").await.unwrap()["id"].clone();
    assert_eq!(groups[0]["members"], json!([ada_app]));
    assert_eq!(
        app.event_types_after(before).await,
        ["group.created", "group.member_added"]
    );

    let before = app.last_seq().await;
    let res = app
        .patch(
            &format!("/Groups/{group}"),
            &patch_op(json!([
                {"op": "Add", "path": "members", "value": [{"value": grace}]},
                {"op": "Remove", "path": "members", "value": [{"value": ada}]},
                {"op": "Replace", "path": "displayName", "value": "Engineering"}
            ])),
        )
        .await;
    assert_eq!(res.status(), 200);
    let groups = app.app_groups().await;
    assert_eq!(groups[0]["name"], "Engineering");
    assert_eq!(groups[0]["members"], json!([grace_app]));
    let mut types = app.event_types_after(before).await;
    types.sort();
    assert_eq!(
        types,
        [
            "group.member_added",
            "group.member_removed",
            "group.updated"
        ]
    );

    assert_eq!(app.delete(&format!("/Groups/{group}")).await.status(), 204);
    assert!(app.app_groups().await.is_empty());
    assert_eq!(
        app.event_types_after(0).await.last().unwrap(),
        "group.deleted"
    );
}

#[tokio::test]
async fn a_deleted_directory_user_leaves_its_app_groups() {
    let app = spawn_app().await;
    let ada = create(&app, "ada", "ada@example.com").await;
    app.create_group("Engineers", &[&ada]).await;
    assert_eq!(app.delete(&format!("/Users/{ada}")).await.status(), 204);
    assert_eq!(app.app_groups().await[0]["members"], json!([]));
}

#[tokio::test]
async fn group_role_mapping_and_the_membership_requirement_follow_memberships() {
    let app = spawn_app().await;
    app.set_policy(PolicyChange {
        group_roles_enabled: Some(true),
        group_roles: Some(vec![GroupRole {
            group: "Admins".into(),
            role: "admin".into(),
        }]),
        require_group_membership: Some(true),
        ..PolicyChange::default()
    })
    .await;
    let ada = create(&app, "ada", "ada@example.com").await;
    assert_eq!(
        status(&app, "ada@example.com").await,
        ("DEACTIVATED".into(), Some("directory".into())),
        "in no mapped group"
    );
    let group = app.create_group("Admins", &[&ada]).await;
    let user = app.app_user("ada@example.com").await.unwrap();
    assert_eq!(
        (user["status"].as_str(), user["role"].as_str()),
        (Some("PENDING"), Some("admin"))
    );
    let res = app
        .patch(
            &format!("/Groups/{group}"),
            &patch_op(json!([{"op": "remove", "path": format!("members[value eq \"{ada}\"]")}])),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(status(&app, "ada@example.com").await.0, "DEACTIVATED");
}

#[tokio::test]
async fn bulk_operations_go_through_the_engine_too() {
    let app = spawn_app().await;
    let res = app
        .post(
            "/Bulk",
            &json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                "Operations": [
                    {"method": "POST", "path": "/Users", "bulkId": "u1", "data": user_body("ada", "ada@example.com", "Ada")},
                    {"method": "POST", "path": "/Groups", "bulkId": "g1", "data": {
                        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                        "displayName": "Team", "members": [{"value": "bulkId:u1"}]}}
                ]
            }),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        app.event_types_after(0).await,
        ["user.created", "group.created", "group.member_added"]
    );
}

/// Concurrent writers, one reader paging by sequence number while they run:
/// the reader sees every event exactly once, with no gap it could skip past.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reader_paging_by_sequence_sees_every_event_exactly_once_under_concurrent_writers() {
    let app = std::sync::Arc::new(spawn_app().await);
    const WRITERS: usize = 8;
    const EACH: usize = 15;
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let app = app.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..EACH {
                let name = format!("w{w}-u{i}");
                let res = app
                    .post(
                        "/Users",
                        &user_body(&name, &format!("{name}@example.com"), "X"),
                    )
                    .await;
                assert_eq!(res.status(), 201);
            }
        }));
    }
    let reader = {
        let app = app.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut after = 0;
            while seen.len() < WRITERS * EACH {
                let page = dirsync::admin::events(&app.store, &app.tenant, after, 7)
                    .await
                    .unwrap();
                for e in &page {
                    seen.push(e.seq);
                    after = e.seq;
                }
                if page.is_empty() {
                    tokio::task::yield_now().await;
                }
            }
            seen
        })
    };
    for w in writers {
        w.await.unwrap();
    }
    let seen = tokio::time::timeout(std::time::Duration::from_secs(60), reader)
        .await
        .expect("the reader saw every event")
        .unwrap();
    let expected: Vec<i64> = (1..=(WRITERS * EACH) as i64).collect();
    assert_eq!(seen, expected);
}
