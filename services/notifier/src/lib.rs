//! The notifier service: sends the platform's email requests over SMTP.
//!
//! It consumes `mamochi.email-requests` (group `notifier`) with the shared
//! at-least-once runner and sends each request with lettre to the relay named
//! in `settings.smtp`. Secrets travel sealed; the notifier opens them only to
//! write the message, never logs them and never stores them (the `emails`
//! table has no body column).
//!
//! Guarantee: every request is sent, and sent once per `message_id`. The
//! `emails` row is claimed and locked, the message sent and the row marked
//! `sent` in one database transaction; a redelivered or duplicated request
//! finds `sent` and is skipped. While SMTP is down the record is retried with
//! backoff (200 ms doubling to 10 s) and each failed attempt is recorded
//! (attempts, last_error). Requests that can never be sent (a secret that
//! does not open, a bad address, a permanent 5xx) are marked `failed` and
//! parked in the dead letters.
//!
//! Limit, and the one window for a duplicate: if the process dies (or the
//! database fails) after the relay answered 250 and before the `sent` status
//! commits, the redelivered request is sent again. Both copies carry the same
//! `Message-ID: <message_id@mamochi.cl>`, so mail clients and downstream
//! systems can recognise the second as a duplicate.

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
