//! DPoP, sender-constrained tokens (RFC 9449).
//!
//! A client proves with every token request and every call to a protected
//! resource that it holds a private key: the request carries a `DPoP`
//! header, a JWT signed with that key and naming the request (method and
//! URI), the time, a unique id and the server's current nonce, and at a
//! resource the access token's hash. Tokens issued against a proof carry
//! the key's RFC 7638 thumbprint (`cnf.jkt`); a thief who copies the token
//! cannot make the proof that goes with it.
//!
//! [`verify`] checks a proof as RFC 9449 §4.3 lists, every step against the
//! time given:
//! - a JWT with `typ` `dpop+jwt`, an asymmetric `alg` (ES256 for a P-256
//!   key, PS256 or RS256 for an RSA key of 2048 bits or more; `none` and
//!   HMAC refused), and a public `jwk` in its header (a private parameter is
//!   refused: the key would have been published), whose signature verifies;
//! - `htm` is the request's method and `htu` its URI without query and
//!   fragment, compared after the URL parser's normalisation (scheme and
//!   host case, default port);
//! - `iat` is at most [`MAX_AGE`] old and not in the future, beyond [`SKEW`];
//! - `ath` is the access token's SHA-256 when one is presented;
//! - `nonce` is one Tuaton gave out at most [`NONCE_LIFETIME`] ago; a proof
//!   without one, or with an old one, is answered `use_dpop_nonce` and the
//!   current nonce (§8), and nothing is spent;
//! - the caller records `jti` and refuses it again for as long as the proof
//!   would be accepted ([`Proof::remember_until`]).
//!
//! Nonces are stateless: the start of a minute and an HMAC of it under a
//! server secret, so every instance of the server that shares the store
//! accepts the nonces of the others, and nothing is written to give one out.
//!
//! Hand-written here: the proof rules, the nonces and the thumbprint (a few
//! lines of RFC 7638); the signature is checked by `jsonwebtoken`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use ring::digest::{SHA256, digest};
use ring::hmac;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::{Duration, OffsetDateTime};
use url::Url;

use crate::error::OAuthError;

/// The `typ` header of a proof (RFC 9449 §4.2).
pub const TYP: &str = "dpop+jwt";

/// The algorithms a proof may be signed with, as discovery lists them.
pub const ALGORITHMS: &[&str] = &["ES256", "PS256", "RS256"];

/// How old a proof's `iat` may be.
pub const MAX_AGE: Duration = Duration::seconds(60);

/// The clock skew allowed between the client and Tuaton.
pub const SKEW: Duration = Duration::seconds(30);

/// How long a nonce Tuaton gave out is accepted.
pub const NONCE_LIFETIME: Duration = Duration::minutes(5);

/// A new nonce is given out every this many seconds.
const NONCE_STEP: i64 = 60;

/// Longest `jti` accepted.
const MAX_JTI: usize = 256;

/// The members of a JWK that only a private key has (RFC 7518 §6).
pub(crate) const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// The confirmation claim of a DPoP-bound token (RFC 9449 §6.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// The RFC 7638 SHA-256 thumbprint of the key the token is bound to.
    pub jkt: String,
}

/// How an access token is presented at a protected resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `Authorization: Bearer` (RFC 6750): for tokens bound to no key.
    Bearer,
    /// `Authorization: DPoP`, with a proof (RFC 9449 §7.1).
    Dpop,
}

/// A proof as a request carried it, with the request it must name.
#[derive(Debug, Clone)]
pub struct Presented {
    /// The `DPoP` header's value.
    pub proof: String,
    /// The request's method, upper case.
    pub method: &'static str,
    /// The endpoint's public URI.
    pub uri: Url,
}

impl Presented {
    /// What the proof must match, with `access_token` at a protected resource.
    pub fn expected<'a>(&'a self, access_token: Option<&'a str>) -> Expected<'a> {
        Expected {
            method: self.method,
            uri: &self.uri,
            access_token,
        }
    }
}

