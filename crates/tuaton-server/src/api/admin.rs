//! The admin API: client administrators register and change the agencies'
//! OpenID Connect clients, as `tuaton clients` does at the command line.
//! The service layer checks the role, the AAL3 login and, for a change, a
//! fresh login; the session extractor checks the CSRF token of every write.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use tuaton_idm::{ClientSecret, RegisteredClient};

use crate::error::ApiJson;
use crate::session::SessionAuth;
use crate::{ApiError, AppState};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/clients", get(list).post(register))
        .route(
            "/admin/clients/{client_id}",
            get(show).patch(change).delete(remove),
        )
        .route("/admin/clients/{client_id}/secret", post(new_secret))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(list, register, show, change, remove, new_secret))]
pub(crate) struct ApiDocAdmin;

/// A registration as the admin API answers it: with the secret, shown this
/// once, when one was made; never cached.
fn answer(
    status: StatusCode,
    client: &RegisteredClient,
    secret: Option<&ClientSecret>,
) -> Result<Response, ApiError> {
    let v = client.shown_with(secret)?;
    Ok((status, [(header::CACHE_CONTROL, "no-store")], Json(v)).into_response())
}

/// Every registered client.
#[utoipa::path(get, path = "/api/v1/admin/clients", tag = "admin", responses(
    (status = 200, body = Object), (status = 403, body = crate::error::Problem)))]
async fn list(State(state): State<AppState>, session: SessionAuth) -> Result<Response, ApiError> {
    let a = state
        .idm()
        .client_administrator(&session, false, state.now())
        .await?;
    let clients = a.admin.list().await?;
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({ "clients": clients })),
    )
        .into_response())
}

/// Register a client: the fields given over the secure defaults
/// (`private_key_jwt`, PAR, DPoP, ES256, pairwise subjects). A
/// `client_secret_basic` client's secret is in the answer, once.
#[utoipa::path(post, path = "/api/v1/admin/clients", tag = "admin", request_body = Object, responses(
    (status = 201, body = Object), (status = 400, body = crate::error::Problem),
    (status = 403, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
async fn register(
    State(state): State<AppState>,
    session: SessionAuth,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let now = state.now();
    let a = state
        .idm()
        .client_administrator(&session, true, now)
        .await?;
    let (client, secret) = a.admin.register(&a.actor, &body, now).await?;
    answer(StatusCode::CREATED, &client, secret.as_ref())
}

/// One client's registration.
#[utoipa::path(get, path = "/api/v1/admin/clients/{client_id}", tag = "admin", responses(
    (status = 200, body = Object), (status = 404, body = crate::error::Problem)),
    params(("client_id" = String, Path, description = "The client_id")))]
async fn show(
    State(state): State<AppState>,
    session: SessionAuth,
    Path(client_id): Path<String>,
) -> Result<Response, ApiError> {
    let a = state
        .idm()
        .client_administrator(&session, false, state.now())
        .await?;
    answer(StatusCode::OK, &a.admin.show(&client_id).await?, None)
}

/// Whether a change of the client's `subject` is meant.
#[derive(serde::Deserialize, utoipa::IntoParams)]
struct ChangeQuery {
    /// A change of `subject` gives every person a new `sub` at the agency;
    /// it is made only with this set.
    #[serde(default)]
    confirm_subject_change: bool,
}

/// Change a client by a JSON merge patch (RFC 7396,
/// `application/merge-patch+json`): the fields given replace the old ones,
/// `null` removes an optional field.
#[utoipa::path(patch, path = "/api/v1/admin/clients/{client_id}", tag = "admin", request_body = Object, responses(
    (status = 200, body = Object), (status = 400, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    params(("client_id" = String, Path, description = "The client_id"), ChangeQuery))]
async fn change(
    State(state): State<AppState>,
    session: SessionAuth,
    Path(client_id): Path<String>,
    axum::extract::Query(q): axum::extract::Query<ChangeQuery>,
    ApiJson(patch): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let now = state.now();
    let a = state
        .idm()
        .client_administrator(&session, true, now)
        .await?;
    let (client, secret) = a
        .admin
        .patch(&a.actor, &client_id, &patch, q.confirm_subject_change, now)
        .await?;
    answer(StatusCode::OK, &client, secret.as_ref())
}

/// Remove a client; every grant it holds is revoked.
#[utoipa::path(delete, path = "/api/v1/admin/clients/{client_id}", tag = "admin", responses(
    (status = 204, description = "Removed"), (status = 404, body = crate::error::Problem)),
    params(("client_id" = String, Path, description = "The client_id")))]
async fn remove(
    State(state): State<AppState>,
    session: SessionAuth,
    Path(client_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let now = state.now();
    let a = state
        .idm()
        .client_administrator(&session, true, now)
        .await?;
    a.admin.remove(&a.actor, &client_id, now).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Make a `client_secret_basic` client a new secret, shown once; the old
/// one stops working at once.
#[utoipa::path(post, path = "/api/v1/admin/clients/{client_id}/secret", tag = "admin", responses(
    (status = 200, body = Object), (status = 400, body = crate::error::Problem)),
    params(("client_id" = String, Path, description = "The client_id")))]
async fn new_secret(
    State(state): State<AppState>,
    session: SessionAuth,
    Path(client_id): Path<String>,
) -> Result<Response, ApiError> {
    let now = state.now();
    let a = state
        .idm()
        .client_administrator(&session, true, now)
        .await?;
    let (client, secret) = a.admin.new_secret(&a.actor, &client_id, now).await?;
    answer(StatusCode::OK, &client, secret.as_ref())
}
