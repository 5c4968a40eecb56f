//! Delivering queued notices by e-mail.
//!
//! Scope: the text of each notice kind (Thai, then English) in
//! [`notice_text`]; composing it as an RFC 5322 message; the [`Mailer`]
//! abstraction with an SMTP relay (lettre over rustls: STARTTLS required,
//! implicit TLS, or plain on loopback only) and a development outbox that
//! writes `.eml` files; and [`deliver_due`], the step of upkeep that claims due
//! notices, sends them and records the outcome in `tuaton_store::notifications`.
//!
//! Non-goals: queuing (done in the transaction of the event a notice
//! announces), templates an operator edits, HTML mail, and links: a notice
//! carries no citizen id, no secret and no link with a token, so a copy in the
//! wrong mailbox gives nothing away and a forged one cannot be made to look
//! like it needs a click.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MessageBuilder};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use time::{Month, OffsetDateTime, UtcOffset};
use tuaton_store::StoreError;
use tuaton_store::notifications::{
    self, Channel, ClaimedNotification, FailureOutcome, NotificationKind, NotificationRecord,
    RetryPolicy,
};
use url::{Host, Url};
use zeroize::Zeroizing;

use crate::{AppState, Settings};

/// Most notices claimed in one round. With [`SEND_TIMEOUT`] this bounds a
/// round that a slow relay drags out to ten minutes.
pub const BATCH: i64 = 20;

/// The longest one message may take to hand over, connection included.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest one SMTP command may take (lettre's own timeout, inside [`SEND_TIMEOUT`]).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a claim holds: the whole batch at its slowest plus a margin, so no
/// other process takes a notice this one is still sending.
fn lease() -> time::Duration {
    let secs = SEND_TIMEOUT.as_secs() * BATCH.unsigned_abs() + 60;
    time::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX))
}

/// Asks automatic responders not to answer (RFC 3834).
const AUTO_SUBMITTED: HeaderName = HeaderName::new_from_ascii_str("Auto-Submitted");

/// Thailand's time: UTC+7 all year (no daylight saving), as the person reads clocks.
const BANGKOK: UtcOffset = time::macros::offset!(+7);

/// Where `TUATON_SMTP_URL` points and how the connection is protected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpRelay {
    host: String,
    port: u16,
    security: SmtpSecurity,
}

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// `smtp://` to another host: STARTTLS is required; a relay that does not
    /// offer it gets nothing (no downgrade to plain text).
    StartTls,
    /// `smtps://`: TLS from the first byte (port 465 by default).
    ImplicitTls,
    /// `smtp://` to a loopback address: plain, because the traffic never leaves the machine.
    PlainLoopback,
}

impl SmtpRelay {
    /// Parses `smtp://HOST[:PORT]` (default port 587) or `smtps://HOST[:PORT]`
    /// (default 465). Credentials in the URL are refused: they would end up in
    /// process listings and configuration dumps.
    pub fn parse(v: &str) -> Result<Self, String> {
        let url = Url::parse(v.trim()).map_err(|e| e.to_string())?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(
                "has credentials; give them in TUATON_SMTP_USERNAME and TUATON_SMTP_PASSWORD_FILE"
                    .into(),
            );
        }
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err("has a path, query or fragment".into());
        }
        let (host, loopback) = match url.host() {
            None => return Err("no host".into()),
            // `smtp` is not a scheme the URL standard knows, so an IPv4 address
            // arrives as an opaque host name.
            Some(Host::Domain("")) => return Err("no host".into()),
            Some(Host::Domain(d)) => {
                let d = d.to_ascii_lowercase();
                let loopback = match d.parse::<IpAddr>() {
                    Ok(ip) => ip.is_loopback(),
                    Err(_) => d == "localhost",
                };
                (d, loopback)
            }
            Some(Host::Ipv4(ip)) => (ip.to_string(), ip.is_loopback()),
            Some(Host::Ipv6(ip)) => (ip.to_string(), ip.is_loopback()),
        };
        let (security, default_port) = match url.scheme() {
            "smtp" if loopback => (SmtpSecurity::PlainLoopback, 587),
            "smtp" => (SmtpSecurity::StartTls, 587),
            "smtps" => (SmtpSecurity::ImplicitTls, 465),
            other => return Err(format!("scheme `{other}` is not smtp or smtps")),
        };
        Ok(Self {
            host,
            port: url.port().unwrap_or(default_port),
            security,
        })
    }

    /// The relay's host name or address.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The relay's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// How the connection is protected.
    pub fn security(&self) -> SmtpSecurity {
        self.security
    }
}

