//! The home page (every tenant with its directories; create a tenant) and
//! a tenant's page (its directories; create a SCIM directory).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::page::{Chrome, render_as, see_other};
use super::session::Operator;
use super::{WebError, WebState};
use crate::admin::{self, AdminError, DirectoryView, TenantView};

pub struct TenantRow {
    pub tenant: TenantView,
    pub directories: Vec<DirectoryView>,
}

#[derive(Template)]
#[template(path = "admin/home.html")]
struct Home {
    chrome: Option<Chrome>,
    tenants: Vec<TenantRow>,
    name: String,
    error: Option<String>,
}

async fn home_page(
    state: &WebState,
    operator: &Operator,
    status: StatusCode,
    name: String,
    error: Option<String>,
) -> Result<HttpResponse, WebError> {
    let mut tenants = Vec::new();
    for tenant in admin::list_tenants(&state.store).await? {
        let directories = admin::list_directories(&state.store, &tenant.name).await?;
        tenants.push(TenantRow {
            tenant,
            directories,
        });
    }
    render_as(
        status,
        &Home {
            chrome: Some(Chrome::of(operator)),
            tenants,
            name,
            error,
        },
    )
}

pub async fn home(
    state: web::Data<WebState>,
    operator: Operator,
) -> Result<HttpResponse, WebError> {
    home_page(&state, &operator, StatusCode::OK, String::new(), None).await
}

#[derive(Deserialize)]
pub struct NewTenant {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

pub async fn create_tenant(
    state: web::Data<WebState>,
    operator: Operator,
    form: web::Form<NewTenant>,
) -> Result<HttpResponse, WebError> {
    operator.check(&form.csrf)?;
    match admin::create_tenant(&state.store, &form.name).await {
        Ok(tenant) => Ok(see_other(&format!("/admin/tenants/{}", tenant.id))),
        Err(AdminError::Invalid(why)) => {
            home_page(
                &state,
                &operator,
                StatusCode::BAD_REQUEST,
                form.name.clone(),
                Some(why),
            )
            .await
        }
        Err(AdminError::Exists(what)) => {
            let why = format!("{what} already exists");
            home_page(
                &state,
                &operator,
                StatusCode::CONFLICT,
                form.name.clone(),
                Some(why),
            )
            .await
        }
        Err(other) => Err(other.into()),
    }
}

#[derive(Template)]
#[template(path = "admin/tenant.html")]
struct TenantPage {
    chrome: Option<Chrome>,
    tenant: TenantView,
    directories: Vec<DirectoryView>,
    vendors: &'static [&'static str],
    name: String,
    vendor: String,
    error: Option<String>,
    /// The tenant's setup links (never their secrets).
    setup_links: Vec<crate::admin::setup::SetupLinkView>,
    /// A link just created: its URL, shown once; or why it was not.
    new_setup_link: Option<Result<String, String>>,
}

impl TenantPage {
    fn is_vendor(&self, v: impl AsRef<str>) -> bool {
        v.as_ref() == self.vendor
    }
}

async fn tenant_page(
    state: &WebState,
    operator: &Operator,
    tenant_id: &str,
    status: StatusCode,
    form: Option<&NewDirectory>,
    error: Option<String>,
) -> Result<HttpResponse, WebError> {
    tenant_page_with(state, operator, tenant_id, status, form, error, None).await
}

async fn tenant_page_with(
    state: &WebState,
    operator: &Operator,
    tenant_id: &str,
    status: StatusCode,
    form: Option<&NewDirectory>,
    error: Option<String>,
    new_setup_link: Option<Result<String, String>>,
) -> Result<HttpResponse, WebError> {
    let tenant = state.store.tenant(tenant_id).await.map_err(|_| {
        WebError::NotFound(format!("tenant {}", crate::domain::text::quoted(tenant_id)))
    })?;
    let directories = admin::list_directories(&state.store, &tenant.name).await?;
    let setup_links = crate::admin::setup::list(&state.store, &tenant.id).await?;
    render_as(
        status,
        &TenantPage {
            setup_links,
            new_setup_link,
            chrome: Some(Chrome::of(operator)),
            tenant: TenantView {
                id: tenant.id,
                name: tenant.name,
            },
            directories,
            vendors: admin::VENDORS,
            name: form.map(|f| f.name.clone()).unwrap_or_default(),
            vendor: form.map_or_else(|| "generic".to_owned(), |f| f.vendor.clone()),
            error,
        },
    )
}

pub async fn tenant(
    state: web::Data<WebState>,
    operator: Operator,
    tenant_id: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    tenant_page(&state, &operator, &tenant_id, StatusCode::OK, None, None).await
}

#[derive(Deserialize)]
pub struct NewDirectory {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    vendor: String,
}

pub async fn create_directory(
    state: web::Data<WebState>,
    operator: Operator,
    tenant_id: web::Path<String>,
    form: web::Form<NewDirectory>,
) -> Result<HttpResponse, WebError> {
    operator.check(&form.csrf)?;
    if form.kind != "scim" {
        // A pull directory comes with its connection, whose credentials
        // the dashboard does not take yet.
        let why = "a pull directory is created with its connection: dirsync connection create, \
                   or POST /api/v1/connections"
            .to_owned();
        return tenant_page(
            &state,
            &operator,
            &tenant_id,
            StatusCode::BAD_REQUEST,
            Some(&form),
            Some(why),
        )
        .await;
    }
    match admin::api::create_directory(&state.store, &tenant_id, &form.name, &form.vendor).await {
        Ok(directory) => Ok(see_other(&format!("/admin/directories/{}", directory.id))),
        Err(AdminError::Invalid(why)) => {
            tenant_page(
                &state,
                &operator,
                &tenant_id,
                StatusCode::BAD_REQUEST,
                Some(&form),
                Some(why),
            )
            .await
        }
        Err(AdminError::Exists(what)) => {
            let why = format!("{what} already exists");
            tenant_page(
                &state,
                &operator,
                &tenant_id,
                StatusCode::CONFLICT,
                Some(&form),
                Some(why),
            )
            .await
        }
        Err(other) => Err(other.into()),
    }
}

#[derive(Deserialize)]
pub struct NewSetupLink {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    allow: String,
    #[serde(default)]
    expires: String,
}

/// Create a setup link for the tenant's IT admin (`admin::setup::create`,
/// as the CLI and the API); its URL is shown once, on the tenant's page.
pub async fn create_setup_link(
    state: web::Data<WebState>,
    operator: Operator,
    tenant_id: web::Path<String>,
    form: web::Form<NewSetupLink>,
) -> Result<HttpResponse, WebError> {
    use crate::admin::setup;
    operator.check(&form.csrf)?;
    let tenant = state.store.tenant(&tenant_id).await.map_err(|_| {
        WebError::NotFound(format!(
            "tenant {}",
            crate::domain::text::quoted(&tenant_id)
        ))
    })?;
    let created = async {
        let allows = setup::Allows::parse(&form.allow)?;
        let expires = setup::parse_expiry(&form.expires)?;
        setup::create(
            &state.store,
            &tenant.id,
            allows,
            expires,
            &operator.email,
            &state.portal.public_url,
        )
        .await
    }
    .await;
    let (status, outcome) = match created {
        Ok(link) => (StatusCode::CREATED, Ok(link.url)),
        Err(AdminError::Invalid(why)) => (StatusCode::BAD_REQUEST, Err(why)),
        Err(other) => return Err(other.into()),
    };
    tenant_page_with(
        &state,
        &operator,
        &tenant.id,
        status,
        None,
        None,
        Some(outcome),
    )
    .await
}
