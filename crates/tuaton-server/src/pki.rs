//! The certificate authority's public endpoints: the RFC 3161
//! time-stamping authority (`POST /tsa`), the RFC 6960 OCSP responder
//! (`POST /ocsp`, `GET /ocsp/<request>`), and the published certificates
//! the AIA extension points at (`/pki/ca/<name>.crt`, `/pki/root.crt`) and
//! each CA's CRL (`/pki/ca/<name>.crl`).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tuaton_core::ErrorCode;

use crate::{ApiError, AppState};

/// RFC 3161 §3.4: the request's and the response's media types.
pub const TIMESTAMP_QUERY: &str = "application/timestamp-query";
/// See [`TIMESTAMP_QUERY`].
pub const TIMESTAMP_REPLY: &str = "application/timestamp-reply";
/// RFC 6960 appendix A.1: the request's and the response's media types.
pub const OCSP_REQUEST: &str = "application/ocsp-request";
/// See [`OCSP_REQUEST`].
pub const OCSP_RESPONSE: &str = "application/ocsp-response";
/// RFC 2585 §4.1: a DER certificate.
pub const PKIX_CERT: &str = "application/pkix-cert";
/// RFC 2585 §4.2: a DER CRL.
pub const PKIX_CRL: &str = "application/pkix-crl";

/// The routes; the TSA and the OCSP responder, which sign for every
/// request, count against the per-address budget agencies' back ends have
/// at the OpenID Provider.
pub(crate) fn routes(state: AppState) -> Router<AppState> {
    let stamping = Router::new()
        .route("/tsa", post(time_stamp))
        .route("/ocsp", post(ocsp_post))
        .route("/ocsp/{*request}", get(ocsp_get))
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            crate::ratelimit::back_channel,
        ));
    Router::new()
        .merge(stamping)
        .route("/pki/root.crt", get(root_certificate))
        .route("/pki/ca/{file}", get(ca_certificate))
}

/// An RFC 3161 time-stamp request over HTTP (§3.4): a DER `TimeStampReq`
/// in, a DER `TimeStampResp` out. A request the TSA refuses still gets 200
/// with a `rejection` status naming the failure, as the RFC has it.
#[utoipa::path(post, path = "/tsa", tag = "pki",
    request_body(content = Vec<u8>, content_type = "application/timestamp-query", description = "TimeStampReq, DER"),
    responses(
        (status = 200, description = "TimeStampResp, DER: a token, or a rejection with its PKIFailureInfo", content_type = "application/timestamp-reply"),
        (status = 415, description = "Not application/timestamp-query", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 503, description = "No TSA is set up, or the key backend is unavailable", body = crate::error::Problem, content_type = "application/problem+json")))]
pub(crate) async fn time_stamp(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if !sent_as(&headers, TIMESTAMP_QUERY) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            "A time-stamp request is sent as application/timestamp-query (RFC 3161 §3.4).",
        ));
    }
    let reply = state.idm().time_stamp(body.to_vec(), state.now()).await?;
    Ok(fresh(TIMESTAMP_REPLY, reply))
}

/// A protocol answer made for this request alone: never cached.
fn fresh(media: &'static str, body: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, media),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// Whether the request's body is of media type `media`.
fn sent_as(headers: &HeaderMap, media: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(media))
}

async fn ocsp_answer(state: &AppState, request: &[u8]) -> Result<Response, ApiError> {
    let answer = state.idm().ocsp(request, state.now()).await?;
    Ok(fresh(OCSP_RESPONSE, answer))
}

/// An OCSP request over HTTP POST (RFC 6960 appendix A.1): a DER
/// `OCSPRequest` in, a DER `OCSPResponse` out — statuses signed by the
/// issuing CA's responder, or `malformedRequest` / `unauthorized`, still
/// with 200 as the RFC has it.
#[utoipa::path(post, path = "/ocsp", tag = "pki",
    request_body(content = Vec<u8>, content_type = "application/ocsp-request", description = "OCSPRequest, DER"),
    responses(
        (status = 200, description = "OCSPResponse, DER", content_type = "application/ocsp-response"),
        (status = 415, description = "Not application/ocsp-request", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 503, description = "No CA is set up, or the key backend is unavailable", body = crate::error::Problem, content_type = "application/problem+json")))]
