//! `/api/v1/webhooks`: the tenant's webhook endpoints. Create one (its
//! signing secret in that answer only), read, change, enable or disable,
//! delete; send a test message; rotate the secret (both sign for a while);
//! replay from a sequence number; read the delivery log. Delivery itself is
//! `webhooks::deliver`, in the background.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::ToSchema;

use super::auth::{Principal, Scope};
use super::problem::Problem;
use super::{ApiState, Body, Page, Paging, TenantParam};
use crate::admin::webhooks::{
    self as hooks, AttemptView, NewWebhook, TestDelivery, WebhookChange, WebhookView,
    WebhookWithSecret,
};

pub fn scope() -> actix_web::Scope {
    web::scope("/webhooks")
        .service(
            super::resource("", "GET, POST")
                .route(web::get().to(list_webhooks))
                .route(web::post().to(create_webhook)),
        )
        .service(
            super::resource("/{id}", "GET, PATCH, DELETE")
                .route(web::get().to(get_webhook))
                .route(web::patch().to(update_webhook))
                .route(web::delete().to(delete_webhook)),
        )
        .service(super::resource("/{id}/enable", "POST").route(web::post().to(enable_webhook)))
        .service(super::resource("/{id}/disable", "POST").route(web::post().to(disable_webhook)))
        .service(super::resource("/{id}/test", "POST").route(web::post().to(test_webhook)))
        .service(
            super::resource("/{id}/rotate-secret", "POST").route(web::post().to(rotate_secret)),
        )
        .service(super::resource("/{id}/replay", "POST").route(web::post().to(replay_webhook)))
        .service(super::resource("/{id}/attempts", "GET").route(web::get().to(list_attempts)))
        .default_service(web::to(super::not_found))
}

/// Where a replay starts.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Replay {
    /// The first event to deliver again (its `seq`; 1 or more).
    pub from_seq: i64,
}

/// List the tenant's endpoints.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    params(TenantParam, Paging),
    responses((status = 200, body = Page<WebhookView>)),
    security(("bearer" = ["read"]))
)]
pub async fn list_webhooks(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Query<TenantParam>,
    paging: web::Query<Paging>,
) -> Result<web::Json<Page<WebhookView>>, Problem> {
    caller.require(Scope::Read)?;
    let tenant_id = tenant.resolve(&state.store, &caller).await?;
    let (from, limit) = paging.window("webhooks")?;
    let page = hooks::list(&state.store, &tenant_id, &from, limit).await?;
    Ok(web::Json(Page::of(
        "webhooks",
        page,
        |e| &e.id,
        |e| WebhookView::from(e),
    )))
}

