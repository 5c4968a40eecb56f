//! Registration and login ceremonies.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tuaton_core::Aal;
use url::Url;
use webauthn_rs::prelude::{
    AttestedPasskeyRegistration, CreationChallengeResponse, DiscoverableAuthentication, Passkey,
    PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, Uuid,
};
use webauthn_rs::{Webauthn, WebauthnBuilder};

use crate::credential::{Envelope, amr_for, reported_aaguid};
use crate::error::Stage;
use crate::{CredentialFacts, PasskeyConfig, PasskeyError, StoredCredential, policy::Aal3Policy};

/// The account a passkey is being registered for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyUser {
    /// The WebAuthn user handle: random, stable for the account, never the
    /// citizen id (authenticators may show or leak it).
    pub handle: Uuid,
    /// Account name the authenticator may display, e.g. a masked citizen id.
    pub name: String,
    /// Friendly name the authenticator may display.
    pub display_name: String,
}

/// Server-side state of a started registration. Serialise it into the
/// ceremony table, remove it from there *before* calling
/// [`Passkeys::finish_registration`], which consumes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegistrationState {
    expires_at: OffsetDateTime,
    user: Uuid,
    exclude: Vec<Vec<u8>>,
    kind: RegistrationKind,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum RegistrationKind {
    Plain(PasskeyRegistration),
    Attested(AttestedPasskeyRegistration),
}

/// Server-side state of a started login; same handling as
/// [`RegistrationState`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginState {
    expires_at: OffsetDateTime,
    kind: LoginKind,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum LoginKind {
    /// Login by citizen id: the account's credentials are in the allow list.
    Account(PasskeyAuthentication),
    /// Username-less login (conditional UI).
    Discoverable(DiscoverableAuthentication),
}

macro_rules! state_codec {
    ($t:ty, $what:literal) => {
        impl $t {
            /// When this ceremony stops being accepted.
            pub fn expires_at(&self) -> OffsetDateTime {
                self.expires_at
            }

            /// JSON text for the server's ceremony table.
            pub fn to_json(&self) -> Result<String, PasskeyError> {
                serde_json::to_string(self)
                    .map_err(|e| PasskeyError::CorruptState(format!(concat!($what, ": {}"), e)))
            }

            /// Reads text produced by [`Self::to_json`].
            pub fn from_json(text: &str) -> Result<Self, PasskeyError> {
                serde_json::from_str(text)
                    .map_err(|e| PasskeyError::CorruptState(format!(concat!($what, ": {}"), e)))
            }

            fn check_fresh(&self, now: OffsetDateTime) -> Result<(), PasskeyError> {
                if now >= self.expires_at {
                    Err(PasskeyError::Expired)
                } else {
                    Ok(())
                }
            }
        }
    };
}
state_codec!(RegistrationState, "registration state");
state_codec!(LoginState, "login state");

/// The result of a successful login.
#[derive(Debug, Clone)]
pub struct LoginOutcome {
    /// The credential used.
    pub cred_id: Vec<u8>,
    /// The credential with its new counter and backup flags; store it back.
    pub updated: StoredCredential,
    /// Facts about the credential after this login.
    pub facts: CredentialFacts,
    /// The level this login reached (also `facts.aal`).
    pub aal: Aal,
    /// RFC 8176 authentication method references; see [`amr_for`].
    pub amr: Vec<&'static str>,
}

/// The passkey verifier for one site. Build once at start-up and share.
#[derive(Debug, Clone)]
pub struct Passkeys {
    webauthn: Webauthn,
    policy: Aal3Policy,
    ttl: time::Duration,
}

