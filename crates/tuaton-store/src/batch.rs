//! Several statements in one round trip.
//!
//! sqlx runs each SQLite connection on a thread of its own, so every statement
//! is a hand-off to that thread and back: two thread wake-ups, which on a busy
//! server cost more CPU than the statement itself. A [`Batch`] goes to SQLite
//! as one multi-statement query, one hand-off however many statements it
//! holds. PostgreSQL's extended protocol takes one statement per query, so
//! there the batch runs its statements one after another on the connection.
//!
//! Statements are written as everywhere else in this crate: SQL both engines
//! accept, parameters numbered `$1…$n` within each statement. The batch
//! renumbers them when it joins statements for SQLite.
//!
//! A batch is not a transaction. Run it on a [`crate::Tx`] when its writes
//! stand or fall together: a failing statement stops the batch, and only the
//! transaction around it undoes what ran before.

use std::borrow::Cow;

use futures_util::TryStreamExt;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{Any, AnyConnection, Either, Executor};

use crate::StoreError;

/// A value bound to a statement parameter. No `Debug`: values include
/// session hashes and CSRF tokens.
#[derive(Clone, PartialEq, Eq)]
pub enum Value {
    /// Text, or SQL NULL.
    Text(Option<String>),
    /// A 64-bit integer (timestamps in ms, counters, 0/1 flags), or SQL NULL.
    Int(Option<i64>),
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(Some(v.to_owned()))
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(Some(v))
    }
}

impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(Some(v.clone()))
    }
}

impl From<Option<&str>> for Value {
    fn from(v: Option<&str>) -> Self {
        Value::Text(v.map(str::to_owned))
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(Some(v))
    }
}

impl From<Option<i64>> for Value {
    fn from(v: Option<i64>) -> Self {
        Value::Int(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Int(Some(i64::from(v)))
    }
}

/// One SQL statement and the values of its parameters, in `$n` order.
#[derive(Clone)]
pub struct Statement {
    sql: Cow<'static, str>,
    args: Vec<Value>,
}

impl std::fmt::Debug for Statement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Statement")
            .field("sql", &self.sql)
            .field("values", &self.args.len())
            .finish()
    }
}

impl Statement {
    /// A statement with no values bound yet.
    pub fn new(sql: impl Into<Cow<'static, str>>) -> Self {
        Self {
            sql: sql.into(),
            args: Vec::new(),
        }
    }

    /// Binds the next parameter.
    pub fn bind(mut self, value: impl Into<Value>) -> Self {
        self.args.push(value.into());
        self
    }

    /// Runs this statement alone; returns how many rows it changed.
    pub async fn execute(self, conn: &mut AnyConnection) -> Result<u64, StoreError> {
        Query::new(self, |out| Ok(out.rows_affected))
            .run(conn)
            .await
    }
}

/// What one statement produced: the rows it returned and the rows it changed.
#[derive(Default)]
pub struct Output {
    /// Rows returned (a `SELECT`, or a write with `RETURNING`).
    pub rows: Vec<AnyRow>,
    /// Rows inserted, updated or deleted.
    pub rows_affected: u64,
}

type Decoder<T> = Box<dyn FnOnce(Output) -> Result<T, StoreError> + Send>;

/// A statement with the code that turns its output into a typed answer.
pub struct Query<T> {
    statement: Statement,
    decode: Decoder<T>,
}

impl<T> Query<T> {
    /// Pairs `statement` with `decode`.
    pub fn new(
        statement: Statement,
        decode: impl FnOnce(Output) -> Result<T, StoreError> + Send + 'static,
    ) -> Self {
        Self {
            statement,
            decode: Box::new(decode),
        }
    }

    /// Runs this query alone.
    pub async fn run(self, conn: &mut AnyConnection) -> Result<T, StoreError> {
        let mut batch = Batch::new();
        let answer = batch.add(self);
        batch.run(conn).await?.take(answer)
    }
}

/// Where a query's answer will be in a [`Done`] batch.
pub struct Pending<T> {
    index: usize,
    decode: Decoder<T>,
}

/// Statements to run in one round trip (see the module documentation).
#[derive(Debug, Default)]
pub struct Batch {
    statements: Vec<Statement>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `query`; its answer is read from the [`Done`] batch with [`Done::take`].
    pub fn add<T>(&mut self, query: Query<T>) -> Pending<T> {
        self.statements.push(query.statement);
        Pending {
            index: self.statements.len() - 1,
            decode: query.decode,
        }
    }

    /// Adds `statement` without asking for its output.
    pub fn push(&mut self, statement: Statement) {
        self.statements.push(statement);
    }

    /// Runs every statement in order on `conn`.
    pub async fn run(self, conn: &mut AnyConnection) -> Result<Done, StoreError> {
        self.run_framed(conn, SqliteFrame::default()).await
    }

