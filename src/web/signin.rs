//! `/admin/login` and `/admin/logout`.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::page::{render_as, see_other};
use super::session::{LOGIN_COOKIE, Operator, SESSION_COOKIE, cookie, set_cookie};
use super::{WebError, WebState};
use crate::admin::AdminError;
use crate::admin::operators::{self, SESSION_TTL_MS, WRONG_CREDENTIALS};
use crate::crypto::{self, Secret};

#[derive(Template)]
#[template(path = "admin/login.html")]
struct LoginPage {
    csrf: String,
    next: String,
    email: String,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Next {
    next: Option<String>,
}

/// Only a path of the dashboard: never another site (an open redirect).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/admin") && !n.starts_with("//") && !n.contains('\\') => {
            n.to_owned()
        }
        _ => "/admin".to_owned(),
    }
}

/// The form, with a CSRF token bound to a cookie of its own.
fn form(
    req: &HttpRequest,
    state: &WebState,
    status: StatusCode,
    next: String,
    email: String,
    error: Option<String>,
) -> Result<HttpResponse, WebError> {
    let token = cookie(req, LOGIN_COOKIE).unwrap_or_else(crypto::random_token);
    let mut res = render_as(
        status,
        &LoginPage {
            csrf: token.clone(),
            next,
            email,
            error,
        },
    )?;
    let value = set_cookie(req, state, LOGIN_COOKIE, &token, "/admin/login", 3600);
    if let Ok(v) = header::HeaderValue::from_str(&value) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(res)
}

pub async fn login_form(
    req: HttpRequest,
    state: web::Data<WebState>,
    query: web::Query<Next>,
) -> Result<HttpResponse, WebError> {
    let next = safe_next(query.next.as_deref());
    form(&req, &state, StatusCode::OK, next, String::new(), None)
}

#[derive(Deserialize)]
pub struct Credentials {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

pub async fn sign_in(
    req: HttpRequest,
    state: web::Data<WebState>,
    form_data: web::Form<Credentials>,
) -> Result<HttpResponse, WebError> {
    let sent = form_data.into_inner();
    let bound = cookie(&req, LOGIN_COOKIE).unwrap_or_default();
    if sent.csrf.is_empty() || !crypto::hashes_equal(&sent.csrf, &bound) {
        return Err(WebError::Forbidden(
            "this sign-in form's security token is missing or stale; reload the page".into(),
        ));
    }
    let next = safe_next(sent.next.as_deref());
    let now = chrono::Utc::now().timestamp_millis();
    let email_key = format!("email:{}", sent.email.trim().to_lowercase());
    let address = req
        .peer_addr()
        .map_or_else(|| "unknown".to_owned(), |a| a.ip().to_string());
    let keys = [email_key.clone(), format!("addr:{address}")];
    if let Some(secs) = state.throttle.wait(&keys, now) {
        tracing::warn!(%address, "sign-in throttled");
        return Err(WebError::Throttled(secs));
    }
    let password = Secret::new(sent.password);
    match operators::sign_in(&state.store, &sent.email, &password).await {
        Ok(opened) => {
            state.throttle.succeeded(&email_key);
            let session = set_cookie(
                &req,
                &state,
                SESSION_COOKIE,
                opened.cookie.expose(),
                "/admin",
                SESSION_TTL_MS / 1000,
            );
            let spent = set_cookie(&req, &state, LOGIN_COOKIE, "", "/admin/login", 0);
            let mut res = see_other(&next);
            for value in [session, spent] {
                if let Ok(v) = header::HeaderValue::from_str(&value) {
                    res.headers_mut().append(header::SET_COOKIE, v);
                }
            }
            Ok(res)
        }
        Err(AdminError::Invalid(why)) if why == WRONG_CREDENTIALS => {
            state.throttle.failed(&keys, now);
            tracing::info!(%address, "sign-in refused");
            form(
                &req,
                &state,
                StatusCode::UNAUTHORIZED,
                next,
                sent.email,
                Some("Wrong email or password.".into()),
            )
        }
        Err(other) => Err(other.into()),
    }
}

#[derive(Deserialize)]
pub struct SignOut {
    #[serde(default)]
    csrf: String,
}

pub async fn sign_out(
    req: HttpRequest,
    state: web::Data<WebState>,
    operator: Operator,
    form_data: web::Form<SignOut>,
) -> Result<HttpResponse, WebError> {
    operator.check(&form_data.csrf)?;
    operators::sign_out(&state.store, &operator.cookie).await?;
    let mut res = see_other("/admin/login");
    let gone = set_cookie(&req, &state, SESSION_COOKIE, "", "/admin", 0);
    if let Ok(v) = header::HeaderValue::from_str(&gone) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(res)
}
