//! A directory's page: kind, vendor, and for a SCIM directory its base URL,
//! tokens (create shows the secret once; revoke) and policy (view; edit
//! through `admin::PolicyText`, the words the CLI's flags are read as);
//! for a pull directory its connection, "Sync now" and its last runs
//! (each run's page is `runs`). A SCIM directory's page shows its request
//! log (`admin::requests::scim_requests`), filtered by status class and
//! method, paged by the last request's id, with the last request and the
//! last errors summarised above it.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::page::{Chrome, present, render_as, see_other};
use super::session::Operator;
use super::{WebError, WebState};
use crate::admin::directory::{self, Kind};
use crate::admin::requests::{self, RequestFilter, RequestView, StatusClass};
use crate::admin::{self, AdminError, PolicyText, TokenView};
use crate::reconcile::policy::Policy;

/// The policy form's fields, as text: from the policy in force, or as an
/// operator sent them (shown again with the error).
#[derive(Debug, Default, Deserialize)]
pub struct PolicyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    default_role: String,
    #[serde(default)]
    new_user_status: String,
    #[serde(default)]
    on_delete: String,
    #[serde(default)]
    on_missing: String,
    #[serde(default)]
    max_deactivations: String,
    #[serde(default)]
    max_deactivation_percent: String,
    #[serde(default)]
    allowed_domains: String,
    /// A checkbox: present when on.
    group_roles_enabled: Option<String>,
    /// `GROUP=ROLE`, one a line.
    #[serde(default)]
    group_roles: String,
    require_group_membership: Option<String>,
}

impl PolicyForm {
    fn of(p: &Policy) -> PolicyForm {
        PolicyForm {
            csrf: String::new(),
            default_role: p.default_role.clone(),
            new_user_status: word(&p.new_user_status),
            on_delete: word(&p.on_delete),
            on_missing: word(&p.on_missing),
            max_deactivations: p
                .deactivation_threshold
                .max_count
                .map(|n| n.to_string())
                .unwrap_or_default(),
            max_deactivation_percent: p
                .deactivation_threshold
                .max_percent
                .map(|n| n.to_string())
                .unwrap_or_default(),
            allowed_domains: p.allowed_domains.join(", "),
            group_roles_enabled: p.group_roles_enabled.then(|| "on".to_owned()),
            group_roles: p
                .group_roles
                .iter()
                .map(|g| format!("{}={}", g.group, g.role))
                .collect::<Vec<_>>()
                .join("\n"),
            require_group_membership: p.require_group_membership.then(|| "on".to_owned()),
        }
    }

    fn text(&self) -> PolicyText {
        let on_off = |v: &Option<String>| Some(if v.is_some() { "on" } else { "off" }.to_owned());
        PolicyText {
            default_role: Some(self.default_role.clone()),
            new_user_status: Some(self.new_user_status.clone()),
            on_delete: Some(self.on_delete.clone()),
            on_missing: Some(self.on_missing.clone()),
            max_deactivations: Some(self.max_deactivations.clone()),
            max_deactivation_percent: Some(self.max_deactivation_percent.clone()),
            allowed_domains: Some(self.allowed_domains.clone()),
            group_roles_enabled: on_off(&self.group_roles_enabled),
            group_roles: Some(
                self.group_roles
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect(),
            ),
            require_group_membership: on_off(&self.require_group_membership),
        }
    }

    pub fn is_checked(&self, field: &str) -> bool {
        match field {
            "group_roles_enabled" => self.group_roles_enabled.is_some(),
            _ => self.require_group_membership.is_some(),
        }
    }
}

/// A policy enum as the word the form and the CLI use (its serde name).
fn word<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

pub struct Run {
    pub id: String,
    pub directory_id: String,
    pub trigger: String,
    pub mode: String,
    pub status: String,
    pub started_at: String,
    pub finished_at: String,
    pub counts: String,
    pub errors: String,
    /// The run that carried this one out, once approved.
    pub approved_by: String,
}

impl Run {
    /// Still going: its page polls its progress.
    pub fn is_running(&self) -> bool {
        self.status == "running"
    }

    /// Stopped by the mass-deactivation guard, not yet approved.
    pub fn awaits_approval(&self) -> bool {
        self.status == "needs_approval" && self.approved_by.is_empty()
    }

