//! `/api/v1/directories`: the tenant's directories. A SCIM directory is
//! created here, with the base URL and the tokens its IdP is given; a pull
//! directory comes with its connection (`connections`). Every directory has
//! a policy, read and replaced whole (checked as the CLI checks it), and
//! can be removed.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{Principal, Scope};
use super::problem::Problem;
use super::{ApiState, Page, Paging, TenantParam, optional_body};
use crate::admin::requests::{self, RequestFilter, RequestView, StatusClass};
use crate::admin::{self, NewTokenView, TokenView};
use crate::domain::time::rfc3339;
use crate::reconcile::policy::Policy;
use crate::reconcile::removal::Removal;
use crate::store::pages;
use crate::store::tenants::Directory as Row;

pub fn scope() -> actix_web::Scope {
    web::scope("/directories")
        .service(
            super::resource("", "GET, POST")
                .route(web::get().to(list_directories))
                .route(web::post().to(create_directory)),
        )
        .service(
            super::resource("/{directory}", "GET, DELETE")
                .route(web::get().to(get_directory))
                .route(web::delete().to(delete_directory)),
        )
        .service(
            super::resource("/{directory}/policy", "GET, PUT")
                .route(web::get().to(get_policy))
                .route(web::put().to(replace_policy)),
        )
        .service(
            super::resource("/{directory}/policy/preview", "POST")
                .route(web::post().to(preview_policy)),
        )
        .service(
            super::resource("/{directory}/tokens", "GET, POST")
                .route(web::get().to(list_tokens))
                .route(web::post().to(create_token)),
        )
        .service(
            super::resource("/{directory}/tokens/{token}", "DELETE")
                .route(web::delete().to(revoke_token)),
        )
        .service(
            super::resource("/{directory}/scim-requests", "GET")
                .route(web::get().to(list_scim_requests)),
        )
        .default_service(web::to(super::not_found))
}

/// A directory of the tenant.
#[derive(Debug, Serialize, ToSchema)]
pub struct Directory {
    pub id: String,
    pub name: String,
    /// `scim`, or the provider a pull directory reads (`google`, `entra`,
    /// `okta`).
    pub kind: String,
    /// The IdP whose SCIM requests it reads, where vendors disagree
    /// (`entra`, `okta`, `onelogin`, `jumpcloud`, `pingone`, `google`,
    /// `generic`); a pull directory's provider.
    pub vendor: String,
    pub created_at: String,
    /// What the IdP is given as the SCIM base URL, with one of the
    /// directory's tokens; null for a pull directory.
    pub scim_base_url: Option<String>,
}

impl Directory {
    fn of(row: &Row, state: &ApiState) -> Directory {
        Directory {
            id: row.id.clone(),
            name: row.name.clone(),
            kind: row.kind.clone(),
            vendor: row.vendor.clone(),
            created_at: rfc3339(row.created_at),
            scim_base_url: (row.kind == "scim").then(|| state.scim_base_url.clone()),
        }
    }
}

/// One of the caller's tenant's directories; another tenant's is 404.
async fn directory_in(
    state: &ApiState,
    caller: &Principal,
    tenant: &TenantParam,
    id: &str,
) -> Result<Row, Problem> {
    let tenant_id = tenant.resolve(&state.store, caller).await?;
    Ok(admin::api::directory_in(&state.store, &tenant_id, id).await?)
}

