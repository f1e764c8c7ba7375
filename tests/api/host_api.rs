//! The host application's API (`/api/v1`) as its backend calls it: bearer
//! JWTs and their claims, users, groups and the event feed, paged by
//! cursors, problems for every bad request, and no tenant ever seeing
//! another's data on any operation of the OpenAPI document.

use std::time::Duration;

use dirsync::api::auth::mint;
use dirsync::config::{ApiSettings, ServerSettings};
use dirsync::reconcile::listing::{Listing, ListingOptions};
use dirsync::reconcile::model::{Profile, Snapshot};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::{Value, json};

use dirsync::pull::fake::{self, Shared};
use dirsync::pull::run::Request;

use crate::helpers::{TestApp, spawn_app, spawn_app_with};
use crate::pull::{Provider, start_fake};

const NOW: i64 = 1_800_000_000_000;

pub fn token(tenant: &str, scope: &str) -> String {
    mint(
        &ApiSettings::for_tests(),
        tenant,
        scope,
        Duration::from_secs(600),
    )
    .unwrap()
}

/// A request to the API with a bearer token; error answers are checked to
/// be problems.
pub async fn call(
    app: &TestApp,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut req = app
        .client
        .request(method, format!("{}{}", app.origin, path));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if status >= 400 {
        assert_eq!(
            headers["content-type"], "application/problem+json",
            "{path}: {body}"
        );
        assert_eq!(body["status"], status, "{body}");
        assert!(
            body["code"].is_string() && body["detail"].is_string(),
            "{body}"
        );
    }
    (status, body, headers)
}

pub async fn get(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    let (status, body, _) = call(app, Some(token), Method::GET, path, None).await;
    (status, body)
}

fn person(n: usize, department: &str, active: bool) -> (String, Snapshot) {
    (
        format!("src-{n}"),
        Snapshot {
            external_id: Some(format!("ext-{n}")),
            email: Some(format!("user{n:02}@example.com")),
            profile: Profile {
                given_name: Some(format!("Given{n:02}")),
                family_name: Some("Family".into()),
                display_name: Some(format!("Given{n:02} Family")),
                department: Some(department.into()),
                ..Profile::default()
            },
            active,
            groups: Vec::new(),
            ..Default::default()
        },
    )
}

/// `n` users through the engine (as a pull would bring them), every third
/// in Sales, user 0 disabled by the directory.
async fn seed(app: &TestApp, n: usize) {
    let users = (0..n)
        .map(|i| person(i, if i % 3 == 0 { "Sales" } else { "Engineering" }, i != 0))
        .collect();
    let mut run = Listing::begin(&app.store, &app.directory_id, ListingOptions::default())
        .await
        .unwrap();
    run.page(&app.store, users, NOW).await.unwrap();
    run.finish(&app.store, true, NOW).await.unwrap();
}

