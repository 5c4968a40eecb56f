//! The Cloud Signature Consortium API v2.0 under `/csc/v2/`: `info`,
//! `credentials/list`, `credentials/info`, `credentials/authorize` and
//! `signatures/signHash`, each a JSON POST with an access token from
//! Tuaton's OpenID Provider (bearer or DPoP-bound). Requests are read with
//! the v2.0 field names and v1.0.4's beside them (`hash` for `hashes`,
//! `hashAlgo` for `hashAlgorithmOID`), answers carry both where they
//! differ (`scal` and `SCAL`, `auth.mode` and `authMode`). Refusals are the
//! CSC error object, `{"error", "error_description"}`; the flows are
//! `tuaton_idm::csc`'s.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};
use tuaton_idm::csc::{
    Credential, DocumentFormat, DocumentToSign, EC_PUBLIC_KEY_OID, ECDSA_SHA256_OID, P256_OID,
    SignatureCaller,
};
use tuaton_idm::{IdmError, ResourceCaller, Signed};
use tuaton_oidc::credential::{MAX_HASHES, SERVICE, SHA256_OID, decode_hash};

use crate::app::AppState;
use crate::oidc::{issuer, presented_resource, resource_token_refusal, with_nonce};

/// The CSC API version served.
const SPECS: &str = "2.0.0.2";
/// The methods served, as `info` lists them.
const METHODS: [&str; 5] = [
    "credentials/list",
    "credentials/info",
    "credentials/authorize",
    "signatures/signHash",
    "signatures/signDoc",
];

/// How many signDoc calls (which carry documents) are served at once; the
/// rest wait, their bodies unread.
const SIGN_DOC_CALLS: usize = 4;

/// The routes; every call signs or reads for an agency's back end, so they
/// count against the per-address budget back ends have.
pub(crate) fn routes(state: AppState) -> Router<AppState> {
    // Documents: bounded by TUATON_MAX_DOCUMENT_BYTES (crate::app), and
    // few read at once.
    let documents = Router::new()
        .route("/csc/v2/signatures/signDoc", post(sign_doc))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(tower::limit::ConcurrencyLimitLayer::new(SIGN_DOC_CALLS));
    Router::new()
        .merge(documents)
        .route("/csc/v2/info", post(info))
        .route("/csc/v2/credentials/list", post(list))
        .route("/csc/v2/credentials/info", post(credential_info))
        .route("/csc/v2/credentials/authorize", post(authorize))
        .route("/csc/v2/signatures/signHash", post(sign_hash))
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            crate::ratelimit::back_channel,
        ))
}

/// A CSC error object with its status.
struct Refusal {
    status: StatusCode,
    error: &'static str,
    description: String,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (
            self.status,
            [(header::CACHE_CONTROL, "no-store")],
            axum::Json(json!({ "error": self.error, "error_description": self.description })),
        )
            .into_response()
    }
}

fn refusal(status: StatusCode, error: &'static str, description: &str) -> Refusal {
    Refusal {
        status,
        error,
        description: description.to_owned(),
    }
}

fn invalid_request(description: &str) -> Refusal {
    refusal(StatusCode::BAD_REQUEST, "invalid_request", description)
}

fn answer(body: Value) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(body)).into_response()
}

