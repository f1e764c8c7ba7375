//! A fake Google Workspace on port 0 (docs/pull-apis.md §1A, §1B, §1C, §1E): the
//! RFC 7523 JWT-bearer token endpoint that verifies a service account's
//! RS256 assertion and answers with Google's OAuth error bodies, and the
//! Directory API's `users`, `groups` and `groups/{key}/members` listings
//! with `pageToken` paging, Google's field names and Google's v1 error
//! format (throttling as 403 `userRateLimitExceeded`, outages as 503
//! `backendError`, stale tokens as 401 `authError`). Users and members are
//! listed in the directory's `Order`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::{Fault, Running, Shared};
use crate::crypto::Secret;
use crate::pull::google::SCOPES;

/// FAKE-ONLY test key: an RSA 2048 PKCS#8 key generated once with
/// `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048`, committed
/// so the fake and its dev connection are reproducible. It signs nothing
/// anywhere but against this fake.
const TEST_KEY: &str = include_str!("google_test_key.pem");
/// Its public half (`openssl pkey -pubout`), which the fake verifies with.
const TEST_PUBLIC_KEY: &str = include_str!("google_test_key.pub.pem");
/// The customer id the fake's users carry (`customerId`); `my_customer` is
/// the alias for the caller's own customer.
pub const CUSTOMER_ID: &str = "C03az79cb";
/// The one domain of the generated users (`@example.com`).
pub const DOMAIN: &str = "example.com";

/// The one service account the fake accepts, and what domain-wide
/// delegation granted it.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// PKCS#8 PEM of the service account's private key.
    pub private_key: Secret,
    /// The public half the fake checks signatures with.
    pub public_key: String,
    pub private_key_id: String,
    pub client_email: String,
    pub client_id: String,
    /// Workspace admins the service account may impersonate (JWT `sub`).
    /// Any other live user of the directory may be impersonated too, but
    /// the Directory API refuses it with 403, as Google does for a non-admin.
    pub admins: Vec<String>,
    /// The scopes the admin console granted the client id.
    pub scopes: Vec<String>,
}

