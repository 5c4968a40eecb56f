//! Passkey registration, listing and removal.
//!
//! A registration is for the account a session belongs to, or for the
//! account an enrolment or recovery grant names. The grant is read at start
//! and spent only when the passkey is stored, so a failed attempt can be
//! tried again within the grant's lifetime.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use tuaton_core::{AccountId, ErrorCode};
use tuaton_passkeys::{PasskeyUser, RegistrationState};
use tuaton_store::accounts::{self, AccountState};
use tuaton_store::ceremonies::{self, CeremonyKind, TakeError};
use tuaton_store::passkeys::{self as creds, PasskeyRecord, PasskeyState};
use webauthn_rs::prelude::{CreationChallengeResponse, RegisterPublicKeyCredential};

use crate::audit::{self, Actor, action};
use crate::login::user_uuid;
use crate::recovery::GrantState;
use crate::sessions::ActiveSession;
use crate::{FreshFor, Idm, IdmError};

const KIND: CeremonyKind = CeremonyKind::PasskeyRegistration;

/// Who a passkey is being registered for.
#[derive(Debug, Clone, Copy)]
pub enum Registrant<'a> {
    /// The holder of an enrolment or recovery grant.
    Grant(&'a str),
    /// The signed-in account.
    Session(&'a ActiveSession),
}

/// A registration begun: give `options` to `navigator.credentials.create`.
#[derive(Debug)]
pub struct RegistrationChallenge {
    /// Opaque, single-use.
    pub ceremony_id: String,
    /// The WebAuthn creation options.
    pub options: CreationChallengeResponse,
}

/// The name a person gives a passkey ("phone", "YubiKey"): 1 to 64 characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyName(String);

impl PasskeyName {
    /// Parses a name as typed.
    pub fn parse(s: &str) -> Result<Self, IdmError> {
        let t = s.trim();
        if t.is_empty() || t.chars().count() > 64 {
            return Err(IdmError::invalid(
                ErrorCode::InvalidName,
                "name must be 1 to 64 characters.",
            ));
        }
        Ok(Self(t.to_owned()))
    }
}

/// What is kept in the ceremony between start and finish.
#[derive(Serialize, Deserialize)]
struct PendingRegistration {
    state: RegistrationState,
    grant: Option<String>,
}

impl Idm {
    /// Starts adding a passkey; `want_aal3` asks for an attested hardware authenticator.
    pub async fn start_registration(
        &self,
        who: Registrant<'_>,
        want_aal3: bool,
        now: OffsetDateTime,
    ) -> Result<RegistrationChallenge, IdmError> {
        let (account_id, grant) = match who {
            Registrant::Grant(token) => {
                let c = ceremonies::peek(self.store(), token, CeremonyKind::EnrolmentGrant, now)
                    .await?;
                let id = c
                    .account_id
                    .ok_or_else(|| IdmError::internal("an enrolment grant without an account"))?;
                (id, Some(token.to_owned()))
            }
            Registrant::Session(s) => (s.account_id.clone(), None),
        };
        let account = accounts::by_id(self.store().conn().await?.conn(), &account_id)
            .await?
            .ok_or(IdmError::LoginRequired)?;
        if account.state != AccountState::Active {
            return Err(IdmError::AccountNotActive);
        }
        self.count_attempt(&account_id)?;
        let existing = creds::for_account(self.store().conn().await?.conn(), &account_id).await?;
        let exclude: Vec<Vec<u8>> = existing
            .iter()
            .filter_map(|c| URL_SAFE_NO_PAD.decode(&c.cred_id).ok())
            .collect();
        let user = PasskeyUser {
            handle: user_uuid(&account.user_handle),
            name: format!("tuaton-{}", account_id.short()),
            display_name: account.thai_given.clone().unwrap_or_default(),
        };
        let (options, state) = self
            .passkeys()
            .start_registration(&user, &exclude, want_aal3, now)?;
        let stored = serde_json::to_string(&PendingRegistration { state, grant })
            .map_err(IdmError::internal)?;
        let begun =
            ceremonies::put_challenge(self.store(), KIND, Some(&account_id), &stored, now).await?;
        Ok(RegistrationChallenge {
            ceremony_id: begun.id,
            options,
        })
    }

    /// Finishes adding a passkey: verifies the attestation, spends the
    /// grant if one was used, and stores the credential with its audit record.
    pub async fn finish_registration(
        &self,
        ceremony_id: &str,
        name: &PasskeyName,
        response: &RegisterPublicKeyCredential,
        now: OffsetDateTime,
    ) -> Result<PasskeyRecord, IdmError> {
        // Taken before it is checked: a second finish with the same id finds nothing.
        let ceremony = ceremonies::take(self.store(), ceremony_id, KIND, now).await?;
        let account_id = ceremony
            .account_id
            .ok_or_else(|| IdmError::internal("a registration without an account"))?;
        self.count_attempt(&account_id)?;
        let actor = Actor::Account(account_id.clone());
        let pending: PendingRegistration =
            serde_json::from_str(&ceremony.state).map_err(IdmError::internal)?;
        let (stored, facts) =
            match self
                .passkeys()
                .finish_registration(pending.state, response, now)
            {
                Ok(v) => v,
                Err(e) => {
                    let target = account_id.to_string();
                    let reason = e.code();
                    audit::refused_alone(
                        self.store(),
                        now,
                        &actor,
                        action::PASSKEY_REGISTER,
                        target,
                        reason,
                    )
                    .await?;
                    return Err(e.into());
                }
            };
        // The grant is read now and spent in the transaction that stores the
        // passkey, so a failed attempt can be tried again with it.
        let grant = match &pending.grant {
            Some(id) => {
                let c =
                    ceremonies::peek(self.store(), id, CeremonyKind::EnrolmentGrant, now).await?;
                Some((id.as_str(), GrantState::from_json(&c.state)?))
            }
            None => None,
        };
        let seal = self
            .passkey_seal()
            .seal(&account_id, PasskeyState::Active, stored.as_str());
        let record = PasskeyRecord {
            seal: Some(seal),
            cred_id: URL_SAFE_NO_PAD.encode(&facts.cred_id),
            account_id: account_id.clone(),
            name: name.0.clone(),
            aaguid: facts.aaguid.map(|u| u.to_string()),
            credential: stored.into_string(),
            aal: facts.aal,
            attested: facts.attested,
            backup_eligible: facts.backup_eligible,
            backup_state: facts.backup_state,
            sign_count: i64::from(facts.counter),
            state: PasskeyState::Active,
            created_at: now,
            last_used_at: None,
        };
        let mut tx = self.store().begin().await?;
        if let Some((id, _)) = grant
            && !ceremonies::spend(id, CeremonyKind::EnrolmentGrant)
                .run(tx.conn())
                .await?
        {
            return Err(TakeError::Unknown.into());
        }
        creds::insert(&mut tx, &record).await.map_err(|e| match e {
            tuaton_store::StoreError::Conflict { .. } => {
                IdmError::Passkey(tuaton_passkeys::PasskeyError::AlreadyRegistered)
            }
            other => other.into(),
        })?;
        let ev = audit::success(&actor, action::PASSKEY_REGISTER, account_id.to_string())
            .with_details(json!({
                "cred_id": record.cred_id, "aaguid": record.aaguid, "aal": record.aal,
                "attested": record.attested,
                "via": match &grant {
                    Some((_, g)) if g.recovery.is_some() => "recovery_grant",
                    Some(_) => "enrolment_grant",
                    None => "session",
                },
            }));
        tuaton_store::audit::append(&mut tx, now, &ev).await?;
        if let Some((_, grant)) = &grant {
            let completed = self
                .complete_recovery(&mut tx, grant, &account_id, &record.cred_id, now)
                .await;
            if let Err(e) = completed {
                // Nothing of this attempt is kept but the refusal's record.
                drop(tx);
                if matches!(
                    e,
                    IdmError::UnknownRecovery | IdmError::OfficerRecoveryRequired
                ) {
                    audit::refused_alone(
                        self.store(),
                        now,
                        &actor,
                        action::RECOVERY_COMPLETE,
                        account_id.to_string(),
                        e.code(),
                    )
                    .await?;
                }
                return Err(e);
            }
        }
        tx.commit().await?;
        Ok(record)
    }

    /// The account's passkeys, oldest first.
    pub async fn passkeys_of(&self, account: &AccountId) -> Result<Vec<PasskeyRecord>, IdmError> {
        Ok(creds::for_account(self.store().conn().await?.conn(), account).await?)
    }

    /// Removes one of the signed-in account's passkeys. Needs a fresh login,
    /// and never removes the last one.
    pub async fn remove_passkey(
        &self,
        session: &ActiveSession,
        cred_id: &str,
        now: OffsetDateTime,
    ) -> Result<(), IdmError> {
        session.require_fresh(self.policy(), FreshFor::RemovePasskey, now)?;
        let account = &session.account_id;
        let mut tx = self.store().begin().await?;
        let all = creds::for_account(tx.conn(), account).await?;
        if !all.iter().any(|c| c.cred_id == cred_id) {
            return Err(IdmError::NoSuchPasskey);
        }
        if all.len() == 1 {
            return Err(IdmError::LastPasskey);
        }
        creds::delete(&mut tx, account, cred_id).await?;
        let ev = audit::success(
            &session.actor(),
            action::PASSKEY_REMOVE,
            account.to_string(),
        )
        .with_details(json!({ "cred_id": cred_id }));
        tuaton_store::audit::append(&mut tx, now, &ev).await?;
        tx.commit().await?;
        Ok(())
    }
}
