//! Account recovery: someone who lost every passkey re-proofs their identity
//! remotely (the registry check again) and gets a grant to register a new one.
//!
//! Rules (docs/operators/recovery.md): only active accounts; only accounts
//! whose identity level a remote registry check reaches again (IAL2.1) —
//! above that an officer re-proofs in person; every recovery ends the
//! account's sessions, is audited, and queues a notice to the account's
//! contact address. Existing passkeys are left as they are.

use serde_json::json;
use time::OffsetDateTime;
use tuaton_core::{AccountId, ErrorCode, Ial};
use tuaton_proofing::{CitizenEvidence, ProofingDecision};
use tuaton_store::accounts::{self, AccountState};
use tuaton_store::notifications::{self, Channel, NewNotification, NotificationKind};
use tuaton_store::sessions;

use crate::audit::{self, Actor, action};
use crate::enrolment::{insert_decision, method_label};
use crate::{Idm, IdmError};

/// The identity was re-proofed: a grant to register a new passkey.
#[derive(Debug)]
pub struct RecoveryGrant {
    /// The account.
    pub account_id: AccountId,
    /// Its identity level (unchanged by recovery).
    pub ial: Ial,
    /// The grant for `/passkeys/registration/start`.
    pub grant: tuaton_store::ceremonies::Begun,
    /// How many of the account's sessions were ended.
    pub sessions_ended: u64,
}

/// What a recovery came to.
#[derive(Debug)]
pub enum Recovery {
    /// A grant to add a passkey.
    Granted(RecoveryGrant),
    /// The details matched the registry, but no open account has them;
    /// nothing was created.
    NoOpenAccount,
}

impl Idm {
    /// Recovers an account by checking the card against the registry
    /// again. The card is checked before the account is looked up, so only
    /// someone holding the card's details learns anything about the account.
    pub async fn recover(
        &self,
        evidence: &CitizenEvidence,
        now: OffsetDateTime,
    ) -> Result<Recovery, IdmError> {
        let decision = self.proof(evidence, None, &Actor::Anonymous, now).await?;
        let account = accounts::by_citizen_id(
            self.store().conn().await?.conn(),
            &evidence.citizen_id.compact(),
        )
        .await?
        .filter(|a| a.state != AccountState::Closed);
        let refused = |target: String, reason: ErrorCode| {
            audit::refused_alone(
                self.store(),
                now,
                &Actor::Anonymous,
                action::RECOVERY,
                target,
                reason,
            )
        };
        let Some(account) = account else {
            // Audited by evidence digest only.
            let target = evidence.evidence_digest().to_string();
            refused(target, ErrorCode::NoOpenAccount).await?;
            return Ok(Recovery::NoOpenAccount);
        };
        // Fail closed: a level the store cannot read is an error there, never a low one.
        let account_ial = account.ial;
        let refusal = if account.state != AccountState::Active {
            Some(IdmError::AccountSuspended)
        } else if decision.ial < account_ial {
            Some(IdmError::OfficerRecoveryRequired)
        } else {
            None
        };
        if let Some(err) = refusal {
            refused(account.id.to_string(), err.code()).await?;
            return Err(err);
        }
        let id = account.id.clone();
        let grant = self
            .record_recovery(
                &decision,
                &id,
                account.contact_email.as_deref(),
                account_ial,
                now,
            )
            .await?;
        Ok(Recovery::Granted(grant))
    }

    /// Records the decision, ends the sessions, queues the notice and audits
    /// it, in one transaction; returns the grant.
    async fn record_recovery(
        &self,
        decision: &ProofingDecision,
        account: &AccountId,
        contact: Option<&str>,
        ial: Ial,
        now: OffsetDateTime,
    ) -> Result<RecoveryGrant, IdmError> {
        // The grant is stored first but its id is only handed out after the
        // commit: if the transaction fails, an unknown id expires unused.
        let grant = self.grant_registration(account, now).await?;
        let mut tx = self.store().begin().await?;
        let decision_id = insert_decision(&mut tx, account, decision, None).await?;
        // Recovery may mean the passkeys were stolen, not lost: whoever holds a session now loses it.
        let sessions_ended = sessions::delete_for_account(&mut tx, account).await?;
        let notification = match contact.map(str::trim).filter(|a| !a.is_empty()) {
            Some(address) => Some(
                notifications::queue(
                    &mut tx,
                    &NewNotification {
                        account_id: account,
                        kind: NotificationKind::RecoveryStarted,
                        channel: Channel::Email,
                        address,
                    },
                    now,
                )
                .await?,
            ),
            None => None,
        };
        let details = json!({
            "decision": decision_id,
            "method": method_label(decision),
            "ial": decision.ial.number(),
            "connector": decision.connector,
            "evidence_digest": decision.evidence_digest.to_string(),
            "sessions_ended": sessions_ended,
            "notification": notification,
        });
        let ev = audit::success(
            &Actor::Account(account.clone()),
            action::RECOVERY,
            account.to_string(),
        )
        .with_details(details);
        tuaton_store::audit::append(&mut tx, now, &ev).await?;
        tx.commit().await?;
        Ok(RecoveryGrant {
            account_id: account.clone(),
            ial,
            grant,
            sessions_ended,
        })
    }
}
