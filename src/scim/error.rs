//! The one SCIM error type: every 4xx/5xx under `/scim/v2` is an RFC 7644 §3.12 body.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use super::schema;
use crate::domain::text;

/// Longest `detail`, in characters: a sentence and a quoted prefix of what
/// the client sent, never the whole of a megabyte of it.
pub const MAX_DETAIL_CHARS: usize = 512;

/// RFC 7644 §3.12 Table 9 `scimType` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimType {
    InvalidFilter,
    TooMany,
    Uniqueness,
    Mutability,
    InvalidSyntax,
    InvalidPath,
    NoTarget,
    InvalidValue,
    InvalidVers,
    Sensitive,
    /// RFC 9865 §2.2.
    InvalidCursor,
}

impl ScimType {
    pub fn as_str(self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "invalidFilter",
            ScimType::TooMany => "tooMany",
            ScimType::Uniqueness => "uniqueness",
            ScimType::Mutability => "mutability",
            ScimType::InvalidSyntax => "invalidSyntax",
            ScimType::InvalidPath => "invalidPath",
            ScimType::NoTarget => "noTarget",
            ScimType::InvalidValue => "invalidValue",
            ScimType::InvalidVers => "invalidVers",
            ScimType::Sensitive => "sensitive",
            ScimType::InvalidCursor => "invalidCursor",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {}: {detail}", scim_type.map(ScimType::as_str).unwrap_or("-"))]
pub struct ScimError {
    pub status: StatusCode,
    pub scim_type: Option<ScimType>,
    pub detail: String,
}

impl ScimError {
    /// `detail` is cut to [`MAX_DETAIL_CHARS`]: the places that quote client
    /// input quote a prefix (`domain::text::quoted`), and this bound holds
    /// for any that does not.
    pub fn new(status: StatusCode, scim_type: Option<ScimType>, detail: impl Into<String>) -> Self {
        Self {
            status,
            scim_type,
            detail: text::bounded(detail.into(), MAX_DETAIL_CHARS),
        }
    }

    pub fn bad_request(scim_type: ScimType, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some(scim_type), detail)
    }

    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidSyntax, detail)
    }

    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidValue, detail)
    }

    /// `invalidValue` naming an attribute whose value is `len` bytes, past
    /// its cap of `max` (SCIM has no `tooLong` scimType, RFC 7644 §3.12).
    pub fn too_long(path: &str, len: usize, max: usize) -> Self {
        Self::invalid_value(format!(
            "{path} is {len} bytes long; at most {max} are accepted"
        ))
    }

    /// `invalidValue` naming a multi-valued attribute with `count` values,
    /// past its cap of `max`.
    pub fn too_many_values(path: &str, count: usize, max: usize) -> Self {
        Self::invalid_value(format!(
            "{path} has {count} values; at most {max} are accepted"
        ))
    }

    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidFilter, detail)
    }

    pub fn invalid_path(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidPath, detail)
    }

    pub fn no_target(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::NoTarget, detail)
    }

    pub fn mutability(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::Mutability, detail)
    }

    pub fn uniqueness(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, Some(ScimType::Uniqueness), detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, None, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, None, detail)
    }

    pub fn method_not_allowed(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, None, detail)
    }

    pub fn precondition_failed(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::PRECONDITION_FAILED, None, detail)
    }

    pub fn payload_too_large(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, None, detail)
    }

    pub fn unsupported_media_type(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, None, detail)
    }

    pub fn service_unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, None, detail)
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, None, detail)
    }

    /// The RFC 7644 §3.12 body: `status` is a string.
    pub fn body(&self) -> serde_json::Value {
        let mut body = json!({
            "schemas": [schema::ERROR],
            "status": self.status.as_u16().to_string(),
            "detail": self.detail,
        });
        if let (Some(t), Some(map)) = (self.scim_type, body.as_object_mut()) {
            map.insert("scimType".into(), t.as_str().into());
        }
        body
    }
}

impl ResponseError for ScimError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        response.insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static(super::CONTENT_TYPE),
        ));
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6750 §3: a 401 names the scheme the client must use.
            response.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"dirsync\""),
            ));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            // RFC 9110 §10.2.3: when to come back.
            response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
        }
        let mut response = response.body(self.body().to_string());
        // For the request log (`request_log::record`): the error as a value.
        response.extensions_mut().insert(self.clone());
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;
    use rstest::rstest;

    #[rstest]
    #[case(ScimError::invalid_syntax("x"), 400, Some("invalidSyntax"))]
    #[case(ScimError::invalid_value("x"), 400, Some("invalidValue"))]
    #[case(ScimError::invalid_filter("x"), 400, Some("invalidFilter"))]
    #[case(ScimError::invalid_path("x"), 400, Some("invalidPath"))]
    #[case(ScimError::no_target("x"), 400, Some("noTarget"))]
    #[case(ScimError::mutability("x"), 400, Some("mutability"))]
    #[case(
        ScimError::bad_request(ScimType::InvalidCursor, "x"),
        400,
        Some("invalidCursor")
    )]
    #[case(ScimError::unauthorized("x"), 401, None)]
    #[case(ScimError::not_found("x"), 404, None)]
    #[case(ScimError::method_not_allowed("x"), 405, None)]
    #[case(ScimError::uniqueness("x"), 409, Some("uniqueness"))]
    #[case(ScimError::precondition_failed("x"), 412, None)]
    #[case(ScimError::payload_too_large("x"), 413, None)]
    #[case(ScimError::unsupported_media_type("x"), 415, None)]
    #[case(ScimError::internal("x"), 500, None)]
    fn every_error_is_an_rfc_7644_body(
        #[case] err: ScimError,
        #[case] status: u16,
        #[case] scim_type: Option<&str>,
    ) {
        let response = err.error_response();
        assert_eq!(response.status().as_u16(), status);
        assert_eq!(
            response.headers().get(header::CONTENT_TYPE).unwrap(),
            super::super::CONTENT_TYPE
        );
        assert_eq!(
            response.headers().contains_key(header::WWW_AUTHENTICATE),
            status == 401
        );
        let bytes = response.into_body().try_into_bytes().unwrap();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["schemas"], json!([schema::ERROR]));
        // RFC 7644 §3.12: "status" is a string.
        assert_eq!(body["status"], json!(status.to_string()));
        assert_eq!(body["detail"], "x");
        assert_eq!(body.get("scimType").and_then(|v| v.as_str()), scim_type);
    }

    #[test]
    fn a_detail_is_cut_to_its_bound() {
        let err = ScimError::invalid_value("x".repeat(1_000_000));
        assert_eq!(err.detail.chars().count(), MAX_DETAIL_CHARS + 1);
        assert!(err.detail.ends_with('…'));
    }
}
