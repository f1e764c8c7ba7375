//! Discovery (RFC 7644 §4): `/ServiceProviderConfig`, `/ResourceTypes`,
//! `/Schemas` are complete, and every claim they make is what the server does.

use dirsync::config::ServerSettings;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{
    SCIM_JSON, assert_scim_error, enc, header, json, patch_op, spawn_app, spawn_app_with,
};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn attribute<'a>(schema: &'a Value, name: &str) -> &'a Value {
    schema["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("no attribute {name} in {}", schema["id"]))
}

fn sub_attribute<'a>(attr: &'a Value, name: &str) -> &'a Value {
    attr["subAttributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("no sub-attribute {name} in {}", attr["name"]))
}

#[tokio::test]
async fn service_provider_config_describes_every_feature() {
    let app = spawn_app().await;
    let res = app.get("/ServiceProviderConfig").await;
    assert_eq!(res.status(), 200);
    assert!(header(&res, "content-type").starts_with(SCIM_JSON));
    let spc = json(res).await;
    assert_eq!(
        spc["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"])
    );
    for feature in ["patch", "bulk", "filter", "changePassword", "sort", "etag"] {
        assert!(spc[feature]["supported"].is_boolean(), "{feature}: {spc}");
    }
    assert_eq!(spc["patch"]["supported"], true);
    assert_eq!(spc["bulk"]["supported"], true);
    assert_eq!(spc["filter"]["supported"], true);
    assert_eq!(spc["sort"]["supported"], true);
    assert_eq!(spc["etag"]["supported"], true);
    // dirsync never stores passwords, so it cannot change them.
    assert_eq!(spc["changePassword"]["supported"], false);
    let settings = ServerSettings::for_tests();
    assert_eq!(
        spc["bulk"]["maxOperations"],
        json!(settings.bulk_max_operations)
    );
    assert_eq!(
        spc["bulk"]["maxPayloadSize"],
        json!(settings.bulk_max_payload_bytes)
    );
    assert_eq!(spc["filter"]["maxResults"], json!(settings.max_page_size));
    assert_eq!(spc["pagination"]["cursor"], true);
    assert_eq!(spc["pagination"]["index"], true);
    let schemes = spc["authenticationSchemes"].as_array().unwrap();
    assert_eq!(schemes.len(), 1);
    assert_eq!(schemes[0]["type"], "oauthbearertoken");
    assert!(schemes[0]["name"].as_str().is_some_and(|n| !n.is_empty()));
    assert!(
        schemes[0]["description"]
            .as_str()
            .is_some_and(|n| !n.is_empty())
    );
    assert_eq!(
        spc["meta"]["location"],
        json!(format!("{}/ServiceProviderConfig", app.base))
    );
    assert_eq!(spc["meta"]["resourceType"], "ServiceProviderConfig");
}

#[tokio::test]
async fn advertised_limits_are_the_enforced_limits() {
    let app = spawn_app_with(ServerSettings {
        max_page_size: 5,
        default_page_size: 3,
        bulk_max_operations: 2,
        ..ServerSettings::for_tests()
    })
    .await;
    let spc = app.get_ok("/ServiceProviderConfig").await;
    assert_eq!(spc["filter"]["maxResults"], 5);
    assert_eq!(spc["bulk"]["maxOperations"], 2);
    assert_eq!(spc["pagination"]["defaultPageSize"], 3);
    assert_eq!(spc["pagination"]["maxPageSize"], 5);

    for i in 0..7 {
        app.create_user(&format!("u{i}@example.com")).await;
    }
    let capped = app.get_ok("/Users?count=100").await;
    assert_eq!(capped["itemsPerPage"], 5);
    assert_eq!(capped["totalResults"], 7);
    let default = app.get_ok("/Users").await;
    assert_eq!(default["itemsPerPage"], 3);
    let filtered = app.filter("/Users", "userName sw \"u\"").await;
    assert_eq!(filtered["Resources"].as_array().unwrap().len(), 3);

    let op = |i: usize| {
        json!({"method": "POST", "path": "/Users", "bulkId": format!("b{i}"),
               "data": {"userName": format!("bulk{i}@example.com")}})
    };
    let ok = app
        .post(
            "/Bulk",
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                    "Operations": [op(0), op(1)]}),
        )
        .await;
    assert_eq!(ok.status(), 200);
    let over = app
        .post(
            "/Bulk",
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                    "Operations": [op(2), op(3), op(4)]}),
        )
        .await;
    assert_scim_error(over, 413, None).await;
    assert_eq!(app.total("/Users").await, 9);
}

