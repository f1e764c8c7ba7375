//! Each vendor's provisioning sequence replayed as the vendor sends it (payload
//! shapes, media types, PascalCase ops, string booleans), from the examples in
//! `docs/vendor-quirks.md`: existence check, create, find, update,
//! deactivate, reactivate, group create, member add, member remove, delete (or the
//! vendor's deactivate-instead-of-delete). Every SCIM answer is asserted.
//!
//! Headers: only Okta publishes its User-Agent (O10); the others are left to
//! reqwest's default rather than invented.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const SCIM_JSON: &str = "application/scim+json";

/// How one vendor's client talks: its directory's token and its headers.
struct Vendor<'a> {
    app: &'a TestApp,
    /// A OneLogin directory is answered in plain JSON (L10, the vendor switch).
    plain_json: bool,
    directory_id: String,
    token: String,
    user_agent: Option<&'static str>,
    /// Content-Type on requests with a body.
    content_type: &'static str,
    /// Content-Type the client also puts on bodiless requests (Okta's GETs, O10).
    bodiless_content_type: Option<&'static str>,
    accept: Option<&'static str>,
}

/// One answer: status, response Content-Type and the JSON body (null when empty).
#[derive(Debug)]
struct Reply {
    status: u16,
    content_type: String,
    body: Value,
}

impl Vendor<'_> {
    /// A directory with this `vendor` setting in the app's tenant, and its token.
    async fn new<'a>(app: &'a TestApp, vendor: &str) -> Vendor<'a> {
        let dir = dirsync::admin::create_directory(&app.store, &app.tenant, vendor, vendor)
            .await
            .expect("directory");
        let token = dirsync::admin::create_token(&app.store, &dir.id, None)
            .await
            .expect("token");
        Vendor {
            app,
            plain_json: vendor == "onelogin",
            directory_id: dir.id,
            token: token.token,
            user_agent: None,
            content_type: SCIM_JSON,
            bodiless_content_type: None,
            accept: None,
        }
    }

    /// `path` is sent as written (query strings stay encoded the vendor's way).
    async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Reply {
        let mut req = self.app.request_as(&self.token, method, path);
        if let Some(agent) = self.user_agent {
            req = req.header("user-agent", agent);
        }
        if let Some(accept) = self.accept {
            req = req.header("accept", accept);
        }
        match body {
            Some(body) => {
                req = req
                    .header("content-type", self.content_type)
                    .body(body.to_string());
            }
            None => {
                if let Some(content_type) = self.bodiless_content_type {
                    req = req.header("content-type", content_type);
                }
            }
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let content_type = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = res.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
        };
        Reply {
            status,
            content_type,
            body,
        }
    }

    /// Send and assert the status; returns the body.
    async fn expect(&self, method: Method, path: &str, body: Option<&Value>, status: u16) -> Value {
        let reply = self.send(method.clone(), path, body).await;
        assert_eq!(reply.status, status, "{method} {path}: {}", reply.body);
        if reply.status != 204 {
            // L10: a client accepting only application/json is answered in it;
            // everyone else gets the SCIM type (E23).
            let wanted = if self.plain_json || self.accept == Some("application/json") {
                "application/json"
            } else {
                SCIM_JSON
            };
            assert!(
                reply.content_type.starts_with(wanted),
                "{method} {path}: content-type {}, wanted {wanted}",
                reply.content_type
            );
        }
        reply.body
    }

    async fn get(&self, path: &str) -> Value {
        self.expect(Method::GET, path, None, 200).await
    }

    async fn post(&self, path: &str, body: &Value) -> Value {
        self.expect(Method::POST, path, Some(body), 201).await
    }

    async fn put(&self, path: &str, body: &Value) -> Value {
        self.expect(Method::PUT, path, Some(body), 200).await
    }

    async fn patch(&self, path: &str, body: &Value) -> Value {
        self.expect(Method::PATCH, path, Some(body), 200).await
    }

    async fn delete(&self, path: &str) {
        self.expect(Method::DELETE, path, None, 204).await;
    }

    /// A 404 SCIM error (RFC 7644 §3.12) for `GET path`.
    async fn gone(&self, path: &str) {
        let body = self.expect(Method::GET, path, None, 404).await;
        assert_eq!(body["status"], "404", "{body}");
    }

    /// This directory's app groups.
    async fn app_groups(&self) -> Vec<Value> {
        self.app
            .app_groups()
            .await
            .into_iter()
            .filter(|g| g["directory_id"] == self.directory_id.as_str())
            .collect()
    }

    /// This directory's one app group, asserted to have this name and these
    /// members (app user ids, any order); returns it.
    async fn app_group(&self, name: &str, members: &[&Value]) -> Value {
        let groups = self.app_groups().await;
        assert_eq!(groups.len(), 1, "{groups:?}");
        let group = groups.into_iter().next().unwrap();
        assert_eq!(group["name"], name, "{group}");
        let mut got: Vec<String> = group["members"]
            .as_array()
            .unwrap_or_else(|| panic!("no members: {group}"))
            .iter()
            .map(|m| m.as_str().unwrap().to_owned())
            .collect();
        got.sort();
        let wanted: Vec<&str> = members.iter().map(|m| m.as_str().unwrap()).collect();
        assert_eq!(got, sorted(&wanted), "{group}");
        group
    }
}

/// The app user with this email (folded), which must exist.
async fn app_user(app: &TestApp, email: &str) -> Value {
    match app.app_user(email).await {
        Some(user) => user,
        None => panic!("no app user {email}: {:?}", app.app_users().await),
    }
}

/// The app user with this email is `status`, deactivated by `by` (if at all).
async fn assert_status(app: &TestApp, email: &str, status: &str, by: Option<&str>) {
    let user = app_user(app, email).await;
    assert_eq!(
        (user["status"].as_str(), user["deactivated_by"].as_str()),
        (Some(status), by),
        "{user}"
    );
}

/// The events after `before` are exactly these types, in order; returns them.
async fn events_since(app: &TestApp, before: i64, types: &[&str]) -> Vec<Value> {
    assert_eq!(app.event_types_after(before).await, types);
    app.events_after(before).await
}

