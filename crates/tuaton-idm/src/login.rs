//! Passkey login, by citizen id or username-less.
//!
//! A login is two requests. [`Idm::start_login`] stores a challenge as a
//! ceremony and hands back a [`LoginChallenge`]. [`Idm::finish_login`] takes
//! the step values in order: the ceremony and the credential with its
//! account are read in one round trip ([`Presented`]); the credential is
//! matched to the ceremony and its account checked ([`Recognised`]); the
//! assertion is verified; and only then is the ceremony spent, in the
//! transaction that writes the outcome — the session and the audit record,
//! or the refusal's audit record. Only one transaction can delete the
//! ceremony, so only one outcome is ever committed.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use time::OffsetDateTime;
use tuaton_core::{Aal, AccountId, CitizenId, ErrorCode};
use tuaton_passkeys::{LoginOutcome, LoginState, PasskeyError, StoredCredential};
use tuaton_store::Tx;
use tuaton_store::accounts::AccountState;
use tuaton_store::audit::{self as store_audit, Place};
use tuaton_store::batch::Batch;
use tuaton_store::ceremonies::{self, CeremonyKind, TakeError};
use tuaton_store::passkeys::{self as creds, CredentialOwner, PasskeyRecord, PasskeyState};
use webauthn_rs::prelude::{PublicKeyCredential, RequestChallengeResponse, Uuid};

use crate::audit::{self, Actor, action};
use crate::sessions::{self, IssuedSession, SessionSecret};
use crate::{Idm, IdmError};

/// A ceremony that proves possession of one of an account's passkeys, and
/// the audit action its refusals are recorded under: a login, or the
/// cancelling of a recovery (`recovery.rs`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Assertion {
    pub(crate) kind: CeremonyKind,
    pub(crate) action: &'static str,
}

const LOGIN: Assertion = Assertion {
    kind: CeremonyKind::PasskeyLogin,
    action: action::LOGIN,
};

/// The server secret that derives stand-in credential ids.
const PRIVACY_SECRET: &str = "login-privacy";

/// A login begun: give `options` to `navigator.credentials.get`, and the id back at finish.
#[derive(Debug)]
pub struct LoginChallenge {
    /// Opaque, single-use.
    pub ceremony_id: String,
    /// The WebAuthn request options.
    pub options: RequestChallengeResponse,
}

/// A login made: the account, what it reached, and its new session.
#[derive(Debug)]
pub struct LoggedIn {
    /// The account.
    pub account_id: AccountId,
    /// Authenticator assurance reached.
    pub aal: Aal,
    /// Authentication methods (RFC 8176).
    pub amr: Vec<&'static str>,
    /// The session to hand to the client.
    pub session: IssuedSession,
}

/// Why a login was refused, as its audit record gives it.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    Unidentifiable,
    UnknownCredential,
    CredentialOfAnotherAccount,
    CredentialSuspended,
    AccountNotActive,
    VerificationFailed,
    /// The row's seal does not verify: written by someone who could only
    /// write the database (crate::sealing).
    CredentialNotSealed,
}

impl Refusal {
    fn reason(self) -> &'static str {
        match self {
            Refusal::Unidentifiable => "unidentifiable",
            Refusal::UnknownCredential => ErrorCode::UnknownCredential.as_str(),
            Refusal::CredentialOfAnotherAccount => "credential_of_another_account",
            Refusal::CredentialSuspended => ErrorCode::CredentialSuspended.as_str(),
            Refusal::AccountNotActive => ErrorCode::AccountNotActive.as_str(),
            Refusal::VerificationFailed => "verification_failed",
            Refusal::CredentialNotSealed => "credential_not_sealed",
        }
    }
}

