//! Login sessions: minting, resolving, CSRF, and ending them.
//!
//! The session secret (the cookie's value) is 256 random bits; the store
//! keeps only its SHA-256, so a copy of the database opens no session. Each
//! session has its own CSRF token, which every state-changing request made
//! with the session must carry. The id changes at every login, so an id
//! planted before login is worthless after it.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};
use time::{Duration, OffsetDateTime};
use tuaton_core::{Aal, AccountId};
use tuaton_store::batch::Batch;
use tuaton_store::sessions::{self, NewSession};
use zeroize::Zeroizing;

use crate::audit::{self, Actor, action};
use crate::error::corrupt;
use crate::{Idm, IdmError, Policy};

/// A session's secret as the client holds it (the cookie value).
pub struct SessionSecret(Zeroizing<String>);

impl SessionSecret {
    /// The secret a client presented.
    pub fn presented(value: &str) -> Self {
        Self(Zeroizing::new(value.to_owned()))
    }

    /// The value to hand to the client, once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn digest(&self) -> String {
        hex::encode(digest(&SHA256, self.0.as_bytes()))
    }
}

impl std::fmt::Debug for SessionSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionSecret([redacted])")
    }
}

/// A session just created: the secret for the client's cookie, the CSRF
/// token for its state-changing requests, and how long the session lasts.
#[derive(Debug)]
pub struct IssuedSession {
    /// The cookie's value.
    pub secret: SessionSecret,
    /// The token to send back with every state-changing request.
    pub csrf_token: String,
    /// The session's absolute lifetime.
    pub lifetime: Duration,
}

/// A live session a request came with.
#[derive(Debug, Clone)]
pub struct ActiveSession {
    /// The account.
    pub account_id: AccountId,
    /// The authenticator assurance reached at login.
    pub aal: Aal,
    /// The authentication methods, RFC 8176 values.
    pub amr: Vec<String>,
    /// When the login happened.
    pub authenticated_at: OffsetDateTime,
    id_digest: String,
    csrf_token: Zeroizing<String>,
}

impl ActiveSession {
    /// Checks the CSRF token a state-changing request carried, in constant time.
    pub fn check_csrf(&self, sent: Option<&str>) -> Result<(), IdmError> {
        match sent {
            None => Err(IdmError::CsrfTokenMissing),
            Some(t) if constant_time_eq(t.as_bytes(), self.csrf_token.as_bytes()) => Ok(()),
            Some(_) => Err(IdmError::CsrfTokenInvalid),
        }
    }

    /// The digest the session is stored under (grants made by its logins name it).
    pub(crate) fn id_digest(&self) -> &str {
        &self.id_digest
    }

    /// The account, as the audit log names it.
    pub fn actor(&self) -> Actor {
        Actor::Account(self.account_id.clone())
    }

    /// Whether the login is recent enough for `what`.
    pub(crate) fn require_fresh(
        &self,
        policy: &Policy,
        what: crate::FreshFor,
        now: OffsetDateTime,
    ) -> Result<(), IdmError> {
        if now - self.authenticated_at > policy.fresh_login {
            Err(IdmError::FreshLoginRequired(what))
        } else {
            Ok(())
        }
    }
}

fn random_token() -> Result<Zeroizing<String>, IdmError> {
    let mut b = Zeroizing::new([0u8; 32]);
    SystemRandom::new()
        .fill(b.as_mut())
        .map_err(|_| IdmError::internal("the system random source failed"))?;
    Ok(Zeroizing::new(URL_SAFE_NO_PAD.encode(b.as_ref())))
}

