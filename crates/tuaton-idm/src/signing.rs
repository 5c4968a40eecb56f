//! Signing under sole control: a person asks to sign documents (their
//! names, sizes and SHA-256 digests), sees them, and confirms with a
//! passkey whose WebAuthn challenge commits to exactly those digests, the
//! request's id and the signer certificate. Only then does the person's
//! own key sign, in the key backend, one CAdES B-T detached signature per
//! document, or, for a PDF sent with its bytes, a PAdES B-T signature in
//! the file (the challenge then also commits to the digest of the bytes
//! the signature covers). Tuaton keeps no document: a PDF is sent again to
//! finish, and must be the same file. The confirmation is kept with the
//! request as evidence, and the signing is one audit record.
//!
//! The person's key is made in the backend at their first signing, never
//! exportable, and certified by the active issuing CA with their proofed
//! identity (docs/signing.md).

use std::sync::Arc;

use ring::digest::{Context, SHA256};
use serde_json::json;
use time::OffsetDateTime;
use tuaton_core::{AccountId, CitizenId, ErrorCode, Ial, JuristicId, SignatureAlgorithm};
use tuaton_keys::{KeyBackend, KeySpec};
use tuaton_passkeys::StoredCredential;
use tuaton_pki::{SemanticsId, Signer, semantics_identifier};
use tuaton_proofing::Company;
use tuaton_store::accounts::{Account, AccountState};
use tuaton_store::agency_documents::{self as agency, AgencyDocument, DocumentSignature};
use tuaton_store::batch::Batch;
use tuaton_store::ceremonies::{self, CeremonyKind};
use tuaton_store::certificates::{self, CertificateRole, NewCertificate, StoredCertificate};
use tuaton_store::keys::{self, KeyPurpose, ManagedKey, NewKey};
use tuaton_store::passkeys::{self as creds, PasskeyState};
use tuaton_store::signing::{
    self as requests, JwsPlan, NewRequest, PdfPlan, RequestState, RequestedDocument, Visible,
};
use webauthn_rs::prelude::{PublicKeyCredential, RequestChallengeResponse};

use crate::audit::{self, Actor, action};
use crate::custody::CustodyError;
use crate::login::Assertion;
use crate::pki::{authority, backend_key, chain_of, current, make};
use crate::sessions::ActiveSession;
use crate::{Idm, IdmError};

/// The most documents one confirmation signs.
pub const MAX_DOCUMENTS: usize = 100;
/// The longest document name accepted, in characters.
pub const MAX_NAME_CHARS: usize = 255;
/// The identity level a signer certificate needs.
pub const SIGNING_IAL: Ial = Ial::Ial2_1;
/// The most bytes of documents sent whole (PDFs, JSON, XML) one request
/// takes, all together.
pub const MAX_SENT_BYTES: usize = 20 * 1024 * 1024;
/// Documents sent whole being checked, or PDFs prepared, at once, across
/// all requests.
static PREPARING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

const CONFIRM: Assertion = Assertion {
    kind: CeremonyKind::SigningConfirmation,
    action: action::SIGN,
};

/// A document to sign, as the signer's device describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentDigest {
    /// The file's name as the signer sees it.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256.
    pub sha256: [u8; 32],
    /// A PDF to sign in the file (PAdES), with its bytes; a detached
    /// signature (CAdES) over the digest without one.
    pub pdf: Option<PdfDocument>,
    /// A JSON document to sign with a JWS, with its bytes.
    pub json: Option<JsonDocument>,
    /// An XML document to sign with an enveloped XAdES signature: its bytes.
    pub xml: Option<Vec<u8>>,
}

impl DocumentDigest {
    /// A document described by its digest only (a detached CAdES
    /// signature).
    pub fn digest_only(name: String, size: u64, sha256: [u8; 32]) -> Self {
        Self {
            name,
            size,
            sha256,
            pdf: None,
            json: None,
            xml: None,
        }
    }

    /// The bytes sent whole, if any, and how many forms were asked for.
    fn sent(&self) -> (Option<&[u8]>, usize) {
        let forms = [
            self.pdf.as_ref().map(|p| p.bytes.as_slice()),
            self.json.as_ref().map(|j| j.bytes.as_slice()),
            self.xml.as_deref(),
        ];
        let count = forms.iter().flatten().count();
        (forms.into_iter().flatten().next(), count)
    }
}

/// A JSON document's bytes and how its JWS is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonDocument {
    /// The document.
    pub bytes: Vec<u8>,
    /// A detached JWS over the document's own bytes (RFC 7797), or one
    /// that carries the document.
    pub detached: bool,
}

/// A PDF's bytes and where its visible signature goes, if anywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdfDocument {
    /// The file.
    pub bytes: Vec<u8>,
    /// A visible signature's page (1 for the first) and box, `[x1, y1, x2,
    /// y2]` in points; invisible without one.
    pub visible: Option<(u32, [i32; 4])>,
}

/// A signing request begun: show `documents` to the person and give
/// `options` to `navigator.credentials.get`; the assertion finishes it.
#[derive(Debug)]
pub struct SigningChallenge {
    /// The request's id.
    pub request_id: String,
    /// The WebAuthn request options; the challenge commits to the request.
    pub options: RequestChallengeResponse,
    /// The documents, in the order they are signed.
    pub documents: Vec<RequestedDocument>,
    /// The signer certificate the signatures will carry, DER.
    pub certificate: Vec<u8>,
    /// After this the request is not signed.
    pub expires_at: OffsetDateTime,
}

/// A signing request's confirmation, verified and not yet spent.
pub(crate) struct Confirmed<'r> {
    /// The signer certificate the request signs under.
    pub certificate: StoredCertificate,
    /// The passkey that confirmed it.
    pub recognised: crate::login::Recognised<'r>,
    /// The assertion's outcome (its counter and flags), recorded with the
    /// signing.
    pub outcome: tuaton_passkeys::LoginOutcome,
    /// The assertion, kept with the request.
    pub evidence: serde_json::Value,
}

/// One signed document.
#[derive(Debug, Clone)]
pub struct SignedDocument {
    /// Its name.
    pub name: String,
    /// Its SHA-256, hex.
    pub sha256: String,
    /// The signature, in the document's format.
    pub signed: Signed,
}

/// A signature as its format gives it.
#[derive(Debug, Clone)]
pub enum Signed {
    /// A CAdES B-T detached signature (`.p7s`, DER).
    Detached(Vec<u8>),
    /// The PDF with its PAdES B-T signature.
    Pdf(Vec<u8>),
    /// A JWS: its compact serialisation (when it has one) and its
    /// flattened JSON one.
    Jws {
        /// `header.payload.signature`.
        compact: Option<String>,
        /// The flattened JSON serialisation.
        json: serde_json::Value,
    },
    /// The XML document with its enveloped XAdES B-T signature.
    Xml(Vec<u8>),
}

