//! The Microsoft Graph (Entra ID) connector (docs/pull-apis.md §2): the OAuth 2.0
//! client-credentials grant against the configured authority, then users by
//! delta query (full round, then incremental rounds from the deltaLink) or,
//! with a group scope, the group's transitive members; groups and their
//! direct user members by `@odata.nextLink` paging. Both endpoints are
//! settings, so the same code runs against Microsoft or `pull::fake::graph`.
//! Translation only: every answer becomes snapshots or a `PullError` in
//! Graph's own words; nothing here touches the store.
//!
//! Complete or partial: an initial delta round's items and a group scope's
//! members are whole users (every selected property, absent = no value). An
//! incremental round's items are partial: Graph promises a changed user's
//! item only "at least the updated properties" (§2C), so each snapshot says
//! which attributes it carries and the engine keeps the others.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::instrument;

use super::PullError;
use super::normalize::{Normalized, graph_changed_user, graph_user};
use super::retry::{Answer, Pacing, Retry, transient};
use super::source::{Asked, Check, GroupPage, MemberPage, Position, Scope, Source, UserPage};
use super::token::AccessToken;
use crate::crypto::Secret;
use crate::reconcile::model::GroupSnapshot;

/// The Graph fields dirsync reads. `accountEnabled`, `department` and
/// `employeeId` come back only when selected (docs/pull-apis.md §2B); delta tracks
/// only what is selected and keeps the selection in its tokens (§2C).
const USER_FIELDS: &str = "id,userPrincipalName,mail,displayName,givenName,surname,accountEnabled,department,jobTitle,employeeId";

/// Graph's maximum page size for users, groups and members (§2B).
const TOP: u32 = 999;

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
            super::endpoint(name, value)?;
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

/// A Graph connection: one tenant, one app registration, one scope.
pub struct Graph {
    http: reqwest::Client,
    settings: Settings,
    /// The group whose transitive members are the connection's users.
    group: Option<String>,
    secret: Secret,
    pacing: Pacing,
    token: Option<AccessToken>,
    /// Whether the users listing under way is an incremental delta round
    /// (begun at `Position::Since`): its `Next` pages hold partial items too.
    incremental: bool,
    /// `USER_FIELDS` and the properties the directory's attribute mapping
    /// reads (`Source::ask_for`): Graph returns only what is selected.
    select: String,
}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graph")
            .field("settings", &self.settings)
            .field("group", &self.group)
            .field("pacing", &self.pacing)
            .field("has_token", &self.token.is_some())
            .field("incremental", &self.incremental)
            .finish_non_exhaustive()
    }
}

