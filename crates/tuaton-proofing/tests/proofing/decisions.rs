//! Level decisions: each row of the table in docs/assurance.md, and each refusal.

use async_trait::async_trait;
use time::macros::datetime;
use tuaton_core::{FixedClock, Ial};
use tuaton_proofing::face::ReferenceSource;
use tuaton_proofing::{
    AttestationMethod, CardStatusAnswer, CardStatusQuery, CardStatusRegistry, DecisionError,
    DecisionPolicy, DevRegistry, DocumentKind, FaceDecision, FaceMatchResult, OfficerAttestation,
    ProofingMethod, ProofingPath, RegistryCheck, RegistryRawAnswer, UnavailableReason, check_card,
    decide,
};

use super::{NATTAWUT_REVOKED, SOMCHAI, SOMYING, evidence_of};

fn clock() -> FixedClock {
    FixedClock::new(datetime!(2026-06-01 09:00 UTC))
}

async fn dev_check(pid: &str, clock: &FixedClock) -> RegistryCheck {
    check_card(&DevRegistry::embedded().unwrap(), &evidence_of(pid), clock).await
}

/// A registry that always gives the same answer.
struct Canned(CardStatusAnswer);

#[async_trait]
impl CardStatusRegistry for Canned {
    fn name(&self) -> &str {
        "canned"
    }
    async fn check(&self, _: &CardStatusQuery) -> CardStatusAnswer {
        self.0.clone()
    }
}

fn officer(
    method: AttestationMethod,
    docs: &[DocumentKind],
    biometric: bool,
) -> OfficerAttestation {
    OfficerAttestation {
        officer_id: "officer-0001".into(),
        method,
        documents_seen: docs.to_vec(),
        biometric_checked: biometric,
        note: Some("counter 3".into()),
    }
}

fn face(decision: FaceDecision, liveness_passed: bool) -> FaceMatchResult {
    FaceMatchResult {
        matcher: "test-double".into(),
        score: 0.9,
        liveness_passed,
        decision,
        reference: ReferenceSource::CardChip,
    }
}

async fn officer_decision(a: OfficerAttestation) -> Result<Ial, DecisionError> {
    let c = clock();
    let registry = dev_check(SOMCHAI, &c).await;
    decide(
        &evidence_of(SOMCHAI),
        ProofingPath::Officer {
            registry,
            attestation: a,
        },
        &DecisionPolicy::default(),
        &c,
    )
    .map(|d| d.ial)
}

#[test]
fn self_asserted_is_ial1_1() {
    let d = decide(
        &evidence_of(SOMCHAI),
        ProofingPath::SelfAsserted,
        &DecisionPolicy::default(),
        &clock(),
    )
    .unwrap();
    assert_eq!(d.ial, Ial::Ial1_1);
    assert_eq!(d.method, ProofingMethod::SelfAsserted);
    assert!(d.connector.is_none() && d.registry_answer.is_none());
}

#[tokio::test]
async fn remote_registry_check_is_ial2_1_and_recorded_for_audit() {
    let c = clock();
    let e = evidence_of(SOMCHAI);
    let registry = dev_check(SOMCHAI, &c).await;
    let d = decide(
        &e,
        ProofingPath::Remote {
            registry,
            face_match: None,
        },
        &DecisionPolicy::default(),
        &c,
    )
    .unwrap();
    assert_eq!(d.ial, Ial::Ial2_1);
    assert_eq!(d.method, ProofingMethod::RemoteRegistry);
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(json["ial"], 2.1);
    assert_eq!(json["method"], "remote_registry");
    assert_eq!(json["connector"], "dev-registry");
    assert_eq!(json["registry_answer"]["status"]["status"], "valid");
    assert_eq!(json["registry_answer"]["raw"]["code"], 0);
    assert_eq!(json["evidence_digest"], e.evidence_digest().as_str());
    assert_eq!(json["decided_at"], "2026-06-01T09:00:00Z");
    // The audit record holds no personal field of the evidence.
    let text = json.to_string();
    for personal in [
        "สมชาย",
        "Somchai",
        "1999000000017",
        "JT0123456789",
        "25070222",
    ] {
        assert!(!text.contains(personal), "{personal} in {text}");
    }
    let back: tuaton_proofing::ProofingDecision = serde_json::from_value(json).unwrap();
    assert_eq!(back, d);
}

