//! PDFs agencies posted for a person to sign (the document API), and the
//! signed files they fetch.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Row as _};
use time::OffsetDateTime;

use crate::{StoreError, from_ms, to_ms};

/// Where a posted document is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentState {
    /// Waiting for the person.
    Pending,
    /// Signed; the signed file is kept.
    Signed,
    /// The person declined.
    Declined,
}

impl DocumentState {
    /// As stored and as the API names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Signed => "signed",
            Self::Declined => "declined",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "pending" => Ok(Self::Pending),
            "signed" => Ok(Self::Signed),
            "declined" => Ok(Self::Declined),
            other => Err(StoreError::Corrupt(format!(
                "an agency document's state {other:?}"
            ))),
        }
    }
}

/// One signature a document carries, in the order they were made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentSignature {
    /// The account that signed.
    pub account_id: String,
    /// The posting client's `sub` of the signer.
    pub subject: String,
    /// When, in milliseconds since the epoch.
    pub at_ms: i64,
}

impl DocumentSignature {
    /// When it was made.
    pub fn at(&self) -> OffsetDateTime {
        from_ms(self.at_ms)
    }
}

/// A posted document as stored.
#[derive(Debug, Clone)]
pub struct AgencyDocument {
    /// Opaque id; also the signing page's address.
    pub id: String,
    /// The client that posted it.
    pub client_id: String,
    /// The client's `sub` of the one person who may sign; `None`: anyone
    /// who logs in.
    pub subject: Option<String>,
    /// The file's name as the person sees it.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256, lower-case hex.
    pub sha256: String,
    /// Its pages.
    pub pages: u32,
    /// The file.
    pub content: Vec<u8>,
    /// Where the browser goes afterwards.
    pub redirect_uri: String,
    /// The agency's `state`, carried there.
    pub client_state: Option<String>,
    /// Pending, signed or declined.
    pub state: DocumentState,
    /// The signing request the page began last.
    pub signing_request: Option<String>,
    /// The signed file, once signed.
    pub signed: Option<Vec<u8>>,
    /// The client's `sub` of the signer who completed it.
    pub signer_subject: Option<String>,
    /// For a company's document, its juristic id.
    pub company_id: Option<String>,
    /// And its registered name when it was posted.
    pub company_name: Option<String>,
    /// The signatures made so far, in order.
    pub signatures: Vec<DocumentSignature>,
    /// While more of a company's directors must sign: the file as signed
    /// so far, which the next one signs.
    pub partial: Option<Vec<u8>>,
    /// That file's size and SHA-256 (lower-case hex).
    pub partial_facts: Option<(u64, String)>,
    /// When it was posted.
    pub created: OffsetDateTime,
    /// After this it is not signed.
    pub expires: OffsetDateTime,
    /// When it was signed or declined.
    pub done: Option<OffsetDateTime>,
}

/// A document to store.
#[derive(Debug, Clone)]
pub struct NewDocument<'a> {
    /// Its id.
    pub id: &'a str,
    /// The posting client.
    pub client_id: &'a str,
    /// Who may sign it.
    pub subject: Option<&'a str>,
    /// The file's name.
    pub name: &'a str,
    /// Its SHA-256, hex.
    pub sha256: &'a str,
    /// Its pages.
    pub pages: u32,
    /// The file.
    pub content: &'a [u8],
    /// Where the browser goes afterwards.
    pub redirect_uri: &'a str,
    /// The agency's `state`.
    pub client_state: Option<&'a str>,
    /// The company whose directors sign it: its juristic id and
    /// registered name.
    pub company: Option<(&'a str, &'a str)>,
    /// Its end.
    pub expires: OffsetDateTime,
}

const COLUMNS: &str = "id, client_id, subject, name, size, sha256, pages, content_base64, \
     redirect_uri, client_state, state, signing_request, signed_base64, signer_subject, \
     created_ms, expires_ms, done_ms, company_id, company_name, signatures, partial_base64, \
     partial_size, partial_sha256";

