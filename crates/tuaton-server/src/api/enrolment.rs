//! Enrolment and identity proofing: remote (registry check) and in person (officer).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::{Duration, OffsetDateTime};
use tuaton_proofing::{
    CitizenEvidence, CitizenEvidenceInput, DecisionError, DecisionPolicy, OfficerAttestation,
    ProofingDecision, ProofingPath, check_card, decide,
};
use tuaton_store::audit::{self, AuditEvent};
use tuaton_store::{accounts, ceremonies, proofing};
use utoipa::ToSchema;

use crate::error::ApiJson;
use crate::session::SessionAuth;
use crate::{ApiError, AppState};

/// How long an enrolment grant lets the new account register its first passkey.
pub(super) const ENROLMENT_GRANT_TTL: Duration = Duration::minutes(15);
/// The ceremony kind of an enrolment grant.
pub(crate) const ENROLMENT_GRANT: &str = "enrolment";

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
    contact_email: Option<String>,
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

pub(super) fn parse_evidence(
    state: &AppState,
    input: &CitizenEvidenceInput,
) -> Result<CitizenEvidence, ApiError> {
    CitizenEvidence::parse(input, state.now().date())
        .map_err(|e| ApiError::bad_request("invalid_evidence", e.to_string()))
}

fn validate_email(email: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(e) = email.map(str::trim).filter(|e| !e.is_empty()) else {
        return Ok(None);
    };
    let ok = e.len() <= 254
        && e.split_once('@').is_some_and(|(l, d)| {
            !l.is_empty() && d.contains('.') && !e.contains(char::is_whitespace)
        });
    if ok {
        Ok(Some(e.to_owned()))
    } else {
        Err(ApiError::bad_request(
            "invalid_contact_email",
            "contact_email is not an e-mail address.",
        ))
    }
}

/// The refusal for a second enrolment of one citizen id.
fn already_enrolled() -> ApiError {
    ApiError::conflict(
        "already_enrolled",
        "An account already exists for this citizen id. Log in with your passkey, or recover the account if you lost it.",
    )
}

/// Maps a refused proofing decision to the answer the citizen sees.
fn refusal(e: &DecisionError) -> ApiError {
    match e {
        DecisionError::CardNotFound => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "card_not_found",
            "No valid ID card was found for these details. Check the laser code on the back of your current card.",
        ),
        DecisionError::DetailsMismatch => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "details_mismatch",
            "The details do not match the population registry. Check the names and date of birth as printed on the card.",
        ),
        DecisionError::RegistryUnavailable { .. } => ApiError::unavailable(
            "registry_unavailable",
            "The population registry cannot be reached right now. Nothing was saved; please try again later.",
            60,
        ),
        DecisionError::IdCardNotSeen | DecisionError::InvalidAttestation(_) => {
            ApiError::bad_request("invalid_attestation", e.to_string())
        }
        other => ApiError::internal(other),
    }
}

/// Runs the registry check and the level decision; audits a refusal.
pub(super) async fn proof(
    state: &AppState,
    evidence: &CitizenEvidence,
    officer: Option<OfficerAttestation>,
    actor: &str,
) -> Result<ProofingDecision, ApiError> {
    let Some(registry) = state.services().card_registry.clone() else {
        return Err(ApiError::unavailable(
            "registry_not_configured",
            "Identity proofing is not available on this server yet. Please try again later.",
            3600,
        ));
    };
    let check = check_card(registry.as_ref(), evidence, state.clock()).await;
    let path = match officer {
        Some(attestation) => ProofingPath::Officer {
            registry: check,
            attestation,
        },
        None => ProofingPath::Remote {
            registry: check,
            face_match: None,
        },
    };
    let connector = registry.name().to_owned();
    match decide(evidence, path, &DecisionPolicy::default(), state.clock()) {
        Ok(d) => Ok(d),
        Err(e) => {
            let ev = AuditEvent::failure(actor, "proofing.refused", evidence.evidence_digest().to_string())
                .with_details(json!({ "connector": connector, "reason": format!("{e:?}").split([' ', '{', '(']).next().unwrap_or("") }));
            audit::append_alone(state.store(), state.now(), &ev).await?;
            Err(refusal(&e))
        }
    }
}

pub(super) fn registry_answer_json(d: &ProofingDecision) -> serde_json::Value {
    serde_json::to_value(&d.registry_answer).unwrap_or(serde_json::Value::Null)
}

