//! Account recovery: someone who lost every passkey proves their identity
//! again; after a cooling-off period in which the owner is told and can
//! cancel with a passkey, the requester's token gives a grant to register a
//! new one. The rules are the service layer's (`tuaton_idm::recovery`,
//! docs/operators/recovery.md).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tuaton_core::{ErrorCode, Ial};
use tuaton_idm::{IdmError, LiveCapture, parse_evidence};
use utoipa::ToSchema;

use super::enrolment::EnrolmentRequest;
use super::passkeys::{CeremonyResponse, LoginFinishRequest};
use crate::error::ApiJson;
use crate::{ApiError, AppState};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/recovery", post(request))
        .route("/recovery/{id}/grant", post(claim))
        .route("/recovery/{id}/cancel/start", post(cancel_start))
        .route("/recovery/{id}/cancel/finish", post(cancel_finish))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(request, claim, cancel_start, cancel_finish),
    components(schemas(
        RecoveryRequest,
        FaceCaptureInput,
        RecoveryAccepted,
        ClaimRequest,
        RecoveryGrant
    ))
)]
pub(crate) struct ApiDocRecovery;

/// A recovery request: the card's details (the enrolment body), and
/// optionally a live face capture for a certified matcher.
#[derive(Deserialize, ToSchema)]
pub(crate) struct RecoveryRequest {
    /// The ID card's details, as at enrolment (`contact_email` is ignored:
    /// notices go to the addresses already on the account).
    #[serde(flatten)]
    evidence: EnrolmentRequest,
    /// A live capture for a face comparison with liveness detection; when it
    /// is accepted the recovery is ready at once.
    #[serde(default)]
    face_capture: Option<FaceCaptureInput>,
    /// Whatever else was sent: refused (a flattened body cannot deny unknown fields itself).
    #[serde(flatten)]
    #[schema(ignore)]
    unknown: std::collections::BTreeMap<String, serde::de::IgnoredAny>,
}

/// A live face capture (biometric data: compared, never stored or logged).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FaceCaptureInput {
    /// The image or video, base64.
    media: String,
    /// Its media type, e.g. `image/jpeg`.
    media_type: String,
    /// Matcher-specific liveness material, base64.
    #[serde(default)]
    liveness_evidence: String,
}

impl FaceCaptureInput {
    fn decode(&self) -> Result<LiveCapture, IdmError> {
        let bad = |field: &str| {
            IdmError::invalid(
                ErrorCode::InvalidEvidence,
                format!("face_capture.{field} must be base64."),
            )
        };
        Ok(LiveCapture {
            media: STANDARD.decode(&self.media).map_err(|_| bad("media"))?,
            media_type: self.media_type.clone(),
            liveness_evidence: STANDARD
                .decode(&self.liveness_evidence)
                .map_err(|_| bad("liveness_evidence"))?,
        })
    }
}

/// The request is taken: come back with the token from `ready_at`.
#[derive(Serialize, ToSchema)]
pub(crate) struct RecoveryAccepted {
    /// The recovery's id.
    recovery_id: String,
    /// Keep it secret: with the id it claims the grant at `/api/v1/recovery/{id}/grant`.
    recovery_token: String,
    /// From when the grant can be claimed (the end of the cooling-off period).
    #[serde(with = "time::serde::rfc3339")]
    ready_at: OffsetDateTime,
    /// After this the request gives nothing.
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
    /// A sentence for a person.
    detail: &'static str,
}

/// Recover an account after losing every passkey, by checking the ID card against the registry again.
///
/// The card is checked first; a refusal says so. Past that every request is
/// answered alike — also details that match no open account — so only the
/// registry's answer about the card is learnt here. The owner is told at
/// once on every channel on file and can cancel with a passkey.
#[utoipa::path(post, path = "/api/v1/recovery", tag = "recovery", request_body = RecoveryRequest, responses(
    (status = 202, description = "Taken; the grant can be claimed from `ready_at`", body = RecoveryAccepted),
    (status = 400, description = "Invalid evidence", body = crate::error::Problem),
    (status = 403, description = "Account suspended, or its level needs an officer (`officer_recovery_required`)", body = crate::error::Problem),
    (status = 422, description = "Registry refused the details, or the face was not confirmed", body = crate::error::Problem),
    (status = 503, description = "Registry or face matcher unavailable; nothing saved", body = crate::error::Problem)))]
