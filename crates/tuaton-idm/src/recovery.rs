//! Account recovery: someone who lost every passkey proves their identity
//! again and, once the owner has had time to object, gets a grant to
//! register a new one.
//!
//! The attacker this is built against holds a photocopy of the victim's ID
//! card, front and back (copies are handed over for everyday errands in
//! Thailand), so the card's details alone must not win an account. Rules
//! (docs/operators/recovery.md):
//!
//! - A remote request ([`Idm::request_recovery`]) is checked with the
//!   registry as at enrolment and starts a cooling-off period
//!   ([`Policy::recovery_cooling_off`](crate::Policy)); the owner is told on
//!   every channel on file at once, with a link that cancels the request with
//!   any of the account's passkeys ([`Idm::start_recovery_cancel`],
//!   [`Idm::finish_recovery_cancel`]) or from a signed-in session.
//! - Only after it does the requester's token give a grant
//!   ([`Idm::claim_recovery`]); at once only after an officer's in-person
//!   proofing (enrolment.rs) or an accepted, liveness-checked face match.
//! - Registering a passkey with the grant completes the recovery in the
//!   transaction that stores the passkey: unless the requester chose to keep
//!   them, the old passkeys are removed, and every session is ended.
//! - Only active accounts, and only at the level the proofing reaches again
//!   (a registry check gives IAL2.1, with a face match 2.2). Every step is
//!   audited, without personal data.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use tuaton_core::{AccountId, ErrorCode, Ial};
use tuaton_passkeys::StoredCredential;
use tuaton_proofing::{CitizenEvidence, FaceMatchResult, LiveCapture};
use tuaton_store::Tx;
use tuaton_store::accounts::{self, AccountState};
use tuaton_store::batch::Batch;
use tuaton_store::ceremonies::{self, Begun, CeremonyKind};
use tuaton_store::notifications::{self, Channel, NewNotification, NotificationKind};
use tuaton_store::passkeys::{self as creds, PasskeyState};
use tuaton_store::recoveries::{self, RecoveryPath, RecoveryRecord, RecoveryState};
use tuaton_store::sessions;

use crate::audit::{self, Actor, action};
use crate::enrolment::{insert_decision, method_label};
use crate::login::{Assertion, LoginChallenge};
use crate::sessions::ActiveSession;
use crate::{Idm, IdmError};

/// Open recoveries an account may have at once; more requests are answered
/// as if accepted but create nothing and send nothing, so a holder of a
/// photocopy cannot flood the owner's inbox.
pub const MAX_OPEN_RECOVERIES: usize = 3;

const CANCEL: Assertion = Assertion {
    kind: CeremonyKind::RecoveryCancel,
    action: action::RECOVERY_CANCEL,
};

/// A recovery request taken: come back with `token` from `ready_at`.
///
/// The same shape, with made-up values, answers details that match no open
/// account or an account with as many open recoveries as it may have: only
/// the registry's refusal of the card itself is said outright.
#[derive(Debug)]
pub struct RecoveryRequested {
    /// The recovery's id (also in the owner's notice).
    pub recovery_id: String,
    /// The requester's secret; only its digest is stored.
    pub token: String,
    /// From when [`Idm::claim_recovery`] gives a grant.
    pub ready_at: OffsetDateTime,
    /// After this the recovery gives nothing.
    pub expires_at: OffsetDateTime,
}

/// A recovery's grant: register a passkey with it.
#[derive(Debug)]
pub struct RecoveryGrant {
    /// The account.
    pub account_id: AccountId,
    /// Its identity level (unchanged by recovery).
    pub ial: Ial,
    /// The grant for `/passkeys/registration/start`.
    pub grant: Begun,
    /// Whether the account's other passkeys stay when the new one is registered.
    pub keep_passkeys: bool,
}

