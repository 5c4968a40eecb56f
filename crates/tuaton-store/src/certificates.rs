//! Certificates Tuaton's CA made: the hierarchy's own and signer
//! certificates, with their revocation. The private keys are in the key
//! backend; each row names the managed key it certifies.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde_json::json;
use sqlx::{Any, Executor};
use time::OffsetDateTime;
use tuaton_core::AccountId;

use crate::audit::{self, AuditEvent};
use crate::{StoreError, Tx, from_ms, new_id, to_ms};

/// What a certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CertificateRole {
    /// The self-signed root of the hierarchy.
    Root,
    /// An issuing CA under the root: it certifies signers and responders.
    IssuingCa,
    /// The RFC 3161 time-stamping authority.
    Tsa,
    /// The OCSP responder (RFC 6960).
    Ocsp,
    /// A person's signing certificate.
    Signer,
}

impl CertificateRole {
    /// Every role, in a stable order.
    pub const ALL: [CertificateRole; 5] = [
        CertificateRole::Root,
        CertificateRole::IssuingCa,
        CertificateRole::Tsa,
        CertificateRole::Ocsp,
        CertificateRole::Signer,
    ];

    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            CertificateRole::Root => "root",
            CertificateRole::IssuingCa => "issuing-ca",
            CertificateRole::Tsa => "tsa",
            CertificateRole::Ocsp => "ocsp",
            CertificateRole::Signer => "signer",
        }
    }
}

impl fmt::Display for CertificateRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for CertificateRole {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, StoreError> {
        CertificateRole::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown certificate role `{s}`")))
    }
}

/// A certificate as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredCertificate {
    /// Opaque id; also names the certificate in published URLs.
    pub id: String,
    /// What it is for.
    pub role: CertificateRole,
    /// The managed key it certifies.
    pub key_id: String,
    /// The issuer's certificate; `None` for a root.
    pub issuer_id: Option<String>,
    /// For a signer certificate, the account it binds.
    pub account_id: Option<AccountId>,
    /// The serial number, lower-case hex.
    pub serial_hex: String,
    /// The certificate, DER.
    #[serde(skip)]
    pub der: Vec<u8>,
    /// Start of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// End of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// When it was stored.
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    /// When and why it was revoked (RFC 5280 reason name), if it was.
    pub revoked: Option<Revocation>,
}

/// A revocation as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Revocation {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The RFC 5280 §5.3.1 reason, by name (`keyCompromise`, `cessationOfOperation`, …).
    pub reason: String,
}

impl StoredCertificate {
    /// Whether it is within its validity at `at`.
    pub fn valid_at(&self, at: OffsetDateTime) -> bool {
        self.not_before <= at && at < self.not_after
    }
}

/// A certificate to store.
#[derive(Debug, Clone)]
pub struct NewCertificate<'a> {
    /// What it is for.
    pub role: CertificateRole,
    /// The managed key it certifies.
    pub key_id: &'a str,
    /// The issuer's stored certificate; `None` for a root.
    pub issuer_id: Option<&'a str>,
    /// The account a signer certificate binds.
    pub account_id: Option<&'a AccountId>,
    /// The serial number, lower-case hex.
    pub serial_hex: String,
    /// The certificate, DER.
    pub der: &'a [u8],
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// For a signer certificate, the juristic id of the company it makes
    /// its holder the representative of, confirmed at `now`; `None` for a
    /// person's own.
    pub represents: Option<&'a str>,
}

const COLUMNS: &str = "id, role, key_id, issuer_id, account_id, serial_hex, der_base64, \
     not_before_ms, not_after_ms, created_ms, revoked_ms, revocation_reason";

type Row = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<String>,
);

