//! JWT verification benchmark: what `api::auth::Keys::verify` (the function
//! the `/api/v1` extractor awaits for every request) costs per token, for an
//! HS256 token minted as `dirsync api-token` mints it and for RS256, ES256
//! and EdDSA tokens signed with the test key pairs.
//!
//! cargo bench --bench jwt_verify -- [--millis-per-batch MS] [--batches B]
//!
//! The keys are configured together, as a server with a secret and three PEM
//! public keys would have them (`tests/api/fixtures/jwt`: the file name is the
//! `kid`), so each verification also pays for picking its key. Each algorithm
//! runs B batches of about MS milliseconds after a warm-up; the median
//! batch's µs/verify is printed, with the fastest and slowest batch.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The allocator `dirsync` itself runs with (src/main.rs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use dirsync::api::auth::{self, Keys};
use dirsync::config::ApiSettings;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/api/fixtures/jwt"
    ))
    .join(name)
}

/// A token as a host application's IdP would sign it: the claims `mint`
/// writes, the key's `kid` in the header.
fn signed(alg: Algorithm, kid: &str, private_key: &str) -> String {
    let pem = std::fs::read(fixture(private_key)).unwrap();
    let key = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
        Algorithm::ES256 => EncodingKey::from_ec_pem(&pem),
        _ => EncodingKey::from_ed_pem(&pem),
    }
    .unwrap();
    let now = chrono::Utc::now().timestamp();
    let claims = serde_json::json!({
        "sub": "bench", "tenant": "bench", "scope": "read",
        "iss": "dirsync", "aud": "dirsync-api",
        "exp": now + 3600, "nbf": now, "iat": now,
    });
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

/// Verifications per second-ish batch: `n` calls, timed together.
async fn batch(keys: &Keys, token: &str, n: u32) -> Duration {
    let started = Instant::now();
    for _ in 0..n {
        let principal = keys.verify(std::hint::black_box(token)).await.unwrap();
        std::hint::black_box(principal);
    }
    started.elapsed()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let millis: u64 = arg("--millis-per-batch").map_or(300, |v| v.parse().unwrap());
    let batches: usize = arg("--batches").map_or(7, |v| v.parse().unwrap());
    let settings = ApiSettings {
        jwt_public_keys: vec![fixture("rsa.pem"), fixture("ec.pem"), fixture("ed.pem")],
        ..ApiSettings::for_tests()
    };
    let keys = Keys::from_settings(&settings).unwrap().unwrap();
    let hs256 = auth::mint(&settings, "bench", "read", Duration::from_secs(3600)).unwrap();
    let tokens = [
        ("HS256 (dirsync api-token)", hs256),
        (
            "RS256 (2048-bit)",
            signed(Algorithm::RS256, "rsa", "rsa.key"),
        ),
        ("ES256 (P-256)", signed(Algorithm::ES256, "ec", "ec.key")),
        ("EdDSA (Ed25519)", signed(Algorithm::EdDSA, "ed", "ed.key")),
    ];
    println!(
        "jwt-verify: api::auth::Keys::verify, 1 secret + 3 PEM keys configured; \
         {batches} batches of ~{millis} ms each"
    );
    println!("| algorithm | µs/verify (median batch) | fastest | slowest | verifies/s (1 core) |");
    println!("|---|---:|---:|---:|---:|");
    for (label, token) in &tokens {
        // Warm up, and size a batch to about `millis`.
        let probe = batch(&keys, token, 50).await;
        let per = probe.as_secs_f64() / 50.0;
        let n = ((millis as f64 / 1000.0) / per).clamp(10.0, 10_000_000.0) as u32;
        let mut us: Vec<f64> = Vec::with_capacity(batches);
        for _ in 0..batches {
            let t = batch(&keys, token, n).await;
            us.push(t.as_secs_f64() * 1e6 / f64::from(n));
        }
        us.sort_by(f64::total_cmp);
        let median = us[us.len() / 2];
        println!(
            "| {label} | {median:.2} | {:.2} | {:.2} | {:.0} |",
            us[0],
            us[us.len() - 1],
            1e6 / median
        );
    }
}
