//! RFC 3161 time stamps: a request in, a response out.
//!
//! The token is a CMS `SignedData` (RFC 5652) over a `TSTInfo`, signed
//! through the key backend with the TSA's key, with the signed attributes
//! content-type, message-digest and ESS signing-certificate-v2 (RFC 5035;
//! RFC 3161 §2.4.2 asks for a signing-certificate attribute). The types
//! come from RustCrypto's `cms` and `x509-tsp`; the response's status and
//! the ESS attribute, which those crates lack, are declared here with
//! `der`'s derive (typed, no DER written by hand).

use std::sync::Arc;

use cms::cert::IssuerAndSerialNumber;
use cms::content_info::ContentInfo;
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{
    BitString, GeneralizedTime, Int, ObjectIdentifier, OctetString, SetOfVec, Utf8StringRef,
};
use der::{Any, Decode, Encode, Sequence, Tag, Tagged};
use ring::digest::{SHA256, digest};
use time::OffsetDateTime;
use tuaton_keys::{KeyBackend, KeyRef, SignatureAlgorithm, SignatureFormat};
use x509_cert::Certificate;
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_tsp::{TimeStampReq, TspVersion, TstInfo};

const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const ID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const ID_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const ID_CT_TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
const ID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const ID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const ID_SIGNING_CERTIFICATE_V2: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");

/// Why a time stamp could not be made at all (a bad request is answered
/// with a rejection instead). No variant carries key material.
#[derive(Debug, thiserror::Error)]
pub enum TspError {
    /// The key backend refused or failed.
    #[error("the key backend: {0}")]
    Key(#[from] tuaton_keys::KeyError),
    /// A structure could not be encoded, or a certificate not read.
    #[error("encoding: {0}")]
    Encoding(#[from] der::Error),
    /// The TSA's settings do not fit (its algorithm, key or certificate).
    #[error("{0}")]
    Setting(String),
}

/// RFC 3161 §2.4.2 `PKIFailureInfo` bits a TSA sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// An algorithm Tuaton does not accept.
    BadAlg = 0,
    /// A request that is not a time-stamp request, or not version 1.
    BadRequest = 2,
    /// A digest whose length does not fit its algorithm.
    BadDataFormat = 5,
    /// A policy other than the TSA's.
    UnacceptedPolicy = 15,
    /// An extension Tuaton does not understand.
    UnacceptedExtension = 16,
}

/// `PKIStatusInfo` (RFC 3161 §2.4.2, from RFC 4210).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct StatusInfo<'a> {
    status: u8,
    #[asn1(optional = "true")]
    status_string: Option<Vec<Utf8StringRef<'a>>>,
    #[asn1(optional = "true")]
    fail_info: Option<BitString>,
}

/// `TimeStampResp` (RFC 3161 §2.4.2).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct TimeStampResp<'a> {
    status: StatusInfo<'a>,
    #[asn1(optional = "true")]
    time_stamp_token: Option<ContentInfo>,
}

/// `ESSCertIDv2` (RFC 5035 §4); the hash algorithm, SHA-256, is the
/// default and so left out.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct EssCertIdV2 {
    cert_hash: OctetString,
    #[asn1(optional = "true")]
    issuer_serial: Option<IssuerSerial>,
}

/// `IssuerSerial` (RFC 5035 §4).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct IssuerSerial {
    issuer: Vec<GeneralName>,
    serial_number: x509_cert::serial_number::SerialNumber,
}

/// `SigningCertificateV2` (RFC 5035 §3).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct SigningCertificateV2 {
    certs: Vec<EssCertIdV2>,
}

/// Tuaton's time-stamping authority: its key in the backend, its
/// certificate and the certificates above it (the root left out), and the
/// policy its tokens are issued under.
pub struct TimeStamper {
    backend: Arc<dyn KeyBackend>,
    key: KeyRef,
    certificate: Certificate,
    certificate_der: Vec<u8>,
    chain: Vec<Certificate>,
    policy: ObjectIdentifier,
}

impl std::fmt::Debug for TimeStamper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimeStamper")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

