//! The operator's AAL3 allow-list: which authenticator models (AAGUIDs),
//! attested by which manufacturer roots, count as hardware authenticators.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use webauthn_rs::prelude::{AttestationCaList, AttestationCaListBuilder, Uuid};

use crate::PasskeyError;
use crate::mds::{self, MdsTrustAnchors};

/// Authenticators allowed to reach AAL3: each AAGUID with the attestation
/// root certificates its attestation must chain to.
///
/// An authenticator is accepted only if its attestation statement verifies,
/// chains to one of the roots listed *for its AAGUID*, and its key is not
/// synchronisable (backup-eligible).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Aal3Policy {
    cas: AttestationCaList,
    aaguids: BTreeMap<Uuid, String>,
}

impl Aal3Policy {
    /// No authenticator reaches AAL3.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Allows `aaguid` when attested by one of `roots` (each DER or PEM).
    pub fn allow(self, aaguid: Uuid, roots: Vec<Vec<u8>>) -> Result<Self, PasskeyError> {
        self.allow_described(aaguid, &aaguid.to_string(), roots)
    }

    /// Like [`Self::allow`], with a human description of the model (shown to
    /// operators; webauthn-rs keeps it with the CA).
    pub fn allow_described(
        mut self,
        aaguid: Uuid,
        description: &str,
        roots: Vec<Vec<u8>>,
    ) -> Result<Self, PasskeyError> {
        if roots.is_empty() {
            return Err(PasskeyError::Config(format!(
                "AAGUID {aaguid} has no attestation root certificate"
            )));
        }
        let mut builder = AttestationCaListBuilder::new();
        for (i, root) in roots.iter().enumerate() {
            let inserted = if root.trim_ascii_start().starts_with(b"-----BEGIN") {
                builder.insert_device_pem(root, aaguid, description.to_owned(), BTreeMap::new())
            } else {
                builder.insert_device_der(root, aaguid, description.to_owned(), BTreeMap::new())
            };
            inserted.map_err(|_| {
                PasskeyError::Config(format!(
                    "attestation root certificate #{} for AAGUID {aaguid} is not a valid X.509 certificate",
                    i + 1
                ))
            })?;
        }
        self.cas.union(&builder.build());
        self.aaguids.insert(aaguid, description.to_owned());
        Ok(self)
    }

    /// Everything allowed by `self` or by `other` (e.g. a manual list plus an
    /// MDS import).
    pub fn union(mut self, other: &Aal3Policy) -> Self {
        self.cas.union(&other.cas);
        for (k, v) in &other.aaguids {
            self.aaguids.entry(*k).or_insert_with(|| v.clone());
        }
        self
    }

    /// True if no authenticator can reach AAL3.
    pub fn is_empty(&self) -> bool {
        self.aaguids.is_empty()
    }

    /// How many authenticator models are allowed.
    pub fn len(&self) -> usize {
        self.aaguids.len()
    }

    /// Whether `aaguid` is on the list (attestation is checked separately, at
    /// registration).
    pub fn allows(&self, aaguid: &Uuid) -> bool {
        self.aaguids.contains_key(aaguid)
    }

    /// The allowed AAGUIDs with their descriptions.
    pub fn aaguids(&self) -> impl Iterator<Item = (&Uuid, &str)> {
        self.aaguids.iter().map(|(k, v)| (k, v.as_str()))
    }

    pub(crate) fn ca_list(&self) -> &AttestationCaList {
        &self.cas
    }

    /// Imports a FIDO Metadata Service (MDS3) BLOB the operator downloaded,
    /// after checking that it is signed by a certificate chaining to one of
    /// `roots` (valid at `now`) and that its `nextUpdate` is not before `now`.
    ///
    /// Takes every entry that has an AAGUID and attestation roots, whose
    /// latest effective status report is a FIDO certification (L1 or higher),
    /// that has never been reported revoked or compromised, and whose key
    /// protection is hardware or a secure element and not software.
    pub fn from_fido_mds_blob(
        jwt_text: &str,
        roots: &MdsTrustAnchors,
        now: OffsetDateTime,
    ) -> Result<Self, PasskeyError> {
        let payload = mds::verified_payload(jwt_text, roots, now)?;
        Ok(Self::from_mds_entries(&payload.entries, now))
    }

    /// Like [`Self::from_fido_mds_blob`] but **without checking the
    /// signature**: anyone who can change the file can add an authenticator
    /// model to AAL3. Only for an operator who cannot obtain the FIDO root
    /// and vouches for the file by other means. Staleness is still checked.
    pub fn danger_from_unverified_fido_mds_blob(
        jwt_text: &str,
        now: OffsetDateTime,
    ) -> Result<Self, PasskeyError> {
        let payload = mds::unverified_payload(jwt_text, now)?;
        Ok(Self::from_mds_entries(&payload.entries, now))
    }

    fn from_mds_entries(entries: &[mds::Entry], now: OffsetDateTime) -> Self {
        let mut policy = Self::empty();
        for entry in entries {
            if let Some((aaguid, description, roots)) = mds::eligible(entry, now.date()) {
                // One malformed root in one entry must not block the rest.
                if let Ok(p) = policy.clone().allow_described(aaguid, &description, roots) {
                    policy = p;
                }
            }
        }
        policy
    }
}
