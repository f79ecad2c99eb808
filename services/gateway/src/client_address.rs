//! Who a request comes from, for the per-address abuse limits: the TCP
//! peer's address, or — only when the peer is a configured trusted proxy —
//! the client that proxy names in `X-Forwarded-For`.
//!
//! Guarantee: a client that talks to the gateway directly cannot choose its
//! address by sending `X-Forwarded-For`; the header is read only from the
//! proxies in `gateway.rate_limits.trusted_proxies`, and then from the right
//! (the entry the last trusted proxy appended), skipping trusted proxies, so
//! a client cannot pick its address behind a proxy either. IPv6 addresses
//! count per /64 (what one subscriber is usually given), so one client
//! cannot escape its limit by cycling through its own prefix.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv6Addr};

use actix_web::HttpRequest;

/// The header a reverse proxy appends the client's address to.
pub const FORWARDED_FOR: &str = "X-Forwarded-For";

/// Why the trusted-proxy setting could not be read.
#[derive(Debug, thiserror::Error)]
#[error("gateway.rate_limits.trusted_proxies: {entry:?} is not an IP address")]
pub struct BadProxyList {
    pub entry: String,
}

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(HashSet<IpAddr>);

impl TrustedProxies {
    /// Parses a comma-separated list of IP addresses (empty: none).
    pub fn parse(list: &str) -> Result<Self, BadProxyList> {
        let mut proxies = HashSet::new();
        for entry in list.split(',').map(str::trim).filter(|entry| !entry.is_empty()) {
            let address: IpAddr = entry.parse().map_err(|_| BadProxyList { entry: entry.to_string() })?;
            proxies.insert(canonical(address));
        }
        Ok(Self(proxies))
    }

    fn trusts(&self, address: IpAddr) -> bool {
        self.0.contains(&canonical(address))
    }

    /// The client's address as the limits count it; `None` when the peer is
    /// unknown (a request not read from a socket, as in unit tests).
    pub fn client_of(&self, request: &HttpRequest) -> Option<IpAddr> {
        let peer = canonical(request.peer_addr()?.ip());
        if !self.trusts(peer) {
            return Some(bucket(peer));
        }
        // Every X-Forwarded-For line, in order, read right to left: the last
        // entry was appended by the proxy that connected to us.
        let forwarded: Vec<&str> = request
            .headers()
            .get_all(FORWARDED_FOR)
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect();
        for entry in forwarded.iter().rev() {
            match entry.parse::<IpAddr>() {
                Ok(address) if self.trusts(address) => continue,
                Ok(address) => return Some(bucket(canonical(address))),
                // Garbage where an address should be: whoever wrote it is
                // not to be believed further left, and the proxy is the
                // nearest address we know.
                Err(_) => break,
            }
        }
        Some(bucket(peer))
    }
}

/// IPv4-mapped IPv6 addresses as the IPv4 address they are.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The unit a limit counts: an IPv4 address, or an IPv6 /64.
fn bucket(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1_u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn request(peer: &str, forwarded: &[&str]) -> HttpRequest {
        let mut request = TestRequest::default().peer_addr(format!("{peer}:40000").parse().expect("socket address"));
        for value in forwarded {
            request = request.append_header((FORWARDED_FOR, *value));
        }
        request.to_http_request()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let proxies = TrustedProxies::parse("").expect("empty list");
        assert_eq!(proxies.client_of(&request("198.51.100.7", &["203.0.113.9"])), Some(ip("198.51.100.7")));
    }

    #[test]
    fn behind_a_trusted_proxy_the_rightmost_untrusted_entry_is_the_client() {
        let proxies = TrustedProxies::parse("10.0.0.1, 10.0.0.2").expect("list");
        // The client tried to pose as 192.0.2.1; the proxies appended the truth.
        let forwarded = request("10.0.0.1", &["192.0.2.1, 203.0.113.9", "10.0.0.2"]);
        assert_eq!(proxies.client_of(&forwarded), Some(ip("203.0.113.9")));
        // No header, or garbage: the proxy itself.
        assert_eq!(proxies.client_of(&request("10.0.0.1", &[])), Some(ip("10.0.0.1")));
        assert_eq!(proxies.client_of(&request("10.0.0.1", &["not-an-ip"])), Some(ip("10.0.0.1")));
    }

    #[test]
    fn ipv6_counts_per_slash_64_and_mapped_ipv4_as_ipv4() {
        let proxies = TrustedProxies::default();
        let one = proxies.client_of(&request("[2001:db8:1:2:aaaa::1]", &[]));
        let other = proxies.client_of(&request("[2001:db8:1:2:bbbb::9]", &[]));
        assert_eq!(one, other);
        assert_eq!(one, Some(ip("2001:db8:1:2::")));
        assert_eq!(proxies.client_of(&request("[::ffff:198.51.100.7]", &[])), Some(ip("198.51.100.7")));
    }

    #[test]
    fn a_bad_proxy_entry_is_named() {
        let error = TrustedProxies::parse("10.0.0.1, proxy.local").expect_err("not an address");
        assert_eq!(error.entry, "proxy.local");
    }
}
