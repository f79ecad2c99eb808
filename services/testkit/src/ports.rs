//! Free loopback ports for listeners a test starts: picked outside the
//! kernel's ephemeral range (see `mamochi_common::ports`), so another
//! engineer's or test's outgoing connection does not take them first.

pub use mamochi_common::ports::unused_loopback_port;

/// A loopback port no listener holds now.
pub fn free_port() -> u16 {
    unused_loopback_port().expect("a free loopback port")
}

/// `127.0.0.1:<free port>`, for a service's `*_LISTEN` setting.
pub fn free_listen() -> String {
    format!("127.0.0.1:{}", free_port())
}
