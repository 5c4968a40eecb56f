//! One CMS signer (RFC 5652) for every format Tuaton makes: a key in the
//! backend, its certificate and the certificates above it. A `SignerInfo`
//! always carries content-type, message-digest and ESS
//! signing-certificate-v2 (RFC 5035) as signed attributes, which RFC 3161
//! asks of a time stamp and ETSI's CAdES and PAdES baselines of a
//! signature; a format adds what it needs beside them.

use std::sync::Arc;

use cms::cert::IssuerAndSerialNumber;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{ObjectIdentifier, OctetString, SetOfVec};
use der::{Any, Decode, Encode, Sequence};
use ring::digest::{SHA256, digest};
use tuaton_keys::{KeyBackend, KeyRef, SignatureAlgorithm, SignatureFormat};
use x509_cert::Certificate;
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::spki::AlgorithmIdentifierOwned;

use crate::SignError;

pub(crate) const ID_SHA256: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
pub(crate) const ECDSA_WITH_SHA256: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
pub(crate) const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
pub(crate) const ID_SIGNED_DATA: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
pub(crate) const ID_CONTENT_TYPE: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
pub(crate) const ID_MESSAGE_DIGEST: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const ID_SIGNING_CERTIFICATE_V2: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");

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

pub(crate) fn sha256(data: &[u8]) -> Vec<u8> {
    digest(&SHA256, data).as_ref().to_vec()
}

pub(crate) fn algorithm(oid: ObjectIdentifier) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid,
        parameters: None,
    }
}

pub(crate) fn attribute(oid: ObjectIdentifier, value: Any) -> Result<Attribute, SignError> {
    Ok(Attribute {
        oid,
        values: SetOfVec::try_from(vec![value])?,
    })
}

/// A key in the backend with its certificate and the certificates between
/// it and the root (the root left out: relying parties hold it).
pub struct CmsSigner {
    backend: Arc<dyn KeyBackend>,
    key: KeyRef,
    certificate: Certificate,
    certificate_der: Vec<u8>,
    chain: Vec<Certificate>,
}

impl std::fmt::Debug for CmsSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CmsSigner")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl CmsSigner {
    /// The signer with `key` (ES256), its certificate and the chain above
    /// it, all DER. A certificate for another key is refused.
    pub fn new(
        backend: Arc<dyn KeyBackend>,
        key: KeyRef,
        alg: SignatureAlgorithm,
        certificate_der: &[u8],
        chain_der: &[Vec<u8>],
    ) -> Result<Self, SignError> {
        if alg != SignatureAlgorithm::Es256 {
            return Err(SignError::Setting(format!(
                "CMS signatures are made with ES256 only, not {}",
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
            return Err(SignError::Setting(
                "the key is not the certificate's".into(),
            ));
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
        })
    }

    /// The signer's certificate, DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate_der
    }

    /// The signer certificate's issuer and serial as an RFC 5035
    /// `IssuerSerial`, DER (XAdES's `IssuerSerialV2`).
    pub(crate) fn issuer_serial_der(&self) -> Result<Vec<u8>, SignError> {
        Ok(self.issuer_serial().to_der()?)
    }

    /// The certificates above the signer's, DER, nearest first.
    pub(crate) fn chain_der(&self) -> Result<Vec<Vec<u8>>, SignError> {
        Ok(self
            .chain
            .iter()
            .map(|c| c.to_der())
            .collect::<Result<Vec<_>, _>>()?)
    }

    /// An ES256 signature over `input`, made by the backend: DER (CMS,
    /// OCSP) or `r || s` (JWS, RFC 7518 §3.4; XMLDSig 1.1 §6.4.3).
    pub(crate) fn sign(&self, format: SignatureFormat, input: &[u8]) -> Result<Vec<u8>, SignError> {
        Ok(self
            .backend
            .sign(&self.key, SignatureAlgorithm::Es256, format, input)?)
    }

    /// The signer certificate's issuer and serial, as RFC 5035 names them.
    fn issuer_serial(&self) -> IssuerSerial {
        let tbs = &self.certificate.tbs_certificate;
        IssuerSerial {
            issuer: vec![GeneralName::DirectoryName(tbs.issuer.clone())],
            serial_number: tbs.serial_number.clone(),
        }
    }

    /// A `SignerInfo` over content of `content_type` whose SHA-256 is
    /// `content_digest`, with `extra` signed attributes beside the three
    /// every Tuaton signature has; the signature is made by the backend.
    pub(crate) fn signer_info(
        &self,
        content_type: ObjectIdentifier,
        content_digest: &[u8],
        extra: Vec<Attribute>,
    ) -> Result<SignerInfo, SignError> {
        let tbs = &self.certificate.tbs_certificate;
        let ess = SigningCertificateV2 {
            certs: vec![EssCertIdV2 {
                cert_hash: OctetString::new(sha256(&self.certificate_der))?,
                issuer_serial: Some(self.issuer_serial()),
            }],
        };
        let mut attrs = vec![
            attribute(ID_CONTENT_TYPE, Any::encode_from(&content_type)?)?,
            attribute(
                ID_MESSAGE_DIGEST,
                Any::encode_from(&OctetString::new(content_digest)?)?,
            )?,
            attribute(ID_SIGNING_CERTIFICATE_V2, Any::encode_from(&ess)?)?,
        ];
        attrs.extend(extra);
        let signed_attrs = SetOfVec::try_from(attrs)?;
        // RFC 5652 §5.4: the signature covers the attributes' DER as a SET OF.
        let signature = self.sign(SignatureFormat::Der, &signed_attrs.to_der()?)?;
        Ok(SignerInfo {
            version: CmsVersion::V1,
            sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
                issuer: tbs.issuer.clone(),
                serial_number: tbs.serial_number.clone(),
            }),
            digest_alg: algorithm(ID_SHA256),
            signed_attrs: Some(signed_attrs),
            signature_algorithm: algorithm(ECDSA_WITH_SHA256),
            signature: OctetString::new(signature)?,
            unsigned_attrs: None,
        })
    }

    /// The `SignedData` with `signer`, in its `ContentInfo`: the content
    /// encapsulated when `content` is given, detached otherwise, and the
    /// signer's certificate and chain when `with_certificates`.
    pub(crate) fn signed_data(
        &self,
        content_type: ObjectIdentifier,
        content: Option<Any>,
        signer: SignerInfo,
        with_certificates: bool,
    ) -> Result<ContentInfo, SignError> {
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
            // RFC 5652 §5.1: version 3 when the content is not id-data.
            version: if content_type == ID_DATA {
                CmsVersion::V1
            } else {
                CmsVersion::V3
            },
            digest_algorithms: SetOfVec::try_from(vec![algorithm(ID_SHA256)])?,
            encap_content_info: EncapsulatedContentInfo {
                econtent_type: content_type,
                econtent: content,
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
