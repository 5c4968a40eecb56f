//! Requests Tuaton's server makes to addresses an agency registered (its
//! back-channel logout URI, its `jwks_uri`), and where they may go; and to
//! the external time-stamping authority an operator configured.
//!
//! Outside development, only https, and only to public addresses: the name
//! is resolved first, every address it gives must be one the internet
//! routes (not loopback, private, link-local, unique-local, shared,
//! documentation or multicast, IPv4-mapped ones included), and the
//! connection goes to the address checked, so neither a registration nor a
//! DNS answer can point Tuaton at its own network (server-side request
//! forgery). Redirects are never followed. In development (`--dev`, which
//! listens on loopback only) loopback agencies are allowed, for the tests.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use url::Url;

/// The longest resolving a host may take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether the internet routes `ip`: what a back-channel post may reach.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        || a >= 240
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b)))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        || (first == 0x0064 && ip.segments()[1] == 0xff9b))
}

/// An HTTP client for one request to `uri`, within `timeout`, that reaches
/// only what the rule above allows (anything, when `dev`).
pub(crate) async fn client_for(
    uri: &Url,
    dev: bool,
    timeout: Duration,
    agent: &'static str,
) -> Result<reqwest::Client, &'static str> {
    let mut client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .user_agent(agent);
    if !dev {
        if uri.scheme() != "https" {
            return Err("only https is reached");
        }
        let host = uri.host_str().ok_or("the URI has no host")?;
        let port = uri.port_or_known_default().unwrap_or(443);
        let addrs: Vec<SocketAddr> =
            tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port)))
                .await
                .map_err(|_| "resolving the host timed out")?
                .map_err(|_| "the host does not resolve")?
                .collect();
        let first = *addrs.first().ok_or("the host does not resolve")?;
        if addrs.iter().any(|a| !is_public(a.ip())) {
            return Err("the host resolves to an address that is not public");
        }
        // Connect to the address checked, not to a second answer.
        client = client.resolve(host, first);
    }
    client.build().map_err(|_| "no HTTP client could be made")
}

/// The largest key set fetched from a `jwks_uri`.
const MAX_KEY_SET: usize = 64 * 1024;

/// Fetches clients' key sets from their `jwks_uri` under the rule above.
pub(crate) struct GuardedJwksFetcher {
    /// Whether this is a development server (loopback agencies allowed).
    pub dev: bool,
}

#[async_trait::async_trait]
impl tuaton_idm::JwksFetcher for GuardedJwksFetcher {
    async fn fetch(&self, uri: &Url) -> Result<serde_json::Value, String> {
        let client = client_for(
            uri,
            self.dev,
            Duration::from_secs(5),
            "Tuaton key set fetch",
        )
        .await
        .map_err(str::to_owned)?;
        let answer = client
            .get(uri.clone())
            .header(
                reqwest::header::ACCEPT,
                "application/json, application/jwk-set+json",
            )
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    "timed out".to_owned()
                } else {
                    "not reached".to_owned()
                }
            })?;
        if !answer.status().is_success() {
            return Err(format!("answered {}", answer.status()));
        }
        if answer
            .content_length()
            .is_some_and(|n| n > MAX_KEY_SET as u64)
        {
            return Err("the key set is too large".into());
        }
        let body = answer
            .bytes()
            .await
            .map_err(|_| "the key set could not be read".to_owned())?;
        if body.len() > MAX_KEY_SET {
            return Err("the key set is too large".into());
        }
        serde_json::from_slice(&body).map_err(|_| "the key set is not JSON".into())
    }
}

/// The largest time-stamp response read from an external TSA.
const MAX_TIME_STAMP_RESPONSE: usize = 64 * 1024;

/// An external RFC 3161 time-stamping authority over HTTP (RFC 3161 §3.4):
/// the `TimeStampReq` posted as `application/timestamp-query`, the
/// `TimeStampResp` read back as `application/timestamp-reply`. The
/// operator names it (`TUATON_TSA_URL`), so it is reached wherever it is;
/// the token it gives is checked by `tuaton_sign::tsp::time_stamp_token`
/// (granted, over exactly the signature, with the request's nonce) before
/// any signature carries it.
pub(crate) struct HttpTsa {
    url: Url,
    client: reqwest::Client,
    /// The certificate whose key must sign its tokens (DER).
    signer: Option<Vec<u8>>,
}

