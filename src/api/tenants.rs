//! `/api/v1/tenants`: the operator's tools create and list tenants (a token
//! whose `tenant` claim is `*`); a tenant's own token may read itself.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::ToSchema;

use super::auth::{Principal, Scope};
use super::problem::Problem;
use super::{ApiState, Page, Paging};
use crate::admin::{self, TenantView};
use crate::store::pages;

pub fn scope() -> actix_web::Scope {
    let scope = web::scope("/tenants")
        .service(
            super::resource("", "GET, POST")
                .route(web::get().to(list_tenants))
                .route(web::post().to(create_tenant)),
        )
        .service(super::resource("/{tenant}", "GET").route(web::get().to(get_tenant)));
    super::setup_links::routes(scope).default_service(web::to(super::not_found))
}

fn operator(caller: &Principal, scope: Scope) -> Result<(), Problem> {
    caller.require(scope)?;
    if !caller.is_operator() {
        let mut p = Problem::new(
            actix_web::http::StatusCode::FORBIDDEN,
            "operator_only",
            "only an operator's token (tenant \"*\") manages tenants",
        );
        p.challenge = Some("Bearer error=\"insufficient_scope\"".into());
        return Err(p);
    }
    Ok(())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    /// 1 to 200 printable characters, unique.
    pub name: String,
}

/// Create a tenant (operator).
#[utoipa::path(
    post,
    path = "/api/v1/tenants",
    tag = "tenants",
    request_body = NewTenant,
    responses(
        (status = 201, body = TenantView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn create_tenant(
    state: web::Data<ApiState>,
    caller: Principal,
    body: super::Body<NewTenant>,
) -> Result<HttpResponse, Problem> {
    operator(&caller, Scope::Admin)?;
    let tenant = admin::create_tenant(&state.store, &body.name).await?;
    Ok(HttpResponse::Created().json(tenant))
}

/// List every tenant (operator).
#[utoipa::path(
    get,
    path = "/api/v1/tenants",
    tag = "tenants",
    params(Paging),
    responses(
        (status = 200, body = Page<TenantView>),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
pub async fn list_tenants(
    state: web::Data<ApiState>,
    caller: Principal,
    paging: web::Query<Paging>,
) -> Result<web::Json<Page<TenantView>>, Problem> {
    operator(&caller, Scope::Read)?;
    let (from, limit) = paging.window("tenants")?;
    let page = pages::tenants(state.store.connection(), &from, limit).await?;
    Ok(web::Json(Page::of(
        "tenants",
        page,
        |t| &t.id,
        |t| TenantView {
            id: t.id.clone(),
            name: t.name.clone(),
        },
    )))
}

/// One tenant, by name or id (an operator, or the tenant's own token).
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}",
    tag = "tenants",
    params(("tenant" = String, Path, description = "The tenant's name or id")),
    responses(
        (status = 200, body = TenantView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
pub async fn get_tenant(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Path<String>,
) -> Result<web::Json<TenantView>, Problem> {
    caller.require(Scope::Read)?;
    let id = super::tenant_id(&state.store, &tenant).await?;
    if !caller.is_operator() && super::tenant_id(&state.store, &caller.tenant).await? != id {
        return Err(Problem::not_found(format!(
            "tenant {}",
            crate::domain::text::quoted(&tenant)
        )));
    }
    let row = state.store.tenant(&id).await?;
    Ok(web::Json(TenantView {
        id: row.id,
        name: row.name,
    }))
}
