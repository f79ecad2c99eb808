//! The notifier service: sends the platform's email requests over SMTP.
//!
//! It consumes `mamochi.email-requests` (group `notifier`) with the shared
//! at-least-once runner and sends each request with lettre to the relay named
//! in `settings.smtp`. Secrets travel sealed; the notifier opens them only to
//! write the message, never logs them and never stores them (the `emails`
//! table has no body column).
//!
//! Guarantee: every request is sent once per `message_id`, or marked
//! `failed` and parked in the dead letters with the reason. The `emails` row
//! is claimed and locked, the message sent and the row marked `sent` in one
//! database transaction; a redelivered or duplicated request finds `sent` and
//! is skipped. While SMTP is down (or answers 4xx) the record is retried by
//! the shared consumer loop with backoff (200 ms doubling to 10 s), each
//! failed attempt recorded (attempts, last_error); the handler itself never
//! waits, so the loop's handling of long retries applies. Retrying is bounded
//! per email: the failed attempt that is its `notifier.max_attempts`th, or
//! that comes `notifier.give_up_after_secs` real seconds or more after the
//! request, marks the email `failed`. A permanent refusal (5xx, e.g. a recipient the
//! relay refuses), a bad address and a secret that does not open mark it
//! `failed` at once. Every `failed` email is counted in
//! `mamochi_notifier_emails_failed_total` by reason, which fires the
//! `EmailFailed` alert, and the partition moves on to the next email. A
//! `failed` email replayed from the dead letters is tried again, once more
//! if its budget is spent.
//!
//! Limit of the budget: during a relay outage only the email at the head of
//! each partition spends attempts while those behind it wait; an outage
//! longer than that email's budget (about a quarter of an hour at the default
//! 100 attempts and 10 s backoff) marks the head emails `failed` one after
//! another, to be replayed from the dead letters once the relay is back.
//!
//! Limit, and the one window for a duplicate: if the process dies (or the
//! database fails) after the relay answered 250 and before the `sent` status
//! commits, the redelivered request is sent again. Both copies carry the same
//! `Message-ID: <message_id@mamochi.cl>`, so mail clients and downstream
//! systems can recognise the second as a duplicate.

pub mod budget;
pub mod compose;
pub mod handler;
pub mod mailer;
pub mod metrics;
pub mod service;
pub mod store;

pub use service::Notifier;

use mamochi_common::shutdown::Shutdown;
use mamochi_common::Settings;

/// Runs the notifier until `shutdown` is cancelled, then drains, commits and
/// returns `Ok`.
pub async fn run(settings: &Settings, shutdown: Shutdown) -> anyhow::Result<()> {
    Notifier::build(settings).await?.run_until_stopped(shutdown).await
}
