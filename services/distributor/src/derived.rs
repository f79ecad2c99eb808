//! The events and email requests the distributor derives from the events it
//! handles, each with a deterministic id.
//!
//! An id is a UUID v5 over `"<label>:<source id>"`, so handling the same
//! source event again (a redelivery after a crash before commit) produces
//! records with the same ids, and an outbox row produced twice (a crash
//! after Kafka's acknowledgement, before the row's delete) carries the same
//! id twice; either way their consumers apply it once. Email texts are
//! Spanish, for the guild's vendors.

use chrono::{DateTime, Utc};
use mamochi_events::{EmailRequested, StockEvent, StockEventKind};
use uuid::Uuid;

/// Namespace of every id the distributor derives.
pub const NAMESPACE: Uuid = Uuid::from_u128(0x6d61_6d6f_6368_5d15_8a1b_7574_6f72_0001);

/// Email categories (the notifier's metric labels).
pub const CATEGORY_RESTOCK: &str = "restock";
pub const CATEGORY_LOW_STOCK: &str = "low_stock";

/// The id derived from `source` for `label`.
pub fn derived_id(label: &str, source: Uuid) -> Uuid {
    Uuid::new_v5(&NAMESPACE, format!("{label}:{source}").as_bytes())
}

/// Who an email goes to.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub email: String,
    pub full_name: String,
}

/// A stock event of `kind` derived from `source`.
pub fn stock_event(
    kind: StockEventKind,
    source: Uuid,
    vendor_id: Uuid,
    quantity: i32,
    stock_after: i32,
    reason: &str,
    now: DateTime<Utc>,
) -> StockEvent {
    let label = match kind {
        StockEventKind::Depleted => "depleted",
        StockEventKind::LowStock => "low_stock",
        StockEventKind::Replenished => "replenished",
        StockEventKind::RestockRequested => "restock_requested",
        StockEventKind::Unknown => "unknown",
    };
    StockEvent {
        event_id: derived_id(label, source),
        vendor_id,
        kind,
        quantity,
        stock_after,
        reason: Some(reason.to_string()),
        occurred_at: now,
    }
}

/// The email telling a vendor their cart was restocked.
pub fn restock_email(source: Uuid, to: &Recipient, added: i32, stock_after: i32, now: DateTime<Utc>) -> EmailRequested {
    EmailRequested {
        message_id: derived_id("restock", source),
        to: to.email.clone(),
        subject: format!("MAMOCHI: tu carro fue reabastecido (+{added} porciones)"),
        body_text: format!(
            "Hola {name}:\n\n\
             Tu distribuidor acaba de reabastecer tu carro con {added} porciones de mote con huesillo.\n\
             Stock actual: {stock_after} porciones.\n\n\
             ¡Buenas ventas!\n\
             MAMOCHI, gremio de Maestros Motehuesilleros de Chile\n",
            name = to.full_name,
        ),
        category: CATEGORY_RESTOCK.to_string(),
        requested_at: now,
        sealed_secret: None,
    }
}

/// The email warning a vendor that their stock is low.
pub fn low_stock_email(
    source: Uuid,
    to: &Recipient,
    stock_after: i32,
    threshold: i32,
    now: DateTime<Utc>,
) -> EmailRequested {
    EmailRequested {
        message_id: derived_id("low_stock", source),
        to: to.email.clone(),
        subject: format!("MAMOCHI: te quedan {stock_after} porciones"),
        body_text: format!(
            "Hola {name}:\n\n\
             A tu carro le quedan {stock_after} porciones, menos que el mínimo de {threshold}.\n\
             Cuando se agoten te reabasteceremos de inmediato; si prefieres, puedes pedir \
             reabastecimiento antes desde la aplicación.\n\n\
             MAMOCHI, gremio de Maestros Motehuesilleros de Chile\n",
            name = to.full_name,
        ),
        category: CATEGORY_LOW_STOCK.to_string(),
        requested_at: now,
        sealed_secret: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipient() -> Recipient {
        Recipient { email: "rosa@example.cl".into(), full_name: "Rosa Pérez".into() }
    }

    #[test]
    fn derived_ids_are_deterministic_and_distinct_per_label() {
        let source = Uuid::new_v4();

        assert_eq!(derived_id("depleted", source), derived_id("depleted", source));
        assert_ne!(derived_id("depleted", source), derived_id("low_stock", source));
        assert_ne!(derived_id("depleted", source), derived_id("depleted", Uuid::new_v4()));
    }

    #[test]
    fn a_stock_event_carries_its_derived_id() {
        let source = Uuid::new_v4();
        let vendor = Uuid::new_v4();

        let event = stock_event(StockEventKind::Depleted, source, vendor, 0, 0, "sale", Utc::now());

        assert_eq!(event.event_id, derived_id("depleted", source));
        assert_eq!(event.vendor_id, vendor);
        assert_eq!(event.reason.as_deref(), Some("sale"));
    }

    #[test]
    fn the_restock_email_says_how_much_was_added_and_the_new_stock() {
        let source = Uuid::new_v4();

        let email = restock_email(source, &recipient(), 10, 12, Utc::now());

        assert_eq!(email.message_id, derived_id("restock", source));
        assert_eq!(email.to, "rosa@example.cl");
        assert_eq!(email.category, "restock");
        assert!(email.body_text.contains("Hola Rosa Pérez"));
        assert!(email.body_text.contains("con 10 porciones"));
        assert!(email.body_text.contains("Stock actual: 12 porciones"));
        assert!(email.sealed_secret.is_none());
    }

    #[test]
    fn the_low_stock_email_names_stock_and_threshold() {
        let email = low_stock_email(Uuid::new_v4(), &recipient(), 2, 3, Utc::now());

        assert_eq!(email.category, "low_stock");
        assert!(email.body_text.contains("le quedan 2 porciones, menos que el mínimo de 3"));
    }
}
