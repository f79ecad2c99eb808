//! The daily summary (`accounting.daily_summary`, off by default): once a
//! Santiago day is over plus the grace period, every vendor who sold that day
//! gets one email with the day's figures.
//!
//! A day is due like a week ([`crate::closer`]): when the close horizon
//! ([`crate::horizon`]) minus the grace period has passed its end, so a
//! backlog of the day's sales is applied before it is summed. Closing the
//! due days is one transaction: it sums `daily_sales` into one
//! `daily_summaries` row per vendor and day (a second insert of the same
//! vendor and day is ignored) and moves the group's summary mark, a row of
//! `accounting_watermarks` (topic [`MARK`], partition 0) whose `event_time`
//! is the end of the last day closed. Without a mark (the feature just
//! turned on, or a new group) the first pass only sets it: the past is not
//! emailed. Publishing follows the statements' pattern ([`crate::publisher`]):
//! each unpublished row is held `FOR UPDATE SKIP LOCKED`, its email request
//! acknowledged by Kafka before `published_at` commits, with a message id
//! derived from vendor and date (UUID v5), so a crash re-sends the same
//! message and the notifier sends it once.
//!
//! Guarantee: at most one summary per vendor and day, emailed at least once
//! and delivered once. Limit: a sale applied after its day closed (later
//! than the grace period) is in `daily_sales` and the API's figures, not in
//! the summary already sent.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Date, Nullable, SmallInt, Text, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use mamochi_events::publish::{PublishError, Publisher as KafkaPublisher};
use mamochi_events::{topics, EmailRequested, MessageKey};
use mamochi_rules::day::Day;
use uuid::Uuid;

use crate::statement::{average_ticket, format_clp, NAMESPACE};

/// Email category of daily summaries (a metrics label for the notifier).
pub const EMAIL_CATEGORY: &str = "daily_summary";
/// The `topic` of the summary mark in `accounting_watermarks` (a name of
/// this service's own, not a Kafka topic).
pub const MARK: &str = "accounting.daily-summaries";

/// Why a summary step failed (the closer retries at its next pass).
#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
    #[error(transparent)]
    Publish(#[from] PublishError),
}

/// The summary email's message id: v5 of `daily-summary:<vendor>:<date>`.
pub fn email_message_id(vendor: Uuid, date: NaiveDate) -> Uuid {
    Uuid::new_v5(&NAMESPACE, format!("daily-summary:{vendor}:{}", date.format("%Y-%m-%d")).as_bytes())
}

/// The last local date that is over at `due_before` (the horizon minus the
/// grace period): the day before the one containing it.
pub fn last_due_date(due_before: DateTime<Utc>) -> Option<NaiveDate> {
    Day::containing(due_before).date.pred_opt()
}

/// A day's figures as the summary states them.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct PendingSummary {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub vendor_id: Uuid,
    #[diesel(sql_type = Date)]
    pub local_date: NaiveDate,
    #[diesel(sql_type = BigInt)]
    pub sales: i64,
    #[diesel(sql_type = BigInt)]
    pub units: i64,
    #[diesel(sql_type = BigInt)]
    pub earnings_clp: i64,
    #[diesel(sql_type = Nullable<SmallInt>)]
    pub busiest_hour: Option<i16>,
    #[diesel(sql_type = Nullable<Text>)]
    pub email: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub full_name: Option<String>,
}

/// Subject and plain-text body of the summary email, in Spanish.
pub fn email(full_name: &str, summary: &PendingSummary) -> (String, String) {
    let date = summary.local_date.format("%Y-%m-%d");
    let subject = format!("MAMOCHI: resumen del día {date}");
    let busiest = summary.busiest_hour.map_or_else(|| "—".to_string(), |hour| format!("{hour:02}:00"));
    let body = format!(
        "Hola {full_name}:\n\n\
         Este es el resumen de tus ventas del día {day} (hora de Chile continental).\n\n\
         Número de ventas: {sales}\n\
         Porciones vendidas: {units}\n\
         Ganancias: {earnings}\n\
         Ticket promedio: {average}\n\
         Hora con más ventas: {busiest}\n\n\
         Una venta de este día que llegue tarde se suma a tus cifras del día, no a este correo.\n\n\
         Gracias por ser parte del gremio,\n\
         MAMOCHI — Maestros Motehuesilleros de Chile\n",
        day = summary.local_date.format("%d-%m-%Y"),
        sales = format_clp(summary.sales).replacen('$', "", 1),
        units = format_clp(summary.units).replacen('$', "", 1),
        earnings = format_clp(summary.earnings_clp),
        average = format_clp(average_ticket(summary.earnings_clp, summary.sales)),
    );
    (subject, body)
}

