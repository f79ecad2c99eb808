//! What the gateway reads on every write request, kept in memory so the hot
//! path pays no database round trip: who holds an API key or a staff token
//! ([`keys`]), how
//! much stock each cart has ([`stock`]) and where each cart last was
//! ([`carts`]). PostgreSQL and Kafka stay the
//! record; these are views of them with a stated staleness bound.

pub mod carts;
pub mod keys;
pub mod stock;

pub use carts::CartView;
pub use keys::{KeyDirectory, StaffDirectory};
pub use stock::StockView;
