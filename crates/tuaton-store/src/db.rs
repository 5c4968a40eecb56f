//! Connecting to SQLite or PostgreSQL and running migrations.
//!
//! PostgreSQL is reached through a pool of connections. SQLite gets exactly
//! one connection, held under a lock in this process:
//!
//! - a WAL file has one writer at a time anyway, and writers queueing on a
//!   lock here are far cheaper than writers meeting `SQLITE_BUSY` and
//!   sleeping in SQLite's busy handler;
//! - SQLite empties a connection's page cache whenever another connection
//!   has written, so with several connections nearly every transaction
//!   would begin by reading its pages from the file again;
//! - sqlx runs each SQLite connection on a thread of its own, and its pool
//!   sends a ping through that thread each time a connection is given back.
//!   The one connection is never given back, so nothing is pinged.
//!
//! Commits are grouped (SQLite with `synchronous = FULL`): a transaction
//! that commits while other requests wait for the connection commits
//! without waiting for the disk, hands the connection on, and is answered
//! only once an fsync made after its commit has returned — the next
//! transaction's durable commit, or a flush it makes itself when its turn
//! comes. One fsync then makes a whole group durable. WAL frames reach the
//! disk in commit order, so a power cut loses at most a tail of commits
//! none of whose callers had an answer; see docs/performance.md.
//!
//! The lock does what a pool would otherwise do for the connection. Before a
//! step that could leave it in a wrong state (a transaction, a batch run with
//! a setting changed), a repair is armed; the step disarms it when it ends
//! cleanly. A step abandoned halfway (an error, or a request whose future was
//! dropped) leaves the repair for the next holder to make first: a rollback,
//! the setting put back, or a fresh connection if that fails.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, ConnectOptions, Connection, Executor};
use tokio::sync::{Mutex, OwnedMappedMutexGuard, OwnedMutexGuard, watch};

use crate::StoreError;
use crate::batch::{Batch, Done, SqliteFrame};

/// The one SQLite connection, or none after [`Store::close`] or a failed reopen.
type SqliteSlot = Option<AnyConnection>;
type HeldSqlite = OwnedMappedMutexGuard<SqliteSlot, AnyConnection>;

/// Repairs the next holder of the SQLite connection makes first (bit flags).
const REPAIR_ROLLBACK: u8 = 1;
const REPAIR_SETTINGS: u8 = 2;

/// Begins a transaction that may commit in a group: SQLite takes the
/// `synchronous` setting only outside a transaction, so it is relaxed first.
const BEGIN_GROUPED: &str = "PRAGMA synchronous = NORMAL;\nBEGIN IMMEDIATE";

/// Ends a grouped transaction: committed without waiting for the disk, and
/// the connection durable again for whoever holds it next.
const COMMIT_GROUPED: &str = "COMMIT;\nPRAGMA synchronous = FULL";

/// A durable write of one row (an upsert, so it writes even if the row
/// were gone): its fsync takes every commit before it to the disk
/// (migration 0017).
const FLUSH: &str = "INSERT INTO store_flushes (id, flushes) VALUES (1, 1) \
     ON CONFLICT (id) DO UPDATE SET flushes = store_flushes.flushes + 1";

/// A connection to run statements on, held until dropped: on SQLite the one
/// connection (everyone else waits), on PostgreSQL one from the pool.
pub struct Conn(Held);

enum Held {
    Sqlite(HeldSqlite),
    Pool(sqlx::pool::PoolConnection<sqlx::Any>),
}

impl Conn {
    /// The connection to run queries on.
    pub fn conn(&mut self) -> &mut AnyConnection {
        match &mut self.0 {
            Held::Sqlite(c) => c,
            Held::Pool(c) => c,
        }
    }
}

/// A write transaction on either engine. Dropping it without [`Tx::commit`] rolls back.
pub struct Tx(TxInner);

enum TxInner {
    /// `BEGIN IMMEDIATE` ran on the held connection, with a rollback armed
    /// (and, when `grouped`, the setting's repair).
    Sqlite {
        conn: HeldSqlite,
        home: Arc<SqliteHome>,
        grouped: bool,
    },
    Postgres(sqlx::Transaction<'static, sqlx::Any>),
}

impl Tx {
    /// The engine the transaction runs on.
    pub fn engine(&self) -> Engine {
        match &self.0 {
            TxInner::Sqlite { .. } => Engine::Sqlite,
            TxInner::Postgres(_) => Engine::Postgres,
        }
    }

    /// The connection to run queries on.
    pub fn conn(&mut self) -> &mut AnyConnection {
        match &mut self.0 {
            TxInner::Sqlite { conn, .. } => conn,
            TxInner::Postgres(tx) => tx,
        }
    }

    /// Makes the transaction's writes durable.
    pub async fn commit(self) -> Result<(), StoreError> {
        self.commit_with(Batch::new()).await.map(drop)
    }

