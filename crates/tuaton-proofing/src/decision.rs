//! From a proofing outcome to an identity assurance level.
//!
//! [`decide`] is a pure function of the evidence, the path the proofing took,
//! the policy and the time: the same inputs always give the same level. Its
//! table, and the reasoning behind each row, is in docs/assurance.md:
//!
//! | path | conditions | IAL |
//! |---|---|---|
//! | self-asserted | none | 1.1 |
//! | remote, registry | card-status answer valid | 2.1 |
//! | remote, registry + face | valid, and a face match with liveness | 2.2 |
//! | officer in person | valid, officer saw the ID card | 2.2 |
//! | officer in person + biometric | as above, and a biometric comparison | 2.3 |
//! | officer, chip read + biometric + second document | as above, chip read, ≥ 2 documents | 3 |
//!
//! Anything short of a valid card-status answer refuses the attempt rather than
//! quietly granting a lower level: the citizen is told what to fix or to try
//! later, and the audit log records the refusal.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use tuaton_core::{Clock, Ial};

use crate::card_status::{CardStatus, CardStatusAnswer, RegistryCheck, UnavailableReason};
use crate::evidence::{CitizenEvidence, EvidenceDigest};
use crate::face::{FaceDecision, FaceMatchResult};

/// Longest officer note, in characters.
pub const MAX_NOTE_CHARS: usize = 500;
/// Longest officer id, in characters.
pub const MAX_OFFICER_ID_CHARS: usize = 128;

/// An identity document an officer can examine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    /// Thai national ID card (บัตรประจำตัวประชาชน).
    ThaiIdCard,
    /// Thai passport.
    Passport,
    /// House registration (ทะเบียนบ้าน).
    HouseRegistration,
    /// Driving licence.
    DrivingLicence,
    /// Government officer's ID card (บัตรประจำตัวเจ้าหน้าที่ของรัฐ).
    GovernmentOfficerCard,
}

/// How the officer validated the ID card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttestationMethod {
    /// Examined the physical card and its security features by eye.
    VisualInspection,
    /// Read the card's chip with a reader (its data is signed by the issuer),
    /// compared it with the printed card, and examined the card.
    ChipRead,
}

/// An officer's record of an in-person verification at a counter. The server
/// checks that `officer_id` holds the officer role and signs the record into
/// the audit log; this type only carries what the officer attested.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfficerAttestation {
    /// The officer's account id.
    pub officer_id: String,
    /// How the ID card was validated.
    pub method: AttestationMethod,
    /// Every document examined.
    pub documents_seen: Vec<DocumentKind>,
    /// Whether a biometric comparison was made against the card's chip or the
    /// registry (fingerprint reader, or a face matcher at the counter) — beyond
    /// the officer's own look at the person and the card photo, which every
    /// in-person verification includes.
    pub biometric_checked: bool,
    /// Free text for the audit record. Do not put personal data here.
    pub note: Option<String>,
}

/// How an identity was proofed; recorded in the decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProofingMethod {
    /// The citizen typed their details; nothing was checked.
    SelfAsserted,
    /// The card details were checked remotely against the registry.
    RemoteRegistry,
    /// As above, plus a face comparison with liveness.
    RemoteRegistryFaceMatch,
    /// An officer verified the person in person, with a registry check.
    OfficerInPerson,
}

/// What happened during proofing: the input to [`decide`].
#[derive(Debug, Clone)]
pub enum ProofingPath {
    /// No check at all.
    SelfAsserted,
    /// Registry check done remotely, optionally with a face comparison.
    Remote {
        /// The card-status check.
        registry: RegistryCheck,
        /// A face comparison, if one was made.
        face_match: Option<FaceMatchResult>,
    },
    /// An officer at a counter, with a registry check.
    Officer {
        /// The card-status check.
        registry: RegistryCheck,
        /// What the officer attested.
        attestation: OfficerAttestation,
    },
}

