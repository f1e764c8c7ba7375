//! A directory's page: kind, vendor, and for a SCIM directory its base URL,
//! tokens (create shows the secret once; revoke) and policy (view; edit
//! through `admin::PolicyText`, the words the CLI's flags are read as);
//! for a pull directory its connection and last runs (read only).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::page::{Chrome, present, render_as, see_other};
use super::session::Operator;
use super::{WebError, WebState};
use crate::admin::directory::{self, Kind};
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
    pub trigger: String,
    pub status: String,
    pub started_at: String,
    pub finished_at: String,
    pub counts: String,
    pub errors: String,
}

impl Run {
    fn of(run: &serde_json::Value) -> Run {
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
            trigger: text("trigger"),
            status: text("status"),
            started_at: text("started_at"),
            finished_at: text("finished_at"),
            counts,
            errors,
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
}

/// What a directory page shows besides its forms' state.
struct Shown {
    status: StatusCode,
    new_token: Option<String>,
    token_error: Option<String>,
    policy: Option<PolicyForm>,
    policy_error: Option<String>,
    policy_saved: bool,
}

impl Shown {
    fn plain() -> Shown {
        Shown {
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
        },
    )
}

pub async fn directory(
    state: web::Data<WebState>,
    operator: Operator,
    id: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    page(&state, &operator, &id, Shown::plain()).await
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
