//! The OpenID Provider's flows: an agency's authorization request, the
//! passkey login that answers it, the code, and the tokens.
//!
//! The code flow is typed states handed from step to step:
//! 1. [`Idm::begin_authorization`] validates the request against the
//!    registered client (or takes the one the client pushed before,
//!    [`Idm::push_authorization`], RFC 9126) and keeps it as a ceremony
//!    ([`PendingAuthorization`]);
//! 2. the person logs in with a passkey (the login flow, `login.rs`), and
//!    [`Idm::complete_authorization`] checks the levels `acr_values` asked
//!    for, spends the request and stores a code under its digest, bound to
//!    the client, the redirect URI, the PKCE challenge and the login — in one
//!    transaction, with the audit record;
//! 3. [`Idm::redeem`] authenticates the client, reads and checks the code,
//!    signs the ID token and the access token through the key backend, and
//!    only then spends the code in the transaction that records the grant
//!    and its first refresh token: a refused or failed redemption writes
//!    nothing. A code that comes back after it was redeemed revokes the
//!    grant it gave (RFC 6749 §4.1.2). The same entry answers refreshes
//!    (each token spent and replaced; a spent one revokes the family) and
//!    `client_credentials`;
//! 4. [`Idm::userinfo`], [`Idm::introspect`] (RFC 7662) and [`Idm::revoke`]
//!    (RFC 7009) answer while the grant stands; [`Idm::plan_logout`] and
//!    [`Idm::end_session`] carry out RP-initiated logout.
//!
//! A grant is the unit that ends: revocation, logout, a reused code or
//! refresh token, and the account events that end sessions (recovery, a
//! cloned authenticator, logging out everywhere, suspension) revoke it, and
//! with it every token it issued.
//!
//! Every OIDC login asks for a passkey: the session cookie is
//! `SameSite=Strict`, so an agency's redirect never arrives with it, and a
//! login made after the request began is required to complete it. That
//! satisfies `prompt=login` and any `max_age`; `prompt=none` is answered
//! `login_required`.

mod backchannel;
mod business;
mod client_keys;
mod clients;
mod consent;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest::{SHA256, digest};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use tuaton_core::{Aal, AccountId};
use tuaton_keys::KeyRef;
use tuaton_oidc::access_token::{self, AccessTokenClaims, BearerError};
use tuaton_oidc::authorize::PUSHED_PREFIX;
use tuaton_oidc::dpop::{self, Confirmation, DpopError, Nonces, Presented, Scheme};
use tuaton_oidc::jws::{SigningKey, sign_compact};
use tuaton_oidc::logout::{LogoutError, LogoutRequest};
use tuaton_oidc::request_object;
use tuaton_oidc::token::CodeRedemption;
use tuaton_oidc::token::{PushedRequest, TokenQuery};
use tuaton_oidc::{
    AuthorizationRequest, AuthorizeError, ClientAuthentication, ClientConfig, Grant, IdTokenClaims,
    OAuthError, PairwiseSalt, Prompt, TokenAuth, TokenError, TokenRequest,
};
use tuaton_store::accounts::{self, AccountState};
use tuaton_store::audit as store_audit;
use tuaton_store::batch::Batch;
use tuaton_store::ceremonies::{self, CeremonyKind, TakeError};
use tuaton_store::consents;
use tuaton_store::keys::{self, KeyPurpose};
use tuaton_store::oidc as store;
use url::Url;
use zeroize::Zeroizing;

pub use backchannel::{LogoutDelivery, LogoutOutcome, MAX_ATTEMPTS as MAX_LOGOUT_ATTEMPTS};
pub use business::CompanyAsk;
pub(crate) use client_keys::ClientKeyCache;
pub use client_keys::JwksFetcher;
pub use clients::{ClientAdmin, ClientAdministrator, ClientSecret, RegisteredClient};
pub use consent::ConsentAsk;

use crate::audit::{self, Actor, action};
use crate::sessions::ActiveSession;
use crate::{Idm, IdmError};

/// The server secret pairwise subjects are derived with.
const PAIRWISE_SECRET: &str = "oidc-pairwise";

/// The server secret DPoP nonces are made with.
const DPOP_SECRET: &str = "oidc-dpop-nonces";

/// Why an OpenID Provider step was refused, in the form its endpoint answers.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// At the authorization endpoint: shown, or sent back to the client.
    #[error(transparent)]
    Authorize(#[from] AuthorizeError),
    /// At the token endpoint (RFC 6749 §5.2).
    #[error(transparent)]
    Token(#[from] TokenError),
    /// A bearer token refused (RFC 6750 §3.1).
    #[error(transparent)]
    Bearer(#[from] BearerError),
    /// A DPoP proof refused, or a nonce needed (RFC 9449 §5, §7.1, §8).
    #[error(transparent)]
    Dpop(#[from] DpopError),
    /// At the end-session endpoint: shown on the page.
    #[error(transparent)]
    Logout(#[from] LogoutError),
    /// The person has not agreed to share what the request asks for: the
    /// consent page shows this, and the request keeps waiting.
    #[error("the person's consent is needed")]
    ConsentNeeded(Box<ConsentAsk>),
    /// The request asks for a company to act for and none was chosen: the
    /// company page shows these, and the request keeps waiting.
    #[error("the person has to choose the company they act for")]
    CompanyNeeded(Box<CompanyAsk>),
    /// The request asks the person to sign hashes (a CSC credential
    /// authorization): the signing page shows them and asks for the
    /// passkey whose challenge this carries; the request keeps waiting.
    #[error("the person has to confirm the signatures asked for")]
    SignatureNeeded(Box<SignatureAsk>),
    /// Anything else: the store, the key backend, a session.
    #[error(transparent)]
    Idm(#[from] IdmError),
}

impl From<tuaton_store::StoreError> for OidcError {
    fn from(e: tuaton_store::StoreError) -> Self {
        Self::Idm(e.into())
    }
}

impl From<TakeError> for OidcError {
    fn from(e: TakeError) -> Self {
        Self::Idm(e.into())
    }
}

/// A request waiting for the person to log in: what the page shows.
#[derive(Debug, Clone)]
pub struct PendingAuthorization {
    /// Opaque, single-use; the browser keeps it in a cookie.
    pub id: String,
    /// The agency and application, as registered.
    pub client_name: String,
    /// The redirect URI the answer goes to (the page's `form-action` allows it).
    pub redirect_uri: Url,
    /// The scopes asked for.
    pub scopes: Vec<String>,
    /// The claims beyond `sub` the scopes ask for (a consent step follows the login).
    pub claims: Vec<tuaton_oidc::Claim>,
    /// The least authenticator level asked for, if any (`acr_values`).
    pub required_aal: Option<Aal>,
}

/// The caller of a resource: the access token's claims, its grant and
/// the person it names.
#[derive(Debug)]
pub struct ResourceCaller {
    /// The token, verified.
    pub claims: AccessTokenClaims,
    /// The grant it was issued from, standing.
    pub grant: store::Grant,
    /// The person, active.
    pub account: accounts::Account,
}

impl ResourceCaller {
    /// Whether the grant holds `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.grant.scopes.split(' ').any(|s| s == scope)
    }
}

/// A checked logout request: whom it is for and where it goes.
#[derive(Debug, Clone)]
pub struct LogoutPlan {
    /// The client's name, for the confirmation page.
    pub client_name: Option<String>,
    client_id: Option<String>,
    sid: Option<String>,
    /// The registered post-logout URI, with `state`.
    pub destination: Option<Url>,
}

/// What is kept between the request and the login.
#[derive(Serialize, Deserialize)]
struct Waiting {
    request: AuthorizationRequest,
    begun_ms: i64,
}

/// What a code is bound to.
#[derive(Serialize, Deserialize)]
struct CodeState {
    client_id: String,
    redirect_uri: String,
    code_challenge: tuaton_oidc::CodeChallenge,
    nonce: Option<String>,
    scopes: Vec<String>,
    auth_time: i64,
    aal: String,
    amr: Vec<String>,
    /// The DPoP key the token request must prove (RFC 9449 §10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dpop_jkt: Option<String>,
    /// The Tuaton session the login was made in: its end ends the grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    session_digest: Option<String>,
    /// The company chosen (business login).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    company: Option<tuaton_oidc::claims::CompanyClaim>,
    /// The signatures the person confirmed (CSC credential authorization).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signing: Option<Signing>,
}

/// A credential authorization the person confirmed with a passkey: what
/// it allows and the signing request that holds the confirmation.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Signing {
    authorization: tuaton_oidc::CredentialAuthorization,
    request_id: String,
}

/// The person's answer on the authorization page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Log in to the client (sharing what a live consent covers).
    Allow,
    /// Log in and share the claims the consent page named: the consent is
    /// recorded with the code.
    Share,
    /// Do not: the client hears `access_denied`.
    Deny,
}

/// The person's answer, with the company chosen (business login) and the
/// passkey's confirmation of the signatures asked for.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Allow, share or deny.
    pub decision: Decision,
    /// The juristic id of the company chosen, as the page sent it.
    pub company: Option<String>,
    /// The confirmation of the signatures the request asks for.
    pub confirmation: Option<SignatureConfirmation>,
}

impl From<Decision> for Answer {
    fn from(decision: Decision) -> Self {
        Self {
            decision,
            company: None,
            confirmation: None,
        }
    }
}

/// The passkey's answer to a signing page: the signing request it showed
/// and the assertion over its challenge.
#[derive(Debug, Clone)]
pub struct SignatureConfirmation {
    /// The signing request's id.
    pub request: String,
    /// The assertion.
    pub response: Box<webauthn_rs::prelude::PublicKeyCredential>,
}

/// What the signing page shows: the agency, each hash with its label, and
/// the passkey challenge that confirms them.
#[derive(Debug)]
pub struct SignatureAsk {
    /// The agency and application, as registered.
    pub client_name: String,
    /// Where the answer goes.
    pub redirect_uri: Url,
    /// The signing request begun for the hashes.
    pub challenge: crate::signing::SigningChallenge,
}

/// Who logged in, and how: what every token of a grant says.
struct Login {
    account_id: AccountId,
    /// The account's identity level when the tokens are issued.
    ial: tuaton_core::Ial,
    scope: String,
    auth_time: OffsetDateTime,
    aal: Aal,
    amr: Vec<String>,
    /// The company acted for (business login).
    company: Option<tuaton_oidc::claims::CompanyClaim>,
    /// The signatures confirmed, for the first access token of a code.
    signing: Option<Signing>,
}

/// What one issue of a grant's tokens says beyond the login.
struct IssueTo<'a> {
    /// The grant, named in `sid` and in the access token's `jti`.
    grant_id: &'a str,
    /// The authorization request's `nonce`, for the ID token of a code.
    nonce: Option<String>,
    /// The DPoP key the access token is bound to.
    jkt: Option<&'a str>,
}

