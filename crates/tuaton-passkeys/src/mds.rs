//! FIDO Metadata Service (MDS3) BLOBs: checking who signed one, and reading
//! the entries that may join the AAL3 allow-list.
//!
//! The BLOB is a JWS in compact serialisation (FIDO Metadata Service v3.0,
//! §3.1.7). Verification happens in stages, and only [`verified_payload`]
//! hands out a payload read from a signed BLOB:
//!
//! 1. the header alone: `alg` must be RS256 or ES256, `x5c` must be present;
//! 2. the chain: rustls-webpki builds a path from the first `x5c` certificate
//!    through the others to one of the operator's [`MdsTrustAnchors`], at the
//!    time the caller passes in, and the signing certificate must be issued
//!    for [`FIDO_MDS_SIGNER`];
//! 3. the signature over `header.payload`, with ring and the signing
//!    certificate's key;
//! 4. the payload: `nextUpdate` must not be in the past.
//!
//! Revocation of the chain is not checked: the CRLs named in the FIDO chain
//! would have to be fetched over the network, and this crate does no I/O.

use std::fmt;

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use rustls_pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use serde::Deserialize;
use time::{Date, OffsetDateTime};
use webauthn_rs::prelude::Uuid;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;

use crate::error::MetadataBlobError as E;
use crate::{MetadataBlobError, PasskeyError};

/// The DNS name the FIDO Alliance's BLOB signing certificate is issued for.
///
/// The FIDO root is a public web-PKI root: it also vouches for every TLS
/// certificate its CA sells. Without this check, anyone holding such a
/// certificate for their own domain could sign a BLOB we would accept.
pub const FIDO_MDS_SIGNER: &str = "mds.fidoalliance.org";

/// Bounds the work a hostile header can cause; the FIDO chain has three.
const MAX_CHAIN_LEN: usize = 8;

/// The root certificates an MDS BLOB's signing chain must lead to: the FIDO
/// Alliance's, which the operator downloads once and configures.
#[derive(Clone)]
pub struct MdsTrustAnchors {
    roots: Vec<CertificateDer<'static>>,
}

impl MdsTrustAnchors {
    /// Reads one or more PEM `CERTIFICATE` blocks, or a single DER
    /// certificate (the form in which the root is usually downloaded).
    pub fn parse(bytes: &[u8]) -> Result<Self, PasskeyError> {
        let ders = if bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
            let mut ders = Vec::new();
            for (i, pem) in x509_parser::pem::Pem::iter_from_buffer(bytes).enumerate() {
                let pem = pem.map_err(|e| {
                    PasskeyError::Config(format!("MDS root PEM block #{}: {e}", i + 1))
                })?;
                if pem.label != "CERTIFICATE" {
                    return Err(PasskeyError::Config(format!(
                        "MDS root PEM block #{} is a {:?}, not a CERTIFICATE",
                        i + 1,
                        pem.label
                    )));
                }
                ders.push(pem.contents);
            }
            ders
        } else {
            vec![bytes.to_vec()]
        };
        Self::from_der(ders)
    }

    /// Takes DER certificates.
    pub fn from_der(ders: Vec<Vec<u8>>) -> Result<Self, PasskeyError> {
        if ders.is_empty() {
            return Err(PasskeyError::Config(
                "no MDS root certificate was given".into(),
            ));
        }
        let roots: Vec<CertificateDer<'static>> =
            ders.into_iter().map(CertificateDer::from).collect();
        for (i, root) in roots.iter().enumerate() {
            webpki::anchor_from_trusted_cert(root).map_err(|e| {
                PasskeyError::Config(format!(
                    "MDS root certificate #{} is not a usable X.509 certificate: {e}",
                    i + 1
                ))
            })?;
        }
        Ok(Self { roots })
    }

    /// How many roots are trusted.
    pub fn len(&self) -> usize {
        self.roots.len()
    }

    /// Always false: construction refuses an empty set.
    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }

    fn anchors(&self) -> Result<Vec<TrustAnchor<'_>>, E> {
        self.roots
            .iter()
            .map(|r| {
                webpki::anchor_from_trusted_cert(r)
                    .map_err(|e| E::UntrustedSigner(format!("unusable root: {e:?}")))
            })
            .collect()
    }
}

