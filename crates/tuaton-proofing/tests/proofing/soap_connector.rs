//! The SOAP connector against the local DOPA stand-in: answers, timeouts,
//! retries and the circuit breaker. Loopback traffic only.

use std::sync::Arc;
use std::time::{Duration, Instant};

use time::macros::datetime;
use tuaton_core::FixedClock;
use tuaton_proofing::breaker::BreakerState;
use tuaton_proofing::standin::{DopaCardStatusStandIn, StandInServer};
use tuaton_proofing::{
    BreakerConfig, CardStatus, CardStatusQuery, CardStatusRegistry, DevRegistry,
    SoapCardStatusRegistry, SoapRegistryConfig, UnavailableReason,
};
use url::Url;

use super::{NATTAWUT_REVOKED, SOMCHAI, SOMYING, evidence_of};

struct Rig {
    standin: DopaCardStatusStandIn,
    _server: StandInServer,
    clock: Arc<FixedClock>,
    connector: SoapCardStatusRegistry,
}

/// A stand-in on a free loopback port and a connector pointed at it: no
/// retries, 2 s request timeout, breaker opening after 3 failures for 30 s.
async fn rig(tune: impl FnOnce(&mut SoapRegistryConfig)) -> Rig {
    let standin = DopaCardStatusStandIn::new(DevRegistry::embedded().unwrap());
    let server = standin.serve_loopback().await.unwrap();
    let clock = Arc::new(FixedClock::new(datetime!(2026-06-01 09:00 UTC)));
    let mut config = SoapRegistryConfig::new(Url::parse(&server.url()).unwrap());
    config.connect_timeout = Duration::from_secs(1);
    config.request_timeout = Duration::from_secs(2);
    config.max_retries = 0;
    config.retry_backoff = Duration::from_millis(10);
    config.max_backoff = Duration::from_millis(50);
    config.breaker = BreakerConfig {
        failure_threshold: 3,
        cool_down: time::Duration::seconds(30),
    };
    tune(&mut config);
    let connector = SoapCardStatusRegistry::new(config, clock.clone()).unwrap();
    Rig {
        standin,
        _server: server,
        clock,
        connector,
    }
}

fn query(pid: &str) -> CardStatusQuery {
    CardStatusQuery::from_evidence(&evidence_of(pid))
}

