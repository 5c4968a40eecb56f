//! Passkey registration, login and logout: each handler extracts, calls the
//! service layer, and shapes the answer.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tuaton_idm::{
    IdmError, PasskeyName, PasskeyRecord, PublicKeyCredential, RegisterPublicKeyCredential,
    Registrant,
};
use utoipa::ToSchema;

use crate::error::ApiJson;
use crate::session::{self, SessionAuth};
use crate::{ApiError, AppState};

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
    /// The answer to a ceremony's start: its id, and the library's options
    /// split into the `publicKey` member and the mediation hint.
    pub(super) fn answer(
        ceremony_id: String,
        options: &impl Serialize,
    ) -> Result<Json<Self>, ApiError> {
        let v = serde_json::to_value(options).map_err(ApiError::internal)?;
        let mediation = v
            .get("mediation")
            .and_then(|m| m.as_str())
            .map(str::to_owned);
        let public_key = v.get("publicKey").cloned().unwrap_or(v);
        Ok(Json(Self {
            ceremony_id,
            public_key,
            mediation,
        }))
    }
}

#[utoipa::path(post, path = "/api/v1/passkeys/registration/start", tag = "passkeys", request_body = RegistrationStartRequest,
    responses((status = 200, body = CeremonyResponse), (status = 401, body = crate::error::Problem)))]
async fn registration_start(
    State(state): State<AppState>,
    session: Option<SessionAuth>,
    ApiJson(req): ApiJson<RegistrationStartRequest>,
) -> Result<Json<CeremonyResponse>, ApiError> {
    let who = match (&req.enrolment_token, &session) {
        (Some(token), _) => Registrant::Grant(token),
        (None, Some(s)) => Registrant::Session(s),
        (None, None) => {
            return Err(ApiError::unauthorized(
                tuaton_core::ErrorCode::LoginRequired,
                "Log in, or use the enrolment token.",
            ));
        }
    };
    let begun = state
        .idm()
        .start_registration(who, req.want_aal3, state.now());
    let begun = begun.await?;
    CeremonyResponse::answer(begun.ceremony_id, &begun.options)
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
    responses((status = 201, body = Object), (status = 401, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
async fn registration_finish(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RegistrationFinishRequest>,
) -> Result<(StatusCode, Json<PasskeyRecord>), ApiError> {
    let name = PasskeyName::parse(&req.name)?;
    let record = state
        .idm()
        .finish_registration(&req.ceremony_id, &name, &req.credential, state.now())
        .await?;
    Ok((StatusCode::CREATED, Json(record)))
}

#[utoipa::path(get, path = "/api/v1/passkeys", tag = "passkeys", responses((status = 200, body = Object)))]
async fn list(
    State(state): State<AppState>,
    session: SessionAuth,
) -> Result<Json<Vec<PasskeyRecord>>, ApiError> {
    Ok(Json(state.idm().passkeys_of(&session.account_id).await?))
}

/// Removes a passkey. Needs a login within the last five minutes, and never removes the last one.
#[utoipa::path(delete, path = "/api/v1/passkeys/{cred_id}", tag = "passkeys", responses(
    (status = 204), (status = 403, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
async fn remove(
    State(state): State<AppState>,
    session: SessionAuth,
    Path(cred_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .idm()
        .remove_passkey(&session, &cred_id, state.now())
        .await?;
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
    let citizen_id = req
        .citizen_id
        .as_deref()
        .map(tuaton_core::CitizenId::parse)
        .transpose()
        .map_err(|e| IdmError::invalid(tuaton_core::ErrorCode::InvalidCitizenId, e.to_string()))?;
    let begun = state.idm().start_login(citizen_id.as_ref(), state.now());
    let begun = begun.await?;
    CeremonyResponse::answer(begun.ceremony_id, &begun.options)
}

/// Finish a login.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginFinishRequest {
    /// From the start response.
    pub(super) ceremony_id: String,
    /// The `PublicKeyCredential` from `navigator.credentials.get`, JSON-encoded.
    #[schema(value_type = Object)]
    pub(super) credential: PublicKeyCredential,
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
    let previous = session::presented_secret(&state, &headers);
    let done = state
        .idm()
        .finish_login(
            &req.ceremony_id,
            &req.credential,
            previous.as_ref(),
            state.now(),
        )
        .await?;
    let cookie = session::issued_cookie(&state, &done.session);
    let body = LoginResponse {
        account_id: done.account_id.to_string(),
        aal: done.aal.number().to_owned(),
        acr: done.aal.acr().to_owned(),
        amr: done.amr.iter().map(|s| (*s).to_owned()).collect(),
        csrf_token: done.session.csrf_token,
    };
    Ok(([(header::SET_COOKIE, cookie)], Json(body)).into_response())
}

#[utoipa::path(post, path = "/api/v1/logout", tag = "passkeys", responses((status = 204)))]
async fn logout(State(state): State<AppState>, session: SessionAuth) -> Result<Response, ApiError> {
    state.idm().logout(&session, state.now()).await?;
    let cleared = session::cleared_cookie(&state);
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cleared)]).into_response())
}

#[utoipa::path(post, path = "/api/v1/logout/everywhere", tag = "passkeys", responses((status = 200, body = Object)))]
async fn logout_everywhere(
    State(state): State<AppState>,
    session: SessionAuth,
) -> Result<Response, ApiError> {
    let ended = state.idm().logout_everywhere(&session, state.now()).await?;
    let cleared = session::cleared_cookie(&state);
    Ok((
        [(header::SET_COOKIE, cleared)],
        Json(json!({ "sessions_ended": ended })),
    )
        .into_response())
}
