//! The document API: an agency's back end posts a PDF for a person to
//! sign, sends the person to the signing page, and fetches the signed PDF.
//!
//! The person sees what Tuaton was given, not what the agency says it is:
//! Tuaton keeps the file, hashes it and counts its pages, and the signing
//! page shows the agency, the file's name, size, pages and SHA-256. Signing
//! is the document flow of [`crate::signing`] (a PAdES B-T signature in the
//! file, confirmed with a passkey whose challenge commits to the prepared
//! file, the request and the certificate), so nothing is signed that the
//! person did not confirm. An agency may name the one person who signs (its
//! `sub` for them); the signed file and the signer's `sub` go only to the
//! client that posted it.
//!
//! A document can be posted for a company instead: the company's directors
//! sign it, each with the certificate that names them its representative,
//! and the registry's authority rule is checked when each one begins and
//! again when each one signs. Under a rule that needs more than one
//! director, each signs the file as the ones before signed it (an
//! incremental update, so earlier signatures stay valid), and the document
//! is signed when enough distinct directors have signed it.

use ring::digest::{SHA256, digest};
use serde_json::json;
use time::{Duration, OffsetDateTime};
use tuaton_core::{CitizenId, JuristicId};
use tuaton_proofing::{AuthorityDecision, Company, CompanyStatus, RegistryError, authorised};
use tuaton_sign::pades::EmbeddedSignature;
use tuaton_store::accounts::Account;
use tuaton_store::agency_documents::{
    self as stored, AgencyDocument, DocumentSignature, DocumentState, Files, NewDocument,
};
use tuaton_store::certificates::{self, CertificateRole};
use tuaton_store::keys::{self, KeyPurpose};
use url::Url;
use webauthn_rs::prelude::PublicKeyCredential;

use crate::audit::{self, Actor, action};
use crate::custody::CustodyError;
use crate::sessions::ActiveSession;
use crate::signing::{
    DocumentDigest, DocumentStep, MAX_NAME_CHARS, MAX_SENT_BYTES, PdfDocument, SigningChallenge,
    end_representation,
};
use crate::{Idm, IdmError};
use tuaton_core::ErrorCode;
use tuaton_oidc::ClientConfig;

/// How long a posted document waits for the person, and how long the
/// signed file is kept for the agency afterwards (from the posting).
pub const DOCUMENT_LIFETIME: Duration = Duration::hours(24);

/// The scope a client needs to post documents: the one that lets it ask
/// for signatures at all.
pub const SIGNING_SCOPE: &str = tuaton_oidc::credential::CREDENTIAL;

/// What an agency posts.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The file's name as the person will see it.
    pub name: String,
    /// The PDF.
    pub bytes: Vec<u8>,
    /// The client's `sub` of the one person who may sign; anyone who logs
    /// in when absent.
    pub subject: Option<String>,
    /// Where the person's browser goes afterwards: one of the client's
    /// registered redirect URIs, exactly.
    pub redirect_uri: String,
    /// The agency's value to carry there.
    pub state: Option<String>,
    /// The company whose directors sign it; a person's own signature
    /// when absent.
    pub company: Option<JuristicId>,
}

/// A document posted.
#[derive(Debug, Clone)]
pub struct Posted {
    /// Its id.
    pub id: String,
    /// Its SHA-256, hex.
    pub sha256: String,
    /// Its pages.
    pub pages: u32,
    /// After this it is not signed, and the signed file is gone.
    pub expires_at: OffsetDateTime,
}

/// What the signing page shows of a document.
#[derive(Debug, Clone)]
pub struct ShownDocument {
    /// The agency, as registered.
    pub client_name: String,
    /// The file's name.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256, hex.
    pub sha256: String,
    /// Its pages.
    pub pages: u32,
    /// When it stops waiting.
    pub expires_at: OffsetDateTime,
    /// For a company's document: the company's juristic id and name.
    pub company: Option<(String, String)>,
    /// How many directors signed it so far.
    pub signatures: usize,
    /// Whether the agency named the one person who signs it: declining it
    /// then needs their login too.
    pub named: bool,
}

