//! Every error of the host application's API as one RFC 9457
//! `application/problem+json` body with a stable machine `code`; a
//! validation error names each bad field. Extractor errors (JSON, query,
//! path) are routed here too, so no client ever gets a plain-text 4xx.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::admin::AdminError;
use crate::store::StoreError;

/// Longest `detail` (and field message), in characters.
pub const MAX_DETAIL_CHARS: usize = 512;

/// One field a request got wrong.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldError {
    /// The field, as the request named it (`limit`, `role`, `body`).
    pub field: String,
    pub message: String,
}

/// An RFC 9457 problem.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem (`urn:dirsync:problem:<code>`).
    pub r#type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The stable machine code (`not_found`, `invalid_request`, …).
    pub code: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// `WWW-Authenticate` for 401/403 (RFC 6750 §3), not in the body.
    #[serde(skip)]
    #[schema(ignore)]
    pub challenge: Option<String>,
    /// `Allow` for 405, not in the body.
    #[serde(skip)]
    #[schema(ignore)]
    pub allow: Option<&'static str>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Problem {
        Problem {
            r#type: format!("urn:dirsync:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            // A sentence and a quoted prefix of the client's input
            // (`domain::text::quoted`); cut here for any place that quoted more.
            detail: crate::domain::text::bounded(detail.into(), MAX_DETAIL_CHARS),
            code: code.to_owned(),
            errors: Vec::new(),
            challenge: None,
            allow: None,
        }
    }

    pub fn not_found(what: impl std::fmt::Display) -> Problem {
        Problem::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn invalid(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "invalid_request", detail)
    }

    /// 400 naming the one bad field.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Problem {
        let message = crate::domain::text::bounded(message.into(), MAX_DETAIL_CHARS);
        let field =
            crate::domain::text::bounded(field.to_owned(), crate::domain::text::QUOTED_CHARS);
        let mut p = Problem::invalid(format!("{field}: {message}"));
        p.errors.push(FieldError { field, message });
        p
    }

    pub fn conflict(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::CONFLICT, "conflict", detail)
    }

    /// 401 with the RFC 6750 challenge.
    pub fn invalid_token(detail: impl Into<String>) -> Problem {
        let detail = detail.into();
        let mut p = Problem::new(StatusCode::UNAUTHORIZED, "invalid_token", detail.clone());
        p.challenge = Some(format!(
            "Bearer error=\"invalid_token\", error_description=\"{}\"",
            detail.replace('"', "'")
        ));
        p
    }

    /// 403: the token lacks the scope the operation needs.
    pub fn insufficient_scope(scope: &str) -> Problem {
        let mut p = Problem::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            format!("this operation needs the {scope:?} scope"),
        );
        p.challenge = Some(format!(
            "Bearer error=\"insufficient_scope\", scope=\"{scope}\""
        ));
        p
    }

    pub fn internal() -> Problem {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server failed; the request changed nothing",
        )
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.detail)
    }
}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        res.insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        ));
        if let Some(challenge) = &self.challenge
            && let Ok(value) = HeaderValue::from_str(challenge)
        {
            res.insert_header((header::WWW_AUTHENTICATE, value));
        }
        if let Some(allow) = self.allow {
            res.insert_header((header::ALLOW, allow));
        }
        res.body(serde_json::to_string(self).unwrap_or_default())
    }
}

impl From<StoreError> for Problem {
    fn from(err: StoreError) -> Problem {
        match err {
            StoreError::NotFound => Problem::new(StatusCode::NOT_FOUND, "not_found", "not found"),
            StoreError::Conflict(why) => Problem::conflict(why),
            StoreError::VersionMismatch => {
                Problem::conflict("a concurrent write changed it first; read it again and retry")
            }
            StoreError::Busy => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "the database gave way to a concurrent write; retry",
            ),
            other => {
                tracing::error!(error = %other, "store error under the API");
                Problem::internal()
            }
        }
    }
}

impl From<AdminError> for Problem {
    fn from(err: AdminError) -> Problem {
        match err {
            AdminError::NotFound(what) => Problem::not_found(what),
            AdminError::Exists(what) => Problem::conflict(format!("{what} already exists")),
            AdminError::Busy(why) => Problem::new(StatusCode::CONFLICT, "run_in_progress", why),
            AdminError::Invalid(why) => Problem::invalid(why),
            // The provider refused or failed: not the server's fault (no
            // 5xx), and not the request's either; its reason, as sent.
            AdminError::Provider(why) => Problem::new(
                actix_web::http::StatusCode::FAILED_DEPENDENCY,
                "provider_error",
                why,
            ),
            // The right resource, of the wrong kind (a SCIM directory asked
            // for a connection): the request conflicts with what it is.
            AdminError::WrongKind(why) => {
                Problem::new(actix_web::http::StatusCode::CONFLICT, "wrong_kind", why)
            }
            AdminError::Store(err) => err.into(),
        }
    }
}

/// actix's JSON, query and path extractor errors, as problems.
pub fn json_error(
    err: actix_web::error::JsonPayloadError,
    _: &actix_web::HttpRequest,
) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as J;
    let p = match &err {
        J::OverflowKnownLength { .. } | J::Overflow { .. } => Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            err.to_string(),
        ),
        J::ContentType => Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as application/json",
        ),
        _ => Problem::invalid_field("body", err.to_string()),
    };
    p.into()
}

pub fn query_error(
    err: actix_web::error::QueryPayloadError,
    _: &actix_web::HttpRequest,
) -> actix_web::Error {
    Problem::invalid_field("query", err.to_string()).into()
}

pub fn path_error(
    err: actix_web::error::PathError,
    _: &actix_web::HttpRequest,
) -> actix_web::Error {
    Problem::invalid_field("path", err.to_string()).into()
}
