//! Identity proofing for Tuaton: who a person is, and how sure we are.
//!
//! Scope:
//! - the evidence a citizen presents ([`evidence`]: citizen id, Thai and
//!   English names, birth date, laser code) and its audit digest;
//! - card-status registry connectors in the shape of DOPA's
//!   `CheckCardByLaser` ([`card_status`]): a development registry of fictional
//!   people ([`dev_registry`]) and a SOAP 1.2 HTTP client with timeouts,
//!   retries and a circuit breaker ([`soap_registry`], [`breaker`]);
//! - the decision from a proofing outcome to an ETDA identity assurance level
//!   ([`decision`]), fed by officer attestations and, one day, face matching
//!   ([`face`]: a trait with no implementation, on purpose);
//! - companies, their directors and authority rules ([`juristic`]).
//!
//! Non-goals: storage, HTTP routes, sessions, the officer role itself (the
//! server grants it and signs attestations into the audit log). The only HTTP
//! server here is the test stand-in in [`standin`], behind the `standin`
//! feature. Time comes in through [`tuaton_core::Clock`].
//!
//! Personal data never reaches a log line: `Debug` on every personal type is
//! redacted, and connectors log only their name, the answer code and timing.

pub mod breaker;
pub mod card_status;
pub mod decision;
pub mod dev_registry;
pub mod evidence;
pub mod face;
pub mod juristic;
pub mod soap;
pub mod soap_registry;
#[cfg(feature = "standin")]
pub mod standin;

pub use breaker::{BreakerConfig, BreakerState, CircuitBreaker};
pub use card_status::{
    CardStatus, CardStatusAnswer, CardStatusQuery, CardStatusRegistry, RegistryCheck,
    RegistryRawAnswer, UnavailableReason, check_card,
};
pub use decision::{
    AttestationMethod, DecisionError, DecisionPolicy, DocumentKind, OfficerAttestation,
    ProofingDecision, ProofingMethod, ProofingPath, decide,
};
pub use dev_registry::{DevCardState, DevPerson, DevRegistry, FixtureError};
pub use evidence::{
    BirthDate, CitizenEvidence, CitizenEvidenceInput, EnglishName, EvidenceDigest, EvidenceField,
    FieldError, InvalidEvidence, LaserCode, ThaiName,
};
pub use face::{
    FaceDecision, FaceMatchError, FaceMatchResult, FaceMatcher, FaceReference, FaceReferences,
    LiveCapture, ReferenceSource,
};
pub use juristic::{
    AuthorityDecision, AuthorityRule, Company, CompanyStatus, DevJuristicRegistry,
    JuristicRegistry, RegistryError, authorised,
};
pub use soap_registry::{ConnectorConfigError, SoapCardStatusRegistry, SoapRegistryConfig};

/// Any error this crate returns, for callers that want one type. Each variant
/// wraps the area's own error, which says whose fault it is.
#[derive(Debug, thiserror::Error)]
pub enum ProofingError {
    /// The evidence failed validation (the caller's input).
    #[error(transparent)]
    Evidence(#[from] InvalidEvidence),
    /// Proofing was refused or could not be decided.
    #[error(transparent)]
    Decision(#[from] DecisionError),
    /// A juristic registry lookup failed.
    #[error(transparent)]
    Juristic(#[from] RegistryError),
    /// A development fixture is broken (its author's fault).
    #[error(transparent)]
    Fixture(#[from] FixtureError),
    /// A connector is misconfigured (the operator's fault).
    #[error(transparent)]
    Connector(#[from] ConnectorConfigError),
}