/// A document as its agency reads it back.
#[derive(Debug, Clone)]
pub struct AgencyView {
    /// Pending, signed or declined.
    pub state: DocumentState,
    /// The file's name.
    pub name: String,
    /// The posted file's SHA-256, hex.
    pub sha256: String,
    /// The signed PDF, once signed (when it was read).
    pub signed: Option<Vec<u8>>,
    /// The client's `sub` of the signer who completed it.
    pub signer: Option<String>,
    /// The signatures so far, in order: the client's `sub` of each signer
    /// and when they signed.
    pub signatures: Vec<(String, OffsetDateTime)>,
    /// For a company's document, its juristic id.
    pub company: Option<String>,
    /// When it stops waiting, and is deleted.
    pub expires_at: OffsetDateTime,
}

/// What a director does with a company's document: each needs the
/// registry to list them now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    /// Save it to read.
    Read,
    /// Sign it: once each, while every earlier signer is still listed.
    Sign,
    /// Decline it for the company.
    Decline,
}

/// Room a signature takes in a PDF, and more: a company's document is
/// taken only when each of the signatures its rule asks for still fits
/// within what a signing takes.
const ROOM_PER_SIGNATURE: usize = 64 * 1024;

/// The file the next signer of a document signs.
struct FileToSign {
    bytes: Vec<u8>,
    sha256: [u8; 32],
    /// The signatures its directors added to the posted file, read back
    /// from it and checked ([`tuaton_sign::pades::signatures`]), in order.
    added: Vec<EmbeddedSignature>,
}

/// The file the next signer of `d` signs, taken out of `d` (its files are
/// left empty): the posted file, or the one the directors before signed,
/// which must be the posted file with their signatures after it, each of
/// which verifies (a row changed in the database signs nothing). Hashing
/// and verifying are bounded by the file: off the async threads.
async fn to_sign(d: &mut AgencyDocument) -> Result<FileToSign, IdmError> {
    let content = std::mem::take(&mut d.content);
    let partial = d.partial.take();
    let posted = d.sha256.clone();
    tokio::task::spawn_blocking(move || {
        let sha256 = |bytes: &[u8]| -> Result<[u8; 32], IdmError> {
            digest(&SHA256, bytes)
                .as_ref()
                .try_into()
                .map_err(IdmError::internal)
        };
        let of_content = sha256(&content)?;
        let untouched = hex::encode(of_content) == posted
            && partial.as_ref().is_none_or(|p| p.starts_with(&content));
        if !untouched {
            tracing::warn!("a posted document's files no longer match its digest");
            return Err(crate::error::corrupt("a posted document's file"));
        }
        let Some(bytes) = partial else {
            return Ok(FileToSign {
                bytes: content,
                sha256: of_content,
                added: Vec::new(),
            });
        };
        let added = match tuaton_sign::pades::signatures(&bytes) {
            Ok(found) => found
                .into_iter()
                .filter(|s| s.signed_len > content.len())
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "a partly signed document's signatures do not verify");
                return Err(crate::error::corrupt("a partly signed document"));
            }
        };
        Ok(FileToSign {
            sha256: sha256(&bytes)?,
            bytes,
            added,
        })
    })
    .await
    .map_err(|_| CustodyError::Interrupted)?
}

/// A document made ready for the logged-in person to sign: what
/// [`Idm::ready_to_sign`] found.
struct Ready {
    /// The document, its files taken out.
    document: AgencyDocument,
    /// The posting client's `sub` of the signer.
    subject: String,
    /// For a company's document, the director's turn.
    turn: Option<Turn>,
    /// The file to sign.
    file: FileToSign,
}

/// Where a company's document stands for the director about to sign it,
/// by the registry's answer now.
struct Turn {
    company: Company,
    /// Whether this director's signature meets the authority rule.
    complete: bool,
}

fn invalid(message: impl Into<String>) -> IdmError {
    IdmError::Invalid {
        code: ErrorCode::InvalidDocuments,
        message: message.into(),
    }
}

/// `back` with the query parameters `pairs` and `state` added.
fn redirect(back: &str, pairs: &[(&str, &str)], state: Option<&str>) -> Result<Url, IdmError> {
    let mut url = Url::parse(back).map_err(|_| crate::error::corrupt("a document's redirect"))?;
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
        if let Some(s) = state {
            q.append_pair("state", s);
        }
    }
    Ok(url)
}

