//! Waiting on a condition with a deadline: tests never sleep a fixed time and
//! hope; they poll what the system shows and fail, saying what they waited
//! for, when the deadline passes.

use std::future::Future;
use std::time::Duration;

/// How often a condition is polled.
const POLL: Duration = Duration::from_millis(100);

/// Polls `check` until it returns `Some`, and returns that value; panics
/// with "timed out waiting for {what}" once `timeout` has passed.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let found = poll_for(timeout, POLL, check).await;
    found.unwrap_or_else(|| panic!("timed out waiting for {what}"))
}

/// Polls `condition` until it holds; panics with "timed out waiting for
/// {what}" once `timeout` has passed.
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    eventually(timeout, what, || {
        let holds = condition();
        async move { holds.await.then_some(()) }
    })
    .await;
}

/// Polls `check` every `every` until it returns `Some` or `timeout` passes;
/// `None` then (for a caller that asserts on the outcome itself, or that
/// measures how soon it came: hence the caller's own polling interval).
pub async fn poll_for<T, F, Fut>(timeout: Duration, every: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(every).await;
    }
}
