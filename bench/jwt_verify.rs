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
/// writes, the key's `kid` in the header; `n` makes each one distinct.
fn signed(alg: Algorithm, kid: &str, private_key: &str, n: usize) -> String {
    let pem = std::fs::read(fixture(private_key)).unwrap();
    let key = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
        Algorithm::ES256 => EncodingKey::from_ec_pem(&pem),
        _ => EncodingKey::from_ed_pem(&pem),
    }
    .unwrap();
    let now = chrono::Utc::now().timestamp();
    let claims = serde_json::json!({
        "sub": format!("bench-{n}"), "tenant": "bench", "scope": "read",
        "iss": "dirsync", "aud": "dirsync-api",
        "exp": now + 3600, "nbf": now, "iat": now,
    });
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

/// One batch: each token verified once, timed together.
async fn batch(keys: &Keys, tokens: &[String]) -> Duration {
    let started = Instant::now();
    for token in tokens {
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
    type Signer = Box<dyn Fn(usize) -> String>;
    let hs_settings = settings.clone();
    let algorithms: Vec<(&str, Signer)> = vec![
        (
            "HS256 (dirsync api-token)",
            Box::new(move |n| {
                auth::mint(
                    &hs_settings,
                    &format!("bench-{n}"),
                    "read",
                    Duration::from_secs(3600),
                )
                .unwrap()
            }),
        ),
        (
            "RS256 (2048-bit)",
            Box::new(|n| signed(Algorithm::RS256, "rsa", "rsa.key", n)),
        ),
        (
            "ES256 (P-256)",
            Box::new(|n| signed(Algorithm::ES256, "ec", "ec.key", n)),
        ),
        (
            "EdDSA (Ed25519)",
            Box::new(|n| signed(Algorithm::EdDSA, "ed", "ed.key", n)),
        ),
    ];
    println!(
        "jwt-verify: api::auth::Keys::verify, 1 secret + 3 PEM keys configured; \
         {batches} batches of ~{millis} ms each"
    );
    println!(
        "| algorithm | µs/verify, a new token (median batch) | fastest | slowest | µs/verify, the same token again (cached) |"
    );
    println!("|---|---:|---:|---:|---:|");
    for (label, sign) in &algorithms {
        // Size a batch to about `millis` from a probe of fresh tokens.
        let probe: Vec<String> = (0..20).map(|i| sign(1_000_000 + i)).collect();
        let per = batch(&keys, &probe).await.as_secs_f64() / 20.0;
        let n = ((millis as f64 / 1000.0) / per).clamp(10.0, 20_000.0) as usize;
        let mut us: Vec<f64> = Vec::with_capacity(batches);
        for b in 0..batches {
            // Distinct tokens, signed before the clock starts: each one is
            // a first verification (no cache hit).
            let tokens: Vec<String> = (0..n).map(|i| sign(b * n + i)).collect();
            let t = batch(&keys, &tokens).await;
            us.push(t.as_secs_f64() * 1e6 / n as f64);
        }
        us.sort_by(f64::total_cmp);
        let median = us[us.len() / 2];
        let again = vec![sign(9_999_999); 100_000];
        let cached = batch(&keys, &again).await.as_secs_f64() * 1e6 / again.len() as f64;
        println!(
            "| {label} | {median:.2} | {:.2} | {:.2} | {cached:.2} |",
            us[0],
            us[us.len() - 1],
        );
    }
}