impl Default for Credentials {
    /// The fixed dev service account: the committed test key, one admin,
    /// the three read-only scopes granted.
    fn default() -> Credentials {
        Credentials {
            private_key: Secret::new(TEST_KEY.to_owned()),
            public_key: TEST_PUBLIC_KEY.to_owned(),
            private_key_id: "3f1c0e9a6b2d4c8e9f7a1b2c3d4e5f6a7b8c9d0e".to_owned(),
            client_email: "dirsync@dirsync-dev.iam.gserviceaccount.com".to_owned(),
            client_id: "104729871234567890123".to_owned(),
            admins: vec![format!("admin@{DOMAIN}")],
            scopes: SCOPES.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

impl Credentials {
    /// The service-account key file (the JSON Google's console downloads),
    /// with `token_uri` pointing wherever the caller says.
    pub fn key_file(&self, token_uri: &str) -> String {
        json!({
            "type": "service_account",
            "project_id": "dirsync-dev",
            "private_key_id": self.private_key_id,
            "private_key": self.private_key.expose(),
            "client_email": self.client_email,
            "client_id": self.client_id,
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "universe_domain": "googleapis.com",
        })
        .to_string()
    }
}

struct State {
    token_url: String,
    credentials: Credentials,
    shared: Arc<Shared>,
    /// Tokens issued to a non-admin `sub`: valid, but the Directory API
    /// answers them 403.
    non_admin: Mutex<HashSet<String>>,
}

/// Start the fake on 127.0.0.1, port 0: the token endpoint is
/// `{base_url}/token`, the API base `base_url`.
pub fn start(shared: Arc<Shared>, credentials: Credentials) -> std::io::Result<Running> {
    super::serve(|base| {
        let state = web::Data::new(State {
            token_url: format!("{base}/token"),
            credentials,
            shared,
            non_admin: Mutex::new(HashSet::new()),
        });
        move |cfg: &mut web::ServiceConfig| {
            cfg.app_data(state.clone())
                .route("/token", web::post().to(token_endpoint))
                .route("/admin/directory/v1/users", web::get().to(list_users))
                .route("/admin/directory/v1/users/{key}", web::get().to(get_user))
                .route("/admin/directory/v1/groups", web::get().to(list_groups))
                .route(
                    "/admin/directory/v1/groups/{key}/members",
                    web::get().to(list_members),
                );
        }
    })
}

/// What `dirsync connection create --file` reads to point at this fake: the
/// key file's `token_uri` is the fake's, so the connector needs no override.
pub fn dev_connection(running: &Running, credentials: &Credentials) -> Value {
    let settings = crate::pull::google::Settings {
        admin_email: credentials.admins.first().cloned().unwrap_or_default(),
        customer: "my_customer".to_owned(),
        domain: None,
        api_base: running.base_url.clone(),
        token_url: None,
    };
    json!({
        "provider": "google",
        "settings": settings,
        "secret": credentials.key_file(&format!("{}/token", running.base_url)),
    })
}

/// RFC 6749 §5.2 error body, as Google's token endpoint sends it.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({"error": error, "error_description": description}))
}

#[derive(serde::Deserialize)]
struct Assertion {
    iss: String,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    scope: String,
    aud: String,
    iat: i64,
    exp: i64,
}

/// A token-endpoint refusal: status, `error`, `error_description`.
type Refusal = (StatusCode, &'static str, &'static str);

/// Check the assertion's RS256 signature and read its claims. Google accepts
/// padded base64url segments (yup-oauth2 sends them) while jsonwebtoken
/// requires unpadded ones (docs/pull-apis.md §0.4); the signature covers the
/// segments as sent, so it is verified over the received text and only the
/// decoding drops the `=`.
fn verify(assertion: &str, public_key: &str) -> Result<Assertion, Refusal> {
    let invalid = || (StatusCode::BAD_REQUEST, "invalid_grant", "Invalid JWT.");
    let mut parts = assertion.split('.');
    let (Some(header), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid());
    };
    let decode = |segment: &str| -> Option<Value> {
        let bytes = URL_SAFE_NO_PAD.decode(segment.trim_end_matches('=')).ok()?;
        serde_json::from_slice(&bytes).ok()
    };
    if decode(header)
        .and_then(|h| h["alg"].as_str().map(str::to_owned))
        .as_deref()
        != Some("RS256")
    {
        return Err(invalid());
    }
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(public_key.as_bytes()).map_err(|_| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_failure",
            "the fake's public key does not parse",
        )
    })?;
    let message = format!("{header}.{claims}");
    let signed = jsonwebtoken::crypto::verify(
        signature.trim_end_matches('='),
        message.as_bytes(),
        &key,
        jsonwebtoken::Algorithm::RS256,
    )
    .unwrap_or(false);
    if !signed {
        return Err((
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Invalid JWT Signature.",
        ));
    }
    decode(claims)
        .and_then(|c| serde_json::from_value(c).ok())
        .ok_or_else(invalid)
}

const SHORT_LIVED: &str = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.";

async fn token_endpoint(
    state: web::Data<State>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let c = &state.credentials;
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Invalid grant_type.",
        );
    }
    let Some(assertion) = form.get("assertion") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing required parameter: assertion",
        );
    };
    let claims = match verify(assertion, &c.public_key) {
        Ok(claims) => claims,
        Err((status, error, description)) => return oauth_error(status, error, description),
    };
    if claims.iss != c.client_email {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "The OAuth client was not found.",
        );
    }
    if claims.aud != state.token_url {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            &format!(
                "Invalid JWT: Failed audience check. The expected audience is {}.",
                state.token_url
            ),
        );
    }
    let now = chrono::Utc::now().timestamp();
    // "a maximum of 1 hour after the issued time"; a minute of clock skew.
    if claims.exp - claims.iat > 3600 || claims.exp < now - 60 || claims.iat > now + 60 {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", SHORT_LIVED);
    }
    let sub = claims.sub.unwrap_or_default();
    let is_admin = c.admins.iter().any(|a| a.eq_ignore_ascii_case(&sub));
    let is_user = state
        .shared
        .directory()
        .live_users()
        .any(|u| u.email.eq_ignore_ascii_case(&sub));
    if !is_admin && !is_user {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Invalid email or User ID",
        );
    }
    let scopes: Vec<&str> = claims.scope.split_whitespace().collect();
    if scopes.is_empty() || !scopes.iter().all(|s| c.scopes.iter().any(|g| g == s)) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized_client",
            "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.",
        );
    }
    let token = state.shared.issue_token();
    if !is_admin {
        state
            .non_admin
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token.clone());
    }
    HttpResponse::Ok().json(json!({
        "access_token": token,
        "expires_in": 3599,
        "token_type": "Bearer",
        "scope": claims.scope,
    }))
}

