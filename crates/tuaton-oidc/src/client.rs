//! Registered clients: the agencies' applications, with the redirect URIs
//! they may be sent back to and how their subjects are formed.

use serde::{Deserialize, Serialize};
use tuaton_core::SignatureAlgorithm;
use url::Url;

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenAuth {
    /// A signed JWT with the client's key (RFC 7523): the default.
    PrivateKeyJwt,
    /// HTTP Basic with a secret: a documented compatibility option.
    ClientSecretBasic,
    /// A public client (a native or browser app): PKCE alone.
    None,
}

/// How the client sees a person's `sub`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SubjectType {
    /// One identifier per sector (OpenID Connect Core 1.0 §8.1): clients of
    /// one sector share it, clients of different sectors cannot correlate.
    Pairwise {
        /// The sector, a host name (the redirect URIs' host by default).
        sector: String,
    },
    /// The account id itself, the same for every client that has it.
    Public,
}

/// A client as registered. Reading a stored one ignores fields this build
/// does not know (a row written by a newer build still reads after a
/// rollback); an administrator's request is held to [`CLIENT_FIELDS`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientConfig {
    /// The `client_id`.
    pub client_id: String,
    /// The agency and application, as the consent step names it.
    pub name: String,
    /// Where authorization responses may go; matched exactly (RFC 9700 §4.1.3).
    pub redirect_uris: Vec<Url>,
    /// How its subjects are formed.
    pub subject: SubjectType,
    /// How it authenticates at the token endpoint.
    pub token_auth: TokenAuth,
    /// Scopes it may ask for (`openid` always among them).
    pub scopes: Vec<String>,
    /// How its ID tokens are signed.
    pub id_token_alg: SignatureAlgorithm,
    /// The public keys its `private_key_jwt` assertions are signed with
    /// (an RFC 7517 JWK Set), for that method only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<serde_json::Value>,
    /// Where the client publishes that JWK Set instead (`jwks_uri`), so it
    /// can rotate its keys on its own; Tuaton fetches and caches it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<Url>,
    /// How long its access and ID tokens last, in seconds.
    #[serde(default = "default_token_lifetime")]
    pub token_lifetime_secs: u32,
    /// Its authorization requests must be pushed (RFC 9126 §5,
    /// `require_pushed_authorization_requests`): on by default for
    /// confidential clients, so their requests never travel through the
    /// browser where they could be read or changed.
    #[serde(default)]
    pub require_par: bool,
    /// It may ask for tokens for itself (`client_credentials`, RFC 6749
    /// §4.4): an agency's back end calling Tuaton for no person. Confidential
    /// clients only.
    #[serde(default)]
    pub client_credentials: bool,
    /// Where the browser may go after an RP-initiated logout; matched exactly.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post_logout_redirect_uris: Vec<Url>,
    /// Its tokens must be DPoP-bound (RFC 9449 §5.2,
    /// `dpop_bound_access_tokens`): every token request carries a proof, so
    /// a copied access or refresh token is worthless without the client's
    /// key. On by default for new registrations.
    #[serde(default)]
    pub dpop_bound_access_tokens: bool,
    /// What the agency uses the person's data for, which the consent page
    /// names; needed when its scopes release claims beyond `sub`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<Purpose>,
    /// Where Tuaton posts a logout token when the person's session with
    /// the client ends (OpenID Connect Back-Channel Logout 1.0 §2.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<Url>,
}

/// Every field of [`ClientConfig`] by its JSON name: what an
/// administrator's registration or change may name (a test keeps the list
/// and the type the same).
pub const CLIENT_FIELDS: &[&str] = &[
    "client_id",
    "name",
    "redirect_uris",
    "subject",
    "token_auth",
    "scopes",
    "id_token_alg",
    "jwks",
    "jwks_uri",
    "token_lifetime_secs",
    "require_par",
    "client_credentials",
    "post_logout_redirect_uris",
    "dpop_bound_access_tokens",
    "purpose",
    "backchannel_logout_uri",
];

