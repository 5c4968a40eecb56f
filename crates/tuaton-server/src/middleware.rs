//! Cross-cutting layers: request ids, metrics, security headers.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderName, HeaderValue, header};
use ring::rand::{SecureRandom, SystemRandom};
use tower_http::request_id::{MakeRequestId, RequestId};

/// The header carrying each request's id, in requests and responses.
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// 128 random bits, hex: unguessable, so an id never reveals request volume.
#[derive(Clone, Default)]
pub(crate) struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _request: &http::Request<B>) -> Option<RequestId> {
        let mut b = [0u8; 16];
        SystemRandom::new().fill(&mut b).ok()?;
        HeaderValue::from_str(&hex::encode(b))
            .ok()
            .map(RequestId::new)
    }
}

/// Counts requests and errors and times them, labelled by route template (never the raw path,
/// which could carry personal data and explode cardinality).
pub(crate) async fn record_metrics(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let start = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status();
    let labels = [
        ("route", route),
        ("method", method),
        ("status", status.as_u16().to_string()),
    ];
    metrics::counter!("tuaton_http_requests_total", &labels).increment(1);
    metrics::histogram!(
        "tuaton_http_request_duration_seconds",
        &[
            ("route", labels[0].1.clone()),
            ("method", labels[1].1.clone())
        ]
    )
    .record(start.elapsed().as_secs_f64());
    if status.is_client_error() || status.is_server_error() {
        let class = if status.is_server_error() {
            "server"
        } else {
            "client"
        };
        metrics::counter!("tuaton_http_errors_total", "route" => labels[0].1.clone(), "class" => class).increment(1);
    }
    resp
}

/// Headers every response carries. The CSP forbids inline script and framing;
/// pages ship their scripts as files.
pub(crate) fn security_headers(hsts: bool) -> Vec<(HeaderName, HeaderValue)> {
    let mut h = vec![
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                 object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
            ),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ),
        (
            HeaderName::from_static("permissions-policy"),
            HeaderValue::from_static("camera=(), microphone=(), geolocation=()"),
        ),
    ];
    if hsts {
        h.push((
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        ));
    }
    h
}