fn emails(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn requests_without_a_valid_token_are_401_with_a_bearer_challenge() {
    let app = spawn_app().await;
    let settings = ApiSettings::for_tests();
    let now = chrono::Utc::now().timestamp() as u64;
    let claims = |exp: u64, iss: &str, aud: &str| json!({"tenant": app.tenant, "scope": "read", "iss": iss, "aud": aud, "exp": exp});
    let sign = |claims: &Value, secret: &str| {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(secret.as_bytes()).unwrap(),
        )
        .unwrap()
    };
    let secret = settings.jwt_secrets[0].clone();
    // alg "none": a header and claims with no signature.
    let none = {
        use base64::Engine;
        let b64 =
            |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.",
            b64(&json!({"alg": "none", "typ": "JWT"})),
            b64(&claims(now + 600, "dirsync", "dirsync-api"))
        )
    };
    let cases: Vec<(Option<String>, &str)> = vec![
        (None, ""),
        (Some("not-a-jwt".into()), "not a JWT"),
        (Some(none), "not a JWT"),
        (
            Some(sign(&claims(now - 3600, "dirsync", "dirsync-api"), &secret)),
            "expired",
        ),
        (
            Some(sign(
                &claims(now + 600, "someone-else", "dirsync-api"),
                &secret,
            )),
            "issuer",
        ),
        (
            Some(sign(&claims(now + 600, "dirsync", "another-api"), &secret)),
            "audience",
        ),
        (
            Some(sign(
                &claims(now + 600, "dirsync", "dirsync-api"),
                "a-different-secret-of-32-bytes-or-more",
            )),
            "signature",
        ),
    ];
    for (token, why) in cases {
        let (status, body, headers) =
            call(&app, token.as_deref(), Method::GET, "/api/v1/users", None).await;
        assert_eq!(status, 401, "{why}: {body}");
        let challenge = headers["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Bearer"), "{challenge}");
        if token.is_some() {
            assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
            assert!(
                body["detail"].as_str().unwrap().contains(why),
                "{why}: {body}"
            );
        }
    }
    // A valid token is let in.
    let (status, _) = get(&app, &token(&app.tenant, "read"), "/api/v1/users").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_missing_scope_is_403_insufficient_scope() {
    let app = spawn_app().await;
    seed(&app, 1).await;
    let read = token(&app.tenant, "read");
    let (_, page) = get(&app, &read, "/api/v1/users").await;
    let id = page["data"][0]["id"].as_str().unwrap().to_owned();
    let (status, body, headers) = call(
        &app,
        Some(&read),
        Method::POST,
        &format!("/api/v1/users/{id}/signed-in"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("insufficient_scope"))
    );
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );
    let (status, _, _) = call(
        &app,
        Some(&token(&app.tenant, "")),
        Method::GET,
        "/api/v1/users",
        None,
    )
    .await;
    assert_eq!(status, 403, "a token with no scope reads nothing");
}

