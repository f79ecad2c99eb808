//! What the gateway reads on every write request, kept in memory so the hot
//! path pays no database round trip: who holds an API key or a staff token
//! ([`keys`]), how
//! much stock each cart has ([`stock`]) and where each cart last was
//! ([`carts`]). PostgreSQL and Kafka stay the
//! record; these are views of them with a stated staleness bound. The two
//! fed by Kafka share one loop, [`follow`], and keep only their state and
//! how a record changes it.

pub mod carts;
pub mod follow;
pub mod keys;
pub mod stock;

pub use carts::CartView;
pub use keys::{KeyDirectory, StaffDirectory};
pub use stock::StockView;