/// A flow's refusal as the CSC API answers it: the caller's mistakes as
/// `invalid_request` with the sentence, the rest as the server's.
fn idm_refusal(e: IdmError) -> Refusal {
    match &e {
        IdmError::UnknownSigningCredential => {
            invalid_request("Invalid parameter credentialID: no credential of this person has it.")
        }
        IdmError::SignatureNotAuthorised => refusal(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The token or SAD authorises no signature now: the person's confirmation was used already, has expired, or was given to another client. Send the person through an authorization request naming the hashes again.",
        ),
        IdmError::HashNotConfirmed { index } => invalid_request(&format!(
            "Invalid parameter hashes: hash {index} is not one the person confirmed."
        )),
        IdmError::Invalid { message, .. } => invalid_request(message),
        IdmError::AccountNotActive | IdmError::IalTooLow { .. } | IdmError::NotProofed => refusal(
            StatusCode::FORBIDDEN,
            "access_denied",
            "The person's account may not sign now (not active, or proofed below the signing level).",
        ),
        IdmError::CertificateRevoked => refusal(
            StatusCode::FORBIDDEN,
            "access_denied",
            "The person's signing certificate is revoked.",
        ),
        IdmError::Passkey(tuaton_passkeys::PasskeyError::ChallengeMismatch) => refusal(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The signing request no longer matches what the person confirmed; nothing was signed. Send the person through an authorization request naming the hashes again.",
        ),
        IdmError::RateLimited => refusal(
            StatusCode::TOO_MANY_REQUESTS,
            "temporarily_unavailable",
            "Too many signing attempts for this person; try again later.",
        ),
        _ => {
            let status = crate::error::ApiError::from(e).into_response().status();
            if status == StatusCode::SERVICE_UNAVAILABLE {
                refusal(
                    status,
                    "temporarily_unavailable",
                    "The service cannot sign now; try again later.",
                )
            } else {
                refusal(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "The service failed; nothing was signed.",
                )
            }
        }
    }
}

/// The caller of a CSC method: the access token checked as userinfo
/// checks it, with a DPoP proof over `path` for a bound token.
async fn caller(
    state: &AppState,
    headers: &HeaderMap,
    path: &str,
) -> Result<(ResourceCaller, bool), Response> {
    let (scheme, token, dpop) = presented_resource(state, headers, "POST", path)?;
    let carried = dpop.is_some();
    match state
        .idm()
        .resource_caller(&issuer(state), token, scheme, dpop.as_ref(), state.now())
        .await
    {
        Ok(c) => Ok((c, carried)),
        Err(e) => {
            Err(resource_token_refusal(state, scheme, e, |e| idm_refusal(e).into_response()).await)
        }
    }
}

/// A CSC method: the caller found from the access token (refused as RFC
/// 6750 and RFC 9449 say when it is not), `serve` run for them, its
/// refusal as the CSC error object, and a fresh DPoP nonce with the answer
/// to a DPoP-bound call.
async fn method<F, Fut>(state: &AppState, headers: &HeaderMap, path: &str, serve: F) -> Response
where
    F: FnOnce(ResourceCaller) -> Fut,
    Fut: std::future::Future<Output = Result<Response, Refusal>>,
{
    let (c, carried) = match caller(state, headers, path).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let resp = serve(c).await.unwrap_or_else(IntoResponse::into_response);
    with_nonce(state, resp, carried).await
}

/// A caller that may use the service methods: a token with the `service`
/// scope, or one that carries a signature authorization.
fn may_list(c: &ResourceCaller) -> Result<(), Refusal> {
    if c.has_scope(SERVICE) || c.claims.signing_request.is_some() {
        Ok(())
    } else {
        Err(refusal(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "The token needs the service scope (or a signature authorization).",
        ))
    }
}

/// The caller of a signature method, naming `credential_id`.
fn signature_caller<'a>(c: &'a ResourceCaller, credential_id: &'a str) -> SignatureCaller<'a> {
    SignatureCaller {
        account: &c.account,
        client_id: &c.claims.client_id,
        signing_request: c.claims.signing_request.as_deref(),
        credential_id,
    }
}

/// The body as JSON of `T`; an empty body is `{}`.
fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Refusal> {
    let bytes = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        bytes
    };
    serde_json::from_slice(bytes).map_err(|e| {
        invalid_request(&format!(
            "The body is not the JSON object this method reads: {e}"
        ))
    })
}

