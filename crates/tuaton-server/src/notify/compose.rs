//! The words of each notice (Thai, then English) and the RFC 5322 message
//! that carries them. No I/O: what is composed here is sent by `transport`.

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MessageBuilder};
use lettre::{Address, Message};
use time::{Month, OffsetDateTime, UtcOffset};
use tuaton_store::notifications::{NotificationKind, NotificationRecord};

use crate::Settings;

/// Asks automatic responders not to answer (RFC 3834).
const AUTO_SUBMITTED: HeaderName = HeaderName::new_from_ascii_str("Auto-Submitted");

/// Thailand's time: UTC+7 all year (no daylight saving), as the person reads clocks.
const BANGKOK: UtcOffset = time::macros::offset!(+7);

/// Who notices come from, as a person sees it.
#[derive(Debug, Clone)]
pub struct Sender {
    /// The `From` mailbox: the service name and `TUATON_MAIL_FROM`.
    pub from: Mailbox,
    /// The service name (`TUATON_RP_NAME`).
    pub service_name: String,
    /// The service's public address, named so the person knows whom to contact.
    pub service_url: String,
    /// How long a remote recovery waits, in hours, as the notice says it.
    pub recovery_cooling_off_hours: u64,
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
            recovery_cooling_off_hours: settings.recovery_cooling_off.as_secs() / 3_600,
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

/// What a notice is about, as its text needs it.
#[derive(Debug, Clone, Copy)]
pub struct About<'a> {
    /// When the event happened; shown in Thailand's time.
    pub at: OffsetDateTime,
    /// The recovery it concerns, for the link that cancels it.
    pub recovery: Option<&'a str>,
}

