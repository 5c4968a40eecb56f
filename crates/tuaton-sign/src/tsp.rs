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

use cms::content_info::ContentInfo;
use der::asn1::{BitString, GeneralizedTime, Int, ObjectIdentifier, OctetString, Utf8StringRef};
use der::{Any, Decode, Encode, Sequence, Tag, Tagged};
use time::OffsetDateTime;
use tuaton_keys::{KeyBackend, KeyRef, SignatureAlgorithm};
use x509_tsp::{MessageImprint, TimeStampReq, TspVersion, TstInfo};

use crate::SignError;
use crate::signer::{CmsSigner, ID_SHA256, algorithm, sha256};
use crate::verify::{ID_SHA384, ID_SHA512};

pub(crate) const ID_CT_TST_INFO: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");

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

/// Tuaton's time-stamping authority: its key in the backend, its
/// certificate and the certificates above it (the root left out), and the
/// policy its tokens are issued under.
pub struct TimeStamper {
    signer: CmsSigner,
    policy: ObjectIdentifier,
}

impl std::fmt::Debug for TimeStamper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimeStamper")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// A positive random integer of `N` bytes, its top octet never zero (so
/// it encodes in exactly `N`).
fn random_int<const N: usize>() -> Result<Int, SignError> {
    let mut b = [0u8; N];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .map_err(|_| SignError::Setting("the system random source failed".into()))?;
    b[0] &= 0x7f;
    b[0] |= 0x01;
    Ok(Int::new(&b)?)
}

/// A positive random serial of 128 bits: unique without a counter shared
/// between instances (RFC 3161 §2.4.2 asks for uniqueness per TSA).
fn serial() -> Result<Int, SignError> {
    random_int::<16>()
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
    ) -> Result<Self, SignError> {
        Ok(Self {
            signer: CmsSigner::new(backend, key, alg, certificate_der, chain_der)?,
            policy,
        })
    }

    /// The `TimeStampResp` (DER) to `request` (DER) at `now`: a token, or a
    /// rejection naming what is wrong. `Err` only when Tuaton itself fails
    /// (the key backend), for the caller to answer as a server error.
    pub fn respond(&self, request: &[u8], now: OffsetDateTime) -> Result<Vec<u8>, SignError> {
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
                    .map_err(|_| SignError::Setting("a time before 1970".into()))?,
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
    fn token(&self, content: &[u8], with_certificates: bool) -> Result<ContentInfo, SignError> {
        let info = self
            .signer
            .signer_info(ID_CT_TST_INFO, &sha256(content), Vec::new())?;
        self.signer.signed_data(
            ID_CT_TST_INFO,
            Some(Any::new(Tag::OctetString, content)?),
            info,
            with_certificates,
        )
    }
}

/// A rejection (status 2) with `failure`'s bit and a sentence.
fn rejection(failure: Failure, why: &'static str) -> Result<Vec<u8>, SignError> {
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

/// Where a signature's time stamp comes from: Tuaton's own TSA, or an
/// external one over HTTP. Takes a DER `TimeStampReq`, gives the DER
/// `TimeStampResp`. Blocking, as the key backend is.
pub trait TimeStampSource: Send + Sync {
    /// The TSA's response to `request`.
    fn time_stamp(&self, request: &[u8]) -> Result<Vec<u8>, SignError>;

    /// The certificate (DER) whose key must have signed the TSA's tokens,
    /// when the operator named one; `None` leaves the signature to
    /// whoever validates it.
    fn signer_certificate(&self) -> Option<&[u8]> {
        None
    }
}

impl TimeStampSource for TimeStamper {
    fn time_stamp(&self, request: &[u8]) -> Result<Vec<u8>, SignError> {
        self.respond(request, OffsetDateTime::now_utc())
    }
}

/// The encapsulated content of the SignedData `content` and its last
/// field (the signer infos), the rest read only as far as its framing: the
/// certificates are the validator's to judge, and TSAs in service send
/// certificate sets that strict DER decoding refuses (a certificate twice,
/// or out of DER order), which must not cost the signer their time stamp.
fn encapsulated_content(
    content: &Any,
) -> der::Result<(cms::signed_data::EncapsulatedContentInfo, Any)> {
    use der::Reader as _;
    let bytes = content.to_der()?;
    let mut reader = der::SliceReader::new(&bytes)?;
    let parts = reader.sequence(|r| {
        let _version = Any::decode(r)?;
        let _digest_algorithms = Any::decode(r)?;
        let encap = cms::signed_data::EncapsulatedContentInfo::decode(r)?;
        let mut last = Any::decode(r)?;
        while !r.is_finished() {
            last = Any::decode(r)?;
        }
        Ok((encap, last))
    })?;
    reader.finish(parts)
}

/// Whether the token's one signer, whose signer infos are `signer_infos`,
/// signed the TSTInfo `econtent` with the key of `certificate` (DER)
/// ([`crate::verify::signed_by`]).
fn signed_by(signer_infos: &Any, econtent: &[u8], certificate: &[u8]) -> Result<(), &'static str> {
    let infos = cms::signed_data::SignerInfos::from_der(
        &signer_infos
            .to_der()
            .map_err(|_| "the token's signer infos")?,
    )
    .map_err(|_| "the token's signer infos are malformed")?;
    let [info] = infos.0.as_slice() else {
        return Err("the token has not exactly one signer");
    };
    let cert = x509_cert::Certificate::from_der(certificate)
        .map_err(|_| "the configured TSA certificate is not a certificate")?;
    crate::verify::signed_by(
        info,
        ID_CT_TST_INFO,
        &|algorithm| ring::digest::digest(algorithm, econtent),
        &cert,
    )
    .map_err(|why| match why {
        crate::verify::NOT_THIS_KEY => {
            "the token is not signed by the configured TSA certificate's key"
        }
        other => other,
    })
}

