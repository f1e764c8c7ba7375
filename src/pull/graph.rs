//! The Microsoft Graph (Entra ID) connector (pull_apis.md §2): the OAuth 2.0
//! client-credentials grant against the configured authority, then users by
//! delta query (full round, then incremental rounds from the deltaLink) or,
//! with a group scope, the group's transitive members; groups and their
//! direct user members by `@odata.nextLink` paging. Both endpoints are
//! settings, so the same code runs against Microsoft or `pull::fake::graph`.
//! Translation only: every answer becomes snapshots or a `PullError` in
//! Graph's own words; nothing here touches the store.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::instrument;

use super::PullError;
use super::normalize::graph_user;
use super::retry::{Answer, Pacing, Retry, transient};
use super::source::{Check, GroupPage, MemberPage, Position, Scope, Source, UserPage};
use crate::crypto::Secret;
use crate::reconcile::groups::GroupSnapshot;

/// The Graph fields dirsync reads. `accountEnabled`, `department` and
/// `employeeId` come back only when selected (pull_apis.md §2B); delta tracks
/// only what is selected and keeps the selection in its tokens (§2C).
const USER_FIELDS: &str = "id,userPrincipalName,mail,displayName,givenName,surname,accountEnabled,department,jobTitle,employeeId";

/// Graph's maximum page size for users, groups and members (§2B).
const TOP: u32 = 999;

/// Renew the access token this long before Entra says it expires, so a
/// request never leaves with a token about to lapse.
const RENEW_EARLY: Duration = Duration::from_secs(60);

/// The directoryObject type of users in member listings (§2B).
const USER_TYPE: &str = "#microsoft.graph.user";

fn default_authority_base() -> String {
    "https://login.microsoftonline.com".to_owned()
}

fn default_graph_base() -> String {
    "https://graph.microsoft.com/v1.0".to_owned()
}

/// The non-secret half of an Entra connection; the client secret is sealed
/// apart and handed to `Graph::new`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The directory (tenant) id, a GUID, or a domain such as
    /// `contoso.onmicrosoft.com`.
    pub tenant_id: String,
    /// The app registration's application (client) id.
    pub client_id: String,
    /// Where tokens come from: `{authority_base}/{tenant}/oauth2/v2.0/token`.
    #[serde(default = "default_authority_base")]
    pub authority_base: String,
    /// The Graph API root, version included.
    #[serde(default = "default_graph_base")]
    pub graph_base: String,
}

impl Settings {
    /// Why these settings cannot be used, if they cannot.
    pub fn validate(&self) -> Result<(), String> {
        let tenant = self.tenant_id.trim();
        if tenant.is_empty() {
            return Err("tenant_id is empty: give the directory (tenant) id or its domain".into());
        }
        if !tenant
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        {
            return Err(format!(
                "tenant_id {tenant:?} is not a tenant id or domain (letters, digits, '-', '.')"
            ));
        }
        if self.client_id.trim().is_empty() {
            return Err(
                "client_id is empty: give the app registration's application (client) id".into(),
            );
        }
        for (name, value) in [
            ("authority_base", &self.authority_base),
            ("graph_base", &self.graph_base),
        ] {
            let url = url::Url::parse(value)
                .map_err(|e| format!("{name} {value:?} is not a URL: {e}"))?;
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return Err(format!("{name} {value:?} is not an http(s) URL"));
            }
        }
        Ok(())
    }

    fn graph_base(&self) -> &str {
        self.graph_base.trim_end_matches('/')
    }

    /// The client-credentials scope for this Graph: `<graph host>/.default`
    /// (AADSTS1002012 otherwise, §2A).
    fn scope(&self) -> String {
        match url::Url::parse(&self.graph_base) {
            Ok(url) => format!("{}/.default", url.origin().ascii_serialization()),
            Err(_) => "https://graph.microsoft.com/.default".to_owned(),
        }
    }
}

/// An access token and when to stop using it.
struct Token {
    value: Secret,
    renew_at: Instant,
}

