//! The ID token (OpenID Connect Core 1.0 §2) and its lifetime.

use serde::Serialize;
use time::OffsetDateTime;

/// The claims of an ID token, as OpenID Connect Core 1.0 §2 names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdTokenClaims {
    /// The issuer (Tuaton's public URL).
    pub iss: String,
    /// The subject as this client sees it ([`crate::subject`]).
    pub sub: String,
    /// The client.
    pub aud: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issue time.
    pub iat: i64,
    /// When the person authenticated.
    pub auth_time: i64,
    /// The request's nonce, echoed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The assurance reached (never the one asked for).
    pub acr: String,
    /// How the person authenticated (RFC 8176).
    pub amr: Vec<String>,
    /// The identity level the account is proofed at (`urn:tuaton:ial:…`,
    /// docs/assurance.md): `acr` carries the authenticator level, and an
    /// agency that asked for an identity level checks it here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ial: Option<String>,
    /// The session with this client (its grant): what logout names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The company the person acts for in this session (the `business`
    /// scope), beside the person's own `sub`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub company: Option<crate::claims::CompanyClaim>,
}

impl IdTokenClaims {
    /// Claims issued at `now`, valid for `lifetime`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        issuer: &str,
        subject: String,
        client_id: &str,
        now: OffsetDateTime,
        lifetime: time::Duration,
        auth_time: OffsetDateTime,
        nonce: Option<String>,
        acr: String,
        amr: Vec<String>,
    ) -> Self {
        Self {
            iss: issuer.to_owned(),
            sub: subject,
            aud: client_id.to_owned(),
            exp: (now + lifetime).unix_timestamp(),
            iat: now.unix_timestamp(),
            auth_time: auth_time.unix_timestamp(),
            nonce,
            acr,
            amr,
            ial: None,
            sid: None,
            company: None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::jws::{SigningKey, sign_compact};
    use tuaton_core::{KeySpec, SignatureAlgorithm};
    use tuaton_keys::{KeyBackend, MasterKey, SoftwareBackend};

    /// An ID token signed through the backend verifies with an independent
    /// JOSE library (jsonwebtoken) holding only the published JWK.
    #[test]
    fn an_independent_jose_library_verifies_the_id_token() {
        let dir = tempfile::tempdir().unwrap();
        let backend = SoftwareBackend::open(dir.path(), MasterKey::from_bytes([3; 32])).unwrap();
        for (spec, alg, jwt_alg) in [
            (
                KeySpec::EcP256,
                SignatureAlgorithm::Es256,
                jsonwebtoken::Algorithm::ES256,
            ),
            (
                KeySpec::Rsa2048,
                SignatureAlgorithm::Ps256,
                jsonwebtoken::Algorithm::PS256,
            ),
            (
                KeySpec::Rsa2048,
                SignatureAlgorithm::Rs256,
                jsonwebtoken::Algorithm::RS256,
            ),
        ] {
            let key_ref = backend.generate(spec, "id-token test").unwrap();
            let jwk = backend.public_key(&key_ref).unwrap().to_jwk("kid-1");
            let key = SigningKey {
                key_ref,
                kid: "kid-1".into(),
                alg,
            };
            let now = OffsetDateTime::now_utc();
            let claims = IdTokenClaims::new(
                "https://id.example.go.th",
                "pairwise-sub".into(),
                "revenue-efiling",
                now,
                time::Duration::minutes(5),
                now,
                Some("n-456".into()),
                "urn:th:etda:ial2.1:aal2.2".into(),
                vec!["hwk".into(), "user".into()],
            );
            let token = sign_compact(
                &backend,
                &key,
                "JWT",
                &serde_json::to_value(&claims).unwrap(),
            )
            .unwrap();
            let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk).unwrap();
            let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
            let mut validation = jsonwebtoken::Validation::new(jwt_alg);
            validation.set_audience(&["revenue-efiling"]);
            validation.set_issuer(&["https://id.example.go.th"]);
            let data =
                jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation).unwrap();
            assert_eq!(data.header.kid.as_deref(), Some("kid-1"));
            assert_eq!(data.claims["nonce"], "n-456");
            assert_eq!(data.claims["sub"], "pairwise-sub");
            // A token altered in transit does not verify.
            let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
            parts[1] = parts[1].replace('A', "B");
            let forged = parts.join(".");
            assert!(
                jsonwebtoken::decode::<serde_json::Value>(&forged, &decoding, &validation).is_err()
            );
        }
    }
}
