//! Remote signing for agencies, as the Cloud Signature Consortium API
//! v2.0 describes it, authorised through Tuaton's OpenID Provider.
//!
//! A person's credential is their signing key and its certificate; its
//! `credentialID` is the key's id. An agency holding an access token with
//! the `service` scope lists and describes it (`credentials/list`,
//! `credentials/info`). To sign, the agency sends the person through an
//! authorization request naming the hashes (`authorization_details` of
//! type `credential`, or the `credential` scope's parameters): after the
//! login the person sees the agency, each hash's label and value, and
//! confirms with a passkey whose challenge commits to exactly these hashes,
//! the request's id and the certificate (sole control, SCAL2). The access
//! token the code gives carries the confirmed request; with it the agency
//! may take a Signature Activation Data value (`credentials/authorize`),
//! and `signatures/signHash` signs hashes of that request — each once, the
//! whole confirmation spent by the first call — with the person's key in
//! the backend. The confirmation is kept with the request as evidence and
//! the signing is one audit record.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest::{SHA256, digest};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use tuaton_core::ErrorCode;
use tuaton_keys::{SignatureAlgorithm, SignatureFormat};
use tuaton_oidc::CredentialAuthorization;
use tuaton_store::accounts::Account;
use tuaton_store::batch::{Batch, Statement};
use tuaton_store::ceremonies::{self, CeremonyKind};
use tuaton_store::certificates::{self, CertificateRole, StoredCertificate};
use tuaton_store::keys::{self, KeyPurpose, KeyState, ManagedKey};
use tuaton_store::signing::{self as requests, RequestState, RequestedDocument, SigningRequest};
use webauthn_rs::prelude::PublicKeyCredential;

use crate::custody::CustodyError;
use crate::pki::chain_of;
use crate::sessions::ActiveSession;
use crate::signing::{
    DocumentDigest, HASH, Job, MAX_DOCUMENTS, PdfDocument, Signed, SigningChallenge, SigningRecord,
    b64, check_documents, confirmation_challenge, format_of, may_sign, planned_pdf,
};
use crate::{Idm, IdmError};

/// `ecdsa-with-SHA256` (RFC 5758), the signature `signHash` makes.
pub const ECDSA_SHA256_OID: &str = "1.2.840.10045.4.3.2";
/// `id-ecPublicKey` (RFC 5480), which CSC clients also send as the key's
/// algorithm, the hash named apart.
pub const EC_PUBLIC_KEY_OID: &str = "1.2.840.10045.2.1";
/// The P-256 curve's object identifier (RFC 5480).
pub const P256_OID: &str = "1.2.840.10045.3.1.7";

/// A person's credential as the CSC `credentials/info` method describes it.
#[derive(Debug, Clone)]
pub struct Credential {
    /// The `credentialID`: the signing key's id.
    pub id: String,
    /// Whether the key may sign now (active, with a valid certificate).
    pub enabled: bool,
    /// The signer certificate and the chain above it, DER, leaf first.
    pub chain: Vec<Vec<u8>>,
    /// The leaf certificate as stored.
    pub certificate: StoredCertificate,
    /// Its subject, RFC 4514.
    pub subject_dn: String,
    /// Its issuer, RFC 4514.
    pub issuer_dn: String,
}

/// Who calls `credentials/authorize` or `signatures/signHash`: the
/// person and the client the access token names, the signing request it
/// carries (none for a token without a confirmation), and the
/// `credentialID` the call names.
#[derive(Debug, Clone, Copy)]
pub struct SignatureCaller<'a> {
    /// The person the token was issued for.
    pub account: &'a Account,
    /// The client it was issued to.
    pub client_id: &'a str,
    /// The confirmed request it carries.
    pub signing_request: Option<&'a str>,
    /// The credential the call names.
    pub credential_id: &'a str,
}

/// A confirmed request of hashes, ready to be recorded with the code that
/// lets the agency sign them: the activation it becomes, and the passkey
/// use to record.
pub(crate) struct Activation {
    /// The signing request.
    pub request_id: String,
    /// The writes that keep it: the activation ceremony and the passkey's use.
    pub writes: Vec<Statement>,
}

