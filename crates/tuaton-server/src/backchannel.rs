//! Delivery of back-channel logout tokens (OpenID Connect Back-Channel
//! Logout 1.0 §2.5), a step of upkeep: the service layer hands over the
//! tokens owed, signed (`tuaton_idm::oidc::backchannel`), and each is posted
//! as `logout_token` to its client's registered URI, all of a batch at
//! once, so one slow agency delays only its own. A 2xx answer is a
//! delivery; anything else, a timeout or a redirect (never followed: the
//! URI is the one registered) is tried again later.
//!
//! Where a post may go is `crate::outbound`'s rule: outside development,
//! https to public addresses only.

use std::time::Duration;

use tuaton_idm::{LogoutDelivery, LogoutOutcome};

use crate::AppState;

/// Most tokens sent in one round.
const BATCH: i64 = 20;

/// The longest one post may take, connection included.
const POST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a post was not made or not accepted.
enum Refused {
    /// The URI or its addresses are not allowed.
    Address(&'static str),
    /// Made, and answered or failed as said.
    Post(String),
}

/// Posts `d`, checking where it goes unless `dev`: `Ok` for a 2xx answer.
async fn post(d: &LogoutDelivery, dev: bool) -> Result<(), Refused> {
    let client =
        crate::outbound::client_for(&d.uri, dev, POST_TIMEOUT, "Tuaton back-channel logout")
            .await
            .map_err(Refused::Address)?;
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
