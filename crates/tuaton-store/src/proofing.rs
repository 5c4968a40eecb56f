//! Identity-proofing decisions, kept so each can be audited later.

use serde::Serialize;
use sqlx::{Any, Executor};
use time::OffsetDateTime;

use tuaton_core::{AccountId, Ial};

use crate::{StoreError, Tx, from_ms, new_id, to_ms};

/// One decision: how the person was proofed, what the registry said, the level reached.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct DecisionRecord {
    /// Opaque id.
    pub id: String,
    /// The account it concerns.
    #[sqlx(try_from = "String")]
    pub account_id: AccountId,
    /// `self_asserted`, `registry_remote`, `officer_in_person`, …
    pub method: String,
    /// The connector that answered (`dev-registry`, `dopa-soap`, `officer`).
    pub connector: String,
    /// The connector's answer as JSON (codes and labels only; no personal data).
    pub registry_answer: String,
    /// SHA-256 of the evidence presented, hex.
    pub evidence_digest: String,
    /// The level reached (shown as the NDID number in text).
    #[serde(serialize_with = "Ial::serialize_as_text")]
    #[sqlx(try_from = "String")]
    pub ial: Ial,
    /// The officer's account id for in-person proofing.
    pub officer_id: Option<String>,
    /// When it was decided (Unix ms).
    #[serde(skip)]
    pub decided_ms: i64,
}

impl DecisionRecord {
    /// When it was decided.
    pub fn decided_at(&self) -> OffsetDateTime {
        from_ms(self.decided_ms)
    }
}

/// What to record.
#[derive(Debug, Clone)]
pub struct NewDecision<'a> {
    /// See [`DecisionRecord::account_id`].
    pub account_id: &'a AccountId,
    /// See [`DecisionRecord::method`].
    pub method: &'a str,
    /// See [`DecisionRecord::connector`].
    pub connector: &'a str,
    /// See [`DecisionRecord::registry_answer`].
    pub registry_answer: &'a serde_json::Value,
    /// See [`DecisionRecord::evidence_digest`].
    pub evidence_digest: &'a str,
    /// See [`DecisionRecord::ial`].
    pub ial: Ial,
    /// See [`DecisionRecord::officer_id`].
    pub officer_id: Option<&'a str>,
    /// When.
    pub decided_at: OffsetDateTime,
}

/// Records a decision; returns its id.
pub async fn insert(tx: &mut Tx, d: &NewDecision<'_>) -> Result<String, StoreError> {
    let id = new_id();
    sqlx::query(
        "INSERT INTO proofing_decisions (id, account_id, method, connector, registry_answer, evidence_digest, ial, officer_id, decided_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&id)
    .bind(d.account_id.as_str())
    .bind(d.method)
    .bind(d.connector)
    .bind(d.registry_answer.to_string())
    .bind(d.evidence_digest)
    .bind(d.ial.number())
    .bind(d.officer_id)
    .bind(to_ms(d.decided_at))
    .execute(tx.conn())
    .await?;
    Ok(id)
}

/// Every decision about an account, oldest first.
pub async fn for_account<'e, E: Executor<'e, Database = Any>>(
    db: E,
    account_id: &AccountId,
) -> Result<Vec<DecisionRecord>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, account_id, method, connector, registry_answer, evidence_digest, ial, officer_id, decided_ms \
         FROM proofing_decisions WHERE account_id = $1 ORDER BY decided_ms, id",
    )
    .bind(account_id.as_str())
    .fetch_all(db)
    .await?)
}

/// The level a decision reached; `None` if there is no such decision.
pub async fn ial_of<'e, E: Executor<'e, Database = Any>>(
    db: E,
    decision_id: &str,
) -> Result<Option<Ial>, StoreError> {
    let row: Option<(String,)> = sqlx::query_as("SELECT ial FROM proofing_decisions WHERE id = $1")
        .bind(decision_id)
        .fetch_optional(db)
        .await?;
    row.map(|(ial,)| {
        Ial::try_from(ial).map_err(|_| StoreError::Corrupt("a decision's level".into()))
    })
    .transpose()
}
