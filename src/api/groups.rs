//! `/api/v1/groups`: the tenant's application groups (one per directory
//! group), one group, and its members, paged.

use actix_web::web;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{Principal, Scope};
use super::problem::Problem;
use super::{ApiState, Page, Paging, TenantParam};
use crate::domain::time::rfc3339;
use crate::reconcile::apply::UserView;
use crate::store::app::groups::AppGroup;
use crate::store::pages;

pub fn scope() -> actix_web::Scope {
    web::scope("/groups")
        .service(super::resource("", "GET").route(web::get().to(list_groups)))
        .service(super::resource("/{id}", "GET").route(web::get().to(get_group)))
        .service(super::resource("/{id}/members", "GET").route(web::get().to(list_members)))
        .default_service(web::to(super::not_found))
}

/// An application group.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Group {
    pub id: String,
    pub name: String,
    /// The directory it follows.
    pub directory_id: String,
    pub external_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&AppGroup> for Group {
    fn from(g: &AppGroup) -> Group {
        Group {
            id: g.id.clone(),
            name: g.name.clone(),
            directory_id: g.directory_id.clone(),
            external_id: g.external_id.clone(),
            created_at: rfc3339(g.created_at),
            updated_at: rfc3339(g.updated_at),
        }
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GroupQuery {
    /// Only this directory's groups (its id).
    #[param(max_length = 256, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$")]
    pub directory: Option<String>,
    /// A prefix of the name (case-insensitive).
    #[param(max_length = 256, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$")]
    pub name: Option<String>,
}

/// List the tenant's groups.
#[utoipa::path(
    get,
    path = "/api/v1/groups",
    tag = "groups",
    params(TenantParam, Paging, GroupQuery),
    responses(
        (status = 200, body = Page<Group>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
pub async fn list_groups(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Query<TenantParam>,
    paging: web::Query<Paging>,
    query: web::Query<GroupQuery>,
) -> Result<web::Json<Page<Group>>, Problem> {
    caller.require(Scope::Read)?;
    let tenant_id = tenant.resolve(&state.store, &caller).await?;
    let (from, limit) = paging.window("groups")?;
    for (field, value) in [("directory", &query.directory), ("name", &query.name)] {
        if value
            .as_ref()
            .is_some_and(|v| v.len() > 256 || v.chars().any(char::is_control))
        {
            return Err(Problem::invalid_field(
                field,
                "at most 256 printable characters",
            ));
        }
    }
    let page = pages::groups(
        state.store.connection(),
        &tenant_id,
        query.directory.as_deref(),
        query.name.as_deref().filter(|n| !n.is_empty()),
        &from,
        limit,
    )
    .await?;
    Ok(web::Json(Page::of(
        "groups",
        page,
        |g| &g.id,
        |g| Group::from(g),
    )))
}

async fn group_in(state: &ApiState, tenant_id: &str, id: &str) -> Result<AppGroup, Problem> {
    pages::group(state.store.connection(), tenant_id, id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("group {}", crate::domain::text::quoted(id))))
}

/// One group.
#[utoipa::path(
    get,
    path = "/api/v1/groups/{id}",
    tag = "groups",
    params(("id" = String, Path, description = "The group's id"), TenantParam),
    responses(
        (status = 200, body = Group),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
pub async fn get_group(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Query<TenantParam>,
    id: web::Path<String>,
) -> Result<web::Json<Group>, Problem> {
    caller.require(Scope::Read)?;
    let tenant_id = tenant.resolve(&state.store, &caller).await?;
    Ok(web::Json(Group::from(
        &group_in(&state, &tenant_id, &id).await?,
    )))
}

/// A group's members, paged.
#[utoipa::path(
    get,
    path = "/api/v1/groups/{id}/members",
    tag = "groups",
    params(("id" = String, Path, description = "The group's id"), TenantParam, Paging),
    responses(
        (status = 200, body = Page<UserView>),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
pub async fn list_members(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Query<TenantParam>,
    paging: web::Query<Paging>,
    id: web::Path<String>,
) -> Result<web::Json<Page<UserView>>, Problem> {
    caller.require(Scope::Read)?;
    let tenant_id = tenant.resolve(&state.store, &caller).await?;
    let (from, limit) = paging.window("members")?;
    let group = group_in(&state, &tenant_id, &id).await?;
    let page = pages::members(state.store.connection(), &group.id, &from, limit).await?;
    Ok(web::Json(Page::of(
        "members",
        page,
        |u| &u.id,
        |u| UserView::from(u),
    )))
}