impl std::fmt::Display for SmtpRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let how = match self.security {
            SmtpSecurity::StartTls => "STARTTLS required",
            SmtpSecurity::ImplicitTls => "implicit TLS",
            SmtpSecurity::PlainLoopback => "plain, loopback",
        };
        write!(f, "{}:{} ({how})", self.host, self.port)
    }
}

/// Why mail delivery cannot be set up. The operator's configuration.
#[derive(Debug, thiserror::Error)]
pub enum MailConfigError {
    /// The password file cannot be read.
    #[error("TUATON_SMTP_PASSWORD_FILE ({path}) cannot be read: {source}")]
    PasswordFile {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The password file holds nothing.
    #[error("TUATON_SMTP_PASSWORD_FILE ({path}) is empty")]
    EmptyPassword {
        /// The file.
        path: String,
    },
    /// TLS towards the relay cannot be configured (a host name rustls refuses).
    #[error("TUATON_SMTP_URL: TLS towards {host} cannot be set up")]
    Tls {
        /// The relay host.
        host: String,
    },
}

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
        let tls = match relay.security {
            SmtpSecurity::StartTls => Tls::Required(tls(&relay.host)?),
            SmtpSecurity::ImplicitTls => Tls::Wrapper(tls(&relay.host)?),
            SmtpSecurity::PlainLoopback => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&relay.host)
            .port(relay.port)
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

fn read_password(path: &std::path::Path) -> Result<Zeroizing<String>, MailConfigError> {
    let raw = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
        MailConfigError::PasswordFile {
            path: path.display().to_string(),
            source,
        }
    })?);
    // Editors and `echo` leave a line break; it is never part of the password.
    let password = Zeroizing::new(raw.trim_end_matches(['\r', '\n']).to_owned());
    if password.is_empty() {
        return Err(MailConfigError::EmptyPassword {
            path: path.display().to_string(),
        });
    }
    Ok(password)
}

/// Who notices come from, as a person sees it.
#[derive(Debug, Clone)]
pub struct Sender {
    /// The `From` mailbox: the service name and `TUATON_MAIL_FROM`.
    pub from: Mailbox,
    /// The service name (`TUATON_RP_NAME`).
    pub service_name: String,
    /// The service's public address, named so the person knows whom to contact.
    pub service_url: String,
}

impl Sender {
    /// From the settings; in development mode without `TUATON_MAIL_FROM`,
    /// `no-reply@` the public host.
    pub fn from_settings(settings: &Settings) -> Option<Self> {
        let address = match &settings.mail_from {
            Some(a) => a.clone(),
            None => {
                let host = settings.public_url.host_str().unwrap_or("localhost");
                // A bare IP is no mail domain; the outbox still needs a sender.
                Address::new("no-reply", host)
                    .or_else(|_| Address::new("no-reply", "localhost"))
                    .ok()?
            }
        };
        Some(Self {
            from: Mailbox::new(Some(settings.rp_name.clone()), address),
            service_name: settings.rp_name.clone(),
            service_url: settings.issuer(),
        })
    }
}

/// A notice's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeText {
    /// The subject line, Thai then English.
    pub subject: String,
    /// The plain-text body, Thai then English.
    pub body: String,
}