    /// A run's record (`pull::run::run_view`) as the pages show it.
    pub(super) fn of(run: &serde_json::Value) -> Run {
        let text = |k: &str| match &run[k] {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        };
        // `{"users": {"created": 3, …}, "groups": {…}}`: the non-zero
        // counts, as `users created 3`.
        let mut counts = Vec::new();
        if let Some(kinds) = run["counts"].as_object() {
            for (kind, values) in kinds {
                match values {
                    serde_json::Value::Object(values) => {
                        for (what, n) in values {
                            if n.as_u64().is_some_and(|n| n > 0) {
                                counts.push(format!("{kind} {what} {n}"));
                            }
                        }
                    }
                    n if n.as_u64().is_some_and(|n| n > 0) => counts.push(format!("{kind} {n}")),
                    _ => {}
                }
            }
        }
        let counts = counts.join(", ");
        let errors = match &run["errors"] {
            serde_json::Value::Array(a) if !a.is_empty() => a
                .iter()
                .take(3)
                .map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join("; "),
            _ => String::new(),
        };
        Run {
            id: text("id"),
            directory_id: text("directory_id"),
            trigger: text("trigger"),
            mode: text("mode"),
            status: text("status"),
            started_at: text("started_at"),
            finished_at: text("finished_at"),
            counts,
            errors,
            approved_by: text("approved_by_run_id"),
        }
    }
}

pub struct Connection {
    pub provider: String,
    pub scope: String,
    pub schedule: String,
    pub credentials: String,
    pub next_run_at: String,
    pub running_on: String,
}

#[derive(Template)]
#[template(path = "admin/directory.html")]
struct DirectoryPage {
    chrome: Option<Chrome>,
    id: String,
    name: String,
    tenant_id: String,
    tenant: String,
    kind: String,
    vendor: String,
    is_scim: bool,
    scim_base_url: String,
    tokens: Vec<TokenView>,
    /// A token just created: its secret, shown this once.
    new_token: Option<String>,
    token_error: Option<String>,
    policy: PolicyForm,
    policy_error: Option<String>,
    policy_saved: bool,
    connection: Option<Connection>,
    runs: Vec<Run>,
    log: Option<Log>,
}

/// Requests one page of a SCIM directory's log shows.
const LOG_PER_PAGE: u64 = 25;
/// Errors the summary above the log shows.
const LAST_ERRORS: u64 = 3;

/// Which of a SCIM directory's logged requests the page shows.
#[derive(Debug, Default, Deserialize)]
pub struct LogQuery {
    /// `2xx`, `3xx`, `4xx` or `5xx`.
    status: Option<String>,
    method: Option<String>,
    /// Requests older than this one.
    before: Option<String>,
}

/// One logged SCIM request as a row of the page.
pub struct LoggedRequest {
    pub request: RequestView,
    /// Each written resource's outcome in a line: `created 2819c2…`,
    /// `skipped: why`.
    pub outcomes: Vec<String>,
}

impl LoggedRequest {
    fn of(request: RequestView) -> LoggedRequest {
        let outcomes = request
            .outcomes
            .iter()
            .map(|o| {
                let mut line = o.outcome.clone();
                if let Some(op) = o.operation {
                    line = format!("#{op} {line}");
                }
                if let Some(r) = &o.resource {
                    line = format!("{line} {r}");
                }
                if !o.changed.is_empty() {
                    line = format!("{line} ({})", o.changed.join(", "));
                }
                if let Some(why) = &o.why {
                    line = format!("{line}: {why}");
                }
                line
            })
            .collect();
        LoggedRequest { request, outcomes }
    }

    pub fn is_error(&self) -> bool {
        self.request.status >= 400
    }
}

/// The SCIM request log section.
pub struct Log {
    pub last: Option<LoggedRequest>,
    pub last_errors: Vec<LoggedRequest>,
    pub rows: Vec<LoggedRequest>,
    pub status: String,
    pub method: String,
    pub error: Option<String>,
    /// The next (older) page's address.
    pub older: Option<String>,
}

impl Log {
    pub fn is_status(&self, class: impl AsRef<str>) -> bool {
        self.status.eq_ignore_ascii_case(class.as_ref())
    }

