//! `/Groups`: create, get, list, search, replace, patch, delete. Members are
//! rows: they are read only when the response includes them (E15) and changed
//! by row operations, never by rewriting a list.

use std::collections::HashSet;

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
use super::patch::MemberChange;
use super::projection::Projection;
use super::resource::{self, MemberRef, Mode};
use super::schema::GROUP_RESOURCE;
use super::snapshot;
use super::users::SearchPage;
use super::write::{self, Failed};
use super::{ScimState, check_indexed_len, etag, json_response, now_ms, parse_id, render};
use crate::domain::names::GroupName;
use crate::reconcile::model::{GroupChange, MemberChanges};
use crate::reconcile::unit::Unit;
use crate::store::mirror::groups::{self as store_groups, Member, MirrorGroup, NewMember};
use crate::store::{Conn, StoreError};

fn group_row(
    directory_id: &str,
    id: &str,
    data: Map<String, Value>,
    version: i64,
    created_at: i64,
    updated_at: i64,
) -> Result<MirrorGroup, ScimError> {
    let name = data
        .get("displayName")
        .and_then(Value::as_str)
        .ok_or_else(|| ScimError::invalid_value("displayName is required"))?;
    let name = GroupName::parse(name).map_err(|e| ScimError::invalid_value(e.to_string()))?;
    let external_id = data
        .get("externalId")
        .and_then(Value::as_str)
        .map(str::to_owned);
    check_indexed_len("displayName", name.as_str())?;
    check_indexed_len("displayName", name.folded())?;
    check_indexed_len("externalId", external_id.as_deref().unwrap_or_default())?;
    Ok(MirrorGroup {
        id: id.to_owned(),
        directory_id: directory_id.to_owned(),
        display_name: name.as_str().to_owned(),
        display_name_folded: name.folded().to_owned(),
        external_id,
        data: Value::Object(data),
        version,
        created_at,
        updated_at,
    })
}

fn conflict_on_display_name(err: StoreError, group: &MirrorGroup) -> ScimError {
    match err {
        StoreError::Conflict(_) => ScimError::uniqueness(format!(
            "a group named {:?} already exists in this directory (compared case-insensitively)",
            group.display_name
        )),
        other => other.into(),
    }
}

async fn represent<C: Conn>(
    conn: &C,
    state: &ScimState,
    groups: &[MirrorGroup],
    projection: &Projection,
) -> Result<Vec<Value>, ScimError> {
    let members = if projection.wants("members") {
        let ids: Vec<String> = groups.iter().map(|g| g.id.clone()).collect();
        let rows = store_groups::members_of(conn, &ids).await?;
        Some(super::by_owner(rows, |m: &Member| &m.group_id))
    } else {
        None
    };
    Ok(groups
        .iter()
        .map(|g| {
            let mine = members
                .as_ref()
                .map(|all| all.get(&g.id).map_or(&[][..], Vec::as_slice));
            let mut out = render::group(&state.base_url, g, mine);
            projection.apply(&GROUP_RESOURCE, &mut out);
            Value::Object(out)
        })
        .collect())
}

fn projection_of(req: &HttpRequest) -> Result<Projection, ScimError> {
    let p = ProjectionParams::from_query(req.query_string());
    Projection::parse(
        &GROUP_RESOURCE,
        p.attributes.as_deref(),
        p.excluded_attributes.as_deref(),
    )
}

async fn respond<C: Conn>(
    conn: &C,
    state: &ScimState,
    group: &MirrorGroup,
    projection: &Projection,
    status: StatusCode,
) -> Result<HttpResponse, ScimError> {
    let body = represent(conn, state, std::slice::from_ref(group), projection)
        .await?
        .pop()
        .unwrap_or_default();
    let mut response = HttpResponse::build(status);
    response
        .content_type(super::CONTENT_TYPE)
        .insert_header((header::ETAG, etag::etag(group.version)));
    if status == StatusCode::CREATED {
        response.insert_header((
            header::LOCATION,
            render::group_location(&state.base_url, &group.id),
        ));
    }
    Ok(response.body(body.to_string()))
}

