//! The Okta connector (docs/pull-apis.md §3): the Management API under one org URL,
//! authenticated by an API token (`SSWS`) or by a service app's
//! private_key_jwt client-credentials grant on the org authorization server;
//! users paged by `Link: rel="next"` headers, incremental by `lastUpdated`,
//! groups and their direct user members. Translation only: every page goes to
//! `normalize::okta_user` and on to the run. Must not import `sea_orm`,
//! `scim_v2` or `actix_web`.
//!
//! A full listing is the plain list, then `status eq "DEPROVISIONED"` (the
//! plain list omits deprovisioned users, docs/pull-apis.md §3B), chained in one
//! sequence of `next` pages so a deactivated user arrives inactive instead
//! of merely missing. Hard-deleted users vanish from every Okta listing,
//! `lastUpdated` filters included (§3D), so `removed` is always empty: a
//! deletion shows as a user missing from the next full listing.
//!
//! Complete or partial: complete. Okta returns whole user objects in every
//! listing, the `lastUpdated gt` search of an incremental run included, so a
//! snapshot's absent value means no value there too.
//!
//! DPoP-bound tokens (Okta's default for new API service apps since February
//! 2024, docs/pull-apis.md §3A) are out of scope: the service app must have
//! "Require Demonstrating Proof of Possession" turned off.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue};
use tracing::instrument;

use super::PullError;
use super::normalize::{self, okta_user};
use super::retry::{Answer, Pacing, Retry, transient};
use super::source::{Check, GroupPage, MemberPage, Position, Scope, Source, UserPage};
use super::token::AccessToken;
use crate::crypto::Secret;
use crate::reconcile::model::GroupSnapshot;

/// Okta's page size cap for users (docs/pull-apis.md §3B) and the size it
/// recommends for groups and group members.
const PAGE: u32 = 200;

/// How far back an incremental listing reaches before its cursor, so a user
/// updated while the previous run was reading (or stamped by a clock a little
/// behind) is not missed (docs/pull-apis.md §3D: "use a safety overlap window").
const OVERLAP: chrono::Duration = chrono::Duration::seconds(60);

/// How long a client assertion is valid (Okta accepts at most one hour).
const ASSERTION_LIFETIME: i64 = 300;

/// Everything but RFC 3986's unreserved characters is escaped in a value.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn default_scopes() -> String {
    "okta.users.read okta.groups.read".to_owned()
}

/// How dirsync authenticates to Okta.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Auth {
    /// An API token (the secret), sent as `Authorization: SSWS <token>`.
    Ssws,
    /// An API service app's client-credentials grant with a signed client
    /// assertion; the secret is the app's private key (PKCS#8 PEM).
    PrivateKeyJwt,
}

/// A connection's non-secret settings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `https://acme.okta.com`: the token endpoint is `{org_url}/oauth2/v1/token`
    /// (the org authorization server, the only one that mints `okta.*`
    /// scopes) and the API `{org_url}/api/v1/...`.
    pub org_url: String,
    pub auth: Auth,
    /// The service app's client id (private_key_jwt only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The `kid` of the app's public key in Okta, sent in the assertion's
    /// header (needed when the app holds more than one key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// The scopes asked for (private_key_jwt only), space-separated.
    #[serde(default = "default_scopes")]
    pub scopes: String,
}

impl Settings {
    /// The org URL without a trailing slash, checked: https (http only for a
    /// loopback fake, so a token never crosses a network in clear), no path.
    fn org(&self) -> Result<url::Url, String> {
        let url = url::Url::parse(self.org_url.trim())
            .map_err(|e| format!("org_url {:?} is not a URL: {e}", self.org_url))?;
        let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        if !(url.scheme() == "https" || (url.scheme() == "http" && loopback)) {
            return Err(format!(
                "org_url {:?} must be https (e.g. https://acme.okta.com)",
                self.org_url
            ));
        }
        if url.path() != "/" || url.query().is_some() {
            return Err(format!(
                "org_url {:?} must be the org's address alone, without a path such as /oauth2/default",
                self.org_url
            ));
        }
        Ok(url)
    }

    pub fn validate(&self) -> Result<(), String> {
        self.org()?;
        match self.auth {
            Auth::Ssws => {
                if self.client_id.is_some() || self.key_id.is_some() {
                    return Err(
                        "client_id and key_id are only used with auth \"private_key_jwt\"".into(),
                    );
                }
            }
            Auth::PrivateKeyJwt => {
                if self
                    .client_id
                    .as_deref()
                    .is_none_or(|c| c.trim().is_empty())
                {
                    return Err("auth \"private_key_jwt\" needs the service app's client_id".into());
                }
                if self.scopes.split_whitespace().next().is_none() {
                    return Err("scopes is empty (okta.users.read okta.groups.read)".into());
                }
            }
        }
        Ok(())
    }

    fn base(&self) -> Result<String, String> {
        Ok(self.org()?.as_str().trim_end_matches('/').to_owned())
    }
}

/// What the connector signs in with.
enum Credential {
    Ssws(Secret),
    PrivateKeyJwt {
        client_id: String,
        key_id: Option<String>,
        scopes: String,
        algorithm: Algorithm,
        key: EncodingKey,
    },
}

pub struct Okta {
    http: reqwest::Client,
    /// The org URL without a trailing slash.
    org: String,
    credential: Credential,
    /// The group the connection imports (Okta group id), if any.
    group: Option<String>,
    pacing: Pacing,
    token: Option<AccessToken>,
}

impl std::fmt::Debug for Okta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let auth = match &self.credential {
            Credential::Ssws(_) => "ssws".to_owned(),
            Credential::PrivateKeyJwt { client_id, .. } => format!("private_key_jwt({client_id})"),
        };
        f.debug_struct("Okta")
            .field("org", &self.org)
            .field("auth", &auth)
            .field("group", &self.group)
            .field("pacing", &self.pacing)
            .finish()
    }
}

/// Which listing a user page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The plain list (every status but DEPROVISIONED).
    Listed,
    /// The second half of a full listing: `status eq "DEPROVISIONED"`.
    Deprovisioned,
    /// `lastUpdated gt …`: an incremental listing.
    Changed,
    /// A group's members (group scope; no incremental form).
    Group,
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Phase::Listed => "listed",
            Phase::Deprovisioned => "deprovisioned",
            Phase::Changed => "changed",
            Phase::Group => "group",
        }
    }

    fn parse(raw: &str) -> Option<Phase> {
        [
            Phase::Listed,
            Phase::Deprovisioned,
            Phase::Changed,
            Phase::Group,
        ]
        .into_iter()
        .find(|p| p.as_str() == raw)
    }
}

