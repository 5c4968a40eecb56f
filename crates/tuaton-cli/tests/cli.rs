//! The `tuaton` binary as operators and scripts use it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tuaton_store::audit::{self, AuditEvent};
use tuaton_store::testing::TestDb;

fn tuaton(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tuaton"));
    c.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn every_command_has_help() {
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["dev", "init", "--help"],
        &["audit", "verify", "--help"],
        &["accounts", "show", "--help"],
        &["accounts", "suspend", "--help"],
        &["accounts", "reactivate", "--help"],
        &["accounts", "grant-role", "--help"],
        &["accounts", "revoke-role", "--help"],
    ] {
        let o = tuaton(args, &[]);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
        assert!(text(&o).contains("Usage:"), "{args:?}");
    }
}

#[test]
fn a_bad_setting_exits_non_zero_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    for (var, val, expect) in [
        ("TUATON_LISTEN", "8080", "TUATON_LISTEN"),
        ("TUATON_PUBLIC_URL", "localhost:8080", "TUATON_PUBLIC_URL"),
        ("TUATON_DATABASE_URL", "mysql://x/y", "TUATON_DATABASE_URL"),
    ] {
        let o = tuaton(&["serve"], &[(var, val), ("TUATON_DATA_DIR", d)]);
        assert_eq!(o.status.code(), Some(64), "{var}: {}", text(&o));
        assert!(
            text(&o).contains(expect) && text(&o).contains("expected"),
            "{}",
            text(&o)
        );
    }
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "request_timeout_secs = 0\n").unwrap();
    let o = tuaton(
        &["serve", "--config", cfg.to_str().unwrap()],
        &[("TUATON_DATA_DIR", d)],
    );
    assert_eq!(o.status.code(), Some(64));
    assert!(
        text(&o).contains("request_timeout_secs (configuration file)"),
        "{}",
        text(&o)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_reports_a_tampered_row_by_id() {
    let db = TestDb::sqlite().await;
    for i in 0..4 {
        let ev = AuditEvent::success("operator:test", "test.event", format!("t{i}"));
        audit::append_alone(&db.store, OffsetDateTime::now_utc(), &ev)
            .await
            .unwrap();
    }
    let url = db.url();
    let ok = tuaton(&["audit", "verify"], &[("TUATON_DATABASE_URL", &url)]);
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(text(&ok).contains("intact: 4 record(s)"));

    sqlx::query("DROP TRIGGER audit_log_no_update")
        .execute(db.store.conn().await.unwrap().conn())
        .await
        .unwrap();
    sqlx::query("UPDATE audit_log SET target = 'forged' WHERE seq = 3")
        .execute(db.store.conn().await.unwrap().conn())
        .await
        .unwrap();

    let bad = tuaton(&["audit", "verify"], &[("TUATON_DATABASE_URL", &url)]);
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    assert!(text(&bad).contains("BROKEN at record 3"), "{}", text(&bad));

    let json = tuaton(
        &["audit", "verify", "--json"],
        &[("TUATON_DATABASE_URL", &url)],
    );
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["intact"], false);
    assert_eq!(v["broken"]["seq"], 3);
    assert_eq!(v["records_checked"], 2);
    db.cleanup().await;
}