fn from_row(r: Row) -> Result<StoredCertificate, StoreError> {
    let der = STANDARD
        .decode(r.6.as_bytes())
        .map_err(|_| StoreError::Corrupt("a stored certificate is not base64".into()))?;
    let revoked = match (r.10, r.11) {
        (Some(at), Some(reason)) => Some(Revocation {
            at: from_ms(at),
            reason,
        }),
        _ => None,
    };
    Ok(StoredCertificate {
        id: r.0,
        role: r.1.parse()?,
        key_id: r.2,
        issuer_id: r.3,
        account_id: r.4.as_deref().map(crate::stored_account_id).transpose()?,
        serial_hex: r.5,
        der,
        not_before: from_ms(r.7),
        not_after: from_ms(r.8),
        created: from_ms(r.9),
        revoked,
    })
}

/// Stores a certificate and its audit record (`certificate.issued`).
/// A second certificate for one CA key, or a serial its issuer already
/// used, is refused as a conflict.
pub async fn insert(
    tx: &mut Tx,
    new: &NewCertificate<'_>,
    now: OffsetDateTime,
    actor: &str,
) -> Result<StoredCertificate, StoreError> {
    if (new.role == CertificateRole::Root) != new.issuer_id.is_none()
        || (new.role == CertificateRole::Signer) != new.account_id.is_some()
    {
        return Err(StoreError::Corrupt(format!(
            "a {} certificate with the wrong issuer or account",
            new.role
        )));
    }
    let id = new_id();
    let represents = (new.role == CertificateRole::Signer).then(|| new.represents.unwrap_or(""));
    sqlx::query(&format!(
        "INSERT INTO certificates ({COLUMNS}, represents, represents_checked_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, NULL, $11, $10)"
    ))
    .bind(&id)
    .bind(new.role.as_str())
    .bind(new.key_id)
    .bind(new.issuer_id)
    .bind(new.account_id.map(AccountId::as_str))
    .bind(&new.serial_hex)
    .bind(STANDARD.encode(new.der))
    .bind(to_ms(new.not_before))
    .bind(to_ms(new.not_after))
    .bind(to_ms(now))
    .bind(represents)
    .execute(tx.conn())
    .await?;
    let stored = by_id(tx.conn(), &id).await?.ok_or(StoreError::NotFound {
        what: "certificate",
    })?;
    let details = json!({
        "role": stored.role,
        "key_id": stored.key_id,
        "issuer_id": stored.issuer_id,
        "account_id": stored.account_id,
        "serial": stored.serial_hex,
        "not_before": crate::rfc3339(&stored.not_before),
        "not_after": crate::rfc3339(&stored.not_after),
    });
    audit::append(
        tx,
        now,
        &AuditEvent::success(actor, "certificate.issued", &stored.id).with_details(details),
    )
    .await?;
    Ok(stored)
}

/// One certificate by id.
pub async fn by_id<'e, E: Executor<'e, Database = Any>>(
    db: E,
    id: &str,
) -> Result<Option<StoredCertificate>, StoreError> {
    let row: Option<Row> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM certificates WHERE id = $1"))
            .bind(id)
            .fetch_optional(db)
            .await?;
    row.map(from_row).transpose()
}

/// Every certificate of the hierarchy itself (root, issuing CAs and
/// responders), oldest first; signer certificates are not listed.
pub async fn hierarchy<'e, E: Executor<'e, Database = Any>>(
    db: E,
) -> Result<Vec<StoredCertificate>, StoreError> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM certificates WHERE role <> 'signer' ORDER BY created_ms, id"
    ))
    .fetch_all(db)
    .await?;
    rows.into_iter().map(from_row).collect()
}

/// The certificate signing request `request_id` signs under, for a batch.
pub fn of_signing_request(request_id: &str) -> crate::batch::Query<Option<StoredCertificate>> {
    crate::batch::Query::new(
        crate::batch::Statement::new(format!(
            "SELECT {COLUMNS} FROM certificates \
             WHERE id = (SELECT certificate_id FROM signing_requests WHERE id = $1)"
        ))
        .bind(request_id),
        |out| crate::batch::first_mapped::<Row, _>(out, from_row),
    )
}

