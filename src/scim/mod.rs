//! The SCIM 2.0 wire layer (RFC 7643 / RFC 7644) under `/scim/v2`: parse,
//! authenticate, normalise vendor forms, answer in SCIM JSON. Holds no
//! reconciliation rule; reads go to `store`; every write is a job of the
//! unit of work's group-commit writer (`scim::write`), which hands its
//! change to the engine. Vendor quirk ids in comments (E9, O8, L2, …) are
//! the entries of docs/vendor-quirks.md.

pub mod auth;
pub mod body;
pub mod bulk;
pub mod custom;
pub mod discovery;
pub mod element_filter;
pub mod endpoint;
pub mod error;
pub mod etag;
pub mod filter;
pub mod groups;
pub mod list;
pub mod page;
pub mod patch;
pub mod projection;
pub mod quirks;
pub mod render;
pub mod representation;
pub mod request_log;
pub mod resource;
pub mod schema;
pub mod snapshot;
pub mod target;
pub mod users;
pub mod write;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};

use crate::config::ServerSettings;
use crate::store::{Store, StoreError};
use error::ScimError;
use groups::Groups;
use users::Users;

/// RFC 7644 §3.1 media type, on every response.
pub const CONTENT_TYPE: &str = "application/scim+json";

/// Shared state of the SCIM handlers.
#[derive(Debug)]
pub struct ScimState {
    pub store: Store,
    pub settings: ServerSettings,
    /// `{public_url}/scim/v2`, for `meta.location` and `Location`.
    pub base_url: String,
    /// Commits SCIM writes, several to a transaction.
    pub writer: crate::reconcile::unit::Writer,
    /// What recently seen tokens resolved to (shared with the host API,
    /// which forgets a token it revokes and a directory it deletes).
    pub tokens: auth::TokenCache,
    /// The per-directory SCIM request log (`request_log::record` fills it).
    pub log: request_log::Recorder,
}

impl From<StoreError> for ScimError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => ScimError::not_found("resource not found"),
            StoreError::Conflict(_) => {
                ScimError::uniqueness("a resource with that unique attribute already exists")
            }
            StoreError::VersionMismatch => {
                ScimError::precondition_failed("the resource changed concurrently; retry")
            }
            StoreError::Busy => ScimError::service_unavailable(
                "the database chose another concurrent change first; retry the request",
            ),
            StoreError::Invalid(err) => {
                tracing::error!(error = %err, "invalid stored data");
                ScimError::internal("internal error")
            }
            StoreError::Database(err) => {
                tracing::error!(error = %err, "database error");
                ScimError::internal("internal database error")
            }
        }
    }
}

