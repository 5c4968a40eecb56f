//! The signed-in person's own account: profile, PDPA consents and data rights, companies.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use tuaton_core::{CitizenId, ErrorCode, JuristicId};
use tuaton_idm::{
    AuthorityCheck, CompanyLinked, ConsentRecord, ConsentRequest, IdmError, LinkedCompany,
};
use utoipa::ToSchema;

use crate::error::ApiJson;
use crate::session::{self, SessionAuth};
use crate::{ApiError, AppState};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/me", get(me))
        .route("/me/export", post(export))
        .route("/me/erase", post(erase))
        .route("/me/consents", get(list_consents).post(give_consent))
        .route("/me/consents/{id}/withdraw", post(withdraw_consent))
        .route("/me/recoveries/{id}/cancel", post(cancel_recovery))
        .route("/me/companies", get(list_companies).post(link_company))
        .route(
            "/me/companies/{juristic_id}/authority",
            post(check_authority),
        )
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        me,
        export,
        erase,
        list_consents,
        give_consent,
        withdraw_consent,
        cancel_recovery,
        list_companies,
        link_company,
        check_authority
    ),
    components(schemas(ConsentRequest, LinkCompanyRequest, AuthorityRequest))
)]
pub(crate) struct ApiDocAccounts;

/// The account, its level, passkeys and companies.
#[utoipa::path(get, path = "/api/v1/me", tag = "account", responses((status = 200, body = Object), (status = 401, body = crate::error::Problem)))]
async fn me(
    State(state): State<AppState>,
    session: SessionAuth,
) -> Result<Json<serde_json::Value>, ApiError> {
    let p = state.idm().profile(&session).await?;
    let recoveries = state
        .idm()
        .open_recoveries(&session.account_id, state.now())
        .await?;
    Ok(Json(json!({
        "account": p.account,
        "session": { "aal": session.aal.number(), "amr": session.amr },
        "passkeys": p.passkeys,
        "companies": p.companies,
        "roles": p.roles,
        "open_recoveries": recoveries,
    })))
}

/// Everything Tuaton holds about the signed-in person, as JSON (PDPA access
/// and portability). A POST, so it needs the CSRF token like any request
/// that writes (the export is audited) and no link on another site can start it.
#[utoipa::path(post, path = "/api/v1/me/export", tag = "account", responses((status = 200, body = Object), (status = 403, body = crate::error::Problem)))]
async fn export(State(state): State<AppState>, session: SessionAuth) -> Result<Response, ApiError> {
    let body = state.idm().export(&session, state.now()).await?;
    Ok((
        [
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"tuaton-export.json\"",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Json(body),
    )
        .into_response())
}

/// Erases the signed-in person (PDPA): needs a login within the last five minutes.
#[utoipa::path(post, path = "/api/v1/me/erase", tag = "account", responses((status = 200, body = Object), (status = 403, body = crate::error::Problem)))]
async fn erase(State(state): State<AppState>, session: SessionAuth) -> Result<Response, ApiError> {
    state.idm().erase(&session, state.now()).await?;
    Ok((
        [(header::SET_COOKIE, session::cleared_cookie(&state))],
        Json(json!({ "erased": true, "account_id": session.account_id })),
    )
        .into_response())
}

#[utoipa::path(get, path = "/api/v1/me/consents", tag = "consent", responses((status = 200, body = Object)))]
async fn list_consents(
    State(state): State<AppState>,
    session: SessionAuth,
) -> Result<Json<Vec<ConsentRecord>>, ApiError> {
    Ok(Json(state.idm().consents(&session).await?))
}

#[utoipa::path(post, path = "/api/v1/me/consents", tag = "consent", request_body = ConsentRequest, responses((status = 201, body = Object)))]
async fn give_consent(
    State(state): State<AppState>,
    session: SessionAuth,
    ApiJson(req): ApiJson<ConsentRequest>,
) -> Result<(StatusCode, Json<ConsentRecord>), ApiError> {
    let rec = state.idm().give_consent(&session, req, state.now()).await?;
    Ok((StatusCode::CREATED, Json(rec)))
}

#[utoipa::path(post, path = "/api/v1/me/consents/{id}/withdraw", tag = "consent", responses((status = 200, body = Object), (status = 404, body = crate::error::Problem)))]
async fn withdraw_consent(
    State(state): State<AppState>,
    session: SessionAuth,
    Path(id): Path<String>,
) -> Result<Json<ConsentRecord>, ApiError> {
    Ok(Json(
        state
            .idm()
            .withdraw_consent(&session, &id, state.now())
            .await?,
    ))
}

/// Cancel a recovery of the signed-in account (listed in `/me` as `open_recoveries`).
#[utoipa::path(post, path = "/api/v1/me/recoveries/{id}/cancel", tag = "recovery", responses(
    (status = 204, description = "Cancelled"), (status = 404, body = crate::error::Problem)),
    params(("id" = String, Path, description = "The recovery's id")))]
