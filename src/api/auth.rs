//! Bearer JWTs for the host application's API (RFC 6750, RFC 7519), checked
//! with `jsonwebtoken`: signature by a configured key (HS256 secrets, PEM
//! public keys, or a JWKS URL looked up by `kid`), `exp` and `nbf` with a
//! small leeway, `iss` and `aud`. Each key has its own algorithms, so a
//! token cannot pick one the key was not meant for (no `none`, no RSA key
//! used as an HMAC secret). Authorization comes from two claims: `tenant`
//! (a tenant's name or id, or `*` for the operator's own tools) and `scope`
//! (space-separated: `read`, `write`, `admin`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;

use super::ApiState;
use super::problem::Problem;
use crate::config::ApiSettings;

/// What a token may do. `admin` includes `write`, which includes `read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    Read,
    Write,
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }

    fn parse(word: &str) -> Option<Scope> {
        match word {
            "read" => Some(Scope::Read),
            "write" => Some(Scope::Write),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }
}

/// The claim `tenant` names the operator's tools with this.
pub const EVERY_TENANT: &str = "*";

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    pub tenant: String,
    #[serde(default)]
    pub scope: String,
    pub iss: String,
    pub aud: String,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
}

/// The verified caller of one request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub subject: Option<String>,
    /// A tenant's name or id, or `*`.
    pub tenant: String,
    scopes: Vec<Scope>,
}

impl Principal {
    /// Whether the token carries `scope` or one above it.
    pub fn may(&self, scope: Scope) -> bool {
        self.scopes.iter().any(|s| *s >= scope)
    }

    /// 403 unless the token carries `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), Problem> {
        if self.may(scope) {
            Ok(())
        } else {
            Err(Problem::insufficient_scope(scope.as_str()))
        }
    }

    pub fn is_operator(&self) -> bool {
        self.tenant == EVERY_TENANT
    }
}

/// One configured verification key and the algorithms it verifies.
struct Key {
    kid: Option<String>,
    algorithms: Vec<Algorithm>,
    key: DecodingKey,
}

/// Keys fetched from a JWKS URL, by `kid`.
struct Jwks {
    url: String,
    client: reqwest::Client,
    keys: RwLock<HashMap<String, (Algorithm, DecodingKey)>>,
    /// When the set was last fetched (refreshes are rate-limited).
    fetched_at: RwLock<Option<Instant>>,
}

/// How often an unknown `kid` may trigger a JWKS fetch.
const JWKS_REFRESH: Duration = Duration::from_secs(30);

/// Every key the API verifies tokens with.
pub struct Keys {
    keys: Vec<Key>,
    jwks: Option<Jwks>,
    issuer: String,
    audience: String,
    leeway: u64,
    /// Tokens verified lately (by SHA-256), so a client that sends the same
    /// token again costs a lookup, not a signature check (an RS256 check
    /// takes over 100 µs).
    verified: std::sync::Mutex<std::collections::HashMap<[u8; 32], Verified>>,
}

/// A verified token's caller, and until when (epoch seconds) the cache may
/// answer for it: its `exp`, and at most `VERIFIED_FOR` after its check, so
/// a key taken out of the configuration or the JWKS stops working within
/// that time.
#[derive(Debug, Clone)]
struct Verified {
    principal: Principal,
    until: u64,
}

/// How long a verified token is taken without checking its signature again.
pub const VERIFIED_FOR: u64 = 60;
/// Most tokens the cache holds: memory stays bounded whatever clients send.
const VERIFIED_MAX: usize = 10_000;

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Keys({} keys, jwks: {})",
            self.keys.len(),
            self.jwks.is_some()
        )
    }
}

/// HS256 secrets shorter than this are refused (RFC 7518 §3.2: a key at
/// least as long as the hash output).
const MIN_SECRET_BYTES: usize = 32;

/// What to tell an operator whose server has no key.
pub const NO_KEY: &str = "the host application's API (/api/v1) has no key to verify tokens with: set DIRSYNC_API_JWT_SECRET (--api-jwt-secret, at least 32 bytes), --api-jwt-public-key FILE.pem, or --api-jwks-url URL";

impl Keys {
    /// The keys the settings name; None when they name none (the API is
    /// then off, and says why). A key that cannot be read is an error.
    pub fn from_settings(settings: &ApiSettings) -> Result<Option<Keys>, String> {
        let mut keys = Vec::new();
        for secret in &settings.jwt_secrets {
            if secret.len() < MIN_SECRET_BYTES {
                return Err(format!(
                    "an API JWT secret must be at least {MIN_SECRET_BYTES} bytes"
                ));
            }
            keys.push(Key {
                kid: None,
                algorithms: vec![Algorithm::HS256],
                key: DecodingKey::from_secret(secret.as_bytes())
                    .map_err(|e| format!("an API JWT secret: {e}"))?,
            });
        }
        for path in &settings.jwt_public_keys {
            let pem = std::fs::read(path)
                .map_err(|e| format!("reading the API public key {}: {e}", path.display()))?;
            let (key, algorithms) = public_key(&pem).ok_or_else(|| {
                format!(
                    "{} is not an RSA, EC P-256 or Ed25519 public key (PEM)",
                    path.display()
                )
            })?;
            keys.push(Key {
                kid: path.file_stem().map(|s| s.to_string_lossy().into_owned()),
                algorithms,
                key,
            });
        }
        let jwks = match &settings.jwks_url {
            Some(url) => {
                check_url(url)?;
                Some(Jwks {
                    url: url.clone(),
                    client: reqwest::Client::builder()
                        .timeout(Duration::from_secs(10))
                        .build()
                        .map_err(|e| e.to_string())?,
                    keys: RwLock::new(HashMap::new()),
                    fetched_at: RwLock::new(None),
                })
            }
            None => None,
        };
        if keys.is_empty() && jwks.is_none() {
            return Ok(None);
        }
        Ok(Some(Keys {
            keys,
            jwks,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            leeway: settings.leeway_secs,
            verified: Default::default(),
        }))
    }

