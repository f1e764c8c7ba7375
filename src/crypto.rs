//! Secrets: SCIM bearer tokens are 256-bit random values shown once and stored
//! only as SHA-256, compared in constant time. Connector credentials are
//! sealed with AES-256-GCM under a server-held key (`SealingKey`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Every SCIM token starts with this, so leaked tokens are easy to grep for.
pub const TOKEN_PREFIX: &str = "dsync_";

/// A secret string whose `Debug` never prints the secret.
/// Deserializes from a plain string (a connection file's `secret`); never
/// serializes.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
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
pub struct GeneratedToken {
    pub secret: Secret,
    pub hash: String,
    pub prefix: String,
}

pub fn generate_token() -> GeneratedToken {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = hash_token(&secret);
    let prefix = secret.chars().take(TOKEN_PREFIX.len() + 6).collect();
    GeneratedToken {
        secret: Secret::new(secret),
        hash,
        prefix,
    }
}

/// SHA-256 of the token, hex. A 256-bit random token needs no salt or KDF:
/// it cannot be guessed, only stolen, and the hash is useless to a thief.
pub fn hash_token(token: &str) -> String {
    hash_bytes(token.as_bytes())
}

/// SHA-256 of some bytes, hex (a stored snapshot's fingerprint).
pub fn hash_bytes(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Compare two hashes without leaking where they differ.
pub fn hashes_equal(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// A password as an argon2id PHC string (random salt, the crate's default
/// parameters: OWASP's 19 MiB, 2 passes, 1 lane).
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::password_hash::PasswordHasher;
    argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` is the one `phc` was made from (a hash that does not
/// parse matches nothing).
pub fn verify_password(password: &str, phc: &str) -> bool {
    use argon2::password_hash::PasswordVerifier;
    argon2::Argon2::default()
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}

/// A hash no password is known for, made once per process: a sign-in for
/// an email no operator has is checked against it, so it costs what a
/// wrong password costs and its timing does not say which emails exist.
pub fn decoy_password_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        hash_password(&URL_SAFE_NO_PAD.encode(bytes)).unwrap_or_default()
    })
}

/// 256 random bits, URL-safe base64: a session's cookie, a CSRF token.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_hash_is_argon2id_and_matches_only_its_password() {
        let phc = hash_password("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(verify_password("correct horse battery", &phc));
        assert!(!verify_password("correct horse batterx", &phc));
        assert!(!verify_password("correct horse battery", "not a hash"));
        assert!(!verify_password("", decoy_password_hash()));
    }

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

/// Why a sealed secret could not be opened, or a key not read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error(
        "the secret key must be 32 bytes, base64-encoded (generate one with `openssl rand -base64 32`)"
    )]
    BadKey,
    #[error("sealed with key {found}, but the server's key is {expected}; rotate with the old key")]
    WrongKey { expected: String, found: String },
    #[error("the sealed secret is malformed or was tampered with")]
    Corrupt,
    #[error("the secret is too large to seal")]
    TooLarge,
}

/// The server-held key for secrets at rest (connector credentials):
/// AES-256-GCM with a random 96-bit nonce per seal. `Debug` shows only the
/// key's id (the first 8 hex digits of its SHA-256), never the key.
#[derive(Clone)]
pub struct SealingKey {
    id: String,
    cipher: aes_gcm::Aes256Gcm,
}

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealingKey({})", self.id)
    }
}

const SEALED_VERSION: &str = "v1";

impl SealingKey {
    /// Read a key from its base64 form (standard or URL-safe alphabet).
    pub fn parse(encoded: &str) -> Result<SealingKey, SealError> {
        use aes_gcm::KeyInit;
        use base64::engine::general_purpose::STANDARD;
        let encoded = encoded.trim();
        let bytes = STANDARD
            .decode(encoded)
            .or_else(|_| URL_SAFE_NO_PAD.decode(encoded.trim_end_matches('=')))
            .map_err(|_| SealError::BadKey)?;
        if bytes.len() != 32 {
            return Err(SealError::BadKey);
        }
        let cipher = aes_gcm::Aes256Gcm::new_from_slice(&bytes).map_err(|_| SealError::BadKey)?;
        let id = hex::encode(Sha256::digest(&bytes))[..8].to_owned();
        Ok(SealingKey { id, cipher })
    }

    /// A fresh random key in the base64 form `parse` reads.
    pub fn generate() -> Secret {
        use base64::engine::general_purpose::STANDARD;
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Secret::new(STANDARD.encode(bytes))
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Encrypt `plaintext`, bound to `context` (the row it belongs to, so a
    /// sealed value copied to another row does not open there):
    /// `v1.KEYID.base64url(nonce ‖ ciphertext ‖ tag)`.
    /// Fails only for a plaintext beyond AES-GCM's limit (64 GiB).
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Result<String, SealError> {
        use aes_gcm::aead::{Aead, Payload};
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                &aes_gcm::Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .map_err(|_| SealError::TooLarge)?;
        let mut out = nonce.to_vec();
        out.extend(sealed);
        Ok(format!(
            "{SEALED_VERSION}.{}.{}",
            self.id,
            URL_SAFE_NO_PAD.encode(out)
        ))
    }

    /// Decrypt what `seal` produced with this key and the same `context`.
    pub fn open(&self, sealed: &str, context: &[u8]) -> Result<Secret, SealError> {
        use aes_gcm::aead::{Aead, Payload};
        let mut parts = sealed.splitn(3, '.');
        let (Some(SEALED_VERSION), Some(key_id), Some(body)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(SealError::Corrupt);
        };
        if key_id != self.id {
            return Err(SealError::WrongKey {
                expected: self.id.clone(),
                found: key_id.to_owned(),
            });
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| SealError::Corrupt)?;
        if bytes.len() < 12 + 16 {
            return Err(SealError::Corrupt);
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| SealError::Corrupt)?;
        let plain = self
            .cipher
            .decrypt(
                &aes_gcm::Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context,
                },
            )
            .map_err(|_| SealError::Corrupt)?;
        String::from_utf8(plain)
            .map(Secret::new)
            .map_err(|_| SealError::Corrupt)
    }
}

#[cfg(test)]
mod sealing_tests {
    use super::*;

    fn key() -> SealingKey {
        SealingKey::parse(SealingKey::generate().expose()).unwrap()
    }

    #[test]
    fn a_sealed_secret_opens_with_the_same_key_and_context_only() {
        let k = key();
        let sealed = k.seal(b"client-secret-value", b"connection-1").unwrap();
        assert!(!sealed.contains("client-secret-value"));
        assert_eq!(
            k.open(&sealed, b"connection-1").unwrap().expose(),
            "client-secret-value"
        );
        assert_eq!(k.open(&sealed, b"connection-2"), Err(SealError::Corrupt));
        let other = key();
        assert!(matches!(
            other.open(&sealed, b"connection-1"),
            Err(SealError::WrongKey { .. })
        ));
    }

    #[test]
    fn sealing_twice_gives_different_ciphertexts() {
        let k = key();
        assert_ne!(k.seal(b"x", b"c").unwrap(), k.seal(b"x", b"c").unwrap());
    }

    #[test]
    fn a_tampered_or_truncated_seal_is_corrupt() {
        let k = key();
        let sealed = k.seal(b"secret", b"c").unwrap();
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(k.open(&tampered, b"c"), Err(SealError::Corrupt));
        assert_eq!(
            k.open(&sealed[..sealed.len() - 30], b"c"),
            Err(SealError::Corrupt)
        );
        assert_eq!(k.open("v2.x.y", b"c"), Err(SealError::Corrupt));
    }

    #[test]
    fn keys_must_be_32_bytes_of_base64_and_never_print() {
        assert_eq!(
            SealingKey::parse("c2hvcnQ=").unwrap_err(),
            SealError::BadKey
        );
        assert_eq!(
            SealingKey::parse("not base64 !!").unwrap_err(),
            SealError::BadKey
        );
        let k = key();
        assert_eq!(format!("{k:?}"), format!("SealingKey({})", k.id()));
        assert_eq!(k.id().len(), 8);
    }
}