impl Idm {
    /// Keeps a PDF `client` posted for a person to sign: its name, the
    /// file (a PDF Tuaton can sign, at most [`MAX_SENT_BYTES`]), and a
    /// redirect URI registered for the client. The client must be allowed
    /// to ask for signatures ([`SIGNING_SCOPE`]).
    pub async fn post_document(
        &self,
        client: &ClientConfig,
        upload: Upload,
        now: OffsetDateTime,
    ) -> Result<Posted, IdmError> {
        if !client.scopes.iter().any(|s| s == SIGNING_SCOPE) {
            return Err(IdmError::Invalid {
                code: ErrorCode::InvalidField,
                message: format!(
                    "this client may not ask for signatures: it needs the {SIGNING_SCOPE} scope"
                ),
            });
        }
        if client.redirect_uri(&upload.redirect_uri).is_none() {
            return Err(IdmError::Invalid {
                code: ErrorCode::InvalidField,
                message: "redirect_uri is not one registered for this client".into(),
            });
        }
        let chars = upload.name.chars().count();
        if chars == 0 || chars > MAX_NAME_CHARS || !crate::signing::shown_name(&upload.name) {
            return Err(invalid(format!(
                "name: 1 to {MAX_NAME_CHARS} characters, without control or bidirectional control characters"
            )));
        }
        if upload.bytes.is_empty() || upload.bytes.len() > MAX_SENT_BYTES {
            return Err(invalid(format!(
                "the PDF is 1 byte to {} MiB",
                MAX_SENT_BYTES >> 20
            )));
        }
        let subject_ok = |s: &String| !s.is_empty() && s.len() <= 255 && s.is_ascii();
        if upload.subject.as_ref().is_some_and(|s| !subject_ok(s)) {
            return Err(invalid(
                "subject: the sub Tuaton gave this client for the person",
            ));
        }
        if upload.state.as_ref().is_some_and(|s| s.len() > 512) {
            return Err(invalid("state: at most 512 bytes"));
        }
        let company = match &upload.company {
            None => None,
            Some(_) if upload.subject.is_some() => {
                return Err(invalid(
                    "subject and company: a company's document is signed by the directors the registry lists, not by one named person",
                ));
            }
            Some(jid) => {
                let company = self.lookup_company(jid).await?;
                if company.status == CompanyStatus::Dissolved {
                    return Err(IdmError::CompanyDissolved);
                }
                let room = company.authority.required() * ROOM_PER_SIGNATURE;
                if upload.bytes.len() + room > MAX_SENT_BYTES {
                    return Err(invalid(format!(
                        "a company's PDF is at most {} KiB, leaving room for its directors' {} signatures",
                        (MAX_SENT_BYTES - room) >> 10,
                        company.authority.required()
                    )));
                }
                Some((jid.compact(), company.name_th))
            }
        };
        // Reading the file is work bounded by its size: off the async threads.
        let bytes = upload.bytes;
        let (facts, bytes, sha256) = tokio::task::spawn_blocking(move || {
            let facts = tuaton_sign::pades::inspect(&bytes);
            let sha256 = hex::encode(digest(&SHA256, &bytes));
            (facts, bytes, sha256)
        })
        .await
        .map_err(|_| CustodyError::Interrupted)?;
        let facts = facts.map_err(|e| invalid(format!("the file cannot be signed: {e}")))?;
        let id = tuaton_store::new_id();
        let expires_at = now + DOCUMENT_LIFETIME;
        let mut tx = self.store().begin().await?;
        stored::insert(
            tx.conn(),
            &NewDocument {
                id: &id,
                client_id: &client.client_id,
                subject: upload.subject.as_deref(),
                name: &upload.name,
                sha256: &sha256,
                pages: facts.pages,
                content: &bytes,
                redirect_uri: &upload.redirect_uri,
                client_state: upload.state.as_deref(),
                company: company.as_ref().map(|(j, n)| (j.as_str(), n.as_str())),
                expires: expires_at,
            },
            now,
        )
        .await?;
        let ev = audit::success(
            &Actor::Client(client.client_id.clone()),
            action::DOCUMENT_POST,
            id.clone(),
        )
        .with_details(json!({
            "sha256": sha256, "size": bytes.len(), "pages": facts.pages,
            "for_subject": upload.subject.is_some(),
            "company": company.as_ref().map(|(j, _)| j),
        }));
        tuaton_store::audit::append(&mut tx, now, &ev).await?;
        tx.commit().await?;
        Ok(Posted {
            id,
            sha256,
            pages: facts.pages,
            expires_at,
        })
    }