#[tokio::test]
async fn users_page_forward_and_back_by_cursor_and_filter() {
    let app = spawn_app().await;
    seed(&app, 7).await;
    let t = token(&app.tenant, "read");
    let (status, first) = get(&app, &t, "/api/v1/users?limit=3").await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        emails(&first),
        [
            "user00@example.com",
            "user01@example.com",
            "user02@example.com"
        ]
    );
    assert!(first["prev_cursor"].is_null());
    let next = first["next_cursor"].as_str().unwrap();
    let (_, second) = get(&app, &t, &format!("/api/v1/users?limit=3&after={next}")).await;
    assert_eq!(
        emails(&second),
        [
            "user03@example.com",
            "user04@example.com",
            "user05@example.com"
        ]
    );
    let (_, third) = get(
        &app,
        &t,
        &format!(
            "/api/v1/users?limit=3&after={}",
            second["next_cursor"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(emails(&third), ["user06@example.com"]);
    assert!(third["next_cursor"].is_null());
    let (_, back) = get(
        &app,
        &t,
        &format!(
            "/api/v1/users?limit=3&before={}",
            third["prev_cursor"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(emails(&back), emails(&second));
    for (query, expected) in [
        ("status=DEACTIVATED", vec!["user00@example.com"]),
        (
            "department=Sales",
            vec![
                "user00@example.com",
                "user03@example.com",
                "user06@example.com",
            ],
        ),
        ("email=USER04@Example.com", vec!["user04@example.com"]),
        ("q=given05", vec!["user05@example.com"]),
        (
            "q=user0",
            (0..7)
                .map(|i| format!("user0{i}@example.com"))
                .collect::<Vec<_>>()
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .iter()
                .map(|s| &s[..])
                .collect(),
        ),
        (
            &format!("directory={}", app.directory_id),
            (0..7)
                .map(|i| Box::leak(format!("user0{i}@example.com").into_boxed_str()) as &str)
                .collect(),
        ),
        ("directory=unknown", vec![]),
        ("updated_after=2100-01-01T00:00:00Z", vec![]),
        ("q=100%25", vec![]),
    ] {
        let (status, page) = get(&app, &t, &format!("/api/v1/users?{query}")).await;
        assert_eq!(status, 200, "{query}: {page}");
        assert_eq!(emails(&page), expected, "{query}");
    }
}

#[tokio::test]
async fn bad_list_parameters_are_400_problems_naming_the_field() {
    let app = spawn_app().await;
    let t = token(&app.tenant, "read");
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "query"),
        ("after=not-a-cursor", "after"),
        ("after=Z3JvdXBzOng", "after"),
        ("status=GONE", "status"),
        ("updated_after=yesterday", "updated_after"),
    ] {
        let (status, body) = get(&app, &t, &format!("/api/v1/users?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["errors"][0]["field"], field, "{query}: {body}");
    }
    for query in ["after=-1", "limit=1001", "wait=61"] {
        let (status, _) = get(&app, &t, &format!("/api/v1/events?{query}")).await;
        assert_eq!(status, 400, "{query}");
    }
}

#[tokio::test]
async fn a_user_by_id_or_email_with_its_groups_and_directories() {
    let app = spawn_app().await;
    let user_id = app.create_user("ada@example.com").await;
    let group_id = app.create_group("Team", &[&user_id]).await;
    let t = token(&app.tenant, "read");
    let (status, user) = get(&app, &t, "/api/v1/users/by-email/ADA@example.com").await;
    assert_eq!(status, 200, "{user}");
    let id = user["id"].as_str().unwrap();
    let (_, same) = get(&app, &t, &format!("/api/v1/users/{id}")).await;
    assert_eq!(same, user);
    let (_, groups) = get(&app, &t, &format!("/api/v1/users/{id}/groups")).await;
    assert_eq!(groups[0]["name"], "Team");
    let (_, dirs) = get(&app, &t, &format!("/api/v1/users/{id}/directories")).await;
    assert_eq!(dirs[0]["directory_id"], app.directory_id.as_str());
    assert_eq!(dirs[0]["source_id"], user_id.as_str());
    let app_group = groups[0]["id"].as_str().unwrap();
    let (_, members) = get(&app, &t, &format!("/api/v1/groups/{app_group}/members")).await;
    assert_eq!(emails(&members), ["ada@example.com"]);
    let (_, listed) = get(&app, &t, "/api/v1/groups?name=te").await;
    assert_eq!(listed["data"][0]["id"], app_group);
    let (_, filtered) = get(&app, &t, &format!("/api/v1/users?group={app_group}")).await;
    assert_eq!(emails(&filtered), ["ada@example.com"]);
    let _ = group_id;
    for path in [
        "/api/v1/users/nobody",
        "/api/v1/users/by-email/nobody@example.com",
        "/api/v1/groups/nothing",
        "/api/v1/nowhere",
    ] {
        let (status, body) = get(&app, &t, path).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (404, Some("not_found")),
            "{path}"
        );
    }
}

#[tokio::test]
async fn the_hosts_actions_change_the_user_once_each_with_one_event() {
    let app = spawn_app().await;
    seed(&app, 2).await;
    let t = token(&app.tenant, "read write");
    let (_, user) = get(&app, &t, "/api/v1/users/by-email/user01@example.com").await;
    let id = user["id"].as_str().unwrap().to_owned();
    let seq = app.last_seq().await;
    let post = |path: String| {
        let t = t.clone();
        let app = &app;
        async move { call(app, Some(&t), Method::POST, &path, None).await }
    };
    let (status, after, _) = post(format!("/api/v1/users/{id}/signed-in")).await;
    assert_eq!((status, after["status"].as_str()), (200, Some("ACTIVE")));
    let (_, again, _) = post(format!("/api/v1/users/{id}/signed-in")).await;
    assert_eq!(again["status"], "ACTIVE");
    let (_, off, _) = post(format!("/api/v1/users/{id}/deactivate")).await;
    assert_eq!(
        (off["status"].as_str(), off["deactivated_by"].as_str()),
        (Some("DEACTIVATED"), Some("admin"))
    );
    let (_, on, _) = post(format!("/api/v1/users/{id}/reactivate")).await;
    assert_eq!(on["status"], "ACTIVE");
    let (status, role, _) = call(
        &app,
        Some(&t),
        Method::PUT,
        &format!("/api/v1/users/{id}/role"),
        Some(json!({"role": "owner"})),
    )
    .await;
    assert_eq!((status, role["role"].as_str()), (200, Some("owner")));
    assert_eq!(
        app.event_types_after(seq).await,
        [
            "user.updated",
            "user.deactivated",
            "user.reactivated",
            "user.updated"
        ],
        "signing in twice is one event"
    );
    // Bad bodies change nothing.
    for body in [
        json!({"role": ""}),
        json!({"role": "owner", "extra": 1}),
        json!({"rol": "x"}),
        json!("owner"),
    ] {
        let (status, problem, _) = call(
            &app,
            Some(&t),
            Method::PUT,
            &format!("/api/v1/users/{id}/role"),
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, 400, "{body}: {problem}");
    }
    let raw = app
        .client
        .put(format!("{}/api/v1/users/{id}/role", app.origin))
        .bearer_auth(&t)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    assert_eq!(app.event_types_after(seq).await.len(), 4);
}

#[tokio::test]
async fn the_event_feed_reads_in_order_filters_and_long_polls() {
    let app = spawn_app().await;
    seed(&app, 3).await;
    let t = token(&app.tenant, "read write");
    let (_, all) = get(&app, &t, "/api/v1/events?after=0&limit=2").await;
    let seqs: Vec<i64> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2]);
    assert_eq!(all["next_after"], 2);
    let (_, rest) = get(&app, &t, "/api/v1/events?after=2").await;
    assert_eq!(rest["data"][0]["seq"], 3);
    let (_, none) = get(&app, &t, "/api/v1/events?after=3").await;
    assert_eq!(
        (
            none["data"].as_array().unwrap().len(),
            none["next_after"].as_i64()
        ),
        (0, Some(3))
    );
    let (_, created) = get(&app, &t, "/api/v1/events?type=user.created,user.deleted").await;
    assert_eq!(created["data"].as_array().unwrap().len(), 3);
    let (_, user) = get(&app, &t, "/api/v1/users/by-email/user02@example.com").await;
    let id = user["id"].as_str().unwrap().to_owned();
    let (_, about) = get(&app, &t, &format!("/api/v1/events?resource_id={id}")).await;
    assert_eq!(about["data"].as_array().unwrap().len(), 1);
    // A long-poll returns as soon as an event commits, not at its timeout.
    let started = std::time::Instant::now();
    let poll = get(&app, &t, "/api/v1/events?after=3&wait=20");
    let act = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        call(
            &app,
            Some(&t),
            Method::POST,
            &format!("/api/v1/users/{id}/signed-in"),
            None,
        )
        .await
    };
    let ((status, woke), _) = tokio::join!(poll, act);
    assert_eq!(status, 200);
    assert_eq!(woke["data"][0]["seq"], 4, "{woke}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // With nothing to come it returns empty at its timeout.
    let started = std::time::Instant::now();
    let (_, empty) = get(&app, &t, "/api/v1/events?after=4&wait=1").await;
    assert_eq!(empty["data"].as_array().unwrap().len(), 0);
    assert!(started.elapsed() >= Duration::from_millis(900));
}

/// A user with every profile value at its cap (`domain::limits`): its
/// `user.created` event is about 10 kB.
fn large_person(n: usize) -> (String, Snapshot) {
    let at_cap = |c: char| c.to_string().repeat(1024);
    (
        format!("large-{n}"),
        Snapshot {
            external_id: Some(format!("large-{n}")),
            email: Some(format!("large{n:04}@example.com")),
            profile: Profile {
                given_name: Some(at_cap('g')),
                family_name: Some(at_cap('f')),
                display_name: Some(at_cap('d')),
                avatar_url: Some(format!("https://example.com/{}", "a".repeat(2000))),
                department: Some(at_cap('x')),
                title: Some(at_cap('t')),
                employee_number: Some(at_cap('e')),
                manager: Some(at_cap('m')),
                ..Profile::default()
            },
            active: true,
            ..Snapshot::default()
        },
    )
}

/// `n` users at their caps and `small` plain ones after them, through the
/// engine: one `user.created` event each, in that order.
pub async fn seed_large(app: &TestApp, n: usize, small: usize) {
    let users = (0..n)
        .map(large_person)
        .chain((0..small).map(|i| person(1000 + i, "Sales", true)))
        .collect();
    let mut run = Listing::begin(&app.store, &app.directory_id, ListingOptions::default())
        .await
        .unwrap();
    run.page(&app.store, users, NOW).await.unwrap();
    run.finish(&app.store, true, NOW).await.unwrap();
}

/// Bytes of an event as the server measures it (its compact JSON; member
/// order does not change the length).
fn event_bytes(event: &Value) -> u64 {
    event.to_string().len() as u64
}

/// Every page of the feed from the start with `limit=1000`, read by
/// following `next_after` until a page comes back empty.
async fn feed_pages(app: &TestApp, t: &str) -> Vec<Vec<Value>> {
    let mut pages = Vec::new();
    let mut after = 0;
    loop {
        let (status, page) = get(app, t, &format!("/api/v1/events?after={after}&limit=1000")).await;
        assert_eq!(status, 200, "{page}");
        let data = page["data"].as_array().unwrap().clone();
        let Some(last) = data.last() else {
            assert_eq!(page["next_after"], after);
            return pages;
        };
        assert_eq!(
            page["next_after"], last["seq"],
            "next_after is the last event's"
        );
        after = last["seq"].as_i64().unwrap();
        pages.push(data);
    }
}

#[tokio::test]
async fn an_event_page_ends_at_its_byte_budget_and_next_after_reads_every_event_once_in_order() {
    const BUDGET: u64 = 256 * 1024;
    let app = spawn_app_with(ServerSettings {
        max_page_bytes: BUDGET,
        ..ServerSettings::for_tests()
    })
    .await;
    seed_large(&app, 400, 0).await;
    let t = token(&app.tenant, "read");
    let pages = feed_pages(&app, &t).await;
    let sizes: Vec<Vec<u64>> = pages
        .iter()
        .map(|p| p.iter().map(event_bytes).collect())
        .collect();
    let total: u64 = sizes.iter().flatten().sum();
    assert!(total > 3_500_000, "{total} bytes of events in all");
    for (i, page) in sizes.iter().enumerate() {
        let bytes: u64 = page.iter().sum();
        assert!(bytes <= BUDGET, "page {i}: {bytes} bytes");
        assert!(page.len() < 1000, "page {i}: {} events", page.len());
        // It ended where the next event would have passed the budget, not
        // before.
        if let Some(next) = sizes.get(i + 1).and_then(|p| p.first()) {
            assert!(bytes + next > BUDGET, "page {i}: {bytes} + {next} bytes");
        }
    }
    assert!(pages.len() > 10, "{} pages", pages.len());
    let seqs: Vec<i64> = pages
        .iter()
        .flatten()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    let last = app.last_seq().await;
    assert!(last >= 400);
    assert_eq!(seqs, (1..=last).collect::<Vec<_>>());
    // A filtered page keeps the same budget.
    let (_, created) = get(&app, &t, "/api/v1/events?type=user.created&limit=1000").await;
    let created = created["data"].as_array().unwrap();
    assert_eq!(created.len(), sizes[0].len());
    assert!(created.iter().map(event_bytes).sum::<u64>() <= BUDGET);
}

#[tokio::test]
async fn an_event_larger_than_the_budget_comes_alone_on_its_page() {
    const BUDGET: u64 = 4 * 1024;
    let app = spawn_app_with(ServerSettings {
        max_page_bytes: BUDGET,
        ..ServerSettings::for_tests()
    })
    .await;
    seed_large(&app, 3, 12).await;
    let t = token(&app.tenant, "read");
    let pages = feed_pages(&app, &t).await;
    for page in &pages[..3] {
        assert_eq!(page.len(), 1, "{} events", page.len());
        assert!(event_bytes(&page[0]) > BUDGET);
    }
    // The small events after them share pages again, within the budget.
    let rest = &pages[3..];
    assert!(rest.iter().any(|p| p.len() > 1), "{rest:?}");
    for page in rest {
        assert!(page.iter().map(event_bytes).sum::<u64>() <= BUDGET);
    }
    let seqs: Vec<i64> = pages
        .iter()
        .flatten()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=app.last_seq().await).collect::<Vec<_>>());
    assert_eq!(seqs.len(), 15);
}