/// The members among `refs` that exist in this directory, with their types.
/// References to nothing (a deleted user, another directory's id, Microsoft's
/// test's `"string id 1"`, M7) are skipped: nothing outside the directory is
/// ever linked, and the client's other changes still apply. A group never
/// contains itself.
async fn existing_members<C: Conn>(
    conn: &C,
    directory_id: &str,
    group_id: &str,
    refs: &[MemberRef],
) -> Result<Vec<NewMember>, ScimError> {
    let mut seen = HashSet::new();
    let wanted: Vec<(String, Option<String>)> = refs
        .iter()
        .filter_map(|r| {
            let id = uuid::Uuid::parse_str(&r.value)
                .ok()?
                .hyphenated()
                .to_string();
            Some((id, r.display.clone()))
        })
        .filter(|(id, _)| id != group_id && seen.insert(id.clone()))
        .collect();
    let ids: Vec<String> = wanted.iter().map(|(id, _)| id.clone()).collect();
    let found = store_groups::resolve_members(conn, directory_id, &ids).await?;
    let skipped = refs.len() - found.len();
    if skipped > 0 {
        tracing::debug!(
            skipped,
            "member references that name nothing in this directory were skipped"
        );
    }
    Ok(wanted
        .into_iter()
        .filter_map(|(id, display)| {
            found.get(&id).map(|kind| NewMember {
                id,
                kind: *kind,
                display,
            })
        })
        .collect())
}

/// Apply membership changes in order. Returns how many rows changed, and the
/// directory users whose membership may have changed (for the engine).
async fn apply_member_changes<C: Conn>(
    conn: &C,
    directory_id: &str,
    group_id: &str,
    changes: &[MemberChange],
    now: i64,
) -> Result<(u64, Vec<String>), ScimError> {
    let mut changed = 0;
    let mut touched: Vec<String> = Vec::new();
    for change in changes {
        changed += match change {
            // Only members whose membership changes are touched: the
            // engine hears of no add of a member or removal of a stranger.
            MemberChange::Add(refs) => {
                let members = existing_members(conn, directory_id, group_id, refs).await?;
                let ids: Vec<String> = members.iter().map(|m| m.id.clone()).collect();
                let present = store_groups::members_among(conn, group_id, &ids).await?;
                touched.extend(ids.into_iter().filter(|id| !present.contains(id)));
                store_groups::add_members(conn, directory_id, group_id, &members, now).await?
            }
            MemberChange::Remove(ids) => {
                let present = store_groups::members_among(conn, group_id, ids).await?;
                touched.extend(present);
                store_groups::remove_members(conn, group_id, ids).await?
            }
            MemberChange::RemoveWhere(filter) => {
                touched.extend(store_groups::member_ids(conn, group_id).await?);
                store_groups::remove_members_where(conn, group_id, filter).await?
            }
            MemberChange::RemoveAll => {
                touched.extend(store_groups::member_ids(conn, group_id).await?);
                store_groups::remove_all_members(conn, group_id).await?
            }
            MemberChange::Replace(refs) => {
                // Diff against the current members so an identical list is a
                // no-op (Okta re-pushes the full list, O9) and only the
                // difference is written.
                let wanted = existing_members(conn, directory_id, group_id, refs).await?;
                let current = store_groups::member_ids(conn, group_id).await?;
                let wanted_ids: HashSet<&str> = wanted.iter().map(|m| m.id.as_str()).collect();
                let gone: Vec<String> = current
                    .iter()
                    .filter(|id| !wanted_ids.contains(id.as_str()))
                    .cloned()
                    .collect();
                let new: Vec<NewMember> = wanted
                    .into_iter()
                    .filter(|m| !current.contains(&m.id))
                    .collect();
                touched.extend(gone.iter().cloned());
                touched.extend(new.iter().map(|m| m.id.clone()));
                store_groups::remove_members(conn, group_id, &gone).await?
                    + store_groups::add_members(conn, directory_id, group_id, &new, now).await?
            }
        };
    }
    touched.sort();
    touched.dedup();
    Ok((changed, touched))
}

/// Split the touched directory users by where the mirror left them: the
/// final state decides, whatever order the operations came in.
async fn member_changes<C: Conn>(
    conn: &C,
    group_id: &str,
    touched: Vec<String>,
) -> Result<MemberChanges, ScimError> {
    let present = store_groups::members_among(conn, group_id, &touched).await?;
    let (added, removed) = touched.into_iter().partition(|id| present.contains(id));
    Ok(MemberChanges { added, removed })
}

