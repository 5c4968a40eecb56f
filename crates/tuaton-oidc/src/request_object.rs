//! Signed request objects (JAR, RFC 9101): the authorization request as a
//! JWT the client signs with one of its registered keys, sent as `request`
//! at the authorization endpoint or inside a pushed request.
//!
//! Rules, each a MUST of RFC 9101 or FAPI 2.0's message signing profile:
//! - signed (never `alg: none`, never an HMAC) with a key of the client's
//!   JWK Set, `typ` `oauth-authz-req+jwt` when given (§10.8);
//! - `iss` is the `client_id`, `aud` is Tuaton's issuer (§10.2), and a
//!   `client_id` inside the object is the one the request names (§5);
//! - `exp` is present, not past, and at most an hour ahead; `nbf`, when
//!   present, not in the future;
//! - no `request` or `request_uri` inside (§4);
//! - only the object's parameters count: whatever the query says beside it
//!   is ignored (§5), so nothing in the browser can change a signed request.
//!
//! The object becomes the parameter list the authorization request is read
//! from ([`crate::authorize::AuthorizationRequest::parse`]), with the same
//! rules as any request.

use serde_json::Value;
use time::{Duration, OffsetDateTime};

use crate::client::ClientConfig;

/// The `typ` a request object may carry (RFC 9101 §10.8).
pub const TYP: &str = "oauth-authz-req+jwt";

/// The furthest ahead a request object's `exp` may be.
pub const MAX_LIFETIME: Duration = Duration::hours(1);

/// The claims of the JWT itself, which are not authorization parameters.
const JWT_CLAIMS: &[&str] = &["iss", "aud", "exp", "nbf", "iat", "jti"];

/// Why a request object is refused: a sentence for the client's developer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("The request object is refused: {0}.")]
pub struct RequestObjectError(pub String);

/// The authorization parameters `jwt` carries, once it verifies as
/// `client`'s request object addressed to `issuer` at `now`.
pub fn unpack(
    jwt: &str,
    client: &ClientConfig,
    issuer: &str,
    now: OffsetDateTime,
) -> Result<Vec<(String, String)>, RequestObjectError> {
    let bad = |why: &str| RequestObjectError(why.to_owned());
    let (header, claims) = crate::assertion::signed_by_client(jwt, client).map_err(bad)?;
    if header
        .typ
        .as_deref()
        .is_some_and(|t| !t.eq_ignore_ascii_case(TYP) && !t.eq_ignore_ascii_case("JWT"))
    {
        return Err(bad("its typ must be oauth-authz-req+jwt"));
    }
    let Value::Object(members) = claims else {
        return Err(bad("its claims are not a JSON object"));
    };
    let text = |name: &str| members.get(name).and_then(Value::as_str);
    if text("iss") != Some(client.client_id.as_str()) {
        return Err(bad("iss must be the client_id"));
    }
    let aud_ok = match members.get("aud") {
        Some(Value::String(a)) => a == issuer,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(issuer)),
        _ => false,
    };
    if !aud_ok {
        return Err(bad("aud must be Tuaton's issuer"));
    }
    if members
        .get("client_id")
        .is_some_and(|c| c.as_str() != Some(client.client_id.as_str()))
    {
        return Err(bad("its client_id is not the one the request names"));
    }
    crate::assertion::check_window(
        &Value::Object(members.clone()),
        now,
        MAX_LIFETIME,
        "an hour",
        &["nbf"],
    )
    .map_err(RequestObjectError)?;
    if members.contains_key("request") || members.contains_key("request_uri") {
        return Err(bad("it must not hold request or request_uri"));
    }
    let mut params: Vec<(String, String)> = members
        .into_iter()
        .filter(|(k, _)| !JWT_CLAIMS.contains(&k.as_str()))
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            (k, v)
        })
        .collect();
    if !params.iter().any(|(k, _)| k == "client_id") {
        params.push(("client_id".into(), client.client_id.clone()));
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::client::tests::client_with_key;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use serde_json::json;

    const ISSUER: &str = "https://id.example.go.th";

    fn sign(pkcs8: &[u8], claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("k1".into());
        header.typ = Some(TYP.into());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_der(pkcs8)).unwrap()
    }

    fn object(now: OffsetDateTime) -> Value {
        json!({
            "iss": "revenue-efiling", "aud": ISSUER, "exp": (now + Duration::minutes(5)).unix_timestamp(),
            "nbf": now.unix_timestamp(), "jti": "r-1",
            "response_type": "code", "client_id": "revenue-efiling",
            "redirect_uri": "https://efiling.rd.go.th/cb", "scope": "openid", "max_age": 300,
        })
    }

    #[test]
    fn a_signed_object_becomes_the_requests_parameters() {
        let (client, key) = client_with_key();
        let now = OffsetDateTime::now_utc();
        let params = unpack(&sign(&key, &object(now)), &client, ISSUER, now).unwrap();
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("redirect_uri"), Some("https://efiling.rd.go.th/cb"));
        assert_eq!(get("max_age"), Some("300"));
        assert_eq!(get("iss"), None, "the JWT's own claims are not parameters");
    }

    #[test]
    fn every_rule_refuses_the_object() {
        let (client, key) = client_with_key();
        let now = OffsetDateTime::now_utc();
        let with = |name: &str, v: Value| {
            let mut c = object(now);
            if v.is_null() {
                c.as_object_mut().unwrap().remove(name);
            } else {
                c[name] = v;
            }
            sign(&key, &c)
        };
        let past = (now - Duration::minutes(2)).unix_timestamp();
        let far = (now + Duration::hours(3)).unix_timestamp();
        for (jwt, why) in [
            (with("iss", json!("someone-else")), "iss"),
            (with("aud", json!("https://evil.example")), "aud"),
            (with("aud", Value::Null), "aud"),
            (with("client_id", json!("another-client")), "client_id"),
            (with("exp", json!(past)), "expired"),
            (with("exp", json!(far)), "hour"),
            (with("exp", Value::Null), "exp"),
            (with("nbf", json!(far)), "nbf"),
            (with("request", json!("nested")), "request"),
            ("not-a-jwt".into(), "JWT"),
        ] {
            let e = unpack(&jwt, &client, ISSUER, now).unwrap_err();
            assert!(e.0.contains(why), "{why}: {e}");
        }
        let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let unsigned = format!(
            "{}.{}.",
            b64(&json!({"alg": "none", "kid": "k1"})),
            b64(&object(now))
        );
        assert!(unpack(&unsigned, &client, ISSUER, now).is_err());
        let (other, other_key) = client_with_key();
        let forged = sign(&other_key, &object(now));
        assert!(unpack(&forged, &client, ISSUER, now).is_err());
        assert!(unpack(&forged, &other, ISSUER, now).is_ok());
    }
}
