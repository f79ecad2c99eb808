//! The `status` filter of the staff listing: `pending` (received or flagged
//! for manual review) or one exact status.

use super::Invalid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    Pending,
    Received,
    ManualReview,
    Approved,
    Rejected,
}

impl StatusFilter {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        match raw {
            "pending" => Ok(Self::Pending),
            "received" => Ok(Self::Received),
            "manual_review" => Ok(Self::ManualReview),
            "approved" => Ok(Self::Approved),
            "rejected" => Ok(Self::Rejected),
            _ => Err(Invalid::new("must be one of pending, received, manual_review, approved, rejected")),
        }
    }

    /// The `registrations.status` values the filter selects.
    pub fn statuses(self) -> &'static [&'static str] {
        match self {
            Self::Pending => &["received", "manual_review"],
            Self::Received => &["received"],
            Self::ManualReview => &["manual_review"],
            Self::Approved => &["approved"],
            Self::Rejected => &["rejected"],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_covers_received_and_manual_review() {
        assert_eq!(StatusFilter::parse("pending").map(StatusFilter::statuses), Ok(&["received", "manual_review"][..]));
        assert!(StatusFilter::parse("approved").is_ok());
        assert!(StatusFilter::parse("everything").is_err());
        assert!(StatusFilter::parse("Pending").is_err());
    }
}