impl Passkeys {
    /// Checks the configuration and builds the verifier.
    ///
    /// The relying-party id is the host of `public_url`; the accepted origins
    /// are its origin and `extra_origins`. It must be `https`, except on
    /// `localhost`.
    pub fn new(cfg: PasskeyConfig) -> Result<Self, PasskeyError> {
        let url = &cfg.public_url;
        let rp_id = url.domain().ok_or_else(|| {
            PasskeyError::Config("public_url must have a domain name (not an IP address)".into())
        })?;
        if url.scheme() != "https" && !(url.scheme() == "http" && rp_id == "localhost") {
            return Err(PasskeyError::Config(
                "public_url must be https (http is accepted only for localhost)".into(),
            ));
        }
        let origin = Url::parse(&url.origin().ascii_serialization())
            .map_err(|_| PasskeyError::Config("public_url has no usable origin".into()))?;
        if cfg.ceremony_ttl.is_zero() {
            return Err(PasskeyError::Config("ceremony_ttl must be positive".into()));
        }
        let ttl = time::Duration::try_from(cfg.ceremony_ttl)
            .map_err(|_| PasskeyError::Config("ceremony_ttl is too large".into()))?;
        let rp_name = if cfg.rp_name.trim().is_empty() {
            rp_id
        } else {
            cfg.rp_name.as_str()
        };
        let webauthn = WebauthnBuilder::new(rp_id, &origin)
            .map(|b| {
                cfg.extra_origins
                    .iter()
                    .fold(b, |b, o| b.append_allowed_origin(o.url()))
                    .rp_name(rp_name)
                    .timeout(cfg.ceremony_ttl)
            })
            .and_then(|b| b.build())
            .map_err(|e| PasskeyError::from_webauthn(e, Stage::Register))?;
        Ok(Self {
            webauthn,
            policy: cfg.aal3,
            ttl,
        })
    }

    /// The AAL3 allow-list in force.
    pub fn aal3_policy(&self) -> &Aal3Policy {
        &self.policy
    }

    /// Starts registering a passkey for `user`. `exclude` lists the ids of
    /// the user's existing credentials so the same authenticator is not
    /// enrolled twice. With `want_aal3`, only an attested authenticator on
    /// the allow-list will finish (refused early with
    /// [`PasskeyError::NotAllowListed`] if the list is empty).
    pub fn start_registration(
        &self,
        user: &PasskeyUser,
        exclude: &[Vec<u8>],
        want_aal3: bool,
        now: OffsetDateTime,
    ) -> Result<(CreationChallengeResponse, RegistrationState), PasskeyError> {
        let excl = (!exclude.is_empty()).then(|| exclude.to_vec());
        let (ccr, kind) = if want_aal3 {
            if self.policy.is_empty() {
                return Err(PasskeyError::NotAllowListed);
            }
            let (ccr, st) = self
                .webauthn
                .start_attested_passkey_registration(
                    user.handle,
                    &user.name,
                    &user.display_name,
                    excl,
                    self.policy.ca_list().clone(),
                    None,
                )
                .map_err(|e| PasskeyError::from_webauthn(e, Stage::RegisterAttested))?;
            (ccr, RegistrationKind::Attested(st))
        } else {
            let (ccr, st) = self
                .webauthn
                .start_passkey_registration(user.handle, &user.name, &user.display_name, excl)
                .map_err(|e| PasskeyError::from_webauthn(e, Stage::Register))?;
            (ccr, RegistrationKind::Plain(st))
        };
        let ccr = prefer_discoverable(ccr);
        let state = RegistrationState {
            expires_at: now + self.ttl,
            user: user.handle,
            exclude: exclude.to_vec(),
            kind,
        };
        Ok((ccr, state))
    }

    /// Verifies the browser's answer to [`Self::start_registration`].
    /// Consumes the state: a state is good for one attempt.
    pub fn finish_registration(
        &self,
        state: RegistrationState,
        response: &RegisterPublicKeyCredential,
        now: OffsetDateTime,
    ) -> Result<(StoredCredential, CredentialFacts), PasskeyError> {
        state.check_fresh(now)?;
        if state.exclude.contains(&response.raw_id) {
            return Err(PasskeyError::AlreadyRegistered);
        }
        let (passkey, attested, aaguid) = match &state.kind {
            RegistrationKind::Plain(st) => {
                let pk = self
                    .webauthn
                    .finish_passkey_registration(response, st)
                    .map_err(|e| PasskeyError::from_webauthn(e, Stage::Register))?;
                (pk, false, reported_aaguid(response))
            }
            RegistrationKind::Attested(st) => {
                let apk = self
                    .webauthn
                    .finish_attested_passkey_registration(response, st)
                    .map_err(|e| PasskeyError::from_webauthn(e, Stage::RegisterAttested))?;
                // webauthn-rs checked the chain and that the CA vouches for
                // this AAGUID; take the AAGUID from the verified attestation.
                let aaguid = match &apk.attestation().metadata {
                    webauthn_rs::prelude::AttestationMetadata::Packed { aaguid }
                    | webauthn_rs::prelude::AttestationMetadata::Tpm { aaguid, .. } => *aaguid,
                    _ => return Err(PasskeyError::NotAllowListed),
                };
                if !self.policy.allows(&aaguid) {
                    return Err(PasskeyError::NotAllowListed);
                }
                (Passkey::from(apk), true, Some(aaguid))
            }
        };
        let env = Envelope {
            v: Envelope::VERSION,
            user: state.user,
            passkey,
            aaguid,
            attested,
        };
        let facts = env.facts(&self.policy)?;
        if attested && facts.aal < Aal::Aal3 {
            // Attested but synchronisable: webauthn-rs already refuses this;
            // kept so the promise "want_aal3 gives AAL3 or an error" holds.
            return Err(PasskeyError::NotAllowListed);
        }
        Ok((StoredCredential::from_envelope(&env)?, facts))
    }

