//! What the store keeps for each passkey, and the facts read back from it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tuaton_core::Aal;
use webauthn_rs::prelude::{Passkey, RegisterPublicKeyCredential, Uuid};
use webauthn_rs_core::proto::Credential;

use crate::PasskeyError;
use crate::policy::Aal3Policy;

/// A registered passkey as the store keeps it: JSON text, opaque to the
/// store. Holds the public key, counter, backup flags, attestation, the
/// owner's user handle and whether the attestation was verified against the
/// AAL3 allow-list at registration. Nothing in it is secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StoredCredential(String);

impl StoredCredential {
    /// Wraps text previously obtained from [`Self::as_str`].
    pub fn from_stored(text: String) -> Self {
        Self(text)
    }

    /// The text to store.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text to store, by value.
    pub fn into_string(self) -> String {
        self.0
    }

    pub(crate) fn from_envelope(env: &Envelope) -> Result<Self, PasskeyError> {
        serde_json::to_string(env)
            .map(Self)
            .map_err(|e| PasskeyError::CorruptState(format!("credential: {e}")))
    }

    pub(crate) fn envelope(&self) -> Result<Envelope, PasskeyError> {
        serde_json::from_str(&self.0)
            .map_err(|e| PasskeyError::CorruptState(format!("credential: {e}")))
    }
}

impl std::fmt::Debug for StoredCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not secret, but long and full of identifiers: keep logs short.
        f.write_str("StoredCredential(..)")
    }
}

/// The persisted form behind [`StoredCredential`]. Versioned so a later
/// format can be migrated on read.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Envelope {
    pub v: u8,
    /// The WebAuthn user handle of the account that registered it.
    pub user: Uuid,
    pub passkey: Passkey,
    /// The AAGUID the authenticator reported (verified only if `attested`).
    pub aaguid: Option<Uuid>,
    /// The attestation chained to an allow-listed root for this AAGUID.
    pub attested: bool,
}

impl Envelope {
    pub const VERSION: u8 = 1;

    /// Read-only typed view of the credential inside the passkey (counter,
    /// flags). webauthn-rs does not expose these on `Passkey`; its serialised
    /// form is `{"cred": Credential}`, stable because applications store it.
    pub fn credential(&self) -> Result<Credential, PasskeyError> {
        #[derive(Deserialize)]
        struct View {
            cred: Credential,
        }
        serde_json::to_value(&self.passkey)
            .and_then(serde_json::from_value::<View>)
            .map(|v| v.cred)
            .map_err(|e| PasskeyError::CorruptState(format!("passkey: {e}")))
    }

    /// The facts about this credential under the current allow-list.
    pub fn facts(&self, policy: &Aal3Policy) -> Result<CredentialFacts, PasskeyError> {
        let cred = self.credential()?;
        // AAL3 needs all of: verified attestation at registration, the model
        // still on the list today, and a key that cannot leave the device.
        let aal3 = self.attested
            && self.aaguid.is_some_and(|a| policy.allows(&a))
            && !cred.backup_eligible
            && !cred.backup_state;
        Ok(CredentialFacts {
            cred_id: cred.cred_id.clone(),
            aaguid: self.aaguid,
            aal: if aal3 { Aal::Aal3 } else { Aal::Aal2_2 },
            attested: self.attested,
            backup_eligible: cred.backup_eligible,
            backup_state: cred.backup_state,
            counter: cred.counter,
            user_verified: cred.user_verified,
        })
    }
}

/// What the server stores and shows about a passkey (beside the opaque
/// [`StoredCredential`]), and what assurance it gives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialFacts {
    /// The credential id (unique across all accounts; the store must refuse a
    /// duplicate).
    pub cred_id: Vec<u8>,
    /// The authenticator model, as reported. Trust it only if `attested`.
    pub aaguid: Option<Uuid>,
    /// The level a login with this credential reaches today.
    pub aal: Aal,
    /// The attestation was verified against the AAL3 allow-list's roots.
    pub attested: bool,
    /// The key may be synchronised to other devices (a "synced passkey").
    pub backup_eligible: bool,
    /// The key is currently backed up / synchronised.
    pub backup_state: bool,
    /// The authenticator's signature counter (0 if it keeps none).
    pub counter: u32,
    /// The user was verified (PIN or biometric) in the ceremony that produced
    /// these facts. Always true: we refuse otherwise.
    pub user_verified: bool,
}

/// The RFC 8176 `amr` values for a login with a credential having `facts`.
///
/// - `hwk`: proof of possession of a hardware-secured key — only when that is
///   proven (AAL3: attested by an allow-listed model, not synchronisable);
/// - `swk`: a software-secured key — a synchronisable (backup-eligible)
///   passkey, whose private key lives in a cloud keychain;
/// - `pop`: proof of possession of a key whose protection we cannot tell
///   (unattested, device-bound);
/// - `user`: the authenticator tested user presence;
/// - `mfa`: always, since user verification is required on every login (key
///   possession plus PIN or biometric on the authenticator).
///
/// `pin`/`fpt`/`face` are never emitted: the WebAuthn UV flag does not say
/// which method the authenticator used.
pub fn amr_for(facts: &CredentialFacts) -> Vec<&'static str> {
    let key = if facts.aal >= Aal::Aal3 {
        "hwk"
    } else if facts.backup_eligible {
        "swk"
    } else {
        "pop"
    };
    vec![key, "user", "mfa"]
}

/// The AAGUID in a registration's authenticator data, if any (all zeros means
/// none was given). Read after webauthn-rs has validated the response.
pub(crate) fn reported_aaguid(reg: &RegisterPublicKeyCredential) -> Option<Uuid> {
    let object: BTreeMap<String, serde_cbor_2::Value> =
        serde_cbor_2::from_slice(&reg.response.attestation_object).ok()?;
    let serde_cbor_2::Value::Bytes(auth_data) = object.get("authData")? else {
        return None;
    };
    // rpIdHash(32) flags(1) signCount(4), then attested credential data
    // starting with the AAGUID (16) when flag AT (0x40) is set.
    let flags = *auth_data.get(32)?;
    if flags & 0x40 == 0 {
        return None;
    }
    let aaguid = Uuid::from_slice(auth_data.get(37..53)?).ok()?;
    (!aaguid.is_nil()).then_some(aaguid)
}