impl ClientConfig {
    /// A registration on the secure defaults (OpenID Connect profile of
    /// FAPI 2.0's Security Profile): `private_key_jwt`, pushed requests,
    /// DPoP-bound tokens, ES256 ID tokens, pairwise subjects in the redirect
    /// URIs' sector, `openid` alone, five-minute tokens. Redirect URIs and
    /// keys are the registrant's to add; [`ClientConfig::validate`] refuses
    /// the registration until they are there.
    pub fn new(client_id: impl Into<String>) -> Self {
        let client_id = client_id.into();
        Self {
            name: client_id.clone(),
            client_id,
            redirect_uris: Vec::new(),
            subject: SubjectType::Pairwise {
                sector: String::new(),
            },
            token_auth: TokenAuth::PrivateKeyJwt,
            scopes: vec!["openid".into()],
            id_token_alg: SignatureAlgorithm::Es256,
            jwks: None,
            jwks_uri: None,
            token_lifetime_secs: default_token_lifetime(),
            require_par: true,
            client_credentials: false,
            post_logout_redirect_uris: Vec::new(),
            dpop_bound_access_tokens: true,
            purpose: None,
            backchannel_logout_uri: None,
        }
    }
}

/// A client's purpose: the key its consents are recorded under, and the
/// sentence the person reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Purpose {
    /// A short identifier (`tax-filing`): consent records name it.
    pub id: String,
    /// The sentence shown, in Thai and English (`ยื่นแบบภาษี · Filing your taxes`).
    pub text: String,
}

impl Purpose {
    /// The version consent records keep: the first 16 hex digits of the
    /// text's SHA-256, so a changed text is asked for again.
    pub fn version(&self) -> String {
        let d = ring::digest::digest(&ring::digest::SHA256, self.text.as_bytes());
        d.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Five minutes: a token a thief copies is soon worthless.
fn default_token_lifetime() -> u32 {
    300
}

/// The scopes a client can be given: `openid` (the `sub` alone), and the
/// scopes that release claims (`profile`, `citizen_id`, `business`, see
/// [`crate::claims`]), each released only with the person's consent; and
/// the Cloud Signature Consortium API's `service` (list and describe the
/// person's signing credential) and `credential` (ask the person to
/// confirm hashes for signing, see [`crate::credential`]).
pub const SUPPORTED_SCOPES: &[&str] = &[
    "openid",
    "profile",
    "citizen_id",
    "business",
    crate::credential::SERVICE,
    crate::credential::CREDENTIAL,
];

/// The longest token lifetime a client can be given: an hour.
pub const MAX_TOKEN_LIFETIME_SECS: u32 = 3600;

/// Why a client registration is refused; the sentence names the value's field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The client id is empty, too long, or has characters outside `[A-Za-z0-9._-]`.
    #[error("client_id must be 1 to 64 characters of letters, digits, '.', '_' or '-'")]
    ClientId,
    /// No redirect URI.
    #[error("at least one redirect URI is needed")]
    NoRedirectUri,
    /// A redirect URI breaks a rule; the rule is given.
    #[error("redirect URI {uri}: {rule}")]
    RedirectUri {
        /// The URI.
        uri: String,
        /// What is wrong.
        rule: &'static str,
    },
    /// Pairwise subjects over redirect URIs of several hosts need the sector named.
    #[error("the redirect URIs have several hosts; name the sector (OpenID Connect Core 1.0 §8.1)")]
    SectorNeeded,
    /// The scopes do not include `openid`.
    #[error("the client's scopes must include openid")]
    NoOpenidScope,
    /// A scope Tuaton does not offer.
    #[error("the scope {0} is not offered (offered: openid, profile, citizen_id, business)")]
    UnknownScope(String),
    /// Scopes that release claims without a purpose to show.
    #[error(
        "scopes beyond openid release personal data: give the purpose (an id of letters, digits, '-', '_', '.', and a sentence of at most 300 characters)"
    )]
    PurposeNeeded,
    /// `private_key_jwt` without keys, or keys for another method.
    #[error("{0}")]
    Keys(&'static str),
    /// `client_credentials` for a client that cannot authenticate.
    #[error("client_credentials is for confidential clients only")]
    PublicClientCredentials,
    /// A token lifetime of zero or over an hour.
    #[error("the token lifetime must be 1 to 3600 seconds")]
    TokenLifetime,
}

