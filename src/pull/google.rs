//! The Google Workspace connector (docs/pull-apis.md §1): a service account with
//! domain-wide delegation signs an RS256 assertion for the admin it
//! impersonates (RFC 7523 JWT-bearer grant), then the Admin SDK Directory
//! API's `users`, `groups` and `groups/{key}/members` are read page by page
//! (`nextPageToken` → `pageToken`). Google has no delta (§1D), so every run
//! is a full listing. Both endpoints are configuration, so the same code
//! runs against Google or the fake in `pull::fake::google`.
//!
//! Complete or partial: complete. `users.list` returns whole user objects
//! and every run is full, so a snapshot's absent value means no value.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::Value;
use tracing::instrument;
use url::Url;

use super::PullError;
use super::normalize::{self, google_user};
use super::retry::{Answer, Pacing, Retry, transient};
use super::source::{Asked, Check, GroupPage, MemberPage, Position, Scope, Source, UserPage};
use super::token::AccessToken;
use crate::crypto::Secret;
use crate::reconcile::model::GroupSnapshot;

/// The read-only scopes the admin grants the client id under domain-wide
/// delegation (GDISC `auth.oauth2.scopes`: users.list, groups.list and
/// members.list each accept one of them).
pub const SCOPES: [&str; 3] = [
    "https://www.googleapis.com/auth/admin.directory.user.readonly",
    "https://www.googleapis.com/auth/admin.directory.group.readonly",
    "https://www.googleapis.com/auth/admin.directory.group.member.readonly",
];

/// Used when neither the settings nor the key file name a token endpoint.
const DEFAULT_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
/// Google's page maxima (GDISC): 500 users, 200 groups, 200 members.
const USERS_PER_PAGE: u32 = 500;
const GROUPS_PER_PAGE: u32 = 200;
const MEMBERS_PER_PAGE: u32 = 200;
/// `connection test` reads this many users at most.
const CHECK_USERS: u32 = 5;
/// The 403 reasons that mean "slow down", not "forbidden" (Directory API
/// limits page; docs/pull-apis.md §1C). Google sends no Retry-After.
const THROTTLED: [&str; 3] = [
    "userRateLimitExceeded",
    "quotaExceeded",
    "rateLimitExceeded",
];

fn default_customer() -> String {
    "my_customer".to_owned()
}

fn default_api_base() -> String {
    "https://admin.googleapis.com".to_owned()
}

/// A Google connection's non-secret settings; the secret is the service
/// account's key file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The Workspace admin the service account impersonates (the JWT `sub`).
    pub admin_email: String,
    /// `my_customer` (the admin's own account) or a customer id.
    #[serde(default = "default_customer")]
    pub customer: String,
    /// List one domain of the account instead of the whole customer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default = "default_api_base")]
    pub api_base: String,
    /// Overrides the key file's `token_uri` (both the POST target and the
    /// assertion's `aud`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
}

fn http_url(what: &str, raw: &str) -> Result<Url, String> {
    super::endpoint(what, raw)
}

impl Settings {
    pub fn validate(&self) -> Result<(), String> {
        let admin = self.admin_email.trim();
        match admin.split_once('@') {
            Some((local, domain)) if !local.is_empty() && domain.contains('.') => {}
            _ => {
                return Err(format!(
                    "admin_email {admin:?} is not an email address (the Workspace admin the service account impersonates)"
                ));
            }
        }
        if self.customer.trim().is_empty() {
            return Err("customer is empty (use my_customer or the customer id)".to_owned());
        }
        if self.domain.as_deref().is_some_and(|d| d.trim().is_empty()) {
            return Err("domain is empty (leave it out to list the whole customer)".to_owned());
        }
        http_url("api_base", &self.api_base)?;
        if let Some(token_url) = &self.token_url {
            http_url("token_url", token_url)?;
        }
        Ok(())
    }
}

/// The fields of a service-account key file dirsync uses (yup-oauth2
/// requires `private_key`, `client_email`, `token_uri`; the rest are optional).
/// No `Debug`: it holds the private key, dropped once the signing key is made.
#[derive(serde::Deserialize)]
struct KeyFile {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    private_key: String,
    client_email: String,
    #[serde(default)]
    token_uri: Option<String>,
    #[serde(default)]
    private_key_id: Option<String>,
}

/// Why a key file does not parse, without quoting it: serde's messages can
/// quote the offending value, which would be the key.
fn key_file_error(err: &serde_json::Error) -> PullError {
    let shape = "the secret must be a service-account key file (JSON with private_key, client_email and token_uri)";
    let why = match err.classify() {
        serde_json::error::Category::Data if err.to_string().starts_with("missing field") => {
            err.to_string()
        }
        serde_json::error::Category::Data => format!(
            "a field has the wrong type at line {} column {}",
            err.line(),
            err.column()
        ),
        _ => format!(
            "it is not JSON (line {} column {})",
            err.line(),
            err.column()
        ),
    };
    PullError::Config(format!("{shape}: {why}"))
}

#[derive(serde::Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    scope: String,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

