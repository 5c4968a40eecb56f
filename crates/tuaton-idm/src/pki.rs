//! Tuaton's CA hierarchy in service: every CA and responder key in the key
//! backend has a current certificate in the store, made through the
//! backend; the time-stamping authority answers from the active TSA key.
//!
//! The hierarchy follows the key lifecycle: a root key (`root-ca`)
//! certifies the issuing CAs (`document-ca`), and the active issuing CA
//! certifies the responders (`tsa`, `ocsp`) and signers. Rotating one of
//! these keys (`tuaton keys rotate`) and certifying again
//! ([`certify_hierarchy`], run by `tuaton pki init` and by a server's
//! upkeep) introduces its successor while everything the old key certified
//! keeps validating: its certificate stays published under its own name.

use std::sync::Arc;

use time::{Duration, OffsetDateTime};
use tuaton_core::SignatureAlgorithm;
use tuaton_keys::{KeyBackend, KeyRef};
use tuaton_pki::{Authority, BackendKey, Issued};
pub use tuaton_pki::{CaSettings, ObjectIdentifier, is_published_name, pem};
use tuaton_store::Store;
use tuaton_store::certificates::{self, CertificateRole, NewCertificate, StoredCertificate};
use tuaton_store::keys::{self, KeyPurpose, KeyState, ManagedKey};

use crate::custody::{CustodyError, ensure_active};

/// The algorithm of every key of the hierarchy: P-256 with SHA-256, which
/// every validator in use reads.
pub const HIERARCHY_ALGORITHM: SignatureAlgorithm = SignatureAlgorithm::Es256;

/// A root certificate's validity.
pub const ROOT_VALIDITY: Duration = Duration::days(20 * 365);
/// An issuing CA certificate's validity (never beyond the root's).
pub const ISSUING_VALIDITY: Duration = Duration::days(10 * 365);
/// The TSA certificate's validity: time-stamps stay verifiable until it ends.
pub const TSA_VALIDITY: Duration = Duration::days(6 * 365);
/// The OCSP responder's certificate: short-lived, since `ocsp-nocheck`
/// means nobody asks for its status.
pub const OCSP_VALIDITY: Duration = Duration::days(90);
/// A responder certificate is renewed (for the same key) once less than
/// this is left of it.
pub const RENEW_BEFORE: Duration = Duration::days(30);

/// The hierarchy a deployment runs: the settings every certificate shares
/// and the common names of its authorities.
#[derive(Debug, Clone)]
pub struct CaPlan {
    /// URLs, policy and the operator's name.
    pub settings: CaSettings,
    /// The root's common name.
    pub root_name: String,
    /// Each issuing CA's common name.
    pub issuing_name: String,
    /// The TSA's common name.
    pub tsa_name: String,
    /// The OCSP responder's common name.
    pub ocsp_name: String,
    /// Whether a person's signing key and certificate are made when they
    /// are proofed at the signing level (at enrolment), not at their first
    /// signing.
    pub keys_at_enrolment: bool,
    /// An external RFC 3161 time-stamping authority the signatures' time
    /// stamps come from (`TUATON_TSA_URL`); Tuaton's own TSA when `None`.
    /// The transport is [`crate::IdmParts::external_tsa`].
    pub time_stamp_url: Option<url::Url>,
    /// The external TSA's certificate (DER, `TUATON_TSA_CERT`): its tokens
    /// must be signed with this certificate's key.
    pub time_stamp_certificate: Option<Vec<u8>>,
}

impl CaPlan {
    /// The names a development server's hierarchy carries.
    pub fn named(settings: CaSettings, dev: bool) -> Self {
        let suffix = if dev { " (development)" } else { "" };
        Self {
            root_name: format!("Tuaton Root CA{suffix}"),
            issuing_name: format!("Tuaton Issuing CA{suffix}"),
            tsa_name: format!("Tuaton Time-Stamping Authority{suffix}"),
            ocsp_name: format!("Tuaton OCSP Responder{suffix}"),
            keys_at_enrolment: false,
            time_stamp_url: None,
            time_stamp_certificate: None,
            settings,
        }
    }
}

