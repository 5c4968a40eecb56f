//! Signing requests: what a person was asked to sign, the passkey
//! confirmation that approved it, and whether it was signed.

use serde::{Deserialize, Serialize};
use sqlx::{Any, Executor};
use time::OffsetDateTime;
use tuaton_core::AccountId;

use crate::{StoreError, Tx, from_ms, to_ms};

/// One document of a request, as shown to the signer and signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestedDocument {
    /// The file's name as the signer sees it.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256, lower-case hex.
    pub sha256: String,
    /// For a PDF signed in the file (PAdES): how its signature is laid
    /// out, which fixes the bytes signed. Absent for a detached signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pdf: Option<PdfPlan>,
    /// For a JSON document signed with a JWS: how. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jws: Option<JwsPlan>,
    /// An XML document signed with an enveloped XAdES signature.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub xades: bool,
    /// A hash an agency computed, signed as it is (CSC API v2.0
    /// `signatures/signHash`): `name` is the label the agency gave it and
    /// `size` is 0.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hash_only: bool,
}

impl RequestedDocument {
    /// Whether the document is sent whole to be signed (a PDF, JSON or
    /// XML), not only described by its digest.
    pub fn is_sent_whole(&self) -> bool {
        self.pdf.is_some() || self.jws.is_some() || self.xades
    }
}

/// How a JSON document's JWS is made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwsPlan {
    /// Detached with the document's own bytes signed (RFC 7797), or the
    /// document attached, base64url-encoded.
    pub detached: bool,
}

/// How a PDF's signature is laid out: with the request's time, these
/// fix the incremental update, so the same file prepared again gives the
/// same digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PdfPlan {
    /// The file's pages.
    pub pages: u32,
    /// The SHA-256 over the signature's `/ByteRange`, lower-case hex: what
    /// the signature's message-digest will be.
    pub signed_digest: String,
    /// The signer's name for the signature dictionary.
    pub name: String,
    /// The signature dictionary's `/Reason`: for a director, the company
    /// signed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A visible signature's page (1 for the first), box (`[x1, y1, x2,
    /// y2]` in points) and lines of text; invisible without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visible: Option<Visible>,
}

/// Where a visible signature is drawn, and what it says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Visible {
    /// The page, 1 for the first.
    pub page: u32,
    /// The box in whole points from the page's lower left.
    pub rect: [i32; 4],
    /// The lines of text.
    pub lines: Vec<String>,
}

/// Where a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestState {
    /// Waiting for the signer's confirmation.
    Pending,
    /// Confirmed and signed; the evidence is kept.
    Signed,
}

/// A signing request as stored.
#[derive(Debug, Clone, Serialize)]
pub struct SigningRequest {
    /// Opaque id, shown to the signer.
    pub id: String,
    /// The signer.
    pub account_id: AccountId,
    /// The WebAuthn ceremony its confirmation answers.
    #[serde(skip)]
    pub ceremony_id: String,
    /// The signer certificate the request signs under.
    pub certificate_id: String,
    /// The documents, in order.
    pub documents: Vec<RequestedDocument>,
    /// The confirmation's challenge, hex.
    pub challenge: String,
    /// Pending or signed.
    pub state: RequestState,
    /// When asked.
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    /// After this a pending request is not signed.
    #[serde(with = "time::serde::rfc3339")]
    pub expires: OffsetDateTime,
    /// When signed.
    #[serde(with = "time::serde::rfc3339::option")]
    pub signed: Option<OffsetDateTime>,
    /// The confirmation (JSON), once signed.
    pub evidence: Option<serde_json::Value>,
}

const COLUMNS: &str = "id, account_id, ceremony_id, certificate_id, documents, challenge, state, \
     created_ms, expires_ms, signed_ms, evidence";

type Row = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<i64>,
    Option<String>,
);

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("a stored signing request's {what} is malformed"))
}

fn from_row(r: Row) -> Result<SigningRequest, StoreError> {
    Ok(SigningRequest {
        id: r.0,
        account_id: crate::stored_account_id(&r.1)?,
        ceremony_id: r.2,
        certificate_id: r.3,
        documents: serde_json::from_str(&r.4).map_err(|_| corrupt("documents"))?,
        challenge: r.5,
        state: match r.6.as_str() {
            "pending" => RequestState::Pending,
            "signed" => RequestState::Signed,
            _ => return Err(corrupt("state")),
        },
        created: from_ms(r.7),
        expires: from_ms(r.8),
        signed: r.9.map(from_ms),
        evidence: r
            .10
            .map(|e| serde_json::from_str(&e).map_err(|_| corrupt("evidence")))
            .transpose()?,
    })
}

/// A request to store.
#[derive(Debug, Clone)]
pub struct NewRequest<'a> {
    /// Its id.
    pub id: &'a str,
    /// The signer.
    pub account_id: &'a AccountId,
    /// The confirmation's ceremony.
    pub ceremony_id: &'a str,
    /// The signer certificate.
    pub certificate_id: &'a str,
    /// The documents, in order.
    pub documents: &'a [RequestedDocument],
    /// The confirmation's challenge, hex.
    pub challenge: &'a str,
    /// Its end.
    pub expires: OffsetDateTime,
}

/// Stores a pending request.
pub async fn insert<'e, E: Executor<'e, Database = Any>>(
    db: E,
    new: &NewRequest<'_>,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let documents =
        serde_json::to_string(new.documents).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    sqlx::query(&format!(
        "INSERT INTO signing_requests ({COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8, NULL, NULL)"
    ))
    .bind(new.id)
    .bind(new.account_id.as_str())
    .bind(new.ceremony_id)
    .bind(new.certificate_id)
    .bind(documents)
    .bind(new.challenge)
    .bind(to_ms(now))
    .bind(to_ms(new.expires))
    .execute(db)
    .await?;
    Ok(())
}

/// One request by id.
pub async fn by_id<'e, E: Executor<'e, Database = Any>>(
    db: E,
    id: &str,
) -> Result<Option<SigningRequest>, StoreError> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM signing_requests WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await?;
    row.map(from_row).transpose()
}

/// [`by_id`] for a batch.
pub fn request(id: &str) -> crate::batch::Query<Option<SigningRequest>> {
    crate::batch::Query::new(
        crate::batch::Statement::new(format!(
            "SELECT {COLUMNS} FROM signing_requests WHERE id = $1"
        ))
        .bind(id),
        |out| crate::batch::first_mapped::<Row, _>(out, from_row),
    )
}

/// Marks a pending, unexpired request signed with its evidence; `false`
/// when it was not pending (signed by a racing call) or has expired.
pub async fn mark_signed(
    tx: &mut Tx,
    id: &str,
    evidence: &serde_json::Value,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "UPDATE signing_requests SET state = 'signed', signed_ms = $1, evidence = $2 \
         WHERE id = $3 AND state = 'pending' AND expires_ms > $1",
    )
    .bind(to_ms(now))
    .bind(evidence.to_string())
    .bind(id)
    .execute(tx.conn())
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Deletes an erased account's signing requests (document names and the
/// confirmations); the signed documents carry their own signatures.
pub async fn forget_account(tx: &mut Tx, account: &AccountId) -> Result<u64, StoreError> {
    let r = sqlx::query("DELETE FROM signing_requests WHERE account_id = $1")
        .bind(account.as_str())
        .execute(tx.conn())
        .await?;
    Ok(r.rows_affected())
}
