//! A fake Okta org on port 0 (docs/pull-apis.md §3A–§3C, §3E): the org
//! authorization server's token endpoint verifying private_key_jwt client
//! assertions, and the Management API's `users` (plain list without
//! DEPROVISIONED users, `filter` on status, id, login, email and
//! lastUpdated), `groups` (with the BUILT_IN "Everyone") and
//! `groups/{id}/users`, as bare JSON arrays paged by separate `Link` header
//! lines built from the fake's own base URL. Every API answer carries the
//! `X-Rate-Limit-*` headers and a `Date`, so a client can compute Okta's wait.
//! DPoP is not modelled (the connector does not speak it). Every user
//! listing (plain, filtered, a group's) follows the directory's `Order`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

use super::{Fault, Running, Shared};
use crate::crypto::Secret;

/// A fixed RSA 2048 PKCS#8 key, made once with `openssl genpkey -algorithm
/// RSA -pkeyopt rsa_keygen_bits:2048` for the fake alone: it signs nothing
/// but test client assertions and must never be registered with a real org.
pub const TEST_PRIVATE_KEY: &str = include_str!("okta_test_key.pem");
/// Its public half (`openssl pkey -pubout`), the key the fake verifies with.
pub const TEST_PUBLIC_KEY: &str = include_str!("okta_test_key.pub.pem");

/// The id of Okta's BUILT_IN group of every user.
pub const EVERYONE: &str = "00gfakeeveryone00000";

/// Okta's request quota the fake reports (per minute, per endpoint family).
const RATE_LIMIT: u32 = 600;

/// What the fake org accepts.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The API token accepted as `Authorization: SSWS <token>`.
    pub api_token: Secret,
    /// The API service app's client id (private_key_jwt).
    pub client_id: String,
    /// The app's registered public key, PEM.
    pub public_key_pem: String,
    /// The `okta.*` scopes granted to the app.
    pub scopes: Vec<String>,
    /// The access tokens' `expires_in`, seconds.
    pub token_lifetime: u64,
}

impl Default for Credentials {
    /// Fixed dev credentials: the SSWS token below, or client
    /// `0oafakeserviceapp000` signing with `TEST_PRIVATE_KEY`.
    fn default() -> Credentials {
        Credentials {
            api_token: Secret::new("00fake-okta-api-token-for-dirsync-dev".into()),
            client_id: "0oafakeserviceapp000".into(),
            public_key_pem: TEST_PUBLIC_KEY.into(),
            scopes: vec!["okta.users.read".into(), "okta.groups.read".into()],
            token_lifetime: 3600,
        }
    }
}

struct State {
    base: String,
    credentials: Credentials,
    shared: Arc<Shared>,
    /// The scopes each issued access token carries.
    grants: Mutex<HashMap<String, Vec<String>>>,
    /// Assertion `jti`s already used (Okta rejects a replayed assertion).
    jtis: Mutex<HashSet<String>>,
}

/// Start the fake on 127.0.0.1, port 0: the org URL is its `base_url`.
pub fn start(shared: Arc<Shared>, credentials: Credentials) -> std::io::Result<Running> {
    super::serve(|base| {
        let state = web::Data::new(State {
            base: base.to_owned(),
            credentials,
            shared,
            grants: Mutex::new(HashMap::new()),
            jtis: Mutex::new(HashSet::new()),
        });
        move |cfg: &mut web::ServiceConfig| {
            cfg.app_data(state.clone())
                .route("/oauth2/v1/token", web::post().to(token_endpoint))
                .route("/api/v1/users", web::get().to(list_users))
                .route("/api/v1/users/{key}", web::get().to(get_user))
                .route("/api/v1/groups", web::get().to(list_groups))
                .route("/api/v1/groups/{id}/users", web::get().to(list_group_users));
        }
    })
}

/// What `dirsync connection create --file` reads to point dirsync at this
/// fake with its API token.
pub fn dev_connection(running: &Running, credentials: &Credentials) -> Value {
    json!({
        "provider": "okta",
        "settings": {"org_url": running.base_url, "auth": "ssws"},
        "secret": credentials.api_token.expose(),
    })
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST)
}

/// The token endpoint's OAuth error body (RFC 6749 §5.2).
fn oauth_error(code: u16, error: &str, description: &str) -> HttpResponse {
    HttpResponse::build(status(code)).json(json!({
        "error": error,
        "error_description": description,
    }))
}

