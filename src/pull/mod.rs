//! The pull side: connectors that list a directory's users and groups from
//! its provider's API (Google Workspace, Microsoft Graph, Okta) and hand the
//! engine normalized snapshots (`reconcile::listing`). Translation only: no
//! reconciliation rule lives here. Only this module may import an HTTP client;
//! it never imports `scim`. Its modules import each other one way (no circle).
//! A bare section sign in pull's comments (§2C) is a section of
//! docs/pull-apis.md, the providers' wire facts these modules rely on.

pub mod connector;
pub mod fake;
pub mod google;
pub mod graph;
pub mod normalize;
pub mod okta;
pub mod preview;
pub mod retry;
pub mod run;
pub mod schedule;
pub mod scheduler;
pub mod source;
pub mod token;

/// The providers a pull directory can hold a connection to; the name is the
/// directory's `kind`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
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

/// A provider endpoint from a connection's settings: https, or plain http
/// only on this machine (a local fake), so credentials and tokens never
/// cross a network in clear.
pub fn endpoint(what: &str, raw: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(raw).map_err(|e| format!("{what} {raw:?} is not a URL: {e}"))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        _ if url.cannot_be_a_base() || url.host().is_none() => {
            Err(format!("{what} {raw:?} is not an http(s) URL"))
        }
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        "http" => Err(format!(
            "{what} {raw:?} must use https (plain http only to this machine)"
        )),
        _ => Err(format!("{what} {raw:?} is not an http(s) URL")),
    }
}

impl PullError {
    /// A transport failure, without the URL (it may carry a token in a query).
    pub fn network(err: reqwest::Error) -> PullError {
        PullError::Network(err.without_url().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_https_or_plain_http_only_to_this_machine() {
        assert!(endpoint("x", "https://graph.microsoft.com/v1.0").is_ok());
        assert!(endpoint("x", "http://127.0.0.1:8080").is_ok());
        assert!(endpoint("x", "http://localhost:1").is_ok());
        assert!(endpoint("x", "http://[::1]:1").is_ok());
        let err = endpoint("graph_base", "http://graph.example.com").unwrap_err();
        assert!(err.contains("must use https"), "{err}");
        assert!(endpoint("x", "ftp://example.com").is_err());
        assert!(endpoint("x", "mailto:a@example.com").is_err());
    }
}
