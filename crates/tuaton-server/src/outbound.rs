//! Requests Tuaton's server makes to addresses an agency registered (its
//! back-channel logout URI, its `jwks_uri`), and where they may go.
//!
//! Outside development, only https, and only to public addresses: the name
//! is resolved first, every address it gives must be one the internet
//! routes (not loopback, private, link-local, unique-local, shared,
//! documentation or multicast, IPv4-mapped ones included), and the
//! connection goes to the address checked, so neither a registration nor a
//! DNS answer can point Tuaton at its own network (server-side request
//! forgery). Redirects are never followed. In development (`--dev`, which
//! listens on loopback only) loopback agencies are allowed, for the tests.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use url::Url;

/// The longest resolving a host may take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether the internet routes `ip`: what a back-channel post may reach.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        || a >= 240
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b)))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        || (first == 0x0064 && ip.segments()[1] == 0xff9b))
}

/// An HTTP client for one request to `uri`, within `timeout`, that reaches
/// only what the rule above allows (anything, when `dev`).
pub(crate) async fn client_for(
    uri: &Url,
    dev: bool,
    timeout: Duration,
    agent: &'static str,
) -> Result<reqwest::Client, &'static str> {
    let mut client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .user_agent(agent);
    if !dev {
        if uri.scheme() != "https" {
            return Err("only https is reached");
        }
        let host = uri.host_str().ok_or("the URI has no host")?;
        let port = uri.port_or_known_default().unwrap_or(443);
        let addrs: Vec<SocketAddr> =
            tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port)))
                .await
                .map_err(|_| "resolving the host timed out")?
                .map_err(|_| "the host does not resolve")?
                .collect();
        let first = *addrs.first().ok_or("the host does not resolve")?;
        if addrs.iter().any(|a| !is_public(a.ip())) {
            return Err("the host resolves to an address that is not public");
        }
        // Connect to the address checked, not to a second answer.
        client = client.resolve(host, first);
    }
    client.build().map_err(|_| "no HTTP client could be made")
}

/// The largest key set fetched from a `jwks_uri`.
const MAX_KEY_SET: usize = 64 * 1024;

/// Fetches clients' key sets from their `jwks_uri` under the rule above.
pub(crate) struct GuardedJwksFetcher {
    /// Whether this is a development server (loopback agencies allowed).
    pub dev: bool,
}

#[async_trait::async_trait]
impl tuaton_idm::JwksFetcher for GuardedJwksFetcher {
    async fn fetch(&self, uri: &Url) -> Result<serde_json::Value, String> {
        let client = client_for(
            uri,
            self.dev,
            Duration::from_secs(5),
            "Tuaton key set fetch",
        )
        .await
        .map_err(str::to_owned)?;
        let answer = client
            .get(uri.clone())
            .header(
                reqwest::header::ACCEPT,
                "application/json, application/jwk-set+json",
            )
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    "timed out".to_owned()
                } else {
                    "not reached".to_owned()
                }
            })?;
        if !answer.status().is_success() {
            return Err(format!("answered {}", answer.status()));
        }
        if answer
            .content_length()
            .is_some_and(|n| n > MAX_KEY_SET as u64)
        {
            return Err("the key set is too large".into());
        }
        let body = answer
            .bytes()
            .await
            .map_err(|_| "the key set could not be read".to_owned())?;
        if body.len() > MAX_KEY_SET {
            return Err("the key set is too large".into());
        }
        serde_json::from_slice(&body).map_err(|_| "the key set is not JSON".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_addresses_the_internet_routes_are_public() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "2001:db8::1",
        ] {
            assert!(
                !is_public(internal.parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))),
                "{internal}"
            );
        }
        for public in ["203.150.10.1", "8.8.8.8", "2606:4700::1111"] {
            assert!(
                is_public(public.parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))),
                "{public}"
            );
        }
    }
}