/// Limits applied by [`decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionPolicy {
    /// Oldest registry check that still counts. Default 15 minutes: long
    /// enough for a citizen to finish the form, short enough that a card
    /// cancelled meanwhile is not accepted on an old answer.
    pub max_registry_age: Duration,
}

impl Default for DecisionPolicy {
    fn default() -> Self {
        Self {
            max_registry_age: Duration::minutes(15),
        }
    }
}

/// The outcome of proofing, for the account and the audit record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProofingDecision {
    /// The level reached.
    pub ial: Ial,
    /// How it was reached.
    pub method: ProofingMethod,
    /// The registry connector consulted, if any.
    pub connector: Option<String>,
    /// Its answer (meaning, code and description), if any.
    pub registry_answer: Option<CardStatusAnswer>,
    /// Digest of the evidence decided on.
    pub evidence_digest: EvidenceDigest,
    /// When the decision was made.
    #[serde(with = "time::serde::rfc3339")]
    pub decided_at: OffsetDateTime,
    /// The officer's attestation, for in-person proofing.
    pub officer: Option<OfficerAttestation>,
    /// The face comparison, if one was made.
    pub face_match: Option<FaceMatchResult>,
}

/// Why proofing was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecisionError {
    /// The registry has no valid card with this laser code for this id. The
    /// citizen should check the card (a replaced card has a new laser code).
    #[error("no valid card was found for these details")]
    CardNotFound,
    /// A detail differs from the registry. The citizen should check the form.
    #[error("the details do not match the registry")]
    DetailsMismatch,
    /// The registry says a field was missing (a bug on our side: the evidence
    /// was validated before the check).
    #[error("the registry reported incomplete input")]
    RegistryIncomplete,
    /// The registry could not answer; try later.
    #[error("the registry is unavailable ({reason}); try again later")]
    RegistryUnavailable {
        /// Why.
        reason: UnavailableReason,
    },
    /// The registry check was about different evidence (a bug in the caller).
    #[error("the registry check does not belong to this evidence")]
    EvidenceMismatch,
    /// The registry check is too old, or dated in the future; check again.
    #[error("the registry check is too old; check again")]
    StaleRegistryCheck,
    /// The face comparison did not match, was inconclusive, or failed liveness.
    #[error("the face comparison did not confirm the applicant")]
    FaceNotConfirmed {
        /// The matcher's verdict.
        decision: FaceDecision,
        /// Whether liveness passed.
        liveness_passed: bool,
    },
    /// The officer did not record seeing the Thai ID card whose status was checked.
    #[error("the officer must examine the ID card that was checked")]
    IdCardNotSeen,
    /// The attestation is malformed (empty or oversized officer id, oversized note).
    #[error("invalid officer attestation: {0}")]
    InvalidAttestation(&'static str),
}

impl DecisionError {
    /// The stable code a client is answered with and a refusal is audited by.
    pub fn code(&self) -> tuaton_core::ErrorCode {
        use tuaton_core::ErrorCode as C;
        match self {
            Self::CardNotFound => C::CardNotFound,
            Self::DetailsMismatch | Self::FaceNotConfirmed { .. } => C::DetailsMismatch,
            Self::RegistryUnavailable { .. } => C::RegistryUnavailable,
            Self::IdCardNotSeen | Self::InvalidAttestation(_) => C::InvalidAttestation,
            Self::RegistryIncomplete | Self::EvidenceMismatch | Self::StaleRegistryCheck => {
                C::InternalError
            }
        }
    }
}