#[tokio::test]
async fn advertised_features_work_sort_etag_and_cursor() {
    let app = spawn_app().await;
    for name in ["carol", "alice", "bob"] {
        app.create_user(&format!("{name}@example.com")).await;
    }
    let sorted = app.get_ok("/Users?sortBy=userName").await;
    let names: Vec<&str> = sorted["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["userName"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["alice@example.com", "bob@example.com", "carol@example.com"]
    );

    let first = app.get_ok("/Users?cursor=&count=2").await;
    assert_eq!(first["Resources"].as_array().unwrap().len(), 2);
    let next = first["nextCursor"].as_str().expect("nextCursor");
    let second = app
        .get_ok(&format!("/Users?cursor={}&count=2", enc(next)))
        .await;
    assert_eq!(second["Resources"].as_array().unwrap().len(), 1);
    assert!(second.get("nextCursor").is_none());

    let id = first["Resources"][0]["id"].as_str().unwrap();
    let res = app.get(&format!("/Users/{id}")).await;
    assert_eq!(header(&res, "etag"), "W/\"1\"");
}

#[tokio::test]
async fn resource_types_list_users_and_groups_with_their_schemas() {
    let app = spawn_app().await;
    let res = app.get("/ResourceTypes").await;
    assert_eq!(res.status(), 200);
    assert!(header(&res, "content-type").starts_with(SCIM_JSON));
    let list = json(res).await;
    assert_eq!(
        list["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
    );
    assert_eq!(list["totalResults"], 2);
    let types = list["Resources"].as_array().unwrap();
    let user = types.iter().find(|t| t["id"] == "User").expect("User");
    let group = types.iter().find(|t| t["id"] == "Group").expect("Group");
    assert_eq!(
        user["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:ResourceType"])
    );
    assert_eq!(user["name"], "User");
    assert_eq!(user["endpoint"], "/Users");
    assert_eq!(user["schema"], USER);
    assert_eq!(
        user["schemaExtensions"],
        json!([{"schema": ENTERPRISE, "required": false}])
    );
    assert_eq!(
        user["meta"],
        json!({"resourceType": "ResourceType", "location": format!("{}/ResourceTypes/User", app.base)})
    );
    assert_eq!(group["name"], "Group");
    assert_eq!(group["endpoint"], "/Groups");
    assert_eq!(group["schema"], GROUP);

    // Each endpoint named works.
    for t in types {
        let endpoint = t["endpoint"].as_str().unwrap();
        assert_eq!(app.get(endpoint).await.status(), 200, "{endpoint}");
    }

    assert_eq!(&app.get_ok("/ResourceTypes/User").await, user);
    assert_eq!(&app.get_ok("/ResourceTypes/Group").await, group);
    assert_scim_error(app.get("/ResourceTypes/Printer").await, 404, None).await;
}

#[tokio::test]
async fn schemas_list_user_group_and_enterprise_and_each_is_readable_by_id() {
    let app = spawn_app().await;
    let list = app.get_ok("/Schemas").await;
    assert_eq!(list["totalResults"], 3);
    let schemas = list["Resources"].as_array().unwrap();
    let mut found: Vec<&str> = schemas.iter().map(|s| s["id"].as_str().unwrap()).collect();
    found.sort();
    assert_eq!(found, vec![GROUP, USER, ENTERPRISE]);
    for schema in schemas {
        let id = schema["id"].as_str().unwrap();
        assert_eq!(
            schema["schemas"],
            json!(["urn:ietf:params:scim:schemas:core:2.0:Schema"])
        );
        assert_eq!(
            schema["meta"]["location"],
            json!(format!("{}/Schemas/{id}", app.base))
        );
        assert!(!schema["attributes"].as_array().unwrap().is_empty());
        for attr in schema["attributes"].as_array().unwrap() {
            for key in [
                "name",
                "type",
                "multiValued",
                "required",
                "mutability",
                "returned",
                "uniqueness",
            ] {
                assert!(attr.get(key).is_some(), "{id} {} lacks {key}", attr["name"]);
            }
        }
        let res = app.get(&format!("/Schemas/{id}")).await;
        assert_eq!(res.status(), 200);
        assert!(header(&res, "content-type").starts_with(SCIM_JSON));
        assert_eq!(&json(res).await, schema);
    }
    assert_scim_error(
        app.get("/Schemas/urn:ietf:params:scim:schemas:core:2.0:Printer")
            .await,
        404,
        None,
    )
    .await;
}

