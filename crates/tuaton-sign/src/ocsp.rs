//! The OCSP responder's protocol (RFC 6960), without storage: a request is
//! read into questions about certificates of the authorities the responder
//! answers for (matched by the CertID's issuer name and key hashes, SHA-1
//! or SHA-256), the caller looks each up, and the answers are signed
//! through the key backend as a `BasicOCSPResponse`, with the request's
//! nonce (RFC 8954) echoed.
//!
//! A response is signed by a delegated responder (a certificate with the
//! id-kp-OCSPSigning EKU issued by the same authority, carried in the
//! response) or by the authority's own key (RFC 6960 §4.2.2.2).

use der::asn1::{BitString, GeneralizedTime, Null, ObjectIdentifier, OctetString};
use der::{Decode, Encode};
use ring::digest::{SHA1_FOR_LEGACY_USE_ONLY, SHA256, digest};
use time::OffsetDateTime;
use x509_cert::Certificate;
use x509_cert::ext::pkix::CrlReason;
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspGeneralizedTime, OcspRequest, OcspResponse,
    OcspResponseStatus, ResponderId, ResponseData, RevokedInfo, SingleResponse, Version,
};

use crate::signer::{ECDSA_WITH_SHA256, ID_SHA256, algorithm};
use crate::{CmsSigner, SignError};
use tuaton_keys::SignatureFormat;

const ID_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const ID_PKIX_OCSP_NONCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2");

/// The most certificates one request may ask about.
pub const MAX_QUESTIONS: usize = 16;
/// How long a response may be relied on (its `nextUpdate`).
pub const VALIDITY: time::Duration = time::Duration::minutes(15);

/// An authority the responder answers for: its certificate's subject and
/// key, hashed as CertIDs name them.
#[derive(Debug, Clone)]
pub struct Authority {
    name_sha1: Vec<u8>,
    key_sha1: Vec<u8>,
    name_sha256: Vec<u8>,
    key_sha256: Vec<u8>,
}

impl Authority {
    /// The authority whose certificate is `der`.
    pub fn of(der: &[u8]) -> Result<Self, SignError> {
        let cert = Certificate::from_der(der)?;
        let name = cert.tbs_certificate.subject.to_der()?;
        let key = cert
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes()
            .to_vec();
        Ok(Self {
            name_sha1: digest(&SHA1_FOR_LEGACY_USE_ONLY, &name).as_ref().to_vec(),
            key_sha1: digest(&SHA1_FOR_LEGACY_USE_ONLY, &key).as_ref().to_vec(),
            name_sha256: digest(&SHA256, &name).as_ref().to_vec(),
            key_sha256: digest(&SHA256, &key).as_ref().to_vec(),
        })
    }

    fn names(&self, id: &CertId) -> bool {
        let (name, key) = if id.hash_algorithm.oid == ID_SHA1 {
            (&self.name_sha1, &self.key_sha1)
        } else if id.hash_algorithm.oid == ID_SHA256 {
            (&self.name_sha256, &self.key_sha256)
        } else {
            return false;
        };
        id.issuer_name_hash.as_bytes() == name.as_slice()
            && id.issuer_key_hash.as_bytes() == key.as_slice()
    }
}

/// A request read: the authority asked about (an index into the list the
/// responder answers for), the serials, and the nonce.
#[derive(Debug)]
pub struct Questions {
    /// The authority all the certificates asked about were issued by.
    pub authority: usize,
    /// Each certificate's serial, the integer's bytes as the request gives
    /// them, in the request's order.
    pub serials: Vec<Vec<u8>>,
    ids: Vec<CertId>,
    nonce: Option<x509_cert::ext::Extension>,
}

/// What a request gets when it cannot be answered with statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not an OCSP request, or one asking about nothing or too much.
    Malformed,
    /// About an authority this responder does not answer for, or several.
    Unauthorized,
    /// The responder failed.
    InternalError,
}

