//! An access token a connector got from its provider's token endpoint, kept
//! for reuse and renewed a minute before it expires (every provider: Google's
//! JWT bearer grant, Entra's client credentials, Okta's service app).

use std::time::{Duration, Instant};

use crate::crypto::Secret;

/// How long before its expiry a token is renewed, so no request goes out
/// with one that dies in flight.
const RENEW_EARLY: Duration = Duration::from_secs(60);

pub struct AccessToken {
    pub value: Secret,
    renew_at: Instant,
}

impl AccessToken {
    /// A token the provider said lives `lifetime` (its `expires_in`).
    pub fn new(value: Secret, lifetime: Duration) -> AccessToken {
        AccessToken {
            value,
            renew_at: Instant::now() + lifetime.saturating_sub(RENEW_EARLY),
        }
    }

    /// Still good to send (not yet due for renewal).
    pub fn is_fresh(&self) -> bool {
        Instant::now() < self.renew_at
    }

    /// Make it due for renewal now (tests of renewal).
    #[cfg(test)]
    pub fn expire(&mut self) {
        self.renew_at = Instant::now();
    }
}