    /// A document still waiting, by id.
    async fn waiting_document(
        &self,
        id: &str,
        files: Files,
        now: OffsetDateTime,
    ) -> Result<AgencyDocument, IdmError> {
        stored::by_id(self.store().conn().await?.conn(), id, files)
            .await?
            .filter(|d| d.state == DocumentState::Pending && d.expires > now)
            .ok_or(IdmError::UnknownDocument)
    }

    /// The client a document was posted by, still registered.
    async fn poster(&self, document: &AgencyDocument) -> Result<ClientConfig, IdmError> {
        self.find_client(&document.client_id)
            .await?
            .ok_or(IdmError::UnknownDocument)
    }

    /// The posting client's `sub` for the person logged in (`session`),
    /// who must be the one the agency named, if it named one.
    async fn signer_of(
        &self,
        document: &AgencyDocument,
        session: &ActiveSession,
        now: OffsetDateTime,
    ) -> Result<String, IdmError> {
        let client = self.poster(document).await?;
        let sub = self.subject(&client, &session.account_id, now).await?;
        if document.subject.as_ref().is_some_and(|s| *s != sub) {
            return Err(IdmError::NotTheSigner);
        }
        Ok(sub)
    }

    /// What the signing page shows of document `id`: only while it waits.
    /// For a company's document signed by some directors already, the file
    /// shown is the one they signed, which the next director signs.
    pub async fn shown_document(
        &self,
        id: &str,
        now: OffsetDateTime,
    ) -> Result<ShownDocument, IdmError> {
        let d = self.waiting_document(id, Files::Skip, now).await?;
        let client = self.poster(&d).await?;
        let (size, sha256) = d.partial_facts.unwrap_or((d.size, d.sha256));
        let company = d.company_id.zip(d.company_name);
        Ok(ShownDocument {
            client_name: client.name,
            name: d.name,
            size,
            sha256,
            pages: d.pages,
            expires_at: d.expires,
            company,
            signatures: d.signatures.len(),
            named: d.subject.is_some(),
        })
    }

    /// The file of document `id` as the person logged in (`session`) would
    /// sign it, to read before they do: its name and bytes (for a company's
    /// document signed by some directors already, the file as they signed
    /// it). Only while it waits, only for the person the agency named, if
    /// it named one, and for a company's document only for a director the
    /// registry lists now.
    pub async fn document_file(
        &self,
        session: &ActiveSession,
        id: &str,
        now: OffsetDateTime,
    ) -> Result<(String, Vec<u8>), IdmError> {
        let mut d = self.waiting_document(id, Files::Read, now).await?;
        self.signer_of(&d, session, now).await?;
        if d.company_id.is_some() {
            let account = self.account_of(session).await?;
            self.directors_turn(&d, &account, Act::Read, now).await?;
        }
        let file = self.file_to_sign(&mut d).await?;
        Ok((d.name, file.bytes))
    }

    /// Document `id` waiting, and the person logged in (`session`) one who
    /// may sign it now: the one the agency named, if it named one, able to
    /// sign, and for a company's document a director whose turn it is; with
    /// the file they sign. What beginning and finishing a signing both ask;
    /// finishing (`begun`) needs the signing request the page began.
    async fn ready_to_sign(
        &self,
        session: &ActiveSession,
        id: &str,
        begun: bool,
        now: OffsetDateTime,
    ) -> Result<Ready, IdmError> {
        let mut document = self.waiting_document(id, Files::Read, now).await?;
        if begun && document.signing_request.is_none() {
            return Err(IdmError::UnknownDocument);
        }
        let subject = self.signer_of(&document, session, now).await?;
        let account = self.signer_account(session).await?;
        let turn = self
            .directors_turn(&document, &account, Act::Sign, now)
            .await?;
        let file = self.file_to_sign(&mut document).await?;
        Ok(Ready {
            document,
            subject,
            turn,
            file,
        })
    }

