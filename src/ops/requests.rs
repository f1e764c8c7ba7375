//! What every request gets on its way through: an id (the client's
//! `x-request-id` when well-formed, else tracing-actix-web's `RequestId`),
//! returned in `x-request-id`; a root span carrying it; one log line when it
//! is answered; and its HTTP series (`metrics::http_request`).
//!
//! Nothing a client sends as a credential reaches a log line: the span holds
//! the path without its query string (a query may carry a token, or a filter
//! naming a person), and of the headers only `Host`, `User-Agent`, the
//! forwarding ones that name the client, and `x-request-id`.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, HttpRequest};
use tracing::Span;
use tracing::field::Empty;
use tracing_actix_web::{DefaultRootSpanBuilder, RootSpanBuilder};

const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The route label of a request no route matched. The raw path would make
/// every probe of an unknown URL a series of its own.
const UNMATCHED: &str = "unmatched";

/// Routes that probes and scrapers call every few seconds: their log line is
/// at DEBUG, so INFO shows the traffic that matters.
const QUIET: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// The id a request is logged under and answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Id(String);

impl Id {
    /// An incoming id, if well-formed: 1 to 128 letters, digits, `-`, `_`,
    /// `.` or `:` (UUIDs, ULIDs, the hex ids of nginx and Envoy). Anything
    /// else is replaced, so a client cannot write arbitrary text into the
    /// logs under this field.
    pub fn parse(value: &HeaderValue) -> Option<Id> {
        let text = value.to_str().ok()?;
        let well_formed = (1..=128).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
        well_formed.then(|| Id(text.to_owned()))
    }

    /// The request's id: kept in its extensions once chosen, so the span,
    /// the log line and the response header agree.
    fn of(req: &ServiceRequest) -> Id {
        if let Some(id) = req.extensions().get::<Id>() {
            return id.clone();
        }
        let id = req
            .headers()
            .get(&HEADER)
            .and_then(Id::parse)
            .unwrap_or_else(|| {
                // TracingLogger generated one before building the span; a
                // UUID of our own only if this runs without it.
                let generated = req
                    .extensions()
                    .get::<tracing_actix_web::RequestId>()
                    .map_or_else(uuid::Uuid::new_v4, |id| **id);
                Id(generated.to_string())
            });
        req.extensions_mut().insert(id.clone());
        id
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The matched route pattern (`/scim/v2/Users/{id}`), or `unmatched`.
fn route(req: &HttpRequest) -> String {
    req.match_pattern().unwrap_or_else(|| UNMATCHED.to_owned())
}

/// TracingLogger's root span for dirsync: tracing-actix-web's fields, with
/// the request id chosen by `Id::of` and the path without its query string.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(req: &ServiceRequest) -> Span {
        let id = Id::of(req);
        let info = req.connection_info().clone();
        tracing::info_span!(
            "HTTP request",
            http.method = %req.method(),
            http.route = %route(req.request()),
            http.target = %req.path(),
            http.scheme = %info.scheme(),
            http.host = %info.host(),
            http.client_ip = %info.realip_remote_addr().unwrap_or_default(),
            http.user_agent = %req
                .headers()
                .get(actix_web::http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default(),
            http.status_code = Empty,
            otel.status_code = Empty,
            request_id = %id.as_str(),
            exception.message = Empty,
            exception.details = Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        // The status and, for an error, its message, as tracing-actix-web
        // records them.
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

/// Middleware inside TracingLogger (so within the request's span): answer
/// with `x-request-id`, count the request by route pattern, method and
/// status, and log one line for it.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, Error> {
    let started = Instant::now();
    let id = Id::of(&req);
    // Read before the call: the request cannot be cloned while it is routed,
    // and an error from further in leaves no request to read it from.
    let route = route(req.request());
    let method = req.method().clone();
    let answered = next.call(req).await;
    let status = match &answered {
        Ok(res) => res.status(),
        Err(err) => err.as_response_error().status_code(),
    };
    let elapsed = started.elapsed();
    crate::metrics::http_request(&route, method.as_str(), status.as_u16(), elapsed);
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    if QUIET.contains(&route.as_str()) {
        tracing::debug!(status = status.as_u16(), latency_ms, "request answered");
    } else {
        tracing::info!(status = status.as_u16(), latency_ms, "request answered");
    }
    // An error returned instead of a response (a middleware further in gave
    // up) is answered by actix after this: that one answer has no id header.
    let mut res = answered?;
    // Always visible ASCII (`Id::parse`, or a UUID), so always a valid value.
    if let Ok(value) = HeaderValue::from_str(id.as_str()) {
        res.headers_mut().insert(HEADER, value);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("0190a3c2-7d4e-7b21-9c1e-3f5a6b7c8d9e", true)]
    #[case("01J9ZKX3Q8W5N2R7T4V6Y0B1C3", true)]
    #[case("f3a9c1d2e4b5a6c7d8e9f0a1b2c3d4e5", true)]
    #[case("lb-1:req.42_a", true)]
    #[case("", false)]
    #[case("has space", false)]
    #[case("quote\"d", false)]
    #[case("semi;colon", false)]
    #[case("a".repeat(128), true)]
    #[case("a".repeat(129), false)]
    fn an_incoming_request_id_is_kept_only_when_well_formed(
        #[case] value: impl AsRef<str>,
        #[case] kept: bool,
    ) {
        let header = HeaderValue::from_str(value.as_ref()).unwrap();
        assert_eq!(Id::parse(&header).is_some(), kept);
    }
}