    /// Runs `batch` as the transaction's last statements and commits, in one
    /// round trip on SQLite. If a statement fails, nothing is committed.
    pub async fn commit_with(self, batch: Batch) -> Result<Done, StoreError> {
        match self.0 {
            TxInner::Sqlite {
                mut conn,
                home,
                grouped,
            } => {
                let frame = SqliteFrame {
                    before: None,
                    after: Some(if grouped { COMMIT_GROUPED } else { "COMMIT" }),
                };
                let done = batch.run_framed(&mut conn, frame).await?;
                home.disarm(REPAIR_ROLLBACK | REPAIR_SETTINGS);
                // Committed: from here on the caller is told of a failure
                // only if the commit may not reach the disk.
                let seq = home.committed.fetch_add(1, Ordering::AcqRel) + 1;
                if !grouped {
                    // This commit's fsync took every earlier one with it.
                    home.mark_durable(seq);
                    return Ok(done);
                }
                // Others still waiting for the connection: one of them, or
                // this caller at its next turn, flushes for the group. No
                // one waiting: the flush now, and if it fails (the command
                // line holding the write lock), the same wait.
                if home.queued.load(Ordering::Acquire) == 0 && home.flush(&mut conn).await.is_ok() {
                    return Ok(done);
                }
                drop(conn);
                home.wait_durable(seq).await?;
                Ok(done)
            }
            TxInner::Postgres(mut tx) => {
                let done = batch.run(&mut tx).await?;
                tx.commit().await?;
                Ok(done)
            }
        }
    }

    /// Discards the transaction's writes.
    pub async fn rollback(self) -> Result<(), StoreError> {
        match self.0 {
            TxInner::Sqlite {
                mut conn,
                home,
                grouped,
            } => {
                conn.execute("ROLLBACK").await?;
                if grouped {
                    conn.execute(home.durable.as_str()).await?;
                }
                home.disarm(REPAIR_ROLLBACK | REPAIR_SETTINGS);
            }
            TxInner::Postgres(tx) => tx.rollback().await?,
        }
        Ok(())
    }
}

/// Which database engine a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// One file, WAL mode: the embedded default.
    Sqlite,
    /// A PostgreSQL server shared by several processes.
    Postgres,
}

/// Pool tuning; the defaults suit the embedded default and small deployments.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Most connections held open to PostgreSQL. SQLite always gets one
    /// (see the module documentation).
    pub max_connections: u32,
    /// How long a writer waits on SQLite's lock, held by another process, before giving up.
    pub busy_timeout: Duration,
    /// How long to wait for a connection (SQLite's one, or one from the pool).
    pub acquire_timeout: Duration,
    /// SQLite `synchronous` setting: `FULL` (every commit fsynced) or `NORMAL`
    /// (WAL fsynced at checkpoints: a power cut may lose the last commits but
    /// never corrupts). Default `FULL`, because audit records must survive.
    pub sqlite_synchronous: &'static str,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            busy_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(5),
            sqlite_synchronous: "FULL",
        }
    }
}

/// The database behind every repository.
#[derive(Clone)]
pub struct Store {
    engine: Engine,
    backend: Backend,
    acquire_timeout: Duration,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
enum Backend {
    Sqlite(Arc<SqliteHome>),
    Postgres(AnyPool),
}

/// The one SQLite connection and what it takes to open and repair it.
struct SqliteHome {
    slot: Arc<Mutex<SqliteSlot>>,
    repair: AtomicU8,
    closed: AtomicBool,
    options: AnyConnectOptions,
    /// Run on every new connection.
    settings: String,
    /// Puts `synchronous` back after a [`Store::write_relaxed`] batch.
    durable: String,
    /// Whether commits are grouped: only when every commit is to be
    /// durable (`synchronous = FULL`).
    grouping: bool,
    /// How many are waiting for the connection.
    queued: AtomicUsize,
    /// Transactions committed so far (counted while holding the connection).
    committed: AtomicU64,
    /// The last commit known to be on the disk.
    on_disk: watch::Sender<u64>,
}

/// Counts a waiter for the connection until it holds it or gives up.
struct Queued<'a>(&'a AtomicUsize);