/// Where a user listing goes next, as the opaque `next` the run hands back:
/// `{phase} {latest lastUpdated so far or -} {url}`. The phase and mark ride
/// along so a full listing (plain, then deprovisioned) reads as one sequence
/// of pages and the last one can return the cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Step {
    phase: Phase,
    mark: Option<DateTime<Utc>>,
    url: String,
}

impl Step {
    fn encode(&self) -> String {
        let mark = self.mark.map(stamp).unwrap_or_else(|| "-".to_owned());
        format!("{} {mark} {}", self.phase.as_str(), self.url)
    }

    fn parse(raw: &str) -> Option<Step> {
        let mut parts = raw.splitn(3, ' ');
        let phase = Phase::parse(parts.next()?)?;
        let mark = match parts.next()? {
            "-" => None,
            m => Some(instant(m)?),
        };
        let url = parts.next()?.to_owned();
        Some(Step { phase, mark, url })
    }
}

/// Okta's timestamp form, `2026-01-01T00:00:00.000Z`.
fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn instant(raw: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Okta's error words: `errorSummary (errorCode)` plus any causes, or the
/// token endpoint's `error_description (error)`.
fn words(answer: &Answer) -> String {
    let body = answer.json();
    if let Some(summary) = body["errorSummary"].as_str() {
        let mut out = summary.to_owned();
        let causes: Vec<&str> = body["errorCauses"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["errorSummary"].as_str())
            .collect();
        if !causes.is_empty() {
            out.push_str(": ");
            out.push_str(&causes.join("; "));
        }
        if let Some(code) = body["errorCode"].as_str() {
            out.push_str(&format!(" ({code})"));
        }
        return out;
    }
    if let Some(description) = body["error_description"].as_str() {
        return match body["error"].as_str() {
            Some(error) => format!("{description} ({error})"),
            None => description.to_owned(),
        };
    }
    if let Some(error) = body["error"].as_str() {
        return error.to_owned();
    }
    format!("HTTP {} without an Okta error body", answer.status)
}

/// How long Okta asks a throttled client to wait: `X-Rate-Limit-Reset`
/// (epoch seconds) minus the answer's `Date`, plus one second, as
/// okta-sdk-golang computes it (docs/pull-apis.md §3C); None without both headers.
fn rate_limit_wait(answer: &Answer) -> Option<Duration> {
    let reset: i64 = answer.header("x-rate-limit-reset")?.trim().parse().ok()?;
    let date = DateTime::parse_from_rfc2822(answer.header("date")?.trim())
        .ok()?
        .timestamp();
    Some(Duration::from_secs(
        u64::try_from(reset - date).unwrap_or(0) + 1,
    ))
}

/// 429 waits as Okta says (else backs off); 5xx backs off.
fn classify(answer: &Answer) -> Retry {
    if answer.status == 429 {
        return rate_limit_wait(answer).map_or(Retry::Backoff, Retry::After);
    }
    if transient(answer) {
        return Retry::Backoff;
    }
    Retry::No
}

/// The `rel="next"` target among the answer's `Link` headers: Okta sends one
/// header line per rel (docs/pull-apis.md §0.2), and a proxy may join them with
/// commas, so every line and every entry is read.
fn next_link(answer: &Answer) -> Option<String> {
    answer
        .headers
        .get_all("link")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|entry| {
            let (target, params) = entry.trim().split_once(';')?;
            let is_next = params.split(';').any(|p| {
                p.trim()
                    .strip_prefix("rel=")
                    .is_some_and(|r| r.trim_matches('"').split(' ').any(|r| r == "next"))
            });
            is_next.then(|| {
                target
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_owned()
            })
        })
}

fn not_an_array(answer: &Answer) -> PullError {
    PullError::Provider {
        status: answer.status,
        message: "the answer is not a JSON array".into(),
    }
}

impl Okta {
    pub fn new(
        settings: Settings,
        scope: &Scope,
        secret: Secret,
        pacing: Pacing,
    ) -> Result<Okta, PullError> {
        settings.validate().map_err(PullError::Config)?;
        let org = settings.base().map_err(PullError::Config)?;
        let credential = match settings.auth {
            Auth::Ssws => {
                let token = secret.expose().trim();
                if token.is_empty() {
                    return Err(PullError::Config("the Okta API token is empty".into()));
                }
                if HeaderValue::from_str(&format!("SSWS {token}")).is_err() {
                    return Err(PullError::Config(
                        "the Okta API token holds characters a header cannot carry".into(),
                    ));
                }
                Credential::Ssws(Secret::new(token.to_owned()))
            }
            Auth::PrivateKeyJwt => {
                // Okta service apps take RSA (RS256) or EC P-256 (ES256) keys,
                // as okta-sdk-golang's createClientAssertion signs them.
                let pem = secret.expose().trim().as_bytes();
                let (algorithm, key) = match EncodingKey::from_rsa_pem(pem) {
                    Ok(key) => (Algorithm::RS256, key),
                    Err(_) => match EncodingKey::from_ec_pem(pem) {
                        Ok(key) => (Algorithm::ES256, key),
                        Err(_) => {
                            return Err(PullError::Config(
                                "the secret is not a PEM private key (an RSA or EC P-256 key, \
                                 -----BEGIN PRIVATE KEY-----)"
                                    .into(),
                            ));
                        }
                    },
                };
                Credential::PrivateKeyJwt {
                    client_id: settings.client_id.unwrap_or_default().trim().to_owned(),
                    key_id: settings.key_id.filter(|k| !k.trim().is_empty()),
                    scopes: settings
                        .scopes
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" "),
                    algorithm,
                    key,
                }
            }
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(PullError::network)?;
        Ok(Okta {
            http,
            org,
            credential,
            group: scope
                .group
                .as_deref()
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .map(str::to_owned),
            pacing,
            token: None,
        })
    }

    fn token_url(&self) -> String {
        format!("{}/oauth2/v1/token", self.org)
    }