pub struct Google {
    http: reqwest::Client,
    settings: Settings,
    pacing: Pacing,
    client_email: String,
    key: jsonwebtoken::EncodingKey,
    key_id: Option<String>,
    token_url: String,
    /// `{api_base}/admin/directory/v1/`
    directory: Url,
    /// The users.list `query` for an org-unit scope.
    search: Option<String>,
    group: Option<String>,
    /// The scope group's USER member ids, read at the start of a listing.
    members: Option<HashSet<String>>,
    /// The custom schemas the attribute mapping reads (`ask_for`): the
    /// users listing's `customFieldMask`.
    custom_schemas: Vec<String>,
    token: Option<AccessToken>,
}

impl std::fmt::Debug for Google {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Google")
            .field("settings", &self.settings)
            .field("client_email", &self.client_email)
            .field("token_url", &self.token_url)
            .field("search", &self.search)
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

/// Google's words for an API error: `error.message`, else the first
/// `errors[].message` (v1 error format, docs/pull-apis.md §1C).
fn api_message(answer: &Answer) -> String {
    let body = answer.json();
    body["error"]["message"]
        .as_str()
        .or(body["error"]["errors"][0]["message"].as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| format!("HTTP {}", answer.status))
}

fn api_reason(answer: &Answer) -> Option<String> {
    answer.json()["error"]["errors"][0]["reason"]
        .as_str()
        .map(str::to_owned)
}

fn is_throttled(answer: &Answer) -> bool {
    answer.status == 403 && api_reason(answer).is_some_and(|r| THROTTLED.contains(&r.as_str()))
}

/// 429, 5xx and the 403 rate-limit reasons back off exponentially with
/// jitter, as Google's limits page asks.
fn classify(answer: &Answer) -> Retry {
    if transient(answer) || is_throttled(answer) {
        Retry::Backoff
    } else {
        Retry::No
    }
}

impl Google {
    /// A connector for these settings and scope, signing with the key file
    /// in `secret`.
    pub fn new(
        settings: Settings,
        scope: &Scope,
        secret: Secret,
        pacing: Pacing,
    ) -> Result<Google, PullError> {
        settings.validate().map_err(PullError::Config)?;
        let key_file: KeyFile =
            serde_json::from_str(secret.expose()).map_err(|e| key_file_error(&e))?;
        if key_file
            .kind
            .as_deref()
            .is_some_and(|k| k != "service_account")
        {
            return Err(PullError::Config(format!(
                "the key file is of type {:?}; dirsync needs a service_account key",
                key_file.kind.unwrap_or_default()
            )));
        }
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(key_file.private_key.as_bytes())
            .map_err(|_| {
                PullError::Config(
                    "the key file's private_key is not an RSA private key in PEM form".to_owned(),
                )
            })?;
        let token_url = settings
            .token_url
            .clone()
            .or(key_file.token_uri)
            .unwrap_or_else(|| DEFAULT_TOKEN_URL.to_owned());
        http_url("the key file's token_uri", &token_url).map_err(PullError::Config)?;
        let directory = http_url(
            "api_base",
            &format!(
                "{}/admin/directory/v1/",
                settings.api_base.trim_end_matches('/')
            ),
        )
        .map_err(PullError::Config)?;
        let search = match scope.org_unit.as_deref().map(str::trim) {
            None | Some("") => None,
            // Google's search syntax quotes values with single quotes
            // (`orgUnitPath='/Sales Team'`, search-users guide); it documents
            // no escape for a quote inside one, so such a path is refused
            // rather than searched wrongly. orgUnitPath matches the unit and
            // the units under it. Search is eventually consistent ("up to 36
            // hours for new data to be reflected in all search results"), so
            // a user just moved into the unit may show up a run late.
            Some(unit) if unit.contains('\'') => {
                return Err(PullError::Config(format!(
                    "the org unit {unit:?} contains a single quote, which Google's user search cannot express"
                )));
            }
            Some(unit) => Some(format!("orgUnitPath='{unit}'")),
        };
        Ok(Google {
            http: reqwest::Client::new(),
            client_email: key_file.client_email,
            key,
            key_id: key_file.private_key_id,
            token_url,
            directory,
            search,
            group: scope
                .group
                .as_deref()
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .map(str::to_owned),
            members: None,
            custom_schemas: Vec::new(),
            token: None,
            settings,
            pacing,
        })
    }

    /// The signed assertion: RS256, `kid` = the key's id, valid one hour
    /// ("a maximum of 1 hour after the issued time", Google's
    /// service-account guide), `aud` = the token URL as yup-oauth2 does.
    fn assertion(&self) -> Result<String, PullError> {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = self.key_id.clone();
        let iat = chrono::Utc::now().timestamp();
        let claims = Claims {
            iss: &self.client_email,
            sub: self.settings.admin_email.trim(),
            scope: SCOPES.join(" "),
            aud: &self.token_url,
            iat,
            exp: iat + 3600,
        };
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| PullError::Config(format!("could not sign the assertion: {e}")))
    }