impl Signed {
    /// The format's name: `CAdES-B-T`, `PAdES-B-T`, `JWS` or `XAdES-B-T`.
    pub fn format(&self) -> &'static str {
        match self {
            Self::Detached(_) => CADES,
            Self::Pdf(_) => PADES,
            Self::Jws { .. } => JWS,
            Self::Xml(_) => XADES,
        }
    }
}

const CADES: &str = "CAdES-B-T";
const PADES: &str = "PAdES-B-T";
const JWS: &str = "JWS";
const XADES: &str = "XAdES-B-T";
/// A hash an agency computed, signed as it is (CSC `signatures/signHash`).
pub(crate) const HASH: &str = "signHash";

/// The format a requested document is signed in.
pub fn format_of(d: &RequestedDocument) -> &'static str {
    if d.hash_only {
        HASH
    } else if d.pdf.is_some() {
        PADES
    } else if d.jws.is_some() {
        JWS
    } else if d.xades {
        XADES
    } else {
        CADES
    }
}

/// Checks the documents a device describes: one to [`MAX_DOCUMENTS`], each
/// named (no control characters, at most [`MAX_NAME_CHARS`]) and not empty.
pub fn check_documents(documents: &[DocumentDigest]) -> Result<Vec<RequestedDocument>, IdmError> {
    let bad = |message: String| IdmError::Invalid {
        code: ErrorCode::InvalidDocuments,
        message,
    };
    if documents.is_empty() || documents.len() > MAX_DOCUMENTS {
        return Err(bad(format!(
            "a signing request has 1 to {MAX_DOCUMENTS} documents"
        )));
    }
    let sent: usize = documents
        .iter()
        .map(|d| d.sent().0.map_or(0, <[u8]>::len))
        .sum();
    if sent > MAX_SENT_BYTES {
        return Err(bad(format!(
            "the documents sent whole in one request are at most {} MiB together",
            MAX_SENT_BYTES >> 20
        )));
    }
    documents
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let chars = d.name.chars().count();
            if chars == 0 || chars > MAX_NAME_CHARS || !shown_name(&d.name) {
                return Err(bad(format!(
                    "document {i}: a name of 1 to {MAX_NAME_CHARS} characters, without control or bidirectional control characters"
                )));
            }
            if d.size == 0 {
                return Err(bad(format!("document {i}: an empty file is not signed")));
            }
            let (sent, forms) = d.sent();
            if forms > 1 {
                return Err(bad(format!(
                    "document {i}: a PDF, a JSON or an XML document, one of them"
                )));
            }
            // A PDF's SHA-256 is taken in the pass that prepares it
            // (`planned_pdf`), not in one of its own.
            if sent.is_some_and(|bytes| !is_the_file(d, bytes, d.pdf.is_some())) {
                return Err(bad(not_described(i)));
            }
            if let Some(json) = &d.json {
                tuaton_sign::jws::check(&json.bytes)
                    .map_err(|e| bad(format!("document {i}: {e}")))?;
            }
            if let Some(xml) = &d.xml {
                tuaton_sign::xades::check(xml).map_err(|e| bad(format!("document {i}: {e}")))?;
            }
            if let Some(pdf) = &d.pdf
                && let Some((page, [x1, y1, x2, y2])) = pdf.visible
            {
                let within = |c: i32| (-14_400..=14_400).contains(&c);
                if page == 0 || x2 <= x1 || y2 <= y1 || ![x1, y1, x2, y2].into_iter().all(within) {
                    return Err(bad(format!(
                        "document {i}: a visible signature needs a page from 1 and a box [x1, y1, x2, y2] with x1 < x2 and y1 < y2"
                    )));
                }
            }
            Ok(RequestedDocument {
                name: d.name.clone(),
                size: d.size,
                sha256: hex::encode(d.sha256),
                pdf: None,
                jws: d.json.as_ref().map(|j| JwsPlan {
                    detached: j.detached,
                }),
                xades: d.xml.is_some(),
                hash_only: false,
            })
        })
        .collect()
}

/// Why document `i` is refused when its bytes are not the file described.
fn not_described(i: usize) -> String {
    format!("document {i}: the bytes sent are not the file described (its size and SHA-256)")
}

/// Why document `i` is refused at finishing when its bytes are not the
/// file confirmed.
fn not_confirmed(i: usize) -> IdmError {
    IdmError::Invalid {
        code: ErrorCode::InvalidDocuments,
        message: format!("document {i}: this is not the document that was confirmed"),
    }
}

/// Whether `bytes` are the file `d` describes: its size, and its SHA-256
/// unless the caller takes that later in a pass of its own (`hashed_later`:
/// a PDF, hashed as it is prepared).
fn is_the_file(d: &DocumentDigest, bytes: &[u8], hashed_later: bool) -> bool {
    bytes.len() as u64 == d.size
        && (hashed_later || ring::digest::digest(&SHA256, bytes).as_ref() == d.sha256)
}

