//! Rate limits on ceremonies: per client address and per account.
//!
//! Every start and finish of enrolment, passkey registration, login and
//! recovery passes a per-address limit (a route layer) and, once the account is
//! known, a per-account limit; the signed-in routes (`/me…`, whose company
//! checks call the registry) pass a per-address limit of their own, five
//! times the ceremony limit. The address is the TCP peer's, or behind a
//! trusted reverse proxy the client's (see [`crate::client_address`]); an
//! IPv6 client is counted by its /64 network, the block one subscriber is
//! usually given, so stepping through its own addresses gains nothing. At
//! most [`MAX_TRACKED`] addresses are tracked per limiter: past that, new
//! ones share one bucket, so a flood of addresses neither grows memory
//! without bound nor escapes the limit. Limits
//! are kept in each process's memory: with several instances the effective
//! limit is at most the per-instance limit times the number of instances,
//! which still bounds guessing. Refusals are counted in metrics and logged
//! without personal data; they are not written to the audit log, so a flood
//! cannot grow it.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::client_address::ClientAddress;
use crate::{ApiError, AppState};

/// The most clients one address limiter tracks at once.
pub const MAX_TRACKED: usize = 100_000;

/// Clients past [`MAX_TRACKED`] share this many buckets (by a hash of the
/// client), so a flood that fills a limiter slows its own bucket and a few
/// neighbours, not everyone.
const OVERFLOW_BUCKETS: u64 = 1024;

/// The shared bucket a client past the cap is counted in: an address in
/// `::/118`, which no real client has.
fn overflow_key(client: IpAddr) -> IpAddr {
    let bucket = u128::from(fnv(client.to_string().as_bytes()) % OVERFLOW_BUCKETS);
    IpAddr::V6(Ipv6Addr::from(bucket))
}

/// FNV-1a, enough to spread clients over buckets (not a security hash:
/// a client choosing its bucket gains nothing).
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Whether the limiter is full; a full one is pruned first, at most once a
/// second (pruning walks the whole table).
fn full<K: std::hash::Hash + Eq + Clone>(
    limiter: &DefaultKeyedRateLimiter<K>,
    max: usize,
    last_prune: &std::sync::atomic::AtomicU64,
) -> bool {
    if limiter.len() < max {
        return false;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if last_prune.swap(now, std::sync::atomic::Ordering::Relaxed) != now {
        limiter.retain_recent();
    }
    limiter.len() >= max
}

/// The limiters.
#[derive(Clone)]
pub struct RateLimits {
    per_address: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    signed_in: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    back_channel: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    per_account: Arc<DefaultKeyedRateLimiter<String>>,
    max_tracked: usize,
    last_prune: Arc<std::sync::atomic::AtomicU64>,
}

/// What an address limit counts: an IPv4 address (an IPv4-mapped IPv6
/// address is the IPv4 one), or an IPv6 /64 network.
pub fn client_key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        },
    }
}

/// Counts one request from `addr` in `limiter`, tracking at most `max` clients.
fn count(
    limiter: &DefaultKeyedRateLimiter<IpAddr>,
    addr: IpAddr,
    max: usize,
    last_prune: &std::sync::atomic::AtomicU64,
    scope: &'static str,
) -> Result<(), ApiError> {
    let client = client_key(addr);
    let key = if full(limiter, max, last_prune) {
        overflow_key(client)
    } else {
        client
    };
    limiter.check_key(&key).map_err(|_| refused(scope))
}

fn quota(per_minute: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN))
}

impl RateLimits {
    /// Limits allowing `per_address` and `per_account` ceremony requests a minute (each with that burst).
    pub fn new(per_address: u32, per_account: u32) -> Self {
        Self::tracking(per_address, per_account, MAX_TRACKED)
    }

    /// The same, tracking at most `max_tracked` clients per address limiter.
    pub fn tracking(per_address: u32, per_account: u32, max_tracked: usize) -> Self {
        Self {
            per_address: Arc::new(RateLimiter::keyed(quota(per_address))),
            signed_in: Arc::new(RateLimiter::keyed(quota(per_address.saturating_mul(5)))),
            // An agency's back end sends every one of its users' token
            // requests from a few addresses.
            back_channel: Arc::new(RateLimiter::keyed(quota(
                per_address.saturating_mul(BACK_CHANNEL_SHARE),
            ))),
            per_account: Arc::new(RateLimiter::keyed(quota(per_account))),
            max_tracked,
            last_prune: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        }
    }

    /// Counts one ceremony request from `addr`.
    pub fn check_address(&self, addr: IpAddr) -> Result<(), ApiError> {
        count(
            &self.per_address,
            addr,
            self.max_tracked,
            &self.last_prune,
            "address",
        )
    }

    /// Counts one signed-in request from `addr`.
    pub fn check_signed_in(&self, addr: IpAddr) -> Result<(), ApiError> {
        count(
            &self.signed_in,
            addr,
            self.max_tracked,
            &self.last_prune,
            "signed_in",
        )
    }

    /// Counts one OpenID Provider back-channel request (token, PAR,
    /// revocation, introspection, userinfo, logout) from `addr`.
    pub fn check_back_channel(&self, addr: IpAddr) -> Result<(), ApiError> {
        count(
            &self.back_channel,
            addr,
            self.max_tracked,
            &self.last_prune,
            "back_channel",
        )
    }

