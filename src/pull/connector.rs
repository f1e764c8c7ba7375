//! A pull directory's connection, provider-neutral: what an operator
//! supplies (provider, settings, credentials, scope, schedule), the check of
//! the settings against the provider's own `Settings`, the sealing of the
//! credentials at rest, and the one `Connector` that runs and the scheduler
//! hold, whichever provider it talks to.

use serde::Deserialize;
use serde_json::Value;

use super::normalize::Normalized;
use super::retry::Pacing;
use super::schedule::Schedule;
use super::source::{Asked, Check, GroupPage, MemberPage, Position, Scope, Source, UserPage};
use super::{Provider, PullError, google, graph, okta};
use crate::crypto::{SealError, SealingKey, Secret};

/// A connection as an operator writes it (`dirsync connection create --file`,
/// and what `dirsync dev fake-directory` prints).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    pub provider: Provider,
    /// The provider's settings: Google `admin_email` (and `customer`,
    /// `domain`), Entra `tenant_id` and `client_id`, Okta `org_url` and
    /// `auth` (and `client_id`, `key_id`); the endpoints default to the
    /// real services.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub settings: Value,
    /// The credentials: Google's service-account key file (JSON), Entra's
    /// client secret, Okta's API token or the service app's private key.
    /// Sealed under the server's key; never shown again.
    #[serde(default)]
    #[schema(value_type = Option<String>, write_only)]
    pub secret: Option<Secret>,
    #[serde(default)]
    pub scope: Scope,
    #[serde(default)]
    pub schedule: Schedule,
}

/// The provider's settings, checked and with every default filled in (the
/// endpoints default to the real services).
pub fn settings(provider: Provider, raw: &Value) -> Result<Value, String> {
    fn check<T>(raw: &Value, validate: impl Fn(&T) -> Result<(), String>) -> Result<Value, String>
    where
        T: serde::de::DeserializeOwned + serde::Serialize,
    {
        let raw = if raw.is_null() {
            Value::Object(Default::default())
        } else {
            raw.clone()
        };
        let parsed: T = serde_json::from_value(raw).map_err(|e| format!("settings: {e}"))?;
        validate(&parsed)?;
        serde_json::to_value(&parsed).map_err(|e| e.to_string())
    }
    match provider {
        Provider::Google => check(raw, google::Settings::validate),
        Provider::Entra => check(raw, graph::Settings::validate),
        Provider::Okta => check(raw, okta::Settings::validate),
    }
}

/// What a sealed secret is bound to: its connection, so a sealed value copied
/// onto another row does not open there.
fn context(connection_id: &str) -> Vec<u8> {
    format!("connection:{connection_id}").into_bytes()
}

pub fn seal(key: &SealingKey, connection_id: &str, secret: &Secret) -> Result<String, SealError> {
    key.seal(secret.expose().as_bytes(), &context(connection_id))
}

pub fn open(key: &SealingKey, connection_id: &str, sealed: &str) -> Result<Secret, SealError> {
    key.open(sealed, &context(connection_id))
}

/// The connector of a stored connection, its credentials opened in memory
/// only, under the server's key.
pub fn for_connection(
    key: Option<&SealingKey>,
    connection: &crate::store::pull::Connection,
    pacing: Pacing,
) -> Result<Connector, PullError> {
    let key = key.ok_or_else(|| {
        PullError::Config(
            "the server has no secret key (DIRSYNC_SECRET_KEY) to open the credentials with".into(),
        )
    })?;
    let provider = Provider::parse(&connection.provider)
        .ok_or_else(|| PullError::Config(format!("unknown provider {:?}", connection.provider)))?;
    let secret = open(key, &connection.id, &connection.secret_sealed)
        .map_err(|e| PullError::Config(e.to_string()))?;
    let scope: Scope = serde_json::from_value(connection.scope.clone())
        .map_err(|e| PullError::Config(format!("scope: {e}")))?;
    Connector::connect(provider, &connection.settings, &scope, secret, pacing)
}

/// Any provider's connector.
#[derive(Debug)]
pub enum Connector {
    Google(Box<google::Google>),
    Graph(Box<graph::Graph>),
    Okta(Box<okta::Okta>),
}

impl Connector {
    /// The connector for a stored connection: its settings, scope and the
    /// credentials, opened only here and only in memory.
    pub fn connect(
        provider: Provider,
        settings: &Value,
        scope: &Scope,
        secret: Secret,
        pacing: Pacing,
    ) -> Result<Connector, PullError> {
        fn parse<T: serde::de::DeserializeOwned>(v: &Value) -> Result<T, PullError> {
            serde_json::from_value(v.clone())
                .map_err(|e| PullError::Config(format!("settings: {e}")))
        }
        Ok(match provider {
            Provider::Google => Connector::Google(Box::new(google::Google::new(
                parse(settings)?,
                scope,
                secret,
                pacing,
            )?)),
            Provider::Entra => Connector::Graph(Box::new(graph::Graph::new(
                parse(settings)?,
                scope,
                secret,
                pacing,
            )?)),
            Provider::Okta => Connector::Okta(Box::new(okta::Okta::new(
                parse(settings)?,
                scope,
                secret,
                pacing,
            )?)),
        })
    }
}

impl Source for Connector {
    fn ask_for(&mut self, asked: &Asked) {
        match self {
            Connector::Google(c) => c.ask_for(asked),
            Connector::Graph(c) => c.ask_for(asked),
            Connector::Okta(c) => c.ask_for(asked),
        }
    }

    async fn check(&mut self) -> Result<Check, PullError> {
        match self {
            Connector::Google(c) => c.check().await,
            Connector::Graph(c) => c.check().await,
            Connector::Okta(c) => c.check().await,
        }
    }

    async fn users(&mut self, at: &Position) -> Result<UserPage, PullError> {
        match self {
            Connector::Google(c) => c.users(at).await,
            Connector::Graph(c) => c.users(at).await,
            Connector::Okta(c) => c.users(at).await,
        }
    }

    fn reads_one(&self) -> bool {
        match self {
            Connector::Google(c) => c.reads_one(),
            Connector::Graph(c) => c.reads_one(),
            Connector::Okta(c) => c.reads_one(),
        }
    }

    async fn user(&mut self, key: &str) -> Result<Option<Normalized>, PullError> {
        match self {
            Connector::Google(c) => c.user(key).await,
            Connector::Graph(c) => c.user(key).await,
            Connector::Okta(c) => c.user(key).await,
        }
    }

    async fn groups(&mut self, next: Option<&str>) -> Result<GroupPage, PullError> {
        match self {
            Connector::Google(c) => c.groups(next).await,
            Connector::Graph(c) => c.groups(next).await,
            Connector::Okta(c) => c.groups(next).await,
        }
    }

    async fn members(
        &mut self,
        group_id: &str,
        next: Option<&str>,
    ) -> Result<MemberPage, PullError> {
        match self {
            Connector::Google(c) => c.members(group_id, next).await,
            Connector::Graph(c) => c.members(group_id, next).await,
            Connector::Okta(c) => c.members(group_id, next).await,
        }
    }
}
