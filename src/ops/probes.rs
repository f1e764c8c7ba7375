//! `/healthz`: the process answers. `/readyz`: the database answers and
//! carries every migration this build knows, so a load balancer sends no
//! traffic to a replica that would fail every request.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde_json::json;

use super::{State, problem};
use crate::store::NotReady;

/// Longer than a probe usually waits, shorter than the pool's 30 s acquire
/// timeout: a database that hangs is reported, not waited on.
const READY_WITHIN: Duration = Duration::from_secs(5);

pub(super) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

pub(super) async fn readyz(state: web::Data<State>) -> HttpResponse {
    let checked = actix_web::rt::time::timeout(READY_WITHIN, state.store.ready()).await;
    // The body names what is not ready, never the database's own error text:
    // this endpoint needs no credentials. The server's log has the text.
    let (database, migrations, pending) = match checked {
        Ok(Ok(())) => return HttpResponse::Ok().json(json!({"status": "ok"})),
        Err(_) => (
            format!("did not answer within {} s", READY_WITHIN.as_secs()),
            "unknown".to_owned(),
            Vec::new(),
        ),
        Ok(Err(NotReady::Database(err))) => {
            tracing::warn!(error = %err, "not ready: the database does not answer");
            (
                "does not answer".to_owned(),
                "unknown".to_owned(),
                Vec::new(),
            )
        }
        Ok(Err(NotReady::Migrations(err))) => {
            tracing::warn!(error = %err, "not ready: the migration status cannot be read");
            ("ok".to_owned(), "cannot be read".to_owned(), Vec::new())
        }
        Ok(Err(NotReady::Pending(names))) => (
            "ok".to_owned(),
            format!("{} not applied", names.len()),
            names,
        ),
    };
    let detail = match (database.as_str(), pending.is_empty()) {
        ("ok", false) => format!("migrations not applied: {}", pending.join(", ")),
        ("ok", true) => format!("migrations: {migrations}"),
        _ => format!("database: {database}"),
    };
    problem(
        StatusCode::SERVICE_UNAVAILABLE,
        &detail,
        json!({
            "checks": {"database": database, "migrations": migrations},
            "pending_migrations": pending,
        }),
    )
}
