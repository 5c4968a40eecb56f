//! The provider's metadata (OpenID Connect Discovery 1.0 §3, RFC 8414):
//! every endpoint, and `*_supported` lists that say exactly what Tuaton does.

use serde_json::{Value, json};

/// The metadata document for `issuer` (no trailing slash), with the
/// algorithms of the published id-token keys.
pub fn metadata(issuer: &str, id_token_algs: &[&str]) -> Value {
    let at = |path: &str| format!("{issuer}{path}");
    let acr_values: Vec<&str> = tuaton_core::Ial::ALL
        .iter()
        .map(|l| l.acr())
        .chain(tuaton_core::Aal::ALL.iter().map(|l| l.acr()))
        .collect();
    let claims: Vec<&str> = [
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "acr",
        "amr",
        "sid",
        "ial",
    ]
    .into_iter()
    .chain(crate::claims::RELEASED.iter().copied())
    .collect();
    json!({
        "issuer": issuer,
        "authorization_endpoint": at("/authorize"),
        "token_endpoint": at("/token"),
        "userinfo_endpoint": at("/userinfo"),
        "jwks_uri": at("/.well-known/jwks.json"),
        "pushed_authorization_request_endpoint": at("/par"),
        "end_session_endpoint": at("/logout"),
        "frontchannel_logout_supported": false,
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "require_pushed_authorization_requests": false,
        "revocation_endpoint": at("/revoke"),
        "introspection_endpoint": at("/introspect"),
        "scopes_supported": crate::client::SUPPORTED_SCOPES,
        "authorization_details_types_supported": [crate::credential::CREDENTIAL],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["pairwise", "public"],
        "id_token_signing_alg_values_supported": id_token_algs,
        "userinfo_signing_alg_values_supported": [],
        "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic", "none"],
        "token_endpoint_auth_signing_alg_values_supported": ["ES256", "PS256", "RS256"],
        "revocation_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic", "none"],
        "introspection_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic"],
        "code_challenge_methods_supported": ["S256"],
        "dpop_signing_alg_values_supported": crate::dpop::ALGORITHMS,
        "claims_supported": claims,
        "acr_values_supported": acr_values,
        "claims_parameter_supported": true,
        "request_parameter_supported": true,
        "request_object_signing_alg_values_supported": ["ES256", "PS256", "RS256"],
        "request_uri_parameter_supported": true,
        "require_request_uri_registration": true,
        "authorization_response_iss_parameter_supported": true,
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "ui_locales_supported": ["th", "en"],
    })
}
