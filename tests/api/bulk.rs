//! `/Bulk` (RFC 7644 §3.7): bulkId references (forward ones too), circular
//! references, failOnErrors, the advertised limits, and what each operation's
//! response entry tells.

use dirsync::config::ServerSettings;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_scim_error, bulk_statuses, json, spawn_app, spawn_app_with};

const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
const BULK_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";

async fn bulk(app: &TestApp, body: Value) -> Value {
    let res = app.post("/Bulk", &body).await;
    let status = res.status();
    let out = json(res).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["schemas"], json!([BULK_RESPONSE]));
    out
}

fn request(operations: Value) -> Value {
    json!({"schemas": [BULK_REQUEST], "Operations": operations})
}

fn id_of(entry: &Value) -> String {
    entry["location"]
        .as_str()
        .unwrap_or_else(|| panic!("no location: {entry}"))
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn users_and_a_group_referencing_them_by_bulk_id_are_created() {
    let app = spawn_app().await;
    let out = bulk(
        &app,
        request(json!([
            {"method": "POST", "path": "/Users", "bulkId": "alice",
             "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "alice@example.com"}},
            {"method": "POST", "path": "/Users", "bulkId": "bob",
             "data": {"userName": "bob@example.com"}},
            {"method": "POST", "path": "/Groups", "bulkId": "team",
             "data": {"displayName": "Team", "members": [
                 {"type": "User", "value": "bulkId:alice"}, {"value": "bulkId:bob"}
             ]}}
        ])),
    )
    .await;
    let ops = out["Operations"].as_array().unwrap();
    assert_eq!(ops.len(), 3);
    for (op, bulk_id, kind) in [
        (&ops[0], "alice", "Users"),
        (&ops[1], "bob", "Users"),
        (&ops[2], "team", "Groups"),
    ] {
        assert_eq!(op["method"], "POST");
        assert_eq!(op["bulkId"], bulk_id);
        assert_eq!(op["status"], "201");
        assert_eq!(op["version"], "W/\"1\"");
        let location = op["location"].as_str().unwrap();
        assert!(
            location.starts_with(&format!("{}/{kind}/", app.base)),
            "{location}"
        );
        // The location is the resource.
        let read = app.get_ok(&format!("/{kind}/{}", id_of(op))).await;
        assert_eq!(read["meta"]["location"], json!(location));
    }
    let mut users = vec![id_of(&ops[0]), id_of(&ops[1])];
    users.sort();
    assert_eq!(app.member_ids(&id_of(&ops[2])).await, users);
    let alice = app.get_ok(&format!("/Users/{}", id_of(&ops[0]))).await;
    assert_eq!(alice["groups"][0]["display"], "Team");
}

#[tokio::test]
async fn a_forward_reference_waits_for_the_operation_it_names() {
    let app = spawn_app().await;
    let out = bulk(
        &app,
        request(json!([
            {"method": "POST", "path": "/Groups", "bulkId": "g",
             "data": {"displayName": "Forward", "members": [{"value": "bulkId:u"}]}},
            {"method": "PATCH", "path": "/Groups/bulkId:g",
             "data": {"Operations": [{"op": "replace", "path": "displayName", "value": "Forward 2"}]}},
            {"method": "POST", "path": "/Users", "bulkId": "u",
             "data": {"userName": "late@example.com"}}
        ])),
    )
    .await;
    let ops = out["Operations"].as_array().unwrap();
    // Reported in request order.
    assert_eq!(ops[0]["bulkId"], "g");
    assert_eq!(ops[0]["status"], "201");
    assert_eq!(ops[1]["method"], "PATCH");
    assert_eq!(ops[1]["status"], "200");
    assert_eq!(ops[2]["bulkId"], "u");
    assert_eq!(ops[2]["status"], "201");
    let gid = id_of(&ops[0]);
    assert_eq!(ops[1]["location"], ops[0]["location"]);
    assert_eq!(ops[1]["version"], "W/\"2\"");
    assert_eq!(app.member_ids(&gid).await, vec![id_of(&ops[2])]);
    assert_eq!(
        app.get_ok(&format!("/Groups/{gid}")).await["displayName"],
        "Forward 2"
    );
}

#[tokio::test]
async fn circular_references_are_409_and_create_nothing() {
    let app = spawn_app().await;
    let out = bulk(
        &app,
        request(json!([
            {"method": "POST", "path": "/Groups", "bulkId": "a",
             "data": {"displayName": "A", "members": [{"value": "bulkId:b"}]}},
            {"method": "POST", "path": "/Groups", "bulkId": "b",
             "data": {"displayName": "B", "members": [{"value": "bulkId:a"}]}},
            {"method": "POST", "path": "/Users", "bulkId": "free",
             "data": {"userName": "free@example.com"}}
        ])),
    )
    .await;
    let ops = out["Operations"].as_array().unwrap();
    assert_eq!(ops.len(), 3);
    for op in &ops[..2] {
        assert_eq!(op["status"], "409", "{op}");
        assert_eq!(op["response"]["status"], "409");
        assert_eq!(
            op["response"]["schemas"],
            json!(["urn:ietf:params:scim:api:messages:2.0:Error"])
        );
        assert!(
            op.get("location").is_none(),
            "a failed POST has no location: {op}"
        );
    }
    assert_eq!(ops[2]["status"], "201");
    assert_eq!(app.total("/Groups").await, 0);
    assert_eq!(app.total("/Users").await, 1);
}

#[tokio::test]
async fn fail_on_errors_stops_processing() {
    let app = spawn_app().await;
    app.create_user("taken@example.com").await;
    let out = bulk(
        &app,
        json!({
            "schemas": [BULK_REQUEST],
            "failOnErrors": 1,
            "Operations": [
                {"method": "POST", "path": "/Users", "bulkId": "ok1", "data": {"userName": "first@example.com"}},
                {"method": "POST", "path": "/Users", "bulkId": "dup", "data": {"userName": "TAKEN@example.com"}},
                {"method": "POST", "path": "/Users", "bulkId": "never", "data": {"userName": "never@example.com"}},
                {"method": "POST", "path": "/Groups", "bulkId": "never2", "data": {"displayName": "Never"}}
            ]
        }),
    )
    .await;
    let ops = out["Operations"].as_array().unwrap();
    assert_eq!(ops.len(), 2, "{out}");
    assert_eq!(ops[0]["status"], "201");
    assert_eq!(ops[1]["status"], "409");
    assert_eq!(ops[1]["response"]["scimType"], "uniqueness");
    assert_eq!(app.total("/Users").await, 2);
    assert_eq!(app.total("/Groups").await, 0);
    let never = app
        .filter("/Users", r#"userName eq "never@example.com""#)
        .await;
    assert_eq!(never["totalResults"], 0);

    // failOnErrors 2 lets one error through and stops at the second.
    let out = bulk(
        &app,
        json!({
            "schemas": [BULK_REQUEST],
            "failOnErrors": 2,
            "Operations": [
                {"method": "POST", "path": "/Users", "bulkId": "e1", "data": {"userName": "taken@example.com"}},
                {"method": "POST", "path": "/Users", "bulkId": "ok", "data": {"userName": "ok@example.com"}},
                {"method": "DELETE", "path": format!("/Users/{}", uuid::Uuid::new_v4())},
                {"method": "POST", "path": "/Users", "bulkId": "after", "data": {"userName": "after@example.com"}}
            ]
        }),
    )
    .await;
    let statuses = bulk_statuses(&out);
    assert_eq!(statuses, vec!["409", "201", "404"]);
    assert_eq!(app.total("/Users").await, 3);
}

#[tokio::test]
async fn without_fail_on_errors_every_operation_runs() {
    let app = spawn_app().await;
    let out = bulk(
        &app,
        request(json!([
            {"method": "POST", "path": "/Users", "bulkId": "bad", "data": {"userName": 12}},
            {"method": "GET", "path": "/Users"},
            {"method": "POST", "path": "/Printers", "bulkId": "p", "data": {}},
            {"method": "POST", "path": "/Users", "data": {"userName": "nobulkid@example.com"}},
            {"method": "POST", "path": "/Users", "bulkId": "good", "data": {"userName": "good@example.com"}}
        ])),
    )
    .await;
    let ops = out["Operations"].as_array().unwrap();
    let statuses: Vec<&str> = ops.iter().map(|o| o["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, vec!["400", "400", "400", "400", "201"]);
    assert_eq!(ops[0]["response"]["scimType"], "invalidValue");
    assert_eq!(app.total("/Users").await, 1);
}

#[tokio::test]
async fn put_patch_and_delete_entries_tell_status_location_and_version() {
    let app = spawn_app().await;
    let uid = app.create_user("u@example.com").await;
    let gid = app.create_group("G", &[]).await;
    let out = bulk(
        &app,
        request(json!([
            {"method": "PUT", "path": format!("/Users/{uid}"),
             "data": {"userName": "u@example.com", "title": "Put"}},
            {"method": "PATCH", "path": format!("/Groups/{gid}"),
             "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                      "Operations": [{"op": "add", "path": "members", "value": [{"value": uid}]}]}},
            {"method": "DELETE", "path": format!("/Groups/{gid}")},
            {"method": "PUT", "path": format!("/Users/{uid}"), "version": "W/\"1\"",
             "data": {"userName": "u@example.com", "title": "Stale"}},
            {"method": "PATCH", "path": format!("/Users/{}", uuid::Uuid::new_v4()),
             "data": {"Operations": [{"op": "replace", "path": "title", "value": "x"}]}}
        ])),
    )
    .await;
    let ops = out["Operations"].as_array().unwrap();
    let user_location = format!("{}/Users/{uid}", app.base);
    let group_location = format!("{}/Groups/{gid}", app.base);

    assert_eq!(ops[0]["method"], "PUT");
    assert_eq!(ops[0]["status"], "200");
    assert_eq!(ops[0]["location"], json!(user_location));
    assert_eq!(ops[0]["version"], "W/\"2\"");

    assert_eq!(ops[1]["method"], "PATCH");
    assert_eq!(ops[1]["status"], "200");
    assert_eq!(ops[1]["location"], json!(group_location));
    assert_eq!(ops[1]["version"], "W/\"2\"");

    // RFC 7644 §3.7: location is required in every entry but a failed POST.
    assert_eq!(ops[2]["method"], "DELETE");
    assert_eq!(ops[2]["status"], "204");
    assert_eq!(ops[2]["location"], json!(group_location));

    // `version` is If-Match: a stale one is 412 and writes nothing.
    assert_eq!(ops[3]["status"], "412");
    assert_eq!(ops[3]["location"], json!(user_location));
    assert_eq!(ops[3]["response"]["status"], "412");

    assert_eq!(ops[4]["status"], "404");
    assert!(
        ops[4]["location"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/Users/", app.base))
    );

    let user = app.get_ok(&format!("/Users/{uid}")).await;
    assert_eq!(user["title"], "Put");
    assert_eq!(user["meta"]["version"], "W/\"2\"");
    assert_scim_error(app.get(&format!("/Groups/{gid}")).await, 404, None).await;
}

#[tokio::test]
async fn more_operations_than_max_operations_is_413_and_runs_none() {
    let app = spawn_app_with(ServerSettings {
        bulk_max_operations: 3,
        ..ServerSettings::for_tests()
    })
    .await;
    let ops: Vec<Value> = (0..4)
        .map(|i| json!({"method": "POST", "path": "/Users", "bulkId": format!("b{i}"), "data": {"userName": format!("u{i}")}}))
        .collect();
    let res = app.post("/Bulk", &request(json!(ops))).await;
    let body = assert_scim_error(res, 413, None).await;
    assert!(body["detail"].as_str().unwrap().contains('3'), "{body}");
    assert_eq!(app.total("/Users").await, 0);
    let res = app.post("/Bulk", &request(json!(ops[..3]))).await;
    assert_eq!(res.status(), 200);
    assert_eq!(app.total("/Users").await, 3);
}

#[tokio::test]
async fn a_payload_over_max_payload_size_is_413_and_runs_none() {
    let app = spawn_app_with(ServerSettings {
        bulk_max_payload_bytes: 2_000,
        ..ServerSettings::for_tests()
    })
    .await;
    let spc = app.get_ok("/ServiceProviderConfig").await;
    assert_eq!(spc["bulk"]["maxPayloadSize"], 2_000);
    let ops: Vec<Value> = (0..30)
        .map(|i| json!({"method": "POST", "path": "/Users", "bulkId": format!("b{i}"), "data": {"userName": format!("user-{i}@example.com")}}))
        .collect();
    let body = request(json!(ops));
    assert!(body.to_string().len() > 2_000);
    let res = app.post("/Bulk", &body).await;
    assert_scim_error(res, 413, None).await;
    assert_eq!(app.total("/Users").await, 0);
    // Also when the size is not declared up front (chunked upload).
    let (status, error) = app.post_chunked("/Bulk", body.to_string()).await;
    assert_eq!(status, 413, "{error}");
    assert_eq!(error["status"], "413");
    assert_eq!(app.total("/Users").await, 0);
    // A small request still goes through.
    let res = app.post("/Bulk", &request(json!(ops[..2]))).await;
    assert_eq!(res.status(), 200);
    assert_eq!(app.total("/Users").await, 2);
}

#[tokio::test]
async fn a_malformed_bulk_request_is_400() {
    let app = spawn_app().await;
    for body in [
        json!([]),
        json!({"schemas": [BULK_REQUEST]}),
        json!({"Operations": "x"}),
    ] {
        let res = app.post("/Bulk", &body).await;
        assert_scim_error(res, 400, Some("invalidSyntax")).await;
    }
    let res = app
        .post("/Bulk", &json!({"failOnErrors": "x", "Operations": []}))
        .await;
    assert_scim_error(res, 400, Some("invalidValue")).await;
    assert_eq!(app.total("/Users").await, 0);
}

#[tokio::test]
async fn bulk_ids_resolve_anywhere_in_the_data_such_as_a_manager() {
    let app = spawn_app().await;
    let out = bulk(
        &app,
        request(json!([
            {"method": "POST", "path": "/Users", "bulkId": "emp", "data": {
                "userName": "emp@example.com",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "bulkId:boss"}}
            }},
            {"method": "POST", "path": "/Users", "bulkId": "boss", "data": {"userName": "boss@example.com"}}
        ])),
    )
    .await;
    let ops = out["Operations"].as_array().unwrap();
    assert_eq!(
        (ops[0]["status"].as_str(), ops[1]["status"].as_str()),
        (Some("201"), Some("201"))
    );
    let employee = app.get_ok(&format!("/Users/{}", id_of(&ops[0]))).await;
    assert_eq!(
        employee["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["manager"]["value"],
        json!(id_of(&ops[1]))
    );
}