/// Create a group and its members in one transaction (POST, or a Bulk POST).
pub(super) async fn create(
    state: &ScimState,
    caller: &Caller,
    body: &Value,
) -> Result<MirrorGroup, ScimError> {
    let canonical = resource::canonicalize(&GROUP_RESOURCE, body, Mode::Create)?;
    let now = now_ms();
    let id = uuid::Uuid::now_v7().to_string();
    let row = group_row(&caller.directory_id, &id, canonical.data, 1, now, now)?;
    let refs = canonical.members;
    let directory_id = caller.directory_id.clone();
    let job = write::job(move |unit: &mut Unit| {
        let (row, refs) = (row.clone(), refs.clone());
        let directory_id = directory_id.clone();
        Box::pin(async move {
            let saved = store_groups::insert_group(unit.conn(), row.clone())
                .await
                .map_err(|e| conflict_on_display_name(e, &row))?;
            let id = &saved.id;
            if let Some(refs) = &refs {
                let members = existing_members(unit.conn(), &directory_id, id, refs).await?;
                let now = unit.now();
                store_groups::add_members(unit.conn(), &directory_id, id, &members, now).await?;
            }
            // A new app group adopts the members its directory group has
            // in the mirror.
            let change = GroupChange::Upsert(snapshot::group(&saved));
            let members = MemberChanges::default();
            snapshot::group_changed(unit, &directory_id, id, change, members);
            Ok(saved)
        })
    });
    write::write(state, None, job).await
}

#[instrument(skip_all, fields(directory_id = %caller.directory_id))]
pub async fn create_group(
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
        &saved,
        &projection,
        StatusCode::CREATED,
    )
    .await
}

#[instrument(skip_all, fields(directory_id = %caller.directory_id))]
pub async fn get_group(
    state: web::Data<ScimState>,
    caller: Caller,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ScimError> {
    let id = parse_id(&id)?;
    let projection = projection_of(&req)?;
    let conn = state.store.connection();
    let group = store_groups::find_group(conn, &caller.directory_id, &id).await?;
    if etag::not_modified(&req, group.version) {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, etag::etag(group.version)))
            .finish());
    }
    respond(conn, &state, &group, &projection, StatusCode::OK).await
}

/// Groups for the root `/.search`, at an explicit offset and limit.
pub async fn search_page(
    state: &ScimState,
    caller: &Caller,
    params: &ListParams,
    offset: u64,
    limit: u64,
) -> Result<SearchPage, ScimError> {
    let mut plan = list::plan(&GROUP_RESOURCE, params, &state.settings)?;
    plan.query.page = crate::store::mirror::list::Window::Offset { offset, limit };
    let projection = Projection::parse(
        &GROUP_RESOURCE,
        params.attributes.as_deref(),
        params.excluded_attributes.as_deref(),
    )?;
    let conn = state.store.connection();
    let listing = store_groups::list_groups(conn, &caller.directory_id, &plan.query).await?;
    let resources = represent(conn, state, &listing.items, &projection).await?;
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
    let plan = list::plan(&GROUP_RESOURCE, &params, &state.settings)?;
    let projection = Projection::parse(
        &GROUP_RESOURCE,
        params.attributes.as_deref(),
        params.excluded_attributes.as_deref(),
    )?;
    let conn = state.store.connection();
    let mut listing = store_groups::list_groups(conn, &caller.directory_id, &plan.query).await?;
    let next = list::next_cursor(&plan, &mut listing.items, |g| g.id.clone());
    let resources = represent(conn, state, &listing.items, &projection).await?;
    let body = list::list_response(listing.total, resources, &plan.paging, next);
    Ok(json_response(StatusCode::OK, &body))
}

