//! One round of delivery: claim the notices due, compose and send each, and
//! record the outcome in `tuaton_store::notifications`.

use std::time::Duration;

use tuaton_store::StoreError;
use tuaton_store::notifications::{
    self, Channel, ClaimedNotification, FailureOutcome, NotificationKind, RetryPolicy,
};

use super::compose::{Sender, compose};
use super::transport::{OutgoingMail, SendError};
use crate::AppState;

/// Most notices claimed in one round. With [`SEND_TIMEOUT`] this bounds a
/// round that a slow relay drags out to ten minutes.
pub const BATCH: i64 = 20;

/// The longest one message may take to hand over, connection included.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a claim holds: the whole batch at its slowest plus a margin, so no
/// other process takes a notice this one is still sending.
fn lease() -> time::Duration {
    let secs = SEND_TIMEOUT.as_secs() * BATCH.unsigned_abs() + 60;
    time::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX))
}

/// What one round of delivery did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Handed to the relay (or outbox).
    pub sent: u32,
    /// Failed and scheduled again.
    pub retrying: u32,
    /// Failed for the last time.
    pub gave_up: u32,
    /// Claimed but given back untried (relay down, or a kind this build cannot send).
    pub released: u32,
    /// Waiting with no mailer configured.
    pub waiting_unsent: i64,
}

/// Claims the notices due now and sends them, one at a time, each within
/// [`SEND_TIMEOUT`]; records each outcome. With no mailer configured, counts
/// the waiting notices and warns instead. Errors of the store end the round
/// (the claims then lapse and the notices are due again).
pub async fn deliver_due(state: &AppState) -> Result<DeliveryReport, StoreError> {
    let store = state.store();
    let mut report = DeliveryReport::default();
    let mailer = state.services().mailer.clone();
    let sender = Sender::from_settings(state.settings());
    let (Some(mailer), Some(sender)) = (mailer, sender) else {
        report.waiting_unsent = notifications::waiting_count(store).await?;
        if report.waiting_unsent > 0 {
            tracing::warn!(
                waiting = report.waiting_unsent,
                "notices are waiting but no mail relay is configured (TUATON_SMTP_URL); they stay queued"
            );
        }
        return Ok(report);
    };
    let policy = RetryPolicy::default();
    let claimed = notifications::claim_due(store, state.now(), lease(), BATCH).await?;
    let mut claimed = claimed.into_iter();
    while let Some(c) = claimed.next() {
        let kind = NotificationKind::from_stored(&c.notice.kind);
        let channel = Channel::from_stored(&c.notice.channel);
        let (Some(kind), Some(Channel::Email)) = (kind, channel) else {
            // Written by a newer version sharing the database: leave it to that one.
            notifications::release(store, &c).await?;
            report.released += 1;
            continue;
        };
        let message = match compose(&c.notice, kind, &sender, state.now()) {
            Ok(m) => m,
            Err(e) => {
                let once = RetryPolicy {
                    max_attempts: 1,
                    ..policy
                };
                record_failure(state, &c, kind, &e.to_string(), &once, &mut report).await?;
                continue;
            }
        };
        let mail = OutgoingMail {
            notice_id: c.notice.id.clone(),
            message,
        };
        let result = tokio::time::timeout(SEND_TIMEOUT, mailer.send(&mail))
            .await
            .unwrap_or(Err(SendError::TimedOut));
        match result {
            Ok(()) => {
                if notifications::mark_sent(store, &c, state.now()).await? {
                    metrics::counter!("tuaton_notifications_sent_total", "kind" => kind.as_str())
                        .increment(1);
                    tracing::info!(notice = %c.notice.id, kind = kind.as_str(), "notice sent");
                    report.sent += 1;
                } else {
                    tracing::warn!(notice = %c.notice.id, "notice sent after its claim lapsed; another process may send it again");
                }
            }
            Err(e) => {
                record_failure(state, &c, kind, &e.reason(), &policy, &mut report).await?;
                if e.relay_down() {
                    for rest in claimed.by_ref() {
                        notifications::release(store, &rest).await?;
                        report.released += 1;
                    }
                }
            }
        }
    }
    Ok(report)
}

async fn record_failure(
    state: &AppState,
    c: &ClaimedNotification,
    kind: NotificationKind,
    reason: &str,
    policy: &RetryPolicy,
    report: &mut DeliveryReport,
) -> Result<(), StoreError> {
    let outcome = notifications::mark_failed(state.store(), c, state.now(), reason, policy).await?;
    let label = match outcome {
        FailureOutcome::RetryAt(next) => {
            report.retrying += 1;
            tracing::warn!(notice = %c.notice.id, reason, next_attempt = %next, "notice not delivered; will retry");
            "retrying"
        }
        FailureOutcome::GaveUp => {
            report.gave_up += 1;
            tracing::error!(notice = %c.notice.id, reason, "notice not delivered after the last attempt; given up");
            "gave_up"
        }
        FailureOutcome::ClaimLost => return Ok(()),
    };
    metrics::counter!("tuaton_notifications_failed_total", "kind" => kind.as_str(), "outcome" => label)
        .increment(1);
    Ok(())
}
