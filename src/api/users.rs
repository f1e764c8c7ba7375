//! `/api/v1/users`: the tenant's application users (filtered, paged), one
//! user by id or email, its groups and the directories that link it, and
//! the host application's actions on it (each one engine transaction with
//! its event, the same `admin` function the CLI calls).

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{Principal, Scope};
use super::groups::Group;
use super::problem::Problem;
use super::{ApiState, Page, Paging, TenantParam};
use crate::admin;
use crate::domain::names::fold;
use crate::reconcile::apply::UserView;
use crate::reconcile::host::{Action, UserKey};
use crate::store::pages::{self, UserFilter};

pub fn scope() -> actix_web::Scope {
    web::scope("/users")
        .service(super::resource("", "GET").route(web::get().to(list_users)))
        .service(
            super::resource("/by-email/{email}", "GET").route(web::get().to(get_user_by_email)),
        )
        .service(super::resource("/{id}", "GET").route(web::get().to(get_user)))
        .service(super::resource("/{id}/groups", "GET").route(web::get().to(user_groups)))
        .service(super::resource("/{id}/directories", "GET").route(web::get().to(user_directories)))
        .service(super::resource("/{id}/signed-in", "POST").route(web::post().to(sign_in_user)))
        .service(super::resource("/{id}/deactivate", "POST").route(web::post().to(deactivate_user)))
        .service(super::resource("/{id}/reactivate", "POST").route(web::post().to(reactivate_user)))
        .service(super::resource("/{id}/role", "PUT").route(web::put().to(set_user_role)))
        .default_service(web::to(super::not_found))
}

/// What users may be filtered by (all optional, combined with AND).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// Linked from this directory (its id).
    #[param(max_length = 256, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$")]
    pub directory: Option<String>,
    /// `PENDING`, `ACTIVE` or `DEACTIVATED`.
    #[param(pattern = "^(PENDING|ACTIVE|DEACTIVATED)$")]
    pub status: Option<String>,
    /// Exactly this email (case-insensitive).
    #[param(max_length = 256, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$")]
    pub email: Option<String>,
    /// A member of this group (its id).
    #[param(max_length = 256, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$")]
    pub group: Option<String>,
    #[param(max_length = 256, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$")]
    pub department: Option<String>,
    /// Changed after this time (RFC 3339).
    #[param(format = DateTime)]
    pub updated_after: Option<String>,
    /// A prefix of the email, display, given or family name.
    #[param(max_length = 256, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$")]
    pub q: Option<String>,
}

impl UserQuery {
    /// The store's filter, or the first field that does not read (the
    /// dashboard's users page reads its form through this too).
    pub fn filter(&self) -> Result<UserFilter, Problem> {
        let status = match self.status.as_deref() {
            None => None,
            Some(s @ ("PENDING" | "ACTIVE" | "DEACTIVATED")) => Some(s.to_owned()),
            Some(_) => {
                return Err(Problem::invalid_field(
                    "status",
                    "PENDING, ACTIVE or DEACTIVATED",
                ));
            }
        };
        let updated_after = match &self.updated_after {
            None => None,
            Some(t) => Some(
                chrono::DateTime::parse_from_rfc3339(t)
                    .map_err(|_| Problem::invalid_field("updated_after", "an RFC 3339 time"))?
                    .timestamp_millis(),
            ),
        };
        let text = |field: &str, v: &Option<String>| -> Result<Option<String>, Problem> {
            match v {
                Some(s) if s.len() > 256 || s.chars().any(char::is_control) => Err(
                    Problem::invalid_field(field, "at most 256 printable characters"),
                ),
                Some(s) => Ok(Some(s.clone())),
                None => Ok(None),
            }
        };
        Ok(UserFilter {
            directory_id: text("directory", &self.directory)?,
            status,
            email: text("email", &self.email)?.map(|e| fold(&e)),
            group_id: text("group", &self.group)?,
            department: text("department", &self.department)?,
            updated_after,
            prefix: text("q", &self.q)?.filter(|q| !q.is_empty()),
        })
    }
}

