//! Checking one CMS signer (RFC 5652 §5.4 and §5.6): its signed
//! attributes name the content type expected and carry the content's
//! digest, and its signature over them verifies with a certificate's key.
//! The time-stamp client checks an external TSA's tokens with it
//! ([`crate::tsp`]), and [`crate::pades::signatures`] the signatures a PDF
//! carries. Whether the certificate is one to trust is the caller's to say.

use cms::signed_data::SignerInfo;
use der::Encode;
use der::asn1::{ObjectIdentifier, OctetString};
use ring::digest::{Algorithm, Digest};
use ring::signature as sig;
use x509_cert::Certificate;

use crate::signer::{ID_CONTENT_TYPE, ID_MESSAGE_DIGEST, ID_SHA256};

pub(crate) const ID_SHA384: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
pub(crate) const ID_SHA512: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");

/// What [`signed_by`] says when all but the signature itself is right.
pub(crate) const NOT_THIS_KEY: &str = "the signature does not verify with the certificate's key";

/// Whether `info` signed content of type `content_type` whose digest, by
/// the algorithm `info` names, `digest_of` gives, with the key of
/// `certificate`: ECDSA P-256 with SHA-256, P-384 with SHA-384, or RSA
/// PKCS #1 v1.5 with SHA-256, -384 or -512. The error says which part
/// failed, without the bytes.
pub(crate) fn signed_by(
    info: &SignerInfo,
    content_type: ObjectIdentifier,
    digest_of: &dyn Fn(&'static Algorithm) -> Digest,
    certificate: &Certificate,
) -> Result<(), &'static str> {
    let attrs = info
        .signed_attrs
        .as_ref()
        .ok_or("the signer has no signed attributes")?;
    let single = |oid: ObjectIdentifier| {
        let mut found = attrs.iter().filter(|a| a.oid == oid);
        match (found.next(), found.next()) {
            (Some(a), None) if a.values.len() == 1 => a.values.get(0).cloned(),
            _ => None,
        }
    };
    let named = single(ID_CONTENT_TYPE)
        .and_then(|v| v.decode_as::<ObjectIdentifier>().ok())
        .ok_or("the signer's content type is missing")?;
    if named != content_type {
        return Err("the signer signed another type of content");
    }
    let algorithm = match info.digest_alg.oid {
        ID_SHA256 => &ring::digest::SHA256,
        ID_SHA384 => &ring::digest::SHA384,
        ID_SHA512 => &ring::digest::SHA512,
        _ => return Err("the signer's digest algorithm is not SHA-2"),
    };
    let digest = single(ID_MESSAGE_DIGEST)
        .and_then(|v| v.decode_as::<OctetString>().ok())
        .ok_or("the signer's message digest is missing")?;
    if digest.as_bytes() != digest_of(algorithm).as_ref() {
        return Err("the signer's message digest is not the content's");
    }
    let spki = &certificate.tbs_certificate.subject_public_key_info;
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
    let verifier: &dyn sig::VerificationAlgorithm =
        match (spki.algorithm.oid, curve, info.digest_alg.oid) {
            (EC_PUBLIC_KEY, Some(P256), ID_SHA256) => &sig::ECDSA_P256_SHA256_ASN1,
            (EC_PUBLIC_KEY, Some(P384), ID_SHA384) => &sig::ECDSA_P384_SHA384_ASN1,
            (RSA, _, ID_SHA256) => &sig::RSA_PKCS1_2048_8192_SHA256,
            (RSA, _, ID_SHA384) => &sig::RSA_PKCS1_2048_8192_SHA384,
            (RSA, _, ID_SHA512) => &sig::RSA_PKCS1_2048_8192_SHA512,
            _ => return Err("the signer's key and digest are not a pair Tuaton checks"),
        };
    // The signature is over the attributes' DER as a SET OF (§5.4).
    let signed = attrs
        .to_der()
        .map_err(|_| "the signer's signed attributes cannot be encoded")?;
    sig::UnparsedPublicKey::new(verifier, spki.subject_public_key.raw_bytes())
        .verify(&signed, info.signature.as_bytes())
        .map_err(|_| NOT_THIS_KEY)
}