/// A SCIM create made one app user: `PENDING`, role `member`, one
/// `user.created` about it (docs/reconciliation.md, rule 2). Returns the app
/// user.
async fn assert_created(app: &TestApp, before: i64, email: &str) -> Value {
    let events = events_since(app, before, &["user.created"]).await;
    let user = app_user(app, email).await;
    assert_eq!(user["email"], email.to_lowercase(), "{user}");
    assert_eq!(user["status"], "PENDING", "{user}");
    assert_eq!(user["deactivated_by"], Value::Null, "{user}");
    assert_eq!(user["role"], "member", "{user}");
    assert_eq!(events[0]["resource_id"], user["id"], "{events:?}");
    user
}

/// One `user.updated` naming exactly the `changed` fields.
async fn assert_updated(app: &TestApp, before: i64, changed: &[&str]) {
    let events = events_since(app, before, &["user.updated"]).await;
    assert_eq!(events[0]["data"]["changed"], json!(changed), "{events:?}");
}

/// One membership event (`group.member_added` / `group.member_removed`) for
/// the app user with this id.
async fn assert_member_event(app: &TestApp, before: i64, kind: &str, app_user_id: &Value) {
    let events = events_since(app, before, &[kind]).await;
    assert_eq!(&events[0]["data"]["user_id"], app_user_id, "{events:?}");
}

/// A ListResponse with exactly these ids (in order).
fn listed(list: &Value, ids: &[&str]) {
    assert_eq!(list["schemas"], json!([LIST]), "{list}");
    assert_eq!(list["totalResults"], json!(ids.len()), "{list}");
    let got: Vec<&str> = list["Resources"]
        .as_array()
        .unwrap_or_else(|| panic!("no Resources: {list}"))
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, ids, "{list}");
}

fn id_of(resource: &Value) -> String {
    resource["id"].as_str().expect("id").to_owned()
}