/// The kind of listing a request belongs to: a delta request's 410 means
/// its token expired; elsewhere 410 is just an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
            incremental: false,
            select: USER_FIELDS.to_owned(),
        })
    }

    /// The access token, fetched (or renewed, ~60 s before it expires).
    #[instrument(skip_all, fields(tenant_id = %self.settings.tenant_id))]
    async fn token(&mut self) -> Result<Secret, PullError> {
        if let Some(token) = &self.token
            && token.is_fresh()
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
        self.token = Some(AccessToken::new(value.clone(), lifetime));
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
        // with `syncStateNotFound`/`resyncRequired` (§2C).
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

    /// Users come from delta unless the connection is scoped to a group.
    fn users_listing(&self) -> Listing {
        match self.group {
            Some(_) => Listing::Other,
            None => Listing::Delta,
        }
    }

    fn first_users_url(&self) -> String {
        let base = self.settings.graph_base();
        match &self.group {
            // Group scope: nested groups flattened (§2B); no delta form.
            Some(group) => format!(
                "{base}/groups/{}/transitiveMembers?$select={}&$top={TOP}",
                segment(group),
                self.select
            ),
            // No `Prefer: return=minimal` (only the changed properties): a
            // fuller item refreshes more of what is stored. Even without it
            // Graph promises an incremental round's item only "at least the
            // updated properties" (§2C), so those items are read as partial
            // (`user_page`); the initial round's are whole.
            None => format!("{base}/users/delta?$select={}", self.select),
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

/// One users page: delta (`@removed`, `@odata.deltaLink`) or members;
/// `partial` for a page of an incremental delta round.
fn user_page(body: &Value, partial: bool) -> UserPage {
    let normalize = if partial {
        graph_changed_user
    } else {
        graph_user
    };
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
        } else {
            page.push(normalize(item));
        }
    }
    page
}

impl Source for Graph {
    /// Adds the mapped properties to `$select`, each once whatever its case
    /// (Graph's names are case-insensitive). A delta token keeps the
    /// selection it was issued under, so a changed mapping drops the cursor
    /// (`store::pull::forget_cursor`) for the next round to start whole.
    fn ask_for(&mut self, asked: &Asked) {
        let mut select = USER_FIELDS.to_owned();
        for p in &asked.properties {
            if !select.split(',').any(|s| s.eq_ignore_ascii_case(p)) {
                select.push(',');
                select.push_str(p);
            }
        }
        self.select = select;
    }

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
                self.incremental = false;
                (self.first_users_url(), self.users_listing())
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
                self.incremental = true;
                (cursor.clone(), Listing::Delta)
            }
            Position::Next(link) => {
                if !self.on_graph(link) {
                    return Err(PullError::Config(
                        "a next link points outside the configured graph_base".into(),
                    ));
                }
                (link.clone(), self.users_listing())
            }
        };
        let body = self.get(&url, listing).await?;
        Ok(user_page(&body, self.incremental))
    }

    /// A group scope is Graph's (its members are listed), so only an
    /// unscoped connection reads one user.
    fn reads_one(&self) -> bool {
        self.group.is_none()
    }

    /// `GET /users/{id | userPrincipalName}` with the listing's `$select`
    /// (§2B); Graph's 404 (`Request_ResourceNotFound`) is no such user.
    #[instrument(skip_all, fields(tenant_id = %self.settings.tenant_id))]
    async fn user(&mut self, key: &str) -> Result<Option<Normalized>, PullError> {
        let mut url = url::Url::parse(self.settings.graph_base())
            .map_err(|e| PullError::Config(format!("graph_base: {e}")))?;
        url.path_segments_mut()
            .map_err(|()| PullError::Config("graph_base cannot hold a path".into()))?
            .pop_if_empty()
            .extend(["users", key]);
        // As the listing writes it (`$select=a,b`, not form-encoded).
        url.set_query(Some(&format!("$select={}", self.select)));
        match self.get(url.as_str(), Listing::Other).await {
            // The entity's `@odata.context` is the answer's, not the
            // user's: the item is as a listing serves it.
            Ok(mut body) => {
                if let Some(item) = body.as_object_mut() {
                    item.remove("@odata.context");
                }
                Ok(Some(graph_user(&body)))
            }
            Err(PullError::Provider { status: 404, .. }) => Ok(None),
            Err(err) => Err(err),
        }
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
                    .and_then(super::normalize::provider_text)
                    .unwrap_or_else(|| id.clone());
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::pull::fake::graph::{Credentials, dev_connection, expire_delta_tokens, start};
    use crate::pull::fake::{Org, Running, Shared};
    use crate::reconcile::model::{Snapshot, SnapshotField};

    const SECRET: &str = "s3cret-value~with.odd_chars";

    fn credentials() -> Credentials {
        Credentials {
            tenant_id: "contoso".into(),
            client_id: "app-1".into(),
            client_secret: Secret::new(SECRET.into()),
            ..Credentials::default()
        }
    }

    fn settings(fake: &Running) -> Settings {
        Settings {
            tenant_id: "contoso".into(),
            client_id: "app-1".into(),
            authority_base: fake.base_url.clone(),
            graph_base: fake.graph_base(),
        }
    }

    fn connect(fake: &Running, scope: &Scope, secret: &str, pacing: Pacing) -> Graph {
        Graph::new(settings(fake), scope, Secret::new(secret.into()), pacing).unwrap()
    }

    fn fake(dir: &Org, creds: Credentials) -> (Arc<Shared>, Running) {
        let shared = Shared::new(dir.clone());
        let running = start(shared.clone(), creds).unwrap();
        (shared, running)
    }

    /// Every page of a listing from `at`.
    async fn pages(graph: &mut Graph, at: Position) -> Vec<UserPage> {
        let mut out = Vec::new();
        let mut at = at;
        loop {
            let page = graph.users(&at).await.unwrap();
            let next = page.next.clone();
            out.push(page);
            match next {
                Some(link) => at = Position::Next(link),
                None => return out,
            }
        }
    }

    fn recording() -> Pacing {
        Pacing::recording(4).0
    }

    #[tokio::test]
    async fn a_full_listing_walks_delta_pages_maps_disabled_accounts_and_ends_with_a_cursor() {
        let dir = Org::generate(250, 3, 42);
        let (_, fake) = fake(&dir, credentials());
        let mut graph = connect(&fake, &Scope::default(), SECRET, recording());
        let pages = pages(&mut graph, Position::Start).await;
        assert_eq!(pages.len(), 3);
        assert!(pages[..2].iter().all(|p| p.cursor.is_none()));
        let cursor = pages[2].cursor.as_deref().unwrap();
        assert!(cursor.starts_with(&format!("{}/users/delta?$deltatoken=", fake.graph_base())));
        let users: Vec<_> = pages.iter().flat_map(|p| p.users.iter()).collect();
        assert_eq!(users.len(), 250);
        assert!(pages.iter().all(|p| p.removed.is_empty()));
        for ((id, snapshot), user) in users.iter().zip(&dir.users) {
            assert_eq!(id, &user.id);
            assert_eq!(snapshot.external_id.as_deref(), Some(user.id.as_str()));
            assert_eq!(
                snapshot.active, user.active,
                "accountEnabled maps to active"
            );
            assert_eq!(
                snapshot.profile.department.as_deref(),
                Some(user.department.as_str())
            );
            assert_eq!(
                snapshot.profile.employee_number.as_deref(),
                Some(user.employee_number.as_str())
            );
        }
        assert!(
            dir.users.iter().any(|u| !u.active),
            "the seed has disabled users"
        );
    }

    #[tokio::test]
    async fn an_incremental_round_returns_exactly_the_changed_user_and_the_removed_id() {
        let dir = Org::generate(150, 2, 7);
        let (shared, fake) = fake(&dir, credentials());
        let mut graph = connect(&fake, &Scope::default(), SECRET, recording());
        let full = pages(&mut graph, Position::Start).await;
        let cursor = full.last().unwrap().cursor.clone().unwrap();
        let (changed, deleted) = (dir.users[120].id.clone(), dir.users[3].id.clone());
        shared
            .directory_mut()
            .update_user(&changed, |u| u.title = "Principal".into());
        shared.directory_mut().delete_user(&deleted);

        let round = pages(&mut graph, Position::Since(cursor.clone())).await;
        let users: Vec<_> = round.iter().flat_map(|p| p.users.iter()).collect();
        let removed: Vec<_> = round.iter().flat_map(|p| p.removed.iter()).collect();
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].0, changed);
        assert_eq!(users[0].1.profile.title.as_deref(), Some("Principal"));
        assert_eq!(
            users[0].1.carried,
            Some(vec![
                SnapshotField::Email,
                SnapshotField::Active,
                SnapshotField::GivenName,
                SnapshotField::FamilyName,
                SnapshotField::DisplayName,
                SnapshotField::Department,
                SnapshotField::Title,
                SnapshotField::EmployeeNumber,
            ]),
            "a delta item is read as partial: it carries what it holds (here the whole selection)"
        );
        assert_eq!(
            users[0].1.email.as_deref(),
            Some(dir.users[120].email.as_str())
        );
        assert_eq!(removed, vec![&deleted]);
        let next = round.last().unwrap().cursor.clone().unwrap();
        assert_ne!(next, cursor);

        let quiet = pages(&mut graph, Position::Since(next)).await;
        assert!(
            quiet
                .iter()
                .all(|p| p.users.is_empty() && p.removed.is_empty())
        );
        assert!(quiet.last().unwrap().cursor.is_some());
    }

    fn users_of(pages: &[UserPage]) -> Vec<&(String, Snapshot)> {
        pages.iter().flat_map(|p| p.users.iter()).collect()
    }

    #[tokio::test]
    async fn against_partial_items_an_incremental_round_carries_only_what_changed_and_a_full_round_is_complete()
     {
        let mut dir = Org::generate(12, 1, 7);
        dir.partial_delta = true;
        let (shared, fake) = fake(&dir, credentials());
        let mut graph = connect(&fake, &Scope::default(), SECRET, recording());
        let full = pages(&mut graph, Position::Start).await;
        assert!(users_of(&full).iter().all(|(_, s)| s.carried.is_none()));
        let cursor = full.last().unwrap().cursor.clone().unwrap();

        let [a, b, c] = [1, 2, 3].map(|n| dir.users[n].id.clone());
        let added = {
            let mut d = shared.directory_mut();
            d.update_user(&a, |u| {
                u.title = "Principal".into();
                u.department = String::new();
            });
            d.swap_emails(&b, &c);
            let mut new = d.users[0].clone();
            new.id = "new-user".into();
            new.email = "new.user@example.com".into();
            d.add_user(new);
            "new-user".to_owned()
        };
        let round = pages(&mut graph, Position::Since(cursor)).await;
        let users = users_of(&round);
        let item = |id: &str| &users.iter().find(|(i, _)| i == id).unwrap().1;
        assert_eq!(users.len(), 4);

        let changed = item(&a);
        assert_eq!(
            changed.carried,
            Some(vec![SnapshotField::Department, SnapshotField::Title])
        );
        assert_eq!(changed.profile.title.as_deref(), Some("Principal"));
        assert_eq!(
            changed.profile.department, None,
            "a cleared property is carried with no value"
        );
        assert_eq!(changed.email, None, "an unchanged email is not carried");

        for (id, other) in [(&b, 3), (&c, 2)] {
            let swapped = item(id);
            assert_eq!(swapped.carried, Some(vec![SnapshotField::Email]));
            assert_eq!(
                swapped.email.as_deref(),
                Some(dir.users[other].email.as_str())
            );
        }

        let created = item(&added);
        assert_eq!(
            created.carried.as_ref().map(Vec::len),
            Some(8),
            "a user created since is sent whole: every selected attribute"
        );
        assert_eq!(created.email.as_deref(), Some("new.user@example.com"));

        let again = pages(&mut graph, Position::Start).await;
        assert_eq!(users_of(&again).len(), 13);
        assert!(
            users_of(&again).iter().all(|(_, s)| s.carried.is_none()),
            "a full round after an incremental one is complete"
        );
    }

    #[tokio::test]
    async fn every_page_of_an_incremental_round_is_partial() {
        let mut dir = Org::generate(150, 1, 8);
        dir.partial_delta = true;
        let (shared, fake) = fake(&dir, credentials());
        let mut graph = connect(&fake, &Scope::default(), SECRET, recording());
        let cursor = pages(&mut graph, Position::Start)
            .await
            .pop()
            .unwrap()
            .cursor
            .unwrap();
        for user in &dir.users {
            shared
                .directory_mut()
                .update_user(&user.id, |u| u.title = "Staff".into());
        }
        let round = pages(&mut graph, Position::Since(cursor)).await;
        assert_eq!(round.len(), 2, "the round pages");
        assert_eq!(users_of(&round).len(), 150);
        for (_, s) in users_of(&round) {
            assert_eq!(s.carried, Some(vec![SnapshotField::Title]));
            assert_eq!(s.profile.title.as_deref(), Some("Staff"));
        }
    }

    #[tokio::test]
    async fn an_expired_or_foreign_cursor_asks_for_a_full_listing() {
        let dir = Org::generate(5, 1, 7);
        let (shared, fake) = fake(&dir, credentials());
        let mut graph = connect(&fake, &Scope::default(), SECRET, recording());
        let cursor = pages(&mut graph, Position::Start).await[0]
            .cursor
            .clone()
            .unwrap();
        expire_delta_tokens(&shared);
        match graph.users(&Position::Since(cursor)).await {
            Err(PullError::CursorExpired(why)) => {
                assert!(why.starts_with("syncStateNotFound"), "{why}")
            }
            other => panic!("{other:?}"),
        }
        let garbage = format!("{}/users/delta?$deltatoken=not-a-token", fake.graph_base());
        assert!(matches!(
            graph.users(&Position::Since(garbage)).await,
            Err(PullError::CursorExpired(why)) if why.starts_with("resyncRequired")
        ));
        let foreign = "https://graph.example.net/v1.0/users/delta?$deltatoken=x".to_owned();
        assert!(matches!(
            graph.users(&Position::Since(foreign)).await,
            Err(PullError::CursorExpired(_))
        ));
    }

    #[tokio::test]
    async fn a_group_scope_lists_the_groups_transitive_user_members_without_a_cursor() {
        let dir = Org::generate(40, 3, 11);
        let (_, fake) = fake(&dir, credentials());
        let group = &dir.groups[1];
        let scope = Scope {
            group: Some(group.id.clone()),
            ..Scope::default()
        };
        let mut graph = connect(&fake, &scope, SECRET, recording());
        let pages = pages(&mut graph, Position::Start).await;
        let mut ids: Vec<_> = pages
            .iter()
            .flat_map(|p| p.users.iter().map(|(id, _)| id.clone()))
            .collect();
        let mut expected: Vec<_> = group
            .members
            .iter()
            .map(|i| dir.users[*i].id.clone())
            .collect();
        ids.sort();
        expected.sort();
        assert_eq!(ids, expected, "users only: the group's contact is left out");
        assert!(pages.last().unwrap().cursor.is_none());
        assert!(matches!(
            graph.users(&Position::Since("x".into())).await,
            Err(PullError::CursorExpired(_))
        ));
    }

    #[tokio::test]
    async fn groups_are_listed_by_name_and_members_are_only_users() {
        let dir = Org::generate(30, 3, 5);
        let (_, fake) = fake(&dir, credentials());
        let mut graph = connect(&fake, &Scope::default(), SECRET, recording());
        let page = graph.groups(None).await.unwrap();
        assert!(page.next.is_none());
        let expected: Vec<_> = dir
            .groups
            .iter()
            .map(|g| {
                (
                    g.id.clone(),
                    GroupSnapshot {
                        name: g.name.clone(),
                        external_id: Some(g.id.clone()),
                    },
                )
            })
            .collect();
        assert_eq!(page.groups, expected);
        for group in &dir.groups {
            let members = graph.members(&group.id, None).await.unwrap();
            let expected: Vec<_> = group
                .members
                .iter()
                .map(|i| dir.users[*i].id.clone())
                .collect();
            assert_eq!(
                members.users, expected,
                "the organizational contact is not a member"
            );
            assert!(members.next.is_none());
        }
    }

    #[tokio::test]
    async fn one_user_is_read_by_id_or_principal_name_as_the_listing_serves_it_and_unknown_is_none()
    {
        let dir = Org::generate(250, 1, 42);
        let (shared, fake) = fake(&dir, credentials());
        shared.faults.retry_after_ms.store(10, Ordering::SeqCst);
        let mut graph = connect(&fake, &Scope::default(), SECRET, recording());
        graph.ask_for(&Asked {
            properties: vec![crate::pull::fake::GRAPH_COST_CENTER.into()],
            custom_schemas: Vec::new(),
        });
        let listed: Vec<(String, Snapshot)> = pages(&mut graph, Position::Start)
            .await
            .into_iter()
            .flat_map(|p| p.users)
            .collect();
        let listings = shared.users_listed.load(Ordering::SeqCst);
        let user = dir
            .users
            .iter()
            .find(|u| !u.cost_center.is_empty())
            .unwrap();
        let listed = listed.iter().find(|(id, _)| *id == user.id).unwrap();
        // Throttled first: retried as a listing page is.
        shared.faults.throttle(1);
        for key in [user.id.as_str(), user.email.as_str()] {
            let read = graph.user(key).await.unwrap().unwrap();
            assert_eq!(read.user.as_ref(), Some(listed), "{key}");
        }
        assert_eq!(graph.user("nobody@contoso.example").await.unwrap(), None);
        assert_eq!(
            shared.user_reads(),
            vec![
                user.id.clone(),
                user.email.clone(),
                "nobody@contoso.example".into()
            ]
        );
        assert_eq!(shared.users_listed.load(Ordering::SeqCst), listings);
        assert!(graph.reads_one());
        let scoped = Scope {
            group: Some(dir.groups[0].id.clone()),
            ..Scope::default()
        };
        assert!(!connect(&fake, &scoped, SECRET, recording()).reads_one());
    }

    #[tokio::test]
    async fn throttled_twice_then_served_after_waiting_what_retry_after_said() {
        let dir = Org::generate(5, 1, 3);
        let (shared, fake) = fake(&dir, credentials());
        shared.faults.retry_after_ms.store(2128, Ordering::SeqCst);
        shared.faults.throttle(2);
        let (pacing, waits) = Pacing::recording(4);
        let mut graph = connect(&fake, &Scope::default(), SECRET, pacing);
        let page = graph.users(&Position::Start).await.unwrap();
        assert_eq!(page.users.len(), 5);
        assert_eq!(*waits.lock().unwrap(), vec![Duration::from_millis(2128); 2]);
    }

    #[tokio::test]
    async fn a_storm_of_503s_ends_exhausted_with_graphs_words() {
        let dir = Org::generate(5, 1, 3);
        let (shared, fake) = fake(&dir, credentials());
        shared.faults.fail(100);
        let (pacing, waits) = Pacing::recording(3);
        let mut graph = connect(&fake, &Scope::default(), SECRET, pacing);
        match graph.groups(None).await {
            Err(PullError::Exhausted { attempts, last }) => {
                assert_eq!(attempts, 3);
                assert_eq!(
                    last,
                    "serviceNotAvailable: The service is temporarily unavailable."
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            waits.lock().unwrap().len(),
            2,
            "backed off between the attempts"
        );
    }

    #[tokio::test]
    async fn a_token_revoked_mid_listing_is_renewed_once_and_the_listing_goes_on() {
        let dir = Org::generate(250, 1, 9);
        let (shared, fake) = fake(&dir, credentials());
        let mut graph = connect(&fake, &Scope::default(), SECRET, recording());
        let first = graph.users(&Position::Start).await.unwrap();
        assert_eq!(shared.tokens_issued.load(Ordering::SeqCst), 1);
        shared.revoke_tokens();
        let mut rest = pages(&mut graph, Position::Next(first.next.unwrap())).await;
        assert_eq!(shared.tokens_issued.load(Ordering::SeqCst), 2);
        let count: usize = first.users.len() + rest.iter().map(|p| p.users.len()).sum::<usize>();
        assert_eq!(count, 250);
        assert!(rest.pop().unwrap().cursor.is_some());
    }

    #[tokio::test]
    async fn a_token_is_reused_until_a_minute_before_it_expires() {
        let dir = Org::generate(3, 1, 9);
        let (shared, fake) = fake(&dir, credentials());
        let mut graph = connect(&fake, &Scope::default(), SECRET, recording());
        graph.groups(None).await.unwrap();
        graph.groups(None).await.unwrap();
        assert_eq!(shared.tokens_issued.load(Ordering::SeqCst), 1);

        let short = Credentials {
            token_lifetime_secs: 45,
            ..credentials()
        };
        let (shared, fake) = self::fake(&dir, short);
        let mut graph = connect(&fake, &Scope::default(), SECRET, recording());
        graph.groups(None).await.unwrap();
        graph.groups(None).await.unwrap();
        assert_eq!(
            shared.tokens_issued.load(Ordering::SeqCst),
            2,
            "a 45 s token is inside the 60 s margin: renewed for each request"
        );
    }

    #[tokio::test]
    async fn a_missing_permission_is_denied_in_graphs_words() {
        let dir = Org::generate(3, 1, 9);
        let creds = Credentials {
            permissions: vec!["User.Read.All".into()],
            ..credentials()
        };
        let (_, fake) = fake(&dir, creds);
        let mut graph = connect(&fake, &Scope::default(), SECRET, recording());
        match graph.members(&dir.groups[0].id, None).await {
            Err(PullError::Permission(why)) => assert_eq!(
                why,
                "Authorization_RequestDenied: Insufficient privileges to complete the operation."
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            graph.check().await.unwrap().users_read,
            1,
            "users stay readable"
        );
    }

    #[tokio::test]
    async fn a_bad_secret_fails_with_entras_reason_and_never_shows_the_secret() {
        let dir = Org::generate(3, 1, 9);
        let (_, fake) = fake(&dir, credentials());
        let wrong = "wrong-secret-value";
        let mut graph = connect(&fake, &Scope::default(), wrong, recording());
        let err = graph.check().await.unwrap_err();
        let PullError::Auth(why) = &err else {
            panic!("{err:?}")
        };
        assert!(
            why.starts_with("AADSTS7000215: Invalid client secret provided."),
            "{why}"
        );
        assert!(!why.contains("Trace ID"), "only the reason line: {why}");
        for shown in [format!("{err}"), format!("{err:?}"), format!("{graph:?}")] {
            assert!(!shown.contains(wrong), "{shown}");
        }
        let good = connect(&fake, &Scope::default(), SECRET, recording());
        assert!(!format!("{good:?}").contains(SECRET));
    }

    #[tokio::test]
    async fn an_unknown_app_fails_with_entras_reason() {
        let dir = Org::generate(3, 1, 9);
        let (_, fake) = fake(&dir, credentials());
        let settings = Settings {
            client_id: "app-2".into(),
            ..settings(&fake)
        };
        let mut graph = Graph::new(
            settings,
            &Scope::default(),
            Secret::new(SECRET.into()),
            recording(),
        )
        .unwrap();
        assert!(matches!(
            graph.check().await,
            Err(PullError::Auth(why)) if why.starts_with("AADSTS700016: Application with identifier 'app-2'")
        ));
    }

    #[tokio::test]
    async fn check_authenticates_and_reads_one_user_or_the_scoped_group() {
        let dir = Org::generate(12, 2, 9);
        let (shared, fake) = fake(&dir, credentials());
        let mut graph = connect(&fake, &Scope::default(), SECRET, recording());
        let check = graph.check().await.unwrap();
        assert_eq!(check.users_read, 1);
        assert!(
            check.authenticated.contains("contoso"),
            "{}",
            check.authenticated
        );
        assert_eq!(
            shared.faults.requests.load(Ordering::SeqCst),
            1,
            "one API read"
        );

        let scope = Scope {
            group: Some("no-such-group".into()),
            ..Scope::default()
        };
        let mut graph = connect(&fake, &scope, SECRET, recording());
        assert!(matches!(
            graph.check().await,
            Err(PullError::Provider { status: 404, message }) if message.starts_with("Request_ResourceNotFound")
        ));
    }

    #[tokio::test]
    async fn the_dev_connection_points_a_connector_at_the_fake() {
        let dir = Org::generate(4, 1, 9);
        let creds = Credentials::default();
        let (_, fake) = fake(&dir, creds.clone());
        let connection = dev_connection(&fake, &creds);
        assert_eq!(connection["provider"], "entra");
        let settings: Settings = serde_json::from_value(connection["settings"].clone()).unwrap();
        assert_eq!(settings.graph_base, fake.graph_base());
        let secret = Secret::new(connection["secret"].as_str().unwrap().to_owned());
        let mut graph = Graph::new(settings, &Scope::default(), secret, recording()).unwrap();
        assert_eq!(graph.check().await.unwrap().users_read, 1);
    }

    #[test]
    fn settings_default_to_microsoft_and_refuse_unknown_fields() {
        let s: Settings =
            serde_json::from_value(serde_json::json!({"tenant_id": "t", "client_id": "c"}))
                .unwrap();
        assert_eq!(s.authority_base, "https://login.microsoftonline.com");
        assert_eq!(s.graph_base, "https://graph.microsoft.com/v1.0");
        assert_eq!(s.scope(), "https://graph.microsoft.com/.default");
        assert!(s.validate().is_ok());
        let typo = serde_json::json!({"tenant_id": "t", "client_id": "c", "graph_url": "x"});
        assert!(serde_json::from_value::<Settings>(typo).is_err());
    }

    #[test]
    fn invalid_settings_and_secrets_are_refused_with_a_reason() {
        let good = Settings {
            tenant_id: "contoso.onmicrosoft.com".into(),
            client_id: "app".into(),
            authority_base: default_authority_base(),
            graph_base: default_graph_base(),
        };
        let cases = [
            (
                Settings {
                    tenant_id: " ".into(),
                    ..good.clone()
                },
                "tenant_id is empty",
            ),
            (
                Settings {
                    tenant_id: "a/b".into(),
                    ..good.clone()
                },
                "is not a tenant id",
            ),
            (
                Settings {
                    client_id: "".into(),
                    ..good.clone()
                },
                "client_id is empty",
            ),
            (
                Settings {
                    graph_base: "graph".into(),
                    ..good.clone()
                },
                "graph_base \"graph\" is not a URL",
            ),
            (
                Settings {
                    authority_base: "ftp://x".into(),
                    ..good.clone()
                },
                "not an http(s) URL",
            ),
        ];
        for (settings, reason) in cases {
            let why = settings.validate().unwrap_err();
            assert!(why.contains(reason), "{why}");
        }
        let pacing = Pacing::default();
        assert!(matches!(
            Graph::new(good.clone(), &Scope::default(), Secret::new(" ".into()), pacing.clone()),
            Err(PullError::Config(why)) if why.contains("client secret is empty")
        ));
        let ou = Scope {
            org_unit: Some("/Sales".into()),
            ..Scope::default()
        };
        assert!(matches!(
            Graph::new(good, &ou, Secret::new("s".into()), pacing),
            Err(PullError::Config(why)) if why.contains("Google")
        ));
    }

    fn answer(status: u16, retry_after: Option<&str>, body: &str) -> Answer {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(wait) = retry_after {
            headers.insert("retry-after", wait.parse().unwrap());
        }
        Answer {
            status,
            headers,
            body: body.as_bytes().to_vec(),
        }
    }

    #[rstest::rstest]
    #[case(429, Some("2.5"), Retry::After(Duration::from_millis(2500)))]
    #[case(429, None, Retry::Backoff)]
    #[case(503, Some("3"), Retry::After(Duration::from_secs(3)))]
    #[case(504, None, Retry::Backoff)]
    #[case(500, Some("3"), Retry::Backoff)]
    #[case(404, None, Retry::No)]
    #[case(401, None, Retry::No)]
    fn throttling_waits_as_graph_says_and_other_5xx_back_off(
        #[case] status: u16,
        #[case] retry_after: Option<&str>,
        #[case] expected: Retry,
    ) {
        assert_eq!(classify(&answer(status, retry_after, "")), expected);
    }

    fn envelope(code: &str) -> String {
        serde_json::json!({"error": {"code": code, "message": "Words."}}).to_string()
    }

    #[rstest::rstest]
    #[case(
        401,
        envelope("InvalidAuthenticationToken"),
        Listing::Other,
        "authentication failed: InvalidAuthenticationToken: Words."
    )]
    #[case(
        403,
        envelope("Authorization_RequestDenied"),
        Listing::Other,
        "permission denied: Authorization_RequestDenied: Words."
    )]
    #[case(
        410,
        envelope("syncStateNotFound"),
        Listing::Delta,
        "the incremental cursor expired: syncStateNotFound: Words."
    )]
    #[case(
        404,
        envelope("syncStateNotFound"),
        Listing::Delta,
        "the incremental cursor expired: syncStateNotFound: Words."
    )]
    #[case(
        400,
        envelope("resyncRequired"),
        Listing::Delta,
        "the incremental cursor expired: resyncRequired: Words."
    )]
    #[case(
        410,
        envelope("Gone"),
        Listing::Other,
        "410 from the provider: Gone: Words."
    )]
    #[case(
        400,
        envelope("Request_UnsupportedQuery"),
        Listing::Other,
        "400 from the provider: Request_UnsupportedQuery: Words."
    )]
    #[case(
        429,
        envelope("TooManyRequests"),
        Listing::Delta,
        "gave up after 6 attempts: TooManyRequests: Words."
    )]
    #[case(502, "<html>Bad Gateway</html>".to_owned(), Listing::Other, "gave up after 6 attempts: HTTP 502: <html>Bad Gateway</html>")]
    fn graph_errors_are_reported_in_graphs_words(
        #[case] status: u16,
        #[case] body: String,
        #[case] listing: Listing,
        #[case] expected: &str,
    ) {
        let graph = Graph::new(
            Settings {
                tenant_id: "t".into(),
                client_id: "c".into(),
                authority_base: default_authority_base(),
                graph_base: default_graph_base(),
            },
            &Scope::default(),
            Secret::new("s".into()),
            Pacing::default(),
        )
        .unwrap();
        let err = graph.failure(&answer(status, None, &body), listing);
        assert_eq!(err.to_string(), expected);
    }

    #[test]
    fn the_mapped_properties_are_added_to_the_users_select_once_whatever_their_case() {
        let mut graph = Graph::new(
            Settings {
                tenant_id: "t".into(),
                client_id: "c".into(),
                authority_base: default_authority_base(),
                graph_base: default_graph_base(),
            },
            &Scope::default(),
            Secret::new("s".into()),
            Pacing::default(),
        )
        .unwrap();
        graph.ask_for(&Asked {
            properties: vec![
                "Department".to_owned(),
                "onPremisesExtensionAttributes".to_owned(),
                "extension_abc_costCenter".to_owned(),
            ],
            custom_schemas: Vec::new(),
        });
        assert_eq!(
            graph.first_users_url(),
            format!(
                "{}/users/delta?$select={USER_FIELDS},onPremisesExtensionAttributes,extension_abc_costCenter",
                default_graph_base()
            ),
            "department is selected already; the others are added"
        );
    }
}