fn unavailable(status: &CardStatus) -> UnavailableReason {
    match status {
        CardStatus::Unavailable { reason } => reason.clone(),
        other => panic!("expected unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn valid_card_is_valid_over_soap() {
    let r = rig(|_| {}).await;
    let a = r.connector.check(&query(SOMCHAI)).await;
    assert_eq!(a.status, CardStatus::Valid);
    assert_eq!(a.raw.code, Some(0));
    assert_eq!(a.raw.is_error, Some(false));
    assert_eq!(a.raw.http_status, Some(200));
    assert_eq!(r.connector.name(), "dopa-soap");
    assert_eq!(r.standin.requests(), 1);
}

#[tokio::test]
async fn unknown_pid_and_revoked_card_are_not_found() {
    let r = rig(|_| {}).await;
    let mut unknown = query(SOMCHAI);
    unknown.pid = "3100600445635".into();
    let a = r.connector.check(&unknown).await;
    assert_eq!(a.status, CardStatus::NotFound);
    assert_eq!(a.raw.code, Some(4));
    assert_eq!(
        r.connector.check(&query(NATTAWUT_REVOKED)).await.status,
        CardStatus::NotFound
    );
}

#[tokio::test]
async fn a_differing_field_is_a_mismatch() {
    let r = rig(|_| {}).await;
    let mut q = query(SOMYING);
    q.laser = "ME1023456702".into();
    let a = r.connector.check(&q).await;
    assert_eq!(a.status, CardStatus::Mismatch);
    assert_eq!(a.raw.code, Some(4));
    let mut q = query(SOMYING);
    q.last_name = "รักชาติ".into();
    assert_eq!(r.connector.check(&q).await.status, CardStatus::Mismatch);
}

#[tokio::test]
async fn an_empty_field_is_incomplete() {
    let r = rig(|_| {}).await;
    let mut q = query(SOMCHAI);
    q.birth_day = String::new();
    let a = r.connector.check(&q).await;
    assert_eq!(a.status, CardStatus::Incomplete);
    assert_eq!(a.raw.code, Some(5));
}

#[tokio::test]
async fn xml_special_characters_in_input_are_escaped_not_injected() {
    let r = rig(|_| {}).await;
    let mut q = query(SOMCHAI);
    // An attempt to close the element and inject a second Laser field.
    q.first_name = "สมชาย</FirstName><Laser>JT0123456789</Laser><FirstName>".into();
    assert_eq!(r.connector.check(&q).await.status, CardStatus::Mismatch);
}

#[tokio::test]
async fn registry_service_error_is_unavailable_and_kept_for_audit() {
    let r = rig(|_| {}).await;
    r.standin.update_knobs(|k| k.service_error = true);
    let a = r.connector.check(&query(SOMCHAI)).await;
    assert_eq!(unavailable(&a.status), UnavailableReason::RegistryError);
    assert_eq!(a.raw.is_error, Some(true));
    assert!(a.raw.error_message.unwrap().contains("injected"));
}

#[tokio::test]
async fn garbage_is_unavailable_never_valid_and_not_retried() {
    let r = rig(|c| c.max_retries = 2).await;
    r.standin.update_knobs(|k| k.garbage = true);
    let a = r.connector.check(&query(SOMCHAI)).await;
    assert_eq!(unavailable(&a.status), UnavailableReason::MalformedResponse);
    assert_eq!(
        r.standin.requests(),
        1,
        "a malformed answer is not a transport error"
    );
}

#[tokio::test]
async fn server_error_without_retries_is_unavailable() {
    let r = rig(|_| {}).await;
    r.standin.update_knobs(|k| k.fail_always = true);
    let a = r.connector.check(&query(SOMCHAI)).await;
    assert_eq!(
        unavailable(&a.status),
        UnavailableReason::ServerError { status: 500 }
    );
    assert_eq!(a.raw.http_status, Some(500));
}

#[tokio::test]
async fn slow_registry_times_out_as_unavailable() {
    let r = rig(|c| c.request_timeout = Duration::from_millis(300)).await;
    r.standin
        .update_knobs(|k| k.delay = Duration::from_millis(1500));
    let started = Instant::now();
    let a = r.connector.check(&query(SOMCHAI)).await;
    assert_eq!(unavailable(&a.status), UnavailableReason::Timeout);
    assert!(
        started.elapsed() < Duration::from_millis(1200),
        "gave up after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn unreachable_registry_is_unavailable() {
    // A port that was free a moment ago and has nobody listening now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let clock = Arc::new(FixedClock::new(datetime!(2026-06-01 09:00 UTC)));
    let mut config =
        SoapRegistryConfig::new(Url::parse(&format!("http://127.0.0.1:{port}/x")).unwrap());
    config.max_retries = 1;
    config.retry_backoff = Duration::from_millis(10);
    let connector = SoapCardStatusRegistry::new(config, clock).unwrap();
    let a = connector.check(&query(SOMCHAI)).await;
    assert_eq!(unavailable(&a.status), UnavailableReason::Transport);
}

#[tokio::test]
async fn one_failure_then_success_is_retried_to_valid() {
    let r = rig(|c| c.max_retries = 2).await;
    r.standin.update_knobs(|k| k.fail_next = 1);
    let a = r.connector.check(&query(SOMCHAI)).await;
    assert_eq!(a.status, CardStatus::Valid);
    assert_eq!(r.standin.requests(), 2);
    assert_eq!(r.connector.breaker().state(), BreakerState::Closed);
}

#[tokio::test]
async fn retries_are_bounded() {
    let r = rig(|c| c.max_retries = 2).await;
    r.standin.update_knobs(|k| k.fail_always = true);
    let a = r.connector.check(&query(SOMCHAI)).await;
    assert_eq!(
        unavailable(&a.status),
        UnavailableReason::ServerError { status: 500 }
    );
    assert_eq!(r.standin.requests(), 3, "one attempt and two retries");
}

#[tokio::test]
async fn breaker_opens_after_threshold_and_stops_sending() {
    let r = rig(|_| {}).await;
    r.standin.update_knobs(|k| k.fail_always = true);
    for _ in 0..3 {
        let a = r.connector.check(&query(SOMCHAI)).await;
        assert_eq!(
            unavailable(&a.status),
            UnavailableReason::ServerError { status: 500 }
        );
    }
    assert_eq!(r.standin.requests(), 3);
    assert_eq!(r.connector.breaker().state(), BreakerState::Open);
    for _ in 0..5 {
        let a = r.connector.check(&query(SOMCHAI)).await;
        assert_eq!(unavailable(&a.status), UnavailableReason::CircuitOpen);
    }
    assert_eq!(r.standin.requests(), 3, "an open breaker sends nothing");
    // Even a healthy registry is not asked until the cool-down ends.
    r.standin.update_knobs(|k| k.fail_always = false);
    r.clock.advance(time::Duration::seconds(29));
    assert_eq!(
        unavailable(&r.connector.check(&query(SOMCHAI)).await.status),
        UnavailableReason::CircuitOpen
    );
    assert_eq!(r.standin.requests(), 3);
}

#[tokio::test]
async fn breaker_half_opens_after_cool_down_and_closes_on_success() {
    let r = rig(|_| {}).await;
    r.standin.update_knobs(|k| k.fail_always = true);
    for _ in 0..3 {
        r.connector.check(&query(SOMCHAI)).await;
    }
    assert_eq!(r.connector.breaker().state(), BreakerState::Open);
    r.standin.update_knobs(|k| k.fail_always = false);
    r.clock.advance(time::Duration::seconds(30));
    let a = r.connector.check(&query(SOMCHAI)).await;
    assert_eq!(a.status, CardStatus::Valid, "the trial call goes through");
    assert_eq!(r.standin.requests(), 4);
    assert_eq!(r.connector.breaker().state(), BreakerState::Closed);
    assert_eq!(
        r.connector.check(&query(SOMYING)).await.status,
        CardStatus::Valid
    );
    assert_eq!(r.standin.requests(), 5);
}

#[tokio::test]
async fn failed_trial_reopens_the_breaker() {
    let r = rig(|_| {}).await;
    r.standin.update_knobs(|k| k.fail_always = true);
    for _ in 0..3 {
        r.connector.check(&query(SOMCHAI)).await;
    }
    r.clock.advance(time::Duration::seconds(30));
    let a = r.connector.check(&query(SOMCHAI)).await;
    assert_eq!(
        unavailable(&a.status),
        UnavailableReason::ServerError { status: 500 }
    );
    assert_eq!(r.standin.requests(), 4, "exactly one trial request");
    assert_eq!(r.connector.breaker().state(), BreakerState::Open);
    assert_eq!(
        unavailable(&r.connector.check(&query(SOMCHAI)).await.status),
        UnavailableReason::CircuitOpen
    );
    assert_eq!(r.standin.requests(), 4);
}

#[tokio::test]
async fn definite_refusals_do_not_trip_the_breaker() {
    let r = rig(|c| c.breaker.failure_threshold = 2).await;
    let mut q = query(SOMCHAI);
    q.laser = "JT0123456780".into();
    for _ in 0..4 {
        assert_eq!(r.connector.check(&q).await.status, CardStatus::Mismatch);
    }
    assert_eq!(r.connector.breaker().state(), BreakerState::Closed);
    assert_eq!(r.standin.requests(), 4);
}
