//! The operational side of the server, outside the product's own
//! authentication: `/healthz` (the process answers), `/readyz` (the database
//! answers and carries every migration), `/metrics` (Prometheus, behind its
//! own bearer token when one is configured), and what every request gets on
//! its way through (`requests`: an id, a log line, its HTTP series;
//! `deadline`: a deadline on reading its body).
//!
//! Reads the database only through `Store::ready`; imports no `sea_orm`.

mod deadline;
mod probes;
mod requests;
mod scrape;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{Value, json};

pub use deadline::{BodyDeadline, body_deadline};
pub use requests::{RequestSpan, observe};

use crate::config::ServerSettings;
use crate::crypto;
use crate::store::Store;

/// What the operational endpoints need, shared by every worker.
pub struct State {
    store: Store,
    metrics: &'static PrometheusHandle,
    /// SHA-256 of the metrics token, when `/metrics` requires one.
    metrics_token_hash: Option<String>,
}

impl State {
    /// The endpoints' state; installs the process's metrics recorder, so
    /// every series recorded from now on reaches `/metrics`.
    pub fn new(store: Store, settings: &ServerSettings) -> web::Data<State> {
        web::Data::new(State {
            store,
            metrics: crate::metrics::install(),
            metrics_token_hash: settings
                .metrics_token
                .as_ref()
                .map(|token| crypto::hash_token(token.expose())),
        })
    }
}

/// Register `/healthz`, `/readyz` and `/metrics` (for `App::configure`).
pub fn configure(state: web::Data<State>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(state)
            .route("/healthz", web::get().to(probes::healthz))
            .route("/readyz", web::get().to(probes::readyz))
            .route("/metrics", web::get().to(scrape::metrics));
    }
}

/// An RFC 9457 problem body: these endpoints serve probes and scrapers, not
/// SCIM clients, so their errors are `application/problem+json`, not SCIM's.
fn problem(status: StatusCode, detail: &str, extensions: Value) -> HttpResponse {
    let mut body = json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or_default(),
        "status": status.as_u16(),
        "detail": detail,
    });
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extensions) {
        body.extend(extra);
    }
    HttpResponse::build(status)
        .content_type("application/problem+json")
        .body(body.to_string())
}