/// The text of each kind of notice, in one place.
pub fn notice_text(kind: NotificationKind, about: About<'_>, sender: &Sender) -> NoticeText {
    let at = about.at.to_offset(BANGKOK);
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
    let hours = sender.recovery_cooling_off_hours;
    // Every notice is the same letter: Thai, then English, each with its
    // greeting and the warning about what Tuaton never asks for.
    let letter = |thai: String, english: String| {
        format!(
            "เรียน ผู้ใช้บริการ {service}\n\
             \n\
             {thai}\
             \n\
             {service} ไม่เคยขอข้อมูลบัตรประจำตัวประชาชน รหัสหลังบัตร หรือรหัสใด ๆ ทางอีเมล\n\
             อีเมลฉบับนี้ส่งโดยอัตโนมัติ กรุณาอย่าตอบกลับ\n\
             \n\
             ----------------------------------------\n\
             \n\
             Dear {service} user,\n\
             \n\
             {english}\
             \n\
             {service} never asks for your ID card details, the laser code on the back of the card \
             or any code by e-mail.\n\
             This message was sent automatically; please do not reply.\n"
        )
    };
    match kind {
        // What a request does (tuaton_idm::recovery): the card's details
        // checked, a wait, then a grant that removes the old passkeys.
        NotificationKind::RecoveryRequested => {
            let link = format!(
                "{}/recovery/cancel?r={}",
                url.trim_end_matches('/'),
                about.recovery.unwrap_or_default()
            );
            NoticeText {
                subject: format!(
                    "{service}: มีผู้ขอกู้คืนบัญชีของคุณ / Someone asked to recover your account"
                ),
                body: letter(
                    format!(
                        "มีผู้ขอกู้คืนบัญชี {service} ของคุณเมื่อวันที่ {th_date} เวลา {clock} น. (เวลาประเทศไทย) \
                         โดยใช้ข้อมูลจากบัตรประจำตัวประชาชนของคุณ\n\
                         หากไม่มีการยกเลิก ผู้ขอจะเพิ่มพาสคีย์ใหม่ให้บัญชีนี้ได้เมื่อครบ {hours} ชั่วโมง \
                         และพาสคีย์เดิมของคุณอาจใช้งานไม่ได้อีก\n\
                         \n\
                         หากไม่ใช่คุณ ให้ยกเลิกคำขอนี้ด้วยพาสคีย์ของคุณที่\n\
                         {link}\n\
                         หากคุณเป็นผู้ขอเอง ไม่ต้องดำเนินการใด ๆ\n"
                    ),
                    format!(
                        "Someone asked to recover your {service} account on {en_date} at {clock} \
                         (Thailand time, UTC+7), using the details of your national ID card.\n\
                         Unless the request is cancelled, they can add a new passkey to the account \
                         after {hours} hours, and your existing passkeys may stop working.\n\
                         \n\
                         If this was not you, cancel the request with one of your passkeys at\n\
                         {link}\n\
                         If it was you, there is nothing to do.\n"
                    ),
                ),
            }
        }
        NotificationKind::RecoveryCompleted => NoticeText {
            subject: format!("{service}: บัญชีของคุณได้รับการกู้คืนแล้ว / Your account was recovered"),
            body: letter(
                format!(
                    "บัญชี {service} ของคุณได้รับการกู้คืนเมื่อวันที่ {th_date} เวลา {clock} น. (เวลาประเทศไทย): \
                     มีการเพิ่มพาสคีย์ใหม่ และออกจากระบบทุกเซสชันของบัญชีนี้แล้ว\n\
                     หากไม่ใช่คุณ โปรดติดต่อผู้ให้บริการ {service} ({url}) โดยเร็วที่สุด เพื่อระงับและตรวจสอบบัญชี\n"
                ),
                format!(
                    "Your {service} account was recovered on {en_date} at {clock} (Thailand time, UTC+7): \
                     a new passkey was added and every session of the account was ended.\n\
                     If this was not you, contact {service} ({url}) as soon as possible so the account can be \
                     suspended and reviewed.\n"
                ),
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
    let about = About {
        at: notice.created_at,
        recovery: notice.reference.as_deref(),
    };
    let text = notice_text(kind, about, sender);
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
            recovery_cooling_off_hours: 72,
        }
    }

    fn notice() -> NotificationRecord {
        let at = OffsetDateTime::from_unix_timestamp(1_763_800_000).unwrap();
        NotificationRecord {
            id: "0123456789abcdef0123456789abcdef".into(),
            account_id: tuaton_core::AccountId::parse("fedcba9876543210fedcba9876543210").unwrap(),
            kind: "recovery_requested".into(),
            channel: "email".into(),
            address: "somchai@example.test".into(),
            created_at: at,
            sent_at: None,
            attempts: 0,
            next_attempt_at: at,
            last_error: None,
            failed_at: None,
            reference: Some("00112233445566778899aabbccddeeff".into()),
        }
    }

    #[test]
    fn the_recovery_notice_names_the_time_in_bangkok_in_both_languages() {
        // 2025-11-22 08:26:40 UTC is 15:26 in Bangkok.
        let n = notice();
        let about = About {
            at: n.created_at,
            recovery: n.reference.as_deref(),
        };
        let text = notice_text(NotificationKind::RecoveryRequested, about, &sender());
        assert!(text.subject.contains("กู้คืนบัญชี") && text.subject.contains("recover"));
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
        assert!(text.body.contains("after 72 hours") && text.body.contains("ครบ 72 ชั่วโมง"));
        // The one-click cancel link, in both languages' paragraphs.
        let link = "https://id.example.go.th/recovery/cancel?r=00112233445566778899aabbccddeeff";
        assert_eq!(text.body.matches(link).count(), 2, "{}", text.body);

        let done = notice_text(NotificationKind::RecoveryCompleted, about, &sender());
        assert!(done.subject.contains("recovered"));
        assert!(
            done.body.contains("every session") && done.body.contains("https://id.example.go.th")
        );
    }

    #[test]
    fn the_message_has_a_stable_id_a_date_and_no_personal_data_beyond_the_address() {
        let n = notice();
        let now = n.created_at + time::Duration::minutes(3);
        let m = compose(&n, NotificationKind::RecoveryRequested, &sender(), now).unwrap();
        let raw = String::from_utf8(m.formatted()).unwrap();
        assert!(
            raw.contains(
                "Message-ID: <recovery_requested.0123456789abcdef0123456789abcdef@id.example.go.th>"
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
        let again = compose(&n, NotificationKind::RecoveryRequested, &sender(), now).unwrap();
        assert_eq!(
            again.headers().get_raw("Message-ID"),
            m.headers().get_raw("Message-ID")
        );

        let mut bad = notice();
        bad.address = "not an address".into();
        assert!(matches!(
            compose(&bad, NotificationKind::RecoveryRequested, &sender(), now),
            Err(ComposeError::Address)
        ));
    }
}
