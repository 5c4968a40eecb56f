//! XAdES baseline signatures (ETSI EN 319 132-1), B-B and B-T, enveloped
//! in the XML document they sign: what a Thai company puts in an e-Tax
//! Invoice or e-Receipt (ETDA ขมธอ. 3-2560).
//!
//! The `ds:Signature` (XMLDSig 1.1) is appended as the root element's last
//! child, with nothing around it, and holds two references digested with
//! SHA-256: the whole document (`URI=""`, the enveloped-signature
//! transform taking the signature out again, then inclusive canonical XML
//! 1.0, so every namespace declaration is signed) and, canonicalised
//! exclusively, the XAdES `SignedProperties` (signing time, and the signer certificate by digest,
//! issuer and serial in `SigningCertificateV2`). The signature is ECDSA
//! P-256 over the canonical `SignedInfo`, through the key backend; the
//! certificate and the chain above it are in `KeyInfo`. B-T adds the
//! `SignatureTimeStamp`: the TSA's token over the canonical
//! `SignatureValue` element.
//!
//! xml-sec parses and canonicalises; what is written by hand is the
//! signature's own elements, each built as a string and canonicalised on
//! its own (exclusive canonicalisation makes that the same as in place).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use time::OffsetDateTime;
use xml_sec::c14n::{C14nAlgorithm, C14nMode, canonicalize_xml};

use crate::signer::sha256;
use crate::tsp::{TimeStampSource, time_stamp_token};
use crate::{CmsSigner, SignError};
use tuaton_keys::SignatureFormat;

const DS: &str = "http://www.w3.org/2000/09/xmldsig#";
const XADES: &str = "http://uri.etsi.org/01903/v1.3.2#";
const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const C14N: &str = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315";

/// The largest XML document signed (an e-Tax Invoice is a few kilobytes;
/// canonicalisation may write several times its input).
pub const MAX_XML_BYTES: usize = 5 * 1024 * 1024;
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
const ECDSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";
const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
const SIGNED_PROPERTIES: &str = "http://uri.etsi.org/01903#SignedProperties";

/// How an XAdES signature is made.
#[derive(Clone, Copy)]
pub struct XadesOptions<'a> {
    /// The `SigningTime` signed property.
    pub signing_time: OffsetDateTime,
    /// A time-stamping authority: its token makes the signature B-T;
    /// without one it is B-B.
    pub time_stamp: Option<&'a dyn TimeStampSource>,
}

fn canonical_as(xml: &[u8], mode: C14nMode) -> Result<Vec<u8>, SignError> {
    if xml.len() > MAX_XML_BYTES {
        return Err(SignError::Document(format!(
            "an XML document of more than {} MiB is not signed",
            MAX_XML_BYTES >> 20
        )));
    }
    canonicalize_xml(xml, &C14nAlgorithm::new(mode, false))
        .map_err(|e| SignError::Document(format!("the XML cannot be read: {e}")))
}

/// Exclusive canonicalisation: the signature's own elements.
fn canonical(xml: &[u8]) -> Result<Vec<u8>, SignError> {
    canonical_as(xml, C14nMode::Exclusive1_0)
}

/// Where the signature goes: the root element's end tag (or, for an empty
/// root, its `/>`), and the root's qualified name.
fn root_end(xml: &str) -> Result<(usize, Option<String>), SignError> {
    let bad = |what: &str| SignError::Document(format!("the XML cannot be read: {what}"));
    let mut depth = 0usize;
    let mut root: Option<String> = None;
    for token in xmlparser::Tokenizer::from(xml) {
        let token = token.map_err(|e| bad(&e.to_string()))?;
        match token {
            // The bytes are read as UTF-8; a document that says otherwise
            // would be read differently by its relying parties.
            xmlparser::Token::Declaration {
                encoding: Some(encoding),
                ..
            } if !encoding.as_str().eq_ignore_ascii_case("UTF-8") => {
                return Err(SignError::Document(format!(
                    "the XML declares the encoding {}; only UTF-8 is signed",
                    encoding.as_str()
                )));
            }
            xmlparser::Token::ElementStart { prefix, local, .. } => {
                if depth == 0 {
                    root = Some(if prefix.is_empty() {
                        local.to_string()
                    } else {
                        format!("{prefix}:{local}")
                    });
                }
                depth += 1;
            }
            xmlparser::Token::ElementEnd { end, span } => match end {
                xmlparser::ElementEnd::Open => {}
                xmlparser::ElementEnd::Close(..) => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return Ok((span.start(), None));
                    }
                }
                xmlparser::ElementEnd::Empty => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return Ok((span.start(), root));
                    }
                }
            },
            _ => {}
        }
    }
    Err(bad("it has no root element"))
}

/// The signing time as `xsd:dateTime` in UTC.
fn date_time(at: OffsetDateTime) -> String {
    crate::format_utc(
        at,
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z"),
    )
}

/// Checks that `xml` can be signed: UTF-8, well-formed, without a DTD,
/// with a root element.
pub fn check(xml: &[u8]) -> Result<(), SignError> {
    let text =
        std::str::from_utf8(xml).map_err(|_| SignError::Document("the XML is not UTF-8".into()))?;
    canonical(xml)?;
    root_end(text).map(|_| ())
}