fn random_id(prefix: &str) -> String {
    let mut bytes = [0u8; 12];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The Management API's error body (docs/pull-apis.md §3C).
fn api_error(code: u16, error_code: &str, summary: &str) -> HttpResponse {
    HttpResponse::build(status(code)).json(json!({
        "errorCode": error_code,
        "errorSummary": summary,
        "errorLink": error_code,
        "errorId": random_id("oae"),
        "errorCauses": [],
    }))
}

/// RFC 1123, as Okta's `Date` header.
fn http_date(at: DateTime<Utc>) -> String {
    at.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// Okta's rate-limit headers, the `Date` they are relative to, and a request id.
fn rate_limited(
    mut answer: HttpResponse,
    remaining: u32,
    reset: i64,
    now: DateTime<Utc>,
) -> HttpResponse {
    let headers = answer.headers_mut();
    let mut put = |name: &'static str, value: String| {
        if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&value) {
            headers.insert(
                actix_web::http::header::HeaderName::from_static(name),
                value,
            );
        }
    };
    put("x-rate-limit-limit", RATE_LIMIT.to_string());
    put("x-rate-limit-remaining", remaining.to_string());
    put("x-rate-limit-reset", reset.to_string());
    put("date", http_date(now));
    put("x-okta-request-id", random_id("fake"));
    answer
}

/// Authorize an API request, then consult the injected faults: Some(answer)
/// when the request gets no data.
fn gate(state: &State, req: &HttpRequest, scope: &str) -> Option<HttpResponse> {
    let ssws =
        super::credential(req, "SSWS").is_some_and(|t| t == state.credentials.api_token.expose());
    if !ssws {
        let Some(token) = super::credential(req, "Bearer").filter(|t| state.shared.token_valid(t))
        else {
            return Some(api_error(401, "E0000011", "Invalid token provided"));
        };
        let granted = state
            .grants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(token)
            .is_some_and(|scopes| scopes.iter().any(|s| s == scope));
        if !granted {
            return Some(api_error(
                403,
                "E0000006",
                "You do not have permission to perform the requested action",
            ));
        }
    }
    match state.shared.faults.next()? {
        Fault::Throttle => {
            let now = Utc::now();
            let wait_ms = state.shared.faults.retry_after_ms.load(Ordering::SeqCst);
            let reset = now.timestamp() + wait_ms.div_ceil(1000) as i64;
            Some(rate_limited(
                api_error(
                    429,
                    "E0000047",
                    "API call exceeded rate limit due to too many requests.",
                ),
                0,
                reset,
                now,
            ))
        }
        Fault::Unavailable => Some(api_error(
            503,
            "E0000009",
            "Internal Server Error: the service is temporarily unavailable",
        )),
    }
}

fn query(req: &HttpRequest) -> HashMap<String, String> {
    web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default()
}

/// One comparison of a `filter` (docs/pull-apis.md §3B: `status`, `id`,
/// `profile.login`, `profile.email` with `eq`; `lastUpdated` with
/// `eq`/`gt`/`ge`/`lt`/`le`).
#[derive(Debug)]
struct Term {
    attribute: String,
    op: String,
    value: String,
}

/// `a and b or c`: a list of alternatives, each a list of terms (no
/// parentheses; Okta has no `not`).
fn parse_filter(raw: &str) -> Option<Vec<Vec<Term>>> {
    raw.split(" or ")
        .map(|alternative| {
            alternative
                .split(" and ")
                .map(|term| {
                    let (attribute, rest) = term.trim().split_once(' ')?;
                    let (op, value) = rest.trim().split_once(' ')?;
                    let value = value.trim().strip_prefix('"')?.strip_suffix('"')?;
                    let known = match attribute {
                        "status" | "id" | "profile.login" | "profile.email" => op == "eq",
                        "lastUpdated" => {
                            matches!(op, "eq" | "gt" | "ge" | "lt" | "le")
                                && DateTime::parse_from_rfc3339(value).is_ok()
                        }
                        _ => false,
                    };
                    known.then(|| Term {
                        attribute: attribute.to_owned(),
                        op: op.to_owned(),
                        value: value.to_owned(),
                    })
                })
                .collect()
        })
        .collect()
}

