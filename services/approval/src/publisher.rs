//! Publishes a committed decision: the decision event, the credentials event
//! and the email request (credentials or rejection), then marks the form
//! published and forgets the sealed key.
//!
//! Runs after the decision's transaction commits, and again whenever the form
//! is redelivered while still unpublished, so a crash between the commit and
//! the acknowledgements only delays the events. Ids are derived from the
//! registration, so a repeated publication is recognisably the same: the
//! notifier sends each email message id once.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use mamochi_common::db::PgPool;
use mamochi_common::schema::{members, registrations};
use mamochi_events::publish::{PublishError, Publisher as KafkaPublisher};
use mamochi_events::topics;
use mamochi_events::*;
use uuid::Uuid;

use crate::emails;
use crate::store::NAMESPACE;

/// Why publishing failed (the caller retries).
#[derive(Debug, thiserror::Error)]
pub enum PublishStepError {
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
    #[error("connection pool: {0}")]
    Pool(String),
    #[error(transparent)]
    Publish(#[from] PublishError),
}

#[derive(Queryable, Selectable, Debug)]
#[diesel(table_name = registrations, check_for_backend(diesel::pg::Pg))]
struct DecisionRow {
    registration_id: Uuid,
    full_name: String,
    email: String,
    status: String,
    reason: Option<String>,
    decided_by: Option<String>,
    decided_at: Option<DateTime<Utc>>,
    member_id: Option<Uuid>,
    published_at: Option<DateTime<Utc>>,
}

#[derive(Queryable, Selectable, Debug)]
#[diesel(table_name = members, check_for_backend(diesel::pg::Pg))]
struct CredentialRow {
    api_key_id: String,
    pending_credentials: Option<Vec<u8>>,
    created_at: DateTime<Utc>,
}

/// Everything publishing needs.
#[derive(Clone)]
pub struct Publisher {
    pub pool: PgPool,
    pub kafka: KafkaPublisher,
    pub public_url: String,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher").field("public_url", &self.public_url).finish_non_exhaustive()
    }
}

impl Publisher {
    /// Publishes the form's decision if it has one that is not yet published.
    /// Returns whether anything was published.
    pub async fn publish_pending(&self, registration_id: Uuid, now: DateTime<Utc>) -> Result<bool, PublishStepError> {
        let mut conn = self.pool.get().await.map_err(|error| PublishStepError::Pool(error.to_string()))?;
        let Some(row) = registrations::table
            .find(registration_id)
            .select(DecisionRow::as_select())
            .first(&mut conn)
            .await
            .optional()?
        else {
            return Ok(false);
        };
        if row.published_at.is_some() || row.status == "received" {
            return Ok(false);
        }
        let key = RegistrationKey { registration_id };
        let outcome = match row.status.as_str() {
            "approved" => RegistrationOutcome::Approved,
            "rejected" => RegistrationOutcome::Rejected,
            _ => RegistrationOutcome::ManualReview,
        };
        let decision = RegistrationDecided {
            registration_id,
            decided_at: row.decided_at.unwrap_or(now),
            outcome,
            reason: row.reason.clone(),
            decided_by: row.decided_by.clone().unwrap_or_else(|| "rules".into()),
            member_id: row.member_id,
        };
        // The decision and what follows from it are sent together: one
        // batching window instead of one per event.
        let announce = self.kafka.send(&topics::REGISTRATION_DECISIONS, &key, &decision, None);
        let follow_up = async {
            match (outcome, row.member_id) {
                (RegistrationOutcome::Approved, Some(member_id)) => {
                    let credential =
                        members::table.find(member_id).select(CredentialRow::as_select()).first(&mut conn).await?;
                    let issued = CredentialsIssued {
                        member_id,
                        registration_id,
                        key_id: credential.api_key_id.clone(),
                        issued_at: credential.created_at,
                    };
                    let vendor = VendorKey { vendor_id: member_id };
                    let credentials = self.kafka.send(&topics::CREDENTIALS, &vendor, &issued, None);
                    match credential.pending_credentials {
                        Some(sealed) => {
                            let (subject, body) = emails::credentials(&row.full_name, &self.public_url);
                            let email = self.request_email(&row, "credentials", subject, body, Some(sealed), now);
                            tokio::try_join!(credentials, email)?;
                        }
                        None => {
                            credentials.await?;
                        }
                    }
                }
                (RegistrationOutcome::Rejected, _) => {
                    let reason = row.reason.clone().unwrap_or_default();
                    let (subject, body) = emails::rejection(&row.full_name, &reason);
                    self.request_email(&row, "rejection", subject, body, None, now).await?;
                }
                _ => {}
            }
            Ok::<_, PublishStepError>(())
        };
        let (announced, followed) = tokio::join!(announce, follow_up);
        announced?;
        followed?;

        diesel::update(registrations::table.find(registration_id))
            .set(registrations::published_at.eq(Some(now)))
            .execute(&mut conn)
            .await?;
        if let Some(member_id) = row.member_id {
            diesel::update(members::table.find(member_id))
                .set(members::pending_credentials.eq(None::<Vec<u8>>))
                .execute(&mut conn)
                .await?;
        }
        Ok(true)
    }

    async fn request_email(
        &self,
        row: &DecisionRow,
        category: &str,
        subject: String,
        body_text: String,
        sealed_secret: Option<Vec<u8>>,
        now: DateTime<Utc>,
    ) -> Result<(), PublishError> {
        let message_id = Uuid::new_v5(&NAMESPACE, format!("{category}:{}", row.registration_id).as_bytes());
        let request = EmailRequested {
            message_id,
            to: row.email.clone(),
            subject,
            body_text,
            category: category.to_string(),
            requested_at: now,
            sealed_secret,
        };
        self.kafka.send(&topics::EMAIL_REQUESTS, &MessageKey { message_id }, &request, None).await?;
        Ok(())
    }
}