impl<'a> Queued<'a> {
    fn join(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        Self(count)
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl SqliteHome {
    /// Records that every commit up to `seq` is on the disk.
    fn mark_durable(&self, seq: u64) {
        self.on_disk.send_if_modified(|d| {
            let later = seq > *d;
            if later {
                *d = seq;
            }
            later
        });
    }

    /// Waits until commit `seq` (made already) is on the disk: until
    /// someone's fsync has covered it, or until this caller holds the
    /// connection again and flushes everything committed so far itself.
    /// It waits as long as that takes: the transaction is committed, and
    /// telling its caller it failed (a retried refresh would then count as
    /// the token's reuse) would be wrong. Only a closed store or a failing
    /// flush ends the wait with an error.
    async fn wait_durable(&self, seq: u64) -> Result<(), StoreError> {
        let mut on_disk = self.on_disk.subscribe();
        loop {
            if *on_disk.borrow_and_update() >= seq {
                return Ok(());
            }
            tokio::select! {
                biased;
                changed = on_disk.changed() => {
                    if changed.is_err() {
                        return Err(StoreError::Unavailable(sqlx::Error::PoolClosed));
                    }
                }
                held = self.hold(Duration::from_secs(60)) => match held {
                    Ok(mut conn) => {
                        if *on_disk.borrow() >= seq {
                            return Ok(());
                        }
                        return self.flush(&mut conn).await;
                    }
                    // Still queued behind others: keep waiting.
                    Err(StoreError::Unavailable(sqlx::Error::PoolTimedOut)) => {}
                    Err(e) => return Err(e),
                },
            }
        }
    }

    /// Takes every commit so far to the disk, on the held connection (with
    /// no repair pending: at `synchronous = FULL`, outside a transaction).
    async fn flush(&self, conn: &mut AnyConnection) -> Result<(), StoreError> {
        let upto = self.committed.load(Ordering::Acquire);
        if *self.on_disk.borrow() >= upto {
            return Ok(());
        }
        let written = conn.execute(FLUSH).await?;
        if written.rows_affected() != 1 {
            return Err(StoreError::Corrupt("the flush wrote no row".into()));
        }
        self.mark_durable(upto);
        Ok(())
    }

    /// Makes the repairs a step left armed, clearing each only once it is
    /// made (a holder dropped halfway leaves the rest for the next), or
    /// reopens the connection if one fails.
    async fn repair(&self, slot: &mut SqliteSlot) {
        let Some(conn) = slot.as_mut() else {
            return;
        };
        let repair = self.repair.load(Ordering::Acquire);
        if repair == 0 {
            return;
        }
        let repaired = async {
            if repair & REPAIR_ROLLBACK != 0 {
                conn.execute("ROLLBACK").await?;
                self.disarm(REPAIR_ROLLBACK);
            }
            if repair & REPAIR_SETTINGS != 0 {
                conn.execute(self.durable.as_str()).await?;
                self.disarm(REPAIR_SETTINGS);
            }
            Ok::<_, sqlx::Error>(())
        }
        .await;
        if let Err(e) = repaired {
            // Closing a connection ends whatever it was in the middle of,
            // and a new one starts from the durable settings.
            tracing::warn!(error = %e, "reopening the SQLite connection after a failed repair");
            self.disarm(REPAIR_ROLLBACK | REPAIR_SETTINGS);
            if let Some(old) = slot.take() {
                let _ = old.close().await;
            }
        }
    }

    fn arm(&self, repair: u8) {
        self.repair.fetch_or(repair, Ordering::AcqRel);
    }

    fn disarm(&self, repair: u8) {
        self.repair.fetch_and(!repair, Ordering::AcqRel);
    }

    async fn open(&self) -> Result<AnyConnection, sqlx::Error> {
        let mut conn = AnyConnection::connect_with(&self.options).await?;
        conn.execute(self.settings.as_str()).await?;
        Ok(conn)
    }

    /// Takes the connection, making any repair left armed, or opening a new one.
    async fn hold(&self, timeout: Duration) -> Result<HeldSqlite, StoreError> {
        let queued = Queued::join(&self.queued);
        let mut slot = tokio::time::timeout(timeout, self.slot.clone().lock_owned())
            .await
            .map_err(|_| StoreError::Unavailable(sqlx::Error::PoolTimedOut))?;
        drop(queued);
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Unavailable(sqlx::Error::PoolClosed));
        }
        self.repair(&mut slot).await;
        if slot.is_none() {
            *slot = Some(self.open().await.map_err(StoreError::Unavailable)?);
        }
        OwnedMutexGuard::try_map(slot, Option::as_mut)
            .map_err(|_| StoreError::Unavailable(sqlx::Error::PoolClosed))
    }
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Store {
    /// Connects to `url` (`sqlite://PATH`, `sqlite::memory:` or `postgres://…`) and runs migrations.
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let scheme = url
            .split(':')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let engine = match scheme.as_str() {
            "sqlite" => Engine::Sqlite,
            "postgres" | "postgresql" => Engine::Postgres,
            _ => return Err(StoreError::UnsupportedUrl { scheme }),
        };
        let connect = AnyConnectOptions::from_str(url)
            .map_err(StoreError::Unavailable)?
            .disable_statement_logging();
        let backend = match engine {
            Engine::Sqlite => {
                let home = SqliteHome {
                    slot: Arc::new(Mutex::new(None)),
                    repair: AtomicU8::new(0),
                    closed: AtomicBool::new(false),
                    options: connect,
                    settings: format!(
                        "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON; PRAGMA busy_timeout = {}; PRAGMA synchronous = {};",
                        options.busy_timeout.as_millis(),
                        options.sqlite_synchronous
                    ),
                    durable: format!("PRAGMA synchronous = {}", options.sqlite_synchronous),
                    grouping: options.sqlite_synchronous.eq_ignore_ascii_case("FULL"),
                    queued: AtomicUsize::new(0),
                    committed: AtomicU64::new(0),
                    on_disk: watch::Sender::new(0),
                };
                // Opened now, so a bad path or URL fails at start, not at first use.
                *home.slot.lock().await = Some(home.open().await.map_err(StoreError::Unavailable)?);
                Backend::Sqlite(Arc::new(home))
            }
            Engine::Postgres => Backend::Postgres(
                AnyPoolOptions::new()
                    .max_connections(options.max_connections)
                    .acquire_timeout(options.acquire_timeout)
                    .connect_with(connect)
                    .await?,
            ),
        };
        let store = Self {
            engine,
            backend,
            acquire_timeout: options.acquire_timeout,
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Makes an erasure final on disk. SQLite runs with `secure_delete`, so
    /// deleted and overwritten content is zeroed in the database file; the
    /// WAL still holds the pages as they were before, so it is checkpointed
    /// into the file and truncated. On PostgreSQL dead rows wait for VACUUM
    /// (docs/operators/cli.md), which the operator schedules.
    pub async fn flush_erasure(&self) -> Result<(), StoreError> {
        if self.engine == Engine::Sqlite {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(self.conn().await?.conn())
                .await?;
        }
        Ok(())
    }

    /// Opens (creating if needed) the SQLite file at `path`.
    pub async fn open_sqlite(path: &Path, options: &StoreOptions) -> Result<Self, StoreError> {
        let url = format!("sqlite://{}?mode=rwc", path.display());
        Self::connect(&url, options).await
    }

    fn migrator(&self) -> &'static sqlx::migrate::Migrator {
        match self.engine {
            Engine::Sqlite => &SQLITE_MIGRATIONS,
            Engine::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    /// The newest migration this build knows (the schema version it needs).
    pub fn schema_version(&self) -> i64 {
        self.migrator().iter().map(|m| m.version).max().unwrap_or(0)
    }

    /// How many of this build's migrations the database has not applied.
    pub async fn pending_migrations(&self) -> Result<usize, StoreError> {
        let applied: Vec<(i64, Vec<u8>)> =
            match sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations WHERE success")
                .fetch_all(self.conn().await?.conn())
                .await
            {
                Ok(v) => v,
                // No bookkeeping table yet: a new database, everything pending.
                Err(sqlx::Error::Database(_)) => Vec::new(),
                Err(e) => return Err(e.into()),
            };
        let applied: std::collections::HashMap<i64, Vec<u8>> = applied.into_iter().collect();
        let mut pending = 0;
        for m in self
            .migrator()
            .iter()
            .filter(|m| m.migration_type.is_up_migration())
        {
            match applied.get(&m.version) {
                None => pending += 1,
                // Applied, but not the text this build has: refuse, as sqlx would.
                Some(sum) if sum.as_slice() != m.checksum.as_ref() => {
                    return Err(StoreError::Corrupt(format!(
                        "migration {} was applied from a different text than this build's",
                        m.version
                    )));
                }
                Some(_) => {}
            }
        }
        Ok(pending)
    }

    /// Applies pending migrations. A database that has them all is only read,
    /// so a service role without rights on the schema connects; one that
    /// lacks some and cannot apply them gets [`StoreError::MigrationsPending`].
    async fn migrate(&self) -> Result<(), StoreError> {
        let pending = self.pending_migrations().await?;
        if pending == 0 {
            return Ok(());
        }
        let mut conn = self.conn().await?;
        match self.migrator().run(conn.conn()).await {
            Ok(()) => Ok(()),
            Err(sqlx::migrate::MigrateError::Execute(sqlx::Error::Database(db)))
                if db.code().as_deref() == Some("42501") =>
            {
                // insufficient_privilege: not the schema's owner.
                Err(StoreError::MigrationsPending { pending })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Grants `role` what the service needs on PostgreSQL and nothing more:
    /// reading and writing the ordinary tables, only appending to the audit
    /// log, only moving its head, only reading the migrations' bookkeeping.
    /// It owns nothing, so it can neither drop nor disable a trigger. Run by
    /// the schema's owner (`tuaton migrate --grant-to ROLE`).
    pub async fn grant_service_role(&self, role: &str) -> Result<(), StoreError> {
        if self.engine != Engine::Postgres {
            return Err(StoreError::NotFound {
                what: "database roles (SQLite has none)",
            });
        }
        let valid = !role.is_empty()
            && role.len() <= 63
            && role
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && !role.starts_with(|c: char| c.is_ascii_digit())
            && !role.starts_with("pg_")
            && !matches!(
                role,
                "public" | "current_user" | "session_user" | "current_role" | "none"
            );
        if !valid {
            return Err(StoreError::NotFound {
                what: "a role name of lower-case letters, digits and underscores (not public, pg_* or a current_* keyword)",
            });
        }
        let mut tx = self.begin().await?;
        // The role must exist and be neither a superuser nor the owner (or
        // a member of the owner's role): such a role could drop the guards.
        let found: Option<(bool, bool, bool)> = sqlx::query_as(
            "SELECT r.rolsuper, r.rolname = current_user, pg_has_role(r.rolname, current_user, 'MEMBER') \
             FROM pg_roles r WHERE r.rolname = $1",
        )
        .bind(role)
        .fetch_optional(tx.conn())
        .await?;
        match found {
            None => {
                return Err(StoreError::NotFound {
                    what: "database role",
                });
            }
            Some((superuser, owner, member)) if superuser || owner || member => {
                return Err(StoreError::NotFound {
                    what: "a role other than a superuser, the schema's owner or a member of it",
                });
            }
            Some(_) => {}
        }
        let (schema,): (String,) = sqlx::query_as("SELECT CAST(current_schema() AS TEXT)")
            .fetch_one(tx.conn())
            .await?;
        if !schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(StoreError::NotFound {
                what: "a schema with a plain name",
            });
        }
        let tables: Vec<(String,)> = sqlx::query_as(
            "SELECT CAST(table_name AS TEXT) FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
        )
        .fetch_all(tx.conn())
        .await?;
        // Before PostgreSQL 15 every role may create in `public`.
        let mut statements = vec![
            format!("REVOKE CREATE ON SCHEMA \"{schema}\" FROM PUBLIC"),
            format!("GRANT USAGE ON SCHEMA \"{schema}\" TO \"{role}\""),
        ];
        for (table,) in tables {
            let rights = match table.as_str() {
                "audit_log" => "SELECT, INSERT",
                "audit_head" => "SELECT, UPDATE",
                "_sqlx_migrations" => "SELECT",
                _ => "SELECT, INSERT, UPDATE, DELETE",
            };
            statements.push(format!("REVOKE ALL ON \"{table}\" FROM \"{role}\""));
            statements.push(format!("GRANT {rights} ON \"{table}\" TO \"{role}\""));
        }
        for sql in statements {
            sqlx::query(&sql).execute(tx.conn()).await?;
        }
        tx.commit().await
    }

    /// A connection for reads or autocommit writes. On SQLite it is the one
    /// connection, so hold it no longer than the statements need.
    pub async fn conn(&self) -> Result<Conn, StoreError> {
        Ok(Conn(match &self.backend {
            Backend::Sqlite(home) => Held::Sqlite(home.hold(self.acquire_timeout).await?),
            Backend::Postgres(pool) => Held::Pool(pool.acquire().await?),
        }))
    }

    /// Starts a transaction. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so a writer in another process (the command line,
    /// say) never deadlocks with this one upgrading a read lock.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(self.begin_with(Batch::new()).await?.0)
    }

    /// Starts a transaction and runs `batch` as its first statements, in one
    /// round trip on SQLite.
    pub async fn begin_with(&self, batch: Batch) -> Result<(Tx, Done), StoreError> {
        match &self.backend {
            Backend::Sqlite(home) => {
                let mut conn = home.hold(self.acquire_timeout).await?;
                // Others waiting: this transaction may commit in their group.
                let grouped = home.grouping && home.queued.load(Ordering::Acquire) > 0;
                // Armed before BEGIN: from here until COMMIT or ROLLBACK, an
                // abandoned transaction is rolled back by the next holder
                // (and the connection made durable again).
                home.arm(if grouped {
                    REPAIR_ROLLBACK | REPAIR_SETTINGS
                } else {
                    REPAIR_ROLLBACK
                });
                let frame = SqliteFrame {
                    before: Some(if grouped {
                        BEGIN_GROUPED
                    } else {
                        "BEGIN IMMEDIATE"
                    }),
                    after: None,
                };
                let done = batch.run_framed(&mut conn, frame).await?;
                let tx = Tx(TxInner::Sqlite {
                    conn,
                    home: home.clone(),
                    grouped,
                });
                Ok((tx, done))
            }
            Backend::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let done = batch.run(&mut tx).await?;
                Ok((Tx(TxInner::Postgres(tx)), done))
            }
        }
    }

    /// Takes every transaction committed so far to the disk. A grouped
    /// commit is visible to other requests before its flush; what leaves
    /// the process on the strength of a read alone (a signed anchor of the
    /// audit chain's head) calls this after the read. PostgreSQL makes a
    /// commit visible only once it is durable: nothing to do there.
    pub async fn sync(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(home) => {
                let mut conn = home.hold(self.acquire_timeout).await?;
                home.flush(&mut conn).await
            }
            Backend::Postgres(_) => Ok(()),
        }
    }

    /// Checks that the database answers; for `/readyz`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(self.conn().await?.conn())
            .await?;
        Ok(())
    }

    /// The engine behind this store.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Runs `batch` as autocommit writes of rows whose loss in a power cut
    /// harms no one: state that lives for minutes and that a person simply
    /// starts again without (a login challenge). On SQLite its commit does
    /// not wait for the disk (`synchronous = NORMAL` for this batch alone);
    /// any later durable commit flushes it with everything before it, and
    /// WAL ordering means a power cut can only lose a tail of such writes,
    /// never a durable commit that came after one. PostgreSQL commits it
    /// as usual.
    pub async fn write_relaxed(&self, batch: Batch) -> Result<Done, StoreError> {
        match &self.backend {
            Backend::Sqlite(home) => {
                let mut conn = home.hold(self.acquire_timeout).await?;
                // Armed first: a batch stopped halfway, even by a dropped
                // request, must not leave the connection relaxed for the
                // durable writes after it.
                home.arm(REPAIR_SETTINGS);
                let frame = SqliteFrame {
                    before: Some("PRAGMA synchronous = NORMAL"),
                    after: Some(home.durable.as_str()),
                };
                let done = batch.run_framed(&mut conn, frame).await?;
                home.disarm(REPAIR_SETTINGS);
                Ok(done)
            }
            Backend::Postgres(_) => batch.run(self.conn().await?.conn()).await,
        }
    }

    /// Closes the database: waits for the connection(s) in use to be given
    /// back, then closes them; later calls fail as unavailable.
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite(home) => {
                let mut slot = home.slot.lock().await;
                // Grouped commits still waiting are taken to the disk
                // first, on a repaired connection.
                home.repair(&mut slot).await;
                if let Some(conn) = slot.as_mut()
                    && let Err(e) = home.flush(conn).await
                {
                    tracing::warn!(error = %e, "the last grouped commits could not be flushed at close");
                }
                home.closed.store(true, Ordering::Release);
                if let Some(conn) = slot.take() {
                    let _ = conn.close().await;
                }
            }
            Backend::Postgres(pool) => pool.close().await,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use time::OffsetDateTime;

    use crate::batch::{Batch, Query, Statement};
    use crate::testing::TestDb;
    use crate::{Store, StoreError, StoreOptions, ceremonies};

    async fn each_engine() -> Vec<TestDb> {
        let mut dbs = vec![TestDb::sqlite().await];
        dbs.extend(TestDb::postgres().await);
        dbs
    }

    async fn ceremonies_stored(store: &Store) -> i64 {
        Query::new(Statement::new("SELECT COUNT(*) FROM ceremonies"), |out| {
            use sqlx::Row;
            Ok(out
                .rows
                .first()
                .map(|r| r.try_get(0))
                .transpose()?
                .unwrap_or(0))
        })
        .run(store.conn().await.unwrap().conn())
        .await
        .unwrap()
    }

    fn stored_ceremony(id: &str) -> Statement {
        Statement::new(
            "INSERT INTO ceremonies (id, kind, account_id, state, expires_ms) VALUES ($1, 'test', NULL, '{}', 0)",
        )
        .bind(id)
    }

    async fn synchronous(store: &Store) -> i64 {
        sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(store.conn().await.unwrap().conn())
            .await
            .unwrap()
    }

    /// A transaction dropped without commit (an error path, or a request
    /// whose client went away) keeps none of its writes, and the connection
    /// serves the next transaction as if nothing had happened.
    #[tokio::test]
    async fn an_abandoned_transaction_keeps_nothing_and_leaves_the_connection_usable() {
        for db in each_engine().await {
            let mut opening = Batch::new();
            opening.push(stored_ceremony("a"));
            let (tx, _) = db.store.begin_with(opening).await.unwrap();
            drop(tx);
            assert_eq!(ceremonies_stored(&db.store).await, 0);
            // Dropped while its statement is still on its way to the database.
            let mut opening = Batch::new();
            opening.push(stored_ceremony("b"));
            let dropped = tokio::time::timeout(Duration::ZERO, db.store.begin_with(opening)).await;
            drop(dropped);
            assert_eq!(ceremonies_stored(&db.store).await, 0);
            let mut tx = db.store.begin().await.unwrap();
            stored_ceremony("c").execute(tx.conn()).await.unwrap();
            tx.commit().await.unwrap();
            assert_eq!(ceremonies_stored(&db.store).await, 1);
            db.cleanup().await;
        }
    }

    /// A statement failing in the batch that ends a transaction stops the
    /// commit: nothing of the transaction is kept, on either engine.
    #[tokio::test]
    async fn a_failing_statement_in_the_closing_batch_commits_nothing() {
        for db in each_engine().await {
            let mut opening = Batch::new();
            opening.push(stored_ceremony("a"));
            let (tx, _) = db.store.begin_with(opening).await.unwrap();
            let mut closing = Batch::new();
            closing.push(stored_ceremony("b"));
            closing.push(stored_ceremony("b"));
            let Err(err) = tx.commit_with(closing).await else {
                panic!("a duplicate key must stop the commit");
            };
            assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
            assert_eq!(ceremonies_stored(&db.store).await, 0);
            db.cleanup().await;
        }
    }

    async fn flushes(store: &Store) -> i64 {
        sqlx::query_scalar("SELECT flushes FROM store_flushes WHERE id = 1")
            .fetch_one(store.conn().await.unwrap().conn())
            .await
            .unwrap()
    }

    fn sqlite_home(store: &Store) -> std::sync::Arc<super::SqliteHome> {
        match &store.backend {
            super::Backend::Sqlite(home) => home.clone(),
            super::Backend::Postgres(_) => panic!("a SQLite store"),
        }
    }

    /// Bounded wait for a condition another task makes true.
    async fn until(what: &str, cond: impl Fn() -> bool) {
        for _ in 0..2000 {
            if cond() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("timed out waiting: {what}");
    }

    /// Holds the connection until told to let go; `holding` fires once held.
    fn holder(
        store: &Store,
    ) -> (
        tokio::task::JoinHandle<()>,
        tokio::sync::oneshot::Receiver<()>,
        tokio::sync::oneshot::Sender<()>,
    ) {
        let (held_tx, held) = tokio::sync::oneshot::channel();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let store = store.clone();
        let task = tokio::spawn(async move {
            let conn = store.conn().await.unwrap();
            let _ = held_tx.send(());
            let _ = released.await;
            drop(conn);
        });
        (task, held, release)
    }

    /// A transaction begun and committed while another request waits for
    /// the connection does not wait for the disk at its commit, but its
    /// caller is answered only once a flush has taken the commit there:
    /// here the one waiting is a reader, so the committer flushes when its
    /// turn comes again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_grouped_commit_is_answered_only_after_a_flush() {
        let db = TestDb::sqlite().await;
        let home = sqlite_home(&db.store);
        let queued = || home.queued.load(Ordering::Acquire);
        let (first, held, release_first) = holder(&db.store);
        held.await.unwrap();
        let store = db.store.clone();
        let writer = tokio::spawn(async move {
            let mut opening = Batch::new();
            opening.push(stored_ceremony("grouped"));
            let (tx, _) = store.begin_with(opening).await.unwrap();
            tx.commit().await
        });
        until("the writer queues", || queued() == 1).await;
        let (reader, reader_held, release_reader) = holder(&db.store);
        until("the reader queues behind it", || queued() == 2).await;
        release_first.send(()).unwrap();
        first.await.unwrap();
        // The writer began with the reader waiting, committed, and handed
        // the connection to the reader: committed, not yet on the disk, and
        // its caller still waits.
        reader_held.await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !writer.is_finished(),
            "answered before its commit was flushed"
        );
        assert_eq!(home.committed.load(Ordering::Acquire), 1);
        assert_eq!(*home.on_disk.borrow(), 0);
        release_reader.send(()).unwrap();
        reader.await.unwrap();
        writer.await.unwrap().unwrap();
        assert_eq!(*home.on_disk.borrow(), 1);
        assert_eq!(flushes(&db.store).await, 1, "the committer flushed once");
        assert_eq!(synchronous(&db.store).await, 2, "durable again: FULL");
        assert_eq!(ceremonies_stored(&db.store).await, 1);
        db.cleanup().await;
    }

