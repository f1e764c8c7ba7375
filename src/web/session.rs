//! The operator's session in a cookie: `Operator` is the extractor every
//! page takes. Without a live operator session a page read (GET) is sent
//! to the sign-in form and anything else is refused (403); a form's CSRF
//! token must be the session's (`Operator::check`). The sign-in form,
//! which has no session yet, carries a token bound to a cookie of its own
//! (`LOGIN_COOKIE`, double submit).

use actix_web::dev::Payload;
use actix_web::http::Method;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;

use super::{WebError, WebState};
use crate::admin::operators::{self, SessionKind};

/// The session cookie (path /admin, HttpOnly, SameSite=Strict).
pub const SESSION_COOKIE: &str = "dirsync_admin";
/// The sign-in form's own CSRF cookie (path /admin/login).
pub const LOGIN_COOKIE: &str = "dirsync_login";

/// A signed-in operator.
#[derive(Debug, Clone)]
pub struct Operator {
    pub email: String,
    /// The session's CSRF token, which every form carries.
    pub csrf: String,
    /// The cookie's value (sign-out ends its session).
    pub(super) cookie: String,
}

impl Operator {
    /// Refuse a form whose CSRF token is not the session's.
    pub fn check(&self, sent: &str) -> Result<(), WebError> {
        check_csrf(&self.csrf, sent)
    }
}

/// Refuse a form whose CSRF token is not its session's: every session (an
/// operator's, a setup portal's) carries one, and every form sends it back.
pub fn check_csrf(session_token: &str, sent: &str) -> Result<(), WebError> {
    if sent.is_empty() || !crate::crypto::hashes_equal(sent, session_token) {
        return Err(WebError::Forbidden(
            "this form's security token is missing or is not this session's; \
             reload the page and send it again"
                .into(),
        ));
    }
    Ok(())
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(actix_web::http::header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty())
}

/// A `Set-Cookie` value: HttpOnly and SameSite=Strict always, Secure when
/// the request came over https or the server says so.
pub fn set_cookie(
    req: &HttpRequest,
    state: &WebState,
    name: &str,
    value: &str,
    path: &str,
    max_age_secs: i64,
) -> String {
    let secure = state.secure_cookies || req.connection_info().scheme() == "https";
    format!(
        "{name}={value}; Path={path}; Max-Age={max_age_secs}; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

fn refuse(req: &HttpRequest) -> WebError {
    if req.method() == Method::GET || req.method() == Method::HEAD {
        let next = match req.query_string() {
            "" => req.path().to_owned(),
            q => format!("{}?{q}", req.path()),
        };
        WebError::SignIn { next }
    } else {
        WebError::Forbidden("sign in first: this needs an operator's session".into())
    }
}

impl FromRequest for Operator {
    type Error = WebError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<WebState>>()
                .ok_or_else(|| WebError::Internal("the dashboard is not configured".into()))?;
            let Some(value) = cookie(&req, SESSION_COOKIE) else {
                return Err(refuse(&req));
            };
            match operators::session(&state.store, &value).await? {
                Some(session) if session.kind == SessionKind::Operator => {
                    let email = session
                        .operator
                        .map(|o| o.email)
                        .ok_or_else(|| refuse(&req))?;
                    Ok(Operator {
                        email,
                        csrf: session.csrf_token,
                        cookie: value,
                    })
                }
                _ => Err(refuse(&req)),
            }
        })
    }
}
