//! Client authentication with a signed JWT, `private_key_jwt` (RFC 7523
//! §2.2 and §3, OpenID Connect Core 1.0 §9).
//!
//! The client signs a short-lived JWT with its own key; Tuaton holds only
//! the public half (the client's JWK Set). Rules, each a MUST of RFC 7523
//! §3 or a FAPI 2.0 Security Profile requirement:
//! - `iss` and `sub` are the `client_id`;
//! - `aud` is Tuaton's issuer, as a single string: the audience-injection
//!   attack on `private_key_jwt` (OpenID Foundation advisory, 2025; the
//!   revision of RFC 7523 that followed) works through assertions whose
//!   audience is a token endpoint or a list, so only the issuer is accepted;
//! - `exp` is present and not past, and at most [`MAX_LIFETIME`] ahead, so
//!   a captured assertion is soon worthless;
//! - `nbf` and `iat`, when present, are not in the future;
//! - `jti` is present; the caller records it and refuses a second use
//!   until `exp` (the replay cache lives in the store);
//! - the algorithm is the key's: ES256 for a P-256 key, PS256 or RS256
//!   for an RSA key. `none` and every HMAC algorithm are refused, so an
//!   assertion "signed" with the public key as an HMAC secret fails.
//!
//! Signature checking is the `jsonwebtoken` library's (over ring); the claim
//! rules are checked here, against the time given, with a small allowance
//! for clock skew.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use time::{Duration, OffsetDateTime};

use crate::client::{ClientConfig, ClientError};
use crate::error::TokenError;

/// The `client_assertion_type` of a JWT assertion (RFC 7523 §2.2).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The furthest ahead an assertion's `exp` may be.
pub const MAX_LIFETIME: Duration = Duration::minutes(5);

/// The clock skew allowed between the client and Tuaton.
pub const SKEW: Duration = Duration::seconds(30);

/// Longest `jti` accepted.
const MAX_JTI: usize = 256;

/// An accepted assertion's id, to be refused if it comes again before it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssertionId {
    /// The `jti`.
    pub jti: String,
    /// Until when it would be accepted (`exp` plus the skew): the cache may
    /// forget it after this, never before.
    pub expires_at: OffsetDateTime,
}

/// The algorithms a key may sign with.
pub(crate) fn algorithms(jwk: &Jwk) -> Result<Vec<Algorithm>, &'static str> {
    let allowed = match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
            vec![Algorithm::ES256]
        }
        AlgorithmParameters::EllipticCurve(_) => return Err("only P-256 EC keys are accepted"),
        AlgorithmParameters::RSA(rsa) => {
            // The modulus, base64url without padding: 2048 bits are 342 characters.
            if rsa.n.len() < 342 {
                return Err("RSA keys must have at least 2048 bits");
            }
            vec![Algorithm::PS256, Algorithm::RS256]
        }
        AlgorithmParameters::OctetKey(_) => {
            return Err("symmetric keys are not accepted; register a public key");
        }
        AlgorithmParameters::OctetKeyPair(_) => {
            return Err("only P-256 EC and RSA keys are accepted");
        }
    };
    use jsonwebtoken::jwk::KeyAlgorithm as K;
    let named = match jwk.common.key_algorithm {
        None => return Ok(allowed),
        Some(K::ES256) => Algorithm::ES256,
        Some(K::PS256) => Algorithm::PS256,
        Some(K::RS256) => Algorithm::RS256,
        Some(_) => return Err("a key's alg must be ES256 (P-256), PS256 or RS256 (RSA)"),
    };
    if allowed.contains(&named) {
        Ok(vec![named])
    } else {
        Err("a key's alg must be ES256 (P-256), PS256 or RS256 (RSA)")
    }
}

/// Checks a client's JWK Set at registration: at least one key, every key
/// public (no private parameters) and of a kind [`verify`] accepts.
pub fn check_key_set(set: &Value) -> Result<(), ClientError> {
    let private = set["keys"].as_array().is_some_and(|keys| {
        keys.iter().any(|k| {
            crate::dpop::PRIVATE_MEMBERS
                .iter()
                .any(|p| k.get(p).is_some())
        })
    });
    if private {
        return Err(ClientError::Keys(
            "the JWK Set holds private key material; register the public keys only",
        ));
    }
    let parsed: JwkSet = serde_json::from_value(set.clone())
        .map_err(|_| ClientError::Keys("the client's keys are not a JWK Set (RFC 7517 §5)"))?;
    if parsed.keys.is_empty() {
        return Err(ClientError::Keys("the client's JWK Set is empty"));
    }
    for k in &parsed.keys {
        algorithms(k).map_err(ClientError::Keys)?;
    }
    if parsed.keys.len() > 1 && parsed.keys.iter().any(|k| k.common.key_id.is_none()) {
        return Err(ClientError::Keys(
            "with several keys, each needs a kid so an assertion can name its key",
        ));
    }
    Ok(())
}

