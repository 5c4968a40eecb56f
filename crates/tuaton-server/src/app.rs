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
            passkey_seal: services.passkey_seal.0.clone(),
            limiter: rate_limits.clone(),
            policy: policy(&settings),
            face: None,
            jwks_fetcher: Some(Arc::new(crate::outbound::GuardedJwksFetcher {
                dev: settings.dev,
            })),
            ca: settings.ca.clone(),
            external_tsa: settings
                .ca
                .as_ref()
                .and_then(|c| Some((c.time_stamp_url.clone()?, c.time_stamp_certificate.clone())))
                .and_then(|(url, signer)| {
                    let made = crate::outbound::HttpTsa::new(url, signer);
                    if made.is_none() {
                        tracing::error!("no HTTP client for TUATON_TSA_URL could be made; signatures take Tuaton's own time stamps");
                    }
                    made
                })
                .map(|t| Arc::new(t) as Arc<dyn tuaton_sign::tsp::TimeStampSource>),
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
/// `/api/v1`, the OpenID Provider (`oidc`) and the pages (`web`). Remote
/// signing (`csc`) and the PKI endpoints (`pki`) join the same way, each
/// calling the service layer; the layers below apply to all of them.
pub fn build_router(state: AppState) -> Router {
    let settings = state.settings().clone();
    let mut router = Router::new()
        .merge(crate::health::routes(settings.metrics_listen.is_none()))
        .merge(crate::openapi::routes())
        .merge(crate::wellknown::routes())
        .merge(crate::pki::routes(state.clone()))
        .merge(crate::web::routes())
        .merge(crate::oidc::routes(state.clone()))
        .merge(crate::csc::routes(state.clone()))
        .merge(crate::documents::routes(state.clone()))
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
            .layer(axum::middleware::from_fn_with_state(
                BodyLimits {
                    any: settings.max_body_bytes,
                    documents: settings.max_document_bytes,
                },
                limit_body,
            )),
        )
        // Outermost, so every refusal — a timeout or an oversized body too —
        // reaches a browser as a page.
        .layer(axum::middleware::from_fn(crate::error::page::negotiate))
}

/// The largest request body: documents to sign may be larger than any
/// other request.
#[derive(Clone, Copy)]
struct BodyLimits {
    any: usize,
    documents: usize,
}

/// Whether a request may carry documents: a JSON POST to the signing API's
/// two routes or to CSC `signatures/signDoc`, exactly, or a PDF posted to
/// the document API. (Forms are read before routing, by the CSRF layer,
/// so a form never gets the larger bound.)
fn carries_documents(req: &axum::extract::Request) -> bool {
    let path = req.uri().path();
    let route = path == "/api/v1/signatures"
        || path == "/csc/v2/signatures/signDoc"
        || path
            .strip_prefix("/api/v1/signatures/")
            .and_then(|rest| rest.strip_suffix("/finish"))
            .is_some_and(|id| !id.is_empty() && !id.contains('/'));
    let kind = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    // An agency's PDF for the document API, sent as itself.
    let posted = path == "/agency/v1/documents" && kind.starts_with("application/pdf");
    req.method() == http::Method::POST
        && ((route && kind.starts_with("application/json")) || posted)
}

/// Bounds the request's body by its route: a declared length beyond the
/// bound is refused at once (413), and a body that runs past it fails when
/// read, whatever it declared.
async fn limit_body(
    axum::extract::State(limits): axum::extract::State<BodyLimits>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let limit = if carries_documents(&req) {
        limits.documents
    } else {
        limits.any
    };
    let declared = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            tuaton_core::ErrorCode::BodyTooLarge,
            format!("The request body is larger than the {limit} bytes accepted here."),
        )
        .into_response();
    }
    let (parts, body) = req.into_parts();
    let body = axum::body::Body::new(http_body_util::Limited::new(body, limit));
    next.run(axum::extract::Request::from_parts(parts, body))
        .await
}

/// How many connections are served at once, and how long a client may take
/// to send a request's headers.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Connections served at once; further ones wait in the listen backlog
    /// until one closes.
    pub max_connections: usize,
    /// A connection that has not sent a whole request head this long after
    /// it opened (or after its last response) is closed.
    pub header_read_timeout: std::time::Duration,
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting
/// connections and lets in-flight requests finish (bounded by `grace`).
///
/// The accept loop is Tuaton's own (on hyper's connection builder) because
/// `axum::serve` sets neither a header-read timeout nor a connection cap:
/// a slow client holding connections open with half a request would
/// otherwise tie up the process.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: std::time::Duration,
    limits: ConnectionLimits,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt as _;

    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    // HTTP/1.1 only: TLS (and with it HTTP/2) ends at the reverse proxy in
    // front, and HTTP/1's header-read timer covers every request head,
    // while protocol detection and idle HTTP/2 connections would have none.
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        // Finished connections are reaped as new ones come.
        while connections.try_join_next().is_some() {}
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(v) => v,
                Err(e) => {
                    // Out of file descriptors, say: wait a little rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = app
            .clone()
            .map_request(move |req: http::Request<hyper::body::Incoming>| {
                let mut req = req.map(axum::body::Body::new);
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                req
            });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let first_bytes = limits.header_read_timeout;
        connections.spawn(async move {
            // A client that sends nothing at all is cut off like one that
            // sends half a head.
            let mut first = [0u8; 1];
            match tokio::time::timeout(first_bytes, stream.peek(&mut first)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return drop(permit),
            }
            let conn = builder.serve_connection(
                TokioIo::new(stream),
                hyper_util::service::TowerToHyperService::new(service),
            );
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!("shutting down: finishing in-flight requests");
    // Once shutdown begins, in-flight requests get `grace` to finish.
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => {
            tracing::warn!("shutdown grace period over; closing remaining connections");
        }
    }
    // Nothing of a cut-off request runs on after `serve` returns (the
    // caller anchors the audit chain and closes the store next).
    connections.abort_all();
    while connections.join_next().await.is_some() {}
    Ok(())
}
