//! The certificates: a CA issues CAs, responders and signers.

use der::Encode as _;
use der::asn1::Ia5String;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CrlDistributionPoint,
    CustomExtension, DistinguishedName, DnType, IsCa, Issuer, KeyIdMethod, KeyUsagePurpose,
    RevocationReason, RevokedCertParams, SerialNumber,
};
use time::{Duration, OffsetDateTime};
use tuaton_core::{CitizenId, Ial, JuristicId};
use tuaton_keys::BackendSigningKey;
use x509_cert::ext::pkix::certpolicy::PolicyInformation;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{AccessDescription, AuthorityInfoAccessSyntax, CertificatePolicies};

use crate::oids::{self, SemanticsId};
use crate::{BackendKey, CaSettings, ObjectIdentifier, PkiError};

/// A certificate Tuaton issued, in DER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    der: Vec<u8>,
}

impl Issued {
    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// Its serial number (lower-case hex) and validity, as stored beside it.
    pub fn facts(&self) -> Result<Facts, PkiError> {
        Facts::of(&self.der)
    }

    /// The PEM encoding (RFC 7468), as `openssl` and relying parties read it.
    pub fn pem(&self) -> String {
        pem(&self.der)
    }
}

/// A DER certificate in PEM (RFC 7468 §5), lines of 64 characters.
pub fn pem(der: &[u8]) -> String {
    use base64::Engine as _;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// What is stored beside a certificate: its serial number and validity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// The serial number, lower-case hex without leading zero octets.
    pub serial_hex: String,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// The subject public key: the BIT STRING's bytes (an uncompressed EC
    /// point, or `RSAPublicKey` DER), as a key backend gives them.
    pub public_key: Vec<u8>,
}

/// A serial number as Tuaton stores and shows it: the integer's bytes in
/// lower-case hex, without leading zero bytes.
pub fn serial_hex(bytes: &[u8]) -> String {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    hex::encode(&bytes[first..])
}

impl Facts {
    /// The facts of the certificate `der`.
    pub fn of(der: &[u8]) -> Result<Self, PkiError> {
        let (_, parsed) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| PkiError::Setting(format!("not a certificate: {e}")))?;
        Ok(Self {
            serial_hex: serial_hex(parsed.raw_serial()),
            not_before: parsed.validity().not_before.to_datetime(),
            not_after: parsed.validity().not_after.to_datetime(),
            public_key: parsed.public_key().subject_public_key.data.to_vec(),
        })
    }
}

/// The subject and issuer names of the certificate `der`, as RFC 4514
/// strings.
pub fn names(der: &[u8]) -> Result<(String, String), PkiError> {
    let (_, parsed) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| PkiError::Setting(format!("not a certificate: {e}")))?;
    Ok((parsed.subject().to_string(), parsed.issuer().to_string()))
}

/// Whom a signer certificate's subject names, as ETSI EN 319 412-1
/// semantics identifiers: the person (`serialNumber`, `PNOTH-…`) and, for a
/// representative, the company (`organizationIdentifier`, `NTRTH-…`). The
/// CA's signature binds both to the key: a stored row cannot change them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectIds {
    /// The subject's `serialNumber`, if any.
    pub person: Option<String>,
    /// The subject's `organizationIdentifier`, if any.
    pub organization: Option<String>,
}

/// The semantics identifiers the subject of the certificate `der` carries.
pub fn subject_ids(der: &[u8]) -> Result<SubjectIds, PkiError> {
    let (_, parsed) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| PkiError::Setting(format!("not a certificate: {e}")))?;
    let attribute = |oid: &x509_parser::der_parser::Oid<'_>, what: &str| {
        parsed
            .subject()
            .iter_by_oid(oid)
            .next()
            .map(|a| {
                a.as_str()
                    .map(str::to_owned)
                    .map_err(|_| PkiError::Setting(format!("the {what} is not a string")))
            })
            .transpose()
    };
    let organization_identifier = x509_parser::der_parser::Oid::from(oids::ORGANIZATION_IDENTIFIER)
        .map_err(|_| PkiError::Setting("the organizationIdentifier OID".into()))?;
    Ok(SubjectIds {
        person: attribute(
            &x509_parser::oid_registry::OID_X509_SERIALNUMBER,
            "serialNumber",
        )?,
        organization: attribute(&organization_identifier, "organizationIdentifier")?,
    })
}