    /// Many transactions at once: every one is kept, none is left off the
    /// disk, and they share fsyncs.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_commits_share_flushes_and_all_reach_the_disk() {
        let db = TestDb::sqlite().await;
        let home = sqlite_home(&db.store);
        let mut tasks = Vec::new();
        for i in 0..64 {
            let store = db.store.clone();
            tasks.push(tokio::spawn(async move {
                let mut opening = Batch::new();
                opening.push(stored_ceremony(&format!("c{i}")));
                let (tx, _) = store.begin_with(opening).await.unwrap();
                let mut closing = Batch::new();
                closing.push(stored_ceremony(&format!("d{i}")));
                tx.commit_with(closing).await.unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(ceremonies_stored(&db.store).await, 128);
        assert_eq!(home.committed.load(Ordering::Acquire), 64);
        assert_eq!(*home.on_disk.borrow(), 64, "every commit is on the disk");
        assert_eq!(synchronous(&db.store).await, 2);
        println!("64 commits, {} flushes", flushes(&db.store).await);
        db.cleanup().await;
    }

    /// A grouped transaction whose closing batch fails, or that is given
    /// up, keeps nothing and leaves the connection durable for the next holder.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_or_abandoned_grouped_transaction_keeps_nothing() {
        let db = TestDb::sqlite().await;
        let home = sqlite_home(&db.store);
        let queued = || home.queued.load(Ordering::Acquire);
        for fail in [true, false] {
            let (first, held, release_first) = holder(&db.store);
            held.await.unwrap();
            let store = db.store.clone();
            let writer = tokio::spawn(async move {
                let (mut tx, _) = store.begin_with(Batch::new()).await.unwrap();
                if fail {
                    let mut closing = Batch::new();
                    closing.push(stored_ceremony("x"));
                    closing.push(stored_ceremony("x"));
                    assert!(tx.commit_with(closing).await.is_err());
                } else {
                    stored_ceremony("x").execute(tx.conn()).await.unwrap();
                    drop(tx);
                }
            });
            until("the writer queues", || queued() == 1).await;
            let store = db.store.clone();
            let reader = tokio::spawn(async move { ceremonies_stored(&store).await });
            until("the reader queues", || queued() == 2).await;
            release_first.send(()).unwrap();
            first.await.unwrap();
            writer.await.unwrap();
            assert_eq!(reader.await.unwrap(), 0);
            assert_eq!(synchronous(&db.store).await, 2);
            assert_eq!(ceremonies_stored(&db.store).await, 0);
        }
        db.cleanup().await;
    }

    /// A relaxed write that fails, or whose request goes away halfway, never
    /// leaves SQLite's connection relaxed for the durable writes after it.
    #[tokio::test]
    async fn the_connection_is_durable_again_after_a_failed_or_dropped_relaxed_write() {
        let db = TestDb::sqlite().await;
        assert_eq!(synchronous(&db.store).await, 2, "FULL");
        let mut failing = Batch::new();
        failing.push(stored_ceremony("a"));
        failing.push(stored_ceremony("a"));
        assert!(db.store.write_relaxed(failing).await.is_err());
        assert_eq!(synchronous(&db.store).await, 2);
        let mut dropped = Batch::new();
        dropped.push(stored_ceremony("b"));
        drop(tokio::time::timeout(Duration::ZERO, db.store.write_relaxed(dropped)).await);
        assert_eq!(synchronous(&db.store).await, 2);
        let mut fine = Batch::new();
        fine.push(stored_ceremony("c"));
        db.store.write_relaxed(fine).await.unwrap();
        assert_eq!(synchronous(&db.store).await, 2);
        db.cleanup().await;
    }

    /// Migration 0007 rebuilds ceremonies and sessions WITHOUT ROWID: a
    /// database that already holds some keeps every row, and the rebuilt
    /// tables still refuse a duplicate key and a session of no account.
    #[tokio::test]
    async fn rebuilding_the_short_lived_tables_keeps_their_rows() {
        use sqlx::{Connection, Executor};
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        {
            sqlx::any::install_default_drivers();
            let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
            // Foreign keys on, as the store runs.
            conn.execute("PRAGMA foreign_keys = ON").await.unwrap();
            let before = sqlx::migrate::Migrator {
                migrations: std::borrow::Cow::Owned(
                    super::SQLITE_MIGRATIONS
                        .migrations
                        .iter()
                        .filter(|m| m.version < 7)
                        .cloned()
                        .collect(),
                ),
                ..sqlx::migrate::Migrator::DEFAULT
            };
            before.run(&mut conn).await.unwrap();
            conn.execute(
                "INSERT INTO accounts (id, citizen_id, user_handle, state, ial, created_ms, updated_ms) \
                 VALUES ('acc', '1999000000017', 'h', 'active', '2.1', 0, 0); \
                 INSERT INTO ceremonies (id, kind, account_id, state, expires_ms) VALUES ('c1', 'login', 'acc', '{}', 5); \
                 INSERT INTO sessions (id_hash, account_id, aal, amr, csrf_token, created_ms, last_seen_ms, expires_ms) \
                 VALUES ('s1', 'acc', '2.2', '[]', 't', 1, 2, 3);",
            )
            .await
            .unwrap();
            conn.close().await.unwrap();
        }
        let store = Store::connect(&url, &StoreOptions::default())
            .await
            .unwrap();
        let mut conn = store.conn().await.unwrap();
        let ceremony: (String, String, Option<String>, String, i64) =
            sqlx::query_as("SELECT id, kind, account_id, state, expires_ms FROM ceremonies")
                .fetch_one(conn.conn())
                .await
                .unwrap();
        assert_eq!(
            ceremony,
            (
                "c1".into(),
                "login".into(),
                Some("acc".into()),
                "{}".into(),
                5
            )
        );
        let session: (String, String, i64, i64, i64) = sqlx::query_as(
            "SELECT id_hash, account_id, created_ms, last_seen_ms, expires_ms FROM sessions",
        )
        .fetch_one(conn.conn())
        .await
        .unwrap();
        assert_eq!(session, ("s1".into(), "acc".into(), 1, 2, 3));
        let without_rowid: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqlite_schema WHERE name IN ('ceremonies', 'sessions') AND sql LIKE '%WITHOUT ROWID%'",
        )
        .fetch_one(conn.conn())
        .await
        .unwrap();
        assert_eq!(without_rowid, 2);
        assert!(
            conn.conn().execute(
                "INSERT INTO ceremonies (id, kind, state, expires_ms) VALUES ('c1', 'x', '{}', 0)"
            )
            .await
            .is_err()
        );
        assert!(
            conn.conn().execute(
                "INSERT INTO sessions (id_hash, account_id, aal, amr, csrf_token, created_ms, last_seen_ms, expires_ms) \
                 VALUES ('s2', 'nobody', '2.2', '[]', 't', 1, 2, 3)"
            )
            .await
            .is_err()
        );
    }

    /// A write outside any transaction (a ceremony stored at login start)
    /// while a login's transaction holds SQLite's write lock: it must wait
    /// its turn and succeed, not fail with `SQLITE_BUSY` and not sleep in
    /// SQLite's busy handler. A busy timeout far shorter than the
    /// transaction makes either failure visible.
    #[tokio::test]
    async fn a_single_write_queues_behind_a_running_transaction_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let options = StoreOptions {
            busy_timeout: Duration::from_millis(10),
            ..StoreOptions::default()
        };
        let store = super::Store::open_sqlite(&dir.path().join("t.db"), &options)
            .await
            .unwrap();
        let mut tx = store.begin().await.unwrap();
        ceremonies::spend("none", ceremonies::CeremonyKind::PasskeyLogin)
            .run(tx.conn())
            .await
            .unwrap();

        let writer = {
            let store = store.clone();
            tokio::spawn(async move {
                ceremonies::put(
                    &store,
                    ceremonies::CeremonyKind::PasskeyLogin,
                    None,
                    "{}",
                    OffsetDateTime::now_utc(),
                )
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            !writer.is_finished(),
            "the write must wait for the transaction, not run beside it"
        );
        tx.commit().await.unwrap();
        let id = writer.await.unwrap().expect("the queued write succeeds").id;
        assert!(
            ceremonies::peek(
                &store,
                &id,
                ceremonies::CeremonyKind::PasskeyLogin,
                OffsetDateTime::now_utc()
            )
            .await
            .is_ok()
        );
    }
}
