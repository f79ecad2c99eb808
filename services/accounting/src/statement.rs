//! What a weekly statement says and how it reads: its derived ids, the
//! average ticket, pesos as Chileans write them, and the Spanish email.
//!
//! Pure functions: the same week and totals always give the same ids, numbers
//! and text, so a statement re-published after a crash is the same statement
//! and the same email (the notifier sends each message id once).

use uuid::Uuid;

use crate::week::Week;

/// Namespace of every id this service derives (UUID v5).
pub const NAMESPACE: Uuid = Uuid::from_u128(0x6d61_6d6f_6368_6961_6363_6f75_6e74_0001);

/// The statement of `vendor` for `iso_week`: v5 of `statement:<vendor>:<week>`.
pub fn statement_id(vendor: Uuid, iso_week: &str) -> Uuid {
    Uuid::new_v5(&NAMESPACE, format!("statement:{vendor}:{iso_week}").as_bytes())
}

/// The statement email's message id: v5 of `statement-email:<statement_id>`.
pub fn email_message_id(statement_id: Uuid) -> Uuid {
    Uuid::new_v5(&NAMESPACE, format!("statement-email:{statement_id}").as_bytes())
}

/// The average ticket and pesos `$12.345` are the guild's money rules
/// (mamochi-rules), shared with the gateway's open-week figures and the demo.
pub use mamochi_rules::money::{average_ticket, format_clp};

/// Thousands separators for plain counts (`1.234`).
fn format_count(count: i64) -> String {
    format_clp(count).replacen('$', "", 1)
}

/// A closed week's figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figures {
    pub sales_count: i64,
    pub units: i64,
    pub earnings_clp: i64,
    pub average_ticket_clp: i64,
}

/// Subject and plain-text body of the statement email, in Spanish.
pub fn email(full_name: &str, week: &Week, figures: &Figures) -> (String, String) {
    let (monday, sunday) = week.local_dates();
    let subject = format!("MAMOCHI: tu resumen de ventas de la semana {}", week.label);
    let summary =
        if figures.sales_count == 0 { "Esta semana no registraste ventas.\n\n".to_string() } else { String::new() };
    let body = format!(
        "Hola {full_name}:\n\n\
         Este es el resumen de tus ventas de la semana {label}, del lunes {monday} al domingo {sunday} \
         (hora de Chile continental).\n\n\
         {summary}\
         Número de ventas: {sales}\n\
         Porciones vendidas: {units}\n\
         Ganancias: {earnings}\n\
         Ticket promedio: {average}\n\n\
         Este resumen queda cerrado: una venta de esta semana que llegue tarde se suma a tu semana en curso.\n\n\
         Gracias por ser parte del gremio,\n\
         MAMOCHI — Maestros Motehuesilleros de Chile\n",
        label = week.label,
        monday = monday.format("%d-%m-%Y"),
        sunday = sunday.format("%d-%m-%Y"),
        sales = format_count(figures.sales_count),
        units = format_count(figures.units),
        earnings = format_clp(figures.earnings_clp),
        average = format_clp(figures.average_ticket_clp),
    );
    (subject, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_derived_from_vendor_and_week_only() {
        let vendor = Uuid::from_u128(7);
        let id = statement_id(vendor, "2026-W47");
        assert_eq!(id, statement_id(vendor, "2026-W47"));
        assert_ne!(id, statement_id(vendor, "2026-W48"));
        assert_ne!(id, statement_id(Uuid::from_u128(8), "2026-W47"));
        assert_eq!(email_message_id(id), email_message_id(id));
        assert_ne!(email_message_id(id), id);
        assert_eq!(id.get_version_num(), 5);
    }

    #[test]
    fn the_email_states_the_week_and_the_figures() {
        let week = Week::parse("2026-W47").expect("valid week");
        let figures = Figures { sales_count: 12, units: 15, earnings_clp: 12_345, average_ticket_clp: 1_029 };

        let (subject, body) = email("Rosa Pérez", &week, &figures);

        assert!(subject.contains("2026-W47"));
        assert!(body.starts_with("Hola Rosa Pérez:"));
        assert!(body.contains("del lunes 16-11-2026 al domingo 22-11-2026"));
        assert!(body.contains("Número de ventas: 12\n"));
        assert!(body.contains("Porciones vendidas: 15\n"));
        assert!(body.contains("Ganancias: $12.345\n"));
        assert!(body.contains("Ticket promedio: $1.029\n"));
    }

    #[test]
    fn a_week_without_sales_says_so() {
        let week = Week::parse("2026-W47").expect("valid week");
        let figures = Figures { sales_count: 0, units: 0, earnings_clp: 0, average_ticket_clp: 0 };
        let (_, body) = email("Rosa", &week, &figures);
        assert!(body.contains("no registraste ventas"));
        assert!(body.contains("Ganancias: $0\n"));
    }
}
