//! The OpenAPI 3.1 description served at `/openapi.json`.

use axum::Router;
use axum::routing::get;
use utoipa::OpenApi;

use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Tuaton", description = "Digital identity and e-signature service: JSON API for apps, pages and agencies."),
    paths(crate::health::healthz, crate::health::readyz, crate::health::metrics, crate::wellknown::jwks, crate::pki::time_stamp, crate::pki::ocsp_post, crate::pki::ocsp_get, crate::pki::root_certificate, crate::pki::ca_certificate),
    components(schemas(crate::error::Problem)),
    tags(
        (name = "operations", description = "Health, readiness and metrics"),
        (name = "keys", description = "Public keys for relying parties"),
        (name = "pki", description = "The certificate authority: time-stamping (RFC 3161) and published CA certificates"),
        (name = "enrolment", description = "Enrolment and identity proofing"),
        (name = "passkeys", description = "Passkey registration, login and sessions"),
        (name = "recovery", description = "Account recovery after losing every passkey"),
        (name = "account", description = "The signed-in person's account and PDPA data rights"),
        (name = "consent", description = "PDPA consent records"),
        (name = "companies", description = "Acting for a company"),
        (name = "signing", description = "Signing documents under sole control: digests in, a passkey confirmation, CAdES signatures out"),
        (name = "admin", description = "Client administration (the client_admin role, at AAL3)")
    )
)]
pub(crate) struct ApiDoc;

/// The full document, merged from every area's paths.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(<crate::api::ApiDocEnrolment as OpenApi>::openapi());
    doc.merge(<crate::api::ApiDocPasskeys as OpenApi>::openapi());
    doc.merge(<crate::api::ApiDocRecovery as OpenApi>::openapi());
    doc.merge(<crate::api::ApiDocAccounts as OpenApi>::openapi());
    doc.merge(<crate::api::ApiDocAdmin as OpenApi>::openapi());
    doc.merge(<crate::api::ApiDocSigning as OpenApi>::openapi());
    doc
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/openapi.json", get(|| async { axum::Json(document()) }))
}
