//! What the service does with a batch of forms and with each staff review:
//! decide in one transaction, then publish the decisions' events.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use mamochi_common::clock::Clock;
use mamochi_common::db::PgPool;
use mamochi_events::runner::{Envelope, Handler, HandlerError};
use mamochi_events::{RegistrationReviewed, RegistrationSubmitted};
use tracing::instrument;
use uuid::Uuid;

use crate::metrics::Metrics;
use crate::publisher::{DecisionPublisher, PublishStepError};
use crate::rules::Decision;
use crate::store::{self, Applied, Policy, StoreError};

/// Shared by both handlers.
#[derive(Clone)]
pub struct Approval {
    pub pool: PgPool,
    pub policy: Policy,
    pub publisher: Arc<DecisionPublisher>,
    pub clock: Clock,
    pub metrics: Metrics,
}

impl std::fmt::Debug for Approval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Approval").field("clock", &self.clock).finish_non_exhaustive()
    }
}

fn transient(error: impl std::fmt::Display) -> HandlerError {
    HandlerError::Transient(anyhow::anyhow!("{error}"))
}

fn outcome_label(decision: &Decision) -> &'static str {
    match decision {
        Decision::Approved => "approved",
        Decision::Rejected(_) => "rejected",
        Decision::ManualReview(_) => "manual_review",
    }
}

/// Why a batch of forms was not finished; the caller retries the batch.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("connection pool: {0}")]
    Pool(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Publish(#[from] PublishStepError),
}

/// A batch whose decisions committed and whose events are still to be sent.
#[derive(Debug, Clone)]
pub struct Unpublished {
    /// Every form of the batch, redelivered ones included.
    pub ids: Vec<Uuid>,
    pub decided_at: DateTime<Utc>,
}

impl Approval {
    /// Decides a batch of forms (in the order given) in one transaction. What
    /// it returns must then go to [`Approval::publish_batch`].
    #[instrument(name = "decide_forms", skip_all, fields(forms = forms.len(), paid = forms.iter().filter(|form| form.paid).count()))]
    pub async fn decide_batch(&self, forms: &[RegistrationSubmitted]) -> Result<Unpublished, BatchError> {
        let now = self.clock.now();
        let applied = {
            let mut conn = self.pool.get().await.map_err(|error| BatchError::Pool(error.to_string()))?;
            store::decide_forms(&mut conn, forms, &self.policy, now).await?
        };
        for (form, applied) in forms.iter().zip(&applied) {
            let lane = if form.paid { "paid" } else { "standard" };
            match applied {
                Applied::Decided(decision) => {
                    self.metrics.decisions.with_label_values(&[outcome_label(decision), lane]).inc();
                    let waited = (now - form.submitted_at).max(chrono::Duration::zero());
                    let waited = self.clock.real_duration(waited).as_secs_f64();
                    self.metrics.wait_seconds.with_label_values(&[lane]).observe(waited);
                    tracing::debug!(registration_id = %form.registration_id, decision = outcome_label(decision), lane, "form decided");
                }
                Applied::Duplicate => self.metrics.duplicates.with_label_values(&["form"]).inc(),
                Applied::AlreadyDecided | Applied::UnknownRegistration => {}
            }
        }
        Ok(Unpublished { ids: forms.iter().map(|form| form.registration_id).collect(), decided_at: now })
    }

    /// Publishes every decision of a decided batch not yet published — also
    /// those of redelivered forms, whose publication a crash may have cut
    /// short.
    #[instrument(name = "publish_decisions", skip_all, fields(forms = batch.ids.len()))]
    pub async fn publish_batch(&self, batch: &Unpublished) -> Result<(), BatchError> {
        self.publisher.publish_pending_many(&batch.ids, batch.decided_at).await?;
        Ok(())
    }
}

impl Handler<RegistrationReviewed> for Approval {
    #[instrument(name = "apply_review", skip_all, fields(topic = %envelope.topic, partition = envelope.partition, offset = envelope.offset, registration_id = %envelope.value.registration_id))]
    async fn handle(&self, envelope: Envelope<RegistrationReviewed>) -> Result<(), HandlerError> {
        let review = envelope.value;
        let now = self.clock.now();
        let applied = {
            let mut conn = self.pool.get().await.map_err(transient)?;
            store::apply_review(&mut conn, &review, &self.policy, now)
                .await
                // The one error policy: a value or constraint the database
                // refuses parks the review; an outage is retried.
                .map_err(|error| HandlerError::from(crate::intake::classify(&BatchError::Store(error))))?
        };
        match &applied {
            Applied::Decided(decision) => {
                self.metrics.decisions.with_label_values(&[outcome_label(decision), "staff"]).inc();
                // The label only: a staff reason is free text and may quote
                // the applicant's personal data.
                tracing::info!(decision = outcome_label(decision), reviewer = %review.reviewer, "staff review applied");
            }
            Applied::UnknownRegistration => {
                return Err(HandlerError::Rejected(format!(
                    "review of unknown registration {}",
                    review.registration_id
                )));
            }
            Applied::Duplicate => self.metrics.duplicates.with_label_values(&["review"]).inc(),
            Applied::AlreadyDecided => tracing::warn!("review of a form already decided; ignored"),
        }
        self.publisher.publish_pending(review.registration_id, now).await.map_err(transient)?;
        Ok(())
    }
}