#[tokio::test]
async fn remote_with_accepted_face_match_is_ial2_2() {
    let c = clock();
    let registry = dev_check(SOMCHAI, &c).await;
    let path = ProofingPath::Remote {
        registry,
        face_match: Some(face(FaceDecision::Match, true)),
    };
    let d = decide(&evidence_of(SOMCHAI), path, &DecisionPolicy::default(), &c).unwrap();
    assert_eq!(d.ial, Ial::Ial2_2);
    assert_eq!(d.method, ProofingMethod::RemoteRegistryFaceMatch);
}

#[tokio::test]
async fn failed_face_match_or_liveness_refuses() {
    for (decision, live) in [
        (FaceDecision::NoMatch, true),
        (FaceDecision::Inconclusive, true),
        (FaceDecision::Match, false),
    ] {
        let c = clock();
        let registry = dev_check(SOMCHAI, &c).await;
        let path = ProofingPath::Remote {
            registry,
            face_match: Some(face(decision, live)),
        };
        let err = decide(&evidence_of(SOMCHAI), path, &DecisionPolicy::default(), &c).unwrap_err();
        assert_eq!(
            err,
            DecisionError::FaceNotConfirmed {
                decision,
                liveness_passed: live
            }
        );
    }
}

#[tokio::test]
async fn officer_levels_follow_the_table() {
    use AttestationMethod::*;
    use DocumentKind::*;
    assert_eq!(
        officer_decision(officer(VisualInspection, &[ThaiIdCard], false)).await,
        Ok(Ial::Ial2_2)
    );
    assert_eq!(
        officer_decision(officer(ChipRead, &[ThaiIdCard, Passport], false)).await,
        Ok(Ial::Ial2_2)
    );
    assert_eq!(
        officer_decision(officer(VisualInspection, &[ThaiIdCard], true)).await,
        Ok(Ial::Ial2_3)
    );
    assert_eq!(
        officer_decision(officer(VisualInspection, &[ThaiIdCard, Passport], true)).await,
        Ok(Ial::Ial2_3)
    );
    assert_eq!(
        officer_decision(officer(ChipRead, &[ThaiIdCard], true)).await,
        Ok(Ial::Ial2_3)
    );
    assert_eq!(
        officer_decision(officer(ChipRead, &[ThaiIdCard, Passport], true)).await,
        Ok(Ial::Ial3)
    );
    // The same document twice is one document.
    assert_eq!(
        officer_decision(officer(ChipRead, &[ThaiIdCard, ThaiIdCard], true)).await,
        Ok(Ial::Ial2_3)
    );
}

#[tokio::test]
async fn officer_must_see_the_id_card_and_be_named() {
    use AttestationMethod::*;
    use DocumentKind::*;
    assert_eq!(
        officer_decision(officer(ChipRead, &[Passport, HouseRegistration], true)).await,
        Err(DecisionError::IdCardNotSeen)
    );
    let mut nameless = officer(VisualInspection, &[ThaiIdCard], false);
    nameless.officer_id = "  ".into();
    assert!(matches!(
        officer_decision(nameless).await,
        Err(DecisionError::InvalidAttestation(_))
    ));
    let mut chatty = officer(VisualInspection, &[ThaiIdCard], false);
    chatty.note = Some("x".repeat(501));
    assert!(matches!(
        officer_decision(chatty).await,
        Err(DecisionError::InvalidAttestation(_))
    ));
}