/// The certificate `issuer_id` issued with serial `serial_hex` (lower-case
/// hex without leading zeros), if it issued one.
pub async fn by_issuer_serial<'e, E: Executor<'e, Database = Any>>(
    db: E,
    issuer_id: &str,
    serial_hex: &str,
) -> Result<Option<StoredCertificate>, StoreError> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM certificates WHERE issuer_id = $1 AND serial_hex = $2"
    ))
    .bind(issuer_id)
    .bind(serial_hex)
    .fetch_optional(db)
    .await?;
    row.map(from_row).transpose()
}

/// The certificates of one managed key, newest first.
pub async fn of_key<'e, E: Executor<'e, Database = Any>>(
    db: E,
    key_id: &str,
) -> Result<Vec<StoredCertificate>, StoreError> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM certificates WHERE key_id = $1 ORDER BY not_after_ms DESC, id"
    ))
    .bind(key_id)
    .fetch_all(db)
    .await?;
    rows.into_iter().map(from_row).collect()
}

/// The signer certificates that bind `account` and are not revoked for
/// good: in force, or on hold.
pub async fn signers_not_ended<'e, E: Executor<'e, Database = Any>>(
    db: E,
    account: &AccountId,
) -> Result<Vec<StoredCertificate>, StoreError> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM certificates WHERE account_id = $1 AND role = 'signer' \
         AND (revoked_ms IS NULL OR revocation_reason = $2) ORDER BY id"
    ))
    .bind(account.as_str())
    .bind(HOLD)
    .fetch_all(db)
    .await?;
    rows.into_iter().map(from_row).collect()
}

/// Revokes every certificate in force that binds `account` (and, for a
/// reason other than a hold, every one on hold), with an audit record
/// (`certificate.revoked`) each; returns their ids.
pub async fn revoke_of_account(
    tx: &mut Tx,
    account: &AccountId,
    reason: &str,
    now: OffsetDateTime,
    actor: &str,
) -> Result<Vec<String>, StoreError> {
    // A permanent revocation ends held certificates too; a hold holds
    // only those in force.
    let standing = if reason == HOLD {
        Standing::Unrevoked
    } else {
        Standing::NotEnded
    };
    let ids = of_account(tx, account, standing).await?;
    let with = (reason == HOLD).then_some(WITH_ACCOUNT);
    for id in &ids {
        revoke_with(tx, id, reason, with, now, actor).await?;
    }
    Ok(ids)
}

/// What `held_with` says of a hold an account's suspension made.
const WITH_ACCOUNT: &str = "account";

/// The RFC 5280 reason that suspends a certificate instead of ending it.
pub const HOLD: &str = "certificateHold";

/// Revokes the certificate `id` for `reason` (an RFC 5280 reason name),
/// with its audit record (`certificate.revoked`); `false` when there is no
/// such certificate or it is revoked already. A certificate on hold may
/// still be revoked for good (RFC 5280 §5.3.1), not put on hold again.
pub async fn revoke(
    tx: &mut Tx,
    id: &str,
    reason: &str,
    now: OffsetDateTime,
    actor: &str,
) -> Result<bool, StoreError> {
    revoke_with(tx, id, reason, None, now, actor).await
}

/// [`revoke`], a hold marked as the account's (`with`) or not.
async fn revoke_with(
    tx: &mut Tx,
    id: &str,
    reason: &str,
    with: Option<&str>,
    now: OffsetDateTime,
    actor: &str,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE certificates SET revoked_ms = $1, revocation_reason = $2, held_with = $5 \
         WHERE id = $3 AND (revoked_ms IS NULL OR (revocation_reason = $4 AND $2 <> $4))",
    )
    .bind(to_ms(now))
    .bind(reason)
    .bind(id)
    .bind(HOLD)
    .bind(with)
    .execute(tx.conn())
    .await?
    .rows_affected();
    let ev = AuditEvent::success(actor, "certificate.revoked", id)
        .with_details(json!({ "reason": reason }));
    audited(tx, done, now, &ev).await
}

