//! A circuit breaker for calls to an outside registry.
//!
//! Closed: calls go through; `failure_threshold` failures in a row open it.
//! Open: calls are refused at once (no request leaves) until `cool_down` has
//! passed on the [`Clock`]. Half-open: exactly one trial call goes through;
//! its success closes the breaker, its failure opens it for another cool-down.
//!
//! Why: when the registry is down, piling retries on it delays its recovery
//! and makes every citizen wait for timeouts; refusing fast with "try later" is
//! kinder to both. Time comes from the [`Clock`] so tests move it.

use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use tuaton_core::Clock;

/// Breaker settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerConfig {
    /// Consecutive failed calls that open the breaker (at least 1).
    pub failure_threshold: u32,
    /// How long the breaker stays open before one trial call.
    #[serde(with = "duration_secs")]
    pub cool_down: Duration,
}

impl Default for BreakerConfig {
    /// Five failures in a row, thirty seconds' rest: long enough for a
    /// restarting service, short enough that citizens retrying soon succeed.
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            cool_down: Duration::seconds(30),
        }
    }
}

mod duration_secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_seconds_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        if !(0.0..=86_400.0).contains(&secs) {
            return Err(serde::de::Error::custom(
                "cool_down must be between 0 and 86400 seconds",
            ));
        }
        Ok(Duration::seconds_f64(secs))
    }
}

/// The breaker's state, for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls are refused until the cool-down ends.
    Open,
    /// One trial call is in flight.
    HalfOpen,
}

#[derive(Debug)]
enum Inner {
    Closed { consecutive_failures: u32 },
    Open { until: OffsetDateTime },
    HalfOpen,
}

/// A circuit breaker; see the module documentation.
#[derive(Debug)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    clock: Arc<dyn Clock>,
    inner: Mutex<Inner>,
}

/// Permission for one call. Report how it went with [`Permit::success`] or
/// [`Permit::failure`]; a permit dropped without a report (the call was
/// cancelled) counts as a failure, so a half-open breaker never stays stuck
/// waiting for a trial that will not finish.
#[derive(Debug)]
#[must_use = "report the call's outcome on the permit"]
pub struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    reported: bool,
}

impl Permit<'_> {
    /// The call got a definite answer.
    pub fn success(mut self) {
        self.reported = true;
        self.breaker.on_success();
    }

    /// The call failed (transport error, timeout, 5xx, unreadable answer).
    pub fn failure(mut self) {
        self.reported = true;
        self.breaker.on_failure();
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.reported {
            self.breaker.on_failure();
        }
    }
}

impl CircuitBreaker {
    /// A closed breaker. A threshold of 0 is taken as 1.
    pub fn new(config: BreakerConfig, clock: Arc<dyn Clock>) -> Self {
        let config = BreakerConfig {
            failure_threshold: config.failure_threshold.max(1),
            ..config
        };
        Self {
            config,
            clock,
            inner: Mutex::new(Inner::Closed {
                consecutive_failures: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave Inner half-written.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks to make a call; `None` means refuse it now (breaker open, or a
    /// half-open trial already in flight).
    pub fn admit(&self) -> Option<Permit<'_>> {
        let mut inner = self.lock();
        let allowed = match *inner {
            Inner::Closed { .. } => true,
            Inner::Open { until } if self.clock.now() >= until => {
                *inner = Inner::HalfOpen;
                true
            }
            Inner::Open { .. } | Inner::HalfOpen => false,
        };
        drop(inner);
        // Not `then_some`: it would build (and drop) a permit even when refusing,
        // and a dropped permit records a failure.
        if allowed {
            Some(Permit {
                breaker: self,
                reported: false,
            })
        } else {
            None
        }
    }

    /// The current state (an open breaker whose cool-down has ended still reads
    /// `Open` until the next call is admitted as the trial).
    pub fn state(&self) -> BreakerState {
        match *self.lock() {
            Inner::Closed { .. } => BreakerState::Closed,
            Inner::Open { .. } => BreakerState::Open,
            Inner::HalfOpen => BreakerState::HalfOpen,
        }
    }

    fn on_success(&self) {
        let mut inner = self.lock();
        match *inner {
            Inner::Closed { .. } | Inner::HalfOpen => {
                *inner = Inner::Closed {
                    consecutive_failures: 0,
                }
            }
            // A late success from before the breaker opened does not close it.
            Inner::Open { .. } => {}
        }
    }

    fn on_failure(&self) {
        let mut inner = self.lock();
        let open_until = self.clock.now() + self.config.cool_down;
        match *inner {
            Inner::Closed {
                consecutive_failures,
            } => {
                let n = consecutive_failures.saturating_add(1);
                *inner = if n >= self.config.failure_threshold {
                    Inner::Open { until: open_until }
                } else {
                    Inner::Closed {
                        consecutive_failures: n,
                    }
                };
            }
            Inner::HalfOpen => *inner = Inner::Open { until: open_until },
            Inner::Open { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use time::macros::datetime;
    use tuaton_core::FixedClock;

    fn breaker(threshold: u32) -> (CircuitBreaker, Arc<FixedClock>) {
        let clock = Arc::new(FixedClock::new(datetime!(2026-06-01 09:00 UTC)));
        let b = CircuitBreaker::new(
            BreakerConfig {
                failure_threshold: threshold,
                cool_down: Duration::seconds(30),
            },
            clock.clone(),
        );
        (b, clock)
    }

    #[test]
    fn opens_after_threshold_consecutive_failures_only() {
        let (b, _) = breaker(3);
        b.admit().unwrap().failure();
        b.admit().unwrap().failure();
        b.admit().unwrap().success(); // resets the count
        b.admit().unwrap().failure();
        b.admit().unwrap().failure();
        assert_eq!(b.state(), BreakerState::Closed);
        b.admit().unwrap().failure();
        assert_eq!(b.state(), BreakerState::Open);
        assert!(b.admit().is_none());
    }

    #[test]
    fn half_open_admits_one_trial_then_closes_or_reopens() {
        let (b, clock) = breaker(1);
        b.admit().unwrap().failure();
        clock.advance(Duration::seconds(29));
        assert!(b.admit().is_none(), "still cooling down");
        clock.advance(Duration::seconds(1));
        let trial = b.admit().unwrap();
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(b.admit().is_none(), "only one trial at a time");
        trial.failure();
        assert_eq!(b.state(), BreakerState::Open);
        assert!(b.admit().is_none(), "a failed trial starts a new cool-down");
        clock.advance(Duration::seconds(30));
        b.admit().unwrap().success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.admit().is_some());
    }

    #[test]
    fn a_dropped_trial_counts_as_failure() {
        let (b, clock) = breaker(1);
        b.admit().unwrap().failure();
        clock.advance(Duration::seconds(30));
        drop(b.admit().unwrap());
        assert_eq!(b.state(), BreakerState::Open);
    }
}
