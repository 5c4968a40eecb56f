//! The signed-in person's own account: profile, PDPA consents and data rights.

use ring::digest::{SHA256, digest};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tuaton_core::{AccountId, ErrorCode};
use tuaton_store::accounts::{self, Account};
use tuaton_store::companies::{self, CompanyLink, Role};
use tuaton_store::consents::{self, ConsentRecord, NewConsent};
use tuaton_store::passkeys::{self as creds, PasskeyRecord};
use tuaton_store::{audit as store_audit, proofing};

use crate::audit::{self, Actor, action};
use crate::sessions::ActiveSession;
use crate::{FreshFor, Idm, IdmError};
use tuaton_store::audit::AuditEvent;

/// The account as its holder sees it.
#[derive(Debug, Serialize)]
pub struct Profile {
    /// The account record.
    pub account: Account,
    /// Its passkeys.
    pub passkeys: Vec<PasskeyRecord>,
    /// Its company links.
    pub companies: Vec<CompanyLink>,
    /// Its roles.
    pub roles: Vec<Role>,
}

/// A consent to release claims to an agency for a purpose, as the person gave it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentRequest {
    /// The agency's client id.
    pub agency: String,
    /// What the data is for, e.g. `tax-filing`.
    pub purpose: String,
    /// Version of the purpose text shown.
    pub purpose_version: String,
    /// Claims released, e.g. `["name", "birthdate"]`.
    pub claims: Vec<String>,
    /// The notice text exactly as shown; only its SHA-256 is kept.
    pub notice_text: String,
    /// `th` or `en`.
    pub locale: String,
    /// PDPA lawful basis: `consent`, `contract`, `legal_obligation`, `vital_interest`, `public_task`, `legitimate_interest`.
    pub lawful_basis: String,
}

const LAWFUL_BASES: &[&str] = &[
    "consent",
    "contract",
    "legal_obligation",
    "vital_interest",
    "public_task",
    "legitimate_interest",
];

fn token_ok(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:/".contains(c))
}

/// The audit record of a consent given: what it covers, never the notice itself.
pub(crate) fn consent_given(actor: &Actor, rec: &ConsentRecord) -> AuditEvent {
    audit::success(actor, action::CONSENT_GIVE, rec.id.clone()).with_details(json!({
        "agency": rec.agency, "purpose": rec.purpose, "purpose_version": rec.purpose_version,
        "claims": rec.claims, "notice_digest": rec.notice_digest, "lawful_basis": rec.lawful_basis,
    }))
}

impl ConsentRequest {
    /// Checks every field; the error names the first that fails.
    fn validate(self) -> Result<NewConsent, IdmError> {
        let field = |name: &'static str, ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(IdmError::invalid(
                    ErrorCode::InvalidField,
                    format!("{name} is missing or not a short identifier."),
                ))
            }
        };
        field("agency", token_ok(&self.agency, 128))?;
        field("purpose", token_ok(&self.purpose, 128))?;
        field("purpose_version", token_ok(&self.purpose_version, 32))?;
        field(
            "claims",
            !self.claims.is_empty()
                && self.claims.len() <= 64
                && self.claims.iter().all(|c| token_ok(c, 64)),
        )?;
        field(
            "notice_text",
            !self.notice_text.trim().is_empty() && self.notice_text.len() <= 65_536,
        )?;
        field("locale", matches!(self.locale.as_str(), "th" | "en"))?;
        if !LAWFUL_BASES.contains(&self.lawful_basis.as_str()) {
            return Err(IdmError::invalid(
                ErrorCode::InvalidField,
                format!("lawful_basis must be one of: {}.", LAWFUL_BASES.join(", ")),
            ));
        }
        Ok(NewConsent {
            agency: self.agency,
            purpose: self.purpose,
            purpose_version: self.purpose_version,
            claims: self.claims,
            notice_digest: hex::encode(digest(&SHA256, self.notice_text.as_bytes())),
            locale: self.locale,
            lawful_basis: self.lawful_basis,
        })
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