fn sha256(data: &[u8]) -> Vec<u8> {
    digest(&SHA256, data).as_ref().to_vec()
}

fn algorithm(oid: ObjectIdentifier) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid,
        parameters: None,
    }
}

fn attribute(oid: ObjectIdentifier, value: Any) -> Result<Attribute, TspError> {
    Ok(Attribute {
        oid,
        values: SetOfVec::try_from(vec![value])?,
    })
}

/// A positive random serial of 128 bits: unique without a counter shared
/// between instances (RFC 3161 §2.4.2 asks for uniqueness per TSA).
fn serial() -> Result<Int, TspError> {
    let mut b = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .map_err(|_| TspError::Setting("the system random source failed".into()))?;
    b[0] &= 0x7f;
    b[0] |= 0x01;
    Ok(Int::new(&b)?)
}

impl TimeStamper {
    /// The TSA with `key` (ES256), its certificate and the certificates
    /// between it and the root, all DER.
    pub fn new(
        backend: Arc<dyn KeyBackend>,
        key: KeyRef,
        alg: SignatureAlgorithm,
        certificate_der: &[u8],
        chain_der: &[Vec<u8>],
        policy: ObjectIdentifier,
    ) -> Result<Self, TspError> {
        if alg != SignatureAlgorithm::Es256 {
            return Err(TspError::Setting(format!(
                "the TSA signs with ES256 only, not {}",
                alg.jose_name()
            )));
        }
        let certificate = Certificate::from_der(certificate_der)?;
        let public = backend.public_key(&key)?;
        let spki_bits = certificate
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes();
        if public.raw() != spki_bits {
            return Err(TspError::Setting("the key is not the certificate's".into()));
        }
        let chain = chain_der
            .iter()
            .map(|d| Certificate::from_der(d))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            backend,
            key,
            certificate,
            certificate_der: certificate_der.to_vec(),
            chain,
            policy,
        })
    }

    /// The `TimeStampResp` (DER) to `request` (DER) at `now`: a token, or a
    /// rejection naming what is wrong. `Err` only when Tuaton itself fails
    /// (the key backend), for the caller to answer as a server error.
    pub fn respond(&self, request: &[u8], now: OffsetDateTime) -> Result<Vec<u8>, TspError> {
        let req = match TimeStampReq::from_der(request) {
            Ok(r) => r,
            Err(_) => return rejection(Failure::BadRequest, "not a time-stamp request"),
        };
        if let Some((failure, why)) = self.refusal(&req) {
            return rejection(failure, why);
        }
        let info = TstInfo {
            version: TspVersion::V1,
            policy: self.policy,
            message_imprint: req.message_imprint.clone(),
            serial_number: serial()?,
            gen_time: GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(
                u64::try_from(now.unix_timestamp())
                    .map_err(|_| TspError::Setting("a time before 1970".into()))?,
            ))?,
            accuracy: Some(x509_tsp::Accuracy {
                seconds: Some(1),
                millis: None,
                micros: None,
            }),
            ordering: false,
            nonce: req.nonce.clone(),
            tsa: None,
            extensions: None,
        };
        let token = self.token(&info.to_der()?, req.cert_req)?;
        let resp = TimeStampResp {
            status: StatusInfo {
                status: 0,
                status_string: None,
                fail_info: None,
            },
            time_stamp_token: Some(token),
        };
        Ok(resp.to_der()?)
    }

    /// What RFC 3161 §2.4.2 has a TSA refuse in `req`.
    fn refusal(&self, req: &TimeStampReq) -> Option<(Failure, &'static str)> {
        let imprint = &req.message_imprint;
        let expected = match imprint.hash_algorithm.oid {
            ID_SHA256 => 32,
            ID_SHA384 => 48,
            ID_SHA512 => 64,
            _ => {
                return Some((
                    Failure::BadAlg,
                    "the digest must be SHA-256, SHA-384 or SHA-512",
                ));
            }
        };
        let params_ok = imprint
            .hash_algorithm
            .parameters
            .as_ref()
            .is_none_or(|p| p.tag() == Tag::Null);
        if !params_ok {
            return Some((Failure::BadAlg, "the digest algorithm has parameters"));
        }
        if imprint.hashed_message.as_bytes().len() != expected {
            return Some((
                Failure::BadDataFormat,
                "the digest's length does not fit its algorithm",
            ));
        }
        if req.req_policy.is_some_and(|p| p != self.policy) {
            return Some((
                Failure::UnacceptedPolicy,
                "Tuaton's TSA issues under its own policy only",
            ));
        }
        if req.extensions.as_ref().is_some_and(|e| !e.is_empty()) {
            return Some((
                Failure::UnacceptedExtension,
                "no request extension is supported",
            ));
        }
        None
    }

    /// The `SignedData` over `content` (a DER `TSTInfo`), in its `ContentInfo`.
    fn token(&self, content: &[u8], with_certificates: bool) -> Result<ContentInfo, TspError> {
        let tbs = &self.certificate.tbs_certificate;
        let ess = SigningCertificateV2 {
            certs: vec![EssCertIdV2 {
                cert_hash: OctetString::new(sha256(&self.certificate_der))?,
                issuer_serial: Some(IssuerSerial {
                    issuer: vec![GeneralName::DirectoryName(tbs.issuer.clone())],
                    serial_number: tbs.serial_number.clone(),
                }),
            }],
        };
        let signed_attrs = SetOfVec::try_from(vec![
            attribute(ID_CONTENT_TYPE, Any::encode_from(&ID_CT_TST_INFO)?)?,
            attribute(
                ID_MESSAGE_DIGEST,
                Any::encode_from(&OctetString::new(sha256(content))?)?,
            )?,
            attribute(ID_SIGNING_CERTIFICATE_V2, Any::encode_from(&ess)?)?,
        ])?;
        // RFC 5652 §5.4: the signature covers the attributes' DER as a SET OF.
        let signature = self.backend.sign(
            &self.key,
            SignatureAlgorithm::Es256,
            SignatureFormat::Der,
            &signed_attrs.to_der()?,
        )?;
        let signer = SignerInfo {
            version: cms::content_info::CmsVersion::V1,
            sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
                issuer: tbs.issuer.clone(),
                serial_number: tbs.serial_number.clone(),
            }),
            digest_alg: algorithm(ID_SHA256),
            signed_attrs: Some(signed_attrs),
            signature_algorithm: algorithm(ECDSA_WITH_SHA256),
            signature: OctetString::new(signature)?,
            unsigned_attrs: None,
        };
        let certificates = if with_certificates {
            let all = std::iter::once(&self.certificate)
                .chain(&self.chain)
                .cloned()
                .map(cms::cert::CertificateChoices::Certificate)
                .collect::<Vec<_>>();
            Some(CertificateSet::try_from(all)?)
        } else {
            None
        };
        let signed = SignedData {
            // Version 3: the content is not id-data (RFC 5652 §5.1).
            version: cms::content_info::CmsVersion::V3,
            digest_algorithms: SetOfVec::try_from(vec![algorithm(ID_SHA256)])?,
            encap_content_info: EncapsulatedContentInfo {
                econtent_type: ID_CT_TST_INFO,
                econtent: Some(Any::new(Tag::OctetString, content)?),
            },
            certificates,
            crls: None,
            signer_infos: SignerInfos::try_from(vec![signer])?,
        };
        Ok(ContentInfo {
            content_type: ID_SIGNED_DATA,
            content: Any::encode_from(&signed)?,
        })
    }
}

/// A rejection (status 2) with `failure`'s bit and a sentence.
fn rejection(failure: Failure, why: &'static str) -> Result<Vec<u8>, TspError> {
    let bit = failure as usize;
    let mut bytes = vec![0u8; bit / 8 + 1];
    bytes[bit / 8] |= 0x80 >> (bit % 8);
    // DER: a named-bit list ends at its last set bit.
    let unused = u8::try_from(7 - bit % 8).unwrap_or(0);
    let resp = TimeStampResp {
        status: StatusInfo {
            status: 2,
            status_string: Some(vec![Utf8StringRef::new(why)?]),
            fail_info: Some(BitString::new(unused, bytes)?),
        },
        time_stamp_token: None,
    };
    Ok(resp.to_der()?)
}
