//! The append-only, hash-chained audit log.
//!
//! Every change to security state appends one record in the same transaction
//! as the change, so a change without its record (or a record without its
//! change) cannot be committed. Each record stores the SHA-256 of the record
//! before it; the head row holds the latest sequence number and hash. Editing,
//! deleting, inserting or reordering rows — even by someone who can bypass the
//! append-only triggers — breaks a link that [`verify`] reports.
//!
//! Records never hold personal data in clear: callers put identifiers' digests
//! in `target` and `details`, so erasing a person (PDPA) never needs to touch
//! the chain.

use ring::digest::{Context, SHA256};
use serde::Serialize;
use sqlx::Row;
use time::OffsetDateTime;

use crate::batch::{Batch, Query, Statement};
use crate::{Store, StoreError, Tx, from_ms, to_ms};

/// The hash that precedes the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Domain-separation prefix, versioned so the encoding can evolve.
const HASH_DOMAIN: &[u8] = b"tuaton-audit-v1";

/// How an audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It was done.
    Success,
    /// It was refused or failed.
    Failure,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
}

/// One thing to record.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    /// Who did it: `system`, `operator:<name>`, `account:<id>`, `officer:<id>`, `client:<id>`.
    pub actor: String,
    /// What was done, dotted: `key.rotate`, `account.suspend`, `passkey.login`.
    pub action: String,
    /// What it was done to (an opaque id or a digest; never personal data in clear).
    pub target: String,
    /// Whether it succeeded.
    pub outcome: Outcome,
    /// Further facts as JSON (again: digests, not personal data).
    pub details: serde_json::Value,
}

impl AuditEvent {
    /// A successful action with no details.
    pub fn success(
        actor: impl Into<String>,
        action: impl Into<String>,
        target: impl Into<String>,
    ) -> Self {
        Self {
            actor: actor.into(),
            action: action.into(),
            target: target.into(),
            outcome: Outcome::Success,
            details: serde_json::Value::Object(Default::default()),
        }
    }

    /// A refused or failed action with no details.
    pub fn failure(
        actor: impl Into<String>,
        action: impl Into<String>,
        target: impl Into<String>,
    ) -> Self {
        Self {
            outcome: Outcome::Failure,
            ..Self::success(actor, action, target)
        }
    }

    /// Adds details.
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// A record as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// When it was written.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// See [`AuditEvent::actor`].
    pub actor: String,
    /// See [`AuditEvent::action`].
    pub action: String,
    /// See [`AuditEvent::target`].
    pub target: String,
    /// `success` or `failure`.
    pub outcome: String,
    /// The details exactly as stored (JSON text).
    pub details: String,
    /// Hash of the previous record.
    pub prev_hash: String,
    /// Hash of this record.
    pub hash: String,
}

impl AuditRecord {
    /// The hash this record's fields and link give, as [`verify`] computes
    /// it: whoever holds a record can check it without Tuaton's code paths
    /// (docs/architecture.md gives the encoding).
    pub fn recomputed_hash(&self) -> String {
        let fields = RecordFields {
            actor: &self.actor,
            action: &self.action,
            target: &self.target,
            outcome: &self.outcome,
            details: &self.details,
        };
        record_hash(self.seq, to_ms(self.at), &fields, &self.prev_hash)
    }
}

fn record_hash(seq: i64, at_ms: i64, r: &RecordFields<'_>, prev_hash: &str) -> String {
    let mut ctx = Context::new(&SHA256);
    let seq_s = seq.to_string();
    let at_s = at_ms.to_string();
    // Length-prefixed fields: no two different records share an encoding.
    for field in [
        HASH_DOMAIN,
        seq_s.as_bytes(),
        at_s.as_bytes(),
        r.actor.as_bytes(),
        r.action.as_bytes(),
        r.target.as_bytes(),
        r.outcome.as_bytes(),
        r.details.as_bytes(),
        prev_hash.as_bytes(),
    ] {
        ctx.update(&(field.len() as u64).to_be_bytes());
        ctx.update(field);
    }
    hex::encode(ctx.finish())
}

struct RecordFields<'a> {
    actor: &'a str,
    action: &'a str,
    target: &'a str,
    outcome: &'a str,
    details: &'a str,
}