/// A TSA certificate as an operator gives it (PEM or DER), as DER.
pub fn certificate_der(bytes: &[u8]) -> Result<Vec<u8>, SignError> {
    use der::DecodePem as _;
    let cert = if bytes.starts_with(b"-----BEGIN") {
        x509_cert::Certificate::from_pem(bytes)
    } else {
        x509_cert::Certificate::from_der(bytes)
    }
    .map_err(|_| SignError::Document("not a certificate, in PEM or DER".into()))?;
    Ok(cert.to_der()?)
}

/// How far a time stamp's time may be from Tuaton's clock, in seconds.
const MAX_CLOCK_SKEW_SECS: f64 = 300.0;

/// A random 64-bit nonce, positive.
fn nonce() -> Result<Int, SignError> {
    random_int::<8>()
}

/// Asks `source` for a time stamp over `data` (its SHA-256), with a fresh
/// nonce and the TSA's certificate requested, and returns the token (a DER
/// `ContentInfo`) once the response is checked: granted, over exactly this
/// digest, with this nonce, at a time near now, and, when the source names
/// its signer's certificate, signed with that certificate's key. Beyond
/// that, the TSA's signature is judged by whoever validates the signature
/// carrying the token, against their own trust anchors.
pub fn time_stamp_token(source: &dyn TimeStampSource, data: &[u8]) -> Result<Vec<u8>, SignError> {
    let imprint = MessageImprint {
        hash_algorithm: algorithm(ID_SHA256),
        hashed_message: OctetString::new(sha256(data))?,
    };
    let nonce = nonce()?;
    let request = TimeStampReq {
        version: TspVersion::V1,
        message_imprint: imprint.clone(),
        req_policy: None,
        nonce: Some(nonce.clone()),
        cert_req: true,
        extensions: None,
    };
    let reply = source.time_stamp(&request.to_der()?)?;
    let refused = |why: &str| SignError::TimeStamp(why.to_owned());
    let resp = TimeStampResp::from_der(&reply).map_err(|_| refused("not a time-stamp response"))?;
    // 0 granted, 1 granted with modifications (RFC 3161 §2.4.2).
    if resp.status.status > 1 {
        let why = resp
            .status
            .status_string
            .as_ref()
            .and_then(|s| s.first())
            .map(|s| s.as_str().to_owned())
            .unwrap_or_else(|| "no reason given".into());
        return Err(SignError::TimeStamp(format!("refused: {why}")));
    }
    let token = resp
        .time_stamp_token
        .ok_or_else(|| refused("granted without a token"))?;
    let (encap, signer_infos) = encapsulated_content(&token.content)
        .map_err(|_| refused("the token is not a SignedData"))?;
    if encap.econtent_type != ID_CT_TST_INFO {
        return Err(refused("the token does not hold a TSTInfo"));
    }
    let info = encap
        .econtent
        .as_ref()
        .ok_or_else(|| refused("the token's TSTInfo is missing"))
        .and_then(|c| {
            TstInfo::from_der(c.value()).map_err(|_| refused("the token's TSTInfo is malformed"))
        })?;
    if info.message_imprint != imprint {
        return Err(refused("the token is over another digest"));
    }
    if info.nonce.as_ref() != Some(&nonce) {
        return Err(refused("the token answers another request (nonce)"));
    }
    if let (Some(certificate), Some(content)) = (source.signer_certificate(), &encap.econtent) {
        signed_by(&signer_infos, content.value(), certificate).map_err(refused)?;
    }
    // A token must say the time it was asked at: one off by more than the
    // skew two honest clocks may have is refused.
    let said = info.gen_time.to_unix_duration().as_secs_f64();
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as f64;
    if (said - now).abs() > MAX_CLOCK_SKEW_SECS {
        return Err(refused("the token's time is not now"));
    }
    Ok(token.to_der()?)
}
