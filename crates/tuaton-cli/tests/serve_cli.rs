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
