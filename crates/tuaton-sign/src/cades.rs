//! CAdES detached signatures (ETSI EN 319 122-1), baseline B-B and B-T:
//! a CMS `SignedData` without its content, over any file's SHA-256.
//!
//! B-B's signed attributes are content-type (`id-data`), message-digest,
//! ESS signing-certificate-v2 and, for CAdES, signing-time; PAdES uses the
//! same signature without signing-time (ETSI EN 319 142-1 puts the time in
//! the PDF's `/M`). B-T adds the signature-time-stamp unsigned attribute:
//! an RFC 3161 token over the signature value (RFC 3161 appendix A).

use cms::content_info::ContentInfo;
use der::asn1::{GeneralizedTime, ObjectIdentifier, SetOfVec, UtcTime};
use der::{Any, Decode, Encode};
use time::OffsetDateTime;
use x509_cert::time::Time;

use crate::SignError;
use crate::signer::{CmsSigner, ID_DATA, attribute};
use crate::tsp::{TimeStampSource, time_stamp_token};

const ID_SIGNING_TIME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");
/// `id-aa-signatureTimeStampToken` (RFC 3161 appendix A).
const ID_SIGNATURE_TIME_STAMP: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.14");

/// How a detached signature is made.
#[derive(Clone, Copy, Default)]
pub struct Options<'a> {
    /// The signing-time attribute: CAdES has one, PAdES none.
    pub signing_time: Option<OffsetDateTime>,
    /// A time-stamping authority: its token makes the signature B-T;
    /// without one it is B-B.
    pub time_stamp: Option<&'a dyn TimeStampSource>,
}

/// A detached signature (DER `ContentInfo`, the `.p7s` file) over content
/// whose SHA-256 is `content_digest`, with the signer's certificate and
/// chain included.
pub fn sign_detached(
    signer: &CmsSigner,
    content_digest: &[u8; 32],
    options: Options<'_>,
) -> Result<Vec<u8>, SignError> {
    let mut extra = Vec::new();
    if let Some(at) = options.signing_time {
        let unix = std::time::Duration::from_secs(
            u64::try_from(at.unix_timestamp())
                .map_err(|_| SignError::Setting("a signing time before 1970".into()))?,
        );
        // RFC 5652 §11.3: UTCTime up to 2049, GeneralizedTime after.
        let time = if at.year() < 2050 {
            Time::UtcTime(UtcTime::from_unix_duration(unix)?)
        } else {
            Time::GeneralTime(GeneralizedTime::from_unix_duration(unix)?)
        };
        extra.push(attribute(ID_SIGNING_TIME, Any::encode_from(&time)?)?);
    }
    let mut info = signer.signer_info(ID_DATA, content_digest, extra)?;
    if let Some(tsa) = options.time_stamp {
        let token = time_stamp_token(tsa, info.signature.as_bytes())?;
        let token = Any::from_der(&token)?;
        info.unsigned_attrs = Some(SetOfVec::try_from(vec![attribute(
            ID_SIGNATURE_TIME_STAMP,
            token,
        )?])?);
    }
    let content: ContentInfo = signer.signed_data(ID_DATA, None, info, true)?;
    Ok(content.to_der()?)
}
