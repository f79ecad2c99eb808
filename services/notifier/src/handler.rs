//! Handles one email request: open its secret, claim its message id, send,
//! record the outcome.
//!
//! The claim (insert-if-new, then `SELECT … FOR UPDATE`), the SMTP
//! conversation and the status update happen inside one database
//! transaction, so a message id is sent by one handler at a time and a `sent`
//! row is never sent again. A transient failure (relay down, 4xx) is committed
//! (attempts + 1, last_error) and returned as a transient error: the shared
//! consumer loop retries the record with backoff, and this handler never
//! waits or loops itself. The failed attempt that exhausts the retry budget
//! (`notifier.max_attempts`, `notifier.give_up_after_secs`), a permanent
//! refusal (5xx) and a request that can never make a message are marked
//! `failed`, counted by reason, and rejected, so the loop parks the record in
//! the dead letters with the reason and the partition moves on.

use std::time::Instant;

use diesel_async::AsyncConnection;
use mamochi_common::clock::Clock;
use mamochi_common::db::PgPool;
use mamochi_common::seal::Sealer;
use mamochi_events::runner::{Envelope, Handler, HandlerError};
use mamochi_events::EmailRequested;
use tracing::instrument;

use crate::budget::RetryBudget;
use crate::compose::Email;
use crate::mailer::{MailError, Mailer};
use crate::metrics::{category_label, reason, Metrics};
use crate::store::{self, Claim, NewEmail};

/// What one delivery attempt came to, decided inside the transaction.
#[derive(Debug)]
enum Outcome {
    Sent {
        after_failures: i32,
    },
    Duplicate,
    /// Failed; worth another attempt.
    Failed(MailError),
    /// Failed for the last time: the row is `failed`. `reason` is a
    /// [`reason`] label, `detail` what goes to the dead letters.
    GaveUp {
        transient: bool,
        reason: &'static str,
        detail: String,
    },
}

/// The notifier's record handler.
pub struct EmailHandler<M> {
    pub pool: PgPool,
    pub mailer: M,
    pub sealer: Sealer,
    pub clock: Clock,
    pub metrics: Metrics,
    /// When a transiently failing email is given up.
    pub budget: RetryBudget,
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
        let mut conn =
            self.pool.get().await.map_err(|error| transient(error, "while getting a database connection"))?;

        let secret = match request.sealed_secret.as_deref().map(|sealed| self.sealer.open(sealed)).transpose() {
            Ok(secret) => secret,
            Err(error) => {
                // The reason names the failure, never the bytes.
                let detail = format!("sealed secret does not open: {error}");
                store::record_rejected(&mut conn, &row, &detail)
                    .await
                    .map_err(|error| transient(error, "while recording a rejected email"))?;
                self.metrics.failed.with_label_values(&[category, reason::INVALID]).inc();
                return Err(HandlerError::Rejected(detail));
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
                        let failed = u32::try_from(after_failures).unwrap_or(0).saturating_add(1);
                        // requested_at is platform time; the budget is in real time.
                        let waited = self.clock.real_duration(self.clock.now() - request.requested_at);
                        match self.budget.after_failure(failed, waited) {
                            None => {
                                store::record_failure(conn, row.message_id, &error.to_string()).await?;
                                Outcome::Failed(error)
                            }
                            Some(exhausted) => {
                                let detail = format!(
                                    "gave up after {failed} failed attempts over {}s: {error}",
                                    waited.as_secs()
                                );
                                store::record_given_up(conn, row.message_id, &detail).await?;
                                Outcome::GaveUp { transient: true, reason: exhausted.label(), detail }
                            }
                        }
                    }
                    Err(MailError::Compose(error)) => {
                        let detail = error.to_string();
                        store::record_rejected(conn, &row, &detail).await?;
                        Outcome::GaveUp { transient: false, reason: reason::INVALID, detail }
                    }
                    Err(error) => {
                        let detail = error.to_string();
                        store::record_given_up(conn, row.message_id, &detail).await?;
                        Outcome::GaveUp { transient: false, reason: reason::REFUSED, detail }
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
            Outcome::GaveUp { transient, reason, detail } => {
                if transient {
                    self.metrics.failures.with_label_values(&[category]).inc();
                }
                self.metrics.failed.with_label_values(&[category, reason]).inc();
                tracing::warn!(reason, error = %detail, "email marked failed; parked");
                Err(HandlerError::Rejected(detail))
            }
        }
    }
}

fn transient(error: impl std::fmt::Display, context: &'static str) -> HandlerError {
    HandlerError::Transient(anyhow::anyhow!("{error}").context(context))
}
