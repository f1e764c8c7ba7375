//! `/api/v1/tenants/{tenant}/setup-links`: the host application hands its
//! customer's IT admin a setup link (`admin::setup`): create (the URL,
//! with its secret, in this answer only), list (never the secrets), revoke.
//! An operator's token reaches every tenant; a tenant's token only its own.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use utoipa::ToSchema;

use super::auth::{Principal, Scope};
use super::problem::Problem;
use super::{ApiState, optional_body};
use crate::admin::setup::{self, Allows, NewSetupLinkView, SetupLinkView};

/// The routes, mounted in the tenants scope.
pub fn routes(scope: actix_web::Scope) -> actix_web::Scope {
    scope
        .service(
            super::resource("/{tenant}/setup-links", "GET, POST")
                .route(web::get().to(list_setup_links))
                .route(web::post().to(create_setup_link)),
        )
        .service(
            super::resource("/{tenant}/setup-links/{id}", "DELETE")
                .route(web::delete().to(revoke_setup_link)),
        )
}

/// The tenant's id if the caller may act in it; another tenant is 404, as
/// if it did not exist.
async fn tenant_of(state: &ApiState, caller: &Principal, tenant: &str) -> Result<String, Problem> {
    let id = super::tenant_id(&state.store, tenant).await?;
    if !caller.is_operator() && super::tenant_id(&state.store, &caller.tenant).await? != id {
        return Err(Problem::not_found(format!(
            "tenant {}",
            crate::domain::text::quoted(tenant)
        )));
    }
    Ok(id)
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSetupLink {
    /// What the portal may set up: `scim`, `pull`, or both (the default).
    pub allow: Option<Vec<String>>,
    /// How long the link lives unused, as `7d`, `12h`, `30m`: 1 minute to
    /// 30 days; 7 days when left out.
    pub expires_in: Option<String>,
}

/// Create a setup link for the tenant. The URL (with its secret) is in
/// this answer only; it opens the setup portal once.
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/setup-links",
    tag = "tenants",
    params(("tenant" = String, Path, description = "The tenant's name or id")),
    request_body = Option<NewSetupLink>,
    responses(
        (status = 201, body = NewSetupLinkView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn create_setup_link(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Path<String>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, Problem> {
    caller.require(Scope::Admin)?;
    let tenant_id = tenant_of(&state, &caller, &tenant).await?;
    let body: NewSetupLink = optional_body(&req, &body)?;
    let allows = match &body.allow {
        Some(names) => Allows::parse(&names.join(","))
            .map_err(|e| Problem::invalid_field("allow", e.to_string()))?,
        None => Allows::default(),
    };
    let expires_in = match &body.expires_in {
        Some(raw) => setup::parse_expiry(raw)
            .and_then(setup::check_expiry)
            .map_err(|e| Problem::invalid_field("expires_in", e.to_string()))?,
        None => setup::DEFAULT_EXPIRY,
    };
    let link = setup::create(
        &state.store,
        &tenant_id,
        allows,
        expires_in,
        "api",
        &state.public_url,
    )
    .await?;
    Ok(HttpResponse::Created()
        .insert_header(("cache-control", "no-store"))
        .json(link))
}

/// The tenant's setup links, newest first, with whether each is unused,
/// used, expired or revoked; never their secrets.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/setup-links",
    tag = "tenants",
    params(("tenant" = String, Path, description = "The tenant's name or id")),
    responses(
        (status = 200, body = Vec<SetupLinkView>),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
pub async fn list_setup_links(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Path<String>,
) -> Result<web::Json<Vec<SetupLinkView>>, Problem> {
    caller.require(Scope::Read)?;
    let tenant_id = tenant_of(&state, &caller, &tenant).await?;
    Ok(web::Json(setup::list(&state.store, &tenant_id).await?))
}

/// Revoke a setup link: unused, it no longer opens the portal; a portal
/// session it opened ends.
#[utoipa::path(
    delete,
    path = "/api/v1/tenants/{tenant}/setup-links/{id}",
    tag = "tenants",
    params(
        ("tenant" = String, Path, description = "The tenant's name or id"),
        ("id" = String, Path, description = "The link's id"),
    ),
    responses(
        (status = 200, body = SetupLinkView),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn revoke_setup_link(
    state: web::Data<ApiState>,
    caller: Principal,
    path: web::Path<(String, String)>,
) -> Result<web::Json<SetupLinkView>, Problem> {
    caller.require(Scope::Admin)?;
    let (tenant, link) = path.into_inner();
    let tenant_id = tenant_of(&state, &caller, &tenant).await?;
    Ok(web::Json(
        setup::revoke(&state.store, &tenant_id, &link).await?,
    ))
}
