//! JWS signatures (RFC 7515) over JSON documents, made through the key
//! backend: ES256 (RFC 7518 §3.4), the signer's certificate and the chain
//! above it in `x5c` and the certificate's SHA-256 thumbprint in
//! `x5t#S256`, in the compact and the flattened JSON serialisation. The
//! payload is attached, or detached (RFC 7515 appendix F: the relying
//! party holds the document), and base64url-encoded, or not (RFC 7797:
//! `"b64": false`, named in `crit`, so the document's own bytes are what
//! is signed).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};

use crate::signer::sha256;
use crate::{CmsSigner, SignError};
use tuaton_keys::SignatureFormat;

/// How a JWS is made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JwsOptions {
    /// Leave the payload out: the relying party holds the document.
    pub detached: bool,
    /// Sign the payload's own bytes (RFC 7797) instead of its base64url.
    pub unencoded: bool,
}

/// One signature over a document, in both serialisations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jws {
    /// `header.payload.signature`; `None` when the payload is attached,
    /// unencoded and holds a `.`, which the compact form cannot carry
    /// (RFC 7797 §5.2).
    pub compact: Option<String>,
    /// The flattened JSON serialisation (RFC 7515 §7.2.2).
    pub json: Value,
}

/// The protected header Tuaton signs with `signer`'s certificate.
fn header(signer: &CmsSigner, options: JwsOptions) -> Result<Map<String, Value>, SignError> {
    let mut chain = vec![STANDARD.encode(signer.certificate_der())];
    for der in signer.chain_der()? {
        chain.push(STANDARD.encode(der));
    }
    let mut header = Map::new();
    header.insert("alg".into(), json!("ES256"));
    header.insert("x5c".into(), json!(chain));
    header.insert(
        "x5t#S256".into(),
        json!(URL_SAFE_NO_PAD.encode(sha256(signer.certificate_der()))),
    );
    if options.unencoded {
        // RFC 7797 §6: a recipient that does not know b64 must refuse.
        header.insert("b64".into(), json!(false));
        header.insert("crit".into(), json!(["b64"]));
    }
    Ok(header)
}

/// Checks that `payload` is a JSON document (the only thing a JWS is made
/// over here) and gives it as text.
pub fn check(payload: &[u8]) -> Result<&str, SignError> {
    std::str::from_utf8(payload)
        .ok()
        .filter(|t| serde_json::from_str::<serde::de::IgnoredAny>(t).is_ok())
        .ok_or_else(|| SignError::Document("a JWS is made over a JSON document only".into()))
}

/// Signs `payload`, a JSON document, with `signer`'s key.
pub fn sign(signer: &CmsSigner, payload: &[u8], options: JwsOptions) -> Result<Jws, SignError> {
    let text = check(payload)?;
    let protected = URL_SAFE_NO_PAD.encode(
        serde_json::to_vec(&header(signer, options)?)
            .map_err(|e| SignError::Setting(format!("the JWS header: {e}")))?,
    );
    let encoded = URL_SAFE_NO_PAD.encode(payload);
    // RFC 7515 §5.1 and RFC 7797 §3: the signing input.
    let mut input = format!("{protected}.").into_bytes();
    if options.unencoded {
        input.extend_from_slice(payload);
    } else {
        input.extend_from_slice(encoded.as_bytes());
    }
    let signature = URL_SAFE_NO_PAD.encode(signer.sign(SignatureFormat::Raw, &input)?);

    let carried = match (options.detached, options.unencoded) {
        (true, _) => None,
        (false, false) => Some(encoded),
        (false, true) => Some(text.to_owned()),
    };
    let compact = match &carried {
        Some(p) if options.unencoded && p.contains('.') => None,
        Some(p) => Some(format!("{protected}.{p}.{signature}")),
        None => Some(format!("{protected}..{signature}")),
    };
    let mut flattened = Map::new();
    flattened.insert("protected".into(), json!(protected));
    if let Some(p) = carried {
        flattened.insert("payload".into(), json!(p));
    }
    flattened.insert("signature".into(), json!(signature));
    Ok(Jws {
        compact,
        json: Value::Object(flattened),
    })
}