async fn cancel_recovery(
    State(state): State<AppState>,
    session: SessionAuth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .idm()
        .cancel_recovery(&session, &id, state.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Link a company the signed-in person directs.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LinkCompanyRequest {
    /// Thirteen-digit juristic id.
    juristic_id: String,
}

fn juristic_id(s: &str) -> Result<JuristicId, IdmError> {
    JuristicId::parse(s).map_err(|e| IdmError::invalid(ErrorCode::InvalidJuristicId, e.to_string()))
}

#[utoipa::path(get, path = "/api/v1/me/companies", tag = "companies", responses((status = 200, body = Object)))]
/// The linked companies, each re-confirmed with the registry once its
/// confirmation is older than `authority_recheck_secs`.
async fn list_companies(
    State(state): State<AppState>,
    session: SessionAuth,
) -> Result<Json<Vec<LinkedCompany>>, ApiError> {
    Ok(Json(state.idm().companies(&session, state.now()).await?))
}

#[utoipa::path(post, path = "/api/v1/me/companies", tag = "companies", request_body = LinkCompanyRequest, responses(
    (status = 201, body = Object), (status = 403, body = crate::error::Problem)))]
async fn link_company(
    State(state): State<AppState>,
    session: SessionAuth,
    ApiJson(req): ApiJson<LinkCompanyRequest>,
) -> Result<(StatusCode, Json<CompanyLinked>), ApiError> {
    let jid = juristic_id(&req.juristic_id)?;
    let linked = state
        .idm()
        .link_company(&session, &jid, state.now())
        .await?;
    Ok((StatusCode::CREATED, Json(linked)))
}

/// Who acts for the company in this transaction, beside the signed-in director.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuthorityRequest {
    /// Citizen ids of the other directors acting jointly (they confirm separately when signing).
    #[serde(default)]
    acting_with: Vec<String>,
}

/// Checks authority to act for a company now, always asking the registry
/// (as every signing will); refreshes or removes the link accordingly.
#[utoipa::path(post, path = "/api/v1/me/companies/{juristic_id}/authority", tag = "companies", request_body = AuthorityRequest, responses((status = 200, body = Object)))]
async fn check_authority(
    State(state): State<AppState>,
    session: SessionAuth,
    Path(jid): Path<String>,
    ApiJson(req): ApiJson<AuthorityRequest>,
) -> Result<Json<AuthorityCheck>, ApiError> {
    let jid = juristic_id(&jid)?;
    let acting_with = req
        .acting_with
        .iter()
        .map(|c| CitizenId::parse(c))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| IdmError::invalid(ErrorCode::InvalidCitizenId, e.to_string()))?;
    let check = state
        .idm()
        .check_authority(&session, &jid, &acting_with, state.now())
        .await?;
    Ok(Json(check))
}
