//! The Microsoft Graph connector (pull_apis.md §2): the OAuth 2.0
//! client-credentials grant against the configured authority, then `/users`
//! paged by `@odata.nextLink`, each page mapped to snapshots and handed on as
//! it arrives (memory bounded by a page). Both endpoints are configuration, so
//! the same code runs against Microsoft or the fake in `pull::fake::graph`.

use serde_json::Value;
use tracing::instrument;

use super::PullError;
use super::normalize::graph_user;
use crate::crypto::Secret;
use crate::reconcile::plan::Snapshot;

/// The Graph fields dirsync reads (Graph returns `accountEnabled`,
/// `department` and `employeeId` only when selected).
const USER_FIELDS: &str = "id,userPrincipalName,mail,displayName,givenName,surname,accountEnabled,department,jobTitle,employeeId";

#[derive(Debug, Clone)]
pub struct Config {
    /// `https://login.microsoftonline.com` (or a fake's base).
    pub authority_base: String,
    /// `https://graph.microsoft.com/v1.0` (or a fake's).
    pub graph_base: String,
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: Secret,
}

pub struct Graph {
    http: reqwest::Client,
    config: Config,
    token: Option<String>,
}

/// One page of users and where the next one is.
pub struct Page {
    pub users: Vec<(String, Snapshot)>,
    pub next: Option<String>,
}

impl Graph {
    pub fn new(config: Config) -> Graph {
        Graph {
            http: reqwest::Client::new(),
            config,
            token: None,
        }
    }

    #[instrument(skip_all, fields(tenant_id = %self.config.tenant_id))]
    async fn token(&mut self) -> Result<String, PullError> {
        if let Some(token) = &self.token {
            return Ok(token.clone());
        }
        let c = &self.config;
        let scope = match c.graph_base.split_once("://") {
            Some((scheme, rest)) => format!(
                "{scheme}://{}/.default",
                rest.split('/').next().unwrap_or_default()
            ),
            None => "https://graph.microsoft.com/.default".to_owned(),
        };
        let res = self
            .http
            .post(format!(
                "{}/{}/oauth2/v2.0/token",
                c.authority_base.trim_end_matches('/'),
                c.tenant_id
            ))
            .form(&[
                ("client_id", c.client_id.as_str()),
                ("client_secret", c.client_secret.expose()),
                ("scope", scope.as_str()),
                ("grant_type", "client_credentials"),
            ])
            .send()
            .await
            .map_err(PullError::network)?;
        let ok = res.status().is_success();
        let body: Value = res.json().await.map_err(PullError::network)?;
        if !ok {
            // Entra's `error_description` names the cause (AADSTS7000215:
            // invalid secret, AADSTS700016: unknown app, …).
            let why = body["error_description"]
                .as_str()
                .or(body["error"].as_str())
                .unwrap_or("the token endpoint refused the request");
            return Err(PullError::Auth(why.to_owned()));
        }
        let token = body["access_token"]
            .as_str()
            .ok_or_else(|| PullError::Auth("the token response has no access_token".into()))?
            .to_owned();
        self.token = Some(token.clone());
        Ok(token)
    }

    /// A page of users: the first when `next` is None, else the page that
    /// link names (followed verbatim, as Graph requires).
    #[instrument(skip_all)]
    pub async fn users_page(&mut self, next: Option<&str>, top: u32) -> Result<Page, PullError> {
        let url = match next {
            Some(link) => link.to_owned(),
            None => format!(
                "{}/users?$top={top}&$select={USER_FIELDS}",
                self.config.graph_base.trim_end_matches('/')
            ),
        };
        let token = self.token().await?;
        let res = self
            .http
            .get(&url)
            .bearer_auth(token)
            .send()
            .await
            .map_err(PullError::network)?;
        let status = res.status().as_u16();
        let body: Value = res.json().await.map_err(PullError::network)?;
        if !(200..300).contains(&status) {
            return Err(PullError::Provider {
                status,
                message: body["error"]["message"]
                    .as_str()
                    .unwrap_or("no message")
                    .to_owned(),
            });
        }
        let users = body["value"]
            .as_array()
            .map(|items| items.iter().filter_map(graph_user).collect())
            .unwrap_or_default();
        Ok(Page {
            users,
            next: body["@odata.nextLink"].as_str().map(str::to_owned),
        })
    }
}
