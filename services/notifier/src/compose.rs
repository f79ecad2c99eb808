//! Turns an email request into the exact message that goes over SMTP.
//!
//! Pure functions, no I/O: the `{secret}` substitution, the Message-ID derived
//! from the request's message id, and the RFC 5322 message itself. The body is
//! always quoted-printable, so Spanish text survives any relay and the message
//! stays readable in the raw `.eml`.

use chrono::{DateTime, Utc};
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox};
use lettre::Message;
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

/// Where the body asks for the opened secret.
pub const SECRET_PLACEHOLDER: &str = "{secret}";

/// Domain of every Message-ID we write, so downstream can recognise our mail.
pub const MESSAGE_ID_DOMAIN: &str = "mamochi.cl";

/// One email as the notifier sends it. The secret, when there is one, is kept
/// apart from the body until the moment the message is built, and `Debug`
/// never shows it.
#[derive(Debug, Clone)]
pub struct Email {
    pub message_id: Uuid,
    pub to: String,
    pub subject: String,
    /// The body as requested, possibly holding [`SECRET_PLACEHOLDER`].
    pub body_template: String,
    /// The opened secret that replaces the placeholder.
    pub secret: Option<SecretString>,
}

/// Why a message could not be built; a property of the request, so retrying
/// never helps.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("invalid {field} address: {source}")]
    Address { field: &'static str, source: lettre::address::AddressError },
    #[error("the message cannot be built: {0}")]
    Build(#[from] lettre::error::Error),
}

/// The Message-ID header value for a request: `<message_id@mamochi.cl>`.
pub fn message_id_header(message_id: Uuid) -> String {
    format!("<{message_id}@{MESSAGE_ID_DOMAIN}>")
}

/// The body with the secret in place of every placeholder. Without a secret
/// the template is sent as written.
pub fn render_body(template: &str, secret: Option<&SecretString>) -> String {
    match secret {
        Some(secret) => template.replace(SECRET_PLACEHOLDER, secret.expose_secret()),
        None => template.to_string(),
    }
}

/// Parses the configured sender (`Name <address>` or a bare address).
pub fn parse_from(from: &str) -> Result<Mailbox, ComposeError> {
    from.parse().map_err(|source| ComposeError::Address { field: "from", source })
}

/// Builds the message. `date` is platform time (the Date header follows the
/// platform clock like every other business timestamp).
pub fn build_message(from: &Mailbox, email: &Email, date: DateTime<Utc>) -> Result<Message, ComposeError> {
    let to: Mailbox = email.to.parse().map_err(|source| ComposeError::Address { field: "to", source })?;
    let body = Body::new_with_encoding(
        render_body(&email.body_template, email.secret.as_ref()),
        ContentTransferEncoding::QuotedPrintable,
    )
    // Quoted-printable can carry any text; this arm is unreachable in practice.
    .map_err(|_| ComposeError::Build(lettre::error::Error::MissingFrom))?;
    let message = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(email.subject.clone())
        .message_id(Some(message_id_header(email.message_id)))
        .date(date.into())
        .header(ContentType::TEXT_PLAIN)
        .body(body)?;
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(body: &str, secret: Option<&str>) -> Email {
        Email {
            message_id: Uuid::parse_str("6f1c1d0e-52a4-4c1b-9a57-2a4a5b4f0d11").expect("uuid"),
            to: "vendedora@example.cl".to_string(),
            subject: "Tus credenciales".to_string(),
            body_template: body.to_string(),
            secret: secret.map(|s| SecretString::from(s.to_string())),
        }
    }

    fn raw(message: &Message) -> String {
        String::from_utf8(message.formatted()).expect("utf-8")
    }

    #[test]
    fn the_secret_replaces_every_placeholder() {
        let secret = SecretString::from("mamochi_k3y".to_string());

        let body = render_body("Clave: {secret}\nRepito: {secret}", Some(&secret));

        assert_eq!(body, "Clave: mamochi_k3y\nRepito: mamochi_k3y");
    }

    #[test]
    fn without_a_secret_the_template_is_sent_as_written() {
        assert_eq!(render_body("Hola {secret}", None), "Hola {secret}");
    }

    #[test]
    fn the_message_id_header_is_derived_from_the_request() {
        let id = Uuid::parse_str("6f1c1d0e-52a4-4c1b-9a57-2a4a5b4f0d11").expect("uuid");

        assert_eq!(message_id_header(id), "<6f1c1d0e-52a4-4c1b-9a57-2a4a5b4f0d11@mamochi.cl>");
    }

    #[test]
    fn the_built_message_carries_headers_and_the_opened_secret() {
        let from = parse_from("MAMOCHI <no-reply@mamochi.cl>").expect("from");
        let date = DateTime::parse_from_rfc3339("2026-11-22T12:00:00Z").expect("date").with_timezone(&Utc);

        let message = build_message(&from, &email("Tu clave es {secret}.", Some("mamochi_k3y")), date).expect("builds");

        let text = raw(&message);
        assert!(text.contains("Message-ID: <6f1c1d0e-52a4-4c1b-9a57-2a4a5b4f0d11@mamochi.cl>"), "{text}");
        assert!(text.contains("To: vendedora@example.cl"), "{text}");
        assert!(text.contains("From: MAMOCHI <no-reply@mamochi.cl>"), "{text}");
        assert!(text.contains("Subject: Tus credenciales"), "{text}");
        assert!(text.contains("Date: Sun, 22 Nov 2026 12:00:00 +0000"), "{text}");
        assert!(text.contains("Content-Transfer-Encoding: quoted-printable"), "{text}");
        assert!(text.contains("Tu clave es mamochi_k3y."), "{text}");
        assert!(!text.contains("{secret}"), "{text}");
    }

    #[test]
    fn a_bad_recipient_is_refused_not_sent() {
        let from = parse_from("no-reply@mamochi.cl").expect("from");
        let mut bad = email("Hola", None);
        bad.to = "not an address".to_string();

        let error = build_message(&from, &bad, Utc::now()).expect_err("refused");

        assert!(matches!(error, ComposeError::Address { field: "to", .. }));
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let shown = format!("{:?}", email("Clave {secret}", Some("mamochi_k3y")));

        assert!(!shown.contains("mamochi_k3y"), "{shown}");
    }
}