/// The text of each kind of notice, in one place. `at` is when the event
/// happened; it is shown in Thailand's time.
pub fn notice_text(kind: NotificationKind, at: OffsetDateTime, sender: &Sender) -> NoticeText {
    let at = at.to_offset(BANGKOK);
    let clock = format!("{:02}:{:02}", at.hour(), at.minute());
    let th_date = format!(
        "{} {} {}",
        at.day(),
        thai_month(at.month()),
        at.year() + 543
    );
    let en_date = format!("{} {} {}", at.day(), at.month(), at.year());
    let service = &sender.service_name;
    let url = &sender.service_url;
    match kind {
        // What a recovery does (api/recovery.rs): a re-proofing by the ID card,
        // a grant to add one passkey, every session ended, existing passkeys kept.
        NotificationKind::RecoveryStarted => NoticeText {
            subject: format!(
                "{service}: มีการเริ่มกู้คืนบัญชีของคุณ / Recovery of your account has started"
            ),
            body: format!(
                "เรียน ผู้ใช้บริการ {service}\n\
                 \n\
                 มีการเริ่มกู้คืนบัญชี {service} ของคุณเมื่อวันที่ {th_date} เวลา {clock} น. (เวลาประเทศไทย)\n\
                 ผู้ทำรายการได้ยืนยันตัวตนอีกครั้งด้วยข้อมูลจากบัตรประจำตัวประชาชนของคุณ และได้รับสิทธิ์เพิ่มพาสคีย์ใหม่ให้บัญชีนี้\n\
                 เพื่อความปลอดภัย ระบบได้ออกจากระบบทุกเซสชันของบัญชีนี้แล้ว ส่วนพาสคีย์เดิมของคุณยังคงอยู่และใช้งานได้ตามเดิม\n\
                 \n\
                 หากคุณเป็นผู้ทำรายการนี้เอง ไม่ต้องดำเนินการใด ๆ เพิ่มเติม\n\
                 หากไม่ใช่คุณ โปรดติดต่อผู้ให้บริการ {service} ({url}) โดยเร็วที่สุด เพื่อระงับและตรวจสอบบัญชี \
                 และเมื่อเข้าสู่ระบบได้แล้ว ให้ลบพาสคีย์ที่คุณไม่รู้จักออก\n\
                 \n\
                 {service} จะไม่ขอข้อมูลบัตรประจำตัวประชาชน รหัสหลังบัตร หรือรหัสใด ๆ ทางอีเมล\n\
                 อีเมลฉบับนี้ส่งโดยอัตโนมัติ กรุณาอย่าตอบกลับ\n\
                 \n\
                 ----------------------------------------\n\
                 \n\
                 Dear {service} user,\n\
                 \n\
                 Recovery of your {service} account started on {en_date} at {clock} (Thailand time, UTC+7).\n\
                 Whoever started it proved your identity again with the details of your national ID card \
                 and was allowed to add a new passkey to the account.\n\
                 For your safety, every session of the account was ended. \
                 Your existing passkeys were kept and still work.\n\
                 \n\
                 If this was you, there is nothing more to do.\n\
                 If it was not you, contact {service} ({url}) as soon as possible so the account can be \
                 suspended and reviewed. Once you can log in, remove any passkey you do not recognise.\n\
                 \n\
                 {service} never asks for your ID card details, the laser code on the back of the card \
                 or any code by e-mail.\n\
                 This message was sent automatically; please do not reply.\n"
            ),
        },
    }
}

fn thai_month(m: Month) -> &'static str {
    match m {
        Month::January => "มกราคม",
        Month::February => "กุมภาพันธ์",
        Month::March => "มีนาคม",
        Month::April => "เมษายน",
        Month::May => "พฤษภาคม",
        Month::June => "มิถุนายน",
        Month::July => "กรกฎาคม",
        Month::August => "สิงหาคม",
        Month::September => "กันยายน",
        Month::October => "ตุลาคม",
        Month::November => "พฤศจิกายน",
        Month::December => "ธันวาคม",
    }
}

/// Why a notice cannot be made into a message; retrying will not help.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    /// The stored address is not an e-mail address (data written by hand, or a bug).
    #[error("address not usable")]
    Address,
    /// The message could not be built (a bug).
    #[error("message could not be built")]
    Build,
}

/// Composes `notice` (of `kind`) as a message sent at `now`. The Message-ID is
/// derived from the notice id, so a notice sent twice (a process died after
/// the relay took it) carries the same id and mailboxes can fold the copies.
pub fn compose(
    notice: &NotificationRecord,
    kind: NotificationKind,
    sender: &Sender,
    now: OffsetDateTime,
) -> Result<Message, ComposeError> {
    let to: Address = notice
        .address
        .trim()
        .parse()
        .map_err(|_| ComposeError::Address)?;
    let text = notice_text(kind, notice.created_at, sender);
    let builder: MessageBuilder = Message::builder()
        .from(sender.from.clone())
        .to(Mailbox::new(None, to))
        .subject(text.subject)
        .date(now.into())
        .message_id(Some(format!(
            "<{}.{}@{}>",
            kind.as_str(),
            notice.id,
            sender.from.email.domain()
        )))
        .raw_header(HeaderValue::new(AUTO_SUBMITTED, "auto-generated".into()));
    builder
        .header(ContentType::TEXT_PLAIN)
        .body(text.body)
        .map_err(|_| ComposeError::Build)
}