    /// Runs the batch; on SQLite inside `frame`, in the same query (see
    /// [`SqliteFrame`]). The caller does on PostgreSQL what the frame does.
    pub(crate) async fn run_framed(
        self,
        conn: &mut AnyConnection,
        frame: SqliteFrame<'_>,
    ) -> Result<Done, StoreError> {
        let statements = self.statements;
        let wanted = statements.len();
        if conn.backend_name() != "SQLite" {
            let mut outputs = Vec::with_capacity(wanted);
            for s in statements {
                let mut out = split_outputs(conn, &s.sql, s.args).await?;
                outputs.push(out.pop());
            }
            return Ok(Done { outputs });
        }
        let mut sql = String::new();
        let mut args = Vec::new();
        if let Some(before) = frame.before {
            sql.push_str(before);
            sql.push_str(";\n");
        }
        for s in statements {
            renumber_into(&mut sql, &s.sql, args.len());
            sql.push_str(";\n");
            args.extend(s.args);
        }
        if let Some(after) = frame.after {
            sql.push_str(after);
        }
        let mut outputs = split_outputs(conn, &sql, args).await?;
        if let Some(before) = frame.before {
            let framing = before.split(';').filter(|s| !s.trim().is_empty()).count();
            outputs.drain(..framing.min(outputs.len()));
        }
        outputs.truncate(wanted);
        if outputs.len() != wanted {
            return Err(StoreError::Corrupt(format!(
                "a batch of {wanted} statements reported {} outputs",
                outputs.len()
            )));
        }
        Ok(Done {
            outputs: outputs.into_iter().map(Some).collect(),
        })
    }
}

/// Parameterless statements run on SQLite just before and just after a
/// batch, in the same query: `BEGIN IMMEDIATE`, `COMMIT`, or a connection
/// setting changed for the batch and put back. Their outputs are not reported;
/// if one fails, the batch fails.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SqliteFrame<'a> {
    pub(crate) before: Option<&'a str>,
    pub(crate) after: Option<&'a str>,
}

/// The first row of `out` as `T`, read through its `sqlx::FromRow` type
/// `R`: what a batch query for one record decodes with.
pub(crate) fn first_as<R, T>(out: Output) -> Result<Option<T>, StoreError>
where
    R: for<'r> sqlx::FromRow<'r, AnyRow>,
    T: TryFrom<R, Error = StoreError>,
{
    first_mapped(out, T::try_from)
}

/// The first row of `out` read as `R` and made a `T` by `convert`.
pub(crate) fn first_mapped<R, T>(
    out: Output,
    convert: fn(R) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError>
where
    R: for<'r> sqlx::FromRow<'r, AnyRow>,
{
    out.rows
        .first()
        .map(|r| R::from_row(r).map_err(StoreError::from).and_then(convert))
        .transpose()
}

/// The outputs of a batch that ran to the end.
pub struct Done {
    outputs: Vec<Option<Output>>,
}

impl Done {
    /// The outputs of a batch of no statements.
    pub fn empty() -> Self {
        Self {
            outputs: Vec::new(),
        }
    }

    /// The answer of a query added to this batch.
    pub fn take<T>(&mut self, pending: Pending<T>) -> Result<T, StoreError> {
        let output = self
            .outputs
            .get_mut(pending.index)
            .and_then(Option::take)
            .unwrap_or_default();
        (pending.decode)(output)
    }
}

fn arguments(values: Vec<Value>) -> Result<AnyArguments<'static>, StoreError> {
    use sqlx::Arguments;
    let mut args = AnyArguments::default();
    for v in values {
        match v {
            Value::Text(t) => args.add(t),
            Value::Int(i) => args.add(i),
        }
        .map_err(|e| StoreError::Corrupt(format!("a value could not be bound: {e}")))?;
    }
    Ok(args)
}

/// Runs `sql` and gathers each statement's rows and count, in order.
async fn split_outputs(
    conn: &mut AnyConnection,
    sql: &str,
    args: Vec<Value>,
) -> Result<Vec<Output>, StoreError> {
    let query = sqlx::query_with::<Any, _>(sql, arguments(args)?);
    let mut stream = conn.fetch_many(query);
    let mut outputs = Vec::new();
    let mut current = Output::default();
    while let Some(step) = stream.try_next().await? {
        match step {
            Either::Left(done) => {
                current.rows_affected = done.rows_affected();
                outputs.push(std::mem::take(&mut current));
            }
            Either::Right(row) => current.rows.push(row),
        }
    }
    Ok(outputs)
}