/// Mints a session for `account_id`, ending `previous` (the session the
/// request came with, if any). The grants `previous` gave agencies carry
/// over to the new session when it was the same account's; another
/// account's end with it (a shared computer: the one before did not log
/// out), each owing its client a logout token. The writes join `batch`,
/// which the caller runs in the login's transaction.
pub(crate) fn issue(
    policy: &Policy,
    previous: Option<&SessionSecret>,
    account_id: &AccountId,
    aal: Aal,
    amr: &[&str],
    now: OffsetDateTime,
    batch: &mut Batch,
) -> Result<IssuedSession, IdmError> {
    let secret = SessionSecret(random_token()?);
    if let Some(old) = previous {
        let old = old.digest();
        batch.push(sessions::delete(&old));
        batch.push(tuaton_store::oidc::move_to_session(
            &old,
            &secret.digest(),
            account_id,
        ));
        batch.push(tuaton_store::oidc::revoke_for_session(&old, now));
    }
    let csrf_token = random_token()?;
    let amr_json = serde_json::to_string(amr).map_err(IdmError::internal)?;
    batch.push(sessions::insert(
        &NewSession {
            id_hash: &secret.digest(),
            account_id,
            aal,
            amr: &amr_json,
            csrf_token: &csrf_token,
            lifetime: policy.session_lifetime,
        },
        now,
    ));
    Ok(IssuedSession {
        secret,
        csrf_token: csrf_token.to_string(),
        lifetime: policy.session_lifetime,
    })
}

impl Idm {
    /// The live session `secret` opens, its idle time renewed.
    pub async fn session(
        &self,
        secret: &SessionSecret,
        now: OffsetDateTime,
    ) -> Result<ActiveSession, IdmError> {
        let id_digest = secret.digest();
        let Some(s) =
            sessions::touch(self.store(), &id_digest, self.policy().session_idle, now).await?
        else {
            return Err(IdmError::SessionExpired);
        };
        Ok(ActiveSession {
            account_id: s.account_id,
            aal: s.aal,
            amr: serde_json::from_str(&s.amr).map_err(|_| corrupt("a session's methods"))?,
            authenticated_at: s.created_at,
            id_digest,
            csrf_token: Zeroizing::new(s.csrf_token),
        })
    }

    /// Ends one session.
    ///
    /// What its logins gave agencies ends with it: their grants are revoked
    /// and each client is owed a back-channel logout token.
    pub async fn logout(
        &self,
        session: &ActiveSession,
        now: OffsetDateTime,
    ) -> Result<(), IdmError> {
        self.end_sessions(&session.account_id, &[session.id_digest.as_str()], now)
            .await
    }

    /// Ends the sessions stored under `digests` and revokes the grants their
    /// logins made, in one transaction, with an audit record when a grant ended.
    pub(crate) async fn end_sessions(
        &self,
        account: &AccountId,
        digests: &[&str],
        now: OffsetDateTime,
    ) -> Result<(), IdmError> {
        let mut tx = self.store().begin().await?;
        let mut ended = 0;
        for d in digests {
            sessions::delete(d).execute(tx.conn()).await?;
            ended += tuaton_store::oidc::revoke_for_session(d, now)
                .execute(tx.conn())
                .await?;
        }
        if ended > 0 {
            let actor = Actor::Account(account.clone());
            let ev = audit::success(&actor, action::OIDC_LOGOUT, account.to_string()).with_details(
                serde_json::json!({ "grants_ended": ended, "reason": "session_ended" }),
            );
            tuaton_store::audit::append(&mut tx, now, &ev).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Ends every session of the account; returns how many.
    pub async fn logout_everywhere(
        &self,
        session: &ActiveSession,
        now: OffsetDateTime,
    ) -> Result<u64, IdmError> {
        let mut tx = self.store().begin().await?;
        let ended = sessions::delete_for_account(&mut tx, &session.account_id, now).await?;
        let ev = audit::success(
            &session.actor(),
            action::LOGOUT_EVERYWHERE,
            session.account_id.to_string(),
        )
        .with_details(serde_json::json!({ "sessions_ended": ended }));
        tuaton_store::audit::append(&mut tx, now, &ev).await?;
        tx.commit().await?;
        Ok(ended)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