#[tokio::test]
async fn officer_path_still_needs_a_valid_registry_answer() {
    let c = clock();
    let registry = dev_check(NATTAWUT_REVOKED, &c).await;
    let path = ProofingPath::Officer {
        registry,
        attestation: officer(
            AttestationMethod::ChipRead,
            &[DocumentKind::ThaiIdCard, DocumentKind::Passport],
            true,
        ),
    };
    assert_eq!(
        decide(
            &evidence_of(NATTAWUT_REVOKED),
            path,
            &DecisionPolicy::default(),
            &c
        ),
        Err(DecisionError::CardNotFound)
    );
}

#[tokio::test]
async fn registry_refusals_refuse_proofing() {
    let c = clock();
    let revoked = dev_check(NATTAWUT_REVOKED, &c).await;
    let err = decide(
        &evidence_of(NATTAWUT_REVOKED),
        ProofingPath::Remote {
            registry: revoked,
            face_match: None,
        },
        &DecisionPolicy::default(),
        &c,
    );
    assert_eq!(err, Err(DecisionError::CardNotFound));

    let mut wrong = evidence_of(SOMYING);
    wrong.laser_code = "ME1-0234567-02".parse().unwrap();
    let check = check_card(&DevRegistry::embedded().unwrap(), &wrong, &c).await;
    let err = decide(
        &wrong,
        ProofingPath::Remote {
            registry: check,
            face_match: None,
        },
        &DecisionPolicy::default(),
        &c,
    );
    assert_eq!(err, Err(DecisionError::DetailsMismatch));

    let incomplete = Canned(CardStatusAnswer {
        status: tuaton_proofing::CardStatus::Incomplete,
        raw: RegistryRawAnswer {
            is_error: Some(false),
            code: Some(5),
            ..Default::default()
        },
    });
    let check = check_card(&incomplete, &evidence_of(SOMCHAI), &c).await;
    let err = decide(
        &evidence_of(SOMCHAI),
        ProofingPath::Remote {
            registry: check,
            face_match: None,
        },
        &DecisionPolicy::default(),
        &c,
    );
    assert_eq!(err, Err(DecisionError::RegistryIncomplete));
}

#[tokio::test]
async fn unavailable_registry_means_try_later_never_a_level() {
    let c = clock();
    let down = Canned(CardStatusAnswer::unavailable(
        UnavailableReason::CircuitOpen,
    ));
    let check = check_card(&down, &evidence_of(SOMCHAI), &c).await;
    let path = ProofingPath::Officer {
        registry: check,
        attestation: officer(
            AttestationMethod::ChipRead,
            &[DocumentKind::ThaiIdCard, DocumentKind::Passport],
            true,
        ),
    };
    let err = decide(&evidence_of(SOMCHAI), path, &DecisionPolicy::default(), &c).unwrap_err();
    assert_eq!(
        err,
        DecisionError::RegistryUnavailable {
            reason: UnavailableReason::CircuitOpen
        }
    );
    assert!(err.to_string().contains("try again later"));
}

#[tokio::test]
async fn a_check_of_other_evidence_is_refused() {
    let c = clock();
    let check = dev_check(SOMYING, &c).await;
    let err = decide(
        &evidence_of(SOMCHAI),
        ProofingPath::Remote {
            registry: check,
            face_match: None,
        },
        &DecisionPolicy::default(),
        &c,
    );
    assert_eq!(err, Err(DecisionError::EvidenceMismatch));
}

#[tokio::test]
async fn an_old_registry_check_must_be_repeated() {
    let c = clock();
    let check = dev_check(SOMCHAI, &c).await;
    c.advance(time::Duration::minutes(16));
    let err = decide(
        &evidence_of(SOMCHAI),
        ProofingPath::Remote {
            registry: check.clone(),
            face_match: None,
        },
        &DecisionPolicy::default(),
        &c,
    );
    assert_eq!(err, Err(DecisionError::StaleRegistryCheck));
    let lenient = DecisionPolicy {
        max_registry_age: time::Duration::hours(1),
    };
    assert!(
        decide(
            &evidence_of(SOMCHAI),
            ProofingPath::Remote {
                registry: check,
                face_match: None
            },
            &lenient,
            &c
        )
        .is_ok()
    );
}
