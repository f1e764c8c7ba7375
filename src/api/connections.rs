//! `/api/v1/connections`: pull directories and their connection to Google
//! Workspace, Entra ID or Okta, named by the directory's id. Credentials go
//! in (sealed under the server's key) and never come back out; a test says
//! what the provider answered; a sync starts a run in the background and
//! answers 202 with its id (`runs` reads it).

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::auth::{Principal, Scope};
use super::problem::Problem;
use super::runs::{Run, RunStarted};
use super::{ApiState, Page, Paging, TenantParam, optional_body};
use crate::admin::connections::{
    ConnectionChange, ConnectionView, ImportRequest, ImportSummary, PreviewQuery, PreviewUser,
};
use crate::admin::{self, AdminError};
use crate::pull::connector::Definition;
use crate::pull::run::Request;
use crate::store::pages;
use crate::store::tenants::Directory;

pub fn scope() -> actix_web::Scope {
    web::scope("/connections")
        .service(super::resource("", "POST").route(web::post().to(create_connection)))
        .service(
            super::resource("/{directory}", "GET, PATCH, DELETE")
                .route(web::get().to(get_connection))
                .route(web::patch().to(update_connection))
                .route(web::delete().to(delete_connection)),
        )
        .service(
            super::resource("/{directory}/test", "POST").route(web::post().to(test_connection)),
        )
        .service(
            super::resource("/{directory}/sync", "POST").route(web::post().to(sync_connection)),
        )
        .service(
            super::resource("/{directory}/preview", "POST")
                .route(web::post().to(preview_connection)),
        )
        .service(
            super::resource("/{directory}/import", "POST").route(web::post().to(import_connection)),
        )
        .service(super::resource("/{directory}/runs", "GET").route(web::get().to(list_runs)))
        .default_service(web::to(super::not_found))
}

/// One of the caller's tenant's directories; another tenant's is 404.
async fn directory_in(
    state: &ApiState,
    caller: &Principal,
    tenant: &TenantParam,
    id: &str,
) -> Result<Directory, Problem> {
    let tenant_id = tenant.resolve(&state.store, caller).await?;
    Ok(admin::api::directory_in(&state.store, &tenant_id, id).await?)
}

/// A new pull directory and its connection: the connection file of
/// `dirsync connection create --file`, with the directory's name.
#[derive(Debug, Deserialize)]
#[serde(try_from = "Map<String, Value>")]
pub struct NewConnection {
    /// The pull directory's name: 1 to 200 printable characters, unique in
    /// the tenant.
    pub name: String,
    #[serde(flatten)]
    pub definition: Definition,
}

/// `NewConnection` as the document shows it: the directory's name beside
/// the connection file's fields in one object (a flattened `Definition`
/// would be an `allOf` whose parts refuse each other's fields).
#[derive(ToSchema)]
#[schema(as = NewConnection)]
#[allow(dead_code)]
struct NewConnectionDocument {
    /// The pull directory's name: 1 to 200 printable characters, unique in
    /// the tenant.
    name: String,
    provider: crate::pull::Provider,
    /// The provider's settings (see `dirsync connection create --help`).
    #[schema(value_type = Object)]
    settings: Option<Value>,
    /// The credentials, sealed under the server's key; never shown again.
    #[schema(write_only)]
    secret: Option<String>,
    scope: Option<crate::pull::source::Scope>,
    #[schema(value_type = Object)]
    schedule: Option<Value>,
}

/// serde's `flatten` lets unknown fields through; the definition refuses
/// them when it is read alone, so the name is taken off first.
impl TryFrom<Map<String, Value>> for NewConnection {
    type Error = String;

    fn try_from(mut body: Map<String, Value>) -> Result<NewConnection, String> {
        let name = match body.remove("name") {
            Some(Value::String(name)) => name,
            Some(_) => return Err("name: a string".into()),
            None => return Err("missing field `name`".into()),
        };
        let definition = serde_json::from_value(Value::Object(body)).map_err(|e| e.to_string())?;
        Ok(NewConnection { name, definition })
    }
}

