//! A tenant's users, searched and filtered (status, directory, department,
//! group; the host API's `UserQuery` reads the form, `store::pages::users`
//! answers it), and a user's page: profile, custom attributes, groups, the
//! directories that link them, and the timeline of their events.

use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::page::{Chrome, present, render};
use super::session::Operator;
use super::{WebError, WebState};
use crate::admin::{self, DirectoryView, EventView, TenantView};
use crate::api::users::UserQuery;
use crate::api::{Page, Paging};
use crate::reconcile::apply::UserView;
use crate::store::pages::{self, Anchor};

/// Users one page of the list shows.
const PER_PAGE: u64 = 50;
/// Groups the filter's list offers (the first, in id order).
const GROUP_CHOICES: u64 = 200;
/// Events a user's timeline shows (the first, oldest first).
const TIMELINE: u64 = 200;

#[derive(Debug, Default, Deserialize)]
pub struct Search {
    q: Option<String>,
    status: Option<String>,
    directory: Option<String>,
    department: Option<String>,
    group: Option<String>,
    after: Option<String>,
    before: Option<String>,
}

impl Search {
    fn query(&self) -> UserQuery {
        UserQuery {
            directory: present(&self.directory),
            status: present(&self.status),
            email: None,
            group: present(&self.group),
            department: present(&self.department),
            updated_after: None,
            q: present(&self.q),
        }
    }

    /// This search's address with another page's cursor.
    fn link(&self, tenant_id: &str, cursor: (&str, &str)) -> String {
        let mut url = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("q", &self.q),
            ("status", &self.status),
            ("directory", &self.directory),
            ("department", &self.department),
            ("group", &self.group),
        ] {
            if let Some(v) = present(v) {
                url.append_pair(k, &v);
            }
        }
        url.append_pair(cursor.0, cursor.1);
        format!("/admin/tenants/{tenant_id}/users?{}", url.finish())
    }
}

pub struct Choice {
    pub value: String,
    pub label: String,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersPage {
    chrome: Option<Chrome>,
    tenant: TenantView,
    q: String,
    status: String,
    directory: String,
    department: String,
    group: String,
    statuses: &'static [&'static str],
    directories: Vec<Choice>,
    groups: Vec<Choice>,
    users: Vec<UserView>,
    error: Option<String>,
    next: Option<String>,
    prev: Option<String>,
}

