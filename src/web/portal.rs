//! The customer's setup portal at `/portal`: a tenant's IT admin, with no
//! operator account, opens a setup link (`admin::setup`), which opens a
//! short-lived portal session in a cookie of its own (path /portal,
//! HttpOnly, SameSite=Strict), and sets up their identity provider: a SCIM
//! directory with its token, that vendor's steps and a live view of the
//! first requests arriving; or a pull connection (credentials sealed,
//! scope, test, a dry run's preview, attribute mapping, schedule). The
//! session sees only its tenant and only what its link allowed (`Portal`,
//! the extractor every page takes). Handlers call the `admin` functions the
//! CLI, the host API and the dashboard call; forms carry the session's
//! CSRF token (`session::check_csrf`); responses carry the dashboard's
//! security headers. Uses actix_web and askama; never sea_orm.

use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::middleware::from_fn;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;
use futures_util::future::LocalBoxFuture;
use serde::Deserialize;

use super::page::{present, render_as, see_other};
use super::session::{check_csrf, cookie, set_cookie};
use super::{WebError, WebState, error};
use crate::admin::directory::Kind;
use crate::admin::requests::{RequestFilter, RequestView};
use crate::admin::setup::{self, Allows, Refused};
use crate::admin::{self, AdminError, DirectoryView};
use crate::crypto::Secret;
use crate::pull::Provider;
use crate::pull::connector::Definition;
use crate::pull::schedule::Schedule;
use crate::pull::source::Scope;
use crate::reconcile::mapping::Rule;
use crate::store::tenants::Directory;

/// The portal session's cookie (path /portal).
pub const PORTAL_COOKIE: &str = "dirsync_portal";

/// What the portal needs beside the dashboard's state.
#[derive(Clone)]
pub struct Settings {
    /// The server's public URL: setup links are built on it.
    pub public_url: String,
    /// How long a portal session lasts (`--portal-session-ttl`).
    pub session_ttl: Duration,
}

/// Mount `/portal`.
pub fn configure(cfg: &mut web::ServiceConfig, state: web::Data<WebState>) {
    cfg.service(
        web::scope("/portal")
            .wrap(from_fn(super::security_headers))
            .app_data(state)
            .app_data(
                web::FormConfig::default()
                    .limit(256 << 10)
                    .error_handler(error::form_error),
            )
            .app_data(web::PathConfig::default().error_handler(error::path_error))
            .route("", web::get().to(home))
            .route("/setup/{secret}", web::get().to(show_link))
            .route("/setup/{secret}", web::post().to(open_link))
            .route("/assets/{name}", web::get().to(super::assets::asset))
            .route("/finish", web::post().to(finish))
            .route("/scim", web::post().to(create_scim))
            .route("/pull/{provider}", web::get().to(pull_form))
            .route("/pull/{provider}", web::post().to(create_pull))
            .route("/directories/{directory}", web::get().to(directory))
            .route(
                "/directories/{directory}/requests",
                web::get().to(scim_requests),
            )
            .route("/directories/{directory}/test", web::post().to(test))
            .route("/directories/{directory}/preview", web::post().to(preview))
            .route("/directories/{directory}/mapping", web::post().to(mapping))
            .route(
                "/directories/{directory}/schedule",
                web::post().to(schedule),
            )
            .default_service(web::to(not_found)),
    );
}

/// Why the portal cannot serve a request: each a page that says what to
/// do next, never an error dump.
#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    /// No live portal session (none, expired, an operator's, a revoked
    /// link's).
    #[error("this page needs the setup session your link opens")]
    NoSession,
    /// The setup link did not open.
    #[error(transparent)]
    Link(Refused),
    /// What the link did not allow.
    #[error("{0}")]
    NotAllowed(String),
    #[error(transparent)]
    Web(#[from] WebError),
}

impl From<AdminError> for PortalError {
    fn from(e: AdminError) -> PortalError {
        PortalError::Web(e.into())
    }
}

#[derive(Template)]
#[template(path = "portal/error.html")]
struct ErrorPage {
    status: u16,
    title: String,
    message: String,
    hint: String,
}

