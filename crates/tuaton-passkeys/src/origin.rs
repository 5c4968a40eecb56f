//! Origins accepted besides the public URL's: other web origins, and Android
//! apps, whose WebAuthn client data names the app rather than a web page.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use url::Url;

use crate::PasskeyError;

/// How an Android app's origin starts; the rest is the app's signing
/// certificate's SHA-256, base64url without padding.
const ANDROID_PREFIX: &str = "android:apk-key-hash:";

/// One more origin whose WebAuthn responses are accepted. The relying-party
/// id does not change: an extra origin only helps if its client is allowed
/// to use that id (a subdomain of it, a related origin the browser accepts,
/// or an app associated with the domain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraOrigin {
    /// Compared by webauthn-rs with the client data's origin: web origins by
    /// scheme, host and port; `android:` ones, which have no host, as whole
    /// strings.
    url: Url,
    kind: OriginKind,
}

/// What sort of client an [`ExtraOrigin`] stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginKind {
    /// A web origin (`https://host[:port]`).
    Web,
    /// An Android app, by the hash of its signing certificate.
    AndroidApp,
}

impl ExtraOrigin {
    /// The origin as webauthn-rs compares it.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// A web page or an Android app.
    pub fn kind(&self) -> OriginKind {
        self.kind
    }
}

impl fmt::Display for ExtraOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            OriginKind::Web => f.write_str(&self.url.origin().ascii_serialization()),
            OriginKind::AndroidApp => f.write_str(self.url.as_str()),
        }
    }
}

impl FromStr for ExtraOrigin {
    type Err = PasskeyError;

    /// Accepts `https://host[:port]` (a trailing `/` is tolerated) or
    /// `android:apk-key-hash:` followed by 43 base64url characters.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Some(hash) = s.strip_prefix(ANDROID_PREFIX) {
            return android(hash);
        }
        let bad = |why: &str| PasskeyError::Config(format!("origin `{s}`: {why}"));
        let url = Url::parse(s).map_err(|e| bad(&e.to_string()))?;
        if url.scheme() == "android" {
            return Err(bad(
                "an Android origin is android:apk-key-hash: and the base64url SHA-256 of the app's signing certificate",
            ));
        }
        if url.scheme() != "https" {
            return Err(bad("not https"));
        }
        if url.domain().is_none() {
            // Browsers refuse WebAuthn on IP-address origins.
            return Err(bad("the host must be a domain name"));
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(bad("an origin has no path, query or fragment"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("an origin has no user name or password"));
        }
        let url =
            Url::parse(&url.origin().ascii_serialization()).map_err(|e| bad(&e.to_string()))?;
        Ok(Self {
            url,
            kind: OriginKind::Web,
        })
    }
}

fn android(hash: &str) -> Result<ExtraOrigin, PasskeyError> {
    let bad = || {
        PasskeyError::Config(format!(
            "origin `{ANDROID_PREFIX}{hash}`: the hash must be the SHA-256 of the app's signing certificate as 43 base64url characters without padding"
        ))
    };
    // Strict decoding (no padding, no stray bits) keeps one spelling per
    // hash, so the comparison with the client's string is exact.
    let digest = URL_SAFE_NO_PAD.decode(hash).map_err(|_| bad())?;
    if hash.len() != 43 || digest.len() != 32 {
        return Err(bad());
    }
    let url = Url::parse(&format!("{ANDROID_PREFIX}{hash}")).map_err(|_| bad())?;
    // The url crate must keep the hash exactly as given, or no client
    // string would ever compare equal.
    if url.as_str() != format!("{ANDROID_PREFIX}{hash}") {
        return Err(bad());
    }
    Ok(ExtraOrigin {
        url,
        kind: OriginKind::AndroidApp,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const HASH: &str = "Ab3_-9zZ0123456789abcdefghijklmnopqrstuvwxA";

    #[test]
    fn web_and_android_origins_parse_to_one_spelling() {
        let o: ExtraOrigin = "https://App.Example.go.th:443/".parse().unwrap();
        assert_eq!(o.kind(), OriginKind::Web);
        assert_eq!(o.to_string(), "https://app.example.go.th");
        let o: ExtraOrigin = "https://m.example.go.th:8443".parse().unwrap();
        assert_eq!(o.to_string(), "https://m.example.go.th:8443");
        let a: ExtraOrigin = format!("android:apk-key-hash:{HASH}").parse().unwrap();
        assert_eq!(a.kind(), OriginKind::AndroidApp);
        assert_eq!(a.to_string(), format!("android:apk-key-hash:{HASH}"));
        assert_eq!(a.url().as_str(), format!("android:apk-key-hash:{HASH}"));
    }

    #[test]
    fn anything_else_is_refused_with_the_reason() {
        for (bad, why) in [
            ("http://app.example.go.th", "not https"),
            ("https://192.0.2.1", "domain name"),
            ("https://app.example.go.th/login", "path"),
            ("https://app.example.go.th/?a=1", "query"),
            ("https://u:p@app.example.go.th", "user name"),
            ("ios:bundle-id:th.go.example", "not https"),
            ("android:apk-key-hash:short", "43 base64url"),
            (
                "android:apk-key-hash:Ab3_-9zZ0123456789abcdefghijklmnopqrstuvwxA=",
                "43 base64url",
            ),
            // 43 characters whose last one carries bits beyond the 32 bytes.
            (
                "android:apk-key-hash:Ab3_-9zZ0123456789abcdefghijklmnopqrstuvwxB",
                "43 base64url",
            ),
            ("android:sha256:abc", "android:apk-key-hash:"),
            ("app.example.go.th", "relative URL"),
        ] {
            let e = bad.parse::<ExtraOrigin>().unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
