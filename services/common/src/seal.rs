//! Sealing secrets that must cross Kafka, such as a new member's API key on
//! its way to the notifier: ChaCha20-Poly1305 with a key from configuration
//! and a random nonce per secret. Kafka's log keeps only the sealed bytes;
//! the notifier opens them at the moment it writes the email.
//!
//! Sealed layout: 12-byte nonce, then ciphertext and tag. Tampering, or a
//! different key, makes `open` fail instead of returning garbage.

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use secrecy::{ExposeSecret, SecretString};

const NONCE_LEN: usize = 12;

/// Why a secret could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("the sealing key must be 64 hex characters (32 bytes)")]
    BadKey,
    #[error("sealed data is corrupt or was sealed with another key")]
    Unsealable,
}

/// Seals and opens secrets with one key.
#[derive(Clone)]
pub struct Sealer {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    /// A sealer from a hex-encoded 32-byte key.
    pub fn from_hex(key: &SecretString) -> Result<Self, SealError> {
        let bytes = hex::decode(key.expose_secret().trim()).map_err(|_| SealError::BadKey)?;
        if bytes.len() != 32 {
            return Err(SealError::BadKey);
        }
        Ok(Self { cipher: ChaCha20Poly1305::new(Key::from_slice(&bytes)) })
    }

    pub fn seal(&self, secret: &str) -> Result<Vec<u8>, SealError> {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ciphertext = self.cipher.encrypt(&nonce, secret.as_bytes()).map_err(|_| SealError::Unsealable)?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    pub fn open(&self, sealed: &[u8]) -> Result<SecretString, SealError> {
        if sealed.len() < NONCE_LEN {
            return Err(SealError::Unsealable);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let plain = self.cipher.decrypt(Nonce::from_slice(nonce), ciphertext).map_err(|_| SealError::Unsealable)?;
        let text = String::from_utf8(plain).map_err(|_| SealError::Unsealable)?;
        Ok(SecretString::from(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(byte: char) -> Sealer {
        Sealer::from_hex(&SecretString::from(byte.to_string().repeat(64))).expect("valid key")
    }

    #[test]
    fn a_sealed_secret_opens_with_the_same_key_only() {
        let sealed = sealer('a').seal("mamochi_secret").expect("seals");

        assert!(!sealed.windows(14).any(|window| window == b"mamochi_secret"), "no clear text inside");
        assert_eq!(sealer('a').open(&sealed).expect("opens").expose_secret(), "mamochi_secret");
        assert!(sealer('b').open(&sealed).is_err(), "another key cannot open it");
    }

    #[test]
    fn tampering_is_detected() {
        let mut sealed = sealer('a').seal("mamochi_secret").expect("seals");
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(sealer('a').open(&sealed).is_err());
    }

    #[test]
    fn a_short_key_is_refused() {
        assert!(Sealer::from_hex(&SecretString::from("abcd".to_string())).is_err());
    }
}
