//! Text at the edge (issue 13): control characters refused once wherever a
//! string enters (bodies, request targets, filter literals; SCIM and the host
//! API) alike on both backends; client input quoted back to a short prefix;
//! the HTTP parser's own answers; look-alike names.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use reqwest::Method;
use rstest::rstest;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

use crate::helpers::{Served, TestApp, assert_scim_error, enc, json, patch_op, spawn_app};
use crate::host_api::{call, token};

/// Every row of the mirror and the app identity, to show a refusal wrote
/// nothing.
async fn stored(app: &TestApp) -> String {
    let conn = app.store.connection();
    let mut out = String::new();
    for (table, columns) in [
        ("directory_users", "id, user_name, CAST(data AS TEXT)"),
        ("directory_groups", "id, display_name, CAST(data AS TEXT)"),
        ("directory_memberships", "group_id, member_id, display"),
        ("users", "id, email, status"),
    ] {
        let rows = conn
            .query_all_raw(Statement::from_string(
                conn.get_database_backend(),
                format!("SELECT {columns} FROM {table} ORDER BY 1, 2"),
            ))
            .await
            .unwrap();
        out.push_str(&format!("{table}: {}\n", rows.len()));
        for row in rows {
            out.push_str(&format!("{row:?}\n"));
        }
    }
    out
}

#[rstest]
#[case::nul_in_user_name("/Users", json!({"userName": "nul\u{0}@example.com"}), "userName")]
#[case::escape_in_a_title("/Users", json!({"userName": "t@example.com", "title": "\u{1b}[31mred"}), "title")]
#[case::nul_in_a_nested_value("/Users", json!({"userName": "n@example.com", "name": {"givenName": "a\u{0}"}}), "name.givenName")]
#[case::nul_in_an_email("/Users", json!({"userName": "e@example.com", "emails": [{"value": "x\u{0}@example.com"}]}), "emails[0].value")]
#[case::nul_in_an_extension("/Users", json!({"userName": "x@example.com", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "\u{7}"}}), "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.department")]
#[case::nul_in_a_name_the_schema_drops("/Users", json!({"userName": "k@example.com", "nick\u{0}": "x"}), "the name")]
#[case::nul_in_a_member_display("/Groups", json!({"displayName": "G", "members": [{"value": "MEMBER", "display": "a\u{0}"}]}), "members[0].display")]
#[case::nul_in_a_group_name("/Groups", json!({"displayName": "g\u{0}"}), "displayName")]
#[tokio::test]
async fn a_control_character_anywhere_in_a_body_is_400_invalid_value_and_writes_nothing(
    #[case] collection: &str,
    #[case] body: Value,
    #[case] named: &str,
) {
    let app = spawn_app().await;
    let member = app.create_user("member@example.com").await;
    let group = app.create_group("Existing", &[]).await;
    let body: Value = serde_json::from_str(&body.to_string().replace("MEMBER", &member)).unwrap();
    let before = stored(&app).await;

    let res = app.post(collection, &body).await;
    let err = assert_scim_error(res, 400, Some("invalidValue")).await;
    assert!(err["detail"].as_str().unwrap().contains(named), "{err}");
    let target = if collection == "/Users" {
        format!("/Users/{member}")
    } else {
        format!("/Groups/{group}")
    };
    let res = app.put(&target, &body).await;
    assert_scim_error(res, 400, Some("invalidValue")).await;
    let res = app
        .patch(
            &target,
            &patch_op(json!([{"op": "replace", "value": body}])),
        )
        .await;
    assert_scim_error(res, 400, Some("invalidValue")).await;
    let res = app
        .post(
            "/Bulk",
            &json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                "Operations": [{"method": "POST", "path": collection, "bulkId": "b", "data": body}],
            }),
        )
        .await;
    assert_scim_error(res, 400, Some("invalidValue")).await;
    assert_eq!(stored(&app).await, before);
}

