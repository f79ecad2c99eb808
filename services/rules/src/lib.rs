//! The guild's rules that several services apply, in one home: the RUT and
//! its modulo-11 check digit, the cart plate, the phone number and the comuna
//! (each with its normal form; comunas also with their centres), distances on
//! the Earth ([`geo`]), pesos as Chileans write them, the average
//! ticket, SHA-256 digests of secrets, the guild's week (ISO weeks in
//! America/Santiago) and its day (local dates and hours, DST included).
//!
//! Pure functions only (no I/O, no clock, no randomness), so the gateway, the
//! approval service, accounting, the benchmark, the demo and the tests all
//! compute the same answer from the same input.

pub mod comuna;
pub mod day;
pub mod digest;
pub mod geo;
pub mod money;
pub mod phone;
pub mod plate;
pub mod rut;
pub mod week;