impl HttpTsa {
    /// A client for the TSA at `url` whose tokens `signer` (a DER
    /// certificate) must have signed, when given; `None` when no HTTP
    /// client can be made.
    pub(crate) fn new(url: Url, signer: Option<Vec<u8>>) -> Option<Self> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .user_agent("Tuaton time-stamp request")
            .build()
            .ok()?;
        Some(Self {
            url,
            client,
            signer,
        })
    }

    async fn ask(&self, request: Vec<u8>) -> Result<Vec<u8>, String> {
        let answer = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/timestamp-query")
            .body(request)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    "the TSA did not answer in time".to_owned()
                } else {
                    "the TSA was not reached".to_owned()
                }
            })?;
        if !answer.status().is_success() {
            return Err(format!("the TSA answered {}", answer.status()));
        }
        let kind = answer
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !kind.starts_with("application/timestamp-reply") {
            return Err("the TSA's answer is not application/timestamp-reply".into());
        }
        if answer
            .content_length()
            .is_some_and(|n| n > MAX_TIME_STAMP_RESPONSE as u64)
        {
            return Err("the TSA's answer is too large".into());
        }
        let body = answer
            .bytes()
            .await
            .map_err(|_| "the TSA's answer could not be read".to_owned())?;
        if body.len() > MAX_TIME_STAMP_RESPONSE {
            return Err("the TSA's answer is too large".into());
        }
        Ok(body.to_vec())
    }
}