/// The confirmation's challenge: SHA-256 over a label, the request's id,
/// the signer certificate's SHA-256 and each document's digest, size and
/// name (and for a PDF signed in the file, its pages and the digest of the
/// bytes its signature covers), each length-prefixed, so no two requests
/// share one.
pub fn confirmation_challenge(
    request_id: &str,
    certificate_der: &[u8],
    documents: &[RequestedDocument],
) -> [u8; 32] {
    let mut c = Context::new(&SHA256);
    let mut part = |bytes: &[u8]| {
        c.update(&(bytes.len() as u64).to_be_bytes());
        c.update(bytes);
    };
    part(b"tuaton signing confirmation v1");
    part(request_id.as_bytes());
    part(ring::digest::digest(&SHA256, certificate_der).as_ref());
    part(&(documents.len() as u64).to_be_bytes());
    for d in documents {
        part(d.sha256.as_bytes());
        part(&d.size.to_be_bytes());
        part(d.name.as_bytes());
        if let Some(pdf) = &d.pdf {
            part(b"pades");
            part(&pdf.pages.to_be_bytes());
            part(pdf.signed_digest.as_bytes());
        }
        if let Some(jws) = &d.jws {
            part(b"jws");
            part(&[u8::from(jws.detached)]);
        }
        if d.xades {
            part(b"xades");
        }
        if d.hash_only {
            part(b"hash");
        }
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(c.finish().as_ref());
    out
}

fn digest_bytes(hex_digest: &str) -> Result<[u8; 32], IdmError> {
    let bytes = hex::decode(hex_digest)
        .map_err(|_| IdmError::Internal("a stored document digest is not hex".into()))?;
    bytes
        .try_into()
        .map_err(|_| IdmError::Internal("a stored document digest is not SHA-256".into()))
}

/// What one document of a confirmed request becomes: a detached signature
/// over its digest, a signature in the prepared PDF, a JWS over the JSON
/// document, or an XAdES signature in the XML one.
pub(crate) enum Job {
    Detached([u8; 32]),
    InFile(tuaton_sign::pades::PreparedPdf),
    Jws(Vec<u8>, tuaton_sign::jws::JwsOptions),
    Xades(Vec<u8>),
}

/// The request's documents made ready to sign: each of `contents` (the
/// request's documents sent whole, PDFs, JSON and XML, in order) checked to be
/// the file confirmed, and a PDF prepared again, which must give the
/// digest the confirmation commits to.
async fn prepare_jobs(
    request: &requests::SigningRequest,
    contents: Vec<Vec<u8>>,
) -> Result<Vec<Job>, IdmError> {
    let wanted = request
        .documents
        .iter()
        .filter(|d| d.is_sent_whole())
        .count();
    if contents.len() != wanted {
        return Err(IdmError::Invalid {
            code: ErrorCode::InvalidDocuments,
            message: format!(
                "this request signs {wanted} document(s) sent whole; send each again, in order, to finish"
            ),
        });
    }
    let mut contents = contents.into_iter();
    let mut jobs = Vec::with_capacity(request.documents.len());
    for (i, d) in request.documents.iter().enumerate() {
        let digest = digest_bytes(&d.sha256)?;
        if !d.is_sent_whole() {
            jobs.push(Job::Detached(digest));
            continue;
        }
        let bytes = contents.next().unwrap_or_default();
        let described = DocumentDigest::digest_only(d.name.clone(), d.size, digest);
        // A PDF's SHA-256 is taken in the pass that prepares it, below.
        if !is_the_file(&described, &bytes, d.pdf.is_some()) {
            return Err(not_confirmed(i));
        }
        if d.xades {
            jobs.push(Job::Xades(bytes));
            continue;
        }
        let Some(plan) = &d.pdf else {
            let detached = d.jws.as_ref().is_some_and(|j| j.detached);
            jobs.push(Job::Jws(
                bytes,
                tuaton_sign::jws::JwsOptions {
                    detached,
                    unencoded: detached,
                },
            ));
            continue;
        };
        let prepared = prepare_pdf(i, bytes, plan, request.created).await?;
        if prepared.original_sha256() != &digest {
            return Err(not_confirmed(i));
        }
        if hex::encode(prepared.digest()) != plan.signed_digest {
            return Err(IdmError::Internal(
                "a PDF prepared again does not give the digest confirmed".into(),
            ));
        }
        jobs.push(Job::InFile(prepared));
    }
    Ok(jobs)
}

/// How the account's signature is laid out in `pdf`: the Thai name with
/// the Latin one beside it, the company a director signs for as the
/// reason, and for a visible signature a line for each and the time.
fn pdf_plan(
    account: &Account,
    company: Option<&Company>,
    pdf: &PdfDocument,
    now: OffsetDateTime,
) -> PdfPlan {
    let join = |g: &Option<String>, f: &Option<String>| {
        let name = format!(
            "{} {}",
            g.as_deref().unwrap_or_default(),
            f.as_deref().unwrap_or_default()
        );
        let name = name.trim().to_owned();
        (!name.is_empty()).then_some(name)
    };
    let thai = join(&account.thai_given, &account.thai_family);
    let latin = join(&account.en_given, &account.en_family);
    let name = match (&thai, &latin) {
        (Some(t), Some(l)) => format!("{t} ({l})"),
        (Some(n), None) | (None, Some(n)) => n.clone(),
        (None, None) => String::new(),
    };
    let reason = company.map(acting_for);
    let visible = pdf.visible.map(|(page, rect)| {
        let mut lines: Vec<String> = thai.iter().cloned().collect();
        lines.push(match &latin {
            Some(l) => format!("Digitally signed by {l}"),
            None => "Digitally signed".to_owned(),
        });
        lines.extend(reason.clone());
        lines.push(tuaton_sign::format_utc(
            now,
            time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second] UTC, Tuaton"
            ),
        ));
        Visible { page, rect, lines }
    });
    PdfPlan {
        pages: 0,
        signed_digest: String::new(),
        name,
        reason,
        visible,
    }
}

/// The line a director's signature gives as its reason: for whom.
fn acting_for(company: &Company) -> String {
    format!(
        "For {} ({})",
        company.name_en.as_deref().unwrap_or(&company.name_th),
        company.id.compact()
    )
}

/// Prepares `pdf` (document `i`) for `account`'s signature at `at`, for
/// `company` when a director signs for one: the incremental update laid
/// out as [`pdf_plan`] says, the plan (with the pages and the digest to
/// sign) kept in `doc`. The bytes were checked; preparing them is their
/// last use.
pub(crate) async fn planned_pdf(
    account: &Account,
    company: Option<&Company>,
    i: usize,
    pdf: &mut PdfDocument,
    doc: &mut RequestedDocument,
    at: OffsetDateTime,
) -> Result<tuaton_sign::pades::PreparedPdf, IdmError> {
    let mut plan = pdf_plan(account, company, pdf, at);
    let prepared = prepare_pdf(i, std::mem::take(&mut pdf.bytes), &plan, at).await?;
    if hex::encode(prepared.original_sha256()) != doc.sha256 {
        return Err(IdmError::Invalid {
            code: ErrorCode::InvalidDocuments,
            message: not_described(i),
        });
    }
    plan.pages = prepared.pages();
    plan.signed_digest = hex::encode(prepared.digest());
    doc.pdf = Some(plan);
    Ok(prepared)
}