impl Idm {
    /// The signed-in account's record.
    pub(crate) async fn account_of(&self, session: &ActiveSession) -> Result<Account, IdmError> {
        accounts::by_id(self.store().conn().await?.conn(), &session.account_id)
            .await?
            .ok_or(IdmError::LoginRequired)
    }

    /// The account, its passkeys, companies and roles.
    pub async fn profile(&self, session: &ActiveSession) -> Result<Profile, IdmError> {
        let account = self.account_of(session).await?;
        let mut conn = self.store().conn().await?;
        Ok(Profile {
            passkeys: creds::for_account(conn.conn(), &account.id).await?,
            companies: companies::for_account(conn.conn(), &account.id).await?,
            roles: companies::roles(conn.conn(), &account.id).await?,
            account,
        })
    }

    /// Everything Tuaton holds about the signed-in person (PDPA access and
    /// portability), as one JSON document; the export itself is audited.
    pub async fn export(
        &self,
        session: &ActiveSession,
        now: OffsetDateTime,
    ) -> Result<Value, IdmError> {
        let account = self.account_of(session).await?;
        let actor = session.actor();
        let audit_trail = store_audit::about(
            self.store(),
            &actor.to_string(),
            account.id.as_str(),
            10_000,
        )
        .await?;
        // Held for the reads below only: the audit append after them needs it again.
        let mut conn = self.store().conn().await?;
        let decisions = proofing::for_account(conn.conn(), &account.id).await?;
        let body = json!({
            "format": "tuaton-export-v1",
            "exported_at": rfc3339(now),
            "proofing_decisions": decisions.iter().map(|d| json!({
                "id": d.id, "method": d.method, "connector": d.connector,
                "registry_answer": serde_json::from_str::<Value>(&d.registry_answer).unwrap_or_default(),
                "evidence_digest": d.evidence_digest, "ial": d.ial, "officer_id": d.officer_id,
                "decided_at": rfc3339(d.decided_at()),
            })).collect::<Vec<_>>(),
            "passkeys": creds::for_account(conn.conn(), &account.id).await?,
            "consents": consents::for_account(conn.conn(), &account.id).await?,
            "companies": companies::for_account(conn.conn(), &account.id).await?,
            "roles": companies::roles(conn.conn(), &account.id).await?,
            "audit_records": audit_trail,
            "account": account,
        });
        drop(conn);
        let ev = audit::success(&actor, action::EXPORT, session.account_id.to_string());
        audit::alone(self.store(), now, &ev).await?;
        Ok(body)
    }

    /// Erases the signed-in person (PDPA); needs a fresh login.
    pub async fn erase(
        &self,
        session: &ActiveSession,
        now: OffsetDateTime,
    ) -> Result<(), IdmError> {
        session.require_fresh(self.policy(), FreshFor::Erase, now)?;
        // The account's own signing keys go first: nothing may sign in the
        // name of a person who is no longer known here.
        let destroyed = self
            .destroy_account_keys(&session.account_id, &session.actor(), now)
            .await?;
        let mut tx = self.store().begin().await?;
        // Its certificates are revoked with the erasure, so a relying party
        // checking the CRL sees that no new signature can be trusted.
        let revoked = tuaton_store::certificates::revoke_of_account(
            &mut tx,
            &session.account_id,
            "cessationOfOperation",
            now,
            &session.actor().to_string(),
        )
        .await?;
        tuaton_store::certificates::forget_account(&mut tx, &session.account_id).await?;
        tuaton_store::signing::forget_account(&mut tx, &session.account_id).await?;
        accounts::erase(&mut tx, &session.account_id, now).await?;
        let ev = audit::success(
            &session.actor(),
            action::ERASE,
            session.account_id.to_string(),
        )
        .with_details(json!({ "keys_destroyed": destroyed, "certificates_revoked": revoked }));
        store_audit::append(&mut tx, now, &ev).await?;
        tx.commit().await?;
        self.store().flush_erasure().await?;
        Ok(())
    }

