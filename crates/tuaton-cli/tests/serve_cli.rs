//! `tuaton serve` as operators run it: `/metrics` on a listener of its own.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_be_served_on_their_own_listener_only() {
    let s = Setup::new();
    let metrics_at = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let served = Served::start(&s, &[("TUATON_METRICS_LISTEN", &metrics_at)]);
    assert!(
        within(std::time::Duration::from_secs(20), || async {
            served.get("/healthz").await.is_some()
        })
        .await,
        "the service did not start"
    );
    let main = served.get("/metrics").await.unwrap();
    assert_eq!(
        main.status(),
        404,
        "the main listener no longer serves /metrics"
    );
    let own = reqwest::get(format!("http://{metrics_at}/metrics"))
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
    let text = own.text().await.unwrap();
    assert!(text.contains("tuaton_"), "{text}");
    let other = reqwest::get(format!("http://{metrics_at}/healthz"))
        .await
        .unwrap();
    assert_eq!(
        other.status(),
        404,
        "the metrics listener serves /metrics alone"
    );
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_key_given_in_the_environment_leaves_it() {
    let dir = tempfile::tempdir().unwrap();
    tuaton_keys::MasterKey::create_file(&dir.path().join("k")).unwrap();
    let hex = std::fs::read_to_string(dir.path().join("k"))
        .unwrap()
        .trim()
        .to_owned();
    let listen = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tuaton"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TUATON_DATA_DIR", dir.path().join("data"))
        .env("TUATON_LISTEN", &listen)
        .env("TUATON_MASTER_KEY", &hex)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ready = within(std::time::Duration::from_secs(20), || async {
        reqwest::get(format!("http://{listen}/readyz"))
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    // The same process (re-executed in place), its key backend open, and
    // the key nowhere in its environment.
    let environ = std::fs::read(format!("/proc/{}/environ", child.id())).unwrap();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    assert!(
        ready,
        "the service did not become ready with the key handed over"
    );
    let environ = String::from_utf8_lossy(&environ);
    assert!(
        !environ.contains(&hex),
        "the master key is still in the environment"
    );
    assert!(!environ.contains("TUATON_MASTER_KEY="), "{environ}");
    assert!(
        environ.contains("TUATON_SECRET_ON_STDIN=TUATON_MASTER_KEY"),
        "{environ}"
    );
}

/// Handing a secret over keeps the settings' rules: a key in the
/// environment beside a key file is still "set only one".
#[test]
fn a_handed_over_key_is_still_refused_beside_a_key_file() {
    let s = Setup::new();
    let o = s.run(
        &["keys", "list"],
        &[(
            "TUATON_MASTER_KEY",
            "0000000000000000000000000000000000000000000000000000000000000001",
        )],
    );
    assert_eq!(o.status.code(), Some(64), "{}", text(&o));
    assert!(text(&o).contains("set only one"), "{}", text(&o));
    assert!(!text(&o).contains("0000000000000000000000000000000000000000000000000000000000000001"));
}
