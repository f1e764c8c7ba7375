//! The host application's JSON API (`/api/v1`): its users, groups and
//! events, its actions on users, and its directories (SCIM directories with
//! their tokens and policy, pull directories with their connection and
//! runs), for clients with a bearer JWT (`auth`). One convention
//! throughout: JSON bodies, `snake_case` fields, lists as `{"data": [...],
//! "next_cursor", "prev_cursor"}` paged by opaque cursors (`after` /
//! `before`, `limit` ≤ 100, a keyset in the store, never an OFFSET), errors
//! as RFC 9457 problems (`problem`). Handlers are thin:
//! they check the caller and call `admin` or read `store`, as the CLI does.
//! The OpenAPI document is generated from these handlers (`openapi`).

// A problem is a few strings; handlers return it once per request, so its
// size costs nothing worth a box at every call site.
#![allow(clippy::result_large_err)]

pub mod auth;
pub mod connections;
pub mod directories;
pub mod events;
pub mod groups;
pub mod openapi;
pub mod problem;
pub mod runs;
pub mod setup_links;
pub mod tenants;
pub mod users;
pub mod webhooks;

use actix_web::{HttpMessage, HttpRequest, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use self::auth::{Keys, Principal};
use self::problem::Problem;
use crate::crypto::SealingKey;
use crate::store::Store;
use crate::store::pages::{self, Anchor};

/// What every API request shares.
pub struct ApiState {
    pub store: Store,
    /// None: no key configured, every request is 503 `api_off`.
    pub keys: Option<Keys>,
    /// The server's key for connection credentials at rest; None: pull
    /// connections can be neither created nor run.
    pub key: Option<SealingKey>,
    /// What an IdP is given as the SCIM base URL (`…/scim/v2`).
    pub scim_base_url: String,
    /// The server's public URL, which setup links are built on.
    pub public_url: String,
    /// The SCIM side's token cache: a token revoked or a directory deleted
    /// here is forgotten at once.
    pub scim_tokens: crate::scim::auth::TokenCache,
    /// Which webhook URLs are allowed, how a test delivery is sent, how
    /// long a rotated secret still signs.
    pub webhooks: crate::webhooks::Settings,
    /// Most bytes of events one page of the feed carries
    /// (`--max-page-bytes`).
    pub max_page_bytes: u64,
}

/// Mount `/api/v1` and the browsable reference at `/api/docs`.
pub fn configure(cfg: &mut web::ServiceConfig, state: web::Data<ApiState>) {
    cfg.service(
        web::scope("/api/v1")
            .wrap(actix_web::middleware::from_fn(refuse_control_characters))
            .app_data(state)
            .app_data(
                web::JsonConfig::default()
                    .limit(1 << 20)
                    .error_handler(problem::json_error),
            )
            .app_data(web::QueryConfig::default().error_handler(problem::query_error))
            .app_data(web::PathConfig::default().error_handler(problem::path_error))
            .route("/openapi.json", web::get().to(openapi::document))
            .service(tenants::scope())
            .service(users::scope())
            .service(groups::scope())
            .service(events::scope())
            .service(directories::scope())
            .service(connections::scope())
            .service(runs::scope())
            .service(webhooks::scope())
            .default_service(web::to(not_found)),
    )
    // The reference's page loads its assets by relative paths, so it is
    // served at /api/docs/index.html (the server trims trailing slashes:
    // /api/docs/ arrives as /api/docs, which redirects there).
    .route(
        "/api/docs",
        web::get().to(|| async {
            actix_web::HttpResponse::PermanentRedirect()
                .insert_header(("location", "/api/docs/index.html"))
                .finish()
        }),
    )
    .service(
        utoipa_swagger_ui::SwaggerUi::new("/api/docs/{_:.*}")
            .url("/api/v1/openapi.json", openapi::spec()),
    );
}

/// The request target kept to the text rule (`domain::text`) before any
/// handler reads it: a control character in the path or a query parameter,
/// once decoded (`%00`), is a 400 problem naming where, never a value that
/// reaches a query.
async fn refuse_control_characters(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<
    actix_web::dev::ServiceResponse<
        actix_web::body::EitherBody<impl actix_web::body::MessageBody + 'static>,
    >,
    actix_web::Error,
> {
    use crate::domain::text::{self, InTarget};
    let Some((at, found)) = text::find_control_in_target(req.path(), req.query_string()) else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let field = match &at {
        InTarget::Path => "path".to_owned(),
        InTarget::Parameter(name) => name.clone(),
        InTarget::ParameterName => "query".to_owned(),
    };
    let problem = Problem::invalid_field(&field, format!("{at} {found}"));
    Ok(req
        .into_response(actix_web::ResponseError::error_response(&problem))
        .map_into_right_body())
}

/// A resource of the API: a method it does not serve is 405, as a problem.
/// `allow` lists its methods (RFC 9110 §15.5.6: a 405 says which).
pub fn resource(path: &str, allow: &'static str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(move || async move {
        let mut problem = Problem::new(
            actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("this resource serves {allow}"),
        );
        problem.allow = Some(allow);
        Err::<actix_web::HttpResponse, _>(problem)
    }))
}

