//! Test databases on both engines, for this crate's tests and for the crates above.
//!
//! PostgreSQL tests run when `TUATON_TEST_POSTGRES_URL` names a server
//! (`scripts/test` starts one on loopback and sets it). Each test gets a fresh
//! database, dropped by [`TestDb::cleanup`]. Without the variable the
//! PostgreSQL half is skipped with a message, unless `TUATON_REQUIRE_POSTGRES=1`
//! (set by `scripts/test` and CI), when it fails instead: CI never passes by
//! skipping.
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

use crate::{Store, StoreOptions};

/// A throwaway database.
pub struct TestDb {
    /// The store, migrated.
    pub store: Store,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

fn random_suffix() -> String {
    let mut b = [0u8; 6];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).expect("randomness");
    hex::encode(b)
}

impl TestDb {
    /// A fresh SQLite file in a temporary directory.
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open_sqlite(&dir.path().join("tuaton.db"), &StoreOptions::default())
            .await
            .expect("open sqlite");
        TestDb {
            store,
            cleanup: Cleanup::Sqlite(dir),
        }
    }

    /// A fresh PostgreSQL database, or `None` when no server is configured and none is required.
    pub async fn postgres() -> Option<TestDb> {
        let Ok(admin_url) = std::env::var("TUATON_TEST_POSTGRES_URL") else {
            if std::env::var("TUATON_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                panic!(
                    "TUATON_REQUIRE_POSTGRES=1 but TUATON_TEST_POSTGRES_URL is not set; run scripts/test"
                );
            }
            eprintln!(
                "skipping PostgreSQL half: TUATON_TEST_POSTGRES_URL is not set (scripts/test sets it)"
            );
            return None;
        };
        let name = format!("tuaton_test_{}", random_suffix());
        sqlx::any::install_default_drivers();
        let admin = sqlx::AnyPool::connect(&admin_url)
            .await
            .expect("connect to test PostgreSQL");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .expect("create test database");
        admin.close().await;
        let url = database_url(&admin_url, &name);
        let store = Store::connect(&url, &StoreOptions::default())
            .await
            .expect("open postgres");
        Some(TestDb {
            store,
            cleanup: Cleanup::Postgres { admin_url, name },
        })
    }

    /// The URL of this database, for starting a server process on it.
    pub fn url(&self) -> String {
        match &self.cleanup {
            Cleanup::Sqlite(dir) => format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("tuaton.db").display()
            ),
            Cleanup::Postgres { admin_url, name } => database_url(admin_url, name),
        }
    }

    /// Closes the store and removes the database.
    pub async fn cleanup(self) {
        self.store.close().await;
        match self.cleanup {
            Cleanup::Sqlite(dir) => drop(dir),
            Cleanup::Postgres { admin_url, name } => {
                let admin = sqlx::AnyPool::connect(&admin_url)
                    .await
                    .expect("connect to test PostgreSQL");
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&admin)
                    .await
                    .expect("drop test database");
                admin.close().await;
            }
        }
    }
}

/// `admin_url` with its database name replaced by `name`.
fn database_url(admin_url: &str, name: &str) -> String {
    let (base, query) = admin_url
        .split_once('?')
        .map_or((admin_url, None), |(b, q)| (b, Some(q)));
    let base = match base.rfind('/') {
        Some(i) if i > "postgres://".len() => &base[..i],
        _ => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// Runs each named `async fn(TestDb)` once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! on_both_engines {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::testing::TestDb::sqlite().await).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(db) = $crate::testing::TestDb::postgres().await {
                        super::$name(db).await;
                    }
                }
            }
        )+
    };
}

/// Runs an async test body once on SQLite and once on PostgreSQL.
///
/// ```ignore
/// engine_tests! {
///     async fn appends_chain(store: &Store) { ... }
/// }
/// ```
#[macro_export]
macro_rules! engine_tests {
    ($( async fn $name:ident($store:ident : &Store) $body:block )+) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                async fn body($store: &$crate::Store) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let db = $crate::testing::TestDb::sqlite().await;
                    body(&db.store).await;
                    db.cleanup().await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(db) = $crate::testing::TestDb::postgres().await {
                        body(&db.store).await;
                        db.cleanup().await;
                    }
                }
            }
        )+
    };
}