fn role_of(purpose: KeyPurpose) -> Option<CertificateRole> {
    match purpose {
        KeyPurpose::RootCa => Some(CertificateRole::Root),
        KeyPurpose::DocumentCa => Some(CertificateRole::IssuingCa),
        KeyPurpose::Tsa => Some(CertificateRole::Tsa),
        KeyPurpose::Ocsp => Some(CertificateRole::Ocsp),
        _ => None,
    }
}

/// The purposes of the hierarchy, issuers before what they issue.
const HIERARCHY: [KeyPurpose; 4] = [
    KeyPurpose::RootCa,
    KeyPurpose::DocumentCa,
    KeyPurpose::Tsa,
    KeyPurpose::Ocsp,
];

fn key_ref(key: &ManagedKey) -> Result<KeyRef, CustodyError> {
    key.key_ref.parse().map_err(|source| CustodyError::Key {
        id: key.id.clone(),
        source,
    })
}

/// Whether `key` needs a (new) certificate at `now`: it is pending or
/// active and none of its certificates is valid long enough. A CA key is
/// certified once; a responder's certificate is renewed before it ends. A
/// key one of whose certificates was revoked (for any reason but
/// `superseded`) is never certified again: the operator distrusts it, and
/// rotates it (docs/operators/pki.md).
fn needs_certificate(key: &ManagedKey, certs: &[StoredCertificate], now: OffsetDateTime) -> bool {
    if !matches!(key.state, KeyState::Pending | KeyState::Active) {
        return false;
    }
    let mine = certs.iter().filter(|c| c.key_id == key.id);
    // `superseded` says only that another certificate took its place.
    if mine
        .clone()
        .any(|c| c.revoked.as_ref().is_some_and(|r| r.reason != "superseded"))
    {
        return false;
    }
    match key.purpose {
        KeyPurpose::RootCa | KeyPurpose::DocumentCa => mine.count() == 0,
        _ => !mine
            .into_iter()
            .any(|c| c.revoked.is_none() && c.valid_at(now) && c.not_after - now > RENEW_BEFORE),
    }
}

/// The authority of `purpose`'s active key, from its stored certificate.
fn active_authority<'a>(
    purpose: KeyPurpose,
    all_keys: &[ManagedKey],
    certs: &'a [StoredCertificate],
    now: OffsetDateTime,
) -> Option<(&'a StoredCertificate, ManagedKey)> {
    let key = all_keys
        .iter()
        .find(|k| k.purpose == purpose && k.state == KeyState::Active && k.activate_after <= now)?;
    let cert = certs
        .iter()
        .find(|c| c.key_id == key.id && c.revoked.is_none() && c.valid_at(now))?;
    Some((cert, key.clone()))
}

/// Runs a certificate's making off the async workers: rcgen signs through
/// the backend, which blocks (an HSM call).
pub(crate) async fn make<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, tuaton_pki::PkiError> + Send + 'static,
) -> Result<T, CustodyError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| CustodyError::Interrupted)?
        .map_err(CustodyError::Pki)
}

/// `key` in `backend`, as the CA signs with it.
pub(crate) fn backend_key<'a>(
    backend: &'a Arc<dyn KeyBackend>,
    key: &ManagedKey,
) -> Result<BackendKey<'a>, tuaton_pki::PkiError> {
    Ok(BackendKey {
        backend,
        key: key.key_ref.parse().map_err(tuaton_pki::PkiError::Key)?,
        alg: key.algorithm,
    })
}

/// The authority `key` is, rebuilt from its stored certificate `der` and
/// published under the key's id.
pub(crate) fn authority(
    backend: &Arc<dyn KeyBackend>,
    der: &[u8],
    key: &ManagedKey,
    settings: &CaSettings,
) -> Result<Authority, tuaton_pki::PkiError> {
    Authority::from_certificate(der, &backend_key(backend, key)?, &key.id, settings)
}