/// Any path under `/api/v1` that names no resource.
pub async fn not_found() -> Result<actix_web::HttpResponse, Problem> {
    Err(Problem::not_found("this route"))
}

/// A JSON body a client may leave out: no body is `T::default()`. Parsed
/// here rather than by actix's `Json` (which has no "absent"), with the
/// same answers: 415 for another media type, 400 naming the body.
pub fn optional_body<T: DeserializeOwned + Default>(
    req: &HttpRequest,
    body: &[u8],
) -> Result<T, Problem> {
    if body.is_empty() {
        return Ok(T::default());
    }
    if req.content_type() != "application/json" {
        return Err(Problem::new(
            actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as application/json",
        ));
    }
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| Problem::invalid_field("body", e.to_string()))?;
    object(value)
}

/// A JSON object body, read as actix's `Json` reads it (the size limit,
/// the media type, the same problems), refusing any other JSON value: serde
/// would read a struct from an array too (`[null]`).
pub struct Body<T>(pub T);

impl<T: DeserializeOwned + 'static> actix_web::FromRequest for Body<T> {
    type Error = actix_web::Error;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let json = web::Json::<serde_json::Value>::from_request(req, payload);
        Box::pin(async move {
            let value = json.await?.into_inner();
            object(value).map(Body).map_err(Into::into)
        })
    }
}

impl<T> std::ops::Deref for Body<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> Body<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

/// `value` as `T` when it is a JSON object whose strings keep the text
/// rule (`domain::text`: no control character but TAB, LF and CR, anywhere);
/// else 400 naming the body or the field.
fn object<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, Problem> {
    if !value.is_object() {
        return Err(Problem::invalid_field("body", "must be a JSON object"));
    }
    if let Some((path, found)) = crate::domain::text::find_control_in_json(&value) {
        return Err(Problem::invalid_field(
            &path,
            format!("{found}; of the control characters only TAB, LF and CR may stand in a value"),
        ));
    }
    serde_json::from_value(value).map_err(|e| Problem::invalid_field("body", e.to_string()))
}

/// Most items one page holds.
pub const MAX_LIMIT: u64 = 100;

/// The paging parameters every list takes.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// The `next_cursor` of the page before: the page after it.
    pub after: Option<String>,
    /// The `prev_cursor` of the page after: the page before it.
    pub before: Option<String>,
    /// Items per page, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u64>,
}

