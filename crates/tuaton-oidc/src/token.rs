//! The token request (RFC 6749 §3.2, §4.1.3), read into a typed value:
//! how the client authenticates and what it redeems.
//!
//! Rules: every parameter at most once (§3.2); one authentication method
//! per request (§2.3) — HTTP Basic, a JWT assertion, or a public client
//! naming itself; Basic credentials are form-urlencoded before base64
//! (§2.3.1); only the `authorization_code` grant today, with the PKCE
//! verifier required (RFC 7636 §4.5).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use crate::assertion::ASSERTION_TYPE;
use crate::error::{OAuthError, TokenError};
use crate::pkce::CodeVerifier;

/// How a client authenticated at the token endpoint, before it is checked.
#[derive(Debug)]
pub enum ClientAuthentication {
    /// `client_secret_basic`.
    Basic {
        /// The client id.
        client_id: String,
        /// The secret, as sent.
        secret: Zeroizing<String>,
    },
    /// `private_key_jwt`: a signed JWT.
    Assertion {
        /// The `client_id` parameter, when sent beside the assertion.
        client_id: Option<String>,
        /// The compact JWT.
        assertion: String,
    },
    /// `none`: a public client that only names itself.
    Public {
        /// The client id.
        client_id: String,
    },
}

impl ClientAuthentication {
    /// The client id the request claims (an assertion's is its `sub`, read unverified).
    pub fn claimed_id(&self) -> Option<String> {
        match self {
            Self::Basic { client_id, .. } | Self::Public { client_id } => Some(client_id.clone()),
            Self::Assertion {
                client_id: Some(id),
                ..
            } => Some(id.clone()),
            Self::Assertion { assertion, .. } => unverified_subject(assertion),
        }
    }
}

/// An assertion's `sub`, read without verifying it: only to find the
/// client whose keys then verify it.
fn unverified_subject(jwt: &str) -> Option<String> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = jwt.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("sub")?.as_str().map(str::to_owned)
}

/// A code to redeem.
#[derive(Debug)]
pub struct CodeRedemption {
    /// The code.
    pub code: Zeroizing<String>,
    /// The redirect URI the authorization request named.
    pub redirect_uri: String,
    /// The PKCE verifier.
    pub verifier: CodeVerifier,
}

/// What a token request asks for.
#[derive(Debug)]
pub enum Grant {
    /// `authorization_code`.
    AuthorizationCode(CodeRedemption),
    /// `refresh_token` (RFC 6749 §6): the token, spent and replaced.
    RefreshToken(Zeroizing<String>),
    /// `client_credentials` (RFC 6749 §4.4): the client for itself.
    ClientCredentials {
        /// The scope asked for, if any.
        scope: Option<String>,
    },
}

/// A token request, read.
#[derive(Debug)]
pub struct TokenRequest {
    /// How the client authenticated.
    pub auth: ClientAuthentication,
    /// What it asks for.
    pub grant: Grant,
}

impl TokenRequest {
    /// Reads the form `params` (repeats kept) and the `Authorization` header.
    pub fn parse(
        params: &[(String, String)],
        authorization: Option<&str>,
    ) -> Result<Self, TokenError> {
        let form = single(params)?;
        let one = |name: &str| form.get(name).copied();
        let auth = authentication(&form, authorization)?;
        let grant = match one("grant_type") {
            Some("authorization_code") => {
                let code = one("code").ok_or_else(|| TokenError::request("code is missing."))?;
                let redirect_uri = one("redirect_uri")
                    .ok_or_else(|| TokenError::request("redirect_uri is missing."))?;
                let verifier = one("code_verifier").ok_or_else(|| {
                    TokenError::request("code_verifier is missing (PKCE is required).")
                })?;
                let verifier = CodeVerifier::parse(verifier).ok_or_else(|| {
                    TokenError::request("code_verifier must be 43 to 128 unreserved characters.")
                })?;
                Grant::AuthorizationCode(CodeRedemption {
                    code: Zeroizing::new(code.to_owned()),
                    redirect_uri: redirect_uri.to_owned(),
                    verifier,
                })
            }
            Some("client_credentials") => Grant::ClientCredentials {
                scope: one("scope").map(str::to_owned),
            },
            Some("refresh_token") => {
                let token = one("refresh_token")
                    .ok_or_else(|| TokenError::request("refresh_token is missing."))?;
                if one("scope").is_some() {
                    return Err(TokenError::new(
                        OAuthError::InvalidScope,
                        "A refresh keeps the scopes granted; send no scope.",
                    ));
                }
                Grant::RefreshToken(Zeroizing::new(token.to_owned()))
            }
            Some(other) => {
                return Err(TokenError::new(
                    OAuthError::UnsupportedGrantType,
                    format!("The grant_type {other} is not supported."),
                ));
            }
            None => return Err(TokenError::request("grant_type is missing.")),
        };
        Ok(Self { auth, grant })
    }
}