impl ResponseError for PortalError {
    fn status_code(&self) -> StatusCode {
        match self {
            PortalError::NoSession | PortalError::NotAllowed(_) => StatusCode::FORBIDDEN,
            PortalError::Link(Refused::Unknown) => StatusCode::NOT_FOUND,
            PortalError::Link(Refused::Used | Refused::Expired | Refused::Revoked) => {
                StatusCode::GONE
            }
            // `open_link` hands these over as `Web`.
            PortalError::Link(Refused::Admin(_)) => StatusCode::INTERNAL_SERVER_ERROR,
            PortalError::Web(e) => e.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        let ask = "Ask the team that sent you the link for a new one.";
        let (title, hint) = match self {
            PortalError::NoSession => (
                "Your setup session has ended",
                format!(
                    "Open the setup link you were sent. A link opens the portal once, and \
                     the session it opens lasts a limited time. {ask}"
                ),
            ),
            PortalError::Link(Refused::Unknown) => (
                "This setup link is not valid",
                format!("Check that the whole address was copied. {ask}"),
            ),
            PortalError::Link(Refused::Used) => (
                "This setup link was already used",
                format!(
                    "A setup link opens the portal once. If you opened it before, go on in \
                     that browser. {ask}"
                ),
            ),
            PortalError::Link(Refused::Expired) => (
                "This setup link has expired",
                format!("Setup links work for a limited time. {ask}"),
            ),
            PortalError::Link(Refused::Revoked) => ("This setup link was revoked", ask.to_owned()),
            PortalError::NotAllowed(_) => (
                "Not part of this setup",
                "Your setup link does not cover this. Go back to the start.".to_owned(),
            ),
            PortalError::Link(Refused::Admin(_)) | PortalError::Web(_) => {
                ("Cannot do that", "Go back and try again.".to_owned())
            }
        };
        let status = self.status_code();
        let page = ErrorPage {
            status: status.as_u16(),
            title: title.to_owned(),
            message: self.to_string(),
            hint,
        };
        match page.render() {
            Ok(body) => HttpResponse::build(status)
                .content_type("text/html; charset=utf-8")
                .body(body),
            Err(_) => HttpResponse::build(status)
                .content_type("text/plain; charset=utf-8")
                .body(self.to_string()),
        }
    }
}

/// A live portal session: one tenant, what its link allowed.
#[derive(Debug, Clone)]
pub struct Portal {
    pub tenant_id: String,
    pub tenant: String,
    pub allows: Allows,
    /// The session's CSRF token, which every form carries.
    pub csrf: String,
    cookie: String,
}

impl Portal {
    pub fn check(&self, sent: &str) -> Result<(), PortalError> {
        Ok(check_csrf(&self.csrf, sent)?)
    }

    fn allow(&self, kind: Kind) -> Result<(), PortalError> {
        let allowed = match kind {
            Kind::Scim => self.allows.scim,
            Kind::Pull(_) => self.allows.pull,
        };
        if !allowed {
            let what = match kind {
                Kind::Scim => "a SCIM directory",
                Kind::Pull(_) => "a pull connection",
            };
            return Err(PortalError::NotAllowed(format!(
                "this setup link does not allow setting up {what}"
            )));
        }
        Ok(())
    }

    /// One of the session's tenant's directories, of a kind its link
    /// allowed; another tenant's is not found.
    async fn directory(
        &self,
        state: &WebState,
        id: &str,
    ) -> Result<(Directory, Kind), PortalError> {
        let directory = admin::api::directory_in(&state.store, &self.tenant_id, id).await?;
        let kind = Kind::parse(&directory.kind)
            .ok_or_else(|| WebError::NotFound(format!("directory {id:?}")))?;
        self.allow(kind)?;
        Ok((directory, kind))
    }
}

impl FromRequest for Portal {
    type Error = PortalError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<WebState>>()
                .ok_or_else(|| WebError::Internal("the portal is not configured".into()))?;
            let value = cookie(&req, PORTAL_COOKIE).ok_or(PortalError::NoSession)?;
            let live = setup::session(&state.store, &value)
                .await?
                .ok_or(PortalError::NoSession)?;
            let tenant = state
                .store
                .tenant(&live.tenant_id)
                .await
                .map_err(|_| PortalError::NoSession)?;
            Ok(Portal {
                tenant_id: live.tenant_id,
                tenant: tenant.name,
                allows: live.allows,
                csrf: live.csrf_token,
                cookie: value,
            })
        })
    }
}

/// The frame of every portal page.
pub struct Chrome {
    pub tenant: String,
    pub csrf: String,
}

impl Chrome {
    fn of(portal: &Portal) -> Chrome {
        Chrome {
            tenant: portal.tenant.clone(),
            csrf: portal.csrf.clone(),
        }
    }
}

fn render(template: &impl Template) -> Result<HttpResponse, PortalError> {
    Ok(render_as(StatusCode::OK, template)?)
}

pub async fn not_found() -> Result<HttpResponse, PortalError> {
    Err(WebError::NotFound("this page".into()).into())
}

#[derive(Template)]
#[template(path = "portal/open.html")]
struct OpenPage {
    tenant: String,
    allows: String,
    minutes: u64,
}

/// `GET /portal/setup/{secret}`: what the link opens, with the button that
/// opens it, or the page saying why it opens nothing. Reading the address
/// uses nothing up (a mail scanner or a chat's link preview fetches it).
pub async fn show_link(
    state: web::Data<WebState>,
    secret: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let (tenant, allows) =
        setup::peek(&state.store, &secret)
            .await
            .map_err(|refused| match refused {
                Refused::Admin(e) => PortalError::from(e),
                other => PortalError::Link(other),
            })?;
    let allows = match (allows.scim, allows.pull) {
        (true, true) => "by SCIM, or by letting us read it",
        (true, false) => "by SCIM",
        _ => "by letting us read it",
    };
    render(&OpenPage {
        tenant,
        allows: allows.into(),
        minutes: state.portal.session_ttl.as_secs().div_ceil(60),
    })
}