/// The identity level a signer certificate issued under `policy` was
/// proofed at: the level its `policy.2.<level>` policy names (see
/// [`crate::ial_policy`]), if it names one. The CA's signature covers it.
pub fn certified_ial(der: &[u8], policy: &ObjectIdentifier) -> Result<Option<Ial>, PkiError> {
    let (_, parsed) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| PkiError::Setting(format!("not a certificate: {e}")))?;
    let prefix = format!("{policy}.2.");
    let named = parsed
        .extensions()
        .iter()
        .filter_map(|e| match e.parsed_extension() {
            x509_parser::extensions::ParsedExtension::CertificatePolicies(p) => Some(p),
            _ => None,
        })
        .flatten()
        .filter_map(|info| {
            let id = info.policy_id.to_id_string();
            let level = id.strip_prefix(&prefix)?;
            Ial::ALL.iter().copied().find(|l| l.number() == level)
        })
        .max();
    Ok(named)
}

/// Whom a signer certificate names.
pub enum Signer<'a> {
    /// A citizen signing for themself.
    Citizen {
        /// The name as the certificate's common name gives it (Latin script).
        given_name: &'a str,
        /// The family name.
        family_name: &'a str,
        /// The verified citizen id: the `serialNumber` semantics identifier.
        citizen_id: &'a CitizenId,
        /// The level the identity was proofed at, named in the policy.
        ial: Ial,
    },
    /// A director acting for a company: the company is the organisation,
    /// the person is named beside it.
    Representative {
        /// The person's given name.
        given_name: &'a str,
        /// The person's family name.
        family_name: &'a str,
        /// The person's citizen id.
        citizen_id: &'a CitizenId,
        /// The person's identity level.
        ial: Ial,
        /// The company's registered name.
        company: &'a str,
        /// The company's juristic id: the `organizationIdentifier`.
        juristic_id: &'a JuristicId,
    },
}

/// A certificate authority that can issue: its key in the backend, its
/// certificate, and the deployment's settings.
pub struct Authority {
    issuer: Issuer<'static, BackendSigningKey>,
    published_as: String,
    certificate: Issued,
    not_after: OffsetDateTime,
    settings: CaSettings,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("published_as", &self.published_as)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

fn signing_key(key: &BackendKey<'_>) -> Result<BackendSigningKey, PkiError> {
    Ok(BackendSigningKey::new(
        key.backend.clone(),
        key.key.clone(),
        key.alg,
    )?)
}

/// Twenty random bytes, the top bit clear: a positive serial number of
/// 159 bits (RFC 5280 §4.1.2.2 allows 20 octets; unpredictable ones keep a
/// chosen-prefix collision out of reach).
fn serial() -> Result<SerialNumber, PkiError> {
    let mut b = [0u8; 20];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .map_err(|_| PkiError::Setting("the system random source failed".into()))?;
    b[0] &= 0x7f;
    b[0] |= 0x01;
    Ok(SerialNumber::from_slice(&b))
}

/// Parameters of a new certificate: a fresh serial, valid from five
/// minutes before `now` (clocks of relying parties run a little behind)
/// until `not_after`.
fn fresh(now: OffsetDateTime, not_after: OffsetDateTime) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::default();
    params.serial_number = Some(serial()?);
    params.not_before = now - Duration::minutes(5);
    params.not_after = not_after;
    Ok(params)
}

fn uri(url: &url::Url) -> Result<GeneralName, PkiError> {
    Ok(GeneralName::UniformResourceIdentifier(Ia5String::new(
        url.as_str(),
    )?))
}

fn policies(ids: &[ObjectIdentifier]) -> Result<CustomExtension, PkiError> {
    let value = CertificatePolicies(
        ids.iter()
            .map(|id| PolicyInformation {
                policy_identifier: *id,
                policy_qualifiers: None,
            })
            .collect(),
    )
    .to_der()?;
    Ok(CustomExtension::from_oid_content(
        oids::CERTIFICATE_POLICIES,
        value,
    ))
}