    pub fn is_method(&self, method: impl AsRef<str>) -> bool {
        self.method.eq_ignore_ascii_case(method.as_ref())
    }
}

async fn log(state: &WebState, id: &str, query: &LogQuery) -> Result<Log, WebError> {
    let status = present(&query.status).unwrap_or_default();
    let method = present(&query.method).unwrap_or_default();
    let latest = |status| RequestFilter {
        status,
        ..RequestFilter::default()
    };
    let last = requests::scim_requests(&state.store, id, &latest(None), 1)
        .await?
        .rows
        .into_iter()
        .next()
        .map(LoggedRequest::of);
    let mut last_errors = Vec::new();
    for class in [StatusClass::ServerError, StatusClass::ClientError] {
        let page =
            requests::scim_requests(&state.store, id, &latest(Some(class)), LAST_ERRORS).await?;
        last_errors.extend(page.rows);
    }
    // Ids are UUIDv7: newest first is the ids' order, reversed.
    last_errors.sort_by(|a, b| b.id.cmp(&a.id));
    last_errors.truncate(LAST_ERRORS as usize);
    let mut filter = RequestFilter {
        before: present(&query.before),
        ..RequestFilter::default()
    };
    let mut error = None;
    if !status.is_empty() {
        match StatusClass::parse(&status) {
            Ok(class) => filter.status = Some(class),
            Err(e) => error = Some(e.to_string()),
        }
    }
    if !method.is_empty() {
        filter.method = Some(method.clone());
    }
    let (rows, older) = if error.is_some() {
        (Vec::new(), None)
    } else {
        match requests::scim_requests(&state.store, id, &filter, LOG_PER_PAGE).await {
            Ok(page) => {
                let older = page.rows.last().filter(|_| page.more_after).map(|r| {
                    let mut url = url::form_urlencoded::Serializer::new(String::new());
                    if !status.is_empty() {
                        url.append_pair("status", &status);
                    }
                    if !method.is_empty() {
                        url.append_pair("method", &method);
                    }
                    url.append_pair("before", &r.id);
                    format!("/admin/directories/{id}?{}#requests", url.finish())
                });
                (
                    page.rows.into_iter().map(LoggedRequest::of).collect(),
                    older,
                )
            }
            Err(AdminError::Invalid(why)) => {
                error = Some(why);
                (Vec::new(), None)
            }
            Err(other) => return Err(other.into()),
        }
    };
    Ok(Log {
        last,
        last_errors: last_errors.into_iter().map(LoggedRequest::of).collect(),
        rows,
        status,
        method,
        error,
        older,
    })
}

/// What a directory page shows besides its forms' state.
struct Shown {
    status: StatusCode,
    new_token: Option<String>,
    token_error: Option<String>,
    policy: Option<PolicyForm>,
    policy_error: Option<String>,
    policy_saved: bool,
    log: LogQuery,
}

impl Shown {
    fn plain() -> Shown {
        Shown {
            log: LogQuery::default(),
            status: StatusCode::OK,
            new_token: None,
            token_error: None,
            policy: None,
            policy_error: None,
            policy_saved: false,
        }
    }
}

