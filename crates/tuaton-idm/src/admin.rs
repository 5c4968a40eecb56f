//! What operators do to accounts: look one up, suspend, reactivate, grant a
//! role. Each change is audited with the operator as actor.

use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;
use tuaton_core::{AccountId, CitizenId, ErrorCode, Ial};
use tuaton_store::accounts::{self, Account, AccountState};
use tuaton_store::companies::{self, Role};
use tuaton_store::passkeys::{self as creds, PasskeyState};
use tuaton_store::{audit as store_audit, sessions};

use crate::audit::{self, Actor, action};
use crate::{Idm, IdmError};

/// Account administration; needs only the database, so the `tuaton`
/// command can run it without opening the key backend.
#[derive(Clone)]
pub struct AccountAdmin {
    store: tuaton_store::Store,
}

impl Idm {
    /// Account administration over this service's database.
    pub fn admin(&self) -> AccountAdmin {
        AccountAdmin::new(self.store().clone())
    }
}

/// An account as an operator sees it: no personal data.
#[derive(Debug, Serialize)]
pub struct AccountSummary {
    /// The account id.
    pub id: AccountId,
    /// Its state.
    pub state: AccountState,
    /// Why it is suspended, if it is.
    pub state_reason: Option<String>,
    /// Its identity level (shown as the NDID number in text).
    #[serde(serialize_with = "Ial::serialize_as_text")]
    pub ial: Ial,
    /// Its roles.
    pub roles: Vec<Role>,
    /// How many passkeys it has.
    pub passkeys: usize,
    /// How many of them may log in.
    pub active_passkeys: usize,
}

impl AccountAdmin {
    /// Administration over `store`.
    pub fn new(store: tuaton_store::Store) -> Self {
        Self { store }
    }

    fn store(&self) -> &tuaton_store::Store {
        &self.store
    }

    /// The account named by its id or by a citizen id.
    async fn find_account(&self, key: &str) -> Result<Account, IdmError> {
        let mut conn = self.store().conn().await?;
        let found = match CitizenId::parse(key) {
            Ok(cid) => accounts::by_citizen_id(conn.conn(), &cid.compact()).await?,
            Err(_) => match AccountId::parse(key) {
                Ok(id) => accounts::by_id(conn.conn(), &id).await?,
                Err(_) => None,
            },
        };
        found.ok_or(IdmError::UnknownAccount)
    }

    /// An operator's view of the account `key` names (its id or a citizen id).
    pub async fn account_summary(&self, key: &str) -> Result<AccountSummary, IdmError> {
        let a = self.find_account(key).await?;
        let roles = companies::roles(self.store().conn().await?.conn(), &a.id).await?;
        let keys = creds::for_account(self.store().conn().await?.conn(), &a.id).await?;
        Ok(AccountSummary {
            active_passkeys: keys
                .iter()
                .filter(|k| k.state == PasskeyState::Active)
                .count(),
            passkeys: keys.len(),
            roles,
            id: a.id,
            state: a.state,
            state_reason: a.state_reason,
            ial: a.ial,
        })
    }

    /// Suspends an active account, ends its sessions and puts its signer
    /// certificates on hold (`certificateHold`: relying parties see them
    /// suspended at once, through the CRL and OCSP); returns the account id
    /// and how many sessions ended. `reason` (1 to 200 characters, no
    /// personal data) goes to the audit log.
    pub async fn suspend_account(
        &self,
        operator: &Actor,
        key: &str,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<(AccountId, u64), IdmError> {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 200 {
            return Err(IdmError::invalid(
                ErrorCode::InvalidField,
                "--reason must be 1 to 200 characters",
            ));
        }
        let a = self.find_account(key).await?;
        if a.state != AccountState::Active {
            return Err(IdmError::wrong_state(a.state, "active"));
        }
        let mut tx = self.store().begin().await?;
        accounts::set_state(&mut tx, &a.id, AccountState::Suspended, Some(reason), now).await?;
        let ended = sessions::delete_for_account(&mut tx, &a.id, now).await?;
        let held = tuaton_store::certificates::revoke_of_account(
            &mut tx,
            &a.id,
            tuaton_store::certificates::HOLD,
            now,
            &operator.to_string(),
        )
        .await?;
        let ev = audit::success(operator, action::SUSPEND, a.id.to_string()).with_details(
            json!({ "reason": reason, "sessions_ended": ended, "certificates_held": held.len() }),
        );
        store_audit::append(&mut tx, now, &ev).await?;
        tx.commit().await?;
        Ok((a.id, ended))
    }

    /// Lifts a suspension and takes off hold the certificates the
    /// suspension held (those revoked for good stay revoked, and a hold an
    /// operator put on a certificate stays until they release it); returns
    /// the account id.
    pub async fn reactivate_account(
        &self,
        operator: &Actor,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<AccountId, IdmError> {
        let a = self.find_account(key).await?;
        if a.state != AccountState::Suspended {
            return Err(IdmError::wrong_state(a.state, "suspended"));
        }
        let mut tx = self.store().begin().await?;
        accounts::set_state(&mut tx, &a.id, AccountState::Active, None, now).await?;
        tuaton_store::certificates::release_of_account(&mut tx, &a.id, now, &operator.to_string())
            .await?;
        store_audit::append(
            &mut tx,
            now,
            &audit::success(operator, action::REACTIVATE, a.id.to_string()),
        )
        .await?;
        tx.commit().await?;
        Ok(a.id)
    }

    /// Grants `role` to an active account proofed at IAL2.1 or higher;
    /// returns the account id.
    pub async fn grant_role(
        &self,
        operator: &Actor,
        key: &str,
        role: Role,
        now: OffsetDateTime,
    ) -> Result<AccountId, IdmError> {
        let a = self.find_account(key).await?;
        if a.state != AccountState::Active {
            return Err(IdmError::wrong_state(a.state, "active"));
        }
        if a.ial < Ial::Ial2_1 {
            return Err(IdmError::IalTooLow { needs: Ial::Ial2_1 });
        }
        if companies::roles(self.store().conn().await?.conn(), &a.id)
            .await?
            .contains(&role)
        {
            return Err(IdmError::RoleAlreadyHeld(role));
        }
        let mut tx = self.store().begin().await?;
        companies::grant_role(&mut tx, &a.id, role, &operator.to_string(), now).await?;
        let ev = audit::success(operator, action::GRANT_ROLE, a.id.to_string())
            .with_details(json!({ "role": role }));
        store_audit::append(&mut tx, now, &ev).await?;
        tx.commit().await?;
        Ok(a.id)
    }

    /// Takes a role away from an account, in whatever state it is.
    pub async fn revoke_role(
        &self,
        operator: &Actor,
        key: &str,
        role: Role,
        now: OffsetDateTime,
    ) -> Result<AccountId, IdmError> {
        let a = self.find_account(key).await?;
        let mut tx = self.store().begin().await?;
        if !companies::revoke_role(&mut tx, &a.id, role).await? {
            return Err(IdmError::RoleNotHeld(role));
        }
        let ev = audit::success(operator, action::REVOKE_ROLE, a.id.to_string())
            .with_details(json!({ "role": role }));
        store_audit::append(&mut tx, now, &ev).await?;
        tx.commit().await?;
        Ok(a.id)
    }
}
