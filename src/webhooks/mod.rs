//! Webhooks: the tenant's events, delivered to the host application's
//! endpoints from the outbox, in sequence order per endpoint, signed as the
//! Standard Webhooks specification says, at least once, retried for days.
//!
//! - `address`: which URLs and addresses an endpoint may have (no server-side
//!   request forgery through a webhook URL).
//! - `sign`: signing secrets and the `webhook-signature` header.
//! - `deliver`: the worker `dirsync serve` runs: it finds endpoints with
//!   events past their position, takes each one's lease (one replica at a
//!   time per endpoint), sends, and records each attempt with its effect on
//!   the endpoint in one transaction.

pub mod address;
pub mod deliver;
pub mod sign;

use std::time::Duration;

pub use address::UrlPolicy;

impl Settings {
    /// Whether the settings hold together: an attempt must end well within
    /// the lease, or another replica could take an endpoint over while one
    /// of its messages is still on its way.
    pub fn check(&self) -> Result<(), String> {
        if self.lease_ttl < self.timeout * 2 {
            return Err(format!(
                "the webhook lease ({}) must be at least twice the attempt timeout ({})",
                humantime::format_duration(self.lease_ttl),
                humantime::format_duration(self.timeout)
            ));
        }
        Ok(())
    }
}

/// How the server delivers.
#[derive(Debug, Clone)]
pub struct Settings {
    pub policy: UrlPolicy,
    /// The longest one attempt may take.
    pub timeout: Duration,
    /// The wait after each failed attempt of an event; after the last, the
    /// endpoint is disabled (its events stay in the outbox).
    pub retries: Vec<Duration>,
    /// How long the previous secret still signs after a rotation.
    pub rotation_overlap: Duration,
    /// How long attempts stay in the delivery log.
    pub log_retention: Duration,
    /// How long a replica holds an endpoint without renewing its lease:
    /// after a replica dies, another takes its endpoints over after this.
    pub lease_ttl: Duration,
    /// Most bytes of events one read of an endpoint's backlog holds, and so
    /// one message carries (a single larger event goes alone):
    /// `--max-page-bytes`.
    pub max_message_bytes: u64,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            policy: UrlPolicy::default(),
            timeout: Duration::from_secs(15),
            retries: default_retries(),
            rotation_overlap: Duration::from_secs(24 * 3600),
            log_retention: Duration::from_secs(30 * 86_400),
            lease_ttl: Duration::from_secs(60),
            max_message_bytes: crate::config::DEFAULT_MAX_PAGE_BYTES,
        }
    }
}

/// 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h: ten attempts over
/// three days and three hours.
pub fn default_retries() -> Vec<Duration> {
    [5, 300, 1800, 7200, 18_000, 36_000, 50_400, 72_000, 86_400]
        .into_iter()
        .map(Duration::from_secs)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_must_outlast_two_attempts() {
        let ok = Settings::default();
        assert_eq!(ok.check(), Ok(()));
        let short = Settings {
            lease_ttl: Duration::from_secs(20),
            ..Settings::default()
        };
        let why = short.check().unwrap_err();
        assert!(why.contains("20s") && why.contains("15s"), "{why}");
    }
}
