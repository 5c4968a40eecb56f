//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0 §2–§3),
//! and the logout token of back-channel logout (OpenID Connect
//! Back-Channel Logout 1.0 §2.4).
//!
//! A client sends the browser to the end-session endpoint with the ID token
//! it holds (`id_token_hint`), where to come back to
//! (`post_logout_redirect_uri`, registered for the client and matched
//! exactly, §3) and a `state` to echo. The hint names the client (`aud`) and
//! the session with it (`sid`); it is accepted expired (§2: the OP SHOULD
//! accept an ID token whose lifetime has ended), but only signed by Tuaton
//! and issued by it.

use std::collections::BTreeMap;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use url::Url;

use crate::client::ClientConfig;

/// Longest `state` accepted.
const MAX_STATE: usize = 512;

/// The `typ` header of a logout token (Back-Channel Logout 1.0 §2.4).
pub const LOGOUT_TOKEN_TYP: &str = "logout+jwt";

/// The event a logout token carries (Back-Channel Logout 1.0 §2.4).
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// How long a logout token is accepted: two minutes (§2.4 asks for a short lifetime).
pub const LOGOUT_TOKEN_LIFETIME: time::Duration = time::Duration::minutes(2);

/// The claims of a logout token: the client's `sub` and the session
/// (`sid`, the grant an ID token named), the event, and never a `nonce`
/// (§2.4, so it cannot pass as an ID token).
pub fn logout_token_claims(
    issuer: &str,
    client_id: &str,
    sub: &str,
    sid: &str,
    jti: &str,
    now: time::OffsetDateTime,
) -> Value {
    serde_json::json!({
        "iss": issuer, "aud": client_id, "sub": sub, "sid": sid, "jti": jti,
        "iat": now.unix_timestamp(),
        "exp": (now + LOGOUT_TOKEN_LIFETIME).unix_timestamp(),
        "events": { BACKCHANNEL_LOGOUT_EVENT: {} },
    })
}

/// A logout request, read but not yet matched to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutRequest {
    /// The ID token the client holds.
    pub id_token_hint: Option<String>,
    /// The client, when it names itself.
    pub client_id: Option<String>,
    /// Where the browser goes afterwards.
    pub post_logout_redirect_uri: Option<String>,
    /// Echoed to that URI.
    pub state: Option<String>,
}

/// Why a logout request is refused: always shown on Tuaton's page, never
/// sent to an unverified URI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LogoutError(pub &'static str);

/// What a verified `id_token_hint` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    /// The client it was issued to.
    pub client_id: String,
    /// The session with that client (its grant), when the token names one.
    pub sid: Option<String>,
}

impl LogoutRequest {
    /// Reads the query or form pairs; each parameter at most once, one
    /// without a value as if omitted.
    pub fn parse(params: &[(String, String)]) -> Result<Self, LogoutError> {
        let mut form: BTreeMap<&str, &str> = BTreeMap::new();
        for (k, v) in params.iter().filter(|(_, v)| !v.is_empty()) {
            if form.insert(k.as_str(), v.as_str()).is_some() {
                return Err(LogoutError("A parameter is given more than once."));
            }
        }
        let one = |name: &str| form.get(name).map(|v| (*v).to_owned());
        let state = one("state");
        if state.as_ref().is_some_and(|s| s.len() > MAX_STATE) {
            return Err(LogoutError("state is too long."));
        }
        let r = Self {
            id_token_hint: one("id_token_hint"),
            client_id: one("client_id"),
            post_logout_redirect_uri: one("post_logout_redirect_uri"),
            state,
        };
        if r.post_logout_redirect_uri.is_some()
            && r.id_token_hint.is_none()
            && r.client_id.is_none()
        {
            return Err(LogoutError(
                "post_logout_redirect_uri needs id_token_hint or client_id to name the client.",
            ));
        }
        Ok(r)
    }

