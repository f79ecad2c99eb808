//! A sale as accounting counts it, and the checked arithmetic of weekly totals.
//!
//! Guarantees: only sales that make sense are counted (at least one serving,
//! a non-negative price, a total equal to quantity × price); adding a sale to
//! totals never wraps around: it either fits in `i64` or is refused.
//! A sale may also say where it was read (partition and offset), which is
//! what the close horizon is built from ([`crate::horizon`]).

use chrono::{DateTime, Utc};
use mamochi_events::SaleRecorded;
use uuid::Uuid;

/// The fields of a valid sale that accounting uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleFacts {
    pub sale_id: Uuid,
    pub vendor_id: Uuid,
    pub quantity: i64,
    pub total_clp: i64,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    /// Where it was read from, when the caller knows: applying it then also
    /// moves that partition's watermark.
    pub read_at: Option<ReadAt>,
}

/// A sale's position in the sales topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadAt {
    pub partition: i32,
    pub offset: i64,
}

/// Why a sale is refused for good.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSale {
    #[error("quantity {0} is not at least 1")]
    Quantity(i32),
    #[error("unit price {0} CLP is negative")]
    UnitPrice(i64),
    #[error("total {total} CLP is not quantity {quantity} x unit price {unit_price} CLP")]
    Total { quantity: i32, unit_price: i64, total: i64 },
}

impl SaleFacts {
    /// Checks a recorded sale; the error says which field is wrong.
    pub fn from_event(sale: &SaleRecorded) -> Result<Self, InvalidSale> {
        if sale.quantity < 1 {
            return Err(InvalidSale::Quantity(sale.quantity));
        }
        if sale.unit_price_clp < 0 {
            return Err(InvalidSale::UnitPrice(sale.unit_price_clp));
        }
        if i64::from(sale.quantity).checked_mul(sale.unit_price_clp) != Some(sale.total_clp) {
            return Err(InvalidSale::Total {
                quantity: sale.quantity,
                unit_price: sale.unit_price_clp,
                total: sale.total_clp,
            });
        }
        Ok(Self {
            sale_id: sale.sale_id,
            vendor_id: sale.vendor_id,
            quantity: i64::from(sale.quantity),
            total_clp: sale.total_clp,
            occurred_at: sale.occurred_at,
            recorded_at: sale.recorded_at,
            read_at: None,
        })
    }

    /// The same sale, known to have been read at `offset` of `partition`.
    #[must_use]
    pub fn at(self, partition: i32, offset: i64) -> Self {
        Self { read_at: Some(ReadAt { partition, offset }), ..self }
    }
}

/// A week's running totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub sales_count: i64,
    pub units: i64,
    pub earnings_clp: i64,
}

impl Totals {
    /// The totals with `sale` added, or `None` if any of them would overflow.
    pub fn plus(self, sale: &SaleFacts) -> Option<Self> {
        Some(Self {
            sales_count: self.sales_count.checked_add(1)?,
            units: self.units.checked_add(sale.quantity)?,
            earnings_clp: self.earnings_clp.checked_add(sale.total_clp)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use mamochi_events::PaymentMethod;

    use super::*;

    fn event(quantity: i32, unit_price_clp: i64, total_clp: i64) -> SaleRecorded {
        SaleRecorded {
            sale_id: Uuid::from_u128(1),
            vendor_id: Uuid::from_u128(2),
            quantity,
            unit_price_clp,
            total_clp,
            payment_method: PaymentMethod::Cash,
            occurred_at: DateTime::from_timestamp_millis(0).expect("epoch"),
            recorded_at: DateTime::from_timestamp_millis(0).expect("epoch"),
            location: None,
        }
    }

    #[test]
    fn a_consistent_sale_is_accepted() {
        let facts = SaleFacts::from_event(&event(3, 1_500, 4_500)).expect("valid");
        assert_eq!((facts.quantity, facts.total_clp), (3, 4_500));
    }

    #[test]
    fn inconsistent_sales_are_refused_with_the_field_at_fault() {
        assert_eq!(SaleFacts::from_event(&event(0, 1_000, 0)), Err(InvalidSale::Quantity(0)));
        assert_eq!(SaleFacts::from_event(&event(1, -5, -5)), Err(InvalidSale::UnitPrice(-5)));
        assert!(matches!(SaleFacts::from_event(&event(2, 1_000, 1_999)), Err(InvalidSale::Total { .. })));
        assert!(
            matches!(SaleFacts::from_event(&event(2, i64::MAX, i64::MAX)), Err(InvalidSale::Total { .. })),
            "product overflows"
        );
    }

    #[test]
    fn totals_add_up_and_refuse_to_overflow() {
        let sale = SaleFacts::from_event(&event(2, 1_000, 2_000)).expect("valid");
        let totals = Totals::default().plus(&sale).and_then(|t| t.plus(&sale)).expect("fits");
        assert_eq!(totals, Totals { sales_count: 2, units: 4, earnings_clp: 4_000 });

        let nearly_full = Totals { sales_count: 1, units: 1, earnings_clp: i64::MAX - 1_999 };
        assert_eq!(nearly_full.plus(&sale), None);
    }
}