/// `POST /portal/setup/{secret}`: the link opens a session, whose cookie is
/// set; the browser goes on to `/portal`, so the secret leaves the address
/// bar (and its history entry is the used link, which opens nothing).
pub async fn open_link(
    req: HttpRequest,
    state: web::Data<WebState>,
    secret: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let (opened, _) = setup::redeem(&state.store, &secret, state.portal.session_ttl)
        .await
        .map_err(|refused| match refused {
            Refused::Admin(e) => PortalError::from(e),
            other => PortalError::Link(other),
        })?;
    let max_age = i64::try_from(state.portal.session_ttl.as_secs()).unwrap_or(3600);
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/portal"))
        .insert_header((
            header::SET_COOKIE,
            set_cookie(
                &req,
                &state,
                PORTAL_COOKIE,
                opened.cookie.expose(),
                "/portal",
                max_age,
            ),
        ))
        .finish())
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// `POST /portal/finish`: end the session.
pub async fn finish(
    req: HttpRequest,
    state: web::Data<WebState>,
    portal: Portal,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, PortalError> {
    portal.check(&form.csrf)?;
    admin::operators::sign_out(&state.store, &portal.cookie).await?;
    Ok(HttpResponse::Ok()
        .insert_header((
            header::SET_COOKIE,
            set_cookie(&req, &state, PORTAL_COOKIE, "", "/portal", 0),
        ))
        .content_type("text/html; charset=utf-8")
        .body(
            Finished {}
                .render()
                .map_err(|e| WebError::Internal(e.to_string()))?,
        ))
}

#[derive(Template)]
#[template(path = "portal/finished.html")]
struct Finished {}

/// An identity provider the IT admin may pick.
pub struct Choice {
    /// The vendor (SCIM) or provider (pull) name dirsync uses.
    pub id: &'static str,
    pub name: &'static str,
}

/// SCIM clients, as `admin::VENDORS` names them.
const SCIM_VENDORS: &[Choice] = &[
    Choice {
        id: "entra",
        name: "Microsoft Entra ID",
    },
    Choice {
        id: "okta",
        name: "Okta",
    },
    Choice {
        id: "onelogin",
        name: "OneLogin",
    },
    Choice {
        id: "jumpcloud",
        name: "JumpCloud",
    },
    Choice {
        id: "pingone",
        name: "PingOne / PingFederate",
    },
    Choice {
        id: "generic",
        name: "Another SCIM 2.0 client",
    },
];

/// Pull providers, as `Provider` names them.
const PULL_PROVIDERS: &[Choice] = &[
    Choice {
        id: "google",
        name: "Google Workspace",
    },
    Choice {
        id: "entra",
        name: "Microsoft Entra ID (Graph)",
    },
    Choice {
        id: "okta",
        name: "Okta (API)",
    },
];

fn vendor_name(id: &str) -> &'static str {
    SCIM_VENDORS
        .iter()
        .find(|c| c.id == id)
        .map_or("your SCIM client", |c| c.name)
}

fn provider_name(id: &str) -> &'static str {
    PULL_PROVIDERS
        .iter()
        .find(|c| c.id == id)
        .map_or("your directory", |c| c.name)
}