/// [`COLUMNS`] with the files left out.
const FACTS: &str = "id, client_id, subject, name, size, sha256, pages, \
     '' AS content_base64, redirect_uri, client_state, state, signing_request, \
     NULL AS signed_base64, signer_subject, created_ms, expires_ms, done_ms, company_id, \
     company_name, signatures, NULL AS partial_base64, partial_size, partial_sha256";

/// Whether a read takes the files (posted, signed, partly signed) with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Files {
    /// Read them.
    Read,
    /// Leave them: `content` is empty and `signed` and `partial` are
    /// `None`, for a caller that needs only the facts (a page, a status).
    Skip,
}

fn decoded(what: &str, text: &str) -> Result<Vec<u8>, StoreError> {
    STANDARD
        .decode(text)
        .map_err(|_| StoreError::Corrupt(format!("an agency document's {what}")))
}

fn from_row(r: &AnyRow) -> Result<AgencyDocument, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("an agency document's {what}"));
    let content: String = r.try_get("content_base64")?;
    let signed: Option<String> = r.try_get("signed_base64")?;
    let state: String = r.try_get("state")?;
    let done: Option<i64> = r.try_get("done_ms")?;
    let signatures: String = r.try_get("signatures")?;
    let partial: Option<String> = r.try_get("partial_base64")?;
    Ok(AgencyDocument {
        id: r.try_get("id")?,
        client_id: r.try_get("client_id")?,
        subject: r.try_get("subject")?,
        name: r.try_get("name")?,
        size: u64::try_from(r.try_get::<i64, _>("size")?).map_err(|_| corrupt("size"))?,
        sha256: r.try_get("sha256")?,
        pages: u32::try_from(r.try_get::<i64, _>("pages")?).map_err(|_| corrupt("pages"))?,
        content: decoded("content", &content)?,
        redirect_uri: r.try_get("redirect_uri")?,
        client_state: r.try_get("client_state")?,
        state: DocumentState::parse(&state)?,
        signing_request: r.try_get("signing_request")?,
        signed: signed.map(|s| decoded("signed file", &s)).transpose()?,
        signer_subject: r.try_get("signer_subject")?,
        created: from_ms(r.try_get("created_ms")?),
        expires: from_ms(r.try_get("expires_ms")?),
        done: done.map(from_ms),
        company_id: r.try_get("company_id")?,
        company_name: r.try_get("company_name")?,
        signatures: serde_json::from_str(&signatures).map_err(|_| corrupt("signatures"))?,
        partial: partial
            .map(|p| decoded("partly signed file", &p))
            .transpose()?,
        partial_facts: match (
            r.try_get::<Option<i64>, _>("partial_size")?,
            r.try_get::<Option<String>, _>("partial_sha256")?,
        ) {
            (Some(size), Some(sha256)) => Some((
                u64::try_from(size).map_err(|_| corrupt("partly signed size"))?,
                sha256,
            )),
            _ => None,
        },
    })
}

/// Stores a pending document.
pub async fn insert<'e, E: Executor<'e, Database = Any>>(
    db: E,
    new: &NewDocument<'_>,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "INSERT INTO agency_documents ({COLUMNS}) VALUES \
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', NULL, NULL, NULL, $11, $12, NULL, \
         $13, $14, '[]', NULL, NULL, NULL)"
    ))
    .bind(new.id)
    .bind(new.client_id)
    .bind(new.subject)
    .bind(new.name)
    .bind(i64::try_from(new.content.len()).unwrap_or(i64::MAX))
    .bind(new.sha256)
    .bind(i64::from(new.pages))
    .bind(STANDARD.encode(new.content))
    .bind(new.redirect_uri)
    .bind(new.client_state)
    .bind(to_ms(now))
    .bind(to_ms(new.expires))
    .bind(new.company.map(|c| c.0))
    .bind(new.company.map(|c| c.1))
    .execute(db)
    .await?;
    Ok(())
}