    /// `{org}/api/v1/{path}` with a query.
    fn api(&self, path: &[&str], query: &[(&str, &str)]) -> Result<String, PullError> {
        let mut url = url::Url::parse(&format!("{}/api/v1", self.org))
            .map_err(|e| PullError::Config(format!("org_url: {e}")))?;
        url.path_segments_mut()
            .map_err(|()| PullError::Config("org_url cannot take a path".into()))?
            .extend(path);
        if !query.is_empty() {
            // Spaces as %20, as Okta's own filter examples are written
            // (docs/pull-apis.md §3B), not the form encoding's `+`.
            let query: Vec<String> = query
                .iter()
                .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, QUERY_VALUE)))
                .collect();
            url.set_query(Some(&query.join("&")));
        }
        Ok(url.into())
    }

    /// A link to follow: only on the org's own origin, so the API token is
    /// never sent to a host the connection was not configured for.
    fn on_org(&self, link: &str) -> Result<String, PullError> {
        let same = match (url::Url::parse(link), url::Url::parse(&self.org)) {
            (Ok(link), Ok(org)) => link.origin() == org.origin(),
            _ => false,
        };
        if same {
            Ok(link.to_owned())
        } else {
            Err(PullError::Config(format!(
                "the next page {link:?} is not on the org {}",
                self.org
            )))
        }
    }

    /// The client assertion: RS256/ES256, `iss`=`sub`=client_id, `aud`= the
    /// token URL, a fresh `jti` (docs/pull-apis.md §3A).
    fn assertion(&self) -> Result<String, PullError> {
        let Credential::PrivateKeyJwt {
            client_id,
            key_id,
            algorithm,
            key,
            ..
        } = &self.credential
        else {
            return Err(PullError::Config("no private key to sign with".into()));
        };
        let iat = Utc::now().timestamp();
        let claims = serde_json::json!({
            "iss": client_id,
            "sub": client_id,
            "aud": self.token_url(),
            "iat": iat,
            "exp": iat + ASSERTION_LIFETIME,
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        let mut header = Header::new(*algorithm);
        header.kid = key_id.clone();
        jsonwebtoken::encode(&header, &claims, key)
            .map_err(|e| PullError::Config(format!("could not sign the client assertion: {e}")))
    }

    /// The client-credentials grant on the org authorization server.
    #[instrument(skip_all, fields(org = %self.org))]
    async fn grant(&mut self) -> Result<AccessToken, PullError> {
        let Credential::PrivateKeyJwt { scopes, .. } = &self.credential else {
            return Err(PullError::Config("SSWS needs no grant".into()));
        };
        let form = [
            ("grant_type", "client_credentials".to_owned()),
            ("scope", scopes.clone()),
            ("client_assertion_type", JWT_BEARER.to_owned()),
            ("client_assertion", self.assertion()?),
        ];
        let url = self.token_url();
        let http = &self.http;
        let answer = self
            .pacing
            .send(
                || {
                    http.post(&url)
                        .header(ACCEPT, "application/json")
                        .form(&form)
                },
                classify,
            )
            .await?;
        if !answer.is_success() {
            let why = words(&answer);
            return Err(if transient(&answer) {
                PullError::Exhausted {
                    attempts: self.pacing.attempts.max(1),
                    last: why,
                }
            } else {
                PullError::Auth(why)
            });
        }
        let body = answer.json();
        let value = body["access_token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| PullError::Auth("the token response has no access_token".into()))?;
        let lifetime = Duration::from_secs(body["expires_in"].as_u64().unwrap_or(3600));
        Ok(AccessToken::new(Secret::new(value.to_owned()), lifetime))
    }

    /// The `Authorization` header for the next API call, renewing the access
    /// token when it is about to expire.
    async fn authorization(&mut self) -> Result<HeaderValue, PullError> {
        let raw = match &self.credential {
            Credential::Ssws(token) => format!("SSWS {}", token.expose()),
            Credential::PrivateKeyJwt { .. } => {
                let fresh = self.token.as_ref().is_some_and(AccessToken::is_fresh);
                if !fresh {
                    self.token = Some(self.grant().await?);
                }
                let token = self.token.as_ref().map(|t| t.value.expose()).unwrap_or("");
                format!("Bearer {token}")
            }
        };
        let mut value = HeaderValue::from_str(&raw)
            .map_err(|_| PullError::Auth("the access token cannot be sent in a header".into()))?;
        value.set_sensitive(true);
        Ok(value)
    }

    /// GET an API URL: throttling and 5xx retried by `Pacing`, an expired
    /// access token renewed once, Okta's error words on failure.
    #[instrument(skip_all, fields(org = %self.org))]
    async fn get(&mut self, url: &str) -> Result<Answer, PullError> {
        let mut renewed = false;
        loop {
            let authorization = self.authorization().await?;
            let http = &self.http;
            let answer = self
                .pacing
                .send(
                    || {
                        http.get(url)
                            .header(ACCEPT, "application/json")
                            .header(AUTHORIZATION, authorization.clone())
                    },
                    classify,
                )
                .await?;
            match answer.status {
                200..=299 => return Ok(answer),
                401 if !renewed && matches!(self.credential, Credential::PrivateKeyJwt { .. }) => {
                    // An access token Okta no longer accepts: one new grant.
                    self.token = None;
                    renewed = true;
                }
                401 => return Err(PullError::Auth(words(&answer))),
                403 => return Err(PullError::Permission(words(&answer))),
                _ if transient(&answer) => {
                    return Err(PullError::Exhausted {
                        attempts: self.pacing.attempts.max(1),
                        last: words(&answer),
                    });
                }
                status => {
                    return Err(PullError::Provider {
                        status,
                        message: words(&answer),
                    });
                }
            }
        }
    }

    fn listed_url(&self) -> Result<String, PullError> {
        self.api(&["users"], &[("limit", &PAGE.to_string())])
    }

    /// The plain list omits DEPROVISIONED users; a filter shows them
    /// (docs/pull-apis.md §3B), so a full listing reads them after the rest.
    fn deprovisioned_url(&self) -> Result<String, PullError> {
        self.api(
            &["users"],
            &[
                ("limit", &PAGE.to_string()),
                ("filter", "status eq \"DEPROVISIONED\""),
            ],
        )
    }

    fn changed_url(&self, since: DateTime<Utc>) -> Result<String, PullError> {
        let filter = format!("lastUpdated gt \"{}\"", stamp(since - OVERLAP));
        self.api(
            &["users"],
            &[("limit", &PAGE.to_string()), ("filter", &filter)],
        )
    }

    fn group_users_url(&self, group: &str) -> Result<String, PullError> {
        self.api(&["groups", group, "users"], &[("limit", &PAGE.to_string())])
    }

    fn first_step(&self, at: &Position) -> Result<Step, PullError> {
        match (at, &self.group) {
            (Position::Start, Some(group)) => Ok(Step {
                phase: Phase::Group,
                mark: None,
                url: self.group_users_url(group)?,
            }),
            (Position::Start, None) => Ok(Step {
                phase: Phase::Listed,
                mark: None,
                url: self.listed_url()?,
            }),
            (Position::Since(_), Some(_)) => Err(PullError::CursorExpired(
                "a group-scoped Okta connection has no incremental listing".into(),
            )),
            (Position::Since(cursor), None) => {
                let since = instant(cursor).ok_or_else(|| {
                    PullError::CursorExpired(format!(
                        "{cursor:?} is not an Okta lastUpdated timestamp"
                    ))
                })?;
                Ok(Step {
                    phase: Phase::Changed,
                    mark: Some(since),
                    url: self.changed_url(since)?,
                })
            }
            (Position::Next(next), _) => {
                let step = Step::parse(next).ok_or_else(|| {
                    PullError::Config(format!("{next:?} is not a page of an Okta user listing"))
                })?;
                Ok(Step {
                    url: self.on_org(&step.url)?,
                    ..step
                })
            }
        }
    }
}

impl Source for Okta {
    #[instrument(skip_all, fields(org = %self.org))]
    async fn check(&mut self) -> Result<Check, PullError> {
        let url = match &self.group {
            Some(group) => self.api(&["groups", group, "users"], &[("limit", "3")])?,
            None => self.api(&["users"], &[("limit", "3")])?,
        };
        let answer = self.get(&url).await?;
        let users_read = answer
            .json()
            .as_array()
            .map(Vec::len)
            .ok_or_else(|| not_an_array(&answer))?;
        let authenticated = match &self.credential {
            Credential::Ssws(_) => format!("API token (SSWS) accepted by {}", self.org),
            Credential::PrivateKeyJwt {
                client_id, scopes, ..
            } => format!(
                "private_key_jwt grant for service app {client_id} on {} ({scopes})",
                self.org
            ),
        };
        Ok(Check {
            authenticated,
            users_read,
        })
    }

    /// A user whose status changes to DEPROVISIONED between the two halves
    /// of a full listing comes twice; the later (deprovisioned) page is the
    /// newer word.
    #[instrument(skip_all, fields(org = %self.org))]
    async fn users(&mut self, at: &Position) -> Result<UserPage, PullError> {
        let step = self.first_step(at)?;
        let answer = self.get(&step.url).await?;
        let body = answer.json();
        let items = body.as_array().ok_or_else(|| not_an_array(&answer))?;
        let mut mark = step.mark;
        for item in items {
            if let Some(at) = item["lastUpdated"].as_str().and_then(instant) {
                mark = Some(mark.map_or(at, |m| m.max(at)));
            }
        }
        let mut page = UserPage::default();
        for item in items {
            page.push(okta_user(item));
        }
        match (next_link(&answer), step.phase) {
            (Some(link), phase) => {
                page.next = Some(
                    Step {
                        phase,
                        mark,
                        url: self.on_org(&link)?,
                    }
                    .encode(),
                );
            }
            (None, Phase::Listed) => {
                page.next = Some(
                    Step {
                        phase: Phase::Deprovisioned,
                        mark,
                        url: self.deprovisioned_url()?,
                    }
                    .encode(),
                );
            }
            (None, Phase::Deprovisioned | Phase::Changed) => {
                // An org with no users at all: Okta's own clock, so the next
                // incremental run still starts from this listing.
                let mark = mark.or_else(|| {
                    answer
                        .header("date")
                        .and_then(|d| DateTime::parse_from_rfc2822(d.trim()).ok())
                        .map(|d| d.with_timezone(&Utc))
                });
                page.cursor = mark.map(stamp);
            }
            (None, Phase::Group) => {}
        }
        Ok(page)
    }

    /// A group scope is Okta's (its users are listed), so only an unscoped
    /// connection reads one user.
    fn reads_one(&self) -> bool {
        self.group.is_none()
    }

    /// `GET /api/v1/users/{id | login}` (§3B), whatever the user's status
    /// (a DEPROVISIONED one too, as a full listing reads them); Okta's 404
    /// (E0000007) is no such user.
    #[instrument(skip_all, fields(org = %self.org))]
    async fn user(&mut self, key: &str) -> Result<Option<normalize::Normalized>, PullError> {
        let url = self.api(&["users", key], &[])?;
        match self.get(&url).await {
            Ok(answer) => Ok(Some(okta_user(&answer.json()))),
            Err(PullError::Provider { status: 404, .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Every group but Okta's BUILT_IN "Everyone": it holds every user by
    /// definition, so as an app group it would say nothing and cost a
    /// membership per user (Okta's own SCIM push never sends it either).
    #[instrument(skip_all, fields(org = %self.org))]
    async fn groups(&mut self, next: Option<&str>) -> Result<GroupPage, PullError> {
        let url = match next {
            Some(link) => self.on_org(link)?,
            None => self.api(&["groups"], &[("limit", &PAGE.to_string())])?,
        };
        let answer = self.get(&url).await?;
        let body = answer.json();
        let items = body.as_array().ok_or_else(|| not_an_array(&answer))?;
        let groups = items
            .iter()
            .filter(|g| g["type"] != "BUILT_IN")
            .filter_map(|g| {
                let id = g["id"].as_str()?.to_owned();
                let name = normalize::provider_text(g["profile"]["name"].as_str()?)?;
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
            next: next_link(&answer).map(|l| self.on_org(&l)).transpose()?,
        })
    }

    #[instrument(skip_all, fields(org = %self.org, group_id))]
    async fn members(
        &mut self,
        group_id: &str,
        next: Option<&str>,
    ) -> Result<MemberPage, PullError> {
        let url = match next {
            Some(link) => self.on_org(link)?,
            None => self.group_users_url(group_id)?,
        };
        let answer = self.get(&url).await?;
        let body = answer.json();
        let items = body.as_array().ok_or_else(|| not_an_array(&answer))?;
        Ok(MemberPage {
            users: items
                .iter()
                .filter_map(|u| u["id"].as_str().map(str::to_owned))
                .collect(),
            next: next_link(&answer).map(|l| self.on_org(&l)).transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use serde_json::{Value, json};

    use super::*;
    use crate::pull::fake::okta::{
        Credentials, EVERYONE, TEST_PRIVATE_KEY, TEST_PUBLIC_KEY, dev_connection, start,
    };
    use crate::pull::fake::{Org, Running, Shared, timestamp};
    use crate::reconcile::model::Snapshot;

    /// A second RSA key (made like `TEST_PRIVATE_KEY`), registered nowhere.
    const OTHER_KEY: &str = include_str!("fake/okta_other_key.pem");
    /// A fixed EC P-256 key (`openssl genpkey -algorithm EC -pkeyopt
    /// ec_paramgen_curve:P-256`), test-only, and its public half.
    const EC_KEY: &str = include_str!("fake/okta_test_ec_key.pem");
    const EC_PUBLIC_KEY: &str = include_str!("fake/okta_test_ec_key.pub.pem");

    fn settings(fake: &Running, auth: Auth) -> Settings {
        Settings {
            org_url: fake.base_url.clone(),
            auth,
            client_id: (auth == Auth::PrivateKeyJwt).then(|| Credentials::default().client_id),
            key_id: None,
            scopes: default_scopes(),
        }
    }

    fn ssws(fake: &Running, scope: &Scope) -> Okta {
        let (pacing, _) = Pacing::recording(3);
        Okta::new(
            settings(fake, Auth::Ssws),
            scope,
            Credentials::default().api_token,
            pacing,
        )
        .unwrap()
    }

    fn jwt(fake: &Running, key: &str) -> Okta {
        let (pacing, _) = Pacing::recording(3);
        Okta::new(
            settings(fake, Auth::PrivateKeyJwt),
            &Scope::default(),
            Secret::new(key.to_owned()),
            pacing,
        )
        .unwrap()
    }

    /// A directory whose user 1 is DEPROVISIONED and user 2 SUSPENDED (the
    /// fake's id-parity rule) and every other user active.
    fn directory(users: usize, groups: usize) -> Org {
        let mut dir = Org::generate(users, groups, 11);
        for u in &mut dir.users {
            u.active = true;
        }
        dir.users[1].active = false;
        dir.users[2].active = false;
        dir
    }

    struct Listing {
        users: Vec<(String, Snapshot)>,
        pages: usize,
        cursor: Option<String>,
    }

    async fn list(okta: &mut Okta, from: Position) -> Listing {
        let mut at = from;
        let mut listing = Listing {
            users: Vec::new(),
            pages: 0,
            cursor: None,
        };
        loop {
            let page = okta.users(&at).await.unwrap();
            listing.pages += 1;
            listing.users.extend(page.users);
            match page.next {
                Some(next) => {
                    assert!(page.cursor.is_none(), "only the last page has a cursor");
                    at = Position::Next(next);
                }
                None => {
                    listing.cursor = page.cursor;
                    return listing;
                }
            }
        }
    }

    #[tokio::test]
    async fn one_user_is_read_by_id_or_login_as_the_listing_serves_it_and_unknown_is_none() {
        let dir = directory(450, 1);
        let shared = Shared::new(dir.clone());
        let fake = start(shared.clone(), Credentials::default()).unwrap();
        let mut okta = ssws(&fake, &Scope::default());
        let listing = list(&mut okta, Position::Start).await;
        let listings = shared.users_listed.load(Ordering::SeqCst);
        // User 1 is DEPROVISIONED: read directly all the same, as the full
        // listing's second half reads it.
        for user in [&dir.users[1], &dir.users[300]] {
            let listed = listing.users.iter().find(|(id, _)| *id == user.id);
            for key in [user.id.as_str(), user.email.as_str()] {
                let read = okta.user(key).await.unwrap().unwrap();
                assert_eq!(read.user.as_ref(), listed, "{key}");
            }
        }
        assert_eq!(okta.user("nobody@example.com").await.unwrap(), None);
        assert_eq!(shared.user_reads().len(), 5);
        assert_eq!(shared.users_listed.load(Ordering::SeqCst), listings);
        assert!(okta.reads_one());
        let scoped = Scope {
            group: Some(dir.groups[0].id.clone()),
            ..Scope::default()
        };
        assert!(!ssws(&fake, &scoped).reads_one());
    }

    #[tokio::test]
    async fn a_full_ssws_listing_reads_every_page_then_the_deprovisioned_users() {
        let dir = directory(450, 3);
        let fake = start(Shared::new(dir.clone()), Credentials::default()).unwrap();
        let mut okta = ssws(&fake, &Scope::default());
        let listing = list(&mut okta, Position::Start).await;
        // 449 listed (200 + 200 + 49), then one page of the DEPROVISIONED one.
        assert_eq!(listing.pages, 4);
        let mut ids: Vec<&str> = listing.users.iter().map(|(id, _)| id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 450, "every user exactly once");
        let active = |n: usize| {
            listing
                .users
                .iter()
                .find(|(id, _)| *id == dir.users[n].id)
                .map(|(_, s)| s.active)
        };
        assert_eq!(active(1), Some(false), "DEPROVISIONED is read and inactive");
        assert_eq!(active(2), Some(false), "SUSPENDED is inactive");
        assert_eq!(active(0), Some(true));
        assert_eq!(
            listing.cursor.as_deref(),
            Some(timestamp(dir.users[0].updated_at).as_str()),
            "the latest lastUpdated seen"
        );
    }

    #[tokio::test]
    async fn the_private_key_jwt_grant_yields_one_token_for_a_whole_listing() {
        let dir = directory(250, 1);
        let shared = Shared::new(dir.clone());
        let fake = start(shared.clone(), Credentials::default()).unwrap();
        let mut okta = jwt(&fake, TEST_PRIVATE_KEY);
        let listing = list(&mut okta, Position::Start).await;
        assert_eq!(listing.users.len(), 250);
        assert_eq!(listing.pages, 3);
        assert_eq!(shared.tokens_issued.load(Ordering::SeqCst), 1);
        let check = okta.check().await.unwrap();
        assert_eq!(check.users_read, 3);
        assert!(check.authenticated.contains("0oafakeserviceapp000"));
    }

    #[tokio::test]
    async fn a_wrong_private_key_or_client_id_fails_with_oktas_words() {
        let fake = start(Shared::new(directory(3, 1)), Credentials::default()).unwrap();
        let err = jwt(&fake, OTHER_KEY).check().await.unwrap_err();
        assert!(
            matches!(&err, PullError::Auth(why) if why == "The client_assertion signature is invalid. (invalid_client)"),
            "{err}"
        );
        let (pacing, _) = Pacing::recording(3);
        let mut unknown = Okta::new(
            Settings {
                client_id: Some("0oanobody".into()),
                ..settings(&fake, Auth::PrivateKeyJwt)
            },
            &Scope::default(),
            Secret::new(TEST_PRIVATE_KEY.into()),
            pacing,
        )
        .unwrap();
        let err = unknown.check().await.unwrap_err();
        assert!(
            matches!(&err, PullError::Auth(why) if why.contains("Invalid value for 'client_id' parameter.")),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_scope_the_app_was_not_granted_fails_at_the_token_endpoint_and_a_missing_one_is_403()
    {
        let fake = start(Shared::new(directory(3, 1)), Credentials::default()).unwrap();
        let with_scopes = |scopes: &str| {
            Okta::new(
                Settings {
                    scopes: scopes.into(),
                    ..settings(&fake, Auth::PrivateKeyJwt)
                },
                &Scope::default(),
                Secret::new(TEST_PRIVATE_KEY.into()),
                Pacing::recording(1).0,
            )
            .unwrap()
        };
        let err = with_scopes("okta.users.read okta.users.manage")
            .check()
            .await
            .unwrap_err();
        assert!(
            matches!(&err, PullError::Auth(why) if why.contains("okta.users.manage") && why.contains("invalid_scope")),
            "{err}"
        );
        let err = with_scopes("okta.users.read")
            .groups(None)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, PullError::Permission(why) if why == "You do not have permission to perform the requested action (E0000006)"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_bad_api_token_fails_with_e0000011s_summary() {
        let fake = start(Shared::new(directory(3, 1)), Credentials::default()).unwrap();
        let mut okta = Okta::new(
            settings(&fake, Auth::Ssws),
            &Scope::default(),
            Secret::new("00wrong-token".into()),
            Pacing::recording(3).0,
        )
        .unwrap();
        let err = okta.check().await.unwrap_err();
        assert!(
            matches!(&err, PullError::Auth(why) if why == "Invalid token provided (E0000011)"),
            "{err}"
        );
        assert!(!format!("{err} {err:?} {okta:?}").contains("00wrong-token"));
    }

    #[tokio::test]
    async fn a_group_scope_lists_the_groups_members_as_users_without_a_cursor() {
        let dir = directory(40, 3);
        let group = &dir.groups[1];
        let fake = start(Shared::new(dir.clone()), Credentials::default()).unwrap();
        let scope = Scope {
            group: Some(group.id.clone()),
            ..Scope::default()
        };
        let mut okta = ssws(&fake, &scope);
        let listing = list(&mut okta, Position::Start).await;
        let mut got: Vec<String> = listing.users.into_iter().map(|(id, _)| id).collect();
        let mut want: Vec<String> = group
            .members
            .iter()
            .map(|i| dir.users[*i].id.clone())
            .collect();
        got.sort();
        want.sort();
        assert_eq!(got, want);
        assert_eq!(listing.cursor, None);
        let err = okta
            .users(&Position::Since("2026-01-01T00:00:00.000Z".into()))
            .await
            .unwrap_err();
        assert!(matches!(err, PullError::CursorExpired(_)), "{err}");
        assert_eq!(okta.check().await.unwrap().users_read, 3.min(want.len()));
    }

    #[tokio::test]
    async fn groups_leave_out_everyone_and_members_are_the_user_ids() {
        let dir = directory(30, 3);
        let fake = start(Shared::new(dir.clone()), Credentials::default()).unwrap();
        let mut okta = jwt(&fake, TEST_PRIVATE_KEY);
        let page = okta.groups(None).await.unwrap();
        assert_eq!(page.next, None);
        let names: Vec<&str> = page.groups.iter().map(|(_, g)| g.name.as_str()).collect();
        assert_eq!(names, ["Group 0", "Group 1", "Group 2"]);
        assert_eq!(page.groups[0].0, dir.groups[0].id);
        assert_eq!(
            page.groups[0].1.external_id.as_deref(),
            Some(dir.groups[0].id.as_str())
        );
        let members = okta.members(&dir.groups[2].id, None).await.unwrap();
        let want: Vec<String> = dir.groups[2]
            .members
            .iter()
            .map(|i| dir.users[*i].id.clone())
            .collect();
        assert_eq!(members.users, want);
        assert_eq!(okta.members(EVERYONE, None).await.unwrap().users.len(), 30);
        let err = okta.members("00gnothere", None).await.unwrap_err();
        assert!(
            matches!(&err, PullError::Provider { status: 404, message } if message.contains("E0000007")),
            "{err}"
        );
    }

    #[tokio::test]
    async fn an_incremental_listing_returns_just_the_changed_user_and_a_later_cursor() {
        let dir = directory(300, 2);
        let shared = Shared::new(dir.clone());
        let fake = start(shared.clone(), Credentials::default()).unwrap();
        let (changed, bystander) = (dir.users[5].id.clone(), dir.users[6].id.clone());
        // The last change before the full run is the one at its cursor.
        shared
            .directory_mut()
            .update_user(&changed, |u| u.title = "Lead".into());
        let mut okta = ssws(&fake, &Scope::default());
        let full = list(&mut okta, Position::Start).await;
        let cursor = full.cursor.unwrap();
        // Two minutes later (past the 60 s overlap) its title changes again.
        {
            let mut d = shared.directory_mut();
            d.clock += 120_000;
            d.update_user(&changed, |u| u.title = "Director".into());
        }
        let delta = list(&mut okta, Position::Since(cursor.clone())).await;
        let ids: Vec<&str> = delta.users.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, [changed.as_str()]);
        assert_eq!(delta.users[0].1.profile.title.as_deref(), Some("Director"));
        let later = delta.cursor.unwrap();
        assert!(instant(&later).unwrap() > instant(&cursor).unwrap());

        // A user changed within the overlap before the cursor is read again;
        // with nothing newer the cursor stays.
        {
            let mut d = shared.directory_mut();
            d.update_user(&bystander, |u| u.title = "Nudged".into());
            let at = d.users[5].updated_at - 30_000;
            d.users[6].updated_at = at;
        }
        let again = list(&mut okta, Position::Since(later.clone())).await;
        let mut ids: Vec<&str> = again.users.iter().map(|(id, _)| id.as_str()).collect();
        ids.sort_unstable();
        let mut want = [changed.as_str(), bystander.as_str()];
        want.sort_unstable();
        assert_eq!(ids, want);
        assert_eq!(again.cursor, Some(later));
        let err = okta
            .users(&Position::Since("yesterday".into()))
            .await
            .unwrap_err();
        assert!(matches!(err, PullError::CursorExpired(_)), "{err}");
    }

    #[tokio::test]
    async fn a_deprovisioned_user_in_an_incremental_listing_is_inactive() {
        let dir = directory(10, 1);
        let shared = Shared::new(dir.clone());
        let fake = start(shared.clone(), Credentials::default()).unwrap();
        shared
            .directory_mut()
            .update_user(&dir.users[3].id, |u| u.title = "Leaving".into());
        let mut okta = ssws(&fake, &Scope::default());
        let cursor = list(&mut okta, Position::Start).await.cursor.unwrap();
        {
            let mut d = shared.directory_mut();
            d.clock += 120_000;
            // Index 3: an odd id, so the fake reports DEPROVISIONED.
            let id = d.users[3].id.clone();
            d.update_user(&id, |u| u.active = false);
        }
        let delta = list(&mut okta, Position::Since(cursor)).await;
        assert_eq!(delta.users.len(), 1);
        assert_eq!(delta.users[0].0, dir.users[3].id);
        assert!(!delta.users[0].1.active);
    }

    #[tokio::test]
    async fn a_throttled_request_waits_until_oktas_reset_then_succeeds() {
        let shared = Shared::new(directory(5, 1));
        let fake = start(shared.clone(), Credentials::default()).unwrap();
        shared.faults.throttle(1);
        let (pacing, waits) = Pacing::recording(3);
        let mut okta = Okta::new(
            settings(&fake, Auth::Ssws),
            &Scope::default(),
            Credentials::default().api_token,
            pacing,
        )
        .unwrap();
        let page = okta.users(&Position::Start).await.unwrap();
        assert_eq!(page.users.len(), 4);
        // The fake's X-Rate-Limit-Reset is its Date + 1 s; okta-sdk-golang
        // waits Reset − Date + 1 s.
        assert_eq!(*waits.lock().unwrap(), [Duration::from_secs(2)]);
    }

    #[tokio::test]
    async fn a_persistent_503_ends_exhausted_with_oktas_message() {
        let shared = Shared::new(directory(5, 1));
        let fake = start(shared.clone(), Credentials::default()).unwrap();
        shared.faults.fail(100);
        let (pacing, waits) = Pacing::recording(3);
        let mut okta = Okta::new(
            settings(&fake, Auth::Ssws),
            &Scope::default(),
            Credentials::default().api_token,
            pacing,
        )
        .unwrap();
        let err = okta.users(&Position::Start).await.unwrap_err();
        assert!(
            matches!(&err, PullError::Exhausted { attempts: 3, last } if last.contains("(E0000009)")),
            "{err}"
        );
        assert_eq!(waits.lock().unwrap().len(), 2, "backed off between tries");
    }

    #[tokio::test]
    async fn an_expired_access_token_is_renewed_once_and_a_short_lived_one_before_each_use() {
        let shared = Shared::new(directory(5, 1));
        let fake = start(
            shared.clone(),
            Credentials {
                token_lifetime: 30,
                ..Credentials::default()
            },
        )
        .unwrap();
        let mut okta = jwt(&fake, TEST_PRIVATE_KEY);
        okta.check().await.unwrap();
        okta.check().await.unwrap();
        assert_eq!(
            shared.tokens_issued.load(Ordering::SeqCst),
            2,
            "a 30 s token is inside the 60 s renewal margin"
        );

        let fake = start(shared.clone(), Credentials::default()).unwrap();
        let mut okta = jwt(&fake, TEST_PRIVATE_KEY);
        okta.check().await.unwrap();
        shared.revoke_tokens();
        okta.check().await.unwrap();
        assert_eq!(shared.tokens_issued.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn the_dev_connection_points_a_connector_at_the_fake() {
        let fake = start(Shared::new(directory(5, 1)), Credentials::default()).unwrap();
        let connection = dev_connection(&fake, &Credentials::default());
        assert_eq!(connection["provider"], "okta");
        let settings: Settings = serde_json::from_value(connection["settings"].clone()).unwrap();
        assert_eq!(settings.scopes, "okta.users.read okta.groups.read");
        let secret = Secret::new(connection["secret"].as_str().unwrap().into());
        let mut okta =
            Okta::new(settings, &Scope::default(), secret, Pacing::recording(1).0).unwrap();
        assert!(okta.check().await.unwrap().authenticated.contains("SSWS"));
    }

    #[test]
    fn the_secret_is_in_no_debug_output_or_error() {
        let settings = Settings {
            org_url: "https://acme.okta.com".into(),
            auth: Auth::PrivateKeyJwt,
            client_id: Some("0oa1".into()),
            key_id: Some("k1".into()),
            scopes: default_scopes(),
        };
        let okta = Okta::new(
            settings.clone(),
            &Scope::default(),
            Secret::new(TEST_PRIVATE_KEY.into()),
            Pacing::default(),
        )
        .unwrap();
        let key_line = TEST_PRIVATE_KEY.lines().nth(1).unwrap();
        assert!(!format!("{okta:?}").contains(key_line));
        let bad =
            "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END PRIVATE KEY-----";
        let err = Okta::new(
            settings,
            &Scope::default(),
            Secret::new(bad.into()),
            Pacing::default(),
        )
        .unwrap_err();
        assert!(matches!(err, PullError::Config(_)), "{err}");
        assert!(!format!("{err} {err:?}").contains("c2VjcmV0"));
    }

    fn assertion_claims(okta: &Okta, public_pem: &str, algorithm: Algorithm) -> (Header, Value) {
        let key = match algorithm {
            Algorithm::ES256 => jsonwebtoken::DecodingKey::from_ec_pem(public_pem.as_bytes()),
            _ => jsonwebtoken::DecodingKey::from_rsa_pem(public_pem.as_bytes()),
        }
        .unwrap();
        let mut validation = jsonwebtoken::Validation::new(algorithm);
        validation.set_audience(&["https://acme.okta.com/oauth2/v1/token"]);
        let data =
            jsonwebtoken::decode::<Value>(okta.assertion().unwrap(), &key, &validation).unwrap();
        (data.header, data.claims)
    }

    #[test]
    fn the_client_assertion_names_the_app_the_token_url_and_the_key() {
        let settings = |key_id: Option<&str>| Settings {
            org_url: "https://acme.okta.com".into(),
            auth: Auth::PrivateKeyJwt,
            client_id: Some("0oa1".into()),
            key_id: key_id.map(str::to_owned),
            scopes: default_scopes(),
        };
        let rsa = Okta::new(
            settings(Some("kid-1")),
            &Scope::default(),
            Secret::new(TEST_PRIVATE_KEY.into()),
            Pacing::default(),
        )
        .unwrap();
        let (header, claims) = assertion_claims(&rsa, TEST_PUBLIC_KEY, Algorithm::RS256);
        assert_eq!(header.kid.as_deref(), Some("kid-1"));
        assert_eq!(
            (&claims["iss"], &claims["sub"]),
            (&json!("0oa1"), &json!("0oa1"))
        );
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            ASSERTION_LIFETIME
        );
        assert_ne!(
            assertion_claims(&rsa, TEST_PUBLIC_KEY, Algorithm::RS256).1["jti"],
            claims["jti"],
            "a fresh jti each time"
        );
        // An EC P-256 service-app key signs ES256.
        let ec = Okta::new(
            settings(None),
            &Scope::default(),
            Secret::new(EC_KEY.into()),
            Pacing::default(),
        )
        .unwrap();
        let (header, _) = assertion_claims(&ec, EC_PUBLIC_KEY, Algorithm::ES256);
        assert_eq!((header.alg, header.kid), (Algorithm::ES256, None));
    }

    #[test]
    fn settings_are_checked_with_a_reason() {
        let ok = Settings {
            org_url: "https://acme.okta.com/".into(),
            auth: Auth::Ssws,
            client_id: None,
            key_id: None,
            scopes: default_scopes(),
        };
        assert_eq!(ok.validate(), Ok(()));
        assert_eq!(ok.base().unwrap(), "https://acme.okta.com");
        let cases = [
            (
                Settings {
                    org_url: "http://acme.okta.com".into(),
                    ..ok.clone()
                },
                "must be https",
            ),
            (
                Settings {
                    org_url: "https://acme.okta.com/oauth2/default".into(),
                    ..ok.clone()
                },
                "without a path",
            ),
            (
                Settings {
                    auth: Auth::PrivateKeyJwt,
                    ..ok.clone()
                },
                "needs the service app's client_id",
            ),
            (
                Settings {
                    client_id: Some("0oa1".into()),
                    ..ok.clone()
                },
                "only used with auth",
            ),
        ];
        for (settings, reason) in cases {
            let why = settings.validate().unwrap_err();
            assert!(why.contains(reason), "{why}");
        }
        let unknown = serde_json::from_value::<Settings>(serde_json::json!({
            "org_url": "https://acme.okta.com", "auth": "ssws", "token": "x"
        }));
        assert!(unknown.is_err());
    }

    #[test]
    fn an_incremental_listing_filters_on_last_updated_a_minute_before_the_cursor() {
        let okta = Okta::new(
            Settings {
                org_url: "https://acme.okta.com".into(),
                auth: Auth::Ssws,
                client_id: None,
                key_id: None,
                scopes: default_scopes(),
            },
            &Scope::default(),
            Secret::new("00t".into()),
            Pacing::default(),
        )
        .unwrap();
        let step = okta
            .first_step(&Position::Since("2026-03-01T10:00:30.250Z".into()))
            .unwrap();
        assert_eq!(
            step.url,
            "https://acme.okta.com/api/v1/users?limit=200&filter=lastUpdated%20gt%20%222026-03-01T09%3A59%3A30.250Z%22"
        );
        assert_eq!(Step::parse(&step.encode()), Some(step));
    }

    fn answer(headers: &[(&'static str, &str)]) -> Answer {
        let mut map = reqwest::header::HeaderMap::new();
        for (name, value) in headers {
            map.append(*name, value.parse().unwrap());
        }
        Answer {
            status: 429,
            headers: map,
            body: Vec::new(),
        }
    }

    #[test]
    fn the_next_link_is_found_on_its_own_line_or_in_a_joined_one() {
        let separate = answer(&[
            ("link", "<https://o/api/v1/users?limit=2>; rel=\"self\""),
            (
                "link",
                "<https://o/api/v1/users?after=x&limit=2>; rel=\"next\"",
            ),
        ]);
        assert_eq!(
            next_link(&separate).as_deref(),
            Some("https://o/api/v1/users?after=x&limit=2")
        );
        let joined = answer(&[(
            "link",
            "<https://o/a>; rel=\"self\", <https://o/b>; rel=\"next\"",
        )]);
        assert_eq!(next_link(&joined).as_deref(), Some("https://o/b"));
        assert_eq!(
            next_link(&answer(&[("link", "<https://o/a>; rel=\"self\"")])),
            None
        );
    }

    #[test]
    fn a_429_without_reset_or_date_backs_off() {
        assert_eq!(classify(&answer(&[])), Retry::Backoff);
        let full = answer(&[
            ("x-rate-limit-reset", "1767225610"),
            ("date", "Thu, 01 Jan 2026 00:00:00 GMT"),
        ]);
        assert_eq!(classify(&full), Retry::After(Duration::from_secs(11)));
    }

    #[tokio::test]
    async fn a_next_link_off_the_org_is_refused() {
        let fake = start(Shared::new(directory(3, 1)), Credentials::default()).unwrap();
        let mut okta = ssws(&fake, &Scope::default());
        let err = okta
            .groups(Some("https://evil.example/api/v1/groups"))
            .await
            .unwrap_err();
        assert!(matches!(err, PullError::Config(_)), "{err}");
    }
}
