//! Background upkeep every `tuaton serve` process runs: scheduled key
//! rotations that are due (`TUATON_ROTATION`), key state transitions
//! that have come due (pre-publication over, retiring keys past their last
//! expiry), certificates for CA and responder keys that need one, removal of expired ceremonies and sessions, and the retention
//! periods: withdrawn consents and notices older than configured are deleted;
//! last, delivery of the notices that are due (`crate::notify`) and of the
//! back-channel logout tokens owed to agencies (`crate::backchannel`). Every step is a
//! conditional update (notices: a claim with a lease), so any number of
//! processes on one PostgreSQL apply each change once.

use std::time::Duration;

use crate::AppState;

/// Runs one round of upkeep; errors are logged, never fatal.
pub async fn run_once(state: &AppState) {
    let now = state.now();
    crate::custody::rotate_on_schedule(
        state.store(),
        &state.services().keys,
        &state.settings().rotation,
        now,
    )
    .await;
    match tuaton_store::keys::tick(state.store(), now).await {
        Ok(report) => tracing::debug!(?report, "key transitions applied"),
        Err(e) => tracing::warn!(error = %e, "key transitions could not be applied; will retry"),
    }
    // A rotated CA or responder key gets its certificate, and a responder's
    // certificate is renewed before it ends.
    if state.idm().ca_plan().is_some()
        && let Err(e) = state.idm().certify_hierarchy(now, "system", false).await
    {
        tracing::warn!(error = %e, "the CA hierarchy could not be certified; will retry");
    }
    // A former director's representative certificates end once the
    // registry, asked again, no longer lists them.
    if state.idm().ca_plan().is_some() {
        match state.idm().sweep_representations(now).await {
            Ok(report) => tracing::debug!(?report, "representations checked"),
            Err(e) => {
                tracing::warn!(error = %e, "representations could not be checked; will retry")
            }
        }
    }
    if let Err(e) = tuaton_store::ceremonies::purge_expired(state.store(), now).await {
        tracing::warn!(error = %e, "expired ceremonies could not be purged; will retry");
    }
    if let Err(e) = tuaton_store::oidc::purge_expired(state.store(), now).await {
        tracing::warn!(error = %e, "expired grants and assertion ids could not be purged; will retry");
    }
    if let Err(e) = tuaton_store::agency_documents::purge_expired(state.store(), now).await {
        tracing::warn!(error = %e, "expired agency documents could not be purged; will retry");
    }
    state.rate_limits().shrink();
    let settings = state.settings();
    // A cutoff that cannot be computed purges nothing.
    let cutoff = |d: Duration| {
        time::Duration::try_from(d)
            .ok()
            .and_then(|d| now.checked_sub(d))
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
    };
    if let Err(e) = tuaton_store::consents::purge_withdrawn_before(
        state.store(),
        cutoff(settings.withdrawn_consent_retention),
    )
    .await
    {
        tracing::warn!(error = %e, "withdrawn consents past retention could not be purged; will retry");
    }
    if let Err(e) = tuaton_store::notifications::purge_before(
        state.store(),
        cutoff(settings.notification_retention),
    )
    .await
    {
        tracing::warn!(error = %e, "notices past retention could not be purged; will retry");
    }
    if let Err(e) = tuaton_store::sessions::purge_expired(state.store(), now).await {
        tracing::warn!(error = %e, "expired sessions could not be purged; will retry");
    }
    anchor_audit(state, false).await;
    // Notices are a step of upkeep rather than a task of their own: one timer
    // and one handle to stop at shutdown, and minutes of delay suit them. The
    // step comes last so a slow relay only delays itself, and it is bounded (a
    // batch, a timeout per message, a stop at the first sign the relay is down).
    match crate::notify::deliver_due(state).await {
        Ok(report) => tracing::debug!(?report, "notices delivered"),
        Err(e) => tracing::warn!(error = %e, "notices could not be delivered; will retry"),
    }
    // Logout tokens owed to agencies, bounded the same way (a batch, a
    // timeout per post).
    crate::backchannel::deliver_due(state).await;
}

/// What this process last anchored: the position and when.
#[derive(Default)]
pub struct Anchoring(tokio::sync::Mutex<Option<(i64, time::OffsetDateTime)>>);

/// Signs the audit chain's head into the anchor file when it has moved and
/// the interval has passed since this process last did, or at once when
/// `force` (shutdown). A failure is logged and counted, and tried again next round.
pub async fn anchor_audit(state: &AppState, force: bool) {
    let now = state.now();
    let mut last = state.anchoring().0.lock().await;
    let interval = time::Duration::try_from(state.settings().audit_anchor_interval)
        .unwrap_or(time::Duration::minutes(5));
    if !force && last.is_some_and(|(_, at)| now - at < interval) {
        return;
    }
    let file = tuaton_idm::anchors::AnchorFile::new(&state.settings().audit_anchor_file);
    let outcome = tuaton_idm::anchors::anchor_now(
        state.store(),
        &state.services().keys,
        &file,
        last.map(|(seq, _)| seq),
        now,
    )
    .await;
    match outcome {
        Ok(tuaton_idm::anchors::Anchored::Written(a)) => {
            tracing::info!(seq = a.seq, key = %a.key_id, "audit chain anchored");
            metrics::counter!("tuaton_audit_anchors_total", "outcome" => "written").increment(1);
            *last = Some((a.seq, now));
        }
        Ok(tuaton_idm::anchors::Anchored::Unchanged(seq)) => {
            if seq > 0 {
                *last = Some((seq, now));
            }
        }
        Err(e) => {
            metrics::counter!("tuaton_audit_anchors_total", "outcome" => "failed").increment(1);
            tracing::error!(error = %e, "the audit chain could not be anchored; will retry");
        }
    }
}

/// Starts upkeep in the background until the process ends.
pub fn spawn(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(state.settings().upkeep_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            run_once(&state).await;
        }
    })
}