/// List the tenant's directories.
#[utoipa::path(
    get,
    path = "/api/v1/directories",
    tag = "directories",
    params(TenantParam, Paging),
    responses(
        (status = 200, body = Page<Directory>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
pub async fn list_directories(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Query<TenantParam>,
    paging: web::Query<Paging>,
) -> Result<web::Json<Page<Directory>>, Problem> {
    caller.require(Scope::Read)?;
    let tenant_id = tenant.resolve(&state.store, &caller).await?;
    let (from, limit) = paging.window("directories")?;
    let page = pages::directories(state.store.connection(), &tenant_id, &from, limit).await?;
    Ok(web::Json(Page::of(
        "directories",
        page,
        |d| &d.id,
        |d| Directory::of(d, &state),
    )))
}

fn generic() -> String {
    "generic".to_owned()
}

/// A new SCIM directory.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDirectory {
    /// 1 to 200 printable characters, unique in the tenant.
    pub name: String,
    /// The IdP that will provision it: `entra`, `okta`, `onelogin`,
    /// `jumpcloud`, `pingone`, `google` or `generic` (the default).
    #[serde(default = "generic")]
    pub vendor: String,
}

/// Create a SCIM directory; give its IdP the `scim_base_url` and a token
/// created next.
#[utoipa::path(
    post,
    path = "/api/v1/directories",
    tag = "directories",
    params(TenantParam),
    request_body = NewDirectory,
    responses(
        (status = 201, body = Directory),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn create_directory(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Query<TenantParam>,
    body: super::Body<NewDirectory>,
) -> Result<HttpResponse, Problem> {
    caller.require(Scope::Admin)?;
    let tenant_id = tenant.resolve(&state.store, &caller).await?;
    let created =
        admin::api::create_directory(&state.store, &tenant_id, &body.name, &body.vendor).await?;
    let row = state.store.directory(&created.id).await?;
    Ok(HttpResponse::Created().json(Directory::of(&row, &state)))
}

/// One directory.
#[utoipa::path(
    get,
    path = "/api/v1/directories/{directory}",
    tag = "directories",
    params(("directory" = String, Path, description = "The directory's id, or its name in the tenant"), TenantParam),
    responses(
        (status = 200, body = Directory),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
pub async fn get_directory(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Query<TenantParam>,
    id: web::Path<String>,
) -> Result<web::Json<Directory>, Problem> {
    caller.require(Scope::Read)?;
    let row = directory_in(&state, &caller, &tenant, &id).await?;
    Ok(web::Json(Directory::of(&row, &state)))
}

/// Delete a directory: its tokens, connection, runs and mirror go, and its
/// groups (each with a `group.deleted` event); the users it linked stay as
/// they are, unlinked from it. One `directory.deleted` event. 409 while a
/// run of its connection is in progress.
#[utoipa::path(
    delete,
    path = "/api/v1/directories/{directory}",
    tag = "directories",
    params(("directory" = String, Path, description = "The directory's id, or its name in the tenant"), TenantParam),
    responses(
        (status = 200, body = Removal),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn delete_directory(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Query<TenantParam>,
    id: web::Path<String>,
) -> Result<web::Json<Removal>, Problem> {
    caller.require(Scope::Admin)?;
    let row = directory_in(&state, &caller, &tenant, &id).await?;
    let removal = admin::api::delete_directory(&state.store, &row.id).await?;
    state.scim_tokens.forget_directory(&row.id);
    Ok(web::Json(removal))
}

/// A directory's provisioning policy.
#[utoipa::path(
    get,
    path = "/api/v1/directories/{directory}/policy",
    tag = "directories",
    params(("directory" = String, Path, description = "The directory's id, or its name in the tenant"), TenantParam),
    responses(
        (status = 200, body = Policy),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
pub async fn get_policy(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Query<TenantParam>,
    id: web::Path<String>,
) -> Result<web::Json<Policy>, Problem> {
    caller.require(Scope::Read)?;
    let row = directory_in(&state, &caller, &tenant, &id).await?;
    Ok(web::Json(admin::policy(&state.store, &row.id).await?))
}

/// Replace a directory's policy (a field left out takes its default); it
/// applies from the directory's next write or run.
#[utoipa::path(
    put,
    path = "/api/v1/directories/{directory}/policy",
    tag = "directories",
    params(("directory" = String, Path, description = "The directory's id, or its name in the tenant"), TenantParam),
    request_body = Policy,
    responses(
        (status = 200, body = Policy),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn replace_policy(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Query<TenantParam>,
    id: web::Path<String>,
    body: super::Body<Policy>,
) -> Result<web::Json<Policy>, Problem> {
    caller.require(Scope::Admin)?;
    let row = directory_in(&state, &caller, &tenant, &id).await?;
    Ok(web::Json(
        admin::api::replace_policy(&state.store, &row.id, body.into_inner()).await?,
    ))
}

/// A proposed attribute mapping to preview.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MappingPreviewRequest {
    /// The rules to preview (the policy's `attribute_mapping` as it would be).
    pub attribute_mapping: Vec<crate::reconcile::mapping::Rule>,
    /// How many users to show, 1 to 100 (default 10), the directory's first
    /// in id order.
    pub limit: Option<u64>,
}

/// The users a preview shows.
#[derive(Debug, Serialize, ToSchema)]
pub struct MappingPreviewPage {
    pub data: Vec<admin::MappingPreview>,
}

/// A dry run of an attribute mapping change: for the directory's first
/// users, their values under the rules in force and under the proposed
/// ones, and what would change. Nothing is written. A SCIM directory's
/// users are read from what its clients wrote; a pull directory's from its
/// provider, through its connection (424 with the provider's reason when
/// it cannot be read).
#[utoipa::path(
    post,
    path = "/api/v1/directories/{directory}/policy/preview",
    tag = "directories",
    params(("directory" = String, Path, description = "The directory's id, or its name in the tenant"), TenantParam),
    request_body = MappingPreviewRequest,
    responses(
        (status = 200, body = MappingPreviewPage),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 424, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
pub async fn preview_policy(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Query<TenantParam>,
    id: web::Path<String>,
    body: super::Body<MappingPreviewRequest>,
) -> Result<web::Json<MappingPreviewPage>, Problem> {
    caller.require(Scope::Read)?;
    let row = directory_in(&state, &caller, &tenant, &id).await?;
    let asked = body.into_inner();
    let data = admin::preview_mapping(
        &state.store,
        state.key.as_ref(),
        &row.id,
        asked.attribute_mapping,
        asked.limit.unwrap_or(10),
    )
    .await?;
    Ok(web::Json(MappingPreviewPage { data }))
}

/// A directory's SCIM tokens (never their secrets), oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/directories/{directory}/tokens",
    tag = "directories",
    params(("directory" = String, Path, description = "The directory's id, or its name in the tenant"), TenantParam),
    responses(
        (status = 200, body = Vec<TokenView>),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
pub async fn list_tokens(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Query<TenantParam>,
    id: web::Path<String>,
) -> Result<web::Json<Vec<TokenView>>, Problem> {
    caller.require(Scope::Read)?;
    let row = directory_in(&state, &caller, &tenant, &id).await?;
    Ok(web::Json(admin::list_tokens(&state.store, &row.id).await?))
}

/// A new SCIM token.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct NewToken {
    /// What the token is for, as an operator reads it (1 to 200 printable
    /// characters).
    pub label: Option<String>,
}

/// Create a SCIM token for a SCIM directory. The secret is in this answer
/// only: no later read shows it.
#[utoipa::path(
    post,
    path = "/api/v1/directories/{directory}/tokens",
    tag = "directories",
    params(("directory" = String, Path, description = "The directory's id, or its name in the tenant"), TenantParam),
    request_body = Option<NewToken>,
    responses(
        (status = 201, body = NewTokenView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn create_token(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Query<TenantParam>,
    id: web::Path<String>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, Problem> {
    caller.require(Scope::Admin)?;
    let row = directory_in(&state, &caller, &tenant, &id).await?;
    let body: NewToken = optional_body(&req, &body)?;
    let token = admin::api::create_token(&state.store, &row.id, body.label.as_deref()).await?;
    Ok(HttpResponse::Created()
        .insert_header(("cache-control", "no-store"))
        .json(token))
}

/// Revoke a SCIM token: requests with it are 401 from now on.
#[utoipa::path(
    delete,
    path = "/api/v1/directories/{directory}/tokens/{token}",
    tag = "directories",
    params(
        ("directory" = String, Path, description = "The directory's id, or its name in the tenant"),
        ("token" = String, Path, description = "The token's id"),
        TenantParam,
    ),
    responses(
        (status = 200, body = TokenView),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn revoke_token(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Query<TenantParam>,
    path: web::Path<(String, String)>,
) -> Result<web::Json<TokenView>, Problem> {
    caller.require(Scope::Admin)?;
    let (id, token) = path.into_inner();
    let row = directory_in(&state, &caller, &tenant, &id).await?;
    let revoked = admin::revoke_token(&state.store, &row.id, &token).await?;
    state.scim_tokens.forget_token(&revoked.id);
    Ok(web::Json(revoked))
}

/// Which logged SCIM requests to list.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RequestsQuery {
    /// Only requests answered with a status of this class: `2xx`, `3xx`,
    /// `4xx` or `5xx`.
    pub status: Option<String>,
    /// Only requests with this method: `GET`, `POST`, `PUT`, `PATCH` or
    /// `DELETE`.
    pub method: Option<String>,
    /// The `next_cursor` of the previous page: older requests.
    pub after: Option<String>,
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u64>,
}

/// The SCIM directory's request log, newest first: each request its tokens
/// authenticated (a bounded number per directory, for a bounded time), how
/// it was answered, and what the engine made of each user it wrote.
#[utoipa::path(
    get,
    path = "/api/v1/directories/{directory}/scim-requests",
    tag = "directories",
    params(("directory" = String, Path, description = "The directory's id, or its name in the tenant"), TenantParam, RequestsQuery),
    responses(
        (status = 200, body = Page<RequestView>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
pub async fn list_scim_requests(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Query<TenantParam>,
    query: web::Query<RequestsQuery>,
    id: web::Path<String>,
) -> Result<web::Json<Page<RequestView>>, Problem> {
    caller.require(Scope::Read)?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=super::MAX_LIMIT).contains(&limit) {
        return Err(Problem::invalid_field(
            "limit",
            format!("must be 1 to {}", super::MAX_LIMIT),
        ));
    }
    let status = match query.status.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(
            StatusClass::parse(s).map_err(|e| Problem::invalid_field("status", e.to_string()))?,
        ),
        None => None,
    };
    let before = match query.after.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => Some(super::decode_cursor(KIND, c, "after")?),
        None => None,
    };
    let method = match query.method.as_deref().filter(|m| !m.is_empty()) {
        Some(m) => {
            Some(requests::method(m).map_err(|e| Problem::invalid_field("method", e.to_string()))?)
        }
        None => None,
    };
    let row = directory_in(&state, &caller, &tenant, &id).await?;
    let filter = RequestFilter {
        status,
        method,
        before,
    };
    let page = admin::scim_requests(&state.store, &row.id, &filter, limit).await?;
    Ok(web::Json(Page::of(
        KIND,
        page,
        |r| &r.id,
        RequestView::clone,
    )))
}

/// The kind an opaque cursor of the request log names.
const KIND: &str = "scim-requests";
