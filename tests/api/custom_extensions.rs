//! A user's extensions under URNs no schema of the server describes (Entra's
//! custom `urn:ietf:params:scim:schemas:extension:<Name>:2.0:User`, an Okta
//! app's namespace; docs/vendor-quirks.md E14): kept as sent under their caps,
//! returned and projected, changed by PATCH in each vendor's form, refused
//! with 400 `invalidValue` past a cap with nothing written.

use dirsync::scim::custom::{MAX_ATTRIBUTES, MAX_EXTENSIONS};
use dirsync::scim::schema::{MAX_ITEMS, TEXT_BYTES};
use rstest::rstest;
use serde_json::{Map, Value, json};

use crate::helpers::{TestApp, assert_scim_error, enc, json, patch_op, spawn_app};

const CORE: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// Entra's form for an app's custom attributes.
const CONTOSO: &str = "urn:ietf:params:scim:schemas:extension:Contoso:2.0:User";
/// An Okta app's external namespace.
const OKTA: &str = "urn:okta:acme:1.0:profile:custom";

fn attr(name: &str) -> String {
    format!("{CONTOSO}:{name}")
}

async fn create(app: &TestApp, extension: Value) -> (String, Value) {
    let mut body = json!({"userName": "ext@example.com", ENTERPRISE: {"department": "Tours"}});
    body.as_object_mut()
        .unwrap()
        .extend(extension.as_object().unwrap().clone());
    let user = app.post_created("/Users", &body).await;
    (user["id"].as_str().unwrap().to_owned(), user)
}

/// PATCH, assert 200 and that a GET reads what the answer says.
async fn patched(app: &TestApp, id: &str, operations: Value) -> Value {
    let path = format!("/Users/{id}");
    let res = app.patch(&path, &patch_op(operations.clone())).await;
    let status = res.status();
    let body = json(res).await;
    assert_eq!(status, 200, "PATCH {operations}: {body}");
    assert_eq!(
        app.get_ok(&path).await,
        body,
        "the answer is what was stored"
    );
    body
}

#[tokio::test]
async fn a_custom_extension_is_kept_returned_listed_in_schemas_and_not_filterable() {
    let app = spawn_app().await;
    // Entra lists the URN in `schemas`; OneLogin-style bodies may not (L6).
    let (id, created) = create(
        &app,
        json!({
            "schemas": [CORE, CONTOSO],
            CONTOSO: {"costCenter": "CC-42", "level": 3, "isContractor": false, "badges": ["a", "b"], "manager": {"value": "m-1"}},
            OKTA: {"region": "emea"}
        }),
    )
    .await;
    assert_eq!(created["schemas"], json!([CORE, ENTERPRISE, CONTOSO, OKTA]));
    assert_eq!(
        created[CONTOSO],
        json!({"costCenter": "CC-42", "level": 3, "isContractor": false, "badges": ["a", "b"], "manager": {"value": "m-1"}})
    );
    assert_eq!(created[OKTA], json!({"region": "emea"}));
    assert_eq!(created[ENTERPRISE], json!({"department": "Tours"}));
    let read = app.get_ok(&format!("/Users/{id}")).await;
    assert_eq!(read, created);
    let listed = app.get_ok("/Users").await;
    assert_eq!(listed["Resources"][0][CONTOSO], created[CONTOSO]);
    // Not a registered attribute, so no filter names it (as before).
    let res = app
        .get(&format!(
            "/Users?filter={}",
            enc(&format!("{} eq \"CC-42\"", attr("costCenter")))
        ))
        .await;
    assert_scim_error(res, 400, Some("invalidFilter")).await;
}