async fn prepare_pdf(
    i: usize,
    bytes: Vec<u8>,
    plan: &PdfPlan,
    at: OffsetDateTime,
) -> Result<tuaton_sign::pades::PreparedPdf, IdmError> {
    let options = tuaton_sign::pades::PdfOptions {
        signing_time: at,
        signer_name: plan.name.clone(),
        reason: plan.reason.clone(),
        location: None,
        appearance: plan
            .visible
            .as_ref()
            .map(|v| tuaton_sign::pades::Appearance {
                page: v.page.saturating_sub(1),
                rect: v.rect.map(|c| c as f32),
                lines: v.lines.clone(),
            }),
        certify: None,
    };
    // A PDF is prepared on a blocking thread, a few at a time: the work is
    // bounded by the file, but cannot be stopped once begun.
    let _turn = PREPARING
        .acquire()
        .await
        .map_err(|_| CustodyError::Interrupted)?;
    tokio::task::spawn_blocking(move || tuaton_sign::pades::prepare(bytes, &options))
        .await
        .map_err(|_| CustodyError::Interrupted)?
        .map_err(|e| match e {
            tuaton_sign::SignError::Document(message) => IdmError::Invalid {
                code: ErrorCode::InvalidDocuments,
                message: format!("document {i}: {message}"),
            },
            other => IdmError::Internal(format!("preparing a PDF: {other}")),
        })
}

/// The RFC 5280 reason a representative's certificate is revoked for
/// when the registry no longer lists them as a director.
pub(crate) const AFFILIATION_CHANGED: &str = "affiliationChanged";

/// Whether the subject of `certificate` names exactly `company` as the
/// organisation its holder represents (and none when `company` is none).
fn names_company(
    certificate: &StoredCertificate,
    company: Option<&JuristicId>,
) -> Result<bool, IdmError> {
    let named = tuaton_pki::subject_ids(&certificate.der).map_err(CustodyError::Pki)?;
    Ok(named.organization == organisation_named(company))
}

/// Revokes, in `tx`, `account`'s representative certificates for
/// `company` (RFC 5280 `affiliationChanged`): the registry no longer lists
/// the person as its director, so no relying party should take a
/// signature under them as the company's. Each revocation is audited.
/// The person's own certificate, and those for other companies, stay; one
/// on hold is revoked for good.
pub(crate) async fn end_representation(
    tx: &mut tuaton_store::Tx,
    account: &AccountId,
    company: &JuristicId,
    now: OffsetDateTime,
) -> Result<(), IdmError> {
    let held = certificates::signers_not_ended(tx.conn(), account).await?;
    for c in held {
        if names_company(&c, Some(company))? {
            certificates::revoke(tx, &c.id, AFFILIATION_CHANGED, now, keys::SYSTEM_ACTOR).await?;
        }
    }
    Ok(())
}

/// The `organizationIdentifier` a certificate for `company` carries.
fn organisation_named(company: Option<&JuristicId>) -> Option<String> {
    company.map(|j| semantics_identifier(SemanticsId::Company(j)))
}

/// The account's verified citizen id, if it has one.
fn citizen_of(account: &Account) -> Option<CitizenId> {
    account
        .citizen_id
        .as_deref()
        .and_then(|c| CitizenId::parse(c).ok())
}

/// Whether `name` may be shown as the name of what a person signs: no
/// control characters, no bidirectional controls (which would show it in
/// another order than it is stored).
pub(crate) fn shown_name(name: &str) -> bool {
    !name
        .chars()
        .any(|c| c.is_control() || tuaton_oidc::credential::is_bidi_control(c))
}

/// Whether `account` may sign: active, proofed, at [`SIGNING_IAL`] or higher.
pub(crate) fn may_sign(account: &Account) -> Result<(), IdmError> {
    if account.state != AccountState::Active {
        return Err(IdmError::AccountNotActive);
    }
    if account.citizen_id.is_none() {
        return Err(IdmError::NotProofed);
    }
    if account.ial < SIGNING_IAL {
        return Err(IdmError::IalTooLow { needs: SIGNING_IAL });
    }
    Ok(())
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes)
}

impl Idm {
    /// The account, if it may sign: active, proofed at [`SIGNING_IAL`] or higher.
    pub(crate) async fn signer_account(
        &self,
        session: &ActiveSession,
    ) -> Result<Account, IdmError> {
        let account = self.account_of(session).await?;
        may_sign(&account)?;
        Ok(account)
    }

    /// Makes the signing key and certificate of `account` ahead of its
    /// first signing, when the deployment asks for it
    /// (`CaPlan::keys_at_enrolment`) and the account may sign. Best effort:
    /// a failure is logged and the first signing makes them instead.
    pub(crate) async fn prepare_signer(&self, account: &AccountId, now: OffsetDateTime) {
        if !self.ca_plan().is_some_and(|p| p.keys_at_enrolment) {
            return;
        }
        let made = async {
            let Some(account) =
                tuaton_store::accounts::by_id(self.store().conn().await?.conn(), account).await?
            else {
                return Ok::<_, IdmError>(());
            };
            if account.state != AccountState::Active
                || account.citizen_id.is_none()
                || account.ial < SIGNING_IAL
            {
                return Ok(());
            }
            let key = self.user_key(&account.id, now).await?;
            self.signer_certificate(&account, &key, None, now).await?;
            Ok(())
        }
        .await;
        if let Err(e) = made {
            tracing::warn!(account = %account, error = %e, "the signing key was not made at enrolment; the first signing makes it");
        }
    }

    /// The account's own signing key, made in the backend (active at
    /// once) when it has none.
    pub(crate) async fn user_key(
        &self,
        account: &AccountId,
        now: OffsetDateTime,
    ) -> Result<ManagedKey, IdmError> {
        if let Some(k) =
            keys::user_signing_key(self.store().conn().await?.conn(), account, now).await?
        {
            return Ok(k);
        }
        let backend = self.keys().clone();
        let key_ref =
            tokio::task::spawn_blocking(move || backend.generate(KeySpec::EcP256, "user-signing"))
                .await
                .map_err(|_| CustodyError::Interrupted)?
                .map_err(|source| CustodyError::Key {
                    id: "user-signing".into(),
                    source,
                })?;
        let recorded = async {
            let mut tx = self.store().begin().await?;
            let new = NewKey {
                purpose: KeyPurpose::UserSigning,
                account_id: Some(account.clone()),
                algorithm: SignatureAlgorithm::Es256,
                backend: self.keys().name().to_owned(),
                key_ref: key_ref.to_string(),
                activate_after: now,
                replaces: None,
            };
            let key = keys::insert_pending(&mut tx, &new, now, keys::SYSTEM_ACTOR).await?;
            tx.commit().await?;
            Ok::<_, keys::KeysError>(key)
        }
        .await;
        if recorded.is_err() {
            // Another request made the key meanwhile (or the store failed):
            // leave no orphan in the backend, unless the row was written
            // after all (a commit that failed to answer).
            let written = keys::list(self.store().conn().await?.conn())
                .await?
                .into_iter()
                .any(|k| k.key_ref == key_ref.to_string());
            if !written {
                let backend = self.keys().clone();
                let orphan = key_ref.clone();
                let _ = tokio::task::spawn_blocking(move || backend.destroy(&orphan)).await;
            }
        }
        keys::tick(self.store(), now)
            .await
            .map_err(|e| IdmError::Internal(format!("activating a signing key: {e}")))?;
        keys::user_signing_key(self.store().conn().await?.conn(), account, now)
            .await?
            .ok_or_else(|| IdmError::Internal("the signing key could not be made".into()))
    }

