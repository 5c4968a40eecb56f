//! The document API (docs/agencies.md): an agency's back end posts a PDF
//! with its own access token (`client_credentials`), sends the person to
//! the signing page the answer names, and fetches the signed PDF when the
//! browser comes back to its redirect URI with `document`.
//!
//! - `POST /agency/v1/documents?name=…&redirect_uri=…[&state=…][&subject=…|&company=…]`,
//!   the PDF as the body (`application/pdf`): 201 with the id, the page's
//!   URL, the file's SHA-256 and pages, and when it expires. With
//!   `company` (a juristic id) the company's directors sign it, as many as
//!   the registry's authority rule asks, each on the same page.
//! - `GET /agency/v1/documents/{id}`: its state, signatures and signer; and
//!   `GET /agency/v1/documents/{id}/signed.pdf`: the signed file.
//! - `GET /documents/{id}`: the page the person signs on; it logs in with a
//!   passkey through the JSON API; `GET /documents/{id}/file` is the file
//!   to read first (a download, never shown on Tuaton's origin); then
//!   `POST /documents/{id}/start` and
//!   `/finish` (the session's CSRF token in `x-csrf-token`) confirm with a
//!   second assertion over the signing challenge; `/decline` declines.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use tuaton_idm::PublicKeyCredential;
use tuaton_idm::documents::Upload;
use tuaton_store::agency_documents::Files;

use crate::error::ApiJson;
use crate::error::page::{escape, fill};
use crate::oidc::{issuer, presented_resource, resource_token_refusal, with_nonce};
use crate::session::SessionAuth;
use crate::{ApiError, AppState};

const PAGE: &str = include_str!("web/assets/document.html");
const SCRIPT: &str = include_str!("web/assets/document.js");
/// The lines a company's document adds to the page: for whom, and how far
/// its directors are.
const COMPANY: &str = "<p id=\"company\" data-juristic-id=\"{{juristic_id}}\">ในนามของ · For <strong>{{company}}</strong> ({{juristic_id}})</p>\n<p>กรรมการที่ลงลายมือชื่อแล้ว · Directors who have signed: <span id=\"signatures\">{{signatures}}</span>. Tuaton ตรวจอำนาจกรรมการกับทะเบียนนิติบุคคลก่อนลงลายมือชื่อ · Tuaton checks your authority with the company registry before you sign.</p>";

/// How many posts (each may carry a PDF) are served at once.
const POSTS: usize = 4;

pub(crate) fn routes(state: AppState) -> Router<AppState> {
    // The body is bounded by TUATON_MAX_DOCUMENT_BYTES for the post
    // (crate::app), and few are read at once.
    let posting = Router::new()
        .route("/agency/v1/documents", post(post_document))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(tower::limit::ConcurrencyLimitLayer::new(POSTS));
    // An agency's back end counts against the back-channel budget; the
    // person's page against the per-address one.
    let agency = Router::new()
        .merge(posting)
        .route("/agency/v1/documents/{id}", get(agency_document))
        .route("/agency/v1/documents/{id}/signed.pdf", get(signed_pdf))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::ratelimit::back_channel,
        ));
    let person = Router::new()
        .route("/documents/{id}", get(page))
        .route("/documents/{id}/file", get(file))
        .route("/documents/{id}/start", post(start))
        .route("/documents/{id}/finish", post(finish))
        .route("/documents/{id}/decline", post(decline))
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            crate::ratelimit::per_address,
        ));
    Router::new()
        .merge(agency)
        .merge(person)
        .route("/assets/document.js", get(script))
}

