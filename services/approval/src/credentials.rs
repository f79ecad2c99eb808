//! API keys of new members. The generation, the stored digest and the
//! credentials email live in [`mamochi_events::credentials`], shared with the
//! gateway (which rotates and re-issues keys), so every key is made and
//! delivered the same way; this module names what approval uses of it.

pub use mamochi_events::credentials::{generate, NewApiKey, RandomError, PREFIX};