    /// The account's signer certificate valid now, issued by the active
    /// issuing CA when it has none (or none for its key): its own, or with
    /// `company`, the one that names it a representative of the company.
    pub(crate) async fn signer_certificate(
        &self,
        account: &Account,
        key: &ManagedKey,
        company: Option<&Company>,
        now: OffsetDateTime,
    ) -> Result<StoredCertificate, IdmError> {
        let existing = certificates::of_key(self.store().conn().await?.conn(), &key.id).await?;
        let signers = existing
            .into_iter()
            .filter(|c| c.role == CertificateRole::Signer);
        // A revoked certificate (a lost phone reported, say) stops the key:
        // no new certificate is made for it on the next request. Only a
        // representative's, revoked when the registry stopped listing them
        // as a director, does not: a director listed again signs under a
        // new one.
        let jid = company.map(|c| &c.id);
        let mut in_scope = Vec::new();
        for c in signers {
            let named = tuaton_pki::subject_ids(&c.der).map_err(CustodyError::Pki)?;
            match &c.revoked {
                Some(r) if r.reason == AFFILIATION_CHANGED && named.organization.is_some() => {}
                Some(_) => return Err(IdmError::CertificateRevoked),
                None if named.organization == organisation_named(jid) => in_scope.push(c),
                None => {}
            }
        }
        if let Some(c) = in_scope.into_iter().find(|c| c.valid_at(now)) {
            match self.check_signer_certificate(account, &c, jid, now) {
                // It certifies a level the account no longer holds: a new
                // certificate at the account's level serves from now on.
                Err(IdmError::IalTooLow { .. }) => {}
                checked => return checked.map(|()| c),
            }
        }
        let plan = self.required_plan()?.clone();
        let (issuer_key, issuer_cert) = current(self.store(), KeyPurpose::DocumentCa, now).await?;
        let citizen = citizen_of(account).ok_or(IdmError::NotProofed)?;
        // Latin names when the registry gave them, the Thai ones otherwise.
        let (given, family) = match (&account.en_given, &account.en_family) {
            (Some(g), Some(f)) if !g.is_empty() && !f.is_empty() => (g.clone(), f.clone()),
            _ => (
                account.thai_given.clone().unwrap_or_default(),
                account.thai_family.clone().unwrap_or_default(),
            ),
        };
        let ial = account.ial;
        let backend = self.keys().clone();
        let subject = key.clone();
        let issuer_der = issuer_cert.der.clone();
        let represents =
            company.map(|c| (c.name_en.clone().unwrap_or_else(|| c.name_th.clone()), c.id));
        let issued = make(move || {
            let signer = match &represents {
                None => Signer::Citizen {
                    given_name: &given,
                    family_name: &family,
                    citizen_id: &citizen,
                    ial,
                },
                Some((name, jid)) => Signer::Representative {
                    given_name: &given,
                    family_name: &family,
                    citizen_id: &citizen,
                    ial,
                    company: name,
                    juristic_id: jid,
                },
            };
            authority(&backend, &issuer_der, &issuer_key, &plan.settings)?.issue_signer(
                &backend_key(&backend, &subject)?,
                &signer,
                now,
            )
        })
        .await?;
        let facts = issued.facts().map_err(CustodyError::Pki)?;
        let mut tx = self.store().begin().await?;
        let stored = certificates::insert(
            &mut tx,
            &NewCertificate {
                role: CertificateRole::Signer,
                key_id: &key.id,
                issuer_id: Some(&issuer_cert.id),
                account_id: Some(&account.id),
                serial_hex: facts.serial_hex,
                der: issued.der(),
                not_before: facts.not_before,
                not_after: facts.not_after,
                represents: company.map(|c| c.id.compact()).as_deref(),
            },
            now,
            &Actor::Account(account.id.clone()).to_string(),
        )
        .await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// Begins a signing request for `documents`: the signer's key and
    /// certificate (made at the first signing), and a passkey confirmation
    /// whose challenge commits to the request.
    pub async fn start_signing(
        &self,
        session: &ActiveSession,
        asked: &[DocumentDigest],
        now: OffsetDateTime,
    ) -> Result<SigningChallenge, IdmError> {
        self.start_signing_for(session, asked, None, now).await
    }

    /// [`Self::start_signing`], for `company` when a director signs for
    /// one (the caller checked the registry's authority rule): the
    /// signatures then carry the director's representative certificate.
    pub(crate) async fn start_signing_for(
        &self,
        session: &ActiveSession,
        asked: &[DocumentDigest],
        company: Option<&Company>,
        now: OffsetDateTime,
    ) -> Result<SigningChallenge, IdmError> {
        let account = self.signer_account(session).await?;
        self.count_attempt(&account.id)?;
        // Hashing what was sent, and reading XML and JSON, is work bounded
        // by the request's size: done off the async threads, a few at a time.
        let (documents, mut asked) = {
            let _turn = PREPARING
                .acquire()
                .await
                .map_err(|_| CustodyError::Interrupted)?;
            let owned = asked.to_vec();
            tokio::task::spawn_blocking(move || check_documents(&owned).map(|d| (d, owned)))
                .await
                .map_err(|_| CustodyError::Interrupted)??
        };
        // Every PDF is prepared (and its SHA-256 checked) before anything
        // is written: a file refused makes no key and no certificate.
        let mut documents = documents;
        for (i, (asked, doc)) in asked.iter_mut().zip(documents.iter_mut()).enumerate() {
            let Some(pdf) = &mut asked.pdf else { continue };
            planned_pdf(&account, company, i, pdf, doc, now).await?;
        }
        let active = self.active_passkeys(&account).await?;
        let key = self.user_key(&account.id, now).await?;
        let certificate = self
            .signer_certificate(&account, &key, company, now)
            .await?;
        self.open_request(&account, certificate, documents, &active, now)
            .await
    }

    /// The account's active passkeys, which confirm a signature; refused
    /// when it has none.
    pub(crate) async fn active_passkeys(
        &self,
        account: &Account,
    ) -> Result<Vec<StoredCredential>, IdmError> {
        let active: Vec<StoredCredential> =
            creds::for_account(self.store().conn().await?.conn(), &account.id)
                .await?
                .into_iter()
                .filter(|p| p.state == PasskeyState::Active)
                .map(|p| StoredCredential::from_stored(p.credential))
                .collect();
        if active.is_empty() {
            return Err(IdmError::Invalid {
                code: ErrorCode::NoActivePasskey,
                message: "a signature is confirmed with a passkey; register one first".into(),
            });
        }
        Ok(active)
    }

    /// Stores a pending request for `documents` under `certificate`, with a
    /// passkey confirmation (one of `active`) whose challenge commits to it.
    pub(crate) async fn open_request(
        &self,
        account: &Account,
        certificate: StoredCertificate,
        documents: Vec<RequestedDocument>,
        active: &[StoredCredential],
        now: OffsetDateTime,
    ) -> Result<SigningChallenge, IdmError> {
        let request_id = tuaton_store::new_id();
        let challenge = confirmation_challenge(&request_id, &certificate.der, &documents);
        let (options, state) = self.passkeys().start_confirmation(active, challenge, now)?;
        let begun = ceremonies::put_challenge(
            self.store(),
            CONFIRM.kind,
            Some(&account.id),
            &state.to_json()?,
            now,
        )
        .await?;
        requests::insert(
            self.store().conn().await?.conn(),
            &NewRequest {
                id: &request_id,
                account_id: &account.id,
                ceremony_id: &begun.id,
                certificate_id: &certificate.id,
                documents: &documents,
                challenge: &hex::encode(challenge),
                expires: begun.expires_at,
            },
            now,
        )
        .await?;
        Ok(SigningChallenge {
            request_id,
            options,
            documents,
            certificate: certificate.der,
            expires_at: begun.expires_at,
        })
    }

    /// Finishes a signing request with the passkey's assertion: verified as
    /// a login's is (over the request's challenge, so over these digests
    /// only), then every document signed with the person's key (CAdES B-T
    /// detached, PAdES B-T in each PDF, a JWS over each JSON document,
    /// XAdES B-T in each XML one: `contents` are the request's documents
    /// sent whole, again, in order), and the request marked signed with
    /// the assertion as evidence, the ceremony spent and the signing
    /// audited in one transaction. Nothing is returned unless that
    /// transaction committed; a document sent whole that is not the one
    /// confirmed is refused before anything is spent.
    pub async fn finish_signing(
        &self,
        session: &ActiveSession,
        request_id: &str,
        response: &PublicKeyCredential,
        contents: Vec<Vec<u8>>,
        now: OffsetDateTime,
    ) -> Result<Vec<SignedDocument>, IdmError> {
        self.finish_signing_with(session, request_id, response, contents, None, now)
            .await
    }

    /// [`Self::finish_signing`], with what a document an agency posted
    /// adds to the signing's transaction (`step`): the signed file kept for
    /// the agency, and the record naming the document, the agency and the
    /// company a director signs for.
    pub(crate) async fn finish_signing_with(
        &self,
        session: &ActiveSession,
        request_id: &str,
        response: &PublicKeyCredential,
        contents: Vec<Vec<u8>>,
        step: Option<DocumentStep<'_>>,
        now: OffsetDateTime,
    ) -> Result<Vec<SignedDocument>, IdmError> {
        let company = step.as_ref().and_then(|s| s.company);
        let request = requests::by_id(self.store().conn().await?.conn(), request_id)
            .await?
            .filter(|r| {
                r.account_id == session.account_id
                    && r.state == RequestState::Pending
                    && r.expires > now
            })
            // A hash an agency computed is signed only through the CSC API,
            // for the agency the person confirmed it to.
            .filter(|r| !r.documents.iter().any(|d| d.hash_only))
            .ok_or(IdmError::UnknownSigningRequest)?;
        let account = self.signer_account(session).await?;
        self.count_attempt(&account.id)?;
        let jobs = prepare_jobs(&request, contents).await?;
        let confirmed = self
            .verify_confirmation(&account, &request, company, response, now)
            .await?;
        let certificate = confirmed.certificate;
        let (recognised, outcome) = (confirmed.recognised, confirmed.outcome);
        let spent = self.claim_confirmation(&request).await?;

        let signed = match self
            .sign_documents(&account, &certificate, &request.documents, jobs, now)
            .await
        {
            Ok(signed) => signed,
            Err(failure) => {
                return Err(self
                    .unclaim_confirmation(&account.id, &request, &spent, failure, now)
                    .await);
            }
        };

        // The record names what was signed by digest and size; the names
        // stay with the request, which erasure removes.
        let digests: Vec<serde_json::Value> = request
            .documents
            .iter()
            .map(|d| match &d.pdf {
                Some(plan) => json!({
                    "sha256": d.sha256,
                    "size": d.size,
                    "format": PADES,
                    "signed_digest": plan.signed_digest,
                }),
                None => json!({ "sha256": d.sha256, "size": d.size, "format": format_of(d) }),
            })
            .collect();
        let mut tx = self.store().begin().await?;
        let recorded = SigningRecord {
            account: &account,
            request_id: &request.id,
            evidence: &confirmed.evidence,
            certificate: &certificate,
            cred_id: &recognised.record.cred_id,
            documents: digests,
            client_id: step.as_ref().map(|s| s.document.client_id.as_str()),
            posted: step.as_ref(),
        }
        .write(&mut tx, now)
        .await?;
        if !recorded {
            drop(tx);
            return Err(IdmError::UnknownSigningRequest);
        }
        if let Some(step) = &step {
            let Some(Signed::Pdf(pdf)) = signed.first().map(|s| &s.signed) else {
                return Err(IdmError::internal("a posted PDF was not signed as a PDF"));
            };
            let signature = DocumentSignature {
                account_id: account.id.to_string(),
                subject: step.subject.to_owned(),
                at_ms: tuaton_store::to_ms(now),
            };
            let kept = agency::add_signature(
                tx.conn(),
                step.document,
                &request.id,
                pdf,
                signature,
                step.complete,
                now,
            )
            .await?;
            if !kept {
                // Declined, or signed by another, since this signing began:
                // the signature made is dropped, and the refusal recorded.
                drop(tx);
                audit::refused_alone(
                    self.store(),
                    now,
                    &Actor::Account(account.id.clone()),
                    action::SIGN,
                    request.id.clone(),
                    ErrorCode::UnknownDocument,
                )
                .await?;
                return Err(IdmError::UnknownDocument);
            }
        }
        let mut closing = Batch::new();
        closing.push(recognised.record_use(self.passkey_seal(), &outcome, now));
        tx.commit_with(closing).await?;
        Ok(signed)
    }

    /// Verifies the passkey assertion `response` that confirms `request`
    /// for `account`: the request's certificate is the account's signer
    /// certificate, valid and not revoked; the stored request is still what
    /// its challenge commits to; the assertion verifies as a login's does,
    /// by one of the account's passkeys, over that challenge. Spends
    /// nothing.
    pub(crate) async fn verify_confirmation<'r>(
        &self,
        account: &Account,
        request: &'r requests::SigningRequest,
        company: Option<&JuristicId>,
        response: &PublicKeyCredential,
        now: OffsetDateTime,
    ) -> Result<Confirmed<'r>, IdmError> {
        let certificate =
            certificates::by_id(self.store().conn().await?.conn(), &request.certificate_id)
                .await?
                .ok_or_else(|| {
                    IdmError::Internal("a signing request's certificate is missing".into())
                })?;
        // The certificate must be this person's signer certificate, valid
        // and not revoked; its subject (which the CA signed, so no row can
        // change it) must name this account's citizen id.
        self.check_signer_certificate(account, &certificate, company, now)?;
        // The stored request must still be what the challenge commits to:
        // a row changed in the database confirms nothing.
        let challenge = confirmation_challenge(&request.id, &certificate.der, &request.documents);
        if hex::encode(challenge) != request.challenge {
            return Err(self.refuse_tampered(&account.id, &request.id, now).await);
        }
        let (recognised, outcome) = self
            .assert(CONFIRM, &request.ceremony_id, response, now)
            .await?;
        if recognised.account_id != account.id {
            return Err(IdmError::Passkey(
                tuaton_passkeys::PasskeyError::UnknownCredential,
            ));
        }
        // The client data the authenticator signed names this challenge.
        let client_data: serde_json::Value =
            serde_json::from_slice(response.response.client_data_json.as_ref())
                .map_err(|_| IdmError::Passkey(tuaton_passkeys::PasskeyError::ChallengeMismatch))?;
        if client_data["challenge"].as_str() != Some(b64(&challenge).as_str()) {
            return Err(self.refuse_tampered(&account.id, &request.id, now).await);
        }
        let evidence = json!({
            "credential_id": b64(&response.raw_id),
            "client_data_json": b64(response.response.client_data_json.as_ref()),
            "authenticator_data": b64(response.response.authenticator_data.as_ref()),
            "signature": b64(response.response.signature.as_ref()),
            "challenge": request.challenge,
        });
        Ok(Confirmed {
            certificate,
            recognised,
            outcome,
            evidence,
        })
    }

    /// Spends `request`'s confirmation ceremony, before anything is signed,
    /// so racing copies of one assertion make one set of signatures, not
    /// many. (A transaction of its own, taking no place in the audit chain:
    /// the signing's record is written once it is done.)
    pub(crate) async fn claim_confirmation(
        &self,
        request: &requests::SigningRequest,
    ) -> Result<ceremonies::Stored, IdmError> {
        let mut claiming = Batch::new();
        let spent = claiming.add(ceremonies::spend_keeping(
            &request.ceremony_id,
            CONFIRM.kind,
        ));
        let (claim, mut claimed) = self.store().begin_with(claiming).await?;
        let Some(kept) = claimed.take(spent)? else {
            drop(claim);
            return Err(tuaton_store::ceremonies::TakeError::Unknown.into());
        };
        claim.commit().await?;
        Ok(kept)
    }

    /// After a signing that came to nothing (the time-stamping authority or
    /// the key backend failed, `failure`; no signature left Tuaton), puts
    /// the confirmation `spent` for `request` back, so the same assertion
    /// may be sent again within the request's lifetime, and audits the
    /// failure; returns `failure`. Should the store fail too, the person
    /// confirms again.
    async fn unclaim_confirmation(
        &self,
        account: &AccountId,
        request: &requests::SigningRequest,
        spent: &ceremonies::Stored,
        failure: IdmError,
        now: OffsetDateTime,
    ) -> IdmError {
        let restored = async {
            let mut putting = Batch::new();
            let _restored = putting.add(ceremonies::restore(&request.ceremony_id, spent));
            let (mut tx, _) = self.store().begin_with(putting).await?;
            let ev = audit::refusal(
                &Actor::Account(account.clone()),
                action::SIGN,
                request.id.clone(),
                failure.code().as_str(),
            );
            tuaton_store::audit::append(&mut tx, now, &ev).await?;
            tx.commit().await?;
            Ok::<_, IdmError>(())
        }
        .await;
        if let Err(e) = restored {
            tracing::warn!(error = %e, request = %request.id, "a failed signing's confirmation could not be put back");
        }
        failure
    }

    /// Whether `certificate` may sign for `account` now: a signer
    /// certificate bound to the account, valid, not revoked, whose subject
    /// names the account's citizen id (and `company` when a director signs
    /// for one, no company otherwise), certifying no higher identity level
    /// than the account holds.
    pub(crate) fn check_signer_certificate(
        &self,
        account: &Account,
        certificate: &StoredCertificate,
        company: Option<&JuristicId>,
        now: OffsetDateTime,
    ) -> Result<(), IdmError> {
        if certificate.revoked.is_some() {
            return Err(IdmError::CertificateRevoked);
        }
        let expected = citizen_of(account).map(|c| semantics_identifier(SemanticsId::Citizen(&c)));
        let named = tuaton_pki::subject_ids(&certificate.der).map_err(CustodyError::Pki)?;
        let bound = certificate.role == CertificateRole::Signer
            && certificate.account_id.as_ref() == Some(&account.id)
            && certificate.valid_at(now)
            && expected.is_some()
            && named.person == expected
            && named.organization == organisation_named(company);
        if bound {
            // The certificate tells relying parties the level the person was
            // proofed at: an account since lowered below it signs nothing
            // under it.
            let policy = self.required_plan()?.settings.policy;
            let certified =
                tuaton_pki::certified_ial(&certificate.der, &policy).map_err(CustodyError::Pki)?;
            match certified {
                Some(needs) if account.ial < needs => Err(IdmError::IalTooLow { needs }),
                _ => Ok(()),
            }
        } else {
            tracing::warn!(certificate = %certificate.id, "a signer certificate does not belong to the account signing");
            Err(IdmError::Internal(
                "the signing certificate does not belong to this account".into(),
            ))
        }
    }

    /// A request whose stored documents (or ceremony) no longer match what
    /// its confirmation commits to: a database writer's change. Refused as
    /// a challenge mismatch, and audited.
    pub(crate) async fn refuse_tampered(
        &self,
        account: &AccountId,
        request_id: &str,
        now: OffsetDateTime,
    ) -> IdmError {
        tracing::warn!(
            request = request_id,
            "a signing request no longer matches its confirmation's challenge"
        );
        let audited = audit::refused_alone(
            self.store(),
            now,
            &Actor::Account(account.clone()),
            action::SIGN,
            request_id.to_owned(),
            ErrorCode::ChallengeMismatch,
        )
        .await;
        match audited {
            Ok(()) => IdmError::Passkey(tuaton_passkeys::PasskeyError::ChallengeMismatch),
            Err(e) => e,
        }
    }

    /// One signature per document with the certificate's key, each B-T
    /// (time-stamped by Tuaton's TSA) but a JWS: CAdES detached over a
    /// digest, PAdES in a prepared PDF, JWS over JSON, XAdES in XML.
    pub(crate) async fn sign_documents(
        &self,
        account: &Account,
        certificate: &StoredCertificate,
        documents: &[RequestedDocument],
        jobs: Vec<Job>,
        now: OffsetDateTime,
    ) -> Result<Vec<SignedDocument>, IdmError> {
        let plan = self.required_plan()?;
        let key = keys::by_id(self.store().conn().await?.conn(), &certificate.key_id)
            .await?
            .filter(|k| {
                k.state == keys::KeyState::Active
                    && k.purpose == KeyPurpose::UserSigning
                    && k.account_id.as_ref() == Some(&account.id)
            })
            .ok_or_else(|| {
                IdmError::Internal("the signer's key is not this account's active key".into())
            })?;
        let chain: Vec<Vec<u8>> = chain_of(self.store(), certificate)
            .await?
            .into_iter()
            .map(|c| c.der)
            .collect();
        // An external TSA when one is configured, Tuaton's own otherwise.
        let stamper: Arc<dyn tuaton_sign::tsp::TimeStampSource> = match &self.parts().external_tsa {
            Some(external) => external.clone(),
            None => Arc::new(crate::pki::time_stamper(self.store(), self.keys(), plan, now).await?),
        };
        let backend: Arc<dyn KeyBackend> = self.keys().clone();
        let cert_der = certificate.der.clone();
        let docs = documents.to_vec();
        tokio::task::spawn_blocking(move || {
            let key_ref = key.key_ref.parse().map_err(tuaton_sign::SignError::Key)?;
            let signer =
                tuaton_sign::CmsSigner::new(backend, key_ref, key.algorithm, &cert_der, &chain)?;
            docs.into_iter()
                .zip(jobs)
                .map(|(d, job)| {
                    let cades = |digest: &[u8; 32], signing_time| {
                        tuaton_sign::cades::sign_detached(
                            &signer,
                            digest,
                            tuaton_sign::cades::Options {
                                signing_time,
                                time_stamp: Some(stamper.as_ref()),
                            },
                        )
                    };
                    let signed = match job {
                        Job::Detached(digest) => Signed::Detached(cades(&digest, Some(now))?),
                        // PAdES: the time is the PDF's /M, not a CMS attribute.
                        Job::InFile(prepared) => {
                            let cms = cades(prepared.digest(), None)?;
                            Signed::Pdf(prepared.embed(&cms)?.into_vec())
                        }
                        Job::Jws(bytes, options) => {
                            let jws = tuaton_sign::jws::sign(&signer, &bytes, options)?;
                            Signed::Jws {
                                compact: jws.compact,
                                json: jws.json,
                            }
                        }
                        Job::Xades(bytes) => Signed::Xml(tuaton_sign::xades::sign_enveloped(
                            &signer,
                            &bytes,
                            tuaton_sign::xades::XadesOptions {
                                signing_time: now,
                                time_stamp: Some(stamper.as_ref()),
                            },
                        )?),
                    };
                    Ok(SignedDocument {
                        name: d.name,
                        sha256: d.sha256,
                        signed,
                    })
                })
                .collect::<Result<Vec<_>, tuaton_sign::SignError>>()
        })
        .await
        .map_err(|_| CustodyError::Interrupted)?
        .map_err(|e| match e {
            tuaton_sign::SignError::TimeStamp(why) => {
                CustodyError::TimeStampUnavailable(why).into()
            }
            e => IdmError::Internal(format!("signing: {e}")),
        })
    }
}

