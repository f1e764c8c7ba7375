//! Bearer-token authentication: a token resolves to exactly one directory, and
//! every handler receives that directory as its scope. What a token resolved
//! to is remembered for a bounded time (`TokenCache`, its staleness rule).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};

use super::ScimState;
use super::error::ScimError;
use crate::crypto;
use crate::store::StoreError;

/// The directory a request acts for, from its bearer token.
#[derive(Debug, Clone)]
pub struct Caller {
    pub directory_id: String,
    pub tenant_id: String,
    pub vendor: String,
    /// Where the request's writes leave what the engine made of them, for
    /// the request log (a trail that keeps nothing when the log is off).
    pub trail: super::request_log::Trail,
}

impl Caller {
    /// OneLogin wants every response labelled `application/json` (L10) while
    /// Entra wants `application/scim+json` (E23): the one genuine conflict, so
    /// the directory's vendor decides (and, for a generic directory, the
    /// client's User-Agent).
    pub fn wants_plain_json(&self, user_agent: Option<&str>) -> bool {
        match self.vendor.as_str() {
            "onelogin" => true,
            "generic" => user_agent.is_some_and(|ua| ua.to_ascii_lowercase().contains("onelogin")),
            _ => false,
        }
    }
}

impl FromRequest for Caller {
    type Error = ScimError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let state = req.app_data::<web::Data<ScimState>>().cloned();
        let token = bearer_token(req);
        let req = req.clone();
        Box::pin(async move {
            let state = state.ok_or_else(|| ScimError::internal("server state missing"))?;
            let token = token?;
            let mut caller = authenticate(&state, &token).await?;
            if let Some(trail) = req.extensions().get::<super::request_log::Trail>() {
                caller.trail = trail.clone();
            }
            // The response middleware reads the directory's vendor from here
            // (render::answer_in_accepted_media_type).
            req.extensions_mut().insert(caller.clone());
            Ok(caller)
        })
    }
}

fn bearer_token(req: &HttpRequest) -> Result<String, ScimError> {
    let value = req.headers().get(header::AUTHORIZATION).ok_or_else(|| {
        ScimError::unauthorized("missing Authorization header; send Authorization: Bearer <token>")
    })?;
    let value = value
        .to_str()
        .map_err(|_| ScimError::unauthorized("malformed Authorization header"))?;
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(|| {
        ScimError::unauthorized("malformed Authorization header; expected Bearer <token>")
    })?;
    // RFC 7235 §2.1: the auth-scheme is case-insensitive.
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ScimError::unauthorized(
            "unsupported authorization scheme; expected Bearer <token>",
        ));
    }
    Ok(token.trim().to_owned())
}

async fn authenticate(state: &ScimState, token: &str) -> Result<Caller, ScimError> {
    let hash = crypto::hash_token(token);
    // A hit is found by comparing SHA-256 digests, which tells a timing
    // attacker nothing usable about a secret (that would take a preimage).
    if let Some(caller) = state.tokens.get(&hash) {
        return Ok(caller);
    }
    let lookup = state.tokens.begin();
    let token = match state.store.active_token_by_hash(&hash).await {
        Ok(token) => token,
        Err(StoreError::NotFound) => return Err(refused()),
        Err(err) => return Err(err.into()),
    };
    // The lookup went through an index on the hash; the final comparison is
    // constant-time so no timing difference depends on the secret.
    if !crypto::hashes_equal(&token.secret_hash, &hash) {
        return Err(refused());
    }
    // A directory's id, tenant and vendor never change once created; a
    // directory deleted since the token was read took its tokens with it.
    let directory = match state.store.directory(&token.directory_id).await {
        Ok(directory) => directory,
        Err(StoreError::NotFound) => return Err(refused()),
        Err(err) => return Err(err.into()),
    };
    let caller = Caller {
        directory_id: directory.id,
        tenant_id: directory.tenant_id,
        vendor: directory.vendor,
        trail: Default::default(),
    };
    state.tokens.insert(lookup, hash, token.id, caller.clone());
    Ok(caller)
}

fn refused() -> ScimError {
    ScimError::unauthorized("invalid or revoked token")
}

/// Most tokens one replica remembers. A deployment has a few tokens per
/// directory; beyond this the cache evicts (S3-FIFO), so its memory stays
/// bounded whatever clients send.
pub const TOKEN_CACHE_MAX: usize = 10_000;

/// The directory each recently seen token resolved to, by the token's
/// SHA-256 (never the token).
///
/// Staleness rule: an entry answers for at most `ttl` after the store said
/// its token was active. A token revoked, or a directory deleted, through
/// this replica is forgotten at once (`forget_token`, `forget_directory`,
/// which the host API calls after the change commits); a revocation this
/// replica does not see (another replica, the CLI, a direct write) takes
/// effect here when the entry expires, at most `ttl` later. Only successful
/// lookups are remembered: an unknown or revoked token is read from the
/// store on every request and takes no room. A `ttl` of zero turns the
/// cache off.
#[derive(Clone)]
pub struct TokenCache {
    inner: Option<Arc<Remembered>>,
}

struct Remembered {
    entries: quick_cache::sync::Cache<String, Arc<Entry>>,
    ttl: Duration,
    /// Counts every forget, so that a lookup which read the store before a
    /// revocation committed cannot put the token back after it was
    /// forgotten (`insert`).
    forgets: AtomicU64,
}

struct Entry {
    caller: Caller,
    token_id: String,
    expires_at: Instant,
}

/// Taken before a token is read from the store (`TokenCache::begin`).
#[derive(Debug, Clone, Copy)]
pub struct Lookup(u64);

