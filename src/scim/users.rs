//! `/Users`: create, get, list, search, replace, patch, delete.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Map, Value};
use tracing::instrument;

use super::auth::Caller;
use super::body::ScimBody;
use super::error::ScimError;
use super::list::{self, ListParams, ProjectionParams};
use super::patch as patch_op;
use super::projection::Projection;
use super::resource::{self, Mode};
use super::schema::USER_RESOURCE;
use super::snapshot;
use super::write::{self, Failed};
use super::{ScimState, check_indexed_len, etag, json_response, now_ms, parse_id, render};
use crate::domain::names::UserName;
use crate::reconcile::unit::Unit;
use crate::store::mirror::users::{self as store_users, GroupOfUser, MirrorUser};
use crate::store::{Conn, StoreError};

/// RFC 7643 §4.1.1 leaves an absent `active` to the provider: an IdP that
/// provisions a user without saying otherwise means an active one. The default
/// is written on create and replace (POST, PUT), so the representation shows
/// what filters match; a PATCH that removes `active` is honoured (RFC 7644
/// §3.5.2.2, scim2-tester's check_remove_attribute).
fn default_active(data: &mut Map<String, Value>) {
    if !data.contains_key("active") {
        data.insert("active".into(), Value::Bool(true));
    }
}

/// The row for a user from its canonical data.
pub(super) fn user_row(
    directory_id: &str,
    id: &str,
    data: Map<String, Value>,
    version: i64,
    created_at: i64,
    updated_at: i64,
) -> Result<MirrorUser, ScimError> {
    let user_name = data
        .get("userName")
        .and_then(Value::as_str)
        .ok_or_else(|| ScimError::invalid_value("userName is required"))?;
    let user_name =
        UserName::parse(user_name).map_err(|e| ScimError::invalid_value(e.to_string()))?;
    let text = |key: &str| data.get(key).and_then(Value::as_str).map(str::to_owned);
    let external_id = text("externalId");
    let primary_email = primary_email(&data);
    check_indexed_len("userName", user_name.as_str())?;
    check_indexed_len("userName", user_name.folded())?;
    check_indexed_len("externalId", external_id.as_deref().unwrap_or_default())?;
    check_indexed_len(
        "the primary emails.value",
        primary_email.as_deref().unwrap_or_default(),
    )?;
    Ok(MirrorUser {
        id: id.to_owned(),
        directory_id: directory_id.to_owned(),
        user_name: user_name.as_str().to_owned(),
        user_name_folded: user_name.folded().to_owned(),
        external_id,
        display_name: text("displayName"),
        primary_email,
        active: data.get("active").and_then(Value::as_bool).unwrap_or(true),
        data: Value::Object(data),
        version,
        created_at,
        updated_at,
    })
}

/// The primary email (or the first, as OneLogin may flag none, L11), folded.
fn primary_email(data: &Map<String, Value>) -> Option<String> {
    let emails = data.get("emails")?.as_array()?;
    let primary = emails
        .iter()
        .find(|e| e.get("primary").and_then(Value::as_bool) == Some(true))
        .or_else(|| emails.first())?;
    primary
        .get("value")
        .and_then(Value::as_str)
        .map(crate::domain::names::fold)
}

/// A unique-index refusal is the client's duplicate userName (409 uniqueness).
pub(super) fn conflict_on_user_name(err: StoreError, user: &MirrorUser) -> ScimError {
    match err {
        StoreError::Conflict(_) => ScimError::uniqueness(format!(
            "userName {:?} is already taken in this directory (compared case-insensitively)",
            user.user_name
        )),
        other => other.into(),
    }
}

/// Render users with their groups (read in one query when wanted) and apply
/// the projection.
pub(super) async fn represent<C: Conn>(
    conn: &C,
    state: &ScimState,
    caller: &Caller,
    users: &[MirrorUser],
    projection: &Projection,
) -> Result<Vec<Value>, ScimError> {
    let groups = if projection.wants("groups") {
        let ids: Vec<String> = users.iter().map(|u| u.id.clone()).collect();
        let rows = store_users::groups_of_users(conn, &caller.directory_id, &ids).await?;
        Some(super::by_owner(rows, |g: &GroupOfUser| &g.member_id))
    } else {
        None
    };
    Ok(users
        .iter()
        .map(|u| {
            let mine = groups
                .as_ref()
                .map(|all| all.get(&u.id).map_or(&[][..], Vec::as_slice));
            let mut out = render::user(&state.base_url, u, mine);
            projection.apply(&USER_RESOURCE, &mut out);
            Value::Object(out)
        })
        .collect())
}