/// Create an endpoint. It receives the events committed from now on; the
/// answer holds its signing secret, shown this once.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    params(TenantParam),
    request_body = NewWebhook,
    responses(
        (status = 201, body = WebhookWithSecret),
        (status = 400, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn create_webhook(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Query<TenantParam>,
    body: Body<NewWebhook>,
) -> Result<HttpResponse, Problem> {
    caller.require(Scope::Admin)?;
    let tenant_id = tenant.resolve(&state.store, &caller).await?;
    let created = hooks::create(
        &state.store,
        state.key.as_ref(),
        &state.webhooks,
        &tenant_id,
        body.into_inner(),
    )
    .await?;
    Ok(HttpResponse::Created()
        .insert_header((
            "location",
            format!("/api/v1/webhooks/{}", created.webhook.id),
        ))
        .json(created))
}

/// One endpoint.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{id}",
    tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id"), TenantParam),
    responses(
        (status = 200, body = WebhookView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
pub async fn get_webhook(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Query<TenantParam>,
    id: web::Path<String>,
) -> Result<web::Json<WebhookView>, Problem> {
    caller.require(Scope::Read)?;
    let tenant_id = tenant.resolve(&state.store, &caller).await?;
    let e = hooks::endpoint(&state.store, Some(&tenant_id), &id).await?;
    Ok(web::Json(WebhookView::from(&e)))
}

/// Change an endpoint's URL, description, event types or batch size.
#[utoipa::path(
    patch,
    path = "/api/v1/webhooks/{id}",
    tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id"), TenantParam),
    request_body = WebhookChange,
    responses(
        (status = 200, body = WebhookView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn update_webhook(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Query<TenantParam>,
    id: web::Path<String>,
    body: Body<WebhookChange>,
) -> Result<web::Json<WebhookView>, Problem> {
    caller.require(Scope::Admin)?;
    let tenant_id = tenant.resolve(&state.store, &caller).await?;
    Ok(web::Json(
        hooks::update(
            &state.store,
            &state.webhooks,
            Some(&tenant_id),
            &id,
            body.into_inner(),
        )
        .await?,
    ))
}

/// Delete an endpoint and its delivery log.
#[utoipa::path(
    delete,
    path = "/api/v1/webhooks/{id}",
    tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id"), TenantParam),
    responses(
        (status = 200, body = WebhookView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn delete_webhook(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Query<TenantParam>,
    id: web::Path<String>,
) -> Result<web::Json<WebhookView>, Problem> {
    caller.require(Scope::Admin)?;
    let tenant_id = tenant.resolve(&state.store, &caller).await?;
    Ok(web::Json(
        hooks::delete(&state.store, Some(&tenant_id), &id).await?,
    ))
}

/// Enable an endpoint: delivery resumes at once from the first event it
/// has not taken.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{id}/enable",
    tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id"), TenantParam),
    responses(
        (status = 200, body = WebhookView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["write"]))
)]
pub async fn enable_webhook(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Query<TenantParam>,
    id: web::Path<String>,
) -> Result<web::Json<WebhookView>, Problem> {
    caller.require(Scope::Write)?;
    let tenant_id = tenant.resolve(&state.store, &caller).await?;
    Ok(web::Json(
        hooks::set_enabled(&state.store, Some(&tenant_id), &id, true).await?,
    ))
}

/// Disable an endpoint: its events wait in the outbox.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{id}/disable",
    tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id"), TenantParam),
    responses(
        (status = 200, body = WebhookView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["write"]))
)]
pub async fn disable_webhook(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Query<TenantParam>,
    id: web::Path<String>,
) -> Result<web::Json<WebhookView>, Problem> {
    caller.require(Scope::Write)?;
    let tenant_id = tenant.resolve(&state.store, &caller).await?;
    Ok(web::Json(
        hooks::set_enabled(&state.store, Some(&tenant_id), &id, false).await?,
    ))
}

/// Send a signed `webhook.test` message now and show the answer (outside
/// the feed: it moves nothing).
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{id}/test",
    tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id"), TenantParam),
    responses(
        (status = 200, body = TestDelivery),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["write"]))
)]
pub async fn test_webhook(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Query<TenantParam>,
    id: web::Path<String>,
) -> Result<web::Json<TestDelivery>, Problem> {
    caller.require(Scope::Write)?;
    let tenant_id = tenant.resolve(&state.store, &caller).await?;
    Ok(web::Json(
        hooks::send_test(
            &state.store,
            state.key.as_ref(),
            &state.webhooks,
            Some(&tenant_id),
            &id,
        )
        .await?,
    ))
}

/// A new signing secret, shown once; the old one signs too (a second
/// signature in `webhook-signature`) until `previous_secret_until`.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{id}/rotate-secret",
    tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id"), TenantParam),
    responses(
        (status = 200, body = WebhookWithSecret),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn rotate_secret(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Query<TenantParam>,
    id: web::Path<String>,
) -> Result<web::Json<WebhookWithSecret>, Problem> {
    caller.require(Scope::Admin)?;
    let tenant_id = tenant.resolve(&state.store, &caller).await?;
    Ok(web::Json(
        hooks::rotate_secret(
            &state.store,
            state.key.as_ref(),
            &state.webhooks,
            Some(&tenant_id),
            &id,
        )
        .await?,
    ))
}

/// Deliver again from event `from_seq` on, in order, at once.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{id}/replay",
    tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id"), TenantParam),
    request_body = Replay,
    responses(
        (status = 200, body = WebhookView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["write"]))
)]
pub async fn replay_webhook(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Query<TenantParam>,
    id: web::Path<String>,
    body: Body<Replay>,
) -> Result<web::Json<WebhookView>, Problem> {
    caller.require(Scope::Write)?;
    let tenant_id = tenant.resolve(&state.store, &caller).await?;
    Ok(web::Json(
        hooks::replay(&state.store, Some(&tenant_id), &id, body.from_seq).await?,
    ))
}

/// The endpoint's delivery log, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{id}/attempts",
    tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id"), TenantParam, Paging),
    responses(
        (status = 200, body = Page<AttemptView>),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
pub async fn list_attempts(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Query<TenantParam>,
    paging: web::Query<Paging>,
    id: web::Path<String>,
) -> Result<web::Json<Page<AttemptView>>, Problem> {
    caller.require(Scope::Read)?;
    let tenant_id = tenant.resolve(&state.store, &caller).await?;
    let (from, limit) = paging.window("attempts")?;
    let page = hooks::attempts(&state.store, Some(&tenant_id), &id, &from, limit).await?;
    Ok(web::Json(Page::of(
        "attempts",
        page,
        |a| &a.id,
        |a| AttemptView::from(a),
    )))
}