/// A Graph connection: one tenant, one app registration, one scope.
pub struct Graph {
    http: reqwest::Client,
    settings: Settings,
    /// The group whose transitive members are the connection's users.
    group: Option<String>,
    secret: Secret,
    pacing: Pacing,
    token: Option<Token>,
}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graph")
            .field("settings", &self.settings)
            .field("group", &self.group)
            .field("pacing", &self.pacing)
            .field("has_token", &self.token.is_some())
            .finish_non_exhaustive()
    }
}

/// The kind of listing a request belongs to: a delta request's 410 means
/// its token expired; elsewhere 410 is just an error.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Listing {
    Delta,
    Other,
}

impl Graph {
    pub fn new(
        settings: Settings,
        scope: &Scope,
        secret: Secret,
        pacing: Pacing,
    ) -> Result<Graph, PullError> {
        settings.validate().map_err(PullError::Config)?;
        if secret.expose().trim().is_empty() {
            return Err(PullError::Config(
                "the client secret is empty: give the secret's value (not its id)".into(),
            ));
        }
        if scope.org_unit.is_some() {
            return Err(PullError::Config(
                "an organizational unit scope is Google's; an Entra connection is scoped by group"
                    .into(),
            ));
        }
        let group = match scope.group.as_deref().map(str::trim) {
            Some("") => return Err(PullError::Config("the scope's group id is empty".into())),
            Some(id) => Some(id.to_owned()),
            None => None,
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| PullError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Graph {
            http,
            settings,
            group,
            secret,
            pacing,
            token: None,
        })
    }