fn projection_of(req: &HttpRequest) -> Result<Projection, ScimError> {
    let p = ProjectionParams::from_query(req.query_string());
    Projection::parse(
        &USER_RESOURCE,
        p.attributes.as_deref(),
        p.excluded_attributes.as_deref(),
    )
}

/// One resource response: status, body, `ETag`, and `Location` on create.
async fn respond<C: Conn>(
    conn: &C,
    state: &ScimState,
    caller: &Caller,
    user: &MirrorUser,
    projection: &Projection,
    status: StatusCode,
) -> Result<HttpResponse, ScimError> {
    let body = represent(conn, state, caller, std::slice::from_ref(user), projection)
        .await?
        .pop()
        .unwrap_or_default();
    let mut response = HttpResponse::build(status);
    response
        .content_type(super::CONTENT_TYPE)
        .insert_header((header::ETAG, etag::etag(user.version)));
    if status == StatusCode::CREATED {
        response.insert_header((
            header::LOCATION,
            render::user_location(&state.base_url, &user.id),
        ));
    }
    Ok(response.body(body.to_string()))
}

/// Create a user from a request body (POST, or a Bulk POST).
pub(super) async fn create(
    state: &ScimState,
    caller: &Caller,
    body: &Value,
) -> Result<MirrorUser, ScimError> {
    let mut canonical = resource::canonicalize(&USER_RESOURCE, body, Mode::Create)?;
    default_active(&mut canonical.data);
    let now = now_ms();
    let id = uuid::Uuid::now_v7().to_string();
    let row = user_row(&caller.directory_id, &id, canonical.data, 1, now, now)?;
    let job = write::job(move |unit: &mut Unit| {
        let row = row.clone();
        Box::pin(async move {
            let saved = store_users::insert_user(unit.conn(), row.clone())
                .await
                .map_err(|e| conflict_on_user_name(e, &row))?;
            snapshot::user_written(unit, &saved);
            Ok(saved)
        })
    });
    write::write(state, None, job).await
}

#[instrument(skip_all, fields(directory_id = %caller.directory_id))]
pub async fn create_user(
    state: web::Data<ScimState>,
    caller: Caller,
    req: HttpRequest,
    body: ScimBody,
) -> Result<HttpResponse, ScimError> {
    let projection = projection_of(&req)?;
    let saved = create(&state, &caller, &body.0).await?;
    respond(
        state.store.connection(),
        &state,
        &caller,
        &saved,
        &projection,
        StatusCode::CREATED,
    )
    .await
}

#[instrument(skip_all, fields(directory_id = %caller.directory_id))]
pub async fn get_user(
    state: web::Data<ScimState>,
    caller: Caller,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ScimError> {
    let id = parse_id(&id)?;
    let projection = projection_of(&req)?;
    let conn = state.store.connection();
    let user = store_users::find_user(conn, &caller.directory_id, &id).await?;
    if etag::not_modified(&req, user.version) {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, etag::etag(user.version)))
            .finish());
    }
    respond(conn, &state, &caller, &user, &projection, StatusCode::OK).await
}

/// A page of users as representations (shared by list, search and root search).
pub struct SearchPage {
    pub total: u64,
    pub resources: Vec<Value>,
}

/// Users for the root `/.search`, at an explicit offset and limit.
pub async fn search_page(
    state: &ScimState,
    caller: &Caller,
    params: &ListParams,
    offset: u64,
    limit: u64,
) -> Result<SearchPage, ScimError> {
    let mut plan = list::plan(&USER_RESOURCE, params, &state.settings)?;
    plan.query.page = crate::store::mirror::list::Window::Offset { offset, limit };
    let projection = Projection::parse(
        &USER_RESOURCE,
        params.attributes.as_deref(),
        params.excluded_attributes.as_deref(),
    )?;
    let conn = state.store.connection();
    let listing = store_users::list_users(conn, &caller.directory_id, &plan.query).await?;
    let resources = represent(conn, state, caller, &listing.items, &projection).await?;
    Ok(SearchPage {
        total: listing.total,
        resources,
    })
}