fn matches(filter: &[Vec<Term>], user: &Value) -> bool {
    filter.iter().any(|terms| {
        terms.iter().all(|t| {
            let field = match t.attribute.split_once('.') {
                Some((_, name)) => &user["profile"][name],
                None => &user[t.attribute.as_str()],
            };
            let Some(field) = field.as_str() else {
                return false;
            };
            if t.attribute != "lastUpdated" {
                return field == t.value;
            }
            let (Ok(at), Ok(value)) = (
                DateTime::parse_from_rfc3339(field),
                DateTime::parse_from_rfc3339(&t.value),
            ) else {
                return false;
            };
            match t.op.as_str() {
                "gt" => at > value,
                "ge" => at >= value,
                "lt" => at < value,
                "le" => at <= value,
                _ => at == value,
            }
        })
    })
}

/// One page of `items` with Okta's separate `Link` lines: `self`, and
/// `next` while more remain (`after` is opaque to clients; here the offset).
fn page(
    state: &State,
    req: &HttpRequest,
    items: Vec<Value>,
    default_limit: usize,
    max_limit: usize,
) -> HttpResponse {
    let q = query(req);
    let limit = q
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(default_limit)
        .clamp(1, max_limit);
    let offset = q
        .get("after")
        .and_then(|a| URL_SAFE_NO_PAD.decode(a).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(0);
    let end = (offset + limit).min(items.len());
    let body: Vec<Value> = items.get(offset..end).unwrap_or_default().to_vec();
    let path = format!("{}{}", state.base, req.path());
    let mut answer = HttpResponse::Ok();
    let own = if req.query_string().is_empty() {
        path.clone()
    } else {
        format!("{path}?{}", req.query_string())
    };
    answer.append_header(("Link", format!("<{own}>; rel=\"self\"")));
    if end < items.len() {
        let mut next = url::form_urlencoded::Serializer::new(String::new());
        next.append_pair("after", &URL_SAFE_NO_PAD.encode(end.to_string()));
        next.append_pair("limit", &limit.to_string());
        if let Some(filter) = q.get("filter") {
            next.append_pair("filter", filter);
        }
        answer.append_header(("Link", format!("<{path}?{}>; rel=\"next\"", next.finish())));
    }
    answer.json(body)
}

/// Every API answer: the page, or the gate's refusal, with the rate-limit
/// headers (the quota resets a minute from now).
fn answer(state: &State, served: HttpResponse) -> HttpResponse {
    if served.headers().contains_key("x-rate-limit-reset") {
        return served;
    }
    let now = Utc::now();
    let used = state.shared.faults.requests.load(Ordering::SeqCst) as u32 % RATE_LIMIT;
    rate_limited(served, RATE_LIMIT - used, now.timestamp() + 60, now)
}

fn with_links(mut item: Value, href: String) -> Value {
    item["_links"] = json!({"self": {"href": href}});
    item
}

fn okta_users<'a>(state: &State, users: impl Iterator<Item = &'a super::Person>) -> Vec<Value> {
    users
        .map(|u| with_links(u.okta(), format!("{}/api/v1/users/{}", state.base, u.id)))
        .collect()
}

async fn list_users(state: web::Data<State>, req: HttpRequest) -> HttpResponse {
    if let Some(refused) = gate(&state, &req, "okta.users.read") {
        return answer(&state, refused);
    }
    let filter = match query(&req).get("filter").map(|f| parse_filter(f)) {
        None => None,
        Some(Some(filter)) => Some(filter),
        Some(None) => {
            return answer(
                &state,
                api_error(400, "E0000031", "Invalid search criteria."),
            );
        }
    };
    state.shared.listed();
    let directory = state.shared.directory();
    // The plain list omits DEPROVISIONED users; a filter includes them
    // (docs/pull-apis.md §3B). Deleted users are gone from every list (§3D).
    let users: Vec<Value> = okta_users(&state, directory.listed_users())
        .into_iter()
        .filter(|u| match &filter {
            Some(filter) => matches(filter, u),
            None => u["status"] != "DEPROVISIONED",
        })
        .collect();
    drop(directory);
    answer(&state, page(&state, &req, users, 200, 200))
}

/// One user by id or login (`GET /api/v1/users/{id | login}`, §3B),
/// whatever its status (a DEPROVISIONED one too); an unknown one is Okta's
/// 404 E0000007.
async fn get_user(
    state: web::Data<State>,
    req: HttpRequest,
    key: web::Path<String>,
) -> HttpResponse {
    if let Some(refused) = gate(&state, &req, "okta.users.read") {
        return answer(&state, refused);
    }
    state.shared.read_user(&key);
    let served = match state.shared.find_user(&key) {
        Some(user) => HttpResponse::Ok().json(with_links(
            user.okta(),
            format!("{}/api/v1/users/{}", state.base, user.id),
        )),
        None => api_error(
            404,
            "E0000007",
            &format!("Not found: Resource not found: {key} (User)"),
        ),
    };
    answer(&state, served)
}