/// An open recovery as its owner sees it.
#[derive(Debug, Clone, Serialize)]
pub struct OpenRecovery {
    /// Its id.
    pub id: String,
    /// How the person was proofed (`remote`, `officer`, `face_match`).
    pub path: RecoveryPath,
    /// When it was asked for.
    #[serde(with = "time::serde::rfc3339")]
    pub requested_at: OffsetDateTime,
    /// From when it gives a grant.
    #[serde(with = "time::serde::rfc3339")]
    pub ready_at: OffsetDateTime,
}

/// What a grant carries beside its account (stored as the ceremony's state).
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct GrantState {
    /// The recovery the grant completes; none for an enrolment's grant.
    #[serde(default)]
    pub(crate) recovery: Option<String>,
    /// Keep the other passkeys when the new one is registered.
    #[serde(default)]
    pub(crate) keep_passkeys: bool,
}

impl GrantState {
    pub(crate) fn to_json(&self) -> Result<String, IdmError> {
        serde_json::to_string(self).map_err(IdmError::internal)
    }

    pub(crate) fn from_json(s: &str) -> Result<Self, IdmError> {
        serde_json::from_str(s).map_err(|_| crate::error::corrupt("a passkey grant"))
    }
}

/// A random 128-bit value, base64url.
fn random_value() -> Result<String, IdmError> {
    let mut b = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .map_err(|_| IdmError::internal("the system random source failed"))?;
    Ok(URL_SAFE_NO_PAD.encode(b))
}

fn token_digest(token: &str) -> String {
    hex::encode(ring::digest::digest(
        &ring::digest::SHA256,
        token.as_bytes(),
    ))
}

impl Idm {
    /// Takes a recovery request: checks the card with the registry (and the
    /// face, when a capture is given), then records a pending recovery and
    /// tells the owner. The card is checked before the account is looked up.
    pub async fn request_recovery(
        &self,
        evidence: &CitizenEvidence,
        face: Option<&LiveCapture>,
        now: OffsetDateTime,
    ) -> Result<RecoveryRequested, IdmError> {
        let decision = self
            .proof(evidence, None, face, &Actor::Anonymous, now)
            .await?;
        let at_once = decision.face_match.is_some();
        let made_up = |reason: ErrorCode, target: String| async move {
            audit::refused_alone(
                self.store(),
                now,
                &Actor::Anonymous,
                action::RECOVERY_REQUEST,
                target,
                reason,
            )
            .await?;
            self.stand_in_recovery(at_once, now)
        };
        let account = accounts::by_citizen_id(
            self.store().conn().await?.conn(),
            &evidence.citizen_id.compact(),
        )
        .await?
        .filter(|a| a.state != AccountState::Closed);
        let Some(account) = account else {
            // Audited by evidence digest only.
            let target = self
                .refusal_digest(&evidence.evidence_digest(), now)
                .await?;
            return made_up(ErrorCode::NoOpenAccount, target).await;
        };
        // Fail closed: a level the store cannot read is an error there, never a low one.
        let refusal = if account.state != AccountState::Active {
            Some(IdmError::AccountSuspended)
        } else if decision.ial < account.ial {
            Some(IdmError::OfficerRecoveryRequired)
        } else {
            None
        };
        if let Some(err) = refusal {
            audit::refused_alone(
                self.store(),
                now,
                &Actor::Anonymous,
                action::RECOVERY_REQUEST,
                account.id.to_string(),
                err.code(),
            )
            .await?;
            return Err(err);
        }
        let path = if at_once {
            RecoveryPath::FaceMatch
        } else {
            RecoveryPath::Remote
        };
        // Counted and recorded in one transaction, one request of an account at a time.
        let mut tx = self.store().begin().await?;
        recoveries::lock_account(&mut tx, &account.id).await?;
        let open = recoveries::open_for_account(tx.conn(), &account.id, now).await?;
        if open.len() >= MAX_OPEN_RECOVERIES {
            drop(tx);
            return made_up(ErrorCode::TooManyRecoveries, account.id.to_string()).await;
        }
        let digest = self
            .account_digest(&mut tx, &account.id, &decision.evidence_digest)
            .await?;
        let decision_id = insert_decision(&mut tx, &account.id, &decision, &digest, None).await?;
        let (record, token) = self.new_recovery(&account.id, &decision_id, path, now)?;
        recoveries::insert(&mut tx, &record).await?;
        let notified = queue_notice(
            &mut tx,
            &account.id,
            account.contact_email.as_deref(),
            NotificationKind::RecoveryRequested,
            &record.id,
            now,
        )
        .await?;
        let ev = audit::success(
            &Actor::Anonymous,
            action::RECOVERY_REQUEST,
            account.id.to_string(),
        )
        .with_details(json!({
            "recovery": record.id,
            "path": path,
            "decision": decision_id,
            "method": method_label(&decision),
            "ial": decision.ial.number(),
            "connector": decision.connector,
            "evidence_digest": digest,
            "face_match": decision.face_match.as_ref().map(|f| json!({
                "matcher": f.matcher, "score": f.score, "liveness_passed": f.liveness_passed,
            })),
            "ready_at": record.ready_at.unix_timestamp(),
            "notification": notified,
        }));
        tuaton_store::audit::append(&mut tx, now, &ev).await?;
        tx.commit().await?;
        Ok(RecoveryRequested {
            recovery_id: record.id,
            token,
            ready_at: record.ready_at,
            expires_at: record.expires_at,
        })
    }