/// What one round of delivery did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Handed to the relay (or outbox).
    pub sent: u32,
    /// Failed and scheduled again.
    pub retrying: u32,
    /// Failed for the last time.
    pub gave_up: u32,
    /// Claimed but given back untried (relay down, or a kind this build cannot send).
    pub released: u32,
    /// Waiting with no mailer configured.
    pub waiting_unsent: i64,
}

/// Claims the notices due now and sends them, one at a time, each within
/// [`SEND_TIMEOUT`]; records each outcome. With no mailer configured, counts
/// the waiting notices and warns instead. Errors of the store end the round
/// (the claims then lapse and the notices are due again).
pub async fn deliver_due(state: &AppState) -> Result<DeliveryReport, StoreError> {
    let store = state.store();
    let mut report = DeliveryReport::default();
    let mailer = state.services().mailer.clone();
    let sender = Sender::from_settings(state.settings());
    let (Some(mailer), Some(sender)) = (mailer, sender) else {
        report.waiting_unsent = notifications::waiting_count(store).await?;
        if report.waiting_unsent > 0 {
            tracing::warn!(
                waiting = report.waiting_unsent,
                "notices are waiting but no mail relay is configured (TUATON_SMTP_URL); they stay queued"
            );
        }
        return Ok(report);
    };
    let policy = RetryPolicy::default();
    let claimed = notifications::claim_due(store, state.now(), lease(), BATCH).await?;
    let mut claimed = claimed.into_iter();
    while let Some(c) = claimed.next() {
        let kind = NotificationKind::from_stored(&c.notice.kind);
        let channel = Channel::from_stored(&c.notice.channel);
        let (Some(kind), Some(Channel::Email)) = (kind, channel) else {
            // Written by a newer version sharing the database: leave it to that one.
            notifications::release(store, &c).await?;
            report.released += 1;
            continue;
        };
        let message = match compose(&c.notice, kind, &sender, state.now()) {
            Ok(m) => m,
            Err(e) => {
                let once = RetryPolicy {
                    max_attempts: 1,
                    ..policy
                };
                record_failure(state, &c, kind, &e.to_string(), &once, &mut report).await?;
                continue;
            }
        };
        let mail = OutgoingMail {
            notice_id: c.notice.id.clone(),
            message,
        };
        let result = tokio::time::timeout(SEND_TIMEOUT, mailer.send(&mail))
            .await
            .unwrap_or(Err(SendError::TimedOut));
        match result {
            Ok(()) => {
                if notifications::mark_sent(store, &c, state.now()).await? {
                    metrics::counter!("tuaton_notifications_sent_total", "kind" => kind.as_str())
                        .increment(1);
                    tracing::info!(notice = %c.notice.id, kind = kind.as_str(), "notice sent");
                    report.sent += 1;
                } else {
                    tracing::warn!(notice = %c.notice.id, "notice sent after its claim lapsed; another process may send it again");
                }
            }
            Err(e) => {
                record_failure(state, &c, kind, &e.reason(), &policy, &mut report).await?;
                if e.relay_down() {
                    for rest in claimed.by_ref() {
                        notifications::release(store, &rest).await?;
                        report.released += 1;
                    }
                }
            }
        }
    }
    Ok(report)
}

