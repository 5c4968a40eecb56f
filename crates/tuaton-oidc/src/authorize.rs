//! The authorization request (RFC 6749 §4.1.1, OpenID Connect Core 1.0
//! §3.1.2.1), validated into a typed value or refused.
//!
//! Rules, in the order they are checked: the client and the redirect URI
//! first — either unknown, missing or given twice, the refusal stays on the
//! page ([`AuthorizeError::Direct`]); past that, every refusal goes back to
//! the redirect URI. Every parameter at most once (RFC 6749 §3.1). Only
//! `response_type=code` (no implicit or hybrid flow, RFC 9700 §2.1.2) and the
//! `query` response mode. `openid` among the scopes, and only scopes the
//! client was given. PKCE with `S256` always (RFC 9700 §2.1.1).

use std::collections::BTreeMap;

use url::Url;

use crate::client::ClientConfig;
use crate::error::{AuthorizeError, OAuthError};
use crate::pkce::CodeChallenge;

/// The prefix of a pushed request's `request_uri` (RFC 9126 §2.2).
pub const PUSHED_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// Longest `state` or `nonce` accepted.
const MAX_OPAQUE: usize = 512;

/// A `prompt` value (OpenID Connect Core 1.0 §3.1.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Prompt {
    /// No page may be shown.
    None,
    /// Log in again, whatever session exists.
    Login,
    /// Ask for consent again.
    Consent,
    /// Let the person choose an account (here: whom to act for).
    SelectAccount,
}

/// A validated authorization request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuthorizationRequest {
    /// The client.
    pub client_id: String,
    /// The registered redirect URI it named.
    pub redirect_uri: Url,
    /// The scopes, `openid` among them.
    pub scopes: Vec<String>,
    /// Echoed back.
    pub state: Option<String>,
    /// Put in the ID token.
    pub nonce: Option<String>,
    /// The PKCE challenge (`S256`).
    pub code_challenge: CodeChallenge,
    /// `prompt`, in the order given.
    pub prompt: Vec<Prompt>,
    /// The longest time since the person logged in that the client accepts.
    pub max_age: Option<u64>,
    /// `acr_values`, in the order of preference given, with the `acr`
    /// values the `claims` parameter asks for (§5.5.1.1).
    pub acr_values: Vec<String>,
    /// `login_hint`, as given.
    pub login_hint: Option<String>,
    /// The DPoP key the code is bound to (RFC 9449 §10): the token request
    /// must carry a proof made with it. Given as `dpop_jkt`, or set from the
    /// proof that came with a pushed request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_jkt: Option<String>,
    /// The signatures the request asks the person to authorise (CSC API
    /// v2.0 credential authorization), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<crate::credential::CredentialAuthorization>,
}

/// The `acr` a `claims` parameter asks for (OpenID Connect Core 1.0
/// §5.5.1.1), for the ID token or userinfo: its values, and whether any is
/// essential.
#[derive(Debug, Default, PartialEq, Eq)]
struct ClaimedAcr {
    values: Vec<String>,
    essential: bool,
}

/// Reads the `claims` parameter's `acr` requests. Other claims it names are
/// not read: what is released follows the scopes and the consent. A
/// parameter that is not a JSON object of members is refused.
fn claimed_acr(claims: &str) -> Result<ClaimedAcr, &'static str> {
    let parsed: serde_json::Value =
        serde_json::from_str(claims).map_err(|_| "claims must be a JSON object (§5.5).")?;
    let top = parsed
        .as_object()
        .ok_or("claims must be a JSON object (§5.5).")?;
    let mut out = ClaimedAcr::default();
    for member in ["id_token", "userinfo"] {
        let Some(requests) = top.get(member) else {
            continue;
        };
        let requests = requests
            .as_object()
            .ok_or("claims.id_token and claims.userinfo must be JSON objects.")?;
        let Some(acr) = requests.get("acr").filter(|a| !a.is_null()) else {
            continue;
        };
        let acr = acr
            .as_object()
            .ok_or("claims …acr must be null or an object (§5.5.1).")?;
        out.essential |= acr.get("essential").and_then(serde_json::Value::as_bool) == Some(true);
        if let Some(v) = acr.get("value") {
            out.values.push(
                v.as_str()
                    .ok_or("acr's value must be a string.")?
                    .to_owned(),
            );
        }
        if let Some(vs) = acr.get("values") {
            for v in vs.as_array().ok_or("acr's values must be an array.")? {
                out.values.push(
                    v.as_str()
                        .ok_or("acr's values must be strings.")?
                        .to_owned(),
                );
            }
        }
    }
    Ok(out)
}

