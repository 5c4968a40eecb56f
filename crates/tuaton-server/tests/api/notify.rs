//! Notices leave by e-mail: one round of upkeep delivers a recovery's notice
//! to a real SMTP server (Python's aiosmtpd, which nobody at Tuaton wrote)
//! exactly once; an unreachable relay loses nothing; development mode without
//! a relay writes the message to `DATA_DIR/outbox`.
//!
//! The peer runs from the virtualenv `scripts/install-test-deps` creates
//! (`target/test-venv`, or `TUATON_TEST_PYTHON`). Without it these tests fail
//! when `TUATON_REQUIRE_POSTGRES=1` (CI, scripts/test) and skip otherwise.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use http::StatusCode;
use serde_json::Value;
use tuaton_core::FixedClock;
use tuaton_server::AppState;
use tuaton_store::notifications::{self, NotificationRecord};
use tuaton_store::testing::TestDb;

use crate::common::*;
use crate::on_both_engines;

const CONTACT: &str = "somchai@example.test";

/// What must never appear in a notice: Somchai's citizen id (both forms),
/// names, birth date and laser code.
const PERSONAL: [&str; 8] = [
    "1999000000017",
    "1-9990-00000-01-7",
    "สมชาย",
    "ใจดี",
    "Somchai",
    "Jaidee",
    "1964-02-22",
    "JT0-1234567-89",
];

/// The interpreter with aiosmtpd, or `None` (after saying why) when the test may skip.
fn python() -> Option<PathBuf> {
    let path = std::env::var_os("TUATON_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-venv/bin/python")
        });
    let usable = Command::new(&path)
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if usable {
        return Some(path);
    }
    let why = format!(
        "no Python with aiosmtpd at {}: run scripts/install-test-deps (it creates target/test-venv), or set TUATON_TEST_PYTHON",
        path.display()
    );
    if std::env::var("TUATON_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
        panic!("{why}");
    }
    eprintln!("skipping the SMTP peer test: {why}");
    None
}