pub(crate) async fn ocsp_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if !sent_as(&headers, OCSP_REQUEST) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            "An OCSP request is sent as application/ocsp-request (RFC 6960 appendix A.1).",
        ));
    }
    ocsp_answer(&state, &body).await
}

/// An OCSP request over HTTP GET (RFC 6960 appendix A.1): the DER
/// `OCSPRequest` in base64 (URL-encoded) as the path's last part.
#[utoipa::path(get, path = "/ocsp/{request}", tag = "pki",
    params(("request" = String, Path, description = "The OCSPRequest, DER in base64")),
    responses(
        (status = 200, description = "OCSPResponse, DER (malformedRequest when the path is not base64 of a request)", content_type = "application/ocsp-response"),
        (status = 503, description = "No CA is set up", body = crate::error::Problem, content_type = "application/problem+json")))]
pub(crate) async fn ocsp_get(
    State(state): State<AppState>,
    Path(request): Path<String>,
) -> Result<Response, ApiError> {
    use base64::Engine as _;
    let der = base64::engine::general_purpose::STANDARD
        .decode(request.trim())
        .unwrap_or_default();
    ocsp_answer(&state, &der).await
}

fn certificate(der: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, PKIX_CERT),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        der,
    )
        .into_response()
}

/// The root certificate valid now: the trust anchor relying parties
/// install (docs/signing.md says how to check its fingerprint).
#[utoipa::path(get, path = "/pki/root.crt", tag = "pki", responses(
    (status = 200, description = "The root CA certificate, DER", content_type = "application/pkix-cert"),
    (status = 503, description = "No CA is set up", body = crate::error::Problem, content_type = "application/problem+json")))]
pub(crate) async fn root_certificate(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(certificate(
        state.idm().root_certificate(state.now()).await?,
    ))
}

/// A CA's certificate or CRL by the name its issued certificates' AIA
/// `caIssuers` URL (RFC 5280 §4.2.2.1) and CRL distribution point
/// (§4.2.1.13) give: `<name>.crt` or `<name>.crl`.
#[utoipa::path(get, path = "/pki/ca/{file}", tag = "pki",
    params(("file" = String, Path, description = "`<name>.crt` or `<name>.crl`")),
    responses(
        (status = 200, description = "The CA certificate (application/pkix-cert) or its CRL (application/pkix-crl), DER"),
        (status = 404, description = "No CA is published under this name", body = crate::error::Problem, content_type = "application/problem+json")))]
pub(crate) async fn ca_certificate(
    State(state): State<AppState>,
    Path(file): Path<String>,
) -> Result<Response, ApiError> {
    let not_found = || {
        ApiError::not_found(
            ErrorCode::NoSuchEndpoint,
            "No CA certificate or CRL is published under this name.",
        )
    };
    let (name, crl) = match (file.strip_suffix(".crt"), file.strip_suffix(".crl")) {
        (Some(name), _) => (name, false),
        (_, Some(name)) => (name, true),
        _ => return Err(not_found()),
    };
    if !tuaton_idm::pki::is_published_name(name) {
        return Err(not_found());
    }
    if crl {
        let der = state
            .idm()
            .crl(name, state.now())
            .await?
            .ok_or_else(not_found)?;
        return Ok((
            [
                (header::CONTENT_TYPE, PKIX_CRL),
                (header::CACHE_CONTROL, "public, max-age=300"),
            ],
            der.as_ref().clone(),
        )
            .into_response());
    }
    let der = state
        .idm()
        .published_ca_certificate(name)
        .await?
        .ok_or_else(not_found)?;
    Ok(certificate(der))
}