/// One document by id, with its files or without (`files`).
pub async fn by_id<'e, E: Executor<'e, Database = Any>>(
    db: E,
    id: &str,
    files: Files,
) -> Result<Option<AgencyDocument>, StoreError> {
    let columns = match files {
        Files::Read => COLUMNS,
        Files::Skip => FACTS,
    };
    let row = sqlx::query(&format!(
        "SELECT {columns} FROM agency_documents WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Makes `signing_request` the one that signs `id`, if it still waits and
/// its request is still `replaced` (none when `None`): a request begun
/// meanwhile by someone else stays. Whether it was made.
pub async fn begin_signing<'e, E: Executor<'e, Database = Any>>(
    db: E,
    id: &str,
    signing_request: &str,
    replaced: Option<&str>,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "UPDATE agency_documents SET signing_request = $1 \
         WHERE id = $2 AND state = 'pending' AND expires_ms > $3 \
         AND COALESCE(signing_request, '') = $4",
    )
    .bind(signing_request)
    .bind(id)
    .bind(to_ms(now))
    .bind(replaced.unwrap_or(""))
    .execute(db)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// The signatures `document` carries with `added` after them, as stored.
fn with_signature(
    document: &AgencyDocument,
    added: DocumentSignature,
) -> Result<String, StoreError> {
    let mut all = document.signatures.clone();
    all.push(added);
    serde_json::to_string(&all).map_err(|e| StoreError::Corrupt(format!("signatures: {e}")))
}

/// Keeps the signed file of `document`, pending with signing request
/// `signing_request`, and `signature` after the ones it carries: signed,
/// or (`complete` false: more of a company's directors must sign) still
/// pending, with the file the next signer signs. `false` when it is not
/// pending (signed or declined meanwhile), another request was begun
/// since, or another signature was added meanwhile.
pub async fn add_signature<'e, E: Executor<'e, Database = Any>>(
    db: E,
    document: &AgencyDocument,
    signing_request: &str,
    signed: &[u8],
    signature: DocumentSignature,
    complete: bool,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let before = serde_json::to_string(&document.signatures)
        .map_err(|e| StoreError::Corrupt(format!("signatures: {e}")))?;
    let subject = signature.subject.clone();
    let after = with_signature(document, signature)?;
    let query = if complete {
        sqlx::query(
            "UPDATE agency_documents SET state = 'signed', signed_base64 = $1, \
             signer_subject = $2, signatures = $3, partial_base64 = NULL, done_ms = $4 \
             WHERE id = $5 AND state = 'pending' AND signing_request = $6 AND signatures = $7",
        )
        .bind(STANDARD.encode(signed))
        .bind(subject)
        .bind(after)
        .bind(to_ms(now))
    } else {
        sqlx::query(
            "UPDATE agency_documents SET partial_base64 = $1, signer_subject = $2, \
             signatures = $3, partial_sha256 = $4, partial_size = $5, signing_request = NULL \
             WHERE id = $6 AND state = 'pending' AND signing_request = $7 AND signatures = $8",
        )
        .bind(STANDARD.encode(signed))
        .bind(subject)
        .bind(after)
        .bind(hex::encode(ring::digest::digest(
            &ring::digest::SHA256,
            signed,
        )))
        .bind(i64::try_from(signed.len()).unwrap_or(i64::MAX))
    };
    let r = query
        .bind(&document.id)
        .bind(signing_request)
        .bind(before)
        .execute(db)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Marks a pending document declined; `false` when it was not pending.
pub async fn mark_declined<'e, E: Executor<'e, Database = Any>>(
    db: E,
    id: &str,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "UPDATE agency_documents SET state = 'declined', done_ms = $1 \
         WHERE id = $2 AND state = 'pending'",
    )
    .bind(to_ms(now))
    .bind(id)
    .execute(db)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Deletes documents whose lifetime ended before `now`, signed or not:
/// the agency fetches a signed file within the document's lifetime.
pub async fn purge_expired(store: &crate::Store, now: OffsetDateTime) -> Result<u64, StoreError> {
    let r = sqlx::query("DELETE FROM agency_documents WHERE expires_ms <= $1")
        .bind(to_ms(now))
        .execute(store.conn().await?.conn())
        .await?;
    Ok(r.rows_affected())
}