/// A document API call of an agency's back end: its client found from its
/// own access token, with a DPoP proof over `method` and `path` for a bound
/// one (refused as RFC 6750 and RFC 9449 say otherwise), `serve` run for
/// it, and a fresh DPoP nonce with the answer to a DPoP-bound call.
async fn for_agency<F, Fut>(
    state: &AppState,
    headers: &HeaderMap,
    method: &'static str,
    path: &str,
    serve: F,
) -> Response
where
    F: FnOnce(tuaton_oidc::ClientConfig) -> Fut,
    Fut: std::future::Future<Output = Result<Response, ApiError>>,
{
    let (scheme, token, dpop) = match presented_resource(state, headers, method, path) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let found = state
        .idm()
        .client_caller(&issuer(state), token, scheme, dpop.as_ref(), state.now())
        .await;
    let client = match found {
        Ok(c) => c,
        Err(e) => {
            return resource_token_refusal(state, scheme, e, |e| ApiError::from(e).into_response())
                .await;
        }
    };
    let answer = serve(client)
        .await
        .unwrap_or_else(IntoResponse::into_response);
    with_nonce(state, answer, dpop.is_some()).await
}

/// What the agency names beside the PDF.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PostQuery {
    name: String,
    redirect_uri: String,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    company: Option<String>,
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

async fn post_document(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<PostQuery>, axum::extract::rejection::QueryRejection>,
    body: Bytes,
) -> Response {
    let state = &state;
    let pdf = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/pdf"));
    for_agency(state, &headers, "POST", "/agency/v1/documents", |client| async move {
        let Query(q) = query.map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                tuaton_core::ErrorCode::InvalidField,
                "The query names the document: name and redirect_uri, and optionally state, and subject or company.",
            )
        })?;
        let company = q
            .company
            .as_deref()
            .map(tuaton_core::JuristicId::parse)
            .transpose()
            .map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    tuaton_core::ErrorCode::InvalidField,
                    "company: a thirteen-digit juristic id with a valid check digit.",
                )
            })?;
        if !pdf {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                tuaton_core::ErrorCode::InvalidDocuments,
                "Send the PDF itself as the body, with Content-Type: application/pdf.",
            ));
        }
        let posted = state
            .idm()
            .post_document(
                &client,
                Upload {
                    name: q.name,
                    bytes: body.to_vec(),
                    subject: q.subject,
                    redirect_uri: q.redirect_uri,
                    state: q.state,
                    company,
                },
                state.now(),
            )
            .await?;
        let page = format!(
            "{}/documents/{}",
            state.settings().public_url.as_str().trim_end_matches('/'),
            posted.id
        );
        Ok((
            StatusCode::CREATED,
            [(header::CACHE_CONTROL, "no-store")],
            Json(json!({
                "document": posted.id,
                "sign_url": page,
                "sha256": posted.sha256,
                "pages": posted.pages,
                "expires_at": rfc3339(posted.expires_at),
            })),
        )
            .into_response())
    })
    .await
}

async fn agency_document(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let path = format!("/agency/v1/documents/{id}");
    let (state, id, at) = (&state, &id, &path);
    for_agency(state, &headers, "GET", &path, |client| async move {
        let d = state
            .idm()
            .agency_document(&client, id, Files::Skip, state.now())
            .await?;
        let signatures: Vec<serde_json::Value> = d
            .signatures
            .iter()
            .map(|(sub, at)| json!({ "sub": sub, "signed_at": rfc3339(*at) }))
            .collect();
        let mut body = json!({
            "document": id, "state": d.state.as_str(), "name": d.name,
            "sha256": d.sha256, "expires_at": rfc3339(d.expires_at),
            "signatures": signatures,
        });
        if let Some(company) = d.company {
            body["company"] = json!({ "juristic_id": company });
        }
        if let Some(sub) = d.signer {
            body["signer"] = json!({ "sub": sub });
            body["signed_url"] = json!(format!("{at}/signed.pdf"));
        }
        Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
    })
    .await
}

