//! What the dashboard answers when a request cannot be served: a page that
//! says why (403, 404, 400, 429, 500), or for a page read without a
//! session, the way to the sign-in form.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use askama::Template;

use crate::admin::AdminError;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// A page read without a live session: sign in, then come back to
    /// `next`.
    #[error("sign in first")]
    SignIn { next: String },
    /// No session (a form posted), or the form's CSRF token is not the
    /// session's.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    /// Too many failed sign-ins; try again after this many seconds.
    #[error("too many failed sign-ins; try again in {} minutes", .0.div_ceil(60))]
    Throttled(u64),
    #[error("{0}")]
    Internal(String),
}

impl From<AdminError> for WebError {
    fn from(e: AdminError) -> WebError {
        match e {
            AdminError::NotFound(what) => WebError::NotFound(what),
            AdminError::Invalid(why) | AdminError::WrongKind(why) | AdminError::Busy(why) => {
                WebError::BadRequest(why)
            }
            AdminError::Exists(what) => WebError::BadRequest(format!("{what} already exists")),
            // The provider's own words: the operator can act on them.
            AdminError::Provider(why) => WebError::BadRequest(why),
            AdminError::Store(err) => {
                tracing::error!(error = %err, "a dashboard request failed");
                WebError::Internal("the server could not do that; its log says why".into())
            }
        }
    }
}

impl From<crate::store::StoreError> for WebError {
    fn from(e: crate::store::StoreError) -> WebError {
        match e {
            crate::store::StoreError::NotFound => WebError::NotFound("this".into()),
            other => WebError::from(AdminError::Store(other)),
        }
    }
}

#[derive(Template)]
#[template(path = "admin/error.html")]
struct ErrorPage<'a> {
    status: u16,
    title: &'a str,
    message: String,
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        match self {
            WebError::SignIn { .. } => StatusCode::SEE_OTHER,
            WebError::Forbidden(_) => StatusCode::FORBIDDEN,
            WebError::NotFound(_) => StatusCode::NOT_FOUND,
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if let WebError::SignIn { next } = self {
            let target = format!(
                "/admin/login?next={}",
                percent_encoding::utf8_percent_encode(next, percent_encoding::NON_ALPHANUMERIC)
            );
            return HttpResponse::SeeOther()
                .insert_header((header::LOCATION, target))
                .finish();
        }
        let title = match self {
            WebError::Forbidden(_) => "Refused",
            WebError::NotFound(_) => "Not found",
            WebError::BadRequest(_) => "Cannot do that",
            WebError::Throttled(_) => "Too many attempts",
            _ => "Something went wrong",
        };
        let page = ErrorPage {
            status: status.as_u16(),
            title,
            message: self.to_string(),
        };
        let mut res = HttpResponse::build(status);
        if let WebError::Throttled(secs) = self {
            res.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        match page.render() {
            Ok(body) => res.content_type("text/html; charset=utf-8").body(body),
            Err(_) => res
                .content_type("text/plain; charset=utf-8")
                .body(self.to_string()),
        }
    }
}

pub fn form_error(err: actix_web::error::UrlencodedError, _: &HttpRequest) -> actix_web::Error {
    WebError::BadRequest(format!("the form did not arrive whole: {err}")).into()
}

pub fn query_error(err: actix_web::error::QueryPayloadError, _: &HttpRequest) -> actix_web::Error {
    WebError::BadRequest(format!("the address's parameters do not read: {err}")).into()
}

pub fn path_error(err: actix_web::error::PathError, _: &HttpRequest) -> actix_web::Error {
    WebError::NotFound(format!("this page ({err})")).into()
}

/// Any path under /admin that names no page.
pub async fn not_found() -> Result<actix_web::HttpResponse, WebError> {
    Err(WebError::NotFound("this page".into()))
}
