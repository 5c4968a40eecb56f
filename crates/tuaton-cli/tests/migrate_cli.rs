//! `tuaton migrate` on a real PostgreSQL server with two roles: the schema's
//! owner applies the migrations and grants the service role its rights; the
//! service role, as `tuaton serve` uses it, works but can neither rewrite nor
//! empty the audit log, nor drop or disable its triggers. A `TRUNCATE` is
//! refused even to the owner.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use time::OffsetDateTime;
use tuaton_store::audit::{self, AuditEvent};
use tuaton_store::{Store, StoreError, StoreOptions};

fn admin_url() -> Option<String> {
    match std::env::var("TUATON_TEST_POSTGRES_URL") {
        Ok(u) => Some(u),
        Err(_) if std::env::var("TUATON_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") => {
            panic!("TUATON_REQUIRE_POSTGRES=1 but TUATON_TEST_POSTGRES_URL is not set")
        }
        Err(_) => {
            eprintln!("skipping: TUATON_TEST_POSTGRES_URL is not set (scripts/test sets it)");
            None
        }
    }
}

/// `postgres://USER@HOST:PORT/DB` for another user and database on the same server.
fn url_as(admin: &str, user: &str, db: &str) -> String {
    let rest = admin.strip_prefix("postgres://").unwrap();
    let host = rest.split_once('@').map_or(rest, |(_, h)| h);
    let host = host.split('/').next().unwrap();
    format!("postgres://{user}@{host}/{db}")
}

async fn run_sql(url: &str, sql: &str) -> Result<(), sqlx::Error> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await?;
    let r = sqlx::query(sql).execute(&pool).await.map(drop);
    pool.close().await;
    r
}

fn tuaton(args: &[&str], database_url: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_tuaton"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TUATON_DATA_DIR", dir.path())
        .env("TUATON_DATABASE_URL", database_url)
        .output()
        .unwrap()
}

fn refused(e: Result<(), sqlx::Error>, what: &str) -> String {
    match e {
        Err(sqlx::Error::Database(db)) => db.message().to_owned(),
        other => panic!("{what} was not refused: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_role_cannot_rewrite_or_empty_the_audit_log() {
    let Some(admin) = admin_url() else { return };
    let suffix: u32 = std::process::id();
    let (owner, service, db) = (
        format!("tuaton_owner_{suffix}"),
        format!("tuaton_service_{suffix}"),
        format!("tuaton_roles_{suffix}"),
    );
    for sql in [
        format!("CREATE ROLE {owner} LOGIN"),
        format!("CREATE ROLE {service} LOGIN"),
        format!("CREATE DATABASE {db} OWNER {owner}"),
    ] {
        run_sql(&admin, &sql).await.unwrap();
    }
    let owner_url = url_as(&admin, &owner, &db);
    let service_url = url_as(&admin, &service, &db);

    // Before any migration the service role cannot set the schema up itself.
    let early = Store::connect(&service_url, &StoreOptions::default()).await;
    assert!(early.is_err(), "a service role must not create the schema");

    // Roles that could undo the guards, or every role at once, are refused.
    for bad in [
        "public",
        "current_user",
        owner.as_str(),
        "tuaton_no_such_role",
    ] {
        let o = tuaton(&["migrate", "--grant-to", bad], &owner_url);
        assert_eq!(o.status.code(), Some(64), "--grant-to {bad} was accepted");
    }
    let o = tuaton(&["migrate", "--grant-to", &service, "--json"], &owner_url);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["granted_to"], service.as_str());

    // The service works as `tuaton serve` uses it.
    let store = Store::connect(&service_url, &StoreOptions::default())
        .await
        .unwrap();
    assert_eq!(store.pending_migrations().await.unwrap(), 0);
    for i in 0..3 {
        let ev = AuditEvent::success("operator:test", "test.event", format!("t{i}"));
        audit::append_alone(&store, OffsetDateTime::now_utc(), &ev)
            .await
            .unwrap();
    }
    assert!(audit::verify(&store).await.unwrap().is_intact());
    store.close().await;

    // And can do none of what a rewrite needs.
    for (sql, what) in [
        (
            "UPDATE audit_log SET target = 'forged' WHERE seq = 2",
            "an update",
        ),
        ("DELETE FROM audit_log WHERE seq = 3", "a delete"),
        ("TRUNCATE audit_log", "a truncate"),
        (
            "DROP TRIGGER audit_log_no_change ON audit_log",
            "dropping the guard",
        ),
        (
            "ALTER TABLE audit_log DISABLE TRIGGER ALL",
            "disabling the guards",
        ),
        ("DROP TABLE audit_log", "dropping the log"),
        ("DELETE FROM audit_head", "deleting the head"),
        ("CREATE TABLE audit_shadow (x INT)", "creating a table"),
    ] {
        let message = refused(run_sql(&service_url, sql).await, what);
        assert!(
            message.contains("permission denied") || message.contains("must be owner"),
            "{what}: {message}"
        );
    }

    // The owner may alter the schema, but TRUNCATE is refused to everyone.
    let message = refused(
        run_sql(&owner_url, "TRUNCATE audit_log").await,
        "TRUNCATE by the owner",
    );
    assert!(message.contains("append-only"), "{message}");

    // A build whose migration the database lacks is told to run `tuaton migrate`.
    run_sql(
        &owner_url,
        "DELETE FROM _sqlx_migrations WHERE version = (SELECT MAX(version) FROM _sqlx_migrations)",
    )
    .await
    .unwrap();
    let Err(err) = Store::connect(&service_url, &StoreOptions::default()).await else {
        panic!("a pending migration stops the service role");
    };
    assert!(
        matches!(err, StoreError::MigrationsPending { pending: 1 }),
        "{err}"
    );
    assert!(err.to_string().contains("tuaton migrate"));

    // An applied migration whose text differs from this build's stops it too.
    run_sql(
        &owner_url,
        "UPDATE _sqlx_migrations SET checksum = '\\x00' WHERE version = 1",
    )
    .await
    .unwrap();
    let Err(err) = Store::connect(&service_url, &StoreOptions::default()).await else {
        panic!("a changed migration stops the service role");
    };
    assert!(err.to_string().contains("different text"), "{err}");

    for sql in [
        format!("DROP DATABASE {db} WITH (FORCE)"),
        format!("DROP ROLE {service}"),
        format!("DROP ROLE {owner}"),
    ] {
        run_sql(&admin, &sql).await.unwrap();
    }
}