#[tokio::test]
async fn tab_lf_and_cr_stay_where_a_value_may_hold_them() {
    let app = spawn_app().await;
    let created = app
        .post_created(
            "/Users",
            &json!({
                "userName": "addr@example.com",
                "addresses": [{"type": "work", "formatted": "1 Main St\r\nSpringfield\tUSA"}],
            }),
        )
        .await;
    assert_eq!(
        created["addresses"][0]["formatted"],
        "1 Main St\r\nSpringfield\tUSA"
    );
}

#[rstest]
#[case::escaped_nul_in_a_literal(r#"userName eq "\u0000""#)]
#[case::escaped_escape_in_a_value_path(r#"emails[value co "\u001b"]"#)]
#[case::raw_nul(r#"userName eq "a\u{0}b""#)]
#[case::raw_bell_in_an_or(r#"userName eq "a" or title sw "b\u{7}""#)]
#[tokio::test]
async fn a_control_character_in_a_filter_is_400_invalid_filter(#[case] filter: &str) {
    let filter = filter.replace("\\u{0}", "\u{0}").replace("\\u{7}", "\u{7}");
    let app = spawn_app().await;
    app.create_user("a@example.com").await;
    let res = app.get(&format!("/Users?filter={}", enc(&filter))).await;
    assert_scim_error(res, 400, Some("invalidFilter")).await;
    let res = app
        .post(
            "/Users/.search",
            &json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                "filter": filter,
            }),
        )
        .await;
    // A raw control character is refused with the body (invalidValue); one
    // written as a filter escape, by the filter (invalidFilter).
    let status = res.status().as_u16();
    let body = json(res).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        ["invalidValue", "invalidFilter"].contains(&body["scimType"].as_str().unwrap()),
        "{body}"
    );
}

#[rstest]
#[case::attributes("/Users?attributes=user%00Name", "invalidValue")]
#[case::sort_by("/Users?sortBy=%01", "invalidValue")]
#[case::a_parameter_name("/Users?count%00=1", "invalidValue")]
#[case::the_filter("/Users?filter=userName%20eq%20%22%00%22", "invalidFilter")]
#[case::the_path("/Users/%00", "invalidValue")]
#[tokio::test]
async fn a_control_character_in_the_request_target_is_400(
    #[case] path: &str,
    #[case] scim_type: &str,
) {
    let app = spawn_app().await;
    let res = app.get(path).await;
    assert_scim_error(res, 400, Some(scim_type)).await;
}

#[tokio::test]
async fn the_host_api_refuses_a_control_character_with_a_problem() {
    let app = spawn_app().await;
    let t = token(&app.tenant, "read write admin");
    let (status, problem, _) = call(
        &app,
        Some(&t),
        Method::POST,
        "/api/v1/directories",
        Some(json!({"name": "a\u{0}b"})),
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (400, Some("invalid_request"))
    );
    assert_eq!(problem["errors"][0]["field"], "name", "{problem}");
    let (status, problem, _) =
        call(&app, Some(&t), Method::GET, "/api/v1/users?email=%00", None).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (400, Some("invalid_request"))
    );
    assert_eq!(problem["errors"][0]["field"], "email", "{problem}");
    let (status, _, _) = call(
        &app,
        Some(&t),
        Method::GET,
        "/api/v1/users/by-email/a%00b",
        None,
    )
    .await;
    assert_eq!(status, 400);
    let (status, list, _) = call(&app, Some(&t), Method::GET, "/api/v1/directories", None).await;
    assert_eq!(status, 200);
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "{list}");
}

/// The longest detail a quoted value may make: the sentence around it and
/// a prefix of the value.
const SHORT: usize = 600;