    /// The current access token, fetched or renewed when it is missing or
    /// about to expire.
    #[instrument(skip_all, fields(client_email = %self.client_email))]
    async fn access_token(&mut self) -> Result<Secret, PullError> {
        if let Some(token) = &self.token
            && token.is_fresh()
        {
            return Ok(token.value.clone());
        }
        let assertion = self.assertion()?;
        let form = [
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", assertion.as_str()),
        ];
        let answer = self
            .pacing
            .send(
                || self.http.post(&self.token_url).form(&form),
                |a| {
                    if transient(a) {
                        Retry::Backoff
                    } else {
                        Retry::No
                    }
                },
            )
            .await?;
        let body = answer.json();
        if !answer.is_success() {
            // Google's `error_description` names the cause: "Invalid email or
            // User ID" (unknown admin), unauthorized_client (delegation not
            // granted for these scopes), "Invalid JWT Signature." (wrong key).
            let error = body["error"].as_str().unwrap_or("error");
            let why = match body["error_description"].as_str() {
                Some(description) => format!("{error}: {description}"),
                None if transient(&answer) => {
                    return Err(PullError::Exhausted {
                        attempts: self.pacing.attempts.max(1),
                        last: format!("the token endpoint answered HTTP {}", answer.status),
                    });
                }
                None => format!("the token endpoint answered HTTP {}", answer.status),
            };
            return Err(PullError::Auth(why));
        }
        let access = body["access_token"]
            .as_str()
            .ok_or_else(|| PullError::Auth("the token response has no access_token".into()))?;
        let lifetime = Duration::from_secs(body["expires_in"].as_u64().unwrap_or(3600));
        let token = AccessToken::new(Secret::new(access.to_owned()), lifetime);
        let access = token.value.clone();
        self.token = Some(token);
        Ok(access)
    }

    /// GET one Directory API page: retried through `Pacing`, a 401 renews
    /// the token once, errors carry Google's words.
    #[instrument(skip_all, fields(path = %url.path()))]
    async fn get(&mut self, url: Url) -> Result<Value, PullError> {
        let mut renewed = false;
        loop {
            let token = self.access_token().await?;
            let answer = self
                .pacing
                .send(
                    || self.http.get(url.clone()).bearer_auth(token.expose()),
                    classify,
                )
                .await?;
            if answer.is_success() {
                return Ok(answer.json());
            }
            let message = api_message(&answer);
            match answer.status {
                // The access token expired or was revoked: one new token.
                401 if !renewed => {
                    renewed = true;
                    self.token = None;
                }
                401 => return Err(PullError::Auth(message)),
                _ if classify(&answer) == Retry::Backoff => {
                    return Err(PullError::Exhausted {
                        attempts: self.pacing.attempts.max(1),
                        last: message,
                    });
                }
                // "Not Authorized to access this resource/api": the admin is
                // none, or a scope is missing.
                403 => return Err(PullError::Permission(message)),
                status => return Err(PullError::Provider { status, message }),
            }
        }
    }

    /// `users`, `groups`: the customer, or the domain when one is set.
    fn listing(&self, path: &str, max: u32, page_token: Option<&str>) -> Result<Url, PullError> {
        let mut url = self
            .directory
            .join(path)
            .map_err(|e| PullError::Config(format!("api_base: {e}")))?;
        {
            let mut query = url.query_pairs_mut();
            match &self.settings.domain {
                Some(domain) => query.append_pair("domain", domain.trim()),
                None => query.append_pair("customer", self.settings.customer.trim()),
            };
            query.append_pair("maxResults", &max.to_string());
            if let Some(token) = page_token {
                query.append_pair("pageToken", token);
            }
        }
        Ok(url)
    }

    /// Custom schemas come only with `projection=custom` (the ones
    /// `customFieldMask` names) or `full` (all of them), §1B. The connector
    /// asks for the schemas its mapping reads and nothing more (issue 14),
    /// so a schema the rules ignore (which may hold what a tenant keeps from
    /// most admins) never leaves Google. users.list and users.get alike.
    fn projection(&self, url: &mut Url) {
        let mut query = url.query_pairs_mut();
        if self.custom_schemas.is_empty() {
            query.append_pair("projection", "basic");
        } else {
            query.append_pair("projection", "custom");
            query.append_pair("customFieldMask", &self.custom_schemas.join(","));
        }
    }

    fn users_url(&self, max: u32, page_token: Option<&str>) -> Result<Url, PullError> {
        let mut url = self.listing("users", max, page_token)?;
        self.projection(&mut url);
        {
            let mut query = url.query_pairs_mut();
            if let Some(search) = &self.search {
                query.append_pair("query", search);
            }
        }
        Ok(url)
    }

    /// users.get: `users/{userKey}` with the listing's projection.
    fn user_url(&self, key: &str) -> Result<Url, PullError> {
        let mut url = self.directory.clone();
        url.path_segments_mut()
            .map_err(|()| PullError::Config("api_base cannot hold a path".to_owned()))?
            .pop_if_empty()
            .extend(["users", key]);
        self.projection(&mut url);
        Ok(url)
    }

    fn members_url(&self, group: &str, page_token: Option<&str>) -> Result<Url, PullError> {
        let mut url = self.directory.clone();
        url.path_segments_mut()
            .map_err(|()| PullError::Config("api_base cannot hold a path".to_owned()))?
            .pop_if_empty()
            .extend(["groups", group, "members"]);
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("maxResults", &MEMBERS_PER_PAGE.to_string());
            if let Some(token) = page_token {
                query.append_pair("pageToken", token);
            }
        }
        Ok(url)
    }

    /// Every USER member id of the scope group. Listing each member with
    /// users.get would cost one request per member; instead the ids of one
    /// group are held in memory (a set of short strings, even for large
    /// groups) and the users listing is filtered by them.
    async fn group_member_ids(&mut self, group: &str) -> Result<HashSet<String>, PullError> {
        let mut ids = HashSet::new();
        let mut next: Option<String> = None;
        loop {
            let page = self.members(group, next.as_deref()).await?;
            ids.extend(page.users);
            match page.next {
                Some(token) => next = Some(token),
                None => return Ok(ids),
            }
        }
    }
}

