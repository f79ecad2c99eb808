//! Handles one email request: open its secret, claim its message id, send,
//! record the outcome.
//!
//! The claim (insert-if-new, then `SELECT … FOR UPDATE`), the SMTP
//! conversation and the status update happen inside one database
//! transaction, so a message id is sent by one handler at a time and a `sent`
//! row is never sent again. A failed attempt is committed (attempts + 1,
//! last_error) before the handler asks the runner to retry; a request that
//! can never be sent is marked `failed` and parked in the dead letters.

use std::time::Instant;

use diesel_async::AsyncConnection;
use mamochi_common::clock::Clock;
use mamochi_common::db::PgPool;
use mamochi_common::seal::Sealer;
use mamochi_events::runner::{Envelope, Handler, HandlerError};
use mamochi_events::EmailRequested;
use tracing::instrument;

use crate::compose::Email;
use crate::mailer::{MailError, Mailer};
use crate::metrics::{category_label, Metrics};
use crate::store::{self, Claim, NewEmail};

/// What one delivery attempt came to, decided inside the transaction.
#[derive(Debug)]
enum Outcome {
    Sent { after_failures: i32 },
    Duplicate,
    Failed(MailError),
    Refused(MailError),
}

/// The notifier's record handler.
pub struct EmailHandler<M> {
    pub pool: PgPool,
    pub mailer: M,
    pub sealer: Sealer,
    pub clock: Clock,
    pub metrics: Metrics,
}

impl<M: std::fmt::Debug> std::fmt::Debug for EmailHandler<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailHandler").field("mailer", &self.mailer).finish_non_exhaustive()
    }
}

impl<M: Mailer> Handler<EmailRequested> for EmailHandler<M> {
    #[instrument(
        name = "email_request",
        skip_all,
        fields(topic = %envelope.topic, partition = envelope.partition, offset = envelope.offset,
               message_id = %envelope.value.message_id, category = %envelope.value.category)
    )]
    async fn handle(&self, envelope: Envelope<EmailRequested>) -> Result<(), HandlerError> {
        let request = envelope.value;
        let category = category_label(&request.category);
        let row = NewEmail {
            message_id: request.message_id,
            recipient: &request.to,
            subject: &request.subject,
            category: &request.category,
            status: store::status::PENDING,
            attempts: 0,
            requested_at: request.requested_at,
        };
        let mut conn = self.pool.get().await.map_err(|error| transient(error, "while getting a database connection"))?;

        let secret = match request.sealed_secret.as_deref().map(|sealed| self.sealer.open(sealed)).transpose() {
            Ok(secret) => secret,
            Err(error) => {
                // The reason names the failure, never the bytes.
                let reason = format!("sealed secret does not open: {error}");
                store::record_rejected(&mut conn, &row, &reason)
                    .await
                    .map_err(|error| transient(error, "while recording a rejected email"))?;
                self.metrics.rejected.with_label_values(&[category]).inc();
                return Err(HandlerError::Rejected(reason));
            }
        };
        let email = Email {
            message_id: request.message_id,
            to: request.to.clone(),
            subject: request.subject.clone(),
            body_template: request.body_text.clone(),
            secret,
        };

        let outcome = conn
            .transaction::<_, diesel::result::Error, _>(async |conn| {
                let after_failures = match store::claim(conn, &row).await? {
                    Claim::AlreadySent => return Ok(Outcome::Duplicate),
                    Claim::Send { attempts } => attempts,
                };
                if after_failures > 0 {
                    self.metrics.retries.with_label_values(&[category]).inc();
                }
                let started = Instant::now();
                let sent = self.mailer.send(&email).await;
                self.metrics.send_seconds.observe(started.elapsed().as_secs_f64());
                Ok(match sent {
                    Ok(()) => {
                        store::record_sent(conn, row.message_id, self.clock.now()).await?;
                        Outcome::Sent { after_failures }
                    }
                    Err(error) if error.is_transient() => {
                        store::record_failure(conn, row.message_id, &error.to_string()).await?;
                        Outcome::Failed(error)
                    }
                    Err(error) => {
                        store::record_rejected(conn, &row, &error.to_string()).await?;
                        Outcome::Refused(error)
                    }
                })
            })
            .await
            .map_err(|error| transient(error, "while recording the email's delivery"))?;

        match outcome {
            Outcome::Sent { after_failures } => {
                self.metrics.sent.with_label_values(&[category]).inc();
                // requested_at is platform time; the histogram wants real seconds.
                let latency = self.clock.real_duration(self.clock.now() - request.requested_at);
                self.metrics.end_to_end_seconds.with_label_values(&[category]).observe(latency.as_secs_f64());
                tracing::info!(after_failures, "email sent");
                Ok(())
            }
            Outcome::Duplicate => {
                self.metrics.duplicates.with_label_values(&[category]).inc();
                tracing::info!("email already sent; request skipped");
                Ok(())
            }
            Outcome::Failed(error) => {
                self.metrics.failures.with_label_values(&[category]).inc();
                Err(HandlerError::Transient(anyhow::Error::new(error).context("while sending over SMTP")))
            }
            Outcome::Refused(error) => {
                self.metrics.rejected.with_label_values(&[category]).inc();
                Err(HandlerError::Rejected(error.to_string()))
            }
        }
    }
}

fn transient(error: impl std::fmt::Display, context: &'static str) -> HandlerError {
    HandlerError::Transient(anyhow::anyhow!("{error}").context(context))
}