/// Where dirsync quotes the value itself (`domain::text::quoted`), a prefix
/// of it; elsewhere the detail's own bound (`scim::error::MAX_DETAIL_CHARS`).
#[rstest]
#[case::a_filter("/Users?filter=", true)]
#[case::an_id("/Users/", true)]
#[case::a_count("/Users?count=", false)]
#[case::a_sort_by("/Users?sortBy=", false)]
#[tokio::test]
async fn a_long_client_value_is_quoted_back_as_a_short_prefix(
    #[case] prefix: &str,
    #[case] quoted: bool,
) {
    let app = spawn_app().await;
    // Just under what actix-http takes as a URL (64 KiB).
    let value = "x".repeat(60_000);
    let res = app.get(&format!("{prefix}{value}")).await;
    let status = res.status().as_u16();
    let body = json(res).await;
    assert!((400..500).contains(&status), "{status} {body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.chars().count() <= SHORT, "{} chars", detail.len());
    if quoted {
        assert!(!detail.contains(&"x".repeat(100)), "{detail}");
        assert!(detail.contains("(60000 bytes in all)"), "{detail}");
    }
}

#[tokio::test]
async fn a_long_search_filter_is_quoted_back_as_a_short_prefix() {
    let app = spawn_app().await;
    let res = app
        .post(
            "/Users/.search",
            &json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                "filter": "y".repeat(900_000),
            }),
        )
        .await;
    let body = assert_scim_error(res, 400, Some("invalidFilter")).await;
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.chars().count() <= SHORT, "{detail}");
    assert!(detail.contains("(900000 bytes in all)"), "{detail}");
}

#[tokio::test]
async fn a_long_client_value_reaches_the_log_as_a_short_prefix() {
    let app = spawn_app().await;
    let served = Served::start(&app.db_url, &[]);
    let client = reqwest::Client::new();
    for path in [
        format!("/scim/v2/Users?filter={}", "z".repeat(60_000)),
        format!("/scim/v2/Users?count={}", "9".repeat(60_000)),
        format!("/api/v1/users?email={}", "w".repeat(60_000)),
    ] {
        let res = client
            .get(format!("{}{path}", served.origin))
            .bearer_auth(&app.token)
            .send()
            .await
            .unwrap();
        // The host API answers 503 here (the served process has no key).
        assert!(res.status().as_u16() >= 400, "{}", res.status());
    }
    let log = served.stop();
    let longest = log.lines().map(str::len).max().unwrap_or_default();
    assert!(longest < 4_000, "a log line of {longest} bytes");
    for run in ["z", "9", "w"] {
        assert!(!log.contains(&run.repeat(1_000)), "{run} echoed whole");
    }
}

/// A raw HTTP/1.1 exchange: the status line and the body.
fn raw_exchange(origin: &str, request: &[u8]) -> (String, Vec<u8>) {
    let address = origin.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // The server may answer and close before it has read everything.
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.lines().next().unwrap_or_default().to_owned();
    (status, body.as_bytes().to_vec())
}

/// What actix-http answers itself, before any middleware or handler runs:
/// no application code can give these a body (README, "Errors and
/// limits"). The test keeps that sentence true: should actix start giving
/// them bodies, or dirsync find a way to, it fails and the README changes.
#[rstest]
#[case::a_url_over_64_kib(
    format!("GET /scim/v2/Users?filter={} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000)).into_bytes(),
    "400"
)]
#[case::a_head_over_128_kib(
    format!("GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(140_000)).into_bytes(),
    "431"
)]
#[case::more_than_96_headers(
    format!("GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\n{}\r\n", (0..100).map(|i| format!("X-{i}: a\r\n")).collect::<String>()).into_bytes(),
    "431"
)]
#[case::a_control_character_in_a_header(
    b"GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n".to_vec(),
    "400"
)]
#[case::a_control_character_in_the_path(
    b"GET /scim/v2/Us\x01ers HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
    "400"
)]
#[tokio::test]
async fn what_the_http_parser_refuses_is_answered_by_actix_without_a_body(
    #[case] request: Vec<u8>,
    #[case] status: &str,
) {
    let app = spawn_app().await;
    let origin = app.origin.clone();
    let (line, body) = tokio::task::spawn_blocking(move || raw_exchange(&origin, &request))
        .await
        .unwrap();
    assert!(line.starts_with(&format!("HTTP/1.1 {status} ")), "{line}");
    assert!(body.is_empty(), "{}", String::from_utf8_lossy(&body));
    // The server goes on answering.
    assert_eq!(app.get("/Users").await.status(), 200);
}

