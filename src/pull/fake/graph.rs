//! A fake Microsoft Graph on port 0 (docs/pull-apis.md §2A–2F): the
//! client-credentials token endpoint with Entra's error bodies; `users`,
//! `users/delta` (full and incremental rounds, `@removed` tombstones,
//! 7-day delta tokens that expire into 410 `syncStateNotFound`), `groups`,
//! `groups/{id}/members` and `groups/{id}/transitiveMembers` with `$top`,
//! `$select` and absolute `@odata.nextLink` paging built from the fake's own
//! base URL; 403 `Authorization_RequestDenied` for an app without the
//! permission, and the injected faults of `Shared` as Graph answers them.
//! User listings follow the directory's `Order`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Fault, Order, Org, Running, Shared};

/// The one app registration the fake accepts.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: crate::crypto::Secret,
    /// The application permissions granted to the app (admin-consented
    /// roles, e.g. `User.Read.All`); a request needing another is 403.
    pub permissions: Vec<String>,
    /// The `expires_in` of the tokens the fake issues (Entra: 3599).
    pub token_lifetime_secs: u64,
}

impl Default for Credentials {
    /// Fixed dev credentials (`dirsync dev fake-directory` prints them).
    fn default() -> Credentials {
        Credentials {
            tenant_id: "contoso.onmicrosoft.com".into(),
            client_id: "0d1e5b2a-7c3f-4e8a-9b61-d1a5c0ffee01".into(),
            client_secret: crate::crypto::Secret::new("dirsync-dev-client-secret".into()),
            permissions: vec!["User.Read.All".into(), "GroupMember.Read.All".into()],
            token_lifetime_secs: 3599,
        }
    }
}

/// What a newcomer hands `dirsync connection create --file` to point an
/// Entra connection at this fake.
pub fn dev_connection(running: &Running, credentials: &Credentials) -> Value {
    let settings = crate::pull::graph::Settings {
        tenant_id: credentials.tenant_id.clone(),
        client_id: credentials.client_id.clone(),
        authority_base: running.base_url.clone(),
        graph_base: running.graph_base(),
    };
    json!({
        "provider": "entra",
        "settings": serde_json::to_value(settings).unwrap_or(Value::Null),
        "secret": credentials.client_secret.expose(),
    })
}

/// Directory-object delta tokens are valid for 7 days (§2C).
const DELTA_TOKEN_LIFE_MS: i64 = 7 * 24 * 3600 * 1000;

/// Users per delta page (delta takes no `$top`; Graph picks the size).
const DELTA_PAGE: usize = 100;

/// Make every delta token issued so far too old: the fake's clock moves
/// past their 7-day life, so the next request with one is 410 Gone. Later
/// changes are stamped after the jump.
pub fn expire_delta_tokens(shared: &Shared) {
    let mut directory = shared.directory_mut();
    directory.clock = now(&directory) + DELTA_TOKEN_LIFE_MS + 60_000;
}

/// The fake's "now": its directory clock, or the wall clock when later.
fn now(directory: &Org) -> i64 {
    directory.clock.max(chrono::Utc::now().timestamp_millis())
}