/// Appends `sql` to `out` with every `$n` parameter outside quotes raised by
/// `offset`, so statements numbered from `$1` can share one argument list.
fn renumber_into(out: &mut String, sql: &str, offset: usize) {
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (None, '\'' | '"') => quote = Some(c),
            (None, '$') if chars.peek().is_some_and(char::is_ascii_digit) => {
                let mut n: usize = 0;
                while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                    n = n.saturating_mul(10).saturating_add(d as usize);
                    chars.next();
                }
                out.push('$');
                out.push_str(&(n + offset).to_string());
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::testing::TestDb;
    use sqlx::Row;

    #[test]
    fn parameters_are_renumbered_outside_quotes_only() {
        let mut out = String::new();
        renumber_into(
            &mut out,
            "UPDATE t SET a = $1, b = '$2', \"c$3\" = $2 WHERE d = $10",
            3,
        );
        assert_eq!(
            out,
            "UPDATE t SET a = $4, b = '$2', \"c$3\" = $5 WHERE d = $13"
        );
    }

    fn count(table: &'static str) -> Query<i64> {
        Query::new(
            Statement::new(format!("SELECT COUNT(*) AS n FROM {table}")),
            |out| {
                let row = out
                    .rows
                    .first()
                    .ok_or(StoreError::NotFound { what: "count" })?;
                Ok(row.try_get("n")?)
            },
        )
    }

    async fn each_engine() -> Vec<TestDb> {
        let mut dbs = vec![TestDb::sqlite().await];
        dbs.extend(TestDb::postgres().await);
        dbs
    }

    /// Reads and writes in one batch answer as they would one by one, each
    /// statement with its own `$1…` numbering, on both engines.
    #[tokio::test]
    async fn a_batch_answers_each_statement_in_order() {
        for db in each_engine().await {
            let mut conn = db.store.conn().await.unwrap();
            sqlx::query("CREATE TABLE batch_t (k TEXT PRIMARY KEY, n BIGINT, note TEXT)")
                .execute(conn.conn())
                .await
                .unwrap();
            let mut b = Batch::new();
            let before = b.add(count("batch_t"));
            b.push(
                Statement::new("INSERT INTO batch_t (k, n, note) VALUES ($1, $2, $3)")
                    .bind("a")
                    .bind(1_i64)
                    .bind(None::<&str>),
            );
            let inserted = b.add(Query::new(
                Statement::new("INSERT INTO batch_t (k, n, note) VALUES ($1, $2, $3)")
                    .bind("b")
                    .bind(2_i64)
                    .bind("$1 stays text"),
                |out| Ok(out.rows_affected),
            ));
            let updated = b.add(Query::new(
                Statement::new("UPDATE batch_t SET n = n + $1 WHERE k = $2 OR k = $3")
                    .bind(10_i64)
                    .bind("a")
                    .bind("nobody"),
                |out| Ok(out.rows_affected),
            ));
            let after = b.add(count("batch_t"));
            let mut done = b.run(conn.conn()).await.unwrap();
            assert_eq!(done.take(before).unwrap(), 0);
            assert_eq!(done.take(inserted).unwrap(), 1);
            assert_eq!(done.take(updated).unwrap(), 1);
            assert_eq!(done.take(after).unwrap(), 2);
            let (n, note): (i64, Option<String>) =
                sqlx::query_as("SELECT n, note FROM batch_t WHERE k = 'a'")
                    .fetch_one(conn.conn())
                    .await
                    .unwrap();
            assert_eq!((n, note), (11, None));
            let note: String = sqlx::query_scalar("SELECT note FROM batch_t WHERE k = 'b'")
                .fetch_one(conn.conn())
                .await
                .unwrap();
            assert_eq!(note, "$1 stays text");
            drop(conn);
            db.cleanup().await;
        }
    }

    /// A failing statement stops the batch with its error; in a transaction
    /// nothing the batch wrote survives.
    #[tokio::test]
    async fn a_failing_statement_stops_the_batch_and_the_transaction_undoes_it() {
        for db in each_engine().await {
            sqlx::query("CREATE TABLE batch_u (k TEXT PRIMARY KEY)")
                .execute(db.store.conn().await.unwrap().conn())
                .await
                .unwrap();
            let mut tx = db.store.begin().await.unwrap();
            let mut b = Batch::new();
            b.push(Statement::new("INSERT INTO batch_u (k) VALUES ($1)").bind("x"));
            b.push(Statement::new("INSERT INTO batch_u (k) VALUES ($1)").bind("x"));
            b.push(Statement::new("INSERT INTO batch_u (k) VALUES ($1)").bind("y"));
            let Err(err) = b.run(tx.conn()).await else {
                panic!("a duplicate key must stop the batch");
            };
            assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
            drop(tx);
            let mut conn = db.store.conn().await.unwrap();
            assert_eq!(count("batch_u").run(conn.conn()).await.unwrap(), 0);
            drop(conn);
            db.cleanup().await;
        }
    }
}
