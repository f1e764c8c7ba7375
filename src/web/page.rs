//! What every page shares: the frame around it (who is signed in, the
//! sign-out form with its CSRF token) and the one way a template becomes a
//! response.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use askama::Template;

use super::WebError;
use super::session::Operator;

/// The frame of a signed-in page.
pub struct Chrome {
    pub email: String,
    pub csrf: String,
}

impl Chrome {
    pub fn of(operator: &Operator) -> Chrome {
        Chrome {
            email: operator.email.clone(),
            csrf: operator.csrf.clone(),
        }
    }
}

pub fn render(template: &impl Template) -> Result<HttpResponse, WebError> {
    render_as(StatusCode::OK, template)
}

pub fn render_as(status: StatusCode, template: &impl Template) -> Result<HttpResponse, WebError> {
    let body = template
        .render()
        .map_err(|e| WebError::Internal(format!("a page did not render: {e}")))?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body))
}

/// After a form that changed something: the page to see it on (POST,
/// redirect, GET).
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((actix_web::http::header::LOCATION, location))
        .finish()
}

/// A field of a form or query: trimmed, empty as absent.
pub fn present(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}
