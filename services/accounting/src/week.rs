//! The guild's week (an ISO week, Monday 00:00 to Monday 00:00 in
//! America/Santiago): the rule lives in mamochi-rules, shared with the
//! gateway's open-week figures and the demo; accounting's modules name it
//! here as `crate::week`.

pub use mamochi_rules::week::{Week, ZONE};
