//! Who acts, and the audit records the flows write.

use std::fmt;

use time::OffsetDateTime;
use tuaton_core::AccountId;
use tuaton_store::Store;
use tuaton_store::audit::{self, AuditEvent};

use crate::IdmError;

/// Who a flow acts for, as the audit log names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// Someone not (yet) known: an enrolment, a login attempt, a recovery.
    Anonymous,
    /// A signed-in account acting for itself.
    Account(AccountId),
    /// A signed-in officer acting at a counter.
    Officer(AccountId),
    /// An operator at the `tuaton` command, by their login name.
    Operator(String),
    /// A signed-in client administrator at the admin API.
    ClientAdmin(AccountId),
    /// An agency's application acting for itself (OAuth `client_credentials`).
    Client(String),
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Anonymous => f.write_str("anonymous"),
            Actor::Account(id) => write!(f, "account:{id}"),
            Actor::Officer(id) => write!(f, "officer:{id}"),
            Actor::Operator(name) => write!(f, "operator:{name}"),
            Actor::ClientAdmin(id) => write!(f, "client_admin:{id}"),
            Actor::Client(id) => write!(f, "client:{id}"),
        }
    }
}

/// The audit actions, one name each.
pub(crate) mod action {
    pub const ENROL: &str = "account.enrol";
    pub const OFFICER_PROOFING: &str = "proofing.officer_in_person";
    pub const PROOFING_REFUSED: &str = "proofing.refused";
    pub const RECOVERY_REQUEST: &str = "account.recovery.request";
    pub const RECOVERY_CLAIM: &str = "account.recovery.claim";
    pub const RECOVERY_COMPLETE: &str = "account.recovery.complete";
    pub const RECOVERY_CANCEL: &str = "account.recovery.cancel";
    pub const PASSKEY_REGISTER: &str = "passkey.register";
    pub const PASSKEY_REMOVE: &str = "passkey.remove";
    pub const PASSKEY_SUSPEND_CLONED: &str = "passkey.suspend_cloned";
    pub const LOGIN: &str = "login.passkey";
    pub const LOGOUT_EVERYWHERE: &str = "session.logout_everywhere";
    pub const EXPORT: &str = "pdpa.export";
    pub const ERASE: &str = "pdpa.erase";
    pub const CONSENT_GIVE: &str = "consent.give";
    pub const CONSENT_WITHDRAW: &str = "consent.withdraw";
    pub const COMPANY_LINK: &str = "company.link";
    pub const COMPANY_AUTHORITY: &str = "company.authority";
    pub const COMPANY_AUTHORITY_LOST: &str = "company.authority_lost";
    pub const SUSPEND: &str = "account.suspend";
    pub const REACTIVATE: &str = "account.reactivate";
    pub const GRANT_ROLE: &str = "account.grant_role";
    pub const REVOKE_ROLE: &str = "account.revoke_role";
    pub const CLIENT_ADD: &str = "oidc.client.add";
    pub const CLIENT_UPDATE: &str = "oidc.client.update";
    pub const CLIENT_REMOVE: &str = "oidc.client.remove";
    pub const OIDC_AUTHORIZE: &str = "oidc.authorize";
    pub const OIDC_TOKEN: &str = "oidc.token";
    pub const OIDC_REFRESH: &str = "oidc.refresh";
    pub const OIDC_REVOKE: &str = "oidc.revoke";
    pub const OIDC_LOGOUT: &str = "oidc.logout";
    pub const OIDC_CLIENT_CREDENTIALS: &str = "oidc.client_credentials";
    pub const OIDC_GRANT_REVOKED: &str = "oidc.grant_revoked";
    pub const SIGN: &str = "signature.create";
    pub const DOCUMENT_POST: &str = "document.post";
    pub const DOCUMENT_DECLINE: &str = "document.decline";
}

/// A success record.
pub(crate) fn success(actor: &Actor, action: &str, target: impl Into<String>) -> AuditEvent {
    AuditEvent::success(actor.to_string(), action, target)
}

/// A failure record; the caller adds its details.
pub(crate) fn failure(actor: &Actor, action: &str, target: impl Into<String>) -> AuditEvent {
    AuditEvent::failure(actor.to_string(), action, target)
}

/// A refusal record whose details give the refusal's code as `reason`.
pub(crate) fn refusal(
    actor: &Actor,
    action: &str,
    target: impl Into<String>,
    reason: &str,
) -> AuditEvent {
    failure(actor, action, target).with_details(serde_json::json!({ "reason": reason }))
}

/// Writes a record in a transaction of its own (a refusal that changes nothing else).
pub(crate) async fn alone(
    store: &Store,
    now: OffsetDateTime,
    ev: &AuditEvent,
) -> Result<(), IdmError> {
    audit::append_alone(store, now, ev).await?;
    Ok(())
}

/// Writes a refusal that changes nothing else, its reason the refusal's
/// code, in a transaction of its own.
pub(crate) async fn refused_alone(
    store: &Store,
    now: OffsetDateTime,
    actor: &Actor,
    action: &str,
    target: impl Into<String>,
    reason: tuaton_core::ErrorCode,
) -> Result<(), IdmError> {
    alone(store, now, &refusal(actor, action, target, reason.as_str())).await
}