impl Source for Google {
    fn ask_for(&mut self, asked: &Asked) {
        self.custom_schemas = asked.custom_schemas.clone();
    }

    async fn check(&mut self) -> Result<Check, PullError> {
        self.access_token().await?;
        let body = self.get(self.users_url(CHECK_USERS, None)?).await?;
        Ok(Check {
            authenticated: format!(
                "service account {} impersonating {} (JWT bearer grant, domain-wide delegation)",
                self.client_email,
                self.settings.admin_email.trim()
            ),
            users_read: body["users"].as_array().map_or(0, Vec::len),
        })
    }

    /// Google has no delta (docs/pull-apis.md §1D): `Since` lists everything like
    /// `Start`, and no page carries a cursor, so every run is full and
    /// deletions show as users missing from it.
    async fn users(&mut self, at: &Position) -> Result<UserPage, PullError> {
        let page_token = match at {
            Position::Start | Position::Since(_) => {
                self.members = None;
                None
            }
            Position::Next(token) => Some(token.as_str()),
        };
        if let Some(group) = self.group.clone()
            && self.members.is_none()
        {
            self.members = Some(self.group_member_ids(&group).await?);
        }
        let body = self
            .get(self.users_url(USERS_PER_PAGE, page_token)?)
            .await?;
        let mut page = UserPage {
            next: body["nextPageToken"].as_str().map(str::to_owned),
            ..UserPage::default()
        };
        for item in body["users"].as_array().into_iter().flatten() {
            let user = google_user(item);
            // The group scope is applied here, to the whole domain's users:
            // what one outside it dropped is not the run's.
            let outside = user
                .user
                .as_ref()
                .is_some_and(|(id, _)| self.members.as_ref().is_some_and(|m| !m.contains(id)));
            if !outside {
                page.push(user);
            }
        }
        Ok(page)
    }

    /// A group or an org unit scope is applied to a listing, so only an
    /// unscoped connection reads one user.
    fn reads_one(&self) -> bool {
        self.group.is_none() && self.search.is_none()
    }

    /// users.get (`userKey`: the id or the primary email) with the
    /// listing's projection; Google's 404 (`notFound`) is no such user, and
    /// so is a user outside the connection's `domain` (the listing reads
    /// that domain's users only).
    async fn user(&mut self, key: &str) -> Result<Option<normalize::Normalized>, PullError> {
        let item = match self.get(self.user_url(key)?).await {
            Ok(item) => item,
            Err(PullError::Provider { status: 404, .. }) => return Ok(None),
            Err(err) => return Err(err),
        };
        if let Some(domain) = &self.settings.domain {
            let email = item["primaryEmail"].as_str().unwrap_or_default();
            let of_domain = email
                .rsplit_once('@')
                .is_some_and(|(_, d)| d.eq_ignore_ascii_case(domain.trim()));
            if !of_domain {
                return Ok(None);
            }
        }
        Ok(Some(google_user(&item)))
    }