fn member_ids(group: &Value) -> Vec<String> {
    let mut ids: Vec<String> = group["members"]
        .as_array()
        .map(|m| {
            m.iter()
                .map(|m| m["value"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

fn sorted(ids: &[&str]) -> Vec<String> {
    let mut ids: Vec<String> = ids.iter().map(|s| (*s).to_owned()).collect();
    ids.sort();
    ids
}

fn patch_op(operations: Value) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": operations})
}

#[tokio::test]
async fn entra_provisioning_sequence_round_trips() {
    let app = spawn_app().await;
    let entra = Vendor::new(&app, "entra").await;
    let user_name = "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1";

    // Test Connection: a random userName, form-encoded (E18, E19).
    let probe = entra
        .get("/Users?filter=userName+eq+%22d0b4b8f0-5c1e-4a0f-9a57-7a0c4c3a9c11%22")
        .await;
    listed(&probe, &[]);
    // Existence check before create.
    listed(
        &entra
            .get(&format!("/Users?filter=userName+eq+%22{user_name}%22"))
            .await,
        &[],
    );

    // Create, as the tutorial's "Create User" (E13: client meta, empty roles).
    let email = "Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com";
    let before = app.last_seq().await;
    let user = entra
        .post(
            "/Users",
            &json!({
                "schemas": [USER, ENTERPRISE],
                "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
                "userName": user_name,
                "active": true,
                "emails": [{"primary": true, "type": "work", "value": "Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com"}],
                "meta": {"resourceType": "User"},
                "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
                "roles": []
            }),
        )
        .await;
    let id = id_of(&user);
    assert_eq!(user["active"], true);
    assert_eq!(user["meta"]["resourceType"], "User");
    assert_eq!(user["meta"]["location"], format!("{}/Users/{id}", app.base));
    let app_id = assert_created(&app, before, email).await["id"].clone();
    let person = app_user(&app, email).await;
    assert_eq!(
        (&person["given_name"], &person["family_name"]),
        (&json!("givenName"), &json!("familyName"))
    );
    // A manager, provisioned later and with nulls for what it lacks (E12, E29).
    let before = app.last_seq().await;
    let manager = id_of(
        &entra
            .post(
                "/Users",
                &json!({
                    "schemas": [USER, ENTERPRISE],
                    "externalId": "b1a4b1b2-0000-4000-8000-000000000001",
                    "userName": "Test_Manager_3e4f",
                    "active": "True",
                    "addresses": null, "phoneNumbers": null, "title": null, "department": null, "manager": null
                }),
            )
            .await,
    );
    // No email: skipped, as app users are matched by email
    // (docs/reconciliation.md, rule 2).
    events_since(&app, before, &[]).await;
    assert_eq!(app.app_users().await.len(), 1);

    // Find by userName, externalId and work email (E16, E8, E19).
    let before = app.last_seq().await;
    for filter in [
        format!("userName+eq+%22{user_name}%22"),
        "externalId+eq+%220a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef%22".to_owned(),
        "emails%5Btype+eq+%22work%22%5D.value+eq+%22Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e%40testuser.com%22".to_owned(),
    ] {
        listed(&entra.get(&format!("/Users?filter={filter}")).await, &[&id]);
    }
    let read = entra.get(&format!("/Users/{id}")).await;
    assert_eq!(read["userName"], user_name);
    events_since(&app, before, &[]).await;

    // Update: PascalCase ops, filtered paths, an absent work address created (E1,
    // E8, E9), the manager in the tutorial's array shape (E10).
    let before = app.last_seq().await;
    let updated = entra
        .patch(
            &format!("/Users/{id}"),
            &patch_op(json!([
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updatedEmail@microsoft.com"},
                {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
                {"op": "Replace", "path": "addresses[type eq \"work\"].formatted", "value": "18/2111"},
                {"op": "Add", "path": "manager", "value": [{"$ref": format!("{}/Users/{manager}", app.base), "value": manager}]}
            ])),
        )
        .await;
    assert_eq!(
        updated["emails"],
        json!([{"primary": true, "type": "work", "value": "updatedEmail@microsoft.com"}])
    );
    assert_eq!(updated["name"]["familyName"], "updatedFamilyName");
    assert_eq!(
        updated["addresses"],
        json!([{"type": "work", "formatted": "18/2111"}])
    );
    assert_eq!(updated[ENTERPRISE]["manager"]["value"], json!(manager));
    // The same app user takes the new email (docs/reconciliation.md, rule 5).
    assert_updated(&app, before, &["email", "family_name", "manager"]).await;
    let email = "updatedEmail@microsoft.com";
    let person = app_user(&app, email).await;
    assert_eq!(person["id"], app_id);
    assert_eq!(person["family_name"], "updatedFamilyName");
    assert_eq!(person["manager"], json!(manager));
    assert_eq!(app.app_users().await.len(), 1);
    // The validator's clear: `""` on the URN path (E10, E11).
    let before = app.last_seq().await;
    let cleared = entra
        .patch(
            &format!("/Users/{id}"),
            &patch_op(
                json!([{"op": "Replace", "path": format!("{ENTERPRISE}:manager"), "value": ""}]),
            ),
        )
        .await;
    assert!(cleared.get(ENTERPRISE).is_none(), "{cleared}");
    assert_updated(&app, before, &["manager"]).await;
    assert_eq!(app_user(&app, email).await["manager"], Value::Null);

    // Deactivate and reactivate with string booleans (E2); disabled users stay
    // readable and filterable (E21).
    let before = app.last_seq().await;
    let off = entra
        .patch(
            &format!("/Users/{id}"),
            &patch_op(json!([{"op": "Replace", "path": "active", "value": "False"}])),
        )
        .await;
    assert_eq!(off["active"], false);
    events_since(&app, before, &["user.deactivated"]).await;
    assert_status(&app, email, "DEACTIVATED", Some("directory")).await;
    listed(
        &entra
            .get(&format!("/Users?filter=userName+eq+%22{user_name}%22"))
            .await,
        &[&id],
    );
    let before = app.last_seq().await;
    let on = entra
        .patch(
            &format!("/Users/{id}"),
            &patch_op(json!([{"op": "Replace", "path": "active", "value": "True"}])),
        )
        .await;
    assert_eq!(on["active"], true);
    events_since(&app, before, &["user.reactivated"]).await;
    assert_status(&app, email, "PENDING", None).await;

    // Group: existence check with members excluded, create with Microsoft's
    // schema URI (E14, E15).
    let before = app.last_seq().await;
    listed(
        &entra
            .get("/Groups?excludedAttributes=members&filter=displayName+eq+%22displayName%22")
            .await,
        &[],
    );
    let group = entra
        .post(
            "/Groups",
            &json!({
                "schemas": [GROUP, "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
                "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
                "displayName": "displayName",
                "meta": {"resourceType": "Group"}
            }),
        )
        .await;
    let gid = id_of(&group);
    assert_eq!(group["schemas"], json!([GROUP]));
    events_since(&app, before, &["group.created"]).await;
    let app_group = entra.app_group("displayName", &[]).await;
    assert_eq!(
        app_group["external_id"],
        "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159"
    );
    listed(
        &entra
            .get("/Groups?excludedAttributes=members&filter=externalId+eq+%228aa1a0c0-c4c3-4bc0-b4a5-2ef676900159%22")
            .await,
        &[&gid],
    );

    // Member add: `$ref: null`, two members in one op (E7).
    let before = app.last_seq().await;
    let added = entra
        .patch(
            &format!("/Groups/{gid}"),
            &patch_op(json!([{"op": "Add", "path": "members", "value": [
                {"$ref": null, "value": id}, {"$ref": null, "value": manager}
            ]}])),
        )
        .await;
    assert_eq!(member_ids(&added), sorted(&[&id, &manager]));
    // The manager has no app user (no email), so one app member.
    assert_member_event(&app, before, "group.member_added", &app_id).await;
    entra.app_group("displayName", &[&app_id]).await;
    // Member remove by value list removes only the listed member (E5).
    let before = app.last_seq().await;
    let removed = entra
        .patch(
            &format!("/Groups/{gid}"),
            &patch_op(json!([{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": id}]}])),
        )
        .await;
    assert_eq!(member_ids(&removed), sorted(&[&manager]));
    let read = entra
        .get(&format!("/Groups/{gid}?excludedAttributes=members"))
        .await;
    assert!(read.get("members").is_none(), "{read}");
    assert_member_event(&app, before, "group.member_removed", &app_id).await;
    entra.app_group("displayName", &[]).await;

    // Hard delete (E21): 204, then 404. The app user is deactivated by the
    // directory (default policy on_delete = deactivate); the app group goes.
    let before = app.last_seq().await;
    entra.delete(&format!("/Users/{id}")).await;
    entra.gone(&format!("/Users/{id}")).await;
    events_since(&app, before, &["user.deactivated"]).await;
    assert_status(&app, email, "DEACTIVATED", Some("directory")).await;
    let before = app.last_seq().await;
    entra.delete(&format!("/Groups/{gid}")).await;
    entra.gone(&format!("/Groups/{gid}")).await;
    events_since(&app, before, &["group.deleted"]).await;
    assert!(entra.app_groups().await.is_empty());
}

#[tokio::test]
async fn okta_provisioning_sequence_round_trips() {
    let app = spawn_app().await;
    let mut okta = Vendor::new(&app, "okta").await;
    // O10: the provisioning engine's User-Agent; POSTs in application/json, GETs
    // with a Content-Type of their own.
    okta.user_agent = Some("Okta SCIM Client 1.0.0");
    okta.content_type = "application/json";
    okta.bodiless_content_type = Some("application/scim+json; charset=utf-8");

    // Existence check, URL-encoded, with paging parameters (O1).
    let none = okta
        .get("/Users?filter=userName%20eq%20%22test.user%40okta.local%22&startIndex=1&count=100")
        .await;
    listed(&none, &[]);
    assert_eq!(none["startIndex"], 1);
    assert_eq!(none["itemsPerPage"], 0);

    // Create with writeOnly/readOnly extras (O2): 201 with the full resource.
    let email = "test.user@okta.local";
    let before = app.last_seq().await;
    let user = okta
        .post(
            "/Users",
            &json!({
                "schemas": [USER],
                "userName": "test.user@okta.local",
                "name": {"givenName": "Test", "familyName": "User"},
                "emails": [{"primary": true, "value": "test.user@okta.local", "type": "work"}],
                "displayName": "Test User",
                "locale": "en-US",
                "externalId": "00ujl29u0le5T6Aj10h7",
                "groups": [],
                "password": "1mz050nq",
                "active": true
            }),
        )
        .await;
    let id = id_of(&user);
    assert_eq!(user["userName"], "test.user@okta.local");
    assert_eq!(user["name"]["givenName"], "Test");
    assert_eq!(user["externalId"], "00ujl29u0le5T6Aj10h7");
    assert!(user.get("password").is_none(), "{user}");
    assert!(user.get("groups").is_none(), "{user}");
    let app_id = assert_created(&app, before, email).await["id"].clone();
    let person = app_user(&app, email).await;
    assert_eq!(
        (&person["given_name"], &person["family_name"]),
        (&json!("Test"), &json!("User"))
    );
    assert_eq!(person["display_name"], "Test User");

    // Find: by id, by a differently cased userName (O13), the page walk (O4).
    okta.get(&format!("/Users/{id}")).await;
    listed(
        &okta
            .get("/Users?filter=userName%20eq%20%22TEST.USER%40OKTA.LOCAL%22")
            .await,
        &[&id],
    );
    let page = okta.get("/Users?startIndex=1&count=100").await;
    listed(&page, &[&id]);
    // Ids that are not UUIDs name nothing (O11).
    okta.gone("/Users/010101001010101011001010101011").await;

    // Update: GET + full PUT echoing id, meta, groups, emails[].display (O5).
    let before = app.last_seq().await;
    let put = okta
        .put(
            &format!("/Users/{id}"),
            &json!({
                "schemas": [USER],
                "id": id,
                "userName": "test.user@okta.local",
                "name": {"givenName": "Another", "middleName": "Excited", "familyName": "User"},
                "emails": [{"primary": true, "value": "test.user@okta.local", "type": "work", "display": "test.user@okta.local"}],
                "displayName": "Another User",
                "locale": "en-US",
                "externalId": "00ujl29u0le5T6Aj10h7",
                "groups": [],
                "active": true,
                "meta": {"resourceType": "User"}
            }),
        )
        .await;
    assert_eq!(put["name"]["middleName"], "Excited");
    assert_eq!(put["displayName"], "Another User");
    // middleName is not an app field; the finds before emitted nothing.
    assert_updated(&app, before, &["given_name", "display_name"]).await;
    assert_eq!(app_user(&app, email).await["given_name"], "Another");

    // Deactivate and reactivate: path-less replace (O6).
    for (active, event, status, by) in [
        (false, "user.deactivated", "DEACTIVATED", Some("directory")),
        (true, "user.reactivated", "PENDING", None),
    ] {
        let before = app.last_seq().await;
        let user = okta
            .patch(
                &format!("/Users/{id}"),
                &patch_op(json!([{"op": "replace", "value": {"active": active}}])),
            )
            .await;
        assert_eq!(user["active"], active);
        events_since(&app, before, &[event]).await;
        assert_status(&app, email, status, by).await;
    }

    // Groups: list (O17), create, rename path-less with the group's own id (O8).
    listed(&okta.get("/Groups?startIndex=1&count=100").await, &[]);
    let before = app.last_seq().await;
    let group = okta
        .post(
            "/Groups",
            &json!({"schemas": [GROUP], "displayName": "Test SCIMv2", "members": []}),
        )
        .await;
    let gid = id_of(&group);
    events_since(&app, before, &["group.created"]).await;
    okta.app_group("Test SCIMv2", &[]).await;
    let before = app.last_seq().await;
    let renamed = okta
        .patch(
            &format!("/Groups/{gid}"),
            &patch_op(json!([{"op": "replace", "value": {"id": gid, "displayName": "Test SCIMv2 renamed"}}])),
        )
        .await;
    assert_eq!(renamed["displayName"], "Test SCIMv2 renamed");
    let events = events_since(&app, before, &["group.updated"]).await;
    assert_eq!(events[0]["data"]["changed"], json!(["name"]), "{events:?}");
    let name = "Test SCIMv2 renamed";
    okta.app_group(name, &[]).await;

    // Membership: remove-by-filter of a non-member, then add, in one request (O9).
    let before = app.last_seq().await;
    let added = okta
        .patch(
            &format!("/Groups/{gid}"),
            &patch_op(json!([
                {"op": "remove", "path": "members[value eq \"89bb1940-b905-4575-9e7f-6f887cfb368e\"]"},
                {"op": "add", "path": "members", "value": [{"value": id, "display": "test.user@okta.local"}]}
            ])),
        )
        .await;
    assert_eq!(member_ids(&added), sorted(&[&id]));
    assert_eq!(added["members"][0]["display"], "test.user@okta.local");
    assert_member_event(&app, before, "group.member_added", &app_id).await;
    okta.app_group(name, &[&app_id]).await;
    let before = app.last_seq().await;
    let removed = okta
        .patch(
            &format!("/Groups/{gid}"),
            &patch_op(json!([{"op": "remove", "path": format!("members[value eq \"{id}\"]")}])),
        )
        .await;
    assert_eq!(member_ids(&removed), Vec::<String>::new());
    assert_member_event(&app, before, "group.member_removed", &app_id).await;
    okta.app_group(name, &[]).await;

    // Okta never deletes users (O7): deactivation, and the user stays readable.
    let before = app.last_seq().await;
    let off = okta
        .patch(
            &format!("/Users/{id}"),
            &patch_op(json!([{"op": "replace", "value": {"active": false}}])),
        )
        .await;
    assert_eq!(off["active"], false);
    assert_eq!(okta.get(&format!("/Users/{id}")).await["active"], false);
    events_since(&app, before, &["user.deactivated"]).await;
    assert_status(&app, email, "DEACTIVATED", Some("directory")).await;

    // Groups are deleted.
    let before = app.last_seq().await;
    okta.delete(&format!("/Groups/{gid}")).await;
    okta.gone(&format!("/Groups/{gid}")).await;
    events_since(&app, before, &["group.deleted"]).await;
    assert!(okta.app_groups().await.is_empty());
    assert_status(&app, email, "DEACTIVATED", Some("directory")).await;
}

/// OneLogin's "SCIM v2 Enterprise" template as rendered for one user (OL-TPL):
/// `id` null and `meta` (L5), string booleans (L4), a lone `emails` object (L3),
/// the extension without its URN in `schemas` (L6), `managerId` (L7).
fn onelogin_v2_user(active: &str, title: &str, manager_id: &str) -> Value {
    json!({
        "schemas": [USER],
        "id": null,
        "meta": {"resourceType": "User"},
        "userName": "ann.lee@example.com",
        "externalId": "107391853",
        "name": {"givenName": "Ann", "familyName": "Lee"},
        "emails": {"value": "ann.lee@example.com", "type": "work", "primary": true},
        "title": title,
        "active": active,
        ENTERPRISE: {
            "department": "Sales",
            "manager": {"managerId": manager_id, "displayName": " "}
        }
    })
}

#[tokio::test]
async fn onelogin_provisioning_sequence_round_trips() {
    let app = spawn_app().await;
    let mut onelogin = Vendor::new(&app, "onelogin").await;
    onelogin.content_type = "application/json";
    onelogin.accept = Some("application/json");

    // Initial connection: a userName known not to exist (L1).
    listed(
        &onelogin
            .get("/Users?filter=userName%20eq%20%22onelogin-probe-do-not-create%22")
            .await,
        &[],
    );
    listed(
        &onelogin
            .get("/Users?filter=userName%20eq%20%22ann.lee%40example.com%22")
            .await,
        &[],
    );

    // Create from the template, no manager yet (L7: empty strings = none).
    let email = "ann.lee@example.com";
    let before = app.last_seq().await;
    let user = onelogin
        .post("/Users", &onelogin_v2_user("true", "Rep", ""))
        .await;
    let id = id_of(&user);
    assert_eq!(user["schemas"], json!([USER, ENTERPRISE]));
    assert_eq!(user["active"], true);
    assert_eq!(
        user["emails"],
        json!([{"value": "ann.lee@example.com", "type": "work", "primary": true}])
    );
    assert_eq!(user[ENTERPRISE], json!({"department": "Sales"}));
    onelogin.get(&format!("/Users/{id}")).await;
    let app_id = assert_created(&app, before, email).await["id"].clone();
    let person = app_user(&app, email).await;
    assert_eq!(
        (&person["given_name"], &person["family_name"]),
        (&json!("Ann"), &json!("Lee"))
    );
    assert_eq!(
        (&person["title"], &person["department"], &person["manager"]),
        (&json!("Rep"), &json!("Sales"), &Value::Null)
    );

    // Update with PUT (L8), now with a manager id.
    let before = app.last_seq().await;
    let put = onelogin
        .put(
            &format!("/Users/{id}"),
            &onelogin_v2_user("true", "Lead", "m-42"),
        )
        .await;
    assert_eq!(put["title"], "Lead");
    assert_eq!(put[ENTERPRISE]["manager"], json!({"value": "m-42"}));
    assert_updated(&app, before, &["title", "manager"]).await;
    let person = app_user(&app, email).await;
    assert_eq!(
        (&person["title"], &person["manager"]),
        (&json!("Lead"), &json!("m-42"))
    );

    // Suspend and unsuspend are PUTs of the template with the string boolean (L4, L8).
    for (active, expected, event, status, by) in [
        (
            "false",
            false,
            "user.deactivated",
            "DEACTIVATED",
            Some("directory"),
        ),
        ("true", true, "user.reactivated", "PENDING", None),
    ] {
        let before = app.last_seq().await;
        let user = onelogin
            .put(
                &format!("/Users/{id}"),
                &onelogin_v2_user(active, "Lead", "m-42"),
            )
            .await;
        assert_eq!(user["active"], expected);
        events_since(&app, before, &[event]).await;
        assert_status(&app, email, status, by).await;
    }

    // Groups are listed, not filtered (L11).
    let before = app.last_seq().await;
    let group = onelogin
        .post(
            "/Groups",
            &json!({"schemas": [GROUP], "displayName": "Sales"}),
        )
        .await;
    let gid = id_of(&group);
    listed(&onelogin.get("/Groups").await, &[&gid]);
    events_since(&app, before, &["group.created"]).await;
    onelogin.app_group("Sales", &[]).await;
    let before = app.last_seq().await;
    let added = onelogin
        .patch(
            &format!("/Groups/{gid}"),
            &patch_op(json!([{"op": "add", "path": "members", "value": [{"value": id}]}])),
        )
        .await;
    assert_eq!(member_ids(&added), sorted(&[&id]));
    assert_member_event(&app, before, "group.member_added", &app_id).await;
    onelogin.app_group("Sales", &[&app_id]).await;
    let before = app.last_seq().await;
    let removed = onelogin
        .patch(
            &format!("/Groups/{gid}"),
            &patch_op(json!([{"op": "remove", "path": format!("members[value eq \"{id}\"]")}])),
        )
        .await;
    assert_eq!(member_ids(&removed), Vec::<String>::new());
    assert_member_event(&app, before, "group.member_removed", &app_id).await;
    onelogin.app_group("Sales", &[]).await;

    // "When users are deleted in OneLogin: Delete" (L8): deactivated by the
    // directory under the default policy (on_delete = deactivate).
    let before = app.last_seq().await;
    onelogin.delete(&format!("/Users/{id}")).await;
    onelogin.gone(&format!("/Users/{id}")).await;
    events_since(&app, before, &["user.deactivated"]).await;
    assert_status(&app, email, "DEACTIVATED", Some("directory")).await;
    let before = app.last_seq().await;
    onelogin.delete(&format!("/Groups/{gid}")).await;
    events_since(&app, before, &["group.deleted"]).await;
    assert!(onelogin.app_groups().await.is_empty());
}

#[tokio::test]
async fn onelogin_scim_1_1_connector_sequence_round_trips() {
    let app = spawn_app().await;
    let mut onelogin = Vendor::new(&app, "onelogin").await;
    onelogin.content_type = "application/json";
    // No Accept header: the directory's vendor alone selects plain JSON.

    let user = |active: &str| {
        json!({
            "schemas": ["urn:scim:schemas:core:1.0", "urn:scim:schemas:extension:enterprise:1.0"],
            "userName": "bo.ng@example.com",
            "name": {"givenName": "Bo", "familyName": "Ng"},
            "emails": [{"value": "bo.ng@example.com", "type": "work", "primary": true}],
            "active": active,
            "urn:scim:schemas:extension:enterprise:1.0": {"employeeNumber": "7", "manager": {"managerId": ""}}
        })
    };
    listed(
        &onelogin
            .get("/Users?filter=userName%20eq%20%22bo.ng%40example.com%22")
            .await,
        &[],
    );
    // SCIM 1.1 URNs are read as their 2.0 schemas (L2).
    let email = "bo.ng@example.com";
    let before = app.last_seq().await;
    let created = onelogin.post("/Users", &user("true")).await;
    let id = id_of(&created);
    assert_eq!(created["schemas"], json!([USER, ENTERPRISE]));
    assert_eq!(created[ENTERPRISE], json!({"employeeNumber": "7"}));
    let app_id = assert_created(&app, before, email).await["id"].clone();
    let person = app_user(&app, email).await;
    assert_eq!(
        (&person["given_name"], &person["family_name"]),
        (&json!("Bo"), &json!("Ng"))
    );
    assert_eq!(
        (&person["employee_number"], &person["manager"]),
        (&json!("7"), &Value::Null)
    );
    listed(
        &onelogin
            .get("/Users?filter=userName%20eq%20%22bo.ng%40example.com%22")
            .await,
        &[&id],
    );
    for (active, expected, event, status, by) in [
        (
            "false",
            false,
            "user.deactivated",
            "DEACTIVATED",
            Some("directory"),
        ),
        ("true", true, "user.reactivated", "PENDING", None),
    ] {
        let before = app.last_seq().await;
        let put = onelogin.put(&format!("/Users/{id}"), &user(active)).await;
        assert_eq!(put["active"], expected);
        events_since(&app, before, &[event]).await;
        assert_status(&app, email, status, by).await;
    }

    let before = app.last_seq().await;
    let gid = id_of(
        &onelogin
            .post(
                "/Groups",
                &json!({"schemas": ["urn:scim:schemas:core:1.0"], "displayName": "Ops"}),
            )
            .await,
    );
    events_since(&app, before, &["group.created"]).await;
    onelogin.app_group("Ops", &[]).await;
    // Group membership as SCIM 1.1 PATCH without Operations (L9).
    let before = app.last_seq().await;
    let added = onelogin
        .patch(
            &format!("/Groups/{gid}"),
            &json!({"members": [{"value": id, "operation": "add"}]}),
        )
        .await;
    assert_eq!(member_ids(&added), sorted(&[&id]));
    assert_member_event(&app, before, "group.member_added", &app_id).await;
    onelogin.app_group("Ops", &[&app_id]).await;
    let before = app.last_seq().await;
    let removed = onelogin
        .patch(
            &format!("/Groups/{gid}"),
            &json!({"members": [{"value": id, "operation": "delete"}]}),
        )
        .await;
    assert_eq!(member_ids(&removed), Vec::<String>::new());
    assert_member_event(&app, before, "group.member_removed", &app_id).await;
    onelogin.app_group("Ops", &[]).await;

    // Delete: deactivated by the directory (default policy); the group stays.
    let before = app.last_seq().await;
    onelogin.delete(&format!("/Users/{id}")).await;
    onelogin.gone(&format!("/Users/{id}")).await;
    events_since(&app, before, &["user.deactivated"]).await;
    assert_status(&app, email, "DEACTIVATED", Some("directory")).await;
    onelogin.app_group("Ops", &[]).await;
}

#[tokio::test]
async fn jumpcloud_provisioning_sequence_round_trips() {
    let app = spawn_app().await;
    let jumpcloud = Vendor::new(&app, "jumpcloud").await;

    // Connection check: a plain GET /Users, empty (J6).
    listed(&jumpcloud.get("/Users").await, &[]);

    // Test/Activate: a test user and a test group are created, then deleted (J1).
    let before = app.last_seq().await;
    let test_user = id_of(
        &jumpcloud
            .post(
                "/Users",
                &json!({"schemas": [USER], "userName": "scim-test@example.com", "active": true,
                        "emails": [{"value": "scim-test@example.com", "type": "work", "primary": true}]}),
            )
            .await,
    );
    let probe = assert_created(&app, before, "scim-test@example.com").await;
    let before = app.last_seq().await;
    let test_group = id_of(
        &jumpcloud
            .post(
                "/Groups",
                &json!({"schemas": [GROUP], "displayName": "JumpCloud Test Group", "members": [{"value": test_user}]}),
            )
            .await,
    );
    let events = events_since(&app, before, &["group.created", "group.member_added"]).await;
    assert_eq!(events[1]["data"]["user_id"], probe["id"], "{events:?}");
    jumpcloud
        .app_group("JumpCloud Test Group", &[&probe["id"]])
        .await;
    let before = app.last_seq().await;
    jumpcloud.delete(&format!("/Groups/{test_group}")).await;
    events_since(&app, before, &["group.deleted"]).await;
    assert!(jumpcloud.app_groups().await.is_empty());
    let before = app.last_seq().await;
    jumpcloud.delete(&format!("/Users/{test_user}")).await;
    listed(&jumpcloud.get("/Users").await, &[]);
    // The test user stays, deactivated by the directory (default on_delete).
    events_since(&app, before, &["user.deactivated"]).await;
    assert_status(
        &app,
        "scim-test@example.com",
        "DEACTIVATED",
        Some("directory"),
    )
    .await;

    // Existence check, then create with core attributes only (J5).
    let email = "cy.park@example.com";
    let before = app.last_seq().await;
    listed(
        &jumpcloud
            .get("/Users?filter=userName%20eq%20%22cy.park%40example.com%22")
            .await,
        &[],
    );
    let user = jumpcloud
        .post(
            "/Users",
            &json!({
                "schemas": [USER],
                "userName": "cy.park@example.com",
                "externalId": "5f1e7c2a9b3d4e0012345678",
                "name": {"givenName": "Cy", "familyName": "Park"},
                "displayName": "Cy Park",
                "emails": [{"value": "cy.park@example.com", "type": "work", "primary": true}],
                "active": true
            }),
        )
        .await;
    let id = id_of(&user);
    assert!(user.get(ENTERPRISE).is_none(), "{user}");
    jumpcloud.get(&format!("/Users/{id}")).await;
    let app_id = assert_created(&app, before, email).await["id"].clone();
    let person = app_user(&app, email).await;
    assert_eq!(
        (&person["given_name"], &person["family_name"]),
        (&json!("Cy"), &json!("Park"))
    );
    assert_eq!(person["display_name"], "Cy Park");

    // Update (JumpCloud does not publish its update payload; RFC PATCH form).
    let before = app.last_seq().await;
    let updated = jumpcloud
        .patch(
            &format!("/Users/{id}"),
            &patch_op(json!([{"op": "replace", "path": "displayName", "value": "Cy J. Park"}])),
        )
        .await;
    assert_eq!(updated["displayName"], "Cy J. Park");
    assert_updated(&app, before, &["display_name"]).await;
    assert_eq!(app_user(&app, email).await["display_name"], "Cy J. Park");

    // Groups: lookup by displayName (J3), created with members (never empty),
    // a second create of the same name is 409 uniqueness so JumpCloud adopts it.
    listed(
        &jumpcloud
            .get("/Groups?filter=displayName%20eq%20%22Engineering%22")
            .await,
        &[],
    );
    let before = app.last_seq().await;
    let other = id_of(
        &jumpcloud
            .post(
                "/Users",
                &json!({"schemas": [USER], "userName": "di.roe@example.com", "active": true}),
            )
            .await,
    );
    // No email: skipped, as app users are matched by email
    // (docs/reconciliation.md, rule 2).
    events_since(&app, before, &[]).await;
    assert!(app.app_user("di.roe@example.com").await.is_none());
    let before = app.last_seq().await;
    let group = jumpcloud
        .post(
            "/Groups",
            &json!({"schemas": [GROUP], "displayName": "Engineering", "members": [{"value": other}]}),
        )
        .await;
    let gid = id_of(&group);
    assert_eq!(member_ids(&group), sorted(&[&other]));
    events_since(&app, before, &["group.created"]).await;
    jumpcloud.app_group("Engineering", &[]).await;
    let before = app.last_seq().await;
    let again = jumpcloud
        .expect(
            Method::POST,
            "/Groups",
            Some(&json!({"schemas": [GROUP], "displayName": "engineering", "members": [{"value": other}]})),
            409,
        )
        .await;
    assert_eq!(again["scimType"], "uniqueness");
    listed(
        &jumpcloud
            .get("/Groups?filter=displayName%20eq%20%22Engineering%22")
            .await,
        &[&gid],
    );
    events_since(&app, before, &[]).await;

    // Member add and Entra-style removal by value list (J4): only the listed one goes.
    let before = app.last_seq().await;
    let added = jumpcloud
        .patch(
            &format!("/Groups/{gid}"),
            &patch_op(json!([{"op": "add", "path": "members", "value": [{"value": id}]}])),
        )
        .await;
    assert_eq!(member_ids(&added), sorted(&[&id, &other]));
    assert_member_event(&app, before, "group.member_added", &app_id).await;
    jumpcloud.app_group("Engineering", &[&app_id]).await;
    let before = app.last_seq().await;
    let removed = jumpcloud
        .patch(
            &format!("/Groups/{gid}"),
            &patch_op(json!([{"op": "remove", "path": "members", "value": [{"value": id}]}])),
        )
        .await;
    assert_eq!(member_ids(&removed), sorted(&[&other]));
    assert_member_event(&app, before, "group.member_removed", &app_id).await;
    jumpcloud.app_group("Engineering", &[]).await;

    // Deprovisioning is deactivation (J2); access granted again is reactivation.
    for (active, event, status, by) in [
        (false, "user.deactivated", "DEACTIVATED", Some("directory")),
        (true, "user.reactivated", "PENDING", None),
        (false, "user.deactivated", "DEACTIVATED", Some("directory")),
    ] {
        let before = app.last_seq().await;
        let user = jumpcloud
            .patch(
                &format!("/Users/{id}"),
                &patch_op(json!([{"op": "replace", "path": "active", "value": active}])),
            )
            .await;
        assert_eq!(user["active"], active);
        events_since(&app, before, &[event]).await;
        assert_status(&app, email, status, by).await;
    }
    assert_eq!(
        jumpcloud.get(&format!("/Users/{id}")).await["active"],
        false
    );

    let before = app.last_seq().await;
    jumpcloud.delete(&format!("/Groups/{gid}")).await;
    jumpcloud.gone(&format!("/Groups/{gid}")).await;
    events_since(&app, before, &["group.deleted"]).await;
    assert!(jumpcloud.app_groups().await.is_empty());
}

/// PingFederate always writes users whole (P1), with `type` and `primary` on
/// multi-valued attributes (P5).
fn ping_user(active: bool, title: &str) -> Value {
    json!({
        "schemas": [USER],
        "userName": "eve.kim",
        "name": {"givenName": "Eve", "familyName": "Kim"},
        "emails": [
            {"value": "eve.kim@example.com", "type": "work", "primary": true},
            {"value": "eve.kim@example.com", "type": "other", "primary": true}
        ],
        "title": title,
        "active": active
    })
}

#[tokio::test]
async fn ping_provisioning_sequence_round_trips() {
    let app = spawn_app().await;
    let ping = Vendor::new(&app, "pingone").await;

    // Matching filters: userName, and the complex `emails` without a
    // sub-attribute (P2), quoted and as admins sometimes leave them unquoted.
    for filter in [
        "userName%20eq%20%22eve.kim%22",
        "emails%20eq%20%22eve.kim%40example.com%22",
        "emails%20eq%20eve.kim%40example.com",
    ] {
        listed(&ping.get(&format!("/Users?filter={filter}")).await, &[]);
    }

    // Create; two emails flagged primary keep only the first (P5).
    let email = "eve.kim@example.com";
    let before = app.last_seq().await;
    let user = ping.post("/Users", &ping_user(true, "Analyst")).await;
    let id = id_of(&user);
    assert_eq!(
        user["emails"],
        json!([
            {"value": "eve.kim@example.com", "type": "work", "primary": true},
            {"value": "eve.kim@example.com", "type": "other", "primary": false}
        ])
    );
    for filter in [
        "userName%20eq%20%22eve.kim%22",
        "emails%20eq%20%22eve.kim%40example.com%22",
        "emails%20eq%20eve.kim%40example.com",
    ] {
        listed(&ping.get(&format!("/Users?filter={filter}")).await, &[&id]);
    }
    ping.get(&format!("/Users/{id}")).await;
    let app_id = assert_created(&app, before, email).await["id"].clone();
    let person = app_user(&app, email).await;
    assert_eq!(
        (&person["given_name"], &person["family_name"]),
        (&json!("Eve"), &json!("Kim"))
    );
    assert_eq!(person["title"], "Analyst");

    // Update, disable (Remove User Action: Disable) and enable: full PUTs (P1, P7).
    let before = app.last_seq().await;
    let put = ping
        .put(&format!("/Users/{id}"), &ping_user(true, "Lead Analyst"))
        .await;
    assert_eq!(put["title"], "Lead Analyst");
    assert_updated(&app, before, &["title"]).await;
    assert_eq!(app_user(&app, email).await["title"], "Lead Analyst");
    for (active, event, status, by) in [
        (false, "user.deactivated", "DEACTIVATED", Some("directory")),
        (true, "user.reactivated", "PENDING", None),
    ] {
        let before = app.last_seq().await;
        let user = ping
            .put(&format!("/Users/{id}"), &ping_user(active, "Lead Analyst"))
            .await;
        assert_eq!(user["active"], active);
        events_since(&app, before, &[event]).await;
        assert_status(&app, email, status, by).await;
    }
    // A user provisioned disabled (P7), without an email: skipped, as app
    // users are matched by email (docs/reconciliation.md, rule 2).
    let before = app.last_seq().await;
    let disabled = ping
        .post(
            "/Users",
            &json!({"schemas": [USER], "userName": "fay.lo", "active": false}),
        )
        .await;
    assert_eq!(disabled["active"], false);
    let fay = id_of(&disabled);
    events_since(&app, before, &[]).await;
    assert_eq!(app.app_users().await.len(), 1);

    // Groups: found by listing them all (P3), carrying only displayName and
    // members (P4).
    listed(&ping.get("/Groups").await, &[]);
    let before = app.last_seq().await;
    let group = ping
        .post(
            "/Groups",
            &json!({"schemas": [GROUP], "displayName": "Sales", "members": [{"value": fay}]}),
        )
        .await;
    let gid = id_of(&group);
    assert!(group.get("externalId").is_none(), "{group}");
    listed(&ping.get("/Groups?startIndex=1&count=100").await, &[&gid]);
    events_since(&app, before, &["group.created"]).await;
    ping.app_group("Sales", &[]).await;
    let before = app.last_seq().await;
    let added = ping
        .patch(
            &format!("/Groups/{gid}"),
            &patch_op(json!([{"op": "add", "path": "members", "value": [{"value": id}]}])),
        )
        .await;
    assert_eq!(member_ids(&added), sorted(&[&id, &fay]));
    assert_member_event(&app, before, "group.member_added", &app_id).await;
    ping.app_group("Sales", &[&app_id]).await;
    let before = app.last_seq().await;
    let removed = ping
        .patch(
            &format!("/Groups/{gid}"),
            &patch_op(json!([{"op": "remove", "path": format!("members[value eq \"{id}\"]")}])),
        )
        .await;
    assert_eq!(member_ids(&removed), sorted(&[&fay]));
    assert_member_event(&app, before, "group.member_removed", &app_id).await;
    ping.app_group("Sales", &[]).await;

    // Remove User Action: Delete (P7): deactivated by the directory under the
    // default policy (on_delete = deactivate).
    let before = app.last_seq().await;
    ping.delete(&format!("/Users/{id}")).await;
    ping.gone(&format!("/Users/{id}")).await;
    events_since(&app, before, &["user.deactivated"]).await;
    assert_status(&app, email, "DEACTIVATED", Some("directory")).await;
    let before = app.last_seq().await;
    ping.delete(&format!("/Groups/{gid}")).await;
    events_since(&app, before, &["group.deleted"]).await;
    assert!(ping.app_groups().await.is_empty());
}

#[tokio::test]
async fn users_may_share_an_external_id() {
    // M4: Microsoft's reference collection posts five users with one externalId;
    // only userName is unique (O18: the client's externalId is opaque).
    let app = spawn_app().await;
    let entra = Vendor::new(&app, "entra").await;
    let mut ids = Vec::new();
    for n in 0..2 {
        let user = entra
            .post(
                "/Users",
                &json!({"schemas": [USER], "userName": format!("garbage{n}"),
                        "externalId": "22fbc523-6032-4c5f-939d-5d4850cf3e52"}),
            )
            .await;
        ids.push(id_of(&user));
    }
    let found = entra
        .get("/Users?filter=externalId+eq+%2222fbc523-6032-4c5f-939d-5d4850cf3e52%22")
        .await;
    listed(&found, &[&ids[0], &ids[1]]);
}