#[tokio::test]
async fn schema_claims_match_server_behaviour() {
    let app = spawn_app().await;
    let user = app.get_ok(&format!("/Schemas/{USER}")).await;
    let group = app.get_ok(&format!("/Schemas/{GROUP}")).await;

    // userName: required, unique (server) and case-insensitive.
    let user_name = attribute(&user, "userName");
    assert_eq!(user_name["required"], true);
    assert_eq!(user_name["uniqueness"], "server");
    assert_eq!(user_name["caseExact"], false);
    app.create_user("Claim@example.com").await;
    let dup = app
        .post("/Users", &json!({"userName": "CLAIM@example.com"}))
        .await;
    assert_scim_error(dup, 409, Some("uniqueness")).await;
    assert_eq!(
        app.filter("/Users", "userName eq \"claim@EXAMPLE.com\"")
            .await["totalResults"],
        1
    );
    let missing = app.post("/Users", &json!({"displayName": "No name"})).await;
    assert_scim_error(missing, 400, Some("invalidValue")).await;

    // password: writeOnly, never returned.
    let password = attribute(&user, "password");
    assert_eq!(password["mutability"], "writeOnly");
    assert_eq!(password["returned"], "never");
    let created = app
        .post_created(
            "/Users",
            &json!({"userName": "pw@example.com", "password": "t1meMa$heen"}),
        )
        .await;
    assert!(created.get("password").is_none());

    // groups: readOnly; a client's groups are not stored.
    assert_eq!(attribute(&user, "groups")["mutability"], "readOnly");
    let g = app.create_group("Real", &[]).await;
    let created = app
        .post_created(
            "/Users",
            &json!({"userName": "grp@example.com", "groups": [{"value": g}]}),
        )
        .await;
    assert!(created.get("groups").is_none(), "{created}");

    // emails.type lists its canonical values.
    let email_type = sub_attribute(attribute(&user, "emails"), "type");
    assert_eq!(
        email_type["canonicalValues"],
        json!(["work", "home", "other"])
    );

    // Group displayName: required and unique.
    let display_name = attribute(&group, "displayName");
    assert_eq!(display_name["required"], true);
    assert_eq!(display_name["uniqueness"], "server");
    let dup = app.post("/Groups", &json!({"displayName": "real"})).await;
    assert_scim_error(dup, 409, Some("uniqueness")).await;
    assert_eq!(
        sub_attribute(attribute(&group, "members"), "type")["canonicalValues"],
        json!(["User", "Group"])
    );
}

#[tokio::test]
async fn discovery_endpoints_refuse_writes_with_405_and_a_scim_body() {
    let app = spawn_app().await;
    let paths = [
        "/ServiceProviderConfig".to_owned(),
        "/ResourceTypes".to_owned(),
        "/ResourceTypes/User".to_owned(),
        "/Schemas".to_owned(),
        format!("/Schemas/{USER}"),
    ];
    for path in &paths {
        for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            // O19: Okta's old test POSTs the bare text `test`.
            let res = app
                .request(method.clone(), path)
                .header("content-type", SCIM_JSON)
                .body("test")
                .send()
                .await
                .unwrap();
            let allow = res
                .headers()
                .get("allow")
                .map(|v| v.to_str().unwrap().to_owned());
            assert_scim_error(res, 405, None).await;
            // RFC 9110 §15.5.6: a 405 lists the methods the resource supports.
            assert_eq!(allow.as_deref(), Some("GET"), "{method} {path}");
        }
        // …and still answer GET.
        assert_eq!(app.get(path).await.status(), 200, "{path}");
    }
    let res = app
        .patch(
            "/ServiceProviderConfig",
            &patch_op(json!([{"op": "replace", "path": "patch.supported", "value": false}])),
        )
        .await;
    assert_scim_error(res, 405, None).await;
    assert_eq!(
        app.get_ok("/ServiceProviderConfig").await["patch"]["supported"],
        true
    );
}

#[tokio::test]
async fn resource_endpoints_answer_405_with_an_allow_header_for_unsupported_methods() {
    let app = spawn_app().await;
    let id = app.create_user("a@example.com").await;
    for (method, path, allow) in [
        (Method::PUT, "/Users".to_owned(), "GET, POST"),
        (Method::DELETE, "/Groups".to_owned(), "GET, POST"),
        (
            Method::POST,
            format!("/Users/{id}"),
            "GET, PUT, PATCH, DELETE",
        ),
        (Method::GET, "/Bulk".to_owned(), "POST"),
        (Method::GET, "/.search".to_owned(), "POST"),
        (Method::GET, "/Groups/.search".to_owned(), "POST"),
    ] {
        let res = app.request(method.clone(), &path).send().await.unwrap();
        assert_eq!(
            res.headers().get("allow").map(|v| v.to_str().unwrap()),
            Some(allow),
            "{method} {path}"
        );
        assert_scim_error(res, 405, None).await;
    }
    assert_eq!(app.total("/Users").await, 1);
}