/// Application permissions that allow reading users (§2A), and groups with
/// their members.
const USERS_READ: &[&str] = &[
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const GROUPS_READ: &[&str] = &[
    "GroupMember.Read.All",
    "Group.Read.All",
    "Group.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];

struct State {
    base: String,
    credentials: Credentials,
    shared: Arc<Shared>,
}

/// Start the fake on 127.0.0.1, port 0: the authority base is its
/// `base_url`, the Graph base `graph_base()`.
pub fn start(shared: Arc<Shared>, credentials: Credentials) -> std::io::Result<Running> {
    super::serve(|base| {
        let state = web::Data::new(State {
            base: base.to_owned(),
            credentials,
            shared,
        });
        move |cfg: &mut web::ServiceConfig| {
            cfg.app_data(state.clone())
                .route(
                    "/{tenant}/oauth2/v2.0/token",
                    web::post().to(token_endpoint),
                )
                .route("/v1.0/users", web::get().to(list_users))
                .route("/v1.0/users/delta", web::get().to(users_delta))
                .route("/v1.0/users/{key}", web::get().to(get_user))
                .route("/v1.0/groups", web::get().to(list_groups))
                .route("/v1.0/groups/{id}/members", web::get().to(list_members))
                .route(
                    "/v1.0/groups/{id}/transitiveMembers",
                    web::get().to(list_transitive_members),
                );
        }
    })
}

fn aadsts(status: u16, error: &str, code: u32, message: &str) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(status)
        .unwrap_or(actix_web::http::StatusCode::BAD_REQUEST);
    // Entra appends trace ids and a timestamp on later lines (§2A).
    HttpResponse::build(status).json(json!({
        "error": error,
        "error_description": format!(
            "AADSTS{code}: {message}\r\nTrace ID: 00000000-0000-0000-0000-000000000000\r\nCorrelation ID: 00000000-0000-0000-0000-000000000000\r\nTimestamp: {}",
            chrono::Utc::now().format("%Y-%m-%d %H:%M:%SZ")
        ),
        "error_codes": [code],
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    }))
}

async fn token_endpoint(
    state: web::Data<State>,
    tenant: web::Path<String>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let c = &state.credentials;
    if *tenant != c.tenant_id {
        return aadsts(
            400,
            "invalid_request",
            90002,
            &format!("Tenant '{tenant}' not found."),
        );
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return aadsts(
            400,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        );
    }
    if !form.get("scope").is_some_and(|s| s.ends_with("/.default")) {
        return aadsts(
            400,
            "invalid_scope",
            1002012,
            "Client credential flows must have a scope value with /.default suffixed to the resource identifier.",
        );
    }
    let client_id = form.get("client_id").map(String::as_str).unwrap_or("");
    if client_id != c.client_id {
        return aadsts(
            400,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'."
            ),
        );
    }
    match form.get("client_secret") {
        None => aadsts(
            400,
            "invalid_request",
            7000216,
            "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
        ),
        Some(secret) if secret.as_str() == c.client_secret.expose() => {
            HttpResponse::Ok().json(json!({
                "token_type": "Bearer",
                "expires_in": c.token_lifetime_secs,
                "ext_expires_in": c.token_lifetime_secs,
                "access_token": state.shared.issue_token(),
            }))
        }
        Some(_) => aadsts(
            401,
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app.",
        ),
    }
}

fn graph_error(status: actix_web::http::StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({"error": {
        "code": code,
        "message": message,
        "innerError": {
            "date": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string(),
            "request-id": uuid::Uuid::new_v4().to_string(),
        },
    }}))
}

/// Authorize an API request, check the app holds one of `needs`, and
/// consult the injected faults: Some(answer) when the request gets no data.
fn gate(state: &State, req: &HttpRequest, needs: &[&str]) -> Option<HttpResponse> {
    use actix_web::http::StatusCode;
    let token = super::credential(req, "Bearer");
    if !token.is_some_and(|t| state.shared.token_valid(t)) {
        return Some(graph_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Access token has expired or is not yet valid.",
        ));
    }
    let granted = &state.credentials.permissions;
    if !needs.iter().any(|n| granted.iter().any(|g| g == n)) {
        // ms-identity-python-daemon#8 (§2A).
        return Some(graph_error(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        ));
    }
    match state.shared.faults.next()? {
        // Graph's throttling answer (§2D).
        Fault::Throttle => {
            let ms = state.shared.faults.retry_after_ms.load(Ordering::SeqCst);
            Some(
                HttpResponse::TooManyRequests()
                    .insert_header(("Retry-After", format!("{:.3}", ms as f64 / 1000.0)))
                    .json(json!({"error": {
                        "code": "TooManyRequests",
                        "message": "Please retry again later.",
                        "innerError": {"code": "429", "message": "Please retry after", "status": "429"},
                    }})),
            )
        }
        Fault::Unavailable => Some(graph_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "serviceNotAvailable",
            "The service is temporarily unavailable.",
        )),
    }
}

fn query(req: &HttpRequest) -> HashMap<String, String> {
    web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default()
}