    /// A recovery's grant, for the requester's token, once its cooling-off
    /// period is over. One answer for an unknown, cancelled, completed or
    /// expired recovery and a wrong token.
    pub async fn claim_recovery(
        &self,
        recovery_id: &str,
        token: &str,
        keep_passkeys: bool,
        now: OffsetDateTime,
    ) -> Result<RecoveryGrant, IdmError> {
        let found = recoveries::by_id(self.store().conn().await?.conn(), recovery_id).await?;
        let digest = token_digest(token);
        // Digests are compared, so the time taken says nothing about the token.
        let Some(recovery) = found.filter(|r| r.token_digest == digest) else {
            return Err(IdmError::UnknownRecovery);
        };
        self.count_attempt(&recovery.account_id)?;
        let refused = |err: IdmError| async {
            audit::refused_alone(
                self.store(),
                now,
                &Actor::Anonymous,
                action::RECOVERY_CLAIM,
                recovery.account_id.to_string(),
                err.code(),
            )
            .await?;
            Err(err)
        };
        if !recovery.is_open(now) {
            return refused(IdmError::UnknownRecovery).await;
        }
        if now < recovery.ready_at {
            return refused(IdmError::RecoveryCoolingOff {
                ready_at: recovery.ready_at,
                wait: recovery.ready_at - now,
            })
            .await;
        }
        let account = accounts::by_id(self.store().conn().await?.conn(), &recovery.account_id)
            .await?
            .ok_or(IdmError::UnknownRecovery)?;
        if account.state != AccountState::Active {
            return refused(IdmError::AccountNotActive).await;
        }
        // The level may have been raised since the request (at a counter):
        // a request's proofing must still reach it.
        let reached = tuaton_store::proofing::ial_of(
            self.store().conn().await?.conn(),
            &recovery.decision_id,
        )
        .await?;
        if !reaches(reached, account.ial) {
            return refused(IdmError::OfficerRecoveryRequired).await;
        }
        let grant = self
            .recovery_grant(&recovery, keep_passkeys, &Actor::Anonymous, now)
            .await?;
        Ok(RecoveryGrant {
            account_id: account.id,
            ial: account.ial,
            grant,
            keep_passkeys,
        })
    }

