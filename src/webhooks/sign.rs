//! Standard Webhooks signatures (the `standardwebhooks` crate): `v1,` and
//! the base64 HMAC-SHA256 of `id.timestamp.body`, one per secret that signs,
//! space-separated (during a rotation, the new secret's and the old one's).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use standardwebhooks::Webhook;

use crate::crypto::Secret;

const PREFIX: &str = "whsec_";

/// A new signing secret: `whsec_` and 32 random bytes in base64.
pub fn new_secret() -> Secret {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    Secret::new(format!("{PREFIX}{}", STANDARD.encode(bytes)))
}

/// The `webhook-signature` header for `body` sent as message `id` at
/// `timestamp` (seconds), signed by each of `secrets`.
pub fn signature(
    secrets: &[&Secret],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, String> {
    let mut out = Vec::with_capacity(secrets.len());
    for secret in secrets {
        let signer = Webhook::new(secret.expose()).map_err(|e| format!("signing secret: {e}"))?;
        out.push(
            signer
                .sign(id, timestamp, body)
                .map_err(|e| format!("signing: {e}"))?,
        );
    }
    Ok(out.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of the Standard Webhooks specification.
    #[test]
    fn the_specifications_example_signs_as_the_specification_says() {
        let secret = Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into());
        let body = br#"{"test": 2432232314}"#;
        let header =
            signature(&[&secret], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap();
        assert_eq!(header, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn two_secrets_sign_twice_and_each_verifies_alone() {
        let (new, old) = (new_secret(), new_secret());
        let header = signature(&[&new, &old], "evt_1", 1_700_000_000, b"{}").unwrap();
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            parts[0],
            signature(&[&new], "evt_1", 1_700_000_000, b"{}").unwrap()
        );
        assert_eq!(
            parts[1],
            signature(&[&old], "evt_1", 1_700_000_000, b"{}").unwrap()
        );
        assert_ne!(parts[0], parts[1]);
        assert!(new.expose().starts_with("whsec_"));
    }
}