    /// The access token, fetched (or renewed, ~60 s before it expires).
    #[instrument(skip_all, fields(tenant_id = %self.settings.tenant_id))]
    async fn token(&mut self) -> Result<Secret, PullError> {
        if let Some(token) = &self.token
            && Instant::now() < token.renew_at
        {
            return Ok(token.value.clone());
        }
        self.token = None;
        let url = format!(
            "{}/{}/oauth2/v2.0/token",
            self.settings.authority_base.trim_end_matches('/'),
            self.settings.tenant_id.trim()
        );
        let scope = self.settings.scope();
        let form = [
            ("client_id", self.settings.client_id.trim()),
            ("client_secret", self.secret.expose()),
            ("scope", scope.as_str()),
            ("grant_type", "client_credentials"),
        ];
        let answer = self
            .pacing
            .send(|| self.http.post(&url).form(&form), classify)
            .await?;
        let body = answer.json();
        if !answer.is_success() {
            // Entra's `error_description` names the cause (AADSTS7000215:
            // invalid secret, AADSTS700016: unknown app, …), §2A.
            let why = body["error_description"]
                .as_str()
                .or(body["error"].as_str())
                .map(first_line)
                .unwrap_or_else(|| format!("the token endpoint answered {}", answer.status));
            if transient(&answer) {
                return Err(self.exhausted(why));
            }
            return Err(PullError::Auth(why));
        }
        let value = body["access_token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| PullError::Auth("the token response has no access_token".into()))?;
        // Entra always sends `expires_in` (3599 s); without it, assume a
        // short life rather than reuse a token that may be dead.
        let lifetime = body["expires_in"]
            .as_u64()
            .or_else(|| body["expires_in"].as_str().and_then(|s| s.parse().ok()))
            .map(Duration::from_secs)
            .unwrap_or(Duration::from_secs(300));
        let value = Secret::new(value.to_owned());
        self.token = Some(Token {
            value: value.clone(),
            renew_at: Instant::now() + lifetime.saturating_sub(RENEW_EARLY),
        });
        Ok(value)
    }

    fn exhausted(&self, last: String) -> PullError {
        PullError::Exhausted {
            attempts: self.pacing.attempts.max(1),
            last,
        }
    }

    /// GET one Graph URL (retried through `Pacing`); a 401 means the token
    /// died early (revoked, clock skew): renew it once and send again.
    async fn get(&mut self, url: &str, listing: Listing) -> Result<Value, PullError> {
        let mut renewed = false;
        loop {
            let token = self.token().await?;
            let answer = self
                .pacing
                .send(|| self.http.get(url).bearer_auth(token.expose()), classify)
                .await?;
            if answer.is_success() {
                return serde_json::from_slice(&answer.body).map_err(|e| PullError::Provider {
                    status: answer.status,
                    message: format!("the answer is not JSON: {e}"),
                });
            }
            if answer.status == 401 && !renewed {
                self.token = None;
                renewed = true;
                continue;
            }
            return Err(self.failure(&answer, listing));
        }
    }

    /// A Graph error answer in Graph's words (`code: message`, §2D).
    fn failure(&self, answer: &Answer, listing: Listing) -> PullError {
        let body = answer.json();
        let code = body["error"]["code"].as_str().unwrap_or_default();
        let message = graph_words(answer, &body);
        // Delta tokens last 7 days; an expired one is 410 Gone, or a 4xx
        // with `syncStateNotFound`/`resyncRequired` (§2C, errors.md).
        let resync = matches!(code, "syncStateNotFound" | "resyncRequired")
            && matches!(answer.status, 400 | 404 | 410);
        if resync || (listing == Listing::Delta && answer.status == 410) {
            return PullError::CursorExpired(message);
        }
        match answer.status {
            401 => PullError::Auth(message),
            403 => PullError::Permission(message),
            _ if transient(answer) => self.exhausted(message),
            status => PullError::Provider { status, message },
        }
    }

    /// Links Graph hands back are followed verbatim (§2B), but only on the
    /// configured Graph: the access token goes with them.
    fn on_graph(&self, link: &str) -> bool {
        let origin = |u: &str| url::Url::parse(u).ok().map(|u| u.origin());
        origin(link).is_some_and(|o| Some(o) == origin(&self.settings.graph_base))
    }

    fn first_users_url(&self) -> String {
        let base = self.settings.graph_base();
        match &self.group {
            // Group scope: nested groups flattened (§2B); no delta form.
            Some(group) => format!(
                "{base}/groups/{}/transitiveMembers?$select={USER_FIELDS}&$top={TOP}",
                segment(group)
            ),
            // No `Prefer: return=minimal`: every delta item stays a full
            // user, so an incremental round maps like a full one (§2C).
            None => format!("{base}/users/delta?$select={USER_FIELDS}"),
        }
    }
}

/// 429, and 503/504 with `Retry-After`, wait as Graph says; other 5xx back
/// off (§2D).
fn classify(answer: &Answer) -> Retry {
    match (answer.status, answer.retry_after()) {
        (429 | 503 | 504, Some(wait)) => Retry::After(wait),
        _ if transient(answer) => Retry::Backoff,
        _ => Retry::No,
    }
}

/// `code: message` from Graph's error envelope, else the status and body.
fn graph_words(answer: &Answer, body: &Value) -> String {
    let error = &body["error"];
    match (error["code"].as_str(), error["message"].as_str()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_owned(),
        (None, Some(message)) => message.to_owned(),
        (None, None) => {
            let text = String::from_utf8_lossy(&answer.body);
            let text: String = text.trim().chars().take(200).collect();
            if text.is_empty() {
                format!("HTTP {}", answer.status)
            } else {
                format!("HTTP {}: {text}", answer.status)
            }
        }
    }
}

/// Entra appends Trace/Correlation ids and a timestamp on later lines of
/// `error_description`; the first line is the reason.
fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or(text).trim().to_owned()
}

