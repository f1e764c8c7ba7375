//! A tenant's groups (`admin::groups`) with each group's members, named by
//! their email from `store`. Uses actix_web and askama.

use actix_web::{HttpResponse, web};
use askama::Template;

use super::page::{Chrome, render};
use super::session::Operator;
use super::{WebError, WebState};
use crate::admin::{self, TenantView};

pub struct Member {
    pub id: String,
    pub email: String,
}

pub struct Group {
    pub id: String,
    pub name: String,
    pub external_id: String,
    pub directory_id: String,
    pub members: Vec<Member>,
}

#[derive(Template)]
#[template(path = "admin/groups.html")]
struct GroupsPage {
    chrome: Option<Chrome>,
    tenant: TenantView,
    groups: Vec<Group>,
}

pub async fn groups(
    state: web::Data<WebState>,
    operator: Operator,
    tenant_id: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let tenant = state.store.tenant(&tenant_id).await.map_err(|_| {
        WebError::NotFound(format!(
            "tenant {}",
            crate::domain::text::quoted(&tenant_id)
        ))
    })?;
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    let rows = admin::groups(&state.store, &tenant.name).await?;
    let ids: Vec<String> = rows
        .iter()
        .flat_map(|g| g["members"].as_array().cloned().unwrap_or_default())
        .filter_map(|m| m.as_str().map(str::to_owned))
        .collect();
    let emails: std::collections::HashMap<String, String> =
        crate::store::app::users::users_by_id(state.store.connection(), &ids)
            .await?
            .into_iter()
            .map(|u| (u.id, u.email))
            .collect();
    let groups = rows
        .iter()
        .map(|g| {
            let mut members: Vec<Member> = g["members"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| m.as_str())
                .map(|id| Member {
                    id: id.to_owned(),
                    email: emails.get(id).cloned().unwrap_or_else(|| id.to_owned()),
                })
                .collect();
            members.sort_by(|a, b| a.email.cmp(&b.email));
            Group {
                id: text(&g["id"]),
                name: text(&g["name"]),
                external_id: text(&g["external_id"]),
                directory_id: text(&g["directory_id"]),
                members,
            }
        })
        .collect();
    render(&GroupsPage {
        chrome: Some(Chrome::of(&operator)),
        tenant: TenantView {
            id: tenant.id,
            name: tenant.name,
        },
        groups,
    })
}
