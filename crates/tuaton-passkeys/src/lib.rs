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
//! - ceremony state carries its expiry and is consumed by `finish_*`;
//! - a FIDO MDS BLOB joins the allow-list only if its signature chains to
//!   a root the operator configured ([`MdsTrustAnchors`]) and it is not stale;
//! - responses are accepted from the public URL's origin and the configured
//!   [`ExtraOrigin`]s (web origins, Android apps); the relying-party id is
//!   always the public URL's host.
//!
//! Non-goals: storage, HTTP, sessions, rate limits, async (all in the
//! server); fetching anything (MDS BLOBs, roots, CRLs). See docs/passkeys.md.

mod ceremony;
mod config;
mod credential;
mod error;
mod mds;
mod origin;
mod policy;

pub use ceremony::{LoginOutcome, LoginState, PasskeyUser, Passkeys, RegistrationState};
pub use config::{DEFAULT_CEREMONY_TTL, PasskeyConfig};
pub use credential::{CredentialFacts, StoredCredential, amr_for};
pub use error::{MetadataBlobError, PasskeyError};
pub use mds::{FIDO_MDS_SIGNER, MdsTrustAnchors};
pub use origin::{ExtraOrigin, OriginKind};
pub use policy::Aal3Policy;

/// The WebAuthn wire types the server (de)serialises, re-exported so it needs
/// no direct webauthn-rs dependency.
pub use webauthn_rs::prelude::{
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, Url, Uuid,
};
