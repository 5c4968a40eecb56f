//! Passkey registration, login and logout.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tuaton_passkeys::{LoginState, PasskeyError, PasskeyUser, RegistrationState, StoredCredential};
use tuaton_store::Tx;
use tuaton_store::accounts::{self, AccountState};
use tuaton_store::audit::{self, AuditEvent, Place};
use tuaton_store::batch::Batch;
use tuaton_store::ceremonies::{self, TakeError};
use tuaton_store::passkeys::{self as creds, PasskeyRecord};
use utoipa::ToSchema;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential, Uuid};

use super::account_actor;
use super::enrolment::ENROLMENT_GRANT;
use crate::error::ApiJson;
use crate::session::{self, SessionAuth};
use crate::{ApiError, AppState};

const REGISTRATION: &str = "passkey-registration";
const LOGIN: &str = "passkey-login";
/// A login older than this is not "fresh" for removing a passkey or erasing an account.
pub(crate) const FRESH_LOGIN: time::Duration = time::Duration::minutes(5);

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/passkeys/registration/start", post(registration_start))
        .route("/passkeys/registration/finish", post(registration_finish))
        .route("/passkeys", get(list))
        .route("/passkeys/{cred_id}", delete(remove))
        .route("/login/start", post(login_start))
        .route("/login/finish", post(login_finish))
        .route("/logout", post(logout))
        .route("/logout/everywhere", post(logout_everywhere))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        registration_start,
        registration_finish,
        list,
        remove,
        login_start,
        login_finish,
        logout,
        logout_everywhere
    ),
    components(schemas(
        RegistrationStartRequest,
        CeremonyResponse,
        RegistrationFinishRequest,
        LoginStartRequest,
        LoginFinishRequest,
        LoginResponse
    ))
)]
pub(crate) struct ApiDocPasskeys;

fn passkey_refusal(e: &PasskeyError) -> ApiError {
    let code = match e {
        PasskeyError::Expired => "ceremony_expired",
        PasskeyError::CounterRegression => "credential_suspended",
        PasskeyError::UserVerificationMissing => "user_verification_required",
        PasskeyError::WrongOrigin => "wrong_origin",
        PasskeyError::ChallengeMismatch => "challenge_mismatch",
        PasskeyError::NotAllowListed => "authenticator_not_allow_listed",
        PasskeyError::UnknownCredential => "unknown_credential",
        _ => "invalid_credential",
    };
    let msg = match e {
        PasskeyError::CounterRegression => {
            "This passkey shows signs of being copied and has been suspended. Use another passkey or recover your account."
        }
        PasskeyError::Expired => "The request took too long. Start again.",
        PasskeyError::NotAllowListed => {
            "This authenticator is not on the list approved for the highest assurance level."
        }
        _ => "The passkey response could not be verified.",
    };
    let status = if matches!(e, PasskeyError::NotAllowListed) {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::UNAUTHORIZED
    };
    ApiError::new(status, code, msg)
}

fn take_refusal(e: TakeError) -> ApiError {
    match e {
        TakeError::Expired => ApiError::unauthorized(
            "ceremony_expired",
            "The request took too long. Start again.",
        ),
        TakeError::Unknown | TakeError::WrongKind => ApiError::unauthorized(
            "unknown_ceremony",
            "This request is unknown or was already used. Start again.",
        ),
        TakeError::Store(s) => s.into(),
    }
}

async fn audit_failure(
    state: &AppState,
    actor: &str,
    action: &str,
    target: &str,
    reason: &str,
) -> Result<(), ApiError> {
    let ev = AuditEvent::failure(actor, action, target).with_details(json!({ "reason": reason }));
    audit::append_alone(state.store(), state.now(), &ev).await?;
    Ok(())
}

/// Start adding a passkey: with a session, or with the grant from enrolment or recovery.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegistrationStartRequest {
    /// The grant from enrolment or recovery; omit when logged in.
    #[serde(default)]
    enrolment_token: Option<String>,
    /// Ask for an attested hardware authenticator (AAL3).
    #[serde(default)]
    want_aal3: bool,
}

