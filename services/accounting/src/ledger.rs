//! The ledger: applies sales to the weekly totals (through [`store`]) and
//! keeps the books on it: metrics, the late-sale log, the process's
//! event-time watermark, and a nudge to the closer when it moves. Sales that
//! say where they were read ([`SaleFacts::at`]) also move their partition's
//! shared watermark, in the same transaction ([`crate::horizon`]).
//!
//! It is also the shared [`Runner`](mamochi_events::runner::Runner)'s
//! [`Handler`] for one record at a time: an invalid sale is rejected (the
//! runner parks it), a database failure is transient (the runner retries the
//! same record). Guarantee: at least once, exactly once in effect (see
//! [`store::apply_sales`]).

use std::sync::Arc;
use std::time::Instant;

use mamochi_common::db::PgPool;
use mamochi_events::runner::{Envelope, Handler, HandlerError};
use mamochi_events::SaleRecorded;
use tokio::sync::Notify;

use crate::metrics::Metrics;
use crate::platform::PlatformTime;
use crate::sale::SaleFacts;
use crate::store::{self, BatchOutcome, StoreError};

/// Everything applying sales needs.
#[derive(Clone)]
pub struct Ledger {
    pub pool: PgPool,
    pub platform: Arc<PlatformTime>,
    /// Consumer group whose partition watermarks this ledger moves.
    pub group: String,
    pub metrics: Metrics,
    /// Woken when sale time moves forward, so the closer looks at once.
    pub closer_wakeup: Arc<Notify>,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger").field("group", &self.group).finish_non_exhaustive()
    }
}

impl Ledger {
    /// Applies `sales` in one transaction and accounts for what happened.
    /// Sales read from the sales topic should carry their position
    /// ([`SaleFacts::at`]): without it a busy partition's watermark does not
    /// move, and the closer waits for the partition to be drained instead.
    pub async fn apply(&self, sales: &[SaleFacts]) -> Result<BatchOutcome, StoreError> {
        // Platform time as of the start of the batch: the batch's own sale
        // times count for the records after it, as they would one by one.
        let now = self.platform.now();
        let started = Instant::now();
        let mut conn = self.pool.get().await.map_err(|error| StoreError::Pool(error.to_string()))?;
        let outcome = store::apply_sales_read_by(&mut conn, &self.group, sales, now).await?;
        drop(conn);
        self.metrics.db_seconds.with_label_values(&["apply"]).observe(started.elapsed().as_secs_f64());
        self.metrics.batch_size.observe(sales.len() as f64);
        self.metrics.sales_applied.inc_by(outcome.counted.len() as u64);
        self.metrics.sales_duplicate.inc_by(outcome.duplicates as u64);

        // recorded_at is the clock's platform time; the histogram wants real
        // seconds, so the gap is measured on that clock and scaled back.
        let clock = self.platform.clock();
        let committed = clock.now();
        for counted in &outcome.counted {
            let latency = clock.real_duration(committed - counted.recorded_at).as_secs_f64();
            self.metrics.end_to_end_seconds.observe(latency);
            if counted.late {
                self.metrics.sales_late.inc();
                tracing::warn!(
                    sale = %counted.sale_id,
                    vendor = %counted.vendor_id,
                    occurred_at = %counted.occurred_at,
                    counted_in = %counted.iso_week,
                    "late sale: its week is closed; counted in the vendor's open week"
                );
            }
        }
        let mut moved = false;
        for sale in sales {
            moved |= self.platform.observe(sale.occurred_at);
        }
        if moved {
            self.closer_wakeup.notify_one();
        }
        Ok(outcome)
    }
}

impl Handler<SaleRecorded> for Ledger {
    #[tracing::instrument(
        name = "apply_sale",
        skip_all,
        fields(topic = %envelope.topic, partition = envelope.partition, offset = envelope.offset, sale = %envelope.value.sale_id)
    )]
    async fn handle(&self, envelope: Envelope<SaleRecorded>) -> Result<(), HandlerError> {
        let facts = SaleFacts::from_event(&envelope.value)
            .map_err(|invalid| {
                self.metrics.sales_rejected.with_label_values(&["invalid"]).inc();
                HandlerError::Rejected(invalid.to_string())
            })?
            .at(envelope.partition, envelope.offset);
        let outcome = self
            .apply(std::slice::from_ref(&facts))
            .await
            .map_err(|error| HandlerError::Transient(anyhow::Error::new(error).context("while applying a sale")))?;
        if !outcome.overflowed.is_empty() {
            self.metrics.sales_rejected.with_label_values(&["overflow"]).inc();
            return Err(HandlerError::Rejected("the week's totals would overflow 64-bit integers".into()));
        }
        Ok(())
    }
}
