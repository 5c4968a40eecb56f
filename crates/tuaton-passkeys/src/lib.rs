//! Passkeys for Tuaton: WebAuthn registration and login on webauthn-rs, and
//! the authenticator assurance (AAL, `amr`) each login reaches.
//!
//! Scope: ceremony logic only. The server calls [`Passkeys`] with typed
//! values and the current time, keeps [`RegistrationState`]/[`LoginState`]
//! server-side (removing them from its ceremony table *before* finishing, so
//! each is used once), and stores each [`StoredCredential`] with its
//! [`CredentialFacts`].
//!
//! Rules enforced here:
//! - user verification is required in every ceremony;
//! - a passkey with user verification gives AAL2.2; AAL3 needs an attested,
//!   non-synchronisable authenticator whose AAGUID and attestation root are
//!   on the operator's [`Aal3Policy`];
//! - a signature counter that does not increase is reported as
//!   [`PasskeyError::CounterRegression`];
//! - ceremony state carries its expiry and is consumed by `finish_*`.
//!
//! Non-goals: storage, HTTP, sessions, rate limits, async (all in the
//! server), and verifying the signature of a FIDO MDS BLOB (see
//! [`Aal3Policy::from_fido_mds_blob`]). See docs/passkeys.md.

mod ceremony;
mod config;
mod credential;
mod error;
mod policy;

pub use ceremony::{LoginOutcome, LoginState, PasskeyUser, Passkeys, RegistrationState};
pub use config::{DEFAULT_CEREMONY_TTL, PasskeyConfig};
pub use credential::{CredentialFacts, StoredCredential, amr_for};
pub use error::PasskeyError;
pub use policy::Aal3Policy;

/// The WebAuthn wire types the server (de)serialises, re-exported so it needs
/// no direct webauthn-rs dependency.
pub use webauthn_rs::prelude::{
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, Url, Uuid,
};