/// A ceremony begun: pass `public_key` to `navigator.credentials.create/get`, and the id back at finish.
#[derive(Serialize, ToSchema)]
pub(crate) struct CeremonyResponse {
    /// Opaque, single-use.
    ceremony_id: String,
    /// WebAuthn options (`publicKey` member of CredentialCreationOptions / CredentialRequestOptions).
    #[schema(value_type = Object)]
    public_key: serde_json::Value,
    /// `conditional` for a username-less login: offer the passkey in the form's autofill.
    #[serde(skip_serializing_if = "Option::is_none")]
    mediation: Option<String>,
}

impl CeremonyResponse {
    /// Splits the library's options into the `publicKey` member and the mediation hint.
    fn new(ceremony_id: String, options: &impl Serialize) -> Result<Self, ApiError> {
        let v = serde_json::to_value(options).map_err(ApiError::internal)?;
        let mediation = v
            .get("mediation")
            .and_then(|m| m.as_str())
            .map(str::to_owned);
        let public_key = v.get("publicKey").cloned().unwrap_or(v);
        Ok(Self {
            ceremony_id,
            public_key,
            mediation,
        })
    }
}

/// The active account a registration is for: the grant's, or the session's.
async fn registration_account(
    state: &AppState,
    req: &RegistrationStartRequest,
    session: Option<SessionAuth>,
) -> Result<accounts::Account, ApiError> {
    let account_id = match (&req.enrolment_token, session) {
        (Some(token), _) => ceremonies::peek(state.store(), token, ENROLMENT_GRANT, state.now())
            .await
            .map_err(take_refusal)?
            .account_id
            .ok_or_else(|| ApiError::internal("enrolment grant without account"))?,
        (None, Some(s)) => s.account_id,
        (None, None) => {
            return Err(ApiError::unauthorized(
                "login_required",
                "Log in, or use the enrolment token.",
            ));
        }
    };
    let account = accounts::by_id(state.store().conn().await?.conn(), &account_id)
        .await?
        .ok_or(ApiError::unauthorized("login_required", "Log in first."))?;
    if account.state != AccountState::Active {
        return Err(ApiError::forbidden(
            "account_not_active",
            "This account is suspended or closed.",
        ));
    }
    Ok(account)
}

#[utoipa::path(post, path = "/api/v1/passkeys/registration/start", tag = "passkeys", request_body = RegistrationStartRequest,
    responses((status = 200, body = CeremonyResponse), (status = 401, body = crate::error::Problem)))]
async fn registration_start(
    State(state): State<AppState>,
    session: Option<SessionAuth>,
    ApiJson(req): ApiJson<RegistrationStartRequest>,
) -> Result<Json<CeremonyResponse>, ApiError> {
    let account = registration_account(&state, &req, session).await?;
    state.rate_limits().check_account(&account.id)?;
    let existing = creds::for_account(state.store().conn().await?.conn(), &account.id).await?;
    let exclude: Vec<Vec<u8>> = existing
        .iter()
        .filter_map(|c| URL_SAFE_NO_PAD.decode(&c.cred_id).ok())
        .collect();
    let handle = user_uuid(&account.user_handle);
    let user = PasskeyUser {
        handle,
        name: format!("tuaton-{}", &account.id[..8.min(account.id.len())]),
        display_name: account.thai_given.clone().unwrap_or_default(),
    };
    let (ccr, reg_state) = state
        .services()
        .passkeys
        .start_registration(&user, &exclude, req.want_aal3, state.now())
        .map_err(|e| passkey_refusal(&e))?;
    let stored = serde_json::to_string(&PendingRegistration {
        state: reg_state,
        grant: req.enrolment_token.clone(),
    })
    .map_err(ApiError::internal)?;
    let expires = state.now() + time::Duration::minutes(5);
    let id = ceremonies::put_challenge(
        state.store(),
        REGISTRATION,
        Some(&account.id),
        &stored,
        expires,
    )
    .await?;
    Ok(Json(CeremonyResponse::new(id, &ccr)?))
}

