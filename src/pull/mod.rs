//! The pull side: connectors that list a directory's users and groups from
//! its provider's API (Google Workspace, Microsoft Graph, Okta) and hand the
//! engine normalized snapshots (`reconcile::listing`). Translation only: no
//! reconciliation rule lives here. Only this module may import an HTTP client.
//!

pub mod connector;
pub mod fake;
pub mod google;
pub mod graph;
pub mod normalize;
pub mod okta;
pub mod retry;
pub mod run;
pub mod schedule;
pub mod source;

/// The providers a pull directory can hold a connection to; the name is the
/// directory's `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Google,
    Entra,
    Okta,
}

impl Provider {
    pub const ALL: [Provider; 3] = [Provider::Google, Provider::Entra, Provider::Okta];

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Google => "google",
            Provider::Entra => "entra",
            Provider::Okta => "okta",
        }
    }

    pub fn parse(raw: &str) -> Option<Provider> {
        Provider::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(raw.trim()))
    }
}

/// Why a pull could not go on. Provider errors carry the provider's own
/// words, so an operator reads "AADSTS7000215: Invalid client secret", not
/// "401".
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// The provider refused the credentials (token endpoint or API 401).
    #[error("authentication failed: {0}")]
    Auth(String),
    /// The credentials work but may not read this (403: missing permission
    /// or scope, an admin that is not one).
    #[error("permission denied: {0}")]
    Permission(String),
    /// The provider answered an API call with another error.
    #[error("{status} from the provider: {message}")]
    Provider { status: u16, message: String },
    /// Still throttled or failing after every retry.
    #[error("gave up after {attempts} attempts: {last}")]
    Exhausted { attempts: u32, last: String },
    /// The incremental cursor is no longer valid (Graph's expired
    /// deltaLink); a full run starts over.
    #[error("the incremental cursor expired: {0}")]
    CursorExpired(String),
    /// The connection's settings or credentials cannot be used as given
    /// (a key file that is not one, a URL that does not parse).
    #[error("invalid connection: {0}")]
    Config(String),
    #[error("could not reach the provider: {0}")]
    Network(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl PullError {
    /// A transport failure, without the URL (it may carry a token in a query).
    pub fn network(err: reqwest::Error) -> PullError {
        PullError::Network(err.without_url().to_string())
    }
}
