//! The import wizard: choose one of the tenant's pull directories, preview
//! its provider's users (`admin::connections::preview`: searched, one
//! department, nothing written), tick some or all, import them
//! (`admin::api::import`: a run of mode `import`), and read what it did.
//! Uses actix_web and askama.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::page::{Chrome, present, render, render_as};
use super::session::Operator;
use super::{WebError, WebState};
use crate::admin::connections::{ImportRequest, ImportSummary, PreviewQuery, PreviewUser};
use crate::admin::{self, AdminError, DirectoryView, TenantView};

#[derive(Debug, Default, Deserialize)]
pub struct Wizard {
    directory: Option<String>,
    search: Option<String>,
    department: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/import.html")]
struct ImportPage {
    chrome: Option<Chrome>,
    tenant: TenantView,
    /// The tenant's pull directories.
    directories: Vec<DirectoryView>,
    directory: String,
    search: String,
    department: String,
    /// None until a directory is chosen.
    users: Option<Vec<PreviewUser>>,
    error: Option<String>,
}

async fn tenant_view(state: &WebState, tenant_id: &str) -> Result<TenantView, WebError> {
    let tenant = state.store.tenant(tenant_id).await.map_err(|_| {
        WebError::NotFound(format!("tenant {}", crate::domain::text::quoted(tenant_id)))
    })?;
    Ok(TenantView {
        id: tenant.id,
        name: tenant.name,
    })
}

pub async fn import_form(
    state: web::Data<WebState>,
    operator: Operator,
    tenant_id: web::Path<String>,
    wizard: web::Query<Wizard>,
) -> Result<HttpResponse, WebError> {
    let tenant = tenant_view(&state, &tenant_id).await?;
    let directories: Vec<DirectoryView> = admin::list_directories(&state.store, &tenant.name)
        .await?
        .into_iter()
        .filter(|d| d.kind != "scim")
        .collect();
    let chosen = present(&wizard.directory);
    let mut error = None;
    let mut status = StatusCode::OK;
    let mut users = None;
    if let Some(chosen) = &chosen {
        let directory = admin::api::directory_in(&state.store, &tenant.id, chosen).await?;
        let query = PreviewQuery {
            search: present(&wizard.search),
            department: present(&wizard.department),
            limit: None,
        };
        match admin::connections::preview(&state.store, state.key.as_ref(), &directory.id, query)
            .await
        {
            Ok(found) => users = Some(found),
            // The provider's own words: the operator can act on them.
            Err(AdminError::Provider(why)) => {
                status = StatusCode::BAD_GATEWAY;
                error = Some(why);
            }
            Err(AdminError::Invalid(why) | AdminError::WrongKind(why)) => {
                status = StatusCode::BAD_REQUEST;
                error = Some(why);
            }
            Err(other) => return Err(other.into()),
        }
    }
    render_as(
        status,
        &ImportPage {
            chrome: Some(Chrome::of(&operator)),
            tenant,
            directories,
            directory: chosen.unwrap_or_default(),
            search: present(&wizard.search).unwrap_or_default(),
            department: present(&wizard.department).unwrap_or_default(),
            users,
            error,
        },
    )
}

#[derive(Template)]
#[template(path = "admin/imported.html")]
struct Imported {
    chrome: Option<Chrome>,
    tenant: TenantView,
    directory: String,
    directory_id: String,
    summary: ImportSummary,
    problems: Vec<String>,
}

/// Import the ticked users (`user`, repeated) or `all` of the chosen
/// directory's, and show what the import did.
pub async fn import_users(
    state: web::Data<WebState>,
    operator: Operator,
    tenant_id: web::Path<String>,
    // Repeated fields (one `user` a ticked box) read as pairs.
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, WebError> {
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    operator.check(&field("csrf"))?;
    let tenant = tenant_view(&state, &tenant_id).await?;
    let directory = admin::api::directory_in(&state.store, &tenant.id, &field("directory")).await?;
    let selection = ImportRequest {
        users: form
            .iter()
            .filter(|(k, _)| k == "user")
            .map(|(_, v)| v.clone())
            .collect(),
        all: field("all") == "on",
    };
    let summary =
        admin::api::import(&state.store, state.key.as_ref(), &directory.id, selection).await?;
    let problems = summary
        .problems
        .iter()
        .map(|p| match p {
            serde_json::Value::Object(o) => o
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{k}: {}",
                        v.as_str().map_or_else(|| v.to_string(), str::to_owned)
                    )
                })
                .collect::<Vec<_>>()
                .join(", "),
            other => other.to_string(),
        })
        .collect();
    render(&Imported {
        chrome: Some(Chrome::of(&operator)),
        tenant,
        directory: directory.name,
        directory_id: directory.id,
        summary,
        problems,
    })
}