impl AuthorizationRequest {
    /// The least identity and authenticator levels `acr_values` asks for:
    /// the highest of each kind named (`urn:tuaton:ial:…`, `urn:tuaton:aal:…`,
    /// docs/assurance.md). Values Tuaton does not define are ignored, as
    /// OpenID Connect Core 1.0 §3.1.2.1 makes `acr_values` a request, not a
    /// demand.
    pub fn required_levels(&self) -> (Option<tuaton_core::Ial>, Option<tuaton_core::Aal>) {
        let ial = self
            .acr_values
            .iter()
            .filter_map(|a| tuaton_core::Ial::from_acr(a))
            .max();
        let aal = self
            .acr_values
            .iter()
            .filter_map(|a| tuaton_core::Aal::from_acr(a))
            .max();
        (ial, aal)
    }

    /// Validates `params` (the query as pairs, repeats kept) against the
    /// client `find` returns for its id.
    pub fn parse<'c>(
        params: &[(String, String)],
        find: impl FnOnce(&str) -> Option<&'c ClientConfig>,
    ) -> Result<(Self, &'c ClientConfig), AuthorizeError> {
        let mut by_name: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        // A parameter sent without a value is as if omitted (RFC 6749 §3.1, §3.2).
        for (k, v) in params.iter().filter(|(_, v)| !v.is_empty()) {
            by_name.entry(k.as_str()).or_default().push(v.as_str());
        }
        let direct = |description: &str| AuthorizeError::Direct {
            error: OAuthError::InvalidRequest,
            description: description.to_owned(),
        };
        let client_id = match by_name.get("client_id").map(Vec::as_slice) {
            Some([one]) => *one,
            Some(_) => return Err(direct("client_id is given more than once.")),
            None => return Err(direct("client_id is missing.")),
        };
        let client = find(client_id).ok_or_else(|| direct("The client is not registered."))?;
        let redirect_uri = match by_name.get("redirect_uri").map(Vec::as_slice) {
            Some([one]) => client
                .redirect_uri(one)
                .ok_or_else(|| direct("The redirect_uri is not one registered for this client."))?
                .clone(),
            Some(_) => return Err(direct("redirect_uri is given more than once.")),
            None => return Err(direct("redirect_uri is missing.")),
        };
        // From here on, refusals go back to the client.
        let state = by_name
            .get("state")
            .and_then(|v| v.first())
            .map(|s| (*s).to_owned());
        let back = |error: OAuthError, description: &str| AuthorizeError::Redirect {
            redirect_uri: Box::new(redirect_uri.clone()),
            error,
            description: description.to_owned(),
            state: state.clone(),
        };
        if let Some((name, _)) = by_name.iter().find(|(_, v)| v.len() > 1) {
            return Err(back(
                OAuthError::InvalidRequest,
                &format!("{name} is given more than once."),
            ));
        }
        let one = |name: &str| by_name.get(name).and_then(|v| v.first()).copied();
        if state.as_ref().is_some_and(|s| s.len() > MAX_OPAQUE) {
            return Err(back(OAuthError::InvalidRequest, "state is too long."));
        }
        if one("request").is_some() {
            // A request object is unpacked before this parse; one here was
            // nested inside a request object or a pushed one.
            return Err(back(
                OAuthError::InvalidRequestObject,
                "A request object cannot carry another, nor come inside a pushed request that names one.",
            ));
        }
        if one("request_uri").is_some() {
            // A pushed request is read through `PUSHED_PREFIX`, before this
            // parse; here one is a reference Tuaton did not issue, or one
            // pushed inside a pushed request (RFC 9126 §2.1).
            return Err(back(
                OAuthError::InvalidRequest,
                "request_uri names a request Tuaton did not issue, or was pushed itself.",
            ));
        }
        match one("response_type") {
            Some("code") => {}
            Some(_) => {
                return Err(back(
                    OAuthError::UnsupportedResponseType,
                    "Only response_type=code is supported.",
                ));
            }
            None => {
                return Err(back(
                    OAuthError::InvalidRequest,
                    "response_type is missing.",
                ));
            }
        }
        if one("response_mode").is_some_and(|m| m != "query") {
            return Err(back(
                OAuthError::InvalidRequest,
                "Only response_mode=query is supported.",
            ));
        }
        let scopes: Vec<String> = one("scope")
            .unwrap_or_default()
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if !scopes.iter().any(|s| s == "openid") {
            return Err(back(
                OAuthError::InvalidScope,
                "The scope must include openid.",
            ));
        }
        if let Some(s) = scopes.iter().find(|s| !client.scopes.contains(s)) {
            return Err(back(
                OAuthError::InvalidScope,
                &format!("The scope {s} is not allowed to this client."),
            ));
        }
        let credential = crate::credential::CredentialAuthorization::from_request(one, &scopes)
            .map_err(|r| {
                let code = if r.in_details {
                    OAuthError::InvalidAuthorizationDetails
                } else {
                    OAuthError::InvalidRequest
                };
                back(code, &r.description)
            })?;
        if credential.is_some()
            && !client
                .scopes
                .iter()
                .any(|s| s == crate::credential::CREDENTIAL)
        {
            return Err(back(
                OAuthError::InvalidScope,
                "This client may not ask for signatures (the credential scope is not allowed to it).",
            ));
        }
        match one("code_challenge_method") {
            Some("S256") => {}
            Some(_) => {
                return Err(back(
                    OAuthError::InvalidRequest,
                    "Only code_challenge_method=S256 is accepted.",
                ));
            }
            None => {
                return Err(back(
                    OAuthError::InvalidRequest,
                    "PKCE is required: send code_challenge with code_challenge_method=S256.",
                ));
            }
        }
        let code_challenge = one("code_challenge")
            .and_then(CodeChallenge::parse)
            .ok_or_else(|| {
                back(
                    OAuthError::InvalidRequest,
                    "code_challenge must be the base64url SHA-256 of the verifier (43 characters).",
                )
            })?;
        let nonce = one("nonce").map(str::to_owned);
        if nonce.as_ref().is_some_and(|n| n.len() > MAX_OPAQUE) {
            return Err(back(OAuthError::InvalidRequest, "nonce is too long."));
        }
        let mut prompt = Vec::new();
        for p in one("prompt")
            .unwrap_or_default()
            .split(' ')
            .filter(|p| !p.is_empty())
        {
            prompt.push(match p {
                "none" => Prompt::None,
                "login" => Prompt::Login,
                "consent" => Prompt::Consent,
                "select_account" => Prompt::SelectAccount,
                _ => {
                    return Err(back(
                        OAuthError::InvalidRequest,
                        &format!("prompt={p} is not a prompt value."),
                    ));
                }
            });
        }
        if prompt.contains(&Prompt::None) && prompt.len() > 1 {
            return Err(back(
                OAuthError::InvalidRequest,
                "prompt=none cannot be combined with other values.",
            ));
        }
        let max_age = match one("max_age") {
            Some(v) => Some(v.parse::<u64>().map_err(|_| {
                back(
                    OAuthError::InvalidRequest,
                    "max_age must be a whole number of seconds.",
                )
            })?),
            None => None,
        };
        let dpop_jkt = one("dpop_jkt").map(str::to_owned);
        // A SHA-256 thumbprint is 43 base64url characters (RFC 7638).
        let thumbprint_like = |j: &str| {
            j.len() == 43
                && j.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if dpop_jkt.as_deref().is_some_and(|j| !thumbprint_like(j)) {
            return Err(back(
                OAuthError::InvalidRequest,
                "dpop_jkt must be a JWK SHA-256 thumbprint (RFC 7638), base64url.",
            ));
        }
        let mut acr_values: Vec<String> = one("acr_values")
            .unwrap_or_default()
            .split(' ')
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect();
        if let Some(claims) = one("claims") {
            let asked = claimed_acr(claims).map_err(|why| back(OAuthError::InvalidRequest, why))?;
            if asked.essential
                && !asked.values.iter().any(|v| {
                    tuaton_core::Ial::from_acr(v).is_some()
                        || tuaton_core::Aal::from_acr(v).is_some()
                })
            {
                return Err(back(
                    OAuthError::UnmetAuthenticationRequirements,
                    "The claims parameter asks for an essential acr Tuaton does not define (see acr_values_supported).",
                ));
            }
            for v in asked.values {
                if !acr_values.contains(&v) {
                    acr_values.push(v);
                }
            }
        }
        Ok((
            Self {
                client_id: client.client_id.clone(),
                redirect_uri,
                scopes,
                state,
                nonce,
                code_challenge,
                prompt,
                max_age,
                acr_values,
                login_hint: one("login_hint").map(str::to_owned),
                dpop_jkt,
                credential,
            },
            client,
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::client::tests::agency;

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn good() -> Vec<(String, String)> {
        [
            ("response_type", "code"),
            ("client_id", "revenue-efiling"),
            ("redirect_uri", "https://efiling.rd.go.th/cb"),
            ("scope", "openid"),
            ("state", "s-123"),
            ("nonce", "n-456"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    }

    fn with(changes: &[(&str, Option<&str>)]) -> Vec<(String, String)> {
        let mut p = good();
        for (k, v) in changes {
            p.retain(|(n, _)| n != k);
            if let Some(v) = v {
                p.push(((*k).to_owned(), (*v).to_owned()));
            }
        }
        p
    }

    fn parse(p: &[(String, String)]) -> Result<AuthorizationRequest, AuthorizeError> {
        let client = agency(&["https://efiling.rd.go.th/cb"]).validate().unwrap();
        AuthorizationRequest::parse(p, |id| (id == client.client_id).then_some(&client))
            .map(|(r, _)| r)
    }

    #[test]
    fn a_well_formed_request_is_accepted() {
        let r = parse(&good()).unwrap();
        assert_eq!(r.scopes, ["openid"]);
        assert_eq!(r.state.as_deref(), Some("s-123"));
        assert_eq!(r.nonce.as_deref(), Some("n-456"));
        assert!(r.prompt.is_empty());
    }

    #[test]
    fn an_essential_acr_in_the_claims_parameter_is_a_level_asked_for() {
        let with_claims = |c: &str| {
            let mut p = good();
            p.push(("claims".into(), c.into()));
            parse(&p)
        };
        let r =
            with_claims(r#"{"id_token":{"acr":{"essential":true,"values":["urn:tuaton:aal:3"]}}}"#)
                .unwrap();
        assert_eq!(r.required_levels().1, Some(tuaton_core::Aal::Aal3));
        let r = with_claims(
            r#"{"userinfo":{"acr":{"value":"urn:tuaton:ial:2.2"}},"id_token":{"given_name":null}}"#,
        )
        .unwrap();
        assert_eq!(r.required_levels().0, Some(tuaton_core::Ial::Ial2_2));
        let e =
            with_claims(r#"{"id_token":{"acr":{"essential":true,"value":"urn:example:loa:9"}}}"#)
                .unwrap_err();
        assert_eq!(e.error(), OAuthError::UnmetAuthenticationRequirements);
        assert!(
            with_claims(r#"{"id_token":{"acr":{"value":"urn:example:loa:9"}}}"#).is_ok(),
            "a voluntary acr Tuaton does not define is ignored"
        );
        for bad in [
            "[]",
            "not json",
            r#"{"id_token":{"acr":{"values":"x"}}}"#,
            r#"{"id_token":3}"#,
        ] {
            assert_eq!(
                with_claims(bad).unwrap_err().error(),
                OAuthError::InvalidRequest,
                "{bad}"
            );
        }
    }

    #[test]
    fn acr_values_name_the_least_levels_of_each_kind() {
        let r = parse(&with(&[(
            "acr_values",
            Some("urn:tuaton:aal:2.2 urn:tuaton:ial:2.1 urn:other:gold urn:tuaton:ial:2.3"),
        )]))
        .unwrap();
        assert_eq!(
            r.required_levels(),
            (
                Some(tuaton_core::Ial::Ial2_3),
                Some(tuaton_core::Aal::Aal2_2)
            )
        );
        assert_eq!(parse(&good()).unwrap().required_levels(), (None, None));
    }

    #[test]
    fn a_parameter_without_a_value_is_as_if_omitted() {
        let r = parse(&with(&[("nonce", Some("")), ("response_mode", Some(""))])).unwrap();
        assert_eq!(r.nonce, None);
        let mut twice = good();
        twice.push(("prompt".into(), String::new()));
        twice.push(("prompt".into(), String::new()));
        assert!(parse(&twice).is_ok(), "empty repeats are no repeats");
    }

    #[test]
    fn an_untrusted_client_or_redirect_never_gets_the_error_sent_to_it() {
        for p in [
            with(&[("client_id", Some("someone-else"))]),
            with(&[("client_id", None)]),
            with(&[("redirect_uri", Some("https://evil.example/cb"))]),
            with(&[("redirect_uri", Some("https://efiling.rd.go.th/cb/../x"))]),
            with(&[("redirect_uri", None)]),
        ] {
            let e = parse(&p).unwrap_err();
            assert!(matches!(e, AuthorizeError::Direct { .. }), "{e:?}");
            assert!(e.redirect("https://id.example.go.th").is_none());
        }
        let mut twice = good();
        twice.push(("redirect_uri".into(), "https://evil.example/cb".into()));
        assert!(matches!(
            parse(&twice).unwrap_err(),
            AuthorizeError::Direct { .. }
        ));
    }

    #[test]
    fn other_refusals_go_back_with_state_and_issuer() {
        for (p, code) in [
            (
                with(&[("response_type", Some("token"))]),
                OAuthError::UnsupportedResponseType,
            ),
            (
                with(&[("response_type", Some("code id_token"))]),
                OAuthError::UnsupportedResponseType,
            ),
            (
                with(&[("scope", Some("profile"))]),
                OAuthError::InvalidScope,
            ),
            (
                with(&[("scope", Some("openid admin"))]),
                OAuthError::InvalidScope,
            ),
            (
                with(&[("code_challenge_method", Some("plain"))]),
                OAuthError::InvalidRequest,
            ),
            (
                with(&[("code_challenge_method", None)]),
                OAuthError::InvalidRequest,
            ),
            (
                with(&[("code_challenge", Some("short"))]),
                OAuthError::InvalidRequest,
            ),
            (
                with(&[("prompt", Some("none login"))]),
                OAuthError::InvalidRequest,
            ),
            (with(&[("max_age", Some("-1"))]), OAuthError::InvalidRequest),
            (
                with(&[("response_mode", Some("fragment"))]),
                OAuthError::InvalidRequest,
            ),
            (
                with(&[("request", Some("eyJ..."))]),
                OAuthError::InvalidRequestObject,
            ),
        ] {
            let e = parse(&p).unwrap_err();
            assert_eq!(e.error(), code, "{p:?}");
            let url = e.redirect("https://id.example.go.th").unwrap();
            let q: Vec<(String, String)> = url.query_pairs().into_owned().collect();
            assert!(url.as_str().starts_with("https://efiling.rd.go.th/cb?"));
            assert!(q.contains(&("error".into(), code.as_str().into())));
            assert!(q.contains(&("state".into(), "s-123".into())));
            assert!(q.contains(&("iss".into(), "https://id.example.go.th".into())));
        }
        let mut twice = good();
        twice.push(("scope".into(), "openid".into()));
        assert_eq!(
            parse(&twice).unwrap_err().error(),
            OAuthError::InvalidRequest
        );
    }
}