/// Google's v1 error format (docs/pull-apis.md §1C).
fn api_error(status: StatusCode, domain: &str, reason: &str, message: &str) -> HttpResponse {
    let grpc = match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        _ => "UNAVAILABLE",
    };
    HttpResponse::build(status).json(json!({"error": {
        "code": status.as_u16(),
        "message": message,
        "errors": [{"message": message, "domain": domain, "reason": reason}],
        "status": grpc,
    }}))
}

fn bad_request(message: &str) -> HttpResponse {
    api_error(StatusCode::BAD_REQUEST, "global", "invalid", message)
}

/// Authorize an API request and consult the injected faults: Some(answer)
/// when the request gets no data.
fn gate(state: &State, req: &HttpRequest) -> Option<HttpResponse> {
    let token = super::credential(req, "Bearer");
    let Some(token) = token.filter(|t| state.shared.token_valid(t)) else {
        let mut answer = api_error(
            StatusCode::UNAUTHORIZED,
            "global",
            "authError",
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
        );
        answer.headers_mut().insert(
            actix_web::http::header::WWW_AUTHENTICATE,
            actix_web::http::header::HeaderValue::from_static(
                "Bearer realm=\"https://accounts.google.com/\"",
            ),
        );
        return Some(answer);
    };
    if state
        .non_admin
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(token)
    {
        // What Google answers a delegated call as a user who is no admin
        // (google-api-nodejs-client#1884).
        return Some(api_error(
            StatusCode::FORBIDDEN,
            "global",
            "forbidden",
            "Not Authorized to access this resource/api",
        ));
    }
    match state.shared.faults.next()? {
        Fault::Throttle => Some(api_error(
            StatusCode::FORBIDDEN,
            "usageLimits",
            "userRateLimitExceeded",
            "User Rate Limit Exceeded. Rate of requests for user exceed configured project quota.",
        )),
        Fault::Unavailable => Some(api_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "global",
            "backendError",
            "Backend Error",
        )),
    }
}

fn query(req: &HttpRequest) -> HashMap<String, String> {
    web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default()
}

/// Either `customer` (`my_customer` or the customer id) or `domain` must
/// name this directory: "Either the customer or the domain parameter must
/// be provided" (GDISC users.list).
fn owner(query: &HashMap<String, String>) -> Option<HttpResponse> {
    match (query.get("customer"), query.get("domain")) {
        (None, None) => Some(bad_request("Bad Request")),
        (Some(c), _) if c != "my_customer" && c != CUSTOMER_ID => Some(api_error(
            StatusCode::BAD_REQUEST,
            "global",
            "badRequest",
            "Bad Request",
        )),
        // [UNVERIFIED] wording for a domain the customer does not own.
        (None, Some(d)) if !d.eq_ignore_ascii_case(DOMAIN) => Some(api_error(
            StatusCode::BAD_REQUEST,
            "global",
            "notFound",
            "Domain not found.",
        )),
        _ => None,
    }
}

/// One page of `items` under the listing's field name (`users`, `groups`,
/// `members`), left out when empty as Google leaves out empty repeated
/// fields; `nextPageToken` only when more follow. The token is opaque to
/// clients; here it is the offset.
fn page(
    query: &HashMap<String, String>,
    kind: &str,
    field: &str,
    max: usize,
    default: usize,
    items: Vec<Value>,
) -> HttpResponse {
    let size = query
        .get("maxResults")
        .and_then(|t| t.parse::<usize>().ok())
        .unwrap_or(default)
        .clamp(1, max);
    let offset = match query.get("pageToken") {
        None => 0,
        Some(token) => match URL_SAFE_NO_PAD
            .decode(token)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse::<usize>().ok())
        {
            Some(offset) => offset,
            None => return bad_request("Invalid Input: pageToken"),
        },
    };
    let end = (offset + size).min(items.len());
    let slice = items.get(offset..end).unwrap_or_default();
    let mut body = json!({"kind": kind, "etag": "\"fake\""});
    if !slice.is_empty() {
        body[field] = Value::Array(slice.to_vec());
    }
    if end < items.len() {
        body["nextPageToken"] = json!(URL_SAFE_NO_PAD.encode(end.to_string()));
    }
    HttpResponse::Ok().json(body)
}