#[tokio::test]
async fn tenants_are_the_operators_and_a_tenant_reads_only_itself() {
    let app = spawn_app().await;
    let operator = token("*", "read write admin");
    let (status, created, _) = call(
        &app,
        Some(&operator),
        Method::POST,
        "/api/v1/tenants",
        Some(json!({"name": "globex"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let (status, _, _) = call(
        &app,
        Some(&operator),
        Method::POST,
        "/api/v1/tenants",
        Some(json!({"name": "globex"})),
    )
    .await;
    assert_eq!(status, 409);
    let (_, listed) = get(&app, &operator, "/api/v1/tenants?limit=100").await;
    let names: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"globex") && names.contains(&app.tenant.as_str()),
        "{names:?}"
    );
    let (status, _) = get(&app, &operator, "/api/v1/users").await;
    assert_eq!(status, 400, "an operator names the tenant");
    let (status, _) = get(&app, &operator, "/api/v1/users?tenant=globex").await;
    assert_eq!(status, 200);
    let mine = token(&app.tenant, "read write admin");
    let (status, _, _) = call(
        &app,
        Some(&mine),
        Method::POST,
        "/api/v1/tenants",
        Some(json!({"name": "initech"})),
    )
    .await;
    assert_eq!(status, 403);
    let (status, own) = get(&app, &mine, &format!("/api/v1/tenants/{}", app.tenant)).await;
    assert_eq!(
        (status, own["name"].as_str()),
        (200, Some(app.tenant.as_str()))
    );
    let (status, _) = get(&app, &mine, "/api/v1/tenants/globex").await;
    assert_eq!(status, 404);
}

/// A body each operation accepts, so that only the ids it is given decide
/// its answer.
fn walk_body(method: &Method, path: &str) -> Option<Value> {
    match (method.as_str(), path) {
        ("POST", "/api/v1/tenants") => Some(json!({"name": "x"})),
        ("POST", "/api/v1/directories") => Some(json!({"name": "x"})),
        ("POST", "/api/v1/connections") => Some(json!({
            "name": "x", "provider": "okta",
            "settings": {"org_url": "http://127.0.0.1:9", "auth": "ssws"}, "secret": "s",
        })),
        ("PUT", "/api/v1/users/{id}/role") => Some(json!({"role": "owner"})),
        ("POST", "/api/v1/webhooks") => Some(json!({"url": "https://hooks.example.com/x"})),
        ("POST", "/api/v1/webhooks/{id}/replay") => Some(json!({"from_seq": 1})),
        ("POST", "/api/v1/directories/{directory}/policy/preview") => {
            Some(json!({"attribute_mapping": []}))
        }
        ("POST", "/api/v1/connections/{directory}/import") => Some(json!({"all": true})),
        ("PUT" | "PATCH", _) => Some(json!({})),
        _ => None,
    }
}

/// Every operation of the OpenAPI document, called with one tenant's token
/// and another tenant's ids, answers 404 (or 403 where only an operator
/// may act): nothing of another tenant shows on any route.
#[tokio::test]
async fn no_operation_of_the_document_shows_another_tenants_data() {
    let app = spawn_app().await;
    // Another tenant in the same database, with a user and a group, a SCIM
    // directory with a token, and a pull directory with a run.
    let other = "other-co";
    let other_tenant = dirsync::admin::create_tenant(&app.store, other)
        .await
        .unwrap();
    let hook = dirsync::admin::webhooks::create(
        &app.store,
        app.key.as_ref(),
        &dirsync::config::WebhookArgs::for_tests().settings(),
        &other_tenant.id,
        dirsync::admin::webhooks::NewWebhook {
            url: "https://hooks.example.com/theirs".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .webhook;
    let dir = dirsync::admin::create_directory(&app.store, other, "main", "generic")
        .await
        .unwrap();
    let created = dirsync::admin::create_token(&app.store, &dir.id, None)
        .await
        .unwrap();
    let (scim, token_id) = (created.token, created.id);
    let (_fake, definition) = start_fake(Provider::Okta, Shared::new(fake::Org::generate(3, 1, 1)));
    let pull = dirsync::admin::connections::create(
        &app.store,
        app.key.as_ref(),
        other,
        "pulled",
        serde_json::from_value(definition).unwrap(),
    )
    .await
    .unwrap();
    let run = dirsync::admin::connections::sync(
        &app.store,
        app.key.as_ref(),
        &pull.directory_id,
        &Request::manual(),
        "test",
        &mut |_| {},
    )
    .await
    .unwrap();
    let run_id = run["id"].as_str().unwrap().to_owned();
    let scim_post = |path: &str, body: Value| {
        app.request_as(&scim, Method::POST, path)
            .header("content-type", "application/scim+json")
            .body(body.to_string())
            .send()
    };
    let res = scim_post(
        "/Users",
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "victim@example.com",
            "emails": [{"value": "victim@example.com", "primary": true}]
        }),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 201);
    let member = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = scim_post(
        "/Groups",
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Secret", "members": [{"value": member}]
        }),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 201);
    let theirs = token(other, "read");
    let (_, victim) = get(&app, &theirs, "/api/v1/users/by-email/victim@example.com").await;
    let (_, groups) = get(&app, &theirs, "/api/v1/groups").await;
    let user_id = victim["id"].as_str().unwrap().to_owned();
    let group_id = groups["data"][0]["id"].as_str().unwrap().to_owned();
    let (_, document) = get(&app, &theirs, "/api/v1/openapi.json").await;
    let mine = token(&app.tenant, "read write admin");
    let mut walked = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, _) in item.as_object().unwrap() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let id = if path.starts_with("/api/v1/groups") {
                &group_id
            } else if path.starts_with("/api/v1/webhooks") {
                &hook.id
            } else {
                &user_id
            };
            // Connections and runs are a pull directory's.
            let directory = if path.starts_with("/api/v1/connections") {
                &pull.directory_id
            } else {
                &dir.id
            };
            let url = path
                .replace("{id}", id)
                .replace("{email}", "victim@example.com")
                .replace("{tenant}", other)
                .replace("{directory}", directory)
                .replace("{token}", &token_id)
                .replace("{run}", &run_id);
            assert!(
                !url.contains('{'),
                "a path parameter the walk does not fill: {path}"
            );
            // Lists take the tenant from the token; naming another is 404.
            let url = format!("{url}?tenant={other}");
            let body = walk_body(&method, path);
            let (status, response, _) =
                call(&app, Some(&mine), method.clone(), &url, body.clone()).await;
            let expected = if path == "/api/v1/tenants" { 403 } else { 404 };
            assert_eq!(status, expected, "{method} {url}: {response}");
            // Without naming the tenant, the ids still do not answer.
            if path.contains('{') {
                let url = url.split('?').next().unwrap_or_default().to_owned();
                let (status, response, _) =
                    call(&app, Some(&mine), method.clone(), &url, body).await;
                assert_eq!(status, 404, "{method} {url}: {response}");
            }
            walked += 1;
        }
    }
    assert!(walked >= 45, "walked {walked} operations");
    // And the victim is as it was, with its directories, token, connection
    // and run.
    let (_, after) = get(&app, &theirs, &format!("/api/v1/users/{user_id}")).await;
    assert_eq!(after, victim);
    let (_, tokens) = get(
        &app,
        &theirs,
        &format!("/api/v1/directories/{}/tokens", dir.id),
    )
    .await;
    assert_eq!(tokens[0]["revoked_at"], Value::Null, "{tokens}");
    for path in [
        format!("/api/v1/directories/{}", dir.id),
        format!("/api/v1/connections/{}", pull.directory_id),
        format!("/api/v1/runs/{run_id}"),
        format!("/api/v1/webhooks/{}", hook.id),
    ] {
        let (status, body) = get(&app, &theirs, &path).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
}