/// Decides the level reached by a proofing attempt; see the module table.
pub fn decide(
    evidence: &CitizenEvidence,
    path: ProofingPath,
    policy: &DecisionPolicy,
    clock: &dyn Clock,
) -> Result<ProofingDecision, DecisionError> {
    let now = clock.now();
    let digest = evidence.evidence_digest();
    let decision =
        |ial, method, registry: Option<RegistryCheck>, officer, face_match| ProofingDecision {
            ial,
            method,
            connector: registry.as_ref().map(|r| r.connector().to_owned()),
            registry_answer: registry.map(|r| r.answer().clone()),
            evidence_digest: digest.clone(),
            decided_at: now,
            officer,
            face_match,
        };
    match path {
        ProofingPath::SelfAsserted => Ok(decision(
            Ial::Ial1_1,
            ProofingMethod::SelfAsserted,
            None,
            None,
            None,
        )),
        ProofingPath::Remote {
            registry,
            face_match,
        } => {
            require_valid(&registry, &digest, policy, now)?;
            match face_match {
                None => Ok(decision(
                    Ial::Ial2_1,
                    ProofingMethod::RemoteRegistry,
                    Some(registry),
                    None,
                    None,
                )),
                Some(f) if f.accepted() => Ok(decision(
                    Ial::Ial2_2,
                    ProofingMethod::RemoteRegistryFaceMatch,
                    Some(registry),
                    None,
                    Some(f),
                )),
                Some(f) => Err(DecisionError::FaceNotConfirmed {
                    decision: f.decision,
                    liveness_passed: f.liveness_passed,
                }),
            }
        }
        ProofingPath::Officer {
            registry,
            attestation,
        } => {
            check_attestation(&attestation)?;
            require_valid(&registry, &digest, policy, now)?;
            let ial = officer_level(&attestation)?;
            Ok(decision(
                ial,
                ProofingMethod::OfficerInPerson,
                Some(registry),
                Some(attestation),
                None,
            ))
        }
    }
}

/// The level an officer's attestation supports, given a valid registry check.
pub fn officer_level(a: &OfficerAttestation) -> Result<Ial, DecisionError> {
    let docs: BTreeSet<DocumentKind> = a.documents_seen.iter().copied().collect();
    if !docs.contains(&DocumentKind::ThaiIdCard) {
        return Err(DecisionError::IdCardNotSeen);
    }
    Ok(match (a.biometric_checked, a.method, docs.len()) {
        (true, AttestationMethod::ChipRead, n) if n >= 2 => Ial::Ial3,
        (true, _, _) => Ial::Ial2_3,
        (false, _, _) => Ial::Ial2_2,
    })
}

fn check_attestation(a: &OfficerAttestation) -> Result<(), DecisionError> {
    let id = a.officer_id.trim();
    if id.is_empty() {
        return Err(DecisionError::InvalidAttestation("officer_id is empty"));
    }
    if id.chars().count() > MAX_OFFICER_ID_CHARS {
        return Err(DecisionError::InvalidAttestation("officer_id is too long"));
    }
    if a.note
        .as_ref()
        .is_some_and(|n| n.chars().count() > MAX_NOTE_CHARS)
    {
        return Err(DecisionError::InvalidAttestation("note is too long"));
    }
    Ok(())
}

fn require_valid(
    check: &RegistryCheck,
    digest: &EvidenceDigest,
    policy: &DecisionPolicy,
    now: OffsetDateTime,
) -> Result<(), DecisionError> {
    if check.evidence_digest() != digest {
        return Err(DecisionError::EvidenceMismatch);
    }
    let age = now - check.checked_at();
    // A minute of tolerance for clocks of different instances.
    if age > policy.max_registry_age || age < -Duration::minutes(1) {
        return Err(DecisionError::StaleRegistryCheck);
    }
    match &check.answer().status {
        CardStatus::Valid => Ok(()),
        CardStatus::NotFound => Err(DecisionError::CardNotFound),
        CardStatus::Mismatch => Err(DecisionError::DetailsMismatch),
        CardStatus::Incomplete => Err(DecisionError::RegistryIncomplete),
        CardStatus::Unavailable { reason } => Err(DecisionError::RegistryUnavailable {
            reason: reason.clone(),
        }),
    }
}
