//! Signing documents under sole control: the person's device sends the
//! documents' names, sizes and SHA-256 digests (the documents stay with
//! it), shows them, and confirms with a passkey; the answer is one CAdES
//! B-T detached signature per document (docs/signing.md).

use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use tuaton_core::ErrorCode;
use tuaton_idm::{DocumentDigest, IdmError, PublicKeyCredential};
use utoipa::ToSchema;

use crate::error::ApiJson;
use crate::session::SessionAuth;
use crate::{ApiError, AppState};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/signatures", post(start))
        .route("/signatures/{id}/finish", post(finish))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(start, finish),
    components(schemas(
        Document,
        StartRequest,
        StartResponse,
        FinishRequest,
        Signature,
        FinishResponse
    ))
)]
pub(crate) struct ApiDocSigning;

/// A document to sign, as the device describes it.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Document {
    /// The file's name as the person sees it.
    name: String,
    /// Its size in bytes.
    size: u64,
    /// Its SHA-256, 64 hex digits.
    sha256: String,
}

/// Ask to sign documents (1 to 100).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StartRequest {
    documents: Vec<Document>,
}

/// A signing request begun: show `documents`, then pass `public_key` to
/// `navigator.credentials.get`; its challenge commits to exactly these
/// documents, this request and this certificate.
#[derive(Serialize, ToSchema)]
pub(crate) struct StartResponse {
    /// The request's id, for finish.
    request_id: String,
    /// The documents, in the order they are signed.
    documents: Vec<Document>,
    /// The signer certificate the signatures carry, DER in base64.
    certificate: String,
    /// WebAuthn request options.
    #[schema(value_type = Object)]
    public_key: serde_json::Value,
    /// RFC 3339; after this the request is not signed.
    expires_at: String,
}

/// Confirm a signing request.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FinishRequest {
    /// The `PublicKeyCredential` from `navigator.credentials.get`, JSON-encoded.
    #[schema(value_type = Object)]
    credential: PublicKeyCredential,
}

/// One document's signature.
#[derive(Serialize, ToSchema)]
pub(crate) struct Signature {
    /// The document's name.
    name: String,
    /// Its SHA-256, hex.
    sha256: String,
    /// `CAdES-B-T`.
    format: &'static str,
    /// The detached signature (`.p7s`), DER in base64.
    signature: String,
}

/// The signed request.
#[derive(Serialize, ToSchema)]
pub(crate) struct FinishResponse {
    /// One per document, in order.
    signatures: Vec<Signature>,
}

fn digest(i: usize, hex_digest: &str) -> Result<[u8; 32], IdmError> {
    hex::decode(hex_digest)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| {
            IdmError::invalid(
                ErrorCode::InvalidDocuments,
                format!("documents[{i}].sha256: 64 hex digits"),
            )
        })
}

/// Begins a signing request for the signed-in person.
#[utoipa::path(post, path = "/api/v1/signatures", tag = "signing", request_body = StartRequest, responses(
    (status = 200, body = StartResponse),
    (status = 400, description = "invalid_documents", body = crate::error::Problem),
    (status = 403, description = "not_proofed, ial_too_low, account_not_active", body = crate::error::Problem),
    (status = 503, description = "No CA is set up (keys_unavailable)", body = crate::error::Problem)))]
async fn start(
    State(state): State<AppState>,
    session: SessionAuth,
    ApiJson(req): ApiJson<StartRequest>,
) -> Result<Json<StartResponse>, ApiError> {
    let documents = req
        .documents
        .iter()
        .enumerate()
        .map(|(i, d)| {
            Ok(DocumentDigest {
                name: d.name.clone(),
                size: d.size,
                sha256: digest(i, &d.sha256)?,
            })
        })
        .collect::<Result<Vec<_>, IdmError>>()?;
    let asked = state
        .idm()
        .start_signing(&session, &documents, state.now())
        .await?;
    let options = serde_json::to_value(&asked.options).map_err(ApiError::internal)?;
    Ok(Json(StartResponse {
        request_id: asked.request_id,
        documents: asked
            .documents
            .into_iter()
            .map(|d| Document {
                name: d.name,
                size: d.size,
                sha256: d.sha256,
            })
            .collect(),
        certificate: STANDARD.encode(&asked.certificate),
        public_key: options.get("publicKey").cloned().unwrap_or(options),
        expires_at: asked
            .expires_at
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(ApiError::internal)?,
    }))
}

/// Confirms a signing request with the passkey's assertion; answers the signatures.
#[utoipa::path(post, path = "/api/v1/signatures/{id}/finish", tag = "signing", request_body = FinishRequest,
    params(("id" = String, Path, description = "The request's id")),
    responses(
        (status = 200, body = FinishResponse),
        (status = 400, description = "challenge_mismatch: the assertion is not over this request", body = crate::error::Problem),
        (status = 404, description = "unknown_signing_request, unknown_ceremony", body = crate::error::Problem)))]
async fn finish(
    State(state): State<AppState>,
    session: SessionAuth,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<FinishRequest>,
) -> Result<Json<FinishResponse>, ApiError> {
    let signed = state
        .idm()
        .finish_signing(&session, &id, &req.credential, state.now())
        .await?;
    Ok(Json(FinishResponse {
        signatures: signed
            .into_iter()
            .map(|s| Signature {
                name: s.name,
                sha256: s.sha256,
                format: "CAdES-B-T",
                signature: STANDARD.encode(&s.signature),
            })
            .collect(),
    }))
}