/// The request a proof came with: what it must name.
#[derive(Debug, Clone)]
pub struct Expected<'a> {
    /// The HTTP method, upper case.
    pub method: &'a str,
    /// The endpoint's public URI (query and fragment are ignored).
    pub uri: &'a Url,
    /// The access token presented beside the proof, at a protected resource.
    pub access_token: Option<&'a str>,
}

/// An accepted proof: the key it binds to, and its id to be spent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// The key's thumbprint.
    pub jkt: String,
    /// The proof's `jti`.
    pub jti: String,
    /// Until when the proof would be accepted: its id may be forgotten
    /// after this, never before.
    pub remember_until: OffsetDateTime,
}

/// Why a proof is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DpopError {
    /// The proof is malformed, signed wrongly, or names another request
    /// (`invalid_dpop_proof`); the sentence says which rule.
    #[error("The DPoP proof is refused: {0}.")]
    Invalid(String),
    /// The client's tokens are DPoP-bound and the request carries no proof.
    #[error("A DPoP proof is needed in the DPoP header: the tokens are DPoP-bound.")]
    Missing,
    /// The proof has no nonce, or an old one (`use_dpop_nonce`): the client
    /// makes a new proof with the nonce in the `DPoP-Nonce` header.
    #[error("A DPoP proof needs the server's current nonce; it is in the DPoP-Nonce header.")]
    NonceNeeded,
}

impl DpopError {
    /// The code.
    pub fn error(&self) -> OAuthError {
        match self {
            Self::Invalid(_) | Self::Missing => OAuthError::InvalidDpopProof,
            Self::NonceNeeded => OAuthError::UseDpopNonce,
        }
    }

    /// [`Self::Invalid`], with the rule broken.
    pub fn invalid(why: &str) -> Self {
        Self::Invalid(why.to_owned())
    }
}

/// The server's nonces: the start of a minute, with an HMAC of it.
pub struct Nonces(hmac::Key);

impl Nonces {
    /// Nonces made and checked under `key` (a server secret).
    pub fn new(key: hmac::Key) -> Self {
        Self(key)
    }

    /// The nonce to give out at `now`: the same for a whole minute.
    pub fn current(&self, now: OffsetDateTime) -> String {
        let step = now.unix_timestamp().div_euclid(NONCE_STEP) * NONCE_STEP;
        self.made_at(step)
    }

    fn made_at(&self, step: i64) -> String {
        let at = step.to_be_bytes();
        let tag = hmac::sign(&self.0, &at);
        let mut raw = at.to_vec();
        raw.extend_from_slice(tag.as_ref());
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Whether `nonce` is one of these, given out at most
    /// [`NONCE_LIFETIME`] before `now`.
    pub fn accepts(&self, nonce: &str, now: OffsetDateTime) -> bool {
        let Ok(raw) = URL_SAFE_NO_PAD.decode(nonce) else {
            return false;
        };
        let Some((at, tag)) = raw.split_at_checked(8) else {
            return false;
        };
        let Ok(at) = <[u8; 8]>::try_from(at) else {
            return false;
        };
        if hmac::verify(&self.0, &at, tag).is_err() {
            return false;
        }
        let made = i64::from_be_bytes(at);
        let age = now.unix_timestamp().saturating_sub(made);
        (-SKEW.whole_seconds()..=NONCE_LIFETIME.whole_seconds()).contains(&age)
    }
}

/// The RFC 7638 thumbprint of a public JWK: the SHA-256 of its required
/// members, in lexicographic order, as JSON without whitespace.
pub fn thumbprint(jwk: &Value) -> Result<String, DpopError> {
    let member = |name: &str| {
        jwk.get(name)
            .and_then(Value::as_str)
            .map(|v| Value::String(v.to_owned()).to_string())
            .ok_or_else(|| DpopError::Invalid(format!("the jwk lacks {name}")))
    };
    let canonical = match jwk.get("kty").and_then(Value::as_str) {
        Some("EC") => format!(
            r#"{{"crv":{},"kty":"EC","x":{},"y":{}}}"#,
            member("crv")?,
            member("x")?,
            member("y")?
        ),
        Some("RSA") => format!(
            r#"{{"e":{},"kty":"RSA","n":{}}}"#,
            member("e")?,
            member("n")?
        ),
        _ => return Err(DpopError::invalid("the jwk is not an EC or RSA public key")),
    };
    Ok(URL_SAFE_NO_PAD.encode(digest(&SHA256, canonical.as_bytes())))
}

/// The `ath` of `access_token`: its SHA-256, base64url (RFC 9449 §4.2).
pub fn token_hash(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest(&SHA256, access_token.as_bytes()))
}

