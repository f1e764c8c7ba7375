//! `attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5, §3.9) on every
//! response that carries resources, `returned: never` for `password`, and
//! group reads that leave the membership table alone when members are excluded.

use serde_json::{Value, json};

use crate::helpers::{TestApp, enc, header, json, patch_op, spawn_app};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn rich_user(user_name: &str) -> Value {
    json!({
        "schemas": [USER, ENTERPRISE],
        "userName": user_name,
        "externalId": "ext",
        "title": "Guide",
        "password": "t1meMa$heen",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [{"value": user_name, "type": "work", "primary": true}],
        ENTERPRISE: {"employeeNumber": "42", "department": "Tours"}
    })
}

fn keys(resource: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = resource
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

async fn user_with_group(app: &TestApp) -> String {
    let id = app
        .post_created("/Users", &rich_user("proj@example.com"))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.create_group("Projected", &[&id]).await;
    id
}

#[tokio::test]
async fn attributes_on_get_returns_only_those_plus_id_and_schemas() {
    let app = spawn_app().await;
    let id = user_with_group(&app).await;
    let user = app
        .get_ok(&format!("/Users/{id}?attributes=userName,name.givenName"))
        .await;
    assert_eq!(
        user,
        json!({
            "schemas": [USER],
            "id": id,
            "userName": "proj@example.com",
            "name": {"givenName": "Barbara"}
        })
    );
    let ext = app
        .get_ok(&format!(
            "/Users/{id}?attributes={}",
            enc(&format!("{ENTERPRISE}:employeeNumber"))
        ))
        .await;
    assert_eq!(
        ext,
        json!({"schemas": [USER, ENTERPRISE], "id": id, ENTERPRISE: {"employeeNumber": "42"}})
    );
    let meta = app
        .get_ok(&format!("/Users/{id}?attributes=meta,groups"))
        .await;
    assert_eq!(keys(&meta), ["groups", "id", "meta", "schemas"]);
    assert_eq!(meta["groups"][0]["display"], "Projected");
}

#[tokio::test]
async fn excluded_attributes_on_get_removes_those_only() {
    let app = spawn_app().await;
    let id = user_with_group(&app).await;
    let full = app.get_ok(&format!("/Users/{id}")).await;
    let user = app
        .get_ok(&format!(
            "/Users/{id}?excludedAttributes=emails,name,groups,{ENTERPRISE}"
        ))
        .await;
    let mut expected = full.clone();
    for gone in ["emails", "name", "groups", ENTERPRISE] {
        expected.as_object_mut().unwrap().shift_remove(gone);
    }
    expected["schemas"] = json!([USER]);
    assert_eq!(user, expected);
    // id and schemas are never excluded.
    let user = app
        .get_ok(&format!(
            "/Users/{id}?excludedAttributes=id,schemas,userName"
        ))
        .await;
    assert_eq!(user["id"], json!(id));
    assert!(user["schemas"].is_array());
    assert!(user.get("userName").is_none());
}

#[tokio::test]
async fn projection_applies_to_lists_and_searches() {
    let app = spawn_app().await;
    let id = user_with_group(&app).await;
    let list = app.get_ok("/Users?attributes=userName").await;
    assert_eq!(
        list["Resources"],
        json!([{"schemas": [USER], "id": id, "userName": "proj@example.com"}])
    );
    let list = app
        .get_ok("/Users?excludedAttributes=groups,meta,emails")
        .await;
    let resource = &list["Resources"][0];
    assert!(resource.get("groups").is_none());
    assert!(resource.get("meta").is_none());
    assert!(resource.get("emails").is_none());
    assert_eq!(resource["title"], "Guide");

    let searched = json(
        app.post(
            "/Users/.search",
            &json!({"attributes": ["title", "externalId"], "filter": "userName pr"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        searched["Resources"],
        json!([{"schemas": [USER], "id": id, "externalId": "ext", "title": "Guide"}])
    );
    let searched = json(
        app.post(
            "/Users/.search",
            &json!({"excludedAttributes": "name,emails,groups,meta,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        keys(&searched["Resources"][0]),
        ["active", "externalId", "id", "schemas", "title", "userName"]
    );
    let root = json(
        app.post("/.search", &json!({"attributes": "displayName"}))
            .await,
    )
    .await;
    for resource in root["Resources"].as_array().unwrap() {
        assert!(
            keys(resource)
                .iter()
                .all(|k| ["schemas", "id", "displayName"].contains(k)),
            "{resource}"
        );
    }
    assert_eq!(root["Resources"][1]["displayName"], "Projected");
}

#[tokio::test]
async fn projection_applies_to_write_responses() {
    let app = spawn_app().await;
    let res = app
        .post("/Users?attributes=userName", &rich_user("w@example.com"))
        .await;
    assert_eq!(res.status(), 201);
    let location = header(&res, "location");
    let created = json(res).await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created,
        json!({"schemas": [USER], "id": id, "userName": "w@example.com"})
    );
    assert!(location.ends_with(&id));
    // The projection shaped the answer; the whole user was stored.
    let stored = app.get_ok(&format!("/Users/{id}")).await;
    assert_eq!(stored["title"], "Guide");

    let mut body = rich_user("w@example.com");
    body["title"] = json!("Chief");
    let res = app
        .put(
            &format!("/Users/{id}?excludedAttributes=name,emails,meta"),
            &body,
        )
        .await;
    assert_eq!(res.status(), 200);
    let replaced = json(res).await;
    assert_eq!(replaced["title"], "Chief");
    assert!(replaced.get("name").is_none() && replaced.get("meta").is_none());

    let res = app
        .patch(
            &format!("/Users/{id}?attributes=title"),
            &patch_op(json!([{"op": "replace", "path": "title", "value": "Boss"}])),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        json(res).await,
        json!({"schemas": [USER], "id": id, "title": "Boss"})
    );

    let group = app
        .post(
            "/Groups?excludedAttributes=members",
            &json!({"displayName": "G", "members": [{"value": id}]}),
        )
        .await;
    assert_eq!(group.status(), 201);
    let group = json(group).await;
    assert!(group.get("members").is_none(), "{group}");
    let gid = group["id"].as_str().unwrap();
    let stored = app.get_ok(&format!("/Groups/{gid}")).await;
    assert_eq!(stored["members"][0]["value"], json!(id));
}

#[tokio::test]
async fn password_is_never_returned() {
    let app = spawn_app().await;
    let created = app
        .post_created("/Users", &rich_user("pw@example.com"))
        .await;
    assert!(created.get("password").is_none());
    let id = created["id"].as_str().unwrap();
    let mut responses = vec![
        app.get_ok(&format!("/Users/{id}")).await,
        app.get_ok(&format!("/Users/{id}?attributes=password"))
            .await,
        app.get_ok(&format!("/Users/{id}?attributes=password,userName"))
            .await,
        app.get_ok("/Users?attributes=password").await["Resources"][0].clone(),
        app.get_ok("/Users").await["Resources"][0].clone(),
    ];
    let searched = json(
        app.post("/Users/.search", &json!({"attributes": ["password"]}))
            .await,
    )
    .await;
    responses.push(searched["Resources"][0].clone());
    let patched = app
        .patch(
            &format!("/Users/{id}?attributes=password"),
            &patch_op(json!([{"op": "replace", "path": "password", "value": "n3w"}])),
        )
        .await;
    assert_eq!(patched.status(), 200);
    responses.push(json(patched).await);
    let mut body = rich_user("pw@example.com");
    body["password"] = json!("another");
    responses.push(json(app.put(&format!("/Users/{id}"), &body).await).await);
    for response in &responses {
        assert!(response.get("password").is_none(), "{response}");
        assert!(!response.to_string().contains("t1meMa$heen"), "{response}");
    }
}

#[tokio::test]
async fn groups_with_members_excluded_have_no_members() {
    let app = spawn_app().await;
    let a = app.create_user("a@example.com").await;
    let gid = app.create_group("Members", &[&a]).await;
    let one = app
        .get_ok(&format!("/Groups/{gid}?excludedAttributes=members"))
        .await;
    assert!(one.get("members").is_none());
    assert_eq!(one["displayName"], "Members");
    let list = app.get_ok("/Groups?excludedAttributes=members").await;
    assert!(list["Resources"][0].get("members").is_none());
    let only_members = app
        .get_ok(&format!("/Groups/{gid}?attributes=members.value"))
        .await;
    assert_eq!(only_members["members"], json!([{"value": a}]));
    assert!(only_members.get("displayName").is_none());
}

#[tokio::test]
async fn member_exclusion_never_reads_the_membership_table() {
    // E15: Entra reads every group with excludedAttributes=members. Hide the
    // membership table: reads that exclude members must not notice.
    let app = spawn_app().await;
    let a = app.create_user("a@example.com").await;
    let gid = app.create_group("Hidden", &[&a]).await;
    app.store
        .execute_unprepared(
            "ALTER TABLE directory_memberships RENAME TO directory_memberships_hidden",
        )
        .await
        .unwrap();

    // The proof is live: a read that wants members fails now.
    let res = app.get(&format!("/Groups/{gid}")).await;
    assert_eq!(res.status(), 500, "members must come from the hidden table");

    let one = app
        .get_ok(&format!("/Groups/{gid}?excludedAttributes=members"))
        .await;
    assert_eq!(one["displayName"], "Hidden");
    let list = app
        .get_ok(&format!(
            "/Groups?excludedAttributes=members&filter={}",
            enc(r#"displayName eq "Hidden""#)
        ))
        .await;
    assert_eq!(list["totalResults"], 1);
    let list = app.get_ok("/Groups?attributes=displayName").await;
    assert_eq!(list["Resources"][0]["displayName"], "Hidden");
    let searched = app
        .post(
            "/Groups/.search",
            &json!({"excludedAttributes": ["members"]}),
        )
        .await;
    assert_eq!(searched.status(), 200);
    // A rename through PATCH touches no membership either.
    let res = app
        .patch(
            &format!("/Groups/{gid}?excludedAttributes=members"),
            &patch_op(json!([{"op": "replace", "path": "displayName", "value": "Renamed"}])),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(json(res).await["displayName"], "Renamed");
    // Users without their groups need no membership read either.
    let user = app
        .get_ok(&format!("/Users/{a}?excludedAttributes=groups"))
        .await;
    assert_eq!(user["userName"], "a@example.com");
}

#[tokio::test]
async fn a_two_thousand_member_group_reads_small_without_members() {
    let app = spawn_app().await;
    let mut members = Vec::new();
    for chunk in 0..2 {
        let operations: Vec<Value> = (0..1000)
            .map(|i| {
                json!({"method": "POST", "path": "/Users", "bulkId": format!("u{i}"),
                       "data": {"userName": format!("m{chunk}-{i}@example.com")}})
            })
            .collect();
        let res = app
            .post(
                "/Bulk",
                &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                        "Operations": operations}),
            )
            .await;
        assert_eq!(res.status(), 200);
        let body = json(res).await;
        for op in body["Operations"].as_array().unwrap() {
            assert_eq!(op["status"], "201", "{op}");
            let location = op["location"].as_str().unwrap();
            members.push(json!({"value": location.rsplit('/').next().unwrap()}));
        }
    }
    let gid = app
        .post_created(
            "/Groups?excludedAttributes=members",
            &json!({"displayName": "Big", "members": members}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let full = app
        .get(&format!("/Groups/{gid}"))
        .await
        .text()
        .await
        .unwrap();
    let full: Value = serde_json::from_str(&full).unwrap();
    assert_eq!(full["members"].as_array().unwrap().len(), 2000);

    let slim = app
        .get(&format!("/Groups/{gid}?excludedAttributes=members"))
        .await
        .text()
        .await
        .unwrap();
    assert!(slim.len() < 1024, "{} bytes", slim.len());
    assert!(!slim.contains("members"));
    let listed = app
        .get("/Groups?excludedAttributes=members")
        .await
        .text()
        .await
        .unwrap();
    assert!(listed.len() < 1024, "{} bytes", listed.len());
    assert!(full.to_string().len() > 100 * slim.len());
}