#[tokio::test]
async fn put_replaces_custom_extensions_and_any_urn_spelling_is_one_extension() {
    let app = spawn_app().await;
    let (id, _) = create(&app, json!({CONTOSO: {"costCenter": "1"}, OKTA: {"x": 1}})).await;
    let res = app
        .put(
            &format!("/Users/{id}"),
            &json!({
                "userName": "ext@example.com",
                CONTOSO: {"costCenter": "2"},
                "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:CONTOSO:2.0:USER": {"Division": "D"},
                "urn:ietf:params:scim:schemas:extension:contoso:2.0:user:level": 4
            }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let user = json(res).await;
    // PUT replaces: the Okta extension and the enterprise one are gone; the
    // first spelling of the URN holds every attribute.
    assert_eq!(user["schemas"], json!([CORE, CONTOSO]));
    assert_eq!(
        user[CONTOSO],
        json!({"costCenter": "2", "Division": "D", "level": 4})
    );
    assert_eq!(user.get(OKTA), None);
    assert_eq!(user.get(ENTERPRISE), None);
}

#[tokio::test]
async fn entras_pathless_patch_with_urn_keys_sets_custom_attributes() {
    // E4's form (Entra with the flag, Microsoft's validator), a custom
    // extension beside the enterprise one.
    let app = spawn_app().await;
    let (id, _) = create(&app, json!({CONTOSO: {"costCenter": "1", "keep": "k"}})).await;
    let user = patched(
        &app,
        &id,
        json!([{"op": "Replace", "value": {
            "displayName": "Babs",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "701984",
            attr("costCenter"): "2",
            attr("division"): "Sales"
        }}]),
    )
    .await;
    assert_eq!(user["displayName"], "Babs");
    assert_eq!(
        user[ENTERPRISE],
        json!({"department": "Tours", "employeeNumber": "701984"})
    );
    assert_eq!(
        user[CONTOSO],
        json!({"costCenter": "2", "keep": "k", "division": "Sales"})
    );
    // A URN key whose value is an object sets the attributes it names.
    let user = patched(
        &app,
        &id,
        json!([{"op": "Add", "value": {CONTOSO: {"keep": null, "level": 5}, OKTA: {"region": "apac"}}}]),
    )
    .await;
    assert_eq!(
        user[CONTOSO],
        json!({"costCenter": "2", "division": "Sales", "level": 5})
    );
    assert_eq!(user[OKTA], json!({"region": "apac"}));
    assert_eq!(user["schemas"], json!([CORE, ENTERPRISE, CONTOSO, OKTA]));
}

#[tokio::test]
async fn op_path_patches_add_replace_and_remove_custom_attributes() {
    let app = spawn_app().await;
    let (id, _) = create(&app, json!({})).await;
    let user = patched(
        &app,
        &id,
        json!([
            {"op": "add", "path": attr("costCenter"), "value": "1"},
            {"op": "add", "path": attr("manager.value"), "value": "m-1"},
            {"op": "add", "path": attr("badges"), "value": ["a"]},
            {"op": "add", "path": attr("badges"), "value": ["b"]}
        ]),
    )
    .await;
    assert_eq!(user["schemas"], json!([CORE, ENTERPRISE, CONTOSO]));
    assert_eq!(
        user[CONTOSO],
        json!({"costCenter": "1", "manager": {"value": "m-1"}, "badges": ["a", "b"]})
    );
    // Replace; E28's dot and another spelling of the URN (X9) reach the same
    // extension; removing what is not there is a success (RFC 7644 §3.5.2.2).
    let user = patched(
        &app,
        &id,
        json!([
            {"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:contoso:2.0:User.costCenter", "value": "2"},
            {"op": "Replace", "path": attr("manager"), "value": {"value": "m-2"}},
            {"op": "Remove", "path": attr("badges"), "value": ["a"]},
            {"op": "Remove", "path": attr("nosuch")},
            {"op": "Remove", "path": "urn:ietf:params:scim:schemas:extension:Other:2.0:User:x"}
        ]),
    )
    .await;
    assert_eq!(
        user[CONTOSO],
        json!({"costCenter": "2", "manager": {"value": "m-2"}, "badges": ["b"]})
    );
    let user = patched(
        &app,
        &id,
        json!([
            {"op": "remove", "path": attr("costCenter")},
            {"op": "remove", "path": attr("manager.value")},
            {"op": "replace", "path": attr("badges"), "value": ""}
        ]),
    )
    .await;
    // Nothing left: the extension and its URN in `schemas` are gone.
    assert_eq!(user.get(CONTOSO), None);
    assert_eq!(user["schemas"], json!([CORE, ENTERPRISE]));
    let user = patched(
        &app,
        &id,
        json!([
            {"op": "add", "path": attr("costCenter"), "value": "3"},
            {"op": "remove", "path": CONTOSO}
        ]),
    )
    .await;
    assert_eq!(user.get(CONTOSO), None);
}

#[tokio::test]
async fn projection_selects_and_excludes_custom_attributes() {
    let app = spawn_app().await;
    let (id, _) = create(
        &app,
        json!({CONTOSO: {"costCenter": "1", "manager": {"value": "m", "$ref": "r"}}, OKTA: {"x": 1}}),
    )
    .await;
    let got = app
        .get_ok(&format!(
            "/Users/{id}?attributes={}",
            enc(&format!("userName,{}", attr("costCenter")))
        ))
        .await;
    assert_eq!(got["schemas"], json!([CORE, CONTOSO]));
    assert_eq!(got[CONTOSO], json!({"costCenter": "1"}));
    assert_eq!(got["userName"], "ext@example.com");
    assert_eq!(got.get(OKTA), None);
    let got = app
        .get_ok(&format!(
            "/Users?excludedAttributes={}",
            enc(&format!("{},{OKTA}", attr("manager.$ref")))
        ))
        .await;
    let user = &got["Resources"][0];
    assert_eq!(
        user[CONTOSO],
        json!({"costCenter": "1", "manager": {"value": "m"}})
    );
    assert_eq!(user.get(OKTA), None);
    assert_eq!(user["schemas"], json!([CORE, ENTERPRISE, CONTOSO]));
}

/// A custom extension's attributes, `n` of them.
fn attributes(n: usize) -> Value {
    Value::Object(
        (0..n)
            .map(|i| (format!("a{i}"), json!(i)))
            .collect::<Map<String, Value>>(),
    )
}

/// `n` custom extensions of one attribute each.
fn extensions(n: usize) -> Value {
    Value::Object(
        (0..n)
            .map(|i| (format!("urn:example:ext{i}:User"), json!({"a": i})))
            .collect(),
    )
}

fn string_of(bytes: usize) -> String {
    "é".repeat(bytes / 2) + &"x".repeat(bytes % 2)
}

#[rstest]
#[case::a_string(json!({CONTOSO: {"s": string_of(TEXT_BYTES)}}), json!({CONTOSO: {"s": string_of(TEXT_BYTES + 1)}}),
      format!("{CONTOSO}:s is 1025 bytes long; at most 1024 are accepted"))]
