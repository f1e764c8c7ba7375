//! `/api/v1/runs`: one run of a pull connection (its status, counts and
//! first errors), and the approval of a run the mass-deactivation guard
//! stopped, which runs the connection again in the background.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::auth::{Principal, Scope};
use super::problem::Problem;
use super::{ApiState, Page, Paging, TenantParam};
use crate::admin;
use crate::domain::time::rfc3339;
use crate::reconcile::apply::UserView;
use crate::store::pages;

pub fn scope() -> actix_web::Scope {
    web::scope("/runs")
        .service(super::resource("/{run}", "GET").route(web::get().to(get_run)))
        .service(
            super::resource("/{run}/deactivations", "GET").route(web::get().to(list_held_back)),
        )
        .service(super::resource("/{run}/approve", "POST").route(web::post().to(approve_run)))
        .default_service(web::to(super::not_found))
}

/// One run of a connection.
#[derive(Debug, Serialize, ToSchema)]
pub struct Run {
    pub id: String,
    pub directory_id: String,
    /// `manual`, `schedule` or `approval`.
    pub trigger: String,
    /// `full`, `incremental`, `selective`, `import` or `dry_run`.
    pub mode: String,
    /// `running`, `succeeded`, `partial` (a listing was cut short: no one
    /// deactivated), `failed`, or `needs_approval` (the mass-deactivation
    /// guard stopped it: approve it to carry it out).
    pub status: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// Users seen, created, updated, deactivated…; groups; the
    /// deactivations weighed against the guard and the population it
    /// measured; `values_dropped`: provider values longer than dirsync
    /// keeps, dropped from the users the run took in (they were synced
    /// without them; not an error, such a run still succeeds); what was
    /// asked; on a dry run, the first planned changes.
    #[schema(value_type = Object)]
    pub counts: Value,
    /// The first errors: the provider's, then users skipped or in
    /// conflict, each with its reason.
    #[schema(value_type = Vec<Object>)]
    pub errors: Value,
    /// Deactivations the run weighed: as many as an approval allows.
    pub deactivations: i64,
    /// The run that carried this one out, once approved.
    pub approved_by_run_id: Option<String>,
}

impl From<&crate::store::pull::Run> for Run {
    fn from(run: &crate::store::pull::Run) -> Run {
        Run {
            id: run.id.clone(),
            directory_id: run.directory_id.clone(),
            trigger: run.trigger.clone(),
            mode: run.mode.clone(),
            status: run.status.clone(),
            started_at: rfc3339(run.started_at),
            finished_at: run.finished_at.map(rfc3339),
            counts: run.counts.clone(),
            errors: run.errors.clone(),
            deactivations: run.deactivations,
            approved_by_run_id: run.approved_by_run_id.clone(),
        }
    }
}

/// A run started in the background.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunStarted {
    pub run_id: String,
}

impl RunStarted {
    /// 202 with the run's id, and where to follow it.
    pub fn accepted(run_id: String) -> HttpResponse {
        HttpResponse::Accepted()
            .insert_header(("location", format!("/api/v1/runs/{run_id}")))
            .json(RunStarted { run_id })
    }
}

/// One run.
#[utoipa::path(
    get,
    path = "/api/v1/runs/{run}",
    tag = "runs",
    params(("run" = String, Path, description = "The run's id"), TenantParam),
    responses(
        (status = 200, body = Run),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
pub async fn get_run(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Query<TenantParam>,
    id: web::Path<String>,
) -> Result<web::Json<Run>, Problem> {
    caller.require(Scope::Read)?;
    let tenant_id = tenant.resolve(&state.store, &caller).await?;
    let run = admin::api::run_in(&state.store, &tenant_id, &id).await?;
    Ok(web::Json(Run::from(&run)))
}

/// A user a run the guard stopped would have deactivated.
#[derive(Debug, Serialize, ToSchema)]
pub struct Deactivation {
    /// The user as it is now.
    pub user: UserView,
    /// `missing`: the directory's complete listing left them out, or it
    /// said they were removed (policy `on_missing`); `directory`: the
    /// directory lists them as no longer active.
    pub reason: String,
}

/// Whom a run the guard stopped would have deactivated, paged in user id
/// order: what an approval carries out. Empty for a run the guard did not
/// stop.
#[utoipa::path(
    get,
    path = "/api/v1/runs/{run}/deactivations",
    tag = "runs",
    params(("run" = String, Path, description = "The stopped run's id"), TenantParam, Paging),
    responses(
        (status = 200, body = Page<Deactivation>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
pub async fn list_held_back(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Query<TenantParam>,
    paging: web::Query<Paging>,
    id: web::Path<String>,
) -> Result<web::Json<Page<Deactivation>>, Problem> {
    caller.require(Scope::Read)?;
    let tenant_id = tenant.resolve(&state.store, &caller).await?;
    let (from, limit) = paging.window("deactivations")?;
    let run = admin::api::run_in(&state.store, &tenant_id, &id).await?;
    let page = pages::held_back(state.store.connection(), &run.id, &from, limit).await?;
    Ok(web::Json(Page::of(
        "deactivations",
        page,
        |(u, _)| &u.id,
        |(u, reason)| Deactivation {
            user: UserView::from(u),
            reason: reason.clone(),
        },
    )))
}

/// Approve a run the guard stopped: the connection runs again, the same
/// way, allowed up to the deactivations the stopped run weighed (more trips
/// the guard again). 202 with the new run's id; 400 for a run that does
/// not need approval; 409 while another run is in progress.
#[utoipa::path(
    post,
    path = "/api/v1/runs/{run}/approve",
    tag = "runs",
    params(("run" = String, Path, description = "The stopped run's id"), TenantParam),
    responses(
        (status = 202, body = RunStarted),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["write"]))
)]
pub async fn approve_run(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Query<TenantParam>,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    caller.require(Scope::Write)?;
    let tenant_id = tenant.resolve(&state.store, &caller).await?;
    let stopped = admin::api::run_in(&state.store, &tenant_id, &id).await?;
    let run_id = admin::api::start_approval(&state.store, state.key.as_ref(), &stopped.id).await?;
    Ok(RunStarted::accepted(run_id))
}