/// Create a pull directory with its connection. The settings are checked
/// and the credentials read once now (a key file that is not one is 400),
/// then sealed under the server's key.
#[utoipa::path(
    post,
    path = "/api/v1/connections",
    tag = "connections",
    params(TenantParam),
    request_body = NewConnectionDocument,
    responses(
        (status = 201, body = ConnectionView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn create_connection(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Query<TenantParam>,
    body: super::Body<NewConnection>,
) -> Result<HttpResponse, Problem> {
    caller.require(Scope::Admin)?;
    let tenant_id = tenant.resolve(&state.store, &caller).await?;
    let NewConnection { name, definition } = body.into_inner();
    let view = admin::api::create_connection(
        &state.store,
        state.key.as_ref(),
        &tenant_id,
        &name,
        definition,
    )
    .await?;
    Ok(HttpResponse::Created().json(view))
}

/// A pull directory's connection (never its credentials).
#[utoipa::path(
    get,
    path = "/api/v1/connections/{directory}",
    tag = "connections",
    params(("directory" = String, Path, description = "The pull directory's id, or its name in the tenant"), TenantParam),
    responses(
        (status = 200, body = ConnectionView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
pub async fn get_connection(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Query<TenantParam>,
    id: web::Path<String>,
) -> Result<web::Json<ConnectionView>, Problem> {
    caller.require(Scope::Read)?;
    let directory = directory_in(&state, &caller, &tenant, &id).await?;
    Ok(web::Json(
        admin::connections::show(&state.store, &directory.id).await?,
    ))
}

/// Change a connection's settings, scope or schedule (each replaced whole)
/// or its credentials, checked as at creation. New settings or a new scope
/// make the next run a full one. 409 while a run is in progress.
#[utoipa::path(
    patch,
    path = "/api/v1/connections/{directory}",
    tag = "connections",
    params(("directory" = String, Path, description = "The pull directory's id, or its name in the tenant"), TenantParam),
    request_body = ConnectionChange,
    responses(
        (status = 200, body = ConnectionView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn update_connection(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Query<TenantParam>,
    id: web::Path<String>,
    body: super::Body<ConnectionChange>,
) -> Result<web::Json<ConnectionView>, Problem> {
    caller.require(Scope::Admin)?;
    let directory = directory_in(&state, &caller, &tenant, &id).await?;
    Ok(web::Json(
        admin::connections::update(
            &state.store,
            state.key.as_ref(),
            &directory.id,
            body.into_inner(),
        )
        .await?,
    ))
}

/// Delete a connection: no more runs. The directory, its users and its run
/// history stay (`DELETE /api/v1/directories/{directory}` removes those).
#[utoipa::path(
    delete,
    path = "/api/v1/connections/{directory}",
    tag = "connections",
    params(("directory" = String, Path, description = "The pull directory's id, or its name in the tenant"), TenantParam),
    responses(
        (status = 200, body = ConnectionView),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn delete_connection(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Query<TenantParam>,
    id: web::Path<String>,
) -> Result<web::Json<ConnectionView>, Problem> {
    caller.require(Scope::Admin)?;
    let directory = directory_in(&state, &caller, &tenant, &id).await?;
    Ok(web::Json(
        admin::connections::delete(&state.store, &directory.id).await?,
    ))
}

/// What a connection test found.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionTest {
    /// The handshake and one small read of users both succeeded.
    pub ok: bool,
    /// The handshake performed, in the provider's terms (when ok).
    pub authenticated: Option<String>,
    /// Users the small read returned (when ok).
    pub users_read: Option<usize>,
    /// Why it failed, in the provider's own words (a bad secret, a missing
    /// permission, an unknown admin…).
    pub reason: Option<String>,
}

/// Authenticate with the provider and read a few users. A refusal is an
/// answer, not an error: 200 with `ok: false` and the provider's reason.
#[utoipa::path(
    post,
    path = "/api/v1/connections/{directory}/test",
    tag = "connections",
    params(("directory" = String, Path, description = "The pull directory's id, or its name in the tenant"), TenantParam),
    responses(
        (status = 200, body = ConnectionTest),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["write"]))
)]
pub async fn test_connection(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Query<TenantParam>,
    id: web::Path<String>,
) -> Result<web::Json<ConnectionTest>, Problem> {
    caller.require(Scope::Write)?;
    let directory = directory_in(&state, &caller, &tenant, &id).await?;
    let test = match admin::connections::test(&state.store, state.key.as_ref(), &directory.id).await
    {
        Ok(check) => ConnectionTest {
            ok: true,
            authenticated: Some(check.authenticated),
            users_read: Some(check.users_read),
            reason: None,
        },
        // Every reason the connection could not be used (the provider's
        // refusal, credentials the server cannot open) is the test's answer.
        Err(AdminError::Invalid(reason)) => ConnectionTest {
            ok: false,
            authenticated: None,
            users_read: None,
            reason: Some(reason),
        },
        Err(other) => return Err(other.into()),
    };
    Ok(web::Json(test))
}

/// What to run (all optional: no body is a full run).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SyncRequest {
    /// Plan and count only: nothing is written but the run's record, which
    /// shows the first changes it would make.
    pub dry_run: bool,
    /// Only what changed since the last run, where the provider can say.
    pub incremental: bool,
    /// Import just these users (emails or the provider's ids); a selective
    /// run never marks anyone missing.
    pub only: Vec<String>,
    /// Import just this department's users (selective, as `only`).
    pub department: Option<String>,
}

/// Most users one selective run names.
const MAX_ONLY: usize = 1000;

/// Run the connection now, in the background: 202 with the run's id as
/// soon as its record exists (`GET /api/v1/runs/{run}` follows it; a
/// `sync.run.finished` event tells when it ended if it changed something).
/// 409 while another run of it is in progress.
#[utoipa::path(
    post,
    path = "/api/v1/connections/{directory}/sync",
    tag = "connections",
    params(("directory" = String, Path, description = "The pull directory's id, or its name in the tenant"), TenantParam),
    request_body = Option<SyncRequest>,
    responses(
        (status = 202, body = RunStarted),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["write"]))
)]
pub async fn sync_connection(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Query<TenantParam>,
    id: web::Path<String>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, Problem> {
    caller.require(Scope::Write)?;
    let directory = directory_in(&state, &caller, &tenant, &id).await?;
    let asked: SyncRequest = optional_body(&req, &body)?;
    if asked.only.len() > MAX_ONLY {
        return Err(Problem::invalid_field(
            "only",
            format!("at most {MAX_ONLY} users; import more with a full run"),
        ));
    }
    let request = Request {
        dry_run: asked.dry_run,
        incremental: asked.incremental,
        only: asked.only,
        department: asked.department,
        ..Request::manual()
    };
    let run_id =
        admin::api::start_sync(&state.store, state.key.as_ref(), &directory.id, request).await?;
    Ok(RunStarted::accepted(run_id))
}

/// The import wizard's preview.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionPreview {
    pub data: Vec<PreviewUser>,
}

