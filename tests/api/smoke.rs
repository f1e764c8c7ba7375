//! The walk-through of the README, end to end.

use serde_json::json;

use crate::helpers::{assert_scim_error, json, spawn_app};

#[tokio::test]
async fn create_find_patch_deactivate_and_group_a_user() {
    let app = spawn_app().await;
    let res = app
        .post(
            "/Users",
            &json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "bjensen@example.com",
                "name": {"givenName": "Barbara", "familyName": "Jensen"},
                "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}]
            }),
        )
        .await;
    assert_eq!(res.status(), 201);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let user = json(res).await;
    let id = user["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("{}/Users/{id}", app.base));
    assert_eq!(user["meta"]["location"], json!(location));

    let found = json(
        app.get("/Users?filter=userName%20eq%20%22BJENSEN@example.com%22")
            .await,
    )
    .await;
    assert_eq!(found["totalResults"], 1);
    assert_eq!(found["Resources"][0]["id"], json!(id));

    let patched = app
        .patch(
            &format!("/Users/{id}"),
            &json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [
                    {"op": "replace", "path": "displayName", "value": "Babs"},
                    {"op": "replace", "path": "active", "value": false}
                ]
            }),
        )
        .await;
    assert_eq!(patched.status(), 200);
    let patched = json(patched).await;
    assert_eq!(patched["displayName"], "Babs");
    assert_eq!(patched["active"], false);
    assert_eq!(patched["meta"]["version"], "W/\"2\"");

    let group = app.create_group("Engineering", &[&id]).await;
    let added = app
        .patch(
            &format!("/Groups/{group}"),
            &json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "add", "path": "members", "value": [{"value": id, "display": "Babs"}]}]
            }),
        )
        .await;
    assert_eq!(added.status(), 200);
    let group = json(app.get(&format!("/Groups/{group}")).await).await;
    assert_eq!(group["members"][0]["value"], json!(id));
    // Already a member: the display from the first add stands (immutable).
    assert!(group["members"][0].get("display").is_none(), "{group}");

    let user = json(app.get(&format!("/Users/{id}")).await).await;
    assert_eq!(user["groups"][0]["display"], "Engineering");

    assert_eq!(app.delete(&format!("/Users/{id}")).await.status(), 204);
    assert_scim_error(app.get(&format!("/Users/{id}")).await, 404, None).await;
}
