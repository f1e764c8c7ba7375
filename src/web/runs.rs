//! A pull directory's runs: "Sync now" (`admin::api::start_sync`), a run's
//! page with its progress polled by htmx until it ends (the run's record,
//! as `admin::connections::runs` reads it), and for a run the
//! mass-deactivation guard stopped, whom it would deactivate
//! (`admin::connections::held_back`) and its approval
//! (`admin::api::start_approval`). Uses actix_web and askama.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::directories::Run;
use super::page::{Chrome, render, see_other};
use super::session::Operator;
use super::{WebError, WebState};
use crate::admin::{self, directory};
use crate::pull::run::Request;

/// Users a page of a stopped run's deactivations shows.
const HELD_BACK_PER_PAGE: u64 = 50;

#[derive(Deserialize)]
pub struct Csrf {
    #[serde(default)]
    csrf: String,
}

/// Start a run of the directory's connection now; its page follows it.
pub async fn sync_now(
    state: web::Data<WebState>,
    operator: Operator,
    id: web::Path<String>,
    form: web::Form<Csrf>,
) -> Result<HttpResponse, WebError> {
    operator.check(&form.csrf)?;
    let run_id =
        admin::api::start_sync(&state.store, state.key.as_ref(), &id, Request::manual()).await?;
    Ok(see_other(&format!("/admin/runs/{run_id}")))
}

/// Approve a run the guard stopped: the approving run's page follows it.
pub async fn approve(
    state: web::Data<WebState>,
    operator: Operator,
    id: web::Path<String>,
    form: web::Form<Csrf>,
) -> Result<HttpResponse, WebError> {
    operator.check(&form.csrf)?;
    let run_id = admin::api::start_approval(&state.store, state.key.as_ref(), &id).await?;
    Ok(see_other(&format!("/admin/runs/{run_id}")))
}

async fn record(state: &WebState, id: &str) -> Result<Run, WebError> {
    let run = state
        .store
        .run(id)
        .await
        .map_err(|_| WebError::NotFound(format!("run {}", crate::domain::text::quoted(id))))?;
    Ok(Run::of(&crate::pull::run::run_view(&run)))
}

/// The run's status and counts; while it runs, it asks for itself again.
#[derive(Template)]
#[template(path = "admin/run_progress.html")]
struct Progress {
    run: Run,
}

/// The progress fragment. Once the run has ended, an htmx request gets the
/// whole page reloaded (`HX-Refresh`): what follows a run (whom the guard
/// held back, its errors) is on it.
pub async fn progress(
    state: web::Data<WebState>,
    _operator: Operator,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let run = record(&state, &id).await?;
    let ended = !run.is_running();
    let mut res = render(&Progress { run })?;
    if ended && req.headers().contains_key("hx-request") {
        res.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static("hx-refresh"),
            actix_web::http::header::HeaderValue::from_static("true"),
        );
    }
    Ok(res)
}

pub struct HeldBack {
    pub id: String,
    pub email: String,
    pub name: String,
    pub status: String,
    pub reason: String,
}

#[derive(Template)]
#[template(path = "admin/run.html")]
struct RunPage {
    chrome: Option<Chrome>,
    run: Run,
    directory: String,
    tenant_id: String,
    tenant: String,
    held_back: Vec<HeldBack>,
    /// The next page of the held-back users.
    more: Option<String>,
}

#[derive(Deserialize)]
pub struct HeldBackPage {
    after: Option<String>,
}

pub async fn run(
    state: web::Data<WebState>,
    operator: Operator,
    id: web::Path<String>,
    page: web::Query<HeldBackPage>,
) -> Result<HttpResponse, WebError> {
    let run = record(&state, &id).await?;
    let named = directory::resolve(&state.store, &run.directory_id).await?;
    let (held_back, more) = if run.status == "needs_approval" {
        let page = admin::connections::held_back(
            &state.store,
            &run.id,
            super::page::present(&page.after),
            HELD_BACK_PER_PAGE,
        )
        .await?;
        let more = page
            .rows
            .last()
            .filter(|_| page.more_after)
            .map(|(u, _)| format!("/admin/runs/{}?after={}", run.id, u.id));
        let rows = page
            .rows
            .into_iter()
            .map(|(u, reason)| HeldBack {
                name: u.display_name.clone().unwrap_or_default(),
                id: u.id,
                email: u.email,
                status: u.status,
                reason,
            })
            .collect();
        (rows, more)
    } else {
        (Vec::new(), None)
    };
    render(&RunPage {
        chrome: Some(Chrome::of(&operator)),
        directory: named.directory.name.clone(),
        tenant_id: named.tenant.id.clone(),
        tenant: named.tenant.name.clone(),
        run,
        held_back,
        more,
    })
}
