//! Handing composed messages over: the [`Mailer`] abstraction, the SMTP
//! relay behind it, and the development outbox.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use zeroize::Zeroizing;

use super::relay::{MailConfigError, SmtpRelay, SmtpSecurity, read_password};
use crate::Settings;

/// The longest one SMTP command may take (lettre's own timeout, inside [`SEND_TIMEOUT`](super::SEND_TIMEOUT)).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

/// Why one message was not handed over. [`SendError::reason`] is what is
/// stored and logged: it never holds an address or the relay's free text
/// (which often quotes the address).
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The relay could not be reached or broke the connection. Environment; retried.
    #[error("relay unreachable")]
    Unreachable,
    /// The relay did not answer in time. Environment; retried.
    #[error("relay timed out")]
    TimedOut,
    /// TLS with the relay failed (no STARTTLS offered, or a certificate that does not verify).
    #[error("TLS with the relay failed")]
    Tls,
    /// The relay answered with an SMTP error code (4xx transient, 5xx permanent).
    #[error("relay refused: {code}")]
    Refused {
        /// The three-digit reply code.
        code: String,
    },
    /// The relay answered something that is not SMTP as expected.
    #[error("relay answered unexpectedly")]
    Protocol,
    /// The development outbox could not be written.
    #[error("outbox not writable: {0}")]
    Outbox(std::io::ErrorKind),
}

impl SendError {
    /// The short, non-personal cause stored with the notice.
    pub fn reason(&self) -> String {
        self.to_string()
    }

    /// Whether the relay itself is down, so the rest of a batch would fail the
    /// same way and is better given back untried.
    pub fn relay_down(&self) -> bool {
        matches!(
            self,
            SendError::Unreachable | SendError::TimedOut | SendError::Tls | SendError::Outbox(_)
        )
    }
}

impl From<lettre::transport::smtp::Error> for SendError {
    fn from(e: lettre::transport::smtp::Error) -> Self {
        // Only the kind and code are kept: the error's text may quote the address.
        if let Some(code) = e.status() {
            SendError::Refused {
                code: code.to_string(),
            }
        } else if e.is_timeout() {
            SendError::TimedOut
        } else if e.is_tls() {
            SendError::Tls
        } else if e.is_response() || e.is_client() {
            SendError::Protocol
        } else {
            SendError::Unreachable
        }
    }
}

/// A composed notice on its way out.
#[derive(Debug, Clone)]
pub struct OutgoingMail {
    /// The notice's id (names the outbox file; never personal).
    pub notice_id: String,
    /// The message, envelope included.
    pub message: Message,
}

/// Something that hands messages over for delivery.
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Hands `mail` over; `Ok` once the relay (or outbox) has taken it.
    async fn send(&self, mail: &OutgoingMail) -> Result<(), SendError>;
}

/// Sends through an SMTP relay.
pub struct SmtpMailer {
    relay: SmtpRelay,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The transport holds the credentials: never printed.
        f.debug_struct("SmtpMailer")
            .field("relay", &self.relay)
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// A mailer for `relay`, greeting it as `hello_name`, logging in when
    /// `credentials` (user name, password) are given.
    pub fn new(
        relay: &SmtpRelay,
        hello_name: &str,
        credentials: Option<(String, Zeroizing<String>)>,
    ) -> Result<Self, MailConfigError> {
        let tls = |host: &str| {
            TlsParameters::new(host.to_owned()).map_err(|_| MailConfigError::Tls {
                host: host.to_owned(),
            })
        };
        let tls = match relay.security() {
            SmtpSecurity::StartTls => Tls::Required(tls(relay.host())?),
            SmtpSecurity::ImplicitTls => Tls::Wrapper(tls(relay.host())?),
            SmtpSecurity::PlainLoopback => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(relay.host())
            .port(relay.port())
            .tls(tls)
            .timeout(Some(COMMAND_TIMEOUT))
            .hello_name(client_id(hello_name));
        if let Some((user, password)) = credentials {
            // lettre keeps its own plain copy for the life of the transport;
            // ours is wiped when this returns.
            builder = builder.credentials(Credentials::new(user, password.as_str().to_owned()));
        }
        Ok(Self {
            relay: relay.clone(),
            transport: builder.build(),
        })
    }
}

/// The EHLO name: an address literal when the public host is an IP address
/// (RFC 5321 §4.1.4), the host name otherwise.
fn client_id(host: &str) -> ClientId {
    match host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        Ok(IpAddr::V4(a)) => ClientId::Ipv4(a),
        Ok(IpAddr::V6(a)) => ClientId::Ipv6(a),
        Err(_) => ClientId::Domain(host.to_owned()),
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), SendError> {
        self.transport.send(mail.message.clone()).await?;
        Ok(())
    }
}

/// Development mode without a relay: each message becomes an `.eml` file, so
/// a developer can read exactly what a person would receive.
#[derive(Debug, Clone)]
pub struct OutboxMailer {
    dir: PathBuf,
}

impl OutboxMailer {
    /// Writes into `dir` (created when the first message arrives).
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }
}

#[async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), SendError> {
        let dir = self.dir.clone();
        let name = format!("{}.eml", mail.notice_id);
        let bytes = mail.message.formatted();
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            // Written aside and renamed, so a reader never sees half a message.
            let tmp = dir.join(format!(".{name}.tmp"));
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, dir.join(name))
        })
        .await
        .map_err(|_| SendError::Outbox(std::io::ErrorKind::Other))?
        .map_err(|e| SendError::Outbox(e.kind()))
    }
}

/// The mailer the settings describe: the SMTP relay when `TUATON_SMTP_URL` is
/// set; in development mode without one, the outbox in `DATA_DIR/outbox`;
/// otherwise none, and notices wait in the queue.
pub fn mailer_from_settings(
    settings: &Settings,
) -> Result<Option<Arc<dyn Mailer>>, MailConfigError> {
    let Some(relay) = &settings.smtp_url else {
        return Ok(settings.dev.then(|| {
            Arc::new(OutboxMailer::new(settings.data_dir.join("outbox"))) as Arc<dyn Mailer>
        }));
    };
    let credentials = match (&settings.smtp_username, &settings.smtp_password_file) {
        (Some(user), Some(path)) => Some((user.clone(), read_password(path)?)),
        _ => None,
    };
    let hello = settings.public_url.host_str().unwrap_or("localhost");
    Ok(Some(Arc::new(SmtpMailer::new(relay, hello, credentials)?)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn failure_reasons_carry_codes_never_text() {
        assert_eq!(
            SendError::Refused { code: "550".into() }.reason(),
            "relay refused: 550"
        );
        assert!(SendError::Unreachable.relay_down());
        assert!(!SendError::Refused { code: "451".into() }.relay_down());
    }
}