/// What the IT admin does in their IdP, by vendor (docs/vendor-quirks.md
/// names what each sends; dirsync accepts it as sent).
fn scim_steps(vendor: &str) -> &'static [&'static str] {
    match vendor {
        "entra" => &[
            "In the Microsoft Entra admin center, open Enterprise applications, choose New application, then Create your own application (non-gallery).",
            "In the application, open Provisioning and set Provisioning Mode to Automatic.",
            "Under Admin Credentials, paste the SCIM base URL as Tenant URL and the token as Secret Token, then choose Test Connection (Entra looks up a random user name; dirsync answers with an empty list, as it expects).",
            "Save, check the attribute mappings (userName from userPrincipalName), assign users and groups to the application, and set Provisioning Status to On. Provision on demand sends a first user at once; the regular cycle runs about every 40 minutes.",
        ],
        "okta" => &[
            "In the Okta Admin Console, open Applications, Create App Integration, and choose SWA or SAML 2.0; on the General tab, under App Settings, enable SCIM provisioning.",
            "On the Provisioning tab, Integration: paste the SCIM base URL as SCIM connector base URL, set Unique identifier field for users to userName, and tick Push New Users, Push Profile Updates and Push Groups.",
            "Set Authentication Mode to HTTP Header and paste the token as the Bearer token; choose Test Connector Configuration, then Save.",
            "Under Provisioning, To App: enable Create Users, Update User Attributes and Deactivate Users. Assign people or groups to the app (and push groups on the Push Groups tab). Okta never deletes users: it deactivates them.",
        ],
        "onelogin" => &[
            "In OneLogin, open Applications, Add App, and pick the SCIM Provisioner with SAML (SCIM v2 Enterprise) connector.",
            "On Configuration, paste the SCIM base URL as SCIM Base URL and the token as SCIM Bearer Token, then Enable the API connection.",
            "On Provisioning, tick Enable provisioning, and choose what happens when a user is deleted (Delete or Suspend).",
            "Use the SCIM v2 Enterprise JSON template (dirsync also reads OneLogin's SCIM 1.1 templates). Assign users to the app; updates arrive as full replacements.",
        ],
        "jumpcloud" => &[
            "In the JumpCloud Admin Portal, open SSO Applications, Add New Application, Custom Application, and turn on Identity Management (SCIM).",
            "Paste the SCIM base URL as Base URL and the token as Token Key (Bearer), and give a test user email.",
            "Choose Test Connection: JumpCloud creates and deletes a test user and group, which dirsync accepts. Then Activate.",
            "Bind user groups to the application: JumpCloud provisions by group, and removing a group deactivates its members.",
        ],
        "pingone" => &[
            "In PingOne, open Integrations, Provisioning, add a New Connection of type Identity Store, SCIM Outbound (PingFederate: a SCIM Provisioner channel).",
            "Paste the SCIM base URL as SCIM Base URL; choose OAuth 2 Bearer Token authentication and paste the token.",
            "Keep the user filter userName eq … (or emails eq …), test the connection, then add a rule that says which users and groups to provision, and enable it.",
            "Ping sends every user update as a full replacement (PUT) and lists groups to find them; dirsync answers both.",
        ],
        _ => &[
            "In your identity provider's SCIM 2.0 provisioning settings, give the SCIM base URL.",
            "Authenticate with the token as a bearer token: the header Authorization: Bearer TOKEN.",
            "The endpoints are /Users and /Groups under that URL (and /ServiceProviderConfig, /Schemas, /ResourceTypes); bodies are application/scim+json or application/json.",
            "Push a first user: it appears below with what dirsync made of it.",
        ],
    }
}

#[derive(Template)]
#[template(path = "portal/home.html")]
struct Home {
    chrome: Chrome,
    allows_scim: bool,
    allows_pull: bool,
    scim_vendors: &'static [Choice],
    pull_providers: &'static [Choice],
    directories: Vec<DirectoryView>,
    error: Option<String>,
}

async fn home_page(
    state: &WebState,
    portal: &Portal,
    status: StatusCode,
    error: Option<String>,
) -> Result<HttpResponse, PortalError> {
    let directories = admin::list_directories(&state.store, &portal.tenant)
        .await?
        .into_iter()
        .filter(|d| match Kind::parse(&d.kind) {
            Some(Kind::Scim) => portal.allows.scim,
            Some(Kind::Pull(_)) => portal.allows.pull,
            None => false,
        })
        .collect();
    Ok(render_as(
        status,
        &Home {
            chrome: Chrome::of(portal),
            allows_scim: portal.allows.scim,
            allows_pull: portal.allows.pull,
            scim_vendors: SCIM_VENDORS,
            pull_providers: PULL_PROVIDERS,
            directories,
            error,
        },
    )?)
}

/// `GET /portal`: pick the identity provider (what the link allows), or
/// go back to one set up in this tenant.
pub async fn home(state: web::Data<WebState>, portal: Portal) -> Result<HttpResponse, PortalError> {
    home_page(&state, &portal, StatusCode::OK, None).await
}

/// One logged SCIM request as the live status shows it.
pub struct RequestRow {
    pub at: String,
    pub method: String,
    pub path: String,
    pub status: i32,
    pub is_ok: bool,
    /// The engine's outcomes (`created`, `conflict: why`, …) or the SCIM
    /// error's detail.
    pub result: String,
}

impl RequestRow {
    fn of(r: RequestView) -> RequestRow {
        let mut result: Vec<String> = r
            .outcomes
            .iter()
            .map(|o| match &o.why {
                Some(why) => format!("{}: {why}", o.outcome),
                None => o.outcome.clone(),
            })
            .collect();
        if let Some(detail) = &r.detail {
            result.push(detail.clone());
        }
        RequestRow {
            is_ok: (200..300).contains(&r.status),
            at: r.at,
            method: r.method,
            path: r.path,
            status: r.status,
            result: result.join("; "),
        }
    }
}

/// How many of the latest requests the live status shows.
const LIVE_REQUESTS: u64 = 20;

async fn latest_requests(
    state: &WebState,
    directory_id: &str,
) -> Result<Vec<RequestRow>, PortalError> {
    Ok(admin::scim_requests(
        &state.store,
        directory_id,
        &RequestFilter::default(),
        LIVE_REQUESTS,
    )
    .await?
    .rows
    .into_iter()
    .map(RequestRow::of)
    .collect())
}