    /// The client this request is for: the hint's audience, which a
    /// `client_id` given beside it must equal.
    pub fn client_of<'h>(&'h self, hint: Option<&'h Hint>) -> Result<Option<&'h str>, LogoutError> {
        match (hint, self.client_id.as_deref()) {
            (Some(h), Some(c)) if h.client_id != c => Err(LogoutError(
                "client_id is not the client the ID token was issued to.",
            )),
            (Some(h), _) => Ok(Some(h.client_id.as_str())),
            (None, c) => Ok(c),
        }
    }

    /// Where to send the browser afterwards: the client's registered
    /// post-logout URI that equals the one asked for, with `state`.
    pub fn destination(&self, client: Option<&ClientConfig>) -> Result<Option<Url>, LogoutError> {
        let Some(asked) = self.post_logout_redirect_uri.as_deref() else {
            return Ok(None);
        };
        let registered = client
            .and_then(|c| {
                c.post_logout_redirect_uris
                    .iter()
                    .find(|u| u.as_str() == asked)
            })
            .ok_or(LogoutError(
                "post_logout_redirect_uri is not one registered for this client.",
            ))?;
        let mut url = registered.clone();
        if let Some(s) = &self.state {
            url.query_pairs_mut().append_pair("state", s);
        }
        Ok(Some(url))
    }
}

/// Verifies an `id_token_hint` against Tuaton's published keys: signed by
/// one of them, issued by `issuer`; expiry is not held against it.
pub fn verify_hint(token: &str, jwks: &Value, issuer: &str) -> Result<Hint, LogoutError> {
    let bad = LogoutError("The id_token_hint is not an ID token Tuaton issued.");
    let set: JwkSet = serde_json::from_value(jwks.clone()).map_err(|_| bad.clone())?;
    let header = jsonwebtoken::decode_header(token).map_err(|_| bad.clone())?;
    if header.typ.as_deref() != Some("JWT") {
        return Err(bad);
    }
    let jwk = header
        .kid
        .as_deref()
        .and_then(|kid| set.find(kid))
        .ok_or_else(|| bad.clone())?;
    if ![Algorithm::ES256, Algorithm::PS256, Algorithm::RS256].contains(&header.alg) {
        return Err(bad);
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|_| bad.clone())?;
    let mut validation = Validation::new(header.alg);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map_err(|_| bad.clone())?
        .claims;
    if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
        return Err(bad);
    }
    let client_id = claims
        .get("aud")
        .and_then(Value::as_str)
        .ok_or_else(|| bad.clone())?
        .to_owned();
    Ok(Hint {
        client_id,
        sid: claims.get("sid").and_then(Value::as_str).map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::client::tests::agency;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn only_a_registered_post_logout_uri_is_gone_to() {
        let mut client = agency(&["https://efiling.rd.go.th/cb"]);
        client.post_logout_redirect_uris =
            vec![Url::parse("https://efiling.rd.go.th/bye").unwrap()];
        let r = LogoutRequest::parse(&pairs(&[
            ("client_id", "revenue-efiling"),
            ("post_logout_redirect_uri", "https://efiling.rd.go.th/bye"),
            ("state", "s-1"),
        ]))
        .unwrap();
        let url = r.destination(Some(&client)).unwrap().unwrap();
        assert_eq!(url.as_str(), "https://efiling.rd.go.th/bye?state=s-1");
        for bad in [
            "https://efiling.rd.go.th/bye/",
            "https://efiling.rd.go.th/bye.evil.example",
            "https://evil.example/bye",
        ] {
            let r = LogoutRequest::parse(&pairs(&[
                ("client_id", "revenue-efiling"),
                ("post_logout_redirect_uri", bad),
            ]))
            .unwrap();
            assert!(r.destination(Some(&client)).is_err(), "{bad}");
        }
        assert!(
            LogoutRequest::parse(&pairs(&[(
                "post_logout_redirect_uri",
                "https://efiling.rd.go.th/bye"
            )]))
            .is_err()
        );
        assert!(LogoutRequest::parse(&pairs(&[("state", "a"), ("state", "b")])).is_err());
        let hint = Hint {
            client_id: "other".into(),
            sid: None,
        };
        assert!(
            r.client_of(Some(&hint)).is_err(),
            "client_id must be the hint's audience"
        );
    }
}
