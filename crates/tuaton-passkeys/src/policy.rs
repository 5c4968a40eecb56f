//! The operator's AAL3 allow-list: which authenticator models (AAGUIDs),
//! attested by which manufacturer roots, count as hardware authenticators.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};
use webauthn_rs::prelude::{AttestationCaList, AttestationCaListBuilder, Uuid};

use crate::PasskeyError;

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

    /// Imports a FIDO Metadata Service (MDS3) BLOB the operator downloaded.
    ///
    /// Takes every entry that has an AAGUID and attestation roots, whose
    /// latest effective status report is a FIDO certification (L1 or higher),
    /// that has never been reported revoked or compromised, and whose key
    /// protection is hardware or a secure element and not software.
    ///
    /// The BLOB's JWS signature is **not** verified here: the operator must
    /// fetch it over TLS from the FIDO Alliance (or verify it with their own
    /// tooling) before importing. A BLOB whose `nextUpdate` is before `now` is
    /// refused as stale.
    pub fn from_fido_mds_blob(jwt_text: &str, now: OffsetDateTime) -> Result<Self, PasskeyError> {
        let payload = mds::payload(jwt_text)?;
        let next_update = mds::date(&payload.next_update)
            .ok_or_else(|| PasskeyError::MetadataBlob("nextUpdate is not a date".into()))?;
        if now.date() > next_update {
            return Err(PasskeyError::MetadataBlob(format!(
                "stale: nextUpdate was {next_update}; download a fresh BLOB"
            )));
        }
        let mut policy = Self::empty();
        for entry in &payload.entries {
            if let Some((aaguid, description, roots)) = mds::eligible(entry, now.date()) {
                // One malformed root in one entry must not block the rest.
                if let Ok(p) = policy.clone().allow_described(aaguid, &description, roots) {
                    policy = p;
                }
            }
        }
        Ok(policy)
    }
}

/// FIDO MDS3 BLOB format (FIDO Metadata Service v3.0, §3.1) — only the fields
/// we use.
mod mds {
    use super::*;

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct Payload {
        pub next_update: String,
        #[serde(default)]
        pub entries: Vec<Entry>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct Entry {
        aaguid: Option<String>,
        metadata_statement: Option<Statement>,
        #[serde(default)]
        status_reports: Vec<StatusReport>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Statement {
        aaguid: Option<String>,
        description: Option<String>,
        #[serde(default)]
        key_protection: Vec<String>,
        #[serde(default)]
        attestation_root_certificates: Vec<String>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct StatusReport {
        status: String,
        effective_date: Option<String>,
    }

    const CERTIFIED: &[&str] = &[
        "FIDO_CERTIFIED",
        "FIDO_CERTIFIED_L1",
        "FIDO_CERTIFIED_L1plus",
        "FIDO_CERTIFIED_L2",
        "FIDO_CERTIFIED_L2plus",
        "FIDO_CERTIFIED_L3",
        "FIDO_CERTIFIED_L3plus",
    ];

    /// Once reported, these disqualify the model for good: an AAGUID names a
    /// model, not a firmware version, so we cannot tell fixed units apart.
    const DISQUALIFYING: &[&str] = &[
        "REVOKED",
        "ATTESTATION_KEY_COMPROMISE",
        "USER_VERIFICATION_BYPASS",
        "USER_KEY_REMOTE_COMPROMISE",
        "USER_KEY_PHYSICAL_COMPROMISE",
    ];

    pub(super) fn payload(jwt_text: &str) -> Result<Payload, PasskeyError> {
        let mut parts = jwt_text.trim().split('.');
        let (Some(_header), Some(body), Some(_sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(PasskeyError::MetadataBlob(
                "not a JWT (expected three dot-separated parts)".into(),
            ));
        };
        let b64url = GeneralPurpose::new(
            &base64::alphabet::URL_SAFE,
            GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
        );
        let bytes = b64url
            .decode(body)
            .map_err(|_| PasskeyError::MetadataBlob("payload is not base64url".into()))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| PasskeyError::MetadataBlob(format!("payload is not MDS3 JSON: {e}")))
    }

    pub(super) fn date(s: &str) -> Option<Date> {
        Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).ok()
    }

    /// The AAGUID, description and DER roots of an entry we accept for AAL3.
    pub(super) fn eligible(entry: &Entry, today: Date) -> Option<(Uuid, String, Vec<Vec<u8>>)> {
        let statement = entry.metadata_statement.as_ref()?;
        let aaguid = entry.aaguid.as_ref().or(statement.aaguid.as_ref())?;
        let aaguid = Uuid::parse_str(aaguid).ok()?;

        if entry
            .status_reports
            .iter()
            .any(|r| DISQUALIFYING.contains(&r.status.as_str()))
        {
            return None;
        }
        // The latest report already in effect; on equal dates the later one
        // in the array wins.
        let latest = entry
            .status_reports
            .iter()
            .filter_map(|r| {
                let d = r.effective_date.as_deref().map_or(Some(Date::MIN), date)?;
                (d <= today).then_some((d, r))
            })
            .max_by_key(|(d, _)| *d)?;
        if !CERTIFIED.contains(&latest.1.status.as_str()) {
            return None;
        }

        let kp = &statement.key_protection;
        let hardware = kp.iter().any(|k| k == "hardware" || k == "secure_element");
        if !hardware || kp.iter().any(|k| k == "software") {
            return None;
        }

        let roots: Vec<Vec<u8>> = statement
            .attestation_root_certificates
            .iter()
            .filter_map(|c| STANDARD.decode(c.trim()).ok())
            .collect();
        if roots.is_empty() {
            return None;
        }
        let description = statement
            .description
            .clone()
            .unwrap_or_else(|| aaguid.to_string());
        Some((aaguid, description, roots))
    }
}
