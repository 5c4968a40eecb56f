//! Full passkey logins per second over HTTP on loopback, SQLite and PostgreSQL.
//!
//! One login is what a phone or browser does: `POST /api/v1/login/start`
//! (by citizen id), the authenticator signs the challenge, `POST
//! /api/v1/login/finish`, which takes the ceremony, verifies the assertion,
//! stores the new sign counter, writes a session row and appends an audit
//! record in one transaction. The server is the real router behind
//! `tuaton_server::serve` on `127.0.0.1:0`; the load generator is reqwest over
//! real sockets, in the same process but on its own tokio runtime, so the CPU
//! each side uses can be read from its threads' counters in `/proc`.
//!
//! The authenticator is webauthn-authenticator-rs's `SoftPasskey` (real ECDSA
//! P-256 signatures). Its signing runs on the same cores as the server; the
//! time spent in `do_authentication` is reported apart so the server's share
//! is visible. Each client task owns one credential and logs in sequentially:
//! concurrent use of one credential would make sign counters arrive out of
//! order, which the server rightly treats as a cloned authenticator.
//!
//! Everything is bounded: a fixed measuring window, a per-request timeout, and
//! an overall cap on each engine's run. Knobs (environment):
//! `TUATON_BENCH_CLIENTS` (default 8), `TUATON_BENCH_SECONDS` (default 10),
//! `TUATON_BENCH_WARMUP_SECONDS` (default 2), `TUATON_BENCH_URL` (drive an
//! already running server, e.g. the release binary, instead of the in-process
//! one; it needs rate limits raised and a fresh database).
//! PostgreSQL is measured when `TUATON_TEST_POSTGRES_URL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tuaton_core::SystemClock;
use tuaton_server::{AppState, Settings, build_router, serve};
use tuaton_store::testing::TestDb;
use url::Url;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse};

/// The WebAuthn origin of the default public URL (what a browser would send).
const ORIGIN: &str = "http://localhost:8080";
/// Every HTTP request gives up after this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Thread-name prefix of the load generator's runtime.
const CLIENT_THREAD: &str = "load-client";

/// Fictional people from keys-dev/registry/people.json whose cards are valid.
const PEOPLE: &[(&str, &str, &str, &str, &str)] = &[
    (
        "1999000000017",
        "สมชาย",
        "ใจดี",
        "1964-02-22",
        "JT0-1234567-89",
    ),
    (
        "1999000000025",
        "สมหญิง",
        "รักไทย",
        "1985-07-15",
        "ME1-0234567-01",
    ),
    (
        "1999000000033",
        "วิชัย",
        "ศรีสุข",
        "1972-11-03",
        "AA2-7654321-12",
    ),
    (
        "1999000000041",
        "มาลี",
        "วงศ์ทอง",
        "1990-01-31",
        "JC3-1111111-23",
    ),
    (
        "1999000000050",
        "ธนพล",
        "มั่นคง",
        "1978-05-09",
        "ME4-2222222-34",
    ),
    (
        "1999000000068",
        "กมลา",
        "สุวรรณรัตน์",
        "1969-09-12",
        "JT5-3333333-45",
    ),
    (
        "1999000000076",
        "อนุชา",
        "ทองดี",
        "1995-03-28",
        "AB6-4444444-56",
    ),
    (
        "1999000000106",
        "ศิริพร",
        "บุญมา",
        "1988-06-06",
        "JC9-7777777-89",
    ),
];

struct Knobs {
    clients: usize,
    measure: Duration,
    warmup: Duration,
}

/// Which cores the in-process server and the load generator run on.
struct Placement {
    server: Option<core_affinity::CoreId>,
    clients: Vec<core_affinity::CoreId>,
}