/// Signs `xml` with an enveloped XAdES signature and returns the signed
/// document: the original bytes with the `ds:Signature` put before the
/// root element's end tag.
pub fn sign_enveloped(
    signer: &CmsSigner,
    xml: &[u8],
    options: XadesOptions<'_>,
) -> Result<Vec<u8>, SignError> {
    let text =
        std::str::from_utf8(xml).map_err(|_| SignError::Document("the XML is not UTF-8".into()))?;
    // The enveloped reference's digest: the document as it is now is what
    // the transform leaves once the signature is taken out again. It is
    // canonicalised inclusively, so every namespace declared in it is
    // signed, also one used only inside text (an `xsi:type` value).
    let document = canonical_as(xml, C14nMode::Inclusive1_0)?;
    let (at, empty_root) = root_end(text)?;

    let id = format!(
        "xmldsig-{}",
        hex::encode(
            &sha256(
                &[
                    document.as_slice(),
                    date_time(options.signing_time).as_bytes()
                ]
                .concat()
            )[..8]
        )
    );
    let certificate = signer.certificate_der();
    let signed_properties = format!(
        r#"<xades:SignedProperties xmlns:ds="{DS}" xmlns:xades="{XADES}" Id="{id}-signedprops"><xades:SignedSignatureProperties><xades:SigningTime>{}</xades:SigningTime><xades:SigningCertificateV2><xades:Cert><xades:CertDigest><ds:DigestMethod Algorithm="{SHA256}"></ds:DigestMethod><ds:DigestValue>{}</ds:DigestValue></xades:CertDigest><xades:IssuerSerialV2>{}</xades:IssuerSerialV2></xades:Cert></xades:SigningCertificateV2></xades:SignedSignatureProperties></xades:SignedProperties>"#,
        date_time(options.signing_time),
        STANDARD.encode(sha256(certificate)),
        STANDARD.encode(signer.issuer_serial_der()?),
    );
    let properties_digest = STANDARD.encode(sha256(&canonical(signed_properties.as_bytes())?));
    let signed_info = format!(
        r##"<ds:SignedInfo xmlns:ds="{DS}"><ds:CanonicalizationMethod Algorithm="{EXC_C14N}"></ds:CanonicalizationMethod><ds:SignatureMethod Algorithm="{ECDSA_SHA256}"></ds:SignatureMethod><ds:Reference Id="{id}-ref0" URI=""><ds:Transforms><ds:Transform Algorithm="{ENVELOPED}"></ds:Transform><ds:Transform Algorithm="{C14N}"></ds:Transform></ds:Transforms><ds:DigestMethod Algorithm="{SHA256}"></ds:DigestMethod><ds:DigestValue>{}</ds:DigestValue></ds:Reference><ds:Reference Type="{SIGNED_PROPERTIES}" URI="#{id}-signedprops"><ds:Transforms><ds:Transform Algorithm="{EXC_C14N}"></ds:Transform></ds:Transforms><ds:DigestMethod Algorithm="{SHA256}"></ds:DigestMethod><ds:DigestValue>{properties_digest}</ds:DigestValue></ds:Reference></ds:SignedInfo>"##,
        STANDARD.encode(sha256(&document)),
    );
    // XMLDSig 1.1 §6.4.3: an ECDSA SignatureValue is r || s.
    let value =
        STANDARD.encode(signer.sign(SignatureFormat::Raw, &canonical(signed_info.as_bytes())?)?);
    let signature_value = format!(
        r#"<ds:SignatureValue xmlns:ds="{DS}" Id="{id}-sigvalue">{value}</ds:SignatureValue>"#
    );

    let unsigned = match options.time_stamp {
        Some(tsa) => {
            let token = time_stamp_token(tsa, &canonical(signature_value.as_bytes())?)?;
            format!(
                r#"<xades:UnsignedProperties><xades:UnsignedSignatureProperties><xades:SignatureTimeStamp Id="{id}-ts"><ds:CanonicalizationMethod Algorithm="{EXC_C14N}"></ds:CanonicalizationMethod><xades:EncapsulatedTimeStamp>{}</xades:EncapsulatedTimeStamp></xades:SignatureTimeStamp></xades:UnsignedSignatureProperties></xades:UnsignedProperties>"#,
                STANDARD.encode(token)
            )
        }
        None => String::new(),
    };
    let mut certificates = format!(
        "<ds:X509Certificate>{}</ds:X509Certificate>",
        STANDARD.encode(certificate)
    );
    for der in signer.chain_der()? {
        certificates.push_str(&format!(
            "<ds:X509Certificate>{}</ds:X509Certificate>",
            STANDARD.encode(der)
        ));
    }
    let signature = format!(
        r##"<ds:Signature xmlns:ds="{DS}" Id="{id}">{signed_info}{signature_value}<ds:KeyInfo><ds:X509Data>{certificates}</ds:X509Data></ds:KeyInfo><ds:Object><xades:QualifyingProperties xmlns:xades="{XADES}" Target="#{id}">{signed_properties}{unsigned}</xades:QualifyingProperties></ds:Object></ds:Signature>"##
    );

    let mut out = Vec::with_capacity(xml.len() + signature.len() + 64);
    out.extend_from_slice(&xml[..at]);
    match empty_root {
        // `<root/>` becomes `<root>…</root>`: the same element to
        // canonicalisation.
        Some(name) => {
            out.push(b'>');
            out.extend_from_slice(signature.as_bytes());
            out.extend_from_slice(format!("</{name}>").as_bytes());
            out.extend_from_slice(&xml[at + 2..]);
        }
        None => {
            out.extend_from_slice(signature.as_bytes());
            out.extend_from_slice(&xml[at..]);
        }
    }
    Ok(out)
}