/// The email request of `summary`; `None` when the vendor is not a member.
pub fn request(summary: &PendingSummary, requested_at: DateTime<Utc>) -> Option<EmailRequested> {
    let to = summary.email.clone()?;
    let (subject, body_text) = email(summary.full_name.as_deref().unwrap_or("socio"), summary);
    Some(EmailRequested {
        message_id: email_message_id(summary.vendor_id, summary.local_date),
        to,
        subject,
        body_text,
        category: EMAIL_CATEGORY.to_string(),
        requested_at,
        sealed_secret: None,
    })
}

#[derive(QueryableByName)]
struct MarkRow {
    #[diesel(sql_type = Timestamptz)]
    event_time: DateTime<Utc>,
}

/// Closes every day after `group`'s mark up to `last_due`, in one
/// transaction: one summary row per vendor and day with sales, and the mark
/// moved to the end of `last_due`. Without a mark it only sets it. Returns
/// how many summaries it stored.
pub async fn close_days(
    conn: &mut AsyncPgConnection,
    group: &str,
    last_due: NaiveDate,
    closed_at: DateTime<Utc>,
) -> Result<usize, SummaryError> {
    let last_end = Day::of(last_due).end;
    conn.transaction::<_, SummaryError, _>(async |conn| {
        let mark: Option<MarkRow> = diesel::sql_query(
            "SELECT event_time FROM accounting_watermarks \
             WHERE consumer_group = $1 AND topic = $2 AND partition = 0 FOR UPDATE",
        )
        .bind::<Text, _>(group)
        .bind::<Text, _>(MARK)
        .get_result(conn)
        .await
        .optional()?;
        let stored = match mark {
            None => 0,
            Some(mark) => {
                let first = Day::containing(mark.event_time).date;
                if first > last_due {
                    return Ok(0);
                }
                diesel::sql_query(
                    "INSERT INTO daily_summaries \
                       (vendor_id, local_date, sales, units, earnings_clp, busiest_hour, closed_at) \
                     SELECT vendor_id, local_date, \
                            LEAST(sum(sales), 9223372036854775807)::int8, \
                            LEAST(sum(units), 9223372036854775807)::int8, \
                            LEAST(sum(earnings_clp), 9223372036854775807)::int8, \
                            (array_agg(local_hour ORDER BY sales DESC, local_hour))[1], $3 \
                     FROM daily_sales \
                     WHERE local_date BETWEEN $1 AND $2 AND sales > 0 \
                     GROUP BY vendor_id, local_date \
                     ORDER BY vendor_id, local_date \
                     ON CONFLICT (vendor_id, local_date) DO NOTHING",
                )
                .bind::<Date, _>(first)
                .bind::<Date, _>(last_due)
                .bind::<Timestamptz, _>(closed_at)
                .execute(conn)
                .await?
            }
        };
        diesel::sql_query(
            "INSERT INTO accounting_watermarks (consumer_group, topic, partition, event_time, next_offset) \
             VALUES ($1, $2, 0, $3, 0) \
             ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET \
               event_time = GREATEST(accounting_watermarks.event_time, EXCLUDED.event_time), updated_at = now()",
        )
        .bind::<Text, _>(group)
        .bind::<Text, _>(MARK)
        .bind::<Timestamptz, _>(last_end)
        .execute(conn)
        .await?;
        Ok(stored)
    })
    .await
}

/// Up to `limit` unpublished summaries, oldest day first, with the member's
/// address if known.
pub async fn pending(conn: &mut AsyncPgConnection, limit: i64) -> Result<Vec<PendingSummary>, SummaryError> {
    Ok(diesel::sql_query(
        "SELECT s.vendor_id, s.local_date, s.sales, s.units, s.earnings_clp, s.busiest_hour, \
                m.email, m.full_name \
         FROM daily_summaries s LEFT JOIN members m ON m.member_id = s.vendor_id \
         WHERE s.published_at IS NULL ORDER BY s.closed_at, s.local_date, s.vendor_id LIMIT $1",
    )
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?)
}

