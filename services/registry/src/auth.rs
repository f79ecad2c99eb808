//! HTTP basic auth on the registry's API, as Confluent's server does it with
//! `authentication.method=BASIC`, so Confluent clients configured with
//! `basic.auth.user.info=user:password` (and ours, with the credentials in
//! `registry.url`) are let in.
//!
//! Guarantees: with no users configured (`registry.basic_auth_users` empty,
//! the local default) every request passes untouched. With users, every
//! request except the liveness and readiness probes (`/healthz`, `/readyz`,
//! which say nothing about schemas and are what orchestrators poll) needs an
//! `Authorization: Basic` header naming one of them, else it is answered 401
//! with `WWW-Authenticate` and Confluent's error body before any handler
//! runs. Credentials are compared in constant time and never logged.

use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, ResponseError};
use secrecy::{ExposeSecret, SecretString};

use crate::errors::ApiError;

/// The `WWW-Authenticate` challenge of a 401.
pub const CHALLENGE: &str = "Basic realm=\"SchemaRegistry\"";

/// Paths answered without credentials: probes only.
const OPEN_PATHS: [&str; 2] = ["/healthz", "/readyz"];

/// Why the configured users cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("registry.basic_auth_users entry {0} is not `user:password` with a non-empty user")]
    MalformedUser(usize),
}

/// The users allowed in; none means authentication is off.
#[derive(Clone, Default)]
pub struct BasicAuth {
    /// Each user's expected `Authorization` credentials: base64 of `user:password`.
    expected: Arc<Vec<SecretString>>,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuth").field("users", &self.expected.len()).finish()
    }
}

impl BasicAuth {
    /// Reads `user:password` entries (the password may contain `:`).
    pub fn new(users: &[SecretString]) -> Result<Self, AuthError> {
        let expected = users
            .iter()
            .enumerate()
            .map(|(index, user)| match user.expose_secret().split_once(':') {
                Some((name, _)) if !name.is_empty() => Ok(SecretString::from(base64(user.expose_secret().as_bytes()))),
                _ => Err(AuthError::MalformedUser(index + 1)),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { expected: Arc::new(expected) })
    }

    /// Whether requests must carry credentials.
    pub fn is_on(&self) -> bool {
        !self.expected.is_empty()
    }

    /// Whether an `Authorization` header value names a configured user.
    pub fn admits(&self, authorization: Option<&str>) -> bool {
        let Some((scheme, credentials)) = authorization.and_then(|value| value.trim().split_once(' ')) else {
            return false;
        };
        if !scheme.eq_ignore_ascii_case("basic") {
            return false;
        }
        let given = credentials.trim().as_bytes();
        // Every entry is compared, so the time taken does not say which matched.
        self.expected
            .iter()
            .fold(false, |found, expected| constant_time_eq(expected.expose_secret().as_bytes(), given) | found)
    }
}

/// Middleware (`from_fn`): refuses requests without valid credentials when auth is on.
pub async fn require(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let auth = request.app_data::<web::Data<BasicAuth>>().cloned();
    let needs_credentials = auth.as_ref().is_some_and(|auth| auth.is_on()) && !OPEN_PATHS.contains(&request.path());
    if needs_credentials {
        let authorization = request.headers().get(header::AUTHORIZATION).and_then(|value| value.to_str().ok());
        if !auth.is_some_and(|auth| auth.admits(authorization)) {
            tracing::info!(path = request.path(), "request refused: missing or wrong registry credentials");
            let refusal = ApiError::Unauthorized.error_response();
            return Ok(request.into_response(refusal).map_into_right_body());
        }
    }
    Ok(next.call(request).await?.map_into_left_body())
}

/// Equality whose time depends only on the lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// Standard base64 with padding (RFC 4648), as every HTTP client encodes
/// basic credentials.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut encoded = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let group = chunk.iter().enumerate().fold(0u32, |group, (i, byte)| group | u32::from(*byte) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                let index = (group >> (18 - 6 * i)) & 0x3f;
                encoded.push(char::from(ALPHABET[index as usize]));
            } else {
                encoded.push('=');
            }
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(users: &[&str]) -> BasicAuth {
        let users: Vec<SecretString> = users.iter().map(|user| SecretString::from(user.to_string())).collect();
        BasicAuth::new(&users).expect("valid users")
    }

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        let vectors =
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE=")];
        for (plain, encoded) in vectors {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain}");
        }
        // RFC 7617's own example.
        assert_eq!(base64(b"Aladdin:open sesame"), "QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    }

    #[test]
    fn only_configured_users_are_admitted() {
        let auth = auth(&["Aladdin:open sesame", "bob:pa:ss"]);

        assert!(auth.is_on());
        assert!(auth.admits(Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")));
        assert!(auth.admits(Some("basic Ym9iOnBhOnNz")), "scheme in any case; a colon in the password");
        assert!(!auth.admits(Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZg==")), "wrong password");
        assert!(!auth.admits(Some("Bearer QWxhZGRpbjpvcGVuIHNlc2FtZQ==")), "other scheme");
        assert!(!auth.admits(Some("Basic")));
        assert!(!auth.admits(None));
    }

    #[test]
    fn no_users_means_auth_is_off_and_malformed_users_are_refused() {
        assert!(!auth(&[]).is_on());
        let malformed = [SecretString::from("ok:pw".to_string()), SecretString::from("no-colon".to_string())];
        assert!(matches!(BasicAuth::new(&malformed), Err(AuthError::MalformedUser(2))));
        assert!(BasicAuth::new(&[SecretString::from(":pw".to_string())]).is_err(), "empty user");
    }
}
