//! A fake Microsoft Graph on port 0 (pull_apis.md §2A, §2B, §2F): the
//! client-credentials token endpoint with Entra's error bodies, and `users`,
//! `groups` and `groups/{id}/members` with `$top`, `$select` and absolute
//! `@odata.nextLink` paging built from the fake's own base URL.

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::{Fault, Running, Shared};

/// The one app registration the fake accepts.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: crate::crypto::Secret,
}

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
                .route("/v1.0/groups", web::get().to(list_groups))
                .route("/v1.0/groups/{id}/members", web::get().to(list_members));
        }
    })
}

fn aadsts(status: u16, error: &str, code: u32, message: &str) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(status)
        .unwrap_or(actix_web::http::StatusCode::BAD_REQUEST);
    HttpResponse::build(status).json(json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {message}"),
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
        return aadsts(400, "invalid_request", 90002, "Tenant not found.");
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
    if form.get("client_id") != Some(&c.client_id) {
        return aadsts(
            400,
            "unauthorized_client",
            700016,
            "Application was not found in the directory.",
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
                "expires_in": 3599,
                "ext_expires_in": 3599,
                "access_token": state.shared.issue_token(),
            }))
        }
        Some(_) => aadsts(
            401,
            "invalid_client",
            7000215,
            "Invalid client secret provided.",
        ),
    }
}

fn unauthorized() -> HttpResponse {
    HttpResponse::Unauthorized().json(json!({"error": {
        "code": "InvalidAuthenticationToken",
        "message": "Access token has expired or is not yet valid.",
    }}))
}

/// Authorize an API request and consult the injected faults: Some(answer)
/// when the request gets no data.
fn gate(state: &State, req: &HttpRequest) -> Option<HttpResponse> {
    let token = super::credential(req, "Bearer");
    if !token.is_some_and(|t| state.shared.token_valid(t)) {
        return Some(unauthorized());
    }
    match state.shared.faults.next()? {
        // Graph's throttling answer (concepts/throttling.md).
        Fault::Throttle => {
            let ms = state
                .shared
                .faults
                .retry_after_ms
                .load(std::sync::atomic::Ordering::SeqCst);
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
        Fault::Unavailable => Some(HttpResponse::ServiceUnavailable().json(json!({"error": {
            "code": "serviceNotAvailable",
            "message": "The service is temporarily unavailable.",
        }}))),
    }
}

/// One page of `items` and the absolute link to the next (Graph's
/// `$skiptoken` is opaque to clients; here it is the offset).
fn page(state: &State, req: &HttpRequest, path: &str, items: Vec<Value>) -> HttpResponse {
    let query: HashMap<String, String> =
        web::Query::<HashMap<String, String>>::from_query(req.query_string())
            .map(|q| q.into_inner())
            .unwrap_or_default();
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
    let select: Option<Vec<&str>> = query.get("$select").map(|s| s.split(',').collect());
    let end = (offset + top).min(items.len());
    let value: Vec<Value> = items
        .get(offset..end)
        .unwrap_or_default()
        .iter()
        .map(|item| match &select {
            Some(fields) => {
                let mut out = serde_json::Map::new();
                for (k, v) in item.as_object().into_iter().flatten() {
                    if k == "id" || k.starts_with("@odata") || fields.contains(&k.as_str()) {
                        out.insert(k.clone(), v.clone());
                    }
                }
                Value::Object(out)
            }
            None => item.clone(),
        })
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
        if let Some(select) = query.get("$select") {
            next.push_str(&format!("&$select={select}"));
        }
        body["@odata.nextLink"] = Value::String(next);
    }
    HttpResponse::Ok().json(body)
}

async fn list_users(state: web::Data<State>, req: HttpRequest) -> HttpResponse {
    if let Some(answer) = gate(&state, &req) {
        return answer;
    }
    let users = state
        .shared
        .directory()
        .live_users()
        .map(|u| u.graph())
        .collect();
    page(&state, &req, "users", users)
}

async fn list_groups(state: web::Data<State>, req: HttpRequest) -> HttpResponse {
    if let Some(answer) = gate(&state, &req) {
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
    if let Some(answer) = gate(&state, &req) {
        return answer;
    }
    let directory = state.shared.directory();
    let Some(group) = directory.live_groups().find(|g| g.id == *id) else {
        return HttpResponse::NotFound().json(json!({"error": {
            "code": "Request_ResourceNotFound",
            "message": format!("Resource '{id}' does not exist or one of its queried reference-property objects are not present."),
        }}));
    };
    let members = directory
        .members_of(group)
        .map(|u| {
            let mut v = u.graph();
            v["@odata.type"] = json!("#microsoft.graph.user");
            v
        })
        .collect();
    drop(directory);
    page(&state, &req, &format!("groups/{id}/members"), members)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pull::fake::Directory;
    use crate::pull::normalize::graph_user;

    fn credentials() -> Credentials {
        Credentials {
            tenant_id: "contoso".into(),
            client_id: "app-1".into(),
            client_secret: crate::crypto::Secret::new("s3cret".into()),
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
        let dir = Directory::generate(250, 4, 42);
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
                seen.push(graph_user(user).unwrap());
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
        let fake = start(Shared::new(Directory::generate(3, 1, 1)), credentials()).unwrap();
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
        let dir = Directory::generate(30, 2, 5);
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
        assert_eq!(members.len(), group.members.len());
        assert!(
            members
                .iter()
                .all(|m| m["@odata.type"] == "#microsoft.graph.user")
        );
        assert!(page.get("@odata.nextLink").is_none());
    }
}