    /// Forgets keys whose limits have fully recovered, bounding memory.
    pub fn shrink(&self) {
        self.per_address.retain_recent();
        self.signed_in.retain_recent();
        self.back_channel.retain_recent();
        self.per_account.retain_recent();
        self.per_address.shrink_to_fit();
        self.signed_in.shrink_to_fit();
        self.back_channel.shrink_to_fit();
        self.per_account.shrink_to_fit();
    }
}

/// The per-account limit, as the service layer counts it once it knows the account.
///
/// Each account's budget is kept per client (IPv4 address or IPv6 /64), so a
/// stranger calling login start with the victim's citizen id spends only
/// their own share: the owner, from their own address, still gets in. Past
/// `max_tracked` pairs every further one is counted in one of the shared
/// buckets of its client, as the address limiters do. Outside a request (tools, tests) the account alone is the key.
impl tuaton_idm::AccountLimiter for RateLimits {
    fn allow(&self, account: &tuaton_core::AccountId) -> bool {
        let client = CLIENT.try_with(|c| *c).ok();
        let mut key = match client {
            Some(client) => format!("{account}@{client}"),
            None => account.to_string(),
        };
        if full(&self.per_account, self.max_tracked, &self.last_prune) {
            key = match client {
                Some(c) => format!("overflow@{}", overflow_key(c)),
                None => "overflow".to_owned(),
            };
        }
        self.per_account.check_key(&key).is_ok()
    }
}

/// The refusal for a spent limit, counted and logged without personal data.
pub(crate) fn refused(scope: &'static str) -> ApiError {
    metrics::counter!("tuaton_rate_limited_total", "scope" => scope).increment(1);
    tracing::info!(scope, "rate limit reached");
    ApiError::new(
        http::StatusCode::TOO_MANY_REQUESTS,
        tuaton_core::ErrorCode::RateLimited,
        "Too many attempts. Wait a minute and try again.",
    )
    .with_retry_after(60)
}

/// Route layer: the per-address limit, keyed by [`ClientAddress`] (the peer,
/// or the client a trusted proxy names). Requests without a peer address
/// (in-process tests) share the unspecified address.
pub(crate) async fn per_address(
    State(state): State<AppState>,
    ClientAddress(addr): ClientAddress,
    req: Request,
    next: Next,
) -> Response {
    limited(state.rate_limits().check_address(addr), addr, req, next).await
}

/// Route layer: the signed-in routes' per-address limit.
pub(crate) async fn signed_in(
    State(state): State<AppState>,
    ClientAddress(addr): ClientAddress,
    req: Request,
    next: Next,
) -> Response {
    limited(state.rate_limits().check_signed_in(addr), addr, req, next).await
}

/// Route layer: the OpenID Provider's back-channel limit per address, a
/// larger budget than a person's ([`BACK_CHANNEL_SHARE`] times).
pub(crate) async fn back_channel(
    State(state): State<AppState>,
    ClientAddress(addr): ClientAddress,
    req: Request,
    next: Next,
) -> Response {
    limited(
        state.rate_limits().check_back_channel(addr),
        addr,
        req,
        next,
    )
    .await
}

/// How many times the per-address budget an address gets at the OpenID
/// Provider's back-channel endpoints.
pub const BACK_CHANNEL_SHARE: u32 = 20;

tokio::task_local! {
    /// The client (its limit key) of the request being served, for the
    /// per-account limit the service layer counts deeper down.
    static CLIENT: IpAddr;
}

/// Passes the request on if its limit allowed it, with its client known to
/// the per-account limit.
async fn limited(
    counted: Result<(), ApiError>,
    addr: IpAddr,
    req: Request,
    next: Next,
) -> Response {
    match counted {
        Ok(()) => CLIENT.scope(client_key(addr), next.run(req)).await,
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_ipv6_client_is_counted_by_its_64_network() {
        let limits = RateLimits::new(2, 100);
        for a in [
            "2001:db8:1:2::1",
            "2001:db8:1:2::ffff",
            "2001:db8:1:2:abcd::9",
        ] {
            let _ = limits.check_address(ip(a));
        }
        assert!(
            limits.check_address(ip("2001:db8:1:2:ffff::1")).is_err(),
            "same /64, spent"
        );
        assert!(
            limits.check_address(ip("2001:db8:1:3::1")).is_ok(),
            "another /64"
        );
        assert_eq!(client_key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(client_key(ip("192.0.2.7")), ip("192.0.2.7"));
    }

    #[test]
    fn past_the_cap_clients_share_a_bounded_set_of_buckets() {
        let limits = RateLimits::tracking(1, 100, 3);
        for a in ["192.0.2.1", "192.0.2.2", "192.0.2.3"] {
            assert!(limits.check_address(ip(a)).is_ok(), "{a}");
        }
        assert!(
            limits.check_address(ip("192.0.2.4")).is_ok(),
            "its shared bucket's one request"
        );
        assert!(
            limits.check_address(ip("192.0.2.4")).is_err(),
            "a client past the cap is still limited"
        );
        for i in 0..5000u32 {
            let _ = limits.check_address(IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i)));
        }
        assert!(
            limits.per_address.len() <= 3 + OVERFLOW_BUCKETS as usize,
            "memory stays bounded: {}",
            limits.per_address.len()
        );
    }
}