/// Request options naming `credential` as the one allowed, in the form a
/// known account's options take (no conditional mediation, no extensions);
/// the API suite compares the two shapes.
pub(crate) fn with_credential(
    options: &RequestChallengeResponse,
    credential: &ring::hmac::Tag,
) -> Result<RequestChallengeResponse, IdmError> {
    let mut v = serde_json::to_value(options).map_err(IdmError::internal)?;
    v["publicKey"]["allowCredentials"] = json!([{
        "type": "public-key",
        "id": URL_SAFE_NO_PAD.encode(credential.as_ref()),
    }]);
    if let Some(o) = v.as_object_mut() {
        o.remove("mediation");
    }
    // A known account's options ask for no extensions; the username-less
    // ones do (`uvm`), which would tell the two apart.
    if let Some(o) = v["publicKey"].as_object_mut() {
        o.remove("extensions");
    }
    serde_json::from_value(v).map_err(IdmError::internal)
}

/// The user handle is 128 random bits in hex; as a WebAuthn user id it is read as a UUID.
pub(crate) fn user_uuid(h: &str) -> Uuid {
    let mut b = [0u8; 16];
    if let Ok(v) = hex::decode(h) {
        let n = v.len().min(16);
        b[..n].copy_from_slice(&v[..n]);
    }
    Uuid::from_bytes(b)
}

/// Step one of a finish: the ceremony (checked, not yet spent) and the
/// credential the response names, with its account.
pub(crate) struct Presented<'a> {
    ceremony_id: &'a str,
    ceremony_account: Option<AccountId>,
    handle: Option<Uuid>,
    credential: Option<(PasskeyRecord, CredentialOwner)>,
}

/// Step two: a credential of an active account that this ceremony may use.
pub(crate) struct Recognised<'a> {
    pub(crate) ceremony_id: &'a str,
    pub(crate) account_id: AccountId,
    pub(crate) record: PasskeyRecord,
}

impl Recognised<'_> {
    /// The write that records a verified use of the credential: its updated
    /// state, counter and backup state, sealed with `seal`.
    pub(crate) fn record_use(
        &self,
        seal: &crate::PasskeySeal,
        outcome: &LoginOutcome,
        now: OffsetDateTime,
    ) -> tuaton_store::batch::Statement {
        let updated = outcome.updated.as_str();
        creds::record_use(
            &self.record.cred_id,
            updated,
            i64::from(outcome.facts.counter),
            outcome.facts.backup_state,
            &seal.seal(&self.record.account_id, self.record.state, updated),
            now,
        )
    }
}

impl Idm {
    /// Starts a login. With a citizen id, the account's active passkeys are
    /// offered. For an id with no account, or none with an active passkey,
    /// the answer looks the same (the Username Enumeration consideration of
    /// Web Authentication Level 3): a stand-in credential id derived from the
    /// id with a server secret — the same on every ask and every instance —
    /// and the same per-account limit, counted under a stand-in account.
    /// Without a citizen id, a username-less challenge.
    pub async fn start_login(
        &self,
        citizen_id: Option<&CitizenId>,
        now: OffsetDateTime,
    ) -> Result<LoginChallenge, IdmError> {
        let pk = self.passkeys();
        let mut account_id = None;
        let mut started = None;
        if let Some(id) = citizen_id {
            let candidates =
                creds::login_candidates(self.store().conn().await?.conn(), &id.compact()).await?;
            match candidates {
                Some((acc_id, active)) => {
                    self.count_attempt(&acc_id)?;
                    let stored: Vec<StoredCredential> = active
                        .into_iter()
                        .map(StoredCredential::from_stored)
                        .collect();
                    if !stored.is_empty() {
                        started = Some(pk.start_login(&stored, now)?);
                        account_id = Some(acc_id);
                    }
                }
                None => self.count_attempt(&self.stand_in_account(id, now).await?)?,
            }
        }
        let (options, state) = match (started, citizen_id) {
            (Some(s), _) => s,
            // An id with no usable passkey: shaped like one that has.
            (None, Some(id)) => {
                let (options, state) = pk.start_discoverable_login(now)?;
                let stand_in = self.stand_in(b"credential", id, now).await?;
                (with_credential(&options, &stand_in)?, state)
            }
            (None, None) => pk.start_discoverable_login(now)?,
        };
        let begun = ceremonies::put_challenge(
            self.store(),
            LOGIN.kind,
            account_id.as_ref(),
            &state.to_json()?,
            now,
        )
        .await?;
        Ok(LoginChallenge {
            ceremony_id: begun.id,
            options,
        })
    }

