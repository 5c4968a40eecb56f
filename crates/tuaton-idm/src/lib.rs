//! Tuaton's service layer: the identity flows.
//!
//! Scope: every flow that changes who someone is to Tuaton — enrolment and
//! officer proofing, recovery, passkey registration and login, sessions,
//! consents, data export and erasure, company links, account administration
//! and key rotation. Each flow takes typed inputs and the current time,
//! owns its transaction and its audit records, and returns a typed outcome
//! or an [`IdmError`] whose [`code`](IdmError::code) a front door answers with.
//! The JSON API, the OpenID Provider, signing, the web pages and the `tuaton`
//! command are front doors: they parse, call [`Idm`], and render.
//!
//! Multi-step flows are values handed from step to step: a login's
//! [`LoginChallenge`] is stored as a ceremony and consumed by
//! [`Idm::finish_login`], which reads the ceremony, checks the credential
//! and verifies the assertion before it spends the ceremony in the
//! transaction that writes the outcome. The OpenID Provider's code flow is
//! built the same way ([`oidc`]).
//!
//! Non-goals: HTTP (no axum, no cookies, no status codes), SQL (that is
//! tuaton-store), protocol details of WebAuthn or the registries (those are
//! tuaton-passkeys and tuaton-proofing).

mod account;
mod admin;
pub mod anchors;
mod audit;
mod companies;
pub mod csc;
pub mod custody;
pub mod documents;
mod enrolment;
mod error;
mod keyed;
mod login;
pub mod oidc;
pub mod pki;
mod recovery;
mod registration;
mod representations;
mod sealing;
mod sessions;
pub mod signing;

use std::sync::Arc;

use time::Duration;
use tuaton_core::AccountId;
use tuaton_keys::KeyBackend;
use tuaton_passkeys::Passkeys;
use tuaton_proofing::{CardStatusRegistry, JuristicRegistry};
use tuaton_store::Store;

pub use account::{ConsentRequest, Profile};
pub use admin::{AccountAdmin, AccountSummary};
pub use audit::Actor;
pub use companies::{AuthorityCheck, CompanyLinked, LinkedCompany};
pub use enrolment::{
    ContactEmail, CounterRecovery, Enrolled, OfficerAttestationInput, parse_evidence,
};
pub use error::{FreshFor, IdmError, Registry};
pub use login::{LoggedIn, LoginChallenge};
pub use oidc::{
    Answer, ClientAdmin, ClientAdministrator, ClientSecret, CompanyAsk, ConsentAsk, Decision,
    JwksFetcher, LogoutDelivery, LogoutOutcome, LogoutPlan, MAX_LOGOUT_ATTEMPTS, OidcError,
    PendingAuthorization, RegisteredClient, ResourceCaller, SignatureAsk, SignatureConfirmation,
    TokenResponse,
};
pub use recovery::{MAX_OPEN_RECOVERIES, OpenRecovery, RecoveryGrant, RecoveryRequested};
pub use registration::{PasskeyName, Registrant, RegistrationChallenge};
pub use representations::RepresentationSweep;
pub use sealing::PasskeySeal;
pub use sessions::{ActiveSession, IssuedSession, SessionSecret};
pub use signing::{
    DocumentDigest, JsonDocument, PdfDocument, Signed, SignedDocument, SigningChallenge, format_of,
};
pub use tuaton_proofing::CitizenEvidenceInput;
pub use tuaton_proofing::LiveCapture;
pub use tuaton_store::ceremonies::CeremonyKind;
pub use tuaton_store::consents::ConsentRecord;
pub use tuaton_store::passkeys::PasskeyRecord;
pub use tuaton_store::recoveries::RecoveryPath;
pub use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

/// Counts attempts per account; the front door decides the quota.
pub trait AccountLimiter: Send + Sync {
    /// Counts one attempt for `account`; `false` once its quota is spent.
    fn allow(&self, account: &AccountId) -> bool;
}

/// No per-account limit (tools and tests that drive flows directly).
pub struct Unlimited;

impl AccountLimiter for Unlimited {
    fn allow(&self, _: &AccountId) -> bool {
        true
    }
}

/// The times the flows apply.
#[derive(Debug, Clone)]
pub struct Policy {
    /// A session ends this long after login, however busy.
    pub session_lifetime: Duration,
    /// A session ends after this long without a request.
    pub session_idle: Duration,
    /// A company link older than this is checked with the registry again.
    pub authority_recheck: Duration,
    /// Removing a passkey or erasing the account needs a login this recent.
    pub fresh_login: Duration,
    /// A remote recovery gives a grant only this long after it was asked
    /// for: the owner's time to see the notice and cancel it.
    pub recovery_cooling_off: Duration,
    /// A ready recovery gives grants for this long, then expires.
    pub recovery_window: Duration,
}

