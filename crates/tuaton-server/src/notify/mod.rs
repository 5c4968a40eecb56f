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
//!
//! Layout: `relay` reads where the relay is; `compose` makes a notice's words
//! and message, with no I/O; `transport` hands messages over; `deliver` runs
//! one round of claiming, sending and recording.

mod compose;
mod deliver;
mod relay;
mod transport;

pub use compose::{ComposeError, NoticeText, Sender, compose, notice_text};
pub use deliver::{BATCH, DeliveryReport, SEND_TIMEOUT, deliver_due};
pub use relay::{MailConfigError, SmtpRelay, SmtpSecurity};
pub use transport::{
    Mailer, OutboxMailer, OutgoingMail, SendError, SmtpMailer, mailer_from_settings,
};
