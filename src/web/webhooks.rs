//! A tenant's webhook endpoints (`admin::webhooks::list`), an endpoint's
//! delivery log (`admin::webhooks::attempts`, newest first, paged by the
//! last attempt's id) and a replay from an event (`admin::webhooks::replay`:
//! the endpoint delivers again from that sequence number). Endpoints are
//! created and changed with `dirsync webhook` or the host API. Uses
//! actix_web and askama.

use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::page::{Chrome, present, render, see_other};
use super::session::Operator;
use super::{WebError, WebState};
use crate::admin::TenantView;
use crate::admin::webhooks::{self, AttemptView, WebhookView};
use crate::store::pages::Anchor;

/// Endpoints the list shows (a tenant has a handful).
const ENDPOINTS: u64 = 200;
/// Attempts one page of the delivery log shows.
const ATTEMPTS_PER_PAGE: u64 = 50;

async fn tenant_view(state: &WebState, tenant_id: &str) -> Result<TenantView, WebError> {
    let tenant = state.store.tenant(tenant_id).await.map_err(|_| {
        WebError::NotFound(format!("tenant {}", crate::domain::text::quoted(tenant_id)))
    })?;
    Ok(TenantView {
        id: tenant.id,
        name: tenant.name,
    })
}

#[derive(Template)]
#[template(path = "admin/webhooks.html")]
struct WebhooksPage {
    chrome: Option<Chrome>,
    tenant: TenantView,
    endpoints: Vec<WebhookView>,
}

pub async fn webhooks(
    state: web::Data<WebState>,
    operator: Operator,
    tenant_id: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let tenant = tenant_view(&state, &tenant_id).await?;
    let page = webhooks::list(&state.store, &tenant.id, &Anchor::Start, ENDPOINTS).await?;
    render(&WebhooksPage {
        chrome: Some(Chrome::of(&operator)),
        tenant,
        endpoints: page.rows.iter().map(WebhookView::from).collect(),
    })
}

#[derive(Debug, Default, Deserialize)]
pub struct Log {
    /// Attempts older than this one.
    after: Option<String>,
    /// A replay just queued from this event.
    replayed: Option<i64>,
}

#[derive(Template)]
#[template(path = "admin/webhook.html")]
struct WebhookPage {
    chrome: Option<Chrome>,
    tenant: TenantView,
    endpoint: WebhookView,
    attempts: Vec<AttemptView>,
    older: Option<String>,
    replayed: Option<i64>,
}

pub async fn webhook(
    state: web::Data<WebState>,
    operator: Operator,
    path: web::Path<(String, String)>,
    log: web::Query<Log>,
) -> Result<HttpResponse, WebError> {
    let (tenant_id, id) = path.into_inner();
    let tenant = tenant_view(&state, &tenant_id).await?;
    let endpoint = webhooks::endpoint(&state.store, Some(&tenant.id), &id).await?;
    let from = present(&log.after).map_or(Anchor::Start, Anchor::After);
    let page = webhooks::attempts(
        &state.store,
        Some(&tenant.id),
        &endpoint.id,
        &from,
        ATTEMPTS_PER_PAGE,
    )
    .await?;
    let older = page.rows.last().filter(|_| page.more_after).map(|a| {
        format!(
            "/admin/tenants/{}/webhooks/{}?after={}",
            tenant.id, endpoint.id, a.id
        )
    });
    render(&WebhookPage {
        chrome: Some(Chrome::of(&operator)),
        tenant,
        endpoint: WebhookView::from(&endpoint),
        attempts: page.rows.iter().map(AttemptView::from).collect(),
        older,
        replayed: log.replayed,
    })
}

#[derive(Deserialize)]
pub struct Replay {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    from_seq: String,
}

/// Deliver again from an event: the endpoint's log page says so.
pub async fn replay(
    state: web::Data<WebState>,
    operator: Operator,
    path: web::Path<(String, String)>,
    form: web::Form<Replay>,
) -> Result<HttpResponse, WebError> {
    operator.check(&form.csrf)?;
    let (tenant_id, id) = path.into_inner();
    let from_seq: i64 = form.from_seq.trim().parse().map_err(|_| {
        WebError::BadRequest(format!(
            "from event {}: a sequence number, at least 1",
            crate::domain::text::quoted(&form.from_seq)
        ))
    })?;
    let tenant = tenant_view(&state, &tenant_id).await?;
    let endpoint = webhooks::replay(&state.store, Some(&tenant.id), &id, from_seq).await?;
    Ok(see_other(&format!(
        "/admin/tenants/{}/webhooks/{}?replayed={from_seq}",
        tenant.id, endpoint.id
    )))
}
