//! Where `TUATON_SMTP_URL` points, how the connection to it is protected, and
//! the relay password read from its file.

use std::net::IpAddr;

use url::{Host, Url};
use zeroize::Zeroizing;

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

/// The relay password from `path`, without the line break editors leave.
pub(super) fn read_password(path: &std::path::Path) -> Result<Zeroizing<String>, MailConfigError> {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

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
}
