//! An HTTP connector for a card-status service in the shape of DOPA's
//! `CheckCardByLaser` (SOAP 1.2).
//!
//! Failure handling, in order:
//! 1. the circuit breaker refuses at once when the registry has been failing;
//! 2. each attempt has a connect timeout and a whole-request timeout;
//! 3. transport errors, timeouts and HTTP 5xx are retried a bounded number of
//!    times with exponential backoff (the query only reads, so repeating it is
//!    safe); anything else is not retried;
//! 4. whatever is not a well-formed answer with a known code is
//!    [`CardStatus::Unavailable`] — never `Valid`.
//!
//! Logs carry the connector name, the answer's code and label, the number of
//! attempts and the time taken. Never the query.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tuaton_core::Clock;
use url::Url;

use crate::breaker::{BreakerConfig, CircuitBreaker};
use crate::card_status::{
    CardStatus, CardStatusAnswer, CardStatusQuery, CardStatusRegistry, RegistryRawAnswer,
    UnavailableReason, interpret_dopa,
};
use crate::soap::{self, SoapError};

/// Upper bound on configured retries, whatever the configuration says.
pub const MAX_RETRIES_CAP: u32 = 5;

/// Settings for [`SoapCardStatusRegistry`]. Every default has a reason, given
/// on the field.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SoapRegistryConfig {
    /// The service endpoint (the `.asmx` URL or equivalent).
    pub endpoint: Url,
    /// The service's XML namespace, from its WSDL. Default `http://tempuri.org/`.
    pub service_namespace: String,
    /// Name in logs and audit records. Default `dopa-soap`.
    pub name: String,
    /// Time to establish a connection. Default 3 s: a healthy service on a
    /// government network connects in milliseconds; longer means it is down.
    pub connect_timeout: Duration,
    /// Time for one whole attempt. Default 10 s: the answer is tiny, and a
    /// citizen is waiting on the page.
    pub request_timeout: Duration,
    /// Extra attempts after a transport error, timeout or 5xx (capped at
    /// [`MAX_RETRIES_CAP`]). Default 2: rides out a blip without tripling the
    /// worst-case wait more than once.
    pub max_retries: u32,
    /// Wait before the first retry, doubled for each further one. Default 200 ms.
    pub retry_backoff: Duration,
    /// Longest wait between retries. Default 2 s.
    pub max_backoff: Duration,
    /// Circuit-breaker settings.
    pub breaker: BreakerConfig,
    /// Allow plain `http://` to a host other than loopback. Off by default:
    /// the query is personal data and must travel over TLS. Loopback `http`
    /// (the local stand-in) is always allowed.
    pub insecure_allow_plain_http: bool,
}

impl SoapRegistryConfig {
    /// Defaults for `endpoint`.
    pub fn new(endpoint: Url) -> Self {
        Self {
            endpoint,
            service_namespace: soap::DEFAULT_SERVICE_NS.to_owned(),
            name: "dopa-soap".to_owned(),
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(10),
            max_retries: 2,
            retry_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(2),
            breaker: BreakerConfig::default(),
            insecure_allow_plain_http: false,
        }
    }

    fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry);
        self.retry_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// Why a connector could not be built. The fault is the operator's configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorConfigError {
    /// The URL scheme is not `https` (or loopback `http`).
    #[error(
        "registry endpoint must use https (plain http only to loopback, or with insecure_allow_plain_http)"
    )]
    InsecureScheme,
    /// The URL has no host.
    #[error("registry endpoint has no host")]
    NoHost,
    /// The HTTP client could not be built.
    #[error("cannot build HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// The SOAP card-status connector. Holds one HTTP client (connection pool)
/// and one circuit breaker for its lifetime; share it behind an `Arc`.
#[derive(Debug)]
pub struct SoapCardStatusRegistry {
    config: SoapRegistryConfig,
    client: reqwest::Client,
    breaker: CircuitBreaker,
    content_type: String,
}

enum Attempt {
    Answer(RegistryRawAnswer),
    Retryable(UnavailableReason, Option<u16>),
    Final(UnavailableReason, Option<u16>),
}

