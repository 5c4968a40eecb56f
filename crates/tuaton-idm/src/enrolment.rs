//! Enrolment and identity proofing: remote (a registry check) and in person (an officer).

use serde_json::json;
use time::OffsetDateTime;
use tuaton_core::{AccountId, ErrorCode, FixedClock, Ial};
use tuaton_proofing::{
    AttestationMethod, CitizenEvidence, CitizenEvidenceInput, DecisionPolicy, DocumentKind,
    OfficerAttestation, ProofingDecision, ProofingPath, check_card, decide,
};
use tuaton_store::ceremonies::{self, Begun, CeremonyKind};
use tuaton_store::companies::Role;
use tuaton_store::passkeys::{self as creds, PasskeyState};
use tuaton_store::{Tx, accounts, companies, proofing, recoveries};

use crate::audit::{self, Actor, action};
use crate::sessions::ActiveSession;
use crate::{Idm, IdmError, Registry};

/// Parses the card's details as entered; each field's error is named.
pub fn parse_evidence(
    input: &CitizenEvidenceInput,
    now: OffsetDateTime,
) -> Result<CitizenEvidence, IdmError> {
    CitizenEvidence::parse(input, now.date())
        .map_err(|e| IdmError::invalid(ErrorCode::InvalidEvidence, e.to_string()))
}

/// Where security notices and recovery messages go: an address the mail
/// transport itself accepts (lettre's parser, the one delivery uses), so a
/// notice is never queued to an address it would refuse to send to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactEmail(String);

impl ContactEmail {
    /// Parses an address as entered; blank means none.
    pub fn parse_optional(s: Option<&str>) -> Result<Option<Self>, IdmError> {
        let Some(e) = s.map(str::trim).filter(|e| !e.is_empty()) else {
            return Ok(None);
        };
        let ok = e.len() <= 254
            && e.parse::<lettre::Address>()
                .is_ok_and(|a| a.domain().contains('.'));
        if ok {
            Ok(Some(Self(e.to_owned())))
        } else {
            Err(IdmError::invalid(
                ErrorCode::InvalidContactEmail,
                "contact_email is not an e-mail address.",
            ))
        }
    }
}

/// What an officer checked at the counter.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfficerAttestationInput {
    /// How the ID card was validated.
    pub method: AttestationMethod,
    /// Every document examined.
    pub documents_seen: Vec<DocumentKind>,
    /// Whether a biometric comparison was made.
    pub biometric_checked: bool,
    /// Free text for the audit record, without personal data.
    #[serde(default)]
    pub note: Option<String>,
}

/// An account proofed: its level, and a grant to register a passkey when it has no usable one.
#[derive(Debug)]
pub struct Enrolled {
    /// The account.
    pub account_id: AccountId,
    /// Its identity level now.
    pub ial: Ial,
    /// The grant for `/passkeys/registration/start`, if the account has no active passkey.
    pub grant: Option<Begun>,
}

/// What an officer re-proofing an existing account is asked for.
#[derive(Debug, Clone, Copy, Default)]
pub struct CounterRecovery {
    /// The person lost their passkeys (or had them stolen): hand over a
    /// grant that completes a recovery. Given anyway when the account has no
    /// active passkey.
    pub recover: bool,
    /// Keep the account's other passkeys when the new one is registered.
    pub keep_passkeys: bool,
}

