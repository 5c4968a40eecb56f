//! Tuaton's certificate authority: the root and issuing CA certificates,
//! the time-stamping (RFC 3161) and OCSP (RFC 6960) responders'
//! certificates, and signer certificates bound to proofed identities.
//!
//! Every certificate is signed through the [`KeyBackend`]: the CA's private
//! key never leaves it, so an HSM can hold it. rcgen builds the
//! certificates; the two extensions it has no type for (authority
//! information access, RFC 5280 §4.2.2.1, and certificate policies,
//! §4.2.1.4) are encoded with RustCrypto's `x509-cert` types, and a
//! critical extended key usage (RFC 3161 §2.3 asks for one) is written
//! through rcgen's custom extensions because rcgen marks its own
//! non-critical. Nothing here is hand-written DER.
//!
//! The profile (docs/signing.md):
//!
//! | certificate | basic constraints | key usage | extended key usage | AIA, CRL DP |
//! |---|---|---|---|---|
//! | root | CA, path length 1, critical | keyCertSign, cRLSign | — | — |
//! | issuing CA | CA, path length 0, critical | keyCertSign, cRLSign | — | yes |
//! | TSA | — | digitalSignature, nonRepudiation | timeStamping, critical | yes |
//! | OCSP responder | — | digitalSignature | OCSPSigning, and `ocsp-nocheck` | AIA |
//! | signer | — | digitalSignature, nonRepudiation | — | yes |
//!
//! Each has subject and authority key identifiers, and certificate policies
//! under [`CaSettings::policy`]; a signer's policy also names the identity
//! level it was proofed at.

mod certs;
mod oids;

pub use certs::{
    Authority, Facts, Issued, Signer, SubjectIds, certified_ial, crl_entry_fits, names, pem,
    serial_hex, subject_ids,
};
pub use const_oid::ObjectIdentifier;
pub use oids::{SemanticsId, ial_policy, semantics_identifier};

use time::Duration;
use tuaton_keys::KeyBackend;
use url::Url;

/// Why a certificate could not be made. No variant carries key material.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// The key backend refused or failed.
    #[error("the key backend: {0}")]
    Key(#[from] tuaton_keys::KeyError),
    /// rcgen could not build or sign the certificate.
    #[error("building the certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    /// An extension's DER could not be encoded.
    #[error("encoding an extension: {0}")]
    Encoding(#[from] der::Error),
    /// A setting does not fit a certificate (a URL, a name).
    #[error("{0}")]
    Setting(String),
}

/// What every certificate of one Tuaton deployment says about its issuer
/// and where relying parties find status and issuer certificates.
#[derive(Debug, Clone)]
pub struct CaSettings {
    /// Country of the CA's and the signers' names (ISO 3166, `TH`).
    pub country: String,
    /// The operating organisation, in the CA's names.
    pub organization: String,
    /// Where the OCSP responder answers (AIA `id-ad-ocsp`).
    pub ocsp_url: Url,
    /// Where CA certificates and CRLs are published: each authority's
    /// certificate at `ca/<name>.crt` under it and its CRL at
    /// `ca/<name>.crl`, named by [`Authority`]'s published name, so the
    /// certificates of an old issuing CA keep pointing at their own issuer
    /// and CRL after a new one took over.
    pub publication_base: Url,
    /// The deployment's certificate policy; signer policies extend it.
    pub policy: ObjectIdentifier,
    /// How long a signer certificate is valid.
    pub signer_validity: Duration,
}

impl CaSettings {
    /// Settings for a development server at `base`: the URLs under it and a
    /// policy arc under the enterprise number RFC 5612 keeps for examples.
    /// Production deployments set their own registered arc.
    pub fn development(base: &Url) -> Result<Self, PkiError> {
        let at = |path: &str| {
            base.join(path)
                .map_err(|e| PkiError::Setting(format!("{path} under {base}: {e}")))
        };
        Ok(Self {
            country: "TH".into(),
            organization: "Tuaton (development)".into(),
            ocsp_url: at("/ocsp")?,
            publication_base: at("/pki/")?,
            policy: oids::DEVELOPMENT_POLICY,
            signer_validity: Duration::days(730),
        })
    }
}

/// Whether `name` can name a published CA certificate or CRL: letters,
/// digits, `-` and `_`, at least one.
pub fn is_published_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl CaSettings {
    fn published(&self, name: &str, extension: &str) -> Result<Url, PkiError> {
        if !is_published_name(name) {
            return Err(PkiError::Setting(format!(
                "{name:?} cannot name a published certificate (letters, digits, - and _ only)"
            )));
        }
        self.publication_base
            .join(&format!("ca/{name}.{extension}"))
            .map_err(|e| PkiError::Setting(format!("{name} under {}: {e}", self.publication_base)))
    }

    /// Where the certificate of the authority published as `name` is.
    pub fn ca_certificate_url(&self, name: &str) -> Result<Url, PkiError> {
        self.published(name, "crt")
    }

    /// Where the CRL of the authority published as `name` is.
    pub fn crl_url(&self, name: &str) -> Result<Url, PkiError> {
        self.published(name, "crl")
    }
}

/// A key in the backend, with the algorithm it signs with.
pub struct BackendKey<'a> {
    /// The backend holding it.
    pub backend: &'a std::sync::Arc<dyn KeyBackend>,
    /// The key.
    pub key: tuaton_keys::KeyRef,
    /// Its algorithm.
    pub alg: tuaton_keys::SignatureAlgorithm,
}
