//! Liveness, readiness and metrics.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::AppState;

/// Liveness and readiness; `/metrics` too unless it has a listener of its own.
pub(crate) fn routes(metrics_here: bool) -> Router<AppState> {
    let r = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    if metrics_here {
        r.route("/metrics", get(metrics))
    } else {
        r
    }
}

/// The router for `TUATON_METRICS_LISTEN`: `/metrics` alone, so the
/// operational view (request counts per route, refusals, key and registry
/// health) need not be reachable from wherever the service is.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "The process is running")))]
pub(crate) async fn healthz() -> &'static str {
    "ok\n"
}

/// The process can serve: the database answers within a second and the key
/// backend (an HSM, or the software key directory) says it is usable.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, description = "Ready"),
    (status = 503, description = "The database or the key backend is unavailable")))]
pub(crate) async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match tokio::time::timeout(Duration::from_secs(1), state.store().ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready: database");
            return (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n");
        }
        Err(_) => {
            tracing::warn!("not ready: database did not answer within 1s");
            return (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n");
        }
    }
    if let Err(e) =
        crate::custody::check_health(&state.services().keys, Duration::from_secs(2)).await
    {
        tracing::warn!(error = %e, "not ready: key backend");
        return (StatusCode::SERVICE_UNAVAILABLE, "key backend unavailable\n");
    }
    (StatusCode::OK, "ready\n")
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text format")))]
pub(crate) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics().render(),
    )
}