/// A critical extended key usage naming `purpose` alone (RFC 3161 §2.3
/// for a TSA; RFC 6960 §4.2.2.2 for an OCSP responder).
fn only_purpose(oid: ObjectIdentifier) -> Result<CustomExtension, PkiError> {
    let value = x509_cert::ext::pkix::ExtendedKeyUsage(vec![oid]).to_der()?;
    let mut ext = CustomExtension::from_oid_content(oids::EXT_KEY_USAGE, value);
    ext.set_criticality(true);
    Ok(ext)
}

impl Authority {
    /// A self-signed root: CA with path length 1 (an issuing CA below it,
    /// nothing below that), for keyCertSign and cRLSign only. Certificates
    /// it issues point at its certificate and CRL by `published_as`
    /// ([`CaSettings::ca_certificate_url`]).
    pub fn new_root(
        key: &BackendKey<'_>,
        published_as: &str,
        settings: &CaSettings,
        common_name: &str,
        validity: Duration,
        now: OffsetDateTime,
    ) -> Result<Self, PkiError> {
        let mut params = Self::ca_params(settings, common_name, 1, validity, now)?;
        params.custom_extensions.push(policies(&[settings.policy])?);
        let signer = signing_key(key)?;
        let cert = params.self_signed(&signer)?;
        Ok(Self {
            published_as: published_as.to_owned(),
            not_after: params.not_after,
            certificate: Issued {
                der: cert.der().to_vec(),
            },
            issuer: Issuer::new(params, signer),
            settings: settings.clone(),
        })
    }

