//! TLS towards PostgreSQL, asked for the way libpq asks for it: `sslmode`
//! and `sslrootcert` in the connection URL.
//!
//! tokio-postgres (under diesel-async) knows only `disable`, `prefer` and
//! `require`, and verifies nothing itself, so this module reads libpq's
//! modes, removes them from the URL it hands on (keeping `sslmode=require`,
//! so the client never falls back to plain TCP) and builds the rustls
//! configuration that does the checking:
//!
//! - `verify-full`: the server's chain must lead to the CA in `sslrootcert`
//!   and its certificate must name the host connected to;
//! - `verify-ca` and `require`: the chain must lead to that CA, the name is
//!   not checked (libpq's `require` checks the chain when a root file is
//!   given; here the root file is mandatory, so an unauthenticated server is
//!   never accepted);
//! - `disable`, `prefer` or no `sslmode`: plain TCP, as before.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

/// Why a URL's TLS settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("sslmode={0} is not supported (use disable, prefer, require, verify-ca or verify-full)")]
    UnknownMode(String),
    #[error("sslmode={0} needs sslrootcert=<PEM file of the server's CA>")]
    MissingRootCert(String),
    #[error("could not read the CA file {path}: {reason}")]
    RootCert { path: String, reason: String },
    #[error("could not build the TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    #[error("could not build the certificate verifier: {0}")]
    Verifier(#[from] rustls::client::VerifierBuilderError),
}

/// A database URL split into what tokio-postgres reads and the TLS to use.
#[derive(Debug)]
pub struct TlsUrl {
    /// The URL without libpq-only parameters.
    pub url: String,
    /// `None` for plain TCP.
    pub tls: Option<PgTls>,
}

/// A ready rustls client configuration for PostgreSQL.
#[derive(Clone)]
pub struct PgTls {
    config: Arc<rustls::ClientConfig>,
}

impl fmt::Debug for PgTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgTls").finish_non_exhaustive()
    }
}

impl PgTls {
    /// The connector tokio-postgres negotiates TLS with.
    pub fn connector(&self) -> MakeRustlsConnect {
        MakeRustlsConnect::new((*self.config).clone())
    }
}

/// How much of the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    ChainOnly,
    ChainAndName,
}

impl TlsUrl {
    /// Splits `url`; reads the CA file when TLS is asked for.
    pub fn parse(url: &str) -> Result<Self, TlsError> {
        let Some((base, query)) = url.split_once('?') else {
            return Ok(Self { url: url.to_string(), tls: None });
        };
        let mut mode = None;
        let mut root_cert = None;
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            match pair.split_once('=') {
                Some(("sslmode", value)) => mode = Some(value.to_string()),
                Some(("sslrootcert", value)) => root_cert = Some(value.to_string()),
                _ => kept.push(pair.to_string()),
            }
        }
        let check = match mode.as_deref() {
            None => None,
            Some("disable" | "prefer") => {
                kept.push(format!("sslmode={}", mode.as_deref().unwrap_or("prefer")));
                None
            }
            Some("require" | "verify-ca") => Some(Check::ChainOnly),
            Some("verify-full") => Some(Check::ChainAndName),
            Some(other) => return Err(TlsError::UnknownMode(other.to_string())),
        };
        let tls = match check {
            None => None,
            Some(check) => {
                let mode = mode.unwrap_or_default();
                let path = root_cert.ok_or_else(|| TlsError::MissingRootCert(mode.clone()))?;
                kept.push("sslmode=require".to_string());
                Some(PgTls { config: Arc::new(client_config(&path, check)?) })
            }
        };
        let url = if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) };
        Ok(Self { url, tls })
    }
}

fn client_config(ca_path: &str, check: Check) -> Result<rustls::ClientConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = Arc::new(root_store(ca_path)?);
    let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider.clone()).build()?;
    let builder =
        rustls::ClientConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions()?;
    let config = match check {
        Check::ChainAndName => builder.with_webpki_verifier(verifier).with_no_client_auth(),
        Check::ChainOnly => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainOnly { inner: verifier, provider }))
            .with_no_client_auth(),
    };
    Ok(config)
}

fn root_store(path: &str) -> Result<RootCertStore, TlsError> {
    let error = |reason: String| TlsError::RootCert { path: path.to_string(), reason };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| error(e.to_string()))? {
        roots.add(cert.map_err(|e| error(e.to_string()))?).map_err(|e| error(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(error("no certificate in the file".to_string()));
    }
    Ok(roots)
}

/// Checks the chain (and the signatures of the handshake) like webpki, but
/// accepts a certificate that names another host: libpq's `verify-ca`.
#[derive(Debug)]
struct ChainOnly {
    inner: Arc<WebPkiServerVerifier>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_without_sslmode_is_plain_and_unchanged() {
        let url = "postgres://u:p@127.0.0.1:5432/db?application_name=x";

        let parsed = TlsUrl::parse(url).expect("parses");

        assert!(parsed.tls.is_none());
        assert_eq!(parsed.url, url);
    }

    #[test]
    fn verify_full_without_a_root_certificate_is_refused() {
        let result = TlsUrl::parse("postgres://u:p@127.0.0.1/db?sslmode=verify-full");

        assert!(matches!(result, Err(TlsError::MissingRootCert(mode)) if mode == "verify-full"));
    }

    #[test]
    fn an_unknown_sslmode_is_refused() {
        let result = TlsUrl::parse("postgres://u:p@127.0.0.1/db?sslmode=sometimes");

        assert!(matches!(result, Err(TlsError::UnknownMode(_))));
    }

    #[test]
    fn an_unreadable_root_certificate_is_refused() {
        let result = TlsUrl::parse("postgres://u:p@127.0.0.1/db?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem");

        assert!(matches!(result, Err(TlsError::RootCert { .. })));
    }
}