    async fn groups(&mut self, next: Option<&str>) -> Result<GroupPage, PullError> {
        let body = self
            .get(self.listing("groups", GROUPS_PER_PAGE, next)?)
            .await?;
        let groups = body["groups"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|g| {
                        let id = g["id"].as_str()?.to_owned();
                        let name = g["name"]
                            .as_str()
                            .and_then(normalize::provider_text)
                            .or_else(|| g["email"].as_str().and_then(normalize::provider_text))?;
                        Some((
                            id.clone(),
                            GroupSnapshot {
                                name,
                                external_id: Some(id),
                            },
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(GroupPage {
            groups,
            next: body["nextPageToken"].as_str().map(str::to_owned),
        })
    }

    /// Direct members only (`includeDerivedMembership` left false); nested
    /// groups (`GROUP`), the whole domain (`CUSTOMER`) and others are left out.
    async fn members(
        &mut self,
        group_id: &str,
        next: Option<&str>,
    ) -> Result<MemberPage, PullError> {
        let body = self.get(self.members_url(group_id, next)?).await?;
        let users = body["members"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter(|m| m["type"].as_str() == Some("USER"))
                    .filter_map(|m| m["id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        Ok(MemberPage {
            users,
            next: body["nextPageToken"].as_str().map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pull::fake::google::{Credentials, dev_connection, start};
    use crate::pull::fake::{Org, Running, Shared};
    use std::sync::Arc;

    /// Start a fake and a connector pointed at it through `dev_connection`,
    /// exactly as `dirsync connection create --file` would.
    fn connect(
        dir: Org,
        credentials: Credentials,
        scope: Scope,
        pacing: Pacing,
    ) -> (Running, Arc<Shared>, Google) {
        let shared = Shared::new(dir);
        let fake = start(shared.clone(), credentials.clone()).unwrap();
        let google = from_connection(&dev_connection(&fake, &credentials), &scope, pacing).unwrap();
        (fake, shared, google)
    }

    fn from_connection(
        connection: &Value,
        scope: &Scope,
        pacing: Pacing,
    ) -> Result<Google, PullError> {
        assert_eq!(connection["provider"], "google");
        let settings: Settings = serde_json::from_value(connection["settings"].clone()).unwrap();
        let secret = Secret::new(connection["secret"].as_str().unwrap().to_owned());
        Google::new(settings, scope, secret, pacing)
    }

    async fn all_users(google: &mut Google) -> Result<(Vec<UserPage>, usize), PullError> {
        let mut pages = Vec::new();
        let mut at = Position::Start;
        loop {
            let page = google.users(&at).await?;
            let next = page.next.clone();
            pages.push(page);
            match next {
                Some(token) => at = Position::Next(token),
                None => {
                    let n = pages.iter().map(|p| p.users.len()).sum();
                    return Ok((pages, n));
                }
            }
        }
    }

    fn ids(pages: &[UserPage]) -> HashSet<String> {
        pages
            .iter()
            .flat_map(|p| p.users.iter().map(|(id, _)| id.clone()))
            .collect()
    }

    #[tokio::test]
    async fn one_user_is_read_by_id_or_email_with_the_listings_projection_and_unknown_is_none() {
        let dir = Org::generate(600, 1, 7);
        let (pacing, _) = Pacing::recording(3);
        let (_fake, shared, mut google) = connect(
            dir.clone(),
            Credentials::default(),
            Scope::default(),
            pacing,
        );
        google.ask_for(&Asked {
            properties: Vec::new(),
            custom_schemas: vec!["HR".into()],
        });
        let (pages, _) = all_users(&mut google).await.unwrap();
        let listings = shared
            .users_listed
            .load(std::sync::atomic::Ordering::SeqCst);
        let user = dir
            .users
            .iter()
            .find(|u| !u.cost_center.is_empty())
            .unwrap();
        let listed = pages
            .iter()
            .flat_map(|p| p.users.iter())
            .find(|(id, _)| *id == user.id);
        for key in [user.id.as_str(), user.email.as_str()] {
            let read = google.user(key).await.unwrap().unwrap();
            assert_eq!(read.user.as_ref(), listed, "{key}");
            let document = read.user.as_ref().unwrap().1.document.clone().unwrap();
            assert!(
                document["customSchemas"]["HR"].is_object()
                    && document["customSchemas"].get("Security").is_none(),
                "only the masked schema: {document}"
            );
        }
        assert_eq!(google.user("nobody@example.com").await.unwrap(), None);
        assert_eq!(shared.user_reads().len(), 3);
        assert_eq!(
            shared
                .users_listed
                .load(std::sync::atomic::Ordering::SeqCst),
            listings
        );
        assert!(google.reads_one());
        let (pacing, _) = Pacing::recording(3);
        let (_f, _s, unit) = connect(
            dir.clone(),
            Credentials::default(),
            Scope {
                org_unit: Some("/Sales".into()),
                ..Scope::default()
            },
            pacing,
        );
        assert!(!unit.reads_one());
    }

    #[tokio::test]
    async fn a_full_listing_pages_through_every_user_and_suspended_or_archived_users_are_inactive()
    {
        let dir = Org::generate(1100, 3, 7);
        let (_fake, shared, mut google) = connect(
            dir.clone(),
            Credentials::default(),
            Scope::default(),
            Pacing::default(),
        );
        let (pages, n) = all_users(&mut google).await.unwrap();
        assert_eq!((pages.len(), n), (3, 1100), "500 a page");
        let last = pages.last().unwrap();
        assert_eq!((last.next.as_deref(), last.cursor.as_deref()), (None, None));
        let inactive: HashSet<String> = pages
            .iter()
            .flat_map(|p| p.users.iter())
            .filter(|(_, s)| !s.active)
            .map(|(id, _)| id.clone())
            .collect();
        let expected: HashSet<String> = dir
            .users
            .iter()
            .filter(|u| !u.active)
            .map(|u| u.id.clone())
            .collect();
        assert_eq!(inactive, expected);
        let raw: Vec<Value> = dir
            .users
            .iter()
            .filter(|u| !u.active)
            .map(|u| u.google())
            .collect();
        assert!(
            raw.iter().any(|u| u["archived"] == true),
            "the fake archives some"
        );
        assert!(
            raw.iter().any(|u| u["suspended"] == true),
            "and suspends others"
        );
        let (_, first) = &pages[0].users[0];
        assert_eq!(first.email.as_deref(), Some(dir.users[0].email.as_str()));
        assert_eq!(
            first.profile.employee_number.as_deref(),
            Some(dir.users[0].employee_number.as_str())
        );
        assert_eq!(
            shared
                .tokens_issued
                .load(std::sync::atomic::Ordering::SeqCst),
            1,
            "one token for the whole listing"
        );
    }

    #[tokio::test]
    async fn custom_schemas_come_only_as_the_mapping_asks_for_them() {
        let (_fake, shared, mut google) = connect(
            Org::generate(3, 1, 7),
            Credentials::default(),
            Scope::default(),
            Pacing::default(),
        );
        let schemas = |page: &UserPage| {
            let doc = page.users[0].1.document.clone().unwrap();
            doc["customSchemas"]
                .as_object()
                .map(|o| o.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default()
        };
        let page = google.users(&Position::Start).await.unwrap();
        assert!(schemas(&page).is_empty(), "basic: no custom schema");
        google.ask_for(&Asked {
            properties: vec!["customSchemas".into()],
            custom_schemas: vec!["HR".into()],
        });
        let page = google.users(&Position::Start).await.unwrap();
        assert_eq!(
            schemas(&page),
            ["HR"],
            "the fake serves Security too, unasked"
        );
        let asked = shared.user_queries();
        assert!(asked[0].contains("projection=basic"), "{asked:?}");
        assert!(
            asked[1].contains("projection=custom&customFieldMask=HR"),
            "{asked:?}"
        );
    }

    #[tokio::test]
    async fn an_org_unit_scope_lists_that_unit_and_the_units_under_it() {
        let dir = Org::generate(40, 2, 3);
        let scope = Scope {
            org_unit: Some("/Engineering".into()),
            ..Scope::default()
        };
        let (_fake, shared, mut google) = connect(
            dir.clone(),
            Credentials::default(),
            scope,
            Pacing::default(),
        );
        let moved = dir.users[1].id.clone();
        assert_eq!(dir.users[1].org_unit, "/Sales");
        shared
            .directory_mut()
            .update_user(&moved, |u| u.org_unit = "/Engineering/Platform".into());
        let (pages, _) = all_users(&mut google).await.unwrap();
        let mut expected: HashSet<String> = dir
            .users
            .iter()
            .filter(|u| u.org_unit == "/Engineering")
            .map(|u| u.id.clone())
            .collect();
        expected.insert(moved);
        assert_eq!(ids(&pages), expected);
    }

    #[tokio::test]
    async fn a_group_scope_lists_only_the_groups_user_members_as_full_users() {
        let dir = Org::generate(60, 3, 11);
        let group = &dir.groups[1];
        let email = group.google()["email"].as_str().unwrap().to_owned();
        let scope = Scope {
            group: Some(email),
            ..Scope::default()
        };
        let (_fake, _shared, mut google) = connect(
            dir.clone(),
            Credentials::default(),
            scope,
            Pacing::default(),
        );
        let (pages, _) = all_users(&mut google).await.unwrap();
        let expected: HashSet<String> = group
            .members
            .iter()
            .map(|i| dir.users[*i].id.clone())
            .collect();
        assert!(!expected.is_empty());
        assert_eq!(ids(&pages), expected);
        assert!(
            pages
                .iter()
                .flat_map(|p| &p.users)
                .all(|(_, s)| s.email.is_some())
        );
    }

    #[tokio::test]
    async fn a_scope_group_that_does_not_exist_is_reported_in_googles_words() {
        let scope = Scope {
            group: Some("nobody@example.com".into()),
            ..Scope::default()
        };
        let (_fake, _shared, mut google) = connect(
            Org::generate(5, 1, 1),
            Credentials::default(),
            scope,
            Pacing::default(),
        );
        match google.users(&Position::Start).await {
            Err(PullError::Provider { status, message }) => {
                assert_eq!(
                    (status, message.as_str()),
                    (404, "Resource Not Found: groupKey")
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn groups_are_listed_with_their_ids_and_members_are_users_only() {
        let dir = Org::generate(30, 3, 5);
        let (_fake, _shared, mut google) = connect(
            dir.clone(),
            Credentials::default(),
            Scope::default(),
            Pacing::default(),
        );
        let page = google.groups(None).await.unwrap();
        assert!(page.next.is_none());
        let names: Vec<(&str, &str)> = page
            .groups
            .iter()
            .map(|(id, g)| (id.as_str(), g.name.as_str()))
            .collect();
        let expected: Vec<(&str, &str)> = dir
            .groups
            .iter()
            .map(|g| (g.id.as_str(), g.name.as_str()))
            .collect();
        assert_eq!(names, expected);
        assert!(
            page.groups
                .iter()
                .all(|(id, g)| g.external_id.as_deref() == Some(id))
        );

        let group = &dir.groups[0];
        let members = google.members(&group.id, None).await.unwrap();
        let expected: Vec<String> = group
            .members
            .iter()
            .map(|i| dir.users[*i].id.clone())
            .collect();
        assert_eq!(members.users, expected, "the nested group is left out");
        assert!(!members.users.contains(&dir.groups[1].id));
    }

    #[tokio::test]
    async fn an_unknown_admin_fails_with_googles_words() {
        let dir = Org::generate(5, 1, 1);
        let shared = Shared::new(dir);
        let credentials = Credentials::default();
        let fake = start(shared, credentials.clone()).unwrap();
        let mut connection = dev_connection(&fake, &credentials);
        connection["settings"]["admin_email"] = "ghost@example.com".into();
        let mut google =
            from_connection(&connection, &Scope::default(), Pacing::default()).unwrap();
        match google.users(&Position::Start).await {
            Err(PullError::Auth(why)) => assert_eq!(why, "invalid_grant: Invalid email or User ID"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_key_that_does_not_match_the_service_account_is_refused_for_its_signature() {
        let credentials = Credentials::default();
        let fake = start(Shared::new(Org::generate(5, 1, 1)), credentials.clone()).unwrap();
        let stolen = Credentials {
            private_key: Secret::new(include_str!("fake/google_other_key.pem").to_owned()),
            ..credentials
        };
        let mut google = from_connection(
            &dev_connection(&fake, &stolen),
            &Scope::default(),
            Pacing::default(),
        )
        .unwrap();
        match google.check().await {
            Err(PullError::Auth(why)) => assert_eq!(why, "invalid_grant: Invalid JWT Signature."),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn throttling_twice_backs_off_twice_and_then_succeeds() {
        let (pacing, waits) = Pacing::recording(5);
        let (_fake, shared, mut google) = connect(
            Org::generate(20, 1, 2),
            Credentials::default(),
            Scope::default(),
            pacing,
        );
        shared.faults.throttle(2);
        let page = google.users(&Position::Start).await.unwrap();
        assert_eq!(page.users.len(), 20);
        let waits = waits.lock().unwrap().clone();
        assert_eq!(waits.len(), 2, "{waits:?}");
        // Exponential from a 1 s base with up to 1 s of jitter.
        assert!(
            waits[0] >= Duration::from_secs(1) && waits[0] < Duration::from_secs(2),
            "{waits:?}"
        );
        assert!(
            waits[1] >= Duration::from_secs(2) && waits[1] < Duration::from_secs(3),
            "{waits:?}"
        );
    }

    #[tokio::test]
    async fn a_persistent_outage_ends_exhausted_with_googles_message() {
        let (pacing, waits) = Pacing::recording(3);
        let (_fake, shared, mut google) = connect(
            Org::generate(20, 1, 2),
            Credentials::default(),
            Scope::default(),
            pacing,
        );
        shared.faults.fail(100);
        match google.groups(None).await {
            Err(PullError::Exhausted { attempts, last }) => {
                assert_eq!((attempts, last.as_str()), (3, "Backend Error"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(waits.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn an_expired_access_token_is_renewed_once_and_the_listing_goes_on() {
        let (_fake, shared, mut google) = connect(
            Org::generate(1200, 1, 4),
            Credentials::default(),
            Scope::default(),
            Pacing::default(),
        );
        let first = google.users(&Position::Start).await.unwrap();
        shared.revoke_tokens();
        let second = google
            .users(&Position::Next(first.next.clone().unwrap()))
            .await
            .unwrap();
        assert_eq!((first.users.len(), second.users.len()), (500, 500));
        assert_ne!(
            first.users[0].0, second.users[0].0,
            "the next page, not the first again"
        );
        assert_eq!(
            shared
                .tokens_issued
                .load(std::sync::atomic::Ordering::SeqCst),
            2
        );
    }

    #[tokio::test]
    async fn a_token_near_its_expiry_is_renewed_before_the_call() {
        let (_fake, shared, mut google) = connect(
            Org::generate(3, 1, 4),
            Credentials::default(),
            Scope::default(),
            Pacing::default(),
        );
        google.groups(None).await.unwrap();
        if let Some(token) = &mut google.token {
            token.expire();
        }
        google.groups(None).await.unwrap();
        assert_eq!(
            shared
                .tokens_issued
                .load(std::sync::atomic::Ordering::SeqCst),
            2
        );
    }

    #[tokio::test]
    async fn check_reports_the_handshake_and_a_few_users() {
        let (_fake, _shared, mut google) = connect(
            Org::generate(50, 1, 4),
            Credentials::default(),
            Scope::default(),
            Pacing::default(),
        );
        let check = google.check().await.unwrap();
        assert_eq!(check.users_read, CHECK_USERS as usize);
        assert!(
            check
                .authenticated
                .contains("dirsync@dirsync-dev.iam.gserviceaccount.com")
        );
        assert!(check.authenticated.contains("admin@example.com"));
    }

    #[tokio::test]
    async fn check_names_missing_delegation_and_a_non_admin_in_googles_words() {
        let dir = Org::generate(5, 1, 4);
        let no_scopes = Credentials {
            scopes: vec![SCOPES[0].to_owned()],
            ..Credentials::default()
        };
        let (_fake, _shared, mut google) =
            connect(dir.clone(), no_scopes, Scope::default(), Pacing::default());
        match google.check().await {
            Err(PullError::Auth(why)) => {
                assert!(
                    why.starts_with("unauthorized_client: Client is unauthorized"),
                    "{why}"
                )
            }
            other => panic!("{other:?}"),
        }

        let credentials = Credentials::default();
        let fake = start(Shared::new(dir.clone()), credentials.clone()).unwrap();
        let mut connection = dev_connection(&fake, &credentials);
        connection["settings"]["admin_email"] = dir.users[0].email.clone().into();
        let mut google =
            from_connection(&connection, &Scope::default(), Pacing::default()).unwrap();
        match google.check().await {
            Err(PullError::Permission(why)) => {
                assert_eq!(why, "Not Authorized to access this resource/api")
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn the_secret_never_shows_in_debug_output_or_errors() {
        let credentials = Credentials::default();
        let key_body = credentials
            .private_key
            .expose()
            .lines()
            .nth(1)
            .unwrap()
            .to_owned();
        let (_fake, shared, mut google) = connect(
            Org::generate(5, 1, 4),
            credentials.clone(),
            Scope::default(),
            Pacing::default(),
        );
        google.groups(None).await.unwrap();
        let access: Vec<String> = vec![google.token.as_ref().unwrap().value.expose().to_owned()];
        let mut outputs = vec![format!("{google:?}")];
        shared.revoke_tokens();
        shared.faults.fail(100);
        let (pacing, _) = Pacing::recording(2);
        google.pacing = pacing;
        outputs.push(format!("{:?}", google.groups(None).await.unwrap_err()));
        // A PEM pasted as a JSON string, and a key file with a broken key.
        let pem = serde_json::to_string(credentials.private_key.expose()).unwrap();
        for secret in [
            pem,
            credentials.key_file("http://x/token").replace("MII", "XYZ"),
        ] {
            let settings: Settings =
                serde_json::from_value(dev_connection(&_fake, &credentials)["settings"].clone())
                    .unwrap();
            let err = Google::new(
                settings,
                &Scope::default(),
                Secret::new(secret),
                Pacing::default(),
            )
            .unwrap_err();
            assert!(matches!(err, PullError::Config(_)), "{err:?}");
            outputs.push(format!("{err:?} {err}"));
        }
        for out in &outputs {
            assert!(!out.contains(&key_body), "{out}");
            assert!(!out.contains("BEGIN PRIVATE KEY"), "{out}");
            for token in &access {
                assert!(!out.contains(token.as_str()), "{out}");
            }
        }
    }

    #[rstest::rstest]
    #[case(403, "userRateLimitExceeded", Retry::Backoff)]
    #[case(403, "quotaExceeded", Retry::Backoff)]
    #[case(429, "rateLimitExceeded", Retry::Backoff)]
    #[case(503, "backendError", Retry::Backoff)]
    #[case(500, "backendError", Retry::Backoff)]
    #[case(403, "forbidden", Retry::No)]
    #[case(403, "dailyLimitExceeded", Retry::No)]
    #[case(404, "notFound", Retry::No)]
    #[case(401, "authError", Retry::No)]
    fn google_throttling_reasons_back_off_and_other_errors_do_not(
        #[case] status: u16,
        #[case] reason: &str,
        #[case] retry: Retry,
    ) {
        let answer = Answer {
            status,
            headers: reqwest::header::HeaderMap::new(),
            body: serde_json::json!({"error": {"code": status, "message": "m",
                "errors": [{"domain": "usageLimits", "reason": reason, "message": "m"}]}})
            .to_string()
            .into_bytes(),
        };
        assert_eq!(classify(&answer), retry);
    }

    #[test]
    fn settings_default_to_google_and_refuse_unknown_fields_and_bad_values() {
        let settings: Settings =
            serde_json::from_value(serde_json::json!({"admin_email": "admin@example.com"}))
                .unwrap();
        assert_eq!(settings.customer, "my_customer");
        assert_eq!(settings.api_base, "https://admin.googleapis.com");
        assert!(settings.validate().is_ok());
        assert!(
            serde_json::from_value::<Settings>(
                serde_json::json!({"admin_email": "admin@example.com", "tenant": "x"})
            )
            .is_err()
        );
        let bad = Settings {
            admin_email: "admin".into(),
            ..settings.clone()
        };
        assert!(bad.validate().unwrap_err().contains("admin_email"));
        let bad = Settings {
            api_base: "admin.googleapis.com".into(),
            ..settings
        };
        assert!(bad.validate().unwrap_err().contains("api_base"));
    }

    #[test]
    fn a_key_file_missing_its_private_key_is_a_config_error_naming_the_field() {
        let settings: Settings =
            serde_json::from_value(serde_json::json!({"admin_email": "admin@example.com"}))
                .unwrap();
        let secret = Secret::new(r#"{"client_email": "a@b.iam.gserviceaccount.com"}"#.into());
        match Google::new(settings, &Scope::default(), secret, Pacing::default()) {
            Err(PullError::Config(why)) => {
                assert!(why.contains("missing field `private_key`"), "{why}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_org_unit_scope_becomes_a_quoted_org_unit_path_search() {
        let settings: Settings =
            serde_json::from_value(serde_json::json!({"admin_email": "admin@example.com"}))
                .unwrap();
        let key = Credentials::default().key_file("https://oauth2.googleapis.com/token");
        let scope = Scope {
            org_unit: Some("/Sales Team".into()),
            ..Scope::default()
        };
        let google = Google::new(
            settings.clone(),
            &scope,
            Secret::new(key.clone()),
            Pacing::default(),
        )
        .unwrap();
        let url = google.users_url(500, Some("tok")).unwrap();
        let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert!(
            query.contains(&("query".into(), "orgUnitPath='/Sales Team'".into())),
            "{query:?}"
        );
        assert!(query.contains(&("customer".into(), "my_customer".into())));
        assert!(query.contains(&("pageToken".into(), "tok".into())));
        let quoted = Scope {
            org_unit: Some("/O'Brien".into()),
            ..Scope::default()
        };
        assert!(matches!(
            Google::new(settings, &quoted, Secret::new(key), Pacing::default()),
            Err(PullError::Config(_))
        ));
    }
}