#[tokio::test]
async fn a_url_within_the_parsers_bound_gets_a_scim_error_body() {
    let app = spawn_app().await;
    let origin = app.origin.clone();
    let token = app.token.clone();
    let (line, body) = tokio::task::spawn_blocking(move || {
        raw_exchange(
            &origin,
            format!(
                "GET /scim/v2/Users?count={} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n",
                "9".repeat(60_000)
            )
            .as_bytes(),
        )
    })
    .await
    .unwrap();
    assert!(line.starts_with("HTTP/1.1 400 "), "{line}");
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["scimType"], "invalidValue", "{body}");
}

#[rstest]
#[case::fullwidth("Admin", "Ａdmin")]
#[case::case("Admin", "ADMIN")]
#[case::sharp_s("Straße", "STRASSE")]
#[case::ligature("file", "ﬁle")]
#[case::composed("José", "Jose\u{301}")]
#[case::no_break_space("Ann Lee", "Ann\u{a0}Lee")]
#[tokio::test]
async fn a_look_alike_user_name_is_409_uniqueness(#[case] first: &str, #[case] second: &str) {
    let app = spawn_app().await;
    app.create_user(first).await;
    let res = app.post("/Users", &json!({"userName": second})).await;
    assert_scim_error(res, 409, Some("uniqueness")).await;
    let res = app.post("/Groups", &json!({"displayName": first})).await;
    assert_eq!(res.status(), 201);
    let res = app.post("/Groups", &json!({"displayName": second})).await;
    assert_scim_error(res, 409, Some("uniqueness")).await;
    // A filter finds the one user by either spelling.
    let found = app
        .filter("/Users", &format!("userName eq \"{second}\""))
        .await;
    assert_eq!(found["totalResults"], 1, "{found}");
    assert_eq!(found["Resources"][0]["userName"], first);
}

#[rstest]
#[case::zero_width_space("a\u{200b}b")]
#[case::zero_width_joiner("a\u{200d}b")]
#[case::right_to_left_override("admin\u{202e}gnp.exe")]
#[case::left_to_right_isolate("\u{2066}admin")]
#[case::byte_order_mark("\u{feff}admin")]
#[case::a_line_feed("two\nlines")]
#[tokio::test]
async fn an_invisible_or_direction_character_in_a_name_is_400_invalid_value(#[case] name: &str) {
    let app = spawn_app().await;
    let before = stored(&app).await;
    for (collection, body) in [
        ("/Users", json!({"userName": name})),
        ("/Groups", json!({"displayName": name})),
        (
            "/Users",
            json!({"userName": "ok", "emails": [{"value": format!("{name}@example.com"), "primary": true}]}),
        ),
    ] {
        let res = app.post(collection, &body).await;
        assert_scim_error(res, 400, Some("invalidValue")).await;
    }
    assert_eq!(stored(&app).await, before);
}

#[tokio::test]
async fn a_fullwidth_address_is_the_application_users_ascii_address() {
    let app = spawn_app().await;
    app.post_created(
        "/Users",
        &json!({"userName": "u1", "emails": [{"value": "Ａnn@Example.com", "primary": true}]}),
    )
    .await;
    let users = app.app_users().await;
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(users[0]["email"], "ann@example.com");
}

/// A user renamed to `user_name` with the key an older dirsync gave it
/// (lower-casing only), as it could be made before the fold of today.
async fn rename_as_before(app: &TestApp, id: &str, from: &str, user_name: &str, key: &str) {
    let conn = app.store.connection();
    let data = if app.db_url.starts_with("postgres") {
        format!("REPLACE(data::text, '{from}', '{user_name}')::jsonb")
    } else {
        format!("REPLACE(data, '{from}', '{user_name}')")
    };
    conn.execute_unprepared(&format!(
        "UPDATE directory_users SET user_name = '{user_name}', user_name_folded = '{key}', \
         data = {data} WHERE id = '{id}'"
    ))
    .await
    .unwrap();
}