/// A loopback port nobody listens on (a moment ago).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `python -m aiosmtpd` storing what it receives in a maildir; killed (by its
/// own pid) when dropped.
struct SmtpPeer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl SmtpPeer {
    fn start(python: &Path, port: u16) -> SmtpPeer {
        let dir = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(dir.path().join("aiosmtpd.log")).unwrap();
        let child = Command::new(python)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(dir.path().join("maildir"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut peer = SmtpPeer { child, port, dir };
        peer.wait_until_listening();
        peer
    }

    fn wait_until_listening(&mut self) {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            let exited = self.child.try_wait().unwrap();
            if exited.is_some() || Instant::now() > deadline {
                let log = std::fs::read_to_string(self.dir.path().join("aiosmtpd.log"))
                    .unwrap_or_default();
                panic!("aiosmtpd did not listen on {addr} (exit: {exited:?}); its log:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The messages delivered so far.
    fn messages(&self) -> Vec<PathBuf> {
        let new = self.dir.path().join("maildir").join("new");
        let mut files: Vec<PathBuf> = std::fs::read_dir(new)
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        files.sort();
        files
    }

    /// Waits (bounded) until `n` messages are in the maildir; returns them.
    fn wait_for(&self, n: usize) -> Vec<PathBuf> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let files = self.messages();
            if files.len() >= n || Instant::now() > deadline {
                return files;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for SmtpPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A message as Python's `email` package reads it (headers decoded from RFC 2047).
fn parse_message(python: &Path, file: &Path) -> Value {
    let script = "import email, email.policy, json, sys\n\
        m = email.message_from_binary_file(open(sys.argv[1], 'rb'), policy=email.policy.default)\n\
        print(json.dumps({k: str(m[k]) for k in ('To', 'From', 'Subject', 'Date', 'Message-ID', 'Auto-Submitted', 'X-RcptTo')} | {'body': m.get_content()}))";
    let out = Command::new(python)
        .args(["-c", script])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Enrols Somchai and recovers his account, as a new phone would; returns the
/// recovery's answer.
async fn recovered(state: &AppState) -> Value {
    let mut old_phone = Client {
        app: tuaton_server::build_router(state.clone()),
        cookie: None,
        csrf: None,
    };
    enrolled_and_logged_in(&mut old_phone, somchai()).await;
    let mut new_phone = Client {
        app: tuaton_server::build_router(state.clone()),
        cookie: None,
        csrf: None,
    };
    let (s, v) = new_phone
        .call("POST", "/api/v1/recovery", Some(somchai()), false)
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    v
}

async fn the_notice(db: &TestDb, taken: &Value) -> NotificationRecord {
    let (account,): (String,) = sqlx::query_as("SELECT account_id FROM recoveries WHERE id = $1")
        .bind(taken["recovery_id"].as_str().unwrap())
        .fetch_one(db.store.conn().await.unwrap().conn())
        .await
        .unwrap();
    let account = tuaton_core::AccountId::parse(&account).unwrap();
    let mut notices = notifications::for_account(db.store.conn().await.unwrap().conn(), &account)
        .await
        .unwrap();
    assert_eq!(notices.len(), 1);
    notices.remove(0)
}

fn assert_no_personal_data(what: &str, text: &str, grant: &Value) {
    let token = grant["recovery_token"].as_str().unwrap();
    for p in PERSONAL.iter().chain([&token]) {
        assert!(!text.contains(p), "{p} in the {what}:\n{text}");
    }
}

async fn a_recovery_notice_reaches_the_contact_through_a_real_smtp_server(db: TestDb) {
    let Some(python) = python() else {
        return db.cleanup().await;
    };
    let peer = SmtpPeer::start(&python, free_port());
    let data = tempfile::tempdir().unwrap();
    let clock = fixed_clock();
    let state = state_with(
        &db,
        clock.clone(),
        &[
            ("TUATON_SMTP_URL", &peer.url()),
            ("TUATON_MAIL_FROM", "no-reply@id.example.test"),
            ("TUATON_DATA_DIR", data.path().to_str().unwrap()),
        ],
    );
    let grant = recovered(&state).await;
    assert!(peer.messages().is_empty(), "nothing is sent before upkeep");

    tuaton_server::maintenance::run_once(&state).await;
    let files = peer.wait_for(1);
    assert_eq!(files.len(), 1, "exactly one message");
    let notice = the_notice(&db, &grant).await;
    let m = parse_message(&python, &files[0]);
    assert_eq!(m["To"], CONTACT);
    assert_eq!(
        m["X-RcptTo"], CONTACT,
        "the envelope goes to the contact too"
    );
    assert_eq!(m["From"], "Tuaton <no-reply@id.example.test>");
    let subject = m["Subject"].as_str().unwrap();
    assert!(
        subject.contains("กู้คืนบัญชี") && subject.contains("Someone asked to recover your account"),
        "{subject}"
    );
    let body = m["body"].as_str().unwrap();
    assert!(body.contains("เรียน") && body.contains("Dear"), "{body}");
    let link = format!(
        "/recovery/cancel?r={}",
        grant["recovery_id"].as_str().unwrap()
    );
    assert!(body.contains(&link), "the one-click cancel link: {body}");
    assert!(m["Message-ID"].as_str().unwrap().contains(&notice.id));
    assert!(!m["Date"].as_str().unwrap().is_empty());
    assert_eq!(m["Auto-Submitted"], "auto-generated");
    assert_no_personal_data("body", body, &grant);
    assert_no_personal_data("subject", subject, &grant);
    let raw = String::from_utf8_lossy(&std::fs::read(&files[0]).unwrap()).into_owned();
    assert_no_personal_data("raw message", &raw, &grant);

    assert_eq!(
        (notice.sent_at, notice.attempts, notice.last_error),
        (Some(clock.now_ms()), 1, None)
    );

    // A second round has nothing left to send.
    tuaton_server::maintenance::run_once(&state).await;
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(peer.messages().len(), 1, "sent once only");
    assert_eq!(the_notice(&db, &grant).await.attempts, 1);
    drop(peer);
    db.cleanup().await;
}

async fn an_unreachable_relay_loses_nothing(db: TestDb) {
    let Some(python) = python() else {
        return db.cleanup().await;
    };
    let port = free_port();
    let data = tempfile::tempdir().unwrap();
    let clock = fixed_clock();
    let state = state_with(
        &db,
        clock.clone(),
        &[
            ("TUATON_SMTP_URL", &format!("smtp://127.0.0.1:{port}")),
            ("TUATON_MAIL_FROM", "no-reply@id.example.test"),
            ("TUATON_DATA_DIR", data.path().to_str().unwrap()),
        ],
    );
    let grant = recovered(&state).await;

    // Nobody listens: the notice stays queued, tried once, due again in a minute.
    let started = Instant::now();
    tuaton_server::maintenance::run_once(&state).await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "a closed port fails fast"
    );
    let n = the_notice(&db, &grant).await;
    assert_eq!(
        (n.sent_at, n.failed_at, n.attempts),
        (None, None, 1),
        "{n:?}"
    );
    assert_eq!(
        n.next_attempt_at,
        clock.now_ms() + time::Duration::minutes(1)
    );
    assert_eq!(n.last_error.as_deref(), Some("relay unreachable"));
    // Not due yet: a round now does not try again.
    tuaton_server::maintenance::run_once(&state).await;
    assert_eq!(the_notice(&db, &grant).await.attempts, 1);

    // The relay comes back; once the notice is due it is delivered.
    let peer = SmtpPeer::start(&python, port);
    clock.advance(time::Duration::minutes(1));
    tuaton_server::maintenance::run_once(&state).await;
    let files = peer.wait_for(1);
    assert_eq!(files.len(), 1);
    assert_eq!(parse_message(&python, &files[0])["To"], CONTACT);
    let n = the_notice(&db, &grant).await;
    assert_eq!((n.sent_at.is_some(), n.attempts), (true, 2));
    drop(peer);
    db.cleanup().await;
}

async fn development_mode_without_a_relay_writes_the_message_to_the_outbox(db: TestDb) {
    let data = tempfile::tempdir().unwrap();
    let clock = fixed_clock();
    let state = state_with(
        &db,
        clock.clone(),
        &[("TUATON_DATA_DIR", data.path().to_str().unwrap())],
    );
    let grant = recovered(&state).await;

    // Without any mailer (outside development mode) the notice just waits.
    let mut services = state.services().clone();
    services.mailer = None;
    let no_mailer = AppState::new(
        state.settings().clone(),
        db.store.clone(),
        clock.clone(),
        services,
    );
    let report = tuaton_server::notify::deliver_due(&no_mailer)
        .await
        .unwrap();
    assert_eq!((report.waiting_unsent, report.sent), (1, 0));
    assert_eq!(the_notice(&db, &grant).await.attempts, 0);

    tuaton_server::maintenance::run_once(&state).await;
    let notice = the_notice(&db, &grant).await;
    let outbox = data.path().join("outbox");
    let files: Vec<PathBuf> = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files, vec![outbox.join(format!("{}.eml", notice.id))]);
    let raw = std::fs::read_to_string(&files[0]).unwrap();
    for header in [
        "To: somchai@example.test\r\n",
        "From: Tuaton <no-reply@localhost>\r\n",
        "Subject: ",
        "Date: ",
        &format!("Message-ID: <recovery_requested.{}@localhost>", notice.id),
        "Content-Type: text/plain; charset=utf-8\r\n",
    ] {
        assert!(raw.contains(header), "{header:?} missing:\n{raw}");
    }
    assert_no_personal_data("outbox message", &raw, &grant);
    // The body travels base64-encoded (Thai text); read it as a person would.
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    assert!(head.contains("Content-Transfer-Encoding: base64"), "{head}");
    let body: String = body.split_whitespace().collect();
    let body = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap(),
    )
    .unwrap();
    assert!(
        body.starts_with("เรียน") && body.contains("Dear Tuaton user"),
        "{body}"
    );
    assert_no_personal_data("outbox body", &body, &grant);
    assert_eq!((notice.sent_at.is_some(), notice.attempts), (true, 1));
    db.cleanup().await;
}

/// The fixed clock's time, as the database keeps it (whole milliseconds).
trait NowMs {
    fn now_ms(&self) -> time::OffsetDateTime;
}

impl NowMs for Arc<FixedClock> {
    fn now_ms(&self) -> time::OffsetDateTime {
        tuaton_store::from_ms(tuaton_store::to_ms(tuaton_core::Clock::now(self.as_ref())))
    }
}

on_both_engines!(
    a_recovery_notice_reaches_the_contact_through_a_real_smtp_server,
    an_unreachable_relay_loses_nothing,
    development_mode_without_a_relay_writes_the_message_to_the_outbox,
);