    /// Finishes a login: verifies the assertion and mints a session, ending
    /// `previous` (the session the request came with). Every refusal after
    /// the ceremony is found spends it and is audited without personal data.
    pub async fn finish_login(
        &self,
        ceremony_id: &str,
        response: &PublicKeyCredential,
        previous: Option<&SessionSecret>,
        now: OffsetDateTime,
    ) -> Result<LoggedIn, IdmError> {
        let (recognised, outcome) = self.assert(LOGIN, ceremony_id, response, now).await?;
        self.commit_login(recognised, outcome, previous, now).await
    }

    /// Checks an assertion made in a ceremony of `a`'s kind: reads,
    /// recognises and verifies; a refusal spends the ceremony and is audited,
    /// a cloned authenticator is suspended. The ceremony is left for the
    /// caller's outcome transaction to spend.
    pub(crate) async fn assert<'a>(
        &self,
        a: Assertion,
        ceremony_id: &'a str,
        response: &PublicKeyCredential,
        now: OffsetDateTime,
    ) -> Result<(Recognised<'a>, LoginOutcome), IdmError> {
        let (presented, login_state) = self.present(a, ceremony_id, response, now).await?;
        let recognised = match self.recognise(presented)? {
            Ok(r) => r,
            Err((target, refusal, err)) => {
                return Err(self
                    .refuse(a, ceremony_id, target, refusal, err, now)
                    .await?);
            }
        };
        let stored = StoredCredential::from_stored(recognised.record.credential.clone());
        let verified = self
            .passkeys()
            .finish_login(login_state, response, &stored, now);
        match verified {
            Ok(outcome) => Ok((recognised, outcome)),
            Err(PasskeyError::CounterRegression) => {
                Err(self.suspend_cloned(a, recognised, now).await?)
            }
            Err(e) => {
                let target = recognised.account_id.to_string();
                Err(self
                    .refuse(
                        a,
                        ceremony_id,
                        target,
                        Refusal::VerificationFailed,
                        e.into(),
                        now,
                    )
                    .await?)
            }
        }
    }

    /// HMAC-SHA256 of `purpose` and the citizen id under the login-privacy
    /// secret, made and shared through the store on first use.
    async fn stand_in(
        &self,
        purpose: &[u8],
        id: &CitizenId,
        now: OffsetDateTime,
    ) -> Result<ring::hmac::Tag, IdmError> {
        self.stand_in_for(purpose, id.compact().as_bytes(), now)
            .await
    }

    /// HMAC-SHA256 of `purpose` and `subject` under the login-privacy secret.
    pub(crate) async fn stand_in_for(
        &self,
        purpose: &[u8],
        subject: &[u8],
        now: OffsetDateTime,
    ) -> Result<ring::hmac::Tag, IdmError> {
        let key = self
            .server_key(&self.0.login_privacy, PRIVACY_SECRET, now)
            .await?;
        let mut message = purpose.to_vec();
        message.push(0);
        message.extend_from_slice(subject);
        Ok(ring::hmac::sign(key, &message))
    }

    /// The account an unknown citizen id's attempts are counted under.
    async fn stand_in_account(
        &self,
        id: &CitizenId,
        now: OffsetDateTime,
    ) -> Result<AccountId, IdmError> {
        let tag = self.stand_in(b"account", id, now).await?;
        AccountId::parse(&hex::encode(&tag.as_ref()[..16])).map_err(IdmError::internal)
    }

    /// Reads the ceremony and the credential in one round trip; the ceremony
    /// must be live, but is not spent yet. Its login state comes back beside
    /// the step value, for the verification to consume.
    async fn present<'a>(
        &self,
        a: Assertion,
        ceremony_id: &'a str,
        response: &PublicKeyCredential,
        now: OffsetDateTime,
    ) -> Result<(Presented<'a>, LoginState), IdmError> {
        // A login by citizen id names its credential; a username-less one must also carry the user handle.
        let identified = self.passkeys().identify(response);
        let cred_id = URL_SAFE_NO_PAD.encode(response.get_credential_id());
        let mut reads = Batch::new();
        let ceremony = reads.add(ceremonies::lookup(ceremony_id));
        let credential = reads.add(creds::with_owner(&cred_id));
        let mut read = reads.run(self.store().conn().await?.conn()).await?;
        let ceremony = read
            .take(ceremony)?
            .ok_or(TakeError::Unknown)
            .and_then(|c| c.live(a.kind, now))?;
        let login_state = LoginState::from_json(&ceremony.state)?;
        let handle = match (identified, &ceremony.account_id) {
            (Ok((h, _)), _) => Some(h),
            (Err(_), Some(_)) => None,
            (Err(e), None) => {
                return Err(self
                    .refuse(
                        a,
                        ceremony_id,
                        "unknown".into(),
                        Refusal::Unidentifiable,
                        e.into(),
                        now,
                    )
                    .await?);
            }
        };
        let presented = Presented {
            ceremony_id,
            ceremony_account: ceremony.account_id,
            handle,
            credential: read.take(credential)?,
        };
        Ok((presented, login_state))
    }

    /// Matches the credential to the ceremony and checks it and its account
    /// may log in; a refusal names the audit target, the reason and the error.
    #[allow(clippy::type_complexity)]
    fn recognise<'a>(
        &self,
        p: Presented<'a>,
    ) -> Result<Result<Recognised<'a>, (String, Refusal, IdmError)>, IdmError> {
        let unknown = || IdmError::Passkey(PasskeyError::UnknownCredential);
        let Some((record, owner)) = p.credential else {
            return Ok(Err((
                "unknown".into(),
                Refusal::UnknownCredential,
                unknown(),
            )));
        };
        let account_id = record.account_id.clone();
        self.count_attempt(&account_id)?;
        let handle_matches = p.handle.is_none_or(|h| user_uuid(&owner.user_handle) == h);
        let sealed = self.passkey_seal().holds(
            &record.account_id,
            record.state,
            &record.credential,
            record.seal.as_deref(),
        );
        let refusal = if !sealed {
            tracing::warn!(credential = %record.cred_id, "a passkey row's seal does not verify; it was not written by Tuaton");
            Some((Refusal::CredentialNotSealed, unknown()))
        } else if !handle_matches
            || p.ceremony_account
                .as_ref()
                .is_some_and(|a| *a != record.account_id)
        {
            Some((Refusal::CredentialOfAnotherAccount, unknown()))
        } else if record.state != PasskeyState::Active {
            Some((
                Refusal::CredentialSuspended,
                IdmError::Passkey(PasskeyError::CounterRegression),
            ))
        } else if owner.state != AccountState::Active {
            Some((Refusal::AccountNotActive, IdmError::AccountNotActive))
        } else {
            None
        };
        Ok(match refusal {
            Some((r, e)) => Err((account_id.to_string(), r, e)),
            None => Ok(Recognised {
                ceremony_id: p.ceremony_id,
                account_id,
                record,
            }),
        })
    }

    /// Writes a verified login: the counter, the session and the audit
    /// record, with the ceremony's spend, in two round trips.
    async fn commit_login(
        &self,
        r: Recognised<'_>,
        outcome: LoginOutcome,
        previous: Option<&SessionSecret>,
        now: OffsetDateTime,
    ) -> Result<LoggedIn, IdmError> {
        let (tx, place) = self.open_spending(LOGIN.kind, r.ceremony_id).await?;
        let mut closing = Batch::new();
        closing.push(r.record_use(self.passkey_seal(), &outcome, now));
        let session = sessions::issue(
            self.policy(),
            previous,
            &r.account_id,
            outcome.aal,
            &outcome.amr,
            now,
            &mut closing,
        )?;
        let ev = audit::success(
            &Actor::Account(r.account_id.clone()),
            action::LOGIN,
            r.account_id.to_string(),
        )
        .with_details(json!({
            "cred_id": r.record.cred_id, "aal": outcome.aal.number(), "amr": outcome.amr,
        }));
        place.write(now, &ev, &mut closing)?;
        tx.commit_with(closing).await?;
        Ok(LoggedIn {
            account_id: r.account_id,
            aal: outcome.aal,
            amr: outcome.amr,
            session,
        })
    }

    /// A cloned authenticator: suspends the credential and ends every
    /// session of the account (whoever holds the copy may have logged in
    /// with it already), with the audit record, in the transaction that
    /// spends the ceremony.
    async fn suspend_cloned(
        &self,
        a: Assertion,
        r: Recognised<'_>,
        now: OffsetDateTime,
    ) -> Result<IdmError, IdmError> {
        let (tx, place) = self.open_spending(a.kind, r.ceremony_id).await?;
        let mut closing = Batch::new();
        let seal = self.passkey_seal().seal(
            &r.record.account_id,
            PasskeyState::Suspended,
            &r.record.credential,
        );
        closing.push(creds::suspend(&r.record.cred_id, &seal));
        closing.push(tuaton_store::sessions::end_all(&r.account_id));
        closing.push(tuaton_store::oidc::revoke_for_account(&r.account_id, now));
        let ev = audit::failure(
            &Actor::Account(r.account_id.clone()),
            action::PASSKEY_SUSPEND_CLONED,
            r.account_id.to_string(),
        )
        .with_details(json!({
            "cred_id": r.record.cred_id, "reason": "counter_regression", "sessions_ended": "all",
        }));
        place.write(now, &ev, &mut closing)?;
        tx.commit_with(closing).await?;
        Ok(IdmError::Passkey(PasskeyError::CounterRegression))
    }

    /// Spends the ceremony and audits the refusal in one transaction (the
    /// target is an account id or `unknown`, never personal data); returns
    /// the refusal to answer with.
    async fn refuse(
        &self,
        a: Assertion,
        ceremony_id: &str,
        target: String,
        refusal: Refusal,
        err: IdmError,
        now: OffsetDateTime,
    ) -> Result<IdmError, IdmError> {
        let ev = audit::refusal(&Actor::Anonymous, a.action, target, refusal.reason());
        // Already spent or not, the refusal is recorded.
        let (tx, _, place) = self.open_transaction(a.kind, ceremony_id).await?;
        let mut closing = Batch::new();
        place.write(now, &ev, &mut closing)?;
        tx.commit_with(closing).await?;
        Ok(err)
    }

    /// Opens the transaction that writes an outcome, spending the ceremony;
    /// a ceremony already spent (a concurrent finish of the same ceremony,
    /// or a replay) is refused and the transaction dropped, so nothing of
    /// this attempt is kept.
    pub(crate) async fn open_spending(
        &self,
        kind: CeremonyKind,
        ceremony_id: &str,
    ) -> Result<(Tx, Place), IdmError> {
        let (tx, spent, place) = self.open_transaction(kind, ceremony_id).await?;
        if spent {
            Ok((tx, place))
        } else {
            Err(TakeError::Unknown.into())
        }
    }

    /// One round trip: begins the transaction, spends the ceremony (`true`
    /// if this call removed it) and takes the audit chain's next place.
    async fn open_transaction(
        &self,
        kind: CeremonyKind,
        ceremony_id: &str,
    ) -> Result<(Tx, bool, Place), IdmError> {
        let mut opening = Batch::new();
        let spent = opening.add(ceremonies::spend(ceremony_id, kind));
        let place = opening.add(store_audit::next_place());
        let (tx, mut opened) = self.store().begin_with(opening).await?;
        let spent = opened.take(spent)?;
        Ok((tx, spent, opened.take(place)?))
    }
}