/// The header and claims of `jwt`, signed by one of `client`'s registered
/// keys with an algorithm that key makes; why it is refused otherwise.
/// The claims are the caller's to check.
pub(crate) fn signed_by_client(
    jwt: &str,
    client: &ClientConfig,
) -> Result<(jsonwebtoken::Header, Value), &'static str> {
    let set: JwkSet = client
        .jwks
        .clone()
        .and_then(|v| serde_json::from_value(v).ok())
        .ok_or("the client has no keys registered")?;
    let header = jsonwebtoken::decode_header(jwt).map_err(|_| "it is not a JWT")?;
    let jwk = match &header.kid {
        Some(kid) => set.find(kid),
        None if set.keys.len() == 1 => set.keys.first(),
        None => None,
    }
    .ok_or("no registered key matches its kid")?;
    let allowed = algorithms(jwk).map_err(|_| "the registered key cannot be used")?;
    if !allowed.contains(&header.alg) {
        return Err("its alg is not one the client's key signs with");
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|_| "the registered key cannot be used")?;
    let mut validation = Validation::new(header.alg);
    validation.algorithms = allowed;
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<Value>(jwt, &key, &validation)
        .map_err(|_| "its signature does not verify with the client's key")?
        .claims;
    Ok((header, claims))
}

/// Checks a signed JWT's time claims at `now`, with [`SKEW`]: `exp` is
/// present, not past, and at most `max` (said as `max_words`) ahead; each of
/// `not_before` that is present is not in the future. Returns how far ahead
/// `exp` is, or the rule broken.
pub(crate) fn check_window(
    claims: &Value,
    now: OffsetDateTime,
    max: Duration,
    max_words: &str,
    not_before: &[&str],
) -> Result<Duration, String> {
    let time_of = |name: &str| {
        claims
            .get(name)
            .and_then(Value::as_i64)
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
    };
    let exp = time_of("exp").ok_or("exp is missing")?;
    // Compared as a difference: no sum can overflow, whatever `exp` says.
    let ahead = exp - now;
    if ahead <= -SKEW {
        return Err("it has expired".into());
    }
    if ahead > max + SKEW {
        return Err(format!("exp is more than {max_words} ahead"));
    }
    for name in not_before {
        if claims.get(*name).is_some() && time_of(name).is_none_or(|t| t > now + SKEW) {
            return Err(format!("{name} is in the future or not a time"));
        }
    }
    Ok(ahead)
}

