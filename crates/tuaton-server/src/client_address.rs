//! The client address a request is counted under (per-address rate limits):
//! the TCP peer, or, when the peer is a reverse proxy the operator trusts,
//! the address the proxies recorded in `X-Forwarded-For`.
//!
//! Every proxy appends the address it received the request from, so the
//! header reads `client, proxy1, proxy2` and the right end is the most
//! recent. Anything left of the first untrusted address may have been written
//! by the client itself, so the walk goes from the right and stops there.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use http::HeaderMap;
use http::request::Parts;
use ipnet::IpNet;

use crate::AppState;

/// The header proxies write the addresses into.
const FORWARDED_FOR: &str = "x-forwarded-for";

/// Reverse proxies whose `X-Forwarded-For` is believed. Empty: none, the TCP
/// peer is always the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Trusts no proxy.
    pub fn none() -> Self {
        Self::default()
    }

    /// Reads a comma-separated list of IP addresses and CIDR ranges. On error,
    /// says which item is wrong and why.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for item in list.split(',').map(str::trim) {
            if item.is_empty() {
                if list.trim().is_empty() {
                    continue;
                }
                return Err("an empty item".into());
            }
            let net = if item.contains('/') {
                let net: IpNet = item
                    .parse()
                    .map_err(|_| format!("`{item}` is not a CIDR range"))?;
                if net.prefix_len() == 0 {
                    // Every address would be a proxy, so every client could
                    // name its own address and escape its limit.
                    return Err(format!("`{item}` would trust every address"));
                }
                net.trunc()
            } else {
                let ip: IpAddr = item
                    .parse()
                    .map_err(|_| format!("`{item}` is not an IP address"))?;
                IpNet::from(ip.to_canonical())
            };
            nets.push(net);
        }
        Ok(Self(nets))
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is one of the trusted proxies.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|n| n.contains(&ip))
    }
}

/// The client address of a request given its TCP `peer` (`None` when there
/// is no socket, as in in-process tests: then the unspecified address, and
/// the header is not consulted).
pub fn client_address(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &TrustedProxies,
) -> IpAddr {
    let Some(peer) = peer.map(|p| p.to_canonical()) else {
        return IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    };
    if !trusted.contains(peer) {
        return peer;
    }
    // Later header lines were added later: read lines and items right to left.
    let mut lines = headers.get_all(FORWARDED_FOR).iter().rev().peekable();
    if lines.peek().is_none() {
        return peer;
    }
    for line in lines {
        let Ok(text) = line.to_str() else {
            return peer;
        };
        for item in text.rsplit(',') {
            match hop(item.trim()) {
                // The first address a trusted proxy vouches for that is not
                // itself a proxy: the client.
                Some(ip) if !trusted.contains(ip) => return ip,
                Some(_) => {}
                // A trusted proxy wrote something we cannot read: do not
                // guess further left, where the client may have written.
                None => return peer,
            }
        }
    }
    // Every hop was a trusted proxy: the request began at one of them.
    peer
}

/// One `X-Forwarded-For` item; some proxies add the port.
fn hop(item: &str) -> Option<IpAddr> {
    item.parse::<IpAddr>()
        .or_else(|_| item.parse::<SocketAddr>().map(|a| a.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

/// Extractor: the request's client address under the configured proxies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        Ok(Self(client_address(
            peer,
            &parts.headers,
            &state.settings().trusted_proxies,
        )))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(FORWARDED_FOR, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn proxies() -> TrustedProxies {
        TrustedProxies::parse("10.0.0.0/8, 192.0.2.7, 2001:db8::/32").unwrap()
    }

    #[test]
    fn header_from_an_untrusted_peer_is_ignored() {
        let spoofed = headers(&["198.51.100.1"]);
        assert_eq!(
            client_address(Some(ip("203.0.113.9")), &spoofed, &proxies()),
            ip("203.0.113.9")
        );
        // With no proxies configured, nobody's header counts.
        assert_eq!(
            client_address(Some(ip("10.0.0.1")), &spoofed, &TrustedProxies::none()),
            ip("10.0.0.1")
        );
        // Without a socket there is no peer to trust.
        assert_eq!(
            client_address(None, &spoofed, &proxies()),
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        );
    }

    #[test]
    fn trusted_proxy_names_the_client() {
        let h = headers(&["198.51.100.1"]);
        assert_eq!(
            client_address(Some(ip("10.1.2.3")), &h, &proxies()),
            ip("198.51.100.1")
        );
        // Dual-stack sockets report IPv4 peers as IPv4-mapped IPv6.
        assert_eq!(
            client_address(Some(ip("::ffff:10.1.2.3")), &h, &proxies()),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn chain_of_trusted_proxies_is_walked_from_the_right() {
        // client → 192.0.2.7 → 10.0.0.2 → us (peer 10.0.0.1); the client
        // also sent its own forged entry, which stays left of its address.
        let h = headers(&["1.1.1.1, 198.51.100.1, 192.0.2.7, 10.0.0.2"]);
        assert_eq!(
            client_address(Some(ip("10.0.0.1")), &h, &proxies()),
            ip("198.51.100.1")
        );
        // The same chain split over several header lines.
        let h = headers(&["1.1.1.1", "198.51.100.1", "192.0.2.7, 10.0.0.2"]);
        assert_eq!(
            client_address(Some(ip("10.0.0.1")), &h, &proxies()),
            ip("198.51.100.1")
        );
        // Ports and IPv6 clients.
        let h = headers(&["[2001:db9::1]:4711, 10.0.0.2:443"]);
        assert_eq!(
            client_address(Some(ip("10.0.0.1")), &h, &proxies()),
            ip("2001:db9::1")
        );
        // Nothing but proxies: the request began at a proxy.
        let h = headers(&["10.0.0.3, 10.0.0.2"]);
        assert_eq!(
            client_address(Some(ip("10.0.0.1")), &h, &proxies()),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn missing_or_garbage_header_falls_back_to_the_peer() {
        let peer = Some(ip("10.0.0.1"));
        for h in [
            HeaderMap::new(),
            headers(&["not an address"]),
            headers(&[""]),
            headers(&["198.51.100.1, garbage"]),
            headers(&["unknown, 10.0.0.2"]),
        ] {
            assert_eq!(
                client_address(peer, &h, &proxies()),
                ip("10.0.0.1"),
                "{h:?}"
            );
        }
        let mut h = HeaderMap::new();
        h.append(
            FORWARDED_FOR,
            HeaderValue::from_bytes(b"198.51.100.1\xff").unwrap(),
        );
        assert_eq!(client_address(peer, &h, &proxies()), ip("10.0.0.1"));
        // Garbage the client wrote left of its own address changes nothing.
        let h = headers(&["garbage, 198.51.100.1"]);
        assert_eq!(client_address(peer, &h, &proxies()), ip("198.51.100.1"));
    }

    #[test]
    fn proxy_lists_parse_and_refuse_what_would_trust_everyone() {
        assert!(TrustedProxies::parse("").unwrap().is_empty());
        assert!(TrustedProxies::parse("  ").unwrap().is_empty());
        let p = TrustedProxies::parse("10.0.0.1/8, ::1").unwrap();
        assert!(p.contains(ip("10.255.0.1")) && p.contains(ip("::1")));
        assert!(!p.contains(ip("11.0.0.1")));
        for (bad, why) in [
            ("0.0.0.0/0", "every address"),
            ("::/0", "every address"),
            ("10.0.0.0/33", "CIDR"),
            ("proxy.internal", "IP address"),
            ("10.0.0.1,,10.0.0.2", "empty"),
        ] {
            let e = TrustedProxies::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
