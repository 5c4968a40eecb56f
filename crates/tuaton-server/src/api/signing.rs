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
use tuaton_idm::{DocumentDigest, IdmError, PublicKeyCredential, Signed};
use utoipa::ToSchema;

use crate::error::ApiJson;
use crate::session::SessionAuth;
use crate::{ApiError, AppState};

/// How many signing requests (which may carry PDFs) are served at once.
const DOCUMENT_REQUESTS: usize = 8;

pub(super) fn routes() -> Router<AppState> {
    // The body is bounded by TUATON_MAX_DOCUMENT_BYTES for these routes
    // (crate::app), not by the JSON extractor's own default; and few are
    // served at once, so large bodies cannot pile up in memory (the rest
    // wait, their bodies unread).
    Router::new()
        .route("/signatures", post(start))
        .route("/signatures/{id}/finish", post(finish))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(tower::limit::ConcurrencyLimitLayer::new(DOCUMENT_REQUESTS))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(start, finish),
    components(schemas(
        Document,
        PdfInput,
        JsonInput,
        XmlInput,
        VisibleInput,
        JwsOutput,
        ShownDocument,
        StartRequest,
        StartResponse,
        FinishRequest,
        Signature,
        FinishResponse
    ))
)]
pub(crate) struct ApiDocSigning;

/// A document to sign, as the device describes it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Document {
    /// The file's name as the person sees it.
    name: String,
    /// Its size in bytes.
    size: u64,
    /// Its SHA-256, 64 hex digits.
    sha256: String,
    /// For a PDF to be signed in the file (PAdES B-T): its bytes. Without
    /// it (or `json`) the document gets a detached CAdES B-T signature
    /// over its digest.
    #[serde(default)]
    pdf: Option<PdfInput>,
    /// For a JSON document to be signed with a JWS: its bytes.
    #[serde(default)]
    json: Option<JsonInput>,
    /// For an XML document to be signed with an enveloped XAdES B-T
    /// signature (an e-Tax Invoice, say): its bytes.
    #[serde(default)]
    xml: Option<XmlInput>,
}

/// An XML document sent to be signed with XAdES.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct XmlInput {
    /// The document, base64.
    content: String,
}

/// A JSON document sent to be signed with a JWS.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct JsonInput {
    /// The document, base64.
    content: String,
    /// A detached JWS over the document's own bytes (RFC 7797: `b64`
    /// false); otherwise the JWS carries the document.
    #[serde(default)]
    detached: bool,
}

/// A PDF sent to be signed in the file.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PdfInput {
    /// The file, base64.
    content: String,
    /// A visible signature; invisible without one.
    #[serde(default)]
    visible: Option<VisibleInput>,
}

/// Where a visible signature is drawn.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct VisibleInput {
    /// The page, 1 for the first.
    page: u32,
    /// `[x1, y1, x2, y2]` in points from the page's lower left.
    rect: [i32; 4],
}

/// A document as the request will sign it.
#[derive(Serialize, ToSchema)]
pub(crate) struct ShownDocument {
    /// The file's name.
    name: String,
    /// Its size in bytes.
    size: u64,
    /// Its SHA-256, hex.
    sha256: String,
    /// `CAdES-B-T` (detached), `PAdES-B-T` (in the PDF), `JWS` or
    /// `XAdES-B-T` (in the XML).
    format: &'static str,
    /// A PDF's pages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pages: Option<u32>,
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
    documents: Vec<ShownDocument>,
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
    /// The request's documents sent whole (PDFs and JSON) again, base64,
    /// in order, each the file confirmed: Tuaton keeps no document between
    /// the two steps.
    #[serde(default)]
    contents: Vec<String>,
}

/// One document's signature.
#[derive(Serialize, ToSchema)]
pub(crate) struct Signature {
    /// The document's name.
    name: String,
    /// Its SHA-256, hex.
    sha256: String,
    /// `CAdES-B-T` or `PAdES-B-T`.
    format: &'static str,
    /// The detached signature (`.p7s`), DER in base64 (CAdES).
    #[serde(skip_serializing_if = "Option::is_none")]
    signature: Option<String>,
    /// The signed PDF, base64 (PAdES).
    #[serde(skip_serializing_if = "Option::is_none")]
    pdf: Option<String>,
    /// The JWS.
    #[serde(skip_serializing_if = "Option::is_none")]
    jws: Option<JwsOutput>,
    /// The signed XML document, base64 (XAdES).
    #[serde(skip_serializing_if = "Option::is_none")]
    xml: Option<String>,
}

/// A JWS in both serialisations.
#[derive(Serialize, ToSchema)]
pub(crate) struct JwsOutput {
    /// `header.payload.signature` (the payload empty when detached);
    /// absent when an unencoded attached payload holds a `.`.
    #[serde(skip_serializing_if = "Option::is_none")]
    compact: Option<String>,
    /// The flattened JSON serialisation.
    #[schema(value_type = Object)]
    json: serde_json::Value,
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

fn base64_field(i: usize, value: &str) -> Result<Vec<u8>, IdmError> {
    STANDARD.decode(value).map_err(|_| {
        IdmError::invalid(
            ErrorCode::InvalidDocuments,
            format!("document {i}: its content is not base64"),
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
            let pdf = d
                .pdf
                .as_ref()
                .map(|p| {
                    Ok::<_, IdmError>(tuaton_idm::PdfDocument {
                        bytes: base64_field(i, &p.content)?,
                        visible: p.visible.as_ref().map(|v| (v.page, v.rect)),
                    })
                })
                .transpose()?;
            let json = d
                .json
                .as_ref()
                .map(|j| {
                    Ok::<_, IdmError>(tuaton_idm::JsonDocument {
                        bytes: base64_field(i, &j.content)?,
                        detached: j.detached,
                    })
                })
                .transpose()?;
            let xml = d
                .xml
                .as_ref()
                .map(|x| base64_field(i, &x.content))
                .transpose()?;
            Ok(DocumentDigest {
                name: d.name.clone(),
                size: d.size,
                sha256: digest(i, &d.sha256)?,
                pdf,
                json,
                xml,
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
            .map(|d| ShownDocument {
                format: tuaton_idm::format_of(&d),
                pages: d.pdf.as_ref().map(|p| p.pages),
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
    let contents = req
        .contents
        .iter()
        .enumerate()
        .map(|(i, p)| base64_field(i, p))
        .collect::<Result<Vec<_>, _>>()?;
    let signed = state
        .idm()
        .finish_signing(&session, &id, &req.credential, contents, state.now())
        .await?;
    Ok(Json(FinishResponse {
        signatures: signed
            .into_iter()
            .map(|s| {
                let mut out = Signature {
                    name: s.name,
                    sha256: s.sha256,
                    format: s.signed.format(),
                    signature: None,
                    pdf: None,
                    jws: None,
                    xml: None,
                };
                match s.signed {
                    Signed::Detached(p7s) => out.signature = Some(STANDARD.encode(p7s)),
                    Signed::Pdf(pdf) => out.pdf = Some(STANDARD.encode(pdf)),
                    Signed::Xml(xml) => out.xml = Some(STANDARD.encode(xml)),
                    Signed::Jws { compact, json } => out.jws = Some(JwsOutput { compact, json }),
                }
                out
            })
            .collect(),
    }))
}
