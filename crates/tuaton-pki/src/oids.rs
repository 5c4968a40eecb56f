//! Object identifiers of the certificate profile, and the identifiers
//! derived from a person's or a company's registry number.

use const_oid::ObjectIdentifier;
use tuaton_core::{CitizenId, Ial, JuristicId};

/// The development policy arc, under IANA's private enterprise number
/// 32473, which RFC 5612 keeps for documentation and examples: no
/// development certificate can be mistaken for one issued under a real
/// policy.
pub const DEVELOPMENT_POLICY: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.32473.3861.1");

/// `id-kp-timeStamping` (RFC 5280 §4.2.1.12).
pub const KP_TIME_STAMPING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.8");
/// `id-kp-OCSPSigning` (RFC 5280 §4.2.1.12).
pub const KP_OCSP_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.9");
/// `id-ce-extKeyUsage`.
pub const EXT_KEY_USAGE: &[u64] = &[2, 5, 29, 37];
/// `id-pkix-ocsp-nocheck` (RFC 6960 §4.2.2.2.1).
pub const OCSP_NOCHECK: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 1, 5];
/// `id-pe-authorityInfoAccess` (RFC 5280 §4.2.2.1).
pub const AUTHORITY_INFO_ACCESS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 1];
/// `id-ad-ocsp`.
pub const AD_OCSP: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1");
/// `id-ad-caIssuers`.
pub const AD_CA_ISSUERS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.2");
/// `id-ce-certificatePolicies` (RFC 5280 §4.2.1.4).
pub const CERTIFICATE_POLICIES: &[u64] = &[2, 5, 29, 32];
/// The `serialNumber` attribute (X.520), which carries ETSI EN 319 412-1's
/// natural-person semantics identifier.
pub const SERIAL_NUMBER: &[u64] = &[2, 5, 4, 5];
/// The `organizationIdentifier` attribute (X.520), for the legal-person one.
pub const ORGANIZATION_IDENTIFIER: &[u64] = &[2, 5, 4, 97];
/// `givenName` (X.520).
pub const GIVEN_NAME: &[u64] = &[2, 5, 4, 42];
/// `surname` (X.520).
pub const SURNAME: &[u64] = &[2, 5, 4, 4];

/// The policy a signer certificate names for an identity proofed at
/// `ial`: `policy.2.<level>` (`policy.2.2.1` for IAL2.1, `policy.2.3` for
/// IAL3), so a relying party can require a level from the certificate alone.
pub fn ial_policy(
    policy: &ObjectIdentifier,
    ial: Ial,
) -> Result<ObjectIdentifier, const_oid::Error> {
    let mut text = format!("{policy}.2");
    for part in ial.number().split('.') {
        text.push('.');
        text.push_str(part);
    }
    ObjectIdentifier::new(&text)
}

/// ETSI EN 319 412-1 §5.1.3 semantics identifiers: `PNOTH-` and the
/// thirteen digits for a citizen (a national personal number issued in
/// Thailand), `NTRTH-` and the thirteen digits for a company (its number in
/// the national trade register).
pub enum SemanticsId<'a> {
    /// A natural person by citizen id.
    Citizen(&'a CitizenId),
    /// A legal person by juristic id.
    Company(&'a JuristicId),
}

/// The identifier `id` stands for, as a certificate's `serialNumber` or
/// `organizationIdentifier` carries it.
pub fn semantics_identifier(id: SemanticsId<'_>) -> String {
    match id {
        SemanticsId::Citizen(c) => format!("PNOTH-{}", c.compact()),
        SemanticsId::Company(j) => format!("NTRTH-{}", j.compact()),
    }
}