/// Whether two URIs name the same endpoint: scheme, host, port and path,
/// query and fragment ignored (RFC 9449 §4.3, step 9).
fn same_endpoint(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
        && a.path() == b.path()
}

/// Checks `proof` against the request `expected` at `now`, with the
/// server's `nonces`. The caller spends [`Proof::jti`] before it acts.
pub fn verify(
    proof: &str,
    expected: &Expected<'_>,
    nonces: &Nonces,
    now: OffsetDateTime,
) -> Result<Proof, DpopError> {
    let bad = DpopError::invalid;
    let header_part = proof.split('.').next().unwrap_or_default();
    let header: Value = URL_SAFE_NO_PAD
        .decode(header_part)
        .ok()
        .and_then(|raw| serde_json::from_slice(&raw).ok())
        .ok_or_else(|| bad("it is not a JWT"))?;
    if header.get("typ").and_then(Value::as_str) != Some(TYP) {
        return Err(bad("its typ must be dpop+jwt"));
    }
    let raw_jwk = header
        .get("jwk")
        .filter(|k| k.is_object())
        .ok_or_else(|| bad("its header carries no jwk"))?;
    if PRIVATE_MEMBERS.iter().any(|m| raw_jwk.get(m).is_some()) {
        return Err(bad("its jwk holds private key material"));
    }
    let jwk: Jwk =
        serde_json::from_value(raw_jwk.clone()).map_err(|_| bad("its jwk cannot be read"))?;
    let allowed = crate::assertion::algorithms(&jwk).map_err(bad)?;
    let alg: Algorithm = header
        .get("alg")
        .and_then(Value::as_str)
        .filter(|a| ALGORITHMS.contains(a))
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| bad("its alg must be ES256, PS256 or RS256"))?;
    if !allowed.contains(&alg) {
        return Err(bad("its alg is not one its jwk signs with"));
    }
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| bad("its jwk cannot be used"))?;
    let mut validation = Validation::new(alg);
    validation.algorithms = vec![alg];
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<Value>(proof, &key, &validation)
        .map_err(|_| bad("its signature does not verify with its jwk"))?
        .claims;
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    let jti = text("jti")
        .filter(|j| !j.is_empty() && j.len() <= MAX_JTI)
        .ok_or_else(|| bad("jti is missing"))?;
    if text("htm") != Some(expected.method) {
        return Err(DpopError::Invalid(format!(
            "htm must be {}, the request's method",
            expected.method
        )));
    }
    let htu = text("htu")
        .and_then(|u| Url::parse(u).ok())
        .ok_or_else(|| bad("htu is missing or not a URI"))?;
    if !same_endpoint(&htu, expected.uri) {
        return Err(DpopError::Invalid(format!(
            "htu must be {}, the endpoint it is sent to",
            expected.uri
        )));
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_i64)
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
        .ok_or_else(|| bad("iat is missing or not a time"))?;
    // A difference, so no sum can overflow whatever `iat` says.
    let age = now - iat;
    if age < -SKEW || age > MAX_AGE + SKEW {
        return Err(bad("iat is not within a minute of the server's time"));
    }
    match (expected.access_token, text("ath")) {
        (Some(token), Some(ath)) if ath == token_hash(token) => {}
        (Some(_), Some(_)) => return Err(bad("ath is not the access token's hash")),
        (Some(_), None) => return Err(bad("ath is missing beside an access token")),
        (None, _) => {}
    }
    if !text("nonce").is_some_and(|n| nonces.accepts(n, now)) {
        return Err(DpopError::NonceNeeded);
    }
    Ok(Proof {
        jkt: thumbprint(raw_jwk)?,
        jti: jti.to_owned(),
        remember_until: iat + MAX_AGE + SKEW,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use serde_json::json;

    const TOKEN_URI: &str = "https://id.example.go.th/token";

    struct Key {
        pkcs8: Vec<u8>,
        jwk: Value,
    }

    fn key() -> Key {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let point = pair.public_key().as_ref();
        Key {
            pkcs8: pkcs8.as_ref().to_vec(),
            jwk: json!({
                "kty": "EC", "crv": "P-256",
                "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
            }),
        }
    }

    fn nonces() -> Nonces {
        Nonces::new(hmac::Key::new(hmac::HMAC_SHA256, b"dpop test secret"))
    }

    fn proof_with(k: &Key, header_jwk: Value, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some(TYP.into());
        header.jwk = Some(serde_json::from_value(header_jwk).unwrap());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_der(&k.pkcs8)).unwrap()
    }

    fn claims(now: OffsetDateTime, nonce: &str) -> Value {
        json!({ "jti": "p-1", "htm": "POST", "htu": TOKEN_URI, "iat": now.unix_timestamp(), "nonce": nonce })
    }

    fn expected(uri: &Url) -> Expected<'_> {
        Expected {
            method: "POST",
            uri,
            access_token: None,
        }
    }

    #[test]
    fn a_good_proof_binds_to_its_key_thumbprint() {
        let (k, n, now) = (key(), nonces(), OffsetDateTime::now_utc());
        let uri = Url::parse(TOKEN_URI).unwrap();
        let proof = proof_with(&k, k.jwk.clone(), &claims(now, &n.current(now)));
        let accepted = verify(&proof, &expected(&uri), &n, now).unwrap();
        assert_eq!(accepted.jkt, thumbprint(&k.jwk).unwrap());
        assert_eq!(accepted.jti, "p-1");
        // `iat` is whole seconds: remembered until a second past it is old enough.
        assert!(accepted.remember_until > now + MAX_AGE + SKEW - Duration::seconds(1));
        // The same endpoint written with a default port and upper-case host.
        let mut c = claims(now, &n.current(now));
        c["htu"] = json!("https://ID.example.go.th:443/token?x=1#f");
        verify(&proof_with(&k, k.jwk.clone(), &c), &expected(&uri), &n, now).unwrap();
    }

    #[test]
    fn the_rfc_7638_example_thumbprint_is_reproduced() {
        // RFC 7638 §3.1.
        let jwk = json!({
            "kty": "RSA", "e": "AQAB", "alg": "RS256", "kid": "2011-04-29",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
        });
        assert_eq!(
            thumbprint(&jwk).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn every_rule_refuses_with_invalid_dpop_proof() {
        let (k, n, now) = (key(), nonces(), OffsetDateTime::now_utc());
        let uri = Url::parse(TOKEN_URI).unwrap();
        let nonce = n.current(now);
        let with = |name: &str, v: Value| {
            let mut c = claims(now, &nonce);
            if v.is_null() {
                c.as_object_mut().unwrap().remove(name);
            } else {
                c[name] = v;
            }
            proof_with(&k, k.jwk.clone(), &c)
        };
        let old = (now - Duration::minutes(5)).unix_timestamp();
        let ahead = (now + Duration::minutes(2)).unix_timestamp();
        let mut private = k.jwk.clone();
        private["d"] = json!("jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI");
        for (proof, why) in [
            (with("htm", json!("GET")), "htm"),
            (
                with("htu", json!("https://id.example.go.th/userinfo")),
                "htu",
            ),
            (with("htu", json!("https://evil.example/token")), "htu"),
            (with("htu", Value::Null), "htu"),
            (with("iat", json!(old)), "iat"),
            (with("iat", json!(ahead)), "iat"),
            (with("iat", Value::Null), "iat"),
            (with("jti", Value::Null), "jti"),
            ("not-a-jwt".into(), "JWT"),
            (proof_with(&k, key().jwk, &claims(now, &nonce)), "signature"),
        ] {
            let e = verify(&proof, &expected(&uri), &n, now).unwrap_err();
            assert_eq!(e.error(), OAuthError::InvalidDpopProof, "{why}");
            assert!(e.to_string().contains(why), "{why}: {e}");
        }
        // A header with the private key is refused before anything else.
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some(TYP.into());
        let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let forged = format!(
            "{}.{}.sig",
            b64(&json!({"typ": TYP, "alg": "ES256", "jwk": private})),
            b64(&claims(now, &nonce))
        );
        let e = verify(&forged, &expected(&uri), &n, now).unwrap_err();
        assert!(e.to_string().contains("private"), "{e}");
        // Another typ, alg none, and an HMAC over the public key.
        for header in [
            json!({"typ": "JWT", "alg": "ES256", "jwk": k.jwk}),
            json!({"typ": TYP, "alg": "none", "jwk": k.jwk}),
            json!({"typ": TYP, "alg": "HS256", "jwk": k.jwk}),
            json!({"typ": TYP, "alg": "ES256"}),
        ] {
            let forged = format!("{}.{}.", b64(&header), b64(&claims(now, &nonce)));
            let e = verify(&forged, &expected(&uri), &n, now).unwrap_err();
            assert_eq!(e.error(), OAuthError::InvalidDpopProof, "{header}");
        }
    }

    #[test]
    fn a_missing_foreign_or_old_nonce_asks_for_the_current_one() {
        let (k, n, now) = (key(), nonces(), OffsetDateTime::now_utc());
        let uri = Url::parse(TOKEN_URI).unwrap();
        let other = Nonces::new(hmac::Key::new(hmac::HMAC_SHA256, b"another server"));
        let stale = n.current(now - NONCE_LIFETIME - Duration::minutes(2));
        let mut no_nonce = claims(now, "");
        no_nonce.as_object_mut().unwrap().remove("nonce");
        for c in [
            no_nonce,
            claims(now, "made-up"),
            claims(now, &other.current(now)),
            claims(now, &stale),
        ] {
            let e =
                verify(&proof_with(&k, k.jwk.clone(), &c), &expected(&uri), &n, now).unwrap_err();
            assert_eq!(e, DpopError::NonceNeeded);
            assert_eq!(e.error(), OAuthError::UseDpopNonce);
        }
        // A nonce of four minutes ago is still good; the current one changes each minute.
        let recent = n.current(now - Duration::minutes(4));
        assert!(n.accepts(&recent, now));
        assert_ne!(n.current(now), n.current(now + Duration::minutes(1)));
    }

    #[test]
    fn at_a_resource_the_proof_must_hash_the_token_it_came_with() {
        let (k, n, now) = (key(), nonces(), OffsetDateTime::now_utc());
        let uri = Url::parse("https://id.example.go.th/userinfo").unwrap();
        let mut c = claims(now, &n.current(now));
        c["htm"] = json!("GET");
        c["htu"] = json!(uri.as_str());
        let at_resource = |token| Expected {
            method: "GET",
            uri: &uri,
            access_token: Some(token),
        };
        let without = proof_with(&k, k.jwk.clone(), &c);
        let e = verify(&without, &at_resource("tok"), &n, now).unwrap_err();
        assert!(e.to_string().contains("ath"), "{e}");
        c["ath"] = json!(token_hash("tok"));
        let with = proof_with(&k, k.jwk.clone(), &c);
        assert!(verify(&with, &at_resource("tok"), &n, now).is_ok());
        let e = verify(&with, &at_resource("another token"), &n, now).unwrap_err();
        assert!(e.to_string().contains("ath"), "{e}");
    }
}