async fn list(
    state: &ScimState,
    caller: &Caller,
    params: ListParams,
) -> Result<HttpResponse, ScimError> {
    let plan = list::plan(&USER_RESOURCE, &params, &state.settings)?;
    let projection = Projection::parse(
        &USER_RESOURCE,
        params.attributes.as_deref(),
        params.excluded_attributes.as_deref(),
    )?;
    let conn = state.store.connection();
    let mut listing = store_users::list_users(conn, &caller.directory_id, &plan.query).await?;
    let next = list::next_cursor(&plan, &mut listing.items, |u| u.id.clone());
    let resources = represent(conn, state, caller, &listing.items, &projection).await?;
    let body = list::list_response(listing.total, resources, &plan.paging, next);
    Ok(json_response(StatusCode::OK, &body))
}

#[instrument(skip_all, fields(directory_id = %caller.directory_id))]
pub async fn list_users(
    state: web::Data<ScimState>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, ScimError> {
    let params = ListParams::from_query(req.query_string())?;
    list(&state, &caller, params).await
}

#[instrument(skip_all, fields(directory_id = %caller.directory_id))]
pub async fn search_users(
    state: web::Data<ScimState>,
    caller: Caller,
    body: ScimBody,
) -> Result<HttpResponse, ScimError> {
    let params = ListParams::from_search(&body.0)?;
    list(&state, &caller, params).await
}

/// Read, change and conditionally write a user, again when a concurrent
/// writer got there first (without If-Match). `change` returns the new
/// canonical data, or None when nothing changes.
async fn modify(
    state: &ScimState,
    caller: &Caller,
    if_match: Option<&str>,
    id: &str,
    change: impl Fn(&MirrorUser) -> Result<Option<Map<String, Value>>, ScimError>
    + Send
    + Sync
    + 'static,
) -> Result<MirrorUser, ScimError> {
    let change = std::sync::Arc::new(change);
    let (id, directory_id) = (id.to_owned(), caller.directory_id.clone());
    let if_match_owned = if_match.map(str::to_owned);
    let job = write::job(move |unit: &mut Unit| {
        let (change, directory_id) = (change.clone(), directory_id.clone());
        let (id, if_match) = (id.clone(), if_match_owned.clone());
        Box::pin(async move {
            let current = store_users::find_user(unit.conn(), &directory_id, &id).await?;
            etag::check_if_match(if_match.as_deref(), current.version)?;
            let next = match change(&current)? {
                // Nothing changed: no new version, no write (idempotent
                // re-sends); the engine still sees the user.
                Some(data) if Value::Object(data.clone()) != current.data => user_row(
                    &directory_id,
                    &id,
                    data,
                    current.version + 1,
                    current.created_at,
                    now_ms().max(current.updated_at),
                )?,
                _ => {
                    snapshot::user_written(unit, &current);
                    return Ok(current);
                }
            };
            store_users::update_user(unit.conn(), &next, current.version)
                .await
                .map_err(|err| match err {
                    StoreError::VersionMismatch => Failed::Raced,
                    other => conflict_on_user_name(other, &next).into(),
                })?;
            snapshot::user_written(unit, &next);
            Ok(next)
        })
    });
    write::write(state, if_match, job).await
}

/// Replace a user (PUT, or a Bulk PUT).
pub(super) async fn replace(
    state: &ScimState,
    caller: &Caller,
    id: &str,
    body: &Value,
    if_match: Option<&str>,
) -> Result<MirrorUser, ScimError> {
    let canonical = resource::canonicalize(&USER_RESOURCE, body, Mode::Replace)?;
    // RFC 7643 §3.1: id is readOnly and assigned by the provider; a PUT may
    // echo it (Okta does, O5) but never change it.
    if let Some(echoed) = &canonical.echoed_id
        && !echoed.eq_ignore_ascii_case(id)
    {
        return Err(ScimError::mutability(format!(
            "id {echoed:?} in the body does not match the resource {id}; id cannot change"
        )));
    }
    // PUT replaces the whole resource, so the create-time default applies
    // (RFC 7644 §3.5.1 lets the provider assign defaults to omitted attributes).
    let mut data = canonical.data;
    default_active(&mut data);
    modify(state, caller, if_match, id, move |_| Ok(Some(data.clone()))).await
}

/// Patch a user (PATCH, or a Bulk PATCH).
pub(super) async fn patch(
    state: &ScimState,
    caller: &Caller,
    id: &str,
    body: &Value,
    if_match: Option<&str>,
) -> Result<MirrorUser, ScimError> {
    let ops = patch_op::parse(&USER_RESOURCE, body)?;
    modify(state, caller, if_match, id, move |current| {
        let mut data = current.data.as_object().cloned().unwrap_or_default();
        let changes = patch_op::apply(&USER_RESOURCE, &current.id, &mut data, &ops)?;
        if !changes.is_empty() {
            return Err(ScimError::invalid_path("users have no members"));
        }
        Ok(Some(data))
    })
    .await
}

/// Delete a user (DELETE, or a Bulk DELETE).
pub(super) async fn delete(
    state: &ScimState,
    caller: &Caller,
    id: &str,
    if_match: Option<&str>,
) -> Result<(), ScimError> {
    let (id, directory_id) = (id.to_owned(), caller.directory_id.clone());
    let if_match_owned = if_match.map(str::to_owned);
    let job = write::job(move |unit: &mut Unit| {
        let (directory_id, id) = (directory_id.clone(), id.clone());
        let if_match = if_match_owned.clone();
        Box::pin(async move {
            let current = store_users::find_user(unit.conn(), &directory_id, &id).await?;
            etag::check_if_match(if_match.as_deref(), current.version)?;
            // The directory's groups lose the user in the mirror; the app
            // groups follow.
            let ids = [id.clone()];
            let groups = store_users::groups_of_users(unit.conn(), &directory_id, &ids).await?;
            store_users::delete_user(unit.conn(), &directory_id, &id, unit.now()).await?;
            let groups: Vec<String> = groups.into_iter().map(|g| g.group_id).collect();
            snapshot::user_removed(unit, &directory_id, &id, &groups);
            Ok(())
        })
    });
    write::write(state, if_match, job).await
}

#[instrument(skip_all, fields(directory_id = %caller.directory_id))]
pub async fn replace_user(
    state: web::Data<ScimState>,
    caller: Caller,
    req: HttpRequest,
    id: web::Path<String>,
    body: ScimBody,
) -> Result<HttpResponse, ScimError> {
    let id = parse_id(&id)?;
    let projection = projection_of(&req)?;
    let user = replace(
        &state,
        &caller,
        &id,
        &body.0,
        etag::if_match(&req).as_deref(),
    )
    .await?;
    respond(
        state.store.connection(),
        &state,
        &caller,
        &user,
        &projection,
        StatusCode::OK,
    )
    .await
}

#[instrument(skip_all, fields(directory_id = %caller.directory_id))]
pub async fn patch_user(
    state: web::Data<ScimState>,
    caller: Caller,
    req: HttpRequest,
    id: web::Path<String>,
    body: ScimBody,
) -> Result<HttpResponse, ScimError> {
    let id = parse_id(&id)?;
    let projection = projection_of(&req)?;
    let user = patch(
        &state,
        &caller,
        &id,
        &body.0,
        etag::if_match(&req).as_deref(),
    )
    .await?;
    respond(
        state.store.connection(),
        &state,
        &caller,
        &user,
        &projection,
        StatusCode::OK,
    )
    .await
}

#[instrument(skip_all, fields(directory_id = %caller.directory_id))]
pub async fn delete_user(
    state: web::Data<ScimState>,
    caller: Caller,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ScimError> {
    let id = parse_id(&id)?;
    delete(&state, &caller, &id, etag::if_match(&req).as_deref()).await?;
    Ok(HttpResponse::NoContent().finish())
}