/// The user handle is 128 random bits in hex; as a WebAuthn user id it is read as a UUID.
fn user_uuid(h: &str) -> Uuid {
    let mut b = [0u8; 16];
    if let Ok(v) = hex::decode(h) {
        let n = v.len().min(16);
        b[..n].copy_from_slice(&v[..n]);
    }
    Uuid::from_bytes(b)
}

#[derive(Serialize, Deserialize)]
struct PendingRegistration {
    state: RegistrationState,
    grant: Option<String>,
}

/// Finish adding a passkey.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegistrationFinishRequest {
    /// From the start response.
    ceremony_id: String,
    /// A name to recognise it by ("phone", "YubiKey").
    name: String,
    /// The `PublicKeyCredential` from `navigator.credentials.create`, JSON-encoded.
    #[schema(value_type = Object)]
    credential: RegisterPublicKeyCredential,
}

#[utoipa::path(post, path = "/api/v1/passkeys/registration/finish", tag = "passkeys", request_body = RegistrationFinishRequest,
    responses((status = 201, body = Object), (status = 401, body = crate::error::Problem)))]
async fn registration_finish(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RegistrationFinishRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(ApiError::bad_request(
            "invalid_name",
            "name must be 1 to 64 characters.",
        ));
    }
    let now = state.now();
    // Taken before it is checked: a second finish with the same id finds nothing.
    let ceremony = ceremonies::take(state.store(), &req.ceremony_id, REGISTRATION, now)
        .await
        .map_err(take_refusal)?;
    let account_id = ceremony
        .account_id
        .ok_or_else(|| ApiError::internal("registration without account"))?;
    state.rate_limits().check_account(&account_id)?;
    let pending: PendingRegistration =
        serde_json::from_str(&ceremony.state).map_err(ApiError::internal)?;
    let (stored, facts) =
        match state
            .services()
            .passkeys
            .finish_registration(pending.state, &req.credential, now)
        {
            Ok(v) => v,
            Err(e) => {
                audit_failure(
                    &state,
                    &account_actor(&account_id),
                    "passkey.register",
                    &account_id,
                    &format!("{e:?}"),
                )
                .await?;
                return Err(passkey_refusal(&e));
            }
        };
    if let Some(grant) = &pending.grant {
        // The grant is spent only now, so a failed attempt can be retried.
        ceremonies::take(state.store(), grant, ENROLMENT_GRANT, now)
            .await
            .map_err(take_refusal)?;
    }
    let record = PasskeyRecord {
        cred_id: URL_SAFE_NO_PAD.encode(&facts.cred_id),
        account_id: account_id.clone(),
        name: name.to_owned(),
        aaguid: facts.aaguid.map(|u| u.to_string()),
        credential: stored.into_string(),
        aal: facts.aal.number().to_owned(),
        attested: facts.attested,
        backup_eligible: facts.backup_eligible,
        backup_state: facts.backup_state,
        sign_count: i64::from(facts.counter),
        state: "active".into(),
        created_at: now,
        last_used_at: None,
    };
    let mut tx = state.store().begin().await?;
    creds::insert(&mut tx, &record).await.map_err(|e| match e {
        tuaton_store::StoreError::Conflict { .. } => {
            ApiError::conflict("credential_exists", "This passkey is already registered.")
        }
        other => other.into(),
    })?;
    let ev = AuditEvent::success(account_actor(&account_id), "passkey.register", account_id.clone()).with_details(json!({
        "cred_id": record.cred_id, "aaguid": record.aaguid, "aal": record.aal, "attested": record.attested,
        "via": if pending.grant.is_some() { "enrolment_grant" } else { "session" },
    }));
    audit::append(&mut tx, now, &ev).await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::to_value(&record).map_err(ApiError::internal)?),
    ))
}

#[utoipa::path(get, path = "/api/v1/passkeys", tag = "passkeys", responses((status = 200, body = Object)))]
async fn list(
    State(state): State<AppState>,
    session: SessionAuth,
) -> Result<Json<Vec<PasskeyRecord>>, ApiError> {
    Ok(Json(
        creds::for_account(state.store().conn().await?.conn(), &session.account_id).await?,
    ))
}

