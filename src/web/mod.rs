//! The operator dashboard at `/admin`: pages rendered on the server from
//! askama templates (`templates/admin/`, typed contexts, HTML escaping on),
//! one stylesheet and htmx embedded in the binary (`assets`), operator
//! sessions in HttpOnly SameSite=Strict cookies with a CSRF token on every
//! form (`session`), sign-in throttling (`throttle`), and a strict Content
//! Security Policy on every response. Page handlers are thin: they check
//! the session and call the same `admin` functions as the CLI and the host
//! API, or read `store`. The customer's setup portal (`/portal`, `portal`)
//! shares the stylesheet, the headers and the CSRF check. Uses actix_web
//! and askama; never sea_orm.

pub mod assets;
mod directories;
mod error;
mod events;
mod groups;
mod import;
mod page;
pub mod portal;
mod runs;
pub mod session;
mod signin;
mod tenants;
pub mod throttle;
mod users;
mod webhooks;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{Next, from_fn};
use actix_web::web;

use crate::scim::auth::TokenCache;
use crate::store::Store;

pub use error::WebError;

/// What every dashboard request shares.
pub struct WebState {
    pub store: Store,
    /// What an IdP is given as the SCIM base URL (`…/scim/v2`).
    pub scim_base_url: String,
    /// The SCIM side's token cache: a token revoked here is forgotten at
    /// once, as through the API.
    pub scim_tokens: TokenCache,
    pub throttle: throttle::Throttle,
    /// Mark cookies Secure whatever the request's scheme (the public URL
    /// is https, so a proxy in front terminates TLS).
    pub secure_cookies: bool,
    /// Opens the connections' sealed credentials for the runs, previews
    /// and imports an operator starts (None: the server has no key).
    pub key: Option<crate::crypto::SealingKey>,
    /// What the setup portal needs beside: the public URL setup links are
    /// built on, a session's life.
    pub portal: portal::Settings,
}

/// The policy every /admin response carries: nothing but this origin's own
/// scripts and styles (no inline script or style, no eval), never framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self'; frame-ancestors 'none'; form-action 'self'; \
     base-uri 'none'; object-src 'none'";

/// Mount `/admin` (and the setup portal, `/portal`).
pub fn configure(cfg: &mut web::ServiceConfig, state: web::Data<WebState>) {
    portal::configure(cfg, state.clone());
    cfg.service(
        web::scope("/admin")
            .wrap(from_fn(security_headers))
            .app_data(state)
            .app_data(
                web::FormConfig::default()
                    .limit(64 << 10)
                    .error_handler(error::form_error),
            )
            .app_data(web::QueryConfig::default().error_handler(error::query_error))
            .app_data(web::PathConfig::default().error_handler(error::path_error))
            .route("", web::get().to(tenants::home))
            .route("/login", web::get().to(signin::login_form))
            .route("/login", web::post().to(signin::sign_in))
            .route("/logout", web::post().to(signin::sign_out))
            .route("/assets/{name}", web::get().to(assets::asset))
            .route("/tenants", web::post().to(tenants::create_tenant))
            .route("/tenants/{tenant}", web::get().to(tenants::tenant))
            .route(
                "/tenants/{tenant}/directories",
                web::post().to(tenants::create_directory),
            )
            .route(
                "/tenants/{tenant}/setup-links",
                web::post().to(tenants::create_setup_link),
            )
            .route("/tenants/{tenant}/users", web::get().to(users::list_users))
            .route("/tenants/{tenant}/users/{user}", web::get().to(users::user))
            .route(
                "/directories/{directory}",
                web::get().to(directories::directory),
            )
            .route(
                "/directories/{directory}/tokens",
                web::post().to(directories::create_token),
            )
            // A form's answer reloaded (GET on its address) shows the page.
            .route(
                "/directories/{directory}/tokens",
                web::get().to(directories::to_directory),
            )
            .route(
                "/directories/{directory}/policy",
                web::get().to(directories::to_directory),
            )
            .route(
                "/directories/{directory}/tokens/{token}/revoke",
                web::post().to(directories::revoke_token),
            )
            .route(
                "/directories/{directory}/policy",
                web::post().to(directories::update_policy),
            )
            .route(
                "/directories/{directory}/sync",
                web::post().to(runs::sync_now),
            )
            .route("/runs/{run}", web::get().to(runs::run))
            .route("/runs/{run}/progress", web::get().to(runs::progress))
            .route("/runs/{run}/approve", web::post().to(runs::approve))
            .route(
                "/tenants/{tenant}/import",
                web::get().to(import::import_form),
            )
            .route(
                "/tenants/{tenant}/import",
                web::post().to(import::import_users),
            )
            .route("/tenants/{tenant}/groups", web::get().to(groups::groups))
            .route("/tenants/{tenant}/events", web::get().to(events::events))
            .route(
                "/tenants/{tenant}/webhooks",
                web::get().to(webhooks::webhooks),
            )
            .route(
                "/tenants/{tenant}/webhooks/{webhook}",
                web::get().to(webhooks::webhook),
            )
            .route(
                "/tenants/{tenant}/webhooks/{webhook}/replay",
                web::post().to(webhooks::replay),
            )
            .default_service(web::to(error::not_found)),
    );
}

/// The headers of every /admin response; pages (anything but the assets,
/// which set their own) are never cached.
pub(crate) async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
    let res = next.call(req).await?;
    let is_sign_in = res
        .response()
        .error()
        .and_then(|e| e.as_error::<WebError>())
        .is_some_and(|e| matches!(e, WebError::SignIn { .. }));
    let mut res = if is_sign_in {
        // Going to the sign-in form is no failure: answered afresh, so the
        // request's log line does not report it as an error.
        let location = res.headers().get(header::LOCATION).cloned();
        let (req, _) = res.into_parts();
        let mut fresh = actix_web::HttpResponse::SeeOther();
        if let Some(location) = location {
            fresh.insert_header((header::LOCATION, location));
        }
        ServiceResponse::new(req, fresh.finish()).map_into_boxed_body()
    } else {
        res.map_into_boxed_body()
    };
    let headers = res.headers_mut();
    let set = [
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
    ];
    for (name, value) in set {
        headers.insert(name, value);
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Ok(res)
}
