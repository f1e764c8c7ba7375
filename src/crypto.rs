//! Secrets: SCIM bearer tokens are 256-bit random values shown once and stored
//! only as SHA-256, compared in constant time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Every SCIM token starts with this, so leaked tokens are easy to grep for.
pub const TOKEN_PREFIX: &str = "dsync_";

/// A secret string whose `Debug` never prints the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Secret(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A freshly generated token: the secret (shown once), its hash (stored) and a
/// short prefix (stored, shown in listings to tell tokens apart).
#[derive(Debug)]
pub struct NewToken {
    pub secret: Secret,
    pub hash: String,
    pub prefix: String,
}

pub fn generate_token() -> NewToken {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = hash_token(&secret);
    let prefix = secret.chars().take(TOKEN_PREFIX.len() + 6).collect();
    NewToken {
        secret: Secret::new(secret),
        hash,
        prefix,
    }
}

/// SHA-256 of the token, hex. A 256-bit random token needs no salt or KDF:
/// it cannot be guessed, only stolen, and the hash is useless to a thief.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compare two hashes without leaking where they differ.
pub fn hashes_equal(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_prefixed_and_hash_to_what_is_stored() {
        let a = generate_token();
        let b = generate_token();
        assert_ne!(a.secret, b.secret);
        assert!(a.secret.expose().starts_with(TOKEN_PREFIX));
        // 32 bytes base64url without padding = 43 characters.
        assert_eq!(a.secret.expose().len(), TOKEN_PREFIX.len() + 43);
        assert!(hashes_equal(&hash_token(a.secret.expose()), &a.hash));
        assert!(!hashes_equal(&a.hash, &b.hash));
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let t = generate_token();
        assert!(!format!("{t:?}").contains(t.secret.expose()));
    }
}