/// The stored name of the proofing method (`remote_registry`, `officer_in_person`, …).
pub(super) fn method_label(d: &ProofingDecision) -> String {
    serde_json::to_value(d.method)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Records the decision (and creates the account when new) with its audit record, atomically.
async fn record(
    state: &AppState,
    evidence: &CitizenEvidence,
    input: &EnrolmentRequest,
    decision: &ProofingDecision,
    officer_account: Option<&str>,
) -> Result<EnrolmentResponse, ApiError> {
    let email = validate_email(input.contact_email.as_deref())?;
    let now = state.now();
    let mut tx = state.store().begin().await?;
    let existing = accounts::by_citizen_id(tx.conn(), &evidence.citizen_id.compact()).await?;
    let (account_id, ial, new) = match existing {
        Some(_) if officer_account.is_none() => return Err(already_enrolled()),
        Some(acc) => {
            let current: tuaton_core::Ial = acc.ial.parse().unwrap_or(tuaton_core::Ial::Ial1_1);
            let ial = current.max(decision.ial);
            accounts::set_ial(&mut tx, &acc.id, ial.number(), now).await?;
            (acc.id, ial, false)
        }
        None => {
            let new = accounts::NewAccount {
                citizen_id: evidence.citizen_id.compact(),
                thai_given: evidence.thai_name.given().to_owned(),
                thai_family: evidence.thai_name.family().to_owned(),
                en_given: evidence.english_name.as_ref().map(|n| n.given().to_owned()),
                en_family: evidence
                    .english_name
                    .as_ref()
                    .map(|n| n.family().to_owned()),
                birth_date: evidence.birth_date.to_string(),
                contact_email: email,
                ial: decision.ial.number().to_owned(),
            };
            let acc = accounts::insert(&mut tx, &new, &tuaton_store::new_id(), now).await?;
            (acc.id, decision.ial, true)
        }
    };
    let method = method_label(decision);
    let digest = decision.evidence_digest.to_string();
    let decision_id = proofing::insert(
        &mut tx,
        &proofing::NewDecision {
            account_id: &account_id,
            method: &method,
            connector: decision.connector.as_deref().unwrap_or("none"),
            registry_answer: &registry_answer_json(decision),
            evidence_digest: &digest,
            ial: decision.ial.number(),
            officer_id: officer_account,
            decided_at: decision.decided_at,
        },
    )
    .await?;
    let (actor, action) = match officer_account {
        Some(o) => (format!("officer:{o}"), "proofing.officer_in_person"),
        None => (super::account_actor(&account_id), "account.enrol"),
    };
    let details = json!({
        "decision": decision_id,
        "method": method,
        "ial": decision.ial.number(),
        "connector": decision.connector,
        "registry_status": decision.registry_answer.as_ref().map(|a| a.status.label()),
        "evidence_digest": digest,
        "attestation": decision.officer.as_ref().map(|a| json!({
            "method": a.method, "documents_seen": a.documents_seen, "biometric_checked": a.biometric_checked,
        })),
        "new_account": new,
    });
    audit::append(
        &mut tx,
        now,
        &AuditEvent::success(actor, action, account_id.clone()).with_details(details),
    )
    .await?;
    tx.commit().await?;

    // A grant to register a passkey, only for an account that has no usable one:
    // new, or (re-proofed by an officer) with every passkey suspended.
    let has_active_passkey =
        tuaton_store::passkeys::for_account(state.store().conn().await?.conn(), &account_id)
            .await?
            .iter()
            .any(|p| p.state == "active");
    let (token, expires) = if has_active_passkey {
        (None, None)
    } else {
        let expires = now + ENROLMENT_GRANT_TTL;
        (
            Some(
                ceremonies::put(
                    state.store(),
                    ENROLMENT_GRANT,
                    Some(&account_id),
                    "{}",
                    expires,
                )
                .await?,
            ),
            Some(expires),
        )
    };
    Ok(EnrolmentResponse {
        account_id,
        ial,
        enrolment_token: token,
        enrolment_token_expires_at: expires,
    })
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
    let evidence = parse_evidence(&state, &req.evidence_input())?;
    validate_email(req.contact_email.as_deref())?;
    if accounts::by_citizen_id(
        state.store().conn().await?.conn(),
        &evidence.citizen_id.compact(),
    )
    .await?
    .is_some()
    {
        // Checked before the registry is asked, and again in the transaction against a race.
        return Err(already_enrolled());
    }
    let decision = proof(&state, &evidence, None, "anonymous").await?;
    let resp = record(&state, &evidence, &req, &decision, None).await?;
    Ok((StatusCode::CREATED, Json(resp)))
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
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OfficerAttestationInput {
    method: tuaton_proofing::AttestationMethod,
    documents_seen: Vec<tuaton_proofing::DocumentKind>,
    biometric_checked: bool,
    #[serde(default)]
    note: Option<String>,
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
    let roles =
        tuaton_store::companies::roles(state.store().conn().await?.conn(), &session.account_id)
            .await?;
    if !roles.iter().any(|r| r == "officer") {
        return Err(ApiError::forbidden(
            "officer_role_required",
            "Only officers can record in-person proofing.",
        ));
    }
    let enrol = req.evidence;
    let evidence = parse_evidence(&state, &enrol.evidence_input())?;
    let a = req.attestation;
    let attestation = OfficerAttestation {
        officer_id: session.account_id.clone(),
        method: a.method,
        documents_seen: a.documents_seen,
        biometric_checked: a.biometric_checked,
        note: a.note,
    };
    let actor = format!("officer:{}", session.account_id);
    let decision = proof(&state, &evidence, Some(attestation), &actor).await?;
    let resp = record(
        &state,
        &evidence,
        &enrol,
        &decision,
        Some(&session.account_id),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(resp)))
}
