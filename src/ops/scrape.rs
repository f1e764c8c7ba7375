//! `/metrics`: the Prometheus text format. With a metrics token configured
//! only `Authorization: Bearer <token>` is answered; without one it is open,
//! for a scraper on a private network.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::{State, problem};
use crate::crypto;

/// Prometheus's text exposition format, version 0.0.4.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub(super) async fn metrics(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    if let Some(expected) = &state.metrics_token_hash {
        // Hashes compared in constant time: neither the token's content nor
        // its length shows in the answer's timing.
        let allowed = bearer_token(&req)
            .is_some_and(|token| crypto::hashes_equal(&crypto::hash_token(token), expected));
        if !allowed {
            let mut response = problem(
                StatusCode::UNAUTHORIZED,
                "send Authorization: Bearer <the metrics token>",
                json!({}),
            );
            // RFC 6750 §3: a 401 names the scheme it wants.
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"metrics\""),
            );
            return response;
        }
    }
    HttpResponse::Ok()
        .content_type(CONTENT_TYPE)
        .body(state.metrics.render())
}

/// The token of an `Authorization: Bearer …` header (RFC 7235 §2.1: the
/// scheme is case-insensitive).
fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;
    use rstest::rstest;

    #[rstest]
    #[case(Some("Bearer abc"), Some("abc"))]
    #[case(Some("bearer  abc "), Some("abc"))]
    #[case(Some("Basic abc"), None)]
    #[case(Some("Bearer "), None)]
    #[case(Some("abc"), None)]
    #[case(None, None)]
    fn the_token_is_read_from_a_bearer_authorization_header_only(
        #[case] authorization: Option<&str>,
        #[case] token: Option<&str>,
    ) {
        let mut req = TestRequest::get();
        if let Some(value) = authorization {
            req = req.insert_header((header::AUTHORIZATION, value));
        }
        assert_eq!(bearer_token(&req.to_http_request()), token);
    }
}