/// A request about a token the client holds: revocation (RFC 7009 §2.1)
/// or introspection (RFC 7662 §2.1).
#[derive(Debug)]
pub struct TokenQuery {
    /// How the client authenticated.
    pub auth: ClientAuthentication,
    /// The token.
    pub token: Zeroizing<String>,
}

impl TokenQuery {
    /// Reads the form `params` and the `Authorization` header. A
    /// `token_type_hint` is allowed and needs no heeding: Tuaton tells its
    /// tokens apart by their form.
    pub fn parse(
        params: &[(String, String)],
        authorization: Option<&str>,
    ) -> Result<Self, TokenError> {
        let form = single(params)?;
        let auth = authentication(&form, authorization)?;
        let one = |name: &str| form.get(name).copied();
        let token = one("token").ok_or_else(|| TokenError::request("token is missing."))?;
        Ok(Self {
            auth,
            token: Zeroizing::new(token.to_owned()),
        })
    }
}

/// A pushed authorization request (RFC 9126 §2.1): the client's
/// authentication and the authorization request's own parameters.
#[derive(Debug)]
pub struct PushedRequest {
    /// How the client authenticated.
    pub auth: ClientAuthentication,
    /// The authorization request, without the authentication's parameters.
    pub params: Vec<(String, String)>,
}

impl PushedRequest {
    /// Reads the form `params` and the `Authorization` header.
    pub fn parse(
        params: &[(String, String)],
        authorization: Option<&str>,
    ) -> Result<Self, TokenError> {
        let form = single(params)?;
        let auth = authentication(&form, authorization)?;
        let params = form
            .iter()
            .filter(|(k, _)| {
                !matches!(
                    **k,
                    "client_assertion" | "client_assertion_type" | "client_secret"
                )
            })
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Ok(Self { auth, params })
    }
}

/// The form's parameters, each at most once (RFC 6749 §3.2); one sent
/// without a value is as if omitted.
fn single(params: &[(String, String)]) -> Result<BTreeMap<&str, &str>, TokenError> {
    let mut form = BTreeMap::new();
    for (k, v) in params.iter().filter(|(_, v)| !v.is_empty()) {
        if form.insert(k.as_str(), v.as_str()).is_some() {
            return Err(TokenError::request(format!("{k} is given more than once.")));
        }
    }
    Ok(form)
}

/// The client authentication a form and its `Authorization` header carry.
fn authentication(
    form: &BTreeMap<&str, &str>,
    authorization: Option<&str>,
) -> Result<ClientAuthentication, TokenError> {
    let one = |name: &str| form.get(name).copied();
    client_authentication(
        authorization,
        one("client_id"),
        one("client_secret"),
        one("client_assertion_type"),
        one("client_assertion"),
    )
}

/// The one authentication method a request uses.
fn client_authentication(
    authorization: Option<&str>,
    client_id: Option<&str>,
    client_secret: Option<&str>,
    assertion_type: Option<&str>,
    assertion: Option<&str>,
) -> Result<ClientAuthentication, TokenError> {
    if client_secret.is_some() {
        return Err(TokenError::client(
            "client_secret_post is not supported; send the secret with HTTP Basic.",
        ));
    }
    let basic = authorization.map(parse_basic).transpose()?;
    match (basic, assertion_type, assertion) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(TokenError::request(
            "Use one client authentication method per request.",
        )),
        (Some((id, secret)), None, None) => {
            if client_id.is_some_and(|c| c != id) {
                return Err(TokenError::client(
                    "client_id differs from the HTTP Basic user.",
                ));
            }
            Ok(ClientAuthentication::Basic {
                client_id: id,
                secret,
            })
        }
        (None, Some(ASSERTION_TYPE), Some(jwt)) => Ok(ClientAuthentication::Assertion {
            client_id: client_id.map(str::to_owned),
            assertion: jwt.to_owned(),
        }),
        (None, Some(_), Some(_)) => Err(TokenError::client(format!(
            "client_assertion_type must be {ASSERTION_TYPE}."
        ))),
        (None, Some(_), None) | (None, None, Some(_)) => Err(TokenError::request(
            "client_assertion and client_assertion_type go together.",
        )),
        (None, None, None) => match client_id {
            Some(id) => Ok(ClientAuthentication::Public {
                client_id: id.to_owned(),
            }),
            None => Err(TokenError::client("The client did not identify itself.")),
        },
    }
}

