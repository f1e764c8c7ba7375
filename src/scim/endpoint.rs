//! `/Users` and `/Groups` served by one set of handlers (create, get,
//! replace, patch, delete; list and search are `page`'s), generic over
//! [`Endpoint`]; what a resource does that is its own (its row, how it is
//! written and handed to the engine, its members, its rendering) is its
//! `Endpoint` impl in `users.rs` / `groups.rs`. No `sea_orm`: rows are read
//! and written through `store` functions.

use std::future::Future;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::future::BoxFuture;
use futures_util::{StreamExt, stream};
use serde_json::{Map, Value};
use tracing::instrument;

use super::auth::Caller;
use super::body::ScimBody;
use super::error::ScimError;
use super::list::ProjectionParams;
use super::patch::{self as patch_op, MemberChange};
use super::projection::Projection;
use super::render::Parts;
use super::representation::{Context, Representation};
use super::resource::{self, Canonical, Mode};
use super::schema::ResourceType;
use super::write::{self, Failed};
use super::{ScimState, etag, now_ms, parse_id};
use crate::reconcile::unit::Unit;
use crate::store::mirror::Chunk;
use crate::store::mirror::list::{ListQuery, Matches};
use crate::store::{Conn, StoreError};

/// What a PUT or PATCH makes of a resource: its new canonical data, and the
/// membership changes, in operation order (only a group has members).
#[derive(Debug, Clone)]
pub struct Edit {
    pub data: Map<String, Value>,
    pub members: Vec<MemberChange>,
}

/// A SCIM resource type as the handlers serve it: its mirror row, how the
/// row is read, rendered and written. The write methods run inside a job of
/// the group-commit writer (`scim::write`) and hand the change to the engine
/// on the job's unit.
pub trait Endpoint: Send + Sync + 'static {
    /// The mirror row (`store::users::User`, `store::groups::Group`).
    type Row: Clone + Send + Sync + 'static;
    /// What a POST writes (the row, and a group's member references).
    type New: Clone + Send + Sync + 'static;

    const TYPE: &'static ResourceType;

    fn id(row: &Self::Row) -> &str;
    fn version(row: &Self::Row) -> i64;
    /// The canonical JSON the row keeps.
    fn data(row: &Self::Row) -> &Value;
    /// The resource's URL, for `Location` and `meta.location`.
    fn location(base_url: &str, id: &str) -> String;

    /// The directory's resource `id` (`NotFound` when it has none).
    fn find<C: Conn>(
        conn: &C,
        directory_id: &str,
        id: &str,
    ) -> impl Future<Output = Result<Self::Row, StoreError>> + Send;
    /// A page of the directory's resources, as `query` filters, sorts and pages them.
    fn list<C: Conn>(
        conn: &C,
        directory_id: &str,
        query: &ListQuery,
    ) -> impl Future<Output = Result<Matches<Self::Row>, StoreError>> + Send;
    /// What a representation carries from another table (a user's groups, a
    /// group's members): read only when the projection wants
    /// [`Self::RELATED`], and then a chunk at a time, written as it is read
    /// (`scim::representation`), since a resource may have any number.
    type Related: Send + Sync + 'static;
    const RELATED: &'static str;
    /// Whether a resource just created can have related rows (a group's
    /// members can; a user under a fresh id belongs to no group yet, so its
    /// 201 reads nothing).
    const CREATED_WITH_RELATED: bool;
    /// One chunk of the related rows of the resources `chunk.owners`, in
    /// ([`Self::owner`], [`Self::related_key`]) order.
    fn related<C: Conn>(
        conn: &C,
        directory_id: &str,
        chunk: Chunk<'_>,
    ) -> impl Future<Output = Result<Vec<Self::Related>, StoreError>> + Send;
    /// The id of the resource a related row belongs to.
    fn owner(related: &Self::Related) -> &str;
    /// A related row's place among its resource's (unique there), which
    /// the next chunk starts after.
    fn related_key(related: &Self::Related) -> &str;
    /// The representation without its related rows: the attributes before
    /// them and after them.
    fn render(base_url: &str, row: &Self::Row) -> Parts;
    /// One element of [`Self::RELATED`].
    fn render_related(base_url: &str, related: &Self::Related) -> Value;

    /// A POST's new resource, from its canonical body.
    fn new_resource(
        directory_id: &str,
        id: &str,
        canonical: Canonical,
        now: i64,
    ) -> Result<Self::New, ScimError>;
    /// Write the new resource on the job's unit and hand it to the engine.
    fn insert(
        unit: &mut Unit,
        new: &Self::New,
    ) -> impl Future<Output = Result<Self::Row, Failed>> + Send;
    /// What a PUT's canonical body replaces the resource with.
    fn replacement(canonical: Canonical) -> Edit;
    /// Write `edit` over `current` (no new version when it changes nothing).
    fn update(
        unit: &mut Unit,
        current: Self::Row,
        edit: Edit,
    ) -> impl Future<Output = Result<Self::Row, Failed>> + Send;
    /// Delete `current` on the job's unit and tell the engine it is gone.
    fn remove(
        unit: &mut Unit,
        current: Self::Row,
    ) -> impl Future<Output = Result<(), Failed>> + Send;
}