impl Refusal {
    /// The unsigned OCSP response (RFC 6960 §2.3), DER.
    pub fn response(self) -> Vec<u8> {
        let status = match self {
            Self::Malformed => OcspResponseStatus::MalformedRequest,
            Self::Unauthorized => OcspResponseStatus::Unauthorized,
            Self::InternalError => OcspResponseStatus::InternalError,
        };
        OcspResponse {
            response_status: status,
            response_bytes: None,
        }
        .to_der()
        .unwrap_or_default()
    }
}

/// Reads `request` (DER) against the `authorities` the responder answers
/// for. All its certificates must be of one of them.
pub fn read(request: &[u8], authorities: &[Authority]) -> Result<Questions, Refusal> {
    let request = OcspRequest::from_der(request).map_err(|_| Refusal::Malformed)?;
    let list = &request.tbs_request.request_list;
    if list.is_empty() || list.len() > MAX_QUESTIONS {
        return Err(Refusal::Malformed);
    }
    // RFC 8954: a nonce is an OCTET STRING of 1 to 32 octets; anything
    // else is not echoed into a signed response, but refused.
    let nonce = request
        .tbs_request
        .request_extensions
        .as_ref()
        .and_then(|e| e.iter().find(|e| e.extn_id == ID_PKIX_OCSP_NONCE))
        .cloned();
    if let Some(n) = &nonce {
        let value =
            OctetString::from_der(n.extn_value.as_bytes()).map_err(|_| Refusal::Malformed)?;
        if n.critical || value.as_bytes().is_empty() || value.as_bytes().len() > 32 {
            return Err(Refusal::Malformed);
        }
    }
    let mut authority = None;
    let mut serials = Vec::with_capacity(list.len());
    let mut ids = Vec::with_capacity(list.len());
    for r in list {
        let id = &r.req_cert;
        let Some(found) = authorities.iter().position(|a| a.names(id)) else {
            return Err(Refusal::Unauthorized);
        };
        if authority.is_some_and(|a| a != found) {
            return Err(Refusal::Unauthorized);
        }
        authority = Some(found);
        serials.push(id.serial_number.as_bytes().to_vec());
        ids.push(id.clone());
    }
    Ok(Questions {
        authority: authority.ok_or(Refusal::Malformed)?,
        serials,
        ids,
        nonce,
    })
}

/// A certificate's status as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Issued and not revoked.
    Good,
    /// Revoked at `at`, for `reason` (an RFC 5280 reason name).
    Revoked {
        /// When.
        at: OffsetDateTime,
        /// Why.
        reason: String,
    },
    /// Not a certificate this authority issued.
    Unknown,
}

fn generalized(at: OffsetDateTime) -> Result<OcspGeneralizedTime, SignError> {
    let unix = u64::try_from(at.unix_timestamp())
        .map_err(|_| SignError::Setting("a time before 1970".into()))?;
    Ok(OcspGeneralizedTime(GeneralizedTime::from_unix_duration(
        std::time::Duration::from_secs(unix),
    )?))
}

fn reason(name: &str) -> Option<CrlReason> {
    Some(match name {
        "unspecified" => CrlReason::Unspecified,
        "keyCompromise" => CrlReason::KeyCompromise,
        "cACompromise" => CrlReason::CaCompromise,
        "affiliationChanged" => CrlReason::AffiliationChanged,
        "superseded" => CrlReason::Superseded,
        "cessationOfOperation" => CrlReason::CessationOfOperation,
        "certificateHold" => CrlReason::CertificateHold,
        "privilegeWithdrawn" => CrlReason::PrivilegeWithdrawn,
        _ => return None,
    })
}

