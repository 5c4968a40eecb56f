//! The signatures a PDF carries, each checked as far as the file alone
//! can say: its `/ByteRange` covers the file from its first byte to the
//! end of the revision it signs but for the hex string that holds it; that
//! string is one CMS `SignedData` (zeros after it) with one signer; the
//! signer's message digest is the byte range's; and its signature verifies
//! with the key of the certificate the CMS carries. Which certificates to
//! trust, and whose they are, is the caller's to say: Tuaton's directors'
//! signatures are matched to the certificates Tuaton issued
//! (docs/signing.md).

use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier};
use der::asn1::OctetString;
use der::{Decode, Encode, Reader as _, SliceReader};
use ring::digest::Context;
use x509_cert::Certificate;

use super::read;
use crate::SignError;
use crate::signer::{ID_DATA, ID_SIGNED_DATA};

/// The subject key identifier extension (RFC 5280 §4.2.1.2).
const ID_CE_SUBJECT_KEY_IDENTIFIER: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("2.5.29.14");

/// A signature a PDF carries, checked as the module says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedSignature {
    /// Where the revision it signs ends: it covers every byte before this
    /// but the hex string holding it.
    pub signed_len: usize,
    /// The signer's certificate, DER, as the CMS carries it.
    pub certificate: Vec<u8>,
}

fn refused(which: usize, why: impl std::fmt::Display) -> SignError {
    SignError::Document(format!(
        "signature {which} of the PDF does not verify: {why}"
    ))
}

/// The signatures of `pdf`'s signed fields, in the order of the revisions
/// they sign, every one checked; the first that does not check is an error
/// naming it (counted from 1, in that order), and so is a signed field
/// whose signature dictionary cannot be read.
pub fn signatures(pdf: &[u8]) -> Result<Vec<EmbeddedSignature>, SignError> {
    let revision = read::read(pdf, 0)?;
    if revision.byte_ranges.len() != revision.signatures {
        return Err(SignError::Document(
            "a signed field of the PDF has no readable signature".into(),
        ));
    }
    let mut ranges = revision
        .byte_ranges
        .iter()
        .map(|r| covered(pdf, r))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| {
            SignError::Document("a signature's /ByteRange does not fit the PDF".into())
        })?;
    ranges.sort_by_key(|r| r.end);
    ranges
        .iter()
        .enumerate()
        .map(|(i, range)| check(pdf, range).map_err(|why| refused(i + 1, why)))
        .collect()
}

/// A `/ByteRange [0 a b c]`: the bytes `..a` and `b..end`, the hex string
/// `a..b` between them.
struct Covered {
    gap: std::ops::Range<usize>,
    end: usize,
}

/// `range` as offsets in `pdf`, if it is four numbers from the file's
/// first byte, leaving out exactly one `<…>` string, within the file.
fn covered(pdf: &[u8], range: &[i64]) -> Option<Covered> {
    let [0, a, b, c] = range else {
        return None;
    };
    let (a, b, c) = (
        usize::try_from(*a).ok()?,
        usize::try_from(*b).ok()?,
        usize::try_from(*c).ok()?,
    );
    let end = b.checked_add(c)?;
    let string = pdf.get(a..b)?;
    let fits = end <= pdf.len()
        && string.len() >= 2
        && string.first() == Some(&b'<')
        && string.last() == Some(&b'>');
    fits.then_some(Covered { gap: a..b, end })
}

fn check(pdf: &[u8], range: &Covered) -> Result<EmbeddedSignature, &'static str> {
    let hex_digits = &pdf[range.gap.start + 1..range.gap.end - 1];
    let bytes = hex::decode(hex_digits).map_err(|_| "its /Contents is not hex digits")?;
    let mut reader = SliceReader::new(&bytes).map_err(|_| "its /Contents is too long")?;
    let info = ContentInfo::decode(&mut reader).map_err(|_| "its /Contents is not a CMS")?;
    let rest = reader
        .read_slice(reader.remaining_len())
        .map_err(|_| "its /Contents cannot be read")?;
    if rest.iter().any(|&b| b != 0) {
        return Err("its /Contents holds more than the CMS");
    }
    if info.content_type != ID_SIGNED_DATA {
        return Err("its CMS is not a SignedData");
    }
    let signed = info
        .content
        .decode_as::<SignedData>()
        .map_err(|_| "its SignedData is malformed")?;
    if signed.encap_content_info.econtent_type != ID_DATA
        || signed.encap_content_info.econtent.is_some()
    {
        return Err("its SignedData is not detached over data");
    }
    let [signer] = signed.signer_infos.0.as_slice() else {
        return Err("its SignedData has not exactly one signer");
    };
    let certificate = signed
        .certificates
        .iter()
        .flat_map(|set| set.0.iter())
        .filter_map(|c| match c {
            CertificateChoices::Certificate(c) => Some(c),
            CertificateChoices::Other(_) => None,
        })
        .find(|c| names(&signer.sid, c))
        .ok_or("its signer's certificate is not in it")?;
    let (head, tail) = (&pdf[..range.gap.start], &pdf[range.gap.end..range.end]);
    crate::verify::signed_by(
        signer,
        ID_DATA,
        &|algorithm| {
            let mut hash = Context::new(algorithm);
            hash.update(head);
            hash.update(tail);
            hash.finish()
        },
        certificate,
    )?;
    Ok(EmbeddedSignature {
        signed_len: range.end,
        certificate: certificate
            .to_der()
            .map_err(|_| "its signer's certificate cannot be encoded")?,
    })
}

/// Whether `sid` names `certificate`: by issuer and serial number, or by
/// the subject key identifier it carries.
fn names(sid: &SignerIdentifier, certificate: &Certificate) -> bool {
    let tbs = &certificate.tbs_certificate;
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(named) => {
            named.issuer == tbs.issuer && named.serial_number == tbs.serial_number
        }
        SignerIdentifier::SubjectKeyIdentifier(named) => tbs
            .extensions
            .iter()
            .flatten()
            .filter(|e| e.extn_id == ID_CE_SUBJECT_KEY_IDENTIFIER)
            .any(|e| OctetString::from_der(e.extn_value.as_bytes()).is_ok_and(|id| id == named.0)),
    }
}