    /// The file the next signer of `d` signs ([`to_sign`]); for a company's
    /// document, the directors' signatures in it must be the ones its list
    /// names, in order, each made with the key of the representative
    /// certificate Tuaton issued to that director for this company, the key
    /// held by the key backend. A list a database writer lengthened, or a
    /// signature put in the file without a director's key, signs nothing.
    async fn file_to_sign(&self, d: &mut AgencyDocument) -> Result<FileToSign, IdmError> {
        let file = to_sign(d).await?;
        let Some(jid) = d.company_id.as_deref() else {
            return Ok(file);
        };
        let tampered = || {
            tracing::warn!(document = %d.id, "a company's document's signatures are not the ones its list names");
            crate::error::corrupt("a company's document's signatures")
        };
        if file.added.len() != d.signatures.len() {
            return Err(tampered());
        }
        let organisation = JuristicId::parse(jid)
            .map(|j| tuaton_pki::semantics_identifier(tuaton_pki::SemanticsId::Company(&j)))
            .map_err(|_| crate::error::corrupt("a document's company"))?;
        for (embedded, listed) in file.added.iter().zip(&d.signatures) {
            let facts = tuaton_pki::Facts::of(&embedded.certificate).map_err(|_| tampered())?;
            let named = tuaton_pki::subject_ids(&embedded.certificate).map_err(|_| tampered())?;
            let issued =
                certificates::by_serial(self.store().conn().await?.conn(), &facts.serial_hex)
                    .await?
                    .into_iter()
                    .find(|c| {
                        c.der == embedded.certificate
                            && c.role == CertificateRole::Signer
                            && c.account_id.as_ref().map(|a| a.as_str())
                                == Some(listed.account_id.as_str())
                    })
                    .ok_or_else(tampered)?;
            let key = keys::by_id(self.store().conn().await?.conn(), &issued.key_id)
                .await?
                .filter(|k| {
                    k.purpose == KeyPurpose::UserSigning && k.account_id == issued.account_id
                })
                .ok_or_else(tampered)?;
            let held = crate::custody::public_key_of(self.keys(), &key)
                .await
                .map_err(|_| tampered())?;
            if named.organization.as_deref() != Some(organisation.as_str())
                || held.raw() != facts.public_key
            {
                return Err(tampered());
            }
        }
        Ok(file)
    }

    /// For a company's document, whether `account` may act on it now
    /// (`act`), by the registry's answer now: a director of the active
    /// company; to sign, one who has not signed it yet, with every earlier
    /// signer still a director, and whether this signature meets the
    /// authority rule. `None` for a person's own document. A refusal is
    /// audited; the representative certificates of a signer the registry
    /// no longer lists end with it.
    async fn directors_turn(
        &self,
        d: &AgencyDocument,
        account: &Account,
        act: Act,
        now: OffsetDateTime,
    ) -> Result<Option<Turn>, IdmError> {
        let Some(jid) = d.company_id.as_deref() else {
            return Ok(None);
        };
        let jid =
            JuristicId::parse(jid).map_err(|_| crate::error::corrupt("a document's company"))?;
        let me = account
            .citizen_id
            .as_deref()
            .and_then(|c| CitizenId::parse(c).ok())
            .ok_or(IdmError::NotProofed)?;
        if act == Act::Sign
            && d.signatures
                .iter()
                .any(|s| s.account_id == account.id.as_str())
        {
            return Err(IdmError::AlreadySigned);
        }
        let earlier = match act {
            Act::Sign => self.earlier_signers(&d.signatures).await?,
            Act::Read | Act::Decline => Some(Vec::new()),
        };
        // Whose representation ends with a refusal: this person's, and any
        // earlier signer's the registry no longer lists.
        let mut ended = vec![account.id.clone()];
        let turn = match earlier {
            // An earlier signer who can no longer sign (erased, closed or
            // suspended): their signature is in the file, and would be
            // one a validator refuses.
            None => {
                ended.clear();
                Err(IdmError::AuthorityChanged)
            }
            Some(earlier) => match self.lookup_company(&jid).await {
                Err(IdmError::CompanyRegistry(RegistryError::NotFound)) => {
                    Err(IdmError::CompanyRegistry(RegistryError::NotFound))
                }
                Err(e) => return Err(e),
                Ok(company) => {
                    let mut acting: Vec<CitizenId> = earlier.iter().map(|(_, c)| *c).collect();
                    acting.push(me);
                    match authorised(&company, &acting) {
                        AuthorityDecision::Authorised { .. } => Ok(Turn {
                            company,
                            complete: true,
                        }),
                        AuthorityDecision::NeedsMoreDirectors { .. } => Ok(Turn {
                            company,
                            complete: false,
                        }),
                        AuthorityDecision::NotADirector { citizens } if citizens.contains(&me) => {
                            Err(IdmError::NotADirector)
                        }
                        AuthorityDecision::NotADirector { citizens } => {
                            ended = earlier
                                .into_iter()
                                .filter(|(_, c)| citizens.contains(c))
                                .map(|(a, _)| a)
                                .collect();
                            Err(IdmError::AuthorityChanged)
                        }
                        AuthorityDecision::CompanyDissolved => Err(IdmError::CompanyDissolved),
                        AuthorityDecision::NobodyActing => {
                            Err(IdmError::internal("a director's turn with nobody acting"))
                        }
                    }
                }
            },
        };
        let err = match turn {
            Ok(turn) => return Ok(Some(turn)),
            Err(err) => err,
        };
        // A director no more, or of a company dissolved or struck off: the
        // certificates naming them its representative end too.
        let mut tx = self.store().begin().await?;
        if !matches!(err, IdmError::Internal(_)) {
            for account in &ended {
                end_representation(&mut tx, account, &jid, now).await?;
            }
        }
        let code = err.code().as_str();
        let ev = audit::failure(
            &Actor::Account(account.id.clone()),
            action::COMPANY_AUTHORITY,
            jid.compact(),
        )
        .with_details(json!({ "reason": code, "document": d.id }));
        tuaton_store::audit::append(&mut tx, now, &ev).await?;
        tx.commit().await?;
        Err(err)
    }