async fn page(
    state: &WebState,
    operator: &Operator,
    id: &str,
    shown: Shown,
) -> Result<HttpResponse, WebError> {
    let named = directory::resolve(&state.store, id).await?;
    let id = named.directory.id.clone();
    let is_scim = matches!(named.kind, Kind::Scim);
    let log = if is_scim {
        Some(log(state, &id, &shown.log).await?)
    } else {
        None
    };
    let (tokens, connection, runs) = if is_scim {
        (
            admin::list_tokens(&state.store, &id).await?,
            None,
            Vec::new(),
        )
    } else {
        let c = admin::connections::show(&state.store, &id).await?;
        let runs = admin::connections::runs(&state.store, &id, 10).await?;
        let compact = |v: &serde_json::Value| match v {
            serde_json::Value::Object(o) if o.is_empty() => "—".to_owned(),
            other => other.to_string(),
        };
        let connection = Connection {
            provider: serde_json::to_value(c.provider)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            scope: compact(&c.scope),
            schedule: compact(&c.schedule),
            credentials: c.credentials,
            next_run_at: c.next_run_at.unwrap_or_else(|| "not scheduled".into()),
            running_on: c.running_on.unwrap_or_else(|| "no run in progress".into()),
        };
        (
            Vec::new(),
            Some(connection),
            runs.iter().map(Run::of).collect(),
        )
    };
    let policy = match shown.policy {
        Some(p) => p,
        None => PolicyForm::of(&admin::policy(&state.store, &id).await?),
    };
    render_as(
        shown.status,
        &DirectoryPage {
            chrome: Some(Chrome::of(operator)),
            id,
            name: named.directory.name.clone(),
            tenant_id: named.tenant.id.clone(),
            tenant: named.tenant.name.clone(),
            kind: named.kind.to_string(),
            vendor: named.directory.vendor.clone(),
            is_scim,
            scim_base_url: state.scim_base_url.clone(),
            tokens,
            new_token: shown.new_token,
            token_error: shown.token_error,
            policy,
            policy_error: shown.policy_error,
            policy_saved: shown.policy_saved,
            connection,
            runs,
            log,
        },
    )
}

pub async fn directory(
    state: web::Data<WebState>,
    operator: Operator,
    id: web::Path<String>,
    query: web::Query<LogQuery>,
) -> Result<HttpResponse, WebError> {
    let shown = Shown {
        log: query.into_inner(),
        ..Shown::plain()
    };
    page(&state, &operator, &id, shown).await
}

/// The directory's page, for the address a form posted to.
pub async fn to_directory(id: web::Path<String>) -> HttpResponse {
    see_other(&format!(
        "/admin/directories/{}",
        percent_encoding::utf8_percent_encode(&id, percent_encoding::NON_ALPHANUMERIC)
    ))
}

#[derive(Deserialize)]
pub struct NewToken {
    #[serde(default)]
    csrf: String,
    label: Option<String>,
}

/// Create a token and show its secret on the page this once (the answer
/// is never cached: every /admin page is `no-store`).
pub async fn create_token(
    state: web::Data<WebState>,
    operator: Operator,
    id: web::Path<String>,
    form: web::Form<NewToken>,
) -> Result<HttpResponse, WebError> {
    operator.check(&form.csrf)?;
    let label = present(&form.label);
    let mut shown = Shown::plain();
    match admin::api::create_token(&state.store, &id, label.as_deref()).await {
        Ok(token) => {
            shown.status = StatusCode::CREATED;
            shown.new_token = Some(token.token);
        }
        Err(AdminError::Invalid(why)) => {
            shown.status = StatusCode::BAD_REQUEST;
            shown.token_error = Some(why);
        }
        Err(other) => return Err(other.into()),
    }
    page(&state, &operator, &id, shown).await
}

#[derive(Deserialize)]
pub struct Revoke {
    #[serde(default)]
    csrf: String,
}

pub async fn revoke_token(
    state: web::Data<WebState>,
    operator: Operator,
    path: web::Path<(String, String)>,
    form: web::Form<Revoke>,
) -> Result<HttpResponse, WebError> {
    operator.check(&form.csrf)?;
    let (id, token) = path.into_inner();
    let revoked = admin::revoke_token(&state.store, &id, &token).await?;
    state.scim_tokens.forget_token(&revoked.id);
    Ok(see_other(&format!("/admin/directories/{id}")))
}

pub async fn update_policy(
    state: web::Data<WebState>,
    operator: Operator,
    id: web::Path<String>,
    form: web::Form<PolicyForm>,
) -> Result<HttpResponse, WebError> {
    operator.check(&form.csrf)?;
    let form = form.into_inner();
    let result = match form.text().change() {
        Ok(change) => admin::update_policy(&state.store, &id, change).await,
        Err(e) => Err(e),
    };
    let mut shown = Shown::plain();
    match result {
        Ok(_) => shown.policy_saved = true,
        Err(AdminError::Invalid(why) | AdminError::WrongKind(why)) => {
            shown.status = StatusCode::BAD_REQUEST;
            shown.policy_error = Some(why);
            shown.policy = Some(form);
        }
        Err(other) => return Err(other.into()),
    }
    page(&state, &operator, &id, shown).await
}