#[tokio::test]
async fn without_a_key_the_api_answers_503_saying_how_to_configure_one() {
    let app = spawn_app_with(ServerSettings {
        api: ApiSettings {
            jwt_secrets: Vec::new(),
            ..ApiSettings::for_tests()
        },
        ..ServerSettings::for_tests()
    })
    .await;
    let (status, body, _) = call(&app, Some("whatever"), Method::GET, "/api/v1/users", None).await;
    assert_eq!((status, body["code"].as_str()), (503, Some("api_off")));
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("DIRSYNC_API_JWT_SECRET")
    );
    // SCIM is not affected.
    assert_eq!(app.get("/Users").await.status(), 200);
}

#[tokio::test]
async fn the_served_document_is_the_committed_one_and_the_reference_is_browsable() {
    let app = spawn_app().await;
    let res = app
        .client
        .get(format!("{}/api/v1/openapi.json", app.origin))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let served = res.text().await.unwrap();
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
            .unwrap();
    assert_eq!(
        served, committed,
        "openapi/openapi.json is stale: run `cargo run -q -- openapi > openapi/openapi.json`"
    );
    let document: Value = serde_json::from_str(&served).unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in ["/api/docs", "/api/docs/", "/api/docs/index.html"] {
        let docs = app
            .client
            .get(format!("{}{path}", app.origin))
            .send()
            .await
            .unwrap();
        assert_eq!(docs.status(), 200, "{path}");
        assert!(docs.text().await.unwrap().contains("swagger-ui"), "{path}");
    }
}