/// List the tenant's users.
#[utoipa::path(
    get,
    path = "/api/v1/users",
    tag = "users",
    params(TenantParam, Paging, UserQuery),
    responses(
        (status = 200, body = Page<UserView>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
pub async fn list_users(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Query<TenantParam>,
    paging: web::Query<Paging>,
    query: web::Query<UserQuery>,
) -> Result<web::Json<Page<UserView>>, Problem> {
    caller.require(Scope::Read)?;
    let tenant_id = tenant.resolve(&state.store, &caller).await?;
    let (from, limit) = paging.window("users")?;
    let filter = query.filter()?;
    let page = pages::users(state.store.connection(), &tenant_id, &filter, &from, limit).await?;
    Ok(web::Json(Page::of(
        "users",
        page,
        |u| &u.id,
        |u| UserView::from(u),
    )))
}

async fn user_in(state: &ApiState, tenant_id: &str, id: &str) -> Result<UserView, Problem> {
    pages::user(state.store.connection(), tenant_id, id)
        .await?
        .map(|u| UserView::from(&u))
        .ok_or_else(|| Problem::not_found(format!("user {}", crate::domain::text::quoted(id))))
}

/// One user by id.
#[utoipa::path(
    get,
    path = "/api/v1/users/{id}",
    tag = "users",
    params(("id" = String, Path, description = "The user's id"), TenantParam),
    responses(
        (status = 200, body = UserView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
pub async fn get_user(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Query<TenantParam>,
    id: web::Path<String>,
) -> Result<web::Json<UserView>, Problem> {
    caller.require(Scope::Read)?;
    let tenant_id = tenant.resolve(&state.store, &caller).await?;
    Ok(web::Json(user_in(&state, &tenant_id, &id).await?))
}

/// One user by email (case-insensitive).
#[utoipa::path(
    get,
    path = "/api/v1/users/by-email/{email}",
    tag = "users",
    params(("email" = String, Path, description = "The user's email"), TenantParam),
    responses(
        (status = 200, body = UserView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
pub async fn get_user_by_email(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Query<TenantParam>,
    email: web::Path<String>,
) -> Result<web::Json<UserView>, Problem> {
    caller.require(Scope::Read)?;
    let tenant_id = tenant.resolve(&state.store, &caller).await?;
    let filter = UserFilter {
        email: Some(fold(&email)),
        ..UserFilter::default()
    };
    let page = pages::users(
        state.store.connection(),
        &tenant_id,
        &filter,
        &pages::Anchor::Start,
        1,
    )
    .await?;
    page.rows
        .first()
        .map(|u| web::Json(UserView::from(u)))
        .ok_or_else(|| Problem::not_found(format!("user {}", crate::domain::text::quoted(&email))))
}

/// The groups a user is a member of.
#[utoipa::path(
    get,
    path = "/api/v1/users/{id}/groups",
    tag = "users",
    params(("id" = String, Path, description = "The user's id"), TenantParam),
    responses(
        (status = 200, body = Vec<Group>),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
pub async fn user_groups(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Query<TenantParam>,
    id: web::Path<String>,
) -> Result<web::Json<Vec<Group>>, Problem> {
    caller.require(Scope::Read)?;
    let tenant_id = tenant.resolve(&state.store, &caller).await?;
    user_in(&state, &tenant_id, &id).await?;
    let groups = pages::groups_of_user(state.store.connection(), &id).await?;
    Ok(web::Json(groups.iter().map(Group::from).collect()))
}

/// A directory that links a user.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserDirectory {
    pub directory_id: String,
    /// The directory's own id for the user.
    pub source_id: String,
    pub external_id: Option<String>,
    /// Whether that directory says the user is active.
    pub directory_active: bool,
    /// Whether the directory removed the user (SCIM DELETE).
    pub removed: bool,
}

/// The directories that link a user.
#[utoipa::path(
    get,
    path = "/api/v1/users/{id}/directories",
    tag = "users",
    params(("id" = String, Path, description = "The user's id"), TenantParam),
    responses(
        (status = 200, body = Vec<UserDirectory>),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
pub async fn user_directories(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Query<TenantParam>,
    id: web::Path<String>,
) -> Result<web::Json<Vec<UserDirectory>>, Problem> {
    caller.require(Scope::Read)?;
    let tenant_id = tenant.resolve(&state.store, &caller).await?;
    user_in(&state, &tenant_id, &id).await?;
    let links = crate::store::app::links::links_of_users(
        state.store.connection(),
        std::slice::from_ref(&id),
    )
    .await?;
    Ok(web::Json(
        links
            .into_iter()
            .map(|l| UserDirectory {
                directory_id: l.directory_id,
                source_id: l.source_id,
                external_id: l.external_id,
                directory_active: l.directory_active,
                removed: l.removed_at.is_some(),
            })
            .collect(),
    ))
}

async fn act(
    state: &ApiState,
    caller: &Principal,
    tenant: &TenantParam,
    id: &str,
    action: Action,
) -> Result<HttpResponse, Problem> {
    caller.require(Scope::Write)?;
    let tenant_id = tenant.resolve(&state.store, caller).await?;
    let user = admin::act_on_user(
        &state.store,
        &tenant_id,
        &UserKey::Id(id.to_owned()),
        action,
    )
    .await?;
    Ok(HttpResponse::Ok().json(user))
}

/// The user signed in for the first time: `PENDING` → `ACTIVE` (sync never
/// touches this status again).
#[utoipa::path(
    post,
    path = "/api/v1/users/{id}/signed-in",
    tag = "users",
    params(("id" = String, Path, description = "The user's id"), TenantParam),
    responses(
        (status = 200, body = UserView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["write"]))
)]
pub async fn sign_in_user(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Query<TenantParam>,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    act(&state, &caller, &tenant, &id, Action::SignedIn).await
}

/// An admin of the host application deactivates the user: it stands
/// against every sync until an admin reactivates it.
#[utoipa::path(
    post,
    path = "/api/v1/users/{id}/deactivate",
    tag = "users",
    params(("id" = String, Path, description = "The user's id"), TenantParam),
    responses(
        (status = 200, body = UserView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["write"]))
)]
pub async fn deactivate_user(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Query<TenantParam>,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    act(&state, &caller, &tenant, &id, Action::Deactivate).await
}

/// An admin of the host application reactivates the user.
#[utoipa::path(
    post,
    path = "/api/v1/users/{id}/reactivate",
    tag = "users",
    params(("id" = String, Path, description = "The user's id"), TenantParam),
    responses(
        (status = 200, body = UserView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["write"]))
)]
pub async fn reactivate_user(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Query<TenantParam>,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    act(&state, &caller, &tenant, &id, Action::Reactivate).await
}

/// A user's new role.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    /// 1 to 200 printable characters, not only spaces.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^(?=.*\\S)[^\\x00-\\x1f\\x7f-\\x9f]+$"
    )]
    pub role: String,
}

/// Set the user's role (sync never changes it unless the directory's
/// policy maps groups to roles).
#[utoipa::path(
    put,
    path = "/api/v1/users/{id}/role",
    tag = "users",
    params(("id" = String, Path, description = "The user's id"), TenantParam),
    request_body = RoleChange,
    responses(
        (status = 200, body = UserView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["write"]))
)]
pub async fn set_user_role(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Query<TenantParam>,
    id: web::Path<String>,
    body: super::Body<RoleChange>,
) -> Result<HttpResponse, Problem> {
    let role = body.into_inner().role;
    act(&state, &caller, &tenant, &id, Action::SetRole(role)).await
}