    /// Verify a bearer token; the reason when it fails (never the token).
    pub async fn verify(&self, token: &str) -> Result<Principal, Problem> {
        use sha2::Digest;
        let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let now = jsonwebtoken::get_current_timestamp();
        if let Some(hit) = self.cached(&digest, now) {
            return Ok(hit);
        }
        let (principal, exp) = self.check(token).await?;
        let mut cache = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= VERIFIED_MAX {
            cache.retain(|_, v| v.until > now);
            if cache.len() >= VERIFIED_MAX {
                cache.clear();
            }
        }
        cache.insert(
            digest,
            Verified {
                principal: principal.clone(),
                until: exp.min(now + VERIFIED_FOR),
            },
        );
        Ok(principal)
    }

    /// How many verified tokens the cache holds (at most `VERIFIED_MAX`).
    pub fn cached_tokens(&self) -> usize {
        self.verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    fn cached(&self, digest: &[u8; 32], now: u64) -> Option<Principal> {
        let cache = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .get(digest)
            .filter(|v| v.until > now)
            .map(|v| v.principal.clone())
    }

    /// Check a token's signature and claims: its caller and its `exp`.
    async fn check(&self, token: &str) -> Result<(Principal, u64), Problem> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| Problem::invalid_token("the token is not a JWT this server accepts"))?;
        let mut last = None;
        for (algorithm, key) in self.candidates(&header).await {
            let mut validation = Validation::new(algorithm);
            validation.leeway = self.leeway;
            validation.validate_nbf = true;
            validation.set_issuer(&[&self.issuer]);
            validation.set_audience(&[&self.audience]);
            validation.set_required_spec_claims(&["exp", "iss", "aud"]);
            match jsonwebtoken::decode::<Claims>(token, &key, &validation) {
                Ok(data) => {
                    let exp = data.claims.exp;
                    return principal(data.claims).map(|p| (p, exp));
                }
                Err(err) => last = Some(err),
            }
        }
        use jsonwebtoken::errors::ErrorKind as K;
        let why = match last.as_ref().map(|e| e.kind()) {
            None => "no configured key verifies tokens of this algorithm or kid",
            Some(K::ExpiredSignature) => "the token has expired",
            Some(K::ImmatureSignature) => "the token is not valid yet (nbf)",
            Some(K::InvalidIssuer) => "the token's issuer (iss) is not the configured one",
            Some(K::InvalidAudience) => "the token's audience (aud) is not the configured one",
            Some(K::MissingRequiredClaim(_)) => "the token lacks a required claim (exp, iss, aud)",
            Some(K::Json(_)) => "the token's claims are not the expected ones (tenant, scope)",
            _ => "the token's signature does not verify",
        };
        Err(Problem::invalid_token(why))
    }

    /// The keys that may verify a token with this header, each with the one
    /// algorithm to check: the header's, and only where the key allows it.
    async fn candidates(&self, header: &Header) -> Vec<(Algorithm, DecodingKey)> {
        let mut out: Vec<(Algorithm, DecodingKey)> = self
            .keys
            .iter()
            .filter(|k| k.algorithms.contains(&header.alg))
            .filter(|k| match (&header.kid, &k.kid) {
                (Some(want), Some(have)) => want == have,
                _ => true,
            })
            .map(|k| (header.alg, k.key.clone()))
            .collect();
        if let (Some(jwks), Some(kid)) = (&self.jwks, &header.kid)
            && let Some((algorithm, key)) = jwks.key(kid).await
            && algorithm == header.alg
        {
            out.push((algorithm, key));
        }
        out
    }
}

impl Jwks {
    /// The key for `kid`, fetching the set when it is unknown (at most once
    /// per `JWKS_REFRESH`).
    async fn key(&self, kid: &str) -> Option<(Algorithm, DecodingKey)> {
        if let Some(found) = self.keys.read().await.get(kid) {
            return Some(found.clone());
        }
        {
            let mut fetched = self.fetched_at.write().await;
            if fetched.is_some_and(|at| at.elapsed() < JWKS_REFRESH) {
                return None;
            }
            *fetched = Some(Instant::now());
        }
        match self.fetch().await {
            Ok(keys) => {
                let found = keys.get(kid).cloned();
                *self.keys.write().await = keys;
                found
            }
            Err(why) => {
                tracing::warn!(url = %self.url, %why, "JWKS fetch failed");
                None
            }
        }
    }