/// The provider's first users matching a search and a department, as an
/// import would take them in (under the attribute mapping), each with
/// whether it is already an app user. Read from the provider; nothing is
/// written. 424 with the provider's reason when it cannot be read.
#[utoipa::path(
    post,
    path = "/api/v1/connections/{directory}/preview",
    tag = "connections",
    params(("directory" = String, Path, description = "The pull directory's id, or its name in the tenant"), TenantParam),
    request_body = Option<PreviewQuery>,
    responses(
        (status = 200, body = ConnectionPreview),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 424, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["write"]))
)]
pub async fn preview_connection(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Query<TenantParam>,
    id: web::Path<String>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<web::Json<ConnectionPreview>, Problem> {
    // Write, as a connection test: it uses the connection's credentials.
    caller.require(Scope::Write)?;
    let directory = directory_in(&state, &caller, &tenant, &id).await?;
    let query: PreviewQuery = optional_body(&req, &body)?;
    let data =
        admin::connections::preview(&state.store, state.key.as_ref(), &directory.id, query).await?;
    Ok(web::Json(ConnectionPreview { data }))
}

/// Import the selected users (the provider's ids from the preview, or
/// `all`) now, through the engine as a run of mode `import`: no one else
/// is touched and no groups; each change is an event. Answers when the run
/// ends, with what it did. 409 while another run holds the connection;
/// 424 with the provider's reason when it cannot be read.
#[utoipa::path(
    post,
    path = "/api/v1/connections/{directory}/import",
    tag = "connections",
    params(("directory" = String, Path, description = "The pull directory's id, or its name in the tenant"), TenantParam),
    request_body = ImportRequest,
    responses(
        (status = 200, body = ImportSummary),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 424, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["write"]))
)]
pub async fn import_connection(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Query<TenantParam>,
    id: web::Path<String>,
    body: super::Body<ImportRequest>,
) -> Result<web::Json<ImportSummary>, Problem> {
    caller.require(Scope::Write)?;
    let directory = directory_in(&state, &caller, &tenant, &id).await?;
    Ok(web::Json(
        admin::api::import(
            &state.store,
            state.key.as_ref(),
            &directory.id,
            body.into_inner(),
        )
        .await?,
    ))
}

/// A pull directory's runs, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/connections/{directory}/runs",
    tag = "connections",
    params(("directory" = String, Path, description = "The pull directory's id, or its name in the tenant"), TenantParam, Paging),
    responses(
        (status = 200, body = Page<Run>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
pub async fn list_runs(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Query<TenantParam>,
    paging: web::Query<Paging>,
    id: web::Path<String>,
) -> Result<web::Json<Page<Run>>, Problem> {
    caller.require(Scope::Read)?;
    let directory = directory_in(&state, &caller, &tenant, &id).await?;
    let (from, limit) = paging.window("runs")?;
    let page = pages::runs(state.store.connection(), &directory.id, &from, limit).await?;
    Ok(web::Json(Page::of(
        "runs",
        page,
        |r| &r.id,
        |r| Run::from(r),
    )))
}