#[derive(Template)]
#[template(path = "portal/scim.html")]
struct ScimPage {
    chrome: Chrome,
    directory: DirectoryView,
    vendor_name: &'static str,
    base_url: String,
    /// Shown once, right after it is created.
    token: Option<String>,
    steps: &'static [&'static str],
    requests: Vec<RequestRow>,
}

#[derive(Template)]
#[template(path = "portal/requests.html")]
struct RequestsFragment {
    requests: Vec<RequestRow>,
}

fn view(directory: &Directory, tenant: &str) -> DirectoryView {
    DirectoryView {
        id: directory.id.clone(),
        tenant_id: directory.tenant_id.clone(),
        tenant: tenant.to_owned(),
        name: directory.name.clone(),
        vendor: directory.vendor.clone(),
        kind: directory.kind.clone(),
    }
}

#[derive(Deserialize)]
pub struct NewScim {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    vendor: String,
}

/// A directory name not yet taken in the tenant: `BASE`, `BASE 2`, ….
async fn create_named<T, F, Fut>(base: &str, mut create: F) -> Result<T, AdminError>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<T, AdminError>>,
{
    let mut last = None;
    for n in 1..=20 {
        let name = if n == 1 {
            base.to_owned()
        } else {
            format!("{base} {n}")
        };
        match create(name).await {
            Err(AdminError::Exists(what)) => last = Some(AdminError::Exists(what)),
            other => return other,
        }
    }
    Err(last.unwrap_or_else(|| AdminError::Exists(base.to_owned())))
}

/// `POST /portal/scim`: the tenant's SCIM directory for the vendor and its
/// token, shown once with the base URL and the vendor's steps.
pub async fn create_scim(
    state: web::Data<WebState>,
    portal: Portal,
    form: web::Form<NewScim>,
) -> Result<HttpResponse, PortalError> {
    portal.check(&form.csrf)?;
    portal.allow(Kind::Scim)?;
    let vendor = form.vendor.trim();
    if !SCIM_VENDORS.iter().any(|c| c.id == vendor) {
        return home_page(
            &state,
            &portal,
            StatusCode::BAD_REQUEST,
            Some("choose one of the identity providers listed".into()),
        )
        .await;
    }
    let base = format!("{} (SCIM)", vendor_name(vendor));
    let directory = create_named(&base, |name| {
        let store = state.store.clone();
        let tenant_id = portal.tenant_id.clone();
        async move { admin::api::create_directory(&store, &tenant_id, &name, vendor).await }
    })
    .await?;
    let token = admin::api::create_token(&state.store, &directory.id, Some("setup portal")).await?;
    let page = ScimPage {
        chrome: Chrome::of(&portal),
        vendor_name: vendor_name(&directory.vendor),
        base_url: state.scim_base_url.clone(),
        token: Some(token.token),
        steps: scim_steps(&directory.vendor),
        requests: Vec::new(),
        directory,
    };
    render(&page)
}

/// `GET /portal/directories/{directory}`: a SCIM directory's setup (no
/// token: it was shown once) and live status, or a pull connection's.
pub async fn directory(
    state: web::Data<WebState>,
    portal: Portal,
    id: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let (directory, kind) = portal.directory(&state, &id).await?;
    match kind {
        Kind::Scim => {
            let page = ScimPage {
                chrome: Chrome::of(&portal),
                vendor_name: vendor_name(&directory.vendor),
                base_url: state.scim_base_url.clone(),
                token: None,
                steps: scim_steps(&directory.vendor),
                requests: latest_requests(&state, &directory.id).await?,
                directory: view(&directory, &portal.tenant),
            };
            render(&page)
        }
        Kind::Pull(_) => pull_page(&state, &portal, &directory, Outcome::None).await,
    }
}

/// `GET /portal/directories/{directory}/requests`: the live status (the
/// latest SCIM requests, for htmx to swap in every few seconds).
pub async fn scim_requests(
    state: web::Data<WebState>,
    portal: Portal,
    id: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let (directory, kind) = portal.directory(&state, &id).await?;
    if kind != Kind::Scim {
        return Err(WebError::NotFound("this directory's SCIM requests".into()).into());
    }
    render(&RequestsFragment {
        requests: latest_requests(&state, &directory.id).await?,
    })
}

/// The credentials form's fields (those of the connection file, README
/// "Pulling from…"); the provider's own fields only are read.
#[derive(Debug, Default, Deserialize)]
pub struct PullFields {
    #[serde(default)]
    csrf: String,
    // Entra
    #[serde(default)]
    tenant_id: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    authority_base: String,
    #[serde(default)]
    graph_base: String,
    // Google
    #[serde(default)]
    admin_email: String,
    #[serde(default)]
    customer: String,
    #[serde(default)]
    domain: String,
    #[serde(default)]
    api_base: String,
    #[serde(default)]
    token_url: String,
    // Okta
    #[serde(default)]
    org_url: String,
    #[serde(default)]
    auth: String,
    #[serde(default)]
    key_id: String,
    // Every provider
    #[serde(default)]
    secret: String,
    #[serde(default)]
    group: String,
    #[serde(default)]
    org_unit: String,
    #[serde(default)]
    department: String,
}