/// What a signing leaves in the store: the request marked signed with the
/// confirmation as its evidence, and one audit record naming the person,
/// what was signed (by digest), the key, the certificate, the passkey that
/// confirmed and, for a signing through the CSC API, the agency.
pub(crate) struct SigningRecord<'a> {
    pub account: &'a Account,
    pub request_id: &'a str,
    pub evidence: &'a serde_json::Value,
    pub certificate: &'a StoredCertificate,
    pub cred_id: &'a str,
    pub documents: Vec<serde_json::Value>,
    pub client_id: Option<&'a str>,
    /// For a document an agency posted: which, and for which company.
    pub posted: Option<&'a DocumentStep<'a>>,
}

/// What signing a document an agency posted adds to the signing's
/// transaction.
pub(crate) struct DocumentStep<'a> {
    /// The document, as read when the signing began to finish.
    pub document: &'a AgencyDocument,
    /// The posting client's `sub` of the signer.
    pub subject: &'a str,
    /// The company a director signs for, as the registry gave it now.
    pub company: Option<&'a JuristicId>,
    /// Whether this signature completes the document; false while more of
    /// the company's directors must sign.
    pub complete: bool,
}

impl SigningRecord<'_> {
    /// Writes the record in `tx`; false, with nothing written, when the
    /// request is no longer pending (signed already, or expired).
    pub(crate) async fn write(
        self,
        tx: &mut tuaton_store::Tx,
        now: OffsetDateTime,
    ) -> Result<bool, IdmError> {
        if !requests::mark_signed(tx, self.request_id, self.evidence, now).await? {
            return Ok(false);
        }
        let mut details = json!({
            "documents": self.documents,
            "key_id": self.certificate.key_id,
            "certificate_id": self.certificate.id,
            "certificate_serial": self.certificate.serial_hex,
            "cred_id": self.cred_id,
        });
        if let Some(client_id) = self.client_id {
            details["client_id"] = json!(client_id);
        }
        if let Some(posted) = self.posted {
            details["document"] = json!(posted.document.id);
            details["complete"] = json!(posted.complete);
            if let Some(company) = posted.company {
                details["company"] = json!(company.compact());
            }
        }
        let ev = audit::success(
            &Actor::Account(self.account.id.clone()),
            action::SIGN,
            self.request_id.to_owned(),
        )
        .with_details(details);
        tuaton_store::audit::append(tx, now, &ev).await?;
        Ok(true)
    }
}