/// Appends `event` inside `tx`; it commits or rolls back with the change it records.
pub async fn append(
    tx: &mut Tx,
    at: OffsetDateTime,
    event: &AuditEvent,
) -> Result<AuditRecord, StoreError> {
    let place = next_place().run(tx.conn()).await?;
    let mut batch = Batch::new();
    let record = place.write(at, event, &mut batch)?;
    batch.run(tx.conn()).await?;
    Ok(record)
}

/// The next place in the chain, taken inside a transaction: the head has
/// moved on by one, and no other appender can move it until the transaction
/// ends. A transaction that takes a place must write a record there
/// ([`Place::write`]) before it commits, or the chain shows a gap.
#[must_use = "a place taken in the chain must be written before the transaction commits"]
pub struct Place {
    seq: i64,
    prev_hash: String,
}

/// Takes the next place in the chain; run it inside the transaction that
/// will write the record (as [`Store::begin_with`]'s batch, say, to save a
/// round trip).
pub fn next_place() -> Query<Place> {
    // Advancing the head first takes its row lock (PostgreSQL) or the write lock
    // (SQLite), so concurrent appenders queue here rather than fork the chain.
    Query::new(
        Statement::new("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash"),
        |out| {
            let head = out
                .rows
                .first()
                .ok_or(StoreError::NotFound { what: "audit head" })?;
            Ok(Place {
                seq: head.try_get("seq")?,
                prev_hash: head.try_get("hash")?,
            })
        },
    )
}

impl Place {
    /// Adds the insert that writes `event` here to `batch`; returns the record.
    pub fn write(
        self,
        at: OffsetDateTime,
        event: &AuditEvent,
        batch: &mut Batch,
    ) -> Result<AuditRecord, StoreError> {
        let Place { seq, prev_hash } = self;
        let at_ms = to_ms(at);
        let details = serde_json::to_string(&event.details)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let fields = RecordFields {
            actor: &event.actor,
            action: &event.action,
            target: &event.target,
            outcome: event.outcome.as_str(),
            details: &details,
        };
        let hash = record_hash(seq, at_ms, &fields, &prev_hash);
        // The insert's trigger (migration 0006) moves the head's hash on, and
        // refuses a record that does not follow the head.
        batch.push(
            Statement::new(
                "INSERT INTO audit_log (seq, at_ms, actor, action, target, outcome, details, prev_hash, hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(seq)
            .bind(at_ms)
            .bind(event.actor.as_str())
            .bind(event.action.as_str())
            .bind(event.target.as_str())
            .bind(event.outcome.as_str())
            .bind(details.as_str())
            .bind(prev_hash.as_str())
            .bind(hash.as_str()),
        );
        Ok(AuditRecord {
            seq,
            at: from_ms(at_ms),
            actor: event.actor.clone(),
            action: event.action.clone(),
            target: event.target.clone(),
            outcome: event.outcome.as_str().to_owned(),
            details,
            prev_hash,
            hash,
        })
    }
}

/// Appends `event` in a transaction of its own; for events with no other change
/// (a refused login, say).
pub async fn append_alone(
    store: &Store,
    at: OffsetDateTime,
    event: &AuditEvent,
) -> Result<AuditRecord, StoreError> {
    let mut tx = store.begin().await?;
    let rec = append(&mut tx, at, event).await?;
    tx.commit().await?;
    Ok(rec)
}

/// Why the chain is broken at a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BrokenLink {
    /// The record's content no longer matches its hash: it was edited.
    ContentChanged {
        /// The record.
        seq: i64,
    },
    /// The record does not point at the one before it: a record was removed,
    /// inserted or moved before it.
    LinkBroken {
        /// The record.
        seq: i64,
    },
    /// Sequence numbers skip: records are missing.
    Gap {
        /// The number expected.
        expected: i64,
        /// The number found.
        found: i64,
    },
    /// The last record is not the one the head names: the tail was cut or replaced.
    HeadMismatch {
        /// The head's sequence number.
        head_seq: i64,
        /// The last sequence number found.
        last_seq: i64,
    },
    /// A signed anchor names this position with another hash: the chain was
    /// rewritten (and re-hashed) from here or before.
    AnchorMismatch {
        /// The anchored record.
        seq: i64,
    },
    /// A signed anchor names a position the chain no longer reaches: records
    /// were removed from the end (a `TRUNCATE` and a reset head, say).
    Truncated {
        /// The highest anchored position.
        anchored_seq: i64,
        /// The last record the chain has.
        last_seq: i64,
    },
}