impl Idm {
    /// Enrols a citizen whose card the registry confirms (IAL2.1). Whether
    /// the citizen id is enrolled already is looked at only after the
    /// registry has confirmed the card's details, so a stranger with a
    /// guessed id (or a wrong card) learns the same either way.
    pub async fn enrol(
        &self,
        evidence: &CitizenEvidence,
        contact: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Enrolled, IdmError> {
        let contact = ContactEmail::parse_optional(contact)?;
        let decision = self
            .proof(evidence, None, None, &Actor::Anonymous, now)
            .await?;
        self.record_proofing(evidence, contact, &decision, None, now)
            .await
    }

    /// Records an officer's in-person proofing (IAL2.2 to IAL3): creates the
    /// account, or raises the level of the existing one. The card's details
    /// are parsed only once the officer's role is confirmed.
    pub async fn officer_proofing(
        &self,
        officer: &ActiveSession,
        evidence: &CitizenEvidenceInput,
        attestation: OfficerAttestationInput,
        contact: Option<&str>,
        choice: CounterRecovery,
        now: OffsetDateTime,
    ) -> Result<Enrolled, IdmError> {
        let roles =
            companies::roles(self.store().conn().await?.conn(), &officer.account_id).await?;
        if !roles.contains(&Role::Officer) {
            return Err(IdmError::OfficerRoleRequired);
        }
        let evidence = &parse_evidence(evidence, now)?;
        let attestation = OfficerAttestation {
            officer_id: officer.account_id.to_string(),
            method: attestation.method,
            documents_seen: attestation.documents_seen,
            biometric_checked: attestation.biometric_checked,
            note: attestation.note,
        };
        let actor = Actor::Officer(officer.account_id.clone());
        let decision = self
            .proof(evidence, Some(attestation), None, &actor, now)
            .await?;
        let contact = ContactEmail::parse_optional(contact)?;
        let at_counter = Some((&officer.account_id, choice));
        self.record_proofing(evidence, contact, &decision, at_counter, now)
            .await
    }

    /// Runs the registry check and the level decision; audits a refusal by
    /// the evidence digest, never by personal data. With a live capture, the
    /// face is compared only once the card's details have checked out, so a
    /// stranger with a guessed id cannot make Tuaton fetch a reference face.
    pub(crate) async fn proof(
        &self,
        evidence: &CitizenEvidence,
        officer: Option<OfficerAttestation>,
        face: Option<&tuaton_proofing::LiveCapture>,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<ProofingDecision, IdmError> {
        let Some(registry) = self.parts().card_registry.clone() else {
            return Err(IdmError::RegistryNotConfigured(Registry::CardStatus));
        };
        let clock = FixedClock::new(now);
        let check = check_card(registry.as_ref(), evidence, &clock).await;
        let refused = |e: tuaton_proofing::DecisionError| async move {
            let target = self
                .refusal_digest(&evidence.evidence_digest(), now)
                .await?;
            let ev = audit::failure(actor, action::PROOFING_REFUSED, target)
                .with_details(json!({ "reason": e.code(), "connector": registry.name() }));
            audit::alone(self.store(), now, &ev).await?;
            Err::<ProofingDecision, IdmError>(e.into())
        };
        let path = match (officer, face) {
            (Some(attestation), _) => ProofingPath::Officer {
                registry: check,
                attestation,
            },
            (None, None) => ProofingPath::Remote {
                registry: check,
                face_match: None,
            },
            (None, Some(capture)) => {
                let card_alone = ProofingPath::Remote {
                    registry: check.clone(),
                    face_match: None,
                };
                if let Err(e) = decide(evidence, card_alone, &DecisionPolicy::default(), &clock) {
                    return refused(e).await;
                }
                ProofingPath::Remote {
                    registry: check,
                    face_match: Some(self.compare_face(evidence, capture).await?),
                }
            }
        };
        match decide(evidence, path, &DecisionPolicy::default(), &clock) {
            Ok(d) => Ok(d),
            Err(e) => refused(e).await,
        }
    }

    /// Records a decision (and creates the account when new) with its audit
    /// record, atomically; then grants a passkey registration: an
    /// enrolment's grant for a new account, and for an existing one re-proofed
    /// at the counter the grant of a recovery that is ready at once (which
    /// removes the other passkeys when used, unless they are kept).
    async fn record_proofing(
        &self,
        evidence: &CitizenEvidence,
        contact: Option<ContactEmail>,
        decision: &ProofingDecision,
        at_counter: Option<(&AccountId, CounterRecovery)>,
        now: OffsetDateTime,
    ) -> Result<Enrolled, IdmError> {
        let officer = at_counter.map(|(o, _)| o);
        let mut tx = self.store().begin().await?;
        let existing = accounts::by_citizen_id(tx.conn(), &evidence.citizen_id.compact()).await?;
        let (account_id, ial, new) = match existing {
            Some(_) if officer.is_none() => return Err(IdmError::AlreadyEnrolled),
            Some(acc) => {
                let ial = acc.ial.max(decision.ial);
                accounts::set_ial(&mut tx, &acc.id, ial, now).await?;
                (acc.id, ial, false)
            }
            None => {
                let new = accounts::NewAccount {
                    citizen_id: evidence.citizen_id.compact(),
                    thai_given: evidence.thai_name.given().to_owned(),
                    thai_family: evidence.thai_name.family().to_owned(),
                    en_given: evidence.english_name.as_ref().map(|n| n.given().to_owned()),
                    en_family: evidence
                        .english_name
                        .as_ref()
                        .map(|n| n.family().to_owned()),
                    birth_date: evidence.birth_date.to_string(),
                    contact_email: contact.map(|c| c.0),
                    ial: decision.ial,
                };
                let acc = accounts::insert(&mut tx, &new, &tuaton_store::new_id(), now).await?;
                (acc.id, decision.ial, true)
            }
        };
        let digest = self
            .account_digest(&mut tx, &account_id, &decision.evidence_digest)
            .await?;
        let decision_id = insert_decision(&mut tx, &account_id, decision, &digest, officer).await?;
        // Re-proofed at the counter: a recovery that is ready at once, when
        // the person asks for one or has no active passkey left.
        let recovery = match at_counter {
            Some((_, choice)) if !new => {
                let has_active = creds::for_account(tx.conn(), &account_id)
                    .await?
                    .iter()
                    .any(|p| p.state == PasskeyState::Active);
                if choice.recover || !has_active {
                    let r = self.officer_recovery(&account_id, &decision_id, now)?;
                    recoveries::insert(&mut tx, &r).await?;
                    Some(r)
                } else {
                    None
                }
            }
            _ => None,
        };
        let (actor, act) = match officer {
            Some(o) => (Actor::Officer(o.clone()), action::OFFICER_PROOFING),
            None => (Actor::Account(account_id.clone()), action::ENROL),
        };
        let details = json!({
            "decision": decision_id,
            "method": method_label(decision),
            "ial": decision.ial.number(),
            "connector": decision.connector,
            "registry_status": decision.registry_answer.as_ref().map(|a| a.status.label()),
            "evidence_digest": digest,
            "attestation": decision.officer.as_ref().map(|a| json!({
                "method": a.method, "documents_seen": a.documents_seen, "biometric_checked": a.biometric_checked,
            })),
            "new_account": new,
        });
        let ev = audit::success(&actor, act, account_id.to_string()).with_details(details);
        tuaton_store::audit::append(&mut tx, now, &ev).await?;
        tx.commit().await?;

        let grant = match (&recovery, at_counter) {
            (Some(r), Some((officer, choice))) => Some(
                self.officer_grant(r, choice.keep_passkeys, officer, now)
                    .await?,
            ),
            _ if new => Some(self.grant_registration(&account_id, now).await?),
            _ => None,
        };
        self.prepare_signer(&account_id, now).await;
        Ok(Enrolled {
            account_id,
            ial,
            grant,
        })
    }

    /// Stores a grant to register a passkey for `account`, durably.
    pub(crate) async fn grant_registration(
        &self,
        account: &AccountId,
        now: OffsetDateTime,
    ) -> Result<Begun, IdmError> {
        Ok(ceremonies::put(
            self.store(),
            CeremonyKind::EnrolmentGrant,
            Some(account),
            "{}",
            now,
        )
        .await?)
    }
}

/// Stores a proofing decision in `tx`, its evidence kept as `digest` (keyed
/// under the account's evidence key); returns its id.
pub(crate) async fn insert_decision(
    tx: &mut Tx,
    account: &AccountId,
    decision: &ProofingDecision,
    digest: &str,
    officer: Option<&AccountId>,
) -> Result<String, IdmError> {
    let answer = serde_json::to_value(&decision.registry_answer).map_err(IdmError::internal)?;
    Ok(proofing::insert(
        tx,
        &proofing::NewDecision {
            account_id: account,
            method: &method_label(decision),
            connector: decision.connector.as_deref().unwrap_or("none"),
            registry_answer: &answer,
            evidence_digest: digest,
            ial: decision.ial,
            officer_id: officer.map(AccountId::as_str),
            decided_at: decision.decided_at,
        },
    )
    .await?)
}

/// The stored name of the proofing method (`remote_registry`, `officer_in_person`, …).
pub(crate) fn method_label(d: &ProofingDecision) -> String {
    serde_json::to_value(d.method)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