// Multi-threaded: the fake provider answers the `dirsync serve` child from
// this test's runtime while the test waits on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_never_logs_a_token_a_scim_secret_a_credential_a_webhook_secret_or_its_keys() {
    use crate::helpers::Served;
    let app = spawn_app().await;
    let jwt_secret = format!("jwt-{}", uuid::Uuid::new_v4().simple());
    let sealing_key = dirsync::crypto::SealingKey::generate().expose().to_owned();
    let served = Served::start(
        &app.db_url,
        &[
            ("DIRSYNC_API_JWT_SECRET", jwt_secret.as_str()),
            ("DIRSYNC_SECRET_KEY", sealing_key.as_str()),
            ("DIRSYNC_WEBHOOK_ALLOW_HTTP_LOOPBACK", "true"),
        ],
    );
    let settings = ApiSettings {
        jwt_secrets: vec![jwt_secret.clone()],
        ..ApiSettings::for_tests()
    };
    let jwt = mint(
        &settings,
        &app.tenant,
        "read write admin",
        Duration::from_secs(600),
    )
    .unwrap();
    let api = format!("{}/api/v1", served.origin);
    let client = &app.client;
    let ok = client
        .get(format!("{api}/users"))
        .bearer_auth(&jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    // Where careless clients put tokens: the query string, a tampered one.
    for bad in [
        client.get(format!("{api}/users?access_token={jwt}")),
        client
            .get(format!("{api}/users"))
            .bearer_auth(format!("{jwt}x")),
    ] {
        assert_eq!(bad.send().await.unwrap().status(), 401);
    }
    // A SCIM token made over the API: its secret is in this one answer.
    let made: Value = client
        .post(format!("{api}/directories/{}/tokens", app.directory_id))
        .bearer_auth(&jwt)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let scim_secret = made["token"].as_str().expect("the secret, once").to_owned();
    // A webhook endpoint: its secret is in this one answer, and what the
    // server signs with it must not show either.
    let receiver = crate::webhooks::Receiver::start().await;
    let hook: Value = client
        .post(format!("{api}/webhooks"))
        .bearer_auth(&jwt)
        .json(&json!({"url": receiver.url}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let webhook_secret = hook["secret"]
        .as_str()
        .expect("the secret, once")
        .to_owned();
    // A connection with credentials, synced through the API.
    let shared = Shared::new(fake::Org::generate(12, 2, 5));
    let (_fake, mut definition) = start_fake(Provider::Entra, shared.clone());
    let credential = definition["secret"].as_str().unwrap().to_owned();
    definition["name"] = json!("corp");
    definition["schedule"] = json!({"enabled": false});
    let created = client
        .post(format!("{api}/connections"))
        .bearer_auth(&jwt)
        .json(&definition)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let started: Value = client
        .post(format!("{api}/connections/corp/sync"))
        .bearer_auth(&jwt)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let run_id = started["run_id"].as_str().unwrap();
    let mut run = Value::Null;
    for _ in 0..200 {
        run = client
            .get(format!("{api}/runs/{run_id}"))
            .bearer_auth(&jwt)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if run["status"] != "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(run["status"], "succeeded", "{run}");
    // The run's events reached the endpoint, signed.
    receiver.wait_for(1).await;
    let log = served.stop();
    assert!(
        log.contains("TRACE") || log.contains("DEBUG"),
        "the logs were on"
    );
    let mut never = vec![
        jwt_secret,
        sealing_key,
        jwt.clone(),
        scim_secret,
        credential,
        webhook_secret,
    ];
    for got in receiver.got() {
        never.extend(
            got.headers["webhook-signature"]
                .split(' ')
                .map(|s| s.trim_start_matches("v1,").to_owned()),
        );
    }
    // A JWT's signature alone is as good as a leak of the token.
    never.push(jwt.rsplit('.').next().unwrap().to_owned());
    never.extend(shared.issued_tokens());
    assert!(
        !shared.issued_tokens().is_empty(),
        "the run did authenticate"
    );
    for needle in &never {
        assert!(
            !log.contains(needle.as_str()),
            "a secret appeared in the server's log"
        );
    }
}