impl fmt::Debug for MdsTrustAnchors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MdsTrustAnchors")
            .field("roots", &self.roots.len())
            .finish()
    }
}

/// The JWS algorithms a BLOB may be signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Alg {
    Rs256,
    Es256,
}

/// The three parts of a compact JWS, still encoded.
struct Compact<'a> {
    header: &'a str,
    payload: &'a str,
    signature: &'a str,
    /// `header.payload`, the bytes the signature covers.
    signing_input: &'a str,
}

impl<'a> Compact<'a> {
    fn split(text: &'a str) -> Result<Self, E> {
        let text = text.trim();
        let mut parts = text.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(E::Malformed(
                "not a JWS (expected three dot-separated parts)".into(),
            ));
        };
        let signing_input = text
            .get(..header.len() + 1 + payload.len())
            .ok_or_else(|| E::Malformed("not a JWS".into()))?;
        Ok(Self {
            header,
            payload,
            signature,
            signing_input,
        })
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    x5c: Option<Vec<String>>,
    /// RFC 7515 §4.1.11: extensions we do not understand must be refused.
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

fn b64url(part: &str, what: &str) -> Result<Vec<u8>, E> {
    let engine = GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    engine
        .decode(part)
        .map_err(|_| E::Malformed(format!("{what} is not base64url")))
}

/// Checks the BLOB's signature, chain and freshness, then reads its payload.
pub(crate) fn verified_payload(
    text: &str,
    roots: &MdsTrustAnchors,
    now: OffsetDateTime,
) -> Result<Payload, MetadataBlobError> {
    let jws = Compact::split(text)?;
    let header: Header = serde_json::from_slice(&b64url(jws.header, "header")?)
        .map_err(|e| E::Malformed(format!("header is not JWS header JSON: {e}")))?;
    let alg = match header.alg.as_str() {
        "RS256" => Alg::Rs256,
        "ES256" => Alg::Es256,
        other => return Err(E::UnsupportedAlgorithm(other.to_owned())),
    };
    if header.crit.is_some() {
        return Err(E::Malformed(
            "the header has critical extensions (crit), which are not supported".into(),
        ));
    }
    let x5c = header
        .x5c
        .filter(|c| !c.is_empty())
        .ok_or(E::MissingCertificateChain)?;
    if x5c.len() > MAX_CHAIN_LEN {
        return Err(E::Malformed(format!(
            "x5c has {} certificates; at most {MAX_CHAIN_LEN} are accepted",
            x5c.len()
        )));
    }
    // x5c is standard base64 with padding (RFC 7515 §4.1.6), unlike the rest.
    let chain = x5c
        .iter()
        .enumerate()
        .map(|(i, c)| {
            STANDARD
                .decode(c)
                .map(CertificateDer::from)
                .map_err(|_| E::Malformed(format!("x5c[{i}] is not base64")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (leaf, intermediates) = chain.split_first().ok_or(E::MissingCertificateChain)?;

    verify_chain(leaf, intermediates, roots, now)?;
    verify_signature(
        alg,
        leaf,
        jws.signing_input,
        &b64url(jws.signature, "signature")?,
    )?;

    let payload = read_payload(jws.payload)?;
    payload.check_fresh(now)?;
    Ok(payload)
}

/// Reads the payload without checking the signature; freshness is still
/// checked. Only for operators who chose to go without the FIDO root.
pub(crate) fn unverified_payload(
    text: &str,
    now: OffsetDateTime,
) -> Result<Payload, MetadataBlobError> {
    let jws = Compact::split(text)?;
    let payload = read_payload(jws.payload)?;
    payload.check_fresh(now)?;
    Ok(payload)
}

fn verify_chain(
    leaf: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    roots: &MdsTrustAnchors,
    now: OffsetDateTime,
) -> Result<(), E> {
    let ee = webpki::EndEntityCert::try_from(leaf)
        .map_err(|e| E::UntrustedSigner(format!("the signing certificate is unreadable: {e:?}")))?;
    let time = u64::try_from(now.unix_timestamp())
        .map(|s| UnixTime::since_unix_epoch(std::time::Duration::from_secs(s)))
        .map_err(|_| E::UntrustedSigner("the current time is before 1970".into()))?;
    let anchors = roots.anchors()?;
    ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        intermediates,
        time,
        // The FIDO signing certificate is a web-PKI certificate whose
        // extended key usage says serverAuth; one without the extension is
        // fine too, as RFC 5280 §4.2.1.12 allows any use then.
        webpki::KeyUsage::server_auth(),
        // No revocation: see the module documentation.
        None,
        None,
    )
    .map_err(chain_error)?;
    let signer = ServerName::try_from(FIDO_MDS_SIGNER)
        .map_err(|_| E::UntrustedSigner("invalid signer name".into()))?;
    ee.verify_is_valid_for_subject_name(&signer)
        .map_err(|_| E::UntrustedSigner(format!("it is not issued for {FIDO_MDS_SIGNER}")))?;
    Ok(())
}

fn chain_error(e: webpki::Error) -> E {
    let day = |t: UnixTime| {
        i64::try_from(t.as_secs())
            .ok()
            .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
            .map_or_else(|| "?".to_owned(), |d| d.date().to_string())
    };
    E::UntrustedSigner(match e {
        webpki::Error::UnknownIssuer => "it does not chain to a trusted root".to_owned(),
        webpki::Error::CertExpired { not_after, .. } => {
            format!("a certificate in its chain expired on {}", day(not_after))
        }
        webpki::Error::CertNotValidYet { not_before, .. } => {
            format!(
                "a certificate in its chain is valid only from {}",
                day(not_before)
            )
        }
        other => format!("{other:?}"),
    })
}

fn verify_signature(
    alg: Alg,
    leaf: &CertificateDer<'_>,
    signing_input: &str,
    signature: &[u8],
) -> Result<(), E> {
    let (_, cert) = X509Certificate::from_der(leaf)
        .map_err(|_| E::UntrustedSigner("the signing certificate is unreadable".into()))?;
    let spki = cert.public_key();
    let fits = matches!(
        (alg, spki.parsed()),
        (Alg::Rs256, Ok(PublicKey::RSA(_))) | (Alg::Es256, Ok(PublicKey::EC(_)))
    );
    if !fits {
        return Err(E::Malformed(format!(
            "alg {alg:?} does not fit the signing certificate's key type"
        )));
    }
    // JWS ES256 signatures are r || s (RFC 7518 §3.4), not ASN.1.
    let algorithm: &dyn ring::signature::VerificationAlgorithm = match alg {
        Alg::Rs256 => &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        Alg::Es256 => &ring::signature::ECDSA_P256_SHA256_FIXED,
    };
    ring::signature::UnparsedPublicKey::new(algorithm, &spki.subject_public_key.data)
        .verify(signing_input.as_bytes(), signature)
        .map_err(|_| E::BadSignature)
}

fn read_payload(part: &str) -> Result<Payload, E> {
    serde_json::from_slice(&b64url(part, "payload")?)
        .map_err(|e| E::Malformed(format!("payload is not MDS3 JSON: {e}")))
}

/// The BLOB payload (FIDO Metadata Service v3.0, §3.1.6), only the fields we
/// use.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Payload {
    /// The BLOB's serial number. Not used, but required: JSON without it is
    /// not an MDS3 payload.
    #[serde(rename = "no")]
    _serial: u64,
    next_update: String,
    pub(crate) entries: Vec<Entry>,
}

impl Payload {
    fn check_fresh(&self, now: OffsetDateTime) -> Result<(), E> {
        let next_update = date(&self.next_update).ok_or_else(|| {
            E::Malformed(format!(
                "nextUpdate {:?} is not a YYYY-MM-DD date",
                self.next_update
            ))
        })?;
        if now.date() > next_update {
            return Err(E::Stale { next_update });
        }
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Entry {
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

fn date(s: &str) -> Option<Date> {
    Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).ok()
}

/// The AAGUID, description and DER roots of an entry we accept for AAL3.
pub(crate) fn eligible(entry: &Entry, today: Date) -> Option<(Uuid, String, Vec<Vec<u8>>)> {
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
    // The latest report already in effect; on equal dates the later one in
    // the array wins.
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
