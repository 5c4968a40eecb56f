//! Back-channel logout (OpenID Connect Back-Channel Logout 1.0): when a
//! person's session with a client ends on Tuaton's side — a logout, logging
//! out everywhere, recovery, a cloned authenticator, a suspension, a
//! consent withdrawn — the grant is revoked and marked as owing its client
//! a logout token, in the transaction that ends it. Upkeep then asks
//! [`Idm::logouts_due`] for the tokens owed, signed with the id-token key
//! and naming the client's `sub` and the session (`sid`, the grant the ID
//! token named), posts each to the client's `backchannel_logout_uri`, and
//! reports with [`Idm::logout_attempted`]: delivered, or tried again later
//! with a growing delay, until [`MAX_ATTEMPTS`].
//!
//! A due logout is claimed for [`LEASE`] before it is signed, so two
//! processes sharing the store do not both send it; a sender that dies
//! leaves the lease to lapse, and the token is sent again (the client
//! treats a repeated logout as done, §2.8).

use time::{Duration, OffsetDateTime};
use tuaton_oidc::logout::{LOGOUT_TOKEN_TYP, logout_token_claims};
use tuaton_store::oidc as store;
use url::Url;

use crate::{Idm, IdmError};

/// How long a claimed logout is held by the process sending it: longer
/// than a round of upkeep takes to post a batch.
pub const LEASE: Duration = Duration::minutes(5);

/// After this many failed attempts a logout is given up (and logged).
pub const MAX_ATTEMPTS: i64 = 5;

/// A logout token owed to a client, signed and ready to post.
#[derive(Debug, Clone)]
pub struct LogoutDelivery {
    /// The grant that ended.
    pub grant_id: String,
    /// Its client.
    pub client_id: String,
    /// Where the token goes.
    pub uri: Url,
    /// The logout token (a JWT, `typ` `logout+jwt`).
    pub token: String,
    /// Failed attempts before this one.
    pub attempts: i64,
    /// The lease this sender holds it under.
    lease_until: OffsetDateTime,
}

/// What became of an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogoutOutcome {
    /// The client answered 2xx: nothing more is owed.
    Delivered,
    /// Tried again at the time given.
    RetryAt(OffsetDateTime),
    /// Failed for the last time.
    GaveUp,
    /// The lease ran out before the outcome came, and another sender holds
    /// the logout now: nothing was recorded.
    LeaseLost,
}

/// The delay before attempt `n + 1` after `n` failures: 30 s, 2 min, 10 min, 1 h.
fn backoff(failures: i64) -> Duration {
    match failures {
        ..=1 => Duration::seconds(30),
        2 => Duration::minutes(2),
        3 => Duration::minutes(10),
        _ => Duration::hours(1),
    }
}

impl Idm {
    /// Up to `limit` logout tokens owed now, each claimed for [`LEASE`] and
    /// signed. A grant whose client is gone, has no back-channel URI, or
    /// whose grant names no person, owes nothing and is cleared.
    pub async fn logouts_due(
        &self,
        issuer: &str,
        now: OffsetDateTime,
        limit: i64,
    ) -> Result<Vec<LogoutDelivery>, IdmError> {
        let due = store::logouts_due(now, limit)
            .run(self.store().conn().await?.conn())
            .await?;
        let mut out = Vec::new();
        for g in due {
            let Some(seen) = g.logout_due_at else {
                continue;
            };
            let lease_until = now + LEASE;
            let claimed = store::claim_logout(&g.id, seen, lease_until)
                .run(self.store().conn().await?.conn())
                .await?;
            if !claimed {
                continue;
            }
            let client = self.find_client(&g.client_id).await?;
            let target = client.and_then(|c| {
                let uri = c.backchannel_logout_uri.clone()?;
                Some((c, uri, g.account_id.clone()?))
            });
            let Some((client, uri, account)) = target else {
                store::logout_attempted(&g.id, lease_until, g.logout_attempts, None)
                    .run(self.store().conn().await?.conn())
                    .await?;
                continue;
            };
            let sub = self.subject(&client, &account, now).await?;
            let claims = logout_token_claims(
                issuer,
                &client.client_id,
                &sub,
                &g.id,
                &tuaton_store::new_id(),
                now,
            );
            let signed = self
                .sign_tokens(&client, vec![(LOGOUT_TOKEN_TYP, claims)], now)
                .await;
            let delivery = LogoutDelivery {
                grant_id: g.id,
                client_id: client.client_id,
                uri,
                token: String::new(),
                attempts: g.logout_attempts,
                lease_until,
            };
            match signed.map(|mut t| t.pop()) {
                Ok(Some(token)) => out.push(LogoutDelivery { token, ..delivery }),
                // No key can sign for the client now (none active, or not
                // its algorithm): an attempt that failed, like a post.
                Ok(None) | Err(_) => {
                    tracing::warn!(grant = %delivery.grant_id, client = %delivery.client_id, "a logout token could not be signed");
                    self.logout_attempted(&delivery, false, now).await?;
                }
            }
        }
        Ok(out)
    }

    /// Records the outcome of posting `d`: `delivered` when the client
    /// answered 2xx.
    pub async fn logout_attempted(
        &self,
        d: &LogoutDelivery,
        delivered: bool,
        now: OffsetDateTime,
    ) -> Result<LogoutOutcome, IdmError> {
        let (attempts, next, outcome) = if delivered {
            (d.attempts, None, LogoutOutcome::Delivered)
        } else if d.attempts + 1 >= MAX_ATTEMPTS {
            (d.attempts + 1, None, LogoutOutcome::GaveUp)
        } else {
            let at = now + backoff(d.attempts + 1);
            (d.attempts + 1, Some(at), LogoutOutcome::RetryAt(at))
        };
        let recorded = store::logout_attempted(&d.grant_id, d.lease_until, attempts, next)
            .run(self.store().conn().await?.conn())
            .await?;
        Ok(if recorded {
            outcome
        } else {
            LogoutOutcome::LeaseLost
        })
    }
}