/// Verifies `assertion` as `client`'s authentication, addressed to `issuer`, at `now`.
pub fn verify(
    assertion: &str,
    client: &ClientConfig,
    issuer: &str,
    now: OffsetDateTime,
) -> Result<AssertionId, TokenError> {
    let bad = |why: &str| TokenError::client(format!("The client assertion is refused: {why}."));
    // The claims are checked below, against `now`.
    let (_, claims) = signed_by_client(assertion, client).map_err(bad)?;
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    if text("iss") != Some(client.client_id.as_str())
        || text("sub") != Some(client.client_id.as_str())
    {
        return Err(bad("iss and sub must both be the client_id"));
    }
    if text("aud") != Some(issuer) {
        return Err(bad("aud must be Tuaton's issuer, as a single string"));
    }
    let ahead = check_window(&claims, now, MAX_LIFETIME, "five minutes", &["nbf", "iat"])
        .map_err(|why| bad(&why))?;
    let jti = text("jti")
        .filter(|j| !j.is_empty() && j.len() <= MAX_JTI)
        .ok_or_else(|| bad("jti is missing"))?;
    Ok(AssertionId {
        jti: jti.to_owned(),
        // Accepted until `exp` plus the skew, so remembered as long.
        expires_at: now + ahead + SKEW,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::client::tests::client_with_key;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    const ISSUER: &str = "https://id.example.go.th";
    const TOKEN: &str = "https://id.example.go.th/token";

    fn sign(pkcs8: &[u8], alg: Algorithm, claims: &Value) -> String {
        let mut header = Header::new(alg);
        header.kid = Some("k1".into());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_der(pkcs8)).unwrap()
    }

    fn claims(now: OffsetDateTime) -> Value {
        json!({
            "iss": "revenue-efiling", "sub": "revenue-efiling", "aud": ISSUER,
            "jti": "a-1", "iat": now.unix_timestamp(), "exp": (now + Duration::minutes(1)).unix_timestamp(),
        })
    }

    #[test]
    fn a_good_assertion_is_accepted_with_its_id() {
        let (client, key) = client_with_key();
        let now = OffsetDateTime::now_utc();
        let id = verify(
            &sign(&key, Algorithm::ES256, &claims(now)),
            &client,
            ISSUER,
            now,
        )
        .unwrap();
        assert_eq!(id.jti, "a-1");
        assert!(
            id.expires_at > now + Duration::seconds(89),
            "remembered as long as it is accepted"
        );
    }

    #[test]
    fn every_rule_refuses_with_invalid_client() {
        let (client, key) = client_with_key();
        let now = OffsetDateTime::now_utc();
        let with = |name: &str, v: Value| {
            let mut c = claims(now);
            if v.is_null() {
                c.as_object_mut().unwrap().remove(name);
            } else {
                c[name] = v;
            }
            sign(&key, Algorithm::ES256, &c)
        };
        let past = (now - Duration::minutes(2)).unix_timestamp();
        let far = (now + Duration::hours(1)).unix_timestamp();
        let future = (now + Duration::minutes(3)).unix_timestamp();
        for (token, why) in [
            (with("aud", json!("https://evil.example/token")), "aud"),
            (with("aud", json!(TOKEN)), "aud"),
            (with("aud", json!([ISSUER])), "aud"),
            (with("aud", json!(["https://evil.example", ISSUER])), "aud"),
            (with("exp", json!(253_402_300_799_i64)), "five minutes"),
            (with("aud", Value::Null), "aud"),
            (with("iss", json!("someone-else")), "iss"),
            (with("sub", json!("someone-else")), "iss"),
            (with("exp", json!(past)), "expired"),
            (with("exp", json!(far)), "five minutes"),
            (with("exp", Value::Null), "exp"),
            (with("nbf", json!(future)), "nbf"),
            (with("iat", json!(future)), "iat"),
            (with("jti", Value::Null), "jti"),
            ("not-a-jwt".into(), "JWT"),
        ] {
            let e = verify(&token, &client, ISSUER, now).unwrap_err();
            assert_eq!(e.error, crate::OAuthError::InvalidClient);
            assert!(e.description.contains(why), "{why}: {e}");
        }
        let (other, other_key) = client_with_key();
        let forged = sign(&other_key, Algorithm::ES256, &claims(now));
        assert!(verify(&forged, &client, ISSUER, now).is_err());
        assert!(verify(&forged, &other, ISSUER, now).is_ok());
    }

    #[test]
    fn alg_none_and_hmac_with_the_public_key_are_refused() {
        let (client, _) = client_with_key();
        let now = OffsetDateTime::now_utc();
        let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let unsigned = format!(
            "{}.{}.",
            b64(&json!({"alg": "none", "kid": "k1"})),
            b64(&claims(now))
        );
        assert!(verify(&unsigned, &client, ISSUER, now).is_err());
        // The public key's bytes used as an HMAC secret.
        let public = client.jwks.as_ref().unwrap().to_string();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k1".into());
        let hmac = jsonwebtoken::encode(
            &header,
            &claims(now),
            &EncodingKey::from_secret(public.as_bytes()),
        )
        .unwrap();
        let e = verify(&hmac, &client, ISSUER, now).unwrap_err();
        assert!(e.description.contains("alg"), "{e}");
    }

    #[test]
    fn key_sets_with_private_or_symmetric_keys_are_refused() {
        for set in [
            json!({"keys": []}),
            json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}),
            json!({"keys": [{"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0", "d": "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"}]}),
            json!({"keys": [{"kty": "RSA", "n": "sXch", "e": "AQAB"}]}),
            // Any private member refuses the set, a CRT exponent (which
            // alone factors an RSA modulus) as much as `d`; here beside an
            // otherwise usable public key.
            json!({"keys": [{"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0", "dp": "AQ"}]}),
            json!({"keys": [{"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0", "oth": []}]}),
            json!("not a set"),
        ] {
            assert!(check_key_set(&set).is_err(), "{set}");
        }
    }
}