impl Placement {
    /// The server alone on the first core and the load generator on the
    /// rest, so the server's CPU per login is measured on a core of its own
    /// (as on a machine whose clients are elsewhere). `TUATON_BENCH_SHARED_CORES=1`,
    /// or a single core, lets both run anywhere.
    fn choose() -> Self {
        let shared = Self {
            server: None,
            clients: Vec::new(),
        };
        if std::env::var("TUATON_BENCH_SHARED_CORES").is_ok_and(|v| v == "1") {
            return shared;
        }
        match core_affinity::get_core_ids() {
            Some(cores) if cores.len() >= 2 => Self {
                server: cores.first().copied(),
                clients: cores[1..].to_vec(),
            },
            _ => shared,
        }
    }

    fn describe(&self) -> String {
        match self.server {
            Some(core) => format!(
                "server on core {} alone (one runtime thread), load generator on cores {:?}",
                core.id,
                self.clients.iter().map(|c| c.id).collect::<Vec<_>>()
            ),
            None => "server and load generator share every core".to_owned(),
        }
    }
}

/// Cores this process may use, counted before the server is pinned (after,
/// the main thread's affinity names one core).
static MACHINE_CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();

fn machine_cores() -> usize {
    *MACHINE_CORES.get_or_init(|| core_affinity::get_core_ids().map_or(0, |c| c.len()))
}

fn env_num(name: &str, default: u64, max: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
        .clamp(1, max)
}

fn main() {
    let knobs = Knobs {
        clients: env_num("TUATON_BENCH_CLIENTS", 8, 256) as usize,
        measure: Duration::from_secs(env_num("TUATON_BENCH_SECONDS", 10, 300)),
        warmup: Duration::from_secs(env_num("TUATON_BENCH_WARMUP_SECONDS", 2, 60)),
    };
    machine_cores();
    let placement = Placement::choose();
    // The server runs as `tuaton serve` would on its cores: on one core, tokio
    // (which sizes its pool by the threads' affinity) starts one worker. The
    // load generator gets its own runtime, with named threads so their CPU can
    // be told apart, on the other cores.
    let mut server_rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(core) = placement.server {
        // Pinned before anything starts: threads spawned from here (the
        // runtime's, sqlx's SQLite connection thread) inherit the core.
        core_affinity::set_for_current(core);
        server_rt.worker_threads(1);
        server_rt.on_thread_start(move || {
            core_affinity::set_for_current(core);
        });
    }
    let server_rt = server_rt.enable_all().build().unwrap();
    let mut client_rt = tokio::runtime::Builder::new_multi_thread();
    client_rt.worker_threads(2).thread_name(CLIENT_THREAD);
    if !placement.clients.is_empty() {
        let cores = placement.clients.clone();
        let next = std::sync::atomic::AtomicUsize::new(0);
        client_rt.on_thread_start(move || {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            core_affinity::set_for_current(cores[i % cores.len()]);
        });
    }
    let client_rt = client_rt.enable_all().build().unwrap();
    let cap = knobs.measure + knobs.warmup + Duration::from_secs(120);

    println!(
        "passkey logins: {} client tasks, {} s warm-up, {} s measured, {} cores; {}",
        knobs.clients,
        knobs.warmup.as_secs(),
        knobs.measure.as_secs(),
        machine_cores(),
        placement.describe()
    );
    if let Ok(url) = std::env::var("TUATON_BENCH_URL") {
        let base = url.trim_end_matches('/').to_owned();
        let r = client_rt
            .block_on(async { tokio::time::timeout(cap, load(&base, &knobs, &client_rt)).await });
        report(&format!("external server at {base}"), r);
        return;
    }

    server_rt.block_on(async {
        let db = TestDb::sqlite().await;
        let r = tokio::time::timeout(cap, engine(&db, &knobs, &client_rt)).await;
        report("SQLite (WAL, synchronous = FULL)", r);
        db.cleanup().await;

        if let Some(db) = TestDb::postgres().await {
            let r = tokio::time::timeout(cap, engine(&db, &knobs, &client_rt)).await;
            report("PostgreSQL (fsync on, synchronous_commit on)", r);
            db.cleanup().await;
        } else {
            println!("\nPostgreSQL: skipped (TUATON_TEST_POSTGRES_URL not set)");
        }
    });
}