/// What an activation ceremony keeps: the client it was confirmed to, the
/// confirmation's evidence and the passkey that made it.
#[derive(Serialize, Deserialize)]
struct Activated {
    client_id: String,
    evidence: serde_json::Value,
    cred_id: String,
}

/// The documents of a request of hashes, as `authorization` names them.
fn hash_documents(authorization: &CredentialAuthorization) -> Vec<RequestedDocument> {
    authorization
        .hashes
        .iter()
        .map(|h| RequestedDocument {
            name: h.label.clone().unwrap_or_default(),
            size: 0,
            sha256: hex::encode(h.hash),
            pdf: None,
            jws: None,
            xades: false,
            hash_only: true,
        })
        .collect()
}

/// Whether the confirmation's evidence (the client data the authenticator
/// signed) names `challenge`.
fn evidence_names(evidence: &serde_json::Value, challenge: &[u8; 32]) -> bool {
    evidence["client_data_json"]
        .as_str()
        .and_then(|d| URL_SAFE_NO_PAD.decode(d).ok())
        .and_then(|d| serde_json::from_slice::<serde_json::Value>(&d).ok())
        .is_some_and(|d| d["challenge"].as_str() == Some(b64(challenge).as_str()))
}

/// A refusal the agency caused, as `invalid_request`.
fn invalid(message: impl Into<String>) -> IdmError {
    IdmError::Invalid {
        code: ErrorCode::InvalidField,
        message: message.into(),
    }
}

impl Idm {
    /// The account's signing key, made when it has none yet, and its
    /// certificate: the account's one credential.
    async fn credential_of(
        &self,
        account: &Account,
        now: OffsetDateTime,
    ) -> Result<(ManagedKey, StoredCertificate), IdmError> {
        let key = self.user_key(&account.id, now).await?;
        let certificate = self.signer_certificate(account, &key, None, now).await?;
        Ok((key, certificate))
    }

