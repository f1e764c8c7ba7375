//! The operational endpoints: `/healthz`, `/readyz` (503 while a migration
//! is missing), `/metrics` (the series, and its optional token), and the
//! request id every response carries.
//!
//! The metrics recorder is one per process and every test of this binary
//! records into it at once, so counters are compared before and after
//! (`at_least`), never for exact values; per-tenant series are exact.

use std::collections::HashMap;

use ::migrations::MigratorTrait;
use dirsync::config::ServerSettings;
use dirsync::crypto::Secret;
use dirsync::pull::fake::Org;
use reqwest::Method;
use rstest::rstest;
use serde_json::json;

use crate::helpers::{TestApp, header, json, patch_op, spawn_app, spawn_app_with};
use crate::pull::{Provider, pulled};

/// Every sample of `/metrics`: `name{labels}` → value.
async fn scrape(app: &TestApp) -> HashMap<String, f64> {
    let res = app
        .client
        .get(format!("{}/metrics", app.origin))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(header(&res, "content-type").starts_with("text/plain; version=0.0.4"));
    let text = res.text().await.unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            (series.to_owned(), value.parse().unwrap())
        })
        .collect()
}

fn value(samples: &HashMap<String, f64>, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}

/// The series grew by at least `by` between two scrapes.
fn at_least(before: &HashMap<String, f64>, after: &HashMap<String, f64>, series: &str, by: f64) {
    let (b, a) = (value(before, series), value(after, series));
    assert!(a >= b + by, "{series}: {b} then {a}, expected +{by}");
}

#[tokio::test]
async fn healthz_answers_ok_without_credentials() {
    let app = spawn_app().await;
    let res = app
        .client
        .get(format!("{}/healthz", app.origin))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(json(res).await, json!({"status": "ok"}));
}

