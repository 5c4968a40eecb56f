//! Connecting to SQLite or PostgreSQL and running migrations.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};

use crate::StoreError;

/// A write transaction on either engine. Dropping it without [`Tx::commit`] rolls back.
pub struct Tx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    // SQLite has one writer at a time; queueing writers here, in process, is
    // far cheaper than letting them spin on SQLITE_BUSY.
    _writer: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Tx {
    /// The connection to run queries on.
    pub fn conn(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
    }

    /// Makes the transaction's writes durable.
    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }

    /// Discards the transaction's writes.
    pub async fn rollback(self) -> Result<(), StoreError> {
        self.tx.rollback().await?;
        Ok(())
    }
}

/// One pooled connection for a single autocommit write (a statement that
/// needs no transaction around it). On SQLite it holds the in-process writer
/// lock like [`Tx`], so it queues behind a running transaction instead of
/// meeting `SQLITE_BUSY` and sleeping in SQLite's busy handler.
pub struct Writer {
    conn: sqlx::pool::PoolConnection<sqlx::Any>,
    _writer: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Writer {
    /// The connection to run the write on.
    pub fn conn(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.conn
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
    /// Most connections held open.
    pub max_connections: u32,
    /// How long a writer waits on SQLite's lock before giving up.
    pub busy_timeout: Duration,
    /// How long to wait for a pooled connection.
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
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    engine: Engine,
    writer: std::sync::Arc<tokio::sync::Mutex<()>>,
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
        let mut pool = AnyPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout);
        if engine == Engine::Sqlite {
            // A file opened in this process cannot drop its connection the way
            // a server can, so the round trip of a ping before each use buys
            // nothing.
            pool = pool.test_before_acquire(false);
            let pragmas = format!(
                "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = {}; PRAGMA synchronous = {};",
                options.busy_timeout.as_millis(),
                options.sqlite_synchronous
            );
            pool = pool.after_connect(move |conn, _| {
                let pragmas = pragmas.clone();
                Box::pin(async move {
                    conn.execute(pragmas.as_str()).await?;
                    Ok(())
                })
            });
        }
        let pool = pool.connect_with(connect).await?;
        let store = Self {
            pool,
            engine,
            writer: Default::default(),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Opens (creating if needed) the SQLite file at `path`.
    pub async fn open_sqlite(path: &Path, options: &StoreOptions) -> Result<Self, StoreError> {
        let url = format!("sqlite://{}?mode=rwc", path.display());
        Self::connect(&url, options).await
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        match self.engine {
            Engine::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await?,
            Engine::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await?,
        }
        Ok(())
    }

    /// Starts a transaction. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so two writers never deadlock upgrading a read lock,
    /// and writers in this process queue for it in order.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        let turn = self.writer_turn().await;
        let tx = match self.engine {
            Engine::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Engine::Postgres => self.pool.begin().await?,
        };
        Ok(Tx { tx, _writer: turn })
    }

    /// A connection for one autocommit write; on SQLite it waits its turn
    /// behind the writers of this process (see [`Writer`]).
    pub async fn writer(&self) -> Result<Writer, StoreError> {
        let turn = self.writer_turn().await;
        Ok(Writer {
            conn: self.pool.acquire().await?,
            _writer: turn,
        })
    }

    /// On SQLite, waits for this process's single writer slot; PostgreSQL
    /// takes concurrent writers and needs none.
    async fn writer_turn(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        match self.engine {
            Engine::Sqlite => Some(self.writer.clone().lock_owned().await),
            Engine::Postgres => None,
        }
    }

    /// Checks that the database answers; for `/readyz`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The engine behind this store.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The connection pool, for repositories in this crate and for tests.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes every connection; waits for those in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::Duration;

    use time::OffsetDateTime;

    use crate::{StoreOptions, ceremonies};

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
        let expires = OffsetDateTime::now_utc() + time::Duration::minutes(5);
        let mut tx = store.begin().await.unwrap();
        ceremonies::spend(&mut tx, "none", "login").await.unwrap();

        let writer = {
            let store = store.clone();
            tokio::spawn(async move { ceremonies::put(&store, "login", None, "{}", expires).await })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            !writer.is_finished(),
            "the write must wait for the transaction, not run beside it"
        );
        tx.commit().await.unwrap();
        let id = writer.await.unwrap().expect("the queued write succeeds");
        assert!(
            ceremonies::peek(&store, &id, "login", OffsetDateTime::now_utc())
                .await
                .is_ok()
        );
    }
}