impl ClientConfig {
    /// Checks the registration; with pairwise subjects and no sector named,
    /// the sector is the redirect URIs' one host.
    pub fn validate(mut self) -> Result<Self, ClientError> {
        let id_ok = !self.client_id.is_empty()
            && self.client_id.len() <= 64
            && self
                .client_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !id_ok {
            return Err(ClientError::ClientId);
        }
        if self.redirect_uris.is_empty() {
            return Err(ClientError::NoRedirectUri);
        }
        for uri in self
            .redirect_uris
            .iter()
            .chain(&self.post_logout_redirect_uris)
        {
            check_redirect_uri(uri, self.token_auth == TokenAuth::None)?;
        }
        if let Some(uri) = &self.backchannel_logout_uri {
            // Tuaton's server posts to it: https, or http to loopback; never
            // an app's private-use scheme (Back-Channel Logout 1.0 §2.2).
            check_redirect_uri(uri, false)?;
        }
        if !self.scopes.iter().any(|s| s == "openid") {
            return Err(ClientError::NoOpenidScope);
        }
        if let Some(s) = self
            .scopes
            .iter()
            .find(|s| !SUPPORTED_SCOPES.contains(&s.as_str()))
        {
            return Err(ClientError::UnknownScope(s.clone()));
        }
        self.scopes.sort_unstable();
        self.scopes.dedup();
        let purpose_ok = self.purpose.as_ref().is_some_and(|p| {
            !p.id.is_empty()
                && p.id.len() <= 64
                && p.id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
                && !p.text.trim().is_empty()
                && p.text.chars().count() <= 300
        });
        let releases = !crate::claims::requested(&self.scopes).is_empty();
        if (releases || self.purpose.is_some()) && !purpose_ok {
            return Err(ClientError::PurposeNeeded);
        }
        match (self.token_auth, &self.jwks, &self.jwks_uri) {
            (_, Some(_), Some(_)) => {
                return Err(ClientError::Keys(
                    "give the client's keys inline or as jwks_uri, not both",
                ));
            }
            (TokenAuth::PrivateKeyJwt, None, None) => {
                return Err(ClientError::Keys(
                    "private_key_jwt needs the client's public keys (a JWK Set, or its jwks_uri)",
                ));
            }
            (TokenAuth::PrivateKeyJwt, Some(set), None) => crate::assertion::check_key_set(set)?,
            (TokenAuth::PrivateKeyJwt, None, Some(uri)) => {
                // Fetched by Tuaton's server: https, or http to loopback in
                // development; never an app's private-use scheme.
                check_redirect_uri(uri, false)?;
            }
            (_, Some(_), _) | (_, _, Some(_)) => {
                return Err(ClientError::Keys(
                    "public keys are for private_key_jwt clients only",
                ));
            }
            (_, None, None) => {}
        }
        if self.client_credentials && self.token_auth == TokenAuth::None {
            return Err(ClientError::PublicClientCredentials);
        }
        if self.token_lifetime_secs == 0 || self.token_lifetime_secs > MAX_TOKEN_LIFETIME_SECS {
            return Err(ClientError::TokenLifetime);
        }
        if let SubjectType::Pairwise { sector } = &mut self.subject
            && sector.is_empty()
        {
            let mut hosts: Vec<&str> = self
                .redirect_uris
                .iter()
                .filter_map(Url::host_str)
                .collect();
            hosts.sort_unstable();
            hosts.dedup();
            match hosts[..] {
                [one] => *sector = one.to_owned(),
                _ => return Err(ClientError::SectorNeeded),
            }
        }
        Ok(self)
    }