#[tokio::test]
async fn existing_keys_are_refolded_and_an_older_look_alike_keeps_working() {
    let app = spawn_app().await;
    let admin = app.create_user("Admin").await;
    let strasse = app.create_user("placeholder-1").await;
    let look_alike = app.create_user("placeholder-2").await;
    rename_as_before(&app, &strasse, "placeholder-1", "STRASSE", "strasse").await;
    rename_as_before(&app, &look_alike, "placeholder-2", "Ａdmin", "ａdmin").await;
    // An older key for a name whose fold changed, with no look-alike.
    app.store
        .connection()
        .execute_unprepared(&format!(
            "UPDATE directory_users SET user_name = 'Straße', user_name_folded = 'straße', \
             data = {} WHERE id = '{strasse}'",
            if app.db_url.starts_with("postgres") {
                "REPLACE(data::text, 'STRASSE', 'Straße')::jsonb"
            } else {
                "REPLACE(data, 'STRASSE', 'Straße')"
            }
        ))
        .await
        .unwrap();
    migrations_back_one(&app).await;

    app.store.migrate().await.unwrap();

    let conn = app.store.connection();
    let key = |id: String| async move {
        let row = conn
            .query_one_raw(Statement::from_string(
                conn.get_database_backend(),
                format!("SELECT user_name_folded AS k FROM directory_users WHERE id = '{id}'"),
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<String>("", "k").unwrap()
    };
    assert_eq!(key(admin.clone()).await, "admin");
    assert_eq!(key(strasse.clone()).await, "strasse");
    assert_eq!(key(look_alike.clone()).await, "ａdmin");
    // The older look-alike can still be deactivated, then renamed apart.
    let res = app
        .patch(
            &format!("/Users/{look_alike}"),
            &patch_op(json!([{"op": "replace", "path": "active", "value": false}])),
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    assert_eq!(key(look_alike.clone()).await, "ａdmin");
    let res = app
        .patch(
            &format!("/Users/{look_alike}"),
            &patch_op(json!([{"op": "replace", "path": "userName", "value": "Admin2"}])),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(key(look_alike).await, "admin2");
    // A new look-alike of a refolded name is refused.
    let res = app.post("/Users", &json!({"userName": "STRASSE"})).await;
    assert_scim_error(res, 409, Some("uniqueness")).await;
    let found = app.filter("/Users", "userName eq \"strasse\"").await;
    assert_eq!(found["Resources"][0]["userName"], "Straße", "{found}");
}

/// Roll back the last migration (the refold's), as a database an older
/// dirsync left.
/// Undo the migrations down to, and with, the one that refolds the keys
/// (`NAME_FOLDS`), as a database from before it would be.
async fn migrations_back_one(app: &TestApp) {
    use ::migrations::MigratorTrait;
    let all = ::migrations::Migrator::migrations();
    let at = all
        .iter()
        .position(|m| m.name() == ::migrations::NAME_FOLDS)
        .expect("the name folds migration");
    ::migrations::Migrator::down(app.store.connection(), Some((all.len() - at) as u32))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_providers_nul_is_stripped_and_the_run_succeeds() {
    for provider in crate::pull::PROVIDERS {
        let mut directory = dirsync::pull::fake::Org::generate(3, 1, 41);
        directory.users[0].title = "Head\u{0} of\u{7} Sales".into();
        directory.groups[0].name = "Team\u{0} One".into();
        let p = crate::pull::pulled(provider, directory, json!({})).await;
        let run = p.sync().await;
        assert_eq!(run.status, "succeeded", "{provider:?}: {:?}", run.errors);
        let user = p.app_user(0).await;
        assert_eq!(user["title"], "Head of Sales", "{provider:?}: {user}");
        let groups = p.app.app_groups().await;
        assert!(
            groups.iter().any(|g| g["name"] == "Team One"),
            "{provider:?}: {groups:?}"
        );
    }
}