/// `info`: what the service is and does (CSC API v2.0 §11.1).
async fn info(State(state): State<AppState>) -> Response {
    let issuer = issuer(&state);
    answer(json!({
        "specs": SPECS,
        "name": "Tuaton",
        "logo": format!("{issuer}/assets/tuaton.css"),
        "region": "TH",
        "lang": "th-TH",
        "description": "Tuaton remote signing: a person's key in Tuaton's key backend signs the hashes and documents they confirmed with a passkey.",
        "authType": ["oauth2code"],
        "oauth2": issuer,
        "oauth2Issuer": issuer,
        "asynchronousOperationMode": false,
        "methods": METHODS,
        "validationInfo": false,
        "signAlgorithms": { "algos": [ECDSA_SHA256_OID] },
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListRequest {
    #[serde(default)]
    credential_info: bool,
    #[serde(default)]
    certificates: Option<String>,
    #[serde(default)]
    cert_info: bool,
    #[serde(default)]
    only_valid: bool,
}

/// `credentials/list` (CSC API v2.0 §11.4): the person's credential.
async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    bytes: axum::body::Bytes,
) -> Response {
    let state = &state;
    method(
        state,
        &headers,
        "/csc/v2/credentials/list",
        |c| async move {
            may_list(&c)?;
            let asked: ListRequest = body(&bytes)?;
            let chain = certificates_wanted(asked.certificates.as_deref())?;
            let creds = state
                .idm()
                .csc_credentials(&c.account, state.now())
                .await
                .map_err(idm_refusal)?;
            let creds: Vec<Credential> = creds
                .into_iter()
                .filter(|k| !asked.only_valid || k.enabled)
                .collect();
            let mut out = json!({
                "credentialIDs": creds.iter().map(|k| k.id.clone()).collect::<Vec<_>>(),
                "onlyValid": asked.only_valid,
            });
            if asked.credential_info {
                out["credentialInfos"] = creds
                    .iter()
                    .map(|k| {
                        let mut d = describe(k, chain, asked.cert_info);
                        d["credentialID"] = json!(k.id);
                        d
                    })
                    .collect();
            }
            Ok::<_, Refusal>(answer(out))
        },
    )
    .await
}

/// How many certificates an answer carries: `none`, `single` (the
/// default) or `chain`, as the number of the chain's first ones.
fn certificates_wanted(asked: Option<&str>) -> Result<usize, Refusal> {
    match asked.unwrap_or("single") {
        "none" => Ok(0),
        "single" => Ok(1),
        "chain" => Ok(usize::MAX),
        _ => Err(invalid_request(
            "Invalid parameter certificates: none, single or chain.",
        )),
    }
}

/// A credential as `credentials/info` describes it, with `chain` of its
/// certificates and, with `cert_info`, the leaf's names and dates.
fn describe(k: &Credential, chain: usize, cert_info: bool) -> Value {
    let certs: Vec<String> = k
        .chain
        .iter()
        .take(chain)
        .map(|c| STANDARD.encode(c))
        .collect();
    let status = if k.enabled { "valid" } else { "revoked" };
    let mut cert = json!({ "status": status, "certificates": certs });
    if cert_info {
        let time = |t: time::OffsetDateTime| {
            t.format(time::macros::format_description!(
                "[year][month][day][hour][minute][second]Z"
            ))
            .unwrap_or_default()
        };
        cert["issuerDN"] = json!(k.issuer_dn);
        cert["subjectDN"] = json!(k.subject_dn);
        cert["serialNumber"] = json!(k.certificate.serial_hex);
        cert["validFrom"] = json!(time(k.certificate.not_before));
        cert["validTo"] = json!(time(k.certificate.not_after));
    }
    json!({
        "description": "Tuaton signing key (ECDSA P-256) in the key backend",
        "key": {
            "status": if k.enabled { "enabled" } else { "disabled" },
            "algo": [ECDSA_SHA256_OID, EC_PUBLIC_KEY_OID],
            "len": 256,
            "curve": P256_OID,
        },
        "cert": cert,
        "auth": { "mode": "oauth2code" },
        "authMode": "oauth2code",
        "scal": "2",
        "SCAL": "2",
        "multisign": MAX_HASHES,
        "lang": "th-TH",
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InfoRequest {
    #[serde(rename = "credentialID")]
    credential_id: String,
    #[serde(default)]
    certificates: Option<String>,
    #[serde(default)]
    cert_info: bool,
}

/// `credentials/info` (CSC API v2.0 §11.5).
async fn credential_info(
    State(state): State<AppState>,
    headers: HeaderMap,
    bytes: axum::body::Bytes,
) -> Response {
    let state = &state;
    method(
        state,
        &headers,
        "/csc/v2/credentials/info",
        |c| async move {
            may_list(&c)?;
            let asked: InfoRequest = body(&bytes)?;
            let chain = certificates_wanted(asked.certificates.as_deref())?;
            let k = state
                .idm()
                .csc_credential(&c.account, &asked.credential_id, state.now())
                .await
                .map_err(idm_refusal)?;
            Ok::<_, Refusal>(answer(describe(&k, chain, asked.cert_info)))
        },
    )
    .await
}

/// The hashes of a request, under v2.0's name or v1.0.4's, decoded.
fn hashes_of(
    hashes: Option<Vec<String>>,
    hash: Option<Vec<String>>,
) -> Result<Vec<[u8; 32]>, Refusal> {
    let given = match (hashes, hash) {
        (Some(_), Some(_)) => {
            return Err(invalid_request(
                "Send hashes (v2.0) or hash (v1.0.4), not both.",
            ));
        }
        (Some(h), None) | (None, Some(h)) => h,
        (None, None) => Vec::new(),
    };
    if given.len() > MAX_HASHES {
        return Err(invalid_request(&format!(
            "Invalid parameter hashes: at most {MAX_HASHES}."
        )));
    }
    given
        .iter()
        .enumerate()
        .map(|(i, h)| {
            decode_hash(h).ok_or_else(|| {
                invalid_request(&format!(
                    "Invalid parameter hashes: hash {i} is not a base64 SHA-256 value."
                ))
            })
        })
        .collect()
}

/// Refuses an `operationMode` other than `S`: Tuaton signs synchronously.
fn check_synchronous(mode: Option<&str>) -> Result<(), Refusal> {
    if mode.is_some_and(|m| m != "S") {
        return Err(invalid_request(
            "Invalid parameter operationMode: only S (synchronous) is offered.",
        ));
    }
    Ok(())
}

/// Refuses a signature algorithm (the parameter `field`) other than the
/// key's: ecdsa-with-SHA256, or id-ecPublicKey with SHA-256 named apart.
fn check_sign_algorithm(field: &str, algo: &str) -> Result<(), Refusal> {
    if matches!(algo, ECDSA_SHA256_OID | EC_PUBLIC_KEY_OID) {
        return Ok(());
    }
    Err(invalid_request(&format!(
        "Invalid parameter {field}: the key signs {ECDSA_SHA256_OID} (ecdsa-with-SHA256)."
    )))
}

/// Refuses a hash algorithm other than SHA-256, under either name.
fn check_hash_algorithm(v2: Option<&str>, v1: Option<&str>) -> Result<(), Refusal> {
    match v2.or(v1) {
        None | Some(SHA256_OID) => Ok(()),
        Some(_) => Err(invalid_request(&format!(
            "Invalid parameter hashAlgorithmOID: Tuaton signs SHA-256 ({SHA256_OID}) hashes."
        ))),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthorizeRequest {
    #[serde(rename = "credentialID")]
    credential_id: String,
    #[serde(default)]
    num_signatures: Option<u32>,
    #[serde(default)]
    hashes: Option<Vec<String>>,
    #[serde(default)]
    hash: Option<Vec<String>>,
    #[serde(default, rename = "hashAlgorithmOID")]
    hash_algorithm_oid: Option<String>,
    #[serde(default)]
    hash_algo: Option<String>,
    #[serde(default, rename = "PIN")]
    pin: Option<Value>,
    #[serde(default, rename = "OTP")]
    otp: Option<Value>,
    #[serde(default)]
    auth_data: Option<Value>,
}

/// `credentials/authorize` (CSC API v2.0 §11.6): a SAD for the signature
/// authorization the token carries. Tuaton's only authorization mode is
/// `oauth2code`: a PIN, OTP or other authentication data is refused.
async fn authorize(
    State(state): State<AppState>,
    headers: HeaderMap,
    bytes: axum::body::Bytes,
) -> Response {
    let state = &state;
    method(state, &headers, "/csc/v2/credentials/authorize", |c| async move {
        let asked: AuthorizeRequest = body(&bytes)?;
        if asked.pin.is_some() || asked.otp.is_some() || asked.auth_data.is_some() {
            return Err(invalid_request(
                "Tuaton authorises signatures through OAuth 2.0 (authMode oauth2code): the person confirms the hashes with a passkey; no PIN, OTP or authData is read.",
            ));
        }
        check_hash_algorithm(asked.hash_algorithm_oid.as_deref(), asked.hash_algo.as_deref())?;
        let hashes = hashes_of(asked.hashes, asked.hash)?;
        let (sad, expires_in) = state
            .idm()
            .csc_authorize(
                &signature_caller(&c, &asked.credential_id),
                asked.num_signatures,
                &hashes,
                state.now(),
            )
            .await
            .map_err(idm_refusal)?;
        Ok(answer(json!({ "SAD": sad, "expiresIn": expires_in })))
    })
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignHashRequest {
    #[serde(rename = "credentialID")]
    credential_id: String,
    #[serde(default, rename = "SAD")]
    sad: Option<String>,
    #[serde(default)]
    hashes: Option<Vec<String>>,
    #[serde(default)]
    hash: Option<Vec<String>>,
    #[serde(default, rename = "hashAlgorithmOID")]
    hash_algorithm_oid: Option<String>,
    #[serde(default)]
    hash_algo: Option<String>,
    sign_algo: String,
    #[serde(default)]
    operation_mode: Option<String>,
}

/// `signatures/signHash` (CSC API v2.0 §11.9): ECDSA P-256 signatures,
/// DER-encoded, over hashes the person confirmed.
async fn sign_hash(
    State(state): State<AppState>,
    headers: HeaderMap,
    bytes: axum::body::Bytes,
) -> Response {
    let state = &state;
    method(
        state,
        &headers,
        "/csc/v2/signatures/signHash",
        |c| async move {
            let asked: SignHashRequest = body(&bytes)?;
            check_synchronous(asked.operation_mode.as_deref())?;
            check_sign_algorithm("signAlgo", &asked.sign_algo)?;
            check_hash_algorithm(
                asked.hash_algorithm_oid.as_deref(),
                asked.hash_algo.as_deref(),
            )?;
            let hashes = hashes_of(asked.hashes, asked.hash)?;
            if hashes.is_empty() {
                return Err(invalid_request("Missing parameter hashes."));
            }
            let signatures = state
                .idm()
                .csc_sign_hash(
                    &signature_caller(&c, &asked.credential_id),
                    asked.sad.as_deref(),
                    &hashes,
                    state.now(),
                )
                .await
                .map_err(idm_refusal)?;
            let encoded: Vec<String> = signatures.iter().map(|s| STANDARD.encode(s)).collect();
            Ok(answer(json!({ "signatures": encoded })))
        },
    )
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignDocRequest {
    #[serde(default, rename = "credentialID")]
    credential_id: Option<String>,
    #[serde(default, rename = "SAD")]
    sad: Option<String>,
    #[serde(default)]
    documents: Option<Vec<SignDocDocument>>,
    #[serde(default)]
    document_digests: Option<serde_json::Value>,
    #[serde(default)]
    operation_mode: Option<String>,
    #[serde(default)]
    return_validation_info: bool,
}

#[derive(Deserialize)]
struct SignDocDocument {
    document: String,
    signature_format: String,
    #[serde(default)]
    conformance_level: Option<String>,
    #[serde(rename = "signAlgo")]
    sign_algo: String,
    #[serde(default)]
    signed_envelope_property: Option<String>,
}

/// One `documents` entry of signDoc as the service layer signs it: the
/// format (`P` PAdES in the PDF, `C` CAdES detached, `X` XAdES enveloped),
/// at the B-T level (B-B is answered with B-T, which is B-B with a time
/// stamp added).
fn document_to_sign(i: usize, d: SignDocDocument) -> Result<DocumentToSign, Refusal> {
    let envelope = d.signed_envelope_property.as_deref();
    let format = match (d.signature_format.as_str(), envelope) {
        ("P", None | Some("Enveloped")) => DocumentFormat::Pades,
        ("C", None | Some("Detached")) => DocumentFormat::Cades,
        ("X", None | Some("Enveloped")) => DocumentFormat::Xades,
        ("J", _) => {
            return Err(invalid_request(&format!(
                "Invalid parameter documents[{i}].signature_format: JAdES is not offered; Tuaton signs P (PAdES), C (CAdES) and X (XAdES)."
            )));
        }
        ("P" | "C" | "X", Some(_)) => {
            return Err(invalid_request(&format!(
                "Invalid parameter documents[{i}].signed_envelope_property: Tuaton makes PAdES and XAdES Enveloped and CAdES Detached."
            )));
        }
        _ => {
            return Err(invalid_request(&format!(
                "Invalid parameter documents[{i}].signature_format: P, C or X."
            )));
        }
    };
    let level = d.conformance_level.as_deref().map(str::to_ascii_uppercase);
    if !matches!(
        level.as_deref(),
        None | Some("ADES-B-B" | "ADES-B-T" | "ADES-B")
    ) {
        return Err(invalid_request(&format!(
            "Invalid parameter documents[{i}].conformance_level: Tuaton makes AdES-B-T (and answers AdES-B-B with it)."
        )));
    }
    check_sign_algorithm(&format!("documents[{i}].signAlgo"), &d.sign_algo)?;
    let bytes = STANDARD.decode(d.document.as_bytes()).map_err(|_| {
        invalid_request(&format!(
            "Invalid parameter documents[{i}].document: not base64."
        ))
    })?;
    Ok(DocumentToSign { bytes, format })
}

/// `signatures/signDoc` (CSC API v2.0 §11.11): the documents given, each
/// one whose SHA-256 the person confirmed, signed by Tuaton in the format
/// asked; PDFs and XML come back in `DocumentWithSignature`, detached CAdES
/// signatures in `SignatureObject`, each in the order of the documents of
/// its kind.
async fn sign_doc(
    State(state): State<AppState>,
    headers: HeaderMap,
    bytes: axum::body::Bytes,
) -> Response {
    let state = &state;
    method(state, &headers, "/csc/v2/signatures/signDoc", |c| async move {
        let asked: SignDocRequest = body(&bytes)?;
        check_synchronous(asked.operation_mode.as_deref())?;
        if asked.document_digests.is_some() {
            return Err(invalid_request(
                "Invalid parameter documentDigests: signDoc signs the documents given; sign hashes with signatures/signHash.",
            ));
        }
        if asked.return_validation_info {
            return Err(invalid_request(
                "Invalid parameter returnValidationInfo: validation information is not offered (info says so).",
            ));
        }
        let Some(credential_id) = asked.credential_id else {
            return Err(invalid_request("Missing parameter credentialID."));
        };
        let documents = asked
            .documents
            .filter(|d| !d.is_empty())
            .ok_or_else(|| invalid_request("Missing parameter documents."))?
            .into_iter()
            .enumerate()
            .map(|(i, d)| document_to_sign(i, d))
            .collect::<Result<Vec<_>, _>>()?;
        let signed = state
            .idm()
            .csc_sign_doc(
                &signature_caller(&c, &credential_id),
                asked.sad.as_deref(),
                documents,
                state.now(),
            )
            .await
            .map_err(idm_refusal)?;
        let mut with_signature = Vec::new();
        let mut objects = Vec::new();
        for s in signed {
            match s {
                Signed::Pdf(b) | Signed::Xml(b) => with_signature.push(STANDARD.encode(b)),
                Signed::Detached(b) => objects.push(STANDARD.encode(b)),
                Signed::Jws { .. } => {
                    return Err(refusal(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "server_error",
                        "The service failed; nothing was returned.",
                    ));
                }
            }
        }
        let mut out = json!({});
        if !with_signature.is_empty() {
            out["DocumentWithSignature"] = json!(with_signature);
        }
        if !objects.is_empty() {
            out["SignatureObject"] = json!(objects);
        }
        Ok(answer(out))
    })
    .await
}
