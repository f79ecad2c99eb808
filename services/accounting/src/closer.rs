//! Closes weeks and publishes their statements.
//!
//! A vendor's week is due when the close horizon ([`crate::horizon`]) passes
//! its end plus the grace period: platform time (the later of the clock and
//! the latest sale time any instance applied) has passed it, and every sales
//! partition has either been read past it or has nothing left to read. So a
//! backlog of last week's sales (accounting was down across the boundary,
//! say) holds the week open until it is applied, whatever the clock says.
//! Every `close_check_interval_secs` real seconds, and whenever sale time
//! moves forward (but at most once a second), a pass closes every due week — weeks with sales, and every
//! member's weeks since they joined even without sales — oldest first per
//! vendor, each in its own transaction, then publishes every statement not
//! yet published.
//!
//! Every instance of the group runs this loop; they all see the same horizon
//! and racing closers are harmless (why: [`crate::horizon`]).
//!
//! Guarantee: exactly one statement per vendor and week ([`store::close_week`]
//! is a no-op on a closed week and the statement insert is keyed by vendor
//! and week), published at least once with the same ids every time
//! ([`crate::publisher`]). A failed pass changes nothing it did not commit and
//! is simply run again; if the group's positions cannot be read, the pass
//! closes nothing and only publishes.
//!
//! With `accounting.daily_summary` on, a pass then closes the Santiago days
//! due by the same horizon and grace and publishes their summaries
//! ([`crate::summary`]).

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use diesel_async::AsyncPgConnection;
use mamochi_common::db::PgPool;
use mamochi_common::shutdown::Shutdown;
use tokio::sync::Notify;

use crate::horizon::{self, GroupPositions};
use crate::metrics::Metrics;
use crate::platform::PlatformTime;
use crate::publisher::StatementPublisher;
use crate::store::{self, StoreError};
use crate::summary;
use crate::week::Week;

/// Most weeks closed per member in one pass (a member who joined long ago
/// catches up over several passes instead of one huge one).
const MAX_WEEKS_PER_MEMBER: usize = 520;
/// Shortest real time between the starts of two passes.
const MIN_PASS_SPACING: std::time::Duration = std::time::Duration::from_secs(1);
/// Statements read per query while publishing.
const PUBLISH_PAGE: i64 = 200;

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassReport {
    pub closed: usize,
    pub published: usize,
    /// Daily summaries stored and published ([`crate::summary`]).
    pub days_summarised: usize,
    pub summaries_published: usize,
}

/// The closing and publishing loop.
#[derive(Clone)]
pub struct Closer {
    pub pool: PgPool,
    pub publisher: StatementPublisher,
    pub platform: Arc<PlatformTime>,
    pub grace: Duration,
    /// Real time between passes.
    pub interval: std::time::Duration,
    /// Whether due days are summarised and emailed (`accounting.daily_summary`).
    pub daily_summary: bool,
    pub metrics: Metrics,
    pub wakeup: Arc<Notify>,
    /// The group's positions on the sales topic, for the close horizon.
    pub positions: GroupPositions,
}

impl std::fmt::Debug for Closer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Closer").field("grace", &self.grace).field("interval", &self.interval).finish_non_exhaustive()
    }
}