fn everyone(state: &State) -> Value {
    let directory = state.shared.directory();
    let at = super::timestamp(directory.clock);
    with_links(
        json!({
            "id": EVERYONE,
            "created": at,
            "lastUpdated": at,
            "lastMembershipUpdated": at,
            "objectClass": ["okta:user_group"],
            "type": "BUILT_IN",
            "profile": {"name": "Everyone", "description": "All users in your organization"},
        }),
        format!("{}/api/v1/groups/{EVERYONE}", state.base),
    )
}

async fn list_groups(state: web::Data<State>, req: HttpRequest) -> HttpResponse {
    if let Some(refused) = gate(&state, &req, "okta.groups.read") {
        return answer(&state, refused);
    }
    let mut groups = vec![everyone(&state)];
    groups.extend(
        state
            .shared
            .directory()
            .live_groups()
            .map(|g| with_links(g.okta(), format!("{}/api/v1/groups/{}", state.base, g.id))),
    );
    answer(&state, page(&state, &req, groups, 200, 10_000))
}

async fn list_group_users(
    state: web::Data<State>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    if let Some(refused) = gate(&state, &req, "okta.groups.read") {
        return answer(&state, refused);
    }
    state.shared.listed();
    let directory = state.shared.directory();
    let users = if *id == EVERYONE {
        okta_users(&state, directory.listed_users())
    } else if let Some(group) = directory.live_groups().find(|g| g.id == *id) {
        okta_users(&state, directory.members_of(group))
    } else {
        drop(directory);
        return answer(
            &state,
            api_error(
                404,
                "E0000007",
                &format!("Not found: Resource not found: {id} (UserGroup)"),
            ),
        );
    };
    drop(directory);
    // Okta's "historical" default for group members is 1000 (docs/pull-apis.md §3B).
    answer(&state, page(&state, &req, users, 1000, 1000))
}

/// Verify a private_key_jwt client assertion: Err(Okta's `invalid_client`
/// description) when it fails.
fn verify_assertion(state: &State, assertion: &str) -> Result<(), &'static str> {
    let c = &state.credentials;
    let Ok(unverified) = jsonwebtoken::dangerous::insecure_decode::<Value>(assertion) else {
        return Err("The client_assertion is not a valid JWT.");
    };
    if unverified.claims["iss"].as_str() != Some(c.client_id.as_str()) {
        return Err("Invalid value for 'client_id' parameter.");
    }
    let Ok(key) = DecodingKey::from_rsa_pem(c.public_key_pem.as_bytes()) else {
        return Err("The client's registered public key is not a PEM RSA key.");
    };
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[format!("{}/oauth2/v1/token", state.base)]);
    validation.set_issuer(&[&c.client_id]);
    validation.sub = Some(c.client_id.clone());
    validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    validation.leeway = 0;
    let claims = match jsonwebtoken::decode::<Value>(assertion, &key, &validation) {
        Ok(data) => data.claims,
        Err(err) => {
            return Err(match err.kind() {
                ErrorKind::InvalidSignature => "The client_assertion signature is invalid.",
                ErrorKind::ExpiredSignature => "The client_assertion token is expired.",
                ErrorKind::InvalidAudience => {
                    "The audience claim for client_assertion must be the endpoint invoked for the request."
                }
                ErrorKind::InvalidAlgorithm => {
                    "The client_assertion token has an unsupported algorithm."
                }
                ErrorKind::InvalidSubject => {
                    "The client_assertion token's sub claim must be the client_id."
                }
                _ => "The client_assertion token is invalid.",
            });
        }
    };
    let iat = claims["iat"].as_i64().unwrap_or(0);
    let exp = claims["exp"].as_i64().unwrap_or(0);
    if exp - iat > 3600 {
        return Err("The client_assertion token has an expiration too far in the future.");
    }
    let Some(jti) = claims["jti"].as_str() else {
        return Err("The client_assertion token must have a jti claim.");
    };
    if !state
        .jtis
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(jti.to_owned())
    {
        return Err("The client_assertion token has already been used.");
    }
    Ok(())
}

