//! Delivery of back-channel logout tokens (OpenID Connect Back-Channel
//! Logout 1.0 §2.5), a step of upkeep: the service layer hands over the
//! tokens owed, signed (`tuaton_idm::oidc::backchannel`), and each is posted
//! as `logout_token` to its client's registered URI, all of a batch at
//! once, so one slow agency delays only its own. A 2xx answer is a
//! delivery; anything else, a timeout or a redirect (never followed: the
//! URI is the one registered) is tried again later.
//!
//! Outside development, Tuaton posts only over https and only to public
//! addresses: the name is resolved first, every address it gives must be
//! one the internet routes (not loopback, private, link-local, unique-local,
//! shared, documentation or multicast), and the connection goes to the
//! address checked, so a registration or a DNS answer cannot point Tuaton
//! at its own network.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tuaton_idm::{LogoutDelivery, LogoutOutcome};

use crate::AppState;

/// Most tokens sent in one round.
const BATCH: i64 = 20;

/// The longest one post may take, connection included.
const POST_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest resolving a client's host may take.
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

/// Why a post was not made or not accepted.
enum Refused {
    /// The URI or its addresses are not allowed.
    Address(&'static str),
    /// Made, and answered or failed as said.
    Post(String),
}

/// Posts `d`, checking where it goes unless `dev`: `Ok` for a 2xx answer.
async fn post(d: &LogoutDelivery, dev: bool) -> Result<(), Refused> {
    let mut client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(POST_TIMEOUT)
        .user_agent("Tuaton back-channel logout");
    if !dev {
        if d.uri.scheme() != "https" {
            return Err(Refused::Address("only https is posted to"));
        }
        let host = d
            .uri
            .host_str()
            .ok_or(Refused::Address("the URI has no host"))?;
        let port = d.uri.port_or_known_default().unwrap_or(443);
        let addrs: Vec<SocketAddr> =
            tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port)))
                .await
                .map_err(|_| Refused::Address("resolving the host timed out"))?
                .map_err(|_| Refused::Address("the host does not resolve"))?
                .collect();
        let first = *addrs
            .first()
            .ok_or(Refused::Address("the host does not resolve"))?;
        if addrs.iter().any(|a| !is_public(a.ip())) {
            return Err(Refused::Address(
                "the host resolves to an address that is not public",
            ));
        }
        // Connect to the address checked, not to a second answer.
        client = client.resolve(host, first);
    }
    let client = client
        .build()
        .map_err(|_| Refused::Post("no HTTP client could be made".into()))?;
    let answer = client
        .post(d.uri.clone())
        .form(&[("logout_token", d.token.as_str())])
        .send()
        .await
        .map_err(|e| {
            Refused::Post(if e.is_timeout() {
                "timed out".into()
            } else {
                "not reached".into()
            })
        })?;
    if answer.status().is_success() {
        Ok(())
    } else {
        Err(Refused::Post(answer.status().to_string()))
    }
}

/// Sends the logout tokens due now, at once, and records each outcome.
pub async fn deliver_due(state: &AppState) {
    let idm = state.idm();
    let due = match idm
        .logouts_due(&crate::oidc::issuer(state), state.now(), BATCH)
        .await
    {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "due back-channel logouts could not be read; will retry");
            return;
        }
    };
    let dev = state.settings().dev;
    let mut posts = tokio::task::JoinSet::new();
    for d in due {
        posts.spawn(async move {
            let sent = post(&d, dev).await;
            (d, sent)
        });
    }
    while let Some(done) = posts.join_next().await {
        let Ok((d, sent)) = done else {
            continue;
        };
        let reason = match &sent {
            Ok(()) => String::new(),
            Err(Refused::Address(why)) => (*why).to_owned(),
            Err(Refused::Post(why)) => why.clone(),
        };
        let label = match idm.logout_attempted(&d, sent.is_ok(), state.now()).await {
            Ok(LogoutOutcome::Delivered) => {
                tracing::info!(client = %d.client_id, grant = %d.grant_id, "back-channel logout delivered");
                "delivered"
            }
            Ok(LogoutOutcome::RetryAt(at)) => {
                tracing::warn!(client = %d.client_id, grant = %d.grant_id, %reason, next_attempt = %at, "back-channel logout not delivered; will retry");
                "retrying"
            }
            Ok(LogoutOutcome::GaveUp) => {
                tracing::error!(client = %d.client_id, grant = %d.grant_id, %reason, "back-channel logout not delivered after the last attempt; given up");
                "gave_up"
            }
            Ok(LogoutOutcome::LeaseLost) => "lease_lost",
            Err(e) => {
                tracing::warn!(error = %e, "a back-channel logout's outcome could not be recorded; it is sent again after its lease");
                "unrecorded"
            }
        };
        metrics::counter!("tuaton_backchannel_logouts_total", "outcome" => label).increment(1);
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