/// The signed answer to `questions`, one status per serial in order,
/// signed by `responder` (a delegated responder, whose certificate goes in
/// the response, or the authority itself).
pub fn answer(
    questions: &Questions,
    statuses: &[Status],
    responder: &CmsSigner,
    delegated: bool,
    now: OffsetDateTime,
) -> Result<Vec<u8>, SignError> {
    if statuses.len() != questions.ids.len() {
        return Err(SignError::Setting("one status per question".into()));
    }
    let responder_cert = Certificate::from_der(responder.certificate_der())?;
    let key = responder_cert
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes();
    // RFC 6960 §4.2.1: KeyHash is the SHA-1 of the responder's public key.
    let key_hash = OctetString::new(digest(&SHA1_FOR_LEGACY_USE_ONLY, key).as_ref())?;
    let this_update = generalized(now)?;
    let next_update = generalized(now + VALIDITY)?;
    let responses = questions
        .ids
        .iter()
        .zip(statuses)
        .map(|(id, status)| {
            let cert_status = match status {
                Status::Good => CertStatus::Good(Null),
                Status::Unknown => CertStatus::Unknown(Null),
                Status::Revoked { at, reason: why } => CertStatus::Revoked(RevokedInfo {
                    revocation_time: generalized(*at)?,
                    revocation_reason: reason(why),
                }),
            };
            Ok(SingleResponse {
                cert_id: id.clone(),
                cert_status,
                this_update,
                next_update: Some(next_update),
                single_extensions: None,
            })
        })
        .collect::<Result<Vec<_>, SignError>>()?;
    let tbs = ResponseData {
        version: Version::V1,
        responder_id: ResponderId::ByKey(key_hash),
        produced_at: this_update,
        responses,
        response_extensions: questions.nonce.clone().map(|n| vec![n]),
    };
    let signature = responder.sign(SignatureFormat::Der, &tbs.to_der()?)?;
    let basic = BasicOcspResponse {
        tbs_response_data: tbs,
        signature_algorithm: algorithm(ECDSA_WITH_SHA256),
        signature: BitString::from_bytes(&signature)?,
        certs: delegated.then(|| vec![responder_cert]),
    };
    Ok(OcspResponse::successful(basic)?.to_der()?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use x509_cert::ext::Extension;
    use x509_cert::serial_number::SerialNumber;
    use x509_ocsp::{Request, TbsRequest};

    fn request(nonce: Option<(&[u8], bool)>) -> Vec<u8> {
        let id = CertId {
            hash_algorithm: crate::signer::algorithm(ID_SHA1),
            issuer_name_hash: OctetString::new([1u8; 20]).unwrap(),
            issuer_key_hash: OctetString::new([2u8; 20]).unwrap(),
            serial_number: SerialNumber::new(&[7]).unwrap(),
        };
        OcspRequest {
            tbs_request: TbsRequest {
                version: Version::V1,
                requestor_name: None,
                request_list: vec![Request {
                    req_cert: id,
                    single_request_extensions: None,
                }],
                request_extensions: nonce.map(|(bytes, critical)| {
                    vec![Extension {
                        extn_id: ID_PKIX_OCSP_NONCE,
                        critical,
                        extn_value: OctetString::new(
                            OctetString::new(bytes).unwrap().to_der().unwrap(),
                        )
                        .unwrap(),
                    }]
                }),
            },
            optional_signature: None,
        }
        .to_der()
        .unwrap()
    }

    #[test]
    fn a_nonce_is_one_to_32_octets_and_not_critical() {
        // A fitting nonce reaches the authority check (none here).
        assert_eq!(
            read(&request(Some((&[9; 32], false))), &[]).unwrap_err(),
            Refusal::Unauthorized
        );
        assert_eq!(
            read(&request(None), &[]).unwrap_err(),
            Refusal::Unauthorized
        );
        for bad in [
            Some((&[9u8; 33][..], false)),
            Some((&[][..], false)),
            Some((&[9u8; 16][..], true)),
        ] {
            assert_eq!(read(&request(bad), &[]).unwrap_err(), Refusal::Malformed);
        }
        assert_eq!(read(b"not der", &[]).unwrap_err(), Refusal::Malformed);
    }
}