fn report(engine: &str, r: Result<Outcome, tokio::time::error::Elapsed>) {
    println!("\n== {engine}");
    match r {
        Ok(o) => o.print(),
        Err(_) => println!("run exceeded its time cap and was abandoned"),
    }
}

/// Serves the real router on a loopback port for the duration of one load run.
async fn engine(db: &TestDb, knobs: &Knobs, client_rt: &tokio::runtime::Runtime) -> Outcome {
    let env: HashMap<&str, &str> = HashMap::from([
        // Rate limits would (rightly) stop a load generator on one address.
        ("TUATON_RATE_LIMIT_PER_ADDRESS", "1000000"),
        ("TUATON_RATE_LIMIT_PER_ACCOUNT", "1000000"),
        (
            "TUATON_DEV_KEYS_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../keys-dev"),
        ),
        (
            "TUATON_DATA_DIR",
            concat!(env!("CARGO_TARGET_TMPDIR"), "/bench-data"),
        ),
    ]);
    let settings =
        Settings::load_with(None, true, |k| env.get(k).map(|v| (*v).to_owned())).unwrap();
    // Logging as `tuaton serve` sets it up, so spans and filters cost what they do there.
    tuaton_server::telemetry::init_logging(settings.log_format);
    let limits = settings.connection_limits();
    let state = AppState::from_settings(settings, db.store.clone(), Arc::new(SystemClock)).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        listener,
        build_router(state),
        async {
            let _ = stop_rx.await;
        },
        Duration::from_secs(5),
        limits,
    ));
    let outcome = load(&base, knobs, client_rt).await;
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    outcome
}

/// One person's browser-like session: cookie and CSRF token.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: Option<String>,
    csrf: Option<String>,
}

impl Browser {
    fn new(base: &str) -> Self {
        Self {
            http: http_client(),
            base: base.to_owned(),
            cookie: None,
            csrf: None,
        }
    }

