//! Publishes stored statements: a `WeeklyStatementIssued` on the statements
//! topic and the statement email request, then marks the statement published.
//!
//! Guarantee: every statement is published at least once and recognisably
//! the same every time. Each statement is published inside a transaction
//! that holds its row (`FOR UPDATE SKIP LOCKED`, so two publishers never work
//! on the same statement at once); both records are acknowledged by Kafka
//! before `published_at` is set and committed. A crash in between publishes
//! again with the same statement id and the same email message id (UUID v5 of
//! `statement-email:<statement_id>`), which consumers and the notifier dedupe:
//! the vendor gets one email.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use mamochi_common::schema::statements;
use mamochi_events::publish::{PublishError, Publisher as KafkaPublisher};
use mamochi_events::{topics, EmailRequested, MessageKey, VendorKey, WeeklyStatementIssued};
use uuid::Uuid;

use crate::statement::{self, Figures};
use crate::store::PendingStatement;
use crate::week::Week;

/// Email category of statements (a metrics label for the notifier).
pub const EMAIL_CATEGORY: &str = "statement";

/// Why a statement was not published (the caller retries later).
#[derive(Debug, thiserror::Error)]
pub enum PublishStepError {
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error("statement {0} names an unreadable week {1:?}")]
    BadWeek(Uuid, String),
}

/// The Kafka side of publishing.
#[derive(Debug, Clone)]
pub struct StatementPublisher {
    pub kafka: KafkaPublisher,
}

/// The two records a statement becomes.
#[derive(Debug, Clone, PartialEq)]
pub struct StatementRecords {
    pub issued: WeeklyStatementIssued,
    /// `None` when the vendor is not a member (no address to write to).
    pub email: Option<EmailRequested>,
}

/// Builds the records of `pending`; pure apart from `requested_at`.
pub fn records(pending: &PendingStatement, requested_at: DateTime<Utc>) -> Result<StatementRecords, PublishStepError> {
    let week = Week::parse(&pending.iso_week)
        .ok_or_else(|| PublishStepError::BadWeek(pending.statement_id, pending.iso_week.clone()))?;
    let issued = WeeklyStatementIssued {
        statement_id: pending.statement_id,
        vendor_id: pending.vendor_id,
        iso_week: week.label.clone(),
        week_start: week.start,
        week_end: week.end,
        sales_count: pending.sales_count,
        units: pending.units,
        earnings_clp: pending.earnings_clp,
        average_ticket_clp: pending.average_ticket_clp,
        issued_at: pending.issued_at,
    };
    let email = pending.email.as_ref().map(|to| {
        let figures = Figures {
            sales_count: pending.sales_count,
            units: pending.units,
            earnings_clp: pending.earnings_clp,
            average_ticket_clp: pending.average_ticket_clp,
        };
        let (subject, body_text) = statement::email(pending.full_name.as_deref().unwrap_or("socio"), &week, &figures);
        EmailRequested {
            message_id: statement::email_message_id(pending.statement_id),
            to: to.clone(),
            subject,
            body_text,
            category: EMAIL_CATEGORY.to_string(),
            requested_at,
            sealed_secret: None,
        }
    });
    Ok(StatementRecords { issued, email })
}

impl StatementPublisher {
    /// Publishes one statement unless another publisher holds it or it is
    /// already published; `true` if this call published it.
    pub async fn publish_one(
        &self,
        conn: &mut AsyncPgConnection,
        pending: &PendingStatement,
        published_at: DateTime<Utc>,
    ) -> Result<bool, PublishStepError> {
        let records = records(pending, Utc::now())?;
        if records.email.is_none() {
            tracing::warn!(vendor = %pending.vendor_id, week = %pending.iso_week, "statement of a vendor who is not a member: no email");
        }
        conn.transaction::<_, PublishStepError, _>(async |conn| {
            let held: Option<Uuid> = statements::table
                .find(pending.statement_id)
                .filter(statements::published_at.is_null())
                .select(statements::statement_id)
                .for_update()
                .skip_locked()
                .first(conn)
                .await
                .optional()?;
            if held.is_none() {
                return Ok(false);
            }
            let vendor_key = VendorKey { vendor_id: pending.vendor_id };
            self.kafka.send(&topics::STATEMENTS, &vendor_key, &records.issued, None).await?;
            if let Some(email) = &records.email {
                let message_key = MessageKey { message_id: email.message_id };
                self.kafka.send(&topics::EMAIL_REQUESTS, &message_key, email, None).await?;
            }
            diesel::update(statements::table.find(pending.statement_id))
                .set(statements::published_at.eq(published_at))
                .execute(conn)
                .await?;
            Ok(true)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(email: Option<&str>) -> PendingStatement {
        let vendor_id = Uuid::from_u128(42);
        PendingStatement {
            statement_id: statement::statement_id(vendor_id, "2026-W36"),
            vendor_id,
            iso_week: "2026-W36".into(),
            sales_count: 3,
            units: 4,
            earnings_clp: 6_001,
            average_ticket_clp: 2_000,
            issued_at: DateTime::from_timestamp_millis(1_789_000_000_000).expect("instant"),
            email: email.map(str::to_string),
            full_name: Some("Juan Soto".into()),
        }
    }

    #[test]
    fn a_statement_becomes_an_event_and_an_email_with_derived_ids() {
        let pending = pending(Some("juan@example.cl"));
        let first = records(&pending, Utc::now()).expect("records");
        let again = records(&pending, Utc::now()).expect("records");

        assert_eq!(first.issued, again.issued, "the statement event is the same every time");
        assert_eq!(first.issued.week_end - first.issued.week_start, chrono::Duration::hours(167), "a DST week");
        let email = first.email.expect("member has an address");
        assert_eq!(email.message_id, statement::email_message_id(pending.statement_id));
        assert_eq!(Some(email.message_id), again.email.map(|e| e.message_id));
        assert_eq!(email.to, "juan@example.cl");
        assert_eq!(email.category, "statement");
        assert!(email.body_text.contains("Ganancias: $6.001"));
    }

    #[test]
    fn a_vendor_without_membership_gets_no_email() {
        assert!(records(&pending(None), Utc::now()).expect("records").email.is_none());
    }
}
