//! Where the server listens and is reached, what one request may take, and
//! whom it believes about client addresses.

use std::net::{AddrParseError, SocketAddr};

use url::Url;

use super::SettingsError;
use super::fields::{Fields, Whole, url};
use crate::client_address::TrustedProxies;

pub(super) const MAX_BODY_BYTES: Whole = Whole {
    name: "TUATON_MAX_BODY_BYTES",
    default: 1 << 20,
    least: 1024,
    most: 1 << 30,
    accepted: "a byte count from 1024 to 1073741824",
};
pub(super) const MAX_DOCUMENT_BYTES: Whole = Whole {
    name: "TUATON_MAX_DOCUMENT_BYTES",
    default: 32 << 20,
    least: 1024,
    most: 1 << 30,
    accepted: "a byte count from 1024 to 1073741824",
};
pub(super) const REQUEST_TIMEOUT: Whole = Whole {
    name: "TUATON_REQUEST_TIMEOUT_SECS",
    default: 30,
    least: 1,
    most: 3600,
    accepted: "whole seconds from 1 to 3600",
};
pub(super) const SHUTDOWN_GRACE: Whole = Whole {
    name: "TUATON_SHUTDOWN_GRACE_SECS",
    default: 30,
    least: 0,
    most: 3600,
    accepted: "whole seconds from 0 to 3600",
};
pub(super) const MAX_CONNECTIONS: Whole = Whole {
    name: "TUATON_MAX_CONNECTIONS",
    default: 4096,
    least: 1,
    most: 1_000_000,
    accepted: "a whole number from 1 to 1000000",
};
pub(super) const HEADER_READ_TIMEOUT: Whole = Whole {
    name: "TUATON_HEADER_READ_TIMEOUT_SECS",
    default: 10,
    least: 1,
    most: 300,
    accepted: "whole seconds from 1 to 300",
};
pub(super) const RATE_LIMIT_PER_ADDRESS: Whole = Whole {
    name: "TUATON_RATE_LIMIT_PER_ADDRESS",
    default: 60,
    least: 1,
    most: 1_000_000,
    accepted: "a whole number of requests a minute from 1 to 1000000",
};
pub(super) const RATE_LIMIT_PER_ACCOUNT: Whole = Whole {
    name: "TUATON_RATE_LIMIT_PER_ACCOUNT",
    default: 20,
    least: 1,
    most: 1_000_000,
    accepted: "a whole number of requests a minute from 1 to 1000000",
};

/// `TUATON_LISTEN`, or `127.0.0.1:8080`; with `--dev`, a loopback address only.
pub(super) fn listen(f: &Fields, dev: bool) -> Result<SocketAddr, SettingsError> {
    let listen = f.get(
        "TUATON_LISTEN",
        "an IP address and port, such as 127.0.0.1:8080 or [::1]:8080",
        |v| v.trim().parse().map_err(|e: AddrParseError| e.to_string()),
    )?;
    let listen = listen.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8080)));
    if dev && !listen.ip().is_loopback() {
        // Development mode trusts fictional registries and keys-dev's public
        // master key: reachable from another machine, anyone could enrol
        // anyone and read every development key.
        return Err(SettingsError::Invalid {
            setting: "TUATON_LISTEN".into(),
            value: listen.to_string(),
            problem: "development mode (--dev) uses public development keys and fictional registries, so it listens on this machine only".into(),
            expected: "a loopback address, such as 127.0.0.1:8080 or [::1]:8080, with --dev",
        });
    }
    Ok(listen)
}

/// `TUATON_PUBLIC_URL`, or `http://localhost:8080`.
pub(super) fn public_url(f: &Fields) -> Result<Url, SettingsError> {
    let public_url = f.get(
        "TUATON_PUBLIC_URL",
        "an http:// or https:// URL with a host name and no path, query or fragment, such as https://id.example.go.th",
        parse_public_url,
    )?;
    match public_url {
        Some(url) => Ok(url),
        None => Url::parse("http://localhost:8080").map_err(|e| SettingsError::Invalid {
            setting: "TUATON_PUBLIC_URL".into(),
            value: String::new(),
            problem: e.to_string(),
            expected: "a URL",
        }),
    }
}

fn parse_public_url(v: &str) -> Result<Url, String> {
    let url = url(v)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("scheme `{}` is not http or https", url.scheme()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("no host".into());
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err("has a path, query or fragment".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("has credentials".into());
    }
    Ok(url)
}

/// `TUATON_TRUSTED_PROXIES`, or none.
pub(super) fn trusted_proxies(f: &Fields) -> Result<TrustedProxies, SettingsError> {
    let proxies = f.get(
        "TUATON_TRUSTED_PROXIES",
        "comma-separated IP addresses or CIDR ranges of reverse proxies, such as 10.0.0.5, 10.1.0.0/16",
        TrustedProxies::parse,
    )?;
    Ok(proxies.unwrap_or_else(TrustedProxies::none))
}

/// `TUATON_METRICS_LISTEN`, if set; with `--dev`, a loopback address only.
pub(super) fn metrics_listen(f: &Fields, dev: bool) -> Result<Option<SocketAddr>, SettingsError> {
    f.get(
        "TUATON_METRICS_LISTEN",
        "an IP address and port, such as 127.0.0.1:9464 (loopback only with --dev)",
        |v| {
            let addr = v.trim().parse::<SocketAddr>().map_err(|e| e.to_string())?;
            if dev && !addr.ip().is_loopback() {
                return Err("development mode (--dev) listens on this machine only".into());
            }
            Ok(addr)
        },
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use crate::settings::tests::{load, refused};

    #[test]
    fn development_mode_listens_on_loopback_only() {
        let dev = |listen: &str| {
            let env =
                std::collections::HashMap::from([("TUATON_LISTEN".to_owned(), listen.to_owned())]);
            crate::Settings::load_with(None, true, |k| env.get(k).cloned())
        };
        for bad in ["0.0.0.0:8080", "[::]:8080", "192.0.2.10:8080"] {
            let e = dev(bad).unwrap_err().to_string();
            assert!(e.contains("TUATON_LISTEN") && e.contains("loopback"), "{e}");
        }
        for good in ["127.0.0.1:8080", "[::1]:9000", "127.0.0.2:8080"] {
            assert_eq!(dev(good).unwrap().listen.to_string(), good);
        }
        let production = load(&[("TUATON_LISTEN", "0.0.0.0:8080")], None).unwrap();
        assert_eq!(production.listen.to_string(), "0.0.0.0:8080");
    }

    #[test]
    fn trusted_proxies_default_to_none_and_bad_ones_name_the_setting() {
        assert!(load(&[], None).unwrap().trusted_proxies.is_empty());
        let s = load(&[("TUATON_TRUSTED_PROXIES", "10.0.0.5, 10.1.0.0/16")], None).unwrap();
        assert!(s.trusted_proxies.contains("10.1.2.3".parse().unwrap()));
        assert!(!s.trusted_proxies.contains("10.2.0.1".parse().unwrap()));
        let s = load(&[], Some("trusted_proxies = \"::1\"\n")).unwrap();
        assert!(s.trusted_proxies.contains("::1".parse().unwrap()));
        for bad in ["proxy.internal", "0.0.0.0/0", "10.0.0.5,,10.0.0.6"] {
            refused(
                &[("TUATON_TRUSTED_PROXIES", bad)],
                None,
                &["TUATON_TRUSTED_PROXIES", "CIDR"],
            );
        }
    }
}