impl Default for Policy {
    /// Twelve hours, fifteen minutes idle, a day, five minutes (docs/operators/cli.md);
    /// 72 hours' cooling-off and a week to claim (docs/operators/recovery.md).
    fn default() -> Self {
        Self {
            session_lifetime: Duration::hours(12),
            session_idle: Duration::minutes(15),
            authority_recheck: Duration::DAY,
            fresh_login: Duration::minutes(5),
            recovery_cooling_off: Duration::hours(72),
            recovery_window: Duration::days(7),
        }
    }
}

/// What the flows are built from.
pub struct IdmParts {
    /// The database.
    pub store: Store,
    /// The card-status registry; `None` when none is configured (proofing then refuses).
    pub card_registry: Option<Arc<dyn CardStatusRegistry>>,
    /// The juristic-person registry; `None` when none is configured.
    pub juristic_registry: Option<Arc<dyn JuristicRegistry>>,
    /// WebAuthn ceremonies.
    pub passkeys: Arc<Passkeys>,
    /// The key backend every service key lives in.
    pub keys: Arc<dyn KeyBackend>,
    /// The key passkey rows are sealed with ([`PasskeySeal`]).
    pub passkey_seal: Arc<PasskeySeal>,
    /// The per-account attempt limit.
    pub limiter: Arc<dyn AccountLimiter>,
    /// Session and freshness times.
    pub policy: Policy,
    /// A face matcher with its reference faces; `None` (no product ships
    /// with Tuaton): recovery by face match is then refused.
    pub face: Option<FaceCheck>,
    /// Fetches clients' key sets from their `jwks_uri`; `None`: a client
    /// registered with one cannot authenticate.
    pub jwks_fetcher: Option<Arc<dyn oidc::JwksFetcher>>,
    /// The CA hierarchy's settings; `None`: no CA is configured, and the
    /// time-stamping authority and signing refuse.
    pub ca: Option<pki::CaPlan>,
    /// Where signatures' time stamps come from when an external TSA is
    /// configured ([`pki::CaPlan::time_stamp_url`]); Tuaton's own TSA when
    /// `None`.
    pub external_tsa: Option<Arc<dyn tuaton_sign::tsp::TimeStampSource>>,
}

/// A certified face matcher and where its reference faces come from.
#[derive(Clone)]
pub struct FaceCheck {
    /// Compares a live capture with the reference, with liveness detection.
    pub matcher: Arc<dyn tuaton_proofing::FaceMatcher>,
    /// The reference faces (the registry's photo).
    pub references: Arc<dyn tuaton_proofing::FaceReferences>,
}

/// The service layer; cheap to clone, shared by every front door.
#[derive(Clone)]
pub struct Idm(Arc<Inner>);

struct Inner {
    parts: IdmParts,
    id_token_keys: custody::PublishedKeys,
    login_privacy: tokio::sync::OnceCell<ring::hmac::Key>,
    evidence_refusals: tokio::sync::OnceCell<ring::hmac::Key>,
    pairwise: tokio::sync::OnceCell<ring::hmac::Key>,
    dpop_nonces: tokio::sync::OnceCell<ring::hmac::Key>,
    client_keys: oidc::ClientKeyCache,
    crls: pki::CrlCache,
}

impl Idm {
    /// Builds the service layer from its parts.
    pub fn new(parts: IdmParts) -> Self {
        Self(Arc::new(Inner {
            parts,
            id_token_keys: custody::PublishedKeys::new(tuaton_store::keys::KeyPurpose::IdToken),
            login_privacy: tokio::sync::OnceCell::new(),
            evidence_refusals: tokio::sync::OnceCell::new(),
            pairwise: tokio::sync::OnceCell::new(),
            dpop_nonces: tokio::sync::OnceCell::new(),
            client_keys: oidc::ClientKeyCache::default(),
            crls: pki::CrlCache::default(),
        }))
    }

    /// The database (readiness probes and upkeep).
    pub fn store(&self) -> &Store {
        &self.0.parts.store
    }

    /// The key backend (readiness probes and upkeep).
    pub fn keys(&self) -> &Arc<dyn KeyBackend> {
        &self.0.parts.keys
    }

    /// The key passkey rows are sealed with.
    pub(crate) fn passkey_seal(&self) -> &PasskeySeal {
        &self.0.parts.passkey_seal
    }

    /// The WebAuthn verifier.
    pub fn passkeys(&self) -> &Passkeys {
        &self.0.parts.passkeys
    }

    /// The times the flows apply.
    pub fn policy(&self) -> &Policy {
        &self.0.parts.policy
    }

    /// The published id-token keys (the JWK Set relying parties fetch).
    pub async fn id_token_jwks(&self) -> Result<Arc<serde_json::Value>, IdmError> {
        Ok(self.0.id_token_keys.jwks(self.store(), self.keys()).await?)
    }

    fn crl_cache(&self) -> &pki::CrlCache {
        &self.0.crls
    }

    fn parts(&self) -> &IdmParts {
        &self.0.parts
    }

    /// Counts an attempt for `account`.
    fn count_attempt(&self, account: &AccountId) -> Result<(), IdmError> {
        if self.0.parts.limiter.allow(account) {
            Ok(())
        } else {
            Err(IdmError::RateLimited)
        }
    }
}