    async fn fetch(&self) -> Result<HashMap<String, (Algorithm, DecodingKey)>, String> {
        let set: JwkSet = self
            .client
            .get(&self.url)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .error_for_status()
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        let mut out = HashMap::new();
        for jwk in &set.keys {
            let (Some(kid), Ok(key)) = (&jwk.common.key_id, DecodingKey::from_jwk(jwk)) else {
                continue;
            };
            // A JWK without `alg` names its algorithm by its key type; an
            // octet (HMAC) key from a URL is never trusted.
            let algorithm = match (&jwk.common.key_algorithm, &jwk.algorithm) {
                (Some(alg), _) => alg.to_string().parse::<Algorithm>().ok(),
                (None, jsonwebtoken::jwk::AlgorithmParameters::RSA(_)) => Some(Algorithm::RS256),
                (None, jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_)) => {
                    Some(Algorithm::ES256)
                }
                (None, jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(_)) => {
                    Some(Algorithm::EdDSA)
                }
                _ => None,
            };
            match algorithm {
                Some(Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) | None => {}
                Some(algorithm) => {
                    out.insert(kid.clone(), (algorithm, key));
                }
            }
        }
        Ok(out)
    }
}

/// A public key from PEM, and the algorithms it verifies.
fn public_key(pem: &[u8]) -> Option<(DecodingKey, Vec<Algorithm>)> {
    if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
        return Some((
            key,
            vec![Algorithm::RS256, Algorithm::RS384, Algorithm::RS512],
        ));
    }
    if let Ok(key) = DecodingKey::from_ed_pem(pem) {
        return Some((key, vec![Algorithm::EdDSA]));
    }
    if let Ok(key) = DecodingKey::from_ec_pem(pem) {
        return Some((key, vec![Algorithm::ES256]));
    }
    None
}

/// A JWKS URL is https, or http only to loopback (tests, a local IdP).
fn check_url(raw: &str) -> Result<(), String> {
    let url = url::Url::parse(raw).map_err(|e| format!("the JWKS URL {raw:?}: {e}"))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(format!(
            "the JWKS URL {raw:?} must be https (http only to loopback)"
        )),
    }
}

fn principal(claims: Claims) -> Result<Principal, Problem> {
    let tenant = claims.tenant.trim().to_owned();
    if tenant.is_empty() {
        return Err(Problem::invalid_token("the token names no tenant"));
    }
    let mut scopes = Vec::new();
    for word in claims.scope.split_whitespace() {
        // Scopes of other services may share the token; only ours count.
        if let Some(scope) = Scope::parse(word) {
            scopes.push(scope);
        }
    }
    Ok(Principal {
        subject: claims.sub,
        tenant,
        scopes,
    })
}

/// Mint a token signed with the first configured HS256 secret (`dirsync
/// api-token`, the README, scripts and tests).
pub fn mint(
    settings: &ApiSettings,
    tenant: &str,
    scope: &str,
    ttl: Duration,
) -> Result<String, String> {
    let secret = settings
        .jwt_secrets
        .first()
        .ok_or("minting needs an HS256 secret: set DIRSYNC_API_JWT_SECRET (or --api-jwt-secret)")?;
    if secret.len() < MIN_SECRET_BYTES {
        return Err(format!(
            "an API JWT secret must be at least {MIN_SECRET_BYTES} bytes"
        ));
    }
    for word in scope.split_whitespace() {
        if Scope::parse(word).is_none() {
            return Err(format!("unknown scope {word:?} (read, write, admin)"));
        }
    }
    let now = chrono::Utc::now().timestamp().max(0) as u64;
    let claims = Claims {
        sub: Some("dirsync api-token".into()),
        tenant: tenant.to_owned(),
        scope: scope.to_owned(),
        iss: settings.issuer.clone(),
        aud: settings.audience.clone(),
        exp: now + ttl.as_secs(),
        nbf: Some(now),
        iat: Some(now),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())
}

/// The extractor: a request's verified caller, or the 401 (or 503 when the
/// API has no key) it gets instead.
impl FromRequest for Principal {
    type Error = Problem;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Principal, Problem>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<ApiState>>().cloned();
        let header = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Box::pin(async move {
            let Some(state) = state else {
                return Err(Problem::internal());
            };
            let Some(keys) = &state.keys else {
                return Err(Problem::new(
                    actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                    "api_off",
                    NO_KEY,
                ));
            };
            let token = header
                .as_deref()
                .and_then(|h| {
                    let (scheme, rest) = h.split_once(' ')?;
                    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
                })
                .filter(|t| !t.is_empty());
            let Some(token) = token else {
                let mut p = Problem::invalid_token("send Authorization: Bearer <JWT>");
                // RFC 6750 §3.1: no error code when no credentials came.
                p.challenge = Some("Bearer realm=\"dirsync\"".into());
                return Err(p);
            };
            keys.verify(token).await
        })
    }
}