/// Certifies every key of the hierarchy that needs it, issuers first, and
/// returns the certificates stored. With `make_keys`, a purpose without an
/// active key gets one first (a development server's first start, `tuaton
/// pki init`). Safe to run again and from several processes: a CA key is
/// certified at most once (the store refuses a second), so the loser of a
/// race stores nothing.
pub async fn certify_hierarchy(
    store: &Store,
    backend: &Arc<dyn KeyBackend>,
    plan: &CaPlan,
    now: OffsetDateTime,
    actor: &str,
    make_keys: bool,
) -> Result<Vec<StoredCertificate>, CustodyError> {
    if make_keys {
        for purpose in HIERARCHY {
            ensure_active(store, backend, purpose, HIERARCHY_ALGORITHM, now).await?;
        }
    }
    let mut stored = Vec::new();
    for purpose in HIERARCHY {
        let (all_keys, certs) = {
            let mut conn = store.conn().await?;
            let all_keys = keys::list(conn.conn()).await?;
            let certs = certificates::hierarchy(conn.conn()).await?;
            (all_keys, certs)
        };
        let role = role_of(purpose).ok_or(CustodyError::Interrupted)?;
        let due: Vec<ManagedKey> = all_keys
            .iter()
            .filter(|k| k.purpose == purpose && needs_certificate(k, &certs, now))
            .cloned()
            .collect();
        if due.is_empty() {
            continue;
        }
        let issuer = match purpose {
            KeyPurpose::RootCa => None,
            KeyPurpose::DocumentCa => Some(
                active_authority(KeyPurpose::RootCa, &all_keys, &certs, now)
                    .ok_or(CustodyError::NoCertificate("root CA"))?,
            ),
            _ => Some(
                active_authority(KeyPurpose::DocumentCa, &all_keys, &certs, now)
                    .ok_or(CustodyError::NoCertificate("issuing CA"))?,
            ),
        };
        for key in due {
            let issued = issue(backend, plan, purpose, &key, issuer.clone(), now).await?;
            let facts = issued.facts().map_err(CustodyError::Pki)?;
            let new = NewCertificate {
                role,
                key_id: &key.id,
                issuer_id: issuer.as_ref().map(|(c, _)| c.id.as_str()),
                account_id: None,
                serial_hex: facts.serial_hex,
                der: issued.der(),
                not_before: facts.not_before,
                not_after: facts.not_after,
                represents: None,
            };
            let mut tx = store.begin().await?;
            match certificates::insert(&mut tx, &new, now, actor).await {
                Ok(c) => {
                    tx.commit().await?;
                    tracing::info!(role = %role, key = %key.id, certificate = %c.id, "certificate issued");
                    stored.push(c);
                }
                // Another process certified the key meanwhile.
                Err(tuaton_store::StoreError::Conflict { .. }) => {
                    tx.rollback().await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(stored)
}

async fn issue(
    backend: &Arc<dyn KeyBackend>,
    plan: &CaPlan,
    purpose: KeyPurpose,
    key: &ManagedKey,
    issuer: Option<(&StoredCertificate, ManagedKey)>,
    now: OffsetDateTime,
) -> Result<Issued, CustodyError> {
    let backend = backend.clone();
    let plan = plan.clone();
    let key = key.clone();
    let issuer = issuer.map(|(c, k)| (c.der.clone(), k));
    make(move || {
        let subject = backend_key(&backend, &key)?;
        let Some((issuer_der, issuer_key)) = issuer else {
            let root = Authority::new_root(
                &subject,
                &key.id,
                &plan.settings,
                &plan.root_name,
                ROOT_VALIDITY,
                now,
            )?;
            return Ok(root.certificate().clone());
        };
        let authority = authority(&backend, &issuer_der, &issuer_key, &plan.settings)?;
        match purpose {
            KeyPurpose::DocumentCa => Ok(authority
                .issue_ca(&subject, &key.id, &plan.issuing_name, ISSUING_VALIDITY, now)?
                .certificate()
                .clone()),
            KeyPurpose::Tsa => authority.issue_tsa(&subject, &plan.tsa_name, TSA_VALIDITY, now),
            _ => authority.issue_ocsp(&subject, &plan.ocsp_name, OCSP_VALIDITY, now),
        }
    })
    .await
}

/// A stored certificate and the certificates above it up to (and without)
/// the root, nearest first.
pub async fn chain_of(
    store: &Store,
    certificate: &StoredCertificate,
) -> Result<Vec<StoredCertificate>, CustodyError> {
    let mut conn = store.conn().await?;
    let mut chain = Vec::new();
    let mut next = certificate.issuer_id.clone();
    // A chain is at most root, issuing CA, end entity; a longer one is a
    // corrupt table, not a reason to loop.
    for _ in 0..4 {
        let Some(id) = next else { break };
        let Some(c) = certificates::by_id(conn.conn(), &id).await? else {
            return Err(tuaton_store::StoreError::Corrupt(format!(
                "certificate {id} is named as an issuer but not stored"
            ))
            .into());
        };
        next = c.issuer_id.clone();
        if c.role != CertificateRole::Root {
            chain.push(c);
        }
    }
    Ok(chain)
}

/// The certificate of the active key of `purpose` valid at `now`, with the
/// key.
pub async fn current(
    store: &Store,
    purpose: KeyPurpose,
    now: OffsetDateTime,
) -> Result<(ManagedKey, StoredCertificate), CustodyError> {
    let what = match purpose {
        KeyPurpose::RootCa => "root CA",
        KeyPurpose::DocumentCa => "issuing CA",
        KeyPurpose::Tsa => "time-stamping authority",
        _ => "OCSP responder",
    };
    let mut conn = store.conn().await?;
    let key = keys::signing_key(conn.conn(), purpose, now)
        .await?
        .ok_or(CustodyError::NoCertificate(what))?;
    let cert = certificates::of_key(conn.conn(), &key.id)
        .await?
        .into_iter()
        .find(|c| c.revoked.is_none() && c.valid_at(now))
        .ok_or(CustodyError::NoCertificate(what))?;
    Ok((key, cert))
}

/// The time-stamping authority as it signs at `now`: the active TSA key,
/// its current certificate and the chain above it, under the
/// deployment's policy.
pub async fn time_stamper(
    store: &Store,
    backend: &Arc<dyn KeyBackend>,
    plan: &CaPlan,
    now: OffsetDateTime,
) -> Result<tuaton_sign::tsp::TimeStamper, CustodyError> {
    let (key, cert) = current(store, KeyPurpose::Tsa, now).await?;
    let chain: Vec<Vec<u8>> = chain_of(store, &cert)
        .await?
        .into_iter()
        .map(|c| c.der)
        .collect();
    let backend = backend.clone();
    let key_ref = key_ref(&key)?;
    let policy = plan.settings.policy;
    tokio::task::spawn_blocking(move || {
        tuaton_sign::tsp::TimeStamper::new(
            backend,
            key_ref,
            key.algorithm,
            &cert.der,
            &chain,
            policy,
        )
    })
    .await
    .map_err(|_| CustodyError::Interrupted)?
    .map_err(|e| CustodyError::TimeStamp(e.to_string()))
}

/// The published certificate of an authority by its published name (its
/// key's id), for the AIA `caIssuers` URL.
pub async fn published_certificate(
    store: &Store,
    name: &str,
) -> Result<Option<StoredCertificate>, CustodyError> {
    let mut conn = store.conn().await?;
    let certs = certificates::of_key(conn.conn(), name).await?;
    Ok(certs
        .into_iter()
        .find(|c| matches!(c.role, CertificateRole::Root | CertificateRole::IssuingCa)))
}

impl crate::Idm {
    /// The hierarchy this deployment runs; `None` when no CA is configured.
    pub fn ca_plan(&self) -> Option<&CaPlan> {
        self.parts().ca.as_ref()
    }

    pub(crate) fn required_plan(&self) -> Result<&CaPlan, crate::IdmError> {
        self.ca_plan()
            .ok_or(CustodyError::NoCertificate("certificate authority").into())
    }

    /// Certifies the hierarchy's keys that need it ([`certify_hierarchy`]);
    /// `make_keys` makes a missing key of each purpose first.
    pub async fn certify_hierarchy(
        &self,
        now: OffsetDateTime,
        actor: &str,
        make_keys: bool,
    ) -> Result<Vec<StoredCertificate>, crate::IdmError> {
        let plan = self.required_plan()?;
        Ok(certify_hierarchy(self.store(), self.keys(), plan, now, actor, make_keys).await?)
    }

    /// Answers an RFC 3161 `TimeStampReq` (DER) with a `TimeStampResp`
    /// (DER): a token from the active TSA key, or a rejection naming what
    /// is wrong with the request.
    pub async fn time_stamp(
        &self,
        request: Vec<u8>,
        now: OffsetDateTime,
    ) -> Result<Vec<u8>, crate::IdmError> {
        let plan = self.required_plan()?;
        let stamper = time_stamper(self.store(), self.keys(), plan, now).await?;
        tokio::task::spawn_blocking(move || stamper.respond(&request, now))
            .await
            .map_err(|_| CustodyError::Interrupted)?
            .map_err(|e| CustodyError::TimeStamp(e.to_string()).into())
    }

    /// The OCSP responder (RFC 6960): the answer to `request` (DER), always
    /// an OCSP response: statuses for certificates of one issuing CA,
    /// signed by its delegated responder (or, without a valid one, by the
    /// CA's own key), or a refusal (malformed, unauthorized, internal
    /// error). Only an unconfigured CA is an error.
    pub async fn ocsp(
        &self,
        request: &[u8],
        now: OffsetDateTime,
    ) -> Result<Vec<u8>, crate::IdmError> {
        use tuaton_sign::ocsp::{self, Refusal, Status};
        self.required_plan()?;
        let hierarchy = certificates::hierarchy(self.store().conn().await?.conn()).await?;
        let mut named = Vec::new();
        let mut authorities = Vec::new();
        for ca in hierarchy
            .iter()
            .filter(|c| c.role == CertificateRole::IssuingCa)
        {
            match ocsp::Authority::of(&ca.der) {
                Ok(a) => {
                    named.push(ca);
                    authorities.push(a);
                }
                Err(e) => {
                    tracing::warn!(certificate = %ca.id, error = %e, "an issuing CA's stored certificate cannot be read; OCSP does not answer for it")
                }
            }
        }
        let questions = match ocsp::read(request, &authorities) {
            Ok(q) => q,
            Err(refusal) => return Ok(refusal.response()),
        };
        let ca = named[questions.authority];
        let mut statuses = Vec::with_capacity(questions.serials.len());
        let responder = {
            let mut conn = self.store().conn().await?;
            for serial in &questions.serials {
                let serial = tuaton_pki::serial_hex(serial);
                let found = certificates::by_issuer_serial(conn.conn(), &ca.id, &serial).await?;
                statuses.push(match found {
                    None => Status::Unknown,
                    Some(c) => match c.revoked {
                        Some(r) => Status::Revoked {
                            at: r.at,
                            reason: r.reason,
                        },
                        None => Status::Good,
                    },
                });
            }
            // The CA's delegated responder valid now, newest first; the
            // CA's own key without one.
            let mut delegated = None;
            for c in hierarchy.iter().rev() {
                if c.role == CertificateRole::Ocsp
                    && c.issuer_id.as_deref() == Some(ca.id.as_str())
                    && c.revoked.is_none()
                    && c.valid_at(now)
                    && let Some(k) = keys::by_id(conn.conn(), &c.key_id).await?
                    && k.purpose == KeyPurpose::Ocsp
                    && k.state == keys::KeyState::Active
                {
                    delegated = Some((k, c));
                    break;
                }
            }
            match delegated {
                Some((k, c)) => (k, c.clone(), true),
                // The CA's own key, as its CRL is signed: an issuing CA's
                // key whose material is still there (a retired CA answers
                // for what it issued); otherwise the question is not one
                // this responder can answer.
                None => match keys::by_id(conn.conn(), &ca.key_id).await? {
                    Some(k)
                        if k.purpose == KeyPurpose::DocumentCa
                            && k.state != KeyState::Destroyed =>
                    {
                        (k, ca.clone(), false)
                    }
                    _ => {
                        tracing::warn!(certificate = %ca.id, "an issuing CA has no key to answer OCSP with");
                        return Ok(Refusal::Unauthorized.response());
                    }
                },
            }
        };
        let (key, cert, delegated) = responder;
        let backend = self.keys().clone();
        let key_ref = key_ref(&key)?;
        let answered = tokio::task::spawn_blocking(move || {
            let signer =
                tuaton_sign::CmsSigner::new(backend, key_ref, key.algorithm, &cert.der, &[])?;
            ocsp::answer(&questions, &statuses, &signer, delegated, now)
        })
        .await
        .map_err(|_| CustodyError::Interrupted)?;
        Ok(match answered {
            Ok(response) => response,
            Err(e) => {
                tracing::error!(error = %e, "an OCSP response could not be signed");
                Refusal::InternalError.response()
            }
        })
    }

    /// The DER certificate of the authority published as `name`
    /// (`/pki/ca/<name>.crt`), if there is one.
    pub async fn published_ca_certificate(
        &self,
        name: &str,
    ) -> Result<Option<Vec<u8>>, crate::IdmError> {
        Ok(published_certificate(self.store(), name)
            .await?
            .map(|c| c.der))
    }

    /// The root certificate valid now, which relying parties install as
    /// their trust anchor (`/pki/root.crt`).
    pub async fn root_certificate(&self, now: OffsetDateTime) -> Result<Vec<u8>, crate::IdmError> {
        self.required_plan()?;
        Ok(current(self.store(), KeyPurpose::RootCa, now).await?.1.der)
    }
}

/// How long a CRL is valid (its `nextUpdate`): relying parties fetch a new
/// one at least this often.
pub const CRL_VALIDITY: Duration = Duration::days(1);
/// How long one signed CRL is served again while nothing was revoked.
const CRL_REUSE: std::time::Duration = std::time::Duration::from_secs(3600);

/// A CRL as made: when, the revoked certificates it lists, its DER.
type MadeCrl = (std::time::Instant, Vec<String>, Arc<Vec<u8>>);

/// The CRLs made recently, per authority, with what they listed: a GET
/// does not sign again unless a revocation happened or an hour passed.
#[derive(Default)]
pub(crate) struct CrlCache(std::sync::Mutex<std::collections::HashMap<String, MadeCrl>>);

impl crate::Idm {
    /// The CRL of the authority published as `name` (its key's id),
    /// `/pki/ca/<name>.crl`: every certificate it issued that is revoked.
    /// Made through the backend (a retired issuing CA still signs its
    /// own); `None` when no CA is published under the name.
    pub async fn crl(
        &self,
        name: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Arc<Vec<u8>>>, crate::IdmError> {
        let plan = self.required_plan()?.clone();
        let Some(ca) = published_certificate(self.store(), name).await? else {
            return Ok(None);
        };
        let (key, revoked) = {
            let mut conn = self.store().conn().await?;
            let key = keys::by_id(conn.conn(), &ca.key_id).await?;
            (key, certificates::revoked_by(conn.conn(), &ca.id).await?)
        };
        let Some(key) = key.filter(|k| k.state != KeyState::Destroyed) else {
            return Ok(None);
        };
        let listed: Vec<String> = revoked.iter().map(|c| c.id.clone()).collect();
        let cache = &self.crl_cache().0;
        if let Some((at, was, der)) = cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            && *was == listed
            && at.elapsed() < CRL_REUSE
        {
            return Ok(Some(der.clone()));
        }
        // A row that cannot be listed (a serial not hex, a reason RFC 5280
        // does not name) is left out and reported, not allowed to stop the
        // CRL for every other certificate.
        let entries: Vec<(String, OffsetDateTime, String)> = revoked
            .into_iter()
            .filter(|e| {
                let fits = tuaton_pki::crl_entry_fits(&e.serial_hex, &e.reason);
                if !fits {
                    tracing::error!(certificate = %e.id, "a revoked certificate cannot be listed in the CRL");
                }
                fits
            })
            .map(|e| (e.serial_hex, e.at, e.reason))
            .collect();
        let backend = self.keys().clone();
        // Milliseconds: grows from one CRL to the next, also across instances.
        let number = u64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        let der = make(move || {
            authority(&backend, &ca.der, &key, &plan.settings)?.crl(
                &entries,
                number,
                now,
                now + CRL_VALIDITY,
            )
        })
        .await?;
        let der = Arc::new(der);
        cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(
                name.to_owned(),
                (std::time::Instant::now(), listed, der.clone()),
            );
        Ok(Some(der))
    }
}

/// The signer's, TSA's or OCSP responder's certificate with serial
/// `serial_hex` (as `tuaton pki list` shows it, or with colons, in either
/// case); a CA certificate is not named this way. `reason`, when given,
/// must be an RFC 5280 reason name.
async fn named_certificate(
    store: &Store,
    serial_hex: &str,
    reason: Option<&str>,
) -> Result<StoredCertificate, crate::IdmError> {
    let reason = reason.unwrap_or("unspecified");
    let bad = |message: String| crate::IdmError::Invalid {
        code: tuaton_core::ErrorCode::InvalidField,
        message,
    };
    // As `tuaton pki list` shows it, or with colons, in either case.
    let digits = serial_hex
        .trim()
        .chars()
        .filter(|c| *c != ':')
        .collect::<String>()
        .to_ascii_lowercase();
    let padded = if digits.len() % 2 == 1 {
        format!("0{digits}")
    } else {
        digits
    };
    let bytes = hex::decode(&padded).map_err(|_| bad("a serial number is hex digits".into()))?;
    let serial = tuaton_pki::serial_hex(&bytes);
    if serial.is_empty() {
        return Err(bad("a serial number is hex digits, not zero".into()));
    }
    if !tuaton_pki::crl_entry_fits(&serial, reason) {
        return Err(bad(format!(
            "{reason:?} is not a revocation reason: unspecified, keyCompromise, affiliationChanged, superseded, cessationOfOperation, certificateHold or privilegeWithdrawn"
        )));
    }
    let found = certificates::by_serial(store.conn().await?.conn(), &serial).await?;
    let mut found: Vec<StoredCertificate> = found
        .into_iter()
        .filter(|c| {
            matches!(
                c.role,
                CertificateRole::Signer | CertificateRole::Tsa | CertificateRole::Ocsp
            )
        })
        .collect();
    let Some(certificate) = found.pop() else {
        return Err(bad(format!(
            "no signer, TSA or OCSP certificate has serial {serial}"
        )));
    };
    if !found.is_empty() {
        return Err(bad(format!(
            "more than one certificate has serial {serial}"
        )));
    }
    Ok(certificate)
}

/// Revokes the certificate with serial `serial_hex` (a signer's, the TSA's
/// or the OCSP responder's; CA certificates are not revoked this way) for
/// `reason`, an RFC 5280 reason name, audited with `actor`. The CRL and
/// OCSP answer with it from then on. `certificateHold` suspends it until
/// [`release_certificate`]; a held certificate may be revoked for good.
pub async fn revoke_certificate(
    store: &Store,
    serial_hex: &str,
    reason: &str,
    actor: &str,
    now: OffsetDateTime,
) -> Result<StoredCertificate, crate::IdmError> {
    let bad = |message: String| crate::IdmError::Invalid {
        code: tuaton_core::ErrorCode::InvalidField,
        message,
    };
    let certificate = named_certificate(store, serial_hex, Some(reason)).await?;
    let mut tx = store.begin().await?;
    if !certificates::revoke(&mut tx, &certificate.id, reason, now, actor).await? {
        drop(tx);
        return Err(bad(format!(
            "certificate {} is revoked already",
            certificate.id
        )));
    }
    tx.commit().await?;
    Ok(
        certificates::by_id(store.conn().await?.conn(), &certificate.id)
            .await?
            .unwrap_or(certificate),
    )
}

/// Takes the certificate with serial `serial_hex` off hold
/// (`certificateHold`), audited with `actor`: it is valid again, and the
/// CRL and OCSP say so from then on. A certificate revoked for another
/// reason stays revoked.
pub async fn release_certificate(
    store: &Store,
    serial_hex: &str,
    actor: &str,
    now: OffsetDateTime,
) -> Result<StoredCertificate, crate::IdmError> {
    let certificate = named_certificate(store, serial_hex, None).await?;
    // Only a certificate whose key still exists, of an account still in
    // service, is brought back.
    let key = tuaton_store::keys::by_id(store.conn().await?.conn(), &certificate.key_id).await?;
    let account = match &certificate.account_id {
        Some(a) => tuaton_store::accounts::by_id(store.conn().await?.conn(), a).await?,
        None => None,
    };
    let ended = key.is_none_or(|k| k.state == KeyState::Destroyed)
        || (certificate.account_id.is_some()
            && !account.is_some_and(|a| a.state == tuaton_store::accounts::AccountState::Active));
    if ended {
        return Err(crate::IdmError::Invalid {
            code: tuaton_core::ErrorCode::InvalidField,
            message: format!(
                "certificate {} is not released: its key is destroyed or its account is not active",
                certificate.id
            ),
        });
    }
    let mut tx = store.begin().await?;
    if !certificates::release(&mut tx, &certificate.id, now, actor).await? {
        drop(tx);
        return Err(crate::IdmError::Invalid {
            code: tuaton_core::ErrorCode::InvalidField,
            message: format!("certificate {} is not on hold", certificate.id),
        });
    }
    tx.commit().await?;
    Ok(
        certificates::by_id(store.conn().await?.conn(), &certificate.id)
            .await?
            .unwrap_or(certificate),
    )
}
