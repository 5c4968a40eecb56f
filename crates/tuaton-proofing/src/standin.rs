//! `DopaCardStatusStandIn`: a local HTTP server speaking the SOAP shape of
//! DOPA's `CheckCardByLaser`, answering from the FICTIONAL development registry.
//!
//! A stand-in for a government service we cannot reach from development or CI.
//! It is not DOPA, knows nobody real, and exists to test the HTTP connector's
//! handling of answers, timeouts, retries and the circuit breaker. Knobs inject
//! delays, HTTP 500s, garbage bodies and service errors; a counter records how
//! many requests arrived. Built only with the `standin` feature.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::card_status::RegistryRawAnswer;
use crate::dev_registry::DevRegistry;
use crate::soap;

/// Fault injection settings.
#[derive(Debug, Clone, Default)]
pub struct StandInKnobs {
    /// Wait this long before answering.
    pub delay: Duration,
    /// Answer the next N requests with HTTP 500.
    pub fail_next: u32,
    /// Answer every request with HTTP 500.
    pub fail_always: bool,
    /// Answer with a body that is not SOAP.
    pub garbage: bool,
    /// Answer with `IsError` true.
    pub service_error: bool,
}

#[derive(Debug)]
struct Shared {
    registry: DevRegistry,
    service_ns: String,
    requests: AtomicU64,
    knobs: Mutex<StandInKnobs>,
}

/// The stand-in; clones share the same registry, knobs and counter.
#[derive(Debug, Clone)]
pub struct DopaCardStatusStandIn {
    shared: Arc<Shared>,
}

impl DopaCardStatusStandIn {
    /// A stand-in answering from `registry` in the default namespace.
    pub fn new(registry: DevRegistry) -> Self {
        Self {
            shared: Arc::new(Shared {
                registry,
                service_ns: soap::DEFAULT_SERVICE_NS.to_owned(),
                requests: AtomicU64::new(0),
                knobs: Mutex::new(StandInKnobs::default()),
            }),
        }
    }

    fn knobs(&self) -> MutexGuard<'_, StandInKnobs> {
        self.shared.knobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces every knob at once.
    pub fn set_knobs(&self, knobs: StandInKnobs) {
        *self.knobs() = knobs;
    }

    /// Changes the knobs in place.
    pub fn update_knobs(&self, f: impl FnOnce(&mut StandInKnobs)) {
        f(&mut self.knobs());
    }

    /// How many requests have arrived (including failed and delayed ones).
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// The axum router: POST to any path answers `CheckCardByLaser`.
    pub fn router(&self) -> Router {
        Router::new()
            .fallback(handle)
            .with_state(self.shared.clone())
    }

    /// Serves on `127.0.0.1` at a free port until the handle is dropped.
    pub async fn serve_loopback(&self) -> std::io::Result<StandInServer> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let router = self.router();
        let task = tokio::spawn(async move {
            // Serving ends only when the task is aborted; an accept error ends it early.
            let _ = axum::serve(listener, router).await;
        });
        Ok(StandInServer { addr, task })
    }
}

/// A running stand-in; stops when dropped.
#[derive(Debug)]
pub struct StandInServer {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl StandInServer {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The endpoint URL to configure the connector with.
    pub fn url(&self) -> String {
        format!("http://{}/CheckCardBankServices.asmx", self.addr)
    }
}

impl Drop for StandInServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn soap_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/soap+xml; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn handle(State(s): State<Arc<Shared>>, method: Method, body: Bytes) -> Response {
    s.requests.fetch_add(1, Ordering::SeqCst);
    let knobs = {
        let mut k = s.knobs.lock().unwrap_or_else(|p| p.into_inner());
        let snapshot = k.clone();
        k.fail_next = k.fail_next.saturating_sub(1);
        snapshot
    };
    if !knobs.delay.is_zero() {
        tokio::time::sleep(knobs.delay).await;
    }
    if method != Method::POST {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    if knobs.fail_always || knobs.fail_next > 0 {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "stand-in: injected failure",
        )
            .into_response();
    }
    if knobs.garbage {
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html")],
            "<html><body>maintenance</body></html>",
        )
            .into_response();
    }
    let query = match std::str::from_utf8(&body).ok().map(soap::parse_request) {
        Some(Ok(q)) => q,
        _ => {
            let fault = format!(
                "<?xml version=\"1.0\"?><soap12:Envelope xmlns:soap12=\"{}\"><soap12:Body><soap12:Fault><soap12:Code><soap12:Value>soap12:Sender</soap12:Value></soap12:Code><soap12:Reason><soap12:Text xml:lang=\"en\">unreadable request</soap12:Text></soap12:Reason></soap12:Fault></soap12:Body></soap12:Envelope>",
                soap::SOAP12_NS
            );
            return soap_response(StatusCode::BAD_REQUEST, fault);
        }
    };
    let raw = if knobs.service_error {
        RegistryRawAnswer {
            is_error: Some(true),
            error_message: Some("stand-in: injected service error".to_owned()),
            ..Default::default()
        }
    } else {
        s.registry.answer(&query).raw
    };
    soap_response(StatusCode::OK, soap::response_envelope(&s.service_ns, &raw))
}