    /// The accounts that signed, with their citizen ids; `None` once one
    /// of them can no longer sign (erased, closed or suspended since).
    async fn earlier_signers(
        &self,
        signatures: &[DocumentSignature],
    ) -> Result<Option<Vec<(tuaton_core::AccountId, CitizenId)>>, IdmError> {
        let mut ids = Vec::with_capacity(signatures.len());
        for s in signatures {
            let Ok(account) = tuaton_core::AccountId::parse(&s.account_id) else {
                return Err(crate::error::corrupt("a document's signer"));
            };
            let found =
                tuaton_store::accounts::by_id(self.store().conn().await?.conn(), &account).await?;
            let citizen = found
                .filter(|a| crate::signing::may_sign(a).is_ok())
                .and_then(|a| a.citizen_id)
                .and_then(|c| CitizenId::parse(&c).ok());
            match citizen {
                Some(c) => ids.push((account, c)),
                None => return Ok(None),
            }
        }
        Ok(Some(ids))
    }

    /// Begins signing document `id` for the person logged in (`session`):
    /// the one the agency named, if it named one; for a company's document,
    /// a director the registry lists now, signing as its representative.
    /// The passkey's challenge commits to the prepared file, the request
    /// and the certificate.
    pub async fn start_document_signing(
        &self,
        session: &ActiveSession,
        id: &str,
        now: OffsetDateTime,
    ) -> Result<SigningChallenge, IdmError> {
        let Ready {
            document: d,
            turn,
            file: FileToSign { bytes, sha256, .. },
            ..
        } = self.ready_to_sign(session, id, false, now).await?;
        // One person confirms a document at a time: a request another
        // began, still waiting for their passkey, is theirs until it ends.
        let replaced = d.signing_request.clone();
        if let Some(begun) = &replaced {
            let theirs = tuaton_store::signing::by_id(self.store().conn().await?.conn(), begun)
                .await?
                .filter(|r| {
                    r.state == tuaton_store::signing::RequestState::Pending
                        && r.expires > now
                        && r.account_id != session.account_id
                });
            if theirs.is_some() {
                return Err(IdmError::SigningInProgress);
            }
        }
        let challenge = self
            .start_signing_for(
                session,
                &[DocumentDigest {
                    name: d.name.clone(),
                    size: bytes.len() as u64,
                    sha256,
                    pdf: Some(PdfDocument {
                        bytes,
                        visible: None,
                    }),
                    json: None,
                    xml: None,
                }],
                turn.as_ref().map(|t| &t.company),
                now,
            )
            .await?;
        if !stored::begin_signing(
            self.store().conn().await?.conn(),
            id,
            &challenge.request_id,
            replaced.as_deref(),
            now,
        )
        .await?
        {
            // Gone, or begun by another meanwhile.
            self.waiting_document(id, Files::Skip, now).await?;
            return Err(IdmError::SigningInProgress);
        }
        Ok(challenge)
    }

