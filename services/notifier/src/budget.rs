//! When the notifier stops retrying an email.
//!
//! A transient failure (the relay unreachable, a 4xx answer) is retried, but
//! not for ever: one email that can never get through would otherwise hold
//! every email behind it on its partition. The budget is both a number of
//! attempts and a time since the email was requested; the failed attempt
//! that reaches either is the last, and the email is marked `failed`.
//! Pure decisions, no I/O, so the rule is tested on its own.

use std::time::Duration;

use mamochi_common::config::NotifierSettings;

/// How much retrying one email is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryBudget {
    /// Failed attempts after which the email is given up (at least 1).
    pub max_attempts: u32,
    /// Real time after the request past which a failed attempt is the last.
    pub give_up_after: Duration,
}

/// Why an email was given up; also the bounded `reason` metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exhausted {
    /// `max_attempts` attempts have failed.
    Attempts,
    /// The last attempt failed later than `give_up_after` after the request.
    Expired,
}

impl Exhausted {
    pub fn label(self) -> &'static str {
        match self {
            Self::Attempts => "attempts_exhausted",
            Self::Expired => "expired",
        }
    }
}

impl RetryBudget {
    pub fn from_settings(settings: &NotifierSettings) -> Self {
        Self {
            // Zero attempts would give up before trying; one is the least that means anything.
            max_attempts: settings.max_attempts.max(1),
            give_up_after: Duration::from_secs(settings.give_up_after_secs),
        }
    }

    /// After a failed attempt: `failed_attempts` have now failed (this one
    /// included), `since_request` real time after the email was requested.
    /// `None` means retry.
    pub fn after_failure(&self, failed_attempts: u32, since_request: Duration) -> Option<Exhausted> {
        if failed_attempts >= self.max_attempts {
            Some(Exhausted::Attempts)
        } else if since_request >= self.give_up_after {
            Some(Exhausted::Expired)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUDGET: RetryBudget = RetryBudget { max_attempts: 3, give_up_after: Duration::from_secs(60) };

    #[test]
    fn failures_within_both_bounds_are_retried() {
        assert_eq!(BUDGET.after_failure(1, Duration::ZERO), None);
        assert_eq!(BUDGET.after_failure(2, Duration::from_secs(59)), None);
    }

    #[test]
    fn the_attempt_that_reaches_the_limit_is_the_last() {
        assert_eq!(BUDGET.after_failure(3, Duration::from_secs(1)), Some(Exhausted::Attempts));
        assert_eq!(BUDGET.after_failure(7, Duration::from_secs(1)), Some(Exhausted::Attempts));
    }

    #[test]
    fn a_failure_past_the_time_bound_is_the_last_whatever_the_count() {
        assert_eq!(BUDGET.after_failure(1, Duration::from_secs(60)), Some(Exhausted::Expired));
    }

    #[test]
    fn settings_of_zero_attempts_still_allow_one() {
        let settings = NotifierSettings { ops_listen: String::new(), max_attempts: 0, give_up_after_secs: 5 };

        let budget = RetryBudget::from_settings(&settings);

        assert_eq!(budget, RetryBudget { max_attempts: 1, give_up_after: Duration::from_secs(5) });
    }

    #[test]
    fn reasons_are_stable_labels() {
        assert_eq!(Exhausted::Attempts.label(), "attempts_exhausted");
        assert_eq!(Exhausted::Expired.label(), "expired");
    }
}