/// The `query` clauses the fake understands (Google's search-users syntax,
/// clauses space-separated = AND): `orgUnitPath=/A` or `orgUnitPath='/A B'`
/// (the unit and every unit under it, as Google matches "all org unit
/// chains under the target"), and `isSuspended=true|false`.
fn user_filter(raw: &str) -> Result<Vec<(String, String)>, String> {
    let mut clauses = Vec::new();
    let mut rest = raw.trim();
    while !rest.is_empty() {
        let (field, after) = rest
            .split_once('=')
            .ok_or_else(|| format!("Invalid Input: {raw}"))?;
        let (value, after) = match after.strip_prefix('\'') {
            Some(quoted) => quoted
                .split_once('\'')
                .ok_or_else(|| format!("Invalid Input: {raw}"))?,
            None => after.split_once(' ').unwrap_or((after, "")),
        };
        clauses.push((field.trim().to_owned(), value.to_owned()));
        rest = after.trim();
    }
    Ok(clauses)
}

fn matches(user: &super::Person, clauses: &[(String, String)]) -> bool {
    clauses.iter().all(|(field, value)| match field.as_str() {
        "orgUnitPath" => {
            let unit = value.trim_end_matches('/');
            unit.is_empty()
                || user.org_unit == unit
                || user
                    .org_unit
                    .strip_prefix(unit)
                    .is_some_and(|r| r.starts_with('/'))
        }
        "isSuspended" => (value == "true") != user.active,
        _ => false,
    })
}

async fn list_users(state: web::Data<State>, req: HttpRequest) -> HttpResponse {
    if let Some(answer) = gate(&state, &req) {
        return answer;
    }
    let query = query(&req);
    if let Some(answer) = owner(&query) {
        return answer;
    }
    let clauses = match user_filter(query.get("query").map(String::as_str).unwrap_or("")) {
        Ok(clauses) => clauses,
        Err(message) => return bad_request(&message),
    };
    if let Some((field, _)) = clauses
        .iter()
        .find(|(f, _)| f != "orgUnitPath" && f != "isSuspended")
    {
        return bad_request(&format!("Invalid Input: {field}"));
    }
    let projection = match Projection::parse(&query) {
        Ok(projection) => projection,
        Err(message) => return bad_request(&message),
    };
    state.shared.asked(req.query_string());
    state.shared.listed();
    let users = state
        .shared
        .directory()
        .listed_users()
        .filter(|u| matches(u, &clauses))
        .map(|u| projection.apply(u.google()))
        .collect();
    page(&query, "admin#directory#users", "users", 500, 100, users)
}

/// users.get: one user by `userKey` (the id or the primary email, §1B),
/// with the projection and `customFieldMask` a listing takes; an unknown
/// one is Google's 404 `notFound` "Resource Not Found: userKey".
async fn get_user(
    state: web::Data<State>,
    req: HttpRequest,
    key: web::Path<String>,
) -> HttpResponse {
    if let Some(answer) = gate(&state, &req) {
        return answer;
    }
    let query = query(&req);
    let projection = match Projection::parse(&query) {
        Ok(projection) => projection,
        Err(message) => return bad_request(&message),
    };
    state.shared.faults.paced().await;
    state.shared.read_user(&key);
    match state.shared.find_user(&key) {
        Some(user) => HttpResponse::Ok().json(projection.apply(user.google())),
        None => api_error(
            StatusCode::NOT_FOUND,
            "global",
            "notFound",
            "Resource Not Found: userKey",
        ),
    }
}

/// What part of a user users.list serves (§1B): `basic` (the default)
/// leaves out every custom schema, `custom` serves those `customFieldMask`
/// names (comma-separated), `full` all of them.
#[derive(Debug, PartialEq)]
enum Projection {
    Basic,
    Custom(Vec<String>),
    Full,
}