async fn token_endpoint(
    state: web::Data<State>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    // The org authorization server is rate limited like the API.
    answer(&state, grant(&state, &form))
}

/// The client-credentials grant with a private_key_jwt client assertion.
fn grant(state: &State, form: &HashMap<String, String>) -> HttpResponse {
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return oauth_error(
            400,
            "unsupported_grant_type",
            "The authorization grant type is not supported by the authorization server. Configured grant types: [client_credentials].",
        );
    }
    let assertion = match (
        form.get("client_assertion_type").map(String::as_str),
        form.get("client_assertion"),
    ) {
        (Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer"), Some(a)) => a,
        _ => {
            return oauth_error(
                401,
                "invalid_client",
                "Client authentication failed: a private_key_jwt client_assertion is required.",
            );
        }
    };
    if let Err(why) = verify_assertion(state, assertion) {
        return oauth_error(401, "invalid_client", why);
    }
    let asked: Vec<String> = form
        .get("scope")
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    if asked.is_empty() {
        return oauth_error(
            400,
            "invalid_scope",
            "The authorization server resource does not have any configured default scopes, 'scope' must be provided.",
        );
    }
    if let Some(refused) = asked.iter().find(|s| !state.credentials.scopes.contains(s)) {
        return oauth_error(
            400,
            "invalid_scope",
            &format!("The following scopes are not granted to the client: {refused}"),
        );
    }
    let token = state.shared.issue_token();
    state
        .grants
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(token.clone(), asked.clone());
    HttpResponse::Ok().json(json!({
        "token_type": "Bearer",
        "expires_in": state.credentials.token_lifetime,
        "access_token": token,
        "scope": asked.join(" "),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pull::fake::{Order, Org};

    async fn get(url: &str, token: &str) -> reqwest::Response {
        reqwest::Client::new()
            .get(url)
            .header("Authorization", format!("SSWS {token}"))
            .send()
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn the_fake_sends_separate_link_lines_and_hides_deprovisioned_users_from_the_plain_list()
    {
        let mut dir = Org::generate(5, 1, 9);
        for u in &mut dir.users {
            u.active = true;
        }
        dir.users[1].active = false; // odd index: DEPROVISIONED
        dir.users[2].active = false; // even index: SUSPENDED
        let fake = start(Shared::new(dir.clone()), Credentials::default()).unwrap();
        let token = Credentials::default().api_token;
        let res = get(
            &format!("{}/api/v1/users?limit=2", fake.base_url),
            token.expose(),
        )
        .await;
        assert_eq!(res.status(), 200);
        let links: Vec<String> = res
            .headers()
            .get_all("link")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        assert_eq!(links.len(), 2, "{links:?}");
        assert!(links[0].ends_with("rel=\"self\""));
        assert!(links[1].starts_with(&format!("<{}/api/v1/users?after=", fake.base_url)));
        assert_eq!(res.headers().get_all("date").iter().count(), 1);
        assert!(res.headers().contains_key("x-rate-limit-remaining"));

        let all: Vec<Value> = get(&format!("{}/api/v1/users", fake.base_url), token.expose())
            .await
            .json()
            .await
            .unwrap();
        let statuses: Vec<&str> = all.iter().map(|u| u["status"].as_str().unwrap()).collect();
        assert_eq!(statuses, ["ACTIVE", "SUSPENDED", "ACTIVE", "ACTIVE"]);

        let gone: Vec<Value> = get(
            &format!(
                "{}/api/v1/users?filter=status%20eq%20%22DEPROVISIONED%22",
                fake.base_url
            ),
            token.expose(),
        )
        .await
        .json()
        .await
        .unwrap();
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0]["id"], dir.users[1].id.as_str());
    }

    #[tokio::test]
    async fn a_wrong_api_token_gets_okta_e0000011_and_a_bad_filter_e0000031() {
        let fake = start(Shared::new(Org::generate(2, 1, 1)), Credentials::default()).unwrap();
        let res = get(&format!("{}/api/v1/users", fake.base_url), "nope").await;
        assert_eq!(res.status(), 401);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["errorCode"], "E0000011");
        assert_eq!(body["errorSummary"], "Invalid token provided");
        let res = get(
            &format!(
                "{}/api/v1/users?filter=nickName%20eq%20%22x%22",
                fake.base_url
            ),
            Credentials::default().api_token.expose(),
        )
        .await;
        assert_eq!(res.status(), 400);
    }

    /// The ids of every page of a listing, following `Link: rel="next"`.
    async fn walk(url: String) -> Vec<String> {
        let token = Credentials::default().api_token;
        let mut ids = Vec::new();
        let mut next = Some(url);
        while let Some(url) = next {
            let res = get(&url, token.expose()).await;
            assert_eq!(res.status(), 200);
            next = res
                .headers()
                .get_all("link")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(|v| v.strip_suffix(">; rel=\"next\""))
                .and_then(|v| v.strip_prefix('<'))
                .map(str::to_owned);
            let page: Vec<Value> = res.json().await.unwrap();
            ids.extend(page.iter().map(|u| u["id"].as_str().unwrap().to_owned()));
        }
        ids
    }

    fn filtered(base: &str, filter: &str) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("limit", "4")
            .append_pair("filter", filter);
        format!("{base}/api/v1/users?{}", query.finish())
    }

    #[rstest::rstest]
    #[case(Order::AsCreated)]
    #[case(Order::Reversed)]
    #[case(Order::Shuffled(3))]
    #[tokio::test]
    async fn every_user_listing_follows_the_directorys_order(#[case] order: Order) {
        let mut dir = Org::generate(30, 2, 9);
        for n in (0..30).step_by(4) {
            let id = dir.users[n].id.clone();
            dir.update_user(&id, |u| u.title = "Lead".into());
        }
        dir.order = order;
        let listed = |keep: &dyn Fn(&crate::pull::fake::Person) -> bool| -> Vec<String> {
            dir.listed_users()
                .filter(|u| keep(u))
                .map(|u| u.id.clone())
                .collect()
        };
        let status = |u: &crate::pull::fake::Person| u.okta()["status"].clone();
        let deprovisioned = listed(&|u| status(u) == "DEPROVISIONED");
        assert!(!deprovisioned.is_empty(), "the seed deprovisions someone");
        let fake = start(Shared::new(dir.clone()), Credentials::default()).unwrap();
        let base = &fake.base_url;

        let plain = walk(format!("{base}/api/v1/users?limit=4")).await;
        assert_eq!(plain, listed(&|u| status(u) != "DEPROVISIONED"));
        let gone = walk(filtered(base, r#"status eq "DEPROVISIONED""#)).await;
        assert_eq!(gone, deprovisioned);
        let since = crate::pull::fake::timestamp(dir.users[1].updated_at);
        let changed = walk(filtered(base, &format!("lastUpdated gt \"{since}\""))).await;
        assert_eq!(changed, listed(&|u| u.title == "Lead"));
        let everyone = walk(format!("{base}/api/v1/groups/{EVERYONE}/users?limit=4")).await;
        assert_eq!(everyone, listed(&|_| true));
    }

    #[tokio::test]
    async fn a_swap_and_a_rotation_are_reported_by_the_next_last_updated_listing() {
        let dir = Org::generate(10, 1, 9);
        let shared = Shared::new(dir.clone());
        let fake = start(shared.clone(), Credentials::default()).unwrap();
        let since = crate::pull::fake::timestamp(shared.directory_mut().tick());
        let id = |n: usize| dir.users[n].id.clone();
        assert!(shared.directory_mut().swap_emails(&id(1), &id(2)));
        assert!(shared.directory_mut().rotate_emails(&[id(5), id(6), id(7)]));
        let changed = walk(filtered(
            &fake.base_url,
            &format!("lastUpdated gt \"{since}\""),
        ))
        .await;
        // DEPROVISIONED users are in a filtered listing too (§3B).
        assert_eq!(changed, [1, 2, 5, 6, 7].map(id));
    }

    #[test]
    fn filters_combine_terms_with_and_and_or() {
        let f = parse_filter(
            r#"status eq "DEPROVISIONED" or lastUpdated gt "2026-01-01T00:00:00.000Z" and id eq "u1""#,
        )
        .unwrap();
        let user = |status: &str, id: &str, at: &str| json!({"status": status, "id": id, "lastUpdated": at});
        assert!(matches(
            &f,
            &user("DEPROVISIONED", "u2", "2025-01-01T00:00:00.000Z")
        ));
        assert!(matches(
            &f,
            &user("ACTIVE", "u1", "2026-02-01T00:00:00.000Z")
        ));
        assert!(!matches(
            &f,
            &user("ACTIVE", "u2", "2026-02-01T00:00:00.000Z")
        ));
        assert!(parse_filter(r#"status ne "ACTIVE""#).is_none());
    }
}