    /// Signs document `id` with the passkey's assertion over the request
    /// the page began, keeps the signed file for the agency in the
    /// signing's transaction, and returns where to send the browser: the
    /// agency's redirect URI with `document` and its `state`. A company's
    /// document is checked with the registry again first; while it needs
    /// more directors, the file as signed so far waits for the next.
    pub async fn finish_document_signing(
        &self,
        session: &ActiveSession,
        id: &str,
        response: &PublicKeyCredential,
        now: OffsetDateTime,
    ) -> Result<Url, IdmError> {
        let Ready {
            document: d,
            subject: sub,
            turn,
            file: FileToSign { bytes: content, .. },
        } = self.ready_to_sign(session, id, true, now).await?;
        let request = d.signing_request.clone().ok_or(IdmError::UnknownDocument)?;
        let step = DocumentStep {
            document: &d,
            subject: &sub,
            company: turn.as_ref().map(|t| &t.company.id),
            complete: turn.as_ref().is_none_or(|t| t.complete),
        };
        self.finish_signing_with(session, &request, response, vec![content], Some(step), now)
            .await?;
        redirect(
            &d.redirect_uri,
            &[("document", id)],
            d.client_state.as_deref(),
        )
    }

    /// The person declines document `id`: the agency hears `access_denied`
    /// at its redirect URI, with `document` and its `state`. Whoever may
    /// sign a document may decline it: a person's own document that the
    /// agency posted for anyone who logs in is declined by whoever holds
    /// the page, as a login is; one it posted for one person only by that
    /// person, logged in (`session`); a company's only by a director the
    /// registry lists, logged in, since other directors' signatures may be
    /// in it.
    pub async fn decline_document(
        &self,
        session: Option<&ActiveSession>,
        id: &str,
        now: OffsetDateTime,
    ) -> Result<Url, IdmError> {
        let d = self.waiting_document(id, Files::Skip, now).await?;
        let actor = match (&d.company_id, session) {
            (None, None) if d.subject.is_none() => Actor::Anonymous,
            (_, None) => return Err(IdmError::LoginRequired),
            (None, Some(s)) => {
                self.signer_of(&d, s, now).await?;
                s.actor()
            }
            (Some(_), Some(s)) => {
                let account = self.account_of(s).await?;
                self.directors_turn(&d, &account, Act::Decline, now).await?;
                s.actor()
            }
        };
        let mut tx = self.store().begin().await?;
        if !stored::mark_declined(tx.conn(), id, now).await? {
            return Err(IdmError::UnknownDocument);
        }
        let ev = audit::success(&actor, action::DOCUMENT_DECLINE, id.to_owned())
            .with_details(json!({ "client_id": d.client_id, "company": d.company_id }));
        tuaton_store::audit::append(&mut tx, now, &ev).await?;
        tx.commit().await?;
        redirect(
            &d.redirect_uri,
            &[("error", "access_denied"), ("document", id)],
            d.client_state.as_deref(),
        )
    }

    /// Document `id` as the client that posted it reads it, with the
    /// signed file or without (`files`: a status poll reads no file);
    /// another client hears that there is none.
    pub async fn agency_document(
        &self,
        client: &ClientConfig,
        id: &str,
        files: Files,
        now: OffsetDateTime,
    ) -> Result<AgencyView, IdmError> {
        let d = stored::by_id(self.store().conn().await?.conn(), id, files)
            .await?
            .filter(|d| d.client_id == client.client_id && d.expires > now)
            .ok_or(IdmError::UnknownDocument)?;
        Ok(AgencyView {
            state: d.state,
            name: d.name,
            sha256: d.sha256,
            signed: d.signed,
            signer: d
                .signer_subject
                .filter(|_| d.state == DocumentState::Signed),
            signatures: d
                .signatures
                .iter()
                .map(|s| (s.subject.clone(), s.at()))
                .collect(),
            company: d.company_id,
            expires_at: d.expires,
        })
    }
}
