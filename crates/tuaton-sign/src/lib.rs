//! Tuaton's signatures, every one made through the key backend: RFC 3161
//! time-stamp tokens from Tuaton's own time-stamping authority ([`tsp`]),
//! CAdES detached signatures ([`cades`]), PAdES signatures in PDFs
//! ([`pades`]), JWS over JSON documents ([`jws`]), all on one signer
//! ([`CmsSigner`]: a backend key with its certificate and chain), and
//! XAdES enveloped in XML documents ([`xades`]) (docs/signing.md).

pub mod cades;
pub mod jws;
pub mod ocsp;
pub mod pades;
mod signer;
pub mod tsp;
mod verify;
pub mod xades;

pub use signer::CmsSigner;
pub use tsp::{Failure, TimeStampSource, TimeStamper};

/// Why a signature or a time stamp could not be made (a bad time-stamp
/// request is answered with a rejection instead). No variant carries key
/// material.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The key backend refused or failed.
    #[error("the key backend: {0}")]
    Key(#[from] tuaton_keys::KeyError),
    /// A structure could not be encoded, or a certificate not read.
    #[error("encoding: {0}")]
    Encoding(#[from] der::Error),
    /// The signer's settings do not fit (its algorithm, key or certificate).
    #[error("{0}")]
    Setting(String),
    /// The time-stamping authority refused or answered something else
    /// than a token over what was asked.
    #[error("the time-stamping authority: {0}")]
    TimeStamp(String),
    /// The document cannot be signed as it is (not a PDF, encrypted,
    /// damaged, certified against changes); the message says why and may
    /// be shown to the signer.
    #[error("{0}")]
    Document(String),
}

/// `at` in UTC, written as `description` says (a PDF date, an
/// `xsd:dateTime`, a line of a visible signature).
pub fn format_utc(
    at: time::OffsetDateTime,
    description: &[time::format_description::BorrowedFormatItem<'_>],
) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(description)
        .unwrap_or_default()
}