    /// Starts a login for an account identified beforehand (by citizen id):
    /// `creds` are that account's usable (not suspended) credentials.
    pub fn start_login(
        &self,
        creds: &[StoredCredential],
        now: OffsetDateTime,
    ) -> Result<(RequestChallengeResponse, LoginState), PasskeyError> {
        if creds.is_empty() {
            return Err(PasskeyError::UnknownCredential);
        }
        let passkeys = creds
            .iter()
            .map(|c| c.envelope().map(|e| e.passkey))
            .collect::<Result<Vec<_>, _>>()?;
        let (rcr, st) = self
            .webauthn
            .start_passkey_authentication(&passkeys)
            .map_err(|e| PasskeyError::from_webauthn(e, Stage::Login))?;
        Ok((
            rcr,
            LoginState {
                expires_at: now + self.ttl,
                kind: LoginKind::Account(st),
            },
        ))
    }

    /// Starts a confirmation: a login over the account's `creds` whose
    /// WebAuthn challenge is `challenge` instead of a random one, so that
    /// the assertion's signature (over the client data, which holds the
    /// challenge) proves that the person approved exactly what the
    /// challenge commits to, such as the digests of documents to sign.
    /// `challenge` must be unpredictable to anyone but the server (it
    /// commits to a fresh random request id) and is used once, as any
    /// ceremony state. Finished with [`Self::finish_login`].
    pub fn start_confirmation(
        &self,
        creds: &[StoredCredential],
        challenge: [u8; 32],
        now: OffsetDateTime,
    ) -> Result<(RequestChallengeResponse, LoginState), PasskeyError> {
        let (mut rcr, st) = self.start_login(creds, now)?;
        let LoginKind::Account(st) = st.kind else {
            return Err(PasskeyError::InvalidResponse(
                "a confirmation needs the account's credentials".into(),
            ));
        };
        // webauthn-rs makes its own random challenge and keeps it in the
        // state; its serialised form (the `danger-allow-state-serialisation`
        // feature) is where the challenge is replaced. A change to that
        // form fails here, and the tests, rather than confirm anything.
        let unreadable =
            |_| PasskeyError::InvalidResponse("the ceremony state cannot be read".into());
        let mut value = serde_json::to_value(&st).map_err(unreadable)?;
        let slot = value
            .get_mut("ast")
            .and_then(|a| a.get_mut("challenge"))
            .ok_or_else(|| {
                PasskeyError::InvalidResponse("the ceremony state has no challenge".into())
            })?;
        *slot = serde_json::Value::String(base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            challenge,
        ));
        let st: PasskeyAuthentication = serde_json::from_value(value).map_err(unreadable)?;
        rcr.public_key.challenge = challenge.to_vec();
        Ok((
            rcr,
            LoginState {
                expires_at: now + self.ttl,
                kind: LoginKind::Account(st),
            },
        ))
    }

    /// Starts a username-less login: the browser offers the user's
    /// discoverable passkeys in the autofill UI (`mediation: conditional`).
    pub fn start_discoverable_login(
        &self,
        now: OffsetDateTime,
    ) -> Result<(RequestChallengeResponse, LoginState), PasskeyError> {
        let (rcr, st) = self
            .webauthn
            .start_discoverable_authentication()
            .map_err(|e| PasskeyError::from_webauthn(e, Stage::Login))?;
        Ok((
            rcr,
            LoginState {
                expires_at: now + self.ttl,
                kind: LoginKind::Discoverable(st),
            },
        ))
    }

    /// For a discoverable login: the user handle and credential id the
    /// response claims, so the server can load that credential. Nothing is
    /// verified yet; [`Self::finish_login`] does that.
    pub fn identify(
        &self,
        response: &PublicKeyCredential,
    ) -> Result<(Uuid, Vec<u8>), PasskeyError> {
        self.webauthn
            .identify_discoverable_authentication(response)
            .map(|(user, id)| (user, id.to_vec()))
            .map_err(|_| {
                PasskeyError::InvalidResponse(
                    "no user handle: not a discoverable credential".into(),
                )
            })
    }

    /// Verifies the answer to a login. `cred` is the stored credential the
    /// response names (by id), read fresh from the store. Consumes the state.
    ///
    /// On [`PasskeyError::CounterRegression`] the server suspends the
    /// credential and audits.
    ///
    /// A state value cannot be finished twice:
    ///
    /// ```compile_fail,E0382
    /// # use tuaton_passkeys::*;
    /// # fn f(p: &Passkeys, st: LoginState, r: &PublicKeyCredential, c: &StoredCredential, now: time::OffsetDateTime) {
    /// let _ = p.finish_login(st, r, c, now);
    /// let _ = p.finish_login(st, r, c, now); // use of moved value: `st`
    /// # }
    /// ```
    pub fn finish_login(
        &self,
        state: LoginState,
        response: &PublicKeyCredential,
        cred: &StoredCredential,
        now: OffsetDateTime,
    ) -> Result<LoginOutcome, PasskeyError> {
        state.check_fresh(now)?;
        let mut env = cred.envelope()?;
        let stored = env.credential()?;
        if response.raw_id != stored.cred_id {
            return Err(PasskeyError::UnknownCredential);
        }
        let result = match state.kind {
            LoginKind::Account(st) => self.webauthn.finish_passkey_authentication(response, &st),
            LoginKind::Discoverable(st) => {
                // The handle is not signed, but it must name the credential's
                // owner, or the server would log in the wrong account.
                let (handle, _) = self.identify(response)?;
                if handle != env.user {
                    return Err(PasskeyError::UnknownCredential);
                }
                self.webauthn
                    .finish_discoverable_authentication_v2(response, st, &env.passkey)
            }
        }
        .map_err(|e| PasskeyError::from_webauthn(e, Stage::Login))?;

        // webauthn-rs compares the counter with the copy taken when the
        // ceremony started; compare with the stored one too, which may have
        // moved on through a concurrent login.
        if (result.counter() > 0 || stored.counter > 0) && result.counter() <= stored.counter {
            return Err(PasskeyError::CounterRegression);
        }
        if !result.user_verified() {
            return Err(PasskeyError::UserVerificationMissing);
        }

        env.passkey.update_credential(&result);
        let mut facts = env.facts(&self.policy)?;
        facts.user_verified = result.user_verified();
        let amr = amr_for(&facts);
        Ok(LoginOutcome {
            cred_id: facts.cred_id.clone(),
            updated: StoredCredential::from_envelope(&env)?,
            aal: facts.aal,
            facts,
            amr,
        })
    }

    /// The facts about a stored credential under the current allow-list (for
    /// account pages and re-evaluation after the allow-list changes).
    pub fn facts(&self, cred: &StoredCredential) -> Result<CredentialFacts, PasskeyError> {
        cred.envelope()?.facts(&self.policy)
    }

    /// The user handle of the account a stored credential belongs to.
    pub fn owner(&self, cred: &StoredCredential) -> Result<Uuid, PasskeyError> {
        Ok(cred.envelope()?.user)
    }
}

/// Asks authenticators for a discoverable (resident) credential where they can
/// make one, so username-less login works. webauthn-rs asks them not to; the
/// request is only a preference and the finish step does not depend on it,
/// so authenticators without resident keys still register.
fn prefer_discoverable(mut ccr: CreationChallengeResponse) -> CreationChallengeResponse {
    if let Some(sel) = ccr.public_key.authenticator_selection.as_mut() {
        sel.resident_key = Some(webauthn_rs_core::proto::ResidentKeyRequirement::Preferred);
        sel.require_resident_key = false;
    }
    ccr
}