async fn record_failure(
    state: &AppState,
    c: &ClaimedNotification,
    kind: NotificationKind,
    reason: &str,
    policy: &RetryPolicy,
    report: &mut DeliveryReport,
) -> Result<(), StoreError> {
    let outcome = notifications::mark_failed(state.store(), c, state.now(), reason, policy).await?;
    let label = match outcome {
        FailureOutcome::RetryAt(next) => {
            report.retrying += 1;
            tracing::warn!(notice = %c.notice.id, reason, next_attempt = %next, "notice not delivered; will retry");
            "retrying"
        }
        FailureOutcome::GaveUp => {
            report.gave_up += 1;
            tracing::error!(notice = %c.notice.id, reason, "notice not delivered after the last attempt; given up");
            "gave_up"
        }
        FailureOutcome::ClaimLost => return Ok(()),
    };
    metrics::counter!("tuaton_notifications_failed_total", "kind" => kind.as_str(), "outcome" => label)
        .increment(1);
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn sender() -> Sender {
        Sender {
            from: Mailbox::new(
                Some("Tuaton".into()),
                "no-reply@id.example.go.th".parse().unwrap(),
            ),
            service_name: "Tuaton".into(),
            service_url: "https://id.example.go.th".into(),
        }
    }

    fn notice() -> NotificationRecord {
        let at = OffsetDateTime::from_unix_timestamp(1_763_800_000).unwrap();
        NotificationRecord {
            id: "0123456789abcdef0123456789abcdef".into(),
            account_id: "acc".into(),
            kind: "recovery_started".into(),
            channel: "email".into(),
            address: "somchai@example.test".into(),
            created_at: at,
            sent_at: None,
            attempts: 0,
            next_attempt_at: at,
            last_error: None,
            failed_at: None,
        }
    }

    #[test]
    fn smtp_urls_choose_the_protection() {
        let r = SmtpRelay::parse("smtp://mail.example.go.th").unwrap();
        assert_eq!(
            (r.host(), r.port(), r.security()),
            ("mail.example.go.th", 587, SmtpSecurity::StartTls)
        );
        let r = SmtpRelay::parse("smtps://mail.example.go.th:2465").unwrap();
        assert_eq!((r.port(), r.security()), (2465, SmtpSecurity::ImplicitTls));
        for loopback in [
            "smtp://127.0.0.1:2525",
            "smtp://localhost:25",
            "smtp://[::1]:25",
        ] {
            assert_eq!(
                SmtpRelay::parse(loopback).unwrap().security(),
                SmtpSecurity::PlainLoopback,
                "{loopback}"
            );
        }
        // Loopback over smtps stays TLS; a private address is not loopback.
        assert_eq!(
            SmtpRelay::parse("smtps://127.0.0.1").unwrap().security(),
            SmtpSecurity::ImplicitTls
        );
        assert_eq!(
            SmtpRelay::parse("smtp://10.0.0.5").unwrap().security(),
            SmtpSecurity::StartTls
        );
        for bad in [
            "http://mail.example.go.th",
            "smtp://user:pw@mail.example.go.th",
            "smtp://user@mail.example.go.th",
            "smtp://mail.example.go.th/path",
            "smtp://mail.example.go.th?tls=no",
            "smtp:mail",
        ] {
            assert!(SmtpRelay::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_recovery_notice_names_the_time_in_bangkok_in_both_languages() {
        // 2025-11-22 08:26:40 UTC is 15:26 in Bangkok.
        let text = notice_text(
            NotificationKind::RecoveryStarted,
            notice().created_at,
            &sender(),
        );
        assert!(text.subject.contains("กู้คืนบัญชี") && text.subject.contains("Recovery"));
        assert!(
            text.body.contains("22 พฤศจิกายน 2568 เวลา 15:26 น."),
            "{}",
            text.body
        );
        assert!(
            text.body
                .contains("22 November 2025 at 15:26 (Thailand time, UTC+7)")
        );
        assert!(
            text.body.find("เรียน") < text.body.find("Dear"),
            "Thai first"
        );
        assert!(text.body.contains("passkeys were kept") && text.body.contains("session"));
        assert!(text.body.contains("https://id.example.go.th"));
    }

    #[test]
    fn the_message_has_a_stable_id_a_date_and_no_personal_data_beyond_the_address() {
        let n = notice();
        let now = n.created_at + time::Duration::minutes(3);
        let m = compose(&n, NotificationKind::RecoveryStarted, &sender(), now).unwrap();
        let raw = String::from_utf8(m.formatted()).unwrap();
        assert!(
            raw.contains(
                "Message-ID: <recovery_started.0123456789abcdef0123456789abcdef@id.example.go.th>"
            ),
            "{raw}"
        );
        assert!(
            raw.contains("Date: Sat, 22 Nov 2025 08:29:40 +0000"),
            "{raw}"
        );
        assert!(raw.contains("To: somchai@example.test"));
        assert!(raw.contains("From: Tuaton <no-reply@id.example.go.th>"));
        assert!(raw.contains("Auto-Submitted: auto-generated"));
        let again = compose(&n, NotificationKind::RecoveryStarted, &sender(), now).unwrap();
        assert_eq!(
            again.headers().get_raw("Message-ID"),
            m.headers().get_raw("Message-ID")
        );

        let mut bad = notice();
        bad.address = "not an address".into();
        assert!(matches!(
            compose(&bad, NotificationKind::RecoveryStarted, &sender(), now),
            Err(ComposeError::Address)
        ));
    }

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