    /// The registered redirect URI exactly equal to `given`, if any.
    pub fn redirect_uri(&self, given: &str) -> Option<&Url> {
        self.redirect_uris.iter().find(|u| u.as_str() == given)
    }
}

/// RFC 6749 §3.1.2, RFC 8252 §7 and RFC 9700 §4.1: absolute, no fragment,
/// `https`; plain `http` only to a loopback address; a private-use scheme
/// (reverse domain name) only for a public (native) client.
fn check_redirect_uri(uri: &Url, public: bool) -> Result<(), ClientError> {
    let bad = |rule| ClientError::RedirectUri {
        uri: uri.to_string(),
        rule,
    };
    if uri.fragment().is_some() {
        return Err(bad("must not have a fragment"));
    }
    match uri.scheme() {
        "https" => {
            if uri.host_str().is_none_or(str::is_empty) {
                return Err(bad("needs a host"));
            }
        }
        "http" => {
            let loopback = match uri.host() {
                Some(url::Host::Ipv4(a)) => a.is_loopback(),
                Some(url::Host::Ipv6(a)) => a.is_loopback(),
                Some(url::Host::Domain(d)) => d == "localhost",
                None => false,
            };
            if !loopback {
                return Err(bad("plain http only to a loopback address (RFC 8252 §7.3)"));
            }
        }
        scheme if scheme.contains('.') => {
            if !public {
                return Err(bad(
                    "a private-use scheme is for native (public) clients only",
                ));
            }
        }
        _ => {
            return Err(bad(
                "https, loopback http, or a reverse-domain private-use scheme",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The list an administrator's request is held to is every field.
    #[test]
    fn client_fields_name_every_field() {
        let mut full = agency(&["https://efiling.rd.example/cb"]);
        full.jwks_uri = Some(Url::parse("https://efiling.rd.example/jwks").unwrap());
        full.post_logout_redirect_uris = full.redirect_uris.clone();
        full.purpose = Some(Purpose {
            id: "tax".into(),
            text: "tax".into(),
        });
        full.backchannel_logout_uri = Some(Url::parse("https://efiling.rd.example/bcl").unwrap());
        let v = serde_json::to_value(&full).unwrap();
        let mut named: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        named.sort_unstable();
        let mut listed = CLIENT_FIELDS.to_vec();
        listed.sort_unstable();
        assert_eq!(named, listed);
    }

    pub(crate) fn agency(redirects: &[&str]) -> ClientConfig {
        ClientConfig {
            client_id: "revenue-efiling".into(),
            name: "กรมสรรพากร e-Filing".into(),
            redirect_uris: redirects.iter().map(|u| Url::parse(u).unwrap()).collect(),
            subject: SubjectType::Pairwise {
                sector: String::new(),
            },
            token_auth: TokenAuth::PrivateKeyJwt,
            scopes: vec!["openid".into()],
            id_token_alg: SignatureAlgorithm::Es256,
            jwks: Some(serde_json::json!({ "keys": [{
                "kty": "EC", "crv": "P-256", "kid": "agency-1",
                "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
            }]})),
            jwks_uri: None,
            token_lifetime_secs: 300,
            require_par: true,
            post_logout_redirect_uris: Vec::new(),
            client_credentials: false,
            dpop_bound_access_tokens: false,
            purpose: None,
            backchannel_logout_uri: None,
        }
    }

    /// A client with a fresh P-256 key, registered as `k1`; the signing
    /// half comes back as PKCS#8.
    pub(crate) fn client_with_key() -> (ClientConfig, Vec<u8>) {
        use base64::Engine as _;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use ring::rand::SystemRandom;
        use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let point = pair.public_key().as_ref();
        let mut client = agency(&["https://efiling.rd.go.th/cb"]);
        client.jwks = Some(serde_json::json!({ "keys": [{
            "kty": "EC", "crv": "P-256", "kid": "k1",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        }]}));
        (client.validate().unwrap(), pkcs8.as_ref().to_vec())
    }

    #[test]
    fn keys_come_inline_or_from_a_jwks_uri_the_server_may_fetch() {
        let mut both = agency(&["https://efiling.rd.go.th/cb"]);
        both.jwks_uri = Some(Url::parse("https://efiling.rd.go.th/jwks.json").unwrap());
        assert!(matches!(both.clone().validate(), Err(ClientError::Keys(_))));
        both.jwks = None;
        assert!(both.clone().validate().is_ok());
        for bad in [
            "http://efiling.rd.go.th/jwks.json",
            "th.go.rd.app:/jwks",
            "https://x/jwks#f",
        ] {
            let mut c = both.clone();
            c.jwks_uri = Some(Url::parse(bad).unwrap());
            assert!(c.validate().is_err(), "{bad}");
        }
        let mut public = agency(&["https://efiling.rd.go.th/cb"]);
        public.token_auth = TokenAuth::None;
        public.jwks = None;
        public.jwks_uri = Some(Url::parse("https://efiling.rd.go.th/jwks.json").unwrap());
        assert!(
            public.validate().is_err(),
            "keys are for private_key_jwt clients"
        );
    }

    #[test]
    fn redirect_uris_follow_the_rules() {
        let ok = agency(&[
            "https://efiling.rd.go.th/cb",
            "https://efiling.rd.go.th/cb2",
        ])
        .validate()
        .unwrap();
        assert_eq!(
            ok.subject,
            SubjectType::Pairwise {
                sector: "efiling.rd.go.th".into()
            }
        );
        assert!(ok.redirect_uri("https://efiling.rd.go.th/cb").is_some());
        assert!(
            ok.redirect_uri("https://efiling.rd.go.th/cb/").is_none(),
            "exact match only"
        );
        assert!(ok.redirect_uri("https://efiling.rd.go.th/cb?x=1").is_none());
        for (bad, says) in [
            ("https://efiling.rd.go.th/cb#frag", "fragment"),
            ("http://efiling.rd.go.th/cb", "loopback"),
            ("th.go.rd.app:/cb", "native"),
            ("javascript:alert(1)", "https"),
        ] {
            let e = agency(&[bad]).validate().unwrap_err();
            assert!(e.to_string().contains(says), "{bad}: {e}");
        }
        assert!(agency(&["http://127.0.0.1:5000/cb"]).validate().is_ok());
        let mut native = agency(&["th.go.rd.app:/cb"]);
        native.token_auth = TokenAuth::None;
        native.jwks = None;
        native.subject = SubjectType::Pairwise {
            sector: "rd.go.th".into(),
        };
        assert!(native.validate().is_ok());
        assert_eq!(
            agency(&["https://a.go.th/cb", "https://b.go.th/cb"]).validate(),
            Err(ClientError::SectorNeeded)
        );
        let mut no_openid = agency(&["https://a.go.th/cb"]);
        no_openid.scopes = vec!["profile".into()];
        assert_eq!(no_openid.validate(), Err(ClientError::NoOpenidScope));
        let mut unknown = agency(&["https://a.go.th/cb"]);
        unknown.scopes = vec!["openid".into(), "admin".into()];
        assert_eq!(
            unknown.validate(),
            Err(ClientError::UnknownScope("admin".into()))
        );
        let mut keyless = agency(&["https://a.go.th/cb"]);
        keyless.jwks = None;
        assert!(matches!(keyless.validate(), Err(ClientError::Keys(_))));
        let mut secret_with_keys = agency(&["https://a.go.th/cb"]);
        secret_with_keys.token_auth = TokenAuth::ClientSecretBasic;
        assert!(matches!(
            secret_with_keys.validate(),
            Err(ClientError::Keys(_))
        ));
        let mut forever = agency(&["https://a.go.th/cb"]);
        forever.token_lifetime_secs = 86_400;
        assert_eq!(forever.validate(), Err(ClientError::TokenLifetime));
    }
}