impl TokenCache {
    pub fn new(ttl: Duration) -> Self {
        let inner = (!ttl.is_zero()).then(|| {
            Arc::new(Remembered {
                entries: quick_cache::sync::Cache::new(TOKEN_CACHE_MAX),
                ttl,
                forgets: AtomicU64::new(0),
            })
        });
        TokenCache { inner }
    }

    /// The caller a token's hash resolved to, unless that is older than the TTL.
    pub fn get(&self, hash: &str) -> Option<Caller> {
        self.get_at(hash, Instant::now())
    }

    fn get_at(&self, hash: &str, now: Instant) -> Option<Caller> {
        let inner = self.inner.as_ref()?;
        let entry = inner.entries.get(hash)?;
        if now < entry.expires_at {
            return Some(entry.caller.clone());
        }
        inner.entries.remove_if(hash, |e| e.expires_at <= now);
        None
    }

    /// Call before reading the token from the store; pass to `insert`.
    pub fn begin(&self) -> Lookup {
        Lookup(
            self.inner
                .as_ref()
                .map_or(0, |inner| inner.forgets.load(Ordering::SeqCst)),
        )
    }

    /// Remember what the store said about an active token, unless something
    /// was forgotten since `lookup` began: the read may predate that
    /// revocation. (If the forget comes after the check, its sweep runs after
    /// the insertion and takes the entry.)
    pub fn insert(&self, lookup: Lookup, hash: String, token_id: String, caller: Caller) {
        self.insert_at(lookup, hash, token_id, caller, Instant::now());
    }

    fn insert_at(
        &self,
        lookup: Lookup,
        hash: String,
        token_id: String,
        caller: Caller,
        now: Instant,
    ) {
        let Some(inner) = self.inner.as_ref() else {
            return;
        };
        let entry = Arc::new(Entry {
            caller,
            token_id,
            expires_at: now + inner.ttl,
        });
        inner.entries.insert(hash.clone(), entry);
        if inner.forgets.load(Ordering::SeqCst) != lookup.0 {
            inner.entries.remove(&hash);
        }
    }

    /// A token was revoked through this replica.
    pub fn forget_token(&self, token_id: &str) {
        self.forget(|entry| entry.token_id == token_id);
    }

    /// A directory was deleted through this replica (its tokens went with it).
    pub fn forget_directory(&self, directory_id: &str) {
        self.forget(|entry| entry.caller.directory_id == directory_id);
    }

    fn forget(&self, gone: impl Fn(&Entry) -> bool) {
        let Some(inner) = self.inner.as_ref() else {
            return;
        };
        inner.forgets.fetch_add(1, Ordering::SeqCst);
        inner.entries.retain(|_, entry| !gone(entry));
    }

    /// How many tokens are remembered (expired ones included until evicted).
    pub fn len(&self) -> usize {
        self.inner.as_ref().map_or(0, |inner| inner.entries.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("ttl", &self.inner.as_ref().map(|inner| inner.ttl))
            .field("entries", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(directory: &str) -> Caller {
        Caller {
            directory_id: directory.into(),
            tenant_id: "t".into(),
            vendor: "generic".into(),
            trail: Default::default(),
        }
    }

    fn remembered(cache: &TokenCache, hash: &str, token: &str, directory: &str) {
        cache.insert(cache.begin(), hash.into(), token.into(), caller(directory));
    }

    #[test]
    fn an_entry_answers_until_its_ttl_and_not_after() {
        let cache = TokenCache::new(Duration::from_secs(5));
        let now = Instant::now();
        cache.insert_at(cache.begin(), "h".into(), "tok".into(), caller("d"), now);
        let hit = cache.get_at("h", now + Duration::from_millis(4_999));
        assert_eq!(hit.map(|c| c.directory_id), Some("d".to_owned()));
        assert!(cache.get_at("h", now + Duration::from_secs(5)).is_none());
        assert!(cache.is_empty(), "an expired entry is dropped when met");
    }

    #[test]
    fn a_zero_ttl_remembers_nothing() {
        let cache = TokenCache::new(Duration::ZERO);
        remembered(&cache, "h", "tok", "d");
        assert!(cache.get("h").is_none());
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn forgetting_a_token_or_a_directory_takes_only_its_entries() {
        let cache = TokenCache::new(Duration::from_secs(60));
        remembered(&cache, "h1", "tok1", "d1");
        remembered(&cache, "h2", "tok2", "d1");
        remembered(&cache, "h3", "tok3", "d2");
        cache.forget_token("tok1");
        assert!(cache.get("h1").is_none());
        assert!(cache.get("h2").is_some() && cache.get("h3").is_some());
        cache.forget_directory("d1");
        assert!(cache.get("h2").is_none());
        assert!(cache.get("h3").is_some());
    }

    #[test]
    fn a_lookup_that_began_before_a_revocation_is_not_remembered() {
        let cache = TokenCache::new(Duration::from_secs(60));
        // The store was read before the revocation committed ...
        let lookup = cache.begin();
        cache.forget_token("tok");
        // ... and its answer arrives after the forget.
        cache.insert(lookup, "h".into(), "tok".into(), caller("d"));
        assert!(cache.get("h").is_none());
        // A lookup begun afterwards is remembered as usual.
        remembered(&cache, "h", "tok", "d");
        assert!(cache.get("h").is_some());
    }

    #[test]
    fn the_cache_holds_at_most_its_bound() {
        let cache = TokenCache::new(Duration::from_secs(60));
        for n in 0..TOKEN_CACHE_MAX * 2 {
            remembered(&cache, &format!("h{n}"), &format!("tok{n}"), "d");
        }
        assert!(cache.len() <= TOKEN_CACHE_MAX, "{}", cache.len());
        assert!(
            cache
                .get(&format!("h{}", TOKEN_CACHE_MAX * 2 - 1))
                .is_some()
        );
    }
}
