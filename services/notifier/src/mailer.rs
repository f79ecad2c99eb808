//! Handing a message to an SMTP relay, behind a one-method trait.
//!
//! [`Mailer::send`] returns only after the relay answered: `Ok` means the
//! relay accepted the message (SMTP 250). Errors say whether retrying can help
//! (the relay is down or answered 4xx) or not (a bad address, a 5xx answer),
//! so the caller can retry the first kind and park the second.
//! [`SmtpMailer`] is lettre over the configured relay; `MemoryMailer`, which
//! keeps messages in memory, exists only in this crate's unit tests.

use std::future::Future;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use mamochi_common::clock::Clock;
use mamochi_common::config::{SmtpSettings, SmtpTls};
use secrecy::ExposeSecret;

use crate::compose::{self, ComposeError, Email};

/// How long one SMTP conversation may take before it counts as failed.
const SMTP_TIMEOUT: Duration = Duration::from_secs(15);

/// Why an email was not accepted by the relay.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The message itself is wrong; it will never be sent.
    #[error(transparent)]
    Compose(#[from] ComposeError),
    /// The relay refused for good (SMTP 5xx).
    #[error("the relay refused the message permanently: {0}")]
    Refused(String),
    /// The relay could not be reached or asked us to come back (4xx).
    #[error("the relay is unavailable: {0}")]
    Unavailable(String),
    /// The SMTP settings are unusable.
    #[error("invalid SMTP settings: {0}")]
    Settings(String),
}

impl MailError {
    /// Worth retrying later.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// Sends one email.
pub trait Mailer: Send + Sync {
    fn send(&self, email: &Email) -> impl Future<Output = Result<(), MailError>> + Send;
}

/// lettre's async SMTP transport over the configured relay.
#[derive(Debug, Clone)]
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    clock: Clock,
}

impl SmtpMailer {
    /// A mailer for `settings`: plain SMTP (`none`, the local sink), STARTTLS,
    /// or implicit TLS, with credentials when a username is set.
    pub fn from_settings(settings: &SmtpSettings, clock: Clock) -> Result<Self, MailError> {
        let host = settings.host.as_str();
        let builder = match settings.tls {
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                .map_err(|error| MailError::Settings(error.to_string()))?,
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)
                .map_err(|error| MailError::Settings(error.to_string()))?,
        };
        let mut builder = builder.port(settings.port).timeout(Some(SMTP_TIMEOUT));
        if let Some(username) = &settings.username {
            let password = settings.password.as_ref().map(|p| p.expose_secret().to_string()).unwrap_or_default();
            builder = builder.credentials(Credentials::new(username.clone(), password));
        }
        let from = compose::parse_from(&settings.from)?;
        Ok(Self { transport: builder.build(), from, clock })
    }
}

impl Mailer for SmtpMailer {
    async fn send(&self, email: &Email) -> Result<(), MailError> {
        let message = compose::build_message(&self.from, email, self.clock.now())?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(error) if error.is_permanent() => Err(MailError::Refused(without_addresses(&error.to_string()))),
            Err(error) => Err(MailError::Unavailable(without_addresses(&error.to_string()))),
        }
    }
}

/// The relay's answer with every email address replaced by `[address]`:
/// relays quote the refused recipient (`550 5.1.1 <rosa@example.cl>: …`), and
/// this text reaches the logs, the emails table and the dead-letter headers,
/// none of which may hold a member's personal data.
pub fn without_addresses(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let local = |c: char| c.is_alphanumeric() || ".!#$%&'*+/=?^_`{|}~-".contains(c);
    let domain = |c: char| c.is_alphanumeric() || c == '.' || c == '-';
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '@' {
            let start = (0..i).rev().take_while(|&j| local(chars[j])).last();
            let end = (i + 1..chars.len()).take_while(|&j| domain(chars[j])).last();
            if let (Some(start), Some(end)) = (start, end) {
                // The local part was already copied: take it back out.
                let copied: usize = chars[start..i].iter().map(|c| c.len_utf8()).sum();
                out.truncate(out.len() - copied);
                out.push_str("[address]");
                i = end + 1;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// Keeps every message it is given, rendered, or fails while told to.
/// For unit tests of the code around sending; never compiled into the service.
#[cfg(test)]
#[derive(Debug, Default)]
pub struct MemoryMailer {
    sent: std::sync::Mutex<Vec<(Email, String)>>,
    failing: std::sync::atomic::AtomicBool,
}

#[cfg(test)]
impl MemoryMailer {
    /// Every email accepted so far with its rendered body.
    pub fn sent(&self) -> Vec<(Email, String)> {
        self.sent.lock().map(|sent| sent.clone()).unwrap_or_default()
    }

    /// While `true`, every send fails as if the relay were down.
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, std::sync::atomic::Ordering::Relaxed);
    }
}

#[cfg(test)]
impl Mailer for MemoryMailer {
    async fn send(&self, email: &Email) -> Result<(), MailError> {
        if self.failing.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(MailError::Unavailable("memory mailer told to fail".to_string()));
        }
        let body = compose::render_body(&email.body_template, email.secret.as_ref());
        if let Ok(mut sent) = self.sent.lock() {
            sent.push((email.clone(), body));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;
    use uuid::Uuid;

    use super::*;

    fn email() -> Email {
        Email {
            message_id: Uuid::new_v4(),
            to: "a@example.cl".into(),
            subject: "s".into(),
            body_template: "clave {secret}".into(),
            secret: Some(SecretString::from("mamochi_x".to_string())),
        }
    }

    #[tokio::test]
    async fn the_memory_mailer_keeps_the_rendered_body_and_can_fail() {
        let mailer = MemoryMailer::default();

        mailer.set_failing(true);
        let failed = mailer.send(&email()).await;
        mailer.set_failing(false);
        let sent = mailer.send(&email()).await;

        assert!(failed.as_ref().is_err_and(MailError::is_transient));
        assert!(sent.is_ok());
        assert_eq!(mailer.sent().len(), 1);
        assert_eq!(mailer.sent()[0].1, "clave mamochi_x");
    }

    #[test]
    fn relay_settings_build_for_each_tls_mode() {
        for tls in [SmtpTls::None, SmtpTls::Starttls, SmtpTls::Tls] {
            let settings = SmtpSettings {
                host: "127.0.0.1".into(),
                port: 1025,
                tls,
                username: Some("user".into()),
                password: Some(SecretString::from("pw".to_string())),
                from: "MAMOCHI <no-reply@mamochi.cl>".into(),
            };
            assert!(SmtpMailer::from_settings(&settings, Clock::real()).is_ok(), "{tls:?}");
        }
    }

    #[test]
    fn a_relay_answer_loses_its_addresses_and_keeps_the_rest() {
        let answer = "permanent error (550): 5.1.1 <rosa.perez+1@correo.example.cl>: mailbox unavailable";

        let redacted = without_addresses(answer);

        assert_eq!(redacted, "permanent error (550): 5.1.1 <[address]>: mailbox unavailable");
        assert_eq!(without_addresses("no address @ here; ñandú@sur.cl"), "no address @ here; [address]");
    }

    #[test]
    fn an_unparseable_sender_is_a_settings_error() {
        let settings = SmtpSettings {
            host: "127.0.0.1".into(),
            port: 1025,
            tls: SmtpTls::None,
            username: None,
            password: None,
            from: "not an address".into(),
        };
        assert!(SmtpMailer::from_settings(&settings, Clock::real()).is_err());
    }
}