/// Removes a passkey. Needs a login within the last five minutes, and never removes the last one.
#[utoipa::path(delete, path = "/api/v1/passkeys/{cred_id}", tag = "passkeys", responses(
    (status = 204), (status = 403, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
async fn remove(
    State(state): State<AppState>,
    session: SessionAuth,
    Path(cred_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let now = state.now();
    if now - session.authenticated_at > FRESH_LOGIN {
        return Err(ApiError::forbidden(
            "fresh_login_required",
            "Log in again to remove a passkey.",
        ));
    }
    let mut tx = state.store().begin().await?;
    let all = creds::for_account(tx.conn(), &session.account_id).await?;
    if !all.iter().any(|c| c.cred_id == cred_id) {
        return Err(ApiError::not_found(
            "unknown_credential",
            "No such passkey on this account.",
        ));
    }
    if all.len() == 1 {
        return Err(ApiError::conflict(
            "last_passkey",
            "This is your only passkey. Add another first, or start account recovery.",
        ));
    }
    creds::delete(&mut tx, &session.account_id, &cred_id).await?;
    let ev = AuditEvent::success(
        account_actor(&session.account_id),
        "passkey.remove",
        session.account_id.clone(),
    )
    .with_details(json!({ "cred_id": cred_id }));
    audit::append(&mut tx, now, &ev).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Start a login: by citizen id, or username-less (discoverable credential, conditional UI).
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginStartRequest {
    /// Omit for a username-less login.
    #[serde(default)]
    citizen_id: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/login/start", tag = "passkeys", request_body = LoginStartRequest, responses((status = 200, body = CeremonyResponse)))]
async fn login_start(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<LoginStartRequest>,
) -> Result<Json<CeremonyResponse>, ApiError> {
    let now = state.now();
    let pk = &state.services().passkeys;
    let mut account_id = None;
    let mut started = None;
    if let Some(raw) = req.citizen_id.as_deref() {
        let id = tuaton_core::CitizenId::parse(raw)
            .map_err(|e| ApiError::bad_request("invalid_citizen_id", e.to_string()))?;
        let candidates =
            creds::login_candidates(state.store().conn().await?.conn(), &id.compact()).await?;
        if let Some((acc_id, active)) = candidates {
            state.rate_limits().check_account(&acc_id)?;
            let stored: Vec<StoredCredential> = active
                .into_iter()
                .map(StoredCredential::from_stored)
                .collect();
            if !stored.is_empty() {
                started = Some(
                    pk.start_login(&stored, now)
                        .map_err(|e| passkey_refusal(&e))?,
                );
                account_id = Some(acc_id);
            }
        }
    }
    // An unknown id gets a username-less challenge: the answer does not reveal who is enrolled.
    let (rcr, login_state) = match started {
        Some(s) => s,
        None => pk
            .start_discoverable_login(now)
            .map_err(|e| passkey_refusal(&e))?,
    };
    let stored = login_state.to_json().map_err(ApiError::internal)?;
    let id = ceremonies::put_challenge(
        state.store(),
        LOGIN,
        account_id.as_deref(),
        &stored,
        now + time::Duration::minutes(5),
    )
    .await?;
    Ok(Json(CeremonyResponse::new(id, &rcr)?))
}

/// Finish a login.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginFinishRequest {
    /// From the start response.
    ceremony_id: String,
    /// The `PublicKeyCredential` from `navigator.credentials.get`, JSON-encoded.
    #[schema(value_type = Object)]
    credential: PublicKeyCredential,
}

/// A session began. The cookie is set; apps keep the CSRF token for state-changing calls.
#[derive(Serialize, ToSchema)]
pub(crate) struct LoginResponse {
    /// Opaque account id.
    account_id: String,
    /// Authenticator assurance reached (NDID number).
    aal: String,
    /// `acr` value of that level.
    acr: String,
    /// Authentication methods (RFC 8176).
    amr: Vec<String>,
    /// Send in `X-CSRF-Token` with every state-changing request.
    csrf_token: String,
}

#[utoipa::path(post, path = "/api/v1/login/finish", tag = "passkeys", request_body = LoginFinishRequest, responses(
    (status = 200, body = LoginResponse), (status = 401, body = crate::error::Problem)))]