/// Keep `id`, the OData annotations and the selected fields (§2B: Graph
/// returns only what is selected, and always the id).
fn project(item: &Value, select: Option<&str>) -> Value {
    let Some(select) = select else {
        return item.clone();
    };
    let fields: Vec<&str> = select.split(',').map(str::trim).collect();
    let mut out = serde_json::Map::new();
    for (k, v) in item.as_object().into_iter().flatten() {
        if k == "id" || k.starts_with('@') || fields.contains(&k.as_str()) {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

/// One page of `items` and the absolute link to the next (Graph's
/// `$skiptoken` is opaque to clients; here it is the offset).
fn page(state: &State, req: &HttpRequest, path: &str, items: Vec<Value>) -> HttpResponse {
    let query = query(req);
    let top = query
        .get("$top")
        .and_then(|t| t.parse::<usize>().ok())
        .unwrap_or(100)
        .clamp(1, 999);
    let offset = query
        .get("$skiptoken")
        .and_then(|t| URL_SAFE_NO_PAD.decode(t).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(0);
    let select = query.get("$select").map(String::as_str);
    let end = (offset + top).min(items.len());
    let value: Vec<Value> = items
        .get(offset..end)
        .unwrap_or_default()
        .iter()
        .map(|item| project(item, select))
        .collect();
    let mut body = json!({
        "@odata.context": format!("{}/v1.0/$metadata#{path}", state.base),
        "value": value,
    });
    if end < items.len() {
        let mut next = format!(
            "{}/v1.0/{path}?$top={top}&$skiptoken={}",
            state.base,
            URL_SAFE_NO_PAD.encode(end.to_string())
        );
        if let Some(select) = select {
            next.push_str(&format!("&$select={select}"));
        }
        body["@odata.nextLink"] = Value::String(next);
    }
    HttpResponse::Ok().json(body)
}

async fn list_users(state: web::Data<State>, req: HttpRequest) -> HttpResponse {
    if let Some(answer) = gate(&state, &req, USERS_READ) {
        return answer;
    }
    state.shared.listed();
    state.shared.faults.paced().await;
    let users = state
        .shared
        .directory()
        .listed_users()
        .map(|u| u.graph())
        .collect();
    page(&state, &req, "users", users)
}

/// Where a delta round stands, carried in its opaque `$skiptoken` and
/// `$deltatoken` (Graph encodes the query in its tokens, §2C).
#[derive(Debug, Serialize, Deserialize)]
struct Round {
    /// None: the initial round (every live user); else report what changed
    /// after this stamp.
    since: Option<i64>,
    /// The directory clock when the round started: the next round's `since`.
    at: i64,
    /// When the link carrying this was issued (the fake's now), for the
    /// 7-day life of delta tokens.
    issued: i64,
    /// The `$select` of the round's first request.
    select: Option<String>,
    /// How many users the directory held when the round started: the round
    /// walks those (a user added since is reported by the next round), so
    /// its positions stay put while it pages, whatever the order.
    count: usize,
    /// The listing order the round started with.
    order: Order,
    /// Whether changed users are sent partial (`Org::partial_delta`
    /// when the round started; initial rounds are always whole).
    partial: bool,
    /// Where the next page starts in the round's ordered list of users
    /// (deletions leave tombstones, so the list is stable).
    offset: usize,
}

impl Round {
    /// A round starting now, from `since`.
    fn starting(directory: &Org, since: Option<i64>, select: Option<String>) -> Round {
        Round {
            since,
            at: directory.clock,
            issued: now(directory),
            select,
            count: directory.users.len(),
            order: directory.order,
            partial: since.is_some() && directory.partial_delta,
            offset: 0,
        }
    }

    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    fn decode(token: &str) -> Option<Round> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token).ok()?).ok()
    }
}

/// A changed user as a partial delta item: its id and the properties of
/// `now` that differ from `then` (a property that lost its value is `null`
/// in `now`, so it is sent as `null`, Graph's form for a cleared property).
fn changed_properties(then: &Value, now: &Value) -> Value {
    let mut item = serde_json::Map::new();
    for (key, value) in now.as_object().into_iter().flatten() {
        if key == "id" || then.get(key) != Some(value) {
            item.insert(key.clone(), value.clone());
        }
    }
    Value::Object(item)
}

/// `GET /v1.0/users/delta` (§2C): a round lists users page by page
/// (`@odata.nextLink`), in the directory's order; its last page carries
/// `@odata.deltaLink`; a later round from that link reports users changed
/// since (whole, or only what changed when `partial_delta` is on) and
/// `@removed` tombstones for users deleted since.
async fn users_delta(state: web::Data<State>, req: HttpRequest) -> HttpResponse {
    use actix_web::http::StatusCode;
    if let Some(answer) = gate(&state, &req, USERS_READ) {
        return answer;
    }
    state.shared.listed();
    let query = query(&req);
    let directory = state.shared.directory();
    let now = now(&directory);
    let delta_path = format!("{}/v1.0/users/delta", state.base);
    let expired = |select: Option<&str>| {
        // A fresh, empty-token delta URL to start over from (§2C).
        let location = match select {
            Some(select) => format!("{delta_path}?$select={select}"),
            None => delta_path.clone(),
        };
        HttpResponse::Gone()
            .insert_header(("Location", location))
            .json(json!({"error": {
                "code": "syncStateNotFound",
                "message": "The sync state has expired. Restart the sync without a delta token.",
            }}))
    };
    let select = query.get("$select").cloned();
    let round = if let Some(token) = query.get("$skiptoken") {
        match Round::decode(token) {
            Some(round) if round.issued + DELTA_TOKEN_LIFE_MS < now => {
                return expired(round.select.as_deref());
            }
            Some(round) => round,
            // An unreadable token: the fake's answer is the 400 form of
            // Graph's resync error.
            None => {
                return graph_error(
                    StatusCode::BAD_REQUEST,
                    "resyncRequired",
                    "The skip token is not valid. Restart the sync.",
                );
            }
        }
    } else if query.get("$deltatoken").map(String::as_str) == Some("latest") {
        // "Sync from now": no data, only a deltaLink (§2C).
        let link = Round::starting(&directory, Some(directory.clock), select);
        return HttpResponse::Ok().json(json!({
            "@odata.context": format!("{}/v1.0/$metadata#users", state.base),
            "@odata.deltaLink": format!("{delta_path}?$deltatoken={}", link.encode()),
            "value": [],
        }));
    } else if let Some(token) = query.get("$deltatoken") {
        match Round::decode(token) {
            Some(link) if link.issued + DELTA_TOKEN_LIFE_MS < now => {
                return expired(link.select.as_deref());
            }
            Some(link) => Round::starting(&directory, link.since, link.select),
            None => {
                return graph_error(
                    StatusCode::BAD_REQUEST,
                    "resyncRequired",
                    "The delta token is not valid. Restart the sync.",
                );
            }
        }
    } else {
        Round::starting(&directory, None, select)
    };
    let select = round.select.as_deref();
    let ordered = round.order.arrange((0..round.count).collect());
    let mut value = Vec::new();
    let mut position = round.offset;
    while position < ordered.len() && value.len() < DELTA_PAGE {
        let index = ordered[position];
        position += 1;
        let Some(user) = directory.users.get(index) else {
            continue;
        };
        match (round.since, user.deleted_at) {
            (None, None) => value.push(project(&user.graph(), select)),
            (None, Some(_)) => {}
            (Some(since), _) if user.updated_at <= since => {}
            // Hard-deleted since the last round (§2C, §2E).
            (Some(_), Some(_)) => {
                value.push(json!({"id": user.id, "@removed": {"reason": "deleted"}}))
            }
            (Some(since), None) => {
                let now = project(&user.graph(), select);
                match directory.user_as_of(index, since) {
                    Some(then) if round.partial => {
                        value.push(changed_properties(&project(&then.graph(), select), &now))
                    }
                    // Whole: not partial, or created since.
                    _ => value.push(now),
                }
            }
        }
    }
    let mut body = json!({
        "@odata.context": format!("{}/v1.0/$metadata#users", state.base),
        "value": value,
    });
    if position < ordered.len() {
        let next = Round {
            offset: position,
            ..round
        };
        body["@odata.nextLink"] = json!(format!("{delta_path}?$skiptoken={}", next.encode()));
    } else {
        let link = Round {
            since: Some(round.at),
            at: round.at,
            issued: now,
            offset: 0,
            ..round
        };
        body["@odata.deltaLink"] = json!(format!("{delta_path}?$deltatoken={}", link.encode()));
    }
    HttpResponse::Ok().json(body)
}

async fn list_groups(state: web::Data<State>, req: HttpRequest) -> HttpResponse {
    if let Some(answer) = gate(&state, &req, GROUPS_READ) {
        return answer;
    }
    let groups = state
        .shared
        .directory()
        .live_groups()
        .map(|g| g.graph())
        .collect();
    page(&state, &req, "groups", groups)
}

async fn list_members(
    state: web::Data<State>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    members(&state, &req, &id, "members")
}

/// The fake's groups are flat, so transitive members are the direct ones.
async fn list_transitive_members(
    state: web::Data<State>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    state.shared.listed();
    members(&state, &req, &id, "transitiveMembers")
}

/// One user by id or userPrincipalName (`GET /users/{id | userPrincipalName}`,
/// §2B), with the same `$select` a listing takes; an unknown one is Graph's
/// 404 `Request_ResourceNotFound`.
async fn get_user(
    state: web::Data<State>,
    req: HttpRequest,
    key: web::Path<String>,
) -> HttpResponse {
    if let Some(answer) = gate(&state, &req, USERS_READ) {
        return answer;
    }
    state.shared.faults.paced().await;
    state.shared.read_user(&key);
    let Some(user) = state.shared.find_user(&key) else {
        return graph_error(
            actix_web::http::StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &format!(
                "Resource '{key}' does not exist or one of its queried reference-property objects are not present."
            ),
        );
    };
    let query = query(&req);
    let mut body = project(&user.graph(), query.get("$select").map(String::as_str));
    body["@odata.context"] = json!(format!("{}/v1.0/$metadata#users/$entity", state.base));
    HttpResponse::Ok().json(body)
}

/// A group's members as typed directoryObjects (§2B): its users, and one
/// organizational contact, as real groups hold more than users.
fn members(state: &State, req: &HttpRequest, id: &str, relation: &str) -> HttpResponse {
    if let Some(answer) = gate(state, req, GROUPS_READ) {
        return answer;
    }
    let directory = state.shared.directory();
    let Some(group) = directory.live_groups().find(|g| g.id == id) else {
        return graph_error(
            actix_web::http::StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &format!(
                "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
            ),
        );
    };
    let mut members: Vec<Value> = directory
        .members_of(group)
        .map(|u| {
            let mut v = u.graph();
            v["@odata.type"] = json!("#microsoft.graph.user");
            v
        })
        .collect();
    members.push(json!({
        "@odata.type": "#microsoft.graph.orgContact",
        "id": format!("c0ffee00-0000-4000-8000-{:0>12}", group.id.rsplit('-').next().unwrap_or("0")),
        "displayName": format!("{} partner contact", group.name),
        "mail": "partner@contractor.example",
    }));
    drop(directory);
    page(state, req, &format!("groups/{id}/{relation}"), members)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pull::fake::Org;
    use crate::pull::normalize::graph_user;

    fn credentials() -> Credentials {
        Credentials {
            tenant_id: "contoso".into(),
            client_id: "app-1".into(),
            client_secret: crate::crypto::Secret::new("s3cret".into()),
            ..Credentials::default()
        }
    }

    async fn token(fake: &Running, secret: &str) -> (u16, Value) {
        let res = reqwest::Client::new()
            .post(format!("{}/contoso/oauth2/v2.0/token", fake.base_url))
            .form(&[
                ("client_id", "app-1"),
                ("client_secret", secret),
                ("scope", "https://graph.microsoft.com/.default"),
                ("grant_type", "client_credentials"),
            ])
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.json().await.unwrap())
    }

    #[tokio::test]
    async fn the_fake_lists_every_user_across_next_links_after_the_client_credentials_grant() {
        let dir = Org::generate(250, 4, 42);
        let fake = start(Shared::new(dir.clone()), credentials()).unwrap();
        let (status, body) = token(&fake, "s3cret").await;
        assert_eq!(status, 200, "{body}");
        let access = body["access_token"].as_str().unwrap().to_owned();
        let client = reqwest::Client::new();
        let mut next = Some(format!(
            "{}/users?$top=100&$select=id,mail,givenName,surname,accountEnabled",
            fake.graph_base()
        ));
        let mut seen = Vec::new();
        let mut pages = 0;
        while let Some(url) = next {
            let page: Value = client
                .get(&url)
                .bearer_auth(&access)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            pages += 1;
            for user in page["value"].as_array().unwrap() {
                assert!(user.get("department").is_none(), "$select is honoured");
                seen.push(graph_user(user).user.unwrap());
            }
            next = page["@odata.nextLink"].as_str().map(str::to_owned);
        }
        assert_eq!((pages, seen.len()), (3, 250));
        let inactive = seen.iter().filter(|(_, s)| !s.active).count();
        assert_eq!(inactive, dir.users.iter().filter(|u| !u.active).count());
        assert_eq!(
            seen[0].1.email.as_deref(),
            Some(dir.users[0].email.as_str())
        );
    }

    #[tokio::test]
    async fn the_fake_answers_like_entra_to_a_bad_secret_and_like_graph_to_no_token() {
        let fake = start(Shared::new(Org::generate(3, 1, 1)), credentials()).unwrap();
        let (status, body) = token(&fake, "wrong").await;
        assert_eq!(status, 401);
        assert_eq!(body["error"], "invalid_client");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .starts_with("AADSTS7000215")
        );
        let res = reqwest::get(format!("{}/users", fake.graph_base()))
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    }

    #[tokio::test]
    async fn group_members_are_typed_directory_objects() {
        let dir = Org::generate(30, 2, 5);
        let fake = start(Shared::new(dir.clone()), credentials()).unwrap();
        let (_, body) = token(&fake, "s3cret").await;
        let access = body["access_token"].as_str().unwrap();
        let group = &dir.groups[0];
        let page: Value = reqwest::Client::new()
            .get(format!(
                "{}/groups/{}/members?$top=999",
                fake.graph_base(),
                group.id
            ))
            .bearer_auth(access)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let members = page["value"].as_array().unwrap();
        let users = members
            .iter()
            .filter(|m| m["@odata.type"] == "#microsoft.graph.user")
            .count();
        assert_eq!(users, group.members.len());
        assert_eq!(members.len(), users + 1, "plus one organizational contact");
        assert!(page.get("@odata.nextLink").is_none());
    }

    async fn get(url: &str, access: &str) -> (u16, Value) {
        let res = reqwest::Client::new()
            .get(url)
            .bearer_auth(access)
            .send()
            .await
            .unwrap();
        (
            res.status().as_u16(),
            res.json().await.unwrap_or(Value::Null),
        )
    }

    #[tokio::test]
    async fn a_delta_round_keeps_the_first_select_and_latest_starts_from_now() {
        let shared = Shared::new(Org::generate(5, 1, 2));
        let fake = start(shared.clone(), credentials()).unwrap();
        let (_, body) = token(&fake, "s3cret").await;
        let access = body["access_token"].as_str().unwrap();
        let (status, latest) = get(
            &format!(
                "{}/users/delta?$deltatoken=latest&$select=id,mail",
                fake.graph_base()
            ),
            access,
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(latest["value"], json!([]));
        let link = latest["@odata.deltaLink"].as_str().unwrap();
        assert!(link.starts_with(&format!("{}/users/delta?$deltatoken=", fake.graph_base())));
        let id = shared.directory().users[1].id.clone();
        shared
            .directory_mut()
            .update_user(&id, |u| u.department = "Legal".into());
        let (_, round) = get(link, access).await;
        let value = round["value"].as_array().unwrap();
        assert_eq!(value.len(), 1, "{round}");
        assert_eq!(value[0]["id"], json!(id));
        assert!(
            value[0].get("department").is_none(),
            "the first $select holds"
        );
        assert!(value[0].get("mail").is_some());
    }

    /// Every page from `url`: the items, and the deltaLink the last carried.
    async fn walk(url: &str, access: &str) -> (Vec<Value>, Option<String>) {
        let mut items = Vec::new();
        let mut next = Some(url.to_owned());
        let mut delta = None;
        while let Some(url) = next {
            let (status, page) = get(&url, access).await;
            assert_eq!(status, 200, "{page}");
            items.extend(page["value"].as_array().unwrap().iter().cloned());
            next = page["@odata.nextLink"].as_str().map(str::to_owned);
            delta = page["@odata.deltaLink"].as_str().map(str::to_owned);
        }
        (items, delta)
    }

    fn ids(items: &[Value]) -> Vec<String> {
        items
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_owned())
            .collect()
    }

    #[rstest::rstest]
    #[case(Order::AsCreated)]
    #[case(Order::Reversed)]
    #[case(Order::Shuffled(5))]
    #[tokio::test]
    async fn users_and_delta_rounds_list_in_the_directorys_order(#[case] order: Order) {
        let mut dir = Org::generate(250, 1, 4);
        dir.order = order;
        let expected: Vec<String> = dir.listed_users().map(|u| u.id.clone()).collect();
        let shared = Shared::new(dir);
        let fake = start(shared.clone(), credentials()).unwrap();
        let (_, body) = token(&fake, "s3cret").await;
        let access = body["access_token"].as_str().unwrap();
        let (users, _) = walk(&format!("{}/users?$top=100", fake.graph_base()), access).await;
        assert_eq!(ids(&users), expected);
        let (round, link) = walk(&format!("{}/users/delta", fake.graph_base()), access).await;
        assert_eq!(ids(&round), expected);

        // An incremental round lists what changed in the same order.
        let changed: Vec<String> = expected.iter().step_by(3).cloned().collect();
        for id in &changed {
            shared
                .directory_mut()
                .update_user(id, |u| u.title = "Lead".into());
        }
        let (round, _) = walk(&link.unwrap(), access).await;
        assert_eq!(ids(&round), changed);
    }

    #[tokio::test]
    async fn a_delta_round_keeps_its_order_while_it_pages_and_the_next_round_takes_the_new_one() {
        let mut dir = Org::generate(250, 1, 4);
        dir.order = Order::Reversed;
        let reversed: Vec<String> = dir.listed_users().map(|u| u.id.clone()).collect();
        let shared = Shared::new(dir);
        let fake = start(shared.clone(), credentials()).unwrap();
        let (_, body) = token(&fake, "s3cret").await;
        let access = body["access_token"].as_str().unwrap();
        let (_, first) = get(&format!("{}/users/delta", fake.graph_base()), access).await;
        shared.directory_mut().order = Order::AsCreated;
        let mut new = shared.directory().users[0].clone();
        new.id = "added-mid-round".into();
        shared.directory_mut().add_user(new);
        let (rest, link) = walk(first["@odata.nextLink"].as_str().unwrap(), access).await;
        let mut seen = ids(first["value"].as_array().unwrap());
        seen.extend(ids(&rest));
        assert_eq!(seen, reversed, "each user once, in the round's order");

        let (round, _) = walk(&link.unwrap(), access).await;
        assert_eq!(
            ids(&round),
            ["added-mid-round"],
            "the next round reports the newcomer"
        );
        let (full, _) = walk(&format!("{}/users/delta", fake.graph_base()), access).await;
        let mut created: Vec<String> = reversed.into_iter().rev().collect();
        created.push("added-mid-round".into());
        assert_eq!(ids(&full), created);
    }

    #[tokio::test]
    async fn swapped_and_rotated_users_are_all_reported_by_the_next_delta_round() {
        let dir = Org::generate(10, 1, 4);
        let shared = Shared::new(dir.clone());
        let fake = start(shared.clone(), credentials()).unwrap();
        let (_, body) = token(&fake, "s3cret").await;
        let access = body["access_token"].as_str().unwrap();
        let (_, link) = walk(&format!("{}/users/delta", fake.graph_base()), access).await;
        let id = |n: usize| dir.users[n].id.clone();
        assert!(shared.directory_mut().swap_emails(&id(1), &id(2)));
        assert!(shared.directory_mut().rotate_emails(&[id(5), id(6), id(7)]));
        let (round, _) = walk(&link.unwrap(), access).await;
        assert_eq!(ids(&round), [1, 2, 5, 6, 7].map(id));
        let mail = |n: usize| round[n]["mail"].as_str().unwrap();
        assert_eq!(mail(0), dir.users[2].email);
        assert_eq!(mail(1), dir.users[1].email);
        assert_eq!(mail(2), dir.users[6].email);
        assert_eq!(mail(4), dir.users[5].email);
    }

    #[tokio::test]
    async fn partial_delta_items_hold_the_id_and_what_changed_and_clear_with_null() {
        let mut dir = Org::generate(6, 1, 4);
        dir.partial_delta = true;
        let shared = Shared::new(dir.clone());
        let fake = start(shared.clone(), credentials()).unwrap();
        let (_, body) = token(&fake, "s3cret").await;
        let access = body["access_token"].as_str().unwrap();
        let select = "id,mail,userPrincipalName,givenName,jobTitle,department";
        let (initial, link) = walk(
            &format!("{}/users/delta?$select={select}", fake.graph_base()),
            access,
        )
        .await;
        assert!(
            initial.iter().all(|u| u.as_object().unwrap().len() == 6),
            "an initial round sends whole users"
        );
        let id = |n: usize| dir.users[n].id.clone();
        {
            let mut d = shared.directory_mut();
            d.update_user(&id(0), |u| {
                u.title = "Chief".into();
                u.department = String::new();
            });
            d.set_email(&id(1), "renamed@example.com");
            // Changed, but not in the selection: an item with its id only.
            d.update_user(&id(2), |u| u.employee_number = "E9".into());
            // Changed and changed back: nothing differs from the round's start.
            d.update_user(&id(3), |u| u.given_name = "Zed".into());
            d.update_user(&id(3), |u| u.given_name = dir.users[3].given_name.clone());
            let mut new = dir.users[4].clone();
            new.id = "new-user".into();
            d.add_user(new);
        }
        let (round, _) = walk(&link.unwrap(), access).await;
        assert_eq!(
            round,
            vec![
                json!({"id": id(0), "jobTitle": "Chief", "department": null}),
                json!({"id": id(1), "mail": "renamed@example.com", "userPrincipalName": "renamed@example.com"}),
                json!({"id": id(2)}),
                json!({"id": id(3)}),
                project(&shared.directory().users[6].graph(), Some(select)),
            ]
        );
        assert_eq!(
            round[4].as_object().unwrap().len(),
            6,
            "a new user is whole"
        );
    }

    #[test]
    fn an_empty_field_is_sent_as_null() {
        let mut user = Org::generate(1, 1, 4).users.remove(0);
        user.department = String::new();
        user.family_name = String::new();
        let graph = user.graph();
        assert_eq!(graph["department"], Value::Null);
        assert_eq!(graph["surname"], Value::Null);
        assert_eq!(graph["displayName"], json!(user.given_name));
    }

    #[tokio::test]
    async fn an_expired_delta_token_is_gone_with_a_fresh_location() {
        let shared = Shared::new(Org::generate(3, 1, 2));
        let fake = start(shared.clone(), credentials()).unwrap();
        let (_, body) = token(&fake, "s3cret").await;
        let access = body["access_token"].as_str().unwrap();
        let (_, first) = get(
            &format!("{}/users/delta?$select=id", fake.graph_base()),
            access,
        )
        .await;
        let link = first["@odata.deltaLink"].as_str().unwrap().to_owned();
        expire_delta_tokens(&shared);
        let res = reqwest::Client::new()
            .get(&link)
            .bearer_auth(access)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 410);
        let location = res.headers()["location"].to_str().unwrap().to_owned();
        assert_eq!(
            location,
            format!("{}/users/delta?$select=id", fake.graph_base())
        );
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "syncStateNotFound");
        let (status, _) = get(&location, access).await;
        assert_eq!(status, 200, "a new round starts from the Location");
    }

    #[tokio::test]
    async fn an_app_without_group_permission_is_denied_groups_but_reads_users() {
        let creds = Credentials {
            permissions: vec!["User.Read.All".into()],
            ..credentials()
        };
        let fake = start(Shared::new(Org::generate(3, 1, 2)), creds).unwrap();
        let (_, body) = token(&fake, "s3cret").await;
        let access = body["access_token"].as_str().unwrap();
        let (status, body) = get(&format!("{}/groups", fake.graph_base()), access).await;
        assert_eq!(status, 403);
        assert_eq!(body["error"]["code"], "Authorization_RequestDenied");
        let (status, _) = get(&format!("{}/users", fake.graph_base()), access).await;
        assert_eq!(status, 200);
    }
}