impl Projection {
    fn parse(query: &HashMap<String, String>) -> Result<Projection, String> {
        let mask = query.get("customFieldMask");
        match (query.get("projection").map(String::as_str), mask) {
            (None | Some("basic"), None) => Ok(Projection::Basic),
            (Some("full"), None) => Ok(Projection::Full),
            (Some("custom"), Some(mask)) if !mask.trim().is_empty() => Ok(Projection::Custom(
                mask.split(',').map(|s| s.trim().to_owned()).collect(),
            )),
            // [UNVERIFIED] wording: the mask belongs to `custom` only, and
            // `custom` needs one.
            (Some("custom"), _) => Err("Invalid Input: customFieldMask".into()),
            (_, Some(_)) => Err("Invalid Input: customFieldMask".into()),
            (Some(other), None) => Err(format!("Invalid value for projection: {other}")),
        }
    }

    fn apply(&self, mut user: Value) -> Value {
        let Some(schemas) = user.get_mut("customSchemas").and_then(Value::as_object_mut) else {
            return user;
        };
        match self {
            Projection::Full => {}
            Projection::Basic => schemas.clear(),
            // Schema names are matched exactly, as the mask names them.
            Projection::Custom(mask) => schemas.retain(|name, _| mask.contains(name)),
        }
        if schemas.is_empty()
            && let Some(user) = user.as_object_mut()
        {
            user.remove("customSchemas");
        }
        user
    }
}

/// The group's nested group (the next one, when there are several), so the
/// member listing holds a `type: GROUP` entry connectors must skip.
fn nested(directory: &super::Org, index: usize) -> Option<&super::Team> {
    let live: Vec<&super::Team> = directory.live_groups().collect();
    if live.len() < 2 {
        return None;
    }
    live.get((index + 1) % live.len()).copied()
}

async fn list_groups(state: web::Data<State>, req: HttpRequest) -> HttpResponse {
    if let Some(answer) = gate(&state, &req) {
        return answer;
    }
    let query = query(&req);
    if let Some(answer) = owner(&query) {
        return answer;
    }
    let directory = state.shared.directory();
    let groups = directory
        .live_groups()
        .enumerate()
        .map(|(i, g)| {
            let mut group = g.google();
            let count =
                directory.members_of(g).count() + usize::from(nested(&directory, i).is_some());
            group["directMembersCount"] = json!(count.to_string());
            group
        })
        .collect();
    drop(directory);
    page(&query, "admin#directory#groups", "groups", 200, 200, groups)
}