/// Tokens signed, not yet recorded.
struct Issued {
    id_token: String,
    access_token: String,
    refresh_token: Zeroizing<String>,
    /// When the grant's last refresh token stops working.
    family_ends: OffsetDateTime,
    /// Whether the access token is DPoP-bound.
    bound: bool,
}

/// A signature the agency asked for that cannot be made for this person:
/// the agency hears it at its redirect URI (a credential that is not the
/// person's as `invalid_request`, an account or certificate that cannot
/// sign as `access_denied`), in words that repeat nothing it sent. Other
/// failures, which the person can act on (no passkey yet, too many
/// attempts), stay on Tuaton's page.
fn cannot_sign(request: &AuthorizationRequest, e: IdmError) -> OidcError {
    let (error, description) = match e {
        IdmError::UnknownSigningCredential => (
            OAuthError::InvalidRequest,
            "The credentialID is not this person's signing credential (credentials/list names it).",
        ),
        IdmError::AccountNotActive
        | IdmError::NotProofed
        | IdmError::IalTooLow { .. }
        | IdmError::CertificateRevoked => (
            OAuthError::AccessDenied,
            "This person cannot sign now: their account or signing certificate does not allow it.",
        ),
        other => return other.into(),
    };
    AuthorizeError::Redirect {
        redirect_uri: Box::new(request.redirect_uri.clone()),
        error,
        description: description.into(),
        state: request.state.clone(),
    }
    .into()
}

/// The `token_type` of an access token bound to a DPoP key or to none.
fn token_type(bound: bool) -> &'static str {
    if bound { "DPoP" } else { "Bearer" }
}

impl Issued {
    fn response(self, client: &ClientConfig, login: &Login) -> TokenResponse {
        TokenResponse {
            access_token: self.access_token,
            token_type: token_type(self.bound),
            expires_in: client.token_lifetime_secs,
            id_token: self.id_token,
            refresh_token: self.refresh_token.to_string(),
            scope: login.scope.clone(),
            authorization_details: login.signing.as_ref().map(|s| s.authorization.to_details()),
        }
    }
}

/// Which kind of token a revocation or introspection names.
enum TokenKind {
    Refresh { used: bool, expired: bool },
    Access(Box<AccessTokenClaims>),
}

/// A successful token response (RFC 6749 §5.1, OpenID Connect Core 1.0 §3.1.3.3).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    /// The RFC 9068 access token.
    pub access_token: String,
    /// `DPoP` for a token bound to the proof's key (RFC 9449 §5), `Bearer` otherwise.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u32,
    /// The ID token; not sent (empty) for `client_credentials`, which names no person.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id_token: String,
    /// The next refresh token of the grant: it works once. Not sent (empty)
    /// for `client_credentials`: the client asks again instead.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub refresh_token: String,
    /// The scopes granted.
    pub scope: String,
    /// The signatures the access token may make (RFC 9396 §7): the
    /// credential authorization the person confirmed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization_details: Option<serde_json::Value>,
}

fn random_secret() -> Result<Zeroizing<String>, IdmError> {
    let mut b = Zeroizing::new([0u8; 32]);
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), b.as_mut())
        .map_err(|_| IdmError::internal("the system random source failed"))?;
    Ok(Zeroizing::new(URL_SAFE_NO_PAD.encode(b.as_ref())))
}

/// Who a grant's audit records name as actor: the person, or the client
/// acting for itself.
fn grant_actor(g: &store::Grant) -> Actor {
    match &g.account_id {
        Some(a) => Actor::Account(a.clone()),
        None => Actor::Client(g.client_id.clone()),
    }
}

/// What a grant's audit records name as target: the account, or the client.
fn grant_target(g: &store::Grant) -> String {
    match &g.account_id {
        Some(a) => a.to_string(),
        None => format!("client:{}", g.client_id),
    }
}

/// A code's ceremony id: its SHA-256, so the database never holds a code
/// that could be redeemed.
fn code_digest(code: &str) -> String {
    hex::encode(digest(&SHA256, code.as_bytes()))
}

/// The name a DPoP key's proofs are kept under in the replay cache.
fn proof_owner(proof: &dpop::Proof) -> String {
    format!("dpop:{}", proof.jkt)
}

/// The statement that records a DPoP proof's `jti` in the replay cache the
/// client assertions share, under its key: `false` for a replay.
fn spend_proof(proof: &dpop::Proof, now: OffsetDateTime) -> tuaton_store::batch::Query<bool> {
    store::use_assertion_id(&proof_owner(proof), &proof.jti, proof.remember_until, now)
}

fn proof_replayed() -> DpopError {
    DpopError::invalid("it was used before (its jti is spent)")
}

fn assertion_replayed() -> TokenError {
    TokenError::client("The client assertion was used before (its jti is spent).")
}

/// The read of `client`'s id-token key at `now`: the active key of its
/// algorithm's line (ES256 by default, RS256 or PS256 for a client
/// registered for it), as a query to batch with a grant's other reads.
fn id_token_key(
    client: &ClientConfig,
    now: OffsetDateTime,
) -> tuaton_store::batch::Query<Option<keys::ManagedKey>> {
    keys::signing_key_query(KeyPurpose::IdToken, client.id_token_alg, now)
}

/// What a token request spends once, in the transaction that issues its
/// tokens: the DPoP proof's `jti` and the client assertion's.
struct OneUse<'a> {
    proof: Option<&'a dpop::Proof>,
    assertion: Option<(&'a str, &'a tuaton_oidc::assertion::AssertionId)>,
    /// The client must send a proof and sent none: refused once the
    /// assertion is known unspent, so a replay is answered as one.
    proof_missing: bool,
}

/// The spends of [`OneUse`] added to a transaction's opening batch.
struct Spending {
    proof: Option<tuaton_store::batch::Pending<bool>>,
    assertion: Option<tuaton_store::batch::Pending<bool>>,
}

impl OneUse<'_> {
    /// Whether the proof's and the assertion's `jti`s are spent, read with
    /// the grant's other reads.
    fn unspent_in(&self, reads: &mut Batch, now: OffsetDateTime) -> Unspent {
        Unspent {
            proof: self
                .proof
                .map(|p| reads.add(store::assertion_id_spent(&proof_owner(p), &p.jti, now))),
            assertion: self
                .assertion
                .map(|(client, id)| reads.add(store::assertion_id_spent(client, &id.jti, now))),
            proof_missing: self.proof_missing,
        }
    }

    fn spend_in(&self, opening: &mut Batch, now: OffsetDateTime) -> Spending {
        Spending {
            proof: self.proof.map(|p| opening.add(spend_proof(p, now))),
            assertion: self.assertion.map(|(client, id)| {
                opening.add(store::use_assertion_id(client, &id.jti, id.expires_at, now))
            }),
        }
    }
}

/// The checks of [`OneUse::unspent_in`], added to a batch of reads.
struct Unspent {
    proof: Option<tuaton_store::batch::Pending<bool>>,
    assertion: Option<tuaton_store::batch::Pending<bool>>,
    proof_missing: bool,
}

impl Unspent {
    /// Refuses a request whose proof or assertion was spent already: a
    /// captured request sent again, refused before it can end anything.
    /// The assertion first: a replayed request is answered `invalid_client`
    /// whether or not its proof was spent too.
    fn check(self, read: &mut tuaton_store::batch::Done) -> Result<(), OidcError> {
        if let Some(a) = self.assertion
            && read.take(a)?
        {
            return Err(assertion_replayed().into());
        }
        if let Some(p) = self.proof
            && read.take(p)?
        {
            return Err(proof_replayed().into());
        }
        if self.proof_missing {
            return Err(DpopError::Missing.into());
        }
        Ok(())
    }
}

impl Spending {
    /// Refuses the transaction when either was spent already (a replay, or
    /// a concurrent request that committed first).
    fn check(self, opened: &mut tuaton_store::batch::Done) -> Result<(), OidcError> {
        if let Some(p) = self.proof
            && !opened.take(p)?
        {
            return Err(proof_replayed().into());
        }
        if let Some(a) = self.assertion
            && !opened.take(a)?
        {
            return Err(assertion_replayed().into());
        }
        Ok(())
    }
}

