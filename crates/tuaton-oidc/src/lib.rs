//! Tuaton's OpenID Provider: the protocol logic.
//!
//! Scope: what an authorization server decides, as OpenID Connect Core 1.0,
//! OAuth 2.0 (RFC 6749), PKCE (RFC 7636), RFC 9207 and the OAuth 2.0
//! Security BCP (RFC 9700) say it must — registered clients and their
//! redirect URIs ([`client`]), the claims beyond `sub` and the consent
//! notice that releases them ([`claims`]), the authorization request validated into a
//! typed value or an error that says whether it may be sent back to the
//! client ([`authorize`]), PKCE ([`pkce`]), pairwise subject identifiers
//! ([`subject`]), ID tokens and RFC 9068 access tokens signed through the
//! key backend ([`id_token`], [`access_token`], [`jws`]), the token request,
//! pushed authorization requests (RFC 9126) and token queries for revocation
//! and introspection ([`token`]) with `private_key_jwt` client assertions
//! ([`assertion`]), signed request objects (JAR, RFC 9101,
//! [`request_object`]), DPoP proofs and nonces (RFC 9449, [`dpop`]),
//! RP-initiated logout ([`logout`]), the CSC API v2.0 signature
//! authorization an authorization request carries ([`credential`]), and the discovery document
//! ([`discovery`]). Every check takes the time as a parameter.
//!
//! Non-goals: HTTP (the server's routes parse and render), storage and
//! sessions (the service layer keeps codes, consents and clients), and
//! people (who is logged in and at what level is the service layer's).
//!
//! Hand-written here, as the protocol itself: the request rules and the
//! compact JWS serialisation over the key backend (JOSE crates sign with
//! keys they hold; Tuaton's keys never leave the backend). Verifying JWTs
//! that come back — client assertions, access tokens — is the `jsonwebtoken`
//! library's, with the claim rules checked here against the time given.

pub mod access_token;
pub mod assertion;
pub mod authorize;
pub mod claims;
pub mod client;
pub mod credential;
pub mod discovery;
pub mod dpop;
pub mod error;
pub mod id_token;
pub mod jws;
pub mod logout;
pub mod pkce;
pub mod request_object;
pub mod subject;
pub mod token;

pub use access_token::AccessTokenClaims;
pub use authorize::{AuthorizationRequest, Prompt};
pub use claims::Claim;
pub use client::{CLIENT_FIELDS, ClientConfig, ClientError, Purpose, SubjectType, TokenAuth};
pub use credential::CredentialAuthorization;
pub use error::{AuthorizeError, OAuthError, TokenError};
pub use id_token::IdTokenClaims;
pub use pkce::{CodeChallenge, CodeVerifier};
pub use subject::PairwiseSalt;
pub use token::{ClientAuthentication, Grant, PushedRequest, TokenQuery, TokenRequest};
