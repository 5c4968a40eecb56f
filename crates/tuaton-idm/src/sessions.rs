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
/// request came with, if any). The writes join `batch`, which the caller
/// runs in the login's transaction.
pub(crate) fn issue(
    policy: &Policy,
    previous: Option<&SessionSecret>,
    account_id: &AccountId,
    aal: Aal,
    amr: &[&str],
    now: OffsetDateTime,
    batch: &mut Batch,
) -> Result<IssuedSession, IdmError> {
    if let Some(old) = previous {
        batch.push(sessions::delete(&old.digest()));
    }
    let secret = SessionSecret(random_token()?);
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
    pub async fn logout(&self, session: &ActiveSession) -> Result<(), IdmError> {
        sessions::delete(&session.id_digest)
            .execute(self.store().conn().await?.conn())
            .await?;
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
