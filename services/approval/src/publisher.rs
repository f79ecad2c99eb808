//! Publishes a committed decision: the decision event, the credentials event
//! and the email request (credentials or rejection), then marks the form
//! published and forgets the sealed key.
//!
//! Runs after the decision's transaction commits (for a batch: after the
//! batch's transaction, every form's events sent at once and awaited
//! together), and again whenever the form is redelivered while still
//! unpublished, so a crash between the commit and the acknowledgements only
//! delays the events; a form is marked published only once all its events
//! are acknowledged. Ids are derived from the
//! registration, so a repeated publication is recognisably the same: the
//! notifier sends each email message id once.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, Text, Timestamptz, Uuid as SqlUuid};
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
pub struct DecisionPublisher {
    pub pool: PgPool,
    pub kafka: KafkaPublisher,
    pub public_url: String,
}

/// Marks forms published, but only if their decision is still the one that
/// was published (a staff review may have replaced it meanwhile; the review's
/// own publication covers the new one), and forgets the sealed keys of the
/// members they created.
const MARK_PUBLISHED: &str = "
WITH published AS (
    UPDATE registrations AS r
       SET published_at = $1
      FROM unnest($2::uuid[], $3::text[]) AS p(registration_id, status)
     WHERE r.registration_id = p.registration_id AND r.status = p.status AND r.published_at IS NULL
 RETURNING r.member_id)
UPDATE members SET pending_credentials = NULL
 WHERE member_id IN (SELECT member_id FROM published WHERE member_id IS NOT NULL)";

/// The forms whose events were all acknowledged, with the status published.
#[derive(Debug, Default)]
struct Published {
    ids: Vec<Uuid>,
    statuses: Vec<String>,
}

impl std::fmt::Debug for DecisionPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecisionPublisher").field("public_url", &self.public_url).finish_non_exhaustive()
    }
}

impl DecisionPublisher {
    /// Publishes the form's decision if it has one that is not yet published.
    /// Returns whether anything was published.
    pub async fn publish_pending(&self, registration_id: Uuid, now: DateTime<Utc>) -> Result<bool, PublishStepError> {
        Ok(self.publish_pending_many(&[registration_id], now).await? > 0)
    }

    /// Publishes every decision among these forms that is not yet published:
    /// all their events are sent at once and awaited together, then the forms
    /// whose events were all acknowledged are marked published (and their
    /// sealed keys forgotten) in one statement. Returns how many were
    /// published; if any failed, the others are still marked and the first
    /// failure is returned, so the caller retries only what is left.
    pub async fn publish_pending_many(&self, ids: &[Uuid], now: DateTime<Utc>) -> Result<usize, PublishStepError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let (rows, credentials) = {
            let mut conn = self.pool.get().await.map_err(|error| PublishStepError::Pool(error.to_string()))?;
            let rows: Vec<DecisionRow> = registrations::table
                .filter(registrations::registration_id.eq_any(ids))
                .filter(registrations::published_at.is_null())
                .filter(registrations::status.ne("received"))
                .select(DecisionRow::as_select())
                .load(&mut conn)
                .await?;
            let member_ids: Vec<Uuid> =
                rows.iter().filter(|row| row.status == "approved").filter_map(|row| row.member_id).collect();
            let credentials: HashMap<Uuid, CredentialRow> = if member_ids.is_empty() {
                HashMap::new()
            } else {
                members::table
                    .filter(members::member_id.eq_any(&member_ids))
                    .select((members::member_id, CredentialRow::as_select()))
                    .load::<(Uuid, CredentialRow)>(&mut conn)
                    .await?
                    .into_iter()
                    .collect()
            };
            (rows, credentials)
        };
        if rows.is_empty() {
            return Ok(0);
        }
        // The connection goes back to the pool while Kafka acknowledges.
        let sent = futures::future::join_all(rows.iter().map(|row| {
            let credential = row.member_id.and_then(|member_id| credentials.get(&member_id));
            self.publish_one(row, credential, now)
        }))
        .await;
        let mut published = Published::default();
        let mut first_error = None;
        for (row, result) in rows.iter().zip(sent) {
            match result {
                Ok(()) => {
                    published.ids.push(row.registration_id);
                    published.statuses.push(row.status.clone());
                }
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        let count = published.ids.len();
        if count > 0 {
            let mut conn = self.pool.get().await.map_err(|error| PublishStepError::Pool(error.to_string()))?;
            diesel::sql_query(MARK_PUBLISHED)
                .bind::<Timestamptz, _>(now)
                .bind::<Array<SqlUuid>, _>(published.ids)
                .bind::<Array<Text>, _>(published.statuses)
                .execute(&mut conn)
                .await?;
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(count),
        }
    }

    /// Sends one decision's events, concurrently, and waits for all of them.
    async fn publish_one(
        &self,
        row: &DecisionRow,
        credential: Option<&CredentialRow>,
        now: DateTime<Utc>,
    ) -> Result<(), PublishStepError> {
        let registration_id = row.registration_id;
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
                    let credential = credential.ok_or(diesel::result::Error::NotFound)?;
                    let issued = CredentialsIssued {
                        member_id,
                        registration_id,
                        key_id: credential.api_key_id.clone(),
                        issued_at: credential.created_at,
                    };
                    let vendor = VendorKey { vendor_id: member_id };
                    let credentials = self.kafka.send(&topics::CREDENTIALS, &vendor, &issued, None);
                    match &credential.pending_credentials {
                        Some(sealed) => {
                            let (subject, body) = emails::credentials(&row.full_name, &self.public_url);
                            let email =
                                self.request_email(row, "credentials", subject, body, Some(sealed.clone()), now);
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
                    self.request_email(row, "rejection", subject, body, None, now).await?;
                }
                _ => {}
            }
            Ok::<_, PublishStepError>(())
        };
        let (announced, followed) = tokio::join!(announce, follow_up);
        announced?;
        followed?;
        Ok(())
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