    /// Destroys every key that belongs to `account` (per-user signing keys):
    /// marked destroyed (audited), then removed from the backend. Returns their ids.
    async fn destroy_account_keys(
        &self,
        account: &AccountId,
        actor: &crate::Actor,
        now: OffsetDateTime,
    ) -> Result<Vec<String>, IdmError> {
        // Keys already marked destroyed are removed from the backend again:
        // an earlier attempt may have marked one and failed to remove it.
        let owned: Vec<_> = tuaton_store::keys::list(self.store().conn().await?.conn())
            .await?
            .into_iter()
            .filter(|k| k.account_id.as_ref() == Some(account))
            .collect();
        let mut ids = Vec::new();
        for key in owned {
            if key.state != tuaton_store::keys::KeyState::Destroyed {
                tuaton_store::keys::destroy(
                    self.store(),
                    &key.id,
                    now,
                    &actor.to_string(),
                    Some("the account was erased"),
                )
                .await
                .map_err(|e| {
                    IdmError::internal(format!("a key of the account could not be destroyed: {e}"))
                })?;
            }
            let reference: tuaton_keys::KeyRef = key
                .key_ref
                .parse()
                .map_err(|_| crate::error::corrupt("a managed key's reference"))?;
            let backend = self.keys().clone();
            let removed = tokio::task::spawn_blocking(move || backend.destroy(&reference))
                .await
                .map_err(|_| IdmError::internal("destroying a key was interrupted"))?;
            match removed {
                Ok(()) | Err(tuaton_keys::KeyError::KeyNotFound { .. }) => {}
                Err(source) => {
                    return Err(IdmError::Custody(crate::custody::CustodyError::Key {
                        id: key.id,
                        source,
                    }));
                }
            }
            ids.push(key.id);
        }
        Ok(ids)
    }

    /// The signed-in account's consents.
    pub async fn consents(&self, session: &ActiveSession) -> Result<Vec<ConsentRecord>, IdmError> {
        Ok(consents::for_account(self.store().conn().await?.conn(), &session.account_id).await?)
    }

    /// Records a consent with its audit record.
    pub async fn give_consent(
        &self,
        session: &ActiveSession,
        request: ConsentRequest,
        now: OffsetDateTime,
    ) -> Result<ConsentRecord, IdmError> {
        let new = request.validate()?;
        let mut tx = self.store().begin().await?;
        let rec = consents::give(&mut tx, &session.account_id, &new, now).await?;
        store_audit::append(&mut tx, now, &consent_given(&session.actor(), &rec)).await?;
        tx.commit().await?;
        Ok(rec)
    }

    /// Withdraws a live consent of the signed-in account.
    pub async fn withdraw_consent(
        &self,
        session: &ActiveSession,
        consent_id: &str,
        now: OffsetDateTime,
    ) -> Result<ConsentRecord, IdmError> {
        let account = &session.account_id;
        let mut tx = self.store().begin().await?;
        if !consents::withdraw(&mut tx, account, consent_id, now).await? {
            return Err(IdmError::UnknownConsent);
        }
        let rec = consents::by_id(tx.conn(), account, consent_id)
            .await?
            .ok_or_else(|| IdmError::internal("a consent vanished in its own transaction"))?;
        // The agency's grants for the account end with it: no token it
        // holds releases anything more, and its next login asks again.
        let ended = tuaton_store::oidc::revoke_for_account_client(account, &rec.agency, now)
            .run(tx.conn())
            .await?;
        let ev = audit::success(&session.actor(), action::CONSENT_WITHDRAW, consent_id)
            .with_details(json!({ "agency": rec.agency, "grants_revoked": ended }));
        store_audit::append(&mut tx, now, &ev).await?;
        tx.commit().await?;
        Ok(rec)
    }
}