    /// Starts cancelling a recovery: a WebAuthn challenge for the account's
    /// active passkeys. Anyone holding the recovery's id may start; only a
    /// passkey of the account finishes.
    pub async fn start_recovery_cancel(
        &self,
        recovery_id: &str,
        now: OffsetDateTime,
    ) -> Result<LoginChallenge, IdmError> {
        let recovery = self.open_recovery_by_id(recovery_id, now).await?;
        self.count_attempt(&recovery.account_id)?;
        let active: Vec<StoredCredential> =
            creds::for_account(self.store().conn().await?.conn(), &recovery.account_id)
                .await?
                .into_iter()
                .filter(|p| p.state == PasskeyState::Active)
                .map(|p| StoredCredential::from_stored(p.credential))
                .collect();
        // An account without an active passkey is answered in the same shape
        // (a stand-in credential that nothing can assert), so the answer does
        // not say whose owner can no longer cancel.
        let (options, state) = if active.is_empty() {
            let (options, state) = self.passkeys().start_discoverable_login(now)?;
            let stand_in = self
                .stand_in_for(
                    b"recovery-cancel",
                    recovery.account_id.as_str().as_bytes(),
                    now,
                )
                .await?;
            (crate::login::with_credential(&options, &stand_in)?, state)
        } else {
            self.passkeys().start_login(&active, now)?
        };
        let begun = ceremonies::put_challenge(
            self.store(),
            CANCEL.kind,
            Some(&recovery.account_id),
            &state.to_json()?,
            now,
        )
        .await?;
        Ok(LoginChallenge {
            ceremony_id: begun.id,
            options,
        })
    }

    /// Finishes cancelling a recovery: the assertion is verified like a
    /// login's (a cloned authenticator is suspended), and the recovery is
    /// cancelled in the transaction that spends the ceremony. No session is made.
    pub async fn finish_recovery_cancel(
        &self,
        recovery_id: &str,
        ceremony_id: &str,
        response: &webauthn_rs::prelude::PublicKeyCredential,
        now: OffsetDateTime,
    ) -> Result<(), IdmError> {
        let (recognised, outcome) = self.assert(CANCEL, ceremony_id, response, now).await?;
        let (mut tx, place) = self.open_spending(CANCEL.kind, ceremony_id).await?;
        let actor = Actor::Account(recognised.account_id.clone());
        let recovery = recoveries::by_id(tx.conn(), recovery_id).await?;
        // Another account's recovery, or one no longer pending: nothing is
        // kept of this attempt but its audit record.
        let cancelled = recovery.is_some_and(|r| r.account_id == recognised.account_id)
            && recoveries::end(&mut tx, recovery_id, RecoveryState::Cancelled, now).await?;
        if !cancelled {
            drop(tx);
            audit::refused_alone(
                self.store(),
                now,
                &actor,
                action::RECOVERY_CANCEL,
                recognised.account_id.to_string(),
                ErrorCode::UnknownRecovery,
            )
            .await?;
            return Err(IdmError::UnknownRecovery);
        }
        let mut closing = Batch::new();
        closing.push(recognised.record_use(self.passkey_seal(), &outcome, now));
        let ev = audit::success(
            &actor,
            action::RECOVERY_CANCEL,
            recognised.account_id.to_string(),
        )
        .with_details(json!({
            "recovery": recovery_id, "cred_id": recognised.record.cred_id, "via": "passkey",
        }));
        place.write(now, &ev, &mut closing)?;
        tx.commit_with(closing).await?;
        Ok(())
    }