async fn login_finish(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<LoginFinishRequest>,
) -> Result<Response, ApiError> {
    let now = state.now();
    let pk = &state.services().passkeys;
    // A login by citizen id names its credential; a username-less one must also carry the user handle.
    let identified = pk.identify(&req.credential);
    let cred_id_b64 = URL_SAFE_NO_PAD.encode(req.credential.get_credential_id());
    // The ceremony and the credential with its account, read in one round trip.
    let mut reads = Batch::new();
    let ceremony = reads.add(ceremonies::lookup(&req.ceremony_id));
    let credential = reads.add(creds::with_owner(&cred_id_b64));
    let mut read = reads.run(state.store().conn().await?.conn()).await?;
    // Checked first, spent in the transaction that writes the outcome (see
    // `ceremonies`): every path below either commits the spend with a
    // session, or spends it with the refusal's audit record.
    let ceremony = read
        .take(ceremony)?
        .ok_or(TakeError::Unknown)
        .and_then(|c| c.live(LOGIN, now))
        .map_err(take_refusal)?;
    let login_state = LoginState::from_json(&ceremony.state).map_err(ApiError::internal)?;
    let refuse = |target: String, reason: &'static str, err: ApiError| {
        spend_and_refuse(&state, &req.ceremony_id, target, reason, err)
    };
    let handle = match (identified, &ceremony.account_id) {
        (Ok((h, _)), _) => Some(h),
        (Err(_), Some(_)) => None,
        (Err(e), None) => {
            return refuse("unknown".into(), "unidentifiable", passkey_refusal(&e)).await;
        }
    };
    let Some((record, owner)) = read.take(credential)? else {
        return refuse(
            "unknown".into(),
            "unknown_credential",
            passkey_refusal(&PasskeyError::UnknownCredential),
        )
        .await;
    };
    let account_id = record.account_id.clone();
    state.rate_limits().check_account(&account_id)?;
    let handle_matches = handle.is_none_or(|h| user_uuid(&owner.user_handle) == h);
    if !handle_matches
        || ceremony
            .account_id
            .as_ref()
            .is_some_and(|a| *a != account_id)
    {
        return refuse(
            account_id.clone(),
            "credential_of_another_account",
            passkey_refusal(&PasskeyError::UnknownCredential),
        )
        .await;
    }
    if record.state != "active" {
        return refuse(
            account_id.clone(),
            "credential_suspended",
            passkey_refusal(&PasskeyError::CounterRegression),
        )
        .await;
    }
    if owner.state != AccountState::Active {
        return refuse(
            account_id.clone(),
            "account_not_active",
            ApiError::forbidden("account_not_active", "This account is suspended or closed."),
        )
        .await;
    }
    let stored = StoredCredential::from_stored(record.credential.clone());
    let outcome = match pk.finish_login(login_state, &req.credential, &stored, now) {
        Ok(o) => o,
        Err(PasskeyError::CounterRegression) => {
            // A cloned authenticator: suspend the credential and record it.
            let (tx, spent, place) = open_spending(&state, &req.ceremony_id).await?;
            if !spent {
                // Not a clone: a concurrent finish of this very ceremony moved the
                // counter first. A replayed assertion must not suspend anything.
                return Err(take_refusal(TakeError::Unknown));
            }
            let mut closing = Batch::new();
            closing.push(creds::suspend(&record.cred_id));
            let ev = AuditEvent::failure(
                account_actor(&account_id),
                "passkey.suspend_cloned",
                account_id.clone(),
            )
            .with_details(json!({ "cred_id": record.cred_id, "reason": "counter_regression" }));
            place.write(now, &ev, &mut closing)?;
            tx.commit_with(closing).await?;
            return Err(passkey_refusal(&PasskeyError::CounterRegression));
        }
        Err(e) => {
            return refuse(
                account_id.clone(),
                "verification_failed",
                passkey_refusal(&e),
            )
            .await;
        }
    };
    // Two round trips write the outcome: the transaction opens by spending the
    // ceremony and taking the audit chain's next place; it closes by writing
    // the credential's new counter, the session and the audit record, and
    // committing.
    let (tx, spent, place) = open_spending(&state, &req.ceremony_id).await?;
    if !spent {
        // A concurrent request with the same ceremony got there first; the
        // transaction is dropped, so nothing of this attempt is kept.
        return Err(take_refusal(TakeError::Unknown));
    }
    let mut closing = Batch::new();
    closing.push(creds::record_use(
        &record.cred_id,
        outcome.updated.as_str(),
        i64::from(outcome.facts.counter),
        outcome.facts.backup_state,
        now,
    ));
    let previous = session::cookie_value(&state, &headers);
    let issued = session::issue(
        &state,
        previous.as_deref(),
        &account_id,
        outcome.aal.number(),
        &outcome.amr,
        &mut closing,
    )?;
    let ev = AuditEvent::success(
        account_actor(&account_id),
        "login.passkey",
        account_id.clone(),
    )
    .with_details(
        json!({ "cred_id": record.cred_id, "aal": outcome.aal.number(), "amr": outcome.amr }),
    );
    place.write(now, &ev, &mut closing)?;
    tx.commit_with(closing).await?;
    let body = LoginResponse {
        account_id,
        aal: outcome.aal.number().to_owned(),
        acr: outcome.aal.acr().to_owned(),
        amr: outcome.amr.iter().map(|s| (*s).to_owned()).collect(),
        csrf_token: issued.csrf_token,
    };
    Ok(([(header::SET_COOKIE, issued.set_cookie)], Json(body)).into_response())
}

