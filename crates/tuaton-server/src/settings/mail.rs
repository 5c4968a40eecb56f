//! The mail relay notices go through, the login to it, and the sender.

use std::path::PathBuf;

use super::fields::Fields;
use super::{SettingsError, redact_url};
use crate::notify::SmtpRelay;

/// The relay, its login and the `From` address.
pub(super) struct Mail {
    pub(super) smtp_url: Option<SmtpRelay>,
    pub(super) smtp_username: Option<String>,
    pub(super) smtp_password_file: Option<PathBuf>,
    pub(super) mail_from: Option<lettre::Address>,
}

impl Mail {
    pub(super) fn read(f: &Fields) -> Result<Self, SettingsError> {
        // A password typed into the URL must not come back in the error.
        let smtp_url = f.get_shown(
            "TUATON_SMTP_URL",
            "smtp://HOST[:PORT] (STARTTLS; plain only to loopback) or smtps://HOST[:PORT] (implicit TLS), without credentials",
            redact_url,
            SmtpRelay::parse,
        )?;
        let smtp_username = f
            .given("TUATON_SMTP_USERNAME")
            .map(|given| given.value.trim().to_owned())
            .filter(|user| !user.is_empty());
        let smtp_password_file = f.path("TUATON_SMTP_PASSWORD_FILE");
        let mail_from = f.get(
            "TUATON_MAIL_FROM",
            "an e-mail address, such as no-reply@id.example.go.th",
            |v| {
                v.trim()
                    .parse::<lettre::Address>()
                    .map_err(|e| e.to_string())
            },
        )?;
        let mail = Self {
            smtp_url,
            smtp_username,
            smtp_password_file,
            mail_from,
        };
        mail.check_complete()?;
        Ok(mail)
    }

    /// Refuses a relay without a sender, and a login without its other half.
    fn check_complete(&self) -> Result<(), SettingsError> {
        let missing = match (
            &self.smtp_url,
            &self.mail_from,
            &self.smtp_username,
            &self.smtp_password_file,
        ) {
            (Some(relay), None, ..) => Some((
                "TUATON_SMTP_URL",
                relay.to_string(),
                "set without TUATON_MAIL_FROM",
            )),
            (_, _, Some(user), None) => Some((
                "TUATON_SMTP_USERNAME",
                user.clone(),
                "set without TUATON_SMTP_PASSWORD_FILE",
            )),
            (_, _, None, Some(file)) => Some((
                "TUATON_SMTP_PASSWORD_FILE",
                file.display().to_string(),
                "set without TUATON_SMTP_USERNAME",
            )),
            (None, _, Some(user), Some(_)) => Some((
                "TUATON_SMTP_USERNAME",
                user.clone(),
                "set without TUATON_SMTP_URL",
            )),
            _ => None,
        };
        match missing {
            None => Ok(()),
            Some((setting, value, problem)) => Err(SettingsError::Invalid {
                setting: setting.to_owned(),
                value,
                problem: problem.to_owned(),
                expected: "TUATON_SMTP_URL and TUATON_MAIL_FROM together, and TUATON_SMTP_USERNAME with TUATON_SMTP_PASSWORD_FILE",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::path::PathBuf;

    use crate::notify::SmtpSecurity;
    use crate::settings::tests::{load, refused};

    #[test]
    fn mail_settings_need_a_sender_and_keep_credentials_out_of_the_url() {
        let s = load(&[], None).unwrap();
        assert!(s.smtp_url.is_none() && s.mail_from.is_none() && s.smtp_username.is_none());
        let s = load(
            &[
                ("TUATON_SMTP_URL", "smtp://mail.example.go.th"),
                ("TUATON_MAIL_FROM", "no-reply@id.example.go.th"),
                ("TUATON_SMTP_USERNAME", "tuaton"),
                ("TUATON_SMTP_PASSWORD_FILE", "/run/secrets/smtp"),
            ],
            None,
        )
        .unwrap();
        let relay = s.smtp_url.unwrap();
        assert_eq!(
            (relay.host(), relay.port(), relay.security()),
            ("mail.example.go.th", 587, SmtpSecurity::StartTls)
        );
        assert_eq!(
            s.mail_from.map(|a| a.to_string()).as_deref(),
            Some("no-reply@id.example.go.th")
        );
        assert_eq!(
            s.smtp_password_file,
            Some(PathBuf::from("/run/secrets/smtp"))
        );
        let s = load(
            &[],
            Some("smtp_url = \"smtps://mail.example.go.th\"\nmail_from = \"a@b.example\"\n"),
        )
        .unwrap();
        assert_eq!(s.smtp_url.unwrap().port(), 465);

        let e = refused(
            &[("TUATON_SMTP_URL", "smtp://u:hunter2@mail.example.go.th")],
            None,
            &["TUATON_SMTP_URL", "TUATON_SMTP_PASSWORD_FILE"],
        );
        assert!(!e.contains("hunter2"), "{e}");
        refused(
            &[("TUATON_SMTP_URL", "http://mail.example.go.th")],
            None,
            &["smtp or smtps"],
        );
        refused(
            &[("TUATON_SMTP_URL", "smtp://mail.example.go.th")],
            None,
            &["without TUATON_MAIL_FROM"],
        );
        refused(
            &[("TUATON_MAIL_FROM", "not an address")],
            None,
            &["TUATON_MAIL_FROM", "e-mail address"],
        );
        let [relay, from] = [
            ("TUATON_SMTP_URL", "smtp://mail.example.go.th"),
            ("TUATON_MAIL_FROM", "no-reply@id.example.go.th"),
        ];
        refused(
            &[relay, from, ("TUATON_SMTP_USERNAME", "tuaton")],
            None,
            &["without TUATON_SMTP_PASSWORD_FILE"],
        );
        refused(
            &[
                relay,
                from,
                ("TUATON_SMTP_PASSWORD_FILE", "/run/secrets/smtp"),
            ],
            None,
            &["without TUATON_SMTP_USERNAME"],
        );
    }
}