/// Which of an account's certificates [`of_account`] names.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Standing {
    /// Those not revoked.
    Unrevoked,
    /// Those on hold for the account's suspension.
    HeldWithAccount,
    /// Those not revoked for good: unrevoked or on hold.
    NotEnded,
}

/// The ids of `account`'s certificates that `standing` names.
async fn of_account(
    tx: &mut Tx,
    account: &AccountId,
    standing: Standing,
) -> Result<Vec<String>, StoreError> {
    let condition = match standing {
        Standing::Unrevoked => "revoked_ms IS NULL",
        Standing::HeldWithAccount => "revocation_reason = $2 AND held_with = 'account'",
        Standing::NotEnded => "(revoked_ms IS NULL OR revocation_reason = $2)",
    };
    let sql =
        format!("SELECT id FROM certificates WHERE account_id = $1 AND {condition} ORDER BY id");
    let query = sqlx::query_as(&sql).bind(account.as_str());
    let query = if standing == Standing::Unrevoked {
        query
    } else {
        query.bind(HOLD)
    };
    let ids: Vec<(String,)> = query.fetch_all(tx.conn()).await?;
    Ok(ids.into_iter().map(|(id,)| id).collect())
}

/// Appends `ev` when the change it records touched a row (`done`); whether
/// it did.
async fn audited(
    tx: &mut Tx,
    done: u64,
    now: OffsetDateTime,
    ev: &AuditEvent,
) -> Result<bool, StoreError> {
    if done == 0 {
        return Ok(false);
    }
    audit::append(tx, now, ev).await?;
    Ok(true)
}

/// Takes the certificate `id` off hold: it is valid again, the CRL and the
/// OCSP responder say so from then on, with its audit record
/// (`certificate.released`); `false` when it is not on hold.
pub async fn release(
    tx: &mut Tx,
    id: &str,
    now: OffsetDateTime,
    actor: &str,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE certificates SET revoked_ms = NULL, revocation_reason = NULL, held_with = NULL \
         WHERE id = $1 AND revocation_reason = $2",
    )
    .bind(id)
    .bind(HOLD)
    .execute(tx.conn())
    .await?
    .rows_affected();
    audited(
        tx,
        done,
        now,
        &AuditEvent::success(actor, "certificate.released", id),
    )
    .await
}

/// Takes the certificates of `account` that its suspension put on hold off
/// it, each with its audit record; returns their ids. A hold an operator
/// put on a certificate stays until the operator releases it.
pub async fn release_of_account(
    tx: &mut Tx,
    account: &AccountId,
    now: OffsetDateTime,
    actor: &str,
) -> Result<Vec<String>, StoreError> {
    let ids = of_account(tx, account, Standing::HeldWithAccount).await?;
    for id in &ids {
        release(tx, id, now, actor).await?;
    }
    Ok(ids)
}

/// The certificates with serial `serial_hex` (lower-case hex without
/// leading zeros), whichever CA issued them.
pub async fn by_serial<'e, E: Executor<'e, Database = Any>>(
    db: E,
    serial_hex: &str,
) -> Result<Vec<StoredCertificate>, StoreError> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM certificates WHERE serial_hex = $1 ORDER BY created_ms, id"
    ))
    .bind(serial_hex)
    .fetch_all(db)
    .await?;
    rows.into_iter().map(from_row).collect()
}

/// One entry of a CRL: a revoked certificate's id, serial (hex), when and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedEntry {
    /// The stored certificate's id.
    pub id: String,
    /// Its serial number, hex.
    pub serial_hex: String,
    /// When it was revoked.
    pub at: OffsetDateTime,
    /// The RFC 5280 reason name.
    pub reason: String,
}