impl Paging {
    /// Where the page starts and how long it is; 400 for a bad cursor or
    /// limit.
    pub fn window(&self, kind: &str) -> Result<(Anchor, u64), Problem> {
        let limit = self.limit.unwrap_or(50);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(Problem::invalid_field(
                "limit",
                format!("must be 1 to {MAX_LIMIT}"),
            ));
        }
        // An empty cursor is no cursor (a client that always sends the
        // parameter, empty on the first page).
        let present = |c: &Option<String>| c.clone().filter(|c| !c.is_empty());
        let from = match (&present(&self.after), &present(&self.before)) {
            (Some(_), Some(_)) => {
                return Err(Problem::invalid_field(
                    "before",
                    "give after or before, not both",
                ));
            }
            (Some(c), None) => Anchor::After(decode_cursor(kind, c, "after")?),
            (None, Some(c)) => Anchor::Before(decode_cursor(kind, c, "before")?),
            (None, None) => Anchor::Start,
        };
        Ok((from, limit))
    }
}

/// A cursor is opaque to clients: the list's kind and the key it stops at.
fn encode_cursor(kind: &str, key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{kind}:{key}"))
}

fn decode_cursor(kind: &str, cursor: &str, field: &str) -> Result<String, Problem> {
    let bad = || Problem::invalid_field(field, "not a cursor of this list");
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let key = text
        .strip_prefix(kind)
        .and_then(|k| k.strip_prefix(':'))
        .ok_or_else(bad)?;
    // Keys are ids: printable and short.
    if key.is_empty() || key.len() > 64 || key.chars().any(char::is_control) {
        return Err(bad());
    }
    Ok(key.to_owned())
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T: ToSchema> {
    pub data: Vec<T>,
    /// Pass as `after` for the next page; null on the last.
    pub next_cursor: Option<String>,
    /// Pass as `before` for the page before; null on the first.
    pub prev_cursor: Option<String>,
}

impl<T: ToSchema> Page<T> {
    /// A store page as the API's, each row mapped, cursors from `key`.
    pub fn of<R>(
        kind: &str,
        page: pages::Page<R>,
        key: impl Fn(&R) -> &str,
        map: impl Fn(&R) -> T,
    ) -> Page<T> {
        let next_cursor = page
            .rows
            .last()
            .filter(|_| page.more_after)
            .map(|r| encode_cursor(kind, key(r)));
        let prev_cursor = page
            .rows
            .first()
            .filter(|_| page.more_before)
            .map(|r| encode_cursor(kind, key(r)));
        Page {
            data: page.rows.iter().map(map).collect(),
            next_cursor,
            prev_cursor,
        }
    }
}

/// The tenant a request acts in: the token's, or for an operator's token
/// (`tenant: "*"`) the one named by `?tenant=`. Another tenant's name is
/// 404, as if it did not exist.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TenantParam {
    /// The tenant (name or id); required with an operator's token, else
    /// the token's own.
    pub tenant: Option<String>,
}

impl TenantParam {
    pub async fn resolve(&self, store: &Store, caller: &Principal) -> Result<String, Problem> {
        let wanted = match (&self.tenant, caller.is_operator()) {
            (Some(t), true) => t.clone(),
            (None, true) => {
                return Err(Problem::invalid_field(
                    "tenant",
                    "an operator's token names the tenant with ?tenant=",
                ));
            }
            (Some(t), false) => {
                let own = tenant_id(store, &caller.tenant).await?;
                let asked = tenant_id(store, t).await.ok();
                if asked.as_deref() != Some(own.as_str()) {
                    return Err(Problem::not_found(format!(
                        "tenant {}",
                        crate::domain::text::quoted(t)
                    )));
                }
                return Ok(own);
            }
            (None, false) => caller.tenant.clone(),
        };
        tenant_id(store, &wanted).await
    }
}

/// A tenant's id from its name or id.
pub async fn tenant_id(store: &Store, name_or_id: &str) -> Result<String, Problem> {
    use crate::store::StoreError;
    match store.tenant_by_name(name_or_id).await {
        Ok(t) => return Ok(t.id),
        Err(StoreError::NotFound) => {}
        Err(other) => return Err(other.into()),
    }
    match store.tenant(name_or_id).await {
        Ok(t) => Ok(t.id),
        Err(StoreError::NotFound) => Err(Problem::not_found(format!(
            "tenant {}",
            crate::domain::text::quoted(name_or_id)
        ))),
        Err(other) => Err(other.into()),
    }
}