impl Closer {
    /// Runs passes until `shutdown` is cancelled.
    pub async fn run(&self, shutdown: &Shutdown) {
        loop {
            let started = tokio::time::Instant::now();
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                result = self.pass() => match result {
                    Ok(report) => {
                        self.metrics.closing_passes.inc();
                        if report != PassReport::default() {
                            tracing::info!(
                                closed = report.closed,
                                published = report.published,
                                days_summarised = report.days_summarised,
                                summaries_published = report.summaries_published,
                                "closing pass"
                            );
                        }
                    }
                    Err(error) => tracing::warn!(error = format!("{error:#}"), "closing pass failed; retrying at the next check"),
                },
            }
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                () = self.wakeup.notified() => {},
                () = tokio::time::sleep(self.interval) => {},
            }
            // Sale time moves with every batch under load; a pass per batch
            // would spend the database on re-reading open weeks. Passes woken
            // that way are spaced by MIN_PASS_SPACING (a week's grace lasts
            // far longer, even on the demo's accelerated clock).
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep_until(started + MIN_PASS_SPACING) => {},
            }
        }
    }

    /// One pass: close every due week, then publish every pending statement.
    #[tracing::instrument(name = "closing_pass", skip_all)]
    pub async fn pass(&self) -> anyhow::Result<PassReport> {
        let mut conn = self
            .pool
            .get()
            .await
            .map_err(|error| StoreError::Pool(error.to_string()))
            .context("while getting a database connection")?;
        let stored = store::watermarks(&mut conn, &self.positions.group)
            .await
            .context("while reading the partitions' watermarks")?;
        // Sale time applied by any instance of the group counts as platform time.
        for watermark in &stored {
            self.platform.observe(watermark.event_time);
        }
        let now = self.platform.now();
        self.metrics.platform_time_ms.set(now.timestamp_millis());
        let closable = match self.positions.read(&stored).await {
            Ok(partitions) => horizon::horizon(now, &partitions),
            Err(error) => {
                tracing::warn!(%error, "could not read the group's positions; closing nothing this pass");
                None
            }
        };
        self.metrics.close_horizon_ms.set(closable.map_or(0, |at| at.timestamp_millis()));
        let last_due =
            closable.and_then(|at| at.checked_sub_signed(self.grace)).map(|at| Week::containing(at).previous());

        let closings = match &last_due {
            Some(last_due) => store::due_closings(&mut conn, last_due, MAX_WEEKS_PER_MEMBER)
                .await
                .context("while listing due weeks")?,
            None => Vec::new(),
        };
        let mut report = PassReport::default();
        for closing in &closings {
            let started = Instant::now();
            let closed = store::close_week(&mut conn, closing, now)
                .await
                .with_context(|| format!("while closing {} of vendor {}", closing.week.label, closing.vendor_id))?;
            self.metrics.db_seconds.with_label_values(&["close"]).observe(started.elapsed().as_secs_f64());
            if let Some(figures) = closed {
                report.closed += 1;
                self.metrics.weeks_closed.inc();
                tracing::info!(
                    vendor = %closing.vendor_id,
                    week = %closing.week.label,
                    sales = figures.sales_count,
                    earnings_clp = figures.earnings_clp,
                    "week closed"
                );
            }
        }

        loop {
            let pending = store::pending_statements(&mut conn, PUBLISH_PAGE)
                .await
                .context("while listing unpublished statements")?;
            let mut progressed = false;
            for statement in &pending {
                let started = Instant::now();
                let published = self
                    .publisher
                    .publish_one(&mut conn, statement, now)
                    .await
                    .with_context(|| format!("while publishing statement {}", statement.statement_id))?;
                self.metrics.db_seconds.with_label_values(&["publish"]).observe(started.elapsed().as_secs_f64());
                if published {
                    progressed = true;
                    report.published += 1;
                    self.metrics.statements_published.inc();
                }
            }
            if !progressed || (pending.len() as i64) < PUBLISH_PAGE {
                break;
            }
        }
        if self.daily_summary {
            let last_due = closable.and_then(|at| at.checked_sub_signed(self.grace)).and_then(summary::last_due_date);
            self.summarise(&mut conn, last_due, now, &mut report).await?;
        }
        Ok(report)
    }

    /// Closes the days due up to `last_due` and publishes every summary not
    /// yet published ([`crate::summary`]).
    async fn summarise(
        &self,
        conn: &mut AsyncPgConnection,
        last_due: Option<NaiveDate>,
        now: DateTime<Utc>,
        report: &mut PassReport,
    ) -> anyhow::Result<()> {
        if let Some(last_due) = last_due {
            report.days_summarised = summary::close_days(conn, &self.positions.group, last_due, now)
                .await
                .with_context(|| format!("while closing the days up to {last_due}"))?;
        }
        loop {
            let pending =
                summary::pending(conn, PUBLISH_PAGE).await.context("while listing unpublished daily summaries")?;
            let mut progressed = false;
            for day in &pending {
                let published =
                    summary::publish_one(conn, &self.publisher.kafka, day, now).await.with_context(|| {
                        format!("while publishing the summary of {} of vendor {}", day.local_date, day.vendor_id)
                    })?;
                if published {
                    progressed = true;
                    report.summaries_published += 1;
                }
            }
            if !progressed || (pending.len() as i64) < PUBLISH_PAGE {
                return Ok(());
            }
        }
    }
}