/// What `issuer_id`'s CRL lists: each certificate it issued that is
/// revoked (without the certificates themselves).
pub async fn revoked_by<'e, E: Executor<'e, Database = Any>>(
    db: E,
    issuer_id: &str,
) -> Result<Vec<RevokedEntry>, StoreError> {
    let rows: Vec<(String, String, i64, String)> = sqlx::query_as(
        "SELECT id, serial_hex, revoked_ms, revocation_reason FROM certificates \
         WHERE issuer_id = $1 AND revoked_ms IS NOT NULL AND revocation_reason IS NOT NULL \
         ORDER BY revoked_ms, id",
    )
    .bind(issuer_id)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, serial_hex, at, reason)| RevokedEntry {
            id,
            serial_hex,
            at: from_ms(at),
            reason,
        })
        .collect())
}

/// Forgets what an erased account's signer certificates say: their DER
/// (the person's name and citizen id) is removed; serial, validity and
/// revocation stay for the CRL.
pub async fn forget_account(tx: &mut Tx, account: &AccountId) -> Result<u64, StoreError> {
    let r = sqlx::query(
        "UPDATE certificates SET der_base64 = '' WHERE account_id = $1 AND role = 'signer'",
    )
    .bind(account.as_str())
    .execute(tx.conn())
    .await?;
    Ok(r.rows_affected())
}

/// A representative certificate in force (or on hold) whose director the
/// registry last confirmed at `checked`.
#[derive(Debug, Clone)]
pub struct Representation {
    /// The certificate.
    pub certificate_id: String,
    /// Its holder.
    pub account_id: AccountId,
    /// The company's juristic id.
    pub company: String,
}

/// Up to `limit` representative certificates not ended whose director was
/// last confirmed at or before `before`, the longest unconfirmed first.
pub async fn representations_due<'e, E: Executor<'e, Database = Any>>(
    db: E,
    before: OffsetDateTime,
    limit: i64,
) -> Result<Vec<Representation>, StoreError> {
    let rows: Vec<(String, Option<String>, String)> = sqlx::query_as(
        "SELECT id, account_id, represents FROM certificates \
         WHERE role = 'signer' AND represents IS NOT NULL AND represents <> '' \
         AND represents_checked_ms <= $1 \
         AND (revoked_ms IS NULL OR revocation_reason = $2) \
         ORDER BY represents_checked_ms, id LIMIT $3",
    )
    .bind(to_ms(before))
    .bind(HOLD)
    .bind(limit)
    .fetch_all(db)
    .await?;
    rows.into_iter()
        .map(|(id, account, company)| {
            let account = account
                .as_deref()
                .map(crate::stored_account_id)
                .transpose()?
                .ok_or_else(|| {
                    StoreError::Corrupt("a signer certificate without an account".into())
                })?;
            Ok(Representation {
                certificate_id: id,
                account_id: account,
                company,
            })
        })
        .collect()
}

/// Records that the registry confirmed the representation of certificate
/// `id` at `now`.
pub async fn representation_confirmed<'e, E: Executor<'e, Database = Any>>(
    db: E,
    id: &str,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE certificates SET represents_checked_ms = $1 WHERE id = $2")
        .bind(to_ms(now))
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// Up to `limit` signer certificates stored before the company they
/// represent was recorded: their ids and DER, for the caller to read the
/// company from and record with [`set_represents`].
pub async fn signers_unclassified<'e, E: Executor<'e, Database = Any>>(
    db: E,
    limit: i64,
) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, der_base64 FROM certificates \
         WHERE role = 'signer' AND represents IS NULL ORDER BY id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(db)
    .await?;
    rows.into_iter()
        .map(|(id, der)| {
            let der = STANDARD
                .decode(der.as_bytes())
                .map_err(|_| StoreError::Corrupt("a stored certificate is not base64".into()))?;
            Ok((id, der))
        })
        .collect()
}

/// Records the company signer certificate `id` represents (`""`: none),
/// as confirmed when it was made.
pub async fn set_represents<'e, E: Executor<'e, Database = Any>>(
    db: E,
    id: &str,
    company: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE certificates SET represents = $1, represents_checked_ms = created_ms \
         WHERE id = $2 AND represents IS NULL",
    )
    .bind(company)
    .bind(id)
    .execute(db)
    .await?;
    Ok(())
}
