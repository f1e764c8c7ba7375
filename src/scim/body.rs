//! The request-body extractor: media type check (415), size limit (413),
//! JSON parsing (400 invalidSyntax) and the text rule (400 invalidValue for a
//! control character anywhere in the body, `domain::text`), all as SCIM
//! errors.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use futures_util::StreamExt;

use super::ScimState;
use super::error::ScimError;
use super::request_log::{KeepBody, ReadBody};
use crate::domain::text;

/// A parsed JSON request body.
#[derive(Debug)]
pub struct ScimBody(pub serde_json::Value);

/// Which limit applies: ordinary requests or `/Bulk`.
pub(super) fn body_limit(req: &HttpRequest, state: &ScimState) -> usize {
    if req.path().ends_with("/Bulk") {
        state.settings.bulk_max_payload_bytes
    } else {
        state.settings.max_body_bytes
    }
}

/// RFC 7644 §3.1: `application/scim+json`; `application/json` is accepted too
/// (Okta POSTs it, O10), with any parameters such as `charset`.
fn check_media_type(req: &HttpRequest) -> Result<(), ScimError> {
    let Some(value) = req.headers().get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let value = value.to_str().unwrap_or_default();
    let essence = value.split(';').next().unwrap_or_default().trim();
    if essence.eq_ignore_ascii_case("application/scim+json")
        || essence.eq_ignore_ascii_case("application/json")
    {
        Ok(())
    } else {
        Err(ScimError::unsupported_media_type(format!(
            "unsupported Content-Type {}; send application/scim+json or application/json",
            text::quoted(value)
        )))
    }
}

impl FromRequest for ScimBody {
    type Error = ScimError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let state = req.app_data::<web::Data<ScimState>>().cloned();
        let media = check_media_type(req);
        let limit = state
            .as_ref()
            .map(|s| body_limit(req, s))
            .unwrap_or(1_048_576);
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        let req = req.clone();
        Box::pin(async move {
            media?;
            if declared.is_some_and(|n| n > limit) {
                return Err(ScimError::payload_too_large(format!(
                    "request body exceeds {limit} bytes"
                )));
            }
            let mut bytes = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk
                    .map_err(|e| ScimError::invalid_syntax(format!("could not read body: {e}")))?;
                if bytes.len() + chunk.len() > limit {
                    return Err(ScimError::payload_too_large(format!(
                        "request body exceeds {limit} bytes"
                    )));
                }
                bytes.extend_from_slice(&chunk);
            }
            if req.extensions().get::<KeepBody>().is_some() {
                let read = ReadBody(bytes.clone().freeze());
                req.extensions_mut().insert(read);
            }
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Err(ScimError::invalid_syntax(
                    "request body is empty; a JSON object is required",
                ));
            }
            let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
                ScimError::invalid_syntax(format!("request body is not valid JSON: {e}"))
            })?;
            check_text(&value)?;
            Ok(ScimBody(value))
        })
    }
}

/// Every string of a body, at any depth and names included, kept to the
/// text rule once here, so no control character reaches a column or a
/// query whatever attribute or extension carries it.
pub(super) fn check_text(value: &serde_json::Value) -> Result<(), ScimError> {
    match text::find_control_in_json(value) {
        Some((path, found)) => Err(ScimError::invalid_value(format!(
            "{} {found}; of the control characters only TAB, LF and CR may stand in a value",
            if path.is_empty() { "the body" } else { &path }
        ))),
        None => Ok(()),
    }
}