impl UsersPage {
    fn is_status(&self, s: impl AsRef<str>) -> bool {
        s.as_ref() == self.status
    }
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

pub async fn list_users(
    state: web::Data<WebState>,
    operator: Operator,
    tenant_id: web::Path<String>,
    search: web::Query<Search>,
) -> Result<HttpResponse, WebError> {
    let tenant = tenant_view(&state, &tenant_id).await?;
    let conn = state.store.connection();
    let directories = admin::list_directories(&state.store, &tenant.name)
        .await?
        .into_iter()
        .map(|d| Choice {
            label: format!("{} ({})", d.name, d.kind),
            value: d.id,
        })
        .collect();
    let groups = pages::groups(conn, &tenant.id, None, None, &Anchor::Start, GROUP_CHOICES)
        .await?
        .rows
        .into_iter()
        .map(|g| Choice {
            value: g.id,
            label: g.name,
        })
        .collect();
    let paging = Paging {
        after: present(&search.after),
        before: present(&search.before),
        limit: Some(PER_PAGE),
    };
    let found = match (search.query().filter(), paging.window("users")) {
        (Ok(filter), Ok((from, limit))) => {
            let page = pages::users(conn, &tenant.id, &filter, &from, limit).await?;
            Ok(Page::of("users", page, |u| &u.id, |u| UserView::from(u)))
        }
        (Err(problem), _) | (_, Err(problem)) => Err(problem.detail),
    };
    let (users, next, prev, error) = match found {
        Ok(page) => (
            page.data,
            page.next_cursor
                .map(|c| search.link(&tenant.id, ("after", &c))),
            page.prev_cursor
                .map(|c| search.link(&tenant.id, ("before", &c))),
            None,
        ),
        Err(why) => (Vec::new(), None, None, Some(why)),
    };
    let field = |v: &Option<String>| present(v).unwrap_or_default();
    render(&UsersPage {
        chrome: Some(Chrome::of(&operator)),
        tenant,
        q: field(&search.q),
        status: field(&search.status),
        directory: field(&search.directory),
        department: field(&search.department),
        group: field(&search.group),
        statuses: &["PENDING", "ACTIVE", "DEACTIVATED"],
        directories,
        groups,
        users,
        error,
        next,
        prev,
    })
}

pub struct Attribute {
    pub name: String,
    pub value: String,
}

pub struct Linked {
    pub directory_id: String,
    pub directory: String,
    pub source_id: String,
    pub external_id: String,
    pub state: String,
}

pub struct Moment {
    pub at: String,
    pub kind: String,
    pub summary: String,
    pub data: String,
}

impl Moment {
    /// What an event says about the user in a line: the fields it changed,
    /// who deactivated them, which directory spoke.
    fn of(event: &EventView) -> Moment {
        let data = &event.data;
        let mut parts = Vec::new();
        if let Some(changed) = data["changed"].as_array().filter(|c| !c.is_empty()) {
            let names: Vec<&str> = changed.iter().filter_map(|c| c.as_str()).collect();
            parts.push(format!("changed: {}", names.join(", ")));
        }
        let user = data.get("user").unwrap_or(data);
        if let Some(status) = user["status"].as_str() {
            parts.push(format!("status {status}"));
        }
        if let Some(by) = user["deactivated_by"].as_str() {
            parts.push(format!("deactivated by {by}"));
        }
        for key in ["reason", "directory_id"] {
            if let Some(v) = data[key].as_str() {
                parts.push(format!("{}: {v}", key.replace('_', " ")));
            }
        }
        Moment {
            at: event.created_at.clone(),
            kind: event.r#type.clone(),
            summary: parts.join("; "),
            data: serde_json::to_string_pretty(data).unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "admin/user.html")]
struct UserPage {
    chrome: Option<Chrome>,
    tenant: TenantView,
    name: String,
    profile: Vec<Attribute>,
    custom: Vec<Attribute>,
    groups: Vec<String>,
    links: Vec<Linked>,
    timeline: Vec<Moment>,
    more_events: bool,
}

pub async fn user(
    state: web::Data<WebState>,
    operator: Operator,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, WebError> {
    let (tenant_id, user_id) = path.into_inner();
    let tenant = tenant_view(&state, &tenant_id).await?;
    let conn = state.store.connection();
    let user = pages::user(conn, &tenant.id, &user_id)
        .await?
        .map(|u| UserView::from(&u))
        .ok_or_else(|| {
            WebError::NotFound(format!("user {}", crate::domain::text::quoted(&user_id)))
        })?;
    let groups = pages::groups_of_user(conn, &user.id)
        .await?
        .into_iter()
        .map(|g| g.name)
        .collect();
    let directories: Vec<DirectoryView> =
        admin::list_directories(&state.store, &tenant.name).await?;
    let links = crate::store::app::links::links_of_users(conn, std::slice::from_ref(&user.id))
        .await?
        .into_iter()
        .map(|l| Linked {
            directory: directories
                .iter()
                .find(|d| d.id == l.directory_id)
                .map_or_else(|| l.directory_id.clone(), |d| d.name.clone()),
            directory_id: l.directory_id,
            source_id: l.source_id,
            external_id: l.external_id.unwrap_or_default(),
            state: match (l.removed_at, l.directory_active) {
                (Some(_), _) => "removed by the directory".into(),
                (None, true) => "active in the directory".into(),
                (None, false) => "inactive in the directory".into(),
            },
        })
        .collect();
    let read = crate::store::events::read(
        conn,
        &tenant.id,
        0,
        &crate::store::events::EventFilter {
            types: Vec::new(),
            resource_id: Some(user.id.clone()),
        },
        crate::store::events::Budget {
            count: TIMELINE,
            bytes: crate::config::DEFAULT_MAX_PAGE_BYTES,
        },
        EventView::size_of,
    )
    .await?;
    let more_events = read.is_cut;
    let timeline = read
        .events
        .into_iter()
        .map(|e| Moment::of(&EventView::from(e)))
        .collect();
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let profile = [
        ("Email", user.email.clone()),
        ("Status", user.status.clone()),
        ("Deactivated by", text(&user.deactivated_by)),
        ("Role", user.role.clone()),
        (
            "Signed in",
            if user.has_signed_in { "yes" } else { "not yet" }.into(),
        ),
        ("Given name", text(&user.given_name)),
        ("Family name", text(&user.family_name)),
        ("Display name", text(&user.display_name)),
        ("Department", text(&user.department)),
        ("Title", text(&user.title)),
        ("Employee number", text(&user.employee_number)),
        ("Manager", text(&user.manager)),
        ("Avatar", text(&user.avatar_url)),
        ("Created", user.created_at.clone()),
        ("Updated", user.updated_at.clone()),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(name, value)| Attribute {
        name: name.to_owned(),
        value,
    })
    .collect();
    let custom = user
        .custom_attributes
        .iter()
        .map(|(name, v)| Attribute {
            name: name.clone(),
            value: v.as_str().map_or_else(|| v.to_string(), str::to_owned),
        })
        .collect();
    let name = user
        .display_name
        .clone()
        .unwrap_or_else(|| user.email.clone());
    render(&UserPage {
        chrome: Some(Chrome::of(&operator)),
        tenant,
        name,
        profile,
        custom,
        groups,
        links,
        timeline,
        more_events,
    })
}