impl PullFields {
    /// The connection these fields define, unscheduled (the schedule is
    /// turned on last, once the preview looks right).
    fn definition(&self, provider: Provider) -> Definition {
        let mut settings = serde_json::Map::new();
        let mut set = |key: &str, value: &str| {
            if let Some(v) = present(&Some(value.to_owned())) {
                settings.insert(key.to_owned(), serde_json::Value::String(v));
            }
        };
        match provider {
            Provider::Entra => {
                set("tenant_id", &self.tenant_id);
                set("client_id", &self.client_id);
                set("authority_base", &self.authority_base);
                set("graph_base", &self.graph_base);
            }
            Provider::Google => {
                set("admin_email", &self.admin_email);
                set("customer", &self.customer);
                set("domain", &self.domain);
                set("api_base", &self.api_base);
                set("token_url", &self.token_url);
            }
            Provider::Okta => {
                set("org_url", &self.org_url);
                set("auth", &self.auth);
                set("client_id", &self.client_id);
                set("key_id", &self.key_id);
            }
        }
        let field = |v: &str| present(&Some(v.to_owned()));
        Definition {
            provider,
            settings: serde_json::Value::Object(settings),
            secret: field(&self.secret).map(Secret::new),
            scope: Scope {
                group: field(&self.group),
                org_unit: field(&self.org_unit),
                department: field(&self.department),
            },
            schedule: Schedule {
                enabled: false,
                ..Schedule::default()
            },
        }
    }
}

#[derive(Template)]
#[template(path = "portal/pull_form.html")]
struct PullForm {
    chrome: Chrome,
    provider: &'static str,
    provider_name: &'static str,
    /// What was sent, shown again with the error (never the secret).
    form: PullFields,
    error: Option<String>,
}

impl PullForm {
    fn is(&self, provider: &str) -> bool {
        self.provider == provider
    }
}

fn provider_of(raw: &str) -> Result<Provider, PortalError> {
    Provider::parse(raw).ok_or_else(|| WebError::NotFound(format!("provider {raw:?}")).into())
}

/// `GET /portal/pull/{provider}`: the credentials form.
pub async fn pull_form(
    portal: Portal,
    provider: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let provider = provider_of(&provider)?;
    portal.allow(Kind::Pull(provider))?;
    render(&PullForm {
        chrome: Chrome::of(&portal),
        provider: provider.as_str(),
        provider_name: provider_name(provider.as_str()),
        form: PullFields {
            auth: "ssws".into(),
            ..PullFields::default()
        },
        error: None,
    })
}

/// `POST /portal/pull/{provider}`: the connection, its credentials sealed
/// (`admin::connections::create`); then its page (test, preview, mapping,
/// schedule).
pub async fn create_pull(
    state: web::Data<WebState>,
    portal: Portal,
    provider: web::Path<String>,
    form: web::Form<PullFields>,
) -> Result<HttpResponse, PortalError> {
    portal.check(&form.csrf)?;
    let provider = provider_of(&provider)?;
    portal.allow(Kind::Pull(provider))?;
    let base = provider_name(provider.as_str());
    let created = create_named(base, |name| {
        let store = state.store.clone();
        let tenant_id = portal.tenant_id.clone();
        let key = state.key.clone();
        let definition = form.definition(provider);
        async move {
            admin::api::create_connection(&store, key.as_ref(), &tenant_id, &name, definition).await
        }
    })
    .await;
    match created {
        Ok(connection) => Ok(see_other(&format!(
            "/portal/directories/{}",
            connection.directory_id
        ))),
        Err(AdminError::Invalid(why) | AdminError::Exists(why)) => {
            let form = form.into_inner();
            let page = PullForm {
                chrome: Chrome::of(&portal),
                provider: provider.as_str(),
                provider_name: provider_name(provider.as_str()),
                form: PullFields {
                    secret: String::new(),
                    ..form
                },
                error: Some(why),
            };
            Ok(render_as(StatusCode::BAD_REQUEST, &page)?)
        }
        Err(other) => Err(other.into()),
    }
}

/// What the last action on a pull connection's page gave.
enum Outcome {
    None,
    Tested(Result<String, String>),
    Previewed(Result<Vec<admin::connections::PreviewUser>, String>),
    Mapped(Result<(), String>),
    Scheduled(Result<(), String>),
}

impl Outcome {
    /// The page's status: 400 when the step was refused, else 200.
    fn status(&self) -> StatusCode {
        let refused = match self {
            Outcome::None => false,
            Outcome::Tested(r) => r.is_err(),
            Outcome::Previewed(r) => r.is_err(),
            Outcome::Mapped(r) | Outcome::Scheduled(r) => r.is_err(),
        };
        if refused {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        }
    }
}

