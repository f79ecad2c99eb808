//! Picking a loopback port for a listener that is bound later (a service
//! started from settings, by the benchmark or a test).
//!
//! Asking the kernel for port 0 returns a port from its ephemeral range, the
//! range every outgoing connection (a Kafka or PostgreSQL client) also takes
//! its local port from: between picking and binding, one of them can take
//! it, and the listener fails with "address already in use". Ports below that
//! range are handed out only to explicit binds, so a port found free there
//! stays free unless another listener asks for that very number.

use std::net::TcpListener;
use std::ops::Range;

/// Below Linux's default ephemeral range (32768–60999) and above the
/// well-known and registered ports the local stack uses (8080–9204).
const PICKED_FROM: Range<u16> = 20_000..32_000;

/// A loopback port no listener holds now, outside the ephemeral range.
pub fn unused_loopback_port() -> std::io::Result<u16> {
    // Start at a point derived from the process id and the clock, so that
    // processes started together do not walk the same sequence.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or(0)
        ^ std::process::id().rotate_left(16);
    let span = u32::from(PICKED_FROM.end - PICKED_FROM.start);
    let mut last_error = None;
    for step in 0..span {
        let offset = (seed.wrapping_add(step.wrapping_mul(7_919))) % span;
        let port = PICKED_FROM.start + u16::try_from(offset).unwrap_or(0);
        match TcpListener::bind(("127.0.0.1", port)) {
            Ok(listener) => return listener.local_addr().map(|address| address.port()),
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| std::io::Error::other("no port left to try")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_is_free_and_outside_the_ephemeral_range() {
        let port = unused_loopback_port().expect("a port");

        assert!(PICKED_FROM.contains(&port), "{port}");
        TcpListener::bind(("127.0.0.1", port)).expect("still free to bind");
    }
}