    /// Cancels a recovery of the signed-in account.
    pub async fn cancel_recovery(
        &self,
        session: &ActiveSession,
        recovery_id: &str,
        now: OffsetDateTime,
    ) -> Result<(), IdmError> {
        let mut tx = self.store().begin().await?;
        let recovery = recoveries::by_id(tx.conn(), recovery_id).await?;
        if recovery.is_none_or(|r| r.account_id != session.account_id)
            || !recoveries::end(&mut tx, recovery_id, RecoveryState::Cancelled, now).await?
        {
            return Err(IdmError::UnknownRecovery);
        }
        let ev = audit::success(
            &session.actor(),
            action::RECOVERY_CANCEL,
            session.account_id.to_string(),
        )
        .with_details(json!({ "recovery": recovery_id, "via": "session" }));
        tuaton_store::audit::append(&mut tx, now, &ev).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The account's open recoveries, oldest first.
    pub async fn open_recoveries(
        &self,
        account: &AccountId,
        now: OffsetDateTime,
    ) -> Result<Vec<OpenRecovery>, IdmError> {
        let open =
            recoveries::open_for_account(self.store().conn().await?.conn(), account, now).await?;
        Ok(open
            .into_iter()
            .map(|r| OpenRecovery {
                id: r.id,
                path: r.path,
                requested_at: r.requested_at,
                ready_at: r.ready_at,
            })
            .collect())
    }

    /// The recovery an officer's in-person proofing of an existing account
    /// starts, stored in the proofing's transaction: ready at once, and open
    /// only as long as the grant handed over at the counter.
    pub(crate) fn officer_recovery(
        &self,
        account: &AccountId,
        decision_id: &str,
        now: OffsetDateTime,
    ) -> Result<RecoveryRecord, IdmError> {
        let (mut record, _unused_token) =
            self.new_recovery(account, decision_id, RecoveryPath::Officer, now)?;
        record.expires_at = now + CeremonyKind::EnrolmentGrant.lifetime();
        Ok(record)
    }

    /// Stores the grant of a recovery an officer started, with its audit record.
    pub(crate) async fn officer_grant(
        &self,
        recovery: &RecoveryRecord,
        keep_passkeys: bool,
        officer: &AccountId,
        now: OffsetDateTime,
    ) -> Result<Begun, IdmError> {
        self.recovery_grant(
            recovery,
            keep_passkeys,
            &Actor::Officer(officer.clone()),
            now,
        )
        .await
    }

    /// Completes the recovery a grant names, in `tx` (the transaction that
    /// stores the new passkey `kept`): removes the other passkeys unless
    /// they are kept, ends every session, tells the owner and audits it.
    pub(crate) async fn complete_recovery(
        &self,
        tx: &mut Tx,
        grant: &GrantState,
        account: &AccountId,
        kept: &str,
        now: OffsetDateTime,
    ) -> Result<(), IdmError> {
        let Some(recovery_id) = &grant.recovery else {
            return Ok(());
        };
        let recovery = recoveries::by_id(tx.conn(), recovery_id)
            .await?
            .ok_or(IdmError::UnknownRecovery)?;
        let owner = accounts::by_id(tx.conn(), account)
            .await?
            .ok_or(IdmError::UnknownRecovery)?;
        let reached = tuaton_store::proofing::ial_of(tx.conn(), &recovery.decision_id).await?;
        if !reaches(reached, owner.ial) {
            return Err(IdmError::OfficerRecoveryRequired);
        }
        if !recoveries::end(tx, recovery_id, RecoveryState::Completed, now).await? {
            // Cancelled by the owner since the grant was given.
            return Err(IdmError::UnknownRecovery);
        }
        // Any other open request (an attacker's, filed beside the owner's)
        // would otherwise take the account back later.
        let cancelled = recoveries::cancel_others(tx, account, recovery_id, now).await?;
        let removed = if grant.keep_passkeys {
            Vec::new()
        } else {
            creds::delete_all_but(tx, account, kept).await?
        };
        let sessions_ended = sessions::delete_for_account(tx, account, now).await?;
        let notified = queue_notice(
            tx,
            account,
            owner.contact_email.as_deref(),
            NotificationKind::RecoveryCompleted,
            recovery_id,
            now,
        )
        .await?;
        let ev = audit::success(
            &Actor::Account(account.clone()),
            action::RECOVERY_COMPLETE,
            account.to_string(),
        )
        .with_details(json!({
            "recovery": recovery_id,
            "path": recovery.path,
            "cred_id": kept,
            "passkeys_removed": removed,
            "recoveries_cancelled": cancelled,
            "sessions_ended": sessions_ended,
            "notification": notified,
        }));
        tuaton_store::audit::append(tx, now, &ev).await?;
        Ok(())
    }

    async fn open_recovery_by_id(
        &self,
        recovery_id: &str,
        now: OffsetDateTime,
    ) -> Result<RecoveryRecord, IdmError> {
        recoveries::by_id(self.store().conn().await?.conn(), recovery_id)
            .await?
            .filter(|r| r.is_open(now))
            .ok_or(IdmError::UnknownRecovery)
    }

    /// Stores a grant that completes `recovery`, durably, with its audit record.
    async fn recovery_grant(
        &self,
        recovery: &RecoveryRecord,
        keep_passkeys: bool,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<Begun, IdmError> {
        let state = GrantState {
            recovery: Some(recovery.id.clone()),
            keep_passkeys,
        };
        let grant = ceremonies::put(
            self.store(),
            CeremonyKind::EnrolmentGrant,
            Some(&recovery.account_id),
            &state.to_json()?,
            now,
        )
        .await?;
        let ev = audit::success(
            actor,
            action::RECOVERY_CLAIM,
            recovery.account_id.to_string(),
        )
        .with_details(json!({
            "recovery": recovery.id, "path": recovery.path, "keep_passkeys": keep_passkeys,
        }));
        audit::alone(self.store(), now, &ev).await?;
        Ok(grant)
    }

    /// A new pending recovery and its token; ready after the cooling-off
    /// period, or at once on a path that proved more than the card's details.
    fn new_recovery(
        &self,
        account: &AccountId,
        decision_id: &str,
        path: RecoveryPath,
        now: OffsetDateTime,
    ) -> Result<(RecoveryRecord, String), IdmError> {
        let policy = self.policy();
        let ready_at = match path {
            RecoveryPath::Remote => now + policy.recovery_cooling_off,
            RecoveryPath::Officer | RecoveryPath::FaceMatch => now,
        };
        let token = random_value()?;
        let record = RecoveryRecord {
            id: tuaton_store::new_id(),
            account_id: account.clone(),
            token_digest: token_digest(&token),
            decision_id: decision_id.to_owned(),
            path,
            state: RecoveryState::Pending,
            requested_at: now,
            ready_at,
            expires_at: ready_at + policy.recovery_window,
            ended_at: None,
        };
        Ok((record, token))
    }

    /// The answer to a request that creates nothing, shaped like a real one.
    fn stand_in_recovery(
        &self,
        at_once: bool,
        now: OffsetDateTime,
    ) -> Result<RecoveryRequested, IdmError> {
        let policy = self.policy();
        let ready_at = if at_once {
            now
        } else {
            now + policy.recovery_cooling_off
        };
        Ok(RecoveryRequested {
            recovery_id: tuaton_store::new_id(),
            token: random_value()?,
            ready_at,
            expires_at: ready_at + policy.recovery_window,
        })
    }

    /// Compares a live capture with the citizen's reference face.
    pub(crate) async fn compare_face(
        &self,
        evidence: &CitizenEvidence,
        capture: &LiveCapture,
    ) -> Result<FaceMatchResult, IdmError> {
        let Some(face) = &self.parts().face else {
            return Err(IdmError::FaceMatchUnavailable);
        };
        let reference = face
            .references
            .reference(&evidence.citizen_id)
            .await?
            .ok_or(IdmError::FaceMatchUnavailable)?;
        Ok(face.matcher.compare(capture, &reference).await?)
    }
}

/// Whether the level a recovery's proofing `reached` is at least the account's `ial`.
fn reaches(reached: Option<Ial>, ial: Ial) -> bool {
    reached.is_some_and(|r| r >= ial)
}

/// Queues a notice about a recovery on every channel on file (today the
/// contact e-mail address; the account page lists open recoveries too).
async fn queue_notice(
    tx: &mut Tx,
    account: &AccountId,
    contact: Option<&str>,
    kind: NotificationKind,
    recovery_id: &str,
    now: OffsetDateTime,
) -> Result<Option<String>, IdmError> {
    let Some(address) = contact.map(str::trim).filter(|a| !a.is_empty()) else {
        return Ok(None);
    };
    let id = notifications::queue(
        tx,
        &NewNotification {
            account_id: account,
            kind,
            channel: Channel::Email,
            address,
            reference: Some(recovery_id),
        },
        now,
    )
    .await?;
    Ok(Some(id))
}
