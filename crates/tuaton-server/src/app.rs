//! Application state, the composed router, and serving with graceful shutdown.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use tuaton_core::Clock;
use tuaton_store::Store;

use crate::error::ApiError;
use crate::middleware::{REQUEST_ID, RandomRequestId, record_metrics, security_headers};
use crate::services::Services;
use crate::settings::Settings;

/// Everything a handler may reach; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    settings: Settings,
    clock: Arc<dyn Clock>,
    services: Services,
    idm: tuaton_idm::Idm,
    rate_limits: Arc<crate::ratelimit::RateLimits>,
    metrics: PrometheusHandle,
    anchoring: crate::maintenance::Anchoring,
}

impl AppState {
    /// Builds the state from its parts.
    pub fn new(
        settings: Settings,
        store: Store,
        clock: Arc<dyn Clock>,
        services: Services,
    ) -> Self {
        let rate_limits = Arc::new(crate::ratelimit::RateLimits::new(
            settings.rate_limit_per_address,
            settings.rate_limit_per_account,
        ));
        let idm = tuaton_idm::Idm::new(tuaton_idm::IdmParts {
            store,
            card_registry: services.card_registry.clone(),
            juristic_registry: services.juristic_registry.clone(),
            passkeys: services.passkeys.clone(),
            keys: services.keys.clone(),
            limiter: rate_limits.clone(),
            policy: policy(&settings),
            face: None,
        });
        Self(Arc::new(Inner {
            settings,
            clock,
            services,
            idm,
            rate_limits,
            metrics: crate::telemetry::metrics_handle(),
            anchoring: crate::maintenance::Anchoring::default(),
        }))
    }

    /// Builds the state with the services the settings describe.
    pub fn from_settings(
        settings: Settings,
        store: Store,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, crate::services::ServicesError> {
        let services = Services::from_settings(&settings, clock.clone())?;
        Ok(Self::new(settings, store, clock, services))
    }

    /// Ceremony rate limits.
    pub fn rate_limits(&self) -> &crate::ratelimit::RateLimits {
        &self.0.rate_limits
    }

    /// Connectors and protocol engines.
    pub fn services(&self) -> &Services {
        &self.0.services
    }

    /// The clock, for library calls that take one.
    pub fn clock(&self) -> &dyn Clock {
        self.0.clock.as_ref()
    }

    /// The settings the process started with.
    pub fn settings(&self) -> &Settings {
        &self.0.settings
    }

    /// The database.
    pub fn store(&self) -> &Store {
        self.0.idm.store()
    }

    /// The service layer every route calls.
    pub fn idm(&self) -> &tuaton_idm::Idm {
        &self.0.idm
    }

    /// The current time.
    pub fn now(&self) -> time::OffsetDateTime {
        self.0.clock.now()
    }

    /// The Prometheus handle.
    pub fn metrics(&self) -> &PrometheusHandle {
        &self.0.metrics
    }

    /// What this process last anchored of the audit chain.
    pub(crate) fn anchoring(&self) -> &crate::maintenance::Anchoring {
        &self.0.anchoring
    }
}

/// The times the service layer applies, from the settings.
fn policy(settings: &Settings) -> tuaton_idm::Policy {
    let defaults = tuaton_idm::Policy::default();
    let or = |d: std::time::Duration, default: time::Duration| {
        time::Duration::try_from(d).unwrap_or(default)
    };
    tuaton_idm::Policy {
        session_lifetime: or(settings.session_absolute, defaults.session_lifetime),
        session_idle: or(settings.session_idle, defaults.session_idle),
        authority_recheck: or(settings.authority_recheck, defaults.authority_recheck),
        fresh_login: defaults.fresh_login,
        recovery_cooling_off: or(settings.recovery_cooling_off, defaults.recovery_cooling_off),
        recovery_window: defaults.recovery_window,
    }
}

/// The whole application: every area's routes with the shared layers.
///
/// Each area is a module with its own `routes()` (and its own route layers,
/// as the JSON API's ceremonies carry the per-address rate limit): health,
/// the OpenAPI document, the well-known documents, the JSON API under
/// `/api/v1`. The OpenID Provider (`oidc`), remote signing (`csc`), the PKI
/// endpoints (`pki`) and the pages (`web`) join the same way, each calling
/// the service layer; the layers below apply to all of them.
pub fn build_router(state: AppState) -> Router {
    let settings = state.settings().clone();
    let mut router = Router::new()
        .merge(crate::health::routes())
        .merge(crate::openapi::routes())
        .merge(crate::wellknown::routes())
        .merge(crate::web::routes())
        .nest("/api/v1", crate::api::routes(state.clone()))
        .fallback(|| async {
            ApiError::not_found(
                tuaton_core::ErrorCode::NoSuchEndpoint,
                "There is no endpoint at this address.",
            )
        })
        .route_layer(axum::middleware::from_fn(record_metrics))
        .layer(axum::middleware::from_fn(crate::session::csrf_from_form))
        .with_state(state);
    for (name, value) in security_headers(settings.is_https()) {
        router = router.layer(SetResponseHeaderLayer::if_not_present(name, value));
    }
    router
        .layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(REQUEST_ID, RandomRequestId))
            .layer(TraceLayer::new_for_http().make_span_with(|req: &http::Request<_>| {
                let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
                tracing::info_span!("request", id = %id, method = %req.method(), path = %req.uri().path())
            }))
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    tuaton_core::ErrorCode::RequestTimeout,
                    "The request took too long and was stopped. Please try again.",
                )
                .into_response()
            }))
            .timeout(settings.request_timeout)
            .layer(RequestBodyLimitLayer::new(settings.max_body_bytes)),
        )
        // Outermost, so every refusal — a timeout or an oversized body too —
        // reaches a browser as a page.
        .layer(axum::middleware::from_fn(crate::error::page::negotiate))
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting
/// connections and lets in-flight requests finish (bounded by `grace`).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: std::time::Duration,
) -> std::io::Result<()> {
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        shutdown.await;
        tracing::info!("shutting down: finishing in-flight requests");
        let _ = stopping_tx.send(());
    };
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown);
    let server = std::pin::pin!(server.into_future());
    // Once shutdown begins, in-flight requests get `grace` to finish.
    tokio::select! {
        r = server => r,
        () = async {
            let _ = stopping_rx.await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!("shutdown grace period over; closing remaining connections");
            Ok(())
        }
    }
}