#[derive(Template)]
#[template(path = "portal/pull.html")]
struct PullPage {
    chrome: Chrome,
    directory: DirectoryView,
    provider_name: &'static str,
    scope: String,
    scheduled: bool,
    next_run_at: Option<String>,
    mapping: String,
    test_ok: Option<String>,
    test_error: Option<String>,
    preview: Option<Vec<admin::connections::PreviewUser>>,
    preview_error: Option<String>,
    mapping_saved: bool,
    mapping_error: Option<String>,
    schedule_saved: bool,
    schedule_error: Option<String>,
}

async fn pull_page(
    state: &WebState,
    portal: &Portal,
    directory: &Directory,
    outcome: Outcome,
) -> Result<HttpResponse, PortalError> {
    let status = outcome.status();
    let connection = admin::connections::show(&state.store, &directory.id).await?;
    let policy = admin::policy(&state.store, &directory.id).await?;
    let mapping_text = |rules: &[Rule]| {
        if rules.is_empty() {
            String::new()
        } else {
            serde_json::to_string_pretty(rules).unwrap_or_default()
        }
    };
    let mut page = PullPage {
        chrome: Chrome::of(portal),
        directory: view(directory, &portal.tenant),
        provider_name: provider_name(connection.provider.as_str()),
        scope: scope_text(&connection.scope),
        scheduled: connection
            .schedule
            .get("enabled")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false),
        next_run_at: connection.next_run_at.clone(),
        mapping: mapping_text(&policy.attribute_mapping),
        test_ok: None,
        test_error: None,
        preview: None,
        preview_error: None,
        mapping_saved: false,
        mapping_error: None,
        schedule_saved: false,
        schedule_error: None,
    };
    match outcome {
        Outcome::None => {}
        Outcome::Tested(Ok(ok)) => page.test_ok = Some(ok),
        Outcome::Tested(Err(why)) => page.test_error = Some(why),
        Outcome::Previewed(Ok(users)) => page.preview = Some(users),
        Outcome::Previewed(Err(why)) => page.preview_error = Some(why),
        Outcome::Mapped(Ok(())) => page.mapping_saved = true,
        Outcome::Mapped(Err(why)) => page.mapping_error = Some(why),
        Outcome::Scheduled(Ok(())) => page.schedule_saved = true,
        Outcome::Scheduled(Err(why)) => page.schedule_error = Some(why),
    }
    Ok(render_as(status, &page)?)
}

/// The scope as the IT admin set it.
fn scope_text(scope: &serde_json::Value) -> String {
    let parts: Vec<String> = ["group", "org_unit", "department"]
        .iter()
        .filter_map(|k| {
            scope
                .get(*k)
                .and_then(serde_json::Value::as_str)
                .map(|v| format!("{}: {v}", k.replace('_', " ")))
        })
        .collect();
    if parts.is_empty() {
        "every user".to_owned()
    } else {
        parts.join(", ")
    }
}

/// A pull directory of the session's tenant, which its link allowed.
async fn pull_directory(
    state: &WebState,
    portal: &Portal,
    id: &str,
) -> Result<Directory, PortalError> {
    let (directory, kind) = portal.directory(state, id).await?;
    if kind == Kind::Scim {
        return Err(WebError::NotFound("this directory's connection".into()).into());
    }
    Ok(directory)
}

/// A refusal the IT admin can act on (the provider's own words, a value
/// that does not read), as the page shows it; anything else is an error.
fn shown(e: AdminError) -> Result<String, PortalError> {
    match e {
        AdminError::Invalid(why)
        | AdminError::Provider(why)
        | AdminError::Busy(why)
        | AdminError::WrongKind(why) => Ok(why),
        other => Err(other.into()),
    }
}