fn projection_of<E: Endpoint>(req: &HttpRequest) -> Result<Projection, ScimError> {
    let p = ProjectionParams::from_query(req.query_string());
    Projection::parse(
        E::TYPE,
        p.attributes.as_deref(),
        p.excluded_attributes.as_deref(),
    )
}

/// One resource response: status, body, `ETag`, and `Location` on create.
/// The body is sized when the representation is complete after its first
/// chunk of related rows; a larger one (a group of thousands of members) is
/// streamed as its rows are read, so a failure past that first chunk can
/// only end the stream: it is logged and the connection closed before the
/// body ends, so the client sees a broken response rather than a short one.
async fn respond<E: Endpoint>(
    state: &web::Data<ScimState>,
    caller: &Caller,
    row: &E::Row,
    projection: Projection,
    status: StatusCode,
) -> Result<HttpResponse, ScimError> {
    let created = status == StatusCode::CREATED;
    let ctx = Context::<E>::new(state.clone(), &caller.directory_id, projection, created);
    let mut representation = Representation::of(&ctx, row).await?;
    let mut first = Vec::new();
    let complete = representation.write(&ctx, &mut first).await?;
    let mut response = HttpResponse::build(status);
    response
        .content_type(super::CONTENT_TYPE)
        .insert_header((header::ETAG, etag::etag(E::version(row))));
    if created {
        response.insert_header((header::LOCATION, E::location(&state.base_url, E::id(row))));
    }
    if complete {
        return Ok(response.body(first));
    }
    let rest = stream::unfold(Some((ctx, representation)), |writing| async move {
        let (ctx, mut representation) = writing?;
        let mut out = Vec::new();
        match representation.write(&ctx, &mut out).await {
            Ok(true) => Some((Ok(Bytes::from(out)), None)),
            Ok(false) => Some((Ok(Bytes::from(out)), Some((ctx, representation)))),
            Err(err) => {
                tracing::error!(detail = %err.detail, "a resource response failed after it began");
                Some((Err(std::io::Error::other(err.detail)), None))
            }
        }
    });
    let first = stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(first)) });
    Ok(response.streaming(first.chain(rest)))
}

/// Create a resource from a request body (POST, or a Bulk POST).
pub async fn create<E: Endpoint>(
    state: &ScimState,
    caller: &Caller,
    body: &Value,
) -> Result<E::Row, ScimError> {
    let canonical = resource::canonicalize(E::TYPE, body, Mode::Create)?;
    let now = now_ms();
    let id = uuid::Uuid::now_v7().to_string();
    let new = E::new_resource(&caller.directory_id, &id, canonical, now)?;
    let job = write::job(move |unit: &mut Unit| {
        let new = new.clone();
        Box::pin(async move { E::insert(unit, &new).await })
    });
    write::write(state, caller, None, job).await
}

/// A write on the resource `id` as the job reads it, if it is still the
/// version If-Match names; again with a fresh read when a concurrent writer
/// got there first (without If-Match).
async fn write_current<E, T, S>(
    state: &ScimState,
    caller: &Caller,
    if_match: Option<&str>,
    id: &str,
    step: S,
) -> Result<T, ScimError>
where
    E: Endpoint,
    T: Send + 'static,
    S: for<'a> Fn(&'a mut Unit, E::Row) -> BoxFuture<'a, Result<T, Failed>> + Send + Sync + 'static,
{
    let step = Arc::new(step);
    let (id, directory_id) = (id.to_owned(), caller.directory_id.clone());
    let if_match_owned = if_match.map(str::to_owned);
    let job = write::job(move |unit: &mut Unit| {
        let (step, directory_id) = (step.clone(), directory_id.clone());
        let (id, if_match) = (id.clone(), if_match_owned.clone());
        Box::pin(async move {
            let current = E::find(unit.conn(), &directory_id, &id).await?;
            etag::check_if_match(if_match.as_deref(), E::version(&current))?;
            step(unit, current).await
        })
    });
    write::write(state, caller, if_match, job).await
}

/// Read, change and conditionally write a resource. `change` makes the edit
/// from the current resource.
async fn modify<E: Endpoint>(
    state: &ScimState,
    caller: &Caller,
    if_match: Option<&str>,
    id: &str,
    change: impl Fn(&E::Row) -> Result<Edit, ScimError> + Send + Sync + 'static,
) -> Result<E::Row, ScimError> {
    write_current::<E, _, _>(state, caller, if_match, id, move |unit, current| {
        let edit = change(&current);
        Box::pin(async move { E::update(unit, current, edit?).await })
    })
    .await
}