#[tokio::test]
async fn readyz_is_ok_when_migrated_and_503_naming_the_migration_rolled_back() {
    let app = spawn_app().await;
    let readyz = format!("{}/readyz", app.origin);
    let res = app.client.get(&readyz).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(json(res).await, json!({"status": "ok"}));

    ::migrations::Migrator::down(app.store.connection(), Some(1))
        .await
        .unwrap();
    let last = ::migrations::Migrator::migrations()
        .last()
        .unwrap()
        .name()
        .to_owned();
    let res = app.client.get(&readyz).send().await.unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(header(&res, "content-type"), "application/problem+json");
    let body = json(res).await;
    assert_eq!(body["status"], 503, "{body}");
    assert_eq!(body["title"], "Service Unavailable", "{body}");
    assert_eq!(body["checks"]["database"], "ok", "{body}");
    assert_eq!(body["checks"]["migrations"], "1 not applied", "{body}");
    assert_eq!(body["pending_migrations"], json!([last]), "{body}");
    assert!(body["detail"].as_str().unwrap().contains("migrations"));

    app.store.migrate().await.unwrap();
    let res = app.client.get(&readyz).send().await.unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn metrics_count_scim_outcomes_requests_by_route_pattern_and_events() {
    let app = spawn_app().await;
    let before = scrape(&app).await;
    let id = app.create_user("metered@example.com").await;
    let res = app
        .patch(
            &format!("/Users/{id}"),
            &patch_op(json!([{"op": "replace", "path": "active", "value": false}])),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(app.get(&format!("/Users/{id}")).await.status(), 200);
    let res = app
        .client
        .get(format!("{}/no/such/{id}", app.origin))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let after = scrape(&app).await;

    for outcome in ["created", "deactivated"] {
        let series = format!(r#"dirsync_scim_user_writes_total{{outcome="{outcome}"}}"#);
        at_least(&before, &after, &series, 1.0);
    }
    at_least(
        &before,
        &after,
        r#"dirsync_http_requests_total{route="/scim/v2/Users/{id}",method="GET",status="200"}"#,
        1.0,
    );
    at_least(
        &before,
        &after,
        r#"dirsync_http_request_duration_seconds_count{route="/scim/v2/Users/{id}",method="GET",status="200"}"#,
        1.0,
    );
    at_least(
        &before,
        &after,
        r#"dirsync_http_requests_total{route="unmatched",method="GET",status="404"}"#,
        1.0,
    );
    assert!(
        after.keys().all(|series| !series.contains(&id)),
        "a raw path with an id became a label"
    );
    at_least(
        &before,
        &after,
        r#"dirsync_events_appended_total{type="user.created"}"#,
        1.0,
    );
    at_least(
        &before,
        &after,
        r#"dirsync_events_appended_total{type="user.deactivated"}"#,
        1.0,
    );
    let tenant_id = app.store.tenant_by_name(&app.tenant).await.unwrap().id;
    let gauge = format!(r#"dirsync_events_last_seq{{tenant="{tenant_id}"}}"#);
    assert_eq!(value(&after, &gauge), app.last_seq().await as f64);
}

#[tokio::test]
async fn metrics_count_pull_runs_by_provider_and_status_with_their_duration() {
    let p = pulled(Provider::Entra, Org::generate(5, 1, 41), json!({})).await;
    let before = scrape(&p.app).await;
    let run = p.sync().await;
    assert_eq!(run.status, "succeeded");
    let after = scrape(&p.app).await;
    let labels = r#"{provider="entra",status="succeeded"}"#;
    at_least(
        &before,
        &after,
        &format!("dirsync_pull_runs_total{labels}"),
        1.0,
    );
    at_least(
        &before,
        &after,
        &format!("dirsync_pull_run_duration_seconds_count{labels}"),
        1.0,
    );
}

#[rstest]
#[case::no_header(None, 401)]
#[case::another_token(Some("Bearer not-the-token"), 401)]
#[case::another_scheme(Some("Basic bWV0cmljcy10b2tlbi16cXg="), 401)]
#[case::the_token(Some("Bearer metrics-token-zqx"), 200)]
#[case::the_token_with_a_lowercase_scheme(Some("bearer metrics-token-zqx"), 200)]
#[tokio::test]
async fn metrics_with_a_configured_token_answer_only_that_bearer_token(
    #[case] authorization: Option<&str>,
    #[case] status: u16,
) {
    let app = spawn_app_with(ServerSettings {
        metrics_token: Some(Secret::new("metrics-token-zqx".into())),
        ..ServerSettings::for_tests()
    })
    .await;
    let mut req = app.client.get(format!("{}/metrics", app.origin));
    if let Some(value) = authorization {
        req = req.header("authorization", value);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status().as_u16(), status);
    if status == 401 {
        assert_eq!(
            header(&res, "www-authenticate"),
            r#"Bearer realm="metrics""#
        );
        assert_eq!(header(&res, "content-type"), "application/problem+json");
        assert_eq!(json(res).await["status"], 401);
    } else {
        assert!(
            res.text()
                .await
                .unwrap()
                .contains("dirsync_http_requests_total")
        );
    }
}

#[rstest]
#[case::none(None, None)]
#[case::a_uuid(
    Some("0190a3c2-7d4e-7b21-9c1e-3f5a6b7c8d9e".into()),
    Some("0190a3c2-7d4e-7b21-9c1e-3f5a6b7c8d9e")
)]
#[case::a_proxys_hex_id(
    Some("f3a9c1d2e4b5a6c7d8e9f0a1b2c3d4e5".into()),
    Some("f3a9c1d2e4b5a6c7d8e9f0a1b2c3d4e5")
)]
#[case::malformed(Some("two words".into()), None)]
#[case::too_long(Some("a".repeat(129)), None)]
#[tokio::test]
async fn every_response_carries_a_request_id_echoing_a_well_formed_incoming_one(
    #[case] incoming: Option<String>,
    #[case] echoed: Option<&str>,
) {
    let app = spawn_app().await;
    // An open route, a SCIM route that refuses the caller, and no route.
    let requests = [
        app.client.get(format!("{}/healthz", app.origin)),
        app.request_as("wrong-token", Method::GET, "/Users"),
        app.client.get(format!("{}/nowhere", app.origin)),
    ];
    for req in requests {
        let req = match &incoming {
            Some(id) => req.header("x-request-id", id),
            None => req,
        };
        let res = req.send().await.unwrap();
        let id = header(&res, "x-request-id");
        match echoed {
            Some(expected) => assert_eq!(id, expected),
            None => {
                uuid::Uuid::parse_str(&id)
                    .unwrap_or_else(|_| panic!("a generated id is a UUID: {id}"));
            }
        }
    }
}