/// `Authorization: Basic …` as RFC 6749 §2.3.1 has it: the id and the
/// secret each form-urlencoded, then joined with `:` and base64-encoded.
fn parse_basic(header: &str) -> Result<(String, Zeroizing<String>), TokenError> {
    let bad =
        || TokenError::client("The Authorization header is not HTTP Basic client credentials.");
    let (scheme, value) = header.trim().split_once(' ').ok_or_else(bad)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(bad());
    }
    let decoded = Zeroizing::new(STANDARD.decode(value.trim()).map_err(|_| bad())?);
    let text = std::str::from_utf8(&decoded).map_err(|_| bad())?;
    let (id, secret) = text.split_once(':').ok_or_else(bad)?;
    let unescape = |s: &str| -> String {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let id = unescape(id);
    if id.is_empty() {
        return Err(bad());
    }
    Ok((id, Zeroizing::new(unescape(secret))))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn code(extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut p = form(&[
            ("grant_type", "authorization_code"),
            ("code", "c-1"),
            ("redirect_uri", "https://efiling.rd.go.th/cb"),
            ("code_verifier", VERIFIER),
        ]);
        p.extend(form(extra));
        p
    }

    #[test]
    fn each_authentication_method_is_read() {
        let r = TokenRequest::parse(&code(&[("client_id", "app")]), None).unwrap();
        assert!(
            matches!(r.auth, ClientAuthentication::Public { ref client_id } if client_id == "app")
        );
        // "a b:c" and "p@ss:w%rd", form-urlencoded, then base64.
        let header = format!("Basic {}", STANDARD.encode("a+b%3Ac:p%40ss%3Aw%25rd"));
        let r = TokenRequest::parse(&code(&[]), Some(&header)).unwrap();
        let ClientAuthentication::Basic { client_id, secret } = r.auth else {
            unreachable!("Basic credentials are read as Basic");
        };
        assert_eq!(
            (client_id.as_str(), secret.as_str()),
            ("a b:c", "p@ss:w%rd")
        );
        let r = TokenRequest::parse(
            &code(&[
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", "x.eyJzdWIiOiJhcHAifQ.y"),
            ]),
            None,
        )
        .unwrap();
        assert_eq!(r.auth.claimed_id().as_deref(), Some("app"));
    }

    #[test]
    fn a_pushed_request_keeps_its_parameters_and_not_the_credentials() {
        let p = PushedRequest::parse(
            &form(&[
                ("response_type", "code"),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", "x.eyJzdWIiOiJhcHAifQ.y"),
                ("scope", "openid"),
            ]),
            None,
        )
        .unwrap();
        assert_eq!(p.auth.claimed_id().as_deref(), Some("app"));
        let names: Vec<&str> = p.params.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["response_type", "scope"]);
        assert!(
            PushedRequest::parse(
                &form(&[("scope", "a"), ("scope", "b"), ("client_id", "app")]),
                None
            )
            .is_err()
        );
    }

    #[test]
    fn malformed_requests_are_refused_with_the_standard_code() {
        let basic = format!("Basic {}", STANDARD.encode("app:secret"));
        for (params, header, code_expected) in [
            (code(&[("code", "again")]), None, OAuthError::InvalidRequest),
            (code(&[]), None, OAuthError::InvalidClient),
            (
                code(&[("client_id", "app"), ("client_secret", "s")]),
                None,
                OAuthError::InvalidClient,
            ),
            (
                code(&[
                    ("client_assertion_type", ASSERTION_TYPE),
                    ("client_assertion", "j"),
                ]),
                Some(basic.as_str()),
                OAuthError::InvalidRequest,
            ),
            (
                code(&[
                    ("client_assertion_type", "urn:other"),
                    ("client_assertion", "j"),
                ]),
                None,
                OAuthError::InvalidClient,
            ),
            (
                code(&[("client_id", "other")]),
                Some(basic.as_str()),
                OAuthError::InvalidClient,
            ),
            (code(&[]), Some("Bearer abc"), OAuthError::InvalidClient),
            (
                form(&[("grant_type", "password"), ("client_id", "app")]),
                None,
                OAuthError::UnsupportedGrantType,
            ),
            (
                form(&[
                    ("grant_type", "authorization_code"),
                    ("client_id", "app"),
                    ("code", "c"),
                    ("redirect_uri", "https://a/cb"),
                ]),
                None,
                OAuthError::InvalidRequest,
            ),
            (
                form(&[
                    ("grant_type", "authorization_code"),
                    ("client_id", "app"),
                    ("code", "c"),
                    ("redirect_uri", "https://a/cb"),
                    ("code_verifier", "short"),
                ]),
                None,
                OAuthError::InvalidRequest,
            ),
            (
                form(&[("client_id", "app")]),
                None,
                OAuthError::InvalidRequest,
            ),
        ] {
            let e = TokenRequest::parse(&params, header).unwrap_err();
            assert_eq!(e.error, code_expected, "{params:?} {header:?}: {e}");
        }
    }
}
