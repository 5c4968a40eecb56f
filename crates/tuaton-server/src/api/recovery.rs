//! Account recovery: someone who lost every passkey re-proofs their identity
//! remotely (the registry check again) and gets a grant to register a new one.
//!
//! Rules (docs/operators/recovery.md): only active accounts; only accounts whose
//! identity level a remote registry check reaches again (IAL2.1) — above that
//! an officer re-proofs in person (`/api/v1/officer/proofings`); every
//! recovery ends the account's sessions, is audited, and queues a notice to
//! the account's contact address. Existing passkeys are left as they are.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;
use tuaton_core::Ial;
use tuaton_proofing::ProofingDecision;
use tuaton_store::accounts::{self, Account, AccountState};
use tuaton_store::audit::{self, AuditEvent};
use tuaton_store::notifications::{self, Channel, NewNotification, NotificationKind};
use tuaton_store::{ceremonies, proofing, sessions};
use utoipa::ToSchema;

use super::account_actor;
use super::enrolment::{
    ENROLMENT_GRANT, ENROLMENT_GRANT_TTL, EnrolmentRequest, method_label, parse_evidence, proof,
    registry_answer_json,
};
use crate::error::ApiJson;
use crate::{ApiError, AppState};

/// The audit action of a recovery, successful or refused.
const RECOVERY: &str = "account.recovery";

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/recovery", post(recover))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(recover), components(schemas(RecoveryGrant, RecoveryAccepted)))]
pub(crate) struct ApiDocRecovery;

/// The identity was re-proofed: a grant to register a new passkey.
#[derive(Serialize, ToSchema)]
pub(crate) struct RecoveryGrant {
    /// Opaque account id.
    account_id: String,
    /// The account's identity assurance level (unchanged by recovery).
    #[schema(value_type = f64)]
    ial: Ial,
    /// Present to `/api/v1/passkeys/registration/start` to add a passkey.
    enrolment_token: String,
    /// When the token stops working.
    #[serde(with = "time::serde::rfc3339")]
    enrolment_token_expires_at: OffsetDateTime,
    /// How many sessions of the account were ended.
    sessions_ended: u64,
}

/// The details matched the registry, but no account can be recovered with them.
#[derive(Serialize, ToSchema)]
pub(crate) struct RecoveryAccepted {
    /// A sentence for a person.
    detail: &'static str,
}

/// Recover an account after losing every passkey, by checking the ID card against the registry again.
///
/// The body is the enrolment body; `contact_email` is ignored (the notice goes
/// to the address already on the account, so a recovery cannot redirect it).
/// The card is checked before the account is looked up, so only someone
/// holding the card's details learns anything about the account.
#[utoipa::path(post, path = "/api/v1/recovery", tag = "enrolment", request_body = EnrolmentRequest, responses(
    (status = 201, description = "Re-proofed; register a new passkey with the grant", body = RecoveryGrant),
    (status = 202, description = "Details valid, but no account can be recovered with them; nothing was created", body = RecoveryAccepted),
    (status = 400, description = "Invalid evidence", body = crate::error::Problem),
    (status = 403, description = "Account suspended, or its level needs an officer (`officer_recovery_required`)", body = crate::error::Problem),
    (status = 422, description = "Registry refused the details", body = crate::error::Problem),
    (status = 503, description = "Registry unavailable; nothing saved", body = crate::error::Problem)))]