impl tuaton_sign::tsp::TimeStampSource for HttpTsa {
    /// Called from the blocking threads signing runs on: the request is
    /// made on the runtime those threads belong to.
    fn time_stamp(&self, request: &[u8]) -> Result<Vec<u8>, tuaton_sign::SignError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            tuaton_sign::SignError::TimeStamp("no runtime to reach the TSA from".into())
        })?;
        runtime.block_on(self.ask(request.to_vec())).map_err(|e| {
            tracing::warn!(tsa = %self.url, error = %e, "the external TSA gave no time stamp");
            tuaton_sign::SignError::TimeStamp(e)
        })
    }

    fn signer_certificate(&self) -> Option<&[u8]> {
        self.signer.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_addresses_the_internet_routes_are_public() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "2001:db8::1",
        ] {
            assert!(
                !is_public(internal.parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))),
                "{internal}"
            );
        }
        for public in ["203.150.10.1", "8.8.8.8", "2606:4700::1111"] {
            assert!(
                is_public(public.parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))),
                "{public}"
            );
        }
    }

    /// An external TSA made with OpenSSL (tests/tsa/make-external-tsa) in
    /// `dir`, served on loopback: `/ok` answers with `openssl ts -reply`,
    /// `/broken` with 500, `/html` with a page, `/garbage` with bytes that
    /// are no `TimeStampResp`.
    #[allow(clippy::unwrap_used, clippy::expect_used)]
    async fn openssl_tsa(dir: &std::path::Path) -> std::net::SocketAddr {
        use axum::routing::post;
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/tsa/make-external-tsa"
        );
        let made = std::process::Command::new("bash")
            .arg(script)
            .arg(dir)
            .status()
            .expect("bash and openssl are installed");
        assert!(made.success());
        let home = dir.to_path_buf();
        let reply = move |body: axum::body::Bytes| {
            let home = home.clone();
            async move {
                let answer = tokio::task::spawn_blocking(move || {
                    let query = home.join(format!("{}.tsq", tuaton_store::new_id()));
                    let out = query.with_extension("tsr");
                    std::fs::write(&query, &body).unwrap();
                    let ok = std::process::Command::new("openssl")
                        .args(["ts", "-reply", "-config"])
                        .arg(home.join("tsa.cnf"))
                        .arg("-queryfile")
                        .arg(&query)
                        .arg("-out")
                        .arg(&out)
                        .output()
                        .unwrap()
                        .status
                        .success();
                    assert!(ok, "openssl ts -reply");
                    std::fs::read(out).unwrap()
                })
                .await
                .unwrap();
                ([("content-type", "application/timestamp-reply")], answer)
            }
        };
        let app = axum::Router::new()
            .route("/ok", post(reply))
            .route(
                "/broken",
                post(|| async { axum::http::StatusCode::INTERNAL_SERVER_ERROR }),
            )
            .route(
                "/html",
                post(|| async { ([("content-type", "text/html")], "<p>maintenance</p>") }),
            )
            .route(
                "/garbage",
                post(|| async {
                    (
                        [("content-type", "application/timestamp-reply")],
                        vec![0x30u8, 0x03, 0x02, 0x01, 0x00],
                    )
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    /// Asks the TSA at `path` of `addr` for a token over `data`, signed
    /// under `signer` when given, from a blocking thread as signing does.
    async fn token_from(
        addr: std::net::SocketAddr,
        path: &str,
        data: &'static [u8],
        signer: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, tuaton_sign::SignError> {
        let url = Url::parse(&format!("http://{addr}{path}")).unwrap_or_else(|_| unreachable!());
        let Some(tsa) = HttpTsa::new(url, signer) else {
            unreachable!("an HTTP client is made")
        };
        tokio::task::spawn_blocking(move || tuaton_sign::tsp::time_stamp_token(&tsa, data))
            .await
            .unwrap_or_else(|_| unreachable!())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[allow(clippy::unwrap_used, clippy::expect_used)]
    async fn an_external_tsa_gives_a_token_openssl_verifies_and_a_bad_answer_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let addr = openssl_tsa(dir.path()).await;
        let data: &'static [u8] = b"the signature value a time stamp is asked for";
        let token = token_from(addr, "/ok", data, None).await.unwrap();
        std::fs::write(dir.path().join("token.der"), &token).unwrap();
        std::fs::write(dir.path().join("data.bin"), data).unwrap();
        let verify = |file: &str| {
            std::process::Command::new("openssl")
                .args([
                    "ts",
                    "-verify",
                    "-token_in",
                    "-in",
                    "token.der",
                    "-data",
                    file,
                ])
                .args(["-CAfile", "ca.pem", "-untrusted", "tsa.pem"])
                .current_dir(dir.path())
                .output()
                .unwrap()
        };
        let checked = verify("data.bin");
        assert!(
            String::from_utf8_lossy(&checked.stdout).contains("Verification: OK"),
            "{}",
            String::from_utf8_lossy(&checked.stderr)
        );
        std::fs::write(dir.path().join("other.bin"), b"another value").unwrap();
        assert!(!String::from_utf8_lossy(&verify("other.bin").stdout).contains("Verification: OK"));

        for (path, why) in [
            ("/broken", "answered 500"),
            ("/html", "not application/timestamp-reply"),
            ("/garbage", ""),
            ("/missing", "answered 404"),
        ] {
            let e = token_from(addr, path, data, None).await.unwrap_err();
            assert!(e.to_string().contains(why), "{path}: {e}");
        }
        // Nothing listens: not reached, in a sentence without the address.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let e = token_from(closed, "/ok", data, None).await.unwrap_err();
        assert!(e.to_string().contains("not reached"), "{e}");

        // Pinned to the TSA's certificate (as TUATON_TSA_CERT gives it, PEM),
        // its tokens are taken; pinned to another key (its root's), refused.
        let pinned = |file: &str| {
            let pem = std::fs::read(dir.path().join(file)).unwrap();
            Some(tuaton_sign::tsp::certificate_der(&pem).unwrap())
        };
        token_from(addr, "/ok", data, pinned("tsa.pem"))
            .await
            .unwrap();
        let e = token_from(addr, "/ok", data, pinned("ca.pem"))
            .await
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("not signed by the configured TSA certificate's key"),
            "{e}"
        );
    }
}