#[test]
fn dev_init_creates_a_private_master_key_and_keeps_it_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let kd = dir.path().join("keys-dev");
    let o = tuaton(&["dev", "init", "--dir", kd.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let key = std::fs::read_to_string(kd.join("master.key")).unwrap();
    assert_eq!(key.trim().len(), 64);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(kd.join("master.key"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
    }
    tuaton(&["dev", "init", "--dir", kd.to_str().unwrap()], &[]);
    assert_eq!(
        std::fs::read_to_string(kd.join("master.key")).unwrap(),
        key,
        "kept without --force"
    );
    tuaton(
        &["dev", "init", "--dir", kd.to_str().unwrap(), "--force"],
        &[],
    );
    assert_ne!(std::fs::read_to_string(kd.join("master.key")).unwrap(), key);
}

#[test]
fn serve_answers_health_checks_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let listen = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tuaton"))
        .args(["serve", "--dev", "--log-json"])
        .env(
            "TUATON_DEV_KEYS_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../keys-dev"),
        )
        .env("TUATON_LISTEN", &listen)
        .env("TUATON_DATA_DIR", dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut ready = false;
    while Instant::now() < deadline {
        if let Ok(body) = http_get(&listen, "/readyz") {
            ready = body.starts_with("HTTP/1.1 200");
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(ready, "server did not become ready");
    assert!(
        dir.path().join("tuaton.db").exists(),
        "SQLite file in the data dir"
    );
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
    let mut logs = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut logs).unwrap();
    let first = logs.lines().next().unwrap();
    assert!(
        serde_json::from_str::<serde_json::Value>(first).is_ok(),
        "JSON logs: {first}"
    );
}

fn http_get(addr: &str, path: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_suspend_reactivate_and_grant_officer_with_audit_records() {
    let db = TestDb::sqlite().await;
    let mut tx = db.store.begin().await.unwrap();
    let new = tuaton_store::accounts::NewAccount {
        citizen_id: "1999000000017".into(),
        thai_given: "สมชาย".into(),
        thai_family: "ใจดี".into(),
        en_given: None,
        en_family: None,
        birth_date: "1964-02-22".into(),
        contact_email: None,
        ial: tuaton_core::Ial::Ial2_1,
    };
    let acc = tuaton_store::accounts::insert(&mut tx, &new, "handle", OffsetDateTime::now_utc())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let acc_id = acc.id.to_string();
    let url = db.url();
    let env = [("TUATON_DATABASE_URL", url.as_str()), ("USER", "somsak")];

    let o = tuaton(&["accounts", "suspend", &acc_id, "--reason", ""], &env);
    assert_eq!(o.status.code(), Some(64), "{}", text(&o));
    let o = tuaton(
        &[
            "accounts",
            "suspend",
            "1-9990-00000-01-7",
            "--reason",
            "reported stolen card",
        ],
        &env,
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = tuaton(&["accounts", "suspend", &acc_id, "--reason", "again"], &env);
    assert_eq!(o.status.code(), Some(1), "already suspended: {}", text(&o));
    let o = tuaton(&["accounts", "show", &acc_id, "--json"], &env);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["state"].as_str(), v["state_reason"].as_str()),
        (Some("suspended"), Some("reported stolen card"))
    );
    assert!(!text(&o).contains("สมชาย"), "show prints no personal data");
    assert!(
        tuaton(&["accounts", "reactivate", &acc_id], &env)
            .status
            .success()
    );
    let grant = ["accounts", "grant-role", &acc_id, "--role", "officer"];
    assert!(tuaton(&grant, &env).status.success());
    assert_eq!(tuaton(&grant, &env).status.code(), Some(1), "held already");
    let revoke = ["accounts", "revoke-role", &acc_id, "--role", "client-admin"];
    assert_eq!(tuaton(&revoke, &env).status.code(), Some(1), "not held");
    let revoke = ["accounts", "revoke-role", &acc_id, "--role", "officer"];
    assert!(tuaton(&revoke, &env).status.success());
    assert!(tuaton(&grant, &env).status.success(), "granted again");
    assert_eq!(
        tuaton(&["accounts", "show", "no-such-account"], &env)
            .status
            .code(),
        Some(64)
    );

    let recs = audit::list(&db.store, 0, 100).await.unwrap();
    let actions: Vec<_> = recs
        .iter()
        .map(|r| (r.actor.as_str(), r.action.as_str()))
        .collect();
    assert_eq!(
        actions,
        vec![
            ("operator:somsak", "account.suspend"),
            ("operator:somsak", "account.reactivate"),
            ("operator:somsak", "account.grant_role"),
            ("operator:somsak", "account.revoke_role"),
            ("operator:somsak", "account.grant_role")
        ]
    );
    assert!(audit::verify(&db.store).await.unwrap().is_intact());
    db.cleanup().await;
}