impl SoapCardStatusRegistry {
    /// Builds the connector and its HTTP client. Redirects are not followed:
    /// a registry has no reason to redirect, and following one could send the
    /// query to another host.
    pub fn new(
        config: SoapRegistryConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ConnectorConfigError> {
        let https = config.endpoint.scheme() == "https";
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .https_only(https)
            .user_agent(concat!("tuaton-proofing/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Self::with_client(client, config, clock)
    }

    /// Uses an existing client (to share one pool across the application). The
    /// client's own connect timeout and redirect policy then apply.
    pub fn with_client(
        client: reqwest::Client,
        mut config: SoapRegistryConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ConnectorConfigError> {
        if config.endpoint.host().is_none() {
            return Err(ConnectorConfigError::NoHost);
        }
        match config.endpoint.scheme() {
            "https" => {}
            "http" if is_loopback(&config.endpoint) || config.insecure_allow_plain_http => {}
            _ => return Err(ConnectorConfigError::InsecureScheme),
        }
        config.max_retries = config.max_retries.min(MAX_RETRIES_CAP);
        let breaker = CircuitBreaker::new(config.breaker, clock);
        let content_type = soap::content_type(&config.service_namespace);
        Ok(Self {
            config,
            client,
            breaker,
            content_type,
        })
    }

    /// The breaker, for health endpoints and metrics.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    async fn attempt(&self, body: &str) -> Attempt {
        let sent = self
            .client
            .post(self.config.endpoint.clone())
            .header(reqwest::header::CONTENT_TYPE, &self.content_type)
            .timeout(self.config.request_timeout)
            .body(body.to_owned())
            .send()
            .await;
        let mut resp = match sent {
            Ok(r) => r,
            Err(e) => return Attempt::Retryable(transport_reason(&e), None),
        };
        let status = resp.status().as_u16();
        if resp.status().is_server_error() {
            return Attempt::Retryable(UnavailableReason::ServerError { status }, Some(status));
        }
        if !resp.status().is_success() {
            return Attempt::Final(UnavailableReason::UnexpectedStatus { status }, Some(status));
        }
        if resp
            .content_length()
            .is_some_and(|n| n > soap::MAX_BODY_BYTES as u64)
        {
            return Attempt::Final(UnavailableReason::MalformedResponse, Some(status));
        }
        let mut bytes = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if bytes.len() + chunk.len() > soap::MAX_BODY_BYTES {
                        return Attempt::Final(UnavailableReason::MalformedResponse, Some(status));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Attempt::Retryable(transport_reason(&e), Some(status)),
            }
        }
        let Ok(text) = String::from_utf8(bytes) else {
            return Attempt::Final(UnavailableReason::MalformedResponse, Some(status));
        };
        match soap::parse_response(&text) {
            Ok(mut raw) => {
                raw.http_status = Some(status);
                Attempt::Answer(raw)
            }
            Err(SoapError::Fault) => Attempt::Final(UnavailableReason::RegistryError, Some(status)),
            Err(_) => Attempt::Final(UnavailableReason::MalformedResponse, Some(status)),
        }
    }
}

fn transport_reason(e: &reqwest::Error) -> UnavailableReason {
    if e.is_timeout() {
        UnavailableReason::Timeout
    } else {
        UnavailableReason::Transport
    }
}

#[async_trait]
impl CardStatusRegistry for SoapCardStatusRegistry {
    fn name(&self) -> &str {
        &self.config.name
    }

    async fn check(&self, q: &CardStatusQuery) -> CardStatusAnswer {
        let started = Instant::now();
        let Some(permit) = self.breaker.admit() else {
            tracing::warn!(connector = %self.config.name, status = "unavailable", reason = "circuit_open", "card-status check refused: breaker open");
            return CardStatusAnswer::unavailable(UnavailableReason::CircuitOpen);
        };
        let body = soap::request_envelope(&self.config.service_namespace, q);
        let mut attempts = 0u32;
        let answer = loop {
            attempts += 1;
            match self.attempt(&body).await {
                Attempt::Answer(raw) => {
                    break CardStatusAnswer {
                        status: interpret_dopa(&raw),
                        raw,
                    };
                }
                Attempt::Retryable(_, _) if attempts <= self.config.max_retries => {
                    tokio::time::sleep(self.config.backoff(attempts - 1)).await;
                }
                Attempt::Retryable(reason, http_status) | Attempt::Final(reason, http_status) => {
                    break CardStatusAnswer {
                        status: CardStatus::Unavailable { reason },
                        raw: RegistryRawAnswer {
                            http_status,
                            ..Default::default()
                        },
                    };
                }
            }
        };
        if answer.status.is_definite() {
            permit.success();
        } else {
            permit.failure();
        }
        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match &answer.status {
            CardStatus::Unavailable { reason } => tracing::warn!(
                connector = %self.config.name,
                status = answer.status.label(),
                %reason,
                code = ?answer.raw.code,
                attempts,
                elapsed_ms,
                "card-status check failed"
            ),
            _ => tracing::info!(
                connector = %self.config.name,
                status = answer.status.label(),
                code = ?answer.raw.code,
                attempts,
                elapsed_ms,
                "card-status check answered"
            ),
        }
        answer
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use tuaton_core::SystemClock;

    fn build(url: &str, insecure: bool) -> Result<SoapCardStatusRegistry, ConnectorConfigError> {
        let mut c = SoapRegistryConfig::new(Url::parse(url).unwrap());
        c.insecure_allow_plain_http = insecure;
        SoapCardStatusRegistry::new(c, Arc::new(SystemClock))
    }

    #[test]
    fn plain_http_only_to_loopback_unless_explicitly_allowed() {
        assert!(build("https://registry.example/CheckCard.asmx", false).is_ok());
        assert!(build("http://127.0.0.1:9/x", false).is_ok());
        assert!(build("http://[::1]:9/x", false).is_ok());
        assert!(build("http://localhost:9/x", false).is_ok());
        assert!(matches!(
            build("http://registry.example/x", false),
            Err(ConnectorConfigError::InsecureScheme)
        ));
        assert!(build("http://registry.example/x", true).is_ok());
        assert!(matches!(
            build("ftp://registry.example/x", true),
            Err(ConnectorConfigError::InsecureScheme)
        ));
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let c = SoapRegistryConfig::new(Url::parse("https://r.example/").unwrap());
        assert_eq!(c.backoff(0), Duration::from_millis(200));
        assert_eq!(c.backoff(1), Duration::from_millis(400));
        assert_eq!(c.backoff(3), Duration::from_millis(1600));
        assert_eq!(c.backoff(4), Duration::from_secs(2));
        assert_eq!(c.backoff(40), Duration::from_secs(2));
    }
}
