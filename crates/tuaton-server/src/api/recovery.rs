//! Account recovery: someone who lost every passkey re-proofs their identity
//! remotely and gets a grant to register a new one. The rules are the
//! service layer's (`tuaton_idm::recovery`, docs/operators/recovery.md).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Serialize;
use time::OffsetDateTime;
use tuaton_core::Ial;
use tuaton_idm::{Recovery, parse_evidence};
use utoipa::ToSchema;

use super::enrolment::EnrolmentRequest;
use crate::error::ApiJson;
use crate::{ApiError, AppState};

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
    let now = state.now();
    let evidence = parse_evidence(&req.evidence_input(), now)?;
    Ok(match state.idm().recover(&evidence, now).await? {
        Recovery::Granted(g) => (
            StatusCode::CREATED,
            Json(RecoveryGrant {
                account_id: g.account_id.to_string(),
                ial: g.ial,
                enrolment_token: g.grant.id,
                enrolment_token_expires_at: g.grant.expires_at,
                sessions_ended: g.sessions_ended,
            }),
        )
            .into_response(),
        // 202 rather than 404: the answer does not say "no account" in so
        // many words, and nothing is created.
        Recovery::NoOpenAccount => (
            StatusCode::ACCEPTED,
            Json(RecoveryAccepted {
                detail: "The details were checked. No passkey can be added with them here; if you have never enrolled, enrol instead.",
            }),
        )
            .into_response(),
    })
}
