//! Documents relying parties fetch without logging in: the JWK Set of the
//! keys Tuaton signs tokens with.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::{ApiError, AppState};

/// How long relying parties may cache the JWK Set. A rotation pre-publishes
/// the next key for far longer (a day by default), so a cached set always
/// holds the key that signs next.
pub const JWKS_MAX_AGE_SECS: u32 = 300;

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/.well-known/jwks.json", get(jwks))
}

/// The public id-token keys (RFC 7517 JWK Set): pre-published, signing and
/// retiring keys, so tokens verify throughout a rotation.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "keys", responses(
    (status = 200, description = "JWK Set", content_type = "application/json"),
    (status = 503, description = "The key backend or the database is unavailable", body = crate::error::Problem, content_type = "application/problem+json")))]
pub(crate) async fn jwks(State(state): State<AppState>) -> Response {
    match state.idm().id_token_jwks().await {
        Ok(doc) => (
            [
                (header::CONTENT_TYPE, "application/json".to_owned()),
                (
                    header::CACHE_CONTROL,
                    format!("public, max-age={JWKS_MAX_AGE_SECS}"),
                ),
            ],
            doc.to_string(),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "the JWK Set cannot be built");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                tuaton_core::ErrorCode::KeysUnavailable,
                "The signing keys cannot be read right now. Please try again shortly.",
            )
            .into_response()
        }
    }
}