async fn recover(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<EnrolmentRequest>,
) -> Result<Response, ApiError> {
    let evidence = parse_evidence(&state, &req.evidence_input())?;
    let decision = proof(&state, &evidence, None, "anonymous").await?;
    let account = accounts::by_citizen_id(
        state.store().conn().await?.conn(),
        &evidence.citizen_id.compact(),
    )
    .await?
    .filter(|a| a.state != AccountState::Closed);
    let Some(account) = account else {
        // 202 rather than 404: the answer does not say "no account" in so many
        // words, and nothing is created. Audited by evidence digest only.
        refuse_audit(
            &state,
            evidence.evidence_digest().to_string(),
            "no_open_account",
        )
        .await?;
        return Ok((
            StatusCode::ACCEPTED,
            Json(RecoveryAccepted {
                detail: "The details were checked. No passkey can be added with them here; if you have never enrolled, enrol instead.",
            }),
        )
            .into_response());
    };
    if account.state != AccountState::Active {
        refuse_audit(&state, account.id.clone(), "account_suspended").await?;
        return Err(ApiError::forbidden(
            "account_suspended",
            "This account is suspended. Contact the operator to have it reviewed.",
        ));
    }
    // Fail closed: a level we cannot read is never treated as a low one.
    let account_ial: Ial = account.ial.parse().map_err(ApiError::internal)?;
    if decision.ial < account_ial {
        refuse_audit(&state, account.id.clone(), "officer_recovery_required").await?;
        return Err(ApiError::forbidden(
            "officer_recovery_required",
            "This account was proofed in person. Visit an officer with your ID card to recover it.",
        ));
    }
    let grant = record(&state, &decision, &account, account_ial).await?;
    Ok((StatusCode::CREATED, Json(grant)).into_response())
}

/// Audits a refused recovery; `target` is an account id or an evidence digest, never personal data.
async fn refuse_audit(state: &AppState, target: String, reason: &str) -> Result<(), ApiError> {
    let ev = AuditEvent::failure("anonymous", RECOVERY, target)
        .with_details(json!({ "reason": reason }));
    audit::append_alone(state.store(), state.now(), &ev).await?;
    Ok(())
}

/// Records the decision, ends the sessions, queues the notice and audits it, in one
/// transaction; returns the grant.
async fn record(
    state: &AppState,
    decision: &ProofingDecision,
    account: &Account,
    account_ial: Ial,
) -> Result<RecoveryGrant, ApiError> {
    let now = state.now();
    // The grant is stored first but its id is only handed out after the commit:
    // if the transaction fails, an unknown id expires unused.
    let expires = now + ENROLMENT_GRANT_TTL;
    let token = ceremonies::put(
        state.store(),
        ENROLMENT_GRANT,
        Some(&account.id),
        "{}",
        expires,
    )
    .await?;
    let method = method_label(decision);
    let digest = decision.evidence_digest.to_string();
    let mut tx = state.store().begin().await?;
    let decision_id = proofing::insert(
        &mut tx,
        &proofing::NewDecision {
            account_id: &account.id,
            method: &method,
            connector: decision.connector.as_deref().unwrap_or("none"),
            registry_answer: &registry_answer_json(decision),
            evidence_digest: &digest,
            ial: decision.ial.number(),
            officer_id: None,
            decided_at: decision.decided_at,
        },
    )
    .await?;
    // Recovery may mean the passkeys were stolen, not lost: whoever holds a session now loses it.
    let sessions_ended = sessions::delete_for_account(&mut tx, &account.id).await?;
    let contact = account
        .contact_email
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty());
    let notification = match contact {
        Some(address) => Some(
            notifications::queue(
                &mut tx,
                &NewNotification {
                    account_id: &account.id,
                    kind: NotificationKind::RecoveryStarted,
                    channel: Channel::Email,
                    address,
                },
                now,
            )
            .await?,
        ),
        None => None,
    };
    let details = json!({
        "decision": decision_id,
        "method": method,
        "ial": decision.ial.number(),
        "connector": decision.connector,
        "evidence_digest": digest,
        "sessions_ended": sessions_ended,
        "notification": notification,
    });
    audit::append(
        &mut tx,
        now,
        &AuditEvent::success(account_actor(&account.id), RECOVERY, account.id.clone())
            .with_details(details),
    )
    .await?;
    tx.commit().await?;
    Ok(RecoveryGrant {
        account_id: account.id.clone(),
        ial: account_ial,
        enrolment_token: token,
        enrolment_token_expires_at: expires,
        sessions_ended,
    })
}