/// Makes the parameter `name` of a pushed request `value`: added when
/// absent, refused (`Err`) when it says something else.
fn pin(params: &mut Vec<(String, String)>, name: &str, value: &str) -> Result<(), ()> {
    match params.iter().find(|(k, v)| k == name && !v.is_empty()) {
        Some((_, v)) if v != value => Err(()),
        Some(_) => Ok(()),
        None => {
            params.push((name.to_owned(), value.to_owned()));
            Ok(())
        }
    }
}

/// The company a grant acts for, read back.
fn grant_company(g: &store::Grant) -> Result<Option<tuaton_oidc::claims::CompanyClaim>, IdmError> {
    g.company
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(|_| crate::error::corrupt("a grant's company"))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Idm {
    /// Whether the grant's account is active (a client's own grant has none
    /// and stands on its own).
    async fn account_active(&self, account: Option<&AccountId>) -> Result<bool, IdmError> {
        let Some(id) = account else {
            return Ok(true);
        };
        let found = accounts::by_id(self.store().conn().await?.conn(), id).await?;
        Ok(found.is_some_and(|a| a.state == AccountState::Active))
    }

    /// The client `client_id`, if registered.
    pub(crate) async fn find_client(
        &self,
        client_id: &str,
    ) -> Result<Option<ClientConfig>, IdmError> {
        let found = store::client(client_id)
            .run(self.store().conn().await?.conn())
            .await?;
        Ok(match found {
            Some(c) => Some(clients::read_client(c)?.config),
            None => None,
        })
    }

    /// Validates an authorization request (the query's pairs, repeats kept)
    /// and keeps it for the login that follows.
    ///
    /// A signed request object (`request`, RFC 9101) replaces every other
    /// parameter of the query once it verifies with the client's keys.
    pub async fn begin_authorization(
        &self,
        issuer: &str,
        params: &[(String, String)],
        now: OffsetDateTime,
    ) -> Result<PendingAuthorization, OidcError> {
        let one = |name: &str| {
            params
                .iter()
                .find(|(k, v)| k == name && !v.is_empty())
                .map(|(_, v)| v.as_str())
        };
        let client = match one("client_id") {
            Some(id) => self.find_client(id).await?,
            None => None,
        };
        let pushed = one("request_uri").and_then(|u| u.strip_prefix(PUSHED_PREFIX));
        let (request, client) = match pushed {
            // Only the pushed request counts; what else the query says is
            // ignored (RFC 9126 §4).
            Some(id) => self.pushed(id, client, now).await?,
            None => {
                let unpacked =
                    match one("request") {
                        Some(jwt) => {
                            let known = client.as_ref().ok_or_else(|| AuthorizeError::Direct {
                                error: OAuthError::InvalidRequest,
                                description: "client_id is missing or not registered.".into(),
                            })?;
                            Some(self.unpack_request(jwt, known, issuer, now).await.map_err(
                                |e| AuthorizeError::Direct {
                                    error: OAuthError::InvalidRequestObject,
                                    description: e,
                                },
                            )?)
                        }
                        None => None,
                    };
                let params = unpacked.as_deref().unwrap_or(params);
                let (request, client) = AuthorizationRequest::parse(params, |id| {
                    client.as_ref().filter(|c| c.client_id == id)
                })?;
                if client.require_par {
                    return Err(AuthorizeError::Redirect {
                        redirect_uri: Box::new(request.redirect_uri.clone()),
                        error: OAuthError::InvalidRequest,
                        description: "This client's authorization requests must be pushed to the pushed_authorization_request_endpoint (RFC 9126).".into(),
                        state: request.state.clone(),
                    }
                    .into());
                }
                (request, client.clone())
            }
        };
        if request.prompt.contains(&Prompt::None) {
            // Every login here asks for a passkey: no page, no login.
            return Err(AuthorizeError::Redirect {
                redirect_uri: Box::new(request.redirect_uri.clone()),
                error: OAuthError::LoginRequired,
                description: "Tuaton asks for a passkey at every login; prompt=none cannot be met."
                    .into(),
                state: request.state.clone(),
            }
            .into());
        }
        let pending = PendingAuthorization {
            id: String::new(),
            client_name: client.name.clone(),
            redirect_uri: request.redirect_uri.clone(),
            scopes: request.scopes.clone(),
            claims: tuaton_oidc::claims::requested(&request.scopes),
            required_aal: request.required_levels().1,
        };
        let waiting = Waiting {
            request,
            begun_ms: tuaton_store::to_ms(now),
        };
        let state = serde_json::to_string(&waiting).map_err(IdmError::internal)?;
        let begun = ceremonies::put_challenge(
            self.store(),
            CeremonyKind::OidcAuthorization,
            None,
            &state,
            now,
        )
        .await?;
        Ok(PendingAuthorization {
            id: begun.id,
            ..pending
        })
    }

    /// Whether the login `session` and its account reach the levels the
    /// request's `acr_values` ask for. A login that falls short leaves the
    /// request waiting, so the person can log in again with a stronger
    /// passkey; the client hears `unmet_authentication_requirements` only
    /// when the account itself is proofed too low (OpenID Connect Core 1.0
    /// errata set 2, §3.1.2.6).
    async fn check_levels(
        &self,
        request: &AuthorizationRequest,
        session: &ActiveSession,
    ) -> Result<(), OidcError> {
        let (ial, aal) = request.required_levels();
        if let Some(needed) = aal
            && session.aal < needed
        {
            return Err(IdmError::AalTooLow { needs: needed }.into());
        }
        if let Some(needed) = ial {
            let account =
                accounts::by_id(self.store().conn().await?.conn(), &session.account_id).await?;
            if account.is_none_or(|a| a.ial < needed) {
                return Err(AuthorizeError::Redirect {
                    redirect_uri: Box::new(request.redirect_uri.clone()),
                    error: OAuthError::UnmetAuthenticationRequirements,
                    description: format!(
                        "The agency asks for identity level {}; this account is proofed lower (an officer can raise it in person).",
                        needed.number()
                    ),
                    state: request.state.clone(),
                }
                .into());
            }
        }
        Ok(())
    }

    /// The parameters of `client`'s request object `jwt`, verified with its
    /// keys (fetched again once if they do not verify and come from a
    /// `jwks_uri`); the refusal's sentence otherwise.
    async fn unpack_request(
        &self,
        jwt: &str,
        client: &ClientConfig,
        issuer: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<(String, String)>, String> {
        let keyed = self
            .with_keys(client, false)
            .await
            .map_err(|e| e.to_string())?;
        match request_object::unpack(jwt, &keyed, issuer, now) {
            Err(_) if client.jwks_uri.is_some() => {
                let again = self
                    .with_keys(client, true)
                    .await
                    .map_err(|e| e.to_string())?;
                request_object::unpack(jwt, &again, issuer, now).map_err(|e| e.to_string())
            }
            unpacked => unpacked.map_err(|e| e.to_string()),
        }
    }

    /// The pushed request `id` names, taken (it works once) for `client`.
    async fn pushed(
        &self,
        id: &str,
        client: Option<ClientConfig>,
        now: OffsetDateTime,
    ) -> Result<(AuthorizationRequest, ClientConfig), OidcError> {
        let direct = |description: &str| {
            OidcError::Authorize(AuthorizeError::Direct {
                error: OAuthError::InvalidRequest,
                description: description.to_owned(),
            })
        };
        let client = client.ok_or_else(|| direct("client_id is missing or not registered."))?;
        let taken = match ceremonies::take(self.store(), id, CeremonyKind::PushedAuthorization, now)
            .await
        {
            Ok(t) => t,
            Err(TakeError::Store(e)) => return Err(e.into()),
            Err(_) => {
                return Err(direct(
                    "The pushed request is unknown, used or expired; the agency pushes it again.",
                ));
            }
        };
        let request: AuthorizationRequest = serde_json::from_str(&taken.state)
            .map_err(|_| crate::error::corrupt("a pushed authorization request"))?;
        if request.client_id != client.client_id {
            return Err(direct("The pushed request belongs to another client."));
        }
        if client.redirect_uri(request.redirect_uri.as_str()).is_none() {
            return Err(direct(
                "The agency's registration changed; go back to its site and start again.",
            ));
        }
        Ok((request, client))
    }

    /// A pushed authorization request (RFC 9126 §2): the client
    /// authenticates, the request is validated as the authorization
    /// endpoint would, and kept for a minute under the `request_uri`
    /// returned, with its lifetime in seconds.
    ///
    /// A DPoP proof beside the request binds the code to its key (RFC 9449
    /// §10.1), as `dpop_jkt` would; given both, they must name one key.
    pub async fn push_authorization(
        &self,
        issuer: &str,
        pushed: PushedRequest,
        dpop: Option<&Presented>,
        now: OffsetDateTime,
    ) -> Result<(String, i64), OidcError> {
        let proof = self.dpop_proof(dpop, None, now).await?;
        let client = self.authenticate_client(issuer, &pushed.auth, now).await?;
        let mut params = pushed.params;
        // A signed request object inside the pushed request is the request
        // (RFC 9126 §3); the form's other parameters are not read.
        let object = params
            .iter()
            .find(|(k, v)| k == "request" && !v.is_empty())
            .map(|(_, v)| v.clone());
        if let Some(jwt) = object {
            params = self
                .unpack_request(&jwt, &client, issuer, now)
                .await
                .map_err(|e| TokenError::new(OAuthError::InvalidRequestObject, e))?;
        }
        if let Some(p) = &proof {
            pin(&mut params, "dpop_jkt", &p.jkt).map_err(|()| {
                DpopError::invalid("dpop_jkt names another key than the proof's (RFC 9449 §10.1)")
            })?;
        }
        pin(&mut params, "client_id", &client.client_id).map_err(|()| {
            TokenError::request("client_id differs from the client that authenticated.")
        })?;
        let (request, _) =
            AuthorizationRequest::parse(&params, |id| (id == client.client_id).then_some(&client))
                .map_err(|e| TokenError::new(e.error(), e.to_string()))?;
        let state = serde_json::to_string(&request).map_err(IdmError::internal)?;
        if let Some(p) = &proof {
            self.spend_dpop(p, now).await?;
        }
        let kind = CeremonyKind::PushedAuthorization;
        let begun = ceremonies::put_challenge(self.store(), kind, None, &state, now).await?;
        Ok((
            format!("{PUSHED_PREFIX}{}", begun.id),
            kind.lifetime().whole_seconds(),
        ))
    }

    /// Answers a pending request with the person's decision. Allowing needs
    /// `session`, a login made after the request began; declining needs
    /// none. A request whose scopes release claims beyond `sub` needs the
    /// person's consent for this client and purpose: a live one that covers
    /// the claims (and `prompt=consent` absent), or [`Decision::Share`]
    /// after the consent page, recorded with the code; otherwise the answer
    /// is [`OidcError::ConsentNeeded`] and the request keeps waiting.
    /// Returns where to send the browser: the client's redirect URI with
    /// the code (or `access_denied`), `state` and `iss` (RFC 9207).
    pub async fn complete_authorization(
        &self,
        issuer: &str,
        pending_id: &str,
        session: Option<&ActiveSession>,
        answer: impl Into<Answer>,
        now: OffsetDateTime,
    ) -> Result<Url, OidcError> {
        let Answer {
            decision,
            company,
            confirmation,
        } = answer.into();
        let waiting = ceremonies::peek(
            self.store(),
            pending_id,
            CeremonyKind::OidcAuthorization,
            now,
        )
        .await?;
        let waiting: Waiting = serde_json::from_str(&waiting.state)
            .map_err(|_| crate::error::corrupt("a pending authorization"))?;
        let request = waiting.request;
        // The registration may have changed since the request began: a
        // removed client or redirect URI gets nothing more.
        let client = self
            .find_client(&request.client_id)
            .await?
            .filter(|c| c.redirect_uri(request.redirect_uri.as_str()).is_some());
        let Some(client) = client else {
            return Err(
                AuthorizeError::Direct {
                    error: OAuthError::InvalidRequest,
                    description:
                        "The agency's registration changed; go back to its site and start again."
                            .into(),
                }
                .into(),
            );
        };
        let session = match (decision, session) {
            (Decision::Deny, _) => None,
            (Decision::Allow | Decision::Share, None) => return Err(IdmError::LoginRequired.into()),
            (Decision::Allow | Decision::Share, Some(s))
                if tuaton_store::to_ms(s.authenticated_at) < waiting.begun_ms =>
            {
                return Err(IdmError::FreshLoginRequired(crate::FreshFor::Authorize).into());
            }
            (Decision::Allow | Decision::Share, Some(s)) => Some(s),
        };
        let mut agreed = None;
        let mut acting_for = None;
        if let Some(s) = session {
            self.check_levels(&request, s).await?;
            agreed = self.consent_for(&client, &request, s, decision).await?;
            acting_for = self
                .company_for(&client, &request, s, company.as_deref(), now)
                .await?;
        }
        // Signatures asked for are confirmed last, with the passkey, on a
        // page of their own: the hashes and their labels, the agency.
        let mut activation = None;
        if let (Some(s), Some(authorization)) = (session, &request.credential) {
            let Some(c) = &confirmation else {
                return Err(OidcError::SignatureNeeded(Box::new(SignatureAsk {
                    client_name: client.name.clone(),
                    redirect_uri: request.redirect_uri.clone(),
                    challenge: self
                        .begin_hash_signing(s, authorization, now)
                        .await
                        .map_err(|e| cannot_sign(&request, e))?,
                })));
            };
            activation = Some(
                self.confirm_hash_signing(
                    s,
                    &client.client_id,
                    &c.request,
                    &c.response,
                    authorization,
                    now,
                )
                .await?,
            );
        }
        let (mut tx, mut place) = self
            .open_spending(CeremonyKind::OidcAuthorization, pending_id)
            .await?;
        let mut url = request.redirect_uri.clone();
        let code = match session {
            None => {
                let mut closing = Batch::new();
                let ev = audit::refusal(
                    &Actor::Anonymous,
                    action::OIDC_AUTHORIZE,
                    "unknown",
                    "access_denied",
                )
                .with_details(json!({ "client_id": request.client_id }));
                place.write(now, &ev, &mut closing)?;
                tx.commit_with(closing).await?;
                None
            }
            Some(session) => {
                let actor = session.actor();
                let mut consent_id = None;
                if let Some(new) = &agreed {
                    // The consent and its own audit record first; the
                    // authorization's record takes the next place.
                    let rec = consents::give(&mut tx, &session.account_id, new, now).await?;
                    let mut first = Batch::new();
                    place.write(
                        now,
                        &crate::account::consent_given(&actor, &rec),
                        &mut first,
                    )?;
                    first.run(tx.conn()).await?;
                    place = store_audit::next_place().run(tx.conn()).await?;
                    consent_id = Some(rec.id);
                }
                let mut closing = Batch::new();
                let code = random_secret()?;
                let bound = CodeState {
                    client_id: request.client_id.clone(),
                    redirect_uri: request.redirect_uri.to_string(),
                    code_challenge: request.code_challenge.clone(),
                    nonce: request.nonce.clone(),
                    scopes: request.scopes.clone(),
                    auth_time: session.authenticated_at.unix_timestamp(),
                    aal: session.aal.number().to_owned(),
                    amr: session.amr.clone(),
                    dpop_jkt: request.dpop_jkt.clone(),
                    session_digest: Some(session.id_digest().to_owned()),
                    company: acting_for.clone(),
                    signing: match (&request.credential, &activation) {
                        (Some(authorization), Some(a)) => Some(Signing {
                            authorization: authorization.clone(),
                            request_id: a.request_id.clone(),
                        }),
                        _ => None,
                    },
                };
                let signing_request = activation.as_ref().map(|a| a.request_id.clone());
                if let Some(a) = activation.take() {
                    for w in a.writes {
                        closing.push(w);
                    }
                }
                closing.push(ceremonies::insert_as(
                    &code_digest(&code),
                    CeremonyKind::AuthorizationCode,
                    Some(&session.account_id),
                    &serde_json::to_string(&bound).map_err(IdmError::internal)?,
                    now + CeremonyKind::AuthorizationCode.lifetime(),
                ));
                let ev = audit::success(
                    &actor,
                    action::OIDC_AUTHORIZE,
                    session.account_id.to_string(),
                )
                .with_details(json!({
                    "client_id": request.client_id, "scopes": request.scopes, "consent": consent_id,
                    "company": acting_for.as_ref().map(|c| &c.juristic_id),
                    "signing_request": signing_request,
                }));
                place.write(now, &ev, &mut closing)?;
                tx.commit_with(closing).await?;
                Some(code)
            }
        };
        {
            let mut q = url.query_pairs_mut();
            match &code {
                Some(c) => {
                    q.append_pair("code", c);
                }
                None => {
                    q.append_pair("error", OAuthError::AccessDenied.as_str());
                    q.append_pair("error_description", "The person declined to log in.");
                }
            }
            if let Some(s) = &request.state {
                q.append_pair("state", s);
            }
            q.append_pair("iss", issuer);
        }
        Ok(url)
    }

    /// Checks an RP-initiated logout request (OpenID Connect RP-Initiated
    /// Logout 1.0) before the person confirms it; writes nothing.
    pub async fn plan_logout(
        &self,
        issuer: &str,
        params: &[(String, String)],
    ) -> Result<LogoutPlan, OidcError> {
        let request = LogoutRequest::parse(params)?;
        let hint = match &request.id_token_hint {
            Some(t) => {
                let jwks = self.id_token_jwks().await?;
                Some(tuaton_oidc::logout::verify_hint(t, &jwks, issuer)?)
            }
            None => None,
        };
        let client = match request.client_of(hint.as_ref())? {
            Some(id) => Some(
                self.find_client(id)
                    .await?
                    .ok_or(LogoutError("The client is not registered."))?,
            ),
            None => None,
        };
        let destination = request.destination(client.as_ref())?;
        Ok(LogoutPlan {
            client_name: client.as_ref().map(|c| c.name.clone()),
            client_id: client.map(|c| c.client_id),
            sid: hint.and_then(|h| h.sid),
            destination,
        })
    }

    /// Carries out a confirmed logout: the client's session with the person
    /// (the grant its ID token names) is revoked, with its tokens, and
    /// Tuaton's own session `session` ends. Returns where the browser goes.
    pub async fn end_session(
        &self,
        issuer: &str,
        params: &[(String, String)],
        session: Option<&ActiveSession>,
        now: OffsetDateTime,
    ) -> Result<Option<Url>, OidcError> {
        let plan = self.plan_logout(issuer, params).await?;
        if let (Some(sid), Some(client_id)) = (&plan.sid, &plan.client_id) {
            let grant = store::grant(sid)
                .run(self.store().conn().await?.conn())
                .await?;
            if let Some(g) = grant.filter(|g| g.client_id == *client_id && g.revoked_at.is_none()) {
                let ev = audit::success(&grant_actor(&g), action::OIDC_LOGOUT, grant_target(&g))
                    .with_details(json!({ "client_id": client_id, "grant": g.id }));
                self.revoke_audited(&g, &ev, now).await?;
            }
        }
        // Only the session this browser holds ends, with what its logins
        // gave other agencies (each owed a back-channel logout token): an ID
        // token alone, which its client or a thief may hold long after,
        // ends nothing but that client's own grant.
        if let Some(s) = session {
            self.end_sessions(&s.account_id, &[s.id_digest()], now)
                .await?;
        }
        Ok(plan.destination)
    }

    /// Authenticates the client of a back-channel request as it is
    /// registered, spending its assertion's `jti` at once.
    async fn authenticate_client(
        &self,
        issuer: &str,
        auth: &ClientAuthentication,
        now: OffsetDateTime,
    ) -> Result<ClientConfig, OidcError> {
        let (client, assertion) = self.verify_client(issuer, auth, now).await?;
        if let Some(id) = assertion {
            let fresh = store::use_assertion_id(&client.client_id, &id.jti, id.expires_at, now)
                .run(self.store().conn().await?.conn())
                .await?;
            if !fresh {
                return Err(assertion_replayed().into());
            }
        }
        Ok(client)
    }

    /// Authenticates the client as it is registered; an assertion's `jti`
    /// is left for the caller to check unspent ([`OneUse::unspent_in`])
    /// and to spend (the token endpoint spends it in the transaction that
    /// issues the tokens).
    async fn verify_client(
        &self,
        issuer: &str,
        auth: &ClientAuthentication,
        now: OffsetDateTime,
    ) -> Result<(ClientConfig, Option<tuaton_oidc::assertion::AssertionId>), OidcError> {
        let mut assertion_id = None;
        let unknown = || TokenError::client("The client is unknown or failed to authenticate.");
        let claimed = auth.claimed_id().ok_or_else(unknown)?;
        let found = store::client(&claimed)
            .run(self.store().conn().await?.conn())
            .await?
            .ok_or_else(unknown)?;
        let digest = found.secret_digest.clone();
        let client = clients::read_client(found)?.config;
        match (auth, client.token_auth) {
            (ClientAuthentication::Basic { secret, .. }, TokenAuth::ClientSecretBasic) => {
                let given = clients::secret_digest(secret);
                let ok = digest.is_some_and(|d| constant_time_eq(d.as_bytes(), given.as_bytes()));
                if !ok {
                    return Err(unknown().into());
                }
            }
            (
                ClientAuthentication::Assertion {
                    assertion,
                    client_id,
                },
                TokenAuth::PrivateKeyJwt,
            ) => {
                if client_id.as_ref().is_some_and(|c| *c != client.client_id) {
                    return Err(unknown().into());
                }
                let keyed = self.with_keys(&client, false).await?;
                let id = match tuaton_oidc::assertion::verify(assertion, &keyed, issuer, now) {
                    // Perhaps the client rotated its key: its jwks_uri again.
                    Err(_) if client.jwks_uri.is_some() => tuaton_oidc::assertion::verify(
                        assertion,
                        &self.with_keys(&client, true).await?,
                        issuer,
                        now,
                    )?,
                    verified => verified?,
                };
                assertion_id = Some(id);
            }
            (ClientAuthentication::Public { .. }, TokenAuth::None) => {}
            (_, registered) => {
                return Err(TokenError::client(format!(
                    "This client authenticates with {}.",
                    serde_json::to_value(registered)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default()
                ))
                .into());
            }
        }
        Ok((client, assertion_id))
    }

    /// The server's DPoP nonces (RFC 9449 §8).
    async fn nonces(&self, now: OffsetDateTime) -> Result<Nonces, IdmError> {
        let key = self
            .server_key(&self.0.dpop_nonces, DPOP_SECRET, now)
            .await?;
        Ok(Nonces::new(key.clone()))
    }

    /// The DPoP nonce to give out at `now`, in a `DPoP-Nonce` header.
    pub async fn dpop_nonce(&self, now: OffsetDateTime) -> Result<String, IdmError> {
        Ok(self.nonces(now).await?.current(now))
    }

    /// The proof `presented`, verified against its request (and the access
    /// token beside it, at a resource); not yet spent.
    async fn dpop_proof(
        &self,
        presented: Option<&Presented>,
        access_token: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Option<dpop::Proof>, OidcError> {
        let Some(p) = presented else {
            return Ok(None);
        };
        let nonces = self.nonces(now).await?;
        Ok(Some(dpop::verify(
            &p.proof,
            &p.expected(access_token),
            &nonces,
            now,
        )?))
    }

    /// Spends a proof's `jti` on its own: a proof works once (RFC 9449
    /// §11.1). The token endpoint spends it in the transaction that issues
    /// the tokens instead ([`spend_proof`]), so a refused request writes nothing.
    async fn spend_dpop(&self, proof: &dpop::Proof, now: OffsetDateTime) -> Result<(), OidcError> {
        let fresh = spend_proof(proof, now)
            .run(self.store().conn().await?.conn())
            .await?;
        if fresh {
            Ok(())
        } else {
            Err(proof_replayed().into())
        }
    }

    /// [`Unspent::check`] on its own, for a grant with nothing else to
    /// read first; no round trip when there is nothing to look up.
    async fn check_unspent(&self, once: &OneUse<'_>, now: OffsetDateTime) -> Result<(), OidcError> {
        let mut reads = Batch::new();
        let unspent = once.unspent_in(&mut reads, now);
        let mut read = if once.proof.is_some() || once.assertion.is_some() {
            reads.run(self.store().conn().await?.conn()).await?
        } else {
            tuaton_store::batch::Done::empty()
        };
        unspent.check(&mut read)
    }

    /// Answers a token request, with the DPoP proof it carried. The proof
    /// is checked before the client authenticates, so a request answered
    /// `use_dpop_nonce` spends neither its assertion nor anything else.
    pub async fn redeem(
        &self,
        issuer: &str,
        request: TokenRequest,
        dpop: Option<&Presented>,
        now: OffsetDateTime,
    ) -> Result<TokenResponse, OidcError> {
        let proof = self.dpop_proof(dpop, None, now).await?;
        let (client, assertion) = self.verify_client(issuer, &request.auth, now).await?;
        let once = OneUse {
            proof: proof.as_ref(),
            assertion: assertion.as_ref().map(|a| (client.client_id.as_str(), a)),
            proof_missing: client.dpop_bound_access_tokens && proof.is_none(),
        };
        match request.grant {
            Grant::AuthorizationCode(r) => self.redeem_code(issuer, &client, r, once, now).await,
            Grant::RefreshToken(t) => self.refresh(issuer, &client, &t, once, now).await,
            Grant::ClientCredentials { scope } => {
                self.client_grant(issuer, &client, scope.as_deref(), once, now)
                    .await
            }
        }
    }

    async fn redeem_code(
        &self,
        issuer: &str,
        client: &ClientConfig,
        r: CodeRedemption,
        once: OneUse<'_>,
        now: OffsetDateTime,
    ) -> Result<TokenResponse, OidcError> {
        let proof = once.proof;
        let jkt = proof.map(|p| p.jkt.as_str());
        let invalid =
            || TokenError::grant("The code is invalid, expired, or was issued to another client.");
        let digest = code_digest(&r.code);
        // Read (in one round trip), check and sign first; the code is spent
        // in the transaction that records the grant, so a refused or failed
        // redemption writes nothing and only one of two racing redemptions
        // commits.
        // The code before the spent checks: on PostgreSQL each statement
        // sees what was committed before it, so a captured request replayed
        // as its original commits finds the code spent only after it can
        // see the jtis spent too, and is refused as a replay, not taken for
        // the code's reuse (which would end the grant).
        let mut reads = Batch::new();
        let stored = reads.add(ceremonies::lookup(&digest));
        let account = reads.add(accounts::of_ceremony(&digest));
        let unspent = once.unspent_in(&mut reads, now);
        let key = reads.add(id_token_key(client, now));
        let mut read = reads.run(self.store().conn().await?.conn()).await?;
        unspent.check(&mut read)?;
        let Some(stored) = read.take(stored)? else {
            return Err(self.code_reused(client, &digest, jkt, now).await?.into());
        };
        let code = match stored.live(CeremonyKind::AuthorizationCode, now) {
            Ok(c) => c,
            Err(TakeError::Store(e)) => return Err(e.into()),
            Err(_) => return Err(invalid().into()),
        };
        let bound: CodeState = serde_json::from_str(&code.state)
            .map_err(|_| crate::error::corrupt("an authorization code"))?;
        let account_id = code
            .account_id
            .ok_or_else(|| crate::error::corrupt("an authorization code without its account"))?;
        if bound.client_id != client.client_id
            || bound.redirect_uri != r.redirect_uri
            || client.redirect_uri(&bound.redirect_uri).is_none()
        {
            return Err(invalid().into());
        }
        if !bound.code_challenge.is_met_by(&r.verifier) {
            return Err(
                TokenError::grant("The code_verifier does not match the code_challenge.").into(),
            );
        }
        if bound.dpop_jkt.is_some() && bound.dpop_jkt.as_deref() != jkt {
            return Err(DpopError::invalid(
                "the code is bound to a DPoP key (dpop_jkt) this request does not prove",
            )
            .into());
        }
        let account = read.take(account)?;
        let Some(account) =
            account.filter(|a| a.id == account_id && a.state == AccountState::Active)
        else {
            return Err(invalid().into());
        };
        // A code outlives neither its login's session (a logout in the
        // minute since ends it: checked in the transaction that spends the
        // code) nor the consent it was issued under.
        let wanted = tuaton_oidc::claims::requested(&bound.scopes);
        if self
            .releasable(client, &account_id, &bound.scopes)
            .await?
            .len()
            != wanted.len()
        {
            return Err(TokenError::grant(
                "The person's consent no longer covers what the code was issued for.",
            )
            .into());
        }
        let aal =
            Aal::from_stored(&bound.aal).map_err(|_| crate::error::corrupt("a code's level"))?;
        let auth_time = OffsetDateTime::from_unix_timestamp(bound.auth_time)
            .map_err(|_| crate::error::corrupt("a code's login time"))?;
        let login = Login {
            account_id: account_id.clone(),
            ial: account.ial,
            scope: bound.scopes.join(" "),
            auth_time,
            aal,
            amr: bound.amr.clone(),
            company: bound.company.clone(),
            signing: bound.signing.clone(),
        };
        let grant_id = tuaton_store::new_id();
        let issued = self
            .issue(
                issuer,
                client,
                &login,
                IssueTo {
                    grant_id: &grant_id,
                    nonce: bound.nonce.clone(),
                    jkt,
                },
                read.take(key)?,
                now,
            )
            .await?;
        let mut opening = Batch::new();
        let spent = opening.add(ceremonies::spend(&digest, CeremonyKind::AuthorizationCode));
        let spending = once.spend_in(&mut opening, now);
        let session_live = bound
            .session_digest
            .as_deref()
            .map(|d| opening.add(tuaton_store::sessions::live(d, now)));
        let place = opening.add(store_audit::next_place());
        let (tx, mut opened) = self.store().begin_with(opening).await?;
        spending.check(&mut opened)?;
        if !opened.take(spent)? {
            // Redeemed a moment ago by a concurrent request.
            return Err(invalid().into());
        }
        if let Some(live) = session_live
            && !opened.take(live)?
        {
            return Err(TokenError::grant("The login this code came from has ended.").into());
        }
        let place = opened.take(place)?;
        let mut closing = Batch::new();
        let amr = serde_json::to_string(&login.amr).map_err(IdmError::internal)?;
        let company_json = login
            .company
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(IdmError::internal)?;
        closing.push(store::insert_grant(
            &store::NewGrant {
                id: &grant_id,
                code_digest: &digest,
                client_id: &client.client_id,
                account_id: Some(&account_id),
                scopes: &login.scope,
                auth_at: auth_time,
                aal: aal.number(),
                amr: &amr,
                // Kept as long as its refresh tokens work, and at least as
                // long as the code lived, so a late second redemption is
                // still recognised.
                expires_at: issued
                    .family_ends
                    .max(now + CeremonyKind::AuthorizationCode.lifetime()),
                // A public client's refresh tokens are bound to its key
                // (RFC 9449 §5); a confidential client's, to its authentication.
                dpop_jkt: jkt.filter(|_| client.token_auth == TokenAuth::None),
                session_digest: bound.session_digest.as_deref(),
                company: company_json.as_deref(),
            },
            now,
        ));
        closing.push(store::insert_refresh_token(
            &code_digest(&issued.refresh_token),
            &grant_id,
            issued.family_ends,
            now,
        ));
        let ev = audit::success(
            &Actor::Account(account_id.clone()),
            action::OIDC_TOKEN,
            account_id.to_string(),
        )
        .with_details(
            json!({ "client_id": client.client_id, "grant": grant_id, "scope": login.scope }),
        );
        place.write(now, &ev, &mut closing)?;
        tx.commit_with(closing).await?;
        Ok(issued.response(client, &login))
    }

    /// The tokens of one issue: an ID token, an access token and the next
    /// refresh token of the grant `to` names, signed before anything is written.
    async fn issue(
        &self,
        issuer: &str,
        client: &ClientConfig,
        login: &Login,
        to: IssueTo<'_>,
        key: Option<keys::ManagedKey>,
        now: OffsetDateTime,
    ) -> Result<Issued, IdmError> {
        let IssueTo {
            grant_id,
            nonce,
            jkt,
        } = to;
        let lifetime = time::Duration::seconds(i64::from(client.token_lifetime_secs));
        let sub = self.subject(client, &login.account_id, now).await?;
        let mut id_token = IdTokenClaims::new(
            issuer,
            sub.clone(),
            &client.client_id,
            now,
            lifetime,
            login.auth_time,
            nonce,
            login.aal.acr().to_owned(),
            login.amr.clone(),
        );
        id_token.sid = Some(grant_id.to_owned());
        id_token.ial = Some(login.ial.acr().to_owned());
        id_token.company = login.company.clone();
        let access = AccessTokenClaims {
            iss: issuer.to_owned(),
            sub,
            aud: issuer.to_owned(),
            client_id: client.client_id.clone(),
            exp: (now + lifetime).unix_timestamp(),
            iat: now.unix_timestamp(),
            jti: format!("{grant_id}.{}", tuaton_store::new_id()),
            scope: login.scope.clone(),
            auth_time: Some(login.auth_time.unix_timestamp()),
            acr: Some(login.aal.acr().to_owned()),
            amr: login.amr.clone(),
            ial: Some(login.ial.acr().to_owned()),
            cnf: jkt.map(|jkt| Confirmation {
                jkt: jkt.to_owned(),
            }),
            signing_request: login.signing.as_ref().map(|s| s.request_id.clone()),
        };
        let mut signed = self
            .sign_tokens_with(
                client,
                key,
                vec![
                    (
                        "JWT",
                        serde_json::to_value(&id_token).map_err(IdmError::internal)?,
                    ),
                    (
                        access_token::TYP,
                        serde_json::to_value(&access).map_err(IdmError::internal)?,
                    ),
                ],
                now,
            )
            .await?
            .into_iter();
        let (Some(id_token), Some(access_token)) = (signed.next(), signed.next()) else {
            return Err(IdmError::internal(
                "the key backend signed fewer tokens than asked",
            ));
        };
        Ok(Issued {
            id_token,
            access_token,
            refresh_token: random_secret()?,
            // A grant lives no longer than a session made by the same login.
            family_ends: login.auth_time + self.policy().session_lifetime,
            bound: jkt.is_some(),
        })
    }

    /// Answers `client_credentials` (RFC 6749 §4.4): an agency's back end,
    /// authenticated, gets an access token naming itself (`sub` is its
    /// `client_id`) for calls that act for no person. No ID token and no
    /// refresh token; the grant it is recorded under can be revoked.
    async fn client_grant(
        &self,
        issuer: &str,
        client: &ClientConfig,
        scope: Option<&str>,
        once: OneUse<'_>,
        now: OffsetDateTime,
    ) -> Result<TokenResponse, OidcError> {
        let jkt = once.proof.map(|p| p.jkt.as_str());
        self.check_unspent(&once, now).await?;
        if !client.client_credentials || client.token_auth == TokenAuth::None {
            return Err(TokenError::new(
                OAuthError::UnauthorizedClient,
                "This client is not registered for client_credentials.",
            )
            .into());
        }
        if scope.is_some_and(|s| !s.trim().is_empty()) {
            return Err(TokenError::new(
                OAuthError::InvalidScope,
                "No scope is offered to a client acting for itself yet; send none.",
            )
            .into());
        }
        let grant_id = tuaton_store::new_id();
        let lifetime = time::Duration::seconds(i64::from(client.token_lifetime_secs));
        let access = AccessTokenClaims {
            iss: issuer.to_owned(),
            sub: client.client_id.clone(),
            aud: issuer.to_owned(),
            client_id: client.client_id.clone(),
            exp: (now + lifetime).unix_timestamp(),
            iat: now.unix_timestamp(),
            jti: format!("{grant_id}.{}", tuaton_store::new_id()),
            scope: String::new(),
            auth_time: None,
            acr: None,
            amr: Vec::new(),
            ial: None,
            cnf: jkt.map(|jkt| Confirmation {
                jkt: jkt.to_owned(),
            }),
            signing_request: None,
        };
        let claims = serde_json::to_value(&access).map_err(IdmError::internal)?;
        let access_token = self
            .sign_tokens(client, vec![(access_token::TYP, claims)], now)
            .await?
            .pop()
            .ok_or_else(|| IdmError::internal("the key backend signed no token"))?;
        let mut opening = Batch::new();
        let spending = once.spend_in(&mut opening, now);
        let place = opening.add(store_audit::next_place());
        let (tx, mut opened) = self.store().begin_with(opening).await?;
        spending.check(&mut opened)?;
        let place = opened.take(place)?;
        let mut closing = Batch::new();
        closing.push(store::insert_grant(
            &store::NewGrant {
                id: &grant_id,
                // No code: the column's uniqueness is kept with the grant's own id.
                code_digest: &format!("client_credentials:{grant_id}"),
                client_id: &client.client_id,
                account_id: None,
                scopes: "",
                auth_at: now,
                aal: "",
                amr: "[]",
                expires_at: now + lifetime,
                dpop_jkt: None,
                session_digest: None,
                company: None,
            },
            now,
        ));
        let ev = audit::success(
            &Actor::Client(client.client_id.clone()),
            action::OIDC_CLIENT_CREDENTIALS,
            format!("client:{}", client.client_id),
        )
        .with_details(json!({ "grant": grant_id }));
        place.write(now, &ev, &mut closing)?;
        tx.commit_with(closing).await?;
        Ok(TokenResponse {
            access_token,
            token_type: token_type(jkt.is_some()),
            expires_in: client.token_lifetime_secs,
            id_token: String::new(),
            refresh_token: String::new(),
            scope: String::new(),
            authorization_details: None,
        })
    }

    /// Answers `refresh_token`: spends the token and issues the next of its
    /// family. A spent token presented again revokes the family (RFC 9700
    /// §4.14.2): whoever holds the newer one, the thief or the client, loses it.
    async fn refresh(
        &self,
        issuer: &str,
        client: &ClientConfig,
        token: &str,
        once: OneUse<'_>,
        now: OffsetDateTime,
    ) -> Result<TokenResponse, OidcError> {
        let proof = once.proof;
        let jkt = proof.map(|p| p.jkt.as_str());
        let invalid = || TokenError::grant("The refresh token is invalid, expired or revoked.");
        let digest = code_digest(token);
        // The token before the spent checks, as for a code (above).
        let mut reads = Batch::new();
        let found = reads.add(store::refresh_token(&digest));
        let unspent = once.unspent_in(&mut reads, now);
        let key = reads.add(id_token_key(client, now));
        let mut read = reads.run(self.store().conn().await?.conn()).await?;
        unspent.check(&mut read)?;
        let found = read.take(found)?;
        let Some(rt) = found.filter(|rt| rt.grant.client_id == client.client_id) else {
            return Err(invalid().into());
        };
        if rt.grant.revoked_at.is_some() || rt.expires_at <= now {
            return Err(invalid().into());
        }
        // Checked before reuse: a copied token without the key is refused
        // and ends nothing, so its thief cannot end the client's session.
        if rt.grant.dpop_jkt.is_some() && rt.grant.dpop_jkt.as_deref() != jkt {
            return Err(DpopError::invalid(
                "the refresh token is bound to a DPoP key this request does not prove",
            )
            .into());
        }
        if rt.used_at.is_some() {
            // A captured refresh request sent again (its proof spent) was
            // refused above as a replay; this is the family's reuse.
            return Err(self
                .revoke_family(&rt.grant, client, "refresh_token_reused", now)
                .await?
                .into());
        }
        let Some(account_id) = rt.grant.account_id.clone() else {
            return Err(invalid().into());
        };
        let account = accounts::by_id(self.store().conn().await?.conn(), &account_id).await?;
        let Some(account) = account.filter(|a| a.state == AccountState::Active) else {
            return Err(invalid().into());
        };
        let login = Login {
            account_id,
            ial: account.ial,
            scope: rt.grant.scopes.clone(),
            auth_time: rt.grant.auth_at,
            aal: Aal::from_stored(&rt.grant.aal)
                .map_err(|_| crate::error::corrupt("a grant's level"))?,
            amr: serde_json::from_str(&rt.grant.amr)
                .map_err(|_| crate::error::corrupt("a grant's amr"))?,
            company: grant_company(&rt.grant)?,
            signing: None,
        };
        let issued = self
            .issue(
                issuer,
                client,
                &login,
                IssueTo {
                    grant_id: &rt.grant.id,
                    nonce: None,
                    jkt,
                },
                read.take(key)?,
                now,
            )
            .await?;
        let mut opening = Batch::new();
        let used = opening.add(store::use_refresh_token(&digest, now));
        let spending = once.spend_in(&mut opening, now);
        let place = opening.add(store_audit::next_place());
        let (tx, mut opened) = self.store().begin_with(opening).await?;
        spending.check(&mut opened)?;
        if !opened.take(used)? {
            // Used by a concurrent request a moment ago: a reuse all the same.
            drop(tx);
            return Err(self
                .revoke_family(&rt.grant, client, "refresh_token_reused", now)
                .await?
                .into());
        }
        let place = opened.take(place)?;
        let mut closing = Batch::new();
        closing.push(store::insert_refresh_token(
            &code_digest(&issued.refresh_token),
            &rt.grant.id,
            rt.expires_at,
            now,
        ));
        let ev = audit::success(
            &Actor::Account(login.account_id.clone()),
            action::OIDC_REFRESH,
            login.account_id.to_string(),
        )
        .with_details(json!({ "client_id": client.client_id, "grant": rt.grant.id }));
        place.write(now, &ev, &mut closing)?;
        tx.commit_with(closing).await?;
        Ok(Issued {
            family_ends: rt.expires_at,
            ..issued
        }
        .response(client, &login))
    }

    /// Revokes `grant` (every token it issued), with an audit record naming
    /// `reason`; answers `invalid_grant` for the request that caused it.
    async fn revoke_family(
        &self,
        grant: &store::Grant,
        presented_by: &ClientConfig,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<TokenError, IdmError> {
        let ev = audit::failure(
            &Actor::Anonymous,
            action::OIDC_GRANT_REVOKED,
            grant_target(grant),
        )
        .with_details(json!({
            "client_id": grant.client_id, "presented_by": presented_by.client_id, "grant": grant.id,
            "reason": reason,
        }));
        self.revoke_audited(grant, &ev, now).await?;
        Ok(TokenError::grant(
            "The token is invalid, expired, or was issued to another client.",
        ))
    }

    /// Revokes `grant` with the audit record `ev`, in one transaction; a
    /// grant revoked already is left as it is, and nothing is written.
    async fn revoke_audited(
        &self,
        grant: &store::Grant,
        ev: &tuaton_store::audit::AuditEvent,
        now: OffsetDateTime,
    ) -> Result<(), IdmError> {
        let mut opening = Batch::new();
        let revoked = opening.add(store::revoke_grant(&grant.id, now));
        let place = opening.add(store_audit::next_place());
        let (tx, mut opened) = self.store().begin_with(opening).await?;
        if !opened.take(revoked)? {
            return Ok(());
        }
        let place = opened.take(place)?;
        let mut closing = Batch::new();
        place.write(now, ev, &mut closing)?;
        tx.commit_with(closing).await?;
        Ok(())
    }

    /// The grant a token of `client` names: a refresh token by its digest,
    /// an access token by its verified `jti`. Tokens of other clients name none.
    async fn grant_of(
        &self,
        issuer: &str,
        client: &ClientConfig,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<Option<(store::Grant, TokenKind)>, IdmError> {
        let refresh = store::refresh_token(&code_digest(token))
            .run(self.store().conn().await?.conn())
            .await?;
        let found = match refresh {
            Some(rt) => {
                let kind = TokenKind::Refresh {
                    used: rt.used_at.is_some(),
                    expired: rt.expires_at <= now,
                };
                Some((rt.grant, kind))
            }
            None => {
                let jwks = self.id_token_jwks().await?;
                match access_token::verify(token, &jwks, issuer, now) {
                    Ok(claims) => store::grant(claims.grant_id())
                        .run(self.store().conn().await?.conn())
                        .await?
                        .map(|g| (g, TokenKind::Access(Box::new(claims)))),
                    Err(_) => None,
                }
            }
        };
        Ok(found.filter(|(g, _)| g.client_id == client.client_id))
    }

    /// Token revocation (RFC 7009): a token of the client revokes its grant
    /// and with it every token the grant issued. An unknown token, or one
    /// of another client, is answered the same (§2.2) and changes nothing.
    pub async fn revoke(
        &self,
        issuer: &str,
        query: TokenQuery,
        now: OffsetDateTime,
    ) -> Result<(), OidcError> {
        let client = self.authenticate_client(issuer, &query.auth, now).await?;
        if let Some((grant, _)) = self.grant_of(issuer, &client, &query.token, now).await?
            && grant.revoked_at.is_none()
        {
            let ev = audit::success(&Actor::Anonymous, action::OIDC_REVOKE, grant_target(&grant))
                .with_details(json!({ "client_id": client.client_id, "grant": grant.id }));
            self.revoke_audited(&grant, &ev, now).await?;
        }
        Ok(())
    }

    /// Token introspection (RFC 7662): whether a token of the client is
    /// active, with its claims. A token of another client is inactive to it.
    pub async fn introspect(
        &self,
        issuer: &str,
        query: TokenQuery,
        now: OffsetDateTime,
    ) -> Result<serde_json::Value, OidcError> {
        let client = self.authenticate_client(issuer, &query.auth, now).await?;
        if client.token_auth == TokenAuth::None {
            // RFC 7662 §2.1: the endpoint must not let anyone scan tokens.
            return Err(TokenError::client(
                "Introspection needs a confidential client's authentication.",
            )
            .into());
        }
        let inactive = json!({ "active": false });
        let Some((grant, kind)) = self.grant_of(issuer, &client, &query.token, now).await? else {
            return Ok(inactive);
        };
        if grant.revoked_at.is_some() || !self.account_active(grant.account_id.as_ref()).await? {
            return Ok(inactive);
        }
        Ok(match kind {
            TokenKind::Refresh { used: true, .. } => {
                // A spent refresh token is being tried: as at the token
                // endpoint, its family ends.
                self.revoke_family(&grant, &client, "refresh_token_reused", now)
                    .await?;
                inactive
            }
            TokenKind::Refresh { expired: true, .. } => inactive,
            TokenKind::Refresh { .. } => {
                let mut answer = json!({
                    "active": true, "token_type": "refresh_token", "client_id": client.client_id,
                    "scope": grant.scopes,
                    "sub": match &grant.account_id {
                        Some(a) => self.subject(&client, a, now).await?,
                        None => client.client_id.clone(),
                    },
                    "exp": grant.expires_at.unix_timestamp(), "iss": issuer,
                });
                if let Some(jkt) = &grant.dpop_jkt {
                    answer["cnf"] = json!({ "jkt": jkt });
                }
                answer
            }
            TokenKind::Access(c) => {
                let mut answer = json!({
                    "active": true, "token_type": token_type(c.cnf.is_some()),
                    "client_id": c.client_id, "scope": c.scope,
                    "sub": c.sub, "exp": c.exp, "iat": c.iat, "iss": c.iss, "aud": c.aud, "jti": c.jti,
                    "acr": c.acr, "amr": c.amr, "auth_time": c.auth_time, "ial": c.ial,
                });
                if let Some(cnf) = &c.cnf {
                    // RFC 9449 §6.2: the resource checks the proof against it.
                    answer["cnf"] = json!({ "jkt": cnf.jkt });
                }
                answer
            }
        })
    }

    /// A code presented again after it was redeemed: the grant it gave is
    /// revoked, with an audit record. Either way the client hears `invalid_grant`.
    async fn code_reused(
        &self,
        client: &ClientConfig,
        digest: &str,
        jkt: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<TokenError, IdmError> {
        let refused =
            TokenError::grant("The code is invalid, expired, or was issued to another client.");
        let grant = store::grant_by_code(digest)
            .run(self.store().conn().await?.conn())
            .await?;
        // Only the client the code was issued to ends its grant this way: a
        // client holding another's leaked code must not end that session;
        // and a grant bound to a DPoP key only with that key's proof, so a
        // used code left in a shared computer's history ends nothing.
        let ends = |g: &store::Grant| {
            g.revoked_at.is_none()
                && g.client_id == client.client_id
                && (g.dpop_jkt.is_none() || g.dpop_jkt.as_deref() == jkt)
        };
        match grant.filter(ends) {
            Some(g) => self.revoke_family(&g, client, "code_reused", now).await,
            None => Ok(refused),
        }
    }

    /// `client`'s `sub` for `account`: pairwise under the server secret, or the account id.
    pub(crate) async fn subject(
        &self,
        client: &ClientConfig,
        account: &AccountId,
        now: OffsetDateTime,
    ) -> Result<String, IdmError> {
        let key = self
            .server_key(&self.0.pairwise, PAIRWISE_SECRET, now)
            .await?;
        Ok(PairwiseSalt::with_key(key.clone()).subject(client, account.as_str()))
    }

    /// Signs the tokens with the active id-token key of the client's algorithm.
    async fn sign_tokens(
        &self,
        client: &ClientConfig,
        tokens: Vec<(&'static str, serde_json::Value)>,
        now: OffsetDateTime,
    ) -> Result<Vec<String>, IdmError> {
        let key = id_token_key(client, now)
            .run(self.store().conn().await?.conn())
            .await?;
        self.sign_tokens_with(client, key, tokens, now).await
    }

    /// Signs the tokens with `key`, the client's id-token key as
    /// [`id_token_key`] read it (`None`: no key of its algorithm is active).
    async fn sign_tokens_with(
        &self,
        client: &ClientConfig,
        key: Option<keys::ManagedKey>,
        tokens: Vec<(&'static str, serde_json::Value)>,
        now: OffsetDateTime,
    ) -> Result<Vec<String>, IdmError> {
        let Some(key) = key else {
            let any =
                keys::signing_key(self.store().conn().await?.conn(), KeyPurpose::IdToken, now)
                    .await?;
            return Err(IdmError::Custody(match any {
                Some(k) => crate::custody::CustodyError::AlgorithmUnavailable {
                    purpose: KeyPurpose::IdToken,
                    wanted: client.id_token_alg,
                    active: k.algorithm,
                },
                None => crate::custody::CustodyError::NoActiveKey(KeyPurpose::IdToken),
            }));
        };
        let key_ref: KeyRef =
            key.key_ref
                .parse()
                .map_err(|source| crate::custody::CustodyError::Key {
                    id: key.id.clone(),
                    source,
                })?;
        // A quick signature is made in place; an HSM's, an RSA one or a
        // key still to be read from disk on a blocking thread.
        let in_place = self.keys().signs_in_place(&key_ref, key.algorithm);
        let signing = SigningKey {
            key_ref,
            kid: key.id.clone(),
            alg: key.algorithm,
        };
        let backend = self.keys().clone();
        let sign_all = move || {
            tokens
                .iter()
                .map(|(typ, claims)| sign_compact(backend.as_ref(), &signing, typ, claims))
                .collect::<Result<Vec<_>, tuaton_keys::KeyError>>()
        };
        let signed = if in_place {
            sign_all()
        } else {
            tokio::task::spawn_blocking(sign_all)
                .await
                .map_err(|_| IdmError::Custody(crate::custody::CustodyError::Interrupted))?
        };
        signed.map_err(|source| {
            IdmError::Custody(crate::custody::CustodyError::Key { id: key.id, source })
        })
    }

    /// The claims the access token `bearer` opens (OpenID Connect Core 1.0
    /// §5.3): the `sub`, and the claims its grant's scopes release (the
    /// person agreed to them before the code was issued), read from the
    /// account now. The token must
    /// verify, and its grant stand, and its account be active. A DPoP-bound
    /// token is accepted only with the `DPoP` scheme and a proof made with
    /// its key over this request and this token (RFC 9449 §7); a token bound
    /// to no key only as a bearer token.
    pub async fn userinfo(
        &self,
        issuer: &str,
        bearer: &str,
        scheme: Scheme,
        dpop: Option<&Presented>,
        now: OffsetDateTime,
    ) -> Result<serde_json::Value, OidcError> {
        let caller = self
            .resource_caller(issuer, bearer, scheme, dpop, now)
            .await?;
        let (claims, grant, account) = (caller.claims, caller.grant, caller.account);
        let account_id = &account.id;
        let inactive = BearerError("the token is revoked or its account is not active");
        let client = self.find_client(&grant.client_id).await?.ok_or(inactive)?;
        let scopes: Vec<String> = grant.scopes.split(' ').map(str::to_owned).collect();
        let company = grant_company(&grant)?;
        let person = tuaton_oidc::claims::Person {
            thai_given: account.thai_given.as_deref(),
            thai_family: account.thai_family.as_deref(),
            en_given: account.en_given.as_deref(),
            en_family: account.en_family.as_deref(),
            birth_date: account.birth_date.as_deref(),
            citizen_id: account.citizen_id.as_deref(),
            company: company.as_ref(),
        };
        let released = self.releasable(&client, account_id, &scopes).await?;
        let mut answer = tuaton_oidc::claims::release(&released, &person);
        answer.insert("sub".into(), json!(claims.sub));
        Ok(serde_json::Value::Object(answer))
    }

    /// An access token that verifies, presented as its binding asks (a
    /// DPoP-bound token only with the `DPoP` scheme and a proof made with
    /// its key over this request and this token, RFC 9449 §7; a token bound
    /// to no key only as a bearer token), and its grant, standing.
    async fn standing_token(
        &self,
        issuer: &str,
        bearer: &str,
        scheme: Scheme,
        dpop: Option<&Presented>,
        now: OffsetDateTime,
    ) -> Result<(AccessTokenClaims, store::Grant), OidcError> {
        let jwks = self.id_token_jwks().await?;
        let claims = access_token::verify(bearer, &jwks, issuer, now)?;
        // The key first: a holder of a copied bound token learns nothing
        // about the grant or the account without the proof.
        match (&claims.cnf, scheme) {
            (Some(cnf), Scheme::Dpop) => {
                let proof = self
                    .dpop_proof(dpop, Some(bearer), now)
                    .await?
                    .ok_or(DpopError::Missing)?;
                if proof.jkt != cnf.jkt {
                    return Err(DpopError::invalid(
                        "it is made with another key than the one the token is bound to",
                    )
                    .into());
                }
                self.spend_dpop(&proof, now).await?;
            }
            (Some(_), Scheme::Bearer) => {
                return Err(BearerError(
                    "the token is DPoP-bound: send it with the DPoP scheme and a proof",
                )
                .into());
            }
            (None, Scheme::Dpop) => {
                return Err(
                    BearerError("the token is bound to no key: send it as a Bearer token").into(),
                );
            }
            (None, Scheme::Bearer) => {}
        }
        let inactive = BearerError("the token is revoked or its account is not active");
        let grant = store::grant(claims.grant_id())
            .run(self.store().conn().await?.conn())
            .await?
            .filter(|g| g.revoked_at.is_none() && g.client_id == claims.client_id)
            .ok_or_else(|| inactive.clone())?;
        Ok((claims, grant))
    }

    /// An agency's back end calling a resource with its own access token
    /// (`client_credentials`), checked as [`Self::resource_caller`] checks
    /// a person's: a token naming a person is refused here, and the client
    /// must still be registered.
    pub async fn client_caller(
        &self,
        issuer: &str,
        bearer: &str,
        scheme: Scheme,
        dpop: Option<&Presented>,
        now: OffsetDateTime,
    ) -> Result<ClientConfig, OidcError> {
        let (claims, grant) = self
            .standing_token(issuer, bearer, scheme, dpop, now)
            .await?;
        if grant.account_id.is_some() {
            return Err(BearerError(
                "this is a person's token; the agency's back end calls with its own (client_credentials)",
            )
            .into());
        }
        self.find_client(&claims.client_id)
            .await?
            .ok_or_else(|| BearerError("the client is no longer registered").into())
    }

    /// Who calls a resource Tuaton serves (userinfo, the CSC API) with an
    /// access token: the token must verify, its grant stand and its account
    /// be active. A DPoP-bound token is accepted only with the `DPoP`
    /// scheme and a proof made with its key over this request and this
    /// token (RFC 9449 §7); a token bound to no key only as a bearer token.
    pub async fn resource_caller(
        &self,
        issuer: &str,
        bearer: &str,
        scheme: Scheme,
        dpop: Option<&Presented>,
        now: OffsetDateTime,
    ) -> Result<ResourceCaller, OidcError> {
        let (claims, grant) = self
            .standing_token(issuer, bearer, scheme, dpop, now)
            .await?;
        let inactive = BearerError("the token is revoked or its account is not active");
        let Some(account_id) = &grant.account_id else {
            return Err(BearerError("a client's own token names no person").into());
        };
        let account = accounts::by_id(self.store().conn().await?.conn(), account_id)
            .await?
            .filter(|a| a.state == AccountState::Active)
            .ok_or_else(|| inactive.clone())?;
        Ok(ResourceCaller {
            claims,
            grant,
            account,
        })
    }
}
