//! Enrolment and identity proofing: remote (registry check) and in person (officer).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tuaton_idm::{CitizenEvidenceInput, OfficerAttestationInput, parse_evidence};
use utoipa::ToSchema;

use crate::error::ApiJson;
use crate::session::SessionAuth;
use crate::{ApiError, AppState};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/enrolments", post(enrol))
        .route("/officer/proofings", post(officer_proofing))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(enrol, officer_proofing),
    components(schemas(EnrolmentRequest, EnrolmentResponse, OfficerProofingRequest))
)]
pub(crate) struct ApiDocEnrolment;

/// The front and back of a Thai ID card, plus a contact address.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EnrolmentRequest {
    /// Citizen id, with or without dashes.
    citizen_id: String,
    /// Thai given name, as on the card.
    thai_given_name: String,
    /// Thai family name, as on the card.
    thai_family_name: String,
    /// English given name, if the card has one.
    #[serde(default)]
    english_given_name: String,
    /// English family name.
    #[serde(default)]
    english_family_name: String,
    /// Gregorian date of birth `YYYY-MM-DD` (or `YYYY-MM`, `YYYY` when the card shows dashes).
    birth_date: String,
    /// Laser code from the back of the card, e.g. `JT0-1234567-89`.
    laser_code: String,
    /// Where security notices and recovery messages go.
    #[serde(default)]
    pub(super) contact_email: Option<String>,
}

impl EnrolmentRequest {
    pub(super) fn evidence_input(&self) -> CitizenEvidenceInput {
        CitizenEvidenceInput {
            citizen_id: self.citizen_id.clone(),
            thai_given_name: self.thai_given_name.clone(),
            thai_family_name: self.thai_family_name.clone(),
            english_given_name: self.english_given_name.clone(),
            english_family_name: self.english_family_name.clone(),
            birth_date: self.birth_date.clone(),
            laser_code: self.laser_code.clone(),
        }
    }
}

/// A new account and the grant to register its first passkey.
#[derive(Serialize, ToSchema)]
pub(crate) struct EnrolmentResponse {
    /// Opaque account id.
    account_id: String,
    /// Identity assurance level reached (NDID number).
    #[schema(value_type = f64)]
    ial: tuaton_core::Ial,
    /// Present to `/api/v1/passkeys/registration/start` to add the first passkey.
    enrolment_token: Option<String>,
    /// When the token stops working.
    #[serde(with = "time::serde::rfc3339::option")]
    enrolment_token_expires_at: Option<OffsetDateTime>,
}

impl From<tuaton_idm::Enrolled> for EnrolmentResponse {
    fn from(e: tuaton_idm::Enrolled) -> Self {
        Self {
            account_id: e.account_id.to_string(),
            ial: e.ial,
            enrolment_token_expires_at: e.grant.as_ref().map(|g| g.expires_at),
            enrolment_token: e.grant.map(|g| g.id),
        }
    }
}

/// Enrol with a Thai ID card checked remotely against the population registry (IAL2.1).
#[utoipa::path(post, path = "/api/v1/enrolments", tag = "enrolment", request_body = EnrolmentRequest, responses(
    (status = 201, description = "Account created", body = EnrolmentResponse),
    (status = 400, description = "Invalid evidence", body = crate::error::Problem),
    (status = 409, description = "Already enrolled", body = crate::error::Problem),
    (status = 422, description = "Registry refused the details", body = crate::error::Problem),
    (status = 503, description = "Registry unavailable; nothing saved", body = crate::error::Problem)))]
async fn enrol(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<EnrolmentRequest>,
) -> Result<(StatusCode, Json<EnrolmentResponse>), ApiError> {
    let now = state.now();
    let evidence = parse_evidence(&req.evidence_input(), now)?;
    let enrolled = state
        .idm()
        .enrol(&evidence, req.contact_email.as_deref(), now)
        .await?;
    Ok((StatusCode::CREATED, Json(enrolled.into())))
}

/// An officer's in-person verification.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OfficerProofingRequest {
    /// The card details, read at the counter.
    evidence: EnrolmentRequest,
    /// What the officer checked.
    #[schema(value_type = Object)]
    attestation: OfficerAttestationInput,
    /// For an existing account: the person lost their passkeys (or had them
    /// stolen); hand over a grant that completes a recovery at once. Given
    /// anyway when the account has no active passkey.
    #[serde(default)]
    recover: bool,
    /// With that grant: keep the account's other passkeys when the new one
    /// is registered. Default `false`: a lost or stolen phone's passkey stops working.
    #[serde(default)]
    keep_passkeys: bool,
}

/// In-person proofing by an officer (IAL2.2 to IAL3, per docs/assurance.md).
#[utoipa::path(post, path = "/api/v1/officer/proofings", tag = "enrolment", request_body = OfficerProofingRequest, responses(
    (status = 201, description = "Proofed", body = EnrolmentResponse),
    (status = 403, description = "Not an officer, or CSRF token missing", body = crate::error::Problem)))]
async fn officer_proofing(
    State(state): State<AppState>,
    session: SessionAuth,
    ApiJson(req): ApiJson<OfficerProofingRequest>,
) -> Result<(StatusCode, Json<EnrolmentResponse>), ApiError> {
    let input = req.evidence.evidence_input();
    let contact = req.evidence.contact_email.as_deref();
    let enrolled = state
        .idm()
        .officer_proofing(
            &session,
            &input,
            req.attestation,
            contact,
            tuaton_idm::CounterRecovery {
                recover: req.recover,
                keep_passkeys: req.keep_passkeys,
            },
            state.now(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(enrolled.into())))
}