/// Sends one summary's email request unless another publisher holds it or
/// it is already published, then marks it published; `true` if this call
/// did. A vendor who is not a member gets no email; the row is marked all
/// the same.
pub async fn publish_one(
    conn: &mut AsyncPgConnection,
    kafka: &KafkaPublisher,
    summary: &PendingSummary,
    published_at: DateTime<Utc>,
) -> Result<bool, SummaryError> {
    let email = request(summary, Utc::now());
    conn.transaction::<_, SummaryError, _>(async |conn| {
        let held: Vec<MarkRow> = diesel::sql_query(
            "SELECT closed_at AS event_time FROM daily_summaries \
             WHERE vendor_id = $1 AND local_date = $2 AND published_at IS NULL \
             FOR UPDATE SKIP LOCKED",
        )
        .bind::<diesel::sql_types::Uuid, _>(summary.vendor_id)
        .bind::<Date, _>(summary.local_date)
        .load(conn)
        .await?;
        if held.is_empty() {
            return Ok(false);
        }
        if let Some(email) = &email {
            kafka.send(&topics::EMAIL_REQUESTS, &MessageKey { message_id: email.message_id }, email, None).await?;
        }
        diesel::sql_query("UPDATE daily_summaries SET published_at = $3 WHERE vendor_id = $1 AND local_date = $2")
            .bind::<diesel::sql_types::Uuid, _>(summary.vendor_id)
            .bind::<Date, _>(summary.local_date)
            .bind::<Timestamptz, _>(published_at)
            .execute(conn)
            .await?;
        Ok(true)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("date")
    }

    fn summary(email: Option<&str>) -> PendingSummary {
        PendingSummary {
            vendor_id: Uuid::from_u128(9),
            local_date: date("2026-04-04"),
            sales: 7,
            units: 11,
            earnings_clp: 12_900,
            busiest_hour: Some(23),
            email: email.map(str::to_string),
            full_name: Some("Rosa Pérez".into()),
        }
    }

    #[test]
    fn the_message_id_is_derived_from_vendor_and_date_only() {
        let vendor = Uuid::from_u128(9);
        let id = email_message_id(vendor, date("2026-04-04"));
        assert_eq!(id, email_message_id(vendor, date("2026-04-04")));
        assert_ne!(id, email_message_id(vendor, date("2026-04-05")));
        assert_ne!(id, email_message_id(Uuid::from_u128(10), date("2026-04-04")));
        assert_eq!(id.get_version_num(), 5);
    }

    #[test]
    fn the_email_is_spanish_and_states_the_days_figures() {
        let email = request(&summary(Some("rosa@example.cl")), Utc::now()).expect("a member");
        assert_eq!(email.subject, "MAMOCHI: resumen del día 2026-04-04");
        assert_eq!(email.category, "daily_summary");
        assert_eq!(email.to, "rosa@example.cl");
        assert!(email.body_text.starts_with("Hola Rosa Pérez:"));
        for line in [
            "del día 04-04-2026",
            "Número de ventas: 7\n",
            "Porciones vendidas: 11\n",
            "Ganancias: $12.900\n",
            "Ticket promedio: $1.843\n",
            "Hora con más ventas: 23:00\n",
        ] {
            assert!(email.body_text.contains(line), "{line}: {}", email.body_text);
        }
        assert!(request(&summary(None), Utc::now()).is_none(), "no address, no email");
    }

    #[test]
    fn a_day_is_due_once_its_end_has_passed() {
        let at = |text: &str| DateTime::parse_from_rfc3339(text).expect("rfc3339").with_timezone(&Utc);
        // 2026-04-04 ends at 04:00 UTC on the 5th (25 hours).
        assert_eq!(last_due_date(at("2026-04-05T03:59:59Z")), Some(date("2026-04-03")));
        assert_eq!(last_due_date(at("2026-04-05T04:00:00Z")), Some(date("2026-04-04")));
    }
}
