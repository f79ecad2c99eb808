//! The stock rules, as pure functions: what a sale does to a cart, when an
//! alert or a depletion fires, and how much a restock adds.
//!
//! Selling past zero: a recorded sale really happened (the customer has the
//! serving), so it is always accepted; the stock floors at zero and the
//! missing servings are reported as `oversold` (a metric and a warning), not
//! as negative stock. Depletion fires on the sale that takes stock from above
//! zero to zero, once: further sales at zero are oversold, not new
//! depletions, because the restock for the first is already on its way.
//! A low-stock alert fires when stock falls below the threshold but stays
//! above zero, once until the next restock; at zero the depletion (and its
//! immediate restock) says more than an alert would.

use mamochi_events::StockEventKind;

/// A cart as the rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cart {
    pub stock: i32,
    pub low_stock_alerted: bool,
}

/// What one sale does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaleEffect {
    pub stock_after: i32,
    /// Servings sold beyond the stock.
    pub oversold: i32,
    /// Emit LOW_STOCK (and its email) and set `low_stock_alerted`.
    pub low_stock_alert: bool,
    /// Emit DEPLETED.
    pub depleted: bool,
}

/// Why a sale cannot be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("a sale must be of at least one serving, got {0}")]
    NonPositiveQuantity(i32),
    #[error("a restock of {0} servings would overflow the stock")]
    Overflow(i32),
}

/// A sale is of at least one serving.
pub fn check_quantity(quantity: i32) -> Result<(), RuleError> {
    if quantity <= 0 {
        return Err(RuleError::NonPositiveQuantity(quantity));
    }
    Ok(())
}

/// Applies a sale of `quantity` servings with the alert threshold `threshold`.
pub fn apply_sale(cart: Cart, quantity: i32, threshold: i32) -> Result<SaleEffect, RuleError> {
    check_quantity(quantity)?;
    let stock_before = cart.stock.max(0);
    let stock_after = stock_before.saturating_sub(quantity).max(0);
    let oversold = quantity.saturating_sub(stock_before).max(0);
    let depleted = stock_before > 0 && stock_after == 0;
    let low_stock_alert = !cart.low_stock_alerted && stock_after > 0 && stock_after < threshold;
    Ok(SaleEffect { stock_after, oversold, low_stock_alert, depleted })
}

/// What a stock event asks of the distributor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockAction {
    /// The cart is empty: restock it to `quantity` (stock is set, not added,
    /// because DEPLETED says the cart has nothing left).
    RefillEmpty { quantity: i32 },
    /// The vendor asked for more: add `quantity`.
    Add { quantity: i32 },
    /// Not for the distributor (its own REPLENISHED and LOW_STOCK, unknown kinds).
    Ignore,
}

/// The action for a stock event of `kind` carrying `requested` servings,
/// with `configured` the restock quantity from settings.
pub fn stock_action(kind: StockEventKind, requested: i32, configured: i32) -> StockAction {
    match kind {
        StockEventKind::Depleted => StockAction::RefillEmpty { quantity: configured },
        StockEventKind::RestockRequested => {
            StockAction::Add { quantity: if requested > 0 { requested } else { configured } }
        }
        StockEventKind::Replenished | StockEventKind::LowStock | StockEventKind::Unknown => StockAction::Ignore,
    }
}

/// Stock after a restock action on a cart holding `stock`.
pub fn restocked(stock: i32, action: StockAction) -> Result<Option<(i32, i32)>, RuleError> {
    match action {
        StockAction::RefillEmpty { quantity } => Ok(Some((quantity, quantity))),
        StockAction::Add { quantity } => {
            let after = stock.max(0).checked_add(quantity).ok_or(RuleError::Overflow(quantity))?;
            Ok(Some((quantity, after)))
        }
        StockAction::Ignore => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cart(stock: i32) -> Cart {
        Cart { stock, low_stock_alerted: false }
    }

    #[test]
    fn a_sale_decrements_the_stock() {
        let effect = apply_sale(cart(10), 1, 3).expect("applies");
        assert_eq!(effect, SaleEffect { stock_after: 9, oversold: 0, low_stock_alert: false, depleted: false });
    }

    #[test]
    fn falling_below_the_threshold_alerts_once() {
        let first = apply_sale(cart(3), 1, 3).expect("applies");
        let again = apply_sale(Cart { stock: 2, low_stock_alerted: true }, 1, 3).expect("applies");

        assert!(first.low_stock_alert, "3 -> 2 crosses below 3");
        assert!(!again.low_stock_alert, "already alerted");
        assert!(!apply_sale(cart(4), 1, 3).expect("applies").low_stock_alert, "4 -> 3 is not below 3");
    }

    #[test]
    fn reaching_zero_depletes_without_a_low_stock_alert() {
        let effect = apply_sale(cart(1), 1, 3).expect("applies");
        assert_eq!(effect, SaleEffect { stock_after: 0, oversold: 0, low_stock_alert: false, depleted: true });
    }

    #[test]
    fn selling_past_zero_floors_at_zero_and_counts_the_shortfall() {
        let effect = apply_sale(cart(2), 5, 3).expect("applies");
        assert_eq!(effect, SaleEffect { stock_after: 0, oversold: 3, low_stock_alert: false, depleted: true });
    }

    #[test]
    fn a_sale_at_zero_is_oversold_but_not_a_second_depletion() {
        let effect = apply_sale(cart(0), 2, 3).expect("applies");
        assert_eq!(effect, SaleEffect { stock_after: 0, oversold: 2, low_stock_alert: false, depleted: false });
    }

    #[test]
    fn a_non_positive_quantity_is_refused() {
        assert_eq!(apply_sale(cart(5), 0, 3), Err(RuleError::NonPositiveQuantity(0)));
        assert_eq!(apply_sale(cart(5), -4, 3), Err(RuleError::NonPositiveQuantity(-4)));
    }

    #[test]
    fn a_huge_sale_does_not_overflow() {
        let effect = apply_sale(cart(5), i32::MAX, 3).expect("applies");
        assert_eq!(effect.stock_after, 0);
        assert_eq!(effect.oversold, i32::MAX - 5);
    }

    #[test]
    fn restock_actions_follow_the_event_kind() {
        assert_eq!(stock_action(StockEventKind::Depleted, 0, 10), StockAction::RefillEmpty { quantity: 10 });
        assert_eq!(stock_action(StockEventKind::RestockRequested, 25, 10), StockAction::Add { quantity: 25 });
        assert_eq!(stock_action(StockEventKind::RestockRequested, 0, 10), StockAction::Add { quantity: 10 });
        assert_eq!(stock_action(StockEventKind::Replenished, 10, 10), StockAction::Ignore);
        assert_eq!(stock_action(StockEventKind::LowStock, 0, 10), StockAction::Ignore);
        assert_eq!(stock_action(StockEventKind::Unknown, 0, 10), StockAction::Ignore);
    }

    #[test]
    fn a_depletion_refills_to_the_quantity_and_a_request_adds() {
        assert_eq!(restocked(0, StockAction::RefillEmpty { quantity: 10 }), Ok(Some((10, 10))));
        assert_eq!(restocked(4, StockAction::RefillEmpty { quantity: 10 }), Ok(Some((10, 10))));
        assert_eq!(restocked(4, StockAction::Add { quantity: 10 }), Ok(Some((10, 14))));
        assert_eq!(restocked(i32::MAX, StockAction::Add { quantity: 1 }), Err(RuleError::Overflow(1)));
        assert_eq!(restocked(4, StockAction::Ignore), Ok(None));
    }
}
