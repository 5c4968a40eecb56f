//! Serving over real sockets: graceful shutdown (a request in flight when
//! shutdown begins still gets its answer), the header-read timeout and the
//! connection cap against slow clients.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serves `app` on a free loopback port until the returned sender fires.
async fn start(
    app: Router,
    grace: Duration,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let roomy = tuaton_server::ConnectionLimits {
        max_connections: 64,
        header_read_timeout: Duration::from_secs(10),
    };
    start_with(app, grace, roomy).await
}

async fn start_with(
    app: Router,
    grace: Duration,
    limits: tuaton_server::ConnectionLimits,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let stop = async move {
        let _ = stop_rx.await;
    };
    (
        addr,
        stop_tx,
        tokio::spawn(tuaton_server::serve(listener, app, stop, grace, limits)),
    )
}

#[tokio::test]
async fn in_flight_requests_finish_after_shutdown_begins() {
    let app = Router::new().route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_millis(600)).await;
            "finished"
        }),
    );
    let (addr, stop_tx, server) = start(app, Duration::from_secs(5)).await;

    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop_tx.send(()).unwrap();

    let mut resp = String::new();
    tokio::time::timeout(Duration::from_secs(5), conn.read_to_string(&mut resp))
        .await
        .unwrap()
        .unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.ends_with("finished"), "{resp}");

    // New connections are refused once the server has stopped.
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn the_grace_period_bounds_a_request_that_never_ends() {
    // The hanging handler holds a guard; it is dropped only when its task is
    // aborted, so nothing of the request runs on after `serve` returns.
    let (alive_tx, mut alive_rx) = tokio::sync::mpsc::channel::<()>(1);
    let app = Router::new().route(
        "/hang",
        get(move || {
            let alive = alive_tx.clone();
            async move {
                let _held = alive;
                std::future::pending::<&'static str>().await
            }
        }),
    );
    let (addr, stop_tx, server) = start(app, Duration::from_millis(300)).await;
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(3), server)
        .await
        .expect("server stops after the grace period")
        .unwrap()
        .unwrap();
    assert!(
        tokio::time::timeout(Duration::from_secs(1), alive_rx.recv())
            .await
            .expect("the cut-off request's task was ended")
            .is_none()
    );
}

/// Sends a whole request on a new connection and reads the answer's status line.
async fn status_of(addr: std::net::SocketAddr) -> String {
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut resp = String::new();
    conn.read_to_string(&mut resp).await.unwrap();
    resp.lines().next().unwrap_or_default().to_owned()
}

/// A client that opens a connection and sends half a request head, then nothing.
async fn slow_client(addr: std::net::SocketAddr) -> tokio::net::TcpStream {
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    conn
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let app = Router::new().route("/ok", get(|| async { "ok" }));
    let limits = tuaton_server::ConnectionLimits {
        max_connections: 8,
        header_read_timeout: Duration::from_secs(1),
    };
    let (addr, stop_tx, _server) = start_with(app, Duration::from_secs(1), limits).await;
    let mut slow = slow_client(addr).await;
    // The server closes the connection (an answer then end of stream, or just
    // the end) once the timeout passes; a server without one waits forever.
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the half-sent request is still held open");
    // A client that sends its request in time is served.
    assert_eq!(status_of(addr).await, "HTTP/1.1 200 OK");
    // One that connects and sends nothing, or stays after its answer
    // without a next request, is cut off too.
    for kind in ["silent", "idle after a response"] {
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        if kind != "silent" {
            conn.write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .unwrap();
        }
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut buf)).await;
        assert!(read.is_ok(), "a {kind} connection is still held open");
    }
    let _ = stop_tx.send(());
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_until_one_closes() {
    let app = Router::new().route("/ok", get(|| async { "ok" }));
    let limits = tuaton_server::ConnectionLimits {
        max_connections: 2,
        header_read_timeout: Duration::from_secs(60),
    };
    let (addr, stop_tx, _server) = start_with(app, Duration::from_secs(1), limits).await;
    let first = slow_client(addr).await;
    let second = slow_client(addr).await;
    // Both places are taken: a third client is not served while they are held.
    let third = tokio::spawn(status_of(addr));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !third.is_finished(),
        "a third connection was served beyond the cap"
    );
    drop(first);
    let status = tokio::time::timeout(Duration::from_secs(10), third)
        .await
        .expect("served once a place was free")
        .unwrap();
    assert_eq!(status, "HTTP/1.1 200 OK");
    drop(second);
    let _ = stop_tx.send(());
}