    /// The credentials of `account` (`credentials/list`): its signing key,
    /// made at this first ask when the account may sign and has none; none
    /// when it may not sign.
    pub async fn csc_credentials(
        &self,
        account: &Account,
        now: OffsetDateTime,
    ) -> Result<Vec<Credential>, IdmError> {
        if may_sign(account).is_err() {
            return Ok(Vec::new());
        }
        let (key, certificate) = match self.credential_of(account, now).await {
            Ok(c) => c,
            Err(IdmError::CertificateRevoked) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        Ok(vec![self.describe(key, certificate).await?])
    }

    /// One credential of `account` (`credentials/info`), by its id. Only a
    /// key the account has is described: this makes none.
    pub async fn csc_credential(
        &self,
        account: &Account,
        credential_id: &str,
        now: OffsetDateTime,
    ) -> Result<Credential, IdmError> {
        if may_sign(account).is_err() {
            return Err(IdmError::UnknownSigningCredential);
        }
        let (key, certificate) = self.named_credential(account, credential_id, now).await?;
        self.describe(key, certificate).await
    }

    /// The account's signing key, if it is the one `credential_id` names,
    /// and its certificate. The id is compared before anything is made: a
    /// credential named wrongly makes no key; a key's certificate is
    /// renewed when it has none valid.
    async fn named_credential(
        &self,
        account: &Account,
        credential_id: &str,
        now: OffsetDateTime,
    ) -> Result<(ManagedKey, StoredCertificate), IdmError> {
        let key = keys::user_signing_key(self.store().conn().await?.conn(), &account.id, now)
            .await?
            .filter(|k| k.id == credential_id)
            .ok_or(IdmError::UnknownSigningCredential)?;
        let certificate = match self.signer_certificate(account, &key, None, now).await {
            Err(IdmError::CertificateRevoked) => return Err(IdmError::UnknownSigningCredential),
            other => other?,
        };
        Ok((key, certificate))
    }

    async fn describe(
        &self,
        key: ManagedKey,
        certificate: StoredCertificate,
    ) -> Result<Credential, IdmError> {
        let chain = chain_of(self.store(), &certificate)
            .await?
            .into_iter()
            .map(|c| c.der);
        let (subject_dn, issuer_dn) =
            tuaton_pki::names(&certificate.der).map_err(CustodyError::Pki)?;
        Ok(Credential {
            subject_dn,
            issuer_dn,
            id: key.id.clone(),
            enabled: key.state == KeyState::Active && certificate.revoked.is_none(),
            chain: std::iter::once(certificate.der.clone())
                .chain(chain)
                .collect(),
            certificate,
        })
    }

    /// Begins the confirmation of the hashes an authorization request
    /// names: the person logged in (`session`) must be able to sign, with
    /// the credential the agency named, and sees the hashes and their
    /// labels on the page that asks for the passkey.
    pub(crate) async fn begin_hash_signing(
        &self,
        session: &ActiveSession,
        authorization: &CredentialAuthorization,
        now: OffsetDateTime,
    ) -> Result<SigningChallenge, IdmError> {
        let account = self.signer_account(session).await?;
        self.count_attempt(&account.id)?;
        let active = self.active_passkeys(&account).await?;
        let (_, certificate) = self
            .named_credential(&account, &authorization.credential_id, now)
            .await?;
        self.open_request(
            &account,
            certificate,
            hash_documents(authorization),
            &active,
            now,
        )
        .await
    }

    /// Verifies the passkey assertion that confirms the request of hashes
    /// `request_id` for `client_id`, and spends the confirmation: the
    /// request must be this person's, pending, and name exactly the hashes
    /// of `authorization`. Returns what the code's transaction records.
    pub(crate) async fn confirm_hash_signing(
        &self,
        session: &ActiveSession,
        client_id: &str,
        request_id: &str,
        response: &PublicKeyCredential,
        authorization: &CredentialAuthorization,
        now: OffsetDateTime,
    ) -> Result<Activation, IdmError> {
        let account = self.signer_account(session).await?;
        self.count_attempt(&account.id)?;
        let request = requests::by_id(self.store().conn().await?.conn(), request_id)
            .await?
            .filter(|r| {
                r.account_id == account.id
                    && r.state == RequestState::Pending
                    && r.expires > now
                    && r.documents == hash_documents(authorization)
            })
            .ok_or(IdmError::UnknownSigningRequest)?;
        let confirmed = self
            .verify_confirmation(&account, &request, None, response, now)
            .await?;
        self.claim_confirmation(&request).await?;
        let kept = Activated {
            client_id: client_id.to_owned(),
            evidence: confirmed.evidence,
            cred_id: confirmed.recognised.record.cred_id.clone(),
        };
        Ok(Activation {
            request_id: request.id.clone(),
            writes: vec![
                ceremonies::insert_as(
                    &request.id,
                    CeremonyKind::SignatureActivation,
                    Some(&account.id),
                    &serde_json::to_string(&kept).map_err(IdmError::internal)?,
                    request.expires,
                ),
                confirmed
                    .recognised
                    .record_use(self.passkey_seal(), &confirmed.outcome, now),
            ],
        })
    }

    /// The request the caller's token carries, confirmed by this person
    /// and pending, with everything a signature call checks it by, read in
    /// one round trip: its certificate (the one `credentialID` names), that
    /// certificate's key, its activation and, when the call sent one, the
    /// SAD's ceremony. The activation and the SAD are checked by the caller.
    async fn confirmed_request(
        &self,
        caller: &SignatureCaller<'_>,
        sad: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<ConfirmedRead, IdmError> {
        let request_id = caller
            .signing_request
            .ok_or(IdmError::SignatureNotAuthorised)?;
        let mut reads = Batch::new();
        let request = reads.add(requests::request(request_id));
        let certificate = reads.add(certificates::of_signing_request(request_id));
        let key = reads.add(keys::of_signing_request(request_id));
        let activation = reads.add(ceremonies::lookup(request_id));
        let named = sad.map(|s| reads.add(ceremonies::lookup(&sad_digest(s))));
        let mut read = reads.run(self.store().conn().await?.conn()).await?;
        let account = caller.account;
        let request = read
            .take(request)?
            .filter(|r| {
                r.account_id == account.id
                    && r.state == RequestState::Pending
                    && r.expires > now
                    && r.documents.iter().all(|d| d.hash_only)
            })
            .ok_or(IdmError::SignatureNotAuthorised)?;
        let certificate = read
            .take(certificate)?
            .filter(|c| {
                c.id == request.certificate_id
                    && c.key_id == caller.credential_id
                    && c.role == CertificateRole::Signer
            })
            .ok_or(IdmError::UnknownSigningCredential)?;
        let key = read.take(key)?.filter(|k| k.id == certificate.key_id);
        let activation = read.take(activation)?;
        let sad = named.map(|n| read.take(n)).transpose()?;
        Ok(ConfirmedRead {
            request,
            certificate,
            key,
            activation,
            sad,
        })
    }

    /// The activation `stored` of a request, live at `now`: it must have
    /// been confirmed by `account` for `client_id`.
    fn activation(
        stored: Option<ceremonies::Stored>,
        account: &Account,
        client_id: &str,
        now: OffsetDateTime,
    ) -> Result<Activated, IdmError> {
        let activation = match stored
            .ok_or(ceremonies::TakeError::Unknown)
            .and_then(|s| s.live(CeremonyKind::SignatureActivation, now))
        {
            Ok(a) => a,
            Err(ceremonies::TakeError::Store(e)) => return Err(e.into()),
            Err(_) => return Err(IdmError::SignatureNotAuthorised),
        };
        let kept: Activated = serde_json::from_str(&activation.state)
            .map_err(|_| crate::error::corrupt("a signature activation"))?;
        if kept.client_id != client_id || activation.account_id.as_ref() != Some(&account.id) {
            return Err(IdmError::SignatureNotAuthorised);
        }
        Ok(kept)
    }

    /// `credentials/authorize` for a token that carries a confirmed request:
    /// a Signature Activation Data value bound to it, to `hashes` (which
    /// must be among those confirmed; all of them when none are given) and
    /// to `num_signatures`, with its lifetime in seconds. The SAD adds no
    /// authority to the token's; it is for clients that send one with every
    /// `signHash`.
    pub async fn csc_authorize(
        &self,
        caller: &SignatureCaller<'_>,
        num_signatures: Option<u32>,
        hashes: &[[u8; 32]],
        now: OffsetDateTime,
    ) -> Result<(String, i64), IdmError> {
        let (account, client_id) = (caller.account, caller.client_id);
        let ConfirmedRead {
            request,
            activation,
            ..
        } = self.confirmed_request(caller, None, now).await?;
        Self::activation(activation, account, client_id, now)?;
        check_hashes(&request, hashes)?;
        if let Some(n) = num_signatures
            && (n == 0 || n as usize > request.documents.len())
        {
            return Err(invalid(format!(
                "numSignatures is 1 to {}, the hashes the person confirmed",
                request.documents.len()
            )));
        }
        let mut secret = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut secret)
            .map_err(|_| IdmError::internal("the system random source failed"))?;
        let sad = URL_SAFE_NO_PAD.encode(secret);
        let named: Vec<String> = if hashes.is_empty() {
            request.documents.iter().map(|d| d.sha256.clone()).collect()
        } else {
            hashes.iter().map(hex::encode).collect()
        };
        let state = Sad {
            request: request.id.clone(),
            client_id: client_id.to_owned(),
            signatures: num_signatures.map_or(named.len(), |n| n as usize),
            hashes: named,
        };
        let state = serde_json::to_string(&state).map_err(IdmError::internal)?;
        // A token takes a few SADs (one per batch a client signs), not a
        // store's worth.
        let stored = ceremonies::insert_capped(
            &sad_digest(&sad),
            CeremonyKind::SignatureActivationData,
            &account.id,
            &state,
            request.expires,
            MAX_LIVE_SADS,
            now,
        )
        .run(self.store().conn().await?.conn())
        .await?;
        if !stored {
            return Err(invalid(format!(
                "at most {MAX_LIVE_SADS} SADs are live for one person; sign with those given"
            )));
        }
        Ok((sad, (request.expires - now).whole_seconds().max(1)))
    }

    /// What `signatures/signHash` and `signatures/signDoc` check before
    /// anything is spent: the account may sign; the token carries a
    /// confirmed request of this person and credential, whose every hash of
    /// `hashes` (none twice) the person confirmed; the stored request is
    /// still what they confirmed (a row a database writer changed signs
    /// nothing); a `sad` given covers these hashes for this client; the
    /// certificate may sign for the account; and the activation is this
    /// client's and this person's, its evidence naming the challenge.
    async fn authorised(
        &self,
        caller: &SignatureCaller<'_>,
        sad: Option<&str>,
        hashes: &[[u8; 32]],
        now: OffsetDateTime,
    ) -> Result<Authorised, IdmError> {
        let (account, client_id) = (caller.account, caller.client_id);
        may_sign(account)?;
        let ConfirmedRead {
            request,
            certificate,
            key,
            activation,
            sad: named,
        } = self.confirmed_request(caller, sad, now).await?;
        if hashes.is_empty() {
            return Err(invalid("the call names nothing to sign"));
        }
        check_hashes(&request, hashes)?;
        let challenge = confirmation_challenge(&request.id, &certificate.der, &request.documents);
        if hex::encode(challenge) != request.challenge {
            return Err(self.refuse_tampered(&account.id, &request.id, now).await);
        }
        if let Some(named) = named {
            let named = named
                .and_then(|c| c.live(CeremonyKind::SignatureActivationData, now).ok())
                .and_then(|c| serde_json::from_str::<serde_json::Value>(&c.state).ok());
            // The SAD signs what it was asked for: the hashes named when it was
            // taken, at most as many as numSignatures said.
            let fits = named.is_some_and(|v| {
                serde_json::from_value::<Sad>(v)
                    .is_ok_and(|sad| sad.covers(&request.id, client_id, hashes))
            });
            if !fits {
                return Err(IdmError::SignatureNotAuthorised);
            }
        }
        self.check_signer_certificate(account, &certificate, None, now)?;
        let kept = Self::activation(activation, account, client_id, now)?;
        if !evidence_names(&kept.evidence, &challenge) {
            return Err(self.refuse_tampered(&account.id, &request.id, now).await);
        }
        Ok(Authorised {
            request,
            certificate,
            key,
            kept,
        })
    }

    /// Spends the activation of `request_id`, before anything is signed:
    /// racing calls with one token sign once. The spend need not wait for
    /// the disk: the signatures are returned only after the signing
    /// record's durable commit, which takes the spend to the disk with it
    /// (WAL order), so a spend lost in a power cut is one whose signatures
    /// nobody received.
    async fn spend_activation(&self, request_id: &str) -> Result<(), IdmError> {
        let mut spending = Batch::new();
        let spent = spending.add(ceremonies::spend(
            request_id,
            CeremonyKind::SignatureActivation,
        ));
        if !self.store().write_relaxed(spending).await?.take(spent)? {
            return Err(IdmError::SignatureNotAuthorised);
        }
        Ok(())
    }

    /// Records a signing made through the CSC API (the request marked
    /// signed, one audit record) in one transaction; nothing is returned
    /// to the agency unless it committed.
    async fn record_signing(
        &self,
        caller: &SignatureCaller<'_>,
        authorised: &Authorised,
        documents: Vec<serde_json::Value>,
        now: OffsetDateTime,
    ) -> Result<(), IdmError> {
        let mut tx = self.store().begin().await?;
        let recorded = SigningRecord {
            account: caller.account,
            request_id: &authorised.request.id,
            evidence: &authorised.kept.evidence,
            certificate: &authorised.certificate,
            cred_id: &authorised.kept.cred_id,
            documents,
            client_id: Some(caller.client_id),
            posted: None,
        }
        .write(&mut tx, now)
        .await?;
        if !recorded {
            drop(tx);
            return Err(IdmError::SignatureNotAuthorised);
        }
        tx.commit().await?;
        Ok(())
    }

    /// `signatures/signHash`: signs `hashes` (each one the person confirmed
    /// in the request the token carries, none twice) with the credential's
    /// key, ECDSA P-256 over each hash as it is, DER-encoded. A `sad` must
    /// be one `csc_authorize` gave for the same request and client. The
    /// confirmation is spent before anything is signed, and the signing is
    /// recorded with its evidence and audited in one transaction; nothing
    /// is returned unless it committed.
    pub async fn csc_sign_hash(
        &self,
        caller: &SignatureCaller<'_>,
        sad: Option<&str>,
        hashes: &[[u8; 32]],
        now: OffsetDateTime,
    ) -> Result<Vec<Vec<u8>>, IdmError> {
        let authorised = self.authorised(caller, sad, hashes, now).await?;
        let account = caller.account;
        let key = authorised
            .key
            .clone()
            .filter(|k| {
                k.state == KeyState::Active
                    && k.purpose == KeyPurpose::UserSigning
                    && k.account_id.as_ref() == Some(&account.id)
            })
            .ok_or(IdmError::UnknownSigningCredential)?;
        self.spend_activation(&authorised.request.id).await?;

        let backend = self.keys().clone();
        let key_ref: tuaton_keys::KeyRef =
            key.key_ref.parse().map_err(|source| CustodyError::Key {
                id: key.id.clone(),
                source,
            })?;
        let owned = hashes.to_vec();
        let signatures = tokio::task::spawn_blocking(move || {
            owned
                .iter()
                .map(|h| {
                    backend.sign_digest(
                        &key_ref,
                        SignatureAlgorithm::Es256,
                        SignatureFormat::Der,
                        h,
                    )
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|_| CustodyError::Interrupted)?
        .map_err(|source| CustodyError::Key {
            id: key.id.clone(),
            source,
        })?;

        let signed: Vec<serde_json::Value> = hashes
            .iter()
            .map(|h| json!({ "sha256": hex::encode(h), "format": HASH }))
            .collect();
        self.record_signing(caller, &authorised, signed, now)
            .await?;
        Ok(signatures)
    }

    /// `signatures/signDoc`: signs `documents`, each one whose SHA-256 the
    /// person confirmed in the request the token carries (none twice), in
    /// the format asked: PAdES B-T in a PDF, CAdES B-T detached, or XAdES
    /// B-T enveloped in an XML document. Every document is read and
    /// prepared before the confirmation is spent, so a document Tuaton
    /// cannot sign spends nothing; the signing is recorded and audited as
    /// signHash's is.
    pub async fn csc_sign_doc(
        &self,
        caller: &SignatureCaller<'_>,
        sad: Option<&str>,
        documents: Vec<DocumentToSign>,
        now: OffsetDateTime,
    ) -> Result<Vec<Signed>, IdmError> {
        if documents.is_empty() || documents.len() > MAX_DOCUMENTS {
            return Err(invalid(format!(
                "documents: 1 to {MAX_DOCUMENTS} documents in one call"
            )));
        }
        let (documents, hashes) = tokio::task::spawn_blocking(move || {
            let hashes: Vec<[u8; 32]> = documents
                .iter()
                .map(|d| {
                    let mut h = [0u8; 32];
                    h.copy_from_slice(digest(&SHA256, &d.bytes).as_ref());
                    h
                })
                .collect();
            (documents, hashes)
        })
        .await
        .map_err(|_| CustodyError::Interrupted)?;
        let authorised = self.authorised(caller, sad, &hashes, now).await?;
        let account = caller.account;
        // Each document as the signing flow checks it, named by the label
        // the person saw beside its hash.
        let label = |h: &[u8; 32]| {
            let hex = hex::encode(h);
            authorised
                .request
                .documents
                .iter()
                .find(|d| d.sha256 == hex)
                .map(|d| d.name.clone())
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| format!("document {}", &hex[..16]))
        };
        let asked: Vec<DocumentDigest> = documents
            .into_iter()
            .zip(&hashes)
            .map(|(d, h)| {
                let mut asked = DocumentDigest {
                    name: label(h),
                    size: d.bytes.len() as u64,
                    sha256: *h,
                    pdf: None,
                    json: None,
                    xml: None,
                };
                match d.format {
                    DocumentFormat::Pades => {
                        asked.pdf = Some(PdfDocument {
                            bytes: d.bytes,
                            visible: None,
                        });
                    }
                    DocumentFormat::Xades => asked.xml = Some(d.bytes),
                    DocumentFormat::Cades => {}
                }
                asked
            })
            .collect();
        let (mut requested, mut asked) =
            tokio::task::spawn_blocking(move || check_documents(&asked).map(|d| (d, asked)))
                .await
                .map_err(|_| CustodyError::Interrupted)??;
        let mut jobs = Vec::with_capacity(asked.len());
        for (i, (asked, doc)) in asked.iter_mut().zip(requested.iter_mut()).enumerate() {
            if let Some(pdf) = &mut asked.pdf {
                jobs.push(Job::InFile(
                    planned_pdf(account, None, i, pdf, doc, now).await?,
                ));
            } else if let Some(xml) = asked.xml.take() {
                jobs.push(Job::Xades(xml));
            } else {
                jobs.push(Job::Detached(asked.sha256));
            }
        }
        self.spend_activation(&authorised.request.id).await?;
        let signed = self
            .sign_documents(account, &authorised.certificate, &requested, jobs, now)
            .await?;
        let record: Vec<serde_json::Value> = requested
            .iter()
            .map(|d| {
                let mut r = json!({ "sha256": d.sha256, "size": d.size, "format": format_of(d) });
                if let Some(plan) = &d.pdf {
                    r["signed_digest"] = json!(plan.signed_digest);
                }
                r
            })
            .collect();
        self.record_signing(caller, &authorised, record, now)
            .await?;
        Ok(signed.into_iter().map(|s| s.signed).collect())
    }
}

/// How `signatures/signDoc` signs a document (CSC `signature_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentFormat {
    /// `P`: PAdES B-T in the PDF.
    Pades,
    /// `C`: CAdES B-T, detached.
    Cades,
    /// `X`: XAdES B-T, enveloped in the XML document.
    Xades,
}

/// A document given to `signatures/signDoc`.
#[derive(Debug, Clone)]
pub struct DocumentToSign {
    /// The document.
    pub bytes: Vec<u8>,
    /// How to sign it.
    pub format: DocumentFormat,
}

/// A signature call that passed every check ([`Idm::authorised`]), before
/// its activation is spent.
struct Authorised {
    request: SigningRequest,
    certificate: StoredCertificate,
    /// The certificate's key, as stored.
    key: Option<ManagedKey>,
    kept: Activated,
}

/// What [`Idm::confirmed_request`] read.
struct ConfirmedRead {
    request: SigningRequest,
    certificate: StoredCertificate,
    key: Option<ManagedKey>,
    activation: Option<ceremonies::Stored>,
    /// The SAD's ceremony, when the call sent a SAD.
    sad: Option<Option<ceremonies::Stored>>,
}

/// How many Signature Activation Data values one person may hold at once.
const MAX_LIVE_SADS: i64 = 8;

/// What a Signature Activation Data value's ceremony keeps: the request
/// and client it was given for, the hashes (lower-case hex) it may sign
/// and how many signatures it makes at most.
#[derive(Serialize, Deserialize)]
struct Sad {
    request: String,
    client_id: String,
    hashes: Vec<String>,
    signatures: usize,
}

impl Sad {
    /// Whether the SAD lets `client_id` sign `hashes` of `request`.
    fn covers(&self, request: &str, client_id: &str, hashes: &[[u8; 32]]) -> bool {
        self.request == request
            && self.client_id == client_id
            && hashes.len() <= self.signatures
            && hashes.iter().all(|h| self.hashes.contains(&hex::encode(h)))
    }
}

/// Refuses a hash the request does not name, or one named twice.
fn check_hashes(request: &SigningRequest, hashes: &[[u8; 32]]) -> Result<(), IdmError> {
    let confirmed: Vec<&str> = request
        .documents
        .iter()
        .map(|d| d.sha256.as_str())
        .collect();
    let mut seen = std::collections::HashSet::new();
    for (i, h) in hashes.iter().enumerate() {
        let hex = hex::encode(h);
        if !confirmed.contains(&hex.as_str()) {
            return Err(IdmError::HashNotConfirmed { index: i });
        }
        if !seen.insert(hex) {
            return Err(invalid(format!("hash {i} is given twice")));
        }
    }
    Ok(())
}

/// A SAD's ceremony id: its SHA-256, so the store holds no usable value.
fn sad_digest(sad: &str) -> String {
    hex::encode(digest(&SHA256, sad.as_bytes()))
}

/// The hashes of a request waiting for the person's confirmation on the
/// authorization page, as it shows them.
pub fn shown_hashes(challenge: &SigningChallenge) -> Vec<(String, String)> {
    challenge
        .documents
        .iter()
        .map(|d| (d.name.clone(), d.sha256.clone()))
        .collect()
}
