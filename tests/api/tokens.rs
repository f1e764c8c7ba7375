//! The SCIM token cache's staleness rule (`scim::auth::TokenCache`): a token
//! revoked, or a directory deleted, through this server is refused at once;
//! one revoked through another replica on the same database is still
//! accepted here until the cache's TTL runs out, and refused after it.

use std::time::Duration;

use dirsync::admin;
use dirsync::config::ServerSettings;
use dirsync::startup::Application;
use dirsync::store::Store;
use rstest::rstest;
use tokio::time::{Instant, sleep_until};

use crate::helpers::{TestApp, spawn_app_with};
use crate::host_api::token;

#[derive(Debug, Clone, Copy)]
enum Revocation {
    /// `DELETE /api/v1/directories/{directory}/tokens/{token}`
    Token,
    /// `DELETE /api/v1/directories/{directory}`: its tokens go with it.
    Directory,
}

fn with_ttl(ttl: Duration) -> ServerSettings {
    ServerSettings {
        token_cache_ttl: ttl,
        ..ServerSettings::for_tests()
    }
}

/// A fresh token of the app's directory: its id and secret.
async fn new_token(app: &TestApp) -> (String, String) {
    let created = admin::create_token(&app.store, &app.directory_id, Some("cached"))
        .await
        .unwrap();
    (created.id, created.token)
}

/// The status of `GET {origin}/scim/v2/Users` with this SCIM token.
async fn list_status(app: &TestApp, origin: &str, secret: &str) -> u16 {
    app.client
        .get(format!("{origin}/scim/v2/Users"))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Revoke through the host API of the server at `origin`.
async fn revoke(app: &TestApp, origin: &str, how: Revocation, token_id: &str) {
    let path = match how {
        Revocation::Token => format!("/api/v1/directories/{}/tokens/{token_id}", app.directory_id),
        Revocation::Directory => format!("/api/v1/directories/{}", app.directory_id),
    };
    let res = app
        .client
        .delete(format!("{origin}{path}"))
        .bearer_auth(token(&app.tenant, "read write admin"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{how:?}: {}", res.text().await.unwrap());
}

#[rstest]
#[case::a_revoked_token(Revocation::Token)]
#[case::a_deleted_directorys_token(Revocation::Directory)]
#[tokio::test]
async fn what_this_server_revokes_is_refused_at_once(#[case] how: Revocation) {
    // An hour: only the revocation itself, not expiry, can refuse the token.
    let app = spawn_app_with(with_ttl(Duration::from_secs(3600))).await;
    let (id, secret) = new_token(&app).await;
    for _ in 0..2 {
        assert_eq!(list_status(&app, &app.origin, &secret).await, 200);
    }
    revoke(&app, &app.origin, how, &id).await;
    assert_eq!(list_status(&app, &app.origin, &secret).await, 401);
    if let Revocation::Token = how {
        assert_eq!(
            list_status(&app, &app.origin, &app.token).await,
            200,
            "the directory's other token still works"
        );
    }
}

#[rstest]
#[case::a_revoked_token(Revocation::Token)]
#[case::a_deleted_directorys_token(Revocation::Directory)]
#[tokio::test]
async fn what_another_replica_revokes_is_refused_here_once_the_ttl_has_passed(
    #[case] how: Revocation,
) {
    // Far longer than the few requests between caching the token and
    // checking that the cache still answers; short enough to wait out.
    let ttl = Duration::from_secs(3);
    let here = spawn_app_with(with_ttl(ttl)).await;
    // Another replica: its own server and pool on the same database.
    let store = Store::connect(&here.db_url, 4).await.unwrap();
    let replica = Application::with_store(store, with_ttl(ttl), None).unwrap();
    let there = format!("http://127.0.0.1:{}", replica.port());
    tokio::spawn(replica.run_until_stopped());

    let (id, secret) = new_token(&here).await;
    assert_eq!(list_status(&here, &there, &secret).await, 200);
    assert_eq!(list_status(&here, &here.origin, &secret).await, 200);
    // Remembered here by the time this answer arrived, so gone by `ttl`
    // after it.
    let cached_by = Instant::now();

    revoke(&here, &there, how, &id).await;
    assert_eq!(
        list_status(&here, &there, &secret).await,
        401,
        "the replica that revoked refuses at once"
    );
    assert_eq!(
        list_status(&here, &here.origin, &secret).await,
        200,
        "this server still answers from its cache within the TTL"
    );

    sleep_until(cached_by + ttl + Duration::from_secs(1)).await;
    assert_eq!(
        list_status(&here, &here.origin, &secret).await,
        401,
        "refused once the TTL has passed"
    );
}
