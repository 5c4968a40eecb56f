//! Rate limits on ceremonies: per client address and per account.
//!
//! Every start and finish of enrolment, passkey registration, login and
//! recovery passes a per-address limit (a route layer) and, once the account is
//! known, a per-account limit. The address is the TCP peer's, or behind a
//! trusted reverse proxy the client's (see [`crate::client_address`]). Limits
//! are kept in each process's memory: with several instances the effective
//! limit is at most the per-instance limit times the number of instances,
//! which still bounds guessing. Refusals are counted in metrics and logged
//! without personal data; they are not written to the audit log, so a flood
//! cannot grow it.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::client_address::ClientAddress;
use crate::{ApiError, AppState};

/// The two limiters.
#[derive(Clone)]
pub struct RateLimits {
    per_address: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    per_account: Arc<DefaultKeyedRateLimiter<String>>,
}

fn quota(per_minute: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN))
}

impl RateLimits {
    /// Limits allowing `per_address` and `per_account` ceremony requests a minute (each with that burst).
    pub fn new(per_address: u32, per_account: u32) -> Self {
        Self {
            per_address: Arc::new(RateLimiter::keyed(quota(per_address))),
            per_account: Arc::new(RateLimiter::keyed(quota(per_account))),
        }
    }

    /// Counts one request from `addr`.
    pub fn check_address(&self, addr: IpAddr) -> Result<(), ApiError> {
        self.per_address
            .check_key(&addr)
            .map_err(|_| refused("address"))
    }

    /// Forgets keys whose limits have fully recovered, bounding memory.
    pub fn shrink(&self) {
        self.per_address.retain_recent();
        self.per_account.retain_recent();
        self.per_address.shrink_to_fit();
        self.per_account.shrink_to_fit();
    }
}

/// The per-account limit, as the service layer counts it once it knows the account.
impl tuaton_idm::AccountLimiter for RateLimits {
    fn allow(&self, account: &tuaton_core::AccountId) -> bool {
        self.per_account.check_key(&account.to_string()).is_ok()
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
    match state.rate_limits().check_address(addr) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}