/// A group id as one URL path segment.
fn segment(id: &str) -> String {
    percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Only users among directoryObjects; delta items carry no `@odata.type`.
fn is_user(item: &Value) -> bool {
    item.get("@odata.type")
        .and_then(Value::as_str)
        .is_none_or(|t| t == USER_TYPE)
}

fn next_link(body: &Value) -> Option<String> {
    body["@odata.nextLink"].as_str().map(str::to_owned)
}

/// One users page: delta (`@removed`, `@odata.deltaLink`) or members.
fn user_page(body: &Value) -> UserPage {
    let mut page = UserPage {
        next: next_link(body),
        cursor: body["@odata.deltaLink"].as_str().map(str::to_owned),
        ..UserPage::default()
    };
    for item in body["value"].as_array().into_iter().flatten() {
        if !is_user(item) {
            continue;
        }
        // `@removed` (reason "changed": soft-deleted, "deleted": gone) is
        // not a user, only its id (§2C).
        if item.get("@removed").is_some() {
            if let Some(id) = item["id"].as_str() {
                page.removed.push(id.to_owned());
            }
        } else if let Some(user) = graph_user(item) {
            page.users.push(user);
        }
    }
    page
}

impl Source for Graph {
    #[instrument(skip_all, fields(tenant_id = %self.settings.tenant_id))]
    async fn check(&mut self) -> Result<Check, PullError> {
        self.token().await?;
        let base = self.settings.graph_base();
        // A group-scoped connection reads its group instead: that proves the
        // group exists and that the app may read its members.
        let url = match &self.group {
            Some(group) => format!(
                "{base}/groups/{}/transitiveMembers?$select=id&$top=1",
                segment(group)
            ),
            None => format!("{base}/users?$top=1&$select=id"),
        };
        let body = self.get(&url, Listing::Other).await?;
        let users_read = body["value"]
            .as_array()
            .map(|items| items.iter().filter(|i| is_user(i)).count())
            .unwrap_or(0);
        Ok(Check {
            authenticated: format!(
                "client credentials for app {} in tenant {}",
                self.settings.client_id.trim(),
                self.settings.tenant_id.trim()
            ),
            users_read,
        })
    }

    #[instrument(skip_all, fields(tenant_id = %self.settings.tenant_id))]
    async fn users(&mut self, at: &Position) -> Result<UserPage, PullError> {
        let (url, listing) = match at {
            Position::Start => {
                let listing = match self.group {
                    Some(_) => Listing::Other,
                    None => Listing::Delta,
                };
                (self.first_users_url(), listing)
            }
            Position::Since(cursor) => {
                if self.group.is_some() {
                    return Err(PullError::CursorExpired(
                        "a group-scoped Entra connection has no incremental listing".into(),
                    ));
                }
                if !self.on_graph(cursor) {
                    return Err(PullError::CursorExpired(
                        "the cursor is not a deltaLink on the configured graph_base".into(),
                    ));
                }
                (cursor.clone(), Listing::Delta)
            }
            Position::Next(link) => {
                if !self.on_graph(link) {
                    return Err(PullError::Config(
                        "a next link points outside the configured graph_base".into(),
                    ));
                }
                let listing = match self.group {
                    Some(_) => Listing::Other,
                    None => Listing::Delta,
                };
                (link.clone(), listing)
            }
        };
        let body = self.get(&url, listing).await?;
        Ok(user_page(&body))
    }

    #[instrument(skip_all, fields(tenant_id = %self.settings.tenant_id))]
    async fn groups(&mut self, next: Option<&str>) -> Result<GroupPage, PullError> {
        let url = match next {
            Some(link) if self.on_graph(link) => link.to_owned(),
            Some(_) => {
                return Err(PullError::Config(
                    "a next link points outside the configured graph_base".into(),
                ));
            }
            None => format!(
                "{}/groups?$select=id,displayName&$top={TOP}",
                self.settings.graph_base()
            ),
        };
        let body = self.get(&url, Listing::Other).await?;
        let groups = body["value"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|g| {
                let id = g["id"].as_str()?.to_owned();
                let name = g["displayName"]
                    .as_str()
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .unwrap_or(&id)
                    .to_owned();
                Some((
                    id.clone(),
                    GroupSnapshot {
                        name,
                        external_id: Some(id),
                    },
                ))
            })
            .collect();
        Ok(GroupPage {
            groups,
            next: next_link(&body),
        })
    }

    #[instrument(skip_all, fields(tenant_id = %self.settings.tenant_id, group_id = %group_id))]
    async fn members(
        &mut self,
        group_id: &str,
        next: Option<&str>,
    ) -> Result<MemberPage, PullError> {
        let url = match next {
            Some(link) if self.on_graph(link) => link.to_owned(),
            Some(_) => {
                return Err(PullError::Config(
                    "a next link points outside the configured graph_base".into(),
                ));
            }
            None => format!(
                "{}/groups/{}/members?$select=id&$top={TOP}",
                self.settings.graph_base(),
                segment(group_id)
            ),
        };
        let body = self.get(&url, Listing::Other).await?;
        // Direct members include groups, contacts and devices (§2B); only
        // users are members dirsync keeps.
        let users = body["value"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| m["@odata.type"].as_str() == Some(USER_TYPE))
            .filter_map(|m| m["id"].as_str().map(str::to_owned))
            .collect();
        Ok(MemberPage {
            users,
            next: next_link(&body),
        })
    }
}
