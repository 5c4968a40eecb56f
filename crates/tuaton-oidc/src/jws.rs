//! JWS compact serialisation (RFC 7515 §7.1), signed through the key
//! backend: the private key never leaves it, so an HSM can sign ID tokens.
//! ECDSA signatures are the fixed-size `r ‖ s` JWS requires (RFC 7518 §3.4).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use tuaton_core::SignatureAlgorithm;
use tuaton_keys::{KeyBackend, KeyError, KeyRef, SignatureFormat};

/// The key a token is signed with: where it lives and how it is named.
#[derive(Debug, Clone)]
pub struct SigningKey {
    /// The backend's reference.
    pub key_ref: KeyRef,
    /// The `kid` relying parties find it by in the JWK Set.
    pub kid: String,
    /// The algorithm.
    pub alg: SignatureAlgorithm,
}

/// `claims` as a compact JWS with header `{alg, kid, typ}`.
pub fn sign_compact(
    backend: &dyn KeyBackend,
    key: &SigningKey,
    typ: &str,
    claims: &serde_json::Value,
) -> Result<String, KeyError> {
    let header = json!({ "alg": key.alg.jose_name(), "kid": key.kid, "typ": typ });
    let b64 = |v: &serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string().as_bytes());
    let signing_input = format!("{}.{}", b64(&header), b64(claims));
    let sig = backend.sign(
        &key.key_ref,
        key.alg,
        SignatureFormat::Raw,
        signing_input.as_bytes(),
    )?;
    Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)))
}