/// `POST …/test`: the handshake and one small read; the provider's own
/// reason when it fails.
pub async fn test(
    state: web::Data<WebState>,
    portal: Portal,
    id: web::Path<String>,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, PortalError> {
    portal.check(&form.csrf)?;
    let directory = pull_directory(&state, &portal, &id).await?;
    let outcome =
        match admin::connections::test(&state.store, state.key.as_ref(), &directory.id).await {
            Ok(check) => Ok(format!(
                "Connected: {}; {} users read.",
                check.authenticated, check.users_read
            )),
            Err(e) => Err(shown(e)?),
        };
    pull_page(&state, &portal, &directory, Outcome::Tested(outcome)).await
}

/// `POST …/preview`: the first users a run would take in, under the
/// mapping; nothing is written.
pub async fn preview(
    state: web::Data<WebState>,
    portal: Portal,
    id: web::Path<String>,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, PortalError> {
    portal.check(&form.csrf)?;
    let directory = pull_directory(&state, &portal, &id).await?;
    let outcome = match admin::connections::preview(
        &state.store,
        state.key.as_ref(),
        &directory.id,
        admin::connections::PreviewQuery {
            limit: Some(20),
            ..Default::default()
        },
    )
    .await
    {
        Ok(users) => Ok(users),
        Err(e) => Err(shown(e)?),
    };
    pull_page(&state, &portal, &directory, Outcome::Previewed(outcome)).await
}

#[derive(Deserialize)]
pub struct MappingForm {
    #[serde(default)]
    csrf: String,
    /// The rules as JSON (README "Attribute mapping"); empty: the defaults.
    #[serde(default)]
    mapping: String,
}

/// `POST …/mapping`: the attribute mapping, through the one policy change
/// the CLI, the API and the dashboard make (`admin::update_policy`).
pub async fn mapping(
    state: web::Data<WebState>,
    portal: Portal,
    id: web::Path<String>,
    form: web::Form<MappingForm>,
) -> Result<HttpResponse, PortalError> {
    portal.check(&form.csrf)?;
    let directory = pull_directory(&state, &portal, &id).await?;
    let text = form.mapping.trim();
    let rules: Result<Vec<Rule>, String> = if text.is_empty() {
        Ok(Vec::new())
    } else {
        serde_json::from_str(text).map_err(|e| format!("the mapping does not read as rules: {e}"))
    };
    let outcome = match rules {
        Ok(rules) => {
            let change = admin::PolicyChange {
                attribute_mapping: Some(rules),
                ..admin::PolicyChange::default()
            };
            match admin::update_policy(&state.store, &directory.id, change).await {
                Ok(_) => Ok(()),
                Err(e) => Err(shown(e)?),
            }
        }
        Err(why) => Err(why),
    };
    pull_page(&state, &portal, &directory, Outcome::Mapped(outcome)).await
}

#[derive(Deserialize)]
pub struct ScheduleForm {
    #[serde(default)]
    csrf: String,
    /// `on` or `off`.
    #[serde(default)]
    enabled: String,
}

/// `POST …/schedule`: turn the schedule on (the first run is due at once)
/// or off (`admin::connections::update`).
pub async fn schedule(
    state: web::Data<WebState>,
    portal: Portal,
    id: web::Path<String>,
    form: web::Form<ScheduleForm>,
) -> Result<HttpResponse, PortalError> {
    portal.check(&form.csrf)?;
    let directory = pull_directory(&state, &portal, &id).await?;
    let enabled = form.enabled != "off";
    let outcome = match admin::connections::update(
        &state.store,
        state.key.as_ref(),
        &directory.id,
        admin::connections::ConnectionChange {
            schedule: Some(Schedule {
                enabled,
                ..Schedule::default()
            }),
            ..Default::default()
        },
    )
    .await
    {
        Ok(_) => Ok(()),
        Err(e) => Err(shown(e)?),
    };
    pull_page(&state, &portal, &directory, Outcome::Scheduled(outcome)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(PortalError::NoSession, 403)]
    #[case(PortalError::NotAllowed("pull".into()), 403)]
    #[case(PortalError::Link(Refused::Unknown), 404)]
    #[case(PortalError::Link(Refused::Used), 410)]
    #[case(PortalError::Link(Refused::Expired), 410)]
    #[case(PortalError::Link(Refused::Revoked), 410)]
    #[case(PortalError::Web(WebError::Forbidden("csrf".into())), 403)]
    fn each_refusal_has_its_status_and_a_page(#[case] error: PortalError, #[case] status: u16) {
        assert_eq!(error.status_code().as_u16(), status);
        let res = error.error_response();
        assert_eq!(res.status().as_u16(), status);
        assert_eq!(
            res.headers().get(header::CONTENT_TYPE).unwrap(),
            "text/html; charset=utf-8"
        );
    }

    #[test]
    fn a_pull_form_defines_only_its_providers_fields_and_leaves_the_schedule_off() {
        let form = PullFields {
            tenant_id: " contoso.example ".into(),
            client_id: "app".into(),
            admin_email: "admin@example.com".into(),
            secret: "s".into(),
            department: "Sales".into(),
            org_unit: " ".into(),
            ..PullFields::default()
        };
        let definition = form.definition(Provider::Entra);
        assert_eq!(
            definition.settings,
            serde_json::json!({"tenant_id": "contoso.example", "client_id": "app"})
        );
        assert_eq!(definition.scope.department.as_deref(), Some("Sales"));
        assert_eq!(definition.scope.org_unit, None);
        assert!(!definition.schedule.enabled);
        assert_eq!(
            definition.secret.map(|s| s.expose().to_owned()),
            Some("s".into())
        );
    }

    #[test]
    fn the_scope_reads_as_words() {
        assert_eq!(scope_text(&serde_json::json!({})), "every user");
        assert_eq!(
            scope_text(&serde_json::json!({"group": "g1", "org_unit": "/Eng"})),
            "group: g1, org unit: /Eng"
        );
    }

    #[test]
    fn every_scim_vendor_of_the_portal_is_one_dirsync_knows_and_has_steps() {
        for choice in SCIM_VENDORS {
            assert!(admin::VENDORS.contains(&choice.id), "{}", choice.id);
            assert!(!scim_steps(choice.id).is_empty());
        }
        for choice in PULL_PROVIDERS {
            assert!(Provider::parse(choice.id).is_some(), "{}", choice.id);
        }
    }
}