#[instrument(skip_all, fields(directory_id = %caller.directory_id))]
pub async fn list_groups(
    state: web::Data<ScimState>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, ScimError> {
    let params = ListParams::from_query(req.query_string())?;
    list(&state, &caller, params).await
}

#[instrument(skip_all, fields(directory_id = %caller.directory_id))]
pub async fn search_groups(
    state: web::Data<ScimState>,
    caller: Caller,
    body: ScimBody,
) -> Result<HttpResponse, ScimError> {
    let params = ListParams::from_search(&body.0)?;
    list(&state, &caller, params).await
}

/// Read, change (data and members) and conditionally write a group in one
/// job; again when a concurrent writer won (without If-Match).
async fn modify(
    state: &ScimState,
    caller: &Caller,
    if_match: Option<&str>,
    id: &str,
    change: impl Fn(&MirrorGroup) -> Result<(Map<String, Value>, Vec<MemberChange>), ScimError>
    + Send
    + Sync
    + 'static,
) -> Result<MirrorGroup, ScimError> {
    let change = std::sync::Arc::new(change);
    let (id, directory_id) = (id.to_owned(), caller.directory_id.clone());
    let if_match_owned = if_match.map(str::to_owned);
    let job = write::job(move |unit: &mut Unit| {
        let (change, directory_id) = (change.clone(), directory_id.clone());
        let (id, if_match) = (id.clone(), if_match_owned.clone());
        Box::pin(async move {
            let current = store_groups::find_group(unit.conn(), &directory_id, &id).await?;
            etag::check_if_match(if_match.as_deref(), current.version)?;
            let (data, changes) = change(&current)?;
            let now = unit.now().max(current.updated_at);
            let (members_changed, touched) =
                apply_member_changes(unit.conn(), &directory_id, &id, &changes, now).await?;
            let data_changed = Value::Object(data.clone()) != current.data;
            if !data_changed && members_changed == 0 {
                // Nothing changed: no new version (idempotent re-sends).
                return Ok(current);
            }
            let next = group_row(
                &directory_id,
                &id,
                data,
                current.version + 1,
                current.created_at,
                now,
            )?;
            store_groups::update_group(unit.conn(), &next, current.version)
                .await
                .map_err(|err| match err {
                    StoreError::VersionMismatch => Failed::Raced,
                    other => conflict_on_display_name(other, &next).into(),
                })?;
            let members = member_changes(unit.conn(), &id, touched).await?;
            let change = GroupChange::Upsert(snapshot::group(&next));
            snapshot::group_changed(unit, &directory_id, &id, change, members);
            Ok(next)
        })
    });
    write::write(state, if_match, job).await
}

/// Replace a group and its members (PUT, or a Bulk PUT).
pub(super) async fn replace(
    state: &ScimState,
    caller: &Caller,
    id: &str,
    body: &Value,
    if_match: Option<&str>,
) -> Result<MirrorGroup, ScimError> {
    let canonical = resource::canonicalize(&GROUP_RESOURCE, body, Mode::Replace)?;
    if let Some(echoed) = &canonical.echoed_id
        && !echoed.eq_ignore_ascii_case(id)
    {
        return Err(ScimError::mutability(format!(
            "id {echoed:?} in the body does not match the resource {id}; id cannot change"
        )));
    }
    // PUT replaces: members absent from the body means no members.
    let members = MemberChange::Replace(canonical.members.clone().unwrap_or_default());
    let data = canonical.data;
    modify(state, caller, if_match, id, move |_| {
        Ok((data.clone(), vec![members.clone()]))
    })
    .await
}

/// Patch a group (PATCH, or a Bulk PATCH).
pub(super) async fn patch(
    state: &ScimState,
    caller: &Caller,
    id: &str,
    body: &Value,
    if_match: Option<&str>,
) -> Result<MirrorGroup, ScimError> {
    let ops = patch_op::parse(&GROUP_RESOURCE, body)?;
    modify(state, caller, if_match, id, move |current| {
        let mut data = current.data.as_object().cloned().unwrap_or_default();
        let changes = patch_op::apply(&GROUP_RESOURCE, &current.id, &mut data, &ops)?;
        Ok((data, changes))
    })
    .await
}

/// Delete a group (DELETE, or a Bulk DELETE).
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
            let current = store_groups::find_group(unit.conn(), &directory_id, &id).await?;
            etag::check_if_match(if_match.as_deref(), current.version)?;
            store_groups::delete_group(unit.conn(), &directory_id, &id, unit.now()).await?;
            let removed = GroupChange::Removed;
            let members = MemberChanges::default();
            snapshot::group_changed(unit, &directory_id, &id, removed, members);
            Ok(())
        })
    });
    write::write(state, if_match, job).await
}

#[instrument(skip_all, fields(directory_id = %caller.directory_id))]
pub async fn replace_group(
    state: web::Data<ScimState>,
    caller: Caller,
    req: HttpRequest,
    id: web::Path<String>,
    body: ScimBody,
) -> Result<HttpResponse, ScimError> {
    let id = parse_id(&id)?;
    let projection = projection_of(&req)?;
    let group = replace(
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
        &group,
        &projection,
        StatusCode::OK,
    )
    .await
}

#[instrument(skip_all, fields(directory_id = %caller.directory_id))]
pub async fn patch_group(
    state: web::Data<ScimState>,
    caller: Caller,
    req: HttpRequest,
    id: web::Path<String>,
    body: ScimBody,
) -> Result<HttpResponse, ScimError> {
    let id = parse_id(&id)?;
    let projection = projection_of(&req)?;
    let group = patch(
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
        &group,
        &projection,
        StatusCode::OK,
    )
    .await
}

#[instrument(skip_all, fields(directory_id = %caller.directory_id))]
pub async fn delete_group(
    state: web::Data<ScimState>,
    caller: Caller,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ScimError> {
    let id = parse_id(&id)?;
    delete(&state, &caller, &id, etag::if_match(&req).as_deref()).await?;
    Ok(HttpResponse::NoContent().finish())
}