#[utoipa::path(post, path = "/api/v1/logout", tag = "passkeys", responses((status = 204)))]
async fn logout(State(state): State<AppState>, session: SessionAuth) -> Result<Response, ApiError> {
    tuaton_store::sessions::delete(&session.id_hash)
        .execute(state.store().conn().await?.conn())
        .await?;
    Ok((
        StatusCode::NO_CONTENT,
        [(
            header::SET_COOKIE,
            session::session_cookie(&state, "", None),
        )],
    )
        .into_response())
}

#[utoipa::path(post, path = "/api/v1/logout/everywhere", tag = "passkeys", responses((status = 200, body = Object)))]
async fn logout_everywhere(
    State(state): State<AppState>,
    session: SessionAuth,
) -> Result<Response, ApiError> {
    let mut tx = state.store().begin().await?;
    let ended = tuaton_store::sessions::delete_for_account(&mut tx, &session.account_id).await?;
    let ev = AuditEvent::success(
        account_actor(&session.account_id),
        "session.logout_everywhere",
        session.account_id.clone(),
    )
    .with_details(json!({ "sessions_ended": ended }));
    audit::append(&mut tx, state.now(), &ev).await?;
    tx.commit().await?;
    Ok((
        [(
            header::SET_COOKIE,
            session::session_cookie(&state, "", None),
        )],
        Json(json!({ "sessions_ended": ended })),
    )
        .into_response())
}

/// Spends the login ceremony and audits the refusal in one transaction (no
/// personal data: the target is an account id or `unknown`), then returns the refusal.
async fn spend_and_refuse(
    state: &AppState,
    ceremony_id: &str,
    target: String,
    reason: &'static str,
    err: ApiError,
) -> Result<Response, ApiError> {
    let ev = AuditEvent::failure("anonymous", "login.passkey", target)
        .with_details(json!({ "reason": reason }));
    // Already spent or not, the refusal is recorded.
    let (tx, _, place) = open_spending(state, ceremony_id).await?;
    let mut closing = Batch::new();
    place.write(state.now(), &ev, &mut closing)?;
    tx.commit_with(closing).await?;
    Err(err)
}

/// Opens the transaction that writes a login's outcome, in one round trip:
/// spends the ceremony (`true` if this call removed it) and takes the audit
/// chain's next place, which the caller writes before committing.
async fn open_spending(state: &AppState, ceremony_id: &str) -> Result<(Tx, bool, Place), ApiError> {
    let mut opening = Batch::new();
    let spent = opening.add(ceremonies::spend(ceremony_id, LOGIN));
    let place = opening.add(audit::next_place());
    let (tx, mut opened) = state.store().begin_with(opening).await?;
    let spent = opened.take(spent)?;
    Ok((tx, spent, opened.take(place)?))
}