async fn list_members(
    state: web::Data<State>,
    req: HttpRequest,
    key: web::Path<String>,
) -> HttpResponse {
    if let Some(answer) = gate(&state, &req) {
        return answer;
    }
    let query = query(&req);
    let directory = state.shared.directory();
    // groupKey is the group's id or its email (GDISC members.list).
    let found = directory.live_groups().enumerate().find(|(_, g)| {
        g.id == *key
            || g.google()["email"]
                .as_str()
                .is_some_and(|e| e.eq_ignore_ascii_case(&key))
    });
    let Some((index, group)) = found else {
        return api_error(
            StatusCode::NOT_FOUND,
            "global",
            "notFound",
            "Resource Not Found: groupKey",
        );
    };
    let mut members: Vec<Value> = directory
        .members_of(group)
        .enumerate()
        .map(|(n, u)| {
            json!({
                "kind": "admin#directory#member",
                "etag": format!("\"{}\"", u.updated_at),
                "id": u.id,
                "email": u.email,
                "role": if n == 0 { "OWNER" } else { "MEMBER" },
                "type": "USER",
                "status": "ACTIVE",
            })
        })
        .collect();
    if let Some(inner) = nested(&directory, index) {
        members.push(json!({
            "kind": "admin#directory#member",
            "etag": "\"fake\"",
            "id": inner.id,
            "email": inner.google()["email"],
            "role": "MEMBER",
            "type": "GROUP",
            "status": "ACTIVE",
        }));
    }
    drop(directory);
    page(
        &query,
        "admin#directory#members",
        "members",
        200,
        200,
        members,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pull::fake::{Order, Org};

    /// An assertion signed as yup-oauth2 signs it: padded base64url segments.
    fn padded_assertion(credentials: &Credentials, aud: &str, sub: &str) -> String {
        let now = chrono::Utc::now().timestamp();
        signed(
            credentials,
            json!({"iss": credentials.client_email, "sub": sub, "scope": SCOPES.join(" "),
                   "aud": aud, "iat": now, "exp": now + 3595}),
        )
    }

    fn signed(credentials: &Credentials, claims: Value) -> String {
        use base64::engine::general_purpose::URL_SAFE;
        let header = URL_SAFE.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = URL_SAFE.encode(claims.to_string());
        let message = format!("{header}.{claims}");
        let key =
            jsonwebtoken::EncodingKey::from_rsa_pem(credentials.private_key.expose().as_bytes())
                .unwrap();
        let signature =
            jsonwebtoken::crypto::sign(message.as_bytes(), &key, jsonwebtoken::Algorithm::RS256)
                .unwrap();
        // jsonwebtoken signs unpadded; pad it back as yup-oauth2 would.
        let signature = URL_SAFE.encode(URL_SAFE_NO_PAD.decode(signature).unwrap());
        format!("{message}.{signature}")
    }

    async fn token(fake: &Running, assertion: &str) -> (u16, Value) {
        let res = reqwest::Client::new()
            .post(format!("{}/token", fake.base_url))
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", assertion),
            ])
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.json().await.unwrap())
    }

    async fn get(fake: &Running, access: &str, path: &str) -> (u16, Value) {
        let res = reqwest::Client::new()
            .get(format!("{}/admin/directory/v1/{path}", fake.base_url))
            .bearer_auth(access)
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.json().await.unwrap())
    }

    #[tokio::test]
    async fn the_fake_accepts_a_padded_assertion_like_yup_oauth2_sends() {
        let credentials = Credentials::default();
        let fake = start(Shared::new(Org::generate(3, 1, 1)), credentials.clone()).unwrap();
        let aud = format!("{}/token", fake.base_url);
        let assertion = padded_assertion(&credentials, &aud, "admin@example.com");
        assert!(assertion.contains('='), "the test really pads");
        let (status, body) = token(&fake, &assertion).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 3599);
    }

    #[tokio::test]
    async fn the_fake_refuses_a_foreign_audience_and_an_unknown_admin_in_googles_words() {
        let credentials = Credentials::default();
        let fake = start(Shared::new(Org::generate(3, 1, 1)), credentials.clone()).unwrap();
        let aud = format!("{}/token", fake.base_url);
        let (status, body) = token(
            &fake,
            &padded_assertion(
                &credentials,
                "https://oauth2.googleapis.com/token",
                "admin@example.com",
            ),
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant"))
        );
        let (status, body) = token(
            &fake,
            &padded_assertion(&credentials, &aud, "ghost@example.com"),
        )
        .await;
        assert_eq!(status, 400);
        assert_eq!(body["error_description"], "Invalid email or User ID");
    }

    #[tokio::test]
    async fn the_fake_refuses_a_long_lived_assertion_and_an_unknown_client() {
        let credentials = Credentials::default();
        let fake = start(Shared::new(Org::generate(3, 1, 1)), credentials.clone()).unwrap();
        let aud = format!("{}/token", fake.base_url);
        let now = chrono::Utc::now().timestamp();
        let claims = |iss: &str, exp: i64| {
            json!({"iss": iss, "sub": "admin@example.com", "scope": SCOPES.join(" "),
                   "aud": aud, "iat": now, "exp": exp})
        };
        let (status, body) = token(
            &fake,
            &signed(&credentials, claims(&credentials.client_email, now + 7200)),
        )
        .await;
        assert_eq!(status, 400);
        assert_eq!(body["error_description"], SHORT_LIVED);
        let (status, body) = token(
            &fake,
            &signed(
                &credentials,
                claims("other@x.iam.gserviceaccount.com", now + 60),
            ),
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client"))
        );
    }

    #[tokio::test]
    async fn listings_need_a_customer_or_domain_clamp_max_results_and_count_members_as_strings() {
        let credentials = Credentials::default();
        let dir = Org::generate(600, 2, 9);
        let fake = start(Shared::new(dir.clone()), credentials.clone()).unwrap();
        let aud = format!("{}/token", fake.base_url);
        let (_, body) = token(
            &fake,
            &padded_assertion(&credentials, &aud, "admin@example.com"),
        )
        .await;
        let access = body["access_token"].as_str().unwrap().to_owned();

        let (status, body) = get(&fake, &access, "users").await;
        assert_eq!(status, 400, "{body}");
        let (status, body) =
            get(&fake, &access, "users?customer=my_customer&maxResults=9999").await;
        assert_eq!(status, 200);
        assert_eq!(body["users"].as_array().unwrap().len(), 500);
        assert!(body["nextPageToken"].is_string());

        let (_, body) = get(&fake, &access, "groups?domain=example.com").await;
        let groups = body["groups"].as_array().unwrap();
        // Each of the two groups nests the other, so one more than its users.
        let expected = (dir.groups[0].members.len() + 1).to_string();
        assert_eq!(groups[0]["directMembersCount"], json!(expected));
        assert!(body.get("nextPageToken").is_none());

        let (status, body) = get(&fake, "stale", "groups?customer=my_customer").await;
        assert_eq!(status, 401);
        assert_eq!(body["error"]["errors"][0]["reason"], "authError");
    }

    #[rstest::rstest]
    #[case(Order::AsCreated)]
    #[case(Order::Reversed)]
    #[case(Order::Shuffled(9))]
    #[tokio::test]
    async fn users_are_listed_in_the_directorys_order_across_pages(#[case] order: Order) {
        let credentials = Credentials::default();
        let mut dir = Org::generate(250, 2, 9);
        dir.order = order;
        let shared = Shared::new(dir.clone());
        let fake = start(shared.clone(), credentials.clone()).unwrap();
        let aud = format!("{}/token", fake.base_url);
        let (_, body) = token(
            &fake,
            &padded_assertion(&credentials, &aud, "admin@example.com"),
        )
        .await;
        let access = body["access_token"].as_str().unwrap().to_owned();
        let list = |query: &'static str| {
            let (fake, access) = (&fake, &access);
            async move {
                let mut ids = Vec::new();
                let mut token: Option<String> = None;
                loop {
                    let path = match &token {
                        Some(t) => format!("users?{query}&maxResults=100&pageToken={t}"),
                        None => format!("users?{query}&maxResults=100"),
                    };
                    let (status, body) = get(fake, access, &path).await;
                    assert_eq!(status, 200, "{body}");
                    for user in body["users"].as_array().into_iter().flatten() {
                        ids.push(user["id"].as_str().unwrap().to_owned());
                    }
                    match body["nextPageToken"].as_str() {
                        Some(t) => token = Some(t.to_owned()),
                        None => return ids,
                    }
                }
            }
        };
        let expected: Vec<String> = dir.listed_users().map(|u| u.id.clone()).collect();
        assert_eq!(list("customer=my_customer").await, expected);
        let sales: Vec<String> = dir
            .listed_users()
            .filter(|u| u.org_unit == "/Sales")
            .map(|u| u.id.clone())
            .collect();
        assert_eq!(
            list("customer=my_customer&query=orgUnitPath%3D%2FSales").await,
            sales
        );

        // The same directory, listed the other way round on the next run.
        shared.directory_mut().order = Order::Reversed;
        let mut flipped = list("customer=my_customer").await;
        if order != Order::Reversed {
            assert_ne!(flipped, expected);
        }
        flipped.sort();
        let mut all = expected.clone();
        all.sort();
        assert_eq!(flipped, all);
    }

    #[tokio::test]
    async fn a_throttled_request_gets_googles_usage_limits_body() {
        let credentials = Credentials::default();
        let shared = Shared::new(Org::generate(3, 1, 1));
        let fake = start(shared.clone(), credentials.clone()).unwrap();
        let aud = format!("{}/token", fake.base_url);
        let (_, body) = token(
            &fake,
            &padded_assertion(&credentials, &aud, "admin@example.com"),
        )
        .await;
        let access = body["access_token"].as_str().unwrap().to_owned();
        shared.faults.throttle(1);
        let (status, body) = get(&fake, &access, "users?customer=my_customer").await;
        assert_eq!(status, 403);
        assert_eq!(body["error"]["errors"][0]["domain"], "usageLimits");
        assert_eq!(
            body["error"]["errors"][0]["reason"],
            "userRateLimitExceeded"
        );
        let (status, body) = get(&fake, &access, "users?customer=my_customer").await;
        assert_eq!(status, 200);
        assert!(body.get("nextPageToken").is_none());
    }
}
