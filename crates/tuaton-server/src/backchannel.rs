//! Delivery of back-channel logout tokens (OpenID Connect Back-Channel
//! Logout 1.0 §2.5), a step of upkeep: the service layer hands over the
//! tokens owed, signed (`tuaton_idm::oidc::backchannel`), and each is posted
//! as `logout_token` to its client's registered URI. A 2xx answer is a
//! delivery; anything else, a timeout or a redirect (never followed: the
//! URI is the one registered) is tried again later.

use std::sync::OnceLock;
use std::time::Duration;

use tuaton_idm::LogoutOutcome;

use crate::AppState;

/// Most tokens sent in one round; with [`POST_TIMEOUT`] this bounds a round
/// that slow agencies drag out.
const BATCH: i64 = 20;

/// The longest one post may take, connection included.
const POST_TIMEOUT: Duration = Duration::from_secs(10);

fn http() -> Option<&'static reqwest::Client> {
    static CLIENT: OnceLock<Option<reqwest::Client>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(POST_TIMEOUT)
                .user_agent("Tuaton back-channel logout")
                .build()
                .ok()
        })
        .as_ref()
}

/// Sends the logout tokens due now and records each outcome.
pub async fn deliver_due(state: &AppState) {
    let Some(http) = http() else {
        tracing::error!("no HTTP client for back-channel logout could be made");
        return;
    };
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
    for d in due {
        let sent = http
            .post(d.uri.clone())
            .form(&[("logout_token", d.token.as_str())])
            .send()
            .await;
        let delivered = sent.as_ref().is_ok_and(|r| r.status().is_success());
        let reason = match &sent {
            Ok(r) => r.status().to_string(),
            Err(e) if e.is_timeout() => "timed out".into(),
            Err(_) => "not reached".into(),
        };
        let label = match idm.logout_attempted(&d, delivered, state.now()).await {
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
            Err(e) => {
                tracing::warn!(error = %e, "a back-channel logout's outcome could not be recorded; it is sent again after its lease");
                "unrecorded"
            }
        };
        metrics::counter!("tuaton_backchannel_logouts_total", "outcome" => label).increment(1);
    }
}