async fn request(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RecoveryRequest>,
) -> Result<(StatusCode, Json<RecoveryAccepted>), ApiError> {
    if let Some(field) = req.unknown.keys().next() {
        return Err(IdmError::invalid(
            ErrorCode::InvalidField,
            format!("The field `{field}` is not accepted here."),
        )
        .into());
    }
    let now = state.now();
    let evidence = parse_evidence(&req.evidence.evidence_input(), now)?;
    let face = req.face_capture.as_ref().map(|f| f.decode()).transpose()?;
    let taken = state
        .idm()
        .request_recovery(&evidence, face.as_ref(), now)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(RecoveryAccepted {
            recovery_id: taken.recovery_id,
            recovery_token: taken.token,
            ready_at: taken.ready_at,
            expires_at: taken.expires_at,
            detail: "The details were checked. If they belong to an account here, its owner has been told and can cancel this; otherwise the grant can be claimed from the time given.",
        }),
    ))
}

/// Claim a recovery's grant.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClaimRequest {
    /// The token from the request's answer.
    recovery_token: String,
    /// Keep the account's other passkeys when the new one is registered.
    /// Default `false`: a lost or stolen device's passkey stops working.
    #[serde(default)]
    keep_passkeys: bool,
}

/// The grant to register a new passkey.
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
    /// Whether the other passkeys stay once the new one is registered.
    keep_passkeys: bool,
}

/// Claim a recovery's grant once its cooling-off period is over.
///
/// Registering a passkey with the grant completes the recovery: every session
/// ends, and the other passkeys are removed unless `keep_passkeys`.
#[utoipa::path(post, path = "/api/v1/recovery/{id}/grant", tag = "recovery", request_body = ClaimRequest, responses(
    (status = 201, description = "The grant", body = RecoveryGrant),
    (status = 404, description = "No open recovery with this id and token (`unknown_recovery`)", body = crate::error::Problem),
    (status = 409, description = "Still cooling off (`recovery_cooling_off`, with `ready_at`)", body = crate::error::Problem)),
    params(("id" = String, Path, description = "The recovery's id")))]
async fn claim(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ClaimRequest>,
) -> Result<(StatusCode, Json<RecoveryGrant>), ApiError> {
    let g = state
        .idm()
        .claim_recovery(&id, &req.recovery_token, req.keep_passkeys, state.now())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(RecoveryGrant {
            account_id: g.account_id.to_string(),
            ial: g.ial,
            enrolment_token: g.grant.id,
            enrolment_token_expires_at: g.grant.expires_at,
            keep_passkeys: g.keep_passkeys,
        }),
    ))
}

/// Start cancelling a recovery with a passkey of the account (the notice's link).
#[utoipa::path(post, path = "/api/v1/recovery/{id}/cancel/start", tag = "recovery", responses(
    (status = 200, body = CeremonyResponse),
    (status = 404, description = "No open recovery with this id", body = crate::error::Problem),
    (status = 409, description = "The account has no active passkey (`no_active_passkey`)", body = crate::error::Problem)),
    params(("id" = String, Path, description = "The recovery's id")))]
async fn cancel_start(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<CeremonyResponse>, ApiError> {
    let begun = state.idm().start_recovery_cancel(&id, state.now()).await?;
    CeremonyResponse::answer(begun.ceremony_id, &begun.options)
}

/// Finish cancelling a recovery: the assertion from `navigator.credentials.get`.
#[utoipa::path(post, path = "/api/v1/recovery/{id}/cancel/finish", tag = "recovery", request_body = LoginFinishRequest, responses(
    (status = 204, description = "Cancelled"),
    (status = 401, description = "The passkey did not verify", body = crate::error::Problem),
    (status = 404, description = "No open recovery with this id", body = crate::error::Problem)),
    params(("id" = String, Path, description = "The recovery's id")))]
async fn cancel_finish(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<LoginFinishRequest>,
) -> Result<StatusCode, ApiError> {
    state
        .idm()
        .finish_recovery_cancel(&id, &req.ceremony_id, &req.credential, state.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