#[case::an_array(json!({CONTOSO: {"s": vec![1; MAX_ITEMS]}}), json!({CONTOSO: {"s": vec![1; MAX_ITEMS + 1]}}),
      format!("{CONTOSO}:s has 101 values; at most 100 are accepted"))]
#[case::attributes(json!({CONTOSO: attributes(MAX_ATTRIBUTES)}), json!({CONTOSO: attributes(MAX_ATTRIBUTES + 1)}),
      format!("{CONTOSO} has 65 attributes; at most 64 are accepted"))]
#[case::extensions(extensions(MAX_EXTENSIONS), extensions(MAX_EXTENSIONS + 1),
      "the User has 9 extensions that no schema describes; at most 8 are accepted".to_owned())]
#[tokio::test]
async fn a_custom_extension_at_a_cap_is_kept_and_one_past_it_is_400_invalid_value(
    #[case] at: Value,
    #[case] past: Value,
    #[case] detail: String,
) {
    let app = spawn_app().await;
    let (id, user) = create(&app, at.clone()).await;
    for (urn, value) in at.as_object().unwrap() {
        assert_eq!(&user[urn], value);
    }
    let path = format!("/Users/{id}");
    let before = app.get_ok(&path).await;
    let mut body = json!({"userName": "past@example.com"});
    body.as_object_mut()
        .unwrap()
        .extend(past.as_object().unwrap().clone());
    let err = assert_scim_error(app.post("/Users", &body).await, 400, Some("invalidValue")).await;
    assert_eq!(err["detail"], detail);
    let err = assert_scim_error(
        app.put(&path, &{
            let mut b = body.clone();
            b["userName"] = json!("ext@example.com");
            b
        })
        .await,
        400,
        Some("invalidValue"),
    )
    .await;
    assert_eq!(err["detail"], detail);
    // The same past a cap by a PATCH (path-less, as Entra sends it).
    let err = assert_scim_error(
        app.patch(&path, &patch_op(json!([{"op": "replace", "value": past}])))
            .await,
        400,
        Some("invalidValue"),
    )
    .await;
    assert_eq!(err["detail"], detail);
    assert_eq!(app.get_ok(&path).await, before, "nothing was written");
    assert_eq!(app.total("/Users").await, 1);
}

#[tokio::test]
async fn one_attribute_too_many_by_op_path_is_400_and_bad_shapes_are_refused() {
    let app = spawn_app().await;
    let (id, before) = create(&app, json!({CONTOSO: attributes(MAX_ATTRIBUTES)})).await;
    let path = format!("/Users/{id}");
    let res = app
        .patch(
            &path,
            &patch_op(json!([{"op": "add", "path": attr("oneMore"), "value": "x"}])),
        )
        .await;
    let err = assert_scim_error(res, 400, Some("invalidValue")).await;
    assert_eq!(
        err["detail"],
        format!("{CONTOSO} has 65 attributes; at most 64 are accepted")
    );
    for (operation, scim_type) in [
        (
            json!({"op": "add", "path": attr("deep"), "value": {"a": {"b": 1}}}),
            "invalidValue",
        ),
        (
            json!({"op": "add", "path": attr("list"), "value": [{"a": 1}]}),
            "invalidValue",
        ),
        (
            json!({"op": "add", "path": attr("1st"), "value": "x"}),
            "invalidPath",
        ),
        (
            json!({"op": "add", "path": attr("tags[value eq \"a\"]"), "value": "x"}),
            "invalidPath",
        ),
        (
            json!({"op": "replace", "path": CONTOSO, "value": "x"}),
            "invalidValue",
        ),
    ] {
        let res = app.patch(&path, &patch_op(json!([operation]))).await;
        assert_scim_error(res, 400, Some(scim_type)).await;
    }
    assert_eq!(app.get_ok(&path).await, before, "nothing was written");
}

#[tokio::test]
async fn a_groups_custom_extension_is_dropped_as_before() {
    let app = spawn_app().await;
    let group = app
        .post_created(
            "/Groups",
            &json!({"displayName": "Sales", "urn:example:acme:Group": {"costCenter": "1"}}),
        )
        .await;
    assert_eq!(
        group["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:Group"])
    );
    assert_eq!(group.get("urn:example:acme:Group"), None);
}