    async fn post(&mut self, path: &str, body: Value) -> (u16, Value) {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        if let Some(t) = &self.csrf {
            req = req.header("x-csrf-token", t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        if let Some(sc) = resp
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
        {
            let pair = sc.split(';').next().unwrap_or_default().to_owned();
            self.cookie = (!pair.ends_with('=')).then_some(pair);
        }
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn register(&mut self, authn: &mut SoftPasskey, grant: Option<&str>, name: &str) {
        let body = grant.map_or(json!({}), |g| json!({ "enrolment_token": g }));
        let (s, start) = self.post("/api/v1/passkeys/registration/start", body).await;
        assert_eq!(s, 200, "registration start: {start}");
        let ccr: CreationChallengeResponse =
            serde_json::from_value(json!({ "publicKey": start["public_key"] })).unwrap();
        let cred = authn
            .do_registration(Url::parse(ORIGIN).unwrap(), ccr)
            .unwrap();
        let (s, done) = self
            .post(
                "/api/v1/passkeys/registration/finish",
                json!({ "ceremony_id": start["ceremony_id"], "name": name, "credential": cred }),
            )
            .await;
        assert_eq!(s, 201, "registration finish: {done}");
    }
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(1)
        .build()
        .unwrap()
}

/// Enrols people, gives each client task its own passkey, then runs the load.
async fn load(base: &str, knobs: &Knobs, client_rt: &tokio::runtime::Runtime) -> Outcome {
    let people = knobs.clients.min(PEOPLE.len());
    let mut users: Vec<(&'static str, SoftPasskey)> = Vec::new();
    for (i, &(cid, given, family, birth, laser)) in PEOPLE.iter().take(people).enumerate() {
        let mut browser = Browser::new(base);
        let body = json!({
            "citizen_id": cid, "thai_given_name": given, "thai_family_name": family,
            "birth_date": birth, "laser_code": laser
        });
        let (s, enrolled) = browser.post("/api/v1/enrolments", body).await;
        assert_eq!(s, 201, "enrolment of person {i}: {enrolled}");
        let grant = enrolled["enrolment_token"].as_str().unwrap().to_owned();
        let mut first = SoftPasskey::new(true);
        browser
            .register(&mut first, Some(&grant), "passkey-0")
            .await;
        // Further passkeys (when there are more client tasks than people) are
        // added from a session opened with the first one.
        let extra = (i + people..knobs.clients).step_by(people).count();
        if extra > 0 {
            let (s, v) = browser_login(&mut browser, cid, &mut first).await;
            assert_eq!(s, 200, "login: {v}");
        }
        users.push((cid, first));
        for n in 0..extra {
            let mut more = SoftPasskey::new(true);
            browser
                .register(&mut more, None, &format!("passkey-{}", n + 1))
                .await;
            users.push((cid, more));
        }
    }
    assert_eq!(users.len(), knobs.clients);

    let started = Instant::now();
    let measure_from = started + knobs.warmup;
    let measure_until = measure_from + knobs.measure;
    let cpu_before = Arc::new(tokio::sync::Mutex::new(None));
    let mut tasks = Vec::new();
    for (k, (cid, mut authn)) in users.into_iter().enumerate() {
        let base = base.to_owned();
        let cpu_before = cpu_before.clone();
        tasks.push(client_rt.spawn(async move {
            let http = http_client();
            let mut s = Samples::default();
            loop {
                let now = Instant::now();
                if now >= measure_until {
                    break;
                }
                if k == 0 && now >= measure_from {
                    let mut g = cpu_before.lock().await;
                    if g.is_none() {
                        *g = Some((Instant::now(), CpuSnapshot::take()));
                    }
                }
                let counted = now >= measure_from;
                let t0 = Instant::now();
                match timed_login(&http, &base, cid, &mut authn).await {
                    Ok(sign) => {
                        let done = Instant::now();
                        if counted && done <= measure_until {
                            s.login_us.push(micros(done - t0));
                            s.sign_us.push(micros(sign));
                        }
                    }
                    Err(e) => {
                        if counted {
                            *s.errors.entry(e).or_default() += 1;
                        }
                    }
                }
            }
            s
        }));
    }
    let mut all = Samples::default();
    for t in tasks {
        all.merge(t.await.unwrap());
    }
    let after = CpuSnapshot::take();
    let ended = Instant::now();
    let (t_before, before) = cpu_before
        .lock()
        .await
        .take()
        .unwrap_or((measure_from, CpuSnapshot::take()));
    Outcome {
        samples: all,
        window: knobs.measure,
        clients: knobs.clients,
        cpu: after.since(&before),
        cpu_wall: ended - t_before,
    }
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

async fn browser_login(b: &mut Browser, cid: &str, authn: &mut SoftPasskey) -> (u16, Value) {
    let (s, start) = b
        .post("/api/v1/login/start", json!({ "citizen_id": cid }))
        .await;
    assert_eq!(s, 200, "login start: {start}");
    let rcr: RequestChallengeResponse =
        serde_json::from_value(json!({ "publicKey": start["public_key"] })).unwrap();
    let cred = authn
        .do_authentication(Url::parse(ORIGIN).unwrap(), rcr)
        .unwrap();
    let (s, v) = b
        .post(
            "/api/v1/login/finish",
            json!({ "ceremony_id": start["ceremony_id"], "credential": cred }),
        )
        .await;
    if s == 200 {
        b.csrf = v["csrf_token"].as_str().map(str::to_owned);
    }
    (s, v)
}

/// One full login; returns the time spent in the authenticator.
async fn timed_login(
    http: &reqwest::Client,
    base: &str,
    cid: &str,
    authn: &mut SoftPasskey,
) -> Result<Duration, String> {
    let resp = http
        .post(format!("{base}/api/v1/login/start"))
        .json(&json!({ "citizen_id": cid }))
        .send()
        .await
        .map_err(|e| format!("start: {}", kind(&e)))?;
    if !resp.status().is_success() {
        return Err(format!("start: HTTP {}", resp.status().as_u16()));
    }
    let start: Value = resp
        .json()
        .await
        .map_err(|e| format!("start body: {}", kind(&e)))?;
    let rcr: RequestChallengeResponse =
        serde_json::from_value(json!({ "publicKey": start["public_key"] }))
            .map_err(|_| "start: not a challenge".to_owned())?;
    let t = Instant::now();
    let cred = authn
        .do_authentication(Url::parse(ORIGIN).unwrap(), rcr)
        .map_err(|e| format!("authenticator: {e:?}"))?;
    let sign = t.elapsed();
    let resp = http
        .post(format!("{base}/api/v1/login/finish"))
        .json(&json!({ "ceremony_id": start["ceremony_id"], "credential": cred }))
        .send()
        .await
        .map_err(|e| format!("finish: {}", kind(&e)))?;
    let status = resp.status().as_u16();
    if status != 200 {
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        return Err(format!("finish: HTTP {status} {}", body["code"]));
    }
    // Read the body: a login is done when the client has the CSRF token.
    let body: Value = resp
        .json()
        .await
        .map_err(|e| format!("finish body: {}", kind(&e)))?;
    if body["csrf_token"].is_string() {
        Ok(sign)
    } else {
        Err("finish: no csrf_token".to_owned())
    }
}

fn kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "transport"
    }
}

#[derive(Default)]
struct Samples {
    login_us: Vec<u32>,
    sign_us: Vec<u32>,
    errors: HashMap<String, u64>,
}

impl Samples {
    fn merge(&mut self, o: Samples) {
        self.login_us.extend(o.login_us);
        self.sign_us.extend(o.sign_us);
        for (k, v) in o.errors {
            *self.errors.entry(k).or_default() += v;
        }
    }
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    f64::from(sorted[i.min(sorted.len() - 1)]) / 1000.0
}

struct Outcome {
    samples: Samples,
    window: Duration,
    clients: usize,
    cpu: CpuUse,
    cpu_wall: Duration,
}

impl Outcome {
    fn print(mut self) {
        let n = self.samples.login_us.len();
        self.samples.login_us.sort_unstable();
        self.samples.sign_us.sort_unstable();
        let l = &self.samples.login_us;
        let sg = &self.samples.sign_us;
        let secs = self.window.as_secs_f64();
        let rate = n as f64 / secs;
        println!(
            "logins completed: {n} in {secs:.1} s by {} client tasks",
            self.clients
        );
        let errors: u64 = self.samples.errors.values().sum();
        println!("failed logins: {errors}");
        for (k, v) in &self.samples.errors {
            println!("  {v} x {k}");
        }
        println!("logins/s: {rate:.0}");
        println!(
            "login latency (start + sign + finish), ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
            pct(l, 50.0),
            pct(l, 90.0),
            pct(l, 99.0),
            pct(l, 100.0)
        );
        let sign_total: f64 = sg.iter().map(|&u| f64::from(u)).sum::<f64>() / 1e6;
        println!(
            "  of which soft-authenticator signing, ms: p50 {:.2}  p99 {:.2}; total {sign_total:.2} s",
            pct(sg, 50.0),
            pct(sg, 99.0)
        );
        let w = self.cpu_wall.as_secs_f64();
        let c = &self.cpu;
        println!(
            "CPU over {w:.1} s (machine: {} cores busy {:.2} on average):",
            machine_cores(),
            c.machine_busy_s / w
        );
        println!(
            "  server threads {:.2} s ({:.0}% of one core), client threads {:.2} s ({:.0}%), rest of the machine {:.2} s ({:.0}%)",
            c.server_s,
            100.0 * c.server_s / w,
            c.client_s,
            100.0 * c.client_s / w,
            (c.machine_busy_s - c.server_s - c.client_s).max(0.0),
            100.0 * (c.machine_busy_s - c.server_s - c.client_s).max(0.0) / w
        );
        if n > 0 && c.server_s > 0.0 {
            // Logins counted over the CPU window (slightly longer than the measured one).
            let per_login_us = c.server_s * 1e6 / (rate * w);
            println!(
                "  server CPU per login: {per_login_us:.0} us, i.e. {:.0} logins/s per server core (in this process; a database server's own CPU is under 'rest')",
                1e6 / per_login_us
            );
            if c.sqlite_s > 0.0 {
                let sqlite_us = c.sqlite_s * 1e6 / (rate * w);
                println!(
                    "    of which SQLite's connection threads {sqlite_us:.0} us, request handling {:.0} us",
                    per_login_us - sqlite_us
                );
            }
        }
    }
}

/// CPU seconds used by this process's server and client threads, and the machine.
#[derive(Clone, Default)]
struct CpuSnapshot {
    threads: HashMap<u32, (Side, f64)>,
    machine_busy_s: f64,
}

/// Whose work a thread does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    /// The load generator.
    Client,
    /// SQLite's connection threads (sqlx runs each connection on a thread of
    /// its own): the embedded database's work, and the hand-offs to it.
    Sqlite,
    /// Tuaton's own request handling.
    Server,
}

struct CpuUse {
    /// Tuaton's process, SQLite's threads included.
    server_s: f64,
    /// Of `server_s`, SQLite's connection threads.
    sqlite_s: f64,
    client_s: f64,
    machine_busy_s: f64,
}

/// How sqlx names SQLite's connection threads (truncated to 15 bytes by the kernel).
const SQLITE_THREAD: &str = "sqlx-sqlite-wor";

const TICKS_PER_S: f64 = 100.0; // USER_HZ on Linux

impl CpuSnapshot {
    fn take() -> Self {
        let mut threads = HashMap::new();
        if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
            for e in dir.flatten() {
                let Some(tid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                    continue;
                };
                let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                    continue;
                };
                let Some(open) = stat.find('(') else { continue };
                let Some(close) = stat.rfind(')') else {
                    continue;
                };
                let name = &stat[open + 1..close];
                let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
                let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
                // Fields 14 and 15 (utime, stime); f[0] is field 3.
                let s = (ticks(11) + ticks(12)) / TICKS_PER_S;
                let side = if name.starts_with(CLIENT_THREAD) {
                    Side::Client
                } else if name.starts_with(SQLITE_THREAD) {
                    Side::Sqlite
                } else {
                    Side::Server
                };
                threads.insert(tid, (side, s));
            }
        }
        let machine_busy_s = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| {
                let line = s.lines().next()?.to_owned();
                let v: Vec<f64> = line
                    .split_whitespace()
                    .skip(1)
                    .filter_map(|x| x.parse().ok())
                    .collect();
                // user nice system idle iowait irq softirq steal
                let busy = v
                    .iter()
                    .take(8)
                    .enumerate()
                    .filter(|(i, _)| *i != 3 && *i != 4)
                    .map(|(_, x)| x)
                    .sum::<f64>();
                Some(busy / TICKS_PER_S)
            })
            .unwrap_or(0.0);
        Self {
            threads,
            machine_busy_s,
        }
    }

    fn since(&self, before: &CpuSnapshot) -> CpuUse {
        let (mut server_s, mut sqlite_s, mut client_s) = (0.0, 0.0, 0.0);
        for (tid, (side, s)) in &self.threads {
            let prior = before.threads.get(tid).map_or(0.0, |p| p.1);
            let d = (s - prior).max(0.0);
            match side {
                Side::Client => client_s += d,
                Side::Sqlite => {
                    sqlite_s += d;
                    server_s += d;
                }
                Side::Server => server_s += d,
            }
        }
        CpuUse {
            server_s,
            sqlite_s,
            client_s,
            machine_busy_s: self.machine_busy_s - before.machine_busy_s,
        }
    }
}