/// Mount every SCIM route on `cfg` (under the caller's `/scim/v2` scope).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/ServiceProviderConfig")
            .route(web::get().to(discovery::service_provider_config))
            .default_service(web::to(|req: HttpRequest| method_not_allowed(req, "GET"))),
    )
    .service(
        web::resource("/ResourceTypes")
            .route(web::get().to(discovery::resource_types))
            .default_service(web::to(|req: HttpRequest| method_not_allowed(req, "GET"))),
    )
    .service(
        web::resource("/ResourceTypes/{id}")
            .route(web::get().to(discovery::resource_type))
            .default_service(web::to(|req: HttpRequest| method_not_allowed(req, "GET"))),
    )
    .service(
        web::resource("/Schemas")
            .route(web::get().to(discovery::schemas))
            .default_service(web::to(|req: HttpRequest| method_not_allowed(req, "GET"))),
    )
    .service(
        web::resource("/Schemas/{id}")
            .route(web::get().to(discovery::schema))
            .default_service(web::to(|req: HttpRequest| method_not_allowed(req, "GET"))),
    )
    .service(
        web::resource("/Users")
            .route(web::get().to(page::list_resources::<Users>))
            .route(web::post().to(endpoint::create_resource::<Users>))
            .default_service(web::to(|req: HttpRequest| {
                method_not_allowed(req, "GET, POST")
            })),
    )
    .service(
        web::resource("/Users/.search")
            .route(web::post().to(page::search_resources::<Users>))
            .default_service(web::to(|req: HttpRequest| method_not_allowed(req, "POST"))),
    )
    .service(
        web::resource("/Users/{id}")
            .route(web::get().to(endpoint::get_resource::<Users>))
            .route(web::put().to(endpoint::replace_resource::<Users>))
            .route(web::patch().to(endpoint::patch_resource::<Users>))
            .route(web::delete().to(endpoint::delete_resource::<Users>))
            .default_service(web::to(|req: HttpRequest| {
                method_not_allowed(req, "GET, PUT, PATCH, DELETE")
            })),
    )
    .service(
        web::resource("/Groups")
            .route(web::get().to(page::list_resources::<Groups>))
            .route(web::post().to(endpoint::create_resource::<Groups>))
            .default_service(web::to(|req: HttpRequest| {
                method_not_allowed(req, "GET, POST")
            })),
    )
    .service(
        web::resource("/Groups/.search")
            .route(web::post().to(page::search_resources::<Groups>))
            .default_service(web::to(|req: HttpRequest| method_not_allowed(req, "POST"))),
    )
    .service(
        web::resource("/Groups/{id}")
            .route(web::get().to(endpoint::get_resource::<Groups>))
            .route(web::put().to(endpoint::replace_resource::<Groups>))
            .route(web::patch().to(endpoint::patch_resource::<Groups>))
            .route(web::delete().to(endpoint::delete_resource::<Groups>))
            .default_service(web::to(|req: HttpRequest| {
                method_not_allowed(req, "GET, PUT, PATCH, DELETE")
            })),
    )
    .service(
        web::resource("/.search")
            .route(web::post().to(discovery::search_root))
            .default_service(web::to(|req: HttpRequest| method_not_allowed(req, "POST"))),
    )
    .service(
        web::resource("/Bulk")
            .route(web::post().to(bulk::bulk))
            .default_service(web::to(|req: HttpRequest| method_not_allowed(req, "POST"))),
    )
    .default_service(web::to(not_found));
}

/// 405 with the SCIM error body and, as RFC 9110 §15.5.6 requires, an `Allow`
/// header listing the methods the resource does support.
async fn method_not_allowed(req: HttpRequest, allow: &'static str) -> HttpResponse {
    let mut response = ScimError::method_not_allowed(format!(
        "{} is not supported on {}; use {allow}",
        req.method(),
        crate::domain::text::quoted(req.path())
    ))
    .error_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ScimError> {
    Err(ScimError::not_found(format!(
        "no SCIM endpoint at {}",
        crate::domain::text::quoted(req.path())
    )))
}

/// A 200/201 response with the SCIM media type.
pub fn json_response(
    status: actix_web::http::StatusCode,
    body: &serde_json::Value,
) -> HttpResponse {
    HttpResponse::build(status)
        .content_type(CONTENT_TYPE)
        .body(body.to_string())
}

/// Resource ids are UUIDs; anything else names nothing (Okta's SPEC test sends
/// `010101001010101011001010101011` and expects 404, O11).
pub fn parse_id(id: &str) -> Result<String, ScimError> {
    uuid::Uuid::parse_str(id)
        .map(|u| u.hyphenated().to_string())
        .map_err(|_| {
            ScimError::not_found(format!(
                "no resource with id {}",
                crate::domain::text::quoted(id)
            ))
        })
}

/// Longest value, in bytes, of an attribute dirsync keeps in an indexed column
/// (userName, group displayName, externalId, primary email): the schema's cap
/// on them, checked again on the folded form (case folding may lengthen a
/// string), which the column holds.
pub const MAX_INDEXED_BYTES: usize = crate::domain::limits::TEXT_BYTES;

/// `invalidValue` when an indexed attribute's value is longer than
/// [`MAX_INDEXED_BYTES`].
pub fn check_indexed_len(name: &str, value: &str) -> Result<(), ScimError> {
    if value.len() > MAX_INDEXED_BYTES {
        return Err(ScimError::invalid_value(format!(
            "{name} is {} bytes long; at most {MAX_INDEXED_BYTES} are accepted",
            value.len()
        )));
    }
    Ok(())
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