/// Replace a resource (PUT, or a Bulk PUT).
pub async fn replace<E: Endpoint>(
    state: &ScimState,
    caller: &Caller,
    id: &str,
    body: &Value,
    if_match: Option<&str>,
) -> Result<E::Row, ScimError> {
    let canonical = resource::canonicalize(E::TYPE, body, Mode::Replace)?;
    // RFC 7643 §3.1: id is readOnly and assigned by the provider; a PUT may
    // echo it (Okta does, O5) but never change it.
    if let Some(echoed) = &canonical.echoed_id
        && !echoed.eq_ignore_ascii_case(id)
    {
        return Err(ScimError::mutability(format!(
            "id {} in the body does not match the resource {id}; id cannot change",
            crate::domain::text::quoted(echoed)
        )));
    }
    let edit = E::replacement(canonical);
    modify::<E>(state, caller, if_match, id, move |_| Ok(edit.clone())).await
}

/// Patch a resource (PATCH, or a Bulk PATCH).
pub async fn patch<E: Endpoint>(
    state: &ScimState,
    caller: &Caller,
    id: &str,
    body: &Value,
    if_match: Option<&str>,
) -> Result<E::Row, ScimError> {
    let ops = patch_op::parse(E::TYPE, body)?;
    modify::<E>(state, caller, if_match, id, move |current| {
        let mut data = E::data(current).as_object().cloned().unwrap_or_default();
        let members = patch_op::apply(E::TYPE, E::id(current), &mut data, &ops)?;
        Ok(Edit { data, members })
    })
    .await
}

/// Delete a resource (DELETE, or a Bulk DELETE).
pub async fn delete<E: Endpoint>(
    state: &ScimState,
    caller: &Caller,
    id: &str,
    if_match: Option<&str>,
) -> Result<(), ScimError> {
    write_current::<E, _, _>(state, caller, if_match, id, |unit, current| {
        Box::pin(E::remove(unit, current))
    })
    .await
}

#[instrument(skip_all, fields(resource = E::TYPE.name, directory_id = %caller.directory_id))]
pub async fn create_resource<E: Endpoint>(
    state: web::Data<ScimState>,
    caller: Caller,
    req: HttpRequest,
    body: ScimBody,
) -> Result<HttpResponse, ScimError> {
    let projection = projection_of::<E>(&req)?;
    let saved = create::<E>(&state, &caller, &body.0).await?;
    respond::<E>(&state, &caller, &saved, projection, StatusCode::CREATED).await
}

#[instrument(skip_all, fields(resource = E::TYPE.name, directory_id = %caller.directory_id))]
pub async fn get_resource<E: Endpoint>(
    state: web::Data<ScimState>,
    caller: Caller,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ScimError> {
    let id = parse_id(&id)?;
    let projection = projection_of::<E>(&req)?;
    let row = E::find(state.store.connection(), &caller.directory_id, &id).await?;
    if etag::not_modified(&req, E::version(&row)) {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, etag::etag(E::version(&row))))
            .finish());
    }
    respond::<E>(&state, &caller, &row, projection, StatusCode::OK).await
}

/// PUT or PATCH.
#[derive(Debug, Clone, Copy)]
enum Change {
    Replace,
    Patch,
}

/// A PUT's or a PATCH's answer: the resource as it was written.
async fn change_resource<E: Endpoint>(
    state: &web::Data<ScimState>,
    caller: &Caller,
    req: &HttpRequest,
    id: &str,
    body: &Value,
    change: Change,
) -> Result<HttpResponse, ScimError> {
    let id = parse_id(id)?;
    let projection = projection_of::<E>(req)?;
    let if_match = etag::if_match(req);
    let if_match = if_match.as_deref();
    let row = match change {
        Change::Replace => replace::<E>(state, caller, &id, body, if_match).await?,
        Change::Patch => patch::<E>(state, caller, &id, body, if_match).await?,
    };
    respond::<E>(state, caller, &row, projection, StatusCode::OK).await
}

#[instrument(skip_all, fields(resource = E::TYPE.name, directory_id = %caller.directory_id))]
pub async fn replace_resource<E: Endpoint>(
    state: web::Data<ScimState>,
    caller: Caller,
    req: HttpRequest,
    id: web::Path<String>,
    body: ScimBody,
) -> Result<HttpResponse, ScimError> {
    change_resource::<E>(&state, &caller, &req, &id, &body.0, Change::Replace).await
}

#[instrument(skip_all, fields(resource = E::TYPE.name, directory_id = %caller.directory_id))]
pub async fn patch_resource<E: Endpoint>(
    state: web::Data<ScimState>,
    caller: Caller,
    req: HttpRequest,
    id: web::Path<String>,
    body: ScimBody,
) -> Result<HttpResponse, ScimError> {
    change_resource::<E>(&state, &caller, &req, &id, &body.0, Change::Patch).await
}

#[instrument(skip_all, fields(resource = E::TYPE.name, directory_id = %caller.directory_id))]
pub async fn delete_resource<E: Endpoint>(
    state: web::Data<ScimState>,
    caller: Caller,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ScimError> {
    let id = parse_id(&id)?;
    delete::<E>(&state, &caller, &id, etag::if_match(&req).as_deref()).await?;
    Ok(HttpResponse::NoContent().finish())
}