async fn signed_pdf(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let path = format!("/agency/v1/documents/{id}/signed.pdf");
    let (state, id) = (&state, &id);
    for_agency(state, &headers, "GET", &path, |client| async move {
        let d = state
            .idm()
            .agency_document(&client, id, Files::Read, state.now())
            .await?;
        match d.signed {
            Some(pdf) => Ok((
                [
                    (header::CONTENT_TYPE, "application/pdf"),
                    (header::CACHE_CONTROL, "no-store"),
                ],
                pdf,
            )
                .into_response()),
            None => Err(ApiError::new(
                StatusCode::CONFLICT,
                tuaton_core::ErrorCode::UnknownDocument,
                format!("The document is {}, not signed.", d.state.as_str()),
            )),
        }
    })
    .await
}

/// The signing page: the agency, the file's name, size, pages and
/// SHA-256, and the buttons.
async fn page(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let shown = match state.idm().shown_document(&id, state.now()).await {
        Ok(s) => s,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let company = match &shown.company {
        None => String::new(),
        Some((jid, name)) => fill(
            COMPANY,
            &[
                ("company", &escape(name)),
                ("juristic_id", &escape(jid)),
                ("signatures", &shown.signatures.to_string()),
            ],
        ),
    };
    let body = fill(
        PAGE,
        &[
            ("client", &escape(&shown.client_name)),
            ("for_company", &company),
            ("name", &escape(&shown.name)),
            ("size", &shown.size.to_string()),
            ("pages", &shown.pages.to_string()),
            ("sha256", &escape(&shown.sha256)),
            ("document", &escape(&id)),
            ("named", if shown.named { "true" } else { "false" }),
            ("expires", &escape(&rfc3339(shown.expires_at))),
        ],
    );
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

/// The file to sign, for the person logged in to read first: a download
/// (`attachment`), in a sandbox with nothing allowed should a browser show
/// it anyway, so a PDF an agency made runs nothing on Tuaton's origin.
async fn file(
    State(state): State<AppState>,
    session: SessionAuth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (name, bytes) = state
        .idm()
        .document_file(&session, &id, state.now())
        .await?;
    let disposition = format!(
        "attachment; filename=\"document.pdf\"; filename*=UTF-8''{}",
        percent_encoding::utf8_percent_encode(&name, percent_encoding::NON_ALPHANUMERIC)
    );
    let disposition = HeaderValue::from_str(&disposition).map_err(ApiError::internal)?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/pdf"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("sandbox; default-src 'none'"),
            ),
        ],
        bytes,
    )
        .into_response())
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
}

async fn start(
    State(state): State<AppState>,
    session: SessionAuth,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let asked = state
        .idm()
        .start_document_signing(&session, &id, state.now())
        .await?;
    let options = serde_json::to_value(&asked.options).map_err(ApiError::internal)?;
    let shown = asked.documents.first();
    Ok(Json(json!({
        "request_id": asked.request_id,
        "public_key": options.get("publicKey").cloned().unwrap_or(options),
        "sha256": shown.map(|d| d.sha256.clone()),
        "pages": shown.and_then(|d| d.pdf.as_ref().map(|p| p.pages)),
    })))
}

/// The assertion over the signing challenge.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FinishRequest {
    credential: PublicKeyCredential,
}

async fn finish(
    State(state): State<AppState>,
    session: SessionAuth,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<FinishRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let back = state
        .idm()
        .finish_document_signing(&session, &id, &req.credential, state.now())
        .await?;
    Ok(Json(json!({ "redirect": back.as_str() })))
}

/// Declining a person's own document posted for anyone needs no login, as
/// declining a login does; one posted for one person needs that person
/// logged in, and a company's a director, with the session's CSRF token (a
/// call without it is no one's). The JSON body (`{}`) makes a
/// browser ask first before another site's page sends it.
async fn decline(
    State(state): State<AppState>,
    session: Result<SessionAuth, ApiError>,
    Path(id): Path<String>,
    ApiJson(_): ApiJson<serde_json::Value>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let session = session.ok();
    let back = state
        .idm()
        .decline_document(session.as_deref(), &id, state.now())
        .await?;
    Ok(Json(json!({ "redirect": back.as_str() })))
}