impl BrokenLink {
    /// The first record id involved.
    pub fn seq(&self) -> i64 {
        match self {
            BrokenLink::ContentChanged { seq } | BrokenLink::LinkBroken { seq } => *seq,
            BrokenLink::Gap { expected, .. } => *expected,
            BrokenLink::HeadMismatch { last_seq, head_seq } => (*last_seq).min(*head_seq) + 1,
            BrokenLink::AnchorMismatch { seq } => *seq,
            BrokenLink::Truncated { last_seq, .. } => *last_seq + 1,
        }
    }
}

impl std::fmt::Display for BrokenLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BrokenLink::ContentChanged { seq } => {
                write!(f, "record {seq} was altered after it was written")
            }
            BrokenLink::LinkBroken { seq } => {
                write!(
                    f,
                    "record {seq} does not follow the record before it (removed, inserted or reordered)"
                )
            }
            BrokenLink::Gap { expected, found } => {
                write!(f, "records {expected} to {} are missing", found - 1)
            }
            BrokenLink::HeadMismatch { head_seq, last_seq } => write!(
                f,
                "the chain ends at record {last_seq} but its head names record {head_seq} (tail cut or replaced)"
            ),
            BrokenLink::AnchorMismatch { seq } => write!(
                f,
                "record {seq} is not the record its signed anchor names (the chain was rewritten)"
            ),
            BrokenLink::Truncated {
                anchored_seq,
                last_seq,
            } => write!(
                f,
                "a signed anchor names record {anchored_seq}, but the chain ends at record {last_seq} (records removed)"
            ),
        }
    }
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    /// Records checked before stopping.
    pub records_checked: i64,
    /// The hash of the last good record.
    pub last_good_hash: String,
    /// The first broken link, if any.
    pub broken: Option<BrokenLink>,
    /// The highest position a signed anchor confirmed before any break:
    /// everything up to it is as it was when anchored.
    pub last_anchored: Option<i64>,
}

impl ChainReport {
    /// Whether the whole chain verified.
    pub fn is_intact(&self) -> bool {
        self.broken.is_none()
    }
}

const VERIFY_PAGE: i64 = 2_000;

/// Walks the whole chain in order and reports the first broken link.
/// Memory stays bounded: records are read a page at a time.
pub async fn verify(store: &Store) -> Result<ChainReport, StoreError> {
    verify_against(store, &[]).await
}

/// As [`verify`], and checks the chain against `anchors`: positions and
/// hashes whose signatures were checked by the caller (signed heads kept
/// outside the database). A rewrite that re-hashed every record after it, or
/// a tail cut with the head reset to match, passes [`verify`] but not this.
pub async fn verify_against(
    store: &Store,
    anchors: &[(i64, String)],
) -> Result<ChainReport, StoreError> {
    let mut anchors: Vec<&(i64, String)> = anchors.iter().collect();
    anchors.sort_by_key(|a| a.0);
    let mut pending = anchors.into_iter().peekable();
    let mut last_anchored = None;
    let mut expected_seq = 1i64;
    let mut prev_hash = GENESIS_HASH.to_owned();
    let mut checked = 0i64;
    loop {
        let rows = sqlx::query(
            "SELECT seq, at_ms, actor, action, target, outcome, details, prev_hash, hash \
             FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT $2",
        )
        .bind(expected_seq)
        .bind(VERIFY_PAGE)
        .fetch_all(store.conn().await?.conn())
        .await?;
        let page_len = rows.len() as i64;
        for row in rows {
            let seq: i64 = row.try_get("seq")?;
            let report = |broken, last_anchored| ChainReport {
                records_checked: checked,
                last_good_hash: prev_hash.clone(),
                broken: Some(broken),
                last_anchored,
            };
            if seq != expected_seq {
                return Ok(report(
                    BrokenLink::Gap {
                        expected: expected_seq,
                        found: seq,
                    },
                    last_anchored,
                ));
            }
            let stored_prev: String = row.try_get("prev_hash")?;
            let stored_hash: String = row.try_get("hash")?;
            let fields = RecordFields {
                actor: &row.try_get::<String, _>("actor")?,
                action: &row.try_get::<String, _>("action")?,
                target: &row.try_get::<String, _>("target")?,
                outcome: &row.try_get::<String, _>("outcome")?,
                details: &row.try_get::<String, _>("details")?,
            };
            let at_ms: i64 = row.try_get("at_ms")?;
            if record_hash(seq, at_ms, &fields, &stored_prev) != stored_hash {
                return Ok(report(BrokenLink::ContentChanged { seq }, last_anchored));
            }
            if stored_prev != prev_hash {
                return Ok(report(BrokenLink::LinkBroken { seq }, last_anchored));
            }
            // An anchor for a position before the first record confirms nothing.
            while pending.next_if(|a| a.0 < seq).is_some() {}
            while let Some((_, hash)) = pending.next_if(|a| a.0 == seq) {
                if *hash != stored_hash {
                    return Ok(report(BrokenLink::AnchorMismatch { seq }, last_anchored));
                }
                last_anchored = Some(seq);
            }
            prev_hash = stored_hash;
            checked += 1;
            expected_seq += 1;
        }
        if page_len < VERIFY_PAGE {
            break;
        }
    }
    let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
        .fetch_one(store.conn().await?.conn())
        .await?;
    let head_seq: i64 = head.try_get("seq")?;
    let head_hash: String = head.try_get("hash")?;
    let last_seq = expected_seq - 1;
    let beyond = pending.last().map(|a| a.0).filter(|s| *s > last_seq);
    let broken = match beyond {
        Some(anchored_seq) => Some(BrokenLink::Truncated {
            anchored_seq,
            last_seq,
        }),
        None => (head_seq != last_seq || head_hash != prev_hash)
            .then_some(BrokenLink::HeadMismatch { head_seq, last_seq }),
    };
    Ok(ChainReport {
        records_checked: checked,
        last_good_hash: prev_hash,
        broken,
        last_anchored,
    })
}