    /// An authority from its certificate (as stored) and its key, published as `published_as`.
    pub fn from_certificate(
        der: &[u8],
        key: &BackendKey<'_>,
        published_as: &str,
        settings: &CaSettings,
    ) -> Result<Self, PkiError> {
        let (_, parsed) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| PkiError::Setting(format!("not a certificate: {e}")))?;
        let not_after = parsed.validity().not_after.to_datetime();
        let signer = signing_key(key)?;
        if signer.public_key().raw() != parsed.public_key().subject_public_key.data.as_ref() {
            return Err(PkiError::Setting("the key is not the certificate's".into()));
        }
        let issuer = Issuer::from_ca_cert_der(&der.to_vec().into(), signer)?;
        Ok(Self {
            issuer,
            published_as: published_as.to_owned(),
            certificate: Issued { der: der.to_vec() },
            not_after,
            settings: settings.clone(),
        })
    }

    /// This authority's certificate.
    pub fn certificate(&self) -> &Issued {
        &self.certificate
    }

    /// The name its certificate and CRL are published under.
    pub fn published_as(&self) -> &str {
        &self.published_as
    }

    /// The end of its certificate's validity: nothing it issues outlives it.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    fn ca_params(
        settings: &CaSettings,
        common_name: &str,
        path_len: u8,
        validity: Duration,
        now: OffsetDateTime,
    ) -> Result<CertificateParams, PkiError> {
        let mut params = fresh(now, now + validity)?;
        params.distinguished_name = org_name(settings, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(path_len));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        Ok(params)
    }

    /// Parameters every certificate this authority issues shares: serial,
    /// validity within its own, the authority key identifier, AIA and the
    /// CRL distribution point.
    fn issued_params(
        &self,
        validity: Duration,
        now: OffsetDateTime,
        ocsp: bool,
    ) -> Result<CertificateParams, PkiError> {
        let mut params = fresh(now, (now + validity).min(self.not_after))?;
        params.use_authority_key_identifier_extension = true;
        let mut access = Vec::new();
        if ocsp {
            access.push(AccessDescription {
                access_method: oids::AD_OCSP,
                access_location: uri(&self.settings.ocsp_url)?,
            });
        }
        access.push(AccessDescription {
            access_method: oids::AD_CA_ISSUERS,
            access_location: uri(&self.settings.ca_certificate_url(&self.published_as)?)?,
        });
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(
                oids::AUTHORITY_INFO_ACCESS,
                AuthorityInfoAccessSyntax(access).to_der()?,
            ));
        params.crl_distribution_points = vec![CrlDistributionPoint {
            uris: vec![self.settings.crl_url(&self.published_as)?.to_string()],
        }];
        Ok(params)
    }

    fn sign(&self, params: &CertificateParams, key: &BackendKey<'_>) -> Result<Issued, PkiError> {
        let subject = signing_key(key)?;
        let cert = params.signed_by(&subject, &self.issuer)?;
        Ok(Issued {
            der: cert.der().to_vec(),
        })
    }

    /// An issuing CA under this root: path length 0 (it issues end-entity
    /// certificates only), published as `published_as`. Its certificate's
    /// AIA names the root's certificate (`caIssuers`) and no OCSP
    /// responder: a CA's status is in the root's CRL.
    pub fn issue_ca(
        &self,
        key: &BackendKey<'_>,
        published_as: &str,
        common_name: &str,
        validity: Duration,
        now: OffsetDateTime,
    ) -> Result<Authority, PkiError> {
        let mut params = self.issued_params(validity, now, false)?;
        params.distinguished_name = org_name(&self.settings, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params
            .custom_extensions
            .push(policies(&[self.settings.policy])?);
        let issued = self.sign(&params, key)?;
        Ok(Authority {
            published_as: published_as.to_owned(),
            not_after: params.not_after,
            certificate: issued,
            issuer: Issuer::new(params, signing_key(key)?),
            settings: self.settings.clone(),
        })
    }

    /// The time-stamping authority's certificate (RFC 3161 §2.3): the one
    /// extended key usage timeStamping, critical.
    pub fn issue_tsa(
        &self,
        key: &BackendKey<'_>,
        common_name: &str,
        validity: Duration,
        now: OffsetDateTime,
    ) -> Result<Issued, PkiError> {
        let usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::ContentCommitment,
        ];
        let params =
            self.responder_params(common_name, validity, now, usages, oids::KP_TIME_STAMPING)?;
        self.sign(&params, key)
    }

    /// A responder's certificate (the TSA's, the OCSP responder's): the
    /// authority's name with `common_name`, `usages`, and `purpose` as its
    /// one, critical, extended key usage.
    fn responder_params(
        &self,
        common_name: &str,
        validity: Duration,
        now: OffsetDateTime,
        usages: Vec<KeyUsagePurpose>,
        purpose: ObjectIdentifier,
    ) -> Result<CertificateParams, PkiError> {
        // An OCSP responder's own status is not asked of it (ocsp-nocheck).
        let ocsp_url = purpose != oids::KP_OCSP_SIGNING;
        let mut params = self.issued_params(validity, now, ocsp_url)?;
        params.distinguished_name = org_name(&self.settings, common_name);
        params.key_usages = usages;
        params.custom_extensions.push(only_purpose(purpose)?);
        params
            .custom_extensions
            .push(policies(&[self.settings.policy])?);
        Ok(params)
    }

    /// The OCSP responder's certificate (RFC 6960 §4.2.2.2): OCSPSigning,
    /// and `id-pkix-ocsp-nocheck`, so clients do not ask the responder
    /// about its own certificate; it is therefore kept short-lived.
    pub fn issue_ocsp(
        &self,
        key: &BackendKey<'_>,
        common_name: &str,
        validity: Duration,
        now: OffsetDateTime,
    ) -> Result<Issued, PkiError> {
        let mut params = self.responder_params(
            common_name,
            validity,
            now,
            vec![KeyUsagePurpose::DigitalSignature],
            oids::KP_OCSP_SIGNING,
        )?;
        // The extension's value is an ASN.1 NULL.
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(
                oids::OCSP_NOCHECK,
                der::asn1::Null.to_der()?,
            ));
        self.sign(&params, key)
    }

    /// The CRL (RFC 5280 §5) of what this authority issued and revoked:
    /// `revoked` as (serial number in hex, when, RFC 5280 reason name),
    /// valid from `now` to `next_update`, numbered `number` (which must
    /// grow from one CRL to the next). Signed through the backend.
    pub fn crl(
        &self,
        revoked: &[(String, OffsetDateTime, String)],
        number: u64,
        now: OffsetDateTime,
        next_update: OffsetDateTime,
    ) -> Result<Vec<u8>, PkiError> {
        let revoked_certs = revoked
            .iter()
            .map(|(serial, at, reason)| {
                let bytes = hex::decode(serial)
                    .map_err(|_| PkiError::Setting(format!("serial {serial:?} is not hex")))?;
                Ok(RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&bytes),
                    revocation_time: *at,
                    reason_code: Some(revocation_reason(reason)?),
                    invalidity_date: None,
                })
            })
            .collect::<Result<Vec<_>, PkiError>>()?;
        let params = CertificateRevocationListParams {
            this_update: now,
            next_update,
            crl_number: SerialNumber::from_slice(&number.to_be_bytes()),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        Ok(params.signed_by(&self.issuer)?.der().to_vec())
    }

    /// A signer certificate for `signer`'s own key: digitalSignature and
    /// nonRepudiation, the person's names and ETSI EN 319 412-1 semantics
    /// identifier, and the policy of the identity level proofed.
    pub fn issue_signer(
        &self,
        key: &BackendKey<'_>,
        signer: &Signer<'_>,
        now: OffsetDateTime,
    ) -> Result<Issued, PkiError> {
        let mut params = self.issued_params(self.settings.signer_validity, now, true)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CountryName, self.settings.country.as_str());
        let (given, family, citizen, ial) = match signer {
            Signer::Citizen {
                given_name,
                family_name,
                citizen_id,
                ial,
            } => (*given_name, *family_name, *citizen_id, *ial),
            Signer::Representative {
                given_name,
                family_name,
                citizen_id,
                ial,
                company,
                juristic_id,
            } => {
                dn.push(DnType::OrganizationName, *company);
                dn.push(
                    DnType::CustomDnType(oids::ORGANIZATION_IDENTIFIER.to_vec()),
                    oids::semantics_identifier(SemanticsId::Company(juristic_id)),
                );
                (*given_name, *family_name, *citizen_id, *ial)
            }
        };
        dn.push(DnType::CustomDnType(oids::GIVEN_NAME.to_vec()), given);
        dn.push(DnType::CustomDnType(oids::SURNAME.to_vec()), family);
        dn.push(
            DnType::CustomDnType(oids::SERIAL_NUMBER.to_vec()),
            oids::semantics_identifier(SemanticsId::Citizen(citizen)),
        );
        dn.push(DnType::CommonName, format!("{given} {family}"));
        params.distinguished_name = dn;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::ContentCommitment,
        ];
        let level = crate::ial_policy(&self.settings.policy, ial)
            .map_err(|e| PkiError::Setting(e.to_string()))?;
        params.custom_extensions.push(policies(&[level])?);
        self.sign(&params, key)
    }
}

