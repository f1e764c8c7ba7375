//! The host API's keys other than HS256 secrets: PEM public keys (RS256,
//! ES256, EdDSA; the file name is the `kid`) and a JWKS URL looked up by
//! `kid`, fetched on an unknown one at most once per 30 s. A token cannot
//! choose an algorithm its key was not meant for.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dirsync::config::{ApiSettings, ServerSettings};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_with};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/api/fixtures/jwt"
    ))
    .join(name)
}

fn claims(tenant: &str) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({"tenant": tenant, "scope": "read", "iss": "dirsync", "aud": "dirsync-api", "exp": now + 600})
}

fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, tenant: &str) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, &claims(tenant), key).unwrap()
}

fn private(name: &str, alg: Algorithm) -> EncodingKey {
    let pem = std::fs::read(fixture(name)).unwrap();
    match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
        Algorithm::ES256 => EncodingKey::from_ec_pem(&pem),
        _ => EncodingKey::from_ed_pem(&pem),
    }
    .unwrap()
}

async fn status(app: &TestApp, token: &str) -> u16 {
    app.client
        .get(format!("{}/api/v1/users", app.origin))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn with(api: ApiSettings) -> TestApp {
    spawn_app_with(ServerSettings {
        api,
        ..ServerSettings::for_tests()
    })
    .await
}

#[tokio::test]
async fn pem_public_keys_verify_their_own_algorithms_and_nothing_else() {
    let app = with(ApiSettings {
        jwt_secrets: Vec::new(),
        jwt_public_keys: vec![fixture("rsa.pem"), fixture("ec.pem"), fixture("ed.pem")],
        ..ApiSettings::for_tests()
    })
    .await;
    let t = &app.tenant;
    for (file, alg, kid) in [
        ("rsa.key", Algorithm::RS256, "rsa"),
        ("ec.key", Algorithm::ES256, "ec"),
        ("ed.key", Algorithm::EdDSA, "ed"),
    ] {
        let key = private(file, alg);
        assert_eq!(
            status(&app, &sign(alg, Some(kid), &key, t)).await,
            200,
            "{alg:?} with its kid"
        );
        assert_eq!(
            status(&app, &sign(alg, None, &key, t)).await,
            200,
            "{alg:?} without a kid"
        );
    }
    // A kid naming another key is not tried against the right one.
    let rsa = private("rsa.key", Algorithm::RS256);
    assert_eq!(
        status(&app, &sign(Algorithm::RS256, Some("ec"), &rsa, t)).await,
        401
    );
    // Algorithm confusion: the RSA public key's PEM used as an HMAC secret.
    let pem = std::fs::read(fixture("rsa.pem")).unwrap();
    let confused = sign(
        Algorithm::HS256,
        None,
        &EncodingKey::from_secret(&pem).unwrap(),
        t,
    );
    assert_eq!(status(&app, &confused).await, 401);
    let confused = sign(
        Algorithm::HS256,
        Some("rsa"),
        &EncodingKey::from_secret(&pem).unwrap(),
        t,
    );
    assert_eq!(status(&app, &confused).await, 401);
}

#[tokio::test]
async fn an_unreadable_public_key_or_a_short_secret_stops_the_server_with_a_reason() {
    for (api, words) in [
        (
            ApiSettings {
                jwt_public_keys: vec![fixture("README.md")],
                ..ApiSettings::for_tests()
            },
            "not an RSA, EC P-256 or Ed25519 public key",
        ),
        (
            ApiSettings {
                jwt_secrets: vec!["short".into()],
                ..ApiSettings::for_tests()
            },
            "at least 32 bytes",
        ),
        (
            ApiSettings {
                jwks_url: Some("http://idp.example.com/jwks".into()),
                ..ApiSettings::for_tests()
            },
            "must be https",
        ),
    ] {
        let store = dirsync::store::Store::connect("sqlite::memory:", 1)
            .await
            .unwrap();
        let err = dirsync::startup::Application::with_store(
            store,
            ServerSettings {
                api,
                ..ServerSettings::for_tests()
            },
            None,
        )
        .err()
        .expect("refused");
        assert!(format!("{err:#}").contains(words), "{err:#}");
    }
}

/// A JWKS endpoint on loopback that counts its fetches.
async fn jwks_server(fetches: Arc<AtomicU64>) -> String {
    use actix_web::{App, HttpResponse, HttpServer, web};
    let body = std::fs::read_to_string(fixture("jwks.json")).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    let server = HttpServer::new(move || {
        let (body, fetches) = (body.clone(), fetches.clone());
        App::new().route(
            "/jwks",
            web::get().to(move || {
                fetches.fetch_add(1, Ordering::SeqCst);
                let body = body.clone();
                async move {
                    HttpResponse::Ok()
                        .content_type("application/json")
                        .body(body)
                }
            }),
        )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    url
}

#[tokio::test]
async fn a_jwks_is_fetched_for_an_unknown_kid_cached_and_not_refetched_within_30_seconds() {
    let fetches = Arc::new(AtomicU64::new(0));
    let url = jwks_server(fetches.clone()).await;
    let app = with(ApiSettings {
        jwt_secrets: Vec::new(),
        jwks_url: Some(url),
        ..ApiSettings::for_tests()
    })
    .await;
    let rsa = private("rsa.key", Algorithm::RS256);
    let t = &app.tenant;
    // An unknown kid fetches the set once; it is not there.
    assert_eq!(
        status(&app, &sign(Algorithm::RS256, Some("k2"), &rsa, t)).await,
        401
    );
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    // Asking again within 30 s fetches nothing (no amplification).
    assert_eq!(
        status(&app, &sign(Algorithm::RS256, Some("k2"), &rsa, t)).await,
        401
    );
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    // The key it did fetch verifies, from the cache.
    for _ in 0..3 {
        assert_eq!(
            status(&app, &sign(Algorithm::RS256, Some("k1"), &rsa, t)).await,
            200
        );
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    // A JWKS key verifies only its own algorithm; no kid, no JWKS key.
    let pem = std::fs::read(fixture("rsa.pem")).unwrap();
    let confused = sign(
        Algorithm::HS256,
        Some("k1"),
        &EncodingKey::from_secret(&pem).unwrap(),
        t,
    );
    assert_eq!(status(&app, &confused).await, 401);
    assert_eq!(
        status(&app, &sign(Algorithm::RS256, None, &rsa, t)).await,
        401
    );
}

/// A verified token is remembered (by its hash) until its `exp`, at most a
/// minute: the same token again skips the signature check; a changed one,
/// or the same one past its `exp`, does not; the memory is bounded.
#[tokio::test]
async fn a_verified_token_is_taken_again_from_a_bounded_cache_until_it_expires() {
    use dirsync::api::auth::Keys;
    let keys = Keys::from_settings(&ApiSettings {
        jwt_secrets: Vec::new(),
        jwt_public_keys: vec![fixture("rsa.pem")],
        leeway_secs: 0,
        ..ApiSettings::for_tests()
    })
    .unwrap()
    .unwrap();
    let key = private("rsa.key", Algorithm::RS256);
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("rsa".into());
    let now = chrono::Utc::now().timestamp();
    let short = |exp: i64| {
        jsonwebtoken::encode(
            &header,
            &json!({"tenant": "acme", "scope": "read", "iss": "dirsync", "aud": "dirsync-api", "exp": exp}),
            &key,
        )
        .unwrap()
    };
    let token = short(now + 2);
    let first = keys.verify(&token).await.unwrap();
    let again = keys.verify(&token).await.unwrap();
    assert_eq!(
        (first.tenant.as_str(), again.tenant.as_str()),
        ("acme", "acme")
    );
    assert_eq!(keys.cached_tokens(), 1);
    // One character changed is another token: checked, and refused.
    let mut tampered = token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    assert!(keys.verify(&tampered).await.is_err());
    // Past its exp the cache does not answer for it.
    tokio::time::sleep(std::time::Duration::from_millis(3_100)).await;
    let err = keys.verify(&token).await.unwrap_err();
    assert!(format!("{err:?}").contains("expired"), "{err:?}");

    // Many distinct tokens: the cache stays within its bound.
    let secret = ApiSettings::for_tests();
    let hs = Keys::from_settings(&secret).unwrap().unwrap();
    for n in 0..10_050 {
        let token = dirsync::api::auth::mint(
            &secret,
            &format!("t{n}"),
            "read",
            std::time::Duration::from_secs(600),
        )
        .unwrap();
        hs.verify(&token).await.unwrap();
    }
    assert!(hs.cached_tokens() <= 10_000, "{}", hs.cached_tokens());
}