/// The last record's position and hash; `None` for an empty chain. What an
/// anchor signs.
pub async fn last_record(store: &Store) -> Result<Option<(i64, String)>, StoreError> {
    Ok(
        sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(store.conn().await?.conn())
            .await?,
    )
}

/// Records with `seq` greater than `after`, oldest first, at most `limit`; for export and display.
pub async fn list(store: &Store, after: i64, limit: i64) -> Result<Vec<AuditRecord>, StoreError> {
    let rows = sqlx::query(
        "SELECT seq, at_ms, actor, action, target, outcome, details, prev_hash, hash \
         FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(store.conn().await?.conn())
    .await?;
    rows.iter().map(record_from_row).collect()
}

/// Records whose actor or target is `subject` (e.g. `account:<id>` / the account id), oldest first, at most `limit`.
pub async fn about(
    store: &Store,
    actor: &str,
    target: &str,
    limit: i64,
) -> Result<Vec<AuditRecord>, StoreError> {
    let rows = sqlx::query(
        "SELECT seq, at_ms, actor, action, target, outcome, details, prev_hash, hash \
         FROM audit_log WHERE actor = $1 OR target = $2 ORDER BY seq LIMIT $3",
    )
    .bind(actor)
    .bind(target)
    .bind(limit)
    .fetch_all(store.conn().await?.conn())
    .await?;
    rows.iter().map(record_from_row).collect()
}

fn record_from_row(row: &sqlx::any::AnyRow) -> Result<AuditRecord, StoreError> {
    Ok(AuditRecord {
        seq: row.try_get("seq")?,
        at: from_ms(row.try_get("at_ms")?),
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        target: row.try_get("target")?,
        outcome: row.try_get("outcome")?,
        details: row.try_get("details")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A fixed vector, computed independently of this code (Python's hashlib
    /// over the same length-prefixed fields), so a change to the encoding
    /// cannot pass unnoticed: every chain already written would stop verifying.
    #[test]
    fn the_record_hash_matches_a_fixed_vector() {
        let rec = AuditRecord {
            seq: 1,
            at: from_ms(1_764_547_200_000),
            actor: "operator:somchai".into(),
            action: "key.rotate".into(),
            target: "id-token".into(),
            outcome: "success".into(),
            details: r#"{"alg":"ES256"}"#.into(),
            prev_hash: GENESIS_HASH.into(),
            hash: String::new(),
        };
        assert_eq!(
            rec.recomputed_hash(),
            "67f381a0a35c0d675b8d95a8826886775020a249b0466e27f618fbe293cb80e6"
        );
    }
}