/// Whether a revocation can be listed in a CRL: a serial in hex and a
/// reason RFC 5280 §5.3.1 names.
pub fn crl_entry_fits(serial_hex: &str, reason: &str) -> bool {
    hex::decode(serial_hex).is_ok_and(|b| !b.is_empty()) && revocation_reason(reason).is_ok()
}

/// The RFC 5280 §5.3.1 reason by the name Tuaton stores it under.
fn revocation_reason(name: &str) -> Result<RevocationReason, PkiError> {
    Ok(match name {
        "unspecified" => RevocationReason::Unspecified,
        "keyCompromise" => RevocationReason::KeyCompromise,
        "cACompromise" => RevocationReason::CaCompromise,
        "affiliationChanged" => RevocationReason::AffiliationChanged,
        "superseded" => RevocationReason::Superseded,
        "cessationOfOperation" => RevocationReason::CessationOfOperation,
        "certificateHold" => RevocationReason::CertificateHold,
        "privilegeWithdrawn" => RevocationReason::PrivilegeWithdrawn,
        _ => {
            return Err(PkiError::Setting(format!(
                "unknown revocation reason {name:?}"
            )));
        }
    })
}

fn org_name(settings: &CaSettings, common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, settings.country.as_str());
    dn.push(DnType::OrganizationName, settings.organization.as_str());
    dn.push(DnType::CommonName, common_name);
    dn
}
