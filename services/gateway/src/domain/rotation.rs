//! The key a vendor's rotation yields when they send an `Idempotency-Key`:
//! `mamochi_` and HMAC-SHA256(rotation secret, old key ‖ 0 ‖ Idempotency-Key)
//! in hex. The same old key and Idempotency-Key always give the same new
//! key, so a retried rotation (the first answer lost) returns the key the
//! first attempt stored instead of replacing it again, and no clear key is
//! ever stored to make that possible. Without the rotation secret, which is
//! derived from the platform's email seal key (configuration, never in the
//! database or Kafka), the new key cannot be computed from the old one.

use mamochi_events::credentials::{NewApiKey, PREFIX};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// The secret behind derived keys.
#[derive(Clone)]
pub struct RotationSecret([u8; 32]);

impl std::fmt::Debug for RotationSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RotationSecret(..)")
    }
}

/// Domain separation: the seal key is used for nothing else this way.
const LABEL: &[u8] = b"mamochi vendor key rotation v1\0";

impl RotationSecret {
    /// The rotation secret of a platform whose email seal key is `seal_key`.
    pub fn from_seal_key(seal_key: &SecretString) -> Self {
        Self(hmac_sha256(seal_key.expose_secret().trim().as_bytes(), LABEL))
    }

    /// The new key of a rotation of `old_key` under `idempotency_key`.
    pub fn derive(&self, old_key: &str, idempotency_key: &str) -> NewApiKey {
        let mut message = Vec::with_capacity(old_key.len() + 1 + idempotency_key.len());
        message.extend_from_slice(old_key.as_bytes());
        message.push(0);
        message.extend_from_slice(idempotency_key.as_bytes());
        NewApiKey::from_clear(PREFIX, format!("{PREFIX}{}", hex::encode(hmac_sha256(&self.0, &message))))
    }
}

/// HMAC-SHA256 (RFC 2104).
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0_u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
    Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test cases 2 (short key) and 6 (key longer than a block).
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex::encode(hmac_sha256(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn a_derived_key_depends_on_the_old_key_the_idempotency_key_and_the_secret() {
        let secret = RotationSecret::from_seal_key(&SecretString::from("ab".repeat(32)));
        let other = RotationSecret::from_seal_key(&SecretString::from("cd".repeat(32)));

        let key = secret.derive("mamochi_old", "rotate-1");

        assert_eq!(key.sha256, secret.derive("mamochi_old", "rotate-1").sha256, "a retry gets the same key");
        assert!(key.clear.starts_with(PREFIX) && key.clear.len() == PREFIX.len() + 64);
        assert_ne!(key.sha256, secret.derive("mamochi_old", "rotate-2").sha256);
        assert_ne!(key.sha256, secret.derive("mamochi_other", "rotate-1").sha256);
        assert_ne!(key.sha256, other.derive("mamochi_old", "rotate-1").sha256);
        assert_ne!(secret.derive("mamochi_ol", "drotate-1").sha256, key.sha256, "the separator counts");
    }
}
