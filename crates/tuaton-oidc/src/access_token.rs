//! Access tokens as JWTs (RFC 9068), signed through the key backend like
//! ID tokens, and checked when they come back (the userinfo endpoint).
//!
//! A token names its grant in `jti` (`GRANT.RANDOM`), so a revoked grant
//! stops every token it issued even before they expire; the caller looks the
//! grant up after [`verify`] accepts the signature and the claims.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::OAuthError;

/// The `typ` header of an access token (RFC 9068 §2.1).
pub const TYP: &str = "at+jwt";

/// The claims of an access token (RFC 9068 §2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    /// Tuaton's issuer.
    pub iss: String,
    /// The person, as this client sees them.
    pub sub: String,
    /// The resource: Tuaton's issuer (its userinfo endpoint).
    pub aud: String,
    /// The client it was issued to.
    pub client_id: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// `GRANT.RANDOM`.
    pub jti: String,
    /// The scopes granted, space-separated.
    pub scope: String,
    /// When the person authenticated; none for a client acting for itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// The assurance reached; none for a client acting for itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// How they authenticated (RFC 8176); empty for a client acting for itself.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// The account's identity level (`urn:tuaton:ial:…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ial: Option<String>,
    /// The key the token is bound to (RFC 9449 §6.1), for a DPoP token:
    /// it is accepted only beside a proof made with that key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<crate::dpop::Confirmation>,
    /// The confirmed signing request whose hashes the token signs
    /// (Tuaton's claim), in the first access token of its code only. The
    /// hashes and labels stay in the store: the token response carries
    /// them as `authorization_details` (RFC 9396 §7), the token only names
    /// the request, so it stays small whatever was confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_request: Option<String>,
}

impl AccessTokenClaims {
    /// The grant the token was issued from.
    pub fn grant_id(&self) -> &str {
        self.jti.split_once('.').map_or("", |(g, _)| g)
    }
}

/// Why a bearer token is refused: always `invalid_token` (RFC 6750 §3.1),
/// with a sentence for the client's developer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BearerError(pub &'static str);

impl BearerError {
    /// The code.
    pub fn error(&self) -> OAuthError {
        OAuthError::InvalidToken
    }
}

/// Checks `token` against Tuaton's published keys `jwks`: the signature,
/// `typ`, the issuer and the expiry at `now`.
pub fn verify(
    token: &str,
    jwks: &serde_json::Value,
    issuer: &str,
    now: OffsetDateTime,
) -> Result<AccessTokenClaims, BearerError> {
    let set: JwkSet = serde_json::from_value(jwks.clone())
        .map_err(|_| BearerError("the signing keys cannot be read"))?;
    let header = jsonwebtoken::decode_header(token).map_err(|_| BearerError("not a JWT"))?;
    if header.typ.as_deref() != Some(TYP) {
        return Err(BearerError("not an access token (typ at+jwt)"));
    }
    let jwk = header
        .kid
        .as_deref()
        .and_then(|kid| set.find(kid))
        .ok_or(BearerError("signed with a key Tuaton does not publish"))?;
    let allowed = [Algorithm::ES256, Algorithm::PS256, Algorithm::RS256];
    if !allowed.contains(&header.alg) {
        return Err(BearerError("signed with an algorithm Tuaton does not use"));
    }
    let key =
        DecodingKey::from_jwk(jwk).map_err(|_| BearerError("the signing key cannot be read"))?;
    let mut validation = Validation::new(header.alg);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<AccessTokenClaims>(token, &key, &validation)
        .map_err(|_| BearerError("the signature or the claims do not verify"))?
        .claims;
    if claims.iss != issuer || claims.aud != issuer {
        return Err(BearerError("issued for another server"));
    }
    if claims.exp <= now.unix_timestamp() {
        return Err(BearerError("expired"));
    }
    Ok(claims)
}
